/* Unit tests for lib/pcr-json.c, the parse every JSON object from the
 * network goes through (MQTT messages, device status, HTTP bodies): nesting
 * up to PCR_JSON_MAX_DEPTH passes and one level more is refused, text that
 * is not UTF-8 or not one object is refused, only @len bytes are read, and
 * every refusal is a one-line bad-request error a peer can be sent. */
#include <string.h>

#include <glib.h>

#include "pcr-json.h"
#include "pcr-message.h"
#include "pcr-quote.h"

/* @depth levels of objects and arrays, alternating, around one value. */
static gchar *
nested (guint depth)
{
  GString *text = g_string_new (NULL);
  guint i;

  for (i = 0; i < depth; i++)
    g_string_append (text, i % 2 == 0 ? "{\"a\":" : "[");
  g_string_append (text, "1");
  for (i = depth; i > 0; i--)
    g_string_append (text, (i - 1) % 2 == 0 ? "}" : "]");
  return g_string_free (text, FALSE);
}

static JsonNode *
parse (const gchar * data, gsize len, GError ** error)
{
  return pcr_json_parse_object (data, len, error);
}

/* Refused with a bad-request error of one printable line that contains
 * @needle. */
static void
assert_refused (const gchar * data, gsize len, const gchar * needle)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = parse (data, len, &error);
  /* reads to a NUL or 41 bytes, both inside every input here */
  g_autofree gchar *shown = pcr_quote_untrusted (data, 40);

  g_assert_null (root);
  g_assert_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST);
  g_test_message ("%s -> %s", shown, error->message);
  g_assert_null (strpbrk (error->message, "\r\n"));
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  g_assert_nonnull (strstr (error->message, needle));
}

static void
assert_refused_text (const gchar * text, const gchar * needle)
{
  assert_refused (text, strlen (text), needle);
}

static void
test_depth (void)
{
  g_autofree gchar *deepest = nested (PCR_JSON_MAX_DEPTH);
  g_autofree gchar *too_deep = nested (PCR_JSON_MAX_DEPTH + 1);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = NULL;

  g_assert_cmpint (PCR_JSON_MAX_DEPTH, ==, 16);
  root = parse (deepest, strlen (deepest), &error);
  g_assert_no_error (error);
  g_assert_nonnull (root);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));

  assert_refused_text (too_deep, "deeper than 16 levels");
}

/* What the limit is for: a payload of nothing but opening brackets would
 * take json-glib's recursion through the stack. */
static void
test_depth_bomb (void)
{
  gsize len = 256 * 1024;
  g_autofree gchar *bomb = g_malloc (len);

  bomb[0] = '{';
  memcpy (bomb + 1, "\"a\":", 4);
  memset (bomb + 5, '[', len - 5);
  assert_refused (bomb, len, "deeper than 16 levels");
}

static void
test_bad_utf8 (void)
{
  assert_refused_text ("{\"a\":\"\xff\"}", "not valid UTF-8");
  /* cut short, an encoded surrogate, an overlong '/' */
  assert_refused_text ("{\"a\":\"\xc3\"}", "not valid UTF-8");
  assert_refused_text ("{\"a\":\"\xed\xa0\x80\"}", "not valid UTF-8");
  assert_refused_text ("{\"\xc0\xaf\":1}", "not valid UTF-8");

  /* escapes that would make invalid UTF-8 or cut the C string short */
  assert_refused_text ("{\"a\":\"\\ud800\"}", "surrogate");
  assert_refused_text ("{\"a\":\"\\udc00x\"}", "surrogate");
  assert_refused_text ("{\"a\":\"\\u0000\"}", "\\u0000");
  assert_refused ("{\"a\":1}\0", 8, "NUL");
}

static void
test_not_an_object (void)
{
  const gchar *not_objects = "[1,2]|\"text\"|42|true|null| |x{}";
  g_auto (GStrv) texts = g_strsplit (not_objects, "|", -1);
  guint i;

  for (i = 0; texts[i] != NULL; i++)
    assert_refused_text (texts[i], "not a JSON object");
  assert_refused_text ("", "empty");
  assert_refused_text ("{} {}", "trailing data");
  assert_refused_text ("{}x", "trailing data");
  /* what json-glib takes beyond JSON */
  assert_refused_text ("{'a':1}", "not valid JSON");
  assert_refused_text ("{\"a\":1 /* c */}", "not valid JSON");
  assert_refused_text ("{\"a\":1", "not valid JSON");
}

/* Only @len bytes are read: no NUL after them is needed, what follows is
 * not looked at, and a large object parses whole. */
static void
test_size (void)
{
  static const gchar text[] = "{\"a\":1}garbage";
  gsize big_len = 192 * 1024;
  g_autoptr (GString) big = g_string_new ("{\"sdp\":\"");
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (JsonNode) whole = NULL;
  JsonObject *obj;

  root = parse (text, 7, &error);
  g_assert_no_error (error);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (root),
          "a"), ==, 1);
  /* cut one byte short it is no longer an object */
  assert_refused (text, 6, "not valid JSON");

  while (big->len < big_len - 2)
    g_string_append_c (big, 'x');
  g_string_append (big, "\"}");
  whole = parse (big->str, big->len, &error);
  g_assert_no_error (error);
  obj = json_node_get_object (whole);
  g_assert_cmpuint (strlen (json_object_get_string_member (obj, "sdp")), ==,
      big->len - 10);
}

/* Raw control characters in strings pass: json-glib's generator writes
 * them unescaped, so our own messages carry them. */
static void
test_control_characters_pass (void)
{
  static const gchar text[] = "{\"a\":\"x\001y\"}";
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = parse (text, strlen (text), &error);

  g_assert_no_error (error);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object
          (root), "a"), ==, "x\001y");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/json/depth", test_depth);
  g_test_add_func ("/json/depth-bomb", test_depth_bomb);
  g_test_add_func ("/json/bad-utf8", test_bad_utf8);
  g_test_add_func ("/json/not-an-object", test_not_an_object);
  g_test_add_func ("/json/size", test_size);
  g_test_add_func ("/json/control-characters-pass",
      test_control_characters_pass);

  return g_test_run ();
}
