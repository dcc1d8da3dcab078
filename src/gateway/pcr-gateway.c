/* The gateway's core: the HTTP routes of docs/http-api.md on a libsoup 3
 * server and the MQTT relay of docs/signalling.md. A viewer's offer (the
 * seed's POST /api/start-webrtc or WHEP's POST /whep/D) becomes a session: its
 * P/D/out/S topic is subscribed before the offer goes to P/D/in/S (one
 * client, so the broker keeps that order), the HTTP request is paused, and
 * the device's answer, its error, the answer timeout or the client going
 * away resumes it. Sessions stay in a bounded table until the viewer's
 * DELETE / stop-webrtc, the device's bye, or the device going offline.
 * Checks that need no body (token, route, method, content type, declared
 * length) run when the headers arrive, so a rejected body is never kept.
 * An offer made without the control token loses its data channel's m-line
 * before it goes to the device, and gets it back rejected in the answer
 * (docs/security.md, "Who can steer"). Everything runs on one
 * GMainContext; the MQTT client delivers there. */
#include "pcr-gateway.h"

#include <signal.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <glib-unix.h>
#include <gst/gst.h>
#include <libsoup/soup.h>
#include <json-glib/json-glib.h>

#include "pcr-gateway-metrics.h"
#include "pcr-http.h"
#include "pcr-ice.h"
#include "pcr-janus.h"
#include "pcr-json.h"
#include "pcr-message.h"
#include "pcr-mqtt.h"
#include "pcr-quote.h"
#include "pcr-sdp.h"
#include "pcr-sdpfrag.h"
#include "pcr-systemd.h"

GST_DEBUG_CATEGORY_STATIC (pcr_gateway_debug);
#define GST_CAT_DEFAULT pcr_gateway_debug

/* *INDENT-OFF* */
G_DEFINE_QUARK (pcr-gateway-error-quark, pcr_gateway_error);
/* *INDENT-ON* */

#define SESSION_ID_BYTES 16     /* 128 bits, 32 hex digits */
#define ETAG_BYTES 8
#define MAX_DEVICES 1024
#define MAX_STATUS_SIZE (16 * 1024)
/* A device's stats message is some 150 bytes; anything much larger is not
 * one (docs/signalling.md, "Stats"). */
#define MAX_STATS_SIZE 4096
#define MAX_FRAG_CANDIDATES 64
#define CLIENT_POLL_MS 500
#define SHUTDOWN_FLUSH_MS 1000
#define BROKER_CHECK_S 10
#define ROUTE_KEY "pcr-route"
/* A device gives up on a picture after 5 s (the camera may have to start
 * for it); a little more for the parts to arrive. */
#define SNAPSHOT_TIMEOUT_S 8
/* A device's reply to record, recordings and each fetch. */
#define REPLY_TIMEOUT_S 8
/* A download asks for at most this much ahead of what the client took:
 * a slow client costs the gateway this, the camera nothing. */
#define FETCH_WINDOW (16 * PCR_CHUNK_MAX)
/* A download with nothing asked of the device waits this long for its
 * client to take more (a paused player stops reading) before it is cut. */
#define DOWNLOAD_IDLE_S 60
/* A relayed viewer (docs/http-api.md, "Relayed viewers"): its lease on the
 * device is renewed this often (the device drops it after 30 s), and an
 * offer of Janus' waits this long for the viewer's answer. */
#define RELAY_LEASE_S 10
/* Janus' simulcast substreams: 0 the lowest; 2 the best there is */
#define SUBSTREAM_LOW 0
#define SUBSTREAM_HIGH 2
#define RELAY_ANSWER_S 30
/* At exit, the time the Janus sessions' destroy requests get. */
#define RELAY_FLUSH_MS 300
/* Janus' offer is handed on only up to this size. */
#define MAX_RELAY_OFFER (64 * 1024)

#define TYPE_SDP "application/sdp"
#define TYPE_SDPFRAG "application/trickle-ice-sdpfrag"
#define TYPE_JSON "application/json"
#define TYPE_JPEG "image/jpeg"
#define TYPE_MP4 "video/mp4"

typedef enum
{
  ROUTE_STATIC,
  ROUTE_START,
  ROUTE_STOP,
  ROUTE_TURN,
  ROUTE_DEVICES,
  ROUTE_STATS,                  /* /api/stats?session=S */
  ROUTE_SNAPSHOT,               /* /api/snapshot/D */
  ROUTE_RECORD,                 /* /api/record/D */
  ROUTE_RECORDINGS,             /* /api/recordings/D */
  ROUTE_RECORDING,              /* /api/recordings/D/NAME */
  ROUTE_WHEP,                   /* /whep/D */
  ROUTE_WHEP_SESSION,           /* /whep/D/S */
  ROUTE_WHEP_STATS,             /* /whep/D/S/stats */
  ROUTE_METRICS,                /* /metrics */
  ROUTE_RELAY,                  /* /api/relay/D */
  ROUTE_RELAY_SESSION,          /* /api/relay/D/S */
  ROUTE_NOT_FOUND,              /* under /api or /whep, nothing there */
} RouteKind;

/* The route label of picamrtc_gateway_http_requests_total. */
static const gchar *const route_names[] = {
  [ROUTE_STATIC] = "static",
  [ROUTE_START] = "start-webrtc",
  [ROUTE_STOP] = "stop-webrtc",
  [ROUTE_TURN] = "turn-credentials",
  [ROUTE_DEVICES] = "devices",
  [ROUTE_STATS] = "stats",
  [ROUTE_SNAPSHOT] = "snapshot",
  [ROUTE_RECORD] = "record",
  [ROUTE_RECORDINGS] = "recordings",
  [ROUTE_RECORDING] = "recording",
  [ROUTE_WHEP] = "whep",
  [ROUTE_WHEP_SESSION] = "whep-session",
  [ROUTE_WHEP_STATS] = "whep-stats",
  [ROUTE_METRICS] = "metrics",
  [ROUTE_RELAY] = "relay",
  [ROUTE_RELAY_SESSION] = "relay-session",
  [ROUTE_NOT_FOUND] = "not-found",
};

typedef struct
{
  RouteKind kind;
  gboolean api;                 /* /api or /whep: CORS, bearer token */
  gchar *device;
  gchar *session;
  gchar *name;                  /* a recording's */
  gchar *range;                 /* the request's Range, nullable (it is
                                 * taken off the request: on_request) */
  gboolean control;             /* made with the control token */
} Route;

typedef struct
{
  JsonNode *status;
  gchar *state;                 /* nullable */
} Device;

typedef struct _Session Session;

typedef enum
{
  SESSION_VIEWER,
  SESSION_SNAPSHOT,
  SESSION_RECORD,
  SESSION_RECORDINGS,
  SESSION_FETCH,
  SESSION_RELAY,                /* a viewer through Janus */
} SessionKind;

/* Where a relayed session is: asked the device, joining Janus (the POST
 * waits for both), Janus' offer sent to the viewer, its answer given to
 * Janus (the PATCH waits), playing. */
typedef enum
{
  RELAY_ASKED,
  RELAY_JOINING,
  RELAY_OFFERED,
  RELAY_STARTING,
  RELAY_LIVE,
} RelayStage;

struct _PcrGateway
{
  PcrGatewayConfig *config;
  GMainContext *context;
  GMainLoop *loop;
  SoupServer *server;
  GTlsCertificate *certificate;
  PcrMqtt *mqtt;
  gboolean connected;
  PcrIceConfig *ice;
  gchar *status_pattern;        /* P/+/status */
  gchar *metrics_pattern;       /* P/+/metrics */
  PcrGatewayMetrics *metrics;
  GHashTable *devices;          /* id -> Device */
  GHashTable *sessions;         /* id -> Session */
  GSource *broker_check;        /* says so when the broker stays away */
};

struct _Session
{
  PcrGateway *gateway;
  gchar *id;
  gchar *device;
  gchar *in_topic;
  gchar *out_topic;
  gboolean whep;
  gboolean answered;
  gint64 offer_us;              /* when the offer went out (monotonic) */
  guint timeout_s;              /* for the answer (or the picture) */

  /* not a viewer: a request to the device relayed (no bye at the end) */
  SessionKind kind;

  /* a snapshot: the picture's parts as they come, in order */
  GByteArray *image;
  guint image_parts, image_size, image_width, image_height;

  /* recordings: the list so far; a download's progress */
  JsonBuilder *list;
  gchar *name;
  guint64 size;                 /* the segment's, once known */
  gchar *range;                 /* the request's Range, nullable: the first
                                 * chunk (one byte) only tells the size */
  guint64 end;                  /* where the reply's body ends (exclusive) */
  guint64 requested, received, written; /* offsets in the segment */
  gboolean streaming;           /* the reply's headers went */
  gulong wrote_handler;

  /* while waiting for the device's answer */
  SoupServerMessage *pending;
  gulong finished_handler;
  gulong disconnected_handler;
  GSource *timeout_source;
  GSource *client_source;

  GPtrArray *ice_servers;       /* PcrIceServer*: what the viewer got */
  gchar **mids;                 /* a=mid of the offer's m-lines ("" none) */
  GPtrArray *stripped;          /* PcrStrippedMedia*: the m-lines taken out
                                 * of the offer the device got; nullable */
  gchar *ice_ufrag;             /* the offer's, nullable */
  gchar *etag;                  /* WHEP */

  PcrMessage *stats;            /* the device's last stats, nullable */
  gint64 stats_us;              /* when it came (monotonic) */

  /* a relayed viewer's */
  RelayStage stage;
  guint64 room, feed;           /* the device's publisher in Janus */
  PcrJanus *janus;              /* our subscriber; nullable */
  GSource *lease_source;        /* {"type":"relay"} every RELAY_LEASE_S */
  GSource *idle_source;         /* no answer to Janus' offer in time */
  GSource *end_source;          /* the end, out of a Janus callback */
  gboolean end_bye;
  gchar *end_why;
  gboolean low;                 /* Janus sends it the low layer */
};

static void session_end (Session * s, gboolean send_bye, const gchar * why);
static void fetch_abort (Session * s, const gchar * why);
static JsonNode *request_object (SoupServerMessage * msg);

/* ---- small helpers ---- */

static void
clear_source (GSource ** source)
{
  if (*source != NULL) {
    g_source_destroy (*source);
    g_source_unref (*source);
    *source = NULL;
  }
}

static void
route_free (Route * route)
{
  g_free (route->device);
  g_free (route->session);
  g_free (route->name);
  g_free (route->range);
  g_free (route);
}

/* "D" or "D/X" under a prefix: @one (D a valid id) or @two (X valid by
 * @second_ok, given back in @second); TRUE for the latter. */
static gboolean
device_route (Route * route, const gchar * rest, RouteKind one,
    RouteKind two, gboolean (*second_ok) (const gchar *), gchar ** second)
{
  g_auto (GStrv) parts = g_strsplit (rest, "/", 3);
  guint n = g_strv_length (parts);

  if (n < 1 || n > 2 || !pcr_id_is_valid (parts[0]) ||
      (n == 2 && !second_ok (parts[1])))
    return FALSE;
  route->kind = n == 1 ? one : two;
  route->device = g_strdup (parts[0]);
  if (n == 2)
    *second = g_strdup (parts[1]);
  return n == 2;
}

static Route *
route_parse (const gchar * path)
{
  static const struct
  {
    const gchar *path;
    RouteKind kind;
  } api[] = {
    {"/api/start-webrtc", ROUTE_START},
    {"/api/stop-webrtc", ROUTE_STOP},
    {"/api/turn-credentials", ROUTE_TURN},
    {"/api/devices", ROUTE_DEVICES},
    {"/api/stats", ROUTE_STATS},
  };
  Route *route = g_new0 (Route, 1);
  guint i;

  route->kind = ROUTE_STATIC;
  if (g_str_equal (path, "/metrics")) {
    route->kind = ROUTE_METRICS;
  } else if (g_str_equal (path, "/api") || g_str_has_prefix (path, "/api/")) {
    route->api = TRUE;
    route->kind = ROUTE_NOT_FOUND;
    for (i = 0; i < G_N_ELEMENTS (api); i++) {
      if (g_str_equal (path, api[i].path))
        route->kind = api[i].kind;
    }
    if (g_str_has_prefix (path, "/api/snapshot/") &&
        pcr_id_is_valid (path + strlen ("/api/snapshot/"))) {
      route->kind = ROUTE_SNAPSHOT;
      route->device = g_strdup (path + strlen ("/api/snapshot/"));
    } else if (g_str_has_prefix (path, "/api/record/") &&
        pcr_id_is_valid (path + strlen ("/api/record/"))) {
      route->kind = ROUTE_RECORD;
      route->device = g_strdup (path + strlen ("/api/record/"));
    } else if (g_str_has_prefix (path, "/api/recordings/")) {
      gchar *name = NULL;

      if (device_route (route, path + strlen ("/api/recordings/"),
              ROUTE_RECORDINGS, ROUTE_RECORDING, pcr_segment_name_is_valid,
              &name))
        route->name = name;
    } else if (g_str_has_prefix (path, "/api/relay/")) {
      gchar *session = NULL;

      if (device_route (route, path + strlen ("/api/relay/"), ROUTE_RELAY,
              ROUTE_RELAY_SESSION, pcr_id_is_valid, &session))
        route->session = session;
    }
  } else if (g_str_equal (path, "/whep") || g_str_has_prefix (path, "/whep/")) {
    g_auto (GStrv) parts = NULL;

    route->api = TRUE;
    route->kind = ROUTE_NOT_FOUND;
    if (strlen (path) > 6) {
      parts = g_strsplit (path + 6, "/", 4);
      if (g_strv_length (parts) == 1 && pcr_id_is_valid (parts[0])) {
        route->kind = ROUTE_WHEP;
        route->device = g_strdup (parts[0]);
      } else if (g_strv_length (parts) == 2 && pcr_id_is_valid (parts[0])
          && pcr_id_is_valid (parts[1])) {
        route->kind = ROUTE_WHEP_SESSION;
        route->device = g_strdup (parts[0]);
        route->session = g_strdup (parts[1]);
      } else if (g_strv_length (parts) == 3 && pcr_id_is_valid (parts[0])
          && pcr_id_is_valid (parts[1]) && g_str_equal (parts[2], "stats")) {
        route->kind = ROUTE_WHEP_STATS;
        route->device = g_strdup (parts[0]);
        route->session = g_strdup (parts[1]);
      }
    }
  }
  return route;
}

/* The methods a route takes, for 405's Allow header. */
static const gchar *
route_allow (RouteKind kind)
{
  switch (kind) {
    case ROUTE_START:
    case ROUTE_STOP:
    case ROUTE_WHEP:
    case ROUTE_RECORD:
    case ROUTE_RELAY:
      return "POST, OPTIONS";
    case ROUTE_TURN:
    case ROUTE_DEVICES:
    case ROUTE_STATS:
    case ROUTE_SNAPSHOT:
    case ROUTE_RECORDINGS:
    case ROUTE_RECORDING:
    case ROUTE_WHEP_STATS:
      return "GET, HEAD, OPTIONS";
    case ROUTE_WHEP_SESSION:
    case ROUTE_RELAY_SESSION:
      return "PATCH, DELETE, OPTIONS";
    case ROUTE_STATIC:
    case ROUTE_METRICS:
      return "GET, HEAD";
    case ROUTE_NOT_FOUND:
      break;
  }
  return "";
}

static gboolean
route_allows (RouteKind kind, const gchar * method)
{
  g_auto (GStrv) methods = g_strsplit (route_allow (kind), ", ", -1);

  return g_strv_contains ((const gchar * const *) methods, method);
}

/* One log line per reply: errors and signalling at message level, the
 * routine GETs (files, device list, ICE servers) at GST_INFO. */
static void
log_reply (SoupServerMessage * msg, guint status, const gchar * detail)
{
  const gchar *m = soup_server_message_get_method (msg);
  g_autofree gchar *method = pcr_quote_untrusted (m, 16);
  g_autofree gchar *path = pcr_quote_untrusted (g_uri_get_path
      (soup_server_message_get_uri (msg)), 200);
  const gchar *remote = soup_server_message_get_remote_host (msg);

  if (status < 400 && (g_strcmp0 (m, SOUP_METHOD_GET) == 0 ||
          g_strcmp0 (m, SOUP_METHOD_HEAD) == 0))
    GST_INFO ("%s %s %s -> %u%s%s", remote ? remote : "-", method, path,
        status, detail ? ": " : "", detail ? detail : "");
  else
    g_message ("%s %s %s -> %u%s%s", remote ? remote : "-", method, path,
        status, detail ? ": " : "", detail ? detail : "");
}

/* *INDENT-OFF* */
static void reply_error (SoupServerMessage * msg, guint status,
    const gchar * format, ...)
    G_GNUC_PRINTF (3, 4);
/* *INDENT-ON* */

/* An error reply: status, one-line text/plain body, a log line. */
static void
reply_error (SoupServerMessage * msg, guint status, const gchar * format, ...)
{
  g_autofree gchar *message = NULL;
  g_autofree gchar *line = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  line = pcr_quote_untrusted (message, PCR_HTTP_MAX_ERROR_LINE);
  pcr_http_set_error (msg, status, line);
  log_reply (msg, status, line);
}

static void
reply_body (SoupServerMessage * msg, guint status, const gchar * type,
    const gchar * body, gsize len, const gchar * detail)
{
  pcr_http_set_body (msg, status, type, body, len);
  log_reply (msg, status, detail);
}

static GBytes *
request_body (SoupServerMessage * msg)
{
  return soup_message_body_flatten (soup_server_message_get_request_body (msg));
}

/* Drops whatever of the body arrives from now on (the reply is decided). */
static void
discard_body (SoupServerMessage * msg)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);

  soup_message_body_truncate (body);
  soup_message_body_set_accumulate (body, FALSE);
}

static gchar *
json_string_member (JsonObject * obj, const gchar * name, gboolean * bad)
{
  JsonNode *node = json_object_get_member (obj, name);

  *bad = FALSE;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return NULL;
  if (!JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING) {
    *bad = TRUE;
    return NULL;
  }
  return g_strdup (json_node_get_string (node));
}

/* ---- devices ---- */

static void
device_free (Device * device)
{
  g_clear_pointer (&device->status, json_node_unref);
  g_free (device->state);
  g_free (device);
}

/* NULL when @id may take an offer; else why not (for a 404). */
static gchar *
device_unavailable (PcrGateway * self, const gchar * id)
{
  Device *device = g_hash_table_lookup (self->devices, id);

  if (device == NULL)
    return g_strdup_printf ("unknown device \"%s\" (no status seen from it)",
        id);
  if (g_strcmp0 (device->state, "offline") == 0)
    return g_strdup_printf ("device \"%s\" is offline", id);
  return NULL;
}

/* ---- sessions ---- */

static Session *
session_new (PcrGateway * self, const gchar * id, const gchar * device,
    gboolean whep)
{
  Session *s = g_new0 (Session, 1);

  s->gateway = self;
  s->id = g_strdup (id);
  s->device = g_strdup (device);
  s->in_topic = pcr_topic_build (self->config->topic_prefix, device, "in", id);
  s->out_topic = pcr_topic_build (self->config->topic_prefix, device, "out",
      id);
  s->whep = whep;
  return s;
}

static void read_deadline (PcrGateway * self, SoupServerMessage * msg,
    gboolean arm);

/* Lets go of the waiting request (transfer full): no more signals, timeout
 * or client watch for it. NULL when none waits. */
static SoupServerMessage *
session_detach_request (Session * s)
{
  SoupServerMessage *msg = s->pending;

  if (msg == NULL)
    return NULL;
  g_clear_signal_handler (&s->finished_handler, msg);
  g_clear_signal_handler (&s->disconnected_handler, msg);
  g_clear_signal_handler (&s->wrote_handler, msg);
  clear_source (&s->timeout_source);
  clear_source (&s->client_source);
  s->pending = NULL;
  return msg;
}

/* A download whose headers went can get no error reply: its connection is
 * cut instead (the client sees a body shorter than its Content-Length). */
static void
session_cut (Session * s)
{
  g_autoptr (SoupServerMessage) msg = session_detach_request (s);

  s->streaming = FALSE;
  if (msg != NULL) {
    GSocket *socket = soup_server_message_get_socket (msg);

    if (socket != NULL)
      g_socket_shutdown (socket, TRUE, TRUE, NULL);
    /* libsoup frees a connection it can write to, not a paused one */
    soup_server_message_unpause (msg);
  }
}

/* Takes the waiting request off the session to reply to it (transfer
 * full). NULL when none waits. */
static SoupServerMessage *
session_take_request (Session * s)
{
  SoupServerMessage *msg = session_detach_request (s);

  /* the reply comes next: the client has the usual time to take it */
  if (msg != NULL)
    read_deadline (s->gateway, msg, TRUE);
  return msg;
}

/* *INDENT-OFF* */
static void session_reply_error (Session * s, guint status,
    const gchar * format, ...)
    G_GNUC_PRINTF (3, 4);
/* *INDENT-ON* */

static void
session_reply_error (Session * s, guint status, const gchar * format, ...)
{
  g_autoptr (SoupServerMessage) msg = NULL;
  g_autofree gchar *message = NULL;
  va_list args;

  if (s->streaming) {
    session_cut (s);
    return;
  }
  msg = session_take_request (s);
  if (msg == NULL)
    return;
  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  reply_error (msg, status, "%s", message);
  soup_server_message_unpause (msg);
}

/* The sessions table's value destroy: only memory. Replying and
 * unsubscribing are session_remove()'s. */
static void
session_free (Session * s)
{
  SoupServerMessage *msg;

  /* session_remove() replied; a request still here is a bug, and its
   * handlers must not outlive @s */
  g_warn_if_fail (s->pending == NULL);
  msg = session_detach_request (s);
  g_clear_object (&msg);
  g_free (s->id);
  g_free (s->device);
  g_free (s->in_topic);
  g_free (s->out_topic);
  g_clear_pointer (&s->ice_servers, g_ptr_array_unref);
  g_strfreev (s->mids);
  g_clear_pointer (&s->stripped, g_ptr_array_unref);
  g_free (s->ice_ufrag);
  g_free (s->etag);
  g_clear_pointer (&s->stats, pcr_message_free);
  clear_source (&s->lease_source);
  clear_source (&s->idle_source);
  clear_source (&s->end_source);
  g_free (s->end_why);
  /* never from a callback of its own: those end the session later */
  g_clear_pointer (&s->janus, pcr_janus_free);
  if (s->image)
    g_byte_array_unref (s->image);
  g_clear_object (&s->list);
  g_free (s->name);
  g_free (s->range);
  g_free (s);
}

static void
session_unsubscribe (Session * s)
{
  PcrGateway *self = s->gateway;

  if (self->mqtt != NULL && self->connected)
    pcr_mqtt_unsubscribe (self->mqtt, s->out_topic);
}

/* Takes @s out of the table and frees it, after the I/O that ending it
 * needs: a request still waiting gets a 503, the device's replies are
 * unsubscribed. */
static void
session_remove (Session * s)
{
  session_reply_error (s, SOUP_STATUS_SERVICE_UNAVAILABLE,
      "the session ended before the device answered");
  session_unsubscribe (s);
  g_hash_table_remove (s->gateway->sessions, s->id);
}

static gboolean
session_publish (Session * s, const PcrMessage * message)
{
  PcrGateway *self = s->gateway;
  g_autofree gchar *payload = NULL;
  gsize len;

  if (!self->connected)
    return FALSE;
  payload = pcr_message_to_json (message, &len);
  return pcr_mqtt_publish (self->mqtt, s->in_topic, payload, len, FALSE);
}

/* Says bye to the device when asked, logs @why and removes @s. */
static void
session_end (Session * s, gboolean send_bye, const gchar * why)
{
  /* a snapshot is no session on the device's side */
  if (send_bye && (s->kind == SESSION_VIEWER || s->kind == SESSION_RELAY)) {
    g_autoptr (PcrMessage) bye = pcr_message_new_bye ();

    if (!session_publish (s, bye))
      g_message ("session %s: could not send bye to device %s (broker not "
          "connected); it ends the session itself", s->id, s->device);
  }
  g_message ("session %s (device %s) ended: %s", s->id, s->device, why);
  session_remove (s);
}

static void
on_request_gone (SoupServerMessage * msg, Session * s)
{
  if (s->streaming) {
    fetch_abort (s, "the HTTP client went away");
    return;
  }
  /* the connection is gone: nothing to reply to */
  g_object_unref (session_take_request (s));
  session_end (s, TRUE, "the HTTP client went away before the answer");
}

/* The peer closed (FIN or RST): the TCP state is no longer ESTABLISHED. */
static gboolean
client_closed (GSocket * socket)
{
  struct tcp_info info;
  socklen_t len = sizeof (info);

  if (getsockopt (g_socket_get_fd (socket), IPPROTO_TCP, TCP_INFO, &info,
          &len) == 0)
    return info.tcpi_state != TCP_ESTABLISHED;
  return g_socket_condition_check (socket, G_IO_HUP | G_IO_ERR) != 0;
}

static void
session_client_gone (Session * s)
{
  g_autoptr (SoupServerMessage) msg = NULL;

  if (s->streaming) {
    fetch_abort (s, "the HTTP client went away");
    return;
  }
  msg = session_take_request (s);

  /* an answer to nobody lets libsoup notice the closed connection and free
   * it; a paused message would keep it forever */
  pcr_http_set_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
      "the client went away");
  soup_server_message_unpause (msg);
  session_end (s, TRUE, "the HTTP client went away before the answer");
}

static gboolean
on_client_poll (gpointer user_data)
{
  Session *s = user_data;
  GSocket *socket = soup_server_message_get_socket (s->pending);

  if (socket == NULL || client_closed (socket)) {
    session_client_gone (s);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_client_event (GSocket * socket, GIOCondition condition, gpointer user_data)
{
  Session *s = user_data;

  if ((condition & (G_IO_HUP | G_IO_ERR)) != 0 || client_closed (socket)) {
    session_client_gone (s);
    return G_SOURCE_REMOVE;
  }
  /* bytes to read (a pipelined request, TLS records): the socket stays
   * readable, so look at its TCP state now and then instead */
  g_source_unref (s->client_source);
  s->client_source = g_timeout_source_new (CLIENT_POLL_MS);
  g_source_set_callback (s->client_source, on_client_poll, s, NULL);
  g_source_attach (s->client_source, s->gateway->context);
  return G_SOURCE_REMOVE;
}

static gboolean
on_answer_timeout (gpointer user_data)
{
  Session *s = user_data;

  if (s->streaming) {
    fetch_abort (s, s->requested > s->received ? "no chunk from the device "
        "in time" : "the client took nothing for a while");
    return G_SOURCE_REMOVE;
  }
  if (s->kind == SESSION_RELAY && s->stage != RELAY_ASKED)
    session_reply_error (s, SOUP_STATUS_GATEWAY_TIMEOUT,
        "Janus did not answer within %u s", s->timeout_s);
  else
    session_reply_error (s, SOUP_STATUS_GATEWAY_TIMEOUT,
        "device %s did not answer within %u s", s->device, s->timeout_s);
  session_end (s, TRUE, "no answer in time");
  return G_SOURCE_REMOVE;
}

/* Pauses @msg until the device answers, fails, @timeout_s is up or the
 * client goes away. */
static void
session_wait (Session * s, SoupServerMessage * msg, guint timeout_s)
{
  PcrGateway *self = s->gateway;
  GSocket *socket = soup_server_message_get_socket (msg);

  s->pending = g_object_ref (msg);
  s->finished_handler = g_signal_connect (msg, "finished",
      G_CALLBACK (on_request_gone), s);
  s->disconnected_handler = g_signal_connect (msg, "disconnected",
      G_CALLBACK (on_request_gone), s);
  s->timeout_s = timeout_s;
  s->timeout_source = g_timeout_source_new (timeout_s * 1000);
  g_source_set_callback (s->timeout_source, on_answer_timeout, s, NULL);
  g_source_attach (s->timeout_source, self->context);
  if (socket != NULL) {
    s->client_source = g_socket_create_source (socket,
        G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
    g_source_set_callback (s->client_source, G_SOURCE_FUNC (on_client_event),
        s, NULL);
    g_source_attach (s->client_source, self->context);
  }
  /* waiting for the device is the answer timeout's business */
  read_deadline (self, msg, FALSE);
  soup_server_message_pause (msg);
}

static void
session_read_offer (Session * s, const GstSDPMessage * offer)
{
  guint n = gst_sdp_message_medias_len (offer), i;
  const gchar *ufrag = gst_sdp_message_get_attribute_val (offer,
      "ice-ufrag");

  s->mids = g_new0 (gchar *, n + 1);
  for (i = 0; i < n; i++) {
    const GstSDPMedia *media = gst_sdp_message_get_media (offer, i);
    const gchar *mid = gst_sdp_media_get_attribute_val (media, "mid");

    s->mids[i] = g_strdup (mid ? mid : "");
    if (ufrag == NULL)
      ufrag = gst_sdp_media_get_attribute_val (media, "ice-ufrag");
  }
  s->ice_ufrag = g_strdup (ufrag);
}

/* The device's answer: 201 (WHEP) or 200 (the seed's API). */
static void
session_answer (Session * s, const gchar * sdp)
{
  g_autoptr (SoupServerMessage) msg = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *detail = NULL;
  g_autofree gchar *restored = NULL;

  /* the viewer's browser takes only an answer with its offer's m-lines */
  if (s->stripped != NULL) {
    restored = pcr_sdp_restore_rejected (sdp, g_strv_length (s->mids),
        s->stripped, &error);
    if (restored == NULL) {
      g_autofree gchar *why = pcr_quote_untrusted (error->message, 200);

      session_reply_error (s, SOUP_STATUS_BAD_GATEWAY, "device %s sent an "
          "answer that does not fit the offer: %s", s->device, why);
      session_end (s, TRUE, "the answer did not fit the offer");
      return;
    }
    sdp = restored;
  }
  msg = session_take_request (s);
  if (msg == NULL)
    return;
  detail = g_strdup_printf ("session %s answered by device %s", s->id,
      s->device);
  if (s->whep) {
    SoupMessageHeaders *headers =
        soup_server_message_get_response_headers (msg);
    g_autofree gchar *location = g_strdup_printf ("/whep/%s/%s", s->device,
        s->id);
    g_autoptr (GPtrArray) links = pcr_ice_servers_to_links (s->ice_servers);
    guint i;

    soup_message_headers_replace (headers, "Location", location);
    soup_message_headers_replace (headers, "ETag", s->etag);
    soup_message_headers_replace (headers, "Accept-Patch", TYPE_SDPFRAG);
    for (i = 0; i < links->len; i++)
      soup_message_headers_append (headers, "Link",
          g_ptr_array_index (links, i));
    reply_body (msg, SOUP_STATUS_CREATED, TYPE_SDP, sdp, strlen (sdp), detail);
  } else {
    g_autoptr (JsonBuilder) builder = json_builder_new ();
    g_autoptr (JsonNode) root = NULL;
    g_autofree gchar *body = NULL;
    gsize len;

    json_builder_begin_object (builder);
    json_builder_set_member_name (builder, "webrtc_answer");
    json_builder_add_string_value (builder, sdp);
    json_builder_set_member_name (builder, "session");
    json_builder_add_string_value (builder, s->id);
    json_builder_end_object (builder);
    root = json_builder_get_root (builder);
    body = pcr_http_json_to_string (root, &len);
    reply_body (msg, SOUP_STATUS_OK, TYPE_JSON, body, len, detail);
  }
  soup_server_message_unpause (msg);
  s->answered = TRUE;
  pcr_gateway_metrics_observe_answer (s->gateway->metrics,
      (g_get_monotonic_time () - s->offer_us) / (gdouble) G_USEC_PER_SEC);
}

static guint
status_for_device_error (const gchar * code)
{
  if (g_str_equal (code, "bad-request") ||
      g_str_equal (code, "no-compatible-codec"))
    return SOUP_STATUS_BAD_REQUEST;
  if (g_str_equal (code, "max-viewers"))
    return SOUP_STATUS_SERVICE_UNAVAILABLE;
  return SOUP_STATUS_BAD_GATEWAY;
}

/* A viewer's offer: checks, the session, subscribe, publish, wait. */
static void
start_session (PcrGateway * self, SoupServerMessage * msg,
    const gchar * device, const gchar * sdp, gboolean whep, gboolean control)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GstSDPMessage) offer = NULL;
  g_autoptr (PcrMessage) request = NULL;
  g_autofree gchar *why = NULL;
  g_autofree gchar *id = NULL;
  g_autofree gchar *payload = NULL;
  g_autofree gchar *stripped = NULL;
  g_autoptr (GPtrArray) taken = NULL;
  guint max_sessions = self->config->max_sessions;
  Session *s;
  gsize len;
  guint i;

  if (!self->connected) {
    reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "the gateway is not connected to the MQTT broker; try again later");
    return;
  }
  why = device_unavailable (self, device);
  if (why != NULL) {
    reply_error (msg, SOUP_STATUS_NOT_FOUND, "%s", why);
    return;
  }
  offer = pcr_sdp_parse (sdp, &error);
  if (offer == NULL) {
    reply_error (msg, SOUP_STATUS_BAD_REQUEST, "bad SDP offer: %s",
        error->message);
    return;
  }
  if (g_hash_table_size (self->sessions) >= max_sessions) {
    reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "too many open sessions (%u); try again later", max_sessions);
    return;
  }
  /* only the control token's holders may open a data channel to the
   * device: it could steer the device (docs/security.md) */
  if (!control)
    stripped = pcr_sdp_strip_application (offer, &taken);
  if (taken != NULL && taken->len == gst_sdp_message_medias_len (offer)) {
    reply_error (msg, SOUP_STATUS_BAD_REQUEST, "the offer has no m-line "
        "but the data channel's, which needs the control token");
    return;
  }
  id = pcr_http_random_hex (SESSION_ID_BYTES, &error);
  if (id == NULL) {
    reply_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "%s", error->message);
    return;
  }

  s = session_new (self, id, device, whep);
  s->ice_servers = pcr_ice_config_get_servers (self->ice,
      g_get_real_time () / G_USEC_PER_SEC);
  session_read_offer (s, offer);
  s->stripped = g_steal_pointer (&taken);
  if (s->stripped != NULL)
    GST_DEBUG ("session %s: %u m=application line(s) taken out of the "
        "offer (no control token)", id, s->stripped->len);
  if (whep) {
    g_autofree gchar *tag = pcr_http_random_hex (ETAG_BYTES, NULL);

    s->etag = g_strdup_printf ("\"%s\"", tag ? tag : id);
  }

  /* bulk ICE: the device answers with all its candidates; it gets the
   * same STUN/TURN servers as the viewer. Stats for GET .../stats; a
   * device that does not know them ignores the field. */
  request = pcr_message_new_offer (stripped ? stripped : sdp, FALSE);
  request->want_stats = TRUE;
  for (i = 0; i < s->ice_servers->len; i++)
    g_ptr_array_add (request->ice_servers,
        pcr_ice_server_copy (g_ptr_array_index (s->ice_servers, i)));
  payload = pcr_message_to_json (request, &len);

  /* subscribe before the offer: replies are not retained, and the broker
   * handles one client's packets in order */
  if (!pcr_mqtt_subscribe (self->mqtt, s->out_topic) ||
      !pcr_mqtt_publish (self->mqtt, s->in_topic, payload, len, FALSE)) {
    session_unsubscribe (s);
    session_free (s);
    reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "cannot reach the MQTT broker; try again later");
    return;
  }
  s->offer_us = g_get_monotonic_time ();
  g_hash_table_insert (self->sessions, s->id, s);
  g_message ("session %s: offer to device %s (%s, %u ICE servers%s)",
      s->id, device, whep ? "WHEP" : "start-webrtc", s->ice_servers->len,
      control ? ", control token" : "");
  session_wait (s, msg, self->config->answer_timeout);
}

/* A session that relays @request to the device (not a viewer's offer) and
 * waits @timeout_s for its reply: the checks, subscribe, publish, wait.
 * NULL when @msg already got an error reply. */
static Session *
start_request (PcrGateway * self, SoupServerMessage * msg,
    const gchar * device, SessionKind kind, const PcrMessage * request,
    guint timeout_s)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *id = NULL;
  g_autofree gchar *payload = NULL;
  Device *d = g_hash_table_lookup (self->devices, device);
  guint max_sessions = self->config->max_sessions;
  Session *s;
  gsize len;

  if (d == NULL) {
    reply_error (msg, SOUP_STATUS_NOT_FOUND, "unknown device \"%s\" (no "
        "status seen from it)", device);
    return NULL;
  }
  if (!self->connected) {
    reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "the gateway is not connected to the MQTT broker; try again later");
    return NULL;
  }
  if (g_strcmp0 (d->state, "offline") == 0) {
    reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "device \"%s\" is "
        "offline", device);
    return NULL;
  }
  if (g_hash_table_size (self->sessions) >= max_sessions) {
    reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "too many open sessions (%u); try again later", max_sessions);
    return NULL;
  }
  id = pcr_http_random_hex (SESSION_ID_BYTES, &error);
  if (id == NULL) {
    reply_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "%s", error->message);
    return NULL;
  }
  s = session_new (self, id, device, FALSE);
  s->kind = kind;
  payload = pcr_message_to_json (request, &len);
  if (!pcr_mqtt_subscribe (self->mqtt, s->out_topic) ||
      !pcr_mqtt_publish (self->mqtt, s->in_topic, payload, len, FALSE)) {
    session_unsubscribe (s);
    session_free (s);
    reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "cannot reach the MQTT broker; try again later");
    return NULL;
  }
  s->offer_us = g_get_monotonic_time ();
  g_hash_table_insert (self->sessions, s->id, s);
  GST_INFO ("session %s: %s to device %s", s->id, payload, device);
  session_wait (s, msg, timeout_s);
  return s;
}

/* GET /api/snapshot/D: asks the device for a picture and waits for its
 * parts (docs/signalling.md, "Snapshots"). */
static void
start_snapshot (PcrGateway * self, SoupServerMessage * msg,
    const gchar * device)
{
  g_autoptr (PcrMessage) request = pcr_message_new_snapshot ();

  start_request (self, msg, device, SESSION_SNAPSHOT, request,
      SNAPSHOT_TIMEOUT_S);
}

/* *INDENT-OFF* */
static void request_fail (Session * s, guint status, const gchar * format,
    ...) G_GNUC_PRINTF (3, 4);
/* *INDENT-ON* */

static void
request_fail (Session * s, guint status, const gchar * format, ...)
{
  g_autofree gchar *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  session_reply_error (s, status, "%s", message);
  session_end (s, FALSE, message);
}

/* One part of the picture: they come in order (one publisher, one topic),
 * each saying the same of the whole. */
static void
snapshot_part (Session * s, const PcrImagePart * part)
{
  g_autoptr (SoupServerMessage) msg = NULL;
  g_autofree gchar *detail = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (part->data, &len);
  guint next = s->image ? s->image_parts : 0;

  if (s->image == NULL) {
    s->image = g_byte_array_sized_new (part->size);
    s->image_parts = 0;
    s->image_size = part->size;
    s->image_width = part->width;
    s->image_height = part->height;
  }
  if (part->part != next || part->size != s->image_size ||
      part->width != s->image_width || part->height != s->image_height ||
      s->image->len + len > s->image_size) {
    request_fail (s, SOUP_STATUS_BAD_GATEWAY, "device %s sent part %u of "
        "its picture where part %u of %u bytes was due", s->device,
        part->part, next, s->image_size);
    return;
  }
  g_byte_array_append (s->image, data, len);
  s->image_parts++;
  if (s->image_parts < part->parts)
    return;
  if (s->image->len != s->image_size) {
    request_fail (s, SOUP_STATUS_BAD_GATEWAY, "device %s sent %u of the "
        "%u bytes of its picture", s->device, s->image->len, s->image_size);
    return;
  }
  msg = session_take_request (s);
  if (msg != NULL) {
    detail = g_strdup_printf ("snapshot of device %s, %ux%u, %u bytes in "
        "%" G_GINT64_FORMAT " ms", s->device, s->image_width,
        s->image_height, s->image->len,
        (g_get_monotonic_time () - s->offer_us) / 1000);
    soup_message_headers_replace (soup_server_message_get_response_headers
        (msg), "Cache-Control", "no-store");
    reply_body (msg, SOUP_STATUS_OK, TYPE_JPEG, (const gchar *)
        s->image->data, s->image->len, detail);
    soup_server_message_unpause (msg);
  }
  session_remove (s);
}

static guint
status_for_snapshot_error (const gchar * code)
{
  /* bad-request: a device from before snapshots ("unknown type") */
  if (g_str_equal (code, "no-snapshot") || g_str_equal (code, "bad-request"))
    return SOUP_STATUS_NOT_IMPLEMENTED;
  if (g_str_equal (code, "busy"))
    return SOUP_STATUS_SERVICE_UNAVAILABLE;
  return SOUP_STATUS_BAD_GATEWAY;
}

static void
handle_snapshot_message (Session * s, const PcrMessage * message)
{
  switch (message->type) {
    case PCR_MESSAGE_IMAGE:
      snapshot_part (s, &message->image);
      break;
    case PCR_MESSAGE_ERROR_MSG:{
      g_autofree gchar *code = pcr_quote_untrusted (message->code, 64);
      g_autofree gchar *text = pcr_quote_untrusted (message->message, 400);

      request_fail (s, status_for_snapshot_error (message->code),
          "device %s gave no picture: %s: %s", s->device, code, text);
      break;
    }
    default:
      GST_DEBUG ("session %s: a %d message for a snapshot ignored", s->id,
          message->type);
      break;
  }
}

/* ---- recordings (docs/recording.md) ---- */

/* The device did something: its time to do the next starts again. */
static void
session_touch (Session * s, guint timeout_s)
{
  clear_source (&s->timeout_source);
  s->timeout_s = timeout_s;
  s->timeout_source = g_timeout_source_new (timeout_s * 1000);
  g_source_set_callback (s->timeout_source, on_answer_timeout, s, NULL);
  g_source_attach (s->timeout_source, s->gateway->context);
}

static void
session_reply_json (Session * s, JsonBuilder * builder, const gchar * detail)
{
  g_autoptr (SoupServerMessage) msg = session_take_request (s);
  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  g_autofree gchar *body = NULL;
  gsize len;

  if (msg == NULL)
    return;
  body = pcr_http_json_to_string (root, &len);
  soup_message_headers_replace (soup_server_message_get_response_headers
      (msg), "Cache-Control", "no-store");
  reply_body (msg, SOUP_STATUS_OK, TYPE_JSON, body, len, detail);
  soup_server_message_unpause (msg);
}

static gboolean
session_send (Session * s, PcrMessage * request)
{
  g_autoptr (PcrMessage) owned = request;

  return session_publish (s, owned);
}

/* A download cut short after its headers went: the client sees a body
 * shorter than its Content-Length. */
static void
fetch_abort (Session * s, const gchar * why)
{
  g_message ("session %s: download of %s from device %s cut off at %"
      G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " bytes: %s", s->id,
      s->name, s->device, s->received, s->size, why);
  session_cut (s);
  session_remove (s);
}

/* Asks for more while the client keeps up: at most FETCH_WINDOW bytes
 * asked for and not yet written to it. Then the wait: for the device's
 * chunks, or with none asked for, for the client. FALSE when the
 * download ended (@s is gone). */
static gboolean
fetch_more (Session * s)
{
  while (s->requested < s->end &&
      s->requested - s->written < FETCH_WINDOW) {
    guint length = (guint) MIN ((guint64) PCR_CHUNK_MAX,
        s->end - s->requested);

    if (!session_send (s, pcr_message_new_fetch (s->name, s->requested,
                length))) {
      fetch_abort (s, "the broker is gone");
      return FALSE;
    }
    s->requested += length;
  }
  session_touch (s, s->requested > s->received ? REPLY_TIMEOUT_S :
      DOWNLOAD_IDLE_S);
  return TRUE;
}

static void
on_wrote_body_data (SoupServerMessage * msg, guint chunk_size, Session * s)
{
  s->written += chunk_size;
  if (s->streaming)
    fetch_more (s);
}

static void
fetch_finish (Session * s)
{
  g_autoptr (SoupServerMessage) msg = session_detach_request (s);

  GST_INFO ("session %s: %s of device %s, %" G_GUINT64_FORMAT " bytes in %"
      G_GINT64_FORMAT " ms", s->id, s->name, s->device, s->size,
      (g_get_monotonic_time () - s->offer_us) / 1000);
  if (msg != NULL) {
    soup_message_body_complete (soup_server_message_get_response_body (msg));
    soup_server_message_unpause (msg);
  }
  s->streaming = FALSE;
  session_remove (s);
}

/* The reply's headers, with the first chunk: from here the body goes out
 * as the chunks come, [@start, @end) of the segment's @size bytes (206
 * with its Content-Range when @partial: a byte range was asked for, even
 * all of them, as browsers seeking in a video expect). */
static void
fetch_begin (Session * s, guint64 size, guint64 start, guint64 end,
    gboolean partial)
{
  SoupServerMessage *msg = s->pending;
  SoupMessageHeaders *headers = soup_server_message_get_response_headers
      (msg);
  guint status = partial ? SOUP_STATUS_PARTIAL_CONTENT : SOUP_STATUS_OK;
  g_autofree gchar *detail = partial ? g_strdup_printf ("recording %s of "
      "device %s, bytes %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT " of %"
      G_GUINT64_FORMAT, s->name, s->device, start, end - 1, size) :
      g_strdup_printf ("recording %s of device %s, %" G_GUINT64_FORMAT
      " bytes", s->name, s->device, size);

  s->size = size;
  s->end = end;
  s->streaming = TRUE;
  soup_message_headers_set_content_length (headers, end - start);
  if (partial)
    soup_message_headers_set_content_range (headers, start, end - 1, size);
  soup_message_headers_replace (headers, "Accept-Ranges", "bytes");
  soup_message_headers_replace (headers, "Content-Type", TYPE_MP4);
  soup_message_headers_replace (headers, "Cache-Control", "private");
  soup_server_message_set_status (msg, status, NULL);
  soup_message_body_set_accumulate (soup_server_message_get_response_body
      (msg), FALSE);
  s->wrote_handler = g_signal_connect (msg, "wrote-body-data",
      G_CALLBACK (on_wrote_body_data), s);
  log_reply (msg, status, detail);
  /* the client takes its time from here; the device's pace is ours */
  read_deadline (s->gateway, msg, FALSE);
}

/* The first chunk says the segment's size: the reply's headers go, with
 * the range asked for. FALSE when the reply is done or the chunk is not
 * part of the body (a ranged request's first byte: the body is fetched
 * from the range's start). */
static gboolean
fetch_first (Session * s, const PcrMessage * chunk)
{
  guint64 start = 0, end = chunk->size;
  gboolean partial = FALSE;

  if (s->range) {
    switch (pcr_http_byte_range (s->range, chunk->size, &start, &end)) {
      case PCR_HTTP_RANGE_UNSATISFIABLE:{
        g_autofree gchar *range = g_strdup_printf ("bytes */%"
            G_GUINT64_FORMAT, chunk->size);

        soup_message_headers_replace (soup_server_message_get_response_headers
            (s->pending), "Content-Range", range);
        request_fail (s, SOUP_STATUS_REQUESTED_RANGE_NOT_SATISFIABLE,
            "%s has %" G_GUINT64_FORMAT " bytes: the range asked for is "
            "not in it", s->name, chunk->size);
        return FALSE;
      }
      case PCR_HTTP_RANGE_OK:
        partial = TRUE;
        break;
      case PCR_HTTP_RANGE_NONE:
        break;
    }
  }
  fetch_begin (s, chunk->size, start, end, partial);
  if (g_str_equal (soup_server_message_get_method (s->pending),
          SOUP_METHOD_HEAD)) {
    fetch_finish (s);
    return FALSE;
  }
  if (!s->range)
    return TRUE;
  s->requested = s->received = s->written = start;
  fetch_more (s);
  return FALSE;
}

static void
fetch_chunk (Session * s, const PcrMessage * chunk)
{
  gsize len = g_bytes_get_size (chunk->data);

  /* the segment being written grows meanwhile: the reply is what it had
   * when the first chunk came; one that shrank is out of place */
  if (!g_str_equal (chunk->name, s->name) || chunk->offset != s->received ||
      (s->streaming && chunk->size < s->size) ||
      (len == 0 && chunk->size > chunk->offset)) {
    if (s->streaming)
      fetch_abort (s, "the device sent a chunk out of place");
    else
      request_fail (s, SOUP_STATUS_BAD_GATEWAY, "device %s sent a chunk "
          "out of place", s->device);
    return;
  }
  if (!s->streaming && !fetch_first (s, chunk))
    return;
  len = (gsize) MIN ((guint64) len, s->end - s->received);
  if (len > 0) {
    g_autoptr (GBytes) part = g_bytes_new_from_bytes (chunk->data, 0, len);

    soup_message_body_append_bytes (soup_server_message_get_response_body
        (s->pending), part);
    soup_server_message_unpause (s->pending);
  }
  s->received += len;
  if (s->received >= s->end) {
    fetch_finish (s);
    return;
  }
  fetch_more (s);
}

/* The segments so far, as the HTTP API lists them. */
static void
list_segments (Session * s, const PcrMessage * page)
{
  guint i;

  for (i = 0; i < page->segments->len; i++) {
    const PcrSegment *segment = g_ptr_array_index (page->segments, i);
    g_autoptr (GDateTime) start = g_date_time_new_from_unix_utc
        (segment->start);
    g_autofree gchar *iso = start ?
        g_date_time_format (start, "%Y-%m-%dT%H:%M:%SZ") : NULL;

    json_builder_begin_object (s->list);
    json_builder_set_member_name (s->list, "name");
    json_builder_add_string_value (s->list, segment->name);
    json_builder_set_member_name (s->list, "start");
    json_builder_add_string_value (s->list, iso ? iso : "");
    json_builder_set_member_name (s->list, "durationMs");
    json_builder_add_int_value (s->list, segment->duration_ms);
    json_builder_set_member_name (s->list, "bytes");
    json_builder_add_int_value (s->list, segment->bytes);
    json_builder_end_object (s->list);
  }
  s->received += page->segments->len;
  /* more pages: ask for the next (a device's list can change meanwhile:
   * a total that shrinks ends it) */
  if (page->segments->len > 0 && page->from + page->segments->len <
      page->total && s->received < 100000) {
    session_touch (s, REPLY_TIMEOUT_S);
    if (!session_send (s, pcr_message_new_recordings (page->from +
                page->segments->len)))
      request_fail (s, SOUP_STATUS_SERVICE_UNAVAILABLE, "cannot reach the "
          "MQTT broker; try again later");
    return;
  }
  json_builder_end_array (s->list);
  json_builder_set_member_name (s->list, "recording");
  json_builder_add_boolean_value (s->list, page->record);
  json_builder_end_object (s->list);
  {
    g_autofree gchar *detail = g_strdup_printf ("%" G_GUINT64_FORMAT
        " recordings of device %s", s->received, s->device);

    session_reply_json (s, s->list, detail);
  }
  session_remove (s);
}

static guint
status_for_recording_error (Session * s, const gchar * code)
{
  if (g_str_equal (code, "no-recording"))
    return SOUP_STATUS_NOT_IMPLEMENTED;
  if (g_str_equal (code, "not-found"))
    return SOUP_STATUS_NOT_FOUND;
  /* a device from before recordings: "unknown type" */
  if (g_str_equal (code, "bad-request") && s->kind != SESSION_FETCH)
    return SOUP_STATUS_NOT_IMPLEMENTED;
  return SOUP_STATUS_BAD_GATEWAY;
}

static void
handle_recording_message (Session * s, const PcrMessage * message)
{
  if (message->type == PCR_MESSAGE_ERROR_MSG) {
    g_autofree gchar *code = pcr_quote_untrusted (message->code, 64);
    g_autofree gchar *text = pcr_quote_untrusted (message->message, 400);

    if (s->streaming)
      fetch_abort (s, text);
    else
      request_fail (s, status_for_recording_error (s, message->code),
          "device %s: %s: %s", s->device, code, text);
    return;
  }
  if (s->kind == SESSION_RECORD && message->type == PCR_MESSAGE_RECORDING) {
    g_autoptr (JsonBuilder) builder = json_builder_new ();
    g_autofree gchar *detail = g_strdup_printf ("device %s %s", s->device,
        message->record ? "records" : "does not record");

    json_builder_begin_object (builder);
    json_builder_set_member_name (builder, "recording");
    json_builder_add_boolean_value (builder, message->record);
    json_builder_end_object (builder);
    session_reply_json (s, builder, detail);
    session_remove (s);
  } else if (s->kind == SESSION_RECORDINGS &&
      message->type == PCR_MESSAGE_SEGMENTS) {
    list_segments (s, message);
  } else if (s->kind == SESSION_FETCH && message->type == PCR_MESSAGE_CHUNK) {
    fetch_chunk (s, message);
  } else {
    GST_DEBUG ("session %s: a %d message ignored", s->id, message->type);
  }
}

/* POST /api/record/D {"action":"start"|"stop"} */
static void
handle_record (PcrGateway * self, SoupServerMessage * msg, Route * route)
{
  g_autoptr (JsonNode) root = request_object (msg);
  g_autoptr (PcrMessage) request = NULL;
  g_autofree gchar *action = NULL;
  gboolean bad;

  if (root == NULL)
    return;
  action = json_string_member (json_node_get_object (root), "action", &bad);
  if (action == NULL || (!g_str_equal (action, "start") &&
          !g_str_equal (action, "stop"))) {
    reply_error (msg, SOUP_STATUS_BAD_REQUEST,
        "\"action\" must be \"start\" or \"stop\"");
    return;
  }
  request = pcr_message_new_record (g_str_equal (action, "start"));
  start_request (self, msg, route->device, SESSION_RECORD, request,
      REPLY_TIMEOUT_S);
}

/* GET /api/recordings/D */
static void
handle_recordings (PcrGateway * self, SoupServerMessage * msg, Route * route)
{
  g_autoptr (PcrMessage) request = pcr_message_new_recordings (0);
  Session *s = start_request (self, msg, route->device, SESSION_RECORDINGS,
      request, REPLY_TIMEOUT_S);

  if (s == NULL)
    return;
  s->list = json_builder_new ();
  json_builder_begin_object (s->list);
  json_builder_set_member_name (s->list, "segments");
  json_builder_begin_array (s->list);
}

/* GET /api/recordings/D/NAME: the segment, fetched in chunks; with a
 * Range, its first byte tells the size, then the range is fetched */
static void
handle_recording_get (PcrGateway * self, SoupServerMessage * msg,
    Route * route)
{
  guint first = route->range ? 1 : PCR_CHUNK_MAX;
  g_autoptr (PcrMessage) request = pcr_message_new_fetch (route->name, 0,
      first);
  Session *s = start_request (self, msg, route->device, SESSION_FETCH,
      request, REPLY_TIMEOUT_S);

  if (s == NULL)
    return;
  s->name = g_strdup (route->name);
  s->range = g_strdup (route->range);
  s->requested = first;
}

/* ---- relayed viewers (Janus, docs/http-api.md "Relayed viewers") ---- */

/* *INDENT-OFF* */
static void reply_fallback (SoupServerMessage * msg, const gchar * format,
    ...) G_GNUC_PRINTF (2, 3);
/* *INDENT-ON* */

/* 409 {"error":"...","fallback":"direct"}: the client watches directly. */
static void
reply_fallback (SoupServerMessage * msg, const gchar * format, ...)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree gchar *message = NULL;
  g_autofree gchar *line = NULL;
  g_autofree gchar *body = NULL;
  va_list args;
  gsize len;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  line = pcr_quote_untrusted (message, PCR_HTTP_MAX_ERROR_LINE);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_add_string_value (builder, line);
  json_builder_set_member_name (builder, "fallback");
  json_builder_add_string_value (builder, "direct");
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  body = pcr_http_json_to_string (root, &len);
  reply_body (msg, SOUP_STATUS_CONFLICT, TYPE_JSON, body, len, line);
}

/* NULL when device @id's status says it is relayed and Janus is
 * reachable for it; else why not. */
static gchar *
relay_unavailable (Device * device, const gchar * id)
{
  JsonObject *status = json_node_get_object (device->status);
  JsonNode *node = json_object_get_member (status, "relay");
  g_autofree gchar *state = NULL;
  gboolean bad;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return g_strdup_printf ("device %s is not relayed through Janus (its "
        "status has no \"relay\")", id);
  state = json_string_member (json_node_get_object (node), "state", &bad);
  if (state == NULL)
    return g_strdup_printf ("device %s's relay has no state", id);
  if (g_str_equal (state, "unreachable")) {
    g_autofree gchar *error = json_string_member (json_node_get_object
        (node), "error", &bad);
    g_autofree gchar *shown = pcr_quote_untrusted (error ? error : "", 200);

    return g_strdup_printf ("device %s cannot reach Janus now%s%s", id,
        error ? ": " : "", shown);
  }
  return NULL;
}

/* {"type":"relay"}: the relay is asked for, or its lease renewed. */
static gboolean
session_ask_relay (Session * s)
{
  g_autoptr (PcrMessage) request = pcr_message_new_relay (0, 0);

  return session_publish (s, request);
}

static gboolean
on_relay_end (gpointer user_data)
{
  Session *s = user_data;
  GSource *source = s->end_source;
  g_autofree gchar *why = g_steal_pointer (&s->end_why);

  /* the source is being dispatched: session_free must not destroy it */
  s->end_source = NULL;
  g_source_unref (source);
  session_end (s, s->end_bye, why);
  return G_SOURCE_REMOVE;
}

/* Ends @s from the main loop: a PcrJanus is never freed in its own
 * callback. */
static void
relay_end_later (Session * s, gboolean send_bye, const gchar * why)
{
  if (s->end_source != NULL)
    return;
  s->end_bye = send_bye;
  s->end_why = g_strdup (why);
  s->end_source = g_idle_source_new ();
  g_source_set_callback (s->end_source, on_relay_end, s, NULL);
  g_source_attach (s->end_source, s->gateway->context);
}

/* *INDENT-OFF* */
static void relay_setup_failed (Session * s, const gchar * format, ...)
    G_GNUC_PRINTF (2, 3);
/* *INDENT-ON* */

/* Janus failed before the viewer got its offer: the POST gets 409 (the
 * viewer watches directly), the device a bye. */
static void
relay_setup_failed (Session * s, const gchar * format, ...)
{
  g_autoptr (SoupServerMessage) msg = session_take_request (s);
  g_autofree gchar *message = NULL;
  g_autofree gchar *why = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  why = pcr_quote_untrusted (message, PCR_HTTP_MAX_ERROR_LINE);
  if (msg != NULL) {
    reply_fallback (msg, "%s", why);
    soup_server_message_unpause (msg);
  }
  relay_end_later (s, TRUE, why);
}

/* What Janus (or the way to it) said, fit for a log line and a reply:
 * its reason strings are not ours. */
static gchar *
janus_error_text (const GError * error)
{
  return pcr_quote_untrusted (error ? error->message : "gone", 300);
}

/* Asks Janus to send the viewer the low (or again the high) layer of the
 * camera's simulcast: Janus switches at that layer's next key frame. */
static void
relay_set_layer (Session * s, gboolean low)
{
  g_autoptr (JsonObject) body = json_object_new ();
  g_autoptr (JsonObject) stream = json_object_new ();
  g_autoptr (JsonArray) streams = json_array_new ();

  if (s->janus == NULL || s->low == low)
    return;
  s->low = low;
  g_message ("session %s: the viewer asks for the %s layer", s->id,
      low ? "low" : "high");
  json_object_set_string_member (stream, "mid", "0");
  json_object_set_int_member (stream, "substream", low ? SUBSTREAM_LOW :
      SUBSTREAM_HIGH);
  json_array_add_object_element (streams, json_object_ref (stream));
  json_object_set_string_member (body, "request", "configure");
  json_object_set_array_member (body, "streams", json_array_ref (streams));
  pcr_janus_message (s->janus, body, NULL, NULL, NULL, NULL);
}

static gboolean
on_relay_lease (gpointer user_data)
{
  Session *s = user_data;

  if (!session_ask_relay (s))
    g_message ("session %s: could not renew the relay with device %s "
        "(broker not connected)", s->id, s->device);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_relay_idle (gpointer user_data)
{
  Session *s = user_data;
  GSource *source = s->idle_source;

  s->idle_source = NULL;
  g_source_unref (source);
  session_end (s, TRUE, "no answer to Janus' offer within "
      G_STRINGIFY (RELAY_ANSWER_S) " s");
  return G_SOURCE_REMOVE;
}

/* Janus' reply to the subscriber's join: its offer goes to the viewer. */
static void
on_relay_joined (PcrJanus * janus, JsonObject * reply, const GError * error,
    gpointer user_data)
{
  Session *s = user_data;
  g_autoptr (SoupServerMessage) msg = NULL;
  g_autoptr (GstSDPMessage) offer = NULL;
  g_autoptr (GError) sdp_error = NULL;
  g_autoptr (JsonBuilder) builder = NULL;
  g_autoptr (JsonNode) root = NULL;
  g_autofree gchar *servers = NULL;
  g_autofree gchar *body = NULL;
  g_autofree gchar *location = NULL;
  g_autofree gchar *detail = NULL;
  JsonObject *data;
  JsonNode *servers_node;
  const gchar *sdp;
  gsize len;

  if (error != NULL) {
    g_autofree gchar *why = janus_error_text (error);

    relay_setup_failed (s, "Janus did not let the viewer subscribe to "
        "device %s (room %" G_GUINT64_FORMAT ", feed %" G_GUINT64_FORMAT
        "): %s", s->device, s->room, s->feed, why);
    return;
  }
  data = pcr_janus_plugin_data (reply);
  sdp = pcr_janus_jsep_sdp (reply, "offer");
  if (data == NULL || g_strcmp0 (pcr_janus_string (data, "videoroom", ""),
          "attached") != 0 || sdp == NULL) {
    relay_setup_failed (s, "Janus answered the subscriber's join without "
        "an offer");
    return;
  }
  if (strlen (sdp) > MAX_RELAY_OFFER ||
      (offer = pcr_sdp_parse (sdp, &sdp_error)) == NULL) {
    relay_setup_failed (s, "Janus sent an unusable offer: %s", sdp_error ?
        sdp_error->message : "too large");
    return;
  }
  msg = session_take_request (s);
  if (msg == NULL) {
    relay_end_later (s, TRUE, "nobody waits for Janus' offer");
    return;
  }
  servers = pcr_ice_servers_to_json (s->ice_servers);
  servers_node = json_from_string (servers, NULL);
  builder = json_builder_new ();
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "session");
  json_builder_add_string_value (builder, s->id);
  json_builder_set_member_name (builder, "sdp");
  json_builder_add_string_value (builder, sdp);
  json_builder_set_member_name (builder, "iceServers");
  if (servers_node != NULL)
    json_builder_add_value (builder, servers_node);
  else {
    json_builder_begin_array (builder);
    json_builder_end_array (builder);
  }
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  body = pcr_http_json_to_string (root, &len);
  location = g_strdup_printf ("/api/relay/%s/%s", s->device, s->id);
  soup_message_headers_replace (soup_server_message_get_response_headers
      (msg), "Location", location);
  detail = g_strdup_printf ("session %s: Janus' offer for device %s (room %"
      G_GUINT64_FORMAT ", feed %" G_GUINT64_FORMAT ") in %" G_GINT64_FORMAT
      " ms", s->id, s->device, s->room, s->feed,
      (g_get_monotonic_time () - s->offer_us) / 1000);
  reply_body (msg, SOUP_STATUS_CREATED, TYPE_JSON, body, len, detail);
  soup_server_message_unpause (msg);
  s->stage = RELAY_OFFERED;
  s->idle_source = g_timeout_source_new_seconds (RELAY_ANSWER_S);
  g_source_set_callback (s->idle_source, on_relay_idle, s, NULL);
  g_source_attach (s->idle_source, s->gateway->context);
}

static void
on_relay_connected (PcrJanus * janus, JsonObject * reply,
    const GError * error, gpointer user_data)
{
  Session *s = user_data;
  g_autoptr (JsonObject) body = NULL;
  g_autoptr (JsonObject) stream = NULL;
  g_autoptr (JsonArray) streams = NULL;

  if (error != NULL) {
    g_autofree gchar *why = janus_error_text (error);

    relay_setup_failed (s, "cannot use Janus: %s", why);
    return;
  }
  GST_INFO ("session %s: Janus session %" G_GUINT64_FORMAT, s->id,
      pcr_janus_session_id (janus));
  stream = json_object_new ();
  json_object_set_int_member (stream, "feed", (gint64) s->feed);
  /* the playout-delay extension (10 ms steps): the browser renders each
   * frame once decoded, as a direct viewer's does */
  json_object_set_int_member (stream, "min_delay", 0);
  json_object_set_int_member (stream, "max_delay", 0);
  if (s->low)
    json_object_set_int_member (stream, "substream", SUBSTREAM_LOW);
  streams = json_array_new ();
  json_array_add_object_element (streams, json_object_ref (stream));
  body = json_object_new ();
  json_object_set_string_member (body, "request", "join");
  json_object_set_string_member (body, "ptype", "subscriber");
  json_object_set_int_member (body, "room", (gint64) s->room);
  json_object_set_array_member (body, "streams", json_array_ref (streams));
  pcr_janus_message (janus, body, NULL, NULL, on_relay_joined, s);
}

/* What Janus says of the subscriber on its own: a hangup (ICE or DTLS
 * failed, the viewer's media stopped) or the publisher gone ends it. */
static void
on_relay_event (PcrJanus * janus, JsonObject * event, gpointer user_data)
{
  Session *s = user_data;
  const gchar *kind = pcr_janus_string (event, "janus", "");
  JsonObject *data = pcr_janus_plugin_data (event);
  const gchar *videoroom = data ?
      pcr_janus_string (data, "videoroom", "") : "";

  if (g_str_equal (kind, "hangup")) {
    g_autofree gchar *reason =
        pcr_quote_untrusted (pcr_janus_string (event, "reason", ""), 100);
    g_autofree gchar *why = g_strdup_printf ("Janus hung up (%s)", reason);

    relay_end_later (s, TRUE, why);
  } else if (g_str_equal (kind, "webrtcup")) {
    g_message ("session %s: Janus sends device %s's stream", s->id,
        s->device);
  } else if (g_str_equal (videoroom, "updated") ||
      (g_str_equal (videoroom, "event") && data != NULL &&
          (json_object_has_member (data, "unpublished") ||
              json_object_has_member (data, "leaving")))) {
    /* the camera left Janus or republished: the viewer starts over */
    relay_end_later (s, TRUE, "the camera's stream in Janus changed");
  } else {
    GST_DEBUG ("session %s: Janus event %.40s", s->id, kind);
  }
}

static void
on_relay_lost (PcrJanus * janus, const GError * error, gpointer user_data)
{
  Session *s = user_data;
  g_autofree gchar *text = janus_error_text (error);
  g_autofree gchar *why = g_strdup_printf ("lost the Janus session: %s",
      text);

  relay_end_later (s, TRUE, why);
}

static void
relay_join (Session * s)
{
  PcrGateway *self = s->gateway;

  s->stage = RELAY_JOINING;
  /* Janus gets the answer timeout of its own */
  session_touch (s, self->config->answer_timeout);
  s->janus = pcr_janus_new (self->config->janus_base,
      self->config->janus_apisecret, on_relay_event, on_relay_lost, s);
  pcr_janus_connect (s->janus, "janus.plugin.videoroom", on_relay_connected,
      s);
}

/* The device's messages for a relayed viewer: relay (where it publishes),
 * error, bye (docs/signalling.md). */
static void
handle_relay_message (Session * s, const PcrMessage * message)
{
  switch (message->type) {
    case PCR_MESSAGE_RELAY:
      if (message->room == 0 || message->feed == 0) {
        g_message ("session %s: a relay message from device %s without a "
            "room and a feed ignored", s->id, s->device);
      } else if (s->stage == RELAY_ASKED) {
        s->room = message->room;
        s->feed = message->feed;
        GST_INFO ("session %s: device %s publishes in room %"
            G_GUINT64_FORMAT " as feed %" G_GUINT64_FORMAT, s->id, s->device,
            s->room, s->feed);
        relay_join (s);
      } else if (message->room != s->room || message->feed != s->feed) {
        session_end (s, TRUE, "the device publishes in another room or "
            "feed now");
      } else {
        GST_DEBUG ("session %s: relay renewed", s->id);
      }
      break;
    case PCR_MESSAGE_ERROR_MSG:{
      gboolean unavailable = g_strcmp0 (message->code,
          pcr_error_code_to_string (PCR_ERROR_RELAY_UNAVAILABLE)) == 0;
      g_autofree gchar *code = pcr_quote_untrusted (message->code, 64);
      g_autofree gchar *text = pcr_quote_untrusted (message->message, 400);

      if (s->stage == RELAY_ASKED && unavailable) {
        g_autoptr (SoupServerMessage) msg = session_take_request (s);

        if (msg != NULL) {
          reply_fallback (msg, "device %s cannot relay: %s", s->device,
              text);
          soup_server_message_unpause (msg);
        }
        session_end (s, FALSE, "the device cannot relay");
      } else if (s->stage == RELAY_ASKED) {
        session_reply_error (s, status_for_device_error (message->code),
            "device %s refused the relay: %s: %s", s->device, code, text);
        session_end (s, FALSE, "the device refused the relay");
      } else if (unavailable) {
        session_end (s, TRUE, "the device lost Janus");
      } else if (g_str_equal (message->code, "unknown-session")) {
        session_end (s, FALSE, "the device does not know it");
      } else {
        g_message ("session %s: device %s reports %s: %s", s->id, s->device,
            code, text);
      }
      break;
    }
    case PCR_MESSAGE_BYE:
      session_reply_error (s, SOUP_STATUS_SERVICE_UNAVAILABLE,
          "device %s ended the session", s->device);
      session_end (s, FALSE, "bye from the device");
      break;
    default:
      GST_DEBUG ("session %s: a %d message for a relayed viewer ignored",
          s->id, message->type);
      break;
  }
}

/* The body {"layer":"low"|"high"} of a relay request; @fallback when it
 * has no "layer" (NULL: one is needed). FALSE, with the reply set, when
 * the body is anything else. */
static gboolean
read_layer (SoupServerMessage * msg, const gchar * fallback, gboolean * low)
{
  g_autoptr (JsonNode) root = request_object (msg);
  g_autofree gchar *layer = NULL;
  gboolean bad = FALSE;

  if (root == NULL)
    return FALSE;
  layer = json_string_member (json_node_get_object (root), "layer", &bad);
  if (layer == NULL && !bad)
    layer = g_strdup (fallback);
  if (layer == NULL || (!g_str_equal (layer, "low") &&
          !g_str_equal (layer, "high"))) {
    reply_error (msg, SOUP_STATUS_BAD_REQUEST,
        "expected {\"layer\":\"low\"} or {\"layer\":\"high\"}");
    return FALSE;
  }
  *low = g_str_equal (layer, "low");
  return TRUE;
}

/* POST /api/relay/D (empty body or a JSON object) */
static void
handle_relay_post (PcrGateway * self, SoupServerMessage * msg,
    Route * route)
{
  g_autoptr (GBytes) body = request_body (msg);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *why = NULL;
  g_autofree gchar *id = NULL;
  const gchar *device = route->device;
  guint max_sessions = self->config->max_sessions;
  gboolean low = FALSE;
  Device *d;
  Session *s;

  if (g_bytes_get_size (body) > 0 && !read_layer (msg, "high", &low))
    return;
  if (self->config->janus_base == NULL) {
    reply_fallback (msg, "this gateway has no Janus (--janus): watch "
        "directly");
    return;
  }
  if (!self->connected) {
    reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "the gateway is not connected to the MQTT broker; try again later");
    return;
  }
  why = device_unavailable (self, device);
  if (why != NULL) {
    reply_error (msg, SOUP_STATUS_NOT_FOUND, "%s", why);
    return;
  }
  d = g_hash_table_lookup (self->devices, device);
  why = relay_unavailable (d, device);
  if (why != NULL) {
    reply_fallback (msg, "%s", why);
    return;
  }
  if (g_hash_table_size (self->sessions) >= max_sessions) {
    reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "too many open sessions (%u); try again later", max_sessions);
    return;
  }
  id = pcr_http_random_hex (SESSION_ID_BYTES, &error);
  if (id == NULL) {
    reply_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "%s", error->message);
    return;
  }
  s = session_new (self, id, device, FALSE);
  s->kind = SESSION_RELAY;
  s->stage = RELAY_ASKED;
  s->low = low;
  s->ice_servers = pcr_ice_config_get_servers (self->ice,
      g_get_real_time () / G_USEC_PER_SEC);
  if (!pcr_mqtt_subscribe (self->mqtt, s->out_topic) ||
      !session_ask_relay (s)) {
    session_unsubscribe (s);
    session_free (s);
    reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "cannot reach the MQTT broker; try again later");
    return;
  }
  s->offer_us = g_get_monotonic_time ();
  g_hash_table_insert (self->sessions, s->id, s);
  g_message ("session %s: relay asked of device %s", s->id, device);
  s->lease_source = g_timeout_source_new_seconds (RELAY_LEASE_S);
  g_source_set_callback (s->lease_source, on_relay_lease, s, NULL);
  g_source_attach (s->lease_source, self->context);
  session_wait (s, msg, self->config->answer_timeout);
}

static Session *
find_relay_session (PcrGateway * self, Route * route)
{
  Session *s = g_hash_table_lookup (self->sessions, route->session);

  return (s != NULL && s->kind == SESSION_RELAY &&
      g_str_equal (s->device, route->device)) ? s : NULL;
}

static void
on_relay_started (PcrJanus * janus, JsonObject * reply,
    const GError * error, gpointer user_data)
{
  Session *s = user_data;
  g_autoptr (SoupServerMessage) msg = session_take_request (s);
  g_autofree gchar *detail = NULL;

  if (error != NULL) {
    g_autofree gchar *text = janus_error_text (error);
    g_autofree gchar *why = g_strdup_printf ("Janus refused the viewer's "
        "answer: %s", text);

    if (msg != NULL) {
      reply_error (msg, SOUP_STATUS_BAD_GATEWAY, "%s", why);
      soup_server_message_unpause (msg);
    }
    relay_end_later (s, TRUE, why);
    return;
  }
  s->stage = RELAY_LIVE;
  if (msg != NULL) {
    detail = g_strdup_printf ("session %s: the answer went to Janus", s->id);
    reply_body (msg, SOUP_STATUS_NO_CONTENT, NULL, NULL, 0, detail);
    soup_server_message_unpause (msg);
  }
}

/* PATCH /api/relay/D/S, application/json {"layer":"low"|"high"}: the
 * viewer on a link too slow for the camera's high simulcast layer (or
 * well again) asks Janus for the other one. */
static void
relay_patch_layer (Session * s, SoupServerMessage * msg)
{
  gboolean low;

  if (!read_layer (msg, NULL, &low))
    return;
  if (s->stage != RELAY_LIVE) {
    reply_error (msg, SOUP_STATUS_CONFLICT, "the session does not play yet");
    return;
  }
  relay_set_layer (s, low);
  reply_body (msg, SOUP_STATUS_NO_CONTENT, NULL, NULL, 0, "layer");
}

/* PATCH /api/relay/D/S, application/sdp: the viewer's answer to Janus'
 * offer, its candidates inside. */
static void
handle_relay_patch (PcrGateway * self, SoupServerMessage * msg,
    Route * route)
{
  g_autoptr (GBytes) body = request_body (msg);
  g_autoptr (GError) error = NULL;
  g_autoptr (GstSDPMessage) answer = NULL;
  g_autoptr (JsonObject) start = NULL;
  g_autofree gchar *sdp = NULL;
  Session *s = find_relay_session (self, route);
  gsize len;
  const gchar *data = g_bytes_get_data (body, &len);

  if (s == NULL) {
    reply_error (msg, SOUP_STATUS_NOT_FOUND, "unknown session");
    return;
  }
  if (pcr_http_content_type_is (msg, TYPE_JSON)) {
    relay_patch_layer (s, msg);
    return;
  }
  if (len == 0 || memchr (data, '\0', len) != NULL ||
      !g_utf8_validate (data, len, NULL)) {
    reply_error (msg, SOUP_STATUS_BAD_REQUEST,
        "bad SDP answer: the body is empty or not UTF-8 text");
    return;
  }
  sdp = g_strndup (data, len);
  answer = pcr_sdp_parse (sdp, &error);
  if (answer == NULL) {
    reply_error (msg, SOUP_STATUS_BAD_REQUEST, "bad SDP answer: %s",
        error->message);
    return;
  }
  if (s->stage != RELAY_OFFERED) {
    reply_error (msg, SOUP_STATUS_CONFLICT, "%s", s->stage < RELAY_OFFERED ?
        "the session has no offer to answer yet" :
        "the session's offer was answered already");
    return;
  }
  clear_source (&s->idle_source);
  s->stage = RELAY_STARTING;
  start = json_object_new ();
  json_object_set_string_member (start, "request", "start");
  pcr_janus_message (s->janus, start, "answer", sdp, on_relay_started, s);
  session_wait (s, msg, self->config->answer_timeout);
}

/* A viewer's DELETE of @s (NULL: not found): 200, and the session ends
 * with a bye; a request still waiting for the device gets 503 @pending. */
static void
delete_session (SoupServerMessage * msg, Session * s, const gchar * pending,
    const gchar * why)
{
  if (s == NULL) {
    reply_error (msg, SOUP_STATUS_NOT_FOUND, "unknown session");
    return;
  }
  session_reply_error (s, SOUP_STATUS_SERVICE_UNAVAILABLE, "%s", pending);
  reply_body (msg, SOUP_STATUS_OK, NULL, NULL, 0, s->id);
  session_end (s, TRUE, why);
}

static void
handle_relay_delete (PcrGateway * self, SoupServerMessage * msg,
    Route * route)
{
  delete_session (msg, find_relay_session (self, route), "the session was "
      "deleted", "deleted by the viewer (relay DELETE)");
}

static guint
count_relay_sessions (PcrGateway * self)
{
  GHashTableIter iter;
  Session *s;
  guint n = 0;

  g_hash_table_iter_init (&iter, self->sessions);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) & s))
    n += s->kind == SESSION_RELAY;
  return n;
}

/* ---- device messages ---- */

static void
handle_status (PcrGateway * self, const gchar * id, GBytes * payload)
{
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) gone = NULL;
  g_autofree gchar *state = NULL;
  gboolean bad, changed;
  GHashTableIter iter;
  Session *s;
  Device *device;
  gsize len;
  guint i;
  const gchar *data = g_bytes_get_data (payload, &len);

  if (!pcr_id_is_valid (id)) {
    GST_DEBUG ("status of an invalid device id ignored");
    return;
  }
  if (len == 0) {
    /* a cleared retained status: the device is gone for good */
    if (g_hash_table_remove (self->devices, id))
      g_message ("device %s: status cleared, forgotten", id);
    pcr_gateway_metrics_forget (self->metrics, id);
    return;
  }
  if (len > MAX_STATUS_SIZE) {
    g_message ("device %s: status of %" G_GSIZE_FORMAT " bytes ignored "
        "(limit %d)", id, len, MAX_STATUS_SIZE);
    return;
  }
  root = pcr_json_parse_object (data, len, &error);
  if (root == NULL) {
    g_message ("device %s: malformed status ignored: %s", id, error->message);
    return;
  }
  state = json_string_member (json_node_get_object (root), "state", &bad);

  device = g_hash_table_lookup (self->devices, id);
  if (device == NULL) {
    if (g_hash_table_size (self->devices) >= MAX_DEVICES) {
      g_message ("device %s: ignored, already %d devices", id, MAX_DEVICES);
      return;
    }
    device = g_new0 (Device, 1);
    g_hash_table_insert (self->devices, g_strdup (id), device);
    changed = TRUE;
  } else {
    changed = g_strcmp0 (device->state, state) != 0;
  }
  g_clear_pointer (&device->status, json_node_unref);
  device->status = g_steal_pointer (&root);
  g_free (device->state);
  device->state = g_steal_pointer (&state);
  if (changed) {
    g_autofree gchar *shown = pcr_quote_untrusted (device->state, 40);

    g_message ("device %s: %s", id, device->state ? shown : "(no state)");
  }

  pcr_gateway_metrics_set_online (self->metrics, id,
      g_strcmp0 (device->state, "offline") != 0);
  if (g_strcmp0 (device->state, "offline") != 0)
    return;
  /* its sessions are over; nobody is left to answer */
  gone = g_ptr_array_new ();
  g_hash_table_iter_init (&iter, self->sessions);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) & s)) {
    if (g_str_equal (s->device, id))
      g_ptr_array_add (gone, s);
  }
  for (i = 0; i < gone->len; i++) {
    s = g_ptr_array_index (gone, i);
    session_reply_error (s, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "device %s went offline", id);
    session_end (s, FALSE, "the device went offline");
  }
}

/* A device's figures (docs/signalling.md, "Metrics"): only from a device
 * whose status came, and only the checked fields are kept. */
static void
handle_metrics (PcrGateway * self, const gchar * id, GBytes * payload)
{
  g_auto (PcrMetrics) report = { 0 };
  g_autoptr (GError) error = NULL;
  gsize len;
  const gchar *data = g_bytes_get_data (payload, &len);

  if (!pcr_id_is_valid (id) || !g_hash_table_contains (self->devices, id)) {
    GST_DEBUG ("metrics of an unknown device ignored");
    return;
  }
  if (!pcr_metrics_parse (data, len, &report, &error)) {
    g_autofree gchar *why = pcr_quote_untrusted (error->message, 200);

    GST_INFO ("device %s: metrics ignored: %s", id, why);
    return;
  }
  if (report.dropped > 0)
    GST_INFO ("device %s: %u bad metrics fields left out", id,
        report.dropped);
  pcr_gateway_metrics_report (self->metrics, id, &report,
      g_get_monotonic_time ());
}

static void
handle_device_message (PcrGateway * self, const gchar * device,
    const gchar * id, GBytes * payload)
{
  g_autoptr (PcrMessage) message = NULL;
  g_autoptr (GError) error = NULL;
  Session *s = g_hash_table_lookup (self->sessions, id);
  gsize len;
  const gchar *data = g_bytes_get_data (payload, &len);

  if (s == NULL || !g_str_equal (s->device, device)) {
    GST_DEBUG ("message for a session that is not ours ignored");
    return;
  }
  message = pcr_message_parse (data, len, &error);
  if (message == NULL) {
    g_autofree gchar *why = pcr_quote_untrusted (error->message, 200);

    g_message ("session %s: malformed message from device %s ignored: %s",
        s->id, device, why);
    return;
  }
  if (s->kind == SESSION_SNAPSHOT) {
    handle_snapshot_message (s, message);
    return;
  }
  if (s->kind == SESSION_RELAY) {
    handle_relay_message (s, message);
    return;
  }
  if (s->kind != SESSION_VIEWER) {
    handle_recording_message (s, message);
    return;
  }
  switch (message->type) {
    case PCR_MESSAGE_ANSWER:
      if (s->pending != NULL)
        session_answer (s, message->sdp);
      else
        GST_INFO ("session %s: a second answer ignored", s->id);
      break;
    case PCR_MESSAGE_ERROR_MSG:{
      g_autofree gchar *code = pcr_quote_untrusted (message->code, 64);
      g_autofree gchar *text = pcr_quote_untrusted (message->message, 400);

      if (s->pending != NULL) {
        session_reply_error (s, status_for_device_error (message->code),
            "device %s refused the offer: %s: %s", device, code, text);
        session_end (s, FALSE, "the device refused the offer");
      } else if (g_str_equal (message->code, "unknown-session")) {
        session_end (s, FALSE, "the device does not know it");
      } else {
        g_message ("session %s: device %s reports %s: %s", s->id, device,
            code, text);
      }
      break;
    }
    case PCR_MESSAGE_BYE:
      session_reply_error (s, SOUP_STATUS_SERVICE_UNAVAILABLE,
          "device %s ended the session before answering", device);
      session_end (s, FALSE, "bye from the device");
      break;
    case PCR_MESSAGE_CANDIDATE:
      /* bulk ICE: the answer holds the device's candidates */
      GST_DEBUG ("session %s: trickled candidate ignored", s->id);
      break;
    case PCR_MESSAGE_OFFER:
      g_message ("session %s: an offer from device %s ignored", s->id, device);
      break;
    case PCR_MESSAGE_RELAY:
      GST_DEBUG ("session %s: a relay message for a direct viewer ignored",
          s->id);
      break;
    case PCR_MESSAGE_SNAPSHOT:
    case PCR_MESSAGE_IMAGE:
    case PCR_MESSAGE_RECORD:
    case PCR_MESSAGE_RECORDING:
    case PCR_MESSAGE_RECORDINGS:
    case PCR_MESSAGE_SEGMENTS:
    case PCR_MESSAGE_FETCH:
    case PCR_MESSAGE_CHUNK:
      GST_DEBUG ("session %s: a %s message ignored", s->id,
          message->type == PCR_MESSAGE_IMAGE ? "snapshot" : "recording");
      break;
    case PCR_MESSAGE_STATS:
      /* parsed, so every field is checked and bounded: only those are
       * kept and served, never the device's text */
      if (len > MAX_STATS_SIZE) {
        g_message ("session %s: stats of %" G_GSIZE_FORMAT " bytes from "
            "device %s ignored (limit %d)", s->id, len, device,
            MAX_STATS_SIZE);
        break;
      }
      g_clear_pointer (&s->stats, pcr_message_free);
      s->stats = g_steal_pointer (&message);
      s->stats_us = g_get_monotonic_time ();
      break;
  }
}

static void
on_mqtt_message (PcrMqtt * mqtt, const gchar * topic, GBytes * payload,
    gpointer user_data)
{
  PcrGateway *self = user_data;
  const gchar *prefix = self->config->topic_prefix;
  gsize plen = strlen (prefix);
  g_auto (GStrv) parts = NULL;
  guint n;

  if (!g_str_has_prefix (topic, prefix) || topic[plen] != '/')
    return;
  parts = g_strsplit (topic + plen + 1, "/", 4);
  n = g_strv_length (parts);
  if (n == 2 && g_str_equal (parts[1], "status"))
    handle_status (self, parts[0], payload);
  else if (n == 2 && g_str_equal (parts[1], "metrics"))
    handle_metrics (self, parts[0], payload);
  else if (n == 3 && g_str_equal (parts[1], "out"))
    handle_device_message (self, parts[0], parts[2], payload);
}

static void
on_mqtt_connection (PcrMqtt * mqtt, gboolean connected, gpointer user_data)
{
  PcrGateway *self = user_data;
  GHashTableIter iter;
  Session *s;

  self->connected = connected;
  pcr_gateway_metrics_set_connected (self->metrics, connected);
  if (!connected) {
    g_message ("lost the MQTT broker %s; reconnecting", self->config->broker);
    return;
  }
  g_message ("connected to the MQTT broker %s", self->config->broker);
  /* the retained statuses come again; one cleared meanwhile must not stay */
  g_hash_table_remove_all (self->devices);
  pcr_gateway_metrics_forget (self->metrics, NULL);
  pcr_mqtt_subscribe (mqtt, self->status_pattern);
  pcr_mqtt_subscribe (mqtt, self->metrics_pattern);
  /* subscriptions do not survive a reconnect */
  g_hash_table_iter_init (&iter, self->sessions);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) & s))
    pcr_mqtt_subscribe (mqtt, s->out_topic);
}

/* Why the broker cannot be used, once per distinct failure (a refused
 * client certificate, a wrong password, ...); pcr-mqtt keeps retrying. */
static void
on_mqtt_error (PcrMqtt * mqtt, const gchar * message, gpointer user_data)
{
  g_warning ("MQTT: %s; retrying", message);
}

/* ---- HTTP handlers ---- */

static void
handle_options (SoupServerMessage * msg, Route * route)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  if (route->kind == ROUTE_NOT_FOUND) {
    reply_error (msg, SOUP_STATUS_NOT_FOUND, "no such endpoint");
    return;
  }
  pcr_http_add_preflight (msg);
  soup_message_headers_replace (headers, "Allow", route_allow (route->kind));
  if (route->kind == ROUTE_WHEP)
    soup_message_headers_replace (headers, "Accept-Post", TYPE_SDP);
  if (route->kind == ROUTE_WHEP_SESSION)
    soup_message_headers_replace (headers, "Accept-Patch", TYPE_SDPFRAG);
  if (route->kind == ROUTE_RELAY_SESSION)
    soup_message_headers_replace (headers, "Accept-Patch", TYPE_SDP);
  soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
}

/* The request body as a JSON object, or NULL after a 400 reply. */
static JsonNode *
request_object (SoupServerMessage * msg)
{
  g_autoptr (GBytes) body = request_body (msg);
  g_autoptr (GError) error = NULL;
  gsize len;
  const gchar *data = g_bytes_get_data (body, &len);
  JsonNode *root = pcr_json_parse_object (data, len, &error);

  if (root == NULL)
    reply_error (msg, SOUP_STATUS_BAD_REQUEST, "%s", error->message);
  return root;
}

static void
handle_start (PcrGateway * self, SoupServerMessage * msg, Route * route)
{
  g_autoptr (JsonNode) root = request_object (msg);
  g_autofree gchar *type = NULL;
  g_autofree gchar *sdp = NULL;
  g_autofree gchar *device = NULL;
  JsonObject *obj;
  gboolean bad;

  if (root == NULL)
    return;
  obj = json_node_get_object (root);
  type = json_string_member (obj, "type", &bad);
  if (bad || (type != NULL && !g_str_equal (type, "offer"))) {
    reply_error (msg, SOUP_STATUS_BAD_REQUEST, "\"type\" must be \"offer\"");
    return;
  }
  sdp = json_string_member (obj, "sdp", &bad);
  if (bad) {
    reply_error (msg, SOUP_STATUS_BAD_REQUEST, "\"sdp\" is not a string");
    return;
  }
  if (sdp == NULL || *sdp == '\0') {
    reply_error (msg, SOUP_STATUS_BAD_REQUEST,
        "missing \"sdp\" (the offer, a string)");
    return;
  }
  device = json_string_member (obj, "device", &bad);
  if (bad || (device != NULL && !pcr_id_is_valid (device))) {
    reply_error (msg, SOUP_STATUS_BAD_REQUEST,
        "\"device\" is not a device id (1 to 64 of A-Z a-z 0-9 _ -)");
    return;
  }
  start_session (self, msg, device ? device : self->config->device, sdp, FALSE,
      route->control);
}

static void
handle_stop (PcrGateway * self, SoupServerMessage * msg)
{
  g_autoptr (JsonNode) root = request_object (msg);
  g_autofree gchar *id = NULL;
  Session *s = NULL;
  gboolean bad;

  if (root == NULL)
    return;
  id = json_string_member (json_node_get_object (root), "session", &bad);
  if (id == NULL) {
    reply_error (msg, SOUP_STATUS_BAD_REQUEST,
        "missing \"session\" (a string)");
    return;
  }
  if (pcr_id_is_valid (id))
    s = g_hash_table_lookup (self->sessions, id);
  if (s == NULL) {
    reply_error (msg, SOUP_STATUS_NOT_FOUND, "unknown session");
    return;
  }
  session_reply_error (s, SOUP_STATUS_SERVICE_UNAVAILABLE,
      "the session was stopped before the device answered");
  reply_body (msg, SOUP_STATUS_OK, TYPE_JSON, "{}", 2, s->id);
  session_end (s, TRUE, "stopped by the viewer (stop-webrtc)");
}

static void
handle_turn (PcrGateway * self, SoupServerMessage * msg)
{
  g_autoptr (GPtrArray) servers = pcr_ice_config_get_servers (self->ice,
      g_get_real_time () / G_USEC_PER_SEC);
  g_autofree gchar *body = pcr_ice_servers_to_json (servers);
  g_autofree gchar *detail = g_strdup_printf ("%u ICE servers",
      servers->len);

  soup_message_headers_replace (soup_server_message_get_response_headers
      (msg), "Cache-Control", "no-store");
  reply_body (msg, SOUP_STATUS_OK, TYPE_JSON, body, strlen (body), detail);
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (a, b);
}

static void
handle_devices (PcrGateway * self, SoupServerMessage * msg)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree gchar *body = NULL;
  g_autofree gchar *detail = NULL;
  GList *ids = g_list_sort (g_hash_table_get_keys (self->devices),
      compare_strings);
  GList *l;
  gsize len;

  json_builder_begin_array (builder);
  for (l = ids; l != NULL; l = l->next) {
    Device *device = g_hash_table_lookup (self->devices, l->data);

    json_builder_begin_object (builder);
    json_builder_set_member_name (builder, "id");
    json_builder_add_string_value (builder, l->data);
    json_builder_set_member_name (builder, "status");
    json_builder_add_value (builder, json_node_copy (device->status));
    json_builder_end_object (builder);
  }
  json_builder_end_array (builder);
  detail = g_strdup_printf ("%u devices", g_list_length (ids));
  g_list_free (ids);
  root = json_builder_get_root (builder);
  body = pcr_http_json_to_string (root, &len);
  soup_message_headers_replace (soup_server_message_get_response_headers
      (msg), "Cache-Control", "no-store");
  reply_body (msg, SOUP_STATUS_OK, TYPE_JSON, body, len, detail);
}

/* The device's last stats for the session's viewer, with its age: 204
 * before any (or from a device that sends none). */
static void
handle_stats (PcrGateway * self, SoupServerMessage * msg, Session * s)
{
  g_autoptr (JsonNode) root = NULL;
  g_autofree gchar *json = NULL;
  g_autofree gchar *body = NULL;
  g_autofree gchar *detail = NULL;
  gsize len;

  if (s == NULL) {
    reply_error (msg, SOUP_STATUS_NOT_FOUND, "unknown session");
    return;
  }
  soup_message_headers_replace (soup_server_message_get_response_headers
      (msg), "Cache-Control", "no-store");
  detail = g_strdup_printf ("session %s stats", s->id);
  if (s->stats == NULL) {
    reply_body (msg, SOUP_STATUS_NO_CONTENT, NULL, NULL, 0, detail);
    return;
  }
  json = pcr_message_to_json (s->stats, &len);
  /* our own output, so it parses; "ageMs" joins the device's fields */
  root = pcr_json_parse_object (json, len, NULL);
  if (root == NULL) {
    reply_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "stats unreadable");
    return;
  }
  json_object_set_int_member (json_node_get_object (root), "ageMs",
      (g_get_monotonic_time () - s->stats_us) / 1000);
  body = pcr_http_json_to_string (root, &len);
  reply_body (msg, SOUP_STATUS_OK, TYPE_JSON, body, len, detail);
}

static void
handle_metrics_get (PcrGateway * self, SoupServerMessage * msg)
{
  g_autofree gchar *body = NULL;
  gsize len;

  pcr_gateway_metrics_set_relay_sessions (self->metrics,
      count_relay_sessions (self));
  body = pcr_gateway_metrics_render (self->metrics,
      g_hash_table_size (self->sessions), g_get_monotonic_time (), &len);
  soup_message_headers_replace (soup_server_message_get_response_headers
      (msg), "Cache-Control", "no-store");
  reply_body (msg, SOUP_STATUS_OK, PCR_GATEWAY_METRICS_TYPE, body, len,
      NULL);
}

static void
handle_whep_post (PcrGateway * self, SoupServerMessage * msg, Route * route)
{
  g_autoptr (GBytes) body = request_body (msg);
  g_autofree gchar *sdp = NULL;
  gsize len;
  const gchar *data = g_bytes_get_data (body, &len);

  if (len == 0 || memchr (data, '\0', len) != NULL ||
      !g_utf8_validate (data, len, NULL)) {
    reply_error (msg, SOUP_STATUS_BAD_REQUEST,
        "bad SDP offer: the body is empty or not UTF-8 text");
    return;
  }
  sdp = g_strndup (data, len);
  start_session (self, msg, route->device, sdp, TRUE, route->control);
}

static Session *
find_session (PcrGateway * self, Route * route)
{
  Session *s = g_hash_table_lookup (self->sessions, route->session);

  /* a relayed viewer's session is /api/relay's */
  return (s != NULL && s->kind != SESSION_RELAY &&
      g_str_equal (s->device, route->device)) ? s : NULL;
}

static void
handle_whep_patch (PcrGateway * self, SoupServerMessage * msg, Route * route)
{
  g_autoptr (GBytes) body = request_body (msg);
  g_autoptr (GError) error = NULL;
  g_autoptr (PcrSdpFrag) frag = NULL;
  g_autofree gchar *detail = NULL;
  const gchar *if_match;
  Session *s = find_session (self, route);
  gsize len;
  guint i, dropped = 0;
  const gchar *data = g_bytes_get_data (body, &len);

  if (s == NULL) {
    reply_error (msg, SOUP_STATUS_NOT_FOUND, "unknown session");
    return;
  }
  if_match =
      soup_message_headers_get_one (soup_server_message_get_request_headers
      (msg), "If-Match");
  if (if_match != NULL && !g_str_equal (if_match, "*")
      && !g_str_equal (if_match, s->etag ? s->etag : "")) {
    reply_error (msg, SOUP_STATUS_PRECONDITION_FAILED,
        "If-Match does not match the session's ETag");
    return;
  }
  frag = pcr_sdpfrag_parse (data, len, (const gchar * const *) s->mids,
      MAX_FRAG_CANDIDATES, &error);
  if (frag == NULL) {
    reply_error (msg, SOUP_STATUS_BAD_REQUEST, "bad SDP fragment: %s",
        error->message);
    return;
  }
  if (frag->ice_ufrag != NULL && s->ice_ufrag != NULL &&
      !g_str_equal (frag->ice_ufrag, s->ice_ufrag)) {
    reply_error (msg, SOUP_STATUS_UNPROCESSABLE_ENTITY,
        "ICE restarts are not supported (a=ice-ufrag differs from the "
        "offer's)");
    return;
  }
  if (frag->candidates->len > 0 && !self->connected) {
    reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "the gateway is not connected to the MQTT broker; try again later");
    return;
  }
  for (i = 0; i < frag->candidates->len; i++) {
    PcrFragCandidate *c = g_ptr_array_index (frag->candidates, i);
    g_autoptr (PcrMessage) candidate = NULL;
    guint mline;

    /* the device's offer lacks the m-lines taken out: theirs have no
     * place there, the others' indexes move up */
    if (!pcr_sdp_map_mline (s->stripped, c->mline, &mline)) {
      dropped++;
      continue;
    }
    candidate = pcr_message_new_candidate (c->candidate, mline, c->mid);
    if (!session_publish (s, candidate)) {
      reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
          "cannot reach the MQTT broker; try again later");
      return;
    }
  }
  detail = g_strdup_printf ("session %s, %u candidates%s", s->id,
      frag->candidates->len - dropped, dropped > 0 ? " (those for the "
      "data channel taken out dropped)" : "");
  reply_body (msg, SOUP_STATUS_NO_CONTENT, NULL, NULL, 0, detail);
}

static void
handle_whep_delete (PcrGateway * self, SoupServerMessage * msg, Route * route)
{
  delete_session (msg, find_session (self, route), "the session was deleted "
      "before the device answered", "deleted by the viewer (WHEP DELETE)");
}

static void
handle_request (SoupServer * server, SoupServerMessage * msg,
    const char *path, GHashTable * query, gpointer user_data)
{
  PcrGateway *self = user_data;
  Route *route = g_object_get_data (G_OBJECT (msg), ROUTE_KEY);
  const gchar *method = soup_server_message_get_method (msg);

  if (route == NULL) {
    /* got-headers always sets it */
    reply_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "no route");
    return;
  }
  /* again: after "Expect: 100-continue" libsoup has sent the 100 with the
   * headers set at got-headers and cleared them */
  if (route->api)
    pcr_http_add_cors (msg);
  /* libsoup answers a Range on any 200 to a GET itself, and 3.2 takes an
   * overflowing number for a negative offset, giving a GLib critical and a
   * broken 206 (found by tests/fuzz/fuzz-request): the header is taken off
   * the request, and only a recording's download serves ranges, itself
   * (pcr_http_byte_range). */
  g_free (route->range);
  route->range = g_strdup (soup_message_headers_get_one
      (soup_server_message_get_request_headers (msg), "Range"));
  soup_message_headers_remove (soup_server_message_get_request_headers (msg),
      "Range");
  if (route->api && g_str_equal (method, SOUP_METHOD_OPTIONS)) {
    handle_options (msg, route);
    return;
  }
  switch (route->kind) {
    case ROUTE_STATIC:
      if (pcr_http_serve_file (msg, self->config->www_dir, path) !=
          SOUP_STATUS_OK)
        log_reply (msg, SOUP_STATUS_NOT_FOUND, "not found");
      break;
    case ROUTE_START:
      handle_start (self, msg, route);
      break;
    case ROUTE_STOP:
      handle_stop (self, msg);
      break;
    case ROUTE_TURN:
      handle_turn (self, msg);
      break;
    case ROUTE_DEVICES:
      handle_devices (self, msg);
      break;
    case ROUTE_STATS:{
      const gchar *id = query ? g_hash_table_lookup (query, "session") : NULL;

      if (id == NULL)
        reply_error (msg, SOUP_STATUS_BAD_REQUEST,
            "missing ?session=S (the session of /api/start-webrtc)");
      else
        handle_stats (self, msg, pcr_id_is_valid (id) ?
            g_hash_table_lookup (self->sessions, id) : NULL);
      break;
    }
    case ROUTE_WHEP_STATS:
      handle_stats (self, msg, find_session (self, route));
      break;
    case ROUTE_SNAPSHOT:
      start_snapshot (self, msg, route->device);
      break;
    case ROUTE_RECORD:
      handle_record (self, msg, route);
      break;
    case ROUTE_RECORDINGS:
      handle_recordings (self, msg, route);
      break;
    case ROUTE_RECORDING:
      handle_recording_get (self, msg, route);
      break;
    case ROUTE_METRICS:
      handle_metrics_get (self, msg);
      break;
    case ROUTE_WHEP:
      handle_whep_post (self, msg, route);
      break;
    case ROUTE_WHEP_SESSION:
      if (g_str_equal (method, "PATCH"))
        handle_whep_patch (self, msg, route);
      else
        handle_whep_delete (self, msg, route);
      break;
    case ROUTE_RELAY:
      handle_relay_post (self, msg, route);
      break;
    case ROUTE_RELAY_SESSION:
      if (g_str_equal (method, "PATCH"))
        handle_relay_patch (self, msg, route);
      else
        handle_relay_delete (self, msg, route);
      break;
    case ROUTE_NOT_FOUND:
      reply_error (msg, SOUP_STATUS_NOT_FOUND, "no such endpoint");
      break;
  }
}

/* Everything decided by the request line and headers, before the body:
 * a rejected body is then read and dropped, never kept. */
static void
on_got_headers (SoupServerMessage * msg, PcrGateway * self)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const gchar *method = soup_server_message_get_method (msg);
  guint status = soup_server_message_get_status (msg);
  const gchar *token;
  Route *route;

  if (status != 0) {
    /* libsoup refused it (a bad path) */
    log_reply (msg, status, "rejected by the HTTP parser");
    discard_body (msg);
    return;
  }
  route = route_parse (g_uri_get_path (soup_server_message_get_uri (msg)));
  g_object_set_data_full (G_OBJECT (msg), ROUTE_KEY, route,
      (GDestroyNotify) route_free);
  if (route->api)
    pcr_http_add_cors (msg);
  if (route->api && g_str_equal (method, SOUP_METHOD_OPTIONS))
    return;

  /* the control token opens what the viewing token opens (not /metrics),
   * and an offer made with it keeps its data channel */
  if (route->api && self->config->control_token != NULL &&
      pcr_http_check_bearer (msg, self->config->control_token) ==
      PCR_HTTP_TOKEN_OK)
    route->control = TRUE;
  /* /metrics has its own token when one is set, else /api's */
  token = route->kind == ROUTE_METRICS && self->config->metrics_token ?
      self->config->metrics_token : self->config->token;
  if ((route->api || route->kind == ROUTE_METRICS) && token != NULL &&
      !route->control) {
    PcrHttpTokenCheck check = pcr_http_check_bearer (msg, token);

    if (check != PCR_HTTP_TOKEN_OK) {
      soup_message_headers_replace (soup_server_message_get_response_headers
          (msg), "WWW-Authenticate", check == PCR_HTTP_TOKEN_MISSING ?
          "Bearer realm=\"picamrtc\"" :
          "Bearer realm=\"picamrtc\", error=\"invalid_token\"");
      reply_error (msg, SOUP_STATUS_UNAUTHORIZED,
          check == PCR_HTTP_TOKEN_MISSING ?
          "missing bearer token (Authorization: Bearer ...)" :
          "wrong bearer token");
      discard_body (msg);
      return;
    }
  }
  if (route->kind == ROUTE_NOT_FOUND) {
    reply_error (msg, SOUP_STATUS_NOT_FOUND, "no such endpoint");
  } else if (!route_allows (route->kind, method)) {
    soup_message_headers_replace (soup_server_message_get_response_headers
        (msg), "Allow", route_allow (route->kind));
    reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
        "method not allowed here (allowed: %s)", route_allow (route->kind));
  } else if (route->kind == ROUTE_WHEP &&
      !pcr_http_content_type_is (msg, TYPE_SDP)) {
    reply_error (msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE,
        "expected Content-Type: " TYPE_SDP);
  } else if (route->kind == ROUTE_WHEP_SESSION &&
      g_str_equal (method, "PATCH") &&
      !pcr_http_content_type_is (msg, TYPE_SDPFRAG)) {
    reply_error (msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE,
        "expected Content-Type: " TYPE_SDPFRAG);
  } else if (route->kind == ROUTE_RELAY_SESSION &&
      g_str_equal (method, "PATCH") &&
      !pcr_http_content_type_is (msg, TYPE_SDP) &&
      !pcr_http_content_type_is (msg, TYPE_JSON)) {
    reply_error (msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE,
        "expected Content-Type: " TYPE_SDP " (the answer) or " TYPE_JSON
        " (the layer)");
  } else if (soup_message_headers_get_encoding (headers) ==
      SOUP_ENCODING_CONTENT_LENGTH &&
      /* unsigned: libsoup 3.2 hands a length of 2^63 or more on as a
       * negative number (found by tests/fuzz/fuzz-request) */
      (guint64) soup_message_headers_get_content_length (headers) >
      (guint64) self->config->max_body_size) {
    soup_message_headers_replace (soup_server_message_get_response_headers
        (msg), "Connection", "close");
    reply_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
        "body of %" G_GUINT64_FORMAT " bytes is over the limit of %d bytes",
        (guint64) soup_message_headers_get_content_length (headers),
        self->config->max_body_size);
  }
  if (soup_server_message_get_status (msg) != 0)
    discard_body (msg);
}

/* A body without Content-Length (chunked) is counted as it comes. */
static void
on_got_chunk (SoupServerMessage * msg, GBytes * chunk, PcrGateway * self)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);

  if (soup_server_message_get_status (msg) != 0 ||
      body->length <= self->config->max_body_size)
    return;
  soup_message_headers_replace (soup_server_message_get_response_headers
      (msg), "Connection", "close");
  reply_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
      "body over the limit of %d bytes", self->config->max_body_size);
  discard_body (msg);
}

/* A connection must bring a whole request (line, headers and body) and
 * take its whole response within this time of opening, of the request's
 * first byte, or of the previous response: libsoup 3.2's server has no
 * timeout of its own, and each stalled client (one that never finishes
 * sending, or never reads) would hold a file descriptor for good
 * (slowloris). The time a request waits for a device's answer does not
 * count; the answer timeout covers it. */
#define REQUEST_READ_TIMEOUT_S 20
#define DEADLINE_KEY "pcr-read-deadline"

static gboolean
on_read_deadline (gpointer user_data)
{
  GSocket *socket = user_data;

  g_message ("a client did not complete a request and its response within "
      "%d s; closing its connection", REQUEST_READ_TIMEOUT_S);
  /* libsoup then reads end-of-file and drops the connection itself */
  g_socket_shutdown (socket, TRUE, TRUE, NULL);
  return G_SOURCE_REMOVE;
}

static void
destroy_source (gpointer source)
{
  g_source_destroy (source);
  g_source_unref (source);
}

/* (Re)starts the connection's clock, or stops it (@arm FALSE). The source
 * lives in the socket's data: it never outlives the connection. */
static void
read_deadline (PcrGateway * self, SoupServerMessage * msg, gboolean arm)
{
  GSocket *socket = soup_server_message_get_socket (msg);
  GSource *deadline;

  if (socket == NULL)
    return;
  if (!arm) {
    g_object_set_data (G_OBJECT (socket), DEADLINE_KEY, NULL);
    return;
  }
  deadline = g_timeout_source_new_seconds (REQUEST_READ_TIMEOUT_S);
  g_source_set_callback (deadline, on_read_deadline, socket, NULL);
  g_source_attach (deadline, self->context);
  g_object_set_data_full (G_OBJECT (socket), DEADLINE_KEY, deadline,
      destroy_source);
}

/* The response went out (or libsoup gave up on it, as after a 500) and the
 * connection may stay open for the next request: an idle keep-alive
 * connection gets the same time. */
static void
on_request_finished (SoupServer * server, SoupServerMessage * msg,
    PcrGateway * self)
{
  read_deadline (self, msg, TRUE);
}

/* Every reply that went out, by route ("-": refused before routing). */
static void
count_request (SoupServer * server, SoupServerMessage * msg,
    PcrGateway * self)
{
  Route *route = g_object_get_data (G_OBJECT (msg), ROUTE_KEY);

  pcr_gateway_metrics_count_request (self->metrics,
      route ? route_names[route->kind] : "-",
      soup_server_message_get_status (msg));
}

static void
on_request_started (SoupServer * server, SoupServerMessage * msg,
    PcrGateway * self)
{
  read_deadline (self, msg, TRUE);
  g_signal_connect (msg, "got-headers", G_CALLBACK (on_got_headers), self);
  g_signal_connect (msg, "got-chunk", G_CALLBACK (on_got_chunk), self);
}

/* ---- life cycle ---- */

static gboolean
on_broker_check (gpointer user_data)
{
  PcrGateway *self = user_data;

  if (!self->connected)
    g_message ("not connected to the MQTT broker %s yet; still trying",
        self->config->broker);
  return G_SOURCE_CONTINUE;
}

PcrGateway *
pcr_gateway_new (PcrGatewayConfig * config, GError ** error)
{
  g_autoptr (PcrGateway) self = NULL;
  g_autoptr (GError) local = NULL;
  PcrMqttOptions options = { 0 };
  PcrMqttCallbacks callbacks = {
    .on_connection = on_mqtt_connection,
    .on_message = on_mqtt_message,
    .on_error = on_mqtt_error,
  };

  g_return_val_if_fail (config != NULL, NULL);

  GST_DEBUG_CATEGORY_INIT (pcr_gateway_debug, "pcrgateway", 0,
      "picamrtc gateway");

  self = g_new0 (PcrGateway, 1);
  self->config = config;
  self->context = g_main_context_ref_thread_default ();
  self->loop = g_main_loop_new (self->context, FALSE);
  self->devices = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      (GDestroyNotify) device_free);
  self->sessions = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
      (GDestroyNotify) session_free);
  self->status_pattern = g_strdup_printf ("%s/+/status", config->topic_prefix);
  self->metrics_pattern = g_strdup_printf ("%s/+/metrics",
      config->topic_prefix);
  self->metrics = pcr_gateway_metrics_new ();

  self->ice = pcr_ice_config_new ((const gchar * const *) config->stun_uris,
      (const gchar * const *) config->turn_uris, config->turn_secret,
      config->turn_ttl, &local);
  if (self->ice == NULL) {
    g_set_error_literal (error, PCR_GATEWAY_ERROR, PCR_GATEWAY_ERROR_CONFIG,
        local->message);
    return NULL;
  }

  if (config->tls_cert != NULL) {
    self->certificate = g_tls_certificate_new_from_files (config->tls_cert,
        config->tls_key, &local);
    if (self->certificate == NULL) {
      g_set_error (error, PCR_GATEWAY_ERROR, PCR_GATEWAY_ERROR_CONFIG,
          "tls-cert: cannot load \"%s\" with the key \"%s\": %s",
          config->tls_cert, config->tls_key, local->message);
      return NULL;
    }
  }
  self->server = soup_server_new ("server-header", "picamrtc-gateway",
      "tls-certificate", self->certificate, NULL);
  soup_server_add_handler (self->server, NULL, handle_request, self, NULL);
  g_signal_connect (self->server, "request-started",
      G_CALLBACK (on_request_started), self);
  g_signal_connect (self->server, "request-finished",
      G_CALLBACK (on_request_finished), self);
  g_signal_connect (self->server, "request-finished",
      G_CALLBACK (count_request), self);
  g_signal_connect (self->server, "request-aborted",
      G_CALLBACK (on_request_finished), self);

  options.uri = config->broker;
  options.username = config->username;
  options.password = config->password;
  options.ca_file = config->ca_file;
  options.cert_file = config->cert_file;
  options.key_file = config->key_file;
  self->mqtt = pcr_mqtt_new (&options, self->context, &callbacks, self, &local);
  if (self->mqtt == NULL) {
    g_set_error (error, PCR_GATEWAY_ERROR, PCR_GATEWAY_ERROR_CONFIG,
        "broker: %s", local->message);
    return NULL;
  }
  return g_steal_pointer (&self);
}

gboolean
pcr_gateway_start (PcrGateway * self, GError ** error)
{
  g_autoptr (GError) local = NULL;
  SoupServerListenOptions options = 0;
  const gchar *host = self->config->listen_host;
  guint port = self->config->listen_port;
  GSList *uris, *l;
  gboolean ok;

  g_return_val_if_fail (self != NULL, FALSE);

  if (self->certificate != NULL)
    options |= SOUP_SERVER_LISTEN_HTTPS;
  if (*host == '\0') {
    ok = soup_server_listen_all (self->server, port, options, &local);
  } else if (g_str_equal (host, "localhost")) {
    ok = soup_server_listen_local (self->server, port, options, &local);
  } else {
    g_autoptr (GSocketAddress) address =
        g_inet_socket_address_new_from_string (host, port);

    ok = address != NULL && soup_server_listen (self->server, address,
        options, &local);
  }
  if (!ok) {
    g_set_error (error, PCR_GATEWAY_ERROR, PCR_GATEWAY_ERROR_LISTEN,
        "listen: cannot listen on %s: %s", self->config->listen,
        local ? local->message : "bad address");
    return FALSE;
  }

  if (!pcr_mqtt_start (self->mqtt, &local)) {
    g_set_error (error, PCR_GATEWAY_ERROR, PCR_GATEWAY_ERROR_LISTEN,
        "broker: %s", local->message);
    return FALSE;
  }

  self->broker_check = g_timeout_source_new_seconds (BROKER_CHECK_S);
  g_source_set_callback (self->broker_check, on_broker_check, self, NULL);
  g_source_attach (self->broker_check, self->context);

  if (self->config->www_dir != NULL)
    g_message ("web client from %s", self->config->www_dir);
  else
    g_message ("no web client directory (set www); static files give 404");
  g_message ("broker %s, topic prefix %s, default device %s%s",
      self->config->broker, self->config->topic_prefix, self->config->device,
      self->config->token ? ", bearer token required" : "");
  g_message ("/metrics %s", self->config->metrics_token ? "takes its own "
      "bearer token" : self->config->token ? "takes the bearer token" :
      "is open");
  g_message ("relayed viewers %s", self->config->janus_base ?
      "through Janus (--janus)" : "off (no --janus): every viewer is direct");
  g_message ("data channels (control) %s", self->config->control_token ?
      "only for offers with the control token" : "taken out of every offer "
      "(no control-token-file)");
  if (self->config->control_token != NULL && self->config->token != NULL &&
      pcr_http_secret_equal (self->config->control_token,
          self->config->token))
    g_warning ("control-token-file holds the token of token-file: every "
        "viewer may steer the devices");
  uris = soup_server_get_uris (self->server);
  for (l = uris; l != NULL; l = l->next) {
    g_autofree gchar *text = g_uri_to_string (l->data);

    g_message ("serving %s", text);
  }
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  return TRUE;
}

static gboolean
on_signal (gpointer user_data)
{
  PcrGateway *self = user_data;

  g_message ("stopping on a signal");
  g_main_loop_quit (self->loop);
  return G_SOURCE_CONTINUE;
}

static GSource *
watch_signal (PcrGateway * self, gint signum)
{
  GSource *source = g_unix_signal_source_new (signum);

  g_source_set_callback (source, on_signal, self, NULL);
  g_source_attach (source, self->context);
  return source;
}

/* Ends every session: a request still waiting gets a 503, each device
 * a bye when @send_bye (freeing its slot at once). */
static void
close_sessions (PcrGateway * self, gboolean send_bye)
{
  g_autoptr (GPtrArray) all = g_ptr_array_new ();
  GHashTableIter iter;
  Session *s;
  guint i;

  g_hash_table_iter_init (&iter, self->sessions);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) & s))
    g_ptr_array_add (all, s);
  for (i = 0; i < all->len; i++) {
    s = g_ptr_array_index (all, i);
    session_reply_error (s, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "the gateway is stopping");
    if (send_bye)
      session_end (s, TRUE, "the gateway is stopping");
    else
      session_remove (s);
  }
}

gint
pcr_gateway_run (PcrGateway * self)
{
  GSource *sigint, *sigterm, *watchdog;
  guint relays;

  g_return_val_if_fail (self != NULL, 1);

  sigint = watch_signal (self, SIGINT);
  sigterm = watch_signal (self, SIGTERM);
  /* Listening: systemd may count us started; the watchdog (WatchdogSec=)
   * is fed from this loop, so a stuck loop gets the gateway restarted. */
  watchdog = pcr_systemd_ready (g_main_loop_get_context (self->loop),
      "serving");
  g_main_loop_run (self->loop);
  pcr_systemd_stop (watchdog);
  relays = count_relay_sessions (self);
  close_sessions (self, TRUE);
  if (relays > 0) {
    /* the Janus sessions' destroy requests go out from this context */
    gint64 until = g_get_monotonic_time () + RELAY_FLUSH_MS * 1000;

    while (g_get_monotonic_time () < until) {
      if (!g_main_context_iteration (self->context, FALSE))
        g_usleep (10000);
    }
  }
  pcr_mqtt_stop (self->mqtt, SHUTDOWN_FLUSH_MS);
  g_source_destroy (sigint);
  g_source_unref (sigint);
  g_source_destroy (sigterm);
  g_source_unref (sigterm);
  return 0;
}

SoupServer *
pcr_gateway_get_server (PcrGateway * self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return self->server;
}

void
pcr_gateway_free (PcrGateway * self)
{
  if (self == NULL)
    return;
  clear_source (&self->broker_check);
  if (self->sessions != NULL)
    close_sessions (self, FALSE);
  if (self->server != NULL) {
    soup_server_disconnect (self->server);
    g_clear_object (&self->server);
  }
  g_clear_pointer (&self->mqtt, pcr_mqtt_free);
  g_clear_object (&self->certificate);
  g_clear_pointer (&self->sessions, g_hash_table_unref);
  g_clear_pointer (&self->devices, g_hash_table_unref);
  g_clear_pointer (&self->ice, pcr_ice_config_free);
  g_clear_pointer (&self->status_pattern, g_free);
  g_clear_pointer (&self->metrics_pattern, g_free);
  g_clear_pointer (&self->metrics, pcr_gateway_metrics_free);
  g_clear_pointer (&self->loop, g_main_loop_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->config, pcr_gateway_config_free);
  g_free (self);
}
