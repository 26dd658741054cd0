/* resp_reply.h - RESP2 reply writers. Each appends one reply to an output
 * buffer and returns 0, or -1 when memory runs out. */
#ifndef KV_RESP_REPLY_H
#define KV_RESP_REPLY_H

#include <stddef.h>
#include "buf.h"

int reply_ok(kv_buf *out);                          /* +OK */
int reply_simple(kv_buf *out, const char *s);       /* +s (s must not hold CR/LF) */
int reply_error(kv_buf *out, const char *fmt, ...)  /* -fmt... ; CR/LF replaced by spaces */
    __attribute__((format(printf, 2, 3)));
int reply_int(kv_buf *out, long long n);            /* :n */
int reply_bulk(kv_buf *out, const void *p, size_t n); /* $n payload */
int reply_bulk_str(kv_buf *out, const char *s);
int reply_null(kv_buf *out);                        /* $-1 */
int reply_array(kv_buf *out, long long n);          /* *n header; elements follow */

#endif
