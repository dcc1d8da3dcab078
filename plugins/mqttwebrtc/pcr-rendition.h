/* One rendition of mqttwebrtcsink: an encoded stream coming in on a sink
 * pad (sink: the high one, sink_low: the low one), its fixed children
 * (capsfilter, h264parse, tee, fakesink), its key-frame rate limit, and the
 * encoder upstream whose bitrate follows its viewers
 * (docs/networks.md, "Renditions"). Every function but the constructor runs
 * on the element's context; the pad probes only copy and post. */
#pragma once

#include <gst/gst.h>

#include "pcr-sdp.h"

G_BEGIN_DECLS

typedef struct _PcrRendition PcrRendition;

/* The stream's caps changed (from a streaming thread: post, do not block). */
typedef void (*PcrRenditionCapsFunc) (PcrRendition * rendition,
    gpointer user_data);

/* What the stream is, from its caps; zeros before the first caps. */
typedef struct
{
  gint width, height, fps_n, fps_d;
  PcrH264Profile profile;
} PcrStreamInfo;

/* Makes the children in @bin and its ghost sink pad @pad_name from @templ
 * (added to @bin). @missing gets the first factory that does not exist
 * (then the pad has no target). */
PcrRendition *pcr_rendition_new (GstBin * bin, GstPadTemplate * templ,
    const gchar * pad_name, GMainContext * context,
    PcrRenditionCapsFunc caps_changed, gpointer user_data, gchar ** missing);

/* Removes the children and the pad from the bin (a released request pad). */
void pcr_rendition_free (PcrRendition * rendition);

GstPad *pcr_rendition_get_pad (PcrRendition * rendition);
GstElement *pcr_rendition_get_tee (PcrRendition * rendition);
void pcr_rendition_get_info (PcrRendition * rendition, PcrStreamInfo * info);

/* Asks upstream for a key frame: at once, or at the end of the rate
 * limit's window (one deferred request for all that come meanwhile). */
void pcr_rendition_request_key_unit (PcrRendition * rendition);

/* The most the encoder may send: its own setting when first seen; 0 when
 * no encoder whose bitrate we can set is upstream. */
guint pcr_rendition_get_max_bitrate (PcrRendition * rendition);

/* Sets the upstream encoder's bitrate (clamped to the maximum the pipeline
 * set, unless @probe: a viewer's rate probe may go above it for a moment)
 * if it changed enough to matter; returns the bitrate in effect (0: none). */
guint pcr_rendition_set_bitrate (PcrRendition * rendition, guint bps,
    gboolean probe);

/* Whether some viewer needs this rendition: a `valve` upstream (before the
 * encoder) drops frames while not, so the encoder idles; opening it asks
 * for a key frame. Without a valve the frames still come and are kept. */
void pcr_rendition_set_needed (PcrRendition * rendition, gboolean needed);

/* Stops the deferred key-unit request (the context no longer runs). */
void pcr_rendition_stop (PcrRendition * rendition);

G_END_DECLS
