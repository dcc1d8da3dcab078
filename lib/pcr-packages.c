/* The Debian packages of the GStreamer elements picamrtc uses or names in
 * its pipelines (pipelines/, the service's selection, the element's own
 * children). */
#include "pcr-packages.h"

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
  {"rtpbin", "gstreamer1.0-plugins-good"},
  {"rtprtxsend", "gstreamer1.0-plugins-good"},
  {"rtpstorage", "gstreamer1.0-plugins-good"},
  {"jpegdec", "gstreamer1.0-plugins-good"},
  {"videotestsrc", "gstreamer1.0-plugins-base"},
  {"videoconvert", "gstreamer1.0-plugins-base"},
  {"videoscale", "gstreamer1.0-plugins-base"},
  {"videorate", "gstreamer1.0-plugins-base"},
  {"decodebin", "gstreamer1.0-plugins-base"},
  {"audiotestsrc", "gstreamer1.0-plugins-base"},
  {"audioconvert", "gstreamer1.0-plugins-base"},
  {"audioresample", "gstreamer1.0-plugins-base"},
  {"opusenc", "gstreamer1.0-plugins-base"},
  {"alsasrc", "gstreamer1.0-alsa"},
  {"alsasink", "gstreamer1.0-alsa"},
  /* Debian ships the pango overlays in gstreamer1.0-x */
  {"clockoverlay", "gstreamer1.0-x"},
  {"timeoverlay", "gstreamer1.0-x"},
  {"textoverlay", "gstreamer1.0-x"},
  {"webrtcbin", "gstreamer1.0-plugins-bad"},
  {"h264parse", "gstreamer1.0-plugins-bad"},
  {"openh264enc", "gstreamer1.0-plugins-bad"},
  {"dtlssrtpenc", "gstreamer1.0-plugins-bad"},
  {"dtlssrtpdec", "gstreamer1.0-plugins-bad"},
  {"srtpenc", "gstreamer1.0-plugins-bad"},
  {"srtpdec", "gstreamer1.0-plugins-bad"},
  {"nicesrc", "gstreamer1.0-nice"},
  {"nicesink", "gstreamer1.0-nice"},
  {"queue", "libgstreamer1.0-0"},
  {"funnel", "libgstreamer1.0-0"},
  {"tee", "libgstreamer1.0-0"},
  {"valve", "libgstreamer1.0-0"},
  {"capsfilter", "libgstreamer1.0-0"},
  {"identity", "libgstreamer1.0-0"},
  {"fakesink", "libgstreamer1.0-0"},
  {"filesink", "libgstreamer1.0-0"},
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
