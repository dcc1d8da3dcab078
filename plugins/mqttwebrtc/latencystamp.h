/* latencystamp: writes each raw frame's capture wall-clock time and a frame
 * counter into the top of the picture, readable after H.264 (the layout is
 * in docs/latency.md). */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define PCR_TYPE_LATENCY_STAMP_FILTER (pcr_latency_stamp_filter_get_type ())
GType pcr_latency_stamp_filter_get_type (void);

GST_ELEMENT_REGISTER_DECLARE (latencystamp);

G_END_DECLS
