/* Helpers shared by the core's sources; not part of the API. */
#ifndef TEDDY_INTERNAL_H
#define TEDDY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "teddy_core.h"

/* A (pointer, length) pair is usable when the pointer is set or the length is 0. */
#define TEDDY_SPAN_OK(ptr, len) ((ptr) != NULL || (len) == 0)

/* ---- bounds-checked reading of wire bytes: every read says whether it fit ---- */

typedef struct {
    const uint8_t *data;
    size_t len;
    size_t pos;
} teddy_reader_t;

static inline bool teddy_read_bytes(teddy_reader_t *r, size_t n, const uint8_t **out)
{
    if (n > r->len - r->pos) {
        return false;
    }
    *out = r->data + r->pos;
    r->pos += n;
    return true;
}

static inline bool teddy_read_u8(teddy_reader_t *r, uint8_t *out)
{
    const uint8_t *p;
    if (!teddy_read_bytes(r, 1, &p)) {
        return false;
    }
    *out = p[0];
    return true;
}

static inline bool teddy_read_be32(teddy_reader_t *r, uint32_t *out)
{
    const uint8_t *p;
    if (!teddy_read_bytes(r, 4, &p)) {
        return false;
    }
    *out = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
           (uint32_t)p[3];
    return true;
}

static inline bool teddy_read_be64(teddy_reader_t *r, uint64_t *out)
{
    uint32_t high;
    uint32_t low;
    if (!teddy_read_be32(r, &high) || !teddy_read_be32(r, &low)) {
        return false;
    }
    *out = ((uint64_t)high << 32) | low;
    return true;
}

/* ---- bounds-checked writing: the first write that does not fit poisons the writer ---- */

typedef struct {
    uint8_t *data;
    size_t cap;
    size_t pos;
    bool overflow;
} teddy_writer_t;

static inline uint8_t *teddy_write_reserve(teddy_writer_t *w, size_t n)
{
    uint8_t *p;
    if (w->overflow || n > w->cap - w->pos) {
        w->overflow = true;
        return NULL;
    }
    p = w->data + w->pos;
    w->pos += n;
    return p;
}

static inline void teddy_write_u8(teddy_writer_t *w, uint8_t v)
{
    uint8_t *p = teddy_write_reserve(w, 1);
    if (p != NULL) {
        p[0] = v;
    }
}

static inline void teddy_write_be16(teddy_writer_t *w, uint16_t v)
{
    uint8_t *p = teddy_write_reserve(w, 2);
    if (p != NULL) {
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
    }
}

static inline void teddy_write_be32(teddy_writer_t *w, uint32_t v)
{
    uint8_t *p = teddy_write_reserve(w, 4);
    if (p != NULL) {
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
    }
}

static inline void teddy_write_be64(teddy_writer_t *w, uint64_t v)
{
    teddy_write_be32(w, (uint32_t)(v >> 32));
    teddy_write_be32(w, (uint32_t)v);
}

/* Copies n bytes (memmove: the source may lie anywhere, even in the destination buffer). */
void teddy_write_bytes(teddy_writer_t *w, const void *src, size_t n);

/* ---- text and secrets ---- */

/* 1 when the n bytes at a and b are equal. Our own XOR-accumulate: the time depends on n only,
 * never on where the first difference is. */
bool teddy_ct_equal(const void *a, const void *b, size_t n);

/* Lowercase hex of n bytes into out (2n characters, no NUL). */
void teddy_hex_encode(const uint8_t *bytes, size_t n, char *out);

/* Decodes 2n lowercase hex characters; false on any other character. */
bool teddy_hex_decode_lower(const char *hex, size_t n, uint8_t *out);

/* Overwrites secrets on the stack before they go out of scope. */
void teddy_wipe(void *p, size_t n);

/* ---- HMAC-SHA256 over several parts, the only crypto primitive the core uses ---- */

typedef struct {
    const void *data;
    size_t len;
} teddy_part_t;

teddy_err_t teddy_hmac_sha256(const uint8_t *key, size_t key_len, const teddy_part_t *parts,
                              size_t part_count, uint8_t mac[32]);

/* HKDF-SHA256 whose info is the concatenation of `info_count` parts (a label and a device id),
 * so no buffer is needed to join them. */
teddy_err_t teddy_hkdf_parts(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                             size_t ikm_len, const teddy_part_t *info, size_t info_count,
                             uint8_t *okm, size_t okm_len);

#endif /* TEDDY_INTERNAL_H */
