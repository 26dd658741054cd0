/* wal_files.h - what the WAL's files are called and the small file
 * operations recovery, appending and compaction share (wal_files.c).
 * Internal to the WAL: the server includes wal.h only. */
#ifndef STAGE_WAL_FILES_H
#define STAGE_WAL_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "wal.h"

#define WAL_NAME_MAX 80

/* "%016x.log": a segment, named after the index of its first record. */
void wal_segment_name(char *out, size_t cap, uint64_t first);
/* "base-%016x.log": compacted live data covering records <= upto. */
void wal_base_name(char *out, size_t cap, uint64_t upto);
/* dir + "/" + name, malloc'd (NULL when memory runs out). */
char *wal_path_join(const char *dir, const char *name);

/* What the WAL directory holds, sorted; every array owned by the listing. */
typedef struct wal_listing {
    uint64_t *segs; /* first indexes of segments, ascending */
    size_t nsegs;
    uint64_t *bases; /* indexes covered by base files, ascending */
    size_t nbases;
    char **tmps; /* names of temp files left by unfinished work */
    size_t ntmps;
} wal_listing;

/* Lists dir. Returns 0, or -1 after logging why, holding nothing (on
 * failure the listing is freed and zeroed). */
int wal_list_dir(const char *dir, wal_listing *l);
void wal_listing_free(wal_listing *l);

/* Appends a segment to w's table. Returns 0, or -1 when memory runs out. */
int wal_push_segment(wal *w, uint64_t first, uint64_t bytes);
/* Opens segment first in w's directory for writing; create makes a new
 * file and makes its name durable. Returns the fd, or -1 after logging. */
int wal_open_segment(wal *w, uint64_t first, int create);
/* Unlinks name in w's directory; a failure is logged, not fatal (the
 * file is garbage that the next start removes). */
void wal_remove_file(wal *w, const char *name);

int wal_pwrite_all(int fd, const char *p, size_t n, uint64_t off);
int wal_fsync_dir(int dirfd);

#endif
