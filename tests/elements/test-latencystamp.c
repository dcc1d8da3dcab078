/* Element tests for latencystamp: a stamped frame still carries its stamp
 * after x264enc (tune=zerolatency, speed-preset=ultrafast, 2 Mbit/s) and
 * avdec_h264 at 1280x720 and 640x480, every frame, counters consecutive,
 * times bit-exact and equal to the capture time the clock says; a disabled
 * element leaves frames untouched and they read as no stamp; garbage never
 * reads as a stamp (sync word and CRC-32); every supported format and block
 * size reads back; the cost per 1280x720 frame is printed and bounded. */
#include <string.h>

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include "pcr-latencystamp.h"

#include "pcr-check-main.h"

/* The clock runs this far ahead of each frame's capture time: far more
 * than a push through the encoder takes, so a stamp that ignored the age
 * would fall outside the bounds. */
#define AGE_NS (300 * GST_MSECOND)
#define FRAMES 90

#define ENCODE_DECODE "x264enc tune=zerolatency speed-preset=ultrafast " \
  "bitrate=2000 key-int-max=60 ! avdec_h264 max-threads=1"

/* Reads a stamp from an I420 buffer with the default strides. */
static gboolean
read_i420 (GstBuffer * buf, gint width, gint height,
    PcrLatencyStampValue * stamp)
{
  GstMapInfo map;
  gsize stride = GST_ROUND_UP_4 (width);
  gboolean ok;

  fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
  fail_unless (map.size >= stride * height, "buffer of %" G_GSIZE_FORMAT
      " bytes is too small for %dx%d", map.size, width, height);
  ok = pcr_latency_stamp_decode (map.data, width, height, stride, 1, 0, stamp);
  gst_buffer_unmap (buf, &map);
  return ok;
}

/* What latencystamp wrote, read from the raw frame on its src pad. */
typedef struct
{
  gint width, height;
  GArray *stamps;               /* PcrLatencyStampValue */
  guint unstamped;
} Written;

static GstPadProbeReturn
record_written (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Written *w = user_data;
  PcrLatencyStampValue stamp;

  if (read_i420 (GST_PAD_PROBE_INFO_BUFFER (info), w->width, w->height, &stamp))
    g_array_append_val (w->stamps, stamp);
  else
    w->unstamped++;
  return GST_PAD_PROBE_OK;
}

typedef struct
{
  GstHarness *h;
  GstElement *stamp;
  Written written;
  GArray *decoded;              /* PcrLatencyStampValue, after H.264 */
  GArray *lo, *hi;              /* per frame: bounds of the capture time */
  guint frames_out, undecoded;
} RoundTrip;

static void
round_trip_init (RoundTrip * rt, gint width, gint height)
{
  g_autofree gchar *src = NULL;
  GstPad *pad;

  memset (rt, 0, sizeof (*rt));
  rt->h = gst_harness_new_parse ("latencystamp name=stamp ! " ENCODE_DECODE);
  /* moving bars and the smpte pattern's noise patch: the encoder has
   * more to do than the stamp */
  /* num-buffers: a non-live source would fill the harness's queue */
  src = g_strdup_printf ("videotestsrc num-buffers=%d pattern=smpte "
      "horizontal-speed=8 ! "
      "capsfilter caps=\"video/x-raw,format=I420,width=%d,height=%d,"
      "framerate=30/1\"", FRAMES, width, height);
  gst_harness_add_src_parse (rt->h, src, FALSE);
  gst_harness_play (rt->h->src_harness);
  gst_harness_use_testclock (rt->h);

  rt->stamp = gst_bin_get_by_name (GST_BIN (rt->h->element), "stamp");
  fail_unless (rt->stamp != NULL);
  rt->written.width = width;
  rt->written.height = height;
  rt->written.stamps = g_array_new (FALSE, FALSE,
      sizeof (PcrLatencyStampValue));
  rt->decoded = g_array_new (FALSE, FALSE, sizeof (PcrLatencyStampValue));
  rt->lo = g_array_new (FALSE, FALSE, sizeof (gint64));
  rt->hi = g_array_new (FALSE, FALSE, sizeof (gint64));
  pad = gst_element_get_static_pad (rt->stamp, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, record_written,
      &rt->written, NULL);
  gst_object_unref (pad);
}

static void
round_trip_clear (RoundTrip * rt)
{
  gst_object_unref (rt->stamp);
  gst_harness_teardown (rt->h);
  g_array_unref (rt->written.stamps);
  g_array_unref (rt->decoded);
  g_array_unref (rt->lo);
  g_array_unref (rt->hi);
}

static void
drain (RoundTrip * rt)
{
  GstBuffer *out;

  while ((out = gst_harness_try_pull (rt->h)) != NULL) {
    PcrLatencyStampValue stamp;

    /* default strides (no video meta): the size says so */
    fail_unless_equals_int (gst_buffer_get_size (out),
        rt->written.width * rt->written.height * 3 / 2);
    if (read_i420 (out, rt->written.width, rt->written.height, &stamp))
      g_array_append_val (rt->decoded, stamp);
    else
      rt->undecoded++;
    rt->frames_out++;
    gst_buffer_unref (out);
  }
}

/* One frame from videotestsrc, with the clock AGE_NS past its PTS. */
static void
push_frame (RoundTrip * rt)
{
  GstBuffer *buf = gst_harness_pull (rt->h->src_harness);
  gint64 lo, hi;

  fail_unless (buf != NULL);
  gst_harness_set_time (rt->h, GST_BUFFER_PTS (buf) + AGE_NS);
  lo = g_get_real_time () - AGE_NS / GST_USECOND;
  fail_unless_equals_int (gst_harness_push (rt->h, buf), GST_FLOW_OK);
  hi = g_get_real_time () - AGE_NS / GST_USECOND;
  g_array_append_val (rt->lo, lo);
  g_array_append_val (rt->hi, hi);
  drain (rt);
}

static void
finish (RoundTrip * rt)
{
  fail_unless (gst_harness_push_event (rt->h, gst_event_new_eos ()));
  drain (rt);
  fail_unless_equals_int (rt->frames_out, rt->lo->len);
}

static void
check_round_trip (gint width, gint height)
{
  RoundTrip rt;
  guint i;

  round_trip_init (&rt, width, height);
  fail_unless_equals_int64 (gst_element_get_base_time (rt.stamp), 0);
  for (i = 0; i < FRAMES; i++)
    push_frame (&rt);
  finish (&rt);

  fail_unless_equals_int (rt.written.unstamped, 0);
  fail_unless_equals_int (rt.written.stamps->len, FRAMES);
  fail_unless_equals_int (rt.undecoded, 0);
  fail_unless_equals_int (rt.decoded->len, FRAMES);
  for (i = 0; i < FRAMES; i++) {
    PcrLatencyStampValue *w = &g_array_index (rt.written.stamps,
        PcrLatencyStampValue, i);
    PcrLatencyStampValue *d = &g_array_index (rt.decoded,
        PcrLatencyStampValue, i);
    gint64 lo = g_array_index (rt.lo, gint64, i);
    gint64 hi = g_array_index (rt.hi, gint64, i);

    fail_unless_equals_int (w->frame, i);
    /* the capture time: the wall clock when pushed, minus the age */
    fail_unless ((gint64) w->time_us >= lo && (gint64) w->time_us <= hi,
        "frame %u: stamped %" G_GUINT64_FORMAT ", expected %" G_GINT64_FORMAT
        "..%" G_GINT64_FORMAT, i, w->time_us, lo, hi);
    /* H.264 and back: the same bits */
    fail_unless_equals_int (d->frame, w->frame);
    fail_unless_equals_uint64 (d->time_us, w->time_us);
  }
  round_trip_clear (&rt);
}

GST_START_TEST (test_h264_720p)
{
  check_round_trip (1280, 720);
}

GST_END_TEST;

GST_START_TEST (test_h264_480p)
{
  check_round_trip (640, 480);
}

GST_END_TEST;

/* Disabled: frames pass untouched and read as no stamp, before and after
 * H.264; enabled mid-stream, stamping starts with frame 0. */
GST_START_TEST (test_disabled)
{
  RoundTrip rt;
  guint i;

  round_trip_init (&rt, 640, 480);
  g_object_set (rt.stamp, "enabled", FALSE, NULL);
  for (i = 0; i < 30; i++)
    push_frame (&rt);
  fail_unless_equals_int (rt.written.unstamped, 30);
  fail_unless_equals_int (rt.undecoded, rt.frames_out);

  g_object_set (rt.stamp, "enabled", TRUE, NULL);
  for (i = 0; i < 30; i++)
    push_frame (&rt);
  finish (&rt);

  fail_unless_equals_int (rt.written.unstamped, 30);
  fail_unless_equals_int (rt.written.stamps->len, 30);
  fail_unless_equals_int (rt.undecoded, 30);
  fail_unless_equals_int (rt.decoded->len, 30);
  for (i = 0; i < 30; i++) {
    fail_unless_equals_int (g_array_index (rt.decoded, PcrLatencyStampValue,
            i).frame, i);
  }
  round_trip_clear (&rt);
}

GST_END_TEST;

/* A disabled element hands the very buffer on, unmapped and uncopied. */
GST_START_TEST (test_disabled_passthrough)
{
  GstHarness *h = gst_harness_new ("latencystamp");
  GstBuffer *in, *out;
  GstMapInfo map;
  gsize size = 640 * 480 * 3 / 2;

  g_object_set (h->element, "enabled", FALSE, NULL);
  gst_harness_set_src_caps_str (h, "video/x-raw,format=I420,width=640,"
      "height=480,framerate=30/1");
  in = gst_buffer_new_allocate (NULL, size, NULL);
  gst_buffer_memset (in, 0, 0x55, size);
  GST_BUFFER_PTS (in) = 0;
  gst_buffer_ref (in);
  out = gst_harness_push_and_pull (h, in);
  fail_unless (out == in);
  fail_unless (gst_buffer_map (out, &map, GST_MAP_READ));
  fail_unless (map.data[0] == 0x55 && map.data[size - 1] == 0x55);
  gst_buffer_unmap (out, &map);
  gst_buffer_unref (out);
  gst_buffer_unref (in);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* flash=true without the stamp: the frame nearest to each whole second
 * of running time (at 30 frames a second: 0, 1 s = frame 30, 2 s = frame 60)
 * has the white square at the bottom left, the others none. */
GST_START_TEST (test_flash)
{
  GstHarness *h = gst_harness_new ("latencystamp");
  gsize size = 640 * 480 * 3 / 2;
  guint i, flashes = 0;

  g_object_set (h->element, "enabled", FALSE, "flash", TRUE, NULL);
  gst_harness_set_src_caps_str (h, "video/x-raw,format=I420,width=640,"
      "height=480,framerate=30/1");
  for (i = 0; i < 70; i++) {
    GstBuffer *in = gst_buffer_new_allocate (NULL, size, NULL), *out;
    GstMapInfo map;
    gboolean white;

    gst_buffer_memset (in, 0, 0x10, size);
    /* a little jitter, as a live source has */
    GST_BUFFER_PTS (in) = gst_util_uint64_scale (i, GST_SECOND, 30) +
        (i % 2 ? 3 : -3) * GST_MSECOND * (i > 0);
    GST_BUFFER_DURATION (in) = GST_SECOND / 30;
    out = gst_harness_push_and_pull (h, in);
    fail_unless (gst_buffer_map (out, &map, GST_MAP_READ));
    /* luma of the square's middle, and of the top right corner */
    white = map.data[(480 - 32) * 640 + 32] == 235;
    fail_unless (map.data[640 - 1] == 0x10);
    if (white) {
      fail_unless (i == 0 || i == 30 || i == 60, "flash on frame %u", i);
      flashes++;
    }
    gst_buffer_unmap (out, &map);
    gst_buffer_unref (out);
  }
  fail_unless_equals_int (flashes, 3);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Fills a width x height plane with blocks of @block_size showing @bits
 * (PCR_LATENCY_STAMP_BITS of them) in the stamp's layout. */
static void
draw_bits (guint8 * plane, gint width, gint height, gint block_size,
    const guint8 * bits)
{
  gint cols, rows, x, y;

  fail_unless (pcr_latency_stamp_layout (width, height, block_size, &cols,
          &rows));
  memset (plane, PCR_LATENCY_STAMP_LUMA_0, (gsize) width * height);
  for (y = 0; y < rows * block_size; y++) {
    for (x = 0; x < cols * block_size; x++) {
      gint i = (y / block_size) * cols + x / block_size;

      if (i < PCR_LATENCY_STAMP_BITS && bits[i])
        plane[y * width + x] = PCR_LATENCY_STAMP_LUMA_1;
    }
  }
}

/* Nothing but a stamp reads as one: noise, random blocks, the right sync
 * word with random bits, and a real stamp with one or two bits flipped. */
GST_START_TEST (test_garbage_never_decodes)
{
  const gint w = 640, h = 480;
  g_autofree guint8 *plane = g_malloc ((gsize) w * h);
  g_autoptr (GRand) rand = g_rand_new_with_seed (20240611);
  PcrLatencyStampValue good = { G_GUINT64_CONSTANT (1718000000123456), 42 };
  PcrLatencyStampValue out;
  guint8 bits[PCR_LATENCY_STAMP_BITS];
  guint8 flipped[PCR_LATENCY_STAMP_BITS];
  guint passed = 0;             /* one assertion a loop: check records each */
  gint i, j, n;

  /* the CRC is zlib's */
  fail_unless_equals_int (pcr_latency_stamp_crc32 ((const guint8 *)
          "123456789", 9), 0xCBF43926);

  /* the good one does decode, from bits and from a picture; its CRC is
   * the worked example's in docs/latency.md */
  pcr_latency_stamp_pack (&good, bits);
  for (n = 0, i = 112; i < PCR_LATENCY_STAMP_BITS; i++)
    n = (n << 1) | bits[i];
  fail_unless_equals_int ((guint32) n, 0x42F41C73);
  fail_unless (pcr_latency_stamp_unpack (bits, &out));
  fail_unless_equals_uint64 (out.time_us, good.time_us);
  draw_bits (plane, w, h, 16, bits);
  fail_unless (pcr_latency_stamp_decode (plane, w, h, w, 1, 0, &out));
  fail_unless_equals_int (out.frame, 42);

  /* pixel noise */
  for (n = 0; n < 200; n++) {
    for (i = 0; i < w * h; i++)
      plane[i] = g_rand_int (rand) & 0xFF;
    passed += pcr_latency_stamp_decode (plane, w, h, w, 1, 0, NULL);
  }
  fail_unless_equals_int (passed, 0);
  /* flat pictures */
  memset (plane, 0, (gsize) w * h);
  fail_if (pcr_latency_stamp_decode (plane, w, h, w, 1, 0, NULL));
  memset (plane, 255, (gsize) w * h);
  fail_if (pcr_latency_stamp_decode (plane, w, h, w, 1, 0, NULL));

  /* random blocks, and the right sync word with random bits after it */
  for (n = 0; n < 2000; n++) {
    for (i = 0; i < PCR_LATENCY_STAMP_BITS; i++)
      flipped[i] = g_rand_int (rand) & 1;
    if (n % 2 == 1)
      memcpy (flipped, bits, 16);
    draw_bits (plane, w, h, 16, flipped);
    passed += pcr_latency_stamp_decode (plane, w, h, w, 1, 0, NULL);
  }
  fail_unless_equals_int (passed, 0);
  for (n = 0; n < 1000000; n++) {
    guint32 r = 0;

    for (i = 16; i < PCR_LATENCY_STAMP_BITS; i++) {
      if (i % 32 == 16)
        r = g_rand_int (rand);
      flipped[i] = (r >> (i % 32)) & 1;
    }
    memcpy (flipped, bits, 16);
    passed += pcr_latency_stamp_unpack (flipped, NULL);
  }
  fail_unless_equals_int (passed, 0);

  /* every single and double bit error is caught */
  for (i = 0; i < PCR_LATENCY_STAMP_BITS; i++) {
    memcpy (flipped, bits, sizeof (bits));
    flipped[i] ^= 1;
    passed += pcr_latency_stamp_unpack (flipped, NULL);
    for (j = i + 1; j < PCR_LATENCY_STAMP_BITS; j++) {
      flipped[j] ^= 1;
      passed += pcr_latency_stamp_unpack (flipped, NULL);
      flipped[j] ^= 1;
    }
  }
  fail_unless_equals_int (passed, 0);

  /* a short or narrow picture has no room: read as nothing, not outside */
  fail_if (pcr_latency_stamp_decode (plane, 8, 8, 8, 1, 0, NULL));
  fail_if (pcr_latency_stamp_decode (plane, w, 16, w, 1, 0, NULL));
}

GST_END_TEST;

/* Where component 0 (luma) starts and how far apart its samples are, for
 * a 640x480 picture; the band's chroma bytes must all be neutral. */
typedef struct
{
  const gchar *format;
  gsize offset;
  gint pstride;
  gsize stride;
} LumaLayout;

/* Counts the chroma bytes of the band that are not 128 (one assertion in
 * the caller: check records every assertion, passed or not). */
static guint
count_chroma_not_neutral (const gchar * format, const guint8 * data, gint band)
{
  const gint w = 640, h = 480;
  guint bad = 0;
  gint x, y;

  if (g_str_equal (format, "I420") || g_str_equal (format, "YV12")) {
    for (y = 0; y < band / 2; y++) {
      for (x = 0; x < w / 2; x++) {
        bad += data[w * h + y * w / 2 + x] != 128;
        bad += data[w * h * 5 / 4 + y * w / 2 + x] != 128;
      }
    }
  } else if (g_str_has_prefix (format, "NV")) {
    for (y = 0; y < band / 2; y++) {
      for (x = 0; x < w; x++)
        bad += data[w * h + y * w + x] != 128;
    }
  } else {
    /* packed 4:2:2: every byte that is not luma */
    gint chroma = g_str_equal (format, "UYVY") ? 0 : 1;

    for (y = 0; y < band; y++) {
      for (x = chroma; x < 2 * w; x += 2)
        bad += data[y * 2 * w + x] != 128;
    }
  }
  return bad;
}

GST_START_TEST (test_formats_and_block_sizes)
{
  static const LumaLayout layouts[] = {
    {"I420", 0, 1, 640}, {"YV12", 0, 1, 640}, {"NV12", 0, 1, 640},
    {"NV21", 0, 1, 640}, {"YUY2", 0, 2, 1280}, {"YVYU", 0, 2, 1280},
    {"UYVY", 1, 2, 1280},
  };
  /* 40 is the largest block that fits 640x480 (16 columns, 9 rows) */
  static const gint sizes[] = { 8, 16, 24, 32, 40 };
  guint f, s;

  for (f = 0; f < G_N_ELEMENTS (layouts); f++) {
    for (s = 0; s < G_N_ELEMENTS (sizes); s++) {
      g_autofree gchar *desc = NULL;
      GstHarness *h;
      GstBuffer *buf;
      GstMapInfo map;
      PcrLatencyStampValue stamp;
      gint rows, i;

      desc = g_strdup_printf ("videotestsrc num-buffers=3 pattern=ball ! "
          "capsfilter "
          "caps=\"video/x-raw,format=%s,width=640,height=480,"
          "framerate=30/1\"", layouts[f].format);
      h = gst_harness_new ("latencystamp");
      g_object_set (h->element, "block-size", sizes[s], NULL);
      gst_harness_add_src_parse (h, desc, FALSE);
      for (i = 0; i < 3; i++) {
        fail_unless_equals_int (gst_harness_push_from_src (h), GST_FLOW_OK);
        buf = gst_harness_pull (h);
        fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
        /* the block size as given, and found without being told */
        fail_unless (pcr_latency_stamp_decode (map.data + layouts[f].offset,
                640, 480, layouts[f].stride, layouts[f].pstride, sizes[s],
                &stamp), "%s block-size %d", layouts[f].format, sizes[s]);
        fail_unless_equals_int (stamp.frame, i);
        fail_unless (pcr_latency_stamp_decode (map.data + layouts[f].offset,
                640, 480, layouts[f].stride, layouts[f].pstride, 0, &stamp));
        fail_unless_equals_int (stamp.frame, i);
        fail_unless (pcr_latency_stamp_layout (640, 480, sizes[s], NULL,
                &rows));
        fail_unless_equals_int (count_chroma_not_neutral (layouts[f].format,
                map.data, rows * sizes[s]), 0);
        gst_buffer_unmap (buf, &map);
        gst_buffer_unref (buf);
      }
      gst_harness_teardown (h);
    }
  }
}

GST_END_TEST;

/* The largest blocks: 64 fits 1280x720 (20 columns, 8 rows, 512 pixels
 * tall) and reads back; at 640x480 the band would be 960 pixels tall, so
 * frames pass unstamped. */
GST_START_TEST (test_large_blocks)
{
  static const struct
  {
    gint width, height;
    gboolean fits;
  } cases[] = { {1280, 720, TRUE}, {640, 480, FALSE} };
  guint c;

  for (c = 0; c < G_N_ELEMENTS (cases); c++) {
    gint w = cases[c].width, h = cases[c].height;
    GstHarness *harness = gst_harness_new ("latencystamp");
    g_autofree gchar *caps = g_strdup_printf ("video/x-raw,format=I420,"
        "width=%d,height=%d,framerate=30/1", w, h);
    gsize size = (gsize) w * h * 3 / 2;
    GstBuffer *buf = gst_buffer_new_allocate (NULL, size, NULL);
    PcrLatencyStampValue stamp;
    GstMapInfo map;

    g_object_set (harness->element, "block-size", 64, NULL);
    gst_harness_set_src_caps_str (harness, caps);
    gst_buffer_memset (buf, 0, 0x80, size);
    buf = gst_harness_push_and_pull (harness, buf);
    fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
    fail_unless_equals_int (pcr_latency_stamp_decode (map.data, w, h, w, 1,
            64, &stamp), cases[c].fits);
    fail_unless_equals_int (pcr_latency_stamp_decode (map.data, w, h, w, 1,
            0, &stamp), cases[c].fits);
    if (!cases[c].fits)
      fail_unless (map.data[0] == 0x80);
    gst_buffer_unmap (buf, &map);
    gst_buffer_unref (buf);
    gst_harness_teardown (harness);
  }
}

GST_END_TEST;

/* block-size takes multiples of 8 in 8..64; others round down. */
GST_START_TEST (test_block_size_property)
{
  GstElement *e = gst_element_factory_make ("latencystamp", NULL);
  gboolean enabled;
  gint size;

  fail_unless (e != NULL, "latencystamp is not registered");
  g_object_get (e, "enabled", &enabled, "block-size", &size, NULL);
  fail_unless (enabled);
  fail_unless_equals_int (size, 16);
  g_object_set (e, "block-size", 40, NULL);
  g_object_get (e, "block-size", &size, NULL);
  fail_unless_equals_int (size, 40);
  g_object_set (e, "block-size", 23, NULL);
  g_object_get (e, "block-size", &size, NULL);
  fail_unless_equals_int (size, 16);
  gst_object_unref (e);
}

GST_END_TEST;

/* A picture with no room for the band passes unstamped, with one warning
 * on the bus. */
GST_START_TEST (test_too_small)
{
  GstHarness *h = gst_harness_new ("latencystamp");
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  GstBuffer *buf;
  GstMapInfo map;
  gsize size = 64 * 48 * 3 / 2;
  gint i;

  gst_element_set_bus (h->element, bus);
  gst_harness_set_src_caps_str (h, "video/x-raw,format=I420,width=64,"
      "height=48,framerate=30/1");
  for (i = 0; i < 3; i++) {
    buf = gst_buffer_new_allocate (NULL, size, NULL);
    gst_buffer_memset (buf, 0, 0x55, size);
    buf = gst_harness_push_and_pull (h, buf);
    fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
    fail_unless (map.data[0] == 0x55 && map.data[size - 1] == 0x55);
    gst_buffer_unmap (buf, &map);
    gst_buffer_unref (buf);
  }
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
  fail_unless (msg != NULL, "no warning for a picture with no room");
  gst_message_unref (msg);
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING) == NULL);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* No PTS: the frame gets the wall time it passed the element. */
GST_START_TEST (test_no_pts)
{
  GstHarness *h = gst_harness_new ("latencystamp");
  gsize size = 640 * 480 * 3 / 2;
  GstBuffer *buf = gst_buffer_new_allocate (NULL, size, NULL);
  PcrLatencyStampValue stamp;
  gint64 lo, hi;

  gst_harness_set_src_caps_str (h, "video/x-raw,format=I420,width=640,"
      "height=480,framerate=30/1");
  gst_buffer_memset (buf, 0, 0x80, size);
  lo = g_get_real_time ();
  buf = gst_harness_push_and_pull (h, buf);
  hi = g_get_real_time ();
  fail_unless (read_i420 (buf, 640, 480, &stamp));
  fail_unless ((gint64) stamp.time_us >= lo && (gint64) stamp.time_us <= hi);
  gst_buffer_unref (buf);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* The cost of a stamp on a 1280x720 I420 frame: the same buffer goes
 * round through the harness stamped and with the element disabled
 * (passthrough), and the difference is the stamp. */
static gdouble
ns_per_frame (gboolean enabled, gint n)
{
  GstHarness *h = gst_harness_new ("latencystamp");
  gsize size = 1280 * 720 * 3 / 2;
  GstBuffer *buf = gst_buffer_new_allocate (NULL, size, NULL);
  gint64 start;
  gint i;

  g_object_set (h->element, "enabled", enabled, NULL);
  gst_harness_use_testclock (h);
  gst_harness_set_src_caps_str (h, "video/x-raw,format=I420,width=1280,"
      "height=720,framerate=30/1");
  gst_buffer_memset (buf, 0, 0x80, size);
  start = g_get_monotonic_time ();
  for (i = 0; i < n; i++) {
    GST_BUFFER_PTS (buf) = i * GST_SECOND / 30;
    buf = gst_harness_push_and_pull (h, buf);
  }
  start = g_get_monotonic_time () - start;
  gst_buffer_unref (buf);
  gst_harness_teardown (h);
  return start * 1000.0 / n;
}

GST_START_TEST (test_cost)
{
  gdouble stamped = G_MAXDOUBLE, passthrough = G_MAXDOUBLE;
  gint round;

  /* best of three against scheduling noise */
  for (round = 0; round < 3; round++) {
    stamped = MIN (stamped, ns_per_frame (TRUE, 2000));
    passthrough = MIN (passthrough, ns_per_frame (FALSE, 2000));
  }
  g_print ("latencystamp 1280x720 I420: %.0f ns a frame stamped, %.0f ns "
      "passthrough: the stamp costs %.0f ns\n", stamped, passthrough,
      stamped - passthrough);
  /* a frame at 30 fps has 33 ms; the stamp must be noise in that */
  fail_unless (stamped - passthrough < 1000000.0, "%.0f ns a frame",
      stamped - passthrough);
}

GST_END_TEST;

static gboolean
have_codec_elements (void)
{
  GstElementFactory *enc = gst_element_factory_find ("x264enc");
  GstElementFactory *dec = gst_element_factory_find ("avdec_h264");
  gboolean ok = enc != NULL && dec != NULL;

  gst_clear_object (&enc);
  gst_clear_object (&dec);
  return ok;
}

static Suite *
latencystamp_suite (void)
{
  Suite *s = suite_create ("latencystamp");
  TCase *tc = tcase_create ("general");

  tcase_set_timeout (tc, 100);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_block_size_property);
  tcase_add_test (tc, test_garbage_never_decodes);
  tcase_add_test (tc, test_formats_and_block_sizes);
  tcase_add_test (tc, test_large_blocks);
  tcase_add_test (tc, test_disabled_passthrough);
  tcase_add_test (tc, test_too_small);
  tcase_add_test (tc, test_no_pts);
  tcase_add_test (tc, test_cost);
  if (have_codec_elements ()) {
    tcase_add_test (tc, test_h264_720p);
    tcase_add_test (tc, test_h264_480p);
    tcase_add_test (tc, test_disabled);
    tcase_add_test (tc, test_flash);
  } else {
    g_printerr ("x264enc (gstreamer1.0-plugins-ugly) or avdec_h264 "
        "(gstreamer1.0-libav) missing: H.264 round trips skipped\n");
  }
  return s;
}

PCR_CHECK_MAIN ("latencystamp", "latencystamp", latencystamp_suite)
