/* An asynchronous client of the Janus HTTP API (see pcr-janus.h): requests
 * are POSTs answered at once ("success", "ack" or "error"); what a plugin
 * answers later, and everything Janus says on its own, comes from a long
 * poll (GET on the session) that this client keeps open while the session
 * lives. Requests and events meet by their transaction id. */
#include "pcr-janus.h"

#include <libsoup/soup.h>
#include <string.h>

G_DEFINE_QUARK (pcr-janus-error-quark, pcr_janus_error);

/* the last "destroy" requests of freed clients, not answered yet */
static gint destroys_in_flight;
/* every HTTP exchange of every client, those destroys included */
static gint requests_in_flight;

#define MAX_URL_LENGTH 1024
/* Janus answers a long poll after 30 s at the latest (a keepalive) */
#define POLL_TIMEOUT_S 45
#define REQUEST_TIMEOUT_S 10

typedef struct
{
  PcrJanus *janus;
  gchar *transaction;
  PcrJanusReplyFunc done;
  gpointer user_data;
  gboolean async;               /* acked: the answer comes from the poll */
} Request;

struct _PcrJanus
{
  gint refs;                    /* the owner's, and one per exchange */
  gboolean freed;               /* by the owner: call nobody any more */
  gchar *base;
  gchar *apisecret;
  PcrJanusEventFunc on_event;
  PcrJanusLostFunc on_lost;
  gpointer user_data;

  SoupSession *http;            /* requests */
  SoupSession *poll_http;       /* the long poll, with a longer timeout */
  GCancellable *cancel;
  guint64 session;
  guint64 handle;
  gboolean lost;
  GHashTable *pending;          /* transaction → Request */
  guint next_transaction;

  /* connect() in progress */
  gchar *plugin;
  PcrJanusReplyFunc connect_done;
  gpointer connect_data;
};

gboolean
pcr_janus_parse_url (const gchar * url, gchar ** base, guint64 * room,
    gchar ** adminkey, gchar ** apisecret, GError ** error)
{
  g_autoptr (GUri) uri = NULL;
  g_autoptr (GError) uri_error = NULL;
  g_autofree gchar *key = NULL, *secret = NULL;
  guint64 number = 0;
  const gchar *scheme, *query;

  *base = NULL;
  *room = 0;
  *adminkey = *apisecret = NULL;
  if (strlen (url) > MAX_URL_LENGTH) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "relay URL longer than %d characters", MAX_URL_LENGTH);
    return FALSE;
  }
  uri = g_uri_parse (url, G_URI_FLAGS_ENCODED_QUERY, &uri_error);
  if (uri == NULL) {
    /* GLib's message quotes the URL, and with it any secret in it */
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "relay URL does not parse (http://HOST:PORT/janus[?room=N&"
        "adminkey=K&apisecret=S])");
    return FALSE;
  }
  scheme = g_uri_get_scheme (uri);
  if (g_ascii_strcasecmp (scheme, "http") != 0 &&
      g_ascii_strcasecmp (scheme, "https") != 0) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "relay URL must start with http:// or https://, not %s://", scheme);
    return FALSE;
  }
  if (g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0') {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "relay URL has no host");
    return FALSE;
  }
  if (g_uri_get_user (uri) != NULL || g_uri_get_fragment (uri) != NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "relay URL: credentials go in the query (adminkey=, apisecret=), "
        "and it has no #fragment");
    return FALSE;
  }
  query = g_uri_get_query (uri);
  if (query != NULL) {
    GUriParamsIter iter;
    gchar *name, *value;
    g_autoptr (GError) params_error = NULL;

    g_uri_params_iter_init (&iter, query, -1, "&", G_URI_PARAMS_NONE);
    while (g_uri_params_iter_next (&iter, &name, &value, &params_error)) {
      g_autofree gchar *n = name, *v = value;
      if (g_strcmp0 (n, "room") == 0) {
        if (!g_ascii_string_to_unsigned (v, 10, 1,
                (G_GUINT64_CONSTANT (1) << 53) - 1, &number, NULL)) {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
              "relay URL: room must be a number from 1 to 2^53-1, not '%s'",
              v);
          return FALSE;
        }
      } else if (g_strcmp0 (n, "adminkey") == 0) {
        g_free (key);
        key = g_steal_pointer (&v);
      } else if (g_strcmp0 (n, "apisecret") == 0) {
        g_free (secret);
        secret = g_steal_pointer (&v);
      } else {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
            "relay URL: unknown parameter '%s' (room, adminkey, apisecret)",
            n);
        return FALSE;
      }
    }
    if (params_error != NULL) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
          "relay URL: its query does not parse");
      return FALSE;
    }
  }
  *base = g_uri_join (G_URI_FLAGS_ENCODED, g_uri_get_scheme (uri), NULL,
      g_uri_get_host (uri), g_uri_get_port (uri), g_uri_get_path (uri),
      NULL, NULL);
  *room = number;
  *adminkey = g_steal_pointer (&key);
  *apisecret = g_steal_pointer (&secret);
  return TRUE;
}

static void
request_free (Request * request)
{
  g_free (request->transaction);
  g_free (request);
}

PcrJanus *
pcr_janus_new (const gchar * base, const gchar * apisecret,
    PcrJanusEventFunc on_event, PcrJanusLostFunc on_lost, gpointer user_data)
{
  PcrJanus *self = g_new0 (PcrJanus, 1);

  self->refs = 1;
  self->base = g_strdup (base);
  self->apisecret = g_strdup (apisecret);
  self->on_event = on_event;
  self->on_lost = on_lost;
  self->user_data = user_data;
  self->http = soup_session_new_with_options ("timeout", REQUEST_TIMEOUT_S,
      NULL);
  self->poll_http = soup_session_new_with_options ("timeout", POLL_TIMEOUT_S,
      NULL);
  self->cancel = g_cancellable_new ();
  self->pending = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
      (GDestroyNotify) request_free);
  return self;
}

/* The owner may free the client from any callback: each exchange holds a
 * reference, and after calling out the code checks self->freed before
 * touching anything else. */
static PcrJanus *
janus_ref (PcrJanus * self)
{
  self->refs++;
  return self;
}

static void
janus_unref (PcrJanus * self)
{
  if (--self->refs > 0)
    return;
  g_hash_table_destroy (self->pending);
  g_object_unref (self->cancel);
  g_object_unref (self->http);
  g_object_unref (self->poll_http);
  g_free (self->plugin);
  g_free (self->base);
  g_free (self->apisecret);
  g_free (self);
}

/* One HTTP exchange: the answer's JSON node, bounded. */
typedef void (*ExchangeFunc) (PcrJanus * self, JsonNode * answer,
    const GError * error, gpointer data);

typedef struct
{
  PcrJanus *self;
  GCancellable *cancel;         /* ref: the client may be freed meanwhile */
  ExchangeFunc func;
  gpointer data;
  GOutputStream *sink;
} Exchange;

static void
exchange_free (Exchange * ex)
{
  g_atomic_int_dec_and_test (&requests_in_flight);
  g_object_unref (ex->cancel);
  g_clear_object (&ex->sink);
  janus_unref (ex->self);
  g_free (ex);
}

static void
exchange_finish (Exchange * ex, JsonNode * answer, const GError * error)
{
  /* a freed client calls nobody */
  if (!ex->self->freed)
    ex->func (ex->self, answer, error, ex->data);
  exchange_free (ex);
}

static void
on_spliced (GObject * source, GAsyncResult * result, gpointer data)
{
  Exchange *ex = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonParser) parser = NULL;
  GMemoryOutputStream *mem = G_MEMORY_OUTPUT_STREAM (ex->sink);

  if (g_output_stream_splice_finish (G_OUTPUT_STREAM (source), result,
          &error) < 0) {
    g_autoptr (GError) e = NULL;
    if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE))
      e = g_error_new (PCR_JANUS_ERROR, PCR_JANUS_ERROR_PROTOCOL,
          "Janus answered more than %d bytes", PCR_JANUS_MAX_REPLY);
    else
      e = g_error_new (PCR_JANUS_ERROR, PCR_JANUS_ERROR_UNREACHABLE,
          "reading Janus' answer: %s", error->message);
    exchange_finish (ex, NULL, e);
    return;
  }
  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser,
          g_memory_output_stream_get_data (mem),
          g_memory_output_stream_get_data_size (mem), &error) ||
      json_parser_get_root (parser) == NULL) {
    g_autoptr (GError) e = g_error_new (PCR_JANUS_ERROR,
        PCR_JANUS_ERROR_PROTOCOL, "Janus' answer is not JSON: %s",
        error ? error->message : "empty");
    exchange_finish (ex, NULL, e);
    return;
  }
  exchange_finish (ex, json_parser_get_root (parser), NULL);
}

static void
on_sent (GObject * source, GAsyncResult * result, gpointer data)
{
  Exchange *ex = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GInputStream) body = NULL;
  SoupMessage *msg;
  guint status;

  body = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (body == NULL) {
    g_autoptr (GError) e = g_error_new (PCR_JANUS_ERROR,
        PCR_JANUS_ERROR_UNREACHABLE, "Janus unreachable: %s", error->message);
    exchange_finish (ex, NULL, e);
    return;
  }
  msg = soup_session_get_async_result_message (SOUP_SESSION (source), result);
  status = soup_message_get_status (msg);
  if (status != SOUP_STATUS_OK) {
    g_autoptr (GError) e = g_error_new (PCR_JANUS_ERROR,
        PCR_JANUS_ERROR_PROTOCOL, "Janus answered HTTP %u %s", status,
        soup_message_get_reason_phrase (msg));
    exchange_finish (ex, NULL, e);
    return;
  }
  /* a fixed buffer without realloc: a longer answer fails with NO_SPACE */
  ex->sink = g_memory_output_stream_new (g_malloc (PCR_JANUS_MAX_REPLY),
      PCR_JANUS_MAX_REPLY, NULL, g_free);
  g_output_stream_splice_async (ex->sink, body,
      G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE, G_PRIORITY_DEFAULT, ex->cancel,
      on_spliced, ex);
}

/* @body as the request's JSON, with the API secret when there is one. */
static void
set_body (PcrJanus * self, SoupMessage * msg, JsonObject * body)
{
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (GBytes) bytes = NULL;
  gsize length;
  gchar *text;

  if (self->apisecret != NULL)
    json_object_set_string_member (body, "apisecret", self->apisecret);
  json_node_set_object (node, body);
  json_generator_set_root (gen, node);
  text = json_generator_to_data (gen, &length);
  bytes = g_bytes_new_take (text, length);
  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
}

static void
exchange (PcrJanus * self, const gchar * method, const gchar * path,
    JsonObject * body, ExchangeFunc func, gpointer data)
{
  Exchange *ex = g_new0 (Exchange, 1);
  g_autofree gchar *url = NULL;
  g_autoptr (SoupMessage) msg = NULL;

  g_atomic_int_inc (&requests_in_flight);
  ex->self = janus_ref (self);
  ex->cancel = g_object_ref (self->cancel);
  ex->func = func;
  ex->data = data;
  if (body == NULL && self->apisecret != NULL) {
    g_autofree gchar *secret = g_uri_escape_string (self->apisecret, NULL,
        FALSE);
    url = g_strdup_printf ("%s%s?maxev=16&apisecret=%s", self->base, path,
        secret);
  } else {
    url = g_strdup_printf ("%s%s%s", self->base, path,
        body == NULL ? "?maxev=16" : "");
  }
  msg = soup_message_new (method, url);
  if (msg == NULL) {
    g_autoptr (GError) e = g_error_new (PCR_JANUS_ERROR,
        PCR_JANUS_ERROR_PROTOCOL, "not a URL: %s", url);
    exchange_finish (ex, NULL, e);
    return;
  }
  if (body != NULL)
    set_body (self, msg, body);
  /* libsoup's timeout is per session: requests must not wait as long as
   * the poll may */
  soup_session_send_async (body == NULL ? self->poll_http : self->http, msg,
      G_PRIORITY_DEFAULT, ex->cancel, on_sent, ex);
}

static JsonObject *
new_request (PcrJanus * self, const gchar * janus, gchar ** transaction)
{
  JsonObject *o = json_object_new ();

  *transaction = g_strdup_printf ("pcr%u-%08x", ++self->next_transaction,
      g_random_int ());
  json_object_set_string_member (o, "janus", janus);
  json_object_set_string_member (o, "transaction", *transaction);
  return o;
}

static void
lose (PcrJanus * self, GError * error)
{
  GHashTableIter iter;
  gpointer value;
  g_autoptr (GList) requests = NULL;

  if (self->lost)
    return;
  self->lost = TRUE;
  /* the requests still waiting will never be answered */
  g_hash_table_iter_init (&iter, self->pending);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    requests = g_list_prepend (requests, value);
    g_hash_table_iter_steal (&iter);
  }
  for (GList * l = requests; l != NULL; l = l->next) {
    Request *r = l->data;
    if (r->done != NULL && !self->freed)
      r->done (self, NULL, error, r->user_data);
    request_free (r);
  }
  if (self->on_lost != NULL && !self->freed)
    self->on_lost (self, error, self->user_data);
}

/* The object @name of a message from Janus, or NULL (missing, or not an
 * object). */
static JsonObject *
object_member (JsonObject * object, const gchar * name)
{
  JsonNode *node = json_object_get_member (object, name);

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ?
      json_node_get_object (node) : NULL;
}

/* The error a Janus message carries, if any. */
static GError *
message_error (JsonObject * msg)
{
  const gchar *janus = pcr_janus_string (msg, "janus", "");
  JsonObject *data;

  if (g_strcmp0 (janus, "error") == 0) {
    JsonObject *e = object_member (msg, "error");
    gint64 code = e ? pcr_janus_int (e, "code", 0) : 0;
    const gchar *reason = e ? pcr_janus_string (e, "reason", "") : "";
    /* 458 no such session, 459 no such handle */
    return g_error_new (PCR_JANUS_ERROR, code == 458 || code == 459 ?
        PCR_JANUS_ERROR_LOST : PCR_JANUS_ERROR_JANUS, "Janus error %"
        G_GINT64_FORMAT ": %.200s", code, reason);
  }
  data = pcr_janus_plugin_data (msg);
  if (data != NULL && json_object_has_member (data, "error_code")) {
    gint64 code = pcr_janus_int (data, "error_code", 0);
    const gchar *reason = pcr_janus_string (data, "error", "");
    return g_error_new (PCR_JANUS_ERROR, PCR_JANUS_ERROR_PLUGIN,
        "Janus plugin error %" G_GINT64_FORMAT ": %.200s", code, reason);
  }
  return NULL;
}

static void
complete (PcrJanus * self, const gchar * transaction, JsonObject * msg)
{
  Request *r;
  g_autoptr (GError) error = NULL;

  if (!g_hash_table_steal_extended (self->pending, transaction, NULL,
          (gpointer *) & r))
    return;
  error = message_error (msg);
  if (r->done != NULL)
    r->done (self, error ? NULL : msg, error, r->user_data);
  request_free (r);
}

static void poll_events (PcrJanus * self);

static void
dispatch_event (PcrJanus * self, JsonObject * msg)
{
  const gchar *janus = pcr_janus_string (msg, "janus", "");
  const gchar *transaction = pcr_janus_string (msg, "transaction", NULL);

  if (g_strcmp0 (janus, "keepalive") == 0)
    return;
  if (transaction != NULL && g_strcmp0 (janus, "ack") != 0 &&
      g_hash_table_contains (self->pending, transaction)) {
    complete (self, transaction, msg);
    return;
  }
  if ((g_strcmp0 (janus, "detached") == 0 &&
          pcr_janus_int (msg, "sender", 0) == (gint64) self->handle) ||
      g_strcmp0 (janus, "timeout") == 0) {
    g_autoptr (GError) e = g_error_new (PCR_JANUS_ERROR, PCR_JANUS_ERROR_LOST,
        "Janus %s the session", g_strcmp0 (janus, "timeout") == 0 ?
        "timed out" : "detached");
    lose (self, e);
    return;
  }
  if (self->on_event != NULL)
    self->on_event (self, msg, self->user_data);
}

static void
on_poll (PcrJanus * self, JsonNode * answer, const GError * error,
    gpointer data)
{
  if (self->lost)
    return;
  if (error != NULL) {
    g_autoptr (GError) e = g_error_copy (error);
    lose (self, e);
    return;
  }
  if (JSON_NODE_HOLDS_OBJECT (answer)) {
    JsonObject *msg = json_node_get_object (answer);
    g_autoptr (GError) e = NULL;

    if (g_strcmp0 (pcr_janus_string (msg, "janus", ""), "error") == 0) {
      e = message_error (msg);
      lose (self, e);
      return;
    }
    dispatch_event (self, msg);
  } else if (JSON_NODE_HOLDS_ARRAY (answer)) {
    JsonArray *events = json_node_get_array (answer);
    for (guint i = 0; i < json_array_get_length (events) && !self->lost &&
        !self->freed; i++) {
      JsonNode *n = json_array_get_element (events, i);
      if (JSON_NODE_HOLDS_OBJECT (n))
        dispatch_event (self, json_node_get_object (n));
    }
  }
  if (!self->lost && !self->freed)
    poll_events (self);
}

static void
poll_events (PcrJanus * self)
{
  g_autofree gchar *path = g_strdup_printf ("/%" G_GUINT64_FORMAT,
      self->session);
  exchange (self, "GET", path, NULL, on_poll, NULL);
}

/* A POST's immediate answer. */
static void
on_posted (PcrJanus * self, JsonNode * answer, const GError * error,
    gpointer data)
{
  gchar *transaction = data;    /* owned by the Request, if still there */
  Request *r = g_hash_table_lookup (self->pending, transaction);
  JsonObject *msg;
  const gchar *janus;

  if (r == NULL)
    return;
  if (error != NULL) {
    g_autoptr (GError) e = g_error_copy (error);
    g_hash_table_steal (self->pending, transaction);
    if (r->done != NULL)
      r->done (self, NULL, e, r->user_data);
    request_free (r);
    /* Janus refused or is gone: the session goes with it */
    if (!self->freed && e->code == PCR_JANUS_ERROR_UNREACHABLE &&
        self->session != 0)
      lose (self, e);
    return;
  }
  if (!JSON_NODE_HOLDS_OBJECT (answer)) {
    g_autoptr (GError) e = g_error_new (PCR_JANUS_ERROR,
        PCR_JANUS_ERROR_PROTOCOL, "Janus answered something not an object");
    g_hash_table_steal (self->pending, transaction);
    if (r->done != NULL)
      r->done (self, NULL, e, r->user_data);
    request_free (r);
    return;
  }
  msg = json_node_get_object (answer);
  janus = pcr_janus_string (msg, "janus", "");
  if (g_strcmp0 (janus, "ack") == 0) {
    r->async = TRUE;            /* the answer comes from the poll */
    if (r->done == NULL) {
      g_hash_table_remove (self->pending, transaction);
    }
    return;
  }
  if (g_strcmp0 (janus, "error") == 0) {
    g_autoptr (GError) e = message_error (msg);
    complete (self, transaction, msg);
    if (!self->freed && e->code == PCR_JANUS_ERROR_LOST && self->session != 0)
      lose (self, e);
    return;
  }
  complete (self, transaction, msg);
}

static void
post (PcrJanus * self, const gchar * path, JsonObject * body,
    const gchar * transaction, PcrJanusReplyFunc done, gpointer user_data)
{
  Request *r = g_new0 (Request, 1);

  r->janus = self;
  r->transaction = g_strdup (transaction);
  r->done = done;
  r->user_data = user_data;
  g_hash_table_insert (self->pending, r->transaction, r);
  exchange (self, "POST", path, body, on_posted, r->transaction);
}

static void
on_attached (PcrJanus * self, JsonObject * reply, const GError * error,
    gpointer data)
{
  JsonObject *d;

  if (error == NULL) {
    d = object_member (reply, "data");
    self->handle = d ? (guint64) pcr_janus_int (d, "id", 0) : 0;
    if (self->handle == 0) {
      g_autoptr (GError) e = g_error_new (PCR_JANUS_ERROR,
          PCR_JANUS_ERROR_PROTOCOL, "Janus attached no handle");
      self->connect_done (self, NULL, e, self->connect_data);
      return;
    }
    poll_events (self);
  }
  self->connect_done (self, NULL, error, self->connect_data);
}

static void
on_created (PcrJanus * self, JsonObject * reply, const GError * error,
    gpointer data)
{
  JsonObject *d;
  g_autofree gchar *transaction = NULL, *path = NULL;
  JsonObject *attach;

  if (error != NULL) {
    self->connect_done (self, NULL, error, self->connect_data);
    return;
  }
  d = object_member (reply, "data");
  self->session = d ? (guint64) pcr_janus_int (d, "id", 0) : 0;
  if (self->session == 0) {
    g_autoptr (GError) e = g_error_new (PCR_JANUS_ERROR,
        PCR_JANUS_ERROR_PROTOCOL, "Janus created no session");
    self->connect_done (self, NULL, e, self->connect_data);
    return;
  }
  attach = new_request (self, "attach", &transaction);
  json_object_set_string_member (attach, "plugin", self->plugin);
  path = g_strdup_printf ("/%" G_GUINT64_FORMAT, self->session);
  post (self, path, attach, transaction, on_attached, NULL);
  json_object_unref (attach);
}

void
pcr_janus_connect (PcrJanus * self, const gchar * plugin,
    PcrJanusReplyFunc done, gpointer user_data)
{
  g_autofree gchar *transaction = NULL;
  JsonObject *create;

  g_return_if_fail (self->session == 0);
  g_free (self->plugin);
  self->plugin = g_strdup (plugin);
  self->connect_done = done;
  self->connect_data = user_data;
  create = new_request (self, "create", &transaction);
  post (self, "", create, transaction, on_created, NULL);
  json_object_unref (create);
}

static gchar *
handle_path (PcrJanus * self)
{
  return g_strdup_printf ("/%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT,
      self->session, self->handle);
}

static void
fail_later (PcrJanus * self, PcrJanusReplyFunc done, gpointer user_data)
{
  g_autoptr (GError) e = g_error_new (PCR_JANUS_ERROR, PCR_JANUS_ERROR_LOST,
      "no Janus session");
  if (done != NULL)
    done (self, NULL, e, user_data);
}

void
pcr_janus_message (PcrJanus * self, JsonObject * body,
    const gchar * jsep_type, const gchar * jsep_sdp, PcrJanusReplyFunc done,
    gpointer user_data)
{
  g_autofree gchar *transaction = NULL, *path = NULL;
  JsonObject *msg;

  if (!pcr_janus_is_connected (self)) {
    fail_later (self, done, user_data);
    return;
  }
  msg = new_request (self, "message", &transaction);
  json_object_set_object_member (msg, "body", json_object_ref (body));
  if (jsep_type != NULL && jsep_sdp != NULL) {
    JsonObject *jsep = json_object_new ();
    json_object_set_string_member (jsep, "type", jsep_type);
    json_object_set_string_member (jsep, "sdp", jsep_sdp);
    json_object_set_object_member (msg, "jsep", jsep);
  }
  path = handle_path (self);
  post (self, path, msg, transaction, done, user_data);
  json_object_unref (msg);
}

void
pcr_janus_trickle (PcrJanus * self, guint mline_index, const gchar * candidate)
{
  g_autofree gchar *transaction = NULL, *path = NULL;
  JsonObject *msg, *c = json_object_new ();

  if (!pcr_janus_is_connected (self)) {
    json_object_unref (c);
    return;
  }
  msg = new_request (self, "trickle", &transaction);
  if (candidate == NULL || *candidate == '\0') {
    json_object_set_boolean_member (c, "completed", TRUE);
  } else {
    json_object_set_string_member (c, "candidate", candidate);
    json_object_set_int_member (c, "sdpMLineIndex", mline_index);
  }
  json_object_set_object_member (msg, "candidate", c);
  path = handle_path (self);
  post (self, path, msg, transaction, NULL, NULL);
  json_object_unref (msg);
}

gboolean
pcr_janus_is_connected (PcrJanus * self)
{
  return self->handle != 0 && !self->lost;
}

guint64
pcr_janus_session_id (PcrJanus * self)
{
  return self->session;
}

guint
pcr_janus_requests_in_flight (void)
{
  return (guint) g_atomic_int_get (&requests_in_flight);
}

static gboolean
wake (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

void
pcr_janus_wait_destroyed (GMainContext * context, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () +
      timeout_ms * G_TIME_SPAN_MILLISECOND;

  /* libsoup completes a message only in its thread-default context */
  g_main_context_push_thread_default (context);
  while (g_atomic_int_get (&destroys_in_flight) > 0 &&
      g_get_monotonic_time () < deadline) {
    gboolean woken = FALSE;
    GSource *tick = g_timeout_source_new (20);

    g_source_set_callback (tick, wake, &woken, NULL);
    g_source_attach (tick, context);
    while (!woken && g_atomic_int_get (&destroys_in_flight) > 0)
      g_main_context_iteration (context, TRUE);
    g_source_destroy (tick);
    g_source_unref (tick);
  }
  g_main_context_pop_thread_default (context);
}

static void
on_destroyed (GObject * source, GAsyncResult * result, gpointer data)
{
  g_autoptr (GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION
      (source), result, NULL);

  g_atomic_int_dec_and_test (&destroys_in_flight);
  g_atomic_int_dec_and_test (&requests_in_flight);
  /* the last reference to the client's HTTP session goes with this */
  g_object_unref (data);
}

void
pcr_janus_free (PcrJanus * self)
{
  if (self == NULL)
    return;
  self->freed = TRUE;
  g_cancellable_cancel (self->cancel);
  if (self->session != 0 && !self->lost) {
    /* a last request nobody waits for: Janus frees the session now
     * instead of after its session timeout */
    g_autofree gchar *url = g_strdup_printf ("%s/%" G_GUINT64_FORMAT,
        self->base, self->session);
    g_autoptr (SoupMessage) msg = soup_message_new ("POST", url);
    if (msg != NULL) {
      g_autofree gchar *transaction = NULL;
      g_autoptr (JsonObject) body = new_request (self, "destroy",
          &transaction);

      set_body (self, msg, body);
      g_atomic_int_inc (&destroys_in_flight);
      g_atomic_int_inc (&requests_in_flight);
      soup_session_send_and_read_async (self->http, msg, G_PRIORITY_DEFAULT,
          NULL, on_destroyed, g_object_ref (self->http));
    }
  }
  /* no request is answered now */
  g_hash_table_remove_all (self->pending);
  janus_unref (self);
}

JsonObject *
pcr_janus_plugin_data (JsonObject * message)
{
  JsonObject *pd = object_member (message, "plugindata");

  return pd != NULL ? object_member (pd, "data") : NULL;
}

const gchar *
pcr_janus_string (JsonObject * object, const gchar * name,
    const gchar * fallback)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return fallback;
  return json_node_get_string (node);
}

gint64
pcr_janus_int (JsonObject * object, const gchar * name, gint64 fallback)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_INT64)
    return fallback;
  return json_node_get_int (node);
}

const gchar *
pcr_janus_jsep_sdp (JsonObject * message, const gchar * type)
{
  JsonObject *jsep = object_member (message, "jsep");

  if (jsep == NULL ||
      g_strcmp0 (pcr_janus_string (jsep, "type", ""), type) != 0)
    return NULL;
  return pcr_janus_string (jsep, "sdp", NULL);
}
