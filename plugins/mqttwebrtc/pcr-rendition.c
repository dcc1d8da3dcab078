/* One rendition of mqttwebrtcsink: see pcr-rendition.h.
 *
 * ```
 * sink[_low] -> capsfilter -> h264parse -> tee -+-> fakesink (keeps EOS and the tee)
 *             (baseline)  (config-interval=-1)  '-> viewers' branches
 *                 ^ force-key-unit requests, rate-limited on h264parse's src
 * ```
 */
#include "config.h"

#include "pcr-rendition.h"

#include <string.h>
#include <gst/video/video.h>

GST_DEBUG_CATEGORY_STATIC (pcr_rendition_debug);
#define GST_CAT_DEFAULT pcr_rendition_debug

/* Every browser decodes constrained baseline (Firefox's OpenH264 nothing
 * else), and it has no B-frames. Saying so in a capsfilter makes an
 * encoder that follows downstream caps produce it: a bare x264enc would
 * otherwise pick High 4:4:4, which no browser decodes. */
#define SINK_CAPS "video/x-h264, stream-format=(string)byte-stream, " \
    "alignment=(string)au, profile=(string){ constrained-baseline, baseline }"

/* A new key frame at most this often per rendition, however many viewers
 * ask. */
#define KEY_UNIT_INTERVAL_US (500 * G_TIME_SPAN_MILLISECOND)
/* How far upstream of the sink pad the encoder and valve are looked for. */
#define MAX_UPSTREAM_HOPS 16
/* Encoder bitrate changes smaller than this fraction are not made: each
 * one costs x264 a reconfiguration and the estimate moves all the time. */
#define BITRATE_STEP 0.05

typedef enum
{
  UNIT_NONE,
  UNIT_KBPS,                    /* "bitrate" in kbit/s */
  UNIT_BPS,                     /* "bitrate" in bit/s */
  UNIT_V4L2,                    /* extra-controls video_bitrate, bit/s */
} BitrateUnit;

/* The encoders whose bitrate can change while they run, and how. */
static const struct
{
  const gchar *factory;
  BitrateUnit unit;
} encoders[] = {
  {"x264enc", UNIT_KBPS},
  {"openh264enc", UNIT_BPS},
  {"v4l2h264enc", UNIT_V4L2},
  {"vaapih264enc", UNIT_KBPS},
  {"vah264enc", UNIT_KBPS},
  {"nvh264enc", UNIT_KBPS},
  {"qsvh264enc", UNIT_KBPS},
};

struct _PcrRendition
{
  GstBin *bin;
  gchar *name;
  GMainContext *context;
  GstElement *filter, *parse, *tee, *fakesink;
  GstPad *pad, *parse_src;
  gulong probe;
  PcrRenditionCapsFunc caps_changed;
  gpointer user_data;

  /* under lock: written by the probe on h264parse's src pad */
  GMutex lock;
  PcrStreamInfo info;
  gint64 last_key_unit_us;

  /* context thread */
  GSource *key_unit_timer;
  gboolean looked_upstream;
  GWeakRef encoder, valve;
  BitrateUnit unit;
  guint max_bps, bitrate_bps;
  gboolean needed;
};

static GstElement *
make_child (const gchar * factory, gchar ** missing)
{
  GstElement *element = gst_element_factory_make (factory, NULL);

  if (!element && !*missing)
    *missing = g_strdup (factory);
  return element;
}

static GstPadProbeReturn
parse_src_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  PcrRendition *self = user_data;
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);

  if (GST_EVENT_TYPE (event) == GST_EVENT_CAPS) {
    GstCaps *caps;
    GstStructure *s;
    PcrStreamInfo now = { 0 };
    gboolean changed;

    gst_event_parse_caps (event, &caps);
    s = gst_caps_get_structure (caps, 0);
    gst_structure_get_int (s, "width", &now.width);
    gst_structure_get_int (s, "height", &now.height);
    gst_structure_get_fraction (s, "framerate", &now.fps_n, &now.fps_d);
    now.profile = pcr_h264_profile_from_string (gst_structure_get_string (s,
            "profile"));
    g_mutex_lock (&self->lock);
    changed = memcmp (&now, &self->info, sizeof (now)) != 0;
    self->info = now;
    g_mutex_unlock (&self->lock);
    if (changed && self->caps_changed)
      self->caps_changed (self, self->user_data);
  } else if (GST_EVENT_TYPE (event) == GST_EVENT_CUSTOM_UPSTREAM &&
      gst_video_event_is_force_key_unit (event)) {
    /* Only requests count: the downstream event that marks the key frame
     * itself passes untouched and does not restart the window. */
    gint64 now = g_get_monotonic_time ();
    gboolean drop;

    g_mutex_lock (&self->lock);
    drop = self->last_key_unit_us != 0 &&
        now - self->last_key_unit_us < KEY_UNIT_INTERVAL_US;
    if (!drop)
      self->last_key_unit_us = now;
    g_mutex_unlock (&self->lock);
    GST_DEBUG_OBJECT (self->bin, "%s: %s key unit request", self->name,
        drop ? "dropping" : "forwarding");
    if (drop)
      return GST_PAD_PROBE_DROP;
  }
  return GST_PAD_PROBE_OK;
}

PcrRendition *
pcr_rendition_new (GstBin * bin, GstPadTemplate * templ,
    const gchar * pad_name, GMainContext * context,
    PcrRenditionCapsFunc caps_changed, gpointer user_data, gchar ** missing)
{
  static gsize debug_done = 0;
  PcrRendition *self = g_new0 (PcrRendition, 1);

  if (g_once_init_enter (&debug_done)) {
    GST_DEBUG_CATEGORY_INIT (pcr_rendition_debug, "pcrrendition", 0,
        "mqttwebrtcsink's renditions");
    g_once_init_leave (&debug_done, 1);
  }
  self->bin = bin;
  self->name = g_strdup (pad_name);
  self->context = context;
  self->caps_changed = caps_changed;
  self->user_data = user_data;
  g_mutex_init (&self->lock);
  g_weak_ref_init (&self->encoder, NULL);
  g_weak_ref_init (&self->valve, NULL);
  self->needed = TRUE;

  self->filter = make_child ("capsfilter", missing);
  self->parse = make_child ("h264parse", missing);
  self->tee = make_child ("tee", missing);
  self->fakesink = make_child ("fakesink", missing);
  if (self->filter && self->parse && self->tee && self->fakesink) {
    GstCaps *caps = gst_caps_from_string (SINK_CAPS);
    GstPad *target;

    g_object_set (self->filter, "caps", caps, NULL);
    gst_caps_unref (caps);
    g_object_set (self->parse, "config-interval", -1, NULL);
    g_object_set (self->tee, "allow-not-linked", TRUE, NULL);
    g_object_set (self->fakesink, "sync", FALSE, "async", FALSE,
        "enable-last-sample", FALSE, NULL);
    gst_bin_add_many (bin, gst_object_ref (self->filter),
        gst_object_ref (self->parse), gst_object_ref (self->tee),
        gst_object_ref (self->fakesink), NULL);
    gst_element_link_many (self->filter, self->parse, self->tee,
        self->fakesink, NULL);
    self->parse_src = gst_element_get_static_pad (self->parse, "src");
    self->probe = gst_pad_add_probe (self->parse_src,
        GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM |
        GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, parse_src_probe, self, NULL);
    target = gst_element_get_static_pad (self->filter, "sink");
    self->pad = gst_ghost_pad_new_from_template (pad_name, target, templ);
    gst_object_unref (target);
  } else {
    gst_clear_object (&self->filter);
    gst_clear_object (&self->parse);
    gst_clear_object (&self->tee);
    gst_clear_object (&self->fakesink);
    self->pad = gst_ghost_pad_new_no_target_from_template (pad_name, templ);
  }
  gst_object_ref (self->pad);
  gst_element_add_pad (GST_ELEMENT (bin), self->pad);
  return self;
}

void
pcr_rendition_stop (PcrRendition * self)
{
  if (self->key_unit_timer) {
    g_source_destroy (self->key_unit_timer);
    g_clear_pointer (&self->key_unit_timer, g_source_unref);
  }
}

void
pcr_rendition_free (PcrRendition * self)
{
  GstElement *children[] = { self->filter, self->parse, self->tee,
    self->fakesink
  };
  guint i;

  pcr_rendition_stop (self);
  if (self->probe)
    gst_pad_remove_probe (self->parse_src, self->probe);
  gst_clear_object (&self->parse_src);
  for (i = 0; i < G_N_ELEMENTS (children); i++) {
    if (!children[i])
      continue;
    gst_element_set_locked_state (children[i], TRUE);
    gst_element_set_state (children[i], GST_STATE_NULL);
    if (GST_OBJECT_PARENT (children[i]) == GST_OBJECT (self->bin))
      gst_bin_remove (self->bin, children[i]);
    gst_object_unref (children[i]);
  }
  if (GST_OBJECT_PARENT (self->pad) == GST_OBJECT (self->bin))
    gst_element_remove_pad (GST_ELEMENT (self->bin), self->pad);
  gst_object_unref (self->pad);
  g_weak_ref_clear (&self->encoder);
  g_weak_ref_clear (&self->valve);
  g_mutex_clear (&self->lock);
  g_free (self->name);
  g_free (self);
}

GstPad *
pcr_rendition_get_pad (PcrRendition * self)
{
  return self->pad;
}

GstElement *
pcr_rendition_get_tee (PcrRendition * self)
{
  return self->tee;
}

void
pcr_rendition_get_info (PcrRendition * self, PcrStreamInfo * info)
{
  g_mutex_lock (&self->lock);
  *info = self->info;
  g_mutex_unlock (&self->lock);
}

static gboolean
key_unit_timer_cb (gpointer data)
{
  PcrRendition *self = data;

  g_clear_pointer (&self->key_unit_timer, g_source_unref);
  pcr_rendition_request_key_unit (self);
  return G_SOURCE_REMOVE;
}

/* The probe on h264parse's src pad drops requests inside the rate limit,
 * which is right for a browser's PLI/FIR (it asks again) but would make a
 * new viewer (or one switching here) wait a whole GOP: so a request inside
 * the window is deferred to its end instead. */
void
pcr_rendition_request_key_unit (PcrRendition * self)
{
  gint64 wait_us;

  if (self->key_unit_timer || !self->parse_src)
    return;
  g_mutex_lock (&self->lock);
  wait_us = self->last_key_unit_us ? self->last_key_unit_us +
      KEY_UNIT_INTERVAL_US - g_get_monotonic_time () : 0;
  g_mutex_unlock (&self->lock);
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

/* ------------------------------------------------------------------------
 * Upstream: the encoder and the valve
 * ------------------------------------------------------------------------ */

static BitrateUnit
bitrate_unit (GstElement * element)
{
  GstElementFactory *factory = gst_element_get_factory (element);
  guint i;

  if (!factory)
    return UNIT_NONE;
  for (i = 0; i < G_N_ELEMENTS (encoders); i++)
    if (g_str_equal (GST_OBJECT_NAME (factory), encoders[i].factory))
      return encoders[i].unit;
  return UNIT_NONE;
}

static guint
read_bitrate (GstElement * encoder, BitrateUnit unit)
{
  guint value = 0;
  gint v4l2 = 0;
  GstStructure *controls = NULL;

  switch (unit) {
    case UNIT_KBPS:
      g_object_get (encoder, "bitrate", &value, NULL);
      return value * 1000;
    case UNIT_BPS:
      g_object_get (encoder, "bitrate", &value, NULL);
      return value;
    case UNIT_V4L2:
      g_object_get (encoder, "extra-controls", &controls, NULL);
      if (controls && gst_structure_get_int (controls, "video_bitrate", &v4l2)
          && v4l2 > 0)
        value = v4l2;
      if (controls)
        gst_structure_free (controls);
      return value;
    case UNIT_NONE:
      break;
  }
  return 0;
}

static void
write_bitrate (GstElement * encoder, BitrateUnit unit, guint bps)
{
  GstStructure *controls = NULL;

  switch (unit) {
    case UNIT_KBPS:
      g_object_set (encoder, "bitrate", MAX (bps / 1000, 1), NULL);
      break;
    case UNIT_BPS:
      g_object_set (encoder, "bitrate", bps, NULL);
      break;
    case UNIT_V4L2:
      /* v4l2h264enc applies extra-controls at once while the device is
       * open (VIDIOC_S_EXT_CTRLS). */
      g_object_get (encoder, "extra-controls", &controls, NULL);
      controls = controls ? controls : gst_structure_new_empty ("controls");
      gst_structure_set (controls, "video_bitrate", G_TYPE_INT, (gint) bps,
          NULL);
      g_object_set (encoder, "extra-controls", controls, NULL);
      gst_structure_free (controls);
      break;
    case UNIT_NONE:
      break;
  }
}

static GstPad *
only_sink_pad (GstElement * element)
{
  GstPad *pad = NULL;
  guint n = 0;
  GList *l;

  GST_OBJECT_LOCK (element);
  for (l = element->sinkpads; l; l = l->next, n++)
    pad = l->data;
  if (n == 1)
    gst_object_ref (pad);
  GST_OBJECT_UNLOCK (element);
  return n == 1 ? pad : NULL;
}

/* Walks upstream from the sink pad through elements with one sink pad and
 * one src pad: the first encoder we can steer, and a valve before it. */
static void
look_upstream (PcrRendition * self)
{
  GstPad *pad = gst_object_ref (self->pad);
  guint hops;
  gboolean have_encoder = FALSE;

  self->looked_upstream = TRUE;
  for (hops = 0; hops < MAX_UPSTREAM_HOPS; hops++) {
    GstPad *peer = gst_pad_get_peer (pad);
    GstElement *element;
    GstElementFactory *factory;

    gst_object_unref (pad);
    pad = NULL;
    if (!peer)
      break;
    /* A ghost pad's peer inside a bin: go by its parent element. */
    element = gst_pad_get_parent_element (peer);
    gst_object_unref (peer);
    if (!element)
      break;
    factory = gst_element_get_factory (element);
    if (!have_encoder && bitrate_unit (element) != UNIT_NONE) {
      self->unit = bitrate_unit (element);
      self->max_bps = read_bitrate (element, self->unit);
      if (self->max_bps) {
        g_weak_ref_set (&self->encoder, element);
        self->bitrate_bps = self->max_bps;
        have_encoder = TRUE;
        GST_INFO_OBJECT (self->bin, "%s: steering %s's bitrate, at most %u "
            "bit/s", self->name, GST_OBJECT_NAME (element), self->max_bps);
      }
    } else if (have_encoder && factory &&
        g_str_equal (GST_OBJECT_NAME (factory), "valve")) {
      g_weak_ref_set (&self->valve, element);
      GST_INFO_OBJECT (self->bin, "%s: %s idles the encoder while no "
          "viewer needs it", self->name, GST_OBJECT_NAME (element));
    }
    if (element->numsrcpads != 1 || !(pad = only_sink_pad (element))) {
      gst_object_unref (element);
      break;
    }
    gst_object_unref (element);
  }
  if (pad)
    gst_object_unref (pad);
  if (!have_encoder)
    GST_INFO_OBJECT (self->bin, "%s: no encoder upstream whose bitrate can "
        "change; it stays as set", self->name);
}

guint
pcr_rendition_get_max_bitrate (PcrRendition * self)
{
  if (!self->looked_upstream)
    look_upstream (self);
  return self->max_bps;
}

guint
pcr_rendition_set_bitrate (PcrRendition * self, guint bps, gboolean probe)
{
  GstElement *encoder;

  if (!self->looked_upstream)
    look_upstream (self);
  if (!self->max_bps)
    return 0;
  if (!probe)
    bps = MIN (bps, self->max_bps);
  if (ABS ((gdouble) bps - self->bitrate_bps) <
      BITRATE_STEP * self->bitrate_bps && bps != self->max_bps)
    return self->bitrate_bps;
  if (bps == self->bitrate_bps)
    return bps;
  encoder = g_weak_ref_get (&self->encoder);
  if (!encoder)
    return self->bitrate_bps;
  GST_DEBUG_OBJECT (self->bin, "%s: bitrate %u -> %u bit/s", self->name,
      self->bitrate_bps, bps);
  write_bitrate (encoder, self->unit, bps);
  gst_object_unref (encoder);
  self->bitrate_bps = bps;
  return bps;
}

void
pcr_rendition_set_needed (PcrRendition * self, gboolean needed)
{
  GstElement *valve;

  if (!self->looked_upstream)
    look_upstream (self);
  if (self->needed == needed)
    return;
  self->needed = needed;
  valve = g_weak_ref_get (&self->valve);
  if (!valve)
    return;
  GST_INFO_OBJECT (self->bin, "%s: %s", self->name, needed ?
      "a viewer needs it: encoding" : "no viewer needs it: idle");
  g_object_set (valve, "drop", !needed, NULL);
  gst_object_unref (valve);
  if (needed)
    pcr_rendition_request_key_unit (self);
}
