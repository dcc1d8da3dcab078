/* latencystamp: an in-place video filter placed right after the camera, before
 * the encoder. Into every frame it writes when the frame was captured (wall
 * clock, µs since the Unix epoch) and a frame counter, as black and white
 * luma blocks in a band at the top of the picture, with a sync word and a
 * CRC-32 (docs/latency.md, lib/pcr-latencystamp.c). Blocks aligned to H.264
 * macroblocks survive the encoder, so a browser that reads the stamp from a
 * decoded frame and compares it to its own clock measures glass-to-glass
 * latency minus the camera's exposure and readout.
 *
 * The capture time comes from the buffer's PTS: for a live source its running
 * time is the clock time at capture minus the base time, so
 *   wall = now_wall - (clock_now - (running_time + base_time)).
 * Without a clock or a PTS the frame gets the wall time it passes here.
 *
 * With flash=true it also paints a white square into the bottom left corner
 * of the frame nearest to each whole second of running time past
 * flash-phase: a test tone that beeps on the same instants (audiotestsrc
 * wave=ticks, whose ticks start at its first sample; picamrtc sets the
 * phase from it) lets a viewer measure the offset between sound and
 * picture (docs/audio-and-control.md).
 */
#include "config.h"

#include "latencystamp.h"

#include <string.h>

#include <gst/video/video.h>
#include <gst/video/gstvideofilter.h>

#include "pcr-latencystamp.h"

GST_DEBUG_CATEGORY_STATIC (latencystamp_debug);
#define GST_CAT_DEFAULT latencystamp_debug

#define DEFAULT_ENABLED TRUE
#define DEFAULT_BLOCK_SIZE PCR_LATENCY_STAMP_DEFAULT_BLOCK
#define DEFAULT_FLASH FALSE
/* The flash's side in pixels: four macroblocks, clear after encoding. */
#define FLASH_SIZE 64
#define FLASH_LUMA 235

enum
{
  PROP_0,
  PROP_ENABLED,
  PROP_BLOCK_SIZE,
  PROP_FLASH,
  PROP_FLASH_PHASE,
  N_PROPERTIES
};

static GParamSpec *properties[N_PROPERTIES];

G_DECLARE_FINAL_TYPE (PcrLatencyStampFilter, pcr_latency_stamp_filter, PCR,
    LATENCY_STAMP_FILTER, GstVideoFilter);

struct _PcrLatencyStampFilter
{
  GstVideoFilter parent;

  /* properties, under the object lock */
  gboolean enabled;
  gint block_size;
  gboolean flash;
  guint64 flash_phase;          /* ns past each whole second */

  /* streaming thread only (and start/stop, which it does not overlap) */
  guint32 frame;
  guint8 *row;                  /* one luma row of the band, width bytes */
  gint row_width;
  gint warned_block_size;       /* the band did not fit; 0: not warned */
};

#define pcr_latency_stamp_filter_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (PcrLatencyStampFilter, pcr_latency_stamp_filter,
    GST_TYPE_VIDEO_FILTER, GST_DEBUG_CATEGORY_INIT (latencystamp_debug,
        "latencystamp", 0, "capture time stamp in the picture"));
GST_ELEMENT_REGISTER_DEFINE (latencystamp, "latencystamp", GST_RANK_NONE,
    PCR_TYPE_LATENCY_STAMP_FILTER);

/* Formats whose luma is component 0 with 8 bits a sample; the band's
 * chroma is set to neutral whatever the subsampling. */
#define VIDEO_CAPS GST_VIDEO_CAPS_MAKE ("{ I420, YV12, NV12, NV21, YUY2, " \
    "UYVY, YVYU }")

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (VIDEO_CAPS));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (VIDEO_CAPS));

/* The frame's capture time in µs since the Unix epoch. */
static guint64
capture_time_us (PcrLatencyStampFilter * self, GstBuffer * buffer)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);
  GstClockTime pts = GST_BUFFER_PTS (buffer);
  GstClockTime running, clock_now;
  GstClockTimeDiff age;
  GstClock *clock;
  gint64 wall_now, wall;

  wall_now = g_get_real_time ();
  if (!GST_CLOCK_TIME_IS_VALID (pts) || trans->segment.format !=
      GST_FORMAT_TIME)
    return wall_now;
  running = gst_segment_to_running_time (&trans->segment, GST_FORMAT_TIME, pts);
  clock = gst_element_get_clock (GST_ELEMENT (self));
  if (clock == NULL || !GST_CLOCK_TIME_IS_VALID (running)) {
    gst_clear_object (&clock);
    return wall_now;
  }
  clock_now = gst_clock_get_time (clock);
  age = GST_CLOCK_DIFF (running + gst_element_get_base_time (GST_ELEMENT
          (self)), clock_now);
  gst_object_unref (clock);

  wall = wall_now - age / 1000;
  return wall > 0 ? (guint64) wall : 0;
}

static void
fill_component (guint8 * data, gint stride, gint pstride, gint width,
    gint rows, guint8 value)
{
  gint x, y;

  for (y = 0; y < rows; y++) {
    guint8 *p = data + (gsize) y * stride;

    if (pstride == 1) {
      memset (p, value, width);
    } else {
      for (x = 0; x < width; x++)
        p[x * pstride] = value;
    }
  }
}

/* Luma: each block row is built once in self->row and copied into its
 * block_size picture rows. Blocks past the last bit and the columns right
 * of the last whole block are black. Chroma of the band: neutral. */
static void
draw_band (PcrLatencyStampFilter * self, GstVideoFrame * frame,
    gint block_size, gint cols, gint rows,
    const guint8 bits[PCR_LATENCY_STAMP_BITS])
{
  const GstVideoFormatInfo *finfo = frame->info.finfo;
  gint width = GST_VIDEO_FRAME_WIDTH (frame);
  guint8 *luma = GST_VIDEO_FRAME_COMP_DATA (frame, 0);
  gint stride = GST_VIDEO_FRAME_COMP_STRIDE (frame, 0);
  gint pstride = GST_VIDEO_FRAME_COMP_PSTRIDE (frame, 0);
  guint c;
  gint r, x, y;

  for (r = 0; r < rows; r++) {
    memset (self->row, PCR_LATENCY_STAMP_LUMA_0, width);
    for (x = 0; x < cols; x++) {
      gint i = r * cols + x;

      if (i < PCR_LATENCY_STAMP_BITS && bits[i])
        memset (self->row + x * block_size, PCR_LATENCY_STAMP_LUMA_1,
            block_size);
    }
    for (y = r * block_size; y < (r + 1) * block_size; y++) {
      guint8 *p = luma + (gsize) y * stride;

      if (pstride == 1) {
        memcpy (p, self->row, width);
      } else {
        for (x = 0; x < width; x++)
          p[x * pstride] = self->row[x];
      }
    }
  }

  for (c = 1; c < GST_VIDEO_FRAME_N_COMPONENTS (frame); c++) {
    fill_component (GST_VIDEO_FRAME_COMP_DATA (frame, c),
        GST_VIDEO_FRAME_COMP_STRIDE (frame, c),
        GST_VIDEO_FRAME_COMP_PSTRIDE (frame, c),
        GST_VIDEO_FRAME_COMP_WIDTH (frame, c),
        GST_VIDEO_FORMAT_INFO_SCALE_HEIGHT (finfo, c, rows * block_size),
        PCR_LATENCY_STAMP_CHROMA);
  }
}

/* The frame nearest to a whole second of running time: its half-frame
 * window around the PTS holds the second. */
static gboolean
flash_due (PcrLatencyStampFilter * self, GstVideoFrame * frame,
    guint64 phase)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);
  GstClockTime pts = GST_BUFFER_PTS (frame->buffer), running, half;
  gint fps_n = GST_VIDEO_INFO_FPS_N (&frame->info);
  gint fps_d = GST_VIDEO_INFO_FPS_D (&frame->info);

  if (!GST_CLOCK_TIME_IS_VALID (pts) || fps_n <= 0 || fps_d <= 0 ||
      trans->segment.format != GST_FORMAT_TIME)
    return FALSE;
  running = gst_segment_to_running_time (&trans->segment, GST_FORMAT_TIME,
      pts);
  half = gst_util_uint64_scale_int (GST_SECOND, fps_d, 2 * fps_n);
  if (!GST_CLOCK_TIME_IS_VALID (running))
    return FALSE;
  /* measured from the phase, a second later so nothing goes negative */
  running = running + GST_SECOND - phase;
  if (running < half)
    return FALSE;
  return (running + half) / GST_SECOND != (running - half) / GST_SECOND;
}

static void
draw_flash (GstVideoFrame * frame)
{
  const GstVideoFormatInfo *finfo = frame->info.finfo;
  gint width = GST_VIDEO_FRAME_WIDTH (frame);
  gint height = GST_VIDEO_FRAME_HEIGHT (frame);
  gint size = MIN (FLASH_SIZE, MIN (width, height));
  gint top = (height - size) & ~15;
  guint c;

  for (c = 0; c < GST_VIDEO_FRAME_N_COMPONENTS (frame); c++) {
    gint stride = GST_VIDEO_FRAME_COMP_STRIDE (frame, c);
    gint pstride = GST_VIDEO_FRAME_COMP_PSTRIDE (frame, c);
    gint y0 = GST_VIDEO_FORMAT_INFO_SCALE_HEIGHT (finfo, c, top);
    guint8 *data = GST_VIDEO_FRAME_COMP_DATA (frame, c) + (gsize) y0 * stride;

    fill_component (data, stride, pstride,
        GST_VIDEO_FORMAT_INFO_SCALE_WIDTH (finfo, c, size),
        GST_VIDEO_FORMAT_INFO_SCALE_HEIGHT (finfo, c, size),
        c == 0 ? FLASH_LUMA : PCR_LATENCY_STAMP_CHROMA);
  }
}

static GstFlowReturn
pcr_latency_stamp_filter_transform_frame_ip (GstVideoFilter * filter,
    GstVideoFrame * frame)
{
  PcrLatencyStampFilter *self = PCR_LATENCY_STAMP_FILTER (filter);
  guint8 bits[PCR_LATENCY_STAMP_BITS];
  PcrLatencyStampValue stamp;
  gint width = GST_VIDEO_FRAME_WIDTH (frame);
  gint height = GST_VIDEO_FRAME_HEIGHT (frame);
  gboolean enabled, flash;
  guint64 phase;
  gint block_size, cols, rows;

  GST_OBJECT_LOCK (self);
  enabled = self->enabled;
  block_size = self->block_size;
  flash = self->flash;
  phase = self->flash_phase;
  GST_OBJECT_UNLOCK (self);

  if (flash && flash_due (self, frame, phase))
    draw_flash (frame);
  if (!enabled)
    return GST_FLOW_OK;

  if (!pcr_latency_stamp_layout (width, height, block_size, &cols, &rows)
      || self->row_width < width) {
    /* not an error: the video still flows, unstamped */
    if (self->warned_block_size != block_size) {
      self->warned_block_size = block_size;
      GST_ELEMENT_WARNING (self, STREAM, FORMAT, (NULL),
          ("a %dx%d picture has no room for the stamp with block-size %d: "
              "frames pass unstamped", width, height, block_size));
    }
    return GST_FLOW_OK;
  }

  stamp.time_us = capture_time_us (self, frame->buffer);
  stamp.frame = self->frame++;
  pcr_latency_stamp_pack (&stamp, bits);
  draw_band (self, frame, block_size, cols, rows, bits);

  GST_LOG_OBJECT (self, "stamped frame %u time %" G_GUINT64_FORMAT " us",
      stamp.frame, stamp.time_us);
  return GST_FLOW_OK;
}

static gboolean
pcr_latency_stamp_filter_set_info (GstVideoFilter * filter, GstCaps * incaps,
    GstVideoInfo * in_info, GstCaps * outcaps, GstVideoInfo * out_info)
{
  PcrLatencyStampFilter *self = PCR_LATENCY_STAMP_FILTER (filter);
  gint width = GST_VIDEO_INFO_WIDTH (in_info);

  if (width > self->row_width) {
    g_free (self->row);
    self->row = g_malloc (width);
    self->row_width = width;
  }
  self->warned_block_size = 0;
  return TRUE;
}

static gboolean
pcr_latency_stamp_filter_start (GstBaseTransform * trans)
{
  PcrLatencyStampFilter *self = PCR_LATENCY_STAMP_FILTER (trans);

  self->frame = 0;
  self->warned_block_size = 0;
  return TRUE;
}

static void
pcr_latency_stamp_filter_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  PcrLatencyStampFilter *self = PCR_LATENCY_STAMP_FILTER (object);
  gboolean passthrough;

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_ENABLED:
      self->enabled = g_value_get_boolean (value);
      break;
    case PROP_FLASH:
      self->flash = g_value_get_boolean (value);
      break;
    case PROP_FLASH_PHASE:
      self->flash_phase = g_value_get_uint64 (value);
      break;
    case PROP_BLOCK_SIZE:{
      gint size = g_value_get_int (value);

      /* the range is in the spec; a multiple of 8 is up to us */
      if (size % 8 != 0) {
        GST_WARNING_OBJECT (self, "block-size %d is not a multiple of 8, "
            "using %d", size, size - size % 8);
        size -= size % 8;
      }
      self->block_size = size;
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  passthrough = !self->enabled && !self->flash;
  GST_OBJECT_UNLOCK (self);

  /* nothing to draw: buffers pass without being mapped, made writable or
   * copied; set_passthrough takes the object lock itself */
  if (prop_id == PROP_ENABLED || prop_id == PROP_FLASH)
    gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self),
        passthrough);
}

static void
pcr_latency_stamp_filter_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  PcrLatencyStampFilter *self = PCR_LATENCY_STAMP_FILTER (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_ENABLED:
      g_value_set_boolean (value, self->enabled);
      break;
    case PROP_BLOCK_SIZE:
      g_value_set_int (value, self->block_size);
      break;
    case PROP_FLASH:
      g_value_set_boolean (value, self->flash);
      break;
    case PROP_FLASH_PHASE:
      g_value_set_uint64 (value, self->flash_phase);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
pcr_latency_stamp_filter_finalize (GObject * object)
{
  PcrLatencyStampFilter *self = PCR_LATENCY_STAMP_FILTER (object);

  g_clear_pointer (&self->row, g_free);

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
pcr_latency_stamp_filter_class_init (PcrLatencyStampFilterClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS (klass);

  gobject_class->set_property = pcr_latency_stamp_filter_set_property;
  gobject_class->get_property = pcr_latency_stamp_filter_get_property;
  gobject_class->finalize = pcr_latency_stamp_filter_finalize;

  /**
   * PcrLatencyStampFilter:enabled:
   *
   * Write the stamp into every frame. FALSE passes the frames through
   * untouched (not even mapped); a reader then finds no stamp. May change
   * while playing.
   */
  properties[PROP_ENABLED] = g_param_spec_boolean ("enabled", "Enabled",
      "Write the capture time stamp into every frame", DEFAULT_ENABLED,
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);

  /**
   * PcrLatencyStampFilter:block-size:
   *
   * The side of one bit's square block in pixels, a multiple of 8. 16
   * matches H.264 macroblocks and survives 640x480 at 2 Mbit/s; larger
   * blocks survive lower bitrates and scaling, at the cost of a taller
   * band. A picture too small for the band passes unstamped (one warning).
   */
  properties[PROP_BLOCK_SIZE] = g_param_spec_int ("block-size", "Block size",
      "Side of one bit's block in pixels (a multiple of 8)",
      PCR_LATENCY_STAMP_MIN_BLOCK, PCR_LATENCY_STAMP_MAX_BLOCK,
      DEFAULT_BLOCK_SIZE,
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);

  /**
   * PcrLatencyStampFilter:flash:
   *
   * Paint a 64x64 white square into the bottom left corner of the frame
   * nearest to each whole second of running time (with or without the
   * stamp), for a lip-sync check against a tone beeping on the same
   * seconds. May change while playing.
   */
  properties[PROP_FLASH] = g_param_spec_boolean ("flash", "Flash",
      "A white square in the frame nearest to each whole second",
      DEFAULT_FLASH,
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);

  /**
   * PcrLatencyStampFilter:flash-phase:
   *
   * Where in each second of running time the flash falls, in ns (the
   * test tone's first tick modulo a second). May change while playing.
   */
  properties[PROP_FLASH_PHASE] = g_param_spec_uint64 ("flash-phase",
      "Flash phase", "Nanoseconds past each whole second of running time "
      "the flash marks", 0, GST_SECOND - 1, 0,
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);

  g_object_class_install_properties (gobject_class, N_PROPERTIES, properties);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "Latency stamp", "Filter/Effect/Video",
      "Writes the capture wall-clock time and a frame counter into the "
      "picture as blocks that survive H.264", "picamrtc");

  trans_class->start = GST_DEBUG_FUNCPTR (pcr_latency_stamp_filter_start);
  /* disabled means passthrough, and passthrough means hands off */
  trans_class->transform_ip_on_passthrough = FALSE;
  filter_class->set_info =
      GST_DEBUG_FUNCPTR (pcr_latency_stamp_filter_set_info);
  filter_class->transform_frame_ip =
      GST_DEBUG_FUNCPTR (pcr_latency_stamp_filter_transform_frame_ip);
}

static void
pcr_latency_stamp_filter_init (PcrLatencyStampFilter * self)
{
  self->enabled = DEFAULT_ENABLED;
  self->block_size = DEFAULT_BLOCK_SIZE;
}
