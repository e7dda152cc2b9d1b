/*
 * Runs the protocol core against every vector of docs/vectors/protocol-vectors.json, read from
 * the case file that vectors_to_cases.py writes (see its docstring for the format).
 *
 * Usage: test_core CASES_FILE
 * Prints one FAIL line per broken expectation, a line per section, and last
 * "N passed, M failed"; exits non-zero when M > 0 or when no case ran.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_cases.h"

#define LINE_SIZE (1u << 16)
#define STORE_SIZE (1u << 18)

static char line[LINE_SIZE];
static char store[STORE_SIZE];
static size_t store_used;

const field_t *find_field(const record_t *r, const char *name)
{
    size_t i;
    for (i = 0; i < r->count; i++) {
        if (strcmp(r->fields[i].name, name) == 0) {
            return &r->fields[i];
        }
    }
    return NULL;
}

bool has_field(const record_t *r, const char *name)
{
    return find_field(r, name) != NULL;
}

/* A plain word (direction, reason, kind name) as a NUL-terminated string. */
bool get_word(const record_t *r, const char *name, const char **out)
{
    const field_t *f = find_field(r, name);
    if (f == NULL) {
        EXPECT(false, "field %s is missing", name);
        return false;
    }
    *out = f->value;
    return true;
}

bool get_u64(const record_t *r, const char *name, uint64_t *out)
{
    const field_t *f = find_field(r, name);
    uint64_t v = 0;
    size_t i;
    if (f == NULL || f->len == 0 || f->len > 20) {
        EXPECT(false, "field %s is missing or not a number", name);
        return false;
    }
    for (i = 0; i < f->len; i++) {
        uint64_t digit;
        if (f->value[i] < '0' || f->value[i] > '9') {
            EXPECT(false, "field %s is not a decimal number", name);
            return false;
        }
        digit = (uint64_t)(f->value[i] - '0');
        if (v > (UINT64_MAX - digit) / 10u) {
            EXPECT(false, "field %s overflows 64 bits", name);
            return false;
        }
        v = v * 10u + digit;
    }
    *out = v;
    return true;
}

/* Decodes a *_hex field into `out` (capacity `cap`). */
bool get_bytes(const record_t *r, const char *name, uint8_t *out, size_t cap, size_t *len)
{
    const field_t *f = find_field(r, name);
    if (f == NULL || !hex_to_bytes(f->value, f->len, out, cap, len)) {
        EXPECT(false, "field %s is missing, not hex, or longer than %zu bytes", name, cap);
        return false;
    }
    return true;
}

/* A *_hex field that holds text: decoded and NUL-terminated (the core gets its length). */
bool get_text(const record_t *r, const char *name, char *out, size_t cap, size_t *len)
{
    if (cap == 0 || !get_bytes(r, name, (uint8_t *)out, cap - 1, len)) {
        return false;
    }
    out[*len] = '\0';
    return true;
}

bool get_key(const record_t *r, const char *name, uint8_t key[TEDDY_KEY_SIZE])
{
    size_t len = 0;
    if (!get_bytes(r, name, key, TEDDY_KEY_SIZE, &len)) {
        return false;
    }
    EXPECT(len == TEDDY_KEY_SIZE, "field %s holds %zu bytes, not a 32-byte key", name, len);
    return len == TEDDY_KEY_SIZE;
}

bool get_direction(const record_t *r, teddy_direction_t *out)
{
    const char *word;
    if (!get_word(r, "direction", &word)) {
        return false;
    }
    if (strcmp(word, "up") == 0) {
        *out = TEDDY_DIR_UP;
    } else if (strcmp(word, "down") == 0) {
        *out = TEDDY_DIR_DOWN;
    } else {
        EXPECT(false, "direction %s is neither up nor down", word);
        return false;
    }
    return true;
}

void expect_reason(teddy_err_t got, const char *reason, const char *what)
{
    EXPECT(strcmp(teddy_err_reason(got), reason) == 0, "%s: got %s, want %s", what,
           teddy_err_reason(got), reason);
}
/* ---- reading and dispatch ---- */

typedef struct {
    const char *section;
    void (*run)(const record_t *r);
} handler_t;

static const handler_t handlers[] = {
    {"const", run_const},
    {"kind", run_kind},
    {"keys", run_keys},
    {"valid", run_valid},
    {"invalid", run_invalid},
    {"connect_root", run_connect_root},
    {"connect_key", run_connect_key},
    {"valid_token", run_valid_token},
    {"invalid_token", run_invalid_token},
    {"service", run_service},
    {"invalid_service", run_invalid_service},
};

static const char *section_label(const char *section)
{
    if (strcmp(section, "valid") == 0) {
        return "valid-encode";
    }
    if (strcmp(section, "valid_token") == 0) {
        return "valid_token-make";
    }
    if (strcmp(section, "service") == 0) {
        return "service-password";
    }
    return section;
}

static void run_record(record_t *r)
{
    size_t i;
    for (i = 0; i < sizeof handlers / sizeof handlers[0]; i++) {
        if (strcmp(handlers[i].section, r->section) == 0) {
            case_begin(section_label(r->section), r->name);
            handlers[i].run(r);
            case_end();
            return;
        }
    }
    report_broken(r->section, "no handler for section %s (case %s)", r->section, r->name);
}

/* Reads one line without its newline; false at the end of the file or on a line too long. */
static bool read_line(FILE *file, unsigned long line_number, bool *too_long)
{
    size_t len;
    *too_long = false;
    if (fgets(line, sizeof line, file) == NULL) {
        return false;
    }
    len = strlen(line);
    if (len > 0 && line[len - 1] == '\n') {
        line[len - 1] = '\0';
    } else if (!feof(file)) {
        report_broken("line", "line %lu is longer than %u bytes", line_number, LINE_SIZE - 2);
        *too_long = true;
        return false;
    }
    return true;
}

/* Splits "word rest" in place; rest is "" when there is no space. */
static char *split_word(char *text)
{
    char *space = strchr(text, ' ');
    if (space == NULL) {
        return text + strlen(text);
    }
    *space = '\0';
    return space + 1;
}

static bool copy_word(char *dst, size_t cap, const char *src)
{
    size_t len = strlen(src);
    if (len == 0 || len >= cap) {
        return false;
    }
    memcpy(dst, src, len + 1);
    return true;
}

static int run_case_file(const char *path)
{
    FILE *file = fopen(path, "r");
    record_t record;
    bool in_record = false;
    bool header_seen = false;
    bool total_seen = false;
    bool too_long = false;
    unsigned long line_number = 0;
    unsigned long records = 0;

    if (file == NULL) {
        report_broken("open", "cannot open %s", path);
        return 1;
    }
    while (read_line(file, ++line_number, &too_long)) {
        char *rest;
        if (line[0] == '#' || line[0] == '\0') {
            continue;
        }
        rest = split_word(line);
        if (!header_seen) {
            header_seen = strcmp(line, "teddy-cases") == 0 && strcmp(rest, "1") == 0;
            if (!header_seen) {
                report_broken("header", "%s does not start with \"teddy-cases 1\"", path);
                break;
            }
        } else if (strcmp(line, "case") == 0 && !in_record) {
            char *name = split_word(rest);
            memset(&record, 0, sizeof record);
            store_used = 0;
            if (!copy_word(record.section, sizeof record.section, rest) ||
                !copy_word(record.name, sizeof record.name, name)) {
                report_broken("case", "line %lu: bad case line", line_number);
                break;
            }
            in_record = true;
        } else if (strcmp(line, "end") == 0 && in_record) {
            run_record(&record);
            records++;
            in_record = false;
        } else if (strcmp(line, "skip") == 0 && !in_record) {
            note("skipped %s (the hub's nonce store and revocation list, not the core)", rest);
        } else if (strcmp(line, "total") == 0 && !in_record) {
            unsigned long want = strtoul(rest, NULL, 10);
            total_seen = true;
            if (want != records) {
                report_broken("total", "read %lu cases, the file says %lu", records, want);
            }
        } else if (in_record) {
            size_t len = strlen(rest);
            field_t *f;
            if (record.count == MAX_FIELDS || strlen(line) >= sizeof f->name ||
                len + 1 > STORE_SIZE - store_used) {
                report_broken("field", "line %lu: too many or too large fields", line_number);
                break;
            }
            f = &record.fields[record.count++];
            memcpy(f->name, line, strlen(line) + 1);
            memcpy(store + store_used, rest, len + 1);
            f->value = store + store_used;
            f->len = len;
            store_used += len + 1;
        } else {
            report_broken("syntax", "line %lu: unexpected \"%s\"", line_number, line);
            break;
        }
    }
    if (ferror(file)) {
        report_broken("read", "error reading %s", path);
    }
    fclose(file);
    if (!too_long && (in_record || !total_seen)) {
        report_broken("truncated", "%s ends inside a case or without its total line", path);
    }
    if (records == 0) {
        report_broken("empty", "no case read from %s", path);
    }
    if (kinds_seen() != TEDDY_KIND_COUNT) {
        report_broken("kinds", "the vectors list %u kinds, the core %d", kinds_seen(),
                      TEDDY_KIND_COUNT);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CASES_FILE\n", argv[0]);
        return 2;
    }
    run_unit_tests();
    run_case_file(argv[1]);
    return finish();
}
