/* The main() of the gst-check element tests: each test binary keeps a
 * plugin registry of its own under the build tree (not shared with the
 * tests meson runs beside it), then runs its suite. */
#pragma once

#include <gst/check/gstcheck.h>

static inline void
pcr_check_own_registry (const gchar * name)
{
  const gchar *build = g_getenv ("PICAMRTC_BUILD_ROOT");
  g_autofree gchar *file = NULL;
  g_autofree gchar *registry = NULL;

  if (build == NULL)
    return;
  file = g_strdup_printf ("registry-%s.bin", name);
  registry = g_build_filename (build, "tests", file, NULL);
  g_setenv ("GST_REGISTRY", registry, TRUE);
}

/* @registry: the registry file's middle name; @suite: Suite *(void). */
#define PCR_CHECK_MAIN(registry, name, suite)                           \
  int                                                                   \
  main (int argc, char **argv)                                          \
  {                                                                     \
    pcr_check_own_registry (registry);                                  \
    gst_check_init (&argc, &argv);                                      \
    return gst_check_run_suite (suite (), name, __FILE__);              \
  }
