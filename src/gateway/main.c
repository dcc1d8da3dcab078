/* picamrtc-gateway: the web server in front of the cameras. Reads the
 * config file (group [gateway]) and the command line (the command line
 * wins), then serves the web client, the seed's /api/... signalling, WHEP and
 * ICE servers over HTTP(S), relaying to devices over MQTT. Exit status: 0
 * after SIGINT/SIGTERM, 1 when it cannot listen, 2 for a bad option or
 * config value (the message names the key). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <gst/gst.h>

#include "pcr-gateway.h"
#include "pcr-gateway-config.h"

#define PROGRAM "picamrtc-gateway"

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

int
main (int argc, char **argv)
{
  g_autofree gchar *www = default_www ();
  g_autoptr (PcrGatewayConfig) config = pcr_gateway_config_new ();
  g_autoptr (PcrSettings) settings = pcr_gateway_config_settings_new (config,
      www);
  g_autoptr (GOptionContext) ctx = NULL;
  g_autoptr (PcrGateway) gateway = NULL;
  g_autoptr (GError) error = NULL;
  gint ret;

  /* a client that hangs up must not kill the server */
  signal (SIGPIPE, SIG_IGN);

  ctx = pcr_settings_option_context_new (settings,
      "- web server and WebRTC signalling gateway", "Serves the web client, "
      "/api/... and WHEP, and relays offers to cameras over MQTT.\nExit "
      "status: 0 stopped, 1 cannot listen, 2 bad option or config.", NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  ret = pcr_settings_run_command_line (settings, ctx, PROGRAM, &argc, &argv);
  if (ret >= 0)
    return ret;
  if (!pcr_gateway_config_read_secrets (config, settings, &error)) {
    pcr_print_error (PROGRAM, error->message);
    return PCR_EXIT_BAD_CONFIG;
  }

  /* the gateway takes the config; the settings are done with it */
  g_clear_pointer (&settings, pcr_settings_free);
  gateway = pcr_gateway_new (g_steal_pointer (&config), &error);
  if (gateway == NULL) {
    pcr_print_error (PROGRAM, error->message);
    return PCR_EXIT_BAD_CONFIG;
  }
  if (!pcr_gateway_start (gateway, &error)) {
    pcr_print_error (PROGRAM, error->message);
    ret = g_error_matches (error, PCR_GATEWAY_ERROR,
        PCR_GATEWAY_ERROR_CONFIG) ? PCR_EXIT_BAD_CONFIG : EXIT_FAILURE;
  } else {
    ret = pcr_gateway_run (gateway);
  }
  g_clear_pointer (&gateway, pcr_gateway_free);
  gst_deinit ();
  return ret;
}
