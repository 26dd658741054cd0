/* test_kvclient_pipeline.c - pipelining when things go wrong: every queued
 * command gets exactly one result even when the connection dies midway or
 * the server closes after a protocol error; a pipeline larger than the
 * socket buffers, against a server that stops reading until its replies are
 * read, completes instead of deadlocking (fake server, then the real one). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_server.h"
#include "kvclient.h"
#include "server_proc.h"

#define MIB (1024 * 1024)

static kv_client *client_for(const fake_server *f) {
    kv_options o;
    kv_options_default(&o);
    o.read_timeout_ms = o.write_timeout_ms = 5000;
    kv_client *c = kv_client_new("127.0.0.1", fake_port(f), &o);
    assert_non_null(c);
    return c;
}

/* Replies +OK to every request until the client closes. */
static void answer_ok(fake_conn *fc) {
    while (fake_read_request(fc, NULL, NULL) == 1)
        if (fake_write_str(fc->fd, "+OK\r\n") != 0) return;
}

/* First connection: n requests answered, then closed. Later ones: +OK. */
static void answer_n_then_close(int fd, int index, void *arg) {
    int n = *(int *)arg;
    fake_conn fc;
    fake_conn_init(&fc, fd);
    if (index == 0) {
        for (int i = 0; i < n && fake_read_request(&fc, NULL, NULL) == 1; i++) fake_write_str(fd, "+OK\r\n");
    } else {
        answer_ok(&fc);
    }
    fake_conn_free(&fc);
}

static void expect_ok(kv_client *c) {
    kv_reply *r;
    assert_int_equal(kv_get_reply(c, &r), KV_OK);
    assert_int_equal(r->type, KV_REPLY_STATUS);
    assert_string_equal(r->str, "OK");
    kv_reply_free(r);
}

static void expect_dropped(kv_client *c) {
    kv_reply *r = (kv_reply *)1;
    assert_int_equal(kv_get_reply(c, &r), KV_ERR_DROPPED);
    assert_null(r);
}

static void test_drop_midway_reports_every_reply(void **state) {
    (void)state;
    int n = 3;
    fake_server *f = fake_start(answer_n_then_close, &n);
    assert_non_null(f);
    kv_client *c = client_for(f);
    for (int i = 0; i < 5; i++) assert_int_equal(kv_append_set(c, "k", 1, "v", 1), KV_OK);
    assert_int_equal(kv_pending_replies(c), 5);
    for (int i = 0; i < 3; i++) expect_ok(c);
    expect_dropped(c); /* the call that found the connection gone */
    assert_int_equal(kv_pending_replies(c), 1);
    expect_dropped(c); /* the last command's reply was lost with it */
    assert_non_null(strstr(kv_last_error(c), "reply lost"));
    assert_int_equal(kv_pending_replies(c), 0);
    kv_reply *r;
    assert_int_equal(kv_get_reply(c, &r), KV_ERR_USAGE);
    /* The client carries on with a new connection. */
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_OK);
    assert_int_equal(fake_connections(f), 2);
    kv_client_free(c);
    fake_stop(f);
}

/* First connection: +OK, then a protocol error and close, as our server does. */
static void protocol_error_second(int fd, int index, void *arg) {
    (void)arg;
    fake_conn fc;
    fake_conn_init(&fc, fd);
    if (index == 0) {
        if (fake_read_request(&fc, NULL, NULL) == 1) fake_write_str(fd, "+OK\r\n");
        if (fake_read_request(&fc, NULL, NULL) == 1) fake_write_str(fd, "-ERR Protocol error: invalid bulk length\r\n");
    } else {
        answer_ok(&fc);
    }
    fake_conn_free(&fc);
}

static void test_protocol_error_inside_a_pipeline(void **state) {
    (void)state;
    fake_server *f = fake_start(protocol_error_second, NULL);
    assert_non_null(f);
    kv_client *c = client_for(f);
    for (int i = 0; i < 4; i++) assert_int_equal(kv_append_set(c, "k", 1, "v", 1), KV_OK);
    expect_ok(c);
    kv_reply *r;
    assert_int_equal(kv_get_reply(c, &r), KV_OK); /* the error reply itself */
    assert_int_equal(r->type, KV_REPLY_ERROR);
    assert_string_equal(r->str, "ERR Protocol error: invalid bulk length");
    kv_reply_free(r);
    /* The server closed after it: the two replies still owed never come. */
    assert_int_equal(kv_pending_replies(c), 2);
    expect_dropped(c);
    assert_non_null(strstr(kv_last_error(c), "after a protocol error"));
    expect_dropped(c);
    assert_int_equal(kv_pending_replies(c), 0);
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_OK);
    kv_client_free(c);
    fake_stop(f);
}

static void test_sync_call_forgets_lost_replies(void **state) {
    (void)state;
    int n = 1;
    fake_server *f = fake_start(answer_n_then_close, &n);
    assert_non_null(f);
    kv_client *c = client_for(f);
    for (int i = 0; i < 3; i++) assert_int_equal(kv_append_set(c, "k", 1, "v", 1), KV_OK);
    expect_ok(c);
    expect_dropped(c);
    assert_int_equal(kv_pending_replies(c), 1);
    /* That reply can never arrive, so it cannot be confused with this one. */
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_OK);
    assert_int_equal(kv_pending_replies(c), 0);
    kv_client_free(c);
    fake_stop(f);
}

static void test_append_without_a_server(void **state) {
    (void)state;
    /* A port that is bound but not listening refuses connections, and no
     * other process can start listening on it while we hold it. */
    int hold = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(hold, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(hold, (struct sockaddr *)&a, &alen), 0);
    kv_client *c = kv_client_new("127.0.0.1", ntohs(a.sin_port), NULL);
    assert_int_equal(kv_append_set(c, "k", 1, "v", 1), KV_ERR_CONNECT);
    assert_non_null(strstr(kv_last_error(c), "Connection refused"));
    assert_int_equal(kv_pending_replies(c), 0); /* nothing was queued */
    kv_client_free(c);
    close(hold);
}

/* Echoes each request's last argument as a bulk reply, written in full
 * before the next request is read: a server that stops reading while its
 * replies wait, like ours under backpressure. */
static void echo_blocking(int fd, int index, void *arg) {
    (void)index;
    (void)arg;
    fake_conn fc;
    fake_conn_init(&fc, fd);
    char *v;
    size_t n;
    while (fake_read_request(&fc, &v, &n) == 1) {
        char head[32];
        snprintf(head, sizeof head, "$%zu\r\n", n);
        int bad = fake_write_str(fd, head) || fake_write(fd, v, n) || fake_write_str(fd, "\r\n");
        free(v);
        if (bad) break;
    }
    fake_conn_free(&fc);
}

static char *pattern(size_t n, int seed) {
    char *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = (char)(i * 31 + (size_t)seed);
    return p;
}

static void test_big_pipeline_against_a_server_that_stops_reading(void **state) {
    (void)state;
    fake_server *f = fake_start(echo_blocking, NULL);
    assert_non_null(f);
    kv_client *c = client_for(f);
    /* 32 MiB each way: far more than the socket buffers hold. Without
     * reading while sending, both sides would wait for each other until the
     * write timeout. */
    enum { N = 32 };
    char *vals[N];
    for (int i = 0; i < N; i++) {
        vals[i] = pattern(MIB, i);
        assert_int_equal(kv_append_set(c, "k", 1, vals[i], MIB), KV_OK);
    }
    for (int i = 0; i < N; i++) {
        kv_reply *r;
        assert_int_equal(kv_get_reply(c, &r), KV_OK);
        assert_int_equal(r->type, KV_REPLY_BULK);
        assert_int_equal(r->len, MIB);
        assert_memory_equal(r->str, vals[i], MIB);
        kv_reply_free(r);
        free(vals[i]);
    }
    assert_int_equal(fake_connections(f), 1);
    kv_client_free(c);
    fake_stop(f);
}

/* The same against the real server, which stops reading from a client
 * whose unsent replies pass 1 MiB: SET and GET of 1 MiB values, pipelined. */
static void test_big_pipeline_real_server(void **state) {
    (void)state;
    if (!getenv("KV_SERVER_BIN")) skip();
    server_proc sp = {0};
    assert_int_equal(server_start(&sp, ""), 0);
    kv_client *c = kv_client_new("127.0.0.1", sp.port, NULL);
    enum { N = 24 };
    char *vals[N];
    char key[16];
    for (int i = 0; i < N; i++) {
        vals[i] = pattern(MIB, i);
        snprintf(key, sizeof key, "big%d", i);
        assert_int_equal(kv_append_set(c, key, strlen(key), vals[i], MIB), KV_OK);
        assert_int_equal(kv_append_get(c, key, strlen(key)), KV_OK);
    }
    for (int i = 0; i < N; i++) {
        kv_reply *r;
        assert_int_equal(kv_get_reply(c, &r), KV_OK);
        assert_int_equal(r->type, KV_REPLY_STATUS);
        kv_reply_free(r);
        assert_int_equal(kv_get_reply(c, &r), KV_OK);
        assert_int_equal(r->type, KV_REPLY_BULK);
        assert_int_equal(r->len, MIB);
        assert_memory_equal(r->str, vals[i], MIB);
        kv_reply_free(r);
        free(vals[i]);
    }
    assert_int_equal(kv_ping(c), KV_OK);
    kv_client_free(c);
    assert_int_equal(server_cleanup(&sp), 0);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drop_midway_reports_every_reply),
        cmocka_unit_test(test_protocol_error_inside_a_pipeline),
        cmocka_unit_test(test_sync_call_forgets_lost_replies),
        cmocka_unit_test(test_append_without_a_server),
        cmocka_unit_test(test_big_pipeline_against_a_server_that_stops_reading),
        cmocka_unit_test(test_big_pipeline_real_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
