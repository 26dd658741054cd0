/* snapshot.h - the node's snapshots: taking one without stalling clients
 * (snapshot_write.c: fork, as Redis writes its RDB), keeping the two newest,
 * and loading the newest valid one at start-up (snapshot_load.c). The file
 * format is snapshot_file.h's.
 *
 * Taking one at applied index I (term T):
 *   1. (parent) fork. The child's memory is the store and session table
 *      exactly as of I: nothing applies between the fork and its return.
 *   2. (child) write snap/snap-I-T.snap.tmp, fsync it, exit 0.
 *   3. (parent, on SIGCHLD) rename it to snap-I-T.snap, fsync snap/, tell
 *      the core (raft_snapshot_done), delete all but the two newest.
 *   4. the core answers with Ready.compacted_to: WAL segments wholly at or
 *      below min(compacted_to, the previous snapshot's index) are deleted,
 *      so that a restart can still fall back to the previous snapshot if
 *      the newest turns out damaged.
 * A crash between any two steps restarts with nothing lost: before the
 * rename the WAL still holds everything; after it, the snapshot plus the
 * WAL after the previous snapshot does. Temp files are deleted at start. */
#ifndef STAGE_SNAPSHOT_H
#define STAGE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "raft.h"
#include "sessions.h"
#include "snapshot_file.h"
#include "store.h"
#include "peer.pb-c.h"

typedef struct node node;

/* One transfer of a snapshot file to a follower (snapshot_send.c). */
typedef struct snap_send {
    int fd;                 /* the file being sent; -1: no transfer */
    raft_index index;
    raft_term snap_term, term;
    uint64_t size, sent, acked;
    uint64_t progress_ms;   /* loop time of the last ack (or the start) */
    uint8_t conf[RAFT_MEMBERSHIP_MAX_BYTES]; /* the configuration at index, sent with the last chunk */
    size_t conf_len;
} snap_send;

/* The follower's side: the file being received (snapshot_send.c). */
typedef struct snap_recv {
    int fd;                 /* snap/recv.tmp; -1: none */
    raft_index index;
    raft_term snap_term;
    raft_term term;         /* the sending leader's term */
    uint64_t received;
    uint64_t progress_ms;   /* loop time of the last chunk */
    /* a received file, checked and loaded, waiting for the core's Ready to
     * say "install it" (owned; moved into the server on install) */
    int staged;
    raft_index staged_index;
    kv_store store;
    sessions table;
    snap_meta meta; /* the staged file's configuration and member addresses */
} snap_recv;

typedef struct snapshotter {
    char *dir;             /* <data-dir>/snap (owned) */
    uv_signal_t sigchld;
    int sig_ready;
    int child_pid;         /* > 0 while a child writes */
    raft_index index;      /* the running child's snapshot */
    raft_term term;
    /* the running child's configuration and member addresses; at start-up,
     * the loaded snapshot's (node.c restores them) */
    snap_meta meta;
    uint64_t started_ms;
    uint64_t writing_ms;   /* children's running time, the finished ones' */
    uint64_t fork_usec;    /* how long the last fork() held the loop (Redis: latest_fork_usec) */
    uint64_t *waiters;     /* SNAPSHOT clients (connection ids) waiting for the outcome */
    size_t nwaiters, waiters_cap;

    raft_index last_index; /* the newest durable snapshot (0: none) */
    raft_term last_term;
    raft_index prev_index; /* the one before it, kept as a fallback (0: none) */
    uint64_t last_bytes, last_ms;
    uint64_t taken, failed;
    uint64_t log_bytes_since; /* bytes of entries appended since the last snapshot began */
    uint64_t loaded_ms;       /* loading the snapshot at start-up took this long */
    const char *crash_at;     /* KV_TEST_CRASH_AT: a test's crash point (snapshot.c) */
    snap_send send[RAFT_MAX_NODES]; /* by member slot */
    snap_recv recv;
    uint64_t sent_ok, received_ok;  /* transfers completed, each side */
    raft_index reset_pending;       /* an install waits to empty the WAL: its next index */
    raft_term reset_term;
} snapshotter;

/* Creates <data-dir>/snap, removes temp files there, and loads the newest
 * valid snapshot into the store and session table (a damaged one is
 * renamed *.corrupt, named with its offset in the log, and the previous
 * one tried). *index, *term: the loaded one ((0, 0) when none). Returns 0,
 * or -1 after logging. */
int snapshot_load_at_start(node *n, raft_index *index, raft_term *term);

void snapshot_init_handles(node *n);
/* Starts a snapshot of the applied state. 0: started; 1: nothing new since
 * the last one; -1: one is already running, or the fork failed (logged). */
int snapshot_start(node *n);
/* Blocks conn c until the snapshot running now finishes, then replies. */
int snapshot_wait(node *n, uint64_t conn_id);
/* The tick: starts one when --snapshot-entries or --snapshot-bytes is passed. */
void snapshot_maybe_auto(node *n);
/* Ready.compacted_to: deletes the WAL segments it allows (see above). */
void snapshot_compact_log(node *n, raft_index compacted_to);
/* Shutdown: kills a running child and removes its temp file. */
void snapshot_abort(node *n);
/* Milliseconds snapshot writers have run in all, the running one included
 * (INFO raft_snapshot_writing_ms_total). */
uint64_t snapshot_writing_ms(const node *n);
void snapshot_free(node *n);

/* InstallSnapshot over the peer port (snapshot_send.c). */
/* Leader, from a Ready's RAFT_MSG_SNAPSHOT: starts streaming the file.
 * Returns 0, or -1 (no such file, no link): report the transfer failed. */
int snapshot_send_start(node *n, raft_id peer, raft_index index, raft_term snap_term, raft_term term,
                        const struct raft_membership *conf);
/* Leader: an acknowledgement from slot's node. */
void snapshot_send_on_ack(node *n, int slot, const Kv__SnapshotAck *a);
/* Follower: a chunk from slot's node. */
void snapshot_recv_on_chunk(node *n, int slot, const Kv__SnapshotChunk *c);
/* The tick: transfers with no progress for a while, or whose link went
 * down, are reported failed. */
void snapshot_send_tick(node *n);
/* Follower, the tick: a half-received file whose sender's term has passed,
 * or with no chunk for a while, is deleted (a new transfer starts over). */
void snapshot_recv_tick(node *n);
/* Follower, Ready step 2a: the snapshot at index replaces the store, the
 * session table and the log. */
void snapshot_install(node *n, raft_index index, raft_term term);
/* The between-syncs moment: an install's WAL reset. Returns 1 if it ran. */
int snapshot_reset_log(node *n);
/* Deletes every snapshot but the newest and the fallback. */
void snapshot_delete_old(node *n);
void snapshot_send_free(node *n);
/* Leadership lost: transfers stop (the core no longer waits for them). */
void snapshot_send_stop_all(node *n);

/* A test's crash point: "snapshot-child" (the child dies half way),
 * "snapshot-before-rename", "snapshot-after-rename" (before the directory
 * fsync), "snapshot-before-compact", "snapshot-mid-compact". The process
 * kills itself with SIGKILL there, as kill -9 would. */
void snapshot_crash_point(const node *n, const char *where);

#endif
