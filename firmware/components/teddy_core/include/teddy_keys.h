/*
 * The key hierarchy (docs/protocol.md, "Keys" and "Key hierarchy"). Every key is 32 bytes of
 * HKDF-SHA256 (RFC 5869) with salt "teddy/v1"; only the info differs:
 *
 *   fleet secret
 *   +-- frame key(id)    info = "teddy/v1/frame-key/" || id
 *   +-- connect root     info = "teddy/v1/connect-root"
 *       +-- connect key(id)   ikm = connect root, info = "teddy/v1/connect-key/" || id
 *
 * A toy holds its frame key and connect key; a broker holds only the connect root.
 */
#ifndef TEDDY_KEYS_H
#define TEDDY_KEYS_H

#include "teddy_frame.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TEDDY_KEY_SALT "teddy/v1"
#define TEDDY_FRAME_KEY_INFO_PREFIX "teddy/v1/frame-key/"
#define TEDDY_CONNECT_ROOT_INFO "teddy/v1/connect-root"
#define TEDDY_CONNECT_KEY_INFO_PREFIX "teddy/v1/connect-key/"

/* HKDF-SHA256 (extract then expand). okm_len at most 255 * 32, else TEDDY_ERR_INVALID_ARG. */
teddy_err_t teddy_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                              size_t ikm_len, const uint8_t *info, size_t info_len, uint8_t *okm,
                              size_t okm_len);

/* A toy's frame key from the fleet secret (its UTF-8 bytes). MALFORMED for a bad device id. */
teddy_err_t teddy_derive_frame_key(const uint8_t *fleet_secret, size_t fleet_secret_len,
                                   const char *device_id, size_t device_id_len,
                                   uint8_t key[TEDDY_KEY_SIZE]);

/* The brokers' connect root from the fleet secret. */
teddy_err_t teddy_derive_connect_root(const uint8_t *fleet_secret, size_t fleet_secret_len,
                                      uint8_t root[TEDDY_KEY_SIZE]);

/* A toy's connect key from the connect root. MALFORMED for a bad device id. */
teddy_err_t teddy_derive_connect_key(const uint8_t root[TEDDY_KEY_SIZE], const char *device_id,
                                     size_t device_id_len, uint8_t key[TEDDY_KEY_SIZE]);

#ifdef __cplusplus
}
#endif

#endif /* TEDDY_KEYS_H */
