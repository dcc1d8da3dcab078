/* The mqttwebrtc plugin: registers mqttwebrtcsink, latencystamp, halfscale
 * and rtphdrextplayoutdelay. */
#include "config.h"

#include <gst/gst.h>

#include "halfscale.h"
#include "latencystamp.h"
#include "mqttwebrtcsink.h"
#include "rtphdrextplayoutdelay.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean ret = FALSE;

  ret |= GST_ELEMENT_REGISTER (mqttwebrtcsink, plugin);
  ret |= GST_ELEMENT_REGISTER (latencystamp, plugin);
  ret |= GST_ELEMENT_REGISTER (halfscale, plugin);
  ret |= GST_ELEMENT_REGISTER (rtphdrextplayoutdelay, plugin);
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, mqttwebrtc,
    "WebRTC fan-out signalled over MQTT", plugin_init, VERSION, "LGPL",
    PACKAGE, "https://github.com/picamrtc/picamrtc")
