/* HTTP helpers for the gateway on libsoup 3: one-line error replies, CORS,
 * bearer tokens compared in constant time, and static files served from one
 * directory without a way out of it. JSON bodies go through
 * pcr_json_parse_object() (lib/pcr-json.h). */
#pragma once

#include <libsoup/soup.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS
#define PCR_HTTP_ERROR (pcr_http_error_quark ())
    GQuark pcr_http_error_quark (void);

/* The longest error line a reply carries (before its newline). */
#define PCR_HTTP_MAX_ERROR_LINE 1024

/* A status and a one-line text/plain body ("@message\n", @message quoted
 * with pcr_quote_untrusted() to at most PCR_HTTP_MAX_ERROR_LINE bytes). */
void pcr_http_set_error (SoupServerMessage * msg, guint status,
    const gchar * message);

/* Status and body; @content_type may be NULL for an empty body. */
void pcr_http_set_body (SoupServerMessage * msg, guint status,
    const gchar * content_type, const gchar * body, gsize len);

/* Access-Control-Allow-Origin and -Expose-Headers (every /api, /whep reply). */
void pcr_http_add_cors (SoupServerMessage * msg);
/* The preflight headers of an OPTIONS reply. */
void pcr_http_add_preflight (SoupServerMessage * msg);

/* TRUE when the request's media type (parameters ignored, case-insensitive)
 * is @type. */
gboolean pcr_http_content_type_is (SoupServerMessage * msg, const gchar * type);

typedef enum
{
  PCR_HTTP_TOKEN_OK,
  PCR_HTTP_TOKEN_MISSING,
  PCR_HTTP_TOKEN_WRONG,
} PcrHttpTokenCheck;

/* "Authorization: Bearer <token>" against @token, in time that does not
 * depend on where they differ. */
PcrHttpTokenCheck pcr_http_check_bearer (SoupServerMessage * msg,
    const gchar * token);

/* Compares two secrets in time that depends on neither content. */
gboolean pcr_http_secret_equal (const gchar * a, const gchar * b);

/* Serializes @node compactly. */
gchar *pcr_http_json_to_string (JsonNode * node, gsize * len);

/* The Content-Type for a file name. */
const gchar *pcr_http_mime_type (const gchar * path);

/* Serves @path (the decoded request path) from @root (a canonical absolute
 * directory) on @msg: 200 with the file, or 404. "/" and directories give
 * their index.html; "..", hidden names and anything that resolves (through
 * symlinks too) outside @root give 404. Returns the status set. */
guint pcr_http_serve_file (SoupServerMessage * msg, const gchar * root,
    const gchar * path);

typedef enum
{
  PCR_HTTP_RANGE_NONE,          /* serve it all (no Range, or one to ignore) */
  PCR_HTTP_RANGE_OK,            /* serve [*start, *end) with 206 */
  PCR_HTTP_RANGE_UNSATISFIABLE, /* 416 with "Content-Range: bytes * / size" */
} PcrHttpRange;

/* A request's "Range" (@value, nullable) against a body of @size bytes.
 * One byte range is
 * served ("bytes=A-B", "bytes=A-", "bytes=-N"); several ranges, other
 * units and malformed values are ignored (RFC 9110 lets a server ignore
 * Range). @end is exclusive. */
PcrHttpRange pcr_http_byte_range (const gchar * value, guint64 size,
    guint64 * start, guint64 * end);

/* @n_bytes random bytes from the kernel's CSPRNG as 2 * @n_bytes lowercase
 * hex digits. */
gchar *pcr_http_random_hex (gsize n_bytes, GError ** error);

G_END_DECLS
