/* Handlers for the valid frames (encode, verify, mutations) and the invalid frames. */
#include <stdlib.h>
#include <string.h>

#include "test_cases.h"

/* ---- valid frames: encode, verify, and mutations of each ---- */

typedef struct {
    char topic[MAX_TEXT];
    size_t topic_len;
    teddy_direction_t direction;
    uint8_t key[TEDDY_KEY_SIZE];
    const char *kind_name;
    uint64_t kind_code;
    char device_id[MAX_TEXT];
    size_t device_id_len;
    uint64_t timestamp_ms;
    uint8_t nonce[TEDDY_NONCE_SIZE];
    uint64_t seq;
    uint8_t payload[TEDDY_MAX_PAYLOAD_SIZE + 64];
    size_t payload_len;
    uint64_t now_ms;
    uint8_t frame[TEDDY_MAX_FRAME_SIZE + 64];
    size_t frame_len;
    uint8_t tag[TEDDY_TAG_SIZE];
} valid_vector_t;

static valid_vector_t vv;

static bool load_valid(const record_t *r, valid_vector_t *v)
{
    size_t nonce_len = 0;
    size_t tag_len = 0;
    if (!get_text(r, "topic_hex", v->topic, sizeof v->topic, &v->topic_len) ||
        !get_direction(r, &v->direction) || !get_key(r, "device_key_hex", v->key) ||
        !get_word(r, "kind", &v->kind_name) || !get_u64(r, "kind_code", &v->kind_code) ||
        !get_text(r, "device_id_hex", v->device_id, sizeof v->device_id, &v->device_id_len) ||
        !get_u64(r, "timestamp_ms", &v->timestamp_ms) ||
        !get_bytes(r, "nonce_hex", v->nonce, sizeof v->nonce, &nonce_len) ||
        !get_u64(r, "seq", &v->seq) ||
        !get_bytes(r, "payload_hex", v->payload, sizeof v->payload, &v->payload_len) ||
        !get_u64(r, "now_ms", &v->now_ms) ||
        !get_bytes(r, "frame_hex", v->frame, sizeof v->frame, &v->frame_len) ||
        !get_bytes(r, "tag_hex", v->tag, sizeof v->tag, &tag_len)) {
        return false;
    }
    EXPECT(nonce_len == TEDDY_NONCE_SIZE && tag_len == TEDDY_TAG_SIZE && v->kind_code <= 0xff &&
               v->seq <= UINT32_MAX,
           "nonce, tag, kind code or seq out of range");
    return nonce_len == TEDDY_NONCE_SIZE && tag_len == TEDDY_TAG_SIZE && v->kind_code <= 0xff &&
           v->seq <= UINT32_MAX;
}

static teddy_frame_fields_t fields_of(const valid_vector_t *v, const uint8_t *payload)
{
    teddy_frame_fields_t f;
    f.kind = (uint8_t)v->kind_code;
    f.device_id = v->device_id;
    f.device_id_len = v->device_id_len;
    f.timestamp_ms = v->timestamp_ms;
    f.nonce = v->nonce;
    f.seq = (uint32_t)v->seq;
    f.payload = payload;
    f.payload_len = v->payload_len;
    return f;
}

static void check_encode(const valid_vector_t *v)
{
    const char *topic = case_copy(v->topic, v->topic_len);
    const char *name = teddy_kind_name((uint8_t)v->kind_code);
    teddy_frame_fields_t f = fields_of(v, case_copy(v->payload, v->payload_len));
    uint8_t *out = case_alloc(v->frame_len);
    uint8_t *in_place = case_alloc(v->frame_len);
    uint8_t *small = case_alloc(v->frame_len - 1);
    size_t offset = teddy_frame_payload_offset(v->device_id_len);
    size_t len = 0;
    teddy_topic_t parts;
    char built[TEDDY_TOPIC_BUF_SIZE];
    size_t built_len = 0;

    EXPECT(name != NULL && strcmp(name, v->kind_name) == 0, "kind code and name disagree");
    EXPECT(teddy_frame_size(v->device_id_len, v->payload_len) == v->frame_len, "frame size");

    EXPECT_ERR(teddy_frame_encode(v->key, topic, v->topic_len, &f, out, v->frame_len, &len),
               TEDDY_OK);
    EXPECT(span_eq(out, len, v->frame, v->frame_len), "encoded frame differs (%zu bytes, want %zu)",
           len, v->frame_len);
    EXPECT(len == v->frame_len && memcmp(out + len - TEDDY_TAG_SIZE, v->tag, TEDDY_TAG_SIZE) == 0,
           "tag differs from tag_hex");

    EXPECT_ERR(teddy_frame_encode(v->key, topic, v->topic_len, &f, small, v->frame_len - 1, &len),
               TEDDY_ERR_BUFFER_TOO_SMALL);

    /* payload already at its offset in the output buffer: encoded without a copy */
    if (v->payload_len > 0) {
        memcpy(in_place + offset, v->payload, v->payload_len);
    }
    f.payload = in_place + offset;
    EXPECT_ERR(
        teddy_frame_encode(v->key, topic, v->topic_len, &f, in_place, v->frame_len, &len),
        TEDDY_OK);
    EXPECT(span_eq(in_place, len, v->frame, v->frame_len), "in-place encoding differs");

    /* the topic rebuilt from its parts */
    EXPECT_ERR(teddy_topic_parse(topic, v->topic_len, &parts), TEDDY_OK);
    EXPECT_ERR(teddy_topic_build(parts.root, parts.root_len, v->device_id, v->device_id_len,
                                 (uint8_t)v->kind_code, built, sizeof built, &built_len),
               TEDDY_OK);
    EXPECT(span_eq(built, built_len, v->topic, v->topic_len) && built[built_len] == '\0',
           "built topic %s differs", built);
}

static void expect_view(const valid_vector_t *v, const uint8_t *frame,
                        const teddy_frame_view_t *view)
{
    const teddy_frame_fields_t *f = &view->fields;
    size_t offset = teddy_frame_payload_offset(v->device_id_len);
    EXPECT(view->direction == v->direction, "direction");
    EXPECT(f->kind == v->kind_code, "kind 0x%02x", f->kind);
    EXPECT(span_eq(f->device_id, f->device_id_len, v->device_id, v->device_id_len), "device id");
    EXPECT(f->timestamp_ms == v->timestamp_ms, "timestamp");
    EXPECT(memcmp(f->nonce, v->nonce, TEDDY_NONCE_SIZE) == 0, "nonce");
    EXPECT(f->seq == v->seq, "seq");
    EXPECT(span_eq(f->payload, f->payload_len, v->payload, v->payload_len), "payload");
    EXPECT(f->payload == frame + offset && f->device_id == (const char *)frame + 4 &&
               view->tag == frame + v->frame_len - TEDDY_TAG_SIZE && view->signed_data == frame &&
               view->signed_len == v->frame_len - TEDDY_TAG_SIZE,
           "the view does not point into the caller's buffer");
}

static void check_verify(const valid_vector_t *v)
{
    const char *topic = case_copy(v->topic, v->topic_len);
    const uint8_t *frame = case_copy(v->frame, v->frame_len);
    teddy_frame_view_t view;
    teddy_frame_view_t begun;

    EXPECT_ERR(teddy_frame_verify(topic, v->topic_len, frame, v->frame_len, v->direction, v->key,
                                  v->now_ms, &view),
               TEDDY_OK);
    expect_view(v, frame, &view);
    EXPECT_ERR(teddy_frame_verify_begin(topic, v->topic_len, frame, v->frame_len, v->direction,
                                        &begun),
               TEDDY_OK);
    EXPECT_ERR(teddy_frame_verify_finish(&begun, topic, v->topic_len, v->key, v->now_ms),
               TEDDY_OK);
    expect_view(v, frame, &begun);
}

/* Verifies exact-size heap copies (freed at once: the mutation loop makes thousands). */
static teddy_err_t verify_copy(const valid_vector_t *v, const uint8_t *bytes, size_t len,
                               teddy_direction_t direction, const uint8_t *key, uint64_t now_ms)
{
    teddy_frame_view_t view;
    uint8_t *frame = malloc(len > 0 ? len : 1);
    char *topic = malloc(v->topic_len > 0 ? v->topic_len : 1);
    teddy_err_t got = TEDDY_ERR_INVALID_ARG;
    if (frame != NULL && topic != NULL) {
        if (len > 0) {
            memcpy(frame, bytes, len);
        }
        memcpy(topic, v->topic, v->topic_len);
        got = teddy_frame_verify(topic, v->topic_len, frame, len, direction, key, now_ms, &view);
    }
    free(frame);
    free(topic);
    return got;
}

static bool probe_position(const valid_vector_t *v, size_t i)
{
    size_t header = teddy_frame_payload_offset(v->device_id_len);
    return v->frame_len <= 1024 || i < header + 8 || i % 251 == 0 || i + 40 >= v->frame_len;
}

/* Every single-bit change, truncation and extension is rejected; so are the wrong direction,
 * a wrong key, and clocks one millisecond outside the window. */
static void check_mutations(const valid_vector_t *v)
{
    uint8_t *work = case_alloc(v->frame_len + 1);
    uint8_t wrong_key[TEDDY_KEY_SIZE];
    teddy_direction_t other = v->direction == TEDDY_DIR_UP ? TEDDY_DIR_DOWN : TEDDY_DIR_UP;
    size_t i;
    unsigned probes = 0;

    for (i = 0; i < v->frame_len; i++) {
        teddy_err_t got;
        if (!probe_position(v, i)) {
            continue;
        }
        memcpy(work, v->frame, v->frame_len);
        work[i] ^= (uint8_t)(1u << (i % 8));
        got = verify_copy(v, work, v->frame_len, v->direction, v->key, v->now_ms);
        EXPECT(got == TEDDY_ERR_MALFORMED || got == TEDDY_ERR_TOPIC_MISMATCH ||
                   got == TEDDY_ERR_BAD_SIGNATURE,
               "bit %zu of byte %zu flipped: %s", i % 8, i, teddy_err_reason(got));
        got = verify_copy(v, v->frame, i, v->direction, v->key, v->now_ms);
        EXPECT(got == TEDDY_ERR_MALFORMED, "truncated to %zu bytes: %s", i, teddy_err_reason(got));
        probes++;
    }
    EXPECT(probes > 0, "no position probed");
    memcpy(work, v->frame, v->frame_len);
    work[v->frame_len] = 0;
    EXPECT_ERR(verify_copy(v, work, v->frame_len + 1, v->direction, v->key, v->now_ms),
               TEDDY_ERR_MALFORMED);
    EXPECT_ERR(verify_copy(v, v->frame, v->frame_len, other, v->key, v->now_ms),
               TEDDY_ERR_TOPIC_MISMATCH);
    memcpy(wrong_key, v->key, sizeof wrong_key);
    wrong_key[31] ^= 1;
    EXPECT_ERR(verify_copy(v, v->frame, v->frame_len, v->direction, wrong_key, v->now_ms),
               TEDDY_ERR_BAD_SIGNATURE);
    EXPECT_ERR(verify_copy(v, v->frame, v->frame_len, v->direction, v->key,
                           v->timestamp_ms + TEDDY_CLOCK_WINDOW_MS + 1),
               TEDDY_ERR_STALE);
    if (v->timestamp_ms > TEDDY_CLOCK_WINDOW_MS) {
        EXPECT_ERR(verify_copy(v, v->frame, v->frame_len, v->direction, v->key,
                               v->timestamp_ms - TEDDY_CLOCK_WINDOW_MS - 1),
                   TEDDY_ERR_FUTURE);
    }
}

void run_valid(const record_t *r)
{
    if (!load_valid(r, &vv)) {
        return;
    }
    check_encode(&vv);
    case_end();
    case_begin("valid-verify", r->name);
    check_verify(&vv);
    case_end();
    case_begin("valid-mutations", r->name);
    check_mutations(&vv);
}

/* ---- invalid frames ---- */

static valid_vector_t iv; /* reuses the storage; only topic, key, frame and clock are set */

void run_invalid(const record_t *r)
{
    const char *reason;
    const char *topic;
    const uint8_t *frame;
    teddy_frame_view_t view;
    teddy_err_t got;
    if (!get_text(r, "topic_hex", iv.topic, sizeof iv.topic, &iv.topic_len) ||
        !get_direction(r, &iv.direction) || !get_key(r, "device_key_hex", iv.key) ||
        !get_bytes(r, "frame_hex", iv.frame, sizeof iv.frame, &iv.frame_len) ||
        !get_u64(r, "now_ms", &iv.now_ms) || !get_word(r, "reason", &reason)) {
        return;
    }
    topic = case_copy(iv.topic, iv.topic_len);
    frame = case_copy(iv.frame, iv.frame_len);
    got = teddy_frame_verify(topic, iv.topic_len, frame, iv.frame_len, iv.direction, iv.key,
                             iv.now_ms, &view);
    expect_reason(got, reason, "verify");
    got = teddy_frame_verify_begin(topic, iv.topic_len, frame, iv.frame_len, iv.direction, &view);
    if (got == TEDDY_OK) {
        got = teddy_frame_verify_finish(&view, topic, iv.topic_len, iv.key, iv.now_ms);
    }
    expect_reason(got, reason, "verify_begin + verify_finish");
}
