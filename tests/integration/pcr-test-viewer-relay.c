/* pcr-test-viewer --relay URL: one or more (--count) viewers that watch the
 * camera through Janus, as the relay contract of issue 14 has it: each asks
 * the device over MQTT ({"type":"relay"} on P/D/in/S, again every 10 s as a
 * lease), and once the device answers with its room and feed, subscribes
 * through Janus with lib/pcr-janus (a session, the VideoRoom handle, "join"
 * as a subscriber), answers Janus' offer from its own webrtcbin ("start"),
 * then decodes and counts frames like the direct mode. When the Janus session
 * is lost, Janus hangs the subscriber up, the feed goes away or ICE fails, it
 * starts over after 500 ms (a new relay request, a new subscription) and says
 * how long it took from the loss to the first new frame.
 *
 * Events, one JSON object a line, each with "viewer" (its index) and "ms"
 * (since that viewer's first relay request): "relay-request", "relay" (the
 * device's answer: room, feed), "janus-offer", "answer" (with the number of
 * candidates in it), "started", "webrtcup", "first-frame" (width, height,
 * profile), "resolution" (each new picture size: width, height), "frames"
 * once a second (count, max_gap_ms), "lost" (reason),
 * "reconnected" (reconnect_ms: from the loss to the first new frame),
 * "error" (the device's error reply: code, message), "bye", "timeout" and at
 * the end "done" (frames, reconnects, the longest reconnect and gap). */

#include "pcr-test-viewer-relay.h"

#include "pcr-janus.h"

#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <mosquitto.h>

#include <stdio.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC (relay_debug);
#define GST_CAT_DEFAULT relay_debug

#define RESTART_DELAY_MS 500
#define ERROR_RETRY_MS 1000
#define LEASE_S 10
/* posted work that belongs to no attempt (MQTT messages) */
#define ANY_GENERATION G_MAXUINT

typedef enum
{
  STATE_IDLE,                   /* not started (staggered) */
  STATE_WAIT_RELAY,             /* asked the device, waiting for its answer */
  STATE_CONNECTING,             /* Janus session and handle */
  STATE_JOINING,                /* join sent, waiting for Janus' offer */
  STATE_ANSWERING,              /* our answer in the making */
  STATE_STARTED,                /* start answered: media flows */
  STATE_LOST,                   /* waiting to start over */
} State;

typedef struct
{
  gint index;
  gchar *session;
  gchar *topic_in;
  gchar *topic_out;
  State state;
  /* bumped whenever an attempt is torn down: work posted for an older
   * attempt is dropped */
  guint generation;
  PcrJanus *janus;
  GstElement *pipeline;
  GstElement *webrtc;
  guint64 room;
  guint64 feed;
  guint retry_source;
  gint64 t0;                    /* µs, the first relay request */
  gint64 t_lost;                /* µs, the loss being recovered from, or 0 */
  gint reconnects;
  gint64 max_reconnect_us;
  gboolean requested;
  gboolean target_reached;
  gboolean bye_received;
  gint width;
  gint height;
  gint bye_mid;                 /* atomic */
  gboolean bye_published;       /* atomic */

  /* written by the streaming thread */
  gint frames;                  /* atomic, over all attempts */
  gint attempt_first_frame;     /* atomic, reset by each attempt */
  GMutex gap_lock;
  gint64 last_frame_us;
  gint64 interval_gap_us;
  gint64 max_gap_us;
} Relayed;

static struct
{
  const RelayOptions *o;
  gchar *base;
  gchar *apisecret;
  GMainContext *context;
  GMainLoop *loop;
  struct mosquitto *mosq;
  Relayed **viewers;
  GHashTable *by_topic;         /* topic_out → Relayed; fixed before MQTT */
  gint subscribed;
  gboolean started;
  gboolean finishing;
  gint exit_code;
} r;

static void finish (gint exit_code);
static void start_over (Relayed * rv, guint delay_ms);
static void lose (Relayed * rv, const gchar * reason);

/* Output */

static gint64
since_ms (Relayed * rv)
{
  return rv->t0 ? (g_get_monotonic_time () - rv->t0) / 1000 : 0;
}

static JsonBuilder *
event_begin (Relayed * rv, const gchar * name)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "event");
  json_builder_add_string_value (b, name);
  json_builder_set_member_name (b, "viewer");
  json_builder_add_int_value (b, rv->index);
  json_builder_set_member_name (b, "ms");
  json_builder_add_int_value (b, since_ms (rv));
  return b;
}

static void
event_end (JsonBuilder * b)
{
  g_autoptr (JsonNode) root = NULL;
  g_autofree gchar *line = NULL;

  json_builder_end_object (b);
  root = json_builder_get_root (b);
  line = json_to_string (root, FALSE);
  fprintf (stdout, "%s\n", line);
  fflush (stdout);
  g_object_unref (b);
}

static void
event_message (Relayed * rv, const gchar * name, const gchar * message)
{
  JsonBuilder *b = event_begin (rv, name);

  if (message) {
    json_builder_set_member_name (b, "message");
    json_builder_add_string_value (b, message);
  }
  event_end (b);
}

/* Work posted to the main context from other threads (STYLE rule 5),
 * dropped when its attempt is over by then */

typedef void (*PostedFunc) (Relayed * rv, gpointer data);

typedef struct
{
  PostedFunc func;
  Relayed *rv;
  guint generation;
  gpointer data;
  GDestroyNotify destroy;
} Posted;

static gboolean
posted_dispatch (gpointer user_data)
{
  Posted *p = user_data;

  if (!r.finishing && (p->rv == NULL || p->generation == ANY_GENERATION ||
          p->generation == p->rv->generation))
    p->func (p->rv, p->data);
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

/* @generation: the attempt the work belongs to (read on the posting
 * thread, so an attempt torn down meanwhile is told apart) */
static void
post (Relayed * rv, guint generation, PostedFunc func, gpointer data,
    GDestroyNotify destroy)
{
  GSource *source = g_idle_source_new ();
  Posted *p = g_new0 (Posted, 1);

  p->func = func;
  p->rv = rv;
  p->generation = generation;
  p->data = data;
  p->destroy = destroy;
  g_source_set_callback (source, posted_dispatch, p, posted_free);
  g_source_attach (source, r.context);
  g_source_unref (source);
}

/* MQTT */

static void
publish (Relayed * rv, const gchar * payload, int *mid)
{
  int rc = mosquitto_publish (r.mosq, mid, rv->topic_in, strlen (payload),
      payload, 1, false);

  if (rc != MOSQ_ERR_SUCCESS)
    g_printerr ("relay viewer %d: publish failed: %s\n", rv->index,
        mosquitto_strerror (rc));
}

static void
request_relay (Relayed * rv)
{
  if (rv->t0 == 0)
    rv->t0 = g_get_monotonic_time ();
  rv->requested = TRUE;
  rv->state = STATE_WAIT_RELAY;
  publish (rv, "{\"type\":\"relay\"}", NULL);
  event_message (rv, "relay-request", NULL);
}

/* The lease: every viewer that has asked asks again every 10 s, whatever
 * its state, so the device keeps counting it. */
static gboolean
on_lease (gpointer data)
{
  gint i;

  for (i = 0; i < r.o->count && !r.finishing; i++)
    if (r.viewers[i]->requested)
      publish (r.viewers[i], "{\"type\":\"relay\"}", NULL);
  return G_SOURCE_CONTINUE;
}

/* Janus and webrtcbin */

static GstPadProbeReturn
on_decoded_buffer (GstPad * pad, GstPadProbeInfo * info, gpointer data);

static void
on_first_frame_main (Relayed * rv, gpointer data)
{
  GstCaps *caps = data;
  GstStructure *s = caps ? gst_caps_get_structure (caps, 0) : NULL;
  gint64 now = g_get_monotonic_time ();
  JsonBuilder *b;

  if (s) {
    gst_structure_get_int (s, "width", &rv->width);
    gst_structure_get_int (s, "height", &rv->height);
  }
  if (rv->t_lost) {
    gint64 took = now - rv->t_lost;

    rv->reconnects++;
    rv->max_reconnect_us = MAX (rv->max_reconnect_us, took);
    rv->t_lost = 0;
    b = event_begin (rv, "reconnected");
    json_builder_set_member_name (b, "reconnect_ms");
    json_builder_add_int_value (b, took / 1000);
    json_builder_set_member_name (b, "reconnects");
    json_builder_add_int_value (b, rv->reconnects);
  } else {
    b = event_begin (rv, "first-frame");
  }
  json_builder_set_member_name (b, "width");
  json_builder_add_int_value (b, rv->width);
  json_builder_set_member_name (b, "height");
  json_builder_add_int_value (b, rv->height);
  /* the relay sends what the camera published: baseline for browsers */
  if (caps && s && gst_structure_has_field (s, "profile")) {
    json_builder_set_member_name (b, "profile");
    json_builder_add_string_value (b, gst_structure_get_string (s,
            "profile"));
  }
  event_end (b);
}

static gboolean
hold_done (gpointer data)
{
  finish (0);
  return G_SOURCE_REMOVE;
}

static void
on_target_main (Relayed * rv, gpointer data)
{
  gint i;

  if (rv->target_reached)
    return;
  rv->target_reached = TRUE;
  for (i = 0; i < r.o->count; i++)
    if (!r.viewers[i]->target_reached)
      return;
  if (r.o->hold_s > 0)
    g_timeout_add_seconds (r.o->hold_s, hold_done, NULL);
  else
    finish (0);
}

typedef struct
{
  Relayed *rv;
  guint generation;
  GstElement *parse;            /* nullable */
} Counter;

static void
counter_free (gpointer data)
{
  Counter *c = data;

  gst_clear_object (&c->parse);
  g_free (c);
}

static GstPadProbeReturn
on_decoded_buffer (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Counter *c = data;
  Relayed *rv = c->rv;
  gint count = g_atomic_int_add (&rv->frames, 1) + 1;
  gint64 now = g_get_monotonic_time ();

  g_mutex_lock (&rv->gap_lock);
  if (rv->last_frame_us != 0) {
    rv->interval_gap_us = MAX (rv->interval_gap_us, now - rv->last_frame_us);
    rv->max_gap_us = MAX (rv->max_gap_us, now - rv->last_frame_us);
  }
  rv->last_frame_us = now;
  g_mutex_unlock (&rv->gap_lock);

  if (g_atomic_int_compare_and_exchange (&rv->attempt_first_frame, 0, 1)) {
    GstCaps *caps = NULL;

    /* the decoded size, or with --no-decode the parser's caps (which
     * carry the size and the profile too) */
    if (c->parse) {
      GstPad *src = gst_element_get_static_pad (c->parse, "src");

      caps = gst_pad_get_current_caps (src);
      gst_object_unref (src);
    } else {
      caps = gst_pad_get_current_caps (pad);
    }
    post (rv, c->generation, on_first_frame_main, caps,
        (GDestroyNotify) gst_caps_unref);
  }
  if (r.o->frames_target > 0 && count == r.o->frames_target)
    post (rv, c->generation, on_target_main, NULL, NULL);
  return GST_PAD_PROBE_OK;
}

typedef struct
{
  gint width;
  gint height;
} Size;

static void
on_size_main (Relayed * rv, gpointer data)
{
  Size *size = data;
  JsonBuilder *b;

  if (size->width == rv->width && size->height == rv->height)
    return;
  rv->width = size->width;
  rv->height = size->height;
  b = event_begin (rv, "resolution");
  json_builder_set_member_name (b, "width");
  json_builder_add_int_value (b, size->width);
  json_builder_set_member_name (b, "height");
  json_builder_add_int_value (b, size->height);
  event_end (b);
}

/* Each new size of the picture (the relay switching between the camera's
 * renditions shows here), on the streaming thread */
static GstPadProbeReturn
on_caps_event (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Counter *c = data;
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);
  GstCaps *caps;
  GstStructure *s;
  Size *size;

  if (GST_EVENT_TYPE (event) != GST_EVENT_CAPS)
    return GST_PAD_PROBE_OK;
  gst_event_parse_caps (event, &caps);
  s = gst_caps_get_structure (caps, 0);
  size = g_new0 (Size, 1);
  if (s && gst_structure_get_int (s, "width", &size->width) &&
      gst_structure_get_int (s, "height", &size->height))
    post (c->rv, c->generation, on_size_main, size, g_free);
  else
    g_free (size);
  return GST_PAD_PROBE_OK;
}

/* The branch for a pad of webrtcbin, built on webrtcbin's thread (data is
 * about to flow). Decoding as the direct mode does: one decoder thread;
 * --no-decode counts the access units out of h264parse. */
static GstElement *
make_decoder (Relayed * rv, guint generation, const gchar * encoding)
{
  g_autoptr (GError) error = NULL;
  const gchar *desc;
  GstElement *bin;
  GstElement *sink;
  GstPad *sinkpad;
  Counter *c;

  if (g_strcmp0 (encoding, "H264") == 0 && r.o->no_decode)
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
    g_printerr ("relay viewer: cannot build decoder: %s\n", error->message);
    return NULL;
  }
  c = g_new0 (Counter, 1);
  c->rv = rv;
  c->generation = generation;
  if (r.o->no_decode)
    c->parse = gst_bin_get_by_name (GST_BIN (bin), "parse");
  sink = gst_bin_get_by_name (GST_BIN (bin), "sink");
  sinkpad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (sinkpad, GST_PAD_PROBE_TYPE_BUFFER, on_decoded_buffer,
      c, counter_free);
  gst_object_unref (sinkpad);
  gst_object_unref (sink);
  /* the size: the decoder's output, with --no-decode the parser's */
  {
    GstElement *at = gst_bin_get_by_name (GST_BIN (bin), r.o->no_decode ?
        "parse" : "sink");
    GstPad *pad = gst_element_get_static_pad (at, r.o->no_decode ?
        "src" : "sink");
    Counter *cc = g_new0 (Counter, 1);

    cc->rv = rv;
    cc->generation = generation;
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
        on_caps_event, cc, counter_free);
    gst_object_unref (pad);
    gst_object_unref (at);
  }
  return bin;
}

/* An attempt of a viewer, for webrtcbin's callbacks */
typedef struct
{
  Relayed *rv;
  guint generation;
} AttemptRef;

static void
on_pad_added (GstElement * webrtc, GstPad * pad, gpointer data)
{
  AttemptRef *pc = data;
  g_autoptr (GstCaps) caps = NULL;
  const gchar *encoding = NULL;
  GstElement *bin;
  GstPad *ghost;

  if (GST_PAD_DIRECTION (pad) != GST_PAD_SRC)
    return;
  caps = gst_pad_get_current_caps (pad);
  if (caps == NULL)
    caps = gst_pad_query_caps (pad, NULL);
  if (caps && gst_caps_get_size (caps) > 0)
    encoding = gst_structure_get_string (gst_caps_get_structure (caps, 0),
        "encoding-name");
  bin = make_decoder (pc->rv, pc->generation, encoding);
  if (bin == NULL)
    return;
  gst_bin_add (GST_BIN (GST_ELEMENT_PARENT (webrtc)), bin);
  gst_element_sync_state_with_parent (bin);
  ghost = gst_element_get_static_pad (bin, "sink");
  if (gst_pad_link (pad, ghost) != GST_PAD_LINK_OK)
    g_printerr ("relay viewer %d: cannot link the decoder\n", pc->rv->index);
  gst_object_unref (ghost);
}

static void
on_ice_failed_main (Relayed * rv, gpointer data)
{
  lose (rv, "ICE failed");
}

static void send_start (Relayed * rv, const gchar * sdp);

static void
on_gathering_complete_main (Relayed * rv, gpointer data)
{
  GstWebRTCSessionDescription *desc = NULL;
  g_autofree gchar *text = NULL;

  if (r.o->trickle) {
    if (rv->janus)
      pcr_janus_trickle (rv->janus, 0, NULL);
    return;
  }
  if (rv->state != STATE_ANSWERING)
    return;
  g_object_get (rv->webrtc, "local-description", &desc, NULL);
  if (desc == NULL) {
    lose (rv, "webrtcbin has no local description");
    return;
  }
  text = gst_sdp_message_as_text (desc->sdp);
  gst_webrtc_session_description_free (desc);
  send_start (rv, text);
}

static void
on_state_notify (GstElement * webrtc, GParamSpec * pspec, gpointer data)
{
  AttemptRef *pc = data;
  gint state = 0;

  g_object_get (webrtc, pspec->name, &state, NULL);
  if (g_str_equal (pspec->name, "ice-gathering-state") &&
      state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE)
    post (pc->rv, pc->generation, on_gathering_complete_main, NULL, NULL);
  else if (g_str_equal (pspec->name, "ice-connection-state") &&
      state == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED)
    post (pc->rv, pc->generation, on_ice_failed_main, NULL, NULL);
}

typedef struct
{
  guint mline;
  gchar *candidate;
} Candidate;

static void
candidate_free (gpointer data)
{
  Candidate *c = data;

  g_free (c->candidate);
  g_free (c);
}

static void
on_ice_candidate_main (Relayed * rv, gpointer data)
{
  Candidate *c = data;

  if (r.o->trickle && rv->janus)
    pcr_janus_trickle (rv->janus, c->mline, c->candidate);
}

static void
on_ice_candidate (GstElement * webrtc, guint mline, const gchar * candidate,
    gpointer data)
{
  AttemptRef *pc = data;
  Candidate *c = g_new0 (Candidate, 1);

  c->mline = mline;
  c->candidate = g_strdup (candidate);
  post (pc->rv, pc->generation, on_ice_candidate_main, c, candidate_free);
}

static void
attempt_ref_free (gpointer data, GClosure * closure)
{
  g_free (data);
}

static void
on_started (PcrJanus * janus, JsonObject * reply, const GError * error,
    gpointer user_data)
{
  Relayed *rv = user_data;

  if (janus != rv->janus)
    return;
  if (error) {
    g_autofree gchar *why = g_strdup_printf ("start: %s", error->message);

    lose (rv, why);
    return;
  }
  rv->state = STATE_STARTED;
  event_message (rv, "started", NULL);
}

static void
send_start (Relayed * rv, const gchar * sdp)
{
  g_autoptr (JsonObject) body = json_object_new ();
  JsonBuilder *b;
  const gchar *p;
  gint candidates = 0;

  for (p = strstr (sdp, "a=candidate:"); p; p = strstr (p + 1,
          "a=candidate:"))
    candidates++;
  rv->state = STATE_STARTED;
  json_object_set_string_member (body, "request", "start");
  pcr_janus_message (rv->janus, body, "answer", sdp, on_started, rv);
  b = event_begin (rv, "answer");
  json_builder_set_member_name (b, "candidates");
  json_builder_add_int_value (b, candidates);
  event_end (b);
}

static void
on_answer_created_main (Relayed * rv, gpointer data)
{
  GstPromise *promise = data;
  const GstStructure *reply = gst_promise_get_reply (promise);
  GstWebRTCSessionDescription *answer = NULL;

  if (reply)
    gst_structure_get (reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION,
        &answer, NULL);
  if (answer == NULL) {
    lose (rv, "webrtcbin made no answer to Janus' offer");
    return;
  }
  g_signal_emit_by_name (rv->webrtc, "set-local-description", answer, NULL);
  /* trickle: at once, the candidates follow through Janus; else once
   * gathering is complete, from the local description holding them */
  if (r.o->trickle) {
    g_autofree gchar *text = gst_sdp_message_as_text (answer->sdp);

    send_start (rv, text);
  }
  gst_webrtc_session_description_free (answer);
}

static void
on_answer_created (GstPromise * promise, gpointer data)
{
  AttemptRef *pc = data;

  /* the promise's only reference goes with the posted work */
  post (pc->rv, pc->generation, on_answer_created_main, promise,
      (GDestroyNotify) gst_promise_unref);
}

static void
on_offer_set_main (Relayed * rv, gpointer data)
{
  AttemptRef pc = { rv, rv->generation };
  GstPromise *answer = gst_promise_new_with_change_func (on_answer_created,
      g_memdup2 (&pc, sizeof pc), g_free);

  g_signal_emit_by_name (rv->webrtc, "create-answer", NULL, answer);
}

static void
on_offer_set (GstPromise * promise, gpointer data)
{
  AttemptRef *pc = data;

  gst_promise_unref (promise);
  post (pc->rv, pc->generation, on_offer_set_main, NULL, NULL);
}

/* libnice's UPnP-IGD search sends SSDP multicast: off, as in the direct
 * mode */
static void
disable_upnp (GObject * ice)
{
  g_autoptr (GObject) agent = NULL;

  if (g_object_class_find_property (G_OBJECT_GET_CLASS (ice), "agent"))
    g_object_get (ice, "agent", &agent, NULL);
  if (agent &&
      g_object_class_find_property (G_OBJECT_GET_CLASS (agent), "upnp"))
    g_object_set (agent, "upnp", FALSE, NULL);
}

static gboolean
on_bus_message (GstBus * bus, GstMessage * msg, gpointer data)
{
  Relayed *rv = data;

  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR && !r.finishing) {
    g_autoptr (GError) error = NULL;
    g_autofree gchar *why = NULL;

    gst_message_parse_error (msg, &error, NULL);
    why = g_strdup_printf ("pipeline error: %s", error->message);
    lose (rv, why);
  }
  return G_SOURCE_CONTINUE;
}

/* Janus' offer: a webrtcbin of this attempt answers it. */
static gboolean
answer_offer (Relayed * rv, const gchar * sdp_text)
{
  GstSDPMessage *sdp = NULL;
  GstWebRTCSessionDescription *offer;
  GstPromise *promise;
  AttemptRef pc = { rv, rv->generation };
  GObject *ice = NULL;
  GstBus *bus;
  gint i;

  if (gst_sdp_message_new_from_text (sdp_text, &sdp) != GST_SDP_OK)
    return FALSE;
  rv->pipeline = gst_pipeline_new (NULL);
  rv->webrtc = gst_element_factory_make ("webrtcbin", NULL);
  if (rv->webrtc == NULL) {
    gst_sdp_message_free (sdp);
    return FALSE;
  }
  g_object_set (rv->webrtc, "bundle-policy",
      GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, NULL);
  gst_bin_add (GST_BIN (rv->pipeline), rv->webrtc);
  g_object_get (rv->webrtc, "ice-agent", &ice, NULL);
  if (ice) {
    disable_upnp (ice);
    /* libnice skips loopback addresses unless told to use them */
    for (i = 0; r.o->ice_addresses && r.o->ice_addresses[i]; i++) {
      gboolean ok = FALSE;

      g_signal_emit_by_name (ice, "add-local-ip-address",
          r.o->ice_addresses[i], &ok);
      if (!ok)
        g_printerr ("relay viewer: cannot add ICE address %s\n",
            r.o->ice_addresses[i]);
    }
    g_object_unref (ice);
  }
  g_signal_connect_data (rv->webrtc, "pad-added", G_CALLBACK (on_pad_added),
      g_memdup2 (&pc, sizeof pc), attempt_ref_free, 0);
  g_signal_connect_data (rv->webrtc, "on-ice-candidate",
      G_CALLBACK (on_ice_candidate), g_memdup2 (&pc, sizeof pc),
      attempt_ref_free, 0);
  g_signal_connect_data (rv->webrtc, "notify::ice-gathering-state",
      G_CALLBACK (on_state_notify), g_memdup2 (&pc, sizeof pc),
      attempt_ref_free, 0);
  g_signal_connect_data (rv->webrtc, "notify::ice-connection-state",
      G_CALLBACK (on_state_notify), g_memdup2 (&pc, sizeof pc),
      attempt_ref_free, 0);
  bus = gst_element_get_bus (rv->pipeline);
  gst_bus_add_watch (bus, on_bus_message, rv);
  gst_object_unref (bus);
  if (gst_element_set_state (rv->pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    gst_sdp_message_free (sdp);
    return FALSE;
  }
  rv->state = STATE_ANSWERING;
  offer = gst_webrtc_session_description_new (GST_WEBRTC_SDP_TYPE_OFFER, sdp);
  promise = gst_promise_new_with_change_func (on_offer_set,
      g_memdup2 (&pc, sizeof pc), g_free);
  g_signal_emit_by_name (rv->webrtc, "set-remote-description", offer,
      promise);
  gst_webrtc_session_description_free (offer);
  return TRUE;
}

static void
on_joined (PcrJanus * janus, JsonObject * reply, const GError * error,
    gpointer user_data)
{
  Relayed *rv = user_data;
  const gchar *sdp;

  if (janus != rv->janus)
    return;
  if (error) {
    g_autofree gchar *why = g_strdup_printf ("join: %s", error->message);

    lose (rv, why);
    return;
  }
  sdp = pcr_janus_jsep_sdp (reply, "offer");
  if (sdp == NULL) {
    lose (rv, "join: Janus sent no offer");
    return;
  }
  event_message (rv, "janus-offer", NULL);
  if (!answer_offer (rv, sdp))
    lose (rv, "cannot answer Janus' offer");
}

static void
on_connected (PcrJanus * janus, JsonObject * reply, const GError * error,
    gpointer user_data)
{
  Relayed *rv = user_data;
  g_autoptr (JsonObject) body = NULL;
  g_autoptr (JsonObject) stream = NULL;
  g_autoptr (JsonArray) streams = NULL;

  if (janus != rv->janus)
    return;
  if (error) {
    g_autofree gchar *why = g_strdup_printf ("connect: %s", error->message);

    lose (rv, why);
    return;
  }
  rv->state = STATE_JOINING;
  body = json_object_new ();
  json_object_set_string_member (body, "request", "join");
  json_object_set_string_member (body, "ptype", "subscriber");
  json_object_set_int_member (body, "room", rv->room);
  stream = json_object_new ();
  json_object_set_int_member (stream, "feed", rv->feed);
  streams = json_array_new ();
  json_array_add_object_element (streams, json_object_ref (stream));
  json_object_set_array_member (body, "streams", json_array_ref (streams));
  pcr_janus_message (janus, body, NULL, NULL, on_joined, rv);
}

/* A plugin event that ends what we watch: our feed unpublished or left, or
 * the room destroyed. */
static const gchar *
feed_gone (Relayed * rv, JsonObject * data)
{
  static const gchar *const members[] = { "unpublished", "leaving" };
  guint i;

  if (data == NULL)
    return NULL;
  if (json_object_has_member (data, "videoroom") &&
      g_strcmp0 (pcr_janus_string (data, "videoroom", ""), "destroyed") == 0)
    return "the room was destroyed";
  for (i = 0; i < G_N_ELEMENTS (members); i++) {
    JsonNode *node = json_object_get_member (data, members[i]);

    if (node && JSON_NODE_HOLDS_VALUE (node) &&
        json_node_get_value_type (node) == G_TYPE_INT64 &&
        (guint64) json_node_get_int (node) == rv->feed)
      return "the camera's feed left the room";
  }
  return NULL;
}

static void
on_janus_event (PcrJanus * janus, JsonObject * event, gpointer user_data)
{
  Relayed *rv = user_data;
  const gchar *type;
  const gchar *gone;

  if (janus != rv->janus)
    return;
  type = pcr_janus_string (event, "janus", "");
  if (g_str_equal (type, "hangup")) {
    g_autofree gchar *why = g_strdup_printf ("Janus hung up: %s",
        pcr_janus_string (event, "reason", "?"));

    lose (rv, why);
  } else if (g_str_equal (type, "webrtcup")) {
    event_message (rv, "webrtcup", NULL);
  } else if (g_str_equal (type, "trickle") && rv->webrtc) {
    JsonObject *cand = json_object_get_object_member (event, "candidate");

    if (cand && json_object_has_member (cand, "candidate"))
      g_signal_emit_by_name (rv->webrtc, "add-ice-candidate",
          (guint) pcr_janus_int (cand, "sdpMLineIndex", 0),
          pcr_janus_string (cand, "candidate", ""));
  } else if ((gone = feed_gone (rv, pcr_janus_plugin_data (event)))) {
    lose (rv, gone);
  } else if (pcr_janus_jsep_sdp (event, "offer")) {
    /* Janus renegotiates when the feed's streams change (the camera went
     * away or came back): this viewer does not renegotiate, it starts
     * over like a page would */
    lose (rv, "Janus renegotiated the subscription (the feed changed)");
  }
}

static void
on_janus_lost (PcrJanus * janus, const GError * error, gpointer user_data)
{
  Relayed *rv = user_data;
  g_autofree gchar *why = NULL;

  if (janus != rv->janus)
    return;
  why = g_strdup_printf ("Janus session lost: %s",
      error ? error->message : "?");
  lose (rv, why);
}

static void
subscribe (Relayed * rv)
{
  rv->state = STATE_CONNECTING;
  rv->janus = pcr_janus_new (r.base, r.apisecret, on_janus_event,
      on_janus_lost, rv);
  pcr_janus_connect (rv->janus, "janus.plugin.videoroom", on_connected, rv);
}

static gboolean
free_janus_later (gpointer data)
{
  pcr_janus_free (data);
  return G_SOURCE_REMOVE;
}

/* Ends the current attempt: its pipeline and its Janus session. */
static void
teardown (Relayed * rv)
{
  rv->generation++;
  g_atomic_int_set (&rv->attempt_first_frame, 0);
  if (rv->pipeline) {
    GstBus *bus = gst_element_get_bus (rv->pipeline);

    gst_bus_remove_watch (bus);
    gst_object_unref (bus);
    gst_element_set_state (rv->pipeline, GST_STATE_NULL);
    gst_clear_object (&rv->pipeline);
  }
  rv->webrtc = NULL;
  /* not from inside one of its own callbacks */
  if (rv->janus)
    g_idle_add (free_janus_later, g_steal_pointer (&rv->janus));
  if (rv->retry_source) {
    g_source_remove (rv->retry_source);
    rv->retry_source = 0;
  }
}

static gboolean
on_retry (gpointer data)
{
  Relayed *rv = data;

  rv->retry_source = 0;
  if (!r.finishing)
    request_relay (rv);
  return G_SOURCE_REMOVE;
}

static void
start_over (Relayed * rv, guint delay_ms)
{
  teardown (rv);
  rv->state = STATE_LOST;
  rv->retry_source = g_timeout_add (delay_ms, on_retry, rv);
}

static void
lose (Relayed * rv, const gchar * reason)
{
  if (r.finishing || rv->state == STATE_LOST)
    return;
  /* a reconnect is timed from the loss of a picture: failures before the
   * first frame only delay the first frame */
  if (rv->t_lost == 0 && g_atomic_int_get (&rv->frames) > 0)
    rv->t_lost = g_get_monotonic_time ();
  event_message (rv, "lost", reason);
  start_over (rv, RESTART_DELAY_MS);
}

/* The device's messages on P/D/out/S */

static void
handle_message (Relayed * rv, gpointer data)
{
  GBytes *payload = data;
  g_autoptr (JsonParser) parser = json_parser_new ();
  gsize len;
  const gchar *text = g_bytes_get_data (payload, &len);
  JsonObject *obj;
  const gchar *type;

  if (!json_parser_load_from_data (parser, text, len, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    event_message (rv, "protocol-error", "the device's message is not a "
        "JSON object");
    return;
  }
  obj = json_node_get_object (json_parser_get_root (parser));
  type = pcr_janus_string (obj, "type", "");
  if (g_str_equal (type, "relay")) {
    gint64 room = pcr_janus_int (obj, "room", 0);
    gint64 feed = pcr_janus_int (obj, "feed", 0);
    JsonBuilder *b;

    /* a lease renewal's answer while watching says nothing new */
    if (rv->state != STATE_WAIT_RELAY)
      return;
    if (room <= 0 || feed <= 0) {
      event_message (rv, "protocol-error", "relay answer without a room "
          "and a feed");
      start_over (rv, ERROR_RETRY_MS);
      return;
    }
    rv->room = room;
    rv->feed = feed;
    b = event_begin (rv, "relay");
    json_builder_set_member_name (b, "room");
    json_builder_add_int_value (b, room);
    json_builder_set_member_name (b, "feed");
    json_builder_add_int_value (b, feed);
    event_end (b);
    subscribe (rv);
  } else if (g_str_equal (type, "error")) {
    const gchar *code =
        pcr_janus_string (obj, "code", "");
    JsonBuilder *b = event_begin (rv, "error");

    json_builder_set_member_name (b, "code");
    json_builder_add_string_value (b, code);
    json_builder_set_member_name (b, "message");
    json_builder_add_string_value (b,
        pcr_janus_string (obj, "message", ""));
    event_end (b);
    if (r.o->expect_error) {
      finish (g_str_equal (code, r.o->expect_error) ? 0 : 1);
      return;
    }
    /* the relay may be back in a moment (Janus restarting): ask again */
    if (rv->state == STATE_WAIT_RELAY)
      start_over (rv, ERROR_RETRY_MS);
  } else if (g_str_equal (type, "bye")) {
    event_message (rv, "bye", NULL);
    rv->bye_received = TRUE;
  }
}

static void
on_message (struct mosquitto *mosq, void *obj,
    const struct mosquitto_message *msg)
{
  Relayed *rv = g_hash_table_lookup (r.by_topic, msg->topic);

  if (rv)
    post (rv, ANY_GENERATION, handle_message, g_bytes_new (msg->payload,
            msg->payloadlen), (GDestroyNotify) g_bytes_unref);
}

static gboolean
start_viewer (gpointer data)
{
  Relayed *rv = data;

  if (!r.finishing && rv->state == STATE_IDLE)
    request_relay (rv);
  return G_SOURCE_REMOVE;
}

/* Every viewer's topic is subscribed: the viewers start, staggered, and
 * the lease timer runs. */
static void
on_subscribed_main (Relayed * unused, gpointer data)
{
  gint i;

  if (++r.subscribed < r.o->count || r.started)
    return;
  r.started = TRUE;
  for (i = 0; i < r.o->count; i++)
    g_timeout_add (i * r.o->stagger_ms, start_viewer, r.viewers[i]);
  g_timeout_add_seconds (LEASE_S, on_lease, NULL);
}

static void
on_subscribe (struct mosquitto *mosq, void *obj, int mid, int qos_count,
    const int *granted_qos)
{
  post (NULL, 0, on_subscribed_main, NULL, NULL);
}

static void
on_connect_main (Relayed * unused, gpointer data)
{
  gint rc = GPOINTER_TO_INT (data);
  gint i;

  if (rc != 0) {
    g_printerr ("relay viewer: MQTT connect refused: %s\n",
        mosquitto_connack_string (rc));
    finish (1);
    return;
  }
  /* a reconnect subscribes again but starts nothing twice */
  for (i = 0; i < r.o->count; i++)
    mosquitto_subscribe (r.mosq, NULL, r.viewers[i]->topic_out, 1);
}

static void
on_connect (struct mosquitto *mosq, void *obj, int rc)
{
  post (NULL, 0, on_connect_main, GINT_TO_POINTER (rc), NULL);
}

static void
on_publish (struct mosquitto *mosq, void *obj, int mid)
{
  gint i;

  for (i = 0; i < r.o->count; i++)
    if (mid == g_atomic_int_get (&r.viewers[i]->bye_mid))
      g_atomic_int_set (&r.viewers[i]->bye_published, TRUE);
}

/* Ending */

static gboolean
print_frames (gpointer data)
{
  gint i;

  for (i = 0; i < r.o->count && !r.finishing; i++) {
    Relayed *rv = r.viewers[i];
    JsonBuilder *b;
    gint64 gap;

    if (rv->t0 == 0)
      continue;
    g_mutex_lock (&rv->gap_lock);
    gap = rv->interval_gap_us;
    if (rv->last_frame_us != 0)
      gap = MAX (gap, g_get_monotonic_time () - rv->last_frame_us);
    rv->interval_gap_us = 0;
    g_mutex_unlock (&rv->gap_lock);
    b = event_begin (rv, "frames");
    json_builder_set_member_name (b, "count");
    json_builder_add_int_value (b, g_atomic_int_get (&rv->frames));
    json_builder_set_member_name (b, "max_gap_ms");
    json_builder_add_int_value (b, gap / 1000);
    event_end (b);
  }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_timeout (gpointer data)
{
  gint i;

  if (r.finishing)
    return G_SOURCE_REMOVE;
  for (i = 0; i < r.o->count; i++)
    event_message (r.viewers[i], "timeout", NULL);
  finish (1);
  return G_SOURCE_REMOVE;
}

static gboolean
on_unix_signal (gpointer data)
{
  gint i;
  gboolean all = TRUE;

  for (i = 0; i < r.o->count; i++)
    all = all && r.viewers[i]->target_reached;
  finish (all ? 0 : 1);
  return G_SOURCE_CONTINUE;
}

static void
finish (gint exit_code)
{
  gint64 deadline = g_get_monotonic_time () + G_TIME_SPAN_SECOND;
  gboolean pending;
  gint i;

  if (r.finishing)
    return;
  r.finishing = TRUE;
  r.exit_code = exit_code;

  /* bye for every session the device counts, out before we disconnect */
  for (i = 0; i < r.o->count; i++) {
    Relayed *rv = r.viewers[i];
    gint mid = 0;

    if (rv->requested && !r.o->no_bye) {
      publish (rv, "{\"type\":\"bye\"}", &mid);
      g_atomic_int_set (&rv->bye_mid, mid);
    } else {
      g_atomic_int_set (&rv->bye_published, TRUE);
    }
  }
  do {
    pending = FALSE;
    for (i = 0; i < r.o->count; i++)
      pending = pending || !g_atomic_int_get (&r.viewers[i]->bye_published);
    if (pending)
      g_usleep (10 * 1000);
  } while (pending && g_get_monotonic_time () < deadline);

  for (i = 0; i < r.o->count; i++) {
    Relayed *rv = r.viewers[i];
    JsonBuilder *b;

    teardown (rv);
    b = event_begin (rv, "done");
    json_builder_set_member_name (b, "frames");
    json_builder_add_int_value (b, g_atomic_int_get (&rv->frames));
    json_builder_set_member_name (b, "width");
    json_builder_add_int_value (b, rv->width);
    json_builder_set_member_name (b, "height");
    json_builder_add_int_value (b, rv->height);
    json_builder_set_member_name (b, "reconnects");
    json_builder_add_int_value (b, rv->reconnects);
    json_builder_set_member_name (b, "max_reconnect_ms");
    json_builder_add_int_value (b, rv->max_reconnect_us / 1000);
    json_builder_set_member_name (b, "max_gap_ms");
    g_mutex_lock (&rv->gap_lock);
    json_builder_add_int_value (b, rv->max_gap_us / 1000);
    g_mutex_unlock (&rv->gap_lock);
    json_builder_set_member_name (b, "exit");
    json_builder_add_int_value (b, exit_code);
    event_end (b);
  }
  g_main_loop_quit (r.loop);
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

/* libnice, the SRTP and DTLS elements and the decoder load their plugins
 * once, before the clock of any viewer starts (as the direct mode does) */
static void
warm_up (void)
{
  static const gchar *const names[] = { "webrtcbin", "dtlssrtpenc",
    "dtlssrtpdec", "nicesrc", "nicesink", "rtpbin", "rtph264depay",
    "h264parse", "avdec_h264", "videoconvert"
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (names); i++) {
    GstElement *e = gst_element_factory_make (names[i], NULL);

    if (e)
      gst_object_unref (gst_object_ref_sink (e));
  }
}

gint
relay_main (const RelayOptions * o)
{
  g_autoptr (GError) error = NULL;
  guint64 room = 0;
  g_autofree gchar *adminkey = NULL;
  gint rc;
  gint i;

  GST_DEBUG_CATEGORY_INIT (relay_debug, "pcr-test-viewer-relay", 0,
      "picamrtc relayed test viewer");
  r.o = o;
  if (!pcr_janus_parse_url (o->relay, &r.base, &room, &adminkey,
          &r.apisecret, &error)) {
    g_printerr ("viewer: --relay: %s\n", error->message);
    return 2;
  }
  warm_up ();
  r.context = g_main_context_default ();
  r.loop = g_main_loop_new (r.context, FALSE);
  r.by_topic = g_hash_table_new (g_str_hash, g_str_equal);
  r.viewers = g_new0 (Relayed *, o->count);
  for (i = 0; i < o->count; i++) {
    Relayed *rv = g_new0 (Relayed, 1);

    rv->index = i;
    if (o->session && o->count == 1)
      rv->session = g_strdup (o->session);
    else if (o->session)
      rv->session = g_strdup_printf ("%s%d", o->session, i);
    else
      rv->session = random_session ();
    rv->topic_in = g_strdup_printf ("%s/%s/in/%s", o->prefix, o->device,
        rv->session);
    rv->topic_out = g_strdup_printf ("%s/%s/out/%s", o->prefix, o->device,
        rv->session);
    g_mutex_init (&rv->gap_lock);
    g_hash_table_insert (r.by_topic, rv->topic_out, rv);
    r.viewers[i] = rv;
  }

  mosquitto_lib_init ();
  r.mosq = mosquitto_new (NULL, true, NULL);
  mosquitto_connect_callback_set (r.mosq, on_connect);
  mosquitto_subscribe_callback_set (r.mosq, on_subscribe);
  mosquitto_message_callback_set (r.mosq, on_message);
  mosquitto_publish_callback_set (r.mosq, on_publish);
  rc = MOSQ_ERR_SUCCESS;
  if (o->username)
    rc = mosquitto_username_pw_set (r.mosq, o->username, o->password);
  if (rc == MOSQ_ERR_SUCCESS && o->broker_tls)
    rc = mosquitto_tls_set (r.mosq, o->ca_file,
        o->ca_file ? NULL : "/etc/ssl/certs", NULL, NULL, NULL);
  if (rc == MOSQ_ERR_SUCCESS)
    rc = mosquitto_connect_async (r.mosq, o->broker_host, o->broker_port, 30);
  if (rc == MOSQ_ERR_SUCCESS)
    rc = mosquitto_loop_start (r.mosq);
  if (rc != MOSQ_ERR_SUCCESS) {
    g_printerr ("viewer: cannot connect to %s:%d: %s\n", o->broker_host,
        o->broker_port, mosquitto_strerror (rc));
    r.exit_code = 1;
  } else {
    g_timeout_add_seconds (o->timeout_s, on_timeout, NULL);
    g_timeout_add_seconds (1, print_frames, NULL);
    g_unix_signal_add (SIGINT, on_unix_signal, NULL);
    g_unix_signal_add (SIGTERM, on_unix_signal, NULL);
    g_main_loop_run (r.loop);
    mosquitto_disconnect (r.mosq);
    mosquitto_loop_stop (r.mosq, false);
  }
  mosquitto_destroy (r.mosq);
  mosquitto_lib_cleanup ();

  /* the Janus sessions' last requests (destroy) and whatever work is
   * still posted */
  for (i = 0; i < o->count; i++)
    teardown (r.viewers[i]);
  while (g_main_context_iteration (r.context, FALSE));
  for (i = 0; i < o->count; i++) {
    Relayed *rv = r.viewers[i];

    g_mutex_clear (&rv->gap_lock);
    g_free (rv->session);
    g_free (rv->topic_in);
    g_free (rv->topic_out);
    g_free (rv);
  }
  g_free (r.viewers);
  g_hash_table_unref (r.by_topic);
  g_main_loop_unref (r.loop);
  g_free (r.base);
  g_free (r.apisecret);
  return r.exit_code;
}
