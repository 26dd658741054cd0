/* buf.c - growable byte buffer (see buf.h). */
#include "buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void kv_buf_init(kv_buf *b) {
    b->data = NULL;
    b->start = b->len = b->cap = 0;
    b->oom = 0;
}

static int out_of_memory(kv_buf *b) {
    b->oom = 1;
    return -1;
}

void kv_buf_free(kv_buf *b) {
    free(b->data);
    kv_buf_init(b);
}

int kv_buf_reserve(kv_buf *b, size_t n) {
    if (b->cap - b->len >= n) return 0;
    /* Reuse the consumed prefix before growing. */
    if (b->start > 0 && b->cap - (b->len - b->start) >= n) {
        kv_buf_compact(b);
        return 0;
    }
    size_t need = b->len - b->start + n;
    if (need < n) return out_of_memory(b); /* overflow */
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) return out_of_memory(b);
        cap *= 2;
    }
    kv_buf_compact(b);
    char *p = realloc(b->data, cap);
    if (!p) return out_of_memory(b);
    b->data = p;
    b->cap = cap;
    return 0;
}

int kv_buf_append(kv_buf *b, const void *p, size_t n) {
    if (n == 0) return 0;
    if (kv_buf_reserve(b, n) != 0) return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int kv_buf_append_str(kv_buf *b, const char *s) { return kv_buf_append(b, s, strlen(s)); }

void kv_buf_commit(kv_buf *b, size_t n) { b->len += n; }

void kv_buf_consume(kv_buf *b, size_t n) {
    b->start += n;
    if (b->start >= b->len) b->start = b->len = 0;
}

void kv_buf_compact(kv_buf *b) {
    if (b->start == 0) return;
    size_t n = b->len - b->start;
    if (n) memmove(b->data, b->data + b->start, n);
    b->start = 0;
    b->len = n;
}

void kv_buf_shrink_if_empty(kv_buf *b, size_t keep) {
    if (b->len != b->start || b->cap <= keep) return;
    free(b->data);
    kv_buf_init(b);
}
