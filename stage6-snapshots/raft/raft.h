/* raft.h - the pure Raft core: public types, inputs, and the Ready output contract.
 *
 * The core is a deterministic state machine. It does no I/O, reads no clock,
 * draws randomness only from a PRNG seeded by raft_config.seed, and allocates
 * only memory it owns and frees (raft_free frees everything). The host (the
 * server glue, or the simulation in tests/stage6/sim) feeds it inputs and
 * drains its outputs, all on one thread.
 *
 * SNAPSHOTS (stage 6). The core never holds snapshot data: the host owns
 * the state machine and its snapshots; the core only knows their (index,
 * term) and keeps the log from just after the latest one (plus a trailing
 * margin, cfg.snapshot_trailing entries, so a follower a little behind still
 * gets appends rather than a whole snapshot).
 *
 * MEMBERSHIP (stage 6, Raft thesis chapter 4: one server at a time). The
 * configuration is a list of members, each a voter or a learner (a learner
 * is sent the log and snapshots but neither votes nor counts toward commit,
 * ReadIndex or check-quorum majorities). It lives in the log as
 * RAFT_ENTRY_CONFIG entries (data: raft_membership_encode) and a node uses
 * the latest one in its log, committed or not; when that entry is truncated
 * it falls back to the one before (or to the snapshot's, or to the bootstrap
 * cfg.peers). Changes: raft_propose_add_learner, raft_promote,
 * raft_propose_remove, one at a time: while a change is uncommitted (or
 * before the leader has committed an entry of its term) another is refused
 * with RAFT_ERR_CHANGE_PENDING. A node that removes itself as leader keeps
 * leading until the change commits (counted over the configuration before
 * it, which included it), then sends RAFT_MSG_TIMEOUT_NOW to the voter with
 * the highest match index and steps down. A snapshot carries the
 * configuration at its index: raft_membership_at() gives it to the host
 * that takes one, RAFT_MSG_SNAPSHOT.conf carries it to a follower,
 * Ready.snapshot_conf gives it to the host that installs one, and
 * raft_restore_membership() hands it back at restart. Messages from nodes
 * outside the configuration are ignored (RAFT_OK, no effect), except a
 * leader's (append, heartbeat, snapshot, timeout-now): a node learns of a
 * new configuration from the leader that holds it.
 *
 * TIME is counted in ticks: the host calls raft_tick() every heartbeat
 * interval (heartbeat_ticks = 1), so election_ticks = election timeout /
 * heartbeat interval. Election timeouts are drawn from [e, 2e) ticks.
 *
 * INPUTS
 *   raft_tick(r)                 one logical clock tick.
 *   raft_step(r, msg)            a message from a peer. The core copies what it
 *                                keeps; msg stays the caller's. A message no
 *                                correct peer sends (unknown sender, wrong
 *                                recipient, entries out of sequence or from a
 *                                future term) is refused with RAFT_ERR_INVALID
 *                                and changes nothing.
 *   raft_propose(r, data, len)   leader only: append a NORMAL entry (data is
 *                                copied); gives its index and term. On a
 *                                non-leader: RAFT_ERR_NOT_LEADER, and
 *                                raft_leader() is the hint (0 = unknown).
 *   raft_read_index(r, ctx)      leader only (else RAFT_ERR_NOT_LEADER): ask for
 *                                a linearizable read point; ctx comes back in
 *                                Ready.reads when the read may be served.
 *   raft_persisted(r, i, t)      "my log entries up to index i, whose entry has
 *                                term t, are durable". Writes complete in the
 *                                order the Readies gave them. Stale notices (the
 *                                entry at i has been replaced since) are ignored.
 *   raft_applied(r, i)           "the state machine has applied up to i" (may
 *                                lag; reads wait for it).
 *   raft_snapshot_done(r, i, t)  "a snapshot of the state machine at applied
 *                                index i, whose entry has term t, is durable":
 *                                the core drops its log entries up to
 *                                i - snapshot_trailing and says so in
 *                                Ready.compacted_to. RAFT_ERR_INVALID (and no
 *                                change) if i is not applied, not newer than
 *                                the last snapshot, or t is not its term.
 *   raft_snapshot_sent(r, peer, i, ok)
 *                                leader: the host finished streaming the
 *                                snapshot at index i that a RAFT_MSG_SNAPSHOT
 *                                of a Ready asked it to send to peer: ok = the
 *                                peer received all of it and was handed the
 *                                message; !ok = the transfer failed. Until
 *                                then (or until the peer answers) the core
 *                                sends that peer no appends. Reports for a
 *                                transfer the core no longer waits for (it
 *                                lost leadership since, or a newer transfer
 *                                began) are ignored. After a failure the core
 *                                tries again once the peer answers a heartbeat.
 *
 * OUTPUT: raft_ready() fills a struct raft_ready and says whether it holds
 * anything. The host handles it in the order below, then calls raft_advance().
 * From raft_ready() to raft_advance() the host calls no other raft_* function
 * (read-only accessors excepted) and may read everything the Ready points to;
 * all of it is freed or reused by raft_advance(), so the host copies (encodes,
 * writes) what it needs before then.
 *   1. hard_state_changed: write (term, vote) durably and atomically BEFORE
 *      sending any message of this Ready (a granted vote or an adopted term
 *      must survive a crash once anyone may have heard of it).
 *   2. the log writes, queued in this order and completed in order (they may
 *      complete asynchronously; the host reports each as it becomes durable):
 *      a. snapshot_index != 0 (a follower was sent a snapshot it lacked): the
 *         host received and stored that snapshot (snapshot_index,
 *         snapshot_term) before it stepped the RAFT_MSG_SNAPSHOT. Now: drop
 *         the log entries from truncate_from on, make the snapshot the
 *         state machine's durable base (atomic rename, directory fsync) so
 *         that a restart loads it and replays only entries after
 *         snapshot_index, and restore the state machine from it (replacing
 *         what was applied) before applying `committed` (step 4), whose
 *         entries follow it. Report raft_persisted(snapshot_index,
 *         snapshot_term) once that is durable: the follower's
 *         acknowledgement waits for it. When the follower's log already
 *         holds the snapshot's last entry (same index and term), the core
 *         keeps its log, commits up to there and asks for no restore: the
 *         host may delete the received data.
 *      b. compacted_to != 0: the core will never need log entries <= it
 *         again (a durable snapshot covers them): the host may delete them,
 *         e.g. every WAL segment whose last index is <= compacted_to, once
 *         the writes before (a's install included) are durable. It bounds
 *         the disk; safety never depends on it (a restart may find them).
 *      c. truncate_from != 0: discard log entries with index >= truncate_from
 *         (on disk, and in any write still queued); then append `entries`,
 *         in order. When they are durable, report raft_persisted(the last
 *         one's index, its term).
 *   3. messages: send them now, without waiting for step 2. The core has held
 *      back anything that depends on entries not yet reported durable (a
 *      follower's append acknowledgement waits for raft_persisted), while a
 *      leader sends its entries as it writes them itself (Raft thesis 10.2.1):
 *      its own copy counts toward commit only after raft_persisted.
 *      Messages may be lost, duplicated or reordered; the core copes. A
 *      RAFT_MSG_SNAPSHOT is metadata only: stream the snapshot the host holds
 *      at (snap_index, snap_term) to m.to (the core names only the latest
 *      one the host reported with raft_snapshot_done, installed or restored),
 *      hand the peer's core the message once all the data is stored there,
 *      and report the outcome with raft_snapshot_sent.
 *   4. committed: apply these entries to the state machine, in order. Only
 *      entries that are committed AND durable locally are handed out, each
 *      once. Report progress with raft_applied().
 *   5. reads: each (ctx, index) is a ReadIndex read whose leadership check has
 *      succeeded and whose index is already applied: serve it from the state
 *      machine now.
 *   6. soft_changed: role, leader or term changed (role, leader give the new
 *      values; term is the current term). When a node stops being leader it
 *      drops its pending reads: the host fails every request it was holding
 *      (reads, proposals not yet applied) with NOTLEADER. A proposal that got
 *      (index, term) succeeded iff the entry applied at index has that term.
 *
 * RESTART: build the node with raft_new() and raft_restore() from what was
 * durable (the last (term, vote), the latest snapshot's (index, term) and
 * the log) before any other input. Commit and applied indexes are not
 * persisted: the host loads the snapshot into the state machine first (it
 * is committed, so commit and applied start at its index); committed
 * entries after it are handed out again, so the rest is rebuilt by replay.
 */
#ifndef KV_RAFT_H
#define KV_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t raft_index;
typedef uint64_t raft_term;
typedef uint32_t raft_id; /* node id, 1..; 0 means none */

#define RAFT_MAX_NODES 9

enum raft_err {
    RAFT_OK = 0,
    RAFT_ERR_NOT_LEADER = -1,
    RAFT_ERR_NOMEM = -2,
    RAFT_ERR_INVALID = -3, /* bad config or argument, or a malformed message */
    /* a membership change is still uncommitted, or this leader has not yet
     * committed an entry of its own term (thesis 4.1, the single-server
     * change bug): try again once it has */
    RAFT_ERR_CHANGE_PENDING = -4,
    /* raft_promote: the learner's log is not yet close to the leader's */
    RAFT_ERR_NOT_CAUGHT_UP = -5,
};

enum raft_role { RAFT_FOLLOWER = 0, RAFT_PRE_CANDIDATE, RAFT_CANDIDATE, RAFT_LEADER };

enum raft_entry_type { RAFT_ENTRY_NORMAL = 1, RAFT_ENTRY_NOOP = 2, RAFT_ENTRY_CONFIG = 3 };

/* One configuration: the members, each a voter or a learner. */
struct raft_member {
    raft_id id;
    bool voter;
};
struct raft_membership {
    unsigned n;
    struct raft_member m[RAFT_MAX_NODES];
};
/* A RAFT_ENTRY_CONFIG entry's data: 5 bytes per member, the id (32 bits,
 * little-endian) then 1 (voter) or 0 (learner). */
#define RAFT_MEMBERSHIP_MAX_BYTES (5 * RAFT_MAX_NODES)
size_t raft_membership_encode(const struct raft_membership *c, uint8_t *buf);
/* RAFT_ERR_INVALID unless the data is a well-formed configuration: 1 to
 * RAFT_MAX_NODES distinct non-zero ids, at least one voter. */
int raft_membership_decode(const uint8_t *data, size_t len, struct raft_membership *c);
/* The member's entry, NULL if id is not a member. */
const struct raft_member *raft_membership_find(const struct raft_membership *c, raft_id id);

struct raft_entry {
    raft_index index;
    raft_term term;
    int type;      /* enum raft_entry_type */
    uint8_t *data; /* owned by whoever holds the entry; NULL when len == 0 */
    size_t len;
};

enum raft_msg_type {
    RAFT_MSG_PREVOTE = 1,
    RAFT_MSG_PREVOTE_RESP,
    RAFT_MSG_VOTE,
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_APPEND,
    RAFT_MSG_APPEND_RESP,
    RAFT_MSG_HEARTBEAT,
    RAFT_MSG_HEARTBEAT_RESP,
    RAFT_MSG_SNAPSHOT, /* InstallSnapshot's metadata; answered with an APPEND_RESP */
    RAFT_MSG_TIMEOUT_NOW, /* leadership transfer: campaign now (thesis 3.10) */
};

/* One flat struct for every message; each type uses the fields named for it.
 * The host maps it to its wire format. */
struct raft_msg {
    int type; /* enum raft_msg_type */
    raft_id from, to;
    raft_term term; /* sender's term; for PREVOTE (and a granted PREVOTE_RESP) the proposed term */

    /* PREVOTE, VOTE: the candidate's last log entry */
    raft_index last_index;
    raft_term last_term;
    /* VOTE: campaigning on a TIMEOUT_NOW, so the leader lease does not
     * apply (the leader asked for it) */
    bool transfer;
    /* *_RESP: false = granted / success */
    bool reject;

    /* APPEND: entries following (prev_index, prev_term); leader's commit */
    raft_index prev_index;
    raft_term prev_term;
    raft_index commit; /* APPEND, HEARTBEAT */
    /* HEARTBEAT: the leader's own commit index. `commit` above is capped at
     * what the follower is known to hold (it may adopt only that); this one
     * is what a bounded-staleness follower read must have applied. */
    raft_index leader_commit;
    struct raft_entry *entries;
    size_t n_entries;

    /* APPEND_RESP: on success, the follower's log matches the leader's up to
     * match_index. On reject, reject_index echoes prev_index, and the hint
     * (conflict_term, conflict_index) lets the leader skip a whole term:
     * conflict_term is the follower's term at prev_index (0 if its log is
     * shorter), conflict_index the first index it holds with that term (or
     * its last index + 1). */
    raft_index match_index;
    raft_index reject_index;
    raft_term conflict_term;
    raft_index conflict_index;

    /* HEARTBEAT, HEARTBEAT_RESP: the ReadIndex round being confirmed (echoed) */
    uint64_t read_seq;

    /* SNAPSHOT: the snapshot's last included entry. The follower answers
     * with an APPEND_RESP whose match_index is snap_index (or its commit
     * index, when the snapshot is not newer than what it has). */
    raft_index snap_index;
    raft_term snap_term;
    /* SNAPSHOT: the configuration at snap_index (stored with the snapshot) */
    struct raft_membership conf;
};

struct raft_read {
    uint64_t ctx;     /* the caller's tag from raft_read_index */
    raft_index index; /* applied >= index: serve it */
};

struct raft_ready {
    bool hard_state_changed;
    raft_term term;
    raft_id vote;

    raft_index snapshot_index; /* 0 = none; else restore from this snapshot (2a) */
    raft_term snapshot_term;
    struct raft_membership snapshot_conf; /* its configuration: store it with it */
    raft_index compacted_to; /* 0 = nothing; log entries <= it may go (2b) */

    raft_index truncate_from; /* 0 = no truncation */
    const struct raft_entry *entries;
    size_t n_entries;

    const struct raft_msg *messages;
    size_t n_messages;

    const struct raft_entry *committed;
    size_t n_committed;

    const struct raft_read *reads;
    size_t n_reads;

    bool soft_changed;
    int role;
    raft_id leader;
};

struct raft_config {
    raft_id id;
    raft_id peers[RAFT_MAX_NODES]; /* every voter, self included */
    unsigned n_peers;
    unsigned election_ticks;  /* base election timeout; randomized in [e, 2e) */
    unsigned heartbeat_ticks; /* < election_ticks */
    uint64_t seed;            /* the only source of randomness */
    bool pre_vote;
    bool check_quorum; /* also enables the leader lease (ignore votes while a leader is heard) */
    unsigned max_inflight;      /* appends in flight per peer when replicating, >= 1 */
    unsigned max_batch_entries; /* entries per append, >= 1 */
    size_t max_batch_bytes;     /* payload bytes per append (at least one entry is sent) */
    unsigned snapshot_trailing; /* log entries kept behind a snapshot for slow followers */
    /* Started to join a running cluster: the bootstrap configuration (peers)
     * counts this node as a learner, so it neither votes nor campaigns until
     * a configuration naming it as a voter reaches it. */
    bool join;
    /* raft_promote: a learner may become a voter once its match index is
     * at least the leader's last index minus promote_lag and it answered
     * within the last election timeout. */
    unsigned promote_lag;
};

/* Sensible defaults: pre-vote and check-quorum on, 10/1 ticks, 8 in flight,
 * 128 entries kept behind a snapshot, promotion within 16 entries. peers
 * is the bootstrap configuration, every one a voter (self a learner with
 * join). */
void raft_config_default(struct raft_config *cfg, raft_id id, const raft_id *peers, unsigned n);

struct raft;

/* NULL on bad config or out of memory. */
struct raft *raft_new(const struct raft_config *cfg);
void raft_free(struct raft *r);
/* Load durable state into a fresh node (before any other input): the hard
 * state, the latest snapshot's (snap_index, snap_term) ((0, 0) = none), and
 * the log entries[0..n) with consecutive indexes. Entries at or below
 * snap_index are skipped (the host may pass its whole WAL); the rest must
 * start at snap_index + 1. Data is copied. */
int raft_restore(struct raft *r, raft_term term, raft_id vote, raft_index snap_index,
                 raft_term snap_term, const struct raft_entry *entries, size_t n);
/* Before raft_restore, when the restored snapshot carries a configuration:
 * it replaces the bootstrap one as the base (the log's CONFIG entries
 * after the snapshot apply on top). RAFT_ERR_INVALID if malformed or called
 * after raft_restore. */
int raft_restore_membership(struct raft *r, const struct raft_membership *conf);

void raft_tick(struct raft *r);
int raft_step(struct raft *r, const struct raft_msg *m);
int raft_propose(struct raft *r, const void *data, size_t len, raft_index *index, raft_term *term);
int raft_read_index(struct raft *r, uint64_t ctx);
/* Membership changes, leader only (else RAFT_ERR_NOT_LEADER), one at a time
 * (else RAFT_ERR_CHANGE_PENDING); each appends a RAFT_ENTRY_CONFIG entry
 * and gives its index and term like raft_propose. add_learner: id must not
 * be a member (RAFT_ERR_INVALID; also when RAFT_MAX_NODES are members).
 * promote: id must be a learner whose log is close to the leader's (see
 * cfg.promote_lag; else RAFT_ERR_NOT_CAUGHT_UP). remove: id must be a
 * member and not the last voter; the leader may remove itself. */
int raft_propose_add_learner(struct raft *r, raft_id id, raft_index *index, raft_term *term);
int raft_promote(struct raft *r, raft_id id, raft_index *index, raft_term *term);
int raft_propose_remove(struct raft *r, raft_id id, raft_index *index, raft_term *term);
void raft_persisted(struct raft *r, raft_index index, raft_term term);
void raft_applied(struct raft *r, raft_index index);
int raft_snapshot_done(struct raft *r, raft_index index, raft_term term);
void raft_snapshot_sent(struct raft *r, raft_id peer, raft_index index, bool ok);

/* True when there is something to do; fills *rd either way. */
bool raft_ready(struct raft *r, struct raft_ready *rd);
void raft_advance(struct raft *r);

/* Read-only accessors (for INFO, tests and the simulation). */
raft_id raft_self(const struct raft *r);
int raft_role(const struct raft *r);
raft_term raft_current_term(const struct raft *r);
raft_id raft_voted_for(const struct raft *r);
raft_id raft_leader(const struct raft *r);
/* Ticks since this node last heard an append or heartbeat from raft_leader()
 * (0 on the leader; meaningless while raft_leader() is 0): with
 * raft_commit_index, what a bounded-staleness follower read needs. */
unsigned raft_ticks_since_leader(const struct raft *r);
raft_index raft_commit_index(const struct raft *r);
/* The highest commit index the current leader has announced to this node
 * in this term (0 until it has); the leader's own commit on the leader. */
raft_index raft_leader_commit(const struct raft *r);
raft_index raft_applied_index(const struct raft *r);
raft_index raft_last_index(const struct raft *r);
raft_index raft_first_index(const struct raft *r);
/* The latest snapshot the core knows of (reported done, installed or
 * restored); (0, 0) when none. The log may start before it (the margin). */
raft_index raft_snapshot_index(const struct raft *r);
raft_term raft_snapshot_term(const struct raft *r);
raft_index raft_persisted_index(const struct raft *r);
/* The configuration in use (the latest in the log) and the index of its
 * entry (0 when it comes from a snapshot or the bootstrap peers). */
const struct raft_membership *raft_membership(const struct raft *r, raft_index *index);
/* The configuration in effect at index i (latest CONFIG entry <= i), for a
 * host taking a snapshot at i; RAFT_ERR_INVALID when i is before the log's
 * first index - 1 or after its last. */
int raft_membership_at(const struct raft *r, raft_index i, struct raft_membership *out);
/* NULL when index is outside [first, last]. */
const struct raft_entry *raft_entry_at(const struct raft *r, raft_index index);
/* Leader only: the peer's match index and ticks since it last answered.
 * raft_peer_snapshot also says whether a snapshot transfer to it is under
 * way (and of which index). */
bool raft_peer_progress(const struct raft *r, raft_id peer, raft_index *match, unsigned *idle_ticks);
bool raft_peer_snapshot(const struct raft *r, raft_id peer, raft_index *index);

const char *raft_role_name(int role);
const char *raft_msg_name(int type);

#endif
