/* The case file's records as the handlers see them, and the handlers (one per section). */
#ifndef TEDDY_TEST_CASES_H
#define TEDDY_TEST_CASES_H

#include "test_support.h"

#define MAX_FIELDS 24
#define MAX_TEXT 1024

typedef struct {
    char name[32];
    const char *value;
    size_t len;
} field_t;

typedef struct {
    char section[32];
    char name[128];
    field_t fields[MAX_FIELDS];
    size_t count;
} record_t;

/* Field access: each records a failed expectation (and returns false) when the field is missing
 * or does not decode. *_hex fields are hex; get_text() also NUL-terminates. */
const field_t *find_field(const record_t *r, const char *name);
bool has_field(const record_t *r, const char *name);
bool get_word(const record_t *r, const char *name, const char **out);
bool get_u64(const record_t *r, const char *name, uint64_t *out);
bool get_bytes(const record_t *r, const char *name, uint8_t *out, size_t cap, size_t *len);
bool get_text(const record_t *r, const char *name, char *out, size_t cap, size_t *len);
bool get_key(const record_t *r, const char *name, uint8_t key[TEDDY_KEY_SIZE]);
bool get_direction(const record_t *r, teddy_direction_t *out);
void expect_reason(teddy_err_t got, const char *reason, const char *what);

/* test_keys.c */
void run_const(const record_t *r);
void run_kind(const record_t *r);
unsigned kinds_seen(void);
void run_keys(const record_t *r);
void run_connect_root(const record_t *r);
void run_connect_key(const record_t *r);
void run_valid_token(const record_t *r);
void run_invalid_token(const record_t *r);
void run_service(const record_t *r);
void run_invalid_service(const record_t *r);

/* test_frames.c */
void run_valid(const record_t *r);
void run_invalid(const record_t *r);

#endif /* TEDDY_TEST_CASES_H */
