/* node.h - a Raft node: the pure core (raft/raft.h) wired to this server's
 * clock, disk, network and clients. Start here.
 *
 *   clock     a libuv timer calls raft_tick every --heartbeat-ms.
 *   disk      (term, vote) in RAFT_STATE (hard_state.h), written before any
 *             message of the same Ready leaves; entries in the WAL with their
 *             term (wal_raft.h). raft_persisted is called when the durability
 *             module reports the records durable (--fsync always: after the
 *             fdatasync; everysec/no: once written, which is weaker than Raft
 *             assumes). A truncation waits for the moment no fdatasync holds
 *             the log (durability's between_syncs hook), so that a sync of
 *             the old entries can never be reported as a sync of new ones.
 *   network   peers.c: one outgoing link to every other node.
 *   clients   a write is proposed, its client blocked until the entry is
 *             applied (then the reply is the one the state machine computed,
 *             state_machine.h) or fails. The error says what the client may
 *             do next: -NOTLEADER only when the write certainly did not
 *             apply (this node never proposed it, or another leader's entry
 *             took its index), so sending it elsewhere is safe; -TRYAGAIN
 *             when its outcome is unknown (no commit within
 *             --write-timeout-ms, or leadership lost while it was pending):
 *             it may still commit, and only a session (sessions.h) makes
 *             sending it again safe.
 *             GET/EXISTS/DBSIZE are linearizable: raft_read_index on the
 *             leader, the command runs when the core says the read point is
 *             applied. Followers answer -NOTLEADER leader=HOST:PORT.
 *
 * The store changes only when an entry commits: the log is replayed into
 * the store by the core handing committed entries out again after a restart.
 *
 * Re-entrancy: nothing may call into the core between raft_ready and
 * raft_advance. Unblocking a client runs its buffered requests (which
 * propose), so clients are unblocked only after raft_advance, and commands
 * never run the Ready loop inline: they kick an idle handle. */
#ifndef STAGE_NODE_H
#define STAGE_NODE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "peer_auth.h"
#include "buf.h"
#include "raft.h"
#include "sessions.h"
#include "snapshot.h"
#include "slice.h"

typedef struct server server;
typedef struct conn conn;
typedef struct peer_conn peer_conn;

typedef struct node_addr {
    raft_id id;
    char host[64];
    int client_port;
    int peer_port; /* 0: none (a one-node cluster needs no peer port) */
} node_addr;

/* Parses "1=HOST:CLIENTPORT:PEERPORT,2=...". Returns 0, or -1 with a reason in err. */
int node_parse_cluster(const char *spec, node_addr *out, unsigned *n, char *err, size_t errlen);

typedef enum pending_kind { PENDING_WRITE = 1, PENDING_READ = 2 } pending_kind;

/* A client blocked on the core: its connection is found by id, since it
 * may close while it waits. */
typedef struct pending {
    uint64_t conn_id;
    pending_kind kind;
    raft_index index; /* write: the proposal's index and term */
    raft_term term;
    uint64_t ctx;     /* read: raft_read_index's tag */
    uint64_t deadline_ms;
    kv_slice *argv;   /* read: the command, copied (owned) */
    size_t argc;
} pending;

typedef struct node_stats {
    uint64_t msgs_sent, msgs_received, msgs_dropped, bad_messages;
    uint64_t elections_won, truncations;
    uint64_t reads_leader;   /* served on the leader after a ReadIndex round */
    uint64_t reads_follower; /* served here as a follower (follower_read.h) */
    uint64_t reads_refused;  /* a follower read refused: stale, behind or no leader */
    uint64_t writes_timed_out;      /* -TRYAGAIN no quorum */
    uint64_t writes_leadership_lost; /* -TRYAGAIN leadership lost */
    uint64_t writes_displaced;      /* -NOTLEADER: another leader's entry took the index */
} node_stats;

typedef struct node {
    server *srv;
    struct raft *raft;
    raft_id self;
    node_addr members[RAFT_MAX_NODES];
    unsigned nmembers;
    uint64_t heartbeat_ms;
    uint64_t write_timeout_ms;
    uint64_t follower_read_staleness_ms; /* 0: reads only on the leader */
    kv_secret secret; /* --cluster-secret-file; len 0: peers are not authenticated */
    uv_timer_t tick;
    uv_idle_t kick;             /* runs the Ready loop soon after a command touched the core */
    int ticking;

    /* peers.c */
    uv_tcp_t peer_listener;
    int peer_listening;
    peer_conn *out[RAFT_MAX_NODES];      /* by member slot; NULL between dial attempts */
    uint64_t next_dial_ms[RAFT_MAX_NODES];
    uint64_t dial_backoff_ms[RAFT_MAX_NODES];
    uint64_t last_heard_ms[RAFT_MAX_NODES]; /* loop time of the last message from that node */
    peer_conn *incoming;                 /* accepted links, a list */

    /* appended, not yet reported persisted: (index, term) in order */
    struct { raft_index index; raft_term term; } *unsynced;
    size_t nunsynced, unsynced_cap;
    /* a truncation waiting for no fdatasync to hold the log, and the
     * entries that follow it (owned copies) */
    raft_index truncate_pending;
    struct raft_entry *held;
    size_t nheld, held_cap;

    pending *pend;
    size_t npend, pend_cap;
    uint64_t next_ctx;
    uint64_t serving_conn; /* the read whose turn it is runs locally */
    uint64_t *unblock;     /* connections to unblock after raft_advance */
    size_t nunblock, unblock_cap;

    sessions sessions; /* the exactly-once table: state machine, like the store */
    raft_index applied_index; /* what the store and the table hold (a snapshot's base, then entries) */
    raft_term applied_term;
    snapshotter snap;  /* snapshot.h */
    /* the configuration as of applied_index (cluster.c diffs each CONFIG
     * entry applied against it) */
    struct raft_membership applied_conf;
    /* snapshot transfers the core asked for and this server cannot make
     * yet (InstallSnapshot over the peer port): reported failed after
     * raft_advance */
    struct { raft_id peer; raft_index index; } unsent[RAFT_MAX_NODES];
    unsigned nunsent;
    raft_index unsent_logged[RAFT_MAX_NODES]; /* by member slot: the last one logged */
    kv_buf reply;      /* scratch: the reply of the entry being applied */

    int processing, again, stopped;
    node_stats stats;
    /* the commit log line (node.c, log_commit): at most one per
     * COMMIT_LOG_MS; the tick writes a pending one once that has passed */
    raft_index commit_seen, commit_logged;
    raft_term commit_seen_term;
    uint64_t commit_logged_ms;
} node;

/* Loads (term, vote) and the log, builds the core, listens on the peer
 * port, starts ticking. The store is empty until entries commit. Logs and
 * returns -1 on failure. */
int node_init(server *srv, node *n);
void node_stop(node *n);
void node_free(node *n);

/* Runs the Ready loop until the core has nothing to say. */
void node_process(node *n);
/* Asks for node_process on the next loop iteration (from command handlers). */
void node_kick(node *n);

/* The durability module's report that records up to upto may count as persisted. */
void node_on_persisted(node *n, uint64_t upto);
/* The durability module's between_syncs moment: a pending truncation runs. */
void node_between_syncs(node *n);

/* Client side (commands.c). */
/* Writes "NOTLEADER leader=HOST:PORT" (or leader=unknown) into buf. */
void node_notleader_text(const node *n, char *buf, size_t cap);
int node_is_leader(const node *n);
/* Proposes the packed command; blocks c until it applies, then replies
 * what the state machine computed. -1: an error reply was written. */
int node_propose(node *n, conn *c, const void *data, size_t len);
/* Blocks c until the entry proposed at (index, term) applies, then replies
 * what applying it wrote (cluster.c's changes). */
void node_wait_entry(node *n, conn *c, raft_index index, raft_term term);
/* Starts a linearizable read of argv for c (copied); blocks c. -1: an error reply was written. */
int node_read_begin(node *n, conn *c, const kv_slice *argv, size_t argc);
/* True while c's read is being served (commands.c then runs it locally). */
int node_serving(const node *n, const conn *c);

const node_addr *node_member(const node *n, raft_id id);
/* The member address table in --cluster's syntax (what a snapshot keeps). */
void node_members_text(const node *n, char *buf, size_t cap);

#endif
