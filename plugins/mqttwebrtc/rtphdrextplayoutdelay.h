/* rtphdrextplayoutdelay: the playout-delay RTP header extension, which tells
 * a WebRTC receiver how long it may hold frames before rendering them. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define PCR_PLAYOUT_DELAY_URI \
    "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
/* 12 bits of 10 ms units. */
#define PCR_PLAYOUT_DELAY_MAX_MS 40950

#define PCR_TYPE_RTP_HDREXT_PLAYOUT_DELAY \
    (pcr_rtp_hdrext_playout_delay_get_type ())
GType pcr_rtp_hdrext_playout_delay_get_type (void);

GST_ELEMENT_REGISTER_DECLARE (rtphdrextplayoutdelay);

G_END_DECLS
