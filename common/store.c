/* store.c - binary-safe chained hash table (see store.h).
 *
 * Each entry is one allocation holding its key and value back to back, so a
 * GET touches one cache line more than the bucket array and a SET allocates
 * once. The table doubles when the load factor passes 1. Memory accounting
 * uses malloc_usable_size so used_memory reflects what the allocator really
 * handed out, not just payload bytes. */
#include "store.h"

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "siphash.h"

struct kv_entry {
    kv_entry *next;
    uint64_t hash;
    uint32_t klen;
    uint32_t vlen;
    char data[]; /* key bytes, then value bytes */
};

#define INITIAL_BUCKETS 16

static size_t bucket_bytes(size_t n) { return n * sizeof(kv_entry *); }

int kv_store_init(kv_store *s) {
    memset(s, 0, sizeof *s);
    if (getrandom(s->seed, sizeof s->seed, GRND_NONBLOCK) != (ssize_t)sizeof s->seed) {
        /* Without entropy fall back to something that still differs per run. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s->seed[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL;
        s->seed[1] = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)s;
    }
    s->buckets = calloc(INITIAL_BUCKETS, sizeof *s->buckets);
    if (!s->buckets) return -1;
    s->nbuckets = INITIAL_BUCKETS;
    s->mem_bytes = bucket_bytes(s->nbuckets);
    return 0;
}

void kv_store_free(kv_store *s) {
    for (size_t i = 0; i < s->nbuckets; i++) {
        kv_entry *e = s->buckets[i];
        while (e) {
            kv_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(s->buckets);
    memset(s, 0, sizeof *s);
}

static uint64_t hash_key(const kv_store *s, const void *key, size_t klen) { return kv_siphash13(key, klen, s->seed); }

/* Returns the link that points at the entry for key (or at NULL if absent),
 * so callers can insert or unlink without a second walk. */
static kv_entry **find_link(const kv_store *s, const void *key, size_t klen, uint64_t h) {
    kv_entry **link = &s->buckets[h & (s->nbuckets - 1)];
    while (*link) {
        kv_entry *e = *link;
        if (e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0) return link;
        link = &e->next;
    }
    return link;
}

/* Doubling keeps the average chain short; if the bigger array cannot be
 * allocated we keep going with longer chains rather than fail the write. */
static void maybe_grow(kv_store *s) {
    if (s->count <= s->nbuckets) return;
    size_t n = s->nbuckets * 2;
    kv_entry **nb = calloc(n, sizeof *nb);
    if (!nb) return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        kv_entry *e = s->buckets[i];
        while (e) {
            kv_entry *next = e->next;
            kv_entry **slot = &nb[e->hash & (n - 1)];
            e->next = *slot;
            *slot = e;
            e = next;
        }
    }
    free(s->buckets);
    s->mem_bytes += bucket_bytes(n) - bucket_bytes(s->nbuckets);
    s->buckets = nb;
    s->nbuckets = n;
}

int kv_store_set(kv_store *s, const void *key, size_t klen, const void *val, size_t vlen) {
    if (klen > UINT32_MAX || vlen > UINT32_MAX) return -1;
    uint64_t h = hash_key(s, key, klen);
    kv_entry **link = find_link(s, key, klen, h);
    kv_entry *old = *link;
    size_t need = sizeof(kv_entry) + klen + vlen;
    if (old && malloc_usable_size(old) >= need && need * 2 > malloc_usable_size(old)) {
        /* Overwrite in place when the value fits without wasting half the block. */
        memcpy(old->data + klen, val, vlen);
        old->vlen = (uint32_t)vlen;
        return 0;
    }
    kv_entry *e = malloc(need);
    if (!e) return -1;
    e->hash = h;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    memcpy(e->data, key, klen);
    if (vlen) memcpy(e->data + klen, val, vlen);
    s->mem_bytes += malloc_usable_size(e);
    if (old) {
        e->next = old->next;
        s->mem_bytes -= malloc_usable_size(old);
        free(old);
        *link = e;
        return 0;
    }
    e->next = NULL;
    *link = e;
    s->count++;
    maybe_grow(s);
    return 0;
}

int kv_store_get(const kv_store *s, const void *key, size_t klen, const char **val, size_t *vlen) {
    kv_entry *e = *find_link(s, key, klen, hash_key(s, key, klen));
    if (!e) return 0;
    *val = e->data + e->klen;
    *vlen = e->vlen;
    return 1;
}

int kv_store_exists(const kv_store *s, const void *key, size_t klen) {
    return *find_link(s, key, klen, hash_key(s, key, klen)) != NULL;
}

int kv_store_del(kv_store *s, const void *key, size_t klen) {
    kv_entry **link = find_link(s, key, klen, hash_key(s, key, klen));
    kv_entry *e = *link;
    if (!e) return 0;
    *link = e->next;
    s->mem_bytes -= malloc_usable_size(e);
    free(e);
    s->count--;
    return 1;
}

int kv_store_foreach(const kv_store *s, kv_store_visit_fn fn, void *ctx) {
    for (size_t i = 0; i < s->nbuckets; i++) {
        for (kv_entry *e = s->buckets[i]; e; e = e->next) {
            int r = fn(ctx, e->data, e->klen, e->data + e->klen, e->vlen);
            if (r) return r;
        }
    }
    return 0;
}
