/* The gateway's GET /metrics: its own figures (requests, sessions, the
 * time to a device's answer, the broker connection) and what each device
 * reports on P/D/metrics (docs/signalling.md, "Metrics"), kept here and
 * written in the Prometheus text exposition format (docs/operations.md,
 * "Metrics"). Runs on the gateway's context only. */
#pragma once

#include <glib.h>

#include "pcr-message.h"

G_BEGIN_DECLS

typedef struct _PcrGatewayMetrics PcrGatewayMetrics;

PcrGatewayMetrics *pcr_gateway_metrics_new (void);
void pcr_gateway_metrics_free (PcrGatewayMetrics * self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrGatewayMetrics, pcr_gateway_metrics_free)

/* One HTTP reply: @route is a fixed name of the gateway's (never a client's
 * text), @status its code. */
void pcr_gateway_metrics_count_request (PcrGatewayMetrics * self,
    const gchar * route, guint status);

/* A device answered an offer @seconds after it went out. */
void pcr_gateway_metrics_observe_answer (PcrGatewayMetrics * self,
    gdouble seconds);

/* The broker connection came or went; a connection after the first counts
 * as a reconnect. */
void pcr_gateway_metrics_set_connected (PcrGatewayMetrics * self,
    gboolean connected);

/* A device's status said @online (TRUE unless "offline"); @device is a
 * valid id. */
void pcr_gateway_metrics_set_online (PcrGatewayMetrics * self,
    const gchar * device, gboolean online);

/* A device's report (parsed and bounded by pcr_metrics_parse), received
 * at @now_us (monotonic); it replaces the last. Only for devices given to
 * set_online: the table stays as bounded as the gateway's. */
void pcr_gateway_metrics_report (PcrGatewayMetrics * self,
    const gchar * device, PcrMetrics * report, gint64 now_us);

/* The device is forgotten (its status cleared, the broker reconnected):
 * NULL forgets them all. */
void pcr_gateway_metrics_forget (PcrGatewayMetrics * self,
    const gchar * device);

/* Viewer sessions through Janus open now (a part of render's @sessions). */
void pcr_gateway_metrics_set_relay_sessions (PcrGatewayMetrics * self,
    guint relay_sessions);

/* The exposition at @now_us, with @sessions open. A device's report older
 * than three of its intervals is left out (and dropped); its online
 * figure stays. */
gchar *pcr_gateway_metrics_render (PcrGatewayMetrics * self, guint sessions,
    gint64 now_us, gsize * len);

/* The content type of render's text. */
#define PCR_GATEWAY_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

G_END_DECLS
