/* kvclient.h - a small synchronous C client for the workbook's KV server
 * (any RESP2 server works: it is also tested against redis-server).
 *
 * Threads: a kv_client is not thread-safe, and the library has no global
 * state. Use one client per thread; different clients may be used
 * concurrently from different threads.
 *
 * Ownership: arguments are only read during the call; the library keeps no
 * pointer to them. Everything the library hands back that must be freed
 * says so next to its function:
 *   - kv_client_new's client: kv_client_free (which also closes the socket);
 *   - kv_get's value, kv_info's text: malloc'd, the caller frees them with
 *     free() (kv_free() is the same thing, for callers that prefer to pair
 *     the library's allocations with the library's free);
 *   - kv_reply trees (kv_command, kv_get_reply): kv_reply_free on the root,
 *     which frees every element and string below it.
 *   - kv_strerror and kv_last_error return strings the library owns.
 *
 * Errors: every call returns a kv_err. Negative values are failures; for
 * each, kv_last_error(c) gives a human message (for KV_ERR_SERVER, the
 * server's own error text). KV_NOT_FOUND (from kv_get) is not a failure.
 * A request over the server's size limit (--max-request-bytes) returns
 * KV_ERR_SERVER with the server's "ERR Protocol error: request larger than
 * the limit of N bytes", even when the server closes the connection before
 * the whole request is sent; the next call reconnects by itself.
 *
 * Connections: one persistent TCP connection per client, opened on first
 * use (or by kv_connect). When a call finds the connection dropped it
 * returns KV_ERR_DROPPED; the next call opens a new connection (and returns
 * KV_ERR_CONNECT or KV_ERR_TIMEOUT if it cannot). A call that failed with
 * KV_ERR_DROPPED or KV_ERR_TIMEOUT may or may not have been applied by the
 * server: the library never sends such a command again by itself, except a
 * write it tagged with an exactly-once session (see "Raft clusters" below),
 * so otherwise the caller decides whether repeating it is safe. */
#ifndef KVCLIENT_H
#define KVCLIENT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kv_err {
    KV_OK = 0,
    KV_NOT_FOUND = 1,      /* kv_get: the key does not exist (not a failure) */
    KV_ERR_CONNECT = -1,   /* cannot resolve the host or connect to it */
    KV_ERR_TIMEOUT = -2,   /* connect, read or write took longer than its timeout */
    KV_ERR_DROPPED = -3,   /* the connection closed or reset during the call */
    KV_ERR_PROTOCOL = -4,  /* the server sent something that is not RESP2, or not
                            * the kind of reply the call expects */
    KV_ERR_SERVER = -5,    /* the server replied with an error; kv_last_error has its text */
    KV_ERR_NOMEM = -6,     /* out of memory */
    KV_ERR_USAGE = -7,     /* bad arguments, or a call that does not fit the state
                            * (a synchronous call while pipelined replies are unread) */
    KV_ERR_REDIRECT = -8,  /* a follower's redirect could not be followed: too many
                            * hops (a loop), or a malformed leader= address */
    KV_ERR_AMBIGUOUS = -9, /* exactly_once: a try of this write may have applied, and
                            * the server has since forgotten the session, so
                            * whether it did is unknown */
} kv_err;

/* Timeouts in milliseconds; 0 means wait forever. A read or write timeout
 * bounds how long one call waits without the server making progress. After a
 * timeout the connection is closed, because a late reply would otherwise be
 * taken as the answer to the next call. */
typedef struct kv_options {
    int connect_timeout_ms; /* default 1000 */
    int read_timeout_ms;    /* default 5000 */
    int write_timeout_ms;   /* default 5000 */
    int max_redirects;      /* default 3; 0 (or less) turns redirects off: see
                             * "Followers and redirects" below. Start from
                             * kv_options_default, or this field is 0. */
    int retry_total_ms;     /* default 10000: the most one call spends waiting out
                             * an election and retrying ("Raft clusters" below) */
    int exactly_once;       /* default 0; 1: tag writes with a session (stage 5) */
} kv_options;

typedef struct kv_client kv_client;

typedef enum kv_reply_type {
    KV_REPLY_STATUS,  /* +OK: str, len */
    KV_REPLY_ERROR,   /* -ERR ...: str, len */
    KV_REPLY_INTEGER, /* :n: integer */
    KV_REPLY_BULK,    /* $n: str, len (binary-safe; a NUL byte follows too) */
    KV_REPLY_NIL,     /* $-1 or *-1 */
    KV_REPLY_ARRAY,   /* *n: element[0 .. elements) */
} kv_reply_type;

/* A reply tree. Every str and element belongs to the tree: free the whole
 * tree once, with kv_reply_free on its root. */
typedef struct kv_reply {
    kv_reply_type type;
    long long integer;
    char *str; /* NUL-terminated copy; NULL for INTEGER, NIL and ARRAY */
    size_t len;
    size_t elements;
    struct kv_reply **element;
} kv_reply;

/* ---- lifecycle ---- */

/* Fills in the defaults above. */
void kv_options_default(kv_options *opts);

/* Creates a client for host:port (host NULL means 127.0.0.1; opts NULL means
 * the defaults). Does not connect yet. Returns NULL only when out of memory.
 * The caller frees the client with kv_client_free. */
kv_client *kv_client_new(const char *host, int port, const kv_options *opts);
/* Closes the connection and frees the client (NULL is allowed). */
void kv_client_free(kv_client *c);

/* Connects now (otherwise the first call does): KV_OK, KV_ERR_CONNECT or
 * KV_ERR_TIMEOUT. KV_OK at once if already connected. */
kv_err kv_connect(kv_client *c);
/* Closes the connection; the next call reconnects. Pipelined replies not yet
 * read are discarded. */
void kv_disconnect(kv_client *c);

/* ---- typed calls (synchronous: one round trip each) ---- */

kv_err kv_set(kv_client *c, const void *key, size_t klen, const void *val, size_t vlen);
/* KV_OK: *val is a malloc'd copy of the value, which the caller frees (a NUL
 * byte follows the value for convenience, not counted in *vlen).
 * KV_NOT_FOUND: the key is missing. On anything but KV_OK, *val is NULL and
 * *vlen is 0. */
kv_err kv_get(kv_client *c, const void *key, size_t klen, char **val, size_t *vlen);
/* *deleted (may be NULL) receives how many keys were removed (0 or 1). */
kv_err kv_del(kv_client *c, const void *key, size_t klen, long long *deleted);
/* INCR (stage 5): *value (may be NULL) receives the new value. A value
 * that is not an integer is KV_ERR_SERVER ("ERR value is not an integer or
 * out of range"). */
kv_err kv_incr(kv_client *c, const void *key, size_t klen, long long *value);
/* APPEND (stage 5): *len (may be NULL) receives the value's new length. */
kv_err kv_append(kv_client *c, const void *key, size_t klen, const void *val, size_t vlen, long long *len);
kv_err kv_ping(kv_client *c);
/* KV_OK: *text is the malloc'd INFO text, NUL-terminated; the caller frees
 * it. Otherwise *text is NULL. */
kv_err kv_info(kv_client *c, char **text);
/* Frees what kv_get and kv_info returned (same as free()). */
void kv_free(void *p);

/* ---- any command ---- */

/* Sends argv[0 .. argc) and waits for the reply. argvlen may be NULL when
 * every argument is a C string. KV_OK: *out is the reply, which the caller
 * frees with kv_reply_free. An error reply is returned as KV_OK with type
 * KV_REPLY_ERROR (a generic caller wants to see it, not a failure code), and
 * kv_last_error is not set by it. On failure *out is NULL. */
kv_err kv_command(kv_client *c, int argc, const char *const *argv, const size_t *argvlen, kv_reply **out);
void kv_reply_free(kv_reply *r);

/* ---- pipelining ----
 * Queue commands without waiting (kv_append_*), then read their replies in
 * order with kv_get_reply. The first kv_get_reply sends everything queued in
 * one write, so a hundred commands cost one round trip instead of a hundred.
 * While sending, replies that already arrive are read too, so a long pipeline
 * cannot deadlock with a server that stops reading until its replies drain.
 *
 * Every queued command gets exactly one kv_get_reply result, in order. If the
 * connection drops, the replies that were still owed are reported one by one
 * as KV_ERR_DROPPED (the server may or may not have run those commands).
 * Synchronous calls refuse (KV_ERR_USAGE) while replies are still owed by a
 * live connection; replies lost with a dead connection are discarded by the
 * next synchronous call or by kv_disconnect. */
kv_err kv_append_command(kv_client *c, int argc, const char *const *argv, const size_t *argvlen);
kv_err kv_append_set(kv_client *c, const void *key, size_t klen, const void *val, size_t vlen);
kv_err kv_append_get(kv_client *c, const void *key, size_t klen);
kv_err kv_append_del(kv_client *c, const void *key, size_t klen);
/* The next reply, in the order the commands were queued. KV_OK: *out is the
 * reply (error replies included, as in kv_command), freed by the caller with
 * kv_reply_free. KV_ERR_USAGE if nothing is queued. On failure *out is NULL. */
kv_err kv_get_reply(kv_client *c, kv_reply **out);
/* How many kv_get_reply results are still to be collected. */
size_t kv_pending_replies(const kv_client *c);

/* ---- followers and redirects ----
 * A follower (stage 4) serves reads and refuses writes with the error reply
 *   -READONLY You can't write against a read only replica. leader=HOST:PORT
 * (HOST:PORT is the leader's client address; an IPv6 host is in brackets).
 * A refused command was not run, so sending it to the leader is safe.
 *
 * One-shot calls (kv_set, kv_get, kv_del, kv_ping, kv_info, kv_command)
 * follow it: on that reply the client closes its connection, connects to
 * the leader and sends the same command again, up to max_redirects hops per
 * call. The caller sees only the leader's reply. Reads are not redirected
 * because a follower answers them; nothing in the library sorts commands
 * into reads and writes: the server decides, by refusing. After a redirect
 * the client stays with the leader: later calls, and reconnects, go there.
 *
 * When a redirect cannot be followed the call fails and the client goes
 * back to the address the call started at (the next call reconnects there):
 *   - KV_ERR_REDIRECT: the chain was longer than max_redirects (two nodes
 *     naming each other, e.g. mid-failover), or a leader= that is not
 *     HOST:PORT. kv_last_error names the addresses, e.g. "too many
 *     redirects: gave up after 3 (max_redirects), a loop or a chain too
 *     long: 127.0.0.1:7005 -> 127.0.0.1:7006 -> ..., which answered: READONLY ...".
 *   - KV_ERR_CONNECT or KV_ERR_TIMEOUT: the leader cannot be reached
 *     ("redirect A -> B failed: cannot connect to B: ..."). The command
 *     was not run anywhere.
 * A READONLY reply without leader= (a Redis replica's) is not a redirect:
 * it is returned like any error reply. So is every READONLY reply when
 * max_redirects is 0.
 *
 * Pipelined commands are never redirected: kv_get_reply returns the
 * READONLY replies as they are. A pipeline sent to a follower has its reads
 * answered and its writes refused, so resending only the writes elsewhere
 * would reorder them against the reads; the caller knows whether that
 * matters. kv_reply_redirect reads the leader's address out of such a reply
 * and kv_client_move points the client there. Per-connection state (AUTH)
 * is not carried to the leader. */

/* Whether r is a follower's redirect. 1: it is; host (NUL-terminated, at
 * most hostlen - 1 bytes; KV_HOST_MAX is always enough) and *port are the
 * leader's. 0: not a redirect (another reply, or READONLY without leader=).
 * -1: READONLY with a leader= that is not HOST:PORT (or does not fit). */
#define KV_HOST_MAX 256
int kv_reply_redirect(const kv_reply *r, char *host, size_t hostlen, int *port);
/* Redirects this client has followed over its life (one per hop; a call that
 * went through two followers to the leader counts 2; a move to the next
 * known node when the leader is unknown or unreachable counts 1). Callers show a
 * redirect by comparing the count before and after a call. */
unsigned long long kv_redirects(const kv_client *c);
/* "HOST:PORT" the last redirect (or move) led to, "" before the first. Owned by the
 * client; valid until its next call. */
const char *kv_last_redirect(const kv_client *c);
/* The address the client talks to now (kv_client_new's, or a leader's
 * after a redirect). The host string is owned by the client; valid until
 * its next call. */
const char *kv_client_host(const kv_client *c);
int kv_client_port(const kv_client *c);
/* Points the client at host:port (host NULL means 127.0.0.1), closing its
 * connection; the next call connects there. KV_ERR_USAGE while pipelined
 * replies are owed by a live connection, KV_ERR_NOMEM. */
kv_err kv_client_move(kv_client *c, const char *host, int port);

/* ---- Raft clusters (stage 5) ----
 * A stage 5 node refuses what it must not serve with
 *   -NOTLEADER leader=HOST:PORT   or   -NOTLEADER leader=unknown
 * and has not run it: one-shot calls follow the first like READONLY above
 * (reads too, since a stage 5 follower serves no reads), and on the second
 * (an election is on) wait, 25 ms doubling to 400 ms, and send again to the
 * next known node. A node that cannot be connected to is skipped the same
 * way. Known nodes: kv_client_new's address, then kv_client_add_nodes'.
 * All of one call's waits fit in opts.retry_total_ms; then the call returns
 * the last answer (the NOTLEADER reply) or failure.
 *
 * -TRYAGAIN (no quorum in time, or leadership lost while the write was
 * pending), a read timeout and a dropped connection mean the command may
 * have applied. Without a session the library returns them (TRYAGAIN as
 * KV_ERR_SERVER or an error reply): repeating a write could apply it twice.
 *
 * Exactly-once (opts.exactly_once): SET, DEL, INCR and APPEND in one-shot
 * calls (typed, or kv_command) are sent as "SEQ id seq CMD ARG...". The
 * client opens its session on first use (SESSION OPEN), numbers its writes
 * 1, 2, 3..., and after TRYAGAIN, a timeout or a dropped connection sends
 * the same (id, seq) again, to whichever node leads now, within
 * retry_total_ms. The server applies a seq once and answers a repeat with
 * the first reply, so the caller sees one answer and one effect. If the
 * server has expired the session: when no earlier try of this call can have
 * applied, the client opens a new session and sends the write under it;
 * otherwise the call fails with KV_ERR_AMBIGUOUS. Other commands (reads,
 * commands the library does not know) are sent untagged. The server keeps
 * only each session's last reply, so pipelined commands are never tagged:
 * replies for all of a pipeline's seqs would be needed to retry it. */

/* Adds nodes to try, "HOST:PORT,HOST:PORT,..." ([IPV6]:PORT too).
 * KV_ERR_USAGE on a malformed list (nodes before the bad one are added). */
kv_err kv_client_add_nodes(kv_client *c, const char *list);
/* The client's session id (0: none open), the number of times a call was
 * sent again after a try that may have applied, and where and why the last
 * such retry happened ("HOST:PORT after TRYAGAIN ...", "" before any;
 * owned by the client, valid until its next call). */
unsigned long long kv_session(const kv_client *c);
unsigned long long kv_retries(const kv_client *c);
const char *kv_last_retry(const kv_client *c);

/* ---- errors ---- */

/* A fixed description of an error code ("connection dropped", ...). */
const char *kv_strerror(kv_err err);
/* What went wrong in this client's last failed call, e.g. "connection to
 * 127.0.0.1:7003 closed by the server while waiting for a reply", or the
 * server's error text. Owned by the client; valid until its next call. */
const char *kv_last_error(const kv_client *c);

#ifdef __cplusplus
}
#endif

#endif
