/* test_state_machine.c - stage 5's state machine without a server:
 * sm_apply's replies for SET, DEL, INCR and APPEND (Redis's texts), Redis's
 * integer syntax, the session table (a repeated seq answered from it, lower
 * seqs, unknown ids, eviction of the least recently used by log index,
 * iteration in id order), and the out-of-memory paths: each is reported
 * (-1, on which node.c exits: a half-applied entry must not serve) and
 * leaves the session table as it was. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sessions.h"
#include "state_machine.h"

/* This file defines the failing allocator; the forced header's macros
 * must not rename its own calls. */
#undef malloc
#undef realloc

int fail_alloc_countdown = -1;

static int should_fail(void) {
    if (fail_alloc_countdown < 0) return 0;
    return fail_alloc_countdown-- == 0;
}

void *fail_alloc_malloc(size_t n) { return should_fail() ? NULL : malloc(n); }
void *fail_alloc_realloc(void *p, size_t n) { return should_fail() ? NULL : realloc(p, n); }

typedef struct fixture {
    kv_store store;
    sessions table;
    kv_buf reply;
    uint64_t index; /* the next entry's log index */
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(kv_store_init(&f->store), 0);
    sessions_init(&f->table, 3);
    kv_buf_init(&f->reply);
    f->index = 1;
    fail_alloc_countdown = -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    kv_store_free(&f->store);
    sessions_free(&f->table);
    kv_buf_free(&f->reply);
    free(f);
    return 0;
}

static ProtobufCBinaryData bytes(const char *s) {
    ProtobufCBinaryData b = {strlen(s), (uint8_t *)s};
    return b;
}

/* Applies one command as the next entry; returns its reply as text (valid
 * until the next apply). */
static const char *apply(fixture *f, Kv__Command__Op op, uint64_t sid, uint64_t seq, const char *key,
                         const char *value) {
    Kv__Command cmd = KV__COMMAND__INIT;
    cmd.op = op;
    cmd.session = sid;
    cmd.seq = seq;
    ProtobufCBinaryData keys[1];
    if (key) cmd.key = bytes(key);
    if (value) cmd.value = bytes(value);
    if (op == KV__COMMAND__OP__DEL) {
        keys[0] = bytes(key);
        cmd.n_keys = 1;
        cmd.keys = keys;
    }
    f->reply.start = f->reply.len = 0;
    assert_int_equal(sm_apply(&f->store, &f->table, f->index++, &cmd, &f->reply), 0);
    assert_int_equal(kv_buf_append(&f->reply, "", 1), 0); /* NUL-terminate for the asserts */
    return kv_buf_rptr(&f->reply);
}

static void assert_value(fixture *f, const char *key, const char *want) {
    const char *v;
    size_t n;
    if (!want) {
        assert_false(kv_store_get(&f->store, key, strlen(key), &v, &n));
        return;
    }
    assert_true(kv_store_get(&f->store, key, strlen(key), &v, &n));
    assert_int_equal(n, strlen(want));
    assert_memory_equal(v, want, n);
}

#define SET KV__COMMAND__OP__SET
#define DEL KV__COMMAND__OP__DEL
#define INCR KV__COMMAND__OP__INCR
#define APPEND KV__COMMAND__OP__APPEND
#define OPEN KV__COMMAND__OP__SESSION_OPEN
#define NOT_INT "-ERR value is not an integer or out of range\r\n"

static void test_parse_ll(void **state) {
    (void)state;
    long long v = 7;
    static const char *const bad[] = {"", "-", "+1", " 1", "1 ", "007", "-0", "1.5", "abc", "9223372036854775808",
                                      "-9223372036854775809", "99999999999999999999", "123456789012345678901"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (sm_parse_ll(bad[i], strlen(bad[i]), &v)) fail_msg("'%s' parsed as %lld", bad[i], v);
    assert_true(sm_parse_ll("0", 1, &v));
    assert_int_equal(v, 0);
    assert_true(sm_parse_ll("-42", 3, &v));
    assert_int_equal(v, -42);
    assert_true(sm_parse_ll("9223372036854775807", 19, &v));
    assert_true(v == LLONG_MAX);
    assert_true(sm_parse_ll("-9223372036854775808", 20, &v));
    assert_true(v == LLONG_MIN);
}

static void test_commands(void **state) {
    fixture *f = *state;
    assert_string_equal(apply(f, INCR, 0, 0, "n", NULL), ":1\r\n");
    assert_string_equal(apply(f, INCR, 0, 0, "n", NULL), ":2\r\n");
    assert_value(f, "n", "2");
    assert_string_equal(apply(f, SET, 0, 0, "s", "abc"), "+OK\r\n");
    assert_string_equal(apply(f, INCR, 0, 0, "s", NULL), NOT_INT);
    assert_value(f, "s", "abc");
    assert_string_equal(apply(f, SET, 0, 0, "max", "9223372036854775807"), "+OK\r\n");
    assert_string_equal(apply(f, INCR, 0, 0, "max", NULL), "-ERR increment or decrement would overflow\r\n");
    assert_value(f, "max", "9223372036854775807");
    assert_string_equal(apply(f, APPEND, 0, 0, "s", "de"), ":5\r\n");
    assert_string_equal(apply(f, APPEND, 0, 0, "new", ""), ":0\r\n");
    assert_value(f, "new", "");
    assert_value(f, "s", "abcde");
    assert_string_equal(apply(f, DEL, 0, 0, "s", NULL), ":1\r\n");
    assert_string_equal(apply(f, DEL, 0, 0, "s", NULL), ":0\r\n");
    assert_string_equal(apply(f, (Kv__Command__Op)99, 0, 0, "x", NULL),
                        "-ERR this server cannot apply operation 99\r\n");
}

static void test_session_replies(void **state) {
    fixture *f = *state;
    assert_string_equal(apply(f, OPEN, 0, 0, NULL, NULL), ":1\r\n"); /* the id is the entry's index */
    assert_string_equal(apply(f, INCR, 1, 1, "n", NULL), ":1\r\n");
    assert_string_equal(apply(f, INCR, 1, 1, "n", NULL), ":1\r\n"); /* a retry: not applied */
    assert_value(f, "n", "1");
    assert_string_equal(apply(f, SET, 1, 1, "n", "x"), ":1\r\n"); /* the seq decides, not the command */
    assert_value(f, "n", "1");
    assert_string_equal(apply(f, SET, 1, 5, "w", "x"), "+OK\r\n"); /* a gap is allowed */
    assert_string_equal(apply(f, INCR, 1, 6, "w", NULL), NOT_INT);
    assert_string_equal(apply(f, INCR, 1, 6, "w", NULL), NOT_INT); /* error replies are kept too */
    assert_string_equal(apply(f, INCR, 1, 2, "n", NULL), "-SESSIONSTALE seq 2 of session 1 is below its last applied seq 6\r\n");
    assert_string_equal(apply(f, INCR, 1, 0, "n", NULL), "-SESSIONSTALE seq 0 of session 1 is below its last applied seq 6\r\n");
    assert_true(strncmp(apply(f, INCR, 77, 1, "n", NULL), "-SESSIONEXPIRED session 77 is unknown or expired", 48) == 0);
    assert_value(f, "n", "1");
    const session *s = sessions_at(&f->table, 0);
    assert_int_equal(s->last_seq, 6);
    assert_int_equal(s->last_used, 9); /* the stale try at index 9 touched it; the unknown id at 10 did not */
    assert_int_equal(f->table.stats.duplicates, 3);
    assert_int_equal(f->table.stats.stale, 2);
    assert_int_equal(f->table.stats.unknown, 1);
}

static void test_eviction_by_log_position(void **state) {
    fixture *f = *state; /* max 3 */
    apply(f, OPEN, 0, 0, NULL, NULL); /* 1 */
    apply(f, OPEN, 0, 0, NULL, NULL); /* 2 */
    apply(f, OPEN, 0, 0, NULL, NULL); /* 3 */
    apply(f, INCR, 1, 1, "n", NULL);  /* 4: session 1 used after 2 and 3 */
    apply(f, INCR, 2, 1, "n", NULL);  /* 5 */
    apply(f, OPEN, 0, 0, NULL, NULL); /* 6: full: session 3 (last used 3) goes */
    assert_int_equal(sessions_count(&f->table), 3);
    uint64_t want[] = {1, 2, 6};
    for (size_t i = 0; i < 3; i++) assert_int_equal(sessions_at(&f->table, i)->id, want[i]);
    assert_null(sessions_at(&f->table, 3));
    assert_null(sessions_find(&f->table, 3));
    assert_non_null(sessions_find(&f->table, 6));
    apply(f, OPEN, 0, 0, NULL, NULL); /* 7: session 1 (last used 4) goes */
    assert_null(sessions_find(&f->table, 1));
    assert_int_equal(f->table.stats.expired, 2);
    assert_int_equal(f->table.stats.opened, 5);
}

/* The limit travels in the opening entry: a node's own flag (3 here) gives
 * way to the leader's, and a smaller one evicts down to it at once. */
static void test_limit_from_the_entry(void **state) {
    fixture *f = *state; /* max 3 */
    Kv__Command open = KV__COMMAND__INIT;
    open.op = OPEN;
    open.max_sessions = 5;
    for (int i = 0; i < 5; i++) {
        f->reply.start = f->reply.len = 0;
        assert_int_equal(sm_apply(&f->store, &f->table, f->index++, &open, &f->reply), 0);
    }
    assert_int_equal(sessions_count(&f->table), 5); /* 1..5, beyond this node's 3 */
    open.max_sessions = 2;
    f->reply.start = f->reply.len = 0;
    assert_int_equal(sm_apply(&f->store, &f->table, f->index++, &open, &f->reply), 0);
    assert_int_equal(sessions_count(&f->table), 2);
    assert_int_equal(sessions_at(&f->table, 0)->id, 5);
    assert_int_equal(sessions_at(&f->table, 1)->id, 6);
    assert_int_equal(f->table.stats.expired, 4);
}

static void test_out_of_memory_reported(void **state) {
    fixture *f = *state;
    Kv__Command open = KV__COMMAND__INIT;
    open.op = OPEN;
    fail_alloc_countdown = 0; /* the table's first growth fails */
    assert_int_equal(sm_apply(&f->store, &f->table, 1, &open, &f->reply), -1);
    assert_int_equal(sessions_count(&f->table), 0);
    assert_int_equal(f->table.stats.opened, 0);
    f->index = 2;
    apply(f, OPEN, 0, 0, NULL, NULL); /* 2 */
    assert_string_equal(apply(f, INCR, 2, 1, "n", NULL), ":1\r\n");

    /* Recording the reply fails: the session keeps its last seq and reply
     * (the store took the INCR; the node exits and rebuilds from its log). */
    Kv__Command incr = KV__COMMAND__INIT;
    incr.op = INCR;
    incr.key = bytes("n");
    incr.session = 2;
    incr.seq = 2;
    fail_alloc_countdown = 0;
    assert_int_equal(sm_apply(&f->store, &f->table, 9, &incr, &f->reply), -1);
    assert_int_equal(sessions_find(&f->table, 2)->last_seq, 1);
    assert_string_equal(apply(f, INCR, 2, 1, "n", NULL), ":1\r\n");

    /* APPEND's buffer: the value stays as it was. */
    apply(f, SET, 0, 0, "a", "x");
    Kv__Command app = KV__COMMAND__INIT;
    app.op = APPEND;
    app.key = bytes("a");
    app.value = bytes("y");
    fail_alloc_countdown = 0;
    assert_int_equal(sm_apply(&f->store, &f->table, 20, &app, &f->reply), -1);
    assert_value(f, "a", "x");
    fail_alloc_countdown = -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ll),
        cmocka_unit_test_setup_teardown(test_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction_by_log_position, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit_from_the_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory_reported, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
