/* test_kvclient_cluster.c - kvclient-stage5 against scripted fake Raft
 * nodes (tests/stage3/fake_server.c): NOTLEADER followed for reads and
 * writes, leader=unknown waited out on the other known nodes within
 * retry_total_ms, unreachable nodes skipped, and exactly-once sessions: a
 * write tagged SEQ id seq and sent again, with the same seq, after TRYAGAIN
 * or a dropped connection (also to another node); untagged writes are never
 * sent twice; an expired session re-opened when that is safe and
 * KV_ERR_AMBIGUOUS when it is not; reads and pipelines untagged. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_server.h"
#include "kvclient.h"

#define MAX_LOG 32
#define MAX_SCRIPT 16
#define DROP "DROP" /* a script step: read the request, close without a reply */

/* A fake node. Each request is logged ("SET k v") and answered by the next
 * script step if any is left, else by the default: "-<refusal>" when set,
 * else as a leader (GET "leader-value", SESSION OPEN :42, anything else +OK). */
typedef struct node {
    fake_server *srv;
    pthread_mutex_t lock;
    char refusal[200];
    char script[MAX_SCRIPT][200];
    int nscript, next;
    char log[MAX_LOG][160];
    int nlog;
} node;

static void node_handler(int fd, int index, void *arg) {
    (void)index;
    node *n = arg;
    fake_conn c;
    fake_conn_init(&c, fd);
    char *cmd;
    while (fake_read_command(&c, &cmd) == 1) {
        char reply[300];
        pthread_mutex_lock(&n->lock);
        if (n->nlog < MAX_LOG) snprintf(n->log[n->nlog++], sizeof n->log[0], "%s", cmd);
        if (n->next < n->nscript)
            snprintf(reply, sizeof reply, "%s", n->script[n->next++]);
        else if (n->refusal[0])
            snprintf(reply, sizeof reply, "-%s\r\n", n->refusal);
        else if (strncmp(cmd, "GET ", 4) == 0)
            snprintf(reply, sizeof reply, "$12\r\nleader-value\r\n");
        else if (strcmp(cmd, "SESSION OPEN") == 0)
            snprintf(reply, sizeof reply, ":42\r\n");
        else
            snprintf(reply, sizeof reply, "+OK\r\n");
        pthread_mutex_unlock(&n->lock);
        free(cmd);
        if (strcmp(reply, DROP) == 0) break; /* the handler returns: the connection closes */
        if (fake_write_str(fd, reply) != 0) break;
    }
    fake_conn_free(&c);
}

static node *node_start(void) {
    node *n = calloc(1, sizeof *n);
    assert_non_null(n);
    pthread_mutex_init(&n->lock, NULL);
    n->srv = fake_start(node_handler, n);
    assert_non_null(n->srv);
    return n;
}

static int port_of(node *n) { return fake_port(n->srv); }

static void refuse(node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse(node *n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&n->lock);
    vsnprintf(n->refusal, sizeof n->refusal, fmt, ap);
    pthread_mutex_unlock(&n->lock);
    va_end(ap);
}

/* Appends script steps (raw RESP replies, or DROP), NULL-terminated. */
static void script(node *n, ...) {
    va_list ap;
    va_start(ap, n);
    pthread_mutex_lock(&n->lock);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;) {
        assert_true(n->nscript < MAX_SCRIPT);
        snprintf(n->script[n->nscript++], sizeof n->script[0], "%s", s);
    }
    pthread_mutex_unlock(&n->lock);
    va_end(ap);
}

static int log_count(node *n) {
    pthread_mutex_lock(&n->lock);
    int k = n->nlog;
    pthread_mutex_unlock(&n->lock);
    return k;
}

static void assert_logged(node *n, int i, const char *want) {
    pthread_mutex_lock(&n->lock);
    char got[160];
    snprintf(got, sizeof got, "%s", i < n->nlog ? n->log[i] : "(nothing)");
    pthread_mutex_unlock(&n->lock);
    assert_string_equal(got, want);
}

static void node_stop(node *n) {
    fake_stop(n->srv);
    pthread_mutex_destroy(&n->lock);
    free(n);
}

static void assert_contains(const char *text, const char *part) {
    if (!strstr(text, part)) fail_msg("expected \"%s\" in \"%s\"", part, text);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static kv_client *client_for(node *n, int exactly_once, int retry_ms) {
    kv_options o;
    kv_options_default(&o);
    o.exactly_once = exactly_once;
    if (retry_ms >= 0) o.retry_total_ms = retry_ms;
    o.read_timeout_ms = 3000;
    kv_client *c = kv_client_new("127.0.0.1", port_of(n), &o);
    assert_non_null(c);
    return c;
}

static void add_node(kv_client *c, node *n) {
    char list[64];
    snprintf(list, sizeof list, "127.0.0.1:%d", port_of(n));
    assert_int_equal(kv_client_add_nodes(c, list), KV_OK);
}

static void test_defaults(void **state) {
    (void)state;
    kv_options o;
    kv_options_default(&o);
    assert_int_equal(o.retry_total_ms, 10000);
    assert_int_equal(o.exactly_once, 0);
    assert_int_equal(o.max_redirects, 3);
}

static void test_notleader_followed_for_reads_and_writes(void **state) {
    (void)state;
    node *leader = node_start(), *follower = node_start();
    refuse(follower, "NOTLEADER leader=127.0.0.1:%d", port_of(leader));
    kv_client *c = client_for(follower, 0, -1);
    char *v;
    size_t n;
    assert_int_equal(kv_get(c, "k", 1, &v, &n), KV_OK); /* a stage 5 follower serves no reads */
    assert_string_equal(v, "leader-value");
    free(v);
    assert_int_equal(kv_redirects(c), 1);
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_OK);
    assert_logged(follower, 0, "GET k");
    assert_int_equal(log_count(follower), 1); /* it stays with the leader */
    assert_logged(leader, 0, "GET k");
    assert_logged(leader, 1, "SET k v");
    kv_client_free(c);

    /* A second client with the library's redirects off sees the refusal. */
    kv_options o;
    kv_options_default(&o);
    o.max_redirects = 0;
    c = kv_client_new("127.0.0.1", port_of(follower), &o);
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_ERR_SERVER);
    assert_contains(kv_last_error(c), "NOTLEADER leader=127.0.0.1:");
    kv_client_free(c);
    node_stop(follower);
    node_stop(leader);
}

static void test_leader_unknown_tries_the_other_nodes(void **state) {
    (void)state;
    node *electing = node_start(), *leader = node_start();
    refuse(electing, "NOTLEADER leader=unknown");
    kv_client *c = client_for(electing, 0, -1);
    add_node(c, leader);
    long long t0 = now_ms();
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_OK);
    assert_true(now_ms() - t0 >= 20); /* it waited before trying again */
    assert_logged(electing, 0, "SET k v");
    assert_int_equal(log_count(electing), 1);
    assert_logged(leader, 0, "SET k v");
    assert_int_equal(kv_client_port(c), port_of(leader));
    kv_client_free(c);
    node_stop(electing);
    node_stop(leader);
}

static void test_leader_unknown_is_bounded(void **state) {
    (void)state;
    node *a = node_start();
    refuse(a, "NOTLEADER leader=unknown");
    kv_client *c = client_for(a, 0, 300);
    long long t0 = now_ms();
    const char *argv[] = {"GET", "k"};
    kv_reply *r;
    assert_int_equal(kv_command(c, 2, argv, NULL, &r), KV_OK);
    long long took = now_ms() - t0;
    assert_int_equal(r->type, KV_REPLY_ERROR); /* the last answer, once out of time */
    assert_string_equal(r->str, "NOTLEADER leader=unknown");
    kv_reply_free(r);
    assert_true(took >= 300);
    assert_true(took < 3000);
    assert_true(log_count(a) >= 3); /* 25, 50, 100, ... ms apart */
    kv_client_free(c);
    node_stop(a);
}

static void test_unreachable_node_skipped(void **state) {
    (void)state;
    node *gone = node_start(), *leader = node_start();
    int dead_port = port_of(gone);
    node_stop(gone);
    kv_client *c = kv_client_new("127.0.0.1", dead_port, NULL);
    add_node(c, leader);
    char *v;
    size_t n;
    assert_int_equal(kv_get(c, "k", 1, &v, &n), KV_OK);
    free(v);
    assert_int_equal(kv_client_port(c), port_of(leader));
    kv_client_free(c);

    /* Alone, an unreachable node fails at once, as before. */
    c = kv_client_new("127.0.0.1", dead_port, NULL);
    assert_int_equal(kv_ping(c), KV_ERR_CONNECT);
    kv_client_free(c);
    node_stop(leader);
}

static void test_tagged_write_retried_after_tryagain(void **state) {
    (void)state;
    node *leader = node_start();
    script(leader, ":42\r\n", "-TRYAGAIN leadership lost; the write may still commit\r\n", ":7\r\n", ":8\r\n",
           NULL);
    kv_client *c = client_for(leader, 1, -1);
    long long v = 0;
    assert_int_equal(kv_incr(c, "n", 1, &v), KV_OK);
    assert_int_equal(v, 7);
    assert_int_equal(kv_session(c), 42);
    assert_int_equal(kv_retries(c), 1);
    assert_contains(kv_last_retry(c), "after TRYAGAIN leadership lost");
    assert_int_equal(kv_incr(c, "n", 1, &v), KV_OK); /* the next call: the next seq */
    assert_int_equal(v, 8);
    assert_logged(leader, 0, "SESSION OPEN");
    assert_logged(leader, 1, "SEQ 42 1 INCR n");
    assert_logged(leader, 2, "SEQ 42 1 INCR n");
    assert_logged(leader, 3, "SEQ 42 2 INCR n");
    assert_int_equal(log_count(leader), 4);
    kv_client_free(c);
    node_stop(leader);
}

static void test_tagged_write_retried_on_the_new_leader_after_a_drop(void **state) {
    (void)state;
    node *old = node_start(), *new_leader = node_start();
    char moved[80];
    snprintf(moved, sizeof moved, "-NOTLEADER leader=127.0.0.1:%d\r\n", port_of(new_leader));
    /* The old leader applies the write and dies before replying; on the
     * reconnect it has stepped down and names the new leader. */
    script(old, ":42\r\n", DROP, moved, NULL);
    script(new_leader, ":1\r\n", NULL);
    kv_client *c = client_for(old, 1, -1);
    long long v = 0;
    assert_int_equal(kv_incr(c, "n", 1, &v), KV_OK);
    assert_int_equal(v, 1);
    assert_logged(old, 0, "SESSION OPEN");
    assert_logged(old, 1, "SEQ 42 1 INCR n");
    assert_logged(old, 2, "SEQ 42 1 INCR n");
    assert_logged(new_leader, 0, "SEQ 42 1 INCR n");
    assert_int_equal(kv_retries(c), 1);
    assert_int_equal(kv_redirects(c), 1);
    kv_client_free(c);
    node_stop(old);
    node_stop(new_leader);
}

static void test_untagged_write_is_not_resent(void **state) {
    (void)state;
    node *leader = node_start();
    script(leader, "-TRYAGAIN no quorum\r\n", DROP, NULL);
    kv_client *c = client_for(leader, 0, -1);
    long long v;
    assert_int_equal(kv_incr(c, "n", 1, &v), KV_ERR_SERVER);
    assert_string_equal(kv_last_error(c), "TRYAGAIN no quorum");
    assert_int_equal(kv_incr(c, "n", 1, &v), KV_ERR_DROPPED);
    assert_int_equal(log_count(leader), 2);
    assert_logged(leader, 0, "INCR n");
    assert_logged(leader, 1, "INCR n");
    assert_int_equal(kv_retries(c), 0);
    kv_client_free(c);
    node_stop(leader);
}

static void test_expired_session_reopened_when_safe(void **state) {
    (void)state;
    node *leader = node_start();
    script(leader, ":42\r\n", "-SESSIONEXPIRED session 42 is unknown or expired\r\n", ":50\r\n", "+OK\r\n", NULL);
    kv_client *c = client_for(leader, 1, -1);
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_OK);
    assert_logged(leader, 1, "SEQ 42 1 SET k v");
    assert_logged(leader, 2, "SESSION OPEN");
    assert_logged(leader, 3, "SEQ 50 1 SET k v");
    assert_int_equal(kv_session(c), 50);
    kv_client_free(c);
    node_stop(leader);
}

static void test_expired_session_after_an_ambiguous_try(void **state) {
    (void)state;
    node *leader = node_start();
    script(leader, ":42\r\n", "-TRYAGAIN no quorum\r\n", "-SESSIONEXPIRED session 42 is unknown or expired\r\n",
           NULL);
    kv_client *c = client_for(leader, 1, -1);
    long long v;
    assert_int_equal(kv_incr(c, "n", 1, &v), KV_ERR_AMBIGUOUS);
    assert_contains(kv_last_error(c), "outcome is unknown");
    assert_contains(kv_last_error(c), "SESSIONEXPIRED");
    assert_int_equal(kv_session(c), 0); /* the next write opens a new one */
    assert_int_equal(log_count(leader), 3);
    kv_client_free(c);
    node_stop(leader);
}

static void test_reads_and_pipelines_untagged(void **state) {
    (void)state;
    node *leader = node_start();
    kv_client *c = client_for(leader, 1, -1);
    char *v;
    size_t n;
    assert_int_equal(kv_get(c, "k", 1, &v, &n), KV_OK);
    free(v);
    assert_int_equal(kv_append_set(c, "k", 1, "v", 1), KV_OK);
    kv_reply *r;
    assert_int_equal(kv_get_reply(c, &r), KV_OK);
    kv_reply_free(r);
    const char *argv[] = {"append", "k", "w"}; /* any case: still a write */
    assert_int_equal(kv_command(c, 3, argv, NULL, &r), KV_OK);
    kv_reply_free(r);
    assert_logged(leader, 0, "GET k");
    assert_logged(leader, 1, "SET k v");
    assert_logged(leader, 2, "SESSION OPEN");
    assert_logged(leader, 3, "SEQ 42 1 append k w");
    kv_client_free(c);
    node_stop(leader);
}

static void test_add_nodes_parsing(void **state) {
    (void)state;
    kv_client *c = kv_client_new("127.0.0.1", 1, NULL);
    assert_int_equal(kv_client_add_nodes(c, "127.0.0.1:2,[::1]:3,localhost:4"), KV_OK);
    assert_int_equal(kv_client_add_nodes(c, "127.0.0.1:2,nope"), KV_ERR_USAGE);
    assert_contains(kv_last_error(c), "bad node address 'nope'");
    assert_int_equal(kv_client_add_nodes(c, "h:0"), KV_ERR_USAGE);
    assert_int_equal(kv_client_add_nodes(c, ""), KV_ERR_USAGE);
    kv_client_free(c);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_notleader_followed_for_reads_and_writes),
        cmocka_unit_test(test_leader_unknown_tries_the_other_nodes),
        cmocka_unit_test(test_leader_unknown_is_bounded),
        cmocka_unit_test(test_unreachable_node_skipped),
        cmocka_unit_test(test_tagged_write_retried_after_tryagain),
        cmocka_unit_test(test_tagged_write_retried_on_the_new_leader_after_a_drop),
        cmocka_unit_test(test_untagged_write_is_not_resent),
        cmocka_unit_test(test_expired_session_reopened_when_safe),
        cmocka_unit_test(test_expired_session_after_an_ambiguous_try),
        cmocka_unit_test(test_reads_and_pipelines_untagged),
        cmocka_unit_test(test_add_nodes_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
