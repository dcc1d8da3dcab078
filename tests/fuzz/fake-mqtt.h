/* An in-process stand-in for lib/pcr-mqtt.c, linked into fuzz-request in
 * its place (the executable defines the pcr_mqtt_* symbols, so the
 * archive's pcr-mqtt.o is never pulled in): a broker of one client, with
 * retained messages and '+'/'#' subscriptions, that delivers on the
 * client's GMainContext as the real one does and never touches the
 * network. The fuzzer plays the devices through it. */
#pragma once

#include "pcr-mqtt.h"

G_BEGIN_DECLS

/* What the fuzzer hears of the client. */
typedef struct
{
  /* inside pcr_mqtt_publish (), for every message sent while connected */
  void (*publish) (const gchar * topic, const guint8 * payload, gsize len,
      gpointer user_data);
  /* inside pcr_mqtt_free (): the subscriptions the client still held */
  void (*freed) (GList * subscriptions, gpointer user_data);
} FakeMqttHooks;

void fake_mqtt_set_hooks (const FakeMqttHooks * hooks, gpointer user_data);

/* The client pcr_mqtt_new () made last, until it is freed. */
PcrMqtt *fake_mqtt_get (void);

/* The broker accepts (TRUE) or drops (FALSE) the client; on_connection
 * follows on the client's context, as from the network thread. */
void fake_mqtt_set_connected (PcrMqtt * mqtt, gboolean connected);

/* A device publishes: stored when @retain (an empty payload clears it),
 * delivered to the client when one of its subscriptions matches. */
void fake_mqtt_deliver (PcrMqtt * mqtt, const gchar * topic,
    const gchar * payload, gsize len, gboolean retain);

/* Whether the client holds exactly this subscription. */
gboolean fake_mqtt_is_subscribed (PcrMqtt * mqtt, const gchar * pattern);

G_END_DECLS
