/* client_internal.h - the kv_client structure and the functions the
 * library's files share. Not installed: users see only kvclient.h. */
#ifndef KVCLIENT_INTERNAL_H
#define KVCLIENT_INTERNAL_H

#include <stddef.h>

#include "kvclient.h"

typedef struct byte_buf {
    char *data;
    size_t start; /* first unread byte */
    size_t len;   /* end of valid bytes */
    size_t cap;
} byte_buf;

struct kv_client {
    char *host;
    int port;
    kv_options opts;
    int fd;               /* -1 when not connected */
    byte_buf out;         /* encoded commands not yet sent */
    byte_buf in;          /* bytes received, not yet parsed */
    size_t pending;       /* replies owed by the server for commands sent or queued */
    char err[256];
};

/* errors.c */
kv_err client_fail(kv_client *c, kv_err err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* buffers (in io.c) */
int buf_reserve(byte_buf *b, size_t n);
void buf_free(byte_buf *b);

/* io.c: the socket, with timeouts */
kv_err io_ensure_connected(kv_client *c);
void io_close(kv_client *c);
/* Sends everything in c->out. */
kv_err io_flush(kv_client *c);
/* Reads at least one more byte into c->in. */
kv_err io_read_more(kv_client *c);

/* encode.c: multibulk requests appended to c->out */
kv_err encode_command(kv_client *c, int argc, const char *const *argv, const size_t *argvlen);
kv_err encode_2(kv_client *c, const char *cmd, const void *a, size_t alen);
kv_err encode_3(kv_client *c, const char *cmd, const void *a, size_t alen, const void *b, size_t blen);

/* reply.c: parsing replies out of c->in */
typedef struct scalar {
    kv_reply_type type;
    const char *str; /* into the input buffer: valid until the next read */
    size_t len;
    long long integer; /* value, or element count for arrays */
} scalar;
/* 1: parsed (*used bytes), 0: need more bytes, -1: not RESP2. */
int reply_parse_scalar(const char *p, size_t n, scalar *s, size_t *used);
int reply_parse_tree(const char *p, size_t n, kv_reply **out, size_t *used, int depth);

/* Reads one whole reply as a scalar (arrays are a protocol error here).
 * The scalar's bytes stay valid until the next call on c. */
kv_err client_read_scalar(kv_client *c, scalar *s);

#endif
