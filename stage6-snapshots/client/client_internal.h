/* client_internal.h - the kv_client structure and the functions the
 * library's files share. Not installed: users see only kvclient.h. */
#ifndef KVCLIENT_INTERNAL_H
#define KVCLIENT_INTERNAL_H

#include <stddef.h>

#include "kvclient.h"

/* ---- buffer.c: a byte buffer with a read cursor ---- */

typedef struct byte_buf {
    char *data;
    size_t start; /* first unread byte */
    size_t len;   /* end of valid bytes */
    size_t cap;
} byte_buf;

/* Room for n more bytes at the end (moving unread bytes to the front first
 * if that is enough). 0, or -1 when out of memory. */
int buf_reserve(byte_buf *b, size_t n);
/* Drops n bytes from the front; when the buffer empties, returns a large
 * allocation so one huge reply does not pin memory for the client's life. */
void buf_consume(byte_buf *b, size_t n);
void buf_clear(byte_buf *b);
/* The unread bytes (never a NULL pointer, even before the first
 * allocation, so parsers may do arithmetic on it) and their count. */
const char *buf_unread(const byte_buf *b);
size_t buf_unread_len(const byte_buf *b);
void buf_free(byte_buf *b);

/* ---- reply.c: RESP2 replies ---- */

#define REPLY_MAX_DEPTH 16 /* nested arrays; real replies use a few levels */

/* One reply element, parsed in place: str points into the input buffer. */
typedef struct scalar {
    kv_reply_type type;
    const char *str;
    size_t len;
    long long integer; /* INTEGER: the value; ARRAY: the element count */
} scalar;

/* How far the scan of the next (possibly nested) reply has got, so bytes
 * that arrive later continue the scan instead of restarting it. */
typedef struct reply_scan {
    size_t off;                         /* bytes known to belong to the reply */
    int depth;                          /* arrays open at off */
    long long left[REPLY_MAX_DEPTH];    /* elements still to come in each */
} reply_scan;

/* One element (an array counts as its header only).
 * 1: parsed, *used bytes; 0: need more bytes; -1: not RESP2. */
int reply_parse_scalar(const char *p, size_t n, scalar *s, size_t *used);
/* Continues the scan of the reply starting at p. 1: the whole reply is
 * present (scan->off bytes); 0: need more; -1: not RESP2 (or too deep). */
int reply_scan_step(reply_scan *scan, const char *p, size_t n);
/* A reply node for one parsed element (an array's elements are not
 * filled in). NULL when out of memory. */
kv_reply *reply_from_scalar(const scalar *s);
/* Builds the tree of a reply the scan found complete. 0, or -1 when out of
 * memory (*out is NULL then). */
int reply_build(const char *p, size_t n, kv_reply **out);

/* ---- the client ---- */

/* A connection idle this long is checked before use: servers close idle
 * connections (stage 3's --timeout, Redis's timeout), and sending a command
 * into one would fail it with "dropped" although nothing was in flight. The
 * check costs a system call, so busy connections skip it. */
#define KV_IDLE_CHECK_MS 1000

/* "host:port" with brackets for IPv6: a host, three more bytes, the port. */
#define KV_ADDR_MAX (KV_HOST_MAX + 8)

struct kv_client {
    char *host;
    int port;
    kv_options opts;
    int fd;            /* -1 when not connected */
    byte_buf out;      /* encoded commands not yet sent */
    byte_buf in;       /* bytes received, not yet parsed */
    reply_scan scan;   /* progress on the reply at in.start */
    size_t pending;    /* replies this connection owes: commands queued or sent, reply unread */
    size_t lost;       /* pipelined replies lost with a dead connection, still to report */
    int send_error;    /* errno (or -1: peer closed) that stopped the last send; 0 if none */
    long long last_io_ms; /* monotonic time of the last connect, send or receive */
    unsigned long long redirects; /* kv_redirects */
    char last_redirect[KV_ADDR_MAX]; /* kv_last_redirect */
    /* cluster.c: the nodes to try when the leader is unknown or unreachable
     * (kv_client_new's address first, then kv_client_add_nodes'), owned */
    struct known_node { char *host; int port; } *nodes;
    size_t nnodes;
    unsigned long long session_id; /* exactly-once session; 0: none open yet */
    unsigned long long seq;        /* the last seq used in it */
    unsigned long long retries;    /* kv_retries */
    char last_retry[KV_ADDR_MAX + 160]; /* kv_last_retry */
    char err[512];     /* kv_last_error */
    char lost_why[256];/* what killed the connection the lost replies were on */
};

/* errors.c: records the message for kv_last_error and returns err. */
kv_err client_fail(kv_client *c, kv_err err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* io.c: the socket, with timeouts. Every failure that leaves the
 * connection out of step closes it (io_close), so the next call reconnects. */
kv_err io_ensure_connected(kv_client *c);
void io_close(kv_client *c);
/* Sends everything in c->out, reading replies that arrive meanwhile. If the
 * server closes or resets the connection, sending stops and KV_OK is
 * returned anyway: the server may have sent an error reply explaining why
 * (e.g. a request over its size limit), and the read that follows either
 * finds it or reports the drop. */
kv_err io_flush(kv_client *c);
/* Reads at least one more byte into c->in. */
kv_err io_read_more(kv_client *c);

/* encode.c: multibulk requests appended to c->out; each adds one to
 * c->pending. */
kv_err encode_command(kv_client *c, int argc, const char *const *argv, const size_t *argvlen);
kv_err encode_2(kv_client *c, const char *cmd, const void *a, size_t alen);
kv_err encode_3(kv_client *c, const char *cmd, const void *a, size_t alen, const void *b, size_t blen);

/* read.c: taking one reply off the connection. */
/* Starts a synchronous call. It cannot start while a live connection still
 * owes pipelined replies (its reply would be confused with theirs); replies
 * lost with a dead connection can never arrive, so they are forgotten.
 * Then connects if needed. */
kv_err begin_sync(kv_client *c);
/* Sends what is queued and reads one reply as a scalar (an array is a
 * protocol error here). Its bytes stay valid until the next call on c. */
kv_err read_scalar(kv_client *c, scalar *s);
/* Sends what is queued and reads one whole reply as a tree (*out owned by
 * the caller). */
kv_err read_tree(kv_client *c, kv_reply **out);
/* After an error reply: the server closes the connection after a protocol
 * error, so close our end now and let the next call reconnect rather than
 * fail with "dropped". */
void after_error_reply(kv_client *c, const char *text, size_t len);

/* cluster.c: one synchronous call: follows redirects, waits out an
 * election, tries the other known nodes, and (exactly_once) tags a write
 * with the session and retries it after an ambiguous failure. lens may be
 * NULL (C strings). want_tree: the reply goes to *tree (owned by the
 * caller), else to *s (in place, valid until the next call on c). KV_OK
 * with an error reply means that reply is the answer. */
kv_err call_run(kv_client *c, int argc, const char *const *argv, const size_t *lens, int want_tree, scalar *s,
                kv_reply **tree);
/* Adds host:port to the known nodes unless it is there. 0, or -1 out of memory. */
int cluster_add_node(kv_client *c, const char *host, int port);
void cluster_free(kv_client *c);

/* redirect.c: following READONLY or NOTLEADER ... leader=HOST:PORT for one-shot calls. */
typedef struct redirect_walk {
    int hops;          /* redirects followed in this call */
    char *start_host;  /* the call's first address once it moved (owned), to go back to */
    int start_port;
    char path[320];    /* "A -> B -> C", for the error messages */
} redirect_walk;

/* The text of an error reply (without '-'): 1 a redirect, host and *port
 * filled; 0 not one; -1 READONLY with a malformed leader=. */
int redirect_parse(const char *text, size_t len, char *host, size_t hostlen, int *port);
/* "NOTLEADER leader=unknown": an election is on; wait and try again. */
int redirect_leader_unknown(const char *text, size_t len);
/* HOST:PORT or [IPV6]:PORT, the whole of p[0 .. n): 0, or -1. */
int redirect_parse_address(const char *p, size_t n, char *host, size_t hostlen, int *port);
/* "host:port", with brackets around an IPv6 host. */
void redirect_format_address(char *out, size_t n, const char *host, int port);
void redirect_begin(redirect_walk *w);
/* Ends the call's walk: the client stays where the walk left it. */
void redirect_end(redirect_walk *w);
/* After an error reply (text, len) to a one-shot command whose reply has
 * been taken off the connection. 0: the reply is the answer (not a redirect,
 * or redirects are off). 1: the client is now connected to the leader; send
 * the command again. A kv_err < 0: the walk failed (kv_last_error says why)
 * and the client is back at the call's first address. */
int redirect_follow(kv_client *c, redirect_walk *w, const char *text, size_t len);

#endif
