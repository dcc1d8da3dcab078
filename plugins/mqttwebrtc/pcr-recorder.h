/* mqttwebrtcsink's recording: a branch on the main rendition's tee (the
 * encoded stream, no second encode) into fragmented MP4 segments in a
 * directory, started and stopped at run time; the segments' list and
 * their bytes for viewers that ask (docs/recording.md). Every function
 * runs on the element's context but pcr_recorder_handle_message, which
 * the bin calls for its children's messages from any thread. */
#pragma once

#include <gst/gst.h>

#include "pcr-message.h"

G_BEGIN_DECLS

typedef struct _PcrRecorder PcrRecorder;

typedef struct
{
  GMainContext *context;
  /* Recording started or stopped; @error says why it stopped when it was
   * not asked to (a full disk), else NULL. */
  void (*state_changed) (gboolean recording, const gchar * error,
      gpointer user_data);
  /* A segment must begin with a key frame: ask the encoder for one. */
  void (*want_key_unit) (gpointer user_data);
  gpointer user_data;
} PcrRecorderHost;

typedef struct
{
  const gchar *dir;             /* where the segments go */
  guint segment_s;              /* a segment's length */
  guint max_mb;                 /* 0: no limit */
  guint max_age_h;              /* 0: no limit */
} PcrRecorderSettings;

/* Segments are named YYYYMMDD-HHMMSS.mp4 (UTC, when they start), with a
 * -N before the dot for a second one in the same second. */
gboolean pcr_recorder_name_is_valid (const gchar * name);

PcrRecorder *pcr_recorder_new (GstBin * bin, GstElement * tee,
    const PcrRecorderSettings * settings, const PcrRecorderHost * host);
/* Starts a new segment at the next key frame; FALSE and @error when the
 * directory cannot be written or the elements are missing. */
gboolean pcr_recorder_start (PcrRecorder * self, GError ** error);
/* Ends the current segment (it is closed once its last fragment is
 * written; state_changed says so). */
void pcr_recorder_stop (PcrRecorder * self);
/* From another thread than the context's (which must run): stops and
 * waits up to @timeout_us for the last segment to be closed. */
gboolean pcr_recorder_finish (PcrRecorder * self, gint64 timeout_us);
gboolean pcr_recorder_is_recording (PcrRecorder * self);
/* The reason recording stopped by itself, or NULL. */
const gchar *pcr_recorder_get_error (PcrRecorder * self);

/* TRUE when @message came from the recording branch and must go no
 * further (an error: a full disk is not the pipeline's); its EOS is seen
 * here and goes on (FALSE), so the bin counts it. */
gboolean pcr_recorder_handle_message (PcrRecorder * self,
    GstMessage * message);

/* The reply to a "recordings" message: at most PCR_SEGMENTS_PER_MESSAGE
 * segments from the @from-th (oldest first). */
PcrMessage *pcr_recorder_list (PcrRecorder * self, guint from);
/* The reply to a "fetch" message: a chunk, or an error message. */
PcrMessage *pcr_recorder_fetch (PcrRecorder * self, const gchar * name,
    guint64 offset, guint length);

/* Tears the branch down at once (the element stops); nothing is called
 * back after this. */
void pcr_recorder_free (PcrRecorder * self);

G_END_DECLS
