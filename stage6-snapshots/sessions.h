/* sessions.h - the exactly-once session table (Raft thesis 6.3): part of
 * the replicated state machine, like the store. A client registers a
 * session through the log (its id is that entry's index, the same on every
 * node) and tags each write with (id, seq). The table keeps, per session,
 * the last seq applied and the reply it got, so a retried write is answered
 * from the table instead of being applied twice.
 *
 * Everything here changes only when a committed entry applies, and depends
 * only on the entries (each opening entry carries the limit, max, that the
 * proposing leader was given): no clock, no randomness, no local flag. So every node holds the same table at the same
 * applied index. Expiry is by log position: when a new session would exceed
 * max, the session least recently used (the smallest index of the last
 * entry that named it) is evicted. Sessions are kept sorted by id (ids are
 * log indexes, so an open appends), which the iteration API exposes in that
 * order: stage 6 writes the table into snapshots with it. */
#ifndef STAGE_SESSIONS_H
#define STAGE_SESSIONS_H

#include <stddef.h>
#include <stdint.h>

typedef struct session {
    uint64_t id;        /* the log index of the entry that opened it */
    uint64_t last_seq;  /* the highest seq applied in it; 0: none yet */
    uint64_t last_used; /* log index of the last entry that named it (LRU key) */
    char *reply;        /* last_seq's reply, RESP bytes (owned); NULL while last_seq is 0 */
    size_t reply_len;
} session;

typedef struct session_stats {
    uint64_t opened, expired;     /* sessions registered; evicted to make room */
    uint64_t duplicates;          /* retries answered from the table */
    uint64_t stale, unknown;      /* seqs below the last; ids not (or no longer) in the table */
} session_stats;

typedef struct sessions {
    session *v; /* sorted by id */
    size_t n, cap;
    size_t max; /* at least 1: the limit of the last opening entry (the node's flag before any) */
    session_stats stats;
} sessions;

void sessions_init(sessions *t, size_t max);
void sessions_free(sessions *t);

/* Registers session id (the opening entry's index, higher than every id in
 * the table) under the limit max carried by that entry (0: keep t->max),
 * evicting the least recently used sessions first while the table is full.
 * Returns 0, or -1 when out of memory (the table is unchanged). */
int sessions_open(sessions *t, uint64_t id, size_t max);
/* The session with this id, or NULL (never opened, or expired). */
session *sessions_find(sessions *t, uint64_t id);
/* Records that seq applied at log index `index` with this reply (copied).
 * Returns 0, or -1 when out of memory (the session is unchanged). */
int sessions_record(session *s, uint64_t seq, uint64_t index, const char *reply, size_t len);

/* Iteration, in id order: for (size_t i = 0; i < sessions_count(t); i++) sessions_at(t, i). */
size_t sessions_count(const sessions *t);
const session *sessions_at(const sessions *t, size_t i);

#endif
