/* wal_read.h - reading the log back by index: how a leader ships records a
 * follower lacks, old ones and new ones alike, straight from its segment
 * files (the page cache, usually) instead of keeping a backlog in memory.
 *
 * A reader hands out whole frames exactly as they are on disk (length, CRC,
 * payload), so the follower checks the leader's own checksums. It reads only
 * what wal_write has handed to the kernel, never the preallocated zeros. It
 * keeps its segment open, so a compaction that deletes that segment does not
 * pull the file from under it; a reader that needs a segment compaction has
 * already deleted fails, and the follower must then be sent a full copy. */
#ifndef STAGE_WAL_READ_H
#define STAGE_WAL_READ_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "wal.h"

typedef struct wal_reader {
    const wal *w;
    uint64_t next;      /* index of the next record to hand out */
    uint64_t seg_first; /* the open segment (first index), 0 when none */
    int fd;
    uint64_t off;       /* offset of record `next` in the open segment */
} wal_reader;

/* Positions r at record `next` (which must be > the base file's index and
 * <= the last written index + 1). Returns 0, or -1 after logging (the
 * segment is gone or damaged). */
int wal_reader_open(wal_reader *r, const wal *w, uint64_t next);
/* Appends whole frames, from r->next on, to out: at least one if any is
 * written, and no more than about max_bytes. *count receives how many.
 * Returns 0 (with *count 0 when the reader is at the end of what is
 * written), or -1 after logging. */
int wal_reader_read(wal_reader *r, kv_buf *out, size_t max_bytes, uint64_t *count);
void wal_reader_close(wal_reader *r);

#endif
