/* history.h - which history a node's log belongs to (Redis's replication id).
 *
 * Two logs with the same history id agree record for record up to the
 * shorter one's end: they were written by one leader, or copied from it. A
 * leader starts a new history whenever it starts or is promoted, because
 * only then can it be sure no follower holds records it does not: a leader
 * that crashed may have lost a tail of writes its followers received, and a
 * promoted follower may lack writes another follower got. The new history
 * remembers the one before it and the index where that one ended for this
 * node (Redis's replid2 and second_repl_offset): a follower of the old
 * history holding no more than that can continue without a full copy.
 *
 * Stored in <data-dir>/wal/HISTORY, replaced atomically (temp file, fsync,
 * rename, directory fsync), so the log and the history id it belongs to are
 * swapped together when a full copy replaces the whole directory. */
#ifndef STAGE_HISTORY_H
#define STAGE_HISTORY_H

#include <stdint.h>

#define HISTORY_ID_LEN 40 /* hex digits */
#define HISTORY_FILE "HISTORY"

typedef struct history {
    char id[HISTORY_ID_LEN + 1];      /* "" for a node that has never held data */
    char prev_id[HISTORY_ID_LEN + 1]; /* the history before this one, or "" */
    uint64_t prev_end;                /* last index of prev_id this node's log holds */
} history;

/* Reads wal_dir/HISTORY. A missing file is an empty history (a fresh node,
 * or one from before stage 4). Returns 0, or -1 after logging (a damaged file). */
int history_load(const char *wal_dir, history *h);
/* Writes h to wal_dir/HISTORY atomically. Returns 0, or -1 after logging. */
int history_save(const char *wal_dir, const history *h);
/* A new history continuing from h at index last: fresh random id, h's id
 * becomes the previous one. Returns 0, or -1 when no randomness is available. */
int history_begin_new(history *h, uint64_t last);
/* Whether a log on history `id` holding up to `last` is a prefix of this
 * node's log, which holds up to `my_last`. */
int history_is_prefix(const history *h, uint64_t my_last, const char *id, uint64_t last);

#endif
