/* HTTP helpers: replies, CORS, bearer tokens, static files and random ids.
 * Nothing here keeps state; everything that comes from a client is bounded
 * and checked before use. PCR_HTTP_ERROR is for the plumbing (no random
 * numbers); what a client got wrong is a protocol error of pcr-json.c or
 * pcr-message.c. */
#include "pcr-http.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gst/gst.h>

#include "pcr-quote.h"

GST_DEBUG_CATEGORY_STATIC (pcr_http_debug);
#define GST_CAT_DEFAULT pcr_http_debug

/* *INDENT-OFF* */
G_DEFINE_QUARK (pcr-http-error-quark, pcr_http_error);
/* *INDENT-ON* */

#define MAX_PATH_LEN 1024
#define MAX_FILE_SIZE (64 * 1024 * 1024)

static void
init_debug (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done)) {
    GST_DEBUG_CATEGORY_INIT (pcr_http_debug, "pcrhttp", 0,
        "picamrtc gateway HTTP helpers");
    g_once_init_leave (&done, 1);
  }
}

void
pcr_http_set_body (SoupServerMessage * msg, guint status,
    const gchar * content_type, const gchar * body, gsize len)
{
  soup_server_message_set_status (msg, status, NULL);
  if (content_type != NULL)
    soup_server_message_set_response (msg, content_type, SOUP_MEMORY_COPY,
        body, len);
}

void
pcr_http_set_error (SoupServerMessage * msg, guint status,
    const gchar * message)
{
  g_autofree gchar *line = pcr_quote_untrusted (message, PCR_HTTP_MAX_ERROR_LINE);
  g_autofree gchar *body = g_strconcat (line, "\n", NULL);

  pcr_http_set_body (msg, status, "text/plain; charset=utf-8", body,
      strlen (body));
}

void
pcr_http_add_cors (SoupServerMessage * msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  soup_message_headers_replace (headers, "Access-Control-Allow-Origin", "*");
  soup_message_headers_replace (headers, "Access-Control-Expose-Headers",
      "Location, Link, ETag, Accept-Post, Accept-Patch");
}

void
pcr_http_add_preflight (SoupServerMessage * msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  pcr_http_add_cors (msg);
  soup_message_headers_replace (headers, "Access-Control-Allow-Methods",
      "GET, POST, PATCH, DELETE, OPTIONS");
  soup_message_headers_replace (headers, "Access-Control-Allow-Headers",
      "Authorization, Content-Type, If-Match");
  soup_message_headers_replace (headers, "Access-Control-Max-Age", "86400");
}

gboolean
pcr_http_content_type_is (SoupServerMessage * msg, const gchar * type)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const gchar *value = soup_message_headers_get_content_type (headers, NULL);

  return value != NULL && g_ascii_strcasecmp (value, type) == 0;
}

gboolean
pcr_http_secret_equal (const gchar * a, const gchar * b)
{
  g_autoptr (GChecksum) ca = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr (GChecksum) cb = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 da[32], db[32];
  gsize la = sizeof (da), lb = sizeof (db), i;
  guint8 diff = 0;

  /* Comparing digests: the time taken tells nothing about where (or in how
   * long a prefix) the two differ, nor the secret's length. */
  g_checksum_update (ca, (const guchar *) a, strlen (a));
  g_checksum_update (cb, (const guchar *) b, strlen (b));
  g_checksum_get_digest (ca, da, &la);
  g_checksum_get_digest (cb, db, &lb);
  for (i = 0; i < sizeof (da); i++)
    diff |= da[i] ^ db[i];
  return diff == 0;
}

PcrHttpTokenCheck
pcr_http_check_bearer (SoupServerMessage * msg, const gchar * token)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const gchar *value = soup_message_headers_get_one (headers, "Authorization");
  g_autofree gchar *given = NULL;

  if (value == NULL)
    return PCR_HTTP_TOKEN_MISSING;
  if (g_ascii_strncasecmp (value, "Bearer ", 7) != 0)
    return PCR_HTTP_TOKEN_WRONG;
  given = g_strstrip (g_strdup (value + 7));
  if (*given == '\0')
    return PCR_HTTP_TOKEN_MISSING;
  return pcr_http_secret_equal (given, token) ? PCR_HTTP_TOKEN_OK :
      PCR_HTTP_TOKEN_WRONG;
}

gchar *
pcr_http_json_to_string (JsonNode * node, gsize * len)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();

  json_generator_set_root (generator, node);
  return json_generator_to_data (generator, len);
}

const gchar *
pcr_http_mime_type (const gchar * path)
{
  static const struct
  {
    const gchar *suffix;
    const gchar *type;
  } types[] = {
    {".html", "text/html; charset=utf-8"},
    {".htm", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".ico", "image/x-icon"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".webmanifest", "application/manifest+json"},
    {".txt", "text/plain; charset=utf-8"},
    {".wasm", "application/wasm"},
  };
  g_autofree gchar *lower = g_ascii_strdown (path, -1);
  guint i;

  for (i = 0; i < G_N_ELEMENTS (types); i++) {
    if (g_str_has_suffix (lower, types[i].suffix))
      return types[i].type;
  }
  return "application/octet-stream";
}

/* The path below @root that @path names, or NULL: no "..", no hidden
 * names, no backslashes or control characters. */
static gchar *
relative_path (const gchar * path)
{
  g_auto (GStrv) segments = NULL;
  GString *rel;
  guint i;

  if (strlen (path) > MAX_PATH_LEN || path[0] != '/')
    return NULL;
  segments = g_strsplit (path, "/", -1);
  rel = g_string_new (NULL);
  for (i = 0; segments[i] != NULL; i++) {
    const gchar *seg = segments[i];
    const gchar *c;

    if (*seg == '\0')
      continue;
    if (seg[0] == '.') {
      /* "..", ".", ".git", ".env": none is part of the web client */
      g_string_free (rel, TRUE);
      return NULL;
    }
    for (c = seg; *c != '\0'; c++) {
      if ((guchar) * c < 0x20 || *c == '\\' || *c == 0x7f) {
        g_string_free (rel, TRUE);
        return NULL;
      }
    }
    if (rel->len > 0)
      g_string_append_c (rel, '/');
    g_string_append (rel, seg);
  }
  return g_string_free (rel, FALSE);
}

guint
pcr_http_serve_file (SoupServerMessage * msg, const gchar * root,
    const gchar * path)
{
  g_autofree gchar *rel = NULL;
  g_autofree gchar *full = NULL;
  g_autofree gchar *real = NULL;
  g_autoptr (GMappedFile) mapped = NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GError) error = NULL;
  SoupMessageHeaders *headers;
  struct stat st;
  gsize root_len;

  init_debug ();
  rel = root != NULL ? relative_path (path) : NULL;
  if (rel == NULL)
    goto not_found;
  if (*rel == '\0' || g_str_has_suffix (path, "/"))
    full = g_build_filename (root, rel, "index.html", NULL);
  else
    full = g_build_filename (root, rel, NULL);
  if (g_file_test (full, G_FILE_TEST_IS_DIR)) {
    gchar *index = g_build_filename (full, "index.html", NULL);

    g_free (full);
    full = index;
  }

  /* symlinks may point anywhere: check where the file really is */
  real = realpath (full, NULL);
  root_len = strlen (root);
  if (real == NULL || strncmp (real, root, root_len) != 0 ||
      real[root_len] != '/')
    goto not_found;
  if (stat (real, &st) != 0 || !S_ISREG (st.st_mode) ||
      st.st_size > MAX_FILE_SIZE)
    goto not_found;

  mapped = g_mapped_file_new (real, FALSE, &error);
  if (mapped == NULL) {
    GST_WARNING ("cannot read %s: %s", real, error->message);
    goto not_found;
  }
  bytes = g_mapped_file_get_bytes (mapped);

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  headers = soup_server_message_get_response_headers (msg);
  soup_message_headers_set_content_type (headers, pcr_http_mime_type (real),
      NULL);
  soup_message_headers_replace (headers, "Cache-Control", "no-cache");
  soup_message_headers_replace (headers, "X-Content-Type-Options", "nosniff");
  soup_message_body_append_bytes (soup_server_message_get_response_body (msg),
      bytes);
  return SOUP_STATUS_OK;

not_found:
  pcr_http_set_error (msg, SOUP_STATUS_NOT_FOUND, "not found");
  return SOUP_STATUS_NOT_FOUND;
}

gchar *
pcr_http_random_hex (gsize n_bytes, GError ** error)
{
  g_autofree guint8 *buf = g_malloc (n_bytes);
  gsize got = 0;

  /* getrandom() is the kernel's CSPRNG; g_random_*() is not one */
  while (got < n_bytes) {
    ssize_t n = getrandom (buf + got, n_bytes - got, 0);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      gint fd;

      /* an old kernel: fall back to /dev/urandom */
      fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        g_set_error (error, PCR_HTTP_ERROR, 0, "no random numbers: %s",
            g_strerror (errno));
        return NULL;
      }
      while (got < n_bytes) {
        ssize_t r = read (fd, buf + got, n_bytes - got);

        if (r < 0 && errno == EINTR)
          continue;
        if (r <= 0) {
          close (fd);
          g_set_error (error, PCR_HTTP_ERROR, 0, "cannot read /dev/urandom");
          return NULL;
        }
        got += r;
      }
      close (fd);
      break;
    }
    got += n;
  }
  {
    GString *hex = g_string_sized_new (2 * n_bytes);
    gsize i;

    for (i = 0; i < n_bytes; i++)
      g_string_append_printf (hex, "%02x", buf[i]);
    return g_string_free (hex, FALSE);
  }
}

/* A decimal without sign or blanks, at most 18 digits (no overflow). */
static gboolean
parse_offset (const gchar * text, gsize len, guint64 * value)
{
  gsize i;

  if (len == 0 || len > 18)
    return FALSE;
  *value = 0;
  for (i = 0; i < len; i++) {
    if (!g_ascii_isdigit (text[i]))
      return FALSE;
    *value = *value * 10 + (guint64) (text[i] - '0');
  }
  return TRUE;
}

PcrHttpRange
pcr_http_byte_range (const gchar * value, guint64 size, guint64 * start,
    guint64 * end)
{
  const gchar *dash;
  guint64 first, last;
  gboolean has_first, has_last;

  if (value == NULL || !g_str_has_prefix (value, "bytes="))
    return PCR_HTTP_RANGE_NONE;
  value += strlen ("bytes=");
  dash = strchr (value, '-');
  if (dash == NULL || strchr (value, ','))
    return PCR_HTTP_RANGE_NONE;
  has_first = dash > value;
  has_last = dash[1] != '\0';
  if ((has_first && !parse_offset (value, dash - value, &first)) ||
      (has_last && !parse_offset (dash + 1, strlen (dash + 1), &last)) ||
      (!has_first && !has_last) || (has_first && has_last && last < first))
    return PCR_HTTP_RANGE_NONE;
  if (!has_first) {
    /* the last @last bytes */
    if (last == 0 || size == 0)
      return PCR_HTTP_RANGE_UNSATISFIABLE;
    *start = size - MIN (last, size);
    *end = size;
    return PCR_HTTP_RANGE_OK;
  }
  if (first >= size)
    return PCR_HTTP_RANGE_UNSATISFIABLE;
  *start = first;
  *end = has_last ? MIN (last + 1, size) : size;
  return PCR_HTTP_RANGE_OK;
}
