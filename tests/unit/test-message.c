/* Unit tests of the signalling codec (lib/pcr-message.c): every message of
 * the MQTT contract (docs/signalling.md) survives a trip through JSON, the
 * wire form keeps the field names browsers and the gateway read, every
 * malformed or hostile payload is refused with a one-line bad-request error
 * instead of a crash, and session ids, topics and ICE server URIs come out as
 * the device, the gateway and webrtcbin expect them. */

#include <string.h>

#include "pcr-defaults.h"
#include "pcr-message.h"

#define OFFER_SDP "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n" \
  "s=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n" \
  "c=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtpmap:96 H264/90000\r\n"

/* ---- helpers ---- */

static PcrMessage *
parse (const gchar * json, GError ** error)
{
  return pcr_message_parse (json, strlen (json), error);
}

/* Refused as bad-request with a one-line message (it ends up in a log line
 * and in the error reply), mentioning @mention when given. */
static void
assert_rejected_len (const gchar * data, gsize len, const gchar * mention)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PcrMessage) msg = pcr_message_parse (data, len, &error);

  g_assert_null (msg);
  g_assert_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST);
  g_assert_nonnull (error->message);
  g_assert_cmpstr (error->message, !=, "");
  g_assert_null (strchr (error->message, '\n'));
  g_assert_null (strchr (error->message, '\r'));
  if (mention && strstr (error->message, mention) == NULL)
    g_error ("error \"%s\" does not mention \"%s\"", error->message, mention);
}

static void
assert_rejected (const gchar * json, const gchar * mention)
{
  assert_rejected_len (json, strlen (json), mention);
}

static PcrMessage *
assert_parses (const gchar * json)
{
  g_autoptr (GError) error = NULL;
  PcrMessage *msg = parse (json, &error);

  g_assert_no_error (error);
  g_assert_nonnull (msg);
  g_assert_nonnull (msg->ice_servers);
  return msg;
}

static void
assert_messages_equal (const PcrMessage * a, const PcrMessage * b)
{
  guint i;

  g_assert_cmpint (a->type, ==, b->type);
  g_assert_cmpstr (a->sdp, ==, b->sdp);
  g_assert_cmpint (a->trickle, ==, b->trickle);
  g_assert_nonnull (a->ice_servers);
  g_assert_nonnull (b->ice_servers);
  g_assert_cmpuint (a->ice_servers->len, ==, b->ice_servers->len);
  for (i = 0; i < a->ice_servers->len; i++) {
    const PcrIceServer *sa = g_ptr_array_index (a->ice_servers, i);
    const PcrIceServer *sb = g_ptr_array_index (b->ice_servers, i);

    g_assert_true (g_strv_equal ((const gchar * const *) sa->urls,
            (const gchar * const *) sb->urls));
    g_assert_cmpstr (sa->username, ==, sb->username);
    g_assert_cmpstr (sa->credential, ==, sb->credential);
  }
  g_assert_cmpstr (a->candidate, ==, b->candidate);
  g_assert_cmpuint (a->sdp_mline_index, ==, b->sdp_mline_index);
  g_assert_cmpstr (a->sdp_mid, ==, b->sdp_mid);
  g_assert_cmpstr (a->code, ==, b->code);
  g_assert_cmpstr (a->message, ==, b->message);
  g_assert_cmpint (a->want_stats, ==, b->want_stats);
  if (a->type == PCR_MESSAGE_STATS) {
    g_assert_cmpstr (a->stats.rendition, ==, b->stats.rendition);
    g_assert_cmpuint (a->stats.width, ==, b->stats.width);
    g_assert_cmpuint (a->stats.height, ==, b->stats.height);
    g_assert_cmpuint (a->stats.estimate, ==, b->stats.estimate);
    g_assert_cmpuint (a->stats.bitrate, ==, b->stats.bitrate);
    g_assert_cmpfloat_with_epsilon (a->stats.loss, b->stats.loss, 0.5 / 256);
    g_assert_cmpint (a->stats.rtt, ==, b->stats.rtt);
  }
  if (a->type == PCR_MESSAGE_IMAGE) {
    g_assert_cmpstr (a->image.content_type, ==, b->image.content_type);
    g_assert_cmpuint (a->image.width, ==, b->image.width);
    g_assert_cmpuint (a->image.height, ==, b->image.height);
    g_assert_cmpuint (a->image.part, ==, b->image.part);
    g_assert_cmpuint (a->image.parts, ==, b->image.parts);
    g_assert_cmpuint (a->image.size, ==, b->image.size);
    g_assert_true (g_bytes_equal (a->image.data, b->image.data));
  }
}

/* parse (to_json (msg)) gives msg back; the JSON is compact and its length
 * is reported. */
static void
assert_round_trip (const PcrMessage * msg)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PcrMessage) back = NULL;
  g_autofree gchar *json = NULL;
  gsize len = 0;

  json = pcr_message_to_json (msg, &len);
  g_assert_nonnull (json);
  g_assert_cmpuint (len, ==, strlen (json));
  g_assert_null (strchr (json, '\n'));
  back = pcr_message_parse (json, len, &error);
  g_assert_no_error (error);
  g_assert_nonnull (back);
  assert_messages_equal (msg, back);
}

static PcrIceServer *
ice_server_new (const gchar * const *urls, const gchar * username,
    const gchar * credential)
{
  PcrIceServer *server = g_new0 (PcrIceServer, 1);

  server->urls = g_strdupv ((gchar **) urls);
  server->username = g_strdup (username);
  server->credential = g_strdup (credential);
  return server;
}

static gchar *
to_json (const PcrMessage * msg)
{
  return pcr_message_to_json (msg, NULL);
}

/* ---- constructors and round trips ---- */

static void
test_new_messages (void)
{
  PcrMessage *all[] = {
    pcr_message_new_offer (OFFER_SDP, FALSE),
    pcr_message_new_answer (OFFER_SDP),
    pcr_message_new_candidate ("", 0, NULL),
    pcr_message_new_bye (),
    pcr_message_new_error (PCR_ERROR_INTERNAL, NULL),
    pcr_message_new_stats (&(PcrStats) {.rendition = (gchar *) "low"}),
  };
  guint i;

  /* Callers append to ice_servers and iterate it without a NULL check. */
  for (i = 0; i < G_N_ELEMENTS (all); i++) {
    g_assert_nonnull (all[i]->ice_servers);
    g_assert_cmpuint (all[i]->ice_servers->len, ==, 0);
    g_ptr_array_add (all[i]->ice_servers,
        ice_server_new ((const gchar *[]) { "stun:h:1", NULL }, NULL, NULL));
    pcr_message_free (all[i]);
  }
  pcr_message_free (NULL);
  pcr_ice_server_free (NULL);
}

static void
test_round_trip_offer (void)
{
  g_autoptr (PcrMessage) plain = pcr_message_new_offer (OFFER_SDP, FALSE);
  g_autoptr (PcrMessage) trickle = pcr_message_new_offer (OFFER_SDP, TRUE);
  g_autoptr (PcrMessage) odd =
      pcr_message_new_offer ("v=0\r\n\"quoted\" \\ / \t caméra 🎥 \x01",
      TRUE);
  g_autoptr (PcrMessage) with_ice = pcr_message_new_offer (OFFER_SDP, TRUE);

  g_assert_cmpint (plain->type, ==, PCR_MESSAGE_OFFER);
  g_assert_cmpstr (plain->sdp, ==, OFFER_SDP);
  g_assert_false (plain->trickle);
  g_assert_true (trickle->trickle);

  g_ptr_array_add (with_ice->ice_servers,
      ice_server_new ((const gchar *[]) { "stun:stun.example.org:3478", NULL },
          NULL, NULL));
  g_ptr_array_add (with_ice->ice_servers, ice_server_new ((const gchar *[]) {
            "turn:turn.example.org:3478?transport=udp",
            "turns:turn.example.org:5349?transport=tcp", NULL
          },
          "1700000000:user", "p@ss:\"w\"/rd"));

  assert_round_trip (plain);
  assert_round_trip (trickle);
  assert_round_trip (odd);
  assert_round_trip (with_ice);
}

static void
test_round_trip_answer (void)
{
  g_autoptr (PcrMessage) msg = pcr_message_new_answer (OFFER_SDP);

  g_assert_cmpint (msg->type, ==, PCR_MESSAGE_ANSWER);
  assert_round_trip (msg);
}

static void
test_round_trip_candidate (void)
{
  const gchar *cand = "candidate:1 1 UDP 2122252543 127.0.0.1 40000 typ host";
  g_autoptr (PcrMessage) full = pcr_message_new_candidate (cand, 1, "1");
  g_autoptr (PcrMessage) no_mid = pcr_message_new_candidate (cand, 0, NULL);
  g_autoptr (PcrMessage) end = pcr_message_new_candidate ("", 0, "0");
  g_autoptr (PcrMessage) max = pcr_message_new_candidate (cand, 65535, "");

  g_assert_cmpint (full->type, ==, PCR_MESSAGE_CANDIDATE);
  g_assert_cmpstr (full->candidate, ==, cand);
  g_assert_cmpuint (full->sdp_mline_index, ==, 1);
  g_assert_cmpstr (full->sdp_mid, ==, "1");
  g_assert_null (no_mid->sdp_mid);

  assert_round_trip (full);
  assert_round_trip (no_mid);
  assert_round_trip (end);
  assert_round_trip (max);
}

static void
test_round_trip_bye (void)
{
  g_autoptr (PcrMessage) msg = pcr_message_new_bye ();

  g_assert_cmpint (msg->type, ==, PCR_MESSAGE_BYE);
  assert_round_trip (msg);
}

static void
test_round_trip_error (void)
{
  const struct
  {
    PcrErrorCode code;
    const gchar *wire;
  } codes[] = {
    {PCR_ERROR_BAD_REQUEST, "bad-request"},
    {PCR_ERROR_NO_COMPATIBLE_CODEC, "no-compatible-codec"},
    {PCR_ERROR_MAX_VIEWERS, "max-viewers"},
    {PCR_ERROR_UNKNOWN_SESSION, "unknown-session"},
    {PCR_ERROR_INTERNAL, "internal"},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (codes); i++) {
    g_autoptr (PcrMessage) msg =
        pcr_message_new_error (codes[i].code, "what went wrong");
    g_autoptr (PcrMessage) empty = pcr_message_new_error (codes[i].code, NULL);

    g_assert_cmpstr (pcr_error_code_to_string (codes[i].code), ==,
        codes[i].wire);
    g_assert_cmpint (msg->type, ==, PCR_MESSAGE_ERROR_MSG);
    g_assert_cmpstr (msg->code, ==, codes[i].wire);
    g_assert_cmpstr (msg->message, ==, "what went wrong");
    g_assert_cmpstr (empty->message, ==, "");
    assert_round_trip (msg);
    assert_round_trip (empty);
  }
}

/* ---- the wire form ---- */

static void
test_wire_form (void)
{
  g_autoptr (PcrMessage) bye = pcr_message_new_bye ();
  g_autoptr (PcrMessage) answer = pcr_message_new_answer ("v=0\r\n");
  g_autoptr (PcrMessage) cand = pcr_message_new_candidate ("candidate:x", 2,
      "a");
  g_autoptr (PcrMessage) end = pcr_message_new_candidate ("", 0, NULL);
  g_autoptr (PcrMessage) err = pcr_message_new_error (PCR_ERROR_MAX_VIEWERS,
      "3 viewers already");
  g_autoptr (PcrMessage) offer = pcr_message_new_offer ("v=0\r\n", FALSE);
  g_autoptr (PcrMessage) offer_ice = pcr_message_new_offer ("v=0\r\n", TRUE);
  g_autofree gchar *json = NULL;

  json = to_json (bye);
  g_assert_cmpstr (json, ==, "{\"type\":\"bye\"}");
  g_clear_pointer (&json, g_free);

  /* Browsers read "sdp" and no offer-only fields in an answer. */
  json = to_json (answer);
  g_assert_cmpstr (json, ==, "{\"type\":\"answer\",\"sdp\":\"v=0\\r\\n\"}");
  g_clear_pointer (&json, g_free);

  /* The RTCIceCandidateInit names, so a browser can pass it on as is. */
  json = to_json (cand);
  g_assert_cmpstr (json, ==, "{\"type\":\"candidate\",\"candidate\":"
      "\"candidate:x\",\"sdpMLineIndex\":2,\"sdpMid\":\"a\"}");
  g_clear_pointer (&json, g_free);

  json = to_json (end);
  g_assert_cmpstr (json, ==, "{\"type\":\"candidate\",\"candidate\":\"\","
      "\"sdpMLineIndex\":0}");
  g_clear_pointer (&json, g_free);

  json = to_json (err);
  g_assert_cmpstr (json, ==, "{\"type\":\"error\",\"code\":\"max-viewers\","
      "\"message\":\"3 viewers already\"}");
  g_clear_pointer (&json, g_free);

  /* No "iceServers" when there are none. */
  json = to_json (offer);
  g_assert_cmpstr (json, ==, "{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\","
      "\"trickle\":false}");
  g_clear_pointer (&json, g_free);

  g_ptr_array_add (offer_ice->ice_servers,
      ice_server_new ((const gchar *[]) { "turn:h:3478", NULL }, "u", "p"));
  json = to_json (offer_ice);
  g_assert_cmpstr (json, ==, "{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\","
      "\"trickle\":true,\"iceServers\":[{\"urls\":[\"turn:h:3478\"],"
      "\"username\":\"u\",\"credential\":\"p\"}]}");
}

/* docs/signalling.md's field names, integers where they are whole, unknown
 * fields (0 or negative, or half a frame size) left out, and "stats" in an
 * offer only when asked, so older devices see no change; each comes back
 * from the parser as it was sent (loss to its 1/256 step). */
static void
test_stats_wire_form (void)
{
  PcrStats full = { (gchar *) "high", 1280, 720, 1934567, 1700000, 0.0312,
    18
  };
  PcrStats bare = { (gchar *) "low", 640, 0, 150000, 0, -1, -1 };
  g_autoptr (PcrMessage) a = pcr_message_new_stats (&full);
  g_autoptr (PcrMessage) b = pcr_message_new_stats (&bare);
  g_autoptr (PcrMessage) offer = pcr_message_new_offer ("v=0\r\n", FALSE);
  g_autofree gchar *json = NULL;

  json = to_json (a);
  g_assert_cmpstr (json, ==, "{\"type\":\"stats\",\"rendition\":\"high\","
      "\"width\":1280,\"height\":720,\"estimate\":1934567,"
      "\"bitrate\":1700000,\"loss\":0.03125,\"rtt\":18}");
  g_clear_pointer (&json, g_free);

  json = to_json (b);
  g_assert_cmpstr (json, ==, "{\"type\":\"stats\",\"rendition\":\"low\","
      "\"estimate\":150000}");
  g_clear_pointer (&json, g_free);

  offer->want_stats = TRUE;
  json = to_json (offer);
  g_assert_cmpstr (json, ==, "{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\","
      "\"trickle\":false,\"stats\":true}");

  /* a copy, not the caller's string */
  g_assert_true (a->stats.rendition != full.rendition);
  assert_round_trip (a);
  assert_round_trip (offer);
}

static void
test_parse_stats (void)
{
  g_autoptr (PcrMessage) asks = assert_parses ("{\"type\":\"offer\","
      "\"sdp\":\"v=0\",\"stats\":true}");
  g_autoptr (PcrMessage) declines = assert_parses ("{\"type\":\"offer\","
      "\"sdp\":\"v=0\",\"stats\":false}");
  g_autoptr (PcrMessage) full = assert_parses ("{\"type\":\"stats\","
      "\"rendition\":\"high\",\"width\":1280,\"height\":720,"
      "\"estimate\":1900000,\"bitrate\":1700000,\"loss\":0.5,\"rtt\":12,"
      "\"future\":{\"x\":[1]}}");
  g_autoptr (PcrMessage) bare = assert_parses ("{\"type\":\"stats\","
      "\"rendition\":\"low\",\"estimate\":0,\"width\":null,\"loss\":1,"
      "\"rtt\":null}");

  g_assert_true (asks->want_stats);
  g_assert_false (declines->want_stats);

  g_assert_cmpint (full->type, ==, PCR_MESSAGE_STATS);
  g_assert_cmpstr (full->stats.rendition, ==, "high");
  g_assert_cmpuint (full->stats.width, ==, 1280);
  g_assert_cmpuint (full->stats.height, ==, 720);
  g_assert_cmpuint (full->stats.estimate, ==, 1900000);
  g_assert_cmpuint (full->stats.bitrate, ==, 1700000);
  g_assert_cmpfloat (full->stats.loss, ==, 0.5);
  g_assert_cmpint (full->stats.rtt, ==, 12);

  g_assert_cmpstr (bare->stats.rendition, ==, "low");
  g_assert_cmpuint (bare->stats.width, ==, 0);
  g_assert_cmpuint (bare->stats.estimate, ==, 0);
  g_assert_cmpuint (bare->stats.bitrate, ==, 0);
  g_assert_cmpfloat (bare->stats.loss, ==, 1);
  g_assert_cmpint (bare->stats.rtt, ==, -1);
}

/* ---- snapshots (docs/signalling.md, "Snapshots") ---- */

static void
test_snapshot_wire_form (void)
{
  g_autoptr (PcrMessage) ask = pcr_message_new_snapshot ();
  g_autoptr (GBytes) data = g_bytes_new_static ("\xff\xd8\xff", 3);
  g_autoptr (PcrMessage) part = pcr_message_new_image ("image/jpeg", 1280,
      720, 1, 3, 150000, data);
  g_autofree gchar *ask_json = to_json (ask);
  g_autofree gchar *part_json = to_json (part);

  g_assert_cmpstr (ask_json, ==, "{\"type\":\"snapshot\"}");
  g_assert_cmpstr (part_json, ==, "{\"type\":\"image\",\"contentType\":"
      "\"image/jpeg\",\"width\":1280,\"height\":720,\"part\":1,"
      "\"parts\":3,\"size\":150000,\"data\":\"/9j/\"}");
  assert_round_trip (ask);
  assert_round_trip (part);
}

/* The largest part there may be, with every byte value: it round-trips
 * and its message stays under the 128 KiB of an MQTT message. */
static void
test_snapshot_largest_part (void)
{
  guchar *bytes = g_malloc (PCR_IMAGE_PART_MAX);
  g_autoptr (GBytes) data = NULL;
  g_autoptr (PcrMessage) part = NULL;
  g_autofree gchar *json = NULL;
  gsize i, len = 0;

  for (i = 0; i < PCR_IMAGE_PART_MAX; i++)
    bytes[i] = (guchar) (i * 7);
  data = g_bytes_new_take (bytes, PCR_IMAGE_PART_MAX);
  part = pcr_message_new_image ("image/jpeg", PCR_IMAGE_MAX_DIMENSION,
      PCR_IMAGE_MAX_DIMENSION, PCR_IMAGE_MAX_PARTS - 1, PCR_IMAGE_MAX_PARTS,
      PCR_IMAGE_MAX_PARTS * PCR_IMAGE_PART_MAX, data);
  json = pcr_message_to_json (part, &len);
  g_assert_cmpuint (len, <, 128 * 1024);
  assert_round_trip (part);
}

static void
test_snapshot_refused (void)
{
  static const struct
  {
    const gchar *json;
    const gchar *mention;
  } cases[] = {
    {"{\"type\":\"image\",\"width\":1,\"height\":1,\"part\":0,"
          "\"parts\":1,\"size\":3,\"data\":\"/9j/\"}", "contentType"},
    {"{\"type\":\"image\",\"contentType\":\"image/png\",\"width\":1,"
          "\"height\":1,\"part\":0,\"parts\":1,\"size\":3,"
          "\"data\":\"/9j/\"}", "image/jpeg"},
    {"{\"type\":\"image\",\"contentType\":\"image/jpeg\",\"width\":1,"
          "\"height\":1,\"part\":1,\"parts\":1,\"size\":3,"
          "\"data\":\"/9j/\"}", "part"},
    {"{\"type\":\"image\",\"contentType\":\"image/jpeg\",\"width\":1,"
          "\"height\":1,\"part\":0,\"parts\":0,\"size\":3,"
          "\"data\":\"/9j/\"}", "part"},
    {"{\"type\":\"image\",\"contentType\":\"image/jpeg\",\"width\":1,"
          "\"height\":1,\"part\":0,\"parts\":65,\"size\":3,"
          "\"data\":\"/9j/\"}", "parts"},
    {"{\"type\":\"image\",\"contentType\":\"image/jpeg\",\"width\":1,"
          "\"height\":1,\"part\":0,\"parts\":1,\"size\":3,"
          "\"data\":\"/9j\"}", "base64"},
    {"{\"type\":\"image\",\"contentType\":\"image/jpeg\",\"width\":1,"
          "\"height\":1,\"part\":0,\"parts\":1,\"size\":3,"
          "\"data\":\"/9j*\"}", "base64"},
    {"{\"type\":\"image\",\"contentType\":\"image/jpeg\",\"width\":1,"
          "\"height\":1,\"part\":0,\"parts\":1,\"size\":3,"
          "\"data\":\"/9=j\"}", "base64"},
    {"{\"type\":\"image\",\"contentType\":\"image/jpeg\",\"width\":1,"
          "\"height\":1,\"part\":0,\"parts\":1,\"size\":3,"
          "\"data\":\"\"}", "base64"},
    {"{\"type\":\"image\",\"contentType\":\"image/jpeg\",\"width\":1,"
          "\"height\":1,\"part\":0,\"parts\":1,\"size\":2,"
          "\"data\":\"/9j/\"}", "larger than the image"},
    {"{\"type\":\"image\",\"contentType\":\"image/jpeg\",\"width\":1,"
          "\"height\":16385,\"part\":0,\"parts\":1,\"size\":3,"
          "\"data\":\"/9j/\"}", "height"},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    assert_rejected (cases[i].json, cases[i].mention);
}

/* ---- recordings (docs/signalling.md, "Recordings") ---- */

static void
assert_same_json (PcrMessage * msg, const gchar * json)
{
  g_autofree gchar *got = to_json (msg);
  g_autoptr (PcrMessage) back = assert_parses (json);
  g_autofree gchar *again = to_json (back);

  g_assert_cmpstr (got, ==, json);
  g_assert_cmpstr (again, ==, json);
  pcr_message_free (msg);
}

static void
test_recordings_wire_form (void)
{
  PcrMessage *segments = pcr_message_new_segments (TRUE, 0, 2);
  g_autoptr (GBytes) data = g_bytes_new_static ("\0\0\0\x1c", 4);

  assert_same_json (pcr_message_new_record (TRUE),
      "{\"type\":\"record\",\"action\":\"start\"}");
  assert_same_json (pcr_message_new_record (FALSE),
      "{\"type\":\"record\",\"action\":\"stop\"}");
  assert_same_json (pcr_message_new_recording (FALSE),
      "{\"type\":\"recording\",\"recording\":false}");
  assert_same_json (pcr_message_new_recordings (200),
      "{\"type\":\"recordings\",\"from\":200}");
  g_ptr_array_add (segments->segments, pcr_segment_new ("20261205-173000.mp4",
          1796491800, 60000, 15034211));
  g_ptr_array_add (segments->segments,
      pcr_segment_new ("20261205-173000-1.mp4", 1796491800, 0, 0));
  assert_same_json (segments, "{\"type\":\"segments\",\"recording\":true,"
      "\"from\":0,\"total\":2,\"segments\":[{\"name\":"
      "\"20261205-173000.mp4\",\"start\":1796491800,\"durationMs\":60000,"
      "\"bytes\":15034211},{\"name\":\"20261205-173000-1.mp4\",\"start\":"
      "1796491800,\"durationMs\":0,\"bytes\":0}]}");
  assert_same_json (pcr_message_new_fetch ("20261205-173000.mp4", 65536,
          65536), "{\"type\":\"fetch\",\"name\":\"20261205-173000.mp4\","
      "\"offset\":65536,\"length\":65536}");
  assert_same_json (pcr_message_new_chunk ("20261205-173000.mp4", 6, 10,
          data), "{\"type\":\"chunk\",\"name\":\"20261205-173000.mp4\","
      "\"offset\":6,\"size\":10,\"data\":\"AAAAHA==\"}");
}

static void
test_recordings_refused (void)
{
  static const struct
  {
    const gchar *json;
    const gchar *mention;
  } cases[] = {
    {"{\"type\":\"record\"}", "action"},
    {"{\"type\":\"record\",\"action\":\"pause\"}", "action"},
    {"{\"type\":\"recording\"}", "recording"},
    {"{\"type\":\"recordings\",\"from\":-1}", "from"},
    {"{\"type\":\"fetch\",\"name\":\"../etc/passwd\",\"offset\":0,"
          "\"length\":1}", "name"},
    {"{\"type\":\"fetch\",\"name\":\"20261205-173000.mp4/x\","
          "\"offset\":0,\"length\":1}", "name"},
    {"{\"type\":\"fetch\",\"name\":\"20261305-173000\",\"offset\":0,"
          "\"length\":1}", "name"},
    {"{\"type\":\"fetch\",\"name\":\"20261205-173000.mp4\","
          "\"offset\":0,\"length\":0}", "length"},
    {"{\"type\":\"fetch\",\"name\":\"20261205-173000.mp4\","
          "\"offset\":0,\"length\":65537}", "length"},
    {"{\"type\":\"fetch\",\"name\":\"20261205-173000.mp4\","
          "\"offset\":1.5,\"length\":1}", "offset"},
    {"{\"type\":\"chunk\",\"name\":\"20261205-173000.mp4\","
          "\"offset\":8,\"size\":10,\"data\":\"AAAAHA==\"}", "end"},
    {"{\"type\":\"chunk\",\"name\":\"20261205-173000.mp4\","
          "\"offset\":0,\"size\":10,\"data\":\"AAA\"}", "base64"},
    {"{\"type\":\"segments\",\"recording\":true,\"from\":0,\"total\":1,"
          "\"segments\":[{\"name\":\"x\",\"start\":0,\"durationMs\":0,"
          "\"bytes\":0}]}", "segment 0"},
    {"{\"type\":\"segments\",\"recording\":true,\"from\":0,\"total\":1,"
          "\"segments\":{}}", "segments"},
    {"{\"type\":\"segments\",\"from\":0,\"total\":1,\"segments\":[]}",
        "recording"},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    assert_rejected (cases[i].json, cases[i].mention);
  g_assert_true (pcr_segment_name_is_valid ("20261205-173000.mp4"));
  g_assert_true (pcr_segment_name_is_valid ("20261205-173000-999.mp4"));
  g_assert_false (pcr_segment_name_is_valid ("20261205-173000-1000.mp4"));
  g_assert_false (pcr_segment_name_is_valid ("20261205-173000-.mp4"));
  g_assert_false (pcr_segment_name_is_valid ("20261205_173000.mp4"));
  g_assert_false (pcr_segment_name_is_valid ("20261205-173000.MP4"));
  g_assert_false (pcr_segment_name_is_valid (NULL));
}

/* ---- metrics (docs/signalling.md, "Metrics") ---- */

static void
assert_metrics (const gchar * json, PcrMetrics * m)
{
  g_autoptr (GError) error = NULL;

  if (!pcr_metrics_parse (json, strlen (json), m, &error))
    g_error ("metrics %s did not parse: %s", json, error->message);
}

/* What a device sends reads back the same, with fps in 1/8 steps and the
 * unknown figures left out. */
static void
test_metrics_round_trip (void)
{
  g_auto (PcrMetrics) m = { 0 };
  g_auto (PcrMetrics) back = { 0 };
  g_autofree gchar *json = NULL;
  gsize len;

  pcr_metrics_init (&m);
  m.interval = 10;
  m.viewers = 2;
  m.restarts = 1;
  m.nacks = 120;
  m.retransmissions = 117;
  m.encoder = g_strdup ("x264enc");
  m.source = g_strdup ("videotestsrc");
  m.n_renditions = 2;
  g_strlcpy (m.renditions[0].name, "high", sizeof (m.renditions[0].name));
  m.renditions[0].fps = 29.97;
  m.renditions[0].bitrate = 1700000;
  g_strlcpy (m.renditions[1].name, "low", sizeof (m.renditions[1].name));
  m.renditions[1].fps = -1;
  m.renditions[1].bitrate = -1;
  m.have_estimates = TRUE;
  m.estimate_min = 400000;
  m.estimate_median = 1500000;
  m.estimate_max = 2000000;

  json = pcr_metrics_to_json (&m, &len);
  g_assert_cmpstr (json, ==, "{\"type\":\"metrics\",\"interval\":10,"
      "\"viewers\":2,\"restarts\":1,\"nacks\":120,\"retransmissions\":117,"
      "\"encoder\":\"x264enc\",\"source\":\"videotestsrc\",\"renditions\":"
      "[{\"name\":\"high\",\"fps\":30.0,\"bitrate\":1700000},"
      "{\"name\":\"low\"}],\"estimates\":{\"min\":400000,"
      "\"median\":1500000,\"max\":2000000}}");
  g_assert_cmpuint (len, <, 512);
  assert_metrics (json, &back);
  g_assert_cmpuint (back.dropped, ==, 0);
  g_assert_cmpuint (back.interval, ==, 10);
  g_assert_cmpint (back.viewers, ==, 2);
  g_assert_cmpint (back.restarts, ==, 1);
  g_assert_cmpint (back.nacks, ==, 120);
  g_assert_cmpint (back.retransmissions, ==, 117);
  g_assert_cmpstr (back.encoder, ==, "x264enc");
  g_assert_cmpstr (back.source, ==, "videotestsrc");
  g_assert_cmpuint (back.n_renditions, ==, 2);
  g_assert_cmpstr (back.renditions[0].name, ==, "high");
  g_assert_cmpfloat (back.renditions[0].fps, ==, 30);
  g_assert_cmpint (back.renditions[0].bitrate, ==, 1700000);
  g_assert_cmpfloat (back.renditions[1].fps, <, 0);
  g_assert_cmpint (back.renditions[1].bitrate, <, 0);
  g_assert_true (back.have_estimates);
  g_assert_cmpuint (back.estimate_median, ==, 1500000);

  /* nothing known: only the type and an empty list */
  pcr_metrics_clear (&m);
  pcr_metrics_init (&m);
  g_clear_pointer (&json, g_free);
  json = pcr_metrics_to_json (&m, NULL);
  g_assert_cmpstr (json, ==, "{\"type\":\"metrics\",\"renditions\":[]}");
}

/* A hostile report: each bad field is left out and counted, the good ones
 * kept; a rendition without a unique valid name is skipped. */
static void
test_metrics_bad_fields (void)
{
  g_auto (PcrMetrics) m = { 0 };
  g_autofree gchar *many = NULL;
  GString *list = g_string_new ("{\"type\":\"metrics\",\"renditions\":[");
  guint i;

  assert_metrics ("{\"type\":\"metrics\",\"interval\":0.5,\"viewers\":-1,"
      "\"restarts\":\"3\",\"nacks\":1e300,\"retransmissions\":7,"
      "\"encoder\":\"x264enc\\n# HELP\",\"source\":42,\"future\":[1,{}],"
      "\"renditions\":[{\"name\":\"high\",\"fps\":-3,\"bitrate\":900},"
      "{\"name\":\"high\",\"fps\":5},{\"name\":\"<b>\"},{\"fps\":1},7,"
      "{\"name\":\"low\",\"fps\":1e9,\"bitrate\":5000000000}],"
      "\"estimates\":{\"min\":3,\"median\":2,\"max\":1}}", &m);
  g_assert_cmpuint (m.interval, ==, 0);
  g_assert_cmpint (m.viewers, ==, -1);
  g_assert_cmpint (m.restarts, ==, -1);
  g_assert_cmpint (m.nacks, ==, -1);
  g_assert_cmpint (m.retransmissions, ==, 7);
  g_assert_null (m.encoder);
  g_assert_null (m.source);
  g_assert_cmpuint (m.n_renditions, ==, 2);
  g_assert_cmpstr (m.renditions[0].name, ==, "high");
  g_assert_cmpfloat (m.renditions[0].fps, <, 0);
  g_assert_cmpint (m.renditions[0].bitrate, ==, 900);
  g_assert_cmpstr (m.renditions[1].name, ==, "low");
  g_assert_cmpfloat (m.renditions[1].fps, <, 0);
  g_assert_cmpint (m.renditions[1].bitrate, <, 0);
  g_assert_false (m.have_estimates);
  /* interval viewers restarts nacks encoder source, fps, the second high,
   * <b>, the nameless, 7, low's fps and bitrate, estimates */
  g_assert_cmpuint (m.dropped, ==, 14);

  /* at most PCR_METRICS_MAX_RENDITIONS renditions */
  for (i = 0; i < 50; i++)
    g_string_append_printf (list, "%s{\"name\":\"r%u\",\"fps\":1}",
        i ? "," : "", i);
  g_string_append (list, "]}");
  many = g_string_free (list, FALSE);
  pcr_metrics_clear (&m);
  assert_metrics (many, &m);
  g_assert_cmpuint (m.n_renditions, ==, PCR_METRICS_MAX_RENDITIONS);
  g_assert_cmpuint (m.dropped, ==, 50 - PCR_METRICS_MAX_RENDITIONS);
}

/* What is refused as a whole: too large, not an object, another type. */
static void
test_metrics_refused (void)
{
  static const gchar *const refused[] = {
    "", "[]", "not json", "{\"viewers\":1}", "{\"type\":\"stats\"}",
    "{\"type\":7}", "{\"type\":\"metrics\"", "\"metrics\"",
    "{\"type\":\"metrics\",\"x\":\"\xff\"}",
  };
  g_autofree gchar *big = NULL;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (refused); i++) {
    g_auto (PcrMetrics) m = { 0 };
    g_autoptr (GError) error = NULL;

    g_assert_false (pcr_metrics_parse (refused[i], strlen (refused[i]), &m,
            &error));
    g_assert_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST);
    g_assert_null (strchr (error->message, '\n'));
    g_assert_null (m.encoder);
  }
  big = g_strdup_printf ("{\"type\":\"metrics\",\"pad\":\"%*s\"}",
      PCR_METRICS_MAX_SIZE, "");
  {
    g_auto (PcrMetrics) m = { 0 };
    g_autoptr (GError) error = NULL;

    g_assert_false (pcr_metrics_parse (big, strlen (big), &m, &error));
    g_assert_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST);
  }
  /* the type decides: a device never takes metrics as a message */
  {
    g_autoptr (GError) error = NULL;

    g_assert_null (pcr_message_parse ("{\"type\":\"metrics\"}", 19, &error));
    g_assert_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST);
  }
}

/* ---- parsing what peers really send ---- */

static void
test_parse_browser_shapes (void)
{
  g_autoptr (PcrMessage) offer = NULL;
  g_autoptr (PcrMessage) cand = NULL;
  g_autoptr (PcrMessage) cand_nulls = NULL;
  g_autoptr (PcrMessage) err = NULL;
  const PcrIceServer *server;

  /* RTCSessionDescription.toJSON() plus our fields, and RTCIceServer
   * entries with urls as a string or an array, and credentialType. */
  offer = assert_parses ("{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\","
      "\"trickle\":true,\"iceServers\":["
      "{\"urls\":\"stun:stun.example.org:19302\"},"
      "{\"urls\":[\"turn:t.example.org:3478?transport=udp\","
      "\"turns:t.example.org:5349\"],\"username\":\"1700000000:alice\","
      "\"credential\":\"c2VjcmV0\",\"credentialType\":\"password\"}]}");
  g_assert_cmpint (offer->type, ==, PCR_MESSAGE_OFFER);
  g_assert_cmpstr (offer->sdp, ==, "v=0\r\n");
  g_assert_true (offer->trickle);
  g_assert_cmpuint (offer->ice_servers->len, ==, 2);
  server = g_ptr_array_index (offer->ice_servers, 0);
  g_assert_cmpuint (g_strv_length (server->urls), ==, 1);
  g_assert_cmpstr (server->urls[0], ==, "stun:stun.example.org:19302");
  g_assert_null (server->username);
  g_assert_null (server->credential);
  server = g_ptr_array_index (offer->ice_servers, 1);
  g_assert_cmpuint (g_strv_length (server->urls), ==, 2);
  g_assert_cmpstr (server->urls[1], ==, "turns:t.example.org:5349");
  g_assert_cmpstr (server->username, ==, "1700000000:alice");
  g_assert_cmpstr (server->credential, ==, "c2VjcmV0");

  /* RTCIceCandidate.toJSON() carries usernameFragment too. */
  cand = assert_parses ("{\"type\":\"candidate\",\"candidate\":"
      "\"candidate:842163049 1 udp 1677729535 192.0.2.1 3478 typ srflx\","
      "\"sdpMid\":\"0\",\"sdpMLineIndex\":3,\"usernameFragment\":\"a1b2\"}");
  g_assert_cmpint (cand->type, ==, PCR_MESSAGE_CANDIDATE);
  g_assert_cmpstr (cand->candidate, ==,
      "candidate:842163049 1 udp 1677729535 192.0.2.1 3478 typ srflx");
  g_assert_cmpstr (cand->sdp_mid, ==, "0");
  g_assert_cmpuint (cand->sdp_mline_index, ==, 3);

  cand_nulls = assert_parses ("{\"type\":\"candidate\",\"candidate\":\"\","
      "\"sdpMid\":null,\"sdpMLineIndex\":null}");
  g_assert_cmpstr (cand_nulls->candidate, ==, "");
  g_assert_null (cand_nulls->sdp_mid);
  g_assert_cmpuint (cand_nulls->sdp_mline_index, ==, 0);

  /* Pretty-printed, with whitespace everywhere, from a hand-written client. */
  err = assert_parses ("\r\n {\n  \"type\" : \"error\" ,\n"
      "  \"code\" :\t\"unknown-session\"\n }\n");
  g_assert_cmpint (err->type, ==, PCR_MESSAGE_ERROR_MSG);
  g_assert_cmpstr (err->code, ==, "unknown-session");
  g_assert_cmpstr (err->message, ==, "");
}

static void
test_parse_defaults (void)
{
  g_autoptr (PcrMessage) offer = assert_parses ("{\"type\":\"offer\","
      "\"sdp\":\"v=0\"}");
  g_autoptr (PcrMessage) cand = assert_parses ("{\"type\":\"candidate\","
      "\"candidate\":\"candidate:1\"}");
  g_autoptr (PcrMessage) no_ice = assert_parses ("{\"type\":\"offer\","
      "\"sdp\":\"v=0\",\"iceServers\":[]}");
  g_autoptr (PcrMessage) bye = assert_parses ("{\"type\":\"bye\"}");

  /* Without "trickle" the device answers in one piece (the seed's style). */
  g_assert_false (offer->trickle);
  /* Without "stats" the viewer gets none. */
  g_assert_false (offer->want_stats);
  g_assert_cmpuint (offer->ice_servers->len, ==, 0);
  g_assert_cmpuint (cand->sdp_mline_index, ==, 0);
  g_assert_null (cand->sdp_mid);
  g_assert_cmpuint (no_ice->ice_servers->len, ==, 0);
  g_assert_cmpint (bye->type, ==, PCR_MESSAGE_BYE);
  g_assert_null (bye->sdp);
}

static void
test_parse_unknown_fields (void)
{
  g_autoptr (PcrMessage) offer = assert_parses ("{\"extra\":{\"a\":[1,2,"
      "{\"b\":null}]},\"type\":\"offer\",\"sdp\":\"v=0\",\"version\":2,"
      "\"device\":\"cam1\",\"flag\":true,\"n\":-1.5e3}");
  g_autoptr (PcrMessage) bye = assert_parses ("{\"type\":\"bye\","
      "\"reason\":\"tab closed\",\"sdp\":42}");
  g_autoptr (PcrMessage) answer = assert_parses ("{\"type\":\"answer\","
      "\"sdp\":\"v=0\",\"trickle\":\"not looked at\",\"candidate\":7}");

  g_assert_cmpint (offer->type, ==, PCR_MESSAGE_OFFER);
  g_assert_cmpstr (offer->sdp, ==, "v=0");
  g_assert_cmpint (bye->type, ==, PCR_MESSAGE_BYE);
  g_assert_cmpint (answer->type, ==, PCR_MESSAGE_ANSWER);
  g_assert_cmpstr (answer->sdp, ==, "v=0");
}

/* ---- malformed payloads ---- */

static void
test_parse_malformed (void)
{
  const struct
  {
    const gchar *json;
    const gchar *mention;
  } cases[] = {
    {"not json", "JSON"},
    {"{", "JSON"},
    {"{\"type\":\"bye\"", "JSON"},
    {"{\"type\":\"bye\",}", "JSON"},
    {"{\"type\" \"bye\"}", "JSON"},
    {"{type:\"bye\"}", "JSON"},
    {"[]", "not a JSON object"},
    {"[{\"type\":\"bye\"}]", "not a JSON object"},
    {"\"bye\"", "not a JSON object"},
    {"42", "not a JSON object"},
    {"true", "not a JSON object"},
    {"null", "not a JSON object"},
    {"   ", NULL},
    {"{}", "missing \"type\" string"},
    {"{\"sdp\":\"v=0\"}", "missing \"type\" string"},
    {"{\"type\":null}", "\"type\""},
    {"{\"type\":1}", "\"type\""},
    {"{\"type\":[\"offer\"]}", "\"type\""},
    {"{\"type\":\"foo\"}", "unknown type \"foo\""},
    {"{\"type\":\"\"}", "unknown type"},
    {"{\"type\":\"Offer\",\"sdp\":\"v=0\"}", "unknown type \"Offer\""},
    /* offer */
    {"{\"type\":\"offer\"}", "missing \"sdp\" string"},
    {"{\"type\":\"offer\",\"sdp\":null}", "\"sdp\""},
    {"{\"type\":\"offer\",\"sdp\":42}", "\"sdp\""},
    {"{\"type\":\"offer\",\"sdp\":{\"sdp\":\"v=0\"}}", "\"sdp\""},
    {"{\"type\":\"offer\",\"sdp\":\"\"}", "\"sdp\""},
    {"{\"type\":\"offer\",\"sdp\":\"v=0\",\"trickle\":\"yes\"}", "trickle"},
    {"{\"type\":\"offer\",\"sdp\":\"v=0\",\"trickle\":1}", "trickle"},
    {"{\"type\":\"offer\",\"sdp\":\"v=0\",\"trickle\":null}", "trickle"},
    {"{\"type\":\"offer\",\"sdp\":\"v=0\",\"iceServers\":{}}", "iceServers"},
    {"{\"type\":\"offer\",\"sdp\":\"v=0\",\"iceServers\":\"stun:h\"}",
        "iceServers"},
    {"{\"type\":\"offer\",\"sdp\":\"v=0\",\"iceServers\":[\"stun:h\"]}",
        "iceServers[0]"},
    {"{\"type\":\"offer\",\"sdp\":\"v=0\",\"iceServers\":[{}]}", "urls"},
    {"{\"type\":\"offer\",\"sdp\":\"v=0\",\"iceServers\":[{\"urls\":[]}]}",
        "urls"},
    {"{\"type\":\"offer\",\"sdp\":\"v=0\",\"iceServers\":[{\"urls\":\"\"}]}",
        "url"},
    {"{\"type\":\"offer\",\"sdp\":\"v=0\",\"iceServers\":[{\"urls\":5}]}",
        "urls"},
    {"{\"type\":\"offer\",\"sdp\":\"v=0\",\"iceServers\":[{\"urls\":[5]}]}",
        "url"},
    {"{\"type\":\"offer\",\"sdp\":\"v=0\",\"iceServers\":"
          "[{\"urls\":\"stun:h\"},{\"url\":\"stun:h\"}]}", "iceServers[1]"},
    {"{\"type\":\"offer\",\"sdp\":\"v=0\",\"iceServers\":[{\"urls\":"
          "\"turn:h\",\"username\":1,\"credential\":\"p\"}]}", "username"},
    {"{\"type\":\"offer\",\"sdp\":\"v=0\",\"iceServers\":[{\"urls\":"
          "\"turn:h\",\"username\":\"u\",\"credential\":{}}]}", "credential"},
    /* answer */
    {"{\"type\":\"answer\"}", "missing \"sdp\" string"},
    {"{\"type\":\"answer\",\"sdp\":\"\"}", "\"sdp\""},
    {"{\"type\":\"answer\",\"sdp\":false}", "\"sdp\""},
    /* candidate */
    {"{\"type\":\"candidate\"}", "missing \"candidate\" string"},
    {"{\"type\":\"candidate\",\"candidate\":null}", "\"candidate\""},
    {"{\"type\":\"candidate\",\"candidate\":{}}", "\"candidate\""},
    {"{\"type\":\"candidate\",\"candidate\":\"\",\"sdpMLineIndex\":-1}",
        "sdpMLineIndex"},
    {"{\"type\":\"candidate\",\"candidate\":\"\",\"sdpMLineIndex\":65536}",
        "sdpMLineIndex"},
    {"{\"type\":\"candidate\",\"candidate\":\"\",\"sdpMLineIndex\":"
          "4294967296}", "sdpMLineIndex"},
    {"{\"type\":\"candidate\",\"candidate\":\"\",\"sdpMLineIndex\":"
          "18446744073709551617}", "sdpMLineIndex"},
    {"{\"type\":\"candidate\",\"candidate\":\"\",\"sdpMLineIndex\":"
          "-9223372036854775809}", "sdpMLineIndex"},
    {"{\"type\":\"candidate\",\"candidate\":\"\",\"sdpMLineIndex\":1e300}",
        "sdpMLineIndex"},
    {"{\"type\":\"candidate\",\"candidate\":\"\",\"sdpMLineIndex\":0.5}",
        "sdpMLineIndex"},
    {"{\"type\":\"candidate\",\"candidate\":\"\",\"sdpMLineIndex\":\"0\"}",
        "sdpMLineIndex"},
    {"{\"type\":\"candidate\",\"candidate\":\"\",\"sdpMLineIndex\":[0]}",
        "sdpMLineIndex"},
    {"{\"type\":\"candidate\",\"candidate\":\"\",\"sdpMid\":0}", "sdpMid"},
    /* error */
    {"{\"type\":\"error\"}", "missing \"code\" string"},
    {"{\"type\":\"error\",\"code\":404}", "\"code\""},
    {"{\"type\":\"error\",\"code\":\"internal\",\"message\":[]}",
        "\"message\""},
    /* What json-glib would let through but JSON does not allow. */
    {"{'type':'bye'}", "JSON"},
    {"/* hi */ {\"type\":\"bye\"}", "JSON"},
    {"{\"type\":\"bye\"} // hi", "JSON"},
    {"{\"type\":\"bye\"}{\"type\":\"bye\"}", "trailing"},
    {"{\"type\":\"bye\"} x", "trailing"},
    {"{\"type\":\"bye\"}]", NULL},
    {"]", NULL},
    {"{\"type\":\"bye\",\"x\":\"\\q\"}", "escape"},
    {"{\"type\":\"bye\",\"x\":\"\\u12\"}", "escape"},
    {"{\"type\":\"bye\",\"x\":\"\\u123g\"}", "escape"},
    {"{\"type\":\"bye\",\"x\":\"\\", NULL},
    {"{\"type\":\"bye\",\"x\":\"abc", "unterminated"},
    /* \u0000 would cut the string short without a word. */
    {"{\"type\":\"offer\",\"sdp\":\"v=0\\u0000a=evil\"}", "\\u0000"},
    /* Lone UTF-16 surrogates would come out as invalid UTF-8. */
    {"{\"type\":\"offer\",\"sdp\":\"\\udc00x\"}", "surrogate"},
    {"{\"type\":\"offer\",\"sdp\":\"\\ud800\"}", "surrogate"},
    {"{\"type\":\"offer\",\"sdp\":\"\\ud800\\u0041\"}", "surrogate"},
    {"{\"type\":\"offer\",\"sdp\":\"\\ud800\\ud800\"}", "surrogate"},
    {"{\"type\":\"offer\",\"sdp\":\"\\ud800\\", "surrogate"},
    /* stats, and the offer's "stats": what the gateway serves is only
     * what passed */
    {"{\"type\":\"offer\",\"sdp\":\"v=0\",\"stats\":\"yes\"}", "stats"},
    {"{\"type\":\"offer\",\"sdp\":\"v=0\",\"stats\":1}", "stats"},
    {"{\"type\":\"offer\",\"sdp\":\"v=0\",\"stats\":null}", "stats"},
    {"{\"type\":\"stats\",\"estimate\":1}", "rendition"},
    {"{\"type\":\"stats\",\"rendition\":7,\"estimate\":1}", "rendition"},
    {"{\"type\":\"stats\",\"rendition\":\"\",\"estimate\":1}",
        "rendition"},
    {"{\"type\":\"stats\",\"rendition\":\"a.b\",\"estimate\":1}",
        "rendition"},
    {"{\"type\":\"stats\",\"rendition\":\"<script>\",\"estimate\":1}",
        "rendition"},
    {"{\"type\":\"stats\",\"rendition\":\"abcdefghijklmnopq\","
          "\"estimate\":1}", "rendition"},
    {"{\"type\":\"stats\",\"rendition\":\"high\"}", "estimate"},
    {"{\"type\":\"stats\",\"rendition\":\"high\",\"estimate\":null}",
        "estimate"},
    {"{\"type\":\"stats\",\"rendition\":\"high\",\"estimate\":-1}",
        "estimate"},
    {"{\"type\":\"stats\",\"rendition\":\"high\",\"estimate\":1.5}",
        "estimate"},
    {"{\"type\":\"stats\",\"rendition\":\"high\",\"estimate\":\"1\"}",
        "estimate"},
    {"{\"type\":\"stats\",\"rendition\":\"high\",\"estimate\":4294967296}",
        "estimate"},
    {"{\"type\":\"stats\",\"rendition\":\"high\",\"estimate\":"
          "99999999999999999999999}", "estimate"},
    {"{\"type\":\"stats\",\"rendition\":\"high\",\"estimate\":1,"
          "\"width\":65536}", "width"},
    {"{\"type\":\"stats\",\"rendition\":\"high\",\"estimate\":1,"
          "\"height\":[720]}", "height"},
    {"{\"type\":\"stats\",\"rendition\":\"high\",\"estimate\":1,"
          "\"bitrate\":true}", "bitrate"},
    {"{\"type\":\"stats\",\"rendition\":\"high\",\"estimate\":1,"
          "\"loss\":1.5}", "loss"},
    {"{\"type\":\"stats\",\"rendition\":\"high\",\"estimate\":1,"
          "\"loss\":-0.1}", "loss"},
    {"{\"type\":\"stats\",\"rendition\":\"high\",\"estimate\":1,"
          "\"loss\":\"0.1\"}", "loss"},
    {"{\"type\":\"stats\",\"rendition\":\"high\",\"estimate\":1,"
          "\"loss\":1e999}", NULL},
    {"{\"type\":\"stats\",\"rendition\":\"high\",\"estimate\":1,"
          "\"rtt\":600001}", "rtt"},
    {"{\"type\":\"stats\",\"rendition\":\"high\",\"estimate\":1,"
          "\"rtt\":-5}", "rtt"},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_test_message ("case %u: %s", i, cases[i].json);
    assert_rejected (cases[i].json, cases[i].mention);
  }
}

static void
test_parse_valid_escapes (void)
{
  g_autoptr (PcrMessage) msg = assert_parses ("{\"type\":\"offer\",\"sdp\":"
      "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83c\\udfa5\\u20AC\"}");

  g_assert_cmpstr (msg->sdp, ==, "\"\\/\b\f\n\r\té🎥€");
}

static void
test_parse_empty (void)
{
  assert_rejected_len ("", 0, "empty");
  assert_rejected_len (NULL, 0, "empty");
  /* A length of 0 wins over whatever the pointer holds. */
  assert_rejected_len ("{\"type\":\"bye\"}", 0, "empty");
}

static void
test_parse_not_nul_terminated (void)
{
  const gchar *json = "{\"type\":\"bye\"}";
  gsize len = strlen (json);
  g_autofree gchar *exact = g_memdup2 (json, len);
  g_autofree gchar *garbage = g_strconcat (json, "garbage", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (PcrMessage) a = pcr_message_parse (exact, len, &error);
  g_autoptr (PcrMessage) b = NULL;

  /* An MQTT payload has no NUL after it: only @len bytes are read (ASan or
   * valgrind would flag a read past @exact). */
  g_assert_no_error (error);
  g_assert_nonnull (a);
  g_assert_cmpint (a->type, ==, PCR_MESSAGE_BYE);
  b = pcr_message_parse (garbage, len, &error);
  g_assert_no_error (error);
  g_assert_nonnull (b);
  /* ...and a shorter length cuts the object. */
  assert_rejected_len (json, len - 1, NULL);
}

static void
test_parse_invalid_utf8 (void)
{
  assert_rejected ("{\"type\":\"offer\",\"sdp\":\"v=0\xff\"}", "UTF-8");
  assert_rejected ("{\"type\":\"offer\",\"sdp\":\"\xc3\"}", "UTF-8");
  /* Overlong '"': must not end the string early for anybody. */
  assert_rejected ("{\"type\":\"offer\",\"sdp\":\"\xc0\xa2\"}", "UTF-8");
  /* A UTF-16 surrogate encoded directly in UTF-8. */
  assert_rejected ("{\"type\":\"offer\",\"sdp\":\"\xed\xa0\x80\"}", "UTF-8");
  assert_rejected ("{\"type\":\"bye\",\"\xfe\":1}", "UTF-8");
  assert_rejected ("\xef\xbb\xbf{\"type\":\"bye\"}", NULL);
}

static void
test_parse_embedded_nul (void)
{
  const gchar json[] = "{\"type\":\"offer\",\"sdp\":\"v=0\0a=evil\"}";
  const gchar tail[] = "{\"type\":\"bye\"}\0";

  assert_rejected_len (json, sizeof (json) - 1, "NUL");
  assert_rejected_len (tail, sizeof (tail) - 1, "NUL");
}

/* An offer JSON of exactly @size bytes. */
static gchar *
offer_of_size (gsize size)
{
  const gchar *head = "{\"type\":\"offer\",\"sdp\":\"";
  const gchar *tail = "\"}";
  GString *s = g_string_sized_new (size + 1);

  g_string_append (s, head);
  while (s->len < size - strlen (tail))
    g_string_append_c (s, 'a');
  g_string_append (s, tail);
  g_assert_cmpuint (s->len, ==, size);
  return g_string_free (s, FALSE);
}

static void
test_parse_size_limit (void)
{
  g_autofree gchar *max = offer_of_size (PCR_MESSAGE_MAX_SIZE);
  g_autofree gchar *over = offer_of_size (PCR_MESSAGE_MAX_SIZE + 1);
  g_autofree gchar *huge = g_malloc0 (4 * PCR_MESSAGE_MAX_SIZE);
  g_autoptr (PcrMessage) msg = NULL;

  g_assert_cmpint (PCR_MESSAGE_MAX_SIZE, ==, 262144);

  /* 256 KiB is still fine: a large SDP with many candidates fits. */
  msg = assert_parses (max);
  g_assert_cmpuint (strlen (msg->sdp), ==, PCR_MESSAGE_MAX_SIZE
      - strlen ("{\"type\":\"offer\",\"sdp\":\"\"}"));

  assert_rejected (over,
      "payload of 262145 bytes is over the 262144-byte limit");
  /* The size is checked first: a huge buffer of NULs is not even looked at
   * for its encoding. */
  assert_rejected_len (huge, 4 * PCR_MESSAGE_MAX_SIZE, "1048576 bytes");
}

static void
test_parse_deep_nesting (void)
{
  const guint depths[] = { 65, 10000, 200000 };
  guint i, k;

  for (i = 0; i < G_N_ELEMENTS (depths); i++) {
    GString *s = g_string_new (NULL);

    /* A bare "[[[[..." (200000 of them crash json-glib 1.6 by stack
     * overflow). */
    for (k = 0; k < depths[i] && s->len < PCR_MESSAGE_MAX_SIZE; k++)
      g_string_append_c (s, '[');
    assert_rejected_len (s->str, s->len, NULL);

    /* Balanced, inside an otherwise valid message. */
    g_string_assign (s, "{\"type\":\"bye\",\"x\":");
    for (k = 0; k < depths[i] && s->len < PCR_MESSAGE_MAX_SIZE / 2 - 2; k++)
      g_string_append (s, "{\"a\":[");
    for (; k > 0; k--)
      g_string_append (s, "]}");
    g_string_append_c (s, '}');
    assert_rejected_len (s->str, s->len, "nested");

    g_string_free (s, TRUE);
  }
}

static void
test_parse_nesting_hidden_in_strings (void)
{
  GString *s = g_string_new ("{\"type\":\"offer\",\"sdp\":\"");
  g_autoptr (PcrMessage) msg = NULL;
  guint k;

  /* Brackets inside a string are text, however many: an SDP may hold any. */
  for (k = 0; k < 5000; k++)
    g_string_append (s, "[{\\\"");
  g_string_append (s, "\"}");
  msg = assert_parses (s->str);
  g_assert_cmpuint (strlen (msg->sdp), ==, 5000 * 3);

  /* Quoting tricks that could make a scan think the nesting is text. */
  g_string_assign (s, "{\"type\":\"bye\",\"x\":'\"',\"y\":");
  for (k = 0; k < 100000; k++)
    g_string_append_c (s, '[');
  assert_rejected_len (s->str, s->len, NULL);

  g_string_assign (s, "{\"type\":\"bye\",\"x\":\"\\u00\",\"y\":\"");
  for (k = 0; k < 100000; k++)
    g_string_append_c (s, '[');
  assert_rejected_len (s->str, s->len, NULL);

  g_string_free (s, TRUE);
}

static void
test_parse_prefixes (void)
{
  g_autofree gchar *json = NULL;
  g_autoptr (PcrMessage) msg = pcr_message_new_offer (OFFER_SDP, TRUE);
  gsize len, i;

  g_ptr_array_add (msg->ice_servers,
      ice_server_new ((const gchar *[]) { "turn:h:1", "stun:h:2", NULL },
          "u:1", "p"));
  json = pcr_message_to_json (msg, &len);

  /* A payload cut anywhere (a truncated publish) is an error, never a
   * crash or a half-filled message. */
  for (i = 0; i < len; i++)
    assert_rejected_len (json, i, NULL);
}

static void
test_parse_limits (void)
{
  g_autofree gchar *cand_ok = NULL, *cand_over = NULL;
  g_autofree gchar *url_ok = NULL, *url_over = NULL;
  g_autoptr (GString) servers = g_string_new (NULL);
  g_autoptr (GString) urls = g_string_new (NULL);
  g_autofree gchar *long_cand = g_strnfill (2048, 'c');
  g_autofree gchar *long_url = g_strnfill (512 - 5, 'h');
  g_autoptr (PcrMessage) m1 = NULL, m2 = NULL, m3 = NULL, m4 = NULL;
  guint i;

  cand_ok = g_strdup_printf ("{\"type\":\"candidate\",\"candidate\":\"%s\"}",
      long_cand);
  cand_over = g_strdup_printf ("{\"type\":\"candidate\",\"candidate\":"
      "\"%sc\"}", long_cand);
  m1 = assert_parses (cand_ok);
  g_assert_cmpuint (strlen (m1->candidate), ==, 2048);
  assert_rejected (cand_over, "2048");

  url_ok = g_strdup_printf ("{\"type\":\"offer\",\"sdp\":\"v=0\","
      "\"iceServers\":[{\"urls\":\"stun:%s\"}]}", long_url);
  url_over = g_strdup_printf ("{\"type\":\"offer\",\"sdp\":\"v=0\","
      "\"iceServers\":[{\"urls\":[\"stun:h\",\"stun:%sh\"]}]}", long_url);
  m2 = assert_parses (url_ok);
  assert_rejected (url_over, "512");

  /* PCR_MESSAGE_MAX_ICE_SERVERS servers pass, one more does not. */
  g_string_append (servers, "{\"type\":\"offer\",\"sdp\":\"v=0\","
      "\"iceServers\":[{\"urls\":\"stun:h0\"}");
  for (i = 1; i < PCR_MESSAGE_MAX_ICE_SERVERS; i++)
    g_string_append_printf (servers, ",{\"urls\":\"stun:h%u\"}", i);
  g_string_append (servers, "]}");
  m3 = assert_parses (servers->str);
  g_assert_cmpuint (m3->ice_servers->len, ==, PCR_MESSAGE_MAX_ICE_SERVERS);
  g_string_truncate (servers, servers->len - 2);
  g_string_append (servers, ",{\"urls\":\"stun:extra\"}]}");
  assert_rejected (servers->str, "iceServers");

  g_string_append (urls, "{\"type\":\"offer\",\"sdp\":\"v=0\","
      "\"iceServers\":[{\"urls\":[\"stun:h0\"");
  for (i = 1; i < PCR_MESSAGE_MAX_ICE_URLS; i++)
    g_string_append_printf (urls, ",\"stun:h%u\"", i);
  g_string_append (urls, "]}]}");
  m4 = assert_parses (urls->str);
  g_assert_cmpuint (g_strv_length (((PcrIceServer *)
              g_ptr_array_index (m4->ice_servers, 0))->urls), ==,
      PCR_MESSAGE_MAX_ICE_URLS);
  g_string_truncate (urls, urls->len - 4);
  g_string_append (urls, ",\"stun:extra\"]}]}");
  assert_rejected (urls->str, "urls");
}

static void
test_parse_error_messages_are_safe (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PcrMessage) msg = NULL;
  g_autofree gchar *long_type = g_strnfill (100000, 'x');
  g_autofree gchar *json = NULL;

  /* A hostile "type" is quoted escaped and cut short: it ends up in log
   * lines and in the error reply. */
  msg = parse ("{\"type\":\"a\\nb\\u001b[31m\\\"c\"}", &error);
  g_assert_null (msg);
  g_assert_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST);
  g_assert_null (strchr (error->message, '\n'));
  g_assert_null (strchr (error->message, '\x1b'));
  g_assert_nonnull (strstr (error->message, "unknown type"));
  g_clear_error (&error);

  json = g_strdup_printf ("{\"type\":\"%s\"}", long_type);
  msg = parse (json, &error);
  g_assert_null (msg);
  g_assert_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST);
  g_assert_cmpuint (strlen (error->message), <, 200);
}

/* ---- ids and topics ---- */

static void
test_id_valid (void)
{
  g_autofree gchar *id64 = g_strnfill (64, 'a');
  const gchar *valid[] = { "a", "Z", "0", "_", "-", "cam1", "living-room_2",
    "0123456789abcdefABCDEF", "f47ac10b-58cc-4372-a567-0e02b2c3d479",
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (valid); i++)
    g_assert_true (pcr_id_is_valid (valid[i]));
  g_assert_true (pcr_id_is_valid (id64));
}

static void
test_id_invalid (void)
{
  g_autofree gchar *id65 = g_strnfill (65, 'a');
  g_autofree gchar *id1000 = g_strnfill (1000, 'a');
  /* MQTT separators and wildcards would let a session id reach other
   * sessions' topics. */
  const gchar *invalid[] = { "", "a/b", "/", "+", "#", "a+", "a#", "cam 1",
    " a", "a ", "a.b", "a:b", "a\tb", "a\nb", "caméra", "カメラ", "\xff",
    "a\x7f", "$SYS", "*", "a,b", "..",
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (invalid); i++) {
    g_test_message ("invalid id %u", i);
    g_assert_false (pcr_id_is_valid (invalid[i]));
  }
  g_assert_false (pcr_id_is_valid (id65));
  g_assert_false (pcr_id_is_valid (id1000));
  g_assert_false (pcr_id_is_valid (NULL));
}

static void
test_topic_build (void)
{
  g_autofree gchar *in = pcr_topic_build (PCR_DEFAULT_TOPIC_PREFIX, "cam1",
      "in", "s-1");
  g_autofree gchar *out = pcr_topic_build ("site/a", "cam1", "out", "s_2");
  g_autofree gchar *status = pcr_topic_build (PCR_DEFAULT_TOPIC_PREFIX, "cam1",
      "status", NULL);

  g_assert_cmpstr (in, ==, "picamrtc/cam1/in/s-1");
  g_assert_cmpstr (out, ==, "site/a/cam1/out/s_2");
  g_assert_cmpstr (status, ==, "picamrtc/cam1/status");
}

static void
test_topic_parse (void)
{
  const struct
  {
    const gchar *topic;
    const gchar *dir;
    const gchar *session;       /* NULL: the topic is not ours */
  } cases[] = {
    {"picamrtc/cam1/in/s-1", "in", "s-1"},
    {"picamrtc/cam1/out/s-1", "out", "s-1"},
    /* Not a valid id, but still split, so the caller can decide. */
    {"picamrtc/cam1/in/a b+#", "in", "a b+#"},
    {"picamrtc/cam1/in/caméra", "in", "caméra"},
    {"picamrtc/cam1/out/s-1", "in", NULL},
    {"picamrtc/cam1/in/s-1", "out", NULL},
    {"picamrtc/cam1/inx/s-1", "in", NULL},
    {"picamrtc/cam1/i/s-1", "in", NULL},
    {"other/cam1/in/s-1", "in", NULL},
    {"picamrtcx/cam1/in/s-1", "in", NULL},
    {"picamrt/cam1/in/s-1", "in", NULL},
    {"/picamrtc/cam1/in/s-1", "in", NULL},
    {"Picamrtc/cam1/in/s-1", "in", NULL},
    {"picamrtc/cam2/in/s-1", "in", NULL},
    {"picamrtc/cam/in/s-1", "in", NULL},
    {"picamrtc/cam11/in/s-1", "in", NULL},
    {"picamrtc/cam1/in/s-1/x", "in", NULL},
    {"picamrtc/cam1/in/s-1/", "in", NULL},
    {"picamrtc/cam1/in//s-1", "in", NULL},
    {"picamrtc/cam1/in/", "in", NULL},
    {"picamrtc/cam1/in", "in", NULL},
    {"picamrtc/cam1/status", "in", NULL},
    {"picamrtc/cam1", "in", NULL},
    {"picamrtc", "in", NULL},
    {"", "in", NULL},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree gchar *session = NULL;
    gboolean ok;

    g_test_message ("topic %s", cases[i].topic);
    ok = pcr_topic_parse_session (cases[i].topic, "picamrtc", "cam1",
        cases[i].dir, &session);
    g_assert_cmpint (ok, ==, cases[i].session != NULL);
    g_assert_cmpstr (session, ==, cases[i].session);
  }
}

static void
test_topic_round_trip (void)
{
  g_autofree gchar *topic = pcr_topic_build ("a/b", "dev_1", "in", "S-9");
  g_autofree gchar *session = NULL;

  g_assert_true (pcr_topic_parse_session (topic, "a/b", "dev_1", "in",
          &session));
  g_assert_cmpstr (session, ==, "S-9");
  g_assert_true (pcr_id_is_valid (session));
}

/* ---- ICE servers ---- */

static gchar **
uris_for (const gchar * const *urls, const gchar * username,
    const gchar * credential)
{
  g_autoptr (PcrIceServer) server = ice_server_new (urls, username, credential);
  gchar **uris = pcr_ice_server_to_gst_uris (server);

  g_assert_nonnull (uris);
  return uris;
}

static void
test_ice_stun (void)
{
  g_auto (GStrv) uris = uris_for ((const gchar *[]) {
        "stun:stun.example.org:19302", "stun:192.0.2.1",
        "stun:[2001:db8::1]:3478",
        "stun://legacy.example.org:3478", NULL
      }, NULL, NULL);

  g_assert_cmpuint (g_strv_length (uris), ==, 4);
  g_assert_cmpstr (uris[0], ==, "stun://stun.example.org:19302");
  /* No default port is made up. */
  g_assert_cmpstr (uris[1], ==, "stun://192.0.2.1");
  g_assert_cmpstr (uris[2], ==, "stun://[2001:db8::1]:3478");
  g_assert_cmpstr (uris[3], ==, "stun://legacy.example.org:3478");
}

/* Splits a turn(s):// URI the way webrtcbin's libnice backend does: the
 * userinfo stays escaped, the first ':' in it ends the user name, then both
 * halves are unescaped. */
static void
assert_turn_credentials (const gchar * uri, const gchar * user,
    const gchar * pass, const gchar * host, gint port)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *u = NULL, *p = NULL, *h = NULL;
  g_autofree gchar *raw_user = NULL, *raw_pass = NULL;
  gint n = -1;

  g_assert_true (g_uri_split_with_user (uri, G_URI_FLAGS_HAS_PASSWORD
          | G_URI_FLAGS_ENCODED, NULL, &raw_user, &raw_pass, NULL, &h, &n,
          NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_nonnull (raw_user);
  g_assert_nonnull (raw_pass);
  /* Exactly one ':' in the userinfo: nothing for webrtcbin to guess. */
  g_assert_null (strchr (raw_user, ':'));
  g_assert_null (strchr (raw_pass, ':'));
  u = g_uri_unescape_string (raw_user, NULL);
  p = g_uri_unescape_string (raw_pass, NULL);
  g_assert_cmpstr (u, ==, user);
  g_assert_cmpstr (p, ==, pass);
  g_assert_cmpstr (h, ==, host);
  g_assert_cmpint (n, ==, port);
}

static void
test_ice_turn (void)
{
  g_auto (GStrv) uris = uris_for ((const gchar *[]) {
        "turn:turn.example.org:3478?transport=udp",
        "turn:turn.example.org:3478?transport=tcp",
        "turns:turn.example.org:5349?transport=tcp", "turn:turn.example.org",
        NULL
      },
      "1700000000:alice", "s3cr/t+=");

  g_assert_cmpuint (g_strv_length (uris), ==, 4);
  g_assert_cmpstr (uris[0], ==, "turn://1700000000%3Aalice:s3cr%2Ft%2B%3D@"
      "turn.example.org:3478?transport=udp");
  g_assert_cmpstr (uris[1], ==, "turn://1700000000%3Aalice:s3cr%2Ft%2B%3D@"
      "turn.example.org:3478?transport=tcp");
  g_assert_cmpstr (uris[2], ==, "turns://1700000000%3Aalice:s3cr%2Ft%2B%3D@"
      "turn.example.org:5349?transport=tcp");
  g_assert_cmpstr (uris[3], ==, "turn://1700000000%3Aalice:s3cr%2Ft%2B%3D@"
      "turn.example.org");
  assert_turn_credentials (uris[0], "1700000000:alice", "s3cr/t+=",
      "turn.example.org", 3478);
  assert_turn_credentials (uris[2], "1700000000:alice", "s3cr/t+=",
      "turn.example.org", 5349);
}

static void
test_ice_turn_escaping (void)
{
  const gchar *user = "us@er:name%20 é";
  const gchar *pass = "p@ss:w?rd#/&";
  g_auto (GStrv) uris = uris_for ((const gchar *[]) {
        "turn:t.example.org:3478", NULL
      }, user, pass);

  g_assert_cmpuint (g_strv_length (uris), ==, 1);
  g_assert_cmpstr (uris[0], ==, "turn://us%40er%3Aname%2520%20%C3%A9:"
      "p%40ss%3Aw%3Frd%23%2F%26@t.example.org:3478");
  assert_turn_credentials (uris[0], user, pass, "t.example.org", 3478);
}

static void
test_ice_skipped (void)
{
  g_auto (GStrv) no_credential = uris_for ((const gchar *[]) {
        "turn:t.example.org:3478", "turns:t.example.org:5349",
        "stun:s.example.org", NULL
      }, "user", NULL);
  g_auto (GStrv) no_username = uris_for ((const gchar *[]) {
        "turn:t.example.org:3478", NULL
      }, NULL, "pass");
  g_auto (GStrv) unknown = uris_for ((const gchar *[]) {
        "http://example.org", "stuns:s.example.org",
        "turnx:t.example.org", "stun", "", "stun:", "turn:", "stun:?x",
        "stun:evil@host", "stun:host/path", "stun:host name",
        "stun:host\r\n", NULL
      }, "u", "p");
  g_auto (GStrv) none = uris_for ((const gchar *[]) { NULL }, NULL, NULL);

  /* TURN without credentials cannot work: skipped, STUN kept. */
  g_assert_cmpuint (g_strv_length (no_credential), ==, 1);
  g_assert_cmpstr (no_credential[0], ==, "stun://s.example.org");
  g_assert_cmpuint (g_strv_length (no_username), ==, 0);
  g_assert_cmpuint (g_strv_length (unknown), ==, 0);
  g_assert_cmpuint (g_strv_length (none), ==, 0);
}

static void
test_ice_from_parsed_offer (void)
{
  g_autoptr (PcrMessage) msg = assert_parses ("{\"type\":\"offer\","
      "\"sdp\":\"v=0\",\"iceServers\":[{\"urls\":\"stun:s.example.org:3478\"},"
      "{\"urls\":[\"turn:t.example.org:3478?transport=udp\"],"
      "\"username\":\"1700000000:bob\",\"credential\":\"x@y\"}]}");
  g_auto (GStrv) stun = NULL;
  g_auto (GStrv) turn = NULL;

  g_assert_cmpuint (msg->ice_servers->len, ==, 2);
  stun = pcr_ice_server_to_gst_uris (g_ptr_array_index (msg->ice_servers, 0));
  turn = pcr_ice_server_to_gst_uris (g_ptr_array_index (msg->ice_servers, 1));
  g_assert_cmpuint (g_strv_length (stun), ==, 1);
  g_assert_cmpstr (stun[0], ==, "stun://s.example.org:3478");
  g_assert_cmpuint (g_strv_length (turn), ==, 1);
  g_assert_cmpstr (turn[0], ==, "turn://1700000000%3Abob:x%40y@"
      "t.example.org:3478?transport=udp");
}

/* ---- status ---- */

/* A relayed viewer's request has no ids; the device's answer names the
 * Janus room and feed, numbers JSON holds exactly. */
static void
test_relay_round_trip (void)
{
  g_autoptr (PcrMessage) ask = pcr_message_new_relay (0, 0);
  g_autoptr (PcrMessage) answer = pcr_message_new_relay (1234,
      PCR_RELAY_MAX_ID);
  g_autoptr (PcrMessage) parsed = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *json = pcr_message_to_json (ask, NULL);

  g_assert_cmpstr (json, ==, "{\"type\":\"relay\"}");
  g_clear_pointer (&json, g_free);
  json = pcr_message_to_json (answer, NULL);
  g_assert_cmpstr (json, ==, "{\"type\":\"relay\",\"room\":1234,"
      "\"feed\":9007199254740991}");
  parsed = pcr_message_parse (json, strlen (json), &error);
  g_assert_no_error (error);
  g_assert_cmpint (parsed->type, ==, PCR_MESSAGE_RELAY);
  g_assert_cmpuint (parsed->room, ==, 1234);
  g_assert_cmpuint (parsed->feed, ==, PCR_RELAY_MAX_ID);
  g_assert_cmpstr (pcr_error_code_to_string (PCR_ERROR_RELAY_UNAVAILABLE),
      ==, "relay-unavailable");
}

static void
test_relay_rejected (void)
{
  const gchar *bad[] = {
    "{\"type\":\"relay\",\"room\":-1}",
    "{\"type\":\"relay\",\"room\":\"12\"}",
    "{\"type\":\"relay\",\"feed\":9007199254740992}",
    "{\"type\":\"relay\",\"feed\":1.5}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (PcrMessage) msg = pcr_message_parse (bad[i], strlen (bad[i]),
        &error);

    g_assert_null (msg);
    g_assert_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST);
  }
}

/* The status of a relayed camera says where viewers subscribe. */
static void
test_status_relay (void)
{
  PcrStatus status = { "online", 1, 8, "H264", 0, 0, 0, 0 };
  g_autofree gchar *json = NULL;

  status.relay_state = "unreachable";
  status.relay_url = "http://127.0.0.1:8088/janus";
  status.relay_room = 7;
  status.relay_feed = 9;
  status.relay_viewers = 3;
  status.relay_error = "Janus unreachable: refused";
  json = pcr_status_to_json (&status, NULL);
  g_assert_cmpstr (json, ==, "{\"state\":\"online\",\"viewers\":1,"
      "\"maxViewers\":8,\"codec\":\"H264\",\"relay\":{\"state\":"
      "\"unreachable\",\"url\":\"http://127.0.0.1:8088/janus\",\"room\":7,\"feed\":9,\"viewers\":3,\"error\":"
      "\"Janus unreachable: refused\"}}");
}

static void
test_status_wire_form (void)
{
  PcrStatus online = { "online", 2, 8, "H264", 1280, 720, 30, 1 };
  PcrStatus offline = { "offline", 0, 8, "H264", 0, 0, 0, 0 };
  PcrStatus ntsc = { "error", 0, 4, "H264", 640, 480, 30000, 1001 };
  PcrStatus half = { "online", 1, 8, "H264", 0, 0, 15, 2 };
  g_autofree gchar *json = NULL;
  const gchar *rate;
  gsize len = 0;

  /* The example of docs/signalling.md, byte for byte. */
  json = pcr_status_to_json (&online, &len);
  g_assert_cmpstr (json, ==, "{\"state\":\"online\",\"viewers\":2,"
      "\"maxViewers\":8,\"codec\":\"H264\",\"width\":1280,"
      "\"height\":720,\"framerate\":30}");
  g_assert_cmpuint (len, ==, strlen (json));
  g_clear_pointer (&json, g_free);

  /* Before the first caps (and in the last will): no size, no rate. */
  json = pcr_status_to_json (&offline, NULL);
  g_assert_cmpstr (json, ==, "{\"state\":\"offline\",\"viewers\":0,"
      "\"maxViewers\":8,\"codec\":\"H264\"}");
  g_clear_pointer (&json, g_free);

  /* A fractional rate is the number people write (29.97, not 29.97003). */
  json = pcr_status_to_json (&ntsc, NULL);
  rate = strstr (json, "\"framerate\":");
  g_assert_nonnull (rate);
  g_assert_cmpfloat (g_ascii_strtod (rate + strlen ("\"framerate\":"), NULL),
      ==, 29.97);
  g_clear_pointer (&json, g_free);
  json = pcr_status_to_json (&half, NULL);
  g_assert_cmpstr (json, ==, "{\"state\":\"online\",\"viewers\":1,"
      "\"maxViewers\":8,\"codec\":\"H264\",\"framerate\":7.5}");
}

/* ---- remote ICE candidates ---- */

#define HOST_CANDIDATE "candidate:1 1 udp 2122260223 192.0.2.7 50000 typ host"

static void
test_candidate_accepted (void)
{
  static const gchar *good[] = {
    HOST_CANDIDATE,
    "a=" HOST_CANDIDATE,
    "candidate:2 1 tcp 1518280447 192.0.2.7 9 typ host tcptype active",
    "candidate:3 1 udp 1 2001:db8::1 3478 typ relay raddr 0.0.0.0 rport 0",
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (good); i++) {
    g_autoptr (GError) error = NULL;

    g_assert_cmpint (pcr_candidate_check (good[i], 0, &error), ==,
        PCR_CANDIDATE_USE);
    g_assert_no_error (error);
  }
  g_assert_cmpint (pcr_candidate_check (HOST_CANDIDATE,
          PCR_MESSAGE_MAX_MLINE_INDEX, NULL), ==, PCR_CANDIDATE_USE);
}

/* A browser hides its address behind an mDNS name; resolving it would send
 * multicast on the camera's network, so it is dropped without an error. */
static void
test_candidate_mdns_skipped (void)
{
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (pcr_candidate_check ("candidate:1 1 udp 2122260223 "
          "0f5e2a4c-1b2d-4c3e-9f00-123456789abc.local 50000 typ host", 0,
          &error), ==, PCR_CANDIDATE_SKIP);
  g_assert_no_error (error);
}

static void
test_candidate_rejected (void)
{
  static const struct
  {
    const gchar *candidate;
    guint mline;
    const gchar *mention;
  } bad[] = {
    {"", 0, "candidate:"},
    {"1 1 udp 1 192.0.2.7 5 typ host", 0, "candidate:"},
    {"b=" HOST_CANDIDATE, 0, "candidate:"},
    {HOST_CANDIDATE "\r\na=candidate:2 1 udp 1 192.0.2.8 5 typ host", 0,
        "one line"},
    {HOST_CANDIDATE "\n", 0, "one line"},
    {HOST_CANDIDATE, PCR_MESSAGE_MAX_MLINE_INDEX + 1, "sdpMLineIndex"},
    {HOST_CANDIDATE, G_MAXUINT, "sdpMLineIndex"},
    {"candidate:1 1 udp 2122260223 192.0.2.7", 0, "port"},
    {"candidate:", 0, "port"},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GError) error = NULL;

    g_assert_cmpint (pcr_candidate_check (bad[i].candidate, bad[i].mline,
            &error), ==, PCR_CANDIDATE_INVALID);
    g_assert_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST);
    g_assert_nonnull (strstr (error->message, bad[i].mention));
    g_assert_null (strpbrk (error->message, "\r\n"));
  }
}


/* ---- the control channel's MQTT side ---- */

static void
test_control_parse (void)
{
  static const struct
  {
    const gchar *payload;
    const gchar *why;           /* NULL: accepted */
  } cases[] = {
    {"{\"data\":\"hi\"}", NULL},
    {"{\"session\":\"s1\",\"data\":\"{\\\"cmd\\\":1}\"}", NULL},
    {"{\"session\":null,\"data\":\"\"}", NULL},
    {"{}", "missing \"data\""},
    {"{\"data\":1}", "\"data\" is not a string"},
    {"{\"data\":\"x\",\"session\":\"a.b\"}", "not a valid session id"},
    {"{\"data\":\"x\",\"session\":7}", "\"session\" is not a string"},
    {"[\"data\"]", ""},
    {"{\"data\":\"x\"", ""},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree gchar *session = NULL, *data = NULL;
    g_autoptr (GError) error = NULL;
    gboolean ok = pcr_control_parse (cases[i].payload,
        strlen (cases[i].payload), &session, &data, &error);

    if (!cases[i].why) {
      g_assert_no_error (error);
      g_assert_true (ok);
      g_assert_nonnull (data);
    } else {
      g_assert_false (ok);
      g_assert_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST);
      g_assert_nonnull (strstr (error->message, cases[i].why));
      g_assert_null (data);
    }
  }

  /* 16 KiB of data pass, a byte more does not; nor does a payload over
   * 64 KiB */
  {
    g_autofree gchar *text = g_strnfill (PCR_CONTROL_MAX_DATA, 'a');
    g_autofree gchar *ok = g_strdup_printf ("{\"data\":\"%s\"}", text);
    g_autofree gchar *over = g_strdup_printf ("{\"data\":\"%sa\"}", text);
    g_autofree gchar *huge = g_strnfill (64 * 1024 + 1, ' ');
    g_autofree gchar *session = NULL, *data = NULL;
    g_autoptr (GError) error = NULL;

    g_assert_true (pcr_control_parse (ok, strlen (ok), &session, &data,
            &error));
    g_assert_cmpuint (strlen (data), ==, PCR_CONTROL_MAX_DATA);
    g_clear_pointer (&data, g_free);
    g_assert_false (pcr_control_parse (over, strlen (over), &session, &data,
            &error));
    g_assert_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST);
    g_clear_error (&error);
    g_assert_false (pcr_control_parse (huge, strlen (huge), &session, &data,
            &error));
    g_assert_nonnull (strstr (error->message, "over the"));
  }

  /* from-viewer: the text comes back whole, escaped */
  {
    g_autofree gchar *json = pcr_control_to_json ("s1", "say \"hi\"\n",
        NULL);

    g_assert_cmpstr (json, ==,
        "{\"session\":\"s1\",\"data\":\"say \\\"hi\\\"\\n\"}");
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/message/new", test_new_messages);
  g_test_add_func ("/message/round-trip/offer", test_round_trip_offer);
  g_test_add_func ("/message/round-trip/answer", test_round_trip_answer);
  g_test_add_func ("/message/round-trip/candidate", test_round_trip_candidate);
  g_test_add_func ("/message/round-trip/bye", test_round_trip_bye);
  g_test_add_func ("/message/round-trip/error", test_round_trip_error);
  g_test_add_func ("/message/wire-form", test_wire_form);
  g_test_add_func ("/message/stats/wire-form-and-round-trip",
      test_stats_wire_form);
  g_test_add_func ("/message/stats/parse", test_parse_stats);
  g_test_add_func ("/message/snapshot/wire-form", test_snapshot_wire_form);
  g_test_add_func ("/message/snapshot/largest-part",
      test_snapshot_largest_part);
  g_test_add_func ("/message/snapshot/refused", test_snapshot_refused);
  g_test_add_func ("/message/recordings/wire-form",
      test_recordings_wire_form);
  g_test_add_func ("/message/recordings/refused", test_recordings_refused);
  g_test_add_func ("/metrics/round-trip", test_metrics_round_trip);
  g_test_add_func ("/metrics/bad-fields", test_metrics_bad_fields);
  g_test_add_func ("/metrics/refused", test_metrics_refused);
  g_test_add_func ("/message/parse/browser-shapes", test_parse_browser_shapes);
  g_test_add_func ("/message/parse/defaults", test_parse_defaults);
  g_test_add_func ("/message/parse/unknown-fields", test_parse_unknown_fields);
  g_test_add_func ("/message/parse/valid-escapes", test_parse_valid_escapes);
  g_test_add_func ("/message/parse/malformed", test_parse_malformed);
  g_test_add_func ("/message/parse/empty", test_parse_empty);
  g_test_add_func ("/message/parse/not-nul-terminated",
      test_parse_not_nul_terminated);
  g_test_add_func ("/message/parse/invalid-utf8", test_parse_invalid_utf8);
  g_test_add_func ("/message/parse/embedded-nul", test_parse_embedded_nul);
  g_test_add_func ("/message/parse/size-limit", test_parse_size_limit);
  g_test_add_func ("/message/parse/deep-nesting", test_parse_deep_nesting);
  g_test_add_func ("/message/parse/nesting-hidden-in-strings",
      test_parse_nesting_hidden_in_strings);
  g_test_add_func ("/message/parse/truncated", test_parse_prefixes);
  g_test_add_func ("/message/parse/limits", test_parse_limits);
  g_test_add_func ("/message/parse/safe-error-messages",
      test_parse_error_messages_are_safe);
  g_test_add_func ("/id/valid", test_id_valid);
  g_test_add_func ("/id/invalid", test_id_invalid);
  g_test_add_func ("/topic/build", test_topic_build);
  g_test_add_func ("/topic/parse", test_topic_parse);
  g_test_add_func ("/topic/round-trip", test_topic_round_trip);
  g_test_add_func ("/ice/stun", test_ice_stun);
  g_test_add_func ("/ice/turn", test_ice_turn);
  g_test_add_func ("/ice/turn-escaping", test_ice_turn_escaping);
  g_test_add_func ("/ice/skipped", test_ice_skipped);
  g_test_add_func ("/ice/from-parsed-offer", test_ice_from_parsed_offer);
  g_test_add_func ("/status/wire-form", test_status_wire_form);
  g_test_add_func ("/candidate/accepted", test_candidate_accepted);
  g_test_add_func ("/candidate/mdns-skipped", test_candidate_mdns_skipped);
  g_test_add_func ("/candidate/rejected", test_candidate_rejected);
  g_test_add_func ("/control/parse", test_control_parse);
  g_test_add_func ("/relay/round-trip", test_relay_round_trip);
  g_test_add_func ("/relay/rejected", test_relay_rejected);
  g_test_add_func ("/status/relay", test_status_relay);

  return g_test_run ();
}
