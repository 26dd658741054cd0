/* test_busy_poll.c - the spin-before-sleep on a real libuv loop: activity
 * starts the spin, it ends once a whole budget passes without activity,
 * activity within the budget extends it, a hold suspends it, and a budget
 * of 0 never spins. "Spinning" is what libuv sees: an active idle handle,
 * which makes uv_backend_timeout() zero. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "busy_poll.h"

static void never(uv_timer_t *t) { (void)t; }

/* A loop with one far-off timer, as a server has handles keeping it alive:
 * without any, libuv would not block at all and there is nothing to test. */
static void loop_open(uv_loop_t *loop, uv_timer_t *keepalive) {
    assert_int_equal(uv_loop_init(loop), 0);
    assert_int_equal(uv_timer_init(loop, keepalive), 0);
    assert_int_equal(uv_timer_start(keepalive, never, 3600 * 1000, 0), 0);
    uv_run(loop, UV_RUN_NOWAIT); /* a fresh loop reports a zero timeout until it has run once */
}

static void loop_finish(uv_loop_t *loop, uv_timer_t *keepalive, kv_busy_poll *bp) {
    uv_close((uv_handle_t *)keepalive, NULL);
    uv_close((uv_handle_t *)&bp->idle, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* Runs loop iterations until the spin stops or the deadline passes; returns
 * how long (ns) the spin lasted. */
static uint64_t spin_duration(uv_loop_t *loop, kv_busy_poll *bp, uint64_t deadline_ns) {
    uint64_t start = uv_hrtime();
    while (bp->spinning && uv_hrtime() - start < deadline_ns) uv_run(loop, UV_RUN_NOWAIT);
    return uv_hrtime() - start;
}

static void test_activity_starts_and_budget_ends_spin(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_timer_t keepalive;
    loop_open(&loop, &keepalive);
    kv_busy_poll bp;
    assert_int_equal(kv_busy_poll_init(&bp, &loop, 2000), 0);
    assert_false(bp.spinning);
    assert_int_not_equal(uv_backend_timeout(&loop), 0); /* nothing to do: the loop would block */
    kv_busy_poll_note(&bp);
    assert_true(bp.spinning);
    assert_int_equal(uv_backend_timeout(&loop), 0); /* spinning: poll without blocking */
    uint64_t took = spin_duration(&loop, &bp, 1000000000ull);
    assert_false(bp.spinning);
    assert_true(took >= 2000000ull);  /* at least the 2 ms budget */
    assert_true(took < 500000000ull); /* and it did end */
    loop_finish(&loop, &keepalive, &bp);
}

static void test_activity_extends_spin(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_timer_t keepalive;
    loop_open(&loop, &keepalive);
    kv_busy_poll bp;
    assert_int_equal(kv_busy_poll_init(&bp, &loop, 2000), 0);
    uint64_t start = uv_hrtime();
    /* Keep noting activity for 6 ms, three budgets' worth: the spin must last. */
    kv_busy_poll_note(&bp);
    while (uv_hrtime() - start < 6000000ull) {
        kv_busy_poll_note(&bp);
        uv_run(&loop, UV_RUN_NOWAIT);
        assert_true(bp.spinning);
    }
    spin_duration(&loop, &bp, 1000000000ull);
    assert_false(bp.spinning);
    loop_finish(&loop, &keepalive, &bp);
}

static void test_hold_suspends_spin(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_timer_t keepalive;
    loop_open(&loop, &keepalive);
    kv_busy_poll bp;
    assert_int_equal(kv_busy_poll_init(&bp, &loop, 100000), 0);
    kv_busy_poll_note(&bp);
    assert_true(bp.spinning);
    kv_busy_poll_hold(&bp, 1);
    assert_false(bp.spinning);
    assert_int_not_equal(uv_backend_timeout(&loop), 0);
    kv_busy_poll_note(&bp); /* ignored while held */
    assert_false(bp.spinning);
    kv_busy_poll_hold(&bp, 0);
    kv_busy_poll_note(&bp);
    assert_true(bp.spinning);
    kv_busy_poll_stop(&bp);
    assert_false(bp.spinning);
    kv_busy_poll_note(&bp); /* stopped for good */
    assert_false(bp.spinning);
    loop_finish(&loop, &keepalive, &bp);
}

static void test_zero_budget_never_spins(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_timer_t keepalive;
    loop_open(&loop, &keepalive);
    kv_busy_poll bp;
    assert_int_equal(kv_busy_poll_init(&bp, &loop, 0), 0);
    kv_busy_poll_note(&bp);
    assert_false(bp.spinning);
    assert_int_not_equal(uv_backend_timeout(&loop), 0);
    loop_finish(&loop, &keepalive, &bp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activity_starts_and_budget_ends_spin),
        cmocka_unit_test(test_activity_extends_spin),
        cmocka_unit_test(test_hold_suspends_spin),
        cmocka_unit_test(test_zero_budget_never_spins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
