// picamrtc web client: the page. Lists cameras (GET api/devices every 2 s),
// plays one over WHEP (or the seed's bulk API), reconnects with backoff, and
// shows getStats() numbers and, when the camera stamps its frames
// (picamrtc --latency-stamp), the capture-to-display latency. No
// dependencies, no build step.
//
// Every offer has an audio m-line (recvonly): the camera's sound plays in
// the same <video>, muted until the Sound button (key M) turns it on; a
// camera without audio rejects the m-line and the video plays as before.
// A camera whose status says control:true, watched with a control token,
// gets the data channel "control" and the control panel (control.js); one
// whose status says talkback:true gets a hold-to-talk button (key T).
//
// URL parameters:
//   ?device=D             the camera to play (default: the first online one)
//   ?token=T              bearer token for api/ and whep/ requests
//   ?control=T            control token: the bearer token then, and the
//                         control channel for cameras with control:true
//                         (kept in localStorage like a typed-in token)
//   ?signalling=auto|whep|bulk   force one signalling path (default auto)
//   ?relay=0              never through Janus (default: a camera whose status
//                         has "relay", in a state other than "unreachable", is
//                         watched through its Janus relay, api/relay; the
//                         gateway's 409 sends the page to the direct path)
//   ?stats=0|1            stats overlay off/on at start (default on)
//   ?autoplay=0           do not start playing on load
//
// Each online camera in the list shows a still image (GET api/snapshot/D,
// at most once per 30 s per camera, not while the page is hidden); the
// snapshot button (key P) saves the playing camera's picture as a JPEG.
//
// For tests and scripts: window.picamrtc (see the end of this file).

import {
  WhepClient, HttpError, NetworkError, AbortedError,
  request, readError, authHeaders, canReceiveH264,
} from './whep.js';
import { StatsMonitor, renderStats, renderLatency, EMPTY } from './stats.js';
import { LatencyMeter } from './latency-meter.js';
import { RecordingsPanel } from './recordings.js';
import { ControlPanel, PushToTalk } from './control.js';

const POLL_MS = 2000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const STABLE_MS = 10000;          // live this long resets the backoff
const CONNECT_TIMEOUT_MS = 15000; // answer applied -> connected
const STALL_MS = 3000;            // no frame this long while live: say so
const TOKEN_KEY = 'picamrtc.token';
const CONTROL_KEY = 'picamrtc.control';
const STATUS_WAIT_MS = 3000;      // with a control token: wait this long for the camera's status
const STATS_KEY = 'picamrtc.stats';
const THUMB_MS = 30000;           // a camera's thumbnail at most this often

const params = new URLSearchParams(location.search);
const SIGNALLING = ['auto', 'whep', 'bulk'].includes(params.get('signalling')) ? params.get('signalling') : 'auto';
const AUTOPLAY = params.get('autoplay') !== '0';
const RELAY = params.get('relay') !== '0';

const $ = (id) => document.getElementById(id);
const el = {
  stage: $('stage'),
  viewport: $('viewport'),
  video: $('video'),
  liveBadge: $('live-badge'),
  overlay: $('overlay'),
  overlayTitle: $('overlay-title'),
  overlayDetail: $('overlay-detail'),
  retryBtn: $('retry-btn'),
  stats: $('stats'),
  statsLatency: $('stats-latency'),
  playBtn: $('play-btn'),
  playLabel: $('play-label'),
  statePill: $('state-pill'),
  stateText: $('state-text'),
  srStatus: $('sr-status'),
  statsBtn: $('stats-btn'),
  fsBtn: $('fs-btn'),
  snapBtn: $('snap-btn'),
  soundBtn: $('sound-btn'),
  talkBtn: $('talk-btn'),
  controlPanel: $('control-panel'),
  metaDevice: $('meta-device'),
  metaInfo: $('meta-info'),
  gateway: $('gateway-status'),
  deviceList: $('device-list'),
  deviceEmpty: $('device-empty'),
  tokenDialog: $('token-dialog'),
  tokenForm: $('token-form'),
  tokenInput: $('token-input'),
  tokenReason: $('token-reason'),
};

function load(key) { try { return localStorage.getItem(key); } catch { return null; } }
function save(key, value) {
  try {
    if (value == null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch { /* storage disabled */ }
}

// A control token (?control=T, kept for the next visit) is also the
// bearer token: the gateway lets it watch too. A ?token=T without
// ?control= in the URL wins over a kept control token.
let controlToken = params.get('control') || (params.get('token') ? null : load(CONTROL_KEY)) || null;
if (params.get('control')) save(CONTROL_KEY, controlToken);
let token = controlToken || params.get('token') || load(TOKEN_KEY) || null;
let tokenSource = controlToken ? 'control' : (params.get('token') ? 'url' : (token ? 'storage' : null));

/** Everything the page knows. */
const S = {
  state: 'idle',             // idle connecting live reconnecting offline error stopped
  statusText: 'Idle',
  detail: '',
  device: params.get('device') || null,
  devices: [],               // [{id, status}]
  devicesLoaded: false,
  gatewayError: null,
  selectedWas: undefined,    // the selected device's polled state at the previous poll
  client: null,              // the WhepClient of the current attempt
  lastPath: null,
  whepWorks: false,          // a WHEP POST has succeeded on this gateway
  stats: { ...EMPTY },
  camera: null,              // the camera's stats for this viewer (GET .../stats), else null
  framesRendered: 0,
  lastFrameAt: 0,
  liveSince: 0,
  framesAtLive: 0,
  failures: 0,
  relayFailures: 0,          // relayed attempts in a row that never played
  relayLow: false,           // relayed on the low layer without NACK (a slow link)
  retryAt: 0,
  retryTimer: null,
  connectTimer: null,
  stableTimer: null,
  gen: 0,
  userStopped: false,
  needsToken: false,
  tokenDismissed: false,
};

class SessionEnded extends Error {
  constructor(reason) { super(reason); this.name = 'SessionEnded'; }
}

const answerable = (st) => st === 'online' || st === 'error';

/** The selected camera's last polled status object ({} when unknown). */
function selectedStatus() {
  const dev = S.devices.find((d) => d.id === S.device);
  return (dev && dev.status) || {};
}
/** A session with the selected camera gets the control channel. */
const wantsControl = () => Boolean(controlToken) && selectedStatus().control === true;
const hasTalkback = () => selectedStatus().talkback === true;
/** The selected camera publishes to Janus (docs/http-api.md, "Relayed
 * viewers"): watch it there, unless ?relay=0 or ?signalling= forces a path. */
function wantsRelay() {
  const relay = selectedStatus().relay;
  // Two relayed attempts in a row that never played (Janus' media ports
  // unreachable from here, say): direct until Play is pressed again.
  return RELAY && SIGNALLING === 'auto' && Boolean(relay) && typeof relay === 'object' &&
    typeof relay.state === 'string' && relay.state !== 'unreachable' &&
    S.relayFailures < 2;
}
const api = (path) => new URL(path, document.baseURI).href;

// ---- control channel, push-to-talk, sound (control.js) -------------------------

const control = new ControlPanel(el.controlPanel);
const talk = new PushToTalk(el.talkBtn, {
  // a talking session is a new session (no renegotiation)
  restart: () => {
    if (!S.device) return;
    S.userStopped = false;
    S.failures = 0;
    connect();
  },
});

/** The camera's sound comes in the current session. */
function audioReceived() {
  const c = S.client;
  if (!c || !c.mediaStream) return false;
  return c.audioReceived && c.mediaStream.getAudioTracks().some((t) => t.readyState === 'live');
}

function renderAudio() {
  const has = audioReceived();
  el.soundBtn.hidden = !has;
  const on = !el.video.muted;
  el.soundBtn.setAttribute('aria-pressed', String(on));
  el.soundBtn.classList.toggle('is-on', on);
  const words = on ? 'Sound on' : 'Sound off';
  el.soundBtn.setAttribute('aria-label', on ? 'Mute' : 'Unmute');
  el.soundBtn.title = `${on ? 'Mute' : 'Unmute'} (M)`;
  const label = el.soundBtn.querySelector('.btn-label');
  if (label.textContent !== words) label.textContent = words;
}

function setMuted(muted) {
  el.video.muted = Boolean(muted);
  if (!el.video.muted && el.video.paused && el.video.srcObject) el.video.play().catch(() => {});
  renderAudio();
}

/** getStats() of the audio this page receives, else null. */
async function audioLevel() {
  const pc = S.client && S.client.pc;
  if (!pc) return null;
  let out = null;
  try {
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && (s.kind || s.mediaType) === 'audio') {
        out = {
          audioLevel: s.audioLevel ?? null,
          totalAudioEnergy: s.totalAudioEnergy ?? null,
          totalSamplesDuration: s.totalSamplesDuration ?? null,
          totalSamplesReceived: s.totalSamplesReceived ?? null,
          concealedSamples: s.concealedSamples ?? null,
          packetsReceived: s.packetsReceived ?? 0,
          bytesReceived: s.bytesReceived ?? 0,
        };
      }
    });
  } catch { return null; }
  return out;
}

/** getStats() of the microphone audio this page sends, else null. */
async function talkStats() {
  const pc = S.client && S.client.pc;
  if (!pc) return null;
  let out = null;
  try {
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && (s.kind || s.mediaType) === 'audio') {
        out = { packetsSent: s.packetsSent ?? 0, bytesSent: s.bytesSent ?? 0 };
      }
    });
  } catch { return null; }
  return out;
}

// Resolved once a poll of api/devices has answered (or failed).
let devicesWaiters = [];
function devicesLoaded(ms) {
  if (S.devicesLoaded) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    devicesWaiters.push(() => { clearTimeout(t); resolve(); });
  });
}
function wakeDevicesWaiters() {
  const w = devicesWaiters;
  devicesWaiters = [];
  for (const f of w) f();
}

// ---- stats ------------------------------------------------------------------

const monitor = new StatsMonitor({
  intervalMs: 1000,
  onSample: (sample) => {
    S.stats = sample;
    renderStats(el.stats, sample, statsExtra());
  },
});

function statsExtra() { return { path: currentPath(), camera: S.camera }; }

function clearStats() {
  monitor.detach();
  S.stats = { ...EMPTY };
  S.camera = null;
  renderStats(el.stats, S.stats, statsExtra());
}

// The camera's own view of this viewer (its estimate and rendition), from
// the gateway once a second while the overlay shows; a gateway or camera
// without it (404) is not asked again for this session.
let cameraBusy = false;
let cameraGone = null;   // the client whose gateway said 404

async function pollCamera() {
  const c = S.client;
  if (!c || !c.statsUrl || el.stats.hidden || cameraBusy || cameraGone === c) return;
  cameraBusy = true;
  try {
    const camera = await c.cameraStats();
    if (S.client !== c) return;
    S.camera = camera;
  } catch (e) {
    if (S.client !== c) return;
    S.camera = null;
    if (e instanceof HttpError && [404, 405, 501].includes(e.status)) cameraGone = c;
  } finally {
    cameraBusy = false;
  }
  renderStats(el.stats, S.stats, statsExtra());
}
setInterval(pollCamera, 1000);

function currentPath() { return (S.client && S.client.path) || S.lastPath; }

// ---- latency (the stamp in each frame, latency-meter.js) ----------------------

const meter = new LatencyMeter();

/** Fill the overlay's latency lines; stats.latencyMs is the window's median. */
function renderLatencyStats() {
  const summary = meter.summary();
  const latencyMs = summary ? summary.p50 : null;
  S.stats.latencyMs = latencyMs;
  monitor.latest.latencyMs = latencyMs;
  renderLatency(el.statsLatency, summary, {
    looked: Boolean(el.video.srcObject) && meter.tries > 0,
    lostFrames: meter.lostFrames,
  });
}

// ---- frame counter (requestVideoFrameCallback) -------------------------------

function startFrameCounter(video) {
  if (typeof video.requestVideoFrameCallback === 'function') {
    let lastPresented = -1;
    const onFrame = (now, meta) => {
      video.requestVideoFrameCallback(onFrame);
      const p = meta && typeof meta.presentedFrames === 'number' ? meta.presentedFrames : -1;
      const d = lastPresented >= 0 && p > lastPresented ? p - lastPresented : 1;
      lastPresented = p;
      S.framesRendered += d > 0 && d < 120 ? d : 1;
      S.lastFrameAt = performance.now();
      // whether or not the overlay shows: scripts read the samples
      meter.onFrame(video, now, meta);
    };
    video.requestVideoFrameCallback(onFrame);
  } else {
    // Fallback: count decoded frames the element reports.
    let last = 0;
    setInterval(() => {
      const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
      const total = q ? q.totalVideoFrames : 0;
      if (total > last) {
        S.framesRendered += total - last;
        S.lastFrameAt = performance.now();
      }
      last = total;
    }, 250);
  }
}

// ---- state and rendering ----------------------------------------------------

function setState(state, text, detail = '') {
  const changed = S.state !== state || S.statusText !== text;
  S.state = state;
  S.statusText = text;
  S.detail = detail;
  // Screen readers hear state changes, not every tick of a countdown.
  if (changed) el.srStatus.textContent = detail && state !== 'live' ? `${text}. ${detail}` : text;
  render();
}

function retrySeconds() {
  return S.retryTimer ? Math.max(1, Math.ceil((S.retryAt - Date.now()) / 1000)) : 0;
}

/** The words for the state, with the live countdown. */
function stateWords() {
  if (S.state === 'reconnecting' && S.retryTimer) return `Reconnecting in ${retrySeconds()} s…`;
  return S.statusText;
}

function render() {
  const words = stateWords();
  const now = performance.now();
  el.stage.dataset.state = S.state;
  el.statePill.dataset.state = S.state;
  if (el.stateText.textContent !== words) el.stateText.textContent = words;

  // Overlay: hidden while live with frames flowing.
  let title = words;
  const lines = [];
  let busy = S.state === 'connecting' || S.state === 'reconnecting';
  let showOverlay = S.state !== 'live';
  if (S.state === 'live') {
    if (S.framesRendered === S.framesAtLive) {
      showOverlay = true;
      busy = true;
      title = 'Waiting for video…';
      lines.push('Connected; the camera is starting');
    } else if (now - S.lastFrameAt > STALL_MS) {
      showOverlay = true;
      title = `No video for ${Math.floor((now - S.lastFrameAt) / 1000)} s`;
      lines.push('Still connected; waiting for the camera');
    }
  }
  if (S.detail) lines.push(S.detail);
  if (S.retryTimer && S.state !== 'reconnecting') lines.push(`Retrying in ${retrySeconds()} s…`);
  el.overlay.hidden = !showOverlay;
  el.overlay.classList.toggle('busy', busy);
  el.overlay.classList.toggle('over-video', Boolean(el.video.srcObject));
  if (el.overlayTitle.textContent !== title) el.overlayTitle.textContent = title;
  const detail = lines.join('\n');
  if (el.overlayDetail.textContent !== detail) el.overlayDetail.textContent = detail;
  const canPlay = S.device && (S.state === 'stopped' || (S.state === 'idle' && !S.client));
  el.retryBtn.hidden = !(S.retryTimer || canPlay || (S.state === 'error' && S.device && !S.userStopped));
  el.retryBtn.textContent = S.needsToken ? 'Enter token' : (canPlay ? 'Play' : 'Retry now');

  el.liveBadge.hidden = !(S.state === 'live' && !showOverlay);

  // Play/Stop: Stop while something is running or scheduled.
  const running = !S.userStopped && S.device &&
    ['connecting', 'live', 'reconnecting', 'offline'].includes(S.state);
  const errorRetrying = S.state === 'error' && S.retryTimer;
  const canStop = running || errorRetrying;
  el.playBtn.classList.toggle('is-playing', Boolean(canStop));
  el.playBtn.setAttribute('aria-label', canStop ? 'Stop' : 'Play');
  el.playBtn.title = canStop ? 'Stop' : 'Play';
  el.playLabel.textContent = canStop ? 'Stop' : 'Play';
  el.playBtn.disabled = !S.device;

  // The control panel and push-to-talk: what the camera's status offers.
  control.shown = Boolean(S.device) && wantsControl();
  talk.shown = Boolean(S.device) && !S.userStopped && hasTalkback();
  renderAudio();

  // Meta line under the player.
  const dev = S.devices.find((d) => d.id === S.device);
  el.metaDevice.textContent = S.device ? S.device : 'No camera selected';
  const info = [];
  const st = dev && dev.status ? dev.status : null;
  if (st && st.width && st.height) info.push(`${st.width}×${st.height}${st.framerate ? ` @ ${st.framerate} fps` : ''}`);
  if (st && viewersText(st)) info.push(viewersText(st));
  const path = currentPath();
  if (path) info.push({ whep: 'WHEP', bulk: 'bulk API', relay: 'via Janus' }[path] || path);
  const session = S.client && S.client.session;
  if (session) info.push(`session ${session.length > 12 ? `${session.slice(0, 12)}…` : session}`);
  const infoText = info.join(' · ');
  if (el.metaInfo.textContent !== infoText) el.metaInfo.textContent = infoText;

  renderGateway();
}

function renderGateway() {
  const e = S.gatewayError;
  let cls = 'pending';
  let text = 'Connecting to gateway…';
  if (e) {
    cls = 'bad';
    text = e instanceof HttpError && e.status === 401 ? 'Access token needed' : 'Gateway unreachable';
  } else if (S.devicesLoaded) {
    cls = 'ok';
    text = 'Gateway connected';
  }
  el.gateway.dataset.state = cls;
  const t = el.gateway.querySelector('.gateway-text');
  if (t.textContent !== text) t.textContent = text;
  el.gateway.title = e ? e.message : '';
}

const STATE_LABEL = { online: 'Online', offline: 'Offline', error: 'Camera error', unknown: 'Unknown' };

function viewersText(st) {
  if (typeof st.viewers !== 'number') return '';
  return `${st.viewers}${st.maxViewers ? `/${st.maxViewers}` : ''} viewer${st.viewers === 1 && !st.maxViewers ? '' : 's'}`;
}

/** [state word, viewers, format] for a device row. */
function deviceInfo(d) {
  const st = d.status || {};
  let format = '';
  if (st.width && st.height) format = `${st.height}p${st.framerate ? st.framerate : ''}`;
  return [STATE_LABEL[d.state] || d.state, viewersText(st), format];
}

function renderDevices() {
  const list = S.devices.slice();
  if (S.device && !list.some((d) => d.id === S.device)) {
    list.unshift({ id: S.device, state: 'unknown', status: null });
  }
  const existing = new Map([...el.deviceList.children].map((li) => [li.dataset.id, li]));
  list.forEach((d, i) => {
    let li = existing.get(d.id);
    if (!li) {
      li = document.createElement('li');
      li.dataset.id = d.id;
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'device';
      b.innerHTML = '<img class="device-thumb" alt="" hidden><span class="dot" aria-hidden="true"></span><span class="device-name"></span>' +
        '<span class="device-info"><span class="di-state"></span><span class="di-viewers"></span><span class="di-format"></span></span>';
      b.addEventListener('click', () => onDeviceClick(d.id));
      li.append(b);
    }
    existing.delete(d.id);
    const b = li.firstElementChild;
    const selected = d.id === S.device;
    b.dataset.state = d.state;
    b.setAttribute('aria-pressed', String(selected));
    b.querySelector('.device-name').textContent = d.id;
    const img = b.querySelector('.device-thumb');
    const thumb = thumbs.get(d.id);
    if (thumb && thumb.url && img.getAttribute('src') !== thumb.url) img.src = thumb.url;
    img.hidden = !(thumb && thumb.url);
    const info = deviceInfo(d);
    ['.di-state', '.di-viewers', '.di-format'].forEach((sel, k) => {
      const span = b.querySelector(sel);
      span.textContent = info[k];
      span.hidden = !info[k];
    });
    b.setAttribute('aria-label', `${d.id}: ${info.filter(Boolean).join(', ')}${selected ? ' (selected)' : ''}`);
    if (el.deviceList.children[i] !== li) el.deviceList.insertBefore(li, el.deviceList.children[i] || null);
  });
  for (const li of existing.values()) li.remove();

  let empty = '';
  if (S.gatewayError) {
    const e = S.gatewayError;
    empty = e instanceof HttpError && e.status === 401
      ? 'The gateway needs an access token to list cameras.'
      : `Gateway unreachable (${e.message}). Retrying…`;
  } else if (!S.devicesLoaded) {
    empty = 'Looking for cameras…';
  } else if (!S.devices.length) {
    empty = 'No camera has reported to the gateway yet.';
  }
  el.deviceEmpty.textContent = empty;
  el.deviceEmpty.hidden = !empty;
}

// ---- timers -------------------------------------------------------------------

function clearRetry() {
  clearTimeout(S.retryTimer);
  S.retryTimer = null;
}

function clearTimers() {
  clearRetry();
  clearTimeout(S.connectTimer);
  clearTimeout(S.stableTimer);
  S.connectTimer = null;
  S.stableTimer = null;
}

/** The last poll worked and says the selected camera is offline (or not listed). */
function polledOffline() {
  if (!S.devicesLoaded || S.gatewayError || !S.device) return false;
  const dev = S.devices.find((d) => d.id === S.device);
  return !dev || !answerable(dev.state);
}

/** Wait for the poll to report the camera online instead of retrying blindly. */
function waitForOnline(detail) {
  clearRetry();
  setState('offline', 'Camera offline', detail || 'Playback starts when it comes online');
}

function scheduleRetry() {
  clearRetry();
  if (polledOffline()) {
    waitForOnline();
    return;
  }
  const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** S.failures);
  S.failures = Math.min(S.failures + 1, 16);
  S.retryAt = Date.now() + delay;
  S.retryTimer = setTimeout(() => {
    S.retryTimer = null;
    if (polledOffline()) waitForOnline();
    else connect();
  }, delay);
  render();
}

// ---- sessions -----------------------------------------------------------------

/** Drop the current attempt (telling the gateway) without changing the state. */
function dropClient(opts) {
  const c = S.client;
  S.client = null;
  S.gen += 1;
  clearTimers();
  monitor.detach();
  S.camera = null;
  control.attach(null);
  talk.sessionDropped();
  if (c) {
    if (c.path) S.lastPath = c.path;
    return c.stop(opts);
  }
  return Promise.resolve();
}

async function fetchIceServers() {
  try {
    const res = await request(api('api/turn-credentials'), { headers: authHeaders(token), timeoutMs: 5000 });
    if (!res.ok) throw await readError(res);
    const list = await res.json();
    return Array.isArray(list) ? list.filter((s) => s && s.urls) : [];
  } catch (e) {
    if (e instanceof HttpError && e.status === 401) throw e;
    console.info('picamrtc: no ICE servers from api/turn-credentials:', e.message);
    return [];
  }
}

async function connect() {
  dropClient();
  const gen = S.gen;
  if (!S.device) {
    setState('idle', S.gatewayError ? 'Gateway unreachable' : 'No camera selected',
      S.gatewayError ? S.gatewayError.message : 'Choose a camera from the list');
    return;
  }
  if (!canReceiveH264()) {
    setState('error', 'Error: this browser cannot decode H.264', 'Try Chrome, Edge, Safari or Firefox with H.264 enabled');
    return;
  }
  setState('connecting', 'Connecting…', `Camera ${S.device}`);

  let iceServers;
  try {
    iceServers = await fetchIceServers();
  } catch (e) {
    if (gen === S.gen) fail(e);
    return;
  }
  if (gen !== S.gen) return;
  // Whether to open the control channel, and whether the camera is
  // relayed, depend on its status: have it before the offer.
  if ((controlToken || RELAY) && !S.devicesLoaded) {
    await devicesLoaded(STATUS_WAIT_MS);
    if (gen !== S.gen) return;
  }

  const client = new WhepClient({
    device: S.device, token, iceServers, signalling: SIGNALLING,
    // Once WHEP has worked here, a 404 means "camera offline", not "no WHEP".
    fallbackOn404: !S.whepWorks,
    audio: true,
    micTrack: talk.micTrackFor(hasTalkback()),
    control: wantsControl(),
    // talking and steering need the camera itself: the client goes direct
    relay: wantsRelay(),
    relayLow: S.relayLow,
  });
  S.client = client;
  client.mediaStream = new MediaStream();
  client.addEventListener('track', (e) => {
    if (S.client === client) attachTrack(client, e.detail);
  });
  client.addEventListener('connectionstatechange', (e) => {
    if (S.client !== client) return;
    if (e.detail.state === 'connected') onConnected(client);
    render();
  });
  client.addEventListener('ended', (e) => {
    // too slow for Janus' retransmissions: relayed again without them
    if (client.slowLink) S.relayLow = true;
    if (S.client === client) fail(new SessionEnded(e.detail.reason));
  });

  try {
    await client.start();
  } catch (e) {
    if (S.client === client && !(e instanceof AbortedError)) fail(e);
    return;
  }
  if (S.client !== client) return;
  S.lastPath = client.path;
  if (client.path === 'whep') S.whepWorks = true;
  control.attach(client.controlChannel); // made by start(), opens after the answer
  talk.sessionStarted(client);
  monitor.attach(client.pc);
  if (client.pc.connectionState === 'connected') {
    onConnected(client);
  } else if (S.state !== 'live') {
    S.connectTimer = setTimeout(() => {
      if (S.client === client && S.state !== 'live') {
        fail(new SessionEnded(`no connection within ${CONNECT_TIMEOUT_MS / 1000} s`));
      }
    }, CONNECT_TIMEOUT_MS);
  }
  render();
}

function onConnected(client) {
  if (S.client !== client || S.state === 'live') return;
  if (client.path === 'relay') S.relayFailures = 0;
  clearTimeout(S.connectTimer);
  S.connectTimer = null;
  S.liveSince = performance.now();
  S.framesAtLive = S.framesRendered;
  S.lastFrameAt = performance.now();
  clearTimeout(S.stableTimer);
  S.stableTimer = setTimeout(() => {
    S.stableTimer = null;
    if (S.client === client && S.state === 'live') S.failures = 0;
  }, STABLE_MS);
  setState('live', 'Live');
}

/** The session's video and audio tracks, in one stream in the <video>
 * (whatever stream ids the camera gave them). */
function attachTrack(client, { track }) {
  const stream = client.mediaStream;
  if (!stream.getTracks().includes(track)) stream.addTrack(track);
  if (el.video.srcObject !== stream) {
    el.video.srcObject = stream;
    meter.reset(); // a new stream: look at every frame again
  }
  renderAudio();
  const p = el.video.play();
  if (p && p.catch) p.catch(() => { /* muted autoplay; a click plays */ });
}

function fail(err) {
  if (S.userStopped) return;
  if (S.client && S.client.relay && S.client.path !== 'whep' && S.client.path !== 'bulk' &&
    S.state !== 'live') S.relayFailures += 1;
  const selected = S.devices.find((d) => d.id === S.device);
  const wasOffline = S.devicesLoaded && !S.gatewayError && (!selected || selected.state === 'offline');
  dropClient();
  const msg = (err && err.message) || String(err);
  if (err instanceof HttpError) {
    switch (err.status) {
      case 401:
        S.needsToken = true;
        setState('error', `Error: ${msg}`, 'This gateway needs an access token.');
        askToken(msg, true);
        return;
      case 404:
        setState('offline', 'Camera offline', msg);
        break;
      case 503:
        setState('error', 'Camera busy (max viewers)', msg);
        break;
      case 405:
      case 501:
        // Neither WHEP nor the bulk API answers here: not a picamrtc gateway.
        setState('error', 'Gateway unreachable', `No picamrtc signalling at this address (${msg})`);
        break;
      default:
        setState('error', `Error: ${msg}`);
    }
  } else if (err instanceof NetworkError) {
    setState('error', 'Gateway unreachable', msg);
  } else if (err instanceof SessionEnded) {
    if (wasOffline) setState('offline', 'Camera offline', `The session ended: ${msg}`);
    else setState('reconnecting', 'Reconnecting…', `The session ended: ${msg}`);
  } else {
    console.error('picamrtc:', err);
    setState('error', `Error: ${msg}`);
  }
  scheduleRetry();
}

// ---- public actions -------------------------------------------------------------

function selectDevice(id) {
  if (S.device !== id) {
    S.device = id;
    S.selectedWas = undefined;
    talk.reset();
    const p = new URLSearchParams(location.search);
    p.set('device', id);
    try { history.replaceState(null, '', `${location.pathname}?${p}${location.hash}`); } catch { /* file: URLs */ }
    const dev = S.devices.find((d) => d.id === id);
    if (dev && dev.status && dev.status.width && dev.status.height) setAspect(dev.status.width, dev.status.height);
  }
  renderDevices();
}

/** Play a camera (default: the selected one). Resolves once negotiated or failed. */
async function play(deviceId) {
  if (deviceId != null && deviceId !== '') selectDevice(String(deviceId));
  S.userStopped = false;
  S.needsToken = false;
  S.tokenDismissed = false;
  S.failures = 0;
  S.relayFailures = 0;
  S.relayLow = false;
  await connect();
}

/** End the session (DELETE / stop-webrtc); no reconnect until play(). */
async function stop() {
  S.userStopped = true;
  talk.reset();
  const p = dropClient();
  el.video.srcObject = null;
  clearStats();
  setState('stopped', 'Stopped', S.device ? 'Press Play to watch again' : '');
  await p;
}

function onDeviceClick(id) {
  if (id === S.device && !S.userStopped && ['live', 'connecting'].includes(S.state)) return;
  play(id);
}

// ---- still images -------------------------------------------------------------------

const thumbs = new Map();         // device id -> { url, at, loading }
const recordings = new RecordingsPanel($('recordings'), api, () => authHeaders(token));

/** A camera's picture now (GET api/snapshot/D) as a Blob. */
async function fetchSnapshot(id, timeoutMs) {
  const res = await request(api(`api/snapshot/${encodeURIComponent(id)}`),
    { headers: authHeaders(token), timeoutMs });
  if (!res.ok) throw await readError(res);
  return res.blob();
}

/** Fetches the thumbnails that are due: online cameras, every 30 s. */
function refreshThumbs() {
  if (document.hidden) return;
  const now = Date.now();
  for (const d of S.devices) {
    if (d.state !== 'online') continue;
    let t = thumbs.get(d.id);
    if (!t) thumbs.set(d.id, t = { url: null, at: 0, loading: false });
    if (t.loading || now - t.at < THUMB_MS) continue;
    t.loading = true;
    t.at = now;
    fetchSnapshot(d.id, 10000).then((blob) => {
      if (t.url) URL.revokeObjectURL(t.url);
      t.url = URL.createObjectURL(blob);
      renderDevices();
    }).catch(() => { /* the last one stays; another try in 30 s */ })
      .finally(() => { t.loading = false; });
  }
}

/** Saves the selected camera's picture as "D-YYYYMMDD-HHMMSS.jpg". */
async function saveSnapshot() {
  if (!S.device || el.snapBtn.disabled) return;
  el.snapBtn.disabled = true;
  try {
    const blob = await fetchSnapshot(S.device, 10000);
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `${S.device}-${stamp}.jpg`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    el.srStatus.textContent = `Snapshot saved as ${a.download}`;
  } catch (e) {
    el.srStatus.textContent = `No snapshot: ${e.message}`;
    el.snapBtn.title = `No snapshot: ${e.message}`;
  } finally {
    el.snapBtn.disabled = false;
  }
}

// ---- device polling ---------------------------------------------------------------

let pollTimer = null;

function normalizeDevices(list) {
  const out = [];
  for (const d of list) {
    if (!d || typeof d.id !== 'string' || !d.id) continue;
    const status = d.status && typeof d.status === 'object' ? d.status : {};
    const state = ['online', 'offline', 'error'].includes(status.state) ? status.state : 'offline';
    out.push({ id: d.id, state, status });
  }
  return out;
}

async function poll() {
  clearTimeout(pollTimer);
  try {
    const res = await request(api('api/devices'), { headers: authHeaders(token), timeoutMs: 5000 });
    if (!res.ok) throw await readError(res);
    let list;
    try { list = await res.json(); } catch { throw new HttpError(502, 'api/devices: malformed JSON'); }
    if (!Array.isArray(list)) throw new HttpError(502, 'api/devices: not a list');
    S.gatewayError = null;
    onDevices(normalizeDevices(list));
    wakeDevicesWaiters();
  } catch (e) {
    wakeDevicesWaiters();
    S.gatewayError = e instanceof HttpError || e instanceof NetworkError ? e : new NetworkError(e.message);
    if (e instanceof HttpError && e.status === 401) askToken(e.message, false);
    if (!S.device && S.state === 'idle') {
      setState('idle', 'Gateway unreachable', `${e.message}\nNo cameras to show; trying again every ${POLL_MS / 1000} s`);
    }
    renderDevices();
    render();
  } finally {
    pollTimer = setTimeout(poll, document.hidden ? POLL_MS * 5 : POLL_MS);
  }
}

function onDevices(list) {
  S.devices = list;
  const first = !S.devicesLoaded;
  S.devicesLoaded = true;
  refreshThumbs();

  if (!S.device) {
    const pick = list.find((d) => d.state === 'online') || list.find((d) => d.state === 'error');
    if (pick && AUTOPLAY && !S.userStopped) {
      selectDevice(pick.id);
      S.selectedWas = pick.state;
      play(pick.id);
    } else if (pick || list.length) {
      const d = pick || list[0];
      selectDevice(d.id);
      S.selectedWas = d.state;
      if (!AUTOPLAY) setState('idle', 'Ready', 'Press Play to watch');
      else setState('offline', 'Camera offline', 'Playback starts when it comes online');
    } else {
      setState('idle', 'No cameras', 'No camera has reported to the gateway yet');
    }
    renderDevices();
    render();
    return;
  }

  const dev = list.find((d) => d.id === S.device);
  const now = dev ? dev.state : 'offline';
  recordings.update(S.device, dev && now !== 'offline' ? dev.status : null);
  const was = S.selectedWas;
  S.selectedWas = now;
  if (dev && dev.status.width && dev.status.height && !el.video.videoWidth) setAspect(dev.status.width, dev.status.height);

  if (!S.userStopped && !S.needsToken) {
    const cameBack = answerable(now) && was !== undefined && !answerable(was);
    const waiting = S.state === 'offline' && !S.retryTimer && !S.client;
    if (now === 'offline' && was !== undefined && answerable(was) && ['live', 'connecting'].includes(S.state)) {
      // The device said so (its own status, or the broker's last will for
      // it): no need to wait seconds for the media connection to time out.
      dropClient();
      waitForOnline('The camera went offline');
    } else if ((cameBack && ['offline', 'reconnecting', 'error'].includes(S.state)) || (waiting && answerable(now))) {
      // The camera is back: no need to sit out the backoff.
      S.failures = 0;
      connect();
    } else if (!answerable(now) && S.state === 'reconnecting') {
      S.state = 'offline';
      S.statusText = 'Camera offline';
    } else if (first && S.state === 'idle' && AUTOPLAY && answerable(now)) {
      play(S.device);
    }
  }
  renderDevices();
  render();
}

// ---- access token -----------------------------------------------------------------

function askToken(reason, userInitiated) {
  if (tokenSource === 'storage') {
    save(TOKEN_KEY, null); // the stored token was refused
    tokenSource = null;
  } else if (tokenSource === 'control') {
    save(CONTROL_KEY, null); // the control token was refused
    controlToken = null;
    tokenSource = null;
  }
  if (!userInitiated && S.tokenDismissed) return;
  if (el.tokenDialog.open) return;
  el.tokenReason.textContent = token
    ? `The gateway refused the token (${reason}). Enter another one.`
    : `This gateway asks for an access token (${reason}).`;
  el.tokenInput.value = '';
  if (typeof el.tokenDialog.showModal === 'function') el.tokenDialog.showModal();
  else el.tokenDialog.setAttribute('open', '');
  el.tokenInput.focus();
}

el.tokenDialog.addEventListener('close', () => {
  const value = el.tokenInput.value.trim();
  if (el.tokenDialog.returnValue === 'ok' && value) {
    token = value;
    tokenSource = 'storage';
    save(TOKEN_KEY, value);
    S.needsToken = false;
    S.tokenDismissed = false;
    S.gatewayError = null;
    poll();
    if (S.device) play(S.device);
  } else {
    S.tokenDismissed = true;
  }
  el.tokenInput.value = '';
});

// ---- layout helpers -------------------------------------------------------------------

function setAspect(w, h) {
  if (w > 0 && h > 0) el.viewport.style.setProperty('--aspect', `${w} / ${h}`);
}

function isFullscreen() { return Boolean(document.fullscreenElement || document.webkitFullscreenElement); }

function toggleFullscreen() {
  if (isFullscreen()) {
    (document.exitFullscreen || document.webkitExitFullscreen).call(document);
    return;
  }
  const stage = el.stage;
  const videoFs = () => { if (el.video.webkitEnterFullscreen) el.video.webkitEnterFullscreen(); };
  if (stage.requestFullscreen) stage.requestFullscreen({ navigationUI: 'hide' }).catch(videoFs);
  else if (stage.webkitRequestFullscreen) stage.webkitRequestFullscreen();
  else videoFs(); // iPhone Safari: only the video element goes fullscreen
}

function onFullscreenChange() {
  const fs = isFullscreen();
  el.fsBtn.setAttribute('aria-label', fs ? 'Exit fullscreen' : 'Fullscreen');
  el.fsBtn.title = fs ? 'Exit fullscreen (F)' : 'Fullscreen (F)';
  el.fsBtn.querySelector('.btn-label').textContent = fs ? 'Exit' : 'Fullscreen';
  el.stage.classList.toggle('is-fullscreen', fs);
}

function setStatsVisible(on) {
  el.stats.hidden = !on;
  el.statsBtn.setAttribute('aria-pressed', String(on));
  save(STATS_KEY, on ? '1' : '0');
}

// ---- wiring -------------------------------------------------------------------------

el.playBtn.addEventListener('click', () => {
  if (el.playBtn.classList.contains('is-playing')) stop();
  else play();
});
el.retryBtn.addEventListener('click', () => {
  if (S.needsToken) askToken('401', true);
  else play();
});
el.statsBtn.addEventListener('click', () => setStatsVisible(el.stats.hidden));
el.fsBtn.addEventListener('click', toggleFullscreen);
el.snapBtn.addEventListener('click', saveSnapshot);
el.soundBtn.addEventListener('click', () => setMuted(!el.video.muted));
el.video.addEventListener('volumechange', renderAudio);
el.viewport.addEventListener('dblclick', (e) => {
  if (e.target.closest('button, .stats')) return;
  toggleFullscreen();
});
document.addEventListener('fullscreenchange', onFullscreenChange);
document.addEventListener('webkitfullscreenchange', onFullscreenChange);
el.video.addEventListener('resize', () => setAspect(el.video.videoWidth, el.video.videoHeight));
// A click on the video starts it if autoplay was refused.
el.video.addEventListener('click', () => { if (el.video.paused && el.video.srcObject) el.video.play().catch(() => {}); });

document.addEventListener('keydown', (e) => {
  if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target.closest && e.target.closest('input, textarea, select, dialog')) return;
  // Arrow keys drive (space stops) while the control panel shows; space on
  // a focused button stays that button's.
  if (!(e.key === ' ' && e.target.closest && e.target.closest('button')) && control.onKey(e)) return;
  if ((e.key === 't' || e.key === 'T') && talk.shown) {
    e.preventDefault();
    if (!e.repeat) talk.press();
    return;
  }
  if (e.key === 'm' || e.key === 'M') { e.preventDefault(); if (audioReceived()) setMuted(!el.video.muted); }
  else if (e.key === 'f' || e.key === 'F') { e.preventDefault(); toggleFullscreen(); }
  else if (e.key === 's' || e.key === 'S') { e.preventDefault(); setStatsVisible(el.stats.hidden); }
  else if (e.key === 'p' || e.key === 'P') { e.preventDefault(); saveSnapshot(); }
});

document.addEventListener('keyup', (e) => {
  if (e.key === 't' || e.key === 'T') talk.release();
});

window.addEventListener('pagehide', () => {
  // The page is going away: end the session now, the request outlives the page.
  if (S.client) dropClient({ keepalive: true });
});
window.addEventListener('pageshow', (e) => {
  if (e.persisted && S.device && !S.userStopped) play(S.device);
});

// Countdown, stall display and the latency readout.
setInterval(() => {
  render();
  renderLatencyStats();
}, 500);

// ---- window.picamrtc ------------------------------------------------------------------

const picamrtc = {
  /** 'idle'|'connecting'|'live'|'reconnecting'|'offline'|'error'|'stopped' */
  get state() { return S.state; },
  /** the words shown for the state, e.g. "Reconnecting in 4 s…" */
  get statusText() { return stateWords(); },
  /** the selected device id */
  get device() { return S.device; },
  /** the last polled device list [{id, state, status}] */
  get devices() { return S.devices.map((d) => ({ ...d })); },
  /** the current session id (WHEP Location's last segment or the bulk "session"), else null */
  get session() { return (S.client && S.client.session) || null; },
  /** 'whep' | 'bulk' (direct) or 'relay' (through Janus, api/relay) for the
   * current (or last) session, null before any */
  get path() { return currentPath() || null; },
  /** relayed attempts in a row that never played; from 2 on the page
   * watches directly until play() */
  get relayFailures() { return S.relayFailures; },
  /** why the current session does not go through Janus although the
   * camera's status says it is relayed (the gateway's 409 message), '' when
   * it does or the relay was not tried */
  get relayFallback() { return (S.client && S.client.relayFallback) || ''; },
  /** relayed: the layer asked of Janus ('high', or 'low' while this page's
   * link loses packets), else null */
  get layer() { return S.client && S.client.path === 'relay' ? S.client.layer : null; },
  /** the current RTCPeerConnection, else null */
  get pc() { return (S.client && S.client.pc) || null; },
  /** the latest stats sample (see stats.js EMPTY for the fields) */
  get stats() { return S.stats; },
  /** the camera's last stats for this viewer, polled from the gateway once
   * a second while the overlay shows ({rendition, width, height, estimate,
   * bitrate, loss, rtt, ageMs}, docs/http-api.md), else null */
  get cameraStats() { return S.camera; },
  /** frames presented by the <video>, counted with requestVideoFrameCallback since load */
  get framesRendered() { return S.framesRendered; },
  /** Capture-to-display latency of every frame whose latency stamp was read
   * (picamrtc --latency-stamp, docs/latency.md), oldest first, at most 36000
   * (the oldest dropped): {frame, captureUs, displayMs, latencyMs,
   * presentedFrames}. frame is the stamp's counter, captureUs the capture
   * wall-clock time (µs since the epoch), displayMs when the frame is shown
   * (rVFC expectedDisplayTime as epoch ms, a float), latencyMs = displayMs -
   * captureUs / 1000, presentedFrames the rVFC metadata's. Collected whether
   * or not the overlay shows. The live array: read it, do not change it. */
  get latencySamples() { return meter.samples; },
  /** {last, p50, p95, count, windowSeconds: 5} in ms over the samples of the
   * last 5 s (p50/p95 nearest-rank), or null when no stamp was read then */
  get latency() { return meter.summary(); },
  /** the stamp reader of the current stream: {framesRead: frames looked at,
   * backingOff: true while no stamp turns up and it looks once a second,
   * blockSize of the last stamp (0: none yet), lostFrames: frames the camera
   * stamped that this page never presented (gaps in the stamp's counter)} */
  get latencyReader() { return meter.status(); },
  /** empties latencySamples (the 5 s window of `latency` is kept) */
  clearLatencySamples() { meter.clear(); },
  /** the forced signalling path from ?signalling=, 'auto' by default */
  get signalling() { return SIGNALLING; },
  /** The camera's sound: {received: the answer sends audio and a live audio
   * track is in the <video>'s stream, muted: the <video> is muted (it starts
   * muted), answer: the camera's direction for the audio m-line
   * ('sendonly', 'sendrecv', 'rejected', 'inactive', null before an answer),
   * direction: the audio transceiver's currentDirection as the browser
   * sees it} */
  get audio() {
    const c = S.client;
    const tr = c && c.audioTransceiver;
    return {
      received: audioReceived(),
      muted: el.video.muted,
      answer: (c && c.audioAnswer) || null,
      direction: (tr && tr.currentDirection) || null,
    };
  },
  /** Promise of the received audio's getStats() figures {audioLevel (0..1,
   * the last ~second), totalAudioEnergy, totalSamplesDuration,
   * totalSamplesReceived, concealedSamples, packetsReceived, bytesReceived},
   * null without a session or an audio receiver */
  audioLevel,
  /** mute (true) or unmute (false) the camera's sound, like the Sound button */
  setMuted,
  /** The control channel (data channel "control"): shown: the panel shows
   * (status control:true and a control token), state: the channel's
   * readyState or null, send(text): sends a text, false unless open,
   * command(cmd): sends {"cmd": cmd}, received / sent: every text received
   * / sent on this page's control channels, oldest first (the live arrays,
   * at most 500 each), telemetry: the last text received */
  control: {
    get shown() { return control.shown; },
    get state() { return control.state; },
    send: (text) => control.send(text),
    command: (cmd) => control.command(cmd),
    get received() { return control.received; },
    get sent() { return control.sent; },
    get telemetry() { return control.telemetry; },
  },
  /** Push-to-talk: shown (status talkback:true), state 'off' | 'asking' |
   * 'denied' | 'unsupported' | 'starting' | 'ready' | 'talking' | 'busy'
   * (someone else talks), pressed, canTalk: the current session's answer
   * lets this viewer talk, micEnabled: the microphone track is on,
   * press() / release(): like holding the button, stats(): Promise of the
   * sent audio's {packetsSent, bytesSent} or null */
  talk: {
    get shown() { return talk.shown; },
    get state() { return talk.state; },
    get pressed() { return talk.pressed; },
    get canTalk() { return Boolean(S.client && S.client.canTalk); },
    get micEnabled() { return Boolean(talk.track && talk.track.enabled && talk.track.readyState === 'live'); },
    press: () => talk.press(),
    release: () => talk.release(),
    stats: talkStats,
  },
  play,
  stop,
};
window.picamrtc = picamrtc;

// ---- start ------------------------------------------------------------------------

setStatsVisible(params.has('stats') ? params.get('stats') !== '0' : load(STATS_KEY) !== '0');
startFrameCounter(el.video);
clearStats();
renderDevices();
if (S.device) {
  renderDevices();
  if (AUTOPLAY) play(S.device);
  else setState('idle', 'Ready', 'Press Play to watch');
} else {
  setState('idle', 'Looking for cameras…', '');
}
poll();
