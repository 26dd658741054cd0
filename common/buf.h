/* buf.h - a growable byte buffer with a read cursor.
 * Used for connection input (bytes arrive at the end, requests are consumed
 * from the front) and output (replies are appended, written from the front). */
#ifndef KV_BUF_H
#define KV_BUF_H

#include <stddef.h>

typedef struct kv_buf {
    char *data;   /* owned; NULL until the first append */
    size_t start; /* first unconsumed byte */
    size_t len;   /* end of valid bytes (so readable = len - start) */
    size_t cap;
    int oom;      /* an append failed for lack of memory (sticky until kv_buf_free) */
} kv_buf;

void kv_buf_init(kv_buf *b);
void kv_buf_free(kv_buf *b);

/* Make room for at least n more bytes at the end. Returns 0, or -1 on OOM. */
int kv_buf_reserve(kv_buf *b, size_t n);
int kv_buf_append(kv_buf *b, const void *p, size_t n);
int kv_buf_append_str(kv_buf *b, const char *s);

static inline char *kv_buf_rptr(const kv_buf *b) { return b->data + b->start; }
static inline size_t kv_buf_readable(const kv_buf *b) { return b->len - b->start; }
static inline char *kv_buf_wptr(const kv_buf *b) { return b->data + b->len; }
static inline size_t kv_buf_writable(const kv_buf *b) { return b->cap - b->len; }

/* Record that n bytes were written directly at kv_buf_wptr(). */
void kv_buf_commit(kv_buf *b, size_t n);
/* Drop n bytes from the front. Resets to empty (keeping memory) when drained. */
void kv_buf_consume(kv_buf *b, size_t n);
/* Move unconsumed bytes to the front so the free tail is as large as possible. */
void kv_buf_compact(kv_buf *b);
/* Release memory above keep bytes if the buffer is empty (idle connections stay small). */
void kv_buf_shrink_if_empty(kv_buf *b, size_t keep);

#endif
