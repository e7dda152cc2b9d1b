/* Connect tokens and service passwords (docs/protocol.md, "Connect tokens"). */
#include <string.h>

#include "teddy_internal.h"

#define TOKEN_PREFIX "v1."
#define TOKEN_DOMAIN "teddy/v1/connect\n"
#define SERVICE_DOMAIN "teddy/v1/service\n"
#define TIMESTAMP_MAX_DIGITS 11
#define NONCE_HEX_LEN (2 * TEDDY_TOKEN_NONCE_SIZE)
#define TAG_HEX_LEN (2 * TEDDY_TAG_SIZE)
#define SERVICE_PREFIX_LEN (sizeof TEDDY_SERVICE_PREFIX - 1)

static const char *const service_names[] = {"hub", "api"};

/* Decimal digits of v without leading zeros ("0" for 0); returns their count. */
static size_t format_decimal(uint64_t v, char out[20])
{
    char reversed[20];
    size_t n = 0;
    size_t i;
    do {
        reversed[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0 && n < sizeof reversed);
    for (i = 0; i < n; i++) {
        out[i] = reversed[n - 1 - i];
    }
    return n;
}

/* HMAC-SHA256(key, "teddy/v1/connect\n" id "\n" T "\n" N), with T and N in their token form,
 * which the parser only accepts in canonical spelling, so rebuilding them here is exact. */
static teddy_err_t token_tag(const uint8_t key[TEDDY_KEY_SIZE], const char *device_id,
                             size_t device_id_len, uint64_t timestamp_s,
                             const uint8_t nonce[TEDDY_TOKEN_NONCE_SIZE],
                             uint8_t tag[TEDDY_TAG_SIZE])
{
    char digits[20];
    char nonce_hex[NONCE_HEX_LEN];
    teddy_part_t parts[6];
    size_t digit_count = format_decimal(timestamp_s, digits);
    teddy_hex_encode(nonce, TEDDY_TOKEN_NONCE_SIZE, nonce_hex);
    parts[0].data = TOKEN_DOMAIN;
    parts[0].len = sizeof TOKEN_DOMAIN - 1;
    parts[1].data = device_id;
    parts[1].len = device_id_len;
    parts[2].data = "\n";
    parts[2].len = 1;
    parts[3].data = digits;
    parts[3].len = digit_count;
    parts[4].data = "\n";
    parts[4].len = 1;
    parts[5].data = nonce_hex;
    parts[5].len = sizeof nonce_hex;
    return teddy_hmac_sha256(key, TEDDY_KEY_SIZE, parts, 6, tag);
}

teddy_err_t teddy_token_make(const uint8_t connect_key[TEDDY_KEY_SIZE], const char *device_id,
                             size_t device_id_len, uint64_t timestamp_s,
                             const uint8_t nonce[TEDDY_TOKEN_NONCE_SIZE], char *out,
                             size_t out_size, size_t *out_len)
{
    uint8_t tag[TEDDY_TAG_SIZE];
    char digits[20];
    size_t digit_count;
    size_t len;
    size_t pos = 0;
    teddy_err_t status;

    if (connect_key == NULL || nonce == NULL || out == NULL || out_len == NULL) {
        return TEDDY_ERR_INVALID_ARG;
    }
    status = teddy_device_id_check(device_id, device_id_len);
    if (status != TEDDY_OK) {
        return status;
    }
    if (timestamp_s > TEDDY_TOKEN_MAX_TIMESTAMP_S) {
        return TEDDY_ERR_INVALID_ARG;
    }
    digit_count = format_decimal(timestamp_s, digits);
    len = (sizeof TOKEN_PREFIX - 1) + digit_count + 1 + NONCE_HEX_LEN + 1 + TAG_HEX_LEN;
    if (out_size < len + 1) {
        return TEDDY_ERR_BUFFER_TOO_SMALL;
    }
    status = token_tag(connect_key, device_id, device_id_len, timestamp_s, nonce, tag);
    if (status != TEDDY_OK) {
        return status;
    }
    memcpy(out, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1);
    pos += sizeof TOKEN_PREFIX - 1;
    memcpy(out + pos, digits, digit_count);
    pos += digit_count;
    out[pos++] = '.';
    teddy_hex_encode(nonce, TEDDY_TOKEN_NONCE_SIZE, out + pos);
    pos += NONCE_HEX_LEN;
    out[pos++] = '.';
    teddy_hex_encode(tag, TEDDY_TAG_SIZE, out + pos);
    pos += TAG_HEX_LEN;
    out[pos] = '\0';
    *out_len = pos;
    return TEDDY_OK;
}

/* Bounded cursor over the password's characters. */
typedef struct {
    const char *s;
    size_t len;
    size_t pos;
} text_cursor_t;

static bool take_literal(text_cursor_t *c, const char *literal, size_t n)
{
    if (n > c->len - c->pos || memcmp(c->s + c->pos, literal, n) != 0) {
        return false;
    }
    c->pos += n;
    return true;
}

static bool take_hex(text_cursor_t *c, size_t byte_count, uint8_t *out)
{
    if (2 * byte_count > c->len - c->pos ||
        !teddy_hex_decode_lower(c->s + c->pos, byte_count, out)) {
        return false;
    }
    c->pos += 2 * byte_count;
    return true;
}

/* "0" or [1-9][0-9]{0,10}, up to the next '.' */
static bool take_timestamp(text_cursor_t *c, uint64_t *value)
{
    size_t start = c->pos;
    uint64_t v = 0;
    while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9') {
        if (c->pos - start == TIMESTAMP_MAX_DIGITS) {
            return false;
        }
        v = v * 10u + (uint64_t)(c->s[c->pos] - '0');
        c->pos++;
    }
    if (c->pos == start || (c->s[start] == '0' && c->pos - start > 1)) {
        return false;
    }
    *value = v;
    return true;
}

teddy_err_t teddy_token_parse(const char *password, size_t password_len, teddy_token_t *token)
{
    text_cursor_t c;
    teddy_token_t parsed;
    if (!TEDDY_SPAN_OK(password, password_len) || token == NULL) {
        return TEDDY_ERR_INVALID_ARG;
    }
    if (password_len > TEDDY_TOKEN_MAX_LEN) {
        return TEDDY_ERR_MALFORMED;
    }
    c.s = password;
    c.len = password_len;
    c.pos = 0;
    if (!take_literal(&c, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1) ||
        !take_timestamp(&c, &parsed.timestamp_s) || !take_literal(&c, ".", 1) ||
        !take_hex(&c, TEDDY_TOKEN_NONCE_SIZE, parsed.nonce) || !take_literal(&c, ".", 1) ||
        !take_hex(&c, TEDDY_TAG_SIZE, parsed.tag) || c.pos != c.len) {
        return TEDDY_ERR_MALFORMED;
    }
    *token = parsed;
    return TEDDY_OK;
}

/* The checks of a device login; `root` set means `key` must first be derived from it. */
static teddy_err_t verify_login(const uint8_t *key, const uint8_t *root, const char *username,
                                size_t username_len, const char *client_id, size_t client_id_len,
                                const char *password, size_t password_len, uint64_t now_s,
                                teddy_token_t *token)
{
    teddy_token_t parsed;
    uint8_t derived[TEDDY_KEY_SIZE];
    uint8_t expected[TEDDY_TAG_SIZE];
    teddy_err_t status;
    bool equal;

    if ((key == NULL && root == NULL) || !TEDDY_SPAN_OK(username, username_len) ||
        !TEDDY_SPAN_OK(client_id, client_id_len) || !TEDDY_SPAN_OK(password, password_len)) {
        return TEDDY_ERR_INVALID_ARG;
    }
    if (client_id_len != username_len ||
        (username_len > 0 && memcmp(client_id, username, username_len) != 0)) {
        return TEDDY_ERR_ID_MISMATCH;
    }
    status = teddy_device_id_check(username, username_len);
    if (status != TEDDY_OK) {
        return status;
    }
    status = teddy_token_parse(password, password_len, &parsed);
    if (status != TEDDY_OK) {
        return status;
    }
    if (root != NULL) {
        status = teddy_derive_connect_key(root, username, username_len, derived);
        if (status != TEDDY_OK) {
            return status;
        }
        key = derived;
    }
    status = token_tag(key, username, username_len, parsed.timestamp_s, parsed.nonce, expected);
    if (root != NULL) {
        teddy_wipe(derived, sizeof derived);
    }
    if (status != TEDDY_OK) {
        return status;
    }
    equal = teddy_ct_equal(expected, parsed.tag, TEDDY_TAG_SIZE);
    teddy_wipe(expected, sizeof expected);
    if (!equal) {
        return TEDDY_ERR_BAD_SIGNATURE;
    }
    /* T >= now - lifetime and T <= now + skew, without wrapping */
    if (now_s >= TEDDY_TOKEN_LIFETIME_S && parsed.timestamp_s < now_s - TEDDY_TOKEN_LIFETIME_S) {
        return TEDDY_ERR_EXPIRED;
    }
    if (now_s <= UINT64_MAX - TEDDY_TOKEN_FUTURE_SKEW_S &&
        parsed.timestamp_s > now_s + TEDDY_TOKEN_FUTURE_SKEW_S) {
        return TEDDY_ERR_FUTURE;
    }
    if (token != NULL) {
        *token = parsed;
    }
    return TEDDY_OK;
}

teddy_err_t teddy_token_verify(const uint8_t connect_key[TEDDY_KEY_SIZE], const char *username,
                               size_t username_len, const char *client_id, size_t client_id_len,
                               const char *password, size_t password_len, uint64_t now_s,
                               teddy_token_t *token)
{
    if (connect_key == NULL) {
        return TEDDY_ERR_INVALID_ARG;
    }
    return verify_login(connect_key, NULL, username, username_len, client_id, client_id_len,
                        password, password_len, now_s, token);
}

teddy_err_t teddy_token_verify_with_root(const uint8_t connect_root[TEDDY_KEY_SIZE],
                                         const char *username, size_t username_len,
                                         const char *client_id, size_t client_id_len,
                                         const char *password, size_t password_len,
                                         uint64_t now_s, teddy_token_t *token)
{
    if (connect_root == NULL) {
        return TEDDY_ERR_INVALID_ARG;
    }
    return verify_login(NULL, connect_root, username, username_len, client_id, client_id_len,
                        password, password_len, now_s, token);
}

/* ---- service accounts ---- */

bool teddy_username_is_service(const char *username, size_t username_len)
{
    return username != NULL && username_len >= SERVICE_PREFIX_LEN &&
           memcmp(username, TEDDY_SERVICE_PREFIX, SERVICE_PREFIX_LEN) == 0;
}

static bool known_service(const char *name, size_t name_len)
{
    size_t i;
    for (i = 0; i < sizeof service_names / sizeof service_names[0]; i++) {
        if (strlen(service_names[i]) == name_len &&
            memcmp(service_names[i], name, name_len) == 0) {
            return true;
        }
    }
    return false;
}

/* hex(HMAC-SHA256(root, "teddy/v1/service\n" || name)) into 64 characters, no NUL. */
static teddy_err_t service_password_hex(const uint8_t root[TEDDY_KEY_SIZE], const char *name,
                                        size_t name_len, char hex[TEDDY_SERVICE_PASSWORD_LEN])
{
    uint8_t mac[TEDDY_TAG_SIZE];
    teddy_part_t parts[2];
    teddy_err_t status;
    parts[0].data = SERVICE_DOMAIN;
    parts[0].len = sizeof SERVICE_DOMAIN - 1;
    parts[1].data = name;
    parts[1].len = name_len;
    status = teddy_hmac_sha256(root, TEDDY_KEY_SIZE, parts, 2, mac);
    if (status == TEDDY_OK) {
        teddy_hex_encode(mac, sizeof mac, hex);
    }
    teddy_wipe(mac, sizeof mac);
    return status;
}

teddy_err_t teddy_service_password(const uint8_t connect_root[TEDDY_KEY_SIZE], const char *name,
                                   size_t name_len, char *out, size_t out_size, size_t *out_len)
{
    teddy_err_t status;
    if (connect_root == NULL || !TEDDY_SPAN_OK(name, name_len) || out == NULL ||
        out_len == NULL) {
        return TEDDY_ERR_INVALID_ARG;
    }
    if (!known_service(name, name_len)) {
        return TEDDY_ERR_UNKNOWN_SERVICE;
    }
    if (out_size < TEDDY_SERVICE_PASSWORD_BUF_SIZE) {
        return TEDDY_ERR_BUFFER_TOO_SMALL;
    }
    status = service_password_hex(connect_root, name, name_len, out);
    if (status != TEDDY_OK) {
        return status;
    }
    out[TEDDY_SERVICE_PASSWORD_LEN] = '\0';
    *out_len = TEDDY_SERVICE_PASSWORD_LEN;
    return TEDDY_OK;
}

teddy_err_t teddy_service_verify(const uint8_t connect_root[TEDDY_KEY_SIZE],
                                 const char *username, size_t username_len, const char *password,
                                 size_t password_len)
{
    char expected[TEDDY_SERVICE_PASSWORD_LEN];
    teddy_err_t status;
    bool equal;
    if (connect_root == NULL || !TEDDY_SPAN_OK(username, username_len) ||
        !TEDDY_SPAN_OK(password, password_len)) {
        return TEDDY_ERR_INVALID_ARG;
    }
    if (!teddy_username_is_service(username, username_len) ||
        !known_service(username + SERVICE_PREFIX_LEN, username_len - SERVICE_PREFIX_LEN)) {
        return TEDDY_ERR_UNKNOWN_SERVICE;
    }
    status = service_password_hex(connect_root, username + SERVICE_PREFIX_LEN,
                                  username_len - SERVICE_PREFIX_LEN, expected);
    if (status != TEDDY_OK) {
        return status;
    }
    /* the length is public; the content is compared in constant time */
    equal = password_len == TEDDY_SERVICE_PASSWORD_LEN &&
            teddy_ct_equal(expected, password, TEDDY_SERVICE_PASSWORD_LEN);
    teddy_wipe(expected, sizeof expected);
    return equal ? TEDDY_OK : TEDDY_ERR_BAD_SIGNATURE;
}
