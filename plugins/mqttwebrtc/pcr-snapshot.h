/* mqttwebrtcsink's still images: the request pad "snapshot" (raw video,
 * the frames before the encoder), the viewers waiting for a picture, the
 * JPEG made off the element's context and its parts for the wire
 * (docs/signalling.md, "Snapshots"). Everything but the pad's probe runs
 * on the element's context. */
#pragma once

#include <gst/gst.h>

#include "pcr-message.h"

G_BEGIN_DECLS

typedef struct _PcrSnapshot PcrSnapshot;

typedef struct
{
  GMainContext *context;
  /* A message for session @id: the parts of its image, or an error. */
  void (*reply) (const gchar * id, const PcrMessage * msg,
      gpointer user_data);
  /* How many sessions wait for a picture now (the camera must run). */
  void (*waiting_changed) (guint waiting, gpointer user_data);
  gpointer user_data;
} PcrSnapshotHost;

/* A fakesink in @bin behind the ghost pad @name of @templ. */
PcrSnapshot *pcr_snapshot_new (GstBin * bin, GstPadTemplate * templ,
    const gchar * name, const PcrSnapshotHost * host);
GstPad *pcr_snapshot_get_pad (PcrSnapshot * self);

/* Session @id asks for a picture: it gets one taken after now, or an
 * error (busy, no picture in time). */
void pcr_snapshot_request (PcrSnapshot * self, const gchar * id);
guint pcr_snapshot_get_waiting (PcrSnapshot * self);
/* The element stops: those waiting get nothing. */
void pcr_snapshot_stop (PcrSnapshot * self);
/* The element's 1 s tick: requests past their time get an error. */
void pcr_snapshot_tick (PcrSnapshot * self, gint64 now_us);
/* Removes the pad and its sink from the bin. The waiting get nothing. */
void pcr_snapshot_free (PcrSnapshot * self);

/* The messages that carry @jpeg (@width x @height) to a viewer, in order:
 * PcrMessage*, parts of at most PCR_IMAGE_PART_MAX bytes. */
GPtrArray *pcr_snapshot_parts (GBytes * jpeg, guint width, guint height);

G_END_DECLS
