/* test_kvclient_redirect.c - kvclient-stage4 following a follower's
 * "-READONLY ... leader=HOST:PORT", against scripted fake nodes
 * (tests/stage3/fake_server.c): a write redirected once and through a
 * chain, the hop bound with two nodes naming each other, malformed
 * addresses, reads served by the follower, an unreachable leader, redirects
 * turned off, and pipelines, which surface the refusal instead. */
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
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_server.h"
#include "kvclient.h"

#define REFUSAL "READONLY You can't write against a read only replica."
#define MAX_LOG 16

/* A fake node: a follower when refusal is set (GET is served, anything else
 * is answered with "-<refusal>"), a leader otherwise (SET +OK, DEL :1, GET
 * "leader-value"). It logs every request it gets, as "SET k v". */
typedef struct node {
    fake_server *srv;
    pthread_mutex_t lock;
    char refusal[300];
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
        char reply[400];
        pthread_mutex_lock(&n->lock);
        if (n->nlog < MAX_LOG) snprintf(n->log[n->nlog++], sizeof n->log[0], "%s", cmd);
        if (strncmp(cmd, "GET ", 4) == 0)
            snprintf(reply, sizeof reply, "%s", n->refusal[0] ? "$14\r\nfollower-value\r\n" : "$12\r\nleader-value\r\n");
        else if (n->refusal[0])
            snprintf(reply, sizeof reply, "-%s\r\n", n->refusal);
        else if (strncmp(cmd, "DEL ", 4) == 0)
            snprintf(reply, sizeof reply, ":1\r\n");
        else
            snprintf(reply, sizeof reply, "+OK\r\n");
        pthread_mutex_unlock(&n->lock);
        free(cmd);
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

/* Makes n a follower whose refusal names leader= what (printf-style). */
static void refuse_with(node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse_with(node *n, const char *fmt, ...) {
    char leader[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(leader, sizeof leader, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&n->lock);
    snprintf(n->refusal, sizeof n->refusal, REFUSAL " leader=%s", leader);
    pthread_mutex_unlock(&n->lock);
}

static void follower_of(node *n, node *leader) { refuse_with(n, "127.0.0.1:%d", port_of(leader)); }

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

static kv_client *client_for(node *n, int max_redirects) {
    kv_options o;
    kv_options_default(&o);
    if (max_redirects >= 0) o.max_redirects = max_redirects;
    kv_client *c = kv_client_new("127.0.0.1", port_of(n), &o);
    assert_non_null(c);
    return c;
}

static void assert_contains(const char *text, const char *part) {
    if (!strstr(text, part)) fail_msg("expected \"%s\" in \"%s\"", part, text);
}

static void addr(char *out, size_t n, node *x) { snprintf(out, n, "127.0.0.1:%d", port_of(x)); }

static void test_default_is_three_hops(void **state) {
    (void)state;
    kv_options o;
    kv_options_default(&o);
    assert_int_equal(o.max_redirects, 3);
}

static void test_set_redirected_once(void **state) {
    (void)state;
    node *leader = node_start(), *follower = node_start();
    follower_of(follower, leader);
    kv_client *c = client_for(follower, -1);
    assert_int_equal(kv_redirects(c), 0);
    assert_string_equal(kv_last_redirect(c), "");

    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_OK);
    assert_logged(follower, 0, "SET k v");
    assert_logged(leader, 0, "SET k v");
    assert_int_equal(kv_redirects(c), 1);
    char want[64];
    addr(want, sizeof want, leader);
    assert_string_equal(kv_last_redirect(c), want);
    assert_int_equal(kv_client_port(c), port_of(leader));

    /* It stays with the leader: the next read goes there, on the same connection. */
    char *v;
    size_t n;
    assert_int_equal(kv_get(c, "k", 1, &v, &n), KV_OK);
    assert_string_equal(v, "leader-value");
    free(v);
    assert_int_equal(log_count(follower), 1);
    assert_int_equal(fake_connections(leader->srv), 1);
    kv_client_free(c);
    node_stop(follower);
    node_stop(leader);
}

static void test_command_and_del_redirected(void **state) {
    (void)state;
    node *leader = node_start(), *follower = node_start();
    follower_of(follower, leader);

    kv_client *c = client_for(follower, -1);
    const char *argv[] = {"SET", "a", "1"};
    kv_reply *r;
    assert_int_equal(kv_command(c, 3, argv, NULL, &r), KV_OK);
    assert_int_equal(r->type, KV_REPLY_STATUS); /* the leader's answer, not the refusal */
    assert_string_equal(r->str, "OK");
    kv_reply_free(r);
    assert_int_equal(kv_redirects(c), 1);
    kv_client_free(c);

    c = client_for(follower, -1);
    long long deleted = 0;
    assert_int_equal(kv_del(c, "a", 1, &deleted), KV_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(kv_redirects(c), 1);
    kv_client_free(c);

    assert_logged(leader, 0, "SET a 1");
    assert_logged(leader, 1, "DEL a");
    assert_int_equal(log_count(follower), 2);
    node_stop(follower);
    node_stop(leader);
}

static void test_chain_of_two_hops(void **state) {
    (void)state;
    node *leader = node_start(), *f1 = node_start(), *f2 = node_start();
    follower_of(f1, f2); /* f1 still names a node that has stepped down */
    follower_of(f2, leader);
    kv_client *c = client_for(f1, -1);
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_OK);
    assert_int_equal(kv_redirects(c), 2);
    char want[64];
    addr(want, sizeof want, leader);
    assert_string_equal(kv_last_redirect(c), want);
    assert_int_equal(log_count(f1), 1);
    assert_int_equal(log_count(f2), 1);
    assert_logged(leader, 0, "SET k v");
    kv_client_free(c);
    node_stop(f2);
    node_stop(f1);
    node_stop(leader);
}

/* Two nodes naming each other: the client stops after max_redirects hops,
 * says where it went, and goes back to where the call started. */
static void loop_case(int max, int want_a, int want_b) {
    node *a = node_start(), *b = node_start();
    follower_of(a, b);
    follower_of(b, a);
    kv_client *c = client_for(a, max);
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_ERR_REDIRECT);
    char path[256] = "", one[64];
    for (int i = 0; i <= max; i++) {
        addr(one, sizeof one, i % 2 ? b : a);
        if (i) strcat(path, " -> ");
        strcat(path, one);
    }
    char head[64];
    snprintf(head, sizeof head, "too many redirects: gave up after %d", max);
    assert_contains(kv_last_error(c), head);
    assert_contains(kv_last_error(c), path);
    assert_contains(kv_last_error(c), "which answered: " REFUSAL " leader=127.0.0.1:");
    assert_int_equal(log_count(a), want_a);
    assert_int_equal(log_count(b), want_b);
    assert_int_equal(kv_redirects(c), (unsigned long long)max);
    assert_int_equal(kv_client_port(c), port_of(a));

    /* kv_command fails the same way, with no reply. */
    const char *argv[] = {"SET", "k", "v"};
    kv_reply *r = (kv_reply *)1;
    assert_int_equal(kv_command(c, 3, argv, NULL, &r), KV_ERR_REDIRECT);
    assert_null(r);
    assert_contains(kv_last_error(c), path);
    kv_client_free(c);
    node_stop(a);
    node_stop(b);
}

static void test_hop_bound_default(void **state) {
    (void)state;
    loop_case(3, 2, 2); /* sent to a, b, a, b: the fourth refusal ends it */
}

static void test_hop_bound_one(void **state) {
    (void)state;
    loop_case(1, 1, 1);
}

static void test_redirects_off(void **state) {
    (void)state;
    node *leader = node_start(), *follower = node_start();
    follower_of(follower, leader);
    kv_client *c = client_for(follower, 0);
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_ERR_SERVER);
    char want[300];
    snprintf(want, sizeof want, REFUSAL " leader=127.0.0.1:%d", port_of(leader));
    assert_string_equal(kv_last_error(c), want);
    const char *argv[] = {"SET", "k", "v"};
    kv_reply *r;
    assert_int_equal(kv_command(c, 3, argv, NULL, &r), KV_OK);
    assert_int_equal(r->type, KV_REPLY_ERROR);
    assert_string_equal(r->str, want);
    kv_reply_free(r);
    assert_int_equal(fake_connections(leader->srv), 0);
    assert_int_equal(kv_redirects(c), 0);
    kv_client_free(c);
    node_stop(follower);
    node_stop(leader);
}

static void test_malformed_leader(void **state) {
    (void)state;
    node *follower = node_start();
    static const char *const bad[] = {"",           "nohost",        "127.0.0.1:",  ":7004",     "127.0.0.1:0",
                                      "127.0.0.1:65536", "127.0.0.1:70x", "::1:7004", "[::1]7004", "[::1]:",
                                      "127.0.0.1:+80"};
    kv_client *c = client_for(follower, -1);
    char from[64];
    addr(from, sizeof from, follower);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        refuse_with(follower, "%s", bad[i]);
        assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_ERR_REDIRECT);
        char want[200];
        snprintf(want, sizeof want, "malformed redirect from %s", from);
        assert_contains(kv_last_error(c), want);
        snprintf(want, sizeof want, "leader=%s", bad[i]);
        assert_contains(kv_last_error(c), want);
        assert_int_equal(kv_client_port(c), port_of(follower));
    }
    assert_int_equal(kv_redirects(c), 0);
    kv_client_free(c);
    node_stop(follower);
}

/* A good hop, then a malformed one: the error names the way there, and the
 * client goes back to the first node. */
static void test_malformed_after_a_hop(void **state) {
    (void)state;
    node *f1 = node_start(), *f2 = node_start();
    follower_of(f1, f2);
    refuse_with(f2, "somewhere");
    kv_client *c = client_for(f1, -1);
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_ERR_REDIRECT);
    char a1[64], a2[64], want[200];
    addr(a1, sizeof a1, f1);
    addr(a2, sizeof a2, f2);
    snprintf(want, sizeof want, "malformed redirect from %s", a2);
    assert_contains(kv_last_error(c), want);
    snprintf(want, sizeof want, "after %s -> %s", a1, a2);
    assert_contains(kv_last_error(c), want);
    assert_int_equal(kv_client_port(c), port_of(f1));
    kv_client_free(c);
    node_stop(f2);
    node_stop(f1);
}

static void test_readonly_without_leader_is_an_error(void **state) {
    (void)state;
    node *follower = node_start();
    pthread_mutex_lock(&follower->lock);
    snprintf(follower->refusal, sizeof follower->refusal, REFUSAL); /* what a Redis replica says */
    pthread_mutex_unlock(&follower->lock);
    kv_client *c = client_for(follower, -1);
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_ERR_SERVER);
    assert_string_equal(kv_last_error(c), REFUSAL);
    assert_int_equal(kv_redirects(c), 0);
    kv_client_free(c);
    node_stop(follower);
}

static void test_get_is_served_by_the_follower(void **state) {
    (void)state;
    node *leader = node_start(), *follower = node_start();
    follower_of(follower, leader);
    kv_client *c = client_for(follower, -1);
    char *v;
    size_t n;
    assert_int_equal(kv_get(c, "k", 1, &v, &n), KV_OK);
    assert_string_equal(v, "follower-value");
    free(v);
    const char *argv[] = {"GET", "k"};
    kv_reply *r;
    assert_int_equal(kv_command(c, 2, argv, NULL, &r), KV_OK);
    assert_string_equal(r->str, "follower-value");
    kv_reply_free(r);
    assert_int_equal(kv_redirects(c), 0);
    assert_int_equal(fake_connections(leader->srv), 0);
    assert_int_equal(kv_client_port(c), port_of(follower));
    kv_client_free(c);
    node_stop(follower);
    node_stop(leader);
}

/* A loopback port nothing listens on (bound, then closed). */
static int closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_leader_unreachable(void **state) {
    (void)state;
    node *follower = node_start();
    int dead = closed_port();
    refuse_with(follower, "127.0.0.1:%d", dead);
    kv_client *c = client_for(follower, -1);
    assert_int_equal(kv_set(c, "k", 1, "v", 1), KV_ERR_CONNECT);
    char want[200];
    snprintf(want, sizeof want, "redirect 127.0.0.1:%d -> 127.0.0.1:%d failed: cannot connect to 127.0.0.1:%d",
             port_of(follower), dead, dead);
    assert_contains(kv_last_error(c), want);
    assert_contains(kv_last_error(c), "the command was not run");
    /* Back at the follower, which still serves reads. */
    assert_int_equal(kv_client_port(c), port_of(follower));
    char *v;
    size_t n;
    assert_int_equal(kv_get(c, "k", 1, &v, &n), KV_OK);
    assert_string_equal(v, "follower-value");
    free(v);
    assert_int_equal(kv_redirects(c), 0);
    kv_client_free(c);
    node_stop(follower);
}

/* Pipelines are not redirected: the refusals come back in order, the
 * caller reads the leader's address from one and moves the client. */
static void test_pipeline_surfaces_the_refusal(void **state) {
    (void)state;
    node *leader = node_start(), *follower = node_start();
    follower_of(follower, leader);
    kv_client *c = client_for(follower, -1);
    assert_int_equal(kv_append_set(c, "a", 1, "1", 1), KV_OK);
    assert_int_equal(kv_append_get(c, "a", 1), KV_OK);
    assert_int_equal(kv_append_del(c, "a", 1), KV_OK);
    kv_reply *r[3];
    for (int i = 0; i < 3; i++) assert_int_equal(kv_get_reply(c, &r[i]), KV_OK);
    char host[KV_HOST_MAX];
    int port = 0;
    assert_int_equal(r[0]->type, KV_REPLY_ERROR);
    assert_int_equal(kv_reply_redirect(r[0], host, sizeof host, &port), 1);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, port_of(leader));
    assert_int_equal(kv_reply_redirect(r[1], host, sizeof host, &port), 0); /* the read was answered */
    assert_string_equal(r[1]->str, "follower-value");
    assert_int_equal(kv_reply_redirect(r[2], host, sizeof host, &port), 1);
    for (int i = 0; i < 3; i++) kv_reply_free(r[i]);
    assert_int_equal(fake_connections(leader->srv), 0);
    assert_int_equal(kv_redirects(c), 0);

    /* Moving refuses while replies are owed, then works. */
    assert_int_equal(kv_append_set(c, "a", 1, "1", 1), KV_OK);
    assert_int_equal(kv_client_move(c, host, port), KV_ERR_USAGE);
    assert_int_equal(kv_get_reply(c, &r[0]), KV_OK);
    kv_reply_free(r[0]);
    assert_int_equal(kv_client_move(c, host, port), KV_OK);
    assert_int_equal(kv_append_set(c, "a", 1, "1", 1), KV_OK);
    assert_int_equal(kv_get_reply(c, &r[0]), KV_OK);
    assert_string_equal(r[0]->str, "OK");
    kv_reply_free(r[0]);
    assert_logged(leader, 0, "SET a 1");
    kv_client_free(c);
    node_stop(follower);
    node_stop(leader);
}

static int parse(const char *text, char *host, size_t hostlen, int *port) {
    kv_reply r = {.type = KV_REPLY_ERROR, .str = (char *)text, .len = strlen(text)};
    return kv_reply_redirect(&r, host, hostlen, port);
}

static void test_reply_redirect_parsing(void **state) {
    (void)state;
    char host[KV_HOST_MAX];
    int port = 0;
    assert_int_equal(parse(REFUSAL " leader=10.0.0.2:7004", host, sizeof host, &port), 1);
    assert_string_equal(host, "10.0.0.2");
    assert_int_equal(port, 7004);
    assert_int_equal(parse(REFUSAL " leader=node-1.example:65535", host, sizeof host, &port), 1);
    assert_string_equal(host, "node-1.example");
    assert_int_equal(port, 65535);
    assert_int_equal(parse(REFUSAL " leader=[::1]:7004", host, sizeof host, &port), 1);
    assert_string_equal(host, "::1");
    /* Words after the address are allowed (later versions may add some). */
    assert_int_equal(parse(REFUSAL " leader=h:1 epoch=3", host, sizeof host, &port), 1);
    assert_string_equal(host, "h");
    assert_int_equal(port, 1);
    /* Not redirects. */
    assert_int_equal(parse("ERR no leader=h:1", host, sizeof host, &port), 0);
    assert_int_equal(parse("READONLYX leader=h:1", host, sizeof host, &port), 0);
    assert_int_equal(parse("READONLY", host, sizeof host, &port), 0);
    assert_int_equal(parse("", host, sizeof host, &port), 0);
    kv_reply status = {.type = KV_REPLY_STATUS, .str = (char *)"READONLY leader=h:1", .len = 19};
    assert_int_equal(kv_reply_redirect(&status, host, sizeof host, &port), 0);
    assert_int_equal(kv_reply_redirect(NULL, host, sizeof host, &port), 0);
    /* Malformed, or too long for the caller's buffer. */
    assert_int_equal(parse("READONLY leader=h:", host, sizeof host, &port), -1);
    assert_int_equal(parse("READONLY leader=h:1", host, 1, &port), -1);
    assert_int_equal(parse("READONLY leader=abcd:1", host, 4, &port), -1);
    assert_int_equal(parse("READONLY leader=abc:1", host, 4, &port), 1);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_is_three_hops),
        cmocka_unit_test(test_set_redirected_once),
        cmocka_unit_test(test_command_and_del_redirected),
        cmocka_unit_test(test_chain_of_two_hops),
        cmocka_unit_test(test_hop_bound_default),
        cmocka_unit_test(test_hop_bound_one),
        cmocka_unit_test(test_redirects_off),
        cmocka_unit_test(test_malformed_leader),
        cmocka_unit_test(test_malformed_after_a_hop),
        cmocka_unit_test(test_readonly_without_leader_is_an_error),
        cmocka_unit_test(test_get_is_served_by_the_follower),
        cmocka_unit_test(test_leader_unreachable),
        cmocka_unit_test(test_pipeline_surfaces_the_refusal),
        cmocka_unit_test(test_reply_redirect_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
