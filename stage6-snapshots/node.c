/* node.c - the Raft glue: start-up, the tick, the Ready loop, persistence
 * reports, and the clients waiting on the core (see node.h). */
#include "node.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "conn.h"
#include "hard_state.h"
#include "cluster.h"
#include "log.h"
#include "peers.h"
#include "resp_reply.h"
#include "server.h"
#include "snapshot.h"
#include "state_machine.h"
#include "wal_raft.h"

/* The node cannot go on without its disk or memory: a node that forgot
 * what it promised could break the cluster's guarantees. */
static void fatal(const char *what) {
    kv_log(KV_LOG_ERROR, "%s; exiting", what);
    _exit(1);
}

int node_parse_cluster(const char *spec, node_addr *out, unsigned *n, char *err, size_t errlen) {
    *n = 0;
    const char *p = spec;
    while (*p) {
        if (*n == RAFT_MAX_NODES) {
            snprintf(err, errlen, "at most %d nodes", RAFT_MAX_NODES);
            return -1;
        }
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[160];
        if (len == 0 || len >= sizeof item) {
            snprintf(err, errlen, "empty or overlong member in '%s'", spec);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        node_addr *a = &out[*n];
        memset(a, 0, sizeof *a);
        unsigned id;
        int cport, pport, used = 0;
        char host[64];
        /* The host is everything between '=' and the second-to-last ':'. */
        char *c2 = strrchr(item, ':');
        char *c1 = NULL;
        if (c2) {
            *c2 = '\0';
            c1 = strrchr(item, ':');
            *c2 = ':';
        }
        char *eq = strchr(item, '=');
        if (!eq || !c1 || c1 < eq || (size_t)(c1 - eq - 1) >= sizeof host || c1 == eq + 1 ||
            sscanf(item, "%u=%n", &id, &used) != 1 || item + used != eq + 1 ||
            sscanf(c1, ":%d:%d%n", &cport, &pport, &used) != 2 || c1[used] != '\0' || id == 0 || cport < 1 ||
            cport > 65535 || pport < 0 || pport > 65535) {
            snprintf(err, errlen, "bad member '%s': expected ID=HOST:CLIENTPORT:PEERPORT", item);
            return -1;
        }
        memcpy(host, eq + 1, (size_t)(c1 - eq - 1));
        host[c1 - eq - 1] = '\0';
        for (unsigned i = 0; i < *n; i++) {
            if (out[i].id == id) {
                snprintf(err, errlen, "node id %u appears twice", id);
                return -1;
            }
        }
        a->id = id;
        snprintf(a->host, sizeof a->host, "%s", host);
        a->client_port = cport;
        a->peer_port = pport;
        (*n)++;
        p = end ? end + 1 : p + len;
    }
    if (*n == 0) {
        snprintf(err, errlen, "no members");
        return -1;
    }
    return 0;
}

const node_addr *node_member(const node *n, raft_id id) {
    if (id == 0) return NULL; /* 0 also marks a removed member's empty slot */
    for (unsigned i = 0; i < n->nmembers; i++)
        if (n->members[i].id == id) return &n->members[i];
    return NULL;
}

void node_members_text(const node *n, char *buf, size_t cap) {
    size_t at = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < n->nmembers && at < cap; i++) {
        const node_addr *a = &n->members[i];
        int w = snprintf(buf + at, cap - at, "%s%u=%s:%d:%d", i ? "," : "", a->id, a->host, a->client_port,
                         a->peer_port);
        if (w < 0 || (size_t)w >= cap - at) {
            buf[at] = '\0'; /* cannot happen with RAFT_MAX_NODES short entries; keep it well formed */
            return;
        }
        at += (size_t)w;
    }
}

int node_is_leader(const node *n) { return raft_role(n->raft) == RAFT_LEADER; }

void node_notleader_text(const node *n, char *buf, size_t cap) {
    const node_addr *a = node_member(n, raft_leader(n->raft));
    if (a && a->id != n->self)
        snprintf(buf, cap, "NOTLEADER leader=%s:%d", a->host, a->client_port);
    else
        snprintf(buf, cap, "NOTLEADER leader=unknown");
}

/* ---- clients waiting on the core ---- */

static conn *find_conn(node *n, uint64_t id) {
    for (conn *c = n->srv->conns; c; c = c->next)
        if (c->id == id && !c->closing) return c;
    return NULL;
}

static void free_pending(pending *p) {
    free(p->argv); /* the slices and their bytes are one allocation */
    p->argv = NULL;
}

static void remove_pending(node *n, size_t i) {
    free_pending(&n->pend[i]);
    n->pend[i] = n->pend[--n->npend];
}

static void queue_unblock(node *n, uint64_t conn_id) {
    if (n->nunblock == n->unblock_cap) {
        size_t cap = n->unblock_cap ? n->unblock_cap * 2 : 16;
        uint64_t *u = realloc(n->unblock, cap * sizeof *u);
        if (!u) fatal("out of memory");
        n->unblock = u;
        n->unblock_cap = cap;
    }
    n->unblock[n->nunblock++] = conn_id;
}

/* Runs after raft_advance: a client's buffered requests may reach the core. */
static void run_unblocks(node *n) {
    while (n->nunblock > 0) {
        uint64_t id = n->unblock[--n->nunblock];
        conn *c = find_conn(n, id);
        if (c) conn_unblock(c);
    }
}

static pending *push_pending(node *n) {
    if (n->npend == n->pend_cap) {
        size_t cap = n->pend_cap ? n->pend_cap * 2 : 16;
        pending *p = realloc(n->pend, cap * sizeof *p);
        if (!p) return NULL;
        n->pend = p;
        n->pend_cap = cap;
    }
    pending *p = &n->pend[n->npend++];
    memset(p, 0, sizeof *p);
    return p;
}

/* Answers pending request i with an error and forgets it. */
static void fail_pending(node *n, size_t i, const char *text) {
    conn *c = find_conn(n, n->pend[i].conn_id);
    if (c) {
        reply_error(&c->out, "%s", text);
        queue_unblock(n, c->id);
    }
    remove_pending(n, i);
}

/* Leadership lost: a pending write may still commit under the next leader
 * (it may already be on a majority), so its outcome is unknown: TRYAGAIN,
 * never NOTLEADER, which would tell the client a resend is safe. A read
 * changed nothing, so it may go to the leader. */
static void fail_all_pending(node *n) {
    char text[160];
    node_notleader_text(n, text, sizeof text);
    while (n->npend > 0) {
        size_t i = n->npend - 1;
        if (n->pend[i].kind == PENDING_WRITE) {
            n->stats.writes_leadership_lost++;
            fail_pending(n, i, "TRYAGAIN leadership lost; the write may still commit");
        } else {
            fail_pending(n, i, text);
        }
    }
}

int node_propose(node *n, conn *c, const void *data, size_t len) {
    raft_index idx;
    raft_term term;
    int r = raft_propose(n->raft, data, len, &idx, &term);
    if (r == RAFT_ERR_NOT_LEADER) {
        char text[160];
        node_notleader_text(n, text, sizeof text);
        reply_error(&c->out, "%s", text);
        return -1;
    }
    if (r != RAFT_OK) {
        reply_error(&c->out, "OOM command not allowed: out of memory");
        return -1;
    }
    node_wait_entry(n, c, idx, term);
    return 0;
}

void node_wait_entry(node *n, conn *c, raft_index idx, raft_term term) {
    pending *p = push_pending(n);
    if (!p) {
        reply_error(&c->out, "OOM command not allowed: out of memory");
        return; /* a proposal that went in without a waiter just applies */
    }
    p->conn_id = c->id;
    p->kind = PENDING_WRITE;
    p->index = idx;
    p->term = term;
    p->deadline_ms = uv_now(n->srv->loop) + n->write_timeout_ms;
    conn_block(c);
    node_kick(n);
}

int node_read_begin(node *n, conn *c, const kv_slice *argv, size_t argc) {
    if (!node_is_leader(n)) {
        char text[160];
        node_notleader_text(n, text, sizeof text);
        reply_error(&c->out, "%s", text);
        return -1;
    }
    size_t bytes = argc * sizeof(kv_slice);
    for (size_t i = 0; i < argc; i++) bytes += argv[i].len;
    kv_slice *copy = malloc(bytes ? bytes : 1);
    pending *p = copy ? push_pending(n) : NULL;
    if (!p) {
        free(copy);
        reply_error(&c->out, "OOM command not allowed: out of memory");
        return -1;
    }
    char *at = (char *)(copy + argc);
    for (size_t i = 0; i < argc; i++) {
        memcpy(at, argv[i].p, argv[i].len);
        copy[i].p = at;
        copy[i].len = argv[i].len;
        at += argv[i].len;
    }
    p->conn_id = c->id;
    p->kind = PENDING_READ;
    p->ctx = ++n->next_ctx;
    p->argv = copy;
    p->argc = argc;
    p->deadline_ms = uv_now(n->srv->loop) + n->write_timeout_ms;
    if (raft_read_index(n->raft, p->ctx) != RAFT_OK) { /* checked above: only out of memory */
        remove_pending(n, n->npend - 1);
        reply_error(&c->out, "OOM command not allowed: out of memory");
        return -1;
    }
    conn_block(c);
    node_kick(n);
    return 0;
}

int node_serving(const node *n, const conn *c) { return n->serving_conn == c->id; }

/* ---- the Ready loop ---- */

static void push_unsynced(node *n, raft_index index, raft_term term) {
    if (n->nunsynced == n->unsynced_cap) {
        size_t cap = n->unsynced_cap ? n->unsynced_cap * 2 : 256;
        void *u = realloc(n->unsynced, cap * sizeof *n->unsynced);
        if (!u) fatal("out of memory");
        n->unsynced = u;
        n->unsynced_cap = cap;
    }
    n->unsynced[n->nunsynced].index = index;
    n->unsynced[n->nunsynced].term = term;
    n->nunsynced++;
}

static void append_entry(node *n, const struct raft_entry *e) {
    if (wal_append_entry(&n->srv->wal, e) != 0) fatal("cannot append a Raft entry to the WAL");
    n->snap.log_bytes_since += e->len + 24; /* the record's framing, roughly */
    push_unsynced(n, e->index, e->term);
}

static void hold_entry(node *n, const struct raft_entry *e) {
    if (n->nheld == n->held_cap) {
        size_t cap = n->held_cap ? n->held_cap * 2 : 64;
        struct raft_entry *h = realloc(n->held, cap * sizeof *h);
        if (!h) fatal("out of memory");
        n->held = h;
        n->held_cap = cap;
    }
    struct raft_entry *h = &n->held[n->nheld];
    *h = *e;
    h->data = NULL;
    if (e->len) {
        h->data = malloc(e->len);
        if (!h->data) fatal("out of memory");
        memcpy(h->data, e->data, e->len);
    }
    n->nheld++;
}

static void handle_log(node *n, const struct raft_ready *rd) {
    if (rd->truncate_from && !n->snap.reset_pending) {
        raft_index from = rd->truncate_from;
        while (n->nunsynced > 0 && n->unsynced[n->nunsynced - 1].index >= from) n->nunsynced--;
        while (n->nheld > 0 && n->held[n->nheld - 1].index >= from) free(n->held[--n->nheld].data);
        if (n->truncate_pending || from < n->srv->wal.next_index) {
            if (!n->truncate_pending || from < n->truncate_pending) n->truncate_pending = from;
            n->stats.truncations++;
        }
    }
    for (size_t i = 0; i < rd->n_entries; i++) {
        if (n->truncate_pending || n->snap.reset_pending)
            hold_entry(n, &rd->entries[i]);
        else
            append_entry(n, &rd->entries[i]);
    }
}

/* protobuf-c decodes an empty bytes field as (NULL, 0); the store's
 * hashing wants a pointer even for zero bytes (the empty key is a key). */
static uint8_t empty_bytes[1];
static void no_null_bytes(ProtobufCBinaryData *b, int on) {
    if (on && !b->data) b->data = empty_bytes;
    if (!on && b->data == empty_bytes) b->data = NULL; /* not ours to free */
}

static void fix_empty(Kv__Command *cmd, int on) {
    no_null_bytes(&cmd->key, on);
    no_null_bytes(&cmd->value, on);
    for (size_t i = 0; i < cmd->n_keys; i++) no_null_bytes(&cmd->keys[i], on);
}

static void apply_entry(node *n, const struct raft_entry *e) {
    kv_buf *reply = &n->reply;
    reply->start = reply->len = 0;
    if (e->type == RAFT_ENTRY_NORMAL) {
        Kv__Command *cmd = kv__command__unpack(NULL, e->len, e->data);
        if (!cmd) fatal("a committed entry does not hold a command");
        fix_empty(cmd, 1);
        int r = 0;
        if (cmd->op == KV__COMMAND__OP__MEMBER)
            cluster_apply_member(n, cmd); /* an address, not data: the store never sees it */
        else
            r = sm_apply(&n->srv->store, &n->sessions, e->index, cmd, reply);
        fix_empty(cmd, 0);
        if (r != 0) fatal("out of memory applying a committed entry");
        kv__command__free_unpacked(cmd, NULL);
    } else if (e->type == RAFT_ENTRY_CONFIG) {
        cluster_apply_config(n, e, reply);
    }
    for (size_t i = 0; i < n->npend; i++) {
        pending *p = &n->pend[i];
        if (p->kind != PENDING_WRITE || p->index != e->index) continue;
        if (p->term != e->term) {
            /* Another leader's entry holds the index: ours can never
             * commit (Log Matching), so it certainly did not apply. */
            char text[160];
            node_notleader_text(n, text, sizeof text);
            n->stats.writes_displaced++;
            fail_pending(n, i, text);
        } else {
            conn *c = find_conn(n, p->conn_id);
            if (c) {
                if (kv_buf_append(&c->out, kv_buf_rptr(reply), kv_buf_readable(reply)) != 0)
                    reply_error(&c->out, "OOM command not allowed: out of memory");
                queue_unblock(n, c->id);
            }
            remove_pending(n, i);
        }
        break;
    }
    reply->start = reply->len;
    kv_buf_shrink_if_empty(reply, 4096); /* one large reply does not pin its memory */
}

static void serve_read(node *n, uint64_t ctx) {
    for (size_t i = 0; i < n->npend; i++) {
        pending *p = &n->pend[i];
        if (p->kind != PENDING_READ || p->ctx != ctx) continue;
        conn *c = find_conn(n, p->conn_id);
        if (c) {
            n->serving_conn = c->id;
            commands_execute(c, p->argv, p->argc);
            n->serving_conn = 0;
            queue_unblock(n, c->id);
        }
        remove_pending(n, i);
        return;
    }
}

/* ---- log lines a reader (and scripts/timeline.py) follows ---- */

/* Commits come at the write rate: one line per COMMIT_LOG_MS at most keeps a
 * busy log readable; the tick writes the last one, so none is lost for long. */
#define COMMIT_LOG_MS 200

static void log_commit(node *n) {
    uint64_t now = uv_now(n->srv->loop);
    if (n->commit_seen <= n->commit_logged || now < n->commit_logged_ms + COMMIT_LOG_MS) return;
    kv_log(KV_LOG_INFO, "node %u: commit index %" PRIu64 " (entry of term %" PRIu64 ")", n->self, n->commit_seen,
           n->commit_seen_term);
    n->commit_logged = n->commit_seen;
    n->commit_logged_ms = now;
}

/* A (pre-)vote answer is the one decision a voter takes that its role line
 * does not show: who it helped elect, or whose election it refused. */
static void log_vote(const node *n, const struct raft_msg *m) {
    if (m->type != RAFT_MSG_VOTE_RESP && m->type != RAFT_MSG_PREVOTE_RESP) return;
    kv_log(KV_LOG_INFO, "node %u: %s its %s to node %u in term %" PRIu64, n->self, m->reject ? "refuses" : "grants",
           m->type == RAFT_MSG_VOTE_RESP ? "vote" : "pre-vote", m->to, m->term);
}

/* A snapshot transfer that could not start (the file is gone, or no such
 * peer): the core hears that it failed and asks again later. */
static void snapshot_not_sent(node *n, const struct raft_msg *m) {
    for (unsigned i = 0; i < n->nmembers; i++) {
        if (n->members[i].id != m->to || n->unsent_logged[i] == m->snap_index) continue;
        n->unsent_logged[i] = m->snap_index;
        kv_log(KV_LOG_WARN,
               "node %u: node %u needs snapshot %" PRIu64 ", which cannot be sent now; the core will ask again",
               n->self, m->to, m->snap_index);
    }
    if (n->nunsent < RAFT_MAX_NODES) {
        n->unsent[n->nunsent].peer = m->to;
        n->unsent[n->nunsent].index = m->snap_index;
        n->nunsent++;
    }
}

static void handle_ready(node *n, const struct raft_ready *rd, raft_index *applied) {
    if (rd->hard_state_changed && hard_state_save(n->srv->cfg.data_dir, rd->term, rd->vote) != 0)
        fatal("cannot save the Raft term and vote");
    if (rd->snapshot_index) {
        /* 2a: the snapshot received replaces the state machine and the log */
        snapshot_install(n, rd->snapshot_index, rd->snapshot_term);
        cluster_installed(n, &rd->snapshot_conf, &n->snap.recv.meta);
        n->nunsynced = 0; /* discarded, or covered by the snapshot */
        n->truncate_pending = 0;
        while (n->nheld > 0) free(n->held[--n->nheld].data);
    }
    if (rd->compacted_to) snapshot_compact_log(n, rd->compacted_to);
    handle_log(n, rd);
    for (size_t i = 0; i < rd->n_messages; i++) {
        log_vote(n, &rd->messages[i]);
        const struct raft_msg *m = &rd->messages[i];
        if (m->type == RAFT_MSG_SNAPSHOT && snapshot_send_start(n, m->to, m->snap_index, m->snap_term, m->term, &m->conf) != 0)
            snapshot_not_sent(n, m);
        else if (m->type == RAFT_MSG_SNAPSHOT)
            continue;
        else
            peers_send(n, &rd->messages[i]);
    }
    for (size_t i = 0; i < rd->n_committed; i++) {
        apply_entry(n, &rd->committed[i]);
        *applied = rd->committed[i].index;
        n->applied_index = rd->committed[i].index;
        n->applied_term = rd->committed[i].term;
    }
    if (rd->n_committed > 0) {
        n->commit_seen = rd->committed[rd->n_committed - 1].index;
        n->commit_seen_term = rd->committed[rd->n_committed - 1].term;
        log_commit(n);
    }
    for (size_t i = 0; i < rd->n_reads; i++) serve_read(n, rd->reads[i].ctx);
    if (rd->soft_changed) {
        n->commit_logged_ms = 0; /* the first commit in a new role is written at once */
        kv_log(KV_LOG_INFO, "node %u: %s in term %" PRIu64 ", leader %u (0: unknown)", n->self,
               raft_role_name(rd->role), raft_current_term(n->raft), rd->leader);
        if (rd->role == RAFT_LEADER) n->stats.elections_won++;
        if (rd->role != RAFT_LEADER) {
            fail_all_pending(n);
            snapshot_send_stop_all(n);
        }
    }
}

void node_process(node *n) {
    if (n->processing) {
        n->again = 1;
        return;
    }
    n->processing = 1;
    do {
        n->again = 0;
        struct raft_ready rd;
        while (raft_ready(n->raft, &rd)) {
            raft_index applied = 0;
            handle_ready(n, &rd, &applied);
            raft_advance(n->raft);
            if (applied) raft_applied(n->raft, applied);
            for (unsigned i = 0; i < n->nunsent; i++)
                raft_snapshot_sent(n->raft, n->unsent[i].peer, n->unsent[i].index, false);
            n->nunsent = 0;
            run_unblocks(n);
        }
    } while (n->again);
    n->processing = 0;
    snapshot_maybe_auto(n); /* the store is at the applied index here: a fork now copies exactly that */
}

static void on_kick(uv_idle_t *h) {
    node *n = h->data;
    uv_idle_stop(h);
    node_process(n);
}

void node_kick(node *n) {
    if (!n->stopped) uv_idle_start(&n->kick, on_kick);
}

void node_on_persisted(node *n, uint64_t upto) {
    size_t k = 0;
    while (k < n->nunsynced && n->unsynced[k].index <= upto) k++;
    if (k == 0) return;
    raft_persisted(n->raft, n->unsynced[k - 1].index, n->unsynced[k - 1].term);
    memmove(n->unsynced, n->unsynced + k, (n->nunsynced - k) * sizeof *n->unsynced);
    n->nunsynced -= k;
    node_process(n);
}

void node_between_syncs(node *n) {
    if (snapshot_reset_log(n)) {
        for (size_t i = 0; i < n->nheld; i++) {
            append_entry(n, &n->held[i]);
            free(n->held[i].data);
        }
        n->nheld = 0;
        node_kick(n);
        return;
    }
    if (!n->truncate_pending) return;
    server *srv = n->srv;
    if (wal_truncate_from(&srv->wal, n->truncate_pending) != 0) fatal("cannot truncate the WAL");
    durability_restart(&srv->durability);
    /* What is left before the cut was synced with it. */
    if (n->nunsynced > 0) {
        raft_persisted(n->raft, n->unsynced[n->nunsynced - 1].index, n->unsynced[n->nunsynced - 1].term);
        n->nunsynced = 0;
    }
    n->truncate_pending = 0;
    for (size_t i = 0; i < n->nheld; i++) {
        append_entry(n, &n->held[i]);
        free(n->held[i].data);
    }
    n->nheld = 0;
    node_kick(n);
}

/* ---- the clock ---- */

static void on_tick(uv_timer_t *t) {
    node *n = t->data;
    raft_tick(n->raft);
    cluster_tick(n);
    peers_dial(n);
    snapshot_send_tick(n);
    snapshot_recv_tick(n);
    uint64_t now = uv_now(n->srv->loop);
    for (size_t i = n->npend; i-- > 0;)
        if (n->pend[i].deadline_ms <= now) {
            if (n->pend[i].kind == PENDING_WRITE) n->stats.writes_timed_out++;
            fail_pending(n, i, "TRYAGAIN no quorum");
        }
    run_unblocks(n);
    node_process(n);
    log_commit(n);
}

/* ---- start and stop ---- */

static int restore(node *n) {
    uint64_t term;
    uint32_t vote;
    if (hard_state_load(n->srv->cfg.data_dir, &term, &vote) != 0) return -1;
    raft_index snap_index;
    raft_term snap_term;
    if (snapshot_load_at_start(n, &snap_index, &snap_term) != 0) return -1;
    n->applied_index = snap_index;
    n->applied_term = snap_term;
    wal *w = &n->srv->wal;
    uint64_t first = w->segs[0].first;
    if (first > snap_index + 1 && w->next_index > first) {
        kv_log(KV_LOG_ERROR,
               "the log starts at index %" PRIu64 " but no valid snapshot covers the entries before it (newest "
               "valid: index %" PRIu64 "); refusing to start (nothing was modified)",
               first, snap_index);
        return -1;
    }
    /* A snapshot newer than the log's end (its writes had reached the
     * snapshot but not the disk's log, under --fsync everysec or no): the
     * log starts over after it. */
    if (w->next_index <= snap_index && wal_reset_to(w, snap_index + 1) != 0) {
        kv_log(KV_LOG_ERROR, "cannot restart the log after snapshot %" PRIu64 ": %s", snap_index, strerror(errno));
        return -1;
    }
    struct raft_entry *ents;
    size_t count;
    if (wal_read_entries(w, &ents, &count) != 0) return -1;
    int r = RAFT_OK;
    if (snap_index > 0 && n->snap.meta.conf_len > 0) {
        struct raft_membership conf;
        if (raft_membership_decode(n->snap.meta.conf, n->snap.meta.conf_len, &conf) != RAFT_OK ||
            raft_restore_membership(n->raft, &conf) != RAFT_OK) {
            wal_free_entries(ents, count);
            kv_log(KV_LOG_ERROR, "snapshot %" PRIu64 " holds a configuration the Raft core refuses", snap_index);
            return -1;
        }
    }
    if (term > 0 || count > 0 || snap_index > 0) r = raft_restore(n->raft, term, vote, snap_index, snap_term, ents, count);
    if (r == RAFT_OK) cluster_restore(n, &n->snap.meta, ents, count);
    wal_free_entries(ents, count);
    if (r != RAFT_OK) {
        kv_log(KV_LOG_ERROR,
               "the Raft core refused the saved state (term %" PRIu64 ", snapshot %" PRIu64 ", %zu entries)", term,
               snap_index, count);
        return -1;
    }
    kv_log(KV_LOG_INFO, "node %u: restored term %" PRIu64 ", vote %u, snapshot at %" PRIu64 " (loaded in %" PRIu64
           " ms), %zu log entries", n->self, term, vote, snap_index, n->snap.loaded_ms, count);
    return 0;
}

int node_init(server *srv, node *n) {
    memset(n, 0, sizeof *n);
    n->srv = srv;
    const server_config *cfg = &srv->cfg;
    char err[200];
    if (node_parse_cluster(cfg->cluster, n->members, &n->nmembers, err, sizeof err) != 0) {
        kv_log(KV_LOG_ERROR, "--cluster: %s", err);
        return -1;
    }
    n->self = (raft_id)cfg->id;
    if (!node_member(n, n->self)) {
        kv_log(KV_LOG_ERROR, "--id %lld is not a member of --cluster %s", cfg->id, cfg->cluster);
        return -1;
    }
    /* Protected mode for the peer port: whoever reaches it could join the
     * cluster and read every write, so off loopback it needs a secret. */
    const node_addr *me = node_member(n, n->self);
    if (me->peer_port && !server_is_loopback(me->host) && !cfg->cluster_secret_file) {
        kv_log(KV_LOG_ERROR,
               "refusing to listen for peers on %s without --cluster-secret-file: anyone who reaches the port could "
               "join the cluster; set it, or use 127.0.0.1 addresses in --cluster",
               me->host);
        return -1;
    }
    if (cfg->cluster_secret_file &&
        kv_secret_load(cfg->cluster_secret_file, "cluster secret file", KV_CLUSTER_SECRET_MIN_LEN, &n->secret, err,
                       sizeof err) != 0) {
        kv_log(KV_LOG_ERROR, "%s", err);
        return -1;
    }
    n->heartbeat_ms = (uint64_t)cfg->heartbeat_ms;
    sessions_init(&n->sessions, (size_t)cfg->max_sessions);
    kv_buf_init(&n->reply);
    n->write_timeout_ms = (uint64_t)cfg->write_timeout_ms;
    n->follower_read_staleness_ms = (uint64_t)cfg->follower_read_staleness_ms;
    raft_id ids[RAFT_MAX_NODES];
    for (unsigned i = 0; i < n->nmembers; i++) ids[i] = n->members[i].id;
    struct raft_config rc;
    raft_config_default(&rc, n->self, ids, n->nmembers);
    rc.heartbeat_ticks = 1;
    rc.election_ticks = (unsigned)(cfg->election_timeout_ms / cfg->heartbeat_ms);
    if (rc.election_ticks < 2) rc.election_ticks = 2;
    rc.join = cfg->join != 0;
    rc.seed = ((uint64_t)n->self * 0x9E3779B97F4A7C15ull) ^ uv_hrtime();
    n->raft = raft_new(&rc);
    if (!n->raft) {
        kv_log(KV_LOG_ERROR, "cannot create the Raft core (bad timing flags, or out of memory)");
        return -1;
    }
    if (restore(n) != 0) return -1;
    snapshot_init_handles(n);
    uv_idle_init(srv->loop, &n->kick);
    n->kick.data = n;
    if (peers_start(n) != 0) return -1;
    /* A one-node cluster has no one to wait for: elect it now, so that it
     * serves clients from its first request, as stages 1-4 did. */
    if (n->nmembers == 1) {
        for (unsigned i = 0; i < 3 * rc.election_ticks && !node_is_leader(n); i++) {
            raft_tick(n->raft);
            node_process(n);
        }
    }
    uv_timer_init(srv->loop, &n->tick);
    n->tick.data = n;
    uv_timer_start(&n->tick, on_tick, n->heartbeat_ms, n->heartbeat_ms);
    uv_unref((uv_handle_t *)&n->tick);
    n->ticking = 1;
    kv_log(KV_LOG_INFO, "node %u of %u: clients on %s:%d, election timeout %lld ms, heartbeat %lld ms", n->self,
           n->nmembers, me->host, me->client_port, cfg->election_timeout_ms, cfg->heartbeat_ms);
    return 0;
}

void node_stop(node *n) {
    if (n->stopped) return;
    n->stopped = 1;
    if (n->ticking) uv_timer_stop(&n->tick);
    if (n->ticking) uv_idle_stop(&n->kick);
    snapshot_abort(n);
    peers_stop(n);
}

void node_free(node *n) {
    while (n->npend > 0) remove_pending(n, n->npend - 1);
    free(n->pend);
    for (size_t i = 0; i < n->nheld; i++) free(n->held[i].data);
    free(n->held);
    free(n->unsynced);
    free(n->unblock);
    sessions_free(&n->sessions);
    snapshot_free(n);
    kv_buf_free(&n->reply);
    raft_free(n->raft);
    kv_secret_free(&n->secret);
    memset(n, 0, sizeof *n);
}
