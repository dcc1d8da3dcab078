/* picamrtc-gateway: the web server in front of the cameras. Reads the
 * config file (group [gateway]) and the command line (the command line
 * wins), then serves the web client, the seed's /api/... signalling, WHEP and
 * ICE servers over HTTP(S), relaying to devices over MQTT. Exit status: 0
 * after SIGINT/SIGTERM, 1 when it cannot listen, 2 for a bad option or
 * config value (the message names the key). */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <gst/gst.h>

#include "pcr-gateway.h"
#include "pcr-gateway-config.h"

#define EXIT_BAD_CONFIG 2
#define UNSET G_MININT

typedef struct
{
  gchar *config_file;
  gchar *broker;
  gchar *username;
  gchar *password_file;
  gchar *ca_file;
  gchar *topic_prefix;
  gchar *listen;
  gchar *www;
  gchar *device;
  gchar *token_file;
  gchar *tls_cert;
  gchar *tls_key;
  gchar **stun_uris;
  gchar **turn_uris;
  gchar *turn_secret_file;
  gint turn_ttl;
  gint answer_timeout;
  gint max_body_size;
  gint max_sessions;
  gboolean version;
} Options;

static void
options_clear (Options * o)
{
  g_free (o->config_file);
  g_free (o->broker);
  g_free (o->username);
  g_free (o->password_file);
  g_free (o->ca_file);
  g_free (o->topic_prefix);
  g_free (o->listen);
  g_free (o->www);
  g_free (o->device);
  g_free (o->token_file);
  g_free (o->tls_cert);
  g_free (o->tls_key);
  g_strfreev (o->stun_uris);
  g_strfreev (o->turn_uris);
  g_free (o->turn_secret_file);
}

static void
override_string (gchar ** field, const gchar * value)
{
  if (value != NULL) {
    g_free (*field);
    /* an empty value on the command line clears a nullable setting */
    *field = *value != '\0' ? g_strdup (value) : NULL;
  }
}

static void
override_int (gint * field, gint value)
{
  if (value != UNSET)
    *field = value;
}

static void
override_list (gchar *** field, gchar ** value)
{
  if (value != NULL) {
    g_strfreev (*field);
    *field = g_strdupv (value);
  }
}

/* The command line wins over the config file. */
static void
apply_options (PcrGatewayConfig * config, const Options * o)
{
  override_string (&config->broker, o->broker);
  override_string (&config->username, o->username);
  override_string (&config->password_file, o->password_file);
  override_string (&config->ca_file, o->ca_file);
  override_string (&config->topic_prefix, o->topic_prefix);
  override_string (&config->listen, o->listen);
  override_string (&config->www, o->www);
  override_string (&config->device, o->device);
  override_string (&config->token_file, o->token_file);
  override_string (&config->tls_cert, o->tls_cert);
  override_string (&config->tls_key, o->tls_key);
  override_string (&config->turn_secret_file, o->turn_secret_file);
  override_list (&config->stun_uris, o->stun_uris);
  override_list (&config->turn_uris, o->turn_uris);
  override_int (&config->turn_ttl, o->turn_ttl);
  override_int (&config->answer_timeout, o->answer_timeout);
  override_int (&config->max_body_size, o->max_body_size);
  override_int (&config->max_sessions, o->max_sessions);
}

static gboolean
parse_options (Options * o, int *argc, char ***argv, GError ** error)
{
  GOptionEntry entries[] = {
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &o->config_file,
        "Config file (GKeyFile, group [gateway])", "FILE"},
    {"broker", 'b', 0, G_OPTION_ARG_STRING, &o->broker,
        "MQTT broker (default mqtt://127.0.0.1:1883)", "URI"},
    {"username", 0, 0, G_OPTION_ARG_STRING, &o->username,
        "MQTT user name", "NAME"},
    {"password-file", 0, 0, G_OPTION_ARG_FILENAME, &o->password_file,
        "File holding the MQTT password", "FILE"},
    {"ca-file", 0, 0, G_OPTION_ARG_FILENAME, &o->ca_file,
        "CA certificates for an mqtts:// broker", "FILE"},
    {"topic-prefix", 0, 0, G_OPTION_ARG_STRING, &o->topic_prefix,
        "MQTT topic prefix (default picamrtc)", "PREFIX"},
    {"listen", 'l', 0, G_OPTION_ARG_STRING, &o->listen,
          "Address and port to serve on (default "
          PCR_GATEWAY_DEFAULT_LISTEN "; *:PORT for every interface)",
        "ADDR:PORT"},
    {"www", 0, 0, G_OPTION_ARG_FILENAME, &o->www,
        "Directory of the web client (default: the installed one)", "DIR"},
    {"device", 'd', 0, G_OPTION_ARG_STRING, &o->device,
          "Device for /api/start-webrtc offers without one (default cam1)",
        "ID"},
    {"token-file", 0, 0, G_OPTION_ARG_FILENAME, &o->token_file,
        "Require \"Authorization: Bearer <the token in FILE>\" on /api and "
          "/whep", "FILE"},
    {"tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &o->tls_cert,
        "Serve HTTPS with this certificate (PEM, chain allowed)", "FILE"},
    {"tls-key", 0, 0, G_OPTION_ARG_FILENAME, &o->tls_key,
        "The certificate's private key (PEM)", "FILE"},
    {"stun-uri", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->stun_uris,
        "STUN server for browsers and devices (repeatable)", "stun:HOST:PORT"},
    {"turn-uri", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->turn_uris,
          "TURN server (repeatable); without USER:PASS@ it gets short-lived "
          "credentials from --turn-secret-file",
        "turn:[USER:PASS@]HOST:PORT[?transport=udp]"},
    {"turn-secret-file", 0, 0, G_OPTION_ARG_FILENAME, &o->turn_secret_file,
        "File holding the TURN REST shared secret (coturn's "
          "static-auth-secret)", "FILE"},
    {"turn-ttl", 0, 0, G_OPTION_ARG_INT, &o->turn_ttl,
        "Lifetime of TURN credentials in seconds (default 86400)", "S"},
    {"answer-timeout", 0, 0, G_OPTION_ARG_INT, &o->answer_timeout,
        "Seconds to wait for a device's answer (default 10)", "S"},
    {"max-body-size", 0, 0, G_OPTION_ARG_INT, &o->max_body_size,
        "Largest request body in bytes (default 65536)", "BYTES"},
    {"max-sessions", 0, 0, G_OPTION_ARG_INT, &o->max_sessions,
        "Most open sessions at once (default 256)", "N"},
    {"version", 0, 0, G_OPTION_ARG_NONE, &o->version,
        "Print the version and exit", NULL},
    {NULL}
  };
  g_autoptr (GOptionContext) ctx = NULL;

  o->turn_ttl = o->answer_timeout = o->max_body_size = o->max_sessions = UNSET;

  ctx = g_option_context_new ("- web server and WebRTC signalling gateway");
  g_option_context_set_summary (ctx, "Serves the web client, /api/... and "
      "WHEP, and relays offers to cameras over MQTT.\nExit status: 0 "
      "stopped, 1 cannot listen, 2 bad option or config.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, argc, argv, error))
    return FALSE;
  if (*argc > 1) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "unexpected argument '%s'", (*argv)[1]);
    return FALSE;
  }
  return TRUE;
}

static void
one_line_error (const gchar * message)
{
  g_autofree gchar *line = g_strdup (message);

  g_strdelimit (line, "\r\n", ' ');
  g_printerr ("picamrtc-gateway: %s\n", line);
}

/* Run from the build tree, the web client is the source tree's; installed,
 * the installed one. */
static gchar *
default_www (void)
{
  g_autofree gchar *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree gchar *build = realpath (PCR_GATEWAY_BUILD_ROOT, NULL);

  if (exe != NULL && build != NULL && g_str_has_prefix (exe, build) &&
      exe[strlen (build)] == '/')
    return g_strdup (PCR_GATEWAY_SOURCE_WWW_DIR);
  if (g_file_test (PCR_GATEWAY_WWW_DIR, G_FILE_TEST_IS_DIR))
    return g_strdup (PCR_GATEWAY_WWW_DIR);
  return g_strdup (PCR_GATEWAY_SOURCE_WWW_DIR);
}

static gint
run (const Options * o)
{
  g_autoptr (PcrGatewayConfig) config = pcr_gateway_config_new ();
  g_autoptr (PcrGateway) gateway = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *www = default_www ();

  if (o->config_file != NULL &&
      !pcr_gateway_config_load_file (config, o->config_file, &error)) {
    one_line_error (error->message);
    return EXIT_BAD_CONFIG;
  }
  apply_options (config, o);
  if (!pcr_gateway_config_validate (config, www, &error) ||
      !pcr_gateway_config_read_secrets (config, &error)) {
    one_line_error (error->message);
    return EXIT_BAD_CONFIG;
  }

  gateway = pcr_gateway_new (g_steal_pointer (&config), &error);
  if (gateway == NULL) {
    one_line_error (error->message);
    return EXIT_BAD_CONFIG;
  }
  if (!pcr_gateway_start (gateway, &error)) {
    one_line_error (error->message);
    return g_error_matches (error, PCR_GATEWAY_ERROR,
        PCR_GATEWAY_ERROR_CONFIG) ? EXIT_BAD_CONFIG : EXIT_FAILURE;
  }
  return pcr_gateway_run (gateway);
}

int
main (int argc, char **argv)
{
  Options options = { 0 };
  g_autoptr (GError) error = NULL;
  gint ret;

  /* a client that hangs up must not kill the server */
  signal (SIGPIPE, SIG_IGN);

  if (!parse_options (&options, &argc, &argv, &error)) {
    one_line_error (error->message);
    options_clear (&options);
    return EXIT_BAD_CONFIG;
  }
  if (options.version) {
    g_print ("picamrtc-gateway %s\n", VERSION);
    options_clear (&options);
    return EXIT_SUCCESS;
  }

  ret = run (&options);
  options_clear (&options);
  gst_deinit ();
  return ret;
}
