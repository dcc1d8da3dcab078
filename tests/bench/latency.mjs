#!/usr/bin/env node
// The latency benchmark (issue 4, docs/benchmarks.md): headless Debian
// Chromium watches picamrtc's stamped 1280x720 30 fps test pattern through
// the gateway and the web client, and reads each presented frame's capture
// stamp (window.picamrtc.latencySamples); then the same pages watch a
// seed-style aiortc streamer (tests/bench/aiortc-streamer.py) drawing the
// same stamp. All in a private network namespace holding only loopback.
//
//   node tests/bench/latency.mjs [--build DIR] [--seconds 60] [--docs]
//   node tests/bench/latency.mjs --smoke      # 10 s per system, CI
//
// Phases (full run): picamrtc with 1 page for SECONDS, with 5 pages and
// with 1 page + 19 C viewers for SECONDS/2; the sender-side breakdown (the
// GStreamer latency tracer, 10 s); the service's CPU and RSS with 1, 5, 10,
// 20 C viewers and the most viewers it serves at 30 fps; then aiortc with
// 1 page for SECONDS and 5 pages for SECONDS/2. Writes results.json,
// results.md and PNG plots (gnuplot) into BUILD/bench; --docs also puts
// the table and the plots into docs/benchmarks.md and docs/img/. The smoke
// run fails only on what no machine should show: no samples, or latency
// beyond a second. Exit 0 on success, 1 on failure.

import { spawnSync } from 'node:child_process';
import {
  copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Failure, JANUS_ADDRESS, Proc, check, ensureNodeModules, freePort,
  launchChromium, log, poll, procUsage, reexecInNamespace, sleep, startJanus,
  tcpOpen,
} from '../browser/harness.mjs';

const NS_MARK = 'PCR_BENCH_IN_NETNS';
const DEVICE = 'cam1';
const SCRIPT = fileURLToPath(import.meta.url);
const HERE = dirname(SCRIPT);
const SOURCE_ROOT = resolve(HERE, '..', '..');
const HZ = Number(spawnSync('getconf', ['CLK_TCK']).stdout) || 100;
const PYTHON = '/usr/bin/python3'; // Debian's, where python3-aiortc is

const PHASES = ['ours1', 'relay1', 'relay50', 'ours5', 'ours20', 'breakdown', 'fanout', 'aiortc1',
  'aiortc5'];

function parseArgs(argv) {
  const o = {
    build: process.env.PICAMRTC_BUILD_ROOT || join(SOURCE_ROOT, 'build'),
    seconds: 60, smoke: false, docs: false, phases: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--build') o.build = argv[++i];
    else if (a === '--seconds') o.seconds = Number(argv[++i]);
    else if (a === '--smoke') o.smoke = true;
    else if (a === '--docs') o.docs = true;
    else if (a === '--phases') o.phases = argv[++i].split(',');
    else {
      console.error('usage: latency.mjs [--build DIR] [--seconds N] ' +
        `[--smoke] [--docs] [--phases ${PHASES.join(',')}]`);
      process.exit(2);
    }
  }
  if (!(o.seconds >= 5 && o.seconds <= 3600)) {
    console.error('latency.mjs: --seconds must be 5 .. 3600');
    process.exit(2);
  }
  const bad = (o.phases || []).filter((p) => !PHASES.includes(p));
  if (bad.length) {
    console.error(`latency.mjs: unknown phase ${bad[0]} (${PHASES.join(', ')})`);
    process.exit(2);
  }
  if (o.smoke) {
    o.seconds = 10;
    o.phases = o.phases || ['ours1', 'aiortc1'];
  }
  o.phases = o.phases || PHASES;
  o.build = resolve(o.build);
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const BIN = {
  service: join(opts.build, 'src', 'picamrtc', 'picamrtc'),
  gateway: join(opts.build, 'src', 'gateway', 'picamrtc-gateway'),
  viewer: join(opts.build, 'tests', 'integration', 'pcr-test-viewer'),
  plugins: join(opts.build, 'plugins', 'mqttwebrtc'),
  nodeModules: join(opts.build, 'tests', 'browser'),
  streamer: join(HERE, 'aiortc-streamer.py'),
  www: join(SOURCE_ROOT, 'data', 'www'),
};
const OUT = join(opts.build, 'bench');

// --- statistics ----------------------------------------------------------

function percentile(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1);
  return sorted[Math.max(0, i)];
}

function summary(values) {
  const s = [...values].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return {
    n: s.length, p50: percentile(s, 50), p95: percentile(s, 95),
    p99: percentile(s, 99), mean: s.length ? mean : null,
    max: s.length ? s[s.length - 1] : null,
  };
}

const fmt = (v, d = 1) => (v === null || v === undefined || Number.isNaN(v)
  ? '–' : Number(v).toFixed(d));

// --- the systems under test ------------------------------------------------

class Run {
  constructor() {
    this.workdir = mkdtempSync(join(tmpdir(), 'pcr-bench-'));
    this.procs = [];
    this.browser = null;
  }

  spawn(name, argv, env) {
    const p = new Proc(name, argv, this.workdir, env);
    this.procs.push(p);
    return p;
  }

  async waitPort(port, proc, what) {
    const ok = await poll(async () => {
      check(proc.alive(), `${what} exited at start-up (${proc.code}):\n` +
        proc.logText(3000));
      return tcpOpen(port);
    }, 20_000, 100);
    check(ok, `${what} does not accept connections on port ${port}`);
  }

  async startBroker() {
    this.brokerPort = await freePort();
    this.brokerUri = `mqtt://127.0.0.1:${this.brokerPort}`;
    const conf = join(this.workdir, 'mosquitto.conf');
    writeFileSync(conf, `listener ${this.brokerPort} 127.0.0.1\n` +
      'allow_anonymous true\nuser root\npersistence false\n');
    const p = this.spawn('mosquitto', ['mosquitto', '-c', conf]);
    await this.waitPort(this.brokerPort, p, 'mosquitto');
  }

  /** The camera service on the stamped test pattern; env adds tracers. */
  async startService(name, env = {}) {
    // relayed: candidates on Janus' interface too (harness.mjs)
    const relay = this.janus ? ['--relay', `${this.janus.url}?adminkey=bench`,
      '--ice-address', JANUS_ADDRESS] : [];
    this.service = this.spawn(name, [BIN.service, '--source', 'test',
      '--latency-stamp', '--width', '1280', '--height', '720',
      '--framerate', '30', '--broker', this.brokerUri, '--device', DEVICE,
      '--ice-address', '127.0.0.1', '--max-viewers', '64',
      '--idle-stop-seconds', '30', ...relay,
      // by hand, e.g. PCR_BENCH_SERVICE_ARGS="--renditions 1"
      ...(process.env.PCR_BENCH_SERVICE_ARGS || '').split(' ').filter(Boolean)],
    { GST_PLUGIN_PATH: BIN.plugins, ...env });
    // online: its retained status says so
    const ok = await poll(() => {
      check(this.service.alive(), `the service exited (${this.service.code})` +
        `:\n${this.service.logText(3000)}`);
      const r = spawnSync('mosquitto_sub', ['-p', String(this.brokerPort),
        '-t', `picamrtc/${DEVICE}/status`, '-C', '1', '-W', '2']);
      return /"online"/.test(String(r.stdout));
    }, 20_000, 100);
    check(ok, 'the service never published status online');
    return this.service;
  }

  async startGateway() {
    const port = await freePort();
    const p = this.spawn('gateway', [BIN.gateway, '--broker', this.brokerUri,
      '--listen', `127.0.0.1:${port}`, '--www', BIN.www, '--device', DEVICE,
      ...(this.janus ? ['--janus', this.janus.url] : [])]);
    await this.waitPort(port, p, 'the gateway');
    return `http://127.0.0.1:${port}`;
  }

  async startStreamer() {
    const port = await freePort();
    this.streamer = this.spawn('aiortc-streamer', [PYTHON, BIN.streamer,
      '--www', BIN.www, '--listen', `127.0.0.1:${port}`, '--device', DEVICE]);
    await this.waitPort(port, this.streamer, 'the aiortc streamer');
    return `http://127.0.0.1:${port}`;
  }

  async stop(proc) {
    await proc.stop();
    this.procs = this.procs.filter((p) => p !== proc);
  }

  async teardown(failed) {
    if (this.browser) {
      try { await Promise.race([this.browser.close(), sleep(10_000)]); } catch { /* gone */ }
    }
    for (const p of [...this.procs].reverse()) await p.stop();
    if (failed) {
      for (const p of this.procs) {
        console.log(`----- log of ${p.name} (exit ${p.code})`);
        console.log(p.logText(p.name === 'mosquitto' ? 2000 : 8000));
      }
      console.log(`----- logs kept in ${this.workdir}`);
    } else {
      rmSync(this.workdir, { recursive: true, force: true });
    }
  }
}

// --- browser pages -----------------------------------------------------------

// Before the page's own scripts: when the first offer was made and the
// first frame presented, on the page's clock.
const INIT_SCRIPT = () => {
  window.__bench = { offerAt: null, firstFrameAt: null };
  const create = RTCPeerConnection.prototype.createOffer;
  RTCPeerConnection.prototype.createOffer = function (...a) {
    if (window.__bench.offerAt === null) window.__bench.offerAt = performance.now();
    return create.apply(this, a);
  };
  // relayed, Janus offers: the page's request to the gateway starts it
  const get = window.fetch;
  window.fetch = function (url, opts, ...rest) {
    if (window.__bench.offerAt === null && opts && opts.method === 'POST' &&
        String(url).includes('api/relay/')) {
      window.__bench.offerAt = performance.now();
    }
    return get.call(this, url, opts, ...rest);
  };
  // per presented frame: last packet received -> expected on screen
  window.__bench.receiveToDisplay = [];
  document.addEventListener('DOMContentLoaded', () => {
    const v = document.querySelector('video');
    if (!v) return;
    const onFrame = (now, md) => {
      if (window.__bench.firstFrameAt === null) window.__bench.firstFrameAt = now;
      if (md.receiveTime !== undefined && md.expectedDisplayTime !== undefined) {
        const r = window.__bench.receiveToDisplay;
        r.push(md.expectedDisplayTime - md.receiveTime);
        if (r.length > 20000) r.splice(0, r.length - 20000);
      }
      v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
  });
  // the receiver's numbers: inbound-rtp video of getStats()
  window.__benchStats = async () => {
    const pc = window.picamrtc.pc;
    if (!pc) return null;
    for (const s of (await pc.getStats()).values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        const n = (k) => s[k] ?? 0;
        return {
          jitterBufferDelay: n('jitterBufferDelay'),
          jitterBufferEmittedCount: n('jitterBufferEmittedCount'),
          totalDecodeTime: n('totalDecodeTime'),
          totalProcessingDelay: n('totalProcessingDelay'),
          framesDecoded: n('framesDecoded'),
          framesDropped: n('framesDropped'),
          packetsLost: n('packetsLost'),
          freezeCount: n('freezeCount'),
        };
      }
    }
    return null;
  };
};

async function openPages(run, base, n, query) {
  const pages = [];
  for (let i = 0; i < n; i++) {
    const ctx = await run.browser.newContext({ viewport: { width: 960, height: 600 } });
    await ctx.addInitScript(INIT_SCRIPT);
    const page = await ctx.newPage();
    page.errors = [];
    page.on('pageerror', (e) => page.errors.push(e.message));
    await page.goto(`${base}/?device=${DEVICE}${query}`, { waitUntil: 'load' });
    pages.push(page);
  }
  const ok = await poll(async () => {
    const counts = await Promise.all(pages.map((p) => p.evaluate(() =>
      (window.picamrtc && window.picamrtc.latencySamples
        ? window.picamrtc.latencySamples.length : 0))));
    return counts.every((c) => c > 0);
  }, 30_000, 250);
  check(ok, `not every one of ${n} pages at ${base} shows stamped frames ` +
    `within 30 s (errors: ${pages.flatMap((p) => p.errors).join('; ') || 'none'})`);
  return pages;
}

async function closePages(pages) {
  // Stop first (WHEP DELETE or the bulk API's stop-webrtc), as a person
  // pressing Stop would: the sender drops the viewer at once instead of
  // streaming on into the next phase until its timeouts notice.
  await Promise.all(pages.map((p) => Promise.race([
    p.evaluate(() => window.picamrtc.stop()).catch(() => {}), sleep(3000)])));
  for (const p of pages) {
    try { await p.context().close(); } catch { /* gone */ }
  }
}

/**
 * Watches for `seconds` with the pages already playing and returns what
 * each page saw, and proc's CPU and RSS over the window.
 */
async function measure(pages, seconds, proc, label) {
  await sleep(2000); // settle after the last page joined
  const before = await Promise.all(pages.map((p) => p.evaluate(async () => {
    window.picamrtc.clearLatencySamples();
    window.__bench.receiveToDisplay.length = 0;
    const stats = await window.__benchStats();
    return { stats, frames: window.picamrtc.framesRendered, at: performance.now() };
  })));
  const u0 = procUsage(proc.pid);
  const w0 = Date.now();
  for (let left = seconds; left > 0; left -= 10) {
    await sleep(Math.min(10, left) * 1000);
    if (left > 10) log(`${label}: ${seconds - left + 10} of ${seconds} s`);
  }
  const u1 = procUsage(proc.pid);
  const wall = (Date.now() - w0) / 1000;
  const after = await Promise.all(pages.map((p) => p.evaluate(async () => {
    const stats = await window.__benchStats();
    return {
      stats, frames: window.picamrtc.framesRendered, at: performance.now(),
      samples: window.picamrtc.latencySamples.map((s) =>
        [s.frame, s.latencyMs, s.presentedFrames]),
      receiveToDisplay: window.__bench.receiveToDisplay.slice(),
      bench: window.__bench,
      path: window.picamrtc.path,
    };
  })));

  const perPage = after.map((a, i) => {
    const b = before[i];
    const secs = (a.at - b.at) / 1000;
    const d = (k) => (a.stats && b.stats ? a.stats[k] - b.stats[k] : null);
    // Frames the camera stamped that never reached the screen: counter
    // steps beyond the presented-frame steps (a callback the page skipped
    // is not a lost frame; a step over 3600 is a restarted camera).
    let gaps = 0;
    for (let j = 1; j < a.samples.length; j++) {
      const step = (a.samples[j][0] - a.samples[j - 1][0]) >>> 0;
      const shown = a.samples[j][2] - a.samples[j - 1][2];
      if (step <= 3600 && shown > 0 && step > shown) gaps += step - shown;
    }
    const decoded = d('framesDecoded');
    return {
      fps: (a.frames - b.frames) / secs,
      decodedFps: decoded === null ? null : decoded / secs,
      latency: summary(a.samples.map((s) => s[1])),
      latencies: a.samples.map((s) => s[1]),
      framesNotShown: gaps,
      framesDropped: d('framesDropped'),
      packetsLost: d('packetsLost'),
      freezes: d('freezeCount'),
      receiveToDisplayMs: summary(a.receiveToDisplay).p50,
      jitterBufferMs: 1000 * d('jitterBufferDelay') /
        (d('jitterBufferEmittedCount') || 1),
      decodeMs: 1000 * d('totalDecodeTime') / (decoded || 1),
      processingMs: 1000 * d('totalProcessingDelay') / (decoded || 1),
      path: a.path,
      firstFrameMs: a.bench && a.bench.offerAt !== null && a.bench.firstFrameAt !== null
        ? a.bench.firstFrameAt - a.bench.offerAt : null,
    };
  });
  const all = perPage.flatMap((p) => p.latencies);
  return {
    pages: perPage.map(({ latencies, ...rest }) => rest),
    latency: summary(all),
    latencies: all,
    minFps: Math.min(...perPage.map((p) => p.fps)),
    minDecodedFps: Math.min(...perPage.map((p) => p.decodedFps ?? 0)),
    cpu: u0 && u1 ? 100 * (u1.ticks - u0.ticks) / HZ / wall : null,
    rssMb: u1 ? u1.rssKb / 1024 : null,
  };
}

/** Waits (up to 20 s) until GET /api/devices shows no viewers left. */
async function waitNoViewers(base) {
  const ok = await poll(async () => {
    try {
      const list = await (await fetch(`${base}/api/devices`)).json();
      const d = list.find((e) => e.id === DEVICE);
      return d && d.status && d.status.viewers === 0;
    } catch { return false; }
  }, 20_000, 250);
  if (!ok) log(`${base}: viewers of the last phase still connected after 20 s`);
}

async function pagePhase(run, base, n, seconds, proc, label, query = '',
  alone = true) {
  if (alone) await waitNoViewers(base);
  log(`${label}: ${n} page${n > 1 ? 's' : ''}, ${seconds} s`);
  const pages = await openPages(run, base, n, query);
  try {
    const r = await measure(pages, seconds, proc, label);
    log(`${label}: p50 ${fmt(r.latency.p50)} ms, p95 ${fmt(r.latency.p95)} ms, ` +
      `slowest ${fmt(r.minDecodedFps)} fps decoded, ${fmt(r.minFps)} on screen, ` +
      `CPU ${fmt(r.cpu)} %`);
    return { label, viewers: n, seconds, ...r };
  } finally {
    await closePages(pages);
  }
}

// --- C viewers ---------------------------------------------------------------

/** n C test viewers that receive without decoding (--no-decode). */
function startCViewers(run, n, holdS, tag) {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push(run.spawn(`viewer-${tag}-${i}`, [BIN.viewer, '--broker',
      run.brokerUri, '--device', DEVICE, '--ice-address', '127.0.0.1',
      '--trickle', '--no-decode', '--frames', '1', '--hold', String(holdS),
      '--timeout', String(holdS + 40)], {}));
  }
  return out;
}

/** Frames each viewer counted between two moments, from its "frames" lines. */
function viewerFrames(v) {
  const counts = [];
  for (const line of v.logText(1e7).split('\n')) {
    try {
      const e = JSON.parse(line);
      if (e.event === 'frames') counts.push([e.ms, e.count]);
    } catch { /* not JSON */ }
  }
  return counts;
}

/** The latest [ms, count] a viewer printed (its own clock), or null. */
function viewerLast(v) {
  const c = viewerFrames(v);
  return c.length ? c[c.length - 1] : null;
}

/** Frames per second between two of a viewer's own readings. */
function viewerFps(a, b) {
  return a && b && b[0] > a[0] ? (b[1] - a[1]) * 1000 / (b[0] - a[0]) : 0;
}

async function waitFirstFrames(viewers, timeoutMs) {
  const ok = await poll(() => viewers.every((v) =>
    /"first-frame"/.test(v.logText(1e6))), timeoutMs, 200);
  check(ok, `${viewers.filter((v) => !/"first-frame"/.test(v.logText(1e6))).length}` +
    ` of ${viewers.length} C viewers got no frame within ${timeoutMs / 1000} s`);
}

/** Each relayed C viewer's frame rate over its last @seconds (its own
 * clock), from one --count process's "frames" lines. */
function relayedFps(proc, seconds) {
  const per = new Map();
  for (const line of proc.logText(1e8).split('\n')) {
    try {
      const e = JSON.parse(line);
      if (e.event !== 'frames') continue;
      if (!per.has(e.viewer)) per.set(e.viewer, []);
      per.get(e.viewer).push([e.ms, e.count]);
    } catch { /* not JSON */ }
  }
  return [...per.values()].map((c) => {
    const last = c[c.length - 1];
    const first = c.find((x) => x[0] >= last[0] - seconds * 1000) || c[0];
    return viewerFps(first, last);
  });
}

/** A page through Janus beside 49 relayed C viewers (--no-decode). */
async function relay50Phase(run, base, seconds) {
  await waitNoViewers(base);
  const cv = run.spawn('viewers-relay', [BIN.viewer, '--broker', run.brokerUri,
    '--device', DEVICE, '--relay', run.janus.url, '--ice-address',
    JANUS_ADDRESS, '--count', '49', '--no-decode', '--frames', '1',
    '--hold', String(seconds + 40), '--timeout', String(seconds + 90)], {});
  const ok = await poll(() => new Set(cv.logText(1e8).split('\n')
    .filter((l) => l.includes('"first-frame"'))
    .map((l) => JSON.parse(l).viewer)).size >= 49, 60_000, 500);
  check(ok, `not all 49 relayed C viewers got a frame within 60 s:\n${cv.logText(3000)}`);
  const r = await pagePhase(run, base, 1, seconds, run.service,
    'picamrtc via Janus 50', '', false);
  const fps = relayedFps(cv, seconds).sort((a, b) => a - b);
  await run.stop(cv);
  r.cViewerFps = { n: fps.length, min: fps[0], median: fps[fps.length >> 1] };
  log(`relay50: the 49 C viewers' frame rates, min ${fmt(fps[0])}, median ` +
    `${fmt(r.cViewerFps.median)} fps`);
  return r;
}

async function stopViewers(run, viewers) {
  await Promise.all(viewers.map((v) => run.stop(v)));
}

/** Service CPU and RSS with n C viewers; their frame rates. */
async function fanoutPoint(run, n, seconds) {
  const viewers = startCViewers(run, n, seconds + 60, `fan${n}`);
  await waitFirstFrames(viewers, 20_000 + 500 * n);
  await sleep(3000);
  // each viewer's own clock starts at its offer: a window per viewer
  const first = viewers.map(viewerLast);
  const u0 = procUsage(run.service.pid);
  const w0 = Date.now();
  await sleep(seconds * 1000);
  const u1 = procUsage(run.service.pid);
  const wall = (Date.now() - w0) / 1000;
  const fps = viewers.map((v, i) => viewerFps(first[i], viewerLast(v)));
  await stopViewers(run, viewers);
  const r = {
    viewers: n, cpu: 100 * (u1.ticks - u0.ticks) / HZ / wall,
    rssMb: u1.rssKb / 1024, minFps: Math.min(...fps), maxFps: Math.max(...fps),
  };
  log(`fan-out ${n}: CPU ${fmt(r.cpu)} %, RSS ${fmt(r.rssMb)} MB, ` +
    `slowest viewer ${fmt(r.minFps)} fps`);
  await sleep(2000);
  return r;
}

// --- the sender-side breakdown -------------------------------------------

/** Mean per-element latency (ms) and source-to-sink latency from the tracer. */
// elements of the viewers' RTCP and DTLS coming back, not the media path
const RECEIVE_SIDE = /^(nicesrc|dtlssrtpdemux|dtlssrtpdec|dtlsdec|srtpdec|rtpssrcdemux|rtpptdemux|rtpstorage|rtpjitterbuffer|funnel|capsfilter)\d*$/;

function parseTracer(path) {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const el = new Map();
  const pipe = [];
  const reported = new Map();
  for (const line of text.split('\n')) {
    let m = /element-latency, element-id=\(string\)[^,]*, element=\(string\)([^,]+), src=\(string\)[^,]+, time=\(guint64\)(\d+)/.exec(line) ||
      /element-latency, element=\(string\)([^,]+), src=\(string\)[^,]+, time=\(guint64\)(\d+)/.exec(line);
    if (m) {
      const name = m[1];
      if (RECEIVE_SIDE.test(name)) continue;
      const e = el.get(name) || [];
      e.push(Number(m[2]) / 1e6);
      el.set(name, e);
      continue;
    }
    m = /element-reported-latency, .*element=\(string\)([^,]+), live=\(boolean\)\d, min=\(guint64\)(\d+)/.exec(line);
    if (m) { reported.set(m[1].replace(/\d+$/, ''), Number(m[2]) / 1e6); continue; }
    m = /[^-]latency, .*src-element=\(string\)([^,]+), .*sink-element=\(string\)([^,]+), .*time=\(guint64\)(\d+)/.exec(line);
    if (m) pipe.push(Number(m[3]) / 1e6);
  }
  return {
    elements: [...el].map(([name, v]) => ({ name, ...summary(v) }))
      .filter((e) => e.mean >= 0.05).sort((a, b) => b.mean - a.mean),
    pipeline: summary(pipe),
    reported: [...reported].filter(([, v]) => v > 0)
      .map(([name, ms]) => ({ name, ms })),
  };
}

async function breakdownPhase(run, base) {
  await run.stop(run.service);
  const trace = join(run.workdir, 'tracer.log');
  await run.startService('picamrtc-traced', {
    GST_TRACERS: 'latency(flags=pipeline+element+reported)',
    GST_DEBUG: 'GST_TRACER:7', GST_DEBUG_FILE: trace, GST_DEBUG_NO_COLOR: '1',
  });
  const r = await pagePhase(run, base, 1, 10, run.service, 'breakdown');
  await run.stop(run.service);
  await run.startService('picamrtc-2');
  return { browser: r, ...parseTracer(trace) };
}

// --- output ------------------------------------------------------------------

function gnuplot(script) {
  const r = spawnSync('gnuplot', [], { input: script });
  if (r.status !== 0) log(`gnuplot failed: ${String(r.stderr).slice(0, 400)}`);
  return r.status === 0;
}

function plots(res, dir) {
  const cdf = (name, values) => {
    const s = [...values].sort((a, b) => a - b);
    writeFileSync(join(dir, `${name}.dat`),
      s.map((v, i) => `${v.toFixed(2)} ${((i + 1) / s.length).toFixed(4)}`).join('\n') + '\n');
  };
  const series = [['ours1', 'picamrtc, 1 viewer'], ['ours5', 'picamrtc, 5 viewers'],
    ['ours20', 'picamrtc, 20 viewers'], ['aiortc1', 'aiortc, 1 viewer'],
    ['aiortc5', 'aiortc, 5 viewers']].filter(([k]) => res[k]);
  for (const [k] of series) cdf(`cdf-${k}`, res[k].latencies);
  const made = [];
  if (gnuplot(`set terminal pngcairo size 900,520 font "Sans,11"
set output "${join(dir, 'latency-cdf.png')}"
set title "Capture to display latency, 1280x720 30 fps, loopback"
set xlabel "latency (ms)"; set ylabel "fraction of frames"
set grid; set key bottom right; set yrange [0:1]
set xrange [0:${Math.ceil(Math.min(400, Math.max(...series.map(([k]) => res[k].latency.p99 || 0)) * 1.2) / 10) * 10}]
plot ${series.map(([k, t]) => `"${join(dir, `cdf-${k}.dat`)}" using 1:2 with lines lw 2 title "${t}"`).join(', ')}
`)) made.push('latency-cdf.png');
  if (res.fanout && res.fanout.length) {
    writeFileSync(join(dir, 'cpu-ours.dat'),
      res.fanout.map((f) => `${f.viewers} ${f.cpu.toFixed(2)}`).join('\n') + '\n');
    const a = [['aiortc1', 1], ['aiortc5', 5]].filter(([k]) => res[k]);
    writeFileSync(join(dir, 'cpu-aiortc.dat'),
      a.map(([k, n]) => `${n} ${res[k].cpu.toFixed(2)}`).join('\n') + '\n');
    if (gnuplot(`set terminal pngcairo size 900,520 font "Sans,11"
set output "${join(dir, 'cpu-viewers.png')}"
set title "Sender CPU against viewers, 1280x720 30 fps"
set xlabel "viewers"; set ylabel "sender CPU (% of one core)"
set grid; set key top center box opaque; set yrange [0:*]; set xrange [0:*]
plot "${join(dir, 'cpu-ours.dat')}" using 1:2 with linespoints lw 2 pt 7 title "picamrtc (encode once)", \
     "${join(dir, 'cpu-aiortc.dat')}" using 1:2 with linespoints lw 2 pt 5 title "aiortc (encoder per viewer)"
`)) made.push('cpu-viewers.png');
  }
  return made;
}

function markdown(res, made, imgPrefix) {
  const L = [];
  const row = (...c) => L.push(`| ${c.join(' | ')} |`);
  const cfg = `1280x720 30 fps, ${res.seconds} s per 1-viewer phase, ` +
    `${Math.round(res.seconds / 2)} s per multi-viewer phase`;
  L.push(`Run of ${res.date} (${cfg}; ${res.chromium}):`, '');
  row('system, viewers', 'latency p50 (ms)', 'p95', 'p99',
    'slowest viewer fps (decoded / on screen)', 'frames not shown',
    'offer → first frame (ms)', 'sender CPU (%)', 'sender RSS (MB)');
  row('---', '---', '---', '---', '---', '---', '---', '---', '---');
  const rows = [['ours1', 'picamrtc, 1'], ['relay1', 'picamrtc through Janus, 1'],
    ['relay50', 'picamrtc through Janus, 50 (1 page + 49 C viewers)'],
    ['aiortc1', 'aiortc, 1'],
    ['ours5', 'picamrtc, 5'], ['aiortc5', 'aiortc, 5'],
    ['ours20', 'picamrtc, 20 (1 page + 19 C viewers)']];
  for (const [k, name] of rows) {
    const r = res[k];
    if (!r) continue;
    row(name, fmt(r.latency.p50), fmt(r.latency.p95), fmt(r.latency.p99),
      `${fmt(r.minDecodedFps)} / ${fmt(r.minFps)}`,
      r.pages.reduce((a, p) => a + p.framesNotShown, 0),
      fmt(r.pages[0].firstFrameMs, 0), fmt(r.cpu), fmt(r.rssMb));
  }
  L.push('');
  if (res.relay50?.cViewerFps) {
    const c = res.relay50.cViewerFps;
    L.push(`Through Janus with 50 viewers, the ${c.n} C viewers (receiving, ` +
      `counting whole frames without decoding) got min ${fmt(c.min)}, median ` +
      `${fmt(c.median)} fps; the page's numbers are in the table.`, '');
  }
  const ratio = (a, b, k) => (res[a] && res[b] && res[b].latency[k]
    ? (res[a].latency[k] / res[b].latency[k]).toFixed(2) : '–');
  if (res.aiortc1) {
    L.push(`picamrtc / aiortc, latency p50: **${ratio('ours1', 'aiortc1', 'p50')}** ` +
      `with 1 viewer, **${ratio('ours5', 'aiortc5', 'p50')}** with 5; ` +
      `slowest viewer's decoded frame rate with 5: ${fmt(res.ours5?.minDecodedFps)} ` +
      `against ${fmt(res.aiortc5?.minDecodedFps)} fps; sender CPU with 5: ` +
      `${fmt(res.ours5?.cpu)} against ${fmt(res.aiortc5?.cpu)} %.`, '');
  }
  L.push('Receiver side (Chromium getStats per frame over the phase, ' +
    'the mean over the pages; drops, losses and freezes summed):', '');
  row('system, viewers', 'last packet → on screen, p50 (ms)', 'jitter buffer (ms)',
    'decode (ms)', 'processing (ms)', 'frames dropped', 'packets lost', 'freezes');
  row('---', '---', '---', '---', '---', '---', '---', '---');
  for (const [k, name] of rows) {
    const r = res[k];
    if (!r) continue;
    const sum = (f) => r.pages.reduce((a, q) => a + (q[f] || 0), 0);
    const mean = (f) => sum(f) / r.pages.length;
    row(name, fmt(mean('receiveToDisplayMs')), fmt(mean('jitterBufferMs')),
      fmt(mean('decodeMs')), fmt(mean('processingMs')),
      sum('framesDropped'), sum('packetsLost'), sum('freezes'));
  }
  L.push('');
  if (res.breakdown) {
    const b = res.breakdown;
    L.push('Sender side (GStreamer latency tracer, one viewer, 10 s): time a ' +
      'buffer spends in each element of the media path (p50, mean, p95; a ' +
      'queue hands over between threads, so a busy machine shows there), ' +
      'and from the source to the network sink:', '');
    row('element', 'p50 (ms)', 'mean (ms)', 'p95 (ms)');
    row('---', '---', '---', '---');
    for (const e of b.elements.slice(0, 10)) {
      row(e.name, fmt(e.p50, 2), fmt(e.mean, 2), fmt(e.p95, 2));
    }
    row('**source → sink**', fmt(b.pipeline.p50, 2), fmt(b.pipeline.mean, 2),
      fmt(b.pipeline.p95, 2));
    L.push('');
    if (b.reported.length) {
      L.push('Latency the elements report (what the sinks wait for): ' +
        b.reported.map((r) => `${r.name} ${fmt(r.ms, 1)} ms`).join(', ') + '.', '');
    }
  }
  if (res.fanout) {
    L.push('Fan-out (C test viewers, receive without decoding), sender CPU and RSS:', '');
    row('viewers', 'CPU (% of one core)', 'RSS (MB)', 'viewer fps (slowest / fastest)');
    row('---', '---', '---', '---');
    for (const f of res.fanout) {
      row(f.viewers, fmt(f.cpu), fmt(f.rssMb), `${fmt(f.minFps)} / ${fmt(f.maxFps)}`);
    }
    L.push('');
    const one = res.fanout.find((f) => f.viewers === 1);
    const ten = res.fanout.find((f) => f.viewers === 10);
    const twenty = res.fanout.find((f) => f.viewers === 20);
    if (one && ten) {
      L.push(`CPU with 10 viewers / with 1: **${(ten.cpu / one.cpu).toFixed(2)}**; ` +
        `RSS per added viewer (1 → ${twenty ? 20 : 10}): ` +
        `**${(((twenty || ten).rssMb - one.rssMb) / ((twenty || ten).viewers - 1)).toFixed(2)} MB**.`);
    }
    if (res.maxViewers) {
      L.push(`Most viewers with every one at a steady 29-31 fps: **${res.maxViewers.held}**` +
        (res.maxViewers.failedAt ? ` (at ${res.maxViewers.failedAt} a viewer ` +
          `got ${fmt(res.maxViewers.failedFps)} fps)` : ' (the most tried)') + '.');
    }
    L.push('');
  }
  for (const m of made) L.push(`![${m}](${imgPrefix}${m})`, '');
  return L.join('\n');
}

function writeDocs(md, made) {
  const docs = join(SOURCE_ROOT, 'docs', 'benchmarks.md');
  const img = join(SOURCE_ROOT, 'docs', 'img');
  mkdirSync(img, { recursive: true });
  for (const m of made) copyFileSync(join(OUT, m), join(img, m));
  const text = readFileSync(docs, 'utf8');
  const begin = '<!-- latency-bench:begin -->';
  const end = '<!-- latency-bench:end -->';
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  check(i >= 0 && j > i, `${docs} has no ${begin} ... ${end} section`);
  writeFileSync(docs, text.slice(0, i + begin.length) + '\n' + md + '\n' + text.slice(j));
  log(`wrote the results into ${docs} and ${img}`);
}

// --- the run -----------------------------------------------------------------

async function inner() {
  const run = new Run();
  let failed = true;
  process.on('SIGTERM', async () => { await run.teardown(true); process.exit(1); });
  try {
    for (const [k, f] of Object.entries(BIN)) {
      check(existsSync(f), `${f} (${k}) is missing: build first (ninja -C ${opts.build})`);
    }
    const res = { date: new Date().toISOString().slice(0, 10), seconds: opts.seconds };
    await run.startBroker();
    const want = (p) => opts.phases.includes(p);
    // with relay1 the camera is relayed through Janus; the other phases of
    // picamrtc then stay direct (?relay=0)
    if (want('relay1') || want('relay50')) {
      run.janus = await startJanus(run.workdir, 'bench');
    }
    const direct = run.janus ? '&relay=0' : '';
    if (run.janus) run.procs.push(run.janus.proc);
    await run.startService('picamrtc');
    const ours = await run.startGateway();
    run.browser = await launchChromium(BIN.nodeModules);
    res.chromium = `Chromium ${run.browser.version()}`;
    const half = Math.max(5, Math.round(opts.seconds / 2));

    if (want('ours1')) {
      res.ours1 = await pagePhase(run, ours, 1, opts.seconds, run.service,
        'picamrtc 1', direct);
    }
    if (want('relay1')) {
      res.relay1 = await pagePhase(run, ours, 1, opts.seconds, run.service,
        'picamrtc via Janus 1');
      const path = res.relay1.pages[0].path;
      check(path === 'relay', `the relayed page played ${path}, not through Janus`);
    }
    if (want('relay50')) res.relay50 = await relay50Phase(run, ours, half);
    if (want('ours5')) {
      res.ours5 = await pagePhase(run, ours, 5, half, run.service, 'picamrtc 5',
        direct);
    }
    if (want('ours20')) {
      await waitNoViewers(ours);
      const cv = startCViewers(run, 19, half + 40, 'load');
      await waitFirstFrames(cv, 30_000);
      res.ours20 = await pagePhase(run, ours, 1, half, run.service, 'picamrtc 20',
        direct, false);
      await stopViewers(run, cv);
    }
    if (want('breakdown')) res.breakdown = await breakdownPhase(run, ours);
    if (want('fanout')) {
      await waitNoViewers(ours);
      res.fanout = [];
      for (const n of [1, 5, 10, 20]) res.fanout.push(await fanoutPoint(run, n, 10));
      res.maxViewers = { held: 20 };
      for (const n of [30, 40, 50, 64]) {
        const f = await fanoutPoint(run, n, 10);
        res.fanout.push(f);
        // more than 31 fps over the window is a sender that fell behind
        // and caught up in bursts, not a steady 30
        if (f.minFps < 29 || f.maxFps > 31) {
          res.maxViewers = { held: res.maxViewers.held, failedAt: n,
            failedFps: f.minFps < 29 ? f.minFps : f.maxFps };
          break;
        }
        res.maxViewers = { held: n };
      }
    }
    await run.stop(run.service);

    if (want('aiortc1') || want('aiortc5')) {
      const theirs = await run.startStreamer();
      if (want('aiortc1')) {
        res.aiortc1 = await pagePhase(run, theirs, 1, opts.seconds, run.streamer,
          'aiortc 1', '&signalling=bulk');
      }
      if (want('aiortc5')) {
        res.aiortc5 = await pagePhase(run, theirs, 5, half, run.streamer,
          'aiortc 5', '&signalling=bulk');
      }
    }

    mkdirSync(OUT, { recursive: true });
    writeFileSync(join(OUT, 'results.json'), JSON.stringify(res, null, 1));
    const made = plots(res, OUT);
    const md = markdown(res, made, opts.docs ? 'img/' : '');
    writeFileSync(join(OUT, 'results.md'), md + '\n');
    console.log(md);
    log(`results in ${OUT}`);
    if (opts.docs) writeDocs(md, made);

    // what no machine should show, even a loaded one
    // (picamrtc only: the baseline is someone else's code on a busy machine)
    for (const k of ['ours1', 'relay1'].filter((p) => res[p])) {
      const r = res[k];
      check(r.latency.n >= opts.seconds * 5, `${k}: only ${r.latency.n} ` +
        `stamped frames in ${opts.seconds} s`);
      check(r.latency.p50 > 0 && r.latency.p95 < 1000, `${k}: latency p50 ` +
        `${fmt(r.latency.p50)} ms, p95 ${fmt(r.latency.p95)} ms: not a live picture`);
    }
    failed = false;
  } catch (e) {
    console.log(`FAIL latency benchmark: ${e instanceof Failure ? e.message : e.stack}`);
  } finally {
    await run.teardown(failed);
  }
  console.log(failed ? 'FAIL latency benchmark' : 'PASS latency benchmark');
  process.exit(failed ? 1 : 0);
}

if (process.env[NS_MARK]) {
  inner();
} else {
  try {
    ensureNodeModules(BIN.nodeModules);
    const r = spawnSync(PYTHON, ['-c', 'import aiortc, aiohttp, numpy']);
    check(r.status === 0, `${PYTHON} lacks aiortc, aiohttp or numpy: ` +
      'apt-get install python3-aiortc python3-aiohttp python3-numpy');
  } catch (e) {
    console.log(`FAIL latency benchmark: ${e.message}`);
    process.exit(1);
  }
  reexecInNamespace(SCRIPT, process.argv.slice(2), NS_MARK, 'latency benchmark');
}
