/* durability.h - when a write is safe to acknowledge.
 *
 * Writes are encoded into the WAL's memory buffer as commands run (appended,
 * in wal.h's words), and their replies are held. Once per loop iteration,
 * just before the loop waits for I/O, everything buffered is written to the
 * segment file in one pwrite (written). Then, by policy:
 *   always    one fdatasync on a worker thread covers every record written so
 *             far (group commit); when it returns those records are durable
 *             and their replies may go. Records arriving meanwhile wait for
 *             the next one. (A replication follower syncs on the loop thread
 *             instead: durability_sync_on_loop.)
 *   everysec  replies may go as soon as their records are written (a crash
 *             of the process cannot lose them any more); a 1-second timer
 *             starts an fdatasync if anything is not yet durable.
 *   no        replies may go once written; the kernel writes back when it likes.
 * A failed write or fdatasync is fatal: after a failed fsync the kernel may
 * have dropped the dirty pages, so continuing could acknowledge lost data.
 *
 * This module knows nothing of clients: it reports positions ("records up to
 * N are written", "... are durable") to whoever registered for them. The
 * server releases held replies on the event its policy names
 * (durability_ack_event); a replication leader (stage 4) or Raft (stage 5)
 * registers here too. */
#ifndef STAGE_DURABILITY_H
#define STAGE_DURABILITY_H

#include <stdint.h>
#include <uv.h>

#include "busy_poll.h"
#include "wal.h"

typedef enum fsync_policy { FSYNC_ALWAYS, FSYNC_EVERYSEC, FSYNC_NO } fsync_policy;

typedef enum durability_event {
    RECORDS_WRITTEN, /* handed to the kernel */
    RECORDS_DURABLE, /* on stable storage */
} durability_event;

typedef struct durability_hooks {
    void *ctx;
    /* Records up to upto have reached the position ev names; upto only
     * grows from one report of an event to the next. */
    void (*report)(void *ctx, durability_event ev, uint64_t upto);
    /* Once per loop iteration, after writing, while no fdatasync holds the
     * current segment: the moment a segment may be rotated (compaction
     * starts here, with durability_rotate). May be NULL. */
    void (*between_syncs)(void *ctx);
} durability_hooks;

/* Owned by durability.c; the rest of the server reads it through the
 * functions below. */
typedef struct durability {
    uv_loop_t *loop;
    wal *wal;                 /* not owned */
    kv_busy_poll *busy_poll;  /* not owned; told not to spin while a sync runs */
    fsync_policy policy;
    durability_hooks hooks;
    uv_prepare_t before_poll; /* writes buffered records once per loop iteration */
    uv_timer_t everysec;      /* under everysec: one fdatasync a second */
    uv_work_t sync_req;
    int sync_on_loop;         /* under always: fdatasync on the loop thread (durability_sync_on_loop) */
    int syncing;              /* an fdatasync is running on a worker thread */
    int sync_fd;
    int sync_err;
    uint64_t syncing_upto;    /* last record the running fdatasync covers */
    uint64_t written_upto;    /* last record reported written */
    uint64_t durable_upto;    /* last record known durable */
    uint64_t last_fsync_ms;   /* wall clock */
    uint64_t fsyncs;          /* fdatasyncs completed by the policy (INFO) */
} durability;

int durability_parse_policy(const char *name, fsync_policy *out);
const char *durability_policy_name(fsync_policy p);

/* Prepares d for a freshly opened WAL, whose records are all durable. */
void durability_init(durability *d, uv_loop_t *loop, wal *w, fsync_policy policy, kv_busy_poll *busy_poll,
                     durability_hooks hooks);
/* Starts the per-iteration write and the everysec timer. */
void durability_start(durability *d);
/* The event after which a write's reply may go under d's policy:
 * RECORDS_DURABLE for always, RECORDS_WRITTEN otherwise. */
durability_event durability_ack_event(const durability *d);
/* Closes the current segment now (it becomes durable) and starts a new
 * one. Only from the between_syncs hook. Returns 0, or -1 with errno set. */
int durability_rotate(durability *d);
/* The WAL now holds another log (a follower installed a full copy, which
 * may be shorter than the log it replaced): take its positions as they
 * are. Only from the between_syncs hook. */
void durability_restart(durability *d);
/* Under --fsync always, run each fdatasync on the loop thread instead of a
 * worker (on: 1), as Redis's appendfsync always does. Handing each sync to
 * a worker thread and back costs two context switches and more CPU than
 * the loop would do meanwhile; what arrives during the sync (client
 * commands, a leader's stream) waits in the socket and joins the next
 * sync, which is group commit all the same. The price: nothing is read,
 * not even a GET, while the disk works. Replicated nodes turn it on
 * (chapter 4.15.3: measured faster at 1 and at 50 clients); stages 2 and 3
 * keep the worker. */
void durability_sync_on_loop(durability *d, int on);
/* Writes and syncs everything now, whatever the policy, and trims the
 * segment's preallocated space (shutdown). Fatal on error. */
void durability_flush_now(durability *d);

static inline fsync_policy durability_policy(const durability *d) { return d->policy; }
static inline uint64_t durability_durable_upto(const durability *d) { return d->durable_upto; }
static inline uint64_t durability_last_fsync_ms(const durability *d) { return d->last_fsync_ms; }

#endif
