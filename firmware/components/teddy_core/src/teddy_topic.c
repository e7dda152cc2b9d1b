/* Topics: <root>/v1/<device_id>/<up|down>/<kind> (docs/protocol.md, "Topics"). */
#include <string.h>

#include "teddy_internal.h"

#define TOPIC_LEVELS 5

static bool span_equals(const char *s, size_t len, const char *literal)
{
    size_t literal_len = strlen(literal);
    return len == literal_len && memcmp(s, literal, len) == 0;
}

/* The root the hub and toys are configured with: 1-32 characters of [a-z0-9_-], starting with
 * a letter or digit (the device id alphabet, shorter minimum). */
static teddy_err_t check_root(const char *root, size_t root_len)
{
    size_t i;
    if (!TEDDY_SPAN_OK(root, root_len) || root_len == 0 || root_len > TEDDY_TOPIC_ROOT_MAX_LEN) {
        return TEDDY_ERR_INVALID_ARG;
    }
    for (i = 0; i < root_len; i++) {
        unsigned char c = (unsigned char)root[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '-'))) {
            return TEDDY_ERR_INVALID_ARG;
        }
    }
    return TEDDY_OK;
}

static void write_text(teddy_writer_t *w, const char *s, size_t len)
{
    teddy_write_bytes(w, s, len);
}

/* Writes root/v1/id/<direction>/<last> and a NUL. */
static teddy_err_t build(const char *root, size_t root_len, const char *device_id,
                         size_t device_id_len, teddy_direction_t direction, const char *last,
                         char *out, size_t out_size, size_t *out_len)
{
    teddy_writer_t w;
    const char *segment = direction == TEDDY_DIR_DOWN ? "down" : "up";
    teddy_err_t status;

    if (out == NULL || out_len == NULL) {
        return TEDDY_ERR_INVALID_ARG;
    }
    status = check_root(root, root_len);
    if (status == TEDDY_OK) {
        status = teddy_device_id_check(device_id, device_id_len);
    }
    if (status != TEDDY_OK) {
        return status;
    }
    w.data = (uint8_t *)out;
    w.cap = out_size;
    w.pos = 0;
    w.overflow = false;
    write_text(&w, root, root_len);
    write_text(&w, "/" TEDDY_TOPIC_VERSION "/", 4);
    write_text(&w, device_id, device_id_len);
    write_text(&w, "/", 1);
    write_text(&w, segment, strlen(segment));
    write_text(&w, "/", 1);
    write_text(&w, last, strlen(last));
    teddy_write_u8(&w, 0);
    if (w.overflow) {
        return TEDDY_ERR_BUFFER_TOO_SMALL;
    }
    *out_len = w.pos - 1;
    return TEDDY_OK;
}

teddy_err_t teddy_topic_build(const char *root, size_t root_len, const char *device_id,
                              size_t device_id_len, uint8_t kind, char *out, size_t out_size,
                              size_t *out_len)
{
    const char *name = teddy_kind_name(kind);
    if (name == NULL) {
        return TEDDY_ERR_MALFORMED;
    }
    return build(root, root_len, device_id, device_id_len, teddy_kind_direction(kind), name, out,
                 out_size, out_len);
}

teddy_err_t teddy_topic_downlink_filter(const char *root, size_t root_len, const char *device_id,
                                        size_t device_id_len, char *out, size_t out_size,
                                        size_t *out_len)
{
    return build(root, root_len, device_id, device_id_len, TEDDY_DIR_DOWN, "+", out, out_size,
                 out_len);
}

teddy_err_t teddy_topic_parse(const char *topic, size_t topic_len, teddy_topic_t *out)
{
    const char *level[TOPIC_LEVELS];
    size_t level_len[TOPIC_LEVELS];
    size_t count = 0;
    size_t start = 0;
    size_t i;
    teddy_direction_t direction;
    uint8_t kind;

    if (!TEDDY_SPAN_OK(topic, topic_len) || out == NULL) {
        return TEDDY_ERR_INVALID_ARG;
    }
    if (topic_len == 0) {
        return TEDDY_ERR_MALFORMED;
    }
    /* split on '/', which never occurs inside a multi-byte UTF-8 sequence */
    for (i = 0; i <= topic_len; i++) {
        if (i == topic_len || topic[i] == '/') {
            if (count == TOPIC_LEVELS) {
                return TEDDY_ERR_MALFORMED; /* a sixth level */
            }
            level[count] = topic + start;
            level_len[count] = i - start;
            count++;
            start = i + 1;
        }
    }
    if (count != TOPIC_LEVELS || !span_equals(level[1], level_len[1], TEDDY_TOPIC_VERSION) ||
        teddy_device_id_check(level[2], level_len[2]) != TEDDY_OK) {
        return TEDDY_ERR_MALFORMED;
    }
    if (span_equals(level[3], level_len[3], "up")) {
        direction = TEDDY_DIR_UP;
    } else if (span_equals(level[3], level_len[3], "down")) {
        direction = TEDDY_DIR_DOWN;
    } else {
        return TEDDY_ERR_MALFORMED;
    }
    if (teddy_kind_from_name(level[4], level_len[4], &kind) != TEDDY_OK ||
        teddy_kind_direction(kind) != direction) {
        return TEDDY_ERR_MALFORMED;
    }
    out->root = level[0];
    out->root_len = level_len[0];
    out->device_id = level[2];
    out->device_id_len = level_len[2];
    out->direction = direction;
    out->kind = kind;
    return TEDDY_OK;
}
