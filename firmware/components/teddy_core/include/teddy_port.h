/*
 * What platform code provides to the code around the core (firmware tasks, simulators). The
 * core never calls these: clock readings and random bytes reach it as arguments, so it includes
 * no platform header and runs unchanged in the firmware, the broker plugin and the host tests.
 * An ESP-IDF port implements them with gettimeofday() after SNTP sync, esp_fill_random() and
 * keys read from NVS; a host port with clock_gettime() and getrandom().
 */
#ifndef TEDDY_PORT_H
#define TEDDY_PORT_H

#include "teddy_frame.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Wall-clock Unix time in milliseconds; TEDDY_ERR_STALE while the clock has not been set yet
 * (a toy MUST set its clock, e.g. by SNTP, before it sends frames). */
teddy_err_t teddy_port_now_ms(uint64_t *now_ms);

/* `len` bytes from a cryptographically secure RNG (frame and token nonces). */
teddy_err_t teddy_port_random(uint8_t *out, size_t len);

/* This toy's provisioned keys (32 bytes each): its frame key and its connect key. */
teddy_err_t teddy_port_frame_key(uint8_t key[TEDDY_KEY_SIZE]);
teddy_err_t teddy_port_connect_key(uint8_t key[TEDDY_KEY_SIZE]);

#ifdef __cplusplus
}
#endif

#endif /* TEDDY_PORT_H */
