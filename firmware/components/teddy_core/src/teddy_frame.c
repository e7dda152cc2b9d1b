/*
 * Frames (docs/protocol.md, "Frame layout", "Signature", "Clock", "Verification order").
 *
 *   off   size  field
 *   0     1     version (1)
 *   1     1     flags (bit 0: direction; bits 1-7 zero)
 *   2     1     kind
 *   3     1     id_len = L (3..32)
 *   4     L     device id
 *   4+L   8     timestamp_ms, u64 big-endian
 *   12+L  16    nonce
 *   28+L  4     seq, u32 big-endian
 *   32+L  4     payload_len = P, u32 big-endian
 *   36+L  P     payload
 *   36+L+P 32   tag = HMAC-SHA256(key, u16be(len(topic)) || topic || bytes 0 .. 36+L+P)
 */
#include <string.h>

#include "teddy_internal.h"

#define FLAG_DIRECTION 0x01u

size_t teddy_frame_payload_offset(size_t device_id_len)
{
    if (device_id_len > SIZE_MAX - TEDDY_FRAME_HEADER_SIZE) {
        return SIZE_MAX;
    }
    return TEDDY_FRAME_HEADER_SIZE + device_id_len;
}

size_t teddy_frame_size(size_t device_id_len, size_t payload_len)
{
    size_t base;
    if (device_id_len > SIZE_MAX - TEDDY_FRAME_OVERHEAD) {
        return SIZE_MAX;
    }
    base = TEDDY_FRAME_OVERHEAD + device_id_len;
    if (payload_len > SIZE_MAX - base) {
        return SIZE_MAX;
    }
    return base + payload_len;
}

teddy_err_t teddy_frame_tag(const uint8_t key[TEDDY_KEY_SIZE], const char *topic,
                            size_t topic_len, const uint8_t *signed_data, size_t signed_len,
                            uint8_t tag[TEDDY_TAG_SIZE])
{
    uint8_t topic_length[2];
    teddy_part_t parts[3];
    if (key == NULL || !TEDDY_SPAN_OK(topic, topic_len) ||
        !TEDDY_SPAN_OK(signed_data, signed_len) || tag == NULL) {
        return TEDDY_ERR_INVALID_ARG;
    }
    if (topic_len > TEDDY_MAX_TOPIC_SIZE) {
        return TEDDY_ERR_MALFORMED; /* the u16 prefix could hold it; the spec caps it at 255 */
    }
    topic_length[0] = (uint8_t)(topic_len >> 8);
    topic_length[1] = (uint8_t)topic_len;
    parts[0].data = topic_length;
    parts[0].len = sizeof topic_length;
    parts[1].data = topic;
    parts[1].len = topic_len;
    parts[2].data = signed_data;
    parts[2].len = signed_len;
    return teddy_hmac_sha256(key, TEDDY_KEY_SIZE, parts, 3, tag);
}

teddy_err_t teddy_clock_check(uint64_t timestamp_ms, uint64_t now_ms)
{
    /* the spec's "timestamp < now - W" and "timestamp > now + W", without wrapping */
    if (now_ms >= TEDDY_CLOCK_WINDOW_MS && timestamp_ms < now_ms - TEDDY_CLOCK_WINDOW_MS) {
        return TEDDY_ERR_STALE;
    }
    if (now_ms <= UINT64_MAX - TEDDY_CLOCK_WINDOW_MS &&
        timestamp_ms > now_ms + TEDDY_CLOCK_WINDOW_MS) {
        return TEDDY_ERR_FUTURE;
    }
    return TEDDY_OK;
}

static bool same_device(const char *a, size_t a_len, const char *b, size_t b_len)
{
    return a_len == b_len && memcmp(a, b, a_len) == 0;
}

teddy_err_t teddy_frame_encode(const uint8_t key[TEDDY_KEY_SIZE], const char *topic,
                               size_t topic_len, const teddy_frame_fields_t *fields,
                               uint8_t *out, size_t out_size, size_t *out_len)
{
    teddy_topic_t parsed;
    teddy_writer_t w;
    teddy_err_t status;
    size_t size;
    size_t signed_len;

    if (key == NULL || !TEDDY_SPAN_OK(topic, topic_len) || fields == NULL || out == NULL ||
        out_len == NULL || fields->nonce == NULL ||
        !TEDDY_SPAN_OK(fields->payload, fields->payload_len)) {
        return TEDDY_ERR_INVALID_ARG;
    }
    status = teddy_device_id_check(fields->device_id, fields->device_id_len);
    if (status == TEDDY_OK) {
        status = teddy_kind_check(fields->kind);
    }
    if (status != TEDDY_OK) {
        return status;
    }
    if (fields->payload_len > TEDDY_MAX_PAYLOAD_SIZE) {
        return TEDDY_ERR_OVERSIZED;
    }
    status = teddy_topic_parse(topic, topic_len, &parsed);
    if (status != TEDDY_OK) {
        return status;
    }
    if (parsed.kind != fields->kind ||
        !same_device(parsed.device_id, parsed.device_id_len, fields->device_id,
                     fields->device_id_len)) {
        return TEDDY_ERR_TOPIC_MISMATCH;
    }
    if (topic_len > TEDDY_MAX_TOPIC_SIZE) {
        return TEDDY_ERR_MALFORMED;
    }
    size = teddy_frame_size(fields->device_id_len, fields->payload_len);
    if (out_size < size) {
        return TEDDY_ERR_BUFFER_TOO_SMALL;
    }
    signed_len = size - TEDDY_TAG_SIZE;

    /* The payload goes first: it may already be inside `out`, even where the header goes. */
    if (fields->payload_len > 0) {
        memmove(out + teddy_frame_payload_offset(fields->device_id_len), fields->payload,
                fields->payload_len);
    }
    w.data = out;
    w.cap = signed_len;
    w.pos = 0;
    w.overflow = false;
    teddy_write_u8(&w, TEDDY_PROTOCOL_VERSION);
    teddy_write_u8(&w, (uint8_t)(fields->kind >> 7)); /* the direction flag is the kind's bit 7 */
    teddy_write_u8(&w, fields->kind);
    teddy_write_u8(&w, (uint8_t)fields->device_id_len);
    teddy_write_bytes(&w, fields->device_id, fields->device_id_len);
    teddy_write_be64(&w, fields->timestamp_ms);
    teddy_write_bytes(&w, fields->nonce, TEDDY_NONCE_SIZE);
    teddy_write_be32(&w, fields->seq);
    teddy_write_be32(&w, (uint32_t)fields->payload_len);
    (void)teddy_write_reserve(&w, fields->payload_len); /* already in place */
    if (w.overflow || w.pos != signed_len) {
        return TEDDY_ERR_BUFFER_TOO_SMALL; /* unreachable: the size was checked above */
    }
    status = teddy_frame_tag(key, topic, topic_len, out, signed_len, out + signed_len);
    if (status != TEDDY_OK) {
        return status;
    }
    *out_len = size;
    return TEDDY_OK;
}

teddy_err_t teddy_frame_parse(const uint8_t *frame, size_t frame_len, teddy_frame_view_t *view)
{
    teddy_reader_t r;
    uint8_t version = 0;
    uint8_t flags = 0;
    uint8_t kind = 0;
    uint8_t id_len = 0;
    const uint8_t *device_id;
    const uint8_t *nonce;
    const uint8_t *payload;
    const uint8_t *tag;
    uint64_t timestamp_ms = 0;
    uint32_t seq = 0;
    uint32_t payload_len = 0;
    size_t signed_len;

    if (!TEDDY_SPAN_OK(frame, frame_len) || view == NULL) {
        return TEDDY_ERR_INVALID_ARG;
    }
    /* rule 1: at least the shortest frame */
    if (frame_len < TEDDY_MIN_FRAME_SIZE) {
        return TEDDY_ERR_MALFORMED;
    }
    r.data = frame;
    r.len = frame_len;
    r.pos = 0;
    if (!teddy_read_u8(&r, &version) || !teddy_read_u8(&r, &flags) || !teddy_read_u8(&r, &kind) ||
        !teddy_read_u8(&r, &id_len)) {
        return TEDDY_ERR_MALFORMED;
    }
    /* rule 2: version, reserved flags, known kind, direction bit = the kind's bit 7 */
    if (version != TEDDY_PROTOCOL_VERSION || (flags & ~FLAG_DIRECTION) != 0 ||
        teddy_kind_check(kind) != TEDDY_OK ||
        (teddy_direction_t)(flags & FLAG_DIRECTION) != teddy_kind_direction(kind)) {
        return TEDDY_ERR_MALFORMED;
    }
    /* rule 3: id length in range and the whole header (68 + L bytes) present */
    if (id_len < TEDDY_DEVICE_ID_MIN_LEN || id_len > TEDDY_DEVICE_ID_MAX_LEN ||
        frame_len < teddy_frame_size(id_len, 0)) {
        return TEDDY_ERR_MALFORMED;
    }
    if (!teddy_read_bytes(&r, id_len, &device_id) || !teddy_read_be64(&r, &timestamp_ms) ||
        !teddy_read_bytes(&r, TEDDY_NONCE_SIZE, &nonce) || !teddy_read_be32(&r, &seq) ||
        !teddy_read_be32(&r, &payload_len)) {
        return TEDDY_ERR_MALFORMED;
    }
    /* rule 4: the id alphabet (any non-ASCII byte is outside it) */
    if (teddy_device_id_check((const char *)device_id, id_len) != TEDDY_OK) {
        return TEDDY_ERR_MALFORMED;
    }
    /* rule 5: 36 + L + P is the frame length less the tag; 64-bit so P cannot wrap */
    signed_len = frame_len - TEDDY_TAG_SIZE;
    if ((uint64_t)r.pos + payload_len != (uint64_t)signed_len) {
        return TEDDY_ERR_MALFORMED;
    }
    if (!teddy_read_bytes(&r, payload_len, &payload) ||
        !teddy_read_bytes(&r, TEDDY_TAG_SIZE, &tag) || r.pos != frame_len) {
        return TEDDY_ERR_MALFORMED;
    }

    view->direction = (teddy_direction_t)(flags & FLAG_DIRECTION);
    view->fields.kind = kind;
    view->fields.device_id = (const char *)device_id;
    view->fields.device_id_len = id_len;
    view->fields.timestamp_ms = timestamp_ms;
    view->fields.nonce = nonce;
    view->fields.seq = seq;
    view->fields.payload = payload;
    view->fields.payload_len = payload_len;
    view->signed_data = frame;
    view->signed_len = signed_len;
    view->tag = tag;
    return TEDDY_OK;
}

teddy_err_t teddy_frame_verify_begin(const char *topic, size_t topic_len, const uint8_t *frame,
                                     size_t frame_len, teddy_direction_t direction,
                                     teddy_frame_view_t *view)
{
    teddy_topic_t parsed;
    teddy_err_t status;

    if (!TEDDY_SPAN_OK(topic, topic_len) || view == NULL ||
        (direction != TEDDY_DIR_UP && direction != TEDDY_DIR_DOWN)) {
        return TEDDY_ERR_INVALID_ARG;
    }
    /* step 1 */
    status = teddy_frame_parse(frame, frame_len, view);
    if (status != TEDDY_OK) {
        return status;
    }
    /* step 2: the topic's shape, then its device id, kind and direction against the frame's
     * and the receiver's */
    status = teddy_topic_parse(topic, topic_len, &parsed);
    if (status != TEDDY_OK) {
        return status;
    }
    if (!same_device(parsed.device_id, parsed.device_id_len, view->fields.device_id,
                     view->fields.device_id_len) ||
        parsed.kind != view->fields.kind || parsed.direction != direction) {
        return TEDDY_ERR_TOPIC_MISMATCH;
    }
    /* step 3 */
    if (view->fields.payload_len > TEDDY_MAX_PAYLOAD_SIZE) {
        return TEDDY_ERR_OVERSIZED;
    }
    return TEDDY_OK;
}

teddy_err_t teddy_frame_verify_finish(const teddy_frame_view_t *view, const char *topic,
                                      size_t topic_len, const uint8_t key[TEDDY_KEY_SIZE],
                                      uint64_t now_ms)
{
    uint8_t expected[TEDDY_TAG_SIZE];
    teddy_err_t status;
    bool equal;

    if (view == NULL || view->tag == NULL || key == NULL) {
        return TEDDY_ERR_INVALID_ARG;
    }
    /* step 4: all 32 bytes, in constant time */
    status = teddy_frame_tag(key, topic, topic_len, view->signed_data, view->signed_len, expected);
    if (status != TEDDY_OK) {
        return status;
    }
    equal = teddy_ct_equal(expected, view->tag, TEDDY_TAG_SIZE);
    teddy_wipe(expected, sizeof expected);
    if (!equal) {
        return TEDDY_ERR_BAD_SIGNATURE;
    }
    /* step 5 */
    return teddy_clock_check(view->fields.timestamp_ms, now_ms);
}

teddy_err_t teddy_frame_verify(const char *topic, size_t topic_len, const uint8_t *frame,
                               size_t frame_len, teddy_direction_t direction,
                               const uint8_t key[TEDDY_KEY_SIZE], uint64_t now_ms,
                               teddy_frame_view_t *view)
{
    teddy_err_t status;
    if (key == NULL) {
        return TEDDY_ERR_INVALID_ARG;
    }
    status = teddy_frame_verify_begin(topic, topic_len, frame, frame_len, direction, view);
    if (status != TEDDY_OK) {
        return status;
    }
    return teddy_frame_verify_finish(view, topic, topic_len, key, now_ms);
}
