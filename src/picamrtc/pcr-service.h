/* The running camera service: one GStreamer pipeline ending in
 * mqttwebrtcsink. The sink stays PLAYING (it holds the MQTT connection and
 * answers viewers); the rest of the pipeline, the "camera part", runs only
 * while someone watches (unless on-demand is off) and is restarted with a
 * backoff when it fails. */
#pragma once

#include <gst/gst.h>

#include "pcr-service-config.h"

G_BEGIN_DECLS

#define PCR_SERVICE_ERROR (pcr_service_error_quark ())
GQuark pcr_service_error_quark (void);

typedef enum
{
  PCR_SERVICE_ERROR_PARSE,      /* the description does not parse */
  PCR_SERVICE_ERROR_MISSING_ELEMENT,    /* message names the packages */
  PCR_SERVICE_ERROR_NO_SINK,    /* no mqttwebrtcsink in the pipeline */
  PCR_SERVICE_ERROR_STATE,      /* the pipeline would not start */
} PcrServiceError;

typedef struct _PcrService PcrService;

/* Parses @description (GST_PARSE_FLAG_FATAL_ERRORS), finds the sink and sets
 * its properties from @config. */
PcrService *pcr_service_new (const PcrConfig * config,
    const gchar * description, GError ** error);

/* Runs the main loop on the thread-default context until EOS (0), SIGINT or
 * SIGTERM (0) or an error from the sink (1); returns that exit code after
 * the pipeline is back in NULL. */
gint pcr_service_run (PcrService * service);

void pcr_service_free (PcrService * service);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrService, pcr_service_free)

G_END_DECLS
