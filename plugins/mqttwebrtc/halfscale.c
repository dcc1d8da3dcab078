/* halfscale: a video filter that makes a picture half as wide and half as
 * high, each output pixel the average of the 2x2 input pixels it covers (a
 * box filter; chroma likewise, plane by plane). It is what the camera
 * service's low rendition needs from the high one (1280x720 -> 640x360 by
 * default, docs/networks.md) at a twentieth of what videoscale costs for
 * the same job in software: videoscale's general scaler took about 1.7 ms
 * a 720p frame here, as much as the 720p encoder, which made two
 * renditions cost 1.5 times one; this takes about 0.08 ms (its loops
 * vectorised, plugins/mqttwebrtc/meson.build). Other sizes go through
 * videoscale (src/picamrtc/).
 *
 * An odd width or height loses its last column or row. Metas without tags
 * and video metas pass through, as with videoscale. */
#include "config.h"

#include "halfscale.h"

#include <gst/video/video.h>
#include <gst/video/gstvideofilter.h>

GST_DEBUG_CATEGORY_STATIC (halfscale_debug);
#define GST_CAT_DEFAULT halfscale_debug

G_DECLARE_FINAL_TYPE (PcrHalfScale, pcr_half_scale, PCR, HALF_SCALE,
    GstVideoFilter);

struct _PcrHalfScale
{
  GstVideoFilter parent;
};

#define pcr_half_scale_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (PcrHalfScale, pcr_half_scale, GST_TYPE_VIDEO_FILTER,
    GST_DEBUG_CATEGORY_INIT (halfscale_debug, "halfscale", 0,
        "halve a picture's size"));
GST_ELEMENT_REGISTER_DEFINE (halfscale, "halfscale", GST_RANK_NONE,
    PCR_TYPE_HALF_SCALE);

/* Planar and semi-planar 4:2:0 with 8-bit samples: what cameras, the test
 * pattern and the encoders take. */
#define VIDEO_CAPS GST_VIDEO_CAPS_MAKE ("{ I420, YV12, NV12, NV21 }")

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (VIDEO_CAPS));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (VIDEO_CAPS));

/* @value's width or height: halved towards the source pad, doubled (the
 * two sizes that halve to it) towards the sink pad. */
static gboolean
scale_dimension (GValue * value, GstPadDirection direction)
{
  gint min, max;

  if (G_VALUE_HOLDS_INT (value)) {
    min = max = g_value_get_int (value);
  } else if (GST_VALUE_HOLDS_INT_RANGE (value)) {
    min = gst_value_get_int_range_min (value);
    max = gst_value_get_int_range_max (value);
  } else {
    return FALSE;
  }
  if (direction == GST_PAD_SINK) {
    min /= 2;
    max /= 2;
  } else {
    min = MIN (min, G_MAXINT / 2) * 2;
    max = max >= G_MAXINT / 2 ? G_MAXINT : max * 2 + 1;
  }
  min = MAX (min, 1);
  max = MAX (max, min);
  g_value_unset (value);
  if (min == max) {
    g_value_init (value, G_TYPE_INT);
    g_value_set_int (value, min);
  } else {
    g_value_init (value, GST_TYPE_INT_RANGE);
    gst_value_set_int_range (value, min, max);
  }
  return TRUE;
}

static GstCaps *
pcr_half_scale_transform_caps (GstBaseTransform * trans,
    GstPadDirection direction, GstCaps * caps, GstCaps * filter)
{
  GstCaps *result = gst_caps_new_empty ();
  guint i;

  for (i = 0; i < gst_caps_get_size (caps); i++) {
    GstStructure *s = gst_structure_copy (gst_caps_get_structure (caps, i));
    const gchar *fields[] = { "width", "height" };
    gboolean ok = TRUE;
    guint f;

    for (f = 0; f < G_N_ELEMENTS (fields) && ok; f++) {
      GValue value = G_VALUE_INIT;
      const GValue *old = gst_structure_get_value (s, fields[f]);

      if (!old)
        continue;
      g_value_init (&value, G_VALUE_TYPE (old));
      g_value_copy (old, &value);
      ok = scale_dimension (&value, direction);
      if (ok)
        gst_structure_take_value (s, fields[f], &value);
      else
        g_value_unset (&value);
    }
    /* the pixel aspect ratio stays: both sides are halved */
    if (ok)
      result = gst_caps_merge_structure_full (result, s,
          gst_caps_features_copy (gst_caps_get_features (caps, i)));
    else
      gst_structure_free (s);
  }
  if (filter) {
    GstCaps *both = gst_caps_intersect_full (filter, result,
        GST_CAPS_INTERSECT_FIRST);

    gst_caps_unref (result);
    result = both;
  }
  GST_DEBUG_OBJECT (trans, "%" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT, caps,
      result);
  return result;
}

static gboolean
pcr_half_scale_set_info (GstVideoFilter * filter, GstCaps * incaps,
    GstVideoInfo * in_info, GstCaps * outcaps, GstVideoInfo * out_info)
{
  if (GST_VIDEO_INFO_FORMAT (in_info) != GST_VIDEO_INFO_FORMAT (out_info) ||
      GST_VIDEO_INFO_WIDTH (out_info) != GST_VIDEO_INFO_WIDTH (in_info) / 2
      || GST_VIDEO_INFO_HEIGHT (out_info) !=
      GST_VIDEO_INFO_HEIGHT (in_info) / 2) {
    GST_ERROR_OBJECT (filter, "%" GST_PTR_FORMAT " is not half of %"
        GST_PTR_FORMAT, outcaps, incaps);
    return FALSE;
  }
  return TRUE;
}

/* One plane of @components interleaved samples (1: Y, U or V; 2: NV12's
 * UV). An output sample whose second column or row is past the input's
 * (odd input sizes) repeats the last one. */
static void
halve_plane (const guint8 * in, gint in_stride, gint in_w, gint in_h,
    guint8 * out, gint out_stride, gint out_w, gint out_h, gint components)
{
  gint x, y, c;

  for (y = 0; y < out_h; y++) {
    const guint8 *r0 = in + (gsize) MIN (2 * y, in_h - 1) * in_stride;
    const guint8 *r1 = in + (gsize) MIN (2 * y + 1, in_h - 1) * in_stride;
    guint8 *o = out + (gsize) y * out_stride;

    /* the common cases, no column past the edge: loops compilers
     * vectorise */
    if (2 * out_w <= in_w && components == 1) {
      for (x = 0; x < out_w; x++)
        o[x] = (r0[2 * x] + r0[2 * x + 1] + r1[2 * x] + r1[2 * x + 1] +
            2) >> 2;
      continue;
    }
    if (2 * out_w <= in_w && components == 2) {
      for (x = 0; x < out_w; x++) {
        o[2 * x] = (r0[4 * x] + r0[4 * x + 2] + r1[4 * x] + r1[4 * x + 2] +
            2) >> 2;
        o[2 * x + 1] = (r0[4 * x + 1] + r0[4 * x + 3] + r1[4 * x + 1] +
            r1[4 * x + 3] + 2) >> 2;
      }
      continue;
    }
    for (x = 0; x < out_w; x++) {
      gint i0 = 2 * x * components;
      gint i1 = MIN (2 * x + 1, in_w - 1) * components;

      for (c = 0; c < components; c++)
        o[x * components + c] = (r0[i0 + c] + r0[i1 + c] + r1[i0 + c] +
            r1[i1 + c] + 2) >> 2;
    }
  }
}

static GstFlowReturn
pcr_half_scale_transform_frame (GstVideoFilter * filter,
    GstVideoFrame * in, GstVideoFrame * out)
{
  const GstVideoFormatInfo *finfo = in->info.finfo;
  guint p;

  for (p = 0; p < GST_VIDEO_FRAME_N_PLANES (in); p++) {
    /* the plane's first component says its subsampling; NV12's UV plane
     * holds two components per sample */
    gint comp = p == 0 ? 0 : (gint) p;
    gint components = GST_VIDEO_FORMAT_INFO_IS_YUV (finfo) &&
        GST_VIDEO_FRAME_N_PLANES (in) == 2 && p == 1 ? 2 : 1;

    halve_plane (GST_VIDEO_FRAME_PLANE_DATA (in, p),
        GST_VIDEO_FRAME_PLANE_STRIDE (in, p),
        GST_VIDEO_FRAME_COMP_WIDTH (in, comp),
        GST_VIDEO_FRAME_COMP_HEIGHT (in, comp),
        GST_VIDEO_FRAME_PLANE_DATA (out, p),
        GST_VIDEO_FRAME_PLANE_STRIDE (out, p),
        GST_VIDEO_FRAME_COMP_WIDTH (out, comp),
        GST_VIDEO_FRAME_COMP_HEIGHT (out, comp), components);
  }
  return GST_FLOW_OK;
}

static gboolean
pcr_half_scale_transform_meta (GstBaseTransform * trans, GstBuffer * outbuf,
    GstMeta * meta, GstBuffer * inbuf)
{
  const GstMetaInfo *info = meta->info;
  const gchar *const *tags = gst_meta_api_type_get_tags (info->api);

  /* as videoscale: no tags, or only the video one */
  return !tags || !tags[0] || (gst_meta_api_type_has_tag (info->api,
          g_quark_from_static_string (GST_META_TAG_VIDEO_STR)) && !tags[1]);
}

static void
pcr_half_scale_class_init (PcrHalfScaleClass * klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS (klass);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "Half-size scaler", "Filter/Converter/Video/Scaler",
      "Halves a 4:2:0 picture's width and height, each pixel the average of "
      "the 2x2 it covers: the camera's low rendition, cheaply",
      "picamrtc developers");

  trans_class->transform_caps =
      GST_DEBUG_FUNCPTR (pcr_half_scale_transform_caps);
  trans_class->transform_meta =
      GST_DEBUG_FUNCPTR (pcr_half_scale_transform_meta);
  filter_class->set_info = GST_DEBUG_FUNCPTR (pcr_half_scale_set_info);
  filter_class->transform_frame =
      GST_DEBUG_FUNCPTR (pcr_half_scale_transform_frame);
}

static void
pcr_half_scale_init (PcrHalfScale * self)
{
}
