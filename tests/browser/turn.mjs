#!/usr/bin/env node
// picamrtc through a TURN server: Debian's Chromium, forced to relay-only
// ICE, plays the camera service's test pattern through coturn (run from
// data/coturn/turnserver.conf) with the short-lived credentials the gateway
// hands out, over UDP (case turn-udp) and over TCP while the network drops
// every UDP datagram that does not touch a relay port of coturn (case
// turn-tcp). Everything runs in a private network namespace that holds only
// loopback; docs/networks.md says what this proves and what it does not.
// `node turn.mjs CASE` prints PASS or FAIL and exits 0 or 1; meson runs it
// (tests/browser/meson.build) with the same environment as browser.mjs.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import {
  existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CHROMIUM, Proc, check, ensureNodeModules, freePort, http, launchChromium,
  log, poll, reexecInNamespace, runCase, sleep, tcpOpen,
} from './harness.mjs';

const NS_MARK = 'PCR_TURN_IN_NETNS';
const DEVICE = 'cam1';
const CASE_LIMIT_MS = 60_000;
const SCRIPT = fileURLToPath(import.meta.url);
const HERE = dirname(SCRIPT);
const SOURCE_ROOT = process.env.PICAMRTC_SOURCE_ROOT || resolve(HERE, '..', '..');
const BUILD_ROOT = process.env.PICAMRTC_BUILD_ROOT || join(SOURCE_ROOT, 'build');
const OUT_DIR = join(BUILD_ROOT, 'tests', 'browser');
const BIN = {
  service: process.env.PCR_SERVICE || join(BUILD_ROOT, 'src', 'picamrtc',
    'picamrtc'),
  gateway: process.env.PCR_GATEWAY || join(BUILD_ROOT, 'src', 'gateway',
    'picamrtc-gateway'),
  turnserver: process.env.PCR_TURNSERVER || '/usr/bin/turnserver',
  nft: process.env.PCR_NFT || '/usr/sbin/nft',
};
const WWW_DIR = process.env.PCR_WWW || join(SOURCE_ROOT, 'data', 'www');
const PLUGIN_DIR = process.env.PCR_PLUGIN_DIR ||
  join(BUILD_ROOT, 'plugins', 'mqttwebrtc');
const COTURN_CONF = join(SOURCE_ROOT, 'data', 'coturn', 'turnserver.conf');
// coturn's relay ports in the test: a range below the kernel's ephemeral
// ports (32768 and up), so the firewall of turn-tcp can tell a relayed
// datagram from any other by its port alone.
const RELAY_PORTS = [20000, 20099];

// The keys of the sample that the test sets itself; all others stay as
// shipped (use-auth-secret, realm, no-tls, quotas, denied-peer-ip, ...).
const OVERRIDDEN = ['listening-port', 'listening-ip', 'relay-ip',
  'static-auth-secret', 'min-port', 'max-port', 'syslog', 'log-file',
  'pidfile', 'userdb'];

const CASES = {
  // what the gateway hands out, and whether UDP is cut off
  'turn-udp': { transports: ['udp'], blockUdp: false },
  'turn-tcp': { transports: ['udp', 'tcp'], blockUdp: true },
};

// --- outside the namespace ----------------------------------------------

function outer(name) {
  try {
    check(existsSync(CHROMIUM), `${CHROMIUM} is missing: the browser tests ` +
      "need Debian's Chromium (apt-get install chromium)");
    check(existsSync(BIN.turnserver), `${BIN.turnserver} is missing: the ` +
      'TURN tests need coturn (apt-get install coturn)');
    check(existsSync(BIN.nft), `${BIN.nft} is missing: the TURN tests need ` +
      'nftables (apt-get install nftables)');
    ensureNodeModules(OUT_DIR);
  } catch (e) {
    console.log(`FAIL browser-${name}: ${e.message}`);
    process.exit(1);
  }
  reexecInNamespace(SCRIPT, [name], NS_MARK, `browser-${name}`);
}

// --- inside the namespace ------------------------------------------------

/** coturn's configuration: the sample with the test's own ports, secret,
 * log and loopback addresses in place of the lines that set them. */
function coturnConfig(run) {
  const kept = readFileSync(COTURN_CONF, 'utf8').split('\n').filter((l) =>
    !OVERRIDDEN.includes(l.trim().split('=')[0]));
  return [...kept,
    '# --- set by tests/browser/turn.mjs ---',
    `listening-port=${run.turnPort}`,
    // loopback is all there is, and coturn relays from it only when told
    'listening-ip=127.0.0.1', 'relay-ip=127.0.0.1',
    // the sample refuses to relay to loopback: here the camera is there
    'allow-loopback-peers', 'allowed-peer-ip=127.0.0.1',
    `min-port=${RELAY_PORTS[0]}`, `max-port=${RELAY_PORTS[1]}`,
    `static-auth-secret=${run.secret}`,
    `log-file=${run.turnLog}`, 'simple-log', 'no-stdout-log', 'verbose',
    // not the host's /var/run and /var/lib/turn: unshare -r maps us to root
    `pidfile=${join(run.workdir, 'turnserver.pid')}`,
    `userdb=${join(run.workdir, 'turndb')}`, ''].join('\n');
}

class Run {
  constructor(name) {
    this.name = name;
    this.spec = CASES[name];
    this.workdir = mkdtempSync(join(tmpdir(), `pcr-browser-${name}-`));
    this.turnLog = join(this.workdir, 'coturn.log');
    this.procs = [];
    this.browser = null;
    this.pageLog = [];
  }

  spawn(name, argv, extraEnv) {
    const p = new Proc(name, argv, this.workdir, extraEnv);
    this.procs.push(p);
    return p;
  }

  /** Waits until p accepts TCP connections on port (or exits). */
  async listening(p, port, what) {
    const ok = await poll(async () => {
      check(p.alive(), `${what} exited at start-up (${p.code})`);
      return tcpOpen(port);
    }, 15_000, 50);
    check(ok, `${what} does not accept connections on 127.0.0.1:${port}`);
  }

  async start() {
    if (this.spec.blockUdp) await blockUdp();
    const brokerPort = await freePort();
    const broker = `mqtt://127.0.0.1:${brokerPort}`;
    const mqttConf = join(this.workdir, 'mosquitto.conf');
    // user root: inside unshare -r we are root to ourselves only
    writeFileSync(mqttConf, `listener ${brokerPort} 127.0.0.1\n` +
      'allow_anonymous true\nuser root\npersistence false\n' +
      'log_dest stderr\nlog_type error\nlog_type warning\n');
    await this.listening(this.spawn('mosquitto', ['mosquitto', '-c',
      mqttConf]), brokerPort, 'the MQTT broker');

    this.turnPort = await freePort();
    this.secret = randomBytes(32).toString('hex');
    const turnConf = join(this.workdir, 'turnserver.conf');
    writeFileSync(turnConf, coturnConfig(this), { mode: 0o600 });
    this.coturn = this.spawn('turnserver', [BIN.turnserver, '-c', turnConf]);
    await this.listening(this.coturn, this.turnPort, 'coturn');
    log(`coturn on 127.0.0.1:${this.turnPort}, relay ports ` +
      RELAY_PORTS.join('-'));

    check(existsSync(BIN.service) && existsSync(BIN.gateway), `the ` +
      `binaries ${BIN.service} and ${BIN.gateway} are missing (ninja first)`);
    this.service = this.spawn('picamrtc', [BIN.service, '--source', 'test',
      '--broker', broker, '--device', DEVICE, '--ice-address', '127.0.0.1'],
    { GST_PLUGIN_PATH: PLUGIN_DIR });
    const secretFile = join(this.workdir, 'turn-secret');
    writeFileSync(secretFile, `${this.secret}\n`, { mode: 0o600 });
    const httpPort = await freePort();
    this.base = `http://127.0.0.1:${httpPort}`;
    this.gateway = this.spawn('gateway', [BIN.gateway, '--broker', broker,
      '--listen', `127.0.0.1:${httpPort}`, '--www', WWW_DIR, '--device',
      DEVICE, '--turn-secret-file', secretFile,
      ...this.spec.transports.flatMap((t) => ['--turn-uri',
        `turn:127.0.0.1:${this.turnPort}?transport=${t}`])]);
    await this.listening(this.gateway, httpPort, 'the gateway');
    const online = await poll(async () => {
      check(this.service.alive(), 'the camera service exited at start-up ' +
        `(${this.service.code})`);
      const r = await http(`${this.base}/api/devices`);
      return r.status === 200 && Array.isArray(r.json) && r.json.some((d) =>
        d && d.id === DEVICE && d.status?.state === 'online');
    }, 20_000);
    check(online, `${DEVICE} is not online in GET /api/devices after 20 s`);
    log(`gateway ${this.base} up, ${DEVICE} online`);
    this.browser = await launchChromium(OUT_DIR);
  }

  alive() {
    for (const p of [this.service, this.gateway, this.coturn])
      check(p.alive(), `${p.name} died (exit ${p.code})`);
  }

  async teardown(failed) {
    if (this.browser) {
      try {
        await Promise.race([this.browser.close(), sleep(10_000)]);
      } catch { /* already gone */ }
    }
    for (const p of [...this.procs].reverse()) await p.stop();
    if (!failed) {
      rmSync(this.workdir, { recursive: true, force: true });
      return;
    }
    console.log('----- browser console and signalling requests');
    console.log(this.pageLog.slice(-100).join('\n'));
    for (const p of this.procs) {
      console.log(`----- log of ${p.name}: ${p.argv.join(' ')} ` +
        `(exit ${p.code})`);
      console.log(p.logText(6000));
    }
    let turnLog = '';
    try { turnLog = readFileSync(this.turnLog, 'utf8'); } catch { /* none */ }
    console.log(`----- ${this.turnLog} (the end)\n${turnLog.slice(-12000)}`);
    console.log(`----- logs kept in ${this.workdir}`);
  }
}

/** The firewall of turn-tcp: UDP only from or to coturn's relay ports (the
 * relayed leg, coturn to the camera), so the browser reaches coturn over
 * TCP or not at all. Checked with a datagram that must not arrive. */
async function blockUdp() {
  const [lo, hi] = RELAY_PORTS;
  const rules = 'table inet pcr_turn_test {\n' +
    '  chain output {\n' +
    '    type filter hook output priority 0; policy accept;\n' +
    `    udp sport ${lo}-${hi} accept\n` +
    `    udp dport ${lo}-${hi} accept\n` +
    '    meta l4proto udp drop\n' +
    '  }\n}\n';
  const r = spawnSync(BIN.nft, ['-f', '-'], { input: rules, encoding: 'utf8' });
  check(r.status === 0, `nft could not set the UDP firewall (exit ` +
    `${r.status}): ${r.stderr || r.error?.message}`);
  const rx = createSocket('udp4');
  let got = 0;
  rx.on('message', () => { got += 1; });
  await new Promise((res) => rx.bind(0, '127.0.0.1', res));
  const tx = createSocket('udp4');
  tx.on('error', () => { /* EPERM from the drop rule: what we want */ });
  tx.send('probe', rx.address().port, '127.0.0.1');
  await sleep(300);
  tx.close();
  rx.close();
  check(got === 0, 'a UDP datagram between two ordinary ports arrived ' +
    'through the firewall of turn-tcp');
  log(`UDP dropped except ports ${lo}-${hi} (coturn's relay ports)`);
}

/** The web client in a page whose RTCPeerConnections gather relay
 * candidates only (iceTransportPolicy 'relay', which the client has no
 * switch for): the page can reach the camera through coturn or not at all. */
async function openRelayOnlyPlayer(run) {
  const ctx = await run.browser.newContext({
    viewport: { width: 1366, height: 900 },
  });
  await ctx.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    window.RTCPeerConnection = class extends Native {
      constructor(config, ...rest) {
        super({ ...config, iceTransportPolicy: 'relay' }, ...rest);
      }
    };
  });
  const page = await ctx.newPage();
  const note = (s) => run.pageLog.push(`[page] ${s}`);
  page.on('console', (m) => note(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => note(`page error: ${e.message}`));
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/api/') || u.pathname.startsWith('/whep'))
      note(`${r.request().method()} ${u.pathname} -> ${r.status()}`);
  });
  await page.goto(`${run.base}/?device=${DEVICE}&stats=1`,
    { waitUntil: 'load' });
  return page;
}

/** What the page shows, what Chromium's getStats() says of the selected
 * candidate pair, and the camera's candidates in its answer. */
function pageState(page) {
  return page.evaluate(async () => {
    const p = window.picamrtc;
    const v = document.querySelector('video');
    const cell = document.querySelector('[data-stat="ice"]');
    const out = {
      state: p?.state, framesRendered: p?.framesRendered,
      width: v?.videoWidth, height: v?.videoHeight,
      iceText: cell ? cell.textContent : null,
      iceServers: null, local: null, remote: null, remoteTypes: [],
      remoteRelayPorts: [],
    };
    const pc = p?.pc;
    if (!pc) return out;
    out.iceServers = pc.getConfiguration().iceServers
      .flatMap((s) => [].concat(s.urls));
    out.policy = pc.getConfiguration().iceTransportPolicy;
    const report = await pc.getStats();
    let pairId = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId)
        pairId = s.selectedCandidatePairId;
    });
    const pair = pairId && report.get(pairId);
    const pick = (c) => c && { type: c.candidateType, protocol: c.protocol,
      relayProtocol: c.relayProtocol, address: c.address, port: c.port };
    if (pair) {
      out.local = pick(report.get(pair.localCandidateId));
      out.remote = pick(report.get(pair.remoteCandidateId));
    }
    // the camera's candidates, all in its answer (the gateway's bulk ICE)
    const sdp = pc.remoteDescription?.sdp ?? '';
    for (const m of sdp.matchAll(/^a=candidate:\S+ \d+ \S+ \d+ \S+ (\d+) typ (\w+)/gm)) {
      out.remoteTypes.push(m[2]);
      if (m[2] === 'relay') out.remoteRelayPorts.push(Number(m[1]));
    }
    return out;
  });
}

/** What coturn's log shows of the allocations made with credentials of
 * the gateway's (user "<expiry>:picamrtc", the expiry still ahead): how
 * many, and the relay ports it handed out. */
function allocations(run) {
  let text = '';
  try { text = readFileSync(run.turnLog, 'utf8'); } catch { /* none yet */ }
  const now = Date.now() / 1000;
  const ok = [...text.matchAll(/user <(\d+):picamrtc>: incoming packet ALLOCATE processed, success/g)]
    .filter((m) => Number(m[1]) > now).length;
  const ports = [...text.matchAll(/Local relay addr: 127\.0\.0\.1:(\d+)/g)]
    .map((m) => Number(m[1]));
  return { ok, ports };
}

async function casePlaysThroughTurn(run) {
  const want = run.name === 'turn-tcp' ? 'tcp' : 'udp';
  const page = await openRelayOnlyPlayer(run);
  let s = null;
  const played = await poll(async () => {
    s = await pageState(page);
    return s.framesRendered >= 30 && s.width > 0 && s.local ? s : null;
  }, 20_000, 200);
  check(played, `the page did not play through TURN (${want}) within ` +
    `20 s: ${JSON.stringify(s)}`);
  check(s.policy === 'relay', 'the page\'s RTCPeerConnection is not ' +
    `relay-only: ${JSON.stringify(s)}`);
  // the web client's ICE servers are the gateway's (api/turn-credentials)
  const urls = run.spec.transports.map((t) =>
    `turn:127.0.0.1:${run.turnPort}?transport=${t}`);
  check(urls.every((u) => s.iceServers.includes(u)), 'the page\'s ' +
    `RTCPeerConnection has ICE servers ${JSON.stringify(s.iceServers)}, ` +
    `expected the gateway's ${JSON.stringify(urls)}`);
  check(s.width === 1280 && s.height === 720, `the page plays ` +
    `${s.width}x${s.height} video, expected 1280x720`);
  const f0 = s.framesRendered;
  const t0 = Date.now();
  await sleep(3000);
  s = await pageState(page);
  const fps = (s.framesRendered - f0) * 1000 / (Date.now() - t0);
  check(fps >= 20, `the video through TURN (${want}) stutters: ` +
    `${fps.toFixed(1)} frames/s (the camera sends 30)`);
  check(s.local?.type === 'relay' && s.local.relayProtocol === want,
    `the selected candidate pair is not a relay over ${want}: local ` +
    `${JSON.stringify(s.local)}, remote ${JSON.stringify(s.remote)}`);
  // What a user who opens the statistics overlay reads.
  check(new RegExp(`^relay ↔ \\w+ · ${want}$`).test(s.iceText ?? ''),
    `the stats overlay's ICE line reads "${s.iceText}", expected ` +
    `"relay ↔ … · ${want}"`);
  // The camera gathered through coturn too: it used the ICE servers that
  // came with the offer (the gateway's, as the browser got them).
  const alloc = allocations(run);
  check(alloc.ok >= 2, `coturn's log shows ${alloc.ok} allocations with ` +
    'the gateway\'s credentials, expected the browser\'s and the camera\'s');
  check(alloc.ports.includes(s.local.port), 'the browser\'s relay ' +
    `candidate (port ${s.local.port}) is not one coturn handed out ` +
    `(${alloc.ports.join(', ')})`);
  check(s.remoteRelayPorts.some((p) => alloc.ports.includes(p)), 'none of ' +
    `the camera's candidates (${s.remoteTypes.join(', ')}) is a relay ` +
    'address of coturn: it did not use the TURN server that came with the ' +
    'offer');
  run.alive();
  return `${fps.toFixed(0)} frames/s of 1280x720 through coturn, selected ` +
    `pair relay/${s.local.relayProtocol} ↔ ${s.remote?.type}, camera ` +
    `candidates ${[...new Set(s.remoteTypes)].join('+')}, overlay ` +
    `"${s.iceText}", ${alloc.ok} allocations in coturn's log`;
}

async function inner(name) {
  let run = null;
  await runCase(`browser-${name}`, CASE_LIMIT_MS, async () => {
    run = new Run(name);
    await run.start();
    return casePlaysThroughTurn(run);
  }, async (failed) => run?.teardown(failed));
}

const name = process.argv[2];
if (!Object.hasOwn(CASES, name)) {
  console.log(`usage: node turn.mjs ${Object.keys(CASES).join('|')}`);
  process.exit(2);
}
if (process.env[NS_MARK]) await inner(name);
else outer(name);
