/* picamrtc-gateway's settings: PcrGatewayConfig and the table that reads it
 * from the config file (group [gateway]) and the command line, checks it
 * and writes --help (lib/pcr-settings.h has the rules every key follows),
 * and the secrets read from their files (bearer token, TURN shared secret,
 * broker password). Every bad value fails with a one-line message that says
 * where it came from. */
#pragma once

#include <glib.h>

#include "pcr-settings.h"

G_BEGIN_DECLS

#define PCR_GATEWAY_CONFIG_ERROR (pcr_gateway_config_error_quark ())
GQuark pcr_gateway_config_error_quark (void);

/* plain literals: the settings table writes them with G_STRINGIFY */
#define PCR_GATEWAY_DEFAULT_LISTEN "127.0.0.1:8080"
#define PCR_GATEWAY_DEFAULT_TURN_TTL 86400
#define PCR_GATEWAY_DEFAULT_ANSWER_TIMEOUT 10
#define PCR_GATEWAY_DEFAULT_MAX_BODY_SIZE 65536
#define PCR_GATEWAY_DEFAULT_MAX_SESSIONS 256

typedef struct
{
  gchar *broker;
  gchar *username;              /* nullable */
  gchar *password_file;         /* nullable */
  gchar *ca_file;               /* nullable */
  gchar *cert_file, *key_file;  /* nullable: the client certificate */
  gchar *topic_prefix;
  gchar *listen;                /* ADDR:PORT */
  gchar *www;                   /* nullable: the default directory */
  gchar *device;                /* the default device of /api/start-webrtc */
  gchar *token_file;            /* nullable */
  gchar *metrics_token_file;    /* nullable */
  gchar *control_token_file;    /* nullable */
  gchar *tls_cert;              /* nullable */
  gchar *tls_key;               /* nullable */
  gchar **stun_uris;            /* NULL-terminated, maybe empty */
  gchar **turn_uris;            /* NULL-terminated, maybe empty */
  gchar *turn_secret_file;      /* nullable */
  gint turn_ttl;                /* seconds */
  gint answer_timeout;          /* seconds */
  gint max_body_size;           /* bytes */
  gint max_sessions;
  gchar *janus;                 /* nullable: the Janus HTTP API, for relayed
                                 * viewers (docs/http-api.md) */

  /* set by pcr_gateway_config_validate () */
  gchar *listen_host;           /* "" = every interface, "localhost" */
  guint listen_port;            /* 0 = any free port */
  gchar *www_dir;               /* canonical, or NULL when the default
                                 * directory does not exist */
  gchar *janus_base;            /* janus without its query; nullable */
  gchar *janus_apisecret;       /* its ?apisecret=, nullable; never logged */

  /* set by pcr_gateway_config_read_secrets (); never logged */
  gchar *token;
  gchar *metrics_token;
  gchar *control_token;         /* nullable: nobody gets control */
  gchar *password;
  GBytes *turn_secret;
} PcrGatewayConfig;

PcrGatewayConfig *pcr_gateway_config_new (void);       /* all defaults */
void pcr_gateway_config_free (PcrGatewayConfig * config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrGatewayConfig, pcr_gateway_config_free)

/* Settings over @config (which must outlive them, as must @default_www)
 * with the table broker, username, password-file, ca-file, cert-file,
 * key-file, topic-prefix, listen, www, device, token-file,
 * metrics-token-file, control-token-file, tls-cert, tls-key, stun-uri,
 * turn-uri, turn-secret-file, turn-ttl, answer-timeout, max-body-size,
 * max-sessions, janus: the table's checks, then the client certificate's
 * pair, the listen address, the TLS pair, the ICE URLs, the www directory
 * (@default_www when www is unset) and the Janus URL, which fill
 * listen_host, listen_port, www_dir, janus_base and janus_apisecret. */
PcrSettings *pcr_gateway_config_settings_new (PcrGatewayConfig * config,
    const gchar * default_www);

/* The same checks on a config filled in code; messages start "KEY: ". */
gboolean pcr_gateway_config_validate (PcrGatewayConfig * config,
    const gchar * default_www, GError ** error);

/* Reads token-file, metrics-token-file, control-token-file,
 * turn-secret-file and password-file (at most 4 KiB each, surrounding
 * white space dropped; an empty one fails; a token must be one printable
 * word). @settings (nullable) says
 * where each file name came from. */
gboolean pcr_gateway_config_read_secrets (PcrGatewayConfig * config,
    PcrSettings * settings, GError ** error);

G_END_DECLS
