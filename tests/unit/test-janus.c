/* The relay URL a camera's config or the gateway's names: what is taken,
 * what is refused with which message. */
#include "pcr-janus.h"

#include <gio/gio.h>
#include <string.h>

static void
test_url_accepted (void)
{
  g_autofree gchar *base = NULL, *key = NULL, *secret = NULL;
  g_autoptr (GError) error = NULL;
  guint64 room = 99;

  g_assert_true (pcr_janus_parse_url ("http://127.0.0.1:8088/janus", &base,
          &room, &key, &secret, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (base, ==, "http://127.0.0.1:8088/janus");
  g_assert_cmpuint (room, ==, 0);
  g_assert_null (key);
  g_assert_null (secret);
  g_clear_pointer (&base, g_free);

  g_assert_true (pcr_janus_parse_url ("https://janus.example:8089/janus?"
          "room=1234&adminkey=k%20ey&apisecret=s3", &base, &room, &key,
          &secret, &error));
  g_assert_cmpstr (base, ==, "https://janus.example:8089/janus");
  g_assert_cmpuint (room, ==, 1234);
  g_assert_cmpstr (key, ==, "k ey");
  g_assert_cmpstr (secret, ==, "s3");
}

static void
test_url_refused (void)
{
  const struct
  {
    const gchar *url, *says;
  } cases[] = {
    {"ftp://h/janus", "http:// or https://"},
    {"http:///janus", "no host"},
    {"http://user:pw@h/janus", "credentials go in the query"},
    {"http://h/janus?room=0", "room must be a number"},
    {"http://h/janus?room=9007199254740992", "room must be a number"},
    {"http://h/janus?room=12a", "room must be a number"},
    {"http://h/janus?pin=1", "unknown parameter 'pin'"},
    {"not a url", "relay URL"},
    {"http://h:99999/janus?apisecret=TOPSECRET", "does not parse"},
  };
  g_autofree gchar *long_url = g_strnfill (2000, 'a');

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree gchar *base = NULL, *key = NULL, *secret = NULL;
    g_autoptr (GError) error = NULL;
    guint64 room;

    g_assert_false (pcr_janus_parse_url (cases[i].url, &base, &room, &key,
            &secret, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    if (!g_strrstr (error->message, cases[i].says))
      g_error ("%s: \"%s\" does not say \"%s\"", cases[i].url,
          error->message, cases[i].says);
    g_assert_null (strchr (error->message, '\n'));
    g_assert_null (strstr (error->message, "TOPSECRET"));
    g_assert_null (base);
  }
  {
    g_autofree gchar *base = NULL, *key = NULL, *secret = NULL;
    g_autoptr (GError) error = NULL;
    g_autofree gchar *url = g_strconcat ("http://h/", long_url, NULL);
    guint64 room;

    g_assert_false (pcr_janus_parse_url (url, &base, &room, &key, &secret,
            &error));
    g_assert_nonnull (g_strrstr (error->message, "longer than"));
  }
}

/* Nothing listens: the connect fails fast with UNREACHABLE, and freeing
 * the client then leaves nothing behind (LSan). */
static void
on_connected (PcrJanus * janus, JsonObject * reply, const GError * error,
    gpointer user_data)
{
  GError **out = user_data;

  *out = error ? g_error_copy (error) : g_error_new_literal (G_IO_ERROR,
      G_IO_ERROR_FAILED, "connected to nothing?");
}

static JsonObject *
parse_object (JsonParser * parser, const gchar * text)
{
  g_assert_true (json_parser_load_from_data (parser, text, -1, NULL));
  return json_node_get_object (json_parser_get_root (parser));
}

/* What Janus sends is read by type: a member of another type is missing,
 * with no NULL where a string is expected and no GLib warning (fatal
 * here) for an object or array. */
static void
test_members_typed (void)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *o = parse_object (parser, "{\"s\":\"x\",\"n\":5,"
      "\"f\":1.5,\"b\":true,\"o\":{},\"a\":[1],\"z\":null}");

  g_assert_cmpstr (pcr_janus_string (o, "s", "-"), ==, "x");
  for (const gchar * const *m = (const gchar *[]) {
        "n", "f", "b", "o", "a", "z", "missing", NULL}; *m; m++) {
    g_assert_cmpstr (pcr_janus_string (o, *m, "-"), ==, "-");
    g_assert_null (pcr_janus_string (o, *m, NULL));
  }
  g_assert_cmpint (pcr_janus_int (o, "n", -1), ==, 5);
  for (const gchar * const *m = (const gchar *[]) {
        "s", "f", "b", "o", "a", "z", "missing", NULL}; *m; m++)
    g_assert_cmpint (pcr_janus_int (o, *m, -1), ==, -1);

  /* an offer whose SDP is not a string, a jsep that is not an object */
  o = parse_object (parser, "{\"jsep\":{\"type\":\"offer\",\"sdp\":5}}");
  g_assert_null (pcr_janus_jsep_sdp (o, "offer"));
  o = parse_object (parser, "{\"jsep\":{\"type\":[],\"sdp\":\"v=0\"}}");
  g_assert_null (pcr_janus_jsep_sdp (o, "offer"));
  o = parse_object (parser, "{\"jsep\":{\"type\":\"offer\",\"sdp\":\"v=0\"}}");
  g_assert_cmpstr (pcr_janus_jsep_sdp (o, "offer"), ==, "v=0");
  o = parse_object (parser, "{\"plugindata\":{\"data\":7}}");
  g_assert_null (pcr_janus_plugin_data (o));
}

static void
test_unreachable (void)
{
  g_autoptr (GSocketListener) listener = g_socket_listener_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *url = NULL;
  PcrJanus *janus;
  guint16 port;

  /* a port that was free a moment ago, closed again: refused */
  port = g_socket_listener_add_any_inet_port (listener, NULL, &error);
  g_assert_no_error (error);
  g_socket_listener_close (listener);
  url = g_strdup_printf ("http://127.0.0.1:%u/janus", port);
  janus = pcr_janus_new (url, NULL, NULL, NULL, NULL);
  pcr_janus_connect (janus, "janus.plugin.videoroom", on_connected, &error);
  while (!error)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (error, PCR_JANUS_ERROR, PCR_JANUS_ERROR_UNREACHABLE);
  g_assert_false (pcr_janus_is_connected (janus));
  pcr_janus_free (janus);
  pcr_janus_wait_destroyed (g_main_context_default (), 500);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/janus/url/accepted", test_url_accepted);
  g_test_add_func ("/janus/url/refused", test_url_refused);
  g_test_add_func ("/janus/members-typed", test_members_typed);
  g_test_add_func ("/janus/unreachable", test_unreachable);
  return g_test_run ();
}
