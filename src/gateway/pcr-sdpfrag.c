/* A strict reader for trickle ICE SDP fragments (RFC 8840): only the lines
 * the gateway forwards to a device (candidates, end-of-candidates) and the
 * ones that say where they belong (m=, a=mid) or which ICE generation they
 * are (a=ice-ufrag, a=ice-pwd) are looked at; the rest is skipped. And the
 * data channel's m-line taken out of an offer and put back rejected in the
 * answer, with GstSDPMessage: the texts are parsed, never cut by hand. */
#include "pcr-sdpfrag.h"

#include <string.h>

#include "pcr-quote.h"
#include "pcr-sdp.h"

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

/* ---- the data channel's m-line ---- */

#define DEFAULT_PROTO "UDP/DTLS/SCTP"
#define DEFAULT_FORMATS "webrtc-datachannel"

static void
stripped_media_free (PcrStrippedMedia * media)
{
  g_free (media->mid);
  g_free (media->proto);
  g_free (media->formats);
  g_free (media);
}

static gboolean
is_stripped_mid (const GPtrArray * stripped, const gchar * mid)
{
  guint i;

  for (i = 0; i < stripped->len; i++) {
    const PcrStrippedMedia *media = g_ptr_array_index (stripped, i);

    if (media->mid != NULL && g_str_equal (media->mid, mid))
      return TRUE;
  }
  return FALSE;
}

/* Takes the @stripped mids out of @msg's a=group lines: a BUNDLE group
 * naming a mid that has no m-line (offer) or a rejected one (answer) gets
 * the SDP refused. A group left naming none goes. */
static void
ungroup (GstSDPMessage * msg, const GPtrArray * stripped)
{
  guint i = 0;

  while (i < gst_sdp_message_attributes_len (msg)) {
    const GstSDPAttribute *attr = gst_sdp_message_get_attribute (msg, i);
    g_auto (GStrv) words = NULL;
    g_autoptr (GString) kept = NULL;
    GstSDPAttribute replacement;
    gboolean changed = FALSE;
    guint w, mids = 0;

    if (g_strcmp0 (attr->key, "group") != 0 || attr->value == NULL) {
      i++;
      continue;
    }
    words = g_strsplit (attr->value, " ", -1);
    if (words[0] == NULL) {
      i++;
      continue;
    }
    kept = g_string_new (words[0]);
    for (w = 1; words[w] != NULL; w++) {
      if (is_stripped_mid (stripped, words[w])) {
        changed = TRUE;
        continue;
      }
      g_string_append_printf (kept, " %s", words[w]);
      if (*words[w] != '\0')
        mids++;
    }
    if (!changed) {
      i++;
    } else if (mids == 0) {
      gst_sdp_message_remove_attribute (msg, i);
    } else {
      /* the message takes the replacement's strings */
      gst_sdp_attribute_set (&replacement, "group", kept->str);
      gst_sdp_message_replace_attribute (msg, i, &replacement);
      i++;
    }
  }
}

gchar *
pcr_sdp_strip_application (const GstSDPMessage * offer,
    GPtrArray ** stripped)
{
  g_autoptr (GPtrArray) taken = NULL;
  g_autoptr (GstSDPMessage) copy = NULL;
  guint i, f;

  g_return_val_if_fail (offer != NULL, NULL);
  g_return_val_if_fail (stripped != NULL, NULL);

  for (i = 0; i < gst_sdp_message_medias_len (offer); i++) {
    const GstSDPMedia *media = gst_sdp_message_get_media (offer, i);
    const gchar *mid = gst_sdp_media_get_attribute_val (media, "mid");
    const gchar *proto = gst_sdp_media_get_proto (media);
    PcrStrippedMedia *out;
    GString *formats;

    if (g_strcmp0 (gst_sdp_media_get_media (media), "application") != 0)
      continue;
    if (taken == NULL)
      taken = g_ptr_array_new_with_free_func ((GDestroyNotify)
          stripped_media_free);
    out = g_new0 (PcrStrippedMedia, 1);
    out->index = i;
    out->mid = g_strdup (mid);
    /* the answer's m-line must repeat the offer's protocol and formats */
    out->proto = g_strdup (proto != NULL && *proto != '\0' ? proto :
        DEFAULT_PROTO);
    formats = g_string_new (NULL);
    for (f = 0; f < gst_sdp_media_formats_len (media); f++)
      g_string_append_printf (formats, "%s%s", f > 0 ? " " : "",
          gst_sdp_media_get_format (media, f));
    if (formats->len == 0)
      g_string_append (formats, DEFAULT_FORMATS);
    out->formats = g_string_free (formats, FALSE);
    g_ptr_array_add (taken, out);
  }
  if (taken == NULL)
    return NULL;

  gst_sdp_message_copy (offer, &copy);
  /* from the last, so the indexes still hold. gst/sdp has no call that
   * removes an m-line: medias is the message's public GstSDPMedia array */
  for (i = taken->len; i-- > 0;) {
    guint index = ((PcrStrippedMedia *) g_ptr_array_index (taken, i))->index;

    gst_sdp_media_uninit (&g_array_index (copy->medias, GstSDPMedia, index));
    g_array_remove_index (copy->medias, index);
  }
  ungroup (copy, taken);
  *stripped = g_steal_pointer (&taken);
  return gst_sdp_message_as_text (copy);
}

gchar *
pcr_sdp_restore_rejected (const gchar * answer, guint offer_mlines,
    const GPtrArray * stripped, GError ** error)
{
  g_autoptr (GstSDPMessage) msg = NULL;
  g_autoptr (GError) local = NULL;
  guint n, i, f;

  g_return_val_if_fail (answer != NULL, NULL);
  g_return_val_if_fail (stripped != NULL, NULL);
  g_return_val_if_fail (offer_mlines >= stripped->len, NULL);

  msg = pcr_sdp_parse (answer, &local);
  if (msg == NULL) {
    fail (error, "%s", local->message);
    return NULL;
  }
  n = gst_sdp_message_medias_len (msg);
  if (n != offer_mlines - stripped->len) {
    fail (error, "the answer has %u m-lines for an offer of %u", n,
        offer_mlines - stripped->len);
    return NULL;
  }
  /* in the order of the viewer's offer, so each goes where it was */
  for (i = 0; i < stripped->len; i++) {
    const PcrStrippedMedia *taken = g_ptr_array_index (stripped, i);
    g_auto (GStrv) formats = g_strsplit (taken->formats, " ", -1);
    /* zeroed: gst_sdp_media_init() frees what it finds */
    GstSDPMedia rejected = { 0 };

    if (taken->index > msg->medias->len) {
      fail (error, "m-line %u of the offer is past the answer's", taken->index);
      return NULL;
    }
    gst_sdp_media_init (&rejected);
    gst_sdp_media_set_media (&rejected, "application");
    gst_sdp_media_set_port_info (&rejected, 0, 1);
    gst_sdp_media_set_proto (&rejected, taken->proto);
    for (f = 0; formats[f] != NULL; f++)
      gst_sdp_media_add_format (&rejected, formats[f]);
    gst_sdp_media_add_connection (&rejected, "IN", "IP4", "0.0.0.0", 0, 0);
    if (taken->mid != NULL)
      gst_sdp_media_add_attribute (&rejected, "mid", taken->mid);
    /* the array takes the m-line's strings (no gst/sdp call inserts) */
    g_array_insert_val (msg->medias, taken->index, rejected);
  }
  ungroup (msg, stripped);
  return gst_sdp_message_as_text (msg);
}

gboolean
pcr_sdp_map_mline (const GPtrArray * stripped, guint mline,
    guint * device_mline)
{
  guint before = 0, i;

  for (i = 0; stripped != NULL && i < stripped->len; i++) {
    const PcrStrippedMedia *taken = g_ptr_array_index (stripped, i);

    if (taken->index == mline)
      return FALSE;
    if (taken->index < mline)
      before++;
  }
  *device_mline = mline - before;
  return TRUE;
}
