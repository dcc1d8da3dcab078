/* halfscale: halves a 4:2:0 picture's width and height with a 2x2 box
 * filter, for the camera service's low rendition. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define PCR_TYPE_HALF_SCALE (pcr_half_scale_get_type ())
GType pcr_half_scale_get_type (void);

GST_ELEMENT_REGISTER_DECLARE (halfscale);

G_END_DECLS
