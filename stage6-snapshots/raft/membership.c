/* membership.c - cluster membership change, one server at a time (Raft
 * thesis chapter 4). The configuration is a log entry, used as soon as it is
 * in the log (committed or not), so any two majorities of consecutive
 * configurations overlap; the core maps it to its slots (peer ids, voter
 * flags, per-follower progress kept by id). A new server joins as a learner
 * (sent the log, counted in no majority) and is promoted once caught up; a
 * leader that removes itself hands leadership over once that commits. */
#include <string.h>

#include "raft_int.h"

size_t raft_membership_encode(const struct raft_membership *c, uint8_t *buf) {
    size_t k = 0;
    for (unsigned i = 0; i < c->n && i < RAFT_MAX_NODES; i++) {
        for (int b = 0; b < 4; b++)
            buf[k++] = (uint8_t)(c->m[i].id >> (8 * b));
        buf[k++] = c->m[i].voter ? 1 : 0;
    }
    return k;
}

static bool membership_valid(const struct raft_membership *c) {
    if (c->n == 0 || c->n > RAFT_MAX_NODES)
        return false;
    bool voter = false;
    for (unsigned i = 0; i < c->n; i++) {
        if (c->m[i].id == 0)
            return false;
        for (unsigned j = 0; j < i; j++)
            if (c->m[j].id == c->m[i].id)
                return false;
        voter |= c->m[i].voter;
    }
    return voter;
}

int raft_membership_decode(const uint8_t *data, size_t len, struct raft_membership *c) {
    memset(c, 0, sizeof *c);
    if (!data || len == 0 || len % 5 || len / 5 > RAFT_MAX_NODES)
        return RAFT_ERR_INVALID;
    c->n = (unsigned)(len / 5);
    for (unsigned i = 0; i < c->n; i++) {
        const uint8_t *p = data + 5 * i;
        c->m[i].id = (raft_id)p[0] | (raft_id)p[1] << 8 | (raft_id)p[2] << 16 | (raft_id)p[3] << 24;
        if (p[4] > 1)
            return RAFT_ERR_INVALID;
        c->m[i].voter = p[4] == 1;
    }
    return membership_valid(c) ? RAFT_OK : RAFT_ERR_INVALID;
}

const struct raft_member *raft_membership_find(const struct raft_membership *c, raft_id id) {
    for (unsigned i = 0; i < c->n; i++)
        if (c->m[i].id == id)
            return &c->m[i];
    return NULL;
}

static bool same(const struct raft_membership *a, const struct raft_membership *b) {
    if (a->n != b->n)
        return false;
    for (unsigned i = 0; i < a->n; i++)
        if (a->m[i].id != b->m[i].id || a->m[i].voter != b->m[i].voter)
            return false;
    return true;
}

void membership_bootstrap(struct raft *r) {
    struct raft_membership c = {.n = r->cfg.n_peers};
    for (unsigned i = 0; i < c.n; i++)
        c.m[i] = (struct raft_member){r->cfg.peers[i], !(r->cfg.join && r->cfg.peers[i] == r->cfg.id)};
    r->boot_conf = r->base_conf = r->snap_conf = c;
    r->silent = r->cfg.join;
    r->n = 0;
    membership_use(r, &c, 0);
}

void membership_use(struct raft *r, const struct raft_membership *c, raft_index index) {
    raft_id old_id[RAFT_MAX_NODES + 1];
    struct raft_progress old_pr[RAFT_MAX_NODES + 1];
    unsigned old_n = r->n;
    uint32_t old_granted = r->granted, old_rejected = r->rejected;
    memcpy(old_id, r->ids, sizeof old_id);
    memcpy(old_pr, r->pr, sizeof old_pr);
    r->conf = *c;
    r->conf_index = index;
    if (index)
        r->silent = false; /* a leader's configuration has reached us */
    unsigned n = 0;
    bool self_member = false;
    for (unsigned i = 0; i < c->n; i++) {
        r->ids[n] = c->m[i].id;
        r->voter[n++] = c->m[i].voter;
        self_member |= c->m[i].id == r->cfg.id;
    }
    if (!self_member) { /* removed, or not yet added: still a slot */
        r->ids[n] = r->cfg.id;
        r->voter[n++] = false;
    }
    r->n = n;
    r->granted = r->rejected = 0;
    for (unsigned j = 0; j < n; j++) {
        if (r->ids[j] == r->cfg.id)
            r->self_slot = (int)j;
        unsigned k = 0;
        while (k < old_n && old_id[k] != r->ids[j])
            k++;
        if (k < old_n) { /* a member before and after: its progress stays */
            r->pr[j] = old_pr[k];
            r->granted |= ((old_granted >> k) & 1u) << j;
            r->rejected |= ((old_rejected >> k) & 1u) << j;
        } else {
            replication_progress_reset(r, j);
        }
    }
}

/* The configuration in effect at i, from the log or the base. */
static void conf_at(const struct raft *r, raft_index i, struct raft_membership *out,
                    raft_index *at) {
    for (raft_index k = i; k >= r->log.first && k > 0; k--) {
        const struct raft_entry *e = log_get(&r->log, k);
        if (e->type == RAFT_ENTRY_CONFIG && raft_membership_decode(e->data, e->len, out) == RAFT_OK) {
            *at = k;
            return;
        }
    }
    *out = r->base_conf;
    *at = 0;
}

void membership_log_changed(struct raft *r) {
    struct raft_membership c;
    raft_index at;
    conf_at(r, log_last_index(&r->log), &c, &at);
    if (at != r->conf_index || !same(&c, &r->conf))
        membership_use(r, &c, at);
}

int raft_membership_at(const struct raft *r, raft_index i, struct raft_membership *out) {
    if (i + 1 < r->log.first || i > log_last_index(&r->log))
        return RAFT_ERR_INVALID;
    raft_index at;
    conf_at(r, i, out, &at);
    return RAFT_OK;
}

const struct raft_membership *raft_membership(const struct raft *r, raft_index *index) {
    if (index)
        *index = r->conf_index;
    return &r->conf;
}

int raft_restore_membership(struct raft *r, const struct raft_membership *conf) {
    if (r->restored || !conf || !membership_valid(conf))
        return RAFT_ERR_INVALID;
    r->base_conf = r->snap_conf = *conf;
    r->silent = false;
    membership_use(r, conf, 0);
    return RAFT_OK;
}

bool membership_may_vote(const struct raft *r) { return !r->silent; }

bool membership_is_voter(const struct raft *r, raft_id id) {
    const struct raft_member *m = raft_membership_find(&r->conf, id);
    return m && m->voter;
}

/* Whose majority decides: the current configuration's, except for a leader
 * removing itself, which decides over the one before (it included the
 * leader): the two overlap, and the leader must count itself until it
 * hands over. */
static const struct raft_membership *quorum_conf(const struct raft *r, struct raft_membership *tmp) {
    if (RAFT_BROKEN_CONFIG_QUORUM)
        return &r->boot_conf;
    if (r->role == RAFT_LEADER && r->conf_index > r->commit && !membership_is_voter(r, r->cfg.id)) {
        raft_index at;
        conf_at(r, r->conf_index - 1, tmp, &at);
        return tmp;
    }
    return &r->conf;
}

bool membership_quorum(const struct raft *r, uint32_t bits) {
    struct raft_membership tmp;
    const struct raft_membership *c = quorum_conf(r, &tmp);
    unsigned voters = 0, yes = 0;
    for (unsigned i = 0; i < c->n; i++) {
        if (!c->m[i].voter)
            continue;
        voters++;
        int s = raft_slot(r, c->m[i].id);
        if (s >= 0 && (bits >> s) & 1u)
            yes++;
    }
    return voters > 0 && yes >= voters / 2 + 1;
}

raft_index membership_quorum_match(const struct raft *r) {
    struct raft_membership tmp;
    const struct raft_membership *c = quorum_conf(r, &tmp);
    raft_index m[RAFT_MAX_NODES];
    unsigned voters = 0;
    for (unsigned i = 0; i < c->n; i++) {
        if (!c->m[i].voter)
            continue;
        int s = raft_slot(r, c->m[i].id);
        m[voters++] = s < 0 ? 0 : s == r->self_slot ? r->stable : r->pr[s].match;
    }
    if (!voters)
        return 0;
    /* the (voters/2+1)-th highest: held by a majority */
    for (unsigned i = 1; i < voters; i++)
        for (unsigned j = i; j > 0 && m[j] > m[j - 1]; j--) {
            raft_index t = m[j];
            m[j] = m[j - 1];
            m[j - 1] = t;
        }
    return m[voters / 2];
}

void membership_on_commit(struct raft *r) {
    if (r->role != RAFT_LEADER || r->conf_index == 0 || r->conf_index > r->commit ||
        membership_is_voter(r, r->cfg.id))
        return;
    /* Our removal is committed: hand over to the voter with the most of
     * the log (thesis 3.10, 4.2.2) and stop leading. */
    int best = -1;
    for (unsigned i = 0; i < r->n; i++)
        if ((int)i != r->self_slot && r->voter[i] && (best < 0 || r->pr[i].match > r->pr[best].match))
            best = (int)i;
    if (best >= 0) {
        struct raft_msg m = {.type = RAFT_MSG_TIMEOUT_NOW, .to = r->ids[best]};
        raft_send(r, &m);
    }
    raft_become_follower(r, r->term, 0);
}

void membership_on_timeout_now(struct raft *r, const struct raft_msg *m) {
    if (r->role == RAFT_LEADER || !membership_is_voter(r, r->cfg.id) || m->from != r->leader)
        return;
    r->transfer = true;
    election_campaign(r, false);
    r->transfer = false;
}

/* ---- proposals */

static bool committed_in_term(const struct raft *r) {
    raft_term t;
    return log_term(&r->log, r->commit, &t) && t == r->term;
}

static int change_allowed(const struct raft *r) {
    if (r->role != RAFT_LEADER)
        return RAFT_ERR_NOT_LEADER;
    if (RAFT_BROKEN_CONFIG_PENDING)
        return RAFT_OK;
    /* LAB one-change-at-a-time: refuse (RAFT_ERR_CHANGE_PENDING) while the latest configuration entry (r->conf_index) is uncommitted, or before this term has committed an entry of its own (committed_in_term) */
    if (r->conf_index > r->commit || !committed_in_term(r))
        return RAFT_ERR_CHANGE_PENDING;
    /* END LAB */
    return RAFT_OK;
}

static int propose_conf(struct raft *r, const struct raft_membership *c, raft_index *index,
                        raft_term *term) {
    uint8_t buf[RAFT_MEMBERSHIP_MAX_BYTES];
    size_t len = raft_membership_encode(c, buf);
    int rc = log_append(&r->log, r->term, RAFT_ENTRY_CONFIG, buf, len);
    if (rc)
        return rc;
    membership_use(r, c, log_last_index(&r->log));
    if (index)
        *index = log_last_index(&r->log);
    if (term)
        *term = r->term;
    commit_maybe_advance(r);
    return RAFT_OK;
}

int raft_propose_add_learner(struct raft *r, raft_id id, raft_index *index, raft_term *term) {
    int rc = change_allowed(r);
    if (rc)
        return rc;
    if (id == 0 || raft_membership_find(&r->conf, id) || r->conf.n == RAFT_MAX_NODES)
        return RAFT_ERR_INVALID;
    struct raft_membership c = r->conf;
    c.m[c.n++] = (struct raft_member){id, false};
    return propose_conf(r, &c, index, term);
}

int raft_promote(struct raft *r, raft_id id, raft_index *index, raft_term *term) {
    int rc = change_allowed(r);
    if (rc)
        return rc;
    const struct raft_member *m = raft_membership_find(&r->conf, id);
    if (!m || m->voter)
        return RAFT_ERR_INVALID;
    /* It holds (durably: match counts acknowledged entries) the entry that
     * made it a learner, so after a restart it still knows it is a member
     * and answers votes; and it is close enough that its first votes come
     * soon, and alive. */
    const struct raft_progress *pr = &r->pr[raft_slot(r, id)];
    if (pr->match == 0 || pr->match < r->conf_index || pr->match + r->cfg.promote_lag < log_last_index(&r->log) ||
        pr->idle >= r->cfg.election_ticks)
        return RAFT_ERR_NOT_CAUGHT_UP;
    struct raft_membership c = r->conf;
    for (unsigned i = 0; i < c.n; i++)
        if (c.m[i].id == id)
            c.m[i].voter = true;
    return propose_conf(r, &c, index, term);
}

int raft_propose_remove(struct raft *r, raft_id id, raft_index *index, raft_term *term) {
    int rc = change_allowed(r);
    if (rc)
        return rc;
    const struct raft_member *m = raft_membership_find(&r->conf, id);
    if (!m)
        return RAFT_ERR_INVALID;
    struct raft_membership c = {0};
    for (unsigned i = 0; i < r->conf.n; i++)
        if (r->conf.m[i].id != id)
            c.m[c.n++] = r->conf.m[i];
    if (!membership_valid(&c))
        return RAFT_ERR_INVALID; /* the last voter */
    return propose_conf(r, &c, index, term);
}
