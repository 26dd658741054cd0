/* raft_bench.c - the measurements tests/bench/stage5.sh makes on our stage 5
 * cluster and on the machine itself (hiredis, one connection per client, so
 * the load is the one tests/bench/etcdput puts on etcd, written in C):
 *
 *   raft_bench put PORT CLIENTS TOTAL KEY_SIZE VAL_SIZE
 *     TOTAL SETs spread over CLIENTS connections, each waiting for its reply
 *     before sending the next (no pipelining); every key random, KEY_SIZE
 *     letters, the value VAL_SIZE random letters. Prints "ops/s p50_ms p99_ms".
 *
 *   raft_bench rtt PORT N
 *     N sequential PINGs on one connection: prints the median round trip in
 *     microseconds (the loopback + event loop cost a commit pays per hop).
 *
 *   raft_bench fsync DIR N SIZE
 *     In DIR: N times, SIZE bytes written after the previous ones and
 *     fdatasync'd, first into a preallocated file (what our WAL does: no size
 *     change for the journal to commit), then appended to a growing file.
 *     Prints "prealloc_p50_us append_p50_us".
 *
 *   raft_bench failover PORTS PIDS
 *     PORTS and PIDS comma-separated, in the same order. Finds the leader
 *     (ROLE), writes to it, kills it with SIGKILL, then keeps writing, to any
 *     live node and following "-NOTLEADER leader=HOST:PORT", until a write is
 *     acknowledged. Prints the milliseconds from the kill to that reply.
 *
 * Times come from CLOCK_MONOTONIC; percentiles are nearest-rank. Any
 * unexpected reply ends the program with status 1 and a message. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void die(const char *what, const char *detail) {
    fprintf(stderr, "raft_bench: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static long parse_long(const char *s, long min, long max, const char *what) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) die("bad number for", what);
    return v;
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Nearest rank of sorted samples: the smallest value with at least pct% of
 * the samples at or below it. */
static long long rank(const long long *sorted, long n, int pct) {
    long r = (n * pct + 99) / 100;
    return sorted[r < 1 ? 0 : r - 1];
}

static redisContext *connect_to(int port) {
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c) die("out of memory", NULL);
    if (c->err) return c; /* the caller decides */
    redisSetTimeout(c, tv);
    return c;
}

/* xorshift64: each thread its own stream of random letters. */
static void fill_letters(uint64_t *state, char *buf, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint64_t x = *state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        buf[i] = (char)('a' + (x >> 32) % 26);
    }
}

/* --- put ------------------------------------------------------------------- */

struct put_run {
    int port;
    long total;
    size_t key_size, val_size;
    atomic_long next;       /* the next ticket; a ticket >= total means stop */
    long long *latency_us;  /* one slot per ticket, owned by main */
    pthread_barrier_t start; /* every client connected before the clock starts */
};

struct put_client {
    struct put_run *run;
    uint64_t seed;
    long long end_us; /* when this client's last reply came */
};

static void *put_client_main(void *arg) {
    struct put_client *pc = arg;
    struct put_run *run = pc->run;
    redisContext *c = connect_to(run->port);
    if (c->err) die("cannot connect", c->errstr);
    char *key = malloc(run->key_size), *val = malloc(run->val_size);
    if (!key || !val) die("out of memory", NULL);
    fill_letters(&pc->seed, val, run->val_size);
    pthread_barrier_wait(&run->start);
    for (;;) {
        long t = atomic_fetch_add(&run->next, 1);
        if (t >= run->total) break;
        fill_letters(&pc->seed, key, run->key_size);
        long long t0 = now_us();
        redisReply *r = redisCommand(c, "SET %b %b", key, run->key_size, val, run->val_size);
        long long t1 = now_us();
        if (!r) die("connection lost", c->errstr);
        if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0)
            die("unexpected reply to SET", r->type == REDIS_REPLY_ERROR ? r->str : "(not +OK)");
        freeReplyObject(r);
        run->latency_us[t] = t1 - t0;
        pc->end_us = t1;
    }
    free(key);
    free(val);
    redisFree(c);
    return NULL;
}

static int cmd_put(int argc, char **argv) {
    if (argc != 7) die("usage", "put PORT CLIENTS TOTAL KEY_SIZE VAL_SIZE");
    struct put_run run = {
        .port = (int)parse_long(argv[2], 1, 65535, "PORT"),
        .total = parse_long(argv[4], 1, 100000000, "TOTAL"),
        .key_size = (size_t)parse_long(argv[5], 1, 1 << 20, "KEY_SIZE"),
        .val_size = (size_t)parse_long(argv[6], 1, 1 << 24, "VAL_SIZE"),
    };
    int clients = (int)parse_long(argv[3], 1, 10000, "CLIENTS");
    atomic_init(&run.next, 0);
    run.latency_us = calloc((size_t)run.total, sizeof *run.latency_us);
    struct put_client *pcs = calloc((size_t)clients, sizeof *pcs);
    pthread_t *threads = calloc((size_t)clients, sizeof *threads);
    if (!run.latency_us || !pcs || !threads) die("out of memory", NULL);
    if (pthread_barrier_init(&run.start, NULL, (unsigned)clients + 1) != 0) die("pthread_barrier_init failed", NULL);
    uint64_t seed = (uint64_t)now_us() * 0x9E3779B97F4A7C15ULL | 1;
    for (int i = 0; i < clients; i++) {
        pcs[i].run = &run;
        pcs[i].seed = seed + 2 * (uint64_t)i * 0x9E3779B97F4A7C15ULL;
        if (pthread_create(&threads[i], NULL, put_client_main, &pcs[i]) != 0) die("pthread_create failed", NULL);
    }
    pthread_barrier_wait(&run.start);
    long long t0 = now_us(), t1 = t0;
    for (int i = 0; i < clients; i++) {
        pthread_join(threads[i], NULL);
        if (pcs[i].end_us > t1) t1 = pcs[i].end_us;
    }
    qsort(run.latency_us, (size_t)run.total, sizeof *run.latency_us, cmp_ll);
    double secs = (double)(t1 - t0) / 1e6;
    printf("%.2f %.3f %.3f\n", secs > 0 ? (double)run.total / secs : 0.0, rank(run.latency_us, run.total, 50) / 1000.0,
           rank(run.latency_us, run.total, 99) / 1000.0);
    pthread_barrier_destroy(&run.start);
    free(threads);
    free(pcs);
    free(run.latency_us);
    return 0;
}

/* --- rtt ------------------------------------------------------------------- */

static int cmd_rtt(int argc, char **argv) {
    if (argc != 4) die("usage", "rtt PORT N");
    int port = (int)parse_long(argv[2], 1, 65535, "PORT");
    long n = parse_long(argv[3], 1, 10000000, "N");
    redisContext *c = connect_to(port);
    if (c->err) die("cannot connect", c->errstr);
    long long *s = calloc((size_t)n, sizeof *s);
    if (!s) die("out of memory", NULL);
    for (long i = 0; i < n; i++) {
        long long t0 = now_us();
        redisReply *r = redisCommand(c, "PING");
        s[i] = now_us() - t0;
        if (!r) die("connection lost", c->errstr);
        if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0) die("unexpected reply to PING", NULL);
        freeReplyObject(r);
    }
    qsort(s, (size_t)n, sizeof *s, cmp_ll);
    printf("%lld\n", rank(s, n, 50));
    free(s);
    redisFree(c);
    return 0;
}

/* --- fsync ----------------------------------------------------------------- */

static void write_all(int fd, const char *buf, size_t n, off_t off, int use_offset) {
    while (n > 0) {
        ssize_t w = use_offset ? pwrite(fd, buf, n, off) : write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("write failed", strerror(errno));
        }
        buf += w;
        n -= (size_t)w;
        off += w;
    }
}

/* Median microseconds of N (write SIZE bytes, fdatasync) into PATH. */
static long long time_syncs(const char *path, long n, size_t size, int prealloc) {
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | (prealloc ? 0 : O_APPEND), 0644);
    if (fd < 0) die("cannot open", path);
    if (prealloc) {
        int e = posix_fallocate(fd, 0, (off_t)((size_t)n * size));
        if (e != 0) die("posix_fallocate failed", strerror(e));
        /* Allocation is metadata: make it durable before timing, as the WAL
         * does once per segment. */
        if (fsync(fd) != 0) die("fsync failed", strerror(errno));
    }
    char *buf = malloc(size);
    long long *s = calloc((size_t)n, sizeof *s);
    if (!buf || !s) die("out of memory", NULL);
    memset(buf, 'x', size);
    for (long i = 0; i < n; i++) {
        long long t0 = now_us();
        write_all(fd, buf, size, (off_t)((size_t)i * size), prealloc);
        if (fdatasync(fd) != 0) die("fdatasync failed", strerror(errno));
        s[i] = now_us() - t0;
    }
    qsort(s, (size_t)n, sizeof *s, cmp_ll);
    long long p50 = rank(s, n, 50);
    free(s);
    free(buf);
    close(fd);
    if (unlink(path) != 0) die("cannot remove", path);
    return p50;
}

static int cmd_fsync(int argc, char **argv) {
    if (argc != 5) die("usage", "fsync DIR N SIZE");
    long n = parse_long(argv[3], 1, 1000000, "N");
    size_t size = (size_t)parse_long(argv[4], 1, 1 << 20, "SIZE");
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/fsync-probe", argv[2]) >= sizeof path) die("path too long", argv[2]);
    long long pre = time_syncs(path, n, size, 1);
    long long app = time_syncs(path, n, size, 0);
    printf("%lld %lld\n", pre, app);
    return 0;
}

/* --- failover -------------------------------------------------------------- */

#define MAX_NODES 16

static int split_ints(const char *list, long *out, int max, const char *what) {
    char *copy = strdup(list), *save = NULL;
    if (!copy) die("out of memory", NULL);
    int n = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == max) die("too many entries in", what);
        out[n++] = parse_long(tok, 1, 0x7fffffff, what);
    }
    free(copy);
    return n;
}

static int index_of(const long *ports, int n, long port) {
    for (int i = 0; i < n; i++)
        if (ports[i] == port) return i;
    return -1;
}

/* The index of the node whose ROLE says leader, or -1 unless exactly one does. */
static int find_leader(const long *ports, int n) {
    int found = -1;
    for (int i = 0; i < n; i++) {
        redisContext *c = connect_to((int)ports[i]);
        redisReply *r = c->err ? NULL : redisCommand(c, "ROLE");
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_STRING &&
            strcmp(r->element[0]->str, "leader") == 0) {
            if (found >= 0) found = -2;
            else if (found == -1) found = i;
        }
        if (r) freeReplyObject(r);
        redisFree(c);
    }
    return found < 0 ? -1 : found;
}

static int cmd_failover(int argc, char **argv) {
    if (argc != 4) die("usage", "failover PORTS PIDS");
    long ports[MAX_NODES], pids[MAX_NODES];
    int n = split_ints(argv[2], ports, MAX_NODES, "PORTS");
    if (split_ints(argv[3], pids, MAX_NODES, "PIDS") != n || n < 2) die("PORTS and PIDS differ in length", NULL);
    int leader = find_leader(ports, n);
    if (leader < 0) die("no single leader among", argv[2]);
    redisContext *c = connect_to((int)ports[leader]);
    if (c->err) die("cannot connect to the leader", c->errstr);
    for (int i = 0; i < 20; i++) { /* the leader takes writes before the kill */
        redisReply *r = redisCommand(c, "SET failover:warm %d", i);
        if (!r || r->type != REDIS_REPLY_STATUS) die("the leader does not take writes", r && r->str ? r->str : NULL);
        freeReplyObject(r);
    }
    redisFree(c);
    c = NULL;
    long long t0 = now_us();
    if (kill((pid_t)pids[leader], SIGKILL) != 0) die("cannot kill the leader", strerror(errno));
    int target = (leader + 1) % n;
    long long deadline = t0 + 60 * 1000000LL;
    for (long attempt = 0; now_us() < deadline; attempt++) {
        if (target == leader) target = (target + 1) % n;
        if (!c) {
            c = connect_to((int)ports[target]);
            if (c->err) {
                redisFree(c);
                c = NULL;
                target = (target + 1) % n;
                usleep(1000);
                continue;
            }
        }
        redisReply *r = redisCommand(c, "SET failover:probe %ld", attempt);
        if (r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0) {
            long long t1 = now_us();
            freeReplyObject(r);
            redisFree(c);
            printf("%.1f\n", (double)(t1 - t0) / 1000.0);
            return 0;
        }
        int next = (target + 1) % n;
        const char *hint = r && r->type == REDIS_REPLY_ERROR ? strstr(r->str, "leader=") : NULL;
        if (hint) {
            const char *colon = strrchr(hint, ':');
            int i = colon ? index_of(ports, n, strtol(colon + 1, NULL, 10)) : -1;
            if (i >= 0) next = i;
        } else if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "TRYAGAIN", 8) == 0) {
            next = target;
        }
        if (r) freeReplyObject(r);
        if (!r || next != target) {
            redisFree(c);
            c = NULL;
        }
        target = next;
        usleep(1000); /* a probe's resolution, not a wait for a condition */
    }
    die("no write acknowledged within 60 s of the kill", NULL);
    return 1;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "put") == 0) return cmd_put(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "rtt") == 0) return cmd_rtt(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "fsync") == 0) return cmd_fsync(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "failover") == 0) return cmd_failover(argc, argv);
    fprintf(stderr, "usage: raft_bench put PORT CLIENTS TOTAL KEY_SIZE VAL_SIZE | rtt PORT N | fsync DIR N SIZE |"
                    " failover PORTS PIDS\n");
    return 2;
}
