/* The latency stamp's bit layout (docs/latency.md): packing a time and a
 * frame counter into sync, payload and CRC-32 bits, the block grid of the
 * band at the top of the picture, and the reader that turns a decoded luma
 * plane back into a stamp. The reader trusts nothing: any picture that is
 * not a stamp fails the sync word or the CRC. */
#include "pcr-latencystamp.h"

#include <string.h>

#define SYNC_BITS 16
#define TIME_BITS 64
#define FRAME_BITS 32

guint32
pcr_latency_stamp_crc32 (const guint8 * data, gsize len)
{
  guint32 crc = 0xFFFFFFFF;
  gsize i;
  gint k;

  for (i = 0; i < len; i++) {
    crc ^= data[i];
    for (k = 0; k < 8; k++)
      crc = (crc >> 1) ^ (0xEDB88320 & (0u - (crc & 1)));
  }
  return crc ^ 0xFFFFFFFF;
}

static void
payload_bytes (const PcrLatencyStampValue * stamp,
    guint8 bytes[PCR_LATENCY_STAMP_PAYLOAD_BYTES])
{
  gint i;

  for (i = 0; i < 8; i++)
    bytes[i] = (stamp->time_us >> (56 - 8 * i)) & 0xFF;
  for (i = 0; i < 4; i++)
    bytes[8 + i] = (stamp->frame >> (24 - 8 * i)) & 0xFF;
}

/* Writes @n bits of @value, most significant first. */
static guint8 *
put_bits (guint8 * out, guint64 value, gint n)
{
  gint i;

  for (i = n - 1; i >= 0; i--)
    *out++ = (value >> i) & 1;
  return out;
}

static guint64
get_bits (const guint8 ** in, gint n)
{
  guint64 value = 0;
  gint i;

  for (i = 0; i < n; i++)
    value = (value << 1) | ((*in)[i] & 1);
  *in += n;
  return value;
}

void
pcr_latency_stamp_pack (const PcrLatencyStampValue * stamp,
    guint8 bits[PCR_LATENCY_STAMP_BITS])
{
  guint8 bytes[PCR_LATENCY_STAMP_PAYLOAD_BYTES];
  guint8 *p = bits;

  g_return_if_fail (stamp != NULL);

  payload_bytes (stamp, bytes);
  p = put_bits (p, PCR_LATENCY_STAMP_SYNC, SYNC_BITS);
  p = put_bits (p, stamp->time_us, TIME_BITS);
  p = put_bits (p, stamp->frame, FRAME_BITS);
  put_bits (p, pcr_latency_stamp_crc32 (bytes, sizeof (bytes)), 32);
}

gboolean
pcr_latency_stamp_unpack (const guint8 bits[PCR_LATENCY_STAMP_BITS],
    PcrLatencyStampValue * stamp)
{
  guint8 bytes[PCR_LATENCY_STAMP_PAYLOAD_BYTES];
  const guint8 *p = bits;
  PcrLatencyStampValue s;
  guint32 crc;

  if (get_bits (&p, SYNC_BITS) != PCR_LATENCY_STAMP_SYNC)
    return FALSE;
  s.time_us = get_bits (&p, TIME_BITS);
  s.frame = get_bits (&p, FRAME_BITS);
  crc = get_bits (&p, 32);
  payload_bytes (&s, bytes);
  if (crc != pcr_latency_stamp_crc32 (bytes, sizeof (bytes)))
    return FALSE;
  if (stamp != NULL)
    *stamp = s;
  return TRUE;
}

static gboolean
valid_block_size (gint block_size)
{
  return block_size >= PCR_LATENCY_STAMP_MIN_BLOCK &&
      block_size <= PCR_LATENCY_STAMP_MAX_BLOCK && block_size % 8 == 0;
}

gboolean
pcr_latency_stamp_layout (gint width, gint height, gint block_size,
    gint * cols, gint * rows)
{
  gint c, r;

  if (!valid_block_size (block_size) || width <= 0 || height <= 0)
    return FALSE;
  c = width / block_size;
  if (c < 1)
    return FALSE;
  r = (PCR_LATENCY_STAMP_BITS + c - 1) / c;
  if ((gint64) r * block_size > height)
    return FALSE;
  if (cols != NULL)
    *cols = c;
  if (rows != NULL)
    *rows = r;
  return TRUE;
}

static gboolean
sync_matches (const guint8 * bits)
{
  const guint8 *p = bits;

  return get_bits (&p, SYNC_BITS) == PCR_LATENCY_STAMP_SYNC;
}

/* The mean of the block's central half in each direction: its edges blur
 * into the neighbours through deblocking and scaling. */
static gboolean
read_with_block (const guint8 * pixels, gint width, gint height,
    gsize stride, gint pixel_stride, gint block_size,
    PcrLatencyStampValue * stamp)
{
  guint8 bits[PCR_LATENCY_STAMP_BITS];
  gint cols, rows, i;
  gint lo = block_size / 4, hi = block_size - block_size / 4;
  guint area = (hi - lo) * (hi - lo);

  if (!pcr_latency_stamp_layout (width, height, block_size, &cols, &rows))
    return FALSE;

  for (i = 0; i < PCR_LATENCY_STAMP_BITS; i++) {
    gsize x0 = (gsize) (i % cols) * block_size;
    gsize y0 = (gsize) (i / cols) * block_size;
    guint sum = 0;
    gint x, y;

    for (y = lo; y < hi; y++) {
      const guint8 *row = pixels + (y0 + y) * stride + x0 * pixel_stride;

      for (x = lo; x < hi; x++)
        sum += row[x * pixel_stride];
    }
    bits[i] = sum >= PCR_LATENCY_STAMP_THRESHOLD * area;
    /* fail fast on the sync word: most pictures are no stamp at all */
    if (i == SYNC_BITS - 1 && !sync_matches (bits))
      return FALSE;
  }
  return pcr_latency_stamp_unpack (bits, stamp);
}

gboolean
pcr_latency_stamp_decode (const guint8 * pixels, gint width, gint height,
    gsize stride, gint pixel_stride, gint block_size,
    PcrLatencyStampValue * stamp)
{
  gint b;

  g_return_val_if_fail (pixels != NULL, FALSE);
  g_return_val_if_fail (pixel_stride >= 1, FALSE);
  g_return_val_if_fail (width <= 0 ||
      stride >= (gsize) (width - 1) * pixel_stride + 1, FALSE);

  if (block_size != 0)
    return read_with_block (pixels, width, height, stride, pixel_stride,
        block_size, stamp);

  if (read_with_block (pixels, width, height, stride, pixel_stride,
          PCR_LATENCY_STAMP_DEFAULT_BLOCK, stamp))
    return TRUE;
  for (b = PCR_LATENCY_STAMP_MIN_BLOCK; b <= PCR_LATENCY_STAMP_MAX_BLOCK;
      b += 8) {
    if (b != PCR_LATENCY_STAMP_DEFAULT_BLOCK &&
        read_with_block (pixels, width, height, stride, pixel_stride, b, stamp))
      return TRUE;
  }
  return FALSE;
}
