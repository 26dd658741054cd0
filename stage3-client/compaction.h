/* compaction.h - rewrites the log as just the live data, without stopping
 * clients, the way Redis rewrites its AOF: fork, and let the child write the
 * copy-on-write snapshot of the store while the parent keeps serving and
 * appending to a fresh segment. */
#ifndef STAGE_COMPACTION_H
#define STAGE_COMPACTION_H

#include <stdint.h>
#include <uv.h>

typedef struct server server;

/* Owned by compaction.c. */
typedef struct compaction {
    uv_signal_t sigchld;  /* the child finished */
    uv_timer_t check;     /* once a second: is the log worth compacting? */
    int requested;        /* start at the next between-syncs moment */
    int child_pid;        /* > 0 while a child writes the base file */
    uint64_t upto;        /* the running child's base covers records <= upto */
    uint64_t started_ms;
    uint64_t done;        /* compactions completed since start */
} compaction;

typedef enum compaction_request_result {
    COMPACTION_STARTED,         /* starts within this loop iteration */
    COMPACTION_ALREADY_RUNNING,
    COMPACTION_NOTHING_TO_DO,   /* no record since the last base */
} compaction_request_result;

/* Sets up the handles (the check timer runs from now on). */
void compaction_init(server *srv);
/* COMPACT, or the automatic check: asks for a compaction. */
compaction_request_result compaction_request(server *srv);
/* The durability module's between-syncs moment: starts a requested
 * compaction (its first step rotates the current segment). */
void compaction_between_syncs(server *srv);
/* Stops a running child and removes its temp file (shutdown; in stage 4
 * also a follower replacing its whole log). why starts the log line. */
void compaction_abort(server *srv, const char *why);

static inline int compaction_in_progress(const compaction *c) { return c->child_pid > 0 || c->requested; }

#endif
