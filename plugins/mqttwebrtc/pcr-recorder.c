/* mqttwebrtcsink's recording (see pcr-recorder.h).
 *
 *   main rendition's tee -+-> gate -> queue -> mp4mux -> filesink   segment n
 *                         `-> gate -> queue -> mp4mux -> filesink   segment n+1
 *
 * One branch per segment. The gates are probes on the tee's pads, so they
 * all judge each buffer in the tee's thread, in order: a new segment takes
 * over at a key frame, and that same frame is the first the old segment
 * does not get. The old one then leaves the tee, gets EOS (mp4mux writes
 * its last fragment) and goes once its filesink says it is done.
 *
 * Nothing a branch does may stop the camera: the tee hands any flow other
 * than OK upstream, and the source then stops. So a branch leaves the tee
 * before its EOS (a sticky event, a tag say, pushed to a branch past EOS
 * makes every later push there return EOS), and the gate hands the frames
 * to the queue itself: what the branch answers stops the recording, never
 * the stream.
 *
 * The files are fragmented MP4 (a fragment a second), so a file cut short
 * by a power cut or kill -9 plays up to its last whole fragment: at most
 * about a second is lost. splitmuxsink would hold a whole group of
 * pictures (two seconds here) before writing any of it. */
#include "config.h"

#include "pcr-recorder.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <glib/gstdio.h>

GST_DEBUG_CATEGORY_STATIC (pcr_recorder_debug);
#define GST_CAT_DEFAULT pcr_recorder_debug

/* mp4mux's fragments: what a power cut may lose, at most. */
#define FRAGMENT_MS 1000
/* A disk slower than the camera loses frames here, never holds the tee
 * (and with it the viewers) back. */
#define QUEUE_TIME (5 * GST_SECOND)

/* What the tee's probes share with the context. */
typedef struct
{
  gint refcount;
  gint current;                 /* atomic: the branch being written, 0 none */
  gint pending;                 /* atomic: the one to take over, 0 none */
  GMainContext *context;
  PcrRecorder *owner;           /* context thread only; NULL once freed */
} Core;

/* A segment's branch. Its gate holds a reference too: a frame the gate is
 * handing on when the branch is torn down finds the struct and its queue's
 * pad still there (the pad then answers FLUSHING). */
typedef struct
{
  gint refcount;
  Core *core;
  gint id;
  gchar *name;                  /* its file's, in the directory */
  GstPad *tee_pad;              /* NULL once the branch left the tee */
  GstPad *queue_sink;
  GstElement *queue, *parse, *mux, *sink;
  gboolean ended;               /* EOS sent */
  gboolean started;             /* the tee's thread only: a frame passed */
  gboolean refused;             /* the tee's thread only: a frame refused */
} Branch;

struct _PcrRecorder
{
  PcrRecorderHost host;
  Core *core;
  GstBin *bin;
  GstElement *tee;
  gchar *dir;
  guint segment_s, max_mb, max_age_h;

  GList *branches;              /* Branch*, oldest first */
  gint next_id;
  gboolean recording;
  gchar *error;
  GSource *split_timer;         /* the next segment, while recording */
  GMutex lock;                  /* the branches' elements, for messages */
  GCond gone;                   /* a branch went */
};

/* What the streaming side tells the context of a branch. */
typedef enum
{
  BRANCH_SUPERSEDED,            /* a new segment took over from it */
  BRANCH_CLOSED,                /* its filesink has the EOS */
  BRANCH_FAILED,                /* one of its elements posted an error */
  BRANCH_REFUSED,               /* it answered a frame with another flow than OK */
} BranchEvent;

typedef struct
{
  Core *core;
  gint id;
  BranchEvent what;
  gchar *error;
} Event;

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
event_free (gpointer data)
{
  Event *ev = data;

  core_unref (ev->core);
  g_free (ev->error);
  g_free (ev);
}

static void
post_event (Core * core, gint id, BranchEvent what, const gchar * error,
    GSourceFunc func)
{
  Event *ev = g_new0 (Event, 1);
  GSource *source = g_idle_source_new ();

  ev->core = core_ref (core);
  ev->id = id;
  ev->what = what;
  ev->error = g_strdup (error);
  g_source_set_callback (source, func, ev, event_free);
  g_source_attach (source, core->context);
  g_source_unref (source);
}

static gboolean on_event (gpointer data);

/* ---- names and files --------------------------------------------------- */

gboolean
pcr_recorder_name_is_valid (const gchar * name)
{
  return pcr_segment_name_is_valid (name);
}

/* When a segment began (Unix time) from its name. */
static gint64
name_start (const gchar * name)
{
  gint y, mo, d, h, mi, s;
  g_autoptr (GDateTime) t = NULL;

  if (sscanf (name, "%4d%2d%2d-%2d%2d%2d", &y, &mo, &d, &h, &mi, &s) != 6)
    return 0;
  t = g_date_time_new_utc (y, mo, d, h, mi, s);
  return t ? g_date_time_to_unix (t) : 0;
}

/* A new segment's name: now, in UTC, unique in the directory. */
static gchar *
new_name (PcrRecorder * self)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree gchar *stamp = g_date_time_format (now, "%Y%m%d-%H%M%S");
  gint n;

  for (n = 0; n < 1000; n++) {
    g_autofree gchar *name = n ? g_strdup_printf ("%s-%d.mp4", stamp, n) :
        g_strdup_printf ("%s.mp4", stamp);
    g_autofree gchar *path = g_build_filename (self->dir, name, NULL);
    GList *l;
    gboolean taken = g_file_test (path, G_FILE_TEST_EXISTS);

    for (l = self->branches; l && !taken; l = l->next)
      taken = g_str_equal (((Branch *) l->data)->name, name);
    if (!taken)
      return g_steal_pointer (&name);
  }
  return NULL;
}

typedef struct
{
  gchar *name;
  gint64 start;
  guint64 bytes;
  gint64 mtime;
} Entry;

static void
entry_clear (gpointer data)
{
  g_free (((Entry *) data)->name);
}

static gint
compare_entries (gconstpointer a, gconstpointer b)
{
  return strcmp (((const Entry *) a)->name, ((const Entry *) b)->name);
}

/* The segments in the directory, oldest first. */
static GArray *
list_segments (PcrRecorder * self)
{
  GArray *entries = g_array_new (FALSE, FALSE, sizeof (Entry));
  g_autoptr (GDir) dir = g_dir_open (self->dir, 0, NULL);
  const gchar *name;

  g_array_set_clear_func (entries, entry_clear);
  while (dir && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree gchar *path = NULL;
    GStatBuf st;
    Entry e;

    if (!pcr_segment_name_is_valid (name))
      continue;
    path = g_build_filename (self->dir, name, NULL);
    if (g_stat (path, &st) != 0 || !S_ISREG (st.st_mode))
      continue;
    e.name = g_strdup (name);
    e.start = name_start (name);
    e.bytes = st.st_size;
    e.mtime = st.st_mtime;
    g_array_append_val (entries, e);
  }
  g_array_sort (entries, compare_entries);
  return entries;
}

static gboolean
is_being_written (PcrRecorder * self, const gchar * name)
{
  GList *l;

  for (l = self->branches; l; l = l->next) {
    if (g_str_equal (((Branch *) l->data)->name, name))
      return TRUE;
  }
  return FALSE;
}

/* Deletes the oldest segments past --record-max-mb or --record-max-age-h,
 * never one being written. */
static void
apply_retention (PcrRecorder * self)
{
  g_autoptr (GArray) entries = list_segments (self);
  guint64 total = 0, limit = (guint64) self->max_mb * 1024 * 1024;
  gint64 oldest = g_get_real_time () / G_USEC_PER_SEC -
      (gint64) self->max_age_h * 3600;
  guint i;

  for (i = 0; i < entries->len; i++)
    total += g_array_index (entries, Entry, i).bytes;
  /* a segment cut off before its first fragment (kill -9, power cut) is
   * an empty file: nothing to keep */
  for (i = 0; i < entries->len; i++) {
    Entry *e = &g_array_index (entries, Entry, i);
    g_autofree gchar *path = g_build_filename (self->dir, e->name, NULL);

    if (e->bytes == 0 && !is_being_written (self, e->name) &&
        g_unlink (path) == 0)
      GST_INFO_OBJECT (self->bin, "recording: empty %s deleted", e->name);
  }
  for (i = 0; i < entries->len; i++) {
    Entry *e = &g_array_index (entries, Entry, i);
    gboolean too_big = self->max_mb > 0 && total > limit;
    gboolean too_old = self->max_age_h > 0 && e->start < oldest;
    g_autofree gchar *path = NULL;

    if (!too_big && !too_old)
      break;
    if (e->bytes == 0 || is_being_written (self, e->name))
      continue;
    path = g_build_filename (self->dir, e->name, NULL);
    if (g_unlink (path) == 0) {
      GST_INFO_OBJECT (self->bin, "recording: %s deleted (%s)", e->name,
          too_big ? "over record-max-mb" : "older than record-max-age-h");
      total -= e->bytes;
    } else {
      GST_WARNING_OBJECT (self->bin, "recording: cannot delete %s: %s",
          path, g_strerror (errno));
    }
  }
}

/* ---- the branches ------------------------------------------------------ */

/* A segment's time starts at its first frame: a new SEGMENT event ahead of
 * it whose running time is 0 there (mp4mux would otherwise keep the time
 * before it as a gap at the start of the file). */
static void
start_at (GstPad * pad, GstBuffer * buffer)
{
  GstEvent *sticky = gst_pad_get_sticky_event (pad, GST_EVENT_SEGMENT, 0);
  GstSegment segment;
  guint64 running;

  if (!sticky)
    return;
  gst_event_copy_segment (sticky, &segment);
  gst_event_unref (sticky);
  running = gst_segment_to_running_time (&segment, GST_FORMAT_TIME,
      GST_BUFFER_PTS (buffer));
  if (segment.format != GST_FORMAT_TIME || !GST_CLOCK_TIME_IS_VALID (running)
      || !gst_segment_offset_running_time (&segment, GST_FORMAT_TIME,
          -(gint64) running))
    return;
  gst_pad_push_event (pad, gst_event_new_segment (&segment));
}

/* A tee pad's gate (the tee's thread): the current branch gets the frame
 * from the gate's hand; the pending one takes over at a key frame, which
 * the old one no longer gets. */
static GstPadProbeReturn
gate_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Branch *branch = user_data;
  Core *core = branch->core;
  GstBuffer *buffer;
  GstFlowReturn flow;
  gint current;

  /* events go to every branch: caps, segment, and the stream's EOS (the
   * segments are closed, and the bin's EOS waits for their filesinks) */
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM)
    return GST_PAD_PROBE_OK;
  buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  if (g_atomic_int_get (&core->pending) != 0 &&
      !GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT)) {
    gint pending = g_atomic_int_get (&core->pending);

    current = g_atomic_int_get (&core->current);
    if (g_atomic_int_compare_and_exchange (&core->pending, pending, 0)) {
      g_atomic_int_set (&core->current, pending);
      post_event (core, current, BRANCH_SUPERSEDED, NULL, on_event);
    }
  }
  if (g_atomic_int_get (&core->current) != branch->id)
    return GST_PAD_PROBE_DROP;
  if (!branch->started) {
    branch->started = TRUE;
    start_at (pad, buffer);
  }
  /* the sticky events went the usual way, before this probe */
  flow = gst_pad_chain (branch->queue_sink, buffer);
  if (flow != GST_FLOW_OK && !branch->refused) {
    branch->refused = TRUE;
    post_event (core, branch->id, BRANCH_REFUSED, gst_flow_get_name (flow),
        on_event);
  }
  return GST_PAD_PROBE_HANDLED;
}

/* The branch's elements are named "pcr-record-ID-FACTORY": a message is
 * known as ours by its source's name, even while the branch is being torn
 * down (an element may still post then). */
#define NAME_PREFIX "pcr-record-"

static GstElement *
make (const gchar * factory, gint id, GError ** error)
{
  g_autofree gchar *name = g_strdup_printf (NAME_PREFIX "%d-%s", id,
      factory);
  GstElement *element = gst_element_factory_make (factory, name);

  if (!element)
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN,
        "recording needs %s (gstreamer1.0-plugins-%s)", factory,
        g_str_equal (factory, "mp4mux") ? "good" : "base");
  return element;
}

static Branch *
branch_ref (Branch * branch)
{
  g_atomic_int_inc (&branch->refcount);
  return branch;
}

static void
branch_unref (gpointer data)
{
  Branch *branch = data;

  if (!g_atomic_int_dec_and_test (&branch->refcount))
    return;
  gst_object_unref (branch->queue_sink);
  core_unref (branch->core);
  g_free (branch->name);
  g_free (branch);
}

/* The branch gets nothing more from the tee. */
static void
leave_tee (Branch * branch)
{
  GstPad *peer;
  GstElement *tee;

  if (!branch->tee_pad)
    return;
  peer = gst_pad_get_peer (branch->tee_pad);
  tee = gst_pad_get_parent_element (branch->tee_pad);
  if (peer) {
    gst_pad_unlink (branch->tee_pad, peer);
    gst_object_unref (peer);
  }
  if (tee) {
    gst_element_release_request_pad (tee, branch->tee_pad);
    gst_object_unref (tee);
  }
  gst_clear_object (&branch->tee_pad);
}

/* Its elements stopped and gone, then the recorder's reference. */
static void
branch_free (Branch * branch)
{
  GstElement *children[] = { branch->queue, branch->parse, branch->mux,
    branch->sink
  };
  GstBin *bin = branch->core->owner ? branch->core->owner->bin : NULL;
  guint i;

  leave_tee (branch);
  for (i = 0; i < G_N_ELEMENTS (children); i++) {
    if (!children[i])
      continue;
    gst_element_set_locked_state (children[i], TRUE);
    gst_element_set_state (children[i], GST_STATE_NULL);
    if (bin && GST_OBJECT_PARENT (children[i]) == GST_OBJECT (bin))
      gst_bin_remove (bin, children[i]);
    gst_object_unref (children[i]);
  }
  branch_unref (branch);
}

static Branch *
find_branch (PcrRecorder * self, gint id)
{
  GList *l;

  for (l = self->branches; l; l = l->next) {
    if (((Branch *) l->data)->id == id)
      return l->data;
  }
  return NULL;
}

static void
remove_branch (PcrRecorder * self, Branch * branch)
{
  g_mutex_lock (&self->lock);
  self->branches = g_list_remove (self->branches, branch);
  g_mutex_unlock (&self->lock);
  branch_free (branch);
  g_mutex_lock (&self->lock);
  g_cond_broadcast (&self->gone);
  g_mutex_unlock (&self->lock);
}

/* The branch no longer gets data: it leaves the tee, then EOS through its
 * queue, so mp4mux writes its last fragment; it goes when its filesink has
 * the EOS. */
static void
end_branch (PcrRecorder * self, Branch * branch)
{
  if (!branch || branch->ended)
    return;
  branch->ended = TRUE;
  leave_tee (branch);
  GST_DEBUG_OBJECT (self->bin, "recording: ending %s", branch->name);
  gst_pad_send_event (branch->queue_sink, gst_event_new_eos ());
}

/* A branch for a new segment, pending: it takes over at a key frame. */
static gboolean
add_branch (PcrRecorder * self, GError ** error)
{
  Branch *branch;
  GstElement *queue, *parse, *mux, *sink;
  g_autofree gchar *name = new_name (self);
  g_autofree gchar *path = NULL;
  gint id = ++self->next_id;

  if (!name) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_EXIST, "no free name "
        "for a segment in %s", self->dir);
    return FALSE;
  }
  if (!(queue = make ("queue", id, error)))
    return FALSE;
  /* the stream is byte-stream H.264 for the payloaders; MP4 wants avc */
  if (!(parse = make ("h264parse", id, error))) {
    gst_object_unref (queue);
    return FALSE;
  }
  if (!(mux = make ("mp4mux", id, error))) {
    gst_object_unref (queue);
    gst_object_unref (parse);
    return FALSE;
  }
  if (!(sink = make ("filesink", id, error))) {
    gst_object_unref (queue);
    gst_object_unref (parse);
    gst_object_unref (mux);
    return FALSE;
  }
  path = g_build_filename (self->dir, name, NULL);
  g_object_set (queue, "max-size-buffers", 0, "max-size-bytes", 0,
      "max-size-time", QUEUE_TIME, "leaky", 2, NULL);
  g_object_set (mux, "fragment-duration", FRAGMENT_MS, "streamable", TRUE,
      NULL);
  g_object_set (sink, "location", path, "sync", FALSE, "async", FALSE,
      NULL);

  branch = g_new0 (Branch, 1);
  branch->refcount = 1;
  branch->core = core_ref (self->core);
  branch->id = id;
  branch->name = g_steal_pointer (&name);
  branch->queue = gst_object_ref (queue);
  branch->parse = gst_object_ref (parse);
  branch->mux = gst_object_ref (mux);
  branch->sink = gst_object_ref (sink);
  branch->queue_sink = gst_element_get_static_pad (queue, "sink");
  gst_bin_add_many (self->bin, queue, parse, mux, sink, NULL);
  if (!gst_element_link_many (queue, parse, mux, sink, NULL)) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
        "cannot link queue, h264parse, mp4mux and filesink");
    branch_free (branch);
    return FALSE;
  }
  g_mutex_lock (&self->lock);
  self->branches = g_list_append (self->branches, branch);
  g_mutex_unlock (&self->lock);
  gst_element_sync_state_with_parent (sink);
  gst_element_sync_state_with_parent (mux);
  gst_element_sync_state_with_parent (parse);
  gst_element_sync_state_with_parent (queue);

  branch->tee_pad = gst_element_request_pad_simple (self->tee, "src_%u");
  gst_pad_add_probe (branch->tee_pad, GST_PAD_PROBE_TYPE_BUFFER |
      GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, gate_probe, branch_ref (branch),
      branch_unref);
  /* linked before it may take over: the gate hands it frames, and the
   * caps and segment reach it through the link first */
  gst_pad_link (branch->tee_pad, branch->queue_sink);
  g_atomic_int_set (&self->core->pending, branch->id);
  GST_INFO_OBJECT (self->bin, "recording: %s from the next key frame",
      branch->name);
  self->host.want_key_unit (self->host.user_data);
  return TRUE;
}

/* ---- the context side -------------------------------------------------- */

static void
set_recording (PcrRecorder * self, gboolean recording, const gchar * error)
{
  if (self->recording == recording && !error)
    return;
  self->recording = recording;
  g_free (self->error);
  self->error = g_strdup (error);
  self->host.state_changed (recording, error, self->host.user_data);
}

static void
stop_split_timer (PcrRecorder * self)
{
  if (self->split_timer) {
    g_source_destroy (self->split_timer);
    g_clear_pointer (&self->split_timer, g_source_unref);
  }
}

static gboolean
on_split (gpointer data)
{
  PcrRecorder *self = data;
  g_autoptr (GError) error = NULL;

  if (g_atomic_int_get (&self->core->pending) != 0)
    return G_SOURCE_CONTINUE;   /* still waiting for a key frame */
  if (!add_branch (self, &error))
    GST_WARNING_OBJECT (self->bin, "recording: no new segment: %s",
        error->message);
  return G_SOURCE_CONTINUE;
}

/* Every branch gone at once, no EOS: what is on disk stays as it is. */
static void
drop_all (PcrRecorder * self)
{
  GList *l, *all;

  stop_split_timer (self);
  g_atomic_int_set (&self->core->pending, 0);
  g_atomic_int_set (&self->core->current, 0);
  all = g_list_copy (self->branches);
  for (l = all; l; l = l->next)
    remove_branch (self, l->data);
  g_list_free (all);
}

/* Muxers say "Could not multiplex stream" when a write fails: a full disk
 * is worth saying in those words. */
static gchar *
failure_reason (PcrRecorder * self, const gchar * error)
{
  struct statvfs fs;

  if (statvfs (self->dir, &fs) == 0 &&
      (guint64) fs.f_bavail * fs.f_frsize < 4 * 1024 * 1024)
    return g_strdup_printf ("the disk of %s is full (%" G_GUINT64_FORMAT
        " kB free)", self->dir, (guint64) fs.f_bavail * fs.f_frsize / 1024);
  return g_strdup (error);
}

static void
fail (PcrRecorder * self, const gchar * error)
{
  g_autofree gchar *why = failure_reason (self, error);

  GST_ELEMENT_WARNING (self->bin, RESOURCE, WRITE, ("recording stopped: %s",
          why), (NULL));
  drop_all (self);
  set_recording (self, FALSE, why);
}

static gboolean
on_event (gpointer data)
{
  Event *ev = data;
  PcrRecorder *self = ev->core->owner;
  Branch *branch;

  if (!self)
    return G_SOURCE_REMOVE;
  branch = find_branch (self, ev->id);
  switch (ev->what) {
    case BRANCH_FAILED:
      /* the first of a branch's errors stops it all; the rest find it
       * gone */
      if (branch)
        fail (self, ev->error);
      break;
    case BRANCH_REFUSED:
      /* a frame that raced the branch's end is no failure */
      if (branch && !branch->ended) {
        g_autofree gchar *why = g_strdup_printf ("the recording's elements "
            "refused a frame (%s)", ev->error);

        fail (self, why);
      }
      break;
    case BRANCH_CLOSED:
      /* its last fragment is on disk */
      if (branch) {
        GST_INFO_OBJECT (self->bin, "recording: %s closed", branch->name);
        remove_branch (self, branch);
      }
      apply_retention (self);
      break;
    case BRANCH_SUPERSEDED:
      /* a new segment took over from branch ev->id (0: the first) */
      end_branch (self, branch);
      break;
  }
  return G_SOURCE_REMOVE;
}

PcrRecorder *
pcr_recorder_new (GstBin * bin, GstElement * tee,
    const PcrRecorderSettings * settings, const PcrRecorderHost * host)
{
  PcrRecorder *self = g_new0 (PcrRecorder, 1);

  GST_DEBUG_CATEGORY_INIT (pcr_recorder_debug, "pcrrecorder", 0,
      "mqttwebrtcsink's recording");
  self->host = *host;
  self->bin = bin;
  self->tee = gst_object_ref (tee);
  self->dir = g_strdup (settings->dir);
  self->segment_s = MAX (settings->segment_s, 1);
  self->max_mb = settings->max_mb;
  self->max_age_h = settings->max_age_h;
  self->core = g_new0 (Core, 1);
  self->core->refcount = 1;
  self->core->context = g_main_context_ref (host->context);
  self->core->owner = self;
  g_mutex_init (&self->lock);
  g_cond_init (&self->gone);
  return self;
}

gboolean
pcr_recorder_start (PcrRecorder * self, GError ** error)
{
  if (self->recording)
    return TRUE;
  if (g_mkdir_with_parents (self->dir, 0755) != 0 ||
      g_access (self->dir, W_OK) != 0) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
        "cannot write to the recording directory %s: %s", self->dir,
        g_strerror (errno));
    return FALSE;
  }
  if (!add_branch (self, error))
    return FALSE;
  self->split_timer = g_timeout_source_new_seconds (self->segment_s);
  g_source_set_callback (self->split_timer, on_split, self, NULL);
  g_source_attach (self->split_timer, self->core->context);
  apply_retention (self);
  set_recording (self, TRUE, NULL);
  return TRUE;
}

void
pcr_recorder_stop (PcrRecorder * self)
{
  Branch *current;

  if (!self->recording)
    return;
  stop_split_timer (self);
  /* a segment that never began (no key frame yet) goes at once */
  current = find_branch (self, g_atomic_int_get (&self->core->current));
  g_atomic_int_set (&self->core->pending, 0);
  g_atomic_int_set (&self->core->current, 0);
  {
    GList *l, *all = g_list_copy (self->branches);

    for (l = all; l; l = l->next) {
      Branch *b = l->data;

      if (b == current)
        end_branch (self, b);
      else if (!b->ended)
        remove_branch (self, b);
    }
    g_list_free (all);
  }
  set_recording (self, FALSE, NULL);
}

static gboolean
finish_cb (gpointer data)
{
  pcr_recorder_stop (data);
  return G_SOURCE_REMOVE;
}

gboolean
pcr_recorder_finish (PcrRecorder * self, gint64 timeout_us)
{
  gint64 end = g_get_monotonic_time () + timeout_us;
  GSource *source = g_idle_source_new ();
  gboolean done;

  g_source_set_callback (source, finish_cb, self, NULL);
  g_source_attach (source, self->core->context);
  g_source_unref (source);
  g_mutex_lock (&self->lock);
  while (self->branches != NULL &&
      g_cond_wait_until (&self->gone, &self->lock, end));
  done = self->branches == NULL;
  g_mutex_unlock (&self->lock);
  return done;
}

gboolean
pcr_recorder_is_recording (PcrRecorder * self)
{
  return self->recording;
}

const gchar *
pcr_recorder_get_error (PcrRecorder * self)
{
  return self->error;
}

/* Which branch @message came from (any thread), by its source's name; 0:
 * none. */
static gint
branch_of (GstMessage * message)
{
  GstObject *src = GST_MESSAGE_SRC (message);
  g_autofree gchar *name = src ? gst_object_get_name (src) : NULL;
  gint64 id;

  if (!name || !g_str_has_prefix (name, NAME_PREFIX))
    return 0;
  id = g_ascii_strtoll (name + strlen (NAME_PREFIX), NULL, 10);
  return id > 0 && id <= G_MAXINT ? (gint) id : 0;
}

gboolean
pcr_recorder_handle_message (PcrRecorder * self, GstMessage * message)
{
  gint id = branch_of (message);

  if (!id)
    return FALSE;
  switch (GST_MESSAGE_TYPE (message)) {
    case GST_MESSAGE_EOS:
      post_event (self->core, id, BRANCH_CLOSED, NULL, on_event);
      /* the bin counts its sinks' EOS too */
      return FALSE;
    case GST_MESSAGE_ERROR:{
      g_autoptr (GError) error = NULL;
      g_autofree gchar *debug = NULL;

      gst_message_parse_error (message, &error, &debug);
      GST_WARNING_OBJECT (self->bin, "recording: %s (%s)", error->message,
          debug ? debug : "");
      post_event (self->core, id, BRANCH_FAILED, error->message, on_event);
      break;
    }
    default:
      break;
  }
  return TRUE;
}

PcrMessage *
pcr_recorder_list (PcrRecorder * self, guint from)
{
  g_autoptr (GArray) entries = list_segments (self);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  PcrMessage *msg = pcr_message_new_segments (self->recording, from,
      entries->len);
  guint i;

  for (i = from; i < entries->len &&
      msg->segments->len < PCR_SEGMENTS_PER_MESSAGE; i++) {
    Entry *e = &g_array_index (entries, Entry, i);
    /* the file was last written when its last fragment was: its end,
     * within a fragment (one being written ends now) */
    gint64 end = is_being_written (self, e->name) ? now : e->mtime;
    gint64 duration = MAX (end - e->start, 0);

    g_ptr_array_add (msg->segments, pcr_segment_new (e->name, e->start,
            (guint) MIN (duration * 1000, G_MAXINT), e->bytes));
  }
  return msg;
}

PcrMessage *
pcr_recorder_fetch (PcrRecorder * self, const gchar * name, guint64 offset,
    guint length)
{
  g_autofree gchar *path = NULL;
  g_autofree guint8 *data = NULL;
  g_autoptr (GBytes) bytes = NULL;
  struct stat st;
  gssize got;
  gint fd;

  if (!pcr_segment_name_is_valid (name))
    return pcr_message_new_error (PCR_ERROR_BAD_REQUEST, "not a segment's "
        "name");
  path = g_build_filename (self->dir, name, NULL);
  fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    return pcr_message_new_error (PCR_ERROR_NOT_FOUND, "no such segment");
  if (fstat (fd, &st) != 0 || (guint64) st.st_size < offset) {
    close (fd);
    return pcr_message_new_error (PCR_ERROR_BAD_REQUEST, "offset past the "
        "segment's end");
  }
  length = MIN (length, PCR_CHUNK_MAX);
  length = MIN ((guint64) length, (guint64) st.st_size - offset);
  data = g_malloc (MAX (length, 1));
  got = length ? pread (fd, data, length, offset) : 0;
  close (fd);
  if (got < 0)
    return pcr_message_new_error (PCR_ERROR_INTERNAL, "cannot read the "
        "segment");
  bytes = g_bytes_new_take (g_steal_pointer (&data), got);
  return pcr_message_new_chunk (name, offset, st.st_size, bytes);
}

void
pcr_recorder_free (PcrRecorder * self)
{
  if (!self)
    return;
  drop_all (self);
  self->core->owner = NULL;
  core_unref (self->core);
  gst_object_unref (self->tee);
  g_cond_clear (&self->gone);
  g_mutex_clear (&self->lock);
  g_free (self->dir);
  g_free (self->error);
  g_free (self);
}
