/* sim_members.c - membership change scenarios (issue 12 item 5): adding a
 * node that catches up (by snapshot once the log is compacted) as a learner
 * before it votes, removing a follower, removing the leader, replacing a
 * dead node, growing 3 -> 5 -> 3, and changes under partitions, loss and
 * crashes. Safety (Election Safety across configurations, one change in
 * flight, no removed leader, quorums from the right configuration) is
 * checked after every event by sim_check.c; these drive the cluster and
 * check liveness and what the change should have achieved. */
#include "sim.h"

#define LEADER_BOUND (10 * SIM_E)
#define ONE_BOUND (30 * SIM_E)
#define CHANGE_BOUND (40 * SIM_E)

static raft_id id_of(int i) { return (raft_id)i + 1; }

/* Values committed and applied on `expected` nodes, `times` over. */
static void commit_n(struct sim *s, unsigned expected, unsigned times) {
    for (unsigned k = 0; k < times && !s->failed; k++)
        sim_one(s, expected, ONE_BOUND);
}

static void member_setup(struct sim *s, unsigned members0) {
    s->members0 = members0;
    s->snap_fixed = true;
    s->snap_every = sim_rand_below(s, 2) ? 4 : 10;
    s->trailing = sim_rand_below(s, 2) ? 0 : 2;
}

/* Node i joins: started silent, added as a learner, caught up, promoted. */
static bool add_voter(struct sim *s, int i) {
    sim_join(s, i);
    if (!sim_change(s, SIM_ADD, id_of(i), CHANGE_BOUND))
        return false;
    return sim_change(s, SIM_PROMOTE, id_of(i), CHANGE_BOUND);
}

static void expect_voters(struct sim *s, unsigned want) {
    int l = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l < 0)
        return;
    const struct raft_membership *c = raft_membership(s->node[l].r, NULL);
    unsigned voters = 0;
    for (unsigned k = 0; k < c->n; k++)
        voters += c->m[k].voter;
    if (voters != want)
        sim_fail(s, "leader n%d's configuration has %u voters, expected %u", l + 1, voters, want);
}

/* A fourth node joins a 3-node cluster whose log was compacted: it must
 * stay silent while joining, catch up by snapshot as a learner, and then
 * count: with two of the original three crashed, the 5-voter cluster
 * (after a fifth joins) still commits with the other three. */
void member_add(struct sim *s) {
    member_setup(s, 3);
    sim_start(s);
    commit_n(s, 3, 3 * s->snap_every + 2); /* enough to compact the log's front away */
    sim_run(s, SIM_E);
    if (!add_voter(s, 3))
        return;
    if (!s->failed && s->node[3].installs == 0 && s->trailing == 0)
        sim_fail(s, "MemberAdd: n4 caught up without a snapshot though the log was compacted");
    commit_n(s, 4, 2);
    if (!add_voter(s, 4))
        return;
    expect_voters(s, 5);
    commit_n(s, 5, 2);
    int l = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l < 0)
        return;
    /* two of the first three down: 3 of 5 voters remain, a majority */
    int down = 0;
    for (int k = 0; k < 3 && down < 2; k++)
        if (k != l) {
            sim_crash(s, k);
            down++;
        }
    commit_n(s, 3, 2);
}

/* 5 -> 4 -> 3 by removing followers; each removed node is then crashed.
 * With 3 voters left, one more crash still leaves a majority (2 of 3),
 * which a 5-voter quorum would not be. */
void member_remove_follower(struct sim *s) {
    member_setup(s, 5);
    sim_start(s);
    commit_n(s, 5, 2);
    for (int round = 0; round < 2 && !s->failed; round++) {
        int l = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
        if (l < 0)
            return;
        int victim = -1;
        for (int k = 0; k < (int)s->n && victim < 0; k++)
            if (k != l && s->node[k].r && sim_is_member(s, l, id_of(k), true))
                victim = k;
        if (!sim_change(s, SIM_REMOVE, id_of(victim), CHANGE_BOUND))
            return;
        commit_n(s, 4 - (unsigned)round, 1); /* the removed node may still apply; it need not */
        sim_crash(s, victim);
        commit_n(s, 4 - (unsigned)round, 2);
    }
    expect_voters(s, 3);
    int l = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l < 0)
        return;
    for (int k = 0; k < (int)s->n; k++)
        if (k != l && s->node[k].r) {
            sim_crash(s, k);
            break;
        }
    commit_n(s, 2, 2);
}

/* The leader removes itself: it commits the change, hands leadership over
 * (TimeoutNow) and goes quiet; a new leader follows within a few election
 * timeouts (the hand-over: no full election timeout of silence needed) and
 * the removed node never leads again (checked by sim_check.c). */
void member_remove_leader(struct sim *s) {
    member_setup(s, sim_rand_below(s, 2) ? 3 : 5);
    unsigned n = s->members0;
    sim_start(s);
    if (sim_rand_below(s, 2))
        sim_unreliable(s);
    commit_n(s, n, 2);
    int l = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l < 0)
        return;
    if (!sim_change(s, SIM_REMOVE, id_of(l), CHANGE_BOUND))
        return;
    int l2 = sim_wait_leader(s, sim_all(s) & ~(1u << l), LEADER_BOUND);
    if (l2 < 0)
        return;
    if (l2 == l)
        sim_fail(s, "MemberRemoveLeader: removed n%d still leads", l + 1);
    if (s->node[l].r && raft_role(s->node[l].r) == RAFT_LEADER)
        sim_fail(s, "MemberRemoveLeader: removed n%d did not step down", l + 1);
    sim_reliable(s);
    commit_n(s, n - 1, 3);
    sim_run(s, 10 * SIM_E); /* the removed node, still up, must not disturb */
    commit_n(s, n - 1, 1);
}

/* A voter dies for good: it is removed, a new node joins in its place
 * (catching up by snapshot), and the cluster is back to three voters that
 * survive the loss of one more. */
void member_replace(struct sim *s) {
    member_setup(s, 3);
    sim_start(s);
    commit_n(s, 3, s->snap_every + 2);
    int l = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l < 0)
        return;
    int dead = (l + 1) % 3;
    sim_crash(s, dead);
    commit_n(s, 2, 2 * s->snap_every + 2);
    if (!sim_change(s, SIM_REMOVE, id_of(dead), CHANGE_BOUND))
        return;
    if (!add_voter(s, 3))
        return;
    expect_voters(s, 3);
    commit_n(s, 3, 2);
    l = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l < 0)
        return;
    int other = -1;
    for (int k = 0; k < (int)s->n && other < 0; k++)
        if (k != l && s->node[k].r && sim_is_member(s, l, id_of(k), true))
            other = k;
    sim_crash(s, other);
    commit_n(s, 2, 2);
}

/* 3 -> 5 -> 3: grow by two joiners, then remove two of the original nodes
 * (the leader among them when it is one), with values committed between. */
void member_3_to_5(struct sim *s) {
    member_setup(s, 3);
    sim_start(s);
    commit_n(s, 3, 2);
    if (!add_voter(s, 3) || !add_voter(s, 4))
        return;
    expect_voters(s, 5);
    commit_n(s, 5, 2);
    for (int k = 0; k < 2 && !s->failed; k++) {
        if (!sim_change(s, SIM_REMOVE, id_of(k), CHANGE_BOUND))
            return;
        commit_n(s, 4 - (unsigned)k, 1);
    }
    expect_voters(s, 3);
    sim_crash(s, 0);
    sim_crash(s, 1);
    commit_n(s, 3, 3);
}

/* Changes under partitions, loss, reordering and crashes: each round asks
 * whichever node leads for one change (fire and forget: it may be refused
 * as pending, lost with its leader, or commit later), and disturbs the
 * network or a node. Then heal and demand a live cluster. */
void member_churn(struct sim *s) {
    member_setup(s, 3);
    sim_start(s);
    sim_unreliable(s);
    for (int it = 0; it < 40 && !s->failed; it++) {
        int l = -1;
        for (unsigned k = 0; k < s->n && l < 0; k++)
            if (s->node[k].r && raft_role(s->node[k].r) == RAFT_LEADER)
                l = (int)k;
        if (l >= 0) {
            int x = (int)sim_rand_below(s, s->n);
            raft_id id = id_of(x);
            const struct raft_member *m = raft_membership_find(raft_membership(s->node[l].r, NULL), id);
            unsigned voters = 0;
            const struct raft_membership *c = raft_membership(s->node[l].r, NULL);
            for (unsigned k = 0; k < c->n; k++)
                voters += c->m[k].voter;
            if (!m) {
                sim_join(s, x);
                sim_member_change(s, l, SIM_ADD, id);
            } else if (!m->voter) {
                sim_member_change(s, l, SIM_PROMOTE, id);
            } else if (voters > 3) {
                sim_member_change(s, l, SIM_REMOVE, id);
            }
        }
        int a = (int)sim_rand_below(s, s->n);
        switch (sim_rand_below(s, 6)) {
        case 0: sim_crash(s, a); break;
        case 1: sim_restart(s, a); break;
        case 2: sim_disconnect(s, a); break;
        case 3: sim_connect(s, a); break;
        default:
            for (unsigned k = 0; k < s->n; k++)
                sim_propose(s, (int)k, NULL);
        }
        sim_run(s, sim_rand_below(s, 2 * SIM_E));
    }
    sim_heal(s);
    sim_reliable(s);
    sim_restart_all(s);
    int l = sim_wait_leader(s, sim_all(s), 2 * LEADER_BOUND);
    if (l < 0)
        return;
    /* every voter of the leader's configuration applies what commits now */
    unsigned voters = 0;
    const struct raft_membership *c = raft_membership(s->node[l].r, NULL);
    for (unsigned k = 0; k < c->n; k++)
        voters += c->m[k].voter;
    commit_n(s, voters, 3);
}
