/* picamrtc signalling messages: the JSON codec for the MQTT contract of
 * docs/signalling.md (offer, answer, candidate, bye, error, stats), the topic
 * scheme "P/D/in|out/S" and "P/D/status", session and device id validation,
 * and the conversion of RTCIceServer entries into the stun:// and turn:// URIs
 * that webrtcbin takes. Every payload comes from the network and is treated as
 * hostile: its size is bounded here, its encoding, nesting and lexical form
 * are checked by pcr-json.c before json-glib sees it, and every field is
 * type-checked and bounded. */

#include "pcr-message.h"

#include <string.h>
#include <json-glib/json-glib.h>

#include "pcr-json.h"
#include "pcr-quote.h"

#define MAX_CANDIDATE_SIZE 2048
#define MAX_URL_SIZE 512
/* How much of a peer's text an error message may quote. */
#define MAX_QUOTED_TYPE 40

/* *INDENT-OFF* */
G_DEFINE_QUARK (pcr-message-error-quark, pcr_message_error);
/* *INDENT-ON* */

static const gchar *const type_names[] = {
  [PCR_MESSAGE_OFFER] = "offer",
  [PCR_MESSAGE_ANSWER] = "answer",
  [PCR_MESSAGE_CANDIDATE] = "candidate",
  [PCR_MESSAGE_BYE] = "bye",
  [PCR_MESSAGE_ERROR_MSG] = "error",
  [PCR_MESSAGE_STATS] = "stats",
  [PCR_MESSAGE_SNAPSHOT] = "snapshot",
  [PCR_MESSAGE_IMAGE] = "image",
  [PCR_MESSAGE_RECORD] = "record",
  [PCR_MESSAGE_RECORDING] = "recording",
  [PCR_MESSAGE_RECORDINGS] = "recordings",
  [PCR_MESSAGE_SEGMENTS] = "segments",
  [PCR_MESSAGE_FETCH] = "fetch",
  [PCR_MESSAGE_CHUNK] = "chunk",
  [PCR_MESSAGE_RELAY] = "relay",
};

const gchar *
pcr_error_code_to_string (PcrErrorCode code)
{
  switch (code) {
    case PCR_ERROR_BAD_REQUEST:
      return "bad-request";
    case PCR_ERROR_NO_COMPATIBLE_CODEC:
      return "no-compatible-codec";
    case PCR_ERROR_MAX_VIEWERS:
      return "max-viewers";
    case PCR_ERROR_UNKNOWN_SESSION:
      return "unknown-session";
    case PCR_ERROR_INTERNAL:
      return "internal";
    case PCR_ERROR_NO_SNAPSHOT:
      return "no-snapshot";
    case PCR_ERROR_BUSY:
      return "busy";
    case PCR_ERROR_NO_RECORDING:
      return "no-recording";
    case PCR_ERROR_NOT_FOUND:
      return "not-found";
    case PCR_ERROR_RELAY_UNAVAILABLE:
      return "relay-unavailable";
  }
  g_return_val_if_reached ("internal");
}

void
pcr_ice_server_free (PcrIceServer * server)
{
  if (server == NULL)
    return;
  g_strfreev (server->urls);
  g_free (server->username);
  g_free (server->credential);
  g_free (server);
}

void
pcr_message_free (PcrMessage * msg)
{
  if (msg == NULL)
    return;
  g_free (msg->sdp);
  g_clear_pointer (&msg->ice_servers, g_ptr_array_unref);
  g_free (msg->candidate);
  g_free (msg->sdp_mid);
  g_free (msg->code);
  g_free (msg->message);
  g_free (msg->stats.rendition);
  g_free (msg->image.content_type);
  g_clear_pointer (&msg->image.data, g_bytes_unref);
  g_clear_pointer (&msg->segments, g_ptr_array_unref);
  g_free (msg->name);
  g_clear_pointer (&msg->data, g_bytes_unref);
  g_free (msg);
}

static PcrMessage *
message_new (PcrMessageType type)
{
  PcrMessage *msg = g_new0 (PcrMessage, 1);

  msg->type = type;
  msg->ice_servers =
      g_ptr_array_new_with_free_func ((GDestroyNotify) pcr_ice_server_free);
  msg->segments =
      g_ptr_array_new_with_free_func ((GDestroyNotify) pcr_segment_free);
  return msg;
}

PcrMessage *
pcr_message_new_offer (const gchar * sdp, gboolean trickle)
{
  PcrMessage *msg;

  g_return_val_if_fail (sdp != NULL, NULL);

  msg = message_new (PCR_MESSAGE_OFFER);
  msg->sdp = g_strdup (sdp);
  msg->trickle = trickle;
  return msg;
}

PcrMessage *
pcr_message_new_answer (const gchar * sdp)
{
  PcrMessage *msg;

  g_return_val_if_fail (sdp != NULL, NULL);

  msg = message_new (PCR_MESSAGE_ANSWER);
  msg->sdp = g_strdup (sdp);
  return msg;
}

PcrMessage *
pcr_message_new_candidate (const gchar * candidate, guint sdp_mline_index,
    const gchar * sdp_mid)
{
  PcrMessage *msg;

  g_return_val_if_fail (candidate != NULL, NULL);
  g_return_val_if_fail (sdp_mline_index <= G_MAXUINT16, NULL);

  msg = message_new (PCR_MESSAGE_CANDIDATE);
  msg->candidate = g_strdup (candidate);
  msg->sdp_mline_index = sdp_mline_index;
  msg->sdp_mid = g_strdup (sdp_mid);
  return msg;
}

PcrMessage *
pcr_message_new_bye (void)
{
  return message_new (PCR_MESSAGE_BYE);
}

PcrMessage *
pcr_message_new_error (PcrErrorCode code, const gchar * message)
{
  PcrMessage *msg = message_new (PCR_MESSAGE_ERROR_MSG);

  msg->code = g_strdup (pcr_error_code_to_string (code));
  msg->message = g_strdup (message ? message : "");
  return msg;
}

PcrMessage *
pcr_message_new_stats (const PcrStats * stats)
{
  PcrMessage *msg;

  g_return_val_if_fail (stats != NULL, NULL);
  g_return_val_if_fail (pcr_id_is_valid (stats->rendition) &&
      strlen (stats->rendition) <= PCR_STATS_MAX_RENDITION, NULL);

  msg = message_new (PCR_MESSAGE_STATS);
  msg->stats = *stats;
  msg->stats.rendition = g_strdup (stats->rendition);
  return msg;
}

PcrMessage *
pcr_message_new_relay (guint64 room, guint64 feed)
{
  PcrMessage *msg;

  g_return_val_if_fail (room <= PCR_RELAY_MAX_ID && feed <= PCR_RELAY_MAX_ID,
      NULL);
  msg = message_new (PCR_MESSAGE_RELAY);
  msg->room = room;
  msg->feed = feed;
  return msg;
}

PcrMessage *
pcr_message_new_snapshot (void)
{
  return message_new (PCR_MESSAGE_SNAPSHOT);
}

PcrMessage *
pcr_message_new_image (const gchar * content_type, guint width, guint height,
    guint part, guint parts, guint size, GBytes * data)
{
  PcrMessage *msg;

  g_return_val_if_fail (content_type != NULL && data != NULL, NULL);
  g_return_val_if_fail (part < parts && parts <= PCR_IMAGE_MAX_PARTS, NULL);
  g_return_val_if_fail (g_bytes_get_size (data) <= PCR_IMAGE_PART_MAX, NULL);

  msg = message_new (PCR_MESSAGE_IMAGE);
  msg->image.content_type = g_strdup (content_type);
  msg->image.width = width;
  msg->image.height = height;
  msg->image.part = part;
  msg->image.parts = parts;
  msg->image.size = size;
  msg->image.data = g_bytes_ref (data);
  return msg;
}

void
pcr_segment_free (PcrSegment * segment)
{
  if (segment == NULL)
    return;
  g_free (segment->name);
  g_free (segment);
}

PcrSegment *
pcr_segment_new (const gchar * name, gint64 start, guint duration_ms,
    guint64 bytes)
{
  PcrSegment *segment = g_new0 (PcrSegment, 1);

  segment->name = g_strdup (name);
  segment->start = start;
  segment->duration_ms = duration_ms;
  segment->bytes = bytes;
  return segment;
}

PcrMessage *
pcr_message_new_record (gboolean start)
{
  PcrMessage *msg = message_new (PCR_MESSAGE_RECORD);

  msg->record = start;
  return msg;
}

PcrMessage *
pcr_message_new_recording (gboolean recording)
{
  PcrMessage *msg = message_new (PCR_MESSAGE_RECORDING);

  msg->record = recording;
  return msg;
}

PcrMessage *
pcr_message_new_recordings (guint from)
{
  PcrMessage *msg = message_new (PCR_MESSAGE_RECORDINGS);

  msg->from = from;
  return msg;
}

PcrMessage *
pcr_message_new_segments (gboolean recording, guint from, guint total)
{
  PcrMessage *msg = message_new (PCR_MESSAGE_SEGMENTS);

  msg->record = recording;
  msg->from = from;
  msg->total = total;
  return msg;
}

PcrMessage *
pcr_message_new_fetch (const gchar * name, guint64 offset, guint length)
{
  PcrMessage *msg;

  g_return_val_if_fail (name != NULL && length <= PCR_CHUNK_MAX, NULL);

  msg = message_new (PCR_MESSAGE_FETCH);
  msg->name = g_strdup (name);
  msg->offset = offset;
  msg->length = length;
  return msg;
}

PcrMessage *
pcr_message_new_chunk (const gchar * name, guint64 offset, guint64 size,
    GBytes * data)
{
  PcrMessage *msg;

  g_return_val_if_fail (name != NULL && data != NULL, NULL);
  g_return_val_if_fail (g_bytes_get_size (data) <= PCR_CHUNK_MAX, NULL);

  msg = message_new (PCR_MESSAGE_CHUNK);
  msg->name = g_strdup (name);
  msg->offset = offset;
  msg->size = size;
  msg->data = g_bytes_ref (data);
  return msg;
}

/* ---- parsing ---- */

/* *INDENT-OFF* */
static gboolean
bad_request (GError ** error, const gchar * format, ...) G_GNUC_PRINTF (2, 3);
/* *INDENT-ON* */

static gboolean
bad_request (GError ** error, const gchar * format, ...)
{
  va_list args;

  va_start (args, format);
  g_propagate_error (error, g_error_new_valist (PCR_MESSAGE_ERROR,
          PCR_ERROR_BAD_REQUEST, format, args));
  va_end (args);
  return FALSE;
}

/* Looks up a string member. Absent (or null when !required) gives TRUE with
 * *out = NULL. */
static gboolean
get_string (JsonObject * obj, const gchar * name, gboolean required,
    const gchar ** out, GError ** error)
{
  JsonNode *node = json_object_get_member (obj, name);

  *out = NULL;
  if (node == NULL) {
    if (required)
      return bad_request (error, "missing \"%s\" string", name);
    return TRUE;
  }
  if (!required && JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    return bad_request (error, "\"%s\" is not a string", name);
  *out = json_node_get_string (node);
  /* Belt and braces: the lexical pass should make this impossible. */
  if (*out == NULL || !g_utf8_validate (*out, -1, NULL))
    return bad_request (error, "\"%s\" is not valid UTF-8", name);
  return TRUE;
}

static gboolean
parse_url (const gchar * url, guint index, GPtrArray * urls, GError ** error)
{
  gsize len = strlen (url);

  if (len == 0)
    return bad_request (error, "iceServers[%u] has an empty url", index);
  if (len > MAX_URL_SIZE)
    return bad_request (error,
        "iceServers[%u] has a url of %" G_GSIZE_FORMAT
        " bytes, over the %d-byte limit", index, len, MAX_URL_SIZE);
  g_ptr_array_add (urls, g_strdup (url));
  return TRUE;
}

static PcrIceServer *
parse_ice_server (JsonNode * node, guint index, GError ** error)
{
  g_autoptr (PcrIceServer) server = NULL;
  g_autoptr (GPtrArray) urls = g_ptr_array_new_with_free_func (g_free);
  JsonObject *obj;
  JsonNode *urls_node;
  const gchar *username, *credential;

  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    bad_request (error, "iceServers[%u] is not an object", index);
    return NULL;
  }
  obj = json_node_get_object (node);

  urls_node = json_object_get_member (obj, "urls");
  if (urls_node == NULL) {
    bad_request (error, "iceServers[%u] has no \"urls\"", index);
    return NULL;
  }
  if (JSON_NODE_HOLDS_VALUE (urls_node)
      && json_node_get_value_type (urls_node) == G_TYPE_STRING) {
    if (!parse_url (json_node_get_string (urls_node), index, urls, error))
      return NULL;
  } else if (JSON_NODE_HOLDS_ARRAY (urls_node)) {
    JsonArray *array = json_node_get_array (urls_node);
    guint n = json_array_get_length (array), i;

    if (n == 0) {
      bad_request (error, "iceServers[%u] has an empty \"urls\" array", index);
      return NULL;
    }
    if (n > PCR_MESSAGE_MAX_ICE_URLS) {
      bad_request (error, "iceServers[%u] has %u urls, over the limit of %d",
          index, n, PCR_MESSAGE_MAX_ICE_URLS);
      return NULL;
    }
    for (i = 0; i < n; i++) {
      JsonNode *url = json_array_get_element (array, i);

      if (!JSON_NODE_HOLDS_VALUE (url)
          || json_node_get_value_type (url) != G_TYPE_STRING) {
        bad_request (error, "iceServers[%u] has a url that is not a string",
            index);
        return NULL;
      }
      if (!parse_url (json_node_get_string (url), index, urls, error))
        return NULL;
    }
  } else {
    bad_request (error,
        "iceServers[%u] \"urls\" is not a string or an array of strings",
        index);
    return NULL;
  }

  if (!get_string (obj, "username", FALSE, &username, error)
      || !get_string (obj, "credential", FALSE, &credential, error))
    return NULL;

  /* Every string came through pcr-json's lexical pass: valid UTF-8. */
  server = g_new0 (PcrIceServer, 1);
  g_ptr_array_add (urls, NULL);
  server->urls = (gchar **) g_ptr_array_free (g_steal_pointer (&urls), FALSE);
  server->username = g_strdup (username);
  server->credential = g_strdup (credential);
  return g_steal_pointer (&server);
}

static gboolean
parse_ice_servers (JsonObject * obj, GPtrArray * servers, GError ** error)
{
  JsonNode *node = json_object_get_member (obj, "iceServers");
  JsonArray *array;
  guint n, i;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return bad_request (error, "\"iceServers\" is not an array");
  array = json_node_get_array (node);
  n = json_array_get_length (array);
  if (n > PCR_MESSAGE_MAX_ICE_SERVERS)
    return bad_request (error, "%u iceServers, over the limit of %d", n,
        PCR_MESSAGE_MAX_ICE_SERVERS);
  for (i = 0; i < n; i++) {
    PcrIceServer *server =
        parse_ice_server (json_array_get_element (array, i), i, error);

    if (server == NULL)
      return FALSE;
    g_ptr_array_add (servers, server);
  }
  return TRUE;
}

static gboolean
parse_sdp (JsonObject * obj, PcrMessage * msg, GError ** error)
{
  const gchar *sdp;

  if (!get_string (obj, "sdp", TRUE, &sdp, error))
    return FALSE;
  if (sdp[0] == '\0')
    return bad_request (error, "empty \"sdp\"");
  msg->sdp = g_strdup (sdp);
  return TRUE;
}

/* An optional boolean member: absent leaves *out as it is. */
static gboolean
get_boolean (JsonObject * obj, const gchar * name, gboolean * out,
    GError ** error)
{
  JsonNode *node = json_object_get_member (obj, name);

  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    return bad_request (error, "\"%s\" is not a boolean", name);
  *out = json_node_get_boolean (node);
  return TRUE;
}

static gboolean
parse_offer (JsonObject * obj, PcrMessage * msg, GError ** error)
{
  if (!parse_sdp (obj, msg, error)
      || !get_boolean (obj, "trickle", &msg->trickle, error)
      || !get_boolean (obj, "stats", &msg->want_stats, error))
    return FALSE;
  return parse_ice_servers (obj, msg->ice_servers, error);
}

static gboolean
parse_candidate (JsonObject * obj, PcrMessage * msg, GError ** error)
{
  const gchar *candidate, *mid;
  JsonNode *index;
  gsize len;

  if (!get_string (obj, "candidate", TRUE, &candidate, error))
    return FALSE;
  len = strlen (candidate);
  if (len > MAX_CANDIDATE_SIZE)
    return bad_request (error,
        "\"candidate\" of %" G_GSIZE_FORMAT " bytes is over the %d-byte limit",
        len, MAX_CANDIDATE_SIZE);

  index = json_object_get_member (obj, "sdpMLineIndex");
  if (index != NULL && !JSON_NODE_HOLDS_NULL (index)) {
    gint64 value;

    /* json-glib clamps integers beyond 64 bits, which lands out of range. */
    if (!JSON_NODE_HOLDS_VALUE (index)
        || json_node_get_value_type (index) != G_TYPE_INT64
        || (value = json_node_get_int (index)) < 0 || value > G_MAXUINT16)
      return bad_request (error,
          "\"sdpMLineIndex\" is not an integer from 0 to 65535");
    msg->sdp_mline_index = value;
  }

  if (!get_string (obj, "sdpMid", FALSE, &mid, error))
    return FALSE;

  msg->candidate = g_strdup (candidate);
  msg->sdp_mid = g_strdup (mid);
  return TRUE;
}

static gboolean
parse_error (JsonObject * obj, PcrMessage * msg, GError ** error)
{
  const gchar *code, *message;

  if (!get_string (obj, "code", TRUE, &code, error)
      || !get_string (obj, "message", FALSE, &message, error))
    return FALSE;
  msg->code = g_strdup (code);
  msg->message = g_strdup (message ? message : "");
  return TRUE;
}

/* An integer member from 0 to @max. Absent (or null when !required) gives
 * TRUE and leaves *out as it is. */
static gboolean
get_uint (JsonObject * obj, const gchar * name, gboolean required,
    guint max, guint * out, GError ** error)
{
  JsonNode *node = json_object_get_member (obj, name);
  gint64 value;

  if (node == NULL || (!required && JSON_NODE_HOLDS_NULL (node))) {
    if (required)
      return bad_request (error, "missing \"%s\" integer", name);
    return TRUE;
  }
  /* json-glib clamps integers beyond 64 bits, which lands out of range. */
  if (!JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_INT64
      || (value = json_node_get_int (node)) < 0 || (guint64) value > max)
    return bad_request (error, "\"%s\" is not an integer from 0 to %u",
        name, max);
  *out = (guint) value;
  return TRUE;
}

static gboolean
parse_stats (JsonObject * obj, PcrMessage * msg, GError ** error)
{
  PcrStats *stats = &msg->stats;
  const gchar *rendition;
  JsonNode *loss;
  guint rtt = G_MAXUINT;

  if (!get_string (obj, "rendition", TRUE, &rendition, error))
    return FALSE;
  if (!pcr_id_is_valid (rendition)
      || strlen (rendition) > PCR_STATS_MAX_RENDITION)
    return bad_request (error, "\"rendition\" is not a name of 1 to %d of "
        "A-Z a-z 0-9 _ -", PCR_STATS_MAX_RENDITION);
  if (!get_uint (obj, "estimate", TRUE, G_MAXUINT, &stats->estimate, error)
      || !get_uint (obj, "width", FALSE, PCR_STATS_MAX_DIMENSION,
          &stats->width, error)
      || !get_uint (obj, "height", FALSE, PCR_STATS_MAX_DIMENSION,
          &stats->height, error)
      || !get_uint (obj, "bitrate", FALSE, G_MAXUINT, &stats->bitrate, error)
      || !get_uint (obj, "rtt", FALSE, PCR_STATS_MAX_RTT_MS, &rtt, error))
    return FALSE;
  stats->rtt = rtt == G_MAXUINT ? -1 : (gint) rtt;

  stats->loss = -1;
  loss = json_object_get_member (obj, "loss");
  if (loss != NULL && !JSON_NODE_HOLDS_NULL (loss)) {
    GType type = JSON_NODE_HOLDS_VALUE (loss) ?
        json_node_get_value_type (loss) : G_TYPE_INVALID;
    gdouble value = type == G_TYPE_DOUBLE ? json_node_get_double (loss) :
        type == G_TYPE_INT64 ? (gdouble) json_node_get_int (loss) : -1;

    /* NaN fails both comparisons; json-glib gives none, but be sure. */
    if (!(value >= 0 && value <= 1))
      return bad_request (error, "\"loss\" is not a number from 0 to 1");
    stats->loss = value;
  }
  stats->rendition = g_strdup (rendition);
  return TRUE;
}

/* Standard base64 with its padding, nothing else (g_base64_decode skips
 * what it does not know). */
static gboolean
is_base64 (const gchar * text, gsize len)
{
  gsize i, pad = 0;

  if (len % 4 != 0)
    return FALSE;
  for (i = 0; i < len; i++) {
    gchar c = text[i];

    if (c == '=') {
      if (i < len - 2)
        return FALSE;
      pad++;
    } else if (pad > 0 || !(g_ascii_isalnum (c) || c == '+' || c == '/'))
      return FALSE;
  }
  return TRUE;
}

/* Member @name: base64 of 1 to @max bytes (or 0 when @empty_ok). */
static gboolean
get_base64 (JsonObject * obj, const gchar * name, gsize max,
    gboolean empty_ok, GBytes ** out, GError ** error)
{
  const gchar *text;
  guchar *bytes;
  gsize len;

  if (!get_string (obj, name, TRUE, &text, error))
    return FALSE;
  len = strlen (text);
  if ((len == 0 && !empty_ok) || len > (max + 2) / 3 * 4
      || !is_base64 (text, len))
    return bad_request (error, "\"%s\" is not base64 of %d to %"
        G_GSIZE_FORMAT " bytes", name, empty_ok ? 0 : 1, max);
  bytes = len ? g_base64_decode (text, &len) : g_malloc0 (1);
  *out = g_bytes_new_take (bytes, len);
  if (len > max)
    return bad_request (error, "\"%s\" is over %" G_GSIZE_FORMAT " bytes",
        name, max);
  return TRUE;
}

static gboolean
parse_image (JsonObject * obj, PcrMessage * msg, GError ** error)
{
  PcrImagePart *image = &msg->image;
  const gchar *content_type;

  if (!get_string (obj, "contentType", TRUE, &content_type, error)
      || !get_uint (obj, "width", TRUE, PCR_IMAGE_MAX_DIMENSION,
          &image->width, error)
      || !get_uint (obj, "height", TRUE, PCR_IMAGE_MAX_DIMENSION,
          &image->height, error)
      || !get_uint (obj, "parts", TRUE, PCR_IMAGE_MAX_PARTS, &image->parts,
          error)
      || !get_uint (obj, "part", TRUE, PCR_IMAGE_MAX_PARTS, &image->part,
          error)
      || !get_uint (obj, "size", TRUE, PCR_IMAGE_MAX_PARTS *
          PCR_IMAGE_PART_MAX, &image->size, error))
    return FALSE;
  if (!g_str_equal (content_type, "image/jpeg"))
    return bad_request (error, "\"contentType\" is not image/jpeg");
  if (image->parts == 0 || image->part >= image->parts)
    return bad_request (error, "\"part\" is not below \"parts\"");
  if (!get_base64 (obj, "data", PCR_IMAGE_PART_MAX, FALSE, &image->data,
          error))
    return FALSE;
  if (g_bytes_get_size (image->data) > image->size)
    return bad_request (error, "\"data\" is larger than the image");
  image->content_type = g_strdup (content_type);
  return TRUE;
}

/* An integer member from 0 to @max (up to 2^53: JSON's exact integers). */
static gboolean
get_uint64 (JsonObject * obj, const gchar * name, gboolean required,
    guint64 max, guint64 * out, GError ** error)
{
  JsonNode *node = json_object_get_member (obj, name);
  gint64 value;

  if (node == NULL) {
    if (required)
      return bad_request (error, "missing \"%s\" integer", name);
    return TRUE;
  }
  if (!JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_INT64
      || (value = json_node_get_int (node)) < 0 || (guint64) value > max)
    return bad_request (error, "\"%s\" is not an integer from 0 to %"
        G_GUINT64_FORMAT, name, max);
  *out = (guint64) value;
  return TRUE;
}

static gboolean
get_segment_name (JsonObject * obj, const gchar * member, gchar ** out,
    GError ** error)
{
  const gchar *name;

  if (!get_string (obj, member, TRUE, &name, error))
    return FALSE;
  if (!pcr_segment_name_is_valid (name))
    return bad_request (error, "\"%s\" is not a segment's name "
        "(YYYYMMDD-HHMMSS.mp4)", member);
  *out = g_strdup (name);
  return TRUE;
}

static gboolean
parse_record (JsonObject * obj, PcrMessage * msg, GError ** error)
{
  const gchar *action;

  if (!get_string (obj, "action", TRUE, &action, error))
    return FALSE;
  if (!g_str_equal (action, "start") && !g_str_equal (action, "stop"))
    return bad_request (error, "\"action\" is not \"start\" or \"stop\"");
  msg->record = g_str_equal (action, "start");
  return TRUE;
}

static gboolean
get_required_boolean (JsonObject * obj, const gchar * name, gboolean * out,
    GError ** error)
{
  if (json_object_get_member (obj, name) == NULL)
    return bad_request (error, "missing \"%s\" boolean", name);
  return get_boolean (obj, name, out, error);
}

static gboolean
parse_segment (JsonNode * node, guint index, GPtrArray * segments,
    GError ** error)
{
  g_autoptr (GError) inner = NULL;
  g_autofree gchar *name = NULL;
  JsonObject *obj;
  guint64 start = 0, bytes = 0;
  guint duration = 0;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return bad_request (error, "segment %u is not an object", index);
  obj = json_node_get_object (node);
  if (!get_segment_name (obj, "name", &name, &inner)
      || !get_uint64 (obj, "start", TRUE, G_MAXUINT32, &start, &inner)
      || !get_uint (obj, "durationMs", TRUE, G_MAXINT, &duration, &inner)
      || !get_uint64 (obj, "bytes", TRUE, PCR_SEGMENT_MAX_SIZE, &bytes,
          &inner))
    return bad_request (error, "segment %u: %s", index, inner->message);
  g_ptr_array_add (segments, pcr_segment_new (name, (gint64) start, duration,
          bytes));
  return TRUE;
}

static gboolean
parse_segments (JsonObject * obj, PcrMessage * msg, GError ** error)
{
  JsonNode *node;
  JsonArray *array;
  guint i, n;

  if (!get_required_boolean (obj, "recording", &msg->record, error)
      || !get_uint (obj, "from", TRUE, G_MAXINT, &msg->from, error)
      || !get_uint (obj, "total", TRUE, G_MAXINT, &msg->total, error))
    return FALSE;
  node = json_object_get_member (obj, "segments");
  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return bad_request (error, "\"segments\" is not an array");
  array = json_node_get_array (node);
  n = json_array_get_length (array);
  if (n > PCR_SEGMENTS_PER_MESSAGE)
    return bad_request (error, "more than %d segments in one message",
        PCR_SEGMENTS_PER_MESSAGE);
  for (i = 0; i < n; i++) {
    if (!parse_segment (json_array_get_element (array, i), i, msg->segments,
            error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
parse_fetch (JsonObject * obj, PcrMessage * msg, GError ** error)
{
  if (!get_segment_name (obj, "name", &msg->name, error)
      || !get_uint64 (obj, "offset", TRUE, PCR_SEGMENT_MAX_SIZE,
          &msg->offset, error)
      || !get_uint (obj, "length", TRUE, PCR_CHUNK_MAX, &msg->length, error))
    return FALSE;
  if (msg->length == 0)
    return bad_request (error, "\"length\" is 0");
  return TRUE;
}

static gboolean
parse_chunk (JsonObject * obj, PcrMessage * msg, GError ** error)
{
  if (!get_segment_name (obj, "name", &msg->name, error)
      || !get_uint64 (obj, "offset", TRUE, PCR_SEGMENT_MAX_SIZE,
          &msg->offset, error)
      || !get_uint64 (obj, "size", TRUE, PCR_SEGMENT_MAX_SIZE, &msg->size,
          error)
      || !get_base64 (obj, "data", PCR_CHUNK_MAX, TRUE, &msg->data, error))
    return FALSE;
  if (msg->offset + g_bytes_get_size (msg->data) > msg->size)
    return bad_request (error, "the chunk goes past the segment's end");
  return TRUE;
}

PcrMessage *
pcr_message_parse (const gchar * data, gsize len, GError ** error)
{
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (PcrMessage) msg = NULL;
  JsonObject *obj;
  const gchar *type;
  guint i;
  gboolean ok = FALSE;

  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (len > PCR_MESSAGE_MAX_SIZE) {
    bad_request (error, "payload of %" G_GSIZE_FORMAT
        " bytes is over the %d-byte limit", len, PCR_MESSAGE_MAX_SIZE);
    return NULL;
  }
  root = pcr_json_parse_object (data, len, error);
  if (root == NULL)
    return NULL;
  obj = json_node_get_object (root);

  if (!get_string (obj, "type", TRUE, &type, error))
    return NULL;
  for (i = 0; i < G_N_ELEMENTS (type_names); i++) {
    if (strcmp (type, type_names[i]) == 0)
      break;
  }
  if (i == G_N_ELEMENTS (type_names)) {
    g_autofree gchar *quoted = pcr_quote_untrusted (type, MAX_QUOTED_TYPE);

    bad_request (error, "unknown type \"%s\"", quoted);
    return NULL;
  }

  msg = message_new ((PcrMessageType) i);
  switch (msg->type) {
    case PCR_MESSAGE_OFFER:
      ok = parse_offer (obj, msg, error);
      break;
    case PCR_MESSAGE_ANSWER:
      ok = parse_sdp (obj, msg, error);
      break;
    case PCR_MESSAGE_CANDIDATE:
      ok = parse_candidate (obj, msg, error);
      break;
    case PCR_MESSAGE_BYE:
      ok = TRUE;
      break;
    case PCR_MESSAGE_ERROR_MSG:
      ok = parse_error (obj, msg, error);
      break;
    case PCR_MESSAGE_STATS:
      ok = parse_stats (obj, msg, error);
      break;
    case PCR_MESSAGE_SNAPSHOT:
      ok = TRUE;
      break;
    case PCR_MESSAGE_IMAGE:
      ok = parse_image (obj, msg, error);
      break;
    case PCR_MESSAGE_RECORD:
      ok = parse_record (obj, msg, error);
      break;
    case PCR_MESSAGE_RECORDING:
      ok = get_required_boolean (obj, "recording", &msg->record, error);
      break;
    case PCR_MESSAGE_RECORDINGS:
      ok = get_uint (obj, "from", FALSE, G_MAXINT, &msg->from, error);
      break;
    case PCR_MESSAGE_SEGMENTS:
      ok = parse_segments (obj, msg, error);
      break;
    case PCR_MESSAGE_FETCH:
      ok = parse_fetch (obj, msg, error);
      break;
    case PCR_MESSAGE_CHUNK:
      ok = parse_chunk (obj, msg, error);
      break;
    case PCR_MESSAGE_RELAY:
      ok = get_uint64 (obj, "room", FALSE, PCR_RELAY_MAX_ID, &msg->room, error)
          && get_uint64 (obj, "feed", FALSE, PCR_RELAY_MAX_ID, &msg->feed,
          error);
      break;
  }
  if (!ok)
    return NULL;
  return g_steal_pointer (&msg);
}

/* ---- serializing ---- */

/* The compact JSON of what @builder holds (NUL-terminated, length in
 * @len). */
static gchar *
builder_to_json (JsonBuilder * builder, gsize * len)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (builder);

  json_generator_set_root (generator, root);
  return json_generator_to_data (generator, len);
}

static void
add_string (JsonBuilder * builder, const gchar * name, const gchar * value)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_string_value (builder, value ? value : "");
}

static void
add_int (JsonBuilder * builder, const gchar * name, gint64 value)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_int_value (builder, value);
}

/* Integers where a person would read them so; unknown ones left out. */
static void
add_stats (JsonBuilder * builder, const PcrStats * stats)
{
  add_string (builder, "rendition", stats->rendition);
  if (stats->width > 0 && stats->height > 0) {
    add_int (builder, "width", stats->width);
    add_int (builder, "height", stats->height);
  }
  add_int (builder, "estimate", stats->estimate);
  if (stats->bitrate > 0)
    add_int (builder, "bitrate", stats->bitrate);
  if (stats->loss >= 0 && stats->loss <= 1) {
    json_builder_set_member_name (builder, "loss");
    /* In 1/256 steps, a receiver report's own: they print exactly
     * (json-glib writes 17 digits, 0.1 would be 0.10000000000000001). */
    json_builder_add_double_value (builder,
        (gint) (stats->loss * 256 + 0.5) / 256.0);
  }
  if (stats->rtt >= 0)
    add_int (builder, "rtt", MIN (stats->rtt, PCR_STATS_MAX_RTT_MS));
}

static void
add_base64 (JsonBuilder * builder, const gchar * name, GBytes * bytes)
{
  gsize len;
  const guchar *data = g_bytes_get_data (bytes, &len);
  g_autofree gchar *text = g_base64_encode (data, len);

  add_string (builder, name, text);
}

static void
add_segments (JsonBuilder * builder, const PcrMessage * msg)
{
  guint i;

  json_builder_set_member_name (builder, "recording");
  json_builder_add_boolean_value (builder, msg->record);
  add_int (builder, "from", msg->from);
  add_int (builder, "total", msg->total);
  json_builder_set_member_name (builder, "segments");
  json_builder_begin_array (builder);
  for (i = 0; i < msg->segments->len; i++) {
    const PcrSegment *segment = g_ptr_array_index (msg->segments, i);

    json_builder_begin_object (builder);
    add_string (builder, "name", segment->name);
    add_int (builder, "start", segment->start);
    add_int (builder, "durationMs", segment->duration_ms);
    add_int (builder, "bytes", segment->bytes);
    json_builder_end_object (builder);
  }
  json_builder_end_array (builder);
}

static void
add_image (JsonBuilder * builder, const PcrImagePart * image)
{
  add_string (builder, "contentType", image->content_type);
  add_int (builder, "width", image->width);
  add_int (builder, "height", image->height);
  add_int (builder, "part", image->part);
  add_int (builder, "parts", image->parts);
  add_int (builder, "size", image->size);
  add_base64 (builder, "data", image->data);
}

static void
add_ice_servers (JsonBuilder * builder, GPtrArray * servers)
{
  guint i;

  json_builder_set_member_name (builder, "iceServers");
  json_builder_begin_array (builder);
  for (i = 0; i < servers->len; i++) {
    const PcrIceServer *server = g_ptr_array_index (servers, i);
    gchar **url;

    json_builder_begin_object (builder);
    json_builder_set_member_name (builder, "urls");
    json_builder_begin_array (builder);
    for (url = server->urls; url && *url; url++)
      json_builder_add_string_value (builder, *url);
    json_builder_end_array (builder);
    if (server->username)
      add_string (builder, "username", server->username);
    if (server->credential)
      add_string (builder, "credential", server->credential);
    json_builder_end_object (builder);
  }
  json_builder_end_array (builder);
}

gchar *
pcr_message_to_json (const PcrMessage * msg, gsize * len)
{
  g_autoptr (JsonBuilder) builder = NULL;

  g_return_val_if_fail (msg != NULL, NULL);
  g_return_val_if_fail ((guint) msg->type < G_N_ELEMENTS (type_names), NULL);

  builder = json_builder_new ();
  json_builder_begin_object (builder);
  add_string (builder, "type", type_names[msg->type]);
  switch (msg->type) {
    case PCR_MESSAGE_OFFER:
      add_string (builder, "sdp", msg->sdp);
      json_builder_set_member_name (builder, "trickle");
      json_builder_add_boolean_value (builder, msg->trickle);
      /* Only when asked: older devices never see it. */
      if (msg->want_stats) {
        json_builder_set_member_name (builder, "stats");
        json_builder_add_boolean_value (builder, TRUE);
      }
      if (msg->ice_servers && msg->ice_servers->len > 0)
        add_ice_servers (builder, msg->ice_servers);
      break;
    case PCR_MESSAGE_ANSWER:
      add_string (builder, "sdp", msg->sdp);
      break;
    case PCR_MESSAGE_CANDIDATE:
      add_string (builder, "candidate", msg->candidate);
      json_builder_set_member_name (builder, "sdpMLineIndex");
      json_builder_add_int_value (builder, msg->sdp_mline_index);
      if (msg->sdp_mid)
        add_string (builder, "sdpMid", msg->sdp_mid);
      break;
    case PCR_MESSAGE_BYE:
      break;
    case PCR_MESSAGE_ERROR_MSG:
      add_string (builder, "code", msg->code);
      add_string (builder, "message", msg->message);
      break;
    case PCR_MESSAGE_STATS:
      add_stats (builder, &msg->stats);
      break;
    case PCR_MESSAGE_SNAPSHOT:
      break;
    case PCR_MESSAGE_IMAGE:
      add_image (builder, &msg->image);
      break;
    case PCR_MESSAGE_RECORD:
      add_string (builder, "action", msg->record ? "start" : "stop");
      break;
    case PCR_MESSAGE_RECORDING:
      json_builder_set_member_name (builder, "recording");
      json_builder_add_boolean_value (builder, msg->record);
      break;
    case PCR_MESSAGE_RECORDINGS:
      add_int (builder, "from", msg->from);
      break;
    case PCR_MESSAGE_SEGMENTS:
      add_segments (builder, msg);
      break;
    case PCR_MESSAGE_FETCH:
      add_string (builder, "name", msg->name);
      add_int (builder, "offset", msg->offset);
      add_int (builder, "length", msg->length);
      break;
    case PCR_MESSAGE_CHUNK:
      add_string (builder, "name", msg->name);
      add_int (builder, "offset", msg->offset);
      add_int (builder, "size", msg->size);
      add_base64 (builder, "data", msg->data);
      break;
    case PCR_MESSAGE_RELAY:
      if (msg->room)
        add_int (builder, "room", msg->room);
      if (msg->feed)
        add_int (builder, "feed", msg->feed);
      break;
  }
  json_builder_end_object (builder);

  return builder_to_json (builder, len);
}

/* ---- ids and topics ---- */

gboolean
pcr_segment_name_is_valid (const gchar * name)
{
  gsize i, len;

  if (name == NULL)
    return FALSE;
  len = strlen (name);
  /* YYYYMMDD-HHMMSS, then -N (1..3 digits), then .mp4 */
  if (len < 19 || len > 23 || !g_str_has_suffix (name, ".mp4"))
    return FALSE;
  for (i = 0; i < 15; i++) {
    if (i == 8 ? name[i] != '-' : !g_ascii_isdigit (name[i]))
      return FALSE;
  }
  if (len == 19)
    return TRUE;
  if (name[15] != '-' || len < 21)
    return FALSE;
  for (i = 16; i < len - 4; i++) {
    if (!g_ascii_isdigit (name[i]))
      return FALSE;
  }
  return TRUE;
}

gboolean
pcr_id_is_valid (const gchar * id)
{
  gsize i;

  if (id == NULL)
    return FALSE;
  for (i = 0; id[i] != '\0'; i++) {
    if (i >= 64)
      return FALSE;
    if (!g_ascii_isalnum (id[i]) && id[i] != '_' && id[i] != '-')
      return FALSE;
  }
  return i > 0;
}

gchar *
pcr_topic_build (const gchar * prefix, const gchar * device,
    const gchar * dir, const gchar * session)
{
  g_return_val_if_fail (prefix != NULL, NULL);
  g_return_val_if_fail (device != NULL, NULL);
  g_return_val_if_fail (dir != NULL, NULL);

  if (session == NULL)
    return g_strjoin ("/", prefix, device, dir, NULL);
  return g_strjoin ("/", prefix, device, dir, session, NULL);
}

/* If @s starts with @part followed by '/', returns what follows. */
static const gchar *
skip_segment (const gchar * s, const gchar * part)
{
  gsize len = strlen (part);

  if (strncmp (s, part, len) != 0 || s[len] != '/')
    return NULL;
  return s + len + 1;
}

gboolean
pcr_topic_parse_session (const gchar * topic, const gchar * prefix,
    const gchar * device, const gchar * dir, gchar ** session)
{
  const gchar *rest;

  g_return_val_if_fail (topic != NULL, FALSE);
  g_return_val_if_fail (prefix != NULL, FALSE);
  g_return_val_if_fail (device != NULL, FALSE);
  g_return_val_if_fail (dir != NULL, FALSE);

  if ((rest = skip_segment (topic, prefix)) == NULL
      || (rest = skip_segment (rest, device)) == NULL
      || (rest = skip_segment (rest, dir)) == NULL)
    return FALSE;
  if (rest[0] == '\0' || strchr (rest, '/') != NULL)
    return FALSE;
  if (session)
    *session = g_strdup (rest);
  return TRUE;
}

/* ---- ICE servers ---- */

/* The host[:port][?query] part of a stun:/turn: url goes into a URI as it is,
 * so refuse anything that would change how that URI splits. */
static gboolean
host_part_is_sane (const gchar * rest)
{
  const gchar *p;

  if (rest[0] == '\0' || rest[0] == '?' || rest[0] == ':')
    return FALSE;
  for (p = rest; *p; p++) {
    if (*p == '@' || *p == '/' || *p == '#' || g_ascii_isspace (*p)
        || g_ascii_iscntrl (*p))
      return FALSE;
  }
  return TRUE;
}

gchar **
pcr_ice_server_to_gst_uris (const PcrIceServer * server)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  gchar **url;

  g_return_val_if_fail (server != NULL, NULL);

  for (url = server->urls; url && *url; url++) {
    const gchar *scheme, *rest;
    gboolean turn;

    if (g_str_has_prefix (*url, "stun:")) {
      scheme = "stun";
      turn = FALSE;
    } else if (g_str_has_prefix (*url, "turn:")) {
      scheme = "turn";
      turn = TRUE;
    } else if (g_str_has_prefix (*url, "turns:")) {
      scheme = "turns";
      turn = TRUE;
    } else {
      continue;
    }
    rest = *url + strlen (scheme) + 1;
    /* Tolerate "stun://host" as well as RFC 7064's "stun:host". */
    if (g_str_has_prefix (rest, "//"))
      rest += 2;
    if (!host_part_is_sane (rest))
      continue;

    if (!turn) {
      g_autofree gchar *uri = g_strconcat (scheme, "://", rest, NULL);

      g_strv_builder_add (builder, uri);
    } else if (server->username && server->credential) {
      /* TURN REST usernames look like "1700000000:user": escape every
       * reserved character, webrtcbin unescapes user and password. */
      g_autofree gchar *user =
          g_uri_escape_string (server->username, NULL, FALSE);
      g_autofree gchar *pass =
          g_uri_escape_string (server->credential, NULL, FALSE);
      g_autofree gchar *uri =
          g_strconcat (scheme, "://", user, ":", pass, "@", rest, NULL);

      g_strv_builder_add (builder, uri);
    }
  }
  return g_strv_builder_end (builder);
}

/* ---- status ---- */

gchar *
pcr_status_to_json (const PcrStatus * status, gsize * len)
{
  g_autoptr (JsonBuilder) builder = NULL;

  g_return_val_if_fail (status != NULL, NULL);

  builder = json_builder_new ();
  json_builder_begin_object (builder);
  add_string (builder, "state", status->state);
  json_builder_set_member_name (builder, "viewers");
  json_builder_add_int_value (builder, status->viewers);
  json_builder_set_member_name (builder, "maxViewers");
  json_builder_add_int_value (builder, status->max_viewers);
  add_string (builder, "codec", status->codec);
  if (status->width > 0 && status->height > 0) {
    json_builder_set_member_name (builder, "width");
    json_builder_add_int_value (builder, status->width);
    json_builder_set_member_name (builder, "height");
    json_builder_add_int_value (builder, status->height);
  }
  if (status->fps_n > 0 && status->fps_d > 0) {
    json_builder_set_member_name (builder, "framerate");
    if (status->fps_n % status->fps_d == 0) {
      json_builder_add_int_value (builder, status->fps_n / status->fps_d);
    } else {
      gchar text[G_ASCII_DTOSTR_BUF_SIZE];

      /* Six significant digits, as a person would write 30000/1001. */
      g_ascii_formatd (text, sizeof (text), "%g",
          (gdouble) status->fps_n / status->fps_d);
      json_builder_add_double_value (builder, g_ascii_strtod (text, NULL));
    }
  }
  if (status->can_record) {
    json_builder_set_member_name (builder, "recording");
    json_builder_add_boolean_value (builder, status->recording);
    if (status->record_error)
      add_string (builder, "recordError", status->record_error);
  }
  if (status->audio) {
    json_builder_set_member_name (builder, "audio");
    json_builder_add_boolean_value (builder, TRUE);
  }
  if (status->talkback) {
    json_builder_set_member_name (builder, "talkback");
    json_builder_add_boolean_value (builder, TRUE);
  }
  if (status->control) {
    json_builder_set_member_name (builder, "control");
    json_builder_add_boolean_value (builder, TRUE);
  }
  if (status->relay_state) {
    json_builder_set_member_name (builder, "relay");
    json_builder_begin_object (builder);
    add_string (builder, "state", status->relay_state);
    if (status->relay_url)
      add_string (builder, "url", status->relay_url);
    add_int (builder, "room", status->relay_room);
    add_int (builder, "feed", status->relay_feed);
    add_int (builder, "viewers", status->relay_viewers);
    if (status->relay_error)
      add_string (builder, "error", status->relay_error);
    json_builder_end_object (builder);
  }
  json_builder_end_object (builder);

  return builder_to_json (builder, len);
}

/* ---- the control channel ---- */

/* A to-viewers payload: the data, some escaping (a JSON string can take
 * six bytes per character) and a session id. */
#define CONTROL_MAX_PAYLOAD (64 * 1024)

gchar *
pcr_control_to_json (const gchar * session_id, const gchar * data,
    gsize * len)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();

  g_return_val_if_fail (session_id != NULL && data != NULL, NULL);

  json_builder_begin_object (builder);
  add_string (builder, "session", session_id);
  add_string (builder, "data", data);
  json_builder_end_object (builder);
  return builder_to_json (builder, len);
}

gboolean
pcr_control_parse (const gchar * payload, gsize len, gchar ** session_id,
    gchar ** data, GError ** error)
{
  g_autoptr (JsonNode) node = NULL;
  const gchar *text, *id;
  JsonObject *obj;

  g_return_val_if_fail (session_id != NULL && data != NULL, FALSE);

  *session_id = *data = NULL;
  if (len > CONTROL_MAX_PAYLOAD)
    return bad_request (error, "payload of %" G_GSIZE_FORMAT " bytes is over "
        "the %d-byte limit", len, CONTROL_MAX_PAYLOAD);
  if (!(node = pcr_json_parse_object (payload, len, error)))
    return FALSE;
  obj = json_node_get_object (node);
  if (!get_string (obj, "data", TRUE, &text, error)
      || !get_string (obj, "session", FALSE, &id, error))
    return FALSE;
  if (strlen (text) > PCR_CONTROL_MAX_DATA)
    return bad_request (error, "\"data\" is over %d bytes",
        PCR_CONTROL_MAX_DATA);
  if (id && !pcr_id_is_valid (id))
    return bad_request (error, "\"session\" is not a valid session id");
  *data = g_strdup (text);
  *session_id = g_strdup (id);
  return TRUE;
}

/* ---- remote ICE candidates ---- */

static PcrCandidateVerdict
candidate_invalid (GError ** error, const gchar * why)
{
  g_set_error_literal (error, PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST, why);
  return PCR_CANDIDATE_INVALID;
}

PcrCandidateVerdict
pcr_candidate_check (const gchar * candidate, guint sdp_mline_index,
    GError ** error)
{
  const gchar *c = candidate;
  g_auto (GStrv) fields = NULL;

  g_return_val_if_fail (candidate != NULL, PCR_CANDIDATE_INVALID);

  if (g_str_has_prefix (c, "a="))
    c += 2;
  if (!g_str_has_prefix (c, "candidate:"))
    return candidate_invalid (error,
        "a candidate must start with \"candidate:\"");
  if (strpbrk (c, "\r\n"))
    return candidate_invalid (error, "a candidate must be one line");
  if (sdp_mline_index > PCR_MESSAGE_MAX_MLINE_INDEX)
    return candidate_invalid (error, "sdpMLineIndex is out of range");
  /* candidate:foundation component transport priority address port ... */
  fields = g_strsplit (c, " ", 8);
  if (g_strv_length (fields) < 6)
    return candidate_invalid (error, "a candidate needs foundation, "
        "component, transport, priority, address and port");
  /* The browser's other candidates (or ours, which it can reach) suffice. */
  if (g_str_has_suffix (fields[4], ".local"))
    return PCR_CANDIDATE_SKIP;
  return PCR_CANDIDATE_USE;
}

/* ---- metrics ---- */

void
pcr_metrics_init (PcrMetrics * metrics)
{
  g_return_if_fail (metrics != NULL);

  memset (metrics, 0, sizeof (*metrics));
  metrics->viewers = metrics->restarts = metrics->nacks =
      metrics->retransmissions = -1;
}

void
pcr_metrics_clear (PcrMetrics * metrics)
{
  g_clear_pointer (&metrics->encoder, g_free);
  g_clear_pointer (&metrics->source, g_free);
}

/* A number member from 0 to @max into *out, or left as it is (and counted
 * as dropped) when absent, null, mistyped or out of range. */
static void
metrics_number (JsonObject * obj, const gchar * name, gdouble max,
    gboolean integer, gdouble * out, guint * dropped)
{
  JsonNode *node = json_object_get_member (obj, name);
  GType type;
  gdouble value;

  if (node == NULL)
    return;
  type = JSON_NODE_HOLDS_VALUE (node) ? json_node_get_value_type (node) :
      G_TYPE_INVALID;
  if (type == G_TYPE_INT64)
    value = (gdouble) json_node_get_int (node);
  else if (type == G_TYPE_DOUBLE && !integer)
    value = json_node_get_double (node);
  else
    value = -1;
  /* NaN fails both comparisons */
  if (!(value >= 0 && value <= max)) {
    (*dropped)++;
    return;
  }
  *out = value;
}

static void
metrics_int (JsonObject * obj, const gchar * name, gint64 max, gint64 * out,
    guint * dropped)
{
  gdouble value = -1;

  metrics_number (obj, name, (gdouble) max, TRUE, &value, dropped);
  if (value >= 0)
    *out = (gint64) value;
}

/* An id-shaped label (an element factory's name), or NULL. */
static gchar *
metrics_label (JsonObject * obj, const gchar * name, guint * dropped)
{
  const gchar *value = NULL;

  if (json_object_get_member (obj, name) == NULL)
    return NULL;
  if (!get_string (obj, name, FALSE, &value, NULL) || value == NULL
      || !pcr_id_is_valid (value)) {
    (*dropped)++;
    return NULL;
  }
  return g_strdup (value);
}

static void
metrics_renditions (JsonObject * obj, PcrMetrics * metrics)
{
  JsonNode *node = json_object_get_member (obj, "renditions");
  JsonArray *array;
  guint i, j, n;

  if (node == NULL)
    return;
  if (!JSON_NODE_HOLDS_ARRAY (node)) {
    metrics->dropped++;
    return;
  }
  array = json_node_get_array (node);
  n = json_array_get_length (array);
  for (i = 0; i < n; i++) {
    JsonNode *item = json_array_get_element (array, i);
    PcrRenditionMetrics *r = &metrics->renditions[metrics->n_renditions];
    const gchar *name = NULL;
    gboolean unique = TRUE;
    gdouble fps = -1, bitrate = -1;

    if (metrics->n_renditions == PCR_METRICS_MAX_RENDITIONS
        || !JSON_NODE_HOLDS_OBJECT (item)) {
      metrics->dropped++;
      continue;
    }
    obj = json_node_get_object (item);
    if (!get_string (obj, "name", TRUE, &name, NULL)
        || !pcr_id_is_valid (name) || strlen (name) > PCR_STATS_MAX_RENDITION) {
      metrics->dropped++;
      continue;
    }
    /* two series with the same labels would make the exposition invalid */
    for (j = 0; j < metrics->n_renditions; j++)
      unique &= strcmp (metrics->renditions[j].name, name) != 0;
    if (!unique) {
      metrics->dropped++;
      continue;
    }
    metrics_number (obj, "fps", PCR_METRICS_MAX_FPS, FALSE, &fps,
        &metrics->dropped);
    metrics_number (obj, "bitrate", G_MAXUINT, TRUE, &bitrate,
        &metrics->dropped);
    g_strlcpy (r->name, name, sizeof (r->name));
    /* the wire's own 1/8 steps */
    r->fps = fps < 0 ? -1 : (gint) (fps * 8 + 0.5) / 8.0;
    r->bitrate = bitrate < 0 ? -1 : (gint64) bitrate;
    metrics->n_renditions++;
  }
}

static void
metrics_estimates (JsonObject * obj, PcrMetrics * metrics)
{
  JsonNode *node = json_object_get_member (obj, "estimates");
  guint dropped = 0;
  gdouble min = -1, median = -1, max = -1;

  if (node == NULL)
    return;
  if (JSON_NODE_HOLDS_OBJECT (node)) {
    obj = json_node_get_object (node);
    metrics_number (obj, "min", G_MAXUINT, TRUE, &min, &dropped);
    metrics_number (obj, "median", G_MAXUINT, TRUE, &median, &dropped);
    metrics_number (obj, "max", G_MAXUINT, TRUE, &max, &dropped);
  }
  /* all three, in order, or none */
  if (!(min >= 0 && median >= min && max >= median)) {
    metrics->dropped++;
    return;
  }
  metrics->have_estimates = TRUE;
  metrics->estimate_min = (guint) min;
  metrics->estimate_median = (guint) median;
  metrics->estimate_max = (guint) max;
}

gboolean
pcr_metrics_parse (const gchar * data, gsize len, PcrMetrics * metrics,
    GError ** error)
{
  g_autoptr (JsonNode) root = NULL;
  JsonObject *obj;
  const gchar *type;
  gdouble interval = 0;

  g_return_val_if_fail (data != NULL || len == 0, FALSE);
  g_return_val_if_fail (metrics != NULL, FALSE);

  pcr_metrics_init (metrics);
  if (len > PCR_METRICS_MAX_SIZE)
    return bad_request (error, "metrics of %" G_GSIZE_FORMAT
        " bytes, over the %d-byte limit", len, PCR_METRICS_MAX_SIZE);
  root = pcr_json_parse_object (data, len, error);
  if (root == NULL)
    return FALSE;
  obj = json_node_get_object (root);
  if (!get_string (obj, "type", TRUE, &type, error))
    return FALSE;
  if (strcmp (type, "metrics") != 0)
    return bad_request (error, "not a metrics message");

  metrics_number (obj, "interval", PCR_METRICS_MAX_INTERVAL, TRUE, &interval,
      &metrics->dropped);
  metrics->interval = (guint) interval;
  metrics_int (obj, "viewers", PCR_METRICS_MAX_VIEWERS, &metrics->viewers,
      &metrics->dropped);
  metrics_int (obj, "restarts", PCR_METRICS_MAX_COUNT, &metrics->restarts,
      &metrics->dropped);
  metrics_int (obj, "nacks", PCR_METRICS_MAX_COUNT, &metrics->nacks,
      &metrics->dropped);
  metrics_int (obj, "retransmissions", PCR_METRICS_MAX_COUNT,
      &metrics->retransmissions, &metrics->dropped);
  metrics->encoder = metrics_label (obj, "encoder", &metrics->dropped);
  metrics->source = metrics_label (obj, "source", &metrics->dropped);
  metrics_renditions (obj, metrics);
  metrics_estimates (obj, metrics);
  return TRUE;
}

static void
add_known (JsonBuilder * builder, const gchar * name, gint64 value)
{
  if (value >= 0)
    add_int (builder, name, MIN (value, PCR_METRICS_MAX_COUNT));
}

gchar *
pcr_metrics_to_json (const PcrMetrics * metrics, gsize * len)
{
  g_autoptr (JsonBuilder) builder = NULL;
  guint i;

  g_return_val_if_fail (metrics != NULL, NULL);

  builder = json_builder_new ();
  json_builder_begin_object (builder);
  add_string (builder, "type", "metrics");
  if (metrics->interval > 0)
    add_int (builder, "interval", MIN (metrics->interval,
            PCR_METRICS_MAX_INTERVAL));
  if (metrics->viewers >= 0)
    add_int (builder, "viewers", MIN (metrics->viewers,
            PCR_METRICS_MAX_VIEWERS));
  add_known (builder, "restarts", metrics->restarts);
  add_known (builder, "nacks", metrics->nacks);
  add_known (builder, "retransmissions", metrics->retransmissions);
  if (pcr_id_is_valid (metrics->encoder))
    add_string (builder, "encoder", metrics->encoder);
  if (pcr_id_is_valid (metrics->source))
    add_string (builder, "source", metrics->source);
  json_builder_set_member_name (builder, "renditions");
  json_builder_begin_array (builder);
  for (i = 0; i < MIN (metrics->n_renditions, PCR_METRICS_MAX_RENDITIONS);
      i++) {
    const PcrRenditionMetrics *r = &metrics->renditions[i];

    json_builder_begin_object (builder);
    add_string (builder, "name", r->name);
    if (r->fps >= 0) {
      json_builder_set_member_name (builder, "fps");
      json_builder_add_double_value (builder,
          (gint) (MIN (r->fps, PCR_METRICS_MAX_FPS) * 8 + 0.5) / 8.0);
    }
    if (r->bitrate >= 0)
      add_int (builder, "bitrate", MIN (r->bitrate, G_MAXUINT));
    json_builder_end_object (builder);
  }
  json_builder_end_array (builder);
  if (metrics->have_estimates) {
    json_builder_set_member_name (builder, "estimates");
    json_builder_begin_object (builder);
    add_int (builder, "min", metrics->estimate_min);
    add_int (builder, "median", metrics->estimate_median);
    add_int (builder, "max", metrics->estimate_max);
    json_builder_end_object (builder);
  }
  json_builder_end_object (builder);

  return builder_to_json (builder, len);
}
