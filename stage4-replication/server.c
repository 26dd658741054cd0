/* server.c - recovery, listener, client admission and graceful shutdown (see server.h). */
#include "server.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply.h"
#include "compaction.h"
#include "conn.h"
#include "datadir.h"
#include "full_copy.h"
#include "log.h"
#include "resp_reply.h"
#include "wait.h"

/* How long shutdown waits for clients to take their last replies. */
#define SHUTDOWN_GRACE_MS 500

static void on_connection(uv_stream_t *listener, int status) {
    server *srv = listener->data;
    if (status < 0) {
        kv_log(KV_LOG_WARN, "accept error: %s", uv_strerror(status));
        return;
    }
    srv->stats.connections_received++;
    int over = srv->nconns >= srv->cfg.max_clients;
    conn *c = conn_accept(srv, !over);
    if (!c) return;
    if (over) {
        /* Accept, explain, close: a refused client learns why instead of hanging. */
        srv->stats.rejected_connections++;
        kv_log(KV_LOG_WARN, "client %s refused: max number of clients (%lld) reached", c->peer, srv->cfg.max_clients);
        reply_error(&c->out, "ERR max number of clients reached");
        conn_close_after_flush(c);
        conn_flush(c);
        return;
    }
    kv_log(KV_LOG_DEBUG, "client %llu connected from %s", (unsigned long long)c->id, c->peer);
}

static void on_idle_sweep(uv_timer_t *t) {
    server *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    conn *next;
    for (conn *c = srv->conns; c; c = next) {
        next = c->next;
        conn_check_idle(c, now);
    }
}

static void on_signal(uv_signal_t *h, int signum) {
    server *srv = h->data;
    server_begin_shutdown(srv, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static void close_if_open(uv_handle_t *h) {
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Every SHUTDOWN_GRACE_MS: a client that took none of its replies since
 * the last look is dropped; one still reading (slowly: a busy machine, a
 * big reply) gets another period, so no reply it is taking is cut. The wait
 * is bounded: no request runs any more, so the replies to send only shrink. */
static void on_grace_expired(uv_timer_t *t) {
    server *srv = t->data;
    int dropped = 0, taking = 0;
    for (conn *c = srv->conns; c; c = c->next) {
        if (c->closing) continue;
        size_t unsent = conn_unsent(c);
        if (unsent < c->unsent_at_grace) {
            c->unsent_at_grace = unsent;
            taking++;
            continue;
        }
        conn_close(c);
        dropped++;
    }
    if (dropped) kv_log(KV_LOG_WARN, "shutdown: dropped %d clients that took none of their replies in %d ms", dropped, SHUTDOWN_GRACE_MS);
    if (taking)
        uv_timer_start(t, on_grace_expired, SHUTDOWN_GRACE_MS, 0);
    else
        close_if_open((uv_handle_t *)&srv->shutdown_timer);
}

void server_begin_shutdown(server *srv, const char *why) {
    if (srv->shutting_down) return;
    srv->shutting_down = 1;
    kv_log(KV_LOG_INFO, "shutdown requested (%s): no new connections, flushing replies to %lld clients", why,
           srv->nconns);
    close_if_open((uv_handle_t *)&srv->listener);
    kv_busy_poll_stop(&srv->busy_poll);
    close_if_open((uv_handle_t *)&srv->sigint);
    close_if_open((uv_handle_t *)&srv->sigterm);
    compaction_abort(srv, "shutdown");
    repl_stop(&srv->repl);
    wait_stop(srv);
    /* Replies already computed are still sent; requests not yet read are not run. */
    conn *next;
    for (conn *c = srv->conns; c; c = next) {
        next = c->next;
        conn_close_after_flush(c);
    }
    if (srv->conns) {
        uv_timer_start(&srv->shutdown_timer, on_grace_expired, SHUTDOWN_GRACE_MS, 0);
        uv_unref((uv_handle_t *)&srv->shutdown_timer);
    } else {
        close_if_open((uv_handle_t *)&srv->shutdown_timer);
    }
}

static int replay_apply(void *ctx, const Kv__Command *cmd) {
    return apply_command(ctx, cmd) < 0 ? -1 : 0;
}

/* The durability module's reports: replies go on the event the policy names. */
static void on_durability_report(void *ctx, durability_event ev, uint64_t upto) {
    server *srv = ctx;
    if (ev == RECORDS_WRITTEN) repl_on_written(&srv->repl, upto); /* a leader ships them now */
    if (ev == durability_ack_event(&srv->durability)) {
        conn_release_replies(srv, upto);
        repl_on_ackable(&srv->repl, upto); /* a follower acknowledges them now */
    }
}

static void on_between_syncs(void *ctx) {
    server *srv = ctx;
    compaction_between_syncs(srv);
    repl_between_syncs(&srv->repl);
}

static int is_loopback(const char *addr) {
    return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 || strcmp(addr, "localhost") == 0;
}

/* Redis's protected mode: the peer port lets anyone who reaches it join the
 * cluster and read every write, and the client port lets them write; so
 * without a secret or a password, listen on loopback only. */
static int check_protected_mode(const server_config *cfg) {
    if (is_loopback(cfg->bind) || cfg->cluster_secret_file || cfg->requirepass_file) return 0;
    kv_log(KV_LOG_ERROR,
           "refusing to listen on %s with neither --cluster-secret-file nor --requirepass-file: anyone who reaches "
           "the port could join the cluster or write; set them, or bind 127.0.0.1",
           cfg->bind);
    return -1;
}

/* Rebuilds the store from the log before any client can connect. */
static int recover(server *srv) {
    srv->lock_fd = datadir_open_and_lock(srv->cfg.data_dir);
    if (srv->lock_fd < 0) return -1;
    if (full_copy_cleanup(srv->cfg.data_dir) != 0) return -1;
    kv_log(KV_LOG_INFO, "recovering from %s/wal", srv->cfg.data_dir);
    if (wal_open(&srv->wal, srv->cfg.data_dir, srv->cfg.wal_segment_bytes, replay_apply, &srv->store, &srv->replay) !=
        0)
        return -1;
    srv->wal_ready = 1;
    double secs = srv->replay.seconds > 0 ? srv->replay.seconds : 1e-9;
    kv_log(KV_LOG_INFO,
           "replayed %" PRIu64 " records (%.1f MiB) in %.0f ms (%.0f records/s): %zu keys; next record is %" PRIu64,
           srv->replay.records, (double)srv->replay.bytes / (1024.0 * 1024.0), srv->replay.seconds * 1000.0,
           (double)srv->replay.records / secs, kv_store_count(&srv->store), srv->wal.next_index);
    return 0;
}

int server_init(server *srv, const server_config *cfg) {
    memset(srv, 0, sizeof *srv);
    srv->lock_fd = -1;
    srv->cfg = *cfg;
    srv->loop = uv_default_loop();
    srv->limits = resp_default_limits();
    srv->limits.max_request = cfg->max_request_bytes;
    if (srv->limits.max_inline > cfg->max_request_bytes) srv->limits.max_inline = cfg->max_request_bytes;
    if (kv_store_init(&srv->store) != 0) {
        kv_log(KV_LOG_ERROR, "out of memory creating the store");
        return -1;
    }
    srv->start_ms = uv_now(srv->loop);
    if (check_protected_mode(cfg) != 0 || repl_check_config(cfg) != 0) return -1;
    if (cfg->requirepass_file) {
        char err[256];
        if (kv_secret_load(cfg->requirepass_file, "password file", 1, &srv->requirepass, err, sizeof err) != 0) {
            kv_log(KV_LOG_ERROR, "%s", err);
            return -1;
        }
    }
    if (recover(srv) != 0) return -1;
    kv_busy_poll_init(&srv->busy_poll, srv->loop, (unsigned)cfg->busy_poll_us);
    fsync_policy policy;
    durability_parse_policy(cfg->fsync, &policy); /* validated by the flag parser */
    durability_hooks hooks = {.ctx = srv, .report = on_durability_report, .between_syncs = on_between_syncs};
    durability_init(&srv->durability, srv->loop, &srv->wal, policy, &srv->busy_poll, hooks);
    srv->acked_upto = wal_written_upto(&srv->wal); /* everything replayed is durable */
    durability_start(&srv->durability);
    compaction_init(srv);
    uv_timer_init(srv->loop, &srv->wait_timer);
    srv->wait_timer.data = srv;
    uv_unref((uv_handle_t *)&srv->wait_timer);
    if (repl_init(srv, &srv->repl) != 0) return -1;

    struct sockaddr_storage addr;
    int r = uv_ip4_addr(cfg->bind, (int)cfg->port, (struct sockaddr_in *)&addr);
    if (r != 0) r = uv_ip6_addr(cfg->bind, (int)cfg->port, (struct sockaddr_in6 *)&addr);
    if (r != 0) {
        kv_log(KV_LOG_ERROR, "--bind %s is not an IPv4 or IPv6 address", cfg->bind);
        repl_stop(&srv->repl);
        return -1;
    }
    /* Signal handlers before the listener: once a client (or a test) can
     * connect, a SIGTERM must already mean a graceful shutdown. */
    uv_signal_init(srv->loop, &srv->sigint);
    uv_signal_init(srv->loop, &srv->sigterm);
    srv->sigint.data = srv->sigterm.data = srv;
    uv_signal_start(&srv->sigint, on_signal, SIGINT);
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
    uv_tcp_init(srv->loop, &srv->listener);
    srv->listener.data = srv;
    r = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0);
    if (r == 0) r = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
    if (r != 0) {
        kv_log(KV_LOG_ERROR, "cannot listen on %s:%lld: %s", cfg->bind, cfg->port, uv_strerror(r));
        /* A follower is already dialling its leader: close that link its own
         * way (server_free's blanket close would close it a second time when
         * the cancelled dial reports back). */
        repl_stop(&srv->repl);
        return -1;
    }
    uv_timer_init(srv->loop, &srv->shutdown_timer);
    srv->shutdown_timer.data = srv;
    uv_timer_init(srv->loop, &srv->idle_timer);
    srv->idle_timer.data = srv;
    if (cfg->idle_timeout > 0) uv_timer_start(&srv->idle_timer, on_idle_sweep, 1000, 1000);
    uv_unref((uv_handle_t *)&srv->idle_timer);
    /* A client that vanishes mid-write must not kill us with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    kv_log(KV_LOG_INFO, "listening on %s:%lld (fsync %s, max clients %lld, max request %zu bytes)", cfg->bind,
           cfg->port, cfg->fsync, cfg->max_clients, cfg->max_request_bytes);
    return 0;
}

int server_run(server *srv) {
    /* The loop ends by itself once shutdown has closed every handle. */
    uv_run(srv->loop, UV_RUN_DEFAULT);
    return 0;
}

static void close_any(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

void server_free(server *srv) {
    if (srv->wal_ready) {
        /* Whatever the policy, a clean exit leaves every logged write on disk. */
        durability_flush_now(&srv->durability);
        kv_log(KV_LOG_INFO, "WAL flushed and synced up to record %" PRIu64, wal_written_upto(&srv->wal));
        wal_close(&srv->wal);
        srv->wal_ready = 0;
    }
    if (srv->lock_fd >= 0) close(srv->lock_fd);
    srv->lock_fd = -1;
    /* If init failed half way, close whatever it opened so the loop can be freed. */
    uv_walk(srv->loop, close_any, NULL);
    uv_run(srv->loop, UV_RUN_DEFAULT);
    uv_loop_close(srv->loop);
    repl_free(&srv->repl);
    kv_secret_free(&srv->requirepass);
    kv_store_free(&srv->store);
    free(srv->args);
    srv->args = NULL;
}
