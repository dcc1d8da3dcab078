/* mqttwebrtcsink's session logic without a broker: a test signaller (this
 * file's, implementing the element's PcrSignaller interface, set on its
 * "signaller" property) hands the element an offer made by a real second
 * webrtcbin in this process and collects what the element sends back. It
 * checks that the answer uses the payload type the element chose from the
 * offer and that webrtcbin takes it, that a bad remote candidate is answered
 * with a bad-request error, that the viewers property and the status count
 * the viewer, and that bye removes it. Runs in a private network namespace
 * (unshare -rn, loopback only), like the integration tests. */
#include <string.h>
#include <unistd.h>

#include <gst/check/gstcheck.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

#include "pcr-message.h"
#include "pcr-signaller.h"

#define WAIT_US (10 * G_TIME_SPAN_SECOND)
/* Two H.264 formats: only 104 (packetization-mode=1) is one the device
 * sends, so the answer must carry 104. */
#define VIEWER_CAPS "application/x-rtp, media=video, encoding-name=H264, " \
    "clock-rate=90000, payload=102, packetization-mode=(string)0, " \
    "profile-level-id=(string)42e01f; application/x-rtp, media=video, " \
    "encoding-name=H264, clock-rate=90000, payload=104, " \
    "packetization-mode=(string)1, profile-level-id=(string)42e01f"
#define CHOSEN_PT 104

/* ------------------------------------------------------------------------
 * The test signaller
 * ------------------------------------------------------------------------ */

typedef struct
{
  GObject parent;

  GMainContext *context;
  PcrSignallerCallbacks callbacks;
  gpointer user_data;
  GAsyncQueue *sent;            /* "id|json" strings the element sent */
  gint status_viewers;          /* atomic; -1 before any status */
  gint stopped;                 /* atomic */
} TestSignaller;

typedef GObjectClass TestSignallerClass;

static gboolean
test_start (PcrSignaller * signaller, GMainContext * context,
    const PcrSignallerCallbacks * callbacks, gpointer user_data,
    const PcrStatus * offline, GError ** error)
{
  TestSignaller *self = (TestSignaller *) signaller;

  fail_unless_equals_string (offline->state, "offline");
  self->context = g_main_context_ref (context);
  self->callbacks = *callbacks;
  self->user_data = user_data;
  return TRUE;
}

static void
test_stop (PcrSignaller * signaller, const PcrStatus * offline)
{
  TestSignaller *self = (TestSignaller *) signaller;

  g_atomic_int_set (&self->stopped, 1);
  g_clear_pointer (&self->context, g_main_context_unref);
}

static void
test_send (PcrSignaller * signaller, const gchar * session_id,
    const PcrMessage * msg)
{
  TestSignaller *self = (TestSignaller *) signaller;
  g_autofree gchar *json = pcr_message_to_json (msg, NULL);

  g_async_queue_push (self->sent, g_strdup_printf ("%s|%s", session_id,
          json));
}

static void
test_publish_status (PcrSignaller * signaller, const PcrStatus * status)
{
  TestSignaller *self = (TestSignaller *) signaller;

  g_atomic_int_set (&self->status_viewers, status->viewers);
}

static void
test_signaller_iface_init (gpointer g_iface, gpointer data)
{
  PcrSignallerInterface *iface = g_iface;

  iface->start = test_start;
  iface->stop = test_stop;
  iface->send = test_send;
  iface->publish_status = test_publish_status;
}

static void
test_signaller_finalize (GObject * object)
{
  TestSignaller *self = (TestSignaller *) object;

  g_clear_pointer (&self->context, g_main_context_unref);
  g_async_queue_unref (self->sent);
  G_OBJECT_CLASS (g_type_class_peek_parent (G_OBJECT_GET_CLASS (object)))->
      finalize (object);
}

static void
test_signaller_class_init (gpointer klass, gpointer data)
{
  G_OBJECT_CLASS (klass)->finalize = test_signaller_finalize;
}

static void
test_signaller_init (GTypeInstance * instance, gpointer klass)
{
  TestSignaller *self = (TestSignaller *) instance;

  self->sent = g_async_queue_new_full (g_free);
  self->status_viewers = -1;
}

/* The interface lives in the plugin, which this program does not link:
 * look it up once the plugin has registered it. */
static GType
test_signaller_get_type (void)
{
  static GType type = 0;

  if (!type) {
    const GInterfaceInfo iface = { test_signaller_iface_init, NULL, NULL };
    GType iface_type = g_type_from_name ("PcrSignaller");

    fail_unless (iface_type != 0, "the plugin registered no PcrSignaller");
    type = g_type_register_static_simple (G_TYPE_OBJECT, "TestSignaller",
        sizeof (TestSignallerClass), test_signaller_class_init,
        sizeof (TestSignaller), test_signaller_init, 0);
    g_type_add_interface_static (type, iface_type, &iface);
  }
  return type;
}

typedef struct
{
  TestSignaller *self;
  gchar *id;
  PcrMessage *msg;
} Delivery;

static void
delivery_free (Delivery * d)
{
  g_object_unref (d->self);
  g_free (d->id);
  pcr_message_free (d->msg);
  g_free (d);
}

static gboolean
deliver_cb (gpointer data)
{
  Delivery *d = data;

  d->self->callbacks.message ((PcrSignaller *) d->self, d->id, d->msg,
      d->self->user_data);
  return G_SOURCE_REMOVE;
}

/* As a signaller must: on the element's context, never the caller's. */
static void
deliver (TestSignaller * self, const gchar * id, PcrMessage * msg)
{
  Delivery *d = g_new0 (Delivery, 1);
  GSource *source = g_idle_source_new ();

  fail_unless (self->context != NULL, "the element did not start us");
  d->self = g_object_ref (self);
  d->id = g_strdup (id);
  d->msg = msg;
  g_source_set_callback (source, deliver_cb, d, (GDestroyNotify) delivery_free);
  g_source_attach (source, self->context);
  g_source_unref (source);
}

/* The next message the element sent to @id, parsed. */
static PcrMessage *
next_sent (TestSignaller * self, const gchar * id)
{
  g_autofree gchar *entry = g_async_queue_timeout_pop (self->sent, WAIT_US);
  g_autofree gchar *prefix = g_strdup_printf ("%s|", id);
  g_autoptr (GError) error = NULL;
  PcrMessage *msg;

  fail_unless (entry != NULL, "the element sent nothing to %s", id);
  fail_unless (g_str_has_prefix (entry, prefix), "sent to another: %s",
      entry);
  msg = pcr_message_parse (entry + strlen (prefix),
      strlen (entry + strlen (prefix)), &error);
  fail_unless (msg != NULL, "unparsable %s: %s", entry, error ?
      error->message : "");
  return msg;
}

/* Skips the element's trickled candidates. */
static PcrMessage *
next_sent_not_candidate (TestSignaller * self, const gchar * id)
{
  for (;;) {
    PcrMessage *msg = next_sent (self, id);

    if (msg->type != PCR_MESSAGE_CANDIDATE)
      return msg;
    pcr_message_free (msg);
  }
}

static void
expect_error (TestSignaller * self, const gchar * id, const gchar * code)
{
  PcrMessage *msg = next_sent_not_candidate (self, id);

  fail_unless_equals_int (msg->type, PCR_MESSAGE_ERROR_MSG);
  fail_unless_equals_string (msg->code, code);
  pcr_message_free (msg);
}

/* ------------------------------------------------------------------------
 * The viewer: a second webrtcbin
 * ------------------------------------------------------------------------ */

static GstWebRTCSessionDescription *
await_description (GstPromise * promise, const gchar * field)
{
  GstWebRTCSessionDescription *desc = NULL;
  const GstStructure *reply;

  fail_unless_equals_int (gst_promise_wait (promise),
      GST_PROMISE_RESULT_REPLIED);
  reply = gst_promise_get_reply (promise);
  fail_unless (reply != NULL && gst_structure_get (reply, field,
          GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &desc, NULL), "no %s", field);
  gst_promise_unref (promise);
  return desc;
}

static void
on_viewer_pad (GstElement * webrtc, GstPad * pad, GstElement * pipeline)
{
  GstElement *sink;
  GstPad *sinkpad;

  if (GST_PAD_DIRECTION (pad) != GST_PAD_SRC)
    return;
  sink = gst_element_factory_make ("fakesink", NULL);
  gst_bin_add (GST_BIN (pipeline), sink);
  gst_element_sync_state_with_parent (sink);
  sinkpad = gst_element_get_static_pad (sink, "sink");
  gst_pad_link (pad, sinkpad);
  gst_object_unref (sinkpad);
}

/* A recvonly offer (text), as a browser's would be. */
static gchar *
make_offer (GstElement * webrtc)
{
  g_autoptr (GstCaps) caps = gst_caps_from_string (VIEWER_CAPS);
  GstWebRTCRTPTransceiver *trans = NULL;
  GstWebRTCSessionDescription *offer;
  GstPromise *promise;
  gchar *text;

  g_signal_emit_by_name (webrtc, "add-transceiver",
      GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps, &trans);
  fail_unless (trans != NULL);
  gst_object_unref (trans);
  promise = gst_promise_new ();
  g_signal_emit_by_name (webrtc, "create-offer", NULL, promise);
  offer = await_description (promise, "offer");
  promise = gst_promise_new ();
  g_signal_emit_by_name (webrtc, "set-local-description", offer, promise);
  gst_promise_wait (promise);
  gst_promise_unref (promise);
  text = gst_sdp_message_as_text (offer->sdp);
  gst_webrtc_session_description_free (offer);
  return text;
}

/* The answer is for 104 only, and the offering webrtcbin takes it. */
static void
check_answer (GstElement * webrtc, const gchar * sdp_text)
{
  GstSDPMessage *sdp = NULL;
  GstWebRTCSessionDescription *answer;
  const GstSDPMedia *media;
  GstPromise *promise;
  const GstStructure *reply;

  fail_unless_equals_int (gst_sdp_message_new_from_text (sdp_text, &sdp),
      GST_SDP_OK);
  fail_unless_equals_int (gst_sdp_message_medias_len (sdp), 1);
  media = gst_sdp_message_get_media (sdp, 0);
  fail_unless_equals_string (gst_sdp_media_get_media (media), "video");
  fail_unless_equals_int (gst_sdp_media_formats_len (media), 1);
  fail_unless_equals_int (atoi (gst_sdp_media_get_format (media, 0)),
      CHOSEN_PT);
  fail_unless (gst_sdp_media_get_attribute_val (media, "sendonly") != NULL,
      "the answer does not send: %s", sdp_text);

  answer = gst_webrtc_session_description_new (GST_WEBRTC_SDP_TYPE_ANSWER,
      sdp);
  promise = gst_promise_new ();
  g_signal_emit_by_name (webrtc, "set-remote-description", answer, promise);
  fail_unless_equals_int (gst_promise_wait (promise),
      GST_PROMISE_RESULT_REPLIED);
  reply = gst_promise_get_reply (promise);
  fail_if (reply && gst_structure_has_field (reply, "error"),
      "the viewer refused the answer: %" GST_PTR_FORMAT, reply);
  gst_promise_unref (promise);
  gst_webrtc_session_description_free (answer);
}

static guint
wait_viewers (GstElement * sink, TestSignaller * signaller, guint expected)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_US;
  guint viewers = G_MAXUINT;

  while (g_get_monotonic_time () < deadline) {
    g_object_get (sink, "viewers", &viewers, NULL);
    if (viewers == expected &&
        g_atomic_int_get (&signaller->status_viewers) == (gint) expected)
      break;
    g_usleep (20 * G_TIME_SPAN_MILLISECOND);
  }
  return viewers;
}

GST_START_TEST (test_session_without_broker)
{
  GstElement *pipeline, *sink, *viewer_pipeline, *viewer;
  TestSignaller *signaller;
  g_autofree gchar *offer = NULL;
  PcrMessage *msg;
  GError *error = NULL;

  pipeline = gst_parse_launch ("videotestsrc is-live=true ! "
      "video/x-raw,width=320,height=240,framerate=30/1 ! "
      "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! "
      "mqttwebrtcsink name=sink ice-addresses=127.0.0.1", &error);
  fail_unless (pipeline != NULL, "%s", error ? error->message : "");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  signaller = g_object_new (test_signaller_get_type (), NULL);
  g_object_set (sink, "signaller", signaller, NULL);
  fail_if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE);
  fail_unless_equals_int (gst_element_get_state (pipeline, NULL, NULL,
          10 * GST_SECOND), GST_STATE_CHANGE_SUCCESS);

  viewer_pipeline = gst_pipeline_new ("viewer");
  viewer = gst_element_factory_make ("webrtcbin", NULL);
  gst_bin_add (GST_BIN (viewer_pipeline), viewer);
  g_signal_connect (viewer, "pad-added", G_CALLBACK (on_viewer_pad),
      viewer_pipeline);
  gst_element_set_state (viewer_pipeline, GST_STATE_PLAYING);
  offer = make_offer (viewer);

  /* The offer: an answer with the chosen payload type. */
  deliver (signaller, "viewer-1", pcr_message_new_offer (offer, TRUE));
  msg = next_sent_not_candidate (signaller, "viewer-1");
  fail_unless_equals_int (msg->type, PCR_MESSAGE_ANSWER);
  check_answer (viewer, msg->sdp);
  pcr_message_free (msg);
  fail_unless_equals_int (wait_viewers (sink, signaller, 1), 1);

  /* A candidate without its address and port: bad-request. */
  deliver (signaller, "viewer-1", pcr_message_new_candidate ("candidate:1 1 "
          "udp 2122260223 127.0.0.1", 0, "0"));
  expect_error (signaller, "viewer-1", "bad-request");

  /* A second offer for the same session is refused, the first one stays. */
  deliver (signaller, "viewer-1", pcr_message_new_offer (offer, TRUE));
  expect_error (signaller, "viewer-1", "bad-request");

  /* Bye: the session goes, the viewers property and the status say 0. */
  deliver (signaller, "viewer-1", pcr_message_new_bye ());
  fail_unless_equals_int (wait_viewers (sink, signaller, 0), 0);

  /* A candidate for it now: the session is unknown. */
  deliver (signaller, "viewer-1", pcr_message_new_candidate ("candidate:1 1 "
          "udp 2122260223 127.0.0.1 5000 typ host", 0, "0"));
  expect_error (signaller, "viewer-1", "unknown-session");

  gst_element_set_state (viewer_pipeline, GST_STATE_NULL);
  gst_object_unref (viewer_pipeline);
  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless (g_atomic_int_get (&signaller->stopped), "not stopped");
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  g_object_unref (signaller);
}

GST_END_TEST;

/* Closing the pipeline with a viewer still there frees its branch before
 * the state change returns. */
GST_START_TEST (test_stop_with_viewer)
{
  GstElement *pipeline, *sink, *viewer_pipeline, *viewer;
  TestSignaller *signaller;
  g_autofree gchar *offer = NULL;
  PcrMessage *msg;
  GstIterator *it;
  GValue item = G_VALUE_INIT;
  guint children = 0;

  pipeline = gst_parse_launch ("videotestsrc is-live=true ! "
      "video/x-raw,width=320,height=240,framerate=30/1 ! "
      "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! "
      "mqttwebrtcsink name=sink ice-addresses=127.0.0.1", NULL);
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  signaller = g_object_new (test_signaller_get_type (), NULL);
  g_object_set (sink, "signaller", signaller, NULL);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  fail_unless_equals_int (gst_element_get_state (pipeline, NULL, NULL,
          10 * GST_SECOND), GST_STATE_CHANGE_SUCCESS);

  viewer_pipeline = gst_pipeline_new ("viewer");
  viewer = gst_element_factory_make ("webrtcbin", NULL);
  gst_bin_add (GST_BIN (viewer_pipeline), viewer);
  gst_element_set_state (viewer_pipeline, GST_STATE_PLAYING);
  offer = make_offer (viewer);
  deliver (signaller, "viewer-2", pcr_message_new_offer (offer, FALSE));
  fail_unless_equals_int (wait_viewers (sink, signaller, 1), 1);

  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_READY),
      GST_STATE_CHANGE_SUCCESS);
  it = gst_bin_iterate_elements (GST_BIN (sink));
  while (gst_iterator_next (it, &item) == GST_ITERATOR_OK) {
    children++;
    g_value_reset (&item);
  }
  g_value_unset (&item);
  gst_iterator_free (it);
  /* capsfilter, h264parse, tee, fakesink: no branch left. */
  fail_unless_equals_int (children, 4);
  /* The viewer was told. */
  msg = next_sent_not_candidate (signaller, "viewer-2");
  while (msg->type == PCR_MESSAGE_ANSWER) {
    pcr_message_free (msg);
    msg = next_sent_not_candidate (signaller, "viewer-2");
  }
  fail_unless_equals_int (msg->type, PCR_MESSAGE_BYE);
  pcr_message_free (msg);

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_element_set_state (viewer_pipeline, GST_STATE_NULL);
  gst_object_unref (viewer_pipeline);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  g_object_unref (signaller);
}

GST_END_TEST;

static Suite *
signaller_suite (void)
{
  Suite *s = suite_create ("signaller");
  TCase *tc = tcase_create ("general");

  tcase_set_timeout (tc, 60);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_session_without_broker);
  tcase_add_test (tc, test_stop_with_viewer);
  return s;
}

/* Into a private network namespace with only loopback up, so neither
 * webrtcbin sends anything beyond this process (libnice's UPnP search
 * included). */
static void
enter_private_network (int argc, char **argv)
{
  GPtrArray *args;
  gint i;

  if (g_getenv ("PICAMRTC_PRIVATE_NET"))
    return;
  g_setenv ("PICAMRTC_PRIVATE_NET", "1", TRUE);
  args = g_ptr_array_new ();
  g_ptr_array_add (args, (gpointer) "unshare");
  g_ptr_array_add (args, (gpointer) "-rn");
  g_ptr_array_add (args, (gpointer) "sh");
  g_ptr_array_add (args, (gpointer) "-c");
  g_ptr_array_add (args, (gpointer) "ip link set lo up && exec \"$@\"");
  g_ptr_array_add (args, (gpointer) "sh");
  for (i = 0; i < argc; i++)
    g_ptr_array_add (args, argv[i]);
  g_ptr_array_add (args, NULL);
  execvp ("unshare", (gchar **) args->pdata);
  g_printerr ("cannot run unshare -rn: %s\n", g_strerror (errno));
  exit (1);
}

int
main (int argc, char **argv)
{
  Suite *s;

  enter_private_network (argc, argv);
  gst_check_init (&argc, &argv);
  s = signaller_suite ();
  return gst_check_run_suite (s, "signaller", __FILE__);
}
