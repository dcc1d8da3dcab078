/* The settings engine of both programs (see pcr-settings.h for the rules)
 * and the validators they and the element share. A value is parsed by the
 * same code whether it comes from the config file or the command line, so
 * the two cannot drift apart; a config file and a command line are hostile
 * input, so a bad value is an error message, never a crash or a guess. */
#include "config.h"

#include "pcr-settings.h"

#include <stdlib.h>
#include <string.h>

#include <gio/gio.h>

#include "pcr-quote.h"

G_DEFINE_QUARK (pcr-settings-error-quark, pcr_settings_error);

#define MAX_TOPIC_PREFIX 128

typedef enum
{
  ORIGIN_DEFAULT,
  ORIGIN_FILE,
  ORIGIN_COMMAND_LINE,
} Origin;

/* One parsed value, before it goes into the config struct. */
typedef struct
{
  gboolean set;
  gchar *text;                  /* STRING, FILE; NULL: unset */
  gint number;                  /* INT */
  gboolean flag;                /* BOOL */
  gchar **list;                 /* LIST */
} Value;

struct _PcrSettings
{
  gchar *group;
  const PcrSetting *table;
  guint n_settings;
  gpointer config;
  Origin *origins;
  gchar *file;                  /* the file the FILE values came from */
  Value *staged;                /* the command line, until applied */
  gchar *config_file;           /* --config */
  gboolean version;             /* --version */
  GPtrArray *strings;           /* help texts the option entries point to */
  PcrSettingsCheckAll check;
  gpointer check_data;
};

static void
value_clear (Value * value)
{
  g_free (value->text);
  g_strfreev (value->list);
  memset (value, 0, sizeof (*value));
}

#define FIELD(setting, config) \
  G_STRUCT_MEMBER_P ((config), (setting)->offset)

/* Moves @value into the field (freeing what was there). */
static void
value_commit (const PcrSetting * setting, Value * value, gpointer config)
{
  gpointer field = FIELD (setting, config);

  switch (setting->type) {
    case PCR_SETTING_STRING:
    case PCR_SETTING_FILE:
      g_free (*(gchar **) field);
      *(gchar **) field = g_steal_pointer (&value->text);
      break;
    case PCR_SETTING_INT:
      *(gint *) field = value->number;
      break;
    case PCR_SETTING_BOOL:
      *(gboolean *) field = value->flag;
      break;
    case PCR_SETTING_LIST:
      g_strfreev (*(gchar ***) field);
      *(gchar ***) field = value->list ? g_steal_pointer (&value->list) :
          g_new0 (gchar *, 1);
      break;
  }
  value_clear (value);
}

static gboolean
parse_bool (const gchar * text, gboolean * out)
{
  static const gchar *yes[] = { "true", "yes", "on", "1" };
  static const gchar *no[] = { "false", "no", "off", "0" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (yes); i++) {
    if (g_ascii_strcasecmp (text, yes[i]) == 0) {
      *out = TRUE;
      return TRUE;
    }
    if (g_ascii_strcasecmp (text, no[i]) == 0) {
      *out = FALSE;
      return TRUE;
    }
  }
  return FALSE;
}

/* Splits at ';' and ',' and drops blanks. */
static gchar **
split_list (const gchar * text)
{
  g_auto (GStrv) parts = g_strsplit_set (text, ";,", -1);
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  guint i;

  for (i = 0; parts[i] != NULL; i++) {
    gchar *item = g_strstrip (parts[i]);

    if (*item != '\0')
      g_strv_builder_add (builder, item);
  }
  return g_strv_builder_end (builder);
}

static gchar *
quote (const PcrSetting * setting, const gchar * text)
{
  g_autofree gchar *shown = NULL;

  if (setting->flags & PCR_SETTING_SECRET)
    return g_strdup ("(not shown)");
  shown = pcr_quote_untrusted (text, PCR_QUOTE_MAX_VALUE);
  return g_strdup_printf ("\"%s\"", shown);
}

/* Parses the text of one value, for the file and the command line alike.
 * @prefix says where it came from. */
static gboolean
parse_value (const PcrSetting * setting, const gchar * prefix,
    const gchar * raw, Value * out, GError ** error)
{
  g_autofree gchar *text = g_strstrip (g_strdup (raw));
  g_autofree gchar *quoted = quote (setting, text);
  gint64 number;

  out->set = TRUE;
  switch (setting->type) {
    case PCR_SETTING_STRING:
    case PCR_SETTING_FILE:
      if (*text == '\0' && (setting->flags & PCR_SETTING_REQUIRED)) {
        g_set_error (error, PCR_SETTINGS_ERROR, PCR_SETTINGS_ERROR_INVALID,
            "%smust not be empty", prefix);
        return FALSE;
      }
      out->text = *text != '\0' ? g_steal_pointer (&text) : NULL;
      return TRUE;
    case PCR_SETTING_INT:
      if (!g_ascii_string_to_signed (text, 10, G_MININT, G_MAXINT, &number,
              NULL)) {
        g_set_error (error, PCR_SETTINGS_ERROR, PCR_SETTINGS_ERROR_INVALID,
            "%s%s is not an integer", prefix, quoted);
        return FALSE;
      }
      out->number = number;
      return TRUE;
    case PCR_SETTING_BOOL:
      if (!parse_bool (text, &out->flag)) {
        g_set_error (error, PCR_SETTINGS_ERROR, PCR_SETTINGS_ERROR_INVALID,
            "%s%s is not a boolean (true or false)", prefix, quoted);
        return FALSE;
      }
      return TRUE;
    case PCR_SETTING_LIST:
      out->list = split_list (text);
      return TRUE;
  }
  g_assert_not_reached ();
  return FALSE;
}

/* ---- tables ------------------------------------------------------------ */

const PcrSetting *
pcr_settings_find (const PcrSetting * table, guint n_settings,
    const gchar * name)
{
  guint i;

  for (i = 0; i < n_settings; i++) {
    if (g_str_equal (table[i].name, name))
      return &table[i];
  }
  return NULL;
}

void
pcr_settings_init (const PcrSetting * table, guint n_settings,
    gpointer config)
{
  guint i;

  for (i = 0; i < n_settings; i++) {
    g_autoptr (GError) error = NULL;
    Value value = { 0 };

    if (table[i].default_value == NULL) {
      /* unset: NULL, an empty list, 0, FALSE */
      value.set = TRUE;
    } else if (!parse_value (&table[i], "", table[i].default_value, &value,
            &error)) {
      g_critical ("the default of %s: %s", table[i].name, error->message);
      continue;
    }
    value_commit (&table[i], &value, config);
  }
}

gpointer
pcr_settings_config_new (const PcrSetting * table, guint n_settings,
    gsize size)
{
  gpointer config = g_malloc0 (size);

  pcr_settings_init (table, n_settings, config);
  return config;
}

void
pcr_settings_clear (const PcrSetting * table, guint n_settings,
    gpointer config)
{
  guint i;

  for (i = 0; i < n_settings; i++) {
    gpointer field = FIELD (&table[i], config);

    if (table[i].type == PCR_SETTING_STRING ||
        table[i].type == PCR_SETTING_FILE)
      g_clear_pointer ((gchar **) field, g_free);
    else if (table[i].type == PCR_SETTING_LIST)
      g_clear_pointer ((gchar ***) field, g_strfreev);
  }
}

/* ---- the settings of one run ------------------------------------------- */

PcrSettings *
pcr_settings_new (const gchar * group, const PcrSetting * table,
    guint n_settings, gpointer config)
{
  PcrSettings *self = g_new0 (PcrSettings, 1);

  self->group = g_strdup (group);
  self->table = table;
  self->n_settings = n_settings;
  self->config = config;
  self->origins = g_new0 (Origin, n_settings);
  self->staged = g_new0 (Value, n_settings);
  self->strings = g_ptr_array_new_with_free_func (g_free);
  return self;
}

void
pcr_settings_set_check (PcrSettings * self, PcrSettingsCheckAll check,
    gpointer user_data)
{
  self->check = check;
  self->check_data = user_data;
}

void
pcr_settings_free (PcrSettings * self)
{
  guint i;

  if (self == NULL)
    return;
  for (i = 0; i < self->n_settings; i++)
    value_clear (&self->staged[i]);
  g_free (self->staged);
  g_free (self->origins);
  g_free (self->group);
  g_free (self->file);
  g_free (self->config_file);
  g_ptr_array_unref (self->strings);
  g_free (self);
}

const PcrSetting *
pcr_settings_get_table (PcrSettings * self, guint * n_settings)
{
  *n_settings = self->n_settings;
  return self->table;
}

static gint
find_index (PcrSettings * self, const gchar * name)
{
  const PcrSetting *setting;

  if (self == NULL || name == NULL)
    return -1;
  setting = pcr_settings_find (self->table, self->n_settings, name);
  return setting ? (gint) (setting - self->table) : -1;
}

/* "--KEY: ", "FILE: key KEY: " or "KEY: " */
static gchar *
origin_prefix (PcrSettings * self, const gchar * key)
{
  gint i = find_index (self, key);

  if (i >= 0 && self->origins[i] == ORIGIN_COMMAND_LINE)
    return g_strdup_printf ("--%s: ", key);
  if (i >= 0 && self->origins[i] == ORIGIN_FILE)
    return g_strdup_printf ("%s: key %s: ", self->file, key);
  return g_strdup_printf ("%s: ", key);
}

gboolean
pcr_settings_fail (PcrSettings * self, const gchar * key, GError ** error,
    const gchar * format, ...)
{
  g_autofree gchar *prefix = origin_prefix (self, key);
  g_autofree gchar *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, PCR_SETTINGS_ERROR, PCR_SETTINGS_ERROR_INVALID,
      "%s%s", prefix, message);
  return FALSE;
}

gboolean
pcr_settings_check_client_cert (PcrSettings * self, const gchar * broker,
    const gchar * cert_file, const gchar * key_file, GError ** error)
{
  if ((cert_file == NULL) != (key_file == NULL))
    return pcr_settings_fail (self, cert_file ? "cert-file" : "key-file",
        error, "set %s too (a client certificate needs both)",
        cert_file ? "key-file" : "cert-file");
  /* pcr_check_broker_uri() allows mqtt:// and mqtts:// only */
  if (cert_file != NULL && broker != NULL
      && g_ascii_strncasecmp (broker, "mqtts://", 8) != 0)
    return pcr_settings_fail (self, "cert-file", error, "needs an mqtts:// "
        "broker: a client certificate only goes over TLS");
  return TRUE;
}

/* ---- the command line -------------------------------------------------- */

static gboolean
option_cb (const gchar * option_name, const gchar * text, gpointer data,
    GError ** error)
{
  PcrSettings *self = data;
  g_autofree gchar *prefix = NULL;
  const PcrSetting *setting = NULL;
  gboolean negation = FALSE;
  Value value = { 0 };
  Value *staged;
  guint i;

  for (i = 0; i < self->n_settings && setting == NULL; i++) {
    const PcrSetting *s = &self->table[i];

    if (g_str_has_prefix (option_name, "--")) {
      if (g_str_equal (option_name + 2, s->name)) {
        setting = s;
      } else if (s->negation && g_str_equal (option_name + 2, s->negation)) {
        setting = s;
        negation = TRUE;
      }
    } else if (s->short_name != 0 && option_name[1] == s->short_name) {
      setting = s;
    }
  }
  g_return_val_if_fail (setting != NULL, FALSE);
  staged = &self->staged[setting - self->table];

  if (setting->type == PCR_SETTING_BOOL && (negation || text == NULL)) {
    value.set = TRUE;
    value.flag = !negation;
  } else {
    prefix = g_strdup_printf ("--%s: ", setting->name);
    if (!parse_value (setting, prefix, text, &value, error))
      return FALSE;
  }

  if (setting->type == PCR_SETTING_LIST && staged->list != NULL) {
    g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();

    g_strv_builder_addv (builder, (const gchar **) staged->list);
    g_strv_builder_addv (builder, (const gchar **) value.list);
    g_strfreev (value.list);
    value.list = g_strv_builder_end (builder);
  }
  value_clear (staged);
  *staged = value;
  return TRUE;
}

static const gchar *
keep (PcrSettings * self, gchar * text)
{
  g_ptr_array_add (self->strings, text);
  return text;
}

/* "Width (16..4096, default 1280)" from the table. */
static const gchar *
option_help (PcrSettings * self, const PcrSetting * s)
{
  GString *help = g_string_new (s->help);
  const gchar *def = s->default_value;
  gboolean has_default = def != NULL && *def != '\0';

  if (s->type == PCR_SETTING_INT)
    g_string_append_printf (help, " (%d..%d%s", s->min, s->max,
        has_default ? ", " : ")");
  else if (s->type == PCR_SETTING_LIST)
    g_string_append_printf (help, " (repeatable, or a list split at ; and ,%s",
        has_default ? ", " : ")");
  else if (has_default)
    g_string_append (help, " (");
  if (has_default)
    g_string_append_printf (help, "default %s)", def);
  return keep (self, g_string_free (help, FALSE));
}

GOptionContext *
pcr_settings_option_context_new (PcrSettings * self,
    const gchar * parameter_string, const gchar * summary,
    const GOptionEntry * extra)
{
  GOptionContext *context = g_option_context_new (parameter_string);
  GOptionGroup *group = g_option_group_new (NULL, NULL, NULL, self, NULL);
  g_autoptr (GArray) entries = g_array_new (TRUE, TRUE,
      sizeof (GOptionEntry));
  GOptionEntry config = { "config", 'c', 0, G_OPTION_ARG_FILENAME,
    &self->config_file, NULL, "FILE"
  };
  GOptionEntry version = { "version", 0, 0, G_OPTION_ARG_NONE,
    &self->version, "Print the version and exit", NULL
  };
  guint i;

  config.description = keep (self, g_strdup_printf ("Config file (GKeyFile, "
          "group [%s]); the command line wins", self->group));
  g_array_append_val (entries, config);

  for (i = 0; i < self->n_settings; i++) {
    const PcrSetting *s = &self->table[i];
    GOptionEntry entry = { s->name, s->short_name, 0, G_OPTION_ARG_CALLBACK,
      (gpointer) option_cb, option_help (self, s), s->arg
    };

    if (s->type == PCR_SETTING_FILE)
      entry.flags |= G_OPTION_FLAG_FILENAME;
    if (s->type == PCR_SETTING_BOOL)
      entry.flags |= G_OPTION_FLAG_OPTIONAL_ARG;
    g_array_append_val (entries, entry);

    if (s->negation != NULL) {
      GOptionEntry negation = { s->negation, 0, G_OPTION_FLAG_NO_ARG,
        G_OPTION_ARG_CALLBACK, (gpointer) option_cb, NULL, NULL
      };

      negation.description = keep (self, g_strdup_printf ("The same as "
              "--%s=false", s->name));
      g_array_append_val (entries, negation);
    }
  }
  for (i = 0; extra != NULL && extra[i].long_name != NULL; i++)
    g_array_append_val (entries, extra[i]);
  g_array_append_val (entries, version);

  g_option_group_add_entries (group, (GOptionEntry *) entries->data);
  g_option_context_set_main_group (context, group);
  if (summary != NULL)
    g_option_context_set_summary (context, summary);
  return context;
}

gboolean
pcr_settings_parse (PcrSettings * self, GOptionContext * context,
    gint * argc, gchar *** argv, GError ** error)
{
  if (!g_option_context_parse (context, argc, argv, error))
    return FALSE;
  if (*argc > 1) {
    g_autofree gchar *escaped = pcr_quote_untrusted ((*argv)[1],
        PCR_QUOTE_MAX_VALUE);

    g_set_error (error, PCR_SETTINGS_ERROR, PCR_SETTINGS_ERROR_INVALID,
        "unexpected argument \"%s\"", escaped);
    return FALSE;
  }
  return TRUE;
}

void
pcr_print_error (const gchar * program, const gchar * message)
{
  g_autofree gchar *line = g_strdup (message);

  g_strdelimit (line, "\r\n", ' ');
  g_printerr ("%s: %s\n", program, line);
}

gint
pcr_settings_run_command_line (PcrSettings * self, GOptionContext * context,
    const gchar * program, gint * argc, gchar *** argv)
{
  g_autoptr (GError) error = NULL;

  if (!pcr_settings_parse (self, context, argc, argv, &error)) {
    pcr_print_error (program, error->message);
    return PCR_EXIT_BAD_CONFIG;
  }
  if (self->version) {
    g_print ("%s %s\n", program, VERSION);
    return EXIT_SUCCESS;
  }
  if (!pcr_settings_load (self, &error)) {
    pcr_print_error (program, error->message);
    return PCR_EXIT_BAD_CONFIG;
  }
  return -1;
}

static void
apply_command_line (PcrSettings * self)
{
  guint i;

  for (i = 0; i < self->n_settings; i++) {
    if (!self->staged[i].set)
      continue;
    value_commit (&self->table[i], &self->staged[i], self->config);
    self->origins[i] = ORIGIN_COMMAND_LINE;
  }
}

/* ---- the config file --------------------------------------------------- */

gboolean
pcr_settings_load_file (PcrSettings * self, const gchar * path,
    GError ** error)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  g_autoptr (GError) local = NULL;
  g_auto (GStrv) groups = NULL;
  g_auto (GStrv) names = NULL;
  g_autofree Value *values = g_new0 (Value, self->n_settings);
  g_autofree gchar *shown = NULL;
  gboolean ok = TRUE;
  guint i;

  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* the file's name and every text from its contents are quoted */
  shown = pcr_quote_untrusted (path, PCR_QUOTE_MAX_VALUE);
  if (!g_key_file_load_from_file (file, path, G_KEY_FILE_NONE, &local)) {
    g_autofree gchar *why = pcr_quote_untrusted (local->message,
        PCR_QUOTE_MAX_VALUE);

    g_set_error (error, PCR_SETTINGS_ERROR, PCR_SETTINGS_ERROR_INVALID,
        "cannot read config file %s: %s", shown, why);
    return FALSE;
  }
  if (!g_key_file_has_group (file, self->group)) {
    g_set_error (error, PCR_SETTINGS_ERROR, PCR_SETTINGS_ERROR_INVALID,
        "%s: no [%s] group", shown, self->group);
    return FALSE;
  }

  groups = g_key_file_get_groups (file, NULL);
  for (i = 0; groups[i] != NULL; i++) {
    if (!g_str_equal (groups[i], self->group)) {
      g_autofree gchar *group = pcr_quote_untrusted (groups[i],
          PCR_QUOTE_MAX_VALUE);

      g_warning ("%s: unknown group [%s] ignored", shown, group);
    }
  }

  /* everything is parsed first, so a bad value leaves the config as it
   * was */
  names = g_key_file_get_keys (file, self->group, NULL, NULL);
  for (i = 0; ok && names != NULL && names[i] != NULL; i++) {
    g_autofree gchar *prefix = NULL;
    g_autofree gchar *text = NULL;
    gint index = find_index (self, names[i]);

    if (index < 0) {
      g_autofree gchar *key = pcr_quote_untrusted (names[i],
          PCR_QUOTE_MAX_VALUE);

      g_warning ("%s: unknown key '%s' in [%s] ignored", shown, key,
          self->group);
      continue;
    }
    prefix = g_strdup_printf ("%s: key %s: ", shown, names[i]);
    /* get_string undoes the key file escapes and checks UTF-8 */
    text = g_key_file_get_string (file, self->group, names[i], &local);
    if (text == NULL) {
      g_autofree gchar *why = pcr_quote_untrusted (local->message,
          PCR_QUOTE_MAX_VALUE);

      g_set_error (error, PCR_SETTINGS_ERROR, PCR_SETTINGS_ERROR_INVALID,
          "%s%s", prefix, why);
      ok = FALSE;
    } else {
      value_clear (&values[index]);
      ok = parse_value (&self->table[index], prefix, text, &values[index],
          error);
    }
  }

  for (i = 0; i < self->n_settings; i++) {
    if (ok && values[i].set) {
      value_commit (&self->table[i], &values[i], self->config);
      self->origins[i] = ORIGIN_FILE;
    }
    value_clear (&values[i]);
  }
  if (ok) {
    g_free (self->file);
    self->file = g_steal_pointer (&shown);
  }
  return ok;
}

gboolean
pcr_settings_load (PcrSettings * self, GError ** error)
{
  if (self->config_file != NULL &&
      !pcr_settings_load_file (self, self->config_file, error))
    return FALSE;
  apply_command_line (self);
  return pcr_settings_validate (self, error);
}

/* ---- validation -------------------------------------------------------- */

static gboolean
check_value (PcrSettings * self, const PcrSetting * s, const gchar * value,
    GError ** error)
{
  g_autoptr (GError) local = NULL;

  if (s->check == NULL || s->check (value, &local))
    return TRUE;
  return pcr_settings_fail (self, s->name, error, "%s", local->message);
}

gboolean
pcr_settings_validate (PcrSettings * self, GError ** error)
{
  guint i, j;

  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  for (i = 0; i < self->n_settings; i++) {
    const PcrSetting *s = &self->table[i];
    gpointer field = FIELD (s, self->config);

    switch (s->type) {
      case PCR_SETTING_STRING:
      case PCR_SETTING_FILE:{
        const gchar *value = *(gchar **) field;

        if (value == NULL || *value == '\0') {
          if (s->flags & PCR_SETTING_REQUIRED)
            return pcr_settings_fail (self, s->name, error,
                "must not be empty");
        } else if (!check_value (self, s, value, error)) {
          return FALSE;
        }
        break;
      }
      case PCR_SETTING_INT:{
        gint value = *(gint *) field;

        if (value < s->min || value > s->max)
          return pcr_settings_fail (self, s->name, error,
              "%d is out of range %d..%d", value, s->min, s->max);
        break;
      }
      case PCR_SETTING_BOOL:
        break;
      case PCR_SETTING_LIST:{
        gchar **list = *(gchar ***) field;

        for (j = 0; list != NULL && list[j] != NULL; j++) {
          if (!check_value (self, s, list[j], error))
            return FALSE;
        }
        break;
      }
    }
  }
  if (self->check != NULL)
    return self->check (self, self->config, self->check_data, error);
  return TRUE;
}

/* ---- shared validators ------------------------------------------------- */

/* *INDENT-OFF* */
static gboolean invalid (GError ** error, const gchar * format, ...)
    G_GNUC_PRINTF (2, 3);
/* *INDENT-ON* */

static gboolean
invalid (GError ** error, const gchar * format, ...)
{
  va_list args;

  va_start (args, format);
  if (error != NULL && *error == NULL)
    *error = g_error_new_valist (PCR_SETTINGS_ERROR,
        PCR_SETTINGS_ERROR_INVALID, format, args);
  va_end (args);
  return FALSE;
}

gboolean
pcr_check_broker_uri (const gchar * value, GError ** error)
{
  g_autoptr (GUri) uri = NULL;
  g_autoptr (GError) local = NULL;
  /* a URI with user:password@ in it is never echoed: messages go to logs */
  g_autofree gchar *escaped = value && strchr (value, '@') ?
      g_strdup ("(a URI with credentials, not shown)") :
      pcr_quote_untrusted (value, PCR_QUOTE_MAX_VALUE);
  const gchar *scheme, *host, *path;

  if (value == NULL || *value == '\0')
    return invalid (error, "must not be empty (e.g. " PCR_DEFAULT_BROKER ")");
  uri = g_uri_parse (value, G_URI_FLAGS_NONE, &local);
  if (uri == NULL)
    return invalid (error, "\"%s\" is not a URI: %s", escaped,
        local->message);
  scheme = g_uri_get_scheme (uri);
  host = g_uri_get_host (uri);
  path = g_uri_get_path (uri);
  if (g_strcmp0 (scheme, "mqtt") != 0 && g_strcmp0 (scheme, "mqtts") != 0)
    return invalid (error, "\"%s\": the scheme must be mqtt:// or mqtts://",
        escaped);
  if (host == NULL || *host == '\0')
    return invalid (error, "\"%s\" has no host", escaped);
  if (g_uri_get_port (uri) == 0)
    return invalid (error, "\"%s\": port 0 is not valid", escaped);
  if (g_uri_get_userinfo (uri) != NULL)
    return invalid (error, "\"%s\": put credentials in username and "
        "password, not in the URI", escaped);
  if ((path != NULL && *path != '\0' && !g_str_equal (path, "/"))
      || g_uri_get_query (uri) != NULL || g_uri_get_fragment (uri) != NULL)
    return invalid (error, "\"%s\": only scheme, host and port are allowed",
        escaped);
  return TRUE;
}

gboolean
pcr_check_device_id (const gchar * value, GError ** error)
{
  gsize len = value ? strlen (value) : 0;
  gsize i;

  for (i = 0; i < len; i++) {
    if (!g_ascii_isalnum (value[i]) && value[i] != '_' && value[i] != '-')
      break;
  }
  if (len == 0 || len > 64 || i < len) {
    g_autofree gchar *escaped = pcr_quote_untrusted (value,
        PCR_QUOTE_MAX_VALUE);

    return invalid (error, "\"%s\" is not a device id (1 to 64 of A-Z a-z "
        "0-9 _ -)", escaped);
  }
  return TRUE;
}

/* MQTT topic levels separated by '/': no wildcards, no empty level. */
gboolean
pcr_check_topic_prefix (const gchar * value, GError ** error)
{
  g_autofree gchar *escaped = pcr_quote_untrusted (value,
      PCR_QUOTE_MAX_VALUE);
  g_auto (GStrv) levels = NULL;
  guint i;

  if (value == NULL || *value == '\0' || strlen (value) > MAX_TOPIC_PREFIX
      || strpbrk (value, "+#") != NULL || !g_utf8_validate (value, -1, NULL))
    return invalid (error, "\"%s\" is not a topic prefix (1 to %d "
        "characters, no + or #)", escaped, MAX_TOPIC_PREFIX);
  levels = g_strsplit (value, "/", -1);
  for (i = 0; levels[i] != NULL; i++) {
    const gchar *c;

    for (c = levels[i]; *c != '\0'; c++) {
      if (g_ascii_iscntrl (*c))
        break;
    }
    if (*levels[i] == '\0' || *c != '\0')
      return invalid (error, "\"%s\" has an empty level or a control "
          "character", escaped);
  }
  return TRUE;
}

gboolean
pcr_check_ip_address (const gchar * value, GError ** error)
{
  g_autofree gchar *escaped = NULL;

  if (value != NULL && g_hostname_is_ip_address (value))
    return TRUE;
  escaped = pcr_quote_untrusted (value, PCR_QUOTE_MAX_VALUE);
  return invalid (error, "\"%s\" is not an IP address", escaped);
}

gboolean
pcr_check_readable_file (const gchar * value, GError ** error)
{
  g_autofree gchar *escaped = NULL;

  if (value != NULL && g_file_test (value, G_FILE_TEST_IS_REGULAR))
    return TRUE;
  escaped = pcr_quote_untrusted (value, PCR_QUOTE_MAX_VALUE);
  return invalid (error, "\"%s\" is not a readable file", escaped);
}

static gboolean
check_ice_server (const gchar * value, const gchar * const *schemes,
    GError ** error)
{
  g_autofree gchar *escaped = NULL;
  guint i;

  for (i = 0; value != NULL && schemes[i] != NULL; i++) {
    if (g_str_has_prefix (value, schemes[i]) &&
        value[strlen (schemes[i])] != '\0' &&
        strpbrk (value, " \t\r\n") == NULL)
      return TRUE;
  }
  /* a TURN URI carries a password: not quoted */
  if (value != NULL && strchr (value, '@') != NULL)
    escaped = g_strdup ("(a URI with credentials, not shown)");
  else
    escaped = pcr_quote_untrusted (value, PCR_QUOTE_MAX_VALUE);
  return invalid (error, "\"%s\" must start with %s", escaped, schemes[0]);
}

gboolean
pcr_check_stun_server (const gchar * value, GError ** error)
{
  static const gchar *const schemes[] = { "stun://", NULL };

  return check_ice_server (value, schemes, error);
}

gboolean
pcr_check_turn_server (const gchar * value, GError ** error)
{
  static const gchar *const schemes[] = { "turn://", "turns://", NULL };

  return check_ice_server (value, schemes, error);
}
