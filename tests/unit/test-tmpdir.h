/* A temporary directory per test (GTest fixture) for the unit tests that
 * write config and pipeline files. Included by the test programs only. */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>

typedef struct
{
  gchar *dir;
} TmpDir;

static void
tmpdir_setup (TmpDir * t, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  t->dir = g_dir_make_tmp ("pcr-unit-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
remove_tree (const gchar * dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const gchar *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL) {
    g_autofree gchar *path = g_build_filename (dir, name, NULL);

    g_unlink (path);
  }
  g_rmdir (dir);
}

static void
tmpdir_teardown (TmpDir * t, gconstpointer data)
{
  remove_tree (t->dir);
  g_free (t->dir);
}

static gchar *
write_file (TmpDir * t, const gchar * name, const gchar * contents)
{
  g_autoptr (GError) error = NULL;
  gchar *path = g_build_filename (t->dir, name, NULL);

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  return path;
}
