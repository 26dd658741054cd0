/* kvclient.h - a small synchronous C client for the workbook's KV server
 * (any RESP2 server works: it is also tested against redis-server).
 *
 * Threads: a kv_client is not thread-safe and holds no global state. Use one
 * client per thread; different clients may be used concurrently.
 *
 * Ownership: everything this library returns that must be freed says so
 * next to the function: values from kv_get and text from kv_info are
 * malloc'd and freed by the caller with free(); kv_reply trees are freed
 * with kv_reply_free(). Arguments are only read during the call.
 *
 * Errors: every call returns a kv_err. Negative values are failures; for
 * each, kv_last_error(c) gives a human message (for KV_ERR_SERVER, the
 * server's own error text). KV_NOT_FOUND (from kv_get) is not a failure.
 *
 * Connections: one persistent TCP connection per client, opened on first
 * use. When a call finds the connection dropped it returns KV_ERR_DROPPED;
 * the next call opens a new connection (and returns KV_ERR_CONNECT if it
 * cannot). A call that failed with KV_ERR_DROPPED or KV_ERR_TIMEOUT may or
 * may not have been applied by the server: the library never retries a write
 * by itself, so the caller decides. */
#ifndef KVCLIENT_H
#define KVCLIENT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kv_err {
    KV_OK = 0,
    KV_NOT_FOUND = 1,      /* kv_get: the key does not exist */
    KV_ERR_CONNECT = -1,   /* cannot resolve or connect */
    KV_ERR_TIMEOUT = -2,   /* connect, read or write took longer than its timeout */
    KV_ERR_DROPPED = -3,   /* the connection closed or reset during the call */
    KV_ERR_PROTOCOL = -4,  /* the server sent something that is not RESP2 */
    KV_ERR_SERVER = -5,    /* the server replied with an error; see kv_last_error */
    KV_ERR_NOMEM = -6,     /* out of memory */
    KV_ERR_USAGE = -7,     /* bad arguments, or a call that does not fit the state */
} kv_err;

typedef struct kv_options {
    int connect_timeout_ms; /* default 1000 */
    int read_timeout_ms;    /* default 5000; 0 waits forever */
    int write_timeout_ms;   /* default 5000; 0 waits forever */
} kv_options;

typedef struct kv_client kv_client;

typedef enum kv_reply_type {
    KV_REPLY_STATUS,  /* +OK: str */
    KV_REPLY_ERROR,   /* -ERR ...: str */
    KV_REPLY_INTEGER, /* :n: integer */
    KV_REPLY_BULK,    /* $n: str (binary-safe, len bytes, NUL-terminated too) */
    KV_REPLY_NIL,     /* $-1 or *-1 */
    KV_REPLY_ARRAY,   /* *n: element[0..elements) */
} kv_reply_type;

typedef struct kv_reply {
    kv_reply_type type;
    long long integer;
    char *str;
    size_t len;
    size_t elements;
    struct kv_reply **element;
} kv_reply;

/* Fills in the defaults above. */
void kv_options_default(kv_options *opts);

/* Creates a client for host:port (opts may be NULL for defaults). Does not
 * connect yet. Returns NULL only when out of memory. Free with kv_client_free. */
kv_client *kv_client_new(const char *host, int port, const kv_options *opts);
void kv_client_free(kv_client *c);

/* Connects now (otherwise the first call does). KV_OK if already connected. */
kv_err kv_connect(kv_client *c);
/* Closes the connection; the next call reconnects. */
void kv_disconnect(kv_client *c);

kv_err kv_set(kv_client *c, const void *key, size_t klen, const void *val, size_t vlen);
/* On KV_OK, *val is a malloc'd copy of the value (caller frees; a NUL byte
 * follows the value for convenience) and *vlen its length. KV_NOT_FOUND
 * when the key is missing (*val set to NULL). */
kv_err kv_get(kv_client *c, const void *key, size_t klen, char **val, size_t *vlen);
/* *deleted (may be NULL) receives how many keys were removed (0 or 1). */
kv_err kv_del(kv_client *c, const void *key, size_t klen, long long *deleted);
kv_err kv_ping(kv_client *c);
/* On KV_OK, *text is the malloc'd INFO text, NUL-terminated (caller frees). */
kv_err kv_info(kv_client *c, char **text);

/* Any command. argvlen may be NULL when every argument is a C string. On
 * KV_OK *out is the reply (free with kv_reply_free); an error reply is
 * returned as KV_OK with type KV_REPLY_ERROR, so generic callers see it. */
kv_err kv_command(kv_client *c, int argc, const char *const *argv, const size_t *argvlen, kv_reply **out);
void kv_reply_free(kv_reply *r);

/* Pipelining: queue commands without waiting, then read their replies in
 * order with kv_get_reply (the first kv_get_reply sends everything queued).
 * One round trip for many commands instead of one each. */
kv_err kv_append_command(kv_client *c, int argc, const char *const *argv, const size_t *argvlen);
kv_err kv_append_set(kv_client *c, const void *key, size_t klen, const void *val, size_t vlen);
kv_err kv_append_get(kv_client *c, const void *key, size_t klen);
kv_err kv_append_del(kv_client *c, const void *key, size_t klen);
/* Reads the next queued reply (free with kv_reply_free). KV_ERR_USAGE if
 * nothing is queued. If the connection drops, every queued reply is lost
 * and this returns KV_ERR_DROPPED. */
kv_err kv_get_reply(kv_client *c, kv_reply **out);
/* Replies still to be read. */
size_t kv_pending_replies(const kv_client *c);

/* A fixed description of an error code. */
const char *kv_strerror(kv_err err);
/* The message for the last failure on this client (valid until the next call). */
const char *kv_last_error(const kv_client *c);

#ifdef __cplusplus
}
#endif

#endif
