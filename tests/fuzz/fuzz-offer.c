/* libFuzzer target for a viewer's SDP offer (docs/signalling.md: hostile
 * input): pcr_sdp_parse() and then pcr_sdp_choose_h264() for every stream
 * profile, as mqttwebrtcsink does with the "sdp" of an offer. Besides memory
 * errors and leaks it checks what the API promises: a choice names a video
 * m-line of the offer and one of its payload types, and a refusal is a
 * one-line error of ours that the device can send back as it is; a
 * retransmission format it names (rtx_pt) is another payload type of the
 * same m-line. */

#include "pcr-sdp.h"
#include "pcr-message.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An error message is sent back to the viewer as it is. pcr-sdp.c lists
 * at most 16 formats with at most 32 quoted bytes per field, about 3 KB at
 * worst; anything longer grows with the offer. */
#define MAX_ERROR_MESSAGE 4096

static void
check_error (const GError * error, gboolean may_be_no_codec)
{
  if (error == NULL || error->domain != PCR_MESSAGE_ERROR
      || (error->code != PCR_ERROR_BAD_REQUEST
          && !(may_be_no_codec
              && error->code == PCR_ERROR_NO_COMPATIBLE_CODEC))) {
    fprintf (stderr, "refused without an error of ours: %s\n",
        error ? error->message : "(no error)");
    abort ();
  }
  if (strchr (error->message, '\n') != NULL
      || strchr (error->message, '\r') != NULL
      || strlen (error->message) >= MAX_ERROR_MESSAGE
      || !g_utf8_validate (error->message, -1, NULL)) {
    fprintf (stderr,
        "error message is not one short line (%zu bytes): \"%.300s\"\n",
        strlen (error->message), error->message);
    abort ();
  }
}

/* TRUE when the m-line lists payload type @pt (0 .. 127) as a format. */
static gboolean
media_lists (const GstSDPMedia * media, gint pt)
{
  guint i, n = gst_sdp_media_formats_len (media);

  if (pt < 0 || pt > 127)
    return FALSE;
  for (i = 0; i < n; i++) {
    guint64 fmt;

    if (g_ascii_string_to_unsigned (gst_sdp_media_get_format (media, i), 10,
            0, 127, &fmt, NULL) && fmt == (guint64) pt)
      return TRUE;
  }
  return FALSE;
}

static void
check_choice (const GstSDPMessage * offer, const PcrH264Choice * choice)
{
  const GstSDPMedia *media;

  if (choice->mline >= gst_sdp_message_medias_len (offer)) {
    fprintf (stderr, "chose m-line %u of %u\n", choice->mline,
        gst_sdp_message_medias_len (offer));
    abort ();
  }
  media = gst_sdp_message_get_media (offer, choice->mline);
  if (g_strcmp0 (gst_sdp_media_get_media (media), "video") != 0
      || choice->pt < 0 || choice->pt > 127) {
    fprintf (stderr, "chose payload type %d of a \"%s\" m-line\n",
        choice->pt, gst_sdp_media_get_media (media));
    abort ();
  }
  if (!media_lists (media, choice->pt)) {
    fprintf (stderr, "chose payload type %d, which the m-line does not "
        "list\n", choice->pt);
    abort ();
  }
  if (choice->rtx_pt != -1 && (choice->rtx_pt == choice->pt
          || !media_lists (media, choice->rtx_pt))) {
    fprintf (stderr, "rtx payload type %d for %d is not another format of "
        "the m-line\n", choice->rtx_pt, choice->pt);
    abort ();
  }
}

int LLVMFuzzerTestOneInput (const uint8_t * data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  static const PcrH264Profile profiles[] = { PCR_H264_CONSTRAINED_BASELINE,
    PCR_H264_BASELINE, PCR_H264_MAIN, PCR_H264_HIGH
  };
  /* The "sdp" string of a parsed message: NUL-terminated, at most the
   * payload limit (the JSON codec refuses \u0000, so it ends at a NUL). */
  g_autofree gchar *text = NULL;
  g_autoptr (GstSDPMessage) offer = NULL;
  g_autoptr (GError) error = NULL;
  gsize i;

  if (size > PCR_MESSAGE_MAX_SIZE)
    return 0;
  text = g_strndup ((const gchar *) data, size);

  offer = pcr_sdp_parse (text, &error);
  if (offer == NULL) {
    check_error (error, FALSE);
    return 0;
  }

  for (i = 0; i < G_N_ELEMENTS (profiles); i++) {
    g_autoptr (PcrH264Choice) choice = NULL;
    g_autoptr (GError) choice_error = NULL;

    choice = pcr_sdp_choose_h264 (offer, profiles[i], &choice_error);
    if (choice == NULL)
      check_error (choice_error, TRUE);
    else
      check_choice (offer, choice);
  }
  /* the audio m-line the answer sends Opus on: one of the offer's, its
   * payload type one the m-line lists */
  {
    g_autoptr (PcrOpusChoice) opus = pcr_sdp_find_opus (offer);

    if (opus) {
      const GstSDPMedia *media = gst_sdp_message_get_media (offer,
          opus->mline);

      if (media == NULL || opus->pt < 0 || opus->pt > 127 ||
          g_strcmp0 (gst_sdp_media_get_media (media), "audio") != 0)
        abort ();
    }
  }
  return 0;
}
