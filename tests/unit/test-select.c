/* Unit tests for the camera service's choice of source and encoder on
 * faked machines (a Pi 4, a Pi 5, a laptop with a webcam, a bare server),
 * the pipeline description, including pipeline files with placeholders, and
 * the Debian package names of missing elements. No GStreamer registry is
 * involved: PcrPlatform is filled by hand. */
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

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
}

/* ---- pipelines --------------------------------------------------------- */

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
  expected = g_strdup_printf ("%s ! %s ! mqttwebrtcsink name=sink",
      sel->source_desc, sel->encoder_desc);
  g_assert_cmpstr (desc, ==, expected);
  /* the service sets the sink's properties on the element */
  g_assert_null (strstr (desc, "broker"));
  g_assert_null (strstr (desc, "user"));
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

    config->latency_stamp = TRUE;
    desc = pcr_build_pipeline (config, sel, &error);
    g_assert_no_error (error);
    expected = g_strdup_printf ("%s ! latencystamp ! %s ! mqttwebrtcsink "
        "name=sink", sel->source_desc, sel->encoder_desc);
    g_assert_cmpstr (desc, ==, expected);
    g_test_message ("%s", desc);
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

static void
test_packages_of_selections (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  /* the machines of the selection tests above, cameras in place */
  PcrPlatform *platforms[] = {
    platform_with ("libcamerasrc", "v4l2src", "v4l2h264enc", "v4l2convert",
        NULL),
    platform_with ("libcamerasrc", "x264enc", NULL),
    platform_with ("v4l2src", "jpegdec", "x264enc", NULL),
    platform_with ("x264enc", "clockoverlay", NULL),
    platform_with ("openh264enc", "libcamerasrc", NULL),
  };
  guint i;

  config->latency_stamp = TRUE;
  for (i = 0; i < G_N_ELEMENTS (platforms); i++) {
    g_autoptr (PcrSelection) sel = NULL;
    g_autoptr (GError) error = NULL;
    g_autofree gchar *desc = NULL;

    platforms[i]->libcamera_camera = TRUE;
    platforms[i]->v4l2_capture_device = g_strdup ("/dev/video0");
    sel = pcr_select (config, platforms[i], &error);
    g_assert_no_error (error);
    desc = pcr_build_pipeline (config, sel, &error);
    g_assert_no_error (error);
    g_test_message ("%s", desc);
    assert_packages_known (desc);
    pcr_platform_free (platforms[i]);
  }
}

/* ...and of the pipelines shipped in pipelines/ */
static void
test_packages_of_pipeline_files (void)
{
  const gchar *root = g_getenv ("PICAMRTC_SOURCE_ROOT");
  g_autofree gchar *dir_path = NULL;
  g_autoptr (GDir) dir = NULL;
  const gchar *name;
  guint n = 0;

  if (root == NULL) {
    g_test_skip ("PICAMRTC_SOURCE_ROOT not set");
    return;
  }
  dir_path = g_build_filename (root, "pipelines", NULL);
  dir = g_dir_open (dir_path, 0, NULL);
  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL) {
    g_autoptr (PcrConfig) config = pcr_config_new ();
    g_autoptr (GError) error = NULL;
    g_autofree gchar *desc = NULL;

    if (!g_str_has_suffix (name, ".pipeline"))
      continue;
    config->pipeline = g_build_filename (dir_path, name, NULL);
    desc = pcr_build_pipeline (config, NULL, &error);
    g_assert_no_error (error);
    assert_packages_known (desc);
    n++;
  }
  g_assert_cmpuint (n, >, 0);
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
  g_test_add_func ("/pipeline/default", test_build_default);
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

  return g_test_run ();
}
