// picamrtc web client: the live capture-to-display latency. For each frame
// the <video> presents (requestVideoFrameCallback) LatencyMeter draws only
// the top band of the picture onto a small canvas, reads the latency stamp
// (latency.js) and records display time minus capture time, with the
// stamp's frame counter. A stream without stamps costs next to nothing:
// after MISSES_BEFORE_BACKOFF frames without one it looks once a second.

import { decodeStamp, stampLayout, DEFAULT_BLOCK } from './latency.js';

export const WINDOW_SECONDS = 5;
export const MAX_SAMPLES = 36000;          // 20 minutes at 30 fps
const MISSES_BEFORE_BACKOFF = 90;          // about 3 s at 30 fps
const BACKOFF_MS = 1000;
const ALL_BLOCKS = [8, 16, 24, 32, 40, 48, 56, 64];
// A counter step larger than this is a restarted camera, not lost frames.
const MAX_GAP = 3600;

/** Rows of the top band that a stamp of `blockSize` covers, or 0. */
function bandRows(width, height, blockSize) {
  const layout = stampLayout(width, height, blockSize);
  return layout ? layout.rows * blockSize : 0;
}

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted, p) {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

export class LatencyMeter {
  constructor() {
    /** every sample, oldest first, at most MAX_SAMPLES (scripts read it) */
    this.samples = [];
    this._recent = [];       // the samples of the last WINDOW_SECONDS
    this._canvas = null;
    this._ctx = null;
    this._broken = false;    // the canvas cannot be read: give up for good
    this._epochOffset = performance.timeOrigin;
    this._offsetCheckedAt = 0;
    this.reset();
  }

  /** Forget what the stream looked like (a new stream, a new camera). */
  reset() {
    this._block = 0;         // block size of the last stamp read, 0 unknown
    this._misses = 0;        // frames in a row without a stamp
    this._lastTry = -Infinity;
    this._tries = 0;         // frames looked at since reset()
    this._lastFrame = null;  // counter and presentedFrames of the last stamp
    this._lastPresented = null;
    this.lostFrames = 0;     // counter gaps not explained by unread frames
  }

  /** Empties `samples`; the live window stays. */
  clear() {
    this.samples.length = 0;
  }

  /** True when no stamp was seen lately and only one frame a second is read. */
  get backingOff() { return this._misses >= MISSES_BEFORE_BACKOFF; }

  /** Frames looked at since the stream started (0: nothing to say yet). */
  get tries() { return this._tries; }

  /** What the reader is doing, for scripts and tests. */
  status() {
    return {
      framesRead: this._tries,
      backingOff: this.backingOff,
      blockSize: this._block,
      lostFrames: this.lostFrames,
    };
  }

  /** Performance-clock ms to Unix epoch ms. timeOrigin + performance.now()
   * stops with the machine asleep while the wall clock does not: re-anchor
   * when they disagree by more than a few ms. */
  _epochMs(perfMs, now) {
    if (now - this._offsetCheckedAt >= 1000) {
      this._offsetCheckedAt = now;
      const drift = Date.now() - (performance.now() + this._epochOffset);
      if (Math.abs(drift) > 2) this._epochOffset += drift;
    }
    return perfMs + this._epochOffset;
  }

  /** Call from a requestVideoFrameCallback callback with its arguments. */
  onFrame(video, now, meta) {
    if (this._broken) return;
    if (this.backingOff && now - this._lastTry < BACKOFF_MS) return;
    const width = video.videoWidth;
    const height = video.videoHeight;
    if (!(width > 0 && height > 0)) return;
    this._lastTry = now;
    this._tries += 1;

    // Only the band: the last stamp's, else the default's (and 8's);
    // every 30th look and in backoff the band of the largest block, so a
    // stamp with any block size is found within a second or so.
    let block = this._block;
    let rows;
    if (block) {
      rows = bandRows(width, height, block);
    } else if (this.backingOff || this._tries % 30 === 1) {
      rows = Math.max(...ALL_BLOCKS.map((b) => bandRows(width, height, b)));
    } else {
      rows = Math.max(bandRows(width, height, DEFAULT_BLOCK),
        bandRows(width, height, 8));
    }
    if (!rows) rows = Math.min(height, 64);

    let stamp = null;
    try {
      if (!this._ctx) {
        this._canvas = document.createElement('canvas');
        this._ctx = this._canvas.getContext('2d', { willReadFrequently: true, alpha: false });
      }
      if (this._canvas.width !== width) this._canvas.width = width;
      if (this._canvas.height < rows) this._canvas.height = rows;
      this._ctx.drawImage(video, 0, 0, width, rows, 0, 0, width, rows);
      stamp = decodeStamp(this._ctx.getImageData(0, 0, width, rows), block);
    } catch (e) {
      // a tainted (cross-origin) picture stays so; anything else is a miss
      if (e && e.name === 'SecurityError') {
        this._broken = true;
        console.info('picamrtc: cannot read the video frames, no latency readout:', e.message);
        return;
      }
      stamp = null;
    }

    if (!stamp) {
      this._misses += 1;
      if (this._misses === MISSES_BEFORE_BACKOFF) this._block = 0;
      return;
    }
    this._misses = 0;
    this._block = stamp.blockSize;

    const expected = meta && meta.expectedDisplayTime;
    const displayMs = this._epochMs(Number.isFinite(expected) && expected > 0 ? expected : now, now);
    const presented = meta && typeof meta.presentedFrames === 'number' ? meta.presentedFrames : null;
    this._countLost(stamp.frame, presented);

    const sample = {
      frame: stamp.frame,
      captureUs: stamp.timeUs,
      displayMs,
      latencyMs: displayMs - stamp.timeUs / 1000,
      presentedFrames: presented,
    };
    if (this.samples.length >= MAX_SAMPLES) this.samples.shift();
    this.samples.push(sample);
    this._recent.push(sample);
    this._trim(displayMs);
  }

  /** Frames the camera stamped that this page never presented: the
   * counter's step minus the frames presented in between. */
  _countLost(frame, presented) {
    const prev = this._lastFrame;
    const prevPresented = this._lastPresented;
    this._lastFrame = frame;
    this._lastPresented = presented;
    if (prev === null) return;
    const step = (frame - prev) >>> 0;
    if (step === 0 || step > MAX_GAP) return; // a repeat, or a new camera run
    const shown = presented !== null && prevPresented !== null ? presented - prevPresented : 1;
    if (shown > 0 && step > shown) this.lostFrames += step - shown;
  }

  _trim(nowMs) {
    const from = nowMs - WINDOW_SECONDS * 1000;
    let i = 0;
    while (i < this._recent.length && this._recent[i].displayMs < from) i += 1;
    if (i) this._recent.splice(0, i);
  }

  /** { last, p50, p95, count, windowSeconds } over the last WINDOW_SECONDS,
   * or null when no stamp was seen in that time. */
  summary() {
    this._trim(Date.now());
    const n = this._recent.length;
    if (!n) return null;
    const sorted = this._recent.map((s) => s.latencyMs).sort((a, b) => a - b);
    return {
      last: this._recent[n - 1].latencyMs,
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      count: n,
      windowSeconds: WINDOW_SECONDS,
    };
  }
}
