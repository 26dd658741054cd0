/* commit.c - the leader's commit rule: the highest index held durably by a
 * majority (its own log counts only as far as raft_persisted said), and only
 * if that entry is of the leader's current term (paper 5.4.2, Figure 8):
 * earlier-term entries commit indirectly, under the new term's no-op. */
#include "raft_int.h"

void commit_maybe_advance(struct raft *r) {
    if (r->role != RAFT_LEADER)
        return;
    raft_index n = membership_quorum_match(r); /* over the right configuration's voters */
    if (n <= r->commit)
        return;
    raft_term t;
    if (!log_term(&r->log, n, &t))
        return;
    if (t != r->term && !RAFT_BROKEN_COMMIT_OLD_TERM)
        return;
    r->commit = n;
    read_index_on_commit(r);
    membership_on_commit(r); /* a leader whose removal committed hands over */
}
