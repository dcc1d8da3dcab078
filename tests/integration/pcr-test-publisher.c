/* pcr-test-publisher: publishes a test pattern into a Janus VideoRoom the
 * way the camera's relay does (a room created with the admin key, the
 * publisher id "feed", H.264 over WebRTC), for trying the relayed viewer
 * and the gateway without the camera. By hand only:
 *
 *   pcr-test-publisher --janus http://127.0.0.1:8088/janus?adminkey=K \
 *       --room 1234 --feed 42 [--ice-address IP]... [--size 640x360]
 *
 * (in the tests' namespace: --ice-address 127.0.0.1 --ice-address
 * 127.0.1.1, Janus' own address; tests/pcrtest.py says why)
 * Prints "publishing" once Janus says webrtcup; runs until SIGINT/SIGTERM
 * or the Janus session is lost (exit 1). */

#include "pcr-janus.h"

#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <glib-unix.h>

#include <stdio.h>
#include <string.h>

static struct
{
  gchar *url;
  gint64 room;
  gint64 feed;
  gchar **ice_addresses;
  gchar *size;
  gchar *adminkey;
  GMainLoop *loop;
  PcrJanus *janus;
  GstElement *pipeline;
  GstElement *webrtc;
  gint exit_code;
  gboolean offered;
} p;

static void
quit (gint code)
{
  p.exit_code = code;
  g_main_loop_quit (p.loop);
}

static void
on_lost (PcrJanus * janus, const GError * error, gpointer data)
{
  g_printerr ("publisher: Janus session lost: %s\n", error->message);
  quit (1);
}

static void
on_event (PcrJanus * janus, JsonObject * event, gpointer data)
{
  const gchar *type = pcr_janus_string (event, "janus", "");

  if (g_str_equal (type, "webrtcup")) {
    printf ("publishing\n");
    fflush (stdout);
  } else if (g_str_equal (type, "hangup")) {
    g_printerr ("publisher: Janus hung up\n");
    quit (1);
  }
}

static void
on_answer_set (GstPromise * promise, gpointer data)
{
  const GstStructure *reply = gst_promise_get_reply (promise);
  GError *error = NULL;

  if (reply && gst_structure_get (reply, "error", G_TYPE_ERROR, &error, NULL)) {
    g_printerr ("publisher: Janus' answer refused: %s\n", error->message);
    g_clear_error (&error);
  }
  gst_promise_unref (promise);
}

static void
on_configured (PcrJanus * janus, JsonObject * reply, const GError * error,
    gpointer data)
{
  const gchar *sdp;
  GstSDPMessage *msg = NULL;
  GstWebRTCSessionDescription *answer;

  if (error) {
    g_printerr ("publisher: publish: %s\n", error->message);
    quit (1);
    return;
  }
  sdp = pcr_janus_jsep_sdp (reply, "answer");
  if (sdp == NULL || gst_sdp_message_new_from_text (sdp, &msg) != GST_SDP_OK) {
    g_printerr ("publisher: no answer from Janus\n");
    quit (1);
    return;
  }
  answer = gst_webrtc_session_description_new (GST_WEBRTC_SDP_TYPE_ANSWER,
      msg);
  g_signal_emit_by_name (p.webrtc, "set-remote-description", answer,
      gst_promise_new_with_change_func (on_answer_set, NULL, NULL));
  gst_webrtc_session_description_free (answer);
}

/* gathering complete: the offer with its candidates goes to Janus */
static gboolean
send_offer (gpointer data)
{
  GstWebRTCSessionDescription *desc = NULL;
  g_autofree gchar *text = NULL;
  g_autoptr (JsonObject) body = json_object_new ();

  if (p.offered)
    return G_SOURCE_REMOVE;
  p.offered = TRUE;
  g_object_get (p.webrtc, "local-description", &desc, NULL);
  text = gst_sdp_message_as_text (desc->sdp);
  gst_webrtc_session_description_free (desc);
  json_object_set_string_member (body, "request", "joinandconfigure");
  json_object_set_string_member (body, "ptype", "publisher");
  json_object_set_int_member (body, "room", p.room);
  json_object_set_int_member (body, "id", p.feed);
  json_object_set_string_member (body, "display", "pcr-test-publisher");
  pcr_janus_message (p.janus, body, "offer", text, on_configured, NULL);
  return G_SOURCE_REMOVE;
}

static void
on_gathering (GstElement * webrtc, GParamSpec * pspec, gpointer data)
{
  GstWebRTCICEGatheringState state;

  g_object_get (webrtc, "ice-gathering-state", &state, NULL);
  if (state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE)
    g_idle_add (send_offer, NULL);
}

static gboolean
on_offer_main (gpointer data)
{
  GstPromise *promise = data;
  GstWebRTCSessionDescription *offer = NULL;

  gst_structure_get (gst_promise_get_reply (promise), "offer",
      GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, NULL);
  g_signal_emit_by_name (p.webrtc, "set-local-description", offer, NULL);
  gst_webrtc_session_description_free (offer);
  return G_SOURCE_REMOVE;
}

static void
on_offer (GstPromise * promise, gpointer data)
{
  g_idle_add_full (G_PRIORITY_DEFAULT, on_offer_main, promise,
      (GDestroyNotify) gst_promise_unref);
}

static void
on_negotiation_needed (GstElement * webrtc, gpointer data)
{
  g_signal_emit_by_name (webrtc, "create-offer", NULL,
      gst_promise_new_with_change_func (on_offer, NULL, NULL));
}

static void
start_media (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *desc = NULL;
  GObject *ice = NULL;
  gint w = 640, h = 360;
  gint i;

  if (p.size)
    sscanf (p.size, "%dx%d", &w, &h);
  desc = g_strdup_printf ("videotestsrc is-live=true ! video/x-raw,width=%d,"
      "height=%d,framerate=30/1 ! x264enc tune=zerolatency "
      "speed-preset=ultrafast key-int-max=30 ! video/x-h264,"
      "profile=constrained-baseline ! rtph264pay config-interval=-1 "
      "aggregate-mode=zero-latency ! application/x-rtp,media=video,"
      "encoding-name=H264,payload=96 ! webrtcbin name=w "
      "bundle-policy=max-bundle", w, h);
  p.pipeline = gst_parse_launch_full (desc, NULL,
      GST_PARSE_FLAG_FATAL_ERRORS, &error);
  if (p.pipeline == NULL) {
    g_printerr ("publisher: %s\n", error->message);
    quit (1);
    return;
  }
  p.webrtc = gst_bin_get_by_name (GST_BIN (p.pipeline), "w");
  {
    /* sendonly, as a camera offers: the pad made it sendrecv */
    GstWebRTCRTPTransceiver *trans = NULL;

    g_signal_emit_by_name (p.webrtc, "get-transceiver", 0, &trans);
    if (trans)
      g_object_set (trans, "direction",
          GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, NULL);
    g_clear_object (&trans);
  }
  g_object_get (p.webrtc, "ice-agent", &ice, NULL);
  for (i = 0; ice && p.ice_addresses && p.ice_addresses[i]; i++) {
    gboolean ok;

    g_signal_emit_by_name (ice, "add-local-ip-address", p.ice_addresses[i],
        &ok);
  }
  g_clear_object (&ice);
  g_signal_connect (p.webrtc, "on-negotiation-needed",
      G_CALLBACK (on_negotiation_needed), NULL);
  g_signal_connect (p.webrtc, "notify::ice-gathering-state",
      G_CALLBACK (on_gathering), NULL);
  gst_element_set_state (p.pipeline, GST_STATE_PLAYING);
}

static void
on_created (PcrJanus * janus, JsonObject * reply, const GError * error,
    gpointer data)
{
  /* 427: the room exists already (another run made it) */
  if (error && !g_str_has_prefix (error->message, "427")
      && !strstr (error->message, "already exists")) {
    g_printerr ("publisher: create room: %s\n", error->message);
    quit (1);
    return;
  }
  start_media ();
}

static void
on_connected (PcrJanus * janus, JsonObject * reply, const GError * error,
    gpointer data)
{
  g_autoptr (JsonObject) body = json_object_new ();

  if (error) {
    g_printerr ("publisher: %s\n", error->message);
    quit (1);
    return;
  }
  json_object_set_string_member (body, "request", "create");
  json_object_set_int_member (body, "room", p.room);
  json_object_set_string_member (body, "videocodec", "h264");
  json_object_set_int_member (body, "publishers", 1);
  if (p.adminkey)
    json_object_set_string_member (body, "admin_key", p.adminkey);
  pcr_janus_message (janus, body, NULL, NULL, on_created, NULL);
}

static gboolean
on_signal (gpointer data)
{
  quit (0);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GOptionContext) ctx = NULL;
  g_autofree gchar *base = NULL;
  g_autofree gchar *apisecret = NULL;
  guint64 room = 0;
  GOptionEntry entries[] = {
    {"janus", 0, 0, G_OPTION_ARG_STRING, &p.url,
        "Janus URL (?adminkey=K&apisecret=S)", "URL"},
    {"room", 0, 0, G_OPTION_ARG_INT64, &p.room, "Room", "N"},
    {"feed", 0, 0, G_OPTION_ARG_INT64, &p.feed, "Publisher id", "F"},
    {"ice-address", 0, 0, G_OPTION_ARG_STRING_ARRAY, &p.ice_addresses,
        "Local ICE address (repeatable)", "IP"},
    {"size", 0, 0, G_OPTION_ARG_STRING, &p.size, "WxH (640x360)", "WxH"},
    {NULL}
  };

  gst_init (&argc, &argv);
  ctx = g_option_context_new ("- publish a test pattern into Janus");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || !p.url
      || p.room <= 0 || p.feed <= 0) {
    g_printerr ("publisher: --janus URL --room N --feed F are needed\n");
    return 2;
  }
  if (!pcr_janus_parse_url (p.url, &base, &room, &p.adminkey, &apisecret,
          &error)) {
    g_printerr ("publisher: %s\n", error->message);
    return 2;
  }
  p.loop = g_main_loop_new (NULL, FALSE);
  p.janus = pcr_janus_new (base, apisecret, on_event, on_lost, NULL);
  pcr_janus_connect (p.janus, "janus.plugin.videoroom", on_connected, NULL);
  g_unix_signal_add (SIGINT, on_signal, NULL);
  g_unix_signal_add (SIGTERM, on_signal, NULL);
  g_main_loop_run (p.loop);

  pcr_janus_free (p.janus);
  if (p.pipeline) {
    gst_element_set_state (p.pipeline, GST_STATE_NULL);
    gst_object_unref (p.webrtc);
    gst_object_unref (p.pipeline);
  }
  g_main_loop_unref (p.loop);
  g_free (p.adminkey);
  g_free (p.url);
  g_free (p.size);
  g_strfreev (p.ice_addresses);
  return p.exit_code;
}
