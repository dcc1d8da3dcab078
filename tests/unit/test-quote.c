/* Unit tests for lib/pcr-quote.c, the one quoting of untrusted text into
 * logs and error replies: a hostile peer must not be able to start a new
 * log line, hide text behind bidi overrides, send bytes that are not UTF-8
 * through us or make a message of unbounded size. */
#include <string.h>

#include <glib.h>

#include "pcr-quote.h"

static void
assert_quote (const gchar * text, gsize max, const gchar * expected)
{
  g_autofree gchar *quoted = pcr_quote_untrusted (text, max);
  g_autofree gchar *again = pcr_quote_untrusted (quoted, max);

  g_assert_cmpstr (quoted, ==, expected);
  g_assert_cmpuint (strlen (quoted), <=, max);
  g_assert_true (g_utf8_validate (quoted, -1, NULL));
  /* quoting twice changes nothing */
  g_assert_cmpstr (again, ==, quoted);
}

static void
test_plain (void)
{
  assert_quote (NULL, 16, "");
  assert_quote ("", 16, "");
  assert_quote ("offer", 16, "offer");
  assert_quote ("\"quotes\" & <tags>", 64, "\"quotes\" & <tags>");
  /* printable characters beyond ASCII are kept */
  assert_quote ("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", 64,
      "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac");
}

static void
test_control_characters (void)
{
  /* a forged log line */
  assert_quote ("bad\nWARNING: fake", 64, "bad?WARNING: fake");
  assert_quote ("a\r\tb\x1b[31mc\x7f", 64, "a??b?[31mc?");
  /* U+2028 LINE SEPARATOR and U+2029: new lines to many log viewers */
  assert_quote ("a\xe2\x80\xa8" "b\xe2\x80\xa9" "c", 64, "a?b?c");
  /* U+202E RIGHT-TO-LEFT OVERRIDE and U+200B ZERO WIDTH SPACE (formats) */
  assert_quote ("x\xe2\x80\xaegnp.exe", 64, "x?gnp.exe");
  assert_quote ("a\xe2\x80\x8b" "b", 64, "a?b");
  /* U+0085 NEXT LINE, a C1 control */
  assert_quote ("a\xc2\x85" "b", 64, "a?b");
}

static void
test_invalid_utf8 (void)
{
  /* each byte that is not part of a character is one '?' */
  assert_quote ("\xff\xfe", 64, "??");
  assert_quote ("a\xe2\x82", 64, "a??");
  assert_quote ("\xc0\xaf", 64, "??");    /* overlong '/' */
  assert_quote ("\xed\xa0\x80", 64, "???");       /* a surrogate */
  assert_quote ("ok\x80ok", 64, "ok?ok");
}

static void
test_length (void)
{
  g_autofree gchar *huge = g_strnfill (10 * 1024 * 1024, 'x');
  g_autofree gchar *quoted = NULL;

  /* exactly @max fits; one byte more is cut, "..." included */
  assert_quote ("0123456789", 10, "0123456789");
  assert_quote ("0123456789a", 10, "0123456...");
  assert_quote ("0123456789abcdefghij", 10, "0123456...");
  /* the cut never splits a character: é is 2 bytes */
  assert_quote ("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 8,
      "\xc3\xa9\xc3\xa9...");
  /* replaced bytes count as what they became */
  assert_quote ("\n\n\n\n\n\n", 6, "??????");
  assert_quote ("\n\n\n\n\n\n\n", 6, "???...");
  assert_quote ("abcd", 3, "...");

  quoted = pcr_quote_untrusted (huge, 200);
  g_assert_cmpuint (strlen (quoted), ==, 200);
  g_assert_true (g_str_has_suffix (quoted, "x..."));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/quote/plain", test_plain);
  g_test_add_func ("/quote/control-characters", test_control_characters);
  g_test_add_func ("/quote/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/quote/length", test_length);

  return g_test_run ();
}
