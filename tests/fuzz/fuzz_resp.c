/* fuzz_resp.c - libFuzzer target for the RESP request parser (common/resp_parser.h).
 *
 * One input is a byte stream as a client might send it on one connection.
 * It is parsed four ways, each the way a server would drive the parser:
 *
 *   1. all at once: the whole stream is present from the start;
 *   2. in place, in chunks whose sizes come from a PRNG seeded by the input
 *      (sometimes 0: a read that brought nothing), bytes not yet "received"
 *      poisoned under AddressSanitizer so any read past avail is caught;
 *   3. one byte at a time, in place, also poisoned;
 *   4. one byte at a time, the pending request moved into a fresh buffer of
 *      exactly the bytes received before every call (a server compacting its
 *      buffer), so a parser that kept a pointer across calls is caught.
 *
 * After every RESP_DONE the next call starts at buf + used, and bytes
 * already received are parsed before any more arrive (pipelining). Each run
 * records the requests it saw (argument bytes after in-place unescaping)
 * and how it ended (need more bytes, or a protocol error, and at which
 * request). All runs must agree. Invariants are checked with abort().
 *
 * Limits are small so that every limit path is reachable with small inputs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp_parser.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#endif
#ifdef FUZZ_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const resp_limits LIMITS = {.max_inline = 64, .max_args = 16, .max_request = 256};

/* Something the target believes can never happen: say what and stop. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_resp: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* --- growable byte log of what one run saw ------------------------------- */

typedef struct trace {
    unsigned char *b;
    size_t len, cap;
    size_t requests;   /* RESP_DONE count */
    resp_status final; /* RESP_AGAIN (ran out of input) or RESP_EPROTO */
    size_t final_at;   /* stream offset of the request that ended the run */
} trace;

static void trace_put(trace *t, const void *p, size_t n) {
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n) cap *= 2;
        unsigned char *nb = realloc(t->b, cap);
        CHECK(nb != NULL);
        t->b = nb;
        t->cap = cap;
    }
    memcpy(t->b + t->len, p, n);
    t->len += n;
}

static void trace_size(trace *t, size_t v) { trace_put(t, &v, sizeof v); }

/* Checks the invariants of one parse call and, on RESP_DONE, records the request. */
static void check_call(const resp_parser *p, resp_status st, char first, const char *req, size_t avail,
                       size_t used, trace *t) {
    CHECK(st == RESP_AGAIN || st == RESP_DONE || st == RESP_EPROTO);
    if (st == RESP_EPROTO) {
        size_t elen = strnlen(p->error, sizeof p->error);
        CHECK(elen > 0 && elen < sizeof p->error);
        return;
    }
    if (st != RESP_DONE) return;
    CHECK(used > 0);
    CHECK(used <= avail);
    CHECK(p->argc <= LIMITS.max_args);
    CHECK(p->argc == 0 || p->argv != NULL);
    CHECK(p->argc <= p->argv_cap);
    /* The kind of request is decided by its first byte as received: in-place
     * unescaping may since have rewritten it (inline "*" decodes to '*' at 0). */
    if (first == '*') {
        /* Multibulk: within the request limit, ends with the CRLF of its last line. */
        CHECK(used <= LIMITS.max_request);
        CHECK(used >= 4 && req[used - 2] == '\r' && req[used - 1] == '\n');
    } else {
        /* Inline: one line no longer than the limit, ending at its newline. */
        CHECK(used <= LIMITS.max_inline + 1);
        CHECK(req[used - 1] == '\n'); /* (unescaping may have written '\n' before it) */
    }
    trace_size(t, used);
    trace_size(t, p->argc);
    size_t prev_end = 0;
    for (size_t i = 0; i < p->argc; i++) {
        const resp_arg *a = &p->argv[i];
        CHECK(a->off <= used);
        CHECK(a->len <= used - a->off);
        CHECK(a->off >= prev_end); /* arguments come in order and never overlap */
        prev_end = a->off + a->len;
        trace_size(t, a->len);
        trace_put(t, req + a->off, a->len);
    }
    t->requests++;
}

/* --- the four ways to feed the parser --------------------------------------- */

static void run_all_at_once(const uint8_t *data, size_t size, trace *t) {
    char *buf = malloc(size ? size : 1);
    CHECK(buf != NULL);
    if (size) memcpy(buf, data, size);
    resp_parser p;
    resp_parser_init(&p, LIMITS);
    size_t start = 0;
    for (;;) {
        size_t used = 0;
        char first = start < size ? buf[start] : 0;
        resp_status st = resp_parse(&p, buf + start, size - start, &used);
        check_call(&p, st, first, buf + start, size - start, used, t);
        if (st != RESP_DONE) {
            t->final = st;
            t->final_at = start;
            break;
        }
        start += used;
    }
    resp_parser_free(&p);
    free(buf);
}

/* xorshift64*: chunk sizes that depend only on the input. */
static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static size_t next_chunk(uint64_t *rng, int bytewise) {
    if (bytewise) return 1;
    uint64_t r = rng_next(rng);
    switch (r & 7) {
    case 0: return 0;                            /* a wakeup with nothing new */
    case 1: case 2: case 3: return 1 + (r >> 8) % 3; /* a few bytes: splits inside tokens */
    case 4: case 5: return 1 + (r >> 8) % 16;
    default: return 1 + (r >> 8) % 128;
    }
}

/* In place: one buffer holding the whole stream; bytes not yet received are
 * poisoned. After DONE the bytes already received are parsed first. */
static void run_chunked_in_place(const uint8_t *data, size_t size, uint64_t seed, int bytewise, trace *t) {
    size_t cap = size ? size : 1;
    char *buf = malloc(cap);
    CHECK(buf != NULL);
    if (size) memcpy(buf, data, size);
    POISON(buf, cap);
    uint64_t rng = seed | 1;
    resp_parser p;
    resp_parser_init(&p, LIMITS);
    size_t start = 0, have = 0;
    for (;;) {
        size_t used = 0;
        char first = start < have ? buf[start] : 0;
        resp_status st = resp_parse(&p, buf + start, have - start, &used);
        check_call(&p, st, first, buf + start, have - start, used, t);
        if (st == RESP_DONE) {
            start += used;
            continue;
        }
        if (st == RESP_EPROTO || have == size) {
            t->final = st;
            t->final_at = start;
            break;
        }
        size_t n = next_chunk(&rng, bytewise);
        if (n > size - have) n = size - have;
        UNPOISON(buf + have, n);
        have += n;
    }
    resp_parser_free(&p);
    UNPOISON(buf, cap);
    free(buf);
}

/* Moving: before every call the pending request is copied into a fresh
 * allocation of exactly the bytes received so far, and the old one freed. */
static void run_bytewise_moving(const uint8_t *data, size_t size, trace *t) {
    resp_parser p;
    resp_parser_init(&p, LIMITS);
    size_t start = 0, have = 0;
    char *cur = NULL; /* holds stream bytes [start, have) */
    for (;;) {
        size_t avail = have - start;
        char *nb = malloc(avail ? avail : 1);
        CHECK(nb != NULL);
        if (avail) memcpy(nb, cur, avail);
        free(cur);
        cur = nb;
        size_t used = 0;
        char first = avail ? cur[0] : 0;
        resp_status st = resp_parse(&p, cur, avail, &used);
        check_call(&p, st, first, cur, avail, used, t);
        if (st == RESP_DONE) {
            /* Drop the finished request; what follows it becomes the new start. */
            size_t rest = avail - used;
            memmove(cur, cur + used, rest);
            start += used;
            continue;
        }
        if (st == RESP_EPROTO || have == size) {
            t->final = st;
            t->final_at = start;
            break;
        }
        /* Receive one more byte: it lands after the pending bytes. */
        char *grown = malloc(avail + 1);
        CHECK(grown != NULL);
        if (avail) memcpy(grown, cur, avail);
        grown[avail] = (char)data[have];
        free(cur);
        cur = grown;
        have++;
    }
    free(cur);
    resp_parser_free(&p);
}

static void check_same(const trace *a, const trace *b) {
    CHECK(a->requests == b->requests);
    CHECK(a->len == b->len);
    CHECK(a->len == 0 || memcmp(a->b, b->b, a->len) == 0);
    CHECK(a->final == b->final);
    CHECK(a->final_at == b->final_at);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Chunk-size seed: the first byte and the length, mixed so that small
     * mutations change the split pattern. */
    uint64_t seed = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)size << 17);
    if (size) seed ^= (uint64_t)data[0] * 0xBF58476D1CE4E5B9ULL;
    if (size > 1) seed ^= (uint64_t)data[size - 1] << 40;

    trace whole = {0}, chunked = {0}, bytes = {0}, moving = {0};
    run_all_at_once(data, size, &whole);
    run_chunked_in_place(data, size, seed, 0, &chunked);
    run_chunked_in_place(data, size, seed, 1, &bytes);
    run_bytewise_moving(data, size, &moving);

    check_same(&whole, &chunked);
    check_same(&whole, &bytes);
    check_same(&whole, &moving);
    /* Every byte of the stream is accounted for by requests and the remainder. */
    CHECK(whole.final_at <= size);
    CHECK(whole.final != RESP_AGAIN || size - whole.final_at <= LIMITS.max_request + LIMITS.max_inline);

    free(whole.b);
    free(chunked.b);
    free(bytes.b);
    free(moving.b);
    return 0;
}
