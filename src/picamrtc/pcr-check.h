/* picamrtc --check: what the service would do with this configuration, told
 * to a person in a few lines on stdout, without streaming and without
 * disturbing a service that runs with the same device id. */
#pragma once

#include <glib.h>

#include "pcr-service-config.h"

G_BEGIN_DECLS

/* Longest wait for the broker's CONNACK; the whole check stays under 10 s
 * with a broker that never answers. */
#define PCR_CHECK_BROKER_TIMEOUT_MS 6000

/* Prints the cameras and encoders found, the source, encoder and pipeline
 * chosen (and whether it parses), whether the broker takes these
 * credentials, the clock's sanity, and a last line "ready" or "not ready".
 * Returns the exit status: 0 when streaming would work (a pipeline that
 * parses and a broker that accepts the connection), else 1. Needs
 * gst_init(). */
gint pcr_check_run (const PcrConfig * config);

G_END_DECLS
