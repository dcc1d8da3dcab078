/* The camera service's configuration and its choice of source and encoder.
 * Config files are hostile input: each value is parsed strictly and a bad
 * one fails with a message naming the file, the key and the value. The
 * selection only looks at a PcrPlatform (what the registry and the device
 * providers offer), so tests can fake a Raspberry Pi on any machine. */
#include "pcr-config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gst/gst.h>

GST_DEBUG_CATEGORY_STATIC (pcr_config_debug);
#define GST_CAT_DEFAULT pcr_config_debug

G_DEFINE_QUARK (pcr-config-error-quark, pcr_config_error);

#define GROUP "picamrtc"

/* Limits checked by pcr_config_validate(). */
#define MIN_SIZE 16
#define MAX_SIZE 4096
#define MIN_FRAMERATE 1
#define MAX_FRAMERATE 120
#define MIN_BITRATE 100
#define MAX_BITRATE 50000
#define MIN_VIEWERS 1
#define MAX_VIEWERS 64
#define MAX_IDLE_STOP 3600

static void
ensure_debug_category (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once)) {
    GST_DEBUG_CATEGORY_INIT (pcr_config_debug, "pcrconfig", 0,
        "picamrtc configuration and selection");
    g_once_init_leave (&once, 1);
  }
}

PcrConfig *
pcr_config_new (void)
{
  PcrConfig *config = g_new0 (PcrConfig, 1);

  config->broker = g_strdup (PCR_DEFAULT_BROKER);
  config->device = g_strdup (PCR_DEFAULT_DEVICE);
  config->topic_prefix = g_strdup (PCR_DEFAULT_TOPIC_PREFIX);
  config->source = g_strdup (PCR_DEFAULT_SOURCE);
  config->width = PCR_DEFAULT_WIDTH;
  config->height = PCR_DEFAULT_HEIGHT;
  config->framerate = PCR_DEFAULT_FRAMERATE;
  config->bitrate = PCR_DEFAULT_BITRATE;
  config->max_viewers = PCR_DEFAULT_MAX_VIEWERS;
  config->ice_addresses = g_new0 (gchar *, 1);
  config->on_demand = TRUE;
  config->idle_stop_seconds = PCR_DEFAULT_IDLE_STOP_SECONDS;

  return config;
}

void
pcr_config_free (PcrConfig * config)
{
  if (config == NULL)
    return;

  g_free (config->broker);
  g_free (config->username);
  g_free (config->password);
  g_free (config->ca_file);
  g_free (config->device);
  g_free (config->topic_prefix);
  g_free (config->source);
  g_free (config->pipeline);
  g_strfreev (config->ice_addresses);
  g_free (config->stun_server);
  g_free (config->turn_server);
  g_free (config);
}

/* ---- loading ----------------------------------------------------------- */

typedef enum
{
  KEY_STRING,                   /* may not be empty */
  KEY_NULLABLE_STRING,          /* empty means unset */
  KEY_INT,
  KEY_BOOL,
  KEY_LIST,
} KeyType;

typedef struct
{
  const gchar *name;
  KeyType type;
  gsize offset;
  gint min, max;                /* KEY_INT */
} KeyInfo;

#define OFF(field) G_STRUCT_OFFSET (PcrConfig, field)

static const KeyInfo keys[] = {
  {"broker", KEY_STRING, OFF (broker)},
  {"username", KEY_NULLABLE_STRING, OFF (username)},
  {"password", KEY_NULLABLE_STRING, OFF (password)},
  {"ca-file", KEY_NULLABLE_STRING, OFF (ca_file)},
  {"device", KEY_STRING, OFF (device)},
  {"topic-prefix", KEY_STRING, OFF (topic_prefix)},
  {"source", KEY_STRING, OFF (source)},
  {"pipeline", KEY_NULLABLE_STRING, OFF (pipeline)},
  {"width", KEY_INT, OFF (width), MIN_SIZE, MAX_SIZE},
  {"height", KEY_INT, OFF (height), MIN_SIZE, MAX_SIZE},
  {"framerate", KEY_INT, OFF (framerate), MIN_FRAMERATE, MAX_FRAMERATE},
  {"bitrate", KEY_INT, OFF (bitrate), MIN_BITRATE, MAX_BITRATE},
  {"max-viewers", KEY_INT, OFF (max_viewers), MIN_VIEWERS, MAX_VIEWERS},
  {"ice-address", KEY_LIST, OFF (ice_addresses)},
  {"stun-server", KEY_NULLABLE_STRING, OFF (stun_server)},
  {"turn-server", KEY_NULLABLE_STRING, OFF (turn_server)},
  {"on-demand", KEY_BOOL, OFF (on_demand)},
  {"idle-stop-seconds", KEY_INT, OFF (idle_stop_seconds), 0, MAX_IDLE_STOP},
  {"latency-stamp", KEY_BOOL, OFF (latency_stamp)},
};

static const KeyInfo *
find_key (const gchar * name)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (keys); i++) {
    if (g_str_equal (keys[i].name, name))
      return &keys[i];
  }
  return NULL;
}

static gboolean
parse_int (const gchar * text, gint min, gint max, gint * out)
{
  gint64 v;

  if (!g_ascii_string_to_signed (text, 10, min, max, &v, NULL))
    return FALSE;
  *out = (gint) v;
  return TRUE;
}

static gboolean
parse_bool (const gchar * text, gboolean * out)
{
  static const gchar *yes[] = { "true", "yes", "on", "1" };
  static const gchar *no[] = { "false", "no", "off", "0" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (yes); i++) {
    if (g_ascii_strcasecmp (text, yes[i]) == 0) {
      *out = TRUE;
      return TRUE;
    }
    if (g_ascii_strcasecmp (text, no[i]) == 0) {
      *out = FALSE;
      return TRUE;
    }
  }
  return FALSE;
}

/* Splits an ICE address list at ';' and ',' and drops blanks. */
static gchar **
split_list (const gchar * text)
{
  g_auto (GStrv) parts = g_strsplit_set (text, ";,", -1);
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  guint i;

  for (i = 0; parts[i] != NULL; i++) {
    gchar *item = g_strstrip (parts[i]);

    if (*item != '\0')
      g_strv_builder_add (builder, item);
  }
  return g_strv_builder_end (builder);
}

/* Every error names the file and the key; the value is quoted with
 * g_strescape so a hostile value cannot forge extra lines in a log. */
static gboolean
load_key (PcrConfig * config, GKeyFile * file, const gchar * path,
    const KeyInfo * info, GError ** error)
{
  g_autoptr (GError) local = NULL;
  g_autofree gchar *raw = NULL;
  g_autofree gchar *value = NULL;
  g_autofree gchar *escaped = NULL;
  gpointer field = G_STRUCT_MEMBER_P (config, info->offset);

  /* get_string undoes the key file escapes and checks UTF-8 */
  value = g_key_file_get_string (file, GROUP, info->name, &local);
  if (value == NULL) {
    raw = g_key_file_get_value (file, GROUP, info->name, NULL);
    escaped = g_strescape (raw ? raw : "", NULL);
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "%s: key '%s': bad value \"%s\": %s", path, info->name, escaped,
        local->message);
    return FALSE;
  }
  g_strstrip (value);
  escaped = g_strescape (value, NULL);

  switch (info->type) {
    case KEY_STRING:
      if (*value == '\0') {
        g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
            "%s: key '%s': must not be empty", path, info->name);
        return FALSE;
      }
      /* fall through */
    case KEY_NULLABLE_STRING:{
      gchar **s = field;

      g_free (*s);
      *s = *value != '\0' ? g_steal_pointer (&value) : NULL;
      break;
    }
    case KEY_INT:{
      gint v;

      if (!parse_int (value, G_MININT, G_MAXINT, &v)) {
        g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
            "%s: key '%s': \"%s\" is not an integer", path, info->name,
            escaped);
        return FALSE;
      }
      if (v < info->min || v > info->max) {
        g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
            "%s: key '%s': %d is out of range %d..%d", path, info->name, v,
            info->min, info->max);
        return FALSE;
      }
      *(gint *) field = v;
      break;
    }
    case KEY_BOOL:{
      gboolean v;

      if (!parse_bool (value, &v)) {
        g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
            "%s: key '%s': \"%s\" is not a boolean (true or false)", path,
            info->name, escaped);
        return FALSE;
      }
      *(gboolean *) field = v;
      break;
    }
    case KEY_LIST:{
      gchar ***list = field;

      g_strfreev (*list);
      *list = split_list (value);
      break;
    }
  }
  return TRUE;
}

/* Copies the fields a load may replace, so a failed load leaves @config
 * untouched. */
static PcrConfig *
config_copy (const PcrConfig * config)
{
  PcrConfig *copy = g_new0 (PcrConfig, 1);

  *copy = *config;
  copy->broker = g_strdup (config->broker);
  copy->username = g_strdup (config->username);
  copy->password = g_strdup (config->password);
  copy->ca_file = g_strdup (config->ca_file);
  copy->device = g_strdup (config->device);
  copy->topic_prefix = g_strdup (config->topic_prefix);
  copy->source = g_strdup (config->source);
  copy->pipeline = g_strdup (config->pipeline);
  copy->ice_addresses = g_strdupv (config->ice_addresses);
  copy->stun_server = g_strdup (config->stun_server);
  copy->turn_server = g_strdup (config->turn_server);
  return copy;
}

gboolean
pcr_config_load_file (PcrConfig * config, const gchar * path, GError ** error)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  g_autoptr (GError) local = NULL;
  g_autoptr (PcrConfig) staged = NULL;
  g_auto (GStrv) groups = NULL;
  g_auto (GStrv) names = NULL;
  guint i;

  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!g_key_file_load_from_file (file, path, G_KEY_FILE_NONE, &local)) {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "cannot read config file %s: %s", path, local->message);
    return FALSE;
  }

  if (!g_key_file_has_group (file, GROUP)) {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "%s: no [" GROUP "] group", path);
    return FALSE;
  }

  groups = g_key_file_get_groups (file, NULL);
  for (i = 0; groups[i] != NULL; i++) {
    if (!g_str_equal (groups[i], GROUP))
      g_warning ("%s: unknown group [%s] ignored", path, groups[i]);
  }

  staged = config_copy (config);
  names = g_key_file_get_keys (file, GROUP, NULL, NULL);
  for (i = 0; names != NULL && names[i] != NULL; i++) {
    const KeyInfo *info = find_key (names[i]);

    if (info == NULL) {
      g_autofree gchar *escaped = g_strescape (names[i], NULL);

      g_warning ("%s: unknown key '%s' in [" GROUP "] ignored", path, escaped);
      continue;
    }
    if (!load_key (staged, file, path, info, error))
      return FALSE;
  }

  /* commit: swap the staged values in, free the old ones with the copy */
  {
    PcrConfig old = *config;

    *config = *staged;
    *staged = old;
  }
  return TRUE;
}

/* ---- validation -------------------------------------------------------- */

static gboolean
check_range (const gchar * key, gint value, gint min, gint max, GError ** error)
{
  if (value < min || value > max) {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "%s: %d is out of range %d..%d", key, value, min, max);
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_broker (const gchar * broker, GError ** error)
{
  g_autoptr (GUri) uri = NULL;
  g_autoptr (GError) local = NULL;
  /* A URI with user:password@ in it is never echoed: the message goes to
   * logs. */
  g_autofree gchar *escaped = broker && strchr (broker, '@') ?
      g_strdup ("(a URI with credentials, not shown)") :
      g_strescape (broker ? broker : "", NULL);
  const gchar *scheme, *host, *path;
  gint port;

  if (broker == NULL || *broker == '\0') {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "broker: must not be empty (e.g. " PCR_DEFAULT_BROKER ")");
    return FALSE;
  }
  uri = g_uri_parse (broker, G_URI_FLAGS_NONE, &local);
  if (uri == NULL) {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "broker: \"%s\" is not a URI: %s", escaped, local->message);
    return FALSE;
  }
  scheme = g_uri_get_scheme (uri);
  host = g_uri_get_host (uri);
  path = g_uri_get_path (uri);
  port = g_uri_get_port (uri);
  if (g_strcmp0 (scheme, "mqtt") != 0 && g_strcmp0 (scheme, "mqtts") != 0) {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "broker: \"%s\": the scheme must be mqtt:// or mqtts://", escaped);
    return FALSE;
  }
  if (host == NULL || *host == '\0') {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "broker: \"%s\" has no host", escaped);
    return FALSE;
  }
  if (port == 0) {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "broker: \"%s\": port 0 is not valid", escaped);
    return FALSE;
  }
  if (g_uri_get_userinfo (uri) != NULL) {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "broker: \"%s\": put credentials in username and password, not in "
        "the URI", escaped);
    return FALSE;
  }
  if ((path != NULL && *path != '\0' && !g_str_equal (path, "/"))
      || g_uri_get_query (uri) != NULL || g_uri_get_fragment (uri) != NULL) {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "broker: \"%s\": only scheme, host and port are allowed", escaped);
    return FALSE;
  }
  return TRUE;
}

static gboolean
is_id_char (gchar c)
{
  return g_ascii_isalnum (c) || c == '_' || c == '-';
}

static gboolean
check_device (const gchar * device, GError ** error)
{
  gsize len = device ? strlen (device) : 0;
  gsize i;

  for (i = 0; i < len; i++) {
    if (!is_id_char (device[i]))
      break;
  }
  if (len == 0 || len > 64 || i < len) {
    g_autofree gchar *escaped = g_strescape (device ? device : "", NULL);

    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "device: \"%s\" is not a device id (1 to 64 of A-Z a-z 0-9 _ -)",
        escaped);
    return FALSE;
  }
  return TRUE;
}

/* MQTT topic levels separated by '/': no wildcards, no empty level. */
static gboolean
check_topic_prefix (const gchar * prefix, GError ** error)
{
  g_autofree gchar *escaped = g_strescape (prefix ? prefix : "", NULL);
  g_auto (GStrv) levels = NULL;
  guint i;

  if (prefix == NULL || *prefix == '\0' || strlen (prefix) > 128
      || strpbrk (prefix, "+#") != NULL
      || !g_utf8_validate (prefix, -1, NULL)) {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "topic-prefix: \"%s\" is not a topic prefix (1 to 128 characters, "
        "no + or #)", escaped);
    return FALSE;
  }
  levels = g_strsplit (prefix, "/", -1);
  for (i = 0; levels[i] != NULL; i++) {
    const gchar *c;

    for (c = levels[i]; *c != '\0'; c++) {
      if (g_ascii_iscntrl (*c))
        break;
    }
    if (*levels[i] == '\0' || *c != '\0') {
      g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
          "topic-prefix: \"%s\" has an empty level or a control character",
          escaped);
      return FALSE;
    }
  }
  return TRUE;
}

/* A device path goes into a gst-launch description: allow only the
 * characters a /dev path has, so it cannot inject pipeline syntax. */
static gboolean
is_safe_device_path (const gchar * path)
{
  const gchar *c;

  if (path[0] != '/' || strlen (path) > 255)
    return FALSE;
  for (c = path; *c != '\0'; c++) {
    if (!g_ascii_isalnum (*c) && strchr ("/._-:", *c) == NULL)
      return FALSE;
  }
  return TRUE;
}

static gboolean
check_source (const gchar * source, GError ** error)
{
  g_autofree gchar *escaped = g_strescape (source ? source : "", NULL);

  if (source == NULL) {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "source: must be set");
    return FALSE;
  }
  if (g_str_equal (source, "auto") || g_str_equal (source, "test")
      || g_str_equal (source, "libcamera") || g_str_equal (source, "v4l2"))
    return TRUE;
  if (g_str_has_prefix (source, "v4l2:")) {
    if (is_safe_device_path (source + 5))
      return TRUE;
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "source: \"%s\": v4l2: needs a device path such as /dev/video0",
        escaped);
    return FALSE;
  }
  g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
      "source: \"%s\" is not one of auto, test, libcamera, v4l2, "
      "v4l2:/dev/videoN", escaped);
  return FALSE;
}

static gboolean
check_ice_server (const gchar * key, const gchar * value,
    const gchar * const *schemes, GError ** error)
{
  g_autofree gchar *escaped = NULL;
  guint i;

  if (value == NULL)
    return TRUE;
  for (i = 0; schemes[i] != NULL; i++) {
    if (g_str_has_prefix (value, schemes[i]) &&
        value[strlen (schemes[i])] != '\0' &&
        strpbrk (value, " \t\r\n") == NULL)
      return TRUE;
  }
  escaped = g_strescape (value, NULL);
  g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
      "%s: \"%s\" must start with %s", key, escaped, schemes[0]);
  return FALSE;
}

gboolean
pcr_config_validate (const PcrConfig * config, GError ** error)
{
  static const gchar *stun[] = { "stun://", NULL };
  static const gchar *turn[] = { "turn://", "turns://", NULL };
  guint i;

  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_range ("width", config->width, MIN_SIZE, MAX_SIZE, error) ||
      !check_range ("height", config->height, MIN_SIZE, MAX_SIZE, error) ||
      !check_range ("framerate", config->framerate, MIN_FRAMERATE,
          MAX_FRAMERATE, error) ||
      !check_range ("bitrate", config->bitrate, MIN_BITRATE, MAX_BITRATE,
          error) ||
      !check_range ("max-viewers", config->max_viewers, MIN_VIEWERS,
          MAX_VIEWERS, error) ||
      !check_range ("idle-stop-seconds", config->idle_stop_seconds, 0,
          MAX_IDLE_STOP, error))
    return FALSE;

  /* 4:2:0 video needs even sizes; encoders refuse odd ones */
  if (config->width % 2 != 0 || config->height % 2 != 0) {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "%s: %d must be even", config->width % 2 ? "width" : "height",
        config->width % 2 ? config->width : config->height);
    return FALSE;
  }

  if (!check_broker (config->broker, error) ||
      !check_device (config->device, error) ||
      !check_topic_prefix (config->topic_prefix, error) ||
      !check_source (config->source, error))
    return FALSE;

  if (config->password != NULL && config->username == NULL) {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "password: set without a username");
    return FALSE;
  }
  if (config->ca_file != NULL &&
      !g_file_test (config->ca_file, G_FILE_TEST_IS_REGULAR)) {
    g_autofree gchar *escaped = g_strescape (config->ca_file, NULL);

    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "ca-file: \"%s\" is not a readable file", escaped);
    return FALSE;
  }

  for (i = 0; config->ice_addresses && config->ice_addresses[i]; i++) {
    if (!g_hostname_is_ip_address (config->ice_addresses[i])) {
      g_autofree gchar *escaped = g_strescape (config->ice_addresses[i],
          NULL);

      g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
          "ice-address: \"%s\" is not an IP address", escaped);
      return FALSE;
    }
  }

  if (!check_ice_server ("stun-server", config->stun_server, stun, error) ||
      !check_ice_server ("turn-server", config->turn_server, turn, error))
    return FALSE;

  return TRUE;
}

/* ---- platform ---------------------------------------------------------- */

PcrPlatform *
pcr_platform_new (void)
{
  PcrPlatform *platform = g_new0 (PcrPlatform, 1);

  platform->elements = g_hash_table_new_full (g_str_hash, g_str_equal,
      g_free, NULL);
  return platform;
}

void
pcr_platform_add_element (PcrPlatform * platform, const gchar * factory)
{
  g_return_if_fail (platform != NULL);
  g_return_if_fail (factory != NULL);

  g_hash_table_add (platform->elements, g_strdup (factory));
}

gboolean
pcr_platform_has_element (const PcrPlatform * platform, const gchar * factory)
{
  g_return_val_if_fail (platform != NULL, FALSE);

  return g_hash_table_contains (platform->elements, factory);
}

void
pcr_platform_free (PcrPlatform * platform)
{
  if (platform == NULL)
    return;

  g_hash_table_unref (platform->elements);
  g_free (platform->v4l2_capture_device);
  g_free (platform);
}

/* Every factory the selection or the start-up check asks about. */
static const gchar *probed_elements[] = {
  "libcamerasrc", "v4l2src", "videotestsrc", "clockoverlay",
  "v4l2h264enc", "x264enc", "openh264enc",
  "videoconvert", "videoscale", "videorate", "decodebin", "jpegdec",
  "h264parse", "rtph264pay", "webrtcbin", "nicesrc", "nicesink",
  "mqttwebrtcsink",
};

static GList *
provider_devices (const gchar * name)
{
  g_autoptr (GstDeviceProvider) provider = NULL;

  provider = gst_device_provider_factory_get_by_name (name);
  if (provider == NULL) {
    GST_DEBUG ("no device provider %s", name);
    return NULL;
  }
  /* without gst_device_provider_start() this is a one-shot probe */
  return gst_device_provider_get_devices (provider);
}

static gboolean
probe_libcamera (void)
{
  GList *devices = provider_devices ("libcameraprovider");
  gboolean found = devices != NULL;

  GST_INFO ("libcamera sees %u camera(s)", g_list_length (devices));
  g_list_free_full (devices, gst_object_unref);
  return found;
}

static gchar *
probe_v4l2 (void)
{
  GList *devices = provider_devices ("v4l2deviceprovider");
  gchar *path = NULL;
  GList *l;

  for (l = devices; l != NULL && path == NULL; l = l->next) {
    GstDevice *device = l->data;
    g_autoptr (GstStructure) props = NULL;
    const gchar *p;

    if (!gst_device_has_classes (device, "Video/Source"))
      continue;
    props = gst_device_get_properties (device);
    if (props == NULL)
      continue;
    p = gst_structure_get_string (props, "device.path");
    if (p == NULL)
      p = gst_structure_get_string (props, "api.v4l2.path");
    if (p != NULL && is_safe_device_path (p))
      path = g_strdup (p);
  }
  GST_INFO ("first V4L2 capture device: %s", GST_STR_NULL (path));
  g_list_free_full (devices, gst_object_unref);
  return path;
}

PcrPlatform *
pcr_platform_probe_full (gboolean with_devices)
{
  PcrPlatform *platform = pcr_platform_new ();
  guint i;

  ensure_debug_category ();

  for (i = 0; i < G_N_ELEMENTS (probed_elements); i++) {
    g_autoptr (GstElementFactory) factory =
        gst_element_factory_find (probed_elements[i]);

    if (factory != NULL)
      pcr_platform_add_element (platform, probed_elements[i]);
  }

  if (with_devices) {
    if (pcr_platform_has_element (platform, "libcamerasrc"))
      platform->libcamera_camera = probe_libcamera ();
    if (pcr_platform_has_element (platform, "v4l2src"))
      platform->v4l2_capture_device = probe_v4l2 ();
  }
  return platform;
}

PcrPlatform *
pcr_platform_probe (void)
{
  return pcr_platform_probe_full (TRUE);
}

/* ---- packages ---------------------------------------------------------- */

static const struct
{
  const gchar *factory;
  const gchar *package;
} packages[] = {
  {"libcamerasrc", "gstreamer1.0-libcamera"},
  {"x264enc", "gstreamer1.0-plugins-ugly"},
  {"v4l2src", "gstreamer1.0-plugins-good"},
  {"v4l2h264enc", "gstreamer1.0-plugins-good"},
  {"v4l2convert", "gstreamer1.0-plugins-good"},
  {"rtph264pay", "gstreamer1.0-plugins-good"},
  {"rtph264depay", "gstreamer1.0-plugins-good"},
  {"jpegdec", "gstreamer1.0-plugins-good"},
  {"videotestsrc", "gstreamer1.0-plugins-base"},
  {"videoconvert", "gstreamer1.0-plugins-base"},
  {"videoscale", "gstreamer1.0-plugins-base"},
  {"videorate", "gstreamer1.0-plugins-base"},
  {"decodebin", "gstreamer1.0-plugins-base"},
  /* Debian ships the pango overlays in gstreamer1.0-x */
  {"clockoverlay", "gstreamer1.0-x"},
  {"timeoverlay", "gstreamer1.0-x"},
  {"textoverlay", "gstreamer1.0-x"},
  {"webrtcbin", "gstreamer1.0-plugins-bad"},
  {"h264parse", "gstreamer1.0-plugins-bad"},
  {"openh264enc", "gstreamer1.0-plugins-bad"},
  {"dtlssrtpenc", "gstreamer1.0-plugins-bad"},
  {"srtpenc", "gstreamer1.0-plugins-bad"},
  {"nicesrc", "gstreamer1.0-nice"},
  {"nicesink", "gstreamer1.0-nice"},
  {"queue", "libgstreamer1.0-0"},
  {"tee", "libgstreamer1.0-0"},
  {"capsfilter", "libgstreamer1.0-0"},
  {"identity", "libgstreamer1.0-0"},
  {"fakesink", "libgstreamer1.0-0"},
  {"mqttwebrtcsink", "picamrtc"},
  {"latencystamp", "picamrtc"},
};

const gchar *
pcr_debian_package_for_element (const gchar * factory)
{
  guint i;

  g_return_val_if_fail (factory != NULL, NULL);

  for (i = 0; i < G_N_ELEMENTS (packages); i++) {
    if (g_str_equal (packages[i].factory, factory))
      return packages[i].package;
  }
  return NULL;
}

gchar *
pcr_describe_missing_elements (const gchar * const *factories)
{
  GString *s = g_string_new (NULL);
  guint i;

  for (i = 0; factories != NULL && factories[i] != NULL; i++) {
    const gchar *package = pcr_debian_package_for_element (factories[i]);

    if (s->len > 0)
      g_string_append (s, ", ");
    g_string_append_printf (s, "%s (%s)", factories[i],
        package ? package : "package unknown");
  }
  return g_string_free (s, FALSE);
}

/* ---- selection --------------------------------------------------------- */

void
pcr_selection_free (PcrSelection * selection)
{
  if (selection == NULL)
    return;

  g_free (selection->source_desc);
  g_free (selection->encoder_desc);
  g_free (selection->source_reason);
  g_free (selection->encoder_reason);
  g_free (selection);
}

/* Fails naming every element of @needed (NULL-terminated) that is missing. */
static gboolean
require_elements (const PcrPlatform * platform, const gchar * what,
    const gchar * const *needed, GError ** error)
{
  g_autoptr (GPtrArray) missing = g_ptr_array_new ();
  g_autofree gchar *list = NULL;
  guint i;

  for (i = 0; needed[i] != NULL; i++) {
    if (!pcr_platform_has_element (platform, needed[i]))
      g_ptr_array_add (missing, (gpointer) needed[i]);
  }
  if (missing->len == 0)
    return TRUE;
  g_ptr_array_add (missing, NULL);
  list = pcr_describe_missing_elements ((const gchar * const *)
      missing->pdata);
  g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_MISSING_ELEMENT,
      "%s needs elements that are not installed: %s", what, list);
  return FALSE;
}

static gboolean
select_test (const PcrConfig * config, const PcrPlatform * platform,
    const gchar * why, PcrSelection * sel, GError ** error)
{
  static const gchar *needed[] = { "videotestsrc", NULL };
  gboolean clock = pcr_platform_has_element (platform, "clockoverlay");

  if (!require_elements (platform, "the test pattern", needed, error))
    return FALSE;

  sel->source_desc = g_strdup_printf ("videotestsrc is-live=true "
      "pattern=smpte horizontal-speed=4 ! video/x-raw,width=%d,height=%d,"
      "framerate=%d/1%s", config->width, config->height, config->framerate,
      /* bottom right: the web client's stats sit top left */
      clock ? " ! clockoverlay time-format=\"%H:%M:%S\" halignment=right "
      "valignment=bottom font-desc=\"Sans 24\"" : "");
  sel->source_reason = g_strdup_printf ("videotestsrc: %s%s", why,
      clock ? "" : " (no clock overlay: clockoverlay is in gstreamer1.0-x)");
  return TRUE;
}

static gboolean
select_libcamera (const PcrConfig * config, const PcrPlatform * platform,
    const gchar * why, PcrSelection * sel, GError ** error)
{
  static const gchar *needed[] = { "libcamerasrc", NULL };

  if (!require_elements (platform, "source libcamera", needed, error))
    return FALSE;

  sel->source_desc = g_strdup_printf ("libcamerasrc ! video/x-raw,"
      "format=NV12,width=%d,height=%d,framerate=%d/1", config->width,
      config->height, config->framerate);
  sel->source_reason = g_strdup_printf ("libcamerasrc: %s", why);
  return TRUE;
}

static gboolean
select_v4l2 (const PcrConfig * config, const PcrPlatform * platform,
    const gchar * device, const gchar * why, PcrSelection * sel,
    GError ** error)
{
  static const gchar *needed[] = { "v4l2src", "decodebin", "videoconvert",
    "videoscale", "videorate", NULL
  };

  if (!require_elements (platform, "source v4l2", needed, error))
    return FALSE;
  if (device == NULL) {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "source: v4l2: no V4L2 capture device found; name one with "
        "v4l2:/dev/videoN");
    return FALSE;
  }
  if (!is_safe_device_path (device)) {
    g_autofree gchar *escaped = g_strescape (device, NULL);

    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "source: \"%s\" is not a device path", escaped);
    return FALSE;
  }

  /* decodebin takes both MJPEG and raw webcams */
  sel->source_desc = g_strdup_printf ("v4l2src device=%s ! decodebin ! "
      "videoconvert ! videoscale ! video/x-raw,format=I420,width=%d,"
      "height=%d ! videorate ! video/x-raw,framerate=%d/1", device,
      config->width, config->height, config->framerate);
  sel->source_reason = g_strdup_printf ("v4l2src %s: %s", device, why);
  return TRUE;
}

static const gchar *
h264_level (const PcrConfig * config)
{
  /* level 3.1 allows 3600 macroblocks a frame, 108000 a second: 720p30 */
  gint mbs = ((config->width + 15) / 16) * ((config->height + 15) / 16);

  return mbs <= 3600 && mbs * config->framerate <= 108000 ? "3.1" : "4";
}

static gboolean
select_encoder (const PcrConfig * config, const PcrPlatform * platform,
    gboolean needs_convert, PcrSelection * sel, GError ** error)
{
  gint keyint = 2 * config->framerate;

  if (pcr_platform_has_element (platform, "v4l2h264enc")) {
    sel->encoder_desc = g_strdup_printf ("v4l2h264enc extra-controls="
        "\"controls,repeat_sequence_header=1,video_bitrate=%d,"
        "h264_i_frame_period=%d\" ! video/x-h264,"
        "profile=(string)constrained-baseline,level=(string)%s",
        config->bitrate * 1000, keyint, h264_level (config));
    sel->encoder_reason = g_strdup ("v4l2h264enc: hardware H.264 encoder");
    return TRUE;
  }

  if (pcr_platform_has_element (platform, "x264enc")) {
    sel->encoder_desc = g_strdup_printf ("x264enc tune=zerolatency "
        "speed-preset=ultrafast key-int-max=%d bframes=0 bitrate=%d ! "
        "video/x-h264,profile=(string)constrained-baseline", keyint,
        config->bitrate);
    sel->encoder_reason = g_strdup ("x264enc: no hardware encoder "
        "(v4l2h264enc not present)");
    return TRUE;
  }

  if (pcr_platform_has_element (platform, "openh264enc")) {
    /* openh264enc takes I420 only; videoconvert passes I420 through */
    sel->encoder_desc = g_strdup_printf ("%sopenh264enc complexity=low "
        "rate-control=bitrate usage-type=camera bitrate=%d gop-size=%d ! "
        "video/x-h264,profile=(string)constrained-baseline",
        needs_convert ? "videoconvert ! " : "", config->bitrate * 1000, keyint);
    sel->encoder_reason = g_strdup ("openh264enc: no hardware encoder "
        "(v4l2h264enc not present) and no x264enc "
        "(gstreamer1.0-plugins-ugly)");
    return TRUE;
  }

  g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_MISSING_ELEMENT,
      "no H.264 encoder: install gstreamer1.0-plugins-ugly (x264enc) or "
      "gstreamer1.0-plugins-bad (openh264enc); v4l2h264enc "
      "(gstreamer1.0-plugins-good) needs a hardware encoder");
  return FALSE;
}

PcrSelection *
pcr_select (const PcrConfig * config, const PcrPlatform * platform,
    GError ** error)
{
  g_autoptr (PcrSelection) sel = g_new0 (PcrSelection, 1);
  const gchar *source;
  gboolean ok;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (platform != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  ensure_debug_category ();
  source = config->source ? config->source : "auto";

  if (g_str_equal (source, "test")) {
    ok = select_test (config, platform, "requested", sel, error);
  } else if (g_str_equal (source, "libcamera")) {
    ok = select_libcamera (config, platform, platform->libcamera_camera ?
        "requested" : "requested (libcamera sees no camera yet)", sel, error);
  } else if (g_str_equal (source, "v4l2")) {
    ok = select_v4l2 (config, platform, platform->v4l2_capture_device,
        "requested, first V4L2 capture device", sel, error);
  } else if (g_str_has_prefix (source, "v4l2:")) {
    ok = select_v4l2 (config, platform, source + 5, "requested", sel, error);
  } else if (g_str_equal (source, "auto")) {
    if (platform->libcamera_camera &&
        pcr_platform_has_element (platform, "libcamerasrc")) {
      ok = select_libcamera (config, platform, "libcamera sees a camera",
          sel, error);
    } else if (platform->v4l2_capture_device != NULL &&
        pcr_platform_has_element (platform, "v4l2src")) {
      ok = select_v4l2 (config, platform, platform->v4l2_capture_device,
          "no libcamera camera, V4L2 capture device found", sel, error);
    } else {
      ok = select_test (config, platform, "no camera found (no libcamera "
          "camera, no V4L2 capture device)", sel, error);
    }
  } else {
    g_autofree gchar *escaped = g_strescape (source, NULL);

    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "source: \"%s\" is not one of auto, test, libcamera, v4l2, "
        "v4l2:/dev/videoN", escaped);
    ok = FALSE;
  }
  if (!ok)
    return NULL;

  /* libcamerasrc gives NV12, which only openh264enc cannot take */
  if (!select_encoder (config, platform,
          g_str_has_prefix (sel->source_desc, "libcamerasrc"), sel, error))
    return NULL;

  GST_INFO ("source %s; encoder %s", sel->source_reason, sel->encoder_reason);
  return g_steal_pointer (&sel);
}

/* ---- pipeline ---------------------------------------------------------- */

gchar *
pcr_pipeline_expand (const PcrConfig * config, const gchar * text,
    GError ** error)
{
  GString *out;
  const gchar *p = text;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (text != NULL, NULL);

  out = g_string_sized_new (strlen (text) + 32);
  while (*p != '\0') {
    const gchar *end;
    g_autofree gchar *name = NULL;
    gint value;

    if (p[0] != '$' || p[1] != '{') {
      g_string_append_c (out, *p++);
      continue;
    }
    end = strchr (p + 2, '}');
    if (end == NULL) {
      g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
          "pipeline: unterminated placeholder \"${\"");
      g_string_free (out, TRUE);
      return NULL;
    }
    name = g_strndup (p + 2, end - (p + 2));
    if (g_str_equal (name, "LATENCY_STAMP")) {
      g_string_append (out, config->latency_stamp ? "latencystamp !" : "");
      p = end + 1;
      continue;
    }
    if (g_str_equal (name, "WIDTH"))
      value = config->width;
    else if (g_str_equal (name, "HEIGHT"))
      value = config->height;
    else if (g_str_equal (name, "FRAMERATE"))
      value = config->framerate;
    else if (g_str_equal (name, "BITRATE"))
      value = config->bitrate;
    else if (g_str_equal (name, "KEYINT"))
      value = 2 * config->framerate;
    else {
      g_autofree gchar *escaped = g_strescape (name, NULL);

      g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
          "pipeline: unknown placeholder \"${%s}\" (known: ${WIDTH} "
          "${HEIGHT} ${FRAMERATE} ${BITRATE} ${KEYINT} ${LATENCY_STAMP})",
          escaped);
      g_string_free (out, TRUE);
      return NULL;
    }
    g_string_append_printf (out, "%d", value);
    p = end + 1;
  }
  return g_string_free (out, FALSE);
}

/* Reads at most PCR_PIPELINE_FILE_MAX bytes; a bigger file (or a device
 * that never ends) is refused rather than read whole. */
static gchar *
read_pipeline_file (const gchar * path, GError ** error)
{
  g_autofree gchar *buf = g_malloc (PCR_PIPELINE_FILE_MAX + 1);
  gsize len = 0;
  int fd;

  fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) {
    int saved = errno;

    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "pipeline: cannot open %s: %s", path, g_strerror (saved));
    return NULL;
  }
  while (len <= PCR_PIPELINE_FILE_MAX) {
    gssize n = read (fd, buf + len, PCR_PIPELINE_FILE_MAX + 1 - len);

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int saved = errno;

      close (fd);
      g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
          "pipeline: cannot read %s: %s", path, g_strerror (saved));
      return NULL;
    }
    if (n == 0)
      break;
    len += n;
  }
  close (fd);

  if (len > PCR_PIPELINE_FILE_MAX) {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "pipeline: %s is larger than %d bytes", path, PCR_PIPELINE_FILE_MAX);
    return NULL;
  }
  buf[len] = '\0';
  if (memchr (buf, '\0', len) != NULL || !g_utf8_validate (buf, len, NULL)) {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "pipeline: %s is not UTF-8 text", path);
    return NULL;
  }
  return g_steal_pointer (&buf);
}

/* Drops '#' comment lines and joins the rest with spaces; a trailing
 * backslash (shell style continuation) is dropped too. */
static gchar *
join_lines (const gchar * text)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  GString *out = g_string_new (NULL);
  guint i;

  for (i = 0; lines[i] != NULL; i++) {
    gchar *line = g_strstrip (lines[i]);
    gsize len = strlen (line);

    if (line[0] == '#' || len == 0)
      continue;
    if (line[len - 1] == '\\')
      line[--len] = '\0';
    if (out->len > 0)
      g_string_append_c (out, ' ');
    g_string_append (out, g_strstrip (line));
  }
  return g_string_free (out, FALSE);
}

gchar *
pcr_build_pipeline (const PcrConfig * config,
    const PcrSelection * selection, GError ** error)
{
  g_autofree gchar *text = NULL;
  g_autofree gchar *joined = NULL;
  g_autofree gchar *expanded = NULL;
  const gchar *pipeline;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  pipeline = config->pipeline;
  if (pipeline == NULL || *pipeline == '\0') {
    g_return_val_if_fail (selection != NULL, NULL);
    /* right after the source caps: the stamp is the capture time, and the
     * encoder must see it */
    return g_strdup_printf ("%s ! %s%s ! mqttwebrtcsink name=sink",
        selection->source_desc,
        config->latency_stamp ? "latencystamp ! " : "",
        selection->encoder_desc);
  }

  if (g_file_test (pipeline, G_FILE_TEST_IS_REGULAR)) {
    text = read_pipeline_file (pipeline, error);
    if (text == NULL)
      return NULL;
  } else if (strchr (pipeline, '!') == NULL && strchr (pipeline, '/') != NULL) {
    /* looks like a path, and a description this short cannot stream */
    g_autofree gchar *escaped = g_strescape (pipeline, NULL);

    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "pipeline: \"%s\" is neither a readable file nor a pipeline "
        "description", escaped);
    return NULL;
  } else {
    text = g_strdup (pipeline);
  }

  joined = join_lines (text);
  if (*joined == '\0') {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "pipeline: the description is empty");
    return NULL;
  }
  if (strstr (joined, "mqttwebrtcsink") == NULL) {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "pipeline: the description has no mqttwebrtcsink (it should end in "
        "\"... ! mqttwebrtcsink name=sink\")");
    return NULL;
  }
  /* asked for a stamp the pipeline has no place for: say so rather than
   * measure nothing */
  if (config->latency_stamp && strstr (joined, "${LATENCY_STAMP}") == NULL
      && strstr (joined, "latencystamp") == NULL) {
    g_set_error (error, PCR_CONFIG_ERROR, PCR_CONFIG_ERROR_INVALID,
        "pipeline: latency-stamp is on but the description has no "
        "${LATENCY_STAMP} placeholder (put it after the source caps: "
        "\"... ! video/x-raw,... ! ${LATENCY_STAMP} x264enc ...\")");
    return NULL;
  }
  expanded = pcr_pipeline_expand (config, joined, error);
  return g_steal_pointer (&expanded);
}
