/* reply.c - the RESP2 reply parser. Replies are parsed straight out of the
 * input buffer. A scalar (status, error, integer, bulk) needs no
 * allocation, which is all kv_set and kv_get use. A generic reply is first
 * scanned until it is complete, remembering how far the scan got so bytes
 * arriving later continue it; only then is its tree built, in one pass. So
 * a large array costs linear time however it is split, and nothing is
 * allocated for elements that have not arrived (a header claiming a
 * million elements allocates nothing until they are really there). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

#define MAX_BULK (512LL * 1024 * 1024) /* the largest value Redis allows */
#define MAX_ELEMENTS (1LL << 31)
#define MAX_LINE (64 * 1024) /* a status or error line; headers are tiny */

/* Strict decimal with an optional '-', within long long. */
static int parse_int(const char *s, size_t n, long long *out) {
    size_t i = 0;
    int neg = 0;
    if (n > 0 && s[0] == '-') neg = i = 1;
    if (i == n) return -1;
    unsigned long long v = 0;
    const unsigned long long limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (neg)
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    else
        *out = (long long)v;
    return 0;
}

int reply_parse_scalar(const char *p, size_t n, scalar *s, size_t *used) {
    if (n == 0) return 0;
    const char *cr = memchr(p, '\r', n < MAX_LINE ? n : MAX_LINE);
    if (!cr) return n >= MAX_LINE ? -1 : 0;
    size_t line = (size_t)(cr - p);
    if (line + 1 >= n) return 0; /* need the LF */
    if (cr[1] != '\n') return -1;
    size_t after = line + 2;
    /* LAB reply-parser: by the first byte: + - status/error, : integer, $ bulk ($-1 nil), * array header */
    switch (p[0]) {
    case '+':
    case '-':
        s->type = p[0] == '+' ? KV_REPLY_STATUS : KV_REPLY_ERROR;
        s->str = p + 1;
        s->len = line - 1;
        s->integer = 0;
        *used = after;
        return 1;
    case ':':
        s->type = KV_REPLY_INTEGER;
        s->str = NULL;
        s->len = 0;
        if (parse_int(p + 1, line - 1, &s->integer) != 0) return -1;
        *used = after;
        return 1;
    case '$': {
        long long len;
        if (parse_int(p + 1, line - 1, &len) != 0 || len < -1 || len > MAX_BULK) return -1;
        s->integer = 0;
        if (len == -1) {
            s->type = KV_REPLY_NIL;
            s->str = NULL;
            s->len = 0;
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
        s->integer = count == -1 ? 0 : count;
        s->str = NULL;
        s->len = 0;
        *used = after;
        return 1;
    }
    default:
        return -1;
    }
    /* END LAB */
}

int reply_scan_step(reply_scan *scan, const char *p, size_t n) {
    for (;;) {
        scalar s;
        size_t used;
        int r = reply_parse_scalar(p + scan->off, n - scan->off, &s, &used);
        if (r <= 0) return r;
        scan->off += used;
        if (s.type == KV_REPLY_ARRAY && s.integer > 0) {
            if (scan->depth == REPLY_MAX_DEPTH) return -1;
            scan->left[scan->depth++] = s.integer;
            continue;
        }
        /* An element is complete; so is every array it was the last one of. */
        for (;;) {
            if (scan->depth == 0) return 1;
            if (--scan->left[scan->depth - 1] > 0) break;
            scan->depth--;
        }
    }
}

void kv_reply_free(kv_reply *r) {
    if (!r) return;
    for (size_t i = 0; i < r->elements; i++) kv_reply_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

kv_reply *reply_from_scalar(const scalar *s) {
    kv_reply *rep = calloc(1, sizeof *rep);
    if (!rep) return NULL;
    rep->type = s->type;
    rep->integer = s->type == KV_REPLY_INTEGER ? s->integer : 0;
    if (s->type == KV_REPLY_STATUS || s->type == KV_REPLY_ERROR || s->type == KV_REPLY_BULK) {
        rep->str = malloc(s->len + 1);
        if (!rep->str) {
            free(rep);
            return NULL;
        }
        if (s->len) memcpy(rep->str, s->str, s->len);
        rep->str[s->len] = '\0';
        rep->len = s->len;
    }
    return rep;
}

/* The tree of the element at p (complete, already validated by the scan).
 * Returns its node and sets *used, or NULL when out of memory. */
static kv_reply *build(const char *p, size_t n, size_t *used) {
    scalar s;
    size_t off;
    if (reply_parse_scalar(p, n, &s, &off) != 1) return NULL; /* cannot happen after a scan */
    kv_reply *rep = reply_from_scalar(&s);
    if (!rep) return NULL;
    if (s.type == KV_REPLY_ARRAY && s.integer > 0) {
        rep->element = calloc((size_t)s.integer, sizeof *rep->element);
        if (!rep->element) {
            free(rep);
            return NULL;
        }
        for (long long i = 0; i < s.integer; i++) {
            size_t u;
            rep->element[i] = build(p + off, n - off, &u);
            if (!rep->element[i]) {
                kv_reply_free(rep);
                return NULL;
            }
            rep->elements++;
            off += u;
        }
    }
    *used = off;
    return rep;
}

int reply_build(const char *p, size_t n, kv_reply **out) {
    size_t used;
    *out = build(p, n, &used);
    return *out ? 0 : -1;
}
