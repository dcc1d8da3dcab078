/* The defaults that mqttwebrtcsink, picamrtc and picamrtc-gateway share, in
 * one place so the element's properties, the programs' settings tables and
 * their --help agree. Plain literals: the settings tables turn the numbers
 * into text with G_STRINGIFY. */
#pragma once

#define PCR_DEFAULT_BROKER "mqtt://127.0.0.1:1883"
#define PCR_DEFAULT_DEVICE "cam1"
#define PCR_DEFAULT_TOPIC_PREFIX "picamrtc"
#define PCR_DEFAULT_MAX_VIEWERS 8
/* the largest max-viewers the element and the service accept */
#define PCR_MAX_VIEWERS_LIMIT 64
/* recording (docs/recording.md): a segment's seconds, and what is kept */
#define PCR_DEFAULT_RECORD_SEGMENT_S 60
#define PCR_MAX_RECORD_SEGMENT_S 3600
#define PCR_DEFAULT_RECORD_MAX_MB 1024
#define PCR_DEFAULT_RECORD_MAX_AGE_H 168
