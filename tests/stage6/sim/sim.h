/* sim.h - deterministic simulation of a Raft cluster built from the real core
 * (stage6-snapshots/raft): one process, one seed, a simulated network and a
 * simulated disk per node, invariant checks after every event. Stage 6 adds
 * a state machine per node (the (term, id) of every applied entry, so a
 * snapshot is that list up to an index), snapshots taken at a threshold,
 * log compaction, and snapshots streamed to followers through the network;
 * membership change: nodes beyond the bootstrap ones start dormant and join
 * later, each snapshot carries its configuration. */
#ifndef KV_SIM_H
#define KV_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "raft.h"

#define SIM_MAX 5
#define SIM_TICK 10       /* time units per raft tick */
#define SIM_ELECTION 10   /* election_ticks */
#define SIM_E (SIM_TICK * SIM_ELECTION) /* one base election timeout, in units */
#define SIM_TRACE_N 256

/* A snapshot of the simulated state machine: the (term, id) of every entry
 * applied up to `index` (id 0 for a no-op), t[k] and id[k] for index k+1. */
struct sim_snap {
    raft_index index;
    raft_term term;
    struct raft_membership conf; /* the configuration at index, stored with it */
    raft_term *t;
    uint64_t *id;
};

/* One write of a Ready (or a snapshot the host takes), completed in order:
 * install, compact, truncate, append; `take` is a write of its own. */
struct sim_write {
    uint64_t done_at;
    struct sim_snap install; /* index 0 = none: a received snapshot becomes the base */
    struct sim_snap take;    /* index 0 = none: the node's own snapshot */
    raft_index compact;      /* 0 = none: log entries <= it may go */
    raft_index trunc;        /* 0 = none */
    struct raft_entry *e;
    size_t n;
};

struct sim_disk {
    raft_term term;
    raft_id vote;
    struct sim_snap snap;   /* the snapshot a restart loads (index 0 = none) */
    raft_index base;        /* log[k] holds index base + 1 + k */
    struct raft_entry *log; /* durable entries after base */
    size_t n, cap;
    struct sim_write *q; /* writes not yet durable, completed in order */
    size_t nq, capq;
};

struct sim_node {
    struct raft *r; /* NULL while crashed */
    bool dormant; /* not started yet (a server to add later) */
    bool joiner;  /* started to join: its bootstrap configuration names it a learner */
    unsigned installs; /* snapshots it installed */
    uint64_t incarnation; /* bumped by every restart: late reports to a dead core are dropped */
    struct sim_disk disk;
    raft_index applied;
    /* the state machine: (term, id) of entries 1..applied */
    raft_term *sm_t;
    uint64_t *sm_id;
    size_t sm_cap;
    struct sim_snap held;  /* the newest snapshot the host holds (taken or received) */
    struct sim_snap inbox; /* a snapshot just received, while its message is stepped */
    bool taking;           /* a snapshot of its own is being written */
    /* the highest match index it acknowledged, and in which term: entries
     * up to there match that term's leader and may never be discarded in
     * that term (neither by truncation nor by a snapshot install) */
    raft_term ack_term;
    raft_index ack_index;
    raft_index commit_seen;
    /* The node's log as its Ready batches described it (checked against the
     * core's own log every few events): term, entry id and a hash chained
     * over the whole prefix, so Log Matching is checked per new entry. */
    raft_term *mt;
    uint64_t *mid, *mchain;
    size_t mn, mcap;
    raft_term lead_term; /* term in which it was last seen leading */
    bool crash_pending;  /* crash while handling the next Ready, before any of it is done */
    unsigned phase;      /* tick offset within SIM_TICK */
    /* the campaign last written to the timeline (message type and term), so
     * that one election is one "elect" event however many requests it sends */
    int tl_campaign_type;
    raft_term tl_campaign_term;
};

struct sim_ev { /* a message in flight, or a snapshot transfer's outcome */
    uint64_t at, seq;
    struct raft_msg m;
    struct sim_snap snap; /* a RAFT_MSG_SNAPSHOT's data */
    bool report;          /* tell m.from's host how its transfer to m.to went (ok = !m.reject) */
    uint64_t incarnation; /* of m.from when the transfer began */
};

#define SIM_SLOT_TERMS 8
struct sim_slot { /* what the cluster knows about one index */
    raft_term term; /* the committed entry */
    uint64_t id;
    raft_term commit_term; /* term of the leader seen committing it */
    bool committed, applied;
    /* every (term, prefix hash) any log held here: same term, same prefix */
    raft_term seen_t[SIM_SLOT_TERMS];
    uint64_t seen_chain[SIM_SLOT_TERMS];
    unsigned n_seen;
};

struct sim_read {
    int node;
    uint64_t ctx;
    raft_index min_index; /* highest index committed anywhere when asked */
    bool done;
};

struct sim_trace_ev {
    uint64_t at;
    int kind, node, peer, type;
    uint64_t a, b, c;
};

struct sim {
    const char *scenario;
    uint64_t seed, rng;
    unsigned n;
    /* nodes 1..members0 are the bootstrap configuration (all voters); the
     * others stay dormant until sim_join starts them as joiners */
    unsigned members0;
    bool pre_vote, check_quorum;
    unsigned max_inflight, max_batch; /* drawn per run: pipelining and batching vary */
    struct sim_node node[SIM_MAX];
    uint64_t now, seq;

    struct sim_ev *heap;
    size_t nheap, capheap;

    /* network */
    bool cut[SIM_MAX][SIM_MAX]; /* cut[a][b]: a's messages to b are lost */
    bool connected[SIM_MAX];    /* 6.5840's connect/disconnect of whole nodes */
    unsigned loss_pm, dup_pm, long_pm; /* per mille */
    unsigned delay_min, delay_max, long_max;
    unsigned disk_min, disk_max;

    /* snapshots: each node snapshots every snap_every applied entries (0 =
     * never); the core keeps `trailing` entries behind one */
    unsigned snap_every, trailing;
    bool snap_fixed;       /* the scenario chose them; else sim_start draws them */
    unsigned installs;     /* snapshots installed by followers */
    unsigned snaps_sent;   /* snapshot transfers begun */
    unsigned snaps_stale;  /* snapshots that arrived from a leader of an older term */
    unsigned snap_delay;   /* extra time units every snapshot transfer takes */
    unsigned max_log;      /* the longest in-memory log seen (bounded by snapshots) */
    /* what the checker knows */
    raft_id *leader_of; /* by term */
    size_t n_leader_of;
    struct sim_slot *slot; /* by index */
    size_t n_slot;
    raft_index max_committed;
    /* membership: by node, the term of the leader seen committing a
     * configuration without it as a voter (0 = none, or re-added since) */
    raft_term removed_term[SIM_MAX];
    struct raft_membership committed_conf; /* the latest committed (bootstrap at first) */
    unsigned changes; /* configuration entries committed */
    struct sim_read *reads;
    size_t n_reads, cap_reads;
    uint64_t next_id;

    struct sim_trace_ev trace[SIM_TRACE_N];
    uint64_t n_trace;
    bool verbose;
    FILE *tl; /* the timeline's JSON lines (sim_timeline.c); NULL, the usual case, costs one test */

    bool failed;
    char why[512];
    uint64_t events;
};

/* sim_cluster.c */
void sim_init(struct sim *s, const char *scenario, uint64_t seed, unsigned n);
void sim_start(struct sim *s); /* after options are set */
void sim_free(struct sim *s);
uint64_t sim_rand(struct sim *s);
unsigned sim_rand_below(struct sim *s, unsigned n);
void sim_reliable(struct sim *s);
void sim_unreliable(struct sim *s);
void sim_crash(struct sim *s, int i);
void sim_restart(struct sim *s, int i);
/* Crash i in the middle of its next Ready: its new term, vote, entries and
 * messages are all lost, as when power fails before the hard state is synced. */
void sim_crash_in_ready(struct sim *s, int i);
void sim_restart_all(struct sim *s); /* and cancel pending crashes */
bool sim_up(const struct sim *s, int i);
void sim_disconnect(struct sim *s, int i);
void sim_connect(struct sim *s, int i);
void sim_heal(struct sim *s);
void sim_cut(struct sim *s, int from, int to);
void sim_run(struct sim *s, uint64_t units);
/* Runs until pred holds (checked after each time unit) or bound units pass. */
bool sim_run_until(struct sim *s, uint64_t bound, bool (*pred)(struct sim *, void *), void *arg);
/* Proposes a fresh value at node i; returns its index, 0 if i is not leader. */
raft_index sim_propose(struct sim *s, int i, uint64_t *id);
/* Starts dormant node i as a joiner (silent until made a voter). */
void sim_join(struct sim *s, int i);
/* Membership changes at node i (raft_propose_add_learner, raft_promote,
 * raft_propose_remove of id); the core's return code. */
enum { SIM_ADD = 1, SIM_PROMOTE, SIM_REMOVE };
int sim_member_change(struct sim *s, int i, int op, raft_id id);
/* Asks node i for a ReadIndex read; false if it is not leader. */
bool sim_read(struct sim *s, int i, size_t *handle);

void sim_snap_free(struct sim_snap *sn);
void sim_snap_copy(struct sim_snap *dst, const struct sim_snap *src);

/* sim_check.c */
void sim_check(struct sim *s);
/* State Machine Safety over a snapshot's contents: node i now holds sn. */
void sim_on_restore(struct sim *s, int i, const struct sim_snap *sn);
void sim_check_deep(struct sim *s); /* O(log) per node: mirrors and leader logs */
void sim_mirror_ready(struct sim *s, int i, const struct raft_ready *rd);
void sim_mirror_reset(struct sim *s, int i); /* from the durable log, at restart */
void sim_slot_need(struct sim *s, raft_index index);
void sim_on_apply(struct sim *s, int i, const struct raft_entry *e);
void sim_on_read(struct sim *s, int i, uint64_t ctx, raft_index index);
void sim_fail(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t sim_entry_id(const struct raft_entry *e);

/* sim_trace.c */
/* TR_SEND .. TR_COMMIT go to the timeline only (SIM_TL), never to the ring:
 * the printed trace stays as it was. */
enum { TR_SEND = 1, TR_DELIVER, TR_DROP, TR_ROLE, TR_PROPOSE, TR_CRASH, TR_RESTART, TR_CUT,
       TR_HEAL, TR_PERSIST, TR_APPLY, TR_READ, TR_READ_DONE, TR_NOTE,
       TR_TERM, TR_VOTE, TR_ELECT, TR_COMMIT, TR_SNAP, TR_MEMBER };
/* TR_SNAP's c: what happened to the snapshot (index a, term b) */
enum { SNAP_TAKEN = 1, SNAP_INSTALL, SNAP_SENT_OK, SNAP_SENT_FAILED, SNAP_COMPACT };
void sim_trace(struct sim *s, int kind, int node, int peer, int type, uint64_t a, uint64_t b,
               uint64_t c);
void sim_trace_dump(const struct sim *s, unsigned last);

/* sim_timeline.c: every event of one run as JSON lines (scripts/timeline.py
 * documents the format and draws it) */
void sim_tl_begin(struct sim *s, FILE *f, const char *binary);
void sim_tl_write(struct sim *s, const struct sim_trace_ev *e);
void sim_tl_send(struct sim *s, int from, const struct raft_msg *m);
#define SIM_TL(s, kind, node, peer, type, a, b, c)                                           \
    do {                                                                                    \
        if ((s)->tl) {                                                                      \
            struct sim_trace_ev tl_ev_ = {(s)->now, (kind), (node), (peer), (type), (a), (b), \
                                          (c)};                                             \
            sim_tl_write((s), &tl_ev_);                                                     \
        }                                                                                   \
    } while (0)

/* sim_helpers.c: 6.5840-style helpers for scenarios */
int sim_stable_leader(struct sim *s, uint32_t mask); /* -1 if none */
int sim_wait_leader(struct sim *s, uint32_t mask, uint64_t bound);
bool sim_no_leader(struct sim *s, uint32_t mask);
unsigned sim_n_applied(struct sim *s, raft_index index, uint64_t id);
/* Commits one fresh value on at least `expected` nodes within the bound,
 * retrying at whichever node leads; returns its index (0 and fails if not). */
raft_index sim_one(struct sim *s, unsigned expected, uint64_t bound);
uint32_t sim_all(const struct sim *s);
/* Drives one membership change to completion: retries at whichever node
 * leads until a leader's committed configuration shows it (liveness: fails
 * the run if not within the bound). */
bool sim_change(struct sim *s, int op, raft_id id, uint64_t bound);
/* Whether id is a member / a voter of the configuration node i uses. */
bool sim_is_member(struct sim *s, int i, raft_id id, bool voter);

/* sim_scenarios.c */
struct sim_scenario {
    const char *name;
    unsigned nodes;
    void (*run)(struct sim *s);
};
extern const struct sim_scenario sim_scenarios[];
/* sim_members.c: the membership change scenarios */
void member_add(struct sim *s);
void member_remove_follower(struct sim *s);
void member_remove_leader(struct sim *s);
void member_replace(struct sim *s);
void member_3_to_5(struct sim *s);
void member_churn(struct sim *s);
extern const unsigned sim_n_scenarios;

#endif
