/* follower_read.h - bounded-staleness reads on a follower
 * (--follower-read-staleness-ms N).
 *
 * A linearizable read costs a leadership round on the leader (ReadIndex).
 * Some readers would rather ask any node and accept a bounded lag. A
 * follower may answer a read itself when both hold:
 *   - it heard from the current leader within N ms, and
 *   - it has applied everything that leader had told it was committed
 *     (raft_leader_commit: heartbeats carry the leader's own commit index).
 * Then the answer includes every write the leader had acknowledged when it
 * sent that message, at most N ms (plus one network delay) ago. It may miss
 * newer writes: a client can write on the leader and not see its own write
 * on a follower. Off (0) by default. */
#ifndef STAGE_FOLLOWER_READ_H
#define STAGE_FOLLOWER_READ_H

#include "node.h"

typedef enum follower_read_verdict {
    FOLLOWER_READ_OFF = 0,    /* the flag is 0: reads go to the leader */
    FOLLOWER_READ_OK,         /* serve it here */
    FOLLOWER_READ_NO_LEADER,  /* no leader known in this term */
    FOLLOWER_READ_STALE,      /* the leader was heard too long ago */
    FOLLOWER_READ_BEHIND,     /* not yet applied what the leader had committed */
} follower_read_verdict;

follower_read_verdict follower_read_check(const node *n, uint64_t now_ms);

#endif
