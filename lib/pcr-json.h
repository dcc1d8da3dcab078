/* Parsing a JSON object that came from the network: an MQTT payload, a
 * device's status or an HTTP request body. The text is checked before
 * json-glib sees it, since json-glib 1.6 recurses once per nesting level
 * and accepts more than JSON. */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Deepest nesting accepted. No message, status or request body of the
 * contracts needs more than 4 levels (an offer's iceServers[].urls[]);
 * 16 leaves room for fields added later while json-glib's recursion stays
 * a few hundred bytes of stack, where "[[[[..." in a 256 KiB payload would
 * overflow it. */
#define PCR_JSON_MAX_DEPTH 16

/* Parses @len bytes of @data (no NUL needed after them) into an object
 * node (transfer full): RFC 8259 JSON (no NUL, UTF-8, no comments or
 * single quotes, no \u0000 or lone surrogates; raw control characters in
 * strings pass, as json-glib writes them), one object with nothing after
 * it, at most PCR_JSON_MAX_DEPTH deep. Anything else is a protocol error:
 * PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST, with a one-line message. The
 * caller bounds @len. */
JsonNode *pcr_json_parse_object (const gchar * data, gsize len,
    GError ** error);

G_END_DECLS
