/* A small MQTT client over libmosquitto that delivers its events on a
 * GMainContext of the owner's choosing: the network runs on a thread of its
 * own, which only copies the data and posts it. After any failure (refused,
 * lost, TLS, bad credentials) it retries with capped exponential backoff
 * and random jitter (waits of 0.5-1 s, 1-2 s, then 1.25-2.5 s) and calls
 * on_connection again, so subscriptions made there survive a broker
 * restart. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS
#define PCR_MQTT_ERROR (pcr_mqtt_error_quark ())
    GQuark pcr_mqtt_error_quark (void);

typedef struct _PcrMqtt PcrMqtt;

typedef struct
{
  /* connected (TRUE) or lost (FALSE); subscribe when TRUE. */
  void (*on_connection) (PcrMqtt * mqtt, gboolean connected,
      gpointer user_data);
  /* one message; payload is not NUL-terminated, may be empty */
  void (*on_message) (PcrMqtt * mqtt, const gchar * topic, GBytes * payload,
      gpointer user_data);
  /* nullable: a connection attempt failed or the connection broke, in one
   * line ("cannot connect to broker.lan:8883: A TLS error occurred."); each
   * distinct failure once until a connection succeeds. It keeps retrying. */
  void (*on_error) (PcrMqtt * mqtt, const gchar * message, gpointer user_data);
} PcrMqttCallbacks;

typedef struct
{
  const gchar *uri;             /* mqtt://host[:1883] or mqtts://host[:8883] */
  const gchar *client_id;       /* nullable: random */
  const gchar *username;        /* nullable */
  const gchar *password;        /* nullable */
  const gchar *ca_file;         /* nullable; mqtts:// without it uses the
                                 * system CA store */
  const gchar *cert_file;       /* nullable: a client certificate (PEM,
                                 * chain allowed), mqtts:// only */
  const gchar *key_file;        /* its private key (PEM, no passphrase);
                                 * set with cert_file or not at all */
  const gchar *will_topic;      /* nullable */
  const gchar *will_payload;    /* retained will */
  gint keepalive;               /* seconds; 0 = 30 */
} PcrMqttOptions;

/* Validates the URI and options (a client certificate and key must both be
 * readable PEM files that belong together); the callbacks run on @context
 * (NULL = the thread-default context at call time), never on libmosquitto's
 * thread. */
PcrMqtt *pcr_mqtt_new (const PcrMqttOptions * options,
    GMainContext * context, const PcrMqttCallbacks * callbacks,
    gpointer user_data, GError ** error);

/* Starts the network thread, which connects and retries until it works. */
gboolean pcr_mqtt_start (PcrMqtt * mqtt, GError ** error);

/* Thread-safe; QoS 1. FALSE (with a warning) when not connected. */
gboolean pcr_mqtt_publish (PcrMqtt * mqtt, const gchar * topic,
    const void *payload, gsize len, gboolean retain);
gboolean pcr_mqtt_subscribe (PcrMqtt * mqtt, const gchar * pattern);
gboolean pcr_mqtt_unsubscribe (PcrMqtt * mqtt, const gchar * pattern);
gboolean pcr_mqtt_is_connected (PcrMqtt * mqtt);

/* Disconnects cleanly (no last will), joins the thread. Waits up to
 * @flush_ms for queued publishes to go out first. */
void pcr_mqtt_stop (PcrMqtt * mqtt, guint flush_ms);

/* Stops if needed and frees; no callback runs after this returns. Callbacks
 * run without any lock of the client held, so one may call this too. */
void pcr_mqtt_free (PcrMqtt * mqtt);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrMqtt, pcr_mqtt_free)
/* Splits mqtt://host:port; *tls is TRUE for mqtts://. */
     gboolean pcr_mqtt_parse_uri (const gchar * uri, gchar ** host, gint * port,
    gboolean * tls, GError ** error);

G_END_DECLS
