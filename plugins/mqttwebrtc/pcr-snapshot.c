/* mqttwebrtcsink's still images (see pcr-snapshot.h).
 *
 *   snapshot (ghost pad) -> fakesink
 *                            `- probe: a frame, when one is wanted
 *
 * A request marks a frame as wanted; the probe hands the next one over
 * (the camera's own buffer, held only while it is turned into a JPEG) and
 * a thread of its own makes the JPEG, so the element's context never
 * waits for an encoder. Everyone who asked before the picture came gets
 * that picture. Raw frames pass the sink at the camera's rate with nothing
 * done to them while nobody waits. */
#include "config.h"

#include "pcr-snapshot.h"

#include <gst/video/video.h>

GST_DEBUG_CATEGORY_STATIC (pcr_snapshot_debug);
#define GST_CAT_DEFAULT pcr_snapshot_debug

/* Sessions that may wait for a picture at once; more get "busy". */
#define MAX_WAITING 16
/* A picture this long after the request, or an error: a camera that was
 * off starts for it (a Raspberry Pi camera takes about a second). */
#define WAIT_US (5 * G_TIME_SPAN_SECOND)
/* What gst_video_convert_sample may take to make the JPEG. */
#define ENCODE_TIMEOUT (5 * GST_SECOND)

/* What the probe and the encoding thread share with the context; owner is
 * NULL once the PcrSnapshot is gone. */
typedef struct
{
  gint refcount;
  gint wanted;                  /* atomic: the probe hands a frame over */
  GMainContext *context;
  PcrSnapshot *owner;           /* context thread only */
} Core;

typedef struct
{
  gchar *id;
  gint64 deadline_us;
} Waiting;

struct _PcrSnapshot
{
  PcrSnapshotHost host;
  Core *core;
  GstBin *bin;
  GstElement *sink;
  GstPad *pad;
  GstPad *sink_pad;
  gulong probe;
  GArray *waiting;              /* Waiting, oldest first */
  guint served;                 /* the first this many got the picture
                                 * being made */
  gboolean encoding;
};

/* A frame or a finished picture on its way to the context. */
typedef struct
{
  Core *core;
  GstSample *frame;
  GBytes *jpeg;
  guint width, height;
  gchar *error;
} Delivery;

static Core *
core_ref (Core * core)
{
  g_atomic_int_inc (&core->refcount);
  return core;
}

static void
core_unref (Core * core)
{
  if (!g_atomic_int_dec_and_test (&core->refcount))
    return;
  g_main_context_unref (core->context);
  g_free (core);
}

static void
delivery_free (gpointer data)
{
  Delivery *d = data;

  core_unref (d->core);
  if (d->frame)
    gst_sample_unref (d->frame);
  if (d->jpeg)
    g_bytes_unref (d->jpeg);
  g_free (d->error);
  g_free (d);
}

static void
post_delivery (Delivery * d, GSourceFunc func)
{
  GSource *source = g_idle_source_new ();

  g_source_set_callback (source, func, d, delivery_free);
  g_source_attach (source, d->core->context);
  g_source_unref (source);
}

static void
waiting_clear (gpointer data)
{
  g_free (((Waiting *) data)->id);
}

/* ---- the wire ---------------------------------------------------------- */

GPtrArray *
pcr_snapshot_parts (GBytes * jpeg, guint width, guint height)
{
  GPtrArray *parts = g_ptr_array_new_with_free_func ((GDestroyNotify)
      pcr_message_free);
  gsize size = g_bytes_get_size (jpeg);
  guint n = (size + PCR_IMAGE_PART_MAX - 1) / PCR_IMAGE_PART_MAX;
  guint i;

  g_return_val_if_fail (size > 0 && n <= PCR_IMAGE_MAX_PARTS, parts);

  for (i = 0; i < n; i++) {
    gsize offset = (gsize) i * PCR_IMAGE_PART_MAX;
    g_autoptr (GBytes) part = g_bytes_new_from_bytes (jpeg, offset,
        MIN (PCR_IMAGE_PART_MAX, size - offset));

    g_ptr_array_add (parts, pcr_message_new_image ("image/jpeg", width,
            height, i, n, size, part));
  }
  return parts;
}

/* ---- the context side -------------------------------------------------- */

static void
set_waiting (PcrSnapshot * self)
{
  /* Frames are wanted while someone waits for one not yet being made. */
  g_atomic_int_set (&self->core->wanted, self->waiting->len > self->served
      && !self->encoding);
  self->host.waiting_changed (self->waiting->len, self->host.user_data);
}

static void
reply_error (PcrSnapshot * self, const gchar * id, PcrErrorCode code,
    const gchar * text)
{
  g_autoptr (PcrMessage) msg = pcr_message_new_error (code, text);

  self->host.reply (id, msg, self->host.user_data);
}

/* Answers the first @n waiting with @parts or @error and forgets them. */
static void
answer_served (PcrSnapshot * self, guint n, GPtrArray * parts,
    const gchar * error)
{
  guint i, j;

  for (i = 0; i < n && i < self->waiting->len; i++) {
    const Waiting *w = &g_array_index (self->waiting, Waiting, i);

    if (error) {
      reply_error (self, w->id, PCR_ERROR_INTERNAL, error);
      continue;
    }
    for (j = 0; j < parts->len; j++)
      self->host.reply (w->id, g_ptr_array_index (parts, j),
          self->host.user_data);
  }
  g_array_remove_range (self->waiting, 0, MIN (n, self->waiting->len));
}

static gboolean
on_jpeg (gpointer data)
{
  Delivery *d = data;
  PcrSnapshot *self = d->core->owner;
  g_autoptr (GPtrArray) parts = NULL;
  gsize size;

  if (!self)
    return G_SOURCE_REMOVE;
  self->encoding = FALSE;
  size = d->jpeg ? g_bytes_get_size (d->jpeg) : 0;
  if (!d->error && (size == 0 ||
          size > (gsize) PCR_IMAGE_MAX_PARTS * PCR_IMAGE_PART_MAX))
    d->error = g_strdup_printf ("the picture came out as %" G_GSIZE_FORMAT
        " bytes (at most %d)", size, PCR_IMAGE_MAX_PARTS *
        PCR_IMAGE_PART_MAX);
  if (d->error)
    GST_WARNING_OBJECT (self->bin, "snapshot: %s", d->error);
  else {
    parts = pcr_snapshot_parts (d->jpeg, d->width, d->height);
    GST_INFO_OBJECT (self->bin, "snapshot: %ux%u, %" G_GSIZE_FORMAT
        " bytes in %u parts, for %u", d->width, d->height, size, parts->len,
        self->served);
  }
  answer_served (self, self->served, parts, d->error);
  self->served = 0;
  set_waiting (self);
  return G_SOURCE_REMOVE;
}

static gpointer
encode_thread (gpointer data)
{
  Delivery *d = data;
  g_autoptr (GstCaps) caps = gst_caps_new_empty_simple ("image/jpeg");
  g_autoptr (GError) error = NULL;
  GstSample *jpeg;
  GstVideoInfo info;
  GstCaps *frame_caps = gst_sample_get_caps (d->frame);

  if (!frame_caps || !gst_video_info_from_caps (&info, frame_caps)) {
    d->error = g_strdup ("the frames on the snapshot pad are not raw video");
  } else if (!(jpeg = gst_video_convert_sample (d->frame, caps,
              ENCODE_TIMEOUT, &error))) {
    d->error = g_strdup_printf ("could not make a JPEG: %s", error ?
        error->message : "no reason given");
  } else {
    GstBuffer *buffer = gst_sample_get_buffer (jpeg);
    GstMapInfo map;

    if (buffer && gst_buffer_map (buffer, &map, GST_MAP_READ)) {
      d->jpeg = g_bytes_new (map.data, map.size);
      gst_buffer_unmap (buffer, &map);
    }
    d->width = GST_VIDEO_INFO_WIDTH (&info);
    d->height = GST_VIDEO_INFO_HEIGHT (&info);
    gst_sample_unref (jpeg);
  }
  /* Let go of the camera's buffer before the context runs. */
  g_clear_pointer (&d->frame, gst_sample_unref);
  post_delivery (d, on_jpeg);
  return NULL;
}

static gboolean
on_frame (gpointer data)
{
  Delivery *d = data;
  PcrSnapshot *self = d->core->owner;
  Delivery *job;
  GThread *thread;
  g_autoptr (GError) error = NULL;

  if (!self || self->encoding || self->waiting->len == 0)
    return G_SOURCE_REMOVE;
  job = g_new0 (Delivery, 1);
  job->core = core_ref (self->core);
  job->frame = g_steal_pointer (&d->frame);
  self->encoding = TRUE;
  self->served = self->waiting->len;
  thread = g_thread_try_new ("pcr-snapshot", encode_thread, job, &error);
  if (!thread) {
    self->encoding = FALSE;
    answer_served (self, self->served, NULL, "could not start a thread to "
        "make the picture");
    self->served = 0;
    delivery_free (job);
  } else
    g_thread_unref (thread);
  set_waiting (self);
  return G_SOURCE_REMOVE;
}

/* ---- the streaming side ------------------------------------------------ */

static GstPadProbeReturn
frame_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Core *core = user_data;
  GstCaps *caps;
  Delivery *d;

  if (!g_atomic_int_compare_and_exchange (&core->wanted, 1, 0))
    return GST_PAD_PROBE_OK;
  caps = gst_pad_get_current_caps (pad);
  d = g_new0 (Delivery, 1);
  d->core = core_ref (core);
  d->frame = gst_sample_new (GST_PAD_PROBE_INFO_BUFFER (info), caps, NULL,
      NULL);
  if (caps)
    gst_caps_unref (caps);
  post_delivery (d, on_frame);
  return GST_PAD_PROBE_OK;
}

/* ---- the object -------------------------------------------------------- */

PcrSnapshot *
pcr_snapshot_new (GstBin * bin, GstPadTemplate * templ, const gchar * name,
    const PcrSnapshotHost * host)
{
  PcrSnapshot *self = g_new0 (PcrSnapshot, 1);

  GST_DEBUG_CATEGORY_INIT (pcr_snapshot_debug, "pcrsnapshot", 0,
      "mqttwebrtcsink's still images");
  self->host = *host;
  self->bin = bin;
  self->core = g_new0 (Core, 1);
  self->core->refcount = 1;
  self->core->context = g_main_context_ref (host->context);
  self->core->owner = self;
  self->waiting = g_array_new (FALSE, FALSE, sizeof (Waiting));
  g_array_set_clear_func (self->waiting, waiting_clear);

  self->sink = gst_element_factory_make ("fakesink", NULL);
  if (self->sink) {
    g_object_set (self->sink, "sync", FALSE, "async", FALSE,
        "enable-last-sample", FALSE, NULL);
    gst_bin_add (bin, gst_object_ref (self->sink));
    self->sink_pad = gst_element_get_static_pad (self->sink, "sink");
    self->probe = gst_pad_add_probe (self->sink_pad,
        GST_PAD_PROBE_TYPE_BUFFER, frame_probe, core_ref (self->core),
        (GDestroyNotify) core_unref);
    self->pad = gst_ghost_pad_new_from_template (name, self->sink_pad, templ);
    gst_element_sync_state_with_parent (self->sink);
  } else
    self->pad = gst_ghost_pad_new_no_target_from_template (name, templ);
  gst_object_ref (self->pad);
  gst_element_add_pad (GST_ELEMENT (bin), self->pad);
  return self;
}

GstPad *
pcr_snapshot_get_pad (PcrSnapshot * self)
{
  return self->pad;
}

void
pcr_snapshot_request (PcrSnapshot * self, const gchar * id)
{
  Waiting w;

  if (!self->sink) {
    reply_error (self, id, PCR_ERROR_NO_SNAPSHOT, "the device cannot take "
        "pictures (fakesink is missing)");
    return;
  }
  if (self->waiting->len >= MAX_WAITING) {
    reply_error (self, id, PCR_ERROR_BUSY, "too many pictures asked for at "
        "once: try again in a second");
    return;
  }
  w.id = g_strdup (id);
  w.deadline_us = g_get_monotonic_time () + WAIT_US;
  g_array_append_val (self->waiting, w);
  GST_DEBUG_OBJECT (self->bin, "snapshot: session %s waits (%u)", id,
      self->waiting->len);
  set_waiting (self);
}

guint
pcr_snapshot_get_waiting (PcrSnapshot * self)
{
  return self->waiting->len;
}

void
pcr_snapshot_tick (PcrSnapshot * self, gint64 now_us)
{
  guint i = self->served;
  gboolean changed = FALSE;

  /* The picture being made is theirs whatever its time. */
  while (i < self->waiting->len) {
    const Waiting *w = &g_array_index (self->waiting, Waiting, i);

    if (w->deadline_us > now_us) {
      i++;
      continue;
    }
    GST_WARNING_OBJECT (self->bin, "snapshot: no frame for session %s "
        "within %d s", w->id, (gint) (WAIT_US / G_TIME_SPAN_SECOND));
    reply_error (self, w->id, PCR_ERROR_INTERNAL, "no picture from the "
        "camera within 5 s");
    g_array_remove_index (self->waiting, i);
    changed = TRUE;
  }
  if (changed)
    set_waiting (self);
}

void
pcr_snapshot_stop (PcrSnapshot * self)
{
  g_array_set_size (self->waiting, 0);
  self->served = 0;
  g_atomic_int_set (&self->core->wanted, 0);
}

void
pcr_snapshot_free (PcrSnapshot * self)
{
  if (!self)
    return;
  g_atomic_int_set (&self->core->wanted, 0);
  self->core->owner = NULL;
  if (self->probe)
    gst_pad_remove_probe (self->sink_pad, self->probe);
  gst_clear_object (&self->sink_pad);
  if (self->sink) {
    gst_element_set_locked_state (self->sink, TRUE);
    gst_element_set_state (self->sink, GST_STATE_NULL);
    if (GST_OBJECT_PARENT (self->sink) == GST_OBJECT (self->bin))
      gst_bin_remove (self->bin, self->sink);
    gst_object_unref (self->sink);
  }
  if (GST_OBJECT_PARENT (self->pad) == GST_OBJECT (self->bin))
    gst_element_remove_pad (GST_ELEMENT (self->bin), self->pad);
  gst_object_unref (self->pad);
  g_array_unref (self->waiting);
  core_unref (self->core);
  g_free (self);
}
