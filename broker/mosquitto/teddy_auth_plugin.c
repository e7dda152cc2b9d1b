/*
 * Teddy Hub's Mosquitto plugin (plugin API v5, Mosquitto 2.0): device connect tokens, service
 * accounts and the per-device topic rules of broker/acl.py, on top of the portable C core
 * (firmware/components/teddy_core). The broker holds the connect root only (docs/protocol.md,
 * "Key hierarchy"): it derives each toy's connect key, never a frame key.
 *
 * Options (mosquitto.conf):
 *   plugin_opt_connect_root_file   file with the 64-hex connect root (required)
 *   plugin_opt_topic_root          topic root, default "teddy"
 *   plugin_opt_revocation_file     revoked device ids, one a line, '#' comments (optional);
 *                                  re-read when its mtime, size or inode changes, looked at
 *                                  no more than every 2 s (from logins and MOSQ_EVT_TICK)
 *   plugin_opt_allow_anonymous     "true" lets clients without a username do anything:
 *                                  development only, never in production (default false)
 *   plugin_opt_replay_capacity     slots of the replay table (default 131072, fixed at start)
 *
 * Everything runs on Mosquitto's single broker thread: no locks, no network calls, and the only
 * file access is a stat() of the revocation file at most every 2 s (plus a read when it changed).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "teddy_core.h"

/* Built with -fvisibility=hidden (the core's symbols stay private): export the entry points. */
#define TEDDY_EXPORT __attribute__((visibility("default")))

#define REVOCATION_CHECK_MS 2000
#define REVOCATION_FILE_MAX_BYTES (64L * 1024 * 1024)
#define REPLAY_DEFAULT_CAPACITY 131072u
#define REPLAY_MAX_CAPACITY (1u << 24)
#define REPLAY_MAX_PROBE 512u
/* Live replay entries (tokens accepted in the last TEDDY_TOKEN_REPLAY_TTL_S) one device may hold;
 * a login beyond it is refused for that device alone, so one toy cannot fill the table. */
#define REPLAY_MAX_PER_DEVICE 32u
#define LOG_FIELD_MAX 64

typedef enum { ROLE_DEVICE, ROLE_HUB, ROLE_API, ROLE_NONE } role_t;
typedef enum { ACTION_PUBLISH, ACTION_SUBSCRIBE, ACTION_RECEIVE } action_t;

/* One accepted (device id, token nonce); expires_s == 0 marks a slot never used. */
typedef struct {
    int64_t expires_s;
    uint8_t nonce[TEDDY_TOKEN_NONCE_SIZE];
    uint8_t id_len;
    char id[TEDDY_DEVICE_ID_MAX_LEN];
} replay_entry_t;

typedef struct {
    char id[TEDDY_DEVICE_ID_BUF_SIZE];
} revoked_id_t;

typedef struct {
    mosquitto_plugin_id_t *pid;
    uint8_t connect_root[TEDDY_KEY_SIZE];
    char topic_root[TEDDY_TOPIC_ROOT_MAX_LEN + 1];
    size_t topic_root_len;
    bool allow_anonymous;
    bool tick_registered;

    char *revocation_file; /* NULL: nobody is ever revoked */
    revoked_id_t *revoked; /* sorted by strcmp */
    size_t revoked_count;
    bool revocation_stamp_valid;
    struct timespec revocation_mtime;
    off_t revocation_size;
    ino_t revocation_inode;
    dev_t revocation_device;
    int64_t revocation_checked_ms;
    bool started;          /* past plugin init: a change of the list may concern connected toys */
    revoked_id_t *kicks;   /* newly revoked ids whose connections the next tick closes */
    size_t kick_count;

    replay_entry_t *replay; /* fixed at start: replay_mask + 1 slots */
    size_t replay_mask;
    uint64_t replay_seed;
} plugin_t;

/* ---- small helpers ---- */

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int64_t monotonic_s(void)
{
    return monotonic_ms() / 1000;
}

/* Client ids and usernames are attacker-chosen: at most 64 characters, non-printables escaped. */
static void loggable(const char *value, char *out, size_t out_size)
{
    size_t used = 0;
    if (value == NULL) {
        snprintf(out, out_size, "(none)");
        return;
    }
    for (size_t i = 0; value[i] != '\0' && i < LOG_FIELD_MAX && used + 5 < out_size; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[used++] = (char)c;
        } else {
            used += (size_t)snprintf(out + used, out_size - used, "\\x%02x", c);
        }
    }
    out[used] = '\0';
}

static int refuse(const char *reason, const char *detail, const char *client_id,
                  const char *username)
{
    char id_text[LOG_FIELD_MAX * 4 + 8];
    char user_text[LOG_FIELD_MAX * 4 + 8];
    loggable(client_id, id_text, sizeof id_text);
    loggable(username, user_text, sizeof user_text);
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "teddy_auth: login refused: reason=%s detail=\"%s\" client_id=\"%s\" "
                         "username=\"%s\"",
                         reason, detail, id_text, user_text);
    return MOSQ_ERR_AUTH;
}

static bool has_topic_characters(const char *value)
{
    return strpbrk(value, "+#/") != NULL;
}

static bool option_true(const char *value)
{
    return strcmp(value, "true") == 0 || strcmp(value, "1") == 0 || strcmp(value, "yes") == 0;
}

static bool topic_root_valid(const char *root, size_t len)
{
    /* hub.protocol.topics.TOPIC_ROOT_PATTERN: [a-z0-9][a-z0-9_-]{0,31} */
    if (len == 0 || len > TEDDY_TOPIC_ROOT_MAX_LEN) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = root[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '-'))) {
            return false;
        }
    }
    return true;
}

static int hex_value(char c)
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

static int read_connect_root(const char *path, uint8_t root[TEDDY_KEY_SIZE])
{
    char text[256];
    size_t len, start = 0, digits = 0;
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "teddy_auth: cannot open connect root file %s: %s",
                             path, strerror(errno));
        return MOSQ_ERR_INVAL;
    }
    len = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[len] = '\0';
    while (start < len && isspace((unsigned char)text[start])) {
        start++;
    }
    while (len > start && isspace((unsigned char)text[len - 1])) {
        len--;
    }
    if (len - start != 2 * TEDDY_KEY_SIZE) {
        mosquitto_log_printf(MOSQ_LOG_ERR,
                             "teddy_auth: %s must hold the connect root as 64 hex characters",
                             path);
        return MOSQ_ERR_INVAL;
    }
    for (size_t i = 0; i < TEDDY_KEY_SIZE; i++) {
        int high = hex_value(text[start + 2 * i]);
        int low = hex_value(text[start + 2 * i + 1]);
        if (high < 0 || low < 0) {
            mosquitto_log_printf(MOSQ_LOG_ERR, "teddy_auth: %s is not hex", path);
            return MOSQ_ERR_INVAL;
        }
        root[i] = (uint8_t)((high << 4) | low);
        digits += 2;
    }
    memset(text, 0, sizeof text);
    return digits == 2 * TEDDY_KEY_SIZE ? MOSQ_ERR_SUCCESS : MOSQ_ERR_INVAL;
}

/* ---- revocation list ---- */

static int compare_revoked(const void *a, const void *b)
{
    return strcmp(((const revoked_id_t *)a)->id, ((const revoked_id_t *)b)->id);
}

static bool is_revoked(const plugin_t *plugin, const char *device_id)
{
    revoked_id_t key;
    size_t len = strlen(device_id);
    if (plugin->revoked_count == 0 || len > TEDDY_DEVICE_ID_MAX_LEN) {
        return false;
    }
    memcpy(key.id, device_id, len + 1);
    return bsearch(&key, plugin->revoked, plugin->revoked_count, sizeof key, compare_revoked) !=
           NULL;
}

/* Remembers the ids of `ids` not in the current list, for the next tick to disconnect (kicking
 * from inside a login could hit the very client being checked). Needs MOSQ_EVT_TICK. */
static void queue_kicks(plugin_t *plugin, const revoked_id_t *ids, size_t count)
{
    size_t fresh = 0;
    revoked_id_t *kicks;
    if (!plugin->started || !plugin->tick_registered) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        fresh += !is_revoked(plugin, ids[i].id);
    }
    if (fresh == 0) {
        return;
    }
    kicks = mosquitto_realloc(plugin->kicks, (plugin->kick_count + fresh) * sizeof *kicks);
    if (kicks == NULL) {
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "teddy_auth: out of memory: newly revoked toys stay connected");
        return;
    }
    plugin->kicks = kicks;
    for (size_t i = 0; i < count; i++) {
        if (!is_revoked(plugin, ids[i].id)) {
            kicks[plugin->kick_count++] = ids[i];
        }
    }
}

static void replace_revoked(plugin_t *plugin, revoked_id_t *ids, size_t count)
{
    mosquitto_free(plugin->revoked);
    plugin->revoked = ids;
    plugin->revoked_count = count;
}

/*
 * Parses the `len` bytes of `text` into a new sorted list; false when out of memory. Goes by
 * length, never by NUL: a NUL (like any byte outside the device-id alphabet) makes its line not a
 * device id, and the lines after it are still read.
 */
static bool parse_revocations(plugin_t *plugin, const char *text, size_t len)
{
    size_t lines = 1, count = 0, skipped = 0;
    revoked_id_t *ids;
    const char *cursor = text;
    const char *text_end = text + len;
    for (size_t i = 0; i < len; i++) {
        lines += text[i] == '\n';
    }
    ids = mosquitto_calloc(lines, sizeof *ids);
    if (ids == NULL) {
        return false;
    }
    while (cursor < text_end) {
        const char *end = memchr(cursor, '\n', (size_t)(text_end - cursor));
        const char *next = end != NULL ? end + 1 : text_end;
        size_t line_len = (size_t)((end != NULL ? end : text_end) - cursor);
        while (line_len > 0 && isspace((unsigned char)*cursor)) {
            cursor++;
            line_len--;
        }
        while (line_len > 0 && isspace((unsigned char)cursor[line_len - 1])) {
            line_len--;
        }
        if (line_len > 0 && cursor[0] != '#') {
            /* teddy_device_id_check refuses every byte outside the alphabet, NUL included. */
            if (teddy_device_id_check(cursor, line_len) == TEDDY_OK) {
                memcpy(ids[count].id, cursor, line_len);
                ids[count].id[line_len] = '\0';
                count++;
            } else {
                skipped++;
            }
        }
        cursor = next;
    }
    qsort(ids, count, sizeof *ids, compare_revoked);
    queue_kicks(plugin, ids, count);
    replace_revoked(plugin, ids, count);
    mosquitto_log_printf(MOSQ_LOG_INFO,
                         "teddy_auth: revocation list loaded: %lu revoked, %lu lines skipped "
                         "(not a device id)",
                         (unsigned long)count, (unsigned long)skipped);
    return true;
}

/* Re-reads the revocation file if it changed; on a read error the last list stays in force. */
static void revocations_reload(plugin_t *plugin)
{
    struct stat status;
    FILE *file;
    char *text;
    size_t len;
    if (plugin->revocation_file == NULL) {
        return;
    }
    if (stat(plugin->revocation_file, &status) != 0) {
        if (errno == ENOENT) {
            /* As hub.revocation.FileRevocations: a missing file means nobody is revoked. */
            if (plugin->revocation_stamp_valid || plugin->revoked_count > 0) {
                mosquitto_log_printf(MOSQ_LOG_WARNING,
                                     "teddy_auth: revocation file %s is gone: nobody is revoked",
                                     plugin->revocation_file);
            }
            replace_revoked(plugin, NULL, 0);
            plugin->revocation_stamp_valid = false;
        } else {
            mosquitto_log_printf(MOSQ_LOG_WARNING,
                                 "teddy_auth: cannot stat revocation file %s (%s): keeping the "
                                 "last list",
                                 plugin->revocation_file, strerror(errno));
        }
        return;
    }
    if (plugin->revocation_stamp_valid && status.st_mtim.tv_sec == plugin->revocation_mtime.tv_sec &&
        status.st_mtim.tv_nsec == plugin->revocation_mtime.tv_nsec &&
        status.st_size == plugin->revocation_size && status.st_ino == plugin->revocation_inode &&
        status.st_dev == plugin->revocation_device) {
        return;
    }
    if (status.st_size > REVOCATION_FILE_MAX_BYTES) {
        mosquitto_log_printf(MOSQ_LOG_ERR,
                             "teddy_auth: revocation file %s is over %ld bytes: keeping the "
                             "last list",
                             plugin->revocation_file, REVOCATION_FILE_MAX_BYTES);
        return;
    }
    file = fopen(plugin->revocation_file, "r");
    if (file == NULL) {
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "teddy_auth: cannot open revocation file %s (%s): keeping the last "
                             "list",
                             plugin->revocation_file, strerror(errno));
        return;
    }
    text = mosquitto_malloc((size_t)status.st_size + 1);
    if (text == NULL) {
        fclose(file);
        return;
    }
    len = fread(text, 1, (size_t)status.st_size, file);
    fclose(file);
    if (parse_revocations(plugin, text, len)) {
        plugin->revocation_stamp_valid = true;
        plugin->revocation_mtime = status.st_mtim;
        plugin->revocation_size = status.st_size;
        plugin->revocation_inode = status.st_ino;
        plugin->revocation_device = status.st_dev;
    }
    mosquitto_free(text);
}

static void revocations_maybe_reload(plugin_t *plugin)
{
    int64_t now = monotonic_ms();
    if (now - plugin->revocation_checked_ms >= REVOCATION_CHECK_MS) {
        plugin->revocation_checked_ms = now;
        revocations_reload(plugin);
    }
}

/* ---- replay table: open addressing, fixed size, expired slots reused ---- */

/* Keyed by the device id alone (seeded): all of a device's entries share one probe sequence, so a
 * probe sees every live entry of the device and can count them. */
static uint64_t replay_hash(const plugin_t *plugin, const char *id, size_t id_len)
{
    uint64_t hash = 0xcbf29ce484222325ULL ^ plugin->replay_seed;
    for (size_t i = 0; i < id_len; i++) {
        hash = (hash ^ (uint8_t)id[i]) * 0x100000001b3ULL;
    }
    hash ^= hash >> 29;
    hash *= 0xbf58476d1ce4e5b9ULL;
    hash ^= hash >> 32;
    return hash;
}

typedef enum { CLAIM_FRESH, CLAIM_REPLAY, CLAIM_TOO_MANY, CLAIM_FULL } claim_t;

/*
 * Remembers (id, nonce) until now + ttl. A slot is free when never used or expired; an entry sits
 * at most REPLAY_MAX_PROBE slots after the hash of its id, and a never-used slot ends every probe
 * (slots never return to never-used, so no live entry lies beyond one). The probe therefore
 * passes every live entry of `id`: with REPLAY_MAX_PER_DEVICE of them the login is refused
 * (CLAIM_TOO_MANY) without taking a slot, before the table can count as full. At most
 * REPLAY_MAX_PROBE slots are read per login, whatever the table size.
 */
static claim_t replay_claim(plugin_t *plugin, const char *id, size_t id_len,
                            const uint8_t nonce[TEDDY_TOKEN_NONCE_SIZE], int64_t now_s,
                            int64_t ttl_s)
{
    size_t start = (size_t)replay_hash(plugin, id, id_len);
    size_t probes = plugin->replay_mask + 1 < REPLAY_MAX_PROBE ? plugin->replay_mask + 1
                                                               : REPLAY_MAX_PROBE;
    replay_entry_t *free_slot = NULL;
    size_t live_of_id = 0;
    for (size_t i = 0; i < probes; i++) {
        replay_entry_t *slot = &plugin->replay[(start + i) & plugin->replay_mask];
        if (slot->expires_s == 0) {
            if (free_slot == NULL) {
                free_slot = slot;
            }
            break;
        }
        if (slot->expires_s <= now_s) {
            if (free_slot == NULL) {
                free_slot = slot;
            }
            continue;
        }
        if (slot->id_len == id_len && memcmp(slot->id, id, id_len) == 0) {
            if (memcmp(slot->nonce, nonce, TEDDY_TOKEN_NONCE_SIZE) == 0) {
                return CLAIM_REPLAY;
            }
            live_of_id++;
        }
    }
    if (live_of_id >= REPLAY_MAX_PER_DEVICE) {
        return CLAIM_TOO_MANY;
    }
    if (free_slot == NULL) {
        return CLAIM_FULL;
    }
    free_slot->expires_s = now_s + ttl_s;
    memcpy(free_slot->nonce, nonce, TEDDY_TOKEN_NONCE_SIZE);
    free_slot->id_len = (uint8_t)id_len;
    memcpy(free_slot->id, id, id_len);
    return CLAIM_FRESH;
}

static uint64_t random_seed(void)
{
    uint64_t seed = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd >= 0) {
        if (read(fd, &seed, sizeof seed) != (ssize_t)sizeof seed) {
            seed = 0;
        }
        close(fd);
    }
    return seed ^ (uint64_t)monotonic_ms() ^ ((uint64_t)getpid() << 32);
}

/* ---- logins ---- */

/* A service's client id: only [a-z0-9:_-] (so never '+', '#' or '/'), as broker/auth.py. */
static bool service_client_id_valid(const char *client_id)
{
    for (size_t i = 0; client_id[i] != '\0'; i++) {
        char c = client_id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ':' || c == '_' ||
              c == '-')) {
            return false;
        }
    }
    return true;
}

static int login_service(plugin_t *plugin, const char *client_id, const char *username,
                         const char *password, size_t password_len)
{
    size_t username_len = strlen(username);
    teddy_err_t err = teddy_service_verify(plugin->connect_root, username, username_len, password,
                                           password_len);
    if (err != TEDDY_OK) {
        return refuse(teddy_err_reason(err), "service login", client_id, username);
    }
    if (!service_client_id_valid(client_id)) {
        return refuse("malformed", "a service's client id must be of a-z, 0-9, ':', '_', '-'",
                      client_id, username);
    }
    if (strcmp(client_id, username) != 0 &&
        !(strncmp(client_id, username, username_len) == 0 && client_id[username_len] == '-')) {
        return refuse("id_mismatch", "a service's client id must start with its username",
                      client_id, username);
    }
    return MOSQ_ERR_SUCCESS;
}

static int login_device(plugin_t *plugin, const char *client_id, const char *username,
                        const char *password, size_t password_len)
{
    teddy_token_t token;
    time_t wall = time(NULL);
    size_t username_len = strlen(username);
    teddy_err_t err = teddy_token_verify_with_root(
        plugin->connect_root, username, username_len, client_id, strlen(client_id), password,
        password_len, wall > 0 ? (uint64_t)wall : 0, &token);
    if (err != TEDDY_OK) {
        return refuse(teddy_err_reason(err), "connect token", client_id, username);
    }
    switch (replay_claim(plugin, username, username_len, token.nonce, monotonic_s(),
                         TEDDY_TOKEN_REPLAY_TTL_S)) {
    case CLAIM_FRESH:
        break;
    case CLAIM_REPLAY:
        return refuse("replay", "token already used", client_id, username);
    case CLAIM_TOO_MANY:
        return refuse("replay", "too many logins", client_id, username);
    case CLAIM_FULL:
    default:
        return refuse("replay", "replay cache full", client_id, username);
    }
    if (is_revoked(plugin, username)) {
        return refuse("revoked", "device is revoked", client_id, username);
    }
    return MOSQ_ERR_SUCCESS;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_basic_auth *auth = event_data;
    plugin_t *plugin = userdata;
    const char *client_id = mosquitto_client_id(auth->client);
    const char *username = auth->username;
    const char *password = auth->password != NULL ? auth->password : "";
    /*
     * The MQTT password is binary with an explicit length, but Mosquitto 2.0 drops that length
     * (checked for 2.0.11: handle_connect.c reads the field with packet__read_binary into a
     * buffer of length + 1 with a NUL appended, keeps only the pointer in context->password,
     * and struct mosquitto_evt_basic_auth has just `char *password`; no mosquitto_client_* call
     * returns a length, and the buffer's size is unknown, so nothing past the first NUL may be
     * read). strlen is therefore all there is: "<valid token>\0junk" arrives as the valid token
     * and is accepted. It cannot be refused here, but it needs the valid token itself (and spends
     * its nonce), so it grants nothing the token alone does not. Every check below takes
     * password_len, so a Mosquitto that passes the real length needs only this line changed.
     */
    size_t password_len = strlen(password);
    (void)event;

    revocations_maybe_reload(plugin);
    if (client_id == NULL) {
        client_id = "";
    }
    if (username == NULL) {
        if (plugin->allow_anonymous) {
            return MOSQ_ERR_SUCCESS;
        }
        return refuse("anonymous", "anonymous logins are off", client_id, username);
    }
    if (has_topic_characters(client_id) || has_topic_characters(username)) {
        return refuse("malformed", "client id or username contains '+', '#' or '/'", client_id,
                      username);
    }
    if (teddy_username_is_service(username, strlen(username))) {
        return login_service(plugin, client_id, username, password, password_len);
    }
    return login_device(plugin, client_id, username, password, password_len);
}

/* ---- topic rules: broker/acl.py ---- */

/* "<root>/v1/<valid id>/<up|down>/<kind of that direction>", no wildcard anywhere. When
 * `device_id` is not NULL the id level must equal it. */
static bool is_frame_topic(const plugin_t *plugin, const char *topic, teddy_direction_t direction,
                           const char *device_id)
{
    const char *levels[5];
    size_t lengths[5];
    size_t count = 0;
    const char *cursor = topic;
    const char *segment = direction == TEDDY_DIR_UP ? "up" : "down";
    uint8_t code;
    for (;;) {
        const char *slash = strchr(cursor, '/');
        if (count == 5) {
            return false;
        }
        levels[count] = cursor;
        lengths[count] = slash != NULL ? (size_t)(slash - cursor) : strlen(cursor);
        count++;
        if (slash == NULL) {
            break;
        }
        cursor = slash + 1;
    }
    if (count != 5) {
        return false;
    }
    if (lengths[0] != plugin->topic_root_len ||
        memcmp(levels[0], plugin->topic_root, lengths[0]) != 0) {
        return false;
    }
    if (lengths[1] != strlen(TEDDY_TOPIC_VERSION) ||
        memcmp(levels[1], TEDDY_TOPIC_VERSION, lengths[1]) != 0) {
        return false;
    }
    if (teddy_device_id_check(levels[2], lengths[2]) != TEDDY_OK) {
        return false;
    }
    if (device_id != NULL &&
        (lengths[2] != strlen(device_id) || memcmp(levels[2], device_id, lengths[2]) != 0)) {
        return false;
    }
    if (lengths[3] != strlen(segment) || memcmp(levels[3], segment, lengths[3]) != 0) {
        return false;
    }
    return teddy_kind_from_name(levels[4], lengths[4], &code) == TEDDY_OK &&
           teddy_kind_direction(code) == direction;
}

/* True when `topic` starts with "<root>/v1/<device_id>/down/"; *rest is what follows. */
static bool own_downlink_prefix(const plugin_t *plugin, const char *topic, const char *device_id,
                                const char **rest)
{
    size_t id_len = strlen(device_id);
    const char *cursor = topic;
    if (strncmp(cursor, plugin->topic_root, plugin->topic_root_len) != 0) {
        return false;
    }
    cursor += plugin->topic_root_len;
    if (strncmp(cursor, "/" TEDDY_TOPIC_VERSION "/", 4) != 0) {
        return false;
    }
    cursor += 4;
    if (strncmp(cursor, device_id, id_len) != 0) {
        return false;
    }
    cursor += id_len;
    if (strncmp(cursor, "/down/", 6) != 0) {
        return false;
    }
    *rest = cursor + 6;
    return true;
}

static bool device_allowed(const plugin_t *plugin, const char *device_id, const char *topic,
                           action_t action)
{
    const char *rest;
    if (action == ACTION_PUBLISH) {
        return is_frame_topic(plugin, topic, TEDDY_DIR_UP, device_id);
    }
    if (!own_downlink_prefix(plugin, topic, device_id, &rest)) {
        return false;
    }
    if (action == ACTION_SUBSCRIBE && (strcmp(rest, "+") == 0 || strcmp(rest, "#") == 0)) {
        return true;
    }
    return is_frame_topic(plugin, topic, TEDDY_DIR_DOWN, device_id);
}

/* The filter inside "$share/<group>/...", or the filter itself ("" for a malformed share). */
static const char *unshared(const char *filter)
{
    const char *group, *slash;
    if (strncmp(filter, "$share/", 7) != 0) {
        return filter;
    }
    group = filter + 7;
    slash = strchr(group, '/');
    if (slash == NULL || slash == group) {
        return "";
    }
    return slash + 1;
}

static bool hub_uplink_filter(const plugin_t *plugin, const char *filter)
{
    const char *cursor = unshared(filter);
    if (strncmp(cursor, plugin->topic_root, plugin->topic_root_len) != 0) {
        return false;
    }
    return strcmp(cursor + plugin->topic_root_len, "/" TEDDY_TOPIC_VERSION "/+/up/+") == 0;
}

static bool is_allowed(const plugin_t *plugin, role_t role, const char *name, const char *topic,
                       action_t action)
{
    if (role == ROLE_DEVICE) {
        return device_allowed(plugin, name, topic, action);
    }
    if (action == ACTION_PUBLISH) {
        return (role == ROLE_HUB || role == ROLE_API) &&
               is_frame_topic(plugin, topic, TEDDY_DIR_DOWN, NULL);
    }
    if (role == ROLE_HUB) {
        if (action == ACTION_SUBSCRIBE) {
            return hub_uplink_filter(plugin, topic);
        }
        return is_frame_topic(plugin, topic, TEDDY_DIR_UP, NULL);
    }
    return false;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_acl_check *check = event_data;
    const plugin_t *plugin = userdata;
    const char *username = mosquitto_client_username(check->client);
    role_t role;
    action_t action;
    (void)event;

    if (username == NULL) {
        /* Only an anonymous login (allowed for development) gets here without a username. */
        return plugin->allow_anonymous ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
    }
    switch (check->access) {
    case MOSQ_ACL_WRITE:
        action = ACTION_PUBLISH;
        break;
    case MOSQ_ACL_SUBSCRIBE:
        action = ACTION_SUBSCRIBE;
        break;
    case MOSQ_ACL_READ:
        action = ACTION_RECEIVE;
        break;
    case MOSQ_ACL_UNSUBSCRIBE:
        /* broker/acl.py has no rule for it: dropping a subscription reveals nothing. */
        return MOSQ_ERR_SUCCESS;
    default:
        return MOSQ_ERR_ACL_DENIED;
    }
    if (strcmp(username, TEDDY_SERVICE_PREFIX "hub") == 0) {
        role = ROLE_HUB;
    } else if (strcmp(username, TEDDY_SERVICE_PREFIX "api") == 0) {
        role = ROLE_API;
    } else if (teddy_device_id_check(username, strlen(username)) == TEDDY_OK) {
        role = ROLE_DEVICE;
    } else {
        role = ROLE_NONE;
    }
    if (role == ROLE_NONE || check->topic == NULL) {
        return MOSQ_ERR_ACL_DENIED;
    }
    if (is_allowed(plugin, role, username, check->topic, action)) {
        if (action == ACTION_SUBSCRIBE) {
            mosquitto_log_printf(MOSQ_LOG_DEBUG, "teddy_auth: subscribe allowed: %s to %s",
                                 username, check->topic);
        }
        return MOSQ_ERR_SUCCESS;
    }
    mosquitto_log_printf(MOSQ_LOG_DEBUG, "teddy_auth: %s denied: %s on %s",
                         action == ACTION_PUBLISH     ? "publish"
                         : action == ACTION_SUBSCRIBE ? "subscribe"
                                                      : "receive",
                         username, check->topic);
    return MOSQ_ERR_ACL_DENIED;
}

static int on_tick(int event, void *event_data, void *userdata)
{
    plugin_t *plugin = userdata;
    (void)event;
    (void)event_data;
    revocations_maybe_reload(plugin);
    for (size_t i = 0; i < plugin->kick_count; i++) {
        if (is_revoked(plugin, plugin->kicks[i].id)) {
            mosquitto_log_printf(MOSQ_LOG_NOTICE,
                                 "teddy_auth: %s is revoked: closing its connection if any",
                                 plugin->kicks[i].id);
            mosquitto_kick_client_by_username(plugin->kicks[i].id, false);
        }
    }
    mosquitto_free(plugin->kicks);
    plugin->kicks = NULL;
    plugin->kick_count = 0;
    return MOSQ_ERR_SUCCESS;
}

/* ---- plugin entry points ---- */

TEDDY_EXPORT int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for (int i = 0; i < supported_version_count; i++) {
        if (supported_versions[i] == 5) {
            return 5;
        }
    }
    return -1;
}

static void plugin_free(plugin_t *plugin)
{
    if (plugin == NULL) {
        return;
    }
    memset(plugin->connect_root, 0, sizeof plugin->connect_root);
    mosquitto_free(plugin->revocation_file);
    mosquitto_free(plugin->revoked);
    mosquitto_free(plugin->kicks);
    mosquitto_free(plugin->replay);
    mosquitto_free(plugin);
}

static int configure(plugin_t *plugin, struct mosquitto_opt *options, int option_count)
{
    const char *root_file = NULL;
    const char *topic_root = "teddy";
    unsigned long capacity = REPLAY_DEFAULT_CAPACITY;
    size_t slots = 1;
    for (int i = 0; i < option_count; i++) {
        const char *key = options[i].key;
        const char *value = options[i].value != NULL ? options[i].value : "";
        if (strcmp(key, "connect_root_file") == 0) {
            root_file = value;
        } else if (strcmp(key, "topic_root") == 0) {
            topic_root = value;
        } else if (strcmp(key, "revocation_file") == 0) {
            if (value[0] != '\0') {
                plugin->revocation_file = mosquitto_strdup(value);
                if (plugin->revocation_file == NULL) {
                    return MOSQ_ERR_NOMEM;
                }
            }
        } else if (strcmp(key, "allow_anonymous") == 0) {
            plugin->allow_anonymous = option_true(value);
        } else if (strcmp(key, "replay_capacity") == 0) {
            char *end;
            errno = 0;
            capacity = strtoul(value, &end, 10);
            if (errno != 0 || *end != '\0' || capacity == 0 || capacity > REPLAY_MAX_CAPACITY) {
                mosquitto_log_printf(MOSQ_LOG_ERR,
                                     "teddy_auth: replay_capacity must be 1 to %u", REPLAY_MAX_CAPACITY);
                return MOSQ_ERR_INVAL;
            }
        } else {
            mosquitto_log_printf(MOSQ_LOG_ERR, "teddy_auth: unknown option plugin_opt_%s", key);
            return MOSQ_ERR_INVAL;
        }
    }
    if (root_file == NULL) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "teddy_auth: plugin_opt_connect_root_file is required");
        return MOSQ_ERR_INVAL;
    }
    if (read_connect_root(root_file, plugin->connect_root) != MOSQ_ERR_SUCCESS) {
        return MOSQ_ERR_INVAL;
    }
    plugin->topic_root_len = strlen(topic_root);
    if (!topic_root_valid(topic_root, plugin->topic_root_len)) {
        mosquitto_log_printf(MOSQ_LOG_ERR,
                             "teddy_auth: topic_root must be 1-32 characters of a-z, 0-9, '-' "
                             "or '_', starting with a letter or digit");
        return MOSQ_ERR_INVAL;
    }
    memcpy(plugin->topic_root, topic_root, plugin->topic_root_len + 1);
    while (slots < capacity) {
        slots <<= 1;
    }
    plugin->replay = mosquitto_calloc(slots, sizeof *plugin->replay);
    if (plugin->replay == NULL) {
        return MOSQ_ERR_NOMEM;
    }
    plugin->replay_mask = slots - 1;
    plugin->replay_seed = random_seed();
    return MOSQ_ERR_SUCCESS;
}

TEDDY_EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                          struct mosquitto_opt *options, int option_count)
{
    plugin_t *plugin = mosquitto_calloc(1, sizeof *plugin);
    int rc;
    if (plugin == NULL) {
        return MOSQ_ERR_NOMEM;
    }
    plugin->pid = identifier;
    rc = configure(plugin, options, option_count);
    if (rc != MOSQ_ERR_SUCCESS) {
        plugin_free(plugin);
        return rc;
    }
    revocations_reload(plugin);
    plugin->revocation_checked_ms = monotonic_ms();

    rc = mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, plugin);
    if (rc == MOSQ_ERR_SUCCESS) {
        rc = mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL,
                                         plugin);
        if (rc != MOSQ_ERR_SUCCESS) {
            mosquitto_callback_unregister(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
        }
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "teddy_auth: cannot register callbacks (%d)", rc);
        plugin_free(plugin);
        return rc;
    }
    /* Optional: without ticks the revocation file is still looked at on every login. */
    plugin->tick_registered =
        mosquitto_callback_register(identifier, MOSQ_EVT_TICK, on_tick, NULL, plugin) ==
        MOSQ_ERR_SUCCESS;
    plugin->started = true;
    mosquitto_log_printf(MOSQ_LOG_INFO,
                         "teddy_auth: ready: topic root \"%s\", revocation file %s, replay "
                         "table %lu slots, revocation checks on logins%s, anonymous %s",
                         plugin->topic_root,
                         plugin->revocation_file != NULL ? plugin->revocation_file : "(none)",
                         (unsigned long)(plugin->replay_mask + 1),
                         plugin->tick_registered ? " and ticks" : "",
                         plugin->allow_anonymous ? "ALLOWED (development only)" : "refused");
    *userdata = plugin;
    return MOSQ_ERR_SUCCESS;
}

TEDDY_EXPORT int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
    plugin_t *plugin = userdata;
    (void)options;
    (void)option_count;
    if (plugin == NULL) {
        return MOSQ_ERR_SUCCESS;
    }
    mosquitto_callback_unregister(plugin->pid, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
    mosquitto_callback_unregister(plugin->pid, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
    if (plugin->tick_registered) {
        mosquitto_callback_unregister(plugin->pid, MOSQ_EVT_TICK, on_tick, NULL);
    }
    plugin_free(plugin);
    return MOSQ_ERR_SUCCESS;
}
