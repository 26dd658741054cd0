/* cluster.c - one synchronous call against a Raft cluster (stage 5).
 *
 * What each answer lets the client do next:
 *   NOTLEADER leader=HOST:PORT  not run there: go to HOST:PORT and send again
 *                               (redirect.c; at most max_redirects hops).
 *   NOTLEADER leader=unknown    not run; an election is on: wait (backoff
 *                               from 25 ms, doubling to 400 ms) and send
 *                               again, to the next known node.
 *   cannot connect              not sent: try the next known node.
 *   TRYAGAIN, a read timeout,   maybe applied. Sending again is safe only for
 *   a dropped connection        a write tagged with a session: the server
 *                               answers a repeated (id, seq) from its table.
 * Every wait and retry of one call fits in opts.retry_total_ms.
 *
 * With opts.exactly_once, SET, DEL, INCR and APPEND are sent as
 * "SEQ id seq WRITE ...": the session is opened on first use (SESSION OPEN,
 * itself safe to repeat: a lost one leaves an unused session that expires),
 * each call takes the next seq, and every retry of the call repeats it. If
 * the server no longer knows the session (SESSIONEXPIRED): when no earlier
 * try of this call can have applied, a new session is opened and the write
 * sent under it; otherwise the outcome is unknown and the call returns
 * KV_ERR_AMBIGUOUS. Pipelined commands are never tagged (kvclient.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "client_internal.h"

#define BACKOFF_FIRST_MS 25
#define BACKOFF_MAX_MS 400

static long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int cluster_add_node(kv_client *c, const char *host, int port) {
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].port == port && strcmp(c->nodes[i].host, host) == 0) return 0;
    struct known_node *v = realloc(c->nodes, (c->nnodes + 1) * sizeof *v);
    if (!v) return -1;
    c->nodes = v;
    char *copy = strdup(host);
    if (!copy) return -1;
    c->nodes[c->nnodes].host = copy;
    c->nodes[c->nnodes].port = port;
    c->nnodes++;
    return 0;
}

void cluster_free(kv_client *c) {
    for (size_t i = 0; i < c->nnodes; i++) free(c->nodes[i].host);
    free(c->nodes);
    c->nodes = NULL;
    c->nnodes = 0;
}

kv_err kv_client_add_nodes(kv_client *c, const char *list) {
    if (!list) return client_fail(c, KV_ERR_USAGE, "no node list given");
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char host[KV_HOST_MAX];
        int port;
        if (redirect_parse_address(p, n, host, sizeof host, &port) != 0)
            return client_fail(c, KV_ERR_USAGE, "bad node address '%.*s' in '%.200s': expected HOST:PORT",
                               (int)(n < 200 ? n : 200), p, list);
        if (cluster_add_node(c, host, port) != 0) return client_fail(c, KV_ERR_NOMEM, "out of memory adding nodes");
        if (!comma) return KV_OK;
        p = comma + 1;
    }
}

unsigned long long kv_session(const kv_client *c) { return c->session_id; }
unsigned long long kv_retries(const kv_client *c) { return c->retries; }
const char *kv_last_retry(const kv_client *c) { return c->last_retry; }

/* The writes a session tags: the stage 5 server's. */
static int is_write(const char *name, size_t len) {
    static const char *const writes[] = {"set", "del", "incr", "append"};
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
        if (len == strlen(writes[i]) && strncasecmp(name, writes[i], len) == 0) return 1;
    return 0;
}

static int starts(const char *text, size_t len, const char *word) {
    size_t n = strlen(word);
    return len >= n && memcmp(text, word, n) == 0 && (len == n || text[n] == ' ');
}

/* Moves the client to the known node after the one it talks to now. 0 if
 * there is no other node. */
static int move_next(kv_client *c) {
    if (c->nnodes < 2) return 0;
    size_t i = 0;
    while (i < c->nnodes && !(c->nodes[i].port == c->port && strcmp(c->nodes[i].host, c->host) == 0)) i++;
    size_t next = i < c->nnodes ? (i + 1) % c->nnodes : 0;
    char *copy = strdup(c->nodes[next].host);
    if (!copy) return 0;
    io_close(c);
    free(c->host);
    c->host = copy;
    c->port = c->nodes[next].port;
    c->redirects++;
    redirect_format_address(c->last_redirect, sizeof c->last_redirect, c->host, c->port);
    return 1;
}

/* Sleeps the backoff (doubling it) if the call's deadline allows. 1: slept,
 * send again; 0: out of time. After a wait the cluster may look different,
 * so a new chain of redirects starts: max_redirects bounds one chain (a
 * loop of stale leader= answers), retry_total_ms the whole call. */
static int backoff(long long deadline, long long *wait, redirect_walk *w) {
    long long left = deadline - mono_ms();
    if (left <= 0) return 0;
    sleep_ms(*wait < left ? *wait : left);
    if (*wait < BACKOFF_MAX_MS) *wait *= 2;
    redirect_end(w);
    redirect_begin(w);
    return 1;
}

typedef struct call {
    int argc;
    const char *const *argv;
    const size_t *lens;
    int want_tree;
    int retryable;  /* a repeat is harmless: a tagged write, SESSION OPEN */
    int ambiguous;  /* out: an earlier try may have applied */
    scalar *s;
    kv_reply **tree;
} call;

static int reply_is_error(const call *k) {
    return k->want_tree ? (*k->tree)->type == KV_REPLY_ERROR : k->s->type == KV_REPLY_ERROR;
}

static void reply_text(const call *k, const char **text, size_t *len) {
    *text = k->want_tree ? (*k->tree)->str : k->s->str;
    *len = k->want_tree ? (*k->tree)->len : k->s->len;
}

static void drop_reply(call *k) {
    if (k->want_tree) {
        kv_reply_free(*k->tree);
        *k->tree = NULL;
    }
}

/* Notes a retry after a try that may have applied. */
static void note_retry(kv_client *c, call *k, const char *why, size_t len) {
    k->ambiguous = 1;
    c->retries++;
    char addr[KV_ADDR_MAX];
    redirect_format_address(addr, sizeof addr, c->host, c->port);
    snprintf(c->last_retry, sizeof c->last_retry, "%s after %.*s", addr, (int)(len < 120 ? len : 120), why);
}

static kv_err call_loop(kv_client *c, call *k) {
    long long deadline = mono_ms() + (c->opts.retry_total_ms > 0 ? c->opts.retry_total_ms : 0);
    long long wait = BACKOFF_FIRST_MS;
    int follow = c->opts.max_redirects > 0;
    redirect_walk w;
    redirect_begin(&w);
    kv_err e;
    for (;;) {
        int sent = 0;
        e = begin_sync(c);
        if (e == KV_OK) e = encode_command(c, k->argc, k->argv, k->lens);
        if (e == KV_OK) {
            sent = 1;
            e = k->want_tree ? read_tree(c, k->tree) : read_scalar(c, k->s);
        }
        if (e == KV_OK) {
            if (!reply_is_error(k)) break;
            const char *text;
            size_t len;
            reply_text(k, &text, &len);
            int r = redirect_follow(c, &w, text, len);
            if (r == 1) {
                drop_reply(k);
                continue;
            }
            if (r < 0) {
                drop_reply(k);
                e = (kv_err)r;
                /* The leader it named is unreachable (it may just have died):
                 * the others may know better. */
                if ((e == KV_ERR_CONNECT || e == KV_ERR_TIMEOUT) && c->nnodes > 1 && backoff(deadline, &wait, &w) &&
                    move_next(c))
                    continue;
                break;
            }
            if (follow && redirect_leader_unknown(text, len)) {
                if (backoff(deadline, &wait, &w)) {
                    drop_reply(k);
                    move_next(c);
                    continue;
                }
                break; /* the NOTLEADER reply is the answer */
            }
            if (k->retryable && starts(text, len, "TRYAGAIN")) {
                char why[128];
                snprintf(why, sizeof why, "%.*s", (int)(len < 120 ? len : 120), text);
                if (backoff(deadline, &wait, &w)) {
                    drop_reply(k);
                    note_retry(c, k, why, strlen(why));
                    continue;
                }
            }
            break; /* any other error reply is the answer */
        }
        if (e == KV_ERR_USAGE || e == KV_ERR_NOMEM || e == KV_ERR_PROTOCOL) break;
        if (!sent) {
            /* Could not connect: nothing was sent; another node may serve. */
            if (c->nnodes > 1 && backoff(deadline, &wait, &w) && move_next(c)) continue;
            break;
        }
        if (k->retryable && (e == KV_ERR_DROPPED || e == KV_ERR_TIMEOUT)) {
            char why[sizeof c->err];
            snprintf(why, sizeof why, "%s", c->err);
            if (backoff(deadline, &wait, &w)) {
                note_retry(c, k, why, strlen(why));
                continue;
            }
        }
        break;
    }
    redirect_end(&w);
    return e;
}

/* Opens the client's session if it has none. */
static kv_err ensure_session(kv_client *c) {
    if (c->session_id) return KV_OK;
    static const char *const argv[2] = {"SESSION", "OPEN"};
    static const size_t lens[2] = {7, 4};
    scalar s;
    call k = {.argc = 2, .argv = argv, .lens = lens, .retryable = 1, .s = &s};
    kv_err e = call_loop(c, &k);
    if (e != KV_OK) return e;
    if (s.type == KV_REPLY_ERROR)
        return client_fail(c, KV_ERR_SERVER, "cannot open an exactly-once session: %.*s",
                           (int)(s.len < 300 ? s.len : 300), s.str);
    if (s.type != KV_REPLY_INTEGER || s.integer <= 0) {
        io_close(c);
        return client_fail(c, KV_ERR_PROTOCOL, "SESSION OPEN did not answer a session id");
    }
    c->session_id = (unsigned long long)s.integer;
    c->seq = 0;
    return KV_OK;
}

static kv_err tagged(kv_client *c, int argc, const char *const *argv, const size_t *lens, int want_tree,
                     scalar *s, kv_reply **tree) {
    const char **targv = malloc((size_t)(argc + 3) * sizeof *targv);
    size_t *tlens = malloc((size_t)(argc + 3) * sizeof *tlens);
    if (!targv || !tlens) {
        free(targv);
        free(tlens);
        return client_fail(c, KV_ERR_NOMEM, "out of memory tagging a write");
    }
    memcpy(targv + 3, argv, (size_t)argc * sizeof *targv);
    memcpy(tlens + 3, lens, (size_t)argc * sizeof *tlens);
    char id[24], seq[24];
    kv_err e;
    for (int reopened = 0;; reopened++) {
        if ((e = ensure_session(c)) != KV_OK) break;
        targv[0] = "SEQ";
        tlens[0] = 3;
        targv[1] = id;
        tlens[1] = (size_t)snprintf(id, sizeof id, "%llu", c->session_id);
        targv[2] = seq;
        tlens[2] = (size_t)snprintf(seq, sizeof seq, "%llu", ++c->seq);
        call k = {.argc = argc + 3, .argv = targv, .lens = tlens, .want_tree = want_tree, .retryable = 1,
                  .s = s, .tree = tree};
        e = call_loop(c, &k);
        if (e != KV_OK || !reply_is_error(&k)) {
            if (e != KV_OK && k.ambiguous)
                snprintf(c->err + strlen(c->err), sizeof c->err - strlen(c->err),
                         " (an earlier try of session %llu seq %llu may have applied)", c->session_id, c->seq);
            break;
        }
        const char *text;
        size_t len;
        reply_text(&k, &text, &len);
        if (!starts(text, len, "SESSIONEXPIRED")) break;
        /* The server has forgotten the session: it did not apply this try. */
        c->session_id = 0;
        if (k.ambiguous) {
            char said[200];
            snprintf(said, sizeof said, "%.*s", (int)(len < 190 ? len : 190), text);
            drop_reply(&k);
            e = client_fail(c, KV_ERR_AMBIGUOUS,
                            "the write's outcome is unknown: an earlier try may have applied, and the server "
                            "no longer knows its session: %s",
                            said);
            break;
        }
        if (reopened) break; /* expired again at once: return the reply */
        drop_reply(&k);
    }
    free(targv);
    free(tlens);
    return e;
}

kv_err call_run(kv_client *c, int argc, const char *const *argv, const size_t *lens, int want_tree, scalar *s,
                kv_reply **tree) {
    size_t *own = NULL;
    if (!lens) {
        own = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *own);
        if (!own) return client_fail(c, KV_ERR_NOMEM, "out of memory");
        for (int i = 0; i < argc; i++) own[i] = strlen(argv[i]);
        lens = own;
    }
    kv_err e;
    if (c->opts.exactly_once && argc > 0 && is_write(argv[0], lens[0])) {
        e = tagged(c, argc, argv, lens, want_tree, s, tree);
    } else {
        call k = {.argc = argc, .argv = argv, .lens = lens, .want_tree = want_tree, .s = s, .tree = tree};
        e = call_loop(c, &k);
    }
    free(own);
    return e;
}
