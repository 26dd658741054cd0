/* api.c - the public calls: client lifecycle, typed commands, generic
 * commands and pipelining. Every synchronous call is: encode into the
 * output buffer, send it in one write, parse one reply. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client_internal.h"

void kv_options_default(kv_options *o) {
    o->connect_timeout_ms = 1000;
    o->read_timeout_ms = 5000;
    o->write_timeout_ms = 5000;
}

kv_client *kv_client_new(const char *host, int port, const kv_options *opts) {
    kv_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->host = strdup(host ? host : "127.0.0.1");
    if (!c->host) {
        free(c);
        return NULL;
    }
    c->port = port;
    if (opts)
        c->opts = *opts;
    else
        kv_options_default(&c->opts);
    c->fd = -1;
    return c;
}

void kv_client_free(kv_client *c) {
    if (!c) return;
    io_close(c);
    buf_free(&c->out);
    buf_free(&c->in);
    free(c->host);
    free(c);
}

kv_err kv_connect(kv_client *c) { return io_ensure_connected(c); }
void kv_disconnect(kv_client *c) { io_close(c); }
size_t kv_pending_replies(const kv_client *c) { return c->pending; }

/* The server closes the connection after a protocol error; reconnect on
 * the next call instead of failing it with "dropped". */
static void after_error_reply(kv_client *c, const char *text, size_t len) {
    if (len >= 18 && strncmp(text, "ERR Protocol error", 18) == 0) io_close(c);
}

static void consume(byte_buf *b, size_t n) {
    b->start += n;
    if (b->start == b->len) b->start = b->len = 0;
}

kv_err client_read_scalar(kv_client *c, scalar *s) {
    for (;;) {
        size_t used = 0;
        int r = reply_parse_scalar(c->in.data + c->in.start, c->in.len - c->in.start, s, &used);
        if (r > 0 && s->type == KV_REPLY_ARRAY) r = -1; /* no typed call expects one */
        if (r > 0) {
            consume(&c->in, used);
            c->pending--;
            return KV_OK;
        }
        if (r < 0) {
            io_close(c);
            return client_fail(c, KV_ERR_PROTOCOL, "unexpected reply from %s:%d (not RESP2, or not for this call)",
                               c->host, c->port);
        }
        kv_err e = io_read_more(c);
        if (e != KV_OK) return e;
    }
}

/* Sends what was encoded and reads one scalar reply. Server errors become
 * KV_ERR_SERVER with the server's text in kv_last_error. */
static kv_err round_trip(kv_client *c, scalar *s) {
    kv_err e = io_flush(c);
    if (e == KV_OK) e = client_read_scalar(c, s);
    if (e != KV_OK) return e;
    if (s->type == KV_REPLY_ERROR) {
        client_fail(c, KV_ERR_SERVER, "%.*s", (int)(s->len < 200 ? s->len : 200), s->str);
        after_error_reply(c, s->str, s->len);
        return KV_ERR_SERVER;
    }
    return KV_OK;
}

/* A synchronous call cannot start while pipelined replies are unread:
 * its reply would be confused with theirs. */
static kv_err begin(kv_client *c) {
    if (c->pending > 0)
        return client_fail(c, KV_ERR_USAGE, "%zu pipelined replies are unread; call kv_get_reply first", c->pending);
    return io_ensure_connected(c);
}

static kv_err expect(kv_client *c, const scalar *s, kv_reply_type type, const char *what) {
    if (s->type == type) return KV_OK;
    io_close(c);
    return client_fail(c, KV_ERR_PROTOCOL, "unexpected reply type to %s", what);
}

kv_err kv_set(kv_client *c, const void *key, size_t klen, const void *val, size_t vlen) {
    scalar s = {0};
    kv_err e = begin(c);
    if (e == KV_OK) e = encode_3(c, "SET", key, klen, val, vlen);
    if (e == KV_OK) e = round_trip(c, &s);
    return e == KV_OK ? expect(c, &s, KV_REPLY_STATUS, "SET") : e;
}

kv_err kv_get(kv_client *c, const void *key, size_t klen, char **val, size_t *vlen) {
    scalar s = {0};
    *val = NULL;
    *vlen = 0;
    kv_err e = begin(c);
    if (e == KV_OK) e = encode_2(c, "GET", key, klen);
    if (e == KV_OK) e = round_trip(c, &s);
    if (e != KV_OK) return e;
    if (s.type == KV_REPLY_NIL) return KV_NOT_FOUND;
    if ((e = expect(c, &s, KV_REPLY_BULK, "GET")) != KV_OK) return e;
    char *copy = malloc(s.len + 1);
    if (!copy) return client_fail(c, KV_ERR_NOMEM, "out of memory copying a %zu-byte value", s.len);
    memcpy(copy, s.str, s.len);
    copy[s.len] = '\0';
    *val = copy;
    *vlen = s.len;
    return KV_OK;
}

kv_err kv_del(kv_client *c, const void *key, size_t klen, long long *deleted) {
    scalar s = {0};
    kv_err e = begin(c);
    if (e == KV_OK) e = encode_2(c, "DEL", key, klen);
    if (e == KV_OK) e = round_trip(c, &s);
    if (e == KV_OK) e = expect(c, &s, KV_REPLY_INTEGER, "DEL");
    if (e == KV_OK && deleted) *deleted = s.integer;
    return e;
}

kv_err kv_ping(kv_client *c) {
    scalar s = {0};
    const char *argv[1] = {"PING"};
    kv_err e = begin(c);
    if (e == KV_OK) e = encode_command(c, 1, argv, NULL);
    if (e == KV_OK) e = round_trip(c, &s);
    return e == KV_OK ? expect(c, &s, KV_REPLY_STATUS, "PING") : e;
}

kv_err kv_info(kv_client *c, char **text) {
    scalar s = {0};
    const char *argv[1] = {"INFO"};
    *text = NULL;
    kv_err e = begin(c);
    if (e == KV_OK) e = encode_command(c, 1, argv, NULL);
    if (e == KV_OK) e = round_trip(c, &s);
    if (e == KV_OK) e = expect(c, &s, KV_REPLY_BULK, "INFO");
    if (e != KV_OK) return e;
    *text = malloc(s.len + 1);
    if (!*text) return client_fail(c, KV_ERR_NOMEM, "out of memory copying INFO");
    memcpy(*text, s.str, s.len);
    (*text)[s.len] = '\0';
    return KV_OK;
}

/* ---- generic commands and pipelining ---- */

kv_err kv_append_command(kv_client *c, int argc, const char *const *argv, const size_t *argvlen) {
    kv_err e = io_ensure_connected(c);
    return e == KV_OK ? encode_command(c, argc, argv, argvlen) : e;
}

kv_err kv_append_set(kv_client *c, const void *key, size_t klen, const void *val, size_t vlen) {
    kv_err e = io_ensure_connected(c);
    return e == KV_OK ? encode_3(c, "SET", key, klen, val, vlen) : e;
}

kv_err kv_append_get(kv_client *c, const void *key, size_t klen) {
    kv_err e = io_ensure_connected(c);
    return e == KV_OK ? encode_2(c, "GET", key, klen) : e;
}

kv_err kv_append_del(kv_client *c, const void *key, size_t klen) {
    kv_err e = io_ensure_connected(c);
    return e == KV_OK ? encode_2(c, "DEL", key, klen) : e;
}

kv_err kv_get_reply(kv_client *c, kv_reply **out) {
    *out = NULL;
    if (c->pending == 0) return client_fail(c, KV_ERR_USAGE, "no reply is pending");
    if (c->fd < 0) return client_fail(c, KV_ERR_USAGE, "not connected");
    kv_err e = io_flush(c);
    if (e != KV_OK) return e;
    for (;;) {
        size_t used = 0;
        int r = reply_parse_tree(c->in.data + c->in.start, c->in.len - c->in.start, out, &used, 0);
        if (r > 0) {
            consume(&c->in, used);
            c->pending--;
            if ((*out)->type == KV_REPLY_ERROR) {
                size_t pending = c->pending;
                after_error_reply(c, (*out)->str, (*out)->len);
                if (c->fd < 0 && pending > 0)
                    client_fail(c, KV_ERR_DROPPED, "server closed the connection after a protocol error");
            }
            return KV_OK;
        }
        if (r == -2) return client_fail(c, KV_ERR_NOMEM, "out of memory building a reply");
        if (r < 0) {
            io_close(c);
            return client_fail(c, KV_ERR_PROTOCOL, "unexpected reply from %s:%d (not RESP2)", c->host, c->port);
        }
        if ((e = io_read_more(c)) != KV_OK) return e;
    }
}

kv_err kv_command(kv_client *c, int argc, const char *const *argv, const size_t *argvlen, kv_reply **out) {
    *out = NULL;
    kv_err e = begin(c);
    if (e == KV_OK) e = encode_command(c, argc, argv, argvlen);
    if (e == KV_OK) e = kv_get_reply(c, out);
    /* QUIT: the server closes after replying; start fresh next time. */
    if (e == KV_OK && argc > 0 && (argvlen ? argvlen[0] : strlen(argv[0])) == 4 && strncasecmp(argv[0], "quit", 4) == 0)
        io_close(c);
    return e;
}
