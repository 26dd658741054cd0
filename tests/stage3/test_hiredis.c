/* test_hiredis.c - hiredis, a C client no one here wrote, drives the real
 * server: plain commands, binary values, pipelining, INFO. If hiredis works
 * unchanged, the server speaks RESP2 the way the Redis ecosystem expects. */
#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server_proc.h"

typedef struct fixture {
    server_proc sp;
    redisContext *rc;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (server_start(&f->sp, "") != 0) {
        server_cleanup(&f->sp);
        free(f);
        return -1;
    }
    f->rc = redisConnect("127.0.0.1", f->sp.port);
    if (!f->rc || f->rc->err) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    redisFree(f->rc);
    int rc = server_cleanup(&f->sp);
    free(f);
    return rc;
}

static void test_basic_commands(void **state) {
    fixture *f = *state;
    redisReply *r = redisCommand(f->rc, "SET %s %s", "greeting", "hello world");
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    assert_string_equal(r->str, "OK");
    freeReplyObject(r);
    r = redisCommand(f->rc, "GET greeting");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "hello world");
    freeReplyObject(r);
    r = redisCommand(f->rc, "DEL greeting nothere");
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    r = redisCommand(f->rc, "GET greeting");
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    r = redisCommand(f->rc, "NOSUCH");
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_string_equal(r->str, "ERR unknown command 'NOSUCH'");
    freeReplyObject(r);
}

static void test_binary_values(void **state) {
    fixture *f = *state;
    const char val[] = "a\0b\r\nc";
    redisReply *r = redisCommand(f->rc, "SET %b %b", "bin\0key", (size_t)7, val, sizeof val);
    assert_string_equal(r->str, "OK");
    freeReplyObject(r);
    r = redisCommand(f->rc, "GET %b", "bin\0key", (size_t)7);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(r->len, sizeof val);
    assert_memory_equal(r->str, val, sizeof val);
    freeReplyObject(r);
}

static void test_pipelining(void **state) {
    fixture *f = *state;
    for (int i = 0; i < 500; i++) redisAppendCommand(f->rc, "SET key:%d %d", i, i * 3);
    for (int i = 0; i < 500; i++) redisAppendCommand(f->rc, "GET key:%d", i);
    for (int i = 0; i < 1000; i++) {
        redisReply *r;
        assert_int_equal(redisGetReply(f->rc, (void **)&r), REDIS_OK);
        if (i < 500) {
            assert_string_equal(r->str, "OK");
        } else {
            char want[32];
            snprintf(want, sizeof want, "%d", (i - 500) * 3);
            assert_string_equal(r->str, want);
        }
        freeReplyObject(r);
    }
}

static void test_info(void **state) {
    fixture *f = *state;
    redisReply *r = redisCommand(f->rc, "SET a 1");
    freeReplyObject(r);
    r = redisCommand(f->rc, "INFO");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    const char *stage = getenv("KV_EXPECT_STAGE"); /* set by CMake: stage 4 re-runs this file */
    if (!stage) fail_msg("KV_EXPECT_STAGE is not set: run this test through ctest");
    char want[128];
    snprintf(want, sizeof want, "stage:%s\r\n", stage);
    assert_non_null(strstr(r->str, want));
    assert_non_null(strstr(r->str, "keys:1\r\n"));
    assert_non_null(strstr(r->str, "connected_clients:1\r\n"));
    freeReplyObject(r);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_info, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
