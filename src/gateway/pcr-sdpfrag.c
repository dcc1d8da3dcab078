/* A strict reader for trickle ICE SDP fragments (RFC 8840): only the lines
 * the gateway forwards to a device (candidates, end-of-candidates) and the
 * ones that say where they belong (m=, a=mid) or which ICE generation they
 * are (a=ice-ufrag, a=ice-pwd) are looked at; the rest is skipped. */
#include "pcr-sdpfrag.h"

#include <string.h>

#include "pcr-quote.h"

/* *INDENT-OFF* */
G_DEFINE_QUARK (pcr-sdpfrag-error-quark, pcr_sdpfrag_error);
/* *INDENT-ON* */

static void
frag_candidate_free (PcrFragCandidate * candidate)
{
  g_free (candidate->candidate);
  g_free (candidate->mid);
  g_free (candidate);
}

void
pcr_sdpfrag_free (PcrSdpFrag * frag)
{
  if (frag == NULL)
    return;
  g_free (frag->ice_ufrag);
  g_free (frag->ice_pwd);
  g_clear_pointer (&frag->candidates, g_ptr_array_unref);
  g_free (frag);
}

/* *INDENT-OFF* */
static gboolean fail (GError ** error, const gchar * format, ...)
    G_GNUC_PRINTF (2, 3);
/* *INDENT-ON* */

static gboolean
fail (GError ** error, const gchar * format, ...)
{
  va_list args;

  va_start (args, format);
  if (error != NULL && *error == NULL)
    *error = g_error_new_valist (PCR_SDPFRAG_ERROR, 0, format, args);
  va_end (args);
  return FALSE;
}

gboolean
pcr_sdpfrag_is_printable (const gchar * text)
{
  const gchar *c;

  for (c = text; *c != '\0'; c++) {
    if (*c < 0x20 || *c > 0x7e)
      return FALSE;
  }
  return TRUE;
}

/* An offer's m-line without a=mid is "" in @mids. */
static const gchar *
mid_at (const gchar * const *mids, guint index)
{
  guint i;

  for (i = 0; mids != NULL && mids[i] != NULL; i++) {
    if (i == index)
      return *mids[i] != '\0' ? mids[i] : NULL;
  }
  return NULL;
}

static gboolean
is_token (const gchar * value)
{
  return *value != '\0' && strlen (value) <= PCR_SDPFRAG_MAX_TOKEN
      && pcr_sdpfrag_is_printable (value);
}

static gint
find_mid (const gchar * const *mids, const gchar * mid)
{
  gint i;

  for (i = 0; mids != NULL && mids[i] != NULL; i++) {
    if (g_str_equal (mids[i], mid))
      return i;
  }
  return -1;
}

PcrSdpFrag *
pcr_sdpfrag_parse (const gchar * text, gsize len, const gchar * const *mids,
    guint max_candidates, GError ** error)
{
  g_autoptr (PcrSdpFrag) frag = NULL;
  g_autofree gchar *copy = NULL;
  g_auto (GStrv) lines = NULL;
  guint mline = 0, mlines_seen = 0, candidate_lines = 0, i;
  guint n_mlines = mids != NULL ? g_strv_length ((gchar **) mids) : 0;
  const gchar *mid = NULL;

  g_return_val_if_fail (text != NULL || len == 0, NULL);

  if (memchr (text, '\0', len) != NULL) {
    fail (error, "the fragment contains a NUL byte");
    return NULL;
  }
  if (!g_utf8_validate (text, len, NULL)) {
    fail (error, "the fragment is not UTF-8 text");
    return NULL;
  }
  copy = g_strndup (text, len);
  lines = g_strsplit (copy, "\n", -1);
  mid = mid_at (mids, 0);

  frag = g_new0 (PcrSdpFrag, 1);
  frag->candidates = g_ptr_array_new_with_free_func ((GDestroyNotify)
      frag_candidate_free);

  for (i = 0; lines[i] != NULL; i++) {
    gchar *line = lines[i];
    gsize n = strlen (line);

    if (n > 0 && line[n - 1] == '\r')
      line[--n] = '\0';
    if (n == 0)
      continue;

    if (g_str_has_prefix (line, "m=")) {
      /* a new media section; a=mid below it names it, else its position */
      mline = mlines_seen++;
      mid = mid_at (mids, mline);
    } else if (g_str_has_prefix (line, "a=mid:")) {
      const gchar *value = line + 6;
      gint index;

      if (!is_token (value)) {
        fail (error, "a=mid line %u is not a valid mid", i + 1);
        return NULL;
      }
      index = find_mid (mids, value);
      if (index < 0) {
        g_autofree gchar *quoted = pcr_quote_untrusted (value,
            PCR_SDPFRAG_MAX_TOKEN);

        fail (error, "a=mid:%s names no media section of the offer", quoted);
        return NULL;
      }
      mline = index;
      mid = mid_at (mids, index);
    } else if (g_str_has_prefix (line, "a=ice-ufrag:") ||
        g_str_has_prefix (line, "a=ice-pwd:")) {
      gboolean ufrag = line[6] == 'u';
      const gchar *value = line + (ufrag ? 12 : 10);

      if (!is_token (value)) {
        fail (error, "%s on line %u is not valid",
            ufrag ? "a=ice-ufrag" : "a=ice-pwd", i + 1);
        return NULL;
      }
      g_free (ufrag ? frag->ice_ufrag : frag->ice_pwd);
      if (ufrag)
        frag->ice_ufrag = g_strdup (value);
      else
        frag->ice_pwd = g_strdup (value);
    } else if (g_str_has_prefix (line, "a=candidate:") ||
        g_str_equal (line, "a=end-of-candidates")) {
      PcrFragCandidate *candidate;
      gboolean end = line[2] == 'e';

      if (!end) {
        if (++candidate_lines > max_candidates) {
          fail (error, "more than %u candidates in one fragment",
              max_candidates);
          return NULL;
        }
        if (n - 2 > PCR_SDPFRAG_MAX_CANDIDATE
            || !pcr_sdpfrag_is_printable (line)
            || strchr (line + 12, ' ') == NULL) {
          fail (error, "candidate line %u is malformed or longer than %d "
              "bytes", i + 1, PCR_SDPFRAG_MAX_CANDIDATE);
          return NULL;
        }
      }
      /* A bare m= line past the offer's m-lines names none of them: the
       * device would get an sdpMLineIndex its offer does not have. */
      if (n_mlines > 0 && mline >= n_mlines) {
        fail (error, "line %u is in media section %u of the fragment; the "
            "offer has %u", i + 1, mline + 1, n_mlines);
        return NULL;
      }
      candidate = g_new0 (PcrFragCandidate, 1);
      candidate->candidate = g_strdup (end ? "" : line + 2);
      candidate->mline = mline;
      candidate->mid = g_strdup (mid);
      g_ptr_array_add (frag->candidates, candidate);
    }
  }
  return g_steal_pointer (&frag);
}
