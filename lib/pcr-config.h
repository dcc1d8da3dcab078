/* The camera service's configuration (GKeyFile, group [picamrtc]) and the
 * choice of source and encoder from what this machine offers. The choice
 * takes a PcrPlatform so tests can fake what the registry holds. A config
 * file is hostile input: every bad value fails with a message naming the key
 * and the value. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define PCR_CONFIG_ERROR (pcr_config_error_quark ())
GQuark pcr_config_error_quark (void);

typedef enum
{
  PCR_CONFIG_ERROR_INVALID,     /* a bad value: the message names key + value;
                                 * also an unreadable or malformed file */
  PCR_CONFIG_ERROR_MISSING_ELEMENT,     /* message names the Debian package */
} PcrConfigError;

#define PCR_DEFAULT_WIDTH 1280
#define PCR_DEFAULT_HEIGHT 720
#define PCR_DEFAULT_FRAMERATE 30
#define PCR_DEFAULT_BITRATE 2000        /* kbit/s */
#define PCR_DEFAULT_BROKER "mqtt://127.0.0.1:1883"
#define PCR_DEFAULT_DEVICE "cam1"
#define PCR_DEFAULT_TOPIC_PREFIX "picamrtc"
#define PCR_DEFAULT_SOURCE "auto"
#define PCR_DEFAULT_MAX_VIEWERS 8
#define PCR_DEFAULT_IDLE_STOP_SECONDS 5

/* A pipeline file larger than this is refused. */
#define PCR_PIPELINE_FILE_MAX (64 * 1024)

typedef struct
{
  gchar *broker;                /* mqtt://host:port or mqtts://host:port */
  gchar *username;              /* nullable */
  gchar *password;              /* nullable */
  gchar *ca_file;               /* nullable, for mqtts:// */
  gchar *device;
  gchar *topic_prefix;
  gchar *source;                /* auto|test|libcamera|v4l2|v4l2:/dev/videoN */
  gchar *pipeline;              /* nullable: a file path or a description */
  gint width, height, framerate;
  gint bitrate;                 /* kbit/s */
  gint max_viewers;
  gchar **ice_addresses;        /* NULL-terminated, maybe empty */
  gchar *stun_server;           /* nullable */
  gchar *turn_server;           /* nullable */
  gboolean on_demand;           /* default TRUE */
  gint idle_stop_seconds;       /* on-demand: stop this long after the last
                                 * viewer left; default 5 */
  gboolean latency_stamp;       /* latencystamp after the source caps;
                                 * default FALSE (docs/latency.md) */
} PcrConfig;

PcrConfig *pcr_config_new (void);       /* all defaults */
void pcr_config_free (PcrConfig * config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrConfig, pcr_config_free)

/* Reads [picamrtc] from @path over what @config holds. Keys are the long
 * command-line option names: broker, username, password, ca-file, device,
 * topic-prefix, source, pipeline, width, height, framerate, bitrate,
 * max-viewers, ice-address (a ;-list), stun-server, turn-server, on-demand,
 * idle-stop-seconds, latency-stamp. Unknown keys and groups warn
 * (g_warning); bad values fail with a message that names the file and the
 * key, and leave @config as it was. A missing or unreadable file, or one without a [picamrtc] group,
 * fails too. */
gboolean pcr_config_load_file (PcrConfig * config, const gchar * path,
    GError ** error);

/* Checks ranges (width/height 16..4096 and even, framerate 1..120, bitrate
 * 100..50000, max-viewers 1..64, idle-stop-seconds 0..3600), the broker URI
 * scheme, the device id ([A-Za-z0-9_-]{1,64}), the topic prefix, the source,
 * the ICE addresses and the STUN/TURN URI schemes. */
gboolean pcr_config_validate (const PcrConfig * config, GError ** error);

/* What this machine offers. pcr_platform_probe() asks the GStreamer registry
 * and the libcamera/V4L2 device providers; tests fill one by hand. */
typedef struct
{
  GHashTable *elements;         /* factory names present (set of gchar*) */
  gboolean libcamera_camera;    /* libcamera sees at least one camera */
  gchar *v4l2_capture_device;   /* first V4L2 capture device or NULL */
} PcrPlatform;

PcrPlatform *pcr_platform_new (void);   /* empty: nothing available */
/* Needs gst_init(). Never blocks for long and never fails: no camera is
 * simply no camera. */
PcrPlatform *pcr_platform_probe (void);
/* The same; without @with_devices only the registry is asked (no camera is
 * opened, libcamera is not started). */
PcrPlatform *pcr_platform_probe_full (gboolean with_devices);
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
} PcrSelection;

void pcr_selection_free (PcrSelection * selection);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrSelection, pcr_selection_free)

/* Chooses source and encoder. Source auto: libcamerasrc when libcamera sees
 * a camera, else v4l2src on the first V4L2 capture device, else the test
 * pattern (videotestsrc with a clock overlay when clockoverlay exists).
 * Encoder: v4l2h264enc (hardware), else x264enc, else openh264enc. Fails
 * with PCR_CONFIG_ERROR_MISSING_ELEMENT naming the Debian package when an
 * explicit source or every encoder is missing, and with
 * PCR_CONFIG_ERROR_INVALID for source=v4l2 without a capture device. */
PcrSelection *pcr_select (const PcrConfig * config,
    const PcrPlatform * platform, GError ** error);

/* The whole gst-launch description: "SOURCE ! ENCODER ! mqttwebrtcsink
 * name=sink" ("SOURCE ! latencystamp ! ENCODER ! ..." with
 * config->latency_stamp), without sink properties (the service sets those on
 * the element). When config->pipeline is set it is used instead (@selection
 * may then be NULL): read from the file when it names one (at most
 * PCR_PIPELINE_FILE_MAX bytes, lines starting with '#' dropped, lines
 * joined), placeholders ${WIDTH} ${HEIGHT} ${FRAMERATE} ${BITRATE} ${KEYINT}
 * ${LATENCY_STAMP} substituted from @config; it must contain mqttwebrtcsink,
 * and with config->latency_stamp ${LATENCY_STAMP} or latencystamp. */
gchar *pcr_build_pipeline (const PcrConfig * config,
    const PcrSelection * selection, GError ** error);

/* Substitutes the placeholders above in @text; an unknown ${NAME} fails.
 * ${LATENCY_STAMP} becomes "latencystamp !" with config->latency_stamp and
 * nothing without, so it goes between the source caps and the encoder:
 * "... ! video/x-raw,... ! ${LATENCY_STAMP} x264enc ...". */
gchar *pcr_pipeline_expand (const PcrConfig * config, const gchar * text,
    GError ** error);

/* The Debian package that ships the element @factory ("picamrtc" for this
 * project's own), or NULL when unknown. */
const gchar *pcr_debian_package_for_element (const gchar * factory);

/* "x264enc (gstreamer1.0-plugins-ugly), foo (package unknown)" for a
 * NULL-terminated list of factory names. */
gchar *pcr_describe_missing_elements (const gchar * const *factories);

G_END_DECLS
