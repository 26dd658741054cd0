/* raft.c - node lifecycle, the seeded PRNG, the outbox, and the dispatch of
 * ticks and messages to the protocol files. The term rules that apply to
 * every message (step down on a higher term, answer stale leaders) live here. */
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

void raft_config_default(struct raft_config *cfg, raft_id id, const raft_id *peers, unsigned n) {
    memset(cfg, 0, sizeof *cfg);
    cfg->id = id;
    if (n > RAFT_MAX_NODES)
        n = RAFT_MAX_NODES;
    memcpy(cfg->peers, peers, n * sizeof *peers);
    cfg->n_peers = n;
    cfg->election_ticks = 10;
    cfg->heartbeat_ticks = 1;
    cfg->seed = id;
    cfg->pre_vote = true;
    cfg->check_quorum = true;
    cfg->max_inflight = 8;
    cfg->max_batch_entries = 64;
    cfg->max_batch_bytes = 1 << 20;
    cfg->snapshot_trailing = 128;
    cfg->promote_lag = 16;
}

int raft_slot(const struct raft *r, raft_id id) {
    for (unsigned i = 0; i < r->n; i++)
        if (r->ids[i] == id)
            return (int)i;
    return -1;
}

/* splitmix64: tiny, good enough for timeouts, and fully determined by the seed. */
uint64_t raft_rand(struct raft *r) {
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static bool config_valid(const struct raft_config *c) {
    if (c->id == 0 || c->n_peers == 0 || c->n_peers > RAFT_MAX_NODES)
        return false;
    if (c->election_ticks < 2 || c->heartbeat_ticks == 0 || c->heartbeat_ticks >= c->election_ticks)
        return false;
    if (c->max_inflight == 0 || c->max_inflight > RAFT_MAX_INFLIGHT || c->max_batch_entries == 0)
        return false;
    bool self = false;
    for (unsigned i = 0; i < c->n_peers; i++) {
        if (c->peers[i] == 0)
            return false;
        for (unsigned j = 0; j < i; j++)
            if (c->peers[j] == c->peers[i])
                return false;
        self |= c->peers[i] == c->id;
    }
    return self;
}

struct raft *raft_new(const struct raft_config *cfg) {
    if (!cfg || !config_valid(cfg))
        return NULL;
    struct raft *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cfg = *cfg;
    log_init(&r->log);
    membership_bootstrap(r);
    r->unstable = 1;
    r->rng = cfg->seed ^ ((uint64_t)cfg->id * 0x2545f4914f6cdd1dULL);
    r->role = r->soft_role = RAFT_FOLLOWER;
    election_reset_timeout(r);
    return r;
}

static void free_msg(struct raft_msg *m) {
    for (size_t i = 0; i < m->n_entries; i++)
        free(m->entries[i].data);
    free(m->entries);
    m->entries = NULL;
    m->n_entries = 0;
}

void raft_free(struct raft *r) {
    if (!r)
        return;
    log_free(&r->log);
    for (size_t i = 0; i < r->n_out; i++)
        free_msg(&r->out[i]);
    free(r->out);
    for (size_t i = 0; i < r->n_held; i++)
        free_msg(&r->held[i].m);
    free(r->held);
    free(r->reads);
    free(r->reads_out);
    free(r);
}

int raft_restore(struct raft *r, raft_term term, raft_id vote, raft_index snap_index,
                 raft_term snap_term, const struct raft_entry *entries, size_t n) {
    if (log_last_index(&r->log) != 0 || r->term != 0 || r->snap_index != 0 || r->restored)
        return RAFT_ERR_INVALID;
    /* The vote may name a node outside the configuration restored: the
     * entry that added it may not have been durable when the vote was. */
    if ((snap_index == 0) != (snap_term == 0) || snap_term > term)
        return RAFT_ERR_INVALID;
    if (n && entries[0].index == 0)
        return RAFT_ERR_INVALID;
    for (size_t i = 1; i < n; i++)
        if (entries[i].index != entries[i - 1].index + 1)
            return RAFT_ERR_INVALID;
    size_t skip = 0; /* entries the snapshot covers */
    while (skip < n && entries[skip].index <= snap_index)
        skip++;
    log_reset(&r->log, snap_index, snap_term);
    for (size_t i = skip; i < n; i++) {
        raft_term prev = i == skip ? snap_term : entries[i - 1].term;
        struct raft_membership c;
        if (entries[i].index != snap_index + 1 + (i - skip) || entries[i].term > term ||
            entries[i].term < prev ||
            (entries[i].type == RAFT_ENTRY_CONFIG &&
             raft_membership_decode(entries[i].data, entries[i].len, &c) != RAFT_OK)) {
            log_free(&r->log);
            return RAFT_ERR_INVALID;
        }
        int rc = log_append(&r->log, entries[i].term, entries[i].type, entries[i].data,
                            entries[i].len);
        if (rc) {
            log_free(&r->log);
            return rc;
        }
    }
    r->term = r->hs_term = r->soft_term = term;
    r->vote = r->hs_vote = vote;
    r->stable = log_last_index(&r->log);
    r->unstable = r->stable + 1;
    /* A snapshot holds only committed entries, already in the state machine
     * the host loaded from it. */
    r->snap_index = r->commit = r->apply_next = r->applied = snap_index;
    r->snap_term = snap_term;
    r->restored = true;
    membership_log_changed(r); /* the latest CONFIG entry, else the snapshot's */
    return RAFT_OK;
}

bool raft_send(struct raft *r, struct raft_msg *m) {
    m->from = r->cfg.id;
    if (m->term == 0)
        m->term = r->term;
    if (r->n_out == r->cap_out) {
        size_t cap = r->cap_out ? r->cap_out * 2 : 16;
        struct raft_msg *out = realloc(r->out, cap * sizeof *out);
        if (!out) { /* a lost message: Raft already copes with those */
            free_msg(m);
            return false;
        }
        r->out = out;
        r->cap_out = cap;
    }
    r->out[r->n_out++] = *m;
    return true;
}

void raft_become_follower(struct raft *r, raft_term term, raft_id leader) {
    if (term > r->term) {
        r->term = term;
        r->vote = 0;
    }
    if (r->role == RAFT_LEADER)
        read_index_drop_all(r);
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
    r->leader_commit = 0;
    r->elapsed = 0;
    election_reset_timeout(r);
}

void raft_tick(struct raft *r) {
    if (r->role == RAFT_LEADER)
        replication_tick(r);
    else
        election_tick(r);
}

static bool from_leader(int type) {
    return type == RAFT_MSG_APPEND || type == RAFT_MSG_HEARTBEAT || type == RAFT_MSG_SNAPSHOT ||
           type == RAFT_MSG_TIMEOUT_NOW;
}

static bool conf_valid(const struct raft_membership *c) {
    uint8_t buf[RAFT_MEMBERSHIP_MAX_BYTES];
    struct raft_membership back;
    return c->n <= RAFT_MAX_NODES &&
           raft_membership_decode(buf, raft_membership_encode(c, buf), &back) == RAFT_OK;
}

/* A peer's frame decoded by the host is still untrusted: refuse what no
 * correct node sends rather than let it corrupt the log. */
static bool msg_valid(const struct raft *r, const struct raft_msg *m) {
    if (!m || m->to != r->cfg.id || m->from == r->cfg.id || m->from == 0 ||
        m->type < RAFT_MSG_PREVOTE || m->type > RAFT_MSG_TIMEOUT_NOW)
        return false;
    if (m->type == RAFT_MSG_SNAPSHOT)
        return m->n_entries == 0 && m->snap_index != 0 && m->snap_term != 0 &&
               m->snap_term <= m->term && conf_valid(&m->conf);
    if (m->type != RAFT_MSG_APPEND)
        return m->n_entries == 0;
    if (m->n_entries && !m->entries)
        return false;
    if (m->prev_term > m->term)
        return false;
    raft_term prev = m->prev_term;
    for (size_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        struct raft_membership c;
        if (e->index != m->prev_index + i + 1 || e->term < prev || e->term > m->term ||
            (e->type != RAFT_ENTRY_NORMAL && e->type != RAFT_ENTRY_NOOP &&
             e->type != RAFT_ENTRY_CONFIG) ||
            (e->len && !e->data) ||
            (e->type == RAFT_ENTRY_CONFIG && raft_membership_decode(e->data, e->len, &c) != RAFT_OK))
            return false;
        prev = e->term;
    }
    return true;
}

int raft_step(struct raft *r, const struct raft_msg *m) {
    if (!msg_valid(r, m))
        return RAFT_ERR_INVALID;
    bool vote_req = m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE;
    /* Outside our configuration: a removed server (thesis 4.2.3) must not
     * disrupt us, but a leader we do not know yet is one to follow. */
    if (raft_slot(r, m->from) < 0 && !from_leader(m->type) && !RAFT_BROKEN_REMOVED_CAMPAIGN)
        return RAFT_OK;
    if (vote_req && !membership_may_vote(r))
        return RAFT_OK; /* joining: no configuration from a leader yet */

    if (m->term > r->term) {
        if (vote_req && !(m->type == RAFT_MSG_VOTE && m->transfer) && election_in_lease(r))
            return RAFT_OK; /* a live leader is heard: do not let a rejoining node disrupt it */
        if (m->type == RAFT_MSG_PREVOTE || (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
            /* pre-votes carry a proposed term; they change nobody's term */
        } else {
            raft_become_follower(r, m->term, from_leader(m->type) ? m->from : 0);
        }
    } else if (m->term < r->term) {
        if ((r->cfg.check_quorum || r->cfg.pre_vote) && from_leader(m->type)) {
            /* A stale leader (perhaps back from a partition) learns our term
             * and steps down; with pre-vote nobody else would tell it. */
            struct raft_msg resp = {.type = RAFT_MSG_APPEND_RESP, .to = m->from, .reject = true};
            raft_send(r, &resp);
        } else if (m->type == RAFT_MSG_PREVOTE) {
            struct raft_msg resp = {.type = RAFT_MSG_PREVOTE_RESP, .to = m->from, .reject = true};
            raft_send(r, &resp);
        }
        return RAFT_OK;
    }

    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        election_on_request(r, m);
        break;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        election_on_response(r, m);
        break;
    case RAFT_MSG_APPEND:
        replication_on_append(r, m);
        break;
    case RAFT_MSG_APPEND_RESP:
        replication_on_append_resp(r, m);
        break;
    case RAFT_MSG_HEARTBEAT:
        replication_on_heartbeat(r, m);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        replication_on_heartbeat_resp(r, m);
        break;
    case RAFT_MSG_SNAPSHOT:
        snapshot_on_message(r, m);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        membership_on_timeout_now(r, m);
        break;
    }
    return RAFT_OK;
}

int raft_propose(struct raft *r, const void *data, size_t len, raft_index *index, raft_term *term) {
    if (r->role != RAFT_LEADER)
        return RAFT_ERR_NOT_LEADER;
    if (len && !data)
        return RAFT_ERR_INVALID;
    int rc = log_append(&r->log, r->term, RAFT_ENTRY_NORMAL, data, len);
    if (rc)
        return rc;
    if (index)
        *index = log_last_index(&r->log);
    if (term)
        *term = r->term;
    commit_maybe_advance(r); /* a lone voter commits on its own */
    return RAFT_OK;
}

void raft_persisted(struct raft *r, raft_index index, raft_term term) {
    raft_term t;
    if (index <= r->stable || !log_term(&r->log, index, &t) || t != term)
        return; /* stale: that entry was replaced after the write started */
    if (index >= r->unstable)
        return; /* never handed out: cannot be durable */
    r->stable = index;
    if (r->role == RAFT_LEADER)
        commit_maybe_advance(r);
    replication_release_held(r);
}

void raft_applied(struct raft *r, raft_index index) {
    if (index > r->apply_next)
        index = r->apply_next;
    if (index > r->applied)
        r->applied = index;
}

raft_id raft_self(const struct raft *r) { return r->cfg.id; }
int raft_role(const struct raft *r) { return r->role; }
raft_term raft_current_term(const struct raft *r) { return r->term; }
raft_id raft_voted_for(const struct raft *r) { return r->vote; }
raft_id raft_leader(const struct raft *r) { return r->leader; }
raft_index raft_commit_index(const struct raft *r) { return r->commit; }
raft_index raft_leader_commit(const struct raft *r) {
    return r->role == RAFT_LEADER ? r->commit : r->leader_commit;
}

unsigned raft_ticks_since_leader(const struct raft *r) {
    return r->role == RAFT_LEADER ? 0 : r->since_leader;
}
raft_index raft_applied_index(const struct raft *r) { return r->applied; }
raft_index raft_last_index(const struct raft *r) { return log_last_index(&r->log); }
raft_index raft_first_index(const struct raft *r) { return r->log.first; }
raft_index raft_persisted_index(const struct raft *r) { return r->stable; }
const struct raft_entry *raft_entry_at(const struct raft *r, raft_index index) {
    return log_get(&r->log, index);
}

bool raft_peer_progress(const struct raft *r, raft_id peer, raft_index *match, unsigned *idle) {
    int s = raft_slot(r, peer);
    if (r->role != RAFT_LEADER || s < 0)
        return false;
    if (match)
        *match = s == r->self_slot ? r->stable : r->pr[s].match;
    if (idle)
        *idle = s == r->self_slot ? 0 : r->pr[s].idle;
    return true;
}

const char *raft_role_name(int role) {
    switch (role) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_PRE_CANDIDATE: return "pre-candidate";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    }
    return "?";
}

const char *raft_msg_name(int type) {
    switch (type) {
    case RAFT_MSG_PREVOTE: return "PreVote";
    case RAFT_MSG_PREVOTE_RESP: return "PreVoteResp";
    case RAFT_MSG_VOTE: return "Vote";
    case RAFT_MSG_VOTE_RESP: return "VoteResp";
    case RAFT_MSG_APPEND: return "Append";
    case RAFT_MSG_APPEND_RESP: return "AppendResp";
    case RAFT_MSG_HEARTBEAT: return "Heartbeat";
    case RAFT_MSG_HEARTBEAT_RESP: return "HeartbeatResp";
    case RAFT_MSG_SNAPSHOT: return "Snapshot";
    case RAFT_MSG_TIMEOUT_NOW: return "TimeoutNow";
    }
    return "?";
}
