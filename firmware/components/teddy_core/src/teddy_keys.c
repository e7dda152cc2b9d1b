/*
 * HMAC-SHA256 and HKDF-SHA256 on mbedTLS, and the key hierarchy on top of them.
 *
 * Only the generic message-digest API is used (mbedtls_md_setup / mbedtls_md_hmac_starts /
 * _update / _finish / mbedtls_md_free, mbedtls_platform_zeroize), which has the same signatures
 * in mbedTLS 2.28 and 3.x. HKDF is written here on top of HMAC (RFC 5869, section 2) rather
 * than taken from mbedtls/hkdf.h, because ESP-IDF builds mbedTLS without MBEDTLS_HKDF_C unless
 * CONFIG_MBEDTLS_HKDF_C is set.
 */
#include <string.h>

#include "mbedtls/md.h"
#include "mbedtls/platform_util.h"

#include "teddy_internal.h"

#define SHA256_SIZE 32
#define HKDF_MAX_OUTPUT (255 * SHA256_SIZE)

void teddy_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0) {
        mbedtls_platform_zeroize(p, n);
    }
}

static teddy_err_t hmac_begin(mbedtls_md_context_t *ctx, const uint8_t *key, size_t key_len)
{
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    mbedtls_md_init(ctx);
    if (info == NULL || mbedtls_md_setup(ctx, info, 1) != 0 ||
        mbedtls_md_hmac_starts(ctx, key, key_len) != 0) {
        mbedtls_md_free(ctx);
        return TEDDY_ERR_CRYPTO;
    }
    return TEDDY_OK;
}

static teddy_err_t hmac_update(mbedtls_md_context_t *ctx, const void *data, size_t len)
{
    if (len == 0) {
        return TEDDY_OK; /* nothing to hash; data may be NULL */
    }
    return mbedtls_md_hmac_update(ctx, (const unsigned char *)data, len) == 0 ? TEDDY_OK
                                                                             : TEDDY_ERR_CRYPTO;
}

/* Finishes and frees the context (mbedtls_md_free wipes it) whatever happened before. */
static teddy_err_t hmac_end(mbedtls_md_context_t *ctx, teddy_err_t status, uint8_t mac[SHA256_SIZE])
{
    if (status == TEDDY_OK && mbedtls_md_hmac_finish(ctx, mac) != 0) {
        status = TEDDY_ERR_CRYPTO;
    }
    mbedtls_md_free(ctx);
    return status;
}

teddy_err_t teddy_hmac_sha256(const uint8_t *key, size_t key_len, const teddy_part_t *parts,
                              size_t part_count, uint8_t mac[SHA256_SIZE])
{
    mbedtls_md_context_t ctx;
    teddy_err_t status;
    size_t i;
    if (!TEDDY_SPAN_OK(key, key_len) || !TEDDY_SPAN_OK(parts, part_count) || mac == NULL) {
        return TEDDY_ERR_INVALID_ARG;
    }
    for (i = 0; i < part_count; i++) {
        if (!TEDDY_SPAN_OK(parts[i].data, parts[i].len)) {
            return TEDDY_ERR_INVALID_ARG;
        }
    }
    status = hmac_begin(&ctx, key, key_len);
    if (status != TEDDY_OK) {
        return status;
    }
    for (i = 0; i < part_count && status == TEDDY_OK; i++) {
        status = hmac_update(&ctx, parts[i].data, parts[i].len);
    }
    return hmac_end(&ctx, status, mac);
}

teddy_err_t teddy_hkdf_parts(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                             size_t ikm_len, const teddy_part_t *info, size_t info_count,
                             uint8_t *okm, size_t okm_len)
{
    /* RFC 5869: an absent salt is HashLen zero bytes (the same HMAC key as an empty one). */
    static const uint8_t zero_salt[SHA256_SIZE] = {0};
    uint8_t prk[SHA256_SIZE];
    uint8_t block[SHA256_SIZE];
    teddy_part_t extract_input;
    teddy_err_t status;
    size_t done = 0;
    size_t i;
    uint8_t counter = 0;

    if (!TEDDY_SPAN_OK(salt, salt_len) || !TEDDY_SPAN_OK(ikm, ikm_len) ||
        !TEDDY_SPAN_OK(info, info_count) || !TEDDY_SPAN_OK(okm, okm_len) ||
        okm_len > HKDF_MAX_OUTPUT) {
        return TEDDY_ERR_INVALID_ARG;
    }
    for (i = 0; i < info_count; i++) {
        if (!TEDDY_SPAN_OK(info[i].data, info[i].len)) {
            return TEDDY_ERR_INVALID_ARG;
        }
    }
    if (salt_len == 0) {
        salt = zero_salt;
        salt_len = sizeof zero_salt;
    }

    /* extract: PRK = HMAC(salt, IKM) */
    extract_input.data = ikm;
    extract_input.len = ikm_len;
    status = teddy_hmac_sha256(salt, salt_len, &extract_input, 1, prk);

    /* expand: T(n) = HMAC(PRK, T(n-1) || info || n), OKM = first okm_len bytes of T(1) T(2) ... */
    while (status == TEDDY_OK && done < okm_len) {
        mbedtls_md_context_t ctx;
        size_t take;
        counter++;
        status = hmac_begin(&ctx, prk, sizeof prk);
        if (status != TEDDY_OK) {
            break;
        }
        if (counter > 1) {
            status = hmac_update(&ctx, block, sizeof block);
        }
        for (i = 0; i < info_count && status == TEDDY_OK; i++) {
            status = hmac_update(&ctx, info[i].data, info[i].len);
        }
        if (status == TEDDY_OK) {
            status = hmac_update(&ctx, &counter, 1);
        }
        status = hmac_end(&ctx, status, block);
        if (status == TEDDY_OK) {
            take = okm_len - done < sizeof block ? okm_len - done : sizeof block;
            memcpy(okm + done, block, take);
            done += take;
        }
    }

    teddy_wipe(prk, sizeof prk);
    teddy_wipe(block, sizeof block);
    if (status != TEDDY_OK) {
        teddy_wipe(okm, okm_len);
    }
    return status;
}

teddy_err_t teddy_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                              size_t ikm_len, const uint8_t *info, size_t info_len, uint8_t *okm,
                              size_t okm_len)
{
    teddy_part_t part;
    part.data = info;
    part.len = info_len;
    return teddy_hkdf_parts(salt, salt_len, ikm, ikm_len, &part, 1, okm, okm_len);
}

/* HKDF with the protocol's salt and info = label || device id (the id may be empty). */
static teddy_err_t derive(const uint8_t *ikm, size_t ikm_len, const char *label,
                          const char *device_id, size_t device_id_len,
                          uint8_t key[TEDDY_KEY_SIZE])
{
    teddy_part_t info[2];
    info[0].data = label;
    info[0].len = strlen(label);
    info[1].data = device_id;
    info[1].len = device_id_len;
    return teddy_hkdf_parts((const uint8_t *)TEDDY_KEY_SALT, strlen(TEDDY_KEY_SALT), ikm, ikm_len,
                            info, 2, key, TEDDY_KEY_SIZE);
}

teddy_err_t teddy_derive_frame_key(const uint8_t *fleet_secret, size_t fleet_secret_len,
                                   const char *device_id, size_t device_id_len,
                                   uint8_t key[TEDDY_KEY_SIZE])
{
    teddy_err_t status;
    if (!TEDDY_SPAN_OK(fleet_secret, fleet_secret_len) || key == NULL) {
        return TEDDY_ERR_INVALID_ARG;
    }
    status = teddy_device_id_check(device_id, device_id_len);
    if (status != TEDDY_OK) {
        return status;
    }
    return derive(fleet_secret, fleet_secret_len, TEDDY_FRAME_KEY_INFO_PREFIX, device_id,
                  device_id_len, key);
}

teddy_err_t teddy_derive_connect_root(const uint8_t *fleet_secret, size_t fleet_secret_len,
                                      uint8_t root[TEDDY_KEY_SIZE])
{
    if (!TEDDY_SPAN_OK(fleet_secret, fleet_secret_len) || root == NULL) {
        return TEDDY_ERR_INVALID_ARG;
    }
    return derive(fleet_secret, fleet_secret_len, TEDDY_CONNECT_ROOT_INFO, NULL, 0, root);
}

teddy_err_t teddy_derive_connect_key(const uint8_t root[TEDDY_KEY_SIZE], const char *device_id,
                                     size_t device_id_len, uint8_t key[TEDDY_KEY_SIZE])
{
    teddy_err_t status;
    if (root == NULL || key == NULL) {
        return TEDDY_ERR_INVALID_ARG;
    }
    status = teddy_device_id_check(device_id, device_id_len);
    if (status != TEDDY_OK) {
        return status;
    }
    return derive(root, TEDDY_KEY_SIZE, TEDDY_CONNECT_KEY_INFO_PREFIX, device_id, device_id_len,
                  key);
}
