/* The camera service's settings: PcrConfig and the table that reads it from
 * the config file (group [picamrtc]) and the command line, checks it and
 * writes --help (lib/pcr-settings.h has the rules every key follows). */
#pragma once

#include <glib.h>

#include "pcr-mqtt.h"
#include "pcr-settings.h"

G_BEGIN_DECLS

#define PCR_DEFAULT_WIDTH 1280
#define PCR_DEFAULT_HEIGHT 720
#define PCR_DEFAULT_FRAMERATE 30
#define PCR_DEFAULT_BITRATE 2000        /* kbit/s */
#define PCR_DEFAULT_SOURCE "auto"
#define PCR_DEFAULT_AUDIO "auto"
#define PCR_DEFAULT_TALKBACK "none"
#define PCR_DEFAULT_IDLE_STOP_SECONDS 5
#define PCR_DEFAULT_RENDITIONS 2
/* the low rendition when low-width, low-height and low-bitrate are 0 */
#define PCR_LOW_MAX_HEIGHT 360
#define PCR_LOW_MAX_BITRATE 400 /* kbit/s */
#define PCR_LOW_MIN_BITRATE 50  /* kbit/s */

typedef struct
{
  gchar *broker;                /* mqtt://host:port or mqtts://host:port */
  gchar *username;              /* nullable */
  gchar *password;              /* nullable */
  gchar *ca_file;               /* nullable, for mqtts:// */
  gchar *cert_file, *key_file;  /* nullable: the client certificate */
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
  gint renditions;              /* 1, or 2: a low rendition beside */
  gint low_width, low_height;   /* 0: from the main size, see below */
  gint low_bitrate;             /* kbit/s; 0: see below */
  gboolean fec;                 /* the sink's fec: auto, or off */
  gchar *record_dir;            /* NULL: no recording */
  gchar *record;                /* "off" or "continuous" */
  gint record_segment_s, record_max_mb, record_max_age_h;
  gchar *audio;                 /* auto|none|test|alsa|alsa:DEVICE */
  gchar *talkback;              /* none|alsa|alsa:DEVICE|file:PATH */
  gboolean control;             /* the sink's control: data channels */
  gchar *relay;                 /* nullable: the Janus relay URL */
} PcrConfig;

PcrConfig *pcr_config_new (void);       /* all defaults */
void pcr_config_free (PcrConfig * config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrConfig, pcr_config_free)

/* Settings over @config (which must outlive them) with the table broker,
 * username, password, ca-file, cert-file, key-file, device, topic-prefix,
 * source, pipeline,
 * width, height, framerate, bitrate, max-viewers, ice-address, stun-server,
 * turn-server, on-demand (--always-on is --on-demand=false),
 * idle-stop-seconds, latency-stamp, renditions, low-width, low-height,
 * low-bitrate, fec, record*, audio, talkback, control, relay: the table's checks plus even sizes, a low rendition smaller
 * than the main one, no password without a user name and the client
 * certificate's pair. */
PcrSettings *pcr_config_settings_new (PcrConfig * config);

/* The same checks on a config filled in code; messages start "KEY: ". */
gboolean pcr_config_validate (const PcrConfig * config, GError ** error);

/* The low rendition's size: low-width and low-height as set; a 0 is
 * computed from the main size keeping its aspect (both 0: half the main
 * height, at most PCR_LOW_MAX_HEIGHT), even and at least 16. */
void pcr_config_low_size (const PcrConfig * config, gint * width,
    gint * height);
/* low-bitrate as set; 0: PCR_LOW_MAX_BITRATE kbit/s, at most half of
 * bitrate. */
gint pcr_config_low_bitrate (const PcrConfig * config);

/* The MQTT client options of @config: broker, credentials and TLS (the
 * strings stay @config's). The element builds the same from the properties
 * the service sets; picamrtc --check connects with these. No client id,
 * will or keepalive: the caller adds its own. */
void pcr_config_mqtt_options (const PcrConfig * config,
    PcrMqttOptions * options);

G_END_DECLS
