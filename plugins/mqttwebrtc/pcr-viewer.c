/* A viewer's session in mqttwebrtcsink (docs/architecture.md): the branch
 * queue ! rtph264pay ! webrtcbin it owns on the element's tee, the answer to
 * its offer, ICE both ways and its timeouts.
 *
 * Threads: a PcrViewer is only touched on the owner's GMainContext. What
 * webrtcbin's and rtpbin's threads may touch is its Peer: refcounted, with an
 * immutable id and context and an atomic RTCP stamp. Their callbacks copy
 * what they got into a PeerEvent and post it to the context, where it finds
 * its viewer through peer->viewer (NULL once the viewer is closing). */
#include "config.h"

#include "pcr-viewer-private.h"

#include <string.h>
#include <gst/rtp/rtp.h>
#include <gst/sdp/sdp.h>
#include <gst/video/video.h>
#include <gst/webrtc/webrtc.h>

#include "rtphdrextplayoutdelay.h"

GST_DEBUG_CATEGORY (pcr_viewer_debug);
#define GST_CAT_DEFAULT pcr_viewer_debug

/* A connected viewer that sends no RTCP this long is gone. */
#define RTCP_TIMEOUT_S 10
/* A viewer whose ICE/DTLS does not complete this long after its offer is
 * gone (a real one, even through TURN, connects in a few seconds); with the
 * element's 1 s tick it is reaped within 13 s. */
#define CONNECT_TIMEOUT_US (12 * G_TIME_SPAN_SECOND)
/* Bulk mode: answer with what was gathered after this long. */
#define GATHER_TIMEOUT_US (5 * G_TIME_SPAN_SECOND)
/* Bulk mode: webrtcbin 1.22 can say the gathering is complete a few
 * milliseconds before it hands over the relay candidate of a TURN server
 * (seen: 10 ms, in about one session in five). An answer sent at once
 * would lack it, and a viewer that can reach the camera only through
 * the camera's relay would never connect. So the answer waits for one
 * relay candidate per TURN server, for at most this long after the
 * gathering ended (a TURN server that refused us gives none). */
#define RELAY_GRACE_MS 500
#define MAX_REMOTE_CANDIDATES 64
/* A slow viewer loses frames instead of stalling the tee. */
#define QUEUE_MAX_BUFFERS 60
/* How far back a retransmission can reach, as RTP time. A NACK arrives one
 * round trip after the loss, and a repair that is lost again is asked for
 * once more after another: 1.5 s covers both over a slow mobile or TURN
 * path. Sized in time, not packets (webrtcbin 1.22 keeps 500 packets,
 * which a key frame of the highest rendition at 8 Mbit/s fills in 0.6 s):
 * with no packet cap it holds 1.5 s at any bitrate, about 1.5 MB per
 * viewer at 8 Mbit/s, bounded by what the encoder makes, not by the
 * viewer. */
#define RTX_HISTORY_MS 1500
/* What one retransmission request costs against the viewer's budget
 * (pcr_viewer_set_rtx_budget): one packet of the payloader's MTU. */
#define RTX_PACKET_BYTES 1200
/* How much of the budget may be spent at once: a quarter of a second's
 * worth, enough for the lost packets of a key frame at 10 % loss. */
#define RTX_BURST_S 1.0
/* Transport-wide congestion control (draft-holmer-rmcat-transport-wide-cc-
 * extensions-01): the viewer reports when each packet arrived, which the
 * bandwidth estimate reads as rtpsession's twcc-stats. */
#define TWCC_URI \
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

/* *INDENT-OFF* */
G_DEFINE_QUARK (pcr-viewer-error-quark, pcr_viewer_error);
/* *INDENT-ON* */

/* *INDENT-OFF* */
static G_DEFINE_QUARK (pcr-session, session);
/* *INDENT-ON* */

void
pcr_viewer_tag (GstElement * element, const gchar * id)
{
  if (element)
    g_object_set_qdata_full (G_OBJECT (element), session_quark (),
        g_strdup (id), g_free);
}

gchar *
pcr_viewer_session_of (GstObject * object)
{
  gchar *id = NULL;
  GstObject *o = object ? gst_object_ref (object) : NULL;

  while (o && !id) {
    GstObject *parent;

    id = g_strdup (g_object_get_qdata (G_OBJECT (o), session_quark ()));
    parent = gst_object_get_parent (o);
    gst_object_unref (o);
    o = parent;
  }
  if (o)
    gst_object_unref (o);
  return id;
}

static void
ensure_debug_category (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done)) {
    GST_DEBUG_CATEGORY_INIT (pcr_viewer_debug, "pcrviewer", 0,
        "mqttwebrtcsink's viewer sessions");
    g_once_init_leave (&done, 1);
  }
}

static gint
monotonic_s (void)
{
  return (gint) (g_get_monotonic_time () / G_USEC_PER_SEC);
}

/* ------------------------------------------------------------------------
 * Peer
 * ------------------------------------------------------------------------ */

Peer *
pcr_peer_ref (Peer * peer)
{
  g_atomic_int_inc (&peer->refcount);
  return peer;
}

void
pcr_peer_unref (Peer * peer)
{
  if (g_atomic_int_dec_and_test (&peer->refcount)) {
    g_mutex_clear (&peer->rtx_lock);
    g_mutex_clear (&peer->control_lock);
    g_clear_object (&peer->channel);
    g_ptr_array_unref (peer->drains);
    g_free (peer->talkback);
    g_main_context_unref (peer->context);
    g_clear_object (&peer->playout_delay);
    g_free (peer->id);
    g_free (peer);
  }
}

void
pcr_peer_closure_unref (gpointer data, GClosure * closure)
{
  pcr_peer_unref (data);
}

/* Runs @func on @context (not g_main_context_invoke, which may run it on
 * the calling thread). */
static void
post (GMainContext * context, GSourceFunc func, gpointer data,
    GDestroyNotify notify)
{
  GSource *source = g_idle_source_new ();

  g_source_set_callback (source, func, data, notify);
  g_source_attach (source, context);
  g_source_unref (source);
}

/* ------------------------------------------------------------------------
 * Talking to the viewer
 * ------------------------------------------------------------------------ */

void
pcr_viewer_reply_error (PcrSignaller * signaller, const gchar * id,
    PcrErrorCode code, const gchar * message)
{
  g_autoptr (PcrMessage) msg = pcr_message_new_error (code, message);

  ensure_debug_category ();
  GST_WARNING_OBJECT (signaller, "session %s: %s: %s", id,
      pcr_error_code_to_string (code), message);
  pcr_signaller_send (signaller, id, msg);
}

static void
send_message (PcrViewer * viewer, PcrMessage * msg)
{
  pcr_signaller_send (viewer->host.signaller, viewer->id, msg);
  pcr_message_free (msg);
}

static void
fail (PcrViewer * viewer, PcrErrorCode code, const gchar * message,
    const gchar * why)
{
  pcr_viewer_reply_error (viewer->host.signaller, viewer->id, code, message);
  viewer->host.failed (viewer, FALSE, why, viewer->host.user_data);
}

static void
send_answer (PcrViewer * viewer, const GstSDPMessage * sdp)
{
  g_autofree gchar *text = gst_sdp_message_as_text (sdp);

  send_message (viewer, pcr_message_new_answer (text));
  viewer->answer_sent = TRUE;
  GST_INFO_OBJECT (viewer->host.bin, "session %s: answer sent (%s)",
      viewer->id, viewer->trickle ? "trickle" : "bulk");
}

/* Bulk mode: the local description with every candidate gathered so far. */
static void
send_local_description (PcrViewer * viewer)
{
  GstWebRTCSessionDescription *desc = NULL;

  g_object_get (viewer->webrtc, "local-description", &desc, NULL);
  if (!desc) {
    fail (viewer, PCR_ERROR_INTERNAL, "no local description to send",
        "no local description");
    return;
  }
  send_answer (viewer, desc->sdp);
  gst_webrtc_session_description_free (desc);
}

static const gchar *
mid_of (PcrViewer * viewer, guint mline)
{
  if (!viewer->mids || mline >= g_strv_length (viewer->mids) ||
      !*viewer->mids[mline])
    return NULL;
  return viewer->mids[mline];
}

/* ------------------------------------------------------------------------
 * webrtcbin's callbacks: foreign threads, copy and post.
 * ------------------------------------------------------------------------ */

static void
peer_event_free (PeerEvent * ev)
{
  pcr_peer_unref (ev->peer);
  g_free (ev->candidate);
  g_clear_pointer (&ev->answer, gst_webrtc_session_description_free);
  g_free (ev->error);
  g_free (ev->text);
  g_clear_object (&ev->channel);
  g_free (ev);
}

static gboolean handle_peer_event (gpointer data);

PeerEvent *
pcr_peer_event_new (Peer * peer, EventKind kind)
{
  PeerEvent *ev = g_new0 (PeerEvent, 1);

  ev->peer = pcr_peer_ref (peer);
  ev->kind = kind;
  return ev;
}

void
pcr_peer_event_post (PeerEvent * ev)
{
  post (ev->peer->context, handle_peer_event, ev,
      (GDestroyNotify) peer_event_free);
}

static void
on_ice_candidate (GstElement * webrtc, guint mline, const gchar * candidate,
    Peer * peer)
{
  PeerEvent *ev = pcr_peer_event_new (peer, EV_LOCAL_CANDIDATE);

  ev->mline = mline;
  ev->candidate = g_strdup (candidate);
  pcr_peer_event_post (ev);
}

static void
on_gathering_state (GstElement * webrtc, GParamSpec * pspec, Peer * peer)
{
  GstWebRTCICEGatheringState state;

  g_object_get (webrtc, "ice-gathering-state", &state, NULL);
  if (state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE)
    pcr_peer_event_post (pcr_peer_event_new (peer, EV_GATHERING_DONE));
}

static void
on_connection_state (GstElement * webrtc, GParamSpec * pspec, Peer * peer)
{
  GstWebRTCPeerConnectionState pc;
  GstWebRTCICEConnectionState ice;
  PeerEvent *ev = pcr_peer_event_new (peer, EV_CONNECTION);

  g_object_get (webrtc, "connection-state", &pc, "ice-connection-state",
      &ice, NULL);
  ev->secured = pc == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED;
  if (ev->secured)
    g_atomic_int_set (&peer->secured, 1);
  ev->connected = ev->secured ||
      ice == GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED ||
      ice == GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED;
  ev->failed = pc == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED ||
      ice == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED;
  GST_DEBUG ("session %s: connection-state %d ice-connection-state %d",
      peer->id, pc, ice);
  pcr_peer_event_post (ev);
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
  PeerEvent *ev;

  /* Called by gst_promise_interrupt() from free_branch(): there is no
   * reply to read (gst_promise_get_reply would be a critical) and nobody
   * left to tell. */
  if (g_atomic_int_get (&peer->interrupted))
    return;
  reply = gst_promise_get_reply (promise);
  ev = pcr_peer_event_new (peer, EV_ANSWER);
  g_atomic_int_set (&ev->peer->answered, 1);
  /* gst_structure_get copies the boxed description. */
  if (!reply || !gst_structure_get (reply, "answer",
          GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &ev->answer, NULL)
      || !ev->answer) {
    GError *error = NULL;

    if (reply)
      gst_structure_get (reply, "error", G_TYPE_ERROR, &error, NULL);
    ev->error = g_strdup (error ? error->message : "webrtcbin made no answer");
    g_clear_error (&error);
  }
  pcr_peer_event_post (ev);
}

/* ------------------------------------------------------------------------
 * The context side of the negotiation
 * ------------------------------------------------------------------------ */

/* webrtcbin answers an offer it cannot serve with a rejected or inactive
 * m-line; the contract wants an error instead. */
static gboolean
answer_sends_video (const GstSDPMessage * sdp, guint mline)
{
  const GstSDPMedia *media = gst_sdp_message_get_media (sdp, mline);

  if (!media || gst_sdp_media_get_port (media) == 0)
    return FALSE;
  return gst_sdp_media_get_attribute_val (media, "sendonly") ||
      gst_sdp_media_get_attribute_val (media, "sendrecv");
}

static void
on_answer (PcrViewer * viewer, PeerEvent * ev)
{
  if (!ev->answer) {
    fail (viewer, PCR_ERROR_INTERNAL, ev->error, "answer failed");
    return;
  }
  if (!answer_sends_video (ev->answer->sdp, viewer->choice->mline)) {
    fail (viewer, PCR_ERROR_NO_COMPATIBLE_CODEC,
        "the device cannot send its H.264 stream in the offered format",
        "answer would be inactive");
    return;
  }
  pcr_viewer_refuse_unserved_audio (viewer, ev->answer->sdp);
  g_signal_emit_by_name (viewer->webrtc, "set-local-description", ev->answer,
      NULL);
  viewer->answer_set_us = g_get_monotonic_time ();
  /* Bulk mode waits for the gathering to end (or the tick's timeout). */
  if (viewer->trickle)
    send_answer (viewer, ev->answer->sdp);
}

static void
stop_relay_grace (PcrViewer * viewer)
{
  if (viewer->relay_grace) {
    g_source_destroy (viewer->relay_grace);
    g_clear_pointer (&viewer->relay_grace, g_source_unref);
  }
}

/* Bulk mode: the answer, once the gathering is over (RELAY_GRACE_MS). */
static void
send_gathered (PcrViewer * viewer)
{
  if (viewer->trickle || !viewer->gathering_done || !viewer->answer_set_us
      || viewer->answer_sent)
    return;
  stop_relay_grace (viewer);
  send_local_description (viewer);
}

static gboolean
relay_grace_cb (gpointer data)
{
  PcrViewer *viewer = data;

  GST_INFO_OBJECT (viewer->host.bin, "session %s: %u of %u TURN servers "
      "gave a relay candidate, answering without the rest", viewer->id,
      viewer->relay_candidates, viewer->turn_servers);
  g_clear_pointer (&viewer->relay_grace, g_source_unref);
  send_gathered (viewer);
  return G_SOURCE_REMOVE;
}

static void
on_local_candidate (PcrViewer * viewer, PeerEvent * ev)
{
  if (viewer->trickle) {
    send_message (viewer, pcr_message_new_candidate (ev->candidate,
            ev->mline, mid_of (viewer, ev->mline)));
    return;
  }
  if (g_strstr_len (ev->candidate, -1, " typ relay") &&
      ++viewer->relay_candidates >= viewer->turn_servers)
    send_gathered (viewer);
}

static void
on_gathering_done (PcrViewer * viewer)
{
  if (viewer->gathering_done)
    return;
  viewer->gathering_done = TRUE;
  if (viewer->trickle)
    send_message (viewer, pcr_message_new_candidate ("",
            viewer->choice->mline, mid_of (viewer, viewer->choice->mline)));
  else if (viewer->relay_candidates >= viewer->turn_servers)
    send_gathered (viewer);
  else if (!viewer->relay_grace) {
    GST_DEBUG_OBJECT (viewer->host.bin, "session %s: gathering complete with "
        "%u of %u relay candidates, waiting for the rest", viewer->id,
        viewer->relay_candidates, viewer->turn_servers);
    viewer->relay_grace = g_timeout_source_new (RELAY_GRACE_MS);
    g_source_set_callback (viewer->relay_grace, relay_grace_cb, viewer, NULL);
    g_source_attach (viewer->relay_grace, viewer->peer->context);
  }
}

static void
on_connection (PcrViewer * viewer, PeerEvent * ev)
{
  if (ev->failed) {
    viewer->host.failed (viewer, TRUE, "connection failed",
        viewer->host.user_data);
    return;
  }
  if (ev->connected && !viewer->connected) {
    viewer->connected = TRUE;
    g_atomic_int_set (&viewer->peer->last_rtcp_s, monotonic_s ());
    GST_INFO_OBJECT (viewer->host.bin, "session %s connected", viewer->id);
  }
  /* Until DTLS is done webrtcbin holds the media back; a key frame made
   * before then reaches the viewer behind the frames held with it, or not
   * at all: ask for it once they can flow. */
  if (ev->secured && !viewer->secured) {
    viewer->secured = TRUE;
    viewer->host.connected (viewer, viewer->host.user_data);
  }
}

static gboolean
handle_peer_event (gpointer data)
{
  PeerEvent *ev = data;
  PcrViewer *viewer = ev->peer->viewer;

  if (!viewer)
    return G_SOURCE_REMOVE;

  switch (ev->kind) {
    case EV_ANSWER:
      on_answer (viewer, ev);
      break;
    case EV_LOCAL_CANDIDATE:
      on_local_candidate (viewer, ev);
      break;
    case EV_GATHERING_DONE:
      on_gathering_done (viewer);
      break;
    case EV_CONNECTION:
      on_connection (viewer, ev);
      break;
    case EV_KEY_UNIT:
      viewer->host.key_unit (viewer, ev->mline, viewer->host.user_data);
      break;
    case EV_SWITCHED:
      GST_INFO_OBJECT (viewer->host.bin, "session %s: now on rendition %u, "
          "%" G_GINT64_FORMAT " ms after the switch was asked for",
          viewer->id, ev->mline, viewer->switch_us ?
          (g_get_monotonic_time () - viewer->switch_us) / 1000 : 0);
      viewer->switch_us = 0;
      break;
    case EV_CONTROL:
      viewer->host.control (viewer, ev->text, viewer->host.user_data);
      break;
    case EV_REFUSE_CHANNEL:
      pcr_viewer_refuse_channel (viewer, ev->channel);
      break;
  }
  return G_SOURCE_REMOVE;
}

void
pcr_viewer_add_remote_candidate (PcrViewer * viewer, const PcrMessage * msg)
{
  g_autoptr (GError) error = NULL;

  if (!*msg->candidate) {
    GST_DEBUG_OBJECT (viewer->host.bin, "session %s: end of remote "
        "candidates", viewer->id);
    return;
  }
  switch (pcr_candidate_check (msg->candidate, msg->sdp_mline_index, &error)) {
    case PCR_CANDIDATE_INVALID:
      pcr_viewer_reply_error (viewer->host.signaller, viewer->id,
          PCR_ERROR_BAD_REQUEST, error->message);
      return;
    case PCR_CANDIDATE_SKIP:
      GST_DEBUG_OBJECT (viewer->host.bin, "session %s: skipping mDNS "
          "candidate", viewer->id);
      return;
    case PCR_CANDIDATE_USE:
      break;
  }
  if (++viewer->remote_candidates > MAX_REMOTE_CANDIDATES) {
    if (viewer->remote_candidates == MAX_REMOTE_CANDIDATES + 1)
      GST_WARNING_OBJECT (viewer->host.bin, "session %s: over %d candidates, "
          "ignoring the rest", viewer->id, MAX_REMOTE_CANDIDATES);
    return;
  }
  g_signal_emit_by_name (viewer->webrtc, "add-ice-candidate",
      msg->sdp_mline_index, msg->candidate);
}

void
pcr_viewer_tick (PcrViewer * viewer, gint64 now_us)
{
  if (!viewer->trickle && viewer->answer_set_us && !viewer->answer_sent
      && now_us - viewer->answer_set_us > GATHER_TIMEOUT_US) {
    GST_WARNING_OBJECT (viewer->host.bin, "session %s: ICE gathering is "
        "slow, answering with the candidates so far", viewer->id);
    stop_relay_grace (viewer);
    send_local_description (viewer);
    if (!viewer->peer->viewer)
      return;
  }
  if (!viewer->connected && now_us - viewer->created_us > CONNECT_TIMEOUT_US)
    viewer->host.failed (viewer, TRUE,
        "the connection did not complete within 12 s", viewer->host.user_data);
  else if (viewer->connected && monotonic_s () -
      g_atomic_int_get (&viewer->peer->last_rtcp_s) > RTCP_TIMEOUT_S)
    viewer->host.failed (viewer, TRUE, "no RTCP from the viewer for 10 s",
        viewer->host.user_data);
}

/* ------------------------------------------------------------------------
 * The offer
 * ------------------------------------------------------------------------ */

static GStrv
offer_mids (const GstSDPMessage * sdp)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  guint i;

  for (i = 0; i < gst_sdp_message_medias_len (sdp); i++) {
    const gchar *mid = gst_sdp_media_get_attribute_val
        (gst_sdp_message_get_media (sdp, i), "mid");

    g_strv_builder_add (builder, mid ? mid : "");
  }
  return g_strv_builder_end (builder);
}

static GStrv
offer_ice_uris (const PcrMessage * offer)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  guint i;

  for (i = 0; i < offer->ice_servers->len; i++) {
    g_auto (GStrv) uris =
        pcr_ice_server_to_gst_uris (g_ptr_array_index (offer->ice_servers, i));

    g_strv_builder_addv (builder, (const gchar **) uris);
  }
  return g_strv_builder_end (builder);
}

PcrViewer *
pcr_viewer_new (const PcrViewerHost * host, const gchar * id,
    const PcrMessage * offer, const PcrViewerSettings * settings,
    GError ** error)
{
  g_autoptr (PcrH264Choice) choice = NULL;
  GstSDPMessage *sdp;
  PcrViewer *viewer;

  g_return_val_if_fail (host != NULL && id != NULL, NULL);
  g_return_val_if_fail (offer != NULL && offer->type == PCR_MESSAGE_OFFER,
      NULL);
  ensure_debug_category ();

  sdp = pcr_sdp_parse (offer->sdp, error);
  if (!sdp)
    return NULL;
  choice = pcr_sdp_choose_h264 (sdp, settings->profile, error);
  if (!choice) {
    gst_sdp_message_free (sdp);
    return NULL;
  }

  viewer = g_new0 (PcrViewer, 1);
  viewer->host = *host;
  viewer->peer = g_new0 (Peer, 1);
  viewer->peer->refcount = 1;
  viewer->peer->context = g_main_context_ref (host->context);
  viewer->peer->id = g_strdup (id);
  viewer->peer->viewer = viewer;
  viewer->peer->pending = -1;
  g_mutex_init (&viewer->peer->rtx_lock);
  g_mutex_init (&viewer->peer->control_lock);
  viewer->peer->drains = g_ptr_array_new_with_free_func (gst_object_unref);
  viewer->peer->control = settings->control;
  viewer->peer->bin = host->bin;
  viewer->peer->rtx_from_seq = -1;
  viewer->peer->ulpfec_pt = -1;
  viewer->id = viewer->peer->id;
  viewer->trickle = offer->trickle;
  viewer->offer = sdp;
  viewer->mids = offer_mids (sdp);
  viewer->offer_ice_uris = offer_ice_uris (offer);
  viewer->stun_server = g_strdup (settings->stun_server);
  viewer->turn_server = g_strdup (settings->turn_server);
  viewer->ice_addresses = g_strdup (settings->ice_addresses);
  viewer->playout_delay_max_ms = settings->playout_delay_max_ms;
  /* Only a viewer that offers the extension gets it: an extmap the offer
   * lacks would be an answer the viewer may reject. */
  if (settings->playout_delay_max_ms >= 0)
    viewer->playout_delay_id = pcr_sdp_extmap_id (sdp, choice->mline,
        PCR_PLAYOUT_DELAY_URI, &viewer->playout_delay_directed);
  /* The estimate's feedback. A directed extmap (rare for this one) is left
   * out: rtphdrexttwcc (1.22) would write caps the codec preferences do
   * not match (see rtphdrextplayoutdelay.c). */
  {
    gboolean directed = FALSE;
    guint id = pcr_sdp_extmap_id (sdp, choice->mline, TWCC_URI, &directed);

    viewer->twcc_id = directed ? 0 : id;
  }
  /* With RED every packet is RED, retransmissions too: they need the
   * offer's rtx format for RED, or NACKs would go unanswered. */
  viewer->fec = settings->fec && choice->red_pt >= 0 && choice->ulpfec_pt >= 0
      && (choice->rtx_pt < 0 || choice->red_rtx_pt >= 0);
  if (viewer->fec)
    viewer->peer->ulpfec_pt = choice->ulpfec_pt;
  /* Chosen here, so the answer names them (a=ssrc): with audio and video
   * bundled a browser routes packets by ssrc (without a mid extension),
   * and RTX needs its FID group. Any non-zero value: 0 is what webrtcbin's
   * FID group says when it did not know the media ssrc. Distinct, so the
   * receiver reports of one are never read as the other's. */
  while (!viewer->ssrc)
    viewer->ssrc = g_random_int ();
  while (!viewer->audio_ssrc || viewer->audio_ssrc == viewer->ssrc)
    viewer->audio_ssrc = g_random_int ();
  viewer->choice = g_steal_pointer (&choice);
  viewer->opus = pcr_sdp_find_opus (sdp);
  viewer->audio_tee = settings->audio_tee;
  viewer->created_us = g_get_monotonic_time ();

  GST_INFO_OBJECT (host->bin, "session %s: offer (%s), payload type %d on "
      "m-line %u, rtx %d, playout-delay extension %u, transport-wide-cc "
      "extension %u, FEC %s (red %d, ulpfec %d, rtx of red %d)", id,
      viewer->trickle ? "trickle" : "bulk", viewer->choice->pt,
      viewer->choice->mline, viewer->choice->rtx_pt,
      viewer->playout_delay_id, viewer->twcc_id, viewer->fec ? "on" : "off",
      viewer->choice->red_pt, viewer->choice->ulpfec_pt,
      viewer->choice->red_rtx_pt);
  if (viewer->opus)
    GST_INFO_OBJECT (host->bin, "session %s: audio on m-line %u, opus %d, "
        "%s%s", id, viewer->opus->mline, viewer->opus->pt,
        viewer->opus->receives ? "receives" : "does not receive",
        viewer->opus->sends ? ", sends" : "");
  else
    GST_INFO_OBJECT (host->bin, "session %s: no Opus audio in the offer", id);
  return viewer;
}

/* ------------------------------------------------------------------------
 * The branch
 * ------------------------------------------------------------------------ */

static void
add_ice_servers (PcrViewer * viewer)
{
  gboolean have_stun = viewer->stun_server != NULL;
  gchar **uri;

  if (viewer->stun_server)
    g_object_set (viewer->webrtc, "stun-server", viewer->stun_server, NULL);
  if (viewer->turn_server) {
    gboolean ok = FALSE;

    g_signal_emit_by_name (viewer->webrtc, "add-turn-server",
        viewer->turn_server, &ok);
    if (ok)
      viewer->turn_servers++;
    else
      GST_WARNING_OBJECT (viewer->host.bin, "turn-server is not a usable "
          "TURN URI");
  }
  for (uri = viewer->offer_ice_uris; *uri; uri++) {
    gboolean ok = FALSE;

    if (g_str_has_prefix (*uri, "stun://")) {
      /* webrtcbin takes a single STUN server. */
      if (!have_stun)
        g_object_set (viewer->webrtc, "stun-server", *uri, NULL);
      have_stun = TRUE;
    } else {
      g_signal_emit_by_name (viewer->webrtc, "add-turn-server", *uri, &ok);
      if (ok)
        viewer->turn_servers++;
      else
        GST_WARNING_OBJECT (viewer->host.bin, "ignoring an unusable TURN "
            "server");
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

void
pcr_webrtc_configure_ice (GstElement * webrtc, const gchar * ice_addresses,
    GstObject * owner)
{
  g_auto (GStrv) addresses = NULL;
  GObject *ice = NULL;
  gchar **addr;

  g_object_get (webrtc, "ice-agent", &ice, NULL);
  if (!ice)
    return;
  disable_upnp (ice);
  if (ice_addresses && *ice_addresses)
    addresses = g_strsplit (ice_addresses, ",", -1);
  for (addr = addresses; addr && *addr; addr++) {
    gboolean ok = FALSE;

    g_strstrip (*addr);
    if (!**addr)
      continue;
    g_signal_emit_by_name (ice, "add-local-ip-address", *addr, &ok);
    if (!ok)
      GST_WARNING_OBJECT (owner, "ICE agent refused local address %s", *addr);
  }
  g_object_unref (ice);
}

static void
configure_ice_agent (PcrViewer * viewer)
{
  pcr_webrtc_configure_ice (viewer->webrtc, viewer->ice_addresses,
      GST_OBJECT (viewer->host.bin));
}

/* The codec preferences for a viewer's transceiver. webrtcbin answers with
 * their intersection with the offer, so naming only what must match (the
 * payload type, H264, packetization-mode=1) answers the offer's own fmtp for
 * that type. */
static GstCaps *
codec_preferences (PcrViewer * viewer)
{
  GstCaps *caps = gst_caps_new_simple ("application/x-rtp",
      "media", G_TYPE_STRING, "video",
      "encoding-name", G_TYPE_STRING, "H264",
      "clock-rate", G_TYPE_INT, 90000,
      "payload", G_TYPE_INT, viewer->choice->pt,
      "packetization-mode", G_TYPE_STRING, "1", NULL);
  g_autofree gchar *field = NULL;

  /* webrtcbin (1.22) announces the retransmission stream as
   * a=ssrc-group:FID <media ssrc> <rtx ssrc>, the media ssrc taken from
   * these caps once intersected. Without it here the answer could be made
   * before the payloader's caps reach webrtcbin and say FID 0, and the
   * browser would not know the RTX packets it gets. The payloader sends
   * with the same ssrc. Only one structure: webrtcbin adds RTX for the
   * first one only, and the offer's own rtx format is what it answers. */
  if (viewer->ssrc)
    gst_caps_set_simple (caps, "ssrc", G_TYPE_UINT, viewer->ssrc, NULL);
  if (viewer->twcc_id) {
    g_autofree gchar *twcc = g_strdup_printf ("extmap-%u", viewer->twcc_id);

    gst_caps_set_simple (caps, twcc, G_TYPE_STRING, TWCC_URI, NULL);
  }
  if (!viewer->playout_delay_id)
    return caps;
  /* webrtcbin (1.22) writes the answer's a=extmap lines from extmap-<id>
   * fields of these caps (the offer's own extmaps never reach the answer);
   * the payloader puts the same field on its caps. An offer's recvonly
   * or sendrecv extmap is answered sendonly: the form (direction, URI,
   * attributes) says so. */
  field = g_strdup_printf ("extmap-%u", viewer->playout_delay_id);
  if (viewer->playout_delay_directed) {
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
  return caps;
}

/* Tells the viewer's browser (by the playout-delay header extension on
 * every packet) to render each frame as soon as it is decoded, or within
 * the maximum, instead of holding it in its jitter buffer. */
static gboolean
add_playout_delay (PcrViewer * viewer)
{
  GstRTPHeaderExtension *ext = g_object_new (PCR_TYPE_RTP_HDREXT_PLAYOUT_DELAY,
      NULL);

  if (!ext)
    return FALSE;
  gst_object_ref_sink (ext);
  gst_rtp_header_extension_set_id (ext, viewer->playout_delay_id);
  g_object_set (ext, "min-ms", 0, "max-ms",
      (guint) viewer->playout_delay_max_ms, NULL);
  g_signal_emit_by_name (viewer->pay, "add-extension", ext);
  /* rtpredenc drops it: written again after that (restore_playout_delay) */
  viewer->peer->playout_delay = ext;
  GST_DEBUG_OBJECT (viewer->host.bin, "playout-delay 0..%d ms as extension "
      "%u", viewer->playout_delay_max_ms, viewer->playout_delay_id);
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

/* rtpredenc (1.22) drops the header extensions of the packets it wraps in
 * RED: its copy of the transport-wide-cc one never reaches rtpsession
 * (seen: no packet numbered, so no feedback and the estimate on receiver
 * reports alone), and the playout-delay one is not even tried. Both are
 * written again on its output, the transport-wide-cc one as room for the
 * number rtpsession writes (a streaming thread; @user_data is the Peer). */
static GstPadProbeReturn
restore_extensions (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Peer *peer = user_data;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  guint8 data[8] = { 0 };
  gpointer existing;
  guint8 id;
  gssize n;

  buf = gst_buffer_make_writable (buf);
  GST_PAD_PROBE_INFO_DATA (info) = buf;
  if (!gst_rtp_buffer_map (buf, GST_MAP_READWRITE, &rtp))
    return GST_PAD_PROBE_OK;
  id = (guint8) peer->twcc_id;
  if (id && !gst_rtp_buffer_get_extension_onebyte_header (&rtp, id, 0,
          &existing, NULL))
    gst_rtp_buffer_add_extension_onebyte_header (&rtp, id, data, 2);
  if (peer->playout_delay) {
    id = (guint8) gst_rtp_header_extension_get_id (peer->playout_delay);
    if (!gst_rtp_buffer_get_extension_onebyte_header (&rtp, id, 0, &existing,
            NULL)) {
      n = gst_rtp_header_extension_write (peer->playout_delay, buf,
          GST_RTP_HEADER_EXTENSION_ONE_BYTE, buf, data, sizeof (data));
      if (n > 0)
        gst_rtp_buffer_add_extension_onebyte_header (&rtp, id, data,
            (guint) n);
    }
  }
  gst_rtp_buffer_unmap (&rtp);
  return GST_PAD_PROBE_OK;
}

/* Counts what rtpulpfecenc made, on its way into rtpredenc (a streaming
 * thread; @user_data is the Peer). */
static GstPadProbeReturn
count_fec (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Peer *peer = user_data;
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;

  if (gst_rtp_buffer_map (GST_PAD_PROBE_INFO_BUFFER (info), GST_MAP_READ,
          &rtp)) {
    if (gst_rtp_buffer_get_payload_type (&rtp) == peer->ulpfec_pt)
      g_atomic_int_inc (&peer->fec_packets);
    gst_rtp_buffer_unmap (&rtp);
  }
  return GST_PAD_PROBE_OK;
}

static void
peer_destroy_notify (gpointer data)
{
  pcr_peer_unref (data);
}

/* The FEC encoder webrtcbin made: count its packets, and put the header
 * extensions back on what RED wrapped. */
static void
hook_red_encoder (GstElement * redenc, Peer * peer)
{
  g_autoptr (GstPad) sink = gst_element_get_static_pad (redenc, "sink");
  g_autoptr (GstPad) src = gst_element_get_static_pad (redenc, "src");

  if (sink)
    gst_pad_add_probe (sink, GST_PAD_PROBE_TYPE_BUFFER, count_fec,
        pcr_peer_ref (peer), peer_destroy_notify);
  if (src && (peer->playout_delay || peer->twcc_id))
    gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER, restore_extensions,
        pcr_peer_ref (peer), peer_destroy_notify);
}

/* webrtcbin (1.20+) puts a clocksync before its rtpbin that holds each
 * buffer until its PTS plus the pipeline latency, which the source's
 * reported latency (a whole frame for videotestsrc and most cameras) makes
 * tens of milliseconds; its RTP nicesink would sync again. A live sender
 * gains nothing from waiting (the viewer's jitter buffer paces playback by
 * the RTP timestamps): packets leave as soon as they are made.
 * The rtprtxsend webrtcbin makes when the answer has RTX (it has set its
 * fixed 500 packets by then) keeps RTX_HISTORY_MS instead. Its rtpredenc
 * (always made; RED only when answered) is hooked when the viewer has FEC
 * (@user_data is the Peer). This runs on
 * webrtcbin's operation thread with its lock held: property sets only. */
/* A retransmission request (rtpsession turns each NACKed packet into one,
 * sent upstream to rtprtxsend): passed while the viewer's budget has room
 * for the packet, dropped otherwise. On a link already full, resending
 * every packet a browser asks for again and again (each round trip, the
 * repairs lost like the rest) keeps it full: seen behind 500 kbit/s, 0.6
 * Mbit/s of repairs beside 0.25 of picture for ten seconds.
 * With pcr_viewer_set_rtx_copies (2) and room in the budget, the request
 * is passed twice: rtprtxsend sends the packet twice. */
static GstPadProbeReturn
rtx_request_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Peer *peer = user_data;
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);
  gint budget = g_atomic_int_get (&peer->rtx_budget_bps);
  gint64 now = g_get_monotonic_time ();
  gboolean pass, twice = FALSE;
  guint seqnum = 0;

  if (GST_EVENT_TYPE (event) != GST_EVENT_CUSTOM_UPSTREAM ||
      !gst_event_has_name (event, "GstRTPRetransmissionRequest"))
    return GST_PAD_PROBE_OK;
  /* the second copy, sent below */
  if (gst_structure_has_field (gst_event_get_structure (event),
          "pcr-copy"))
    return GST_PAD_PROBE_OK;
  gst_structure_get_uint (gst_event_get_structure (event), "seqnum",
      &seqnum);
  g_mutex_lock (&peer->rtx_lock);
  peer->rtx_requests++;
  /* cut off before a switch (pcr_viewer_cut), every packet it got is of
   * the picture it is leaving, and repairs would only fill the queue the
   * cut lets drain */
  if (g_atomic_int_get (&peer->cut)) {
    peer->rtx_stale++;
    g_mutex_unlock (&peer->rtx_lock);
    return GST_PAD_PROBE_DROP;
  }
  /* a packet of the picture the viewer was switched away from: nothing
   * after the new rendition's key frame refers to it */
  if (peer->rtx_from_seq >= 0 && now - peer->rtx_from_us <
      RTX_HISTORY_MS * 1000 && (((seqnum - peer->rtx_from_seq) & 0xffff) &
          0x8000)) {
    peer->rtx_stale++;
    g_mutex_unlock (&peer->rtx_lock);
    return GST_PAD_PROBE_DROP;
  }
  if (budget <= 0) {
    g_mutex_unlock (&peer->rtx_lock);
    return GST_PAD_PROBE_OK;
  }
  if (peer->rtx_refill_us)
    peer->rtx_tokens += budget / 8.0 * (now - peer->rtx_refill_us) /
        G_USEC_PER_SEC;
  else
    peer->rtx_tokens = budget / 8.0 * RTX_BURST_S;
  peer->rtx_tokens = MIN (peer->rtx_tokens, budget / 8.0 * RTX_BURST_S);
  peer->rtx_refill_us = now;
  pass = peer->rtx_tokens >= RTX_PACKET_BYTES;
  if (pass)
    peer->rtx_tokens -= RTX_PACKET_BYTES;
  else
    peer->rtx_refused++;
  if (pass && g_atomic_int_get (&peer->rtx_copies) > 1 &&
      peer->rtx_tokens >= RTX_PACKET_BYTES) {
    peer->rtx_tokens -= RTX_PACKET_BYTES;
    peer->rtx_doubled++;
    twice = TRUE;
  }
  g_mutex_unlock (&peer->rtx_lock);
  if (twice) {
    GstStructure *copy = gst_structure_copy (gst_event_get_structure (event));

    gst_structure_set (copy, "pcr-copy", G_TYPE_BOOLEAN, TRUE, NULL);
    gst_pad_send_event (pad, gst_event_new_custom (GST_EVENT_CUSTOM_UPSTREAM,
            copy));
  }
  return pass ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
}

static void
on_deep_element_added (GstBin * bin, GstBin * sub_bin, GstElement * element,
    gpointer user_data)
{
  Peer *peer = user_data;
  GstElementFactory *factory = gst_element_get_factory (element);
  const gchar *name = factory ? GST_OBJECT_NAME (factory) : "";

  if (g_str_equal (name, "clocksync") || g_str_equal (name, "nicesink")) {
    g_object_set (element, "sync", FALSE, NULL);
  } else if (g_str_equal (name, "rtprtxsend")) {
    g_autoptr (GstPad) src = gst_element_get_static_pad (element, "src");

    g_object_set (element, "max-size-time", (guint) RTX_HISTORY_MS,
        "max-size-packets", 0, NULL);
    if (src)
      gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM,
          rtx_request_probe, pcr_peer_ref (peer),
          (GDestroyNotify) pcr_peer_unref);
  } else if (g_str_equal (name, "rtpredenc") && peer->ulpfec_pt >= 0) {
    hook_red_encoder (element, peer);
  }
}

static GstElement *
make_element (const gchar * factory, GError ** error)
{
  GstElement *element = gst_element_factory_make (factory, NULL);

  if (!element) {
    g_set_error (error, PCR_VIEWER_ERROR, PCR_VIEWER_ERROR_CREATE,
        "cannot create the viewer's %s", factory);
    return NULL;
  }
  return gst_object_ref_sink (element);
}

/* Numbers each packet across the session for the viewer's transport-wide
 * feedback. */
static gboolean
add_twcc (PcrViewer * viewer)
{
  GstRTPHeaderExtension *ext =
      gst_rtp_header_extension_create_from_uri (TWCC_URI);

  if (!ext)
    return FALSE;
  gst_rtp_header_extension_set_id (ext, viewer->twcc_id);
  g_signal_emit_by_name (viewer->pay, "add-extension", ext);
  gst_object_unref (ext);
  return TRUE;
}

static gboolean
make_branch (PcrViewer * viewer, GError ** error)
{
  if (!(viewer->funnel = make_element ("funnel", error)) ||
      !(viewer->queue = make_element ("queue", error)) ||
      !(viewer->pay = make_element ("rtph264pay", error)) ||
      !(viewer->webrtc = make_element ("webrtcbin", error)))
    return FALSE;

  g_object_set (viewer->queue, "leaky", 2, "max-size-buffers",
      QUEUE_MAX_BUFFERS, "max-size-bytes", 0, "max-size-time", (guint64) 0,
      NULL);
  g_object_set (viewer->pay, "pt", viewer->choice->pt, "config-interval", -1,
      NULL);
  if (viewer->ssrc)
    g_object_set (viewer->pay, "ssrc", viewer->ssrc, NULL);
  gst_util_set_object_arg (G_OBJECT (viewer->pay), "aggregate-mode",
      "zero-latency");
  if (viewer->playout_delay_id && !add_playout_delay (viewer)) {
    g_set_error (error, PCR_VIEWER_ERROR, PCR_VIEWER_ERROR_CREATE,
        "cannot create the playout-delay header extension");
    return FALSE;
  }
  /* Without it the viewer still plays, on RTCP receiver reports alone. */
  if (viewer->twcc_id && !add_twcc (viewer)) {
    GST_WARNING_OBJECT (viewer->host.bin, "session %s: no rtphdrexttwcc; "
        "estimating from receiver reports only", viewer->id);
    viewer->twcc_id = 0;
  }
  viewer->peer->twcc_id = viewer->twcc_id;
  gst_util_set_object_arg (G_OBJECT (viewer->webrtc), "bundle-policy",
      "max-bundle");
  if (viewer->peer->talkback)
    g_object_set (viewer->webrtc, "latency", TALK_LATENCY_MS, NULL);
  if (viewer->opus && viewer->opus->receives && viewer->audio_tee) {
    if (!(viewer->audio_queue = make_element ("queue", error)) ||
        !(viewer->audio_pay = make_element ("rtpopuspay", error)))
      return FALSE;
    /* a few frames: a viewer that cannot keep up loses audio, never
     * holds the tee (and so the other viewers) */
    g_object_set (viewer->audio_queue, "leaky", 2, "max-size-buffers", 0,
        "max-size-bytes", 0, "max-size-time", (guint64) 200 * GST_MSECOND,
        NULL);
    g_object_set (viewer->audio_pay, "pt", viewer->opus->pt, "ssrc",
        viewer->audio_ssrc, NULL);
  }
  return TRUE;
}

/* The webrtcbin callbacks each hold a Peer, never the viewer. */
static void
connect_webrtc (PcrViewer * viewer)
{
  static const struct
  {
    const gchar *signal;
    GCallback callback;
  } signals[] = {
    {"on-ice-candidate", G_CALLBACK (on_ice_candidate)},
    {"notify::ice-gathering-state", G_CALLBACK (on_gathering_state)},
    {"notify::connection-state", G_CALLBACK (on_connection_state)},
    {"notify::ice-connection-state", G_CALLBACK (on_connection_state)},
    {"on-data-channel", G_CALLBACK (pcr_viewer_on_data_channel)},
    {"pad-added", G_CALLBACK (pcr_viewer_on_pad_added)},
  };
  GstElement *rtpbin;
  guint i;

  g_signal_connect_data (viewer->webrtc, "deep-element-added",
      G_CALLBACK (on_deep_element_added), pcr_peer_ref (viewer->peer),
      pcr_peer_closure_unref, 0);
  for (i = 0; i < G_N_ELEMENTS (signals); i++)
    g_signal_connect_data (viewer->webrtc, signals[i].signal,
        signals[i].callback, pcr_peer_ref (viewer->peer),
        pcr_peer_closure_unref, 0);
  rtpbin = gst_bin_get_by_name (GST_BIN (viewer->webrtc), "rtpbin");
  if (rtpbin) {
    g_signal_connect_data (rtpbin, "on-ssrc-active",
        G_CALLBACK (on_ssrc_active), pcr_peer_ref (viewer->peer),
        pcr_peer_closure_unref, 0);
    viewer->rtpbin = rtpbin;
  } else {
    GST_WARNING_OBJECT (viewer->host.bin, "webrtcbin has no rtpbin; RTCP "
        "timeout off");
  }
}

/* The first key frame after a switch reaching the payloader: its first
 * packet is where repairs are worth making again (rtx_request_probe). */
static GstPadProbeReturn
switch_seqnum_probe (GstPad * pad, GstPadProbeInfo * info,
    gpointer user_data)
{
  Peer *peer = user_data;
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  GstObject *pay;
  guint last = 0;

  if (GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT) ||
      !g_atomic_int_compare_and_exchange (&peer->switch_marked, 1, 0))
    return GST_PAD_PROBE_OK;
  pay = gst_pad_get_parent (pad);
  if (!pay)
    return GST_PAD_PROBE_OK;
  /* rtpbasepayload's seqnum: the last one it used */
  g_object_get (pay, "seqnum", &last, NULL);
  gst_object_unref (pay);
  g_mutex_lock (&peer->rtx_lock);
  peer->rtx_from_seq = (last + 1) & 0xffff;
  peer->rtx_from_us = g_get_monotonic_time ();
  g_mutex_unlock (&peer->rtx_lock);
  return GST_PAD_PROBE_OK;
}

/* funnel ! queue ! rtph264pay ! webrtcbin, its transceiver sending the
 * chosen format only. */
static gboolean
link_branch (PcrViewer * viewer, GError ** error)
{
  g_autoptr (GstPad) pay_src = gst_element_get_static_pad (viewer->pay,
      "src");
  g_autoptr (GstPad) webrtc_sink = NULL;
  g_autoptr (GstCaps) prefs = NULL;
  GstWebRTCRTPTransceiver *trans = NULL;

  g_autoptr (GstPad) pay_sink = gst_element_get_static_pad (viewer->pay,
      "sink");

  gst_pad_add_probe (pay_src, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
      rewrite_profile_level_id, g_strdup (viewer->choice->profile_level_id),
      g_free);
  gst_pad_add_probe (pay_sink, GST_PAD_PROBE_TYPE_BUFFER,
      switch_seqnum_probe, pcr_peer_ref (viewer->peer),
      (GDestroyNotify) pcr_peer_unref);
  webrtc_sink = gst_element_request_pad_simple (viewer->webrtc, "sink_%u");
  if (!webrtc_sink || gst_pad_link (pay_src, webrtc_sink) != GST_PAD_LINK_OK
      || !gst_element_link_many (viewer->funnel, viewer->queue, viewer->pay,
          NULL)) {
    g_set_error (error, PCR_VIEWER_ERROR, PCR_VIEWER_ERROR_LINK,
        "cannot link the viewer's branch");
    return FALSE;
  }
  g_object_get (webrtc_sink, "transceiver", &trans, NULL);
  if (trans) {
    prefs = codec_preferences (viewer);
    /* do-nack answers "a=rtcp-fb:<pt> nack" and the offer's rtx format
     * (webrtcbin 1.22 takes it from the offer's apt=, it never picks one).
     * A viewer that offers no rtx gets neither: webrtcbin can only resend
     * on an RTX stream, so its NACKs would go unanswered, and a browser
     * that may NACK waits for the repair before it asks for a key frame
     * (PLI), which is then its only way back. */
    g_object_set (trans, "direction",
        GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, "codec-preferences",
        prefs, "do-nack", viewer->choice->rtx_pt >= 0, NULL);
    /* fec-type answers the offer's red and ulpfec formats (webrtcbin 1.22
     * never picks its own for an answer) and the rtx of red; no FEC
     * packets until pcr_viewer_set_fec_percentage asks for them. */
    if (viewer->fec)
      g_object_set (trans, "fec-type", GST_WEBRTC_FEC_TYPE_ULP_RED,
          "fec-percentage", 0, NULL);
    viewer->trans = trans;
  }
  return TRUE;
}

/* The gate on one rendition's tee pad (a streaming thread): the rendition
 * being sent passes; the one being switched to takes over at its first
 * key frame (the SPS/PPS h264parse puts before it come along, and the
 * funnel passes that pad's caps on first); everything else is dropped.
 * Sticky events pass everywhere: the funnel keeps them on its sink pad
 * and sends them on only when that pad's data comes. Other serialized
 * events (the encoder's force-key-unit after a key frame) must not pass a
 * shut gate: the funnel (1.22) takes any serialized event as its pad
 * becoming the active one and sends that pad's caps and segment down,
 * so the other rendition's caps would reach a viewer mid-stream (seen: a
 * clean viewer asking for key frames every 200 ms once the low rendition
 * started for another). */
typedef struct
{
  Peer *peer;
  guint index;
} Gate;

static void
gate_free (gpointer data)
{
  Gate *gate = data;

  pcr_peer_unref (gate->peer);
  g_free (gate);
}

static GstPadProbeReturn
gate_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Gate *gate = user_data;
  Peer *peer = gate->peer;
  GstBuffer *buffer;
  gint index = gate->index;

  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);

    if (GST_EVENT_IS_STICKY (event) || !GST_EVENT_IS_SERIALIZED (event))
      return GST_PAD_PROBE_OK;
    return g_atomic_int_get (&peer->active) == index ? GST_PAD_PROBE_OK :
        GST_PAD_PROBE_DROP;
  }
  buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  if (g_atomic_int_get (&peer->pending) == index &&
      g_atomic_int_get (&peer->secured) &&
      !GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT) &&
      g_atomic_int_compare_and_exchange (&peer->pending, index, -1)) {
    PeerEvent *ev = pcr_peer_event_new (peer, EV_SWITCHED);

    g_atomic_int_set (&peer->active, index);
    g_atomic_int_set (&peer->cut, 0);
    g_atomic_int_set (&peer->switch_marked, 1);
    g_atomic_int_set (&peer->keyed, 1);
    ev->mline = index;
    pcr_peer_event_post (ev);
    return GST_PAD_PROBE_OK;
  }
  if (g_atomic_int_get (&peer->active) != index ||
      g_atomic_int_get (&peer->cut))
    return GST_PAD_PROBE_DROP;
  /* A new viewer gets key frames only until DTLS is done and one comes
   * after that (asked for then). webrtcbin holds back what comes before
   * DTLS, then sends it all at once: delta frames would make that a burst
   * of stale pictures that a congestion controller takes for a queue
   * building up; a held key frame is one frame, and a picture the moment
   * DTLS is done. */
  if (!g_atomic_int_get (&peer->keyed)) {
    if (GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT))
      return GST_PAD_PROBE_DROP;
    if (g_atomic_int_get (&peer->secured))
      g_atomic_int_set (&peer->keyed, 1);
  }
  return GST_PAD_PROBE_OK;
}

/* The browser's PLI or FIR comes up from rtpbin as a force-key-unit event;
 * the funnel would send it to every rendition. The host decides instead,
 * for the rendition this viewer gets (rate-limited, so a lossy viewer does
 * not flood the others with key frames). */
static GstPadProbeReturn
key_unit_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Peer *peer = user_data;
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);
  PeerEvent *ev;

  if (!gst_video_event_is_force_key_unit (event))
    return GST_PAD_PROBE_OK;
  ev = pcr_peer_event_new (peer, EV_KEY_UNIT);
  ev->mline = g_atomic_int_get (&peer->active);
  pcr_peer_event_post (ev);
  return GST_PAD_PROBE_DROP;
}

/* Feeds the branch from a request pad of each rendition's tee, all but
 * @rendition gated shut. */
static gboolean
link_to_tees (PcrViewer * viewer, GstElement ** tees, guint n_tees,
    guint rendition, GError ** error)
{
  g_autoptr (GstPad) funnel_src = gst_element_get_static_pad (viewer->funnel,
      "src");
  guint i;

  g_atomic_int_set (&viewer->peer->active, rendition);
  gst_pad_add_probe (funnel_src, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM,
      key_unit_probe, pcr_peer_ref (viewer->peer),
      (GDestroyNotify) pcr_peer_unref);
  for (i = 0; i < n_tees && i < PCR_MAX_RENDITIONS; i++) {
    g_autoptr (GstPad) funnel_sink = NULL;
    Gate *gate;

    viewer->tees[i] = tees[i];
    viewer->tee_pads[i] = gst_element_request_pad_simple (tees[i], "src_%u");
    /* counted at once: free_branch releases what was requested */
    viewer->n_tees = i + 1;
    funnel_sink = gst_element_request_pad_simple (viewer->funnel, "sink_%u");
    if (!viewer->tee_pads[i] || !funnel_sink) {
      g_set_error (error, PCR_VIEWER_ERROR, PCR_VIEWER_ERROR_LINK,
          "cannot link the viewer to the stream");
      return FALSE;
    }
    gate = g_new0 (Gate, 1);
    gate->peer = pcr_peer_ref (viewer->peer);
    gate->index = i;
    gst_pad_add_probe (viewer->tee_pads[i], GST_PAD_PROBE_TYPE_BUFFER |
        GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, gate_probe, gate, gate_free);
    if (gst_pad_link (viewer->tee_pads[i], funnel_sink) != GST_PAD_LINK_OK) {
      g_set_error (error, PCR_VIEWER_ERROR, PCR_VIEWER_ERROR_LINK,
          "cannot link the viewer to the stream");
      return FALSE;
    }
  }
  return TRUE;
}

void
pcr_viewer_switch (PcrViewer * viewer, guint rendition)
{
  if (rendition >= viewer->n_tees)
    return;
  if ((gint) rendition == g_atomic_int_get (&viewer->peer->active)) {
    g_atomic_int_set (&viewer->peer->pending, -1);
    g_atomic_int_set (&viewer->peer->cut, 0);
    return;
  }
  GST_INFO_OBJECT (viewer->host.bin, "session %s: switching to rendition "
      "%u at its next key frame", viewer->id, rendition);
  viewer->switch_us = g_get_monotonic_time ();
  g_atomic_int_set (&viewer->peer->pending, rendition);
}

gboolean
pcr_viewer_cut (PcrViewer * viewer)
{
  /* before DTLS the gate takes no switch's key frame, which lifts it */
  if (!g_atomic_int_get (&viewer->peer->secured))
    return FALSE;
  GST_INFO_OBJECT (viewer->host.bin, "session %s: cut off until it "
      "switches", viewer->id);
  g_atomic_int_set (&viewer->peer->cut, 1);
  return TRUE;
}

guint
pcr_viewer_get_rendition (PcrViewer * viewer, gint * pending)
{
  if (pending)
    *pending = g_atomic_int_get (&viewer->peer->pending);
  return g_atomic_int_get (&viewer->peer->active);
}

/* webrtcbin runs its operations in order: the answer follows the offer. */
static void
negotiate (PcrViewer * viewer)
{
  GstWebRTCSessionDescription *offer =
      gst_webrtc_session_description_new (GST_WEBRTC_SDP_TYPE_OFFER,
      g_steal_pointer (&viewer->offer));
  GstPromise *promise;

  g_signal_emit_by_name (viewer->webrtc, "set-remote-description", offer,
      NULL);
  gst_webrtc_session_description_free (offer);
  promise = gst_promise_new_with_change_func (on_answer_created,
      pcr_peer_ref (viewer->peer), (GDestroyNotify) pcr_peer_unref);
  g_signal_emit_by_name (viewer->webrtc, "create-answer", NULL, promise);
  viewer->answer_promise = promise;
}

gboolean
pcr_viewer_start (PcrViewer * viewer, GstElement ** tees, guint n_tees,
    guint rendition, GError ** error)
{
  g_return_val_if_fail (viewer != NULL && viewer->offer != NULL, FALSE);

  if (!make_branch (viewer, error))
    return FALSE;
  pcr_viewer_tag (viewer->funnel, viewer->id);
  pcr_viewer_tag (viewer->queue, viewer->id);
  pcr_viewer_tag (viewer->pay, viewer->id);
  pcr_viewer_tag (viewer->webrtc, viewer->id);
  pcr_viewer_tag (viewer->audio_queue, viewer->id);
  pcr_viewer_tag (viewer->audio_pay, viewer->id);
  gst_bin_add_many (viewer->host.bin, viewer->funnel, viewer->queue,
      viewer->pay, viewer->webrtc, NULL);
  configure_ice_agent (viewer);
  connect_webrtc (viewer);
  if (viewer->audio_pay)
    gst_bin_add_many (viewer->host.bin, viewer->audio_queue,
        viewer->audio_pay, NULL);
  if (!link_branch (viewer, error) || !pcr_viewer_link_audio (viewer, error))
    return FALSE;
  gst_element_sync_state_with_parent (viewer->webrtc);
  if (viewer->audio_pay) {
    gst_element_sync_state_with_parent (viewer->audio_pay);
    gst_element_sync_state_with_parent (viewer->audio_queue);
  }
  gst_element_sync_state_with_parent (viewer->pay);
  gst_element_sync_state_with_parent (viewer->queue);
  gst_element_sync_state_with_parent (viewer->funnel);
  if (!link_to_tees (viewer, tees, n_tees, rendition, error) ||
      !pcr_viewer_link_audio_tee (viewer, error))
    return FALSE;
  add_ice_servers (viewer);
  negotiate (viewer);
  return TRUE;
}

/* ------------------------------------------------------------------------
 * Closing: an IDLE probe on the tee pad unlinks, then the context sets the
 * branch to NULL and removes it.
 * ------------------------------------------------------------------------ */

/* The rtprtxsend webrtcbin made for the viewer (an answer with RTX). */
static GstElement *
find_rtx_sender (PcrViewer * viewer)
{
  GstIterator *it;
  GValue item = G_VALUE_INIT;
  GstElement *found = NULL;

  if (!viewer->webrtc || !viewer->ssrc)
    return NULL;
  it = gst_bin_iterate_all_by_element_factory_name (GST_BIN (viewer->webrtc),
      "rtprtxsend");
  if (gst_iterator_next (it, &item) == GST_ITERATOR_OK)
    found = g_value_dup_object (&item);
  g_value_unset (&item);
  gst_iterator_free (it);
  return found;
}

void
pcr_viewer_get_retransmissions (PcrViewer * viewer, guint * nacks,
    guint * retransmitted)
{
  g_autoptr (GstElement) sender = find_rtx_sender (viewer);

  g_mutex_lock (&viewer->peer->rtx_lock);
  *nacks = viewer->peer->rtx_requests;
  g_mutex_unlock (&viewer->peer->rtx_lock);
  *retransmitted = 0;
  if (sender)
    g_object_get (sender, "num-rtx-packets", retransmitted, NULL);
}

/* What retransmission and FEC did for this viewer, for the log. */
static void
log_retransmissions (PcrViewer * viewer)
{
  g_autoptr (GstElement) sender = find_rtx_sender (viewer);
  guint requests = 0, packets = 0;

  if (viewer->fec)
    GST_INFO_OBJECT (viewer->host.bin, "session %s: %d FEC packets sent",
        viewer->id, g_atomic_int_get (&viewer->peer->fec_packets));
  if (!sender)
    return;
  g_object_get (sender, "num-rtx-requests", &requests,
      "num-rtx-packets", &packets, NULL);
  g_mutex_lock (&viewer->peer->rtx_lock);
  GST_INFO_OBJECT (viewer->host.bin, "session %s: %u packets asked for "
      "again, %u retransmitted (%u sent twice), %u refused over the budget, "
      "%u from before a switch", viewer->id, requests, packets,
      viewer->peer->rtx_doubled, viewer->peer->rtx_refused,
      viewer->peer->rtx_stale);
  g_mutex_unlock (&viewer->peer->rtx_lock);
}

static void
free_branch (PcrViewer * viewer)
{
  GstElement *elements[] = { viewer->webrtc, viewer->pay, viewer->queue,
    viewer->funnel, viewer->audio_pay, viewer->audio_queue
  };
  GstElement *talk_bin;
  GPtrArray *drains;
  guint i;

  GST_DEBUG_OBJECT (viewer->host.bin, "freeing the branch of session %s",
      viewer->id);
  log_retransmissions (viewer);
  for (i = 0; i < viewer->n_tees; i++) {
    if (!viewer->tee_pads[i])
      continue;
    gst_element_release_request_pad (viewer->tees[i], viewer->tee_pads[i]);
    gst_clear_object (&viewer->tee_pads[i]);
  }
  if (viewer->audio_tee_pad) {
    gst_element_release_request_pad (viewer->audio_tee,
        viewer->audio_tee_pad);
    gst_clear_object (&viewer->audio_tee_pad);
  }
  gst_clear_object (&viewer->rtpbin);
  gst_clear_object (&viewer->trans);
  for (i = 0; i < G_N_ELEMENTS (elements); i++) {
    if (!elements[i])
      continue;
    gst_element_set_locked_state (elements[i], TRUE);
    gst_element_set_state (elements[i], GST_STATE_NULL);
    if (GST_OBJECT_PARENT (elements[i]) == GST_OBJECT (viewer->host.bin))
      gst_bin_remove (viewer->host.bin, elements[i]);
  }
  /* webrtcbin's streaming threads are gone with its NULL state: no
   * talk-back bin or control message can come after this */
  g_mutex_lock (&viewer->peer->control_lock);
  talk_bin = viewer->peer->talk_bin;
  viewer->peer->talk_bin = NULL;
  drains = g_steal_pointer (&viewer->peer->drains);
  viewer->peer->drains = g_ptr_array_new_with_free_func (gst_object_unref);
  if (viewer->peer->channel)
    g_signal_handlers_disconnect_by_data (viewer->peer->channel, viewer->peer);
  g_mutex_unlock (&viewer->peer->control_lock);
  if (talk_bin)
    g_ptr_array_add (drains, talk_bin);
  for (i = 0; i < drains->len; i++) {
    GstElement *element = g_ptr_array_index (drains, i);

    gst_element_set_locked_state (element, TRUE);
    gst_element_set_state (element, GST_STATE_NULL);
    gst_bin_remove (viewer->host.bin, element);
  }
  g_ptr_array_unref (drains);
  /* A viewer gone before webrtcbin ran create-answer: webrtcbin (1.22)
   * drops the queued operation when it stops, and had it held the last
   * reference it would free a pending promise (a GLib critical). Its
   * thread is joined now, so nothing answers any more: a promise still
   * unanswered is interrupted (the answer callback then finds no viewer). */
  if (viewer->answer_promise) {
    if (!g_atomic_int_get (&viewer->peer->answered)) {
      GST_DEBUG_OBJECT (viewer->host.bin, "session %s: interrupting its "
          "unanswered create-answer", viewer->id);
      g_atomic_int_set (&viewer->peer->interrupted, 1);
      gst_promise_interrupt (viewer->answer_promise);
    }
    gst_promise_unref (viewer->answer_promise);
    viewer->answer_promise = NULL;
  }
  gst_clear_object (&viewer->webrtc);
  gst_clear_object (&viewer->pay);
  gst_clear_object (&viewer->queue);
  gst_clear_object (&viewer->funnel);
  gst_clear_object (&viewer->audio_pay);
  gst_clear_object (&viewer->audio_queue);
}

static gboolean
finish_close_cb (gpointer data)
{
  PcrViewer *viewer = data;

  free_branch (viewer);
  viewer->host.closed (viewer, viewer->host.user_data);
  return G_SOURCE_REMOVE;
}

static GstPadProbeReturn
tee_pad_idle (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  PcrViewer *viewer = user_data;
  GstPad *peer = gst_pad_get_peer (pad);

  if (peer) {
    gst_pad_unlink (pad, peer);
    gst_object_unref (peer);
  }
  /* State changes and bin removal happen on the context, not here, once
   * every rendition's pad is unlinked. */
  if (g_atomic_int_dec_and_test (&viewer->peer->idle_pending))
    post (viewer->peer->context, finish_close_cb, viewer, NULL);
  return GST_PAD_PROBE_REMOVE;
}

void
pcr_viewer_close (PcrViewer * viewer)
{
  guint i;

  g_return_if_fail (viewer->peer->viewer == viewer);

  viewer->peer->viewer = NULL;
  stop_relay_grace (viewer);
  if (viewer->webrtc)
    g_signal_handlers_disconnect_by_data (viewer->webrtc, viewer->peer);
  for (i = 0; i < viewer->n_tees; i++)
    if (viewer->tee_pads[i])
      g_atomic_int_inc (&viewer->peer->idle_pending);
  if (viewer->audio_tee_pad)
    g_atomic_int_inc (&viewer->peer->idle_pending);
  if (!g_atomic_int_get (&viewer->peer->idle_pending)) {
    post (viewer->peer->context, finish_close_cb, viewer, NULL);
    return;
  }
  /* The count is complete before any probe can run down to zero. */
  for (i = 0; i < viewer->n_tees; i++)
    if (viewer->tee_pads[i])
      viewer->idle_probes[i] = gst_pad_add_probe (viewer->tee_pads[i],
          GST_PAD_PROBE_TYPE_IDLE, tee_pad_idle, viewer, NULL);
  if (viewer->audio_tee_pad)
    viewer->audio_idle_probe = gst_pad_add_probe (viewer->audio_tee_pad,
        GST_PAD_PROBE_TYPE_IDLE, tee_pad_idle, viewer, NULL);
}

void
pcr_viewer_close_now (PcrViewer * viewer)
{
  guint i;

  viewer->peer->viewer = NULL;
  stop_relay_grace (viewer);
  if (viewer->webrtc)
    g_signal_handlers_disconnect_by_data (viewer->webrtc, viewer->peer);

  for (i = 0; i < viewer->n_tees; i++)
    if (viewer->idle_probes[i] && viewer->tee_pads[i])
      gst_pad_remove_probe (viewer->tee_pads[i], viewer->idle_probes[i]);
  if (viewer->audio_idle_probe && viewer->audio_tee_pad)
    gst_pad_remove_probe (viewer->audio_tee_pad, viewer->audio_idle_probe);
  free_branch (viewer);
}

void
pcr_viewer_free (PcrViewer * viewer)
{
  if (!viewer)
    return;
  stop_relay_grace (viewer);
  g_clear_pointer (&viewer->offer, gst_sdp_message_free);
  g_clear_pointer (&viewer->choice, pcr_h264_choice_free);
  g_clear_pointer (&viewer->opus, pcr_opus_choice_free);
  g_strfreev (viewer->mids);
  g_strfreev (viewer->offer_ice_uris);
  g_free (viewer->stun_server);
  g_free (viewer->turn_server);
  g_free (viewer->ice_addresses);
  pcr_peer_unref (viewer->peer);
  g_free (viewer);
}

gboolean
pcr_viewer_has_fec (PcrViewer * viewer)
{
  return viewer->fec;
}

void
pcr_viewer_set_fec_percentage (PcrViewer * viewer, guint percent)
{
  if (!viewer->fec || !viewer->trans)
    return;
  /* webrtcbin binds it to its rtpulpfecenc's percentage, which that takes
   * while it runs */
  g_object_set (viewer->trans, "fec-percentage", MIN (percent, 100), NULL);
  GST_DEBUG_OBJECT (viewer->host.bin, "session %s: FEC %u %%", viewer->id,
      percent);
}

const gchar *
pcr_viewer_get_id (PcrViewer * viewer)
{
  return viewer->id;
}

/* ------------------------------------------------------------------------
 * Feedback for the bandwidth estimate
 * ------------------------------------------------------------------------ */

void
pcr_viewer_set_rtx_budget (PcrViewer * viewer, guint bps)
{
  g_atomic_int_set (&viewer->peer->rtx_budget_bps, (gint) MIN (bps,
          (guint) G_MAXINT));
}

void
pcr_viewer_set_rtx_copies (PcrViewer * viewer, guint copies)
{
  g_atomic_int_set (&viewer->peer->rtx_copies, (gint) CLAMP (copies, 1, 2));
}

static void
read_twcc (PcrViewer * viewer, PcrViewerFeedback * fb)
{
  GstElement *session = NULL;
  GstStructure *stats = NULL;
  guint sent = 0, recv = 0;
  gdouble loss_pct = 0;
  gint64 dod = 0;

  g_signal_emit_by_name (viewer->rtpbin, "get-session", 0, &session);
  if (!session)
    return;
  g_object_get (session, "twcc-stats", &stats, NULL);
  gst_object_unref (session);
  if (!stats)
    return;
  if (gst_structure_get_uint (stats, "bitrate-sent", &sent) &&
      gst_structure_get_uint (stats, "bitrate-recv", &recv)) {
    gst_structure_get_double (stats, "packet-loss-pct", &loss_pct);
    gst_structure_get_int64 (stats, "avg-delta-of-delta", &dod);
    fb->have_twcc = TRUE;
    fb->twcc_sent_bps = sent;
    fb->twcc_recv_bps = recv;
    fb->twcc_loss = CLAMP (loss_pct / 100.0, 0.0, 1.0);
    fb->twcc_delta_of_delta_ns = dod;
  }
  gst_structure_free (stats);
}

/* The viewer's receiver report about our media ssrc (or, without RTX, the
 * only source we send): rtpsession keeps it in the statistics of the
 * viewer's own (remote) source, as its report block. */
static void
read_receiver_report (PcrViewer * viewer, PcrViewerFeedback * fb)
{
  GObject *session = NULL;
  GstStructure *stats = NULL;
  const GValue *sources;
  GValueArray *array;
  guint i;

  g_signal_emit_by_name (viewer->rtpbin, "get-internal-session", 0, &session);
  if (!session)
    return;
  g_object_get (session, "stats", &stats, NULL);
  g_object_unref (session);
  if (!stats)
    return;
  sources = gst_structure_get_value (stats, "source-stats");
  /* rtpsession (1.22) still hands out a GValueArray. */
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS;
  array = sources && g_str_equal (G_VALUE_TYPE_NAME (sources),
      "GValueArray") ? g_value_get_boxed (sources) : NULL;
  for (i = 0; array && i < array->n_values; i++) {
    const GstStructure *s = g_value_get_boxed (&array->values[i]);
    gboolean internal = TRUE, have_rb = FALSE;
    guint rb_ssrc = 0, fraction = 0, rtt = 0, highest = 0;
    gint lost = 0;

    if (!s || !gst_structure_get_boolean (s, "internal", &internal) ||
        internal || !gst_structure_get_boolean (s, "have-rb", &have_rb) ||
        !have_rb)
      continue;
    gst_structure_get_uint (s, "rb-ssrc", &rb_ssrc);
    if (viewer->ssrc && rb_ssrc != viewer->ssrc)
      continue;
    gst_structure_get_uint (s, "rb-fractionlost", &fraction);
    gst_structure_get_uint (s, "rb-round-trip", &rtt);
    gst_structure_get_int (s, "rb-packetslost", &lost);
    gst_structure_get_uint (s, "rb-exthighestseq", &highest);
    fb->have_rr = TRUE;
    fb->rr_fraction_lost = fraction / 256.0;
    /* 16.16 fixed point seconds (RFC 3550 6.4.1) */
    fb->rr_rtt_s = rtt ? rtt / 65536.0 : -1;
    fb->rr_packets_lost = MAX (lost, 0);
    fb->rr_highest_seq = highest;
    break;
  }
  G_GNUC_END_IGNORE_DEPRECATIONS;
  gst_structure_free (stats);
}

void
pcr_viewer_get_feedback (PcrViewer * viewer, PcrViewerFeedback * fb)
{
  memset (fb, 0, sizeof (*fb));
  fb->rr_rtt_s = -1;
  if (!viewer->rtpbin || !viewer->connected)
    return;
  if (viewer->twcc_id)
    read_twcc (viewer, fb);
  read_receiver_report (viewer, fb);
}
