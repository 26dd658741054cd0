/* client.c - a client's life: options, creation, connecting, closing, and
 * where it is connected (which a follower's redirect can change). The
 * address it is created with is its first known node (cluster.c). */
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

void kv_options_default(kv_options *o) {
    o->connect_timeout_ms = 1000;
    o->read_timeout_ms = 5000;
    o->write_timeout_ms = 5000;
    o->max_redirects = 3; /* a follower, another mid-failover, the leader, and one spare */
    o->retry_total_ms = 10000; /* two elections of the default timeout, and a write timeout */
    o->exactly_once = 0;
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
    if (c->opts.max_redirects < 0) c->opts.max_redirects = 0;
    if (c->opts.retry_total_ms < 0) c->opts.retry_total_ms = 0;
    c->fd = -1;
    if (cluster_add_node(c, c->host, c->port) != 0) {
        kv_client_free(c);
        return NULL;
    }
    return c;
}

void kv_client_free(kv_client *c) {
    if (!c) return;
    io_close(c);
    buf_free(&c->out);
    buf_free(&c->in);
    cluster_free(c);
    free(c->host);
    free(c);
}

kv_err kv_connect(kv_client *c) { return io_ensure_connected(c); }

void kv_disconnect(kv_client *c) {
    io_close(c);
    c->lost = 0;
}

void kv_free(void *p) { free(p); }

unsigned long long kv_redirects(const kv_client *c) { return c->redirects; }
const char *kv_last_redirect(const kv_client *c) { return c->last_redirect; }
const char *kv_client_host(const kv_client *c) { return c->host; }
int kv_client_port(const kv_client *c) { return c->port; }

kv_err kv_client_move(kv_client *c, const char *host, int port) {
    if (c->pending > 0 && c->fd >= 0)
        return client_fail(c, KV_ERR_USAGE, "%zu pipelined replies are unread; call kv_get_reply first", c->pending);
    char *copy = strdup(host ? host : "127.0.0.1");
    if (!copy) return client_fail(c, KV_ERR_NOMEM, "out of memory moving the client");
    kv_disconnect(c);
    free(c->host);
    c->host = copy;
    c->port = port;
    return KV_OK;
}
