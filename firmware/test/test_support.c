#include "test_support.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SECTIONS 32
#define MAX_ALLOCATIONS 256

typedef struct {
    char name[32];
    unsigned passed;
    unsigned failed;
} section_stats_t;

static section_stats_t sections[MAX_SECTIONS];
static size_t section_count;
static unsigned total_passed;
static unsigned total_failed;

static const char *current_section = "";
static const char *current_name = "";
static bool current_ok;
static bool in_case;

static void *allocations[MAX_ALLOCATIONS];
static size_t allocation_count;

static section_stats_t *stats_for(const char *section)
{
    size_t i;
    for (i = 0; i < section_count; i++) {
        if (strcmp(sections[i].name, section) == 0) {
            return &sections[i];
        }
    }
    if (section_count == MAX_SECTIONS) {
        return &sections[MAX_SECTIONS - 1];
    }
    snprintf(sections[section_count].name, sizeof sections[section_count].name, "%s", section);
    return &sections[section_count++];
}

void case_begin(const char *section, const char *name)
{
    current_section = section;
    current_name = name;
    current_ok = true;
    in_case = true;
}

void case_end(void)
{
    section_stats_t *stats = stats_for(current_section);
    size_t i;
    if (current_ok) {
        stats->passed++;
        total_passed++;
    } else {
        stats->failed++;
        total_failed++;
    }
    for (i = 0; i < allocation_count; i++) {
        free(allocations[i]);
    }
    allocation_count = 0;
    in_case = false;
}

void expect_at(bool ok, const char *file, int line, const char *fmt, ...)
{
    va_list args;
    if (ok) {
        return;
    }
    current_ok = false;
    printf("FAIL %s %s (%s:%d): ", current_section, current_name, file, line);
    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
    printf("\n");
}

void report_broken(const char *what, const char *fmt, ...)
{
    va_list args;
    section_stats_t *stats = stats_for("case-file");
    stats->failed++;
    total_failed++;
    printf("FAIL case-file %s: ", what);
    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
    printf("\n");
}

void note(const char *fmt, ...)
{
    va_list args;
    printf("note: ");
    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
    printf("\n");
}

unsigned cases_run(void)
{
    return total_passed + total_failed;
}

int finish(void)
{
    size_t i;
    for (i = 0; i < section_count; i++) {
        printf("section %-20s %4u ok, %u failing\n", sections[i].name, sections[i].passed,
               sections[i].failed);
    }
    printf("%u passed, %u failed\n", total_passed, total_failed);
    return (total_failed == 0 && total_passed > 0) ? 0 : 1;
}

void *case_alloc(size_t n)
{
    void *p;
    if (!in_case || allocation_count == MAX_ALLOCATIONS) {
        fprintf(stderr, "case_alloc outside a case or past %d allocations\n", MAX_ALLOCATIONS);
        abort();
    }
    p = malloc(n > 0 ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        abort();
    }
    allocations[allocation_count++] = p;
    return p;
}

void *case_copy(const void *src, size_t n)
{
    void *p = case_alloc(n);
    if (n > 0) {
        memcpy(p, src, n);
    }
    return p;
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

bool hex_to_bytes(const char *hex, size_t hex_len, uint8_t *out, size_t out_size,
                  size_t *out_len)
{
    size_t i;
    if (hex_len % 2 != 0 || hex_len / 2 > out_size) {
        return false;
    }
    for (i = 0; i < hex_len / 2; i++) {
        int high = nibble(hex[2 * i]);
        int low = nibble(hex[2 * i + 1]);
        if (high < 0 || low < 0) {
            return false;
        }
        out[i] = (uint8_t)((high << 4) | low);
    }
    *out_len = hex_len / 2;
    return true;
}

void bytes_to_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

bool span_eq(const void *a, size_t a_len, const void *b, size_t b_len)
{
    return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}
