/* slice.h - a borrowed byte range: a command argument, a key, a value. */
#ifndef KV_SLICE_H
#define KV_SLICE_H

#include <stddef.h>
#include <string.h>
#include <strings.h>

typedef struct kv_slice {
    const char *p;
    size_t len;
} kv_slice;

/* Case-insensitive compare with a NUL-terminated word (command names). */
static inline int kv_slice_eq_nocase(kv_slice s, const char *word) {
    return strlen(word) == s.len && strncasecmp(s.p, word, s.len) == 0;
}

#endif
