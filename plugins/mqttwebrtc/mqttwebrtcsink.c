/* mqttwebrtcsink: encoded H.264 in, any number of WebRTC viewers out,
 * signalled over MQTT (the contract of docs/signalling.md, its internals in
 * docs/architecture.md). The encoder runs once; each viewer gets its own
 * payloader (its own payload type, read from its offer) and its own
 * webrtcbin behind a leaky queue on a tee.
 *
 * This file is the bin: its properties, state changes, sessions, the
 * housekeeping tick and the adaptation tick (each viewer's bandwidth
 * estimate, its rendition, the encoders' bitrates). Each sink pad's fixed
 * children and key-unit rate limit are a rendition, pcr-rendition.c. A
 * viewer's session (its branch and negotiation) is pcr-viewer.c, its sound and
 * control channel pcr-viewer-media.c; the MQTT topics,
 * message codec and status publishing are the signaller, pcr-signaller.c,
 * which the "signaller" property can replace.
 *
 * Threads: libmosquitto, webrtcbin and streaming threads only copy what they
 * got and post it to the element's own GMainContext, run by its own thread
 * from NULL->READY to READY->NULL. Everything about sessions happens there.
 *
 * ```
 *  ,-------------------------- mqttwebrtcsink -------------------------------------------.
 *  |                                           ,-> fakesink                                |
 * sink -----> capsfilter -> h264parse -> tee -+-> gate -.                                  |
 *  |                                           '-> gate -+-> funnel -> queue -> rtph264pay -> webrtcbin  viewer 1
 * sink_low -> capsfilter -> h264parse -> tee -+-> gate -'                                  |
 *  |  (optional)                               '-> ...        (viewer 2 ...)               |
 *  |    ^ force-key-unit requests per rendition (new viewer, switch, PLI/FIR), rate-limited |
 * sink_audio -> tee -> queue -> rtpopuspay -> (each viewer's webrtcbin, a 2nd transceiver) |
 *  '---------------------------------------------------------------------------------------'
 *       signaller (MQTT) <-> offers, answers, candidates, bye, status, control channel
 * Each viewer's gates pass one rendition; a switch happens at the next key
 * frame of the other. The encoders' bitrates follow the viewers' estimates.
 * ```
 */
#include "config.h"

#include "mqttwebrtcsink.h"

#include <string.h>
#include <gst/video/video.h>

#include "pcr-adapt.h"
#include "pcr-defaults.h"
#include "pcr-packages.h"
#include "pcr-message.h"
#include "pcr-recorder.h"
#include "pcr-relay.h"
#include "pcr-janus.h"
#include "pcr-rendition.h"
#include "pcr-sdp.h"
#include "pcr-signaller.h"
#include "pcr-snapshot.h"
#include "pcr-viewer.h"
#include "rtphdrextplayoutdelay.h"

GST_DEBUG_CATEGORY_STATIC (mqttwebrtcsink_debug);
#define GST_CAT_DEFAULT mqttwebrtcsink_debug

#define DEFAULT_BROKER_URI PCR_DEFAULT_BROKER
#define DEFAULT_DEVICE_ID PCR_DEFAULT_DEVICE
#define DEFAULT_TOPIC_PREFIX PCR_DEFAULT_TOPIC_PREFIX
#define DEFAULT_MAX_VIEWERS PCR_DEFAULT_MAX_VIEWERS
#define MAX_MAX_VIEWERS PCR_MAX_VIEWERS_LIMIT
#define DEFAULT_CAMERA_STATE "online"
/* Off: on the latency benchmark (headless Chromium, loopback) a single
 * viewer shows frames about 13 ms later on average with 0 (Chromium's
 * low-latency renderer), while five viewers sharing the CPU gain 60 ms
 * (docs/benchmarks.md). */
#define DEFAULT_PLAYOUT_DELAY_MAX_MS -1
#define DEFAULT_ADAPTIVE TRUE
/* Off: measured with Chromium 156, FEC by loss froze the picture more,
 * not less, than retransmission alone (docs/networks.md, "FEC"). */
#define DEFAULT_FEC PCR_FEC_OFF

/* A viewer's own key-frame requests (its browser's PLI/FIR) are honoured
 * at most this often: a lossy viewer asks again and again, and every key
 * frame is a burst for every viewer of its rendition. With retransmission
 * a PLI means a real loss of picture, so one a second repairs it soon. */
#define VIEWER_KEY_UNIT_INTERVAL_US (G_TIME_SPAN_SECOND)
/* How often the estimates, renditions and bitrates are revised: TWCC
 * feedback comes every 50-100 ms, a switch takes a key frame. */
#define ADAPT_INTERVAL_MS 250
/* How often the device's figures go out (docs/signalling.md, "Metrics"):
 * often enough for a dashboard, rare enough for a fleet on one broker. */
#define DEFAULT_METRICS_INTERVAL 10
/* The most a stop waits for the viewers' branches to go. */
#define STOP_TIMEOUT_US (5 * G_TIME_SPAN_SECOND)
#define DEFAULT_RELAY_ON_DEMAND TRUE
/* a relayed viewer renews its lease every 10 s */
#define RELAY_LEASE_US (30 * G_TIME_SPAN_SECOND)
/* publishing goes on this long after the last relayed viewer (a reload) */
#define RELAY_LINGER_US (5 * G_TIME_SPAN_SECOND)
#define RELAY_MAX_LEASES 10000

enum
{
  PROP_0,
  PROP_BROKER_URI,
  PROP_USERNAME,
  PROP_PASSWORD,
  PROP_CA_FILE,
  PROP_CERT_FILE,
  PROP_KEY_FILE,
  PROP_DEVICE_ID,
  PROP_TOPIC_PREFIX,
  PROP_MAX_VIEWERS,
  PROP_STUN_SERVER,
  PROP_TURN_SERVER,
  PROP_ICE_ADDRESSES,
  PROP_CAMERA_STATE,
  PROP_VIEWERS,
  PROP_PLAYOUT_DELAY_MAX_MS,
  PROP_SIGNALLER,
  PROP_ADAPTIVE,
  PROP_FEC,
  PROP_METRICS_INTERVAL,
  PROP_SNAPSHOTS,
  PROP_RECORD_DIR,
  PROP_RECORD_SEGMENT_S,
  PROP_RECORD_MAX_MB,
  PROP_RECORD_MAX_AGE_H,
  PROP_RECORDING,
  PROP_CONTROL,
  PROP_TALKBACK,
  PROP_RELAY,
  PROP_RELAY_ON_DEMAND,
  N_PROPERTIES
};

static GParamSpec *properties[N_PROPERTIES];

/* The fec property. */
typedef enum
{
  PCR_FEC_OFF,
  PCR_FEC_AUTO,
} PcrFecMode;

#define PCR_TYPE_FEC_MODE (pcr_fec_mode_get_type ())
static GType
pcr_fec_mode_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    {PCR_FEC_OFF, "No forward error correction", "off"},
    {PCR_FEC_AUTO, "ULPFEC in RED for viewers that offer it, switched on "
          "and sized by each viewer's measured loss", "auto"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type, g_enum_register_static ("PcrFecMode", values));
  return (GType) type;
}

/* What came in on a rendition's sink pad: atomics, the streaming thread
 * adds, the context reads (unsigned, so a wrapped count still subtracts). */
typedef struct
{
  guint frames, bytes;
  guint last_frames, last_bytes;        /* context: at the last report */
  gulong probe;
} FrameCount;

struct _PcrMqttWebrtcSink
{
  GstBin parent;

  /* 0: "sink", the high one; 1: "sink_low" while requested */
  PcrRendition *renditions[PCR_MAX_RENDITIONS];
  gchar *missing;               /* a factory we could not make, or NULL */
  PcrSnapshot *snapshot;        /* while "snapshot" is requested */
  GstPad *audio_pad;            /* "sink_audio" while requested */
  GstElement *audio_tee;        /* behind it (a reference) */

  /* properties, under the object lock */
  gchar *broker_uri, *username, *password, *ca_file;
  gchar *cert_file, *key_file;
  gchar *device_id, *topic_prefix;
  gchar *stun_server, *turn_server, *ice_addresses;
  gchar *camera_state;
  guint max_viewers;
  guint viewers;
  guint snapshots;              /* waiting for a picture */
  gchar *record_dir;            /* NULL: no recording */
  guint record_segment_s, record_max_mb, record_max_age_h;
  gboolean record;              /* wanted: start once running */
  gboolean recording;           /* what the recorder says */
  gchar *record_error;          /* why it stopped by itself */
  PcrRecorder *recorder;        /* from start to stop, context only */
  gint playout_delay_max_ms;
  gboolean control;             /* accept viewers' control channels */
  gchar *talkback;              /* the talk-back sink description, or NULL */
  gchar *relay_url;             /* the Janus relay's URL, or NULL */
  gboolean relay_on_demand;     /* publish only while relayed viewers watch */
  const gchar *relay_state;     /* for the status; NULL: no relay */
  gchar *relay_base;            /* the relay URL without its query */
  gchar *relay_error;           /* why unreachable */
  guint64 relay_room, relay_feed;
  guint relay_viewers;          /* leases */
  PcrSignaller *signaller;      /* set by the application, or NULL */
  gboolean adaptive;
  PcrFecMode fec;
  guint metrics_interval;
  guint restarts;               /* camera-state error -> online */
  gboolean streaming;

  /* the I/O side: context and thread live from NULL->READY to READY->NULL */
  GMainContext *context;
  GMainLoop *loop;
  GThread *thread;
  GThread *warm_up_thread;      /* warm_up(), from start to stop */
  GSource *housekeeping;
  GSource *adapt_timer;
  GSource *metrics_timer;
  gint64 metrics_us;            /* the last report, context only */
  /* what viewers now gone asked for and got again, context only */
  guint64 gone_nacks, gone_retransmissions;
  FrameCount counts[PCR_MAX_RENDITIONS];
  guint bitrates[PCR_MAX_RENDITIONS];   /* each rendition's, context only */
  PcrSignaller *run_signaller;  /* in use; under the object lock */
  PcrViewerHost host;

  /* context thread only */
  GHashTable *sessions;         /* id -> PcrViewer */
  GHashTable *adapt;            /* PcrViewer -> Adapt */
  PcrViewer *talker;            /* whose microphone plays, or NULL */
  PcrRelay *relay;              /* while relay_url is set */
  GHashTable *leases;           /* relayed session id -> expiry (gint64*) */
  GHashTable *relay_waiting;    /* relayed session ids awaiting the answer */
  gint64 relay_unwanted_since;  /* the last lease went then; 0: wanted */
  gboolean relay_wanted;        /* asked to publish */
  gboolean run_control;         /* control as it was at start */

  /* closes under way (pcr_viewer_close called, branch not yet freed) */
  GMutex lock;
  GCond cond;
  GList *removing;              /* PcrViewer*, under lock */
  gboolean closing_all;         /* close_all_sessions waits; under lock */
};

#define pcr_mqtt_webrtc_sink_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (PcrMqttWebrtcSink, pcr_mqtt_webrtc_sink,
    GST_TYPE_BIN, GST_DEBUG_CATEGORY_INIT (mqttwebrtcsink_debug,
        "mqttwebrtcsink", 0, "WebRTC fan-out signalled over MQTT"));
GST_ELEMENT_REGISTER_DEFINE (mqttwebrtcsink, "mqttwebrtcsink", GST_RANK_NONE,
    PCR_TYPE_MQTT_WEBRTC_SINK);

#define SINK_CAPS "video/x-h264, stream-format=(string)byte-stream, " \
    "alignment=(string)au, profile=(string){ constrained-baseline, baseline }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (SINK_CAPS));

/* Raw frames (those before the encoder) for still images. */
static GstStaticPadTemplate snapshot_template =
GST_STATIC_PAD_TEMPLATE ("snapshot", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS ("video/x-raw"));

/* Opus, encoded once, for every viewer whose offer takes audio. */
static GstStaticPadTemplate sink_audio_template =
GST_STATIC_PAD_TEMPLATE ("sink_audio", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS ("audio/x-opus"));

/* The low rendition, for viewers whose link cannot carry the high one. */
static GstStaticPadTemplate sink_low_template =
GST_STATIC_PAD_TEMPLATE ("sink_low", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS (SINK_CAPS));

/* Per viewer, context thread only. */
typedef struct
{
  PcrEstimator *estimator;
  PcrRenditionChooser *chooser;
  PcrViewerFeedback used;       /* the last feedback handed on */
  gint64 last_key_unit_us;      /* the viewer's last honoured request */
  gboolean want_stats;          /* its offer asked for stats messages */
  guint stats_ticks;            /* adapt ticks since the last one */
  guint fec_percent;            /* what the viewer is sent now */
  guint rtx_copies;             /* each repair sent once or twice */
  /* moving down: the viewer is cut off, and the switch waits for the
   * link's queue to drain (switch_drained) */
  PcrMqttWebrtcSink *self;
  PcrViewer *viewer;
  GSource *drain;
  guint drain_to;
} Adapt;

static void
adapt_free (gpointer data)
{
  Adapt *adapt = data;

  if (adapt->drain) {
    g_source_destroy (adapt->drain);
    g_source_unref (adapt->drain);
  }
  pcr_estimator_free (adapt->estimator);
  g_clear_pointer (&adapt->chooser, pcr_rendition_chooser_free);
  g_free (adapt);
}

/* ------------------------------------------------------------------------
 * Status and key units
 * ------------------------------------------------------------------------ */

/* Runs @func on the element's context (never g_main_context_invoke, which
 * may run it on the calling thread). */
static void
post (PcrMqttWebrtcSink * self, GSourceFunc func, gpointer data,
    GDestroyNotify notify)
{
  GSource *source = g_idle_source_new ();

  g_source_set_callback (source, func, data, notify);
  g_source_attach (source, self->context);
  g_source_unref (source);
}

/* The status now, or the offline one; strings borrowed from self, which
 * must be locked. */
static void
fill_status (PcrMqttWebrtcSink * self, gboolean online, PcrStatus * status)
{
  PcrStreamInfo info;

  status->state = online ? self->camera_state : "offline";
  status->viewers = online ? self->viewers : 0;
  status->max_viewers = self->max_viewers;
  status->codec = "H264";
  pcr_rendition_get_info (self->renditions[0], &info);
  status->width = info.width;
  status->height = info.height;
  status->fps_n = info.fps_n;
  status->fps_d = info.fps_d;
  status->can_record = self->record_dir != NULL;
  status->recording = online && self->recording;
  status->record_error = online ? self->record_error : NULL;
  status->audio = self->audio_pad != NULL;
  status->talkback = self->talkback != NULL;
  status->control = self->control;
  status->relay_state = online ? self->relay_state : NULL;
  status->relay_url = self->relay_base;
  status->relay_room = self->relay_room;
  status->relay_feed = self->relay_feed;
  status->relay_viewers = self->relay_viewers;
  status->relay_error = self->relay_error;
}

static void
publish_status (PcrMqttWebrtcSink * self)
{
  PcrStatus status;
  g_autofree gchar *state = NULL;
  g_autofree gchar *record_error = NULL;
  g_autofree gchar *relay_error = NULL;
  g_autofree gchar *relay_url = NULL;

  if (!self->run_signaller)
    return;
  GST_OBJECT_LOCK (self);
  fill_status (self, TRUE, &status);
  status.state = state = g_strdup (status.state);
  status.record_error = record_error = g_strdup (status.record_error);
  status.relay_error = relay_error = g_strdup (status.relay_error);
  status.relay_url = relay_url = g_strdup (status.relay_url);
  GST_OBJECT_UNLOCK (self);
  pcr_signaller_publish_status (self->run_signaller, &status);
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

/* The high rendition's caps changed (a streaming thread): the status says
 * what is sent. */
static void
on_caps_changed (PcrRendition * rendition, gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;
  gboolean running;

  if (rendition != self->renditions[0])
    return;
  GST_OBJECT_LOCK (self);
  running = self->run_signaller != NULL;
  GST_OBJECT_UNLOCK (self);
  if (running)
    post (self, publish_status_cb, self, NULL);
}

/* ------------------------------------------------------------------------
 * Adaptation (context thread): docs/networks.md, "The bandwidth estimate
 * and rendition switching"
 * ------------------------------------------------------------------------ */

static guint
n_renditions (PcrMqttWebrtcSink * self)
{
  return self->renditions[1] ? 2 : 1;
}

/* Rendition @r's bitrate range: its encoder's own setting is the most. The
 * high one alone goes as low as a low one would; beside a low one it stays
 * above what that sends, or the switch would gain nothing. */
static void
rendition_range (PcrMqttWebrtcSink * self, guint r, PcrRenditionRange * range)
{
  guint max = pcr_rendition_get_max_bitrate (self->renditions[r]);

  if (!max)
    max = r == 0 ? PCR_ADAPT_HIGH_MAX_BPS : PCR_ADAPT_LOW_MAX_BPS;
  range->max_bps = max;
  range->min_bps = MIN (max, r == 0 && n_renditions (self) > 1 ?
      PCR_ADAPT_HIGH_MIN_BPS : PCR_ADAPT_LOW_MIN_BPS);
}

static Adapt *
adapt_new (PcrMqttWebrtcSink * self, const PcrMessage * offer)
{
  PcrRenditionRange ranges[PCR_MAX_RENDITIONS];
  Adapt *adapt = g_new0 (Adapt, 1);
  guint r, n = n_renditions (self), top;

  adapt->want_stats = offer->want_stats;
  adapt->rtx_copies = 1;

  for (r = 0; r < n; r++)
    rendition_range (self, r, &ranges[r]);
  /* The estimate may go to the high rendition's most over the headroom
   * pcr_rendition_bitrate takes off, or a clean viewer would hold the
   * encoder at 85 % of what the pipeline set; it starts there: most links
   * carry it, and a slower one shows within a few reports. */
  top = (guint) (ranges[0].max_bps / PCR_ADAPT_HEADROOM);
  adapt->estimator = pcr_estimator_new (top, MIN (ranges[n - 1].min_bps,
          PCR_ADAPT_ESTIMATE_MIN_BPS), top);
  if (n > 1)
    adapt->chooser = pcr_rendition_chooser_new (n, ranges,
        g_get_monotonic_time ());
  return adapt;
}

/* Hands the estimator what the viewer's RTCP said since the last tick. */
static void
feed_estimator (Adapt * adapt, PcrViewer * viewer, gint64 now)
{
  PcrViewerFeedback fb;

  pcr_viewer_get_feedback (viewer, &fb);
  GST_TRACE ("session %s: twcc %d sent %u recv %u loss %.3f dod %"
      G_GINT64_FORMAT " ns; rr %d lost %.3f rtt %.3f s",
      pcr_viewer_get_id (viewer), fb.have_twcc, fb.twcc_sent_bps,
      fb.twcc_recv_bps, fb.twcc_loss, fb.twcc_delta_of_delta_ns, fb.have_rr,
      fb.rr_fraction_lost, fb.rr_rtt_s);
  /* rtpsession keeps the summary of the last TWCC feedback over a 300 ms
   * window: a new feedback moves the window, so all four numbers staying
   * the same means none came. (Its packets-sent counts the last feedback's
   * packets only: two feedbacks often count the same.) */
  if (fb.have_twcc && (fb.twcc_sent_bps != adapt->used.twcc_sent_bps
          || fb.twcc_recv_bps != adapt->used.twcc_recv_bps
          || fb.twcc_loss != adapt->used.twcc_loss
          || fb.twcc_delta_of_delta_ns !=
          adapt->used.twcc_delta_of_delta_ns)) {
    pcr_estimator_on_twcc (adapt->estimator, now, fb.twcc_sent_bps,
        fb.twcc_recv_bps, fb.twcc_loss, fb.twcc_delta_of_delta_ns);
  }
  /* a new report acknowledges a later packet (or counts other losses) */
  if (fb.have_rr && (fb.rr_highest_seq != adapt->used.rr_highest_seq
          || fb.rr_packets_lost != adapt->used.rr_packets_lost
          || fb.rr_fraction_lost != adapt->used.rr_fraction_lost)) {
    pcr_estimator_on_receiver_report (adapt->estimator, now,
        fb.rr_fraction_lost, fb.rr_rtt_s);
  }
  adapt->used = fb;
}

/* About once a second, to a viewer that asked (docs/signalling.md, "Stats"):
 * what this tick made of its link, once its RTCP has said anything. */
static void
send_stats (PcrMqttWebrtcSink * self, PcrViewer * viewer, Adapt * adapt,
    guint rendition, guint estimate)
{
  static const gchar *const names[PCR_MAX_RENDITIONS] = { "high", "low" };
  /* what feed_estimator read this tick */
  const PcrViewerFeedback *fb = &adapt->used;
  PcrStreamInfo info;
  PcrStats stats = { 0 };

  if (!adapt->want_stats || ++adapt->stats_ticks < 1000 / ADAPT_INTERVAL_MS
      || rendition >= PCR_MAX_RENDITIONS || !self->renditions[rendition])
    return;
  if (!fb->have_twcc && !fb->have_rr)
    return;
  adapt->stats_ticks = 0;
  pcr_rendition_get_info (self->renditions[rendition], &info);
  stats.rendition = (gchar *) names[rendition];
  stats.width = MAX (info.width, 0);
  stats.height = MAX (info.height, 0);
  stats.estimate = estimate;
  stats.bitrate = self->bitrates[rendition];
  stats.loss = fb->have_rr ? fb->rr_fraction_lost : -1;
  stats.rtt = fb->have_rr && fb->rr_rtt_s >= 0 ?
      (gint) MIN (fb->rr_rtt_s * 1000 + 0.5, PCR_STATS_MAX_RTT_MS) : -1;
  pcr_signaller_send_stats (self->run_signaller, pcr_viewer_get_id (viewer),
      &stats);
}

/* The viewer's FEC follows its average loss (docs/networks.md, "FEC");
 * the estimate then leaves the FEC its share. */
static void
update_fec (PcrMqttWebrtcSink * self, Adapt * adapt, PcrViewer * viewer,
    PcrFecMode mode)
{
  gdouble loss = pcr_estimator_get_loss (adapt->estimator);
  guint percent = 0;

  if (!pcr_viewer_has_fec (viewer))
    return;
  if (mode == PCR_FEC_AUTO)
    percent = pcr_fec_percentage (adapt->fec_percent, loss);
  if (percent == adapt->fec_percent)
    return;
  GST_INFO_OBJECT (self, "session %s: FEC %u %% (was %u %%), average loss "
      "%.1f %%", pcr_viewer_get_id (viewer), percent, adapt->fec_percent,
      loss * 100);
  adapt->fec_percent = percent;
  pcr_viewer_set_fec_percentage (viewer, percent);
  pcr_estimator_set_fec_percentage (adapt->estimator, percent);
}

/* Repairs twice at high random loss (pcr_rtx_copies). */
static void
update_rtx_copies (PcrMqttWebrtcSink * self, Adapt * adapt,
    PcrViewer * viewer)
{
  gdouble loss = pcr_estimator_get_loss (adapt->estimator);
  guint copies = pcr_rtx_copies (adapt->rtx_copies, loss,
      pcr_estimator_severe (adapt->estimator));

  if (copies == adapt->rtx_copies)
    return;
  GST_INFO_OBJECT (self, "session %s: each repair sent %s, average loss "
      "%.1f %%", pcr_viewer_get_id (viewer), copies > 1 ? "twice" : "once",
      loss * 100);
  adapt->rtx_copies = copies;
  pcr_viewer_set_rtx_copies (viewer, copies);
}

/* Moving a viewer down from a congested link, how long it gets nothing
 * before the smaller picture's key frame is asked for: the link's queue is
 * full then, and a key frame sent into it loses its tail (a 1 Mbit/s
 * bottleneck with a 150 ms queue lost 30-58 % of what came in the half
 * second after the switch, and the page froze until a repair or a second
 * key frame got through). The time a 150 ms queue takes to drain. */
#define SWITCH_DRAIN_MS 150

static void
switch_now (PcrMqttWebrtcSink * self, PcrViewer * viewer, guint to)
{
  pcr_viewer_switch (viewer, to);
  pcr_rendition_set_needed (self->renditions[to], TRUE);
  pcr_rendition_request_key_unit (self->renditions[to]);
}

static gboolean
switch_drained (gpointer data)
{
  Adapt *adapt = data;
  guint to = adapt->drain_to;

  g_clear_pointer (&adapt->drain, g_source_unref);
  /* the rendition went meanwhile (its pad released): the cut ends where
   * the viewer is */
  if (to >= n_renditions (adapt->self))
    to = pcr_viewer_get_rendition (adapt->viewer, NULL);
  switch_now (adapt->self, adapt->viewer, to);
  return G_SOURCE_REMOVE;
}

/* The chooser moved the viewer from @current to @to. */
static void
switch_viewer (PcrMqttWebrtcSink * self, Adapt * adapt, PcrViewer * viewer,
    guint current, guint to)
{
  if (adapt->drain) {
    g_source_destroy (adapt->drain);
    g_clear_pointer (&adapt->drain, g_source_unref);
  }
  if (to == current) {
    pcr_viewer_switch (viewer, to);
    return;
  }
  /* the chooser moves down only for congestion */
  if (to > current && pcr_viewer_cut (viewer)) {
    adapt->self = self;
    adapt->viewer = viewer;
    adapt->drain_to = to;
    adapt->drain = g_timeout_source_new (SWITCH_DRAIN_MS);
    g_source_set_callback (adapt->drain, switch_drained, adapt, NULL);
    g_source_attach (adapt->drain, self->context);
    return;
  }
  switch_now (self, viewer, to);
}

/* Every ADAPT_INTERVAL_MS: each viewer's estimate and rendition, then each
 * rendition's bitrate from the estimates of the viewers on it, and whether
 * the low one is needed at all. */
static gboolean
adapt_tick (gpointer data)
{
  PcrMqttWebrtcSink *self = data;
  gint64 now = g_get_monotonic_time ();
  guint n = n_renditions (self), r;
  PcrRenditionRange ranges[PCR_MAX_RENDITIONS];
  /* [r][0]: viewers settled on r; [r][1]: viewers trying r (a probe) */
  GArray *estimates[PCR_MAX_RENDITIONS][2];
  /* the highest rate probe asked of each rendition (0: none) */
  guint probe_bps[PCR_MAX_RENDITIONS] = { 0 };
  GHashTableIter iter;
  gpointer key, value;
  gboolean low_needed = FALSE, adaptive;
  PcrFecMode fec;

  GST_OBJECT_LOCK (self);
  adaptive = self->adaptive;
  fec = self->fec;
  GST_OBJECT_UNLOCK (self);
  if (!adaptive)
    return G_SOURCE_CONTINUE;
  for (r = 0; r < n; r++) {
    rendition_range (self, r, &ranges[r]);
    estimates[r][0] = g_array_new (FALSE, FALSE, sizeof (guint));
    estimates[r][1] = g_array_new (FALSE, FALSE, sizeof (guint));
  }
  g_hash_table_iter_init (&iter, self->adapt);
  while (g_hash_table_iter_next (&iter, &key, &value)) {
    PcrViewer *viewer = key;
    Adapt *adapt = value;
    gint pending;
    guint current = pcr_viewer_get_rendition (viewer, &pending);
    guint target = pending >= 0 ? (guint) pending :
        adapt->drain ? adapt->drain_to : current;
    guint estimate;
    gboolean probing = FALSE;

    feed_estimator (adapt, viewer, now);
    update_fec (self, adapt, viewer, fec);
    pcr_estimator_set_sending (adapt->estimator,
        self->bitrates[MIN (current, n - 1)]);
    if (adapt->chooser) {
      guint want = pcr_rendition_chooser_update (adapt->chooser, now,
          adapt->estimator);

      if (want < n && want != target) {
        switch_viewer (self, adapt, viewer, current, want);
        target = want;
      }
      probing = pcr_rendition_chooser_probing (adapt->chooser, now);
      if (target == current)
        probe_bps[MIN (target, n - 1)] = MAX (probe_bps[MIN (target, n - 1)],
            pcr_rendition_chooser_probe_bps (adapt->chooser));
    }
    estimate = pcr_estimator_get_media_bps (adapt->estimator);
    pcr_viewer_set_rtx_budget (viewer, pcr_rtx_budget (estimate,
            self->bitrates[MIN (current, n - 1)]));
    update_rtx_copies (self, adapt, viewer);
    g_array_append_val (estimates[MIN (target, n - 1)][probing], estimate);
    /* until the switch takes effect it still gets the one it had: moving
     * down from a congested link, that one must not go back to its
     * maximum for lack of viewers meanwhile */
    if (target != current)
      g_array_append_val (estimates[MIN (current, n - 1)][0], estimate);
    send_stats (self, viewer, adapt, current, estimate);
    /* draining, the low one starts when its key frame is wanted */
    low_needed |= n > 1 && ((target == 1 && !adapt->drain) || current == 1);
    GST_LOG_OBJECT (self, "session %s: estimate %u bit/s, rendition %u%s",
        pcr_viewer_get_id (viewer), estimate, current,
        target != current ? " (switching)" : "");
  }
  /* A viewer trying a rendition does not drag those settled on it down;
   * alone there, it tries it at what its estimate says. A viewer alone on
   * its rendition may raise it for a rate probe; where others share it,
   * their links were not asked. */
  for (r = 0; r < n; r++) {
    GArray *use = estimates[r][0]->len ? estimates[r][0] : estimates[r][1];
    guint bps = pcr_rendition_bitrate ((const guint *) use->data, use->len,
        &ranges[r]);
    gboolean probe = probe_bps[r] > bps
        && estimates[r][0]->len + estimates[r][1]->len == 1;

    self->bitrates[r] = pcr_rendition_set_bitrate (self->renditions[r],
        probe ? probe_bps[r] : bps, probe);
    if (!self->bitrates[r])
      self->bitrates[r] = ranges[r].max_bps;
    g_array_free (estimates[r][0], TRUE);
    g_array_free (estimates[r][1], TRUE);
  }
  /* the relay publishes both renditions as simulcast layers */
  if (self->relay_wanted)
    low_needed = TRUE;
  if (n > 1)
    pcr_rendition_set_needed (self->renditions[1], low_needed);
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------------
 * Metrics: the device's figures every metrics-interval seconds
 * (docs/signalling.md, "Metrics")
 * ------------------------------------------------------------------------ */

static void
count_buffer (FrameCount * count, GstBuffer * buffer)
{
  g_atomic_int_inc ((gint *) & count->frames);
  g_atomic_int_add ((gint *) & count->bytes, gst_buffer_get_size (buffer));
}

static gboolean
count_list_item (GstBuffer ** buffer, guint idx, gpointer user_data)
{
  count_buffer (user_data, *buffer);
  return TRUE;
}

/* Streaming thread: each encoded frame that comes in. */
static GstPadProbeReturn
count_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER)
    count_buffer (user_data, GST_PAD_PROBE_INFO_BUFFER (info));
  else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST)
    gst_buffer_list_foreach (GST_PAD_PROBE_INFO_BUFFER_LIST (info),
        count_list_item, user_data);
  return GST_PAD_PROBE_OK;
}

static void
count_frames (PcrMqttWebrtcSink * self, guint r)
{
  memset (&self->counts[r], 0, sizeof (self->counts[r]));
  self->counts[r].probe =
      gst_pad_add_probe (pcr_rendition_get_pad (self->renditions[r]),
      GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST, count_probe,
      &self->counts[r], NULL);
}

/* gst_iterator_find_custom's test: 0 for an element whose class has both
 * words of @data and whose factory's name is an id. */
static gint
compare_class (gconstpointer item, gconstpointer data)
{
  const gchar *const *words = data;
  GstElementFactory *f = gst_element_get_factory (g_value_get_object (item));
  const gchar *klass = f ? gst_element_factory_get_metadata (f,
      GST_ELEMENT_METADATA_KLASS) : NULL;

  return !(klass && strstr (klass, words[0]) && strstr (klass, words[1])
      && pcr_id_is_valid (GST_OBJECT_NAME (f)));
}

/* The factory of the first element in the whole pipeline whose class has
 * @klass and @media (docs/signalling.md, "Metrics": a label). The
 * service's choice of camera and encoder shows so, and a gst-launch
 * pipeline's too. */
static gchar *
find_factory (GstBin * top, const gchar * klass, const gchar * media)
{
  const gchar *words[] = { klass, media };
  GstIterator *it = gst_bin_iterate_recurse (top);
  GValue item = G_VALUE_INIT;
  gchar *found = NULL;

  if (gst_iterator_find_custom (it, compare_class, &item, words)) {
    found = g_strdup (GST_OBJECT_NAME (gst_element_get_factory
            (g_value_get_object (&item))));
    g_value_unset (&item);
  }
  gst_iterator_free (it);
  return found;
}

static void
fill_labels (PcrMqttWebrtcSink * self, PcrMetrics * m)
{
  GstObject *top = gst_object_ref (GST_OBJECT (self)), *parent;

  while ((parent = gst_object_get_parent (top))) {
    gst_object_unref (top);
    top = parent;
  }
  m->encoder = find_factory (GST_BIN (top), "Encoder", "Video");
  m->source = find_factory (GST_BIN (top), "Source", "Video");
  gst_object_unref (top);
}

/* Each rendition's frames and bits per second since the last report. */
static void
fill_renditions (PcrMqttWebrtcSink * self, PcrMetrics * m, gdouble seconds)
{
  static const gchar *const names[PCR_MAX_RENDITIONS] = { "high", "low" };
  guint r;

  for (r = 0; r < n_renditions (self); r++) {
    FrameCount *count = &self->counts[r];
    guint frames = g_atomic_int_get ((gint *) & count->frames);
    guint bytes = g_atomic_int_get ((gint *) & count->bytes);
    PcrRenditionMetrics *out = &m->renditions[m->n_renditions++];

    g_strlcpy (out->name, names[r], sizeof (out->name));
    out->fps = (guint) (frames - count->last_frames) / seconds;
    out->bitrate = (gint64) ((guint) (bytes - count->last_bytes) * 8.0 /
        seconds);
    count->last_frames = frames;
    count->last_bytes = bytes;
  }
}

static gint
compare_uint (gconstpointer a, gconstpointer b)
{
  guint x = *(const guint *) a, y = *(const guint *) b;

  return x < y ? -1 : x > y;
}

/* Viewers, their NACKs and retransmissions, the spread of the estimates
 * of those whose RTCP said anything. */
static void
fill_viewers (PcrMqttWebrtcSink * self, PcrMetrics * m)
{
  g_autoptr (GArray) estimates = g_array_new (FALSE, FALSE, sizeof (guint));
  guint64 nacks = self->gone_nacks, retransmissions =
      self->gone_retransmissions;
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, self->adapt);
  while (g_hash_table_iter_next (&iter, &key, &value)) {
    Adapt *adapt = value;
    guint n, r;

    pcr_viewer_get_retransmissions (key, &n, &r);
    nacks += n;
    retransmissions += r;
    if (adapt->used.have_twcc || adapt->used.have_rr) {
      guint estimate = pcr_estimator_get_media_bps (adapt->estimator);

      g_array_append_val (estimates, estimate);
    }
  }
  m->viewers = g_hash_table_size (self->sessions);
  m->nacks = nacks;
  m->retransmissions = retransmissions;
  if (estimates->len > 0) {
    g_array_sort (estimates, compare_uint);
    m->have_estimates = TRUE;
    m->estimate_min = g_array_index (estimates, guint, 0);
    m->estimate_median = g_array_index (estimates, guint, estimates->len / 2);
    m->estimate_max = g_array_index (estimates, guint, estimates->len - 1);
  }
}

static gboolean
metrics_tick (gpointer data)
{
  PcrMqttWebrtcSink *self = data;
  gint64 now = g_get_monotonic_time ();
  g_auto (PcrMetrics) m = { 0 };
  gboolean adaptive;

  pcr_metrics_init (&m);
  GST_OBJECT_LOCK (self);
  m.interval = self->metrics_interval;
  m.restarts = self->restarts;
  adaptive = self->adaptive;
  GST_OBJECT_UNLOCK (self);
  fill_viewers (self, &m);
  /* without adaptation the estimates stand still: say nothing of them */
  m.have_estimates &= adaptive;
  fill_renditions (self, &m, MAX (now - self->metrics_us, 1) /
      (gdouble) G_USEC_PER_SEC);
  fill_labels (self, &m);
  self->metrics_us = now;
  pcr_signaller_publish_metrics (self->run_signaller, &m);
  return G_SOURCE_CONTINUE;
}

/* A viewer leaves: what it asked for and got stays in the totals. */
static void
count_gone_viewer (PcrMqttWebrtcSink * self, PcrViewer * viewer)
{
  guint nacks, retransmissions;

  pcr_viewer_get_retransmissions (viewer, &nacks, &retransmissions);
  self->gone_nacks += nacks;
  self->gone_retransmissions += retransmissions;
}

/* ------------------------------------------------------------------------
 * Sessions (context thread)
 * ------------------------------------------------------------------------ */

static PcrViewer *
lookup_session (PcrMqttWebrtcSink * self, const gchar * id)
{
  return g_hash_table_lookup (self->sessions, id);
}

static void
remove_session (PcrMqttWebrtcSink * self, PcrViewer * viewer,
    gboolean send_bye, const gchar * why)
{
  const gchar *id = pcr_viewer_get_id (viewer);

  GST_INFO_OBJECT (self, "removing session %s: %s", id, why);
  count_gone_viewer (self, viewer);
  if (viewer == self->talker) {
    GST_INFO_OBJECT (self, "talk-back free again");
    self->talker = NULL;
  }
  g_hash_table_steal (self->sessions, id);
  g_hash_table_remove (self->adapt, viewer);
  if (send_bye) {
    g_autoptr (PcrMessage) bye = pcr_message_new_bye ();

    pcr_signaller_send (self->run_signaller, id, bye);
  }
  g_mutex_lock (&self->lock);
  self->removing = g_list_prepend (self->removing, viewer);
  g_mutex_unlock (&self->lock);
  pcr_viewer_close (viewer);
  set_viewers (self, g_hash_table_size (self->sessions));
}

static void
on_viewer_connected (PcrViewer * viewer, gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;

  pcr_rendition_request_key_unit (self->renditions[pcr_viewer_get_rendition
          (viewer, NULL)]);
}

/* The viewer's browser asked for a key frame (PLI/FIR) of the rendition it
 * gets: honoured at most once per VIEWER_KEY_UNIT_INTERVAL_US for this
 * viewer, and once per rendition's window for everyone. */
static void
on_viewer_key_unit (PcrViewer * viewer, guint rendition, gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;
  Adapt *adapt = g_hash_table_lookup (self->adapt, viewer);
  gint64 now = g_get_monotonic_time ();
  gint pending;

  if (rendition >= PCR_MAX_RENDITIONS || !self->renditions[rendition])
    return;
  /* cut off and moving down: the rendition it leaves sends it nothing,
   * and the one it goes to is asked for its key frame (once drained); a
   * key frame of the old one would only cost the viewers staying there */
  pcr_viewer_get_rendition (viewer, &pending);
  if (adapt && (adapt->drain || (pending >= 0 && (guint) pending >
              rendition))) {
    GST_DEBUG_OBJECT (self, "session %s: key frame asked for while it "
        "moves down, ignored", pcr_viewer_get_id (viewer));
    return;
  }
  if (adapt) {
    if (adapt->last_key_unit_us &&
        now - adapt->last_key_unit_us < VIEWER_KEY_UNIT_INTERVAL_US) {
      GST_DEBUG_OBJECT (self, "session %s: key frame asked for again too "
          "soon, ignored", pcr_viewer_get_id (viewer));
      return;
    }
    adapt->last_key_unit_us = now;
  }
  pcr_rendition_request_key_unit (self->renditions[rendition]);
}

static void
on_viewer_failed (PcrViewer * viewer, gboolean send_bye, const gchar * why,
    gpointer user_data)
{
  remove_session (user_data, viewer, send_bye, why);
}

static void
on_viewer_closed (PcrViewer * viewer, gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;

  g_mutex_lock (&self->lock);
  self->removing = g_list_remove (self->removing, viewer);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  pcr_viewer_free (viewer);
}

/* Whether a new viewer may come: the reply when not. */
static gboolean
admit (PcrMqttWebrtcSink * self, const gchar * id)
{
  guint max_viewers;
  gboolean streaming;

  if (lookup_session (self, id)) {
    pcr_viewer_reply_error (self->run_signaller, id, PCR_ERROR_BAD_REQUEST,
        "this session already has an offer; use a new session id");
    return FALSE;
  }
  GST_OBJECT_LOCK (self);
  max_viewers = self->max_viewers;
  streaming = self->streaming;
  GST_OBJECT_UNLOCK (self);
  if (!streaming) {
    pcr_viewer_reply_error (self->run_signaller, id, PCR_ERROR_INTERNAL,
        "the device is not streaming");
    return FALSE;
  }
  if (g_hash_table_size (self->sessions) >= max_viewers) {
    g_autofree gchar *text = g_strdup_printf ("the device serves at most %u "
        "viewers at once", max_viewers);

    pcr_viewer_reply_error (self->run_signaller, id, PCR_ERROR_MAX_VIEWERS,
        text);
    return FALSE;
  }
  return TRUE;
}

static void
handle_offer (PcrMqttWebrtcSink * self, const gchar * id,
    const PcrMessage * msg)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *stun = NULL, *turn = NULL, *addresses = NULL;
  g_autofree gchar *talkback = NULL;
  PcrViewerSettings settings = { 0 };
  PcrViewer *viewer;
  GstElement *tees[PCR_MAX_RENDITIONS];
  guint n_tees = 0;

  if (!admit (self, id))
    return;
  GST_OBJECT_LOCK (self);
  settings.stun_server = stun = g_strdup (self->stun_server);
  settings.turn_server = turn = g_strdup (self->turn_server);
  settings.ice_addresses = addresses = g_strdup (self->ice_addresses);
  settings.playout_delay_max_ms = self->playout_delay_max_ms;
  settings.fec = self->fec != PCR_FEC_OFF;
  settings.audio_tee = self->audio_tee;
  settings.control = self->run_control;
  talkback = g_strdup (self->talkback);
  GST_OBJECT_UNLOCK (self);
  {
    PcrStreamInfo info;

    pcr_rendition_get_info (self->renditions[0], &info);
    settings.profile = info.profile;
  }

  while (n_tees < PCR_MAX_RENDITIONS && self->renditions[n_tees]) {
    tees[n_tees] = pcr_rendition_get_tee (self->renditions[n_tees]);
    n_tees++;
  }
  viewer = pcr_viewer_new (&self->host, id, msg, &settings, &error);
  if (!viewer) {
    pcr_viewer_reply_error (self->run_signaller, id,
        error->domain == PCR_MESSAGE_ERROR ? (PcrErrorCode) error->code :
        PCR_ERROR_BAD_REQUEST, error->message);
    return;
  }
  /* one talker at a time: the first to offer its microphone */
  if (talkback && pcr_viewer_offers_talk (viewer)) {
    if (!self->talker) {
      GST_INFO_OBJECT (self, "session %s: talks", id);
      pcr_viewer_set_talkback (viewer, talkback);
      self->talker = viewer;
    } else {
      GST_INFO_OBJECT (self, "session %s: listens (session %s talks)", id,
          pcr_viewer_get_id (self->talker));
    }
  }
  g_hash_table_insert (self->sessions, (gpointer) pcr_viewer_get_id (viewer),
      viewer);
  g_hash_table_insert (self->adapt, viewer, adapt_new (self, msg));
  if (!pcr_viewer_start (viewer, tees, n_tees, 0, &error)) {
    /* Plumbing (PCR_VIEWER_ERROR): the viewer hears "internal". */
    pcr_viewer_reply_error (self->run_signaller, id, PCR_ERROR_INTERNAL,
        error->message);
    remove_session (self, viewer, FALSE, "branch failed");
    return;
  }
  set_viewers (self, g_hash_table_size (self->sessions));
}

/* The recorder's callbacks, on the context. */
static void
on_recorder_state (gboolean recording, const gchar * error,
    gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;

  GST_OBJECT_LOCK (self);
  self->recording = recording;
  self->record = recording;
  g_free (self->record_error);
  self->record_error = g_strdup (error);
  GST_OBJECT_UNLOCK (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RECORDING]);
  publish_status (self);
}

static void
on_recorder_key_unit (gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;

  pcr_rendition_request_key_unit (self->renditions[0]);
}

/* Starts or stops recording (the context); FALSE and @error when it cannot
 * start. */
static gboolean
set_recording (PcrMqttWebrtcSink * self, gboolean on, GError ** error)
{
  if (!self->recorder) {
    g_set_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_NO_RECORDING,
        "the device has no recording directory (record-dir)");
    return FALSE;
  }
  if (!on) {
    pcr_recorder_stop (self->recorder);
    return TRUE;
  }
  return pcr_recorder_start (self->recorder, error);
}

static gboolean
apply_record_cb (gpointer data)
{
  PcrMqttWebrtcSink *self = data;
  g_autoptr (GError) error = NULL;
  gboolean on;

  GST_OBJECT_LOCK (self);
  on = self->record;
  GST_OBJECT_UNLOCK (self);
  if (self->recorder && on != pcr_recorder_is_recording (self->recorder) &&
      !set_recording (self, on, &error)) {
    GST_ELEMENT_WARNING (self, RESOURCE, OPEN_WRITE, ("%s", error->message),
        (NULL));
    GST_OBJECT_LOCK (self);
    self->record = FALSE;
    g_free (self->record_error);
    self->record_error = g_strdup (error->message);
    GST_OBJECT_UNLOCK (self);
    publish_status (self);
  }
  return G_SOURCE_REMOVE;
}

static void
handle_record_message (PcrMqttWebrtcSink * self, const gchar * id,
    const PcrMessage * msg)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PcrMessage) reply = NULL;

  if (msg->type == PCR_MESSAGE_RECORD) {
    if (!set_recording (self, msg->record, &error))
      reply = pcr_message_new_error (error->domain == PCR_MESSAGE_ERROR ?
          (PcrErrorCode) error->code : PCR_ERROR_INTERNAL, error->message);
    else
      reply = pcr_message_new_recording (pcr_recorder_is_recording
          (self->recorder));
  } else if (!self->recorder) {
    reply = pcr_message_new_error (PCR_ERROR_NO_RECORDING,
        "the device has no recording directory (record-dir)");
  } else if (msg->type == PCR_MESSAGE_RECORDINGS) {
    reply = pcr_recorder_list (self->recorder, msg->from);
  } else {
    reply = pcr_recorder_fetch (self->recorder, msg->name, msg->offset,
        msg->length);
  }
  pcr_signaller_send (self->run_signaller, id, reply);
}

/* A viewer's control message, checked by the viewer: out to MQTT. */
static void
on_viewer_control (PcrViewer * viewer, const gchar * data, gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;

  pcr_signaller_publish_control (self->run_signaller,
      pcr_viewer_get_id (viewer), data);
}

/* What the device's programs say to the viewers' control channels. */
static void
on_signaller_control (PcrSignaller * signaller, const gchar * id,
    const gchar * data, gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;
  GHashTableIter iter;
  gpointer viewer;

  if (id) {
    viewer = lookup_session (self, id);
    if (viewer)
      pcr_viewer_send_control (viewer, data);
    else
      GST_DEBUG_OBJECT (self, "control message for unknown session %s", id);
    return;
  }
  g_hash_table_iter_init (&iter, self->sessions);
  while (g_hash_table_iter_next (&iter, NULL, &viewer))
    pcr_viewer_send_control (viewer, data);
}

/* ------------------------------------------------------------------------
 * The relay: relayed viewers hold leases; the camera publishes to Janus
 * while any does (docs/scaling.md)
 * ------------------------------------------------------------------------ */

static void
relay_set_wanted (PcrMqttWebrtcSink * self, gboolean wanted)
{
  GstElement *tees[PCR_MAX_RENDITIONS];
  guint n = 0;

  while (n < PCR_MAX_RENDITIONS && self->renditions[n]) {
    tees[n] = pcr_rendition_get_tee (self->renditions[n]);
    n++;
  }
  self->relay_wanted = wanted;
  if (!wanted)
    self->relay_unwanted_since = 0;
  pcr_relay_set_wanted (self->relay, wanted, tees, n);
}

/* After the leases changed: the counts, and whether to publish. */
static void
update_relay (PcrMqttWebrtcSink * self)
{
  guint n = g_hash_table_size (self->leases);
  gboolean changed;

  GST_OBJECT_LOCK (self);
  changed = self->relay_viewers != n;
  self->relay_viewers = n;
  GST_OBJECT_UNLOCK (self);
  if (changed) {
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_VIEWERS]);
    publish_status (self);
  }
  if (n > 0 || !self->relay_on_demand) {
    self->relay_unwanted_since = 0;
    if (!self->relay_wanted)
      relay_set_wanted (self, TRUE);
  } else if (self->relay_wanted && self->relay_unwanted_since == 0) {
    self->relay_unwanted_since = g_get_monotonic_time ();
  }
}

static gboolean
update_relay_cb (gpointer data)
{
  update_relay (data);
  return G_SOURCE_REMOVE;
}

/* The waiting relayed viewers learn where to subscribe, or that they
 * must watch directly (their leases then go). */
static void
relay_answer_waiting (PcrMqttWebrtcSink * self, const gchar * error)
{
  GHashTableIter iter;
  gpointer id;

  g_hash_table_iter_init (&iter, self->relay_waiting);
  while (g_hash_table_iter_next (&iter, &id, NULL)) {
    if (error) {
      g_autofree gchar *text = g_strdup_printf ("the relay is unreachable "
          "(%s): watch directly", error);
      pcr_viewer_reply_error (self->run_signaller, id,
          PCR_ERROR_RELAY_UNAVAILABLE, text);
      g_hash_table_remove (self->leases, id);
    } else {
      g_autoptr (PcrMessage) msg = pcr_message_new_relay (self->relay_room,
          self->relay_feed);
      pcr_signaller_send (self->run_signaller, id, msg);
    }
    g_hash_table_iter_remove (&iter);
  }
}

static void
on_relay_state (PcrRelay * relay, PcrRelayState state, const gchar * error,
    gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;
  const gchar *name = pcr_relay_state_to_string (state);
  gboolean changed;

  GST_OBJECT_LOCK (self);
  changed = self->relay_state != name ||
      g_strcmp0 (self->relay_error, error) != 0;
  self->relay_state = name;
  g_free (self->relay_error);
  self->relay_error = g_strdup (error);
  GST_OBJECT_UNLOCK (self);
  if (state == PCR_RELAY_PUBLISHING) {
    relay_answer_waiting (self, NULL);
  } else if (state == PCR_RELAY_UNREACHABLE) {
    if (changed)
      GST_ELEMENT_WARNING (self, RESOURCE, OPEN_READ_WRITE,
          ("relay unreachable: %s; viewers are served directly", error),
          (NULL));
    relay_answer_waiting (self, error);
    update_relay (self);
  }
  if (changed)
    publish_status (self);
}

static void
on_relay_key_unit (PcrRelay * relay, guint rendition, gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;

  if (rendition < PCR_MAX_RENDITIONS && self->renditions[rendition])
    pcr_rendition_request_key_unit (self->renditions[rendition]);
}

static void
handle_relay (PcrMqttWebrtcSink * self, const gchar * id)
{
  gint64 *expiry;

  if (!self->relay) {
    pcr_viewer_reply_error (self->run_signaller, id,
        PCR_ERROR_RELAY_UNAVAILABLE, "this camera is not relayed: watch "
        "directly");
    return;
  }
  if (lookup_session (self, id)) {
    pcr_viewer_reply_error (self->run_signaller, id, PCR_ERROR_BAD_REQUEST,
        "this session watches directly");
    return;
  }
  if (!g_hash_table_contains (self->leases, id) &&
      g_hash_table_size (self->leases) >= RELAY_MAX_LEASES) {
    pcr_viewer_reply_error (self->run_signaller, id, PCR_ERROR_MAX_VIEWERS,
        "too many relayed sessions");
    return;
  }
  expiry = g_new (gint64, 1);
  *expiry = g_get_monotonic_time () + RELAY_LEASE_US;
  g_hash_table_replace (self->leases, g_strdup (id), expiry);
  if (pcr_relay_get_state (self->relay) == PCR_RELAY_PUBLISHING) {
    g_autoptr (PcrMessage) msg = pcr_message_new_relay (self->relay_room,
        self->relay_feed);
    pcr_signaller_send (self->run_signaller, id, msg);
  } else {
    g_hash_table_add (self->relay_waiting, g_strdup (id));
  }
  update_relay (self);
  pcr_relay_retry_now (self->relay);
}

static void
end_lease (PcrMqttWebrtcSink * self, const gchar * id)
{
  g_hash_table_remove (self->relay_waiting, id);
  if (g_hash_table_remove (self->leases, id))
    update_relay (self);
}

/* Once a second: leases not renewed end; the relay stops publishing a
 * while after the last one. */
static void
relay_tick (PcrMqttWebrtcSink * self, gint64 now)
{
  GHashTableIter iter;
  gpointer id, expiry;
  guint before = g_hash_table_size (self->leases);

  g_hash_table_iter_init (&iter, self->leases);
  while (g_hash_table_iter_next (&iter, &id, &expiry)) {
    if (*(gint64 *) expiry > now)
      continue;
    GST_INFO_OBJECT (self, "relayed session %s: lease expired",
        (const gchar *) id);
    g_hash_table_remove (self->relay_waiting, id);
    g_hash_table_iter_remove (&iter);
  }
  if (g_hash_table_size (self->leases) != before)
    update_relay (self);
  if (self->relay_wanted && self->relay_unwanted_since != 0 &&
      now - self->relay_unwanted_since >= RELAY_LINGER_US)
    relay_set_wanted (self, FALSE);
}

/* Parses the relay URL and makes the relay (start, before the context
 * runs). */
static gboolean
make_relay (PcrMqttWebrtcSink * self, GError ** error)
{
  static const PcrRelayCallbacks callbacks = { on_relay_state,
    on_relay_key_unit
  };
  g_autofree gchar *url = NULL, *base = NULL, *adminkey = NULL;
  g_autofree gchar *apisecret = NULL, *device = NULL;
  g_autofree gchar *stun = NULL, *turn = NULL, *ice = NULL;
  guint64 room;
  PcrRelaySettings settings;

  GST_OBJECT_LOCK (self);
  url = g_strdup (self->relay_url);
  device = g_strdup (self->device_id);
  stun = g_strdup (self->stun_server);
  turn = g_strdup (self->turn_server);
  ice = g_strdup (self->ice_addresses);
  self->relay_state = NULL;
  GST_OBJECT_UNLOCK (self);
  if (!url)
    return TRUE;
  if (!pcr_janus_parse_url (url, &base, &room, &adminkey, &apisecret, error))
    return FALSE;
  settings.url = base;
  settings.apisecret = apisecret;
  settings.adminkey = adminkey;
  settings.room = room ? room : pcr_relay_id_for (device, "room");
  settings.feed = pcr_relay_id_for (device, "feed");
  settings.display = device;
  settings.stun_server = stun;
  settings.turn_server = turn;
  settings.ice_addresses = ice;
  self->relay = pcr_relay_new (GST_BIN (self), self->context, &settings,
      &callbacks, self);
  self->leases = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      g_free);
  self->relay_waiting = g_hash_table_new_full (g_str_hash, g_str_equal,
      g_free, NULL);
  self->relay_wanted = FALSE;
  self->relay_unwanted_since = 0;
  GST_OBJECT_LOCK (self);
  g_free (self->relay_base);
  self->relay_base = g_strdup (base);
  self->relay_room = settings.room;
  self->relay_feed = settings.feed;
  self->relay_state = pcr_relay_state_to_string (PCR_RELAY_IDLE);
  g_clear_pointer (&self->relay_error, g_free);
  self->relay_viewers = 0;
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

static gboolean
free_relay_cb (gpointer data)
{
  PcrMqttWebrtcSink *self = data;

  g_clear_pointer (&self->relay, pcr_relay_free);
  return G_SOURCE_REMOVE;
}

static void
on_signaller_message (PcrSignaller * signaller, const gchar * id,
    const PcrMessage * msg, gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;
  PcrViewer *viewer = lookup_session (self, id);

  switch (msg->type) {
    case PCR_MESSAGE_OFFER:
      handle_offer (self, id, msg);
      break;
    case PCR_MESSAGE_CANDIDATE:
      if (viewer)
        pcr_viewer_add_remote_candidate (viewer, msg);
      else
        pcr_viewer_reply_error (signaller, id, PCR_ERROR_UNKNOWN_SESSION,
            "no such session: send an offer first");
      break;
    case PCR_MESSAGE_BYE:
      if (viewer)
        remove_session (self, viewer, FALSE, "viewer said bye");
      else if (self->leases)
        end_lease (self, id);
      break;
    case PCR_MESSAGE_RELAY:
      handle_relay (self, id);
      break;
    case PCR_MESSAGE_RECORD:
    case PCR_MESSAGE_RECORDINGS:
    case PCR_MESSAGE_FETCH:
      handle_record_message (self, id, msg);
      break;
    case PCR_MESSAGE_SNAPSHOT:
      if (self->snapshot)
        pcr_snapshot_request (self->snapshot, id);
      else
        pcr_viewer_reply_error (signaller, id, PCR_ERROR_NO_SNAPSHOT,
            "the device takes no pictures: nothing is linked to the "
            "element's snapshot pad");
      break;
    default:
      pcr_viewer_reply_error (signaller, id, PCR_ERROR_BAD_REQUEST,
          "a device takes offer, candidate, bye, relay, snapshot, record, "
          "recordings and fetch messages only");
      break;
  }
}

static void
on_signaller_connected (PcrSignaller * signaller, gpointer user_data)
{
  publish_status (user_data);
}

/* A failed or broken connection, once per distinct failure: a bus WARNING,
 * so gst-launch and the service say why the camera is not online. */
static void
on_signaller_error (PcrSignaller * signaller, const gchar * message,
    gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;

  GST_ELEMENT_WARNING (self, RESOURCE, OPEN_READ_WRITE,
      ("%s; retrying", message), (NULL));
}

static gboolean
housekeeping (gpointer data)
{
  PcrMqttWebrtcSink *self = data;
  gint64 now = g_get_monotonic_time ();
  /* A copy: a tick may remove its viewer from the table. */
  GList *viewers = g_hash_table_get_values (self->sessions);
  GList *l;

  for (l = viewers; l; l = l->next)
    pcr_viewer_tick (l->data, now);
  g_list_free (viewers);
  if (self->snapshot)
    pcr_snapshot_tick (self->snapshot, now);
  if (self->relay)
    relay_tick (self, now);
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

/* The application's signaller, or the MQTT one from the properties. */
static PcrSignaller *
make_signaller (PcrMqttWebrtcSink * self, GError ** error)
{
  PcrMqttSignallerSettings settings;
  PcrSignaller *signaller;

  GST_OBJECT_LOCK (self);
  if (self->signaller) {
    signaller = g_object_ref (self->signaller);
  } else {
    settings.broker_uri = self->broker_uri;
    settings.username = self->username;
    settings.password = self->password;
    settings.ca_file = self->ca_file;
    settings.cert_file = self->cert_file;
    settings.key_file = self->key_file;
    settings.topic_prefix = self->topic_prefix;
    settings.device_id = self->device_id;
    signaller = (PcrSignaller *) pcr_mqtt_signaller_new (&settings, error);
  }
  GST_OBJECT_UNLOCK (self);
  return signaller;
}

static void
post_start_error (PcrMqttWebrtcSink * self, const GError * error)
{
  if (error->domain == PCR_SIGNALLER_ERROR
      && error->code == PCR_SIGNALLER_ERROR_SETTINGS)
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", error->message),
        (NULL));
  else
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ_WRITE,
        ("Cannot start the signaller"), ("%s", error->message));
}

/* What a viewer's branch is made of (webrtcbin creates the ones after it). */
static const gchar *const branch_elements[] = { "funnel", "queue",
  "rtph264pay", "webrtcbin", "rtpbin", "nicesrc", "nicesink", "dtlssrtpenc",
  "dtlssrtpdec", "srtpenc", "srtpdec", "rtprtxsend", "rtpstorage"
};

/* Work the first viewer would otherwise wait for, done in the background
 * at start while no one waits: loading the plugins of a branch (libsrtp,
 * for one, runs its self-tests when loaded) and making the process's DTLS
 * certificate, an RSA 2048 key that the first DTLS element creates and all
 * later ones share (dtlsdec in GStreamer 1.22): 0.1-0.5 s on a PC, a second
 * or more on a Pi. A viewer earlier than this waits for the same key rather
 * than making its own. */
static gpointer
warm_up (gpointer data)
{
  GstElement *dtls;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (branch_elements); i++) {
    GstElementFactory *f = gst_element_factory_find (branch_elements[i]);
    GstPluginFeature *loaded;

    if (!f)
      continue;
    loaded = gst_plugin_feature_load (GST_PLUGIN_FEATURE (f));
    if (loaded)
      gst_object_unref (loaded);
    gst_object_unref (f);
  }
  dtls = gst_element_factory_make ("dtlsdec", NULL);
  if (dtls)
    gst_object_unref (gst_object_ref_sink (dtls));
  return NULL;
}

static gboolean
start (PcrMqttWebrtcSink * self)
{
  static const PcrSignallerCallbacks callbacks = { on_signaller_connected,
    on_signaller_message, on_signaller_error, NULL
  };
  static const PcrSignallerCallbacks control_callbacks = {
    on_signaller_connected, on_signaller_message, on_signaller_error,
    on_signaller_control
  };
  g_autoptr (GError) error = NULL;
  PcrSignaller *signaller;
  PcrStatus offline;
  guint interval;

  if (self->missing) {
    GST_ELEMENT_ERROR (self, CORE, MISSING_PLUGIN,
        ("Missing element '%s'", self->missing),
        ("install the Debian package %s",
            pcr_debian_package_for_element (self->missing)));
    return FALSE;
  }
  signaller = make_signaller (self, &error);
  if (!signaller) {
    post_start_error (self, error);
    return FALSE;
  }
  if (!make_relay (self, &error)) {
    g_object_unref (signaller);
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", error->message),
        (NULL));
    return FALSE;
  }
  GST_OBJECT_LOCK (self);
  self->run_signaller = signaller;
  self->run_control = self->control;
  fill_status (self, FALSE, &offline);
  GST_OBJECT_UNLOCK (self);

  self->host.bin = GST_BIN (self);
  self->host.context = self->context;
  self->host.signaller = signaller;
  self->host.connected = on_viewer_connected;
  self->host.key_unit = on_viewer_key_unit;
  self->host.failed = on_viewer_failed;
  self->host.closed = on_viewer_closed;
  self->host.control = on_viewer_control;
  self->host.user_data = self;
  self->talker = NULL;
  self->sessions = g_hash_table_new (g_str_hash, g_str_equal);
  self->adapt = g_hash_table_new_full (NULL, NULL, NULL, adapt_free);
  self->loop = g_main_loop_new (self->context, FALSE);
  self->housekeeping = g_timeout_source_new_seconds (1);
  g_source_set_callback (self->housekeeping, housekeeping, self, NULL);
  g_source_attach (self->housekeeping, self->context);
  self->adapt_timer = g_timeout_source_new (ADAPT_INTERVAL_MS);
  g_source_set_callback (self->adapt_timer, adapt_tick, self, NULL);
  g_source_attach (self->adapt_timer, self->context);
  GST_OBJECT_LOCK (self);
  interval = self->metrics_interval;
  GST_OBJECT_UNLOCK (self);
  self->metrics_us = g_get_monotonic_time ();
  self->gone_nacks = self->gone_retransmissions = 0;
  if (interval > 0) {
    self->metrics_timer = g_timeout_source_new_seconds (interval);
    g_source_set_callback (self->metrics_timer, metrics_tick, self, NULL);
    g_source_attach (self->metrics_timer, self->context);
  }
  GST_OBJECT_LOCK (self);
  if (self->record_dir) {
    PcrRecorderSettings settings = {
      .dir = self->record_dir,
      .segment_s = self->record_segment_s,
      .max_mb = self->record_max_mb,
      .max_age_h = self->record_max_age_h,
    };
    PcrRecorderHost host = {
      .context = self->context,
      .state_changed = on_recorder_state,
      .want_key_unit = on_recorder_key_unit,
      .user_data = self,
    };
    PcrRecorder *recorder = pcr_recorder_new (GST_BIN (self),
        pcr_rendition_get_tee (self->renditions[0]), &settings, &host);

    self->recorder = recorder;
  }
  GST_OBJECT_UNLOCK (self);
  if (self->recorder)
    post (self, apply_record_cb, self, NULL);
  if (self->relay && !self->relay_on_demand)
    post (self, update_relay_cb, self, NULL);
  self->thread = g_thread_new ("mqttwebrtcsink", context_thread, self);
  self->warm_up_thread = g_thread_new ("mqttwebrtcsink-warm", warm_up,
      NULL);

  if (!pcr_signaller_start (signaller, self->context, self->run_control ?
          &control_callbacks : &callbacks, self, &offline, &error)) {
    post_start_error (self, error);
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
  GList *viewers = g_hash_table_get_values (self->sessions);
  GList *l;

  for (l = viewers; l; l = l->next)
    remove_session (self, l->data, TRUE, "the device is stopping");
  g_list_free (viewers);

  /* Every close has started: the waiter now waits for self->removing. */
  g_mutex_lock (&self->lock);
  self->closing_all = FALSE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  return G_SOURCE_REMOVE;
}

/* From the application thread: says bye to every viewer and waits until
 * every branch is freed, or the deadline. */
static void
close_all_sessions (PcrMqttWebrtcSink * self)
{
  gint64 deadline = g_get_monotonic_time () + STOP_TIMEOUT_US;

  if (!self->thread)
    return;
  g_mutex_lock (&self->lock);
  self->closing_all = TRUE;
  post (self, close_all_sessions_cb, self, NULL);
  while (self->closing_all || self->removing) {
    if (!g_cond_wait_until (&self->cond, &self->lock, deadline)) {
      GST_WARNING_OBJECT (self, "viewers' branches still there after %d s",
          (gint) (STOP_TIMEOUT_US / G_USEC_PER_SEC));
      break;
    }
  }
  self->closing_all = FALSE;
  g_mutex_unlock (&self->lock);
}

static void
stop (PcrMqttWebrtcSink * self)
{
  PcrRecorder *recorder;
  GList *leftover, *l;
  guint i;
  PcrSignaller *signaller;

  if (self->warm_up_thread) {
    g_thread_join (self->warm_up_thread);
    self->warm_up_thread = NULL;
  }
  if (self->thread && self->relay) {
    gint64 deadline = g_get_monotonic_time () + G_TIME_SPAN_SECOND;

    /* On the context, where the relay's Janus client lives: libsoup
     * completes its requests (the cancelled ones, the last "destroy" that
     * lets Janus drop our publisher at once) only in their own context,
     * so that thread runs until they are done. */
    post (self, free_relay_cb, self, NULL);
    while ((g_atomic_pointer_get (&self->relay) != NULL ||
            pcr_janus_requests_in_flight () > 0) &&
        g_get_monotonic_time () < deadline)
      g_usleep (5 * G_TIME_SPAN_MILLISECOND);
  }
  if (self->thread) {
    /* Quit from inside the loop: a g_main_loop_quit() from here before the
     * thread reached g_main_loop_run() would be lost, and the join hang. */
    post (self, quit_loop_cb, self->loop, NULL);
    g_thread_join (self->thread);
    self->thread = NULL;
  }
  /* With the context's thread gone, no signaller callback runs meanwhile. */
  if (self->run_signaller) {
    PcrStatus offline;

    GST_OBJECT_LOCK (self);
    fill_status (self, FALSE, &offline);
    GST_OBJECT_UNLOCK (self);
    pcr_signaller_stop (self->run_signaller, &offline);
  }
  if (self->housekeeping) {
    g_source_destroy (self->housekeeping);
    g_clear_pointer (&self->housekeeping, g_source_unref);
  }
  if (self->adapt_timer) {
    g_source_destroy (self->adapt_timer);
    g_clear_pointer (&self->adapt_timer, g_source_unref);
  }
  if (self->metrics_timer) {
    g_source_destroy (self->metrics_timer);
    g_clear_pointer (&self->metrics_timer, g_source_unref);
  }
  for (i = 0; i < PCR_MAX_RENDITIONS; i++)
    if (self->renditions[i])
      pcr_rendition_stop (self->renditions[i]);
  /* Drain what is still queued (closes under way) now that no thread runs. */
  while (g_main_context_iteration (self->context, FALSE));
  g_clear_pointer (&self->relay, pcr_relay_free);
  g_clear_pointer (&self->leases, g_hash_table_unref);
  g_clear_pointer (&self->relay_waiting, g_hash_table_unref);
  self->relay_wanted = FALSE;
  if (self->snapshot)
    pcr_snapshot_stop (self->snapshot);
  GST_OBJECT_LOCK (self);
  recorder = g_steal_pointer (&self->recorder);
  self->recording = FALSE;
  GST_OBJECT_UNLOCK (self);
  pcr_recorder_free (recorder);

  g_mutex_lock (&self->lock);
  leftover = self->removing;
  self->removing = NULL;
  g_mutex_unlock (&self->lock);
  if (self->sessions)
    leftover = g_list_concat (leftover,
        g_hash_table_get_values (self->sessions));
  for (l = leftover; l; l = l->next) {
    pcr_viewer_close_now (l->data);
    pcr_viewer_free (l->data);
  }
  g_list_free (leftover);
  g_clear_pointer (&self->sessions, g_hash_table_unref);
  g_clear_pointer (&self->adapt, g_hash_table_unref);

  g_clear_pointer (&self->loop, g_main_loop_unref);
  GST_OBJECT_LOCK (self);
  self->viewers = 0;
  self->relay_viewers = 0;
  self->relay_state = NULL;
  self->snapshots = 0;
  signaller = g_steal_pointer (&self->run_signaller);
  GST_OBJECT_UNLOCK (self);
  memset (&self->host, 0, sizeof (self->host));
  g_clear_object (&signaller);
}

static GstStateChangeReturn
pcr_mqtt_webrtc_sink_change_state (GstElement * element,
    GstStateChange transition)
{
  PcrMqttWebrtcSink *self = PCR_MQTT_WEBRTC_SINK (element);
  GstStateChangeReturn ret;

  switch (transition) {
    case GST_STATE_CHANGE_PLAYING_TO_PAUSED:
      /* a stop, not a power cut: the segment being written gets its last
       * fragment */
      if (self->recorder && self->recording &&
          !pcr_recorder_finish (self->recorder, 2 * G_TIME_SPAN_SECOND))
        GST_WARNING_OBJECT (self, "the last recorded segment was not "
            "closed within 2 s");
      break;
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
    case PROP_CERT_FILE:
      replace_string (&self->cert_file, value);
      break;
    case PROP_KEY_FILE:
      replace_string (&self->key_file, value);
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
        /* back from an error: the application restarted the camera */
        if (g_str_equal (state, "online")
            && g_strcmp0 (self->camera_state, "error") == 0)
          self->restarts++;
        g_free (self->camera_state);
        self->camera_state = g_strdup (state);
        republish = TRUE;
      } else {
        GST_WARNING_OBJECT (self, "camera-state must be online or error");
      }
      break;
    }
    case PROP_SIGNALLER:
      g_clear_object (&self->signaller);
      self->signaller = g_value_dup_object (value);
      break;
    case PROP_ADAPTIVE:
      self->adaptive = g_value_get_boolean (value);
      break;
    case PROP_FEC:
      self->fec = g_value_get_enum (value);
      break;
    case PROP_METRICS_INTERVAL:
      self->metrics_interval = g_value_get_uint (value);
      break;
    case PROP_RECORD_DIR:
      replace_string (&self->record_dir, value);
      break;
    case PROP_RECORD_SEGMENT_S:
      self->record_segment_s = g_value_get_uint (value);
      break;
    case PROP_RECORD_MAX_MB:
      self->record_max_mb = g_value_get_uint (value);
      break;
    case PROP_RECORD_MAX_AGE_H:
      self->record_max_age_h = g_value_get_uint (value);
      break;
    case PROP_CONTROL:
      self->control = g_value_get_boolean (value);
      break;
    case PROP_TALKBACK:{
      const gchar *text = g_value_get_string (value);

      g_free (self->talkback);
      self->talkback = text && *text ? g_strdup (text) : NULL;
      break;
    }
    case PROP_RELAY:{
      const gchar *text = g_value_get_string (value);

      g_free (self->relay_url);
      self->relay_url = text && *text ? g_strdup (text) : NULL;
      break;
    }
    case PROP_RELAY_ON_DEMAND:
      self->relay_on_demand = g_value_get_boolean (value);
      break;
    case PROP_RECORDING:
      self->record = g_value_get_boolean (value);
      if (self->recorder) {
        GST_OBJECT_UNLOCK (self);
        post (self, apply_record_cb, self, NULL);
        GST_OBJECT_LOCK (self);
      }
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  republish = republish && self->run_signaller != NULL;
  GST_OBJECT_UNLOCK (self);

  if (republish)
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
    case PROP_CERT_FILE:
      g_value_set_string (value, self->cert_file);
      break;
    case PROP_KEY_FILE:
      g_value_set_string (value, self->key_file);
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
      g_value_set_uint (value, self->viewers + self->relay_viewers);
      break;
    case PROP_SNAPSHOTS:
      g_value_set_uint (value, self->snapshots);
      break;
    case PROP_RECORD_DIR:
      g_value_set_string (value, self->record_dir);
      break;
    case PROP_RECORD_SEGMENT_S:
      g_value_set_uint (value, self->record_segment_s);
      break;
    case PROP_RECORD_MAX_MB:
      g_value_set_uint (value, self->record_max_mb);
      break;
    case PROP_RECORD_MAX_AGE_H:
      g_value_set_uint (value, self->record_max_age_h);
      break;
    case PROP_RECORDING:
      g_value_set_boolean (value, self->recording);
      break;
    case PROP_CONTROL:
      g_value_set_boolean (value, self->control);
      break;
    case PROP_TALKBACK:
      g_value_set_string (value, self->talkback);
      break;
    case PROP_RELAY:
      g_value_set_string (value, self->relay_url);
      break;
    case PROP_RELAY_ON_DEMAND:
      g_value_set_boolean (value, self->relay_on_demand);
      break;
    case PROP_PLAYOUT_DELAY_MAX_MS:
      g_value_set_int (value, self->playout_delay_max_ms);
      break;
    case PROP_SIGNALLER:
      g_value_set_object (value, self->run_signaller ? self->run_signaller :
          self->signaller);
      break;
    case PROP_ADAPTIVE:
      g_value_set_boolean (value, self->adaptive);
      break;
    case PROP_FEC:
      g_value_set_enum (value, self->fec);
      break;
    case PROP_METRICS_INTERVAL:
      g_value_set_uint (value, self->metrics_interval);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* The snapshot's callbacks, on the context. */
static void
on_snapshot_reply (const gchar * id, const PcrMessage * msg,
    gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;

  if (self->run_signaller)
    pcr_signaller_send (self->run_signaller, id, msg);
}

static void
on_snapshots_waiting (guint waiting, gpointer user_data)
{
  PcrMqttWebrtcSink *self = user_data;

  GST_OBJECT_LOCK (self);
  if (self->snapshots == waiting) {
    GST_OBJECT_UNLOCK (self);
    return;
  }
  self->snapshots = waiting;
  GST_OBJECT_UNLOCK (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SNAPSHOTS]);
}

static GstPad *
request_snapshot_pad (PcrMqttWebrtcSink * self, GstPadTemplate * templ)
{
  PcrSnapshotHost host = {
    .context = self->context,
    .reply = on_snapshot_reply,
    .waiting_changed = on_snapshots_waiting,
    .user_data = self,
  };
  PcrSnapshot *snapshot;

  if (self->snapshot) {
    GST_WARNING_OBJECT (self, "there is one snapshot pad already");
    return NULL;
  }
  snapshot = pcr_snapshot_new (GST_BIN (self), templ, "snapshot", &host);
  GST_OBJECT_LOCK (self);
  self->snapshot = snapshot;
  GST_OBJECT_UNLOCK (self);
  return pcr_snapshot_get_pad (snapshot);
}

/* sink_audio: a tee the viewers' audio branches hang on. One, requested
 * before the pipeline plays (viewers get audio from the offer on). */
static GstPad *
request_audio_pad (PcrMqttWebrtcSink * self, GstPadTemplate * templ)
{
  g_autoptr (GstPad) target = NULL;
  GstElement *tee;
  GstPad *pad;

  if (self->audio_pad) {
    GST_WARNING_OBJECT (self, "there is one sink_audio pad already");
    return NULL;
  }
  if (GST_STATE (self) > GST_STATE_READY) {
    GST_WARNING_OBJECT (self, "request sink_audio before the pipeline plays");
    return NULL;
  }
  tee = gst_element_factory_make ("tee", "audio-tee");
  if (!tee)
    return NULL;
  /* no viewer with audio: the frames go nowhere, the encoder runs on */
  g_object_set (tee, "allow-not-linked", TRUE, NULL);
  gst_bin_add (GST_BIN (self), tee);
  target = gst_element_get_static_pad (tee, "sink");
  pad = gst_ghost_pad_new_from_template ("sink_audio", target, templ);
  gst_pad_set_active (pad, TRUE);
  gst_element_add_pad (GST_ELEMENT (self), pad);
  GST_OBJECT_LOCK (self);
  self->audio_pad = pad;
  self->audio_tee = gst_object_ref (tee);
  GST_OBJECT_UNLOCK (self);
  return pad;
}

/* sink_low: one, requested before the pipeline plays (viewers are linked
 * to the renditions there are when they come). snapshot: one, any time
 * before the first picture is asked for. */
static GstPad *
pcr_mqtt_webrtc_sink_request_new_pad (GstElement * element,
    GstPadTemplate * templ, const gchar * name, const GstCaps * caps)
{
  PcrMqttWebrtcSink *self = PCR_MQTT_WEBRTC_SINK (element);
  PcrRendition *rendition;

  if (templ == gst_element_class_get_pad_template (GST_ELEMENT_GET_CLASS
          (element), "snapshot")) {
    /* by name only: "videotestsrc ! mqttwebrtcsink" must not link raw
     * video here, with the stream's own pad left empty */
    if (name == NULL) {
      GST_DEBUG_OBJECT (self, "the snapshot pad is asked for by name only");
      return NULL;
    }
    return request_snapshot_pad (self, templ);
  }

  if (templ == gst_element_class_get_pad_template (GST_ELEMENT_GET_CLASS
          (element), "sink_audio"))
    return request_audio_pad (self, templ);

  if (self->renditions[1]) {
    GST_WARNING_OBJECT (self, "there is one sink_low pad already");
    return NULL;
  }
  if (GST_STATE (element) > GST_STATE_READY) {
    GST_WARNING_OBJECT (self, "request sink_low before the pipeline plays");
    return NULL;
  }
  rendition = pcr_rendition_new (GST_BIN (self), templ, "sink_low",
      self->context, on_caps_changed, self, &self->missing);
  GST_OBJECT_LOCK (self);
  self->renditions[1] = rendition;
  GST_OBJECT_UNLOCK (self);
  count_frames (self, 1);
  return pcr_rendition_get_pad (rendition);
}

static void
pcr_mqtt_webrtc_sink_release_pad (GstElement * element, GstPad * pad)
{
  PcrMqttWebrtcSink *self = PCR_MQTT_WEBRTC_SINK (element);
  PcrRendition *rendition = self->renditions[1];

  if (self->snapshot && pad == pcr_snapshot_get_pad (self->snapshot)) {
    PcrSnapshot *snapshot = self->snapshot;

    GST_OBJECT_LOCK (self);
    self->snapshot = NULL;
    GST_OBJECT_UNLOCK (self);
    pcr_snapshot_free (snapshot);
    return;
  }
  if (self->audio_pad && pad == self->audio_pad) {
    GstElement *tee = self->audio_tee;

    GST_OBJECT_LOCK (self);
    self->audio_pad = NULL;
    self->audio_tee = NULL;
    GST_OBJECT_UNLOCK (self);
    gst_element_remove_pad (element, pad);
    gst_element_set_state (tee, GST_STATE_NULL);
    /* at dispose the bin has removed its children already */
    if (GST_OBJECT_PARENT (tee) == GST_OBJECT (self))
      gst_bin_remove (GST_BIN (self), tee);
    gst_object_unref (tee);
    return;
  }
  if (!rendition || pad != pcr_rendition_get_pad (rendition))
    return;
  gst_pad_remove_probe (pad, self->counts[1].probe);
  GST_OBJECT_LOCK (self);
  self->renditions[1] = NULL;
  GST_OBJECT_UNLOCK (self);
  pcr_rendition_free (rendition);
}

static void
pcr_mqtt_webrtc_sink_init (PcrMqttWebrtcSink * self)
{
  GstPadTemplate *templ = gst_static_pad_template_get (&sink_template);

  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->broker_uri = g_strdup (DEFAULT_BROKER_URI);
  self->device_id = g_strdup (DEFAULT_DEVICE_ID);
  self->topic_prefix = g_strdup (DEFAULT_TOPIC_PREFIX);
  self->camera_state = g_strdup (DEFAULT_CAMERA_STATE);
  self->max_viewers = DEFAULT_MAX_VIEWERS;
  self->relay_on_demand = DEFAULT_RELAY_ON_DEMAND;
  self->playout_delay_max_ms = DEFAULT_PLAYOUT_DELAY_MAX_MS;
  self->adaptive = DEFAULT_ADAPTIVE;
  self->fec = DEFAULT_FEC;
  self->metrics_interval = DEFAULT_METRICS_INTERVAL;
  self->record_segment_s = PCR_DEFAULT_RECORD_SEGMENT_S;
  self->record_max_mb = PCR_DEFAULT_RECORD_MAX_MB;
  self->record_max_age_h = PCR_DEFAULT_RECORD_MAX_AGE_H;
  self->context = g_main_context_new ();

  self->renditions[0] = pcr_rendition_new (GST_BIN (self), templ, "sink",
      self->context, on_caps_changed, self, &self->missing);
  count_frames (self, 0);
  gst_object_unref (templ);
  /* Viewers' branches need these later; find out now. */
  if (!self->missing) {
    guint i;

    for (i = 0; i < G_N_ELEMENTS (branch_elements); i++) {
      GstElementFactory *f = gst_element_factory_find (branch_elements[i]);

      if (!f) {
        self->missing = g_strdup (branch_elements[i]);
        break;
      }
      gst_object_unref (f);
    }
  }
  GST_OBJECT_FLAG_SET (self, GST_ELEMENT_FLAG_SINK);
}

typedef struct
{
  PcrMqttWebrtcSink *self;
  gchar *id;
  gchar *why;
} BranchError;

static void
branch_error_free (gpointer data)
{
  BranchError *e = data;

  g_free (e->id);
  g_free (e->why);
  g_free (e);
}

static gboolean
branch_error_cb (gpointer data)
{
  BranchError *e = data;
  PcrViewer *viewer = lookup_session (e->self, e->id);

  if (viewer)
    remove_session (e->self, viewer, TRUE, e->why);
  return G_SOURCE_REMOVE;
}

/* The recording branch's messages stay here: a full disk stops the
 * recording, not the pipeline. So do a viewer's: an error inside its
 * branch (a transport webrtcbin gives up on, an SCTP association gone
 * wrong) ends that session only. Any thread. */
static void
pcr_mqtt_webrtc_sink_handle_message (GstBin * bin, GstMessage * message)
{
  PcrMqttWebrtcSink *self = PCR_MQTT_WEBRTC_SINK (bin);
  gboolean ours = FALSE;

  if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ERROR) {
    gchar *id = pcr_viewer_session_of (GST_MESSAGE_SRC (message));

    if (id) {
      g_autoptr (GError) err = NULL;
      g_autofree gchar *debug = NULL;
      BranchError *e = g_new0 (BranchError, 1);

      gst_message_parse_error (message, &err, &debug);
      GST_WARNING_OBJECT (self, "session %s: error from %s: %s (%s)", id,
          GST_MESSAGE_SRC_NAME (message), err->message, GST_STR_NULL (debug));
      e->self = self;
      e->id = id;
      e->why = g_strdup_printf ("its branch failed: %s", err->message);
      post (self, branch_error_cb, e, branch_error_free);
      gst_message_unref (message);
      return;
    }
  }

  GST_OBJECT_LOCK (self);
  if (self->recorder)
    ours = pcr_recorder_handle_message (self->recorder, message);
  GST_OBJECT_UNLOCK (self);
  if (ours) {
    gst_message_unref (message);
    return;
  }
  GST_BIN_CLASS (parent_class)->handle_message (bin, message);
}

static void
pcr_mqtt_webrtc_sink_finalize (GObject * object)
{
  PcrMqttWebrtcSink *self = PCR_MQTT_WEBRTC_SINK (object);
  guint i;

  for (i = 0; i < PCR_MAX_RENDITIONS; i++)
    g_clear_pointer (&self->renditions[i], pcr_rendition_free);
  g_clear_pointer (&self->snapshot, pcr_snapshot_free);
  g_free (self->record_dir);
  g_free (self->record_error);
  g_free (self->talkback);
  g_free (self->relay_url);
  g_free (self->relay_base);
  g_free (self->relay_error);
  g_main_context_unref (self->context);
  g_free (self->missing);
  g_free (self->broker_uri);
  g_free (self->username);
  g_free (self->password);
  g_free (self->ca_file);
  g_free (self->cert_file);
  g_free (self->key_file);
  g_free (self->device_id);
  g_free (self->topic_prefix);
  g_free (self->stun_server);
  g_free (self->turn_server);
  g_free (self->ice_addresses);
  g_free (self->camera_state);
  g_clear_object (&self->signaller);
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
  GST_BIN_CLASS (klass)->handle_message =
      GST_DEBUG_FUNCPTR (pcr_mqtt_webrtc_sink_handle_message);
  element_class->change_state =
      GST_DEBUG_FUNCPTR (pcr_mqtt_webrtc_sink_change_state);
  element_class->request_new_pad =
      GST_DEBUG_FUNCPTR (pcr_mqtt_webrtc_sink_request_new_pad);
  element_class->release_pad =
      GST_DEBUG_FUNCPTR (pcr_mqtt_webrtc_sink_release_pad);

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
   * mqttwebrtcsink:cert-file:
   *
   * PEM file of this device's client certificate (a chain allowed), for
   * brokers that authenticate devices by certificate (mosquitto's
   * require_certificate, AWS IoT Core). mqtts:// only; set together with
   * #mqttwebrtcsink:key-file. Checked when going to READY.
   */
  properties[PROP_CERT_FILE] = g_param_spec_string ("cert-file",
      "Certificate file", "Client certificate (PEM) for mqtts://, with "
      "key-file", NULL, rw);
  /**
   * mqttwebrtcsink:key-file:
   *
   * PEM file of the client certificate's private key, without a
   * passphrase. The element holds the path only, never the key.
   */
  properties[PROP_KEY_FILE] = g_param_spec_string ("key-file", "Key file",
      "The client certificate's private key (PEM, no passphrase)", NULL, rw);
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
   * Viewers now served (from offer to removal), directly or through the
   * relay (the relayed sessions' leases): what an application runs its
   * camera for. The status splits them ("viewers", "relay"."viewers").
   * Notified from the element's own thread.
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
  /**
   * mqttwebrtcsink:adaptive:
   *
   * Whether each viewer's bandwidth estimate (from its transport-wide
   * congestion control feedback and RTCP receiver reports) moves it
   * between the renditions (sink and sink_low) and steers the upstream
   * encoders' bitrates (x264enc, v4l2h264enc, openh264enc and others
   * found by walking upstream from each sink pad; a valve before the low
   * encoder is shut while no viewer needs it). FALSE: every viewer gets
   * the sink pad's stream at the bitrate the pipeline set.
   */
  properties[PROP_ADAPTIVE] = g_param_spec_boolean ("adaptive", "Adaptive",
      "Move viewers between renditions and steer the encoders' bitrates by "
      "each viewer's bandwidth estimate", DEFAULT_ADAPTIVE,
      rw | GST_PARAM_MUTABLE_PLAYING);
  /**
   * mqttwebrtcsink:fec:
   *
   * Forward error correction: with "auto" a viewer whose offer has
   * red/90000 and ulpfec/90000 (Chromium, Firefox and Safari offer them)
   * gets them in its answer, and FEC packets (RFC 5109 ULPFEC, carried in
   * RFC 2198 RED) once its loss, averaged over about 2 s, reaches 2 %:
   * three percent of FEC per percent of loss, between 10 and 50 %, off
   * again below 1 %. The FEC share comes out of the viewer's bandwidth
   * estimate, so its rendition's bitrate leaves room for it. It needs
   * #adaptive (the loss is measured there). "off", the default: no FEC,
   * the answer as without it (measured with Chromium, FEC by loss froze
   * the picture more than retransmission alone; docs/networks.md, "FEC").
   * Changing it applies to viewers that come later; "off" also stops the
   * FEC packets of those connected.
   */
  properties[PROP_FEC] = g_param_spec_enum ("fec", "FEC",
      "Forward error correction (ULPFEC/RED) for viewers that offer it: "
      "off, or auto (switched on and sized by each viewer's measured loss)",
      PCR_TYPE_FEC_MODE, DEFAULT_FEC, rw | GST_PARAM_MUTABLE_PLAYING);
  /**
   * mqttwebrtcsink:metrics-interval:
   *
   * Seconds between the device's metrics messages on P/D/metrics (not
   * retained; docs/signalling.md, "Metrics"): viewers, each rendition's
   * frames and bits per second as they came in, the encoder and source
   * (the factories of the pipeline's first video encoder and source),
   * camera restarts (#camera-state going from "error" back to "online"),
   * NACKs and retransmissions, the viewers' estimates. 0: none. Read when
   * going to READY.
   */
  properties[PROP_METRICS_INTERVAL] = g_param_spec_uint ("metrics-interval",
      "Metrics interval", "Seconds between metrics messages (0: none)", 0,
      PCR_METRICS_MAX_INTERVAL, DEFAULT_METRICS_INTERVAL, rw);
  /**
   * mqttwebrtcsink:signaller:
   *
   * How viewers reach the device: an object implementing the PcrSignaller
   * interface (plugins/mqttwebrtc/pcr-signaller.h). Unset, the default, the
   * element makes the MQTT one (docs/signalling.md) from #broker-uri,
   * #username, #password, #ca-file, #cert-file, #key-file, #topic-prefix
   * and #device-id when going
   * to READY; while it runs, this reads back the signaller in use.
   */
  /**
   * mqttwebrtcsink:snapshots:
   *
   * Viewers waiting for a still image (a "snapshot" message): while above
   * zero the camera must give frames to the snapshot pad. Notified from
   * the element's own thread.
   */
  properties[PROP_SNAPSHOTS] = g_param_spec_uint ("snapshots", "Snapshots",
      "Viewers waiting for a still image", 0, G_MAXUINT, 0,
      G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  /**
   * mqttwebrtcsink:record-dir:
   *
   * Where recorded segments go (fragmented MP4 of the main rendition's
   * encoded stream, docs/recording.md). Unset, the default: the device
   * does not record. Read when going to READY.
   */
  properties[PROP_RECORD_DIR] = g_param_spec_string ("record-dir",
      "Record directory", "Where recorded segments go (unset: no recording)",
      NULL, rw | GST_PARAM_MUTABLE_READY);
  properties[PROP_RECORD_SEGMENT_S] = g_param_spec_uint ("record-segment-s",
      "Segment length", "Seconds of video per recorded segment", 1,
      PCR_MAX_RECORD_SEGMENT_S, PCR_DEFAULT_RECORD_SEGMENT_S,
      rw | GST_PARAM_MUTABLE_READY);
  properties[PROP_RECORD_MAX_MB] = g_param_spec_uint ("record-max-mb",
      "Record size limit", "Megabytes of segments kept, the oldest deleted "
      "first (0: no limit)", 0, G_MAXUINT, PCR_DEFAULT_RECORD_MAX_MB,
      rw | GST_PARAM_MUTABLE_READY);
  properties[PROP_RECORD_MAX_AGE_H] = g_param_spec_uint ("record-max-age-h",
      "Record age limit", "Hours a segment is kept (0: no limit)", 0,
      G_MAXUINT, PCR_DEFAULT_RECORD_MAX_AGE_H, rw | GST_PARAM_MUTABLE_READY);
  /**
   * mqttwebrtcsink:recording:
   *
   * Set TRUE to record (with #record-dir set), FALSE to stop; viewers may
   * start and stop it too ("record" messages). Reads whether it records
   * now; notified from the element's own thread when that changes (a full
   * disk stops it).
   */
  properties[PROP_RECORDING] = g_param_spec_boolean ("recording",
      "Recording", "Record the stream (with record-dir set)", FALSE,
      rw | GST_PARAM_MUTABLE_PLAYING);
  /**
   * mqttwebrtcsink:control:
   *
   * Accept the data channel labelled "control" a viewer may offer: its
   * text messages (at most 16 KiB, 50 a second) are published on
   * P/D/control/from-viewer, and what is published on
   * P/D/control/to-viewers reaches the viewers' channels
   * (docs/audio-and-control.md). Off: the channel is closed at once.
   */
  properties[PROP_CONTROL] = g_param_spec_boolean ("control", "Control",
      "Accept viewers' \"control\" data channels, bridged to "
      "P/D/control/from-viewer and P/D/control/to-viewers", FALSE,
      rw | GST_PARAM_MUTABLE_READY);
  /**
   * mqttwebrtcsink:talkback:
   *
   * A gst-launch description of where talk-back goes (raw audio in), e.g.
   * "alsasink device=hw:1". Set: the first viewer whose offer sends Opus
   * audio is decoded into it, one at a time. Empty or NULL: no talk-back.
   */
  properties[PROP_TALKBACK] = g_param_spec_string ("talkback", "Talk-back",
      "Where one viewer's microphone plays: a sink description taking raw "
      "audio (e.g. \"alsasink device=hw:1\"); empty: off", NULL,
      rw | GST_PARAM_MUTABLE_READY);
  /**
   * mqttwebrtcsink:relay:
   *
   * A Janus server to publish the stream to, where any number of viewers
   * subscribe (docs/scaling.md):
   * `http://HOST:PORT/janus?room=N&adminkey=K&apisecret=S` (the room
   * defaults to a number derived from the device id; the VideoRoom admin
   * key, which also becomes the room's secret, and the API secret only when
   * Janus is set up with them). Relayed viewers ask with {"type":"relay"};
   * the status says where ("relay"). Empty: off.
   */
  properties[PROP_RELAY] = g_param_spec_string ("relay", "Relay",
      "A Janus VideoRoom to publish to: http://HOST:PORT/janus"
      "[?room=N&adminkey=K&apisecret=S]; empty: off", NULL,
      rw | GST_PARAM_MUTABLE_READY);
  /**
   * mqttwebrtcsink:relay-on-demand:
   *
   * Publish to the relay only while relayed viewers hold leases (and 5 s
   * after the last). FALSE: publish from start to stop.
   */
  properties[PROP_RELAY_ON_DEMAND] = g_param_spec_boolean ("relay-on-demand",
      "Relay on demand", "Publish to the relay only while relayed viewers "
      "watch", DEFAULT_RELAY_ON_DEMAND, rw | GST_PARAM_MUTABLE_READY);
  properties[PROP_SIGNALLER] = g_param_spec_object ("signaller", "Signaller",
      "How viewers reach the device (a PcrSignaller); unset: MQTT from the "
      "broker properties", PCR_TYPE_SIGNALLER, rw);
  g_object_class_install_properties (gobject_class, N_PROPERTIES, properties);
  gst_type_mark_as_plugin_api (PCR_TYPE_FEC_MODE, 0);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class,
      &sink_low_template);
  gst_element_class_add_static_pad_template (element_class,
      &snapshot_template);
  gst_element_class_add_static_pad_template (element_class,
      &sink_audio_template);
  gst_element_class_set_static_metadata (element_class,
      "MQTT-signalled WebRTC sink", "Sink/Network/WebRTC",
      "Serves an H.264 stream to any number of WebRTC viewers, signalled "
      "over MQTT. An optional second stream on the request pad sink_low "
      "(e.g. 640x360) is a low rendition: each viewer gets the one its "
      "link carries, switched at key frames (see the adaptive property). "
      "Raw frames on the request pad snapshot (those before the encoder) "
      "give viewers still images as JPEG. Opus on the request pad "
      "sink_audio goes to every viewer whose offer takes audio",
      "picamrtc developers");
}
