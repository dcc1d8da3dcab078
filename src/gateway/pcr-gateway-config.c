/* The gateway's settings table (lib/pcr-settings.h has the rules every key
 * follows), the checks that span keys, and the secret files. The broker
 * URI, device id, topic prefix and files are checked by the validators the
 * camera service and the element use, so all three accept the same values
 * and say the same thing about a bad one. */
#include "pcr-gateway-config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <gio/gio.h>

#include "pcr-ice.h"
#include "pcr-janus.h"
#include "pcr-quote.h"

/* *INDENT-OFF* */
G_DEFINE_QUARK (pcr-gateway-config-error-quark, pcr_gateway_config_error);
/* *INDENT-ON* */

#define MAX_SECRET_FILE 4096

static gboolean check_listen (const gchar * value, GError ** error);
static gboolean check_janus (const gchar * value, GError ** error);

#define OFF(field) G_STRUCT_OFFSET (PcrGatewayConfig, field)

/* an offer's SDP plus its iceServers must fit a 256 KiB MQTT payload: the
 * largest body is 192 KiB */
/* *INDENT-OFF* */
static const PcrSetting settings[] = {
  PCR_SETTING_ROW_BROKER (OFF (broker)),
  PCR_SETTING_ROW_USERNAME (OFF (username)),
  {"password-file", 0, PCR_SETTING_FILE, 0, NULL, 0, 0,
   pcr_check_readable_file, "FILE", "File holding the MQTT password",
   OFF (password_file)},
  PCR_SETTING_ROW_CA_FILE (OFF (ca_file)),
  PCR_SETTING_ROW_CERT_FILE (OFF (cert_file)),
  PCR_SETTING_ROW_KEY_FILE (OFF (key_file)),
  PCR_SETTING_ROW_TOPIC_PREFIX (OFF (topic_prefix)),
  {"listen", 'l', PCR_SETTING_STRING, PCR_SETTING_REQUIRED,
   PCR_GATEWAY_DEFAULT_LISTEN, 0, 0, check_listen, "ADDR:PORT",
   "Address and port to serve on; *:PORT for every interface, [IPv6]:PORT, "
   "port 0 for any free one", OFF (listen)},
  {"www", 0, PCR_SETTING_FILE, 0, NULL, 0, 0, NULL, "DIR",
   "Directory of the web client (default: the installed one)", OFF (www)},
  {"device", 'd', PCR_SETTING_STRING, PCR_SETTING_REQUIRED,
   PCR_DEFAULT_DEVICE, 0, 0, pcr_check_device_id, "ID",
   "Device for /api/start-webrtc offers without one", OFF (device)},
  {"token-file", 0, PCR_SETTING_FILE, 0, NULL, 0, 0, pcr_check_readable_file,
   "FILE", "Require \"Authorization: Bearer <the token in FILE>\" on /api "
   "and /whep", OFF (token_file)},
  {"metrics-token-file", 0, PCR_SETTING_FILE, 0, NULL, 0, 0,
   pcr_check_readable_file, "FILE", "Require \"Authorization: Bearer <the "
   "token in FILE>\" on /metrics, instead of token-file's",
   OFF (metrics_token_file)},
  {"control-token-file", 0, PCR_SETTING_FILE, 0, NULL, 0, 0,
   pcr_check_readable_file, "FILE", "Offers with \"Authorization: Bearer "
   "<the token in FILE>\" keep their data channel (m=application), to "
   "steer the device; it also opens what token-file's token opens",
   OFF (control_token_file)},
  {"tls-cert", 0, PCR_SETTING_FILE, 0, NULL, 0, 0, pcr_check_readable_file,
   "FILE", "Serve HTTPS with this certificate (PEM, chain allowed)",
   OFF (tls_cert)},
  {"tls-key", 0, PCR_SETTING_FILE, 0, NULL, 0, 0, pcr_check_readable_file,
   "FILE", "The certificate's private key (PEM)", OFF (tls_key)},
  {"stun-uri", 0, PCR_SETTING_LIST, 0, NULL, 0, 0, NULL, "stun:HOST:PORT",
   "STUN server for browsers and devices", OFF (stun_uris)},
  {"turn-uri", 0, PCR_SETTING_LIST, 0, NULL, 0, 0, NULL,
   "turn:[USER:PASS@]HOST:PORT[?transport=udp]", "TURN server; without "
   "USER:PASS@ it gets short-lived credentials from --turn-secret-file",
   OFF (turn_uris)},
  {"turn-secret-file", 0, PCR_SETTING_FILE, 0, NULL, 0, 0,
   pcr_check_readable_file, "FILE", "File holding the TURN REST shared "
   "secret (coturn's static-auth-secret)", OFF (turn_secret_file)},
  {"turn-ttl", 0, PCR_SETTING_INT, 0,
   G_STRINGIFY (PCR_GATEWAY_DEFAULT_TURN_TTL), 60, 7 * 86400, NULL, "S",
   "Lifetime of TURN credentials in seconds", OFF (turn_ttl)},
  {"answer-timeout", 0, PCR_SETTING_INT, 0,
   G_STRINGIFY (PCR_GATEWAY_DEFAULT_ANSWER_TIMEOUT), 1, 300, NULL, "S",
   "Seconds to wait for a device's answer", OFF (answer_timeout)},
  {"max-body-size", 0, PCR_SETTING_INT, 0,
   G_STRINGIFY (PCR_GATEWAY_DEFAULT_MAX_BODY_SIZE), 1024, 192 * 1024, NULL,
   "BYTES", "Largest request body in bytes", OFF (max_body_size)},
  {"max-sessions", 0, PCR_SETTING_INT, 0,
   G_STRINGIFY (PCR_GATEWAY_DEFAULT_MAX_SESSIONS), 1, 4096, NULL, "N",
   "Most open sessions at once", OFF (max_sessions)},
  {"janus", 0, PCR_SETTING_STRING, 0, NULL, 0, 0, check_janus,
   "URL", "Janus' HTTP API (http://HOST:8088/janus[?apisecret=S]): viewers "
   "of cameras relayed through its VideoRoom (picamrtc --relay) watch "
   "through it; unset, every viewer is direct", OFF (janus)},
};
/* *INDENT-ON* */

PcrGatewayConfig *
pcr_gateway_config_new (void)
{
  return pcr_settings_config_new (settings, G_N_ELEMENTS (settings),
      sizeof (PcrGatewayConfig));
}

/* Overwrites and frees a secret in memory. */
static void
clear_secret (gchar ** secret)
{
  if (*secret != NULL) {
    memset (*secret, 0, strlen (*secret));
    g_clear_pointer (secret, g_free);
  }
}

void
pcr_gateway_config_free (PcrGatewayConfig * config)
{
  if (config == NULL)
    return;
  pcr_settings_clear (settings, G_N_ELEMENTS (settings), config);
  g_free (config->listen_host);
  g_free (config->www_dir);
  g_free (config->janus_base);
  clear_secret (&config->janus_apisecret);
  clear_secret (&config->token);
  clear_secret (&config->metrics_token);
  clear_secret (&config->control_token);
  clear_secret (&config->password);
  g_clear_pointer (&config->turn_secret, g_bytes_unref);
  g_free (config);
}

/* ADDR:PORT, [V6]:PORT, :PORT or *:PORT (every interface), localhost:PORT.
 * @host ("" for every interface) and @port may be NULL. */
static gboolean
parse_listen (const gchar * text, gchar ** host_out, guint * port_out,
    GError ** error)
{
  g_autofree gchar *host = NULL;
  g_autofree gchar *escaped = pcr_quote_untrusted (text,
      PCR_QUOTE_MAX_VALUE);
  const gchar *problem = NULL;
  const gchar *port_text = NULL;
  guint64 port;

  if (text[0] == '[') {
    const gchar *end = strchr (text, ']');

    if (end == NULL || end[1] != ':') {
      problem = "is not [ADDR]:PORT";
    } else {
      host = g_strndup (text + 1, end - text - 1);
      port_text = end + 2;
      if (!g_hostname_is_ip_address (host))
        problem = "has no IPv6 address in []";
    }
  } else if (strrchr (text, ':') == NULL) {
    problem = "is not ADDR:PORT";
  } else {
    host = g_strndup (text, strrchr (text, ':') - text);
    port_text = strrchr (text, ':') + 1;
    if (g_str_equal (host, "*"))
      host[0] = '\0';
    if (*host != '\0' && !g_str_equal (host, "localhost") &&
        (!g_hostname_is_ip_address (host) || strchr (host, ':') != NULL))
      problem = "has an address that is not an IP address, localhost, * or "
          "empty (IPv6 in [])";
  }
  if (problem == NULL &&
      !g_ascii_string_to_unsigned (port_text, 10, 0, 65535, &port, NULL))
    problem = "has no port from 0 to 65535";
  if (problem != NULL) {
    g_set_error (error, PCR_GATEWAY_CONFIG_ERROR, 0, "\"%s\" %s", escaped,
        problem);
    return FALSE;
  }
  if (host_out != NULL)
    *host_out = g_steal_pointer (&host);
  if (port_out != NULL)
    *port_out = port;
  return TRUE;
}

static gboolean
check_listen (const gchar * value, GError ** error)
{
  return parse_listen (value, NULL, NULL, error);
}

/* A Janus URL (pcr_janus_parse_url) that takes only ?apisecret=: rooms
 * and the admin key are the cameras' business. The URL's text is not
 * repeated, as it may hold the secret. */
static gboolean
parse_janus (const gchar * value, gchar ** base_out, gchar ** secret_out,
    GError ** error)
{
  g_autoptr (GError) local = NULL;
  g_autofree gchar *base = NULL;
  g_autofree gchar *adminkey = NULL;
  gchar *secret = NULL;
  guint64 room = 0;

  if (!pcr_janus_parse_url (value, &base, &room, &adminkey, &secret,
          &local)) {
    g_set_error (error, PCR_GATEWAY_CONFIG_ERROR, 0, "%s", local->message);
    return FALSE;
  }
  if (room != 0 || adminkey != NULL || (secret != NULL && *secret == '\0')) {
    clear_secret (&secret);
    g_set_error (error, PCR_GATEWAY_CONFIG_ERROR, 0, "the gateway's Janus "
        "URL takes only ?apisecret=S (not empty); rooms and the admin key "
        "are the cameras' (picamrtc --relay)");
    return FALSE;
  }
  if (base_out != NULL)
    *base_out = g_steal_pointer (&base);
  if (secret_out != NULL)
    *secret_out = secret;
  else
    clear_secret (&secret);
  return TRUE;
}

static gboolean
check_janus (const gchar * value, GError ** error)
{
  return parse_janus (value, NULL, NULL, error);
}

/* pcr-ice names the key first ("turn-uri: ..."): put where the value came
 * from in its place. */
static gboolean
ice_error (PcrSettings * s, const GError * local, GError ** error)
{
  static const gchar *keys[] = { "stun-uri", "turn-uri" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (keys); i++) {
    gsize len = strlen (keys[i]);

    if (g_str_has_prefix (local->message, keys[i]) &&
        g_str_has_prefix (local->message + len, ": "))
      return pcr_settings_fail (s, keys[i], error, "%s",
          local->message + len + 2);
  }
  g_propagate_error (error, g_error_copy (local));
  return FALSE;
}

/* What the table cannot say alone; fills listen_host, listen_port and
 * www_dir. */
static gboolean
check_all (PcrSettings * s, gpointer data, gpointer user_data,
    GError ** error)
{
  PcrGatewayConfig *config = data;
  const gchar *default_www = user_data;
  g_autoptr (PcrIceConfig) ice = NULL;
  g_autoptr (GBytes) dummy = NULL;
  g_autoptr (GError) local = NULL;
  const gchar *www;

  if (config->password_file != NULL && config->username == NULL)
    return pcr_settings_fail (s, "password-file", error,
        "set without a username");
  if (!pcr_settings_check_client_cert (s, config->broker, config->cert_file,
          config->key_file, error))
    return FALSE;

  g_clear_pointer (&config->listen_host, g_free);
  if (!parse_listen (config->listen, &config->listen_host,
          &config->listen_port, &local))
    return pcr_settings_fail (s, "listen", error, "%s", local->message);

  if ((config->tls_cert == NULL) != (config->tls_key == NULL))
    return pcr_settings_fail (s, config->tls_cert ? "tls-cert" : "tls-key",
        error, "set %s too (HTTPS needs both)",
        config->tls_cert ? "tls-key" : "tls-cert");

  /* the URLs only; the real secret is read later */
  if (config->turn_secret_file != NULL)
    dummy = g_bytes_new_static ("x", 1);
  ice = pcr_ice_config_new ((const gchar * const *) config->stun_uris,
      (const gchar * const *) config->turn_uris, dummy, config->turn_ttl,
      &local);
  if (ice == NULL)
    return ice_error (s, local, error);

  g_clear_pointer (&config->janus_base, g_free);
  clear_secret (&config->janus_apisecret);
  if (config->janus != NULL && !parse_janus (config->janus,
          &config->janus_base, &config->janus_apisecret, &local))
    return pcr_settings_fail (s, "janus", error, "%s", local->message);

  www = config->www != NULL ? config->www : default_www;
  g_clear_pointer (&config->www_dir, g_free);
  if (www != NULL && g_file_test (www, G_FILE_TEST_IS_DIR)) {
    gchar *real = realpath (www, NULL);

    config->www_dir = g_strdup (real);
    free (real);
  }
  if (config->www != NULL && config->www_dir == NULL) {
    g_autofree gchar *escaped = pcr_quote_untrusted (config->www,
        PCR_QUOTE_MAX_VALUE);

    return pcr_settings_fail (s, "www", error, "\"%s\" is not a directory",
        escaped);
  }
  return TRUE;
}

PcrSettings *
pcr_gateway_config_settings_new (PcrGatewayConfig * config,
    const gchar * default_www)
{
  PcrSettings *s = pcr_settings_new ("gateway", settings,
      G_N_ELEMENTS (settings), config);

  pcr_settings_set_check (s, check_all, (gpointer) default_www);
  return s;
}

gboolean
pcr_gateway_config_validate (PcrGatewayConfig * config,
    const gchar * default_www, GError ** error)
{
  g_autoptr (PcrSettings) s = pcr_gateway_config_settings_new (config,
      default_www);

  return pcr_settings_validate (s, error);
}

static gboolean
read_secret (PcrSettings * s, const gchar * name, const gchar * path,
    gchar ** out, GError ** error)
{
  g_autoptr (GError) local = NULL;
  g_autofree gchar *escaped = NULL;
  gchar *contents = NULL;
  gsize len = 0;

  if (path == NULL)
    return TRUE;
  escaped = pcr_quote_untrusted (path, PCR_QUOTE_MAX_VALUE);
  if (!g_file_get_contents (path, &contents, &len, &local))
    return pcr_settings_fail (s, name, error, "cannot read \"%s\": %s",
        escaped, local->message);
  if (len > MAX_SECRET_FILE || memchr (contents, '\0', len) != NULL) {
    clear_secret (&contents);
    return pcr_settings_fail (s, name, error, "\"%s\" is over %d bytes or "
        "not text", escaped, MAX_SECRET_FILE);
  }
  g_strstrip (contents);
  if (*contents == '\0') {
    g_free (contents);
    return pcr_settings_fail (s, name, error, "\"%s\" is empty", escaped);
  }
  clear_secret (out);
  *out = contents;
  return TRUE;
}

/* A bearer token is one printable word: else it is cleared and fails. */
static gboolean
check_token (PcrSettings * s, const gchar * name, const gchar * file,
    gchar ** token, GError ** error)
{
  const gchar *c;

  for (c = *token; c != NULL && *c != '\0'; c++) {
    if (*c <= ' ' || *c >= 0x7f) {
      g_autofree gchar *escaped = pcr_quote_untrusted (file,
          PCR_QUOTE_MAX_VALUE);

      clear_secret (token);
      return pcr_settings_fail (s, name, error, "\"%s\" holds more "
          "than one word or a control character", escaped);
    }
  }
  return TRUE;
}

gboolean
pcr_gateway_config_read_secrets (PcrGatewayConfig * config,
    PcrSettings * s, GError ** error)
{
  g_autofree gchar *secret = NULL;

  g_return_val_if_fail (config != NULL, FALSE);

  if (!read_secret (s, "token-file", config->token_file, &config->token,
          error)
      || !read_secret (s, "metrics-token-file", config->metrics_token_file,
          &config->metrics_token, error)
      || !read_secret (s, "control-token-file", config->control_token_file,
          &config->control_token, error)
      || !read_secret (s, "password-file", config->password_file,
          &config->password, error)
      || !read_secret (s, "turn-secret-file", config->turn_secret_file,
          &secret, error)
      || !check_token (s, "token-file", config->token_file, &config->token,
          error)
      || !check_token (s, "metrics-token-file", config->metrics_token_file,
          &config->metrics_token, error)
      || !check_token (s, "control-token-file", config->control_token_file,
          &config->control_token, error))
    return FALSE;
  if (secret != NULL) {
    g_clear_pointer (&config->turn_secret, g_bytes_unref);
    config->turn_secret = g_bytes_new (secret, strlen (secret));
    memset (secret, 0, strlen (secret));
  }
  return TRUE;
}
