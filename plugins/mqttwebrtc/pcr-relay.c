/* The relay: mqttwebrtcsink publishing to a Janus VideoRoom (pcr-relay.h).
 *
 *   rendition tee ─▶ queue ─▶ rtph264pay (mid v, rid h) ─┐
 *   (low tee ──────▶ queue ─▶ rtph264pay (mid v, rid l)) ─┴▶ rtpfunnel ─▶
 *       capsfilter (one m-line: H.264, a=simulcast send h;l) ─▶ webrtcbin
 *
 * One attempt is one Janus session plus one branch: connect, make the
 * room (427 "already exists" is fine), offer, "joinandconfigure" with the
 * offer, take the answer; up at Janus' "webrtcup". Anything going wrong
 * (Janus unreachable, restarted, hanging up, no "webrtcup" within 10 s)
 * ends the attempt and, while the relay is wanted, a new one starts a
 * second later. A publisher id of ours still in the room (a camera that
 * restarted before Janus noticed) is kicked before the join. Janus needs
 * the mid header extension on every packet of a simulcast m-line and the
 * rid one to tell the layers apart. */
#include "pcr-relay.h"

#include "pcr-janus.h"
#include "pcr-viewer.h"

#include <gst/rtp/rtp.h>
#include <gst/video/video.h>
#include <gst/webrtc/webrtc.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC (relay_debug);
#define GST_CAT_DEFAULT relay_debug

#define RETRY_MS 1000
#define UP_TIMEOUT_S 10
#define QUEUE_MAX_BUFFERS 60
#define PAYLOAD_TYPE 96
#define MID "v"
#define MID_EXT_ID 1
#define RID_EXT_ID 2
#define MID_URI "urn:ietf:params:rtp-hdrext:sdes:mid"
#define RID_URI "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
#define MAX_LAYERS 2

static const gchar *const rids[MAX_LAYERS] = { "h", "l" };

typedef struct _Attempt Attempt;

struct _Attempt
{
  gint refs;
  GMainContext *context;        /* ref: posts outlive the relay */
  PcrRelay *relay;              /* NULL once abandoned; context only */
  PcrJanus *janus;
  GstBin *bin;                  /* ref */
  GstElement *webrtc, *funnel, *filter;
  GstElement *queues[MAX_LAYERS], *pays[MAX_LAYERS];
  guint32 ssrcs[MAX_LAYERS];
  GstElement *tees[MAX_LAYERS];
  GstPad *tee_pads[MAX_LAYERS];
  gulong idle_probes[MAX_LAYERS];
  guint n_layers;
  gint unlinked;                /* tee pads unlinked so far (atomic) */
  gboolean in_bin;
  PcrRelay *owner;              /* while abandoned and not yet freed */
  gboolean finished;            /* the branch is gone */
};

struct _PcrRelay
{
  GstBin *bin;
  GMainContext *context;
  gchar *url, *apisecret, *adminkey, *display;
  gchar *stun_server, *turn_server, *ice_addresses;
  guint64 room, feed;
  PcrRelayCallbacks callbacks;
  gpointer user_data;

  gboolean wanted;
  GstElement *tees[MAX_LAYERS]; /* refs, while wanted */
  guint n_tees;
  PcrRelayState state;
  gchar *error;
  Attempt *attempt;
  GList *dying;                 /* abandoned attempts, branch not yet freed */
  GSource *retry;
  GSource *up_timeout;
};

const gchar *
pcr_relay_state_to_string (PcrRelayState state)
{
  switch (state) {
    case PCR_RELAY_IDLE:
      return "idle";
    case PCR_RELAY_CONNECTING:
      return "connecting";
    case PCR_RELAY_PUBLISHING:
      return "publishing";
    case PCR_RELAY_UNREACHABLE:
      return "unreachable";
  }
  return "idle";
}

guint64
pcr_relay_id_for (const gchar * device_id, const gchar * what)
{
  g_autofree gchar *text = g_strconcat (what, ":", device_id, NULL);
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 digest[32];
  gsize len = sizeof (digest);
  guint64 id = 0;

  g_checksum_update (sum, (const guchar *) text, -1);
  g_checksum_get_digest (sum, digest, &len);
  for (guint i = 0; i < 8; i++)
    id = (id << 8) | digest[i];
  id &= (G_GUINT64_CONSTANT (1) << 53) - 1;
  return id == 0 ? 1 : id;
}

/* ------------------------------------------------------------------------
 * Attempts and what streaming threads post about them
 * ------------------------------------------------------------------------ */

static Attempt *
attempt_ref (Attempt * a)
{
  g_atomic_int_inc (&a->refs);
  return a;
}

static void
attempt_unref (gpointer data)
{
  Attempt *a = data;

  if (!g_atomic_int_dec_and_test (&a->refs))
    return;
  g_main_context_unref (a->context);
  gst_object_unref (a->bin);
  g_free (a);
}

static void
attempt_closure_unref (gpointer data, GClosure * closure)
{
  attempt_unref (data);
}

typedef enum
{
  POST_OFFER,
  POST_CANDIDATE,
  POST_GATHERED,
  POST_FAILED,
  POST_KEY_UNIT,
  POST_UNLINKED,
} PostKind;

typedef struct
{
  Attempt *attempt;
  PostKind kind;
  gchar *text;
  guint number;
} Post;

static void
post_free (gpointer data)
{
  Post *p = data;

  attempt_unref (p->attempt);
  g_free (p->text);
  g_free (p);
}

static gboolean handle_post (gpointer data);

static void
post (Attempt * a, PostKind kind, gchar * text, guint number)
{
  Post *p = g_new0 (Post, 1);
  GSource *source = g_idle_source_new ();

  p->attempt = attempt_ref (a);
  p->kind = kind;
  p->text = text;
  p->number = number;
  g_source_set_callback (source, handle_post, p, post_free);
  g_source_attach (source, a->context);
  g_source_unref (source);
}

/* ------------------------------------------------------------------------
 * State
 * ------------------------------------------------------------------------ */

/* Every failed attempt is told, changed or not: viewers waiting for the
 * relay learn that it failed again. */
static void
set_state (PcrRelay * relay, PcrRelayState state, const gchar * error)
{
  if (relay->state == state && g_strcmp0 (relay->error, error) == 0 &&
      state != PCR_RELAY_UNREACHABLE)
    return;
  if (state == PCR_RELAY_UNREACHABLE && relay->state != state)
    g_message ("relay: Janus at %s: %s; serving viewers directly meanwhile",
        relay->url, error);
  else if (state == PCR_RELAY_PUBLISHING)
    g_message ("relay: publishing to Janus at %s, room %" G_GUINT64_FORMAT
        ", feed %" G_GUINT64_FORMAT, relay->url, relay->room, relay->feed);
  else if (state == PCR_RELAY_IDLE && relay->state != state)
    g_message ("relay: not publishing (nobody watches through Janus)");
  relay->state = state;
  g_free (relay->error);
  relay->error = g_strdup (error);
  if (relay->callbacks.state_changed)
    relay->callbacks.state_changed (relay, state, error, relay->user_data);
}

static void
clear_source (GSource ** source)
{
  if (*source) {
    g_source_destroy (*source);
    g_source_unref (*source);
    *source = NULL;
  }
}

static GSource *
add_timeout (PcrRelay * relay, guint ms, GSourceFunc func)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, func, relay, NULL);
  g_source_attach (source, relay->context);
  return source;
}

/* ------------------------------------------------------------------------
 * Tearing an attempt down
 * ------------------------------------------------------------------------ */

static void
finish_teardown (Attempt * a)
{
  GstElement *elements[] = { a->webrtc, a->filter, a->funnel,
    a->pays[0], a->pays[1], a->queues[0], a->queues[1]
  };

  if (a->finished)
    return;
  a->finished = TRUE;
  if (a->owner)
    a->owner->dying = g_list_remove (a->owner->dying, a);
  a->owner = NULL;
  for (guint i = 0; i < MAX_LAYERS; i++) {
    if (a->tee_pads[i]) {
      gst_element_release_request_pad (a->tees[i], a->tee_pads[i]);
      gst_clear_object (&a->tee_pads[i]);
    }
    gst_clear_object (&a->tees[i]);
  }
  for (guint i = 0; i < G_N_ELEMENTS (elements); i++) {
    if (!elements[i])
      continue;
    gst_element_set_locked_state (elements[i], TRUE);
    gst_element_set_state (elements[i], GST_STATE_NULL);
    if (a->in_bin)
      gst_bin_remove (a->bin, elements[i]);
    gst_object_unref (elements[i]);
  }
  a->webrtc = a->filter = a->funnel = NULL;
  memset (a->pays, 0, sizeof (a->pays));
  memset (a->queues, 0, sizeof (a->queues));
  attempt_unref (a);            /* the branch's own */
}

static GstPadProbeReturn
tee_pad_idle (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Attempt *a = user_data;
  g_autoptr (GstPad) peer = gst_pad_get_peer (pad);

  for (guint i = 0; i < a->n_layers; i++)
    if (a->tee_pads[i] == pad)
      a->idle_probes[i] = 0;
  if (peer)
    gst_pad_unlink (pad, peer);
  if (g_atomic_int_add (&a->unlinked, 1) + 1 == (gint) a->n_layers)
    post (a, POST_UNLINKED, NULL, 0);
  return GST_PAD_PROBE_REMOVE;
}

/* Ends @a: its Janus session destroyed (Janus drops the publisher), its
 * branch unlinked from an IDLE probe and freed on the context. */
static void
abandon (PcrRelay * relay)
{
  Attempt *a = relay->attempt;
  guint linked = 0;

  if (!a)
    return;
  relay->attempt = NULL;
  a->relay = NULL;
  clear_source (&relay->up_timeout);
  g_clear_pointer (&a->janus, pcr_janus_free);
  for (guint i = 0; i < a->n_layers; i++)
    if (a->tee_pads[i] && gst_pad_is_linked (a->tee_pads[i]))
      linked++;
  if (linked == 0) {
    finish_teardown (a);
    return;
  }
  a->owner = relay;
  relay->dying = g_list_prepend (relay->dying, a);
  for (guint i = 0; i < a->n_layers; i++) {
    if (!a->tee_pads[i] || !gst_pad_is_linked (a->tee_pads[i])) {
      if (g_atomic_int_add (&a->unlinked, 1) + 1 == (gint) a->n_layers)
        post (a, POST_UNLINKED, NULL, 0);
      continue;
    }
    a->idle_probes[i] = gst_pad_add_probe (a->tee_pads[i],
        GST_PAD_PROBE_TYPE_IDLE, tee_pad_idle, a, NULL);
  }
}

static gboolean retry_cb (gpointer data);

static void
fail (PcrRelay * relay, const gchar * why)
{
  GST_WARNING ("relay attempt failed: %s", why);
  abandon (relay);
  if (!relay->wanted) {
    set_state (relay, PCR_RELAY_IDLE, NULL);
    return;
  }
  set_state (relay, PCR_RELAY_UNREACHABLE, why);
  clear_source (&relay->retry);
  relay->retry = add_timeout (relay, RETRY_MS, retry_cb);
}

/* ------------------------------------------------------------------------
 * The branch
 * ------------------------------------------------------------------------ */

/* Janus' PLIs and FIRs, read from RTCP as it arrives (an RTCP thread).
 * rtpsession turns them into force-key-unit events upstream, but the
 * rtpfunnel inside webrtcbin routes those by the SSRC of its sink pad's
 * caps, and ours carries two: it drops them. A PLI names the layer by its
 * SSRC; a FIR (in its FCI) or an unknown SSRC asks for both. */
static void
on_feedback_rtcp (GObject * session, guint type, guint fbtype,
    guint sender_ssrc, guint media_ssrc, GstBuffer * fci, gpointer user_data)
{
  Attempt *a = user_data;
  gboolean known = FALSE;

  if (type != GST_RTCP_TYPE_PSFB || (fbtype != GST_RTCP_PSFB_TYPE_PLI &&
          fbtype != GST_RTCP_PSFB_TYPE_FIR))
    return;
  for (guint layer = 0; layer < a->n_layers; layer++) {
    if (fbtype == GST_RTCP_PSFB_TYPE_PLI && a->ssrcs[layer] == media_ssrc) {
      post (a, POST_KEY_UNIT, NULL, layer);
      known = TRUE;
    }
  }
  for (guint layer = 0; !known && layer < a->n_layers; layer++)
    post (a, POST_KEY_UNIT, NULL, layer);
}

static void
on_ice_candidate (GstElement * webrtc, guint mline, gchar * candidate,
    gpointer user_data)
{
  post (user_data, POST_CANDIDATE, g_strdup (candidate), mline);
}

static void
on_gathering_state (GObject * webrtc, GParamSpec * pspec, gpointer user_data)
{
  GstWebRTCICEGatheringState state;

  g_object_get (webrtc, "ice-gathering-state", &state, NULL);
  if (state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE)
    post (user_data, POST_GATHERED, NULL, 0);
}

static void
on_connection_state (GObject * webrtc, GParamSpec * pspec, gpointer user_data)
{
  GstWebRTCPeerConnectionState state;

  g_object_get (webrtc, "connection-state", &state, NULL);
  if (state == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED)
    post (user_data, POST_FAILED, g_strdup ("the connection to Janus "
            "failed"), 0);
}

static void
attempt_closure_unref (gpointer data, GClosure * closure);

static void
on_deep_element_added (GstBin * bin, GstBin * sub_bin, GstElement * element,
    gpointer user_data)
{
  GstElementFactory *factory = gst_element_get_factory (element);
  const gchar *name = factory ? GST_OBJECT_NAME (factory) : "";

  /* as for viewers: packets leave as soon as they are made */
  if (g_str_equal (name, "clocksync") || g_str_equal (name, "nicesink")) {
    g_object_set (element, "sync", FALSE, NULL);
  } else if (g_str_equal (name, "rtpsession")) {
    GObject *session = NULL;

    g_object_get (element, "internal-session", &session, NULL);
    if (session)
      g_signal_connect_data (session, "on-feedback-rtcp",
          G_CALLBACK (on_feedback_rtcp), attempt_ref (user_data),
          attempt_closure_unref, 0);
    g_clear_object (&session);
  }
}

static void
on_offer_created (GstPromise * promise, gpointer user_data)
{
  Attempt *a = user_data;
  const GstStructure *reply = gst_promise_get_reply (promise);
  GstWebRTCSessionDescription *offer = NULL;

  if (reply)
    gst_structure_get (reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION,
        &offer, NULL);
  if (!offer) {
    post (a, POST_FAILED, g_strdup ("webrtcbin made no offer"), 0);
  } else {
    post (a, POST_OFFER, gst_sdp_message_as_text (offer->sdp), 0);
    gst_webrtc_session_description_free (offer);
  }
  gst_promise_unref (promise);
}

static gboolean
add_extension (GstElement * pay, const gchar * uri, guint id,
    const gchar * property, const gchar * value)
{
  GstRTPHeaderExtension *ext = gst_rtp_header_extension_create_from_uri (uri);

  if (!ext)
    return FALSE;
  gst_rtp_header_extension_set_id (ext, id);
  g_object_set (ext, property, value, NULL);
  g_signal_emit_by_name (pay, "add-extension", ext);
  gst_object_unref (ext);
  return TRUE;
}

static GstCaps *
branch_caps (guint n_layers)
{
  GstCaps *caps = gst_caps_new_simple ("application/x-rtp",
      "media", G_TYPE_STRING, "video",
      "encoding-name", G_TYPE_STRING, "H264",
      "clock-rate", G_TYPE_INT, 90000,
      "payload", G_TYPE_INT, PAYLOAD_TYPE,
      "a-mid", G_TYPE_STRING, MID,
      "extmap-1", G_TYPE_STRING, MID_URI, NULL);

  if (n_layers > 1)
    gst_caps_set_simple (caps, "extmap-2", G_TYPE_STRING, RID_URI,
        "rid-h", G_TYPE_STRING, "send", "rid-l", G_TYPE_STRING, "send",
        "a-simulcast", G_TYPE_STRING, "send h;l", NULL);
  return caps;
}

static void
configure_ice (PcrRelay * relay, GstElement * webrtc)
{
  if (relay->stun_server)
    g_object_set (webrtc, "stun-server", relay->stun_server, NULL);
  if (relay->turn_server) {
    gboolean ok = FALSE;

    g_signal_emit_by_name (webrtc, "add-turn-server", relay->turn_server,
        &ok);
    if (!ok)
      GST_WARNING ("turn-server is not a usable TURN URI");
  }
  pcr_webrtc_configure_ice (webrtc, relay->ice_addresses,
      GST_OBJECT (relay->bin));
}

static GstElement *
make (const gchar * factory, GError ** error)
{
  GstElement *element = gst_element_factory_make (factory, NULL);

  if (!element)
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN,
        "cannot create %s", factory);
  else
    gst_object_ref_sink (element);
  return element;
}

static gboolean
build_branch (PcrRelay * relay, Attempt * a, GError ** error)
{
  g_autoptr (GstCaps) caps = NULL;
  g_autoptr (GstPad) filter_src = NULL, webrtc_sink = NULL;
  GstWebRTCRTPTransceiver *trans = NULL;
  guint i;

  /* the layers carry the same frames: the same RTP timestamps for them,
   * as a browser's simulcast has, so that Janus moving a viewer from one
   * layer to the other keeps its clock (with unrelated bases the viewer's
   * jitter buffer grew by 50 ms) */
  guint32 timestamp_offset = g_random_int ();

  a->n_layers = MIN (relay->n_tees, MAX_LAYERS);
  if (!(a->webrtc = make ("webrtcbin", error)) ||
      !(a->funnel = make ("rtpfunnel", error)) ||
      !(a->filter = make ("capsfilter", error)))
    return FALSE;
  for (i = 0; i < a->n_layers; i++) {
    if (!(a->queues[i] = make ("queue", error)) ||
        !(a->pays[i] = make ("rtph264pay", error)))
      return FALSE;
    g_object_set (a->queues[i], "leaky", 2, "max-size-buffers",
        QUEUE_MAX_BUFFERS, "max-size-bytes", 0, "max-size-time",
        (guint64) 0, NULL);
    a->ssrcs[i] = g_random_int ();
    g_object_set (a->pays[i], "pt", PAYLOAD_TYPE, "config-interval", -1,
        "ssrc", a->ssrcs[i], "mtu", 1200, "timestamp-offset",
        timestamp_offset, NULL);
    gst_util_set_object_arg (G_OBJECT (a->pays[i]), "aggregate-mode",
        "zero-latency");
    if (!add_extension (a->pays[i], MID_URI, MID_EXT_ID, "mid", MID) ||
        (a->n_layers > 1 && !add_extension (a->pays[i], RID_URI, RID_EXT_ID,
                "rid", rids[i]))) {
      g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN,
          "no rtphdrextmid/rtphdrextstreamid (gstreamer1.0-plugins-good)");
      return FALSE;
    }
  }
  caps = branch_caps (a->n_layers);
  g_object_set (a->filter, "caps", caps, NULL);
  gst_util_set_object_arg (G_OBJECT (a->webrtc), "bundle-policy",
      "max-bundle");
  g_signal_connect_data (a->webrtc, "deep-element-added",
      G_CALLBACK (on_deep_element_added), attempt_ref (a),
      attempt_closure_unref, 0);

  /* not floating: the bin takes a reference of its own */
  gst_bin_add_many (a->bin, a->webrtc, a->funnel, a->filter, NULL);
  for (i = 0; i < a->n_layers; i++)
    gst_bin_add_many (a->bin, a->queues[i], a->pays[i], NULL);
  a->in_bin = TRUE;
  configure_ice (relay, a->webrtc);

  webrtc_sink = gst_element_request_pad_simple (a->webrtc, "sink_%u");
  filter_src = gst_element_get_static_pad (a->filter, "src");
  if (!webrtc_sink || !gst_element_link (a->funnel, a->filter) ||
      gst_pad_link (filter_src, webrtc_sink) != GST_PAD_LINK_OK) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
        "cannot link the relay's webrtcbin");
    return FALSE;
  }
  g_object_get (webrtc_sink, "transceiver", &trans, NULL);
  /* No NACK/RTX towards Janus: rtprtxsend copies the rid extension into
   * its retransmissions, and Janus 1.1.2 then took the retransmission's
   * SSRC for the layer's own, back and forth ("Big sequence number jump"
   * on one substream, both sequence spaces), and its viewers stuttered
   * (browser-relay, 4 fps, seen in CI). A loss on the camera's link to
   * Janus costs a key frame (Janus' PLI) instead. */
  if (trans) {
    g_object_set (trans, "direction",
        GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, "do-nack", FALSE,
        NULL);
    gst_object_unref (trans);
  }
  for (i = 0; i < a->n_layers; i++) {
    if (!gst_element_link_many (a->queues[i], a->pays[i], a->funnel, NULL)) {
      g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
          "cannot link the relay's payloader");
      return FALSE;
    }
  }
  g_signal_connect_data (a->webrtc, "on-ice-candidate",
      G_CALLBACK (on_ice_candidate), attempt_ref (a),
      attempt_closure_unref, 0);
  g_signal_connect_data (a->webrtc, "notify::ice-gathering-state",
      G_CALLBACK (on_gathering_state), attempt_ref (a),
      attempt_closure_unref, 0);
  g_signal_connect_data (a->webrtc, "notify::connection-state",
      G_CALLBACK (on_connection_state), attempt_ref (a),
      attempt_closure_unref, 0);

  /* downstream first, the tees last: nothing flows into a stopped element */
  gst_element_sync_state_with_parent (a->webrtc);
  gst_element_sync_state_with_parent (a->filter);
  gst_element_sync_state_with_parent (a->funnel);
  for (i = 0; i < a->n_layers; i++) {
    g_autoptr (GstPad) queue_sink = gst_element_get_static_pad (a->queues[i],
        "sink");

    gst_element_sync_state_with_parent (a->pays[i]);
    gst_element_sync_state_with_parent (a->queues[i]);
    a->tees[i] = gst_object_ref (relay->tees[i]);
    a->tee_pads[i] = gst_element_request_pad_simple (a->tees[i], "src_%u");
    if (!a->tee_pads[i] ||
        gst_pad_link (a->tee_pads[i], queue_sink) != GST_PAD_LINK_OK) {
      g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
          "cannot link the relay to the stream");
      return FALSE;
    }
  }
  return TRUE;
}

/* ------------------------------------------------------------------------
 * Talking to Janus
 * ------------------------------------------------------------------------ */

/* Whether @a is still the relay's attempt; its relay then. */
static PcrRelay *
current (Attempt * a)
{
  return a->relay && a->relay->attempt == a ? a->relay : NULL;
}

static void
on_joined (PcrJanus * janus, JsonObject * reply, const GError * error,
    gpointer user_data)
{
  Attempt *a = user_data;
  PcrRelay *relay = current (a);
  const gchar *sdp;
  GstSDPMessage *msg = NULL;
  GstWebRTCSessionDescription *answer;

  if (!relay)
    return;
  if (error) {
    fail (relay, error->message);
    return;
  }
  sdp = pcr_janus_jsep_sdp (reply, "answer");
  if (!sdp || gst_sdp_message_new_from_text (sdp, &msg) != GST_SDP_OK) {
    if (msg)
      gst_sdp_message_free (msg);
    fail (relay, "Janus answered the offer without an answer SDP");
    return;
  }
  answer = gst_webrtc_session_description_new (GST_WEBRTC_SDP_TYPE_ANSWER,
      msg);
  g_signal_emit_by_name (a->webrtc, "set-remote-description", answer, NULL);
  gst_webrtc_session_description_free (answer);
}

static void
join (PcrRelay * relay, Attempt * a, const gchar * sdp)
{
  JsonObject *join = json_object_new ();

  json_object_set_string_member (join, "request", "joinandconfigure");
  json_object_set_string_member (join, "ptype", "publisher");
  json_object_set_int_member (join, "room", relay->room);
  json_object_set_int_member (join, "id", relay->feed);
  json_object_set_string_member (join, "display", relay->display);
  json_object_set_boolean_member (join, "audio", FALSE);
  json_object_set_boolean_member (join, "video", TRUE);
  pcr_janus_message (a->janus, join, "offer", sdp, on_joined, a);
  json_object_unref (join);
}

static void
send_offer (PcrRelay * relay, Attempt * a, const gchar * sdp)
{
  GstSDPMessage *msg = NULL;
  GstWebRTCSessionDescription *offer;

  if (gst_sdp_message_new_from_text (sdp, &msg) != GST_SDP_OK) {
    fail (relay, "webrtcbin's offer does not parse");
    return;
  }
  offer = gst_webrtc_session_description_new (GST_WEBRTC_SDP_TYPE_OFFER, msg);
  g_signal_emit_by_name (a->webrtc, "set-local-description", offer, NULL);
  gst_webrtc_session_description_free (offer);
  join (relay, a, sdp);
}

static void
offer (PcrRelay * relay, Attempt * a)
{
  g_autoptr (GError) build_error = NULL;
  GstPromise *promise;

  if (!build_branch (relay, a, &build_error)) {
    fail (relay, build_error->message);
    return;
  }
  promise = gst_promise_new_with_change_func (on_offer_created,
      attempt_ref (a), attempt_unref);
  g_signal_emit_by_name (a->webrtc, "create-offer", NULL, promise);
}

static void
on_kicked (PcrJanus * janus, JsonObject * reply, const GError * error,
    gpointer user_data)
{
  Attempt *a = user_data;
  PcrRelay *relay = current (a);

  if (!relay)
    return;
  if (error)
    GST_INFO ("kicking our old publisher: %s", error->message);
  offer (relay, a);
}

/* Our publisher id still in the room (a camera that restarted before
 * Janus noticed its old session gone, up to a minute) would refuse the
 * join: drop it first. */
static void
on_participants (PcrJanus * janus, JsonObject * reply, const GError * error,
    gpointer user_data)
{
  Attempt *a = user_data;
  PcrRelay *relay = current (a);
  JsonObject *data = reply ? pcr_janus_plugin_data (reply) : NULL;
  JsonNode *node = data ? json_object_get_member (data, "participants") :
      NULL;
  JsonArray *people = node && JSON_NODE_HOLDS_ARRAY (node) ?
      json_node_get_array (node) : NULL;
  gboolean there = FALSE;
  JsonObject *kick;

  if (!relay)
    return;
  for (guint i = 0; people && i < json_array_get_length (people); i++) {
    JsonNode *p = json_array_get_element (people, i);

    if (JSON_NODE_HOLDS_OBJECT (p) &&
        (guint64) pcr_janus_int (json_node_get_object (p), "id",
            0) == relay->feed)
      there = TRUE;
  }
  if (!there) {
    offer (relay, a);
    return;
  }
  GST_INFO ("our publisher id is still in room %" G_GUINT64_FORMAT
      ": kicking it", relay->room);
  kick = json_object_new ();
  json_object_set_string_member (kick, "request", "kick");
  json_object_set_int_member (kick, "room", relay->room);
  json_object_set_int_member (kick, "id", relay->feed);
  if (relay->adminkey)
    json_object_set_string_member (kick, "secret", relay->adminkey);
  pcr_janus_message (janus, kick, NULL, NULL, on_kicked, a);
  json_object_unref (kick);
}

static void
on_room (PcrJanus * janus, JsonObject * reply, const GError * error,
    gpointer user_data)
{
  Attempt *a = user_data;
  PcrRelay *relay = current (a);
  JsonObject *list;

  if (!relay)
    return;
  /* 427: the room exists (made by an earlier run, or by hand) */
  if (error && !strstr (error->message, "error 427")) {
    fail (relay, error->message);
    return;
  }
  list = json_object_new ();
  json_object_set_string_member (list, "request", "listparticipants");
  json_object_set_int_member (list, "room", relay->room);
  pcr_janus_message (janus, list, NULL, NULL, on_participants, a);
  json_object_unref (list);
}

static void
on_connected (PcrJanus * janus, JsonObject * reply, const GError * error,
    gpointer user_data)
{
  Attempt *a = user_data;
  PcrRelay *relay = current (a);
  JsonObject *create;
  g_autofree gchar *description = NULL;

  if (!relay)
    return;
  if (error) {
    fail (relay, error->message);
    return;
  }
  description = g_strdup_printf ("picamrtc %s", relay->display);
  create = json_object_new ();
  json_object_set_string_member (create, "request", "create");
  json_object_set_int_member (create, "room", relay->room);
  json_object_set_string_member (create, "description", description);
  /* a room named in several cameras' URLs holds them all */
  json_object_set_int_member (create, "publishers", 16);
  json_object_set_string_member (create, "videocodec", "h264");
  json_object_set_boolean_member (create, "permanent", FALSE);
  if (relay->adminkey) {
    json_object_set_string_member (create, "admin_key", relay->adminkey);
    json_object_set_string_member (create, "secret", relay->adminkey);
  }
  pcr_janus_message (janus, create, NULL, NULL, on_room, a);
  json_object_unref (create);
}

static void
on_janus_event (PcrJanus * janus, JsonObject * event, gpointer user_data)
{
  Attempt *a = user_data;
  PcrRelay *relay = current (a);
  const gchar *kind = pcr_janus_string (event, "janus", "");

  if (!relay)
    return;
  if (g_str_equal (kind, "webrtcup")) {
    clear_source (&relay->up_timeout);
    set_state (relay, PCR_RELAY_PUBLISHING, NULL);
  } else if (g_str_equal (kind, "hangup")) {
    g_autofree gchar *why = g_strdup_printf ("Janus hung up: %.100s",
        pcr_janus_string (event, "reason", ""));
    fail (relay, why);
  }
}

static void
on_janus_lost (PcrJanus * janus, const GError * error, gpointer user_data)
{
  Attempt *a = user_data;
  PcrRelay *relay = current (a);

  if (relay)
    fail (relay, error->message);
}

static gboolean
handle_post (gpointer data)
{
  Post *p = data;
  Attempt *a = p->attempt;
  PcrRelay *relay = current (a);

  if (p->kind == POST_UNLINKED) {
    finish_teardown (a);
    return G_SOURCE_REMOVE;
  }
  if (!relay)
    return G_SOURCE_REMOVE;
  switch (p->kind) {
    case POST_OFFER:
      send_offer (relay, a, p->text);
      break;
    case POST_CANDIDATE:
      if (a->janus)
        pcr_janus_trickle (a->janus, p->number, p->text);
      break;
    case POST_GATHERED:
      if (a->janus)
        pcr_janus_trickle (a->janus, 0, NULL);
      break;
    case POST_FAILED:
      fail (relay, p->text);
      break;
    case POST_KEY_UNIT:
      GST_DEBUG ("Janus asks for a key frame of layer %u", p->number);
      if (relay->callbacks.key_unit)
        relay->callbacks.key_unit (relay, p->number, relay->user_data);
      break;
    case POST_UNLINKED:
      break;
  }
  return G_SOURCE_REMOVE;
}

static gboolean
up_timeout_cb (gpointer data)
{
  PcrRelay *relay = data;

  g_clear_pointer (&relay->up_timeout, g_source_unref);
  fail (relay, "Janus did not take the stream within 10 s");
  return G_SOURCE_REMOVE;
}

static void
start_attempt (PcrRelay * relay)
{
  Attempt *a = g_new0 (Attempt, 1);

  a->refs = 1;                  /* the branch's, dropped by finish_teardown */
  a->context = g_main_context_ref (relay->context);
  a->bin = gst_object_ref (relay->bin);
  a->relay = relay;
  relay->attempt = a;
  a->janus = pcr_janus_new (relay->url, relay->apisecret, on_janus_event,
      on_janus_lost, a);
  if (relay->state != PCR_RELAY_UNREACHABLE)
    set_state (relay, PCR_RELAY_CONNECTING, NULL);
  clear_source (&relay->up_timeout);
  relay->up_timeout = add_timeout (relay, UP_TIMEOUT_S * 1000, up_timeout_cb);
  pcr_janus_connect (a->janus, "janus.plugin.videoroom", on_connected, a);
}

static gboolean
retry_cb (gpointer data)
{
  PcrRelay *relay = data;

  g_clear_pointer (&relay->retry, g_source_unref);
  if (relay->wanted && !relay->attempt)
    start_attempt (relay);
  return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------ */

PcrRelay *
pcr_relay_new (GstBin * bin, GMainContext * context,
    const PcrRelaySettings * settings, const PcrRelayCallbacks * callbacks,
    gpointer user_data)
{
  PcrRelay *relay = g_new0 (PcrRelay, 1);

  if (!relay_debug)
    GST_DEBUG_CATEGORY_INIT (relay_debug, "pcrrelay", 0,
        "mqttwebrtcsink's Janus relay");
  relay->bin = bin;
  relay->context = g_main_context_ref (context);
  relay->url = g_strdup (settings->url);
  relay->apisecret = g_strdup (settings->apisecret);
  relay->adminkey = g_strdup (settings->adminkey);
  relay->display = g_strdup (settings->display);
  relay->stun_server = g_strdup (settings->stun_server);
  relay->turn_server = g_strdup (settings->turn_server);
  relay->ice_addresses = g_strdup (settings->ice_addresses);
  relay->room = settings->room;
  relay->feed = settings->feed;
  relay->callbacks = *callbacks;
  relay->user_data = user_data;
  return relay;
}

static void
drop_tees (PcrRelay * relay)
{
  for (guint i = 0; i < MAX_LAYERS; i++)
    gst_clear_object (&relay->tees[i]);
  relay->n_tees = 0;
}

void
pcr_relay_set_wanted (PcrRelay * relay, gboolean wanted, GstElement ** tees,
    guint n_tees)
{
  gboolean same_tees = n_tees == relay->n_tees;

  for (guint i = 0; same_tees && i < n_tees && i < MAX_LAYERS; i++)
    same_tees = tees[i] == relay->tees[i];
  if (wanted == relay->wanted && (!wanted || same_tees))
    return;
  /* the renditions changed under a publishing relay: publish anew */
  if (wanted && relay->wanted)
    abandon (relay);
  relay->wanted = wanted;
  drop_tees (relay);
  if (!wanted) {
    clear_source (&relay->retry);
    abandon (relay);
    set_state (relay, PCR_RELAY_IDLE, NULL);
    return;
  }
  for (guint i = 0; i < n_tees && i < MAX_LAYERS; i++)
    relay->tees[i] = gst_object_ref (tees[i]);
  relay->n_tees = MIN (n_tees, MAX_LAYERS);
  if (!relay->attempt && !relay->retry)
    start_attempt (relay);
}

void
pcr_relay_retry_now (PcrRelay * relay)
{
  if (!relay->wanted || relay->attempt || !relay->retry)
    return;
  clear_source (&relay->retry);
  start_attempt (relay);
}

PcrRelayState
pcr_relay_get_state (PcrRelay * relay)
{
  return relay->state;
}

const gchar *
pcr_relay_get_error (PcrRelay * relay)
{
  return relay->error;
}

void
pcr_relay_free (PcrRelay * relay)
{
  Attempt *a;

  if (!relay)
    return;
  relay->callbacks.state_changed = NULL;
  relay->callbacks.key_unit = NULL;
  clear_source (&relay->retry);
  abandon (relay);
  /* the element is stopping: no streaming, and the context may not run
   * again; an IDLE probe that did not run at once never will, so the
   * branches go here */
  while (relay->dying) {
    a = relay->dying->data;
    for (guint i = 0; i < a->n_layers; i++) {
      g_autoptr (GstPad) peer = NULL;

      if (!a->tee_pads[i])
        continue;
      if (a->idle_probes[i])
        gst_pad_remove_probe (a->tee_pads[i], a->idle_probes[i]);
      peer = gst_pad_get_peer (a->tee_pads[i]);
      if (peer)
        gst_pad_unlink (a->tee_pads[i], peer);
    }
    finish_teardown (a);
  }
  drop_tees (relay);
  g_main_context_unref (relay->context);
  g_free (relay->url);
  g_free (relay->apisecret);
  g_free (relay->adminkey);
  g_free (relay->display);
  g_free (relay->stun_server);
  g_free (relay->turn_server);
  g_free (relay->ice_addresses);
  g_free (relay->error);
  g_free (relay);
}
