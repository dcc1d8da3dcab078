/* The ICE servers the gateway hands out, to browsers (/api/turn-credentials,
 * WHEP Link headers) and to devices (the "iceServers" of an offer): STUN
 * URLs as configured, TURN URLs with static credentials, and TURN URLs with
 * short-lived credentials from a shared secret (the TURN REST API that
 * coturn's use-auth-secret implements: username "<unix expiry>:picamrtc",
 * credential base64(HMAC-SHA1(secret, username))). The URLs come from the
 * config file and the command line and are parsed strictly; the secret never
 * leaves this module except as an HMAC. */
#pragma once

#include <glib.h>

#include "pcr-message.h"

G_BEGIN_DECLS
#define PCR_ICE_ERROR (pcr_ice_error_quark ())
    GQuark pcr_ice_error_quark (void);

/* The user part of TURN REST usernames. */
#define PCR_ICE_REST_USER "picamrtc"

typedef struct _PcrIceConfig PcrIceConfig;

/* Parses the stun-uri and turn-uri lists (either may be NULL).
 * STUN: stun:HOST[:PORT] or stuns:... (stun://HOST:PORT is taken too).
 * TURN: turn:[USER:PASS@]HOST[:PORT][?transport=udp|tcp] or turns:...;
 * without USER:PASS the URL gets REST credentials from @secret, so one of
 * the two is needed. IPv6 hosts in brackets. At most 8 servers of 8 URLs
 * (what a device accepts). Errors name the key ("stun-uri", "turn-uri"). */
PcrIceConfig *pcr_ice_config_new (const gchar * const *stun_uris,
    const gchar * const *turn_uris, GBytes * secret, guint ttl,
    GError ** error);
void pcr_ice_config_free (PcrIceConfig * config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrIceConfig, pcr_ice_config_free)
/* TRUE when no server is configured. */
     gboolean pcr_ice_config_is_empty (const PcrIceConfig * config);

/* A fresh list of PcrIceServer*, REST credentials valid until
 * @now_unix + ttl. Never NULL. */
     GPtrArray *pcr_ice_config_get_servers (const PcrIceConfig * config,
    gint64 now_unix);

/* base64 (HMAC-SHA1 (@secret, @username)): the TURN REST credential. */
     gchar *pcr_ice_rest_credential (GBytes * secret, const gchar * username);

     PcrIceServer *pcr_ice_server_copy (const PcrIceServer * server);

/* The browser's RTCIceServer list:
 * [{"urls":["..."],"username":"...","credential":"..."}, ...] */
     gchar *pcr_ice_servers_to_json (GPtrArray * servers);

/* One WHEP Link header value per URL: <URL>; rel="ice-server" and, with
 * credentials, ; username="..."; credential="..."; credential-type="password"
 * (RFC 8288 quoted strings). */
     GPtrArray *pcr_ice_servers_to_links (GPtrArray * servers);

G_END_DECLS
