/* picamrtc-gateway's settings: the GKeyFile group [gateway] (keys are the
 * long command-line option names), defaults, validation, and the secrets
 * read from their files (bearer token, TURN shared secret, broker
 * password). Config files and the command line are checked strictly: every
 * bad value fails with a one-line message that names the key. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS
#define PCR_GATEWAY_CONFIG_ERROR (pcr_gateway_config_error_quark ())
    GQuark pcr_gateway_config_error_quark (void);

#define PCR_GATEWAY_DEFAULT_LISTEN "127.0.0.1:8080"
#define PCR_GATEWAY_DEFAULT_TURN_TTL 86400
#define PCR_GATEWAY_DEFAULT_ANSWER_TIMEOUT 10
#define PCR_GATEWAY_DEFAULT_MAX_BODY_SIZE (64 * 1024)
#define PCR_GATEWAY_DEFAULT_MAX_SESSIONS 256

typedef struct
{
  gchar *broker;
  gchar *username;              /* nullable */
  gchar *password_file;         /* nullable */
  gchar *ca_file;               /* nullable */
  gchar *topic_prefix;
  gchar *listen;                /* ADDR:PORT */
  gchar *www;                   /* nullable: the default directory */
  gchar *device;                /* the default device of /api/start-webrtc */
  gchar *token_file;            /* nullable */
  gchar *tls_cert;              /* nullable */
  gchar *tls_key;               /* nullable */
  gchar **stun_uris;            /* NULL-terminated, maybe empty */
  gchar **turn_uris;            /* NULL-terminated, maybe empty */
  gchar *turn_secret_file;      /* nullable */
  gint turn_ttl;                /* seconds */
  gint answer_timeout;          /* seconds */
  gint max_body_size;           /* bytes */
  gint max_sessions;

  /* set by pcr_gateway_config_validate () */
  gchar *listen_host;           /* "" = every interface, "localhost" */
  guint listen_port;            /* 0 = any free port */
  gchar *www_dir;               /* canonical, or NULL when the default
                                 * directory does not exist */

  /* set by pcr_gateway_config_read_secrets (); never logged */
  gchar *token;
  gchar *password;
  GBytes *turn_secret;
} PcrGatewayConfig;

PcrGatewayConfig *pcr_gateway_config_new (void);
void pcr_gateway_config_free (PcrGatewayConfig * config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrGatewayConfig, pcr_gateway_config_free)
/* Reads [gateway] from @path over what @config holds; unknown keys warn.
 * Fails on an unreadable file, a missing group, or a value of the wrong
 * type, naming the key. */
     gboolean pcr_gateway_config_load_file (PcrGatewayConfig * config,
    const gchar * path, GError ** error);

/* Checks every value (ranges, URIs, listen address, device id, topic
 * prefix, ICE URLs, TLS pair, www directory) and fills listen_host,
 * listen_port and www_dir. @default_www is used when www is unset. */
     gboolean pcr_gateway_config_validate (PcrGatewayConfig * config,
    const gchar * default_www, GError ** error);

/* Reads token-file, turn-secret-file and password-file (at most 4 KiB each,
 * surrounding white space dropped; an empty one fails). */
     gboolean pcr_gateway_config_read_secrets (PcrGatewayConfig * config,
    GError ** error);

G_END_DECLS
