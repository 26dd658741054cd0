/* commit.c - the leader's commit rule: the highest index held durably by a
 * majority (its own log counts only as far as raft_persisted said), and only
 * if that entry is of the leader's current term (paper 5.4.2, Figure 8):
 * earlier-term entries commit indirectly, under the new term's no-op. */
#include <stdlib.h>

#include "raft_int.h"

static int desc(const void *a, const void *b) {
    raft_index x = *(const raft_index *)a, y = *(const raft_index *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

void commit_maybe_advance(struct raft *r) {
    if (r->role != RAFT_LEADER)
        return;
    raft_index m[RAFT_MAX_NODES];
    for (unsigned i = 0; i < r->n; i++)
        m[i] = (int)i == r->self_slot ? r->stable : r->pr[i].match;
    qsort(m, r->n, sizeof m[0], desc);
    raft_index n = m[r->quorum - 1];
    if (n <= r->commit)
        return;
    raft_term t;
    if (!log_term(&r->log, n, &t))
        return;
    if (t != r->term && !RAFT_BROKEN_COMMIT_OLD_TERM)
        return;
    r->commit = n;
    read_index_on_commit(r);
}
