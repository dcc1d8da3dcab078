/* libFuzzer target for the MQTT message codec (docs/signalling.md: every
 * payload is hostile). Whatever pcr_message_parse() accepts must survive
 * pcr_message_to_json() and a second parse unchanged (the round-trip oracle
 * that catches a codec that reads one thing and writes another), and every
 * rejection must carry the one-line bad-request error the device sends back.
 * The same input also goes through the topic parser, for offers the
 * iceServers to webrtcbin URI conversion, and the metrics reader (the
 * gateway's side of P/D/metrics, with the same round trip), the other
 * places where peer text reaches lib/pcr-message.c. */

#include "pcr-defaults.h"
#include "pcr-message.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An error reply is one short line of text (pcr-message.h). */
static void
check_error (const GError * error)
{
  if (error == NULL || error->domain != PCR_MESSAGE_ERROR
      || error->code != PCR_ERROR_BAD_REQUEST) {
    fprintf (stderr, "rejected without a bad-request error: %s\n",
        error ? error->message : "(no error)");
    abort ();
  }
  if (strchr (error->message, '\n') != NULL
      || strchr (error->message, '\r') != NULL
      || strlen (error->message) >= 1024
      || !g_utf8_validate (error->message, -1, NULL)) {
    fprintf (stderr, "error message is not one short line: \"%s\"\n",
        error->message);
    abort ();
  }
}

static gboolean
ice_server_equal (const PcrIceServer * a, const PcrIceServer * b)
{
  return g_strv_equal ((const gchar * const *) a->urls,
      (const gchar * const *) b->urls)
      && g_strcmp0 (a->username, b->username) == 0
      && g_strcmp0 (a->credential, b->credential) == 0;
}

/* Every field pcr_message_to_json() writes for the message's type; fields
 * of other types are not written, so they are not compared. */
static gboolean
message_equal (const PcrMessage * a, const PcrMessage * b)
{
  guint i;

  if (a->type != b->type)
    return FALSE;
  switch (a->type) {
    case PCR_MESSAGE_OFFER:
      if (a->trickle != b->trickle || a->want_stats != b->want_stats
          || a->ice_servers->len != b->ice_servers->len)
        return FALSE;
      for (i = 0; i < a->ice_servers->len; i++) {
        if (!ice_server_equal (g_ptr_array_index (a->ice_servers, i),
                g_ptr_array_index (b->ice_servers, i)))
          return FALSE;
      }
      /* fall through */
    case PCR_MESSAGE_ANSWER:
      return g_strcmp0 (a->sdp, b->sdp) == 0;
    case PCR_MESSAGE_CANDIDATE:
      return g_strcmp0 (a->candidate, b->candidate) == 0
          && a->sdp_mline_index == b->sdp_mline_index
          && g_strcmp0 (a->sdp_mid, b->sdp_mid) == 0;
    case PCR_MESSAGE_BYE:
      return TRUE;
    case PCR_MESSAGE_ERROR_MSG:
      return g_strcmp0 (a->code, b->code) == 0
          && g_strcmp0 (a->message, b->message) == 0;
    case PCR_MESSAGE_STATS:
      /* loss is written in 1/256 steps */
      return g_strcmp0 (a->stats.rendition, b->stats.rendition) == 0
          && (a->stats.width && a->stats.height ?
          a->stats.width == b->stats.width
          && a->stats.height == b->stats.height : !b->stats.width)
          && a->stats.estimate == b->stats.estimate
          && a->stats.bitrate == b->stats.bitrate
          && (a->stats.loss < 0 ? b->stats.loss < 0 :
          ABS (a->stats.loss - b->stats.loss) <= 0.5 / 256)
          && a->stats.rtt == b->stats.rtt;
    case PCR_MESSAGE_SNAPSHOT:
      return TRUE;
    case PCR_MESSAGE_IMAGE:
      return g_strcmp0 (a->image.content_type, b->image.content_type) == 0
          && a->image.width == b->image.width
          && a->image.height == b->image.height
          && a->image.part == b->image.part
          && a->image.parts == b->image.parts
          && a->image.size == b->image.size
          && g_bytes_equal (a->image.data, b->image.data);
    case PCR_MESSAGE_RECORD:
    case PCR_MESSAGE_RECORDING:
      return a->record == b->record;
    case PCR_MESSAGE_RECORDINGS:
      return a->from == b->from;
    case PCR_MESSAGE_SEGMENTS:
      if (a->record != b->record || a->from != b->from
          || a->total != b->total || a->segments->len != b->segments->len)
        return FALSE;
      for (i = 0; i < a->segments->len; i++) {
        const PcrSegment *x = g_ptr_array_index (a->segments, i);
        const PcrSegment *y = g_ptr_array_index (b->segments, i);

        if (g_strcmp0 (x->name, y->name) != 0 || x->start != y->start
            || x->duration_ms != y->duration_ms || x->bytes != y->bytes)
          return FALSE;
      }
      return TRUE;
    case PCR_MESSAGE_FETCH:
      return g_strcmp0 (a->name, b->name) == 0 && a->offset == b->offset
          && a->length == b->length;
    case PCR_MESSAGE_CHUNK:
      return g_strcmp0 (a->name, b->name) == 0 && a->offset == b->offset
          && a->size == b->size && g_bytes_equal (a->data, b->data);
    case PCR_MESSAGE_RELAY:
      return a->room == b->room && a->feed == b->feed;
  }
  return FALSE;
}

static void
check_round_trip (const PcrMessage * msg, const guint8 * data, gsize size)
{
  g_autoptr (PcrMessage) again = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *json = NULL;
  gsize len = 0;

  json = pcr_message_to_json (msg, &len);
  if (json == NULL || len != strlen (json)) {
    fprintf (stderr, "pcr_message_to_json failed on a parsed message\n");
    abort ();
  }
  /* Escaping can make the JSON longer than the input, and a payload over
   * the limit is refused by design; nothing else may be lost. */
  if (len > PCR_MESSAGE_MAX_SIZE)
    return;
  again = pcr_message_parse (json, len, &error);
  if (again == NULL) {
    fprintf (stderr, "the JSON of a parsed message does not parse: %s\n"
        "input: %.*s\njson:  %s\n", error->message, (int) size,
        (const char *) data, json);
    abort ();
  }
  if (!message_equal (msg, again)) {
    fprintf (stderr, "round trip changed the message\ninput: %.*s\n"
        "json:  %s\n", (int) size, (const char *) data, json);
    abort ();
  }
}

/* What webrtcbin gets must split as intended: our scheme, and an '@' only
 * where a TURN URI puts its escaped user:password, nothing a peer's text
 * could move (pcr-message.c: host_part_is_sane). */
static void
check_ice_servers (const PcrMessage * msg)
{
  guint i;

  for (i = 0; i < msg->ice_servers->len; i++) {
    g_auto (GStrv) uris =
        pcr_ice_server_to_gst_uris (g_ptr_array_index (msg->ice_servers, i));
    gchar **uri;

    if (uris == NULL)
      abort ();
    for (uri = uris; *uri; uri++) {
      gboolean turn = g_str_has_prefix (*uri, "turn://")
          || g_str_has_prefix (*uri, "turns://");
      guint ats = 0;
      const gchar *p;

      for (p = *uri; *p; p++) {
        if (*p == '@')
          ats++;
        if (g_ascii_isspace (*p) || g_ascii_iscntrl (*p))
          ats = 99;
      }
      if ((!turn && !g_str_has_prefix (*uri, "stun://"))
          || ats != (turn ? 1 : 0)) {
        fprintf (stderr, "iceServers gave the URI \"%s\"\n", *uri);
        abort ();
      }
    }
  }
}

/* A candidate that passed the codec next meets the device's check: its
 * verdict and error must agree, the error being a bad-request line. */
static void
check_candidate (const PcrMessage * msg)
{
  g_autoptr (GError) error = NULL;
  PcrCandidateVerdict verdict;

  if (msg->type != PCR_MESSAGE_CANDIDATE || msg->candidate[0] == '\0')
    return;
  verdict = pcr_candidate_check (msg->candidate, msg->sdp_mline_index,
      &error);
  if (verdict == PCR_CANDIDATE_INVALID) {
    check_error (error);
  } else if (error != NULL || strpbrk (msg->candidate, "\r\n") != NULL
      || msg->sdp_mline_index > PCR_MESSAGE_MAX_MLINE_INDEX) {
    fprintf (stderr, "candidate \"%s\" accepted (verdict %d)\n",
        msg->candidate, verdict);
    abort ();
  }
}

/* Topics come from the broker as NUL-terminated strings. */
static void
check_topic (const guint8 * data, gsize size)
{
  g_autofree gchar *topic = g_strndup ((const gchar *) data, size);
  g_autofree gchar *session = NULL;

  if (pcr_topic_parse_session (topic, PCR_DEFAULT_TOPIC_PREFIX, "cam1", "in",
          &session) && (session == NULL || session[0] == '\0'
          || strchr (session, '/') != NULL)) {
    fprintf (stderr, "topic \"%s\" gave session \"%s\"\n", topic,
        session ? session : "(null)");
    abort ();
  }
  (void) pcr_id_is_valid (session);
}

static gboolean
metrics_equal (const PcrMetrics * a, const PcrMetrics * b)
{
  guint i;

  if (a->interval != b->interval || a->viewers != b->viewers
      || a->restarts != b->restarts || a->nacks != b->nacks
      || a->retransmissions != b->retransmissions
      || g_strcmp0 (a->encoder, b->encoder) != 0
      || g_strcmp0 (a->source, b->source) != 0
      || a->n_renditions != b->n_renditions
      || a->have_estimates != b->have_estimates
      || (a->have_estimates && (a->estimate_min != b->estimate_min
              || a->estimate_median != b->estimate_median
              || a->estimate_max != b->estimate_max)))
    return FALSE;
  for (i = 0; i < a->n_renditions; i++) {
    if (strcmp (a->renditions[i].name, b->renditions[i].name) != 0
        || a->renditions[i].fps != b->renditions[i].fps
        || a->renditions[i].bitrate != b->renditions[i].bitrate)
      return FALSE;
  }
  return TRUE;
}

/* What the gateway keeps of a device's metrics must write and read back
 * the same, every number in range and every label an id. */
static void
check_metrics (const guint8 * data, gsize size)
{
  g_auto (PcrMetrics) m = { 0 };
  g_auto (PcrMetrics) again = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree gchar *json = NULL;
  gsize len;

  if (!pcr_metrics_parse ((const gchar *) data, size, &m, &error)) {
    check_error (error);
    return;
  }
  json = pcr_metrics_to_json (&m, &len);
  if (len > PCR_METRICS_MAX_SIZE
      || !pcr_metrics_parse (json, len, &again, &error)
      || again.dropped != 0 || !metrics_equal (&m, &again)) {
    fprintf (stderr, "metrics round trip failed\ninput: %.*s\njson:  %s\n",
        (int) size, (const char *) data, json);
    abort ();
  }
}

int LLVMFuzzerInitialize (int *argc, char ***argv);
/* A to-viewers payload (docs/audio-and-control.md): parsed or refused with
 * bad-request; what is taken is within the bounds and goes out again as
 * the same data. */
static void
check_control (const uint8_t * data, size_t size)
{
  g_autofree gchar *session = NULL, *text = NULL, *json = NULL;
  g_autoptr (GError) error = NULL;

  if (!pcr_control_parse ((const gchar *) data, size, &session, &text,
          &error)) {
    g_assert_nonnull (error);
    g_assert_true (g_error_matches (error, PCR_MESSAGE_ERROR,
            PCR_ERROR_BAD_REQUEST));
    g_assert_null (text);
    return;
  }
  g_assert_nonnull (text);
  g_assert_cmpuint (strlen (text), <=, PCR_CONTROL_MAX_DATA);
  g_assert_true (session == NULL || pcr_id_is_valid (session));
  json = pcr_control_to_json (session ? session : "s", text, NULL);
  g_assert_nonnull (json);
}

int LLVMFuzzerTestOneInput (const uint8_t * data, size_t size);

/* One pass over every kind of message before fuzzing: json-glib and GLib
 * register their types and quarks on first use, once per process, and
 * libFuzzer would take that for a leak of whichever input came first. */
int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  static const char *warm[] = {
    ("{\"type\":\"offer\",\"sdp\":\"v=0\",\"trickle\":true,"
        "\"iceServers\":[{\"urls\":[\"stun:h:1\",\"turn:h:2\"],"
        "\"username\":\"u\",\"credential\":\"c\"}]}"),
    "{\"type\":\"answer\",\"sdp\":\"v=0\"}",
    ("{\"type\":\"candidate\",\"candidate\":\"candidate:1 1 udp 1 "
        "127.0.0.1 1 typ host\",\"sdpMLineIndex\":0,\"sdpMid\":\"0\"}"),
    "{\"type\":\"bye\"}",
    "{\"type\":\"error\",\"code\":\"internal\",\"message\":\"m\"}",
    "{\"type\":", "[1]", "\"\\ud800\"",
    ("{\"type\":\"metrics\",\"interval\":10,\"viewers\":1,\"encoder\":"
        "\"x264enc\",\"renditions\":[{\"name\":\"high\",\"fps\":30}],"
        "\"estimates\":{\"min\":1,\"median\":2,\"max\":3}}"),
  };
  size_t i;

  for (i = 0; i < sizeof (warm) / sizeof (warm[0]); i++)
    LLVMFuzzerTestOneInput ((const uint8_t *) warm[i], strlen (warm[i]));
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  g_autoptr (PcrMessage) msg = NULL;
  g_autoptr (GError) error = NULL;

  msg = pcr_message_parse ((const gchar *) data, size, &error);
  if (msg == NULL) {
    check_error (error);
  } else {
    check_round_trip (msg, data, size);
    check_ice_servers (msg);
    check_candidate (msg);
  }
  check_topic (data, size);
  check_metrics (data, size);
  check_control (data, size);
  return 0;
}
