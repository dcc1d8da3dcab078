/* Settings of picamrtc and picamrtc-gateway: one table per program
 * (PcrSetting: name, type, default, range, check, help, offset into the
 * program's config struct) drives the config file (GKeyFile, one group,
 * keys are the long option names), the command line (GOptionEntry made from
 * the table), validation and --help. The rules are the same for every key
 * of both programs:
 *
 * - The command line wins over the config file, which wins over the default.
 * - An empty value unsets an optional setting (and empties a list); for a
 *   required one (PCR_SETTING_REQUIRED) it is an error.
 * - A list is split at ';' and ',' with blanks around items dropped, in the
 *   config file and in each command-line value; a repeated option adds to
 *   the list.
 * - Integers are decimal; booleans true/false, yes/no, on/off, 1/0.
 * - Ranges and checks run once, in pcr_settings_validate().
 * - Every message starts with where the value came from, "--device: ",
 *   "FILE: key device: " or "device: " (the default or set in code), then
 *   says what is wrong with the value (quoted with pcr_quote_untrusted() so a
 *   hostile value cannot forge log lines or grow a message without bound;
 *   a secret is never quoted).
 *
 * The pcr_check_*() validators are shared by both programs and the element:
 * their messages name the value and the rule but not the key, so each
 * caller prefixes its own key or property name. */
#pragma once

#include <glib.h>

#include "pcr-defaults.h"

G_BEGIN_DECLS

#define PCR_SETTINGS_ERROR (pcr_settings_error_quark ())
GQuark pcr_settings_error_quark (void);

typedef enum
{
  PCR_SETTINGS_ERROR_INVALID,   /* a bad value, file or option */
} PcrSettingsError;

typedef enum
{
  PCR_SETTING_STRING,           /* gchar *, NULL when unset */
  PCR_SETTING_FILE,             /* gchar *, a path (a file name on the
                                 * command line) */
  PCR_SETTING_INT,              /* gint in min..max */
  PCR_SETTING_BOOL,             /* gboolean; --NAME alone means true */
  PCR_SETTING_LIST,             /* gchar **, NULL-terminated, maybe empty */
} PcrSettingType;

typedef enum
{
  PCR_SETTING_REQUIRED = 1 << 0,        /* empty or unset is an error */
  PCR_SETTING_SECRET = 1 << 1,  /* never quoted in a message */
} PcrSettingFlags;

/* Checks one value (a string, or one item of a list). The message names the
 * value and the rule, not the key. */
typedef gboolean (*PcrCheckFunc) (const gchar * value, GError ** error);

typedef struct
{
  const gchar *name;            /* config key and long option */
  gchar short_name;             /* 0: none */
  PcrSettingType type;
  PcrSettingFlags flags;
  const gchar *default_value;   /* as written in a config file; NULL: none */
  gint min, max;                /* PCR_SETTING_INT */
  PcrCheckFunc check;           /* nullable; strings and list items */
  const gchar *arg;             /* the value's name in --help */
  const gchar *help;            /* one line; the default and range follow */
  gsize offset;                 /* of the field in the config struct */
  const gchar *negation;        /* BOOL only, nullable: a flag option that
                                 * sets it to false ("always-on") */
} PcrSetting;

/* Both programs' exit status for a bad option, config value or file. */
#define PCR_EXIT_BAD_CONFIG 2

/* Prints "@program: @message" on stderr as one line (line breaks in
 * @message become spaces). */
void pcr_print_error (const gchar * program, const gchar * message);

/* A config struct of @size bytes (free it with pcr_settings_clear() and
 * g_free()) with every field the table describes at its default. */
gpointer pcr_settings_config_new (const PcrSetting * table, guint n_settings,
    gsize size);
/* Sets every field of @config the table describes to its default. */
void pcr_settings_init (const PcrSetting * table, guint n_settings,
    gpointer config);
/* Frees the string and list fields the table describes. */
void pcr_settings_clear (const PcrSetting * table, guint n_settings,
    gpointer config);
/* The setting called @name, or NULL. */
const PcrSetting *pcr_settings_find (const PcrSetting * table,
    guint n_settings, const gchar * name);

/* The rows both programs' tables share, so that the MQTT keys read and
 * check the same in both; @off is the field's offset. */
#define PCR_SETTING_ROW_BROKER(off) \
  {"broker", 'b', PCR_SETTING_STRING, PCR_SETTING_REQUIRED, \
   PCR_DEFAULT_BROKER, 0, 0, pcr_check_broker_uri, "URI", \
   "MQTT broker, mqtt://HOST[:PORT] or mqtts://HOST[:PORT]", (off)}
#define PCR_SETTING_ROW_USERNAME(off) \
  {"username", 0, PCR_SETTING_STRING, 0, NULL, 0, 0, NULL, "NAME", \
   "MQTT user name", (off)}
#define PCR_SETTING_ROW_CA_FILE(off) \
  {"ca-file", 0, PCR_SETTING_FILE, 0, NULL, 0, 0, pcr_check_readable_file, \
   "FILE", "CA certificates for mqtts:// (default: the system's)", (off)}
/* A client certificate for brokers that authenticate by certificate
 * (mosquitto's require_certificate, AWS IoT Core); both or neither, checked
 * by pcr_settings_check_client_cert(). */
#define PCR_SETTING_ROW_CERT_FILE(off) \
  {"cert-file", 0, PCR_SETTING_FILE, 0, NULL, 0, 0, pcr_check_readable_file, \
   "FILE", "Client certificate (PEM) for mqtts://, with key-file", (off)}
#define PCR_SETTING_ROW_KEY_FILE(off) \
  {"key-file", 0, PCR_SETTING_FILE, 0, NULL, 0, 0, pcr_check_readable_file, \
   "FILE", "The client certificate's private key (PEM, no passphrase)", \
   (off)}
#define PCR_SETTING_ROW_TOPIC_PREFIX(off) \
  {"topic-prefix", 0, PCR_SETTING_STRING, PCR_SETTING_REQUIRED, \
   PCR_DEFAULT_TOPIC_PREFIX, 0, 0, pcr_check_topic_prefix, "PREFIX", \
   "MQTT topic prefix", (off)}

typedef struct _PcrSettings PcrSettings;

/* Cross-key checks a program adds after the table's own (a password needs a
 * user name, ...). Report with pcr_settings_fail(). */
typedef gboolean (*PcrSettingsCheckAll) (PcrSettings * settings,
    gpointer config, gpointer user_data, GError ** error);

/* Reads and writes @config (which must outlive it) through @table; the
 * config file group is [@group]. Every value counts as the default until a
 * file or the command line sets it. */
PcrSettings *pcr_settings_new (const gchar * group,
    const PcrSetting * table, guint n_settings, gpointer config);
void pcr_settings_set_check (PcrSettings * settings,
    PcrSettingsCheckAll check, gpointer user_data);
void pcr_settings_free (PcrSettings * settings);
/* The table @settings reads through (for --help and docs checks). */
const PcrSetting *pcr_settings_get_table (PcrSettings * settings,
    guint * n_settings);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrSettings, pcr_settings_free)

/* A context whose main options are --config/-c FILE, then one per setting
 * of the table (with its default and range in the help), then @extra
 * (nullable, NULL-terminated; those write where their arg_data points),
 * then --version. @settings must outlive the context. */
GOptionContext *pcr_settings_option_context_new (PcrSettings * settings,
    const gchar * parameter_string, const gchar * summary,
    const GOptionEntry * extra);
/* g_option_context_parse(), and no arguments may be left over. The values
 * are kept aside until pcr_settings_load() puts them over the file's. */
gboolean pcr_settings_parse (PcrSettings * settings, GOptionContext * context,
    gint * argc, gchar *** argv, GError ** error);

/* What both programs' main() does with the command line:
 * pcr_settings_parse(), --version (prints "@program VERSION"), then
 * pcr_settings_load(). Returns -1 when the program goes on, else its exit
 * status: 0 after --version, PCR_EXIT_BAD_CONFIG after printing the error
 * with pcr_print_error(). */
gint pcr_settings_run_command_line (PcrSettings * settings,
    GOptionContext * context, const gchar * program, gint * argc,
    gchar *** argv);

/* Reads [group] from @path over what the config holds. Unknown keys and
 * groups warn (g_warning); a bad value fails naming the file and the key
 * and leaves the config as it was; an unreadable or malformed file, or one
 * without the group, fails too. */
gboolean pcr_settings_load_file (PcrSettings * settings, const gchar * path,
    GError ** error);
/* The --config file (if given), then the command line over it, then
 * pcr_settings_validate(). */
gboolean pcr_settings_load (PcrSettings * settings, GError ** error);
/* Required values, ranges and checks of the table, then the program's
 * cross-key check. */
gboolean pcr_settings_validate (PcrSettings * settings, GError ** error);

/* Sets @error to "<where @key came from>: <message>" and returns FALSE.
 * @settings may be NULL: the prefix is then "@key: ". */
gboolean pcr_settings_fail (PcrSettings * settings, const gchar * key,
    GError ** error, const gchar * format, ...) G_GNUC_PRINTF (4, 5);

/* The client certificate's cross-key rules: cert-file and key-file both or
 * neither, and only with an mqtts:// @broker (nullable: not checked). The
 * element passes a NULL @settings and gets "cert-file: ..." messages. */
gboolean pcr_settings_check_client_cert (PcrSettings * settings,
    const gchar * broker, const gchar * cert_file, const gchar * key_file,
    GError ** error);

/* ---- shared validators ------------------------------------------------- */

/* mqtt://host[:port] or mqtts://host[:port]; no credentials, path, query or
 * fragment. A URI with '@' in it is not quoted back. */
gboolean pcr_check_broker_uri (const gchar * value, GError ** error);
/* [A-Za-z0-9_-]{1,64}, the device id in the MQTT topics. */
gboolean pcr_check_device_id (const gchar * value, GError ** error);
/* 1 to 128 characters of UTF-8, no + or #, no empty level, no control
 * character. */
gboolean pcr_check_topic_prefix (const gchar * value, GError ** error);
/* An IPv4 or IPv6 address (not a host name). */
gboolean pcr_check_ip_address (const gchar * value, GError ** error);
/* A regular file that exists. */
gboolean pcr_check_readable_file (const gchar * value, GError ** error);
/* webrtcbin's forms: stun://HOST:PORT; turn:// or
 * turns://USER:PASS@HOST:PORT */
gboolean pcr_check_stun_server (const gchar * value, GError ** error);
gboolean pcr_check_turn_server (const gchar * value, GError ** error);

G_END_DECLS
