/* busy_poll.c - spin before sleeping (see busy_poll.h). */
#include "busy_poll.h"

#include <string.h>

static void on_idle(uv_idle_t *h) {
    kv_busy_poll *bp = h->data;
    uint64_t now = uv_hrtime();
    if (bp->seen) {
        /* Reading the clock here, once per loop iteration, keeps it off the
         * per-read path. */
        bp->seen = 0;
        bp->last_ns = now;
        return;
    }
    if (now - bp->last_ns >= bp->budget_ns) uv_idle_stop(h);
}

int kv_busy_poll_init(kv_busy_poll *bp, uv_loop_t *loop, unsigned budget_us) {
    memset(bp, 0, sizeof *bp);
    bp->budget_ns = (uint64_t)budget_us * 1000;
    int r = uv_idle_init(loop, &bp->idle);
    if (r != 0) return r;
    bp->idle.data = bp;
    uv_unref((uv_handle_t *)&bp->idle);
    return 0;
}

void kv_busy_poll_note(kv_busy_poll *bp) {
    if (bp->budget_ns == 0 || bp->held) return;
    bp->seen = 1;
    uv_idle_start(&bp->idle, on_idle); /* no-op while already spinning */
}

void kv_busy_poll_hold(kv_busy_poll *bp, int held) {
    bp->held = held;
    if (held) uv_idle_stop(&bp->idle);
}

void kv_busy_poll_set_budget(kv_busy_poll *bp, unsigned budget_us) {
    bp->budget_ns = (uint64_t)budget_us * 1000;
    if (budget_us == 0) uv_idle_stop(&bp->idle);
}

void kv_busy_poll_stop(kv_busy_poll *bp) {
    bp->budget_ns = 0;
    uv_idle_stop(&bp->idle);
}
