/* The quoting of untrusted text for logs and error replies (see
 * pcr-quote.h). Only @max bytes of the input are ever looked at, however
 * long it is. */
#include "pcr-quote.h"

static gboolean
is_shown (gunichar c)
{
  GUnicodeType type;

  if (!g_unichar_isprint (c))
    return FALSE;
  /* printable to GLib, but a new line to many log viewers */
  type = g_unichar_type (c);
  return type != G_UNICODE_LINE_SEPARATOR
      && type != G_UNICODE_PARAGRAPH_SEPARATOR;
}

gchar *
pcr_quote_untrusted (const gchar * text, gsize max)
{
  GString *out;
  const gchar *p;
  gsize keep_len;

  if (text == NULL)
    return g_strdup ("");
  out = g_string_new (NULL);
  /* stops one character past @max: enough to know it is too long */
  for (p = text; *p != '\0' && out->len <= max;) {
    gunichar c = g_utf8_get_char_validated (p, -1);
    gboolean valid = c != (gunichar) - 1 && c != (gunichar) - 2;
    /* not UTF-8 (or cut short by the NUL): one byte, shown as '?' */
    gsize n = valid ? (gsize) (g_utf8_next_char (p) - p) : 1;

    if (valid && is_shown (c))
      g_string_append_len (out, p, n);
    else
      g_string_append_c (out, '?');
    p += n;
  }
  if (out->len <= max)
    return g_string_free (out, FALSE);

  /* too long: cut on a character boundary, "..." included in @max */
  keep_len = max > 3 ? max - 3 : 0;
  while (keep_len > 0 && (out->str[keep_len] & 0xc0) == 0x80)
    keep_len--;
  g_string_truncate (out, keep_len);
  g_string_append (out, "...");
  return g_string_free (out, FALSE);
}
