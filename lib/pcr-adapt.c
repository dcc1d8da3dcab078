/* The per-viewer bandwidth estimate and the rendition chooser (see
 * pcr-adapt.h and docs/networks.md). Rates are kept as gdouble inside, so
 * no product of untrusted numbers can overflow, and clamped on the way
 * out. */
#include "pcr-adapt.h"

#include <math.h>
#include <stdlib.h>

#define MSECOND_NS G_GINT64_CONSTANT (1000000)

/* Average delta-of-delta above which queues are building up (overuse) and
 * below whose negative they are draining (underuse). At 2 Mbit/s and
 * 1200-byte packets a queue growing 1 ms per packet means the link carries
 * about a fifth less than is sent; smaller averages over a 250 ms report
 * are jitter. */
#define OVERUSE_NS (1 * MSECOND_NS)
/* The other sign of a queue building up: over rtpsession's 300 ms window
 * the link delivered less than was sent, beyond what it lost. Received /
 * (1 - loss) below sent by this share means the last packet of the window
 * waited about 30 ms longer than the first: a bottleneck's queue in its
 * first half second, before the per-packet delta-of-delta (averaged over
 * key frames and small packets alike) passes OVERUSE_NS. */
#define QUEUE_GROWTH 0.10
/* ... in this many reports in a row (two, about half a second: one key
 * frame's burst on a fast link stretches one window, not two). */
#define QUEUE_GROWTH_REPORTS 2
/* Larger delta-of-delta values are nonsense (a hostile or broken peer). */
#define DOD_LIMIT_NS (1000 * MSECOND_NS)
/* Delay-based decrease on overuse: to this share of what the link carried
 * (GCC's beta). */
#define DELAY_BETA 0.85
/* Increase while the link is clean: 8 % per second (GCC's eta). */
#define INCREASE_PER_S 0.08
/* Neither part grows above this many times what the viewer is sent: the
 * estimate cannot see more than was tried. */
#define CEILING_FACTOR 1.5
/* Loss up to this RTX repairs unnoticed; above it is congestion ... */
#define LOSS_HIGH 0.10
/* ... and at this much there is no doubt (a bottleneck or a policer at
 * three quarters of the rate or less; random loss is not that high). */
#define LOSS_SEVERE 0.25
/* Loss-based decrease: to what the link carried times (1 - this * loss),
 * GCC's factor, taken from the received rate so it does not compound. */
#define LOSS_DECREASE 0.5
/* With no delay trouble, loss must stay above this on average over the
 * last 2 s before the loss-based part acts: a policer drops without
 * queueing, but random loss of LOSS_HIGH comes and goes around it, and
 * acting on it would spiral down (the encoder follows the estimate, the
 * loss does not follow the encoder). */
#define LOSS_SUSTAINED 0.15
/* Weight of a 250 ms report in that 2 s average. */
#define LOSS_SLOW_ALPHA 0.125
/* Weight of a new loss report in the smoothed loss: half, so one report of
 * a real bottleneck's 50 % shows at once while a single unlucky report of
 * random loss does not. */
#define LOSS_ALPHA 0.5
/* Overuse seen this recently confirms that loss is congestion. */
#define OVERUSE_MEMORY_US (1 * G_USEC_PER_SEC)
/* After a decrease nothing grows for this long (or two round trips if
 * longer): the queue needs that long to drain and the feedback to show it. */
#define HOLD_US (500 * G_GINT64_CONSTANT (1000))
/* TWCC feedback older than this is no longer "now"; receiver reports then
 * carry the loss alone. */
#define TWCC_STALE_US (1 * G_USEC_PER_SEC)
/* Report gaps longer than this grow the estimate by no more than this. */
#define MAX_STEP_US (1 * G_USEC_PER_SEC)
/* A round trip longer than this is nonsense. */
#define RTT_LIMIT_S 10.0

struct _PcrEstimator
{
  gdouble min_bps, max_bps;
  gdouble delay_bps, loss_bps;
  gdouble sending_bps;
  gdouble last_recv_bps;
  gdouble loss;                 /* smoothed, 0..1; 0 before any report */
  gdouble loss_slow;            /* the 2 s average */
  gint64 last_dod_ns;
  guint growing_reports;        /* TWCC reports in a row beyond QUEUE_GROWTH */
  gint64 last_twcc_us, last_rr_us;      /* -1: none yet */
  gint64 last_overuse_us, last_decrease_us;     /* -1: never */
  gdouble rtt_s;                /* < 0: unknown */
  guint fec_percent;
};

/* @value as a rate in [0, G_MAXUINT]; NaN and infinities become 0. */
static gdouble
sane_bps (gdouble value)
{
  if (!isfinite (value) || value < 0)
    return 0;
  return MIN (value, (gdouble) G_MAXUINT);
}

PcrEstimator *
pcr_estimator_new (guint start_bps, guint min_bps, guint max_bps)
{
  PcrEstimator *est = g_new0 (PcrEstimator, 1);

  est->min_bps = min_bps;
  est->max_bps = MAX (min_bps, max_bps);
  est->delay_bps = CLAMP ((gdouble) start_bps, est->min_bps, est->max_bps);
  est->loss_bps = est->delay_bps;
  est->last_twcc_us = est->last_rr_us = -1;
  est->last_overuse_us = est->last_decrease_us = -1;
  est->rtt_s = -1;
  return est;
}

void
pcr_estimator_free (PcrEstimator * est)
{
  g_free (est);
}

static gboolean
twcc_fresh (const PcrEstimator * est, gint64 now_us)
{
  return est->last_twcc_us >= 0 && now_us - est->last_twcc_us < TWCC_STALE_US;
}

static gboolean
holding (const PcrEstimator * est, gint64 now_us)
{
  gint64 hold_us = HOLD_US;

  if (est->rtt_s > 0)
    hold_us = MAX (hold_us, (gint64) (2 * est->rtt_s * G_USEC_PER_SEC));
  return est->last_decrease_us >= 0 && now_us - est->last_decrease_us <
      hold_us;
}

/* @part grown for @step_us of clean link, up to the ceiling (a part that is
 * already above it is left alone: the ceiling stops growth, it is no
 * evidence of congestion). */
static gdouble
grow (const PcrEstimator * est, gdouble part, gint64 step_us)
{
  gdouble sending = est->sending_bps * (100 + est->fec_percent) / 100;
  gdouble base = MAX (sending, est->last_recv_bps);
  gdouble ceiling = base > 0 ? base * CEILING_FACTOR : est->max_bps;
  gdouble grown = part * (1 + INCREASE_PER_S * step_us / G_USEC_PER_SEC);

  if (part >= ceiling)
    return part;
  return MIN (grown, ceiling);
}

/* Smoothed loss and the loss-based part after one loss report. @base_bps:
 * what the link carried (or, lacking that, what was sent). */
static void
update_loss (PcrEstimator * est, gint64 now_us, gdouble loss,
    gdouble base_bps, gint64 step_us)
{
  gboolean trouble;

  if (isfinite (loss)) {
    loss = CLAMP (loss, 0, 1);
    est->loss += LOSS_ALPHA * (loss - est->loss);
    est->loss_slow += LOSS_SLOW_ALPHA * (loss - est->loss_slow);
  }

  trouble = est->loss > LOSS_HIGH && (est->loss >= LOSS_SEVERE
      || (est->last_overuse_us >= 0
          && now_us - est->last_overuse_us < OVERUSE_MEMORY_US)
      || est->loss_slow > LOSS_SUSTAINED);
  if (trouble) {
    if (base_bps <= 0)
      base_bps = est->loss_bps;
    est->loss_bps = MIN (est->loss_bps,
        base_bps * (1 - LOSS_DECREASE * est->loss));
    est->last_decrease_us = now_us;
  } else if (est->loss <= LOSS_HIGH && !holding (est, now_us)) {
    est->loss_bps = grow (est, est->loss_bps, step_us);
  }
  est->loss_bps = CLAMP (est->loss_bps, est->min_bps, est->max_bps);
}

static gint64
step_since (gint64 last_us, gint64 now_us)
{
  if (last_us < 0 || now_us <= last_us)
    return 0;
  return MIN (now_us - last_us, MAX_STEP_US);
}

/* Whether the link carried noticeably less than was sent, lost packets
 * aside (QUEUE_GROWTH). */
static gboolean
queue_growing (guint sent_bps, guint recv_bps, gdouble loss)
{
  gdouble carried;

  if (!sent_bps || !isfinite (loss) || loss < 0 || loss >= 0.5)
    return FALSE;
  carried = recv_bps / (1 - loss);
  return carried < sent_bps * (1 - QUEUE_GROWTH);
}

void
pcr_estimator_on_twcc (PcrEstimator * est, gint64 now_us, guint sent_bps,
    guint recv_bps, gdouble loss, gint64 delta_of_delta_ns)
{
  gint64 step_us;
  gboolean overuse, underuse;

  g_return_if_fail (est != NULL);

  step_us = step_since (est->last_twcc_us, now_us);
  est->last_twcc_us = now_us;
  /* the link cannot deliver more than was sent; a peer claiming so lies */
  est->last_recv_bps = sent_bps > 0 ? MIN (recv_bps, sent_bps) : recv_bps;
  est->last_dod_ns = CLAMP (delta_of_delta_ns, -DOD_LIMIT_NS, DOD_LIMIT_NS);
  if (queue_growing (sent_bps, recv_bps, loss))
    est->growing_reports = MIN (est->growing_reports + 1, QUEUE_GROWTH_REPORTS);
  else
    est->growing_reports = 0;
  overuse = est->last_dod_ns > OVERUSE_NS
      || est->growing_reports >= QUEUE_GROWTH_REPORTS;
  underuse = !overuse && est->last_dod_ns < -OVERUSE_NS;

  /* the delay-based part */
  if (overuse) {
    est->last_overuse_us = now_us;
    est->delay_bps = MIN (est->delay_bps, DELAY_BETA * est->last_recv_bps);
    est->last_decrease_us = now_us;
  } else if (!underuse && !holding (est, now_us)) {
    est->delay_bps = grow (est, est->delay_bps, step_us);
  }
  est->delay_bps = CLAMP (est->delay_bps, est->min_bps, est->max_bps);

  update_loss (est, now_us, loss, est->last_recv_bps, step_us);

  /* what the link just carried with neither queues nor loss, it carries */
  if (!overuse && !underuse && est->loss <= LOSS_HIGH
      && !holding (est, now_us)) {
    gdouble carried = CLAMP (est->last_recv_bps, est->min_bps, est->max_bps);

    est->delay_bps = MAX (est->delay_bps, carried);
    est->loss_bps = MAX (est->loss_bps, carried);
  }
}

void
pcr_estimator_on_receiver_report (PcrEstimator * est, gint64 now_us,
    gdouble fraction_lost, gdouble rtt_s)
{
  gint64 step_us;
  gdouble carried;

  g_return_if_fail (est != NULL);

  if (isfinite (rtt_s) && rtt_s >= 0)
    est->rtt_s = MIN (rtt_s, RTT_LIMIT_S);
  step_us = step_since (est->last_rr_us, now_us);
  est->last_rr_us = now_us;
  /* with TWCC the same loss is already counted, per 250 ms */
  if (twcc_fresh (est, now_us))
    return;
  /* what got through, as TWCC's received rate */
  carried = est->sending_bps;
  if (isfinite (fraction_lost))
    carried *= 1 - CLAMP (fraction_lost, 0, 1);
  update_loss (est, now_us, fraction_lost, carried, step_us);
}

void
pcr_estimator_set_sending (PcrEstimator * est, guint bps)
{
  g_return_if_fail (est != NULL);

  est->sending_bps = bps;
}

guint
pcr_estimator_get_bps (const PcrEstimator * est)
{
  g_return_val_if_fail (est != NULL, 0);

  return (guint) sane_bps (MIN (est->delay_bps, est->loss_bps));
}

guint
pcr_estimator_get_received_bps (const PcrEstimator * est, gint64 * at_us)
{
  g_return_val_if_fail (est != NULL, 0);

  if (at_us)
    *at_us = est->last_twcc_us;
  return (guint) sane_bps (est->last_recv_bps);
}

gdouble
pcr_estimator_get_loss (const PcrEstimator * est)
{
  g_return_val_if_fail (est != NULL, 0);

  return est->loss_slow;
}

void
pcr_estimator_set_fec_percentage (PcrEstimator * est, guint percent)
{
  g_return_if_fail (est != NULL);

  est->fec_percent = MIN (percent, 100);
}

guint
pcr_estimator_get_media_bps (const PcrEstimator * est)
{
  g_return_val_if_fail (est != NULL, 0);

  return (guint) ((guint64) pcr_estimator_get_bps (est) * 100 /
      (100 + est->fec_percent));
}

static gboolean
overuse_now (const PcrEstimator * est)
{
  return est->last_twcc_us >= 0 && (est->last_dod_ns > OVERUSE_NS
      || est->growing_reports >= QUEUE_GROWTH_REPORTS);
}

gboolean
pcr_estimator_congested (const PcrEstimator * est)
{
  g_return_val_if_fail (est != NULL, FALSE);

  return overuse_now (est) || est->loss > LOSS_HIGH;
}

gboolean
pcr_estimator_queue_growing (const PcrEstimator * est)
{
  g_return_val_if_fail (est != NULL, FALSE);

  return est->last_twcc_us >= 0 && est->growing_reports > 0;
}

gboolean
pcr_estimator_severe (const PcrEstimator * est)
{
  g_return_val_if_fail (est != NULL, FALSE);

  /* a queue that grew over two reports is already two reports of
   * evidence: waiting for a third only loses more of the picture */
  return est->loss >= LOSS_SEVERE || (est->last_twcc_us >= 0
      && est->growing_reports >= QUEUE_GROWTH_REPORTS);
}

/* The chooser. */

/* Congestion must last this long to move a viewer down (unless severe):
 * two reports in a row, so one burst of jitter or loss does not flap the
 * picture. Longer costs frozen time: once a bottleneck's queue is full
 * every further 250 ms on the larger picture loses about a key frame's
 * worth of packets (seen with 500 ms: the page showed the smaller picture
 * 2 s after a 1 Mbit/s bottleneck began). */
#define DOWN_SUSTAINED_US (250 * G_GINT64_CONSTANT (1000))
/* Severely congested, a viewer moves down while its estimate is under this
 * many times its rendition's minimum: the first reports of a bottleneck
 * still count what got through before it (a 1 Mbit/s bottleneck's first
 * overuse report put the estimate at 1.225 Mbit/s, over 720p's 1.2, and
 * the move waited for the next report). */
#define DOWN_SEVERE_MARGIN 1.25
/* How long the link must be clean before a viewer probes the rendition
 * above, at first... */
#define BACKOFF_START_US (4 * G_USEC_PER_SEC)
/* ... doubled after each failed probe, up to this: a viewer is back on
 * the high rendition within 15 s after a bottleneck goes. */
#define BACKOFF_MAX_US (8 * G_USEC_PER_SEC)
/* Before moving up, the viewer's own rendition is sent at the minimum of
 * the one above (a rate probe: pcr_rendition_chooser_probe_bps): a link
 * that cannot carry it shows congestion while the picture stays small,
 * instead of the larger rendition's key frame (tens of kilobytes) stalling
 * in its queue. The probe succeeds once the link carried this share of
 * that rate without congestion (an encoder takes a second or two to
 * reach a new bitrate)... */
#define RATE_PROBE_REACHED 0.9
/* ... in this many TWCC reports in a row (a second): a token bucket's
 * burst and its queue let more than the link's rate through until they
 * are full, for longer the less the probe asks above it (tc tbf at 1
 * Mbit/s with a 16 kB bucket and a 150 ms queue carried 1.09-1.14 Mbit/s
 * in two reports in a row, then the queue grew). */
#define RATE_PROBE_REACHED_REPORTS 4
/* The probe asks the encoder for this many times that minimum: a little
 * above, so the rate needed passes sooner (x264 with its 200 ms buffer
 * reaches a new bitrate within half a second), but not far: what the
 * encoder sends above what the link carries fills the link's queue, and
 * the probe's first report of it reaches the sender only later (at 1.5
 * times, a probe through a 1 Mbit/s bottleneck sent 1.3 Mbit/s for half a
 * second and the page froze; at 1.1 times the queue absorbed it). */
#define RATE_PROBE_TARGET 1.1
/* ... and is inconclusive after this long (a still scene does not fill the
 * bitrate, or other viewers share the rendition and it was not raised):
 * the viewer then moves up unproven, as it would without rate probes. */
#define RATE_PROBE_MAX_US (3 * G_USEC_PER_SEC)
/* Congestion within this long after moving up: the probe failed. */
#define PROBE_WINDOW_US (2 * G_USEC_PER_SEC)
/* Staying up this long after a probe resets the backoff. */
#define BACKOFF_RESET_US (10 * G_USEC_PER_SEC)

struct _PcrRenditionChooser
{
  guint n;
  PcrRenditionRange ranges[PCR_ADAPT_MAX_RENDITIONS];
  guint current;
  gint64 last_switch_us;
  gint64 congested_since_us;    /* -1: not congested */
  gint64 clean_since_us;        /* -1: congested */
  gint64 probe_us;              /* when it last moved up; -1: not probing */
  gint64 rate_probe_us;         /* when the rate probe began; -1: none */
  gint64 rate_probe_end_us;     /* when the last one failed; -1: never */
  guint reached_reports;        /* reports in a row at the probe's rate */
  gint64 last_report_us;        /* the last one counted */
  gint64 backoff_us;
};

PcrRenditionChooser *
pcr_rendition_chooser_new (guint n_renditions,
    const PcrRenditionRange * ranges, gint64 now_us)
{
  PcrRenditionChooser *chooser;
  guint i;

  g_return_val_if_fail (n_renditions >= 1, NULL);
  g_return_val_if_fail (n_renditions <= PCR_ADAPT_MAX_RENDITIONS, NULL);
  g_return_val_if_fail (ranges != NULL, NULL);

  chooser = g_new0 (PcrRenditionChooser, 1);
  chooser->n = n_renditions;
  for (i = 0; i < n_renditions; i++)
    chooser->ranges[i] = ranges[i];
  chooser->last_switch_us = now_us;
  chooser->congested_since_us = -1;
  chooser->clean_since_us = now_us;
  chooser->probe_us = -1;
  chooser->rate_probe_us = chooser->rate_probe_end_us = -1;
  chooser->last_report_us = -1;
  chooser->backoff_us = BACKOFF_START_US;
  return chooser;
}

void
pcr_rendition_chooser_free (PcrRenditionChooser * chooser)
{
  g_free (chooser);
}

static void
switch_to (PcrRenditionChooser * chooser, guint index, gint64 now_us)
{
  chooser->current = index;
  chooser->last_switch_us = now_us;
}

/* The best rendition below the current one whose minimum @bps reaches, or
 * the lowest. */
static guint
fitting_below (const PcrRenditionChooser * chooser, guint bps)
{
  guint i;

  for (i = chooser->current + 1; i < chooser->n - 1; i++) {
    if (chooser->ranges[i].min_bps <= bps)
      return i;
  }
  return chooser->n - 1;
}

guint
pcr_rendition_chooser_update (PcrRenditionChooser * chooser, gint64 now_us,
    const PcrEstimator * est)
{
  gboolean congested, severe;
  guint bps;

  g_return_val_if_fail (chooser != NULL, 0);
  g_return_val_if_fail (est != NULL, chooser->current);

  congested = pcr_estimator_congested (est);
  severe = pcr_estimator_severe (est);
  bps = pcr_estimator_get_media_bps (est);
  if (congested) {
    chooser->clean_since_us = -1;
    if (chooser->congested_since_us < 0)
      chooser->congested_since_us = now_us;
  } else {
    chooser->congested_since_us = -1;
    if (chooser->clean_since_us < 0)
      chooser->clean_since_us = now_us;
  }

  if (chooser->probe_us >= 0) {
    gint64 up_us = now_us - chooser->probe_us;

    if (up_us < PROBE_WINDOW_US && congested) {
      /* the link cannot take it: back down at once, wait longer next time */
      chooser->probe_us = -1;
      chooser->backoff_us = MIN (2 * chooser->backoff_us, BACKOFF_MAX_US);
      switch_to (chooser, chooser->current + 1, now_us);
      return chooser->current;
    }
    if (up_us >= BACKOFF_RESET_US) {
      chooser->probe_us = -1;
      chooser->backoff_us = BACKOFF_START_US;
    }
  }

  if (chooser->current + 1 < chooser->n && congested && (severe ?
          bps < DOWN_SEVERE_MARGIN * chooser->ranges[chooser->current].min_bps
          : bps < chooser->ranges[chooser->current].min_bps
          && now_us - chooser->congested_since_us >= DOWN_SUSTAINED_US)) {
    chooser->probe_us = chooser->rate_probe_us = -1;
    switch_to (chooser, fitting_below (chooser, bps), now_us);
    return chooser->current;
  }

  /* the estimate cannot see more than the viewer is sent: going up is a
   * probe, after the link has been clean for the backoff; first at the
   * rate the rendition above needs (RATE_PROBE_US), then for real */
  if (chooser->rate_probe_us >= 0) {
    gint64 report_us;
    guint received = pcr_estimator_get_received_bps (est, &report_us);

    if (report_us != chooser->last_report_us) {
      chooser->last_report_us = report_us;
      if (received >= RATE_PROBE_REACHED *
          chooser->ranges[MAX (chooser->current, 1) - 1].min_bps)
        chooser->reached_reports++;
      else
        chooser->reached_reports = 0;
    }
    /* a probe ends at the first report of a queue building up, before it
     * is overuse: the link is not carrying the rate, and each further
     * report at it fills the queue more (through tbf at 1 Mbit/s the
     * probe was seen to pass on 1.19 and 1.21 Mbit/s let through by the
     * bucket's burst and queue, the second report already with the queue
     * growing, and the move up then froze the picture). Only the probe
     * is this quick: for moving down, one such report may be a stall
     * (pcr_estimator_severe). */
    if (congested || pcr_estimator_queue_growing (est)
        || chooser->current == 0) {
      chooser->rate_probe_us = -1;
      chooser->rate_probe_end_us = now_us;
      chooser->backoff_us = MIN (2 * chooser->backoff_us, BACKOFF_MAX_US);
    } else if (chooser->reached_reports >= RATE_PROBE_REACHED_REPORTS
        || now_us - chooser->rate_probe_us >= RATE_PROBE_MAX_US) {
      chooser->rate_probe_us = -1;
      chooser->probe_us = now_us;
      switch_to (chooser, chooser->current - 1, now_us);
    }
    return chooser->current;
  }
  if (chooser->current > 0 && !congested
      && now_us - MAX (MAX (chooser->clean_since_us, chooser->last_switch_us),
          chooser->rate_probe_end_us) >= chooser->backoff_us) {
    chooser->rate_probe_us = now_us;
    chooser->reached_reports = 0;
  }
  return chooser->current;
}

gboolean
pcr_rendition_chooser_probing (const PcrRenditionChooser * chooser,
    gint64 now_us)
{
  return chooser->probe_us >= 0 && now_us - chooser->probe_us <
      PROBE_WINDOW_US;
}

guint
pcr_rendition_chooser_probe_bps (const PcrRenditionChooser * chooser)
{
  g_return_val_if_fail (chooser != NULL, 0);

  if (chooser->rate_probe_us < 0 || chooser->current == 0)
    return 0;
  return (guint) (RATE_PROBE_TARGET *
      chooser->ranges[chooser->current - 1].min_bps);
}

guint
pcr_rendition_chooser_get (const PcrRenditionChooser * chooser)
{
  g_return_val_if_fail (chooser != NULL, 0);

  return chooser->current;
}

static gint
compare_uint (gconstpointer a, gconstpointer b)
{
  guint x = *(const guint *) a, y = *(const guint *) b;

  return x < y ? -1 : x > y;
}

guint
pcr_rendition_bitrate (const guint * estimates, guint n,
    const PcrRenditionRange * range)
{
  g_autofree guint *sorted = NULL;
  guint rank;
  gdouble bps;

  g_return_val_if_fail (range != NULL, 0);
  g_return_val_if_fail (n == 0 || estimates != NULL, range->max_bps);

  if (n == 0)
    return range->max_bps;
  sorted = g_memdup2 (estimates, (gsize) n * sizeof (guint));
  qsort (sorted, n, sizeof (guint), compare_uint);
  /* nearest rank: the smallest value at or above the percentile */
  rank = (guint) (((guint64) n * PCR_ADAPT_PERCENTILE + 99) / 100);
  bps = sorted[MAX (rank, 1) - 1] * PCR_ADAPT_HEADROOM;
  return (guint) CLAMP (bps, (gdouble) range->min_bps,
      (gdouble) MAX (range->min_bps, range->max_bps));
}

/* The share of the picture's rate repairs always get (pcr_rtx_budget). */
#define RTX_MIN_SHARE 0.5

guint
pcr_rtx_budget (guint estimate_bps, guint sending_bps)
{
  guint floor = (guint) (RTX_MIN_SHARE * sending_bps);

  return MAX (estimate_bps > sending_bps ? estimate_bps - sending_bps : 0,
      floor);
}

guint
pcr_rtx_copies (guint current, gdouble loss, gboolean severe)
{
  if (severe || !isfinite (loss) || loss >= PCR_ADAPT_RTX_TWICE_MAX_LOSS)
    return 1;
  return loss >= (current > 1 ? PCR_ADAPT_RTX_ONCE_LOSS :
      PCR_ADAPT_RTX_TWICE_LOSS) ? 2 : 1;
}

guint
pcr_fec_percentage (guint current, gdouble loss)
{
  gdouble want;
  guint steps;

  if (!isfinite (loss) || loss < 0)
    loss = 0;
  loss = MIN (loss, 1);
  if (current == 0 ? loss < PCR_ADAPT_FEC_ON_LOSS :
      loss < PCR_ADAPT_FEC_OFF_LOSS)
    return 0;
  want = CLAMP (PCR_ADAPT_FEC_PER_LOSS * loss * 100,
      PCR_ADAPT_FEC_MIN_PERCENT, PCR_ADAPT_FEC_MAX_PERCENT);
  /* more loss wants more repair at once; less gives bandwidth back only
   * when it is clearly less */
  if (current != 0 && want < current + PCR_ADAPT_FEC_STEP
      && want > current - 2 * PCR_ADAPT_FEC_STEP)
    return current;
  steps = (guint) (want / PCR_ADAPT_FEC_STEP + 0.5);
  return CLAMP (steps * PCR_ADAPT_FEC_STEP, PCR_ADAPT_FEC_MIN_PERCENT,
      PCR_ADAPT_FEC_MAX_PERCENT);
}
