/* The strict pre-check and parse of JSON objects from the network (see
 * pcr-json.h), shared by the MQTT message codec and the gateway. Every
 * error is a protocol error (bad-request): the peer sent it. */
#include "pcr-json.h"

#include <string.h>

#include "pcr-message.h"
#include "pcr-quote.h"

/* How much of json-glib's own error message a reply may quote. */
#define MAX_QUOTED_JSON_ERROR 160

/* Sets a bad-request error and gives FALSE. */
#define bad_request(error, ...) \
  (g_set_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST, \
      __VA_ARGS__), FALSE)

/* Text at all: not empty, no NUL, UTF-8. */
static gboolean
check_bytes (const gchar * data, gsize len, GError ** error)
{
  if (len == 0)
    return bad_request (error, "empty, not a JSON object");
  if (memchr (data, '\0', len) != NULL)
    return bad_request (error, "contains a NUL byte");
  if (!g_utf8_validate (data, len, NULL))
    return bad_request (error, "not valid UTF-8");
  return TRUE;
}

static gint
hex_value (gchar c)
{
  return g_ascii_isxdigit (c) ? g_ascii_xdigit_value (c) : -1;
}

/* Reads the 4 hex digits of a \u escape at data[*i]; advances *i past them. */
static gboolean
read_hex4 (const gchar * data, gsize len, gsize * i, guint * value)
{
  guint v = 0;
  gint k;

  if (len - *i < 4)
    return FALSE;
  for (k = 0; k < 4; k++) {
    gint d = hex_value (data[*i + k]);

    if (d < 0)
      return FALSE;
    v = v << 4 | d;
  }
  *i += 4;
  *value = v;
  return TRUE;
}

/* data[*i] is the opening '"'; on success *i is just past the closing one.
 * Only the escapes of RFC 8259 pass: json-glib 1.6 accepts malformed ones and
 * then returns invalid UTF-8, drops characters or ends the string somewhere
 * else than this scan does. \u0000 is refused because it would silently cut
 * the C string short. Raw control characters pass, as json-glib takes them:
 * its 1.6 generator writes all but \b \f \n \r \t unescaped, so
 * messages from our own devices and gateway carry them. */
static gboolean
skip_string (const gchar * data, gsize len, gsize * i, GError ** error)
{
  gsize p = *i + 1;

  while (p < len) {
    guchar c = data[p++];
    guint cp, low;

    if (c == '"') {
      *i = p;
      return TRUE;
    }
    if (c != '\\')
      continue;
    if (p >= len)
      break;
    c = data[p++];
    if (strchr ("\"\\/bfnrt", c) != NULL)
      continue;
    if (c != 'u' || !read_hex4 (data, len, &p, &cp))
      return bad_request (error, "not valid JSON: bad escape in a string");
    if (cp == 0)
      return bad_request (error, "\\u0000 is not allowed in a string");
    if (cp >= 0xdc00 && cp <= 0xdfff)
      return bad_request (error, "not valid JSON: unpaired UTF-16 surrogate");
    if (cp >= 0xd800 && cp <= 0xdbff) {
      if (len - p < 2 || data[p] != '\\' || data[p + 1] != 'u')
        return bad_request (error, "not valid JSON: unpaired UTF-16 surrogate");
      p += 2;
      if (!read_hex4 (data, len, &p, &low) || low < 0xdc00 || low > 0xdfff)
        return bad_request (error, "not valid JSON: unpaired UTF-16 surrogate");
    }
  }
  return bad_request (error, "not valid JSON: unterminated string");
}

/* A strict lexical pass before json-glib: one object and nothing after it
 * (given a second value json-glib 1.6 leaks the first, found by
 * tests/fuzz), the nesting bounded, and nothing of what json-glib accepts
 * beyond JSON (single-quoted strings, comments), since any place where its
 * idea of a string differs from this scan's would let deep nesting
 * through. */
static gboolean
check_json_text (const gchar * data, gsize len, GError ** error)
{
  guint depth = 0;
  gboolean started = FALSE, closed = FALSE;
  gsize i = 0;

  while (i < len) {
    guchar c = data[i];

    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      i++;
      continue;
    }
    if (!started && c != '{')
      return bad_request (error, "not a JSON object");
    started = TRUE;
    if (closed)
      return bad_request (error, "trailing data after the JSON object");

    if (c == '"') {
      if (!skip_string (data, len, &i, error))
        return FALSE;
      continue;
    }
    if (c == '{' || c == '[') {
      if (++depth > PCR_JSON_MAX_DEPTH)
        return bad_request (error, "JSON nested deeper than %d levels",
            PCR_JSON_MAX_DEPTH);
    } else if (c == '}' || c == ']') {
      if (depth == 0)
        return bad_request (error, "not valid JSON: unbalanced '%c'", c);
      if (--depth == 0)
        closed = TRUE;
    } else if (!(c == ',' || c == ':' || c == '-' || c == '+' || c == '.'
            || g_ascii_isalnum (c))) {
      if (g_ascii_isprint (c))
        return bad_request (error, "not valid JSON: unexpected '%c'", c);
      return bad_request (error, "not valid JSON: unexpected byte 0x%02x", c);
    }
    i++;
  }
  if (!started)
    return bad_request (error, "not a JSON object");
  return TRUE;
}

JsonNode *
pcr_json_parse_object (const gchar * data, gsize len, GError ** error)
{
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GError) json_error = NULL;
  JsonNode *root;

  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!check_bytes (data, len, error) || !check_json_text (data, len, error))
    return NULL;

  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, data, len, &json_error)) {
    g_autofree gchar *why = pcr_quote_untrusted (json_error->message,
        MAX_QUOTED_JSON_ERROR);

    g_set_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST,
        "not valid JSON: %s", why);
    return NULL;
  }
  root = json_parser_steal_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_clear_pointer (&root, json_node_unref);
    g_set_error_literal (error, PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST,
        "not a JSON object");
    return NULL;
  }
  return root;
}
