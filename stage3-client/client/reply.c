/* reply.c - RESP2 reply parsing. Replies are parsed straight out of the
 * input buffer: scalars (status, error, integer, bulk) without allocating,
 * which is all kv_set/kv_get need; whole trees only for generic commands. */
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

#define MAX_BULK (512LL * 1024 * 1024)
#define MAX_ELEMENTS (1024LL * 1024)
#define MAX_DEPTH 16

/* Strict decimal with optional '-'. */
static int parse_int(const char *s, size_t n, long long *out) {
    size_t i = 0;
    int neg = 0;
    if (n && s[0] == '-') neg = i = 1;
    if (i == n || n - i > 18) return -1;
    long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

int reply_parse_scalar(const char *p, size_t n, scalar *s, size_t *used) {
    if (n == 0) return 0;
    const char *cr = memchr(p, '\r', n);
    if (!cr) return n > 64 * 1024 ? -1 : 0; /* a header line is never that long */
    size_t line = (size_t)(cr - p);
    if (line + 1 >= n) return 0; /* need the LF */
    if (cr[1] != '\n') return -1;
    size_t after = line + 2;
    switch (p[0]) {
    case '+':
    case '-':
        s->type = p[0] == '+' ? KV_REPLY_STATUS : KV_REPLY_ERROR;
        s->str = p + 1;
        s->len = line - 1;
        *used = after;
        return 1;
    case ':':
        s->type = KV_REPLY_INTEGER;
        if (parse_int(p + 1, line - 1, &s->integer) != 0) return -1;
        *used = after;
        return 1;
    case '$': {
        long long len;
        if (parse_int(p + 1, line - 1, &len) != 0 || len < -1 || len > MAX_BULK) return -1;
        if (len == -1) {
            s->type = KV_REPLY_NIL;
            *used = after;
            return 1;
        }
        if (n - after < (size_t)len + 2) return 0;
        if (p[after + (size_t)len] != '\r' || p[after + (size_t)len + 1] != '\n') return -1;
        s->type = KV_REPLY_BULK;
        s->str = p + after;
        s->len = (size_t)len;
        *used = after + (size_t)len + 2;
        return 1;
    }
    case '*': {
        long long count;
        if (parse_int(p + 1, line - 1, &count) != 0 || count < -1 || count > MAX_ELEMENTS) return -1;
        s->type = count == -1 ? KV_REPLY_NIL : KV_REPLY_ARRAY;
        s->integer = count;
        *used = after;
        return 1;
    }
    default:
        return -1;
    }
}

void kv_reply_free(kv_reply *r) {
    if (!r) return;
    for (size_t i = 0; i < r->elements; i++) kv_reply_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

/* 1 parsed, 0 need more, -1 protocol error, -2 out of memory. */
int reply_parse_tree(const char *p, size_t n, kv_reply **out, size_t *used, int depth) {
    scalar s = {0};
    size_t off;
    int r = reply_parse_scalar(p, n, &s, &off);
    if (r <= 0) return r;
    if (depth > MAX_DEPTH) return -1;
    kv_reply *rep = calloc(1, sizeof *rep);
    if (!rep) return -2;
    rep->type = s.type;
    rep->integer = s.integer;
    if (s.type == KV_REPLY_STATUS || s.type == KV_REPLY_ERROR || s.type == KV_REPLY_BULK) {
        rep->str = malloc(s.len + 1);
        if (!rep->str) {
            free(rep);
            return -2;
        }
        memcpy(rep->str, s.str, s.len);
        rep->str[s.len] = '\0';
        rep->len = s.len;
    } else if (s.type == KV_REPLY_ARRAY && s.integer > 0) {
        rep->element = calloc((size_t)s.integer, sizeof *rep->element);
        if (!rep->element) {
            free(rep);
            return -2;
        }
        for (long long i = 0; i < s.integer; i++) {
            size_t u;
            r = reply_parse_tree(p + off, n - off, &rep->element[i], &u, depth + 1);
            if (r <= 0) {
                kv_reply_free(rep);
                return r;
            }
            rep->elements++;
            off += u;
        }
    }
    *out = rep;
    *used = off;
    return 1;
}
