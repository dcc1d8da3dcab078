// Tests data/www/latency.js, the browser's reader of the latency stamp,
// against the real element: gst-launch-1.0 stamps a live test pattern with
// latencystamp (from the build tree), encodes it with x264enc (zerolatency,
// ultrafast, 2 Mbit/s), decodes it with avdec_h264 and dumps the raw I420
// frames; every frame's luma, as RGBA like a canvas gives it and as one byte
// a pixel, must read back exactly what the element logged it stamped. A
// damaged stamp, noise and flat pictures must read as nothing. Exit 77
// (skipped) when GStreamer's tools or elements are missing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { crc32, decodeStamp, stampLayout } from '../../data/www/latency.js';

const SKIP = 77;
const FRAMES = 30;

const env = { ...process.env, GST_DEBUG_NO_COLOR: '1' };
// meson's empty system path would hide videotestsrc, x264enc, avdec_h264
if (env.GST_PLUGIN_SYSTEM_PATH_1_0 === '') delete env.GST_PLUGIN_SYSTEM_PATH_1_0;
if (env.PICAMRTC_BUILD_ROOT) {
  env.GST_REGISTRY = join(env.PICAMRTC_BUILD_ROOT, 'tests',
      'registry-latency-js.bin');
}

function have(element) {
  const r = spawnSync('gst-inspect-1.0', [element], { env });
  return r.status === 0;
}

function toRgba(luma, width, height) {
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = luma[i];
    rgba[4 * i + 3] = 255;
  }
  return { width, height, data: rgba };
}

// Stamps, encodes, decodes; returns the frames' luma planes and what the
// element logged it wrote.
function roundTrip(dir, width, height) {
  const out = join(dir, `frames-${width}x${height}.i420`);
  const caps = `video/x-raw,format=I420,width=${width},height=${height},` +
      'framerate=30/1';
  const args = ['-q', 'videotestsrc', 'is-live=true', `num-buffers=${FRAMES}`,
    'pattern=smpte', 'horizontal-speed=8', '!', caps, '!', 'latencystamp',
    '!', 'x264enc', 'tune=zerolatency', 'speed-preset=ultrafast',
    'bitrate=2000', '!', 'avdec_h264', '!', 'video/x-raw,format=I420', '!',
    'filesink', `location=${out}`];
  const r = spawnSync('gst-launch-1.0', args, {
    env: { ...env, GST_DEBUG: 'latencystamp:6' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(r.status, 0, `gst-launch-1.0 failed:\n${r.stderr}`);

  const logged = [...r.stderr.matchAll(/stamped frame (\d+) time (\d+) us/g)]
      .map((m) => ({ frame: Number(m[1]), timeUs: Number(m[2]) }));
  const raw = readFileSync(out);
  const size = width * height * 3 / 2;
  assert.equal(raw.length, FRAMES * size, 'one I420 frame per buffer');
  const lumas = [];
  for (let i = 0; i < FRAMES; i++) {
    lumas.push(new Uint8Array(raw.buffer, raw.byteOffset + i * size,
        width * height));
  }
  return { lumas, logged };
}

function checkRoundTrip(dir, width, height) {
  const before = Date.now() * 1000;
  const { lumas, logged } = roundTrip(dir, width, height);
  const after = Date.now() * 1000;

  assert.equal(logged.length, FRAMES, 'the element logged every stamp');
  lumas.forEach((luma, i) => {
    const rgba = decodeStamp(toRgba(luma, width, height));
    assert.ok(rgba, `${width}x${height} frame ${i}: no stamp (RGBA)`);
    assert.equal(rgba.frame, i);
    assert.equal(rgba.frame, logged[i].frame);
    assert.equal(rgba.timeUs, logged[i].timeUs, 'time to the microsecond');
    assert.equal(rgba.blockSize, 16);
    // a live source: captured while gst-launch ran
    assert.ok(rgba.timeUs >= before - 1e6 && rgba.timeUs <= after + 1e6,
        `time ${rgba.timeUs} outside ${before}..${after}`);

    const gray = decodeStamp({ width, height, data: luma });
    assert.deepEqual(gray, rgba, 'luma and RGBA read alike');
    // the block size given, and only the top rows handed over
    const top = stampLayout(width, height).rows * 16;
    assert.deepEqual(decodeStamp({ width, height: top,
      data: luma.subarray(0, width * top) }, 16), rgba);
  });
  // 30 fps from a live source: 33.3 ms apart
  for (let i = 1; i < FRAMES; i++) {
    const step = logged[i].timeUs - logged[i - 1].timeUs;
    assert.ok(Math.abs(step - 33333) < 5000, `frame ${i}: step ${step} µs`);
  }
  return lumas[0];
}

function checkRejects(luma, width, height) {
  const { cols, rows } = stampLayout(width, height);
  // invert the block of each bit in turn: sync or CRC must catch it
  for (let bit = 0; bit < 144; bit += 7) {
    const damaged = Uint8Array.from(luma);
    const x0 = (bit % cols) * 16;
    const y0 = Math.floor(bit / cols) * 16;
    for (let y = y0; y < y0 + 16; y++) {
      for (let x = x0; x < x0 + 16; x++) {
        damaged[y * width + x] = 251 - damaged[y * width + x];
      }
    }
    assert.equal(decodeStamp({ width, height, data: damaged }), null,
        `bit ${bit} flipped`);
  }

  // noise, random blocks, flat pictures, nonsense
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
  for (let n = 0; n < 50; n++) {
    const noise = new Uint8Array(width * height).map(() => rand() & 255);
    assert.equal(decodeStamp({ width, height, data: noise }), null);
  }
  for (let n = 0; n < 500; n++) {
    const blocks = new Uint8Array(width * height);
    const bits = Array.from({ length: 144 }, () => rand() & 1);
    // half of them with the right sync word: the CRC must hold
    if (n % 2) [1, 0, 1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1].forEach(
        (b, i) => { bits[i] = b; });
    for (let y = 0; y < rows * 16; y++) {
      for (let x = 0; x < width; x++) {
        const i = Math.floor(y / 16) * cols + Math.floor(x / 16);
        blocks[y * width + x] = x < cols * 16 && bits[i] ? 235 : 16;
      }
    }
    assert.equal(decodeStamp({ width, height, data: blocks }), null);
  }
  assert.equal(decodeStamp({ width, height,
    data: new Uint8Array(width * height) }), null);
  assert.equal(decodeStamp({ width, height,
    data: new Uint8Array(width * height).fill(255) }), null);
  assert.equal(decodeStamp(null), null);
  assert.equal(decodeStamp({ width: 0, height: 0, data: [] }), null);
  assert.equal(decodeStamp({ width: 8, height: 8, data: new Uint8Array(64) }),
      null);
  assert.equal(decodeStamp({ width, height, data: new Uint8Array(7) }), null);
}

assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
// the worked example in docs/latency.md
assert.equal(crc32(Uint8Array.from([0x00, 0x06, 0x1a, 0x83, 0x0b, 0xbb, 0x42,
  0x40, 0x00, 0x00, 0x00, 0x2a])), 0x42f41c73);

for (const tool of ['gst-launch-1.0', 'gst-inspect-1.0']) {
  if (spawnSync(tool, ['--version']).status !== 0) {
    console.log(`# SKIP ${tool} is not installed`);
    process.exit(SKIP);
  }
}
const missing = ['latencystamp', 'videotestsrc', 'x264enc', 'avdec_h264']
    .filter((e) => !have(e));
if (missing.length > 0) {
  console.log(`# SKIP missing elements: ${missing.join(', ')}`);
  process.exit(SKIP);
}

const dir = mkdtempSync(join(tmpdir(), 'latency-js-'));
try {
  for (const [width, height] of [[640, 480], [1280, 720]]) {
    const first = checkRoundTrip(dir, width, height);
    checkRejects(first, width, height);
    console.log(`ok ${width}x${height}: ${FRAMES} frames read back exactly`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
