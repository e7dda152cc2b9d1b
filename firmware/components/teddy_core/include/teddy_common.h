/*
 * Teddy protocol core: errors, kinds, directions and device ids (docs/protocol.md).
 *
 * Conventions of the whole core:
 * - Every operation that can fail returns teddy_err_t and writes its results through pointers;
 *   only total lookups (names, sizes) return their value directly.
 * - Byte strings are (pointer, length) pairs; a pointer may be NULL only when its length is 0.
 *   Text outputs are NUL-terminated and their length excludes the NUL.
 * - Buffers belong to the caller; the core never allocates and keeps no state between calls.
 * - Clock and randomness come in as arguments (now_ms, now_s, nonces): see teddy_port.h.
 */
#ifndef TEDDY_COMMON_H
#define TEDDY_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * One error enum for the whole core. The protocol's rejection reasons map 1:1 onto codes
 * (teddy_err_reason() returns the reason string used by logs and metrics); the last three codes
 * are the caller's mistakes or a crypto back-end failure, never a verdict on received data.
 */
typedef enum {
    TEDDY_OK = 0,
    /* frame rejections ("Rejections"); malformed, bad_signature and future also refuse tokens */
    TEDDY_ERR_MALFORMED,
    TEDDY_ERR_TOPIC_MISMATCH,
    TEDDY_ERR_OVERSIZED,
    TEDDY_ERR_BAD_SIGNATURE,
    TEDDY_ERR_STALE,
    TEDDY_ERR_FUTURE,
    /* connect refusals ("Connect tokens") */
    TEDDY_ERR_ID_MISMATCH,
    TEDDY_ERR_EXPIRED,
    TEDDY_ERR_UNKNOWN_SERVICE,
    /* stateful verdicts: never returned by the core, reserved for the firmware's nonce cache
     * and the broker's replay, revocation and anonymous checks so they share this enum */
    TEDDY_ERR_REPLAY,
    TEDDY_ERR_REVOKED,
    TEDDY_ERR_ANONYMOUS,
    /* not verdicts */
    TEDDY_ERR_BUFFER_TOO_SMALL,
    TEDDY_ERR_INVALID_ARG,
    TEDDY_ERR_CRYPTO
} teddy_err_t;

/* The protocol's reason string ("malformed", "bad_signature", ...), "ok" for TEDDY_OK,
 * "buffer_too_small", "invalid_argument" or "crypto_failure" for the others, and "unknown"
 * for a value outside the enum. */
const char *teddy_err_reason(teddy_err_t err);

/* Bit 0 of the flags byte; also the fourth topic level. */
typedef enum {
    TEDDY_DIR_UP = 0,
    TEDDY_DIR_DOWN = 1
} teddy_direction_t;

/* Wire codes ("Kinds"). Codes below 0x80 travel up, codes from 0x80 travel down. */
typedef enum {
    TEDDY_KIND_PING = 0x01,
    TEDDY_KIND_HELLO = 0x02,
    TEDDY_KIND_PAIR_REQUEST = 0x03,
    TEDDY_KIND_LISTEN_START = 0x10,
    TEDDY_KIND_AUDIO = 0x11,
    TEDDY_KIND_LISTEN_END = 0x12,
    TEDDY_KIND_TEXT = 0x13,
    TEDDY_KIND_ABORT = 0x14,
    TEDDY_KIND_PONG = 0x81,
    TEDDY_KIND_CONFIG = 0x82,
    TEDDY_KIND_PAIR_CODE = 0x83,
    TEDDY_KIND_UNPAIRED = 0x84,
    TEDDY_KIND_REPLY_TEXT = 0x90,
    TEDDY_KIND_REPLY_AUDIO = 0x91,
    TEDDY_KIND_REPLY_END = 0x92,
    TEDDY_KIND_ERROR = 0x9f
} teddy_kind_t;

#define TEDDY_KIND_COUNT 16
#define TEDDY_KIND_NAME_MAX_LEN 12 /* "pair_request", "listen_start" */

/* The kind's topic name, or NULL for a code outside the table. */
const char *teddy_kind_name(uint8_t code);

/* TEDDY_OK when `code` is in the kinds table, else TEDDY_ERR_MALFORMED. */
teddy_err_t teddy_kind_check(uint8_t code);

/* The kind whose topic name is exactly `name` (case-sensitive), else TEDDY_ERR_MALFORMED. */
teddy_err_t teddy_kind_from_name(const char *name, size_t name_len, uint8_t *code);

/* Bit 7 of the code: the only direction the kind may travel. */
teddy_direction_t teddy_kind_direction(uint8_t code);

/* The code of the i-th kind of the table; TEDDY_ERR_INVALID_ARG once i >= TEDDY_KIND_COUNT. */
teddy_err_t teddy_kind_at(size_t index, uint8_t *code);

#define TEDDY_DEVICE_ID_MIN_LEN 3
#define TEDDY_DEVICE_ID_MAX_LEN 32
#define TEDDY_DEVICE_ID_BUF_SIZE (TEDDY_DEVICE_ID_MAX_LEN + 1)

/* TEDDY_OK when `id` matches [a-z0-9][a-z0-9_-]{2,31} (ASCII only), else TEDDY_ERR_MALFORMED. */
teddy_err_t teddy_device_id_check(const char *id, size_t id_len);

#ifdef __cplusplus
}
#endif

#endif /* TEDDY_COMMON_H */
