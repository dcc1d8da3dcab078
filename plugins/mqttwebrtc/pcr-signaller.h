/* The signalling side of mqttwebrtcsink behind a small interface: what the
 * element hears from viewers, what it says to them and the device's retained
 * status. PcrMqttSignaller speaks the MQTT contract of docs/signalling.md;
 * another implementation (a test's, without a broker) can be set on the
 * element's "signaller" property. See docs/architecture.md for where it
 * sits in the element. */
#pragma once

#include <glib-object.h>

#include "pcr-message.h"

G_BEGIN_DECLS
#define PCR_SIGNALLER_ERROR (pcr_signaller_error_quark ())
GQuark pcr_signaller_error_quark (void);

typedef enum
{
  PCR_SIGNALLER_ERROR_SETTINGS, /* unusable settings: fix them, then start */
  PCR_SIGNALLER_ERROR_START,    /* could not start (threads, sockets) */
} PcrSignallerError;

#define PCR_TYPE_SIGNALLER (pcr_signaller_get_type ())
G_DECLARE_INTERFACE (PcrSignaller, pcr_signaller, PCR, SIGNALLER, GObject)

/* What a signaller tells its element, always on the GMainContext given to
 * start(), never from inside a PcrSignallerInterface call. */
typedef struct
{
  /* The viewers can reach the device (again): publish the status now. */
  void (*connected) (PcrSignaller * signaller, gpointer user_data);
  /* A well-formed message from the viewer of session @session_id (a valid
   * id). The signaller answers malformed ones with bad-request itself. */
  void (*message) (PcrSignaller * signaller, const gchar * session_id,
      const PcrMessage * msg, gpointer user_data);
  /* A connection failure in one line; the signaller keeps retrying. */
  void (*error) (PcrSignaller * signaller, const gchar * message,
      gpointer user_data);
  /* Nullable: no control channel. A well-formed message for the viewers'
   * control channels, for @session_id or (NULL) all of them. */
  void (*control) (PcrSignaller * signaller, const gchar * session_id,
      const gchar * data, gpointer user_data);
} PcrSignallerCallbacks;

struct _PcrSignallerInterface
{
  GTypeInterface parent_iface;

  /* Connects (in the background) and starts delivering @callbacks on
   * @context. @offline is the status to publish should the device vanish
   * (the MQTT last will). */
  gboolean (*start) (PcrSignaller * self, GMainContext * context,
      const PcrSignallerCallbacks * callbacks, gpointer user_data,
      const PcrStatus * offline, GError ** error);
  /* Publishes @offline and disconnects; no callback runs after it returns.
   * Harmless when not started. */
  void (*stop) (PcrSignaller * self, const PcrStatus * offline);
  /* Sends @msg to the viewer of @session_id (from @context). */
  void (*send) (PcrSignaller * self, const gchar * session_id,
      const PcrMessage * msg);
  /* Publishes the device's retained status (from @context); dropped while
   * not connected, the connected callback publishes it again. */
  void (*publish_status) (PcrSignaller * self, const PcrStatus * status);
  /* Publishes the device's figures, not retained (from @context); dropped
   * while not connected. Optional: NULL, the figures go nowhere. */
  void (*publish_metrics) (PcrSignaller * self, const PcrMetrics * metrics);
  /* Hands what a viewer sent on its control channel to the device's
   * programs, not retained (from @context); dropped while not connected.
   * Optional. */
  void (*publish_control) (PcrSignaller * self, const gchar * session_id,
      const gchar * data);
};

gboolean pcr_signaller_start (PcrSignaller * self, GMainContext * context,
    const PcrSignallerCallbacks * callbacks, gpointer user_data,
    const PcrStatus * offline, GError ** error);
void pcr_signaller_stop (PcrSignaller * self, const PcrStatus * offline);
void pcr_signaller_send (PcrSignaller * self, const gchar * session_id,
    const PcrMessage * msg);
void pcr_signaller_publish_status (PcrSignaller * self,
    const PcrStatus * status);
/* The device's figures (docs/signalling.md, "Metrics"), when the
 * signaller publishes them. */
void pcr_signaller_publish_metrics (PcrSignaller * self,
    const PcrMetrics * metrics);
/* A viewer's control message (docs/audio-and-control.md), when the
 * signaller has a control side. */
void pcr_signaller_publish_control (PcrSignaller * self,
    const gchar * session_id, const gchar * data);
/* Sends a stats message (docs/signalling.md, "Stats") through send(): only
 * for a viewer whose offer asked for it. */
void pcr_signaller_send_stats (PcrSignaller * self, const gchar * session_id,
    const PcrStats * stats);

/* The MQTT contract of docs/signalling.md over lib/pcr-mqtt. */
#define PCR_TYPE_MQTT_SIGNALLER (pcr_mqtt_signaller_get_type ())
G_DECLARE_FINAL_TYPE (PcrMqttSignaller, pcr_mqtt_signaller, PCR,
    MQTT_SIGNALLER, GObject)

typedef struct
{
  const gchar *broker_uri;
  const gchar *username;        /* nullable */
  const gchar *password;        /* nullable */
  const gchar *ca_file;         /* nullable */
  const gchar *cert_file;       /* nullable; with key_file */
  const gchar *key_file;        /* nullable */
  const gchar *topic_prefix;
  const gchar *device_id;
} PcrMqttSignallerSettings;

/* Checks @settings (device-id, topic-prefix, broker-uri, the client
 * certificate's pair; the files themselves at start) and copies them. */
PcrMqttSignaller *pcr_mqtt_signaller_new (const PcrMqttSignallerSettings *
    settings, GError ** error);

G_END_DECLS
