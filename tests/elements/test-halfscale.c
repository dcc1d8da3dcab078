/* halfscale: caps halve and double, every output sample is the rounded
 * average of the 2x2 input samples it covers (planar and NV12, even and odd
 * sizes, padded strides), and a downstream size that is not half does not
 * negotiate. */
#include "config.h"

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include "pcr-check-main.h"

/* A sample value no two positions share often: the test sees any mix-up. */
static guint8
pattern (gint plane, gint x, gint y)
{
  return (guint8) (x * 7 + y * 13 + plane * 50);
}

static GstBuffer *
make_frame (GstVideoInfo * info)
{
  GstBuffer *buffer = gst_buffer_new_allocate (NULL, info->size, NULL);
  GstVideoFrame frame;
  guint p;
  gint x, y;

  gst_buffer_add_video_meta_full (buffer, GST_VIDEO_FRAME_FLAG_NONE,
      GST_VIDEO_INFO_FORMAT (info), GST_VIDEO_INFO_WIDTH (info),
      GST_VIDEO_INFO_HEIGHT (info), GST_VIDEO_INFO_N_PLANES (info),
      info->offset, info->stride);
  fail_unless (gst_video_frame_map (&frame, info, buffer, GST_MAP_WRITE));
  for (p = 0; p < GST_VIDEO_FRAME_N_PLANES (&frame); p++) {
    guint8 *data = GST_VIDEO_FRAME_PLANE_DATA (&frame, p);
    gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, p);
    gint comp = p == 0 ? 0 : (gint) p;
    gint n = GST_VIDEO_FRAME_N_PLANES (&frame) == 2 && p == 1 ? 2 : 1;
    gint w = GST_VIDEO_FRAME_COMP_WIDTH (&frame, comp) * n;

    memset (data, 0xee, (gsize) stride *
        GST_VIDEO_FRAME_COMP_HEIGHT (&frame, comp));
    for (y = 0; y < GST_VIDEO_FRAME_COMP_HEIGHT (&frame, comp); y++)
      for (x = 0; x < w; x++)
        data[y * stride + x] = pattern (p, x, y);
  }
  gst_video_frame_unmap (&frame);
  GST_BUFFER_PTS (buffer) = 0;
  return buffer;
}

/* What the output sample at (x, y) of plane p must be: the average of the
 * input's 2x2, the last column or row repeated past an odd edge. */
static guint8
expected (gint p, gint x, gint y, gint n, gint in_w, gint in_h)
{
  gint sx = x / n, c = x % n;
  gint x0 = 2 * sx * n + c;
  gint x1 = MIN (2 * sx + 1, in_w - 1) * n + c;
  gint y0 = 2 * y, y1 = MIN (2 * y + 1, in_h - 1);

  return (pattern (p, x0, y0) + pattern (p, x1, y0) + pattern (p, x0, y1) +
      pattern (p, x1, y1) + 2) >> 2;
}

static void
check_halves (const gchar * format, gint width, gint height)
{
  GstHarness *h = gst_harness_new ("halfscale");
  g_autofree gchar *in_caps = g_strdup_printf ("video/x-raw,format=%s,"
      "width=%d,height=%d,framerate=30/1", format, width, height);
  GstVideoInfo in_info, out_info;
  GstVideoAlignment align;
  GstVideoFrame frame;
  GstBuffer *out;
  GstCaps *caps;
  guint p;
  gint x, y;

  gst_harness_set_src_caps_str (h, in_caps);
  caps = gst_caps_from_string (in_caps);
  fail_unless (gst_video_info_from_caps (&in_info, caps));
  gst_caps_unref (caps);
  /* padded rows, as a camera's buffers have (the video meta says so) */
  gst_video_alignment_reset (&align);
  align.padding_right = 24;
  fail_unless (gst_video_info_align (&in_info, &align));
  out = gst_harness_push_and_pull (h, make_frame (&in_info));
  fail_unless (out != NULL);

  caps = gst_pad_get_current_caps (h->sinkpad);
  fail_unless (gst_video_info_from_caps (&out_info, caps));
  gst_caps_unref (caps);
  fail_unless_equals_int (GST_VIDEO_INFO_WIDTH (&out_info), width / 2);
  fail_unless_equals_int (GST_VIDEO_INFO_HEIGHT (&out_info), height / 2);
  fail_unless_equals_string (gst_video_format_to_string
      (GST_VIDEO_INFO_FORMAT (&out_info)), format);

  fail_unless (gst_video_frame_map (&frame, &out_info, out, GST_MAP_READ));
  for (p = 0; p < GST_VIDEO_FRAME_N_PLANES (&frame); p++) {
    const guint8 *data = GST_VIDEO_FRAME_PLANE_DATA (&frame, p);
    gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, p);
    gint comp = p == 0 ? 0 : (gint) p;
    gint n = GST_VIDEO_FRAME_N_PLANES (&frame) == 2 && p == 1 ? 2 : 1;
    gint in_w = GST_VIDEO_INFO_COMP_WIDTH (&in_info, comp);
    gint in_h = GST_VIDEO_INFO_COMP_HEIGHT (&in_info, comp);

    for (y = 0; y < GST_VIDEO_FRAME_COMP_HEIGHT (&frame, comp); y++)
      for (x = 0; x < GST_VIDEO_FRAME_COMP_WIDTH (&frame, comp) * n; x++) {
        gint got = data[y * stride + x], want = expected (p, x, y, n, in_w,
            in_h);

        /* one check call per wrong sample, not per sample: a million
         * calls into libcheck take seconds under ASan */
        if (got != want)
          fail ("%s %dx%d: plane %u sample (%d, %d) is %d, not %d", format,
              width, height, p, x, y, got, want);
      }
  }
  gst_video_frame_unmap (&frame);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_START_TEST (test_planar)
{
  check_halves ("I420", 1280, 720);
  check_halves ("YV12", 64, 48);
}

GST_END_TEST;

GST_START_TEST (test_nv12)
{
  check_halves ("NV12", 1280, 720);
  check_halves ("NV21", 32, 16);
}

GST_END_TEST;

/* Odd sizes lose the last column or row; chroma of an odd half size reaches
 * past the input's last chroma column, which is repeated. */
GST_START_TEST (test_odd_sizes)
{
  check_halves ("I420", 1282, 722);
  check_halves ("NV12", 1281, 721);
  check_halves ("I420", 3, 3);
}

GST_END_TEST;

/* Asked for anything but half, it does not negotiate. */
GST_START_TEST (test_not_half)
{
  GstHarness *h = gst_harness_new ("halfscale");
  GstCaps *caps, *odd, *full;

  gst_harness_set_sink_caps_str (h, "video/x-raw,format=I420,width=500,"
      "height=360");
  caps = gst_pad_peer_query_caps (h->srcpad, NULL);
  fail_unless (caps != NULL);
  /* what the element takes for 500x360 out: 1000-1001 x 720-721 */
  odd = gst_caps_from_string ("video/x-raw,width=1001,height=720");
  full = gst_caps_from_string ("video/x-raw,width=1280,height=720");
  fail_unless (gst_caps_can_intersect (caps, odd));
  fail_if (gst_caps_can_intersect (caps, full));
  gst_caps_unref (odd);
  gst_caps_unref (full);
  gst_caps_unref (caps);
  gst_harness_teardown (h);
}

GST_END_TEST;

static Suite *
halfscale_suite (void)
{
  Suite *s = suite_create ("halfscale");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_planar);
  tcase_add_test (tc, test_nv12);
  tcase_add_test (tc, test_odd_sizes);
  tcase_add_test (tc, test_not_half);
  return s;
}

PCR_CHECK_MAIN ("halfscale", "halfscale", halfscale_suite)
