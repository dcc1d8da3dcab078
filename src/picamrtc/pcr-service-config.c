/* The camera service's settings table. Everything about a key (its type,
 * default, range, check and help) is in its row, so the config file, the
 * command line, validation and --help cannot disagree. */
#include "pcr-service-config.h"

#include "pcr-janus.h"

#include <string.h>

#include "pcr-quote.h"
#include "pcr-select.h"

#define OFF(field) G_STRUCT_OFFSET (PcrConfig, field)

static gboolean
check_record_mode (const gchar * value, GError ** error)
{
  g_autofree gchar *escaped = pcr_quote_untrusted (value,
      PCR_QUOTE_MAX_VALUE);

  if (value != NULL && (g_str_equal (value, "off") ||
          g_str_equal (value, "continuous")))
    return TRUE;
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
      "\"%s\" is not off or continuous", escaped);
  return FALSE;
}

static gboolean
check_relay (const gchar * value, GError ** error)
{
  g_autofree gchar *base = NULL, *adminkey = NULL, *apisecret = NULL;
  guint64 room;

  return pcr_janus_parse_url (value, &base, &room, &adminkey, &apisecret,
      error);
}

/* *INDENT-OFF* */
static const PcrSetting settings[] = {
  PCR_SETTING_ROW_BROKER (OFF (broker)),
  PCR_SETTING_ROW_USERNAME (OFF (username)),
  {"password", 0, PCR_SETTING_STRING, PCR_SETTING_SECRET, NULL, 0, 0, NULL,
   "PASSWORD", "MQTT password (better in the config file: others can read "
   "the command line)", OFF (password)},
  PCR_SETTING_ROW_CA_FILE (OFF (ca_file)),
  PCR_SETTING_ROW_CERT_FILE (OFF (cert_file)),
  PCR_SETTING_ROW_KEY_FILE (OFF (key_file)),
  {"device", 'd', PCR_SETTING_STRING, PCR_SETTING_REQUIRED,
   PCR_DEFAULT_DEVICE, 0, 0, pcr_check_device_id, "ID",
   "Device id in the MQTT topics, 1 to 64 of A-Z a-z 0-9 _ -",
   OFF (device)},
  PCR_SETTING_ROW_TOPIC_PREFIX (OFF (topic_prefix)),
  {"source", 's', PCR_SETTING_STRING, PCR_SETTING_REQUIRED,
   PCR_DEFAULT_SOURCE, 0, 0, pcr_check_source,
   "auto|test|libcamera|v4l2[:DEV]", "Camera source", OFF (source)},
  {"pipeline", 'p', PCR_SETTING_STRING, 0, NULL, 0, 0, NULL, "DESC_OR_FILE",
   "Own pipeline (a file or a description) ending in mqttwebrtcsink",
   OFF (pipeline)},
  {"width", 'W', PCR_SETTING_INT, 0, G_STRINGIFY (PCR_DEFAULT_WIDTH),
   16, 4096, NULL, "W", "Width, even", OFF (width)},
  {"height", 'H', PCR_SETTING_INT, 0, G_STRINGIFY (PCR_DEFAULT_HEIGHT),
   16, 4096, NULL, "H", "Height, even", OFF (height)},
  {"framerate", 'f', PCR_SETTING_INT, 0, G_STRINGIFY (PCR_DEFAULT_FRAMERATE),
   1, 120, NULL, "F", "Frames per second", OFF (framerate)},
  {"bitrate", 0, PCR_SETTING_INT, 0, G_STRINGIFY (PCR_DEFAULT_BITRATE),
   100, 50000, NULL, "KBPS", "H.264 bitrate in kbit/s", OFF (bitrate)},
  {"max-viewers", 0, PCR_SETTING_INT, 0,
   G_STRINGIFY (PCR_DEFAULT_MAX_VIEWERS), 1, PCR_MAX_VIEWERS_LIMIT, NULL,
   "N", "Most viewers at once", OFF (max_viewers)},
  {"ice-address", 0, PCR_SETTING_LIST, 0, NULL, 0, 0, pcr_check_ip_address,
   "IP", "Local IP address to offer ICE candidates on, all when none "
   "is given",
   OFF (ice_addresses)},
  {"stun-server", 0, PCR_SETTING_STRING, 0, NULL, 0, 0,
   pcr_check_stun_server, "stun://HOST:PORT", "STUN server",
   OFF (stun_server)},
  {"turn-server", 0, PCR_SETTING_STRING, 0, NULL, 0, 0,
   pcr_check_turn_server, "turn://USER:PASS@HOST:PORT", "TURN server",
   OFF (turn_server)},
  {"on-demand", 0, PCR_SETTING_BOOL, 0, "true", 0, 0, NULL, NULL,
   "Run the camera only while someone watches", OFF (on_demand),
   "always-on"},
  {"idle-stop-seconds", 0, PCR_SETTING_INT, 0,
   G_STRINGIFY (PCR_DEFAULT_IDLE_STOP_SECONDS), 0, 3600, NULL, "S",
   "On demand: stop the camera this long after the last viewer left",
   OFF (idle_stop_seconds)},
  {"latency-stamp", 0, PCR_SETTING_BOOL, 0, "false", 0, 0, NULL, NULL,
   "Write each frame's capture time into the picture, for measuring "
   "latency (docs/latency.md)", OFF (latency_stamp)},
  {"renditions", 0, PCR_SETTING_INT, 0, G_STRINGIFY (PCR_DEFAULT_RENDITIONS),
   1, 2, NULL, "N", "H.264 renditions: 2 adds a smaller one for viewers on "
   "slow links (not for --pipeline)", OFF (renditions)},
  {"low-width", 0, PCR_SETTING_INT, 0, "0", 0, 4096, NULL, "W",
   "Low rendition width, even, at most width; 0: keep the aspect",
   OFF (low_width)},
  {"low-height", 0, PCR_SETTING_INT, 0, "0", 0, 4096, NULL, "H",
   "Low rendition height, even, at most height; 0: keep the aspect "
   "(both 0: half the height, at most 360)", OFF (low_height)},
  {"low-bitrate", 0, PCR_SETTING_INT, 0, "0", 0, 50000, NULL, "KBPS",
   "Low rendition bitrate in kbit/s, below bitrate; 0: 400, at most half "
   "of bitrate", OFF (low_bitrate)},
  {"fec", 0, PCR_SETTING_BOOL, 0, "false", 0, 0, NULL, NULL,
   "Forward error correction (ULPFEC/RED) for viewers whose loss needs it; "
   "off by default: it froze the picture more than it repaired "
   "(docs/networks.md)", OFF (fec)},
  {"record-dir", 0, PCR_SETTING_STRING, 0, NULL, 0, 0, NULL, "DIR",
   "Where to keep recorded video (MP4 segments, docs/recording.md); unset: "
   "no recording", OFF (record_dir)},
  {"record", 0, PCR_SETTING_STRING, PCR_SETTING_REQUIRED, "off", 0, 0,
   check_record_mode, "off|continuous", "Record from the start "
   "(continuous) or only when asked over MQTT or the gateway (off)",
   OFF (record)},
  {"record-segment-s", 0, PCR_SETTING_INT, 0,
   G_STRINGIFY (PCR_DEFAULT_RECORD_SEGMENT_S), 1, PCR_MAX_RECORD_SEGMENT_S,
   NULL, "S", "Seconds of video per recorded segment",
   OFF (record_segment_s)},
  {"record-max-mb", 0, PCR_SETTING_INT, 0,
   G_STRINGIFY (PCR_DEFAULT_RECORD_MAX_MB), 0, 1048576, NULL, "MB",
   "Megabytes of recordings kept, the oldest deleted first; 0: no limit",
   OFF (record_max_mb)},
  {"record-max-age-h", 0, PCR_SETTING_INT, 0,
   G_STRINGIFY (PCR_DEFAULT_RECORD_MAX_AGE_H), 0, 87600, NULL, "H",
   "Hours a recording is kept; 0: no limit", OFF (record_max_age_h)},
  {"audio", 0, PCR_SETTING_STRING, PCR_SETTING_REQUIRED, PCR_DEFAULT_AUDIO,
   0, 0, pcr_check_audio, "auto|none|test|alsa[:DEVICE]", "Audio to "
   "viewers (Opus): auto is the USB camera's own microphone, if it has one; "
   "test a tick each second (not for --pipeline)", OFF (audio)},
  {"talkback", 0, PCR_SETTING_STRING, PCR_SETTING_REQUIRED,
   PCR_DEFAULT_TALKBACK, 0, 0, pcr_check_talkback,
   "none|alsa[:DEVICE]|file:PATH", "Where one viewer's microphone plays: "
   "an ALSA device, or a file of raw S16LE 48 kHz mono (for tests)",
   OFF (talkback)},
  {"control", 0, PCR_SETTING_BOOL, 0, "false", 0, 0, NULL, NULL,
   "Accept viewers' control data channels, bridged to MQTT "
   "(P/D/control/...)", OFF (control)},
  {"relay", 0, PCR_SETTING_STRING, 0, NULL, 0, 0, check_relay,
   "http://HOST:PORT/janus[?room=N&adminkey=K&apisecret=S]", "Publish to "
   "this Janus server's VideoRoom while viewers watch through it "
   "(docs/scaling.md); unset: viewers only directly", OFF (relay)},
};
/* *INDENT-ON* */

PcrConfig *
pcr_config_new (void)
{
  return pcr_settings_config_new (settings, G_N_ELEMENTS (settings),
      sizeof (PcrConfig));
}

void
pcr_config_free (PcrConfig * config)
{
  if (config == NULL)
    return;
  pcr_settings_clear (settings, G_N_ELEMENTS (settings), config);
  g_free (config);
}

/* A low rendition size: 0 (from the main size) or even, 16..@main. */
static gboolean
check_low_size (PcrSettings * s, const gchar * key, gint value,
    const gchar * main_key, gint main_value, GError ** error)
{
  if (value == 0)
    return TRUE;
  if (value < 16)
    return pcr_settings_fail (s, key, error, "%d is out of range 0 or "
        "16..4096", value);
  if (value % 2 != 0)
    return pcr_settings_fail (s, key, error, "%d must be even", value);
  if (value > main_value)
    return pcr_settings_fail (s, key, error, "%d is larger than %s (%d)",
        value, main_key, main_value);
  return TRUE;
}

static gboolean
check_all (PcrSettings * s, gpointer data, gpointer user_data,
    GError ** error)
{
  PcrConfig *config = data;

  /* 4:2:0 video needs even sizes; encoders refuse odd ones */
  if (config->width % 2 != 0)
    return pcr_settings_fail (s, "width", error, "%d must be even",
        config->width);
  if (config->height % 2 != 0)
    return pcr_settings_fail (s, "height", error, "%d must be even",
        config->height);
  if (!check_low_size (s, "low-width", config->low_width, "width",
          config->width, error) ||
      !check_low_size (s, "low-height", config->low_height, "height",
          config->height, error))
    return FALSE;
  if (config->low_bitrate != 0 && config->low_bitrate < PCR_LOW_MIN_BITRATE)
    return pcr_settings_fail (s, "low-bitrate", error, "%d is out of range "
        "0 or %d..50000", config->low_bitrate, PCR_LOW_MIN_BITRATE);
  /* a low rendition as good as the main one only costs an encoder */
  if (config->renditions == 2 && config->low_bitrate != 0 &&
      config->low_bitrate >= config->bitrate)
    return pcr_settings_fail (s, "low-bitrate", error, "%d is not below "
        "bitrate (%d): lower it or set renditions=1", config->low_bitrate,
        config->bitrate);
  if (config->password != NULL && config->username == NULL)
    return pcr_settings_fail (s, "password", error,
        "set without a username");
  if (g_str_equal (config->record, "continuous") && config->record_dir == NULL)
    return pcr_settings_fail (s, "record", error, "continuous needs "
        "record-dir: where to keep the video");
  return pcr_settings_check_client_cert (s, config->broker,
      config->cert_file, config->key_file, error);
}

PcrSettings *
pcr_config_settings_new (PcrConfig * config)
{
  PcrSettings *s = pcr_settings_new ("picamrtc", settings,
      G_N_ELEMENTS (settings), config);

  pcr_settings_set_check (s, check_all, NULL);
  return s;
}

gboolean
pcr_config_validate (const PcrConfig * config, GError ** error)
{
  /* validation only reads the config */
  g_autoptr (PcrSettings) s = pcr_config_settings_new ((PcrConfig *) config);

  return pcr_settings_validate (s, error);
}

/* @n * @num / @den rounded to even, at least 16. */
static gint
scale_even (gint n, gint num, gint den)
{
  gint v = (gint) (((gint64) n * num + den / 2) / den);

  return MAX (16, v & ~1);
}

void
pcr_config_low_size (const PcrConfig * config, gint * width, gint * height)
{
  gint w = config->low_width, h = config->low_height;

  if (w == 0 && h == 0)
    h = scale_even (MIN (PCR_LOW_MAX_HEIGHT, config->height / 2), 1, 1);
  if (w == 0)
    w = scale_even (config->width, h, config->height);
  if (h == 0)
    h = scale_even (config->height, w, config->width);
  /* rounding up to 16 must not make it larger than the main picture */
  *width = MIN (w, config->width);
  *height = MIN (h, config->height);
}

gint
pcr_config_low_bitrate (const PcrConfig * config)
{
  if (config->low_bitrate != 0)
    return config->low_bitrate;
  return MIN (PCR_LOW_MAX_BITRATE, config->bitrate / 2);
}

void
pcr_config_mqtt_options (const PcrConfig * config, PcrMqttOptions * options)
{
  g_return_if_fail (config != NULL && options != NULL);

  memset (options, 0, sizeof (*options));
  options->uri = config->broker;
  options->username = config->username;
  options->password = config->password;
  options->ca_file = config->ca_file;
  options->cert_file = config->cert_file;
  options->key_file = config->key_file;
}
