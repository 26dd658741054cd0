/* client_bench.c - our client library against hiredis's synchronous API on
 * the same server and workload: N SETs then N GETs on one connection,
 * one round trip per command, then pipelined in batches. Prints one line per
 * run: "<client> <mode> <ops/s>". Used by tests/bench/stage3.sh. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvclient.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "client_bench: %s\n", what);
    exit(1);
}

static double run_ours(int port, long n, int batch) {
    kv_client *c = kv_client_new("127.0.0.1", port, NULL);
    if (!c || kv_connect(c) != KV_OK) die("kvclient cannot connect");
    char key[32];
    const char *val = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; /* 32 bytes */
    double t0 = now();
    for (int phase = 0; phase < 2; phase++) {
        for (long i = 0; i < n;) {
            if (batch <= 1) {
                int kl = snprintf(key, sizeof key, "key:%ld", i);
                if (phase == 0) {
                    if (kv_set(c, key, (size_t)kl, val, 32) != KV_OK) die(kv_last_error(c));
                } else {
                    char *v;
                    size_t vl;
                    if (kv_get(c, key, (size_t)kl, &v, &vl) != KV_OK) die(kv_last_error(c));
                    free(v);
                }
                i++;
                continue;
            }
            long end = i + batch < n ? i + batch : n;
            for (long j = i; j < end; j++) {
                int kl = snprintf(key, sizeof key, "key:%ld", j);
                kv_err e = phase == 0 ? kv_append_set(c, key, (size_t)kl, val, 32) : kv_append_get(c, key, (size_t)kl);
                if (e != KV_OK) die(kv_last_error(c));
            }
            for (long j = i; j < end; j++) {
                kv_reply *r;
                if (kv_get_reply(c, &r) != KV_OK || r->type == KV_REPLY_ERROR) die("kvclient pipeline reply");
                kv_reply_free(r);
            }
            i = end;
        }
    }
    double secs = now() - t0;
    kv_client_free(c);
    return 2.0 * (double)n / secs;
}

static double run_hiredis(int port, long n, int batch) {
    redisContext *c = redisConnect("127.0.0.1", port);
    if (!c || c->err) die("hiredis cannot connect");
    const char *val = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    double t0 = now();
    for (int phase = 0; phase < 2; phase++) {
        for (long i = 0; i < n;) {
            if (batch <= 1) {
                redisReply *r = phase == 0 ? redisCommand(c, "SET key:%ld %s", i, val) : redisCommand(c, "GET key:%ld", i);
                if (!r || r->type == REDIS_REPLY_ERROR) die("hiredis command");
                freeReplyObject(r);
                i++;
                continue;
            }
            long end = i + batch < n ? i + batch : n;
            for (long j = i; j < end; j++) {
                if (phase == 0)
                    redisAppendCommand(c, "SET key:%ld %s", j, val);
                else
                    redisAppendCommand(c, "GET key:%ld", j);
            }
            for (long j = i; j < end; j++) {
                redisReply *r;
                if (redisGetReply(c, (void **)&r) != REDIS_OK || r->type == REDIS_REPLY_ERROR) die("hiredis reply");
                freeReplyObject(r);
            }
            i = end;
        }
    }
    double secs = now() - t0;
    redisFree(c);
    return 2.0 * (double)n / secs;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: client_bench PORT ours|hiredis REQUESTS PIPELINE\n");
        return 2;
    }
    int port = atoi(argv[1]);
    long n = atol(argv[3]);
    int batch = atoi(argv[4]);
    double ops = strcmp(argv[2], "ours") == 0 ? run_ours(port, n, batch) : run_hiredis(port, n, batch);
    printf("%s %d %.0f\n", argv[2], batch, ops);
    return 0;
}
