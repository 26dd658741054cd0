/* test_kvclient_fake.c - the client library against a scripted fake server
 * and its reply parser on its own: replies split at every byte, error
 * replies, garbage, silence, a close in the middle of a reply, and
 * connections that cannot be made. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
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

#include "client_internal.h"
#include "kvclient.h"

/* ---- the reply parser, split at every byte ---- */

static void test_scalar_split_everywhere(void **state) {
    (void)state;
    const char *replies[] = {"+OK\r\n", "-ERR bad thing\r\n", ":-42\r\n", "$5\r\nhe\0lo\r\n", "$-1\r\n", "$0\r\n\r\n"};
    const size_t lens[] = {5, 16, 6, 11, 5, 6};
    for (size_t r = 0; r < 6; r++) {
        for (size_t cut = 0; cut < lens[r]; cut++) {
            scalar s;
            size_t used;
            assert_int_equal(reply_parse_scalar(replies[r], cut, &s, &used), 0); /* incomplete */
        }
        scalar s;
        size_t used;
        assert_int_equal(reply_parse_scalar(replies[r], lens[r], &s, &used), 1);
        assert_int_equal(used, lens[r]);
    }
}

static void test_tree_split_everywhere(void **state) {
    (void)state;
    const char reply[] = "*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n+OK\r\n";
    size_t n = sizeof reply - 1;
    /* A fresh scan of every prefix: incomplete. */
    for (size_t cut = 0; cut < n; cut++) {
        reply_scan scan = {0};
        assert_int_equal(reply_scan_step(&scan, reply, cut), 0);
    }
    /* One scan resumed as each byte arrives: complete exactly at the end. */
    reply_scan scan = {0};
    for (size_t have = 0; have < n; have++) assert_int_equal(reply_scan_step(&scan, reply, have), 0);
    assert_int_equal(reply_scan_step(&scan, reply, n), 1);
    assert_int_equal(scan.off, n);
    kv_reply *r;
    assert_int_equal(reply_build(reply, n, &r), 0);
    assert_int_equal(r->elements, 3);
    assert_int_equal(r->element[1]->element[0]->len, 1);
    assert_int_equal(r->element[1]->element[1]->type, KV_REPLY_NIL);
    assert_string_equal(r->element[2]->str, "OK");
    kv_reply_free(r);
}

static void test_garbage_is_protocol_error(void **state) {
    (void)state;
    const char *bad[] = {"?what\r\n", ":12a\r\n", "$-2\r\n", "$3\r\nabcd\r\n", "+OK\rX"};
    for (size_t i = 0; i < 5; i++) {
        scalar s;
        size_t used;
        assert_int_equal(reply_parse_scalar(bad[i], strlen(bad[i]), &s, &used), -1);
    }
}

/* ---- a scripted fake server ---- */

typedef struct fake {
    int listen_fd;
    int port;
    const char *reply; /* sent after each request is read; NULL: never answer */
    size_t reply_len;
    int close_after;   /* close the connection after sending */
    int accepted;
    pthread_t thread;
} fake;

static void *fake_main(void *arg) {
    fake *f = arg;
    for (;;) {
        int fd = accept(f->listen_fd, NULL, NULL);
        if (fd < 0) return NULL;
        f->accepted++;
        char buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) {
            if (!f->reply) continue; /* silent: read and ignore */
            /* Send byte by byte so the client sees the reply in pieces. */
            for (size_t i = 0; i < f->reply_len; i++) {
                if (write(fd, f->reply + i, 1) != 1) break;
            }
            if (f->close_after) break;
        }
        close(fd);
    }
}

static fake *fake_start(const char *reply, size_t len, int close_after) {
    fake *f = calloc(1, sizeof *f);
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->listen_fd, 8), 0);
    getsockname(f->listen_fd, (struct sockaddr *)&a, &alen);
    f->port = ntohs(a.sin_port);
    f->reply = reply;
    f->reply_len = len;
    f->close_after = close_after;
    pthread_create(&f->thread, NULL, fake_main, f);
    return f;
}

static void fake_stop(fake *f) {
    shutdown(f->listen_fd, SHUT_RDWR);
    close(f->listen_fd);
    pthread_join(f->thread, NULL);
    free(f);
}

static kv_client *client_for(fake *f, int read_timeout_ms) {
    kv_options o;
    kv_options_default(&o);
    o.read_timeout_ms = read_timeout_ms;
    return kv_client_new("127.0.0.1", f->port, &o);
}

static void test_reply_in_single_bytes(void **state) {
    (void)state;
    const char r[] = "$12\r\nhello\r\nworld\r\n";
    fake *f = fake_start(r, sizeof r - 1, 0);
    kv_client *c = client_for(f, 2000);
    char *v;
    size_t n;
    assert_int_equal(kv_get(c, "k", 1, &v, &n), KV_OK);
    assert_int_equal(n, 12);
    assert_memory_equal(v, "hello\r\nworld", 12);
    free(v);
    kv_client_free(c);
    fake_stop(f);
}

static void test_server_error_text(void **state) {
    (void)state;
    const char r[] = "-ERR something specific\r\n";
    fake *f = fake_start(r, sizeof r - 1, 0);
    kv_client *c = client_for(f, 2000);
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_ERR_SERVER);
    assert_string_equal(kv_last_error(c), "ERR something specific");
    assert_int_equal(f->accepted, 1);
    kv_client_free(c);
    fake_stop(f);
}

static void test_protocol_error_reply_reconnects(void **state) {
    (void)state;
    const char r[] = "-ERR Protocol error: nope\r\n";
    fake *f = fake_start(r, sizeof r - 1, 1);
    kv_client *c = client_for(f, 2000);
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_ERR_SERVER);
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_ERR_SERVER); /* not "dropped": a fresh connection */
    assert_int_equal(f->accepted, 2);
    kv_client_free(c);
    fake_stop(f);
}

static void test_garbage_from_server(void **state) {
    (void)state;
    const char r[] = "?not resp\r\n";
    fake *f = fake_start(r, sizeof r - 1, 0);
    kv_client *c = client_for(f, 2000);
    assert_int_equal(kv_ping(c), KV_ERR_PROTOCOL);
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_ERR_PROTOCOL); /* a fresh connection, same garbage */
    kv_client_free(c);
    fake_stop(f);
}

static void test_wrong_reply_type(void **state) {
    (void)state;
    const char r[] = ":1\r\n"; /* an integer where SET expects +OK */
    fake *f = fake_start(r, sizeof r - 1, 0);
    kv_client *c = client_for(f, 2000);
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_ERR_PROTOCOL);
    kv_client_free(c);
    fake_stop(f);
}

static void test_close_mid_reply(void **state) {
    (void)state;
    const char r[] = "$10\r\nabc"; /* then the server closes */
    fake *f = fake_start(r, sizeof r - 1, 1);
    kv_client *c = client_for(f, 2000);
    char *v;
    size_t n;
    assert_int_equal(kv_get(c, "k", 1, &v, &n), KV_ERR_DROPPED);
    assert_non_null(strstr(kv_last_error(c), "closed by the server"));
    assert_int_equal(kv_get(c, "k", 1, &v, &n), KV_ERR_DROPPED); /* reconnected, dropped again */
    assert_int_equal(f->accepted, 2);
    kv_client_free(c);
    fake_stop(f);
}

static void test_silent_server_times_out(void **state) {
    (void)state;
    fake *f = fake_start(NULL, 0, 0);
    kv_client *c = client_for(f, 200);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(kv_ping(c), KV_ERR_TIMEOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long ms = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 150 && ms < 2000);
    assert_non_null(strstr(kv_last_error(c), "within 200 ms"));
    kv_client_free(c);
    fake_stop(f);
}

static void test_connect_timeout(void **state) {
    (void)state;
    /* A listener whose accept queue is full: further SYNs are dropped, so a
     * connect can only time out. Fill the queue with connections first. */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 0), 0);
    getsockname(l, (struct sockaddr *)&a, &alen);
    int fillers[8], nf = 0;
    for (; nf < 8; nf++) {
        fillers[nf] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[nf], (struct sockaddr *)&a, sizeof a);
    }
    kv_options o;
    kv_options_default(&o);
    o.connect_timeout_ms = 300;
    kv_client *c = kv_client_new("127.0.0.1", ntohs(a.sin_port), &o);
    kv_err e = kv_connect(c);
    assert_int_equal(e, KV_ERR_TIMEOUT);
    assert_non_null(strstr(kv_last_error(c), "timed out after 300 ms"));
    kv_client_free(c);
    for (int i = 0; i < nf; i++) close(fillers[i]);
    close(l);
}

static void test_refused_and_unresolvable(void **state) {
    (void)state;
    kv_client *c = kv_client_new("127.0.0.1", 1, NULL); /* nothing listens on port 1 */
    assert_int_equal(kv_ping(c), KV_ERR_CONNECT);
    kv_client_free(c);
    c = kv_client_new("no-such-host.invalid", 7003, NULL);
    assert_int_equal(kv_ping(c), KV_ERR_CONNECT);
    assert_non_null(strstr(kv_last_error(c), "cannot resolve"));
    kv_client_free(c);
}

static void test_strerror_every_code(void **state) {
    (void)state;
    kv_err codes[] = {KV_OK, KV_NOT_FOUND, KV_ERR_CONNECT, KV_ERR_TIMEOUT, KV_ERR_DROPPED,
                      KV_ERR_PROTOCOL, KV_ERR_SERVER, KV_ERR_NOMEM, KV_ERR_USAGE};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = kv_strerror(codes[i]);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
        for (size_t j = 0; j < i; j++) assert_string_not_equal(s, kv_strerror(codes[j]));
    }
    assert_string_equal(kv_strerror((kv_err)99), "unknown error");
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_split_everywhere),
        cmocka_unit_test(test_tree_split_everywhere),
        cmocka_unit_test(test_garbage_is_protocol_error),
        cmocka_unit_test(test_reply_in_single_bytes),
        cmocka_unit_test(test_server_error_text),
        cmocka_unit_test(test_protocol_error_reply_reconnects),
        cmocka_unit_test(test_garbage_from_server),
        cmocka_unit_test(test_wrong_reply_type),
        cmocka_unit_test(test_close_mid_reply),
        cmocka_unit_test(test_silent_server_times_out),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_refused_and_unresolvable),
        cmocka_unit_test(test_strerror_every_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
