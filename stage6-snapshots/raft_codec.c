/* raft_codec.c - struct raft_msg to and from the RaftMessage protobuf
 * (common/proto/peer.proto), field for field: stage 6 adds the vote's
 * transfer flag, TIMEOUT_NOW and CONFIG entries. */
#include <stdlib.h>
#include <string.h>

#include "peers.h"

/* One allocation holds the entry pointers and the entries. */
int raft_codec_encode(const struct raft_msg *m, Kv__RaftMessage *pm, void **scratch) {
    kv__raft_message__init(pm);
    *scratch = NULL;
    pm->type = (uint32_t)m->type;
    pm->from = m->from;
    pm->to = m->to;
    pm->term = m->term;
    pm->last_index = m->last_index;
    pm->last_term = m->last_term;
    pm->reject = m->reject;
    pm->prev_index = m->prev_index;
    pm->prev_term = m->prev_term;
    pm->commit = m->commit;
    pm->match_index = m->match_index;
    pm->reject_index = m->reject_index;
    pm->conflict_term = m->conflict_term;
    pm->conflict_index = m->conflict_index;
    pm->read_seq = m->read_seq;
    pm->leader_commit = m->leader_commit;
    pm->transfer = m->transfer;
    if (m->n_entries == 0) return 0;
    size_t n = m->n_entries;
    char *mem = malloc(n * (sizeof(Kv__RaftEntry *) + sizeof(Kv__RaftEntry)));
    if (!mem) return -1;
    Kv__RaftEntry **ptrs = (Kv__RaftEntry **)mem;
    Kv__RaftEntry *ents = (Kv__RaftEntry *)(mem + n * sizeof(Kv__RaftEntry *));
    for (size_t i = 0; i < n; i++) {
        kv__raft_entry__init(&ents[i]);
        ents[i].index = m->entries[i].index;
        ents[i].term = m->entries[i].term;
        ents[i].type = (uint32_t)m->entries[i].type;
        ents[i].data.data = m->entries[i].data; /* borrowed: packing only reads it */
        ents[i].data.len = m->entries[i].len;
        ptrs[i] = &ents[i];
    }
    pm->entries = ptrs;
    pm->n_entries = n;
    *scratch = mem;
    return 0;
}

void raft_codec_free(void *scratch) { free(scratch); }

int raft_codec_decode(const Kv__RaftMessage *pm, struct raft_msg *m) {
    memset(m, 0, sizeof *m);
    /* RAFT_MSG_SNAPSHOT never travels as a RaftMessage: the receiver steps
     * it itself once the whole file is stored (snapshot_send.c). */
    if (pm->type < RAFT_MSG_PREVOTE || pm->type > RAFT_MSG_TIMEOUT_NOW || pm->type == RAFT_MSG_SNAPSHOT) return -1;
    m->type = (int)pm->type;
    m->from = pm->from;
    m->to = pm->to;
    m->term = pm->term;
    m->last_index = pm->last_index;
    m->last_term = pm->last_term;
    m->reject = pm->reject;
    m->prev_index = pm->prev_index;
    m->prev_term = pm->prev_term;
    m->commit = pm->commit;
    m->match_index = pm->match_index;
    m->reject_index = pm->reject_index;
    m->conflict_term = pm->conflict_term;
    m->conflict_index = pm->conflict_index;
    m->read_seq = pm->read_seq;
    m->leader_commit = pm->leader_commit;
    m->transfer = pm->transfer;
    if (pm->n_entries == 0) return 0;
    m->entries = calloc(pm->n_entries, sizeof *m->entries);
    if (!m->entries) return -1;
    for (size_t i = 0; i < pm->n_entries; i++) {
        const Kv__RaftEntry *e = pm->entries[i];
        if (e->type != RAFT_ENTRY_NORMAL && e->type != RAFT_ENTRY_NOOP && e->type != RAFT_ENTRY_CONFIG) {
            free(m->entries);
            m->entries = NULL;
            return -1;
        }
        m->entries[i].index = e->index;
        m->entries[i].term = e->term;
        m->entries[i].type = (int)e->type;
        m->entries[i].data = e->data.len ? e->data.data : NULL;
        m->entries[i].len = e->data.len;
    }
    m->n_entries = pm->n_entries;
    return 0;
}
