// The systems a benchmark watches, inside the namespace that
// tests/browser/harness.mjs re-executes it in: its own mosquitto, the
// picamrtc service on the stamped 1280x720 30 fps test pattern, the
// gateway with the web client, and the aiortc baseline
// (aiortc-streamer.py); the web client's pages in headless Chromium;
// impairments of the namespace's link and Chromium's statistics sampled
// from the pages; docs/benchmarks.md's generated sections. Used by
// networks.mjs and tests/browser/networks.mjs; latency.mjs carries older copies of the same (its Run class,
// openPages, closePages, writeDocs) and could use these.

import { spawnSync } from 'node:child_process';
import {
  copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Proc, check, ensureNodeModules, freePort, log, poll, sleep, tcpOpen,
} from '../browser/harness.mjs';

export const DEVICE = 'cam1';
export const PYTHON = '/usr/bin/python3'; // Debian's, where python3-aiortc is
export const HZ = Number(spawnSync('getconf', ['CLK_TCK']).stdout) || 100;
const SOURCE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The programs a benchmark runs, from build directory `build`. */
export function benchBinaries(build) {
  return {
    service: join(build, 'src', 'picamrtc', 'picamrtc'),
    gateway: join(build, 'src', 'gateway', 'picamrtc-gateway'),
    plugins: join(build, 'plugins', 'mqttwebrtc'),
    nodeModules: join(build, 'tests', 'browser'),
    streamer: join(SOURCE_ROOT, 'tests', 'bench', 'aiortc-streamer.py'),
    www: join(SOURCE_ROOT, 'data', 'www'),
  };
}

/**
 * Before re-executing in the namespace: playwright-core in the build tree,
 * the tools [command, flag, Debian package] answering, and Debian's
 * aiortc when the baseline runs. Prints "FAIL label: why" and exits 1
 * when something is missing.
 */
export function benchPreflight(bin, label, tools, aiortc) {
  try {
    ensureNodeModules(bin.nodeModules);
    for (const [tool, flag, pkg] of tools) {
      check(!spawnSync(tool, [flag]).error, `${tool} is missing: apt-get install ${pkg}`);
    }
    if (aiortc) {
      const r = spawnSync(PYTHON, ['-c', 'import aiortc, aiohttp, numpy']);
      check(r.status === 0, `${PYTHON} lacks aiortc, aiohttp or numpy: ` +
        'apt-get install python3-aiortc python3-aiohttp python3-numpy');
    }
  } catch (e) {
    console.log(`FAIL ${label}: ${e.message}`);
    process.exit(1);
  }
}

/** Nearest-rank percentile of an ascending array; null when empty. */
export function percentile(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.ceil(p / 100 * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, i))];
}

/** A number with d decimals, '–' for none. */
export const fmt = (v, d = 1) => (v === null || v === undefined ||
  Number.isNaN(v) ? '–' : Number(v).toFixed(d));

/**
 * Child processes of one benchmark run, their logs in one temporary
 * directory (kept when the run failed), and the browser.
 */
export class BenchSystems {
  constructor(bin) {
    this.bin = bin;
    this.workdir = mkdtempSync(join(tmpdir(), 'pcr-bench-'));
    this.procs = [];
    this.browser = null;
  }

  spawn(name, argv, env) {
    const p = new Proc(name, argv, this.workdir, env);
    this.procs.push(p);
    return p;
  }

  /** Waits up to 20 s for `port` to accept; fails when proc exits first. */
  async listening(port, proc) {
    const ok = await poll(async () => {
      check(proc.alive(), `${proc.name} exited at start-up (${proc.code}):\n` +
        proc.logText(3000));
      return tcpOpen(port);
    }, 20_000, 100);
    check(ok, `${proc.name} does not accept connections on port ${port}`);
  }

  async broker() {
    const port = await freePort();
    const conf = join(this.workdir, 'mosquitto.conf');
    // inside unshare -r mosquitto is root and cannot drop to its own user
    writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\n` +
      'user root\npersistence false\n');
    await this.listening(port, this.spawn('mosquitto', ['mosquitto', '-c', conf]));
    this.brokerPort = port;
    return `mqtt://127.0.0.1:${port}`;
  }

  /**
   * The camera service on the stamped test pattern, once it is online;
   * args are more of its options.
   */
  async service(brokerUri, name = 'picamrtc', env = {}, args = []) {
    const p = this.spawn(name, [this.bin.service, '--source', 'test',
      '--latency-stamp', '--width', '1280', '--height', '720',
      '--framerate', '30', '--broker', brokerUri, '--device', DEVICE,
      '--ice-address', '127.0.0.1', '--max-viewers', '64',
      '--idle-stop-seconds', '30', ...args], { GST_PLUGIN_PATH: this.bin.plugins, ...env });
    const online = await poll(() => {
      check(p.alive(), `${name} exited (${p.code}):\n${p.logText(3000)}`);
      const r = spawnSync('mosquitto_sub', ['-p', String(this.brokerPort),
        '-t', `picamrtc/${DEVICE}/status`, '-C', '1', '-W', '2']);
      return /"online"/.test(String(r.stdout));
    }, 20_000, 100);
    check(online, `${name} never published its status online`);
    return p;
  }

  /** The gateway serving the web client; its base URL. */
  async gateway(brokerUri, args = []) {
    const port = await freePort();
    await this.listening(port, this.spawn('gateway', [this.bin.gateway,
      '--broker', brokerUri, '--listen', `127.0.0.1:${port}`,
      '--www', this.bin.www, '--device', DEVICE, ...args]));
    return `http://127.0.0.1:${port}`;
  }

  /** The aiortc baseline serving the same web client; [proc, base URL]. */
  async streamer() {
    const port = await freePort();
    const p = this.spawn('aiortc-streamer', [PYTHON, this.bin.streamer,
      '--www', this.bin.www, '--listen', `127.0.0.1:${port}`,
      '--device', DEVICE]);
    await this.listening(port, p);
    return [p, `http://127.0.0.1:${port}`];
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
    // PCR_BENCH_KEEP_LOGS=1 keeps a good run's logs too (to read the
    // service's GST_DEBUG output)
    if (!failed && !process.env.PCR_BENCH_KEEP_LOGS) {
      rmSync(this.workdir, { recursive: true, force: true });
      return;
    }
    for (const p of this.procs) {
      console.log(`----- log of ${p.name} (exit ${p.code})`);
      console.log(p.logText(p.name === 'mosquitto' ? 2000 : 8000));
    }
    console.log(`----- logs kept in ${this.workdir}`);
  }
}

/** Waits (up to 20 s) until base's GET /api/devices counts no viewers. */
export async function noViewersLeft(base) {
  const ok = await poll(async () => {
    try {
      const list = await (await fetch(`${base}/api/devices`)).json();
      const d = list.find((e) => e.id === DEVICE);
      return d && d.status && d.status.viewers === 0;
    } catch { return false; }
  }, 20_000, 250);
  if (!ok) log(`${base}: the last row's viewers are still connected after 20 s`);
}

/**
 * n pages of the web client at url in their own browser contexts, each
 * with initScript run before the page's scripts; waits up to 30 s until
 * ready() (evaluated in each page) is truthy in every one.
 */
export async function openViewerPages(browser, url, n, initScript, ready) {
  const pages = [];
  for (let i = 0; i < n; i++) {
    const ctx = await browser.newContext({ viewport: { width: 960, height: 600 } });
    await ctx.addInitScript(initScript);
    const page = await ctx.newPage();
    page.errors = [];
    page.on('pageerror', (e) => page.errors.push(e.message));
    await page.goto(url, { waitUntil: 'load' });
    pages.push(page);
  }
  const ok = await poll(async () =>
    (await Promise.all(pages.map((p) => p.evaluate(ready)))).every(Boolean),
  30_000, 250);
  check(ok, `not every one of ${n} pages of ${url} plays within 30 s ` +
    `(errors: ${pages.flatMap((p) => p.errors).join('; ') || 'none'})`);
  return pages;
}

/**
 * Presses Stop in each page (WHEP DELETE or the bulk stop-webrtc), so the
 * sender drops the viewer now rather than when its timeouts notice, then
 * closes them.
 */
export async function closeViewerPages(pages) {
  await Promise.all(pages.map((p) => Promise.race([
    p.evaluate(() => window.picamrtc.stop()).catch(() => {}), sleep(3000)])));
  for (const p of pages) {
    try { await p.context().close(); } catch { /* gone */ }
  }
}

/**
 * Replaces what stands between <!-- name:begin --> and <!-- name:end -->
 * in docs/benchmarks.md with md, and copies images (file names in
 * fromDir) into docs/img/.
 */
export function writeDocsSection(name, md, images, fromDir) {
  const docs = join(SOURCE_ROOT, 'docs', 'benchmarks.md');
  const img = join(SOURCE_ROOT, 'docs', 'img');
  mkdirSync(img, { recursive: true });
  for (const m of images) copyFileSync(join(fromDir, m), join(img, m));
  const text = readFileSync(docs, 'utf8');
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  check(i >= 0 && j > i, `${docs} has no ${begin} ... ${end} section`);
  writeFileSync(docs, text.slice(0, i + begin.length) + '\n' + md + '\n' + text.slice(j));
  log(`wrote the results into ${docs}`);
}

// --- impairments: nftables and tc on lo, inside the namespace ---------------

// The tools, by path where meson found them (PATH may lack /usr/sbin).
const NFT = process.env.PCR_NFT || 'nft';
const TC = process.env.PCR_TC || 'tc';

function run(argv) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  check(r.status === 0, `${argv.join(' ')} failed (${r.status}): ` +
    `${(r.stderr || r.error || '').toString().trim()}`);
  return r.stdout;
}

/**
 * The link of the namespace: every packet goes out through lo once, so an
 * output rule acts on each direction and the qdisc on lo on both together.
 */
export class Link {
  constructor() { this.table = false; this.qdisc = false; }

  rule(...expr) {
    if (!this.table) {
      run([NFT, 'add', 'table', 'inet', 'pcrbench']);
      run([NFT, 'add', 'chain', 'inet', 'pcrbench', 'out',
        '{ type filter hook output priority 0; }']);
      this.table = true;
    }
    run([NFT, 'add', 'rule', 'inet', 'pcrbench', 'out', ...expr,
      'counter', 'drop']);
  }

  /** pct % of all UDP packets dropped at random. */
  loss(pct) {
    this.rule('meta', 'l4proto', 'udp', 'numgen', 'random', 'mod', '100',
      '<', String(pct));
  }

  /** UDP to `port` beyond kbytes kB/s dropped (one viewer's link). */
  police(port, kbytes) {
    this.rule('udp', 'dport', String(port), 'limit', 'rate', 'over',
      `${kbytes}`, 'kbytes/second');
  }

  /** Everything on lo through a token bucket of `rate` (tc syntax). */
  shape(rate) {
    run([TC, 'qdisc', 'add', 'dev', 'lo', 'root', 'tbf', 'rate', rate,
      'burst', '16kb', 'latency', '150ms']);
    this.qdisc = true;
  }

  /** Packets the rules and the bucket have dropped so far. */
  dropped() {
    let n = 0;
    if (this.table) {
      const j = JSON.parse(run([NFT, '-j', 'list', 'table', 'inet', 'pcrbench']));
      for (const item of j.nftables) {
        for (const e of (item.rule && item.rule.expr) || []) {
          if (e.counter) n += e.counter.packets;
        }
      }
    }
    if (this.qdisc) {
      const m = /dropped (\d+)/.exec(run([TC, '-s', 'qdisc', 'show', 'dev', 'lo']));
      if (m) n += Number(m[1]);
    }
    return n;
  }

  clear() {
    if (this.table) run([NFT, 'delete', 'table', 'inet', 'pcrbench']);
    if (this.qdisc) run([TC, 'qdisc', 'del', 'dev', 'lo', 'root']);
    this.table = this.qdisc = false;
  }
}

// --- what a page sees: Chromium's statistics every SAMPLE_MS -----------------

export const SAMPLE_MS = 500;

// In the page (an init script): window.__net() answers the video
// inbound-rtp counters and the local port of the selected candidate pair.
export const PAGE_STATS_SCRIPT = () => {
  const FIELDS = ['framesReceived', 'framesDecoded', 'framesDropped', 'keyFramesDecoded',
    'freezeCount', 'totalFreezesDuration', 'nackCount', 'pliCount',
    'firCount', 'retransmittedPacketsReceived', 'fecPacketsReceived',
    'packetsLost', 'packetsReceived', 'bytesReceived', 'frameHeight',
    'frameWidth'];
  window.__net = async () => {
    const pc = window.picamrtc && window.picamrtc.pc;
    if (!pc) return null;
    const all = new Map([...(await pc.getStats()).values()].map((s) => [s.id, s]));
    let video = null;
    let port = null;
    for (const s of all.values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video' &&
          (!video || (s.bytesReceived || 0) > (video.bytesReceived || 0))) video = s;
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = all.get(s.selectedCandidatePairId);
        const local = pair && all.get(pair.localCandidateId);
        if (local) port = local.port;
      }
    }
    if (!video) return null;
    const v = {};
    for (const k of FIELDS) v[k] = typeof video[k] === 'number' ? video[k] : null;
    return { at: performance.now(), port, v };
  };
};

/** Samples every page's counters every SAMPLE_MS until stopped. */
export class Sampler {
  constructor(pages) {
    this.pages = pages;
    this.series = pages.map(() => []);
    this.running = true;
    this.done = this.loop();
  }

  async loop() {
    while (this.running) {
      const t = Date.now();
      const got = await Promise.all(this.pages.map((p) =>
        p.evaluate(() => window.__net()).catch(() => null)));
      got.forEach((s, i) => { if (s) this.series[i].push({ t, ...s }); });
      await sleep(Math.max(0, SAMPLE_MS - (Date.now() - t)));
    }
  }

  last(i) { return this.series[i][this.series[i].length - 1] || null; }

  async stop() {
    this.running = false;
    await this.done;
  }
}

/**
 * What page i saw between node times t0 and t1: rates over the page's own
 * clock, counters as differences. frozenS is Chromium's
 * totalFreezesDuration plus a stall still under way at t1 (Chromium counts
 * a freeze only when it ends). The rendition: seconds on 720 lines and on
 * fewer (each step counts with the height at its end), how often the
 * height changed, and when it first went below 720 (s after t0, or null).
 */
export function windowOf(series, t0, t1) {
  const s = series.filter((x) => x.t >= t0 - SAMPLE_MS / 2 && x.t <= t1 + SAMPLE_MS / 2);
  if (s.length < 2) return null;
  const a = s[0];
  const b = s[s.length - 1];
  const secs = (b.at - a.at) / 1000;
  // Chromium leaves a counter out until it has something to count (the
  // RTX ones until there is an RTX stream): missing at the start is 0.
  const d = (k) => (b.v[k] === null ? null : b.v[k] - (a.v[k] ?? 0));
  let progressAt = a.at;
  let longest = 0;
  for (let j = 1; j < s.length; j++) {
    if (s[j].v.framesDecoded > s[j - 1].v.framesDecoded) progressAt = s[j].at;
    longest = Math.max(longest, (s[j].at - progressAt) / 1000);
  }
  const stallAtEnd = (b.at - progressAt) / 1000;
  let onHighS = 0;
  let onLowS = 0;
  let switches = 0;
  let lowAfterS = null;
  for (let j = 1; j < s.length; j++) {
    const [h0, h] = [s[j - 1].v.frameHeight, s[j].v.frameHeight];
    if (h >= 720) onHighS += (s[j].at - s[j - 1].at) / 1000;
    else if (h > 0) onLowS += (s[j].at - s[j - 1].at) / 1000;
    if (h0 > 0 && h > 0 && h !== h0) switches++;
    if (lowAfterS === null && h > 0 && h < 720)
      lowAfterS = Math.max(0, (s[j].t - t0) / 1000);
  }
  const frozen = (d('totalFreezesDuration') || 0) + (stallAtEnd >= 1 ? stallAtEnd : 0);
  return {
    seconds: secs,
    fps: d('framesDecoded') / secs,
    receivedFps: d('framesReceived') / secs,
    framesDropped: d('framesDropped'),
    freezes: d('freezeCount') + (stallAtEnd >= 1 ? 1 : 0),
    frozenS: frozen,
    frozenPerMin: frozen * 60 / secs,
    longestStallS: longest,
    nacks: d('nackCount'),
    plis: d('pliCount'),
    firs: d('firCount'),
    rtx: d('retransmittedPacketsReceived'),
    fec: d('fecPacketsReceived'),
    keyFrames: d('keyFramesDecoded'),
    lost: d('packetsLost'),
    received: d('packetsReceived'),
    mbps: d('bytesReceived') * 8 / secs / 1e6,
    height: b.v.frameHeight,
    minHeight: Math.min(...s.map((x) => x.v.frameHeight || 0)),
    onHighS, onLowS, switches, lowAfterS,
    port: b.port,
  };
}
