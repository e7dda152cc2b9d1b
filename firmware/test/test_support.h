/* Test driver plumbing: case bookkeeping, per-case heap buffers, hex. */
#ifndef TEDDY_TEST_SUPPORT_H
#define TEDDY_TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "teddy_core.h"

#if defined(__GNUC__)
#define TEST_PRINTF(fmt_index, args_index) __attribute__((format(printf, fmt_index, args_index)))
#else
#define TEST_PRINTF(fmt_index, args_index)
#endif

/* One case: every expectation inside it must hold for it to pass. */
void case_begin(const char *section, const char *name);
void case_end(void);
void expect_at(bool ok, const char *file, int line, const char *fmt, ...) TEST_PRINTF(4, 5);
#define EXPECT(cond, ...) expect_at((cond), __FILE__, __LINE__, __VA_ARGS__)
#define EXPECT_ERR(got, want) \
    EXPECT((got) == (want), "%s: got %s, want %s", #got, teddy_err_reason(got), \
           teddy_err_reason(want))

/* A fatal problem with the case file itself: counted as a failure of its own. */
void report_broken(const char *what, const char *fmt, ...) TEST_PRINTF(2, 3);
void note(const char *fmt, ...) TEST_PRINTF(1, 2);

/* Prints the per-section lines and the final "N passed, M failed"; returns the exit status. */
int finish(void);
unsigned cases_run(void);

/* Heap memory of exactly n bytes that lives until case_end(), so that AddressSanitizer sees
 * any read past the end of a frame, topic or token handed to the core. */
void *case_alloc(size_t n);
void *case_copy(const void *src, size_t n);

/* Lowercase or uppercase hex of exactly 2n characters into n bytes. */
bool hex_to_bytes(const char *hex, size_t hex_len, uint8_t *out, size_t out_size,
                  size_t *out_len);
void bytes_to_hex(const uint8_t *bytes, size_t n, char *out); /* 2n + NUL */

bool span_eq(const void *a, size_t a_len, const void *b, size_t b_len);

void run_unit_tests(void);

#endif /* TEDDY_TEST_SUPPORT_H */
