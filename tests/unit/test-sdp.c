/* Unit tests for lib/pcr-sdp.c: which payload type, m-line and mid each
 * viewer's offer gets (docs/architecture.md), on real offers captured from
 * Debian's Chromium, offers written after Firefox's and Safari's documented
 * formats and hand-made edge cases, all under tests/fixtures/sdp/; plus
 * garbage, oversized and mutated input, which must only ever produce a
 * one-line bad-request error. A wrong choice here is a viewer that sees
 * nothing, so every fixture states the exact expected result. */

#include "pcr-sdp.h"
#include "pcr-message.h"

#include <stdlib.h>
#include <string.h>

static gchar *
load_fixture (const gchar * name)
{
  const gchar *root = g_getenv ("PICAMRTC_SOURCE_ROOT");
  g_autofree gchar *path = NULL;
  g_autoptr (GError) error = NULL;
  gchar *text = NULL;

  g_assert_nonnull (root);
  path = g_build_filename (root, "tests", "fixtures", "sdp", name, NULL);
  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  return text;
}

static PcrH264Choice *
choose_text (const gchar * text, PcrH264Profile profile, GError ** error)
{
  g_autoptr (GstSDPMessage) msg = NULL;

  msg = pcr_sdp_parse (text, error);
  if (msg == NULL)
    return NULL;
  return pcr_sdp_choose_h264 (msg, profile, error);
}

static PcrH264Choice *
choose_fixture (const gchar * name, PcrH264Profile profile, GError ** error)
{
  g_autofree gchar *text = load_fixture (name);

  return choose_text (text, profile, error);
}

/* The error is in our domain, has @code, is one line and says @part. */
static void
assert_error (const GError * error, PcrErrorCode code, const gchar * part)
{
  g_assert_error (error, PCR_MESSAGE_ERROR, (gint) code);
  g_assert_null (strchr (error->message, '\n'));
  g_assert_null (strchr (error->message, '\r'));
  g_assert_cmpuint (strlen (error->message), <, 1024);
  if (part != NULL && strstr (error->message, part) == NULL)
    g_error ("error \"%s\" does not say \"%s\"", error->message, part);
}

/* --- Table of fixtures and expected choices --- */

typedef struct
{
  const gchar *fixture;
  PcrH264Profile profile;
  gint pt;                      /* -1: an error is expected */
  guint mline;
  const gchar *mid;
  const gchar *profile_level_id;
  const gchar *fmtp;            /* NULL: not checked */
  PcrErrorCode code;
  const gchar *message_part;    /* NULL: not checked */
} FixtureCase;

#define CB PCR_H264_CONSTRAINED_BASELINE
#define BASE PCR_H264_BASELINE
#define MAIN PCR_H264_MAIN
#define HIGH PCR_H264_HIGH
#define FAIL(f, p, c, m) { f, p, -1, 0, NULL, NULL, NULL, c, m }

static const FixtureCase fixture_cases[] = {
  /* Firefox: 126 is pm=1, 97 has no packetization-mode (so 0) and the
   * same profile; Firefox lists VP8 first. */
  {"firefox-recvonly.sdp", CB, 126, 0, "0", "42e01f",
      "profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1"},
  {"firefox-recvonly.sdp", BASE, -1, 0, NULL, NULL, NULL,
        PCR_ERROR_NO_COMPATIBLE_CODEC,
      "(offered: VP8 120, VP9 121, H264 126 profile-level-id=42e01f, "
        "H264 97 packetization-mode=0 profile-level-id=42e01f)"},
  FAIL ("firefox-recvonly.sdp", MAIN, PCR_ERROR_NO_COMPATIBLE_CODEC,
      "that can decode main"),
  /* Safari: constrained high 640c1f comes first; a CB stream still takes
   * the CB format, main and high streams the high one. */
  {"safari-audio-video.sdp", CB, 98, 0, "0", "42e01f",
      "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
  {"safari-audio-video.sdp", MAIN, 96, 0, "0", "640c1f", NULL},
  {"safari-audio-video.sdp", HIGH, 96, 0, "0", "640c1f", NULL},
  FAIL ("safari-audio-video.sdp", BASE, PCR_ERROR_NO_COMPATIBLE_CODEC,
      "H264 100 packetization-mode=0 profile-level-id=640c1f"),
  FAIL ("vp8-only.sdp", CB, PCR_ERROR_NO_COMPATIBLE_CODEC,
      "offer has no H.264 format with packetization-mode=1 and a profile "
      "that can decode constrained-baseline (offered: VP8 96)"),
  FAIL ("h264-pm0-only.sdp", CB, PCR_ERROR_NO_COMPATIBLE_CODEC,
      "(offered: H264 104 packetization-mode=0)"),
  FAIL ("audio-only.sdp", CB, PCR_ERROR_BAD_REQUEST,
      "offer has no video m-line that can receive"),
  {"rejected-then-good.sdp", CB, 108, 1, "1", "42e01f", NULL},
  FAIL ("video-sendonly.sdp", CB, PCR_ERROR_BAD_REQUEST,
      "offer has no video m-line that can receive (m-line 0 is sendonly)"),
  FAIL ("session-sendonly.sdp", CB, PCR_ERROR_BAD_REQUEST,
      "m-line 0 is sendonly"),
  /* No profile-level-id means 42001f: baseline, so not for main. */
  {"no-profile-level-id.sdp", CB, 100, 0, "0", NULL, "packetization-mode=1"},
  {"no-profile-level-id.sdp", BASE, 100, 0, "0", NULL, NULL},
  FAIL ("no-profile-level-id.sdp", MAIN, PCR_ERROR_NO_COMPATIBLE_CODEC,
      "H264 100 profile-level-id=42001f"),
  {"main-only.sdp", CB, 116, 0, "0", "4d001f", NULL},
  {"main-only.sdp", MAIN, 116, 0, "0", "4d001f", NULL},
  FAIL ("main-only.sdp", HIGH, PCR_ERROR_NO_COMPATIBLE_CODEC,
      "H264 116 profile-level-id=4d001f, H264 39 packetization-mode=0 "
      "profile-level-id=4d001f)"),
  FAIL ("main-only.sdp", BASE, PCR_ERROR_NO_COMPATIBLE_CODEC, NULL),
  {"uppercase-h264.sdp", CB, 102, 0, "0", "42E01F", NULL},
  {"malformed-profile.sdp", CB, 102, 0, "0", "42e01f", NULL},
  FAIL ("malformed-profile.sdp", MAIN, PCR_ERROR_NO_COMPATIBLE_CODEC,
      "(offered: H264 100 profile-level-id=42e01 (malformed), "
      "H264 101 clock-rate=48000 profile-level-id=42e01f, "
      "H264 102 profile-level-id=42e01f)"),
  {"bundle-only.sdp", CB, 102, 1, "1", "42e01f", NULL},
};

static void
test_fixture_case (gconstpointer data)
{
  const FixtureCase *c = data;
  g_autoptr (PcrH264Choice) choice = NULL;
  g_autoptr (GError) error = NULL;

  choice = choose_fixture (c->fixture, c->profile, &error);
  if (c->pt < 0) {
    g_assert_null (choice);
    assert_error (error, c->code, c->message_part);
    return;
  }
  g_assert_no_error (error);
  g_assert_nonnull (choice);
  g_assert_cmpint (choice->pt, ==, c->pt);
  g_assert_cmpuint (choice->mline, ==, c->mline);
  g_assert_cmpstr (choice->mid, ==, c->mid);
  g_assert_cmpstr (choice->profile_level_id, ==, c->profile_level_id);
  if (c->fmtp != NULL)
    g_assert_cmpstr (choice->fmtp, ==, c->fmtp);
}

/* --- Chromium: expected numbers come from the captured text itself --- */

typedef struct
{
  guint mline;                  /* index of the first video m-line */
  gchar *mid;
  GHashTable *rtpmap;           /* pt string -> "H264/90000" */
  GHashTable *fmtp;             /* pt string -> parameters */
  GPtrArray *order;             /* pt strings in m-line order */
} VideoSection;

static void
video_section_free (VideoSection * v)
{
  g_free (v->mid);
  g_hash_table_unref (v->rtpmap);
  g_hash_table_unref (v->fmtp);
  g_ptr_array_unref (v->order);
  g_free (v);
}

/* A reading of the first video section that shares no code with the
 * library, so the test does not grade the library with itself. */
static VideoSection *
read_video_section (const gchar * text)
{
  g_auto (GStrv) lines = g_strsplit (text, "\r\n", -1);
  VideoSection *v = g_new0 (VideoSection, 1);
  gint mline = -1;
  gboolean in_video = FALSE;
  gsize i;

  v->rtpmap = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  v->fmtp = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  v->order = g_ptr_array_new_with_free_func (g_free);

  for (i = 0; lines[i] != NULL; i++) {
    const gchar *l = lines[i];
    const gchar *sp;

    if (g_str_has_prefix (l, "m=")) {
      mline++;
      if (in_video)
        break;
      if (g_str_has_prefix (l, "m=video ")) {
        g_auto (GStrv) tok = g_strsplit (l, " ", -1);
        gsize j;

        in_video = TRUE;
        v->mline = (guint) mline;
        for (j = 3; tok[j] != NULL; j++)
          g_ptr_array_add (v->order, g_strdup (tok[j]));
      }
      continue;
    }
    if (!in_video)
      continue;
    if (g_str_has_prefix (l, "a=mid:") && v->mid == NULL)
      v->mid = g_strdup (l + 6);
    if ((g_str_has_prefix (l, "a=rtpmap:") || g_str_has_prefix (l, "a=fmtp:"))
        && (sp = strchr (l, ' ')) != NULL) {
      const gchar *colon = strchr (l, ':');

      g_hash_table_insert (l[2] == 'r' ? v->rtpmap : v->fmtp,
          g_strndup (colon + 1, sp - colon - 1), g_strdup (sp + 1));
    }
  }
  g_assert_true (in_video);
  return v;
}

/* The one H.264 pm=1 format of the section with exactly @plid. */
static gint
find_h264_pt (const VideoSection * v, const gchar * plid)
{
  gint found = -1;
  guint i;

  for (i = 0; i < v->order->len; i++) {
    const gchar *pt = g_ptr_array_index (v->order, i);
    const gchar *map = g_hash_table_lookup (v->rtpmap, pt);
    const gchar *params = g_hash_table_lookup (v->fmtp, pt);
    g_autofree gchar *want = g_strdup_printf ("profile-level-id=%s", plid);

    if (g_strcmp0 (map, "H264/90000") != 0 || params == NULL)
      continue;
    if (strstr (params, "packetization-mode=1") == NULL
        || strstr (params, want) == NULL)
      continue;
    g_assert_cmpint (found, ==, -1);
    found = atoi (pt);
  }
  return found;
}

/* The rtx/90000 format of the section with apt=@pt, or -1. */
static gint
find_rtx_pt (const VideoSection * v, gint pt)
{
  g_autofree gchar *want = g_strdup_printf ("apt=%d", pt);
  gint found = -1;
  guint i;

  for (i = 0; i < v->order->len; i++) {
    const gchar *rtx = g_ptr_array_index (v->order, i);

    if (g_strcmp0 (g_hash_table_lookup (v->rtpmap, rtx), "rtx/90000") != 0
        || g_strcmp0 (g_hash_table_lookup (v->fmtp, rtx), want) != 0)
      continue;
    g_assert_cmpint (found, ==, -1);
    found = atoi (rtx);
  }
  return found;
}

static void
test_chromium (gconstpointer data)
{
  const gchar *fixture = data;
  g_autofree gchar *text = load_fixture (fixture);
  VideoSection *v = read_video_section (text);
  struct
  {
    PcrH264Profile profile;
    const gchar *plid;
  } expect[] = {
    {CB, "42e01f"}, {BASE, "42001f"}, {MAIN, "4d001f"},
  };
  gsize i;

  g_assert_true (g_str_has_prefix (text, "v=0\r\n"));

  for (i = 0; i < G_N_ELEMENTS (expect); i++) {
    g_autoptr (PcrH264Choice) choice = NULL;
    g_autoptr (GError) error = NULL;
    gint pt = find_h264_pt (v, expect[i].plid);

    g_assert_cmpint (pt, >=, 0);
    choice = choose_text (text, expect[i].profile, &error);
    g_assert_no_error (error);
    g_assert_cmpint (choice->pt, ==, pt);
    g_assert_cmpuint (choice->mline, ==, v->mline);
    g_assert_cmpstr (choice->mid, ==, v->mid);
    g_assert_cmpstr (choice->profile_level_id, ==, expect[i].plid);
    g_assert_nonnull (strstr (choice->fmtp, "packetization-mode=1"));
    /* Chromium offers a retransmission format for every H.264 one. */
    g_assert_cmpint (choice->rtx_pt, >=, 0);
    g_assert_cmpint (choice->rtx_pt, ==, find_rtx_pt (v, pt));
    if (i == 0)
      g_test_message ("%s: constrained-baseline gets payload type %d, rtx %d",
          fixture, choice->pt, choice->rtx_pt);
  }

  /* A high stream gets a high-family format (Chromium offers f4 today). */
  {
    g_autoptr (PcrH264Choice) choice = NULL;
    g_autoptr (GError) error = NULL;

    choice = choose_text (text, HIGH, &error);
    g_assert_no_error (error);
    g_assert_cmpint (choice->pt, ==, find_h264_pt (v,
            choice->profile_level_id));
    g_assert_true (g_str_has_prefix (choice->profile_level_id, "64")
        || g_str_has_prefix (choice->profile_level_id, "6e")
        || g_str_has_prefix (choice->profile_level_id, "7a")
        || g_str_has_prefix (choice->profile_level_id, "f4"));
  }

  video_section_free (v);
}

static void
test_chromium_gathered_has_candidates (void)
{
  g_autofree gchar *text = load_fixture ("chromium-gathered.sdp");

  /* The fixture is only worth having if gathering put candidates in it. */
  g_assert_nonnull (strstr (text, "\r\na=candidate:"));
  g_assert_nonnull (strstr (text, " 127.0.0.1 "));
}

/* --- Preference order on small inline offers --- */

static gchar *
offer_with (const gchar * const *fmtps)
{
  g_autoptr (GString) s = g_string_new ("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"
      "s=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF");
  guint i;

  for (i = 0; fmtps[i] != NULL; i++)
    g_string_append_printf (s, " %u", 100 + i);
  g_string_append (s, "\r\nc=IN IP4 0.0.0.0\r\na=mid:v\r\na=recvonly\r\n");
  for (i = 0; fmtps[i] != NULL; i++) {
    g_string_append_printf (s, "a=rtpmap:%u H264/90000\r\n", 100 + i);
    g_string_append_printf (s, "a=fmtp:%u packetization-mode=1;"
        "profile-level-id=%s\r\n", 100 + i, fmtps[i]);
  }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static gint
pick (const gchar * const *plids, PcrH264Profile profile)
{
  g_autofree gchar *text = offer_with (plids);
  g_autoptr (PcrH264Choice) choice = NULL;
  g_autoptr (GError) error = NULL;

  choice = choose_text (text, profile, &error);
  if (choice == NULL) {
    assert_error (error, PCR_ERROR_NO_COMPATIBLE_CODEC, NULL);
    return -1;
  }
  g_assert_no_error (error);
  g_assert_cmpstr (choice->mid, ==, "v");
  return choice->pt;
}

static void
test_preference (void)
{
  const gchar *const cb_last[] = { "640c1f", "4d001f", "42001f", "42e01f",
    NULL
  };
  const gchar *const c0_first[] = { "42c01f", "42e01f", NULL };
  const gchar *const no_cb[] = { "f4001f", "640c1f", "4d0032", "42001f",
    NULL
  };
  const gchar *const above[] = { "f4001f", "6e001f", "640c1f", "4d001f",
    NULL
  };
  const gchar *const bad[] = { "42e01", "42e01fff", "42g01f", "", "0x42e0",
    NULL
  };
  const gchar *const ext[] = { "58001f", "42e01f", NULL };

  /* CB stream: CB first, wherever it stands; ties keep offer order. */
  g_assert_cmpint (pick (cb_last, CB), ==, 103);
  g_assert_cmpint (pick (c0_first, CB), ==, 100);
  /* then plain baseline, then main, then high */
  g_assert_cmpint (pick (no_cb, CB), ==, 103);
  g_assert_cmpint (pick (above, CB), ==, 103);
  g_assert_cmpint (pick (above, MAIN), ==, 103);
  g_assert_cmpint (pick (above, HIGH), ==, 102);
  /* baseline needs a decoder without the CB constraint: 42 or 58 */
  g_assert_cmpint (pick (c0_first, BASE), ==, -1);
  g_assert_cmpint (pick (ext, BASE), ==, 100);
  g_assert_cmpint (pick (no_cb, BASE), ==, 103);
  /* malformed profile-level-ids are skipped, not guessed */
  g_assert_cmpint (pick (bad, CB), ==, -1);
}

static void
test_profile_from_string (void)
{
  g_assert_cmpint (pcr_h264_profile_from_string (NULL), ==, CB);
  g_assert_cmpint (pcr_h264_profile_from_string ("constrained-baseline"), ==,
      CB);
  g_assert_cmpint (pcr_h264_profile_from_string ("baseline"), ==, BASE);
  g_assert_cmpint (pcr_h264_profile_from_string ("main"), ==, MAIN);
  g_assert_cmpint (pcr_h264_profile_from_string ("high"), ==, HIGH);
  g_assert_cmpint (pcr_h264_profile_from_string ("constrained-high"), ==, HIGH);
  g_assert_cmpint (pcr_h264_profile_from_string ("nonsense"), ==, CB);
  pcr_h264_choice_free (NULL);
}

/* --- Hostile input --- */

static void
assert_parse_fails (const gchar * text, const gchar * part)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GstSDPMessage) msg = pcr_sdp_parse (text, &error);

  g_assert_null (msg);
  assert_error (error, PCR_ERROR_BAD_REQUEST, part);
}

static void
test_garbage (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (20240601);
  g_autofree gchar *huge = NULL;
  guint i;

  assert_parse_fails ("", "SDP is empty");
  assert_parse_fails ("v=0", "SDP has no m= line");
  assert_parse_fails ("v=0\r\n", "SDP has no m= line");
  assert_parse_fails ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
      "a=x:m=video 9 RTP/AVP 96\r\n", "SDP has no m= line");
  assert_parse_fails ("hello", "does not start with a v= line");
  assert_parse_fails (" v=0\r\nm=video 9 RTP/AVP 96\r\n", "v= line");
  assert_parse_fails ("m=video 9 RTP/AVP 96\r\nv=0\r\n", "v= line");
  assert_parse_fails ("v=0\r\nm=video 9 RTP/AVP 96\r\na=mid:\xff\xfe\r\n",
      "UTF-8");
  assert_parse_fails ("{\"type\":\"offer\",\"sdp\":\"v=0\"}", "v= line");

  /* Random bytes, with and without a plausible start. */
  for (i = 0; i < 200; i++) {
    gsize len = (gsize) g_rand_int_range (rand, 1, 2048);
    g_autofree gchar *buf = g_malloc (len + 1);
    g_autoptr (GError) error = NULL;
    g_autoptr (GstSDPMessage) msg = NULL;
    gsize j;

    for (j = 0; j < len; j++)
      buf[j] = (gchar) g_rand_int_range (rand, 1, 256);
    buf[len] = '\0';
    if (i % 2 == 1 && len > 2)
      memcpy (buf, "v=", 2);
    msg = pcr_sdp_parse (buf, &error);
    g_assert_null (msg);
    assert_error (error, PCR_ERROR_BAD_REQUEST, NULL);
  }

  /* A 1 MiB line without an m= line, then with one. */
  huge = g_strnfill (1024 * 1024, 'x');
  memcpy (huge, "v=", 2);
  assert_parse_fails (huge, "no m= line");
  {
    g_autofree gchar *text = g_strconcat ("v=0\r\na=x-pad:", huge,
        "\r\nm=video 9 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=fmtp:96 ",
        huge, "\r\n", NULL);
    g_autoptr (PcrH264Choice) choice = NULL;
    g_autoptr (GError) error = NULL;

    choice = choose_text (text, CB, &error);
    g_assert_null (choice);
    assert_error (error, PCR_ERROR_NO_COMPATIBLE_CODEC, "(offered: VP8 96)");
  }
}

/* What an error message quotes from the offer is short and printable. */
static void
test_error_message_bounded (void)
{
  g_autoptr (GString) s = g_string_new ("v=0\r\nm=video 9 RTP/AVP");
  g_autofree gchar *long_name = g_strnfill (5000, 'Q');
  g_autoptr (PcrH264Choice) choice = NULL;
  g_autoptr (GError) error = NULL;
  guint i;

  for (i = 0; i < 20000; i++)
    g_string_append_printf (s, " %u", i % 128);
  g_string_append (s, " foo -1 128 +96\r\n");
  g_string_append_printf (s, "a=rtpmap:96 %s/90000\r\n", long_name);
  g_string_append (s, "a=rtpmap:97 H264/90000\r\n"
      "a=fmtp:97 packetization-mode=\x01\x7f\r\n"
      "a=rtpmap:98 H264\r\na=rtpmap:99 rtx/90000\r\n");
  for (i = 0; i < 20000; i++)
    g_string_append_printf (s, "a=rtcp-fb:%u nack\r\n", i % 128);

  choice = choose_text (s->str, CB, &error);
  g_assert_null (choice);
  assert_error (error, PCR_ERROR_NO_COMPATIBLE_CODEC,
      "(offered: 0 (no rtpmap), 1 (no rtpmap)");
  g_assert_nonnull (strstr (error->message, " more)"));
  g_assert_null (strstr (error->message, "rtx"));
  for (i = 0; error->message[i] != '\0'; i++)
    g_assert_true (g_ascii_isprint (error->message[i]));

  /* The long name and the control bytes, quoted shortened and masked. */
  g_clear_error (&error);
  g_string_truncate (s, 0);
  g_string_append_printf (s, "v=0\r\nm=video 9 RTP/AVP 96 97 98 99\r\n"
      "a=rtpmap:96 %s/90000\r\na=rtpmap:97 H264/90000\r\n"
      "a=fmtp:97 packetization-mode=\x01\x7f\r\n"
      "a=rtpmap:98 H264\r\na=rtpmap:99 rtx/90000\r\n", long_name);
  choice = choose_text (s->str, CB, &error);
  g_assert_null (choice);
  assert_error (error, PCR_ERROR_NO_COMPATIBLE_CODEC,
      "QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ... 96, "
      "H264 97 packetization-mode=??, "
      "H264 98 clock-rate=0 packetization-mode=0)");
}

/* Bytes of a real offer flipped, dropped and cut: never a crash, a leak or
 * an error outside our domain. */
static void
test_mutated (void)
{
  g_autofree gchar *orig = load_fixture ("chromium-audio-video.sdp");
  g_autoptr (GRand) rand = g_rand_new_with_seed (4242);
  gsize len = strlen (orig);
  guint i, ok = 0;

  for (i = 0; i < 300; i++) {
    g_autofree gchar *text = g_strdup (orig);
    g_autoptr (PcrH264Choice) choice = NULL;
    g_autoptr (GError) error = NULL;
    guint k, n = (guint) g_rand_int_range (rand, 1, 12);

    for (k = 0; k < n; k++) {
      gsize at = (gsize) g_rand_int_range (rand, 0, (gint32) len);

      switch (g_rand_int_range (rand, 0, 4)) {
        case 0:
          text[at] = (gchar) g_rand_int_range (rand, 1, 256);
          break;
        case 1:
          text[at] = "\r\n =:;/0"[g_rand_int_range (rand, 0, 8)];
          break;
        case 2:
          text[at] = '\0';
          break;
        default:
          memmove (text + at, text + at + 1, len - at);
          break;
      }
    }
    choice = choose_text (text, (PcrH264Profile) (i % 4), &error);
    if (choice != NULL) {
      g_assert_no_error (error);
      g_assert_cmpint (choice->pt, >=, 0);
      g_assert_cmpint (choice->pt, <=, 127);
      ok++;
    } else {
      g_assert_nonnull (error);
      g_assert_true (error->code == PCR_ERROR_BAD_REQUEST
          || error->code == PCR_ERROR_NO_COMPATIBLE_CODEC);
      assert_error (error, (PcrErrorCode) error->code, NULL);
    }
  }
  /* Most mutations miss what matters: the choice still happens. */
  g_assert_cmpuint (ok, >, 30);
}

#define PLAYOUT_DELAY "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"

static guint
extmap_id_in (const gchar * text, guint mline, gboolean * directed)
{
  g_autoptr (GError) error = NULL;
  GstSDPMessage *msg = pcr_sdp_parse (text, &error);
  guint id;

  g_assert_no_error (error);
  id = pcr_sdp_extmap_id (msg, mline, PLAYOUT_DELAY, directed);
  gst_sdp_message_free (msg);
  return id;
}

/* The playout-delay extension as real browsers offer it, and offers whose
 * extmap mqttwebrtcsink must not answer. */
static void
test_extmap_id (void)
{
  static const struct
  {
    const gchar *fixture;
    guint mline, id;
    gboolean directed;
  } browsers[] = {
    {"chromium-recvonly.sdp", 0, 5, FALSE},
    {"chromium-gathered.sdp", 0, 5, FALSE},
    {"chromium-audio-video.sdp", 1, 5, FALSE},
    {"chromium-audio-video.sdp", 0, 0, FALSE},  /* the audio m-line */
    {"safari-audio-video.sdp", 0, 5, FALSE},
    {"firefox-recvonly.sdp", 0, 6, TRUE},
    {"vp8-only.sdp", 0, 0, FALSE},
  };
  static const struct
  {
    const gchar *extmap;
    guint id;
  } lines[] = {
    {"a=extmap:3 " PLAYOUT_DELAY, 3},
    {"a=extmap:14 " PLAYOUT_DELAY " some=attr", 14},
    {"a=extmap:3/sendrecv " PLAYOUT_DELAY, 3},
    {"a=extmap:15 " PLAYOUT_DELAY, 0},  /* two-byte ids are not used */
    {"a=extmap:100 " PLAYOUT_DELAY, 0},
    {"a=extmap:0 " PLAYOUT_DELAY, 0},
    {"a=extmap:3/sendonly " PLAYOUT_DELAY, 0},  /* offerer does not receive */
    {"a=extmap:3/inactive " PLAYOUT_DELAY, 0},
    {"a=extmap:3 " PLAYOUT_DELAY "-v2", 0},
    {"a=extmap:3" PLAYOUT_DELAY, 0},
    {"a=extmap:x " PLAYOUT_DELAY, 0},
    {"a=extmap: " PLAYOUT_DELAY, 0},
    {"a=extmap:3", 0},
    {"a=extmap", 0},
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (browsers); i++) {
    g_autofree gchar *text = load_fixture (browsers[i].fixture);
    gboolean directed = !browsers[i].directed;

    g_assert_cmpuint (extmap_id_in (text, browsers[i].mline, &directed), ==,
        browsers[i].id);
    g_assert_cmpint (directed, ==, browsers[i].directed);
  }
  for (i = 0; i < G_N_ELEMENTS (lines); i++) {
    g_autofree gchar *text = g_strdup_printf ("v=0\r\no=- 1 1 IN IP4 "
        "127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\n"
        "c=IN IP4 0.0.0.0\r\na=rtpmap:102 H264/90000\r\n%s\r\n",
        lines[i].extmap);

    g_test_message ("%s", lines[i].extmap);
    g_assert_cmpuint (extmap_id_in (text, 0, NULL), ==, lines[i].id);
    /* an m-line that is not there */
    g_assert_cmpuint (extmap_id_in (text, 1, NULL), ==, 0);
  }
}

/* The choice for an inline offer of H264 102 (constrained baseline)
 * followed by @formats on the m-line and @lines after its own. */
static PcrH264Choice *
choose_inline (const gchar * formats, const gchar * lines)
{
  g_autofree gchar *text = g_strdup_printf ("v=0\r\no=- 1 1 IN IP4 "
      "127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102%s\r\n"
      "c=IN IP4 0.0.0.0\r\na=rtpmap:102 H264/90000\r\n"
      "a=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n%s",
      formats, lines);
  g_autoptr (GError) error = NULL;
  PcrH264Choice *choice;

  g_test_message ("%s", lines);
  choice = choose_text (text, CB, &error);
  g_assert_no_error (error);
  g_assert_cmpint (choice->pt, ==, 102);
  return choice;
}

/* The retransmission format of the chosen payload type: the browsers'
 * offers, offers without one, and rtx lines that must not count. */
static void
test_rtx_pt (void)
{
  static const struct
  {
    const gchar *fixture;
    PcrH264Profile profile;
    gint pt, rtx_pt;
  } offers[] = {
    {"chromium-recvonly.sdp", CB, 108, 109},
    {"firefox-recvonly.sdp", CB, 126, 127},
    {"safari-audio-video.sdp", CB, 98, 99},
    {"safari-audio-video.sdp", HIGH, 96, 97},
    {"main-only.sdp", MAIN, 116, 117},
    {"no-profile-level-id.sdp", CB, 100, 101},
    {"rejected-then-good.sdp", CB, 108, 109},
    /* no rtx at all */
    {"uppercase-h264.sdp", CB, 102, -1},
    {"malformed-profile.sdp", CB, 102, -1},
    {"bundle-only.sdp", CB, 102, -1},
  };
  static const struct
  {
    const gchar *formats;       /* after 102 on the m-line */
    const gchar *lines;
    gint rtx_pt;
  } inline_offers[] = {
    {" 103", "a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\n", 103},
    {" 103", "a=rtpmap:103 RTX/90000\r\na=fmtp:103 apt = 102 \r\n", 103},
    /* the first listed wins */
    {" 105 103", "a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\n"
          "a=rtpmap:105 rtx/90000\r\na=fmtp:105 apt=102\r\n", 105},
    /* not on the m-line */
    {"", "a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\n", -1},
    /* another payload type's */
    {" 103", "a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=96\r\n", -1},
    {" 103", "a=rtpmap:103 rtx/48000\r\na=fmtp:103 apt=102\r\n", -1},
    {" 103", "a=rtpmap:103 rtx\r\na=fmtp:103 apt=102\r\n", -1},
    {" 103", "a=rtpmap:103 rtx/90000\r\n", -1},
    {" 103", "a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102x\r\n", -1},
    {" 103", "a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=-102\r\n", -1},
    {" 103", "a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=\r\n", -1},
    {" 103", "a=rtpmap:103 rtx/90000\r\na=fmtp:103 rtx-time=3000\r\n", -1},
    {" 103", "a=rtpmap:103 red/90000\r\na=fmtp:103 apt=102\r\n", -1},
    /* an rtx naming itself, an out-of-range one */
    {" 200", "a=rtpmap:200 rtx/90000\r\na=fmtp:200 apt=102\r\n", -1},
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (offers); i++) {
    g_autoptr (PcrH264Choice) choice = NULL;
    g_autoptr (GError) error = NULL;

    g_test_message ("%s", offers[i].fixture);
    choice = choose_fixture (offers[i].fixture, offers[i].profile, &error);
    g_assert_no_error (error);
    g_assert_cmpint (choice->pt, ==, offers[i].pt);
    g_assert_cmpint (choice->rtx_pt, ==, offers[i].rtx_pt);
  }
  for (i = 0; i < G_N_ELEMENTS (inline_offers); i++) {
    g_autoptr (PcrH264Choice) choice = choose_inline (inline_offers[i].formats,
        inline_offers[i].lines);

    g_assert_cmpint (choice->rtx_pt, ==, inline_offers[i].rtx_pt);
  }
}

/* The FEC formats (RED, ULPFEC, rtx of RED) of the chosen m-line: the
 * browsers' offers, offers without them, and lines that must not count. */
static void
test_fec_pt (void)
{
  static const struct
  {
    const gchar *fixture;
    gint red_pt, ulpfec_pt, red_rtx_pt;
  } offers[] = {
    {"chromium-recvonly.sdp", 118, 120, 119},
    /* its audio m-line's red/48000 is not the video's */
    {"chromium-audio-video.sdp", 118, 120, 119},
    {"chromium-gathered.sdp", 118, 120, 119},
    {"firefox-recvonly.sdp", 122, 123, 119},
    {"safari-audio-video.sdp", 108, 127, 109},
    {"rejected-then-good.sdp", -1, -1, -1},
    {"uppercase-h264.sdp", -1, -1, -1},
  };
  static const struct
  {
    const gchar *formats;       /* after 102 on the m-line */
    const gchar *lines;
    gint red_pt, ulpfec_pt, red_rtx_pt;
  } inline_offers[] = {
    {" 103 104 105", "a=rtpmap:103 red/90000\r\na=rtpmap:104 ulpfec/90000\r\n"
          "a=rtpmap:105 rtx/90000\r\na=fmtp:105 apt=103\r\n", 103, 104, 105},
    {" 103 104", "a=rtpmap:103 RED/90000\r\na=rtpmap:104 ULPFEC/90000\r\n",
        103, 104, -1},
    /* the first listed wins */
    {" 106 103", "a=rtpmap:103 red/90000\r\na=rtpmap:106 red/90000\r\n",
        106, -1, -1},
    /* not on the m-line, another clock rate, no clock rate */
    {"", "a=rtpmap:103 red/90000\r\na=rtpmap:104 ulpfec/90000\r\n", -1, -1,
        -1},
    {" 103 104", "a=rtpmap:103 red/48000\r\na=rtpmap:104 ulpfec\r\n", -1,
        -1, -1},
    /* an rtx of another format, of no format, malformed */
    {" 103 105", "a=rtpmap:103 red/90000\r\na=rtpmap:105 rtx/90000\r\n"
          "a=fmtp:105 apt=102\r\n", 103, -1, -1},
    {" 103 105", "a=rtpmap:103 red/90000\r\na=rtpmap:105 rtx/90000\r\n"
          "a=fmtp:105 apt=103x\r\n", 103, -1, -1},
    {" 103 200", "a=rtpmap:103 red/90000\r\na=rtpmap:200 rtx/90000\r\n"
          "a=fmtp:200 apt=103\r\n", 103, -1, -1},
    /* flexfec is not ulpfec */
    {" 104", "a=rtpmap:104 flexfec-03/90000\r\n", -1, -1, -1},
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (offers); i++) {
    g_autoptr (PcrH264Choice) choice = NULL;
    g_autoptr (GError) error = NULL;

    g_test_message ("%s", offers[i].fixture);
    choice = choose_fixture (offers[i].fixture, CB, &error);
    g_assert_no_error (error);
    g_assert_cmpint (choice->red_pt, ==, offers[i].red_pt);
    g_assert_cmpint (choice->ulpfec_pt, ==, offers[i].ulpfec_pt);
    g_assert_cmpint (choice->red_rtx_pt, ==, offers[i].red_rtx_pt);
  }
  for (i = 0; i < G_N_ELEMENTS (inline_offers); i++) {
    g_autoptr (PcrH264Choice) choice = choose_inline (inline_offers[i].formats,
        inline_offers[i].lines);

    g_assert_cmpint (choice->red_pt, ==, inline_offers[i].red_pt);
    g_assert_cmpint (choice->ulpfec_pt, ==, inline_offers[i].ulpfec_pt);
    g_assert_cmpint (choice->red_rtx_pt, ==, inline_offers[i].red_rtx_pt);
  }
}

/* The audio m-line the device answers with Opus: Chromium's (audio
 * first, opus 111 with its fmtp), and the offers it must leave alone. */
static void
test_opus (void)
{
  g_autofree gchar *text = load_fixture ("chromium-audio-video.sdp");
  g_autoptr (GError) error = NULL;
  GstSDPMessage *sdp = pcr_sdp_parse (text, &error);
  static const gchar *refused[] = {
    /* no audio m-line */
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264/90000\r\n",
    /* audio without opus/48000 */
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 0 111\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:111 opus/44100/2\r\n",
    /* rejected */
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n",
    /* inactive */
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
        "a=inactive\r\n",
    /* a payload type the rtpmap names but the m-line does not list */
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:111 opus/48000/2\r\n",
  };
  guint i;

  g_assert_no_error (error);
  {
    g_autoptr (PcrOpusChoice) opus = pcr_sdp_find_opus (sdp);

    g_assert_nonnull (opus);
    g_assert_cmpuint (opus->mline, ==, 0);
    g_assert_cmpint (opus->pt, ==, 111);
    g_assert_cmpstr (opus->fmtp, ==, "minptime=10;useinbandfec=1");
    g_assert_true (opus->receives);
  }
  gst_sdp_message_free (sdp);

  for (i = 0; i < G_N_ELEMENTS (refused); i++) {
    g_autoptr (PcrOpusChoice) opus = NULL;

    sdp = pcr_sdp_parse (refused[i], &error);
    g_assert_no_error (error);
    opus = pcr_sdp_find_opus (sdp);
    if (opus)
      g_error ("offer %u: opus chosen on m-line %u pt %d", i, opus->mline,
          opus->pt);
    gst_sdp_message_free (sdp);
  }

  /* sendrecv: the viewer offers its microphone */
  sdp = pcr_sdp_parse ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
      "m=audio 9 UDP/TLS/RTP/SAVPF 109\r\na=rtpmap:109 OPUS/48000/2\r\n"
      "a=sendrecv\r\n", &error);
  g_assert_no_error (error);
  {
    g_autoptr (PcrOpusChoice) opus = pcr_sdp_find_opus (sdp);

    g_assert_nonnull (opus);
    g_assert_cmpint (opus->pt, ==, 109);
    g_assert_true (opus->sends && opus->receives);
  }
  gst_sdp_message_free (sdp);
}

int
main (int argc, char **argv)
{
  static const gchar *const chromium[] = { "chromium-recvonly.sdp",
    "chromium-audio-video.sdp", "chromium-gathered.sdp"
  };
  static const gchar *const profile_names[] = { "cb", "baseline", "main",
    "high"
  };
  gsize i;

  g_test_init (&argc, &argv, NULL);

  for (i = 0; i < G_N_ELEMENTS (chromium); i++) {
    g_autofree gchar *path = g_strdup_printf ("/sdp/chromium/%s",
        chromium[i]);
    g_test_add_data_func (path, chromium[i], test_chromium);
  }
  g_test_add_func ("/sdp/chromium/gathered-has-candidates",
      test_chromium_gathered_has_candidates);
  for (i = 0; i < G_N_ELEMENTS (fixture_cases); i++) {
    const FixtureCase *c = &fixture_cases[i];
    g_autofree gchar *path = g_strdup_printf ("/sdp/fixture/%s/%s",
        c->fixture, profile_names[c->profile]);
    g_test_add_data_func (path, c, test_fixture_case);
  }
  g_test_add_func ("/sdp/preference", test_preference);
  g_test_add_func ("/sdp/profile-from-string", test_profile_from_string);
  g_test_add_func ("/sdp/garbage", test_garbage);
  g_test_add_func ("/sdp/error-message-bounded", test_error_message_bounded);
  g_test_add_func ("/sdp/mutated", test_mutated);
  g_test_add_func ("/sdp/extmap-id", test_extmap_id);
  g_test_add_func ("/sdp/rtx-pt", test_rtx_pt);
  g_test_add_func ("/sdp/fec-pt", test_fec_pt);
  g_test_add_func ("/sdp/opus", test_opus);

  return g_test_run ();
}
