/* Trickle ICE SDP fragments (RFC 8840, application/trickle-ice-sdpfrag), as
 * a WHEP client PATCHes them: a=ice-ufrag / a=ice-pwd, m= lines and a=mid
 * naming the media section, a=candidate lines and a=end-of-candidates. The
 * body is hostile input: bounded and checked line by line. Also the m-line
 * surgery that keeps a viewer without the control token from opening a
 * data channel: its offer's m=application lines taken out, put back
 * rejected in the device's answer, and its candidates' m-line indexes
 * mapped between the two. */
#pragma once

#include <glib.h>
#include <gst/sdp/sdp.h>

G_BEGIN_DECLS
#define PCR_SDPFRAG_ERROR (pcr_sdpfrag_error_quark ())
    GQuark pcr_sdpfrag_error_quark (void);

/* The longest candidate line accepted. */
#define PCR_SDPFRAG_MAX_CANDIDATE 1024
/* The longest a=ice-ufrag, a=ice-pwd or a=mid value accepted. */
#define PCR_SDPFRAG_MAX_TOKEN 256

typedef struct
{
  gchar *candidate;             /* "candidate:..."; "" = end of candidates */
  guint mline;                  /* index of the m-line in the offer */
  gchar *mid;                   /* nullable */
} PcrFragCandidate;

typedef struct
{
  gchar *ice_ufrag;             /* nullable */
  gchar *ice_pwd;               /* nullable */
  GPtrArray *candidates;        /* PcrFragCandidate*, in order, end markers
                                 * included */
} PcrSdpFrag;

/* Whether @text is printable ASCII only, as candidate lines and ICE tokens
 * must be. */
gboolean pcr_sdpfrag_is_printable (const gchar * text);

void pcr_sdpfrag_free (PcrSdpFrag * frag);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrSdpFrag, pcr_sdpfrag_free)
/* Parses @len bytes of @text. @mids are the a=mid values of the offer's
 * m-lines in order (NULL-terminated, may be NULL or empty): a=mid:X maps to
 * the index of X there, a bare m= line to its position in the fragment;
 * lines before any of them belong to the first m-line. Fails (one-line
 * message) on bytes that are not text, a candidate line that is not
 * "candidate:..." or longer than PCR_SDPFRAG_MAX_CANDIDATE, an a=mid not in
 * @mids, a candidate or end-of-candidates line under an m= line past the
 * m-lines of a non-empty @mids, or more than @max_candidates candidate
 * lines. Other lines are ignored. */
     PcrSdpFrag *pcr_sdpfrag_parse (const gchar * text, gsize len,
    const gchar * const *mids, guint max_candidates, GError ** error);

/* An m-line taken out of a viewer's offer (pcr_sdp_strip_application). */
typedef struct
{
  guint index;                  /* its position in the viewer's offer */
  gchar *mid;                   /* nullable */
  gchar *proto;                 /* "UDP/DTLS/SCTP" */
  gchar *formats;               /* "webrtc-datachannel" */
} PcrStrippedMedia;

/* The offer @offer without its m=application lines, their mids taken out
 * of its a=group lines too (a group left empty goes), as SDP text; NULL
 * when it has none. @stripped (a new array, set only then) says which were
 * taken, in order. */
gchar *pcr_sdp_strip_application (const GstSDPMessage * offer,
    GPtrArray ** stripped);

/* The device's @answer (to the offer with the @stripped m-lines taken out)
 * with a rejected m-line put back at each one's position ("m=application
 * 0 <proto> <formats>", "c=IN IP4 0.0.0.0", its a=mid), kept out of the
 * a=group lines, so the viewer's browser takes it as the answer to the
 * offer it made. Fails when @answer is not SDP or has not as many m-lines
 * as the offer the device got (@offer_mlines, the viewer's, less
 * @stripped). */
gchar *pcr_sdp_restore_rejected (const gchar * answer, guint offer_mlines,
    const GPtrArray * stripped, GError ** error);

/* The index on the device's side of the viewer's m-line @mline: FALSE when
 * it is one of @stripped (what the viewer sends for it is dropped). */
gboolean pcr_sdp_map_mline (const GPtrArray * stripped, guint mline,
    guint * device_mline);

G_END_DECLS
