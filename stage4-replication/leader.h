/* leader.h - the leader's side of replication: the followers it serves on
 * the peer port. For each: a handshake (Hello, the cluster secret's
 * challenge, SyncRequest), then either "continue from index N" or a full
 * copy of the state at an index, then the log from there on, read back from
 * the leader's own segment files, as fast as the follower takes it.
 *
 * Memory per follower is bounded by design: records are read from disk only
 * while the follower's link has less than FEED_HIGH_WATER bytes unsent, so
 * a follower that stops reading just stops being sent to. One that sends no
 * Ack for --follower-timeout seconds is dropped; it resumes from its log
 * when it comes back.
 *
 * Followers ack on their 100 ms heartbeat, and sooner only when a Records
 * message says ack_now: the leader sets it while WAITs are being used, and
 * sends an empty one when a WAIT blocks on records already sent. An ack per
 * batch for nobody cost each write a message and two wake-ups per follower
 * (notes 4.15). */
#ifndef STAGE_LEADER_H
#define STAGE_LEADER_H

#include <stdint.h>

#include "buf.h"
#include "digest.h"
#include "peer_auth.h"
#include "peer_link.h"
#include "wal_read.h"

typedef struct repl repl;
typedef struct follower follower;

typedef enum follower_state {
    FOLLOWER_HELLO,     /* waiting for its Hello */
    FOLLOWER_AUTH,      /* it must answer our challenge, then we answer its */
    FOLLOWER_SYNC,      /* waiting for its SyncRequest */
    FOLLOWER_COPYING,   /* sending it a full copy */
    FOLLOWER_STREAMING, /* sending it records */
} follower_state;

struct follower {
    peer_link link;
    repl *r;
    follower_state state;
    char id[64]; /* its client address, from its Hello */
    unsigned char nonce[KV_AUTH_NONCE_LEN];
    int proved;  /* it answered our challenge */
    uint64_t acked;        /* highest index it acknowledged */
    uint64_t last_ack_ms;  /* loop time */
    /* When the oldest record it has not acknowledged was written (lag in ms),
     * latched so it stays right after the samples it came from roll over. */
    int lag_known;
    uint64_t lag_since_ms;
    uint64_t asked_upto;   /* the last index a Records with ack_now covered */
    wal_reader reader;     /* the next record to send it */
    int reader_open;
    kv_buf batch;          /* frames for one Records message */
    /* a full copy in progress: the base file, mapped */
    const unsigned char *copy_map;
    size_t copy_size, copy_off;
    uint64_t copy_index;
    kv_digest copy_digest;
    struct follower *prev, *next;
};

/* Starts listening on the peer port. */
int leader_listen(repl *r);
/* New records are written: send them to every streaming follower. */
void leader_feed_all(repl *r);
/* A WAIT blocks until followers ack index: ask those that were sent it
 * without ack_now to ack now, and flag every Records for a while (see
 * WAIT_EAGER_ACKS_MS in leader.c). */
void leader_want_acks(repl *r, uint64_t index);
/* Closes every follower link (demotion, shutdown). */
void leader_drop_all(repl *r, const char *why);
/* Once per tick: drops followers silent for longer than the timeout. */
void leader_check_timeouts(repl *r, uint64_t now_ms);
/* f acknowledged more: recompute when its oldest unacknowledged record was written. */
void leader_note_ack(repl *r, follower *f);
/* Lag of f behind the leader's log, in records and milliseconds. */
uint64_t leader_lag_records(const repl *r, const follower *f);
uint64_t leader_lag_ms(const repl *r, const follower *f, uint64_t now_ms);
/* Remembers when the records up to upto were written (for lag in ms). */
void leader_note_written(repl *r, uint64_t upto, uint64_t now_ms);
const char *follower_state_name(follower_state s);

#endif
