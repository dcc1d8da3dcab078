/* SDP helpers: parsing a viewer's offer defensively and choosing the H.264
 * format (payload type) that viewer's payloader uses, as docs/signalling.md
 * ("Format choice") asks: packetization-mode=1 and a profile whose decoder
 * can take the stream, or an error that says in one line what the offer
 * lacked. Offers come from the network, so the text is checked before
 * GStreamer's lenient parser sees it, every lookup is bounded, and anything
 * quoted back from the offer in an error message is shortened and made one
 * printable line (pcr_quote_untrusted). */

#include "pcr-sdp.h"
#include "pcr-message.h"
#include "pcr-quote.h"

#include <gst/gst.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC (pcr_sdp_debug);
#define GST_CAT_DEFAULT pcr_sdp_debug

#define OPUS_CLOCK_RATE 48000
#define H264_CLOCK_RATE 90000
#define MAX_PT 127
/* RFC 6184: a format without profile-level-id is baseline, level 1.3. */
#define DEFAULT_PROFILE_LEVEL_ID "42001f"
/* Bounds on what an error message quotes back from the offer. */
#define MAX_LISTED_FORMATS 16
#define MAX_QUOTED_LEN (32 + 3)     /* 32 bytes of a field, "..." */

/* profile_idc values (H.264 Annex A) and the constraint_set1 flag. */
#define PROFILE_BASELINE 0x42
#define PROFILE_MAIN 0x4d
#define PROFILE_EXTENDED 0x58
#define PROFILE_HIGH 0x64
#define PROFILE_HIGH10 0x6e
#define PROFILE_HIGH422 0x7a
#define PROFILE_HIGH444 0xf4
#define CONSTRAINT_SET1 0x40

static void
ensure_debug_category (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once)) {
    GST_DEBUG_CATEGORY_INIT (pcr_sdp_debug, "pcrsdp", 0,
        "picamrtc SDP helpers");
    g_once_init_leave (&once, 1);
  }
}

static const gchar *
profile_to_string (PcrH264Profile profile)
{
  switch (profile) {
    case PCR_H264_BASELINE:
      return "baseline";
    case PCR_H264_MAIN:
      return "main";
    case PCR_H264_HIGH:
      return "high";
    case PCR_H264_CONSTRAINED_BASELINE:
    default:
      return "constrained-baseline";
  }
}

PcrH264Profile
pcr_h264_profile_from_string (const gchar * profile)
{
  if (profile == NULL)
    return PCR_H264_CONSTRAINED_BASELINE;
  if (g_str_equal (profile, "baseline"))
    return PCR_H264_BASELINE;
  if (g_str_equal (profile, "main"))
    return PCR_H264_MAIN;
  /* The high variants our encoders make decode like high. */
  if (g_str_equal (profile, "high") || g_str_equal (profile, "constrained-high")
      || g_str_equal (profile, "progressive-high"))
    return PCR_H264_HIGH;
  return PCR_H264_CONSTRAINED_BASELINE;
}

void
pcr_h264_choice_free (PcrH264Choice * choice)
{
  if (choice == NULL)
    return;
  g_free (choice->mid);
  g_free (choice->profile_level_id);
  g_free (choice->fmtp);
  g_free (choice);
}

/* How well a decoder of @profile_idc (with @constraints) suits a stream of
 * @stream: 0 is the stream's own profile, higher numbers are ever larger
 * profiles above it, -1 cannot decode it. Levels are not compared: browsers
 * offer level-asymmetry-allowed=1 and our answer states our own level.
 *   stream constrained baseline: 42 with set1, 42, 4d, 58, 64, 6e, 7a, f4
 *   stream baseline: 42 without set1, 58
 *   stream main: 4d, 64, 6e, 7a, f4
 *   stream high: 64, 6e, 7a, f4 */
static gint
profile_rank (PcrH264Profile stream, guint profile_idc, guint constraints)
{
  static const guint cb_ladder[] = { PROFILE_MAIN, PROFILE_EXTENDED,
    PROFILE_HIGH, PROFILE_HIGH10, PROFILE_HIGH422, PROFILE_HIGH444
  };
  static const guint main_ladder[] = { PROFILE_MAIN, PROFILE_HIGH,
    PROFILE_HIGH10, PROFILE_HIGH422, PROFILE_HIGH444
  };
  gboolean set1 = (constraints & CONSTRAINT_SET1) != 0;
  const guint *ladder;
  gsize n, i;
  gint base;

  switch (stream) {
    case PCR_H264_BASELINE:
      if (profile_idc == PROFILE_BASELINE)
        return set1 ? -1 : 0;
      return profile_idc == PROFILE_EXTENDED ? 1 : -1;
    case PCR_H264_MAIN:
      ladder = main_ladder;
      n = G_N_ELEMENTS (main_ladder);
      base = 0;
      break;
    case PCR_H264_HIGH:
      ladder = main_ladder + 1;
      n = G_N_ELEMENTS (main_ladder) - 1;
      base = 0;
      break;
    case PCR_H264_CONSTRAINED_BASELINE:
    default:
      if (profile_idc == PROFILE_BASELINE)
        return set1 ? 0 : 1;
      ladder = cb_ladder;
      n = G_N_ELEMENTS (cb_ladder);
      base = 2;
      break;
  }

  for (i = 0; i < n; i++) {
    if (ladder[i] == profile_idc)
      return base + (gint) i;
  }
  return -1;
}

/* Parses the payload type at the start of an rtpmap/fmtp value ("96 ...");
 * returns the rest after the blanks that follow it, or NULL. */
static const gchar *
parse_pt_prefix (const gchar * value, guint * pt)
{
  guint v = 0;
  gsize digits = 0;
  const gchar *p = value;

  while (g_ascii_isdigit (*p)) {
    if (++digits > 3)
      return NULL;
    v = v * 10 + (guint) (*p - '0');
    p++;
  }
  if (digits == 0 || v > MAX_PT || (*p != ' ' && *p != '\t'))
    return NULL;
  while (*p == ' ' || *p == '\t')
    p++;
  *pt = v;
  return p;
}

/* The value of @key in an fmtp parameter list ("a=1;b=2"), keys compared
 * without case, blanks around keys and values trimmed; NULL when absent. */
static gchar *
fmtp_get (const gchar * params, const gchar * key)
{
  g_auto (GStrv) pairs = NULL;
  gsize i;

  if (params == NULL)
    return NULL;

  pairs = g_strsplit (params, ";", -1);
  for (i = 0; pairs[i] != NULL; i++) {
    gchar *eq = strchr (pairs[i], '=');

    if (eq == NULL)
      continue;
    *eq = '\0';
    if (g_ascii_strcasecmp (g_strstrip (pairs[i]), key) == 0)
      return g_strdup (g_strstrip (eq + 1));
  }
  return NULL;
}

/* Splits "42e01f" into profile_idc and the constraint byte; FALSE unless it
 * is exactly six hex digits. */
static gboolean
parse_profile_level_id (const gchar * plid, guint * profile_idc,
    guint * constraints)
{
  gsize i;

  if (plid == NULL || strlen (plid) != 6)
    return FALSE;
  for (i = 0; i < 6; i++) {
    if (!g_ascii_isxdigit (plid[i]))
      return FALSE;
  }
  *profile_idc = (guint) (g_ascii_xdigit_value (plid[0]) << 4 |
      g_ascii_xdigit_value (plid[1]));
  *constraints = (guint) (g_ascii_xdigit_value (plid[2]) << 4 |
      g_ascii_xdigit_value (plid[3]));
  return TRUE;
}

/* Appends untrusted @s, quoted and cut to MAX_QUOTED_LEN bytes. */
static void
append_quoted (GString * str, const gchar * s)
{
  g_autofree gchar *quoted = pcr_quote_untrusted (s, MAX_QUOTED_LEN);

  g_string_append (str, quoted);
}

static gboolean
media_has_attribute (const GstSDPMedia * media, const gchar * key)
{
  guint i, n = gst_sdp_media_attributes_len (media);

  for (i = 0; i < n; i++) {
    if (g_strcmp0 (gst_sdp_media_get_attribute (media, i)->key, key) == 0)
      return TRUE;
  }
  return FALSE;
}

static const gchar *
direction_of (const gchar * key)
{
  static const gchar *const directions[] = { "sendrecv", "sendonly",
    "recvonly", "inactive"
  };
  gsize i;

  for (i = 0; key != NULL && i < G_N_ELEMENTS (directions); i++) {
    if (g_str_equal (key, directions[i]))
      return directions[i];
  }
  return NULL;
}

/* The m-line's direction; a session-level one is the default (RFC 8866). */
static const gchar *
media_direction (const GstSDPMessage * msg, const GstSDPMedia * media)
{
  const gchar *dir;
  guint i, n;

  n = gst_sdp_media_attributes_len (media);
  for (i = 0; i < n; i++) {
    if ((dir = direction_of (gst_sdp_media_get_attribute (media, i)->key)))
      return dir;
  }
  n = gst_sdp_message_attributes_len (msg);
  for (i = 0; i < n; i++) {
    if ((dir = direction_of (gst_sdp_message_get_attribute (msg, i)->key)))
      return dir;
  }
  return "sendrecv";
}

/* The formats the m-line maps, by payload type: the first a=rtpmap and
 * a=fmtp of each, past the "<pt> " prefix. One pass, so a hostile offer with
 * many formats and attributes costs linear time. */
typedef struct
{
  const gchar *rtpmap[MAX_PT + 1];
  const gchar *fmtp[MAX_PT + 1];
} FormatTable;

static void
format_table_fill (FormatTable * table, const GstSDPMedia * media)
{
  guint i, n = gst_sdp_media_attributes_len (media);

  memset (table, 0, sizeof (*table));
  for (i = 0; i < n; i++) {
    const GstSDPAttribute *attr = gst_sdp_media_get_attribute (media, i);
    const gchar **slot;
    const gchar *rest;
    guint pt;

    if (g_strcmp0 (attr->key, "rtpmap") == 0)
      slot = table->rtpmap;
    else if (g_strcmp0 (attr->key, "fmtp") == 0)
      slot = table->fmtp;
    else
      continue;
    if (attr->value == NULL || !(rest = parse_pt_prefix (attr->value, &pt)))
      continue;
    if (slot[pt] == NULL)
      slot[pt] = rest;
  }
}

/* Splits an rtpmap rest "H264/90000[/...]" into name (transfer full) and
 * clock rate (0 when missing or malformed). */
static gchar *
parse_rtpmap (const gchar * rtpmap, guint * clock_rate)
{
  const gchar *slash = strchr (rtpmap, '/');
  const gchar *end;
  g_autofree gchar *num = NULL;
  guint64 rate = 0;

  *clock_rate = 0;
  if (slash == NULL)
    return g_strstrip (g_strdup (rtpmap));

  end = strchr (slash + 1, '/');
  num = end ? g_strndup (slash + 1, end - slash - 1) : g_strdup (slash + 1);
  if (g_ascii_string_to_unsigned (g_strstrip (num), 10, 1, G_MAXUINT, &rate,
          NULL))
    *clock_rate = (guint) rate;
  return g_strndup (rtpmap, slash - rtpmap);
}

static gboolean
is_repair_format (const gchar * name)
{
  return g_ascii_strcasecmp (name, "rtx") == 0
      || g_ascii_strcasecmp (name, "red") == 0
      || g_ascii_strcasecmp (name, "ulpfec") == 0
      || g_ascii_strncasecmp (name, "flexfec", 7) == 0;
}

/* The first format the m-line lists that is rtx/90000 with apt=@pt
 * (RFC 4588: the retransmission stream of @pt), or -1. */
static gint
find_rtx_pt (const GstSDPMedia * media, const FormatTable * table, guint pt)
{
  guint i, n = gst_sdp_media_formats_len (media);

  for (i = 0; i < n; i++) {
    const gchar *fmt = gst_sdp_media_get_format (media, i);
    g_autofree gchar *name = NULL;
    g_autofree gchar *apt = NULL;
    guint64 rtx64, apt64;
    guint clock_rate;

    if (fmt == NULL
        || !g_ascii_string_to_unsigned (fmt, 10, 0, MAX_PT, &rtx64, NULL)
        || rtx64 == pt || table->rtpmap[rtx64] == NULL)
      continue;
    name = parse_rtpmap (table->rtpmap[rtx64], &clock_rate);
    if (g_ascii_strcasecmp (name, "rtx") != 0
        || clock_rate != H264_CLOCK_RATE)
      continue;
    apt = fmtp_get (table->fmtp[rtx64], "apt");
    if (apt != NULL
        && g_ascii_string_to_unsigned (apt, 10, 0, MAX_PT, &apt64, NULL)
        && apt64 == pt)
      return (gint) rtx64;
  }
  return -1;
}

/* The first format the m-line lists that is @name/@rate (names compared
 * without case), or -1. */
static gint
find_format_at (const GstSDPMedia * media, const FormatTable * table,
    const gchar * name, guint rate)
{
  guint i, n = gst_sdp_media_formats_len (media);

  for (i = 0; i < n; i++) {
    const gchar *fmt = gst_sdp_media_get_format (media, i);
    g_autofree gchar *fmt_name = NULL;
    guint64 pt;
    guint clock_rate;

    if (fmt == NULL
        || !g_ascii_string_to_unsigned (fmt, 10, 0, MAX_PT, &pt, NULL)
        || table->rtpmap[pt] == NULL)
      continue;
    fmt_name = parse_rtpmap (table->rtpmap[pt], &clock_rate);
    if (g_ascii_strcasecmp (fmt_name, name) == 0 && clock_rate == rate)
      return (gint) pt;
  }
  return -1;
}

static gint
find_format (const GstSDPMedia * media, const FormatTable * table,
    const gchar * name)
{
  return find_format_at (media, table, name, H264_CLOCK_RATE);
}

/* Picks the format in one m-line; on failure @error names what was
 * offered. */
static PcrH264Choice *
choose_in_media (const GstSDPMedia * media, guint mline,
    PcrH264Profile stream_profile, GError ** error)
{
  FormatTable table;
  g_autoptr (GString) offered = g_string_new (NULL);
  guint n_listed = 0, n_unlisted = 0;
  gint best_rank = -1;
  guint best_pt = 0;
  guint i, n;
  PcrH264Choice *choice;
  const gchar *fmtp;

  format_table_fill (&table, media);

  n = gst_sdp_media_formats_len (media);
  for (i = 0; i < n; i++) {
    const gchar *fmt = gst_sdp_media_get_format (media, i);
    g_autofree gchar *name = NULL;
    g_autofree gchar *pm = NULL;
    g_autofree gchar *plid = NULL;
    g_autoptr (GString) why = g_string_new (NULL);
    guint64 pt64;
    guint pt, clock_rate = 0, profile_idc, constraints;
    gint rank = -1;

    if (fmt == NULL
        || !g_ascii_string_to_unsigned (fmt, 10, 0, MAX_PT, &pt64, NULL))
      continue;
    pt = (guint) pt64;

    if (table.rtpmap[pt] != NULL) {
      name = parse_rtpmap (table.rtpmap[pt], &clock_rate);
      if (is_repair_format (name))
        continue;
    }

    if (name != NULL && g_ascii_strcasecmp (name, "H264") == 0) {
      fmtp = table.fmtp[pt];
      pm = fmtp_get (fmtp, "packetization-mode");
      plid = fmtp_get (fmtp, "profile-level-id");

      if (clock_rate != H264_CLOCK_RATE)
        g_string_append_printf (why, " clock-rate=%u", clock_rate);
      if (g_strcmp0 (pm, "1") != 0) {
        g_string_append (why, " packetization-mode=");
        append_quoted (why, pm ? pm : "0");
      }
      if (!parse_profile_level_id (plid ? plid : DEFAULT_PROFILE_LEVEL_ID,
              &profile_idc, &constraints)) {
        g_string_append (why, " profile-level-id=");
        append_quoted (why, plid ? plid : "");
        g_string_append (why, " (malformed)");
      } else if ((rank = profile_rank (stream_profile, profile_idc,
                  constraints)) < 0) {
        g_string_append (why, " profile-level-id=");
        append_quoted (why, plid ? plid : DEFAULT_PROFILE_LEVEL_ID);
      }

      if (why->len == 0) {
        GST_LOG ("m-line %u: H264 %u fits, rank %d", mline, pt, rank);
        if (best_rank < 0 || rank < best_rank) {
          best_rank = rank;
          best_pt = pt;
        }
        continue;
      }
    }

    if (n_listed >= MAX_LISTED_FORMATS) {
      n_unlisted++;
      continue;
    }
    if (n_listed++ > 0)
      g_string_append (offered, ", ");
    if (name != NULL) {
      append_quoted (offered, name);
      g_string_append_printf (offered, " %u%s", pt, why->str);
    } else {
      g_string_append_printf (offered, "%u (no rtpmap)", pt);
    }
  }

  if (best_rank < 0) {
    if (n_listed == 0)
      g_string_append (offered, "nothing");
    if (n_unlisted > 0)
      g_string_append_printf (offered, " and %u more", n_unlisted);
    g_set_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_NO_COMPATIBLE_CODEC,
        "offer has no H.264 format with packetization-mode=1 and a profile "
        "that can decode %s (offered: %s)", profile_to_string (stream_profile),
        offered->str);
    return NULL;
  }

  choice = g_new0 (PcrH264Choice, 1);
  choice->mline = mline;
  choice->mid = g_strdup (gst_sdp_media_get_attribute_val (media, "mid"));
  choice->pt = (gint) best_pt;
  choice->fmtp = g_strdup (table.fmtp[best_pt]);
  if (choice->fmtp != NULL)
    g_strstrip (choice->fmtp);
  choice->profile_level_id = fmtp_get (choice->fmtp, "profile-level-id");
  choice->rtx_pt = find_rtx_pt (media, &table, best_pt);
  choice->red_pt = find_format (media, &table, "red");
  choice->ulpfec_pt = find_format (media, &table, "ulpfec");
  choice->red_rtx_pt = choice->red_pt < 0 ? -1 :
      find_rtx_pt (media, &table, (guint) choice->red_pt);
  return choice;
}

PcrH264Choice *
pcr_sdp_choose_h264 (const GstSDPMessage * offer,
    PcrH264Profile stream_profile, GError ** error)
{
  g_autoptr (GString) skipped = g_string_new (NULL);
  guint i, n, n_skipped = 0;

  g_return_val_if_fail (offer != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  ensure_debug_category ();

  n = gst_sdp_message_medias_len (offer);
  for (i = 0; i < n; i++) {
    const GstSDPMedia *media = gst_sdp_message_get_media (offer, i);
    const gchar *why = NULL;
    PcrH264Choice *choice;

    if (g_strcmp0 (gst_sdp_media_get_media (media), "video") != 0)
      continue;

    /* Port 0 rejects an m-line unless BUNDLE made it bundle-only. */
    if (gst_sdp_media_get_port (media) == 0
        && !media_has_attribute (media, "bundle-only")) {
      why = "rejected";
    } else {
      why = media_direction (offer, media);
      if (g_str_equal (why, "sendrecv") || g_str_equal (why, "recvonly"))
        why = NULL;
    }
    if (why != NULL) {
      /* A hostile offer can have thousands of m-lines: name a few. */
      if (n_skipped++ < MAX_LISTED_FORMATS)
        g_string_append_printf (skipped, "%sm-line %u is %s",
            skipped->len ? ", " : " (", i, why);
      continue;
    }

    choice = choose_in_media (media, i, stream_profile, error);
    if (choice != NULL)
      GST_DEBUG ("m-line %u (mid %s): H264 payload type %d, fmtp \"%s\", "
          "rtx %d, red %d (rtx %d), ulpfec %d", choice->mline,
          GST_STR_NULL (choice->mid), choice->pt, GST_STR_NULL (choice->fmtp),
          choice->rtx_pt, choice->red_pt, choice->red_rtx_pt,
          choice->ulpfec_pt);
    return choice;
  }

  if (n_skipped > MAX_LISTED_FORMATS)
    g_string_append_printf (skipped, " and %u more",
        n_skipped - MAX_LISTED_FORMATS);
  if (skipped->len > 0)
    g_string_append_c (skipped, ')');
  g_set_error (error, PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST,
      "offer has no video m-line that can receive%s", skipped->str);
  return NULL;
}

/* TRUE when a line of @text starts with "m=". */
static gboolean
has_media_line (const gchar * text)
{
  const gchar *p;

  for (p = text; (p = strstr (p, "m=")) != NULL; p += 2) {
    if (p == text || p[-1] == '\n' || p[-1] == '\r')
      return TRUE;
  }
  return FALSE;
}

GstSDPMessage *
pcr_sdp_parse (const gchar * text, GError ** error)
{
  g_autoptr (GstSDPMessage) msg = NULL;
  const gchar *problem = NULL;

  g_return_val_if_fail (text != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* GStreamer's parser skips what it does not understand and takes nearly
   * any text, so decide here whether this is SDP at all. */
  if (*text == '\0')
    problem = "SDP is empty";
  else if (!g_str_has_prefix (text, "v="))
    problem = "SDP does not start with a v= line";
  else if (!g_utf8_validate (text, -1, NULL))
    problem = "SDP is not valid UTF-8";
  else if (!has_media_line (text))
    problem = "SDP has no m= line";
  else if (gst_sdp_message_new_from_text (text, &msg) != GST_SDP_OK)
    problem = "SDP could not be parsed";
  else if (gst_sdp_message_medias_len (msg) == 0)
    problem = "SDP has no media";

  if (problem != NULL) {
    g_set_error_literal (error, PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST,
        problem);
    return NULL;
  }
  return g_steal_pointer (&msg);
}

guint
pcr_sdp_extmap_id (const GstSDPMessage * offer, guint mline,
    const gchar * uri, gboolean * directed)
{
  const GstSDPMedia *media;
  guint i, n;

  g_return_val_if_fail (offer != NULL, 0);
  g_return_val_if_fail (uri != NULL, 0);

  ensure_debug_category ();
  if (directed)
    *directed = FALSE;
  if (mline >= gst_sdp_message_medias_len (offer))
    return 0;
  media = gst_sdp_message_get_media (offer, mline);
  n = gst_sdp_media_attributes_len (media);
  for (i = 0; i < n; i++) {
    const GstSDPAttribute *attr = gst_sdp_media_get_attribute (media, i);
    const gchar *p = attr->value;
    gboolean has_direction = FALSE;
    guint id = 0;
    gsize digits = 0;

    if (g_strcmp0 (attr->key, "extmap") != 0 || p == NULL)
      continue;
    while (g_ascii_isdigit (*p) && digits < 3) {
      id = id * 10 + (guint) (*p - '0');
      digits++;
      p++;
    }
    if (digits == 0)
      continue;
    /* "<id>[/<direction>] <uri>[ <attributes>]" */
    if (*p == '/') {
      if (g_str_has_prefix (p + 1, "recvonly"))
        p += 1 + strlen ("recvonly");
      else if (g_str_has_prefix (p + 1, "sendrecv"))
        p += 1 + strlen ("sendrecv");
      else
        continue;
      has_direction = TRUE;
    }
    if (*p != ' ' && *p != '\t')
      continue;
    while (*p == ' ' || *p == '\t')
      p++;
    if (!g_str_has_prefix (p, uri))
      continue;
    p += strlen (uri);
    if (*p != '\0' && *p != ' ' && *p != '\t')
      continue;
    if (id < 1 || id > 14) {
      GST_DEBUG ("extmap id %u for %s needs a two-byte header; not used", id,
          uri);
      return 0;
    }
    if (directed)
      *directed = has_direction;
    return id;
  }
  return 0;
}

void
pcr_opus_choice_free (PcrOpusChoice * choice)
{
  if (!choice)
    return;
  g_free (choice->mid);
  g_free (choice->fmtp);
  g_free (choice);
}

PcrOpusChoice *
pcr_sdp_find_opus (const GstSDPMessage * offer)
{
  guint i, n;

  g_return_val_if_fail (offer != NULL, NULL);

  n = gst_sdp_message_medias_len (offer);
  for (i = 0; i < n; i++) {
    const GstSDPMedia *media = gst_sdp_message_get_media (offer, i);
    const gchar *direction;
    PcrOpusChoice *choice;
    FormatTable table;
    gint pt;

    if (g_strcmp0 (gst_sdp_media_get_media (media), "audio") != 0)
      continue;
    /* the first audio m-line is the one answered; others are rejected */
    if (gst_sdp_media_get_port (media) == 0
        && !media_has_attribute (media, "bundle-only"))
      return NULL;
    direction = media_direction (offer, media);
    format_table_fill (&table, media);
    pt = find_format_at (media, &table, "opus", OPUS_CLOCK_RATE);
    if (pt < 0 || g_str_equal (direction, "inactive"))
      return NULL;
    choice = g_new0 (PcrOpusChoice, 1);
    choice->mline = i;
    choice->pt = pt;
    choice->mid = g_strdup (gst_sdp_media_get_attribute_val (media, "mid"));
    choice->fmtp = g_strdup (table.fmtp[pt]);
    choice->receives = g_str_equal (direction, "sendrecv")
        || g_str_equal (direction, "recvonly");
    choice->sends = g_str_equal (direction, "sendrecv")
        || g_str_equal (direction, "sendonly");
    return choice;
  }
  return NULL;
}
