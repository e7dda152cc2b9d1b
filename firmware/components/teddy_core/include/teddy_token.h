/*
 * Broker logins (docs/protocol.md, "Connect tokens"): a toy's connect token and the service
 * accounts' passwords. Replay and revocation need the broker's state and are not checked here;
 * teddy_token_t carries the nonce the broker remembers.
 *
 *   token = "v1." T "." N "." H
 *   T = Unix seconds, decimal, no leading zeros, at most 11 digits
 *   N = 8 nonce bytes as 16 lowercase hex characters
 *   H = hex(HMAC-SHA256(connect key(id), "teddy/v1/connect\n" id "\n" T "\n" N))
 */
#ifndef TEDDY_TOKEN_H
#define TEDDY_TOKEN_H

#include "teddy_frame.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TEDDY_TOKEN_MAX_LEN 128
#define TEDDY_TOKEN_BUF_SIZE (TEDDY_TOKEN_MAX_LEN + 1)
#define TEDDY_TOKEN_NONCE_SIZE 8
#define TEDDY_TOKEN_MAX_TIMESTAMP_S 99999999999ULL /* 11 digits */
#define TEDDY_TOKEN_LIFETIME_S 300u
#define TEDDY_TOKEN_FUTURE_SKEW_S 60u
#define TEDDY_TOKEN_REPLAY_TTL_S (TEDDY_TOKEN_LIFETIME_S + TEDDY_TOKEN_FUTURE_SKEW_S)

#define TEDDY_SERVICE_PREFIX "svc:"
#define TEDDY_SERVICE_PASSWORD_LEN 64
#define TEDDY_SERVICE_PASSWORD_BUF_SIZE (TEDDY_SERVICE_PASSWORD_LEN + 1)

/* A parsed token (copied out of the password: it is small). */
typedef struct {
    uint64_t timestamp_s;
    uint8_t nonce[TEDDY_TOKEN_NONCE_SIZE];
    uint8_t tag[TEDDY_TAG_SIZE];
} teddy_token_t;

/*
 * Writes the token for `device_id` at `timestamp_s` with an 8-byte random `nonce`.
 * Errors: MALFORMED (device id), INVALID_ARG (timestamp over 11 digits), BUFFER_TOO_SMALL
 * (TEDDY_TOKEN_BUF_SIZE always suffices), CRYPTO.
 */
teddy_err_t teddy_token_make(const uint8_t connect_key[TEDDY_KEY_SIZE], const char *device_id,
                             size_t device_id_len, uint64_t timestamp_s,
                             const uint8_t nonce[TEDDY_TOKEN_NONCE_SIZE], char *out,
                             size_t out_size, size_t *out_len);

/* The token's shape only (no tag check). TEDDY_ERR_MALFORMED for anything but a v1 token. */
teddy_err_t teddy_token_parse(const char *password, size_t password_len, teddy_token_t *token);

/*
 * A device login's stateless checks, in the spec's order: client id equals username
 * (ID_MISMATCH), username is a device id (MALFORMED), token shape (MALFORMED), tag under
 * `connect_key` in constant time (BAD_SIGNATURE), T >= now_s - 300 (EXPIRED),
 * T <= now_s + 60 (FUTURE). `token` may be NULL; on TEDDY_OK it holds the parsed token.
 */
teddy_err_t teddy_token_verify(const uint8_t connect_key[TEDDY_KEY_SIZE], const char *username,
                               size_t username_len, const char *client_id, size_t client_id_len,
                               const char *password, size_t password_len, uint64_t now_s,
                               teddy_token_t *token);

/* As teddy_token_verify(), deriving the connect key from the broker's connect root once the
 * username and the token's shape have passed (so garbage costs no key derivation). */
teddy_err_t teddy_token_verify_with_root(const uint8_t connect_root[TEDDY_KEY_SIZE],
                                         const char *username, size_t username_len,
                                         const char *client_id, size_t client_id_len,
                                         const char *password, size_t password_len,
                                         uint64_t now_s, teddy_token_t *token);

/* True when `username` starts with "svc:": a service login rather than a device login. */
bool teddy_username_is_service(const char *username, size_t username_len);

/* hex(HMAC-SHA256(connect root, "teddy/v1/service\n" || name)) for name "hub" or "api"
 * (UNKNOWN_SERVICE otherwise); BUFFER_TOO_SMALL below TEDDY_SERVICE_PASSWORD_BUF_SIZE. */
teddy_err_t teddy_service_password(const uint8_t connect_root[TEDDY_KEY_SIZE], const char *name,
                                   size_t name_len, char *out, size_t out_size, size_t *out_len);

/* A service login: UNKNOWN_SERVICE unless `username` is "svc:hub" or "svc:api", then
 * BAD_SIGNATURE unless `password` equals its password (constant-time comparison). */
teddy_err_t teddy_service_verify(const uint8_t connect_root[TEDDY_KEY_SIZE],
                                 const char *username, size_t username_len, const char *password,
                                 size_t password_len);

#ifdef __cplusplus
}
#endif

#endif /* TEDDY_TOKEN_H */
