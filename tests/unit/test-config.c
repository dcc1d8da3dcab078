/* Unit tests for the camera service's configuration: loading the config file
 * (each bad value must name its key), range checks, the choice of source and
 * encoder on faked machines (a Pi 4, a Pi 5, a laptop with a webcam, a bare
 * server) and the pipeline description, including pipeline files with
 * placeholders. No GStreamer registry is involved: PcrPlatform is filled by
 * hand. */
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "pcr-config.h"

typedef struct
{
  gchar *dir;
} TmpDir;

static void
tmpdir_setup (TmpDir * t, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  t->dir = g_dir_make_tmp ("pcr-test-config-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
remove_tree (const gchar * dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const gchar *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL) {
    g_autofree gchar *path = g_build_filename (dir, name, NULL);

    g_unlink (path);
  }
  g_rmdir (dir);
}

static void
tmpdir_teardown (TmpDir * t, gconstpointer data)
{
  remove_tree (t->dir);
  g_free (t->dir);
}

static gchar *
write_file (TmpDir * t, const gchar * name, const gchar * contents)
{
  g_autoptr (GError) error = NULL;
  gchar *path = g_build_filename (t->dir, name, NULL);

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  return path;
}

/* ---- loading ----------------------------------------------------------- */

static void
test_defaults (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (GError) error = NULL;

  g_assert_cmpstr (config->broker, ==, PCR_DEFAULT_BROKER);
  g_assert_cmpstr (config->device, ==, PCR_DEFAULT_DEVICE);
  g_assert_cmpstr (config->topic_prefix, ==, "picamrtc");
  g_assert_cmpstr (config->source, ==, "auto");
  g_assert_null (config->pipeline);
  g_assert_null (config->username);
  g_assert_cmpint (config->width, ==, 1280);
  g_assert_cmpint (config->height, ==, 720);
  g_assert_cmpint (config->framerate, ==, 30);
  g_assert_cmpint (config->bitrate, ==, 2000);
  g_assert_cmpint (config->max_viewers, ==, 8);
  g_assert_nonnull (config->ice_addresses);
  g_assert_null (config->ice_addresses[0]);
  g_assert_true (config->on_demand);
  g_assert_cmpint (config->idle_stop_seconds, ==, 5);
  g_assert_false (config->latency_stamp);
  g_assert_true (pcr_config_validate (config, &error));
  g_assert_no_error (error);
}

static void
test_load_good (TmpDir * t, gconstpointer data)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (t, "good.conf",
      "# a camera in the garden\n"
      "[picamrtc]\n"
      "broker = mqtts://broker.example.org:8883\n"
      "username=garden\n"
      "password=s3cret;with=chars\n"
      "device=garden-cam_2\n"
      "topic-prefix=home/cams\n"
      "source=v4l2:/dev/video2\n"
      "width=640\n"
      "height=480\n"
      "framerate=15\n"
      "bitrate=800\n"
      "max-viewers=3\n"
      "ice-address=127.0.0.1;192.0.2.10\n"
      "stun-server=stun://stun.example.org:3478\n"
      "turn-server=turn://u:p@turn.example.org:3478\n"
      "on-demand=false\n" "idle-stop-seconds=30\n" "latency-stamp=true\n");

  g_assert_true (pcr_config_load_file (config, path, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (config->broker, ==, "mqtts://broker.example.org:8883");
  g_assert_cmpstr (config->username, ==, "garden");
  g_assert_cmpstr (config->password, ==, "s3cret;with=chars");
  g_assert_cmpstr (config->device, ==, "garden-cam_2");
  g_assert_cmpstr (config->topic_prefix, ==, "home/cams");
  g_assert_cmpstr (config->source, ==, "v4l2:/dev/video2");
  g_assert_cmpint (config->width, ==, 640);
  g_assert_cmpint (config->height, ==, 480);
  g_assert_cmpint (config->framerate, ==, 15);
  g_assert_cmpint (config->bitrate, ==, 800);
  g_assert_cmpint (config->max_viewers, ==, 3);
  g_assert_cmpuint (g_strv_length (config->ice_addresses), ==, 2);
  g_assert_cmpstr (config->ice_addresses[0], ==, "127.0.0.1");
  g_assert_cmpstr (config->ice_addresses[1], ==, "192.0.2.10");
  g_assert_cmpstr (config->stun_server, ==, "stun://stun.example.org:3478");
  g_assert_cmpstr (config->turn_server, ==, "turn://u:p@turn.example.org:3478");
  g_assert_false (config->on_demand);
  g_assert_cmpint (config->idle_stop_seconds, ==, 30);
  g_assert_true (config->latency_stamp);
  g_assert_true (pcr_config_validate (config, &error));
  g_assert_no_error (error);
}

/* A key that is not in the file keeps the value the config had, so the
 * command line can be applied before or after. */
static void
test_load_partial (TmpDir * t, gconstpointer data)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (t, "partial.conf",
      "[picamrtc]\ndevice=porch\npipeline=\n");

  config->width = 320;
  g_assert_true (pcr_config_load_file (config, path, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (config->device, ==, "porch");
  g_assert_cmpint (config->width, ==, 320);
  g_assert_cmpstr (config->broker, ==, PCR_DEFAULT_BROKER);
  g_assert_null (config->pipeline);
}

static const struct
{
  const gchar *key;
  const gchar *value;
} bad_values[] = {
  {"width", "abc"},
  {"width", "640px"},
  {"width", "5000"},
  {"width", "15"},
  {"height", "-1"},
  {"height", "99999999999999999999"},
  {"framerate", "0"},
  {"framerate", "121"},
  {"framerate", "30.5"},
  {"bitrate", "fast"},
  {"bitrate", "99"},
  {"bitrate", "50001"},
  {"max-viewers", "0"},
  {"max-viewers", "65"},
  {"idle-stop-seconds", "-5"},
  {"idle-stop-seconds", "3601"},
  {"on-demand", "maybe"},
  {"on-demand", "2"},
  {"latency-stamp", "sometimes"},
  {"broker", ""},
  {"device", ""},
  {"source", ""},
};

static void
test_load_bad_values (TmpDir * t, gconstpointer data)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bad_values); i++) {
    g_autoptr (PcrConfig) config = pcr_config_new ();
    g_autoptr (GError) error = NULL;
    g_autofree gchar *text = g_strdup_printf ("[picamrtc]\ndevice=first\n"
        "%s=%s\n", bad_values[i].key, bad_values[i].value);
    g_autofree gchar *path = write_file (t, "bad.conf", text);
    g_autofree gchar *quoted = g_strdup_printf ("'%s'", bad_values[i].key);

    g_test_message ("%s=%s", bad_values[i].key, bad_values[i].value);
    g_assert_false (pcr_config_load_file (config, path, &error));
    g_assert_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID);
    g_test_message ("  -> %s", error->message);
    /* the message names the key and the file */
    g_assert_nonnull (strstr (error->message, quoted));
    g_assert_nonnull (strstr (error->message, path));
    /* a failed load changes nothing, not even the keys before it */
    g_assert_cmpstr (config->device, ==, PCR_DEFAULT_DEVICE);
    g_assert_cmpint (config->width, ==, PCR_DEFAULT_WIDTH);
  }
}

static void
test_load_bad_value_escaped (TmpDir * t, gconstpointer data)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (t, "esc.conf",
      "[picamrtc]\nwidth=12\\nFAKE LOG LINE\n");

  g_assert_false (pcr_config_load_file (config, path, &error));
  g_assert_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID);
  /* a hostile value cannot put a line break into the log */
  g_assert_null (strchr (error->message, '\n'));
  g_assert_nonnull (strstr (error->message, "'width'"));
}

static void
test_load_unknown_key (TmpDir * t, gconstpointer data)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (t, "unknown.conf",
      "[picamrtc]\nframrate=25\nwidth=800\n[extra]\nx=1\n");

  g_test_expect_message ("picamrtc", G_LOG_LEVEL_WARNING,
      "*unknown group [extra]*");
  g_test_expect_message ("picamrtc", G_LOG_LEVEL_WARNING,
      "*unknown key 'framrate'*");
  g_assert_true (pcr_config_load_file (config, path, &error));
  g_test_assert_expected_messages ();
  g_assert_no_error (error);
  /* the known keys still count, the unknown one changes nothing */
  g_assert_cmpint (config->width, ==, 800);
  g_assert_cmpint (config->framerate, ==, PCR_DEFAULT_FRAMERATE);
}

static void
test_load_missing_file (TmpDir * t, gconstpointer data)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = g_build_filename (t->dir, "nope.conf", NULL);

  g_assert_false (pcr_config_load_file (config, path, &error));
  g_assert_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, path));
}

static void
test_load_malformed (TmpDir * t, gconstpointer data)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *garbage = write_file (t, "garbage.conf",
      "[picamrtc]\nthis line has no equals sign\n");
  g_autofree gchar *nogroup = write_file (t, "nogroup.conf",
      "[camera]\nwidth=640\n");

  g_assert_false (pcr_config_load_file (config, garbage, &error));
  g_assert_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, garbage));
  g_clear_error (&error);

  g_assert_false (pcr_config_load_file (config, nogroup, &error));
  g_assert_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "[picamrtc]"));
  g_assert_cmpint (config->width, ==, PCR_DEFAULT_WIDTH);
}

static void
test_load_lists_and_bools (TmpDir * t, gconstpointer data)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (t, "list.conf",
      "[picamrtc]\nice-address= 198.51.100.1 ; ;::1,127.0.0.1 \n" "on-demand=No\n");

  g_assert_true (pcr_config_load_file (config, path, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (config->ice_addresses), ==, 3);
  g_assert_cmpstr (config->ice_addresses[0], ==, "198.51.100.1");
  g_assert_cmpstr (config->ice_addresses[1], ==, "::1");
  g_assert_cmpstr (config->ice_addresses[2], ==, "127.0.0.1");
  g_assert_false (config->on_demand);
  g_assert_true (pcr_config_validate (config, &error));
}

/* ---- validation -------------------------------------------------------- */

typedef void (*Mutate) (PcrConfig * config);

#define SET_STR(field, value) \
  g_free (config->field); config->field = g_strdup (value)

static void
m_width_small (PcrConfig * config)
{
  config->width = 15;
}

static void
m_width_big (PcrConfig * config)
{
  config->width = 4097;
}

static void
m_width_odd (PcrConfig * config)
{
  config->width = 641;
}

static void
m_height_big (PcrConfig * config)
{
  config->height = 4098;
}

static void
m_fps_zero (PcrConfig * config)
{
  config->framerate = 0;
}

static void
m_fps_big (PcrConfig * config)
{
  config->framerate = 121;
}

static void
m_bitrate_low (PcrConfig * config)
{
  config->bitrate = 99;
}

static void
m_bitrate_high (PcrConfig * config)
{
  config->bitrate = 50001;
}

static void
m_viewers_zero (PcrConfig * config)
{
  config->max_viewers = 0;
}

static void
m_viewers_big (PcrConfig * config)
{
  config->max_viewers = 65;
}

static void
m_idle (PcrConfig * config)
{
  config->idle_stop_seconds = -1;
}

static void
m_broker_http (PcrConfig * config)
{
  SET_STR (broker, "http://h");
}

static void
m_broker_nohost (PcrConfig * config)
{
  SET_STR (broker, "mqtt://");
}

static void
m_broker_port0 (PcrConfig * config)
{
  SET_STR (broker, "mqtt://h:0");
}

static void
m_broker_junk (PcrConfig * config)
{
  SET_STR (broker, "localhost");
}

static void
m_broker_user (PcrConfig * config)
{
  SET_STR (broker, "mqtt://u:p@h");
}

static void
m_broker_path (PcrConfig * config)
{
  SET_STR (broker, "mqtt://h/x");
}

static void
m_device_slash (PcrConfig * config)
{
  SET_STR (device, "a/b");
}

static void
m_device_plus (PcrConfig * config)
{
  SET_STR (device, "cam+");
}

static void
m_device_empty (PcrConfig * config)
{
  SET_STR (device, "");
}

static void
m_device_long (PcrConfig * config)
{
  g_free (config->device);
  config->device = g_strnfill (65, 'a');
}

static void
m_prefix_wild (PcrConfig * config)
{
  SET_STR (topic_prefix, "a/+/b");
}

static void
m_prefix_hash (PcrConfig * config)
{
  SET_STR (topic_prefix, "a/#");
}

static void
m_prefix_empty_level (PcrConfig * config)
{
  SET_STR (topic_prefix, "a//b");
}

static void
m_prefix_trailing (PcrConfig * config)
{
  SET_STR (topic_prefix, "a/");
}

static void
m_source_bad (PcrConfig * config)
{
  SET_STR (source, "webcam");
}

static void
m_source_relative (PcrConfig * config)
{
  SET_STR (source, "v4l2:video0");
}

static void
m_source_inject (PcrConfig * config)
{
  SET_STR (source, "v4l2:/dev/video0 ! fakesink");
}

static void
m_ice_bad (PcrConfig * config)
{
  g_strfreev (config->ice_addresses);
  config->ice_addresses = g_strsplit ("127.0.0.1,localhost", ",", -1);
}

static void
m_stun_bad (PcrConfig * config)
{
  SET_STR (stun_server, "turn://h:3478");
}

static void
m_turn_bad (PcrConfig * config)
{
  SET_STR (turn_server, "http://h");
}

static void
m_password_only (PcrConfig * config)
{
  SET_STR (password, "x");
}

static void
m_ca_missing (PcrConfig * config)
{
  SET_STR (ca_file, "/nonexistent/ca.pem");
}

static const struct
{
  Mutate mutate;
  const gchar *key;
} invalid[] = {
  {m_width_small, "width"},
  {m_width_big, "width"},
  {m_width_odd, "width"},
  {m_height_big, "height"},
  {m_fps_zero, "framerate"},
  {m_fps_big, "framerate"},
  {m_bitrate_low, "bitrate"},
  {m_bitrate_high, "bitrate"},
  {m_viewers_zero, "max-viewers"},
  {m_viewers_big, "max-viewers"},
  {m_idle, "idle-stop-seconds"},
  {m_broker_http, "broker"},
  {m_broker_nohost, "broker"},
  {m_broker_port0, "broker"},
  {m_broker_junk, "broker"},
  {m_broker_user, "broker"},
  {m_broker_path, "broker"},
  {m_device_slash, "device"},
  {m_device_plus, "device"},
  {m_device_empty, "device"},
  {m_device_long, "device"},
  {m_prefix_wild, "topic-prefix"},
  {m_prefix_hash, "topic-prefix"},
  {m_prefix_empty_level, "topic-prefix"},
  {m_prefix_trailing, "topic-prefix"},
  {m_source_bad, "source"},
  {m_source_relative, "source"},
  {m_source_inject, "source"},
  {m_ice_bad, "ice-address"},
  {m_stun_bad, "stun-server"},
  {m_turn_bad, "turn-server"},
  {m_password_only, "password"},
  {m_ca_missing, "ca-file"},
};

static void
test_validate_invalid (void)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (invalid); i++) {
    g_autoptr (PcrConfig) config = pcr_config_new ();
    g_autoptr (GError) error = NULL;

    invalid[i].mutate (config);
    g_assert_false (pcr_config_validate (config, &error));
    g_assert_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID);
    g_test_message ("%s -> %s", invalid[i].key, error->message);
    g_assert_true (g_str_has_prefix (error->message, invalid[i].key));
  }
}

static void
m_edges_low (PcrConfig * config)
{
  config->width = 16;
  config->height = 16;
  config->framerate = 1;
  config->bitrate = 100;
  config->max_viewers = 1;
  config->idle_stop_seconds = 0;
  SET_STR (broker, "mqtts://broker.example.org:8883");
  SET_STR (source, "v4l2:/dev/video10");
  SET_STR (device, "A-z_09");
}

static void
m_edges_high (PcrConfig * config)
{
  config->width = 4096;
  config->height = 4096;
  config->framerate = 120;
  config->bitrate = 50000;
  config->max_viewers = 64;
  config->idle_stop_seconds = 3600;
  SET_STR (broker, "mqtt://[::1]:1883");
  SET_STR (source, "libcamera");
  SET_STR (topic_prefix, "home/garden/cams");
  SET_STR (username, "u");
  SET_STR (password, "p");
  SET_STR (stun_server, "stun://stun.example.org:3478");
  SET_STR (turn_server, "turns://u:p@turn.example.org:5349");
  g_strfreev (config->ice_addresses);
  config->ice_addresses = g_strsplit ("127.0.0.1,::1", ",", -1);
}

static void
test_validate_edges (void)
{
  Mutate ok[] = { m_edges_low, m_edges_high };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (ok); i++) {
    g_autoptr (PcrConfig) config = pcr_config_new ();
    g_autoptr (GError) error = NULL;

    ok[i] (config);
    g_assert_true (pcr_config_validate (config, &error));
    g_assert_no_error (error);
  }
}

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
  g_assert_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_MISSING_ELEMENT);
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
  g_assert_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_MISSING_ELEMENT);
  assert_contains (error->message, "libcamerasrc");
  assert_contains (error->message, "gstreamer1.0-libcamera");
}

static void
test_select_explicit_sources (void)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrPlatform) platform = platform_with ("libcamerasrc",
      "v4l2src", "v4l2h264enc", NULL);
  g_autoptr (PcrSelection) sel = NULL;
  g_autoptr (GError) error = NULL;

  platform->libcamera_camera = TRUE;

  /* test on a Pi: the pattern, still with the hardware encoder */
  g_free (config->source);
  config->source = g_strdup ("test");
  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (sel->source_desc, "videotestsrc "));
  g_assert_true (g_str_has_prefix (sel->encoder_desc, "v4l2h264enc "));
  g_clear_pointer (&sel, pcr_selection_free);

  /* v4l2 with a named device */
  g_free (config->source);
  config->source = g_strdup ("v4l2:/dev/video4");
  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (sel->source_desc,
          "v4l2src device=/dev/video4 ! "));
  g_clear_pointer (&sel, pcr_selection_free);

  /* v4l2 without a device found: a clear error, not a guess */
  g_free (config->source);
  config->source = g_strdup ("v4l2");
  sel = pcr_select (config, platform, &error);
  g_assert_null (sel);
  g_assert_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID);
  assert_contains (error->message, "v4l2:/dev/videoN");
  g_clear_error (&error);

  /* libcamera asked for with no camera seen yet: still libcamerasrc */
  platform->libcamera_camera = FALSE;
  g_free (config->source);
  config->source = g_strdup ("libcamera");
  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (sel->source_desc, "libcamerasrc "));
  g_clear_pointer (&sel, pcr_selection_free);

  /* ...but auto does not pick a libcamera without a camera */
  g_free (config->source);
  config->source = g_strdup ("auto");
  sel = pcr_select (config, platform, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (sel->source_desc, "videotestsrc "));
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
  g_assert_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_MISSING_ELEMENT);
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
  g_assert_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID);
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
  g_assert_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID);
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
    g_assert_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID);
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
  g_assert_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, path));
  g_clear_error (&error);
  g_clear_pointer (&path, g_free);

  /* only comments */
  path = write_file (t, "empty.pipeline", "# nothing here\n#\n");
  g_free (config->pipeline);
  config->pipeline = g_strdup (path);
  g_assert_null (pcr_build_pipeline (config, NULL, &error));
  g_assert_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID);
  g_clear_error (&error);
  g_clear_pointer (&path, g_free);

  /* not text */
  path = g_build_filename (t->dir, "binary.pipeline", NULL);
  g_assert_true (g_file_set_contents (path, "mqttwebrtcsink\0\xff\xfe", 17,
          NULL));
  g_free (config->pipeline);
  config->pipeline = g_strdup (path);
  g_assert_null (pcr_build_pipeline (config, NULL, &error));
  g_assert_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID);
}

/* ---- packages ---------------------------------------------------------- */

static void
test_packages (void)
{
  static const struct
  {
    const gchar *factory, *package;
  } table[] = {
    {"libcamerasrc", "gstreamer1.0-libcamera"},
    {"x264enc", "gstreamer1.0-plugins-ugly"},
    {"v4l2src", "gstreamer1.0-plugins-good"},
    {"v4l2h264enc", "gstreamer1.0-plugins-good"},
    {"v4l2convert", "gstreamer1.0-plugins-good"},
    {"rtph264pay", "gstreamer1.0-plugins-good"},
    {"jpegdec", "gstreamer1.0-plugins-good"},
    {"videotestsrc", "gstreamer1.0-plugins-base"},
    {"videoconvert", "gstreamer1.0-plugins-base"},
    {"videoscale", "gstreamer1.0-plugins-base"},
    {"clockoverlay", "gstreamer1.0-x"},
    {"webrtcbin", "gstreamer1.0-plugins-bad"},
    {"h264parse", "gstreamer1.0-plugins-bad"},
    {"openh264enc", "gstreamer1.0-plugins-bad"},
    {"nicesrc", "gstreamer1.0-nice"},
    {"nicesink", "gstreamer1.0-nice"},
    {"mqttwebrtcsink", "picamrtc"},
    {"latencystamp", "picamrtc"},
  };
  const gchar *missing[] = { "x264enc", "frobsrc", NULL };
  g_autofree gchar *text = NULL;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (table); i++) {
    g_assert_cmpstr (pcr_debian_package_for_element (table[i].factory), ==,
        table[i].package);
  }
  g_assert_null (pcr_debian_package_for_element ("frobsrc"));

  text = pcr_describe_missing_elements (missing);
  g_assert_cmpstr (text, ==,
      "x264enc (gstreamer1.0-plugins-ugly), frobsrc (package unknown)");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/config/defaults", test_defaults);
  g_test_add ("/config/load/good", TmpDir, NULL, tmpdir_setup,
      test_load_good, tmpdir_teardown);
  g_test_add ("/config/load/partial", TmpDir, NULL, tmpdir_setup,
      test_load_partial, tmpdir_teardown);
  g_test_add ("/config/load/bad-values", TmpDir, NULL, tmpdir_setup,
      test_load_bad_values, tmpdir_teardown);
  g_test_add ("/config/load/bad-value-escaped", TmpDir, NULL, tmpdir_setup,
      test_load_bad_value_escaped, tmpdir_teardown);
  g_test_add ("/config/load/unknown-key", TmpDir, NULL, tmpdir_setup,
      test_load_unknown_key, tmpdir_teardown);
  g_test_add ("/config/load/missing-file", TmpDir, NULL, tmpdir_setup,
      test_load_missing_file, tmpdir_teardown);
  g_test_add ("/config/load/malformed", TmpDir, NULL, tmpdir_setup,
      test_load_malformed, tmpdir_teardown);
  g_test_add ("/config/load/lists-and-bools", TmpDir, NULL, tmpdir_setup,
      test_load_lists_and_bools, tmpdir_teardown);
  g_test_add_func ("/config/validate/invalid", test_validate_invalid);
  g_test_add_func ("/config/validate/edges", test_validate_edges);
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
  g_test_add_func ("/packages", test_packages);

  return g_test_run ();
}
