/* picamrtc signalling messages: the JSON codec for the MQTT contract
 * (docs/signalling.md), topic building/parsing and id validation. Pure data
 * code: no I/O, no threads, safe on hostile input. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Largest payload accepted from the network (docs/signalling.md: 256 KiB). */
#define PCR_MESSAGE_MAX_SIZE (256 * 1024)
/* Bounds on the optional iceServers list of an offer. */
#define PCR_MESSAGE_MAX_ICE_SERVERS 8
#define PCR_MESSAGE_MAX_ICE_URLS 8

#define PCR_MESSAGE_ERROR (pcr_message_error_quark ())
GQuark pcr_message_error_quark (void);

/* The error codes of the contract; pcr_error_code_to_string() gives the wire
 * string ("bad-request", ...). */
typedef enum
{
  PCR_ERROR_BAD_REQUEST,
  PCR_ERROR_NO_COMPATIBLE_CODEC,
  PCR_ERROR_MAX_VIEWERS,
  PCR_ERROR_UNKNOWN_SESSION,
  PCR_ERROR_INTERNAL,
  PCR_ERROR_NO_SNAPSHOT,        /* the device has no pictures to give */
  PCR_ERROR_BUSY,               /* too many snapshots asked for at once */
  PCR_ERROR_NO_RECORDING,       /* the device has no recording directory */
  PCR_ERROR_NOT_FOUND,          /* no such segment */
  PCR_ERROR_RELAY_UNAVAILABLE,  /* no relay configured, or Janus unreachable */
} PcrErrorCode;

const gchar *pcr_error_code_to_string (PcrErrorCode code);

typedef enum
{
  PCR_MESSAGE_OFFER,
  PCR_MESSAGE_ANSWER,
  PCR_MESSAGE_CANDIDATE,
  PCR_MESSAGE_BYE,
  PCR_MESSAGE_ERROR_MSG,
  PCR_MESSAGE_STATS,
  PCR_MESSAGE_SNAPSHOT,         /* a viewer asks for a still image */
  PCR_MESSAGE_IMAGE,            /* one part of it, from the device */
  PCR_MESSAGE_RECORD,           /* start or stop recording */
  PCR_MESSAGE_RECORDING,        /* whether the device records now */
  PCR_MESSAGE_RECORDINGS,       /* a viewer asks for the segments */
  PCR_MESSAGE_SEGMENTS,         /* some of them, from the device */
  PCR_MESSAGE_FETCH,            /* a viewer asks for bytes of a segment */
  PCR_MESSAGE_CHUNK,            /* those bytes, from the device */
  PCR_MESSAGE_RELAY,            /* a relayed viewer's lease; the room/feed */
} PcrMessageType;

/* Janus room and publisher ids are JSON numbers: at most 2^53-1. */
#define PCR_RELAY_MAX_ID ((G_GUINT64_CONSTANT (1) << 53) - 1)

/* One RTCIceServer: urls (at least one), optional username/credential. */
typedef struct
{
  gchar **urls;                 /* NULL-terminated */
  gchar *username;              /* nullable */
  gchar *credential;            /* nullable */
} PcrIceServer;

void pcr_ice_server_free (PcrIceServer * server);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrIceServer, pcr_ice_server_free)

/* Bounds on a stats message's fields (docs/signalling.md, "Stats"). */
#define PCR_STATS_MAX_RENDITION 16
#define PCR_STATS_MAX_DIMENSION 65535
#define PCR_STATS_MAX_RTT_MS 600000

/* What a device knows about one viewer's link: a "stats" message, sent
 * about once a second to a viewer whose offer asked for it. */
typedef struct
{
  gchar *rendition;             /* "high", "low": an id of at most 16 */
  guint width, height;          /* of the rendition; 0: unknown, left out */
  guint estimate;               /* the device's estimate of the link, bit/s */
  guint bitrate;                /* its encoder's, bit/s; 0: left out */
  gdouble loss;                 /* 0..1, last receiver report; < 0: out */
  gint rtt;                     /* ms, receiver reports; < 0: left out */
} PcrStats;

/* A still image travels in parts of at most this many bytes (before
 * base64): with its JSON a part stays under the 128 KiB an MQTT message
 * of the project may have (docs/signalling.md, "Snapshots"). */
#define PCR_IMAGE_PART_MAX (64 * 1024)
/* At most this many parts: images of up to 4 MiB. */
#define PCR_IMAGE_MAX_PARTS 64
#define PCR_IMAGE_MAX_DIMENSION 16384

/* One part of an "image" message. */
typedef struct
{
  gchar *content_type;          /* "image/jpeg" */
  guint width, height;          /* of the picture */
  guint part, parts;            /* part < parts <= PCR_IMAGE_MAX_PARTS */
  guint size;                   /* of the whole image, bytes */
  GBytes *data;                 /* this part, decoded */
} PcrImagePart;

/* Recordings (docs/signalling.md, "Recordings"). */
#define PCR_SEGMENTS_PER_MESSAGE 200
#define PCR_SEGMENT_NAME_MAX 32
#define PCR_CHUNK_MAX (64 * 1024)
/* Offsets and sizes: well past any segment. */
#define PCR_SEGMENT_MAX_SIZE (G_GUINT64_CONSTANT (1) << 40)

typedef struct
{
  gchar *name;                  /* YYYYMMDD-HHMMSS[-N].mp4 */
  gint64 start;                 /* Unix time, s */
  guint duration_ms;
  guint64 bytes;
} PcrSegment;

void pcr_segment_free (PcrSegment * segment);

typedef struct
{
  PcrMessageType type;
  gchar *sdp;                   /* offer, answer */
  gboolean trickle;             /* offer; default FALSE */
  gboolean want_stats;          /* offer: "stats"; default FALSE */
  GPtrArray *ice_servers;       /* offer: PcrIceServer*, never NULL */
  gchar *candidate;             /* candidate; "" = end of candidates */
  guint sdp_mline_index;        /* candidate */
  gchar *sdp_mid;               /* candidate, nullable */
  gchar *code;                  /* error */
  gchar *message;               /* error */
  PcrStats stats;               /* stats */
  PcrImagePart image;           /* image */
  gboolean record;              /* record (start), recording, segments */
  guint from, total;            /* recordings (from), segments (both) */
  GPtrArray *segments;          /* segments: PcrSegment*, never NULL */
  gchar *name;                  /* fetch, chunk */
  guint64 offset;               /* fetch, chunk */
  guint length;                 /* fetch: at most PCR_CHUNK_MAX */
  guint64 size;                 /* chunk: of the whole segment */
  GBytes *data;                 /* chunk: at most PCR_CHUNK_MAX bytes */
  guint64 room, feed;           /* relay from the device; 0: left out */
} PcrMessage;

void pcr_message_free (PcrMessage * msg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PcrMessage, pcr_message_free)

/* Parses one payload. Rejects with PCR_ERROR_BAD_REQUEST (in
 * PCR_MESSAGE_ERROR) and a one-line message: over PCR_MESSAGE_MAX_SIZE,
 * anything pcr_json_parse_object() refuses (not UTF-8, not one JSON object,
 * nested too deep), missing/unknown "type", a missing or
 * mistyped required field, an "sdp" that is empty, bad iceServers, a
 * stats field out of its range.
 * Unknown fields are ignored. @data need not be NUL-terminated. */
PcrMessage *pcr_message_parse (const gchar * data, gsize len,
    GError ** error);

/* Serializes to a compact JSON object (NUL-terminated, length in @len). */
gchar *pcr_message_to_json (const PcrMessage * msg, gsize * len);

PcrMessage *pcr_message_new_offer (const gchar * sdp, gboolean trickle);
PcrMessage *pcr_message_new_answer (const gchar * sdp);
PcrMessage *pcr_message_new_candidate (const gchar * candidate,
    guint sdp_mline_index, const gchar * sdp_mid);
PcrMessage *pcr_message_new_bye (void);
PcrMessage *pcr_message_new_error (PcrErrorCode code, const gchar * message);
/* Copies @stats; its rendition must be a valid id of at most
 * PCR_STATS_MAX_RENDITION bytes. */
PcrMessage *pcr_message_new_stats (const PcrStats * stats);
PcrMessage *pcr_message_new_snapshot (void);
/* A relayed viewer's request ({"type":"relay"}: both 0), or the device's
 * answer naming the Janus room and its publisher id. */
PcrMessage *pcr_message_new_relay (guint64 room, guint64 feed);
PcrMessage *pcr_message_new_record (gboolean start);
PcrMessage *pcr_message_new_recording (gboolean recording);
PcrMessage *pcr_message_new_recordings (guint from);
/* Segments to add to ->segments (pcr_segment_new). */
PcrMessage *pcr_message_new_segments (gboolean recording, guint from,
    guint total);
PcrSegment *pcr_segment_new (const gchar * name, gint64 start,
    guint duration_ms, guint64 bytes);
PcrMessage *pcr_message_new_fetch (const gchar * name, guint64 offset,
    guint length);
/* @data (at most PCR_CHUNK_MAX bytes) is referenced. */
PcrMessage *pcr_message_new_chunk (const gchar * name, guint64 offset,
    guint64 size, GBytes * data);
/* Part @part of @parts of an image of @size bytes; @data (at most
 * PCR_IMAGE_PART_MAX bytes) is referenced. */
PcrMessage *pcr_message_new_image (const gchar * content_type, guint width,
    guint height, guint part, guint parts, guint size, GBytes * data);

/* YYYYMMDD-HHMMSS.mp4, or YYYYMMDD-HHMMSS-N.mp4 (N of 1 to 3 digits): a
 * recorded segment's name, never a path. */
gboolean pcr_segment_name_is_valid (const gchar * name);

/* [A-Za-z0-9_-]{1,64}: session ids, and device ids too. */
gboolean pcr_id_is_valid (const gchar * id);

/* "P/D/<dir>/S" where dir is "in" or "out"; "P/D/status" when session is
 * NULL and dir is "status". */
gchar *pcr_topic_build (const gchar * prefix, const gchar * device,
    const gchar * dir, const gchar * session);

/* Splits @topic of the form "P/D/<dir>/S" for the given prefix and device;
 * returns FALSE when it does not have that form. *session is set (transfer
 * full) even when S is not a valid id, so the caller can decide whether it
 * may reply; check with pcr_id_is_valid(). */
gboolean pcr_topic_parse_session (const gchar * topic, const gchar * prefix,
    const gchar * device, const gchar * dir, gchar ** session);

/* Turns an RTCIceServer into webrtcbin URIs: "stun://host:port" for stun:
 * urls, "turn://user:pass@host:port" (user and pass URI-escaped) and
 * "turns://..." for turn:/turns: urls (with ?transport= kept). Unknown
 * schemes are skipped. Returns a NULL-terminated array (maybe empty). */
gchar **pcr_ice_server_to_gst_uris (const PcrIceServer * server);

/* ---- the element's additions: status encoding, ICE candidate check ---- */

/* The retained status a device publishes on "P/D/status" (docs/signalling.md:
 * the status message). */
typedef struct
{
  const gchar *state;           /* "online", "error" or "offline" */
  guint viewers;
  guint max_viewers;
  const gchar *codec;           /* "H264" */
  gint width, height;           /* 0 when not known yet: both left out */
  gint fps_n, fps_d;            /* 0 when not known yet: framerate left out */
  gboolean can_record;          /* FALSE: "recording" left out */
  gboolean recording;
  const gchar *record_error;    /* why recording stopped by itself, or NULL */
  gboolean audio;               /* sends Opus audio; FALSE: left out */
  gboolean talkback;            /* plays a viewer's microphone; FALSE: out */
  gboolean control;             /* takes "control" data channels; FALSE: out */
  const gchar *relay_state;     /* "idle", "connecting", "publishing",
                                 * "unreachable"; NULL: no "relay" */
  const gchar *relay_url;       /* the Janus API the camera publishes to,
                                 * without its query (no secrets) */
  guint64 relay_room, relay_feed;
  guint relay_viewers;          /* relayed sessions (leases) */
  const gchar *relay_error;     /* why unreachable, or NULL */
} PcrStatus;

/* Serializes @status to a compact JSON object (NUL-terminated, length in
 * @len): state, viewers, maxViewers, codec, then width and height and
 * framerate (frames per second, an integer when whole) when known. */
gchar *pcr_status_to_json (const PcrStatus * status, gsize * len);

/* ---- the control channel's MQTT side (docs/audio-and-control.md) ---- */

/* The most text one control message carries, in bytes. */
#define PCR_CONTROL_MAX_DATA (16 * 1024)

/* {"session":"S","data":"..."} as published on "P/D/control/from-viewer". */
gchar *pcr_control_to_json (const gchar * session_id, const gchar * data,
    gsize * len);

/* Reads a "P/D/control/to-viewers" payload: @data and @session_id (NULL:
 * every viewer), both transfer full. FALSE with a PCR_ERROR_BAD_REQUEST
 * error for anything else: not one JSON object, a payload over 64 KiB,
 * "data" missing, not a string or over PCR_CONTROL_MAX_DATA bytes,
 * "session" not a valid id. */
gboolean pcr_control_parse (const gchar * payload, gsize len,
    gchar ** session_id, gchar ** data, GError ** error);

/* ---- metrics: what a device reports every few seconds on "P/D/metrics"
 * (docs/signalling.md, "Metrics") ---- */

/* Largest metrics payload a reader accepts; a device's is some 400 bytes. */
#define PCR_METRICS_MAX_SIZE 4096
#define PCR_METRICS_MAX_RENDITIONS 4
#define PCR_METRICS_MAX_INTERVAL 3600
#define PCR_METRICS_MAX_VIEWERS 65535
#define PCR_METRICS_MAX_FPS 1000
/* Counters stay integers a JSON reader keeps exact (2^53 - 1). */
#define PCR_METRICS_MAX_COUNT G_GINT64_CONSTANT (9007199254740991)

typedef struct
{
  gchar name[PCR_STATS_MAX_RENDITION + 1];      /* "high", "low" */
  gdouble fps;                  /* frames per second sent; < 0: unknown */
  gint64 bitrate;               /* bit/s sent; < 0: unknown */
} PcrRenditionMetrics;

/* Every figure may be unknown: a reader drops a bad field and keeps the
 * rest, so one wrong value never hides the others. */
typedef struct
{
  guint interval;               /* seconds between reports; 0: unknown */
  gint64 viewers;               /* < 0: unknown (so the counters below) */
  gint64 restarts;              /* camera restarts, since the device began */
  gint64 nacks;                 /* packets its viewers asked for again */
  gint64 retransmissions;       /* packets it sent again */
  gchar *encoder;               /* nullable: an id, the encoder's factory */
  gchar *source;                /* nullable: an id, the source's factory */
  guint n_renditions;
  PcrRenditionMetrics renditions[PCR_METRICS_MAX_RENDITIONS];
  gboolean have_estimates;      /* over the viewers with feedback, bit/s */
  guint estimate_min, estimate_median, estimate_max;
  guint dropped;                /* parse: fields left out as bad */
} PcrMetrics;

/* All unknown. */
void pcr_metrics_init (PcrMetrics * metrics);
void pcr_metrics_clear (PcrMetrics * metrics);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (PcrMetrics, pcr_metrics_clear)

/* Reads a metrics payload into @metrics (initialised here). Fails
 * (PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST, one line) only when the
 * payload is over PCR_METRICS_MAX_SIZE, not one JSON object or not of
 * "type" "metrics"; a field of the wrong type or out of range is left
 * unknown and counted in @metrics->dropped, a rendition without a valid,
 * unique name is left out. Unknown fields are ignored. */
gboolean pcr_metrics_parse (const gchar * data, gsize len,
    PcrMetrics * metrics, GError ** error);

/* Serializes the known figures (NUL-terminated, length in @len); fps in
 * 1/8 steps, so it prints exactly. */
gchar *pcr_metrics_to_json (const PcrMetrics * metrics, gsize * len);

/* Highest sdpMLineIndex a remote candidate may name. */
#define PCR_MESSAGE_MAX_MLINE_INDEX 15

typedef enum
{
  PCR_CANDIDATE_USE,            /* hand it to the ICE agent */
  PCR_CANDIDATE_SKIP,           /* an mDNS .local address: drop it quietly */
  PCR_CANDIDATE_INVALID,        /* answer bad-request with the error */
} PcrCandidateVerdict;

/* Judges a viewer's remote ICE candidate line ("candidate:..." with or
 * without "a="), not the empty end-of-candidates one: a single line, an
 * m-line index within PCR_MESSAGE_MAX_MLINE_INDEX, at least foundation,
 * component, transport, priority, address and port. An mDNS address is
 * skipped: resolving it would send multicast. PCR_CANDIDATE_INVALID sets
 * @error (PCR_MESSAGE_ERROR, PCR_ERROR_BAD_REQUEST, one line). */
PcrCandidateVerdict pcr_candidate_check (const gchar * candidate,
    guint sdp_mline_index, GError ** error);

G_END_DECLS
