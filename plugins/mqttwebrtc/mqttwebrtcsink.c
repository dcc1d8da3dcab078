/* mqttwebrtcsink: encoded H.264 in, any number of WebRTC viewers out,
 * signalled over MQTT (the contract in DESIGN.md section 3). The encoder runs
 * once; each viewer gets its own payloader (its own payload type, read from
 * its offer) and its own webrtcbin behind a leaky queue on a tee.
 *
 * Threads: libmosquitto, webrtcbin and streaming threads only copy what they
 * got and post it to the element's own GMainContext, run by its own thread
 * from NULL->READY to READY->NULL. Everything about sessions happens there.
 *
 * ```
 *  ,-------------------------- mqttwebrtcsink -----------------------------------.
 *  |                                       ,-> fakesink (keeps EOS and the tee)  |
 * sink -> capsfilter -> h264parse -> tee -+-> queue -> rtph264pay -> webrtcbin    |  viewer 1
 *  |   (baseline)   (config-interval=-1)  '-> queue -> rtph264pay -> webrtcbin    |  viewer 2
 *  |                     ^ force-key-unit events (new viewer, PLI, FIR),     |
 *  |                       rate-limited on h264parse's src pad               |
 *  '------------------------------------------------------------------------'
 * ```
 */
#include "config.h"

#include "mqttwebrtcsink.h"

#include <string.h>
#include <gio/gio.h>
#include <gst/sdp/sdp.h>
#include <gst/video/video.h>
#include <gst/rtp/rtp.h>
#include <gst/webrtc/webrtc.h>

#include "pcr-config.h"
#include "pcr-message.h"
#include "pcr-mqtt.h"
#include "pcr-sdp.h"
#include "rtphdrextplayoutdelay.h"

GST_DEBUG_CATEGORY_STATIC (mqttwebrtcsink_debug);
#define GST_CAT_DEFAULT mqttwebrtcsink_debug

#define DEFAULT_BROKER_URI "mqtt://127.0.0.1:1883"
#define DEFAULT_DEVICE_ID "cam1"
#define DEFAULT_TOPIC_PREFIX PCR_DEFAULT_TOPIC_PREFIX
#define DEFAULT_MAX_VIEWERS 8
#define MAX_MAX_VIEWERS 64
#define DEFAULT_CAMERA_STATE "online"
/* Off: on the latency benchmark (headless Chromium, loopback) a single
 * viewer shows frames about 13 ms later on average with 0 (Chromium's
 * low-latency renderer), while five viewers sharing the CPU gain 60 ms
 * (docs/benchmarks.md). */
#define DEFAULT_PLAYOUT_DELAY_MAX_MS -1

/* A new key frame at most this often, however many viewers ask. */
#define KEY_UNIT_INTERVAL_US (500 * G_TIME_SPAN_MILLISECOND)
/* A connected viewer that sends no RTCP this long is gone. */
#define RTCP_TIMEOUT_S 10
/* A viewer whose ICE/DTLS does not complete this long after its offer is
 * gone (a real one, even through TURN, connects in a few seconds); with the
 * 1 s housekeeping tick it is reaped within 13 s. */
#define CONNECT_TIMEOUT_US (12 * G_TIME_SPAN_SECOND)
/* Bulk mode: answer with what was gathered after this long. */
#define GATHER_TIMEOUT_US (5 * G_TIME_SPAN_SECOND)
#define MAX_REMOTE_CANDIDATES 64
#define MAX_MLINE_INDEX 15
#define STOP_TIMEOUT_US (5 * G_TIME_SPAN_SECOND)

enum
{
  PROP_0,
  PROP_BROKER_URI,
  PROP_USERNAME,
  PROP_PASSWORD,
  PROP_CA_FILE,
  PROP_DEVICE_ID,
  PROP_TOPIC_PREFIX,
  PROP_MAX_VIEWERS,
  PROP_STUN_SERVER,
  PROP_TURN_SERVER,
  PROP_ICE_ADDRESSES,
  PROP_CAMERA_STATE,
  PROP_VIEWERS,
  PROP_PLAYOUT_DELAY_MAX_MS,
  N_PROPERTIES
};

static GParamSpec *properties[N_PROPERTIES];

/* What webrtcbin's and rtpbin's threads may touch: immutable apart from the
 * atomic RTCP stamp, refcounted so a late callback never sees freed memory. */
typedef struct
{
  gint refcount;
  PcrMqttWebrtcSink *self;      /* no ref: the context dies before self */
  gchar *id;
  gint last_rtcp_s;             /* monotonic seconds, atomic */
} Peer;

/* One viewer; only touched on the element's context. */
typedef struct
{
  Peer *peer;
  const gchar *id;              /* peer->id */
  gboolean trickle;
  guint mline;
  GstElement *queue, *pay, *webrtc;
  GstPad *tee_pad;
  gulong idle_probe;
  gint64 created_us;
  gint64 answer_set_us;         /* 0 until the local description is set */
  gboolean answer_sent;
  gboolean gathering_done;
  gboolean connected;
  guint remote_candidates;
  GStrv mids;                   /* the offer's a=mid per m-line ("" if none) */
} Session;

struct _PcrMqttWebrtcSink
{
  GstBin parent;

  GstElement *filter, *parse, *tee, *fakesink;
  GstPad *parse_src;
  gchar *missing;               /* a factory we could not make, or NULL */

  /* properties, under the object lock */
  gchar *broker_uri, *username, *password, *ca_file;
  gchar *device_id, *topic_prefix;
  gchar *stun_server, *turn_server, *ice_addresses;
  gchar *camera_state;
  guint max_viewers;
  guint viewers;
  gint playout_delay_max_ms;
  gboolean streaming;

  /* stream facts from the caps, under the object lock */
  gint width, height, fps_n, fps_d;
  PcrH264Profile profile;

  /* key-frame rate limit, under the object lock */
  gint64 last_key_unit_us;

  /* the I/O side: context and thread live from NULL->READY to READY->NULL */
  GMainContext *context;
  GMainLoop *loop;
  GThread *thread;
  GSource *housekeeping;
  GSource *key_unit_timer;      /* a deferred key-unit request */
  PcrMqtt *mqtt;
  gchar *run_prefix, *run_device;       /* snapshot at start */
  gchar *status_topic;

  /* context thread only */
  GHashTable *sessions;         /* id -> Session */

  /* removals under way (IDLE probe posted, branch not yet freed) */
  GMutex lock;
  GCond cond;
  GList *removing;              /* Session*, under lock */
};

#define pcr_mqtt_webrtc_sink_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (PcrMqttWebrtcSink, pcr_mqtt_webrtc_sink,
    GST_TYPE_BIN, GST_DEBUG_CATEGORY_INIT (mqttwebrtcsink_debug,
        "mqttwebrtcsink", 0, "WebRTC fan-out signalled over MQTT"));
GST_ELEMENT_REGISTER_DEFINE (mqttwebrtcsink, "mqttwebrtcsink", GST_RANK_NONE,
    PCR_TYPE_MQTT_WEBRTC_SINK);

/* Every browser decodes constrained baseline (Firefox's OpenH264 nothing
 * else), and it has no B-frames. Saying so in a capsfilter makes an
 * encoder that follows downstream caps produce it: a bare x264enc would
 * otherwise pick High 4:4:4, which no browser decodes. */
#define SINK_CAPS "video/x-h264, stream-format=(string)byte-stream, " \
    "alignment=(string)au, profile=(string){ constrained-baseline, baseline }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (SINK_CAPS));

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

static Peer *
peer_ref (Peer * peer)
{
  g_atomic_int_inc (&peer->refcount);
  return peer;
}

static void
peer_unref (Peer * peer)
{
  if (g_atomic_int_dec_and_test (&peer->refcount)) {
    g_free (peer->id);
    g_free (peer);
  }
}

static void
peer_closure_unref (gpointer data, GClosure * closure)
{
  peer_unref (data);
}

static gint
monotonic_s (void)
{
  return (gint) (g_get_monotonic_time () / G_USEC_PER_SEC);
}

/* Runs @func on the element's context (style rule 5: never
 * g_main_context_invoke, which may run it on the calling thread). */
static void
post (PcrMqttWebrtcSink * self, GSourceFunc func, gpointer data,
    GDestroyNotify notify)
{
  GSource *source = g_idle_source_new ();

  g_source_set_callback (source, func, data, notify);
  g_source_attach (source, self->context);
  g_source_unref (source);
}

static void
publish_message (PcrMqttWebrtcSink * self, const gchar * id,
    const PcrMessage * msg)
{
  g_autofree gchar *topic = NULL;
  g_autofree gchar *json = NULL;
  gsize len;

  if (!self->mqtt)
    return;
  topic = pcr_topic_build (self->run_prefix, self->run_device, "out", id);
  json = pcr_message_to_json (msg, &len);
  pcr_mqtt_publish (self->mqtt, topic, json, len, FALSE);
}

static void
reply_error (PcrMqttWebrtcSink * self, const gchar * id, PcrErrorCode code,
    const gchar * message)
{
  g_autoptr (PcrMessage) msg = pcr_message_new_error (code, message);

  GST_WARNING_OBJECT (self, "session %s: %s: %s", id,
      pcr_error_code_to_string (code), message);
  publish_message (self, id, msg);
}

static gchar *
status_json (PcrMqttWebrtcSink * self, gboolean online)
{
  GString *s = g_string_new ("{");

  GST_OBJECT_LOCK (self);
  g_string_append_printf (s, "\"state\":\"%s\",\"viewers\":%u,"
      "\"maxViewers\":%u,\"codec\":\"H264\"",
      online ? self->camera_state : "offline", online ? self->viewers : 0,
      self->max_viewers);
  if (self->width > 0 && self->height > 0)
    g_string_append_printf (s, ",\"width\":%d,\"height\":%d", self->width,
        self->height);
  if (self->fps_n > 0 && self->fps_d > 0)
    g_string_append_printf (s, ",\"framerate\":%g",
        (gdouble) self->fps_n / self->fps_d);
  GST_OBJECT_UNLOCK (self);
  g_string_append_c (s, '}');
  return g_string_free (s, FALSE);
}

static void
publish_status (PcrMqttWebrtcSink * self)
{
  g_autofree gchar *json = NULL;

  if (!self->mqtt || !pcr_mqtt_is_connected (self->mqtt))
    return;
  json = status_json (self, TRUE);
  GST_DEBUG_OBJECT (self, "status %s", json);
  pcr_mqtt_publish (self->mqtt, self->status_topic, json, strlen (json), TRUE);
}

static gboolean
publish_status_cb (gpointer data)
{
  publish_status (data);
  return G_SOURCE_REMOVE;
}

static void
set_viewers (PcrMqttWebrtcSink * self, guint viewers)
{
  GST_OBJECT_LOCK (self);
  self->viewers = viewers;
  GST_OBJECT_UNLOCK (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_VIEWERS]);
  publish_status (self);
}

static void request_key_unit (PcrMqttWebrtcSink * self);

static gboolean
key_unit_timer_cb (gpointer data)
{
  PcrMqttWebrtcSink *self = data;

  g_clear_pointer (&self->key_unit_timer, g_source_unref);
  request_key_unit (self);
  return G_SOURCE_REMOVE;
}

/* Asks upstream for a key frame for a viewer that just connected (context
 * thread). The probe on h264parse's src pad drops requests inside the rate
 * limit, which is right for PLI/FIR (the browser asks again) but would make
 * a new viewer wait a whole GOP: so a request inside the window is
 * deferred to its end instead, one for all viewers that arrive meanwhile. */
static void
request_key_unit (PcrMqttWebrtcSink * self)
{
  gint64 wait_us;

  if (self->key_unit_timer)
    return;
  GST_OBJECT_LOCK (self);
  wait_us = self->last_key_unit_us ? self->last_key_unit_us +
      KEY_UNIT_INTERVAL_US - g_get_monotonic_time () : 0;
  GST_OBJECT_UNLOCK (self);
  if (wait_us > 0) {
    self->key_unit_timer = g_timeout_source_new (wait_us / 1000 + 1);
    g_source_set_callback (self->key_unit_timer, key_unit_timer_cb, self, NULL);
    g_source_attach (self->key_unit_timer, self->context);
    return;
  }
  gst_pad_send_event (self->parse_src,
      gst_video_event_new_upstream_force_key_unit (GST_CLOCK_TIME_NONE, TRUE,
          0));
}

static GstPadProbeReturn
parse_src_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);

  if (GST_EVENT_TYPE (event) == GST_EVENT_CAPS) {
    GstCaps *caps;
    GstStructure *s;
    gint w = 0, h = 0, fn = 0, fd = 0;
    gboolean changed;
    PcrH264Profile profile;

    gst_event_parse_caps (event, &caps);
    s = gst_caps_get_structure (caps, 0);
    gst_structure_get_int (s, "width", &w);
    gst_structure_get_int (s, "height", &h);
    gst_structure_get_fraction (s, "framerate", &fn, &fd);
    profile = pcr_h264_profile_from_string (gst_structure_get_string (s,
            "profile"));
    GST_OBJECT_LOCK (self);
    changed = self->width != w || self->height != h || self->fps_n != fn ||
        self->fps_d != fd;
    self->width = w;
    self->height = h;
    self->fps_n = fn;
    self->fps_d = fd;
    self->profile = profile;
    GST_OBJECT_UNLOCK (self);
    if (changed && self->context)
      post (self, publish_status_cb, self, NULL);
  } else if (GST_EVENT_TYPE (event) == GST_EVENT_CUSTOM_UPSTREAM &&
      gst_video_event_is_force_key_unit (event)) {
    /* Only requests count: the downstream event that marks the key frame
     * itself passes untouched and does not restart the window. */
    gint64 now = g_get_monotonic_time ();
    gboolean drop;

    GST_OBJECT_LOCK (self);
    drop = self->last_key_unit_us != 0 &&
        now - self->last_key_unit_us < KEY_UNIT_INTERVAL_US;
    if (!drop)
      self->last_key_unit_us = now;
    GST_OBJECT_UNLOCK (self);
    GST_DEBUG_OBJECT (self, "%s key unit request",
        drop ? "dropping" : "forwarding");
    if (drop)
      return GST_PAD_PROBE_DROP;
  }
  return GST_PAD_PROBE_OK;
}

/* ------------------------------------------------------------------------
 * Removing a viewer: IDLE probe on the tee pad unlinks, then the context
 * sets the branch to NULL and removes it (style rule 11).
 * ------------------------------------------------------------------------ */

static const gchar *
session_mid (Session * session, guint mline)
{
  if (!session->mids || mline >= g_strv_length (session->mids) ||
      !*session->mids[mline])
    return NULL;
  return session->mids[mline];
}

static void
session_free (Session * session)
{
  g_strfreev (session->mids);
  peer_unref (session->peer);
  g_free (session);
}

static void
finish_removal (PcrMqttWebrtcSink * self, Session * session)
{
  GstElement *elements[] = { session->webrtc, session->pay, session->queue };
  guint i;

  GST_DEBUG_OBJECT (self, "freeing the branch of session %s", session->id);
  if (session->tee_pad) {
    gst_element_release_request_pad (self->tee, session->tee_pad);
    gst_clear_object (&session->tee_pad);
  }
  for (i = 0; i < G_N_ELEMENTS (elements); i++) {
    if (!elements[i])
      continue;
    gst_element_set_locked_state (elements[i], TRUE);
    gst_element_set_state (elements[i], GST_STATE_NULL);
    gst_bin_remove (GST_BIN (self), elements[i]);
  }
  gst_clear_object (&session->webrtc);
  gst_clear_object (&session->pay);
  gst_clear_object (&session->queue);

  g_mutex_lock (&self->lock);
  self->removing = g_list_remove (self->removing, session);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  session_free (session);
}

typedef struct
{
  PcrMqttWebrtcSink *self;
  Session *session;
} Removal;

static gboolean
finish_removal_cb (gpointer data)
{
  Removal *removal = data;

  finish_removal (removal->self, removal->session);
  return G_SOURCE_REMOVE;
}

static GstPadProbeReturn
tee_pad_idle (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Removal *removal = user_data;
  GstPad *peer = gst_pad_get_peer (pad);

  if (peer) {
    gst_pad_unlink (pad, peer);
    gst_object_unref (peer);
  }
  /* State changes and bin removal happen on the context, not here. */
  post (removal->self, finish_removal_cb, g_memdup2 (removal,
          sizeof (Removal)), g_free);
  return GST_PAD_PROBE_REMOVE;
}

static void
remove_session (PcrMqttWebrtcSink * self, Session * session,
    gboolean send_bye, const gchar * why)
{
  Removal removal = { self, session };

  GST_INFO_OBJECT (self, "removing session %s: %s", session->id, why);
  g_hash_table_steal (self->sessions, session->id);
  if (send_bye) {
    g_autoptr (PcrMessage) bye = pcr_message_new_bye ();

    publish_message (self, session->id, bye);
  }
  if (session->webrtc)
    g_signal_handlers_disconnect_by_data (session->webrtc, session->peer);

  g_mutex_lock (&self->lock);
  self->removing = g_list_prepend (self->removing, session);
  g_mutex_unlock (&self->lock);

  if (session->tee_pad)
    session->idle_probe = gst_pad_add_probe (session->tee_pad,
        GST_PAD_PROBE_TYPE_IDLE, tee_pad_idle, g_memdup2 (&removal,
            sizeof (Removal)), g_free);
  else
    post (self, finish_removal_cb, g_memdup2 (&removal, sizeof (Removal)),
        g_free);

  set_viewers (self, g_hash_table_size (self->sessions));
}

static Session *
lookup_session (PcrMqttWebrtcSink * self, const gchar * id)
{
  return id ? g_hash_table_lookup (self->sessions, id) : NULL;
}

/* ------------------------------------------------------------------------
 * webrtcbin callbacks: foreign threads, copy and post.
 * ------------------------------------------------------------------------ */

typedef enum
{
  EV_LOCAL_CANDIDATE,
  EV_GATHERING_DONE,
  EV_CONNECTION,
  EV_ANSWER,
} EventKind;

typedef struct
{
  PcrMqttWebrtcSink *self;
  gchar *id;
  EventKind kind;
  guint mline;
  gchar *text;                  /* candidate, answer SDP, or error text */
  gboolean failed;
  gboolean connected;
} PeerEvent;

static void
peer_event_free (PeerEvent * ev)
{
  g_free (ev->id);
  g_free (ev->text);
  g_free (ev);
}

static gboolean handle_peer_event (gpointer data);

static void
post_peer_event (Peer * peer, PeerEvent * ev)
{
  ev->self = peer->self;
  ev->id = g_strdup (peer->id);
  post (peer->self, handle_peer_event, ev, (GDestroyNotify) peer_event_free);
}

static void
on_ice_candidate (GstElement * webrtc, guint mline, const gchar * candidate,
    Peer * peer)
{
  PeerEvent *ev = g_new0 (PeerEvent, 1);

  ev->kind = EV_LOCAL_CANDIDATE;
  ev->mline = mline;
  ev->text = g_strdup (candidate);
  post_peer_event (peer, ev);
}

static void
on_gathering_state (GstElement * webrtc, GParamSpec * pspec, Peer * peer)
{
  GstWebRTCICEGatheringState state;
  PeerEvent *ev;

  g_object_get (webrtc, "ice-gathering-state", &state, NULL);
  if (state != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE)
    return;
  ev = g_new0 (PeerEvent, 1);
  ev->kind = EV_GATHERING_DONE;
  post_peer_event (peer, ev);
}

static void
on_connection_state (GstElement * webrtc, GParamSpec * pspec, Peer * peer)
{
  GstWebRTCPeerConnectionState pc;
  GstWebRTCICEConnectionState ice;
  PeerEvent *ev = g_new0 (PeerEvent, 1);

  g_object_get (webrtc, "connection-state", &pc, "ice-connection-state",
      &ice, NULL);
  ev->kind = EV_CONNECTION;
  ev->connected = pc == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED ||
      ice == GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED ||
      ice == GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED;
  ev->failed = pc == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED ||
      ice == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED;
  GST_DEBUG ("session %s: connection-state %d ice-connection-state %d",
      peer->id, pc, ice);
  post_peer_event (peer, ev);
}

static void
on_ssrc_active (GstElement * rtpbin, guint session, guint ssrc, Peer * peer)
{
  g_atomic_int_set (&peer->last_rtcp_s, monotonic_s ());
}

static void
on_answer_created (GstPromise * promise, gpointer user_data)
{
  Peer *peer = user_data;
  const GstStructure *reply;
  GstWebRTCSessionDescription *answer = NULL;
  PeerEvent *ev = g_new0 (PeerEvent, 1);

  ev->kind = EV_ANSWER;
  reply = gst_promise_get_reply (promise);
  if (reply && gst_structure_get (reply, "answer",
          GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer, NULL) && answer) {
    ev->text = gst_sdp_message_as_text (answer->sdp);
    gst_webrtc_session_description_free (answer);
  } else {
    GError *error = NULL;

    if (reply)
      gst_structure_get (reply, "error", G_TYPE_ERROR, &error, NULL);
    ev->failed = TRUE;
    ev->text = g_strdup (error ? error->message : "webrtcbin made no answer");
    g_clear_error (&error);
  }
  post_peer_event (peer, ev);
}

/* ------------------------------------------------------------------------
 * The context side of a viewer's life.
 * ------------------------------------------------------------------------ */

static void
send_answer_sdp (PcrMqttWebrtcSink * self, Session * session)
{
  GstWebRTCSessionDescription *desc = NULL;
  g_autofree gchar *text = NULL;
  g_autoptr (PcrMessage) msg = NULL;

  g_object_get (session->webrtc, "local-description", &desc, NULL);
  if (!desc) {
    reply_error (self, session->id, PCR_ERROR_INTERNAL,
        "no local description to send");
    remove_session (self, session, FALSE, "no local description");
    return;
  }
  text = gst_sdp_message_as_text (desc->sdp);
  gst_webrtc_session_description_free (desc);
  msg = pcr_message_new_answer (text);
  publish_message (self, session->id, msg);
  session->answer_sent = TRUE;
  GST_INFO_OBJECT (self, "session %s: answer sent (%s)", session->id,
      session->trickle ? "trickle" : "bulk");
}

/* webrtcbin answers an offer it cannot serve with a rejected or inactive
 * m-line; the contract wants an error instead. */
static gboolean
answer_sends_video (const gchar * text, guint mline)
{
  GstSDPMessage *sdp = NULL;
  const GstSDPMedia *media;
  gboolean ok = FALSE;

  if (gst_sdp_message_new_from_text (text, &sdp) != GST_SDP_OK)
    return FALSE;
  media = gst_sdp_message_get_media (sdp, mline);
  if (media && gst_sdp_media_get_port (media) != 0) {
    ok = gst_sdp_media_get_attribute_val (media, "sendonly") ||
        gst_sdp_media_get_attribute_val (media, "sendrecv");
  }
  gst_sdp_message_free (sdp);
  return ok;
}

static void
on_answer (PcrMqttWebrtcSink * self, Session * session, PeerEvent * ev)
{
  GstSDPMessage *sdp = NULL;
  GstWebRTCSessionDescription *desc;

  if (ev->failed) {
    reply_error (self, session->id, PCR_ERROR_INTERNAL, ev->text);
    remove_session (self, session, FALSE, "answer failed");
    return;
  }
  if (!answer_sends_video (ev->text, session->mline)) {
    reply_error (self, session->id, PCR_ERROR_NO_COMPATIBLE_CODEC,
        "the device cannot send its H.264 stream in the offered format");
    remove_session (self, session, FALSE, "answer would be inactive");
    return;
  }
  gst_sdp_message_new_from_text (ev->text, &sdp);
  desc = gst_webrtc_session_description_new (GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
  g_signal_emit_by_name (session->webrtc, "set-local-description", desc, NULL);
  gst_webrtc_session_description_free (desc);
  session->answer_set_us = g_get_monotonic_time ();

  if (session->trickle) {
    g_autoptr (PcrMessage) msg = pcr_message_new_answer (ev->text);

    publish_message (self, session->id, msg);
    session->answer_sent = TRUE;
  }
}

static gboolean
handle_peer_event (gpointer data)
{
  PeerEvent *ev = data;
  PcrMqttWebrtcSink *self = ev->self;
  Session *session = lookup_session (self, ev->id);

  if (!session)
    return G_SOURCE_REMOVE;

  switch (ev->kind) {
    case EV_ANSWER:
      on_answer (self, session, ev);
      break;
    case EV_LOCAL_CANDIDATE:
      if (session->trickle) {
        g_autoptr (PcrMessage) msg = pcr_message_new_candidate (ev->text,
            ev->mline, session_mid (session, ev->mline));

        publish_message (self, session->id, msg);
      }
      break;
    case EV_GATHERING_DONE:
      if (session->gathering_done)
        break;
      session->gathering_done = TRUE;
      if (session->trickle) {
        g_autoptr (PcrMessage) msg = pcr_message_new_candidate ("",
            session->mline, session_mid (session, session->mline));

        publish_message (self, session->id, msg);
      } else if (session->answer_set_us && !session->answer_sent) {
        send_answer_sdp (self, session);
      }
      break;
    case EV_CONNECTION:
      if (ev->failed) {
        remove_session (self, session, TRUE, "connection failed");
      } else if (ev->connected && !session->connected) {
        session->connected = TRUE;
        g_atomic_int_set (&session->peer->last_rtcp_s, monotonic_s ());
        GST_INFO_OBJECT (self, "session %s connected", session->id);
        request_key_unit (self);
      }
      break;
  }
  return G_SOURCE_REMOVE;
}

static void
add_ice_servers (PcrMqttWebrtcSink * self, GstElement * webrtc,
    const PcrMessage * offer)
{
  g_autofree gchar *stun = NULL;
  g_autofree gchar *turn = NULL;
  gboolean have_stun;
  guint i;

  GST_OBJECT_LOCK (self);
  stun = g_strdup (self->stun_server);
  turn = g_strdup (self->turn_server);
  GST_OBJECT_UNLOCK (self);

  if (stun)
    g_object_set (webrtc, "stun-server", stun, NULL);
  have_stun = stun != NULL;
  if (turn) {
    gboolean ok = FALSE;

    g_signal_emit_by_name (webrtc, "add-turn-server", turn, &ok);
    if (!ok)
      GST_WARNING_OBJECT (self, "turn-server is not a usable TURN URI");
  }
  for (i = 0; i < offer->ice_servers->len; i++) {
    g_auto (GStrv) uris =
        pcr_ice_server_to_gst_uris (g_ptr_array_index (offer->ice_servers, i));
    gchar **uri;

    for (uri = uris; *uri; uri++) {
      gboolean ok = FALSE;

      if (g_str_has_prefix (*uri, "stun://")) {
        /* webrtcbin takes a single STUN server. */
        if (!have_stun)
          g_object_set (webrtc, "stun-server", *uri, NULL);
        have_stun = TRUE;
      } else {
        g_signal_emit_by_name (webrtc, "add-turn-server", *uri, &ok);
        if (!ok)
          GST_WARNING_OBJECT (self, "ignoring an unusable TURN server");
      }
    }
  }
}

/* libnice's agent looks for a UPnP-IGD router by default: SSDP multicast
 * on the camera's network for every viewer, to open a port mapping a
 * camera should not ask for (its viewers reach it through its own host
 * candidates, STUN or TURN). Off, before gathering starts. */
static void
disable_upnp (GObject * ice)
{
  GObject *agent = NULL;

  if (!g_object_class_find_property (G_OBJECT_GET_CLASS (ice), "agent"))
    return;
  g_object_get (ice, "agent", &agent, NULL);
  if (agent && g_object_class_find_property (G_OBJECT_GET_CLASS (agent),
          "upnp"))
    g_object_set (agent, "upnp", FALSE, NULL);
  g_clear_object (&agent);
}

static void
configure_ice_agent (PcrMqttWebrtcSink * self, GstElement * webrtc)
{
  g_autofree gchar *list = NULL;
  g_auto (GStrv) addresses = NULL;
  GObject *ice = NULL;
  gchar **addr;

  g_object_get (webrtc, "ice-agent", &ice, NULL);
  if (!ice)
    return;
  disable_upnp (ice);

  GST_OBJECT_LOCK (self);
  list = g_strdup (self->ice_addresses);
  GST_OBJECT_UNLOCK (self);
  if (!list || !*list) {
    g_object_unref (ice);
    return;
  }
  addresses = g_strsplit (list, ",", -1);
  for (addr = addresses; *addr; addr++) {
    gboolean ok = FALSE;

    g_strstrip (*addr);
    if (!**addr)
      continue;
    g_signal_emit_by_name (ice, "add-local-ip-address", *addr, &ok);
    if (!ok)
      GST_WARNING_OBJECT (self, "ICE agent refused local address %s", *addr);
  }
  g_object_unref (ice);
}

/* The codec preferences for a viewer's transceiver. webrtcbin answers with
 * their intersection with the offer, so naming only what must match (the
 * payload type, H264, packetization-mode=1) answers the offer's own fmtp for
 * that type. */
static GstCaps *
codec_preferences (const PcrH264Choice * choice, guint playout_delay_id,
    gboolean playout_delay_directed)
{
  GstCaps *caps = gst_caps_new_simple ("application/x-rtp",
      "media", G_TYPE_STRING, "video",
      "encoding-name", G_TYPE_STRING, "H264",
      "clock-rate", G_TYPE_INT, 90000,
      "payload", G_TYPE_INT, choice->pt,
      "packetization-mode", G_TYPE_STRING, "1", NULL);

  /* webrtcbin (1.22) writes the answer's a=extmap lines from extmap-<id>
   * fields of these caps (the offer's own extmaps never reach the answer);
   * the payloader puts the same field on its caps. An offer's recvonly
   * or sendrecv extmap is answered sendonly: the form (direction, URI,
   * attributes) says so. */
  if (playout_delay_id) {
    g_autofree gchar *field = g_strdup_printf ("extmap-%u", playout_delay_id);

    if (playout_delay_directed) {
      GValue arr = G_VALUE_INIT, item = G_VALUE_INIT;
      const gchar *parts[] = { "sendonly", PCR_PLAYOUT_DELAY_URI, "" };
      guint i;

      gst_value_array_init (&arr, 3);
      for (i = 0; i < G_N_ELEMENTS (parts); i++) {
        g_value_init (&item, G_TYPE_STRING);
        g_value_set_string (&item, parts[i]);
        gst_value_array_append_and_take_value (&arr, &item);
      }
      gst_caps_set_value (caps, field, &arr);
      g_value_unset (&arr);
    } else {
      gst_caps_set_simple (caps, field, G_TYPE_STRING, PCR_PLAYOUT_DELAY_URI,
          NULL);
    }
  }
  return caps;
}

/* Tells the viewer's browser (by the playout-delay header extension on
 * every packet) to render each frame as soon as it is decoded, or within
 * @max_ms, instead of holding it in its jitter buffer. */
static gboolean
add_playout_delay (PcrMqttWebrtcSink * self, GstElement * pay, guint id,
    gint max_ms)
{
  GstRTPHeaderExtension *ext = g_object_new (PCR_TYPE_RTP_HDREXT_PLAYOUT_DELAY,
      NULL);

  if (!ext)
    return FALSE;
  gst_object_ref_sink (ext);
  gst_rtp_header_extension_set_id (ext, id);
  g_object_set (ext, "min-ms", 0, "max-ms", (guint) max_ms, NULL);
  g_signal_emit_by_name (pay, "add-extension", ext);
  gst_object_unref (ext);
  GST_DEBUG_OBJECT (self, "playout-delay 0..%d ms as extension %u", max_ms, id);
  return TRUE;
}

/* webrtcbin (1.22) also intersects the offer with the caps its sink pad
 * received. rtph264pay derives profile-level-id from the stream's SPS
 * (x264 writes 42c01f where a browser offers 42e01f: both constrained
 * baseline), so whether the answer matched would depend on whether the
 * caps or the answer came first. The format choice already checked that the
 * stream fits the offered profile: say so in the offer's own words. */
static GstPadProbeReturn
rewrite_profile_level_id (GstPad * pad, GstPadProbeInfo * info,
    gpointer user_data)
{
  const gchar *plid = user_data;
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);
  GstCaps *caps;

  if (GST_EVENT_TYPE (event) != GST_EVENT_CAPS)
    return GST_PAD_PROBE_OK;
  gst_event_parse_caps (event, &caps);
  caps = gst_caps_copy (caps);
  if (plid)
    gst_caps_set_simple (caps, "profile-level-id", G_TYPE_STRING, plid, NULL);
  else
    gst_structure_remove_field (gst_caps_get_structure (caps, 0),
        "profile-level-id");
  GST_PAD_PROBE_INFO_DATA (info) = gst_event_new_caps (caps);
  gst_caps_unref (caps);
  gst_event_unref (event);
  return GST_PAD_PROBE_OK;
}

/* webrtcbin (1.20+) puts a clocksync before its rtpbin that holds each
 * buffer until its PTS plus the pipeline latency, which the source's
 * reported latency (a whole frame for videotestsrc and most cameras) makes
 * tens of milliseconds; its RTP nicesink would sync again. A live sender
 * gains nothing from waiting (the viewer's jitter buffer paces playback by
 * the RTP timestamps): packets leave as soon as they are made. */
static void
on_deep_element_added (GstBin * bin, GstBin * sub_bin, GstElement * element,
    gpointer user_data)
{
  GstElementFactory *factory = gst_element_get_factory (element);
  const gchar *name = factory ? GST_OBJECT_NAME (factory) : "";

  if (g_str_equal (name, "clocksync") || g_str_equal (name, "nicesink"))
    g_object_set (element, "sync", FALSE, NULL);
}

static GStrv
offer_mids (const GstSDPMessage * sdp)
{
  GStrvBuilder *builder = g_strv_builder_new ();
  GStrv mids;
  guint i;

  for (i = 0; i < gst_sdp_message_medias_len (sdp); i++) {
    const gchar *mid = gst_sdp_media_get_attribute_val
        (gst_sdp_message_get_media (sdp, i), "mid");

    g_strv_builder_add (builder, mid ? mid : "");
  }
  mids = g_strv_builder_end (builder);
  g_strv_builder_unref (builder);
  return mids;
}

static gboolean
build_branch (PcrMqttWebrtcSink * self, Session * session,
    const PcrH264Choice * choice, GstCaps * prefs, guint playout_delay_id,
    gint playout_delay_max_ms, GError ** error)
{
  g_autoptr (GstPad) pay_src = NULL;
  g_autoptr (GstPad) webrtc_sink = NULL;
  g_autoptr (GstPad) queue_sink = NULL;
  GstWebRTCRTPTransceiver *trans = NULL;
  GstElement *rtpbin;

  session->queue = gst_element_factory_make ("queue", NULL);
  session->pay = gst_element_factory_make ("rtph264pay", NULL);
  session->webrtc = gst_element_factory_make ("webrtcbin", NULL);
  if (!session->queue || !session->pay || !session->webrtc) {
    g_set_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_INTERNAL,
        "cannot create the viewer's elements");
    return FALSE;
  }
  gst_object_ref_sink (session->queue);
  gst_object_ref_sink (session->pay);
  gst_object_ref_sink (session->webrtc);

  /* A slow viewer loses frames instead of stalling the tee. */
  g_object_set (session->queue, "leaky", 2, "max-size-buffers", 60,
      "max-size-bytes", 0, "max-size-time", (guint64) 0, NULL);
  g_object_set (session->pay, "pt", choice->pt, "config-interval", -1, NULL);
  gst_util_set_object_arg (G_OBJECT (session->pay), "aggregate-mode",
      "zero-latency");
  if (playout_delay_id && !add_playout_delay (self, session->pay,
          playout_delay_id, playout_delay_max_ms)) {
    g_set_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_INTERNAL,
        "cannot create the playout-delay header extension");
    return FALSE;
  }
  gst_util_set_object_arg (G_OBJECT (session->webrtc), "bundle-policy",
      "max-bundle");

  gst_bin_add_many (GST_BIN (self), session->queue, session->pay,
      session->webrtc, NULL);

  configure_ice_agent (self, session->webrtc);
  g_signal_connect (session->webrtc, "deep-element-added",
      G_CALLBACK (on_deep_element_added), NULL);

  g_signal_connect_data (session->webrtc, "on-ice-candidate",
      G_CALLBACK (on_ice_candidate), peer_ref (session->peer),
      peer_closure_unref, 0);
  g_signal_connect_data (session->webrtc, "notify::ice-gathering-state",
      G_CALLBACK (on_gathering_state), peer_ref (session->peer),
      peer_closure_unref, 0);
  g_signal_connect_data (session->webrtc, "notify::connection-state",
      G_CALLBACK (on_connection_state), peer_ref (session->peer),
      peer_closure_unref, 0);
  g_signal_connect_data (session->webrtc, "notify::ice-connection-state",
      G_CALLBACK (on_connection_state), peer_ref (session->peer),
      peer_closure_unref, 0);
  rtpbin = gst_bin_get_by_name (GST_BIN (session->webrtc), "rtpbin");
  if (rtpbin) {
    g_signal_connect_data (rtpbin, "on-ssrc-active",
        G_CALLBACK (on_ssrc_active), peer_ref (session->peer),
        peer_closure_unref, 0);
    gst_object_unref (rtpbin);
  } else {
    GST_WARNING_OBJECT (self, "webrtcbin has no rtpbin; RTCP timeout off");
  }

  pay_src = gst_element_get_static_pad (session->pay, "src");
  gst_pad_add_probe (pay_src, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
      rewrite_profile_level_id, g_strdup (choice->profile_level_id), g_free);
  webrtc_sink = gst_element_request_pad_simple (session->webrtc, "sink_%u");
  queue_sink = gst_element_get_static_pad (session->queue, "sink");
  if (!webrtc_sink || gst_pad_link (pay_src, webrtc_sink) != GST_PAD_LINK_OK
      || !gst_element_link (session->queue, session->pay)) {
    g_set_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_INTERNAL,
        "cannot link the viewer's branch");
    return FALSE;
  }
  g_object_get (webrtc_sink, "transceiver", &trans, NULL);
  if (trans) {
    g_object_set (trans, "direction",
        GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, "codec-preferences",
        prefs, NULL);
    gst_object_unref (trans);
  }

  gst_element_sync_state_with_parent (session->webrtc);
  gst_element_sync_state_with_parent (session->pay);
  gst_element_sync_state_with_parent (session->queue);

  session->tee_pad = gst_element_request_pad_simple (self->tee, "src_%u");
  if (!session->tee_pad
      || gst_pad_link (session->tee_pad, queue_sink) != GST_PAD_LINK_OK) {
    g_set_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_INTERNAL,
        "cannot link the viewer to the stream");
    return FALSE;
  }
  return TRUE;
}

static void
handle_offer (PcrMqttWebrtcSink * self, const gchar * id,
    const PcrMessage * msg)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PcrH264Choice) choice = NULL;
  g_autoptr (GstCaps) prefs = NULL;
  GstSDPMessage *sdp;
  GstWebRTCSessionDescription *offer;
  GstPromise *promise;
  Session *session;
  guint max_viewers;
  gboolean streaming;
  PcrH264Profile profile;
  gint playout_delay_max_ms;
  guint playout_delay_id = 0;
  gboolean playout_delay_directed = FALSE;

  if (lookup_session (self, id)) {
    reply_error (self, id, PCR_ERROR_BAD_REQUEST,
        "this session already has an offer; use a new session id");
    return;
  }
  GST_OBJECT_LOCK (self);
  max_viewers = self->max_viewers;
  streaming = self->streaming;
  profile = self->profile;
  playout_delay_max_ms = self->playout_delay_max_ms;
  GST_OBJECT_UNLOCK (self);
  if (!streaming) {
    reply_error (self, id, PCR_ERROR_INTERNAL, "the device is not streaming");
    return;
  }
  if (g_hash_table_size (self->sessions) >= max_viewers) {
    g_autofree gchar *text = g_strdup_printf ("the device serves at most %u "
        "viewers at once", max_viewers);

    reply_error (self, id, PCR_ERROR_MAX_VIEWERS, text);
    return;
  }
  sdp = pcr_sdp_parse (msg->sdp, &error);
  if (sdp)
    choice = pcr_sdp_choose_h264 (sdp, profile, &error);
  if (!choice) {
    reply_error (self, id, error && error->domain == PCR_MESSAGE_ERROR ?
        (PcrErrorCode) error->code : PCR_ERROR_BAD_REQUEST,
        error ? error->message : "bad offer");
    if (sdp)
      gst_sdp_message_free (sdp);
    return;
  }
  /* Only a viewer that offers the extension gets it: an extmap the offer
   * lacks would be an answer the viewer may reject. */
  if (playout_delay_max_ms >= 0)
    playout_delay_id = pcr_sdp_extmap_id (sdp, choice->mline,
        PCR_PLAYOUT_DELAY_URI, &playout_delay_directed);
  prefs = codec_preferences (choice, playout_delay_id, playout_delay_directed);

  session = g_new0 (Session, 1);
  session->peer = g_new0 (Peer, 1);
  session->peer->refcount = 1;
  session->peer->self = self;
  session->peer->id = g_strdup (id);
  session->id = session->peer->id;
  session->trickle = msg->trickle;
  session->mline = choice->mline;
  session->mids = offer_mids (sdp);
  session->created_us = g_get_monotonic_time ();
  g_hash_table_insert (self->sessions, (gpointer) session->id, session);
  GST_INFO_OBJECT (self, "session %s: offer (%s), payload type %d on m-line "
      "%u, playout-delay extension %u", id, msg->trickle ? "trickle" : "bulk",
      choice->pt, choice->mline, playout_delay_id);

  if (!build_branch (self, session, choice, prefs, playout_delay_id,
          playout_delay_max_ms, &error)) {
    reply_error (self, id, PCR_ERROR_INTERNAL, error->message);
    gst_sdp_message_free (sdp);
    remove_session (self, session, FALSE, "branch failed");
    return;
  }
  add_ice_servers (self, session->webrtc, msg);

  offer = gst_webrtc_session_description_new (GST_WEBRTC_SDP_TYPE_OFFER, sdp);
  g_signal_emit_by_name (session->webrtc, "set-remote-description", offer,
      NULL);
  gst_webrtc_session_description_free (offer);
  /* webrtcbin runs its operations in order: the answer follows the offer. */
  promise = gst_promise_new_with_change_func (on_answer_created,
      peer_ref (session->peer), (GDestroyNotify) peer_unref);
  g_signal_emit_by_name (session->webrtc, "create-answer", NULL, promise);
  gst_promise_unref (promise);

  set_viewers (self, g_hash_table_size (self->sessions));
}

static gboolean
candidate_is_acceptable (const PcrMessage * msg, const gchar ** why)
{
  const gchar *c = msg->candidate;
  g_auto (GStrv) fields = NULL;

  if (g_str_has_prefix (c, "a="))
    c += 2;
  if (!g_str_has_prefix (c, "candidate:")) {
    *why = "a candidate must start with \"candidate:\"";
    return FALSE;
  }
  if (strpbrk (c, "\r\n")) {
    *why = "a candidate must be one line";
    return FALSE;
  }
  if (msg->sdp_mline_index > MAX_MLINE_INDEX) {
    *why = "sdpMLineIndex is out of range";
    return FALSE;
  }
  /* candidate:foundation component transport priority address port ... */
  fields = g_strsplit (c, " ", 8);
  if (g_strv_length (fields) < 6) {
    *why = "a candidate needs foundation, component, transport, priority, "
        "address and port";
    return FALSE;
  }
  if (g_str_has_suffix (fields[4], ".local")) {
    /* Resolving mDNS names would send multicast; the browser's other
     * candidates (or ours, which it can reach) suffice. */
    *why = NULL;
    return FALSE;
  }
  return TRUE;
}

static void
handle_candidate (PcrMqttWebrtcSink * self, const gchar * id,
    const PcrMessage * msg)
{
  Session *session = lookup_session (self, id);
  const gchar *why = NULL;

  if (!session) {
    reply_error (self, id, PCR_ERROR_UNKNOWN_SESSION,
        "no such session: send an offer first");
    return;
  }
  if (!*msg->candidate) {
    GST_DEBUG_OBJECT (self, "session %s: end of remote candidates", id);
    return;
  }
  if (!candidate_is_acceptable (msg, &why)) {
    if (why)
      reply_error (self, id, PCR_ERROR_BAD_REQUEST, why);
    else
      GST_DEBUG_OBJECT (self, "session %s: skipping mDNS candidate", id);
    return;
  }
  if (++session->remote_candidates > MAX_REMOTE_CANDIDATES) {
    if (session->remote_candidates == MAX_REMOTE_CANDIDATES + 1)
      GST_WARNING_OBJECT (self, "session %s: over %d candidates, ignoring "
          "the rest", id, MAX_REMOTE_CANDIDATES);
    return;
  }
  g_signal_emit_by_name (session->webrtc, "add-ice-candidate",
      msg->sdp_mline_index, msg->candidate);
}

static void
on_mqtt_message (PcrMqtt * mqtt, const gchar * topic, GBytes * payload,
    gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;
  g_autofree gchar *id = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (PcrMessage) msg = NULL;
  gsize len;
  const gchar *data = g_bytes_get_data (payload, &len);

  if (!pcr_topic_parse_session (topic, self->run_prefix, self->run_device,
          "in", &id)) {
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
    reply_error (self, id, PCR_ERROR_BAD_REQUEST, error->message);
    return;
  }
  switch (msg->type) {
    case PCR_MESSAGE_OFFER:
      handle_offer (self, id, msg);
      break;
    case PCR_MESSAGE_CANDIDATE:
      handle_candidate (self, id, msg);
      break;
    case PCR_MESSAGE_BYE:{
      Session *session = lookup_session (self, id);

      if (session)
        remove_session (self, session, FALSE, "viewer said bye");
      break;
    }
    default:
      reply_error (self, id, PCR_ERROR_BAD_REQUEST,
          "a device takes offer, candidate and bye messages only");
      break;
  }
}

static void
on_mqtt_connection (PcrMqtt * mqtt, gboolean connected, gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;
  g_autofree gchar *pattern = NULL;

  if (!connected) {
    GST_WARNING_OBJECT (self, "lost the broker; viewers keep their media");
    return;
  }
  pattern = g_strdup_printf ("%s/%s/in/+", self->run_prefix, self->run_device);
  pcr_mqtt_subscribe (mqtt, pattern);
  publish_status (self);
  GST_INFO_OBJECT (self, "connected to the broker, listening on %s", pattern);
}

/* A failed or broken broker connection, once per distinct failure: a bus
 * WARNING, so gst-launch and the service say why the camera is not online. */
static void
on_mqtt_error (PcrMqtt * mqtt, const gchar * message, gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;

  GST_ELEMENT_WARNING (self, RESOURCE, OPEN_READ_WRITE,
      ("MQTT: %s; retrying", message), (NULL));
}

static gboolean
housekeeping (gpointer data)
{
  PcrMqttWebrtcSink *self = data;
  gint64 now = g_get_monotonic_time ();
  gint now_s = monotonic_s ();
  g_autoptr (GPtrArray) stale = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;
  guint i;

  g_hash_table_iter_init (&iter, self->sessions);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    Session *session = value;

    if (!session->trickle && session->answer_set_us && !session->answer_sent
        && now - session->answer_set_us > GATHER_TIMEOUT_US) {
      GST_WARNING_OBJECT (self, "session %s: ICE gathering is slow, "
          "answering with the candidates so far", session->id);
      send_answer_sdp (self, session);
    }
    if (!session->connected && now - session->created_us > CONNECT_TIMEOUT_US)
      g_ptr_array_add (stale, session);
    else if (session->connected &&
        now_s - g_atomic_int_get (&session->peer->last_rtcp_s) > RTCP_TIMEOUT_S)
      g_ptr_array_add (stale, session);
  }
  for (i = 0; i < stale->len; i++) {
    Session *session = g_ptr_array_index (stale, i);

    remove_session (self, session, TRUE, session->connected ?
        "no RTCP from the viewer for 10 s" :
        "the connection did not complete within 12 s");
  }
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------------
 * Start and stop
 * ------------------------------------------------------------------------ */

static gpointer
context_thread (gpointer data)
{
  PcrMqttWebrtcSink *self = data;

  g_main_context_push_thread_default (self->context);
  g_main_loop_run (self->loop);
  g_main_context_pop_thread_default (self->context);
  return NULL;
}

static gboolean
start (PcrMqttWebrtcSink * self)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *offline = NULL;
  PcrMqttOptions options = { 0 };
  PcrMqttCallbacks callbacks = { on_mqtt_connection, on_mqtt_message,
    on_mqtt_error
  };
  g_autofree gchar *broker_uri = NULL;
  g_autofree gchar *username = NULL;
  g_autofree gchar *password = NULL;
  g_autofree gchar *ca_file = NULL;

  if (self->missing) {
    GST_ELEMENT_ERROR (self, CORE, MISSING_PLUGIN,
        ("Missing element '%s'", self->missing),
        ("install the Debian package %s",
            pcr_debian_package_for_element (self->missing)));
    return FALSE;
  }

  GST_OBJECT_LOCK (self);
  self->run_prefix = g_strdup (self->topic_prefix);
  self->run_device = g_strdup (self->device_id);
  broker_uri = g_strdup (self->broker_uri);
  username = g_strdup (self->username);
  password = g_strdup (self->password);
  ca_file = g_strdup (self->ca_file);
  GST_OBJECT_UNLOCK (self);
  if (!pcr_id_is_valid (self->run_device)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Invalid device-id \"%s\"", self->run_device),
        ("device-id must match [A-Za-z0-9_-]{1,64}"));
    return FALSE;
  }
  if (!*self->run_prefix || strpbrk (self->run_prefix, "+#")) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Invalid topic-prefix \"%s\"", self->run_prefix),
        ("topic-prefix must be non-empty, without + or #"));
    return FALSE;
  }
  self->status_topic = pcr_topic_build (self->run_prefix, self->run_device,
      "status", NULL);
  offline = status_json (self, FALSE);

  options.uri = broker_uri;
  options.username = username;
  options.password = password;
  options.ca_file = ca_file;
  options.will_topic = self->status_topic;
  options.will_payload = offline;
  self->mqtt = pcr_mqtt_new (&options, self->context, &callbacks, self, &error);
  if (!self->mqtt) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Cannot use the MQTT broker settings"), ("%s", error->message));
    return FALSE;
  }

  self->sessions = g_hash_table_new (g_str_hash, g_str_equal);
  self->loop = g_main_loop_new (self->context, FALSE);
  self->housekeeping = g_timeout_source_new_seconds (1);
  g_source_set_callback (self->housekeeping, housekeeping, self, NULL);
  g_source_attach (self->housekeeping, self->context);
  self->thread = g_thread_new ("mqttwebrtcsink", context_thread, self);

  if (!pcr_mqtt_start (self->mqtt, &error)) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ_WRITE,
        ("Cannot start the MQTT client"), ("%s", error->message));
    return FALSE;
  }
  return TRUE;
}

static gboolean
quit_loop_cb (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static gboolean
close_all_sessions_cb (gpointer data)
{
  PcrMqttWebrtcSink *self = data;
  GList *sessions = g_hash_table_get_values (self->sessions);
  GList *l;

  for (l = sessions; l; l = l->next)
    remove_session (self, l->data, TRUE, "the device is stopping");
  g_list_free (sessions);

  /* Wake the waiting thread even if there was nothing to remove. */
  g_mutex_lock (&self->lock);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  return G_SOURCE_REMOVE;
}

/* From the application thread: says bye to every viewer and waits for their
 * branches to go. */
static void
close_all_sessions (PcrMqttWebrtcSink * self)
{
  gint64 deadline = g_get_monotonic_time () + STOP_TIMEOUT_US;

  if (!self->thread)
    return;
  g_mutex_lock (&self->lock);
  post (self, close_all_sessions_cb, self, NULL);
  /* Give the posted task a moment, then wait for the removals it starts. */
  g_cond_wait_until (&self->cond, &self->lock, g_get_monotonic_time () +
      G_TIME_SPAN_SECOND);
  while (self->removing)
    if (!g_cond_wait_until (&self->cond, &self->lock, deadline))
      break;
  g_mutex_unlock (&self->lock);
}

static void
stop (PcrMqttWebrtcSink * self)
{
  GList *leftover, *l;

  if (self->mqtt) {
    g_autofree gchar *offline = status_json (self, FALSE);

    if (pcr_mqtt_is_connected (self->mqtt))
      pcr_mqtt_publish (self->mqtt, self->status_topic, offline,
          strlen (offline), TRUE);
    pcr_mqtt_stop (self->mqtt, 1000);
  }
  if (self->thread) {
    /* Quit from inside the loop: a g_main_loop_quit() from here before the
     * thread reached g_main_loop_run() would be lost, and the join hang. */
    post (self, quit_loop_cb, self->loop, NULL);
    g_thread_join (self->thread);
    self->thread = NULL;
  }
  g_clear_pointer (&self->mqtt, pcr_mqtt_free);
  if (self->housekeeping) {
    g_source_destroy (self->housekeeping);
    g_clear_pointer (&self->housekeeping, g_source_unref);
  }
  if (self->key_unit_timer) {
    g_source_destroy (self->key_unit_timer);
    g_clear_pointer (&self->key_unit_timer, g_source_unref);
  }
  /* Drain what is still queued (idle removals) now that no thread runs. */
  while (g_main_context_iteration (self->context, FALSE));

  g_mutex_lock (&self->lock);
  leftover = self->removing;
  self->removing = NULL;
  g_mutex_unlock (&self->lock);
  for (l = leftover; l; l = l->next) {
    Session *session = l->data;

    if (session->idle_probe && session->tee_pad)
      gst_pad_remove_probe (session->tee_pad, session->idle_probe);
    g_mutex_lock (&self->lock);
    self->removing = g_list_prepend (self->removing, session);
    g_mutex_unlock (&self->lock);
    finish_removal (self, session);
  }
  g_list_free (leftover);

  if (self->sessions) {
    GList *sessions = g_hash_table_get_values (self->sessions);

    for (l = sessions; l; l = l->next) {
      Session *session = l->data;

      g_mutex_lock (&self->lock);
      self->removing = g_list_prepend (self->removing, session);
      g_mutex_unlock (&self->lock);
      finish_removal (self, session);
    }
    g_list_free (sessions);
    g_clear_pointer (&self->sessions, g_hash_table_unref);
  }
  g_clear_pointer (&self->loop, g_main_loop_unref);
  g_clear_pointer (&self->run_prefix, g_free);
  g_clear_pointer (&self->run_device, g_free);
  g_clear_pointer (&self->status_topic, g_free);
  GST_OBJECT_LOCK (self);
  self->viewers = 0;
  GST_OBJECT_UNLOCK (self);
}

static GstStateChangeReturn
pcr_mqtt_webrtc_sink_change_state (GstElement * element,
    GstStateChange transition)
{
  PcrMqttWebrtcSink *self = PCR_MQTT_WEBRTC_SINK (element);
  GstStateChangeReturn ret;

  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (!start (self)) {
        stop (self);
        return GST_STATE_CHANGE_FAILURE;
      }
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      GST_OBJECT_LOCK (self);
      self->streaming = TRUE;
      GST_OBJECT_UNLOCK (self);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      GST_OBJECT_LOCK (self);
      self->streaming = FALSE;
      GST_OBJECT_UNLOCK (self);
      close_all_sessions (self);
      break;
    default:
      break;
  }

  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);

  if (transition == GST_STATE_CHANGE_READY_TO_NULL)
    stop (self);
  return ret;
}

/* ------------------------------------------------------------------------
 * GObject
 * ------------------------------------------------------------------------ */

static void
replace_string (gchar ** field, const GValue * value)
{
  g_free (*field);
  *field = g_value_dup_string (value);
}

static void
pcr_mqtt_webrtc_sink_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  PcrMqttWebrtcSink *self = PCR_MQTT_WEBRTC_SINK (object);
  gboolean republish = FALSE;

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_BROKER_URI:
      replace_string (&self->broker_uri, value);
      if (!self->broker_uri)
        self->broker_uri = g_strdup (DEFAULT_BROKER_URI);
      break;
    case PROP_USERNAME:
      replace_string (&self->username, value);
      break;
    case PROP_PASSWORD:
      replace_string (&self->password, value);
      break;
    case PROP_CA_FILE:
      replace_string (&self->ca_file, value);
      break;
    case PROP_DEVICE_ID:
      replace_string (&self->device_id, value);
      if (!self->device_id)
        self->device_id = g_strdup (DEFAULT_DEVICE_ID);
      break;
    case PROP_TOPIC_PREFIX:
      replace_string (&self->topic_prefix, value);
      if (!self->topic_prefix)
        self->topic_prefix = g_strdup (DEFAULT_TOPIC_PREFIX);
      break;
    case PROP_MAX_VIEWERS:
      self->max_viewers = g_value_get_uint (value);
      republish = TRUE;
      break;
    case PROP_PLAYOUT_DELAY_MAX_MS:
      self->playout_delay_max_ms = g_value_get_int (value);
      break;
    case PROP_STUN_SERVER:
      replace_string (&self->stun_server, value);
      break;
    case PROP_TURN_SERVER:
      replace_string (&self->turn_server, value);
      break;
    case PROP_ICE_ADDRESSES:
      replace_string (&self->ice_addresses, value);
      break;
    case PROP_CAMERA_STATE:{
      const gchar *state = g_value_get_string (value);

      if (g_strcmp0 (state, "online") == 0 || g_strcmp0 (state, "error") == 0) {
        g_free (self->camera_state);
        self->camera_state = g_strdup (state);
        republish = TRUE;
      } else {
        GST_WARNING_OBJECT (self, "camera-state must be online or error");
      }
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  republish = republish && self->context != NULL;
  GST_OBJECT_UNLOCK (self);

  if (republish && self->mqtt)
    post (self, publish_status_cb, self, NULL);
}

static void
pcr_mqtt_webrtc_sink_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  PcrMqttWebrtcSink *self = PCR_MQTT_WEBRTC_SINK (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_BROKER_URI:
      g_value_set_string (value, self->broker_uri);
      break;
    case PROP_USERNAME:
      g_value_set_string (value, self->username);
      break;
    case PROP_PASSWORD:
      /* Write-only in spirit: never hand the secret back out. */
      g_value_set_string (value, self->password ? "***" : NULL);
      break;
    case PROP_CA_FILE:
      g_value_set_string (value, self->ca_file);
      break;
    case PROP_DEVICE_ID:
      g_value_set_string (value, self->device_id);
      break;
    case PROP_TOPIC_PREFIX:
      g_value_set_string (value, self->topic_prefix);
      break;
    case PROP_MAX_VIEWERS:
      g_value_set_uint (value, self->max_viewers);
      break;
    case PROP_STUN_SERVER:
      g_value_set_string (value, self->stun_server);
      break;
    case PROP_TURN_SERVER:
      g_value_set_string (value, self->turn_server ? "turn://***" : NULL);
      break;
    case PROP_ICE_ADDRESSES:
      g_value_set_string (value, self->ice_addresses);
      break;
    case PROP_CAMERA_STATE:
      g_value_set_string (value, self->camera_state);
      break;
    case PROP_VIEWERS:
      g_value_set_uint (value, self->viewers);
      break;
    case PROP_PLAYOUT_DELAY_MAX_MS:
      g_value_set_int (value, self->playout_delay_max_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static GstElement *
make_child (PcrMqttWebrtcSink * self, const gchar * factory)
{
  GstElement *element = gst_element_factory_make (factory, NULL);

  if (!element && !self->missing)
    self->missing = g_strdup (factory);
  return element;
}

static void
pcr_mqtt_webrtc_sink_init (PcrMqttWebrtcSink * self)
{
  GstPadTemplate *templ = gst_static_pad_template_get (&sink_template);
  GstPad *ghost;

  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->broker_uri = g_strdup (DEFAULT_BROKER_URI);
  self->device_id = g_strdup (DEFAULT_DEVICE_ID);
  self->topic_prefix = g_strdup (DEFAULT_TOPIC_PREFIX);
  self->camera_state = g_strdup (DEFAULT_CAMERA_STATE);
  self->max_viewers = DEFAULT_MAX_VIEWERS;
  self->playout_delay_max_ms = DEFAULT_PLAYOUT_DELAY_MAX_MS;
  self->profile = PCR_H264_CONSTRAINED_BASELINE;
  self->context = g_main_context_new ();

  self->filter = make_child (self, "capsfilter");
  self->parse = make_child (self, "h264parse");
  self->tee = make_child (self, "tee");
  self->fakesink = make_child (self, "fakesink");
  /* Viewers' branches need these later; find out now. */
  if (!self->missing) {
    const gchar *later[] = { "queue", "rtph264pay", "webrtcbin", "nicesrc",
      "nicesink", "dtlssrtpenc", "srtpenc"
    };
    guint i;

    for (i = 0; i < G_N_ELEMENTS (later); i++) {
      GstElementFactory *f = gst_element_factory_find (later[i]);

      if (!f) {
        self->missing = g_strdup (later[i]);
        break;
      }
      gst_object_unref (f);
    }
  }

  if (self->filter && self->parse && self->tee && self->fakesink) {
    GstCaps *caps = gst_caps_from_string (SINK_CAPS);

    g_object_set (self->filter, "caps", caps, NULL);
    gst_caps_unref (caps);
    g_object_set (self->parse, "config-interval", -1, NULL);
    g_object_set (self->tee, "allow-not-linked", TRUE, NULL);
    g_object_set (self->fakesink, "sync", FALSE, "async", FALSE,
        "enable-last-sample", FALSE, NULL);
    gst_bin_add_many (GST_BIN (self), self->filter, self->parse, self->tee,
        self->fakesink, NULL);
    gst_element_link_many (self->filter, self->parse, self->tee,
        self->fakesink, NULL);
    self->parse_src = gst_element_get_static_pad (self->parse, "src");
    gst_pad_add_probe (self->parse_src,
        GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM |
        GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, parse_src_probe, self, NULL);
    {
      GstPad *target = gst_element_get_static_pad (self->filter, "sink");

      ghost = gst_ghost_pad_new_from_template ("sink", target, templ);
      gst_object_unref (target);
    }
  } else {
    gst_clear_object (&self->filter);
    gst_clear_object (&self->parse);
    gst_clear_object (&self->tee);
    gst_clear_object (&self->fakesink);
    ghost = gst_ghost_pad_new_no_target_from_template ("sink", templ);
  }
  gst_element_add_pad (GST_ELEMENT (self), ghost);
  gst_object_unref (templ);
  GST_OBJECT_FLAG_SET (self, GST_ELEMENT_FLAG_SINK);
}

static void
pcr_mqtt_webrtc_sink_finalize (GObject * object)
{
  PcrMqttWebrtcSink *self = PCR_MQTT_WEBRTC_SINK (object);

  gst_clear_object (&self->parse_src);
  g_main_context_unref (self->context);
  g_free (self->missing);
  g_free (self->broker_uri);
  g_free (self->username);
  g_free (self->password);
  g_free (self->ca_file);
  g_free (self->device_id);
  g_free (self->topic_prefix);
  g_free (self->stun_server);
  g_free (self->turn_server);
  g_free (self->ice_addresses);
  g_free (self->camera_state);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
pcr_mqtt_webrtc_sink_class_init (PcrMqttWebrtcSinkClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_READY;

  gobject_class->set_property = pcr_mqtt_webrtc_sink_set_property;
  gobject_class->get_property = pcr_mqtt_webrtc_sink_get_property;
  gobject_class->finalize = pcr_mqtt_webrtc_sink_finalize;
  element_class->change_state =
      GST_DEBUG_FUNCPTR (pcr_mqtt_webrtc_sink_change_state);

  /**
   * mqttwebrtcsink:broker-uri:
   *
   * The MQTT broker: mqtt://host[:port] or mqtts://host[:port] (TLS, with
   * #mqttwebrtcsink:ca-file or the system CAs). Read when going to READY.
   */
  properties[PROP_BROKER_URI] = g_param_spec_string ("broker-uri",
      "Broker URI", "MQTT broker, mqtt://host:port or mqtts://host:port",
      DEFAULT_BROKER_URI, rw);
  /**
   * mqttwebrtcsink:username:
   *
   * MQTT user name, or NULL for none.
   */
  properties[PROP_USERNAME] = g_param_spec_string ("username", "Username",
      "MQTT user name", NULL, rw);
  /**
   * mqttwebrtcsink:password:
   *
   * MQTT password. Reads back as "***" so it never reaches a log.
   */
  properties[PROP_PASSWORD] = g_param_spec_string ("password", "Password",
      "MQTT password (reads back as ***)", NULL, rw);
  /**
   * mqttwebrtcsink:ca-file:
   *
   * PEM file of the CA that signed the broker's certificate (mqtts://).
   */
  properties[PROP_CA_FILE] = g_param_spec_string ("ca-file", "CA file",
      "CA certificate file for mqtts://", NULL, rw);
  /**
   * mqttwebrtcsink:device-id:
   *
   * This device's id D in the topics P/D/...; [A-Za-z0-9_-]{1,64}.
   */
  properties[PROP_DEVICE_ID] = g_param_spec_string ("device-id", "Device ID",
      "Device id in the MQTT topics", DEFAULT_DEVICE_ID, rw);
  /**
   * mqttwebrtcsink:topic-prefix:
   *
   * The topic prefix P.
   */
  properties[PROP_TOPIC_PREFIX] = g_param_spec_string ("topic-prefix",
      "Topic prefix", "MQTT topic prefix", DEFAULT_TOPIC_PREFIX, rw);
  /**
   * mqttwebrtcsink:max-viewers:
   *
   * Viewers served at once; an offer beyond gets a max-viewers error.
   */
  properties[PROP_MAX_VIEWERS] = g_param_spec_uint ("max-viewers",
      "Max viewers", "Viewers served at once", 1, MAX_MAX_VIEWERS,
      DEFAULT_MAX_VIEWERS, rw | GST_PARAM_MUTABLE_PLAYING);
  /**
   * mqttwebrtcsink:stun-server:
   *
   * STUN server for every viewer, stun://host:port.
   */
  properties[PROP_STUN_SERVER] = g_param_spec_string ("stun-server",
      "STUN server", "stun://host:port", NULL, rw);
  /**
   * mqttwebrtcsink:turn-server:
   *
   * TURN server for every viewer, turn(s)://user:password@host:port.
   */
  properties[PROP_TURN_SERVER] = g_param_spec_string ("turn-server",
      "TURN server", "turn(s)://user:password@host:port", NULL, rw);
  /**
   * mqttwebrtcsink:ice-addresses:
   *
   * Comma-separated local IP addresses to gather ICE candidates on; empty
   * means all. 127.0.0.1 makes loopback usable (libnice skips it otherwise).
   */
  properties[PROP_ICE_ADDRESSES] = g_param_spec_string ("ice-addresses",
      "ICE addresses", "Comma-separated local IPs to gather on (empty: all)",
      NULL, rw);
  /**
   * mqttwebrtcsink:camera-state:
   *
   * "online" or "error": the state published in the retained status. An
   * application sets "error" while it restarts a failed camera.
   */
  properties[PROP_CAMERA_STATE] = g_param_spec_string ("camera-state",
      "Camera state", "online or error, published in the status",
      DEFAULT_CAMERA_STATE, rw | GST_PARAM_MUTABLE_PLAYING);
  /**
   * mqttwebrtcsink:viewers:
   *
   * Viewers now served (from offer to removal). Notified from the element's
   * own thread.
   */
  properties[PROP_VIEWERS] = g_param_spec_uint ("viewers", "Viewers",
      "Viewers now served", 0, G_MAXUINT, 0,
      G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  /**
   * mqttwebrtcsink:playout-delay-max-ms:
   *
   * The most delay (ms, 10 ms steps) a viewer's browser may hold frames
   * before rendering them, sent with the playout-delay RTP header extension
   * (minimum 0) to viewers whose offer names it. 0 renders each frame as
   * soon as it is decoded (Chromium's low-latency path, which keeps no
   * margin against network jitter); -1, the default, sends no extension
   * and leaves the browser's own jitter buffer in charge. Read at each
   * offer.
   */
  properties[PROP_PLAYOUT_DELAY_MAX_MS] =
      g_param_spec_int ("playout-delay-max-ms", "Playout delay max (ms)",
      "Most delay before a viewer renders a frame, in ms (0: at once, "
      "-1: no extension, the browser decides)", -1, PCR_PLAYOUT_DELAY_MAX_MS,
      DEFAULT_PLAYOUT_DELAY_MAX_MS, rw | GST_PARAM_MUTABLE_PLAYING);
  g_object_class_install_properties (gobject_class, N_PROPERTIES, properties);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_set_static_metadata (element_class,
      "MQTT-signalled WebRTC sink", "Sink/Network/WebRTC",
      "Serves an H.264 stream to any number of WebRTC viewers, signalled "
      "over MQTT", "picamrtc developers");
}
