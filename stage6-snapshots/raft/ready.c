/* ready.c - the output contract (see raft.h): gathers what the host must
 * persist, send, apply and serve, and forgets it on raft_advance. */
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

bool raft_ready(struct raft *r, struct raft_ready *rd) {
    replication_flush(r);
    replication_release_held(r);
    read_index_collect(r);
    memset(rd, 0, sizeof *rd);

    rd->term = r->term;
    rd->vote = r->vote;
    rd->hard_state_changed = r->term != r->hs_term || r->vote != r->hs_vote;

    rd->snapshot_index = r->install_index;
    rd->snapshot_term = r->install_term;
    if (r->install_index)
        rd->snapshot_conf = r->install_conf;
    rd->compacted_to = r->pending_compact;
    rd->truncate_from = r->pending_trunc;
    raft_index last = log_last_index(&r->log);
    if (r->unstable <= last) {
        rd->entries = log_get(&r->log, r->unstable);
        rd->n_entries = last - r->unstable + 1;
    }

    rd->messages = r->out;
    rd->n_messages = r->n_out;

    raft_index to = r->commit < r->stable ? r->commit : r->stable;
    r->ready_apply_to = r->apply_next;
    if (to > r->apply_next) {
        rd->committed = log_get(&r->log, r->apply_next + 1);
        rd->n_committed = to - r->apply_next;
        r->ready_apply_to = to;
    }

    rd->reads = r->reads_out;
    rd->n_reads = r->n_reads_out;

    rd->role = r->role;
    rd->leader = r->leader;
    rd->soft_changed = r->role != r->soft_role || r->leader != r->soft_leader ||
                       r->term != r->soft_term;

    return rd->hard_state_changed || rd->snapshot_index || rd->compacted_to || rd->truncate_from || rd->n_entries || rd->n_messages ||
           rd->n_committed || rd->n_reads || rd->soft_changed;
}

void raft_advance(struct raft *r) {
    r->hs_term = r->term;
    r->hs_vote = r->vote;
    r->pending_trunc = 0;
    r->install_index = 0;
    r->install_term = 0;
    r->pending_compact = 0;
    r->unstable = log_last_index(&r->log) + 1;
    r->apply_next = r->ready_apply_to;
    for (size_t i = 0; i < r->n_out; i++) {
        for (size_t j = 0; j < r->out[i].n_entries; j++)
            free(r->out[i].entries[j].data);
        free(r->out[i].entries);
    }
    r->n_out = 0;
    r->n_reads_out = 0;
    r->soft_role = r->role;
    r->soft_leader = r->leader;
    r->soft_term = r->term;
}
