/* The camera service's pipeline runner. mqttwebrtcsink ("the sink") stays
 * PLAYING for the whole run: it holds the MQTT connection and answers
 * viewers. Every other top-level element ("the camera part") is held in NULL
 * with gst_element_set_locked_state() while nobody watches, started
 * downstream-first when the sink's "viewers" count rises above zero and
 * stopped again a few seconds after it falls back to zero. An ERROR from the
 * camera part stops it, marks the sink's camera-state "error" and retries
 * with a capped exponential backoff; an ERROR from the sink ends the run.
 * Everything here runs on the service's GMainContext; the sink's notify and
 * pad-added signals from streaming threads only post work to it. */
#include "pcr-service.h"
#include "pcr-select.h"
#include "pcr-systemd.h"

#include <glib-unix.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>

GST_DEBUG_CATEGORY_STATIC (pcr_service_debug);
#define GST_CAT_DEFAULT pcr_service_debug

G_DEFINE_QUARK (pcr-service-error-quark, pcr_service_error);

#define SINK_FACTORY "mqttwebrtcsink"
#define BACKOFF_FIRST 1         /* seconds */
#define BACKOFF_MAX 30
#define STABLE_SECONDS 10       /* running this long resets the backoff */

/* the sink's pads: the main rendition, the low one and the audio when
 * linked */
static const gchar *sink_pad_names[] = { "sink", "sink_low", "sink_audio" };

struct _PcrService
{
  GMainContext *context;
  GMainLoop *loop;

  GstElement *pipeline;
  GstElement *sink;             /* the mqttwebrtcsink */
  GstElement *sink_top;         /* the top-level element holding it */
  GPtrArray *camera;            /* start order: downstream first */

  gboolean on_demand;
  guint idle_stop_seconds;

  guint viewers;
  guint snapshots;              /* viewers waiting for a still image */
  gboolean recording;           /* the sink records: the camera runs */
  gboolean camera_running;
  const gchar *camera_state;    /* last value set on the sink */
  guint backoff;                /* seconds before the next restart */

  GSource *idle_stop_source;
  GSource *restart_source;
  GSource *stable_source;
  GSource *sigint_source;
  GSource *sigterm_source;
  GstBus *bus;                  /* watched while running */
  gulong viewers_handler;
  gulong snapshots_handler;
  gulong recording_handler;
  gboolean stopping;
  GSource *watchdog;            /* systemd keep-alive, or NULL */
  GSource *trim_source;         /* a pending malloc_trim after viewers left */
  gint camera_error;            /* atomic: set by a camera ERROR at post time */
  /* where the EOS of a failed camera stops, in front of each sink pad */
  GstPad *probe_pads[G_N_ELEMENTS (sink_pad_names)];
  gulong eos_probes[G_N_ELEMENTS (sink_pad_names)];
  gulong sync_error_handler;

  /* pad-added relinking, touched from streaming threads */
  GMutex links_lock;
  GHashTable *links;            /* GstElement* -> GPtrArray of peer GstPad* */

  gint exit_code;
};

static PcrService *
service_ref (PcrService * self)
{
  return g_atomic_rc_box_acquire (self);
}

static void
service_clear (PcrService * self)
{
  GST_DEBUG ("freeing the service and its pipeline");
  g_clear_pointer (&self->links, g_hash_table_unref);
  g_mutex_clear (&self->links_lock);
  g_clear_pointer (&self->camera, g_ptr_array_unref);
  gst_clear_object (&self->sink);
  gst_clear_object (&self->sink_top);
  gst_clear_object (&self->pipeline);
  g_clear_pointer (&self->loop, g_main_loop_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
}

static void
service_unref (gpointer data)
{
  g_atomic_rc_box_release_full (data, (GDestroyNotify) service_clear);
}

static void
service_unref_closure (gpointer data, GClosure * closure)
{
  service_unref (data);
}

static void
clear_source (GSource ** source)
{
  if (*source != NULL) {
    g_source_destroy (*source);
    g_clear_pointer (source, g_source_unref);
  }
}

/* Sources hold a reference on the service, so a callback never outlives
 * it. */
static GSource *
attach_source (PcrService * self, GSource * source, GSourceFunc func)
{
  g_source_set_callback (source, func, service_ref (self), service_unref);
  g_source_attach (source, self->context);
  return source;
}

static GSource *
add_timeout (PcrService * self, guint seconds, GSourceFunc func)
{
  return attach_source (self, g_timeout_source_new (seconds * 1000), func);
}

/* ---- sink properties --------------------------------------------------- */

/* Sets @name when the element has it; an element without it (an older build
 * or a stand-in) gets a warning rather than a critical. */
static void
set_sink_property (PcrService * self, const gchar * name, const GValue * value)
{
  GParamSpec *pspec;

  pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (self->sink), name);
  if (pspec == NULL || !(pspec->flags & G_PARAM_WRITABLE) ||
      !g_value_type_transformable (G_VALUE_TYPE (value), pspec->value_type)) {
    GST_WARNING_OBJECT (self->sink, "no writable property %s", name);
    g_warning ("%s has no property '%s'; not set", SINK_FACTORY, name);
    return;
  }
  g_object_set_property (G_OBJECT (self->sink), name, value);
}

static void
set_sink_string (PcrService * self, const gchar * name, const gchar * str)
{
  g_auto (GValue) value = G_VALUE_INIT;

  if (str == NULL)
    return;
  g_value_init (&value, G_TYPE_STRING);
  g_value_set_string (&value, str);
  set_sink_property (self, name, &value);
}

static void
set_sink_uint (PcrService * self, const gchar * name, guint v)
{
  g_auto (GValue) value = G_VALUE_INIT;

  g_value_init (&value, G_TYPE_UINT);
  g_value_set_uint (&value, v);
  set_sink_property (self, name, &value);
}

static void
configure_sink (PcrService * self, const PcrConfig * config)
{
  PcrMqttOptions mqtt;

  /* the broker options picamrtc --check connects with too */
  pcr_config_mqtt_options (config, &mqtt);
  set_sink_string (self, "broker-uri", mqtt.uri);
  set_sink_string (self, "username", mqtt.username);
  set_sink_string (self, "password", mqtt.password);
  set_sink_string (self, "ca-file", mqtt.ca_file);
  set_sink_string (self, "cert-file", mqtt.cert_file);
  set_sink_string (self, "key-file", mqtt.key_file);
  set_sink_string (self, "device-id", config->device);
  set_sink_string (self, "topic-prefix", config->topic_prefix);
  set_sink_uint (self, "max-viewers", config->max_viewers);
  set_sink_string (self, "stun-server", config->stun_server);
  set_sink_string (self, "turn-server", config->turn_server);
  /* an enum (auto, off), which a string GValue cannot set */
  if (g_object_class_find_property (G_OBJECT_GET_CLASS (self->sink), "fec"))
    gst_util_set_object_arg (G_OBJECT (self->sink), "fec",
        config->fec ? "auto" : "off");
  if (config->ice_addresses != NULL && config->ice_addresses[0] != NULL) {
    g_autofree gchar *joined = g_strjoinv (",", config->ice_addresses);

    set_sink_string (self, "ice-addresses", joined);
  }
  /* the generated description has them already; a --pipeline gets them
   * here (its audio is its own: "... ! opusenc ! sink.sink_audio") */
  if (config->relay != NULL) {
    g_auto (GValue) on_demand = G_VALUE_INIT;

    set_sink_string (self, "relay", config->relay);
    g_value_init (&on_demand, G_TYPE_BOOLEAN);
    g_value_set_boolean (&on_demand, config->on_demand);
    set_sink_property (self, "relay-on-demand", &on_demand);
  }
  if (config->control) {
    g_auto (GValue) on = G_VALUE_INIT;

    g_value_init (&on, G_TYPE_BOOLEAN);
    g_value_set_boolean (&on, TRUE);
    set_sink_property (self, "control", &on);
  }
  if (config->talkback != NULL) {
    g_autofree gchar *talkback = pcr_talkback_description (config->talkback);

    set_sink_string (self, "talkback", talkback);
  }
  if (config->record_dir != NULL) {
    set_sink_string (self, "record-dir", config->record_dir);
    set_sink_uint (self, "record-segment-s", config->record_segment_s);
    set_sink_uint (self, "record-max-mb", config->record_max_mb);
    set_sink_uint (self, "record-max-age-h", config->record_max_age_h);
    if (g_str_equal (config->record, "continuous"))
      g_object_set (self->sink, "recording", TRUE, NULL);
  }
}

static void
set_camera_state (PcrService * self, const gchar * state)
{
  if (g_strcmp0 (self->camera_state, state) == 0)
    return;
  self->camera_state = state;
  GST_INFO ("camera-state %s", state);
  if (g_object_class_find_property (G_OBJECT_GET_CLASS (self->sink),
          "camera-state") != NULL)
    g_object_set (self->sink, "camera-state", state, NULL);
}

/* ---- the camera part --------------------------------------------------- */

static void camera_failed (PcrService * self, const gchar * what);

static gboolean
on_stable (gpointer data)
{
  PcrService *self = data;

  GST_DEBUG ("camera ran %d s without error: backoff reset", STABLE_SECONDS);
  self->backoff = BACKOFF_FIRST;
  g_clear_pointer (&self->stable_source, g_source_unref);
  return G_SOURCE_REMOVE;
}

static gboolean
camera_start (PcrService * self)
{
  guint i;

  clear_source (&self->idle_stop_source);
  if (self->camera_running)
    return TRUE;

  GST_INFO ("starting the camera part (%u elements)", self->camera->len);
  self->camera_running = TRUE;
  g_atomic_int_set (&self->camera_error, 0);
  /* downstream first: a source must never push into a stopped element */
  for (i = 0; i < self->camera->len; i++) {
    GstElement *element = g_ptr_array_index (self->camera, i);

    gst_element_set_locked_state (element, FALSE);
    if (!gst_element_sync_state_with_parent (element)) {
      g_autofree gchar *what = g_strdup_printf ("cannot start %s",
          GST_ELEMENT_NAME (element));

      camera_failed (self, what);
      return FALSE;
    }
  }
  gst_bin_recalculate_latency (GST_BIN (self->pipeline));
  set_camera_state (self, "online");
  clear_source (&self->stable_source);
  self->stable_source = add_timeout (self, STABLE_SECONDS, on_stable);
  return TRUE;
}

static void
camera_stop (PcrService * self)
{
  guint i;

  clear_source (&self->idle_stop_source);
  clear_source (&self->stable_source);

  GST_INFO ("stopping the camera part");
  /* sources first, the reverse of the start order */
  for (i = self->camera->len; i > 0; i--) {
    GstElement *element = g_ptr_array_index (self->camera, i - 1);

    gst_element_set_locked_state (element, TRUE);
    gst_element_set_state (element, GST_STATE_NULL);
  }
  self->camera_running = FALSE;
}

static gboolean
camera_wanted (PcrService * self)
{
  return self->viewers > 0 || self->snapshots > 0 || self->recording ||
      !self->on_demand;
}

static gboolean
on_restart (gpointer data)
{
  PcrService *self = data;

  g_clear_pointer (&self->restart_source, g_source_unref);
  if (!camera_wanted (self)) {
    g_message ("camera: no viewers, not restarting until one comes");
    return G_SOURCE_REMOVE;
  }
  g_message ("camera: restarting");
  if (camera_start (self))
    g_message ("camera: restarted");
  return G_SOURCE_REMOVE;
}

/* Stops the camera part and retries after the backoff. Repeated errors of
 * one failure find the camera already stopped and change nothing. */
static void
camera_failed (PcrService * self, const gchar * what)
{
  if (!self->camera_running) {
    GST_DEBUG ("camera already stopped: %s", what);
    return;
  }
  set_camera_state (self, "error");
  camera_stop (self);

  if (!camera_wanted (self)) {
    g_message ("camera: stopped after the error; starts again with the next "
        "viewer");
    return;
  }
  g_message ("camera: restarting in %u s", self->backoff);
  clear_source (&self->restart_source);
  self->restart_source = add_timeout (self, self->backoff, on_restart);
  self->backoff = MIN (self->backoff * 2, BACKOFF_MAX);
}

static gboolean
on_idle_stop (gpointer data)
{
  PcrService *self = data;

  g_clear_pointer (&self->idle_stop_source, g_source_unref);
  if (!camera_wanted (self) && self->camera_running) {
    g_message ("camera: off (no viewers for %u s)", self->idle_stop_seconds);
    camera_stop (self);
  }
  return G_SOURCE_REMOVE;
}

/* Each viewer's webrtcbin brings its own threads (ICE, DTLS, RTP), and
 * glibc keeps what they freed in per-thread arenas: without a trim the RSS
 * of a camera that saw thousands of viewers creeps up although nothing
 * leaks. */
static gboolean
on_trim (gpointer data)
{
  PcrService *self = data;

  g_clear_pointer (&self->trim_source, g_source_unref);
#ifdef __GLIBC__
  malloc_trim (0);
#endif
  return G_SOURCE_REMOVE;
}

/* The camera runs while viewers watch or wait for a picture. */
static void
demand_changed (PcrService * self, guint viewers, guint snapshots,
    gboolean recording)
{
  if (viewers == self->viewers && snapshots == self->snapshots &&
      recording == self->recording)
    return;
  if (recording != self->recording)
    g_message ("recording: %s", recording ? "on" : "off");
  if (viewers != self->viewers) {
    g_message ("viewers: %u", viewers);
    if (viewers < self->viewers && self->trim_source == NULL)
      self->trim_source = add_timeout (self, 2, on_trim);
    pcr_systemd_status ("serving, %u viewer%s", viewers, viewers == 1 ? "" :
        "s");
  }
  GST_INFO ("viewers %u, waiting for a picture %u", viewers, snapshots);
  self->viewers = viewers;
  self->snapshots = snapshots;
  self->recording = recording;

  if (viewers > 0 || snapshots > 0 || recording) {
    clear_source (&self->idle_stop_source);
    /* during a backoff the pending restart starts it */
    if (!self->camera_running && self->restart_source == NULL) {
      g_message ("camera: on%s", viewers > 0 ? "" : recording ?
          " (to record)" : " (for a still image)");
      camera_start (self);
    }
  } else if (self->on_demand && self->camera_running &&
      self->idle_stop_source == NULL) {
    self->idle_stop_source = add_timeout (self, self->idle_stop_seconds,
        on_idle_stop);
  }
}

static gboolean
on_viewers_idle (gpointer data)
{
  PcrService *self = data;
  guint viewers = 0, snapshots = 0;
  gboolean recording = FALSE;

  if (!self->stopping) {
    g_object_get (self->sink, "viewers", &viewers, NULL);
    if (self->snapshots_handler != 0)
      g_object_get (self->sink, "snapshots", &snapshots, "recording",
          &recording, NULL);
    demand_changed (self, viewers, snapshots, recording);
  }
  return G_SOURCE_REMOVE;
}

/* Called on the element's own thread: only post to the main context. */
static void
on_notify_viewers (GObject * object, GParamSpec * pspec, gpointer data)
{
  PcrService *self = data;
  GSource *source = g_idle_source_new ();

  g_source_set_priority (source, G_PRIORITY_HIGH);
  attach_source (self, source, on_viewers_idle);
  g_source_unref (source);
}

/* gst_parse links a dynamic pad (decodebin's) only once: after a restart the
 * new pad would stay unlinked. Remember each first link and redo it. Runs on
 * a streaming thread and only touches pads. */
static void
on_pad_added (GstElement * element, GstPad * pad, gpointer data)
{
  PcrService *self = data;
  GPtrArray *peers;

  if (GST_PAD_DIRECTION (pad) != GST_PAD_SRC)
    return;

  g_mutex_lock (&self->links_lock);
  peers = g_hash_table_lookup (self->links, element);
  if (gst_pad_is_linked (pad)) {
    GstPad *peer = gst_pad_get_peer (pad);

    if (peer != NULL && !g_ptr_array_find (peers, peer, NULL)) {
      GST_DEBUG_OBJECT (element, "remembering link %" GST_PTR_FORMAT " -> %"
          GST_PTR_FORMAT, pad, peer);
      g_ptr_array_add (peers, gst_object_ref (peer));
    }
    gst_clear_object (&peer);
  } else {
    guint i;

    for (i = 0; i < peers->len; i++) {
      GstPad *peer = g_ptr_array_index (peers, i);

      if (!gst_pad_is_linked (peer) &&
          GST_PAD_LINK_SUCCESSFUL (gst_pad_link (pad, peer))) {
        GST_DEBUG_OBJECT (element, "relinked %" GST_PTR_FORMAT " -> %"
            GST_PTR_FORMAT, pad, peer);
        break;
      }
    }
  }
  g_mutex_unlock (&self->links_lock);
}

static gboolean
has_sometimes_src_pads (GstElement * element)
{
  GList *l;

  for (l = gst_element_class_get_pad_template_list (GST_ELEMENT_GET_CLASS
          (element)); l != NULL; l = l->next) {
    GstPadTemplate *templ = l->data;

    if (GST_PAD_TEMPLATE_DIRECTION (templ) == GST_PAD_SRC &&
        GST_PAD_TEMPLATE_PRESENCE (templ) == GST_PAD_SOMETIMES)
      return TRUE;
  }
  return FALSE;
}

/* ---- set-up ------------------------------------------------------------ */

/* A tick source (audiotestsrc wave=ticks) ticks at its first sample, which
 * a live source stamps with the running time it starts at: the test
 * pattern's flash (latencystamp flash=true) is told that phase, so flash
 * and beep mark the same instants (a lip-sync test lines them up). Timestamps
 * stay as they are: they are the capture times the viewer syncs by.
 * Recomputed at each start (a new segment). */
typedef struct
{
  guint64 interval;
  GstSegment segment;
  gboolean first;
  GPtrArray *flashes;           /* latencystamp elements with flash=true */
} TickAlign;

static void
tick_align_free (gpointer data)
{
  TickAlign *align = data;

  g_ptr_array_unref (align->flashes);
  g_free (align);
}

static GstPadProbeReturn
on_tick_data (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  TickAlign *align = data;
  GstBuffer *buffer;
  GstClockTime pts;

  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);

    if (GST_EVENT_TYPE (event) == GST_EVENT_SEGMENT) {
      gst_event_copy_segment (event, &align->segment);
      align->first = TRUE;
    }
    return GST_PAD_PROBE_OK;
  }
  buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  pts = GST_BUFFER_PTS (buffer);
  if (!GST_CLOCK_TIME_IS_VALID (pts) ||
      align->segment.format != GST_FORMAT_TIME)
    return GST_PAD_PROBE_OK;
  if (align->first) {
    GstClockTime running = gst_segment_to_running_time (&align->segment,
        GST_FORMAT_TIME, pts);
    guint64 phase = pcr_tick_phase (running, align->interval);
    guint i;

    align->first = FALSE;
    GST_INFO_OBJECT (pad, "ticks from %" GST_TIME_FORMAT ": the flash at "
        "%" G_GUINT64_FORMAT " ns past each second", GST_TIME_ARGS (running),
        phase);
    for (i = 0; i < align->flashes->len; i++)
      g_object_set (g_ptr_array_index (align->flashes, i), "flash-phase",
          phase, NULL);
  }
  return GST_PAD_PROBE_OK;
}

static gboolean
is_tick_source (GstElement * element)
{
  GstElementFactory *factory = gst_element_get_factory (element);
  GParamSpec *pspec;
  GEnumValue *value;
  gint wave = 0;

  if (factory == NULL ||
      !g_str_equal (GST_OBJECT_NAME (factory), "audiotestsrc"))
    return FALSE;
  pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (element),
      "wave");
  if (pspec == NULL || !G_IS_PARAM_SPEC_ENUM (pspec))
    return FALSE;
  g_object_get (element, "wave", &wave, NULL);
  value = g_enum_get_value (G_PARAM_SPEC_ENUM (pspec)->enum_class, wave);
  return value != NULL && g_str_equal (value->value_nick, "ticks");
}

/* The pipeline's latencystamp elements with flash=true. */
static GPtrArray *
find_flashes (GstElement * pipeline)
{
  GPtrArray *flashes = g_ptr_array_new_with_free_func (gst_object_unref);
  GstIterator *it = gst_bin_iterate_recurse (GST_BIN (pipeline));
  GValue item = G_VALUE_INIT;

  while (gst_iterator_next (it, &item) == GST_ITERATOR_OK) {
    GstElement *element = g_value_get_object (&item);
    GstElementFactory *factory = gst_element_get_factory (element);
    gboolean flash = FALSE;

    if (factory && g_str_equal (GST_OBJECT_NAME (factory), "latencystamp")) {
      g_object_get (element, "flash", &flash, NULL);
      if (flash)
        g_ptr_array_add (flashes, gst_object_ref (element));
    }
    g_value_reset (&item);
  }
  g_value_unset (&item);
  gst_iterator_free (it);
  return flashes;
}

static void
align_ticks (GstElement * element, GstElement * pipeline)
{
  g_autoptr (GstPad) pad = gst_element_get_static_pad (element, "src");
  TickAlign *align;

  if (pad == NULL)
    return;
  align = g_new0 (TickAlign, 1);
  g_object_get (element, "tick-interval", &align->interval, NULL);
  gst_segment_init (&align->segment, GST_FORMAT_UNDEFINED);
  align->flashes = find_flashes (pipeline);
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER |
      GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_tick_data, align,
      tick_align_free);
  GST_DEBUG_OBJECT (element, "ticks every %" G_GUINT64_FORMAT " ns, %u "
      "flashes to follow them", align->interval, align->flashes->len);
}

static GstElement *toplevel_of (GstElement * pipeline, GstObject * object);

/* Runs on the thread that posts the ERROR, before the failing source pushes
 * the EOS that follows a flow error: only sets a flag. */
static void
on_sync_error (GstBus * bus, GstMessage * msg, gpointer data)
{
  PcrService *self = data;
  g_autoptr (GstElement) top = toplevel_of (self->pipeline,
      GST_MESSAGE_SRC (msg));

  if (top != NULL && top != self->sink_top)
    g_atomic_int_set (&self->camera_error, 1);
}

/* A failing camera ends its stream with EOS. Passed on, the sink would end
 * every viewer's stream (RTCP BYE) and the service would exit; only an EOS
 * of a healthy camera (a finite source) goes through. */
static GstPadProbeReturn
on_sink_event (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  PcrService *self = data;
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);

  if (GST_EVENT_TYPE (event) == GST_EVENT_EOS &&
      g_atomic_int_get (&self->camera_error)) {
    GST_INFO ("dropping the EOS of a failed camera");
    return GST_PAD_PROBE_DROP;
  }
  return GST_PAD_PROBE_OK;
}

/* The direct child of the pipeline that holds @object, or NULL when @object
 * is the pipeline itself or outside it. */
static GstElement *
toplevel_of (GstElement * pipeline, GstObject * object)
{
  GstObject *cur = gst_object_ref (object);

  while (cur != NULL) {
    GstObject *parent = gst_object_get_parent (cur);

    if (parent == GST_OBJECT (pipeline)) {
      gst_object_unref (parent);
      if (GST_IS_ELEMENT (cur))
        return GST_ELEMENT (cur);
      gst_object_unref (cur);
      return NULL;
    }
    gst_object_unref (cur);
    cur = parent;
  }
  return NULL;
}

static gboolean
is_sink_factory (GstElement * element)
{
  GstElementFactory *factory = gst_element_get_factory (element);

  return factory != NULL &&
      g_str_equal (GST_OBJECT_NAME (factory), SINK_FACTORY);
}

static gint
find_sink_factory (gconstpointer item, gconstpointer unused)
{
  GstElement *element = g_value_get_object (item);

  return is_sink_factory (element) ? 0 : 1;
}

/* The element named "sink" when it is an mqttwebrtcsink, else the first
 * mqttwebrtcsink anywhere in the pipeline. */
static GstElement *
find_sink (GstElement * pipeline)
{
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GstIterator *it;
  GValue found = G_VALUE_INIT;

  if (sink != NULL && is_sink_factory (sink))
    return sink;
  gst_clear_object (&sink);

  it = gst_bin_iterate_recurse (GST_BIN (pipeline));
  if (gst_iterator_find_custom (it, find_sink_factory, &found, NULL)) {
    sink = g_value_dup_object (&found);
    g_value_unset (&found);
  }
  gst_iterator_free (it);
  return sink;
}

/* Top-level elements but the sink's, sinks first and sources last (see
 * gst_bin_iterate_sorted), then every source moved to the end. */
static GPtrArray *
collect_camera (GstElement * pipeline, GstElement * sink_top)
{
  g_autoptr (GPtrArray) others = NULL;
  g_autoptr (GPtrArray) sources = NULL;
  GstIterator *it = gst_bin_iterate_sorted (GST_BIN (pipeline));
  GValue item = G_VALUE_INIT;
  gboolean done = FALSE;
  guint i;

  others = g_ptr_array_new_with_free_func (gst_object_unref);
  sources = g_ptr_array_new_with_free_func (gst_object_unref);
  while (!done) {
    switch (gst_iterator_next (it, &item)) {
      case GST_ITERATOR_OK:{
        GstElement *element = g_value_get_object (&item);

        if (element != sink_top) {
          g_ptr_array_add (GST_OBJECT_FLAG_IS_SET (element,
                  GST_ELEMENT_FLAG_SOURCE) ? sources : others,
              gst_object_ref (element));
        }
        g_value_reset (&item);
        break;
      }
      case GST_ITERATOR_RESYNC:
        g_ptr_array_set_size (others, 0);
        g_ptr_array_set_size (sources, 0);
        gst_iterator_resync (it);
        break;
      default:
        done = TRUE;
        break;
    }
  }
  g_value_unset (&item);
  gst_iterator_free (it);

  for (i = 0; i < sources->len; i++)
    g_ptr_array_add (others, gst_object_ref (g_ptr_array_index (sources, i)));
  return g_steal_pointer (&others);
}

static gchar *
missing_list (GstParseContext * ctx)
{
  g_auto (GStrv) missing = gst_parse_context_get_missing_elements (ctx);

  if (missing == NULL || missing[0] == NULL)
    return NULL;
  return pcr_describe_missing_elements ((const gchar * const *) missing);
}

PcrService *
pcr_service_new (const PcrConfig * config, const gchar * description,
    GError ** error)
{
  g_autoptr (GstParseContext) ctx = gst_parse_context_new ();
  g_autoptr (GError) local = NULL;
  PcrService *self;
  GstElement *parsed;
  guint i;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (description != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  GST_DEBUG_CATEGORY_INIT (pcr_service_debug, "picamrtc", 0,
      "picamrtc camera service");

  parsed = gst_parse_launch_full (description, ctx,
      GST_PARSE_FLAG_FATAL_ERRORS, &local);
  if (parsed == NULL) {
    g_autofree gchar *missing = missing_list (ctx);

    if (missing != NULL) {
      g_set_error (error, PCR_SERVICE_ERROR,
          PCR_SERVICE_ERROR_MISSING_ELEMENT,
          "the pipeline needs elements that are not installed: %s", missing);
    } else {
      g_set_error (error, PCR_SERVICE_ERROR, PCR_SERVICE_ERROR_PARSE,
          "the pipeline does not parse: %s", local->message);
    }
    return NULL;
  }

  self = g_atomic_rc_box_new0 (PcrService);
  self->context = g_main_context_ref_thread_default ();
  self->loop = g_main_loop_new (self->context, FALSE);
  g_mutex_init (&self->links_lock);
  self->links = g_hash_table_new_full (NULL, NULL, NULL,
      (GDestroyNotify) g_ptr_array_unref);
  self->on_demand = config->on_demand;
  self->idle_stop_seconds = config->idle_stop_seconds;
  self->backoff = BACKOFF_FIRST;

  /* one element alone comes back bare: put it in a pipeline */
  if (GST_IS_PIPELINE (parsed)) {
    self->pipeline = gst_object_ref_sink (parsed);
  } else {
    self->pipeline = gst_object_ref_sink (gst_pipeline_new (NULL));
    gst_bin_add (GST_BIN (self->pipeline), parsed);
  }
  gst_object_set_name (GST_OBJECT (self->pipeline), "picamrtc");

  self->sink = find_sink (self->pipeline);
  if (self->sink == NULL) {
    g_set_error (error, PCR_SERVICE_ERROR, PCR_SERVICE_ERROR_NO_SINK,
        "the pipeline has no " SINK_FACTORY);
    service_unref (self);
    return NULL;
  }
  self->sink_top = toplevel_of (self->pipeline, GST_OBJECT (self->sink));
  self->camera = collect_camera (self->pipeline, self->sink_top);

  for (i = 0; i < self->camera->len; i++) {
    GstElement *element = g_ptr_array_index (self->camera, i);

    GST_DEBUG ("camera element %u: %s", i, GST_ELEMENT_NAME (element));
    /* a bin that prerolls (decodebin) started in a PLAYING pipeline would
     * make the whole pipeline lose its state and wait for a preroll the
     * still stopped live source never delivers: let it handle that alone */
    if (GST_IS_BIN (element))
      g_object_set (element, "async-handling", TRUE, NULL);
    if (is_tick_source (element))
      align_ticks (element, self->pipeline);
    if (has_sometimes_src_pads (element)) {
      g_hash_table_insert (self->links, element,
          g_ptr_array_new_with_free_func (gst_object_unref));
      /* connected after gst_parse's own handler, so it sees that link */
      g_signal_connect_data (element, "pad-added", G_CALLBACK (on_pad_added),
          service_ref (self), service_unref_closure, 0);
    }
  }

  for (i = 0; i < G_N_ELEMENTS (sink_pad_names); i++) {
    g_autoptr (GstPad) pad = gst_element_get_static_pad (self->sink,
        sink_pad_names[i]);

    /* on the camera side of the link, so the sink never sees that EOS */
    if (pad == NULL)
      continue;
    self->probe_pads[i] = gst_pad_get_peer (pad);
    if (self->probe_pads[i] == NULL)
      self->probe_pads[i] = g_steal_pointer (&pad);
    self->eos_probes[i] = gst_pad_add_probe (self->probe_pads[i],
        GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_sink_event,
        service_ref (self), service_unref);
  }

  {
    g_autoptr (GstBus) bus = gst_element_get_bus (self->pipeline);

    gst_bus_enable_sync_message_emission (bus);
    self->sync_error_handler = g_signal_connect_data (bus,
        "sync-message::error", G_CALLBACK (on_sync_error),
        service_ref (self), service_unref_closure, 0);
  }

  configure_sink (self, config);
  return self;
}

/* ---- running ----------------------------------------------------------- */

static void
quit (PcrService * self, gint exit_code)
{
  self->exit_code = exit_code;
  g_main_loop_quit (self->loop);
}

static void
handle_error (PcrService * self, GstMessage * msg)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *debug = NULL;
  g_autoptr (GstElement) top = NULL;
  const gchar *src = GST_MESSAGE_SRC_NAME (msg);

  gst_message_parse_error (msg, &err, &debug);
  GST_DEBUG_BIN_TO_DOT_FILE_WITH_TS (GST_BIN (self->pipeline),
      GST_DEBUG_GRAPH_SHOW_ALL, "picamrtc-error");

  top = toplevel_of (self->pipeline, GST_MESSAGE_SRC (msg));
  if (top == NULL || top == self->sink_top) {
    g_warning ("error from %s: %s (%s)", src ? src : "the pipeline",
        err->message, debug ? debug : "no details");
    quit (self, 1);
    return;
  }

  if (self->camera_running) {
    g_warning ("camera error from %s: %s (%s)", src, err->message,
        debug ? debug : "no details");
    camera_failed (self, err->message);
  } else {
    GST_DEBUG ("late error from the stopped camera: %s", err->message);
  }
}

static gboolean
on_bus_message (GstBus * bus, GstMessage * msg, gpointer data)
{
  PcrService *self = data;

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR:
      handle_error (self, msg);
      break;
    case GST_MESSAGE_WARNING:{
      g_autoptr (GError) err = NULL;

      gst_message_parse_warning (msg, &err, NULL);
      g_warning ("warning from %s: %s", GST_MESSAGE_SRC_NAME (msg),
          err->message);
      break;
    }
    case GST_MESSAGE_EOS:
      g_message ("end of stream");
      quit (self, 0);
      break;
    case GST_MESSAGE_LATENCY:
      gst_bin_recalculate_latency (GST_BIN (self->pipeline));
      break;
    case GST_MESSAGE_STATE_CHANGED:
      if (GST_MESSAGE_SRC (msg) == GST_OBJECT (self->pipeline)) {
        GstState old, state;

        gst_message_parse_state_changed (msg, &old, &state, NULL);
        GST_INFO ("pipeline %s -> %s", gst_element_state_get_name (old),
            gst_element_state_get_name (state));
      }
      break;
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_signal (gpointer data)
{
  PcrService *self = data;

  g_message ("stopping on a signal");
  quit (self, 0);
  return G_SOURCE_CONTINUE;
}

static void
teardown (PcrService * self)
{
  guint i;

  pcr_systemd_stop (g_steal_pointer (&self->watchdog));
  clear_source (&self->idle_stop_source);
  clear_source (&self->restart_source);
  clear_source (&self->stable_source);
  clear_source (&self->trim_source);
  clear_source (&self->sigint_source);
  clear_source (&self->sigterm_source);
  if (self->bus != NULL) {
    gst_bus_remove_watch (self->bus);
    gst_clear_object (&self->bus);
  }
  self->stopping = TRUE;

  /* unlocked, the camera part follows the pipeline to NULL; the sink says
   * bye to every viewer and publishes offline */
  for (i = 0; i < self->camera->len; i++)
    gst_element_set_locked_state (g_ptr_array_index (self->camera, i), FALSE);
  gst_element_set_state (self->pipeline, GST_STATE_NULL);

  if (self->snapshots_handler != 0) {
    g_signal_handler_disconnect (self->sink, self->snapshots_handler);
    self->snapshots_handler = 0;
  }
  if (self->recording_handler != 0) {
    g_signal_handler_disconnect (self->sink, self->recording_handler);
    self->recording_handler = 0;
  }
  if (self->viewers_handler != 0) {
    g_signal_handler_disconnect (self->sink, self->viewers_handler);
    self->viewers_handler = 0;
  }
  /* run what the element's thread posted before it stopped */
  while (g_main_context_iteration (self->context, FALSE));
}

gint
pcr_service_run (PcrService * service)
{
  PcrService *self = service;
  GstStateChangeReturn ret;
  guint i;

  g_return_val_if_fail (self != NULL, 1);

  g_main_context_push_thread_default (self->context);

  self->bus = gst_element_get_bus (self->pipeline);
  gst_bus_add_watch (self->bus, on_bus_message, self);
  self->sigint_source = attach_source (self, g_unix_signal_source_new (SIGINT),
      on_signal);
  self->sigterm_source = attach_source (self,
      g_unix_signal_source_new (SIGTERM), on_signal);

  if (g_object_class_find_property (G_OBJECT_GET_CLASS (self->sink),
          "viewers") != NULL) {
    self->viewers_handler = g_signal_connect (self->sink, "notify::viewers",
        G_CALLBACK (on_notify_viewers), self);
    if (g_object_class_find_property (G_OBJECT_GET_CLASS (self->sink),
            "snapshots") != NULL)
      self->snapshots_handler = g_signal_connect (self->sink,
          "notify::snapshots", G_CALLBACK (on_notify_viewers), self);
    if (g_object_class_find_property (G_OBJECT_GET_CLASS (self->sink),
            "recording") != NULL)
      self->recording_handler = g_signal_connect (self->sink,
          "notify::recording", G_CALLBACK (on_notify_viewers), self);
  } else if (self->on_demand) {
    g_warning ("%s has no 'viewers' property: the camera runs always",
        SINK_FACTORY);
    self->on_demand = FALSE;
  }

  /* the sink alone comes up; the camera part waits in NULL */
  for (i = 0; i < self->camera->len; i++) {
    GstElement *element = g_ptr_array_index (self->camera, i);

    gst_element_set_locked_state (element, TRUE);
    gst_element_set_state (element, GST_STATE_NULL);
  }
  set_camera_state (self, "online");

  ret = gst_element_set_state (self->pipeline, GST_STATE_PLAYING);
  if (ret == GST_STATE_CHANGE_FAILURE) {
    /* the bus holds the reason */
    g_autoptr (GstMessage) msg = gst_bus_pop_filtered (self->bus,
        GST_MESSAGE_ERROR);

    if (msg != NULL) {
      handle_error (self, msg);
    } else {
      g_warning ("the pipeline does not start");
    }
    self->exit_code = 1;
    teardown (self);
    g_main_context_pop_thread_default (self->context);
    return self->exit_code;
  }

  /* The sink is up and dialling the broker: systemd may count us started,
   * and the watchdog ticks from this loop from now on. */
  self->watchdog = pcr_systemd_ready (self->context, "serving, no viewers");

  if (self->on_demand) {
    g_message ("camera: on demand (off until a viewer comes, off again %u s "
        "after the last one leaves)", self->idle_stop_seconds);
    if (self->viewers_handler != 0)
      on_viewers_idle (self);
  } else {
    g_message ("camera: always on");
    camera_start (self);
  }

  g_main_loop_run (self->loop);

  teardown (self);
  g_main_context_pop_thread_default (self->context);
  return self->exit_code;
}

/* Drops the references the pipeline's probe and handlers hold, so the last
 * unref below frees the pipeline. */
void
pcr_service_free (PcrService * service)
{
  PcrService *self = service;
  g_autoptr (GstBus) bus = NULL;
  guint i;

  if (self == NULL)
    return;

  for (i = 0; i < G_N_ELEMENTS (self->probe_pads); i++) {
    if (self->probe_pads[i] != NULL) {
      gst_pad_remove_probe (self->probe_pads[i], self->eos_probes[i]);
      gst_clear_object (&self->probe_pads[i]);
    }
  }
  bus = gst_element_get_bus (self->pipeline);
  if (self->sync_error_handler != 0) {
    g_signal_handler_disconnect (bus, self->sync_error_handler);
    gst_bus_disable_sync_message_emission (bus);
    self->sync_error_handler = 0;
  }
  for (i = 0; i < self->camera->len; i++) {
    g_signal_handlers_disconnect_by_func (g_ptr_array_index (self->camera,
            i), on_pad_added, self);
  }
  service_unref (self);
}
