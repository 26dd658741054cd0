/* repl_bench.c - the two replication measurements redis-benchmark cannot
 * make, run by tests/bench/stage4.sh against our cluster and Redis's alike
 * (hiredis, one connection per server, so both pay the same client costs):
 *
 *   repl_bench probe LEADER_PORT FOLLOWER_PORT INTERVAL_MS
 *     Lag from write to follower apply. Every INTERVAL_MS: SET a unique key
 *     on the leader, then GET it from the follower back to back until it is
 *     there; prints the microseconds from sending the SET to the GET that
 *     found it, one line per sample, until SIGTERM or SIGINT. Run beside a
 *     load, so the samples are spread through it.
 *
 *   repl_bench pairs PORT N set|setwait
 *     N sequential SETs, or N SET + WAIT 1 0 pairs (the write and the wait
 *     for one follower's acknowledgement), on one connection. Prints
 *     "ops/s p50_ms p99_ms" (one op = one SET or one pair).
 *
 * Times come from CLOCK_MONOTONIC. Any unexpected reply ends the program
 * with status 1 and a message. */
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void die(const char *what, const redisContext *c) {
    fprintf(stderr, "repl_bench: %s%s%s\n", what, c && c->err ? ": " : "", c && c->err ? c->errstr : "");
    exit(1);
}

static redisContext *connect_to(int port) {
    redisContext *c = redisConnect("127.0.0.1", port);
    if (!c) die("out of memory", NULL);
    if (c->err) die("cannot connect", c);
    return c;
}

/* One command whose reply must be of the given type; the reply is freed. */
static void expect(redisContext *c, int type, const char *fmt, const char *key) {
    redisReply *r = redisCommand(c, fmt, key);
    if (!r) die("connection lost", c);
    if (r->type != type) {
        fprintf(stderr, "repl_bench: unexpected reply to %s: %s\n", fmt,
                r->type == REDIS_REPLY_ERROR ? r->str : "(wrong type)");
        exit(1);
    }
    freeReplyObject(r);
}

static int probe(int leader_port, int follower_port, long interval_ms) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    redisContext *leader = connect_to(leader_port);
    redisContext *follower = connect_to(follower_port);
    char key[64];
    for (long seq = 0; !stop_requested; seq++) {
        /* Pause first, so that the load started beside the probe is running
         * by the first sample. A signal cuts the pause short. */
        struct timespec pause = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
        nanosleep(&pause, NULL);
        if (stop_requested) break;
        snprintf(key, sizeof key, "probe:%ld:%ld", (long)getpid(), seq);
        long long t0 = now_us();
        expect(leader, REDIS_REPLY_STATUS, "SET %s 1", key);
        for (;;) {
            redisReply *r = redisCommand(follower, "GET %s", key);
            if (!r) die("connection to the follower lost", follower);
            int found = r->type == REDIS_REPLY_STRING;
            if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL) die("unexpected reply to GET", NULL);
            freeReplyObject(r);
            if (found) break;
            /* A follower that never applies the write is a failure, not a
             * sample to wait for forever. */
            if (now_us() - t0 > 30LL * 1000000) die("the follower did not apply a write within 30 s", NULL);
        }
        printf("%lld\n", now_us() - t0);
        fflush(stdout);
    }
    redisFree(leader);
    redisFree(follower);
    return 0;
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array: the smallest value with at
 * least p percent of the samples at or below it. */
static long long percentile(const long long *sorted, long n, int p) {
    long rank = (n * p + 99) / 100;
    return sorted[rank > 0 ? rank - 1 : 0];
}

static int pairs(int port, long n, int with_wait) {
    long long *lat = malloc((size_t)n * sizeof *lat);
    if (!lat) die("out of memory", NULL);
    redisContext *c = connect_to(port);
    char key[64];
    long long start = now_us();
    for (long i = 0; i < n; i++) {
        snprintf(key, sizeof key, "pair:%ld", i);
        long long t0 = now_us();
        expect(c, REDIS_REPLY_STATUS, "SET %s xxxxxxxxxxxxxxxx", key);
        if (with_wait) {
            redisReply *r = redisCommand(c, "WAIT 1 0");
            if (!r) die("connection lost", c);
            if (r->type != REDIS_REPLY_INTEGER || r->integer < 1) die("WAIT 1 0 did not answer >= 1", NULL);
            freeReplyObject(r);
        }
        lat[i] = now_us() - t0;
    }
    double secs = (double)(now_us() - start) / 1e6;
    redisFree(c);
    qsort(lat, (size_t)n, sizeof *lat, cmp_ll);
    printf("%.0f %.3f %.3f\n", (double)n / secs, (double)percentile(lat, n, 50) / 1000.0,
           (double)percentile(lat, n, 99) / 1000.0);
    free(lat);
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: repl_bench probe LEADER_PORT FOLLOWER_PORT INTERVAL_MS\n"
                    "       repl_bench pairs PORT N set|setwait\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "probe") == 0) {
        long interval = atol(argv[4]);
        if (interval < 0) usage();
        return probe(atoi(argv[2]), atoi(argv[3]), interval);
    }
    if (argc == 5 && strcmp(argv[1], "pairs") == 0) {
        long n = atol(argv[3]);
        if (n < 1) usage();
        if (strcmp(argv[4], "set") != 0 && strcmp(argv[4], "setwait") != 0) usage();
        return pairs(atoi(argv[2]), n, strcmp(argv[4], "setwait") == 0);
    }
    usage();
    return 2;
}
