/* rtphdrextplayoutdelay: writes the playout-delay RTP header extension
 * (http://www.webrtc.org/experiments/rtp-hdrext/playout-delay) on every
 * packet: 3 bytes, a 12-bit minimum and a 12-bit maximum delay in 10 ms
 * units. libwebrtc keeps the last value it saw; with a minimum of 0 and a
 * small maximum (0 .. 500 ms) Chromium takes its low-latency path and
 * renders each frame as soon as it is decoded, instead of holding it in
 * its jitter buffer and render scheduling. mqttwebrtcsink attaches one to
 * a viewer's payloader when the viewer's offer names the extension. Every
 * packet carries it, not only the first ones, so a lost packet never
 * leaves the receiver on its default. */
#include "config.h"

#include "rtphdrextplayoutdelay.h"

#include <gst/rtp/rtp.h>

GST_DEBUG_CATEGORY_STATIC (rtphdrextplayoutdelay_debug);
#define GST_CAT_DEFAULT rtphdrextplayoutdelay_debug

#define DEFAULT_MIN_MS 0
#define DEFAULT_MAX_MS 0
#define EXT_SIZE 3

enum
{
  PROP_0,
  PROP_MIN_MS,
  PROP_MAX_MS,
  N_PROPERTIES
};

static GParamSpec *properties[N_PROPERTIES];

G_DECLARE_FINAL_TYPE (PcrRtpHdrextPlayoutDelay, pcr_rtp_hdrext_playout_delay,
    PCR, RTP_HDREXT_PLAYOUT_DELAY, GstRTPHeaderExtension);

struct _PcrRtpHdrextPlayoutDelay
{
  GstRTPHeaderExtension parent;

  /* properties, under the object lock */
  guint min_ms, max_ms;
};

#define pcr_rtp_hdrext_playout_delay_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (PcrRtpHdrextPlayoutDelay,
    pcr_rtp_hdrext_playout_delay, GST_TYPE_RTP_HEADER_EXTENSION,
    GST_DEBUG_CATEGORY_INIT (rtphdrextplayoutdelay_debug,
        "rtphdrextplayoutdelay", 0, "playout-delay RTP header extension"));
/* Rank none: payloaders of other applications do not pick it up by itself
 * when they meet the URI in their caps. */
GST_ELEMENT_REGISTER_DEFINE (rtphdrextplayoutdelay, "rtphdrextplayoutdelay",
    GST_RANK_NONE, PCR_TYPE_RTP_HDREXT_PLAYOUT_DELAY);

static GstRTPHeaderExtensionFlags
pcr_rtp_hdrext_playout_delay_get_supported_flags (GstRTPHeaderExtension * ext)
{
  return GST_RTP_HEADER_EXTENSION_ONE_BYTE | GST_RTP_HEADER_EXTENSION_TWO_BYTE;
}

static gsize
pcr_rtp_hdrext_playout_delay_get_max_size (GstRTPHeaderExtension * ext,
    const GstBuffer * input_meta)
{
  return EXT_SIZE;
}

static gssize
pcr_rtp_hdrext_playout_delay_write (GstRTPHeaderExtension * ext,
    const GstBuffer * input_meta, GstRTPHeaderExtensionFlags write_flags,
    GstBuffer * output, guint8 * data, gsize size)
{
  PcrRtpHdrextPlayoutDelay *self = PCR_RTP_HDREXT_PLAYOUT_DELAY (ext);
  guint min, max;

  g_return_val_if_fail (size >= EXT_SIZE, -1);

  GST_OBJECT_LOCK (self);
  min = self->min_ms / 10;
  max = self->max_ms / 10;
  GST_OBJECT_UNLOCK (self);

  data[0] = min >> 4;
  data[1] = ((min & 0xf) << 4) | (max >> 8);
  data[2] = max & 0xff;
  return EXT_SIZE;
}

static gboolean
pcr_rtp_hdrext_playout_delay_read (GstRTPHeaderExtension * ext,
    GstRTPHeaderExtensionFlags read_flags, const guint8 * data, gsize size,
    GstBuffer * buffer)
{
  if (size < EXT_SIZE) {
    GST_WARNING_OBJECT (ext, "playout-delay needs %d bytes, got %"
        G_GSIZE_FORMAT, EXT_SIZE, size);
    return FALSE;
  }
  GST_LOG_OBJECT (ext, "playout delay min %u ms max %u ms",
      ((data[0] << 4) | (data[1] >> 4)) * 10,
      (((data[1] & 0xf) << 8) | data[2]) * 10);
  return TRUE;
}

/* GstRTPHeaderExtension's own version (1.22) writes a directed extmap
 * (an offer's a=extmap:6/recvonly, answered sendonly) onto the payloader's
 * caps as <direction, URI, NULL>. webrtcbin accepts the caps only if they
 * intersect the transceiver's codec preferences, which say "" for "no
 * attributes": a NULL there made the branch's caps not-negotiated and
 * stopped the pipeline whenever the payloader negotiated after the offer
 * had set the direction. This extension has no attributes: say "". */
static gboolean
pcr_rtp_hdrext_playout_delay_set_caps_from_attributes (GstRTPHeaderExtension *
    ext, GstCaps * caps)
{
  return gst_rtp_header_extension_set_caps_from_attributes_helper (ext, caps,
      "");
}

static void
pcr_rtp_hdrext_playout_delay_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  PcrRtpHdrextPlayoutDelay *self = PCR_RTP_HDREXT_PLAYOUT_DELAY (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MIN_MS:
      self->min_ms = g_value_get_uint (value);
      break;
    case PROP_MAX_MS:
      self->max_ms = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
pcr_rtp_hdrext_playout_delay_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  PcrRtpHdrextPlayoutDelay *self = PCR_RTP_HDREXT_PLAYOUT_DELAY (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MIN_MS:
      g_value_set_uint (value, self->min_ms);
      break;
    case PROP_MAX_MS:
      g_value_set_uint (value, self->max_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
pcr_rtp_hdrext_playout_delay_init (PcrRtpHdrextPlayoutDelay * self)
{
  self->min_ms = DEFAULT_MIN_MS;
  self->max_ms = DEFAULT_MAX_MS;
}

static void
pcr_rtp_hdrext_playout_delay_class_init (PcrRtpHdrextPlayoutDelayClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstRTPHeaderExtensionClass *ext_class =
      GST_RTP_HEADER_EXTENSION_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_PLAYING;

  gobject_class->set_property = pcr_rtp_hdrext_playout_delay_set_property;
  gobject_class->get_property = pcr_rtp_hdrext_playout_delay_get_property;

  /**
   * rtphdrextplayoutdelay:min-ms:
   *
   * The least delay the receiver adds before rendering, in ms; sent in
   * 10 ms units, rounded down.
   */
  properties[PROP_MIN_MS] = g_param_spec_uint ("min-ms", "Minimum delay",
      "Least playout delay, in ms (10 ms steps)", 0, PCR_PLAYOUT_DELAY_MAX_MS,
      DEFAULT_MIN_MS, rw);
  /**
   * rtphdrextplayoutdelay:max-ms:
   *
   * The most delay the receiver may add before rendering, in ms; sent in
   * 10 ms units, rounded down. 0 with a minimum of 0: render at once.
   */
  properties[PROP_MAX_MS] = g_param_spec_uint ("max-ms", "Maximum delay",
      "Most playout delay, in ms (10 ms steps)", 0, PCR_PLAYOUT_DELAY_MAX_MS,
      DEFAULT_MAX_MS, rw);
  g_object_class_install_properties (gobject_class, N_PROPERTIES, properties);

  ext_class->get_supported_flags =
      pcr_rtp_hdrext_playout_delay_get_supported_flags;
  ext_class->get_max_size = pcr_rtp_hdrext_playout_delay_get_max_size;
  ext_class->write = pcr_rtp_hdrext_playout_delay_write;
  ext_class->read = pcr_rtp_hdrext_playout_delay_read;
  ext_class->set_caps_from_attributes =
      pcr_rtp_hdrext_playout_delay_set_caps_from_attributes;

  gst_element_class_set_static_metadata (element_class,
      "Playout delay RTP header extension", GST_RTP_HDREXT_ELEMENT_CLASS,
      "Tells a WebRTC receiver the least and most delay before rendering",
      "picamrtc developers");
  gst_rtp_header_extension_class_set_uri (ext_class, PCR_PLAYOUT_DELAY_URI);
}
