/* Error names, the kinds table, device ids, and the small byte helpers of teddy_internal.h. */
#include <string.h>

#include "teddy_internal.h"

const char *teddy_err_reason(teddy_err_t err)
{
    switch (err) {
    case TEDDY_OK:
        return "ok";
    case TEDDY_ERR_MALFORMED:
        return "malformed";
    case TEDDY_ERR_TOPIC_MISMATCH:
        return "topic_mismatch";
    case TEDDY_ERR_OVERSIZED:
        return "oversized";
    case TEDDY_ERR_BAD_SIGNATURE:
        return "bad_signature";
    case TEDDY_ERR_STALE:
        return "stale";
    case TEDDY_ERR_FUTURE:
        return "future";
    case TEDDY_ERR_ID_MISMATCH:
        return "id_mismatch";
    case TEDDY_ERR_EXPIRED:
        return "expired";
    case TEDDY_ERR_UNKNOWN_SERVICE:
        return "unknown_service";
    case TEDDY_ERR_REPLAY:
        return "replay";
    case TEDDY_ERR_REVOKED:
        return "revoked";
    case TEDDY_ERR_ANONYMOUS:
        return "anonymous";
    case TEDDY_ERR_BUFFER_TOO_SMALL:
        return "buffer_too_small";
    case TEDDY_ERR_INVALID_ARG:
        return "invalid_argument";
    case TEDDY_ERR_CRYPTO:
        return "crypto_failure";
    }
    return "unknown";
}

/* ---- kinds ---- */

typedef struct {
    uint8_t code;
    const char *name;
} teddy_kind_entry_t;

static const teddy_kind_entry_t kinds[TEDDY_KIND_COUNT] = {
    {TEDDY_KIND_PING, "ping"},
    {TEDDY_KIND_HELLO, "hello"},
    {TEDDY_KIND_PAIR_REQUEST, "pair_request"},
    {TEDDY_KIND_LISTEN_START, "listen_start"},
    {TEDDY_KIND_AUDIO, "audio"},
    {TEDDY_KIND_LISTEN_END, "listen_end"},
    {TEDDY_KIND_TEXT, "text"},
    {TEDDY_KIND_ABORT, "abort"},
    {TEDDY_KIND_PONG, "pong"},
    {TEDDY_KIND_CONFIG, "config"},
    {TEDDY_KIND_PAIR_CODE, "pair_code"},
    {TEDDY_KIND_UNPAIRED, "unpaired"},
    {TEDDY_KIND_REPLY_TEXT, "reply_text"},
    {TEDDY_KIND_REPLY_AUDIO, "reply_audio"},
    {TEDDY_KIND_REPLY_END, "reply_end"},
    {TEDDY_KIND_ERROR, "error"},
};

const char *teddy_kind_name(uint8_t code)
{
    size_t i;
    for (i = 0; i < TEDDY_KIND_COUNT; i++) {
        if (kinds[i].code == code) {
            return kinds[i].name;
        }
    }
    return NULL;
}

teddy_err_t teddy_kind_check(uint8_t code)
{
    return teddy_kind_name(code) != NULL ? TEDDY_OK : TEDDY_ERR_MALFORMED;
}

teddy_err_t teddy_kind_from_name(const char *name, size_t name_len, uint8_t *code)
{
    size_t i;
    if (!TEDDY_SPAN_OK(name, name_len) || code == NULL) {
        return TEDDY_ERR_INVALID_ARG;
    }
    for (i = 0; i < TEDDY_KIND_COUNT; i++) {
        if (strlen(kinds[i].name) == name_len && memcmp(kinds[i].name, name, name_len) == 0) {
            *code = kinds[i].code;
            return TEDDY_OK;
        }
    }
    return TEDDY_ERR_MALFORMED;
}

teddy_direction_t teddy_kind_direction(uint8_t code)
{
    return (code & 0x80u) != 0 ? TEDDY_DIR_DOWN : TEDDY_DIR_UP;
}

teddy_err_t teddy_kind_at(size_t index, uint8_t *code)
{
    if (index >= TEDDY_KIND_COUNT || code == NULL) {
        return TEDDY_ERR_INVALID_ARG;
    }
    *code = kinds[index].code;
    return TEDDY_OK;
}

/* ---- device ids: [a-z0-9][a-z0-9_-]{2,31}, compared as bytes so no locale applies ---- */

static bool id_first_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool id_char(unsigned char c)
{
    return id_first_char(c) || c == '_' || c == '-';
}

teddy_err_t teddy_device_id_check(const char *id, size_t id_len)
{
    size_t i;
    if (!TEDDY_SPAN_OK(id, id_len)) {
        return TEDDY_ERR_INVALID_ARG;
    }
    if (id_len < TEDDY_DEVICE_ID_MIN_LEN || id_len > TEDDY_DEVICE_ID_MAX_LEN ||
        !id_first_char((unsigned char)id[0])) {
        return TEDDY_ERR_MALFORMED;
    }
    for (i = 1; i < id_len; i++) {
        if (!id_char((unsigned char)id[i])) {
            return TEDDY_ERR_MALFORMED;
        }
    }
    return TEDDY_OK;
}

/* ---- byte helpers ---- */

void teddy_write_bytes(teddy_writer_t *w, const void *src, size_t n)
{
    uint8_t *p = teddy_write_reserve(w, n);
    if (p != NULL && n > 0) {
        memmove(p, src, n);
    }
}

bool teddy_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = (const volatile uint8_t *)a;
    const volatile uint8_t *y = (const volatile uint8_t *)b;
    uint8_t diff = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        diff |= (uint8_t)(x[i] ^ y[i]);
    }
    return diff == 0;
}

static const char hex_digits[] = "0123456789abcdef";

void teddy_hex_encode(const uint8_t *bytes, size_t n, char *out)
{
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = hex_digits[bytes[i] >> 4];
        out[2 * i + 1] = hex_digits[bytes[i] & 0x0fu];
    }
}

static int hex_value_lower(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

bool teddy_hex_decode_lower(const char *hex, size_t n, uint8_t *out)
{
    size_t i;
    for (i = 0; i < n; i++) {
        int high = hex_value_lower(hex[2 * i]);
        int low = hex_value_lower(hex[2 * i + 1]);
        if (high < 0 || low < 0) {
            return false;
        }
        out[i] = (uint8_t)((high << 4) | low);
    }
    return true;
}
