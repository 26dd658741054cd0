/* snapshot_send.c - InstallSnapshot over the peer port (see snapshot.h).
 *
 * Leader: a Ready's RAFT_MSG_SNAPSHOT names a snapshot file this node holds;
 * it is read and sent CHUNK bytes at a time on the leader's own link to the
 * follower, at most WINDOW chunks ahead of the follower's acknowledgements,
 * so neither the leader's memory nor its link's queue ever holds the file.
 * The follower's final acknowledgement ("done") or a failure (a "failed"
 * ack, the link down, no progress for STALL_MS) is reported to the core
 * with raft_snapshot_sent; after a failure the core asks again, and the
 * transfer starts over from offset 0.
 *
 * Follower: chunks are written in order to snap/recv.tmp; when the last one
 * arrives the file is fsynced, read back whole (every check of
 * snapshot_file.h) into a staged store and session table, renamed to its
 * final name, the directory fsynced, and only then is the RAFT_MSG_SNAPSHOT
 * stepped. The core's next Ready (step 2a) installs the staged state and
 * empties the WAL (at a moment no fdatasync holds it), then reports the
 * install persisted. A half-received file is deleted once a newer term
 * begins or no chunk comes for STALL_MS: its sender will not finish it. */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "durability.h"
#include "log.h"
#include "node.h"
#include "peers.h"
#include "server.h"
#include "snapshot_file.h"
#include "wal_raft.h"

#define CHUNK (64 * 1024)
#define WINDOW 4
#define STALL_MS 10000

static int slot_of(const node *n, raft_id id) {
    for (unsigned i = 0; i < n->nmembers; i++)
        if (n->members[i].id == id) return (int)i;
    return -1;
}

static peer_conn *link_to(node *n, int slot) {
    peer_conn *p = slot >= 0 ? n->out[slot] : NULL;
    return p && p->up && !p->link.closing ? p : NULL;
}

/* ---- leader ---- */

static void send_close(snap_send *s) {
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
}

static void send_finish(node *n, int slot, int ok, const char *why) {
    snap_send *s = &n->snap.send[slot];
    raft_index index = s->index;
    send_close(s);
    if (ok) {
        n->snap.sent_ok++;
        kv_log(KV_LOG_INFO, "node %u: snapshot %" PRIu64 " (%" PRIu64 " bytes) sent to node %u", n->self, index,
               s->size, n->members[slot].id);
    } else {
        kv_log(KV_LOG_WARN, "node %u: sending snapshot %" PRIu64 " to node %u failed: %s", n->self, index,
               n->members[slot].id, why);
    }
    raft_snapshot_sent(n->raft, n->members[slot].id, index, ok);
    node_process(n);
}

static void pump(node *n, int slot) {
    snap_send *s = &n->snap.send[slot];
    peer_conn *p = link_to(n, slot);
    if (!p) return;
    while (s->fd >= 0 && s->sent < s->size && s->sent - s->acked < (uint64_t)WINDOW * CHUNK) {
        size_t len = s->size - s->sent < CHUNK ? (size_t)(s->size - s->sent) : CHUNK;
        unsigned char *buf = malloc(len);
        if (!buf) return; /* the tick's stall check ends it */
        ssize_t got = pread(s->fd, buf, len, (off_t)s->sent);
        if (got != (ssize_t)len) {
            free(buf);
            s->size = s->sent; /* the tick reports it: no progress */
            return;
        }
        Kv__SnapshotChunk c = KV__SNAPSHOT_CHUNK__INIT;
        c.index = s->index;
        c.snap_term = s->snap_term;
        c.term = s->term;
        c.offset = s->sent;
        c.data.data = buf;
        c.data.len = len;
        c.last = s->sent + len == s->size;
        if (c.last) {
            c.conf.data = s->conf;
            c.conf.len = s->conf_len;
        }
        Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
        m.msg_case = KV__PEER_MESSAGE__MSG_SNAPSHOT_CHUNK;
        m.snapshot_chunk = &c;
        int r = peer_link_send(&p->link, &m);
        free(buf);
        if (r != 0) return;
        s->sent += len;
    }
}

int snapshot_send_start(node *n, raft_id peer, raft_index index, raft_term snap_term, raft_term term,
                        const struct raft_membership *conf) {
    int slot = slot_of(n, peer);
    if (slot < 0) return -1;
    snap_send *s = &n->snap.send[slot];
    if (s->fd >= 0 && s->index == index && s->term == term) return 0; /* under way */
    send_close(s);
    char name[SNAP_NAME_MAX], path[4096];
    snap_file_name(name, sizeof name, index, snap_term);
    snprintf(path, sizeof path, "%s/%s", n->snap.dir, name);
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (s->fd < 0 || fstat(s->fd, &st) != 0) {
        kv_log(KV_LOG_WARN, "node %u: cannot send snapshot %s to node %u: %s", n->self, path, peer, strerror(errno));
        send_close(s);
        return -1;
    }
    s->index = index;
    s->snap_term = snap_term;
    s->term = term;
    s->conf_len = raft_membership_encode(conf, s->conf); /* the core checks it on the other side */
    s->size = (uint64_t)st.st_size;
    s->sent = s->acked = 0;
    s->progress_ms = uv_now(n->srv->loop);
    kv_log(KV_LOG_INFO, "node %u: node %u is behind the log's first entry: sending it snapshot %" PRIu64
           " (%" PRIu64 " bytes)", n->self, peer, index, s->size);
    pump(n, slot);
    return 0;
}

void snapshot_send_on_ack(node *n, int slot, const Kv__SnapshotAck *a) {
    snap_send *s = &n->snap.send[slot];
    if (s->fd < 0 || a->index != s->index) return; /* a transfer that has ended */
    s->progress_ms = uv_now(n->srv->loop);
    if (a->failed) {
        send_finish(n, slot, 0, "the follower gave up on it");
    } else if (a->done) {
        send_finish(n, slot, 1, NULL);
    } else {
        if (a->received > s->acked && a->received <= s->sent) s->acked = a->received;
        pump(n, slot);
    }
}

void snapshot_send_tick(node *n) {
    uint64_t now = uv_now(n->srv->loop);
    for (unsigned i = 0; i < n->nmembers; i++) {
        snap_send *s = &n->snap.send[i];
        if (s->fd < 0) continue;
        if (n->members[i].id == 0)
            send_close(s); /* the member was removed: the core has no one to hear the outcome */
        else if (!link_to(n, (int)i))
            send_finish(n, (int)i, 0, "the link is down");
        else if (now - s->progress_ms > STALL_MS)
            send_finish(n, (int)i, 0, "no progress");
        else
            pump(n, (int)i);
    }
}

/* ---- follower ---- */

static void send_ack(node *n, int slot, raft_index index, uint64_t received, int done, int failed) {
    peer_conn *p = link_to(n, slot);
    if (!p) return; /* the leader's stall check ends the transfer */
    Kv__SnapshotAck a = KV__SNAPSHOT_ACK__INIT;
    a.index = index;
    a.received = received;
    a.done = done;
    a.failed = failed;
    Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
    m.msg_case = KV__PEER_MESSAGE__MSG_SNAPSHOT_ACK;
    m.snapshot_ack = &a;
    peer_link_send(&p->link, &m);
}

static void recv_path(const node *n, char *out, size_t cap) { snprintf(out, cap, "%s/recv.tmp", n->snap.dir); }

static void drop_staged(snap_recv *r) {
    if (!r->staged) return;
    kv_store_free(&r->store);
    sessions_free(&r->table);
    r->staged = 0;
}

static void recv_abort(node *n, const char *why) {
    snap_recv *r = &n->snap.recv;
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    char path[4096];
    recv_path(n, path, sizeof path);
    unlink(path);
    kv_log(KV_LOG_WARN, "node %u: receiving snapshot %" PRIu64 " failed: %s", n->self, r->index, why);
}

/* The whole file is here: check it, stage its state, make it durable under
 * its final name. Returns 0 or -1 (logged). */
static int recv_complete(node *n) {
    snap_recv *r = &n->snap.recv;
    char tmp[4096], final[4096], name[SNAP_NAME_MAX], err[256];
    recv_path(n, tmp, sizeof tmp);
    if (fsync(r->fd) != 0) {
        recv_abort(n, strerror(errno));
        return -1;
    }
    close(r->fd);
    r->fd = -1;
    drop_staged(r);
    if (kv_store_init(&r->store) != 0) {
        recv_abort(n, "out of memory");
        return -1;
    }
    sessions_init(&r->table, n->sessions.max);
    r->staged = 1;
    snap_info info;
    if (snap_read_file(tmp, &r->store, &r->table, &info, err, sizeof err) != 0 || info.index != r->index ||
        info.term != r->snap_term) {
        char why[300];
        snprintf(why, sizeof why, "the file received is damaged: %s", err[0] ? err : "index or term differ");
        drop_staged(r);
        recv_abort(n, why);
        return -1;
    }
    snap_file_name(name, sizeof name, r->index, r->snap_term);
    snprintf(final, sizeof final, "%s/%s", n->snap.dir, name);
    int dfd = open(n->snap.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rename(tmp, final) != 0 || dfd < 0 || fsync(dfd) != 0) {
        if (dfd >= 0) close(dfd);
        drop_staged(r);
        recv_abort(n, strerror(errno));
        return -1;
    }
    close(dfd);
    r->staged_index = r->index;
    r->meta = info.meta;
    n->snap.received_ok++;
    kv_log(KV_LOG_INFO, "node %u: received snapshot %s (%" PRIu64 " keys, %" PRIu64 " sessions, %" PRIu64 " bytes)",
           n->self, final, info.keys, info.sessions, info.bytes);
    return 0;
}

void snapshot_recv_on_chunk(node *n, int slot, const Kv__SnapshotChunk *c) {
    snap_recv *r = &n->snap.recv;
    char path[4096];
    recv_path(n, path, sizeof path);
    if (c->offset == 0) {
        if (r->fd >= 0) close(r->fd);
        r->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        r->index = c->index;
        r->snap_term = c->snap_term;
        r->term = c->term;
        r->received = 0;
        if (r->fd < 0) {
            recv_abort(n, strerror(errno));
            send_ack(n, slot, c->index, 0, 0, 1);
            return;
        }
        kv_log(KV_LOG_INFO, "node %u: receiving snapshot %" PRIu64 " from node %u (leader in term %" PRIu64 ")",
               n->self, c->index, n->members[slot].id, c->term);
    } else if (r->fd < 0 || c->index != r->index || c->offset != r->received) {
        send_ack(n, slot, c->index, r->received, 0, 1); /* a chunk lost with a broken link: start again */
        return;
    }
    size_t off = 0;
    while (off < c->data.len) {
        ssize_t w = pwrite(r->fd, c->data.data + off, c->data.len - off, (off_t)(c->offset + off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            recv_abort(n, strerror(errno));
            send_ack(n, slot, c->index, 0, 0, 1);
            return;
        }
        off += (size_t)w;
    }
    r->received += c->data.len;
    r->progress_ms = uv_now(n->srv->loop);
    if (!c->last) {
        send_ack(n, slot, c->index, r->received, 0, 0);
        return;
    }
    snapshot_crash_point(n, "install-before-rename");
    if (recv_complete(n) != 0) {
        send_ack(n, slot, c->index, 0, 0, 1);
        return;
    }
    struct raft_msg m;
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_SNAPSHOT;
    m.from = n->members[slot].id;
    m.to = n->self;
    m.term = c->term;
    m.snap_index = c->index;
    m.snap_term = c->snap_term;
    if (raft_membership_decode(c->conf.data, c->conf.len, &m.conf) != RAFT_OK) {
        n->stats.bad_messages++;
        send_ack(n, slot, c->index, 0, 0, 1);
        return;
    }
    n->stats.msgs_received++;
    if (raft_step(n->raft, &m) != RAFT_OK) n->stats.bad_messages++;
    send_ack(n, slot, c->index, r->received, 1, 0);
    node_process(n);
}

/* A leader that stops sending never says so: it died, lost its term, or
 * caught the follower up by appends after all. Without this the file stays
 * open and on disk until the next transfer or restart. */
void snapshot_recv_tick(node *n) {
    snap_recv *r = &n->snap.recv;
    if (r->fd < 0) return;
    if (raft_current_term(n->raft) > r->term)
        recv_abort(n, "a newer term began (a leader sends its snapshot from the start)");
    else if (uv_now(n->srv->loop) - r->progress_ms > STALL_MS)
        recv_abort(n, "no chunk for a while");
}

void snapshot_install(node *n, raft_index index, raft_term term) {
    snap_recv *r = &n->snap.recv;
    server *srv = n->srv;
    if (!r->staged || r->staged_index != index) {
        /* Not the file just received (cannot happen: the core installs only
         * what was stepped): load it from disk. */
        char name[SNAP_NAME_MAX], path[4096], err[256];
        snap_file_name(name, sizeof name, index, term);
        snprintf(path, sizeof path, "%s/%s", n->snap.dir, name);
        drop_staged(r);
        snap_info info;
        if (kv_store_init(&r->store) != 0) {
            kv_log(KV_LOG_ERROR, "out of memory installing snapshot %s; exiting", path);
            _exit(1);
        }
        sessions_init(&r->table, n->sessions.max);
        r->staged = 1;
        if (snap_read_file(path, &r->store, &r->table, &info, err, sizeof err) != 0) {
            kv_log(KV_LOG_ERROR, "cannot install snapshot %s: %s; exiting", path, err);
            _exit(1);
        }
        r->meta = info.meta;
    }
    kv_store_free(&srv->store);
    srv->store = r->store;
    sessions_free(&n->sessions);
    n->sessions = r->table;
    r->staged = 0;
    n->applied_index = index;
    n->applied_term = term;
    /* The WAL restarts after the snapshot: an older snapshot would need
     * entries no longer on disk, so it is no fallback any more. */
    n->snap.last_index = index;
    n->snap.last_term = term;
    n->snap.prev_index = 0;
    n->snap.reset_pending = index + 1;
    n->snap.reset_term = term;
    kv_log(KV_LOG_INFO, "node %u: installed snapshot %" PRIu64 " (term %" PRIu64 "): %zu keys; the log restarts after it",
           n->self, index, term, kv_store_count(&srv->store));
}

int snapshot_reset_log(node *n) {
    snapshotter *s = &n->snap;
    if (!s->reset_pending) return 0;
    server *srv = n->srv;
    if (wal_reset_to(&srv->wal, s->reset_pending) != 0) {
        kv_log(KV_LOG_ERROR, "cannot empty the WAL after installing snapshot %" PRIu64 ": %s; exiting",
               s->reset_pending - 1, strerror(errno));
        _exit(1);
    }
    durability_restart(&srv->durability);
    raft_index index = s->reset_pending - 1;
    s->reset_pending = 0;
    snapshot_delete_old(n);
    raft_persisted(n->raft, index, s->reset_term);
    return 1;
}

void snapshot_send_stop_all(node *n) {
    for (unsigned i = 0; i < RAFT_MAX_NODES; i++) send_close(&n->snap.send[i]);
}

void snapshot_send_free(node *n) {
    for (unsigned i = 0; i < RAFT_MAX_NODES; i++) send_close(&n->snap.send[i]);
    snap_recv *r = &n->snap.recv;
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    drop_staged(r);
}
