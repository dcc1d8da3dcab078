/* The camera service's choice of source and encoder from what this machine
 * offers, and the gst-launch description it runs. The choice only looks at
 * a PcrPlatform (what the registry and the device providers offer), so
 * tests can fake a Raspberry Pi on any machine. */
#include "pcr-select.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gst/gst.h>

#include "pcr-packages.h"
#include "pcr-quote.h"

GST_DEBUG_CATEGORY_STATIC (pcr_select_debug);
#define GST_CAT_DEFAULT pcr_select_debug

G_DEFINE_QUARK (pcr-select-error-quark, pcr_select_error);

/* After the tee, on each branch: its own thread, and the newest frame
 * rather than a backlog when its encoder falls behind. */
#define PCR_BRANCH_QUEUE "queue max-size-buffers=1 max-size-bytes=0 " \
  "max-size-time=0 leaky=downstream"

static void
ensure_debug_category (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once)) {
    GST_DEBUG_CATEGORY_INIT (pcr_select_debug, "pcrselect", 0,
        "picamrtc source and encoder selection");
    g_once_init_leave (&once, 1);
  }
}

/* ---- sources ----------------------------------------------------------- */

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

gboolean
pcr_check_source (const gchar * value, GError ** error)
{
  g_autofree gchar *escaped = pcr_quote_untrusted (value,
      PCR_QUOTE_MAX_VALUE);

  if (value != NULL && (g_str_equal (value, "auto") ||
          g_str_equal (value, "test") || g_str_equal (value, "libcamera") ||
          g_str_equal (value, "v4l2")))
    return TRUE;
  if (value != NULL && g_str_has_prefix (value, "v4l2:")) {
    if (is_safe_device_path (value + 5))
      return TRUE;
    g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
        "\"%s\": v4l2: needs a device path such as /dev/video0", escaped);
    return FALSE;
  }
  g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
      "\"%s\" is not one of auto, test, libcamera, v4l2, v4l2:/dev/videoN",
      escaped);
  return FALSE;
}

/* An ALSA device name goes into a gst-launch description too: hw:1,0,
 * plughw:CARD=C920,DEV=0, default; no spaces, quotes or '!'. */
static gboolean
is_safe_alsa_device (const gchar * name)
{
  const gchar *c;

  if (*name == '\0' || strlen (name) > 64)
    return FALSE;
  for (c = name; *c != '\0'; c++) {
    if (!g_ascii_isalnum (*c) && strchr (":,=_-.", *c) == NULL)
      return FALSE;
  }
  return TRUE;
}

/* A file path in a description: the characters of ordinary file names. */
static gboolean
is_safe_file_path (const gchar * path)
{
  const gchar *c;

  if (*path == '\0' || strlen (path) > 255)
    return FALSE;
  for (c = path; *c != '\0'; c++) {
    if (!g_ascii_isalnum (*c) && strchr ("/._-+", *c) == NULL)
      return FALSE;
  }
  return TRUE;
}

/* alsa or alsa:DEVICE; fails naming @what's value. */
static gboolean
check_alsa (const gchar * value, const gchar * escaped, GError ** error)
{
  if (g_str_equal (value, "alsa") ||
      (g_str_has_prefix (value, "alsa:") && is_safe_alsa_device (value + 5)))
    return TRUE;
  g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
      "\"%s\": alsa: needs an ALSA device name of A-Z a-z 0-9 : , = _ - . "
      "such as hw:1,0 or plughw:CARD=C920,DEV=0", escaped);
  return FALSE;
}

gboolean
pcr_check_audio (const gchar * value, GError ** error)
{
  g_autofree gchar *escaped = pcr_quote_untrusted (value,
      PCR_QUOTE_MAX_VALUE);

  if (value != NULL && (g_str_equal (value, "auto") ||
          g_str_equal (value, "none") || g_str_equal (value, "test")))
    return TRUE;
  if (value != NULL && g_str_has_prefix (value, "alsa"))
    return check_alsa (value, escaped, error);
  g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
      "\"%s\" is not one of auto, none, test, alsa, alsa:DEVICE", escaped);
  return FALSE;
}

gboolean
pcr_check_talkback (const gchar * value, GError ** error)
{
  g_autofree gchar *escaped = pcr_quote_untrusted (value,
      PCR_QUOTE_MAX_VALUE);

  if (value != NULL && g_str_equal (value, "none"))
    return TRUE;
  if (value != NULL && g_str_has_prefix (value, "alsa"))
    return check_alsa (value, escaped, error);
  if (value != NULL && g_str_has_prefix (value, "file:")) {
    if (is_safe_file_path (value + 5))
      return TRUE;
    g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
        "\"%s\": file: needs a path of A-Z a-z 0-9 / . _ - + only",
        escaped);
    return FALSE;
  }
  g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
      "\"%s\" is not one of none, alsa, alsa:DEVICE, file:PATH", escaped);
  return FALSE;
}

gchar *
pcr_talkback_description (const gchar * talkback)
{
  g_return_val_if_fail (talkback != NULL, NULL);
  g_return_val_if_fail (pcr_check_talkback (talkback, NULL), NULL);

  if (g_str_equal (talkback, "none"))
    return NULL;
  if (g_str_has_prefix (talkback, "file:"))
    return g_strdup_printf ("audioconvert ! audioresample ! "
        "audio/x-raw,format=S16LE,rate=48000,channels=1 ! "
        "filesink location=%s", talkback + 5);
  /* sync=false: played as it comes; a 60 ms ring buffer of 10 ms
   * periods, not the default 200 ms: talk-back should add little delay */
  return g_strdup_printf ("alsasink device=%s sync=false buffer-time=60000 "
      "latency-time=10000",
      talkback[4] == ':' ? talkback + 5 : "default");
}

/* ---- platform ---------------------------------------------------------- */

PcrPlatform *
pcr_platform_new (void)
{
  PcrPlatform *platform = g_new0 (PcrPlatform, 1);

  platform->elements = g_hash_table_new_full (g_str_hash, g_str_equal,
      g_free, NULL);
  platform->cameras = g_ptr_array_new_with_free_func (g_free);
  platform->v4l2_cameras = g_ptr_array_new_with_free_func ((GDestroyNotify)
      gst_structure_free);
  platform->microphones = g_ptr_array_new_with_free_func ((GDestroyNotify)
      gst_structure_free);
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
  g_ptr_array_unref (platform->cameras);
  g_ptr_array_unref (platform->v4l2_cameras);
  g_ptr_array_unref (platform->microphones);
  g_free (platform);
}

/* Every factory the selection or the start-up check asks about. */
static const gchar *probed_elements[] = {
  "libcamerasrc", "v4l2src", "videotestsrc", "clockoverlay",
  "v4l2h264enc", "x264enc", "openh264enc",
  "videoconvert", "videoscale", "videorate", "decodebin", "jpegdec",
  "tee", "queue", "valve",
  "h264parse", "rtph264pay", "webrtcbin", "nicesrc", "nicesink",
  "mqttwebrtcsink", "halfscale", "jpegenc",
  "audiotestsrc", "alsasrc", "audioconvert", "audioresample", "opusenc",
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

/* A device's name as one line of printable text: it comes from a driver
 * or a USB descriptor. */
static gchar *
device_name (GstDevice * device)
{
  g_autofree gchar *name = gst_device_get_display_name (device);

  return pcr_quote_untrusted (name ? name : "unnamed", PCR_QUOTE_MAX_VALUE);
}

static gboolean
probe_libcamera (GPtrArray * cameras)
{
  GList *devices = provider_devices ("libcameraprovider");
  gboolean found = devices != NULL;
  GList *l;

  GST_INFO ("libcamera sees %u camera(s)", g_list_length (devices));
  for (l = devices; l != NULL; l = l->next) {
    g_autofree gchar *name = device_name (l->data);

    g_ptr_array_add (cameras, g_strdup_printf ("libcamera %s", name));
  }
  g_list_free_full (devices, gst_object_unref);
  return found;
}

/* The first V4L2 capture device's path; every one goes to @cameras, its
 * properties to @props. */
static gchar *
probe_v4l2 (GPtrArray * cameras, GPtrArray * props_out)
{
  GList *devices = provider_devices ("v4l2deviceprovider");
  gchar *path = NULL;
  GList *l;

  for (l = devices; l != NULL; l = l->next) {
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
    if (p != NULL && is_safe_device_path (p)) {
      g_autofree gchar *name = device_name (device);
      GstStructure *copy = gst_structure_copy (props);

      gst_structure_set (copy, "device.path", G_TYPE_STRING, p, NULL);
      GST_DEBUG ("V4L2 %s: %" GST_PTR_FORMAT, p, copy);
      g_ptr_array_add (props_out, copy);
      g_ptr_array_add (cameras, g_strdup_printf ("V4L2 %s (%s)", p, name));
      if (path == NULL)
        path = g_strdup (p);
    }
  }
  GST_INFO ("first V4L2 capture device: %s", GST_STR_NULL (path));
  g_list_free_full (devices, gst_object_unref);
  return path;
}

void
pcr_platform_probe_microphones (PcrPlatform * platform)
{
  GList *devices, *l;

  g_return_if_fail (platform != NULL);

  ensure_debug_category ();
  if (!platform->v4l2_probed) {
    /* the cameras, for their USB places; the first one's name is not needed */
    g_free (probe_v4l2 (platform->cameras, platform->v4l2_cameras));
    platform->v4l2_probed = TRUE;
  }
  g_ptr_array_set_size (platform->microphones, 0);
  devices = provider_devices ("alsadeviceprovider");
  for (l = devices; l != NULL; l = l->next) {
    GstDevice *device = l->data;
    g_autoptr (GstStructure) props = gst_device_get_properties (device);
    g_autofree gchar *internal = NULL;
    g_autofree gchar *longname = gst_device_get_display_name (device);
    GstStructure *mic;
    gint card = -1;

    if (props == NULL || !gst_device_has_classes (device, "Audio/Source"))
      continue;
    if (g_object_class_find_property (G_OBJECT_GET_CLASS (device),
            "internal-name") != NULL)
      g_object_get (device, "internal-name", &internal, NULL);
    if (internal == NULL || !is_safe_alsa_device (internal))
      continue;
    mic = gst_structure_copy (props);
    gst_structure_set (mic, "alsa.device", G_TYPE_STRING, internal,
        "alsa.longname", G_TYPE_STRING, longname ? longname : "", NULL);
    /* the card's place in sysfs, for the USB device it belongs to */
    if (gst_structure_get_int (mic, "alsa.card", &card) && card >= 0) {
      g_autofree gchar *link = g_strdup_printf ("/sys/class/sound/card%d",
          card);
      g_autofree gchar *real = realpath (link, NULL);

      if (real != NULL)
        gst_structure_set (mic, "sysfs.path", G_TYPE_STRING, real, NULL);
    }
    GST_DEBUG ("ALSA capture %s: %" GST_PTR_FORMAT, internal, mic);
    g_ptr_array_add (platform->microphones, mic);
  }
  GST_INFO ("%u ALSA capture device(s)", platform->microphones->len);
  g_list_free_full (devices, gst_object_unref);
}

/* "1-1.4:1.0": a USB interface in a sysfs path (bus-port[.port]:config.if). */
static gboolean
is_usb_interface (const gchar * name)
{
  const gchar *colon = strchr (name, ':');

  if (colon == NULL || colon == name || !g_ascii_isdigit (name[0]) ||
      strchr (name, '-') == NULL || strchr (name, '-') > colon)
    return FALSE;
  return strspn (name, "0123456789-.") == (gsize) (colon - name) &&
      colon[1] != '\0' && strspn (colon + 1, "0123456789.") ==
      strlen (colon + 1);
}

/* The USB device directory of a sysfs path: up to its last USB interface
 * component, or NULL. */
static gchar *
usb_device_dir (const gchar * sysfs_path)
{
  g_auto (GStrv) parts = NULL;
  GString *dir;
  gint i, last = -1;

  if (sysfs_path == NULL || sysfs_path[0] != '/')
    return NULL;
  parts = g_strsplit (sysfs_path, "/", -1);
  for (i = 0; parts[i] != NULL; i++) {
    if (is_usb_interface (parts[i]))
      last = i;
  }
  if (last < 2)
    return NULL;
  dir = g_string_new (NULL);
  for (i = 1; i < last; i++)
    g_string_append_printf (dir, "/%s", parts[i]);
  return g_string_free (dir, FALSE);
}

gboolean
pcr_microphone_of_camera (const GstStructure * camera,
    const GstStructure * microphone)
{
  g_autofree gchar *camera_usb = NULL;
  g_autofree gchar *mic_usb = NULL;
  const gchar *bus_info, *longname;

  g_return_val_if_fail (camera != NULL && microphone != NULL, FALSE);

  camera_usb = usb_device_dir (gst_structure_get_string (camera,
          "sysfs.path"));
  mic_usb = usb_device_dir (gst_structure_get_string (microphone,
          "sysfs.path"));
  if (camera_usb != NULL && mic_usb != NULL)
    return g_str_equal (camera_usb, mic_usb);

  /* no sysfs (a container): the USB path both drivers name */
  bus_info = gst_structure_get_string (camera, "v4l2.device.bus_info");
  longname = gst_structure_get_string (microphone, "alsa.longname");
  if (bus_info != NULL && g_str_has_prefix (bus_info, "usb-") &&
      longname != NULL) {
    g_autofree gchar *needle = g_strdup_printf (" at %s", bus_info);
    const gchar *at = strstr (longname, needle);

    if (at != NULL) {
      gchar next = at[strlen (needle)];

      return next == '\0' || next == ',';
    }
  }
  return FALSE;
}

GstClockTime
pcr_tick_phase (GstClockTime first, guint64 interval)
{
  if (!GST_CLOCK_TIME_IS_VALID (first) || interval == 0)
    return 0;
  return first % interval;
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
      platform->libcamera_camera = probe_libcamera (platform->cameras);
    if (pcr_platform_has_element (platform, "v4l2src")) {
      platform->v4l2_capture_device = probe_v4l2 (platform->cameras,
          platform->v4l2_cameras);
      platform->v4l2_probed = TRUE;
    }
  }
  return platform;
}

PcrPlatform *
pcr_platform_probe (void)
{
  return pcr_platform_probe_full (TRUE);
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
  g_free (selection->low_desc);
  g_free (selection->low_reason);
  g_free (selection->snapshot_reason);
  g_free (selection->audio_desc);
  g_free (selection->audio_reason);
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
  g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_MISSING_ELEMENT,
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
    g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
        "source: v4l2: no V4L2 capture device found; name one with "
        "v4l2:/dev/videoN");
    return FALSE;
  }
  if (!is_safe_device_path (device)) {
    g_autofree gchar *escaped = pcr_quote_untrusted (device,
        PCR_QUOTE_MAX_VALUE);

    g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
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
h264_level (gint width, gint height, gint framerate)
{
  /* level 3.1 allows 3600 macroblocks a frame, 108000 a second: 720p30 */
  gint mbs = ((width + 15) / 16) * ((height + 15) / 16);

  return mbs <= 3600 && mbs * framerate <= 108000 ? "3.1" : "4";
}

typedef enum
{
  ENCODER_V4L2,
  ENCODER_X264,
  ENCODER_OPENH264,
} EncoderKind;

/* x264's rate-control buffer, in ms of the bitrate: the largest frame (a
 * key frame) is at most this much of a second's bits. x264enc's 600 ms
 * made key frames bursts that a slow link dropped and repaired for a
 * second; 200 ms: a 500 kbit/s bottleneck 22 -> 25 fps, 3 -> 2 s frozen
 * (browser-bottleneck-500k), a 1 Mbit/s one 21-24 -> 25-26 fps in its
 * first 3 s (docs/networks.md). */
#define X264_VBV_MS 200

/* One encoder and its caps for a picture of @width x @height at @bitrate
 * kbit/s; both renditions use the same kind and key frame interval. */
static gchar *
encoder_desc (EncoderKind kind, const PcrConfig * config, gint width,
    gint height, gint bitrate, gboolean needs_convert)
{
  gint keyint = 2 * config->framerate;

  switch (kind) {
    case ENCODER_V4L2:
      return g_strdup_printf ("v4l2h264enc extra-controls="
          "\"controls,repeat_sequence_header=1,video_bitrate=%d,"
          "h264_i_frame_period=%d\" ! video/x-h264,"
          "profile=(string)constrained-baseline,level=(string)%s",
          bitrate * 1000, keyint, h264_level (width, height,
              config->framerate));
    case ENCODER_X264:
      return g_strdup_printf ("x264enc tune=zerolatency "
          "speed-preset=ultrafast key-int-max=%d bframes=0 "
          "vbv-buf-capacity=" G_STRINGIFY (X264_VBV_MS) " bitrate=%d ! "
          "video/x-h264,profile=(string)constrained-baseline", keyint,
          bitrate);
    case ENCODER_OPENH264:
      /* openh264enc takes I420 only; videoconvert passes I420 through */
      return g_strdup_printf ("%sopenh264enc complexity=low "
          "rate-control=bitrate usage-type=camera bitrate=%d gop-size=%d ! "
          "video/x-h264,profile=(string)constrained-baseline",
          needs_convert ? "videoconvert ! " : "", bitrate * 1000, keyint);
  }
  g_assert_not_reached ();
}

static gboolean
select_encoder (const PcrPlatform * platform, EncoderKind * kind,
    PcrSelection * sel, GError ** error)
{
  if (pcr_platform_has_element (platform, "v4l2h264enc")) {
    *kind = ENCODER_V4L2;
    sel->encoder_reason = g_strdup ("v4l2h264enc: hardware H.264 encoder");
  } else if (pcr_platform_has_element (platform, "x264enc")) {
    *kind = ENCODER_X264;
    sel->encoder_reason = g_strdup ("x264enc: no hardware encoder "
        "(v4l2h264enc not present)");
  } else if (pcr_platform_has_element (platform, "openh264enc")) {
    *kind = ENCODER_OPENH264;
    sel->encoder_reason = g_strdup ("openh264enc: no hardware encoder "
        "(v4l2h264enc not present) and no x264enc "
        "(gstreamer1.0-plugins-ugly)");
  } else {
    g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_MISSING_ELEMENT,
        "no H.264 encoder: install gstreamer1.0-plugins-ugly (x264enc) or "
        "gstreamer1.0-plugins-bad (openh264enc); v4l2h264enc "
        "(gstreamer1.0-plugins-good) needs a hardware encoder");
    return FALSE;
  }
  return TRUE;
}

/* Still images: the sink makes a JPEG of a raw frame with
 * gst_video_convert_sample, which needs these. Without them the camera
 * streams as ever and a snapshot gets "no-snapshot". */
static void
select_snapshots (const PcrPlatform * platform, PcrSelection * sel)
{
  static const gchar *const needed[] = { "jpegenc", "videoconvert",
    "videoscale", "tee"
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (needed); i++) {
    if (!pcr_platform_has_element (platform, needed[i])) {
      sel->snapshot_reason = g_strdup_printf ("no still images: %s is "
          "missing (gstreamer1.0-plugins-%s)", needed[i],
          g_str_equal (needed[i], "jpegenc") ? "good" : "base");
      return;
    }
  }
  sel->snapshots = TRUE;
  sel->snapshot_reason = g_strdup ("JPEG on request, from the raw frames "
      "(jpegenc)");
}

/* The low rendition's branch, from the tee to sink.sink_low. The valve
 * starts closed: the sink opens it while a viewer needs this rendition, so
 * its scaler and encoder idle otherwise. The leaky queue keeps a slow
 * branch from holding back the other one. Half the size (the default) is
 * made by halfscale (our plugin, a 2x2 average: a twentieth of
 * videoscale's cost here, docs/networks.md), any other size by
 * videoscale. */
static gboolean
select_low (const PcrConfig * config, const PcrPlatform * platform,
    EncoderKind kind, gboolean needs_convert, PcrSelection * sel,
    GError ** error)
{
  const gchar *needed[] = { "tee", "queue", "valve", NULL, NULL };
  g_autofree gchar *encoder = NULL;
  gint width, height, bitrate;
  const gchar *scaler;

  if (config->renditions < 2) {
    sel->low_reason = g_strdup ("one rendition (renditions=1)");
    return TRUE;
  }
  pcr_config_low_size (config, &width, &height);
  scaler = width == config->width / 2 && height == config->height / 2 &&
      pcr_platform_has_element (platform, "halfscale") ? "halfscale" :
      "videoscale";
  needed[3] = scaler;
  if (!require_elements (platform, "the low rendition (renditions=1 turns "
          "it off)", needed, error))
    return FALSE;

  bitrate = pcr_config_low_bitrate (config);
  encoder = encoder_desc (kind, config, width, height, bitrate,
      needs_convert);
  sel->low_desc = g_strdup_printf (PCR_BRANCH_QUEUE " ! valve drop=true ! "
      "%s ! video/x-raw,width=%d,height=%d ! %s", scaler, width, height,
      encoder);
  sel->low_reason = g_strdup_printf ("%dx%d at %d kbit/s and %dx%d at %d "
      "kbit/s (%s), the low one while a viewer needs it", config->width,
      config->height, config->bitrate, width, height, bitrate, scaler);
  return TRUE;
}

/* The test tone: a 440 Hz tick of ten periods (23 ms) at the start of
 * every second from its first sample; with it the video gets a flash on
 * the same instants (the service tells latencystamp the phase,
 * pcr_tick_phase), where a lip-sync test looks for them. */
#define PCR_AUDIO_TEST "audiotestsrc is-live=true wave=ticks " \
  "tick-interval=1000000000 volume=0.5"
/* Opus as WebRTC wants it: 48 kHz mono, 10 ms frames for low latency */
#define PCR_AUDIO_ENCODE "audioconvert ! audioresample ! " \
  "audio/x-raw,rate=48000,channels=1 ! opusenc frame-size=10 " \
  "bitrate=32000 audio-type=restricted-lowdelay"

/* What source the video has, for the audio's auto choice. */
typedef enum
{
  VIDEO_TEST,
  VIDEO_LIBCAMERA,
  VIDEO_V4L2,
} VideoKind;

/* The microphone of the V4L2 camera at @path, or NULL. */
static const GstStructure *
camera_microphone (const PcrPlatform * platform, const gchar * path)
{
  guint i, j;

  for (i = 0; i < platform->v4l2_cameras->len; i++) {
    const GstStructure *camera = g_ptr_array_index (platform->v4l2_cameras,
        i);

    if (g_strcmp0 (gst_structure_get_string (camera, "device.path"),
            path) != 0)
      continue;
    for (j = 0; j < platform->microphones->len; j++) {
      const GstStructure *mic = g_ptr_array_index (platform->microphones, j);

      if (pcr_microphone_of_camera (camera, mic))
        return mic;
    }
  }
  return NULL;
}

static gboolean
select_audio (const PcrConfig * config, const PcrPlatform * platform,
    VideoKind video, const gchar * v4l2_path, PcrSelection * sel,
    GError ** error)
{
  const gchar *audio = config->audio ? config->audio : PCR_DEFAULT_AUDIO;
  const gchar *needed[] = { "audioconvert", "audioresample", "opusenc",
    NULL, NULL
  };
  g_autofree gchar *source = NULL;
  g_autofree gchar *why = NULL;

  if (g_str_equal (audio, "none")) {
    sel->audio_reason = g_strdup ("none (audio=none)");
    return TRUE;
  }
  if (g_str_equal (audio, "test")) {
    needed[3] = "audiotestsrc";
    if (!require_elements (platform, "audio test", needed, error))
      return FALSE;
    sel->audio_desc = g_strdup (PCR_AUDIO_TEST " ! " PCR_AUDIO_ENCODE);
    sel->audio_reason = g_strdup ("test tone (a tick each second, Opus)");
    return TRUE;
  }
  if (g_str_has_prefix (audio, "alsa")) {
    const gchar *device = audio[4] == ':' ? audio + 5 : "default";

    if (!is_safe_alsa_device (device)) {
      g_autofree gchar *escaped = pcr_quote_untrusted (audio,
          PCR_QUOTE_MAX_VALUE);

      g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
          "audio: \"%s\" is not an ALSA device name", escaped);
      return FALSE;
    }
    needed[3] = "alsasrc";
    if (!require_elements (platform, "audio alsa", needed, error))
      return FALSE;
    sel->audio_desc = g_strdup_printf ("alsasrc device=%s ! "
        PCR_AUDIO_ENCODE, device);
    sel->audio_reason = g_strdup_printf ("alsa %s (requested, Opus)",
        device);
    return TRUE;
  }
  if (!g_str_equal (audio, "auto")) {
    g_autofree gchar *escaped = pcr_quote_untrusted (audio,
        PCR_QUOTE_MAX_VALUE);

    g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
        "audio: \"%s\" is not one of auto, none, test, alsa, "
        "alsa:DEVICE", escaped);
    return FALSE;
  }

  /* auto: only a USB camera brings its own microphone */
  if (video == VIDEO_LIBCAMERA) {
    sel->audio_reason = g_strdup ("none (libcamera cameras have no "
        "microphone)");
    return TRUE;
  }
  if (video == VIDEO_TEST) {
    sel->audio_reason = g_strdup ("none (the test pattern has no "
        "microphone; audio=test gives a tone)");
    return TRUE;
  }
  {
    const GstStructure *mic = camera_microphone (platform, v4l2_path);
    const gchar *device, *name;

    if (mic == NULL) {
      sel->audio_reason = g_strdup_printf ("none (no microphone on the USB "
          "device of %s)", v4l2_path);
      return TRUE;
    }
    device = gst_structure_get_string (mic, "alsa.device");
    needed[3] = "alsasrc";
    if (!require_elements (platform, "audio", needed, NULL)) {
      sel->audio_reason = g_strdup_printf ("none (the camera's microphone "
          "%s needs alsasrc (gstreamer1.0-alsa), audioconvert, "
          "audioresample and opusenc (gstreamer1.0-plugins-base))", device);
      return TRUE;
    }
    name = gst_structure_get_string (mic, "alsa.card_name");
    why = pcr_quote_untrusted (name ? name : "unnamed", PCR_QUOTE_MAX_VALUE);
    source = g_strdup_printf ("alsasrc device=%s", device);
    sel->audio_desc = g_strdup_printf ("%s ! " PCR_AUDIO_ENCODE, source);
    sel->audio_reason = g_strdup_printf ("alsa %s (the microphone of the "
        "USB camera %s: %s)", device, v4l2_path, why);
  }
  return TRUE;
}

PcrSelection *
pcr_select (const PcrConfig * config, const PcrPlatform * platform,
    GError ** error)
{
  g_autoptr (PcrSelection) sel = g_new0 (PcrSelection, 1);
  const gchar *source;
  EncoderKind kind;
  gboolean needs_convert;
  VideoKind video = VIDEO_TEST;
  const gchar *v4l2_path = NULL;
  gboolean ok;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (platform != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  ensure_debug_category ();
  source = config->source ? config->source : "auto";

  if (g_str_equal (source, "test")) {
    ok = select_test (config, platform, "requested", sel, error);
  } else if (g_str_equal (source, "libcamera")) {
    video = VIDEO_LIBCAMERA;
    ok = select_libcamera (config, platform, platform->libcamera_camera ?
        "requested" : "requested (libcamera sees no camera yet)", sel, error);
  } else if (g_str_equal (source, "v4l2")) {
    video = VIDEO_V4L2;
    v4l2_path = platform->v4l2_capture_device;
    ok = select_v4l2 (config, platform, platform->v4l2_capture_device,
        "requested, first V4L2 capture device", sel, error);
  } else if (g_str_has_prefix (source, "v4l2:")) {
    video = VIDEO_V4L2;
    v4l2_path = source + 5;
    ok = select_v4l2 (config, platform, source + 5, "requested", sel, error);
  } else if (g_str_equal (source, "auto")) {
    if (platform->libcamera_camera &&
        pcr_platform_has_element (platform, "libcamerasrc")) {
      video = VIDEO_LIBCAMERA;
      ok = select_libcamera (config, platform, "libcamera sees a camera",
          sel, error);
    } else if (platform->v4l2_capture_device != NULL &&
        pcr_platform_has_element (platform, "v4l2src")) {
      video = VIDEO_V4L2;
      v4l2_path = platform->v4l2_capture_device;
      ok = select_v4l2 (config, platform, platform->v4l2_capture_device,
          "no libcamera camera, V4L2 capture device found", sel, error);
    } else {
      ok = select_test (config, platform, "no camera found (no libcamera "
          "camera, no V4L2 capture device)", sel, error);
    }
  } else {
    g_autofree gchar *escaped = pcr_quote_untrusted (source,
        PCR_QUOTE_MAX_VALUE);

    g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
        "source: \"%s\" is not one of auto, test, libcamera, v4l2, "
        "v4l2:/dev/videoN", escaped);
    ok = FALSE;
  }
  if (!ok)
    return NULL;

  /* libcamerasrc gives NV12, which only openh264enc cannot take */
  needs_convert = g_str_has_prefix (sel->source_desc, "libcamerasrc");
  if (!select_encoder (platform, &kind, sel, error))
    return NULL;
  sel->encoder_desc = encoder_desc (kind, config, config->width,
      config->height, config->bitrate, needs_convert);
  if (!select_low (config, platform, kind, needs_convert, sel, error))
    return NULL;
  select_snapshots (platform, sel);
  if (!select_audio (config, platform, video, v4l2_path, sel, error))
    return NULL;

  GST_INFO ("source %s; encoder %s; renditions %s; audio %s",
      sel->source_reason, sel->encoder_reason, sel->low_reason,
      sel->audio_reason);
  return g_steal_pointer (&sel);
}

/* ---- pipeline ---------------------------------------------------------- */

gchar *
pcr_select_pipeline (const PcrConfig * config, const PcrPlatform * platform,
    PcrSelection ** selection, GError ** error)
{
  g_autoptr (PcrSelection) sel = NULL;
  gchar *description;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (selection != NULL, NULL);

  *selection = NULL;
  if (config->pipeline == NULL || *config->pipeline == '\0') {
    sel = pcr_select (config, platform, error);
    if (sel == NULL)
      return NULL;
  }
  description = pcr_build_pipeline (config, sel, error);
  if (description != NULL)
    *selection = g_steal_pointer (&sel);
  return description;
}

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
    gint value, low_width = 0, low_height = 0;

    if (p[0] != '$' || p[1] != '{') {
      g_string_append_c (out, *p++);
      continue;
    }
    end = strchr (p + 2, '}');
    if (end == NULL) {
      g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
          "pipeline: unterminated placeholder \"${\"");
      g_string_free (out, TRUE);
      return NULL;
    }
    name = g_strndup (p + 2, end - (p + 2));
    if (g_str_has_prefix (name, "LOW_"))
      pcr_config_low_size (config, &low_width, &low_height);
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
    else if (g_str_equal (name, "LOW_WIDTH"))
      value = low_width;
    else if (g_str_equal (name, "LOW_HEIGHT"))
      value = low_height;
    else if (g_str_equal (name, "LOW_BITRATE"))
      value = pcr_config_low_bitrate (config);
    else {
      g_autofree gchar *escaped = pcr_quote_untrusted (name,
          PCR_QUOTE_MAX_VALUE);

      g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
          "pipeline: unknown placeholder \"${%s}\" (known: ${WIDTH} "
          "${HEIGHT} ${FRAMERATE} ${BITRATE} ${KEYINT} ${LOW_WIDTH} "
          "${LOW_HEIGHT} ${LOW_BITRATE} ${LATENCY_STAMP})",
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

    g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
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
      g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
          "pipeline: cannot read %s: %s", path, g_strerror (saved));
      return NULL;
    }
    if (n == 0)
      break;
    len += n;
  }
  close (fd);

  if (len > PCR_PIPELINE_FILE_MAX) {
    g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
        "pipeline: %s is larger than %d bytes", path, PCR_PIPELINE_FILE_MAX);
    return NULL;
  }
  buf[len] = '\0';
  if (memchr (buf, '\0', len) != NULL || !g_utf8_validate (buf, len, NULL)) {
    g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
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
    /* the test tone's flash rides on the stamp's element */
    gboolean flash = g_strcmp0 (config->audio, "test") == 0;
    const gchar *stamp = config->latency_stamp ? (flash ?
        "latencystamp flash=true ! " : "latencystamp ! ") : flash ?
        "latencystamp enabled=false flash=true ! " : "";
    g_autofree gchar *sink = NULL;
    g_autofree gchar *talkback = pcr_talkback_description (config->talkback ?
        config->talkback : PCR_DEFAULT_TALKBACK);
    g_autofree gchar *video = NULL;

    g_return_val_if_fail (selection != NULL, NULL);
    /* checked values: no quote in a talk-back description */
    sink = g_strdup_printf ("mqttwebrtcsink name=sink%s%s%s%s",
        config->control ? " control=true" : "", talkback ? " talkback=\"" :
        "", talkback ? talkback : "", talkback ? "\"" : "");
    /* right after the source caps: the stamp is the capture time, and the
     * encoders must see it */
    if (selection->low_desc == NULL && !selection->snapshots)
      video = g_strdup_printf ("%s ! %s%s ! %s", selection->source_desc,
          stamp, selection->encoder_desc, sink);
    else
      /* the main rendition last, so the video ends in the sink; the
       * snapshot pad's fakesink never blocks, so no queue before it */
      video = g_strdup_printf ("%s ! %stee name=t%s%s%s ! %s%s ! %s",
          selection->source_desc, stamp,
          selection->snapshots ? " ! sink.snapshot t." : "",
          selection->low_desc ? " ! " : "",
          selection->low_desc ? selection->low_desc : "",
          selection->low_desc ? "sink.sink_low t. ! " PCR_BRANCH_QUEUE
          " ! " : "", selection->encoder_desc, sink);
    /* the audio, a second source, after the sink it links to */
    if (selection->audio_desc == NULL)
      return g_steal_pointer (&video);
    return g_strdup_printf ("%s %s ! sink.sink_audio", video,
        selection->audio_desc);
  }

  if (g_file_test (pipeline, G_FILE_TEST_IS_REGULAR)) {
    text = read_pipeline_file (pipeline, error);
    if (text == NULL)
      return NULL;
  } else if (strchr (pipeline, '!') == NULL && strchr (pipeline, '/') != NULL) {
    /* looks like a path, and a description this short cannot stream */
    g_autofree gchar *escaped = pcr_quote_untrusted (pipeline,
        PCR_QUOTE_MAX_VALUE);

    g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
        "pipeline: \"%s\" is neither a readable file nor a pipeline "
        "description", escaped);
    return NULL;
  } else {
    text = g_strdup (pipeline);
  }

  joined = join_lines (text);
  if (*joined == '\0') {
    g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
        "pipeline: the description is empty");
    return NULL;
  }
  if (strstr (joined, "mqttwebrtcsink") == NULL) {
    g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
        "pipeline: the description has no mqttwebrtcsink (it should end in "
        "\"... ! mqttwebrtcsink name=sink\")");
    return NULL;
  }
  /* asked for a stamp the pipeline has no place for: say so rather than
   * measure nothing */
  if (config->latency_stamp && strstr (joined, "${LATENCY_STAMP}") == NULL
      && strstr (joined, "latencystamp") == NULL) {
    g_set_error (error, PCR_SELECT_ERROR, PCR_SELECT_ERROR_INVALID,
        "pipeline: latency-stamp is on but the description has no "
        "${LATENCY_STAMP} placeholder (put it after the source caps: "
        "\"... ! video/x-raw,... ! ${LATENCY_STAMP} x264enc ...\")");
    return NULL;
  }
  expanded = pcr_pipeline_expand (config, joined, error);
  return g_steal_pointer (&expanded);
}
