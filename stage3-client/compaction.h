/* compaction.h - rewrites the log as just the live data, without stopping
 * clients, the way Redis rewrites its AOF: fork, and let the child write the
 * copy-on-write snapshot of the store while the parent keeps serving and
 * appending to a fresh segment. */
#ifndef STAGE_COMPACTION_H
#define STAGE_COMPACTION_H

typedef struct server server;

/* COMPACT: asks for a compaction. Returns 0 if one starts (or will start
 * within this loop iteration), 1 if one is already running, 2 if there is
 * nothing to compact. */
int compaction_request(server *srv);
/* Called by the durability pump when no fdatasync is in flight. */
void compaction_begin(server *srv);
/* Called once a second: starts a compaction when the log is larger than
 * --compact-min-bytes and twice the live data. */
void compaction_check(server *srv);
/* Shutdown: stops a running child and removes its temp file. */
void compaction_abort(server *srv);

#endif
