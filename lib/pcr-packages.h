/* Which Debian package ships a GStreamer element, so a missing one can be
 * reported with what to install. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The Debian package that ships the element @factory ("picamrtc" for this
 * project's own), or NULL when unknown. */
const gchar *pcr_debian_package_for_element (const gchar * factory);

G_END_DECLS
