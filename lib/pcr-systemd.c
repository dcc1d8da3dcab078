/* systemd notifications for Type=notify units: READY=1 once serving,
 * STATUS= lines, STOPPING=1, and WATCHDOG=1 from the owner's main loop at
 * half the interval systemd asked for (WatchdogSec=). Without libsystemd it
 * compiles to nothing. */
#include "config.h"

#include "pcr-systemd.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#ifdef HAVE_LIBSYSTEMD
static gboolean
watchdog_tick (gpointer data)
{
  sd_notify (0, "WATCHDOG=1");
  return G_SOURCE_CONTINUE;
}
#endif

GSource *
pcr_systemd_ready (GMainContext * context, const gchar * status)
{
#ifdef HAVE_LIBSYSTEMD
  uint64_t usec = 0;
  GSource *source;

  sd_notifyf (0, "READY=1\nSTATUS=%s", status ? status : "running");
  if (sd_watchdog_enabled (0, &usec) <= 0 || usec == 0)
    return NULL;
  source = g_timeout_source_new (MAX (usec / 2000, 1));
  g_source_set_callback (source, watchdog_tick, NULL, NULL);
  g_source_attach (source, context);
  return source;
#else
  return NULL;
#endif
}

void
pcr_systemd_status (const gchar * format, ...)
{
#ifdef HAVE_LIBSYSTEMD
  g_autofree gchar *status = NULL;
  va_list args;

  va_start (args, format);
  status = g_strdup_vprintf (format, args);
  va_end (args);
  sd_notifyf (0, "STATUS=%s", status);
#endif
}

void
pcr_systemd_stop (GSource * watchdog)
{
#ifdef HAVE_LIBSYSTEMD
  sd_notify (0, "STOPPING=1");
#endif
  if (watchdog) {
    g_source_destroy (watchdog);
    g_source_unref (watchdog);
  }
}
