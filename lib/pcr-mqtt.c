/* A libmosquitto client whose events arrive on the owner's GMainContext.
 * A thread of ours runs the network (mosquitto_loop, in threaded mode):
 * libmosquitto's own mosquitto_loop_start thread gives up for good after a
 * TLS error, and a camera must keep trying. libmosquitto's callbacks only
 * copy what they got and attach an idle source to the owner's context, so
 * the owner never sees a foreign thread. The state the posted events need
 * lives in a small refcounted block, so an event still queued when the
 * client is freed finds it marked dead and does nothing. */
#include "pcr-mqtt.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <glib/gstdio.h>
#include <gst/gst.h>

#include "pcr-quote.h"

GST_DEBUG_CATEGORY_STATIC (pcr_mqtt_debug);
#define GST_CAT_DEFAULT pcr_mqtt_debug

/* *INDENT-OFF* */
G_DEFINE_QUARK (pcr-mqtt-error-quark, pcr_mqtt_error);
/* *INDENT-ON* */

/* The backoff doubles from 1 s up to 2.5 s, and each wait is drawn at
 * random from its upper half: a fleet that lost the broker at the same
 * moment does not come back in step but spread over 2.5 s, and a device
 * is never more than 2.5 s late once the broker is back, so a viewer plays
 * within 5 s of it. A refused attempt every 1.9 s on average costs a
 * broker that is down nothing. */
#define RECONNECT_MIN_MS 1000
#define RECONNECT_MAX_MS 2500
/* A TLS attempt that fails without a reason is retried this soon, this many
 * times, before it is reported: see describe_failure(). */
#define UNCLEAR_RETRY_MS 200
#define UNCLEAR_RETRIES 3
#define DEFAULT_KEEPALIVE_S 30
/* An attempt with no CONNACK this long has failed: libmosquitto's async
 * connect does not report a refused or broken TLS handshake at all, and a
 * broker may accept TCP and never answer. */
#define CONNACK_TIMEOUT_US (5 * G_TIME_SPAN_SECOND)

/* What queued events share with the client; outlives it while events are
 * pending. */
typedef struct
{
  gint refcount;
  GMutex lock;
  GCond idle;                   /* signalled when a callback returns */
  gboolean dead;
  PcrMqtt *mqtt;
  PcrMqttCallbacks callbacks;
  gpointer user_data;
  GThread *dispatching;         /* the thread running a callback, or NULL */
  guint depth;                  /* callbacks it runs (nested main loops) */
} Shared;

struct _PcrMqtt
{
  struct mosquitto *mosq;
  GMainContext *context;
  Shared *shared;
  gchar *host;
  gint port;
  gint keepalive;
  gboolean tls;                 /* mqtts:// */
  gboolean has_cert;            /* a client certificate is offered */
  GThread *thread;

  GMutex lock;
  GCond cond;
  gboolean connected;
  gboolean stopping;
  guint inflight;               /* QoS 1 publishes not yet acknowledged */
  gchar *last_error;            /* reported once until a connection works */
  gboolean connack_refused;     /* this attempt's refusal already reported */
  gchar *tls_reason;            /* this attempt's first OpenSSL error */
  gchar *tls_failure;           /* the last TLS refusal described, until a
                                 * connection works */
};

typedef enum
{
  EVENT_CONNECTION,
  EVENT_MESSAGE,
  EVENT_ERROR,
} EventKind;

typedef struct
{
  Shared *shared;
  EventKind kind;
  gboolean connected;
  gchar *topic;                 /* message; error: the text */
  GBytes *payload;
} Event;

static Shared *
shared_ref (Shared * shared)
{
  g_atomic_int_inc (&shared->refcount);
  return shared;
}

static void
shared_unref (Shared * shared)
{
  if (g_atomic_int_dec_and_test (&shared->refcount)) {
    g_mutex_clear (&shared->lock);
    g_cond_clear (&shared->idle);
    g_free (shared);
  }
}

static void
event_free (Event * event)
{
  shared_unref (event->shared);
  g_free (event->topic);
  g_clear_pointer (&event->payload, g_bytes_unref);
  g_free (event);
}

/* Runs on the owner's context. What the callback needs is copied under the
 * lock and the callback runs without it, so it may publish, subscribe or
 * even free the client. pcr_mqtt_free() from another thread waits until
 * the callback has returned; no callback starts once it has begun. */
static gboolean
event_dispatch (gpointer data)
{
  Event *event = data;
  Shared *shared = event->shared;
  PcrMqttCallbacks cb;
  PcrMqtt *mqtt;
  gpointer user_data;

  g_mutex_lock (&shared->lock);
  if (shared->dead) {
    g_mutex_unlock (&shared->lock);
    return G_SOURCE_REMOVE;
  }
  cb = shared->callbacks;
  mqtt = shared->mqtt;
  user_data = shared->user_data;
  shared->dispatching = g_thread_self ();
  shared->depth++;
  g_mutex_unlock (&shared->lock);

  if (event->kind == EVENT_MESSAGE && cb.on_message)
    cb.on_message (mqtt, event->topic, event->payload, user_data);
  else if (event->kind == EVENT_CONNECTION && cb.on_connection)
    cb.on_connection (mqtt, event->connected, user_data);
  else if (event->kind == EVENT_ERROR && cb.on_error)
    cb.on_error (mqtt, event->topic, user_data);

  /* @shared is the event's reference: alive even if the client is not */
  g_mutex_lock (&shared->lock);
  if (--shared->depth == 0) {
    shared->dispatching = NULL;
    g_cond_broadcast (&shared->idle);
  }
  g_mutex_unlock (&shared->lock);
  return G_SOURCE_REMOVE;
}

static void
post_event (PcrMqtt * mqtt, Event * event)
{
  GSource *source = g_idle_source_new ();

  event->shared = shared_ref (mqtt->shared);
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, event_dispatch, event,
      (GDestroyNotify) event_free);
  g_source_attach (source, mqtt->context);
  g_source_unref (source);
}

/* Tells the owner about a failure, once until a connection succeeds. */
static void
report_error (PcrMqtt * mqtt, const gchar * what)
{
  g_autofree gchar *text = g_strdup_printf ("%s %s:%d: %s",
      mqtt->connected ? "lost the broker" : "cannot connect to", mqtt->host,
      mqtt->port, what);
  gboolean repeated;
  Event *event;

  g_mutex_lock (&mqtt->lock);
  repeated = g_strcmp0 (mqtt->last_error, text) == 0;
  if (!repeated) {
    g_free (mqtt->last_error);
    mqtt->last_error = g_strdup (text);
  }
  g_mutex_unlock (&mqtt->lock);
  if (repeated)
    return;
  GST_WARNING ("%s; retrying", text);
  event = g_new0 (Event, 1);
  event->kind = EVENT_ERROR;
  event->topic = g_steal_pointer (&text);
  post_event (mqtt, event);
}

static void
on_connect (struct mosquitto *mosq, void *obj, int rc)
{
  PcrMqtt *mqtt = obj;
  Event *event;

  if (rc != 0) {
    report_error (mqtt, mosquitto_connack_string (rc));
    g_mutex_lock (&mqtt->lock);
    mqtt->connack_refused = TRUE;
    g_mutex_unlock (&mqtt->lock);
    return;
  }
  GST_INFO ("connected to %s:%d", mqtt->host, mqtt->port);
  g_mutex_lock (&mqtt->lock);
  mqtt->connected = TRUE;
  g_clear_pointer (&mqtt->last_error, g_free);
  g_clear_pointer (&mqtt->tls_failure, g_free);
  g_mutex_unlock (&mqtt->lock);

  event = g_new0 (Event, 1);
  event->kind = EVENT_CONNECTION;
  event->connected = TRUE;
  post_event (mqtt, event);
}

static void
on_disconnect (struct mosquitto *mosq, void *obj, int rc)
{
  PcrMqtt *mqtt = obj;
  Event *event;
  gboolean was_connected;

  g_mutex_lock (&mqtt->lock);
  was_connected = mqtt->connected;
  mqtt->connected = FALSE;
  mqtt->inflight = 0;
  g_cond_broadcast (&mqtt->cond);
  g_mutex_unlock (&mqtt->lock);

  /* rc 0: we asked for it (pcr_mqtt_stop); nobody needs telling. */
  if (!was_connected || rc == 0)
    return;
  GST_WARNING ("lost the broker %s:%d (%s); reconnecting", mqtt->host,
      mqtt->port, mosquitto_strerror (rc));
  event = g_new0 (Event, 1);
  event->kind = EVENT_CONNECTION;
  event->connected = FALSE;
  post_event (mqtt, event);
}

static void
on_publish (struct mosquitto *mosq, void *obj, int mid)
{
  PcrMqtt *mqtt = obj;

  g_mutex_lock (&mqtt->lock);
  if (mqtt->inflight > 0)
    mqtt->inflight--;
  g_cond_broadcast (&mqtt->cond);
  g_mutex_unlock (&mqtt->lock);
}

static void
on_message (struct mosquitto *mosq, void *obj,
    const struct mosquitto_message *message)
{
  PcrMqtt *mqtt = obj;
  Event *event = g_new0 (Event, 1);

  event->kind = EVENT_MESSAGE;
  event->topic = g_strdup (message->topic);
  event->payload = g_bytes_new (message->payload, message->payloadlen);
  post_event (mqtt, event);
}

/* libmosquitto tells what OpenSSL said only to its log ("OpenSSL Error[0]:
 * error:0A000418:SSL routines::tlsv1 alert unknown ca"); keep the first
 * reason of an attempt, the cause the others follow from. */
static void
on_log (struct mosquitto *mosq, void *obj, int level, const char *str)
{
  PcrMqtt *mqtt = obj;
  const gchar *reason;

  if (level != MOSQ_LOG_ERR || !g_str_has_prefix (str, "OpenSSL Error[0]: "))
    return;
  reason = strrchr (str, ':') + 1;
  g_mutex_lock (&mqtt->lock);
  if (mqtt->tls_reason == NULL)
    mqtt->tls_reason = pcr_quote_untrusted (reason, 128);
  g_mutex_unlock (&mqtt->lock);
}

/* What a failed attempt means, in words a user acts on. A TLS alert is the
 * broker's verdict on us (our certificate); a failed verification is ours
 * on the broker. @unclear is set when a TLS attempt ended without any
 * reason: a broker that refuses (or misses) our certificate after
 * the handshake (TLS 1.3 checks it then) sends an alert and closes, and
 * when the close wins the race (our CONNECT meets a reset) the alert is
 * never read; libmosquitto then says only EPROTO, "Protocol error". A
 * connection the broker @answered and then lost is not that. */
static gchar *
describe_failure (PcrMqtt * mqtt, gint rc, gboolean answered,
    gboolean * unclear)
{
  gint saved_errno = errno;
  g_autofree gchar *reason = NULL;
  gboolean bare;
  const gchar *what;
  gchar *text;

  *unclear = FALSE;
  bare = rc == MOSQ_ERR_PROTOCOL || rc == MOSQ_ERR_CONN_LOST ||
      (rc == MOSQ_ERR_ERRNO && (saved_errno == EPROTO ||
          saved_errno == EPIPE || saved_errno == ECONNRESET));
  g_mutex_lock (&mqtt->lock);
  reason = g_steal_pointer (&mqtt->tls_reason);
  /* The refusal seen less clearly: the same words, not reported again. */
  if (reason == NULL && bare && mqtt->tls_failure) {
    gchar *same = g_strdup (mqtt->tls_failure);

    g_mutex_unlock (&mqtt->lock);
    return same;
  }
  g_mutex_unlock (&mqtt->lock);
  if (reason == NULL && bare && mqtt->tls && !answered) {
    *unclear = TRUE;
    return g_strdup_printf ("the broker closed the TLS connection without "
        "a reason (%s its log says why)", mqtt->has_cert ?
        "did it refuse our client certificate?" :
        "does it want a client certificate (cert-file and key-file)?");
  }
  if (reason == NULL)
    return g_strdup (rc == MOSQ_ERR_ERRNO ? g_strerror (saved_errno) :
        mosquitto_strerror (rc));

  if (strstr (reason, "certificate verify failed"))
    what = "the broker's certificate is not signed by the CA in ca-file, "
        "names another host or has expired";
  else if (strstr (reason, "wrong version number"))
    what = "the port does not speak TLS (a plain mqtt:// listener?)";
  else if (!mqtt->has_cert && (strstr (reason, "certificate required")
          || strstr (reason, "handshake failure")))
    what = "the broker wants a client certificate: set cert-file and "
        "key-file";
  else if (mqtt->has_cert && strstr (reason, "alert")
      && (strstr (reason, "certificate") || strstr (reason, "unknown ca")
          || strstr (reason, "access denied")))
    what = "the broker refused our client certificate (cert-file is not "
        "signed by a CA the broker trusts, has expired or was revoked)";
  else
    what = "TLS failed";
  text = g_strdup_printf ("%s (OpenSSL: %s)", what, reason);
  g_mutex_lock (&mqtt->lock);
  g_free (mqtt->tls_failure);
  mqtt->tls_failure = g_strdup (text);
  g_mutex_unlock (&mqtt->lock);
  return text;
}

/* Reports why an attempt failed; TRUE when it failed without a reason
 * before the broker answered and is to be tried again at once (up to
 * UNCLEAR_RETRIES times in a row), since the next attempt usually reads the
 * broker's alert: one line that says what is wrong rather than a vague one
 * first. A connection that worked and was lost is reported as it is. */
static gboolean
report_failure (PcrMqtt * mqtt, gint rc, gboolean answered,
    guint * unclear_attempts)
{
  gboolean unclear;
  g_autofree gchar *why = describe_failure (mqtt, rc, answered, &unclear);

  if (unclear && *unclear_attempts < UNCLEAR_RETRIES) {
    GST_INFO ("%s; trying again to learn why", why);
    (*unclear_attempts)++;
    return TRUE;
  }
  if (!unclear)
    *unclear_attempts = 0;
  report_error (mqtt, why);
  return FALSE;
}

gboolean
pcr_mqtt_parse_uri (const gchar * uri, gchar ** host, gint * port,
    gboolean * tls, GError ** error)
{
  g_autoptr (GUri) parsed = NULL;
  const gchar *scheme;
  gboolean is_tls;
  gint p;

  g_return_val_if_fail (uri != NULL, FALSE);

  parsed = g_uri_parse (uri, G_URI_FLAGS_NONE, NULL);
  if (!parsed) {
    g_set_error (error, PCR_MQTT_ERROR, 0,
        "broker URI \"%s\" is not a URI (expected mqtt://host:port)", uri);
    return FALSE;
  }
  scheme = g_uri_get_scheme (parsed);
  if (g_ascii_strcasecmp (scheme, "mqtt") == 0 ||
      g_ascii_strcasecmp (scheme, "tcp") == 0) {
    is_tls = FALSE;
  } else if (g_ascii_strcasecmp (scheme, "mqtts") == 0 ||
      g_ascii_strcasecmp (scheme, "ssl") == 0) {
    is_tls = TRUE;
  } else {
    g_set_error (error, PCR_MQTT_ERROR, 0,
        "broker URI \"%s\" has scheme \"%s\"; use mqtt:// or mqtts://", uri,
        scheme);
    return FALSE;
  }
  if (!g_uri_get_host (parsed) || !*g_uri_get_host (parsed)) {
    g_set_error (error, PCR_MQTT_ERROR, 0, "broker URI \"%s\" has no host",
        uri);
    return FALSE;
  }
  p = g_uri_get_port (parsed);
  if (p <= 0)
    p = is_tls ? 8883 : 1883;
  if (host)
    *host = g_strdup (g_uri_get_host (parsed));
  if (port)
    *port = p;
  if (tls)
    *tls = is_tls;
  return TRUE;
}

static void
init_once (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done)) {
    mosquitto_lib_init ();
    GST_DEBUG_CATEGORY_INIT (pcr_mqtt_debug, "pcrmqtt", 0,
        "picamrtc MQTT client");
    g_once_init_leave (&done, 1);
  }
}

/* An encrypted key fails, rather than OpenSSL asking for its passphrase on
 * a terminal that a service does not have. */
static int
no_passphrase (char *buf, int size, int rwflag, void *user_data)
{
  return 0;
}

/* What libmosquitto checks only when it connects, and then reports as "A
 * TLS error occurred" on every attempt: the same OpenSSL calls at start,
 * so a bad certificate or key is one clear error instead. */
static gboolean
check_client_cert (const gchar * cert_file, const gchar * key_file,
    GError ** error)
{
  SSL_CTX *ctx = SSL_CTX_new (TLS_client_method ());
  const gchar *file = NULL, *problem = NULL, *unreadable = NULL;
  const gchar *reason;

  if (ctx == NULL) {
    g_set_error (error, PCR_MQTT_ERROR, 0, "cannot set up TLS (OpenSSL)");
    return FALSE;
  }
  SSL_CTX_set_default_passwd_cb (ctx, no_passphrase);
  ERR_clear_error ();
  /* a key only root may read is the usual mistake: say that, not "PEM" */
  if (g_access (cert_file, R_OK) != 0)
    file = cert_file;
  else if (g_access (key_file, R_OK) != 0)
    file = key_file;
  if (file != NULL) {
    unreadable = g_strerror (errno);
    problem = "cannot be read";
  } else if (SSL_CTX_use_certificate_chain_file (ctx, cert_file) != 1) {
    file = cert_file;
    problem = "is not a PEM certificate";
  } else if (SSL_CTX_use_PrivateKey_file (ctx, key_file,
          SSL_FILETYPE_PEM) != 1) {
    /* OpenSSL also refuses here a key of another certificate */
    file = key_file;
    problem = "is not the certificate's private key (PEM, without a "
        "passphrase)";
  } else if (SSL_CTX_check_private_key (ctx) != 1) {
    file = key_file;
    problem = "is not the certificate's private key";
  }
  if (problem != NULL) {
    g_autofree gchar *quoted = pcr_quote_untrusted (file,
        PCR_QUOTE_MAX_VALUE);
    const gchar *key = file == cert_file ? "cert-file" : "key-file";

    reason = ERR_reason_error_string (ERR_peek_error ());
    if (unreadable != NULL)
      g_set_error (error, PCR_MQTT_ERROR, 0, "%s \"%s\" cannot be read: %s",
          key, quoted, unreadable);
    else
      g_set_error (error, PCR_MQTT_ERROR, 0, "%s \"%s\" %s (OpenSSL: %s)",
          key, quoted, problem, reason ? reason : "no reason given");
  }
  ERR_clear_error ();
  SSL_CTX_free (ctx);
  return problem == NULL;
}

PcrMqtt *
pcr_mqtt_new (const PcrMqttOptions * options, GMainContext * context,
    const PcrMqttCallbacks * callbacks, gpointer user_data, GError ** error)
{
  g_autofree gchar *host = NULL;
  g_autofree gchar *client_id = NULL;
  gboolean tls;
  gint port, rc;
  PcrMqtt *mqtt;

  g_return_val_if_fail (options != NULL && options->uri != NULL, NULL);
  g_return_val_if_fail (callbacks != NULL, NULL);

  init_once ();
  if (!pcr_mqtt_parse_uri (options->uri, &host, &port, &tls, error))
    return NULL;
  if ((options->cert_file == NULL) != (options->key_file == NULL)) {
    g_set_error (error, PCR_MQTT_ERROR, 0, "%s is set without %s: a client "
        "certificate needs both", options->cert_file ? "cert-file" :
        "key-file", options->cert_file ? "key-file" : "cert-file");
    return NULL;
  }
  if (options->cert_file != NULL && !tls) {
    g_set_error (error, PCR_MQTT_ERROR, 0, "a client certificate needs an "
        "mqtts:// broker; plain mqtt:// cannot carry it");
    return NULL;
  }
  if (options->cert_file != NULL
      && !check_client_cert (options->cert_file, options->key_file, error))
    return NULL;

  if (options->client_id)
    client_id = g_strdup (options->client_id);
  else
    client_id = g_strdup_printf ("picamrtc-%08x%08x", g_random_int (),
        g_random_int ());

  mqtt = g_new0 (PcrMqtt, 1);
  g_mutex_init (&mqtt->lock);
  g_cond_init (&mqtt->cond);
  mqtt->host = g_steal_pointer (&host);
  mqtt->port = port;
  mqtt->tls = tls;
  mqtt->has_cert = options->cert_file != NULL;
  mqtt->keepalive = options->keepalive > 0 ? options->keepalive :
      DEFAULT_KEEPALIVE_S;
  mqtt->context = context ? g_main_context_ref (context) :
      g_main_context_ref_thread_default ();
  mqtt->shared = g_new0 (Shared, 1);
  mqtt->shared->refcount = 1;
  g_mutex_init (&mqtt->shared->lock);
  g_cond_init (&mqtt->shared->idle);
  mqtt->shared->mqtt = mqtt;
  mqtt->shared->callbacks = *callbacks;
  mqtt->shared->user_data = user_data;

  mqtt->mosq = mosquitto_new (client_id, TRUE, mqtt);
  if (!mqtt->mosq) {
    g_set_error (error, PCR_MQTT_ERROR, 0, "cannot create an MQTT client: %s",
        g_strerror (errno));
    pcr_mqtt_free (mqtt);
    return NULL;
  }
  mosquitto_int_option (mqtt->mosq, MOSQ_OPT_PROTOCOL_VERSION,
      MQTT_PROTOCOL_V311);
  /* Our own thread runs the loop; publishes from others wake it. */
  mosquitto_threaded_set (mqtt->mosq, TRUE);
  mosquitto_connect_callback_set (mqtt->mosq, on_connect);
  mosquitto_disconnect_callback_set (mqtt->mosq, on_disconnect);
  mosquitto_publish_callback_set (mqtt->mosq, on_publish);
  mosquitto_message_callback_set (mqtt->mosq, on_message);
  mosquitto_log_callback_set (mqtt->mosq, on_log);

  if (options->username || options->password) {
    rc = mosquitto_username_pw_set (mqtt->mosq, options->username,
        options->password);
    if (rc != MOSQ_ERR_SUCCESS) {
      g_set_error (error, PCR_MQTT_ERROR, 0, "bad MQTT credentials: %s",
          mosquitto_strerror (rc));
      pcr_mqtt_free (mqtt);
      return NULL;
    }
  }
  if (tls) {
    rc = mosquitto_tls_set (mqtt->mosq, options->ca_file,
        options->ca_file ? NULL : "/etc/ssl/certs", options->cert_file,
        options->key_file, no_passphrase);
    if (rc != MOSQ_ERR_SUCCESS) {
      g_set_error (error, PCR_MQTT_ERROR, 0,
          "cannot set up TLS with CA file \"%s\"%s: %s",
          options->ca_file ? options->ca_file : "(system)",
          options->cert_file ? " and the client certificate" : "",
          mosquitto_strerror (rc));
      pcr_mqtt_free (mqtt);
      return NULL;
    }
  }
  if (options->will_topic) {
    const gchar *payload = options->will_payload ? options->will_payload : "";

    rc = mosquitto_will_set (mqtt->mosq, options->will_topic,
        strlen (payload), payload, 1, TRUE);
    if (rc != MOSQ_ERR_SUCCESS) {
      g_set_error (error, PCR_MQTT_ERROR, 0, "bad last will on \"%s\": %s",
          options->will_topic, mosquitto_strerror (rc));
      pcr_mqtt_free (mqtt);
      return NULL;
    }
  }
  return mqtt;
}

/* Sleeps a random time in the upper half of @backoff_ms, and doubles the
 * backoff up to the cap, unless told to stop; TRUE when stopping. */
static gboolean
wait_or_stop (PcrMqtt * mqtt, guint * backoff_ms)
{
  guint wait_ms = g_random_int_range (*backoff_ms / 2, *backoff_ms + 1);
  gint64 deadline = g_get_monotonic_time () + wait_ms * G_TIME_SPAN_MILLISECOND;
  gboolean stopping;

  GST_INFO ("next connection attempt to %s:%d in %u ms", mqtt->host,
      mqtt->port, wait_ms);
  *backoff_ms = MIN (*backoff_ms * 2, RECONNECT_MAX_MS);

  g_mutex_lock (&mqtt->lock);
  while (!mqtt->stopping)
    if (!g_cond_wait_until (&mqtt->cond, &mqtt->lock, deadline))
      break;
  stopping = mqtt->stopping;
  g_mutex_unlock (&mqtt->lock);
  return stopping;
}

static gboolean
is_stopping (PcrMqtt * mqtt)
{
  gboolean stopping;

  g_mutex_lock (&mqtt->lock);
  stopping = mqtt->stopping;
  g_mutex_unlock (&mqtt->lock);
  return stopping;
}

/* The kernel's TCP_CLOSE (include/net/tcp_states.h): no connection. */
#define TCP_STATE_CLOSE 7

/* Whether the attempt's TCP connection failed before it carried a byte:
 * refused (nothing listens on the port) or unreachable. Over TLS
 * libmosquitto 2.0 does not notice: its first handshake write takes the
 * error and it keeps retrying the handshake on a dead socket, so the
 * attempt would end only at CONNACK_TIMEOUT_US as "no answer". */
static gboolean
connect_failed (PcrMqtt * mqtt)
{
  gint fd = mosquitto_socket (mqtt->mosq);
  struct tcp_info info = { 0 };
  socklen_t len = sizeof (info);

  if (fd < 0 || getsockopt (fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0)
    return FALSE;
  return info.tcpi_state == TCP_STATE_CLOSE && info.tcpi_bytes_received == 0;
}

/* Connects, runs the loop, and after any failure waits the backoff and
 * connects again, until pcr_mqtt_stop(). */
static gpointer
network_thread (gpointer data)
{
  PcrMqtt *mqtt = data;
  gboolean have_socket = FALSE, tried = FALSE, refused;
  gboolean answered = FALSE;    /* this attempt reached a CONNACK */
  guint backoff = RECONNECT_MIN_MS, unclear_attempts = 0, quick;
  gint64 attempt_start = 0;
  sigset_t pipe;
  gint rc;

  /* OpenSSL write()s without MSG_NOSIGNAL: a TLS connection the broker
   * closed would kill the whole process with SIGPIPE. Only this thread
   * writes to the socket (threaded mode), so blocking it here makes such a
   * write fail with EPIPE instead, whatever the application does. */
  sigemptyset (&pipe);
  sigaddset (&pipe, SIGPIPE);
  pthread_sigmask (SIG_BLOCK, &pipe, NULL);

  while (!is_stopping (mqtt)) {
    if (!have_socket) {
      g_mutex_lock (&mqtt->lock);
      g_clear_pointer (&mqtt->tls_reason, g_free);
      g_mutex_unlock (&mqtt->lock);
      /* Non-blocking: the loop below finishes TCP and TLS, and a stop
       * never waits for a slow connect. */
      rc = tried ? mosquitto_reconnect_async (mqtt->mosq) :
          mosquitto_connect_async (mqtt->mosq, mqtt->host, mqtt->port,
          mqtt->keepalive);
      tried = TRUE;
      answered = FALSE;
      attempt_start = g_get_monotonic_time ();
      if (rc != MOSQ_ERR_SUCCESS) {
        quick = UNCLEAR_RETRY_MS;
        if (wait_or_stop (mqtt, report_failure (mqtt, rc, FALSE,
                    &unclear_attempts) ? &quick : &backoff))
          break;
        continue;
      }
      have_socket = TRUE;
    }
    rc = mosquitto_loop (mqtt->mosq, 1000, 1);
    if (rc == MOSQ_ERR_SUCCESS && !pcr_mqtt_is_connected (mqtt) &&
        connect_failed (mqtt)) {
      report_error (mqtt, "the connection was refused or the host is "
          "unreachable (is a broker listening on that port?)");
      have_socket = FALSE;
      if (wait_or_stop (mqtt, &backoff))
        break;
      continue;
    }
    if (rc == MOSQ_ERR_SUCCESS) {
      if (pcr_mqtt_is_connected (mqtt)) {
        backoff = RECONNECT_MIN_MS;
        unclear_attempts = 0;
        answered = TRUE;
        continue;
      }
      if (g_get_monotonic_time () - attempt_start < CONNACK_TIMEOUT_US)
        continue;
      report_error (mqtt, "no answer within 5 s (a TLS problem: wrong CA, "
          "host name or port? or a broker that does not answer)");
      have_socket = FALSE;
      if (wait_or_stop (mqtt, &backoff))
        break;
      continue;
    }
    /* The connection is gone: refused, lost, or broken by TLS. */
    have_socket = FALSE;
    if (is_stopping (mqtt))
      break;
    g_mutex_lock (&mqtt->lock);
    refused = mqtt->connack_refused;
    mqtt->connack_refused = FALSE;
    g_mutex_unlock (&mqtt->lock);
    quick = UNCLEAR_RETRY_MS;
    /* a refusal: on_connect said why already */
    if (wait_or_stop (mqtt, !refused && report_failure (mqtt, rc, answered,
                &unclear_attempts) ? &quick : &backoff))
      break;
  }
  return NULL;
}

gboolean
pcr_mqtt_start (PcrMqtt * mqtt, GError ** error)
{
  g_return_val_if_fail (mqtt != NULL, FALSE);
  g_return_val_if_fail (mqtt->thread == NULL, FALSE);

  mqtt->stopping = FALSE;
  mqtt->thread = g_thread_try_new ("pcr-mqtt", network_thread, mqtt, error);
  return mqtt->thread != NULL;
}

gboolean
pcr_mqtt_publish (PcrMqtt * mqtt, const gchar * topic, const void *payload,
    gsize len, gboolean retain)
{
  gint rc;

  g_return_val_if_fail (mqtt != NULL && topic != NULL, FALSE);

  if (len > G_MAXINT)
    return FALSE;
  g_mutex_lock (&mqtt->lock);
  mqtt->inflight++;
  g_mutex_unlock (&mqtt->lock);
  rc = mosquitto_publish (mqtt->mosq, NULL, topic, (gint) len, payload, 1,
      retain);
  if (rc != MOSQ_ERR_SUCCESS) {
    g_mutex_lock (&mqtt->lock);
    if (mqtt->inflight > 0)
      mqtt->inflight--;
    g_mutex_unlock (&mqtt->lock);
    GST_WARNING ("cannot publish to %s: %s", topic, mosquitto_strerror (rc));
    return FALSE;
  }
  return TRUE;
}

gboolean
pcr_mqtt_subscribe (PcrMqtt * mqtt, const gchar * pattern)
{
  gint rc;

  g_return_val_if_fail (mqtt != NULL && pattern != NULL, FALSE);

  rc = mosquitto_subscribe (mqtt->mosq, NULL, pattern, 1);
  if (rc != MOSQ_ERR_SUCCESS) {
    GST_WARNING ("cannot subscribe to %s: %s", pattern,
        mosquitto_strerror (rc));
    return FALSE;
  }
  return TRUE;
}

gboolean
pcr_mqtt_unsubscribe (PcrMqtt * mqtt, const gchar * pattern)
{
  gint rc;

  g_return_val_if_fail (mqtt != NULL && pattern != NULL, FALSE);

  rc = mosquitto_unsubscribe (mqtt->mosq, NULL, pattern);
  if (rc != MOSQ_ERR_SUCCESS) {
    GST_WARNING ("cannot unsubscribe from %s: %s", pattern,
        mosquitto_strerror (rc));
    return FALSE;
  }
  return TRUE;
}

gboolean
pcr_mqtt_is_connected (PcrMqtt * mqtt)
{
  gboolean connected;

  g_return_val_if_fail (mqtt != NULL, FALSE);

  g_mutex_lock (&mqtt->lock);
  connected = mqtt->connected;
  g_mutex_unlock (&mqtt->lock);
  return connected;
}

void
pcr_mqtt_stop (PcrMqtt * mqtt, guint flush_ms)
{
  gint64 deadline;

  g_return_if_fail (mqtt != NULL);

  if (!mqtt->thread)
    return;

  deadline = g_get_monotonic_time () + flush_ms * G_TIME_SPAN_MILLISECOND;
  g_mutex_lock (&mqtt->lock);
  while (mqtt->connected && mqtt->inflight > 0)
    if (!g_cond_wait_until (&mqtt->cond, &mqtt->lock, deadline))
      break;
  mqtt->stopping = TRUE;
  g_cond_broadcast (&mqtt->cond);
  g_mutex_unlock (&mqtt->lock);

  /* A clean DISCONNECT (the broker then drops the last will); it wakes the
   * loop, which sends it and returns. */
  mosquitto_disconnect (mqtt->mosq);
  g_thread_join (mqtt->thread);
  mqtt->thread = NULL;
  g_mutex_lock (&mqtt->lock);
  mqtt->connected = FALSE;
  g_mutex_unlock (&mqtt->lock);
}

void
pcr_mqtt_free (PcrMqtt * mqtt)
{
  if (!mqtt)
    return;

  pcr_mqtt_stop (mqtt, 0);
  g_mutex_lock (&mqtt->shared->lock);
  mqtt->shared->dead = TRUE;
  mqtt->shared->mqtt = NULL;
  /* a callback running on another thread finishes first; one that frees
   * the client from inside itself is not waited for */
  while (mqtt->shared->dispatching != NULL
      && mqtt->shared->dispatching != g_thread_self ())
    g_cond_wait (&mqtt->shared->idle, &mqtt->shared->lock);
  g_mutex_unlock (&mqtt->shared->lock);
  shared_unref (mqtt->shared);

  g_clear_pointer (&mqtt->mosq, mosquitto_destroy);
  g_main_context_unref (mqtt->context);
  g_free (mqtt->host);
  g_free (mqtt->last_error);
  g_free (mqtt->tls_reason);
  g_free (mqtt->tls_failure);
  g_mutex_clear (&mqtt->lock);
  g_cond_clear (&mqtt->cond);
  g_free (mqtt);
}
