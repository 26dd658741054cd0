/* digest.h - an order-independent checksum of a whole keyspace (DIGEST).
 *
 * Two nodes holding the same keys with the same values have the same digest,
 * however their hash tables are laid out and in whatever order the keys were
 * written; any difference in a key or a value changes it (with overwhelming
 * probability, against accidents: the hash keys are fixed and public, so this
 * is no defence against someone crafting collisions). Each (key, value) pair
 * is hashed to 128 bits, two 64-bit lanes, and the lanes are summed mod 2^64
 * over all pairs; addition commutes, so order does not matter, and a pair can
 * be added as it streams past (a full copy) as well as by walking a store. */
#ifndef KV_DIGEST_H
#define KV_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct kv_digest {
    uint64_t lane[2];
    uint64_t keys;
} kv_digest;

/* "<32 hex digits> keys=<n>" plus its NUL always fits in this many bytes. */
#define KV_DIGEST_TEXT_MAX 64
/* The 16-byte wire form (FullCopyEnd.digest): lane 0 then lane 1, little-endian. */
#define KV_DIGEST_BYTES 16

void kv_digest_init(kv_digest *d);
/* Adds one pair. A keyspace holds each key once: adding a key twice is not
 * the same as setting it twice. */
void kv_digest_add(kv_digest *d, const void *key, size_t klen, const void *val, size_t vlen);
/* The digest of every pair in s. Cannot fail (no allocation). */
void kv_digest_store(const kv_store *s, kv_digest *out);
int kv_digest_equal(const kv_digest *a, const kv_digest *b);

/* Writes the DIGEST reply text, e.g. "0123...cdef keys=3", into out
 * (KV_DIGEST_TEXT_MAX bytes). Returns its length. */
size_t kv_digest_format(const kv_digest *d, char out[KV_DIGEST_TEXT_MAX]);
void kv_digest_to_bytes(const kv_digest *d, unsigned char out[KV_DIGEST_BYTES]);
/* A digest from its wire form and the key count sent beside it. */
void kv_digest_from_bytes(kv_digest *d, const unsigned char in[KV_DIGEST_BYTES], uint64_t keys);

#endif
