// picamrtc web client: getStats() sampling and the stats overlay.
//
// StatsMonitor samples an RTCPeerConnection once a second and turns the raw
// report into one flat object (see EMPTY below for its fields); rates are
// computed from the deltas between two samples. It also notes when the
// decoded frame size changes: the camera switches a viewer between its
// renditions (1280x720, 640x360) as the viewer's link allows. renderStats() writes that
// object into the overlay's <dd data-stat="..."> cells, renderLatency() the
// latency meter's summary (latency-meter.js) into its <dd data-latency>.
// formatCamera() words the camera's own view of this viewer (its bandwidth
// estimate and the rendition it sends, GET <session>/stats of the gateway).

/** The shape of a sample; every value null until known. */
export const EMPTY = Object.freeze({
  timestamp: null,          // ms, performance clock of the report
  width: null,              // decoded frame width
  height: null,
  resolution: null,         // "1280×720"
  sizeChanges: null,        // how often the frame size changed since the stream started
  sizeChangedAt: null,      // ms, performance clock: the last change, null before any
  fps: null,                // framesPerSecond, or computed from framesDecoded
  bitrateKbps: null,        // from bytesReceived deltas
  bytesReceived: null,
  packetsReceived: null,
  packetsLost: null,        // cumulative
  lossPercent: null,        // over the last interval
  framesDecoded: null,
  framesDropped: null,
  keyFramesDecoded: null,
  freezeCount: null,
  nackCount: null,          // NACKs this browser sent (packets it asked for again)
  retransmitted: null,      // retransmittedPacketsReceived: the repairs that came
  pliCount: null,
  jitterMs: null,           // RTP interarrival jitter
  jitterBufferMs: null,     // jitterBufferDelay / jitterBufferEmittedCount over the last interval
  jitterBufferAvgMs: null,  // the same, since the start
  rttMs: null,              // nominated candidate pair currentRoundTripTime
  codec: null,              // "H264"
  codecDetail: null,        // "H264 42e01f pm=1"
  decoder: null,            // decoderImplementation
  icePath: null,            // 'host' | 'srflx' | 'prflx' | 'relay' (the most indirect end)
  iceLocal: null,           // local candidate type
  iceRemote: null,          // remote candidate type
  iceProtocol: null,        // 'udp' | 'tcp'
  latencyMs: null,          // capture-to-display latency, median of the last 5 s (the latency stamp), else null
});

const TYPE_RANK = { host: 0, prflx: 1, srflx: 2, relay: 3 };

function ms(seconds) { return seconds == null ? null : seconds * 1000; }

/** Reduce one RTCStatsReport (and the previous sample's raw counters) to a sample. */
export function summarize(report, prevRaw) {
  let inbound = null;
  let transport = null;
  const byId = new Map();
  report.forEach((s) => {
    byId.set(s.id, s);
    if (s.type === 'inbound-rtp' && (s.kind || s.mediaType) === 'video') {
      // More than one (after a renegotiation): the one with the most bytes.
      if (!inbound || (s.bytesReceived || 0) > (inbound.bytesReceived || 0)) inbound = s;
    } else if (s.type === 'transport' && !transport) {
      transport = s;
    }
  });

  const out = { ...EMPTY };
  const raw = {};
  if (inbound) {
    const t = inbound.timestamp;
    out.timestamp = t;
    out.width = inbound.frameWidth ?? null;
    out.height = inbound.frameHeight ?? null;
    if (out.width && out.height) out.resolution = `${out.width}×${out.height}`;
    out.bytesReceived = inbound.bytesReceived ?? null;
    out.packetsReceived = inbound.packetsReceived ?? null;
    out.packetsLost = inbound.packetsLost ?? null;
    out.framesDecoded = inbound.framesDecoded ?? null;
    out.framesDropped = inbound.framesDropped ?? null;
    out.keyFramesDecoded = inbound.keyFramesDecoded ?? null;
    out.freezeCount = inbound.freezeCount ?? null;
    out.nackCount = inbound.nackCount ?? null;
    out.retransmitted = inbound.retransmittedPacketsReceived ?? null;
    out.pliCount = inbound.pliCount ?? null;
    out.jitterMs = ms(inbound.jitter);
    out.decoder = inbound.decoderImplementation ?? null;

    raw.t = t;
    raw.bytes = inbound.bytesReceived || 0;
    raw.frames = inbound.framesDecoded || 0;
    raw.jbDelay = inbound.jitterBufferDelay || 0;
    raw.jbCount = inbound.jitterBufferEmittedCount || 0;
    raw.recv = inbound.packetsReceived || 0;
    raw.lost = inbound.packetsLost || 0;
    raw.ssrc = inbound.ssrc;

    const dt = prevRaw && prevRaw.ssrc === raw.ssrc ? (t - prevRaw.t) / 1000 : 0;
    if (dt > 0) {
      out.bitrateKbps = Math.max(0, ((raw.bytes - prevRaw.bytes) * 8) / dt / 1000);
      const dRecv = raw.recv - prevRaw.recv;
      const dLost = raw.lost - prevRaw.lost;
      out.lossPercent = dRecv + dLost > 0 ? Math.max(0, (100 * dLost) / (dRecv + dLost)) : 0;
    }
    if (typeof inbound.framesPerSecond === 'number') out.fps = inbound.framesPerSecond;
    else if (dt > 0) out.fps = Math.max(0, (raw.frames - prevRaw.frames) / dt);
    if (raw.jbCount > 0) out.jitterBufferAvgMs = (1000 * raw.jbDelay) / raw.jbCount;
    if (dt > 0 && raw.jbCount > prevRaw.jbCount) {
      out.jitterBufferMs = (1000 * (raw.jbDelay - prevRaw.jbDelay)) / (raw.jbCount - prevRaw.jbCount);
    } else {
      out.jitterBufferMs = out.jitterBufferAvgMs;
    }

    const codec = inbound.codecId && byId.get(inbound.codecId);
    if (codec && codec.mimeType) {
      out.codec = codec.mimeType.replace(/^video\//i, '');
      const f = codec.sdpFmtpLine || '';
      const plid = /profile-level-id=([0-9a-f]{6})/i.exec(f);
      const pm = /packetization-mode=(\d)/.exec(f);
      out.codecDetail = [out.codec, plid && plid[1].toLowerCase(), pm && `pm=${pm[1]}`].filter(Boolean).join(' ');
    }
  }

  // The nominated pair: the transport's selected pair, else a nominated succeeded one.
  let pair = transport && transport.selectedCandidatePairId ? byId.get(transport.selectedCandidatePairId) : null;
  if (!pair) {
    report.forEach((s) => {
      if (s.type === 'candidate-pair' && s.state === 'succeeded' && (s.nominated || s.selected)) {
        if (!pair || (s.bytesReceived || 0) > (pair.bytesReceived || 0)) pair = s;
      }
    });
  }
  if (pair) {
    if (typeof pair.currentRoundTripTime === 'number') out.rttMs = pair.currentRoundTripTime * 1000;
    const local = byId.get(pair.localCandidateId);
    const remote = byId.get(pair.remoteCandidateId);
    out.iceLocal = local ? local.candidateType : null;
    out.iceRemote = remote ? remote.candidateType : null;
    out.iceProtocol = local ? (local.relayProtocol && local.candidateType === 'relay' ? local.relayProtocol : local.protocol) || null : null;
    const types = [out.iceLocal, out.iceRemote].filter((x) => x in TYPE_RANK);
    if (types.length) out.icePath = types.reduce((a, b) => (TYPE_RANK[b] > TYPE_RANK[a] ? b : a));
  }
  return { sample: out, raw: inbound ? raw : null };
}

/** Samples a peer connection every `intervalMs` and calls onSample(sample). */
export class StatsMonitor {
  constructor({ intervalMs = 1000, onSample = () => {} } = {}) {
    this.intervalMs = intervalMs;
    this.onSample = onSample;
    this.pc = null;
    this.latest = { ...EMPTY };
    this._raw = null;
    this._timer = null;
    this._busy = false;
  }

  attach(pc) {
    this.detach();
    this.pc = pc;
    this._raw = null;
    this.latest = { ...EMPTY };
    this._size = null;
    this._sizeChanges = 0;
    this._sizeChangedAt = null;
    this._timer = setInterval(() => this.sample(), this.intervalMs);
    this.sample();
  }

  detach() {
    clearInterval(this._timer);
    this._timer = null;
    this.pc = null;
    this._raw = null;
  }

  /** Counts a change of the frame size (a sample without one is no change). */
  _noteSize(sample) {
    if (sample.resolution) {
      if (this._size && sample.resolution !== this._size) {
        this._sizeChanges++;
        this._sizeChangedAt = performance.now();
      }
      this._size = sample.resolution;
    }
    if (this._size) {
      sample.sizeChanges = this._sizeChanges;
      sample.sizeChangedAt = this._sizeChangedAt;
    }
  }

  async sample() {
    const pc = this.pc;
    if (!pc || this._busy || pc.connectionState === 'closed') return this.latest;
    this._busy = true;
    try {
      const report = await pc.getStats();
      if (pc !== this.pc) return this.latest;
      const { sample, raw } = summarize(report, this._raw);
      const prev = this.latest;
      if (raw && this._raw && raw.ssrc === this._raw.ssrc && raw.t <= this._raw.t) {
        // The same (cached) report again: keep the rates of the last interval.
        for (const k of ['bitrateKbps', 'lossPercent', 'fps', 'jitterBufferMs']) {
          if (sample[k] == null) sample[k] = prev[k];
        }
      } else if (raw) {
        this._raw = raw;
      }
      sample.latencyMs = this.latest.latencyMs;
      this._noteSize(sample);
      this.latest = sample;
      this.onSample(sample);
    } catch (e) {
      console.debug('picamrtc: getStats failed:', e);
    } finally {
      this._busy = false;
    }
    return this.latest;
  }
}

// ---- formatting -------------------------------------------------------------

const DASH = '—';

function fixed(v, digits = 0) { return v == null || !Number.isFinite(v) ? null : v.toFixed(digits); }

/** "4 s ago", "3 min ago": how long since `at` (ms, performance clock). */
function ago(at, now) {
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

export function formatBitrate(kbps) {
  if (kbps == null || !Number.isFinite(kbps)) return DASH;
  return kbps >= 1000 ? `${(kbps / 1000).toFixed(2)} Mb/s` : `${kbps.toFixed(0)} kb/s`;
}

/**
 * "1.9 Mbit/s · high (1280x720)": the camera's estimate of this viewer's
 * link and the rendition it sends; "n/a" when the gateway or the camera
 * gives none (an older one, or no RTCP yet). `camera` is the gateway's
 * stats object or null; only numbers and short names are shown.
 */
export function formatCamera(camera) {
  const est = camera && camera.estimate;
  if (typeof est !== 'number' || !Number.isFinite(est) || est < 0) return 'n/a';
  let text = est >= 1e6 ? `${(est / 1e6).toFixed(1)} Mbit/s` : `${Math.round(est / 1000)} kbit/s`;
  if (typeof camera.rendition === 'string' && /^[A-Za-z0-9_-]{1,16}$/.test(camera.rendition)) {
    text += ` · ${camera.rendition}`;
    const { width: w, height: h } = camera;
    if (Number.isInteger(w) && Number.isInteger(h) && w > 0 && h > 0) text += ` (${w}x${h})`;
  }
  return text;
}

/** Text for each overlay cell, keyed like the data-stat attributes;
 * extra.camera is the camera's stats (formatCamera), extra.path the
 * signalling path, extra.now the performance clock. */
export function formatStats(s, extra = {}) {
  const withUnit = (v, unit, digits = 0) => {
    const f = fixed(v, digits);
    return f == null ? DASH : `${f} ${unit}`;
  };
  let lost = DASH;
  if (s.packetsLost != null) {
    lost = String(s.packetsLost);
    if (s.lossPercent) lost += ` (${s.lossPercent.toFixed(1)}%)`;
  }
  // "12 asked · 11 resent": NACKs sent and retransmissions received; a
  // camera that answers without RTX leaves the second at 0.
  let repair = DASH;
  if (s.nackCount != null) {
    repair = `${s.nackCount} asked`;
    if (s.retransmitted != null) repair += ` · ${s.retransmitted} resent`;
  }
  // "4 s ago · 2×": the last change of the frame size (a switch between
  // the camera's renditions) and how many there were; "not yet" before any.
  let sizeChanged = DASH;
  if (s.sizeChanges != null) {
    sizeChanged = s.sizeChangedAt == null ? 'not yet'
      : `${ago(s.sizeChangedAt, extra.now ?? performance.now())} · ${s.sizeChanges}×`;
  }
  let ice = DASH;
  if (s.icePath) {
    ice = s.iceLocal && s.iceRemote ? `${s.iceLocal} ↔ ${s.iceRemote}` : s.icePath;
    if (s.iceProtocol) ice += ` · ${s.iceProtocol}`;
  }
  return {
    resolution: s.resolution || DASH,
    sizeChanged,
    fps: withUnit(s.fps, 'fps', s.fps != null && s.fps < 10 ? 1 : 0),
    bitrate: formatBitrate(s.bitrateKbps),
    lost,
    repair,
    jitterBuffer: withUnit(s.jitterBufferMs, 'ms'),
    rtt: withUnit(s.rttMs, 'ms', s.rttMs != null && s.rttMs < 10 ? 1 : 0),
    codec: s.codecDetail || s.codec || DASH,
    ice,
    path: formatPath(extra.path),
    camera: formatCamera(extra.camera),
  };
}

/** The signalling path for the overlay: through Janus (a relayed camera)
 * or straight to the camera. */
export function formatPath(path) {
  if (!path) return DASH;
  if (path === 'relay') return 'via Janus';
  return `${path.toUpperCase()} · direct`;
}

/** Fill <dd data-stat="key"> cells under root. */
export function renderStats(root, sample, extra) {
  const text = formatStats(sample, extra);
  for (const el of root.querySelectorAll('[data-stat]')) {
    const v = text[el.dataset.stat];
    if (v !== undefined && el.textContent !== v) el.textContent = v;
  }
}

// ---- latency ----------------------------------------------------------------

const ms0 = (v) => `${Math.round(v)}`;

/** Text for the latency cells from LatencyMeter.summary(): `looked` says
 * whether frames were read at all (else a dash, not "no stamp"). */
export function formatLatency(summary, { looked = false, lostFrames = 0 } = {}) {
  if (!summary) return { value: looked ? 'no stamp' : DASH, lost: null };
  return {
    value: `${ms0(summary.last)} ms (p50 ${ms0(summary.p50)} · p95 ${ms0(summary.p95)})`,
    lost: String(lostFrames),
  };
}

/** Fill the latency section: <dd data-latency="value|lost"> cells; a
 * cell without text (the lost frames without stamps) is hidden with its
 * <dt>. */
export function renderLatency(root, summary, extra) {
  if (!root) return;
  const text = formatLatency(summary, extra);
  root.hidden = false;
  root.dataset.stamp = summary ? 'yes' : 'no';
  for (const el of root.querySelectorAll('dd[data-latency]')) {
    const v = text[el.dataset.latency];
    el.hidden = v == null;
    if (el.previousElementSibling) el.previousElementSibling.hidden = v == null;
    if (v != null && el.textContent !== v) el.textContent = v;
  }
}
