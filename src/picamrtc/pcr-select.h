/* The camera service's choice of source and encoder from what this machine
 * offers, and the pipeline description it runs. The choice takes a
 * PcrPlatform so tests can fake what the registry holds. */
#pragma once

#include <glib.h>
#include <gst/gst.h>

#include "pcr-packages.h"
#include "pcr-service-config.h"

G_BEGIN_DECLS

#define PCR_SELECT_ERROR (pcr_select_error_quark ())
GQuark pcr_select_error_quark (void);

typedef enum
{
  PCR_SELECT_ERROR_INVALID,     /* a bad source or pipeline: the message
                                 * names it */
  PCR_SELECT_ERROR_MISSING_ELEMENT,     /* message names the Debian package */
} PcrSelectError;

/* A pipeline file larger than this is refused. */
#define PCR_PIPELINE_FILE_MAX (64 * 1024)

/* The source setting: auto, test, libcamera, v4l2 or v4l2:/dev/PATH. The
 * message names the value, not the key. */
gboolean pcr_check_source (const gchar * value, GError ** error);

/* The audio setting: auto, none, test, alsa or alsa:DEVICE, DEVICE an ALSA
 * name of A-Z a-z 0-9 and : , = _ - . only (hw:1,0, plughw:CARD=C920,DEV=0,
 * default), so it cannot inject pipeline syntax. */
gboolean pcr_check_audio (const gchar * value, GError ** error);
/* The talkback setting: none, alsa, alsa:DEVICE (as above) or file:PATH,
 * PATH of A-Z a-z 0-9 and / . _ - + only. */
gboolean pcr_check_talkback (const gchar * value, GError ** error);
/* The mqttwebrtcsink talkback property for a checked @talkback: NULL for
 * none, "alsasink device=DEVICE sync=false" (DEVICE "default" for plain
 * alsa), or for file:PATH raw S16LE 48 kHz mono PCM written to PATH:
 * "audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=48000,
 * channels=1 ! filesink location=PATH". */
gchar *pcr_talkback_description (const gchar * talkback);

/* What this machine offers. pcr_platform_probe() asks the GStreamer registry
 * and the libcamera/V4L2 device providers; tests fill one by hand. */
typedef struct
{
  GHashTable *elements;         /* factory names present (set of gchar*) */
  gboolean libcamera_camera;    /* libcamera sees at least one camera */
  gchar *v4l2_capture_device;   /* first V4L2 capture device or NULL */
  GPtrArray *cameras;           /* every camera the probe saw, one line
                                 * each ("libcamera NAME", "V4L2 PATH
                                 * (NAME)"), for picamrtc --check */
  GPtrArray *v4l2_cameras;      /* GstStructure per V4L2 capture device:
                                 * its GstDevice properties ("sysfs.path",
                                 * "v4l2.device.bus_info", ...) with
                                 * "device.path" always set */
  GPtrArray *microphones;       /* GstStructure per ALSA capture device:
                                 * the alsa provider's properties plus
                                 * "alsa.device" (the alsasrc device, e.g.
                                 * "hw:1,0"), "alsa.longname" and, where
                                 * sysfs tells, "sysfs.path" */
  gboolean v4l2_probed;         /* v4l2_cameras is filled */
} PcrPlatform;

PcrPlatform *pcr_platform_new (void);   /* empty: nothing available */
/* Needs gst_init(). Never blocks for long and never fails: no camera is
 * simply no camera. */
PcrPlatform *pcr_platform_probe (void);
/* The same; without @with_devices only the registry is asked (no camera is
 * opened, libcamera is not started). */
PcrPlatform *pcr_platform_probe_full (gboolean with_devices);
/* Adds the ALSA capture devices (and the V4L2 cameras' properties when not
 * probed yet) for audio=auto: what pcr_microphone_of_camera() compares. */
void pcr_platform_probe_microphones (PcrPlatform * platform);
/* Whether @microphone (a PcrPlatform microphones entry) sits on the same
 * USB device as @camera (a v4l2_cameras entry): their "sysfs.path" lead to
 * the same USB device directory (the part before the USB interface,
 * ".../usb1/1-1" of ".../1-1/1-1:1.0/video4linux/video0" and
 * ".../1-1/1-1:1.2/sound/card1"), or else the camera's
 * "v4l2.device.bus_info" ("usb-0000:00:14.0-1") is the USB path in the
 * microphone's "alsa.longname" ("... at usb-0000:00:14.0-1, high speed"). */
gboolean pcr_microphone_of_camera (const GstStructure * camera,
    const GstStructure * microphone);
void pcr_platform_add_element (PcrPlatform * platform,
    const gchar * factory);
gboolean pcr_platform_has_element (const PcrPlatform * platform,
    const gchar * factory);
void pcr_platform_free (PcrPlatform * platform);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrPlatform, pcr_platform_free)

typedef struct
{
  gchar *source_desc;           /* e.g. "libcamerasrc ! video/x-raw,..." */
  gchar *encoder_desc;          /* e.g. "x264enc ... ! video/x-h264,..." */
  gchar *source_reason;         /* one line: why this source */
  gchar *encoder_reason;        /* one line: why this encoder */
  gchar *low_desc;              /* nullable: the low rendition's branch,
                                 * "queue ... ! valve drop=true ! videoscale
                                 * ! video/x-raw,... ! ENCODER ! caps" */
  gchar *low_reason;            /* one line: the renditions */
  gboolean snapshots;           /* raw frames go to sink.snapshot */
  gchar *snapshot_reason;       /* one line: still images or why not */
  gchar *audio_desc;            /* nullable: the audio branch up to and
                                 * with opusenc, without "! sink.sink_audio" */
  gchar *audio_reason;          /* one line: the audio or why none */
} PcrSelection;

void pcr_selection_free (PcrSelection * selection);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrSelection, pcr_selection_free)

/* Chooses source and encoder. Source auto: libcamerasrc when libcamera sees
 * a camera, else v4l2src on the first V4L2 capture device, else the test
 * pattern (videotestsrc with a clock overlay when clockoverlay exists).
 * Encoder: v4l2h264enc (hardware), else x264enc, else openh264enc. With
 * config->renditions 2 also the low rendition's branch: the same encoder
 * kind at pcr_config_low_size() and pcr_config_low_bitrate(). Fails
 * with PCR_SELECT_ERROR_MISSING_ELEMENT naming the Debian package when an
 * explicit source or every encoder is missing, and with
 * PCR_SELECT_ERROR_INVALID for source=v4l2 without a capture device.
 * Audio (config->audio): test a live tick each second (audiotestsrc
 * wave=ticks), alsa[:DEVICE] that ALSA device, none nothing, auto the
 * microphone on the V4L2 camera's own USB device (pcr_microphone_of_camera)
 * and none for libcamera, the test pattern or a camera without one; then
 * "audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 !
 * opusenc ..."; test and alsa fail naming the package when an element is
 * missing. */
PcrSelection *pcr_select (const PcrConfig * config,
    const PcrPlatform * platform, GError ** error);

/* The whole gst-launch description: "SOURCE ! ENCODER ! mqttwebrtcsink
 * name=sink" for one rendition, "SOURCE ! tee name=t ! LOW ! sink.sink_low
 * t. ! queue ... ! ENCODER ! mqttwebrtcsink name=sink" for two, with
 * "latencystamp ! " after SOURCE with config->latency_stamp, then, with
 * audio, " AUDIO ! sink.sink_audio" after the sink; of the sink's
 * properties only control=true (config->control) and talkback="..."
 * (config->talkback, pcr_talkback_description), the service sets the rest
 * on the element. When config->pipeline
 * is set it is used instead (@selection may then be NULL): read from the
 * file when it names one (at most PCR_PIPELINE_FILE_MAX bytes, lines
 * starting with '#' dropped, lines joined), placeholders ${WIDTH} ${HEIGHT}
 * ${FRAMERATE} ${BITRATE} ${KEYINT} ${LOW_WIDTH} ${LOW_HEIGHT}
 * ${LOW_BITRATE} ${LATENCY_STAMP} substituted from @config; it must contain
 * mqttwebrtcsink, and with config->latency_stamp ${LATENCY_STAMP} or
 * latencystamp. Whether it has a low rendition is up to it. */
gchar *pcr_build_pipeline (const PcrConfig * config,
    const PcrSelection * selection, GError ** error);

/* Substitutes the placeholders above in @text; an unknown ${NAME} fails.
 * ${LATENCY_STAMP} becomes "latencystamp !" with config->latency_stamp and
 * nothing without, so it goes between the source caps and the encoder:
 * "... ! video/x-raw,... ! ${LATENCY_STAMP} x264enc ...". */
gchar *pcr_pipeline_expand (const PcrConfig * config, const gchar * text,
    GError ** error);

/* What the service runs with @config on @platform: pcr_select() (skipped
 * when config->pipeline is set; *@selection is then NULL) and
 * pcr_build_pipeline(). The one place both picamrtc and picamrtc --check
 * make that choice. */
gchar *pcr_select_pipeline (const PcrConfig * config,
    const PcrPlatform * platform, PcrSelection ** selection,
    GError ** error);

/* Where in each @interval the ticks of a tick source (audiotestsrc
 * wave=ticks, which ticks at its first sample and every @interval after)
 * fall when its first buffer has running time @first: the flash-phase of
 * the test pattern's latencystamp, so flash and beep mark the same
 * instants (0 for an unknown time or interval). */
GstClockTime pcr_tick_phase (GstClockTime first, guint64 interval);

/* "x264enc (gstreamer1.0-plugins-ugly), foo (package unknown)" for a
 * NULL-terminated list of factory names. */
gchar *pcr_describe_missing_elements (const gchar * const *factories);

G_END_DECLS
