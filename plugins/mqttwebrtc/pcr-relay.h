/* The relay of mqttwebrtcsink: the camera's stream published once to a
 * Janus VideoRoom (docs/scaling.md), where any number of viewers subscribe,
 * so the camera's uplink carries one stream however many watch. The camera
 * dials out over WebRTC like a viewer of its own: it offers, Janus answers;
 * with a low rendition both go as simulcast layers (rids "h" and "l") and
 * Janus picks one per viewer. Every function runs on the element's
 * context. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

typedef struct _PcrRelay PcrRelay;

typedef enum
{
  PCR_RELAY_IDLE,               /* not publishing: nobody watches through it */
  PCR_RELAY_CONNECTING,         /* asked to publish, not up yet */
  PCR_RELAY_PUBLISHING,         /* Janus receives the stream */
  PCR_RELAY_UNREACHABLE,        /* the last attempt failed; retrying */
} PcrRelayState;

const gchar *pcr_relay_state_to_string (PcrRelayState state);

typedef struct
{
  /* the state changed, or another attempt failed (UNREACHABLE again);
   * @error says why when UNREACHABLE */
  void (*state_changed) (PcrRelay * relay, PcrRelayState state,
      const gchar * error, gpointer user_data);
  /* Janus asked for a key frame of @rendition (0 high, 1 low) */
  void (*key_unit) (PcrRelay * relay, guint rendition, gpointer user_data);
} PcrRelayCallbacks;

typedef struct
{
  const gchar *url;             /* the Janus HTTP endpoint, without query */
  const gchar *apisecret;       /* nullable */
  const gchar *adminkey;        /* nullable: rooms are made without one */
  guint64 room, feed;
  const gchar *display;         /* the device id */
  const gchar *stun_server, *turn_server, *ice_addresses;      /* nullable */
} PcrRelaySettings;

PcrRelay *pcr_relay_new (GstBin * bin, GMainContext * context,
    const PcrRelaySettings * settings, const PcrRelayCallbacks * callbacks,
    gpointer user_data);

/* Publishes while @wanted, from @tees (best first: one layer each, at most
 * two), retrying every second when Janus cannot be reached or goes away;
 * stops publishing when not. */
void pcr_relay_set_wanted (PcrRelay * relay, gboolean wanted,
    GstElement ** tees, guint n_tees);

/* Between failed attempts: the next one now (a new relayed viewer asks). */
void pcr_relay_retry_now (PcrRelay * relay);

PcrRelayState pcr_relay_get_state (PcrRelay * relay);

/* Why the last attempt failed, or NULL. */
const gchar *pcr_relay_get_error (PcrRelay * relay);

/* Stops publishing at once and frees; no callback runs afterwards. */
void pcr_relay_free (PcrRelay * relay);

/* The room and publisher ids derived from a device id when the relay URL
 * names no room: stable across restarts, from 1 to 2^53-1. */
guint64 pcr_relay_id_for (const gchar * device_id, const gchar * what);

G_END_DECLS
