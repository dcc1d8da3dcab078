// What the browser tests (browser.mjs) and the latency benchmark
// (tests/bench/latency.mjs) share: child processes with their logs, free
// ports, the private network namespace, playwright-core in the build tree
// and Debian's Chromium.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import {
  closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync,
  readdirSync, writeFileSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

export const CHROMIUM = process.env.PCR_CHROMIUM || '/usr/bin/chromium';

// What the brief for browser tests on this machine asks of Chromium.
export const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu',
  '--disable-background-networking', '--no-first-run',
  '--disable-component-update', '--disable-sync',
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--autoplay-policy=no-user-gesture-required',
  '--use-fake-ui-for-media-stream',
  // a microphone for talk-back: Chromium's own test tone
  '--use-fake-device-for-media-stream',
];

export class Failure extends Error {}

export function check(cond, message) {
  if (!cond) throw new Failure(message);
}

export const t0 = Date.now();
export function log(msg) {
  const s = ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
  console.log(`[${s} s] ${msg}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns a truthy value; null after timeoutMs. */
export async function poll(fn, timeoutMs, intervalMs = 200) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() >= deadline) return null;
    await sleep(intervalMs);
  }
}

/**
 * Installs into outDir/node_modules what tests/browser/package-lock.json
 * names (playwright-core, the third-party WHEP player) when missing or of
 * another version, with npm ci. Throws a Failure when that fails.
 */
export function ensureNodeModules(outDir) {
  const lock = join(HERE, 'package-lock.json');
  const pkgs = JSON.parse(readFileSync(lock, 'utf8')).packages;
  const want = Object.keys(pkgs[''].dependencies)
    .map((n) => [n, pkgs[`node_modules/${n}`].version]);
  const stale = want.filter(([n, v]) => {
    const have = join(outDir, 'node_modules', n, 'package.json');
    return !existsSync(have) ||
      JSON.parse(readFileSync(have, 'utf8')).version !== v;
  });
  if (!stale.length) return;
  const what = want.map(([n, v]) => `${n} ${v}`).join(', ');
  log(`installing ${what} into ${outDir} (npm ci)`);
  mkdirSync(outDir, { recursive: true });
  copyFileSync(join(HERE, 'package.json'), join(outDir, 'package.json'));
  copyFileSync(lock, join(outDir, 'package-lock.json'));
  const r = spawnSync('npm', ['ci', '--prefix', outDir, '--no-audit',
    '--no-fund', '--loglevel=error'], { stdio: 'inherit' });
  const missing = want.filter(([n]) =>
    !existsSync(join(outDir, 'node_modules', n, 'package.json')));
  check(r.status === 0 && !missing.length,
    `npm ci of ${what} into ${outDir} failed ` +
    `(exit ${r.status}${r.error ? ', ' + r.error.message : ''}): the ` +
    'browser tests need the npm registry once');
}

/**
 * Runs `node script ...args` again in a private user, network and PID
 * namespace holding only loopback (docs/architecture.md), with env[marker]
 * set, and exits with its exit code. The PID namespace's init is the inner
 * run: when it ends (or is killed) the kernel takes every service and
 * browser it started with it. label names the run in error messages.
 */
export function reexecInNamespace(script, args, marker, label) {
  const child = spawn('unshare', ['-rn', '--pid', '--fork', '--mount-proc',
    '--kill-child', 'sh', '-c',
    'ip link set lo up && exec "$0" "$@"', process.execPath, script, ...args],
  { stdio: 'inherit', env: { ...process.env, [marker]: '1' } });
  // unshare --fork does not pass signals on: a SIGTERM for this process
  // goes to the inner run itself (the child of unshare), which cleans up.
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => {
      let inner = [];
      try {
        inner = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`,
          'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      } catch { /* gone */ }
      for (const pid of inner.length ? inner : [child.pid]) {
        try { process.kill(pid, sig); } catch { /* gone */ }
      }
    });
  }
  child.on('error', (e) => {
    console.log(`FAIL ${label}: cannot run unshare -rn: ${e.message}`);
    process.exit(1);
  });
  child.on('exit', (code, sig) => process.exit(code ?? (sig ? 1 : 0)));
}

/**
 * Runs one test case inside the namespace and exits: 0 after a line
 * "PASS label: summary", 1 after "FAIL label: why". body() does the work
 * and returns the summary; teardown(failed) stops what it started (and
 * prints its logs when failed). Refuses to run where anything but loopback
 * is up; a SIGTERM, a SIGINT or limitMs without an end fails the case.
 */
export async function runCase(label, limitMs, body, teardown) {
  const ifaces = Object.entries(networkInterfaces())
    .filter(([, addrs]) => addrs.some((a) => !a.internal));
  if (ifaces.length) {
    console.log(`FAIL ${label}: not in a loopback-only network ` +
      `namespace (found ${ifaces.map(([n]) => n).join(', ')})`);
    process.exit(1);
  }
  for (const k of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY',
    'all_proxy', 'ALL_PROXY'])
    delete process.env[k];
  let done = false;
  const finish = async (failed, line) => {
    if (done) return;
    done = true;
    if (failed) console.log(line);
    await teardown(failed);
    console.log(line); // last, where a reader of the log looks first
    process.exit(failed ? 1 : 0);
  };
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => finish(true,
      `FAIL ${label}: stopped by ${sig} (timeout?)`));
  }
  const limit = setTimeout(() => finish(true, `FAIL ${label}: did not ` +
    `finish within ${limitMs / 1000} s`), limitMs);
  const start = Date.now();
  try {
    const summary = await body();
    clearTimeout(limit);
    await finish(false, `PASS ${label}: ${summary} ` +
      `(${((Date.now() - start) / 1000).toFixed(1)} s)`);
  } catch (e) {
    clearTimeout(limit);
    const msg = e instanceof Failure ? e.message : (e.stack || String(e));
    await finish(true, `FAIL ${label}: ${msg}`);
  }
}

/** Debian's Chromium through the playwright-core of outDir/node_modules. */
export async function launchChromium(outDir) {
  const req = createRequire(join(outDir, 'package.json'));
  const { chromium } = req('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000,
    // the caller's own SIGTERM handler closes it after reporting
    handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false,
  });
  log(`Chromium ${browser.version()} launched`);
  return browser;
}

export class Proc {
  /** A child in its own process group, its output in a log file. */
  constructor(name, argv, workdir, extraEnv = {}) {
    this.name = name;
    this.argv = argv;
    this.logPath = join(workdir, `${name}.log`);
    const fd = openSync(this.logPath, 'a');
    this.code = undefined;
    this.child = spawn(argv[0], argv.slice(1), {
      stdio: ['ignore', fd, fd], detached: true,
      env: { ...process.env, ...extraEnv },
    });
    closeSync(fd);
    this.pid = this.child.pid;
    this.exited = new Promise((res) => {
      this.child.on('exit', (code, sig) => {
        this.code = code ?? sig;
        res();
      });
      this.child.on('error', (e) => {
        this.code = `spawn error: ${e.message}`;
        res();
      });
    });
  }

  alive() { return this.code === undefined; }

  signal(sig) {
    try { process.kill(-this.pid, sig); } catch { /* gone */ }
  }

  async wait(ms) {
    await Promise.race([this.exited, sleep(ms)]);
    return !this.alive();
  }

  async stop(graceMs = 3000) {
    if (this.alive()) {
      this.signal('SIGTERM');
      if (!(await this.wait(graceMs))) {
        this.signal('SIGKILL');
        await this.wait(3000);
      }
    } else {
      this.signal('SIGKILL'); // whatever it left behind in its group
    }
  }

  logText(limit = 12000) {
    let text = '';
    try { text = readFileSync(this.logPath, 'utf8'); } catch { return ''; }
    return text.length > limit ? '[... cut ...]\n' + text.slice(-limit) : text;
  }
}

export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

export function tcpOpen(port) {
  return new Promise((res) => {
    const s = connect({ host: '127.0.0.1', port });
    s.on('connect', () => { s.destroy(); res(true); });
    s.on('error', () => res(false));
    s.setTimeout(1000, () => { s.destroy(); res(false); });
  });
}

export async function http(url, opts = {}) {
  const r = await fetch(url, { ...opts, signal: AbortSignal.timeout(15_000) });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text, json };
}

/** (utime + stime) of a process in clock ticks, and its RSS in kB. */
export function procUsage(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = Number((/VmRSS:\s+(\d+)/.exec(status) || [0, 0])[1]);
    return { ticks: Number(f[11]) + Number(f[12]), rssKb: rss };
  } catch {
    return null;
  }
}

// --- Janus, for the relay (docs/scaling.md) ----------------------------------

// Janus' libnice leaves loopback interfaces out, so Janus gathers on a veth
// pair made inside the private namespace, holding a loopback address: every
// packet still goes to a loopback address of this namespace, which has no
// route anywhere else.
export const JANUS_ADDRESS = '127.0.1.1';
const JANUS_IFACE = 'pcrjanus0';

/**
 * Janus 1.1.2 on data/janus's configuration (ports, the VideoRoom admin key
 * and the folder of the copy changed), in @workdir. Returns the Proc, its
 * API URL, and restart() (the same ports, for the fault tests).
 */
export async function startJanus(workdir, adminKey) {
  const ip = (...a) => execFileSync('ip', a, { stdio: 'pipe' });
  if (!existsSync(`/sys/class/net/${JANUS_IFACE}`)) {
    ip('link', 'add', JANUS_IFACE, 'type', 'veth', 'peer', 'name',
      `${JANUS_IFACE}p`);
    ip('addr', 'add', `${JANUS_ADDRESS}/32`, 'dev', JANUS_IFACE);
    ip('link', 'set', `${JANUS_IFACE}p`, 'up');
    ip('link', 'set', JANUS_IFACE, 'up');
  }
  const conf = join(workdir, 'janus-conf');
  mkdirSync(conf, { recursive: true });
  const port = await freePort();
  const adminPort = await freePort();
  const src = join(HERE, '..', '..', 'data', 'janus');
  for (const f of readdirSync(src).filter((n) => n.endsWith('.jcfg'))) {
    const text = readFileSync(join(src, f), 'utf8')
      .replace(/configs_folder = "[^"]*"/, `configs_folder = "${conf}"`)
      .replace(/(\n\s*)port = \d+/, `$1port = ${port}`)
      .replace(/admin_port = \d+/, `admin_port = ${adminPort}`)
      .replace(/admin_key = "[^"]*"/, `admin_key = "${adminKey}"`);
    writeFileSync(join(conf, f), text);
  }
  const url = `http://127.0.0.1:${port}/janus`;
  const janus = { url, adminUrl: `http://127.0.0.1:${adminPort}/admin` };
  janus.start = async () => {
    janus.proc = new Proc('janus', ['janus', '-F', conf, '-N', '-o',
      '-L', join(workdir, 'janus-file.log'), '--ice-enforce-list',
      JANUS_IFACE], workdir);
    const up = await poll(async () => {
      check(janus.proc.alive(), `Janus exited at start-up (${janus.proc.code})` +
        `:\n${janus.proc.logText(3000)}`);
      try {
        return (await http(`${url}/info`)).json?.janus === 'server_info';
      } catch { return false; }
    }, 15_000, 100);
    check(up, `Janus does not answer on ${url}`);
  };
  janus.restart = async () => {
    janus.proc.signal('SIGKILL');
    await janus.proc.wait(5000);
    await janus.start();
  };
  await janus.start();
  log(`Janus up on ${url}, ICE on ${JANUS_IFACE} ${JANUS_ADDRESS}`);
  return janus;
}
