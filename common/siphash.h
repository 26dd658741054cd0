/* siphash.h - SipHash-1-3, a keyed hash. The store keys it with random bytes
 * at start so a client cannot choose keys that all land in one bucket. */
#ifndef KV_SIPHASH_H
#define KV_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t kv_siphash13(const void *data, size_t len, const uint64_t key[2]);

#endif
