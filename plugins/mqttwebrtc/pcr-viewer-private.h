/* What pcr-viewer.c and pcr-viewer-media.c share of a viewer: its Peer
 * (the refcounted part webrtcbin's threads may touch), the viewer itself
 * and the events its threads post to the context. Not for the element. */
#pragma once

#include <gst/gst.h>
#include <gst/rtp/rtp.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

#include "pcr-viewer.h"

G_BEGIN_DECLS

/* The data channel a viewer may steer the device on, and what one viewer
 * may send on it: 50 messages a second, a second's worth at once. */
#define CONTROL_LABEL "control"
#define CONTROL_RATE 50.0
/* The talker's jitter buffer (webrtcbin's default is 200 ms): talk-back
 * should add little delay, and a voice tolerates a lost packet (Opus PLC)
 * better than a late one. */
#define TALK_LATENCY_MS 40

typedef struct
{
  gint refcount;
  GMainContext *context;
  gchar *id;
  gint last_rtcp_s;             /* monotonic seconds, atomic */
  gint answered;                /* atomic: the create-answer promise is done */
  gint interrupted;             /* atomic: free_branch gave up on it */
  gint active;                  /* atomic: the rendition being sent */
  gint pending;                 /* atomic: the one to switch to at its next
                                 * key frame, or -1 */
  gint cut;                     /* atomic: nothing is sent until a switch
                                 * takes effect */
  gint idle_pending;            /* atomic: tee pads not yet unlinked */
  gint rtx_budget_bps;          /* atomic: retransmissions' share of the
                                 * link, 0: unbounded */
  GMutex rtx_lock;              /* the bucket below (RTCP threads) */
  gdouble rtx_tokens;           /* bytes that may be resent now */
  gint64 rtx_refill_us;
  guint rtx_refused;            /* requests dropped over the budget */
  gint rtx_copies;              /* atomic: each repair sent this often */
  guint rtx_doubled;            /* repairs sent twice */
  gint switch_marked;           /* atomic: a switch's first key frame is on
                                 * its way to the payloader */
  gint secured;                 /* atomic: DTLS is done, media can flow */
  gint keyed;                   /* atomic: the branch has had a key frame
                                 * since */
  gint rtx_from_seq;            /* under rtx_lock: after a switch, the first
                                 * packet worth repairing; -1: any */
  gint64 rtx_from_us;           /* when that was set */
  guint rtx_stale;              /* requests dropped as from before it */
  guint rtx_requests;           /* every request, passed or dropped */
  gint fec_packets;             /* atomic: FEC packets sent */
  /* set before the branch is built, then read only: with FEC, what the
   * RED encoder's probes need (the playout-delay extension nullable) */
  gint ulpfec_pt;               /* -1: no FEC */
  guint twcc_id;                /* 0: no transport-wide-cc extension */
  GstRTPHeaderExtension *playout_delay;
  PcrViewer *viewer;            /* context only; NULL once closing */
  /* the control channel: set before the branch is built, then read only */
  gboolean control;             /* a "control" channel is accepted */
  GstBin *bin;                  /* the host's, for the talk-back bin */
  gchar *talkback;              /* the talker's sink description, or NULL */
  GMutex control_lock;          /* what follows */
  GstWebRTCDataChannel *channel;        /* the accepted one, or NULL */
  gdouble control_tokens;       /* messages that may come now */
  gint64 control_refill_us;
  guint control_dropped;        /* over the size or rate, or binary */
  GstElement *talk_bin;         /* the talker's decoder and sink */
  GPtrArray *drains;            /* fakesinks for streams nobody plays */
} Peer;

struct _PcrViewer
{
  PcrViewerHost host;
  Peer *peer;
  const gchar *id;              /* peer->id */

  /* from the offer */
  gboolean trickle;
  GstSDPMessage *offer;         /* until handed to webrtcbin */
  PcrH264Choice *choice;
  GStrv mids;                   /* the offer's a=mid per m-line ("" if none) */
  GStrv offer_ice_uris;         /* its iceServers as webrtcbin URIs */
  guint playout_delay_id;       /* 0: no playout-delay extension */
  guint32 ssrc;                 /* of the video */
  guint32 audio_ssrc;
  gboolean fec;                 /* RED and ULPFEC answered */
  PcrOpusChoice *opus;          /* the offer's audio, or NULL */
  gboolean playout_delay_directed;
  gint playout_delay_max_ms;

  /* the element's settings at the offer */
  gchar *stun_server, *turn_server, *ice_addresses;

  /* the branch */
  GstElement *funnel, *queue, *pay, *webrtc;
  GstElement *audio_tee;        /* the element's, or NULL: no audio sent */
  GstElement *audio_queue, *audio_pay;
  GstPad *audio_tee_pad;
  gulong audio_idle_probe;
  GstElement *rtpbin;           /* webrtcbin's, for the feedback */
  GstWebRTCRTPTransceiver *trans;       /* its FEC percentage */
  GstElement *tees[PCR_MAX_RENDITIONS];
  GstPad *tee_pads[PCR_MAX_RENDITIONS];
  gulong idle_probes[PCR_MAX_RENDITIONS];
  guint n_tees;
  guint twcc_id;                /* 0: no transport-wide-cc extension */
  gint64 switch_us;             /* when the pending switch was asked for */
  GstPromise *answer_promise;   /* create-answer's, until the branch goes */

  /* negotiation */
  gint64 created_us;
  gint64 answer_set_us;         /* 0 until the local description is set */
  gboolean answer_sent;
  gboolean gathering_done;
  guint turn_servers;           /* webrtcbin took */
  guint relay_candidates;       /* gathered so far */
  GSource *relay_grace;         /* bulk: the wait for the last of them */
  gboolean connected;           /* ICE is */
  gboolean secured;             /* DTLS is too: media flows */
  guint remote_candidates;
};

/* Each element of a viewer's branch carries its session id: an error from
 * inside (webrtcbin's nicesrc, sctpenc, ...) ends that session, not the
 * pipeline (pcr_viewer_session_of). */

typedef enum
{
  EV_LOCAL_CANDIDATE,
  EV_GATHERING_DONE,
  EV_CONNECTION,
  EV_KEY_UNIT,                  /* the viewer asked for a key frame */
  EV_SWITCHED,                  /* it now gets rendition ev->mline */
  EV_ANSWER,
  EV_CONTROL,                   /* a message on the control channel */
  EV_REFUSE_CHANNEL,            /* a data channel not accepted */
} EventKind;

typedef struct
{
  Peer *peer;
  EventKind kind;
  guint mline;
  gchar *candidate;
  GstWebRTCSessionDescription *answer;  /* EV_ANSWER: a copy, or NULL */
  gchar *error;                 /* EV_ANSWER without answer: why */
  gboolean failed;
  gboolean connected;
  gboolean secured;
  gchar *text;                  /* EV_CONTROL */
  GstWebRTCDataChannel *channel;        /* EV_REFUSE_CHANNEL */
} PeerEvent;

Peer *pcr_peer_ref (Peer * peer);
void pcr_peer_unref (Peer * peer);
/* For g_signal_connect_data: drops the closure's reference. */
void pcr_peer_closure_unref (gpointer data, GClosure * closure);
PeerEvent *pcr_peer_event_new (Peer * peer, EventKind kind);
/* Hands @ev to the context (handle_peer_event), which frees it. */
void pcr_peer_event_post (PeerEvent * ev);
/* Marks @element as part of session @id's branch (pcr_viewer_session_of). */
void pcr_viewer_tag (GstElement * element, const gchar * id);

/* pcr-viewer-media.c: the audio m-line, talk-back, the control channel */
void pcr_viewer_refuse_unserved_audio (PcrViewer * viewer,
    GstSDPMessage * sdp);
void pcr_viewer_refuse_channel (PcrViewer * viewer,
    GstWebRTCDataChannel * channel);
void pcr_viewer_on_data_channel (GstElement * webrtc,
    GstWebRTCDataChannel * channel, Peer * peer);
void pcr_viewer_on_pad_added (GstElement * webrtc, GstPad * pad,
    Peer * peer);
gboolean pcr_viewer_link_audio (PcrViewer * viewer, GError ** error);
gboolean pcr_viewer_link_audio_tee (PcrViewer * viewer, GError ** error);

G_END_DECLS
