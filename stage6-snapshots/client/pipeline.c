/* pipeline.c - generic commands and pipelining. kv_command is one queued
 * command followed by reading its reply (and, when a follower refused it,
 * the same at the leader: cluster.c). Pipelining queues many commands in
 * the output buffer and reads the replies in order; kv_get_reply keeps the
 * count honest when the connection dies midway, so every queued command
 * gets exactly one result. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "client_internal.h"

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

size_t kv_pending_replies(const kv_client *c) { return c->pending + c->lost; }

/* Pipelined replies are never redirected (kvclient.h says why): a READONLY
 * reply is returned like any other. */
kv_err kv_get_reply(kv_client *c, kv_reply **out) {
    *out = NULL;
    /* LAB pipelining: one result per queued command, in order, even when the connection dies midway */
    /* Replies lost with an earlier connection come first: their commands
     * were queued before anything sent on the current one. */
    if (c->lost > 0) {
        c->lost--;
        return client_fail(c, KV_ERR_DROPPED, "%s", c->lost_why);
    }
    if (c->pending == 0) return client_fail(c, KV_ERR_USAGE, "no reply is pending");
    size_t owed = c->pending;
    kv_err e = read_tree(c, out);
    if (e == KV_OK && (*out)->type == KV_REPLY_ERROR) after_error_reply(c, (*out)->str, (*out)->len);
    if (c->fd < 0 && owed > 1) {
        /* The connection is gone and took the later replies with it. This
         * call reported its own result; the rest are reported one by one. */
        c->lost = owed - 1;
        if (e == KV_OK)
            snprintf(c->lost_why, sizeof c->lost_why,
                     "reply lost: the server closed the connection after a protocol error");
        else
            snprintf(c->lost_why, sizeof c->lost_why, "reply lost: %.230s", c->err);
    }
    return e;
    /* END LAB */
}

/* QUIT: the server closes after replying; start fresh next time. */
static int is_quit(const char *name, size_t len) { return len == 4 && strncasecmp(name, "quit", 4) == 0; }

kv_err kv_command(kv_client *c, int argc, const char *const *argv, const size_t *argvlen, kv_reply **out) {
    *out = NULL;
    kv_err e = call_run(c, argc, argv, argvlen, 1, NULL, out);
    if (e != KV_OK) return e;
    if ((*out)->type == KV_REPLY_ERROR) after_error_reply(c, (*out)->str, (*out)->len);
    if (is_quit(argv[0], argvlen ? argvlen[0] : strlen(argv[0]))) io_close(c);
    return KV_OK;
}
