/* test_kvclient_resilience.c - the client library facing servers that
 * close, stall or send hostile replies: an error reply sent just before the
 * server closes in the middle of a large request is reported as the
 * server's error (not as "dropped"); a connection the server closed while
 * idle is replaced without failing the next call; reply headers that
 * promise more than arrives allocate nothing; nesting, integer range and
 * large arrays split into pieces. Fake server first, then the real one. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client_internal.h" /* KV_IDLE_CHECK_MS, REPLY_MAX_DEPTH */
#include "fake_server.h"
#include "kvclient.h"
#include "server_proc.h"

#define MIB (1024 * 1024)

static long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static kv_client *client_on(int port, int read_timeout_ms) {
    kv_options o;
    kv_options_default(&o);
    o.read_timeout_ms = read_timeout_ms;
    kv_client *c = kv_client_new("127.0.0.1", port, &o);
    assert_non_null(c);
    return c;
}

static void answer_all(fake_conn *fc, const char *reply) {
    while (fake_read_request(fc, NULL, NULL) == 1)
        if (fake_write_str(fc->fd, reply) != 0) return;
}

/* ---- the server explains, then closes, while we are still sending ---- */

/* First connection: reads a little of a huge request, refuses it the way
 * our server does (error reply, then close with the rest unread, which
 * resets the connection). Later connections answer +OK. */
static void refuse_large_request(int fd, int index, void *arg) {
    (void)arg;
    if (index == 0) {
        char buf[1024];
        if (read(fd, buf, sizeof buf) > 0)
            fake_write_str(fd, "-ERR Protocol error: request larger than the limit of 1024 bytes\r\n");
        return;
    }
    fake_conn fc;
    fake_conn_init(&fc, fd);
    answer_all(&fc, "+OK\r\n");
    fake_conn_free(&fc);
}

static void test_error_reply_before_close_mid_request(void **state) {
    (void)state;
    fake_server *f = fake_start(refuse_large_request, NULL);
    assert_non_null(f);
    kv_client *c = client_on(fake_port(f), 5000);
    size_t n = 16 * MIB; /* far more than the socket buffers: the send fails midway */
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'x', n);
    assert_int_equal(kv_set(c, "k", 1, big, n), KV_ERR_SERVER);
    assert_string_equal(kv_last_error(c), "ERR Protocol error: request larger than the limit of 1024 bytes");
    /* The next call uses a new connection and does not fail as "dropped". */
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_OK);
    assert_int_equal(fake_connections(f), 2);
    free(big);
    kv_client_free(c);
    fake_stop(f);
}

/* ---- a connection closed by the server while idle ---- */

/* First connection: answers one command, then closes it (an idle timeout
 * in fast motion). Later connections answer every command. */
static void close_after_one(int fd, int index, void *arg) {
    (void)arg;
    fake_conn fc;
    fake_conn_init(&fc, fd);
    if (index == 0) {
        if (fake_read_request(&fc, NULL, NULL) == 1) fake_write_str(fd, "+PONG\r\n");
    } else {
        answer_all(&fc, "+PONG\r\n");
    }
    fake_conn_free(&fc);
}

static void test_idle_connection_closed_by_server_is_replaced(void **state) {
    (void)state;
    fake_server *f = fake_start(close_after_one, NULL);
    assert_non_null(f);
    kv_client *c = client_on(fake_port(f), 2000);
    assert_int_equal(kv_ping(c), KV_OK);
    long long replied = mono_ms();
    long long deadline = replied + 10000;
    while (fake_finished(f) < 1 && mono_ms() < deadline) pause_ms(5); /* the server has closed */
    assert_int_equal(fake_finished(f), 1);
    /* The library checks a connection only after it has been idle for
     * KV_IDLE_CHECK_MS (busy connections skip the extra system call), so
     * this test has to let that much time pass. */
    long long idle_enough = replied + KV_IDLE_CHECK_MS + 50;
    if (mono_ms() < idle_enough) pause_ms((int)(idle_enough - mono_ms()));
    assert_int_equal(kv_ping(c), KV_OK); /* not KV_ERR_DROPPED: nothing was in flight */
    assert_int_equal(fake_connections(f), 2);
    kv_client_free(c);
    fake_stop(f);
}

/* ---- replies: hostile headers, nesting, integers, size ---- */

typedef struct canned {
    const char *bytes;
    size_t len;
    size_t chunk; /* send in pieces of this size (0: all at once) */
} canned;

/* Answers every request with the canned bytes, then waits for the client
 * to close (so "silence" is really silence, not a close). */
static void send_canned(int fd, int index, void *arg) {
    (void)index;
    const canned *cn = arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* pieces leave as pieces */
    fake_conn fc;
    fake_conn_init(&fc, fd);
    while (fake_read_request(&fc, NULL, NULL) == 1) {
        size_t step = cn->chunk ? cn->chunk : cn->len;
        for (size_t off = 0; off < cn->len; off += step)
            if (fake_write(fd, cn->bytes + off, cn->len - off < step ? cn->len - off : step) != 0) break;
    }
    fake_conn_free(&fc);
}

/* Runs one generic command against a fake that answers with bytes. */
static kv_err command_with_reply(const char *bytes, size_t len, size_t chunk, int read_timeout_ms, kv_reply **out,
                                 char *err, size_t errlen) {
    canned cn = {bytes, len, chunk};
    fake_server *f = fake_start(send_canned, &cn);
    assert_non_null(f);
    kv_client *c = client_on(fake_port(f), read_timeout_ms);
    const char *argv[] = {"ANY"};
    kv_err e = kv_command(c, 1, argv, NULL, out);
    snprintf(err, errlen, "%s", kv_last_error(c));
    kv_client_free(c);
    fake_stop(f);
    return e;
}

static void test_huge_array_header_allocates_nothing(void **state) {
    (void)state;
    /* Two billion elements promised, none sent: the client must wait (and
     * time out), not allocate room for them up front. */
    const char r[] = "*2000000000\r\n";
    kv_reply *out;
    char err[512];
    long long t0 = mono_ms();
    assert_int_equal(command_with_reply(r, sizeof r - 1, 0, 300, &out, err, sizeof err), KV_ERR_TIMEOUT);
    assert_null(out);
    assert_true(mono_ms() - t0 < 5000);
    const char b[] = "$536870912\r\nonly this";
    assert_int_equal(command_with_reply(b, sizeof b - 1, 0, 300, &out, err, sizeof err), KV_ERR_TIMEOUT);
}

/* "*1\r\n" depth times around ":7\r\n". */
static char *nested(int depth, size_t *len) {
    char *p = malloc((size_t)depth * 4 + 5);
    assert_non_null(p);
    for (int i = 0; i < depth; i++) memcpy(p + i * 4, "*1\r\n", 4);
    memcpy(p + depth * 4, ":7\r\n", 5);
    *len = (size_t)depth * 4 + 4;
    return p;
}

static void test_nesting_limit(void **state) {
    (void)state;
    size_t len;
    char err[512];
    kv_reply *out;
    char *ok = nested(REPLY_MAX_DEPTH, &len);
    assert_int_equal(command_with_reply(ok, len, 0, 2000, &out, err, sizeof err), KV_OK);
    kv_reply *r = out;
    for (int i = 0; i < REPLY_MAX_DEPTH; i++) {
        assert_int_equal(r->type, KV_REPLY_ARRAY);
        assert_int_equal(r->elements, 1);
        r = r->element[0];
    }
    assert_int_equal(r->integer, 7);
    kv_reply_free(out);
    free(ok);
    char *deep = nested(REPLY_MAX_DEPTH + 1, &len);
    assert_int_equal(command_with_reply(deep, len, 0, 2000, &out, err, sizeof err), KV_ERR_PROTOCOL);
    assert_null(out);
    free(deep);
}

static void test_integer_range_and_empty_replies(void **state) {
    (void)state;
    const char r[] = "*6\r\n:9223372036854775807\r\n:-9223372036854775808\r\n*0\r\n*-1\r\n$0\r\n\r\n+\r\n";
    kv_reply *out;
    char err[512];
    assert_int_equal(command_with_reply(r, sizeof r - 1, 1, 2000, &out, err, sizeof err), KV_OK);
    assert_int_equal(out->elements, 6);
    assert_true(out->element[0]->integer == INT64_MAX);
    assert_true(out->element[1]->integer == INT64_MIN);
    assert_int_equal(out->element[2]->type, KV_REPLY_ARRAY);
    assert_int_equal(out->element[2]->elements, 0);
    assert_int_equal(out->element[3]->type, KV_REPLY_NIL);
    assert_int_equal(out->element[4]->type, KV_REPLY_BULK);
    assert_int_equal(out->element[4]->len, 0);
    assert_string_equal(out->element[4]->str, "");
    assert_int_equal(out->element[5]->type, KV_REPLY_STATUS);
    assert_string_equal(out->element[5]->str, "");
    kv_reply_free(out);
    const char over[] = ":9223372036854775808\r\n";
    assert_int_equal(command_with_reply(over, sizeof over - 1, 0, 2000, &out, err, sizeof err), KV_ERR_PROTOCOL);
    const char nodigits[] = ":-\r\n";
    assert_int_equal(command_with_reply(nodigits, sizeof nodigits - 1, 0, 2000, &out, err, sizeof err),
                     KV_ERR_PROTOCOL);
}

static void test_large_array_in_pieces(void **state) {
    (void)state;
    enum { N = 100000 };
    size_t cap = (size_t)N * 24 + 32, len = 0;
    char *r = malloc(cap);
    assert_non_null(r);
    len += (size_t)snprintf(r, cap, "*%d\r\n", N);
    for (int i = 0; i < N; i++) {
        char v[16];
        int vl = snprintf(v, sizeof v, "v%d", i);
        len += (size_t)snprintf(r + len, cap - len, "$%d\r\n%s\r\n", vl, v);
    }
    kv_reply *out;
    char err[512];
    /* Pieces of 997 bytes: elements and headers split everywhere. */
    assert_int_equal(command_with_reply(r, len, 997, 5000, &out, err, sizeof err), KV_OK);
    assert_int_equal(out->elements, N);
    assert_string_equal(out->element[0]->str, "v0");
    assert_string_equal(out->element[N / 2]->str, "v50000");
    assert_string_equal(out->element[N - 1]->str, "v99999");
    kv_reply_free(out);
    free(r);
}

/* ---- the same situations with the real server ---- */

static void test_real_server_refuses_large_value(void **state) {
    (void)state;
    if (!getenv("KV_SERVER_BIN")) skip();
    server_proc sp = {0};
    assert_int_equal(server_start(&sp, "--max-request-bytes 64k"), 0);
    kv_client *c = client_on(sp.port, 5000);
    size_t n = 8 * MIB;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'y', n);
    /* The server refuses at the header, before the payload, and closes: we
     * still report its reason rather than "connection dropped". */
    assert_int_equal(kv_set(c, "k", 1, big, n), KV_ERR_SERVER);
    assert_string_equal(kv_last_error(c), "ERR Protocol error: request larger than the limit of 65536 bytes");
    assert_int_equal(kv_set(c, "k", 1, "small", 5), KV_OK);
    free(big);
    kv_client_free(c);
    assert_int_equal(server_cleanup(&sp), 0);
}

/* idle_closes from INFO, or -1. */
static long long idle_closes(kv_client *c) {
    char *info;
    if (kv_info(c, &info) != KV_OK) return -1;
    const char *p = strstr(info, "idle_closes:");
    long long n = p ? strtoll(p + strlen("idle_closes:"), NULL, 10) : -1;
    free(info);
    return n;
}

static void test_real_server_idle_timeout(void **state) {
    (void)state;
    if (!getenv("KV_SERVER_BIN")) skip();
    server_proc sp = {0};
    assert_int_equal(server_start(&sp, "--timeout 1"), 0);
    kv_client *idle = client_on(sp.port, 5000);
    kv_client *watcher = client_on(sp.port, 5000);
    assert_int_equal(kv_ping(idle), KV_OK);
    long long deadline = mono_ms() + 10000;
    while (idle_closes(watcher) < 1 && mono_ms() < deadline) pause_ms(20); /* the watcher stays busy */
    assert_int_equal(idle_closes(watcher), 1);
    /* The server closed the idle connection; the next call just works. */
    assert_int_equal(kv_set(idle, "after", 5, "idle", 4), KV_OK);
    kv_client_free(watcher);
    kv_client_free(idle);
    assert_int_equal(server_cleanup(&sp), 0);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_reply_before_close_mid_request),
        cmocka_unit_test(test_idle_connection_closed_by_server_is_replaced),
        cmocka_unit_test(test_huge_array_header_allocates_nothing),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_integer_range_and_empty_replies),
        cmocka_unit_test(test_large_array_in_pieces),
        cmocka_unit_test(test_real_server_refuses_large_value),
        cmocka_unit_test(test_real_server_idle_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
