/* The pcr-mqtt.h API without libmosquitto or a network (fake-mqtt.h): the
 * gateway under fuzz-request talks to this broker in memory. Like the real
 * client it fails to publish or subscribe while not connected and delivers
 * every event later, from a source on the owner's context, never inside
 * the call that caused it; no callback runs after pcr_mqtt_free(). */
#include "fake-mqtt.h"

#include <string.h>

struct _PcrMqtt
{
  GMainContext *context;
  PcrMqttCallbacks callbacks;
  gpointer user_data;
  gboolean connected;
  GHashTable *subscriptions;    /* pattern -> itself */
  GHashTable *retained;         /* topic -> GBytes */
  GList *pending;               /* Event*: posted, not run yet */
};

typedef struct
{
  PcrMqtt *mqtt;
  GSource *source;
  gboolean is_message;
  gboolean connected;
  gchar *topic;
  GBytes *payload;
} Event;

static PcrMqtt *current;
static FakeMqttHooks hooks;
static gpointer hooks_data;

static void
event_free (Event * event)
{
  g_free (event->topic);
  g_clear_pointer (&event->payload, g_bytes_unref);
  g_free (event);
}

static gboolean
event_dispatch (gpointer data)
{
  Event *event = data;
  PcrMqtt *mqtt = event->mqtt;

  mqtt->pending = g_list_remove (mqtt->pending, event);
  if (event->is_message)
    mqtt->callbacks.on_message (mqtt, event->topic, event->payload,
        mqtt->user_data);
  else
    mqtt->callbacks.on_connection (mqtt, event->connected, mqtt->user_data);
  return G_SOURCE_REMOVE;
}

static void
post (PcrMqtt * mqtt, Event * event)
{
  event->mqtt = mqtt;
  event->source = g_idle_source_new ();
  g_source_set_callback (event->source, event_dispatch, event,
      (GDestroyNotify) event_free);
  mqtt->pending = g_list_append (mqtt->pending, event);
  g_source_attach (event->source, mqtt->context);
  g_source_unref (event->source);
}

/* MQTT topic filters: '+' one level, '#' the rest. */
static gboolean
topic_matches (const gchar * pattern, const gchar * topic)
{
  g_auto (GStrv) p = g_strsplit (pattern, "/", -1);
  g_auto (GStrv) t = g_strsplit (topic, "/", -1);
  guint i;

  for (i = 0; p[i] != NULL; i++) {
    if (g_str_equal (p[i], "#"))
      return TRUE;
    if (t[i] == NULL)
      return FALSE;
    if (!g_str_equal (p[i], "+") && !g_str_equal (p[i], t[i]))
      return FALSE;
  }
  return t[i] == NULL;
}

static void
post_message (PcrMqtt * mqtt, const gchar * topic, GBytes * payload)
{
  Event *event = g_new0 (Event, 1);

  event->is_message = TRUE;
  event->topic = g_strdup (topic);
  event->payload = g_bytes_ref (payload);
  post (mqtt, event);
}

static gboolean
is_subscribed_to (PcrMqtt * mqtt, const gchar * topic)
{
  GHashTableIter iter;
  const gchar *pattern;

  g_hash_table_iter_init (&iter, mqtt->subscriptions);
  while (g_hash_table_iter_next (&iter, (gpointer *) & pattern, NULL)) {
    if (topic_matches (pattern, topic))
      return TRUE;
  }
  return FALSE;
}

void
fake_mqtt_set_hooks (const FakeMqttHooks * new_hooks, gpointer user_data)
{
  hooks = *new_hooks;
  hooks_data = user_data;
}

PcrMqtt *
fake_mqtt_get (void)
{
  return current;
}

void
fake_mqtt_set_connected (PcrMqtt * mqtt, gboolean connected)
{
  Event *event;

  if (mqtt->connected == connected)
    return;
  mqtt->connected = connected;
  /* a broker forgets a clean-session client's subscriptions */
  g_hash_table_remove_all (mqtt->subscriptions);
  event = g_new0 (Event, 1);
  event->connected = connected;
  post (mqtt, event);
}

void
fake_mqtt_deliver (PcrMqtt * mqtt, const gchar * topic, const gchar * payload,
    gsize len, gboolean retain)
{
  g_autoptr (GBytes) bytes = g_bytes_new (payload, len);

  if (retain && len == 0)
    g_hash_table_remove (mqtt->retained, topic);
  else if (retain)
    g_hash_table_replace (mqtt->retained, g_strdup (topic),
        g_bytes_ref (bytes));
  if (mqtt->connected && is_subscribed_to (mqtt, topic))
    post_message (mqtt, topic, bytes);
}

gboolean
fake_mqtt_is_subscribed (PcrMqtt * mqtt, const gchar * pattern)
{
  return g_hash_table_contains (mqtt->subscriptions, pattern);
}

/* ---- the pcr-mqtt.h API ---- */

PcrMqtt *
pcr_mqtt_new (const PcrMqttOptions * options, GMainContext * context,
    const PcrMqttCallbacks * callbacks, gpointer user_data, GError ** error)
{
  PcrMqtt *mqtt;

  g_return_val_if_fail (options != NULL && options->uri != NULL, NULL);
  g_return_val_if_fail (callbacks != NULL && callbacks->on_connection
      && callbacks->on_message, NULL);

  mqtt = g_new0 (PcrMqtt, 1);
  mqtt->context = context != NULL ? g_main_context_ref (context) :
      g_main_context_ref_thread_default ();
  mqtt->callbacks = *callbacks;
  mqtt->user_data = user_data;
  mqtt->subscriptions = g_hash_table_new_full (g_str_hash, g_str_equal,
      g_free, NULL);
  mqtt->retained = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      (GDestroyNotify) g_bytes_unref);
  current = mqtt;
  return mqtt;
}

gboolean
pcr_mqtt_start (PcrMqtt * mqtt, GError ** error)
{
  fake_mqtt_set_connected (mqtt, TRUE);
  return TRUE;
}

gboolean
pcr_mqtt_publish (PcrMqtt * mqtt, const gchar * topic, const void *payload,
    gsize len, gboolean retain)
{
  g_return_val_if_fail (mqtt != NULL && topic != NULL, FALSE);

  /* libmosquitto refuses wildcards in a topic to publish to */
  if (!mqtt->connected || strpbrk (topic, "+#") != NULL)
    return FALSE;
  if (hooks.publish != NULL)
    hooks.publish (topic, payload, len, hooks_data);
  return TRUE;
}

gboolean
pcr_mqtt_subscribe (PcrMqtt * mqtt, const gchar * pattern)
{
  GHashTableIter iter;
  const gchar *topic;
  GBytes *payload;

  g_return_val_if_fail (mqtt != NULL && pattern != NULL, FALSE);

  if (!mqtt->connected)
    return FALSE;
  g_hash_table_add (mqtt->subscriptions, g_strdup (pattern));
  g_hash_table_iter_init (&iter, mqtt->retained);
  while (g_hash_table_iter_next (&iter, (gpointer *) & topic,
          (gpointer *) & payload)) {
    if (topic_matches (pattern, topic))
      post_message (mqtt, topic, payload);
  }
  return TRUE;
}

gboolean
pcr_mqtt_unsubscribe (PcrMqtt * mqtt, const gchar * pattern)
{
  g_return_val_if_fail (mqtt != NULL && pattern != NULL, FALSE);

  if (!mqtt->connected)
    return FALSE;
  g_hash_table_remove (mqtt->subscriptions, pattern);
  return TRUE;
}

gboolean
pcr_mqtt_is_connected (PcrMqtt * mqtt)
{
  g_return_val_if_fail (mqtt != NULL, FALSE);

  return mqtt->connected;
}

void
pcr_mqtt_stop (PcrMqtt * mqtt, guint flush_ms)
{
  g_return_if_fail (mqtt != NULL);

  /* a clean disconnect: no on_connection (FALSE), nothing more delivered */
  mqtt->connected = FALSE;
  while (mqtt->pending != NULL) {
    Event *event = mqtt->pending->data;

    mqtt->pending = g_list_delete_link (mqtt->pending, mqtt->pending);
    g_source_destroy (event->source);
  }
}

void
pcr_mqtt_free (PcrMqtt * mqtt)
{
  if (mqtt == NULL)
    return;
  if (hooks.freed != NULL) {
    g_autoptr (GList) left = g_hash_table_get_keys (mqtt->subscriptions);

    hooks.freed (left, hooks_data);
  }
  pcr_mqtt_stop (mqtt, 0);
  if (current == mqtt)
    current = NULL;
  g_hash_table_unref (mqtt->subscriptions);
  g_hash_table_unref (mqtt->retained);
  g_main_context_unref (mqtt->context);
  g_free (mqtt);
}
