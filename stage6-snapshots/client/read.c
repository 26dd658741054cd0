/* read.c - taking one reply off the connection: send what is queued, then
 * parse from the input buffer, calling recv only when the buffer does not
 * yet hold the whole reply. Shared by the typed calls (scalars, parsed in
 * place) and the generic ones (trees). */
#include <string.h>

#include "client_internal.h"

kv_err begin_sync(kv_client *c) {
    if (c->pending > 0)
        return client_fail(c, KV_ERR_USAGE, "%zu pipelined replies are unread; call kv_get_reply first", c->pending);
    c->lost = 0;
    return io_ensure_connected(c);
}

void after_error_reply(kv_client *c, const char *text, size_t len) {
    static const char prefix[] = "ERR Protocol error";
    if (len >= sizeof prefix - 1 && memcmp(text, prefix, sizeof prefix - 1) == 0) io_close(c);
}

/* Out of memory while taking a reply off the connection: the reply cannot
 * be skipped, so the connection is out of step and must go. */
static kv_err no_memory(kv_client *c) {
    client_fail(c, KV_ERR_NOMEM, "out of memory building a reply");
    io_close(c);
    return KV_ERR_NOMEM;
}

static kv_err not_resp(kv_client *c) {
    client_fail(c, KV_ERR_PROTOCOL, "unexpected bytes from %s:%d: not a RESP2 reply, or not one for this call",
                c->host, c->port);
    io_close(c); /* we cannot know where the next reply starts */
    return KV_ERR_PROTOCOL;
}

/* The previous scalar's bytes are no longer needed: if nothing is left
 * unread, reset the buffer (releasing it if one big value grew it). */
static void drop_consumed(kv_client *c) {
    if (c->in.start == c->in.len) buf_clear(&c->in);
}

kv_err read_scalar(kv_client *c, scalar *s) {
    drop_consumed(c);
    kv_err e = io_flush(c);
    if (e != KV_OK) return e;
    for (;;) {
        size_t used = 0;
        int r = reply_parse_scalar(buf_unread(&c->in), buf_unread_len(&c->in), s, &used);
        if (r > 0 && s->type == KV_REPLY_ARRAY) r = -1; /* no typed call expects one */
        if (r > 0) {
            /* Consume now; the bytes stay in place until the next read or
             * append, which is all the caller needs. */
            c->in.start += used;
            c->pending--;
            return KV_OK;
        }
        if (r < 0) return not_resp(c);
        if ((e = io_read_more(c)) != KV_OK) return e;
    }
}

/* The common case: a reply that is one element (status, error, integer,
 * bulk, nil, empty array), built from a single parse. 1: done; 0: need
 * more bytes; 2: an array with elements, for the scan; or a kv_err < 0. */
static int read_single(kv_client *c, kv_reply **out) {
    scalar s;
    size_t used;
    int r = reply_parse_scalar(buf_unread(&c->in), buf_unread_len(&c->in), &s, &used);
    if (r < 0) return not_resp(c);
    if (r == 0) return 0;
    if (s.type == KV_REPLY_ARRAY && s.integer > 0) return 2;
    *out = reply_from_scalar(&s);
    if (!*out) return no_memory(c);
    buf_consume(&c->in, used);
    c->pending--;
    return 1;
}

kv_err read_tree(kv_client *c, kv_reply **out) {
    *out = NULL;
    drop_consumed(c);
    kv_err e = io_flush(c);
    if (e != KV_OK) return e;
    for (;;) {
        if (c->scan.off == 0) { /* nothing of this reply scanned yet */
            int r = read_single(c, out);
            if (r < 0) return (kv_err)r;
            if (r == 1) return KV_OK;
            if (r == 0) {
                if ((e = io_read_more(c)) != KV_OK) return e;
                continue;
            }
        }
        int r = reply_scan_step(&c->scan, buf_unread(&c->in), buf_unread_len(&c->in));
        if (r < 0) return not_resp(c);
        if (r > 0) break;
        if ((e = io_read_more(c)) != KV_OK) return e;
    }
    /* Complete: build it. */
    if (reply_build(buf_unread(&c->in), buf_unread_len(&c->in), out) != 0) return no_memory(c);
    buf_consume(&c->in, c->scan.off);
    memset(&c->scan, 0, sizeof c->scan);
    c->pending--;
    return KV_OK;
}
