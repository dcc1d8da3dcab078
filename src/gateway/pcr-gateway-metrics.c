/* The figures behind the gateway's GET /metrics and their Prometheus text
 * exposition (version 0.0.4): counters and a histogram of the gateway's
 * own, and the last report of each device. Every label value is either
 * the gateway's own fixed text or an id checked by lib/pcr-message
 * ([A-Za-z0-9_-]), and is escaped all the same. */
#include "pcr-gateway-metrics.h"

#include <string.h>

/* The time to a device's answer, in seconds: a Pi answers in 0.1-0.6 s,
 * the answer timeout is 10 s by default. */
static const gdouble answer_buckets[] = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
  10, 30
};

/* A report is dropped after this many of its intervals without another. */
#define STALE_INTERVALS 3
#define DEFAULT_INTERVAL_S 10

typedef struct
{
  gboolean online;
  gboolean have_report;
  PcrMetrics report;
  gint64 report_us;
} DeviceFigures;

struct _PcrGatewayMetrics
{
  GHashTable *requests;         /* "route\ncode" -> guint64* */
  guint64 answer_counts[G_N_ELEMENTS (answer_buckets)];
  guint64 answers;
  gdouble answer_sum;
  gboolean connected;
  gboolean ever_connected;
  guint64 reconnects;
  guint relay_sessions;
  GHashTable *devices;          /* id -> DeviceFigures */
};

static void
device_figures_free (DeviceFigures * d)
{
  pcr_metrics_clear (&d->report);
  g_free (d);
}

PcrGatewayMetrics *
pcr_gateway_metrics_new (void)
{
  PcrGatewayMetrics *self = g_new0 (PcrGatewayMetrics, 1);

  self->requests = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      g_free);
  self->devices = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      (GDestroyNotify) device_figures_free);
  return self;
}

void
pcr_gateway_metrics_free (PcrGatewayMetrics * self)
{
  if (self == NULL)
    return;
  g_hash_table_unref (self->requests);
  g_hash_table_unref (self->devices);
  g_free (self);
}

void
pcr_gateway_metrics_count_request (PcrGatewayMetrics * self,
    const gchar * route, guint status)
{
  g_autofree gchar *key = NULL;
  guint64 *count;

  g_return_if_fail (self != NULL && route != NULL);

  /* libsoup gives 1xx-5xx; anything else is not a reply worth a series */
  if (status < 100 || status > 599)
    return;
  key = g_strdup_printf ("%s\n%u", route, status);
  count = g_hash_table_lookup (self->requests, key);
  if (count == NULL) {
    count = g_new0 (guint64, 1);
    g_hash_table_insert (self->requests, g_steal_pointer (&key), count);
  }
  (*count)++;
}

void
pcr_gateway_metrics_observe_answer (PcrGatewayMetrics * self,
    gdouble seconds)
{
  guint i;

  g_return_if_fail (self != NULL);

  seconds = MAX (seconds, 0);
  for (i = 0; i < G_N_ELEMENTS (answer_buckets); i++) {
    if (seconds <= answer_buckets[i])
      self->answer_counts[i]++;
  }
  self->answers++;
  self->answer_sum += seconds;
}

void
pcr_gateway_metrics_set_relay_sessions (PcrGatewayMetrics * self,
    guint relay_sessions)
{
  self->relay_sessions = relay_sessions;
}

void
pcr_gateway_metrics_set_connected (PcrGatewayMetrics * self,
    gboolean connected)
{
  g_return_if_fail (self != NULL);

  if (connected && !self->connected) {
    if (self->ever_connected)
      self->reconnects++;
    self->ever_connected = TRUE;
  }
  self->connected = connected;
}

void
pcr_gateway_metrics_set_online (PcrGatewayMetrics * self,
    const gchar * device, gboolean online)
{
  DeviceFigures *d;

  g_return_if_fail (self != NULL && pcr_id_is_valid (device));

  d = g_hash_table_lookup (self->devices, device);
  if (d == NULL) {
    d = g_new0 (DeviceFigures, 1);
    pcr_metrics_init (&d->report);
    g_hash_table_insert (self->devices, g_strdup (device), d);
  }
  d->online = online;
}

void
pcr_gateway_metrics_report (PcrGatewayMetrics * self, const gchar * device,
    PcrMetrics * report, gint64 now_us)
{
  DeviceFigures *d;

  g_return_if_fail (self != NULL && device != NULL && report != NULL);

  d = g_hash_table_lookup (self->devices, device);
  if (d == NULL)
    return;
  pcr_metrics_clear (&d->report);
  /* the strings move over */
  d->report = *report;
  report->encoder = report->source = NULL;
  d->report_us = now_us;
  d->have_report = TRUE;
}

void
pcr_gateway_metrics_forget (PcrGatewayMetrics * self, const gchar * device)
{
  g_return_if_fail (self != NULL);

  if (device == NULL)
    g_hash_table_remove_all (self->devices);
  else
    g_hash_table_remove (self->devices, device);
}

/* ---- the exposition ---- */

/* A label value: backslash, double quote and line feed escaped. */
static void
append_label (GString * out, const gchar * name, const gchar * value)
{
  const gchar *p;

  g_string_append_printf (out, "%s=\"", name);
  for (p = value; *p; p++) {
    if (*p == '\\' || *p == '"')
      g_string_append_c (out, '\\');
    if (*p == '\n')
      g_string_append (out, "\\n");
    else
      g_string_append_c (out, *p);
  }
  g_string_append_c (out, '"');
}

static void
family (GString * out, const gchar * name, const gchar * type,
    const gchar * help)
{
  g_string_append_printf (out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
      name, type);
}

/* Fifteen digits, so 0.1 reads 0.1 (dtostr's 17 give 0.10000000000000001). */
static void
append_number (GString * out, gdouble value)
{
  gchar number[G_ASCII_DTOSTR_BUF_SIZE];

  g_string_append (out, g_ascii_formatd (number, sizeof (number), "%.15g",
          value));
}

/* A sample: @name{device="D"[,@label="@value"]} @value. */
static void
sample (GString * out, const gchar * name, const gchar * device,
    const gchar * label, const gchar * label_value, gdouble value)
{
  g_string_append (out, name);
  if (device) {
    g_string_append_c (out, '{');
    append_label (out, "device", device);
    if (label) {
      g_string_append_c (out, ',');
      append_label (out, label, label_value);
    }
    g_string_append_c (out, '}');
  }
  g_string_append_c (out, ' ');
  append_number (out, value);
  g_string_append_c (out, '\n');
}

static gint
compare_keys (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const gchar **) a, *(const gchar **) b);
}

/* The keys of @table, sorted: a stable order for a person reading it. */
static GPtrArray *
sorted_keys (GHashTable * table)
{
  GPtrArray *keys = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (keys, key);
  g_ptr_array_sort (keys, compare_keys);
  return keys;
}

static void
render_gateway (PcrGatewayMetrics * self, GString * out, guint sessions)
{
  g_autoptr (GPtrArray) keys = sorted_keys (self->requests);
  guint i;

  family (out, "picamrtc_gateway_http_requests_total", "counter",
      "HTTP requests answered, by route and status code.");
  for (i = 0; i < keys->len; i++) {
    const gchar *key = g_ptr_array_index (keys, i);
    const gchar *nl = strchr (key, '\n');
    g_autofree gchar *route = g_strndup (key, nl - key);

    g_string_append (out, "picamrtc_gateway_http_requests_total{");
    append_label (out, "route", route);
    g_string_append_c (out, ',');
    append_label (out, "code", nl + 1);
    g_string_append_printf (out, "} %" G_GUINT64_FORMAT "\n",
        *(guint64 *) g_hash_table_lookup (self->requests, key));
  }
  family (out, "picamrtc_gateway_sessions", "gauge",
      "Viewer sessions open now.");
  sample (out, "picamrtc_gateway_sessions", NULL, NULL, NULL, sessions);
  family (out, "picamrtc_gateway_relay_sessions", "gauge",
      "Viewer sessions through Janus open now (counted in "
      "picamrtc_gateway_sessions too).");
  sample (out, "picamrtc_gateway_relay_sessions", NULL, NULL, NULL,
      self->relay_sessions);
  family (out, "picamrtc_gateway_answer_seconds", "histogram",
      "Time from an offer sent to a device to its answer.");
  for (i = 0; i < G_N_ELEMENTS (answer_buckets); i++) {
    g_string_append (out, "picamrtc_gateway_answer_seconds_bucket{le=\"");
    append_number (out, answer_buckets[i]);
    g_string_append_printf (out, "\"} %" G_GUINT64_FORMAT "\n",
        self->answer_counts[i]);
  }
  g_string_append_printf (out, "picamrtc_gateway_answer_seconds_bucket"
      "{le=\"+Inf\"} %" G_GUINT64_FORMAT "\n", self->answers);
  sample (out, "picamrtc_gateway_answer_seconds_sum", NULL, NULL, NULL,
      self->answer_sum);
  sample (out, "picamrtc_gateway_answer_seconds_count", NULL, NULL, NULL,
      self->answers);
  family (out, "picamrtc_gateway_mqtt_connected", "gauge",
      "1 while the gateway is connected to the MQTT broker.");
  sample (out, "picamrtc_gateway_mqtt_connected", NULL, NULL, NULL,
      self->connected);
  family (out, "picamrtc_gateway_mqtt_reconnects_total", "counter",
      "Connections to the broker after the first.");
  sample (out, "picamrtc_gateway_mqtt_reconnects_total", NULL, NULL, NULL,
      self->reconnects);
}

/* What a device's report holds, one family at a time. */
typedef enum
{
  FIGURE_VIEWERS,
  FIGURE_RESTARTS,
  FIGURE_NACKS,
  FIGURE_RETRANSMISSIONS,
} Figure;

static const struct
{
  const gchar *name, *type, *help;
} figures[] = {
  [FIGURE_VIEWERS] = {"picamrtc_device_viewers", "gauge",
      "Viewers the device serves, as it last reported."},
  [FIGURE_RESTARTS] = {"picamrtc_device_camera_restarts_total", "counter",
      "Times the device's camera came back after an error."},
  [FIGURE_NACKS] = {"picamrtc_device_nacks_total", "counter",
      "Packets the device's viewers asked for again (NACKs)."},
  [FIGURE_RETRANSMISSIONS] = {"picamrtc_device_retransmissions_total",
      "counter", "Packets the device sent again."},
};

static gint64
figure_value (const PcrMetrics * m, Figure f)
{
  switch (f) {
    case FIGURE_VIEWERS:
      return m->viewers;
    case FIGURE_RESTARTS:
      return m->restarts;
    case FIGURE_NACKS:
      return m->nacks;
    case FIGURE_RETRANSMISSIONS:
      return m->retransmissions;
  }
  return -1;
}

/* Per rendition (fps, bitrate) and per viewer estimate. */
static const struct
{
  const gchar *name, *help;
} per_stream[] = {
  {"picamrtc_device_frames_per_second",
      "Frames per second the device's encoder delivered, by rendition."},
  {"picamrtc_device_sent_bytes_per_second",
      "Bytes per second the device's encoder delivered, by rendition."},
  {"picamrtc_device_viewer_estimate_bytes_per_second",
      "The device's bandwidth estimates of its viewers' links in bytes per "
      "second: the least, the median and the most."},
};

static void
render_devices (PcrGatewayMetrics * self, GString * out, GPtrArray * ids)
{
  static const gchar *const stats[] = { "min", "median", "max" };
  guint i, f, r, k;

  family (out, "picamrtc_device_online", "gauge",
      "1 while the device's status says it is reachable, 0 when offline.");
  for (i = 0; i < ids->len; i++) {
    DeviceFigures *d = g_hash_table_lookup (self->devices, ids->pdata[i]);

    sample (out, "picamrtc_device_online", ids->pdata[i], NULL, NULL,
        d->online);
  }
  family (out, "picamrtc_device_info", "gauge",
      "Always 1: the device's video encoder and source in labels.");
  for (i = 0; i < ids->len; i++) {
    DeviceFigures *d = g_hash_table_lookup (self->devices, ids->pdata[i]);

    if (!d->have_report)
      continue;
    g_string_append (out, "picamrtc_device_info{");
    append_label (out, "device", ids->pdata[i]);
    g_string_append_c (out, ',');
    append_label (out, "encoder", d->report.encoder ? d->report.encoder : "");
    g_string_append_c (out, ',');
    append_label (out, "source", d->report.source ? d->report.source : "");
    g_string_append (out, "} 1\n");
  }
  for (f = 0; f < G_N_ELEMENTS (figures); f++) {
    family (out, figures[f].name, figures[f].type, figures[f].help);
    for (i = 0; i < ids->len; i++) {
      DeviceFigures *d = g_hash_table_lookup (self->devices, ids->pdata[i]);
      gint64 value = figure_value (&d->report, f);

      if (d->have_report && value >= 0)
        sample (out, figures[f].name, ids->pdata[i], NULL, NULL, value);
    }
  }
  for (k = 0; k < G_N_ELEMENTS (per_stream); k++) {
    family (out, per_stream[k].name, "gauge", per_stream[k].help);
    for (i = 0; i < ids->len; i++) {
      DeviceFigures *d = g_hash_table_lookup (self->devices, ids->pdata[i]);
      const PcrMetrics *m = &d->report;
      guint estimates[3] = { m->estimate_min, m->estimate_median,
        m->estimate_max
      };

      if (!d->have_report)
        continue;
      for (r = 0; k < 2 && r < m->n_renditions; r++) {
        /* bytes: Prometheus' base unit (promtool says so) */
        gdouble value = k == 0 ? m->renditions[r].fps :
            m->renditions[r].bitrate / 8.0;

        if (value >= 0)
          sample (out, per_stream[k].name, ids->pdata[i], "rendition",
              m->renditions[r].name, value);
      }
      for (r = 0; k == 2 && m->have_estimates && r < 3; r++)
        sample (out, per_stream[k].name, ids->pdata[i], "stat", stats[r],
            estimates[r] / 8.0);
    }
  }
}

/* Reports older than STALE_INTERVALS of their interval are dropped. */
static void
drop_stale (PcrGatewayMetrics * self, gint64 now_us)
{
  GHashTableIter iter;
  DeviceFigures *d;

  g_hash_table_iter_init (&iter, self->devices);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) & d)) {
    guint interval = d->report.interval ? d->report.interval :
        DEFAULT_INTERVAL_S;

    if (d->have_report && now_us - d->report_us >
        (gint64) STALE_INTERVALS * interval * G_USEC_PER_SEC) {
      d->have_report = FALSE;
      pcr_metrics_clear (&d->report);
      pcr_metrics_init (&d->report);
    }
  }
}

gchar *
pcr_gateway_metrics_render (PcrGatewayMetrics * self, guint sessions,
    gint64 now_us, gsize * len)
{
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GPtrArray) ids = NULL;

  g_return_val_if_fail (self != NULL, NULL);

  drop_stale (self, now_us);
  render_gateway (self, out, sessions);
  ids = sorted_keys (self->devices);
  render_devices (self, out, ids);
  if (len)
    *len = out->len;
  return g_string_free (g_steal_pointer (&out), FALSE);
}
