/* siphash.c - SipHash-1-3 (Aumasson and Bernstein): one compression round
 * per 8-byte word and three finalisation rounds, the variant Redis and Rust
 * use for hash tables, where speed matters more than the full 2-4 margin. */
#include "siphash.h"

#include <string.h>

static uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static void sip_round(uint64_t v[4]) {
    v[0] += v[1];
    v[1] = rotl(v[1], 13);
    v[1] ^= v[0];
    v[0] = rotl(v[0], 32);
    v[2] += v[3];
    v[3] = rotl(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = rotl(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = rotl(v[1], 17);
    v[1] ^= v[2];
    v[2] = rotl(v[2], 32);
}

static uint64_t load_le64(const unsigned char *p) {
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = (x << 8) | p[i];
    return x;
}

uint64_t kv_siphash13(const void *data, size_t len, const uint64_t key[2]) {
    const unsigned char *p = data;
    uint64_t v[4] = {
        key[0] ^ 0x736f6d6570736575ULL,
        key[1] ^ 0x646f72616e646f6dULL,
        key[0] ^ 0x6c7967656e657261ULL,
        key[1] ^ 0x7465646279746573ULL,
    };
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load_le64(p + i);
        v[3] ^= m;
        sip_round(v);
        v[0] ^= m;
    }
    unsigned char tail[8] = {0};
    /* An empty key may come as a NULL pointer (protobuf-c decodes empty
     * bytes so): memcpy must not be handed one, even for 0 bytes. */
    if (len % 8) memcpy(tail, p + whole, len % 8);
    uint64_t b = ((uint64_t)len << 56) | load_le64(tail);
    v[3] ^= b;
    sip_round(v);
    v[0] ^= b;
    v[2] ^= 0xff;
    for (int i = 0; i < 3; i++) sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}
