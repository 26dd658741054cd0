/* test_busy_poll.c - the spin-before-sleep on a real libuv loop: activity
 * starts the spin, it ends once a whole budget passes without activity,
 * activity within the budget extends it, a hold suspends it, and a budget
 * of 0 never spins. "Spinning" is what libuv sees: an active idle handle
 * (kv_busy_poll_spinning), which makes uv_backend_timeout() zero. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "busy_poll.h"

static void never(uv_timer_t *t) { (void)t; }

/* A loop with one far-off timer, as a server has handles keeping it alive
 * (without any, libuv would not block at all and there is nothing to test),
 * and the spin under test. */
typedef struct fixture {
    uv_loop_t loop;
    uv_timer_t keepalive;
    kv_busy_poll bp;
} fixture;

static fixture *open_loop(unsigned budget_us) {
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_timer_init(&f->loop, &f->keepalive), 0);
    assert_int_equal(uv_timer_start(&f->keepalive, never, 3600 * 1000, 0), 0);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* a fresh loop reports a zero timeout until it has run once */
    assert_int_equal(kv_busy_poll_init(&f->bp, &f->loop, budget_us), 0);
    return f;
}

static void close_loop(fixture *f) {
    uv_close((uv_handle_t *)&f->keepalive, NULL);
    uv_close((uv_handle_t *)&f->bp.idle, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
}

/* Runs loop iterations until the spin stops or a second passes; returns
 * how long (ns) the spin lasted. */
static uint64_t spin_duration(fixture *f) {
    uint64_t start = uv_hrtime();
    while (kv_busy_poll_spinning(&f->bp) && uv_hrtime() - start < 1000000000ull) uv_run(&f->loop, UV_RUN_NOWAIT);
    return uv_hrtime() - start;
}

static void test_activity_starts_and_budget_ends_spin(void **state) {
    (void)state;
    fixture *f = open_loop(2000);
    assert_false(kv_busy_poll_spinning(&f->bp));
    assert_int_not_equal(uv_backend_timeout(&f->loop), 0); /* nothing to do: the loop would block */
    kv_busy_poll_note(&f->bp);
    assert_true(kv_busy_poll_spinning(&f->bp));
    assert_int_equal(uv_backend_timeout(&f->loop), 0); /* spinning: poll without blocking */
    uint64_t took = spin_duration(f);
    assert_false(kv_busy_poll_spinning(&f->bp));
    assert_true(took >= 2000000ull);  /* at least the 2 ms budget */
    assert_true(took < 500000000ull); /* and it did end */
    close_loop(f);
}

static void test_activity_extends_spin(void **state) {
    (void)state;
    fixture *f = open_loop(2000);
    uint64_t start = uv_hrtime();
    /* Keep noting activity for 6 ms, three budgets' worth: the spin must last. */
    kv_busy_poll_note(&f->bp);
    while (uv_hrtime() - start < 6000000ull) {
        kv_busy_poll_note(&f->bp);
        uv_run(&f->loop, UV_RUN_NOWAIT);
        assert_true(kv_busy_poll_spinning(&f->bp));
    }
    spin_duration(f);
    assert_false(kv_busy_poll_spinning(&f->bp));
    close_loop(f);
}

static void test_hold_suspends_spin(void **state) {
    (void)state;
    fixture *f = open_loop(100000);
    kv_busy_poll_note(&f->bp);
    assert_true(kv_busy_poll_spinning(&f->bp));
    kv_busy_poll_hold(&f->bp, 1);
    assert_false(kv_busy_poll_spinning(&f->bp));
    assert_int_not_equal(uv_backend_timeout(&f->loop), 0);
    kv_busy_poll_note(&f->bp); /* ignored while held */
    assert_false(kv_busy_poll_spinning(&f->bp));
    kv_busy_poll_hold(&f->bp, 0);
    kv_busy_poll_note(&f->bp);
    assert_true(kv_busy_poll_spinning(&f->bp));
    kv_busy_poll_stop(&f->bp);
    assert_false(kv_busy_poll_spinning(&f->bp));
    kv_busy_poll_note(&f->bp); /* stopped for good */
    assert_false(kv_busy_poll_spinning(&f->bp));
    close_loop(f);
}

static void test_zero_budget_never_spins(void **state) {
    (void)state;
    fixture *f = open_loop(0);
    kv_busy_poll_note(&f->bp);
    assert_false(kv_busy_poll_spinning(&f->bp));
    assert_int_not_equal(uv_backend_timeout(&f->loop), 0);
    close_loop(f);
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
