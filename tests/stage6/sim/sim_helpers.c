/* sim_helpers.c - what scenarios ask of the cluster, in the manner of MIT
 * 6.5840's config.go: is there one leader, is there none, commit one value.
 * These are the liveness checks: each fails the run when its bound passes. */
#include "sim.h"

uint32_t sim_all(const struct sim *s) { return (1u << s->n) - 1; }

int sim_stable_leader(struct sim *s, uint32_t mask) {
    int best = -1;
    raft_term best_term = 0;
    for (unsigned i = 0; i < s->n; i++) {
        struct raft *r = s->node[i].r;
        if (!(mask & (1u << i)) || !r || raft_role(r) != RAFT_LEADER)
            continue;
        raft_term T = raft_current_term(r);
        unsigned followers = 0, voters = 0;
        const struct raft_membership *conf = raft_membership(r, NULL);
        for (unsigned k = 0; k < conf->n; k++)
            voters += conf->m[k].voter;
        for (unsigned j = 0; j < s->n; j++) {
            struct raft *q = s->node[j].r;
            if ((mask & (1u << j)) && q && raft_current_term(q) == T && raft_leader(q) == i + 1 &&
                sim_is_member(s, (int)i, j + 1, true))
                followers++;
        }
        /* a majority of its configuration's voters follow it */
        if (followers >= voters / 2 + 1 && (best < 0 || T > best_term)) {
            best = (int)i;
            best_term = T;
        }
    }
    return best;
}

struct leader_arg {
    uint32_t mask;
};

static bool has_leader(struct sim *s, void *arg) {
    return sim_stable_leader(s, ((struct leader_arg *)arg)->mask) >= 0;
}

int sim_wait_leader(struct sim *s, uint32_t mask, uint64_t bound) {
    struct leader_arg a = {mask};
    if (!sim_run_until(s, bound, has_leader, &a)) {
        sim_fail(s, "liveness: no leader among nodes 0x%x within %llu time units", mask,
                 (unsigned long long)bound);
        return -1;
    }
    return sim_stable_leader(s, mask);
}

bool sim_no_leader(struct sim *s, uint32_t mask) {
    for (unsigned i = 0; i < s->n; i++)
        if ((mask & (1u << i)) && s->node[i].r && raft_role(s->node[i].r) == RAFT_LEADER)
            return false;
    return true;
}

unsigned sim_n_applied(struct sim *s, raft_index index, uint64_t id) {
    if (index >= s->n_slot || !s->slot[index].applied || s->slot[index].id != id)
        return 0;
    unsigned n = 0;
    for (unsigned i = 0; i < s->n; i++)
        if (s->node[i].r && s->node[i].applied >= index)
            n++;
    return n;
}

struct applied_arg {
    raft_index index;
    uint64_t id;
    unsigned expected;
};

static bool applied_enough(struct sim *s, void *arg) {
    struct applied_arg *a = arg;
    return sim_n_applied(s, a->index, a->id) >= a->expected;
}

raft_index sim_one(struct sim *s, unsigned expected, uint64_t bound) {
    uint64_t start = s->now;
    unsigned next = 0;
    while (s->now - start < bound && !s->failed) {
        int leader = sim_stable_leader(s, sim_all(s));
        raft_index idx = 0;
        uint64_t id = 0;
        for (unsigned k = 0; k < s->n && !idx; k++) {
            int i = leader >= 0 && k == 0 ? leader : (int)((next + k) % s->n);
            idx = sim_propose(s, i, &id);
        }
        next++;
        if (idx) {
            struct applied_arg a = {idx, id, expected};
            if (sim_run_until(s, 4 * SIM_E, applied_enough, &a))
                return idx;
        } else {
            sim_run(s, SIM_E / 2);
        }
    }
    sim_fail(s, "liveness: no value committed on %u nodes within %llu time units", expected,
             (unsigned long long)bound);
    return 0;
}

bool sim_is_member(struct sim *s, int i, raft_id id, bool voter) {
    if (!s->node[i].r)
        return false;
    const struct raft_member *m = raft_membership_find(raft_membership(s->node[i].r, NULL), id);
    return m && (!voter || m->voter);
}

/* The change is done: a leader's configuration shows it and is committed. */
static bool change_done(struct sim *s, int l, int op, raft_id id) {
    raft_index at;
    raft_membership(s->node[l].r, &at);
    if (at > raft_commit_index(s->node[l].r))
        return false;
    bool member = sim_is_member(s, l, id, false), voter = sim_is_member(s, l, id, true);
    return op == SIM_ADD ? member : op == SIM_PROMOTE ? voter : !member;
}

struct change_arg {
    int op;
    raft_id id;
};

static bool change_seen(struct sim *s, void *arg) {
    struct change_arg *a = arg;
    int l = sim_stable_leader(s, sim_all(s));
    return l >= 0 && change_done(s, l, a->op, a->id);
}

bool sim_change(struct sim *s, int op, raft_id id, uint64_t bound) {
    uint64_t start = s->now;
    struct change_arg a = {op, id};
    while (s->now - start < bound && !s->failed) {
        int l = sim_stable_leader(s, sim_all(s));
        if (l < 0) {
            sim_run(s, SIM_E / 4);
            continue;
        }
        if (change_done(s, l, op, id))
            return true;
        int rc = sim_member_change(s, l, op, id);
        /* pending or not caught up: the run goes on, and it is asked again */
        if (sim_run_until(s, rc == RAFT_OK ? 4 * SIM_E : SIM_E / 4, change_seen, &a))
            return true;
    }
    if (!s->failed)
        sim_fail(s, "liveness: membership change %d of n%u not committed within %llu time units",
                 op, id, (unsigned long long)bound);
    return false;
}
