#!/usr/bin/env node
// picamrtc on impaired links, in headless Chromium through the gateway and
// the web client (docs/networks.md): a 1 Mbit/s or 500 kbit/s bottleneck
// (tc tbf on lo) moves the page to the camera's 640x360 rendition and back
// to 1280x720 once it goes (cases bottleneck, bottleneck-500k); one viewer policed to 1 Mbit/s
// (nftables on its port) does not cost the other its picture (case
// mixed); an offer without RTX or FEC still plays (case no-rtx); 10 %
// random UDP loss leaves a moving picture (case loss10), and with FEC
// (--fec=true) it gets FEC packets beside the retransmissions, none before
// the loss (case loss10-fec). Everything runs in a private
// network namespace that holds only loopback. `node networks.mjs CASE`
// prints PASS or FAIL and exits 0 or 1; meson runs it
// (tests/browser/meson.build). What a page sees comes from Chromium's
// inbound-rtp statistics, sampled every 500 ms (tests/bench/systems.mjs,
// shared with the real-networks benchmark). The bounds are generous: only
// a real regression, not a loaded machine, should break them.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CHROMIUM, JANUS_ADDRESS, check, ensureNodeModules, launchChromium, log, poll,
  procUsage, reexecInNamespace, runCase, sleep, startJanus,
} from './harness.mjs';
import {
  BenchSystems, DEVICE, HZ, Link, PAGE_STATS_SCRIPT, Sampler, benchBinaries,
  closeViewerPages, openViewerPages, windowOf,
} from '../bench/systems.mjs';

const NS_MARK = 'PCR_NETWORKS_TEST_IN_NETNS';
const CASE_LIMIT_MS = 150_000; // meson's timeout is 180 s
const SCRIPT = fileURLToPath(import.meta.url);
const SOURCE_ROOT = process.env.PICAMRTC_SOURCE_ROOT ||
  resolve(dirname(SCRIPT), '..', '..');
const BUILD_ROOT = process.env.PICAMRTC_BUILD_ROOT || join(SOURCE_ROOT, 'build');
const BIN = {
  ...benchBinaries(BUILD_ROOT),
  ...(process.env.PCR_SERVICE && { service: process.env.PCR_SERVICE }),
  ...(process.env.PCR_GATEWAY && { gateway: process.env.PCR_GATEWAY }),
  ...(process.env.PCR_PLUGIN_DIR && { plugins: process.env.PCR_PLUGIN_DIR }),
  ...(process.env.PCR_WWW && { www: process.env.PCR_WWW }),
};
// How long an impairment lasts, and how long the page may take to adapt
// to it before it is judged.
const IMPAIRED_MS = 20_000;
const SETTLE_MS = 6_000;
const BACK_TO_720_MS = 30_000;
// What a person reads as a moving picture through a bottleneck; what a
// viewer on a clean link keeps.
const MOVING_FPS = 15;
const FULL_FPS = 25;

// In the page, before its scripts: an offer without the rtx, red, ulpfec
// and flexfec formats, as a browser (or a WHEP player) that does neither
// RTX nor FEC sends it.
const NO_RTX_SCRIPT = () => {
  const strip = (sdp) => {
    const rtx = new Set([...sdp.matchAll(
      /^a=rtpmap:(\d+) (?:rtx|red|ulpfec|flexfec-03)\/90000/gm)].map((m) => m[1]));
    return sdp.split('\r\n').filter((l) => {
      const m = /^a=(?:rtpmap|fmtp|rtcp-fb):(\d+)[ ]/.exec(l);
      return !(m && rtx.has(m[1]));
    }).map((l) => (l.startsWith('m=video ')
      ? l.split(' ').filter((f, i) => i < 3 || !rtx.has(f)).join(' ') : l))
      .join('\r\n');
  };
  const createOffer = RTCPeerConnection.prototype.createOffer;
  RTCPeerConnection.prototype.createOffer = async function (...args) {
    const offer = await createOffer.apply(this, args);
    return { type: offer.type, sdp: strip(offer.sdp) };
  };
};

// --- outside the namespace ----------------------------------------------

function outer(name) {
  try {
    check(existsSync(CHROMIUM), `${CHROMIUM} is missing: the browser tests ` +
      "need Debian's Chromium (apt-get install chromium)");
    ensureNodeModules(BIN.nodeModules);
  } catch (e) {
    console.log(`FAIL browser-${name}: ${e.message}`);
    process.exit(1);
  }
  reexecInNamespace(SCRIPT, [name], NS_MARK, `browser-${name}`);
}

// --- inside the namespace ------------------------------------------------

/** The camera service, the gateway and Chromium; the base URL. */
async function start(systems, serviceArgs = [], env = {}) {
  const broker = await systems.broker();
  systems.camera = await systems.service(broker, 'picamrtc', env, serviceArgs);
  const base = await systems.gateway(broker);
  systems.browser = await launchChromium(BIN.nodeModules);
  return base;
}

/** A page of the web client playing, sampled; [page, its sampler]. */
async function openSampled(systems, base, initScripts = []) {
  const script = initScripts.length
    ? `(${PAGE_STATS_SCRIPT})();${initScripts.map((f) => `(${f})();`).join('')}`
    : PAGE_STATS_SCRIPT;
  const [page] = await openViewerPages(systems.browser,
    `${base}/?device=${DEVICE}`, 1, script, async () => {
      const s = await window.__net();
      return s && s.v.framesDecoded > 0;
    });
  systems.pages.push(page);
  return [page, new Sampler([page])];
}

/** Waits (up to 15 s) until the sampled page plays 1280x720. */
async function expectFullPicture(sampler, what) {
  const ok = await poll(() => {
    const s = sampler.last(0);
    return s && s.v.frameHeight === 720 && s.v.framesDecoded >= 30;
  }, 15_000, 250);
  const s = sampler.last(0);
  check(ok, `${what}: the page does not play 1280x720 within 15 s ` +
    `(last: ${s ? JSON.stringify(s.v) : 'no statistics'})`);
}

/** The heights the page decoded between t0 and t1 (node time). */
function heights(sampler, t0, t1) {
  return [...new Set(sampler.series[0].filter((x) => x.t >= t0 && x.t <= t1)
    .map((x) => x.v.frameHeight).filter(Boolean))];
}

/** The stats overlay's cells, by their data-stat name. */
function overlay(page) {
  return page.evaluate(() => Object.fromEntries([...document
    .querySelectorAll('[data-stat]')].map((e) => [e.dataset.stat,
    e.textContent])));
}

/** Decoded fps and height each second from t0 to t1: "30@720 29@360 ...". */
function trace(sampler, t0, t1) {
  const s = sampler.series[0].filter((x) => x.t >= t0 && x.t <= t1);
  const out = [];
  for (let j = 2; j < s.length; j += 2) {
    const fps = (s[j].v.framesDecoded - s[j - 2].v.framesDecoded) * 1000 /
      (s[j].at - s[j - 2].at);
    out.push(`${fps.toFixed(0)}@${s[j].v.frameHeight}`);
  }
  return out.join(' ');
}

const f1 = (v) => (v === null || v === undefined ? '–' : v.toFixed(1));

function describe(w) {
  return `${f1(w.fps)} fps (${f1(w.receivedFps)} received), ${f1(w.mbps)} Mbit/s, ${f1(w.frozenS)} s frozen, ` +
    `${f1(w.onHighS)} s on 720 and ${f1(w.onLowS)} s below, ` +
    `${w.switches} switches, ${w.keyFrames} key frames, ${w.nacks} NACKs, ` +
    `${w.plis} PLIs, ${w.framesDropped} frames dropped`;
}

// 1 Mbit/s (or 500 kbit/s) for everything on lo for 20 s: after 6 s the
// page shows a moving 640x360 picture; within 30 s of the end it is back on
// 720 lines.
const caseBottleneck = (systems, link) =>
  bottleneck(systems, link, '1mbit', '1 Mbit/s');
const caseBottleneck500k = (systems, link) =>
  bottleneck(systems, link, '500kbit', '500 kbit/s');

async function bottleneck(systems, link, rate, rateText) {
  const base = await start(systems);
  const [page, sampler] = await openSampled(systems, base);
  systems.samplers.push(sampler);
  await expectFullPicture(sampler, 'before the bottleneck');
  await sleep(2000);
  link.shape(rate);
  const t0 = Date.now();
  log(`tc tbf ${rateText} on lo for ${IMPAIRED_MS / 1000} s`);
  await sleep(IMPAIRED_MS);
  const t1 = Date.now();
  const shown = await overlay(page);
  const dropped = link.dropped();
  link.clear();
  log(`bottleneck gone: the bucket dropped ${dropped} packets`);
  const w = windowOf(sampler.series[0], t0 + SETTLE_MS, t1);
  const whole = windowOf(sampler.series[0], t0, t1);
  check(w && whole, 'no statistics from the page during the bottleneck');
  const got = `from ${SETTLE_MS / 1000} s into the bottleneck on: ${describe(w)}; ` +
    `first below 720 after ${f1(whole.lowAfterS)} s; heights ` +
    `${heights(sampler, t0, t1).join(', ')}; ${dropped} packets dropped`;
  log(got);
  log(`each second: ${trace(sampler, t0, t1)}`);
  check(w.fps >= MOVING_FPS, `the picture does not move through a ${rateText} ` +
    `bottleneck (≥ ${MOVING_FPS} fps expected): ${got}`);
  check(heights(sampler, t0, t1).includes(360), 'the page never got the ' +
    `640x360 rendition through a ${rateText} bottleneck: ${got}`);
  // The overlay tells a person the picture got smaller, and when.
  check(/^\d+ (s|min) ago · [1-9]\d*×$/.test(shown.sizeChanged),
    `the stats overlay's "Res changed" reads "${shown.sizeChanged}" after ` +
    `the switch to 640x360 (Res "${shown.resolution}")`);
  const back = await poll(() => {
    const s = sampler.last(0);
    return s && s.v.frameHeight === 720 && s.t > t1 && s;
  }, BACK_TO_720_MS, 250);
  check(back, `the page is not back on 1280x720 within ` +
    `${BACK_TO_720_MS / 1000} s after the bottleneck went ` +
    `(heights since: ${heights(sampler, t1, Date.now()).join(', ')}): ${got}`);
  return `${got}; overlay "${shown.resolution}", changed ` +
    `"${shown.sizeChanged}"; back on 720 lines ${f1((back.t - t1) / 1000)} s ` +
    'after it went';
}

// Page B alone for 10 s (its key frames are the reference), then page A
// joins and A's port is policed to 1 Mbit/s for 20 s: B keeps the full
// picture and bitrate and about its own key frames; A moves on 360 lines.
async function caseMixed(systems, link) {
  const base = await start(systems);
  const [, sb] = await openSampled(systems, base);
  systems.samplers.push(sb);
  await expectFullPicture(sb, 'page B alone');
  await sleep(2000);
  const l0 = Date.now();
  await sleep(10_000);
  const lone = windowOf(sb.series[0], l0, Date.now());
  check(lone, 'no statistics from page B alone');
  const kfRate = lone.keyFrames / lone.seconds;
  log(`B alone: ${describe(lone)}`);

  const [, sa] = await openSampled(systems, base);
  systems.samplers.push(sa);
  await expectFullPicture(sa, 'page A');
  await sleep(2000);
  const port = sa.last(0).port;
  check(port, 'page A has no selected candidate pair');
  link.police(port, 125);
  const t0 = Date.now();
  const u0 = procUsage(systems.camera.pid);
  log(`UDP to page A's port ${port} policed to 1 Mbit/s for ` +
    `${IMPAIRED_MS / 1000} s`);
  await sleep(IMPAIRED_MS);
  const t1 = Date.now();
  const u1 = procUsage(systems.camera.pid);
  const dropped = link.dropped();
  link.clear();
  const a = windowOf(sa.series[0], t0 + SETTLE_MS, t1);
  const b = windowOf(sb.series[0], t0, t1);
  check(a && b, 'no statistics from a page while A was policed');
  const kfBound = 2 * kfRate * b.seconds + 2;
  const got = `A from ${SETTLE_MS / 1000} s on: ${describe(a)}, heights ` +
    `${heights(sa, t0, t1).join(', ')}; B: ${describe(b)}, heights ` +
    `${heights(sb, t0, t1).join(', ')}; B alone ${f1(kfRate * 10)} key ` +
    `frames per 10 s; ${dropped} packets dropped; camera CPU ` +
    `${f1(100 * (u1.ticks - u0.ticks) / HZ / ((t1 - t0) / 1000))} %`;
  log(got);
  log(`A each second: ${trace(sa, t0, t1)}`);
  log(`B each second: ${trace(sb, t0, t1)}`);
  check(dropped > 0, `the policing dropped nothing: ${got}`);
  check(b.minHeight >= 720 && b.mbps >= 1.5 && b.fps >= FULL_FPS,
    `page B, on a clean link, lost its picture to page A's ` +
    `(1280x720, ≥ 1.5 Mbit/s, ≥ ${FULL_FPS} fps expected): ${got}`);
  check(b.keyFrames <= kfBound, `page B decoded ${b.keyFrames} key frames ` +
    `while A was policed, more than twice what it gets alone ` +
    `(≤ ${kfBound.toFixed(0)}): ${got}`);
  check(a.fps >= MOVING_FPS, `page A's picture does not move at 1 Mbit/s ` +
    `(≥ ${MOVING_FPS} fps expected): ${got}`);
  check(heights(sa, t0, t1).includes(360), 'page A never got the 640x360 ' +
    `rendition at 1 Mbit/s: ${got}`);
  return got;
}

// An offer without RTX or FEC, as older viewers and players send it: the
// answer has none either and the picture plays at full rate on a clean
// link, FEC allowed or not.
async function caseNoRtx(systems) {
  const base = await start(systems);
  const [page, sampler] = await openSampled(systems, base, [NO_RTX_SCRIPT]);
  systems.samplers.push(sampler);
  const [offer, answer] = await descriptions(page);
  check(/^m=video /m.test(offer) && !/ (?:rtx|red|ulpfec)\//.test(offer),
    `the page's offer still has RTX or FEC: ${oneLine(offer)}`);
  check(!/ (?:rtx|red|ulpfec)\//.test(answer) &&
    !/^a=ssrc-group:FID/m.test(answer), 'the camera answers an offer ' +
    `without RTX or FEC with them: ${oneLine(answer)}`);
  await expectFullPicture(sampler, 'without RTX');
  const t0 = Date.now();
  await sleep(10_000);
  const w = windowOf(sampler.series[0], t0, Date.now());
  check(w, 'no statistics from the page');
  check(w.fps >= FULL_FPS && w.frozenS <= 1, 'an offer without RTX does ' +
    `not play at full rate (≥ ${FULL_FPS} fps expected): ${describe(w)}`);
  // On a clean link the overlay shows the full picture, never changed.
  const shown = await overlay(page);
  check(shown.resolution === '1280×720' && shown.sizeChanged === 'not yet' &&
    /Mb\/s$/.test(shown.bitrate), 'the stats overlay reads ' +
    `${JSON.stringify(shown)} on a clean link (1280×720, "not yet" changed, ` +
    'Mb/s expected)');
  return `offer and answer without RTX and FEC; ${describe(w)}; overlay ` +
    `"${shown.resolution}", changed "${shown.sizeChanged}", ${shown.bitrate}`;
}

/** `percent` of UDP lost each way for IMPAIRED_MS: [the page's window,
 * drops, when it started, when it ended]. */
async function lossWindow(sampler, link, percent = 10) {
  link.loss(percent);
  const t0 = Date.now();
  log(`${percent} % of UDP dropped each way for ${IMPAIRED_MS / 1000} s`);
  await sleep(IMPAIRED_MS);
  const t1 = Date.now();
  const dropped = link.dropped();
  link.clear();
  const w = windowOf(sampler.series[0], t0, t1);
  check(w, 'no statistics from the page under loss');
  return [w, dropped, t0, t1];
}

// 10 % of UDP lost each way for 20 s: the picture keeps moving (NACK, RTX),
// and the camera, having measured that much loss, sends each repair twice
// (docs/networks.md, "Repairs sent twice"): Chromium receives about two
// retransmissions per NACKed packet instead of one.
async function caseLoss10(systems, link) {
  const base = await start(systems, [], { GST_DEBUG: 'mqttwebrtcsink:4' });
  const [, sampler] = await openSampled(systems, base);
  systems.samplers.push(sampler);
  await expectFullPicture(sampler, 'before the loss');
  const [w, dropped] = await lossWindow(sampler, link);
  const got = `${describe(w)}, ${w.rtx ?? 0} retransmissions received; ` +
    `${dropped} datagrams dropped`;
  check(dropped > 0, `the loss dropped nothing: ${got}`);
  check(w.nacks > 0, `Chromium sent no NACK at 10 % loss: ${got}`);
  check(w.fps >= MOVING_FPS, `the picture does not move at 10 % loss ` +
    `(≥ ${MOVING_FPS} fps expected): ${got}`);
  const twice = /: each repair sent twice, average loss [\d.]+ %/.exec(
    systems.camera.logText());
  check(twice, `the camera never sent repairs twice at 10 % loss: ${got}`);
  check((w.rtx ?? 0) >= 1.4 * w.nacks, `fewer than 1.4 retransmissions ` +
    `received per NACK at 10 % loss (twice each expected): ${got}`);
  return `${got}; camera: "${twice[0].slice(2)}"`;
}

/** The page's offer and the camera's answer. */
function descriptions(page) {
  return page.evaluate(() => [
    window.picamrtc.pc.localDescription?.sdp ?? '',
    window.picamrtc.pc.remoteDescription?.sdp ?? '']);
}

const oneLine = (sdp) => sdp.replace(/\r\n/g, ' | ').slice(0, 2500);

/** The payload type of `name`/90000 in the video section, or null. */
function ptOf(sdp, name) {
  const video = sdp.slice(sdp.indexOf('\r\nm=video '));
  const m = new RegExp(`^a=rtpmap:(\\d+) ${name}/90000`, 'm').exec(video);
  return m ? m[1] : null;
}

// The camera with FEC by loss: Chromium's offer has red and ulpfec, and the
// answer names the same payload types and an rtx for red; under 10 % loss
// each way for 20 s the picture moves, the retransmissions still come (as
// RTX of RED), and the camera sent FEC packets, none while the link was
// clean (FEC costs bandwidth). Chromium (156) counts no FEC for video in
// its statistics, so the count is the camera's, logged when the viewer
// leaves.
async function caseLoss10Fec(systems, link) {
  const base = await start(systems, ['--fec=true'], {
    GST_DEBUG: 'pcrviewer:4,mqttwebrtcsink:4',
  });
  const [page, sampler] = await openSampled(systems, base);
  systems.samplers.push(sampler);
  await expectFullPicture(sampler, 'before the loss');
  const [offer, answer] = await descriptions(page);
  const red = ptOf(offer, 'red');
  const ulpfec = ptOf(offer, 'ulpfec');
  check(red && ulpfec, `Chromium's offer has no red or ulpfec: ${oneLine(offer)}`);
  check(ptOf(answer, 'red') === red && ptOf(answer, 'ulpfec') === ulpfec &&
    new RegExp(`^a=fmtp:\\d+ apt=${red}\r?$`, 'm').test(answer),
    `the answer lacks the offer's red ${red}, ulpfec ${ulpfec} or an rtx ` +
    `for red: ${oneLine(answer)}`);
  await sleep(4_000);
  const switched = /: FEC \d+ % \(was \d+ %\)[^\n]*/.exec(systems.camera.logText());
  check(!switched, `FEC switched on over a clean link: ${switched}`);
  const fecSent = () => {
    const all = [...systems.camera.logText().matchAll(/(\d+) FEC packets sent/g)];
    return all.length ? Number(all[all.length - 1][1]) : null;
  };
  const [w, dropped] = await lossWindow(sampler, link);
  const got = `red ${red}, ulpfec ${ulpfec}; ${describe(w)}, ` +
    `${w.rtx ?? 0} retransmissions received; ${dropped} datagrams dropped`;
  check(dropped > 0, `the loss dropped nothing: ${got}`);
  check(w.rtx > 0, `no retransmissions beside FEC: ${got}`);
  check(w.fps >= MOVING_FPS, `the picture does not move at 10 % loss ` +
    `(≥ ${MOVING_FPS} fps expected): ${got}`);
  // the viewer leaves; the camera logs the FEC packets it sent
  await closeViewerPages(systems.pages.splice(0));
  let fec = null;
  await poll(() => (fec = fecSent()) !== null, 5_000, 250);
  check(fec > 0, `the camera sent no FEC packets at 10 % loss: ${got}; ` +
    `log: ${fec === null ? 'no FEC line' : `${fec} FEC packets sent`}`);
  return `${got}; camera: ${fec} FEC packets sent`;
}

/** Janus, the camera relayed to it, the gateway with --janus and a page
 * playing 1280x720 through Janus; the page's sampler. */
async function startRelayed(systems) {
  const broker = await systems.broker();
  const janus = await startJanus(systems.workdir, 'networks');
  systems.procs.push(janus.proc);
  systems.camera = await systems.service(broker, 'picamrtc', {}, ['--relay',
    `${janus.url}?adminkey=networks`, '--ice-address', JANUS_ADDRESS]);
  const base = await systems.gateway(broker, ['--janus', janus.url]);
  systems.browser = await launchChromium(BIN.nodeModules);
  const [page, sa] = await openSampled(systems, base);
  systems.samplers.push(sa);
  await expectFullPicture(sa, 'the relayed page');
  const path = await page.evaluate(() => window.picamrtc.path);
  check(path === 'relay', `the page plays over "${path}", not through Janus`);
  return sa;
}

// 3 % of UDP lost each way for 20 s, through Janus. Not in the suite: it
// fails today (docs/scaling.md, "Loss through Janus": about 2-5 fps, Janus
// switching the page between the layers); run by hand with
// `node tests/browser/networks.mjs relay-loss3`.
async function caseRelayLoss3(systems, link) {
  const sa = await startRelayed(systems);
  const [w, dropped, t0, t1] = await lossWindow(sa, link, 3);
  const got = `${describe(w)}, heights ${heights(sa, t0, t1).join(', ')}; ` +
    `${dropped} datagrams dropped`;
  log(`each second: ${trace(sa, t0, t1)}`);
  check(dropped > 0, `the loss dropped nothing: ${got}`);
  check(w.fps >= MOVING_FPS, `the relayed picture does not move at 3 % ` +
    `loss (≥ ${MOVING_FPS} fps expected): ${got}`);
  return `3 % loss through Janus: ${got}`;
}

// A page watching through Janus is policed to 1 Mbit/s for 20 s: Janus
// reports it losing packets (slowlink), the gateway moves it to the
// camera's 640x360 simulcast layer, and its picture keeps moving; the
// camera's own stream does not change.
async function caseRelaySlow(systems, link) {
  const sa = await startRelayed(systems);
  await sleep(2000);
  const port = sa.last(0).port;
  check(port, 'the page has no selected candidate pair');
  link.police(port, 125);
  const t0 = Date.now();
  log(`UDP to the relayed page's port ${port} policed to 1 Mbit/s for ` +
    `${IMPAIRED_MS / 1000} s`);
  await sleep(IMPAIRED_MS);
  const t1 = Date.now();
  const dropped = link.dropped();
  link.clear();
  const a = windowOf(sa.series[0], t0 + SETTLE_MS, t1);
  check(a, 'no statistics from the page while it was policed');
  const got = `from ${SETTLE_MS / 1000} s on: ${describe(a)}, heights ` +
    `${heights(sa, t0, t1).join(', ')}; ${dropped} packets dropped`;
  log(got);
  log(`each second: ${trace(sa, t0, t1)}`);
  const lowered = /the low layer/.test(systems.procs.find((p) =>
    p.name === 'gateway').logText(1e6));
  check(dropped > 0, `the policing dropped nothing: ${got}`);
  check(lowered, `the gateway never moved the page to the low layer: ${got}`);
  check(heights(sa, t0, t1).includes(360), 'the relayed page never got ' +
    `the 640x360 layer at 1 Mbit/s: ${got}`);
  check(a.fps >= MOVING_FPS, `the relayed page's picture does not move at ` +
    `1 Mbit/s (≥ ${MOVING_FPS} fps expected): ${got}`);
  return `policed to 1 Mbit/s, through Janus: ${got}`;
}

const CASES = {
  'relay-slow': caseRelaySlow,
  'relay-loss3': caseRelayLoss3,
  bottleneck: caseBottleneck,
  'bottleneck-500k': caseBottleneck500k,
  mixed: caseMixed,
  'no-rtx': caseNoRtx,
  loss10: caseLoss10,
  'loss10-fec': caseLoss10Fec,
};

async function inner(name) {
  const systems = new BenchSystems(BIN);
  systems.pages = [];
  systems.samplers = [];
  const link = new Link();
  await runCase(`browser-${name}`, CASE_LIMIT_MS, async () => {
    const summary = await CASES[name](systems, link);
    check(systems.camera.alive(), 'the camera service died during the case');
    return summary;
  }, async (failed) => {
    try { link.clear(); } catch { /* the namespace goes with the run */ }
    for (const s of systems.samplers) await s.stop();
    await closeViewerPages(systems.pages);
    await systems.teardown(failed);
  });
}

const name = process.argv[2];
if (!Object.hasOwn(CASES, name)) {
  console.log(`usage: node networks.mjs ${Object.keys(CASES).join('|')}`);
  process.exit(2);
}
if (process.env[NS_MARK]) await inner(name);
else outer(name);
