/* picamrtc --check: the same configuration as a normal run (config file and
 * options), checked instead of run. The cameras and encoders come from the
 * probe the service uses and the pipeline from its selection
 * (pcr_select_pipeline()), parsed but never set beyond NULL, so no camera
 * is opened. The broker gets one connection with the service's MQTT options
 * but its own client id, no will and no publish, so a service running with
 * the same device id keeps its connection and its retained status. Every
 * wait is bounded: the whole check takes under 10 s. */
#include "pcr-check.h"

#include <stdlib.h>
#include <string.h>

#include <gio/gio.h>
#include <gst/gst.h>

#include "config.h"
#include "pcr-janus.h"
#include "pcr-mqtt.h"
#include "pcr-packages.h"
#include "pcr-quote.h"
#include "pcr-select.h"

GST_DEBUG_CATEGORY_STATIC (pcr_check_debug);
#define GST_CAT_DEFAULT pcr_check_debug

/* Seconds since 1970 of this build (meson: SOURCE_DATE_EPOCH, else the
 * last commit's date); a clock before it is certainly wrong. */
#ifndef PCR_BUILD_EPOCH
#define PCR_BUILD_EPOCH 0
#endif

/* timedatectl asks systemd-timedated over D-Bus, which can hang */
#define NTP_TIMEOUT_MS 1500

/* One finding: its label in a column, then the text. */
static void print_line (const gchar * label, const gchar * format, ...)
    G_GNUC_PRINTF (2, 3);

static void
print_line (const gchar * label, const gchar * format, ...)
{
  g_autofree gchar *text = NULL;
  g_autofree gchar *head = g_strdup_printf ("%s:", label);
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  g_print ("%-11s %s\n", head, text);
}

/* ---- broker ------------------------------------------------------------ */

typedef enum
{
  BROKER_WAITING,
  BROKER_OK,
  BROKER_FAILED,
} BrokerState;

typedef struct
{
  GMainLoop *loop;
  const gchar *uri;
  BrokerState state;
  gchar *error;                 /* the MQTT client's one-line reason */
  gint64 start;                 /* monotonic, µs */
} BrokerCheck;

static void
broker_finish (BrokerCheck * check, BrokerState state, const gchar * error)
{
  if (check->state != BROKER_WAITING)
    return;
  check->state = state;
  check->error = g_strdup (error);
  g_main_loop_quit (check->loop);
}

static void
on_broker_connection (PcrMqtt * mqtt, gboolean connected,
    gpointer user_data)
{
  if (connected)
    broker_finish (user_data, BROKER_OK, NULL);
}

static void
on_broker_error (PcrMqtt * mqtt, const gchar * message, gpointer user_data)
{
  broker_finish (user_data, BROKER_FAILED, message);
}

static gboolean
on_broker_timeout (gpointer user_data)
{
  BrokerCheck *check = user_data;
  g_autofree gchar *text = g_strdup_printf ("no answer from %s within %d s",
      check->uri, PCR_CHECK_BROKER_TIMEOUT_MS / 1000);

  broker_finish (user_data, BROKER_FAILED, text);
  return G_SOURCE_REMOVE;
}

/* One word for what went wrong, from the client's message: a CONNACK
 * refusal (libmosquitto's "Connection Refused: ..."), TLS, silence, or no
 * connection at all. */
static const gchar *
broker_failure_kind (const gchar * message)
{
  if (strstr (message, "no answer") != NULL)
    return "no answer";
  if (strstr (message, "Connection Refused:") != NULL)
    return "refused";
  if (strstr (message, "TLS") != NULL || strstr (message, "SSL") != NULL ||
      strstr (message, "certificate") != NULL)
    return "TLS error";
  return "unreachable";
}

/* Starts one connection with the service's options on @context; the result
 * arrives in @check. */
static PcrMqtt *
broker_start (const PcrConfig * config, GMainContext * context,
    BrokerCheck * check)
{
  static const PcrMqttCallbacks callbacks = { on_broker_connection, NULL,
    on_broker_error
  };
  g_autofree gchar *client_id = g_strdup_printf ("picamrtc-check-%08x",
      g_random_int ());
  g_autoptr (GError) error = NULL;
  g_autoptr (PcrMqtt) mqtt = NULL;
  PcrMqttOptions options;

  /* a client id of its own: the broker would drop the service's
   * connection for a second one with its id; no will, nothing published */
  pcr_config_mqtt_options (config, &options);
  options.client_id = client_id;
  check->start = g_get_monotonic_time ();
  mqtt = pcr_mqtt_new (&options, context, &callbacks, check, &error);
  if (mqtt == NULL || !pcr_mqtt_start (mqtt, &error)) {
    g_autofree gchar *text = g_strdup_printf ("cannot use the settings "
        "of %s: %s", config->broker, error->message);

    check->state = BROKER_FAILED;
    check->error = g_steal_pointer (&text);
    return NULL;
  }
  return g_steal_pointer (&mqtt);
}

/* Waits for the result until PCR_CHECK_BROKER_TIMEOUT_MS after the start,
 * prints it; TRUE when the broker took the connection. */
static gboolean
broker_report (const PcrConfig * config, GMainContext * context,
    BrokerCheck * check)
{
  g_autofree gchar *how = NULL;
  g_autofree gchar *user = NULL;
  gboolean tls = FALSE;

  if (check->state == BROKER_WAITING) {
    gint64 left = check->start / 1000 + PCR_CHECK_BROKER_TIMEOUT_MS -
        g_get_monotonic_time () / 1000;
    GSource *timeout = g_timeout_source_new (MAX (left, 0));

    g_source_set_callback (timeout, on_broker_timeout, check, NULL);
    g_source_attach (timeout, context);
    g_main_loop_run (check->loop);
    g_source_destroy (timeout);
    g_source_unref (timeout);
  }
  GST_INFO ("broker: %s", check->state == BROKER_OK ? "ok" : check->error);
  pcr_mqtt_parse_uri (config->broker, NULL, NULL, &tls, NULL);
  if (config->username != NULL)
    user = pcr_quote_untrusted (config->username, PCR_QUOTE_MAX_VALUE);
  how = g_strdup_printf ("%s%s, %s%s", user ? "user " : "anonymous",
      user ? user : "", tls ? "TLS with " : "no TLS", !tls ? "" :
      config->ca_file ? config->ca_file : "the system's CAs");
  if (check->state == BROKER_OK) {
    print_line ("broker", "ok, %s accepted the connection (%s)",
        config->broker, how);
    return TRUE;
  }
  /* the client's message names the host and port */
  print_line ("broker", "%s, %s (%s)", broker_failure_kind (check->error),
      check->error, how);
  return FALSE;
}

/* ---- cameras, encoders, pipeline --------------------------------------- */

static void
report_cameras (const PcrPlatform * platform)
{
  g_autoptr (GString) text = g_string_new (NULL);
  guint i;

  for (i = 0; i < platform->cameras->len; i++)
    g_string_append_printf (text, "%s%s", i > 0 ? "; " : "",
        (const gchar *) g_ptr_array_index (platform->cameras, i));
  if (text->len == 0)
    g_string_append (text, "none found");
  if (!pcr_platform_has_element (platform, "libcamerasrc"))
    g_string_append_printf (text, " (libcamerasrc is not installed: %s)",
        pcr_debian_package_for_element ("libcamerasrc"));
  print_line ("cameras", "%s", text->str);
}

static void
report_encoders (const PcrPlatform * platform)
{
  static const gchar *encoders[] = { "v4l2h264enc", "x264enc",
    "openh264enc"
  };
  g_autoptr (GString) found = g_string_new (NULL);
  guint i;

  for (i = 0; i < G_N_ELEMENTS (encoders); i++) {
    if (pcr_platform_has_element (platform, encoders[i]))
      g_string_append_printf (found, "%s%s", found->len > 0 ? ", " : "",
          encoders[i]);
  }
  if (found->len == 0)
    g_string_append (found, "none");
  /* the V4L2 plugin only registers v4l2h264enc where the kernel has one */
  if (!pcr_platform_has_element (platform, "v4l2h264enc"))
    g_string_append (found, " (no v4l2h264enc: no hardware encoder)");
  print_line ("encoders", "%s", found->str);
}

/* Builds the pipeline as the service would and lets it go again. */
static gboolean
parse_pipeline (const gchar * description, gchar ** why)
{
  g_autoptr (GstParseContext) context = gst_parse_context_new ();
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) missing = NULL;
  GstElement *pipeline;

  pipeline = gst_parse_launch_full (description, context,
      GST_PARSE_FLAG_FATAL_ERRORS, &error);
  if (pipeline != NULL) {
    gst_object_ref_sink (pipeline);
    gst_element_set_state (pipeline, GST_STATE_NULL);
    gst_object_unref (pipeline);
    return TRUE;
  }
  missing = gst_parse_context_get_missing_elements (context);
  if (missing != NULL && missing[0] != NULL) {
    g_autofree gchar *list = pcr_describe_missing_elements ((const gchar *
            const *) missing);

    *why = g_strdup_printf ("elements missing: %s", list);
  } else {
    *why = g_strdup (error ? error->message : "unknown error");
  }
  return FALSE;
}

/* Prints source, encoder and pipeline lines; TRUE when it parses. */
static gboolean
report_pipeline (const PcrConfig * config, const PcrPlatform * platform)
{
  g_autoptr (PcrSelection) selection = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *description = NULL;
  g_autofree gchar *why = NULL;

  description = pcr_select_pipeline (config, platform, &selection, &error);
  if (selection != NULL) {
    print_line ("source", "%s", selection->source_reason);
    print_line ("encoder", "%s", selection->encoder_reason);
    print_line ("renditions", "%s", selection->low_reason);
    print_line ("still images", "%s", selection->snapshot_reason);
    print_line ("audio", "%s", selection->audio_reason);
  } else if (description != NULL) {
    print_line ("source", "as the pipeline setting says");
  }
  if (description == NULL) {
    print_line ("pipeline", "FAILED, %s", error->message);
    return FALSE;
  }
  if (!parse_pipeline (description, &why)) {
    print_line ("pipeline", "FAILED, does not parse (%s): %s", why,
        description);
    return FALSE;
  }
  print_line ("pipeline", "ok, parses: %s", description);
  return TRUE;
}

/* ---- clock ------------------------------------------------------------- */

typedef struct
{
  GMainLoop *loop;
  gchar *out;
} NtpQuery;

static void
on_ntp_done (GObject * source, GAsyncResult * result, gpointer user_data)
{
  NtpQuery *query = user_data;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result,
      &query->out, NULL, NULL);
  g_main_loop_quit (query->loop);
}

static gboolean
on_ntp_timeout (gpointer user_data)
{
  g_cancellable_cancel (user_data);
  return G_SOURCE_REMOVE;
}

/* "yes", "no", or NULL when timedatectl does not answer in time (no
 * systemd, a container, not installed). */
static const gchar *
ntp_synchronised (GMainContext * context)
{
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GMainLoop) loop = g_main_loop_new (context, FALSE);
  g_autofree gchar *out = NULL;
  NtpQuery query = { loop, NULL };
  GSource *timeout;

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
      G_SUBPROCESS_FLAGS_STDERR_SILENCE, NULL, "timedatectl", "show", "-p",
      "NTPSynchronized", NULL);
  if (proc == NULL)
    return NULL;
  timeout = g_timeout_source_new (NTP_TIMEOUT_MS);
  g_source_set_callback (timeout, on_ntp_timeout, cancellable, NULL);
  g_source_attach (timeout, context);
  g_subprocess_communicate_utf8_async (proc, NULL, cancellable, on_ntp_done,
      &query);
  g_main_loop_run (loop);
  g_source_destroy (timeout);
  g_source_unref (timeout);
  out = query.out;
  if (g_cancellable_is_cancelled (cancellable)) {
    g_subprocess_force_exit (proc);
    g_subprocess_wait (proc, NULL, NULL);
    return NULL;
  }
  if (!g_subprocess_get_if_exited (proc) ||
      g_subprocess_get_exit_status (proc) != 0 || out == NULL)
    return NULL;
  if (g_str_has_prefix (out, "NTPSynchronized=yes"))
    return "yes";
  if (g_str_has_prefix (out, "NTPSynchronized=no"))
    return "no";
  return NULL;
}

/* TRUE when the clock is not before this build. */
static gboolean
report_clock (GMainContext * context)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autoptr (GDateTime) built = g_date_time_new_from_unix_utc
      (PCR_BUILD_EPOCH);
  g_autofree gchar *now_text = g_date_time_format (now, "%F %T UTC");
  g_autofree gchar *built_text = g_date_time_format (built, "%F");
  const gchar *ntp = ntp_synchronised (context);
  const gchar *ntp_text = ntp == NULL ? "NTP state unknown (timedatectl did "
      "not answer)" : g_str_equal (ntp, "yes") ? "NTP synchronised" :
      "NTP not synchronised yet";
  gboolean sane = g_date_time_to_unix (now) >= PCR_BUILD_EPOCH;

  if (sane)
    print_line ("clock", "ok, %s (built %s); %s", now_text, built_text,
        ntp_text);
  else
    print_line ("clock", "WRONG, %s is before this build (%s): TLS and TURN "
        "credentials fail until NTP sets the time; %s", now_text, built_text,
        ntp_text);
  return sane;
}

/* ---- the relay ---------------------------------------------------------- */

typedef struct
{
  GMainLoop *loop;
  gchar *error;
  gboolean done;
} RelayCheck;

static void
on_relay_connected (PcrJanus * janus, JsonObject * reply, const GError * error,
    gpointer user_data)
{
  RelayCheck *check = user_data;

  check->done = TRUE;
  check->error = error ? g_strdup (error->message) : NULL;
  g_main_loop_quit (check->loop);
}

static gboolean
on_relay_timeout (gpointer user_data)
{
  RelayCheck *check = user_data;

  if (!check->done) {
    check->error = g_strdup ("no answer within 5 s");
    g_main_loop_quit (check->loop);
  }
  return G_SOURCE_REMOVE;
}

/* Janus answers and has the VideoRoom plugin: a session and a handle made
 * and destroyed. Not being able to is no reason not to stream: the camera
 * serves its viewers directly meanwhile. */
static void
report_relay (const PcrConfig * config, GMainContext * context)
{
  g_autofree gchar *base = NULL, *adminkey = NULL, *apisecret = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  g_autoptr (GSource) timeout = NULL;
  RelayCheck check = { 0 };
  PcrJanus *janus;
  guint64 room;

  if (config->relay == NULL)
    return;
  if (!pcr_janus_parse_url (config->relay, &base, &room, &adminkey,
          &apisecret, &error)) {
    print_line ("relay", "WRONG: %s", error->message);
    return;
  }
  loop = g_main_loop_new (context, FALSE);
  check.loop = loop;
  janus = pcr_janus_new (base, apisecret, NULL, NULL, NULL);
  pcr_janus_connect (janus, "janus.plugin.videoroom", on_relay_connected,
      &check);
  timeout = g_timeout_source_new_seconds (5);
  g_source_set_callback (timeout, on_relay_timeout, &check, NULL);
  g_source_attach (timeout, context);
  g_main_loop_run (loop);
  g_source_destroy (timeout);
  pcr_janus_free (janus);
  pcr_janus_wait_destroyed (context, 1000);
  if (check.error)
    print_line ("relay", "UNREACHABLE, %s: %s; viewers would be served "
        "directly", base, check.error);
  else
    print_line ("relay", "ok, Janus at %s answers, with its VideoRoom", base);
  g_free (check.error);
}

/* ---- all of it --------------------------------------------------------- */

gint
pcr_check_run (const PcrConfig * config)
{
  g_autoptr (GMainContext) context = g_main_context_new ();
  g_autoptr (GMainLoop) loop = g_main_loop_new (context, FALSE);
  g_autoptr (PcrPlatform) platform = NULL;
  g_autoptr (PcrMqtt) mqtt = NULL;
  g_autoptr (GString) problems = g_string_new (NULL);
  BrokerCheck broker = { 0 };
  gboolean pipeline_ok, broker_ok, clock_ok, test_pattern;

  g_return_val_if_fail (config != NULL, EXIT_FAILURE);

  broker.loop = loop;
  broker.uri = config->broker;
  broker.state = BROKER_WAITING;

  GST_DEBUG_CATEGORY_INIT (pcr_check_debug, "pcrcheck", 0,
      "picamrtc --check");
  g_main_context_push_thread_default (context);
  g_print ("picamrtc %s: checking device %s on %s\n", VERSION,
      config->device, config->broker);

  /* the broker connects on its own thread meanwhile */
  mqtt = broker_start (config, context, &broker);
  /* every camera, even when the source is set, for the list */
  platform = pcr_platform_probe_full (TRUE);
  if (config->pipeline == NULL && g_str_equal (config->audio, "auto"))
    pcr_platform_probe_microphones (platform);
  report_cameras (platform);
  report_encoders (platform);
  pipeline_ok = report_pipeline (config, platform);
  broker_ok = broker_report (config, context, &broker);
  /* a clean DISCONNECT: nothing was published, no will is left */
  g_clear_pointer (&mqtt, pcr_mqtt_free);
  clock_ok = report_clock (context);
  report_relay (config, context);
  g_main_context_pop_thread_default (context);
  g_free (broker.error);

  if (!pipeline_ok)
    g_string_append (problems, "the pipeline cannot run");
  if (!broker_ok)
    g_string_append_printf (problems, "%sthe broker does not take the "
        "connection%s", problems->len > 0 ? "; " : "", clock_ok ? "" :
        " (the clock is wrong: set it first)");
  if (problems->len > 0) {
    g_print ("not ready: %s\n", problems->str);
    return EXIT_FAILURE;
  }
  test_pattern = config->pipeline == NULL &&
      g_str_equal (config->source, "auto") && platform->cameras->len == 0;
  g_print ("ready: picamrtc would stream with this configuration%s%s\n",
      test_pattern ? " (the test pattern: no camera found)" : "",
      clock_ok ? "" : " (but see the clock)");
  return EXIT_SUCCESS;
}
