/* busy_poll.h - spin before sleeping: after I/O, keep the loop polling
 * without blocking for a short budget before it sleeps in epoll_wait again.
 *
 * Why: a server that answers quickly runs out of work between two requests
 * and goes to sleep. The next request then has to wake it, and on a loaded
 * machine (or a VM) that wakeup, paid by the sender's kernel and the
 * scheduler, costs more than serving the request. Spinning for a few tens of
 * microseconds after activity means a busy server is never asleep when its
 * next request lands; an idle one still sleeps, because the spin ends once
 * no I/O has been seen for the whole budget.
 *
 * The price is CPU: at most budget microseconds of polling each time the
 * traffic pauses. A budget of 0 turns it off. */
#ifndef KV_BUSY_POLL_H
#define KV_BUSY_POLL_H

#include <stdint.h>
#include <uv.h>

typedef struct kv_busy_poll {
    uv_idle_t idle;   /* while started, libuv polls with a zero timeout */
    uint64_t budget_ns;
    uint64_t last_ns; /* when the spin last saw activity */
    int seen;         /* activity since the idle callback last ran */
    int held;         /* kv_busy_poll_hold: no spinning until released */
} kv_busy_poll;

/* Sets up the idle handle on loop (it never keeps the loop alive). A budget of
 * 0 disables spinning. Returns 0, or a libuv error code. */
int kv_busy_poll_init(kv_busy_poll *bp, uv_loop_t *loop, unsigned budget_us);
/* Call on I/O activity (a read, a completed sync): starts or extends the spin. */
void kv_busy_poll_note(kv_busy_poll *bp);
/* Spinning means the idle handle is active: libuv then polls without blocking. */
static inline int kv_busy_poll_spinning(const kv_busy_poll *bp) { return uv_is_active((const uv_handle_t *)&bp->idle); }
/* While held, the loop does not spin: for waits where the work happens on
 * other threads (an fdatasync), which a spinning loop would only slow down
 * by taking a core they need. */
void kv_busy_poll_hold(kv_busy_poll *bp, int held);
/* Changes the budget (0: off, stopping a spin under way): for a role that
 * should or should not spin (a replication follower does not). */
void kv_busy_poll_set_budget(kv_busy_poll *bp, unsigned budget_us);
static inline unsigned kv_busy_poll_budget_us(const kv_busy_poll *bp) { return (unsigned)(bp->budget_ns / 1000); }
/* Stops spinning for good (shutdown); the handle is closed with the loop's others. */
void kv_busy_poll_stop(kv_busy_poll *bp);

#endif
