/* SDP helpers: choosing the H.264 format a viewer's offer can take. */
#pragma once

#include <glib.h>
#include <gst/sdp/sdp.h>

G_BEGIN_DECLS

/* What the sender's stream is, as far as format choice cares. */
typedef enum
{
  PCR_H264_CONSTRAINED_BASELINE,
  PCR_H264_BASELINE,
  PCR_H264_MAIN,
  PCR_H264_HIGH,
} PcrH264Profile;

/* Maps a GStreamer caps "profile" string ("constrained-baseline", "main",
 * ...) to the enum; NULL or unknown gives constrained-baseline. */
PcrH264Profile pcr_h264_profile_from_string (const gchar * profile);

typedef struct
{
  guint mline;                  /* index of the video m-line */
  gchar *mid;                   /* its a=mid, nullable */
  gint pt;                      /* chosen payload type */
  gchar *profile_level_id;      /* of the chosen format, nullable */
  gchar *fmtp;                  /* the chosen format's a=fmtp value, nullable */
  gint rtx_pt;                  /* the offer's rtx/90000 format with apt=pt
                                 * (RFC 4588), -1 when it has none */
  /* Forward error correction (RFC 5109 ULPFEC inside RFC 2198 RED, as
   * browsers offer it): the m-line's first red/90000 and ulpfec/90000
   * formats and the rtx/90000 format with apt=red_pt, each -1 when the
   * offer lists none. */
  gint red_pt, ulpfec_pt, red_rtx_pt;
} PcrH264Choice;

void pcr_h264_choice_free (PcrH264Choice * choice);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrH264Choice, pcr_h264_choice_free)

/* Picks, from the first video m-line of @offer that is not rejected (port 0)
 * and wants to receive (not a=sendonly / a=inactive), the H.264/90000 format
 * with packetization-mode=1 whose profile can decode a stream of
 * @stream_profile. Preference: the same profile as the stream first (for
 * constrained baseline: profile-level-id 42e0xx/42c0xx, then 4200xx), then
 * the smallest profile above it (main 4d, then high 64); ties keep offer
 * order. A format with no profile-level-id counts as 42001f (RFC 6184).
 * The choice also names the m-line's retransmission format for the chosen
 * one (rtx_pt), if the offer lists one, and its FEC formats (red_pt,
 * ulpfec_pt, red_rtx_pt).
 * Errors (PCR_MESSAGE_ERROR): PCR_ERROR_BAD_REQUEST when there is no video
 * m-line that receives, PCR_ERROR_NO_COMPATIBLE_CODEC when none fits. */
PcrH264Choice *pcr_sdp_choose_h264 (const GstSDPMessage * offer,
    PcrH264Profile stream_profile, GError ** error);

/* The first audio m-line of an offer, when it carries opus/48000 and is
 * neither rejected nor inactive: what the device answers with its Opus
 * stream (and, when the viewer sends, may take as talk-back). */
typedef struct
{
  guint mline;
  gint pt;                      /* the offer's opus/48000 payload type */
  gchar *mid;                   /* its a=mid, nullable */
  gchar *fmtp;                  /* its a=fmtp value, nullable */
  gboolean receives;            /* the viewer wants the device's audio */
  gboolean sends;               /* the viewer offers its microphone */
} PcrOpusChoice;

void pcr_opus_choice_free (PcrOpusChoice * choice);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrOpusChoice, pcr_opus_choice_free)

/* NULL when the first audio m-line is missing, rejected, inactive or
 * without opus/48000 (the answer then rejects it; video still plays). */
PcrOpusChoice *pcr_sdp_find_opus (const GstSDPMessage * offer);

/* Parses SDP text (bounded by the caller) into a new message; FALSE with
 * PCR_ERROR_BAD_REQUEST when it is not SDP (no v=, no m= line). */
GstSDPMessage *pcr_sdp_parse (const gchar * text, GError ** error);

/* The id (1 .. 14) that m-line @mline of @offer gives the RTP header
 * extension @uri with a=extmap:<id>[/<direction>] <uri>, or 0 when it names
 * none (or only at an id a one-byte header cannot carry, or with a
 * direction in which the offerer does not receive). @directed (nullable)
 * tells whether the offer gave a direction (recvonly or sendrecv, as
 * Firefox does), which the answer then narrows to sendonly. */
guint pcr_sdp_extmap_id (const GstSDPMessage * offer, guint mline,
    const gchar * uri, gboolean * directed);

G_END_DECLS
