/*
 * libFuzzer target over every parser of the core (make fuzz, needs clang). The input is split
 * as: 1 byte n, then n bytes of topic, then the frame; the whole input is also tried as a
 * topic, a connect token and a service login. Nothing may crash, read out of bounds or accept:
 * with a key no attacker knows, no input verifies.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "teddy_core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[TEDDY_KEY_SIZE] = {0x5e, 0xc2, 0xe7};
    teddy_frame_view_t view;
    teddy_topic_t topic;
    teddy_token_t token;
    const char *text = (const char *)data;
    size_t topic_len = size > 0 ? data[0] : 0;

    if (size > 0 && topic_len <= size - 1) {
        const char *topic_text = (const char *)data + 1;
        const uint8_t *frame = data + 1 + topic_len;
        size_t frame_len = size - 1 - topic_len;
        if (teddy_frame_verify(topic_text, topic_len, frame, frame_len, TEDDY_DIR_UP, key,
                               1767225600000ULL, &view) == TEDDY_OK ||
            teddy_frame_verify(topic_text, topic_len, frame, frame_len, TEDDY_DIR_DOWN, key,
                               1767225600000ULL, &view) == TEDDY_OK) {
            abort();
        }
        (void)teddy_frame_parse(frame, frame_len, &view);
    }
    (void)teddy_topic_parse(text, size, &topic);
    (void)teddy_token_parse(text, size, &token);
    if (teddy_token_verify(key, "toy-0001", 8, "toy-0001", 8, text, size, 1767225600, &token) ==
            TEDDY_OK ||
        teddy_service_verify(key, "svc:hub", 7, text, size) == TEDDY_OK) {
        abort();
    }
    return 0;
}
