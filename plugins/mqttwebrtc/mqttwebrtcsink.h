/* mqttwebrtcsink: encoded H.264 in, any number of WebRTC viewers out,
 * signalled over MQTT. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS
#define PCR_TYPE_MQTT_WEBRTC_SINK (pcr_mqtt_webrtc_sink_get_type ())
G_DECLARE_FINAL_TYPE (PcrMqttWebrtcSink, pcr_mqtt_webrtc_sink, PCR,
    MQTT_WEBRTC_SINK, GstBin)
GST_ELEMENT_REGISTER_DECLARE (mqttwebrtcsink);

G_END_DECLS
