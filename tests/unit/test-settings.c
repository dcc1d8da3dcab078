/* Unit tests for the settings of both programs (lib/pcr-settings.c and the
 * tables of picamrtc and picamrtc-gateway): the config file (each bad value
 * names the file and the key), the command line over it, one rule for empty
 * values and lists in both programs, range checks, the shared validators,
 * --help and the sample configs against the tables, and the real binaries
 * saying the same thing about the same bad value. */
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "pcr-gateway-config.h"
#include "pcr-service-config.h"
#include "pcr-settings.h"
#include "test-tmpdir.h"

/* Loads @path and checks the result, as the service does with --config. */
static gboolean
load (PcrConfig * config, const gchar * path, GError ** error)
{
  g_autoptr (PcrSettings) settings = pcr_config_settings_new (config);

  return pcr_settings_load_file (settings, path, error) &&
      pcr_settings_validate (settings, error);
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
  g_assert_cmpstr (config->audio, ==, "auto");
  g_assert_cmpstr (config->talkback, ==, "none");
  g_assert_false (config->control);
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
      "on-demand=false\n" "idle-stop-seconds=30\n" "latency-stamp=true\n"
      "audio=alsa:plughw:CARD=C920,DEV=0\n" "talkback=alsa:hw:1,0\n"
      "control=true\n"
      "relay=http://janus.example.org:8088/janus?room=7&adminkey=k\n");

  g_assert_true (load (config, path, &error));
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
  g_assert_cmpstr (config->audio, ==, "alsa:plughw:CARD=C920,DEV=0");
  g_assert_cmpstr (config->talkback, ==, "alsa:hw:1,0");
  g_assert_true (config->control);
  g_assert_cmpstr (config->relay, ==,
      "http://janus.example.org:8088/janus?room=7&adminkey=k");
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
  g_assert_true (load (config, path, &error));
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
  {"record", "always"},
  {"record", "continuous"},     /* without record-dir */
  {"record-segment-s", "0"},
  {"record-segment-s", "3601"},
  {"record-max-mb", "-1"},
  {"record-max-age-h", "87601"},
};

static void
test_load_bad_values (TmpDir * t, gconstpointer data)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bad_values); i++) {
    g_autoptr (PcrConfig) config = pcr_config_new ();
    g_autoptr (PcrSettings) settings = pcr_config_settings_new (config);
    g_autoptr (GError) error = NULL;
    g_autofree gchar *text = g_strdup_printf ("[picamrtc]\ndevice=first\n"
        "%s=%s\n", bad_values[i].key, bad_values[i].value);
    g_autofree gchar *path = write_file (t, "bad.conf", text);
    g_autofree gchar *prefix = g_strdup_printf ("%s: key %s: ", path,
        bad_values[i].key);

    g_test_message ("%s=%s", bad_values[i].key, bad_values[i].value);
    if (!pcr_settings_load_file (settings, path, &error)) {
      /* a value that does not parse changes nothing, not even the keys
       * before it */
      g_assert_cmpstr (config->device, ==, PCR_DEFAULT_DEVICE);
      g_assert_cmpint (config->width, ==, PCR_DEFAULT_WIDTH);
    } else {
      /* one that parses is checked with the rest, still naming the file */
      g_assert_false (pcr_settings_validate (settings, &error));
    }
    g_assert_error (error, PCR_SETTINGS_ERROR, PCR_SETTINGS_ERROR_INVALID);
    g_test_message ("  -> %s", error->message);
    g_assert_true (g_str_has_prefix (error->message, prefix));
  }
}

static void
test_load_bad_value_escaped (TmpDir * t, gconstpointer data)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (t, "esc.conf",
      "[picamrtc]\nwidth=12\\nFAKE LOG LINE\n");

  g_assert_false (load (config, path, &error));
  g_assert_error (error, PCR_SETTINGS_ERROR, PCR_SETTINGS_ERROR_INVALID);
  /* a hostile value cannot put a line break into the log */
  g_assert_null (strchr (error->message, '\n'));
  g_assert_nonnull (strstr (error->message, "key width: "));
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
  g_assert_true (load (config, path, &error));
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

  g_assert_false (load (config, path, &error));
  g_assert_error (error, PCR_SETTINGS_ERROR, PCR_SETTINGS_ERROR_INVALID);
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

  g_assert_false (load (config, garbage, &error));
  g_assert_error (error, PCR_SETTINGS_ERROR, PCR_SETTINGS_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, garbage));
  g_clear_error (&error);

  g_assert_false (load (config, nogroup, &error));
  g_assert_error (error, PCR_SETTINGS_ERROR, PCR_SETTINGS_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "[picamrtc]"));
  g_assert_cmpint (config->width, ==, PCR_DEFAULT_WIDTH);
}

static void
test_load_lists_and_bools (TmpDir * t, gconstpointer data)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (t, "list.conf",
      "[picamrtc]\nice-address= 198.51.100.1 ; ;::1,127.0.0.1 \n"
      "on-demand=No\n");

  g_assert_true (load (config, path, &error));
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
m_audio_bad (PcrConfig * config)
{
  SET_STR (audio, "pulse");
}

static void
m_audio_inject (PcrConfig * config)
{
  SET_STR (audio, "alsa:hw:1 ! fakesink");
}

static void
m_audio_empty_device (PcrConfig * config)
{
  SET_STR (audio, "alsa:");
}

static void
m_talkback_bad (PcrConfig * config)
{
  SET_STR (talkback, "speaker");
}

static void
m_talkback_inject (PcrConfig * config)
{
  SET_STR (talkback, "file:/tmp/x\" ! fakesink");
}

static void
m_talkback_space (PcrConfig * config)
{
  SET_STR (talkback, "file:/tmp/a b");
}

static void
m_relay_scheme (PcrConfig * config)
{
  SET_STR (relay, "ws://janus:8188/");
}

static void
m_relay_room (PcrConfig * config)
{
  SET_STR (relay, "http://janus:8088/janus?room=lobby");
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
  {m_audio_bad, "audio"},
  {m_audio_inject, "audio"},
  {m_audio_empty_device, "audio"},
  {m_talkback_bad, "talkback"},
  {m_talkback_inject, "talkback"},
  {m_talkback_space, "talkback"},
  {m_relay_scheme, "relay"},
  {m_relay_room, "relay"},
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
    g_assert_error (error, PCR_SETTINGS_ERROR, PCR_SETTINGS_ERROR_INVALID);
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

/* ---- the command line ------------------------------------------------- */

/* Parses @args (after the program name) and loads like main() does. */
static gboolean
parse_and_load (PcrSettings * settings, const gchar * const *args,
    GError ** error)
{
  g_autoptr (GOptionContext) ctx = pcr_settings_option_context_new (settings,
      NULL, NULL, NULL);
  g_autoptr (GPtrArray) all = g_ptr_array_new_with_free_func (g_free);
  g_autofree gchar **argv = NULL;
  gint argc;
  guint i;

  g_ptr_array_add (all, g_strdup ("test"));
  for (i = 0; args[i] != NULL; i++)
    g_ptr_array_add (all, g_strdup (args[i]));
  argc = all->len;
  /* GOption moves the pointers of argv around; @all keeps the strings */
  argv = g_new0 (gchar *, argc + 1);
  memcpy (argv, all->pdata, argc * sizeof (gchar *));
  return pcr_settings_parse (settings, ctx, &argc, &argv, error) &&
      pcr_settings_load (settings, error);
}

static void
test_command_line (TmpDir * t, gconstpointer data)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrSettings) settings = pcr_config_settings_new (config);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (t, "cl.conf", "[picamrtc]\n"
      "width=320\nheight=240\nusername=u\nice-address=198.51.100.1\n"
      "latency-stamp=true\ndevice=from-file\n");
  const gchar *args[] = { "--config", path, "-W", "640", "--ice-address",
    "127.0.0.1", "--ice-address", "::1, 192.0.2.1", "--always-on",
    "--username=", "--latency-stamp=false", "--device", "from-cli", NULL
  };

  g_assert_true (parse_and_load (settings, args, &error));
  g_assert_no_error (error);
  /* the command line wins; what it does not name comes from the file */
  g_assert_cmpint (config->width, ==, 640);
  g_assert_cmpint (config->height, ==, 240);
  g_assert_cmpstr (config->device, ==, "from-cli");
  /* an empty value clears an optional setting */
  g_assert_null (config->username);
  g_assert_false (config->latency_stamp);
  g_assert_false (config->on_demand);
  /* a repeated option adds to the list, each value split like the file's;
   * the command line's list replaces the file's */
  g_assert_cmpuint (g_strv_length (config->ice_addresses), ==, 3);
  g_assert_cmpstr (config->ice_addresses[0], ==, "127.0.0.1");
  g_assert_cmpstr (config->ice_addresses[1], ==, "::1");
  g_assert_cmpstr (config->ice_addresses[2], ==, "192.0.2.1");
}

static void
test_command_line_bools (void)
{
  const gchar *on[] = { "--latency-stamp", "--on-demand", "--control=on",
    NULL
  };
  const gchar *off[] = { "--latency-stamp=no", "--on-demand=off",
    "--control=off", NULL
  };
  g_autoptr (PcrConfig) a = pcr_config_new ();
  g_autoptr (PcrConfig) b = pcr_config_new ();
  g_autoptr (PcrSettings) sa = pcr_config_settings_new (a);
  g_autoptr (PcrSettings) sb = pcr_config_settings_new (b);
  g_autoptr (GError) error = NULL;

  g_assert_true (parse_and_load (sa, on, &error));
  g_assert_true (a->latency_stamp);
  g_assert_true (a->on_demand);
  g_assert_true (a->control);
  g_assert_true (parse_and_load (sb, off, &error));
  g_assert_false (b->latency_stamp);
  g_assert_false (b->on_demand);
  g_assert_false (b->control);
}

static void
test_command_line_errors (void)
{
  static const struct
  {
    const gchar *args[3];
    const gchar *message;
  } cases[] = {
    {{"--width", "abc"}, "--width: \"abc\" is not an integer"},
    {{"--width", "5000"}, "--width: 5000 is out of range 16..4096"},
    {{"-W", "641"}, "--width: 641 must be even"},
    {{"--device", ""}, "--device: must not be empty"},
    {{"--on-demand=maybe"},
        "--on-demand: \"maybe\" is not a boolean (true or false)"},
    {{"--ice-address", "127.0.0.1;localhost"},
        "--ice-address: \"localhost\" is not an IP address"},
    {{"--password", "hunter2"}, "--password: set without a username"},
    {{"--cert-file", "/etc/passwd"}, "--cert-file: set key-file too (a "
          "client certificate needs both)"},
    {{"--key-file", "/etc/passwd"}, "--key-file: set cert-file too (a "
          "client certificate needs both)"},
    {{"--cert-file=/etc/passwd", "--key-file=/etc/passwd"}, "--cert-file: "
          "needs an mqtts:// broker: a client certificate only goes over TLS"},
    {{"--turn-server", "http://u:hunter2@h"}, "--turn-server: \"(a URI "
          "with credentials, not shown)\" must start with turn://"},
    {{"--max-viewers", "65"}, "--max-viewers: 65 is out of range 1..64"},
    {{"stray"}, "unexpected argument \"stray\""},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (PcrConfig) config = pcr_config_new ();
    g_autoptr (PcrSettings) settings = pcr_config_settings_new (config);
    g_autoptr (GError) error = NULL;

    g_assert_false (parse_and_load (settings, cases[i].args, &error));
    g_assert_nonnull (error);
    g_assert_cmpstr (error->message, ==, cases[i].message);
  }
}

/* The service and the gateway follow the same rules for the keys they
 * share: the same message for the same bad value, empty values, lists. */
static void
test_same_rules (TmpDir * t, gconstpointer data)
{
  static const gchar *bad[] = { "device=", "device=bad.id!",
    "broker=ftp://x", "topic-prefix=a/+", "ca-file=/nonexistent", "broker=",
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (PcrConfig) cam = pcr_config_new ();
    g_autoptr (PcrGatewayConfig) gw = pcr_gateway_config_new ();
    g_autoptr (PcrSettings) cs = pcr_config_settings_new (cam);
    g_autoptr (PcrSettings) gs = pcr_gateway_config_settings_new (gw, NULL);
    g_autoptr (GError) cam_error = NULL;
    g_autoptr (GError) gw_error = NULL;
    g_autofree gchar *cam_text = g_strdup_printf ("[picamrtc]\n%s\n", bad[i]);
    g_autofree gchar *gw_text = g_strdup_printf ("[gateway]\n%s\n", bad[i]);
    g_autofree gchar *path = NULL;

    path = write_file (t, "same.conf", cam_text);
    g_assert_false (pcr_settings_load_file (cs, path, &cam_error) &&
        pcr_settings_validate (cs, &cam_error));
    g_free (path);
    path = write_file (t, "same.conf", gw_text);
    g_assert_false (pcr_settings_load_file (gs, path, &gw_error) &&
        pcr_settings_validate (gs, &gw_error));
    g_test_message ("%s -> %s", bad[i], cam_error->message);
    g_assert_cmpstr (cam_error->message, ==, gw_error->message);
  }

  {
    g_autoptr (PcrConfig) cam = pcr_config_new ();
    g_autoptr (PcrGatewayConfig) gw = pcr_gateway_config_new ();
    g_autoptr (PcrSettings) cs = pcr_config_settings_new (cam);
    g_autoptr (PcrSettings) gs = pcr_gateway_config_settings_new (gw, NULL);
    g_autoptr (GError) error = NULL;
    g_autofree gchar *cam_path = write_file (t, "cam.conf", "[picamrtc]\n"
        "username=\nice-address=192.0.2.1, 192.0.2.2;192.0.2.3\n");
    g_autofree gchar *gw_path = write_file (t, "gw.conf", "[gateway]\n"
        "username=\nstun-uri=stun:a.example:1, stun:b.example:2;"
        "stun:c.example:3\n");

    g_assert_true (pcr_settings_load_file (cs, cam_path, &error));
    g_assert_true (pcr_settings_validate (cs, &error));
    g_assert_true (pcr_settings_load_file (gs, gw_path, &error));
    g_assert_true (pcr_settings_validate (gs, &error));
    g_assert_no_error (error);
    g_assert_null (cam->username);
    g_assert_null (gw->username);
    g_assert_cmpuint (g_strv_length (cam->ice_addresses), ==, 3);
    g_assert_cmpuint (g_strv_length (gw->stun_uris), ==, 3);
    g_assert_cmpstr (gw->stun_uris[1], ==, "stun:b.example:2");
  }
}

/* ---- the programs, their --help and their samples ----------------------- */

typedef struct
{
  const gchar *name;
  const gchar *binary;          /* in the build tree */
  const gchar *sample;          /* in the source tree */
  const gchar *doc;             /* the option list in the docs */
} Program;

static const Program programs[] = {
  {"picamrtc", "src/picamrtc/picamrtc", "data/picamrtc.conf", "README.md"},
  {"picamrtc-gateway", "src/gateway/picamrtc-gateway", "data/gateway.conf",
      "docs/http-api.md"},
};

/* Runs a program of the build tree; returns its exit status. */
static gint
run_program (const Program * program, const gchar * const *args,
    gchar ** out, gchar ** err)
{
  const gchar *build = g_getenv ("PICAMRTC_BUILD_ROOT");
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  gint status = -1;
  guint i;

  g_ptr_array_add (argv, g_build_filename (build, program->binary, NULL));
  for (i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (gchar **) argv->pdata, NULL, 0, NULL,
          NULL, out, err, &status, &error));
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static gboolean
have_build_tree (void)
{
  if (g_getenv ("PICAMRTC_BUILD_ROOT") != NULL &&
      g_getenv ("PICAMRTC_SOURCE_ROOT") != NULL)
    return TRUE;
  g_test_skip ("PICAMRTC_BUILD_ROOT / PICAMRTC_SOURCE_ROOT not set");
  return FALSE;
}

/* The --help line of --NAME. */
static const gchar *
help_line (gchar ** lines, const gchar * name)
{
  g_autofree gchar *option = g_strdup_printf ("--%s", name);
  guint i;

  for (i = 0; lines[i] != NULL; i++) {
    const gchar *at = strstr (lines[i], option);

    if (at != NULL && (at[strlen (option)] == '=' ||
            at[strlen (option)] == ' '))
      return lines[i];
  }
  return NULL;
}

/* The value of NAME= or #NAME= in a sample config, or NULL. */
static gchar *
sample_value (gchar ** lines, const gchar * name)
{
  guint i;

  for (i = 0; lines[i] != NULL; i++) {
    const gchar *line = lines[i][0] == '#' ? lines[i] + 1 : lines[i];

    if (g_str_has_prefix (line, name) && line[strlen (name)] == '=')
      return g_strdup (line + strlen (name) + 1);
  }
  return NULL;
}

static void
test_help_and_samples (void)
{
  const gchar *help[] = { "--help", NULL };
  guint p, i;

  if (!have_build_tree ())
    return;
  for (p = 0; p < G_N_ELEMENTS (programs); p++) {
    const gchar *root = g_getenv ("PICAMRTC_SOURCE_ROOT");
    g_autofree gchar *sample_path = g_build_filename (root,
        programs[p].sample, NULL);
    g_autofree gchar *doc_path = g_build_filename (root, programs[p].doc,
        NULL);
    g_autofree gchar *out = NULL;
    g_autofree gchar *err = NULL;
    g_autofree gchar *sample = NULL;
    g_autofree gchar *doc = NULL;
    g_auto (GStrv) lines = NULL;
    g_auto (GStrv) sample_lines = NULL;
    g_autoptr (PcrConfig) cam = pcr_config_new ();
    g_autoptr (PcrGatewayConfig) gw = pcr_gateway_config_new ();
    g_autoptr (PcrSettings) settings = p == 0 ?
        pcr_config_settings_new (cam) : pcr_gateway_config_settings_new (gw,
        NULL);
    const PcrSetting *table;
    guint n;

    g_assert_cmpint (run_program (&programs[p], help, &out, &err), ==, 0);
    lines = g_strsplit (out, "\n", -1);
    g_assert_true (g_file_get_contents (sample_path, &sample, NULL, NULL));
    sample_lines = g_strsplit (sample, "\n", -1);
    g_assert_true (g_file_get_contents (doc_path, &doc, NULL, NULL));

    table = pcr_settings_get_table (settings, &n);
    for (i = 0; i < n; i++) {
      const PcrSetting *s = &table[i];
      const gchar *line = help_line (lines, s->name);
      g_autofree gchar *value = sample_value (sample_lines, s->name);
      g_autofree gchar *in_doc = g_strdup_printf ("`--%s", s->name);

      g_test_message ("%s: %s", programs[p].name, s->name);
      /* every key is an option, with the table's default */
      g_assert_nonnull (line);
      if (s->default_value != NULL && *s->default_value != '\0') {
        g_autofree gchar *def = g_strdup_printf ("default %s)",
            s->default_value);

        g_assert_nonnull (strstr (line, def));
      }
      if (s->negation != NULL)
        g_assert_nonnull (help_line (lines, s->negation));
      /* ...in the sample config, showing the default where there is one */
      g_assert_nonnull (value);
      if (s->default_value != NULL && *s->default_value != '\0')
        g_assert_cmpstr (value, ==, s->default_value);
      /* ...and in the docs' option list */
      g_assert_nonnull (strstr (doc, in_doc));
    }
  }
}

/* The samples load and pass the checks as they are. */
static void
test_samples_load (void)
{
  const gchar *root = g_getenv ("PICAMRTC_SOURCE_ROOT");
  g_autoptr (PcrConfig) cam = pcr_config_new ();
  g_autoptr (PcrGatewayConfig) gw = pcr_gateway_config_new ();
  g_autoptr (PcrSettings) cs = pcr_config_settings_new (cam);
  g_autoptr (PcrSettings) gs = pcr_gateway_config_settings_new (gw, NULL);
  g_autofree gchar *cam_path = NULL;
  g_autofree gchar *gw_path = NULL;
  g_autoptr (GError) error = NULL;

  if (!have_build_tree ())
    return;
  cam_path = g_build_filename (root, "data", "picamrtc.conf", NULL);
  gw_path = g_build_filename (root, "data", "gateway.conf", NULL);
  g_assert_true (pcr_settings_load_file (cs, cam_path, &error));
  g_assert_true (pcr_settings_validate (cs, &error));
  g_assert_true (pcr_settings_load_file (gs, gw_path, &error));
  g_assert_true (pcr_settings_validate (gs, &error));
  g_assert_no_error (error);
}

/* The real binaries: the same bad value gets the same message text from the
 * service and the gateway, and exit status 2. */
static void
test_same_message (void)
{
  static const gchar *cases[][3] = {
    {"--device", "bad.id!", NULL},
    {"--broker", "ftp://x", NULL},
    {"--topic-prefix", "a/#", NULL},
    {"--ca-file", "/nonexistent/ca.pem", NULL},
  };
  guint i, p;

  if (!have_build_tree ())
    return;
  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    gchar *texts[G_N_ELEMENTS (programs)] = { NULL };

    for (p = 0; p < G_N_ELEMENTS (programs); p++) {
      g_autofree gchar *err = NULL;
      g_autofree gchar *prefix = g_strdup_printf ("%s: ", programs[p].name);

      g_assert_cmpint (run_program (&programs[p], cases[i], NULL, &err), ==,
          2);
      g_test_message ("%s", err);
      g_assert_true (g_str_has_prefix (err, prefix));
      g_assert_true (g_str_has_suffix (err, "\n"));
      texts[p] = g_strndup (err + strlen (prefix),
          strlen (err) - strlen (prefix) - 1);
      g_assert_true (g_str_has_prefix (texts[p], cases[i][0]));
    }
    g_assert_cmpstr (texts[0], ==, texts[1]);
    g_free (texts[0]);
    g_free (texts[1]);
  }
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
  g_test_add ("/settings/command-line", TmpDir, NULL, tmpdir_setup,
      test_command_line, tmpdir_teardown);
  g_test_add_func ("/settings/command-line-bools", test_command_line_bools);
  g_test_add_func ("/settings/command-line-errors",
      test_command_line_errors);
  g_test_add ("/settings/same-rules", TmpDir, NULL, tmpdir_setup,
      test_same_rules, tmpdir_teardown);
  g_test_add_func ("/settings/help-and-samples", test_help_and_samples);
  g_test_add_func ("/settings/samples-load", test_samples_load);
  g_test_add_func ("/settings/same-message", test_same_message);

  return g_test_run ();
}
