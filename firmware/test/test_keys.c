/* Handlers for the constants, kinds, frame keys, connect keys, tokens and service logins. */
#include <string.h>

#include "test_cases.h"

/* ---- meta: constants and kinds ---- */

typedef struct {
    const char *name;
    uint64_t value;
} int_constant_t;

typedef struct {
    const char *name;
    const char *value;
} text_constant_t;

static const int_constant_t int_constants[] = {
    {"clock_window_ms", TEDDY_CLOCK_WINDOW_MS},
    {"device_id_max_length", TEDDY_DEVICE_ID_MAX_LEN},
    {"device_id_min_length", TEDDY_DEVICE_ID_MIN_LEN},
    {"device_key_size", TEDDY_KEY_SIZE},
    {"max_frame_size", TEDDY_MAX_FRAME_SIZE},
    {"max_payload", TEDDY_MAX_PAYLOAD_SIZE},
    {"max_topic_size", TEDDY_MAX_TOPIC_SIZE},
    {"min_frame_size", TEDDY_MIN_FRAME_SIZE},
    {"nonce_size", TEDDY_NONCE_SIZE},
    {"nonce_ttl_ms", TEDDY_NONCE_TTL_MS},
    {"protocol_version", TEDDY_PROTOCOL_VERSION},
    {"tag_size", TEDDY_TAG_SIZE},
    {"connect.max_token_length", TEDDY_TOKEN_MAX_LEN},
    {"connect.token_future_skew_s", TEDDY_TOKEN_FUTURE_SKEW_S},
    {"connect.token_lifetime_s", TEDDY_TOKEN_LIFETIME_S},
    {"connect.token_replay_ttl_s", TEDDY_TOKEN_REPLAY_TTL_S},
};

static const text_constant_t text_constants[] = {
    {"frame_key_info_prefix", TEDDY_FRAME_KEY_INFO_PREFIX},
    {"key_salt", TEDDY_KEY_SALT},
    {"topic_version", TEDDY_TOPIC_VERSION},
    {"connect.connect_key_info_prefix", TEDDY_CONNECT_KEY_INFO_PREFIX},
    {"connect.connect_root_info", TEDDY_CONNECT_ROOT_INFO},
};

void run_const(const record_t *r)
{
    size_t i;
    if (has_field(r, "int")) {
        uint64_t value;
        if (!get_u64(r, "int", &value)) {
            return;
        }
        for (i = 0; i < sizeof int_constants / sizeof int_constants[0]; i++) {
            if (strcmp(int_constants[i].name, r->name) == 0) {
                EXPECT(int_constants[i].value == value, "the core has %llu, the vectors %llu",
                       (unsigned long long)int_constants[i].value, (unsigned long long)value);
                return;
            }
        }
    } else {
        char text[MAX_TEXT];
        size_t len;
        if (!get_text(r, "text_hex", text, sizeof text, &len)) {
            return;
        }
        for (i = 0; i < sizeof text_constants / sizeof text_constants[0]; i++) {
            if (strcmp(text_constants[i].name, r->name) == 0) {
                EXPECT(strcmp(text_constants[i].value, text) == 0,
                       "the core has \"%s\", the vectors \"%s\"", text_constants[i].value, text);
                return;
            }
        }
    }
    EXPECT(false, "constant %s is unknown to the test driver", r->name);
}

static unsigned kinds_count;

unsigned kinds_seen(void)
{
    return kinds_count;
}

void run_kind(const record_t *r)
{
    uint64_t code;
    teddy_direction_t direction;
    uint8_t from_name = 0;
    const char *name;
    if (!get_u64(r, "code", &code) || !get_direction(r, &direction)) {
        return;
    }
    EXPECT(code <= 0xff, "code %llu is not a byte", (unsigned long long)code);
    name = teddy_kind_name((uint8_t)code);
    EXPECT(name != NULL && strcmp(name, r->name) == 0, "the core names code 0x%02x %s",
           (unsigned)code, name != NULL ? name : "(unknown)");
    EXPECT_ERR(teddy_kind_from_name(r->name, strlen(r->name), &from_name), TEDDY_OK);
    EXPECT(from_name == code, "from name: 0x%02x", (unsigned)from_name);
    EXPECT(teddy_kind_direction((uint8_t)code) == direction, "direction differs");
    EXPECT_ERR(teddy_kind_check((uint8_t)code), TEDDY_OK);
    kinds_count++;
}

/* ---- frame keys ---- */

static char fleet[MAX_TEXT];
static size_t fleet_len;

void run_keys(const record_t *r)
{
    char device_id[MAX_TEXT];
    size_t id_len;
    uint8_t want[TEDDY_KEY_SIZE];
    uint8_t got[TEDDY_KEY_SIZE];
    if (!get_text(r, "fleet_secret_hex", fleet, sizeof fleet, &fleet_len) ||
        !get_text(r, "device_id_hex", device_id, sizeof device_id, &id_len) ||
        !get_key(r, "device_key_hex", want)) {
        return;
    }
    EXPECT_ERR(teddy_derive_frame_key(case_copy(fleet, fleet_len), fleet_len,
                                      case_copy(device_id, id_len), id_len, got),
               TEDDY_OK);
    EXPECT(memcmp(got, want, sizeof want) == 0, "device key differs");
}
/* ---- connect roots and keys ---- */

void run_connect_root(const record_t *r)
{
    uint8_t want[TEDDY_KEY_SIZE];
    uint8_t got[TEDDY_KEY_SIZE];
    if (!get_text(r, "fleet_secret_hex", fleet, sizeof fleet, &fleet_len) ||
        !get_key(r, "connect_root_hex", want)) {
        return;
    }
    EXPECT_ERR(teddy_derive_connect_root(case_copy(fleet, fleet_len), fleet_len, got), TEDDY_OK);
    EXPECT(memcmp(got, want, sizeof want) == 0, "connect root differs");
}

void run_connect_key(const record_t *r)
{
    char device_id[MAX_TEXT];
    size_t id_len;
    uint8_t want[TEDDY_KEY_SIZE];
    uint8_t root[TEDDY_KEY_SIZE];
    uint8_t got[TEDDY_KEY_SIZE];
    uint8_t frame_key[TEDDY_KEY_SIZE];
    const char *id;
    if (!get_text(r, "fleet_secret_hex", fleet, sizeof fleet, &fleet_len) ||
        !get_text(r, "device_id_hex", device_id, sizeof device_id, &id_len) ||
        !get_key(r, "connect_key_hex", want)) {
        return;
    }
    id = case_copy(device_id, id_len);
    EXPECT_ERR(teddy_derive_connect_root(case_copy(fleet, fleet_len), fleet_len, root), TEDDY_OK);
    EXPECT_ERR(teddy_derive_connect_key(case_copy(root, sizeof root), id, id_len, got), TEDDY_OK);
    EXPECT(memcmp(got, want, sizeof want) == 0, "connect key differs");
    EXPECT_ERR(teddy_derive_frame_key(case_copy(fleet, fleet_len), fleet_len, id, id_len,
                                      frame_key),
               TEDDY_OK);
    EXPECT(memcmp(got, frame_key, sizeof got) != 0, "connect key equals the frame key");
}

/* ---- tokens ---- */

void run_valid_token(const record_t *r)
{
    char device_id[MAX_TEXT];
    char client_id[MAX_TEXT];
    char token[MAX_TEXT];
    size_t id_len;
    size_t client_len;
    size_t token_len;
    size_t nonce_len = 0;
    uint8_t key[TEDDY_KEY_SIZE];
    uint8_t root[TEDDY_KEY_SIZE];
    uint8_t nonce[TEDDY_TOKEN_NONCE_SIZE];
    uint64_t timestamp_s;
    uint64_t now_s;
    char made[TEDDY_TOKEN_BUF_SIZE];
    size_t made_len = 0;
    teddy_token_t parsed;
    const char *id;
    const char *client;
    const char *password;

    if (!get_text(r, "device_id_hex", device_id, sizeof device_id, &id_len) ||
        !get_text(r, "client_id_hex", client_id, sizeof client_id, &client_len) ||
        !get_key(r, "connect_key_hex", key) || !get_u64(r, "timestamp_s", &timestamp_s) ||
        !get_bytes(r, "nonce_hex", nonce, sizeof nonce, &nonce_len) ||
        !get_text(r, "token_hex", token, sizeof token, &token_len) ||
        !get_u64(r, "now_s", &now_s)) {
        return;
    }
    id = case_copy(device_id, id_len);
    client = case_copy(client_id, client_len);
    password = case_copy(token, token_len);
    EXPECT(nonce_len == TEDDY_TOKEN_NONCE_SIZE, "nonce is %zu bytes", nonce_len);
    EXPECT_ERR(teddy_token_make(key, id, id_len, timestamp_s, nonce, made, sizeof made, &made_len),
               TEDDY_OK);
    EXPECT(span_eq(made, made_len, token, token_len) && made[made_len] == '\0',
           "made %s, want %s", made, token);
    case_end();

    case_begin("valid_token-verify", r->name);
    id = case_copy(device_id, id_len);
    client = case_copy(client_id, client_len);
    password = case_copy(token, token_len);
    memset(&parsed, 0, sizeof parsed);
    EXPECT_ERR(teddy_token_verify(key, id, id_len, client, client_len, password, token_len, now_s,
                                  &parsed),
               TEDDY_OK);
    EXPECT(parsed.timestamp_s == timestamp_s, "timestamp %llu",
           (unsigned long long)parsed.timestamp_s);
    EXPECT(memcmp(parsed.nonce, nonce, sizeof nonce) == 0, "nonce differs");
    if (has_field(r, "connect_root_hex") && get_key(r, "connect_root_hex", root)) {
        EXPECT_ERR(teddy_token_verify_with_root(root, id, id_len, client, client_len, password,
                                                token_len, now_s, NULL),
                   TEDDY_OK);
    }
}

void run_invalid_token(const record_t *r)
{
    char username[MAX_TEXT];
    char client_id[MAX_TEXT];
    char password[MAX_TEXT];
    size_t username_len;
    size_t client_len;
    size_t password_len;
    uint8_t key[TEDDY_KEY_SIZE];
    uint8_t root[TEDDY_KEY_SIZE];
    uint64_t now_s;
    const char *reason;
    const char *user;
    const char *client;
    const char *pass;
    teddy_token_t parsed;
    if (!get_text(r, "username_hex", username, sizeof username, &username_len) ||
        !get_text(r, "client_id_hex", client_id, sizeof client_id, &client_len) ||
        !get_key(r, "connect_key_hex", key) ||
        !get_text(r, "password_hex", password, sizeof password, &password_len) ||
        !get_u64(r, "now_s", &now_s) || !get_word(r, "reason", &reason)) {
        return;
    }
    user = case_copy(username, username_len);
    client = case_copy(client_id, client_len);
    pass = case_copy(password, password_len);
    expect_reason(teddy_token_verify(key, user, username_len, client, client_len, pass,
                                     password_len, now_s, &parsed),
                  reason, "verify");
    if (has_field(r, "connect_root_hex") && get_key(r, "connect_root_hex", root)) {
        expect_reason(teddy_token_verify_with_root(root, user, username_len, client, client_len,
                                                   pass, password_len, now_s, &parsed),
                      reason, "verify_with_root");
    }
}

/* ---- service accounts ---- */

void run_service(const record_t *r)
{
    char name[MAX_TEXT];
    char username[MAX_TEXT];
    char password[MAX_TEXT];
    size_t name_len;
    size_t username_len;
    size_t password_len;
    uint8_t root[TEDDY_KEY_SIZE];
    char made[TEDDY_SERVICE_PASSWORD_BUF_SIZE];
    size_t made_len = 0;
    if (!get_text(r, "fleet_secret_hex", fleet, sizeof fleet, &fleet_len) ||
        !get_text(r, "name_hex", name, sizeof name, &name_len) ||
        !get_text(r, "username_hex", username, sizeof username, &username_len) ||
        !get_text(r, "password_hex", password, sizeof password, &password_len)) {
        return;
    }
    EXPECT_ERR(teddy_derive_connect_root(case_copy(fleet, fleet_len), fleet_len, root), TEDDY_OK);
    EXPECT_ERR(teddy_service_password(root, case_copy(name, name_len), name_len, made,
                                      sizeof made, &made_len),
               TEDDY_OK);
    EXPECT(span_eq(made, made_len, password, password_len), "password %s, want %s", made,
           password);
    EXPECT(username_len == 4 + name_len && memcmp(username, TEDDY_SERVICE_PREFIX, 4) == 0 &&
               memcmp(username + 4, name, name_len) == 0,
           "username %s is not svc:%s", username, name);
    case_end();

    case_begin("service-login", r->name);
    EXPECT(teddy_username_is_service(case_copy(username, username_len), username_len),
           "not recognised as a service username");
    EXPECT_ERR(teddy_service_verify(root, case_copy(username, username_len), username_len,
                                    case_copy(password, password_len), password_len),
               TEDDY_OK);
}

void run_invalid_service(const record_t *r)
{
    char username[MAX_TEXT];
    char password[MAX_TEXT];
    size_t username_len;
    size_t password_len;
    uint8_t root[TEDDY_KEY_SIZE];
    const char *reason;
    if (!get_text(r, "fleet_secret_hex", fleet, sizeof fleet, &fleet_len) ||
        !get_text(r, "username_hex", username, sizeof username, &username_len) ||
        !get_text(r, "password_hex", password, sizeof password, &password_len) ||
        !get_word(r, "reason", &reason)) {
        return;
    }
    EXPECT_ERR(teddy_derive_connect_root(case_copy(fleet, fleet_len), fleet_len, root), TEDDY_OK);
    expect_reason(teddy_service_verify(root, case_copy(username, username_len), username_len,
                                       case_copy(password, password_len), password_len),
                  reason, "verify");
}
