/* picamrtc: the headless camera service. Reads the config file and the
 * command line (the command line wins), picks the camera source and the
 * H.264 encoder (hardware first), builds the pipeline ending in
 * mqttwebrtcsink and runs it with the camera on demand. Exit codes: 0 after
 * EOS or SIGINT/SIGTERM, 1 when the pipeline fails at run time, 2 for a bad
 * option, a bad config file or a missing element. */
#include "config.h"

#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <gst/gst.h>

#include "pcr-config.h"
#include "pcr-service.h"

#define EXIT_BAD_CONFIG 2
#define UNSET G_MININT

typedef struct
{
  gchar *config_file;
  gchar *broker;
  gchar *username;
  gchar *password;
  gchar *ca_file;
  gchar *device;
  gchar *topic_prefix;
  gchar *source;
  gchar *pipeline;
  gint width, height, framerate, bitrate;
  gint max_viewers;
  gint idle_stop_seconds;
  gchar **ice_addresses;
  gchar *stun_server;
  gchar *turn_server;
  gboolean always_on;
  gboolean latency_stamp;
  gboolean print_pipeline;
  gboolean version;
} Options;

static void
options_clear (Options * o)
{
  g_free (o->config_file);
  g_free (o->broker);
  g_free (o->username);
  g_free (o->password);
  g_free (o->ca_file);
  g_free (o->device);
  g_free (o->topic_prefix);
  g_free (o->source);
  g_free (o->pipeline);
  g_strfreev (o->ice_addresses);
  g_free (o->stun_server);
  g_free (o->turn_server);
}

static void
override_string (gchar ** field, gchar * value)
{
  if (value != NULL) {
    g_free (*field);
    /* an empty value on the command line clears a nullable setting */
    *field = *value != '\0' ? g_strdup (value) : NULL;
  }
}

static void
override_int (gint * field, gint value)
{
  if (value != UNSET)
    *field = value;
}

/* The command line wins over the config file. */
static void
apply_options (PcrConfig * config, Options * o)
{
  override_string (&config->broker, o->broker);
  override_string (&config->username, o->username);
  override_string (&config->password, o->password);
  override_string (&config->ca_file, o->ca_file);
  override_string (&config->device, o->device);
  override_string (&config->topic_prefix, o->topic_prefix);
  override_string (&config->source, o->source);
  override_string (&config->pipeline, o->pipeline);
  override_string (&config->stun_server, o->stun_server);
  override_string (&config->turn_server, o->turn_server);
  override_int (&config->width, o->width);
  override_int (&config->height, o->height);
  override_int (&config->framerate, o->framerate);
  override_int (&config->bitrate, o->bitrate);
  override_int (&config->max_viewers, o->max_viewers);
  override_int (&config->idle_stop_seconds, o->idle_stop_seconds);
  if (o->ice_addresses != NULL) {
    g_strfreev (config->ice_addresses);
    config->ice_addresses = g_strdupv (o->ice_addresses);
  }
  if (o->always_on)
    config->on_demand = FALSE;
  if (o->latency_stamp)
    config->latency_stamp = TRUE;
}

static gboolean
parse_options (Options * o, int *argc, char ***argv, GError ** error)
{
  GOptionEntry entries[] = {
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &o->config_file,
        "Config file (GKeyFile, group [picamrtc])", "FILE"},
    {"broker", 'b', 0, G_OPTION_ARG_STRING, &o->broker,
        "MQTT broker (default " PCR_DEFAULT_BROKER ")", "URI"},
    {"username", 0, 0, G_OPTION_ARG_STRING, &o->username,
        "MQTT user name", "NAME"},
    {"password", 0, 0, G_OPTION_ARG_STRING, &o->password,
        "MQTT password (better in the config file: others can read the "
          "command line)", "PASSWORD"},
    {"ca-file", 0, 0, G_OPTION_ARG_FILENAME, &o->ca_file,
        "CA certificates for mqtts://", "FILE"},
    {"device", 'd', 0, G_OPTION_ARG_STRING, &o->device,
        "Device id in the MQTT topics (default " PCR_DEFAULT_DEVICE ")", "ID"},
    {"topic-prefix", 0, 0, G_OPTION_ARG_STRING, &o->topic_prefix,
        "MQTT topic prefix (default " PCR_DEFAULT_TOPIC_PREFIX ")", "PREFIX"},
    {"source", 's', 0, G_OPTION_ARG_STRING, &o->source,
        "Camera source (default auto)", "auto|test|libcamera|v4l2[:DEV]"},
    {"pipeline", 'p', 0, G_OPTION_ARG_STRING, &o->pipeline,
          "Own pipeline (a file or a description) ending in mqttwebrtcsink",
        "DESC_OR_FILE"},
    {"width", 'W', 0, G_OPTION_ARG_INT, &o->width,
        "Width (default 1280)", "W"},
    {"height", 'H', 0, G_OPTION_ARG_INT, &o->height,
        "Height (default 720)", "H"},
    {"framerate", 'f', 0, G_OPTION_ARG_INT, &o->framerate,
        "Frames per second (default 30)", "F"},
    {"bitrate", 0, 0, G_OPTION_ARG_INT, &o->bitrate,
        "Bitrate in kbit/s (default 2000)", "KBPS"},
    {"ice-address", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->ice_addresses,
        "Local IP address for ICE candidates (repeatable)", "IP"},
    {"stun-server", 0, 0, G_OPTION_ARG_STRING, &o->stun_server,
        "STUN server", "stun://HOST:PORT"},
    {"turn-server", 0, 0, G_OPTION_ARG_STRING, &o->turn_server,
        "TURN server", "turn://USER:PASS@HOST:PORT"},
    {"max-viewers", 0, 0, G_OPTION_ARG_INT, &o->max_viewers,
        "Most viewers at once (default 8)", "N"},
    {"idle-stop-seconds", 0, 0, G_OPTION_ARG_INT, &o->idle_stop_seconds,
          "Stop the camera this long after the last viewer left (default 5)",
        "S"},
    {"always-on", 0, 0, G_OPTION_ARG_NONE, &o->always_on,
        "Keep the camera running without viewers", NULL},
    {"latency-stamp", 0, 0, G_OPTION_ARG_NONE, &o->latency_stamp,
        "Write each frame's capture time into the picture, for measuring "
          "latency (docs/latency.md)", NULL},
    {"print-pipeline", 0, 0, G_OPTION_ARG_NONE, &o->print_pipeline,
        "Print the pipeline description and exit", NULL},
    {"version", 0, 0, G_OPTION_ARG_NONE, &o->version,
        "Print the version and exit", NULL},
    {NULL}
  };
  g_autoptr (GOptionContext) ctx = NULL;

  o->width = o->height = o->framerate = o->bitrate = UNSET;
  o->max_viewers = o->idle_stop_seconds = UNSET;

  ctx = g_option_context_new ("- stream a camera to browsers over WebRTC");
  g_option_context_set_summary (ctx, "Signalling goes over MQTT; the camera "
      "runs while someone watches.\nExit status: 0 stopped, 1 run-time "
      "failure, 2 bad option, config or missing element.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  g_option_context_set_strict_posix (ctx, FALSE);
  if (!g_option_context_parse (ctx, argc, argv, error))
    return FALSE;
  if (*argc > 1) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "unexpected argument '%s'", (*argv)[1]);
    return FALSE;
  }
  return TRUE;
}

static void
one_line_error (const gchar * message)
{
  g_autofree gchar *line = g_strdup (message);

  g_strdelimit (line, "\r\n", ' ');
  g_printerr ("picamrtc: %s\n", line);
}

/* Exits when mqttwebrtcsink (or latencystamp, when asked for) is not there;
 * their plugin ships with picamrtc. */
static gboolean
check_own_element (const gchar * name)
{
  g_autoptr (GstElementFactory) factory = gst_element_factory_find (name);
  g_autofree gchar *message = NULL;

  if (factory != NULL)
    return TRUE;
  message = g_strdup_printf ("element %s is missing: install picamrtc "
      "(the gstmqttwebrtc plugin) or point GST_PLUGIN_PATH at it", name);
  one_line_error (message);
  return FALSE;
}

static gint
run (Options * o)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrSelection) selection = NULL;
  g_autoptr (PcrService) service = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *description = NULL;

  if (o->config_file != NULL &&
      !pcr_config_load_file (config, o->config_file, &error)) {
    one_line_error (error->message);
    return EXIT_BAD_CONFIG;
  }
  apply_options (config, o);
  if (!pcr_config_validate (config, &error)) {
    one_line_error (error->message);
    return EXIT_BAD_CONFIG;
  }

  if (config->pipeline == NULL) {
    /* device probes only when the source is to be found */
    gboolean devices = g_str_equal (config->source, "auto") ||
        g_str_equal (config->source, "v4l2") ||
        g_str_equal (config->source, "libcamera");
    g_autoptr (PcrPlatform) platform = pcr_platform_probe_full (devices);

    selection = pcr_select (config, platform, &error);
    if (selection == NULL) {
      one_line_error (error->message);
      return EXIT_BAD_CONFIG;
    }
    g_message ("source: %s", selection->source_reason);
    g_message ("encoder: %s", selection->encoder_reason);
  } else if (!g_str_equal (config->source, "auto")) {
    g_message ("source %s ignored: the pipeline is given", config->source);
  }

  description = pcr_build_pipeline (config, selection, &error);
  if (description == NULL) {
    one_line_error (error->message);
    return EXIT_BAD_CONFIG;
  }
  if (config->pipeline != NULL &&
      g_file_test (config->pipeline, G_FILE_TEST_IS_REGULAR))
    g_message ("pipeline file: %s", config->pipeline);
  if (o->print_pipeline) {
    g_print ("%s\n", description);
    return EXIT_SUCCESS;
  }
  g_message ("pipeline: %s", description);

  if (!check_own_element ("mqttwebrtcsink") ||
      (config->latency_stamp && !check_own_element ("latencystamp")))
    return EXIT_BAD_CONFIG;

  service = pcr_service_new (config, description, &error);
  if (service == NULL) {
    one_line_error (error->message);
    return g_error_matches (error, PCR_SERVICE_ERROR,
        PCR_SERVICE_ERROR_STATE) ? EXIT_FAILURE : EXIT_BAD_CONFIG;
  }
  g_message ("device %s on %s", config->device, config->broker);
  return pcr_service_run (service);
}

int
main (int argc, char **argv)
{
  Options options = { 0 };
  g_autoptr (GError) error = NULL;
  gint ret;

#ifdef __GLIBC__
  /* Every viewer brings short-lived threads; glibc would give them up to
   * 8 arenas per core, each keeping freed memory. Two arenas hold the RSS
   * of a long-running camera flat across thousands of viewers. */
  mallopt (M_ARENA_MAX, 2);
#endif

  if (!parse_options (&options, &argc, &argv, &error)) {
    one_line_error (error->message);
    options_clear (&options);
    return EXIT_BAD_CONFIG;
  }
  if (options.version) {
    g_print ("picamrtc %s\n", VERSION);
    options_clear (&options);
    return EXIT_SUCCESS;
  }

  ret = run (&options);
  options_clear (&options);
  gst_deinit ();
  return ret;
}
