/* A viewer's sound and its control channel (docs/audio-and-control.md):
 * the Opus branch on the element's audio tee and its transceiver, the
 * answer's audio m-line when nothing is sent or played on it, the talker's
 * decoder into the talk-back sink, and the "control" data channel with its
 * size and rate checks. The rest of a viewer is pcr-viewer.c; the same
 * threading rules hold (the context for the viewer, any thread for the
 * Peer). */
#include "config.h"

#include <string.h>

#include "pcr-viewer-private.h"

GST_DEBUG_CATEGORY_EXTERN (pcr_viewer_debug);
#define GST_CAT_DEFAULT pcr_viewer_debug

/* webrtcbin (1.22) answers an audio m-line it has no transceiver for with
 * one of its own, recvonly: the device would take a microphone nobody
 * plays. Such an m-line (no audio here, or a second one) is answered
 * inactive instead. Not port 0: the first m-line is the BUNDLE group's
 * transport, and webrtcbin (both ends) cannot move it to another. */
void
pcr_viewer_refuse_unserved_audio (PcrViewer * viewer, GstSDPMessage * sdp)
{
  static const gchar *directions[] = { "sendrecv", "sendonly", "recvonly" };
  gboolean served = viewer->audio_pay || viewer->peer->talkback;
  guint i, j, d;

  for (i = 0; i < gst_sdp_message_medias_len (sdp); i++) {
    GstSDPMedia *media = (GstSDPMedia *) gst_sdp_message_get_media (sdp, i);

    if (g_strcmp0 (gst_sdp_media_get_media (media), "audio") != 0 ||
        gst_sdp_media_get_port (media) == 0 ||
        (served && viewer->opus && viewer->opus->mline == i))
      continue;
    GST_INFO_OBJECT (viewer->host.bin, "session %s: audio m-line %u "
        "answered inactive (%s)", viewer->id, i, served ? "not the first" :
        "no audio to send or play");
    for (j = gst_sdp_media_attributes_len (media); j > 0; j--) {
      const GstSDPAttribute *attr = gst_sdp_media_get_attribute (media, j - 1);

      for (d = 0; d < G_N_ELEMENTS (directions); d++)
        if (g_strcmp0 (attr->key, directions[d]) == 0) {
          gst_sdp_media_remove_attribute (media, j - 1);
          break;
        }
    }
    if (!gst_sdp_media_get_attribute_val (media, "inactive"))
      gst_sdp_media_add_attribute (media, "inactive", "");
  }
}

/* ------------------------------------------------------------------------
 * The control channel: webrtcbin's SCTP threads check each message and
 * post the good ones; the context hands them to the host.
 * ------------------------------------------------------------------------ */

void
pcr_viewer_refuse_channel (PcrViewer * viewer, GstWebRTCDataChannel * channel)
{
  g_autofree gchar *label = NULL;

  g_object_get (channel, "label", &label, NULL);
  GST_INFO_OBJECT (viewer->host.bin, "session %s: data channel \"%s\" "
      "refused (%s)", viewer->id, GST_STR_NULL (label),
      !viewer->peer->control ? "control is off" :
      g_strcmp0 (label, CONTROL_LABEL) != 0 ? "only \"" CONTROL_LABEL
      "\" is accepted" : "the viewer has one already");
  gst_webrtc_data_channel_close (channel);
}

/* The viewer's token bucket: FALSE (and counted) when over the rate. */
static gboolean
control_take (Peer * peer, gboolean ok)
{
  gint64 now = g_get_monotonic_time ();

  g_mutex_lock (&peer->control_lock);
  peer->control_tokens = MIN (CONTROL_RATE, peer->control_tokens +
      (now - peer->control_refill_us) * CONTROL_RATE / G_USEC_PER_SEC);
  peer->control_refill_us = now;
  if (ok && peer->control_tokens >= 1.0)
    peer->control_tokens -= 1.0;
  else
    ok = FALSE;
  if (!ok && peer->control_dropped++ % 100 == 0)
    GST_WARNING ("session %s: control message dropped (over %u bytes, over "
        "%.0f a second, or binary), %u so far", peer->id,
        PCR_CONTROL_MAX_DATA, CONTROL_RATE, peer->control_dropped);
  g_mutex_unlock (&peer->control_lock);
  return ok;
}

static void
on_control_string (GstWebRTCDataChannel * channel, const gchar * text,
    Peer * peer)
{
  PeerEvent *ev;

  if (!control_take (peer, text != NULL
          && strnlen (text, PCR_CONTROL_MAX_DATA + 1) <= PCR_CONTROL_MAX_DATA
          && g_utf8_validate (text, -1, NULL)))
    return;
  ev = pcr_peer_event_new (peer, EV_CONTROL);
  ev->text = g_strdup (text);
  pcr_peer_event_post (ev);
}

/* The contract is text: binary messages count as dropped. */
static void
on_control_data (GstWebRTCDataChannel * channel, GBytes * data, Peer * peer)
{
  control_take (peer, FALSE);
}

void
pcr_viewer_on_data_channel (GstElement * webrtc, GstWebRTCDataChannel * channel,
    Peer * peer)
{
  g_autofree gchar *label = NULL;
  gboolean accepted = FALSE;
  PeerEvent *ev;

  g_object_get (channel, "label", &label, NULL);
  if (peer->control && g_strcmp0 (label, CONTROL_LABEL) == 0) {
    g_mutex_lock (&peer->control_lock);
    if (!peer->channel) {
      peer->channel = g_object_ref (channel);
      peer->control_tokens = CONTROL_RATE;
      peer->control_refill_us = g_get_monotonic_time ();
      accepted = TRUE;
    }
    g_mutex_unlock (&peer->control_lock);
  }
  if (accepted) {
    g_signal_connect_data (channel, "on-message-string",
        G_CALLBACK (on_control_string), pcr_peer_ref (peer),
        pcr_peer_closure_unref, 0);
    g_signal_connect_data (channel, "on-message-data",
        G_CALLBACK (on_control_data), pcr_peer_ref (peer),
        pcr_peer_closure_unref, 0);
    GST_INFO ("session %s: control channel accepted", peer->id);
    return;
  }
  /* closed from the context, not from inside webrtcbin's signal */
  ev = pcr_peer_event_new (peer, EV_REFUSE_CHANNEL);
  ev->channel = g_object_ref (channel);
  pcr_peer_event_post (ev);
}

void
pcr_viewer_send_control (PcrViewer * viewer, const gchar * data)
{
  GstWebRTCDataChannel *channel = NULL;
  GstWebRTCDataChannelState state = GST_WEBRTC_DATA_CHANNEL_STATE_CLOSED;

  g_mutex_lock (&viewer->peer->control_lock);
  if (viewer->peer->channel)
    channel = g_object_ref (viewer->peer->channel);
  g_mutex_unlock (&viewer->peer->control_lock);
  if (!channel)
    return;
  g_object_get (channel, "ready-state", &state, NULL);
  if (state == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN)
    g_signal_emit_by_name (channel, "send-string", data);
  else
    GST_DEBUG_OBJECT (viewer->host.bin, "session %s: control channel not "
        "open (%d), message dropped", viewer->id, state);
  g_object_unref (channel);
}

guint
pcr_viewer_get_control_dropped (PcrViewer * viewer)
{
  guint dropped;

  g_mutex_lock (&viewer->peer->control_lock);
  dropped = viewer->peer->control_dropped;
  g_mutex_unlock (&viewer->peer->control_lock);
  return dropped;
}

/* ------------------------------------------------------------------------
 * Talk-back: the talker's audio pad, on a streaming thread
 * ------------------------------------------------------------------------ */

/* A stream the viewer sends that nobody plays (webrtcbin 1.22 may still
 * receive on an m-line answered inactive): an unlinked pad would stop the
 * whole bundled transport (not-linked), the video and the control channel
 * with it. */
static void
drain_pad (Peer * peer, GstPad * pad)
{
  GstElement *sink = gst_element_factory_make ("fakesink", NULL);
  g_autoptr (GstPad) sink_pad = NULL;

  GST_INFO ("session %s: dropping what it sends on %s", peer->id,
      GST_PAD_NAME (pad));
  if (!sink)
    return;
  g_object_set (sink, "sync", FALSE, "async", FALSE, NULL);
  pcr_viewer_tag (sink, peer->id);
  gst_bin_add (peer->bin, sink);
  g_mutex_lock (&peer->control_lock);
  g_ptr_array_add (peer->drains, gst_object_ref (sink));
  g_mutex_unlock (&peer->control_lock);
  gst_element_sync_state_with_parent (sink);
  sink_pad = gst_element_get_static_pad (sink, "sink");
  gst_pad_link (pad, sink_pad);
}

void
pcr_viewer_on_pad_added (GstElement * webrtc, GstPad * pad, Peer * peer)
{
  g_autoptr (GstCaps) caps = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *description = NULL;
  g_autoptr (GstPad) sink = NULL;
  const GstStructure *s;
  GstElement *bin;

  if (GST_PAD_DIRECTION (pad) != GST_PAD_SRC)
    return;
  caps = gst_pad_get_current_caps (pad);
  if (!caps)
    caps = gst_pad_query_caps (pad, NULL);
  s = caps && gst_caps_get_size (caps) > 0 ?
      gst_caps_get_structure (caps, 0) : NULL;
  g_mutex_lock (&peer->control_lock);
  bin = peer->talk_bin;
  g_mutex_unlock (&peer->control_lock);
  if (!peer->talkback || bin || !s ||
      g_strcmp0 (gst_structure_get_string (s, "media"), "audio") != 0) {
    drain_pad (peer, pad);
    return;
  }
  /* the leaky queue keeps a slow or stuck sink from holding webrtcbin */
  description = g_strdup_printf ("rtpopusdepay ! opusdec plc=true ! "
      "audioconvert ! audioresample ! queue leaky=downstream "
      "max-size-buffers=0 max-size-bytes=0 max-size-time=200000000 ! %s",
      peer->talkback);
  bin = gst_parse_bin_from_description (description, TRUE, &error);
  if (!bin) {
    GST_ERROR ("session %s: cannot build the talk-back sink \"%s\": %s",
        peer->id, peer->talkback, error->message);
    return;
  }
  pcr_viewer_tag (bin, peer->id);
  gst_bin_add (peer->bin, bin);
  g_mutex_lock (&peer->control_lock);
  peer->talk_bin = gst_object_ref (bin);
  g_mutex_unlock (&peer->control_lock);
  gst_element_sync_state_with_parent (bin);
  sink = gst_element_get_static_pad (bin, "sink");
  if (!sink || gst_pad_link (pad, sink) != GST_PAD_LINK_OK)
    GST_ERROR ("session %s: cannot link the talk-back sink", peer->id);
  else
    GST_INFO ("session %s: talk-back playing into \"%s\"", peer->id,
        peer->talkback);
}

gboolean
pcr_viewer_offers_talk (PcrViewer * viewer)
{
  return viewer->opus && viewer->opus->sends;
}

void
pcr_viewer_set_talkback (PcrViewer * viewer, const gchar * sink_description)
{
  g_return_if_fail (viewer->webrtc == NULL);

  g_free (viewer->peer->talkback);
  viewer->peer->talkback = g_strdup (sink_description);
}

/* The Opus caps a viewer's audio transceiver answers with. */
static GstCaps *
audio_preferences (PcrViewer * viewer)
{
  GstCaps *caps = gst_caps_new_simple ("application/x-rtp", "media",
      G_TYPE_STRING, "audio", "encoding-name", G_TYPE_STRING, "OPUS",
      "clock-rate", G_TYPE_INT, 48000, "encoding-params", G_TYPE_STRING, "2",
      "payload", G_TYPE_INT, viewer->opus->pt, "ssrc", G_TYPE_UINT,
      viewer->audio_ssrc, NULL);
  g_auto (GStrv) params = viewer->opus->fmtp ?
      g_strsplit (viewer->opus->fmtp, ";", 16) : NULL;
  gchar **p;

  /* The offer's Opus parameters the answer may echo (a=fmtp): in-band FEC
   * and the shortest frame, for what the talker sends. Digits only: the
   * values go into the SDP as they are. */
  for (p = params; p && *p; p++) {
    g_auto (GStrv) kv = g_strsplit (g_strstrip (*p), "=", 2);
    guint64 value;

    if (!kv[0] || !kv[1] || (g_strcmp0 (kv[0], "useinbandfec") != 0 &&
            g_strcmp0 (kv[0], "minptime") != 0) ||
        !g_ascii_string_to_unsigned (kv[1], 10, 0, 120, &value, NULL))
      continue;
    gst_caps_set_simple (caps, kv[0], G_TYPE_STRING, kv[1], NULL);
  }
  return caps;
}

/* The audio m-line's transceiver: the device's Opus (queue ! rtpopuspay on
 * the audio tee) and, for the talker, the viewer's microphone. Without
 * either the answer rejects the m-line (on_answer). */
gboolean
pcr_viewer_link_audio (PcrViewer * viewer, GError ** error)
{
  gboolean talker = viewer->peer->talkback != NULL;
  GstWebRTCRTPTransceiverDirection direction;
  GstWebRTCRTPTransceiver *trans = NULL;
  g_autoptr (GstCaps) prefs = NULL;

  if (!viewer->opus)
    return TRUE;
  prefs = audio_preferences (viewer);
  if (!viewer->audio_pay && !talker) {
    /* or webrtcbin makes a recvonly one of its own */
    g_signal_emit_by_name (viewer->webrtc, "add-transceiver",
        GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_INACTIVE, prefs, &trans);
    if (trans)
      gst_object_unref (trans);
    return TRUE;
  }
  if (!viewer->audio_pay) {
    g_signal_emit_by_name (viewer->webrtc, "add-transceiver",
        GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, prefs, &trans);
    if (!trans) {
      g_set_error (error, PCR_VIEWER_ERROR, PCR_VIEWER_ERROR_LINK,
          "cannot add the talk-back transceiver");
      return FALSE;
    }
    gst_object_unref (trans);
    return TRUE;
  } else {
    g_autoptr (GstPad) pay_src = gst_element_get_static_pad (viewer->audio_pay,
        "src");
    g_autoptr (GstPad) webrtc_sink = gst_element_request_pad_simple
        (viewer->webrtc, "sink_%u");

    if (!webrtc_sink || gst_pad_link (pay_src, webrtc_sink) != GST_PAD_LINK_OK
        || !gst_element_link (viewer->audio_queue, viewer->audio_pay)) {
      g_set_error (error, PCR_VIEWER_ERROR, PCR_VIEWER_ERROR_LINK,
          "cannot link the viewer's audio");
      return FALSE;
    }
    g_object_get (webrtc_sink, "transceiver", &trans, NULL);
  }
  if (trans) {
    direction = talker ? GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV :
        GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY;
    g_object_set (trans, "direction", direction, "codec-preferences", prefs,
        NULL);
    gst_object_unref (trans);
  }
  return TRUE;
}

/* Sound waits for the viewer's DTLS, like the picture waits for a key
 * frame: queued before, it would reach the browser in one burst, which
 * its jitter buffer keeps as delay for half a minute (seen: the sound 400
 * ms behind the picture at first). */
static GstPadProbeReturn
audio_gate_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Peer *peer = user_data;

  return g_atomic_int_get (&peer->secured) ? GST_PAD_PROBE_OK :
      GST_PAD_PROBE_DROP;
}

gboolean
pcr_viewer_link_audio_tee (PcrViewer * viewer, GError ** error)
{
  g_autoptr (GstPad) queue_sink = NULL;

  if (!viewer->audio_queue)
    return TRUE;
  queue_sink = gst_element_get_static_pad (viewer->audio_queue, "sink");
  viewer->audio_tee_pad = gst_element_request_pad_simple (viewer->audio_tee,
      "src_%u");
  if (!viewer->audio_tee_pad
      || gst_pad_link (viewer->audio_tee_pad, queue_sink) != GST_PAD_LINK_OK) {
    g_set_error (error, PCR_VIEWER_ERROR, PCR_VIEWER_ERROR_LINK,
        "cannot link the viewer to the audio");
    return FALSE;
  }
  gst_pad_add_probe (viewer->audio_tee_pad, GST_PAD_PROBE_TYPE_BUFFER,
      audio_gate_probe, pcr_peer_ref (viewer->peer),
      (GDestroyNotify) pcr_peer_unref);
  return TRUE;
}

