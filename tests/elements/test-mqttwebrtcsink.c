/* Checks mqttwebrtcsink as a user meets it, without any MQTT broker (the
 * broker URI points at a closed port on loopback, 127.0.0.1:1, so the
 * client keeps retrying in the background): the factory and its H.264
 * byte-stream sink caps; every property with its default, range and the
 * masking of secrets; the errors that bad settings or a missing plugin
 * package post when going to READY; live and quick state cycles without
 * hangs, bus errors, leaked threads or leaked objects; a whole encoded
 * stream with no viewers passing through to EOS; and the rate limit on the
 * key-frame requests sent to the encoder. Two tests guard bugs this suite
 * found (a lost main-loop quit at stop; the downstream key-unit event
 * restarting the rate-limit window). */
#include <string.h>

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include "pcr-settings.h"

#include "pcr-check-main.h"

/* A closed port on loopback: nothing is ever sent anywhere else. */
#define NO_BROKER "mqtt://127.0.0.1:1"
#define STATE_CYCLES 20
#define CYCLES_TIMEOUT_S 40
#define STATE_TIMEOUT (5 * GST_SECOND)

static GstElement *
make_sink (void)
{
  GstElement *sink = gst_element_factory_make ("mqttwebrtcsink", NULL);

  fail_unless (sink != NULL, "no mqttwebrtcsink in the registry");
  g_object_set (sink, "broker-uri", NO_BROKER, NULL);
  return sink;
}

static guint
count_threads (void)
{
  g_autoptr (GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  guint n = 0;

  fail_unless (dir != NULL, "cannot list /proc/self/task");
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

/* Threads that GLib's shared pool keeps idle for a while may take a moment
 * to go; waits up to 3 s for the count to come down to @limit. */
static guint
threads_settle_to (guint limit)
{
  gint64 deadline = g_get_monotonic_time () + 3 * G_TIME_SPAN_SECOND;
  guint n;

  while ((n = count_threads ()) > limit && g_get_monotonic_time () < deadline)
    g_usleep (50 * G_TIME_SPAN_MILLISECOND);
  return n;
}

static GstElement *
find_child_by_factory (GstBin * bin, const gchar * factory)
{
  GstIterator *it = gst_bin_iterate_elements (bin);
  GValue item = G_VALUE_INIT;
  GstElement *found = NULL;
  gboolean done = FALSE;

  while (!done) {
    switch (gst_iterator_next (it, &item)) {
      case GST_ITERATOR_OK:{
        GstElement *child = g_value_get_object (&item);
        GstElementFactory *f = gst_element_get_factory (child);

        if (f && g_str_equal (GST_OBJECT_NAME (f), factory)) {
          found = gst_object_ref (child);
          done = TRUE;
        }
        g_value_reset (&item);
        break;
      }
      case GST_ITERATOR_RESYNC:
        gst_iterator_resync (it);
        break;
      default:
        done = TRUE;
        break;
    }
  }
  g_value_unset (&item);
  gst_iterator_free (it);
  return found;
}

/* Sets @element (alone, with its own bus) to READY, expects failure and
 * returns the ERROR it posted. */
static GstMessage *
ready_fails_with_error (GstElement * element)
{
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;

  gst_element_set_bus (element, bus);
  fail_unless_equals_int (gst_element_set_state (element, GST_STATE_READY),
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "READY failed without an ERROR on the bus");
  fail_unless_equals_int (gst_element_set_state (element, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  gst_element_set_bus (element, NULL);
  gst_object_unref (bus);
  return msg;
}

/* Both the message and the debug text, so a check can look in either. */
static gchar *
error_text (GstMessage * msg, GQuark * domain, gint * code)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *debug = NULL;

  gst_message_parse_error (msg, &error, &debug);
  if (domain)
    *domain = error->domain;
  if (code)
    *code = error->code;
  return g_strdup_printf ("%s | %s", error->message, debug ? debug : "");
}

/* ------------------------------------------------------------------------ */

GST_START_TEST (test_factory_and_caps)
{
  GstElementFactory *factory = gst_element_factory_find ("mqttwebrtcsink");
  const GList *templates;
  GstStaticPadTemplate *templ = NULL;
  g_autoptr (GstCaps) caps = NULL;
  g_autoptr (GstCaps) expected = NULL;
  GstElement *pipeline, *src, *enc, *filter, *sink;
  g_autoptr (GstCaps) filter_caps = NULL;

  fail_unless (factory != NULL, "mqttwebrtcsink is not registered");
  fail_unless_equals_string (gst_element_factory_get_metadata (factory,
          GST_ELEMENT_METADATA_KLASS), "Sink/Network/WebRTC");

  /* An always sink pad and a requested one for the low rendition, both
   * H.264 byte-stream, one access unit per buffer, in a profile every
   * browser decodes; a requested one for raw frames (still images) and
   * one for Opus audio. */
  templates = gst_element_factory_get_static_pad_templates (factory);
  fail_unless_equals_int (g_list_length ((GList *) templates), 4);
  expected = gst_caps_from_string ("video/x-h264, "
      "stream-format=(string)byte-stream, alignment=(string)au, "
      "profile=(string){ constrained-baseline, baseline }");
  for (; templates; templates = templates->next) {
    templ = templates->data;
    fail_unless_equals_int (templ->direction, GST_PAD_SINK);
    if (g_str_equal (templ->name_template, "sink")) {
      fail_unless_equals_int (templ->presence, GST_PAD_ALWAYS);
    } else if (g_str_equal (templ->name_template, "sink_low")) {
      fail_unless_equals_int (templ->presence, GST_PAD_REQUEST);
    } else if (g_str_equal (templ->name_template, "snapshot")) {
      fail_unless_equals_int (templ->presence, GST_PAD_REQUEST);
      caps = gst_static_caps_get (&templ->static_caps);
      fail_unless (gst_caps_get_size (caps) == 1 &&
          gst_structure_has_name (gst_caps_get_structure (caps, 0),
              "video/x-raw"), "snapshot caps are %" GST_PTR_FORMAT, caps);
      gst_clear_caps (&caps);
      continue;
    } else if (g_str_equal (templ->name_template, "sink_audio")) {
      fail_unless_equals_int (templ->presence, GST_PAD_REQUEST);
      caps = gst_static_caps_get (&templ->static_caps);
      fail_unless (gst_caps_get_size (caps) == 1 &&
          gst_structure_has_name (gst_caps_get_structure (caps, 0),
              "audio/x-opus"), "sink_audio caps are %" GST_PTR_FORMAT, caps);
      gst_clear_caps (&caps);
      continue;
    } else {
      fail ("unexpected pad template %s", templ->name_template);
    }
    caps = gst_static_caps_get (&templ->static_caps);
    fail_unless (gst_caps_is_equal (caps, expected),
        "sink template caps are %" GST_PTR_FORMAT, caps);
    gst_clear_caps (&caps);
  }
  gst_object_unref (factory);

  /* Raw video cannot go in... */
  pipeline = gst_pipeline_new (NULL);
  src = gst_element_factory_make ("videotestsrc", NULL);
  sink = make_sink ();
  gst_bin_add_many (GST_BIN (pipeline), src, sink, NULL);
  fail_if (gst_element_link (src, sink), "raw video linked to the sink");

  /* ...the encoder's byte-stream does. */
  enc = gst_element_factory_make ("x264enc", NULL);
  filter = gst_element_factory_make ("capsfilter", NULL);
  fail_unless (enc != NULL && filter != NULL);
  filter_caps = gst_caps_from_string ("video/x-h264,stream-format=byte-stream");
  g_object_set (filter, "caps", filter_caps, NULL);
  gst_bin_add_many (GST_BIN (pipeline), enc, filter, NULL);
  fail_unless (gst_element_link_many (src, enc, filter, sink, NULL),
      "x264enc ! video/x-h264,stream-format=byte-stream did not link");
  gst_object_unref (pipeline);
}

GST_END_TEST;

typedef struct
{
  const gchar *name;
  const gchar *def;
} StringDefault;

GST_START_TEST (test_property_defaults)
{
  static const StringDefault strings[] = {
    {"broker-uri", "mqtt://127.0.0.1:1883"},
    {"username", NULL},
    {"password", NULL},
    {"ca-file", NULL},
    {"cert-file", NULL},
    {"key-file", NULL},
    {"device-id", "cam1"},
    {"topic-prefix", "picamrtc"},
    {"stun-server", NULL},
    {"turn-server", NULL},
    {"ice-addresses", NULL},
    {"camera-state", "online"},
  };
  GstElement *sink = gst_element_factory_make ("mqttwebrtcsink", NULL);
  GObjectClass *klass = G_OBJECT_GET_CLASS (sink);
  GParamSpec *pspec;
  guint i, max_viewers, viewers;
  gint playout_delay;

  for (i = 0; i < G_N_ELEMENTS (strings); i++) {
    g_autofree gchar *value = NULL;

    pspec = g_object_class_find_property (klass, strings[i].name);
    fail_unless (pspec != NULL, "no property %s", strings[i].name);
    fail_unless ((pspec->flags & G_PARAM_READWRITE) == G_PARAM_READWRITE,
        "%s is not read-write", strings[i].name);
    fail_unless_equals_string (G_PARAM_SPEC_STRING (pspec)->default_value,
        strings[i].def);
    g_object_get (sink, strings[i].name, &value, NULL);
    fail_unless_equals_string (value, strings[i].def);
  }

  g_object_get (sink, "max-viewers", &max_viewers, "viewers", &viewers,
      "playout-delay-max-ms", &playout_delay, NULL);
  fail_unless_equals_int (max_viewers, 8);
  fail_unless_equals_int (viewers, 0);
  /* No playout-delay extension unless asked for; 12 bits of 10 ms is the
   * most the header can say. */
  fail_unless_equals_int (playout_delay, -1);
  pspec = g_object_class_find_property (klass, "playout-delay-max-ms");
  fail_unless (pspec != NULL);
  fail_unless_equals_int (G_PARAM_SPEC_INT (pspec)->minimum, -1);
  fail_unless_equals_int (G_PARAM_SPEC_INT (pspec)->maximum, 40950);
  gst_object_unref (sink);
}

GST_END_TEST;

GST_START_TEST (test_property_round_trip)
{
  static const gchar *plain[][2] = {
    {"broker-uri", "mqtts://broker.example:8883"},
    {"username", "camera-user"},
    {"ca-file", "/etc/picamrtc/ca.pem"},
    {"cert-file", "/etc/picamrtc/cam1.crt"},
    {"key-file", "/etc/picamrtc/cam1.key"},
    {"device-id", "garage_door-2"},
    {"topic-prefix", "home/cams"},
    {"stun-server", "stun://stun.example:3478"},
    {"ice-addresses", "127.0.0.1,192.0.2.7"},
  };
  static const gchar *reset_to_default[][2] = {
    {"broker-uri", "mqtt://127.0.0.1:1883"},
    {"device-id", "cam1"},
    {"topic-prefix", "picamrtc"},
  };
  GstElement *sink = gst_element_factory_make ("mqttwebrtcsink", NULL);
  guint i;

  for (i = 0; i < G_N_ELEMENTS (plain); i++) {
    g_autofree gchar *value = NULL;

    g_object_set (sink, plain[i][0], plain[i][1], NULL);
    g_object_get (sink, plain[i][0], &value, NULL);
    fail_unless_equals_string (value, plain[i][1]);
  }
  /* Unsetting a setting that must have a value brings the default back. */
  for (i = 0; i < G_N_ELEMENTS (reset_to_default); i++) {
    g_autofree gchar *value = NULL;

    g_object_set (sink, reset_to_default[i][0], NULL, NULL);
    g_object_get (sink, reset_to_default[i][0], &value, NULL);
    fail_unless_equals_string (value, reset_to_default[i][1]);
  }
  /* Optional ones can be cleared. */
  {
    g_autofree gchar *value = NULL;

    g_object_set (sink, "username", NULL, NULL);
    g_object_get (sink, "username", &value, NULL);
    fail_unless (value == NULL);
  }
  gst_object_unref (sink);
}

GST_END_TEST;

/* Secrets set on the element never come back out, where gst-launch -v,
 * gst-inspect or a debug log would print them. */
GST_START_TEST (test_secrets_masked)
{
  GstElement *sink = gst_element_factory_make ("mqttwebrtcsink", NULL);
  g_autofree gchar *password = NULL;
  g_autofree gchar *turn = NULL;
  g_autofree gchar *cleared = NULL;

  g_object_set (sink, "password", "pw-s3cret-42",
      "turn-server", "turn://turnuser:turn-s3cret-99@turn.example:3478", NULL);
  g_object_get (sink, "password", &password, "turn-server", &turn, NULL);
  fail_unless_equals_string (password, "***");
  fail_unless (turn != NULL && strstr (turn, "***") != NULL,
      "turn-server reads back as %s", turn);
  fail_if (strstr (turn, "turn-s3cret-99") != NULL,
      "turn-server leaks its password: %s", turn);

  /* Unset stays unset rather than reading back as a mask. */
  g_object_set (sink, "password", NULL, NULL);
  g_object_get (sink, "password", &cleared, NULL);
  fail_unless (cleared == NULL);
  gst_object_unref (sink);
}

GST_END_TEST;

GST_START_TEST (test_camera_state)
{
  GstElement *sink = gst_element_factory_make ("mqttwebrtcsink", NULL);
  gchar *state = NULL;

  g_object_set (sink, "camera-state", "error", NULL);
  g_object_get (sink, "camera-state", &state, NULL);
  fail_unless_equals_string (state, "error");
  g_free (state);

  /* Anything else would be published in the status; it is refused and the
   * last good value kept. */
  g_object_set (sink, "camera-state", "offline", NULL);
  g_object_get (sink, "camera-state", &state, NULL);
  fail_unless_equals_string (state, "error");
  g_free (state);
  g_object_set (sink, "camera-state", "bogus", NULL);
  g_object_get (sink, "camera-state", &state, NULL);
  fail_unless_equals_string (state, "error");
  g_free (state);

  g_object_set (sink, "camera-state", "online", NULL);
  g_object_get (sink, "camera-state", &state, NULL);
  fail_unless_equals_string (state, "online");
  g_free (state);
  gst_object_unref (sink);
}

GST_END_TEST;

GST_START_TEST (test_max_viewers_range)
{
  GstElement *sink = gst_element_factory_make ("mqttwebrtcsink", NULL);
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (sink),
      "max-viewers");
  guint value;

  fail_unless (G_IS_PARAM_SPEC_UINT (pspec));
  fail_unless_equals_int (G_PARAM_SPEC_UINT (pspec)->minimum, 1);
  fail_unless_equals_int (G_PARAM_SPEC_UINT (pspec)->maximum, 64);

  g_object_set (sink, "max-viewers", 1, NULL);
  g_object_get (sink, "max-viewers", &value, NULL);
  fail_unless_equals_int (value, 1);
  g_object_set (sink, "max-viewers", 64, NULL);
  g_object_get (sink, "max-viewers", &value, NULL);
  fail_unless_equals_int (value, 64);

  /* Out of range: GObject warns and the value stays. */
  ASSERT_WARNING (g_object_set (sink, "max-viewers", 0, NULL));
  ASSERT_WARNING (g_object_set (sink, "max-viewers", 65, NULL));
  g_object_get (sink, "max-viewers", &value, NULL);
  fail_unless_equals_int (value, 64);
  gst_object_unref (sink);
}

GST_END_TEST;

GST_START_TEST (test_viewers_read_only)
{
  GstElement *sink = gst_element_factory_make ("mqttwebrtcsink", NULL);
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (sink),
      "viewers");
  guint viewers;

  fail_unless (pspec != NULL);
  fail_unless (pspec->flags & G_PARAM_READABLE);
  fail_if (pspec->flags & G_PARAM_WRITABLE, "viewers is writable");
  ASSERT_WARNING (g_object_set (sink, "viewers", 3, NULL));
  g_object_get (sink, "viewers", &viewers, NULL);
  fail_unless_equals_int (viewers, 0);
  gst_object_unref (sink);
}

GST_END_TEST;

/* ------------------------------------------------------------------------ */

/* On the heap: a worker that hangs keeps using it after the test gave up. */
typedef struct
{
  GMutex lock;
  GCond cond;
  gboolean done;
  gchar *failure;               /* what went wrong, or NULL */
  gchar *where;                 /* the step under way, for a hang report */
  GstElement *pipeline;
  GstElement *sink;             /* no ref: the pipeline holds it */
} Cycles;

static void
cycles_step (Cycles * c, guint cycle, const gchar * step)
{
  g_mutex_lock (&c->lock);
  g_free (c->where);
  c->where = g_strdup_printf ("cycle %u: %s", cycle, step);
  g_mutex_unlock (&c->lock);
}

static gboolean
cycles_change (Cycles * c, guint cycle, GstState state, const gchar * step)
{
  GstStateChangeReturn ret;
  GstBus *bus;
  GstMessage *msg;

  cycles_step (c, cycle, step);
  ret = gst_element_set_state (c->pipeline, state);
  if (ret == GST_STATE_CHANGE_ASYNC)
    ret = gst_element_get_state (c->pipeline, NULL, NULL, STATE_TIMEOUT);
  if (ret == GST_STATE_CHANGE_FAILURE || ret == GST_STATE_CHANGE_ASYNC) {
    c->failure = g_strdup_printf ("cycle %u: %s returned %s", cycle, step,
        gst_element_state_change_return_get_name (ret));
    return FALSE;
  }
  bus = gst_element_get_bus (c->pipeline);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR | GST_MESSAGE_WARNING);
  gst_object_unref (bus);
  if (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    g_autofree gchar *text = error_text (msg, NULL, NULL);

    c->failure = g_strdup_printf ("cycle %u: ERROR after %s: %s", cycle,
        step, text);
    gst_message_unref (msg);
    return FALSE;
  }
  gst_clear_message (&msg);
  return TRUE;
}

static gpointer
cycles_thread (gpointer data)
{
  Cycles *c = data;
  guint i;

  for (i = 0; i < STATE_CYCLES; i++) {
    guint viewers = 1;

    if (!cycles_change (c, i, GST_STATE_READY, "NULL->READY") ||
        !cycles_change (c, i, GST_STATE_PAUSED, "READY->PAUSED") ||
        !cycles_change (c, i, GST_STATE_PLAYING, "PAUSED->PLAYING"))
      break;
    /* Let some frames flow through the bin. */
    g_usleep (30 * G_TIME_SPAN_MILLISECOND);
    g_object_get (c->sink, "viewers", &viewers, NULL);
    if (viewers != 0) {
      c->failure = g_strdup_printf ("cycle %u: %u viewers with no broker", i,
          viewers);
      break;
    }
    if (!cycles_change (c, i, GST_STATE_NULL, "PLAYING->NULL"))
      break;
  }
  gst_element_set_state (c->pipeline, GST_STATE_NULL);
  g_mutex_lock (&c->lock);
  c->done = TRUE;
  g_cond_signal (&c->cond);
  g_mutex_unlock (&c->lock);
  return NULL;
}

/* A camera service starts and stops the pipeline whenever viewers come and
 * go, broker or not: each cycle must be quick and leave nothing behind. */
GST_START_TEST (test_state_cycles_without_broker)
{
  Cycles *c = g_new0 (Cycles, 1);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *where = NULL;
  gboolean done;
  GstElement *sink;
  GThread *thread;
  gint64 deadline;
  guint before, after;

  c->pipeline = gst_parse_launch ("videotestsrc is-live=true ! "
      "video/x-raw,width=320,height=240,framerate=30/1 ! "
      "x264enc tune=zerolatency speed-preset=ultrafast ! "
      "mqttwebrtcsink name=sink broker-uri=" NO_BROKER, &error);
  fail_unless (c->pipeline != NULL, "%s", error ? error->message : "?");
  sink = c->sink = gst_bin_get_by_name (GST_BIN (c->pipeline), "sink");
  fail_unless (sink != NULL);
  /* Leave only the pipeline's reference, so unref finalizes it. */
  gst_object_unref (sink);

  /* One cycle first, so the threads GStreamer keeps for good (system
   * clock, the shared pool's idle threads) are in the baseline. */
  fail_if (gst_element_set_state (c->pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE);
  fail_unless_equals_int (gst_element_get_state (c->pipeline, NULL, NULL,
          STATE_TIMEOUT), GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (gst_element_set_state (c->pipeline, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  before = count_threads ();

  g_mutex_init (&c->lock);
  g_cond_init (&c->cond);
  thread = g_thread_new ("state-cycles", cycles_thread, c);
  deadline = g_get_monotonic_time () + CYCLES_TIMEOUT_S * G_TIME_SPAN_SECOND;
  g_mutex_lock (&c->lock);
  while (!c->done)
    if (!g_cond_wait_until (&c->cond, &c->lock, deadline))
      break;
  done = c->done;
  where = g_strdup (c->where);
  g_mutex_unlock (&c->lock);
  /* A hang leaves the worker stuck: report where, do not join. */
  fail_unless (done, "state changes hung at %s (%d s)", where,
      CYCLES_TIMEOUT_S);
  g_thread_join (thread);
  fail_unless (c->failure == NULL, "%s", c->failure);

  after = threads_settle_to (before);
  fail_unless (after <= before, "%u threads before %d state cycles, %u after",
      before, STATE_CYCLES, after);

  /* Unreffing the pipeline finalizes it and the sink. */
  gst_check_objects_destroyed_on_unref (c->pipeline, sink, NULL);
  g_free (c->where);
  g_mutex_clear (&c->lock);
  g_cond_clear (&c->cond);
  g_free (c);
}

GST_END_TEST;

/* Quick start/stop, as when a viewer leaves right after arriving or the
 * service retries: several elements at once, so the scheduler sometimes
 * runs the stop before the new I/O thread got going. */
#define QUICK_WORKERS 8
#define QUICK_RUN_US (3 * G_TIME_SPAN_SECOND)
#define QUICK_TIMEOUT_US (QUICK_RUN_US + 5 * G_TIME_SPAN_SECOND)

/* On the heap: a worker that hangs keeps using it after the test gave up. */
typedef struct
{
  GMutex lock;
  GCond cond;
  guint finished;               /* under lock */
  gint cycles;                  /* atomic */
  gint failed;                  /* atomic */
} QuickRun;

static gpointer
quick_cycles (gpointer data)
{
  QuickRun *run = data;
  GstElement *sink = make_sink ();
  gint64 end = g_get_monotonic_time () + QUICK_RUN_US;

  while (g_get_monotonic_time () < end) {
    if (gst_element_set_state (sink, GST_STATE_READY) !=
        GST_STATE_CHANGE_SUCCESS ||
        gst_element_set_state (sink, GST_STATE_NULL) !=
        GST_STATE_CHANGE_SUCCESS) {
      g_atomic_int_set (&run->failed, TRUE);
      break;
    }
    g_atomic_int_inc (&run->cycles);
  }
  gst_element_set_state (sink, GST_STATE_NULL);
  gst_object_unref (sink);
  g_mutex_lock (&run->lock);
  run->finished++;
  g_cond_signal (&run->cond);
  g_mutex_unlock (&run->lock);
  return NULL;
}

/* Regression: stop() used to quit the context's main
 * loop with g_main_loop_quit() and joins its thread, but a quit that comes
 * before the thread has entered g_main_loop_run() is lost (run sets
 * is_running again), so READY->NULL blocks forever in g_thread_join(). */
GST_START_TEST (test_quick_start_stop)
{
  QuickRun *run = g_new0 (QuickRun, 1);
  GThread *threads[QUICK_WORKERS];
  guint before = count_threads ();
  gint64 deadline = g_get_monotonic_time () + QUICK_TIMEOUT_US;
  guint finished, i;

  g_mutex_init (&run->lock);
  g_cond_init (&run->cond);
  for (i = 0; i < QUICK_WORKERS; i++)
    threads[i] = g_thread_new ("quick-cycles", quick_cycles, run);
  g_mutex_lock (&run->lock);
  while (run->finished < QUICK_WORKERS)
    if (!g_cond_wait_until (&run->cond, &run->lock, deadline))
      break;
  finished = run->finished;
  g_mutex_unlock (&run->lock);
  /* Stuck workers are left alone (and @run with them): joining them would
   * hang the test. */
  fail_unless (finished == QUICK_WORKERS, "%u of %d elements hung in a quick "
      "NULL->READY->NULL cycle (after %d cycles in all)",
      QUICK_WORKERS - finished, QUICK_WORKERS, g_atomic_int_get (&run->cycles));

  for (i = 0; i < QUICK_WORKERS; i++)
    g_thread_join (threads[i]);
  fail_if (g_atomic_int_get (&run->failed), "a quick state change failed");
  fail_unless (threads_settle_to (before) <= before,
      "quick start/stop cycles leave threads behind");
  g_mutex_clear (&run->lock);
  g_cond_clear (&run->cond);
  g_free (run);
}

GST_END_TEST;

/* ------------------------------------------------------------------------ */

/* Sets @property to the bad @value and checks that going to READY fails
 * with a SETTINGS error in the words of the shared validator @check, the
 * very words picamrtc and picamrtc-gateway print for that value. Returns
 * the sink, still in NULL. */
static GstElement *
start_fails_with_shared_message (const gchar * property, const gchar * value,
    gboolean (*check) (const gchar *, GError **))
{
  GstElement *sink = make_sink ();
  GstMessage *msg;
  g_autofree gchar *text = NULL;
  g_autofree gchar *expected = NULL;
  g_autoptr (GError) shared = NULL;
  GQuark domain;
  gint code;

  g_object_set (sink, property, value, NULL);
  msg = ready_fails_with_error (sink);
  text = error_text (msg, &domain, &code);
  fail_unless (domain == GST_RESOURCE_ERROR && code ==
      GST_RESOURCE_ERROR_SETTINGS, "%s \"%s\": %s", property, value, text);
  fail_if (check (value, &shared), "%s accepts \"%s\"", property, value);
  expected = g_strdup_printf ("%s: %s", property, shared->message);
  fail_unless (strstr (text, expected) != NULL,
      "the error for %s \"%s\" is not the shared one \"%s\": %s", property,
      value, expected, text);
  gst_message_unref (msg);
  return sink;
}

GST_START_TEST (test_invalid_device_id)
{
  static const gchar *bad[] = { "bad/id", "", "with space", "plus+",
    "hash#", "0123456789012345678901234567890123456789012345678901234567890"
        "12345"
  };
  guint before = count_threads ();
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    GstElement *sink = start_fails_with_shared_message ("device-id", bad[i],
        pcr_check_device_id);

    /* Fixing the setting is enough to start. */
    g_object_set (sink, "device-id", "cam-2", NULL);
    fail_unless_equals_int (gst_element_set_state (sink, GST_STATE_READY),
        GST_STATE_CHANGE_SUCCESS);
    fail_unless_equals_int (gst_element_set_state (sink, GST_STATE_NULL),
        GST_STATE_CHANGE_SUCCESS);
    gst_check_object_destroyed_on_unref (sink);
  }
  fail_unless (threads_settle_to (before) <= before,
      "failed starts leave threads behind");
}

GST_END_TEST;

GST_START_TEST (test_invalid_topic_prefix)
{
  static const gchar *bad[] = { "cams/#", "#", "cams/+/x", "" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++)
    gst_object_unref (start_fails_with_shared_message ("topic-prefix", bad[i],
            pcr_check_topic_prefix));
}

GST_END_TEST;

GST_START_TEST (test_invalid_broker_uri)
{
  /* { URI, what the error must say } */
  static const gchar *bad[][2] = {
    {"http://x", "mqtt://"},
    {"not a uri", "not a URI"},
    {"mqtt://", "no host"},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    GstElement *sink = make_sink ();
    GstMessage *msg;
    g_autofree gchar *text = NULL;
    GQuark domain;
    gint code;

    g_object_set (sink, "broker-uri", bad[i][0], NULL);
    msg = ready_fails_with_error (sink);
    text = error_text (msg, &domain, &code);
    fail_unless (domain == GST_RESOURCE_ERROR, "%s: %s", bad[i][0], text);
    fail_unless (strstr (text, bad[i][0]) != NULL,
        "the error does not quote the URI \"%s\": %s", bad[i][0], text);
    fail_unless (strstr (text, bad[i][1]) != NULL,
        "the error for \"%s\" does not say \"%s\": %s", bad[i][0], bad[i][1],
        text);
    gst_message_unref (msg);
    gst_object_unref (sink);
  }
}

GST_END_TEST;

/* A relay URL that cannot be a Janus server fails at READY with the same
 * one-line message as picamrtc's --relay; a good one is taken. */
GST_START_TEST (test_relay_url_checked)
{
  GstElement *sink = make_sink ();
  GstMessage *msg;
  g_autofree gchar *text = NULL;
  gboolean on_demand = FALSE;

  g_object_get (sink, "relay-on-demand", &on_demand, NULL);
  fail_unless (on_demand, "relay-on-demand is on by default");
  g_object_set (sink, "relay", "http://127.0.0.1:8088/janus?room=x", NULL);
  msg = ready_fails_with_error (sink);
  text = error_text (msg, NULL, NULL);
  fail_unless (strstr (text, "room must be a number") != NULL,
      "the error does not say what is wrong: %s", text);
  gst_message_unref (msg);
  gst_object_unref (sink);
}

GST_END_TEST;

/* mqtts:// with a CA file that is not there fails at once, naming the file,
 * instead of retrying a TLS handshake that can never work. */
GST_START_TEST (test_missing_ca_file)
{
  GstElement *sink = make_sink ();
  GstMessage *msg;
  g_autofree gchar *text = NULL;

  g_object_set (sink, "broker-uri", "mqtts://127.0.0.1:1",
      "ca-file", "/nonexistent/picamrtc-ca.pem", NULL);
  msg = ready_fails_with_error (sink);
  text = error_text (msg, NULL, NULL);
  fail_unless (strstr (text, "/nonexistent/picamrtc-ca.pem") != NULL,
      "the error does not name the CA file: %s", text);
  gst_message_unref (msg);
  gst_object_unref (sink);
}

GST_END_TEST;

/* A client certificate is checked when going to READY, with the same
 * messages as picamrtc's --cert-file and --key-file: half a pair, plain
 * mqtt://, a file that is no certificate. */
GST_START_TEST (test_client_cert_errors)
{
  static const gchar *cases[][4] = {
    /* broker-uri, cert-file, key-file, what the error says */
    {"mqtts://127.0.0.1:1", "/etc/picamrtc/cam1.crt", NULL,
        "cert-file: set key-file too"},
    {"mqtts://127.0.0.1:1", NULL, "/etc/picamrtc/cam1.key",
        "key-file: set cert-file too"},
    {"mqtt://127.0.0.1:1", "/etc/picamrtc/cam1.crt", "/etc/picamrtc/cam1.key",
        "cert-file: needs an mqtts:// broker"},
    {"mqtts://127.0.0.1:1", "/dev/null", "/dev/null",
        "cert-file \"/dev/null\" is not a PEM certificate"},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    GstElement *sink = make_sink ();
    GstMessage *msg;
    g_autofree gchar *text = NULL;

    g_object_set (sink, "broker-uri", cases[i][0], "cert-file", cases[i][1],
        "key-file", cases[i][2], NULL);
    msg = ready_fails_with_error (sink);
    text = error_text (msg, NULL, NULL);
    fail_unless (strstr (text, cases[i][3]) != NULL,
        "case %u: expected \"%s\" in: %s", i, cases[i][3], text);
    gst_message_unref (msg);
    gst_object_unref (sink);
  }
}

GST_END_TEST;

/* With the broker down the client sits in a reconnect back-off; stopping
 * the camera must not wait for it (the service stops the pipeline whenever
 * the last viewer leaves). */
GST_START_TEST (test_stop_while_reconnecting)
{
  GstElement *sink = make_sink ();
  gint64 start;

  fail_unless_equals_int (gst_element_set_state (sink, GST_STATE_READY),
      GST_STATE_CHANGE_SUCCESS);
  /* Past the first attempt and the first 1 s back-off. */
  g_usleep (2500 * G_TIME_SPAN_MILLISECOND);
  start = g_get_monotonic_time ();
  fail_unless_equals_int (gst_element_set_state (sink, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless (g_get_monotonic_time () - start < G_TIME_SPAN_SECOND,
      "READY->NULL took %" G_GINT64_FORMAT " ms with the broker down",
      (g_get_monotonic_time () - start) / G_TIME_SPAN_MILLISECOND);
  gst_check_object_destroyed_on_unref (sink);
}

GST_END_TEST;

/* A machine without a plugin package gets told which package to install,
 * when the camera starts rather than when the first viewer arrives. */
static void
check_missing_element (const gchar * factory, const gchar * package)
{
  GstRegistry *registry = gst_registry_get ();
  GstPluginFeature *feature = gst_registry_lookup_feature (registry, factory);
  GstElement *sink;
  GstMessage *msg;
  g_autofree gchar *text = NULL;
  GQuark domain;
  gint code;

  fail_unless (feature != NULL, "%s is not installed here", factory);
  gst_registry_remove_feature (registry, feature);

  sink = make_sink ();
  msg = ready_fails_with_error (sink);
  text = error_text (msg, &domain, &code);
  fail_unless (domain == GST_CORE_ERROR &&
      code == GST_CORE_ERROR_MISSING_PLUGIN, "without %s: %s", factory, text);
  fail_unless (strstr (text, factory) != NULL,
      "the error does not name %s: %s", factory, text);
  fail_unless (strstr (text, package) != NULL,
      "the error for %s does not name the package %s: %s", factory, package,
      text);
  gst_message_unref (msg);
  gst_object_unref (sink);

  /* Put it back for the tests that follow (when not forking). */
  gst_registry_add_feature (registry, feature);
  gst_object_unref (feature);
}

GST_START_TEST (test_missing_elements)
{
  check_missing_element ("h264parse", "gstreamer1.0-plugins-bad");
  check_missing_element ("rtph264pay", "gstreamer1.0-plugins-good");
  check_missing_element ("webrtcbin", "gstreamer1.0-plugins-bad");
}

GST_END_TEST;

/* ------------------------------------------------------------------------ */

/* Encodes @n frames of test pattern with x264enc into one-AU byte-stream
 * buffers, returned with their caps. */
static GPtrArray *
encode_frames (guint n, GstCaps ** caps)
{
  g_autofree gchar *desc = g_strdup_printf ("videotestsrc num-buffers=%u ! "
      "video/x-raw,width=320,height=240,framerate=30/1 ! "
      "x264enc speed-preset=ultrafast key-int-max=10 ! "
      "video/x-h264,stream-format=byte-stream,alignment=au,"
      "profile=constrained-baseline ! appsink name=out sync=false", n);
  g_autoptr (GError) error = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);
  GstElement *out;
  GPtrArray *buffers = g_ptr_array_new_with_free_func ((GDestroyNotify)
      gst_buffer_unref);
  GstSample *sample;

  fail_unless (pipeline != NULL, "%s", error ? error->message : "?");
  out = gst_bin_get_by_name (GST_BIN (pipeline), "out");
  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_PLAYING),
      GST_STATE_CHANGE_ASYNC);
  *caps = NULL;
  /* appsink's action signal: the tests do not link libgstapp. */
  while (TRUE) {
    sample = NULL;
    g_signal_emit_by_name (out, "try-pull-sample", 10 * GST_SECOND, &sample);
    if (!sample)
      break;
    if (!*caps)
      *caps = gst_caps_ref (gst_sample_get_caps (sample));
    g_ptr_array_add (buffers, gst_buffer_ref (gst_sample_get_buffer (sample)));
    gst_sample_unref (sample);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (out);
  gst_object_unref (pipeline);
  fail_unless_equals_int (buffers->len, n);
  fail_unless (*caps != NULL);
  return buffers;
}

static GstHarness *
harness_on_sink (GstElement * sink, GstBus * bus)
{
  GstHarness *h;

  /* Properties first: the harness takes the element to PLAYING at once. */
  gst_element_set_bus (sink, bus);
  h = gst_harness_new_with_element (sink, "sink", NULL);
  fail_unless (h != NULL);
  return h;
}

/* With nobody watching, the camera's stream is still swallowed whole (no
 * back-pressure stalls the encoder) and EOS comes out of the bin, which is
 * how gst-launch and the service notice the end of a finite source. */
GST_START_TEST (test_stream_without_viewers)
{
  GstElement *sink = make_sink ();
  GstBus *bus = gst_bus_new ();
  GstCaps *caps = NULL;
  GPtrArray *frames = encode_frames (30, &caps);
  GstHarness *h = harness_on_sink (sink, bus);
  GstMessage *msg;
  guint i, viewers;

  gst_harness_set_src_caps (h, gst_caps_ref (caps));
  for (i = 0; i < frames->len; i++)
    fail_unless_equals_int (gst_harness_push (h,
            gst_buffer_ref (g_ptr_array_index (frames, i))), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));

  msg = gst_bus_timed_pop_filtered (bus, 5 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "the bin posted no EOS");
  fail_unless_equals_int (GST_MESSAGE_TYPE (msg), GST_MESSAGE_EOS);
  fail_unless (GST_MESSAGE_SRC (msg) == GST_OBJECT (sink),
      "EOS came from %s, not the sink", GST_MESSAGE_SRC_NAME (msg));
  gst_message_unref (msg);

  g_object_get (sink, "viewers", &viewers, NULL);
  fail_unless_equals_int (viewers, 0);

  gst_harness_teardown (h);
  gst_element_set_bus (sink, NULL);
  gst_object_unref (bus);
  gst_check_object_destroyed_on_unref (sink);
  g_ptr_array_unref (frames);
  gst_caps_unref (caps);
}

GST_END_TEST;

/* The upstream key-frame request GstVideo builds
 * (gst_video_event_new_upstream_force_key_unit), made by hand because the
 * element tests do not link libgstvideo. */
static GstEvent *
force_key_unit_event (void)
{
  return gst_event_new_custom (GST_EVENT_CUSTOM_UPSTREAM,
      gst_structure_new ("GstForceKeyUnit", "running-time",
          GST_TYPE_CLOCK_TIME, GST_CLOCK_TIME_NONE, "all-headers",
          G_TYPE_BOOLEAN, TRUE, "count", G_TYPE_UINT, 0, NULL));
}

/* Counts the force-key-unit events that reached the harness (the encoder's
 * place), dropping every other upstream event. */
static guint
key_unit_requests_upstream (GstHarness * h)
{
  GstEvent *event;
  guint n = 0;

  while ((event = gst_harness_try_pull_upstream_event (h)) != NULL) {
    if (GST_EVENT_TYPE (event) == GST_EVENT_CUSTOM_UPSTREAM &&
        gst_event_has_name (event, "GstForceKeyUnit"))
      n++;
    gst_event_unref (event);
  }
  return n;
}

/* Every new viewer, PLI and FIR asks for a key frame on the parser's src
 * pad; one lossy viewer must not make the encoder produce key frames
 * back to back: at most one request per 500 ms reaches the encoder. */
GST_START_TEST (test_key_unit_rate_limit)
{
  GstElement *sink = make_sink ();
  GstBus *bus = gst_bus_new ();
  GstCaps *caps = NULL;
  GPtrArray *frames = encode_frames (10, &caps);
  GstHarness *h = harness_on_sink (sink, bus);
  GstElement *parse;
  GstPad *parse_src;
  guint i;

  gst_harness_set_src_caps (h, gst_caps_ref (caps));
  for (i = 0; i < frames->len; i++)
    fail_unless_equals_int (gst_harness_push (h,
            gst_buffer_ref (g_ptr_array_index (frames, i))), GST_FLOW_OK);
  key_unit_requests_upstream (h);

  parse = find_child_by_factory (GST_BIN (sink), "h264parse");
  fail_unless (parse != NULL, "no h264parse inside the sink");
  parse_src = gst_element_get_static_pad (parse, "src");

  /* A burst within a few milliseconds: only the first goes through. */
  for (i = 0; i < 5; i++)
    gst_pad_send_event (parse_src, force_key_unit_event ());
  fail_unless_equals_int (key_unit_requests_upstream (h), 1);

  /* The encoder answers with a key frame, which clears the parser's own
   * pending request. */
  fail_unless_equals_int (gst_harness_push (h,
          gst_buffer_ref (g_ptr_array_index (frames, 0))), GST_FLOW_OK);

  /* Still inside the 500 ms window: dropped. */
  g_usleep (200 * G_TIME_SPAN_MILLISECOND);
  gst_pad_send_event (parse_src, force_key_unit_event ());
  fail_unless_equals_int (key_unit_requests_upstream (h), 0);

  /* 600 ms after the first: a new request goes through, once. */
  g_usleep (400 * G_TIME_SPAN_MILLISECOND);
  gst_pad_send_event (parse_src, force_key_unit_event ());
  gst_pad_send_event (parse_src, force_key_unit_event ());
  fail_unless_equals_int (key_unit_requests_upstream (h), 1);

  gst_object_unref (parse_src);
  gst_object_unref (parse);
  gst_harness_teardown (h);
  gst_element_set_bus (sink, NULL);
  gst_object_unref (bus);
  gst_check_object_destroyed_on_unref (sink);
  g_ptr_array_unref (frames);
  gst_caps_unref (caps);
}

GST_END_TEST;

static GstPadProbeReturn
count_downstream_key_units (GstPad * pad, GstPadProbeInfo * info,
    gpointer user_data)
{
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);

  if (GST_EVENT_TYPE (event) == GST_EVENT_CUSTOM_DOWNSTREAM &&
      gst_event_has_name (event, "GstForceKeyUnit"))
    g_atomic_int_inc ((gint *) user_data);
  return GST_PAD_PROBE_OK;
}

/* Regression: docs/architecture.md says upstream
 * GstForceKeyUnit events are limited to one per 500 ms, but the probe also
 * counts the downstream GstForceKeyUnit that h264parse sends along with the
 * key frame answering a request. When that key frame comes more than 500 ms
 * after the request (a slow or low-frame-rate encoder, or one that only
 * makes its next regular IDR), it restarts the window: a viewer's PLI/FIR
 * right after it is dropped, and a new viewer's request is put off. */
GST_START_TEST (test_key_frame_does_not_use_up_rate_limit)
{
  GstElement *sink = make_sink ();
  GstBus *bus = gst_bus_new ();
  GstCaps *caps = NULL;
  GPtrArray *frames = encode_frames (10, &caps);
  GstHarness *h = harness_on_sink (sink, bus);
  GstElement *parse, *tee;
  GstPad *parse_src, *tee_sink;
  gint downstream = 0;
  guint i;

  gst_harness_set_src_caps (h, gst_caps_ref (caps));
  for (i = 0; i < frames->len; i++)
    fail_unless_equals_int (gst_harness_push (h,
            gst_buffer_ref (g_ptr_array_index (frames, i))), GST_FLOW_OK);
  key_unit_requests_upstream (h);

  parse = find_child_by_factory (GST_BIN (sink), "h264parse");
  tee = find_child_by_factory (GST_BIN (sink), "tee");
  fail_unless (parse != NULL && tee != NULL);
  parse_src = gst_element_get_static_pad (parse, "src");
  tee_sink = gst_element_get_static_pad (tee, "sink");
  gst_pad_add_probe (tee_sink, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
      count_downstream_key_units, &downstream, NULL);

  gst_pad_send_event (parse_src, force_key_unit_event ());
  fail_unless_equals_int (key_unit_requests_upstream (h), 1);

  /* The key frame answering it arrives late... */
  g_usleep (600 * G_TIME_SPAN_MILLISECOND);
  fail_unless_equals_int (gst_harness_push (h,
          gst_buffer_ref (g_ptr_array_index (frames, 0))), GST_FLOW_OK);
  GST_INFO ("downstream key-unit events past the parser: %d",
      g_atomic_int_get (&downstream));

  /* ...and a viewer asks right then, 600 ms after the last request. */
  gst_pad_send_event (parse_src, force_key_unit_event ());
  fail_unless_equals_int (key_unit_requests_upstream (h), 1);

  gst_object_unref (tee_sink);
  gst_object_unref (tee);
  gst_object_unref (parse_src);
  gst_object_unref (parse);
  gst_harness_teardown (h);
  gst_element_set_bus (sink, NULL);
  gst_object_unref (bus);
  gst_check_object_destroyed_on_unref (sink);
  g_ptr_array_unref (frames);
  gst_caps_unref (caps);
}

GST_END_TEST;

static GstPadProbeReturn
remember_caps (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  GstCaps **seen = user_data;
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);

  if (GST_EVENT_TYPE (event) == GST_EVENT_CAPS) {
    GstCaps *caps;

    gst_event_parse_caps (event, &caps);
    gst_caps_replace (seen, caps);
  }
  return GST_PAD_PROBE_OK;
}


/* sink_low, the low rendition's pad: requested before the pipeline plays,
 * released cleanly, requested again. */
GST_START_TEST (test_sink_low_request)
{
  GstElement *sink = make_sink ();
  GstPad *low;

  low = gst_element_request_pad_simple (sink, "sink_low");
  fail_unless (low != NULL, "no sink_low pad");
  fail_unless_equals_string (GST_PAD_NAME (low), "sink_low");
  gst_element_release_request_pad (sink, low);
  gst_object_unref (low);
  fail_unless (gst_element_get_static_pad (sink, "sink_low") == NULL);
  /* and again, after the release */
  low = gst_element_request_pad_simple (sink, "sink_low");
  fail_unless (low != NULL, "no sink_low pad after a release");
  gst_object_unref (low);
  gst_check_object_destroyed_on_unref (sink);
}

GST_END_TEST;

/* Polls @valve's drop for up to 5 s until it is @want. */
static gboolean
valve_becomes (GstElement * valve, gboolean want)
{
  gint64 end = g_get_monotonic_time () + 5 * G_TIME_SPAN_SECOND;
  gboolean drop = !want;

  while (g_get_monotonic_time () < end) {
    g_object_get (valve, "drop", &drop, NULL);
    if (drop == want)
      return TRUE;
    g_usleep (50 * 1000);
  }
  return FALSE;
}

/* The service's two-rendition shape, as gst-launch users write it: with no
 * viewer the element shuts the valve before the low encoder (which then
 * idles) and leaves both encoders at the bitrates the pipeline set; with
 * adaptive=false it leaves the valve alone. */
static void
check_low_rendition (gboolean adaptive)
{
  g_autoptr (GError) error = NULL;
  GstElement *pipeline = gst_parse_launch ("videotestsrc is-live=true ! "
      "video/x-raw,width=320,height=240,framerate=30/1 ! tee name=t "
      "t. ! queue max-size-buffers=1 leaky=downstream ! x264enc name=high "
      "tune=zerolatency speed-preset=ultrafast bitrate=900 ! s.sink "
      "t. ! queue max-size-buffers=1 leaky=downstream ! valve name=v "
      "drop=false ! videoscale ! video/x-raw,width=160,height=120 ! "
      "x264enc name=low tune=zerolatency speed-preset=ultrafast "
      "bitrate=150 ! s.sink_low "
      "mqttwebrtcsink name=s broker-uri=" NO_BROKER, &error);
  GstElement *valve, *high, *low, *sink;
  guint high_kbps = 0, low_kbps = 0;

  fail_unless (pipeline != NULL, "does not parse: %s",
      error ? error->message : "?");
  valve = gst_bin_get_by_name (GST_BIN (pipeline), "v");
  high = gst_bin_get_by_name (GST_BIN (pipeline), "high");
  low = gst_bin_get_by_name (GST_BIN (pipeline), "low");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "s");
  g_object_set (sink, "adaptive", adaptive, NULL);
  fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING) !=
      GST_STATE_CHANGE_FAILURE);
  if (adaptive) {
    fail_unless (valve_becomes (valve, TRUE), "the low encoder's valve "
        "stayed open with no viewer");
  } else {
    fail_if (valve_becomes (valve, TRUE), "adaptive=false shut the valve");
  }
  g_object_get (high, "bitrate", &high_kbps, NULL);
  g_object_get (low, "bitrate", &low_kbps, NULL);
  fail_unless_equals_int (high_kbps, 900);
  fail_unless_equals_int (low_kbps, 150);
  fail_unless (gst_element_set_state (pipeline, GST_STATE_NULL) ==
      GST_STATE_CHANGE_SUCCESS);
  gst_object_unref (valve);
  gst_object_unref (high);
  gst_object_unref (low);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
}

GST_START_TEST (test_low_rendition_idles)
{
  check_low_rendition (TRUE);
}

GST_END_TEST;

GST_START_TEST (test_not_adaptive)
{
  check_low_rendition (FALSE);
}

GST_END_TEST;

/* The bare "x264enc ! mqttwebrtcsink" of the README must give a stream that
 * browsers decode: left alone, x264enc would pick High 4:4:4. */
GST_START_TEST (test_bare_encoder_gives_baseline)
{
  GstElement *pipeline;
  GstElement *sink;
  GstPad *pad;
  GstBus *bus;
  GstMessage *msg;
  GstCaps *seen = NULL;
  const gchar *profile;

  pipeline = gst_parse_launch ("videotestsrc num-buffers=5 ! x264enc "
      "tune=zerolatency ! mqttwebrtcsink name=s "
      "broker-uri=mqtt://127.0.0.1:1", NULL);
  fail_unless (pipeline != NULL);
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "s");
  pad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, remember_caps,
      &seen, NULL);
  fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING) !=
      GST_STATE_CHANGE_FAILURE);
  bus = gst_element_get_bus (pipeline);
  msg = gst_bus_timed_pop_filtered (bus, 20 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg != NULL && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS,
      "the stream did not reach EOS");
  fail_unless (seen != NULL, "no caps reached the sink");
  profile = gst_structure_get_string (gst_caps_get_structure (seen, 0),
      "profile");
  fail_unless (g_strcmp0 (profile, "constrained-baseline") == 0 ||
      g_strcmp0 (profile, "baseline") == 0,
      "x264enc produced profile %s for the sink", profile);
  gst_message_unref (msg);
  gst_caps_unref (seen);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pad);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
}

GST_END_TEST;

static Suite *
mqttwebrtcsink_suite (void)
{
  Suite *s = suite_create ("mqttwebrtcsink");
  TCase *tc = tcase_create ("general");

  tcase_set_timeout (tc, 60);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_factory_and_caps);
  tcase_add_test (tc, test_property_defaults);
  tcase_add_test (tc, test_property_round_trip);
  tcase_add_test (tc, test_relay_url_checked);
  tcase_add_test (tc, test_secrets_masked);
  tcase_add_test (tc, test_camera_state);
  tcase_add_test (tc, test_max_viewers_range);
  tcase_add_test (tc, test_viewers_read_only);
  tcase_add_test (tc, test_state_cycles_without_broker);
  tcase_add_test (tc, test_quick_start_stop);
  tcase_add_test (tc, test_invalid_device_id);
  tcase_add_test (tc, test_invalid_topic_prefix);
  tcase_add_test (tc, test_invalid_broker_uri);
  tcase_add_test (tc, test_missing_ca_file);
  tcase_add_test (tc, test_client_cert_errors);
  tcase_add_test (tc, test_stop_while_reconnecting);
  tcase_add_test (tc, test_missing_elements);
  tcase_add_test (tc, test_stream_without_viewers);
  tcase_add_test (tc, test_bare_encoder_gives_baseline);
  tcase_add_test (tc, test_key_unit_rate_limit);
  tcase_add_test (tc, test_key_frame_does_not_use_up_rate_limit);
  tcase_add_test (tc, test_sink_low_request);
  tcase_add_test (tc, test_low_rendition_idles);
  tcase_add_test (tc, test_not_adaptive);
  return s;
}

PCR_CHECK_MAIN ("mqttwebrtcsink", "mqttwebrtcsink", mqttwebrtcsink_suite)
