// picamrtc web client: a small WHEP client (draft-ietf-wish-whep) for a
// video session (plus the camera's audio, and optionally the viewer's
// microphone and a `control` data channel), with the seed's bulk API as a
// fallback.
//
//   const c = new WhepClient({ device: 'cam1', iceServers, token });
//   c.addEventListener('track', (e) => { video.srcObject = e.detail.streams[0]; });
//   c.addEventListener('ended', (e) => console.log('session over:', e.detail.reason));
//   await c.start();     // c.path is 'whep' or 'bulk', c.session the session id
//   await c.stop();      // DELETE the WHEP resource, or POST /api/stop-webrtc
//
// WHEP: POST <base>/whep/D with the offer (application/sdp) right after
// setLocalDescription; 201 gives Location (the session resource) and the
// answer. Local candidates trickle by PATCH (application/trickle-ice-sdpfrag,
// RFC 8840) in small batches, then a=end-of-candidates.
// Bulk (the seed's API): wait for ICE gathering to complete, POST
// <base>/api/start-webrtc {"type":"offer","sdp","device"} and read
// {"webrtc_answer","session"}; stop with POST <base>/api/stop-webrtc.
// 'auto' (the default) tries WHEP and falls back to bulk when the POST
// answers 404, 405 or 501 or cannot be sent at all.
// Relayed (`relay: true`, a camera that publishes to a Janus VideoRoom):
// POST <base>/api/relay/D gives Janus' offer; the answer, once ICE
// gathering completed (at most ~2 s), goes by PATCH <base>/api/relay/D/S
// (application/sdp) with every candidate inside; DELETE ends it. A 409
// (or a gateway without /api/relay: 404, 405, 501) means "watch directly":
// the session goes on over WHEP or bulk as above, and relayFallback says
// why.
//
// The offer holds, in this order: the video m-line (recvonly, H.264
// first), an audio m-line (Opus; recvonly, or sendrecv with the
// microphone's track for push-to-talk; a camera without audio rejects it
// and the video plays on), and with `control` an application m-line for the
// data channel "control" (docs: contract of issue 11).
//
// No dependencies, no build step: an ES module for current browsers.

/** An HTTP error answer: `status` and the server's one-line message. */
export class HttpError extends Error {
  constructor(status, message, url = '') {
    super(message || `HTTP ${status}`);
    this.name = 'HttpError';
    this.status = status;
    this.url = url;
  }
}

/** The request could not be made (gateway down, network gone, timeout). */
export class NetworkError extends Error {
  constructor(message, cause) {
    super(message);
    this.name = 'NetworkError';
    this.cause = cause;
  }
}

/** Thrown by start() when stop() was called meanwhile. */
export class AbortedError extends Error {
  constructor() {
    super('stopped');
    this.name = 'AbortError';
  }
}

/** Authorization header for an optional bearer token. */
export function authHeaders(token) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * fetch() with a timeout and an optional outer AbortSignal. A failure to
 * send becomes a NetworkError; an outer abort stays an AbortError.
 */
export async function request(url, {
  method = 'GET', headers = {}, body, timeoutMs = 15000, keepalive = false, signal,
} = {}) {
  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; ctl.abort(); }, timeoutMs);
  const onAbort = () => ctl.abort();
  if (signal) {
    if (signal.aborted) ctl.abort();
    else signal.addEventListener('abort', onAbort, { once: true });
  }
  try {
    return await fetch(url, {
      method, headers, body, keepalive, signal: ctl.signal,
      cache: 'no-store', credentials: 'same-origin', redirect: 'follow',
    });
  } catch (e) {
    if (signal && signal.aborted) throw new AbortedError();
    if (timedOut) throw new NetworkError(`${method} ${shortUrl(url)}: no answer in ${Math.round(timeoutMs / 1000)} s`, e);
    throw new NetworkError(`${method} ${shortUrl(url)}: ${e && e.message ? e.message : 'network error'}`, e);
  } finally {
    clearTimeout(timer);
    if (signal) signal.removeEventListener('abort', onAbort);
  }
}

function shortUrl(url) {
  try { return new URL(url, document.baseURI).pathname; } catch { return String(url); }
}

/**
 * Turn an error answer into an HttpError carrying the server's one-line
 * message. An HTML error page (a plain file server, a proxy) gives the
 * status line instead of markup.
 */
export async function readError(res) {
  let text = '';
  try { text = await res.text(); } catch { /* body unreadable */ }
  text = text.trim();
  if (/^<(!doctype|html|\?xml)/i.test(text) || /text\/html/i.test(res.headers.get('Content-Type') || '')) {
    text = ''; // an HTML error page, not the gateway's one-line message
  }
  text = text.split(/\r?\n/)[0].trim();
  if (text.length > 240) text = `${text.slice(0, 240)}…`;
  if (!text) text = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  return new HttpError(res.status, text, res.url);
}

/** Parse an fmtp line "a=1;b=2" into an object. */
function parseFmtp(line) {
  const out = {};
  for (const part of (line || '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim().toLowerCase()] = part.slice(i + 1).trim().toLowerCase();
  }
  return out;
}

/**
 * Rank a codec capability: constrained-baseline H.264 with
 * packetization-mode=1 first, then other H.264 with mode 1, then the rest.
 */
function codecRank(c) {
  const mime = (c.mimeType || '').toLowerCase();
  if (mime === 'video/h264') {
    const f = parseFmtp(c.sdpFmtpLine);
    const pm1 = f['packetization-mode'] === '1';
    const plid = f['profile-level-id'] || '42001f';
    const profile = plid.slice(0, 2);
    const constraints = parseInt(plid.slice(2, 4), 16) || 0;
    const constrainedBaseline = profile === '42' && (constraints & 0x40) !== 0;
    if (pm1 && constrainedBaseline) return 0;
    if (pm1 && profile === '42') return 1;
    if (pm1) return 2;
    return 3;
  }
  if (/\/(rtx|red|ulpfec|flexfec-03)$/.test(mime)) return 4;
  return 5;
}

/** True when the browser can receive H.264 (unknown counts as yes). */
export function canReceiveH264() {
  try {
    const caps = RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities('video');
    if (!caps) return true;
    return caps.codecs.some((c) => (c.mimeType || '').toLowerCase() === 'video/h264');
  } catch {
    return true;
  }
}

/** Put H.264 (constrained baseline, packetization-mode=1) first. */
export function preferH264(transceiver) {
  if (!transceiver || typeof transceiver.setCodecPreferences !== 'function') return false;
  let caps;
  try { caps = RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities('video'); } catch { caps = null; }
  if (!caps || !caps.codecs || !caps.codecs.length) return false;
  const sorted = caps.codecs
    .map((c, i) => ({ c, i, r: codecRank(c) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((x) => x.c);
  try {
    transceiver.setCodecPreferences(sorted);
    return true;
  } catch (e) {
    console.warn('picamrtc: setCodecPreferences failed:', e);
    return false;
  }
}

/**
 * The direction of the m-line with a=mid:`mid` in `sdp` ('sendrecv',
 * 'sendonly', 'recvonly', 'inactive'; 'rejected' for port 0), or null when
 * there is no such m-line.
 */
export function mediaDirection(sdp, mid) {
  if (!sdp || mid == null) return null;
  const sections = sdp.split(/\r?\n(?=m=)/).slice(1);
  for (const sec of sections) {
    const m = /^a=mid:(.+)$/m.exec(sec);
    if (!m || m[1].trim() !== String(mid)) continue;
    if (/^m=\S+ 0 /.test(sec)) return 'rejected';
    const d = /^a=(sendrecv|sendonly|recvonly|inactive)\s*$/m.exec(sec);
    return d ? d[1] : 'sendrecv';
  }
  return null;
}

/**
 * `sdp` (an answer) with its m-line a=mid:`mid` rejected (port 0, out of
 * the BUNDLE group) when the camera answered it inactive: the same for the
 * media, but a camera that signals no a=ssrc for its video (webrtcbin
 * without RTX) sends packets that Chromium routes to the video only while
 * the video's m-line is the only one left in the bundle.
 */
export function rejectInactive(sdp, mid) {
  if (mediaDirection(sdp, mid) !== 'inactive') return sdp;
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const parts = sdp.split(/\r?\n(?=m=)/);
  for (let i = 1; i < parts.length; i++) {
    const m = /^a=mid:(.+)$/m.exec(parts[i]);
    if (m && m[1].trim() === String(mid)) parts[i] = parts[i].replace(/^(m=\S+) \d+/, '$1 0');
  }
  parts[0] = parts[0].replace(/^a=group:BUNDLE .*$/m,
    (line) => line.split(' ').filter((x, k) => k === 0 || x !== String(mid)).join(' '));
  return parts.join(eol);
}

/**
 * Offer Opus only on the audio m-line (the camera speaks nothing else; no
 * audio RED, which would double the microphone's bitrate for nothing).
 */
export function preferOpus(transceiver) {
  if (!transceiver || typeof transceiver.setCodecPreferences !== 'function') return false;
  let caps;
  try { caps = RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities('audio'); } catch { caps = null; }
  const opus = caps && caps.codecs ? caps.codecs.filter((c) => (c.mimeType || '').toLowerCase() === 'audio/opus') : [];
  if (!opus.length) return false;
  try {
    transceiver.setCodecPreferences(opus);
    return true;
  } catch (e) {
    console.warn('picamrtc: audio setCodecPreferences failed:', e);
    return false;
  }
}

/** Ask the receiver for the smallest playout delay the browser allows. */
export function tuneReceiver(receiver) {
  if (!receiver) return;
  try { if ('jitterBufferTarget' in receiver) receiver.jitterBufferTarget = 0; } catch { /* unsupported */ }
  try { if ('playoutDelayHint' in receiver) receiver.playoutDelayHint = 0; } catch { /* unsupported */ }
}

/** Parse RFC 8288 Link headers with rel="ice-server" into RTCIceServer objects. */
export function parseIceServerLinks(headerValue) {
  const servers = [];
  if (!headerValue) return servers;
  // Split on commas that start a new <uri> (URIs and quoted values may hold commas).
  for (const link of headerValue.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(link);
    if (!m) continue;
    const params = {};
    const re = /;\s*([A-Za-z0-9_-]+)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"|([^;,\s]*)))?/g;
    let p;
    while ((p = re.exec(m[2])) !== null) {
      params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] || '');
    }
    if ((params.rel || '').split(/\s+/).includes('ice-server')) {
      const s = { urls: m[1] };
      if (params.username) s.username = params.username;
      if (params.credential) s.credential = params.credential;
      servers.push(s);
    }
  }
  return servers;
}

function iceCredentials(sdp) {
  const ufrag = /^a=ice-ufrag:(.+)$/m.exec(sdp || '');
  const pwd = /^a=ice-pwd:(.+)$/m.exec(sdp || '');
  return { ufrag: ufrag ? ufrag[1].trim() : '', pwd: pwd ? pwd[1].trim() : '' };
}

/**
 * Resolve once ICE gathering is complete, or after timeoutMs, or once no
 * new candidate came for quietMs after the first one (an unreachable STUN
 * server would otherwise hold the offer for many seconds). Resolves to
 * true when gathering completed.
 */
function waitForIceGathering(pc, timeoutMs, quietMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve(true);
  return new Promise((resolve) => {
    let quiet = null;
    const done = (ok) => {
      clearTimeout(timer);
      clearTimeout(quiet);
      pc.removeEventListener('icegatheringstatechange', check);
      pc.removeEventListener('icecandidate', onCand);
      resolve(ok);
    };
    const check = () => { if (pc.iceGatheringState === 'complete') done(true); };
    const onCand = (e) => {
      if (!e.candidate || !e.candidate.candidate) { done(true); return; }
      clearTimeout(quiet);
      quiet = setTimeout(() => done(false), quietMs);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    pc.addEventListener('icegatheringstatechange', check);
    pc.addEventListener('icecandidate', onCand);
    // Candidates gathered before we started listening count too.
    if (/^a=candidate:/m.test((pc.localDescription && pc.localDescription.sdp) || '')) {
      quiet = setTimeout(() => done(false), quietMs);
    }
  });
}

/**
 * One video session with a camera (its audio too), over WHEP or the bulk API.
 *
 * Events (EventTarget, data in `event.detail`):
 *  - 'track'                  {track, streams, receiver}
 *  - 'connectionstatechange'  {state}  the RTCPeerConnection's connectionState
 *  - 'ended'                  {reason} the session is over (connection failed or
 *                             closed, the camera closed DTLS, or disconnected for
 *                             longer than disconnectGraceMs); not sent after stop()
 *  - 'warning'                {message} something non-fatal (a PATCH failed, ...)
 */
export class WhepClient extends EventTarget {
  /**
   * @param {object} o
   * @param {string} o.device                 device id D
   * @param {string} [o.baseUrl]              where /whep and /api live (default: the page)
   * @param {string} [o.token]                bearer token
   * @param {RTCIceServer[]} [o.iceServers]   STUN/TURN servers
   * @param {'auto'|'whep'|'bulk'} [o.signalling]
   * @param {number} [o.gatherTimeoutMs]      bulk: how long to wait for ICE gathering at most
   * @param {number} [o.gatherQuietMs]        bulk: stop waiting once no candidate came for this long
   * @param {boolean} [o.fallbackOn404]       auto: a WHEP 404 means "no WHEP here" (default);
   *                                          false once WHEP is known to work (404 = offline)
   * @param {number} [o.requestTimeoutMs]     POST timeout (the gateway waits for the device)
   * @param {number} [o.disconnectGraceMs]    'disconnected' this long ends the session
   * @param {boolean} [o.audio]               offer an audio m-line (default true)
   * @param {MediaStreamTrack} [o.micTrack]   offer the audio m-line sendrecv with this
   *                                          track (push-to-talk); else recvonly
   * @param {boolean} [o.control]             create the data channel "control" before the offer
   * @param {boolean} [o.relay]               try the camera's Janus relay first (no
   *                                          microphone, no control channel there)
   * @param {number} [o.relayGatherMs]        relay: how long ICE gathering may take at most
   * @param {boolean} [o.relayLow]            relay: this link was too slow before; start on
   *                                          the low layer, ask Janus for no retransmission
   */
  constructor({
    device, baseUrl, token = null, iceServers = [], signalling = 'auto',
    gatherTimeoutMs = 4000, gatherQuietMs = 1500, requestTimeoutMs = 20000, disconnectGraceMs = 5000,
    fallbackOn404 = true, audio = true, micTrack = null, control = false,
    relay = false, relayGatherMs = 2000, relayLow = false,
  } = {}) {
    super();
    if (!device) throw new TypeError('WhepClient: device is required');
    this.device = device;
    this.baseUrl = baseUrl || document.baseURI;
    this.token = token;
    this.iceServers = iceServers;
    this.signalling = signalling;
    this.gatherTimeoutMs = gatherTimeoutMs;
    this.gatherQuietMs = gatherQuietMs;
    this.fallbackOn404 = fallbackOn404;
    this.requestTimeoutMs = requestTimeoutMs;
    this.disconnectGraceMs = disconnectGraceMs;
    this.audio = Boolean(audio);
    this.micTrack = this.audio ? micTrack : null;
    /** whether this session offered sendrecv audio (push-to-talk) */
    this.talk = Boolean(this.micTrack);
    this.control = Boolean(control);
    this.relay = Boolean(relay) && !this.micTrack && !this.control;
    this.relayGatherMs = relayGatherMs;

    /** @type {RTCPeerConnection|null} */
    this.pc = null;
    /** @type {RTCRtpTransceiver|null} */
    this.transceiver = null;
    /** @type {RTCRtpTransceiver|null} the audio m-line's */
    this.audioTransceiver = null;
    /** @type {RTCDataChannel|null} the "control" channel (control: true) */
    this.controlChannel = null;
    /** the answer's direction for the audio m-line, as the camera wrote it
     * ('sendonly': it sends, 'sendrecv': it also plays our microphone,
     * 'rejected', 'inactive'), null before the answer or without audio */
    this.audioAnswer = null;
    /** 'whep', 'bulk' or 'relay' (through Janus) once negotiation
     * began; null before */
    this.path = null;
    /** why the relay was not used ('' when it was, or was not tried) */
    this.relayFallback = '';
    this.relayLow = Boolean(relayLow);
    /** relayed: the camera's simulcast layer asked of Janus, 'high' or 'low' */
    this.layer = this.relayLow ? 'low' : 'high';
    /** relayed: ended because the link could not carry even the low layer
     * with Janus' retransmissions (see _checkLayer) */
    this.slowLink = false;
    /** why WHEP was not used ('' when it was) */
    this.fallbackReason = '';
    /** session id: the last segment of the WHEP Location, or the bulk "session" */
    this.session = null;
    /** the WHEP session resource URL */
    this.resourceUrl = null;
    /** ICE servers the gateway listed in Link headers (informational) */
    this.linkIceServers = [];
    /** whether setCodecPreferences put H.264 first */
    this.codecPreferencesSet = false;
    this.closed = false;
    this.ended = false;

    this._abort = new AbortController();
    this._pending = [];          // RTCIceCandidate objects, null = end of candidates
    this._offerSdp = '';
    this._trickle = true;
    this._patchTimer = null;
    this._patchChain = Promise.resolve();
    this._disconnectTimer = null;
  }

  get whepUrl() { return new URL(`whep/${encodeURIComponent(this.device)}`, this.baseUrl).href; }
  get startUrl() { return new URL('api/start-webrtc', this.baseUrl).href; }
  get stopUrl() { return new URL('api/stop-webrtc', this.baseUrl).href; }
  get relayUrl() { return new URL(`api/relay/${encodeURIComponent(this.device)}`, this.baseUrl).href; }
  /** Where the gateway serves the camera's stats for this session: the WHEP
   * resource's /stats, or api/stats?session=S on the bulk path; null before
   * the answer. */
  get statsUrl() {
    if (this.path === 'whep' && this.resourceUrl) return `${this.resourceUrl}/stats`;
    if (this.path === 'bulk' && this.session) {
      return new URL(`api/stats?session=${encodeURIComponent(this.session)}`, this.baseUrl).href;
    }
    return null;
  }

  _emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  _headers(extra = {}) { return { ...authHeaders(this.token), ...extra }; }

  /** Negotiate. Resolves once the answer is applied (media may follow). */
  async start() {
    if (this.pc) throw new Error('WhepClient: start() called twice');
    if (this.relay && await this._startRelay()) return this;
    this._check();
    const pc = new RTCPeerConnection({
      iceServers: this.iceServers || [],
      bundlePolicy: 'max-bundle',
      rtcpMuxPolicy: 'require',
    });
    this.pc = pc;
    const tr = pc.addTransceiver('video', { direction: 'recvonly' });
    this.transceiver = tr;
    this.codecPreferencesSet = preferH264(tr);
    if (this.audio) {
      this.audioTransceiver = this.micTrack
        ? pc.addTransceiver(this.micTrack, { direction: 'sendrecv' })
        : pc.addTransceiver('audio', { direction: 'recvonly' });
      preferOpus(this.audioTransceiver);
    }
    if (this.control) {
      // Before the offer, so that the offer has the application m-line.
      this.controlChannel = pc.createDataChannel('control', { ordered: true });
    }
    this._watch(pc);

    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this._check();

    let answer = null;
    if (this.signalling !== 'bulk') {
      try {
        answer = await this._postWhep();
        this.path = 'whep';
      } catch (e) {
        if (e instanceof AbortedError || this.closed) throw new AbortedError();
        const statuses = this.fallbackOn404 ? [404, 405, 501] : [405, 501];
        const fallback = (e instanceof HttpError && statuses.includes(e.status)) ||
          e instanceof NetworkError || e instanceof TypeError;
        if (this.signalling === 'whep' || !fallback) throw e;
        this.fallbackReason = e.message;
        console.info(`picamrtc: WHEP not usable (${e.message}); using /api/start-webrtc`);
      }
    }
    if (answer === null) {
      this._trickle = false;
      this._pending = [];
      answer = await this._postBulk();
      this.path = 'bulk';
    }
    this._check();

    const audioMid = this.audioTransceiver && this.audioTransceiver.mid;
    if (this.audioTransceiver) this.audioAnswer = mediaDirection(answer, audioMid);
    await pc.setRemoteDescription({
      type: 'answer',
      sdp: this.audioAnswer === 'inactive' ? rejectInactive(answer, audioMid) : answer,
    });
    tuneReceiver(tr.receiver);
    if (this.audioTransceiver && this.audioAnswer !== 'rejected' && this.audioAnswer !== 'inactive') {
      tuneReceiver(this.audioTransceiver.receiver);
    }
    this._check();
    this._watchDtls(tr);
    if (this.path === 'whep') this._schedulePatch();
    return this;
  }

  /** The peer connection's events, for either path. */
  _watch(pc) {
    pc.addEventListener('track', (e) => {
      if (this.closed) return;
      this._emit('track', { track: e.track, streams: e.streams, receiver: e.receiver });
    });
    pc.addEventListener('icecandidate', (e) => this._onCandidate(e.candidate));
    pc.addEventListener('connectionstatechange', () => this._onConnectionState(pc.connectionState));
    if (!('connectionState' in pc)) {
      // Older engines: derive from the ICE state.
      pc.addEventListener('iceconnectionstatechange', () => {
        const s = pc.iceConnectionState;
        this._onConnectionState(s === 'completed' ? 'connected' : s);
      });
    }
  }

  /** The far end closing DTLS ends the session at once. */
  _watchDtls(tr) {
    const dtls = tr && tr.receiver && tr.receiver.transport;
    if (dtls && 'onstatechange' in dtls) {
      dtls.addEventListener('statechange', () => {
        if (dtls.state === 'closed') this._end('the camera closed the session');
        else if (dtls.state === 'failed') this._end('DTLS failed');
      });
    }
  }

  /**
   * The relayed path: Janus' offer from POST api/relay/D, our answer with
   * all its candidates by PATCH. Resolves to false, with nothing set up,
   * when the gateway says to watch directly (409, or no /api/relay there).
   */
  async _startRelay() {
    const res = await request(this.relayUrl, {
      method: 'POST',
      headers: this._headers({ 'Content-Type': 'application/json', Accept: 'application/json' }),
      body: this.relayLow ? '{"layer":"low"}' : '{}',
      timeoutMs: this.requestTimeoutMs,
      signal: this._abort.signal,
    });
    if ([404, 405, 409, 501].includes(res.status)) {
      let why = '';
      if (res.status === 409) {
        try {
          const b = await res.json();
          if (b && typeof b.error === 'string') why = b.error.slice(0, 240);
        } catch { /* not JSON */ }
      } else {
        why = (await readError(res)).message;
      }
      this.relayFallback = why || `HTTP ${res.status}`;
      console.info(`picamrtc: not relayed (${this.relayFallback}); watching directly`);
      return false;
    }
    if (res.status !== 201 && res.status !== 200) throw await readError(res);
    let body;
    try { body = await res.json(); } catch { body = null; }
    if (body && typeof body.session === 'string') this.session = body.session;
    const location = res.headers.get('Location');
    if (location) this.resourceUrl = new URL(location, res.url || this.relayUrl).href;
    else if (this.session) this.resourceUrl = `${this.relayUrl}/${encodeURIComponent(this.session)}`;
    // from here stop() ends the gateway's session
    this.path = 'relay';
    this._trickle = false;
    if (this.closed) {
      this._deleteResource(false);
      throw new AbortedError();
    }
    const offer = body && typeof body.sdp === 'string' ? body.sdp : '';
    if (!/^v=0/m.test(offer) || !this.resourceUrl) {
      throw new HttpError(502, 'the gateway answered the relay without an offer', res.url);
    }
    const servers = body && Array.isArray(body.iceServers)
      ? body.iceServers.filter((x) => x && x.urls) : (this.iceServers || []);
    const pc = new RTCPeerConnection({ iceServers: servers, bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
    this.pc = pc;
    this._watch(pc);
    await pc.setRemoteDescription({ type: 'offer', sdp: offer });
    this._check();
    for (const tr of pc.getTransceivers()) {
      const kind = tr.receiver && tr.receiver.track && tr.receiver.track.kind;
      if (kind === 'video' && !this.transceiver) this.transceiver = tr;
      else if (kind === 'audio' && !this.audioTransceiver) this.audioTransceiver = tr;
      try { tr.direction = 'recvonly'; } catch { /* a stopped transceiver */ }
    }
    // Janus offers what it sends: 'sendonly' for the camera's sound
    if (this.audioTransceiver) this.audioAnswer = mediaDirection(offer, this.audioTransceiver.mid);
    await pc.setLocalDescription(await pc.createAnswer());
    this._check();
    const complete = await waitForIceGathering(pc, this.relayGatherMs, this.relayGatherMs);
    this._check();
    if (!complete) console.info('picamrtc: ICE gathering still running; answering Janus with the candidates so far');
    const patch = await request(this.resourceUrl, {
      method: 'PATCH',
      headers: this._headers({ 'Content-Type': 'application/sdp' }),
      // relayLow: Janus 1.1.2 retransmits whatever is NACKed, with no
      // budget, so on a link too slow for the stream it multiplied the
      // traffic (7 Mbit/s at a 1 Mbit/s link) and froze the picture even on
      // the low layer; without NACK a loss costs a key frame instead
      body: this.relayLow
        ? pc.localDescription.sdp.replace(/^a=rtcp-fb:\d+ nack\r\n/gm, '')
        : pc.localDescription.sdp,
      timeoutMs: this.requestTimeoutMs,
      signal: this._abort.signal,
    });
    if (!patch.ok) throw await readError(patch);
    this._check();
    if (this.transceiver) tuneReceiver(this.transceiver.receiver);
    if (this.audioTransceiver) tuneReceiver(this.audioTransceiver.receiver);
    this._watchDtls(this.transceiver);
    this._layerTimer = setInterval(() => { this._checkLayer(); }, 1000);
    return true;
  }

  /**
   * Relayed: Janus sends the camera's high simulcast layer unless asked.
   * This viewer's link loses what does not fit, so: losing over 5 % of
   * the packets 2 seconds running, ask for the low layer (PATCH
   * {"layer":"low"}); 20 clean seconds on it, try the high one again,
   * after twice as long each time it failed within 15 s (at most 5 min).
   * Still losing as much 5 seconds on the low layer, the link drowns in
   * Janus' retransmissions: end, to subscribe again with relayLow.
   */
  async _checkLayer() {
    if (this.closed || !this.pc || !this.resourceUrl) return;
    let v = null;
    try {
      for (const r of (await this.pc.getStats()).values()) {
        if (r.type === 'inbound-rtp' && r.kind === 'video') v = r;
      }
    } catch { return; }
    if (!v) return;
    const L = this._layerState || (this._layerState = {
      lost: v.packetsLost || 0, got: v.packetsReceived || 0, bad: 0, good: 0,
      upAt: 0, waitS: 20,
    });
    const lost = (v.packetsLost || 0) - L.lost;
    const got = (v.packetsReceived || 0) - L.got;
    L.lost = v.packetsLost || 0;
    L.got = v.packetsReceived || 0;
    const loss = lost + got > 0 ? lost / (lost + got) : 0;
    L.bad = loss > 0.05 ? L.bad + 1 : 0;
    L.good = loss < 0.01 ? L.good + 1 : 0;
    if (this.layer !== 'low' && L.bad >= 2) {
      // back down soon after going up: the link did not hold it
      if (L.upAt && Date.now() - L.upAt < 15_000) L.waitS = Math.min(L.waitS * 2, 300);
      L.good = 0;
      L.lowAt = Date.now();
      await this._setLayer('low', loss);
    } else if (this.layer === 'low' && !this.relayLow && L.bad >= 3 &&
      Date.now() - L.lowAt >= 5000) {
      this.slowLink = true;
      this._end(`${(loss * 100).toFixed(0)} % lost on the low layer: the link ` +
        'is too slow for Janus\' retransmissions');
    } else if (this.layer === 'low' && L.good >= L.waitS) {
      L.upAt = Date.now();
      L.bad = 0;
      await this._setLayer('high', loss);
    }
  }

  async _setLayer(layer, loss) {
    this.layer = layer;
    console.info(`picamrtc: ${(loss * 100).toFixed(1)} % lost; asking Janus for the ${layer} layer`);
    try {
      await request(this.resourceUrl, {
        method: 'PATCH',
        headers: this._headers({ 'Content-Type': 'application/json' }),
        body: JSON.stringify({ layer }),
        timeoutMs: this.requestTimeoutMs,
        signal: this._abort.signal,
      });
    } catch { /* the session is ending */ }
  }

  _check() { if (this.closed) throw new AbortedError(); }

  /** The camera plays what we send on the audio m-line (its answer is
   * sendrecv or recvonly): this viewer may talk. */
  get canTalk() {
    return this.talk && (this.audioAnswer === 'sendrecv' || this.audioAnswer === 'recvonly');
  }

  /** The camera's audio comes (its answer sends on the audio m-line). */
  get audioReceived() {
    return this.audioAnswer === 'sendrecv' || this.audioAnswer === 'sendonly';
  }

  async _postWhep() {
    this._offerSdp = this.pc.localDescription.sdp;
    const res = await request(this.whepUrl, {
      method: 'POST',
      headers: this._headers({ 'Content-Type': 'application/sdp', Accept: 'application/sdp' }),
      body: this._offerSdp,
      timeoutMs: this.requestTimeoutMs,
      signal: this._abort.signal,
    });
    if (res.status !== 201 && res.status !== 200) throw await readError(res);
    const location = res.headers.get('Location');
    const sdp = await res.text();
    if (location) {
      this.resourceUrl = new URL(location, res.url || this.whepUrl).href;
      const segs = new URL(this.resourceUrl).pathname.split('/').filter(Boolean);
      this.session = segs.length ? decodeURIComponent(segs[segs.length - 1]) : null;
    } else {
      this._trickle = false; // nowhere to PATCH
    }
    this.linkIceServers = parseIceServerLinks(res.headers.get('Link'));
    if (this.closed) {
      this._deleteResource(false);
      throw new AbortedError();
    }
    if (!/^v=0/m.test(sdp)) throw new HttpError(502, 'the gateway answered without an SDP', res.url);
    return sdp;
  }

  async _postBulk() {
    const complete = await waitForIceGathering(this.pc, this.gatherTimeoutMs, this.gatherQuietMs);
    this._check();
    if (!complete) console.info('picamrtc: ICE gathering still running; sending the candidates so far');
    const res = await request(this.startUrl, {
      method: 'POST',
      headers: this._headers({ 'Content-Type': 'application/json' }),
      body: JSON.stringify({ type: 'offer', sdp: this.pc.localDescription.sdp, device: this.device }),
      timeoutMs: this.requestTimeoutMs,
      signal: this._abort.signal,
    });
    if (!res.ok) throw await readError(res);
    let body;
    try { body = await res.json(); } catch { throw new HttpError(502, 'the gateway answered with malformed JSON', res.url); }
    if (body && body.session) this.session = String(body.session);
    if (this.closed) {
      this._stopBulk(false);
      throw new AbortedError();
    }
    const sdp = body && (body.webrtc_answer || body.sdp);
    if (typeof sdp !== 'string' || !sdp) throw new HttpError(502, 'the gateway answered without webrtc_answer', res.url);
    return sdp;
  }

  // ---- trickle ICE by PATCH ----------------------------------------------

  _onCandidate(c) {
    if (this.closed || !this._trickle || this.path === 'bulk' || this.signalling === 'bulk') return;
    if (!c || !c.candidate) {
      if (!this._pending.includes(null)) this._pending.push(null);
    } else {
      this._pending.push(c);
    }
    if (this.resourceUrl) this._schedulePatch();
  }

  _schedulePatch() {
    if (this._patchTimer || this.closed || !this._trickle || !this.resourceUrl) return;
    // A short delay batches the candidates that arrive together.
    this._patchTimer = setTimeout(() => {
      this._patchTimer = null;
      this._patchChain = this._patchChain.then(() => this._sendPatch());
    }, 30);
  }

  async _sendPatch() {
    if (this.closed || !this._trickle || !this._pending.length) return;
    const batch = this._pending.splice(0);
    const ended = batch.includes(null);
    const cands = batch.filter((c) => c && !this._offerSdp.includes(c.candidate));
    if (!cands.length && !ended) return;
    const { ufrag, pwd } = iceCredentials(this.pc.localDescription ? this.pc.localDescription.sdp : this._offerSdp);
    const mid = (cands[0] && cands[0].sdpMid) || (this.transceiver && this.transceiver.mid) || '0';
    const lines = [];
    if (ufrag) lines.push(`a=ice-ufrag:${ufrag}`);
    if (pwd) lines.push(`a=ice-pwd:${pwd}`);
    const local = this.pc.localDescription ? this.pc.localDescription.sdp : this._offerSdp;
    const mline = /^m=video [^\r\n]*/m.exec(local);
    lines.push(mline ? mline[0] : 'm=video 9 UDP/TLS/RTP/SAVPF 96');
    lines.push(`a=mid:${mid}`);
    for (const c of cands) lines.push(`a=${c.candidate}`);
    if (ended) lines.push('a=end-of-candidates');
    try {
      const res = await request(this.resourceUrl, {
        method: 'PATCH',
        headers: this._headers({ 'Content-Type': 'application/trickle-ice-sdpfrag' }),
        body: `${lines.join('\r\n')}\r\n`,
        timeoutMs: 10000,
        signal: this._abort.signal,
      });
      if (res.status === 405 || res.status === 501) {
        this._trickle = false; // the server takes no trickle: it has what the offer held
        return;
      }
      if (!res.ok) {
        const err = await readError(res);
        this._emit('warning', { message: `PATCH ${res.status}: ${err.message}` });
        console.warn('picamrtc: trickle PATCH failed:', res.status, err.message);
      }
    } catch (e) {
      if (!(e instanceof AbortedError)) {
        this._emit('warning', { message: `PATCH: ${e.message}` });
        console.warn('picamrtc: trickle PATCH failed:', e.message);
      }
    }
  }

  // ---- connection monitoring --------------------------------------------

  _onConnectionState(state) {
    if (this.closed) return;
    this._emit('connectionstatechange', { state });
    if (state !== 'disconnected') {
      clearTimeout(this._disconnectTimer);
      this._disconnectTimer = null;
    }
    if (state === 'failed') this._end('the connection failed');
    else if (state === 'closed') this._end('the connection closed');
    else if (state === 'disconnected' && !this._disconnectTimer) {
      this._disconnectTimer = setTimeout(() => {
        this._disconnectTimer = null;
        this._end('the connection was lost');
      }, this.disconnectGraceMs);
    }
  }

  _end(reason) {
    if (this.closed || this.ended) return;
    this.ended = true;
    this._emit('ended', { reason });
  }

  // ---- the camera's stats ---------------------------------------------------

  /**
   * The camera's last stats message for this viewer, as the gateway keeps
   * it (docs/http-api.md): {rendition, width?, height?, estimate, bitrate?,
   * loss?, rtt?, ageMs}; null when there is none yet (204). Throws an
   * HttpError otherwise (404: the gateway has no such session or no such
   * endpoint, an older gateway or camera).
   */
  async cameraStats({ timeoutMs = 3000 } = {}) {
    const url = this.statsUrl;
    if (!url || this.closed) return null;
    const res = await request(url, { headers: this._headers(), timeoutMs, signal: this._abort.signal });
    if (res.status === 204) return null;
    if (!res.ok) throw await readError(res);
    let body = null;
    try { body = await res.json(); } catch { /* not JSON: none */ }
    return body && typeof body === 'object' && !Array.isArray(body) ? body : null;
  }

  // ---- ending -------------------------------------------------------------

  _deleteResource(keepalive) {
    if (!this.resourceUrl) return Promise.resolve();
    return request(this.resourceUrl, {
      method: 'DELETE', headers: this._headers(), timeoutMs: 5000, keepalive,
    }).catch(() => {});
  }

  _stopBulk(keepalive) {
    if (!this.session) return Promise.resolve();
    return request(this.stopUrl, {
      method: 'POST',
      headers: this._headers({ 'Content-Type': 'application/json' }),
      body: JSON.stringify({ session: this.session }),
      timeoutMs: 5000,
      keepalive,
    }).catch(() => {});
  }

  /**
   * End the session: close the peer connection and tell the gateway
   * (DELETE the WHEP or relay resource, or POST /api/stop-webrtc). Safe to call
   * at any time, also while start() is running; idempotent.
   * @param {{keepalive?: boolean}} [o] keepalive: the page is going away
   */
  async stop({ keepalive = false } = {}) {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this._patchTimer);
    clearTimeout(this._disconnectTimer);
    clearInterval(this._layerTimer);
    this._abort.abort();
    if (this.controlChannel) {
      try { this.controlChannel.close(); } catch { /* already closed */ }
    }
    if (this.pc) {
      try { this.pc.close(); } catch { /* already closed */ }
    }
    if (this.path === 'whep' || this.path === 'relay') await this._deleteResource(keepalive);
    else if (this.path === 'bulk') await this._stopBulk(keepalive);
  }
}
