/* Unit tests for the camera service's choice of source and encoder on
 * faked machines (a Pi 4, a Pi 5, a laptop with a webcam, a bare server),
 * its two renditions and their settings, the pipeline description,
 * including pipeline files with placeholders, and the Debian package names
 * of missing elements. PcrPlatform is filled by hand; only the parse tests
 * at the end ask the GStreamer registry (with the build tree's plugin). */
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <gst/gst.h>

#include "pcr-packages.h"
#include "pcr-select.h"
#include "test-tmpdir.h"

/* ---- selection --------------------------------------------------------- */

static PcrPlatform *
platform_with (const gchar * first, ...)
{
  PcrPlatform *platform = pcr_platform_new ();
  const gchar *name;
  va_list args;

  /* what every Debian box with plugins-base has */
  pcr_platform_add_element (platform, "tee");
  pcr_platform_add_element (platform, "queue");
  pcr_platform_add_element (platform, "valve");
  pcr_platform_add_element (platform, "videotestsrc");
  pcr_platform_add_element (platform, "videoconvert");
  pcr_platform_add_element (platform, "videoscale");
  pcr_platform_add_element (platform, "videorate");
  pcr_platform_add_element (platform, "decodebin");

  va_start (args, first);
  for (name = first; name != NULL; name = va_arg (args, const gchar *))
      pcr_platform_add_element (platform, name);
  va_end (args);
  return platform;
}

static void
assert_contains (const gchar * haystack, const gchar * needle)
{
  if (strstr (haystack, needle) == NULL) {
    g_test_message ("\"%s\" not in \"%s\"", needle, haystack);
    g_test_fail ();
  }
}

static void
test_select_pi4 (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrPlatform) platform = platform_with ("libcamerasrc",
      "v4l2src", "v4l2h264enc", "v4l2convert", "x264enc", NULL);
  g_autoptr (PcrSelection) sel = NULL;
  g_autoptr (GError) error = NULL;

  platform->libcamera_camera = TRUE;
  /* the Pi's own codec nodes are not capture devices, but a USB webcam
   * plugged in too must not win over the Pi camera */
  platform->v4l2_capture_device = g_strdup ("/dev/video0");

  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (sel->source_desc, "libcamerasrc ! "));
  assert_contains (sel->source_desc,
      "video/x-raw,format=NV12,width=1280,height=720,framerate=30/1");
  g_assert_true (g_str_has_prefix (sel->encoder_desc, "v4l2h264enc "));
  assert_contains (sel->encoder_desc, "repeat_sequence_header=1");
  assert_contains (sel->encoder_desc, "video_bitrate=2000000");
  assert_contains (sel->encoder_desc, "h264_i_frame_period=60");
  assert_contains (sel->encoder_desc,
      "video/x-h264,profile=(string)constrained-baseline,level=(string)3.1");
  assert_contains (sel->source_reason, "libcamerasrc");
  assert_contains (sel->encoder_reason, "v4l2h264enc");
  assert_contains (sel->encoder_reason, "hardware");
}

static void
test_select_pi4_1080p (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrPlatform) platform = platform_with ("libcamerasrc",
      "v4l2h264enc", NULL);
  g_autoptr (PcrSelection) sel = NULL;
  g_autoptr (GError) error = NULL;

  platform->libcamera_camera = TRUE;
  config->width = 1920;
  config->height = 1080;
  config->framerate = 25;
  config->bitrate = 4000;
  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  assert_contains (sel->encoder_desc, "level=(string)4");
  assert_contains (sel->encoder_desc, "video_bitrate=4000000");
  assert_contains (sel->encoder_desc, "h264_i_frame_period=50");

  /* 720p at 60 fps is beyond level 3.1 too */
  g_clear_pointer (&sel, pcr_selection_free);
  config->width = 1280;
  config->height = 720;
  config->framerate = 60;
  sel = pcr_select (config, platform, &error);
  assert_contains (sel->encoder_desc, "level=(string)4");
}

static void
test_select_pi5 (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrPlatform) platform = platform_with ("libcamerasrc",
      "v4l2src", "x264enc", "openh264enc", NULL);
  g_autoptr (PcrSelection) sel = NULL;
  g_autoptr (GError) error = NULL;

  platform->libcamera_camera = TRUE;
  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (sel->source_desc, "libcamerasrc ! "));
  g_assert_true (g_str_has_prefix (sel->encoder_desc, "x264enc "));
  assert_contains (sel->encoder_desc, "tune=zerolatency");
  assert_contains (sel->encoder_desc, "speed-preset=ultrafast");
  assert_contains (sel->encoder_desc, "key-int-max=60");
  assert_contains (sel->encoder_desc, "bframes=0");
  assert_contains (sel->encoder_desc, "bitrate=2000");
  assert_contains (sel->encoder_desc,
      "video/x-h264,profile=(string)constrained-baseline");
  assert_contains (sel->encoder_reason, "x264enc");
  assert_contains (sel->encoder_reason, "v4l2h264enc not present");
}

static void
test_select_usb_webcam (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrPlatform) platform = platform_with ("v4l2src", "jpegdec",
      "x264enc", "libcamerasrc", NULL);
  g_autoptr (PcrSelection) sel = NULL;
  g_autoptr (GError) error = NULL;

  /* libcamera installed but sees no camera (a laptop) */
  platform->libcamera_camera = FALSE;
  platform->v4l2_capture_device = g_strdup ("/dev/video0");
  config->width = 640;
  config->height = 480;
  config->framerate = 15;
  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (sel->source_desc,
          "v4l2src device=/dev/video0 ! decodebin ! "));
  assert_contains (sel->source_desc,
      "video/x-raw,format=I420,width=640,height=480");
  assert_contains (sel->source_desc, "videorate ! video/x-raw,framerate=15/1");
  assert_contains (sel->source_reason, "/dev/video0");
  g_assert_true (g_str_has_prefix (sel->encoder_desc, "x264enc "));
  assert_contains (sel->encoder_desc, "key-int-max=30");
}

static void
test_select_nothing (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrPlatform) platform = platform_with ("x264enc", NULL);
  g_autoptr (PcrSelection) sel = NULL;
  g_autoptr (GError) error = NULL;

  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (sel->source_desc,
          "videotestsrc is-live=true pattern=smpte horizontal-speed=4 ! "
          "video/x-raw,width=1280,height=720,framerate=30/1"));
  /* no clockoverlay on this machine: no overlay, and the reason says so */
  g_assert_null (strstr (sel->source_desc, "clockoverlay"));
  assert_contains (sel->source_reason, "gstreamer1.0-x");
  assert_contains (sel->source_reason, "no camera");
  g_assert_true (g_str_has_prefix (sel->encoder_desc, "x264enc "));

  /* with clockoverlay the test pattern shows a running clock */
  g_clear_pointer (&sel, pcr_selection_free);
  pcr_platform_add_element (platform, "clockoverlay");
  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_suffix (sel->source_desc,
          " ! clockoverlay time-format=\"%H:%M:%S\" halignment=right "
          "valignment=bottom font-desc=\"Sans 24\""));
}

static void
test_select_openh264 (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrPlatform) platform = platform_with ("openh264enc",
      "libcamerasrc", NULL);
  g_autoptr (PcrSelection) sel = NULL;
  g_autoptr (GError) error = NULL;

  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  assert_contains (sel->encoder_desc, "openh264enc ");
  assert_contains (sel->encoder_desc, "bitrate=2000000");
  assert_contains (sel->encoder_desc, "gop-size=60");
  assert_contains (sel->encoder_desc, "profile=(string)constrained-baseline");
  assert_contains (sel->encoder_reason, "gstreamer1.0-plugins-ugly");

  /* libcamerasrc gives NV12: openh264enc needs a videoconvert before it */
  g_clear_pointer (&sel, pcr_selection_free);
  platform->libcamera_camera = TRUE;
  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (sel->encoder_desc,
          "videoconvert ! openh264enc "));
}

static void
test_select_no_encoder (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrPlatform) platform = platform_with ("libcamerasrc", NULL);
  g_autoptr (PcrSelection) sel = NULL;
  g_autoptr (GError) error = NULL;

  platform->libcamera_camera = TRUE;
  sel = pcr_select (config, platform, &error);
  g_assert_null (sel);
  g_assert_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_MISSING_ELEMENT);
  assert_contains (error->message, "gstreamer1.0-plugins-ugly");
  assert_contains (error->message, "gstreamer1.0-plugins-bad");
  assert_contains (error->message, "x264enc");
}

static void
test_select_explicit_libcamera_missing (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrPlatform) platform = platform_with ("x264enc", "v4l2src", NULL);
  g_autoptr (PcrSelection) sel = NULL;
  g_autoptr (GError) error = NULL;

  g_free (config->source);
  config->source = g_strdup ("libcamera");
  sel = pcr_select (config, platform, &error);
  g_assert_null (sel);
  g_assert_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_MISSING_ELEMENT);
  assert_contains (error->message, "libcamerasrc");
  assert_contains (error->message, "gstreamer1.0-libcamera");
}

static void
test_select_explicit_sources (void)
{
  static const struct
  {
    const gchar *source;
    gboolean libcamera_camera;
    const gchar *source_prefix;   /* NULL: refused */
    const gchar *error;           /* in the refusal */
  } cases[] = {
    /* test on a Pi: the pattern, still with the hardware encoder */
    {"test", TRUE, "videotestsrc ", NULL},
    /* v4l2 with a named device */
    {"v4l2:/dev/video4", TRUE, "v4l2src device=/dev/video4 ! ", NULL},
    /* v4l2 without a device found: a clear error, not a guess */
    {"v4l2", TRUE, NULL, "v4l2:/dev/videoN"},
    /* libcamera asked for with no camera seen yet: still libcamerasrc */
    {"libcamera", FALSE, "libcamerasrc ", NULL},
    /* ...but auto does not pick a libcamera without a camera */
    {"auto", FALSE, "videotestsrc ", NULL},
  };
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrPlatform) platform = platform_with ("libcamerasrc",
      "v4l2src", "v4l2h264enc", NULL);
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (PcrSelection) sel = NULL;
    g_autoptr (GError) error = NULL;

    g_test_message ("source %s", cases[i].source);
    platform->libcamera_camera = cases[i].libcamera_camera;
    g_free (config->source);
    config->source = g_strdup (cases[i].source);
    sel = pcr_select (config, platform, &error);
    if (cases[i].source_prefix == NULL) {
      g_assert_null (sel);
      g_assert_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID);
      assert_contains (error->message, cases[i].error);
      continue;
    }
    g_assert_no_error (error);
    g_assert_true (g_str_has_prefix (sel->source_desc,
            cases[i].source_prefix));
    g_assert_true (g_str_has_prefix (sel->encoder_desc, "v4l2h264enc "));
  }
}

static void
test_select_test_missing (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrPlatform) platform = pcr_platform_new ();
  g_autoptr (PcrSelection) sel = NULL;
  g_autoptr (GError) error = NULL;

  pcr_platform_add_element (platform, "x264enc");
  sel = pcr_select (config, platform, &error);
  g_assert_null (sel);
  g_assert_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_MISSING_ELEMENT);
  assert_contains (error->message, "videotestsrc (gstreamer1.0-plugins-base)");
  g_clear_error (&error);

  /* without valve (a broken GStreamer install) the low rendition cannot
   * idle: the error names the package and the way out */
  pcr_platform_add_element (platform, "videotestsrc");
  sel = pcr_select (config, platform, &error);
  g_assert_null (sel);
  g_assert_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_MISSING_ELEMENT);
  assert_contains (error->message, "valve (libgstreamer1.0-0)");
  assert_contains (error->message, "videoscale (gstreamer1.0-plugins-base)");
  assert_contains (error->message, "renditions=1");
  g_clear_error (&error);

  config->renditions = 1;
  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  g_assert_null (sel->low_desc);
}

/* ---- pipelines --------------------------------------------------------- */

/* With jpegenc the raw frames also go to sink.snapshot, right after the
 * tee (no queue: its fakesink never blocks); without it the description
 * is the one of before and the selection says why there are no pictures. */
static void
test_build_snapshots (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrPlatform) platform = platform_with ("x264enc", "jpegenc",
      NULL);
  g_autoptr (PcrPlatform) without = platform_with ("x264enc", NULL);
  g_autoptr (PcrSelection) sel = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *desc = NULL;
  g_autofree gchar *expected = NULL;

  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  g_assert_true (sel->snapshots);
  assert_contains (sel->snapshot_reason, "JPEG");
  desc = pcr_build_pipeline (config, sel, &error);
  g_assert_no_error (error);
  expected = g_strdup_printf ("%s ! tee name=t ! sink.snapshot t. ! %s ! "
      "sink.sink_low t. ! queue max-size-buffers=1 max-size-bytes=0 "
      "max-size-time=0 leaky=downstream ! %s ! mqttwebrtcsink name=sink",
      sel->source_desc, sel->low_desc, sel->encoder_desc);
  g_assert_cmpstr (desc, ==, expected);

  /* one rendition: the tee is there for the pictures only */
  g_clear_pointer (&sel, pcr_selection_free);
  g_clear_pointer (&desc, g_free);
  g_clear_pointer (&expected, g_free);
  config->renditions = 1;
  config->latency_stamp = TRUE;
  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  desc = pcr_build_pipeline (config, sel, &error);
  g_assert_no_error (error);
  expected = g_strdup_printf ("%s ! latencystamp ! tee name=t ! "
      "sink.snapshot t. ! %s ! mqttwebrtcsink name=sink", sel->source_desc,
      sel->encoder_desc);
  g_assert_cmpstr (desc, ==, expected);

  g_clear_pointer (&sel, pcr_selection_free);
  g_clear_pointer (&desc, g_free);
  g_clear_pointer (&expected, g_free);
  sel = pcr_select (config, without, &error);
  g_assert_no_error (error);
  g_assert_false (sel->snapshots);
  assert_contains (sel->snapshot_reason, "jpegenc is missing");
  desc = pcr_build_pipeline (config, sel, &error);
  g_assert_no_error (error);
  g_assert_null (strstr (desc, "snapshot"));
}

static void
test_build_default (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrPlatform) platform = platform_with ("x264enc", NULL);
  g_autoptr (PcrSelection) sel = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *desc = NULL;
  g_autofree gchar *expected = NULL;

  g_free (config->username);
  config->username = g_strdup ("user");
  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  desc = pcr_build_pipeline (config, sel, &error);
  g_assert_no_error (error);
  /* two renditions by default: the main one last, ending in the sink */
  expected = g_strdup_printf ("%s ! tee name=t ! %s ! sink.sink_low t. ! "
      "queue max-size-buffers=1 max-size-bytes=0 max-size-time=0 "
      "leaky=downstream ! %s ! mqttwebrtcsink name=sink", sel->source_desc,
      sel->low_desc, sel->encoder_desc);
  g_assert_cmpstr (desc, ==, expected);
  /* the service sets the sink's properties on the element */
  g_assert_null (strstr (desc, "broker"));
  g_assert_null (strstr (desc, "user"));

  /* renditions=1: the description of before, source straight to encoder */
  g_clear_pointer (&sel, pcr_selection_free);
  g_clear_pointer (&desc, g_free);
  g_clear_pointer (&expected, g_free);
  config->renditions = 1;
  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  g_assert_null (sel->low_desc);
  assert_contains (sel->low_reason, "renditions=1");
  desc = pcr_build_pipeline (config, sel, &error);
  g_assert_no_error (error);
  expected = g_strdup_printf ("%s ! %s ! mqttwebrtcsink name=sink",
      sel->source_desc, sel->encoder_desc);
  g_assert_cmpstr (desc, ==, expected);

  /* the one call picamrtc and picamrtc --check make: the same */
  g_clear_pointer (&sel, pcr_selection_free);
  g_clear_pointer (&desc, g_free);
  desc = pcr_select_pipeline (config, platform, &sel, &error);
  g_assert_no_error (error);
  g_assert_nonnull (sel);
  g_assert_cmpstr (desc, ==, expected);
  /* an own pipeline: no selection */
  g_clear_pointer (&sel, pcr_selection_free);
  g_clear_pointer (&desc, g_free);
  config->pipeline = g_strdup ("videotestsrc ! x264enc ! mqttwebrtcsink");
  desc = pcr_select_pipeline (config, platform, &sel, &error);
  g_assert_no_error (error);
  g_assert_null (sel);
  g_assert_cmpstr (desc, ==, config->pipeline);
  /* a failed choice leaves no selection behind */
  g_clear_pointer (&desc, g_free);
  g_clear_pointer (&config->pipeline, g_free);
  g_clear_pointer (&platform, pcr_platform_free);
  platform = pcr_platform_new ();
  desc = pcr_select_pipeline (config, platform, &sel, &error);
  g_assert_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_MISSING_ELEMENT);
  g_assert_null (desc);
  g_assert_null (sel);
}

static void
test_build_inline (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *desc = NULL;

  config->width = 640;
  config->height = 480;
  config->framerate = 15;
  config->bitrate = 500;
  config->pipeline = g_strdup ("videotestsrc ! video/x-raw,width=${WIDTH},"
      "height=${HEIGHT},framerate=${FRAMERATE}/1 ! x264enc bitrate=${BITRATE}"
      " key-int-max=${KEYINT} ! mqttwebrtcsink name=sink");
  desc = pcr_build_pipeline (config, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (desc, ==, "videotestsrc ! video/x-raw,width=640,"
      "height=480,framerate=15/1 ! x264enc bitrate=500 key-int-max=30 ! "
      "mqttwebrtcsink name=sink");
}

/* --latency-stamp: latencystamp right after the source caps (and after a
 * clock overlay: the stamp must be the last thing drawn), before the
 * encoder, whatever the source and encoder. */
static void
test_build_latency_stamp (void)
{
  static const struct
  {
    const gchar *source;
    gboolean libcamera;
    const gchar *encoder;
  } cases[] = {
    {"test", FALSE, "x264enc"},
    {"libcamera", TRUE, "v4l2h264enc"},
    {"v4l2:/dev/video4", FALSE, "openh264enc"},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (PcrConfig) config = pcr_config_new ();
    g_autoptr (PcrPlatform) platform = platform_with ("libcamerasrc",
        "v4l2src", "clockoverlay", cases[i].encoder, NULL);
    g_autoptr (PcrSelection) sel = NULL;
    g_autoptr (GError) error = NULL;
    g_autofree gchar *plain = NULL;
    g_autofree gchar *desc = NULL;
    g_autofree gchar *expected = NULL;

    platform->libcamera_camera = cases[i].libcamera;
    g_free (config->source);
    config->source = g_strdup (cases[i].source);
    sel = pcr_select (config, platform, &error);
    g_assert_no_error (error);

    /* off by default: no stamp */
    plain = pcr_build_pipeline (config, sel, &error);
    g_assert_no_error (error);
    g_assert_null (strstr (plain, "latencystamp"));

    /* two renditions: once, before the tee, so both carry it */
    config->latency_stamp = TRUE;
    desc = pcr_build_pipeline (config, sel, &error);
    g_assert_no_error (error);
    expected = g_strdup_printf ("%s ! latencystamp ! tee name=t ! ",
        sel->source_desc);
    g_assert_true (g_str_has_prefix (desc, expected));
    g_assert_null (strstr (desc + strlen (expected), "latencystamp"));
    g_test_message ("%s", desc);

    g_clear_pointer (&sel, pcr_selection_free);
    g_clear_pointer (&desc, g_free);
    g_clear_pointer (&expected, g_free);
    config->renditions = 1;
    sel = pcr_select (config, platform, &error);
    g_assert_no_error (error);
    desc = pcr_build_pipeline (config, sel, &error);
    g_assert_no_error (error);
    expected = g_strdup_printf ("%s ! latencystamp ! %s ! mqttwebrtcsink "
        "name=sink", sel->source_desc, sel->encoder_desc);
    g_assert_cmpstr (desc, ==, expected);
  }
}

/* ${LATENCY_STAMP} in a --pipeline: "latencystamp !" or nothing. With the
 * stamp on, a description with no place for it fails rather than measure
 * nothing; one that names latencystamp itself is taken as it is. */
static void
test_build_latency_stamp_placeholder (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *off = NULL;
  g_autofree gchar *on = NULL;
  g_autofree gchar *own = NULL;
  g_autofree gchar *unknown = NULL;

  config->pipeline = g_strdup ("videotestsrc ! video/x-raw,width=${WIDTH} "
      "! ${LATENCY_STAMP} x264enc ! mqttwebrtcsink name=sink");
  off = pcr_build_pipeline (config, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (off, ==, "videotestsrc ! video/x-raw,width=1280 !  "
      "x264enc ! mqttwebrtcsink name=sink");

  config->latency_stamp = TRUE;
  on = pcr_build_pipeline (config, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (on, ==, "videotestsrc ! video/x-raw,width=1280 ! "
      "latencystamp ! x264enc ! mqttwebrtcsink name=sink");

  g_free (config->pipeline);
  config->pipeline = g_strdup ("videotestsrc ! x264enc ! mqttwebrtcsink");
  g_assert_null (pcr_build_pipeline (config, NULL, &error));
  g_assert_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID);
  g_assert_true (g_str_has_prefix (error->message, "pipeline"));
  assert_contains (error->message, "${LATENCY_STAMP}");
  g_clear_error (&error);

  g_free (config->pipeline);
  config->pipeline = g_strdup ("videotestsrc ! latencystamp block-size=32 "
      "! x264enc ! mqttwebrtcsink");
  own = pcr_build_pipeline (config, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (own, ==, config->pipeline);

  /* the list of known placeholders names it */
  unknown = pcr_pipeline_expand (config, "${STAMP}", &error);
  g_assert_null (unknown);
  g_assert_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID);
  assert_contains (error->message, "${LATENCY_STAMP}");
}

static void
test_build_errors (void)
{
  const gchar *bad[] = {
    "videotestsrc ! x264enc ! fakesink",        /* no mqttwebrtcsink */
    "videotestsrc width=${WIDTH ! mqttwebrtcsink",      /* unterminated */
    "videotestsrc ! x264enc bitrate=${SPEED} ! mqttwebrtcsink",
    "/nonexistent/dir/cam.pipeline",
    "   ",
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (PcrConfig) config = pcr_config_new ();
    g_autoptr (GError) error = NULL;
    g_autofree gchar *desc = NULL;

    config->pipeline = g_strdup (bad[i]);
    desc = pcr_build_pipeline (config, NULL, &error);
    g_assert_null (desc);
    g_assert_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID);
    g_test_message ("%s -> %s", bad[i], error->message);
    g_assert_true (g_str_has_prefix (error->message, "pipeline"));
  }
}

static void
test_build_file (TmpDir * t, gconstpointer data)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *desc = NULL;
  g_autofree gchar *path = write_file (t, "cam.pipeline",
      "# For a test board.\n"
      "#   It has ${NOTHING} to substitute in comments.\n"
      "videotestsrc is-live=true !\n"
      "  video/x-raw,width=${WIDTH},height=${HEIGHT},"
      "framerate=${FRAMERATE}/1 \\\n"
      "  ! x264enc bitrate=${BITRATE} key-int-max=${KEYINT}\n"
      "\n" "  # an indented comment\n" "  ! mqttwebrtcsink name=sink\n");

  config->width = 320;
  config->height = 240;
  config->framerate = 10;
  config->pipeline = g_strdup (path);
  desc = pcr_build_pipeline (config, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (desc, ==, "videotestsrc is-live=true ! "
      "video/x-raw,width=320,height=240,framerate=10/1 ! x264enc "
      "bitrate=2000 key-int-max=20 ! mqttwebrtcsink name=sink");
}

static void
test_build_file_bad (TmpDir * t, gconstpointer data)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *big = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *desc = NULL;
  GString *s = g_string_new ("videotestsrc ! ");

  /* over 64 KiB: refused, not read whole */
  while (s->len <= PCR_PIPELINE_FILE_MAX)
    g_string_append (s, "identity ! ");
  g_string_append (s, "mqttwebrtcsink");
  big = g_string_free (s, FALSE);
  path = write_file (t, "big.pipeline", big);
  config->pipeline = g_strdup (path);
  desc = pcr_build_pipeline (config, NULL, &error);
  g_assert_null (desc);
  g_assert_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, path));
  g_clear_error (&error);
  g_clear_pointer (&path, g_free);

  /* only comments */
  path = write_file (t, "empty.pipeline", "# nothing here\n#\n");
  g_free (config->pipeline);
  config->pipeline = g_strdup (path);
  g_assert_null (pcr_build_pipeline (config, NULL, &error));
  g_assert_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID);
  g_clear_error (&error);
  g_clear_pointer (&path, g_free);

  /* not text */
  path = g_build_filename (t->dir, "binary.pipeline", NULL);
  g_assert_true (g_file_set_contents (path, "mqttwebrtcsink\0\xff\xfe", 17,
          NULL));
  g_free (config->pipeline);
  config->pipeline = g_strdup (path);
  g_assert_null (pcr_build_pipeline (config, NULL, &error));
  g_assert_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID);
}

/* ---- renditions -------------------------------------------------------- */

/* The low rendition on each kind of machine: the same encoder kind as the
 * main one, at its own size and bitrate, behind a closed valve. */
static void
test_select_renditions (void)
{
  static const struct
  {
    const gchar *encoder;
    gboolean libcamera;
    gint width, height, bitrate;        /* of the main rendition */
    const gchar *low[4];                /* in sel->low_desc */
  } cases[] = {
    /* a Pi 4: a second hardware encoder instance, its own level */
    {"v4l2h264enc", TRUE, 1280, 720, 2000,
        {"video/x-raw,width=640,height=360 ! v4l2h264enc ",
          "video_bitrate=400000,h264_i_frame_period=60",
        "level=(string)3.1", NULL}},
    /* a Pi 5: x264enc twice */
    {"x264enc", TRUE, 1920, 1080, 4000,
        {"video/x-raw,width=640,height=360 ! x264enc ", "bitrate=400 ",
        "key-int-max=60", NULL}},
    /* NV12 from libcamera: openh264enc's videoconvert after the scaler */
    {"openh264enc", TRUE, 1280, 720, 2000,
        {"videoscale ! video/x-raw,width=640,height=360 ! videoconvert ! "
              "openh264enc ", "bitrate=400000", NULL}},
    /* a 4:3 webcam at a low bitrate: half the size, half the bitrate */
    {"x264enc", FALSE, 640, 480, 300,
        {"video/x-raw,width=320,height=240 ! x264enc ", "bitrate=150 ",
        NULL}},
  };
  guint i, j;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (PcrConfig) config = pcr_config_new ();
    g_autoptr (PcrPlatform) platform = platform_with ("libcamerasrc",
        "v4l2src", cases[i].encoder, NULL);
    g_autoptr (PcrSelection) sel = NULL;
    g_autoptr (GError) error = NULL;

    platform->libcamera_camera = cases[i].libcamera;
    platform->v4l2_capture_device = g_strdup ("/dev/video0");
    config->width = cases[i].width;
    config->height = cases[i].height;
    config->bitrate = cases[i].bitrate;
    g_assert_true (pcr_config_validate (config, &error));
    sel = pcr_select (config, platform, &error);
    g_assert_no_error (error);
    g_test_message ("%s", sel->low_desc);
    g_assert_true (g_str_has_prefix (sel->low_desc, "queue "));
    assert_contains (sel->low_desc, "leaky=downstream ! valve drop=true ! "
        "videoscale ! ");
    for (j = 0; cases[i].low[j] != NULL; j++)
      assert_contains (sel->low_desc, cases[i].low[j]);
    g_assert_true (g_str_has_suffix (sel->low_desc,
            "video/x-h264,profile=(string)constrained-baseline") ||
        strstr (sel->low_desc, "level=(string)") != NULL);
    /* the main rendition is as it was */
    g_assert_null (strstr (sel->encoder_desc, "valve"));
    assert_contains (sel->low_reason, "kbit/s");
  }
}

/* Half the main size is made by halfscale where the plugin is there (a 2x2
 * average, much cheaper than videoscale), any other size by videoscale. */
static void
test_select_half_scaler (void)
{
  static const struct
  {
    gint width, height, low_width, low_height;
    const gchar *scaler;
  } cases[] = {
    {1280, 720, 0, 0, "halfscale ! video/x-raw,width=640,height=360 ! "},
    {1280, 720, 640, 360, "halfscale ! video/x-raw,width=640,height=360 ! "},
    {640, 480, 0, 0, "halfscale ! video/x-raw,width=320,height=240 ! "},
    {1920, 1080, 0, 0, "videoscale ! video/x-raw,width=640,height=360 ! "},
    {1280, 720, 320, 180, "videoscale ! video/x-raw,width=320,height=180 ! "},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (PcrConfig) config = pcr_config_new ();
    g_autoptr (PcrPlatform) platform = platform_with ("x264enc",
        "halfscale", NULL);
    g_autoptr (PcrSelection) sel = NULL;
    g_autoptr (GError) error = NULL;

    config->width = cases[i].width;
    config->height = cases[i].height;
    config->low_width = cases[i].low_width;
    config->low_height = cases[i].low_height;
    g_assert_true (pcr_config_validate (config, &error));
    sel = pcr_select (config, platform, &error);
    g_assert_no_error (error);
    g_test_message ("%s", sel->low_desc);
    assert_contains (sel->low_desc, cases[i].scaler);
    assert_contains (sel->low_reason, strstr (cases[i].scaler, "half") ?
        "(halfscale)" : "(videoscale)");
  }
}

/* The low size from the main one when not given, keeping the aspect. */
static void
test_settings_low_size (void)
{
  static const struct
  {
    gint width, height, low_width, low_height;  /* set */
    gint want_width, want_height;
  } cases[] = {
    {1280, 720, 0, 0, 640, 360},
    {1920, 1080, 0, 0, 640, 360},
    {640, 480, 0, 0, 320, 240},
    {1280, 1024, 0, 0, 450, 360},
    {320, 240, 0, 0, 160, 120},
    {16, 16, 0, 0, 16, 16},     /* never below 16 nor above the main */
    {1280, 720, 480, 0, 480, 270},
    {1280, 720, 0, 180, 320, 180},
    {1280, 720, 800, 200, 800, 200},    /* both given: as given */
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (PcrConfig) config = pcr_config_new ();
    g_autoptr (GError) error = NULL;
    gint w, h;

    config->width = cases[i].width;
    config->height = cases[i].height;
    config->low_width = cases[i].low_width;
    config->low_height = cases[i].low_height;
    g_assert_true (pcr_config_validate (config, &error));
    g_assert_no_error (error);
    pcr_config_low_size (config, &w, &h);
    g_test_message ("%dx%d, low %dx%d -> %dx%d", cases[i].width,
        cases[i].height, cases[i].low_width, cases[i].low_height, w, h);
    g_assert_cmpint (w, ==, cases[i].want_width);
    g_assert_cmpint (h, ==, cases[i].want_height);
  }
}

static void
test_settings_low_bitrate (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();

  g_assert_cmpint (config->renditions, ==, 2);
  g_assert_cmpint (pcr_config_low_bitrate (config), ==, 400);
  config->bitrate = 500;
  g_assert_cmpint (pcr_config_low_bitrate (config), ==, 250);
  config->bitrate = 100;
  g_assert_cmpint (pcr_config_low_bitrate (config), ==, 50);
  config->low_bitrate = 80;
  g_assert_cmpint (pcr_config_low_bitrate (config), ==, 80);
}

/* Bad low rendition values: refused, the message names the key and the
 * rule. */
static void
test_settings_low_errors (void)
{
  static const struct
  {
    gint renditions, low_width, low_height, low_bitrate, bitrate;
    const gchar *message;
  } cases[] = {
    {2, 8, 0, 0, 2000, "low-width: 8 is out of range 0 or 16..4096"},
    {2, 641, 0, 0, 2000, "low-width: 641 must be even"},
    {2, 1282, 0, 0, 2000, "low-width: 1282 is larger than width (1280)"},
    {2, 0, 361, 0, 2000, "low-height: 361 must be even"},
    {2, 0, 722, 0, 2000, "low-height: 722 is larger than height (720)"},
    {2, 0, 0, 20, 2000, "low-bitrate: 20 is out of range 0 or 50..50000"},
    {2, 0, 0, 2000, 2000, "low-bitrate: 2000 is not below bitrate (2000)"},
    {2, 0, 0, 50001, 2000, "low-bitrate: 50001 is out of range"},
    {3, 0, 0, 0, 2000, "renditions: 3 is out of range"},
    {0, 0, 0, 0, 2000, "renditions: 0 is out of range"},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (PcrConfig) config = pcr_config_new ();
    g_autoptr (GError) error = NULL;

    config->renditions = cases[i].renditions;
    config->low_width = cases[i].low_width;
    config->low_height = cases[i].low_height;
    config->low_bitrate = cases[i].low_bitrate;
    config->bitrate = cases[i].bitrate;
    g_assert_false (pcr_config_validate (config, &error));
    g_assert_nonnull (error);
    g_test_message ("%s", error->message);
    g_assert_true (g_str_has_prefix (error->message, cases[i].message));
  }

  /* one rendition: a low bitrate above the main one does not matter */
  {
    g_autoptr (PcrConfig) config = pcr_config_new ();
    g_autoptr (GError) error = NULL;

    config->renditions = 1;
    config->low_bitrate = 3000;
    g_assert_true (pcr_config_validate (config, &error));
    g_assert_no_error (error);
  }
}

/* ${LOW_WIDTH} ${LOW_HEIGHT} ${LOW_BITRATE} follow the settings. */
static void
test_build_low_placeholders (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *auto_desc = NULL;
  g_autofree gchar *set_desc = NULL;
  const gchar *text = "${LOW_WIDTH}x${LOW_HEIGHT}@${LOW_BITRATE}";

  auto_desc = pcr_pipeline_expand (config, text, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (auto_desc, ==, "640x360@400");

  config->low_width = 426;
  config->low_height = 240;
  config->low_bitrate = 250;
  set_desc = pcr_pipeline_expand (config, text, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (set_desc, ==, "426x240@250");

  /* the unknown placeholder message lists them */
  g_assert_null (pcr_pipeline_expand (config, "${LOW_FRAMERATE}", &error));
  g_assert_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID);
  assert_contains (error->message, "${LOW_BITRATE}");
}

/* ---- audio ------------------------------------------------------------- */

#define AUDIO_ENCODE "audioconvert ! audioresample ! " \
  "audio/x-raw,rate=48000,channels=1 ! opusenc frame-size=10 " \
  "bitrate=32000 audio-type=restricted-lowdelay"

static void
test_audio_check (void)
{
  const gchar *good_audio[] = { "auto", "none", "test", "alsa", "alsa:hw:1",
    "alsa:hw:1,0", "alsa:plughw:CARD=C920,DEV=0", "alsa:default", NULL
  };
  const gchar *good_talkback[] = { "none", "alsa", "alsa:hw:2,0",
    "file:/tmp/talkback.raw", "file:out/tb-1+2.pcm", NULL
  };
  const struct
  {
    gboolean talkback;
    const gchar *value;
    const gchar *message;
  } bad[] = {
    {FALSE, "pulse", "\"pulse\" is not one of auto, none, test, alsa"},
    {FALSE, "alsa:", "alsa: needs an ALSA device name"},
    {FALSE, "alsa:hw:1 ! fakesink", "alsa: needs an ALSA device name"},
    {FALSE, "alsa:hw:1\" location=x", "alsa: needs an ALSA device name"},
    {FALSE, "alsahw", "alsa: needs an ALSA device name"},
    {TRUE, "speaker", "is not one of none, alsa, alsa:DEVICE, file:PATH"},
    {TRUE, "test", "is not one of none, alsa, alsa:DEVICE, file:PATH"},
    {TRUE, "file:", "file: needs a path of A-Z a-z 0-9 / . _ - + only"},
    {TRUE, "file:/tmp/a b", "file: needs a path"},
    {TRUE, "file:/tmp/x\" ! fakesink", "file: needs a path"},
    {TRUE, "file:/tmp/x;rm", "file: needs a path"},
    {TRUE, "file:/tmp/$HOME", "file: needs a path"},
    {TRUE, "alsa:hw:0 sync=true", "alsa: needs an ALSA device name"},
  };
  guint i;

  for (i = 0; good_audio[i] != NULL; i++) {
    g_autoptr (GError) error = NULL;

    g_assert_true (pcr_check_audio (good_audio[i], &error));
    g_assert_no_error (error);
  }
  for (i = 0; good_talkback[i] != NULL; i++) {
    g_autoptr (GError) error = NULL;

    g_assert_true (pcr_check_talkback (good_talkback[i], &error));
    g_assert_no_error (error);
  }
  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GError) error = NULL;
    gboolean ok = bad[i].talkback ? pcr_check_talkback (bad[i].value,
        &error) : pcr_check_audio (bad[i].value, &error);

    g_test_message ("%s -> %s", bad[i].value, error ? error->message : "ok");
    g_assert_false (ok);
    g_assert_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID);
    assert_contains (error->message, bad[i].message);
  }
}

static void
test_audio_talkback_description (void)
{
  g_autofree gchar *alsa = pcr_talkback_description ("alsa");
  g_autofree gchar *hw = pcr_talkback_description ("alsa:hw:1,0");
  g_autofree gchar *file = pcr_talkback_description ("file:/tmp/tb.raw");

  g_assert_null (pcr_talkback_description ("none"));
  g_assert_cmpstr (alsa, ==, "alsasink device=default sync=false "
      "buffer-time=60000 latency-time=10000");
  g_assert_cmpstr (hw, ==, "alsasink device=hw:1,0 sync=false "
      "buffer-time=60000 latency-time=10000");
  g_assert_cmpstr (file, ==, "audioconvert ! audioresample ! "
      "audio/x-raw,format=S16LE,rate=48000,channels=1 ! "
      "filesink location=/tmp/tb.raw");
}

/* A UVC camera and its microphone: two interfaces of one USB device. */
#define USB_DEV "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1"
#define HUB_DEV "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.4"

static GstStructure *
fake_camera (const gchar * sysfs, const gchar * bus_info)
{
  GstStructure *s = gst_structure_new ("v4l2deviceprovider",
      "device.path", G_TYPE_STRING, "/dev/video0", NULL);

  if (sysfs != NULL)
    gst_structure_set (s, "sysfs.path", G_TYPE_STRING, sysfs, NULL);
  if (bus_info != NULL)
    gst_structure_set (s, "v4l2.device.bus_info", G_TYPE_STRING, bus_info,
        NULL);
  return s;
}

static GstStructure *
fake_microphone (const gchar * device, const gchar * sysfs,
    const gchar * longname)
{
  GstStructure *s = gst_structure_new ("alsa-proplist",
      "device.api", G_TYPE_STRING, "alsa",
      "alsa.card", G_TYPE_INT, 1,
      "alsa.card_name", G_TYPE_STRING, "HD Pro Webcam C920",
      "alsa.device", G_TYPE_STRING, device, NULL);

  if (sysfs != NULL)
    gst_structure_set (s, "sysfs.path", G_TYPE_STRING, sysfs, NULL);
  if (longname != NULL)
    gst_structure_set (s, "alsa.longname", G_TYPE_STRING, longname, NULL);
  return s;
}

static void
test_audio_usb_match (void)
{
  g_autoptr (GstStructure) camera = fake_camera (USB_DEV
      "/1-1:1.0/video4linux/video0", "usb-0000:00:14.0-1");
  g_autoptr (GstStructure) hub_camera = fake_camera (HUB_DEV
      "/1-1.4:1.0/video4linux/video2", "usb-0000:00:14.0-1.4");
  g_autoptr (GstStructure) bus_only = fake_camera (NULL,
      "usb-0000:00:14.0-1");
  g_autoptr (GstStructure) pci_camera = fake_camera
      ("/sys/devices/pci0000:00/0000:00:1f.0/video4linux/video0",
      "PCI:0000:00:1f.0");
  g_autoptr (GstStructure) same = fake_microphone ("hw:1,0", USB_DEV
      "/1-1:1.2/sound/card1", NULL);
  g_autoptr (GstStructure) other_port = fake_microphone ("hw:2,0",
      "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-10/1-10:1.1/sound/card2",
      NULL);
  g_autoptr (GstStructure) behind_hub = fake_microphone ("hw:3,0", HUB_DEV
      "/1-1.4:1.3/sound/card3", NULL);
  g_autoptr (GstStructure) onboard = fake_microphone ("hw:0,0",
      "/sys/devices/pci0000:00/0000:00:1f.3/sound/card0", NULL);
  g_autoptr (GstStructure) named = fake_microphone ("hw:1,0", NULL,
      "HD Pro Webcam C920 at usb-0000:00:14.0-1, high speed");
  g_autoptr (GstStructure) named_other = fake_microphone ("hw:2,0", NULL,
      "USB Audio at usb-0000:00:14.0-10, full speed");
  g_autoptr (GstStructure) bare = fake_microphone ("hw:4,0", NULL, NULL);

  /* sysfs: the same USB device, another interface */
  g_assert_true (pcr_microphone_of_camera (camera, same));
  /* 1-10 is not 1-1, the hub's 1-1 not its port 1-1.4 */
  g_assert_false (pcr_microphone_of_camera (camera, other_port));
  g_assert_false (pcr_microphone_of_camera (camera, behind_hub));
  g_assert_true (pcr_microphone_of_camera (hub_camera, behind_hub));
  g_assert_false (pcr_microphone_of_camera (hub_camera, same));
  /* a card on PCI (the board's own sound) is no camera's */
  g_assert_false (pcr_microphone_of_camera (camera, onboard));
  g_assert_false (pcr_microphone_of_camera (pci_camera, onboard));
  /* without sysfs: the USB path both drivers name */
  g_assert_true (pcr_microphone_of_camera (bus_only, named));
  g_assert_true (pcr_microphone_of_camera (camera, named));
  g_assert_false (pcr_microphone_of_camera (bus_only, named_other));
  g_assert_false (pcr_microphone_of_camera (hub_camera, named));
  g_assert_false (pcr_microphone_of_camera (pci_camera, named));
  /* nothing to go by: no */
  g_assert_false (pcr_microphone_of_camera (camera, bare));
  g_assert_false (pcr_microphone_of_camera (bus_only, same));
}

static void assert_packages_known (const gchar * description);

static PcrPlatform *
audio_platform (void)
{
  PcrPlatform *platform = platform_with ("x264enc", "v4l2src", "jpegdec",
      "libcamerasrc", "audiotestsrc", "alsasrc", "audioconvert",
      "audioresample", "opusenc", NULL);

  /* a UVC camera with a microphone, the board's sound card and a second
   * USB microphone */
  g_ptr_array_add (platform->v4l2_cameras, fake_camera (USB_DEV
          "/1-1:1.0/video4linux/video0", "usb-0000:00:14.0-1"));
  g_ptr_array_add (platform->microphones, fake_microphone ("hw:0,0",
          "/sys/devices/pci0000:00/0000:00:1f.3/sound/card0", NULL));
  g_ptr_array_add (platform->microphones, fake_microphone ("hw:2,0",
          "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/sound/card2",
          NULL));
  g_ptr_array_add (platform->microphones, fake_microphone ("hw:1,0", USB_DEV
          "/1-1:1.2/sound/card1", NULL));
  return platform;
}

static PcrSelection *
select_audio_with (PcrConfig * config, const PcrPlatform * platform,
    const gchar * source, const gchar * audio)
{
  g_autoptr (GError) error = NULL;
  PcrSelection *sel;

  g_free (config->source);
  config->source = g_strdup (source);
  g_free (config->audio);
  config->audio = g_strdup (audio);
  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  g_test_message ("%s, audio %s: %s", source, audio, sel->audio_reason);
  return sel;
}

static void
test_audio_select (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrPlatform) platform = audio_platform ();
  g_autoptr (PcrPlatform) no_alsa = platform_with ("x264enc",
      "audiotestsrc", "audioconvert", "audioresample", "opusenc", NULL);
  g_autoptr (PcrSelection) sel = NULL;
  g_autoptr (GError) error = NULL;

  /* auto on the UVC camera: its own microphone, not the others */
  sel = select_audio_with (config, platform, "v4l2:/dev/video0", "auto");
  g_assert_cmpstr (sel->audio_desc, ==, "alsasrc device=hw:1,0 ! "
      AUDIO_ENCODE);
  assert_contains (sel->audio_reason, "alsa hw:1,0 (the microphone of the "
      "USB camera /dev/video0");
  g_clear_pointer (&sel, pcr_selection_free);
  platform->v4l2_capture_device = g_strdup ("/dev/video0");
  sel = select_audio_with (config, platform, "auto", "auto");
  g_assert_cmpstr (sel->audio_desc, ==, "alsasrc device=hw:1,0 ! "
      AUDIO_ENCODE);

  /* a camera without one, a Pi camera, the test pattern: none */
  g_clear_pointer (&sel, pcr_selection_free);
  sel = select_audio_with (config, platform, "v4l2:/dev/video4", "auto");
  g_assert_null (sel->audio_desc);
  assert_contains (sel->audio_reason, "none (no microphone on the USB "
      "device of /dev/video4)");
  g_clear_pointer (&sel, pcr_selection_free);
  sel = select_audio_with (config, platform, "libcamera", "auto");
  g_assert_null (sel->audio_desc);
  g_assert_cmpstr (sel->audio_reason, ==,
      "none (libcamera cameras have no microphone)");
  g_clear_pointer (&sel, pcr_selection_free);
  sel = select_audio_with (config, platform, "test", "auto");
  g_assert_null (sel->audio_desc);
  assert_contains (sel->audio_reason, "none (the test pattern");

  /* asked for */
  g_clear_pointer (&sel, pcr_selection_free);
  sel = select_audio_with (config, platform, "libcamera", "test");
  g_assert_cmpstr (sel->audio_desc, ==, "audiotestsrc is-live=true "
      "wave=ticks tick-interval=1000000000 volume=0.5 ! " AUDIO_ENCODE);
  assert_contains (sel->audio_reason, "test tone");
  g_clear_pointer (&sel, pcr_selection_free);
  sel = select_audio_with (config, platform, "test", "alsa");
  g_assert_cmpstr (sel->audio_desc, ==, "alsasrc device=default ! "
      AUDIO_ENCODE);
  g_clear_pointer (&sel, pcr_selection_free);
  sel = select_audio_with (config, platform, "v4l2:/dev/video0",
      "alsa:plughw:CARD=C920,DEV=0");
  g_assert_cmpstr (sel->audio_desc, ==,
      "alsasrc device=plughw:CARD=C920,DEV=0 ! " AUDIO_ENCODE);
  g_clear_pointer (&sel, pcr_selection_free);
  sel = select_audio_with (config, platform, "v4l2:/dev/video0", "none");
  g_assert_null (sel->audio_desc);
  g_assert_cmpstr (sel->audio_reason, ==, "none (audio=none)");

  /* alsa without gstreamer1.0-alsa: said so */
  g_clear_pointer (&sel, pcr_selection_free);
  g_free (config->audio);
  config->audio = g_strdup ("alsa:hw:1");
  g_free (config->source);
  config->source = g_strdup ("test");
  sel = pcr_select (config, no_alsa, &error);
  g_assert_null (sel);
  g_assert_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_MISSING_ELEMENT);
  assert_contains (error->message, "alsasrc (gstreamer1.0-alsa)");
  g_clear_error (&error);
  /* an unchecked bad value still cannot reach the description */
  g_free (config->audio);
  config->audio = g_strdup ("alsa:hw:1 ! fakesink");
  sel = pcr_select (config, platform, &error);
  g_assert_null (sel);
  g_assert_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID);
}

/* The audio branch after the sink, control and talkback on it. */
static void
test_build_audio (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrPlatform) platform = audio_platform ();
  g_autoptr (PcrSelection) sel = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *desc = NULL;
  g_autofree gchar *expected = NULL;

  config->renditions = 1;
  sel = select_audio_with (config, platform, "test", "test");
  desc = pcr_build_pipeline (config, sel, &error);
  g_assert_no_error (error);
  /* the tone's flash in the picture, for a lip-sync check */
  expected = g_strdup_printf ("%s ! latencystamp enabled=false flash=true ! "
      "%s ! mqttwebrtcsink name=sink audiotestsrc is-live=true wave=ticks "
      "tick-interval=1000000000 volume=0.5 ! " AUDIO_ENCODE
      " ! sink.sink_audio", sel->source_desc, sel->encoder_desc);
  g_assert_cmpstr (desc, ==, expected);
  /* with the latency stamp, one element does both */
  config->latency_stamp = TRUE;
  g_free (desc);
  desc = pcr_build_pipeline (config, sel, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (desc, "! latencystamp flash=true ! "));
  config->latency_stamp = FALSE;

  /* none: the video alone, as before */
  g_clear_pointer (&sel, pcr_selection_free);
  g_clear_pointer (&desc, g_free);
  g_clear_pointer (&expected, g_free);
  sel = select_audio_with (config, platform, "test", "none");
  desc = pcr_build_pipeline (config, sel, &error);
  g_assert_no_error (error);
  expected = g_strdup_printf ("%s ! %s ! mqttwebrtcsink name=sink",
      sel->source_desc, sel->encoder_desc);
  g_assert_cmpstr (desc, ==, expected);

  /* alsa with two renditions, control and talk-back */
  g_clear_pointer (&sel, pcr_selection_free);
  g_clear_pointer (&desc, g_free);
  g_clear_pointer (&expected, g_free);
  config->renditions = 2;
  config->control = TRUE;
  g_free (config->talkback);
  config->talkback = g_strdup ("alsa:hw:2,0");
  sel = select_audio_with (config, platform, "v4l2:/dev/video0",
      "alsa:hw:1,0");
  desc = pcr_build_pipeline (config, sel, &error);
  g_assert_no_error (error);
  assert_contains (desc, " ! mqttwebrtcsink name=sink control=true "
      "talkback=\"alsasink device=hw:2,0 sync=false buffer-time=60000 "
      "latency-time=10000\" alsasrc device=hw:1,0 "
      "! " AUDIO_ENCODE " ! sink.sink_audio");
  g_assert_true (g_str_has_suffix (desc, " ! sink.sink_audio"));
  assert_contains (desc, "sink.sink_low t. ! ");
  assert_packages_known (desc);

  /* the talk-back file */
  g_clear_pointer (&desc, g_free);
  g_free (config->talkback);
  config->talkback = g_strdup ("file:/tmp/tb.raw");
  config->control = FALSE;
  desc = pcr_build_pipeline (config, sel, &error);
  g_assert_no_error (error);
  assert_contains (desc, "mqttwebrtcsink name=sink talkback=\"audioconvert "
      "! audioresample ! audio/x-raw,format=S16LE,rate=48000,channels=1 ! "
      "filesink location=/tmp/tb.raw\" alsasrc");
  g_assert_null (strstr (desc, "control"));

  /* an own pipeline keeps its text: the service sets both on the sink */
  g_clear_pointer (&desc, g_free);
  config->control = TRUE;
  config->pipeline = g_strdup ("videotestsrc ! x264enc ! mqttwebrtcsink");
  desc = pcr_build_pipeline (config, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (desc, ==, config->pipeline);
}

static void
test_audio_tick_phase (void)
{
  /* a tone that started 2.30 s into the pipeline ticks at x.30 s */
  g_assert_cmpuint (pcr_tick_phase (2302650701, GST_SECOND), ==, 302650701);
  g_assert_cmpuint (pcr_tick_phase (60 * GST_SECOND, GST_SECOND), ==, 0);
  g_assert_cmpuint (pcr_tick_phase (1, GST_SECOND), ==, 1);
  g_assert_cmpuint (pcr_tick_phase (0, GST_SECOND), ==, 0);
  g_assert_cmpuint (pcr_tick_phase (750 * GST_MSECOND, 500 * GST_MSECOND),
      ==, 250 * GST_MSECOND);
  g_assert_cmpuint (pcr_tick_phase (GST_CLOCK_TIME_NONE, GST_SECOND), ==, 0);
}

/* ---- packages ---------------------------------------------------------- */

/* Every element (caps left out) of @description is one whose Debian
 * package the service can name when it is missing. */
static void
assert_packages_known (const gchar * description)
{
  g_auto (GStrv) parts = g_strsplit (description, "!", -1);
  guint i;

  for (i = 0; parts[i] != NULL; i++) {
    const gchar *part = parts[i] + strspn (parts[i], " \t\n");
    g_autofree gchar *factory = g_strndup (part, strcspn (part, " \t\n"));

    if (*factory == '\0' || strpbrk (factory, "/=.(") != NULL)
      continue;
    if (pcr_debian_package_for_element (factory) == NULL) {
      g_test_message ("no package known for %s in \"%s\"", factory,
          description);
      g_test_fail ();
    }
  }
}

/* The machines of the selection tests above, cameras in place. */
static GPtrArray *
faked_machines (void)
{
  GPtrArray *machines = g_ptr_array_new_with_free_func ((GDestroyNotify)
      pcr_platform_free);
  guint i;

  g_ptr_array_add (machines, platform_with ("libcamerasrc", "v4l2src",
          "v4l2h264enc", "v4l2convert", "jpegenc", NULL));
  g_ptr_array_add (machines, platform_with ("libcamerasrc", "x264enc",
          NULL));
  g_ptr_array_add (machines, platform_with ("v4l2src", "jpegdec", "x264enc",
          "jpegenc", NULL));
  g_ptr_array_add (machines, platform_with ("x264enc", "clockoverlay",
          NULL));
  g_ptr_array_add (machines, platform_with ("openh264enc", "libcamerasrc",
          NULL));
  for (i = 0; i < machines->len; i++) {
    PcrPlatform *platform = g_ptr_array_index (machines, i);

    platform->libcamera_camera = TRUE;
    platform->v4l2_capture_device = g_strdup ("/dev/video0");
  }
  return machines;
}

/* The description the service builds on @platform. */
static gchar *
service_description (PcrConfig * config, const PcrPlatform * platform)
{
  g_autoptr (PcrSelection) sel = NULL;
  g_autoptr (GError) error = NULL;
  gchar *desc;

  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  desc = pcr_build_pipeline (config, sel, &error);
  g_assert_no_error (error);
  g_test_message ("%s: %s", sel->encoder_reason, desc);
  return desc;
}

/* The files in pipelines/, name -> description with the defaults filled
 * in; NULL (the test skipped) without PICAMRTC_SOURCE_ROOT. */
static GHashTable *
shipped_pipelines (void)
{
  const gchar *root = g_getenv ("PICAMRTC_SOURCE_ROOT");
  g_autofree gchar *dir_path = NULL;
  g_autoptr (GDir) dir = NULL;
  GHashTable *pipelines;
  const gchar *name;

  if (root == NULL) {
    g_test_skip ("PICAMRTC_SOURCE_ROOT not set");
    return NULL;
  }
  pipelines = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      g_free);
  dir_path = g_build_filename (root, "pipelines", NULL);
  dir = g_dir_open (dir_path, 0, NULL);
  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL) {
    g_autoptr (PcrConfig) config = pcr_config_new ();
    g_autoptr (GError) error = NULL;
    gchar *desc;

    if (!g_str_has_suffix (name, ".pipeline"))
      continue;
    config->pipeline = g_build_filename (dir_path, name, NULL);
    desc = pcr_build_pipeline (config, NULL, &error);
    g_assert_no_error (error);
    g_hash_table_insert (pipelines, g_strdup (name), desc);
  }
  g_assert_cmpuint (g_hash_table_size (pipelines), >, 0);
  return pipelines;
}

static void
test_packages_of_selections (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (GPtrArray) machines = faked_machines ();
  guint i;

  config->latency_stamp = TRUE;
  for (i = 0; i < machines->len; i++) {
    g_autofree gchar *desc = service_description (config,
        g_ptr_array_index (machines, i));

    assert_packages_known (desc);
  }
}

/* ...and of the pipelines shipped in pipelines/ */
static void
test_packages_of_pipeline_files (void)
{
  g_autoptr (GHashTable) pipelines = shipped_pipelines ();
  GHashTableIter iter;
  gpointer desc;

  if (pipelines == NULL)
    return;
  g_hash_table_iter_init (&iter, pipelines);
  while (g_hash_table_iter_next (&iter, NULL, &desc))
    assert_packages_known (desc);
}

static void
test_packages_named (void)
{
  const gchar *missing[] = { "x264enc", "frobsrc", NULL };
  g_autofree gchar *text = NULL;

  /* the ones whose package is not the obvious one */
  g_assert_cmpstr (pcr_debian_package_for_element ("clockoverlay"), ==,
      "gstreamer1.0-x");
  g_assert_cmpstr (pcr_debian_package_for_element ("libcamerasrc"), ==,
      "gstreamer1.0-libcamera");
  g_assert_cmpstr (pcr_debian_package_for_element ("mqttwebrtcsink"), ==,
      "picamrtc");
  g_assert_null (pcr_debian_package_for_element ("frobsrc"));

  text = pcr_describe_missing_elements (missing);
  g_assert_cmpstr (text, ==,
      "x264enc (gstreamer1.0-plugins-ugly), frobsrc (package unknown)");
}

/* ---- parsing ----------------------------------------------------------- */

/* Makes @desc parse on this machine: hardware-only elements become their
 * software stand-ins (their caps and links stay as they are). */
static gchar *
substitute_hardware (const gchar * desc)
{
  g_autoptr (GRegex) v4l2enc = g_regex_new ("v4l2h264enc extra-controls="
      "\"[^\"]*\"", 0, 0, NULL);
  g_autofree gchar *out = NULL;
  g_autoptr (GstElementFactory) libcamera =
      gst_element_factory_find ("libcamerasrc");

  out = g_regex_replace_literal (v4l2enc, desc, -1, 0, "x264enc", 0, NULL);
  if (libcamera == NULL) {
    g_autoptr (GRegex) src = g_regex_new ("^libcamerasrc", 0, 0, NULL);
    gchar *tmp = g_regex_replace_literal (src, out, -1, 0,
        "videotestsrc is-live=true", 0, NULL);

    g_free (out);
    out = tmp;
  }
  return g_steal_pointer (&out);
}

/* The element upstream of @pad's peer, through elements with one sink pad,
 * that is made by @factory; NULL when there is none before the tee. */
static GstElement *
find_upstream (GstPad * pad, const gchar * factory)
{
  g_autoptr (GstPad) peer = gst_pad_get_peer (pad);

  while (peer != NULL) {
    g_autoptr (GstElement) element = gst_pad_get_parent_element (peer);
    GstElementFactory *f = gst_element_get_factory (element);
    g_autoptr (GstPad) sink = NULL;

    if (f != NULL && g_str_equal (GST_OBJECT_NAME (f), factory))
      return g_steal_pointer (&element);
    if (element->numsinkpads != 1)
      return NULL;
    sink = gst_element_get_static_pad (element, "sink");
    g_clear_object (&peer);
    if (sink != NULL)
      peer = gst_pad_get_peer (sink);
  }
  return NULL;
}

/* @desc parses with every link made; with @two its low rendition reaches
 * sink.sink_low through a closed valve and an encoder the sink can find. */
static void
assert_parses (const gchar * what, const gchar * desc, gboolean two)
{
  g_autofree gchar *local = substitute_hardware (desc);
  g_autoptr (GError) error = NULL;
  g_autoptr (GstElement) pipeline = NULL;
  g_autoptr (GstElement) sink = NULL;
  g_autoptr (GstPad) low = NULL;
  g_autoptr (GstPad) main_pad = NULL;

  g_test_message ("%s: %s", what, local);
  pipeline = gst_parse_launch_full (local, NULL, GST_PARSE_FLAG_FATAL_ERRORS,
      &error);
  g_assert_no_error (error);
  g_assert_nonnull (pipeline);
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  g_assert_nonnull (sink);
  main_pad = gst_element_get_static_pad (sink, "sink");
  g_assert_true (gst_pad_is_linked (main_pad));
  /* the raw frames reach the still images' pad */
  if (strstr (local, "sink.snapshot")) {
    g_autoptr (GstPad) snapshot = gst_element_get_static_pad (sink,
        "snapshot");

    g_assert_nonnull (snapshot);
    g_assert_true (gst_pad_is_linked (snapshot));
  }
  low = gst_element_get_static_pad (sink, "sink_low");
  if (!two) {
    g_assert_true (low == NULL || !gst_pad_is_linked (low));
    return;
  }
  g_assert_nonnull (low);
  g_assert_true (gst_pad_is_linked (low));
  {
    g_autoptr (GstElement) valve = find_upstream (low, "valve");
    g_autoptr (GstElement) encoder = find_upstream (low, "x264enc");
    g_autoptr (GstElement) openh264 = find_upstream (low, "openh264enc");
    g_autoptr (GstElement) main_valve = find_upstream (main_pad, "valve");
    gboolean drop = FALSE;

    g_assert_nonnull (valve);
    g_object_get (valve, "drop", &drop, NULL);
    g_assert_true (drop);
    g_assert_true (encoder != NULL || openh264 != NULL);
    /* the main rendition never stops */
    g_assert_null (main_valve);
  }
}

static gboolean
ensure_gst (void)
{
  g_autoptr (GstElementFactory) sink = NULL;

  gst_init (NULL, NULL);
  sink = gst_element_factory_find ("mqttwebrtcsink");
  if (sink == NULL) {
    g_test_skip ("mqttwebrtcsink is not in GST_PLUGIN_PATH");
    return FALSE;
  }
  return TRUE;
}

/* What the service builds on each faked machine parses here, hardware
 * elements stood in for. */
static void
test_parse_service (void)
{
  g_autoptr (GPtrArray) machines = faked_machines ();
  guint i, renditions;

  if (!ensure_gst ())
    return;
  for (i = 0; i < machines->len; i++) {
    for (renditions = 1; renditions <= 2; renditions++) {
      g_autoptr (PcrConfig) config = pcr_config_new ();
      g_autofree gchar *desc = NULL;

      config->renditions = renditions;
      desc = service_description (config, g_ptr_array_index (machines, i));
      assert_parses ("service", desc, renditions == 2);
    }
  }
}

/* The description with audio parses with the build tree's sink: the
 * audio reaches sink.sink_audio, control and talkback are set on it. */
static void
test_parse_audio (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrPlatform) platform = audio_platform ();
  g_autoptr (PcrSelection) sel = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GstElement) pipeline = NULL;
  g_autoptr (GstElement) sink = NULL;
  g_autoptr (GstPad) audio = NULL;
  g_autoptr (GstElement) opusenc = NULL;
  g_autofree gchar *desc = NULL;
  g_autofree gchar *talkback = NULL;
  gboolean control = FALSE;

  if (!ensure_gst ())
    return;
  config->control = TRUE;
  g_free (config->talkback);
  config->talkback = g_strdup ("file:/tmp/picamrtc-talkback.raw");
  sel = select_audio_with (config, platform, "test", "test");
  desc = pcr_build_pipeline (config, sel, &error);
  g_assert_no_error (error);
  assert_parses ("audio", desc, TRUE);

  pipeline = gst_parse_launch_full (desc, NULL, GST_PARSE_FLAG_FATAL_ERRORS,
      &error);
  g_assert_no_error (error);
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  audio = gst_element_get_static_pad (sink, "sink_audio");
  g_assert_nonnull (audio);
  g_assert_true (gst_pad_is_linked (audio));
  opusenc = find_upstream (audio, "opusenc");
  g_assert_nonnull (opusenc);
  g_object_get (sink, "control", &control, "talkback", &talkback, NULL);
  g_assert_true (control);
  g_assert_cmpstr (talkback, ==, "audioconvert ! audioresample ! "
      "audio/x-raw,format=S16LE,rate=48000,channels=1 ! filesink "
      "location=/tmp/picamrtc-talkback.raw");
}

/* Every shipped pipeline file has both renditions and parses; one with the
 * low branch cut out as its header says still parses, with one. */
static void
test_parse_pipeline_files (void)
{
  g_autoptr (GHashTable) pipelines = shipped_pipelines ();
  GHashTableIter iter;
  gpointer name, value;

  if (pipelines == NULL || !ensure_gst ())
    return;
  g_hash_table_iter_init (&iter, pipelines);
  while (g_hash_table_iter_next (&iter, &name, &value)) {
    const gchar *desc = value;
    g_autofree gchar *one = NULL;
    const gchar *tee, *branch;

    assert_contains (desc, "video/x-raw,width=640,height=360");
    assert_parses (name, desc, TRUE);

    /* from the first "! queue" to the second "t." out */
    tee = strstr (desc, " ! queue ");
    branch = strstr (desc, " t. ");
    g_assert_nonnull (tee);
    g_assert_nonnull (branch);
    branch = strstr (branch + 1, " t. ");
    g_assert_nonnull (branch);
    one = g_strdup_printf ("%.*s%s", (int) (tee - desc), desc, branch + 3);
    assert_parses (name, one, FALSE);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/select/pi4", test_select_pi4);
  g_test_add_func ("/select/pi4-1080p", test_select_pi4_1080p);
  g_test_add_func ("/select/pi5", test_select_pi5);
  g_test_add_func ("/select/usb-webcam", test_select_usb_webcam);
  g_test_add_func ("/select/nothing", test_select_nothing);
  g_test_add_func ("/select/openh264", test_select_openh264);
  g_test_add_func ("/select/no-encoder", test_select_no_encoder);
  g_test_add_func ("/select/explicit-libcamera-missing",
      test_select_explicit_libcamera_missing);
  g_test_add_func ("/select/explicit-sources", test_select_explicit_sources);
  g_test_add_func ("/select/test-missing", test_select_test_missing);
  g_test_add_func ("/select/renditions", test_select_renditions);
  g_test_add_func ("/select/build-snapshots", test_build_snapshots);
  g_test_add_func ("/select/half-scaler", test_select_half_scaler);
  g_test_add_func ("/settings/low-size", test_settings_low_size);
  g_test_add_func ("/settings/low-bitrate", test_settings_low_bitrate);
  g_test_add_func ("/settings/low-errors", test_settings_low_errors);
  g_test_add_func ("/pipeline/default", test_build_default);
  g_test_add_func ("/pipeline/low-placeholders", test_build_low_placeholders);
  g_test_add_func ("/pipeline/inline", test_build_inline);
  g_test_add_func ("/pipeline/errors", test_build_errors);
  g_test_add_func ("/pipeline/latency-stamp", test_build_latency_stamp);
  g_test_add_func ("/pipeline/latency-stamp-placeholder",
      test_build_latency_stamp_placeholder);
  g_test_add ("/pipeline/file", TmpDir, NULL, tmpdir_setup, test_build_file,
      tmpdir_teardown);
  g_test_add ("/pipeline/file-bad", TmpDir, NULL, tmpdir_setup,
      test_build_file_bad, tmpdir_teardown);
  g_test_add_func ("/packages/selections", test_packages_of_selections);
  g_test_add_func ("/packages/pipeline-files",
      test_packages_of_pipeline_files);
  g_test_add_func ("/packages/named", test_packages_named);
  g_test_add_func ("/parse/service", test_parse_service);
  g_test_add_func ("/parse/pipeline-files", test_parse_pipeline_files);
  g_test_add_func ("/parse/audio", test_parse_audio);
  g_test_add_func ("/audio/check", test_audio_check);
  g_test_add_func ("/audio/talkback-description",
      test_audio_talkback_description);
  g_test_add_func ("/audio/usb-match", test_audio_usb_match);
  g_test_add_func ("/audio/select", test_audio_select);
  g_test_add_func ("/audio/tick-phase", test_audio_tick_phase);
  g_test_add_func ("/pipeline/audio", test_build_audio);

  return g_test_run ();
}
