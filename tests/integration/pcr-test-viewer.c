/* A WebRTC viewer for the integration tests that speaks only the MQTT
 * signalling contract (docs/signalling.md), like any outside program would: it
 * offers one recvonly H.264 video m-line from its own webrtcbin, decodes what
 * arrives and reports one JSON object per line on stdout: "offer", "answer"
 * (with the number of candidates in the answer SDP), "first-frame" (with the
 * decoded width and height), "frames" once a second (with "max_gap_ms", the
 * longest wait for a decoded frame in that second: a stall shows there even
 * when the rate averages out), "error", "bye", "reply" (--raw), "timeout",
 * "ice-failed", "device-online" (--wait-online), "stats" (each stats message
 * of the device, asked for with --stats or not, its fields as they came), and
 * last "done" (with the longest gap of the whole run). All times ("ms") count
 * from the moment the offer (or raw payload) was published. With
 * --playout-delay-extmap ID it offers the playout-delay RTP header extension;
 * "answer" says which id the answer gives it and "done" counts the RTP packets
 * that carried it and the last delays they asked for. It uses libmosquitto and
 * json-glib directly, not the project's own MQTT and message code, so it
 * checks those too. With --username, --password and an mqtts:// broker
 * (checked with --ca-file) it logs in over TLS like the gateway does. With
 * --audio it also offers a recvonly Opus audio m-line (first, before the
 * video, as browsers do), decodes what arrives and reports the decoded
 * audio buffers and their peak level; "answer" then says how the device
 * answered the audio m-line. With --relay URL it watches through Janus
 * instead (pcr-test-viewer-relay.c; --count N viewers in one process).
 * Exit codes: 0 success, 1 failure or timeout, 2 usage. */

#include "pcr-test-viewer-relay.h"

#include <gst/gst.h>
#include <gst/rtp/rtp.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <mosquitto.h>

#include <stdio.h>
#include <string.h>

#define H264_CAPS "application/x-rtp,media=video,encoding-name=H264," \
    "clock-rate=90000,payload=102,packetization-mode=(string)1," \
    "profile-level-id=(string)42e01f"
#define PLAYOUT_DELAY_URI \
    "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
#define VP8_CAPS "application/x-rtp,media=video,encoding-name=VP8," \
    "clock-rate=90000,payload=96"
/* a=rtpmap:111 opus/48000/2, as browsers offer it */
#define OPUS_CAPS "application/x-rtp,media=audio,encoding-name=OPUS," \
    "clock-rate=48000,payload=111,encoding-params=(string)2"
/* --audio, when the answer sends audio: what must have been decoded by the
 * time the --frames target is reached. 10 ms Opus frames give 100 buffers
 * a second, so 50 is half a second of sound; the peak, a fraction of full
 * scale, tells sound from silence. */
#define AUDIO_MIN_BUFFERS 50
#define AUDIO_MIN_PEAK 0.01

GST_DEBUG_CATEGORY_STATIC (viewer_debug);
#define GST_CAT_DEFAULT viewer_debug

typedef struct
{
  /* options */
  gchar *broker_host;
  gint broker_port;
  gboolean broker_tls;          /* mqtts:// */
  gchar *username;
  gchar *password;
  gchar *ca_file;
  gchar *device;
  gchar *prefix;
  gchar *session;
  gboolean trickle;
  gboolean stats;
  gint frames_target;
  gint timeout_s;
  gchar **ice_addresses;
  gint hold_s;
  gboolean no_h264;
  gboolean level_asymmetry;
  gchar *raw;
  gsize raw_len;
  gchar *expect_error;
  gboolean no_bye;
  gboolean wait_online;
  gint playout_delay_id;
  gboolean no_decode;
  gboolean audio;
  gchar *relay;                 /* --relay: pcr-test-viewer-relay.c */
  gboolean session_given;
  gint count;
  gint stagger_ms;

  /* state, main thread only unless noted */
  GMainLoop *loop;
  GMainContext *context;
  struct mosquitto *mosq;
  gchar *topic_in;
  gchar *topic_out;
  gchar *topic_status;          /* --wait-online */
  GstElement *pipeline;
  GstElement *webrtc;
  GstElement *decoder;          /* built ahead, until a pad takes it */
  const gchar *decoder_encoding;
  gint64 t0;                    /* monotonic µs when the offer went out */
  gboolean offer_sent;
  gboolean subscribed;
  gboolean answered;
  gboolean finishing;
  gboolean target_reached;
  gboolean device_bye;
  gboolean end_of_candidates_sent;
  gint exit_code;
  gint width;
  gint height;
  gint frames;                  /* atomic: written by the streaming thread */
  gint first_frame_posted;      /* atomic */
  gint remote_candidates;       /* candidate messages from the device */
  gint bye_mid;
  gboolean bye_published;       /* atomic */
  gboolean connected;           /* a CONNACK came */
  gboolean lost_reported;
  gboolean device_online;       /* --wait-online: its status said so */
  gchar *held_offer;            /* --wait-online: ready, not yet sent */
  gchar **mids;                 /* the offer's, by m-line index */
  gint video_mline;             /* the offer's video m-line */
  const gchar *answer_audio;    /* how the answer has the audio m-line:
                                 * "none" (no such m-line), "rejected"
                                 * (port 0), or its direction */

  /* decoded-frame timing: the streaming thread writes, the main thread
   * reads, both under gap_lock */
  GMutex gap_lock;
  gint64 last_frame_us;         /* monotonic time of the latest frame */
  gint64 interval_gap_us;       /* longest gap since the last "frames" */
  gint64 max_gap_us;            /* longest gap since the first frame */
  gint rtp_packets;             /* atomic, as the next three */
  gint ext_packets;             /* with any RTP header extension */
  gint playout_delay_packets;   /* with playout-delay at its id */
  gint playout_delay;           /* last value: min_ms << 16 | max_ms */
  gint audio_buffers;           /* atomic: decoded audio buffers */
  gint audio_peak;              /* atomic: max abs sample, 32768 = full */
  gint audio_rtp_packets;       /* atomic */
} Viewer;

static Viewer v;

static void finish (gint exit_code);

static gint64
elapsed_ms (void)
{
  if (v.t0 == 0)
    return 0;
  return (g_get_monotonic_time () - v.t0) / 1000;
}

/* One JSON line on stdout, flushed at once so the harness sees it live. */
static void
emit (JsonBuilder * b)
{
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree gchar *line = json_to_string (root, FALSE);

  fprintf (stdout, "%s\n", line);
  fflush (stdout);
}

static JsonBuilder *
event_begin (const gchar * name)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "event");
  json_builder_add_string_value (b, name);
  return b;
}

static void
event_end (JsonBuilder * b)
{
  json_builder_end_object (b);
  emit (b);
  g_object_unref (b);
}

static void
event_simple (const gchar * name, gboolean with_ms)
{
  JsonBuilder *b = event_begin (name);

  if (with_ms) {
    json_builder_set_member_name (b, "ms");
    json_builder_add_int_value (b, elapsed_ms ());
  }
  event_end (b);
}

static void
event_message (const gchar * name, const gchar * message)
{
  JsonBuilder *b = event_begin (name);

  json_builder_set_member_name (b, "ms");
  json_builder_add_int_value (b, elapsed_ms ());
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, message);
  event_end (b);
}

/* Posting work to the main context (STYLE rule 5) */

typedef struct
{
  GSourceFunc func;
  gpointer data;
  GDestroyNotify destroy;
} Posted;

static gboolean
posted_dispatch (gpointer user_data)
{
  Posted *p = user_data;

  p->func (p->data);
  return G_SOURCE_REMOVE;
}

static void
posted_free (gpointer user_data)
{
  Posted *p = user_data;

  if (p->destroy && p->data)
    p->destroy (p->data);
  g_free (p);
}

static void
post (GSourceFunc func, gpointer data, GDestroyNotify destroy)
{
  GSource *source = g_idle_source_new ();
  Posted *p = g_new0 (Posted, 1);

  p->func = func;
  p->data = data;
  p->destroy = destroy;
  g_source_set_callback (source, posted_dispatch, p, posted_free);
  g_source_attach (source, v.context);
  g_source_unref (source);
}

/* MQTT */

/* Sends @payload to the device, QoS 1; @mid (nullable) gets its id. */
static void
publish_text (const gchar * payload, int *mid)
{
  int rc = mosquitto_publish (v.mosq, mid, v.topic_in, strlen (payload),
      payload, 1, false);

  if (rc != MOSQ_ERR_SUCCESS)
    g_printerr ("viewer: publish failed: %s\n", mosquitto_strerror (rc));
}

static void
publish_json (JsonBuilder * b)
{
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree gchar *payload = json_to_string (root, FALSE);

  publish_text (payload, NULL);
}

static void
publish_type_only (const gchar * type, int *mid)
{
  g_autofree gchar *payload = g_strdup_printf ("{\"type\":\"%s\"}", type);

  publish_text (payload, mid);
}

static void
publish_candidate (const gchar * candidate, guint mline)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "candidate");
  json_builder_set_member_name (b, "candidate");
  json_builder_add_string_value (b, candidate);
  json_builder_set_member_name (b, "sdpMLineIndex");
  json_builder_add_int_value (b, mline);
  json_builder_set_member_name (b, "sdpMid");
  json_builder_add_string_value (b, v.mids && mline < g_strv_length (v.mids)
      ? v.mids[mline] : "0");
  json_builder_end_object (b);
  publish_json (b);
  g_object_unref (b);
}

static void
publish_offer (const gchar * sdp)
{
  JsonBuilder *b;

  /* an offer sent before the device is (back) on the broker is lost: a
   * client that knows waits for the device's status first */
  if (v.wait_online && !v.device_online) {
    g_free (v.held_offer);
    v.held_offer = g_strdup (sdp);
    return;
  }
  b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "offer");
  json_builder_set_member_name (b, "sdp");
  json_builder_add_string_value (b, sdp);
  json_builder_set_member_name (b, "trickle");
  json_builder_add_boolean_value (b, v.trickle);
  if (v.stats) {
    json_builder_set_member_name (b, "stats");
    json_builder_add_boolean_value (b, TRUE);
  }
  json_builder_end_object (b);
  v.t0 = g_get_monotonic_time ();
  publish_json (b);
  g_object_unref (b);
  v.offer_sent = TRUE;
  event_simple ("offer", TRUE);
}

static void create_offer (void);

static gboolean
on_subscribed_main (gpointer data)
{
  if (v.subscribed || v.finishing)
    return G_SOURCE_REMOVE;
  v.subscribed = TRUE;

  if (v.raw) {
    v.t0 = g_get_monotonic_time ();
    mosquitto_publish (v.mosq, NULL, v.topic_in, v.raw_len, v.raw, 1, false);
    event_simple ("raw-sent", TRUE);
    return G_SOURCE_REMOVE;
  }
  create_offer ();
  return G_SOURCE_REMOVE;
}

static gboolean
on_connect_main (gpointer data)
{
  gint rc = GPOINTER_TO_INT (data);

  if (rc != 0) {
    g_autofree gchar *msg = g_strdup_printf ("MQTT connect refused: %s",
        mosquitto_connack_string (rc));

    event_message ("mqtt-error", msg);
    finish (1);
    return G_SOURCE_REMOVE;
  }
  v.connected = TRUE;
  /* subscribe before the offer goes out, so no reply is missed */
  mosquitto_subscribe (v.mosq, NULL, v.topic_out, 1);
  if (v.topic_status)
    mosquitto_subscribe (v.mosq, NULL, v.topic_status, 1);
  return G_SOURCE_REMOVE;
}

static void
on_connect (struct mosquitto *mosq, void *obj, int rc)
{
  post (on_connect_main, GINT_TO_POINTER (rc), NULL);
}

/* A connection lost before any CONNACK (TLS handshake failed, plain MQTT to
 * a TLS port...): said once, libmosquitto keeps retrying until --timeout. */
static gboolean
on_disconnect_main (gpointer data)
{
  gint rc = GPOINTER_TO_INT (data);
  g_autofree gchar *msg = NULL;

  if (v.connected || v.lost_reported || v.finishing)
    return G_SOURCE_REMOVE;
  v.lost_reported = TRUE;
  msg = g_strdup_printf ("MQTT connection lost before CONNACK: %s",
      mosquitto_strerror (rc));
  event_message ("mqtt-error", msg);
  return G_SOURCE_REMOVE;
}

static void
on_disconnect (struct mosquitto *mosq, void *obj, int rc)
{
  post (on_disconnect_main, GINT_TO_POINTER (rc), NULL);
}

static void
on_subscribe (struct mosquitto *mosq, void *obj, int mid, int qos_count,
    const int *granted_qos)
{
  post (on_subscribed_main, NULL, NULL);
}

static void
on_publish (struct mosquitto *mosq, void *obj, int mid)
{
  /* read from the main thread while it waits for the bye to go out */
  if (mid == g_atomic_int_get (&v.bye_mid))
    g_atomic_int_set (&v.bye_published, TRUE);
}

static void handle_reply (GBytes * payload);

static gboolean
on_message_main (gpointer data)
{
  handle_reply (data);
  return G_SOURCE_REMOVE;
}

/* --wait-online: the device's status; the held offer goes out once it
 * says online. */
static gboolean
on_status_main (gpointer data)
{
  GBytes *payload = data;
  g_autoptr (JsonParser) parser = json_parser_new ();
  gsize len;
  const gchar *text = g_bytes_get_data (payload, &len);
  JsonNode *root;
  JsonNode *state;

  if (v.device_online || v.finishing)
    return G_SOURCE_REMOVE;
  if (!json_parser_load_from_data (parser, text, len, NULL))
    return G_SOURCE_REMOVE;
  root = json_parser_get_root (parser);
  if (!JSON_NODE_HOLDS_OBJECT (root))
    return G_SOURCE_REMOVE;
  state = json_object_get_member (json_node_get_object (root), "state");
  if (state == NULL || !JSON_NODE_HOLDS_VALUE (state) ||
      json_node_get_value_type (state) != G_TYPE_STRING ||
      g_strcmp0 (json_node_get_string (state), "online") != 0)
    return G_SOURCE_REMOVE;
  v.device_online = TRUE;
  event_simple ("device-online", FALSE);
  if (v.held_offer) {
    g_autofree gchar *sdp = g_steal_pointer (&v.held_offer);

    publish_offer (sdp);
  }
  return G_SOURCE_REMOVE;
}

static void
on_message (struct mosquitto *mosq, void *obj,
    const struct mosquitto_message *msg)
{
  gboolean status = v.topic_status && g_strcmp0 (msg->topic,
      v.topic_status) == 0;

  post (status ? on_status_main : on_message_main,
      g_bytes_new (msg->payload, msg->payloadlen),
      (GDestroyNotify) g_bytes_unref);
}

/* Replies from the device */

/* A string member, or NULL when absent or not a string: peer input never
 * reaches a json-glib precondition check. */
static const gchar *
get_string (JsonObject * obj, const gchar * name)
{
  JsonNode *node = json_object_get_member (obj, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static void
on_remote_description_set (GstPromise * promise, gpointer user_data)
{
  gst_promise_unref (promise);
}

/* The id the answer's video m-line gives the playout-delay extension. */
static gint
answer_playout_delay_id (const GstSDPMessage * sdp)
{
  const GstSDPMedia *media;
  guint i;

  if ((guint) v.video_mline >= gst_sdp_message_medias_len (sdp))
    return 0;
  media = gst_sdp_message_get_media (sdp, v.video_mline);
  for (i = 0; i < gst_sdp_media_attributes_len (media); i++) {
    const GstSDPAttribute *attr = gst_sdp_media_get_attribute (media, i);
    const gchar *uri;

    if (g_strcmp0 (attr->key, "extmap") != 0 || !attr->value)
      continue;
    uri = strchr (attr->value, ' ');
    if (uri && g_str_equal (uri + 1, PLAYOUT_DELAY_URI))
      return atoi (attr->value);
  }
  return 0;
}

/* How the answer has the (first) audio m-line: "none" without one,
 * "rejected" with port 0, else its direction attribute (sendrecv, the
 * default, when it has none). */
static const gchar *
answer_audio_direction (const GstSDPMessage * sdp)
{
  static const gchar *const dirs[] = { "sendonly", "recvonly", "inactive",
    "sendrecv"
  };
  guint i, d;

  for (i = 0; i < gst_sdp_message_medias_len (sdp); i++) {
    const GstSDPMedia *media = gst_sdp_message_get_media (sdp, i);

    if (g_strcmp0 (gst_sdp_media_get_media (media), "audio") != 0)
      continue;
    if (gst_sdp_media_get_port (media) == 0)
      return "rejected";
    for (d = 0; d < G_N_ELEMENTS (dirs); d++)
      if (gst_sdp_media_get_attribute_val (media, dirs[d]))
        return dirs[d];
    return "sendrecv";
  }
  return "none";
}

/* The answer says the device sends audio on the m-line the viewer offered. */
static gboolean
answer_sends_audio (void)
{
  return g_strcmp0 (v.answer_audio, "sendonly") == 0 ||
      g_strcmp0 (v.answer_audio, "sendrecv") == 0;
}

static void
handle_answer (const gchar * sdp_text)
{
  GstSDPMessage *sdp = NULL;
  GstWebRTCSessionDescription *answer;
  GstPromise *promise;
  JsonBuilder *b;
  const gchar *p;
  gint candidates = 0;

  if (v.answered) {
    event_message ("protocol-error", "second answer");
    finish (1);
    return;
  }
  v.answered = TRUE;
  b = event_begin ("answer");
  json_builder_set_member_name (b, "ms");
  json_builder_add_int_value (b, elapsed_ms ());
  /* bulk ICE puts every candidate in the answer */
  for (p = strstr (sdp_text, "a=candidate:"); p;
      p = strstr (p + 1, "a=candidate:"))
    candidates++;
  json_builder_set_member_name (b, "candidates");
  json_builder_add_int_value (b, candidates);

  if (gst_sdp_message_new_from_text (sdp_text, &sdp) != GST_SDP_OK) {
    event_end (b);
    event_message ("protocol-error", "answer SDP does not parse");
    finish (1);
    return;
  }
  json_builder_set_member_name (b, "playout_delay_id");
  json_builder_add_int_value (b, answer_playout_delay_id (sdp));
  v.answer_audio = answer_audio_direction (sdp);
  json_builder_set_member_name (b, "audio");
  json_builder_add_string_value (b, v.answer_audio);
  event_end (b);
  answer = gst_webrtc_session_description_new (GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
  promise = gst_promise_new_with_change_func (on_remote_description_set,
      NULL, NULL);
  g_signal_emit_by_name (v.webrtc, "set-remote-description", answer, promise);
  gst_webrtc_session_description_free (answer);
}

static void
handle_candidate (JsonObject * obj)
{
  const gchar *candidate;
  guint mline = 0;

  candidate = get_string (obj, "candidate");
  if (candidate == NULL) {
    event_message ("protocol-error", "candidate without \"candidate\"");
    return;
  }
  mline = json_object_get_int_member_with_default (obj, "sdpMLineIndex", 0);
  /* end of candidates: webrtcbin 1.22 needs nothing for it */
  if (candidate == NULL || candidate[0] == '\0')
    return;
  v.remote_candidates++;
  g_signal_emit_by_name (v.webrtc, "add-ice-candidate", mline, candidate);
}

/* An event carrying the device's message as it came. */
static void
event_payload (const gchar * name, JsonNode * message)
{
  JsonBuilder *b = event_begin (name);

  json_builder_set_member_name (b, "ms");
  json_builder_add_int_value (b, elapsed_ms ());
  json_builder_set_member_name (b, "payload");
  json_builder_add_value (b, json_node_copy (message));
  event_end (b);
}

static void
handle_reply (GBytes * payload)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  gsize len;
  const gchar *data = g_bytes_get_data (payload, &len);
  JsonNode *root;
  JsonObject *obj;
  const gchar *type;

  if (v.finishing)
    return;

  if (!json_parser_load_from_data (parser, data, len, &error) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    g_autofree gchar *text = g_strndup (data, len);

    event_message ("protocol-error", "reply is not a JSON object");
    g_printerr ("viewer: unparsable reply: %s\n", text);
    finish (1);
    return;
  }
  root = json_parser_get_root (parser);
  obj = json_node_get_object (root);

  if (v.raw)
    event_payload ("reply", root);

  type = get_string (obj, "type");
  if (type == NULL)
    type = "";
  if (g_str_equal (type, "error")) {
    const gchar *code = get_string (obj, "code");
    const gchar *message = get_string (obj, "message");
    JsonBuilder *b = event_begin ("error");
    gint exit_code;

    if (code == NULL)
      code = "";
    if (message == NULL)
      message = "";

    json_builder_set_member_name (b, "code");
    json_builder_add_string_value (b, code);
    json_builder_set_member_name (b, "message");
    json_builder_add_string_value (b, message);
    event_end (b);
    /* an error ends the session on the device side: no bye needed */
    v.no_bye = TRUE;
    if (v.expect_error)
      exit_code = g_str_equal (code, v.expect_error) ? 0 : 1;
    else
      exit_code = v.raw ? 0 : 1;
    finish (exit_code);
    return;
  }
  if (v.raw) {
    finish (v.expect_error ? 1 : 0);
    return;
  }
  if (g_str_equal (type, "answer")) {
    const gchar *sdp = get_string (obj, "sdp");

    if (sdp == NULL) {
      event_message ("protocol-error", "answer without sdp");
      finish (1);
      return;
    }
    handle_answer (sdp);
  } else if (g_str_equal (type, "candidate")) {
    handle_candidate (obj);
  } else if (g_str_equal (type, "stats")) {
    event_payload ("stats", root);
  } else if (g_str_equal (type, "bye")) {
    event_simple ("bye", TRUE);
    v.device_bye = TRUE;
    v.no_bye = TRUE;
    finish (v.target_reached ? 0 : 1);
  } else {
    g_autofree gchar *msg = g_strdup_printf ("unexpected type \"%s\"", type);

    event_message ("protocol-error", msg);
  }
}

/* webrtcbin */

static gboolean
send_bulk_offer (gpointer data)
{
  GstWebRTCSessionDescription *desc = NULL;
  g_autofree gchar *text = NULL;

  if (v.offer_sent || v.finishing)
    return G_SOURCE_REMOVE;
  g_object_get (v.webrtc, "local-description", &desc, NULL);
  if (desc == NULL) {
    event_message ("internal-error", "no local description");
    finish (1);
    return G_SOURCE_REMOVE;
  }
  text = gst_sdp_message_as_text (desc->sdp);
  gst_webrtc_session_description_free (desc);
  publish_offer (text);
  return G_SOURCE_REMOVE;
}

static gboolean
on_gathering_complete_main (gpointer data)
{
  if (v.finishing)
    return G_SOURCE_REMOVE;
  if (!v.trickle) {
    send_bulk_offer (NULL);
  } else if (v.offer_sent && !v.end_of_candidates_sent) {
    v.end_of_candidates_sent = TRUE;
    publish_candidate ("", 0);
  }
  return G_SOURCE_REMOVE;
}

static gboolean
on_ice_failed_main (gpointer data)
{
  if (!v.finishing) {
    event_message ("ice-failed", "ICE connection failed");
    finish (1);
  }
  return G_SOURCE_REMOVE;
}

/* One of webrtcbin's state properties reaching @state: @func runs on the
 * main context. */
typedef struct
{
  const gchar *property;
  gint state;
  GSourceFunc func;
} StateWatch;

static const StateWatch gathering_complete = {
  "ice-gathering-state", GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE,
  on_gathering_complete_main
};

static const StateWatch ice_failed = {
  "ice-connection-state", GST_WEBRTC_ICE_CONNECTION_STATE_FAILED,
  on_ice_failed_main
};

/* notify:: of a StateWatch's property, on a webrtcbin thread */
static void
on_state (GstElement * webrtc, GParamSpec * pspec, gpointer data)
{
  const StateWatch *watch = data;
  gint state;

  g_object_get (webrtc, watch->property, &state, NULL);
  if (state == watch->state)
    post (watch->func, NULL, NULL);
}

typedef struct
{
  gchar *candidate;
  guint mline;
} Candidate;

static void
candidate_free (gpointer data)
{
  Candidate *c = data;

  g_free (c->candidate);
  g_free (c);
}

static gboolean
on_ice_candidate_main (gpointer data)
{
  Candidate *c = data;

  if (v.trickle && v.offer_sent && !v.finishing)
    publish_candidate (c->candidate, c->mline);
  return G_SOURCE_REMOVE;
}

static void
on_ice_candidate (GstElement * webrtc, guint mline, const gchar * candidate,
    gpointer data)
{
  Candidate *c = g_new0 (Candidate, 1);

  c->candidate = g_strdup (candidate);
  c->mline = mline;
  post (on_ice_candidate_main, c, candidate_free);
}

static gboolean
on_offer_created_main (gpointer data)
{
  GstPromise *promise = data;
  const GstStructure *reply = gst_promise_get_reply (promise);
  GstWebRTCSessionDescription *offer = NULL;
  g_autofree gchar *text = NULL;

  if (v.finishing)
    return G_SOURCE_REMOVE;
  if (reply)
    gst_structure_get (reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION,
        &offer, NULL);
  if (offer == NULL) {
    event_message ("internal-error", "webrtcbin created no offer");
    finish (1);
    return G_SOURCE_REMOVE;
  }
  g_signal_emit_by_name (v.webrtc, "set-local-description", offer, NULL);
  text = gst_sdp_message_as_text (offer->sdp);
  {
    guint n = gst_sdp_message_medias_len (offer->sdp), i;

    g_strfreev (v.mids);
    v.mids = g_new0 (gchar *, n + 1);
    for (i = 0; i < n; i++) {
      const GstSDPMedia *media = gst_sdp_message_get_media (offer->sdp, i);
      const gchar *mid = gst_sdp_media_get_attribute_val (media, "mid");

      v.mids[i] = g_strdup (mid ? mid : "");
    }
  }
  gst_webrtc_session_description_free (offer);

  /* trickle: at once, candidates follow; bulk: once gathering is complete,
   * from the local description, which then holds every candidate */
  if (v.trickle)
    publish_offer (text);
  return G_SOURCE_REMOVE;
}

static void
on_offer_created (GstPromise * promise, gpointer data)
{
  post (on_offer_created_main, promise, (GDestroyNotify) gst_promise_unref);
}

static void
create_offer (void)
{
  GstPromise *promise =
      gst_promise_new_with_change_func (on_offer_created, NULL, NULL);

  g_signal_emit_by_name (v.webrtc, "create-offer", NULL, promise);
}

/* Decoding and counting */

typedef struct
{
  GstCaps *caps;                /* decoded video */
  gchar *profile;               /* H.264 profile of the stream, nullable */
} FirstFrame;

static void
first_frame_free (gpointer data)
{
  FirstFrame *ff = data;

  gst_clear_caps (&ff->caps);
  g_free (ff->profile);
  g_free (ff);
}

static gboolean
on_first_frame_main (gpointer data)
{
  FirstFrame *ff = data;
  GstStructure *s;
  JsonBuilder *b;

  if (ff->caps && (s = gst_caps_get_structure (ff->caps, 0))) {
    gst_structure_get_int (s, "width", &v.width);
    gst_structure_get_int (s, "height", &v.height);
  }
  b = event_begin ("first-frame");
  json_builder_set_member_name (b, "ms");
  json_builder_add_int_value (b, elapsed_ms ());
  json_builder_set_member_name (b, "width");
  json_builder_add_int_value (b, v.width);
  json_builder_set_member_name (b, "height");
  json_builder_add_int_value (b, v.height);
  /* what was sent, to compare with what was offered */
  json_builder_set_member_name (b, "profile");
  json_builder_add_string_value (b, ff->profile ? ff->profile : "");
  event_end (b);
  return G_SOURCE_REMOVE;
}

static gboolean
hold_done (gpointer data)
{
  finish (0);
  return G_SOURCE_REMOVE;
}

/* --audio: what was decoded by the time the video target was reached,
 * when the answer said the device sends audio; NULL when that is enough
 * (or no audio was to come), else why not. */
static gchar *
audio_shortfall (void)
{
  gint buffers = g_atomic_int_get (&v.audio_buffers);
  gdouble peak = g_atomic_int_get (&v.audio_peak) / 32768.0;

  if (!v.audio || !answer_sends_audio ())
    return NULL;
  if (buffers < AUDIO_MIN_BUFFERS)
    return g_strdup_printf ("the answer sends audio (%s) but only %d audio "
        "buffers were decoded by the time %d video frames were (expected "
        "at least %d)", v.answer_audio, buffers, v.frames_target,
        AUDIO_MIN_BUFFERS);
  if (peak < AUDIO_MIN_PEAK)
    return g_strdup_printf ("the %d decoded audio buffers are silent: peak "
        "%.4f of full scale (expected at least %.2f)", buffers, peak,
        AUDIO_MIN_PEAK);
  return NULL;
}

static gboolean
on_target_main (gpointer data)
{
  g_autofree gchar *shortfall = NULL;

  if (v.target_reached || v.finishing)
    return G_SOURCE_REMOVE;
  shortfall = audio_shortfall ();
  if (shortfall) {
    g_printerr ("viewer: audio: %s\n", shortfall);
    event_message ("audio-failed", shortfall);
    finish (1);
    return G_SOURCE_REMOVE;
  }
  v.target_reached = TRUE;
  if (v.hold_s > 0)
    g_timeout_add_seconds (v.hold_s, hold_done, NULL);
  else
    finish (0);
  return G_SOURCE_REMOVE;
}

static GstPadProbeReturn
on_decoded_buffer (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  GstElement *parse = data;
  gint count = g_atomic_int_add (&v.frames, 1) + 1;
  gint64 now = g_get_monotonic_time ();

  g_mutex_lock (&v.gap_lock);
  if (v.last_frame_us != 0) {
    v.interval_gap_us = MAX (v.interval_gap_us, now - v.last_frame_us);
    v.max_gap_us = MAX (v.max_gap_us, now - v.last_frame_us);
  }
  v.last_frame_us = now;
  g_mutex_unlock (&v.gap_lock);

  if (g_atomic_int_compare_and_exchange (&v.first_frame_posted, 0, 1)) {
    FirstFrame *ff = g_new0 (FirstFrame, 1);

    ff->caps = gst_pad_get_current_caps (pad);
    if (parse) {
      GstPad *src = gst_element_get_static_pad (parse, "src");
      GstCaps *caps = gst_pad_get_current_caps (src);
      GstStructure *s = caps ? gst_caps_get_structure (caps, 0) : NULL;

      if (s)
        ff->profile = g_strdup (gst_structure_get_string (s, "profile"));
      gst_clear_caps (&caps);
      gst_object_unref (src);
    }
    post (on_first_frame_main, ff, first_frame_free);
  }
  if (v.frames_target > 0 && count == v.frames_target)
    post (on_target_main, NULL, NULL);
  return GST_PAD_PROBE_OK;
}

/* Counts the RTP packets webrtcbin hands out and what header extensions
 * they carry (streaming thread); @data non-NULL on an audio pad, whose
 * packets are counted apart. */
static GstPadProbeReturn
on_rtp_buffer (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  gpointer ext;
  guint size;

  if (data) {                   /* audio: counted, nothing else */
    g_atomic_int_inc (&v.audio_rtp_packets);
    return GST_PAD_PROBE_OK;
  }
  if (!gst_rtp_buffer_map (GST_PAD_PROBE_INFO_BUFFER (info), GST_MAP_READ,
          &rtp))
    return GST_PAD_PROBE_OK;
  g_atomic_int_inc (&v.rtp_packets);
  if (gst_rtp_buffer_get_extension (&rtp))
    g_atomic_int_inc (&v.ext_packets);
  if (v.playout_delay_id > 0 && gst_rtp_buffer_get_extension_onebyte_header
      (&rtp, v.playout_delay_id, 0, &ext, &size) && size == 3) {
    const guint8 *d = ext;
    gint min = ((d[0] << 4) | (d[1] >> 4)) * 10;
    gint max = (((d[1] & 0xf) << 8) | d[2]) * 10;

    g_atomic_int_inc (&v.playout_delay_packets);
    g_atomic_int_set (&v.playout_delay, (min << 16) | max);
  }
  gst_rtp_buffer_unmap (&rtp);
  return GST_PAD_PROBE_OK;
}

/* The decoding branch for @encoding, in the pipeline, its ghost "sink" pad
 * not linked yet. One decoder thread: frame threading would add frames of
 * delay. --no-decode counts whole access units out of h264parse instead,
 * so a benchmark can run many viewers without their decoders taking the
 * cores from the sender. */
static GstElement *
make_decoder (const gchar * encoding)
{
  g_autoptr (GError) error = NULL;
  const gchar *desc;
  GstElement *bin;
  GstElement *sink;
  GstElement *parse;
  GstPad *sinkpad;

  if (g_strcmp0 (encoding, "H264") == 0 && v.no_decode)
    desc = "rtph264depay ! h264parse name=parse ! "
        "fakesink name=sink sync=false async=false";
  else if (g_strcmp0 (encoding, "H264") == 0)
    desc = "rtph264depay ! h264parse name=parse ! avdec_h264 max-threads=1 ! "
        "videoconvert ! fakesink name=sink sync=false async=false";
  else
    desc = "decodebin ! videoconvert ! "
        "fakesink name=sink sync=false async=false";

  bin = gst_parse_bin_from_description (desc, TRUE, &error);
  if (bin == NULL) {
    g_printerr ("viewer: cannot build decoder: %s\n", error->message);
    return NULL;
  }
  sink = gst_bin_get_by_name (GST_BIN (bin), "sink");
  sinkpad = gst_element_get_static_pad (sink, "sink");
  parse = gst_bin_get_by_name (GST_BIN (bin), "parse");
  gst_pad_add_probe (sinkpad, GST_PAD_PROBE_TYPE_BUFFER, on_decoded_buffer,
      parse, parse ? (GDestroyNotify) gst_object_unref : NULL);
  gst_object_unref (sinkpad);
  gst_object_unref (sink);

  gst_bin_add (GST_BIN (v.pipeline), bin);
  gst_element_sync_state_with_parent (bin);
  return bin;
}

/* The largest absolute sample of a decoded audio buffer, 32768 being full
 * scale, for the formats opusdec gives (S16, F32); -1 for others. */
static gint
audio_buffer_peak (GstBuffer * buffer, const gchar * format)
{
  GstMapInfo map;
  gboolean s16 = g_strcmp0 (format, "S16LE") == 0 ||
      g_strcmp0 (format, "S16BE") == 0;
  gboolean f32 = g_strcmp0 (format, "F32LE") == 0 ||
      g_strcmp0 (format, "F32BE") == 0;
  gboolean le = g_str_has_suffix (format ? format : "", "LE");
  gint peak = 0;
  gsize i;

  if (!(s16 || f32) || !gst_buffer_map (buffer, &map, GST_MAP_READ))
    return -1;
  if (s16) {
    for (i = 0; i + 2 <= map.size; i += 2) {
      guint16 raw;
      gint sample;

      memcpy (&raw, map.data + i, 2);
      sample = (gint16) (le ? GUINT16_FROM_LE (raw) : GUINT16_FROM_BE (raw));
      peak = MAX (peak, ABS (sample));
    }
  } else {
    for (i = 0; i + 4 <= map.size; i += 4) {
      union
      {
        guint32 u;
        gfloat f;
      } raw;
      gdouble level;

      memcpy (&raw.u, map.data + i, 4);
      raw.u = le ? GUINT32_FROM_LE (raw.u) : GUINT32_FROM_BE (raw.u);
      level = MIN (raw.f < 0 ? -raw.f : raw.f, 1.0) * 32768.0;
      peak = MAX (peak, (gint) level);
    }
  }
  gst_buffer_unmap (buffer, &map);
  return peak;
}

/* Each decoded audio buffer: counted, its peak kept (the audio streaming
 * thread is the only writer). */
static GstPadProbeReturn
on_decoded_audio (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  g_autoptr (GstCaps) caps = gst_pad_get_current_caps (pad);
  const gchar *format = caps && gst_caps_get_size (caps) > 0 ?
      gst_structure_get_string (gst_caps_get_structure (caps, 0), "format") :
      NULL;
  gint peak = audio_buffer_peak (GST_PAD_PROBE_INFO_BUFFER (info), format);

  g_atomic_int_inc (&v.audio_buffers);
  if (peak > g_atomic_int_get (&v.audio_peak))
    g_atomic_int_set (&v.audio_peak, peak);
  return GST_PAD_PROBE_OK;
}

/* The audio decoding branch (--audio), in the pipeline, its ghost "sink"
 * pad not linked yet. */
static GstElement *
make_audio_decoder (void)
{
  g_autoptr (GError) error = NULL;
  GstElement *bin;
  GstElement *sink;
  GstPad *sinkpad;

  bin = gst_parse_bin_from_description ("rtpopusdepay ! opusdec ! "
      "fakesink name=sink sync=false async=false", TRUE, &error);
  if (bin == NULL) {
    g_printerr ("viewer: cannot build the audio decoder: %s\n",
        error->message);
    return NULL;
  }
  sink = gst_bin_get_by_name (GST_BIN (bin), "sink");
  sinkpad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (sinkpad, GST_PAD_PROBE_TYPE_BUFFER, on_decoded_audio,
      NULL, NULL);
  gst_object_unref (sinkpad);
  gst_object_unref (sink);

  gst_bin_add (GST_BIN (v.pipeline), bin);
  gst_element_sync_state_with_parent (bin);
  return bin;
}

static void
on_pad_added (GstElement * webrtc, GstPad * pad, gpointer data)
{
  g_autoptr (GstCaps) caps = NULL;
  const gchar *encoding = NULL;
  const gchar *media = NULL;
  GstElement *bin;
  GstPad *ghost;

  if (GST_PAD_DIRECTION (pad) != GST_PAD_SRC)
    return;

  /* linked here, on webrtcbin's thread, not posted: data is about to flow
   * and an unlinked pad would fail the stream */
  caps = gst_pad_get_current_caps (pad);
  if (caps == NULL)
    caps = gst_pad_query_caps (pad, NULL);
  if (caps && gst_caps_get_size (caps) > 0) {
    GstStructure *s = gst_caps_get_structure (caps, 0);

    encoding = gst_structure_get_string (s, "encoding-name");
    media = gst_structure_get_string (s, "media");
  }

  GST_INFO ("pad %s added, caps %" GST_PTR_FORMAT, GST_PAD_NAME (pad), caps);

  /* audio or video by the caps: with bundle, webrtcbin 1.22 can give the
   * pad the wrong "transceiver" */
  if (g_strcmp0 (media, "audio") == 0) {
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, on_rtp_buffer,
        GINT_TO_POINTER (1), NULL);
    if (g_ascii_strcasecmp (encoding ? encoding : "", "OPUS") != 0) {
      g_printerr ("viewer: audio in %s, not Opus: not decoded\n",
          encoding ? encoding : "an unknown encoding");
      bin = gst_element_factory_make ("fakesink", NULL);
      g_object_set (bin, "sync", FALSE, "async", FALSE, NULL);
      gst_bin_add (GST_BIN (v.pipeline), bin);
      gst_element_sync_state_with_parent (bin);
    } else {
      bin = make_audio_decoder ();
    }
    if (bin == NULL)
      return;
    ghost = gst_element_get_static_pad (bin, "sink");
    if (gst_pad_link (pad, ghost) != GST_PAD_LINK_OK)
      g_printerr ("viewer: cannot link the audio decoder\n");
    gst_object_unref (ghost);
    return;
  }

  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, on_rtp_buffer, NULL, NULL);

  /* the one built ahead when it decodes this (a browser's decoder is ready
   * too), else a new one */
  if (v.decoder && g_strcmp0 (encoding, v.decoder_encoding) == 0)
    bin = g_steal_pointer (&v.decoder);
  else
    bin = make_decoder (encoding);
  if (bin == NULL)
    return;
  ghost = gst_element_get_static_pad (bin, "sink");
  if (gst_pad_link (pad, ghost) != GST_PAD_LINK_OK)
    g_printerr ("viewer: cannot link the decoder\n");
  gst_object_unref (ghost);
}

static gboolean
on_bus_message (GstBus * bus, GstMessage * msg, gpointer data)
{
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    g_autoptr (GError) error = NULL;
    g_autofree gchar *debug = NULL;

    gst_message_parse_error (msg, &error, &debug);
    g_printerr ("viewer: pipeline error: %s\n%s\n", error->message,
        debug ? debug : "");
    event_message ("pipeline-error", error->message);
    finish (1);
  }
  return G_SOURCE_CONTINUE;
}

/* libnice's agent searches for a UPnP-IGD router by default: SSDP
 * multicast from a libgupnp-igd thread, whose socket addresses outlive the
 * agent (LeakSanitizer reports them at exit). A viewer needs no port
 * mapping; off before gathering, as mqttwebrtcsink does. */
static void
disable_upnp (GObject * ice)
{
  g_autoptr (GObject) agent = NULL;
  GObjectClass *klass = G_OBJECT_GET_CLASS (ice);

  if (g_object_class_find_property (klass, "agent") != NULL)
    g_object_get (ice, "agent", &agent, NULL);
  if (agent != NULL &&
      g_object_class_find_property (G_OBJECT_GET_CLASS (agent), "upnp"))
    g_object_set (agent, "upnp", FALSE, NULL);
}

/* what webrtcbin creates for its first transport, and what on_pad_added
 * decodes with */
static const gchar *const warm_elements[] = { "dtlssrtpenc",
  "dtlssrtpdec", "nicesrc", "nicesink", "rtpbin", "rtph264depay",
  "h264parse", "avdec_h264", "videoconvert"
};

/* and with --audio */
static const gchar *const warm_audio_elements[] = { "rtpopusdepay",
  "opusdec"
};

static gboolean
build_pipeline (void)
{
  GstWebRTCRTPTransceiver *trans = NULL;
  g_autoptr (GstCaps) caps = NULL;
  GstBus *bus;
  GObject *ice = NULL;
  GstElement *warm;
  gint i;

  /* A browser has its WebRTC code and decoders loaded and makes its
   * (ECDSA) certificate in milliseconds when the page opens; webrtcbin
   * loads the SRTP and ICE plugins and makes an RSA 2048 certificate when
   * the first transport is created, after the offer is sent, and the
   * decoder's plugins load when the stream arrives. Done now, before the
   * clock starts, none of it is counted in the time to the first frame. */
  for (i = 0; i < (gint) G_N_ELEMENTS (warm_elements); i++) {
    warm = gst_element_factory_make (warm_elements[i], NULL);
    if (warm)
      gst_object_unref (gst_object_ref_sink (warm));
  }
  for (i = 0; v.audio && i < (gint) G_N_ELEMENTS (warm_audio_elements); i++) {
    warm = gst_element_factory_make (warm_audio_elements[i], NULL);
    if (warm)
      gst_object_unref (gst_object_ref_sink (warm));
  }

  v.pipeline = gst_pipeline_new ("viewer");
  v.webrtc = gst_element_factory_make ("webrtcbin", "webrtc");
  if (v.webrtc == NULL) {
    g_printerr ("viewer: no webrtcbin (gstreamer1.0-plugins-bad)\n");
    return FALSE;
  }
  g_object_set (v.webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE,
      NULL);
  gst_bin_add (GST_BIN (v.pipeline), v.webrtc);

  g_object_get (v.webrtc, "ice-agent", &ice, NULL);
  if (ice)
    disable_upnp (ice);
  /* libnice skips loopback addresses unless told to use them */
  for (i = 0; v.ice_addresses && v.ice_addresses[i]; i++) {
    gboolean ok = FALSE;

    if (ice)
      g_signal_emit_by_name (ice, "add-local-ip-address", v.ice_addresses[i],
          &ok);
    if (!ok) {
      g_printerr ("viewer: cannot add ICE address %s\n", v.ice_addresses[i]);
      g_clear_object (&ice);
      return FALSE;
    }
  }
  g_clear_object (&ice);

  /* audio first, m-line 0, as browsers often offer it */
  if (v.audio) {
    g_autoptr (GstCaps) audio = gst_caps_from_string (OPUS_CAPS);

    g_signal_emit_by_name (v.webrtc, "add-transceiver",
        GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, audio, &trans);
    g_clear_object (&trans);
    v.video_mline = 1;
  }

  caps = gst_caps_from_string (v.no_h264 ? VP8_CAPS : H264_CAPS);
  /* what browsers add; without it the level must match exactly */
  if (v.level_asymmetry && !v.no_h264)
    gst_caps_set_simple (caps, "level-asymmetry-allowed", G_TYPE_STRING, "1",
        NULL);
  /* webrtcbin offers a=extmap lines from extmap-<id> caps fields */
  if (v.playout_delay_id > 0) {
    g_autofree gchar *field = g_strdup_printf ("extmap-%d",
        v.playout_delay_id);

    gst_caps_set_simple (caps, field, G_TYPE_STRING, PLAYOUT_DELAY_URI, NULL);
  }
  g_signal_emit_by_name (v.webrtc, "add-transceiver",
      GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps, &trans);
  g_clear_object (&trans);

  v.decoder_encoding = v.no_h264 ? "VP8" : "H264";
  v.decoder = make_decoder (v.decoder_encoding);
  g_signal_connect (v.webrtc, "pad-added", G_CALLBACK (on_pad_added), NULL);
  g_signal_connect (v.webrtc, "on-ice-candidate",
      G_CALLBACK (on_ice_candidate), NULL);
  g_signal_connect (v.webrtc, "notify::ice-gathering-state",
      G_CALLBACK (on_state), (gpointer) & gathering_complete);
  g_signal_connect (v.webrtc, "notify::ice-connection-state",
      G_CALLBACK (on_state), (gpointer) & ice_failed);

  bus = gst_element_get_bus (v.pipeline);
  gst_bus_add_watch (bus, on_bus_message, NULL);
  gst_object_unref (bus);

  if (gst_element_set_state (v.pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    g_printerr ("viewer: pipeline does not start\n");
    return FALSE;
  }
  return TRUE;
}

/* Ending */

static gboolean
print_frames (gpointer data)
{
  JsonBuilder *b;
  gint64 gap;

  if (v.t0 == 0 || v.finishing)
    return G_SOURCE_CONTINUE;
  /* a stall still going on counts too */
  g_mutex_lock (&v.gap_lock);
  gap = v.interval_gap_us;
  if (v.last_frame_us != 0)
    gap = MAX (gap, g_get_monotonic_time () - v.last_frame_us);
  v.interval_gap_us = 0;
  g_mutex_unlock (&v.gap_lock);

  b = event_begin ("frames");
  json_builder_set_member_name (b, "count");
  json_builder_add_int_value (b, g_atomic_int_get (&v.frames));
  json_builder_set_member_name (b, "ms");
  json_builder_add_int_value (b, elapsed_ms ());
  json_builder_set_member_name (b, "max_gap_ms");
  json_builder_add_int_value (b, gap / 1000);
  if (v.audio) {
    json_builder_set_member_name (b, "audio_buffers");
    json_builder_add_int_value (b, g_atomic_int_get (&v.audio_buffers));
  }
  event_end (b);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_timeout (gpointer data)
{
  if (!v.finishing) {
    event_simple ("timeout", TRUE);
    finish (1);
  }
  return G_SOURCE_REMOVE;
}

static gboolean
on_unix_signal (gpointer data)
{
  if (!v.finishing)
    finish (v.target_reached ? 0 : 1);
  return G_SOURCE_CONTINUE;
}

static void
finish (gint exit_code)
{
  JsonBuilder *b;

  if (v.finishing)
    return;
  v.finishing = TRUE;
  v.exit_code = exit_code;

  if (!v.no_bye && !v.raw && v.offer_sent) {
    gint mid = 0;
    gint64 deadline = g_get_monotonic_time () + G_TIME_SPAN_SECOND;

    publish_type_only ("bye", &mid);
    g_atomic_int_set (&v.bye_mid, mid);
    /* the bye must reach the broker before we disconnect */
    while (!g_atomic_int_get (&v.bye_published) &&
        g_get_monotonic_time () < deadline)
      g_usleep (10 * 1000);
  }

  b = event_begin ("done");
  json_builder_set_member_name (b, "frames");
  json_builder_add_int_value (b, g_atomic_int_get (&v.frames));
  json_builder_set_member_name (b, "width");
  json_builder_add_int_value (b, v.width);
  json_builder_set_member_name (b, "height");
  json_builder_add_int_value (b, v.height);
  json_builder_set_member_name (b, "remote_candidates");
  json_builder_add_int_value (b, v.remote_candidates);
  json_builder_set_member_name (b, "max_gap_ms");
  g_mutex_lock (&v.gap_lock);
  json_builder_add_int_value (b, v.max_gap_us / 1000);
  g_mutex_unlock (&v.gap_lock);
  json_builder_set_member_name (b, "rtp_packets");
  json_builder_add_int_value (b, g_atomic_int_get (&v.rtp_packets));
  json_builder_set_member_name (b, "ext_packets");
  json_builder_add_int_value (b, g_atomic_int_get (&v.ext_packets));
  json_builder_set_member_name (b, "playout_delay_packets");
  json_builder_add_int_value (b, g_atomic_int_get (&v.playout_delay_packets));
  json_builder_set_member_name (b, "playout_delay_min_ms");
  json_builder_add_int_value (b, g_atomic_int_get (&v.playout_delay) >> 16);
  json_builder_set_member_name (b, "playout_delay_max_ms");
  json_builder_add_int_value (b, g_atomic_int_get (&v.playout_delay) & 0xffff);
  /* with --audio: what the answer said of the audio m-line, the decoded
   * buffers and their peak (a fraction of full scale) */
  if (v.audio) {
    json_builder_set_member_name (b, "audio");
    json_builder_add_string_value (b, v.answer_audio ? v.answer_audio : "");
    json_builder_set_member_name (b, "audio_rtp_packets");
    json_builder_add_int_value (b, g_atomic_int_get (&v.audio_rtp_packets));
    json_builder_set_member_name (b, "audio_buffers");
    json_builder_add_int_value (b, g_atomic_int_get (&v.audio_buffers));
    json_builder_set_member_name (b, "audio_peak");
    json_builder_add_double_value (b,
        g_atomic_int_get (&v.audio_peak) / 32768.0);
  }
  json_builder_set_member_name (b, "exit");
  json_builder_add_int_value (b, exit_code);
  event_end (b);
  g_main_loop_quit (v.loop);
}

/* Options */

static gboolean
parse_broker (const gchar * uri)
{
  const gchar *rest;
  const gchar *colon;

  if (g_str_has_prefix (uri, "mqtt://")) {
    rest = uri + strlen ("mqtt://");
  } else if (g_str_has_prefix (uri, "mqtts://")) {
    rest = uri + strlen ("mqtts://");
    v.broker_tls = TRUE;
  } else {
    return FALSE;
  }
  colon = strrchr (rest, ':');
  if (colon) {
    gchar *end = NULL;
    gint64 port = g_ascii_strtoll (colon + 1, &end, 10);

    if (end == colon + 1 || *end != '\0' || port <= 0 || port > 65535)
      return FALSE;
    v.broker_port = port;
    v.broker_host = g_strndup (rest, colon - rest);
  } else {
    v.broker_port = v.broker_tls ? 8883 : 1883;
    v.broker_host = g_strdup (rest);
  }
  return v.broker_host[0] != '\0';
}

static gchar *
random_session (void)
{
  GString *s = g_string_new (NULL);
  gint i;

  for (i = 0; i < 32; i++)
    g_string_append_c (s, "0123456789abcdef"[g_random_int_range (0, 16)]);
  return g_string_free (s, FALSE);
}

static gboolean
parse_options (int argc, char **argv)
{
  g_autofree gchar *broker = NULL;
  g_autofree gchar *raw_file = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GOptionContext) ctx = NULL;
  GOptionEntry entries[] = {
    {"broker", 0, 0, G_OPTION_ARG_STRING, &broker,
        "Broker URI (mqtt://HOST:PORT, mqtts://HOST:PORT for TLS)", "URI"},
    {"username", 0, 0, G_OPTION_ARG_STRING, &v.username, "MQTT user name",
        "U"},
    {"password", 0, 0, G_OPTION_ARG_STRING, &v.password, "MQTT password",
        "P"},
    {"ca-file", 0, 0, G_OPTION_ARG_FILENAME, &v.ca_file,
        "CA certificate to check an mqtts:// broker with (default: the "
          "system's)", "F"},
    {"device", 0, 0, G_OPTION_ARG_STRING, &v.device, "Device id", "D"},
    {"prefix", 0, 0, G_OPTION_ARG_STRING, &v.prefix,
        "Topic prefix (default picamrtc)", "P"},
    {"session", 0, 0, G_OPTION_ARG_STRING, &v.session,
        "Session id (default: random)", "S"},
    {"trickle", 0, 0, G_OPTION_ARG_NONE, &v.trickle, "Trickle ICE", NULL},
    {"stats", 0, 0, G_OPTION_ARG_NONE, &v.stats,
        "Ask the device for stats messages (\"stats\": true)", NULL},
    {"frames", 0, 0, G_OPTION_ARG_INT, &v.frames_target,
        "Succeed once N frames are decoded", "N"},
    {"timeout", 0, 0, G_OPTION_ARG_INT, &v.timeout_s,
        "Fail after SEC seconds (default 30)", "SEC"},
    {"ice-address", 0, 0, G_OPTION_ARG_STRING_ARRAY, &v.ice_addresses,
        "Local ICE address (repeatable)", "IP"},
    {"hold", 0, 0, G_OPTION_ARG_INT, &v.hold_s,
        "Keep running SEC seconds after --frames is reached", "SEC"},
    {"no-h264", 0, 0, G_OPTION_ARG_NONE, &v.no_h264, "Offer VP8 only", NULL},
    {"level-asymmetry-allowed", 0, 0, G_OPTION_ARG_NONE, &v.level_asymmetry,
        "Offer H.264 with level-asymmetry-allowed=1, as browsers do", NULL},
    {"raw", 0, 0, G_OPTION_ARG_STRING, &v.raw,
        "Publish PAYLOAD to in/S, print one reply", "PAYLOAD"},
    {"raw-file", 0, 0, G_OPTION_ARG_FILENAME, &raw_file,
        "Like --raw, the payload read from FILE", "FILE"},
    {"expect-error", 0, 0, G_OPTION_ARG_STRING, &v.expect_error,
        "Succeed on an error reply with CODE", "CODE"},
    {"no-bye", 0, 0, G_OPTION_ARG_NONE, &v.no_bye,
        "Do not send bye at the end", NULL},
    {"wait-online", 0, 0, G_OPTION_ARG_NONE, &v.wait_online,
        "Send the offer only once the device's status says online", NULL},
    {"no-decode", 0, 0, G_OPTION_ARG_NONE, &v.no_decode,
        "Count H.264 frames without decoding them (\"frames\" are access "
          "units)", NULL},
    {"playout-delay-extmap", 0, 0, G_OPTION_ARG_INT, &v.playout_delay_id,
          "Offer the playout-delay RTP header extension with id ID (1-14)",
        "ID"},
    {"relay", 0, 0, G_OPTION_ARG_STRING, &v.relay,
          "Watch through Janus at URL (http://HOST:PORT/janus[?apisecret=S]):"
          " ask the device for its relay, subscribe to its feed",
        "URL"},
    {"count", 0, 0, G_OPTION_ARG_INT, &v.count,
          "With --relay: run N viewers in this process (default 1)", "N"},
    {"stagger-ms", 0, 0, G_OPTION_ARG_INT, &v.stagger_ms,
          "With --count: start one viewer every MS ms (default 100)", "MS"},
    {"audio", 0, 0, G_OPTION_ARG_NONE, &v.audio,
          "Also offer a recvonly Opus audio m-line (first, before the "
          "video), decode the audio and report it (see below)", NULL},
    {NULL}
  };

  v.timeout_s = 30;
  v.count = 1;
  v.stagger_ms = 100;
  ctx = g_option_context_new ("- picamrtc MQTT test viewer");
  g_option_context_set_description (ctx,
      "With --audio the \"answer\" event says how the device answered the "
      "audio m-line\n(\"audio\": sendonly, inactive, rejected, none...) and "
      "\"done\" reports \"audio_buffers\"\n(decoded) and \"audio_peak\" "
      "(their largest sample, 1.0 = full scale). When the\nanswer sends "
      "audio (sendonly or sendrecv), the viewer fails (exit 1, an\n"
      "\"audio-failed\" event) if, when the --frames target is reached, "
      "fewer than\n" G_STRINGIFY (AUDIO_MIN_BUFFERS) " audio buffers were "
      "decoded or their peak is below "
      G_STRINGIFY (AUDIO_MIN_PEAK) " (silence).\nWhen the answer does not "
      "send audio (inactive, rejected: a device without\naudio), 0 audio "
      "buffers are fine and only the video counts.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    g_printerr ("viewer: %s\n", error->message);
    return FALSE;
  }
  if (argc > 1) {
    g_printerr ("viewer: unexpected argument %s\n", argv[1]);
    return FALSE;
  }
  if (broker == NULL || !parse_broker (broker)) {
    g_printerr ("viewer: --broker mqtt://HOST:PORT or mqtts://HOST:PORT "
        "is required\n");
    return FALSE;
  }
  if (v.password && !v.username) {
    g_printerr ("viewer: --password needs --username\n");
    return FALSE;
  }
  if (v.ca_file && !v.broker_tls) {
    g_printerr ("viewer: --ca-file needs an mqtts:// broker\n");
    return FALSE;
  }
  if (v.device == NULL) {
    g_printerr ("viewer: --device is required\n");
    return FALSE;
  }
  if (v.playout_delay_id < 0 || v.playout_delay_id > 14) {
    g_printerr ("viewer: --playout-delay-extmap takes 1 .. 14\n");
    return FALSE;
  }
  if (raw_file) {
    if (v.raw) {
      g_printerr ("viewer: --raw and --raw-file exclude each other\n");
      return FALSE;
    }
    if (!g_file_get_contents (raw_file, &v.raw, &v.raw_len, &error)) {
      g_printerr ("viewer: %s\n", error->message);
      return FALSE;
    }
  } else if (v.raw) {
    v.raw_len = strlen (v.raw);
  }
  if (v.prefix == NULL)
    v.prefix = g_strdup ("picamrtc");
  v.session_given = v.session != NULL;
  /* any session is allowed, so tests can probe invalid ones */
  if (v.session == NULL)
    v.session = random_session ();
  if (v.session[0] == '\0' || strpbrk (v.session, "/+#")) {
    g_printerr ("viewer: --session must be a single topic level\n");
    return FALSE;
  }
  if (v.wait_online && (v.trickle || v.raw)) {
    /* trickled candidates would go out before the held offer */
    g_printerr ("viewer: --wait-online works with bulk offers only\n");
    return FALSE;
  }
  if (v.relay && (v.raw || v.audio || v.no_h264 || v.wait_online ||
          v.stats || v.playout_delay_id || v.level_asymmetry)) {
    /* Janus offers and the device is not asked for media */
    g_printerr ("viewer: --relay takes none of --raw, --audio, --no-h264, "
        "--wait-online, --stats, --playout-delay-extmap, "
        "--level-asymmetry-allowed\n");
    return FALSE;
  }
  if (v.count < 1 || v.count > 500 || v.stagger_ms < 0 ||
      (v.count > 1 && !v.relay)) {
    g_printerr ("viewer: --count takes 1 .. 500, with --relay only\n");
    return FALSE;
  }
  if (v.timeout_s <= 0 || v.frames_target < 0 || v.hold_s < 0) {
    g_printerr ("viewer: --timeout, --frames and --hold must be >= 0\n");
    return FALSE;
  }
  return TRUE;
}

int
main (int argc, char **argv)
{
  int rc;

  gst_init (NULL, NULL);
  GST_DEBUG_CATEGORY_INIT (viewer_debug, "pcr-test-viewer", 0,
      "picamrtc test viewer");
  if (!parse_options (argc, argv))
    return 2;
  if (v.relay) {
    RelayOptions o = { 0 };

    o.relay = v.relay;
    o.broker_host = v.broker_host;
    o.broker_port = v.broker_port;
    o.broker_tls = v.broker_tls;
    o.username = v.username;
    o.password = v.password;
    o.ca_file = v.ca_file;
    o.device = v.device;
    o.prefix = v.prefix;
    o.session = v.session_given ? v.session : NULL;
    o.ice_addresses = v.ice_addresses;
    o.trickle = v.trickle;
    o.no_decode = v.no_decode;
    o.frames_target = v.frames_target;
    o.timeout_s = v.timeout_s;
    o.hold_s = v.hold_s;
    o.count = v.count;
    o.stagger_ms = v.stagger_ms;
    o.expect_error = v.expect_error;
    o.no_bye = v.no_bye;
    return relay_main (&o);
  }

  v.context = g_main_context_default ();
  v.loop = g_main_loop_new (v.context, FALSE);
  v.topic_in = g_strdup_printf ("%s/%s/in/%s", v.prefix, v.device, v.session);
  v.topic_out = g_strdup_printf ("%s/%s/out/%s", v.prefix, v.device, v.session);
  if (v.wait_online)
    v.topic_status = g_strdup_printf ("%s/%s/status", v.prefix, v.device);

  if (!v.raw && !build_pipeline ())
    return 1;

  mosquitto_lib_init ();
  v.mosq = mosquitto_new (NULL, true, NULL);
  mosquitto_connect_callback_set (v.mosq, on_connect);
  mosquitto_disconnect_callback_set (v.mosq, on_disconnect);
  mosquitto_subscribe_callback_set (v.mosq, on_subscribe);
  mosquitto_message_callback_set (v.mosq, on_message);
  mosquitto_publish_callback_set (v.mosq, on_publish);
  if (v.username) {
    rc = mosquitto_username_pw_set (v.mosq, v.username, v.password);
    if (rc != MOSQ_ERR_SUCCESS) {
      g_printerr ("viewer: bad MQTT credentials: %s\n",
          mosquitto_strerror (rc));
      return 1;
    }
  }
  if (v.broker_tls) {
    /* checks the broker's certificate and its name (or IP address) */
    rc = mosquitto_tls_set (v.mosq, v.ca_file,
        v.ca_file ? NULL : "/etc/ssl/certs", NULL, NULL, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
      g_printerr ("viewer: cannot set up TLS with %s: %s\n",
          v.ca_file ? v.ca_file : "the system's CAs", mosquitto_strerror (rc));
      return 1;
    }
  }
  rc = mosquitto_connect_async (v.mosq, v.broker_host, v.broker_port, 30);
  if (rc == MOSQ_ERR_SUCCESS)
    rc = mosquitto_loop_start (v.mosq);
  if (rc != MOSQ_ERR_SUCCESS) {
    g_printerr ("viewer: cannot connect to %s:%d: %s\n", v.broker_host,
        v.broker_port, mosquitto_strerror (rc));
    return 1;
  }

  g_timeout_add_seconds (v.timeout_s, on_timeout, NULL);
  g_timeout_add_seconds (1, print_frames, NULL);
  g_unix_signal_add (SIGINT, on_unix_signal, NULL);
  g_unix_signal_add (SIGTERM, on_unix_signal, NULL);

  g_main_loop_run (v.loop);

  mosquitto_disconnect (v.mosq);
  mosquitto_loop_stop (v.mosq, false);
  mosquitto_destroy (v.mosq);
  mosquitto_lib_cleanup ();
  if (v.pipeline) {
    gst_element_set_state (v.pipeline, GST_STATE_NULL);
    gst_object_unref (v.pipeline);
  }
  g_main_loop_unref (v.loop);
  return v.exit_code;
}
