/* PcrSignaller, the interface between mqttwebrtcsink's sessions and the
 * viewers' signalling, and PcrMqttSignaller, its MQTT implementation: the
 * topics P/D/in/S, P/D/out/S and the retained P/D/status with its last will
 * (docs/signalling.md), messages through the codec of lib/pcr-message.
 * libmosquitto's thread never reaches this file: lib/pcr-mqtt posts every
 * event to the context given to start(). */
#include "config.h"

#include "pcr-signaller.h"

#include <string.h>
#include <gst/gst.h>

#include "pcr-mqtt.h"
#include "pcr-settings.h"

GST_DEBUG_CATEGORY_STATIC (pcr_signaller_debug);
#define GST_CAT_DEFAULT pcr_signaller_debug

/* *INDENT-OFF* */
G_DEFINE_QUARK (pcr-signaller-error-quark, pcr_signaller_error);
G_DEFINE_INTERFACE (PcrSignaller, pcr_signaller, G_TYPE_OBJECT);
/* *INDENT-ON* */

static void
pcr_signaller_default_init (PcrSignallerInterface * iface)
{
}

gboolean
pcr_signaller_start (PcrSignaller * self, GMainContext * context,
    const PcrSignallerCallbacks * callbacks, gpointer user_data,
    const PcrStatus * offline, GError ** error)
{
  g_return_val_if_fail (PCR_IS_SIGNALLER (self), FALSE);
  g_return_val_if_fail (context != NULL && callbacks != NULL, FALSE);

  return PCR_SIGNALLER_GET_IFACE (self)->start (self, context, callbacks,
      user_data, offline, error);
}

void
pcr_signaller_stop (PcrSignaller * self, const PcrStatus * offline)
{
  g_return_if_fail (PCR_IS_SIGNALLER (self));

  PCR_SIGNALLER_GET_IFACE (self)->stop (self, offline);
}

void
pcr_signaller_send (PcrSignaller * self, const gchar * session_id,
    const PcrMessage * msg)
{
  g_return_if_fail (PCR_IS_SIGNALLER (self));
  g_return_if_fail (session_id != NULL && msg != NULL);

  PCR_SIGNALLER_GET_IFACE (self)->send (self, session_id, msg);
}

void
pcr_signaller_publish_status (PcrSignaller * self, const PcrStatus * status)
{
  g_return_if_fail (PCR_IS_SIGNALLER (self));
  g_return_if_fail (status != NULL);

  PCR_SIGNALLER_GET_IFACE (self)->publish_status (self, status);
}

void
pcr_signaller_publish_metrics (PcrSignaller * self,
    const PcrMetrics * metrics)
{
  PcrSignallerInterface *iface;

  g_return_if_fail (PCR_IS_SIGNALLER (self));
  g_return_if_fail (metrics != NULL);

  iface = PCR_SIGNALLER_GET_IFACE (self);
  if (iface->publish_metrics)
    iface->publish_metrics (self, metrics);
}

void
pcr_signaller_publish_control (PcrSignaller * self, const gchar * session_id,
    const gchar * data)
{
  PcrSignallerInterface *iface;

  g_return_if_fail (PCR_IS_SIGNALLER (self));
  g_return_if_fail (session_id != NULL && data != NULL);

  iface = PCR_SIGNALLER_GET_IFACE (self);
  if (iface->publish_control)
    iface->publish_control (self, session_id, data);
}

void
pcr_signaller_send_stats (PcrSignaller * self, const gchar * session_id,
    const PcrStats * stats)
{
  g_autoptr (PcrMessage) msg = NULL;

  g_return_if_fail (PCR_IS_SIGNALLER (self));
  g_return_if_fail (session_id != NULL && stats != NULL);

  msg = pcr_message_new_stats (stats);
  PCR_SIGNALLER_GET_IFACE (self)->send (self, session_id, msg);
}

/* ------------------------------------------------------------------------
 * PcrMqttSignaller
 * ------------------------------------------------------------------------ */

struct _PcrMqttSignaller
{
  GObject parent;

  /* set at construction, then read-only */
  gchar *broker_uri, *username, *password, *ca_file;
  gchar *cert_file, *key_file;
  gchar *prefix, *device;
  gchar *status_topic;
  gchar *metrics_topic;
  gchar *from_viewer_topic, *to_viewers_topic;  /* the control channel's */

  /* from start to stop, on the context */
  PcrMqtt *mqtt;
  PcrSignallerCallbacks callbacks;
  gpointer user_data;
};

static void pcr_mqtt_signaller_iface_init (PcrSignallerInterface * iface);

/* *INDENT-OFF* */
G_DEFINE_TYPE_WITH_CODE (PcrMqttSignaller, pcr_mqtt_signaller, G_TYPE_OBJECT,
    G_IMPLEMENT_INTERFACE (PCR_TYPE_SIGNALLER, pcr_mqtt_signaller_iface_init)
    GST_DEBUG_CATEGORY_INIT (pcr_signaller_debug, "pcrsignaller", 0,
        "mqttwebrtcsink's MQTT signalling"));
/* *INDENT-ON* */

static void
mqtt_send (PcrSignaller * signaller, const gchar * session_id,
    const PcrMessage * msg)
{
  PcrMqttSignaller *self = PCR_MQTT_SIGNALLER (signaller);
  g_autofree gchar *topic = NULL;
  g_autofree gchar *json = NULL;
  gsize len;

  if (!self->mqtt)
    return;
  topic = pcr_topic_build (self->prefix, self->device, "out", session_id);
  json = pcr_message_to_json (msg, &len);
  pcr_mqtt_publish (self->mqtt, topic, json, len, FALSE);
}

/* Publishes @json on @topic; dropped while not connected. */
static void
publish_if_connected (PcrMqttSignaller * self, const gchar * topic,
    const gchar * json, gsize len, gboolean retain)
{
  if (!self->mqtt || !pcr_mqtt_is_connected (self->mqtt))
    return;
  GST_DEBUG_OBJECT (self, "%s %s", topic, json);
  pcr_mqtt_publish (self->mqtt, topic, json, len, retain);
}

static void
mqtt_publish_status (PcrSignaller * signaller, const PcrStatus * status)
{
  PcrMqttSignaller *self = PCR_MQTT_SIGNALLER (signaller);
  gsize len;
  g_autofree gchar *json = pcr_status_to_json (status, &len);

  publish_if_connected (self, self->status_topic, json, len, TRUE);
}

static void
mqtt_publish_metrics (PcrSignaller * signaller, const PcrMetrics * metrics)
{
  PcrMqttSignaller *self = PCR_MQTT_SIGNALLER (signaller);
  gsize len;
  g_autofree gchar *json = pcr_metrics_to_json (metrics, &len);

  publish_if_connected (self, self->metrics_topic, json, len, FALSE);
}

static void
mqtt_publish_control (PcrSignaller * signaller, const gchar * session_id,
    const gchar * data)
{
  PcrMqttSignaller *self = PCR_MQTT_SIGNALLER (signaller);
  gsize len;
  g_autofree gchar *json = pcr_control_to_json (session_id, data, &len);

  publish_if_connected (self, self->from_viewer_topic, json, len, FALSE);
}

/* Anything a local program publishes for the viewers' control channels:
 * a bad payload is logged (rate-limited by the broker's own pace) and
 * dropped; there is nobody to answer. */
static void
on_control_message (PcrMqttSignaller * self, const gchar * payload, gsize len)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *session = NULL, *data = NULL;

  if (!pcr_control_parse (payload, len, &session, &data, &error)) {
    GST_WARNING_OBJECT (self, "%s: dropped: %s", self->to_viewers_topic,
        error->message);
    return;
  }
  self->callbacks.control (PCR_SIGNALLER (self), session, data,
      self->user_data);
}

static void
on_mqtt_message (PcrMqtt * mqtt, const gchar * topic, GBytes * payload,
    gpointer user_data)
{
  PcrMqttSignaller *self = user_data;
  g_autofree gchar *id = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (PcrMessage) msg = NULL;
  gsize len;
  const gchar *data = g_bytes_get_data (payload, &len);

  if (self->callbacks.control && strcmp (topic, self->to_viewers_topic) == 0) {
    on_control_message (self, data, len);
    return;
  }
  if (!pcr_topic_parse_session (topic, self->prefix, self->device, "in", &id)) {
    GST_DEBUG_OBJECT (self, "ignoring message on %s", topic);
    return;
  }
  if (!pcr_id_is_valid (id)) {
    GST_WARNING_OBJECT (self, "ignoring a message for an invalid session id "
        "(must match [A-Za-z0-9_-]{1,64})");
    return;
  }
  msg = pcr_message_parse (data, len, &error);
  if (!msg) {
    g_autoptr (PcrMessage) reply =
        pcr_message_new_error (PCR_ERROR_BAD_REQUEST, error->message);

    GST_WARNING_OBJECT (self, "session %s: bad-request: %s", id,
        error->message);
    mqtt_send (PCR_SIGNALLER (self), id, reply);
    return;
  }
  self->callbacks.message (PCR_SIGNALLER (self), id, msg, self->user_data);
}

static void
on_mqtt_connection (PcrMqtt * mqtt, gboolean connected, gpointer user_data)
{
  PcrMqttSignaller *self = user_data;
  g_autofree gchar *pattern = NULL;

  if (!connected) {
    GST_WARNING_OBJECT (self, "lost the broker; viewers keep their media");
    return;
  }
  /* Here, not once at start: a reconnect resubscribes. */
  pattern = g_strdup_printf ("%s/%s/in/+", self->prefix, self->device);
  pcr_mqtt_subscribe (mqtt, pattern);
  if (self->callbacks.control)
    pcr_mqtt_subscribe (mqtt, self->to_viewers_topic);
  self->callbacks.connected (PCR_SIGNALLER (self), self->user_data);
  GST_INFO_OBJECT (self, "connected to the broker, listening on %s", pattern);
}

static void
on_mqtt_error (PcrMqtt * mqtt, const gchar * message, gpointer user_data)
{
  PcrMqttSignaller *self = user_data;
  g_autofree gchar *text = g_strdup_printf ("MQTT: %s", message);

  self->callbacks.error (PCR_SIGNALLER (self), text, self->user_data);
}

static gboolean
mqtt_start (PcrSignaller * signaller, GMainContext * context,
    const PcrSignallerCallbacks * callbacks, gpointer user_data,
    const PcrStatus * offline, GError ** error)
{
  PcrMqttSignaller *self = PCR_MQTT_SIGNALLER (signaller);
  static const PcrMqttCallbacks mqtt_callbacks = { on_mqtt_connection,
    on_mqtt_message, on_mqtt_error
  };
  g_autofree gchar *will = pcr_status_to_json (offline, NULL);
  g_autoptr (GError) mqtt_error = NULL;
  PcrMqttOptions options = { 0 };

  g_return_val_if_fail (self->mqtt == NULL, FALSE);

  self->callbacks = *callbacks;
  self->user_data = user_data;
  options.uri = self->broker_uri;
  options.username = self->username;
  options.password = self->password;
  options.ca_file = self->ca_file;
  options.cert_file = self->cert_file;
  options.key_file = self->key_file;
  options.will_topic = self->status_topic;
  options.will_payload = will;
  self->mqtt = pcr_mqtt_new (&options, context, &mqtt_callbacks, self,
      &mqtt_error);
  if (!self->mqtt) {
    g_set_error (error, PCR_SIGNALLER_ERROR, PCR_SIGNALLER_ERROR_SETTINGS,
        "Cannot use the MQTT broker settings: %s", mqtt_error->message);
    return FALSE;
  }
  if (!pcr_mqtt_start (self->mqtt, &mqtt_error)) {
    g_set_error (error, PCR_SIGNALLER_ERROR, PCR_SIGNALLER_ERROR_START,
        "Cannot start the MQTT client: %s", mqtt_error->message);
    g_clear_pointer (&self->mqtt, pcr_mqtt_free);
    return FALSE;
  }
  return TRUE;
}

static void
mqtt_stop (PcrSignaller * signaller, const PcrStatus * offline)
{
  PcrMqttSignaller *self = PCR_MQTT_SIGNALLER (signaller);

  if (!self->mqtt)
    return;
  /* A clean disconnect sends no last will: say offline ourselves. */
  mqtt_publish_status (signaller, offline);
  pcr_mqtt_stop (self->mqtt, 1000);
  g_clear_pointer (&self->mqtt, pcr_mqtt_free);
}

static void
pcr_mqtt_signaller_iface_init (PcrSignallerInterface * iface)
{
  iface->start = mqtt_start;
  iface->stop = mqtt_stop;
  iface->send = mqtt_send;
  iface->publish_status = mqtt_publish_status;
  iface->publish_metrics = mqtt_publish_metrics;
  iface->publish_control = mqtt_publish_control;
}

/* Runs one of the shared validators of lib/pcr-settings.h, naming the
 * property the way the programs name their option. */
static gboolean
check_setting (const gchar * property, gboolean (*check) (const gchar *,
        GError **), const gchar * value, GError ** error)
{
  g_autoptr (GError) local = NULL;

  if (check (value, &local))
    return TRUE;
  g_set_error (error, PCR_SIGNALLER_ERROR, PCR_SIGNALLER_ERROR_SETTINGS,
      "%s: %s", property, local->message);
  return FALSE;
}

PcrMqttSignaller *
pcr_mqtt_signaller_new (const PcrMqttSignallerSettings * settings,
    GError ** error)
{
  g_autoptr (GError) local = NULL;
  PcrMqttSignaller *self;

  g_return_val_if_fail (settings != NULL, NULL);
  g_return_val_if_fail (settings->broker_uri != NULL, NULL);

  /* The same checks, and so the same messages, as picamrtc and
   * picamrtc-gateway give for --device, --topic-prefix and --broker. */
  if (!check_setting ("device-id", pcr_check_device_id,
          settings->device_id, error)
      || !check_setting ("topic-prefix", pcr_check_topic_prefix,
          settings->topic_prefix, error)
      || !check_setting ("broker-uri", pcr_check_broker_uri,
          settings->broker_uri, error))
    return NULL;
  if (!pcr_settings_check_client_cert (NULL, settings->broker_uri,
          settings->cert_file, settings->key_file, &local)) {
    g_set_error_literal (error, PCR_SIGNALLER_ERROR,
        PCR_SIGNALLER_ERROR_SETTINGS, local->message);
    return NULL;
  }
  self = g_object_new (PCR_TYPE_MQTT_SIGNALLER, NULL);
  self->broker_uri = g_strdup (settings->broker_uri);
  self->username = g_strdup (settings->username);
  self->password = g_strdup (settings->password);
  self->ca_file = g_strdup (settings->ca_file);
  self->cert_file = g_strdup (settings->cert_file);
  self->key_file = g_strdup (settings->key_file);
  self->prefix = g_strdup (settings->topic_prefix);
  self->device = g_strdup (settings->device_id);
  self->status_topic = pcr_topic_build (self->prefix, self->device, "status",
      NULL);
  self->metrics_topic = pcr_topic_build (self->prefix, self->device,
      "metrics", NULL);
  self->from_viewer_topic = pcr_topic_build (self->prefix, self->device,
      "control", "from-viewer");
  self->to_viewers_topic = pcr_topic_build (self->prefix, self->device,
      "control", "to-viewers");
  return self;
}

static void
pcr_mqtt_signaller_finalize (GObject * object)
{
  PcrMqttSignaller *self = PCR_MQTT_SIGNALLER (object);

  g_clear_pointer (&self->mqtt, pcr_mqtt_free);
  g_free (self->broker_uri);
  g_free (self->username);
  g_free (self->password);
  g_free (self->ca_file);
  g_free (self->cert_file);
  g_free (self->key_file);
  g_free (self->prefix);
  g_free (self->device);
  g_free (self->status_topic);
  g_free (self->metrics_topic);
  g_free (self->from_viewer_topic);
  g_free (self->to_viewers_topic);
  G_OBJECT_CLASS (pcr_mqtt_signaller_parent_class)->finalize (object);
}

static void
pcr_mqtt_signaller_init (PcrMqttSignaller * self)
{
}

static void
pcr_mqtt_signaller_class_init (PcrMqttSignallerClass * klass)
{
  G_OBJECT_CLASS (klass)->finalize = pcr_mqtt_signaller_finalize;
}
