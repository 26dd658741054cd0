/* digest.c - order-independent keyspace checksum (see digest.h).
 *
 * Per pair and per lane: the key and the value are hashed separately
 * (SipHash-1-3, a different key for each), then the two hashes and both
 * lengths are hashed together. The lengths make ("ab","c") and ("a","bc")
 * different pairs; hashing key and value under different keys makes (k,v)
 * and (v,k) different; the final hash mixes them non-linearly, so two keys
 * swapping their values changes the sum. Nothing is copied, so computing a
 * digest cannot fail. */
#include "digest.h"

#include <inttypes.h>
#include <stdio.h>

#include "siphash.h"

/* Fixed so every node computes the same digest; they are not secrets. Taken
 * from SHA-512's initial values and first round constants: numbers with no
 * room up anyone's sleeve. [lane][0: key, 1: value, 2: pair] */
static const uint64_t KEYS[2][3][2] = {
    {{0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL},
     {0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL},
     {0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL}},
    {{0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL},
     {0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL},
     {0xb5c0fbcfec4d3b2fULL, 0xe9b5dba58189dbbcULL}},
};

static void put_le64(unsigned char *p, uint64_t x) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(x >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p) {
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = (x << 8) | p[i];
    return x;
}

void kv_digest_init(kv_digest *d) {
    d->lane[0] = d->lane[1] = 0;
    d->keys = 0;
}

void kv_digest_add(kv_digest *d, const void *key, size_t klen, const void *val, size_t vlen) {
    for (int l = 0; l < 2; l++) {
        unsigned char pair[32];
        put_le64(pair, kv_siphash13(key, klen, KEYS[l][0]));
        put_le64(pair + 8, kv_siphash13(val, vlen, KEYS[l][1]));
        put_le64(pair + 16, (uint64_t)klen);
        put_le64(pair + 24, (uint64_t)vlen);
        d->lane[l] += kv_siphash13(pair, sizeof pair, KEYS[l][2]); /* mod 2^64 */
    }
    d->keys++;
}

static int add_entry(void *ctx, const char *key, size_t klen, const char *val, size_t vlen) {
    kv_digest_add(ctx, key, klen, val, vlen);
    return 0;
}

void kv_digest_store(const kv_store *s, kv_digest *out) {
    kv_digest_init(out);
    kv_store_foreach(s, add_entry, out);
}

int kv_digest_equal(const kv_digest *a, const kv_digest *b) {
    return a->lane[0] == b->lane[0] && a->lane[1] == b->lane[1] && a->keys == b->keys;
}

size_t kv_digest_format(const kv_digest *d, char out[KV_DIGEST_TEXT_MAX]) {
    int n = snprintf(out, KV_DIGEST_TEXT_MAX, "%016" PRIx64 "%016" PRIx64 " keys=%" PRIu64, d->lane[0],
                     d->lane[1], d->keys);
    return n < 0 ? 0 : (size_t)n; /* 32 + 6 + at most 20 digits: always fits */
}

void kv_digest_to_bytes(const kv_digest *d, unsigned char out[KV_DIGEST_BYTES]) {
    put_le64(out, d->lane[0]);
    put_le64(out + 8, d->lane[1]);
}

void kv_digest_from_bytes(kv_digest *d, const unsigned char in[KV_DIGEST_BYTES], uint64_t keys) {
    d->lane[0] = get_le64(in);
    d->lane[1] = get_le64(in + 8);
    d->keys = keys;
}
