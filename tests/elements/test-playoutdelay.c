/* Checks rtphdrextplayoutdelay as mqttwebrtcsink uses it: attached to an
 * rtph264pay with the id a viewer's offer gave it, every RTP packet of an
 * encoded stream (key frames, the SPS/PPS before them, every fragment)
 * carries the 3 bytes of the playout-delay extension under that id, with
 * the delays of its properties in 10 ms units; the payloader's caps name
 * the extension (extmap-<id>), which is what webrtcbin turns into the
 * answer's a=extmap line; a payloader without it sends no extension. */
#include <string.h>

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/rtp/rtp.h>

#include "pcr-check-main.h"

#define URI "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
#define FRAMES 20

static GPtrArray *
encode_frames (guint n, GstCaps ** caps)
{
  g_autofree gchar *desc = g_strdup_printf ("videotestsrc num-buffers=%u ! "
      "video/x-raw,width=320,height=240,framerate=30/1 ! "
      "x264enc speed-preset=ultrafast key-int-max=10 ! "
      "video/x-h264,stream-format=byte-stream,alignment=au,"
      "profile=constrained-baseline ! appsink name=out sync=false", n);
  g_autoptr (GError) error = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);
  GstElement *out;
  GPtrArray *buffers = g_ptr_array_new_with_free_func ((GDestroyNotify)
      gst_buffer_unref);
  GstSample *sample;

  fail_unless (pipeline != NULL, "%s", error ? error->message : "?");
  out = gst_bin_get_by_name (GST_BIN (pipeline), "out");
  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_PLAYING),
      GST_STATE_CHANGE_ASYNC);
  *caps = NULL;
  while (TRUE) {
    sample = NULL;
    g_signal_emit_by_name (out, "try-pull-sample", 10 * GST_SECOND, &sample);
    if (!sample)
      break;
    if (!*caps)
      *caps = gst_caps_ref (gst_sample_get_caps (sample));
    g_ptr_array_add (buffers, gst_buffer_ref (gst_sample_get_buffer (sample)));
    gst_sample_unref (sample);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (out);
  gst_object_unref (pipeline);
  fail_unless_equals_int (buffers->len, n);
  fail_unless (*caps != NULL);
  return buffers;
}

typedef struct
{
  guint packets, with_ext, with_playout_delay;
  guint8 bytes[3];
} Seen;

/* Payloads FRAMES encoded frames with an rtph264pay as mqttwebrtcsink sets
 * it up, with the extension at @id (0: none), and looks at every packet. */
static void
payload_frames (guint id, guint min_ms, guint max_ms, Seen * seen,
    GstCaps ** src_caps)
{
  g_autoptr (GstCaps) caps = NULL;
  g_autoptr (GPtrArray) frames = encode_frames (FRAMES, &caps);
  GstElement *pay = gst_element_factory_make ("rtph264pay", NULL);
  GstHarness *h;
  GstBuffer *buf;
  guint i;

  fail_unless (pay != NULL);
  gst_object_ref_sink (pay);
  g_object_set (pay, "config-interval", -1, "pt", 102, NULL);
  gst_util_set_object_arg (G_OBJECT (pay), "aggregate-mode", "zero-latency");
  if (id) {
    /* Made by name: with rank none, payloaders of other applications
     * never pick it up by its URI (gst_rtp_header_extension_create_from_uri
     * skips it). */
    GstRTPHeaderExtension *ext = (GstRTPHeaderExtension *)
        gst_element_factory_make ("rtphdrextplayoutdelay", NULL);

    fail_unless (ext != NULL, "no rtphdrextplayoutdelay");
    fail_unless_equals_string (gst_rtp_header_extension_get_uri (ext), URI);
    gst_object_ref_sink (ext);
    gst_rtp_header_extension_set_id (ext, id);
    g_object_set (ext, "min-ms", min_ms, "max-ms", max_ms, NULL);
    g_signal_emit_by_name (pay, "add-extension", ext);
    gst_object_unref (ext);
  }
  h = gst_harness_new_with_element (pay, "sink", "src");
  gst_harness_set_src_caps (h, gst_caps_ref (caps));
  for (i = 0; i < frames->len; i++)
    fail_unless_equals_int (gst_harness_push (h,
            gst_buffer_ref (g_ptr_array_index (frames, i))), GST_FLOW_OK);

  memset (seen, 0, sizeof (*seen));
  while ((buf = gst_harness_try_pull (h))) {
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    gpointer data;
    guint size;

    fail_unless (gst_rtp_buffer_map (buf, GST_MAP_READ, &rtp));
    seen->packets++;
    if (gst_rtp_buffer_get_extension (&rtp))
      seen->with_ext++;
    if (id && gst_rtp_buffer_get_extension_onebyte_header (&rtp, id, 0,
            &data, &size)) {
      fail_unless_equals_int (size, 3);
      if (seen->with_playout_delay == 0)
        memcpy (seen->bytes, data, 3);
      else
        fail_unless (memcmp (seen->bytes, data, 3) == 0,
            "the delays changed between packets");
      seen->with_playout_delay++;
    }
    gst_rtp_buffer_unmap (&rtp);
    gst_buffer_unref (buf);
  }
  *src_caps = gst_pad_get_current_caps (h->sinkpad);
  gst_harness_teardown (h);
  gst_object_unref (pay);
}

GST_START_TEST (test_factory)
{
  GstElementFactory *f = gst_element_factory_find ("rtphdrextplayoutdelay");
  GstRTPHeaderExtension *auto_ext;

  fail_unless (f != NULL, "no rtphdrextplayoutdelay in the registry");
  fail_unless_equals_string (gst_element_factory_get_metadata (f,
          GST_RTP_HEADER_EXTENSION_URI_METADATA_KEY), URI);
  gst_object_unref (f);
  /* Not for auto-plugging: only mqttwebrtcsink decides to send it. */
  auto_ext = gst_rtp_header_extension_create_from_uri (URI);
  if (auto_ext) {
    f = gst_element_get_factory (GST_ELEMENT (auto_ext));
    fail_if (g_str_equal (GST_OBJECT_NAME (f), "rtphdrextplayoutdelay"));
    gst_object_unref (auto_ext);
  }
}

GST_END_TEST;

GST_START_TEST (test_every_packet_render_at_once)
{
  g_autoptr (GstCaps) caps = NULL;
  g_autofree gchar *uri = NULL;
  Seen seen;

  payload_frames (5, 0, 0, &seen, &caps);
  /* 320x240 key frames are several packets: fragments count too. */
  fail_unless (seen.packets > FRAMES, "only %u packets", seen.packets);
  fail_unless_equals_int (seen.with_playout_delay, seen.packets);
  fail_unless (seen.bytes[0] == 0 && seen.bytes[1] == 0 && seen.bytes[2] == 0,
      "min 0 max 0 is not 00 00 00 but %02x %02x %02x", seen.bytes[0],
      seen.bytes[1], seen.bytes[2]);
  fail_unless (caps != NULL);
  uri = g_strdup (gst_structure_get_string (gst_caps_get_structure (caps, 0),
          "extmap-5"));
  fail_unless_equals_string (uri, URI);
}

GST_END_TEST;

GST_START_TEST (test_delays_in_10ms_units)
{
  g_autoptr (GstCaps) caps = NULL;
  Seen seen;

  /* 12-bit 170 (0x0aa) and 12-bit 4095 (0xfff), the last ms dropped. */
  payload_frames (14, 1709, 40950, &seen, &caps);
  fail_unless_equals_int (seen.with_playout_delay, seen.packets);
  fail_unless (seen.bytes[0] == 0x0a && seen.bytes[1] == 0xaf &&
      seen.bytes[2] == 0xff, "got %02x %02x %02x", seen.bytes[0],
      seen.bytes[1], seen.bytes[2]);
}

GST_END_TEST;

GST_START_TEST (test_without_extension)
{
  g_autoptr (GstCaps) caps = NULL;
  Seen seen;

  payload_frames (0, 0, 0, &seen, &caps);
  fail_unless (seen.packets > FRAMES);
  fail_unless_equals_int (seen.with_ext, 0);
  fail_if (gst_structure_has_field (gst_caps_get_structure (caps, 0),
          "extmap-5"));
}

GST_END_TEST;

static Suite *
playoutdelay_suite (void)
{
  Suite *s = suite_create ("rtphdrextplayoutdelay");
  TCase *tc = tcase_create ("general");

  tcase_set_timeout (tc, 60);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_factory);
  tcase_add_test (tc, test_every_packet_render_at_once);
  tcase_add_test (tc, test_delays_in_10ms_units);
  tcase_add_test (tc, test_without_extension);
  return s;
}

PCR_CHECK_MAIN ("playoutdelay", "rtphdrextplayoutdelay", playoutdelay_suite)
