/*
 * Topics, frames and the stateless verification steps (docs/protocol.md: "Topics",
 * "Frame layout", "Signature", "Clock", "Verification order").
 */
#ifndef TEDDY_FRAME_H
#define TEDDY_FRAME_H

#include "teddy_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TEDDY_PROTOCOL_VERSION 1
#define TEDDY_KEY_SIZE 32
#define TEDDY_NONCE_SIZE 16
#define TEDDY_TAG_SIZE 32
#define TEDDY_FRAME_HEADER_SIZE 36 /* bytes before the payload, less the device id */
#define TEDDY_FRAME_OVERHEAD 68    /* frame size = overhead + id length + payload length */
#define TEDDY_MAX_PAYLOAD_SIZE 16384
#define TEDDY_MIN_FRAME_SIZE (TEDDY_FRAME_OVERHEAD + TEDDY_DEVICE_ID_MIN_LEN)
#define TEDDY_MAX_FRAME_SIZE \
    (TEDDY_FRAME_OVERHEAD + TEDDY_DEVICE_ID_MAX_LEN + TEDDY_MAX_PAYLOAD_SIZE)
#define TEDDY_MAX_TOPIC_SIZE 255 /* longer topics cannot enter the MAC input: malformed */
#define TEDDY_CLOCK_WINDOW_MS 30000u
#define TEDDY_NONCE_TTL_MS 120000u /* for the receiver's nonce cache; the core keeps none */

#define TEDDY_TOPIC_VERSION "v1"
#define TEDDY_TOPIC_ROOT_MAX_LEN 32
/* The longest topic teddy_topic_build() writes ("<32>/v1/<32>/down/reply_audio"), and a
 * buffer that always holds it with its NUL. */
#define TEDDY_TOPIC_MAX_BUILT_LEN (TEDDY_TOPIC_ROOT_MAX_LEN + 4 + TEDDY_DEVICE_ID_MAX_LEN + 17)
#define TEDDY_TOPIC_BUF_SIZE (TEDDY_TOPIC_MAX_BUILT_LEN + 1)

/* ---- topics: <root>/v1/<device_id>/<up|down>/<kind> ---- */

/* A parsed topic; root and device_id point into the caller's topic (not NUL-terminated). */
typedef struct {
    const char *root;
    size_t root_len;
    const char *device_id;
    size_t device_id_len;
    teddy_direction_t direction;
    uint8_t kind;
} teddy_topic_t;

/*
 * Writes "<root>/v1/<device_id>/<up|down>/<kind>" with the direction of `kind`.
 * Errors: TEDDY_ERR_MALFORMED (device id or kind), TEDDY_ERR_INVALID_ARG (root not 1-32
 * characters of [a-z0-9_-] starting with a letter or digit), TEDDY_ERR_BUFFER_TOO_SMALL.
 */
teddy_err_t teddy_topic_build(const char *root, size_t root_len, const char *device_id,
                              size_t device_id_len, uint8_t kind, char *out, size_t out_size,
                              size_t *out_len);

/* Writes a toy's subscription "<root>/v1/<device_id>/down/+"; errors as teddy_topic_build(). */
teddy_err_t teddy_topic_downlink_filter(const char *root, size_t root_len, const char *device_id,
                                        size_t device_id_len, char *out, size_t out_size,
                                        size_t *out_len);

/*
 * Splits a topic. TEDDY_ERR_MALFORMED unless it has exactly five levels, the second is "v1",
 * the third a valid device id, the fourth "up" or "down" and the fifth a kind travelling that
 * way. The root is not checked (the receiver's subscription selects it, the MAC covers it) and
 * neither is the 255-byte limit: that belongs to the signature step, as in the spec's order.
 */
teddy_err_t teddy_topic_parse(const char *topic, size_t topic_len, teddy_topic_t *out);

/* ---- frames ---- */

/* What a frame carries. For encoding the caller fills it; after parsing, the pointers point
 * into the frame buffer (device_id is not NUL-terminated). */
typedef struct {
    uint8_t kind;
    const char *device_id;
    size_t device_id_len;
    uint64_t timestamp_ms;
    const uint8_t *nonce; /* TEDDY_NONCE_SIZE bytes */
    uint32_t seq;
    const uint8_t *payload;
    size_t payload_len;
} teddy_frame_fields_t;

/* A parsed frame: a zero-copy view into the caller's buffer, valid while that buffer is. */
typedef struct {
    teddy_direction_t direction;
    teddy_frame_fields_t fields;
    const uint8_t *signed_data; /* every byte before the tag */
    size_t signed_len;
    const uint8_t *tag; /* TEDDY_TAG_SIZE bytes */
} teddy_frame_view_t;

/* TEDDY_FRAME_OVERHEAD + device_id_len + payload_len (saturates at SIZE_MAX). */
size_t teddy_frame_size(size_t device_id_len, size_t payload_len);

/* Where the payload starts in a frame: to fill it in place before teddy_frame_encode(). */
size_t teddy_frame_payload_offset(size_t device_id_len);

/*
 * Builds and signs one frame for `topic` into `out`; the direction follows from the kind.
 * Nothing a receiver would reject for its layout or topic leaves here: the topic must parse and
 * name this frame's device id, kind and direction.
 * `fields->payload` may already sit at out + teddy_frame_payload_offset() (no copy is needed
 * then) or anywhere else in `out`; the other inputs must not overlap `out`.
 * Errors: TEDDY_ERR_MALFORMED (device id, kind, topic shape or a topic over 255 bytes),
 * TEDDY_ERR_TOPIC_MISMATCH, TEDDY_ERR_OVERSIZED (payload), TEDDY_ERR_BUFFER_TOO_SMALL,
 * TEDDY_ERR_INVALID_ARG, TEDDY_ERR_CRYPTO.
 */
teddy_err_t teddy_frame_encode(const uint8_t key[TEDDY_KEY_SIZE], const char *topic,
                               size_t topic_len, const teddy_frame_fields_t *fields,
                               uint8_t *out, size_t out_size, size_t *out_len);

/*
 * Step 1: splits a frame without checking its tag. TEDDY_ERR_MALFORMED for any breach of the
 * parsing rules; the payload length is not capped here (the size rule is step 3).
 */
teddy_err_t teddy_frame_parse(const uint8_t *frame, size_t frame_len, teddy_frame_view_t *view);

/*
 * Steps 1-3: parse, topic match (device id, kind, and `direction`, the receiver's), size.
 * Needs no key, so a receiver looking keys up by device id (the hub) derives one only for a
 * frame that passed these steps. Errors: MALFORMED, TOPIC_MISMATCH, OVERSIZED, INVALID_ARG.
 */
teddy_err_t teddy_frame_verify_begin(const char *topic, size_t topic_len, const uint8_t *frame,
                                     size_t frame_len, teddy_direction_t direction,
                                     teddy_frame_view_t *view);

/*
 * Steps 4-5 on a view from teddy_frame_verify_begin(), with the same topic: the tag over
 * `topic` under `key`, compared in constant time, then the clock window around `now_ms`
 * (Unix ms).
 * Errors: MALFORMED (topic over 255 bytes), BAD_SIGNATURE, STALE, FUTURE, INVALID_ARG, CRYPTO.
 */
teddy_err_t teddy_frame_verify_finish(const teddy_frame_view_t *view, const char *topic,
                                      size_t topic_len, const uint8_t key[TEDDY_KEY_SIZE],
                                      uint64_t now_ms);

/* Steps 1-5 with a known key (a toy verifying its downlinks). On TEDDY_OK `view` holds the
 * frame; on any error its content is unspecified. */
teddy_err_t teddy_frame_verify(const char *topic, size_t topic_len, const uint8_t *frame,
                               size_t frame_len, teddy_direction_t direction,
                               const uint8_t key[TEDDY_KEY_SIZE], uint64_t now_ms,
                               teddy_frame_view_t *view);

/* tag = HMAC-SHA256(key, u16be(topic_len) || topic || signed_data). MALFORMED for a topic over
 * 255 bytes. */
teddy_err_t teddy_frame_tag(const uint8_t key[TEDDY_KEY_SIZE], const char *topic,
                            size_t topic_len, const uint8_t *signed_data, size_t signed_len,
                            uint8_t tag[TEDDY_TAG_SIZE]);

/* Step 5: STALE if timestamp_ms < now_ms - window, FUTURE if timestamp_ms > now_ms + window,
 * accepted at both edges; no unsigned wrap-around near 0 or UINT64_MAX. */
teddy_err_t teddy_clock_check(uint64_t timestamp_ms, uint64_t now_ms);

#ifdef __cplusplus
}
#endif

#endif /* TEDDY_FRAME_H */
