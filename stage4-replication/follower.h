/* follower.h - the follower's side of replication: one link to the leader,
 * reconnected after every drop. The follower says what it holds (history id
 * and last index); the leader answers with the records after that, or with
 * a full copy first. Records are checked (the leader's own CRCs, the index
 * sequence), written to this node's log at the leader's indexes and applied
 * in order, so the follower's log is always a prefix of the leader's. What
 * is safe on this node's disk (by its fsync policy) is acknowledged every
 * 100 ms, and as soon as it is safe when the leader asks (Records.ack_now:
 * a client is waiting in WAIT). */
#ifndef STAGE_FOLLOWER_H
#define STAGE_FOLLOWER_H

#include <stdint.h>

typedef struct repl repl;

/* Connects now if no link exists (and the retry delay has passed). */
void follower_connect(repl *r, uint64_t now_ms);
/* Closes the link to the leader (promotion, re-pointing, shutdown). */
void follower_disconnect(repl *r, const char *why);
/* Sends an Ack of what may be acknowledged now: on the heartbeat always,
 * otherwise only if it moved and the leader asked for it. */
void follower_ack(repl *r, int heartbeat);
/* A full copy was installed: carry on reading the link. */
void follower_copy_installed(repl *r, int ok);

#endif
