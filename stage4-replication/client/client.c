/* client.c - a client's life: options, creation, connecting, closing. */
#include <stdlib.h>
#include <string.h>

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
    /* A negative timeout makes no sense; treat it as "wait forever" like 0. */
    if (c->opts.connect_timeout_ms < 0) c->opts.connect_timeout_ms = 0;
    if (c->opts.read_timeout_ms < 0) c->opts.read_timeout_ms = 0;
    if (c->opts.write_timeout_ms < 0) c->opts.write_timeout_ms = 0;
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

void kv_disconnect(kv_client *c) {
    io_close(c);
    c->lost = 0;
}

void kv_free(void *p) { free(p); }
