/* ICE servers for browsers and devices: strict parsing of the configured
 * STUN/TURN URLs, grouping into at most 8 RTCIceServer entries, TURN REST
 * credentials (HMAC-SHA1 over "<expiry>:picamrtc" with the shared secret,
 * base64 of the raw digest), and the two ways out: the JSON list and WHEP
 * Link headers. */
#include "pcr-ice.h"

#include <string.h>
#include <json-glib/json-glib.h>

#include "pcr-quote.h"

/* *INDENT-OFF* */
G_DEFINE_QUARK (pcr-ice-error-quark, pcr_ice_error);
/* *INDENT-ON* */

#define MAX_URL_LEN 512
#define DEFAULT_PORT 3478
#define DEFAULT_TLS_PORT 5349

/* One configured server; rest ones get fresh credentials on each use. */
typedef struct
{
  GPtrArray *urls;              /* gchar* */
  gchar *username;              /* static, nullable */
  gchar *credential;            /* static, nullable */
  gboolean rest;
} Entry;

struct _PcrIceConfig
{
  GPtrArray *entries;           /* Entry* */
  GBytes *secret;               /* nullable */
  guint ttl;
};

static void
entry_free (Entry * entry)
{
  g_ptr_array_unref (entry->urls);
  g_free (entry->username);
  g_free (entry->credential);
  g_free (entry);
}

static Entry *
entry_new (const gchar * username, const gchar * credential, gboolean rest)
{
  Entry *entry = g_new0 (Entry, 1);

  entry->urls = g_ptr_array_new_with_free_func (g_free);
  entry->username = g_strdup (username);
  entry->credential = g_strdup (credential);
  entry->rest = rest;
  return entry;
}

static gboolean
bad_url (GError ** error, const gchar * key, const gchar * url,
    const gchar * why)
{
  g_autofree gchar *shown = pcr_quote_untrusted (url, PCR_QUOTE_MAX_VALUE);

  g_set_error (error, PCR_ICE_ERROR, 0, "%s: \"%s\" %s", key, shown, why);
  return FALSE;
}

static gboolean
is_host_name (const gchar * host)
{
  const gchar *c;

  if (*host == '\0' || strlen (host) > 253)
    return FALSE;
  for (c = host; *c != '\0'; c++) {
    if (!g_ascii_isalnum (*c) && *c != '.' && *c != '-')
      return FALSE;
  }
  return TRUE;
}

static gboolean
parse_port (const gchar * text, guint * port)
{
  guint64 value;

  if (!g_ascii_string_to_unsigned (text, 10, 1, 65535, &value, NULL))
    return FALSE;
  *port = value;
  return TRUE;
}

/* Splits HOST[:PORT] or [V6][:PORT]; *host keeps the brackets of a v6
 * address, ready for a URL. */
static gboolean
parse_host_port (const gchar * text, gchar ** host, guint * port)
{
  const gchar *colon;
  g_autofree gchar *name = NULL;

  if (text[0] == '[') {
    const gchar *end = strchr (text, ']');

    if (end == NULL)
      return FALSE;
    name = g_strndup (text + 1, end - text - 1);
    if (!g_hostname_is_ip_address (name) || strchr (name, ':') == NULL)
      return FALSE;
    if (end[1] == ':' && !parse_port (end + 2, port))
      return FALSE;
    if (end[1] != ':' && end[1] != '\0')
      return FALSE;
    *host = g_strdup_printf ("[%s]", name);
    return TRUE;
  }
  colon = strchr (text, ':');
  if (colon != NULL) {
    name = g_strndup (text, colon - text);
    if (!parse_port (colon + 1, port))
      return FALSE;
  } else {
    name = g_strdup (text);
  }
  if (!is_host_name (name))
    return FALSE;
  *host = g_steal_pointer (&name);
  return TRUE;
}

/* Turns one configured URL into the browser's form "scheme:host:port[?q]"
 * and its static credentials, if any. */
static gboolean
parse_url (const gchar * key, const gchar * text, gboolean turn,
    gchar ** url, gchar ** username, gchar ** credential, GError ** error)
{
  const gchar *colon, *rest, *query, *at, *c;
  g_autofree gchar *scheme = NULL;
  g_autofree gchar *authority = NULL;
  g_autofree gchar *host = NULL;
  g_autofree gchar *user = NULL;
  g_autofree gchar *pass = NULL;
  gboolean secure;
  guint port;

  if (strlen (text) > MAX_URL_LEN)
    return bad_url (error, key, text, "is too long");
  for (c = text; *c != '\0'; c++) {
    if (*c <= ' ' || *c >= 0x7f)
      return bad_url (error, key, text, "has a space or a control character");
  }
  colon = strchr (text, ':');
  if (colon == NULL)
    return bad_url (error, key, text, turn ?
        "is not a TURN URL (turn:HOST:PORT or turns:HOST:PORT)" :
        "is not a STUN URL (stun:HOST:PORT)");
  scheme = g_ascii_strdown (text, colon - text);
  if (turn && !g_str_equal (scheme, "turn") && !g_str_equal (scheme, "turns"))
    return bad_url (error, key, text, "does not start with turn: or turns:");
  if (!turn && !g_str_equal (scheme, "stun") && !g_str_equal (scheme, "stuns"))
    return bad_url (error, key, text, "does not start with stun: or stuns:");
  secure = g_str_equal (scheme, "turns") || g_str_equal (scheme, "stuns");
  port = secure ? DEFAULT_TLS_PORT : DEFAULT_PORT;

  rest = colon + 1;
  if (g_str_has_prefix (rest, "//"))
    rest += 2;
  query = strchr (rest, '?');
  if (query != NULL) {
    if (!turn)
      return bad_url (error, key, text, "has a query; STUN URLs take none");
    if (!g_str_equal (query, "?transport=udp") &&
        !g_str_equal (query, "?transport=tcp"))
      return bad_url (error, key, text,
          "has a query other than ?transport=udp or ?transport=tcp");
    authority = g_strndup (rest, query - rest);
  } else {
    authority = g_strdup (rest);
  }

  at = strrchr (authority, '@');
  if (at != NULL) {
    g_autofree gchar *userinfo = g_strndup (authority, at - authority);
    const gchar *sep = strchr (userinfo, ':');

    if (!turn)
      return bad_url (error, key, text, "has credentials; STUN takes none");
    if (sep == NULL || sep == userinfo || sep[1] == '\0')
      return bad_url (error, key, text,
          "has credentials that are not USER:PASSWORD");
    user = g_uri_unescape_segment (userinfo, sep, NULL);
    pass = g_uri_unescape_string (sep + 1, NULL);
    if (user == NULL || pass == NULL || *user == '\0' || *pass == '\0')
      return bad_url (error, key, text, "has badly escaped credentials");
    rest = at + 1;
  } else {
    rest = authority;
  }
  if (!parse_host_port (rest, &host, &port))
    return bad_url (error, key, text, "has no valid HOST[:PORT]");

  *url = g_strdup_printf ("%s:%s:%u%s", scheme, host, port,
      query != NULL ? query : "");
  *username = g_steal_pointer (&user);
  *credential = g_steal_pointer (&pass);
  return TRUE;
}

static Entry *
find_static_entry (GPtrArray * entries, const gchar * username,
    const gchar * credential)
{
  guint i;

  for (i = 0; i < entries->len; i++) {
    Entry *entry = g_ptr_array_index (entries, i);

    if (!entry->rest && entry->username != NULL &&
        g_str_equal (entry->username, username) &&
        g_str_equal (entry->credential, credential))
      return entry;
  }
  return NULL;
}

static gboolean
add_url (Entry * entry, const gchar * key, gchar * url, GError ** error)
{
  if (entry->urls->len >= PCR_MESSAGE_MAX_ICE_URLS) {
    g_set_error (error, PCR_ICE_ERROR, 0,
        "%s: more than %d URLs for one server", key, PCR_MESSAGE_MAX_ICE_URLS);
    g_free (url);
    return FALSE;
  }
  g_ptr_array_add (entry->urls, url);
  return TRUE;
}

PcrIceConfig *
pcr_ice_config_new (const gchar * const *stun_uris,
    const gchar * const *turn_uris, GBytes * secret, guint ttl, GError ** error)
{
  g_autoptr (PcrIceConfig) config = g_new0 (PcrIceConfig, 1);
  Entry *stun = NULL, *rest = NULL;
  guint i;

  config->entries = g_ptr_array_new_with_free_func ((GDestroyNotify)
      entry_free);
  config->secret = secret ? g_bytes_ref (secret) : NULL;
  config->ttl = ttl;

  for (i = 0; stun_uris != NULL && stun_uris[i] != NULL; i++) {
    gchar *url = NULL, *user = NULL, *pass = NULL;

    if (!parse_url ("stun-uri", stun_uris[i], FALSE, &url, &user, &pass, error))
      return NULL;
    if (stun == NULL) {
      stun = entry_new (NULL, NULL, FALSE);
      g_ptr_array_add (config->entries, stun);
    }
    if (!add_url (stun, "stun-uri", url, error))
      return NULL;
  }

  for (i = 0; turn_uris != NULL && turn_uris[i] != NULL; i++) {
    g_autofree gchar *user = NULL;
    g_autofree gchar *pass = NULL;
    gchar *url = NULL;
    Entry *entry;

    if (!parse_url ("turn-uri", turn_uris[i], TRUE, &url, &user, &pass, error))
      return NULL;
    if (user == NULL && secret == NULL) {
      g_free (url);
      bad_url (error, "turn-uri", turn_uris[i],
          "has no USER:PASSWORD@ and no turn-secret-file is set");
      return NULL;
    }
    if (user == NULL) {
      if (rest == NULL) {
        rest = entry_new (NULL, NULL, TRUE);
        g_ptr_array_add (config->entries, rest);
      }
      entry = rest;
    } else {
      entry = find_static_entry (config->entries, user, pass);
      if (entry == NULL) {
        entry = entry_new (user, pass, FALSE);
        g_ptr_array_add (config->entries, entry);
      }
    }
    if (!add_url (entry, "turn-uri", url, error))
      return NULL;
  }

  if (config->entries->len > PCR_MESSAGE_MAX_ICE_SERVERS) {
    g_set_error (error, PCR_ICE_ERROR, 0,
        "turn-uri: %u servers (one for STUN, one per distinct USER:PASSWORD, "
        "one for the shared secret), over the limit of %d",
        config->entries->len, PCR_MESSAGE_MAX_ICE_SERVERS);
    return NULL;
  }
  return g_steal_pointer (&config);
}

void
pcr_ice_config_free (PcrIceConfig * config)
{
  if (config == NULL)
    return;
  g_clear_pointer (&config->entries, g_ptr_array_unref);
  g_clear_pointer (&config->secret, g_bytes_unref);
  g_free (config);
}

gboolean
pcr_ice_config_is_empty (const PcrIceConfig * config)
{
  g_return_val_if_fail (config != NULL, TRUE);

  return config->entries->len == 0;
}

gchar *
pcr_ice_rest_credential (GBytes * secret, const gchar * username)
{
  g_autoptr (GHmac) hmac = NULL;
  guint8 digest[20];
  gsize len = sizeof (digest);
  gsize key_len;
  const guchar *key;

  g_return_val_if_fail (secret != NULL && username != NULL, NULL);

  key = g_bytes_get_data (secret, &key_len);
  hmac = g_hmac_new (G_CHECKSUM_SHA1, key, key_len);
  g_hmac_update (hmac, (const guchar *) username, strlen (username));
  /* g_compute_hmac_for_data() gives hex; TURN wants the raw digest */
  g_hmac_get_digest (hmac, digest, &len);
  return g_base64_encode (digest, len);
}

PcrIceServer *
pcr_ice_server_copy (const PcrIceServer * server)
{
  PcrIceServer *copy;

  g_return_val_if_fail (server != NULL, NULL);

  copy = g_new0 (PcrIceServer, 1);
  copy->urls = g_strdupv (server->urls);
  copy->username = g_strdup (server->username);
  copy->credential = g_strdup (server->credential);
  return copy;
}

GPtrArray *
pcr_ice_config_get_servers (const PcrIceConfig * config, gint64 now_unix)
{
  GPtrArray *servers = g_ptr_array_new_with_free_func ((GDestroyNotify)
      pcr_ice_server_free);
  guint i, j;

  g_return_val_if_fail (config != NULL, servers);

  for (i = 0; i < config->entries->len; i++) {
    Entry *entry = g_ptr_array_index (config->entries, i);
    PcrIceServer *server = g_new0 (PcrIceServer, 1);

    server->urls = g_new0 (gchar *, entry->urls->len + 1);
    for (j = 0; j < entry->urls->len; j++)
      server->urls[j] = g_strdup (g_ptr_array_index (entry->urls, j));
    if (entry->rest) {
      server->username = g_strdup_printf ("%" G_GINT64_FORMAT ":%s",
          now_unix + config->ttl, PCR_ICE_REST_USER);
      server->credential = pcr_ice_rest_credential (config->secret,
          server->username);
    } else {
      server->username = g_strdup (entry->username);
      server->credential = g_strdup (entry->credential);
    }
    g_ptr_array_add (servers, server);
  }
  return servers;
}

gchar *
pcr_ice_servers_to_json (GPtrArray * servers)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  guint i, j;

  json_builder_begin_array (builder);
  for (i = 0; servers != NULL && i < servers->len; i++) {
    PcrIceServer *server = g_ptr_array_index (servers, i);

    json_builder_begin_object (builder);
    json_builder_set_member_name (builder, "urls");
    json_builder_begin_array (builder);
    for (j = 0; server->urls[j] != NULL; j++)
      json_builder_add_string_value (builder, server->urls[j]);
    json_builder_end_array (builder);
    if (server->username != NULL) {
      json_builder_set_member_name (builder, "username");
      json_builder_add_string_value (builder, server->username);
    }
    if (server->credential != NULL) {
      json_builder_set_member_name (builder, "credential");
      json_builder_add_string_value (builder, server->credential);
    }
    json_builder_end_object (builder);
  }
  json_builder_end_array (builder);
  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  return json_generator_to_data (generator, NULL);
}

/* An RFC 8288 quoted-string. */
static void
append_quoted (GString * out, const gchar * text)
{
  const gchar *c;

  g_string_append_c (out, '"');
  for (c = text; *c != '\0'; c++) {
    if (*c == '"' || *c == '\\')
      g_string_append_c (out, '\\');
    g_string_append_c (out, *c);
  }
  g_string_append_c (out, '"');
}

GPtrArray *
pcr_ice_servers_to_links (GPtrArray * servers)
{
  GPtrArray *links = g_ptr_array_new_with_free_func (g_free);
  guint i, j;

  for (i = 0; servers != NULL && i < servers->len; i++) {
    PcrIceServer *server = g_ptr_array_index (servers, i);

    for (j = 0; server->urls[j] != NULL; j++) {
      GString *link = g_string_new (NULL);

      g_string_append_printf (link, "<%s>; rel=\"ice-server\"",
          server->urls[j]);
      if (server->username != NULL && server->credential != NULL) {
        g_string_append (link, "; username=");
        append_quoted (link, server->username);
        g_string_append (link, "; credential=");
        append_quoted (link, server->credential);
        g_string_append (link, "; credential-type=\"password\"");
      }
      g_ptr_array_add (links, g_string_free (link, FALSE));
    }
  }
  return links;
}
