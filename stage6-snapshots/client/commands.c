/* commands.c - the typed synchronous calls: SET, GET, DEL, INCR, APPEND, PING, INFO.
 * Each is: encode into the output buffer, send it in one write, parse one
 * reply in place (no reply object is allocated), follow a follower's
 * redirect if it refused (cluster.c), check it is the kind of reply the command must
 * get. Only the value kv_get hands back, and the text of kv_info, are
 * copied out. */
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

/* One synchronous command whose reply is a scalar, through cluster.c
 * (redirects, elections, and with exactly_once the session) until the
 * reply is the answer. An error reply becomes KV_ERR_SERVER with the
 * server's text in kv_last_error. */
static kv_err round_trip(kv_client *c, int argc, const char *const *argv, const size_t *lens, scalar *s) {
    kv_err e = call_run(c, argc, argv, lens, 0, s, NULL);
    if (e == KV_OK && s->type == KV_REPLY_ERROR) {
        e = client_fail(c, KV_ERR_SERVER, "%.*s", (int)(s->len < 400 ? s->len : 400), s->str);
        after_error_reply(c, s->str, s->len);
    }
    return e;
}

/* The reply was well-formed RESP but not what this command returns: the
 * server is not the one we think, so do not trust the connection. */
static kv_err expect(kv_client *c, const scalar *s, kv_reply_type type, const char *what) {
    if (s->type == type) return KV_OK;
    io_close(c);
    return client_fail(c, KV_ERR_PROTOCOL, "unexpected reply type to %s from %s:%d", what, c->host, c->port);
}

/* A malloc'd, NUL-terminated copy of a bulk string. */
static char *copy_bulk(const scalar *s) {
    char *p = malloc(s->len + 1);
    if (!p) return NULL;
    if (s->len) memcpy(p, s->str, s->len);
    p[s->len] = '\0';
    return p;
}

kv_err kv_set(kv_client *c, const void *key, size_t klen, const void *val, size_t vlen) {
    const char *argv[3] = {"SET", key, val};
    const size_t lens[3] = {3, klen, vlen};
    scalar s;
    kv_err e = round_trip(c, 3, argv, lens, &s);
    if (e == KV_OK) e = expect(c, &s, KV_REPLY_STATUS, "SET");
    return e;
}

kv_err kv_get(kv_client *c, const void *key, size_t klen, char **val, size_t *vlen) {
    const char *argv[2] = {"GET", key};
    const size_t lens[2] = {3, klen};
    scalar s;
    *val = NULL;
    *vlen = 0;
    kv_err e = round_trip(c, 2, argv, lens, &s);
    if (e != KV_OK) return e;
    if (s.type == KV_REPLY_NIL) return KV_NOT_FOUND;
    if ((e = expect(c, &s, KV_REPLY_BULK, "GET")) != KV_OK) return e;
    char *copy = copy_bulk(&s);
    if (!copy) return client_fail(c, KV_ERR_NOMEM, "out of memory copying a %zu-byte value", s.len);
    *val = copy;
    *vlen = s.len;
    return KV_OK;
}

kv_err kv_del(kv_client *c, const void *key, size_t klen, long long *deleted) {
    const char *argv[2] = {"DEL", key};
    const size_t lens[2] = {3, klen};
    scalar s;
    kv_err e = round_trip(c, 2, argv, lens, &s);
    if (e == KV_OK) e = expect(c, &s, KV_REPLY_INTEGER, "DEL");
    if (e == KV_OK && deleted) *deleted = s.integer;
    return e;
}

kv_err kv_incr(kv_client *c, const void *key, size_t klen, long long *value) {
    const char *argv[2] = {"INCR", key};
    const size_t lens[2] = {4, klen};
    scalar s;
    kv_err e = round_trip(c, 2, argv, lens, &s);
    if (e == KV_OK) e = expect(c, &s, KV_REPLY_INTEGER, "INCR");
    if (e == KV_OK && value) *value = s.integer;
    return e;
}

kv_err kv_append(kv_client *c, const void *key, size_t klen, const void *val, size_t vlen, long long *len) {
    const char *argv[3] = {"APPEND", key, val};
    const size_t lens[3] = {6, klen, vlen};
    scalar s;
    kv_err e = round_trip(c, 3, argv, lens, &s);
    if (e == KV_OK) e = expect(c, &s, KV_REPLY_INTEGER, "APPEND");
    if (e == KV_OK && len) *len = s.integer;
    return e;
}

kv_err kv_ping(kv_client *c) {
    static const char *const argv[1] = {"PING"};
    scalar s;
    kv_err e = round_trip(c, 1, argv, NULL, &s);
    if (e == KV_OK) e = expect(c, &s, KV_REPLY_STATUS, "PING");
    return e;
}

kv_err kv_info(kv_client *c, char **text) {
    static const char *const argv[1] = {"INFO"};
    scalar s;
    *text = NULL;
    kv_err e = round_trip(c, 1, argv, NULL, &s);
    if (e == KV_OK) e = expect(c, &s, KV_REPLY_BULK, "INFO");
    if (e != KV_OK) return e;
    *text = copy_bulk(&s);
    if (!*text) return client_fail(c, KV_ERR_NOMEM, "out of memory copying %zu bytes of INFO", s.len);
    return KV_OK;
}
