/* raft_int.h - the core's private state, shared by the files cut by protocol
 * step (log.c, election.c, replication.c, commit.c, read_index.c, snapshot.c,
 * ready.c). */
#ifndef KV_RAFT_INT_H
#define KV_RAFT_INT_H

#include "raft.h"

#define RAFT_MAX_INFLIGHT 64

/* Deliberately broken variants, compiled only into the simulation's own
 * tests (tests/stage6/sim), which must catch each one. kvraft defines none. */
#ifdef RAFT_BREAK_UP_TO_DATE
#define RAFT_BROKEN_UP_TO_DATE 1 /* grant votes to any log */
#else
#define RAFT_BROKEN_UP_TO_DATE 0
#endif
#ifdef RAFT_BREAK_COMMIT_OLD_TERM
#define RAFT_BROKEN_COMMIT_OLD_TERM 1 /* commit earlier terms by counting */
#else
#define RAFT_BROKEN_COMMIT_OLD_TERM 0
#endif
#ifdef RAFT_BREAK_READ_INDEX
#define RAFT_BROKEN_READ_INDEX 1 /* serve reads without a heartbeat round */
#else
#define RAFT_BROKEN_READ_INDEX 0
#endif
#ifdef RAFT_BREAK_SNAPSHOT_OLD
#define RAFT_BROKEN_SNAPSHOT_OLD 1 /* install snapshots older than the commit index */
#else
#define RAFT_BROKEN_SNAPSHOT_OLD 0
#endif
#ifdef RAFT_BREAK_SNAPSHOT_TRUNCATE
#define RAFT_BROKEN_SNAPSHOT_TRUNCATE 1 /* discard the log even where it matches the snapshot */
#else
#define RAFT_BROKEN_SNAPSHOT_TRUNCATE 0
#endif
#ifdef RAFT_BREAK_EARLY_ACK
#define RAFT_BROKEN_EARLY_ACK 1 /* ack appends before they are durable */
#else
#define RAFT_BROKEN_EARLY_ACK 0
#endif

#ifdef RAFT_BREAK_CONFIG_PENDING
#define RAFT_BROKEN_CONFIG_PENDING 1 /* accept a second change while one is uncommitted */
#else
#define RAFT_BROKEN_CONFIG_PENDING 0
#endif
#ifdef RAFT_BREAK_CONFIG_QUORUM
#define RAFT_BROKEN_CONFIG_QUORUM 1 /* count commit majorities over the bootstrap peers */
#else
#define RAFT_BROKEN_CONFIG_QUORUM 0
#endif
#ifdef RAFT_BREAK_REMOVED_CAMPAIGN
#define RAFT_BROKEN_REMOVED_CAMPAIGN 1 /* removed nodes campaign, members answer them */
#else
#define RAFT_BROKEN_REMOVED_CAMPAIGN 0
#endif

/* The in-memory log. e[0] holds index `first`; snapshots compact the front,
 * so the term of the entry before `first` is kept in prev_term. */
struct raft_log {
    struct raft_entry *e;
    size_t n, cap;
    raft_index first;
    raft_term prev_term;
};

void log_init(struct raft_log *l);
void log_free(struct raft_log *l);
raft_index log_last_index(const struct raft_log *l);
raft_term log_last_term(const struct raft_log *l);
/* False when the term at i is not known (beyond the end, or compacted). */
bool log_term(const struct raft_log *l, raft_index i, raft_term *t);
const struct raft_entry *log_get(const struct raft_log *l, raft_index i);
/* Appends at last+1 a copy of (term, type, data). */
int log_append(struct raft_log *l, raft_term term, int type, const void *data, size_t len);
/* Drops entries with index >= from. */
void log_truncate(struct raft_log *l, raft_index from);
/* Drops entries with index <= to (to < first: nothing; to must be <= last). */
void log_compact(struct raft_log *l, raft_index to);
/* Drops every entry: the log is empty and continues after (index, term). */
void log_reset(struct raft_log *l, raft_index index, raft_term term);
/* First index of the run of entries with the same term that ends at i. */
raft_index log_term_start(const struct raft_log *l, raft_index i);
/* Highest index <= from whose term is t, 0 if none. */
raft_index log_last_of_term(const struct raft_log *l, raft_index from, raft_term t);

/* PROBE: one append at a time until the follower's log is found; REPLICATE:
 * pipelined appends; SNAPSHOT: the follower needs entries the log no longer
 * has, a snapshot is being streamed to it, no appends until the outcome. */
enum { PROGRESS_PROBE = 0, PROGRESS_REPLICATE, PROGRESS_SNAPSHOT };

/* What the leader knows about one follower. */
struct raft_progress {
    raft_index match, next;
    int state;
    bool paused;         /* probe: one append is out, wait for its answer */
    bool active;         /* answered since the last check-quorum round */
    bool want_append;    /* lags behind: send an append even if empty (it may reject) */
    unsigned idle;       /* ticks since its last answer */
    raft_index sent_commit;
    /* replicate: last index of each append in flight, oldest first */
    raft_index inflight[RAFT_MAX_INFLIGHT];
    unsigned in_head, in_count;
    uint64_t read_ack; /* highest ReadIndex round it confirmed */
    raft_index pending_snap; /* SNAPSHOT: the index being sent */
};

/* A follower's append acknowledgement waiting for its entries to be durable. */
struct raft_held {
    struct raft_msg m;
    raft_term match_term;
};

struct raft_pending_read {
    uint64_t ctx;
    uint64_t seq;     /* heartbeat round that must be acked by a quorum */
    raft_index index; /* 0 until the leader has committed in its term */
};

struct raft {
    struct raft_config cfg; /* cfg.peers: the bootstrap configuration */
    /* ids[0..n) are the slots: the current configuration's members, then
     * self if it is not one (so self_slot is always valid). */
    raft_id ids[RAFT_MAX_NODES + 1];
    unsigned n;
    int self_slot;
    bool voter[RAFT_MAX_NODES + 1]; /* by slot: a voter of the current configuration */
    struct raft_membership boot_conf; /* from cfg.peers */
    bool transfer; /* campaigning on a TIMEOUT_NOW */
    /* cfg.join and no configuration from a leader yet (neither a CONFIG
     * entry nor a snapshot's): the node neither votes nor campaigns */
    bool silent;
    struct raft_membership conf; /* the latest in the log */
    raft_index conf_index;       /* its entry; 0 = it is base_conf */
    struct raft_membership base_conf; /* in effect at log.first - 1 (snapshot or bootstrap) */
    struct raft_membership snap_conf; /* in effect at snap_index */
    struct raft_membership install_conf; /* Ready.snapshot_conf */
    bool restored; /* raft_restore ran: raft_restore_membership is too late */

    raft_term term;
    raft_id vote;
    int role;
    raft_id leader;

    struct raft_log log;
    raft_index stable;        /* entries <= stable are durable */
    raft_index unstable;      /* first index not yet handed to the host to write */
    raft_index pending_trunc; /* host must truncate from here (0 = nothing) */
    raft_index commit;
    raft_index snap_index; /* the latest snapshot the host holds (0 = none) */
    raft_term snap_term;
    raft_index install_index; /* Ready.snapshot_*: a snapshot to install (0 = none) */
    raft_term install_term;
    raft_index pending_compact; /* Ready.compacted_to (0 = nothing) */
    raft_index applied;    /* reported by the host */
    raft_index apply_next; /* last index handed out to apply */

    unsigned elapsed, hb_elapsed, rand_timeout;
    unsigned since_leader; /* ticks since the leader was last heard */
    raft_index leader_commit; /* follower: the highest commit the leader announced this term */
    uint32_t granted, rejected; /* bitmaps by slot */

    struct raft_progress pr[RAFT_MAX_NODES + 1];

    struct raft_msg *out;
    size_t n_out, cap_out;
    struct raft_held *held;
    size_t n_held, cap_held;

    struct raft_pending_read *reads;
    size_t n_reads, cap_reads;
    uint64_t read_seq, read_seq_sent;
    struct raft_read *reads_out;
    size_t n_reads_out, cap_reads_out;

    uint64_t rng;

    /* what the host was last told */
    raft_term hs_term;
    raft_id hs_vote;
    int soft_role;
    raft_id soft_leader;
    raft_term soft_term;
    raft_index ready_apply_to;
};

/* raft.c */
int raft_slot(const struct raft *r, raft_id id);
uint64_t raft_rand(struct raft *r);
bool raft_send(struct raft *r, struct raft_msg *m); /* takes m's entries; false: dropped (OOM) */
void raft_become_follower(struct raft *r, raft_term term, raft_id leader);

/* election.c */
void election_reset_timeout(struct raft *r);
void election_tick(struct raft *r);
void election_campaign(struct raft *r, bool pre_vote);
bool election_in_lease(const struct raft *r);
void election_on_request(struct raft *r, const struct raft_msg *m);
void election_on_response(struct raft *r, const struct raft_msg *m);

/* replication.c */
void replication_become_leader(struct raft *r);
/* A fresh progress for slot (a follower the leader knows nothing of yet). */
void replication_progress_reset(struct raft *r, unsigned slot);
/* Records that the host must drop entries >= from (if it may hold them). */
void replication_host_truncate(struct raft *r, raft_index from);
void replication_hold_ack(struct raft *r, raft_id to, raft_index match);
void replication_follow(struct raft *r, raft_id leader, raft_index leader_commit);
void replication_tick(struct raft *r);
void replication_flush(struct raft *r);
void replication_send_heartbeats(struct raft *r);
void replication_on_append(struct raft *r, const struct raft_msg *m);
/* Refuses an append whose prev entry we lack, with the back-off hint. */
void replication_reject(struct raft *r, const struct raft_msg *m);
void replication_on_append_resp(struct raft *r, const struct raft_msg *m);
void replication_on_heartbeat(struct raft *r, const struct raft_msg *m);
void replication_on_heartbeat_resp(struct raft *r, const struct raft_msg *m);
void replication_release_held(struct raft *r);

/* commit.c */
void commit_maybe_advance(struct raft *r);

/* snapshot.c */
/* Leader: slot's follower needs entries before the log's first: send the
 * latest snapshot instead (progress goes to SNAPSHOT). */
void snapshot_send(struct raft *r, unsigned slot);
void snapshot_on_message(struct raft *r, const struct raft_msg *m);

/* membership.c */
/* The bootstrap configuration from cfg (self a learner with cfg.join). */
void membership_bootstrap(struct raft *r);
/* Makes c the configuration in use (slots, voters, progress by id). */
void membership_use(struct raft *r, const struct raft_membership *c, raft_index index);
/* After the log changed at or after `from` (append of a CONFIG entry,
 * truncation, reset): use the latest configuration in the log. */
void membership_log_changed(struct raft *r);
bool membership_is_voter(const struct raft *r, raft_id id);
/* Whether this node answers vote requests: any node that has had a
 * configuration from a leader, learners included (a learner may have been
 * promoted by an entry it has not received yet: if it refused, the cluster
 * could lose its majority for good; the candidate counts only its own
 * configuration's voters). Only a joining node still on its bootstrap
 * configuration stays silent. */
bool membership_may_vote(const struct raft *r);
/* True when the slots in `bits` hold a majority of the voters whose
 * majority decides now (see membership_quorum_conf). */
bool membership_quorum(const struct raft *r, uint32_t bits);
/* The highest index a deciding majority holds (leader's commit candidate). */
raft_index membership_quorum_match(const struct raft *r);
/* Leader: its own removal has committed: hand over and step down. */
void membership_on_commit(struct raft *r);
void membership_on_timeout_now(struct raft *r, const struct raft_msg *m);

/* read_index.c */
void read_index_on_commit(struct raft *r);
void read_index_collect(struct raft *r);
void read_index_drop_all(struct raft *r);

#endif
