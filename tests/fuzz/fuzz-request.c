/* libFuzzer target for the gateway's request handling (docs/http-api.md;
 * every request is hostile), along the real path: raw HTTP/1.1 bytes go
 * into the gateway's own SoupServer through an in-memory connection
 * (soup_server_accept_iostream ()), libsoup parses them, the gateway's
 * handlers run on a fresh PcrGateway per input, and the bytes written back
 * are checked. The MQTT client is fake-mqtt.c, through which this file
 * plays a set of devices with one behaviour each (answer, refuse, say bye,
 * stay silent, go offline, send junk), so offers reach every outcome.
 *
 * Input: an optional first line of words after '@' ("@token": a bearer
 * token is required, "@offline": no broker, "@small": the smallest body
 * limit and one session), then up to MAX_REQUESTS requests separated by a
 * line "=====", each on a connection of its own (a SoupServer without a
 * listener closes a connection after one request). In a request "{S}"
 * becomes the newest session's id and "{E}" its ETag, and "{L}" in the
 * head the length of the body, so that a mutated body stays whole.
 *
 * Checks: each reply is one well-formed HTTP/1.x response with a status
 * of the contract; the gateway's errors are one line of text/plain; /api
 * and /whep replies carry the CORS headers; with a token only a preflight
 * succeeds without it; a 201 or 200 answer carries the device's answer and
 * a session the device was offered; a deleted session got its bye; no
 * request stays without a reply once the devices have had their say; what
 * reaches a device is a valid message on a valid topic (an offer after its
 * subscription, nothing after a bye, candidates on the offer's m-lines);
 * and a freed gateway leaves no session subscribed. */

#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "fake-mqtt.h"
#include "pcr-defaults.h"
#include "pcr-gateway.h"
#include "pcr-gateway-config.h"
#include "pcr-json.h"
#include "pcr-message.h"
#include "pcr-sdp.h"

#define MAX_REQUESTS 4
#define SEPARATOR "\n=====\n"
/* What an answering fake device then reports, with a field the gateway
 * must not pass on. */
#define STATS_JSON "{\"type\":\"stats\",\"rendition\":\"high\"," \
    "\"width\":1280,\"height\":720,\"estimate\":1900000,\"loss\":0," \
    "\"junk\":\"<script>\"}"
#define TOKEN "fuzz-token"
#define PREFIX PCR_DEFAULT_TOPIC_PREFIX
/* pcr_http_set_error (): at most 1024 bytes, "...", a newline */
#define MAX_ERROR_BODY (1024 + 3 + 1)
/* what every device answers with */
#define ANSWER_SDP \
  "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n" \
  "m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\n" \
  "a=ice-ufrag:dev1\r\na=ice-pwd:0123456789abcdef01234567\r\n" \
  "a=mid:0\r\na=sendonly\r\na=rtpmap:102 H264/90000\r\n" \
  "a=candidate:1 1 UDP 2015363327 192.0.2.7 50123 typ host\r\n" \
  "a=end-of-candidates\r\n"

typedef enum
{
  ANSWER,                       /* answers at once */
  REFUSE_CODEC,                 /* error no-compatible-codec: 400 */
  REFUSE_FULL,                  /* error max-viewers: 503 */
  REFUSE_INTERNAL,              /* error internal: 502 */
  SAY_BYE,                      /* bye instead of an answer: 503 */
  SILENT_THEN_BYE,              /* nothing until the connection stalls */
  SILENT_THEN_OFFLINE,          /* nothing, then its status goes offline */
  JUNK_THEN_ANSWER,             /* junk, a candidate, an offer, an answer */
} Behaviour;

typedef struct
{
  const gchar *id;
  const gchar *status;          /* retained P/D/status */
  Behaviour behaviour;
} Device;

#define ONLINE "{\"state\":\"online\",\"viewers\":0,\"codec\":\"H264\"," \
  "\"width\":1280,\"height\":720,\"framerate\":30}"

static const Device devices[] = {
  {"cam1", ONLINE, ANSWER},
  {"cam2", ONLINE, REFUSE_CODEC},
  {"busy", ONLINE, REFUSE_FULL},
  {"broken", ONLINE, REFUSE_INTERNAL},
  {"hangup", ONLINE, SAY_BYE},
  {"mute", ONLINE, SILENT_THEN_BYE},
  {"gone", ONLINE, SILENT_THEN_OFFLINE},
  {"junk", ONLINE, JUNK_THEN_ANSWER},
  {"off", "{\"state\":\"offline\"}", ANSWER},
  /* a state that is not a string: no state, still takes offers */
  {"odd", "{\"state\":7,\"viewers\":\"many\"}", ANSWER},
  /* malformed statuses: ignored, so the device stays unknown */
  {"bad", "[\"online\"]", ANSWER},
  {"deep", "{\"a\":[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}", ANSWER},
};

/* A session as its device saw it. */
typedef struct
{
  gchar *id;
  const Device *device;
  guint n_mlines;
  gchar **mids;                 /* a=mid per m-line, "" for none */
  gboolean replied;
  gboolean bye;
} Offered;

/* What the server made of the request of the current connection. */
typedef struct
{
  gboolean finished;            /* with a reply */
  gboolean aborted;             /* without one */
  gchar *method;
  gchar *path;
  guint status;
  gboolean authorized;          /* carries "Bearer TOKEN" */
  gboolean expects_continue;
} Seen;

typedef struct
{
  gboolean token;
  gboolean offline;
  gboolean small;
  GHashTable *offered;          /* id -> Offered */
  gchar *last_session;
  gchar *last_etag;
  Seen seen;
  const guint8 *data;
  gsize size;
} Run;

typedef struct
{
  gchar *name;
  gchar *value;
} Header;

typedef struct
{
  guint status;
  GPtrArray *headers;           /* Header* */
  GBytes *body;
} Response;

static GMainContext *context;
static GSocketAddress *local_address;
static GSocketAddress *remote_address;
static gchar *www_dir;

/* ---- failing ---- */

/* *INDENT-OFF* */
G_GNUC_NORETURN static void fail (const Run * run, const gchar * format, ...)
    G_GNUC_PRINTF (2, 3);
/* *INDENT-ON* */

static void
fail (const Run * run, const gchar * format, ...)
{
  va_list args;

  va_start (args, format);
  vfprintf (stderr, format, args);
  va_end (args);
  fprintf (stderr, "\ninput (%zu bytes):\n%.*s\n", run->size,
      (int) MIN (run->size, 4096), (const char *) run->data);
  abort ();
}

/* Criticals abort: one is a bug (no g_return_if_fail on client
 * input). Only our own warnings are shown: the gateway logs a line per
 * request, and libsoup 3.2 warns from GObject on a Content-Length of 2^63
 * or more before the gateway refuses it. */
static GLogWriterOutput
log_writer (GLogLevelFlags level, const GLogField * fields, gsize n_fields,
    gpointer user_data)
{
  const gchar *domain = NULL;
  gsize i;

  for (i = 0; i < n_fields; i++) {
    if (g_str_equal (fields[i].key, "GLIB_DOMAIN"))
      domain = fields[i].value;
  }
  if ((level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) != 0) {
    g_log_writer_standard_streams (level, fields, n_fields, user_data);
    abort ();
  }
  if ((level & G_LOG_LEVEL_WARNING) != 0
      && g_strcmp0 (domain, G_LOG_DOMAIN) == 0)
    g_log_writer_standard_streams (level, fields, n_fields, user_data);
  return G_LOG_WRITER_HANDLED;
}

/* ---- the devices ---- */

static void
offered_free (Offered * o)
{
  g_free (o->id);
  g_strfreev (o->mids);
  g_free (o);
}

static const Device *
find_device (const gchar * id)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (devices); i++) {
    if (g_str_equal (devices[i].id, id))
      return &devices[i];
  }
  return NULL;
}

static void
device_says (const Offered * o, const gchar * json)
{
  g_autofree gchar *topic = g_strdup_printf (PREFIX "/%s/out/%s",
      o->device->id, o->id);

  fake_mqtt_deliver (fake_mqtt_get (), topic, json, strlen (json), FALSE);
}

static void
device_status (const Device * device, const gchar * json)
{
  g_autofree gchar *topic = g_strdup_printf (PREFIX "/%s/status", device->id);

  fake_mqtt_deliver (fake_mqtt_get (), topic, json, strlen (json), TRUE);
}

/* What a device reports every few seconds, for GET /metrics. */
static void
device_metrics (const Device * device)
{
  static const gchar json[] = "{\"type\":\"metrics\",\"interval\":10,"
      "\"viewers\":1,\"restarts\":0,\"nacks\":3,\"retransmissions\":2,"
      "\"encoder\":\"x264enc\",\"source\":\"videotestsrc\",\"renditions\":"
      "[{\"name\":\"high\",\"fps\":30,\"bitrate\":2000000}],"
      "\"estimates\":{\"min\":1,\"median\":2,\"max\":3}}";
  g_autofree gchar *topic = g_strdup_printf (PREFIX "/%s/metrics",
      device->id);

  fake_mqtt_deliver (fake_mqtt_get (), topic, json, strlen (json), FALSE);
}

static gboolean
is_session_id (const gchar * id)
{
  const gchar *c;

  for (c = id; *c != '\0'; c++) {
    if (!g_ascii_isdigit (*c) && !(*c >= 'a' && *c <= 'f'))
      return FALSE;
  }
  return c - id == 32;
}

static void
device_got_offer (Run * run, const Device * device, const gchar * id,
    const PcrMessage * msg)
{
  g_autoptr (GstSDPMessage) sdp = NULL;
  g_autofree gchar *out = g_strdup_printf (PREFIX "/%s/out/%s", device->id,
      id);
  Offered *o;
  guint i;

  if (!fake_mqtt_is_subscribed (fake_mqtt_get (), out))
    fail (run, "offer for %s before the gateway subscribed to %s", id, out);
  if (g_hash_table_contains (run->offered, id))
    fail (run, "a second offer for session %s", id);
  if (msg->trickle)
    fail (run, "the gateway asked for trickle ICE (it is bulk only)");
  if (!msg->want_stats)
    fail (run, "the gateway did not ask for stats (GET .../stats needs them)");
  /* stun: and turn: (with TURN REST credentials), as configured */
  if (msg->ice_servers->len != 2)
    fail (run, "an offer with %u iceServers, expected 2",
        msg->ice_servers->len);
  sdp = pcr_sdp_parse (msg->sdp, NULL);
  if (sdp == NULL)
    fail (run, "the gateway passed on an offer that does not parse");

  o = g_new0 (Offered, 1);
  o->id = g_strdup (id);
  o->device = device;
  o->n_mlines = gst_sdp_message_medias_len (sdp);
  o->mids = g_new0 (gchar *, o->n_mlines + 1);
  for (i = 0; i < o->n_mlines; i++) {
    const gchar *mid = gst_sdp_media_get_attribute_val
        (gst_sdp_message_get_media (sdp, i), "mid");

    o->mids[i] = g_strdup (mid ? mid : "");
  }
  g_hash_table_insert (run->offered, o->id, o);
  g_free (run->last_session);
  run->last_session = g_strdup (id);

  /* replies come later, from the fake broker's sources */
  o->replied = TRUE;
  switch (device->behaviour) {
    case JUNK_THEN_ANSWER:
      device_says (o, "not json");
      device_says (o, "{\"type\":\"candidate\",\"candidate\":\"candidate:1 1 "
          "udp 1 192.0.2.1 9 typ host\",\"sdpMLineIndex\":0}");
      device_says (o, "{\"type\":\"offer\",\"sdp\":\"v=0\"}");
      device_says (o, "{\"type\":\"stats\",\"rendition\":\"<b>\","
          "\"estimate\":1}");
      device_says (o, "{\"type\":\"stats\",\"rendition\":\"high\","
          "\"estimate\":-1,\"html\":\"<script>\"}");
      /* fall through */
    case ANSWER:{
      g_autoptr (PcrMessage) answer = pcr_message_new_answer (ANSWER_SDP);
      g_autofree gchar *json = pcr_message_to_json (answer, NULL);

      device_says (o, json);
      device_says (o, STATS_JSON);
      break;
    }
    case REFUSE_CODEC:
      device_says (o, "{\"type\":\"error\",\"code\":\"no-compatible-codec\","
          "\"message\":\"no H.264 with packetization-mode=1\"}");
      break;
    case REFUSE_FULL:
      device_says (o, "{\"type\":\"error\",\"code\":\"max-viewers\","
          "\"message\":\"8 viewers already\"}");
      break;
    case REFUSE_INTERNAL:
      device_says (o, "{\"type\":\"error\",\"code\":\"internal\","
          "\"message\":\"line one\\nline two\\u0001\"}");
      break;
    case SAY_BYE:
      device_says (o, "{\"type\":\"bye\"}");
      break;
    case SILENT_THEN_BYE:
    case SILENT_THEN_OFFLINE:
      o->replied = FALSE;
      break;
  }
}

static void
device_got_candidate (Run * run, Offered * o, const PcrMessage * msg)
{
  const gchar *c = msg->candidate;

  if (*c != '\0' && (!g_str_has_prefix (c, "candidate:")
          || strlen (c) > 1024 || strpbrk (c, "\r\n") != NULL))
    fail (run, "session %s: the candidate \"%s\" reached the device", o->id, c);
  if (msg->sdp_mline_index >= o->n_mlines)
    fail (run, "session %s: a candidate for m-line %u of an offer with %u",
        o->id, msg->sdp_mline_index, o->n_mlines);
  if (msg->sdp_mid != NULL
      && g_strcmp0 (msg->sdp_mid, o->mids[msg->sdp_mline_index]) != 0)
    fail (run, "session %s: a candidate with sdpMid \"%s\" for m-line %u, "
        "whose a=mid is \"%s\"", o->id, msg->sdp_mid, msg->sdp_mline_index,
        o->mids[msg->sdp_mline_index]);
}

/* The broker's side of every message the gateway sends. */
static void
on_publish (const gchar * topic, const guint8 * payload, gsize len,
    gpointer user_data)
{
  Run *run = user_data;
  g_auto (GStrv) parts = g_strsplit (topic, "/", -1);
  g_autoptr (PcrMessage) msg = NULL;
  g_autoptr (GError) error = NULL;
  const Device *device;
  Offered *o;

  if (g_strv_length (parts) != 4 || !g_str_equal (parts[0], PREFIX)
      || !g_str_equal (parts[2], "in") || !is_session_id (parts[3]))
    fail (run, "the gateway published to \"%s\"", topic);
  device = find_device (parts[1]);
  if (device == NULL)
    fail (run, "the gateway published to an unknown device: %s", topic);
  msg = pcr_message_parse ((const gchar *) payload, len, &error);
  if (msg == NULL)
    fail (run, "the gateway published a message that does not parse (%s): "
        "%.*s", error->message, (int) len, (const char *) payload);

  if (msg->type == PCR_MESSAGE_OFFER) {
    device_got_offer (run, device, parts[3], msg);
    return;
  }
  o = g_hash_table_lookup (run->offered, parts[3]);
  if (o == NULL || o->device != device)
    fail (run, "a message for session %s, which %s was never offered",
        parts[3], device->id);
  if (o->bye)
    fail (run, "a message for session %s after its bye", o->id);
  switch (msg->type) {
    case PCR_MESSAGE_CANDIDATE:
      device_got_candidate (run, o, msg);
      break;
    case PCR_MESSAGE_BYE:
      o->bye = TRUE;
      break;
    default:
      fail (run, "the gateway sent a device a message of type %d", msg->type);
  }
}

/* Subscriptions a freed gateway left behind: a session's would make the
 * broker deliver to nobody forever. */
static void
on_freed (GList * subscriptions, gpointer user_data)
{
  Run *run = user_data;
  GList *l;

  for (l = subscriptions; l != NULL; l = l->next) {
    if (strstr (l->data, "/out/") != NULL)
      fail (run, "the freed gateway is still subscribed to %s",
          (const gchar *) l->data);
  }
}

/* The devices that keep a request waiting have their say: what the answer
 * timeout would otherwise end, seconds later. FALSE when none is left. */
static gboolean
devices_catch_up (Run * run)
{
  GHashTableIter iter;
  Offered *o;
  gboolean any = FALSE;

  g_hash_table_iter_init (&iter, run->offered);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) & o)) {
    if (o->replied)
      continue;
    o->replied = TRUE;
    any = TRUE;
    if (o->device->behaviour == SILENT_THEN_OFFLINE)
      device_status (o->device, "{\"state\":\"offline\"}");
    else
      device_says (o, "{\"type\":\"bye\"}");
  }
  return any;
}

/* ---- what the server saw ---- */

static gboolean
is_authorized (SoupServerMessage * msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  SoupMessageHeadersIter iter;
  const gchar *name, *value;

  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value)) {
    g_autofree gchar *given = NULL;

    if (g_ascii_strcasecmp (name, "Authorization") != 0
        || g_ascii_strncasecmp (value, "Bearer ", 7) != 0)
      continue;
    given = g_strstrip (g_strdup (value + 7));
    if (g_str_equal (given, TOKEN))
      return TRUE;
  }
  return FALSE;
}

static void
on_request_done (SoupServer * server, SoupServerMessage * msg, Run * run)
{
  GUri *uri = soup_server_message_get_uri (msg);
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);

  g_free (run->seen.method);
  g_free (run->seen.path);
  run->seen.finished = TRUE;
  run->seen.aborted = FALSE;
  run->seen.method = g_strdup (soup_server_message_get_method (msg));
  run->seen.path = uri ? g_strdup (g_uri_get_path (uri)) : NULL;
  run->seen.status = soup_server_message_get_status (msg);
  run->seen.authorized = is_authorized (msg);
  run->seen.expects_continue = (soup_message_headers_get_expectations
      (headers) & SOUP_EXPECTATION_CONTINUE) != 0;
}

/* The connection broke (the body ended early): libsoup says 500 but
 * writes nothing. */
static void
on_request_aborted (SoupServer * server, SoupServerMessage * msg, Run * run)
{
  on_request_done (server, msg, run);
  run->seen.finished = FALSE;
  run->seen.aborted = TRUE;
}

static void
seen_clear (Seen * seen)
{
  g_free (seen->method);
  g_free (seen->path);
  memset (seen, 0, sizeof (*seen));
}

/* ---- the response bytes ---- */

static void
header_free (Header * h)
{
  g_free (h->name);
  g_free (h->value);
  g_free (h);
}

static void
response_clear (Response * r)
{
  g_clear_pointer (&r->headers, g_ptr_array_unref);
  g_clear_pointer (&r->body, g_bytes_unref);
}

static const gchar *
header (const Response * r, const gchar * name)
{
  guint i;

  for (i = 0; i < r->headers->len; i++) {
    Header *h = g_ptr_array_index (r->headers, i);

    if (g_ascii_strcasecmp (h->name, name) == 0)
      return h->value;
  }
  return NULL;
}

static guint
count_headers (const Response * r, const gchar * name)
{
  guint i, n = 0;

  for (i = 0; i < r->headers->len; i++) {
    Header *h = g_ptr_array_index (r->headers, i);

    if (g_ascii_strcasecmp (h->name, name) == 0)
      n++;
  }
  return n;
}

static gboolean
is_tchar (gchar c)
{
  return g_ascii_isalnum (c) || strchr ("!#$%&'*+-.^_`|~", c) != NULL;
}

static gboolean
is_text (const gchar * s, gsize n, gboolean tab)
{
  gsize i;

  for (i = 0; i < n; i++) {
    if (!((s[i] >= 0x20 && s[i] <= 0x7e) || (tab && s[i] == '\t')))
      return FALSE;
  }
  return TRUE;
}

/* One response from @*p: a strict reading of RFC 9112's grammar for what
 * a server may send; @*p then points after it. */
static void
parse_response (const Run * run, const gchar ** p, const gchar * end,
    gboolean head, Response * r)
{
  const gchar *line = *p, *eol, *colon;
  guint64 length = 0;
  gboolean has_length = FALSE;
  const gchar *te;

  r->headers = g_ptr_array_new_with_free_func ((GDestroyNotify) header_free);

  eol = g_strstr_len (line, end - line, "\r\n");
  if (eol == NULL || eol - line < 13 || (!g_str_has_prefix (line, "HTTP/1.1 ")
          && !g_str_has_prefix (line, "HTTP/1.0 "))
      || !g_ascii_isdigit (line[9]) || !g_ascii_isdigit (line[10])
      || !g_ascii_isdigit (line[11]) || line[12] != ' '
      || !is_text (line + 13, eol - line - 13, TRUE))
    fail (run, "a malformed status line: \"%.*s\"",
        (int) MIN (end - line, 80), line);
  r->status = g_ascii_digit_value (line[9]) * 100
      + g_ascii_digit_value (line[10]) * 10 + g_ascii_digit_value (line[11]);

  for (line = eol + 2;; line = eol + 2) {
    Header *h;
    const gchar *n;

    eol = g_strstr_len (line, end - line, "\r\n");
    if (eol == NULL)
      fail (run, "the response head does not end");
    if (eol == line)
      break;
    colon = memchr (line, ':', eol - line);
    if (colon == NULL || colon == line)
      fail (run, "a malformed header line: \"%.*s\"", (int) (eol - line), line);
    for (n = line; n < colon; n++) {
      if (!is_tchar (*n))
        fail (run, "a malformed header name: \"%.*s\"", (int) (eol - line),
            line);
    }
    if (!is_text (colon + 1, eol - colon - 1, TRUE))
      fail (run, "a header value that is not text: \"%.*s\"",
          (int) (eol - line), line);
    h = g_new0 (Header, 1);
    h->name = g_strndup (line, colon - line);
    h->value = g_strstrip (g_strndup (colon + 1, eol - colon - 1));
    g_ptr_array_add (r->headers, h);
  }
  *p = eol + 2;

  if (count_headers (r, "Content-Length") > 1)
    fail (run, "more than one Content-Length");
  if (header (r, "Content-Length") != NULL) {
    if (!g_ascii_string_to_unsigned (header (r, "Content-Length"), 10, 0,
            G_MAXUINT32, &length, NULL))
      fail (run, "Content-Length: %s", header (r, "Content-Length"));
    has_length = TRUE;
  }
  te = header (r, "Transfer-Encoding");

  if (head || r->status / 100 == 1 || r->status == 204 || r->status == 304) {
    /* no body; a HEAD reply may say how long the GET's would be */
    if (te != NULL || (has_length && !head))
      fail (run, "a %u response that declares a body", r->status);
    r->body = g_bytes_new (NULL, 0);
  } else if (te != NULL) {
    GString *body = g_string_new (NULL);

    if (has_length || g_ascii_strcasecmp (te, "chunked") != 0)
      fail (run, "Transfer-Encoding: %s%s", te,
          has_length ? " with Content-Length" : "");
    for (;;) {
      guint64 size;
      g_autofree gchar *digits = NULL;

      eol = g_strstr_len (*p, end - *p, "\r\n");
      digits = eol ? g_strndup (*p, eol - *p) : NULL;
      if (digits == NULL
          || !g_ascii_string_to_unsigned (digits, 16, 0, G_MAXUINT32, &size,
              NULL) || (guint64) (end - eol - 2) < size + 2
          || memcmp (eol + 2 + size, "\r\n", 2) != 0)
        fail (run, "a malformed chunk");
      g_string_append_len (body, eol + 2, size);
      *p = eol + 2 + size + 2;
      if (size == 0)
        break;
    }
    r->body = g_string_free_to_bytes (body);
  } else if (has_length) {
    if ((guint64) (end - *p) < length)
      fail (run, "a body of %" G_GINT64_FORMAT " bytes, Content-Length: "
          "%" G_GUINT64_FORMAT, (gint64) (end - *p), length);
    r->body = g_bytes_new (*p, length);
    *p += length;
  } else {
    /* ends with the connection */
    r->body = g_bytes_new (*p, end - *p);
    *p = end;
  }
}

static gboolean
is_api_path (const gchar * path)
{
  return path != NULL && (g_str_equal (path, "/api")
      || g_str_has_prefix (path, "/api/") || g_str_equal (path, "/whep")
      || g_str_has_prefix (path, "/whep/"));
}

static gboolean
is_contract_status (guint status)
{
  static const guint statuses[] = {
    /* the gateway's (docs/http-api.md) */
    200, 201, 204, 400, 401, 404, 405, 412, 413, 415, 422, 502, 503, 504,
    /* libsoup's own: Expect, Transfer-Encoding, a bad request line (no
     * 206 or 416: the gateway serves whole files) */
    417, 501, 505,
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (statuses); i++) {
    if (statuses[i] == status)
      return TRUE;
  }
  return FALSE;
}

static void
check_error_body (const Run * run, const Response * r)
{
  gsize len;
  const gchar *body = g_bytes_get_data (r->body, &len);

  if (len == 0 || len > MAX_ERROR_BODY || body[len - 1] != '\n'
      || memchr (body, '\n', len - 1) != NULL
      || memchr (body, '\r', len) != NULL || memchr (body, '\0', len) != NULL
      || !g_utf8_validate (body, len, NULL))
    fail (run, "a %u error body that is not one line of text: \"%.*s\"",
        r->status, (int) MIN (len, 300), body ? body : "");
  {
    gsize i;

    for (i = 0; i + 1 < len; i++) {
      if ((guchar) body[i] < 0x20 || body[i] == 0x7f)
        fail (run, "a control character in a %u error body", r->status);
    }
  }
}

/* A 201 to a WHEP offer or a 200 to start-webrtc: the device's answer and
 * a session it was offered. */
static void
check_answer (Run * run, const Response * r, const gchar * device,
    gboolean whep)
{
  gsize len;
  const gchar *body = g_bytes_get_data (r->body, &len);
  g_autofree gchar *session = NULL;
  Offered *o;

  if (whep) {
    const gchar *location = header (r, "Location");
    const gchar *etag = header (r, "ETag");
    g_autofree gchar *prefix = g_strdup_printf ("/whep/%s/", device);

    if (location == NULL || !g_str_has_prefix (location, prefix))
      fail (run, "201 with Location: %s", location ? location : "(none)");
    session = g_strdup (location + strlen (prefix));
    if (etag == NULL || strlen (etag) < 3 || etag[0] != '"'
        || etag[strlen (etag) - 1] != '"')
      fail (run, "201 with ETag: %s", etag ? etag : "(none)");
    if (count_headers (r, "Link") != 2)
      fail (run, "201 with %u Link headers, expected 2",
          count_headers (r, "Link"));
    if (g_strcmp0 (header (r, "Content-Type"), "application/sdp") != 0
        || len != strlen (ANSWER_SDP) || memcmp (body, ANSWER_SDP, len) != 0)
      fail (run, "201 without the device's answer");
    g_free (run->last_etag);
    run->last_etag = g_strdup (etag);
  } else {
    g_autoptr (JsonParser) parser = json_parser_new ();
    JsonObject *obj;

    if (!json_parser_load_from_data (parser, body, len, NULL)
        || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
      fail (run, "200 to start-webrtc without a JSON object");
    obj = json_node_get_object (json_parser_get_root (parser));
    if (g_strcmp0 (json_object_get_string_member_with_default (obj,
                "webrtc_answer", NULL), ANSWER_SDP) != 0)
      fail (run, "200 to start-webrtc without the device's answer");
    session = g_strdup (json_object_get_string_member_with_default (obj,
            "session", ""));
  }
  o = g_hash_table_lookup (run->offered, session);
  if (o == NULL || (device != NULL && !g_str_equal (o->device->id, device))
      || (o->device->behaviour != ANSWER
          && o->device->behaviour != JUNK_THEN_ANSWER))
    fail (run, "an answer for session \"%s\", which device %s did not "
        "answer", session, device ? device : "(default)");
}

/* A 200 from .../stats: what the fake device said, checked fields only,
 * and its age. */
static void
check_stats (Run * run, const Response * r)
{
  g_autoptr (PcrMessage) msg = NULL;
  g_autoptr (JsonNode) root = NULL;
  gsize len;
  const gchar *body = g_bytes_get_data (r->body, &len);

  msg = pcr_message_parse (body, len, NULL);
  root = pcr_json_parse_object (body, len, NULL);
  if (msg == NULL || root == NULL || msg->type != PCR_MESSAGE_STATS
      || msg->stats.estimate != 1900000
      || !json_object_has_member (json_node_get_object (root), "ageMs")
      || json_object_has_member (json_node_get_object (root), "junk"))
    fail (run, "stats reply not the device's stats with ageMs: %.*s",
        (int) len, body);
}

static void
check_reply (Run * run, const Response * r)
{
  const Seen *seen = &run->seen;
  const gchar *type = header (r, "Content-Type");
  gboolean api = is_api_path (seen->path);
  gboolean ok = r->status / 100 == 2;

  if (!is_contract_status (r->status))
    fail (run, "status %u is not in the HTTP contract", r->status);
  if (seen->aborted)
    fail (run, "a %u reply to a request that libsoup aborted", r->status);
  if (seen->finished && seen->status != r->status)
    fail (run, "the server finished with %u but wrote %u", seen->status,
        r->status);
  /* (a HEAD reply has the headers of the error, not its body) */
  if (r->status >= 400 && type != NULL && g_str_has_prefix (type,
          "text/plain") && g_strcmp0 (seen->method, "HEAD") != 0)
    check_error_body (run, r);

  /* the gateway's own replies on /api and /whep: CORS, the token */
  if (api && (ok || (r->status >= 400 && type != NULL))) {
    if (g_strcmp0 (header (r, "Access-Control-Allow-Origin"), "*") != 0
        || header (r, "Access-Control-Expose-Headers") == NULL)
      fail (run, "a %u reply to %s without the CORS headers", r->status,
          seen->path);
  }
  if (api && ok && run->token && !seen->authorized
      && g_strcmp0 (seen->method, "OPTIONS") != 0)
    fail (run, "%s %s succeeded (%u) without the bearer token",
        seen->method, seen->path, r->status);
  if (r->status == 401 && header (r, "WWW-Authenticate") == NULL)
    fail (run, "401 without WWW-Authenticate");
  if (r->status == 405 && header (r, "Allow") == NULL)
    fail (run, "405 without Allow");

  if (r->status == 201) {
    g_auto (GStrv) parts = g_strsplit (seen->path ? seen->path : "", "/", -1);

    if (g_strcmp0 (seen->method, "POST") != 0 || g_strv_length (parts) != 3
        || !g_str_equal (parts[1], "whep"))
      fail (run, "201 to %s %s", seen->method, seen->path);
    check_answer (run, r, parts[2], TRUE);
  } else if (ok && g_strcmp0 (seen->path, "/api/start-webrtc") == 0
      && g_strcmp0 (seen->method, "POST") == 0) {
    check_answer (run, r, NULL, FALSE);
  } else if (r->status == 200 && seen->path
      && (g_str_has_suffix (seen->path, "/stats")
          || g_str_equal (seen->path, "/api/stats"))
      && g_strcmp0 (seen->method, "GET") == 0) {
    check_stats (run, r);
  } else if (ok && g_strcmp0 (seen->method, "DELETE") == 0) {
    const gchar *slash = seen->path ? strrchr (seen->path, '/') : NULL;
    Offered *o = slash ? g_hash_table_lookup (run->offered, slash + 1) : NULL;

    if (o == NULL || !o->bye)
      fail (run, "DELETE %s succeeded without a bye to the device", seen->path);
  }
}

/* The connection's output: nothing (the request never became one, or a
 * connection that libsoup dropped), or one response, after a 100 Continue
 * when the request asked for it. */
static void
check_output (Run * run, GBytes * output)
{
  gsize len;
  const gchar *data = g_bytes_get_data (output, &len);
  const gchar *p, *end;
  gboolean head = g_strcmp0 (run->seen.method, "HEAD") == 0;
  Response r = { 0 };

  if (len == 0) {
    if (run->seen.finished && run->seen.status != 0)
      fail (run, "a %u reply was never written", run->seen.status);
    return;
  }
  p = data;
  end = data + len;
  parse_response (run, &p, end, head, &r);
  if (r.status == 100) {
    if (!run->seen.expects_continue)
      fail (run, "100 Continue to a request that did not expect it");
    response_clear (&r);
    /* the client sent less body than it said: nothing more */
    if (p == end && run->seen.aborted)
      return;
    parse_response (run, &p, end, head, &r);
  }
  if (p != end)
    fail (run, "%" G_GSIZE_FORMAT " bytes after the response",
        (gsize) (end - p));
  check_reply (run, &r);
  response_clear (&r);
}

/* ---- one input ---- */

static gchar *
replace_all (const gchar * text, const gchar * from, const gchar * to)
{
  g_auto (GStrv) parts = g_strsplit (text, from, -1);

  return g_strjoinv (to, parts);
}

/* The bytes of one request, with "{S}", "{E}" and "{L}" filled in. */
static GBytes *
expand_request (const Run * run, const gchar * text, gsize len)
{
  g_autofree gchar *copy = NULL;
  g_autofree gchar *with_s = NULL;
  g_autofree gchar *with_e = NULL;
  const gchar *head_end;
  GString *out;
  gsize head_len;

  /* NUL bytes stay as they are: only a request without any is expanded */
  if (memchr (text, '\0', len) != NULL || memchr (text, '{', len) == NULL)
    return g_bytes_new (text, len);
  copy = g_strndup (text, len);
  with_s = replace_all (copy, "{S}", run->last_session ? run->last_session :
      "00000000000000000000000000000000");
  with_e = replace_all (with_s, "{E}", run->last_etag ? run->last_etag :
      "\"0\"");
  head_end = strstr (with_e, "\r\n\r\n");
  if (head_end == NULL)
    return g_bytes_new (with_e, strlen (with_e));
  head_len = head_end + 4 - with_e;
  {
    g_autofree gchar *head = g_strndup (with_e, head_len);
    g_autofree gchar *body_len = g_strdup_printf ("%" G_GSIZE_FORMAT,
        strlen (with_e) - head_len);
    g_autofree gchar *new_head = replace_all (head, "{L}", body_len);

    out = g_string_new (new_head);
    g_string_append (out, with_e + head_len);
  }
  return g_string_free_to_bytes (out);
}

/* Requests that would make libsoup itself keep memory, which nothing of
 * the gateway's runs early enough to prevent (both happen while libsoup
 * parses the head), are not sent:
 * - libsoup 3.2.3 (Debian 12's) leaks the path of a request whose body
 *   framing it does not recognize (a bad Content-Length, an unknown
 *   Transfer-Encoding): parse_headers() returns early without freeing it;
 *   fixed in 3.5.2 (commit 450d43c4, "Fix memory leak in error path").
 * - libsoup interns every request method (soup_server_message_set_method:
 *   g_intern_string), so each new one stays for good; fuzzed methods
 *   would grow GLib's quark table, which abandons its old block on purpose
 *   (tests/lsan.supp). A fixed set of methods is sent instead.
 * This finds the head as soup_message_io_data_read_headers() does (up to
 * the first empty line, else everything) and parses it with the same
 * function. */
static gboolean
libsoup_would_keep_memory (GBytes * request)
{
  static const gchar *const methods[] = {
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT",
    "TRACE", "BREW", "get", "Post", NULL
  };
  gsize len, i, head_len;
  const gchar *data = g_bytes_get_data (request, &len);
  g_autoptr (SoupMessageHeaders) headers = NULL;
  g_autofree gchar *head = NULL;
  g_autofree gchar *method = NULL;
  g_autofree gchar *path = NULL;
  guint status;

  head_len = len;
  for (i = 2; i < len; i++) {
    if (data[i] != '\n')
      continue;
    if (data[i - 1] == '\n') {
      head_len = i;
      break;
    }
    if (i >= 4 && data[i - 1] == '\r' && data[i - 2] == '\n') {
      head_len = i - 1;
      break;
    }
  }
  head = g_malloc (head_len + 1);
  memcpy (head, data, head_len);
  head[head_len] = '\0';
  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  status = soup_headers_parse_request (head, head_len, headers, &method,
      &path, NULL);
  if (!SOUP_STATUS_IS_SUCCESSFUL (status))
    return FALSE;
  return !g_strv_contains (methods, method)
      || soup_message_headers_get_encoding (headers) ==
      SOUP_ENCODING_UNRECOGNIZED;
}

static void
run_request (Run * run, SoupServer * server, const gchar * text, gsize len)
{
  g_autoptr (GBytes) request = expand_request (run, text, len);
  g_autoptr (GInputStream) in = g_memory_input_stream_new_from_bytes (request);
  g_autoptr (GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_autoptr (GIOStream) stream = g_simple_io_stream_new (in, out);
  g_autoptr (GBytes) output = NULL;

  if (libsoup_would_keep_memory (request))
    return;
  seen_clear (&run->seen);
  soup_server_accept_iostream (server, stream, local_address, remote_address,
      NULL);
  /* until libsoup closes the connection: after the reply, or on bad input */
  while (!g_io_stream_is_closed (stream)) {
    if (g_main_context_iteration (context, FALSE))
      continue;
    if (!devices_catch_up (run))
      fail (run, "a request got no reply (the server waits for nothing)");
  }
  while (g_main_context_iteration (context, FALSE));
  output = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
  /* for a look at what a reproducer or a seed does */
  if (g_getenv ("PCR_FUZZ_VERBOSE") != NULL)
    fprintf (stderr, "----- request\n%.*s\n----- reply\n%.*s\n",
        (int) g_bytes_get_size (request),
        (const char *) g_bytes_get_data (request, NULL),
        (int) g_bytes_get_size (output),
        (const char *) g_bytes_get_data (output, NULL));
  check_output (run, output);
}

static PcrGateway *
new_gateway (const Run * run)
{
  static const gchar *const stun[] = { "stun:stun.example.net:3478", NULL };
  static const gchar *const turn[] = {
    "turn:turn.example.net:3478?transport=udp", NULL
  };
  PcrGatewayConfig *config = pcr_gateway_config_new ();
  g_autoptr (GError) error = NULL;
  PcrGateway *gateway;

  g_strfreev (config->stun_uris);
  config->stun_uris = g_strdupv ((gchar **) stun);
  g_strfreev (config->turn_uris);
  config->turn_uris = g_strdupv ((gchar **) turn);
  config->turn_secret = g_bytes_new_static ("fuzz-secret", 11);
  config->www_dir = g_strdup (www_dir);
  if (run->token)
    config->token = g_strdup (TOKEN);
  if (run->small) {
    config->max_body_size = 1024;
    config->max_sessions = 1;
  }
  gateway = pcr_gateway_new (config, &error);
  if (gateway == NULL) {
    fprintf (stderr, "pcr_gateway_new: %s\n", error->message);
    abort ();
  }
  return gateway;
}

static void
run_input (const guint8 * data, gsize size)
{
  Run run = { 0 };
  PcrGateway *gateway;
  SoupServer *server;
  const gchar *p = (const gchar *) data, *end = p + size;
  FakeMqttHooks hooks = { on_publish, on_freed };
  guint i, n;

  run.data = data;
  run.size = size;
  run.offered = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
      (GDestroyNotify) offered_free);
  if (size > 0 && data[0] == '@') {
    const gchar *eol = memchr (p, '\n', size);
    g_autofree gchar *line = g_strndup (p + 1, (eol ? eol : end) - p - 1);
    g_auto (GStrv) words = g_strsplit (line, " ", 8);

    run.token = g_strv_contains ((const gchar * const *) words, "token");
    run.offline = g_strv_contains ((const gchar * const *) words, "offline");
    run.small = g_strv_contains ((const gchar * const *) words, "small");
    p = eol ? eol + 1 : end;
  }

  fake_mqtt_set_hooks (&hooks, &run);
  gateway = new_gateway (&run);
  server = pcr_gateway_get_server (gateway);
  g_signal_connect (server, "request-finished",
      G_CALLBACK (on_request_done), &run);
  g_signal_connect (server, "request-aborted",
      G_CALLBACK (on_request_aborted), &run);
  for (i = 0; i < G_N_ELEMENTS (devices); i++)
    device_status (&devices[i], devices[i].status);
  if (!run.offline)
    fake_mqtt_set_connected (fake_mqtt_get (), TRUE);
  while (g_main_context_iteration (context, FALSE));
  for (i = 0; i < G_N_ELEMENTS (devices); i++)
    device_metrics (&devices[i]);
  while (g_main_context_iteration (context, FALSE));

  for (n = 0; n < MAX_REQUESTS && p < end; n++) {
    const gchar *sep = g_strstr_len (p, end - p, SEPARATOR);
    const gchar *stop = sep ? sep + 1 : end;

    run_request (&run, server, p, stop - p);
    p = sep ? sep + strlen (SEPARATOR) : end;
  }

  pcr_gateway_free (gateway);
  while (g_main_context_iteration (context, FALSE));
  seen_clear (&run.seen);
  g_hash_table_unref (run.offered);
  g_free (run.last_session);
  g_free (run.last_etag);
}

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t * data, size_t size);

/* Once per process: the context, the addresses the connections claim, and
 * one input through every kind of request, so that the types and quarks
 * GLib, libsoup and json-glib register on first use are not taken for
 * leaks of whichever input came first. */
int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  static const char warm[] =
      "GET / HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1,3-4\r\n\r\n"
      SEPARATOR
      "POST /api/start-webrtc HTTP/1.1\r\nHost: h\r\n"
      "Content-Type: application/json\r\nContent-Length: {L}\r\n\r\n"
      "{\"type\":\"offer\",\"sdp\":\"v=0\\r\\nm=video 9 RTP/AVP 96\\r\\n"
      "a=mid:0\\r\\n\"}"
      SEPARATOR
      "PATCH /whep/cam1/{S} HTTP/1.1\r\nHost: h\r\n"
      "Content-Type: application/trickle-ice-sdpfrag\r\n"
      "Transfer-Encoding: chunked\r\n\r\n"
      "13\r\na=end-of-candidates\r\n0\r\n\r\n"
      SEPARATOR "GET /whep/cam1/{S}/stats HTTP/1.1\r\nHost: h\r\n\r\n"
      SEPARATOR "GET /api/stats?session={S} HTTP/1.1\r\nHost: h\r\n\r\n"
      SEPARATOR "GET /api/devices HTTP/1.0\r\n\r\n";

  g_log_set_writer_func (log_writer, NULL, NULL);
  context = g_main_context_new ();
  g_main_context_push_thread_default (context);
  local_address = g_inet_socket_address_new_from_string ("127.0.0.1", 8080);
  remote_address = g_inet_socket_address_new_from_string ("127.0.0.1", 40000);
  www_dir = realpath (PCR_GATEWAY_SOURCE_WWW_DIR, NULL);
  if (www_dir == NULL) {
    fprintf (stderr, "no web client at %s\n", PCR_GATEWAY_SOURCE_WWW_DIR);
    abort ();
  }
  run_input ((const guint8 *) warm, strlen (warm));
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  run_input (data, size);
  return 0;
}
