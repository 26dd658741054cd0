/* snapshot_file.h - the snapshot file format: what a snapshot of the state
 * machine (every key, and the exactly-once session table) looks like on
 * disk, how one is written, and how one is read back and checked.
 *
 * Layout of <data-dir>/snap/snap-<index %016x>-<term %016x>.snap:
 *   "KVSNAP01"                       8-byte magic (the format's version)
 *   record*                          u32 BE length, u32 BE CRC32C of the
 *                                    payload, payload = kv.SnapshotRecord
 *     header                         index, term, key and session counts,
 *                                    the Raft configuration and member
 *                                    addresses at index
 *     key   (header.keys of them)
 *     session (header.sessions, in id order)
 *     trailer                        record count, CRC32C of every byte
 *                                    before the trailer record
 *   end of file                      nothing may follow the trailer
 * Each record's own CRC names the offset of damage; the trailer's count and
 * whole-file CRC catch a file cut at a record boundary or records missing.
 * A snapshot is accepted only whole: any doubt refuses the file. */
#ifndef STAGE_SNAPSHOT_FILE_H
#define STAGE_SNAPSHOT_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "sessions.h"
#include "store.h"

#define SNAP_MAGIC "KVSNAP01"
#define SNAP_MAGIC_LEN 8
#define SNAP_NAME_MAX 64

/* "snap-%016x-%016x.snap" for (index, term). */
void snap_file_name(char *out, size_t cap, uint64_t index, uint64_t term);
/* Parses a final snapshot name (not a temp file). Returns 1 and fills
 * index and term, or 0. */
int snap_parse_name(const char *name, uint64_t *index, uint64_t *term);

/* What a snapshot holds besides the data: the Raft configuration at its
 * index (raft_membership_encode; conf_len 0 = none) and the member address
 * table at that index ("ID=HOST:CLIENTPORT:PEERPORT,...", --cluster's
 * syntax; "" = none). */
#define SNAP_CONF_MAX 64
#define SNAP_MEMBERS_MAX 4096
typedef struct snap_meta {
    uint8_t conf[SNAP_CONF_MAX];
    size_t conf_len;
    char members[SNAP_MEMBERS_MAX];
} snap_meta;

/* Writes store and table (and meta, if not NULL) as the snapshot at (index, term) into path
 * (created, truncated), and fsyncs it. Runs in the forked child, but is an
 * ordinary function (the unit tests call it). At most rate bytes a second
 * reach the file (0: as fast as it can). Returns 0, or -1 with errno set.
 * *bytes gets the file's size. */
int snap_write_file(const char *path, uint64_t index, uint64_t term, const kv_store *store, const sessions *table,
                    const snap_meta *meta, uint64_t rate, uint64_t *bytes);

typedef struct snap_info {
    uint64_t index, term, keys, sessions, max_sessions, bytes;
    snap_meta meta;
} snap_info;

/* Reads and checks path; loads its keys into store and its sessions into
 * table (both empty, initialised by the caller). On any damage returns -1
 * with "offset N: why" in err (the caller names the file); store and table
 * then hold a part of the data, and the caller frees them. */
int snap_read_file(const char *path, kv_store *store, sessions *table, snap_info *info, char *err, size_t errlen);

#endif
