/* The gateway: an HTTP(S) server (libsoup 3) that serves the web client,
 * speaks the seed's /api/... signalling and WHEP, hands out ICE servers, and
 * relays each viewer session to its device over MQTT (docs/http-api.md,
 * docs/signalling.md). Everything runs on the thread-default GMainContext
 * of the thread that creates it. */
#pragma once

#include <glib.h>
#include <libsoup/soup.h>

#include "pcr-gateway-config.h"

G_BEGIN_DECLS
#define PCR_GATEWAY_ERROR (pcr_gateway_error_quark ())
    GQuark pcr_gateway_error_quark (void);

typedef enum
{
  PCR_GATEWAY_ERROR_CONFIG,     /* a bad setting (exit status 2) */
  PCR_GATEWAY_ERROR_LISTEN,     /* cannot listen (exit status 1) */
} PcrGatewayError;

typedef struct _PcrGateway PcrGateway;

/* Takes a validated @config with its secrets read (transfer full): loads
 * the TLS certificate, builds the server and the MQTT client. */
PcrGateway *pcr_gateway_new (PcrGatewayConfig * config, GError ** error);

/* Listens, starts the MQTT client and logs the URLs it serves. */
gboolean pcr_gateway_start (PcrGateway * gateway, GError ** error);

/* Runs until SIGINT or SIGTERM; then says bye to every open session.
 * Returns the exit status (0). */
gint pcr_gateway_run (PcrGateway * gateway);

/* The HTTP server (transfer none), for tests that hand it connections of
 * their own (soup_server_accept_iostream ()) instead of listening. */
SoupServer *pcr_gateway_get_server (PcrGateway * gateway);

void pcr_gateway_free (PcrGateway * gateway);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrGateway, pcr_gateway_free)
    G_END_DECLS
