/* store.h - the in-memory key-value store: a binary-safe chained hash table.
 * Keys and values are arbitrary bytes. Size and memory use are kept as
 * running totals so INFO and DBSIZE are O(1). The table grows incrementally,
 * so no single write pays for moving every key. Not thread-safe: one owner
 * thread (the event loop) does everything, which is why no locks appear. */
#ifndef KV_STORE_H
#define KV_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct kv_entry kv_entry;

typedef struct kv_store {
    kv_entry **buckets; /* owned; new entries always go here */
    size_t nbuckets;    /* power of two */
    kv_entry **old;     /* while growing: the previous array, drained a few
                           buckets per write (owned; NULL when not growing) */
    size_t nold;
    size_t rehash_pos;  /* old[0 .. rehash_pos) are already moved */
    size_t count;
    size_t mem_bytes;   /* keys + values + per-entry overhead + bucket arrays */
    uint64_t seed[2];   /* per-process random hash key (hash flooding defence) */
} kv_store;

int kv_store_init(kv_store *s);
void kv_store_free(kv_store *s);

/* Copies key and value. Returns 0, or -1 on OOM (store unchanged). */
int kv_store_set(kv_store *s, const void *key, size_t klen, const void *val, size_t vlen);
/* Returns 1 and points *val and *vlen at the stored bytes (valid until the next
 * write to the store), or 0 when missing. */
int kv_store_get(const kv_store *s, const void *key, size_t klen, const char **val, size_t *vlen);
/* Returns 1 if the key existed and was removed, else 0. */
int kv_store_del(kv_store *s, const void *key, size_t klen);
int kv_store_exists(const kv_store *s, const void *key, size_t klen);

static inline size_t kv_store_count(const kv_store *s) { return s->count; }
static inline size_t kv_store_mem(const kv_store *s) { return s->mem_bytes; }

/* Visit every entry (order unspecified). Stop early when fn returns non-zero,
 * and return that value. fn must not modify the store. */
typedef int (*kv_store_visit_fn)(void *ctx, const char *key, size_t klen, const char *val, size_t vlen);
int kv_store_foreach(const kv_store *s, kv_store_visit_fn fn, void *ctx);

#endif
