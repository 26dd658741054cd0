/* buffer.c - the growable byte buffer behind the client's input and output.
 * Memory is kept between calls (no allocation per command once warm), but a
 * buffer that grew large for one big value is released when it empties. */
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

#define BUF_INITIAL (16 * 1024)
#define BUF_KEEP (1024 * 1024) /* larger empty buffers are released */

int buf_reserve(byte_buf *b, size_t n) {
    if (b->cap - b->len >= n) return 0;
    if (b->start > 0) { /* reclaim consumed space first */
        memmove(b->data, b->data + b->start, b->len - b->start);
        b->len -= b->start;
        b->start = 0;
        if (b->cap - b->len >= n) return 0;
    }
    if (n > (size_t)-1 - b->len) return -1;
    size_t cap = b->cap ? b->cap : BUF_INITIAL;
    while (cap - b->len < n) {
        if (cap > (size_t)-1 / 2) return -1;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

void buf_consume(byte_buf *b, size_t n) {
    b->start += n;
    if (b->start == b->len) buf_clear(b);
}

const char *buf_unread(const byte_buf *b) { return b->data ? b->data + b->start : ""; }

size_t buf_unread_len(const byte_buf *b) { return b->len - b->start; }

void buf_clear(byte_buf *b) {
    b->start = b->len = 0;
    if (b->cap > BUF_KEEP) buf_free(b);
}

void buf_free(byte_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}
