/* Checks the shipped pipeline descriptions against the real GStreamer
 * registry: every file in pipelines/ parses after placeholder substitution
 * (a missing element is only tolerated when it exists solely on hardware
 * this machine lacks, and is reported with its Debian package), and the
 * description the service builds for --source test parses fully, reaches
 * PLAYING and produces constrained-baseline H.264 byte-stream starting with
 * a key frame that carries SPS and PPS, quickly. The service binary itself
 * is run too: a camera that fails mid-stream is restarted, EOS exits 0, and
 * start-up errors exit 2 naming the key or the Debian package. */
#include <signal.h>
#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>

#include "pcr-select.h"

#include "pcr-check-main.h"

/* Elements that exist only where the hardware does (the Pi's codec). */
static const gchar *hardware_only[] = { "v4l2h264enc", "v4l2convert", NULL };

static gchar *
pipelines_dir (void)
{
  const gchar *root = g_getenv ("PICAMRTC_SOURCE_ROOT");

  fail_unless (root != NULL, "PICAMRTC_SOURCE_ROOT is not set");
  return g_build_filename (root, "pipelines", NULL);
}

static gint
compare_paths (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const gchar **) a, *(const gchar **) b);
}

static GPtrArray *
pipeline_files (void)
{
  g_autofree gchar *dir = pipelines_dir ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GDir) d = g_dir_open (dir, 0, &error);
  GPtrArray *files = g_ptr_array_new_with_free_func (g_free);
  const gchar *name;

  fail_unless (d != NULL, "cannot list %s: %s", dir,
      error ? error->message : "?");
  while ((name = g_dir_read_name (d)) != NULL) {
    if (g_str_has_suffix (name, ".pipeline"))
      g_ptr_array_add (files, g_build_filename (dir, name, NULL));
  }
  g_ptr_array_sort (files, compare_paths);
  return files;
}

/* Parses without FATAL_ERRORS so every missing element is collected. Fails
 * on a syntax error or a missing element that is not hardware-only. */
static void
check_parses (const gchar * what, const gchar * desc)
{
  g_autoptr (GstParseContext) ctx = gst_parse_context_new ();
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) missing = NULL;
  GstElement *pipeline;
  guint i;

  pipeline = gst_parse_launch_full (desc, ctx, GST_PARSE_FLAG_NONE, &error);
  missing = gst_parse_context_get_missing_elements (ctx);

  if (error != NULL &&
      !g_error_matches (error, GST_PARSE_ERROR,
          GST_PARSE_ERROR_NO_SUCH_ELEMENT)) {
    gst_clear_object (&pipeline);
    fail ("%s: does not parse: %s\n  %s", what, error->message, desc);
  }

  for (i = 0; missing != NULL && missing[i] != NULL; i++) {
    const gchar *package = pcr_debian_package_for_element (missing[i]);
    gboolean hw = g_strv_contains (hardware_only, missing[i]);

    g_print ("%s: element %s is missing here (Debian package %s)%s\n", what,
        missing[i], package ? package : "unknown",
        hw ? ": hardware-only, tolerated" : "");
    if (!hw) {
      gst_clear_object (&pipeline);
      fail ("%s: needs %s, which is not installed (Debian package %s)",
          what, missing[i], package ? package : "unknown");
    }
  }
  fail_unless (pipeline != NULL, "%s: no pipeline", what);
  gst_object_unref (pipeline);
}

GST_START_TEST (test_pipeline_files)
{
  g_autoptr (GPtrArray) files = pipeline_files ();
  const gchar *expected[] = { "pi4.pipeline", "pi5.pipeline",
    "test-pattern.pipeline", "usb-webcam.pipeline", NULL
  };
  guint i;

  for (i = 0; expected[i] != NULL; i++) {
    g_autofree gchar *dir = pipelines_dir ();
    g_autofree gchar *path = g_build_filename (dir, expected[i], NULL);

    fail_unless (g_file_test (path, G_FILE_TEST_IS_REGULAR), "%s is missing",
        path);
  }

  for (i = 0; i < files->len; i++) {
    const gchar *path = g_ptr_array_index (files, i);
    g_autofree gchar *base = g_path_get_basename (path);
    g_autoptr (PcrConfig) config = pcr_config_new ();
    g_autoptr (GError) error = NULL;
    g_autofree gchar *text = NULL;
    g_autofree gchar *desc = NULL;
    g_autofree gchar *size = NULL;

    /* each says in a comment what board it is for */
    fail_unless (g_file_get_contents (path, &text, NULL, NULL));
    fail_unless (text[0] == '#', "%s does not start with a # comment", base);

    /* the placeholders make the file follow the command line */
    config->width = 640;
    config->height = 480;
    config->pipeline = g_strdup (path);
    desc = pcr_build_pipeline (config, NULL, &error);
    fail_unless (desc != NULL, "%s: %s", base, error ? error->message : "?");
    size = g_strdup ("width=640,height=480");
    fail_unless (strstr (desc, size) != NULL,
        "%s does not use ${WIDTH} and ${HEIGHT}: %s", base, desc);
    fail_unless (strstr (desc, "${") == NULL, "%s: %s", base, desc);
    fail_unless (g_str_has_suffix (desc, "mqttwebrtcsink name=sink"),
        "%s does not end in mqttwebrtcsink name=sink: %s", base, desc);

    GST_INFO ("%s: %s", base, desc);
    check_parses (base, desc);

    /* the commented audio lines, uncommented, parse too (the ALSA source
     * stood in for by a tone, for machines without gstreamer1.0-alsa) */
    {
      const gchar *audio = strstr (text, "\n# Audio to viewers");
      g_autoptr (GRegex) alsa = g_regex_new ("alsasrc device=[^ \n]*", 0, 0,
          NULL);
      g_autoptr (GString) uncommented = NULL;
      g_autofree gchar *tmp = NULL;
      g_autofree gchar *with_audio = NULL;
      g_autoptr (PcrConfig) audio_config = pcr_config_new ();

      fail_unless (audio != NULL, "%s has no commented audio lines", base);
      fail_unless (strstr (audio, "! sink.sink_audio") != NULL, "%s", base);
      /* from there on only */
      uncommented = g_string_new (audio);
      g_string_replace (uncommented, "\n#  ", "\n", 0);
      g_string_prepend_len (uncommented, text, audio - text);
      tmp = g_regex_replace_literal (alsa, uncommented->str, -1, 0,
          "audiotestsrc is-live=true", 0, NULL);
      audio_config->pipeline = g_build_filename (g_get_tmp_dir (),
          "picamrtc-test-audio.pipeline", NULL);
      fail_unless (g_file_set_contents (audio_config->pipeline, tmp, -1,
              NULL));
      with_audio = pcr_build_pipeline (audio_config, NULL, &error);
      g_unlink (audio_config->pipeline);
      fail_unless (with_audio != NULL, "%s", error ? error->message : "?");
      fail_unless (g_str_has_suffix (with_audio, "! sink.sink_audio"),
          "%s: %s", base, with_audio);
      check_parses (base, with_audio);
    }
  }
}

GST_END_TEST;

GST_START_TEST (test_probe)
{
  gint64 start = g_get_monotonic_time ();
  g_autoptr (PcrPlatform) platform = pcr_platform_probe ();
  gint64 ms = (g_get_monotonic_time () - start) / 1000;

  /* no camera here: the probe must still come back, and soon */
  g_print ("probe: %" G_GINT64_FORMAT " ms, libcamera camera: %s, V4L2 "
      "capture device: %s\n", ms, platform->libcamera_camera ? "yes" : "no",
      GST_STR_NULL (platform->v4l2_capture_device));
  fail_unless (ms < 10000, "probing took %" G_GINT64_FORMAT " ms", ms);
  fail_unless (pcr_platform_has_element (platform, "videotestsrc"));
  fail_unless (pcr_platform_has_element (platform, "mqttwebrtcsink"),
      "the build tree's mqttwebrtcsink is not registered");
}

GST_END_TEST;

typedef struct
{
  GMutex lock;
  guint buffers;
  gint64 first_us;              /* monotonic time of the first buffer */
  GstBuffer *first;             /* its contents */
  GstCaps *caps;
} Capture;

static GstPadProbeReturn
on_buffer (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Capture *c = data;
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);

  g_mutex_lock (&c->lock);
  if (c->buffers++ == 0) {
    c->first_us = g_get_monotonic_time ();
    c->first = gst_buffer_ref (buffer);
    c->caps = gst_pad_get_current_caps (pad);
  }
  g_mutex_unlock (&c->lock);
  return GST_PAD_PROBE_OK;
}

/* NAL unit types in an Annex B byte-stream buffer, as a bit set. */
static guint32
nal_types (GstBuffer * buffer)
{
  GstMapInfo map;
  guint32 types = 0;
  gsize i;

  fail_unless (gst_buffer_map (buffer, &map, GST_MAP_READ));
  for (i = 0; i + 3 < map.size; i++) {
    if (map.data[i] == 0 && map.data[i + 1] == 0 && map.data[i + 2] == 1)
      types |= 1u << (map.data[i + 3] & 0x1f);
  }
  gst_buffer_unmap (buffer, &map);
  return types;
}

GST_START_TEST (test_service_test_source)
{
  g_autoptr (PcrConfig) config = pcr_config_new ();
  g_autoptr (PcrPlatform) platform = pcr_platform_probe_full (FALSE);
  g_autoptr (PcrSelection) sel = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *desc = NULL;
  g_autofree gchar *local = NULL;
  g_auto (GStrv) low = NULL;
  g_autoptr (GstElement) pipeline = NULL;
  g_autoptr (GstElement) out = NULL;
  g_autoptr (GstPad) pad = NULL;
  const GstStructure *s;
  Capture c = { 0 };
  gint64 start;
  guint32 types;
  gint i;

  g_free (config->source);
  config->source = g_strdup ("test");
  sel = pcr_select (config, platform, &error);
  fail_unless (sel != NULL, "%s", error ? error->message : "?");
  g_print ("source: %s\nencoder: %s\n", sel->source_reason,
      sel->encoder_reason);
  desc = pcr_build_pipeline (config, sel, &error);
  fail_unless (desc != NULL, "%s", error ? error->message : "?");

  /* exactly what the service parses, mqttwebrtcsink included */
  {
    g_autoptr (GstParseContext) ctx = gst_parse_context_new ();
    GstElement *full = gst_parse_launch_full (desc, ctx,
        GST_PARSE_FLAG_FATAL_ERRORS, &error);

    fail_unless (full != NULL, "the service's pipeline does not parse: %s\n"
        "  %s", error ? error->message : "?", desc);
    gst_object_unref (full);
  }

  /* then run it with the sink's pad caps in front of a fakesink (and the
   * low rendition, its valve closed, into one of its own that does not wait
   * for a buffer) */
  fail_unless (g_str_has_suffix (desc, " ! mqttwebrtcsink name=sink"));
  desc[strlen (desc) - strlen (" ! mqttwebrtcsink name=sink")] = '\0';
  low = g_strsplit (desc, "sink.sink_low", 2);
  g_free (desc);
  desc = g_strjoinv ("fakesink sync=false async=false", low);
  /* and the raw frames for still images into one more */
  g_strfreev (low);
  low = g_strsplit (desc, "sink.snapshot", 2);
  g_free (desc);
  desc = g_strjoinv ("fakesink sync=false async=false", low);
  local = g_strdup_printf ("%s ! capsfilter caps=\"video/x-h264,"
      "stream-format=byte-stream,alignment=au\" ! fakesink name=out "
      "sync=false", desc);
  pipeline = gst_parse_launch_full (local, NULL, GST_PARSE_FLAG_FATAL_ERRORS,
      &error);
  fail_unless (pipeline != NULL, "%s", error ? error->message : "?");
  out = gst_bin_get_by_name (GST_BIN (pipeline), "out");
  pad = gst_element_get_static_pad (out, "sink");
  g_mutex_init (&c.lock);
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, &c, NULL);

  start = g_get_monotonic_time ();
  fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING) !=
      GST_STATE_CHANGE_FAILURE);
  fail_unless (gst_element_get_state (pipeline, NULL, NULL,
          10 * GST_SECOND) == GST_STATE_CHANGE_SUCCESS);

  /* a second of video */
  for (i = 0; i < 100; i++) {
    g_autoptr (GstMessage) msg =
        gst_bus_timed_pop_filtered (GST_ELEMENT_BUS (pipeline),
        50 * GST_MSECOND, GST_MESSAGE_ERROR | GST_MESSAGE_EOS);
    guint n;

    if (msg != NULL) {
      g_autoptr (GError) err = NULL;

      if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR)
        gst_message_parse_error (msg, &err, NULL);
      fail ("%s from %s: %s", GST_MESSAGE_TYPE_NAME (msg),
          GST_MESSAGE_SRC_NAME (msg), err ? err->message : "");
    }
    g_mutex_lock (&c.lock);
    n = c.buffers;
    g_mutex_unlock (&c.lock);
    if (n >= 30)
      break;
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);

  g_print ("%u H.264 frames, the first %" G_GINT64_FORMAT " ms after "
      "PLAYING was asked for\n", c.buffers, (c.first_us - start) / 1000);
  fail_unless (c.buffers >= 30, "only %u frames in the time of %d",
      c.buffers, i);
  /* a viewer must see its first frame within a second of its offer */
  fail_unless (c.first_us - start < G_USEC_PER_SEC,
      "the first frame came %" G_GINT64_FORMAT " ms after start",
      (c.first_us - start) / 1000);

  fail_unless (c.caps != NULL);
  s = gst_caps_get_structure (c.caps, 0);
  fail_unless_equals_string (gst_structure_get_name (s), "video/x-h264");
  fail_unless_equals_string (gst_structure_get_string (s, "profile"),
      "constrained-baseline");
  fail_unless_equals_string (gst_structure_get_string (s, "stream-format"),
      "byte-stream");

  /* the first frame is a key frame (IDR) with SPS and PPS in front */
  fail_if (GST_BUFFER_FLAG_IS_SET (c.first, GST_BUFFER_FLAG_DELTA_UNIT));
  types = nal_types (c.first);
  fail_unless (types & (1u << 7), "no SPS in the first frame");
  fail_unless (types & (1u << 8), "no PPS in the first frame");
  fail_unless (types & (1u << 5), "no IDR slice in the first frame");

  gst_buffer_unref (c.first);
  gst_caps_unref (c.caps);
  g_mutex_clear (&c.lock);
}

GST_END_TEST;

/* ---- the service binary ------------------------------------------------- */

/* The broker address is a closed loopback port: the sink keeps retrying in
 * the background, which is all these cases need. */
#define NO_BROKER "mqtt://127.0.0.1:1"

typedef struct
{
  GMainLoop *loop;
  GDataInputStream *err;
  GString *log;
  guint camera_errors;
  guint restarts;
  guint want_restarts;
} Watch;

static gchar *
service_path (void)
{
  const gchar *build = g_getenv ("PICAMRTC_BUILD_ROOT");
  gchar *path;

  fail_unless (build != NULL, "PICAMRTC_BUILD_ROOT is not set");
  path = g_build_filename (build, "src", "picamrtc", "picamrtc", NULL);
  fail_unless (g_file_test (path, G_FILE_TEST_IS_EXECUTABLE),
      "%s is not built", path);
  return path;
}

static GSubprocess *
spawn_service (const gchar * const *args)
{
  g_autofree gchar *path = service_path ();
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  GSubprocess *proc;
  guint i;

  g_ptr_array_add (argv, path);
  for (i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  proc = g_subprocess_newv ((const gchar * const *) argv->pdata,
      G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
      &error);
  fail_unless (proc != NULL, "cannot run %s: %s", path,
      error ? error->message : "?");
  return proc;
}

static void read_next_line (Watch * w);

static void
on_line (GObject * source, GAsyncResult * res, gpointer data)
{
  Watch *w = data;
  g_autofree gchar *line = NULL;

  line = g_data_input_stream_read_line_finish_utf8 (w->err, res, NULL, NULL);
  if (line == NULL) {
    g_main_loop_quit (w->loop);
    return;
  }
  g_string_append_printf (w->log, "%s\n", line);
  if (strstr (line, "camera error from identity") != NULL)
    w->camera_errors++;
  if (strstr (line, "camera: restarted") != NULL)
    w->restarts++;
  if (w->want_restarts > 0 && w->restarts >= w->want_restarts) {
    g_main_loop_quit (w->loop);
    return;
  }
  read_next_line (w);
}

static void
read_next_line (Watch * w)
{
  g_data_input_stream_read_line_async (w->err, G_PRIORITY_DEFAULT, NULL,
      on_line, w);
}

static gboolean
on_timeout (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
on_exited (GObject * source, GAsyncResult * res, gpointer data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), res, NULL);
  g_main_loop_quit (data);
}

/* Waits up to @seconds for @proc to exit; kills it when it does not. */
static gboolean
wait_exit (GSubprocess * proc, guint seconds)
{
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  guint timeout = g_timeout_add_seconds (seconds, on_timeout, loop);

  g_subprocess_wait_async (proc, NULL, on_exited, loop);
  g_main_loop_run (loop);
  if (!g_subprocess_get_identifier (proc)) {
    g_source_remove (timeout);
    return TRUE;
  }
  g_subprocess_force_exit (proc);
  return FALSE;
}

/* A camera that fails mid-stream (identity error-after=N posts a real
 * ERROR after N buffers, as a camera that vanishes would) is stopped and
 * restarted with a growing backoff; the service lives on and stops cleanly
 * on SIGTERM. */
GST_START_TEST (test_service_restarts_camera)
{
  const gchar *args[] = { "--broker", NO_BROKER, "--device", "restart-test",
    "--always-on", "--pipeline", "videotestsrc is-live=true ! "
        "video/x-raw,width=160,height=120,framerate=30/1 ! "
        "identity error-after=15 ! x264enc tune=zerolatency "
        "speed-preset=ultrafast key-int-max=${KEYINT} ! "
        "video/x-h264,profile=(string)constrained-baseline ! "
        "mqttwebrtcsink name=sink", NULL
  };
  g_autoptr (GSubprocess) proc = spawn_service (args);
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr (GDataInputStream) err = NULL;
  Watch w = { 0 };
  guint timeout;

  err = g_data_input_stream_new (g_subprocess_get_stderr_pipe (proc));
  w.loop = loop;
  w.err = err;
  w.log = g_string_new (NULL);
  w.want_restarts = 2;
  /* 0.5 s to the first error, 1 s backoff, 0.5 s, 2 s backoff */
  timeout = g_timeout_add_seconds (30, on_timeout, loop);
  read_next_line (&w);
  g_main_loop_run (loop);
  g_source_remove (timeout);

  g_print ("%s", w.log->str);
  fail_unless (w.camera_errors >= 2, "%u camera errors seen", w.camera_errors);
  fail_unless (w.restarts >= 2, "the camera restarted %u times", w.restarts);
  fail_unless (strstr (w.log->str, "restarting in 1 s") != NULL);
  fail_unless (strstr (w.log->str, "restarting in 2 s") != NULL);
  fail_if (strstr (w.log->str, "end of stream") != NULL,
      "the failing camera's EOS ended the service");
  fail_unless (g_subprocess_get_identifier (proc) != NULL,
      "the service exited");

  g_subprocess_send_signal (proc, SIGTERM);
  fail_unless (wait_exit (proc, 10), "no exit within 10 s of SIGTERM");
  fail_unless (g_subprocess_get_if_exited (proc));
  fail_unless_equals_int (g_subprocess_get_exit_status (proc), 0);
  g_string_free (w.log, TRUE);
}

GST_END_TEST;

/* picamrtc --audio test --print-pipeline: the description parses with
 * our plugin, the tone reaching sink.sink_audio, control and talkback on
 * the sink. */
GST_START_TEST (test_service_print_audio)
{
  g_autofree gchar *path = service_path ();
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GstElement) pipeline = NULL;
  g_autoptr (GstElement) sink = NULL;
  g_autoptr (GstPad) audio = NULL;
  g_autofree gchar *talkback = NULL;
  gboolean control = FALSE;
  const gchar *argv[] = { path, "--broker", NO_BROKER, "--source", "test",
    "--audio", "test", "--control=on", "--talkback", "file:/tmp/tb.raw",
    "--print-pipeline", NULL
  };
  gint status = -1;

  fail_unless (g_spawn_sync (NULL, (gchar **) argv, NULL, 0, NULL, NULL,
          &out, &err, &status, &error), "%s", error ? error->message : "?");
  fail_unless (g_spawn_check_wait_status (status, NULL), "%s", err);
  fail_unless (strstr (err, "audio: test tone") != NULL, "%s", err);
  g_strstrip (out);
  g_print ("%s\n", out);
  fail_unless (g_str_has_suffix (out, " ! sink.sink_audio"), "%s", out);

  pipeline = gst_parse_launch_full (out, NULL, GST_PARSE_FLAG_FATAL_ERRORS,
      &error);
  fail_unless (pipeline != NULL, "does not parse: %s\n  %s",
      error ? error->message : "?", out);
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  fail_unless (sink != NULL);
  audio = gst_element_get_static_pad (sink, "sink_audio");
  fail_unless (audio != NULL && gst_pad_is_linked (audio));
  g_object_get (sink, "control", &control, "talkback", &talkback, NULL);
  fail_unless (control);
  fail_unless_equals_string (talkback, "audioconvert ! audioresample ! "
      "audio/x-raw,format=S16LE,rate=48000,channels=1 ! filesink "
      "location=/tmp/tb.raw");
}

GST_END_TEST;

/* A finite source ends in EOS: the service exits 0. */
GST_START_TEST (test_service_eos)
{
  const gchar *args[] = { "--broker", NO_BROKER, "--device", "eos-test",
    "--always-on", "--pipeline", "videotestsrc is-live=true num-buffers=15 ! "
        "video/x-raw,width=160,height=120,framerate=30/1 ! x264enc "
        "tune=zerolatency speed-preset=ultrafast ! "
        "video/x-h264,profile=(string)constrained-baseline ! "
        "mqttwebrtcsink name=sink", NULL
  };
  g_autoptr (GSubprocess) proc = spawn_service (args);

  fail_unless (wait_exit (proc, 20), "no exit after EOS");
  fail_unless (g_subprocess_get_if_exited (proc));
  fail_unless_equals_int (g_subprocess_get_exit_status (proc), 0);
}

GST_END_TEST;

/* Bad configuration and missing elements: exit 2 with one line naming the
 * key or the Debian package. */
GST_START_TEST (test_service_start_errors)
{
  g_autofree gchar *dir = pipelines_dir ();
  g_autofree gchar *pi4 = g_build_filename (dir, "pi4.pipeline", NULL);
  gboolean have_v4l2h264enc = gst_registry_check_feature_version
      (gst_registry_get (), "v4l2h264enc", 1, 0, 0);
  const gchar *frob[] = { "--pipeline",
    "videotestsrc ! frobnicate ! mqttwebrtcsink name=sink", NULL
  };
  const gchar *width[] = { "--width", "5000", NULL };
  const gchar *nosink[] = { "--pipeline", "videotestsrc ! fakesink", NULL };
  const gchar *hw[] = { "--pipeline", pi4, NULL };
  const struct
  {
    const gchar *const *args;
    const gchar *expect;
  } cases[] = {
    {frob, "frobnicate (package unknown)"},
    {width, "width: 5000 is out of range"},
    {nosink, "pipeline: the description has no mqttwebrtcsink"},
    {hw, "v4l2h264enc (gstreamer1.0-plugins-good)"},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (GSubprocess) proc = NULL;
    g_autoptr (GError) error = NULL;
    g_autofree gchar *err = NULL;

    if (cases[i].args == hw && have_v4l2h264enc)
      continue;
    proc = spawn_service (cases[i].args);
    fail_unless (g_subprocess_communicate_utf8 (proc, NULL, NULL, NULL, &err,
            &error), "%s", error ? error->message : "?");
    g_print ("%s -> %s", cases[i].args[1], err);
    fail_unless (g_subprocess_get_if_exited (proc));
    fail_unless_equals_int (g_subprocess_get_exit_status (proc), 2);
    fail_unless (strstr (err, cases[i].expect) != NULL, "\"%s\" not in %s",
        cases[i].expect, err);
  }
}

GST_END_TEST;

static Suite *
pipelines_suite (void)
{
  Suite *s = suite_create ("pipelines");
  TCase *tc = tcase_create ("general");

  tcase_set_timeout (tc, 60);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_pipeline_files);
  tcase_add_test (tc, test_probe);
  tcase_add_test (tc, test_service_test_source);
  tcase_add_test (tc, test_service_restarts_camera);
  tcase_add_test (tc, test_service_eos);
  tcase_add_test (tc, test_service_print_audio);
  tcase_add_test (tc, test_service_start_errors);
  return s;
}

PCR_CHECK_MAIN ("pipelines", "pipelines", pipelines_suite)
