/* Quoting text from the network (a viewer, a device, the broker, an HTTP
 * client) into log lines and error replies: the one helper every module
 * uses, so a hostile peer can neither forge log lines nor send an error
 * reply of unbounded size through us. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* @text (nullable: "") as one printable line of at most @max bytes (for
 * @max >= 3), ending in "..." when it was cut. Printable UTF-8 characters
 * are kept; control characters, line and paragraph separators, format
 * characters (bidi overrides) and bytes that are not UTF-8 each become
 * '?'. Applied again with the same @max, it changes nothing. */
gchar *pcr_quote_untrusted (const gchar * text, gsize max);

/* The @max for one value from a config file or the command line (a key's
 * value, a path, a URL) quoted into a message. */
#define PCR_QUOTE_MAX_VALUE 256

G_END_DECLS
