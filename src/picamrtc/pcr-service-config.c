/* The camera service's settings table. Everything about a key (its type,
 * default, range, check and help) is in its row, so the config file, the
 * command line, validation and --help cannot disagree. */
#include "pcr-service-config.h"

#include "pcr-select.h"

#define OFF(field) G_STRUCT_OFFSET (PcrConfig, field)

/* *INDENT-OFF* */
static const PcrSetting settings[] = {
  PCR_SETTING_ROW_BROKER (OFF (broker)),
  PCR_SETTING_ROW_USERNAME (OFF (username)),
  {"password", 0, PCR_SETTING_STRING, PCR_SETTING_SECRET, NULL, 0, 0, NULL,
   "PASSWORD", "MQTT password (better in the config file: others can read "
   "the command line)", OFF (password)},
  PCR_SETTING_ROW_CA_FILE (OFF (ca_file)),
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
  if (config->password != NULL && config->username == NULL)
    return pcr_settings_fail (s, "password", error,
        "set without a username");
  return TRUE;
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
