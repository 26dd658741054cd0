/* read_index.c - linearizable reads without writing the log (thesis 6.4):
 * the leader notes its commit index (once it has committed an entry of its
 * own term), confirms it is still leader by a heartbeat round answered by a
 * majority, and the read may be served once that index is applied. */
#include <stdlib.h>

#include "raft_int.h"

static bool committed_in_term(const struct raft *r) {
    raft_term t;
    return log_term(&r->log, r->commit, &t) && t == r->term;
}

int raft_read_index(struct raft *r, uint64_t ctx) {
    if (r->role != RAFT_LEADER)
        return RAFT_ERR_NOT_LEADER;
    if (r->n_reads == r->cap_reads) {
        size_t cap = r->cap_reads ? r->cap_reads * 2 : 8;
        struct raft_pending_read *p = realloc(r->reads, cap * sizeof *p);
        if (!p)
            return RAFT_ERR_NOMEM;
        r->reads = p;
        r->cap_reads = cap;
    }
    /* A new round: only heartbeats sent from now on can confirm this read. */
    r->reads[r->n_reads++] = (struct raft_pending_read){
        .ctx = ctx, .seq = ++r->read_seq, .index = committed_in_term(r) ? r->commit : 0};
    return RAFT_OK;
}

void read_index_on_commit(struct raft *r) {
    /* The first commit of this term covers everything committed before the
     * reads waiting for it were asked. */
    for (size_t i = 0; i < r->n_reads; i++)
        if (r->reads[i].index == 0)
            r->reads[i].index = r->commit;
}

static bool confirmed(const struct raft *r, uint64_t seq) {
    uint32_t acks = 1u << r->self_slot;
    for (unsigned i = 0; i < r->n; i++)
        if ((int)i != r->self_slot && r->pr[i].read_ack >= seq)
            acks |= 1u << i;
    return membership_quorum(r, acks) || RAFT_BROKEN_READ_INDEX; /* learners' acks do not count */
}

void read_index_collect(struct raft *r) {
    if (r->role != RAFT_LEADER)
        return;
    size_t keep = 0;
    for (size_t i = 0; i < r->n_reads; i++) {
        struct raft_pending_read *p = &r->reads[i];
        if (p->index == 0 || p->index > r->applied || !confirmed(r, p->seq)) {
            r->reads[keep++] = *p;
            continue;
        }
        if (r->n_reads_out == r->cap_reads_out) {
            size_t cap = r->cap_reads_out ? r->cap_reads_out * 2 : 8;
            struct raft_read *o = realloc(r->reads_out, cap * sizeof *o);
            if (!o) {
                r->reads[keep++] = *p; /* try again at the next Ready */
                continue;
            }
            r->reads_out = o;
            r->cap_reads_out = cap;
        }
        r->reads_out[r->n_reads_out++] = (struct raft_read){.ctx = p->ctx, .index = p->index};
    }
    r->n_reads = keep;
}

void read_index_drop_all(struct raft *r) { r->n_reads = 0; }
