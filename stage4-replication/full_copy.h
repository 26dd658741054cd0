/* full_copy.h - a follower replacing its whole state with a copy of the
 * leader's, when it cannot continue the leader's log: it is new, it fell
 * behind the leader's compacted history, or it holds writes the leader
 * does not (an old leader coming back).
 *
 * The copy is received into a separate store while the old one keeps
 * serving reads. Once complete and checked (key count and digest), it is
 * written as the base file of a new log in <data-dir>/wal.incoming, with its
 * HISTORY, made durable, and swapped with <data-dir>/wal in one atomic
 * renameat2(RENAME_EXCHANGE). A crash before the swap leaves the old log; a
 * crash after it, the new one; start-up removes whatever wal.incoming holds
 * (the unfinished copy, or the old log). Never a mix of the two. */
#ifndef STAGE_FULL_COPY_H
#define STAGE_FULL_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "history.h"
#include "peer.pb-c.h"
#include "store.h"

typedef struct server server;

#define FULL_COPY_STAGING "wal.incoming"

typedef struct full_copy {
    int active;
    char history_id[HISTORY_ID_LEN + 1];
    uint64_t index;         /* the copy holds every write up to here */
    uint64_t expected_keys;
    kv_store store;         /* being filled (owned while active) */
    kv_digest digest;       /* of what arrived */
} full_copy;

/* FullCopyBegin. Returns 0, or -1 with why in err. */
int full_copy_begin(full_copy *fc, const Kv__FullCopyBegin *m, char *err, size_t errlen);
/* FullCopyChunk: adds its pairs. */
int full_copy_add(full_copy *fc, const Kv__FullCopyChunk *m, char *err, size_t errlen);
/* FullCopyEnd: checks the count and the digest against what arrived. */
int full_copy_check(const full_copy *fc, const Kv__FullCopyEnd *m, char *err, size_t errlen);
/* Makes the copy the node's log and state (see above). Run only between
 * fdatasyncs. On success the server's store, WAL and history are the
 * copy's and fc is inactive; on failure nothing changed and fc is discarded. */
int full_copy_install(server *srv, full_copy *fc);
/* Drops an unfinished copy. */
void full_copy_discard(full_copy *fc);
/* Start-up: removes <data-dir>/wal.incoming if a crash left one. */
int full_copy_cleanup(const char *data_dir);

#endif
