/*
 * Hand-written checks for what the shared vectors do not reach: argument and buffer errors,
 * clock arithmetic at the ends of uint64_t, HKDF against RFC 5869, topic building, and the
 * order of checks when a frame combines an oversized payload with an over-long topic.
 */
#include <stdio.h>
#include <string.h>

#include "mbedtls/md.h" /* brings in the mbedTLS configuration, for MBEDTLS_HKDF_C */
#if defined(MBEDTLS_HKDF_C)
#include "mbedtls/hkdf.h"
#endif

#include "test_support.h"

static const uint8_t zero_key[TEDDY_KEY_SIZE] = {0};
static const uint8_t nonce16[TEDDY_NONCE_SIZE] = {1, 2,  3,  4,  5,  6,  7,  8,
                                                  9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t nonce8[TEDDY_TOKEN_NONCE_SIZE] = {0xf5, 0x0b, 0x7e, 0x9e,
                                                       0x95, 0xd1, 0x7e, 0x06};

static uint8_t big[TEDDY_MAX_FRAME_SIZE + 64];

static void expect_hex(const uint8_t *bytes, size_t n, const char *want)
{
    char got[256];
    bytes_to_hex(bytes, n, got);
    EXPECT(strcmp(got, want) == 0, "got %s, want %s", got, want);
}

static void hkdf_rfc5869(void)
{
    uint8_t ikm[22];
    uint8_t salt[13];
    uint8_t info[10];
    uint8_t okm[42];
    size_t i;
    memset(ikm, 0x0b, sizeof ikm);
    for (i = 0; i < sizeof salt; i++) {
        salt[i] = (uint8_t)i;
    }
    for (i = 0; i < sizeof info; i++) {
        info[i] = (uint8_t)(0xf0 + i);
    }
    case_begin("unit", "hkdf_rfc5869_case_1");
    EXPECT_ERR(teddy_hkdf_sha256(salt, sizeof salt, ikm, sizeof ikm, info, sizeof info, okm,
                                 sizeof okm),
               TEDDY_OK);
    expect_hex(okm, sizeof okm,
               "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b88718"
               "5865");
    case_end();

    case_begin("unit", "hkdf_rfc5869_case_3_no_salt_no_info");
    EXPECT_ERR(teddy_hkdf_sha256(NULL, 0, ikm, sizeof ikm, NULL, 0, okm, sizeof okm), TEDDY_OK);
    expect_hex(okm, sizeof okm,
               "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a"
               "96c8");
    case_end();

    case_begin("unit", "hkdf_output_limits");
    EXPECT_ERR(teddy_hkdf_sha256(salt, sizeof salt, ikm, sizeof ikm, info, sizeof info, big,
                                 255 * 32),
               TEDDY_OK);
    EXPECT_ERR(teddy_hkdf_sha256(salt, sizeof salt, ikm, sizeof ikm, info, sizeof info, big,
                                 255 * 32 + 1),
               TEDDY_ERR_INVALID_ARG);
    EXPECT_ERR(teddy_hkdf_sha256(salt, sizeof salt, NULL, 5, info, sizeof info, okm, sizeof okm),
               TEDDY_ERR_INVALID_ARG);
    case_end();

#if defined(MBEDTLS_HKDF_C)
    case_begin("unit", "hkdf_matches_mbedtls_hkdf");
    {
        static uint8_t ours[255 * 32];
        static uint8_t theirs[255 * 32];
        static const size_t lengths[] = {1, 31, 32, 33, 64, 65, 100, 255 * 32};
        const mbedtls_md_info_t *sha256 = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
        for (i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
            EXPECT_ERR(teddy_hkdf_sha256(salt, sizeof salt, ikm, sizeof ikm, info, sizeof info,
                                         ours, lengths[i]),
                       TEDDY_OK);
            EXPECT(mbedtls_hkdf(sha256, salt, sizeof salt, ikm, sizeof ikm, info, sizeof info,
                                theirs, lengths[i]) == 0,
                   "mbedtls_hkdf failed");
            EXPECT(memcmp(ours, theirs, lengths[i]) == 0, "differs at length %zu", lengths[i]);
        }
    }
    case_end();
#else
    note("mbedTLS built without MBEDTLS_HKDF_C: no cross-check against mbedtls_hkdf");
#endif
}

static void errors_and_ids(void)
{
    static const struct {
        const char *id;
        teddy_err_t want;
    } ids[] = {
        {"abc", TEDDY_OK},
        {"0123456789abcdefghijklmnopqrstuv", TEDDY_OK},
        {"a_b-c", TEDDY_OK},
        {"9--", TEDDY_OK},
        {"ab", TEDDY_ERR_MALFORMED},
        {"0123456789abcdefghijklmnopqrstuvw", TEDDY_ERR_MALFORMED},
        {"-ab", TEDDY_ERR_MALFORMED},
        {"_ab", TEDDY_ERR_MALFORMED},
        {"aBc", TEDDY_ERR_MALFORMED},
        {"a+c", TEDDY_ERR_MALFORMED},
        {"a#c", TEDDY_ERR_MALFORMED},
        {"a/c", TEDDY_ERR_MALFORMED},
        {"a.c", TEDDY_ERR_MALFORMED},
        {"svc:hub", TEDDY_ERR_MALFORMED},
        {"$sys", TEDDY_ERR_MALFORMED},
        {"caf\xc3\xa9", TEDDY_ERR_MALFORMED},
    };
    teddy_err_t e;
    size_t i;
    size_t j;

    case_begin("unit", "error_reasons");
    for (e = TEDDY_OK; e <= TEDDY_ERR_CRYPTO; e++) {
        EXPECT(strcmp(teddy_err_reason(e), "unknown") != 0, "code %d has no reason", (int)e);
        for (j = 0; j < (size_t)e; j++) {
            EXPECT(strcmp(teddy_err_reason(e), teddy_err_reason((teddy_err_t)j)) != 0,
                   "codes %d and %zu share a reason", (int)e, j);
        }
    }
    EXPECT(strcmp(teddy_err_reason((teddy_err_t)1000), "unknown") == 0, "out of range");
    case_end();

    case_begin("unit", "device_ids");
    for (i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        const char *id = case_copy(ids[i].id, strlen(ids[i].id));
        teddy_err_t got = teddy_device_id_check(id, strlen(ids[i].id));
        EXPECT(got == ids[i].want, "%s: %s", ids[i].id, teddy_err_reason(got));
    }
    EXPECT_ERR(teddy_device_id_check("ab\0", 3), TEDDY_ERR_MALFORMED);
    EXPECT_ERR(teddy_device_id_check(NULL, 0), TEDDY_ERR_MALFORMED);
    EXPECT_ERR(teddy_device_id_check(NULL, 3), TEDDY_ERR_INVALID_ARG);
    case_end();

    case_begin("unit", "kinds");
    {
        uint8_t code = 0;
        unsigned known = 0;
        unsigned c;
        for (c = 0; c < 256; c++) {
            if (teddy_kind_check((uint8_t)c) == TEDDY_OK) {
                known++;
            }
        }
        EXPECT(known == TEDDY_KIND_COUNT, "%u codes known", known);
        EXPECT_ERR(teddy_kind_from_name("PING", 4, &code), TEDDY_ERR_MALFORMED);
        EXPECT_ERR(teddy_kind_from_name("pin", 3, &code), TEDDY_ERR_MALFORMED);
        EXPECT_ERR(teddy_kind_from_name("pingx", 5, &code), TEDDY_ERR_MALFORMED);
        EXPECT_ERR(teddy_kind_at(TEDDY_KIND_COUNT, &code), TEDDY_ERR_INVALID_ARG);
        EXPECT_ERR(teddy_kind_at(0, &code), TEDDY_OK);
        EXPECT(code == TEDDY_KIND_PING, "first kind 0x%02x", code);
    }
    case_end();
}

static void clock_edges(void)
{
    const uint64_t w = TEDDY_CLOCK_WINDOW_MS;
    case_begin("unit", "clock_window_edges_without_wraparound");
    EXPECT_ERR(teddy_clock_check(0, 0), TEDDY_OK);
    EXPECT_ERR(teddy_clock_check(0, w - 1), TEDDY_OK);
    EXPECT_ERR(teddy_clock_check(0, w), TEDDY_OK);
    EXPECT_ERR(teddy_clock_check(0, w + 1), TEDDY_ERR_STALE);
    EXPECT_ERR(teddy_clock_check(w, 0), TEDDY_OK);
    EXPECT_ERR(teddy_clock_check(w + 1, 0), TEDDY_ERR_FUTURE);
    EXPECT_ERR(teddy_clock_check(UINT64_MAX, 0), TEDDY_ERR_FUTURE);
    EXPECT_ERR(teddy_clock_check(0, UINT64_MAX), TEDDY_ERR_STALE);
    EXPECT_ERR(teddy_clock_check(UINT64_MAX, UINT64_MAX), TEDDY_OK);
    EXPECT_ERR(teddy_clock_check(UINT64_MAX, UINT64_MAX - w), TEDDY_OK);
    EXPECT_ERR(teddy_clock_check(UINT64_MAX, UINT64_MAX - w - 1), TEDDY_ERR_FUTURE);
    EXPECT_ERR(teddy_clock_check(UINT64_MAX - w, UINT64_MAX), TEDDY_OK);
    EXPECT_ERR(teddy_clock_check(UINT64_MAX - w - 1, UINT64_MAX), TEDDY_ERR_STALE);
    case_end();
}

static void topics(void)
{
    char out[TEDDY_TOPIC_BUF_SIZE];
    char root32[33];
    char id32[33];
    size_t len = 0;
    teddy_topic_t t;

    memset(root32, 'r', 32);
    root32[32] = '\0';
    memset(id32, 'd', 32);
    id32[32] = '\0';

    case_begin("unit", "topic_build");
    EXPECT_ERR(teddy_topic_build("teddy", 5, "toy-0001", 8, TEDDY_KIND_PING, out, sizeof out, &len),
               TEDDY_OK);
    EXPECT(strcmp(out, "teddy/v1/toy-0001/up/ping") == 0 && len == strlen(out), "%s", out);
    EXPECT_ERR(teddy_topic_build("teddy", 5, "toy-0001", 8, TEDDY_KIND_REPLY_AUDIO, out,
                                 sizeof out, &len),
               TEDDY_OK);
    EXPECT(strcmp(out, "teddy/v1/toy-0001/down/reply_audio") == 0, "%s", out);
    EXPECT_ERR(teddy_topic_downlink_filter("teddy", 5, "toy-0001", 8, out, sizeof out, &len),
               TEDDY_OK);
    EXPECT(strcmp(out, "teddy/v1/toy-0001/down/+") == 0, "%s", out);
    /* the longest topic fills TEDDY_TOPIC_BUF_SIZE exactly */
    EXPECT_ERR(teddy_topic_build(root32, 32, id32, 32, TEDDY_KIND_REPLY_AUDIO, out, sizeof out,
                                 &len),
               TEDDY_OK);
    EXPECT(len == TEDDY_TOPIC_MAX_BUILT_LEN, "longest topic is %zu", len);
    EXPECT_ERR(teddy_topic_build(root32, 32, id32, 32, TEDDY_KIND_REPLY_AUDIO, out,
                                 sizeof out - 1, &len),
               TEDDY_ERR_BUFFER_TOO_SMALL);
    {
        uint8_t code;
        size_t i;
        for (i = 0; teddy_kind_at(i, &code) == TEDDY_OK; i++) {
            EXPECT_ERR(teddy_topic_build(root32, 32, id32, 32, code, out, sizeof out, &len),
                       TEDDY_OK);
        }
    }
    EXPECT_ERR(teddy_topic_build("", 0, "toy", 3, TEDDY_KIND_PING, out, sizeof out, &len),
               TEDDY_ERR_INVALID_ARG);
    EXPECT_ERR(teddy_topic_build("Teddy", 5, "toy", 3, TEDDY_KIND_PING, out, sizeof out, &len),
               TEDDY_ERR_INVALID_ARG);
    EXPECT_ERR(teddy_topic_build("-t", 2, "toy", 3, TEDDY_KIND_PING, out, sizeof out, &len),
               TEDDY_ERR_INVALID_ARG);
    EXPECT_ERR(teddy_topic_build("a/b", 3, "toy", 3, TEDDY_KIND_PING, out, sizeof out, &len),
               TEDDY_ERR_INVALID_ARG);
    EXPECT_ERR(teddy_topic_build("rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr", 33, "toy", 3,
                                 TEDDY_KIND_PING, out, sizeof out, &len),
               TEDDY_ERR_INVALID_ARG);
    EXPECT_ERR(teddy_topic_build("t", 1, "TOY", 3, TEDDY_KIND_PING, out, sizeof out, &len),
               TEDDY_ERR_MALFORMED);
    EXPECT_ERR(teddy_topic_build("t", 1, "toy", 3, 0x00, out, sizeof out, &len),
               TEDDY_ERR_MALFORMED);
    EXPECT_ERR(teddy_topic_build("t", 1, "toy", 3, TEDDY_KIND_PING, NULL, 0, &len),
               TEDDY_ERR_INVALID_ARG);
    case_end();

    case_begin("unit", "topic_parse");
    EXPECT_ERR(teddy_topic_parse("teddy/v1/toy-0001/down/pong", 27, &t), TEDDY_OK);
    EXPECT(span_eq(t.root, t.root_len, "teddy", 5) && span_eq(t.device_id, t.device_id_len,
                                                              "toy-0001", 8) &&
               t.direction == TEDDY_DIR_DOWN && t.kind == TEDDY_KIND_PONG,
           "parts differ");
    /* the root is the receiver's subscription's business, even when empty */
    EXPECT_ERR(teddy_topic_parse("/v1/abc/up/ping", 15, &t), TEDDY_OK);
    EXPECT(t.root_len == 0, "root length %zu", t.root_len);
    EXPECT_ERR(teddy_topic_parse("teddy/v1/abc/up/ping/", 21, &t), TEDDY_ERR_MALFORMED);
    EXPECT_ERR(teddy_topic_parse("teddy/v1/abc/up/", 16, &t), TEDDY_ERR_MALFORMED);
    EXPECT_ERR(teddy_topic_parse("teddy/v1/abc//ping", 18, &t), TEDDY_ERR_MALFORMED);
    EXPECT_ERR(teddy_topic_parse("teddy/v1/abc/up/ping", 19, &t), TEDDY_ERR_MALFORMED);
    EXPECT_ERR(teddy_topic_parse(NULL, 0, &t), TEDDY_ERR_MALFORMED);
    EXPECT_ERR(teddy_topic_parse("teddy/v1/abc/up/ping", 20, NULL), TEDDY_ERR_INVALID_ARG);
    case_end();
}

static teddy_frame_fields_t ping_fields(const char *id, size_t payload_len)
{
    teddy_frame_fields_t f;
    f.kind = TEDDY_KIND_PING;
    f.device_id = id;
    f.device_id_len = strlen(id);
    f.timestamp_ms = 1767225600000ULL;
    f.nonce = nonce16;
    f.seq = 7;
    f.payload = payload_len > 0 ? big : NULL;
    f.payload_len = payload_len;
    return f;
}

static void encode_errors(void)
{
    static uint8_t payload[TEDDY_MAX_PAYLOAD_SIZE + 1];
    static uint8_t out[TEDDY_MAX_FRAME_SIZE + 64];
    static char long_topic[300];
    const char *topic = "teddy/v1/toy-0001/up/ping";
    const char *id32 = "0123456789abcdefghijklmnopqrstuv";
    char topic32[TEDDY_TOPIC_BUF_SIZE];
    size_t topic32_len = 0;
    teddy_frame_fields_t f = ping_fields("toy-0001", 0);
    size_t len = 0;

    case_begin("unit", "encode_errors");
    EXPECT_ERR(teddy_frame_encode(zero_key, topic, strlen(topic), &f, out, sizeof out, &len),
               TEDDY_OK);
    EXPECT(len == 76, "ping is %zu bytes", len);

    f.payload = payload;
    f.payload_len = TEDDY_MAX_PAYLOAD_SIZE + 1;
    EXPECT_ERR(teddy_frame_encode(zero_key, topic, strlen(topic), &f, out, sizeof out, &len),
               TEDDY_ERR_OVERSIZED);

    f = ping_fields(id32, 0);
    f.kind = TEDDY_KIND_AUDIO;
    f.payload = payload;
    f.payload_len = TEDDY_MAX_PAYLOAD_SIZE;
    EXPECT_ERR(teddy_topic_build("teddy", 5, id32, 32, TEDDY_KIND_AUDIO, topic32, sizeof topic32,
                                 &topic32_len),
               TEDDY_OK);
    EXPECT_ERR(teddy_frame_encode(zero_key, topic32, topic32_len, &f, out, TEDDY_MAX_FRAME_SIZE,
                                  &len),
               TEDDY_OK);
    EXPECT(len == TEDDY_MAX_FRAME_SIZE, "largest frame is %zu bytes", len);

    f = ping_fields("toy-0002", 0);
    EXPECT_ERR(teddy_frame_encode(zero_key, topic, strlen(topic), &f, out, sizeof out, &len),
               TEDDY_ERR_TOPIC_MISMATCH);
    f = ping_fields("toy-0001", 0);
    f.kind = TEDDY_KIND_HELLO;
    EXPECT_ERR(teddy_frame_encode(zero_key, topic, strlen(topic), &f, out, sizeof out, &len),
               TEDDY_ERR_TOPIC_MISMATCH);
    f.kind = TEDDY_KIND_PONG;
    EXPECT_ERR(teddy_frame_encode(zero_key, topic, strlen(topic), &f, out, sizeof out, &len),
               TEDDY_ERR_TOPIC_MISMATCH);
    f.kind = 0x04;
    EXPECT_ERR(teddy_frame_encode(zero_key, topic, strlen(topic), &f, out, sizeof out, &len),
               TEDDY_ERR_MALFORMED);
    f = ping_fields("Toy-0001", 0);
    EXPECT_ERR(teddy_frame_encode(zero_key, topic, strlen(topic), &f, out, sizeof out, &len),
               TEDDY_ERR_MALFORMED);
    f = ping_fields("toy-0001", 0);
    EXPECT_ERR(teddy_frame_encode(zero_key, "teddy/v1/toy-0001/up", 20, &f, out, sizeof out, &len),
               TEDDY_ERR_MALFORMED);
    memset(long_topic, 'r', sizeof long_topic);
    memcpy(long_topic + sizeof long_topic - 20, "/v1/toy-0001/up/ping", 20);
    EXPECT_ERR(teddy_frame_encode(zero_key, long_topic, sizeof long_topic, &f, out, sizeof out,
                                  &len),
               TEDDY_ERR_MALFORMED);
    EXPECT_ERR(teddy_frame_encode(zero_key, topic, strlen(topic), &f, out, 75, &len),
               TEDDY_ERR_BUFFER_TOO_SMALL);
    f.nonce = NULL;
    EXPECT_ERR(teddy_frame_encode(zero_key, topic, strlen(topic), &f, out, sizeof out, &len),
               TEDDY_ERR_INVALID_ARG);
    f = ping_fields("toy-0001", 0);
    EXPECT_ERR(teddy_frame_encode(NULL, topic, strlen(topic), &f, out, sizeof out, &len),
               TEDDY_ERR_INVALID_ARG);
    case_end();
}

/* An uplink frame with a 16 385-byte payload and a zero tag, written by hand. */
static size_t oversized_frame(uint8_t *frame)
{
    const char *id = "toy-0001";
    size_t p = TEDDY_MAX_PAYLOAD_SIZE + 1;
    size_t pos = 0;
    frame[pos++] = 1;
    frame[pos++] = 0;
    frame[pos++] = TEDDY_KIND_AUDIO;
    frame[pos++] = 8;
    memcpy(frame + pos, id, 8);
    pos += 8;
    memset(frame + pos, 0, 8 + 16 + 4); /* timestamp 0: stale too */
    pos += 28;
    frame[pos++] = (uint8_t)(p >> 24);
    frame[pos++] = (uint8_t)(p >> 16);
    frame[pos++] = (uint8_t)(p >> 8);
    frame[pos++] = (uint8_t)p;
    memset(frame + pos, 0xaa, p + TEDDY_TAG_SIZE);
    return pos + p + TEDDY_TAG_SIZE;
}

static void verify_order(void)
{
    static char long_topic[300];
    teddy_frame_view_t view;
    size_t len = oversized_frame(big);
    const char *topic = "teddy/v1/toy-0001/up/audio";

    memset(long_topic, 'r', sizeof long_topic);
    memcpy(long_topic + sizeof long_topic - 21, "/v1/toy-0001/up/audio", 21);

    case_begin("unit", "verify_order_size_before_topic_length_and_signature");
    EXPECT_ERR(teddy_frame_parse(big, len, &view), TEDDY_OK);
    EXPECT(view.fields.payload_len == TEDDY_MAX_PAYLOAD_SIZE + 1, "parser caps the payload");
    EXPECT_ERR(teddy_frame_verify(topic, strlen(topic), big, len, TEDDY_DIR_UP, zero_key, 0,
                                  &view),
               TEDDY_ERR_OVERSIZED);
    EXPECT_ERR(teddy_frame_verify(long_topic, sizeof long_topic, big, len, TEDDY_DIR_UP, zero_key,
                                  0, &view),
               TEDDY_ERR_OVERSIZED);
    EXPECT_ERR(teddy_frame_verify(topic, strlen(topic), big, len, TEDDY_DIR_DOWN, zero_key, 0,
                                  &view),
               TEDDY_ERR_TOPIC_MISMATCH);
    EXPECT_ERR(teddy_frame_verify(topic, strlen(topic), big, len, (teddy_direction_t)2, zero_key,
                                  0, &view),
               TEDDY_ERR_INVALID_ARG);
    EXPECT_ERR(teddy_frame_verify(topic, strlen(topic), big, len, TEDDY_DIR_UP, NULL, 0, &view),
               TEDDY_ERR_INVALID_ARG);
    EXPECT_ERR(teddy_frame_verify(topic, strlen(topic), NULL, 0, TEDDY_DIR_UP, zero_key, 0, &view),
               TEDDY_ERR_MALFORMED);
    EXPECT_ERR(teddy_frame_verify(topic, strlen(topic), NULL, 5, TEDDY_DIR_UP, zero_key, 0, &view),
               TEDDY_ERR_INVALID_ARG);
    case_end();
}

static void tokens(void)
{
    char token[TEDDY_TOKEN_BUF_SIZE];
    char small[97];
    size_t len = 0;
    teddy_token_t parsed;
    uint8_t root[TEDDY_KEY_SIZE];

    case_begin("unit", "token_time_extremes");
    EXPECT_ERR(teddy_token_make(zero_key, "abc", 3, 0, nonce8, token, sizeof token, &len),
               TEDDY_OK);
    EXPECT(strncmp(token, "v1.0.f50b7e9e95d17e06.", 22) == 0 && len == 86, "%s", token);
    EXPECT_ERR(teddy_token_verify(zero_key, "abc", 3, "abc", 3, token, len, 0, &parsed), TEDDY_OK);
    EXPECT_ERR(teddy_token_verify(zero_key, "abc", 3, "abc", 3, token, len, 300, &parsed),
               TEDDY_OK);
    EXPECT_ERR(teddy_token_verify(zero_key, "abc", 3, "abc", 3, token, len, 301, &parsed),
               TEDDY_ERR_EXPIRED);
    EXPECT_ERR(teddy_token_verify(zero_key, "abc", 3, "abc", 3, token, len, UINT64_MAX, &parsed),
               TEDDY_ERR_EXPIRED);
    EXPECT_ERR(teddy_token_make(zero_key, "abc", 3, TEDDY_TOKEN_MAX_TIMESTAMP_S, nonce8, token,
                                sizeof token, &len),
               TEDDY_OK);
    EXPECT(len == 96, "longest token is %zu characters", len);
    EXPECT_ERR(teddy_token_verify(zero_key, "abc", 3, "abc", 3, token, len, 0, &parsed),
               TEDDY_ERR_FUTURE);
    EXPECT_ERR(teddy_token_verify(zero_key, "abc", 3, "abc", 3, token, len, UINT64_MAX, &parsed),
               TEDDY_ERR_EXPIRED);
    EXPECT_ERR(teddy_token_verify(zero_key, "abc", 3, "abc", 3, token, len,
                                  TEDDY_TOKEN_MAX_TIMESTAMP_S, &parsed),
               TEDDY_OK);
    EXPECT(parsed.timestamp_s == TEDDY_TOKEN_MAX_TIMESTAMP_S, "timestamp");
    EXPECT_ERR(teddy_token_make(zero_key, "abc", 3, TEDDY_TOKEN_MAX_TIMESTAMP_S + 1, nonce8,
                                token, sizeof token, &len),
               TEDDY_ERR_INVALID_ARG);
    case_end();

    case_begin("unit", "token_arguments");
    memset(small, 0, sizeof small);
    EXPECT_ERR(teddy_token_make(zero_key, "abc", 3, 1767225600, nonce8, small, 96, &len),
               TEDDY_OK); /* 95 characters and the NUL */
    EXPECT(len == 95, "token is %zu characters", len);
    EXPECT_ERR(teddy_token_make(zero_key, "abc", 3, 1767225600, nonce8, token, 95, &len),
               TEDDY_ERR_BUFFER_TOO_SMALL);
    EXPECT_ERR(teddy_token_make(zero_key, "ab", 2, 1767225600, nonce8, token, sizeof token, &len),
               TEDDY_ERR_MALFORMED);
    EXPECT_ERR(teddy_token_make(zero_key, "abc", 3, 1767225600, NULL, token, sizeof token, &len),
               TEDDY_ERR_INVALID_ARG);
    EXPECT_ERR(teddy_token_verify(zero_key, NULL, 0, NULL, 0, small, strlen(small), 0, NULL),
               TEDDY_ERR_MALFORMED);
    EXPECT_ERR(teddy_token_verify(zero_key, "svc:hub", 7, "svc:hub", 7, small, strlen(small), 0,
                                  NULL),
               TEDDY_ERR_MALFORMED);
    EXPECT_ERR(teddy_token_verify(zero_key, "abc", 3, "abd", 3, "", 0, 0, NULL),
               TEDDY_ERR_ID_MISMATCH);
    EXPECT_ERR(teddy_token_verify(zero_key, "abc", 3, "abcd", 4, "", 0, 0, NULL),
               TEDDY_ERR_ID_MISMATCH);
    EXPECT_ERR(teddy_token_parse("v1.1.0011223344556677.", 22, &parsed), TEDDY_ERR_MALFORMED);
    EXPECT_ERR(teddy_token_parse(small, strlen(small), &parsed), TEDDY_OK);
    EXPECT_ERR(teddy_token_parse(small, strlen(small) - 1, &parsed), TEDDY_ERR_MALFORMED);
    EXPECT_ERR(teddy_token_parse(NULL, 0, &parsed), TEDDY_ERR_MALFORMED);
    EXPECT_ERR(teddy_token_parse(small, strlen(small), NULL), TEDDY_ERR_INVALID_ARG);
    /* with the root, the key comes from the username */
    EXPECT_ERR(teddy_derive_connect_root((const uint8_t *)"fleet", 5, root), TEDDY_OK);
    {
        uint8_t key[TEDDY_KEY_SIZE];
        EXPECT_ERR(teddy_derive_connect_key(root, "abc", 3, key), TEDDY_OK);
        EXPECT_ERR(teddy_token_make(key, "abc", 3, 1767225600, nonce8, token, sizeof token, &len),
                   TEDDY_OK);
        EXPECT_ERR(teddy_token_verify_with_root(root, "abc", 3, "abc", 3, token, len, 1767225600,
                                                NULL),
                   TEDDY_OK);
        EXPECT_ERR(teddy_token_verify_with_root(root, "abd", 3, "abd", 3, token, len, 1767225600,
                                                NULL),
                   TEDDY_ERR_BAD_SIGNATURE);
        EXPECT_ERR(teddy_derive_connect_key(root, "a/c", 3, key), TEDDY_ERR_MALFORMED);
    }
    case_end();
}

static void services(void)
{
    uint8_t root[TEDDY_KEY_SIZE];
    char password[TEDDY_SERVICE_PASSWORD_BUF_SIZE];
    char upper[TEDDY_SERVICE_PASSWORD_BUF_SIZE];
    size_t len = 0;
    size_t i;

    case_begin("unit", "service_accounts");
    EXPECT_ERR(teddy_derive_connect_root((const uint8_t *)"fleet", 5, root), TEDDY_OK);
    EXPECT_ERR(teddy_service_password(root, "hub", 3, password, sizeof password, &len), TEDDY_OK);
    EXPECT(len == 64 && strlen(password) == 64, "password length %zu", len);
    EXPECT_ERR(teddy_service_verify(root, "svc:hub", 7, password, len), TEDDY_OK);
    EXPECT_ERR(teddy_service_verify(root, "svc:hub", 7, password, len - 1),
               TEDDY_ERR_BAD_SIGNATURE);
    EXPECT_ERR(teddy_service_verify(root, "svc:hub", 7, NULL, 0), TEDDY_ERR_BAD_SIGNATURE);
    for (i = 0; i <= len; i++) {
        upper[i] = (password[i] >= 'a' && password[i] <= 'f') ? (char)(password[i] - 32)
                                                               : password[i];
    }
    EXPECT_ERR(teddy_service_verify(root, "svc:hub", 7, upper, len), TEDDY_ERR_BAD_SIGNATURE);
    EXPECT_ERR(teddy_service_verify(root, "hub", 3, password, len), TEDDY_ERR_UNKNOWN_SERVICE);
    EXPECT_ERR(teddy_service_verify(root, "svc:", 4, password, len), TEDDY_ERR_UNKNOWN_SERVICE);
    EXPECT_ERR(teddy_service_verify(root, "svc:hubx", 8, password, len),
               TEDDY_ERR_UNKNOWN_SERVICE);
    EXPECT_ERR(teddy_service_verify(root, "SVC:hub", 7, password, len), TEDDY_ERR_UNKNOWN_SERVICE);
    EXPECT_ERR(teddy_service_password(root, "root", 4, password, sizeof password, &len),
               TEDDY_ERR_UNKNOWN_SERVICE);
    EXPECT_ERR(teddy_service_password(root, "api", 3, password, 64, &len),
               TEDDY_ERR_BUFFER_TOO_SMALL);
    EXPECT(teddy_username_is_service("svc:", 4) && !teddy_username_is_service("svc", 3) &&
               !teddy_username_is_service(NULL, 0),
           "service username prefix");
    case_end();
}

void run_unit_tests(void)
{
    hkdf_rfc5869();
    errors_and_ids();
    clock_edges();
    topics();
    encode_errors();
    verify_order();
    tokens();
    services();
}
