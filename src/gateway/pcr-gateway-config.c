/* The gateway's configuration: a table of keys shared by the config file
 * reader, validation that names the key of every bad value, and the secret
 * files. The broker URI, device id, topic prefix and CA file are checked by
 * the same code as the camera service's (lib/pcr-config.c), so both accept
 * the same values. */
#include "pcr-gateway-config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <gio/gio.h>

#include "pcr-config.h"
#include "pcr-ice.h"

/* *INDENT-OFF* */
G_DEFINE_QUARK (pcr-gateway-config-error-quark, pcr_gateway_config_error);
/* *INDENT-ON* */

#define GROUP "gateway"
#define MAX_SECRET_FILE 4096

#define MIN_TURN_TTL 60
#define MAX_TURN_TTL (7 * 86400)
#define MIN_ANSWER_TIMEOUT 1
#define MAX_ANSWER_TIMEOUT 300
#define MIN_BODY_SIZE 1024
/* an offer's SDP plus its iceServers must fit a 256 KiB MQTT payload */
#define MAX_BODY_SIZE (192 * 1024)
#define MAX_SESSIONS 4096

typedef enum
{
  KEY_STRING,
  KEY_INT,
  KEY_LIST,
} KeyType;

typedef struct
{
  const gchar *name;
  KeyType type;
  gsize offset;
} Key;

#define OFF(field) G_STRUCT_OFFSET (PcrGatewayConfig, field)

static const Key keys[] = {
  {"broker", KEY_STRING, OFF (broker)},
  {"username", KEY_STRING, OFF (username)},
  {"password-file", KEY_STRING, OFF (password_file)},
  {"ca-file", KEY_STRING, OFF (ca_file)},
  {"topic-prefix", KEY_STRING, OFF (topic_prefix)},
  {"listen", KEY_STRING, OFF (listen)},
  {"www", KEY_STRING, OFF (www)},
  {"device", KEY_STRING, OFF (device)},
  {"token-file", KEY_STRING, OFF (token_file)},
  {"tls-cert", KEY_STRING, OFF (tls_cert)},
  {"tls-key", KEY_STRING, OFF (tls_key)},
  {"stun-uri", KEY_LIST, OFF (stun_uris)},
  {"turn-uri", KEY_LIST, OFF (turn_uris)},
  {"turn-secret-file", KEY_STRING, OFF (turn_secret_file)},
  {"turn-ttl", KEY_INT, OFF (turn_ttl)},
  {"answer-timeout", KEY_INT, OFF (answer_timeout)},
  {"max-body-size", KEY_INT, OFF (max_body_size)},
  {"max-sessions", KEY_INT, OFF (max_sessions)},
};

PcrGatewayConfig *
pcr_gateway_config_new (void)
{
  PcrGatewayConfig *config = g_new0 (PcrGatewayConfig, 1);

  config->broker = g_strdup (PCR_DEFAULT_BROKER);
  config->topic_prefix = g_strdup (PCR_DEFAULT_TOPIC_PREFIX);
  config->listen = g_strdup (PCR_GATEWAY_DEFAULT_LISTEN);
  config->device = g_strdup (PCR_DEFAULT_DEVICE);
  config->stun_uris = g_new0 (gchar *, 1);
  config->turn_uris = g_new0 (gchar *, 1);
  config->turn_ttl = PCR_GATEWAY_DEFAULT_TURN_TTL;
  config->answer_timeout = PCR_GATEWAY_DEFAULT_ANSWER_TIMEOUT;
  config->max_body_size = PCR_GATEWAY_DEFAULT_MAX_BODY_SIZE;
  config->max_sessions = PCR_GATEWAY_DEFAULT_MAX_SESSIONS;
  return config;
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
  guint i;

  if (config == NULL)
    return;
  for (i = 0; i < G_N_ELEMENTS (keys); i++) {
    gpointer field = G_STRUCT_MEMBER_P (config, keys[i].offset);

    if (keys[i].type == KEY_STRING)
      g_free (*(gchar **) field);
    else if (keys[i].type == KEY_LIST)
      g_strfreev (*(gchar ***) field);
  }
  g_free (config->listen_host);
  g_free (config->www_dir);
  clear_secret (&config->token);
  clear_secret (&config->password);
  g_clear_pointer (&config->turn_secret, g_bytes_unref);
  g_free (config);
}

/* *INDENT-OFF* */
static gboolean invalid (GError ** error, const gchar * format, ...)
    G_GNUC_PRINTF (2, 3);
/* *INDENT-ON* */

static gboolean
invalid (GError ** error, const gchar * format, ...)
{
  va_list args;

  va_start (args, format);
  if (error != NULL && *error == NULL)
    *error = g_error_new_valist (PCR_GATEWAY_CONFIG_ERROR, 0, format, args);
  va_end (args);
  return FALSE;
}

static gboolean
parse_int (const gchar * name, const gchar * text, gint * out, GError ** error)
{
  gint64 value;

  if (!g_ascii_string_to_signed (text, 10, G_MININT, G_MAXINT, &value, NULL)) {
    g_autofree gchar *escaped = g_strescape (text, NULL);

    return invalid (error, "%s: \"%s\" is not a whole number", name, escaped);
  }
  *out = value;
  return TRUE;
}

gboolean
pcr_gateway_config_load_file (PcrGatewayConfig * config, const gchar * path,
    GError ** error)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  g_autoptr (GError) local = NULL;
  g_auto (GStrv) groups = NULL;
  g_auto (GStrv) names = NULL;
  gpointer values[G_N_ELEMENTS (keys)] = { NULL };
  gint ints[G_N_ELEMENTS (keys)] = { 0 };
  gboolean ok = TRUE;
  guint i, j;

  g_return_val_if_fail (config != NULL && path != NULL, FALSE);

  if (!g_key_file_load_from_file (file, path, G_KEY_FILE_NONE, &local))
    return invalid (error, "config file %s: %s", path, local->message);
  if (!g_key_file_has_group (file, GROUP))
    return invalid (error, "config file %s: no [" GROUP "] group", path);

  groups = g_key_file_get_groups (file, NULL);
  for (i = 0; groups[i] != NULL; i++) {
    if (!g_str_equal (groups[i], GROUP))
      g_warning ("config file %s: group [%s] ignored", path, groups[i]);
  }
  names = g_key_file_get_keys (file, GROUP, NULL, NULL);
  for (i = 0; names != NULL && names[i] != NULL; i++) {
    for (j = 0; j < G_N_ELEMENTS (keys); j++) {
      if (g_str_equal (names[i], keys[j].name))
        break;
    }
    if (j == G_N_ELEMENTS (keys))
      g_warning ("config file %s: unknown key \"%s\" ignored", path, names[i]);
  }

  /* read everything first so a bad value leaves @config as it was */
  for (i = 0; ok && i < G_N_ELEMENTS (keys); i++) {
    const gchar *name = keys[i].name;

    if (!g_key_file_has_key (file, GROUP, name, NULL))
      continue;
    if (keys[i].type == KEY_LIST) {
      values[i] = g_key_file_get_string_list (file, GROUP, name, NULL, &local);
      if (values[i] == NULL)
        values[i] = g_new0 (gchar *, 1);
    } else {
      g_autofree gchar *text = g_key_file_get_string (file, GROUP, name,
          &local);

      if (text == NULL) {
        ok = invalid (error, "%s: %s", name, local->message);
      } else if (keys[i].type == KEY_INT) {
        ok = parse_int (name, g_strstrip (text), &ints[i], error);
        values[i] = GINT_TO_POINTER (1);
      } else {
        values[i] = g_steal_pointer (&text);
      }
    }
    g_clear_error (&local);
  }

  for (i = 0; i < G_N_ELEMENTS (keys); i++) {
    gpointer field = G_STRUCT_MEMBER_P (config, keys[i].offset);

    if (values[i] == NULL)
      continue;
    if (keys[i].type == KEY_INT) {
      if (ok)
        *(gint *) field = ints[i];
    } else if (keys[i].type == KEY_STRING) {
      if (ok) {
        g_free (*(gchar **) field);
        /* an empty value clears a nullable setting */
        *(gchar **) field = *(gchar *) values[i] != '\0' ? values[i] : NULL;
        if (*(gchar **) field == NULL)
          g_free (values[i]);
      } else {
        g_free (values[i]);
      }
    } else {
      if (ok) {
        g_strfreev (*(gchar ***) field);
        *(gchar ***) field = values[i];
      } else {
        g_strfreev (values[i]);
      }
    }
  }
  return ok;
}

static gboolean
check_range (const gchar * name, gint value, gint min, gint max,
    GError ** error)
{
  if (value < min || value > max)
    return invalid (error, "%s: %d is out of range (%d to %d)", name, value,
        min, max);
  return TRUE;
}

/* ADDR:PORT, [V6]:PORT, :PORT or *:PORT (every interface),
 * localhost:PORT. */
static gboolean
parse_listen (PcrGatewayConfig * config, GError ** error)
{
  const gchar *text = config->listen;
  g_autofree gchar *host = NULL;
  g_autofree gchar *escaped = g_strescape (text ? text : "", NULL);
  const gchar *port_text;
  guint64 port;

  if (text == NULL)
    return invalid (error, "listen: must be set (ADDR:PORT)");
  if (text[0] == '[') {
    const gchar *end = strchr (text, ']');

    if (end == NULL || end[1] != ':')
      return invalid (error, "listen: \"%s\" is not [ADDR]:PORT", escaped);
    host = g_strndup (text + 1, end - text - 1);
    port_text = end + 2;
    if (!g_hostname_is_ip_address (host))
      return invalid (error, "listen: \"%s\" has no IPv6 address in []",
          escaped);
  } else {
    const gchar *colon = strrchr (text, ':');

    if (colon == NULL)
      return invalid (error, "listen: \"%s\" is not ADDR:PORT", escaped);
    host = g_strndup (text, colon - text);
    port_text = colon + 1;
    if (g_str_equal (host, "*")) {
      g_free (host);
      host = g_strdup ("");
    }
    if (*host != '\0' && !g_str_equal (host, "localhost") &&
        (!g_hostname_is_ip_address (host) || strchr (host, ':') != NULL))
      return invalid (error, "listen: \"%s\": the address must be an IP "
          "address, localhost, * or empty (IPv6 in [])", escaped);
  }
  if (!g_ascii_string_to_unsigned (port_text, 10, 0, 65535, &port, NULL))
    return invalid (error, "listen: \"%s\" has no port from 0 to 65535",
        escaped);
  g_free (config->listen_host);
  config->listen_host = g_steal_pointer (&host);
  config->listen_port = port;
  return TRUE;
}

static gboolean
check_file (const gchar * name, const gchar * path, GError ** error)
{
  g_autofree gchar *escaped = NULL;

  if (path == NULL || g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return TRUE;
  escaped = g_strescape (path, NULL);
  return invalid (error, "%s: \"%s\" is not a readable file", name, escaped);
}

static gboolean
check_shared (const PcrGatewayConfig * config, GError ** error)
{
  g_autoptr (PcrConfig) shared = pcr_config_new ();

  /* the camera service's checks; its messages name the same keys */
  g_free (shared->broker);
  shared->broker = g_strdup (config->broker);
  g_free (shared->device);
  shared->device = g_strdup (config->device);
  g_free (shared->topic_prefix);
  shared->topic_prefix = g_strdup (config->topic_prefix);
  shared->ca_file = g_strdup (config->ca_file);
  shared->username = g_strdup (config->username);
  return pcr_config_validate (shared, error);
}

gboolean
pcr_gateway_config_validate (PcrGatewayConfig * config,
    const gchar * default_www, GError ** error)
{
  g_autoptr (PcrIceConfig) ice = NULL;
  g_autoptr (GBytes) dummy = NULL;
  g_autoptr (GError) local = NULL;
  const gchar *www;

  g_return_val_if_fail (config != NULL, FALSE);

  if (!check_range ("turn-ttl", config->turn_ttl, MIN_TURN_TTL,
          MAX_TURN_TTL, error) ||
      !check_range ("answer-timeout", config->answer_timeout,
          MIN_ANSWER_TIMEOUT, MAX_ANSWER_TIMEOUT, error) ||
      !check_range ("max-body-size", config->max_body_size, MIN_BODY_SIZE,
          MAX_BODY_SIZE, error) ||
      !check_range ("max-sessions", config->max_sessions, 1, MAX_SESSIONS,
          error))
    return FALSE;

  if (!check_shared (config, &local)) {
    g_set_error_literal (error, PCR_GATEWAY_CONFIG_ERROR, 0, local->message);
    return FALSE;
  }
  if (config->password_file != NULL && config->username == NULL)
    return invalid (error, "password-file: set without a username");

  if (!parse_listen (config, error))
    return FALSE;

  if ((config->tls_cert == NULL) != (config->tls_key == NULL))
    return invalid (error, "%s: set %s too (HTTPS needs both)",
        config->tls_cert ? "tls-cert" : "tls-key",
        config->tls_cert ? "tls-key" : "tls-cert");
  if (!check_file ("tls-cert", config->tls_cert, error) ||
      !check_file ("tls-key", config->tls_key, error) ||
      !check_file ("token-file", config->token_file, error) ||
      !check_file ("turn-secret-file", config->turn_secret_file, error) ||
      !check_file ("password-file", config->password_file, error))
    return FALSE;

  /* the URLs only; the real secret is read later */
  if (config->turn_secret_file != NULL)
    dummy = g_bytes_new_static ("x", 1);
  ice = pcr_ice_config_new ((const gchar * const *) config->stun_uris,
      (const gchar * const *) config->turn_uris, dummy, config->turn_ttl,
      &local);
  if (ice == NULL) {
    g_set_error_literal (error, PCR_GATEWAY_CONFIG_ERROR, 0, local->message);
    return FALSE;
  }

  www = config->www != NULL ? config->www : default_www;
  g_clear_pointer (&config->www_dir, g_free);
  if (www != NULL && g_file_test (www, G_FILE_TEST_IS_DIR)) {
    gchar *real = realpath (www, NULL);

    config->www_dir = g_strdup (real);
    free (real);
  }
  if (config->www != NULL && config->www_dir == NULL) {
    g_autofree gchar *escaped = g_strescape (config->www, NULL);

    return invalid (error, "www: \"%s\" is not a directory", escaped);
  }
  return TRUE;
}

static gboolean
read_secret (const gchar * name, const gchar * path, gchar ** out,
    GError ** error)
{
  g_autoptr (GError) local = NULL;
  g_autofree gchar *escaped = NULL;
  gchar *contents = NULL;
  gsize len = 0;

  if (path == NULL)
    return TRUE;
  escaped = g_strescape (path, NULL);
  if (!g_file_get_contents (path, &contents, &len, &local))
    return invalid (error, "%s: cannot read \"%s\": %s", name, escaped,
        local->message);
  if (len > MAX_SECRET_FILE || memchr (contents, '\0', len) != NULL) {
    clear_secret (&contents);
    return invalid (error, "%s: \"%s\" is over %d bytes or not text", name,
        escaped, MAX_SECRET_FILE);
  }
  g_strstrip (contents);
  if (*contents == '\0') {
    g_free (contents);
    return invalid (error, "%s: \"%s\" is empty", name, escaped);
  }
  clear_secret (out);
  *out = contents;
  return TRUE;
}

gboolean
pcr_gateway_config_read_secrets (PcrGatewayConfig * config, GError ** error)
{
  g_autofree gchar *secret = NULL;
  const gchar *c;

  g_return_val_if_fail (config != NULL, FALSE);

  if (!read_secret ("token-file", config->token_file, &config->token, error)
      || !read_secret ("password-file", config->password_file,
          &config->password, error)
      || !read_secret ("turn-secret-file", config->turn_secret_file, &secret,
          error))
    return FALSE;
  for (c = config->token; c != NULL && *c != '\0'; c++) {
    /* a bearer token is one printable word */
    if (*c <= ' ' || *c >= 0x7f) {
      g_autofree gchar *escaped = g_strescape (config->token_file, NULL);

      clear_secret (&config->token);
      return invalid (error, "token-file: \"%s\" holds more than one word "
          "or a control character", escaped);
    }
  }
  if (secret != NULL) {
    g_clear_pointer (&config->turn_secret, g_bytes_unref);
    config->turn_secret = g_bytes_new (secret, strlen (secret));
    memset (secret, 0, strlen (secret));
  }
  return TRUE;
}
