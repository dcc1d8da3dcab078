/* A small asynchronous client of the Janus HTTP API: one Janus session with
 * one plugin handle, its events read by long-polling the session. The camera
 * publishes through it, the gateway and the test viewer subscribe through
 * it. Every callback runs on the thread-default main context of whoever
 * called pcr_janus_new(); nothing here blocks. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define PCR_JANUS_ERROR (pcr_janus_error_quark ())
GQuark pcr_janus_error_quark (void);

typedef enum
{
  PCR_JANUS_ERROR_UNREACHABLE,  /* HTTP failed: refused, timed out, reset */
  PCR_JANUS_ERROR_PROTOCOL,     /* an answer that is not what Janus sends */
  PCR_JANUS_ERROR_JANUS,        /* {"janus":"error"}: code in the message */
  PCR_JANUS_ERROR_PLUGIN,       /* the plugin's error_code / error */
  PCR_JANUS_ERROR_LOST,         /* the session is gone (458, hangup, detach) */
} PcrJanusError;

/* Janus' answers are bounded: anything longer is a protocol error. */
#define PCR_JANUS_MAX_REPLY (1024 * 1024)

typedef struct _PcrJanus PcrJanus;

/* An event for the handle that answers no request of ours: "webrtcup",
 * "media", "slowlink", "hangup", a "trickle" from Janus, a plugin "event"
 * without a transaction of ours. @event is the whole Janus message. */
typedef void (*PcrJanusEventFunc) (PcrJanus * janus, JsonObject * event,
    gpointer user_data);

/* The session is gone for good (Janus restarted, unreachable for the long
 * poll, the session timed out, the handle "detached"): no more events come.
 * A "hangup" (the PeerConnection ended) is an event: the session lives on. */
typedef void (*PcrJanusLostFunc) (PcrJanus * janus, const GError * error,
    gpointer user_data);

/* The answer to one request: on success @reply is the whole Janus message
 * (a synchronous "success" or the asynchronous "event" with the request's
 * transaction, holding "plugindata" and maybe "jsep"), @error is NULL.
 * Plugin errors ("error_code" in the plugin data) come as
 * PCR_JANUS_ERROR_PLUGIN. */
typedef void (*PcrJanusReplyFunc) (PcrJanus * janus, JsonObject * reply,
    const GError * error, gpointer user_data);

/**
 * pcr_janus_parse_url:
 * @url: `http[s]://host[:port]/path[?room=N&adminkey=K&apisecret=S]`
 * @base: (out) (transfer full): the URL without its query
 * @room: (out): the room, 0 when the URL names none
 * @adminkey: (out) (transfer full) (nullable)
 * @apisecret: (out) (transfer full) (nullable)
 *
 * Checks a relay URL from a config file or a property: http or https, a
 * host, at most 1024 characters, only those query keys, the room a number
 * from 1 to 2^53-1. Errors are one line (G_IO_ERROR_INVALID_ARGUMENT).
 */
gboolean pcr_janus_parse_url (const gchar * url, gchar ** base, guint64 * room,
    gchar ** adminkey, gchar ** apisecret, GError ** error);

/**
 * pcr_janus_new:
 * @base: the Janus HTTP endpoint, e.g. `http://127.0.0.1:8088/janus`
 * @apisecret: (nullable): sent with every request when set
 */
PcrJanus *pcr_janus_new (const gchar * base, const gchar * apisecret,
    PcrJanusEventFunc on_event, PcrJanusLostFunc on_lost, gpointer user_data);

/* Creates the session, attaches @plugin ("janus.plugin.videoroom") and
 * starts the long poll. @done gets a NULL reply and no error on success. */
void pcr_janus_connect (PcrJanus * janus, const gchar * plugin,
    PcrJanusReplyFunc done, gpointer user_data);

/* Sends @body (transfer none) to the plugin, with a JSEP of @jsep_type
 * ("offer" or "answer") and @jsep_sdp when they are set. */
void pcr_janus_message (PcrJanus * janus, JsonObject * body,
    const gchar * jsep_type, const gchar * jsep_sdp, PcrJanusReplyFunc done,
    gpointer user_data);

/* One local ICE candidate of ours; @candidate NULL or "" ends them. */
void pcr_janus_trickle (PcrJanus * janus, guint mline_index,
    const gchar * candidate);

/* Whether pcr_janus_connect() has succeeded and the session is not lost. */
gboolean pcr_janus_is_connected (PcrJanus * janus);

guint64 pcr_janus_session_id (PcrJanus * janus);

/* Cancels every request and the poll, destroys the Janus session (a last
 * request that is not waited for) and frees. No callback runs afterwards. */
void pcr_janus_free (PcrJanus * janus);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrJanus, pcr_janus_free)

/* Runs @context (of the freed clients) until their last "destroy" requests
 * are done, at most @timeout_ms: a program stopping lets Janus know at
 * once, and nothing of the requests is left over. */
void pcr_janus_wait_destroyed (GMainContext * context, guint timeout_ms);

/* HTTP requests of all clients not finished yet (the cancelled ones of
 * freed clients and their last "destroy" included): a program waits for 0
 * while the clients' context still runs, before it stops that. */
guint pcr_janus_requests_in_flight (void);

/* Members of a message from Janus, which is not trusted: the string (or
 * integer) @name, or @fallback when it is missing or of another type.
 * (json-glib's *_with_default return NULL for a number where a string
 * was expected, and warn for an object or array.) */
const gchar *pcr_janus_string (JsonObject * object, const gchar * name,
    const gchar * fallback);
gint64 pcr_janus_int (JsonObject * object, const gchar * name,
    gint64 fallback);

/* The plugin data of a reply or event ("plugindata"."data"), or NULL. */
JsonObject *pcr_janus_plugin_data (JsonObject * message);

/* The SDP of the message's "jsep" when its type is @type, or NULL. */
const gchar *pcr_janus_jsep_sdp (JsonObject * message, const gchar * type);

G_END_DECLS
