/* wait.c - blocking WAIT (see wait.h). */
#include "wait.h"

#include "conn.h"
#include "leader.h"
#include "replication.h"
#include "resp_reply.h"
#include "server.h"

/* Deadlines are checked this often while anyone waits. */
#define WAIT_TICK_MS 5

static void finish(conn *c) {
    c->waiting = 0;
    reply_int(&c->out, repl_followers_acked(&c->srv->repl, c->wait_index));
    conn_unblock(c);
}

static void on_wait_tick(uv_timer_t *t) {
    server *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    int any = 0;
    conn *next;
    for (conn *c = srv->conns; c; c = next) {
        next = c->next;
        if (!c->waiting) continue;
        if (c->wait_deadline_ms && now >= c->wait_deadline_ms)
            finish(c);
        else
            any = 1;
    }
    if (!any) uv_timer_stop(t);
}

void wait_begin(conn *c, uint64_t index, long long needed, long long timeout_ms) {
    server *srv = c->srv;
    if (repl_followers_acked(&srv->repl, index) >= needed) {
        reply_int(&c->out, repl_followers_acked(&srv->repl, index));
        return;
    }
    c->waiting = 1;
    c->wait_index = index;
    c->wait_needed = needed;
    c->wait_deadline_ms = timeout_ms > 0 ? uv_now(srv->loop) + (uint64_t)timeout_ms : 0;
    conn_block(c);
    leader_want_acks(&srv->repl, index);
    if (!uv_is_active((uv_handle_t *)&srv->wait_timer))
        uv_timer_start(&srv->wait_timer, on_wait_tick, WAIT_TICK_MS, WAIT_TICK_MS);
}

void wait_check(server *srv) {
    conn *next;
    for (conn *c = srv->conns; c; c = next) {
        next = c->next;
        if (c->waiting && repl_followers_acked(&srv->repl, c->wait_index) >= c->wait_needed) finish(c);
    }
}

void wait_stop(server *srv) { uv_timer_stop(&srv->wait_timer); }
