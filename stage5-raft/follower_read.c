/* follower_read.c - may this follower answer a read itself? (follower_read.h) */
#include "follower_read.h"

follower_read_verdict follower_read_check(const node *n, uint64_t now_ms) {
    if (n->follower_read_staleness_ms == 0) return FOLLOWER_READ_OFF;
    const struct raft *r = n->raft;
    raft_id leader = raft_leader(r);
    if (raft_role(r) != RAFT_FOLLOWER || leader == 0) return FOLLOWER_READ_NO_LEADER;
    const node_addr *a = node_member(n, leader);
    uint64_t heard = a ? n->last_heard_ms[a - n->members] : 0;
    /* last_heard_ms counts any message from that node; in this term the
     * leader sends us only appends and heartbeats. */
    if (heard == 0 || now_ms - heard > n->follower_read_staleness_ms) return FOLLOWER_READ_STALE;
    raft_index announced = raft_leader_commit(r);
    if (announced == 0 || raft_applied_index(r) < announced) return FOLLOWER_READ_BEHIND;
    return FOLLOWER_READ_OK;
}
