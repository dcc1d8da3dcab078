/* The per-viewer bandwidth estimate and rendition choice: pure decision
 * logic (GLib only, no GStreamer) that the element feeds with each
 * viewer's transport-wide congestion control summaries and RTCP receiver
 * reports about every 250 ms, and asks which rendition the viewer should
 * be on and what bitrate each rendition's encoder should run at. Every
 * number it is given comes from the network and may be hostile: NaN,
 * negative or huge values are ignored or clamped. docs/networks.md
 * explains the constants below. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The default renditions (docs/networks.md): 1280x720 between these... */
#define PCR_ADAPT_HIGH_MIN_BPS 1200000
#define PCR_ADAPT_HIGH_MAX_BPS 2000000
/* ...and 640x360 between these. */
#define PCR_ADAPT_LOW_MIN_BPS 150000
#define PCR_ADAPT_LOW_MAX_BPS 400000

/* The estimate's floor: under the low rendition's minimum, so that the low
 * rendition's bitrate can follow a very slow link down to its floor. */
#define PCR_ADAPT_ESTIMATE_MIN_BPS 100000
/* The estimate's ceiling: the high maximum divided by the headroom
 * (PCR_ADAPT_HEADROOM) with a little margin, so a clean viewer's estimate
 * keeps the high rendition at its maximum. */
#define PCR_ADAPT_ESTIMATE_MAX_BPS 2500000
/* Where a new viewer starts: at the ceiling, since the picture was sent at
 * the high maximum before anything adapted and most viewers can take it; a
 * slower link shows within a few feedback reports. */
#define PCR_ADAPT_ESTIMATE_START_BPS PCR_ADAPT_ESTIMATE_MAX_BPS

/* One viewer's bandwidth estimate (bit/s): min of a loss-based and a
 * delay-based part, in the spirit of Google Congestion Control
 * (draft-ietf-rmcat-gcc-02), simplified. */
typedef struct _PcrEstimator PcrEstimator;

PcrEstimator *pcr_estimator_new (guint start_bps, guint min_bps,
    guint max_bps);
void pcr_estimator_free (PcrEstimator * est);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrEstimator, pcr_estimator_free)

/* TWCC feedback summary since the last call (rtpsession twcc-stats):
 * sent/received bitrate in bit/s, loss 0..1, avg delta-of-delta in ns
 * (positive and growing: queues are building up). */
void pcr_estimator_on_twcc (PcrEstimator * est, gint64 now_us,
    guint sent_bps, guint recv_bps, gdouble loss, gint64 delta_of_delta_ns);
/* An RTCP receiver report: fraction lost 0..1, round trip in s (<0
 * unknown). Its loss counts only while no TWCC feedback arrives (a peer
 * without TWCC); its round trip always sets how long a decrease holds. */
void pcr_estimator_on_receiver_report (PcrEstimator * est, gint64 now_us,
    gdouble fraction_lost, gdouble rtt_s);
/* Called with the bitrate the viewer is being sent now (its rendition's
 * bitrate), so the estimate does not grow far above what was tried. 0:
 * unknown. */
void pcr_estimator_set_sending (PcrEstimator * est, guint bps);
guint pcr_estimator_get_bps (const PcrEstimator * est);
/* What the link carried by the last TWCC feedback (bit/s; 0: none yet),
 * and (@at_us, nullable) when that feedback came (-1: none yet). */
guint pcr_estimator_get_received_bps (const PcrEstimator * est,
    gint64 * at_us);
/* The loss averaged over about 2 s (0..1): what forward error correction
 * follows (pcr_fec_percentage). */
gdouble pcr_estimator_get_loss (const PcrEstimator * est);
/* The FEC the viewer is sent on top of its media, in percent of its media
 * packets (0: none). FEC packets are about as large as media packets and
 * count in what the feedback says was sent, so the share of the estimate
 * left for media shrinks by it (pcr_estimator_get_media_bps), and what
 * pcr_estimator_set_sending is told is taken as the media alone. */
void pcr_estimator_set_fec_percentage (PcrEstimator * est, guint percent);
/* The estimate less the FEC share: the media bitrate the link can take. */
guint pcr_estimator_get_media_bps (const PcrEstimator * est);
/* Overuse now, or loss > 10 %. */
gboolean pcr_estimator_congested (const PcrEstimator * est);
/* The last TWCC report showed the link carrying a tenth less than was
 * sent, loss aside: a queue building up (not yet overuse on its own). */
gboolean pcr_estimator_queue_growing (const PcrEstimator * est);
/* Congested beyond doubt: loss >= 25 % (a bottleneck or a policer at
 * three quarters of the rate or less; random loss is not that high), or
 * the link carried a tenth less than was sent in two reports in a row. */
gboolean pcr_estimator_severe (const PcrEstimator * est);

/* Renditions, best first: index 0 is the high one. */
typedef struct
{
  guint min_bps, max_bps;
} PcrRenditionRange;

/* The most renditions a chooser takes. */
#define PCR_ADAPT_MAX_RENDITIONS 8

/* One viewer's rendition with hysteresis and probing. It starts on
 * rendition 0. */
typedef struct _PcrRenditionChooser PcrRenditionChooser;

PcrRenditionChooser *pcr_rendition_chooser_new (guint n_renditions,
    const PcrRenditionRange * ranges, gint64 now_us);
void pcr_rendition_chooser_free (PcrRenditionChooser * chooser);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrRenditionChooser,
    pcr_rendition_chooser_free)

/* Returns the rendition the viewer should be on now (the caller switches
 * at the next key frame of that rendition); the estimate it compares with
 * the renditions' ranges is the media share (pcr_estimator_get_media_bps). */
guint pcr_rendition_chooser_update (PcrRenditionChooser * chooser,
    gint64 now_us, const PcrEstimator * est);
guint pcr_rendition_chooser_get (const PcrRenditionChooser * chooser);
/* During a rate probe (before a move up): the bitrate the viewer's own
 * rendition should be sent at (1.1 x the minimum of the rendition above,
 * for the encoder to get there sooner), so the estimate sees whether the
 * link carries that minimum; 0 otherwise. The move up follows once the
 * link carried about that much in four TWCC reports in a row (a second)
 * without congestion; congestion, or one report of a queue growing, ends
 * the probe and doubles the wait before the next one.
 * Where the rate is not reached within 3 s (the caller could not raise
 * that rendition: other viewers share it; a still scene) the viewer moves
 * up unproven. */
guint pcr_rendition_chooser_probe_bps (const PcrRenditionChooser * chooser);
/* Whether the viewer is trying a better rendition now (the probe's window
 * after a switch up): its estimate does not yet speak for that
 * rendition's link, so it should not set that rendition's bitrate. */
gboolean pcr_rendition_chooser_probing (const PcrRenditionChooser * chooser,
    gint64 now_us);

/* Which percentile of its viewers' estimates a rendition's encoder
 * follows: a low one, so one slow (or lying) viewer among many neither
 * drags the others down nor pushes them up, and most viewers' links can
 * carry it. With fewer than 5 viewers it is the slowest one. */
#define PCR_ADAPT_PERCENTILE 20
/* The share of the estimate the encoder may use: the rest is left for
 * retransmissions, RTCP and the estimate's own error. */
#define PCR_ADAPT_HEADROOM 0.85

/* A rendition's encoder bitrate: a low percentile (PCR_ADAPT_PERCENTILE)
 * of the estimates of the viewers on it, times a headroom factor, clamped
 * to the range; the range's max when it has no viewers. */
guint pcr_rendition_bitrate (const guint * estimates, guint n,
    const PcrRenditionRange * range);

/* The retransmissions a viewer may get (bit/s), given its estimate and
 * the bitrate of the picture it is sent: what the estimate leaves beside
 * the picture, and at least half the picture's rate (1 Mbit/s beside 2:
 * 20 % random loss, the repairs of repairs included, needs a quarter).
 * Where the link is full, repairs get at most a third of what it carries,
 * so they cannot crowd the picture out (resending every packet a browser
 * asks for again, each round trip, kept a 500 kbit/s link full of repairs
 * for ten seconds). */
guint pcr_rtx_budget (guint estimate_bps, guint sending_bps);

/* How often each retransmission is sent (1 or 2; docs/networks.md,
 * "Retransmission"). A browser asks for a packet again only after a
 * round-trip time it does not know as a receive-only peer (Chromium
 * assumes 100 ms): at 10 % loss each way, one repair in five takes another
 * round (its NACK or the repair lost), one in thirty a third, and a frame
 * held that long is a freeze. Twice, the repair is lost only 1 % of the
 * time. Twice from PCR_ADAPT_RTX_TWICE_LOSS of average loss, once again
 * below PCR_ADAPT_RTX_ONCE_LOSS (hysteresis); never from
 * PCR_ADAPT_RTX_TWICE_MAX_LOSS on (loss the estimate takes for congestion:
 * a 500 kbit/s bottleneck averaged 24 %) nor while @severe (more packets
 * make a bottleneck worse). The second copy comes out of the same budget
 * (pcr_rtx_budget). */
#define PCR_ADAPT_RTX_TWICE_LOSS 0.05
#define PCR_ADAPT_RTX_ONCE_LOSS 0.03
#define PCR_ADAPT_RTX_TWICE_MAX_LOSS 0.15
guint pcr_rtx_copies (guint current, gdouble loss, gboolean severe);

/* Forward error correction (ULPFEC in RED) by measured loss
 * (docs/networks.md, "FEC"). Off below PCR_ADAPT_FEC_ON_LOSS of average
 * loss: retransmission repairs a little loss in one round trip, and FEC
 * costs its share of the bitrate on every packet. */
#define PCR_ADAPT_FEC_ON_LOSS 0.02
/* Once on, off again only below this: hysteresis, so a loss that hovers
 * around the threshold does not switch it every few reports. */
#define PCR_ADAPT_FEC_OFF_LOSS 0.01
/* While on: this many percent of FEC per percent of loss. One XOR FEC
 * packet repairs one loss in its group; with 1/(3 x loss) media packets
 * per group, a group loses two or more about 4 % of the time at 3 % loss
 * and 12 % at 10 %, and retransmission repairs those. */
#define PCR_ADAPT_FEC_PER_LOSS 3
/* The least FEC worth sending: groups of at most 10 media packets... */
#define PCR_ADAPT_FEC_MIN_PERCENT 10
/* ... and the most: beyond one FEC packet per two media packets the media
 * share shrinks faster than the repairs grow (loss that high is congestion,
 * which the estimate handles by sending less). */
#define PCR_ADAPT_FEC_MAX_PERCENT 50
/* Steps of the percentage. It goes up as soon as the loss wants a step
 * more, down only when it wants two steps less: the 2 s average still
 * wanders by a percent or so at 10 % loss. */
#define PCR_ADAPT_FEC_STEP 5

/* The FEC percentage (0, or PCR_ADAPT_FEC_MIN_PERCENT ..
 * PCR_ADAPT_FEC_MAX_PERCENT in steps of PCR_ADAPT_FEC_STEP) for a viewer
 * sent @current percent now whose average loss is @loss (0..1; NaN or
 * negative is none). */
guint pcr_fec_percentage (guint current, gdouble loss);

G_END_DECLS
