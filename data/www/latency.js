// Reads the latency stamp that picamrtc's latencystamp element writes into
// the top of each camera frame: the capture wall-clock time (µs since the
// Unix epoch) and a frame counter, as black and white blocks with a sync
// word and a CRC-32 (the layout is in docs/latency.md; the C reader is
// lib/pcr-latencystamp.c). Draw a decoded video frame at its own size
// (videoWidth x videoHeight) on a canvas, hand getImageData() to
// decodeStamp(), and compare timeUs with your own clock: that is the
// glass-to-glass latency minus exposure, plus the clock offset between the
// camera and this machine. A standalone ES module with no dependencies.

export const STAMP_BITS = 144;
export const STAMP_SYNC = 0xace1;
export const MIN_BLOCK = 8;
export const MAX_BLOCK = 64;
export const DEFAULT_BLOCK = 16;

// 16 (black) means 0 and 235 (white) means 1; the threshold sits between.
const THRESHOLD = 128;
// Blocks tried when the caller does not say: the default first.
const BLOCK_SIZES = [16, 8, 24, 32, 40, 48, 56, 64];

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

// CRC-32 as zlib's crc32(): crc32(bytes of "123456789") === 0xcbf43926.
export function crc32(bytes) {
  let crc = 0xffffffff;
  for (const b of bytes) crc = CRC_TABLE[(crc ^ b) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// Blocks per row and block rows of the band, or null when it cannot fit.
export function stampLayout(width, height, blockSize = DEFAULT_BLOCK) {
  if (!Number.isInteger(blockSize) || blockSize < MIN_BLOCK ||
      blockSize > MAX_BLOCK || blockSize % 8 !== 0) return null;
  const cols = Math.floor(width / blockSize);
  if (cols < 1) return null;
  const rows = Math.ceil(STAMP_BITS / cols);
  if (rows * blockSize > height) return null;
  return { cols, rows };
}

// Unsigned value of bits[start, start + n), n <= 32, most significant first.
function bitsToUint(bits, start, n) {
  let v = 0;
  for (let i = start; i < start + n; i++) v = (v * 2) + bits[i];
  return v >>> 0;
}

// The mean luma of each block's central half (edges blur through
// deblocking and scaling) against the threshold. One channel: the value is
// luma; three or four (RGB, RGBA): BT.601 weights, the same 128 threshold
// as full-range RGB puts 16 near 0 and 235 near 255.
function readWithBlock(data, width, height, channels, blockSize) {
  const layout = stampLayout(width, height, blockSize);
  if (layout === null) return null;
  const { cols } = layout;
  const lo = blockSize >> 2;
  const hi = blockSize - lo;
  const area = (hi - lo) * (hi - lo);
  const bits = new Uint8Array(STAMP_BITS);

  for (let i = 0; i < STAMP_BITS; i++) {
    const x0 = (i % cols) * blockSize;
    const y0 = Math.floor(i / cols) * blockSize;
    let sum = 0;
    for (let y = y0 + lo; y < y0 + hi; y++) {
      let p = (y * width + x0 + lo) * channels;
      for (let x = lo; x < hi; x++, p += channels) {
        sum += channels === 1 ? data[p] * 256 :
            77 * data[p] + 150 * data[p + 1] + 29 * data[p + 2];
      }
    }
    bits[i] = sum >= THRESHOLD * 256 * area ? 1 : 0;
    // most pictures are no stamp at all: give up at a wrong sync word
    if (i === 15 && bitsToUint(bits, 0, 16) !== STAMP_SYNC) return null;
  }

  const timeHi = bitsToUint(bits, 16, 32);
  const timeLo = bitsToUint(bits, 48, 32);
  const frame = bitsToUint(bits, 80, 32);
  const crc = bitsToUint(bits, 112, 32);
  const payload = new Uint8Array(12);
  for (let i = 0; i < 12; i++) payload[i] = bitsToUint(bits, 16 + 8 * i, 8);
  if (crc32(payload) !== crc) return null;

  // exact below 2^53 µs (the year 2255)
  return { timeUs: timeHi * 4294967296 + timeLo, frame, blockSize };
}

// imageData: { width, height, data } as from CanvasRenderingContext2D
// getImageData() (RGBA), or one byte a pixel (a luma plane). Only the top
// of the frame is read: passing just the top rows (as many as the band
// needs, 64 for 640 or more pixels wide at the default block size) is
// enough. blockSize 0 finds it. Returns { timeUs, frame, blockSize } or
// null when the picture holds no valid stamp.
export function decodeStamp(imageData, blockSize = 0) {
  if (!imageData || !imageData.data) return null;
  const { width, height, data } = imageData;
  if (!(width > 0 && height > 0)) return null;
  const channels = data.length / (width * height);
  if (channels !== 1 && channels !== 3 && channels !== 4) return null;

  const sizes = blockSize ? [blockSize] : BLOCK_SIZES;
  for (const size of sizes) {
    const stamp = readWithBlock(data, width, height, channels, size);
    if (stamp !== null) return stamp;
  }
  return null;
}
