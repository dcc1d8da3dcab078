/* One viewer of mqttwebrtcsink: its branch (queue, rtph264pay, webrtcbin)
 * on a tee of the element, its offer/answer and ICE negotiation, and all
 * per-viewer state (docs/architecture.md, "A viewer's session"). Every
 * function runs on the owner's GMainContext; webrtcbin's callbacks only copy
 * what they got and post it there. */
#pragma once

#include <gst/gst.h>

#include "pcr-message.h"
#include "pcr-sdp.h"
#include "pcr-signaller.h"

G_BEGIN_DECLS

/* Plumbing failures (an element missing or refusing to link), apart from
 * the contract's codes in PCR_MESSAGE_ERROR; a viewer hears "internal". */
#define PCR_VIEWER_ERROR (pcr_viewer_error_quark ())
GQuark pcr_viewer_error_quark (void);

typedef enum
{
  PCR_VIEWER_ERROR_CREATE,      /* cannot create an element */
  PCR_VIEWER_ERROR_LINK,        /* cannot link the branch or to the tee */
} PcrViewerError;

typedef struct _PcrViewer PcrViewer;

/* The most renditions a viewer can be switched between. */
#define PCR_MAX_RENDITIONS 2

/* What the owning element lends its viewers; valid while any viewer is. */
typedef struct
{
  GstBin *bin;                  /* where the branches live */
  GMainContext *context;        /* where everything about viewers runs */
  PcrSignaller *signaller;      /* how to reach the viewers */
  /* The viewer's connection is up, DTLS done: it needs a key frame. */
  void (*connected) (PcrViewer * viewer, gpointer user_data);
  /* The viewer asks for a key frame of @rendition (its browser's PLI or
   * FIR, or a switch to it): the host rate-limits. */
  void (*key_unit) (PcrViewer * viewer, guint rendition, gpointer user_data);
  /* The viewer cannot go on: remove it (saying bye if @send_bye). */
  void (*failed) (PcrViewer * viewer, gboolean send_bye, const gchar * why,
      gpointer user_data);
  /* pcr_viewer_close() is done, the branch is gone: free the viewer. */
  void (*closed) (PcrViewer * viewer, gpointer user_data);
  /* A text the viewer sent on its control channel (checked: at most
   * PCR_CONTROL_MAX_DATA bytes, within the rate). */
  void (*control) (PcrViewer * viewer, const gchar * data,
      gpointer user_data);
  gpointer user_data;
} PcrViewerHost;

/* The element's settings as they were when the offer came. */
typedef struct
{
  const gchar *stun_server;     /* nullable */
  const gchar *turn_server;     /* nullable */
  const gchar *ice_addresses;   /* nullable, comma-separated */
  gint playout_delay_max_ms;    /* -1: no playout-delay extension */
  PcrH264Profile profile;       /* of the stream */
  gboolean fec;                 /* answer RED/ULPFEC when the offer has them */
  GstElement *audio_tee;        /* nullable: the Opus stream's tee */
  gboolean control;             /* accept a "control" data channel */
} PcrViewerSettings;

/* Reads @offer (an offer message) and chooses the format to send; an error
 * is in PCR_MESSAGE_ERROR, its code the one to answer. */
PcrViewer *pcr_viewer_new (const PcrViewerHost * host, const gchar * id,
    const PcrMessage * offer, const PcrViewerSettings * settings,
    GError ** error);

/* Builds the branch, links it to the @n_tees renditions' tees (best
 * first; @tees[@rendition] is the one sent until a switch) and starts
 * negotiating: the answer, candidates and errors go to the viewer from now
 * on. On failure the viewer is to be closed. */
gboolean pcr_viewer_start (PcrViewer * viewer, GstElement ** tees,
    guint n_tees, guint rendition, GError ** error);

/* Before gathering: no UPnP-IGD port mapping, and candidates only on the
 * comma-separated @ice_addresses when set (the element's ice-addresses);
 * for the relay's webrtcbin too. */
void pcr_webrtc_configure_ice (GstElement * webrtc,
    const gchar * ice_addresses, GstObject * owner);

/* The session whose branch holds @object (at any depth), or NULL; any
 * thread. */
gchar *pcr_viewer_session_of (GstObject * object);

/* The viewer's offer sends Opus audio the device could play (talk-back). */
gboolean pcr_viewer_offers_talk (PcrViewer * viewer);

/* Before pcr_viewer_start: the viewer is the talker; its audio is decoded
 * and played into @sink_description (a gst-launch description of a bin
 * taking raw audio). Its answer's audio is then sendrecv. */
void pcr_viewer_set_talkback (PcrViewer * viewer,
    const gchar * sink_description);

/* Sends @data on the viewer's control channel, when it has an open one. */
void pcr_viewer_send_control (PcrViewer * viewer, const gchar * data);

/* Control messages from the viewer dropped so far: over the size or the
 * rate, or binary. */
guint pcr_viewer_get_control_dropped (PcrViewer * viewer);

/* Moves the viewer to @rendition at that rendition's next key frame (the
 * caller asks for one); until then it keeps getting the one it has (unless
 * cut off). Switching to the one it has cancels a switch and a cut. */
void pcr_viewer_switch (PcrViewer * viewer, guint rendition);

/* Sends the viewer nothing until its next switch takes effect: moving down
 * from a congested link, the larger picture's frames would only queue
 * ahead of the smaller one's key frame. FALSE (nothing done) before DTLS
 * is through. */
gboolean pcr_viewer_cut (PcrViewer * viewer);

/* The rendition being sent, and (@pending, nullable) the one it is
 * switching to or -1. */
guint pcr_viewer_get_rendition (PcrViewer * viewer, gint * pending);

/* What the viewer's RTCP said, for its bandwidth estimate. */
typedef struct
{
  gboolean have_twcc;           /* transport-wide-cc feedback so far */
  guint twcc_sent_bps, twcc_recv_bps;
  gdouble twcc_loss;            /* 0..1 */
  gint64 twcc_delta_of_delta_ns;
  gboolean have_rr;             /* a receiver report so far */
  gdouble rr_fraction_lost;     /* 0..1, of the last report */
  gdouble rr_rtt_s;             /* -1 when unknown */
  guint rr_packets_lost;        /* cumulative */
  guint rr_highest_seq;         /* extended highest sequence number the
                                 * report acknowledges: a new report while
                                 * media flows changes it */
} PcrViewerFeedback;

/* Reads the viewer's RTCP statistics now (context thread, a few locks). */
void pcr_viewer_get_feedback (PcrViewer * viewer,
    PcrViewerFeedback * feedback);

/* Bounds the retransmissions the viewer may get to @bps (0: unbounded):
 * requests beyond it are dropped, as the network would. */
void pcr_viewer_set_rtx_budget (PcrViewer * viewer, guint bps);

/* Sends each retransmission once or twice (@copies 1 or 2), the second
 * against the same budget: at high random loss a repair lost again costs
 * the browser another NACK round (pcr_rtx_copies). */
void pcr_viewer_set_rtx_copies (PcrViewer * viewer, guint copies);

/* Packets the viewer asked for again (its NACKs, each lost packet one
 * request, passed or not) and packets retransmitted to it, so far. */
void pcr_viewer_get_retransmissions (PcrViewer * viewer, guint * nacks,
    guint * retransmitted);

/* Whether the viewer's answer has FEC (ULPFEC in RED): FEC was allowed
 * and its offer had red/90000 and ulpfec/90000 (and, when it offered
 * retransmission, an rtx format for RED: with RED every packet, and so
 * every retransmission, is RED). */
gboolean pcr_viewer_has_fec (PcrViewer * viewer);

/* Sends FEC packets for @percent of the viewer's media packets (0: none);
 * nothing for a viewer without FEC. */
void pcr_viewer_set_fec_percentage (PcrViewer * viewer, guint percent);

/* Answers the viewer's trickled candidate message. */
void pcr_viewer_add_remote_candidate (PcrViewer * viewer,
    const PcrMessage * msg);

/* Once a second: sends a bulk answer whose gathering is slow, and gives up
 * (host->failed) on a viewer that did not connect in time or went quiet. */
void pcr_viewer_tick (PcrViewer * viewer, gint64 now_us);

/* Stops all callbacks and unlinks the branch at the next idle moment of its
 * tee pad; host->closed runs, later, when the branch is freed. */
void pcr_viewer_close (PcrViewer * viewer);

/* For when the context no longer runs: frees the branch of a viewer, closed
 * or not, at once (host->closed does not run). */
void pcr_viewer_close_now (PcrViewer * viewer);

void pcr_viewer_free (PcrViewer * viewer);

const gchar *pcr_viewer_get_id (PcrViewer * viewer);

/* Answers @id's viewer with an error (and logs it). */
void pcr_viewer_reply_error (PcrSignaller * signaller, const gchar * id,
    PcrErrorCode code, const gchar * message);

G_END_DECLS
