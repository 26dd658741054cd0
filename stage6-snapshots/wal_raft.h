/* wal_raft.h - what Raft needs of the write-ahead log beyond stage 4's:
 * records that carry their Raft term, cutting a suffix off the log (a
 * follower whose uncommitted entries the leader overwrites), and reading
 * every record back with its term at start-up (raft_restore).
 *
 * The log's index is the Raft log index: record i holds entry i. Stage 6
 * deletes the segments a durable snapshot covers (wal_drop_prefix), so the
 * log may start after index 1: the snapshot it follows gives the term of
 * the entry just before its first one (snapshot.h). */
#ifndef STAGE_WAL_RAFT_H
#define STAGE_WAL_RAFT_H

#include <stddef.h>
#include <stdint.h>

#include "raft.h"
#include "wal.h"

/* Encodes entry e (its data a packed kv.Command, or nothing for a no-op)
 * into memory as the next record, which must be e->index. Returns 0, or -1
 * (out of memory, undecodable data, or an index out of sequence: logged). */
int wal_append_entry(wal *w, const struct raft_entry *e);

/* Removes every record with index >= from, on disk, durably (truncate,
 * unlink later segments, fdatasync, directory fsync). Writes what is
 * buffered first. Only while no fdatasync runs on the current segment.
 * Returns 0, or -1 with errno set. */
int wal_truncate_from(wal *w, uint64_t from);

/* Reads every record of the log back as Raft entries (index, term, type,
 * data = the packed Command); *out is malloc'd, each data too (free with
 * wal_free_entries). Returns 0, or -1 after logging. */
int wal_read_entries(const wal *w, struct raft_entry **out, size_t *n);
void wal_free_entries(struct raft_entry *e, size_t n);

/* Deletes segments whose every record has index <= upto, oldest first, at
 * most max_files of them (0: no limit); never the current segment. Each
 * unlink is followed by a directory fsync, so the files go oldest first
 * even across a crash (a gap would refuse the start). Returns how many were
 * deleted, or -1 with errno set. */
int wal_drop_prefix(wal *w, uint64_t upto, size_t max_files);

/* Empties the log so that the next record is `next` (a snapshot covers
 * everything before it): the segments are deleted and a new one begins at
 * next. Only while no fdatasync runs. Returns 0, or -1 with errno set. */
int wal_reset_to(wal *w, uint64_t next);

#endif
