/* resp_reply.c - RESP2 reply writers (see resp_reply.h). */
#include "resp_reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Writes "<prefix><n>\r\n" without snprintf on the hot path. */
static int append_prefixed_int(kv_buf *out, char prefix, long long n) {
    char tmp[32];
    char *end = tmp + sizeof tmp;
    char *p = end;
    *--p = '\n';
    *--p = '\r';
    unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (n < 0) *--p = '-';
    *--p = prefix;
    return kv_buf_append(out, p, (size_t)(end - p));
}

int reply_ok(kv_buf *out) { return kv_buf_append(out, "+OK\r\n", 5); }

int reply_simple(kv_buf *out, const char *s) {
    size_t n = strlen(s);
    if (kv_buf_reserve(out, n + 3) != 0) return -1;
    kv_buf_append(out, "+", 1);
    kv_buf_append(out, s, n);
    return kv_buf_append(out, "\r\n", 2);
}

int reply_error(kv_buf *out, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    size_t len = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
    /* A CR or LF inside an error line would end it early and desynchronise the client. */
    for (size_t i = 0; i < len; i++)
        if (msg[i] == '\r' || msg[i] == '\n') msg[i] = ' ';
    if (kv_buf_reserve(out, len + 3) != 0) return -1;
    kv_buf_append(out, "-", 1);
    kv_buf_append(out, msg, len);
    return kv_buf_append(out, "\r\n", 2);
}

int reply_int(kv_buf *out, long long n) { return append_prefixed_int(out, ':', n); }

int reply_bulk(kv_buf *out, const void *p, size_t n) {
    if (kv_buf_reserve(out, n + 32) != 0) return -1;
    append_prefixed_int(out, '$', (long long)n);
    kv_buf_append(out, p, n);
    return kv_buf_append(out, "\r\n", 2);
}

int reply_bulk_str(kv_buf *out, const char *s) { return reply_bulk(out, s, strlen(s)); }

int reply_null(kv_buf *out) { return kv_buf_append(out, "$-1\r\n", 5); }

int reply_array(kv_buf *out, long long n) { return append_prefixed_int(out, '*', n); }
