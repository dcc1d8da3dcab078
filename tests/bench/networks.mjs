#!/usr/bin/env node
// The real-networks benchmark (issue 9, docs/benchmarks.md "Real
// networks"): headless Debian Chromium watches the 1280x720 30 fps test
// pattern through the web client, from picamrtc (service + gateway) and
// from the aiortc baseline (tests/bench/aiortc-streamer.py), while the
// link is impaired inside the private network namespace: random UDP loss
// and per-viewer policing with nftables, a bottleneck with tc tbf on lo.
// There is no netem here, so no delay emulation: the round trip stays
// under a millisecond and the results say so.
//
//   node tests/bench/networks.mjs [--build DIR] [--seconds 20] [--docs]
//        [--rows clean,loss3,...] [--systems picamrtc,aiortc] [--fec auto|off]
//   node tests/bench/networks.mjs --smoke   # clean and 3 % loss, picamrtc, CI
//
// Rows (each for both systems, one page unless said):
//   clean    no impairment: the reference
//   loss3    3 % of UDP packets dropped at random, each way
//   loss10   10 % likewise
//   bw1m     tc tbf 1 Mbit/s on lo for SECONDS: frame rate in its first
//            3 s and after, frozen time, when the picture first got
//            smaller, then how long until it is back at 720p and 25 fps
//            once the bottleneck goes (watched for 20 s)
//   bw500k   tc tbf 500 kbit/s for SECONDS
//   mixed    two pages; after SECONDS/2 (at least 5) with both unimpaired,
//            page A's UDP port (Chromium's selected candidate pair) is
//            policed to 1 Mbit/s (nft limit rate over 125 kbytes/second)
//   latency  capture -> display p50 at 3 % loss against clean (runs both)
//   cpu      sender CPU in the mixed row (A policed, so on the small
//            rendition) against the same with the service run with
//            --renditions 1 (picamrtc; a service without that option, and
//            aiortc: against both pages unimpaired)
// Every window starts when its impairment does. What a page experiences
// comes from Chromium's inbound-rtp statistics, sampled every 500 ms:
// frame rate, freezes, NACKs, RTX, key frames, and the frame size over
// time (seconds on 720 lines and below, switches; results.json keeps each
// page's sizes with the time they began).
// Writes results.json, results.md and a plot of the bottleneck rows
// (gnuplot) into BUILD/bench/networks; --docs also puts the tables into
// docs/benchmarks.md and the plot into docs/img/. The smoke run (5 s per row)
// fails only on what no machine should show: a clean row without a
// picture, random loss that dropped nothing. --fec sets the service's
// forward error correction (--fec=true for auto, --fec=false for off;
// unset: its default), for measuring it with and without (docs/networks.md,
// "FEC"). Exit 0 on success, 1 on failure.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import {
  check, launchChromium, log, procUsage, reexecInNamespace, runCase, sleep,
} from '../browser/harness.mjs';
import {
  BenchSystems, DEVICE, HZ, Link, PAGE_STATS_SCRIPT, SAMPLE_MS, Sampler,
  benchBinaries, benchPreflight, closeViewerPages, fmt, noViewersLeft,
  openViewerPages, percentile, windowOf, writeDocsSection,
} from './systems.mjs';

const NS_MARK = 'PCR_NETWORKS_IN_NETNS';
const SCRIPT = fileURLToPath(import.meta.url);
const SOURCE_ROOT = resolve(dirname(SCRIPT), '..', '..');
const ROWS = ['clean', 'loss3', 'loss10', 'bw1m', 'bw500k', 'mixed',
  'latency', 'cpu'];
const SYSTEMS = ['picamrtc', 'aiortc'];
const RECOVERY_WATCH_S = 20;

function usage(why) {
  if (why) console.error(`networks.mjs: ${why}`);
  console.error('usage: networks.mjs [--build DIR] [--seconds N] [--docs] ' +
    `[--smoke] [--rows ${ROWS.join(',')}] [--systems ${SYSTEMS.join(',')}]`);
  process.exit(2);
}

function listOption(value, known, what) {
  const list = String(value || '').split(',').filter(Boolean);
  const bad = list.find((x) => !known.includes(x));
  if (bad || !list.length) usage(`unknown ${what} ${bad || '(none)'} (${known.join(', ')})`);
  return list;
}

function options(argv) {
  let v;
  try {
    ({ values: v } = parseArgs({ args: argv, strict: true, options: {
      build: { type: 'string' }, seconds: { type: 'string' },
      smoke: { type: 'boolean' }, docs: { type: 'boolean' },
      rows: { type: 'string' }, systems: { type: 'string' },
      fec: { type: 'string' },
    } }));
  } catch (e) {
    usage(e.message);
  }
  const o = {
    build: resolve(v.build || process.env.PICAMRTC_BUILD_ROOT ||
      join(SOURCE_ROOT, 'build')),
    seconds: v.smoke ? 5 : Number(v.seconds ?? 20), docs: Boolean(v.docs),
  };
  if (!(o.seconds >= 5 && o.seconds <= 600)) usage('--seconds must be 5 .. 600');
  if (v.fec !== undefined && !['auto', 'off'].includes(v.fec)) usage('--fec must be auto or off');
  // the service's own option: --fec=true is auto, --fec=false off
  o.serviceArgs = v.fec === undefined ? [] : [`--fec=${v.fec === 'auto'}`];
  o.fec = v.fec ?? 'default';
  // --smoke: clean and 3 % loss, picamrtc, unless said otherwise
  const rows = v.rows ? listOption(v.rows, ROWS, 'row')
    : v.smoke ? ['clean', 'loss3'] : ROWS;
  o.systems = v.systems ? listOption(v.systems, SYSTEMS, 'system')
    : v.smoke ? ['picamrtc'] : SYSTEMS;
  // the derived rows are read from the measured ones
  const need = new Set(rows);
  if (need.has('latency')) need.add('clean').add('loss3');
  if (need.has('cpu')) need.add('mixed');
  o.rows = ROWS.filter((r) => need.has(r));
  return o;
}

const opts = options(process.argv.slice(2));
const BIN = benchBinaries(opts.build);
const OUT = join(opts.build, 'bench', 'networks');

/** [seconds since t0, width, height] whenever the frame size changed. */
function sizesOf(series, t0) {
  const out = [];
  for (const x of series) {
    const last = out[out.length - 1];
    if (x.v.frameHeight && (!last || last[2] !== x.v.frameHeight ||
        last[1] !== x.v.frameWidth))
      out.push([Number(((x.t - t0) / 1000).toFixed(1)), x.v.frameWidth, x.v.frameHeight]);
  }
  return out;
}

/** [seconds since t0, decoded fps over the last second] of a series. */
function timeline(series, t0) {
  const out = [];
  for (let j = 2; j < series.length; j++) {
    const [a, b] = [series[j - 2], series[j]];
    out.push([(b.t - t0) / 1000,
      (b.v.framesDecoded - a.v.framesDecoded) * 1000 / (b.at - a.at)]);
  }
  return out;
}

/** n pages playing from base, each with the counters of PAGE_STATS_SCRIPT. */
function openPages(systems, base, n, query) {
  return openViewerPages(systems.browser, `${base}/?device=${DEVICE}${query}`,
    n, PAGE_STATS_SCRIPT, async () => {
      const s = await window.__net();
      return s && s.v.framesDecoded > 0;
    });
}

/** Capture -> display latencies (ms) of page's stamped frames since cleared. */
async function latencies(page) {
  return page.evaluate(() => window.picamrtc.latencySamples.map((s) => s.latencyMs));
}

// --- the rows -------------------------------------------------------------------

/** How each row impairs the link and what the issue's target asks. */
const CONDITIONS = {
  clean: { title: 'clean', apply: () => {} },
  loss3: { title: '3 % random UDP loss each way', apply: (l) => l.loss(3) },
  loss10: { title: '10 % random UDP loss each way', apply: (l) => l.loss(10) },
  bw1m: { title: '1 Mbit/s bottleneck (tbf on lo)', apply: (l) => l.shape('1mbit') },
  bw500k: { title: '500 kbit/s bottleneck (tbf on lo)', apply: (l) => l.shape('500kbit') },
};

/** One page under one condition; the window starts with the impairment. */
async function singleRow(ctx, row) {
  const { systems, link, base, proc, query, system } = ctx;
  const pages = await openPages(systems, base, 1, query);
  const sampler = new Sampler(pages);
  try {
    await sleep(2000);
    CONDITIONS[row].apply(link);
    await pages[0].evaluate(() => window.picamrtc.clearLatencySamples());
    const t0 = Date.now();
    const u0 = procUsage(proc.pid);
    await watch(`${system} ${row}`, opts.seconds);
    const u1 = procUsage(proc.pid);
    const t1 = Date.now();
    const lat = (await latencies(pages[0])).sort((a, b) => a - b);
    const dropped = link.dropped();
    link.clear();
    const r = {
      row, system, dropped, cpu: cpuOf(u0, u1, t1 - t0),
      latencyP50: percentile(lat, 50), latencyN: lat.length,
      pages: [windowOf(sampler.series[0], t0, t1)],
      sizes: [sizesOf(sampler.series[0], t0)],
    };
    if (row === 'bw1m' || row === 'bw500k') {
      r.first3 = windowOf(sampler.series[0], t0, t0 + 3000);
      r.after3 = windowOf(sampler.series[0], t0 + 3000, t1);
      r.recovery = await recovery(sampler, t1);
      r.whole = windowOf(sampler.series[0], t0, r.recovery.watchedUntil);
      await sleep(Math.max(0, t1 + 5000 - Date.now())); // for the plot
      r.bottleneckS = (t1 - t0) / 1000;
      r.timeline = timeline(sampler.series[0], t0);
      r.sizes = [sizesOf(sampler.series[0], t0)];
    }
    check(r.pages[0], `${system} ${row}: no statistics from the page`);
    return r;
  } finally {
    link.clear();
    await sampler.stop();
    await closeViewerPages(pages);
  }
}

async function watch(label, seconds) {
  for (let left = seconds; left > 0; left -= 10) {
    await sleep(Math.min(10, left) * 1000);
    if (left > 10) log(`${label}: ${seconds - left + 10} of ${seconds} s`);
  }
}

function cpuOf(u0, u1, ms) {
  return u0 && u1 ? 100 * (u1.ticks - u0.ticks) / HZ / (ms / 1000) : null;
}

/** Whether every sampling step from t0 to t1 decoded at least fps a second. */
function steady(series, t0, t1, fps) {
  const s = series.filter((x) => x.t >= t0 - SAMPLE_MS / 2 && x.t <= t1 + SAMPLE_MS / 2);
  if (s.length < 3) return false;
  for (let j = 1; j < s.length; j++) {
    const n = s[j].v.framesDecoded - s[j - 1].v.framesDecoded;
    if (n * 1000 / (s[j].at - s[j - 1].at) < fps) return false;
  }
  return true;
}

/**
 * After the bottleneck went at `gone`: seconds until a 2 s stretch shows
 * 720 lines and at least 25 decoded fps in every 500 ms of it (its start;
 * a burst of late frames decoded at once does not count), or null when
 * none within RECOVERY_WATCH_S.
 */
async function recovery(sampler, gone) {
  const deadline = gone + RECOVERY_WATCH_S * 1000;
  for (;;) {
    const now = Date.now();
    for (let t = gone; t + 2000 <= now; t += SAMPLE_MS) {
      const w = windowOf(sampler.series[0], t, t + 2000);
      if (w && w.minHeight >= 720 && steady(sampler.series[0], t, t + 2000, 25)) {
        return { backAfterS: (t - gone) / 1000, watchedUntil: t + 2000 };
      }
    }
    if (now >= deadline) return { backAfterS: null, watchedUntil: now };
    await sleep(SAMPLE_MS);
  }
}

/**
 * Two pages; both unimpaired for a while (the sender with one rendition),
 * then page A's port policed to 1 Mbit/s for SECONDS.
 */
async function mixedRow(ctx, row = 'mixed') {
  const { systems, link, base, proc, query, system } = ctx;
  const pages = await openPages(systems, base, 2, query);
  const sampler = new Sampler(pages);
  try {
    await sleep(2000);
    const c0 = Date.now();
    const u0 = procUsage(proc.pid);
    await watch(`${system} mixed (both clean)`, Math.max(5, Math.round(opts.seconds / 2)));
    const u1 = procUsage(proc.pid);
    const c1 = Date.now();
    const port = sampler.last(0) && sampler.last(0).port;
    check(port, `${system} mixed: page A has no selected candidate pair`);
    link.police(port, 125);
    const t0 = Date.now();
    const u2 = procUsage(proc.pid);
    await watch(`${system} mixed (A policed)`, opts.seconds);
    const u3 = procUsage(proc.pid);
    const t1 = Date.now();
    const dropped = link.dropped();
    link.clear();
    const r = {
      row, system, dropped, policedPort: port,
      cpu: cpuOf(u2, u3, t1 - t0), cpuBothClean: cpuOf(u0, u1, c1 - c0),
      clean: [0, 1].map((i) => windowOf(sampler.series[i], c0, c1)),
      pages: [0, 1].map((i) => windowOf(sampler.series[i], t0, t1)),
      sizes: [0, 1].map((i) => sizesOf(sampler.series[i], c0)),
    };
    check(r.pages.every(Boolean), `${system} mixed: no statistics from a page`);
    return r;
  } finally {
    link.clear();
    await sampler.stop();
    await closeViewerPages(pages);
  }
}

// --- targets (issue 9) -------------------------------------------------------

const pass = (ok) => (ok ? 'pass' : '**fail**');

/** [what was measured against the target, 'pass' | '**fail**' | '–']. */
function target(r) {
  const p = r.pages[0];
  switch (r.row) {
  case 'loss3':
  case 'loss10': {
    const [fps, frozen] = r.row === 'loss3' ? [28, 0.5] : [25, 2];
    return [`≥ ${fps} fps, ≤ ${frozen} s frozen/min: ${fmt(p.fps)}, ${fmt(p.frozenPerMin, 2)}`,
      pass(p.fps >= fps && p.frozenPerMin <= frozen)];
  }
  case 'bw1m': {
    const back = r.recovery.backAfterS;
    const frozen = r.whole ? r.whole.frozenS : null;
    return [`≥ 25 fps within 3 s: ${fmt(r.after3?.fps)} from 3 s on ` +
      `(${fmt(r.first3?.fps)} before); ≤ 1 s frozen in all: ${fmt(frozen)} s; ` +
      `back on 720p at 25 fps ≤ 15 s after it goes: ${back === null
        ? `not within ${RECOVERY_WATCH_S} s` : `${fmt(back)} s`}`,
    pass(r.after3?.fps >= 25 && frozen <= 1 && back !== null && back <= 15)];
  }
  case 'bw500k':
    return [`≥ 20 fps: ${fmt(p.fps)}`, pass(p.fps >= 20)];
  case 'mixed': {
    const [a, b] = r.pages;
    return [`slow A ≥ 25 fps: ${fmt(a.fps)} (at ${a.height}p); other B ` +
      `≥ 1.8 Mbit/s, 30 fps at 720p: ${fmt(b.mbps, 2)}, ${fmt(b.fps)}, ` +
      `${b.minHeight}p`,
    pass(a.fps >= 25 && b.minHeight >= 720 && b.mbps >= 1.8 && b.fps >= 29)];
  }
  case 'cpu':
    return ['(CPU reference: one rendition)', '–'];
  default:
    return ['(reference)', '–'];
  }
}

// --- output -------------------------------------------------------------------

function pageCells(p) {
  return [fmt(p.fps), p.freezes ?? '–', fmt(p.frozenPerMin, 2), fmt(p.longestStallS),
    p.nacks ?? '–', (p.plis ?? 0) + (p.firs ?? 0), p.rtx ?? '–', p.keyFrames ?? '–',
    p.height ?? '–', `${fmt(p.onHighS)} / ${fmt(p.onLowS)}`, p.switches ?? '–',
    fmt(p.mbps, 2)];
}

const TITLES = {
  mixed: 'two pages, only A policed to 1 Mbit/s',
  cpu: 'the same, service with one rendition',
};

function markdown(res) {
  const L = [];
  const row = (...c) => L.push(`| ${c.join(' | ')} |`);
  L.push(`Run of ${res.date} (1280x720 30 fps test pattern, ${res.seconds} s ` +
    `per row, one headless Chromium page unless said; ${res.chromium}; ` +
    'loss and policing with nftables, bottlenecks with tc tbf on lo; **no ' +
    'delay emulation**: the round trip stays below a millisecond; picamrtc ' +
    `FEC: ${res.fec}):`, '');
  row('condition', 'system', 'decoded fps', 'freezes', 'frozen (s/min)',
    'longest stall (s)', 'NACKs sent', 'PLIs + FIRs sent', 'RTX packets received',
    'key frames decoded', 'frame height at the end', 's on 720p / below',
    'size switches', 'received Mbit/s', 'packets dropped by the impairment',
    'sender CPU (%)', 'target (issue 9): measured', 'result');
  row(...Array(18).fill('---'));
  for (const name of ROWS) {
    for (const r of res.rows.filter((x) => x.row === name)) {
      const [want, ok] = target(r);
      if (name === 'mixed' || name === 'cpu') {
        const [a, b] = r.pages;
        row(TITLES[name], `${r.system} A`,
          ...pageCells(a), r.dropped, fmt(r.cpu), want, ok);
        row('', `${r.system} B`, ...pageCells(b), '', '', '', '');
        continue;
      }
      row(name === 'clean' ? 'clean' : CONDITIONS[name].title, r.system,
        ...pageCells(r.pages[0]), r.dropped, fmt(r.cpu), want, ok);
    }
  }
  L.push('');
  const derived = [];
  for (const system of res.systems) {
    const of = (row) => res.rows.find((x) => x.row === row && x.system === system);
    const clean = of('clean');
    const loss = of('loss3');
    if (res.wanted.includes('latency') && clean && loss) {
      const ratio = loss.latencyP50 / clean.latencyP50;
      // the few frames of a frozen picture are no measure of its latency
      const enough = loss.latencyN >= 5 * res.seconds;
      derived.push(['capture → display p50 (ms), clean → 3 % loss', system,
        `${fmt(clean.latencyP50)} (${clean.latencyN} frames)`,
        `${fmt(loss.latencyP50)} (${loss.latencyN} frames)`, fmt(ratio, 2),
        '≤ 1.5 ×', !Number.isFinite(ratio) ? '–' : enough ? pass(ratio <= 1.5)
          : '**fail** (under 5 stamped frames a second shown)']);
    }
    const mixed = of('mixed');
    const one = of('cpu');
    if (res.wanted.includes('cpu') && mixed) {
      // both renditions are in use only while A is sent a smaller picture:
      // most of the window (a rate probe may have A on 720p at its end)
      const [a, b] = mixed.pages;
      const two = a.onLowS > a.onHighS && b.onHighS > b.onLowS;
      const sizes = `A ${fmt(a.onLowS)} s below 720p, ${fmt(a.onHighS)} s ` +
        `on it; B at ${b.height}p`;
      if (one) {
        const ratio = mixed.cpu / one.cpu;
        derived.push(['sender CPU (%), A policed: --renditions 1 → 2', system,
          fmt(one.cpu), `${fmt(mixed.cpu)} (${sizes})`, fmt(ratio, 2),
          '≤ 1.4 ×', two ? pass(ratio <= 1.4) : '**fail** (A not mostly on the small rendition)']);
      } else {
        const ratio = mixed.cpu / mixed.cpuBothClean;
        derived.push(['sender CPU (%), two pages clean → A policed', system,
          fmt(mixed.cpuBothClean), `${fmt(mixed.cpu)} (${sizes})`, fmt(ratio, 2),
          '≤ 1.4 × one rendition', system === 'picamrtc' && !res.renditionsOption
            ? '– (TODO: the service has no --renditions)' : '– (one rendition only)']);
      }
    }
  }
  if (derived.length) {
    row('measure', 'system', 'reference', 'impaired', 'ratio', 'target', 'result');
    row(...Array(7).fill('---'));
    for (const d of derived) row(...d);
    L.push('');
  }
  const bw = res.rows.filter((x) => x.recovery);
  if (bw.length) {
    L.push('Bottlenecks over time (decoded fps in the first 3 s / after; ' +
      'frozen from the start until the picture was back or the watch ended; ' +
      'when the frame first got smaller than 720 lines; the frame sizes the ' +
      'page decoded and when (s since the bottleneck started); ' +
      'back at 720p and ≥ 25 fps in every 500 ms of 2 s after the bottleneck went):', '');
    row('condition', 'system', 'fps first 3 s', 'fps after', 'frozen in all (s)',
      'below 720p after (s)', 'frame sizes', 'back after (s)');
    row(...Array(8).fill('---'));
    for (const r of bw) {
      row(CONDITIONS[r.row].title, r.system, fmt(r.first3?.fps), fmt(r.after3?.fps),
        fmt(r.whole?.frozenS), fmt(r.pages[0].lowAfterS),
        r.sizes[0].map(([t, , h]) => `${h}p at ${fmt(t)}`).join(', ') || '–',
        r.recovery.backAfterS === null
          ? `not within ${RECOVERY_WATCH_S}` : fmt(r.recovery.backAfterS));
    }
    L.push('');
  }
  const rtxNull = res.rows.some((r) => r.pages.some((p) => p.rtx === null));
  if (rtxNull) {
    L.push('RTX packets "–": Chromium reported no retransmittedPacketsReceived ' +
      'in that row (it leaves the counter out until a retransmission has ' +
      'arrived over a negotiated RTX stream).', '');
  }
  return L.join('\n');
}

/** The bottleneck rows' frame rate over time (gnuplot); the PNG's name or null. */
function plot(res) {
  const rows = res.rows.filter((r) => r.timeline);
  if (!rows.length) return null;
  const name = 'networks-bottleneck.png';
  const lines = rows.map((r) => {
    const dat = join(OUT, `timeline-${r.system}-${r.row}.dat`);
    writeFileSync(dat, r.timeline.map(([t, f]) => `${t.toFixed(2)} ${f.toFixed(2)}`)
      .join('\n') + '\n');
    return `"${dat}" using 1:2 with lines lw 2 title "${r.system}, ${CONDITIONS[r.row].title}"`;
  });
  const g = spawnSync('gnuplot', [], { input: `set terminal pngcairo size 900,520 font "Sans,11"
set output "${join(OUT, name)}"
set title "Decoded frame rate through a bottleneck (Chromium, 1 s steps; shaded: the bottleneck)"
set xlabel "seconds since the bottleneck started"; set ylabel "decoded fps"
set grid; set key outside bottom center horizontal; set yrange [0:*]
set object 1 rect from first 0, graph 0 to first ${rows[0].bottleneckS}, graph 1 fc rgb "#eeeeee" fs solid noborder behind
plot ${lines.join(', ')}
` });
  if (g.status !== 0) {
    log(`gnuplot failed: ${String(g.stderr || g.error).slice(0, 400)}`);
    return null;
  }
  return name;
}

// --- the run ------------------------------------------------------------------

/**
 * The rows of one system; the cpu row (the mixed row again, the service
 * restarted with one rendition by ctx.oneRendition) comes last, when the
 * system has that option.
 */
async function rowsOf(ctx, res) {
  for (const row of opts.rows) {
    if (row === 'latency' || (row === 'cpu' && !ctx.oneRendition)) continue;
    await noViewersLeft(ctx.base);
    log(`${ctx.system}: ${row}`);
    let r;
    if (row === 'cpu') {
      ctx.proc = await ctx.oneRendition();
      r = await mixedRow(ctx, 'cpu');
    } else {
      r = row === 'mixed' ? await mixedRow(ctx) : await singleRow(ctx, row);
    }
    const [want, ok] = target(r);
    log(`${ctx.system} ${row}: ${r.pages.map((p) => `${fmt(p.fps)} fps, ` +
      `${fmt(p.frozenS)} s frozen, ${p.nacks} NACKs, ${p.plis}+${p.firs} PLI+FIR, ` +
      `${p.rtx} RTX, ${p.keyFrames} key frames, ${p.height}p, ` +
      `${p.switches} size switches, ${fmt(p.mbps, 2)} Mbit/s`).join('; ')}; ` +
      `${r.dropped} dropped; CPU ${fmt(r.cpu)} %; ${want}: ${ok}`);
    res.rows.push(r);
  }
}

/** Runs the rows and writes the results; a summary line for runCase. */
async function body(systems, link) {
  for (const [k, f] of Object.entries(BIN)) {
    check(existsSync(f), `${f} (${k}) is missing: build first (ninja -C ${opts.build})`);
  }
  const res = {
    date: new Date().toISOString().slice(0, 10), seconds: opts.seconds,
    systems: opts.systems, wanted: opts.rows, fec: opts.fec, rows: [],
  };
  const broker = await systems.broker();
  systems.browser = await launchChromium(BIN.nodeModules);
  res.chromium = `Chromium ${systems.browser.version()}`;
  if (opts.systems.includes('picamrtc')) {
    const proc = await systems.service(broker, 'picamrtc', {}, opts.serviceArgs);
    const base = await systems.gateway(broker);
    // --renditions: the service's option since it builds a small rendition
    res.renditionsOption = /--renditions\b/.test(String(spawnSync(BIN.service,
      ['--help']).stdout));
    const ctx = { systems, link, base, proc, query: '', system: 'picamrtc' };
    if (res.renditionsOption) {
      ctx.oneRendition = async () => {
        await systems.stop(ctx.proc);
        return systems.service(broker, 'picamrtc-renditions-1', {},
          ['--renditions', '1', ...opts.serviceArgs]);
      };
    }
    await rowsOf(ctx, res);
    await systems.stop(ctx.proc);
  }
  if (opts.systems.includes('aiortc')) {
    const [proc, base] = await systems.streamer();
    await rowsOf({ systems, link, base, proc, query: '&signalling=bulk',
      system: 'aiortc' }, res);
    await systems.stop(proc);
  }

  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, 'results.json'), JSON.stringify(res, null, 1));
  const made = plot(res);
  const md = markdown(res) +
    (made ? `\n![${made}](${opts.docs ? 'img/' : ''}${made})\n` : '');
  writeFileSync(join(OUT, 'results.md'), md + '\n');
  console.log(md);
  log(`results in ${OUT}`);
  if (opts.docs) writeDocsSection('networks-bench', md, made ? [made] : [], OUT);

  // What no machine should show, however loaded: picamrtc without a
  // picture on the clean link, random loss that dropped nothing (a
  // bottleneck may drop nothing when the sender stays under it).
  for (const r of res.rows) {
    if (r.row === 'clean' && r.system === 'picamrtc') {
      check(r.pages[0].fps >= 5, `picamrtc clean: ${fmt(r.pages[0].fps)} ` +
        'decoded fps: no live picture');
    }
    if (r.row === 'loss3' || r.row === 'loss10') {
      check(r.dropped > 0, `${r.system} ${r.row}: the random loss dropped nothing`);
    }
  }
  const passed = res.rows.filter((r) => target(r)[1] === 'pass').length;
  const judged = res.rows.filter((r) => target(r)[1] !== '–').length;
  return `${res.rows.length} rows measured, ${passed} of ${judged} targets met`;
}

if (process.env[NS_MARK]) {
  const systems = new BenchSystems(BIN);
  const link = new Link();
  // generous: every row twice its window plus start-up and recovery
  const limitMs = (opts.systems.length * opts.rows.length *
    (2 * opts.seconds + RECOVERY_WATCH_S + 30) + 120) * 1000;
  runCase('networks benchmark', limitMs, () => body(systems, link), async (failed) => {
    try { link.clear(); } catch { /* the namespace goes with the run */ }
    await systems.teardown(failed);
  });
} else {
  benchPreflight(BIN, 'networks benchmark', [['nft', '--version', 'nftables'],
    ['tc', '-V', 'iproute2']], opts.systems.includes('aiortc'));
  reexecInNamespace(SCRIPT, process.argv.slice(2), NS_MARK, 'networks benchmark');
}
