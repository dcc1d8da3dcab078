/* systemd integration for the services: readiness, status lines and the
 * watchdog (Type=notify, WatchdogSec=). Does nothing when not started by
 * systemd or when built without libsystemd. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* READY=1 with a STATUS= line; starts the watchdog keep-alive on @context
 * (NULL: thread default) when systemd asked for one. The keep-alive runs
 * from that context's main loop, so a stuck loop stops it and systemd
 * restarts the service. Returns the source (or NULL), for
 * pcr_systemd_stop(). */
GSource *pcr_systemd_ready (GMainContext * context, const gchar * status);

/* STATUS= line, e.g. "2 viewers, camera on". */
void pcr_systemd_status (const gchar * format, ...) G_GNUC_PRINTF (1, 2);

/* STOPPING=1 and the keep-alive source destroyed. */
void pcr_systemd_stop (GSource * watchdog);

G_END_DECLS
