/* fuzz_peer_frame.c - libFuzzer target for the peer frame decoder (common/frame.h).
 *
 * One input is the byte stream a peer might send on one link. It is decoded
 * three ways, as a node would receive it:
 *
 *   1. all at once, in one chunk;
 *   2. in chunks whose sizes come from a PRNG seeded by the input (sometimes
 *      0: a read that brought nothing);
 *   3. one byte at a time.
 *
 * In 2 and 3 every chunk is copied into a fresh allocation of exactly its
 * size and freed right after the call, so a read past a chunk or a pointer
 * kept into one (a message that referenced the input) is caught by
 * AddressSanitizer. Each run records every message it got (re-packed) and
 * how it ended (need more bytes, or which error, with which reason, after
 * how many bytes); all runs must agree. Every message is also encoded again
 * with kv_frame_append and decoded again: it must come back the same.
 * Invariants are checked with abort(). The limit is small so that an
 * oversized frame is easy to reach. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PAYLOAD 512

#define CHECK(cond)                                                                                      \
    do {                                                                                                 \
        if (!(cond)) {                                                                                   \
            fprintf(stderr, "fuzz_peer_frame: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                                     \
        }                                                                                                \
    } while (0)

typedef struct trace {
    unsigned char *b;
    size_t len, cap;
    size_t messages;
    kv_frame_status final; /* AGAIN (input ran out) or the error */
    char error[sizeof(((kv_frame_decoder *)0)->error)];
    size_t taken; /* bytes the decoder took in all */
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

static unsigned char *pack(const Kv__PeerMessage *m, size_t *n) {
    *n = kv__peer_message__get_packed_size(m);
    unsigned char *p = malloc(*n ? *n : 1);
    CHECK(p != NULL);
    CHECK(kv__peer_message__pack(m, p) == *n);
    return p;
}

/* Encodes m as a frame and decodes it back: the same message must return. */
static void check_reencode(const Kv__PeerMessage *m, const unsigned char *packed, size_t n) {
    kv_buf b;
    kv_buf_init(&b);
    CHECK(kv_frame_append(&b, m, SIZE_MAX) == KV_FRAME_OK);
    CHECK(kv_buf_readable(&b) == KV_FRAME_HEADER_LEN + n);
    kv_frame_decoder d;
    kv_frame_decoder_init(&d, SIZE_MAX);
    size_t used = 0;
    Kv__PeerMessage *again = NULL;
    CHECK(kv_frame_decode(&d, kv_buf_rptr(&b), kv_buf_readable(&b), &used, &again) == KV_FRAME_OK);
    CHECK(used == kv_buf_readable(&b));
    CHECK(kv_frame_decoder_idle(&d));
    size_t n2;
    unsigned char *p2 = pack(again, &n2);
    CHECK(n2 == n && memcmp(p2, packed, n) == 0);
    free(p2);
    kv_peer_message_free(again);
    kv_frame_decoder_free(&d);
    kv_buf_free(&b);
}

/* Checks one decode call; records a message. Returns 1 to call again on the
 * rest of the chunk, 0 when the chunk is exhausted, -1 after an error. */
static int step(kv_frame_decoder *d, const uint8_t *chunk, size_t len, size_t *off, trace *t) {
    size_t used = 99999;
    Kv__PeerMessage *m = (Kv__PeerMessage *)&used;
    kv_frame_status st = kv_frame_decode(d, chunk + *off, len - *off, &used, &m);
    CHECK(used <= len - *off);
    *off += used;
    t->taken += used;
    switch (st) {
    case KV_FRAME_OK: {
        CHECK(m != NULL);
        CHECK(m->msg_case != KV__PEER_MESSAGE__MSG__NOT_SET);
        CHECK(strcmp(kv_peer_message_name(m), "none") != 0);
        CHECK(kv_frame_decoder_idle(d));
        size_t n;
        unsigned char *p = pack(m, &n);
        trace_put(t, &n, sizeof n);
        trace_put(t, p, n);
        t->messages++;
        check_reencode(m, p, n);
        free(p);
        kv_peer_message_free(m);
        return 1;
    }
    case KV_FRAME_AGAIN:
        CHECK(m == NULL);
        CHECK(*off == len);
        return 0;
    case KV_FRAME_EOVERSIZE:
    case KV_FRAME_EEMPTY:
    case KV_FRAME_EDECODE:
    case KV_FRAME_EUNKNOWN:
    case KV_FRAME_ENOMEM: {
        CHECK(m == NULL);
        size_t elen = strnlen(kv_frame_error(d), sizeof d->error);
        CHECK(elen > 0 && elen < sizeof d->error);
        /* Sticky: nothing more is taken. */
        size_t again_used = 1;
        Kv__PeerMessage *m2 = NULL;
        CHECK(kv_frame_decode(d, chunk, len, &again_used, &m2) == st);
        CHECK(again_used == 0 && m2 == NULL);
        t->final = st;
        memcpy(t->error, d->error, sizeof t->error);
        return -1;
    }
    }
    CHECK(!"unexpected status");
    return -1;
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static size_t next_chunk(uint64_t *rng) {
    uint64_t r = rng_next(rng);
    switch (r & 7) {
    case 0: return 0;
    case 1: case 2: case 3: return 1 + (r >> 8) % 5; /* splits inside headers and fields */
    case 4: case 5: return 1 + (r >> 8) % 32;
    default: return 1 + (r >> 8) % 600;
    }
}

/* mode 0: one chunk; 1: PRNG-sized chunks; 2: one byte at a time. */
static void run(const uint8_t *data, size_t size, int mode, uint64_t seed, trace *t) {
    kv_frame_decoder d;
    kv_frame_decoder_init(&d, MAX_PAYLOAD);
    t->final = KV_FRAME_AGAIN;
    uint64_t rng = seed | 1;
    size_t pos = 0;
    int done = 0;
    while (!done) {
        size_t n = mode == 0 ? size : mode == 2 ? 1 : next_chunk(&rng);
        if (n > size - pos) n = size - pos;
        uint8_t *chunk = malloc(n ? n : 1); /* exactly the chunk: reads past it are caught */
        CHECK(chunk != NULL);
        if (n) memcpy(chunk, data + pos, n);
        size_t off = 0;
        int r;
        while ((r = step(&d, chunk, n, &off, t)) == 1) {
        }
        free(chunk); /* a decoder or message still pointing here is caught */
        pos += n;
        if (r < 0 || pos == size) done = 1;
    }
    if (t->final == KV_FRAME_AGAIN) {
        CHECK(t->taken == size);
        /* What is left over is one frame's beginning, never past the limit. */
        CHECK(d.hdr_have <= KV_FRAME_HEADER_LEN);
        CHECK(d.have <= MAX_PAYLOAD && d.have <= d.cap);
    }
    kv_frame_decoder_free(&d);
}

static void check_same(const trace *a, const trace *b) {
    CHECK(a->messages == b->messages);
    CHECK(a->len == b->len);
    CHECK(a->len == 0 || memcmp(a->b, b->b, a->len) == 0);
    CHECK(a->final == b->final);
    CHECK(a->final == KV_FRAME_AGAIN || strcmp(a->error, b->error) == 0);
    CHECK(a->taken == b->taken);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t seed = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)size << 17);
    if (size) seed ^= (uint64_t)data[size - 1] * 0xBF58476D1CE4E5B9ULL;

    trace whole = {0}, chunked = {0}, bytes = {0};
    run(data, size, 0, seed, &whole);
    run(data, size, 1, seed, &chunked);
    run(data, size, 2, seed, &bytes);
    check_same(&whole, &chunked);
    check_same(&whole, &bytes);
    free(whole.b);
    free(chunked.b);
    free(bytes.b);
    return 0;
}
