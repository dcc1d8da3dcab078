/* picamrtc: the headless camera service. Reads the config file and the
 * command line (the command line wins), picks the camera source and the
 * H.264 encoder (hardware first), builds the pipeline ending in
 * mqttwebrtcsink and runs it with the camera on demand. Exit codes: 0 after
 * EOS or SIGINT/SIGTERM, 1 when the pipeline fails at run time, 2 for a bad
 * option, a bad config file or a missing element. --check tells whether
 * that configuration would stream, without streaming (pcr-check.c). */
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <gst/gst.h>

#include "pcr-check.h"
#include "pcr-select.h"
#include "pcr-service.h"
#include "pcr-service-config.h"

#define PROGRAM "picamrtc"

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
  pcr_print_error (PROGRAM, message);
  return FALSE;
}

/* The talk-back sink is made when a viewer first talks: say now what it
 * would miss. */
static gboolean
check_talkback_elements (const PcrConfig * config)
{
  static const gchar *const file[] = { "audioconvert", "audioresample",
    "filesink", NULL
  };
  static const gchar *const alsa[] = { "alsasink", NULL };
  const gchar *const *needed;
  g_autoptr (GPtrArray) missing = g_ptr_array_new ();
  g_autofree gchar *list = NULL;
  g_autofree gchar *message = NULL;
  guint i;

  if (g_str_equal (config->talkback, "none"))
    return TRUE;
  needed = g_str_has_prefix (config->talkback, "file:") ? file : alsa;
  for (i = 0; needed[i] != NULL; i++) {
    g_autoptr (GstElementFactory) factory =
        gst_element_factory_find (needed[i]);

    if (factory == NULL)
      g_ptr_array_add (missing, (gpointer) needed[i]);
  }
  if (missing->len == 0)
    return TRUE;
  g_ptr_array_add (missing, NULL);
  list = pcr_describe_missing_elements ((const gchar * const *)
      missing->pdata);
  message = g_strdup_printf ("talkback %s needs elements that are not "
      "installed: %s", config->talkback, list);
  pcr_print_error (PROGRAM, message);
  return FALSE;
}

static gint
run (const PcrConfig * config, gboolean print_pipeline)
{
  g_autoptr (PcrSelection) selection = NULL;
  g_autoptr (PcrService) service = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (PcrPlatform) platform = NULL;
  g_autofree gchar *description = NULL;
  /* device probes only when the source is to be found */
  gboolean devices = config->pipeline == NULL &&
      (g_str_equal (config->source, "auto") ||
      g_str_equal (config->source, "v4l2") ||
      g_str_equal (config->source, "libcamera"));

  if (config->pipeline != NULL && !g_str_equal (config->source, "auto"))
    g_message ("source %s ignored: the pipeline is given", config->source);
  if (config->pipeline != NULL && !g_str_equal (config->audio, "auto"))
    g_message ("audio %s ignored: the pipeline is given (audio there: "
        "\"... ! opusenc ! sink.sink_audio\")", config->audio);
  platform = pcr_platform_probe_full (devices);
  /* auto audio: the microphone of a V4L2 camera */
  if (config->pipeline == NULL && g_str_equal (config->audio, "auto") &&
      (g_str_equal (config->source, "auto") ||
          g_str_has_prefix (config->source, "v4l2")))
    pcr_platform_probe_microphones (platform);
  description = pcr_select_pipeline (config, platform, &selection, &error);
  if (description == NULL) {
    pcr_print_error (PROGRAM, error->message);
    return PCR_EXIT_BAD_CONFIG;
  }
  if (selection != NULL) {
    g_message ("source: %s", selection->source_reason);
    g_message ("encoder: %s", selection->encoder_reason);
    g_message ("renditions: %s", selection->low_reason);
    g_message ("still images: %s", selection->snapshot_reason);
    g_message ("audio: %s", selection->audio_reason);
  }
  if (config->pipeline != NULL &&
      g_file_test (config->pipeline, G_FILE_TEST_IS_REGULAR))
    g_message ("pipeline file: %s", config->pipeline);
  if (print_pipeline) {
    g_print ("%s\n", description);
    return EXIT_SUCCESS;
  }
  g_message ("pipeline: %s", description);

  if (!check_own_element ("mqttwebrtcsink") ||
      (config->latency_stamp && !check_own_element ("latencystamp")) ||
      !check_talkback_elements (config))
    return PCR_EXIT_BAD_CONFIG;

  service = pcr_service_new (config, description, &error);
  if (service == NULL) {
    pcr_print_error (PROGRAM, error->message);
    return g_error_matches (error, PCR_SERVICE_ERROR,
        PCR_SERVICE_ERROR_STATE) ? EXIT_FAILURE : PCR_EXIT_BAD_CONFIG;
  }
  g_message ("device %s on %s", config->device, config->broker);
  return pcr_service_run (service);
}

int
main (int argc, char **argv)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrSettings) settings = pcr_config_settings_new (config);
  g_autoptr (GOptionContext) ctx = NULL;
  gboolean print_pipeline = FALSE;
  gboolean check = FALSE;
  const GOptionEntry extra[] = {
    {"print-pipeline", 0, 0, G_OPTION_ARG_NONE, &print_pipeline,
        "Print the pipeline description and exit", NULL},
    {"check", 0, 0, G_OPTION_ARG_NONE, &check,
          "Check cameras, encoders, the pipeline, the broker and the clock "
          "for this configuration, print the findings and exit (0: ready "
          "to stream, 1: not ready)", NULL},
    {NULL}
  };
  gint ret;

#ifdef __GLIBC__
  /* Every viewer brings short-lived threads; glibc would give them up to
   * 8 arenas per core, each keeping freed memory. Two arenas hold the RSS
   * of a long-running camera flat across thousands of viewers. */
  mallopt (M_ARENA_MAX, 2);
#endif

  ctx = pcr_settings_option_context_new (settings,
      "- stream a camera to browsers over WebRTC", "Signalling goes over "
      "MQTT; the camera runs while someone watches.\nExit status: 0 "
      "stopped, 1 run-time failure, 2 bad option, config or missing "
      "element; with --check 0 ready, 1 not ready.", extra);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  g_option_context_set_strict_posix (ctx, FALSE);
  ret = pcr_settings_run_command_line (settings, ctx, PROGRAM, &argc, &argv);
  if (ret >= 0)
    return ret;

  if (check && print_pipeline) {
    pcr_print_error (PROGRAM, "--check and --print-pipeline exclude each "
        "other");
    return PCR_EXIT_BAD_CONFIG;
  }
  ret = check ? pcr_check_run (config) : run (config, print_pipeline);
  gst_deinit ();
  return ret;
}
