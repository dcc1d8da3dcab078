/* The latency stamp: a capture wall-clock time and a frame counter written
 * into the top of the picture as black and white luma blocks that survive
 * H.264, so a viewer can read, from a decoded frame alone, when that frame
 * was captured. The layout is the contract in docs/latency.md; the
 * latencystamp element writes it with these functions, the tests and
 * data/www/latency.js read it. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* 16 sync bits, 64 time bits, 32 counter bits, 32 CRC bits. */
#define PCR_LATENCY_STAMP_BITS 144
#define PCR_LATENCY_STAMP_SYNC 0xACE1
#define PCR_LATENCY_STAMP_PAYLOAD_BYTES 12

#define PCR_LATENCY_STAMP_MIN_BLOCK 8
#define PCR_LATENCY_STAMP_MAX_BLOCK 64
#define PCR_LATENCY_STAMP_DEFAULT_BLOCK 16

/* Luma of a 0 and a 1 block (video range black and white); chroma of the
 * whole band is neutral. A reader compares a block's mean luma to the
 * threshold. */
#define PCR_LATENCY_STAMP_LUMA_0 16
#define PCR_LATENCY_STAMP_LUMA_1 235
#define PCR_LATENCY_STAMP_CHROMA 128
#define PCR_LATENCY_STAMP_THRESHOLD 128

typedef struct
{
  guint64 time_us;              /* capture time, µs since the Unix epoch */
  guint32 frame;                /* frames stamped since the element started */
} PcrLatencyStampValue;

/* CRC-32 as zlib's crc32() (reflected 0xEDB88320, init and final xor
 * 0xFFFFFFFF): "123456789" gives 0xCBF43926. */
guint32 pcr_latency_stamp_crc32 (const guint8 * data, gsize len);

/* The bits in picture order, one per byte (0 or 1). */
void pcr_latency_stamp_pack (const PcrLatencyStampValue * stamp,
    guint8 bits[PCR_LATENCY_STAMP_BITS]);

/* Checks the sync word and the CRC; FALSE (and @stamp untouched) when
 * either is wrong. */
gboolean pcr_latency_stamp_unpack (const guint8 bits[PCR_LATENCY_STAMP_BITS],
    PcrLatencyStampValue * stamp);

/* Blocks per row and block rows of the band for a picture; FALSE when the
 * band does not fit (fewer than one block per row, or taller than the
 * picture) or @block_size is not a multiple of 8 in 8..64. */
gboolean pcr_latency_stamp_layout (gint width, gint height, gint block_size,
    gint * cols, gint * rows);

/* Reads a stamp from a luma plane (@pixel_stride bytes between pixels: 1
 * for planar and semi-planar YUV, 2 for YUY2, 4 for RGBA, where the first
 * byte of each pixel is read). @block_size 0 tries 16 first, then every
 * other valid size. Never reads outside width x height; FALSE when no
 * block size gives a valid sync word and CRC. */
gboolean pcr_latency_stamp_decode (const guint8 * pixels, gint width,
    gint height, gsize stride, gint pixel_stride, gint block_size,
    PcrLatencyStampValue * stamp);

G_END_DECLS
