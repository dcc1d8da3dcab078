/* The mqttwebrtc plugin: registers mqttwebrtcsink. */
#include "config.h"

#include <gst/gst.h>

#include "mqttwebrtcsink.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  return GST_ELEMENT_REGISTER (mqttwebrtcsink, plugin);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, mqttwebrtc,
    "WebRTC fan-out signalled over MQTT", plugin_init, VERSION, "LGPL",
    PACKAGE, "https://github.com/picamrtc/picamrtc")
