/* wal.h - the write-ahead log: segment files of framed records, recovery,
 * rotation, and the base file that compaction leaves behind.
 *
 * Layout under <data-dir>/wal/:
 *   0000000000000001.log   segments, named by the index of their first record;
 *                          the last one is preallocated and ends in zeros
 *   base-00000000000003e8.log   compacted live data covering indexes <= 0x3e8
 *   *.tmp                  unfinished work; deleted on start
 *
 * A record goes through three positions, one sequence of indexes for all:
 *   appended  wal_append encoded it into this process's memory: lost if the
 *             process dies. Up to next_index - 1.
 *   written   wal_write handed it to the kernel with pwrite: survives the
 *             process dying, not the machine. Up to wal_written_upto().
 *   durable   an fdatasync of its segment returned: survives a power cut.
 *             The WAL does not track this; whoever syncs does (durability.c).
 * The WAL itself never syncs behind the caller's back except at rotation, so
 * the caller decides the fsync policy.
 *
 * The code is cut by operation: wal_recovery.c (open and replay),
 * wal_append.c (append, write, preallocate, rotate, trim, sync), wal_base.c
 * (compaction's base file), wal_files.c (names and shared file operations).
 * Everything runs on the loop thread except wal_write_base (run in a forked
 * child) and the fdatasync the server runs on a worker thread against
 * wal_fd(). */
#ifndef STAGE_WAL_H
#define STAGE_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "kv.pb-c.h"
#include "store.h"

typedef int (*wal_apply_fn)(void *ctx, const Kv__Command *cmd);

typedef struct wal_segment {
    uint64_t first; /* index of its first record */
    uint64_t bytes;
} wal_segment;

typedef struct wal_replay_stats {
    uint64_t records;
    uint64_t bytes;
    double seconds;
} wal_replay_stats;

typedef struct wal {
    char *dir;              /* <data-dir>/wal, owned */
    int dirfd;
    int fd;                 /* the segment being appended to */
    size_t segment_limit;   /* rotate past this many bytes */
    wal_segment *segs;      /* live segments, oldest first; the last is current (owned) */
    size_t nsegs, segs_cap;
    uint64_t base_index;    /* records <= this live in the base file (0: none) */
    uint64_t base_bytes;
    uint64_t next_index;    /* index the next append gets */
    uint64_t written_upto;  /* last record handed to the kernel (pwrite) */
    kv_buf pending;         /* encoded records not yet written to fd */
    kv_buf last_write;      /* the bytes the last wal_write handed to the kernel, kept until the next one */
    uint64_t last_write_seg; /* ... the segment they went to (its first index) and their offset in it */
    uint64_t last_write_off;
    uint64_t alloc_end;     /* size of the current segment's file: data, then preallocated zeros */
    int no_prealloc;        /* preallocation failed once; do without */
} wal;

/* Opens (creating if needed) <data_dir>/wal, replays base and segments
 * through apply, truncates a torn tail, and readies the log for appending.
 * On corruption or I/O error it logs why (file and offset) and returns -1
 * having modified nothing on disk and holding nothing in memory. */
int wal_open(wal *w, const char *data_dir, size_t segment_limit, wal_apply_fn apply, void *ctx,
             wal_replay_stats *stats);
void wal_close(wal *w);

/* Encodes cmd as the next record into memory. Returns its index, or 0 when
 * memory runs out. Nothing reaches the file until wal_write. */
uint64_t wal_append(wal *w, const Kv__Command *cmd);
/* Appends one whole frame as the next record, exactly as given: a
 * replication follower logging its leader's record, already checked (CRC,
 * index == next_index), without decoding and encoding it again. Returns its
 * index, or 0 when memory runs out. */
uint64_t wal_append_frame(wal *w, const void *frame, size_t len);
/* Writes pending records to the current segment (page cache, not yet
 * durable). Returns 0, or -1 with errno set. */
int wal_write(wal *w);
/* Index of the last record handed to the kernel. */
static inline uint64_t wal_written_upto(const wal *w) { return w->written_upto; }
static inline int wal_has_pending(const wal *w) { return kv_buf_readable(&w->pending) > 0; }
static inline int wal_fd(const wal *w) { return w->fd; }
/* The last wal_write's bytes stay in memory until the next wal_write (the
 * buffers are swapped, not copied): a replication leader ships a caught-up
 * follower the records it just wrote from here instead of reading them back
 * from the file. They are whole frames, at offset last_write_off of the
 * segment starting at index last_write_seg. Memory stays bounded: one
 * loop iteration's records, as pending already was. */
static inline const kv_buf *wal_last_write(const wal *w) { return &w->last_write; }

/* Starts a new segment if the current one is past the limit. Call only
 * after wal_write and while no fdatasync is running on the current fd.
 * Returns 0, or -1 with errno set. */
int wal_rotate_if_full(wal *w);
/* Starts a new segment now unless the current one is empty (same rules).
 * Afterwards every record before wal_current_first(w) is in older files. */
int wal_rotate(wal *w);
static inline uint64_t wal_current_first(const wal *w) { return w->segs[w->nsegs - 1].first; }
/* Cuts the current segment's preallocated zeros off, so that its file holds
 * exactly its records (rotation; clean shutdown, so a stopped server's files
 * are what a reader expects). Durable after the next sync. Returns 0, or -1
 * with errno set. */
int wal_trim(wal *w);
/* fdatasync of the current segment, on the calling thread (shutdown). */
int wal_sync_now(wal *w);

uint64_t wal_total_bytes(const wal *w);
size_t wal_file_count(const wal *w);

/* Compaction, step 1 (child process): writes every key in store as a SET
 * record into <dir>/base-<upto>.log.tmp and fsyncs it. Returns 0 or -1. */
int wal_write_base(const char *dir, uint64_t upto, const kv_store *store);
/* Compaction, step 2 (parent): renames the finished temp file into place,
 * fsyncs the directory, then deletes the segments and older base it covers.
 * A crash between any two steps leaves a directory that recovers to the
 * same data: before the rename the old files are complete; after it, the
 * new base plus the segments after upto are. Returns 0 or -1. */
int wal_install_base(wal *w, uint64_t upto);
/* Removes a temp file left by a failed compaction. */
void wal_discard_base(const char *dir, uint64_t upto);

#endif
