/* Unit tests for lib/pcr-adapt.c, the per-viewer bandwidth estimate and
 * rendition choice. Viewers are simulated in virtual time, 250 ms per
 * feedback report as the element sends them: a link with random loss
 * and/or a bottleneck (received = min (sent, capacity), loss = 1 -
 * capacity / sent when over it, delta-of-delta +2 ms while its queue
 * grows, -2 ms for a report after it stops growing), the encoder bitrate
 * of each rendition following its viewers' estimates. The assertions are
 * what a viewer would see: which picture, how often it changes, at what
 * bitrate. */
#include <math.h>
#include <string.h>

#include <glib.h>

#include "pcr-adapt.h"

#define TICK_US (250 * G_GINT64_CONSTANT (1000))
#define SECOND_US G_USEC_PER_SEC
#define PACKET_BITS (1200 * 8)
#define MAX_VIEWERS 2

static const PcrRenditionRange ranges[] = {
  {PCR_ADAPT_HIGH_MIN_BPS, PCR_ADAPT_HIGH_MAX_BPS},
  {PCR_ADAPT_LOW_MIN_BPS, PCR_ADAPT_LOW_MAX_BPS},
};

#define N_RENDITIONS G_N_ELEMENTS (ranges)
#define HIGH 0
#define LOW 1

typedef struct
{
  PcrEstimator *est;
  PcrRenditionChooser *chooser;
  gdouble capacity_bps;         /* 0: no bottleneck */
  gdouble random_loss;
  gboolean policed;             /* drops over capacity without queueing */
  gboolean queue_growing;
  guint rendition;
  guint switches, ups;
  gint64 last_switch_us, last_up_us, prev_up_us;
  gint64 up_interval_min_us;    /* between probes after the first one */
  guint fec_percent, fec_changes;
} Viewer;

typedef struct
{
  GRand *rand;
  gint64 now_us;
  guint n_viewers;
  gboolean fec;                 /* FEC by loss, as the element's fec=auto */
  Viewer viewers[MAX_VIEWERS];
  guint bitrate[N_RENDITIONS];
} Sim;

static void
sim_init (Sim * sim, guint n_viewers, guint32 seed)
{
  guint i;

  memset (sim, 0, sizeof (*sim));
  sim->rand = g_rand_new_with_seed (seed);
  sim->now_us = 1000 * SECOND_US;
  sim->n_viewers = n_viewers;
  for (i = 0; i < n_viewers; i++) {
    Viewer *v = &sim->viewers[i];

    v->est = pcr_estimator_new (PCR_ADAPT_ESTIMATE_START_BPS,
        PCR_ADAPT_ESTIMATE_MIN_BPS, PCR_ADAPT_ESTIMATE_MAX_BPS);
    v->chooser = pcr_rendition_chooser_new (N_RENDITIONS, ranges,
        sim->now_us);
    v->last_up_us = v->prev_up_us = -1;
    v->up_interval_min_us = G_MAXINT64;
  }
}

static void
sim_clear (Sim * sim)
{
  guint i;

  for (i = 0; i < sim->n_viewers; i++) {
    pcr_estimator_free (sim->viewers[i].est);
    pcr_rendition_chooser_free (sim->viewers[i].chooser);
  }
  g_rand_free (sim->rand);
}

/* What the element does for each rendition: its encoder follows the
 * estimates of the viewers on it, or a rate probe of the one viewer on
 * it. */
static void
sim_set_bitrates (Sim * sim)
{
  guint r, i;

  for (r = 0; r < N_RENDITIONS; r++) {
    guint estimates[MAX_VIEWERS];
    guint n = 0, probe = 0;

    for (i = 0; i < sim->n_viewers; i++) {
      if (sim->viewers[i].rendition == r) {
        estimates[n++] = pcr_estimator_get_media_bps (sim->viewers[i].est);
        probe = pcr_rendition_chooser_probe_bps (sim->viewers[i].chooser);
      }
    }
    sim->bitrate[r] = pcr_rendition_bitrate (estimates, n, &ranges[r]);
    if (n == 1 && probe > sim->bitrate[r])
      sim->bitrate[r] = probe;
  }
}

/* One 250 ms feedback report through @v's link. */
static void
sim_feedback (Sim * sim, Viewer * v)
{
  /* FEC packets are sent, counted and lost like media packets */
  gdouble sent = sim->bitrate[v->rendition] * (100.0 + v->fec_percent) / 100;
  gdouble recv = sent, loss = 0;
  gint64 dod_ns;
  guint packets = MAX (1, (guint) (sent * 0.25 / PACKET_BITS));
  guint lost = 0, p;
  gboolean over = v->capacity_bps > 0 && sent > v->capacity_bps;

  if (over) {
    recv = v->capacity_bps;
    loss = 1 - v->capacity_bps / sent;
    dod_ns = v->policed ? 0 : 2000000;
  } else {
    /* a queue that just stopped growing drains for a report */
    dod_ns = v->queue_growing ? -2000000 : g_rand_int_range (sim->rand,
        -200000, 200000);
  }
  v->queue_growing = over;
  for (p = 0; p < packets; p++) {
    if (g_rand_double (sim->rand) < v->random_loss)
      lost++;
  }
  recv *= 1 - (gdouble) lost / packets;
  loss = 1 - (1 - loss) * (1 - (gdouble) lost / packets);

  pcr_estimator_set_sending (v->est, sim->bitrate[v->rendition]);
  pcr_estimator_on_twcc (v->est, sim->now_us, (guint) sent, (guint) recv,
      loss, dod_ns);
  /* a receiver report about every second, a LAN's round trip */
  if (sim->now_us % SECOND_US == 0)
    pcr_estimator_on_receiver_report (v->est, sim->now_us, loss, 0.001);
  if (sim->fec) {
    guint fec = pcr_fec_percentage (v->fec_percent,
        pcr_estimator_get_loss (v->est));

    v->fec_changes += fec != v->fec_percent;
    v->fec_percent = fec;
    pcr_estimator_set_fec_percentage (v->est, fec);
  }
}

static void
sim_choose (Sim * sim, Viewer * v)
{
  guint r = pcr_rendition_chooser_update (v->chooser, sim->now_us, v->est);

  g_assert_cmpuint (r, <, N_RENDITIONS);
  g_assert_cmpuint (r, ==, pcr_rendition_chooser_get (v->chooser));
  if (r == v->rendition)
    return;
  v->switches++;
  v->last_switch_us = sim->now_us;
  if (r < v->rendition) {
    v->ups++;
    if (v->last_up_us >= 0 && v->prev_up_us >= 0)
      v->up_interval_min_us = MIN (v->up_interval_min_us,
          sim->now_us - v->last_up_us);
    v->prev_up_us = v->last_up_us;
    v->last_up_us = sim->now_us;
  }
  v->rendition = r;
}

typedef struct
{
  guint ticks;
  guint on[MAX_VIEWERS][N_RENDITIONS];
  guint high_at_max;            /* ticks the high encoder ran at its max */
  gdouble low_bitrate_sum;      /* over ticks a viewer was on low */
  guint low_ticks;
  guint min_estimate[MAX_VIEWERS];
  gint64 first_low_us[MAX_VIEWERS];     /* -1: never */
} Stats;

/* Runs @seconds of virtual time, @stats (nullable) counting them. */
static void
sim_run (Sim * sim, gdouble seconds, Stats * stats)
{
  gint64 end_us = sim->now_us + (gint64) (seconds * SECOND_US);
  guint i;

  if (stats) {
    memset (stats, 0, sizeof (*stats));
    for (i = 0; i < MAX_VIEWERS; i++) {
      stats->min_estimate[i] = G_MAXUINT;
      stats->first_low_us[i] = -1;
    }
  }
  while (sim->now_us < end_us) {
    sim->now_us += TICK_US;
    sim_set_bitrates (sim);
    for (i = 0; i < sim->n_viewers; i++) {
      Viewer *v = &sim->viewers[i];
      guint bps;

      sim_feedback (sim, v);
      sim_choose (sim, v);
      bps = pcr_estimator_get_bps (v->est);
      g_assert_cmpuint (bps, >=, PCR_ADAPT_ESTIMATE_MIN_BPS);
      g_assert_cmpuint (bps, <=, PCR_ADAPT_ESTIMATE_MAX_BPS);
      if (!stats)
        continue;
      stats->on[i][v->rendition]++;
      stats->min_estimate[i] = MIN (stats->min_estimate[i], bps);
      if (v->rendition == LOW && stats->first_low_us[i] < 0)
        stats->first_low_us[i] = sim->now_us;
      if (v->rendition == LOW) {
        stats->low_bitrate_sum += sim->bitrate[LOW];
        stats->low_ticks++;
      }
    }
    for (i = 0; i < N_RENDITIONS; i++) {
      g_assert_cmpuint (sim->bitrate[i], >=, ranges[i].min_bps);
      /* a rate probe asks for 1.5 x the rendition above's minimum */
      g_assert_cmpuint (sim->bitrate[i], <=, MAX (ranges[i].max_bps,
              i > 0 ? ranges[i - 1].min_bps * 3 / 2 : 0));
    }
    if (stats) {
      stats->ticks++;
      if (sim->bitrate[HIGH] == PCR_ADAPT_HIGH_MAX_BPS)
        stats->high_at_max++;
    }
  }
}

/* A viewer on a link with @random_loss for a minute: the high picture at
 * the high maximum all along, never switched. */
static void
assert_stays_high (gdouble random_loss, guint32 seed)
{
  Sim sim;
  Stats stats;

  sim_init (&sim, 1, seed);
  sim.viewers[0].random_loss = random_loss;
  sim_run (&sim, 60, &stats);
  g_assert_cmpuint (sim.viewers[0].switches, ==, 0);
  g_assert_cmpuint (stats.on[0][HIGH], ==, stats.ticks);
  g_assert_cmpuint (stats.min_estimate[0], >=, PCR_ADAPT_HIGH_MIN_BPS);
  g_assert_cmpuint (stats.high_at_max, >=, stats.ticks * 95 / 100);
  g_assert_cmpuint (sim.bitrate[HIGH], ==, PCR_ADAPT_HIGH_MAX_BPS);
  sim_clear (&sim);
}

static void
test_clean (void)
{
  Sim sim;
  Stats stats;

  assert_stays_high (0, 1);

  /* from the very first report, not only on average */
  sim_init (&sim, 1, 1);
  sim_run (&sim, 10, &stats);
  g_assert_cmpuint (stats.high_at_max, ==, stats.ticks);
  g_assert_false (pcr_estimator_congested (sim.viewers[0].est));
  sim_clear (&sim);
}

static void
test_random_loss_3 (void)
{
  guint32 seed;

  for (seed = 1; seed <= 5; seed++)
    assert_stays_high (0.03, seed);
}

/* 10 % random loss is not congestion either: RTX repairs it. */
static void
test_random_loss_10 (void)
{
  guint32 seed;

  for (seed = 1; seed <= 5; seed++) {
    Sim sim;
    Stats stats;

    sim_init (&sim, 1, seed);
    sim.viewers[0].random_loss = 0.10;
    sim_run (&sim, 60, &stats);
    g_assert_cmpuint (stats.on[0][HIGH], ==, stats.ticks);
    g_assert_cmpuint (stats.min_estimate[0], >=, PCR_ADAPT_HIGH_MIN_BPS);
    g_assert_cmpuint (stats.high_at_max, >=, stats.ticks * 80 / 100);
    sim_clear (&sim);
  }
}

/* @capacity_bps under a viewer for @seconds, then gone: it goes low within
 * a second, switches at most twice per probe, and is back on high (to
 * stay) within 15 s after the bottleneck goes. */
static void
assert_bottleneck (gdouble capacity_bps, gdouble seconds, Stats * during)
{
  Sim sim;
  Stats stats;
  Viewer *v;
  gint64 start_us, gone_us;

  sim_init (&sim, 1, 7);
  v = &sim.viewers[0];
  sim_run (&sim, 10, NULL);
  g_assert_cmpuint (v->rendition, ==, HIGH);

  start_us = sim.now_us;
  v->capacity_bps = capacity_bps;
  sim_run (&sim, seconds, during);
  g_assert_cmpint (during->first_low_us[0], >=, 0);
  g_assert_cmpint (during->first_low_us[0] - start_us, <=, SECOND_US);
  /* probes every 8 s at most once the first one failed: a probe and its
   * way back down, 4 s into the bottleneck, then every 8 s */
  g_assert_cmpuint (v->switches, <=, 2 * (1 + seconds / 8) + 1);
  /* under the high rendition's minimum, every probe fails at the rate
   * probe: the picture never goes up to stall in the queue */
  if (capacity_bps < ranges[HIGH].min_bps)
    g_assert_cmpuint (v->ups, ==, 0);
  if (v->ups >= 3)
    g_assert_cmpint (v->up_interval_min_us, >=, 8 * SECOND_US);
  /* mostly on low, not bouncing */
  g_assert_cmpuint (during->on[0][LOW], >=, during->ticks * 70 / 100);

  gone_us = sim.now_us;
  v->capacity_bps = 0;
  sim_run (&sim, 30, &stats);
  g_assert_cmpuint (v->rendition, ==, HIGH);
  g_assert_cmpint (v->last_switch_us - gone_us, <=, 15 * SECOND_US);
  g_assert_cmpuint (sim.bitrate[HIGH], ==, PCR_ADAPT_HIGH_MAX_BPS);
  sim_clear (&sim);
}

static void
test_bottleneck_1m (void)
{
  Stats during;

  assert_bottleneck (1000000, 20, &during);
  assert_bottleneck (1000000, 60, &during);
}

/* Behind 500 kbit/s the low picture's bitrate follows the estimate down,
 * under its maximum, to fit the link. */
static void
test_bottleneck_500k (void)
{
  Stats during;
  gdouble mean;

  assert_bottleneck (500000, 40, &during);
  mean = during.low_bitrate_sum / during.low_ticks;
  g_test_message ("low bitrate behind 500 kbit/s: %.0f bit/s", mean);
  g_assert_cmpfloat (mean, <, PCR_ADAPT_LOW_MAX_BPS);
  g_assert_cmpfloat (mean, >=, 250000);
}

/* One viewer behind 1 Mbit/s (a queue, or a policer that only drops)
 * goes low; the other keeps the high picture at 2 Mbit/s. */
static void
assert_two_viewers (gboolean policed)
{
  Sim sim;
  Stats stats;
  gint64 start_us;

  sim_init (&sim, 2, 3);
  sim_run (&sim, 10, NULL);
  start_us = sim.now_us;
  sim.viewers[0].capacity_bps = 1000000;
  sim.viewers[0].policed = policed;
  sim_run (&sim, 30, &stats);

  g_assert_cmpint (stats.first_low_us[0], >=, 0);
  g_assert_cmpint (stats.first_low_us[0] - start_us, <=, SECOND_US);
  g_assert_cmpuint (sim.viewers[1].switches, ==, 0);
  g_assert_cmpuint (stats.on[1][HIGH], ==, stats.ticks);
  /* the slow viewer drags the high picture down only while it is on it */
  g_assert_cmpuint (stats.high_at_max, >=, stats.on[0][LOW] * 95 / 100);
  g_assert_cmpuint (sim.bitrate[HIGH], ==, PCR_ADAPT_HIGH_MAX_BPS);
  sim_clear (&sim);
}

static void
test_two_viewers (void)
{
  assert_two_viewers (FALSE);
  assert_two_viewers (TRUE);
}

/* Bursts of jitter (a Wi-Fi stall: queues grow, half the rate gets
 * through) and of loss, each one report long, every 2 s for a minute: the
 * high picture stays. */
static void
test_no_flapping (void)
{
  g_autoptr (PcrEstimator) est =
      pcr_estimator_new (PCR_ADAPT_ESTIMATE_START_BPS,
      PCR_ADAPT_ESTIMATE_MIN_BPS, PCR_ADAPT_ESTIMATE_MAX_BPS);
  g_autoptr (PcrRenditionChooser) chooser =
      pcr_rendition_chooser_new (N_RENDITIONS, ranges, 0);
  gint64 now_us;

  for (now_us = TICK_US; now_us <= 60 * SECOND_US; now_us += TICK_US) {
    guint tick = now_us / TICK_US;
    gboolean jitter = tick % 8 == 0, loss = tick % 8 == 4;

    pcr_estimator_set_sending (est, PCR_ADAPT_HIGH_MAX_BPS);
    pcr_estimator_on_twcc (est, now_us, PCR_ADAPT_HIGH_MAX_BPS,
        loss ? 1700000 : jitter ? 1000000 : PCR_ADAPT_HIGH_MAX_BPS,
        loss ? 0.15 : 0,
        jitter ? 3000000 : 0);
    g_assert_cmpuint (pcr_rendition_chooser_update (chooser, now_us, est),
        ==, HIGH);
  }
}

/* A viewer that stayed up 10 s after a probe starts from the short
 * backoff again. */
static void
test_backoff_reset (void)
{
  Sim sim;
  Viewer *v;
  gint64 start_us, low_us;

  sim_init (&sim, 1, 11);
  v = &sim.viewers[0];
  v->capacity_bps = 1000000;
  sim_run (&sim, 30, NULL);     /* at least one failed probe: backoff 8 s */
  v->capacity_bps = 0;
  sim_run (&sim, 30, NULL);
  g_assert_cmpuint (v->rendition, ==, HIGH);

  start_us = sim.now_us;
  v->capacity_bps = 1000000;
  while (v->rendition == HIGH && sim.now_us - start_us < 5 * SECOND_US)
    sim_run (&sim, 0.25, NULL);
  low_us = sim.now_us;
  g_assert_cmpint (low_us - start_us, <=, SECOND_US);
  /* the next probe (at the rate first: the bottleneck is still there) */
  while (!pcr_rendition_chooser_probe_bps (v->chooser)
      && sim.now_us - low_us < 20 * SECOND_US)
    sim_run (&sim, 0.25, NULL);
  /* 4 s clean (after the queue drains), not 8 */
  g_assert_cmpint (sim.now_us - low_us, <, 6 * SECOND_US);
  g_assert_cmpuint (v->rendition, ==, LOW);
  sim_clear (&sim);
}

/* A bottleneck's queue in its first half second: the link delivers less
 * than is sent, nothing lost yet and the per-packet delta-of-delta still
 * small. Two such reports in a row are congestion; one is not (one key
 * frame's burst), nor is a received rate that only lacks what was lost. */
static void
test_queue_growth (void)
{
  g_autoptr (PcrEstimator) est = pcr_estimator_new (2500000, 100000,
      2500000);
  gint64 now_us = 0;

  pcr_estimator_set_sending (est, 2000000);
  now_us += TICK_US;
  pcr_estimator_on_twcc (est, now_us, 2000000, 1990000, 0, 10000);
  g_assert_false (pcr_estimator_congested (est));
  now_us += TICK_US;
  pcr_estimator_on_twcc (est, now_us, 1950000, 1700000, 0, 400000);
  g_assert_false (pcr_estimator_congested (est));
  g_assert_true (pcr_estimator_queue_growing (est));
  now_us += TICK_US;
  pcr_estimator_on_twcc (est, now_us, 2000000, 1990000, 0, 10000);
  g_assert_false (pcr_estimator_congested (est));
  g_assert_false (pcr_estimator_queue_growing (est));
  /* 10 % random loss: received = sent x 0.9 */
  now_us += TICK_US;
  pcr_estimator_on_twcc (est, now_us, 2000000, 1800000, 0.1, 10000);
  now_us += TICK_US;
  pcr_estimator_on_twcc (est, now_us, 2000000, 1800000, 0.1, 10000);
  g_assert_false (pcr_estimator_congested (est));

  now_us += TICK_US;
  pcr_estimator_on_twcc (est, now_us, 1950000, 1700000, 0, 400000);
  g_assert_false (pcr_estimator_congested (est));
  now_us += TICK_US;
  pcr_estimator_on_twcc (est, now_us, 1860000, 1550000, 0, 800000);
  g_assert_true (pcr_estimator_congested (est));
  /* the estimate falls under what the link carried */
  g_assert_cmpuint (pcr_estimator_get_bps (est), <=, 1550000);
  /* two reports of it are evidence enough to move down at once, while
   * the estimate still counts what got through before the bottleneck */
  g_assert_true (pcr_estimator_severe (est));
}

/* Clean 400 kbit/s reports on the low rendition from @now_us for up to
 * @seconds, or (@until_probe) until a rate probe begins; the viewer stays
 * low all along. The time after. */
static gint64
feed_clean_low (PcrEstimator * est, PcrRenditionChooser * chooser,
    gint64 now_us, guint seconds, gboolean until_probe)
{
  gint64 end_us = now_us + seconds * SECOND_US;

  pcr_estimator_set_sending (est, 400000);
  for (; now_us < end_us; now_us += TICK_US) {
    if (until_probe && pcr_rendition_chooser_probe_bps (chooser))
      break;
    pcr_estimator_on_twcc (est, now_us, 400000, 400000, 0, 0);
    g_assert_cmpuint (pcr_rendition_chooser_update (chooser, now_us, est),
        ==, LOW);
    if (!until_probe)
      g_assert_cmpuint (pcr_rendition_chooser_probe_bps (chooser), ==, 0);
  }
  return now_us;
}

/* A viewer moved down (two reports of a queue growing), then on the low
 * rendition until its first rate probe begins: that probe's rate. */
static guint
start_rate_probe (PcrEstimator * est, PcrRenditionChooser * chooser,
    gint64 * now_us)
{
  pcr_estimator_set_sending (est, 2000000);
  pcr_estimator_on_twcc (est, *now_us, 1900000, 1600000, 0, 900000);
  g_assert_cmpuint (pcr_rendition_chooser_update (chooser, *now_us, est),
      ==, HIGH);
  *now_us += TICK_US;
  pcr_estimator_on_twcc (est, *now_us, 1900000, 1300000, 0, 1500000);
  g_assert_cmpuint (pcr_rendition_chooser_update (chooser, *now_us, est),
      ==, LOW);
  *now_us = feed_clean_low (est, chooser, *now_us, 10, TRUE);
  return pcr_rendition_chooser_probe_bps (chooser);
}

/* A rate probe through a token bucket: its burst and queue let the
 * probe's rate through for a report or two while the queue grows (the
 * reports as measured through tbf at 1 Mbit/s). The first report with the
 * queue growing ends the probe, though it is no overuse yet: the viewer
 * stays on the small picture, the encoder is no longer asked for the
 * probe's rate, and the next probe waits longer (the backoff doubled). */
static void
test_probe_queue_growing (void)
{
  g_autoptr (PcrEstimator) est = pcr_estimator_new (2500000, 100000,
      2500000);
  g_autoptr (PcrRenditionChooser) chooser =
      pcr_rendition_chooser_new (N_RENDITIONS, ranges, 0);
  gint64 now_us = 10 * SECOND_US;
  guint probe_bps = start_rate_probe (est, chooser, &now_us);

  /* a little above the minimum: the link's queue absorbs a failing one */
  g_assert_cmpuint (probe_bps, >, PCR_ADAPT_HIGH_MIN_BPS);
  g_assert_cmpuint (probe_bps, <, 1.25 * PCR_ADAPT_HIGH_MIN_BPS);
  pcr_estimator_set_sending (est, probe_bps);
  now_us += TICK_US;
  pcr_estimator_on_twcc (est, now_us, 1195006, 1190605, 0, 26006);
  g_assert_cmpuint (pcr_rendition_chooser_update (chooser, now_us, est),
      ==, LOW);
  now_us += TICK_US;
  pcr_estimator_on_twcc (est, now_us, 1354222, 1209500, 0, 300000);
  g_assert_true (pcr_estimator_queue_growing (est));
  g_assert_false (pcr_estimator_congested (est));
  g_assert_cmpuint (pcr_rendition_chooser_update (chooser, now_us, est),
      ==, LOW);
  g_assert_cmpuint (pcr_rendition_chooser_probe_bps (chooser), ==, 0);
  feed_clean_low (est, chooser, now_us + TICK_US, 5, FALSE);
}

/* The same bucket let 1.09 and 1.13 Mbit/s through in two reports in a
 * row with no sign of a queue, then 1.03: two reports prove nothing, so
 * the viewer stays low. A link that carries the rate for a second does
 * move it up. */
static void
test_probe_sees_through_burst (void)
{
  g_autoptr (PcrEstimator) est = pcr_estimator_new (2500000, 100000,
      2500000);
  g_autoptr (PcrRenditionChooser) chooser =
      pcr_rendition_chooser_new (N_RENDITIONS, ranges, 0);
  gint64 now_us = 10 * SECOND_US;
  const guint burst[][2] = {
    {1089419, 1092234}, {1127502, 1133553}, {1097451, 1030610},
  };
  guint i;

  pcr_estimator_set_sending (est, start_rate_probe (est, chooser, &now_us));
  for (i = 0; i < G_N_ELEMENTS (burst); i++) {
    now_us += TICK_US;
    pcr_estimator_on_twcc (est, now_us, burst[i][0], burst[i][1], 0, 0);
    g_assert_cmpuint (pcr_rendition_chooser_update (chooser, now_us, est),
        ==, LOW);
  }
  for (i = 0; i < 4; i++) {
    now_us += TICK_US;
    pcr_estimator_on_twcc (est, now_us, 1300000, 1300000, 0, 0);
    if (pcr_rendition_chooser_update (chooser, now_us, est) == HIGH)
      break;
  }
  g_assert_cmpuint (i, ==, 3);
}

/* Severely congested on the high rendition with an estimate just over its
 * minimum (the windowed received rate still counting the time before the
 * bottleneck): down at once, not a report later. */
static void
test_severe_moves_down (void)
{
  g_autoptr (PcrEstimator) est = pcr_estimator_new (2500000, 100000,
      2500000);
  g_autoptr (PcrRenditionChooser) chooser =
      pcr_rendition_chooser_new (N_RENDITIONS, ranges, 0);
  gint64 now_us = 10 * SECOND_US;

  pcr_estimator_set_sending (est, 2000000);
  pcr_estimator_on_twcc (est, now_us, 2000000, 1700000, 0, 650000);
  g_assert_cmpuint (pcr_rendition_chooser_update (chooser, now_us, est),
      ==, HIGH);
  now_us += TICK_US;
  pcr_estimator_on_twcc (est, now_us, 1900000, 1440000, 0, 1380000);
  g_assert_cmpuint (pcr_estimator_get_bps (est), >, PCR_ADAPT_HIGH_MIN_BPS);
  g_assert_true (pcr_estimator_severe (est));
  g_assert_cmpuint (pcr_rendition_chooser_update (chooser, now_us, est),
      ==, LOW);
}

/* Repairs get the estimate's room beside the picture, and never less
 * than half the picture's rate. */
static void
test_rtx_budget (void)
{
  g_assert_cmpuint (pcr_rtx_budget (2350000, 2000000), ==, 1000000);
  g_assert_cmpuint (pcr_rtx_budget (4000000, 2000000), ==, 2000000);
  g_assert_cmpuint (pcr_rtx_budget (265000, 225000), ==, 112500);
  g_assert_cmpuint (pcr_rtx_budget (100000, 400000), ==, 200000);
  g_assert_cmpuint (pcr_rtx_budget (G_MAXUINT, 0), ==, G_MAXUINT);
  g_assert_cmpuint (pcr_rtx_budget (0, G_MAXUINT), ==, G_MAXUINT / 2);
}

/* Repairs sent twice under high random loss, with hysteresis; never under
 * a bottleneck's loss or a hostile NaN. */
static void
test_rtx_copies (void)
{
  g_assert_cmpuint (pcr_rtx_copies (1, 0.0, FALSE), ==, 1);
  g_assert_cmpuint (pcr_rtx_copies (1, 0.04, FALSE), ==, 1);
  g_assert_cmpuint (pcr_rtx_copies (1, 0.10, FALSE), ==, 2);
  g_assert_cmpuint (pcr_rtx_copies (2, 0.04, FALSE), ==, 2);
  g_assert_cmpuint (pcr_rtx_copies (2, 0.02, FALSE), ==, 1);
  g_assert_cmpuint (pcr_rtx_copies (2, 0.30, TRUE), ==, 1);
  g_assert_cmpuint (pcr_rtx_copies (1, 0.14, FALSE), ==, 2);
  g_assert_cmpuint (pcr_rtx_copies (2, 0.24, FALSE), ==, 1);
  g_assert_cmpuint (pcr_rtx_copies (1, 0.15, FALSE), ==, 1);
  g_assert_cmpuint (pcr_rtx_copies (1, NAN, FALSE), ==, 1);
  g_assert_cmpuint (pcr_rtx_copies (2, -1, FALSE), ==, 1);
}

/* A peer without TWCC: receiver reports alone move the estimate. */
static void
test_receiver_reports_only (void)
{
  g_autoptr (PcrEstimator) est = pcr_estimator_new (2000000, 100000,
      2500000);
  gint64 now_us = 0;
  guint i;

  pcr_estimator_set_sending (est, 2000000);
  for (i = 0; i < 30; i++) {
    now_us += SECOND_US;
    pcr_estimator_on_receiver_report (est, now_us, 0.03, 0.02);
  }
  g_assert_cmpuint (pcr_estimator_get_bps (est), >=, 2000000);
  g_assert_false (pcr_estimator_congested (est));

  now_us += SECOND_US;
  pcr_estimator_on_receiver_report (est, now_us, 0.5, 0.02);
  g_assert_true (pcr_estimator_congested (est));
  g_assert_true (pcr_estimator_severe (est));
  g_assert_cmpuint (pcr_estimator_get_bps (est), <, PCR_ADAPT_HIGH_MIN_BPS);
}

static void
test_bitrate (void)
{
  const PcrRenditionRange high = { PCR_ADAPT_HIGH_MIN_BPS,
    PCR_ADAPT_HIGH_MAX_BPS
  };
  const PcrRenditionRange low = { PCR_ADAPT_LOW_MIN_BPS,
    PCR_ADAPT_LOW_MAX_BPS
  };
  const PcrRenditionRange inverted = { 500000, 100000 };
  guint one[] = { 400000 };
  guint ten[] = { 9000000, 400000, 300000, 2000000, 8000000, 7000000,
    6000000, 5000000, 4000000, 3000000
  };
  guint hostile[] = { 0, G_MAXUINT, G_MAXUINT, G_MAXUINT };

  /* no viewers: the range's max */
  g_assert_cmpuint (pcr_rendition_bitrate (NULL, 0, &high), ==,
      PCR_ADAPT_HIGH_MAX_BPS);
  g_assert_cmpuint (pcr_rendition_bitrate (one, 1, &low), ==, 340000);
  g_assert_cmpuint (pcr_rendition_bitrate (one, 1, &high), ==,
      PCR_ADAPT_HIGH_MIN_BPS);
  /* the 20th percentile of ten: the second slowest, 400 kbit/s */
  g_assert_cmpuint (pcr_rendition_bitrate (ten, 10, &low), ==, 340000);
  /* its caller's array is left as it was */
  g_assert_cmpuint (ten[0], ==, 9000000);
  g_assert_cmpuint (pcr_rendition_bitrate (hostile, 4, &low), ==,
      PCR_ADAPT_LOW_MIN_BPS);
  g_assert_cmpuint (pcr_rendition_bitrate (hostile + 1, 3, &low), ==,
      PCR_ADAPT_LOW_MAX_BPS);
  g_assert_cmpuint (pcr_rendition_bitrate (one, 1, &inverted), ==, 500000);
}

/* Numbers from the network: nothing makes the estimate leave its bounds,
 * and it still works afterwards. */
static void
test_hostile (void)
{
  g_autoptr (PcrEstimator) est = pcr_estimator_new (2000000, 100000,
      2500000);
  g_autoptr (PcrEstimator) inverted = pcr_estimator_new (5, 300000, 200000);
  g_autoptr (PcrRenditionChooser) chooser =
      pcr_rendition_chooser_new (N_RENDITIONS, ranges, 0);
  g_autoptr (PcrRenditionChooser) single =
      pcr_rendition_chooser_new (1, ranges, 0);
  const gdouble losses[] = { NAN, INFINITY, -INFINITY, -1, 2, 1e300, 0.5 };
  const gint64 dods[] = { G_MININT64, G_MAXINT64, -1, 0, 1000000000000 };
  const guint rates[] = { 0, 1, G_MAXUINT };
  const gdouble rtts[] = { NAN, INFINITY, -1, 1e300, 0 };
  const gint64 times[] = { 0, -5, G_MAXINT64 / 2, 3, G_MAXINT64 / 2 + 1 };
  guint a, b, c, d, i;

  g_assert_cmpuint (pcr_estimator_get_bps (inverted), ==, 300000);

  for (a = 0; a < G_N_ELEMENTS (losses); a++)
    for (b = 0; b < G_N_ELEMENTS (dods); b++)
      for (c = 0; c < G_N_ELEMENTS (rates); c++)
        for (d = 0; d < G_N_ELEMENTS (rates); d++) {
          gint64 now_us = times[(a + b + c + d) % G_N_ELEMENTS (times)];
          guint bps;

          pcr_estimator_set_sending (est, rates[(c + d) % 3]);
          pcr_estimator_on_twcc (est, now_us, rates[c], rates[d], losses[a],
              dods[b]);
          pcr_estimator_on_receiver_report (est, now_us, losses[a],
              rtts[(a + b) % G_N_ELEMENTS (rtts)]);
          bps = pcr_estimator_get_bps (est);
          g_assert_cmpuint (bps, >=, 100000);
          g_assert_cmpuint (bps, <=, 2500000);
          g_assert_cmpuint (pcr_rendition_chooser_update (chooser, now_us,
                  est), <, N_RENDITIONS);
          g_assert_cmpuint (pcr_rendition_chooser_update (single, now_us,
                  est), ==, 0);
        }

  /* afterwards a clean link brings it back up */
  for (i = 0; i < 200; i++) {
    gint64 now_us = G_MAXINT64 / 2 + 1 + i * TICK_US;

    pcr_estimator_set_sending (est, 2000000);
    pcr_estimator_on_twcc (est, now_us, 2000000, 2000000, 0, 0);
  }
  g_assert_false (pcr_estimator_congested (est));
  g_assert_cmpuint (pcr_estimator_get_bps (est), >=, 2000000);
}

/* The FEC percentage by loss: off below 2 %, on from it, off again only
 * under 1 %; 3 % per percent of loss between 10 and 50 %, in steps of 5,
 * up by one step as soon as the loss wants it, down only by two. */
static void
test_fec_percentage (void)
{
  static const struct
  {
    guint current;
    gdouble loss;
    guint want;
  } cases[] = {
    {0, 0, 0},
    {0, 0.015, 0},
    {0, 0.019, 0},
    {0, 0.02, 10},
    {0, 0.03, 10},
    {0, 0.05, 15},
    {0, 0.10, 30},
    {0, 0.15, 45},
    {0, 0.30, 50},
    {0, 1.0, 50},
    /* hysteresis: on stays on down to 1 % */
    {10, 0.015, 10},
    {10, 0.011, 10},
    {10, 0.009, 0},
    {30, 0.005, 0},
    /* up by a step at once, down only by two */
    {30, 0.11, 30},
    {30, 0.118, 35},
    {30, 0.085, 30},
    {30, 0.07, 30},
    {30, 0.066, 20},
    {30, 0.12, 35},
    {50, 0.99, 50},
    /* hostile numbers */
    {0, NAN, 0},
    {20, NAN, 0},
    {0, -1, 0},
    {0, INFINITY, 0},
    {0, 1e300, 50},
    {7, 0.10, 30},
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_test_message ("current %u, loss %g", cases[i].current, cases[i].loss);
    g_assert_cmpuint (pcr_fec_percentage (cases[i].current, cases[i].loss),
        ==, cases[i].want);
  }
}

/* FEC by loss on a simulated link for a minute: none on a clean one; at
 * 3 % and 10 % random loss on within 3 s at about 3x the loss, steady (at
 * most 10 changes a minute), the viewer still on the high picture,
 * its encoder leaving the FEC its share; off again within 10 s of the
 * loss going. */
static void
test_fec_by_loss (void)
{
  static const struct
  {
    gdouble loss;
    guint fec_min, fec_max;
  } links[] = {
    {0, 0, 0},
    {0.03, 10, 15},
    {0.10, 20, 40},
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (links); i++) {
    guint32 seed;

    for (seed = 1; seed <= 3; seed++) {
      Sim sim;
      Stats stats;
      Viewer *v;
      guint bps, media;

      g_test_message ("loss %.2f, seed %u", links[i].loss, seed);
      sim_init (&sim, 1, seed);
      sim.fec = TRUE;
      v = &sim.viewers[0];
      v->random_loss = links[i].loss;
      sim_run (&sim, 3, NULL);
      if (links[i].loss > 0)
        g_assert_cmpuint (v->fec_percent, >, 0);
      sim_run (&sim, 57, &stats);
      g_assert_cmpuint (v->fec_percent, >=, links[i].fec_min);
      g_assert_cmpuint (v->fec_percent, <=, links[i].fec_max);
      g_assert_cmpuint (v->fec_changes, <=, 10);
      g_assert_cmpuint (stats.on[0][HIGH], ==, stats.ticks);
      /* the encoder leaves room for the FEC */
      bps = pcr_estimator_get_bps (v->est);
      media = pcr_estimator_get_media_bps (v->est);
      g_assert_cmpuint (media, ==,
          (guint) ((guint64) bps * 100 / (100 + v->fec_percent)));
      g_assert_cmpuint (sim.bitrate[HIGH], <=, MAX (ranges[HIGH].min_bps,
              media * PCR_ADAPT_HEADROOM + 1));
      g_assert_cmpuint (sim.bitrate[HIGH], >=, ranges[HIGH].min_bps);

      v->random_loss = 0;
      sim_run (&sim, 10, NULL);
      g_assert_cmpuint (v->fec_percent, ==, 0);
      g_assert_cmpuint (sim.bitrate[HIGH], ==, PCR_ADAPT_HIGH_MAX_BPS);
      sim_clear (&sim);
    }
  }
}

/* A viewer sent FEC counts only the media share of its estimate: an
 * estimate that would keep the high rendition without FEC moves it down
 * once FEC takes its share under the high minimum. */
static void
test_fec_media_share (void)
{
  g_autoptr (PcrEstimator) est = pcr_estimator_new (1400000,
      PCR_ADAPT_ESTIMATE_MIN_BPS, PCR_ADAPT_ESTIMATE_MAX_BPS);
  g_autoptr (PcrRenditionChooser) chooser = NULL;
  gint64 now = 1000 * SECOND_US;
  guint i;

  g_assert_cmpuint (pcr_estimator_get_media_bps (est), ==, 1400000);
  pcr_estimator_set_fec_percentage (est, 40);
  g_assert_cmpuint (pcr_estimator_get_media_bps (est), ==, 1000000);
  pcr_estimator_set_fec_percentage (est, 1000);
  g_assert_cmpuint (pcr_estimator_get_media_bps (est), ==, 700000);
  pcr_estimator_set_fec_percentage (est, 40);

  chooser = pcr_rendition_chooser_new (N_RENDITIONS, ranges, now);
  /* congested for a second at what it sends now */
  for (i = 0; i < 4; i++) {
    now += TICK_US;
    pcr_estimator_set_sending (est, 1000000);
    pcr_estimator_on_twcc (est, now, 1400000, 1190000, 0.15, 2000000);
    pcr_rendition_chooser_update (chooser, now, est);
  }
  g_assert_cmpuint (pcr_estimator_get_bps (est), >=, 1000000);
  g_assert_cmpuint (pcr_rendition_chooser_get (chooser), ==, LOW);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/adapt/clean", test_clean);
  g_test_add_func ("/adapt/random-loss-3", test_random_loss_3);
  g_test_add_func ("/adapt/random-loss-10", test_random_loss_10);
  g_test_add_func ("/adapt/bottleneck-1m", test_bottleneck_1m);
  g_test_add_func ("/adapt/bottleneck-500k", test_bottleneck_500k);
  g_test_add_func ("/adapt/two-viewers", test_two_viewers);
  g_test_add_func ("/adapt/no-flapping", test_no_flapping);
  g_test_add_func ("/adapt/backoff-reset", test_backoff_reset);
  g_test_add_func ("/adapt/queue-growth", test_queue_growth);
  g_test_add_func ("/adapt/severe-moves-down", test_severe_moves_down);
  g_test_add_func ("/adapt/probe-queue-growing", test_probe_queue_growing);
  g_test_add_func ("/adapt/probe-sees-through-burst",
      test_probe_sees_through_burst);
  g_test_add_func ("/adapt/rtx-budget", test_rtx_budget);
  g_test_add_func ("/adapt/receiver-reports-only",
      test_receiver_reports_only);
  g_test_add_func ("/adapt/bitrate", test_bitrate);
  g_test_add_func ("/adapt/hostile", test_hostile);
  g_test_add_func ("/adapt/rtx-copies", test_rtx_copies);
  g_test_add_func ("/adapt/fec-percentage", test_fec_percentage);
  g_test_add_func ("/adapt/fec-by-loss", test_fec_by_loss);
  g_test_add_func ("/adapt/fec-media-share", test_fec_media_share);
  return g_test_run ();
}
