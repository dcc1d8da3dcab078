/* pcr-test-viewer --relay: viewers that watch the camera through Janus
 * (docs/scaling.md, the relay contract of issue 14) instead of directly.
 * pcr-test-viewer.c parses the options and hands them over. */
#pragma once

#include <glib.h>

typedef struct
{
  const gchar *relay;           /* the Janus URL (pcr_janus_parse_url) */
  const gchar *broker_host;
  gint broker_port;
  gboolean broker_tls;
  const gchar *username;
  const gchar *password;
  const gchar *ca_file;
  const gchar *device;
  const gchar *prefix;
  const gchar *session;         /* nullable: random; with count > 1 a prefix */
  gchar **ice_addresses;
  gboolean trickle;             /* our candidates trickled, not in the answer */
  gboolean no_decode;
  gint frames_target;
  gint timeout_s;
  gint hold_s;
  gint count;
  gint stagger_ms;
  const gchar *expect_error;
  gboolean no_bye;
} RelayOptions;

/* Runs the relayed viewers to the end; the process's exit code. */
gint relay_main (const RelayOptions * options);
