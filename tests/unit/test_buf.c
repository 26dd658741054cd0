/* test_buf.c - the growable byte buffer and the reply writers' exact bytes. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "resp_reply.h"

static void test_append_consume_compact(void **state) {
    (void)state;
    kv_buf b;
    kv_buf_init(&b);
    for (int i = 0; i < 1000; i++) assert_int_equal(kv_buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(kv_buf_readable(&b), 10000);
    kv_buf_consume(&b, 9995);
    assert_int_equal(kv_buf_readable(&b), 5);
    assert_memory_equal(kv_buf_rptr(&b), "56789", 5);
    kv_buf_compact(&b);
    assert_int_equal(b.start, 0);
    assert_memory_equal(kv_buf_rptr(&b), "56789", 5);
    kv_buf_consume(&b, 5); /* drained: resets to the front */
    assert_int_equal(b.start, 0);
    assert_int_equal(b.len, 0);
    kv_buf_shrink_if_empty(&b, 1024);
    assert_null(b.data);
    kv_buf_free(&b);
}

static void test_reserve_and_commit(void **state) {
    (void)state;
    kv_buf b;
    kv_buf_init(&b);
    assert_int_equal(kv_buf_reserve(&b, 100000), 0);
    assert_true(kv_buf_writable(&b) >= 100000);
    memcpy(kv_buf_wptr(&b), "abc", 3);
    kv_buf_commit(&b, 3);
    assert_memory_equal(kv_buf_rptr(&b), "abc", 3);
    kv_buf_consume(&b, 1);
    assert_int_equal(kv_buf_reserve(&b, kv_buf_writable(&b) + 1), 0); /* reuses the consumed byte */
    assert_memory_equal(kv_buf_rptr(&b), "bc", 2);
    kv_buf_free(&b);
}

static void test_overflow_sets_oom(void **state) {
    (void)state;
    kv_buf b;
    kv_buf_init(&b);
    assert_int_equal(kv_buf_append(&b, "x", 1), 0);
    assert_int_equal(b.oom, 0);
    assert_int_equal(kv_buf_reserve(&b, SIZE_MAX - 1), -1); /* cannot be satisfied */
    assert_int_equal(b.oom, 1);
    assert_memory_equal(kv_buf_rptr(&b), "x", 1); /* contents untouched */
    kv_buf_free(&b);
}

static void expect_bytes(kv_buf *b, const char *want, size_t n) {
    assert_int_equal(kv_buf_readable(b), n);
    assert_memory_equal(kv_buf_rptr(b), want, n);
    kv_buf_consume(b, n);
}

static void test_reply_writers(void **state) {
    (void)state;
    kv_buf b;
    kv_buf_init(&b);
    reply_ok(&b);
    expect_bytes(&b, "+OK\r\n", 5);
    reply_simple(&b, "PONG");
    expect_bytes(&b, "+PONG\r\n", 7);
    reply_error(&b, "ERR bad %s", "thing\r\nhere");
    expect_bytes(&b, "-ERR bad thing  here\r\n", 22); /* CR LF would end the line early */
    reply_int(&b, 0);
    expect_bytes(&b, ":0\r\n", 4);
    reply_int(&b, -42);
    expect_bytes(&b, ":-42\r\n", 6);
    reply_int(&b, LLONG_MIN);
    expect_bytes(&b, ":-9223372036854775808\r\n", 23);
    reply_bulk(&b, "a\0\r\n", 4);
    expect_bytes(&b, "$4\r\na\0\r\n\r\n", 10);
    reply_bulk(&b, "", 0);
    expect_bytes(&b, "$0\r\n\r\n", 6);
    reply_null(&b);
    expect_bytes(&b, "$-1\r\n", 5);
    reply_array(&b, 2);
    expect_bytes(&b, "*2\r\n", 4);
    kv_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_consume_compact),
        cmocka_unit_test(test_reserve_and_commit),
        cmocka_unit_test(test_reply_writers),
        cmocka_unit_test(test_overflow_sets_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
