/* durability.h - when a write is safe to acknowledge.
 *
 * Writes are encoded into the WAL's memory buffer as commands run, and the
 * replies to them are held. Once per loop iteration, just before the loop
 * waits for I/O, everything buffered is written to the segment file in one
 * write(2). Then, by policy:
 *   always    one fdatasync on a worker thread covers every record written so
 *             far (group commit); replies held for those records are released
 *             when it returns. Records arriving meanwhile wait for the next one.
 *   everysec  replies are released as soon as their records are written (a
 *             crash of the process cannot lose them any more); a 1-second
 *             timer starts an fdatasync if anything is unsynced.
 *   no        replies released once written; the kernel writes back when it likes.
 * A failed write or fdatasync is fatal: after a failed fsync the kernel may
 * have dropped the dirty pages, so continuing could acknowledge lost data. */
#ifndef STAGE_DURABILITY_H
#define STAGE_DURABILITY_H

#include <stdint.h>

typedef struct server server;
typedef struct conn conn;

typedef enum fsync_policy { FSYNC_ALWAYS, FSYNC_EVERYSEC, FSYNC_NO } fsync_policy;

int durability_parse_policy(const char *name, fsync_policy *out);
const char *durability_policy_name(fsync_policy p);

/* Starts the per-iteration hook and the 1-second timer. */
void durability_start(server *srv);
/* A write command by c was logged as record idx: hold c's replies until
 * the record is written (everysec, no) or on disk (always). */
void durability_note_write(server *srv, conn *c, uint64_t idx);
/* Writes and syncs everything now, whatever the policy, and trims the
 * segment's preallocated space (shutdown). Fatal on error. */
void durability_flush_now(server *srv);

#endif
