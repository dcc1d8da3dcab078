/* libFuzzer target for the trickle ICE fragments a WHEP client PATCHes
 * (RFC 8840, src/gateway/pcr-sdpfrag.c): the body of the request is
 * hostile, and what pcr_sdpfrag_parse() returns goes to the device as
 * candidate messages. The first input byte picks the offer the session
 * was made with (its a=mid values) and the candidate limit; the rest is the
 * fragment. Besides memory errors and leaks it checks what the API
 * promises: each a=candidate / a=end-of-candidates line of the input comes
 * out once, in order and unchanged; a candidate is one bounded printable
 * line; its m-line is one of the offer's and its mid is that m-line's
 * a=mid; the ICE credentials are bounded tokens; and a refusal is one line
 * of ours that the gateway can send back as it is. */

#include "pcr-sdpfrag.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An error quotes at most one token (pcr_quote_untrusted() keeps it to
 * its bound). */
#define MAX_ERROR_MESSAGE (128 + PCR_SDPFRAG_MAX_TOKEN)

/* The a=mid values of an offer's m-lines ("" for an m-line without one),
 * as the gateway keeps them per session. */
static const gchar *const no_mlines[] = { NULL };
static const gchar *const one_mline[] = { "0", NULL };
static const gchar *const two_mlines[] = { "0", "1", NULL };
static const gchar *const mixed_mlines[] = { "video", "", "audio", NULL };
static const gchar *const unnamed_mlines[] = { "", "", NULL };

static const gchar *const *const offers[] = {
  NULL, no_mlines, one_mline, two_mlines, mixed_mlines, unnamed_mlines,
};

/* The gateway's limit and a few small ones, to reach the refusal. */
static const guint limits[] = { 64, 0, 1, 3 };

G_GNUC_NORETURN static void
fail (const gchar * what, const guint8 * data, gsize size)
{
  fprintf (stderr, "%s\ninput (%zu bytes): %.*s\n", what, size, (int) size,
      (const char *) data);
  abort ();
}

static gboolean
is_token (const gchar * value)
{
  return value == NULL || (*value != '\0'
      && strlen (value) <= PCR_SDPFRAG_MAX_TOKEN
      && pcr_sdpfrag_is_printable (value));
}

static guint
n_mlines (const gchar * const *mids)
{
  return mids != NULL ? g_strv_length ((gchar **) mids) : 0;
}

/* The a=mid of m-line @mline of the offer, NULL when it has none. */
static const gchar *
offer_mid (const gchar * const *mids, guint mline)
{
  if (mline >= n_mlines (mids) || *mids[mline] == '\0')
    return NULL;
  return mids[mline];
}

static void
check_error (const GError * error, const guint8 * data, gsize size)
{
  if (error == NULL || error->domain != PCR_SDPFRAG_ERROR)
    fail ("refused without an error of ours", data, size);
  if (!pcr_sdpfrag_is_printable (error->message)
      || strlen (error->message) > MAX_ERROR_MESSAGE)
    fail ("the error is not one short printable line", data, size);
}

/* The input's lines as pcr-sdpfrag.c reads them: split at LF, one CR
 * before it dropped. */
static GStrv
input_lines (const gchar * text, gsize len)
{
  g_autofree gchar *copy = g_strndup (text, len);
  GStrv lines = g_strsplit (copy, "\n", -1);
  guint i;

  for (i = 0; lines[i] != NULL; i++) {
    gsize n = strlen (lines[i]);

    if (n > 0 && lines[i][n - 1] == '\r')
      lines[i][n - 1] = '\0';
  }
  return lines;
}

static void
check_frag (const PcrSdpFrag * frag, const gchar * const *mids,
    guint max_candidates, const gchar * text, gsize len,
    const guint8 * data, gsize size)
{
  g_auto (GStrv) lines = input_lines (text, len);
  guint i, next = 0, candidates = 0;

  if (frag->candidates == NULL)
    fail ("no candidate array", data, size);
  if (!is_token (frag->ice_ufrag) || !is_token (frag->ice_pwd))
    fail ("a=ice-ufrag or a=ice-pwd is not a bounded token", data, size);

  /* every candidate and end-of-candidates line, once and in order */
  for (i = 0; lines[i] != NULL; i++) {
    gboolean end = g_str_equal (lines[i], "a=end-of-candidates");
    const PcrFragCandidate *c;

    if (!end && !g_str_has_prefix (lines[i], "a=candidate:"))
      continue;
    if (next >= frag->candidates->len)
      fail ("a candidate line of the input is missing", data, size);
    c = g_ptr_array_index (frag->candidates, next++);
    if (!g_str_equal (c->candidate, end ? "" : lines[i] + 2))
      fail ("a candidate is not its input line", data, size);
    if (!end)
      candidates++;
  }
  if (next != frag->candidates->len)
    fail ("more candidates than candidate lines", data, size);
  if (candidates > max_candidates)
    fail ("more candidates than the limit", data, size);

  for (i = 0; i < frag->candidates->len; i++) {
    const PcrFragCandidate *c = g_ptr_array_index (frag->candidates, i);

    if (*c->candidate != '\0' && (!g_str_has_prefix (c->candidate, "candidate:")
            || strlen (c->candidate) > PCR_SDPFRAG_MAX_CANDIDATE
            || !pcr_sdpfrag_is_printable (c->candidate)
            || strchr (c->candidate, ' ') == NULL))
      fail ("a candidate is not one bounded candidate line", data, size);
    /* sdpMLineIndex and sdpMid must name the same m-line of the offer;
     * without the offer's m-lines there is nothing to check them with */
    if (n_mlines (mids) > 0 && c->mline >= n_mlines (mids)) {
      fprintf (stderr, "m-line %u of an offer with %u\n", c->mline,
          n_mlines (mids));
      fail ("a candidate names an m-line the offer does not have", data, size);
    }
    if (g_strcmp0 (c->mid, offer_mid (mids, c->mline)) != 0)
      fail ("a candidate's mid is not its m-line's a=mid", data, size);
  }
}

int LLVMFuzzerTestOneInput (const uint8_t * data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  g_autoptr (PcrSdpFrag) frag = NULL;
  g_autoptr (GError) error = NULL;
  const gchar *const *mids;
  const gchar *text;
  guint max_candidates;
  gsize len;

  if (size < 1)
    return 0;
  mids = offers[data[0] % G_N_ELEMENTS (offers)];
  max_candidates = limits[(data[0] / G_N_ELEMENTS (offers))
      % G_N_ELEMENTS (limits)];
  text = (const gchar *) data + 1;
  len = size - 1;

  frag = pcr_sdpfrag_parse (text, len, mids, max_candidates, &error);
  if (frag == NULL)
    check_error (error, data, size);
  else if (error != NULL)
    fail ("an error with a result", data, size);
  else
    check_frag (frag, mids, max_candidates, text, len, data, size);
  return 0;
}
