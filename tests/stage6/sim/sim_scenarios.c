/* sim_scenarios.c - the scenarios, named after their MIT 6.5840 (Raft lab)
 * counterparts where one exists, plus pre-vote/check-quorum, a partial
 * partition, and ReadIndex against a deposed leader; stage 6 adds the
 * snapshot scenarios of 6.5840's part 3D (Snapshot*). Each one drives the
 * cluster; safety is checked after every event by sim_check.c, liveness by
 * the bounded helpers (a leader, a commit) in sim_helpers.c. Stage 5's
 * scenarios run with snapshots in most seeds too (sim_start draws them). */
#include "sim.h"

#define LEADER_BOUND (10 * SIM_E)
#define ONE_BOUND (30 * SIM_E)

static int mod(int a, unsigned n) { return (int)((unsigned)a % n); }
static uint32_t bit(int i) { return 1u << i; }
static raft_term term_of(struct sim *s, int i) { return raft_current_term(s->node[i].r); }

static bool one_n(struct sim *s, unsigned expected, unsigned times) {
    for (unsigned k = 0; k < times && !s->failed; k++)
        sim_one(s, expected, ONE_BOUND);
    return !s->failed;
}

struct read_arg {
    size_t h;
};

static bool read_done(struct sim *s, void *arg) {
    return s->reads[((struct read_arg *)arg)->h].done;
}

/* A linearizable read at the current leader is served within the bound. */
static void read_at_leader(struct sim *s) {
    int l = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    struct read_arg a;
    if (l < 0 || s->failed)
        return;
    if (!sim_read(s, l, &a.h)) {
        sim_fail(s, "leader %d refused a read", l + 1);
        return;
    }
    if (!sim_run_until(s, 5 * SIM_E, read_done, &a))
        sim_fail(s, "liveness: read %zu at leader %d not served within %d units", a.h, l + 1,
                 5 * SIM_E);
}

static void initial_election(struct sim *s) {
    sim_start(s);
    int l = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l < 0)
        return;
    raft_term t = term_of(s, l);
    sim_run(s, 20 * SIM_E);
    int l2 = sim_stable_leader(s, sim_all(s));
    if (l2 != l || term_of(s, l) != t)
        sim_fail(s, "InitialElection: leadership changed (n%d term %llu -> n%d) without failures",
                 l + 1, (unsigned long long)t, l2 + 1);
}

static void re_election(struct sim *s) {
    sim_start(s);
    int l1 = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l1 < 0)
        return;
    sim_disconnect(s, l1);
    if (sim_wait_leader(s, sim_all(s) & ~bit(l1), LEADER_BOUND) < 0)
        return;
    sim_connect(s, l1); /* the old leader rejoins and must not disturb */
    int l3 = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l3 < 0)
        return;
    int other = mod(l3 + 1, s->n), alone = mod(l3 + 2, s->n);
    sim_disconnect(s, l3);
    sim_disconnect(s, other);
    sim_run(s, 4 * SIM_E);
    if (!sim_no_leader(s, bit(alone)))
        sim_fail(s, "ReElection: n%d leads without a quorum", alone + 1);
    sim_connect(s, other);
    if (sim_wait_leader(s, bit(other) | bit(alone), LEADER_BOUND) < 0)
        return;
    sim_connect(s, l3);
    sim_wait_leader(s, sim_all(s), LEADER_BOUND);
}

static void many_elections(struct sim *s) {
    sim_start(s);
    if (sim_wait_leader(s, sim_all(s), LEADER_BOUND) < 0)
        return;
    for (int it = 0; it < 8 && !s->failed; it++) {
        int a = (int)sim_rand_below(s, s->n), b = mod(a + 1 + (int)sim_rand_below(s, s->n - 1), s->n);
        sim_disconnect(s, a);
        sim_disconnect(s, b);
        sim_wait_leader(s, sim_all(s) & ~bit(a) & ~bit(b), LEADER_BOUND);
        sim_connect(s, a);
        sim_connect(s, b);
    }
    sim_wait_leader(s, sim_all(s), LEADER_BOUND);
}

static void basic_agree(struct sim *s) {
    sim_start(s);
    raft_index prev = 0;
    for (int k = 0; k < 3 && !s->failed; k++) {
        raft_index idx = sim_one(s, s->n, ONE_BOUND);
        if (idx && idx <= prev)
            sim_fail(s, "BasicAgree: index %llu after %llu", (unsigned long long)idx,
                     (unsigned long long)prev);
        prev = idx;
        read_at_leader(s);
    }
}

static void fail_agree(struct sim *s) {
    sim_start(s);
    sim_one(s, 3, ONE_BOUND);
    int l = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l < 0)
        return;
    int f = mod(l + 1, s->n);
    sim_disconnect(s, f);
    one_n(s, 2, 4);
    sim_connect(s, f);
    one_n(s, 3, 2);
}

static void fail_no_agree(struct sim *s) {
    sim_start(s);
    sim_one(s, 5, ONE_BOUND);
    int l = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l < 0)
        return;
    for (int k = 1; k <= 3; k++)
        sim_disconnect(s, mod(l + k, s->n));
    uint64_t id;
    raft_index idx = sim_propose(s, l, &id);
    if (!idx) {
        sim_fail(s, "FailNoAgree: leader n%d refused a proposal", l + 1);
        return;
    }
    sim_run(s, 4 * SIM_E);
    if (sim_n_applied(s, idx, id) > 0)
        sim_fail(s, "FailNoAgree: index %llu committed without a majority", (unsigned long long)idx);
    for (int k = 1; k <= 3; k++)
        sim_connect(s, mod(l + k, s->n));
    one_n(s, 5, 1);
}

static void rejoin(struct sim *s) {
    sim_start(s);
    sim_one(s, 3, ONE_BOUND);
    int l1 = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l1 < 0)
        return;
    sim_disconnect(s, l1);
    for (int k = 0; k < 3; k++)
        sim_propose(s, l1, NULL); /* never to be committed */
    int l2 = sim_wait_leader(s, sim_all(s) & ~bit(l1), LEADER_BOUND);
    if (l2 < 0)
        return;
    one_n(s, 2, 1);
    sim_disconnect(s, l2);
    sim_connect(s, l1);
    one_n(s, 2, 1);
    sim_connect(s, l2);
    one_n(s, 3, 1);
}

static void backup(struct sim *s) {
    sim_start(s);
    sim_one(s, 5, ONE_BOUND);
    int l1 = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l1 < 0)
        return;
    for (int k = 2; k <= 4; k++)
        sim_disconnect(s, mod(l1 + k, s->n));
    for (int k = 0; k < 50; k++)
        sim_propose(s, l1, NULL);
    sim_run(s, SIM_E / 2);
    sim_disconnect(s, l1);
    sim_disconnect(s, mod(l1 + 1, s->n));
    for (int k = 2; k <= 4; k++)
        sim_connect(s, mod(l1 + k, s->n));
    if (!one_n(s, 3, 50))
        return;
    int l2 = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l2 < 0)
        return;
    int other = mod(l1 + 2, s->n) == l2 ? mod(l1 + 3, s->n) : mod(l1 + 2, s->n);
    sim_disconnect(s, other);
    for (int k = 0; k < 50; k++)
        sim_propose(s, l2, NULL);
    sim_run(s, SIM_E / 2);
    for (unsigned k = 0; k < s->n; k++)
        sim_disconnect(s, (int)k);
    sim_connect(s, l1);
    sim_connect(s, mod(l1 + 1, s->n));
    sim_connect(s, other);
    if (!one_n(s, 3, 50))
        return;
    for (unsigned k = 0; k < s->n; k++)
        sim_connect(s, (int)k);
    one_n(s, 5, 1);
}

static void persist1(struct sim *s) {
    sim_start(s);
    one_n(s, 3, 1);
    for (unsigned k = 0; k < s->n; k++)
        sim_crash(s, (int)k);
    for (unsigned k = 0; k < s->n; k++)
        sim_restart(s, (int)k);
    one_n(s, 3, 1);
    int l1 = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l1 < 0)
        return;
    sim_crash(s, l1);
    sim_restart(s, l1);
    one_n(s, 3, 1);
    int l2 = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l2 < 0)
        return;
    sim_crash(s, l2);
    one_n(s, 2, 1);
    sim_restart(s, l2);
    one_n(s, 3, 1);
    int l3 = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l3 < 0)
        return;
    int i = mod(l3 + 1, s->n);
    sim_crash(s, i);
    one_n(s, 2, 1);
    sim_restart(s, i);
    one_n(s, 3, 1);
}

static void persist2(struct sim *s) {
    sim_start(s);
    for (int it = 0; it < 4 && !s->failed; it++) {
        one_n(s, 5, 1);
        int l = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
        if (l < 0)
            return;
        sim_disconnect(s, mod(l + 1, s->n));
        sim_disconnect(s, mod(l + 2, s->n));
        one_n(s, 3, 1);
        sim_disconnect(s, l);
        sim_disconnect(s, mod(l + 3, s->n));
        sim_disconnect(s, mod(l + 4, s->n));
        for (int k = 1; k <= 2; k++) {
            sim_crash(s, mod(l + k, s->n));
            sim_restart(s, mod(l + k, s->n));
            sim_connect(s, mod(l + k, s->n));
        }
        sim_run(s, SIM_E);
        sim_crash(s, mod(l + 3, s->n));
        sim_restart(s, mod(l + 3, s->n));
        sim_connect(s, mod(l + 3, s->n));
        one_n(s, 3, 1);
        sim_connect(s, mod(l + 4, s->n));
        sim_connect(s, l);
    }
    one_n(s, 5, 1);
}

static void persist3(struct sim *s) {
    sim_start(s);
    one_n(s, 3, 1);
    int l = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l < 0)
        return;
    sim_disconnect(s, mod(l + 2, s->n));
    one_n(s, 2, 1);
    sim_crash(s, l);
    sim_crash(s, mod(l + 1, s->n));
    sim_connect(s, mod(l + 2, s->n));
    sim_restart(s, l);
    one_n(s, 2, 1);
    sim_restart(s, mod(l + 1, s->n));
    one_n(s, 3, 1);
}

/* Figure 8 of the paper: leaders crash right after appending, so entries of
 * old terms sit on a majority without being committable by counting. */
static void figure8(struct sim *s) {
    sim_start(s);
    one_n(s, 1, 1);
    unsigned nup = s->n;
    for (int it = 0; it < 1000 && !s->failed; it++) {
        int leader = -1;
        for (unsigned i = 0; i < s->n; i++)
            if (sim_propose(s, (int)i, NULL))
                leader = (int)i;
        if (sim_rand_below(s, 1000) < 100)
            sim_run(s, sim_rand_below(s, SIM_E / 2));
        else
            sim_run(s, sim_rand_below(s, 13));
        if (leader >= 0 && sim_up(s, leader)) {
            sim_crash(s, leader);
            nup--;
        }
        if (nup < 3) {
            int k = (int)sim_rand_below(s, s->n);
            if (!sim_up(s, k)) {
                sim_restart(s, k);
                nup++;
            }
        }
    }
    sim_restart_all(s);
    one_n(s, s->n, 1);
}

/* Like Figure8, but anyone crashes, often right after acknowledging:
 * whatever a node acked must survive its crash. */
static void crash_any(struct sim *s) {
    sim_start(s);
    one_n(s, 1, 1);
    for (int it = 0; it < 300 && !s->failed; it++) {
        for (unsigned i = 0; i < s->n; i++)
            sim_propose(s, (int)i, NULL);
        sim_run(s, sim_rand_below(s, sim_rand_below(s, 1000) < 100 ? SIM_E : 13));
        int victim = (int)sim_rand_below(s, s->n);
        if (sim_rand_below(s, 2))
            sim_crash(s, victim);
        else
            sim_crash_in_ready(s, victim);
        unsigned up = 0;
        for (unsigned i = 0; i < s->n; i++)
            up += sim_up(s, (int)i);
        if (up < s->n / 2 + 1 || sim_rand_below(s, 2))
            sim_restart(s, (int)sim_rand_below(s, s->n));
    }
    sim_restart_all(s);
    one_n(s, s->n, 1);
}

static void figure8_unreliable(struct sim *s) {
    sim_start(s);
    sim_unreliable(s);
    sim_one(s, 1, ONE_BOUND);
    unsigned nup = s->n;
    for (int it = 0; it < 200 && !s->failed; it++) {
        if (it == 100)
            s->long_pm = 300; /* more reordering from here on */
        int leader = -1;
        for (unsigned i = 0; i < s->n; i++)
            if (s->connected[i] && sim_propose(s, (int)i, NULL))
                leader = (int)i;
        if (sim_rand_below(s, 1000) < 100)
            sim_run(s, sim_rand_below(s, SIM_E / 2));
        else
            sim_run(s, sim_rand_below(s, 13));
        if (leader >= 0 && sim_rand_below(s, 1000) < 500 && s->connected[leader]) {
            sim_disconnect(s, leader);
            nup--;
        }
        if (nup < 3) {
            int k = (int)sim_rand_below(s, s->n);
            if (!s->connected[k]) {
                sim_connect(s, k);
                nup++;
            }
        }
    }
    sim_heal(s);
    sim_reliable(s);
    one_n(s, s->n, 1);
}

/* Everything at once: crashes with unsynced writes lost, restarts,
 * symmetric and one-way partitions, loss, duplication, reordering,
 * proposals and reads; then heal and demand progress. */
static void unreliable_churn(struct sim *s) {
    /* safety must not depend on the optional extensions */
    s->pre_vote = sim_rand_below(s, 4) != 0;
    s->check_quorum = sim_rand_below(s, 4) != 0;
    sim_start(s);
    sim_unreliable(s);
    for (int it = 0; it < 60 && !s->failed; it++) {
        int a = (int)sim_rand_below(s, s->n), b = (int)sim_rand_below(s, s->n);
        switch (sim_rand_below(s, 8)) {
        case 0:
            if (sim_rand_below(s, 2))
                sim_crash(s, a);
            else
                sim_crash_in_ready(s, a);
            break;
        case 1: sim_restart(s, a); break;
        case 2: sim_disconnect(s, a); break;
        case 3: sim_connect(s, a); break;
        case 4:
            if (a != b)
                sim_cut(s, a, b); /* one-way */
            break;
        case 5: sim_heal(s); break;
        default:
            for (unsigned i = 0; i < s->n; i++) {
                sim_propose(s, (int)i, NULL);
                sim_read(s, (int)i, NULL);
            }
        }
        sim_run(s, sim_rand_below(s, 2 * SIM_E));
    }
    sim_heal(s);
    sim_reliable(s);
    sim_restart_all(s);
    one_n(s, s->n, 1);
    read_at_leader(s);
}

/* Pre-vote and the lease: a node cut off for a long time comes back and
 * neither bumps the term nor deposes the healthy leader. */
static void prevote_rejoin(struct sim *s) {
    sim_start(s);
    one_n(s, s->n, 1);
    int l = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l < 0)
        return;
    raft_term T = term_of(s, l);
    int f = mod(l + 1, s->n);
    sim_disconnect(s, f);
    sim_run(s, 30 * SIM_E);
    if (term_of(s, f) != T)
        sim_fail(s, "PreVoteRejoin: isolated n%d moved to term %llu (leader's %llu)", f + 1,
                 (unsigned long long)term_of(s, f), (unsigned long long)T);
    sim_connect(s, f);
    sim_run(s, 10 * SIM_E);
    for (unsigned k = 0; k < s->n && !s->failed; k++)
        if (term_of(s, (int)k) != T)
            sim_fail(s, "PreVoteRejoin: n%u at term %llu after the rejoin, leader's term %llu", k + 1,
                     (unsigned long long)term_of(s, (int)k), (unsigned long long)T);
    if (!s->failed && sim_stable_leader(s, sim_all(s)) != l)
        sim_fail(s, "PreVoteRejoin: leader n%d was deposed by a rejoining node", l + 1);
    one_n(s, s->n, 1);
}

/* Check-quorum: a leader cut off from the majority steps down by itself. */
static void check_quorum_step_down(struct sim *s) {
    sim_start(s);
    one_n(s, s->n, 1);
    int l = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l < 0)
        return;
    sim_disconnect(s, l);
    sim_run(s, 2 * SIM_E + 2 * SIM_TICK);
    if (raft_role(s->node[l].r) == RAFT_LEADER)
        sim_fail(s, "CheckQuorum: n%d still leads %d units after losing its majority", l + 1,
                 2 * SIM_E + 2 * SIM_TICK);
    if (sim_wait_leader(s, sim_all(s) & ~bit(l), LEADER_BOUND) < 0)
        return;
    sim_connect(s, l);
    sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    one_n(s, s->n, 1);
}

/* The leader reaches one follower; the other follower reaches only that
 * follower. Pre-vote and the lease keep the cut-off node from forcing
 * endless elections; writes keep committing. */
static void partial_partition(struct sim *s) {
    sim_start(s);
    one_n(s, s->n, 1);
    int l = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l < 0)
        return;
    raft_term T = term_of(s, l);
    int f2 = mod(l + 2, s->n);
    sim_cut(s, l, f2);
    sim_cut(s, f2, l);
    one_n(s, 2, 5);
    sim_run(s, 20 * SIM_E);
    if (!s->failed && (sim_stable_leader(s, sim_all(s)) != l || term_of(s, l) != T))
        sim_fail(s, "PartialPartition: leadership churned (leader n%d, term %llu -> %llu)", l + 1,
                 (unsigned long long)T, (unsigned long long)term_of(s, l));
    one_n(s, 2, 1);
    sim_heal(s);
    one_n(s, s->n, 1);
}

/* ReadIndex: a deposed leader that has not noticed (no check-quorum here,
 * so nothing makes it step down) must not serve a read that misses a write
 * the new leader committed. */
static void stale_read(struct sim *s) {
    s->check_quorum = false;
    sim_start(s);
    one_n(s, s->n, 1);
    int l1 = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l1 < 0)
        return;
    sim_disconnect(s, l1);
    if (sim_wait_leader(s, sim_all(s) & ~bit(l1), LEADER_BOUND) < 0)
        return;
    one_n(s, s->n - 1, 1);
    struct read_arg a;
    if (raft_role(s->node[l1].r) != RAFT_LEADER || !sim_read(s, l1, &a.h)) {
        sim_fail(s, "StaleRead: n%d should still believe it leads", l1 + 1);
        return;
    }
    sim_run(s, 10 * SIM_E);
    if (!s->failed && s->reads[a.h].done)
        sim_fail(s, "StaleRead: the deposed leader served a read");
    read_at_leader(s);
    sim_connect(s, l1);
    sim_run(s, 5 * SIM_E);
    if (!s->failed && raft_role(s->node[l1].r) == RAFT_LEADER &&
        sim_stable_leader(s, sim_all(s)) != l1)
        sim_fail(s, "StaleRead: n%d still leads a stale term after rejoining", l1 + 1);
    one_n(s, s->n, 1);
}

/* ---- snapshots (6.5840 3D). Nodes snapshot every few entries and keep
 * few or none behind, so a follower that misses a handful of entries can
 * only be caught up by a snapshot. */

#define SNAP_EVERY 10 /* 6.5840's SnapShotInterval */

static void snapshot_setup(struct sim *s) {
    s->snap_fixed = true;
    s->snap_every = sim_rand_below(s, 2) ? SNAP_EVERY : 3;
    s->trailing = sim_rand_below(s, 2) ? 0 : 2;
}

/* Snapshots keep every log short: a log longer than this means the core
 * did not compact behind the snapshots it was told of. */
static void check_log_bounded(struct sim *s) {
    unsigned bound = s->trailing + 3 * s->snap_every + 40;
    for (unsigned i = 0; i < s->n && !s->failed; i++) {
        struct raft *r = s->node[i].r;
        if (!r)
            continue;
        raft_index len = raft_last_index(r) + 1 - raft_first_index(r);
        if (len > bound)
            sim_fail(s, "log of n%u holds %llu entries (bound %u): snapshots did not truncate it",
                     i + 1, (unsigned long long)len, bound);
    }
}

/* 6.5840's snapcommon: a victim (a follower, every third round the leader)
 * is cut off or crashed while enough entries commit to be snapshotted and
 * compacted away; back, it must catch up, by snapshot when its next entry
 * is gone. */
static void snap_common(struct sim *s, bool disconnect, bool reliable, bool crash, int iters) {
    snapshot_setup(s);
    sim_start(s);
    if (!reliable)
        sim_unreliable(s);
    sim_one(s, s->n, ONE_BOUND);
    int leader = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    for (int it = 0; it < iters && !s->failed && leader >= 0; it++) {
        int victim = mod(leader + 1, s->n), sender = leader;
        if (it % 3 == 1) {
            sender = mod(leader + 1, s->n);
            victim = leader;
        }
        if (disconnect) {
            sim_disconnect(s, victim);
            sim_one(s, s->n - 1, ONE_BOUND);
        }
        if (crash) {
            sim_crash(s, victim);
            sim_one(s, s->n - 1, ONE_BOUND);
        }
        /* perhaps enough for a snapshot; the sender may not be leader */
        unsigned nn = s->snap_every / 2 + sim_rand_below(s, s->snap_every);
        for (unsigned k = 0; k < nn; k++)
            sim_propose(s, sender, NULL);
        sim_one(s, disconnect || crash ? s->n - 1 : s->n, ONE_BOUND);
        check_log_bounded(s);
        if (disconnect)
            sim_connect(s, victim);
        if (crash) {
            sim_restart(s, victim);
            sim_connect(s, victim);
        }
        if (disconnect || crash) {
            sim_one(s, s->n, ONE_BOUND);
            leader = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
        }
    }
    if (!reliable) {
        sim_reliable(s);
        sim_one(s, s->n, ONE_BOUND);
    }
}

static void snapshot_basic(struct sim *s) { snap_common(s, false, true, false, 30); }

/* The cut-off follower fell behind the leader's first entry: it must have
 * been sent a snapshot, or this scenario tests nothing. */
static void snapshot_install(struct sim *s) {
    snap_common(s, true, true, false, 15);
    if (!s->failed && s->installs == 0)
        sim_fail(s, "SnapshotInstall: no follower ever installed a snapshot");
}

static void snapshot_install_unreliable(struct sim *s) { snap_common(s, true, false, false, 15); }
static void snapshot_install_crash(struct sim *s) { snap_common(s, false, true, true, 15); }
static void snapshot_install_uncrash(struct sim *s) { snap_common(s, false, false, true, 15); }

/* Every node crashes and restarts from (snapshot + log) after each round;
 * what was committed before must still be there (checked by the restore)
 * and the cluster must go on. */
static void snapshot_all_crash(struct sim *s) {
    snapshot_setup(s);
    sim_start(s);
    sim_one(s, s->n, ONE_BOUND);
    for (int it = 0; it < 5 && !s->failed; it++) {
        unsigned nn = s->snap_every / 2 + sim_rand_below(s, s->snap_every);
        for (unsigned k = 0; k < nn; k++)
            sim_one(s, s->n, ONE_BOUND);
        raft_index before = sim_one(s, s->n, ONE_BOUND);
        for (unsigned k = 0; k < s->n; k++)
            sim_crash(s, (int)k);
        for (unsigned k = 0; k < s->n; k++)
            sim_restart(s, (int)k);
        raft_index after = sim_one(s, s->n, ONE_BOUND);
        if (!s->failed && after <= before)
            sim_fail(s, "SnapshotAllCrash: index %llu after the restart, %llu before",
                     (unsigned long long)after, (unsigned long long)before);
    }
}

/* 6.5840's SnapshotInit: crash and restart everyone right after a
 * snapshot, twice, with no entry in between: a node restored from a
 * snapshot alone (its log may be empty) must work, and take the next one. */
static void snapshot_init(struct sim *s) {
    snapshot_setup(s);
    sim_start(s);
    sim_one(s, s->n, ONE_BOUND);
    for (unsigned k = 0; k < s->snap_every + 1; k++)
        sim_one(s, s->n, ONE_BOUND);
    sim_run(s, SIM_E); /* let the snapshots finish */
    for (int round = 0; round < 2 && !s->failed; round++) {
        for (unsigned k = 0; k < s->n; k++)
            sim_crash(s, (int)k);
        for (unsigned k = 0; k < s->n; k++)
            sim_restart(s, (int)k);
    }
    for (unsigned k = 0; k < s->n && !s->failed; k++)
        if (raft_snapshot_index(s->node[k].r) == 0)
            sim_fail(s, "SnapshotInit: n%u restarted without the snapshot it took", k + 1);
    sim_one(s, s->n, ONE_BOUND);
}

/* Recovery under everything at once: crashes that lose unsynced writes
 * (snapshot installs and compactions among them), crashes in the middle of
 * a Ready, partitions, loss and reordering while snapshots are taken and
 * streamed; then heal and demand progress everywhere. */
static void snapshot_recover(struct sim *s) {
    snapshot_setup(s);
    sim_start(s);
    sim_unreliable(s);
    for (int it = 0; it < 60 && !s->failed; it++) {
        int a = (int)sim_rand_below(s, s->n);
        switch (sim_rand_below(s, 6)) {
        case 0:
            if (sim_rand_below(s, 2))
                sim_crash(s, a);
            else
                sim_crash_in_ready(s, a);
            break;
        case 1: sim_restart(s, a); break;
        case 2: sim_disconnect(s, a); break;
        case 3: sim_connect(s, a); break;
        default:
            for (unsigned i = 0; i < s->n; i++)
                for (int k = 0; k < 3; k++)
                    sim_propose(s, (int)i, NULL);
        }
        sim_run(s, sim_rand_below(s, 2 * SIM_E));
    }
    sim_heal(s);
    sim_reliable(s);
    sim_restart_all(s);
    one_n(s, s->n, 3);
    read_at_leader(s);
}

struct snap_arg {
    int leader, victim;
};

static bool transfer_begun(struct sim *s, void *arg) {
    struct snap_arg *a = arg;
    return s->node[a->leader].r && raft_peer_snapshot(s->node[a->leader].r, (raft_id)a->victim + 1, NULL);
}

/* Cuts `victim` off, commits until the others have compacted past it,
 * reconnects it and waits until the leader begins a snapshot transfer to
 * it. Returns the leader, -1 (and fails) if no transfer began. */
static int lag_until_transfer(struct sim *s, int victim) {
    sim_disconnect(s, victim);
    for (unsigned k = 0; k < 3 * s->snap_every + 2 && !s->failed; k++)
        sim_one(s, s->n - 1, ONE_BOUND);
    int l = sim_wait_leader(s, sim_all(s) & ~bit(victim), LEADER_BOUND);
    if (l < 0)
        return -1;
    sim_connect(s, victim);
    struct snap_arg a = {l, victim};
    if (!sim_run_until(s, 5 * SIM_E, transfer_begun, &a)) {
        sim_fail(s, "liveness: leader n%d began no snapshot transfer to n%d within %d units", l + 1,
                 victim + 1, 5 * SIM_E);
        return -1;
    }
    return l;
}

/* Issue 12: a leader that changes during a transfer. The snapshot takes six
 * election timeouts to stream; the leader crashes as soon as it began, a
 * new leader is elected meanwhile, and the old leader's snapshot arrives at
 * a follower already in the new term: it must be turned down, and the new
 * leader must catch the follower up itself. */
static void snapshot_leader_change(struct sim *s) {
    s->snap_fixed = true;
    s->snap_every = 3;
    s->trailing = 0;
    s->snap_delay = 6 * SIM_E;
    sim_start(s);
    sim_one(s, s->n, ONE_BOUND);
    int l0 = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l0 < 0)
        return;
    int victim = mod(l0 + 1, s->n);
    int l = lag_until_transfer(s, victim);
    if (l < 0)
        return;
    sim_crash(s, l);
    if (sim_wait_leader(s, sim_all(s) & ~bit(l), LEADER_BOUND) < 0)
        return;
    sim_one(s, s->n - 1, 2 * ONE_BOUND); /* the follower must catch up without the old leader */
    if (!s->failed && s->snaps_stale == 0)
        sim_fail(s, "SnapshotLeaderChange: the old leader's snapshot never reached the follower "
                    "after the new term began");
    sim_restart(s, l);
    sim_one(s, s->n, 2 * ONE_BOUND);
}

static bool install_pending(struct sim *s, void *arg) {
    const struct sim_disk *d = &s->node[*(int *)arg].disk;
    for (size_t k = 0; k < d->nq; k++)
        if (d->q[k].install.index)
            return true;
    return false;
}

/* Issue 12: a node killed mid-install. The follower crashes while its
 * install is being written (not yet durable); it restarts from its old
 * snapshot and log, having acknowledged nothing of the new one, and must be
 * caught up again. */
static void snapshot_crash_mid_install(struct sim *s) {
    s->snap_fixed = true;
    s->snap_every = 3;
    s->trailing = 0;
    sim_start(s);
    s->disk_min = s->disk_max = 40; /* a slow disk: a window to crash in */
    sim_one(s, s->n, ONE_BOUND);
    int l0 = sim_wait_leader(s, sim_all(s), LEADER_BOUND);
    if (l0 < 0)
        return;
    int victim = mod(l0 + 1, s->n);
    if (lag_until_transfer(s, victim) < 0)
        return;
    if (!sim_run_until(s, 5 * SIM_E, install_pending, &victim)) {
        sim_fail(s, "SnapshotCrashMidInstall: n%d never began installing the snapshot", victim + 1);
        return;
    }
    raft_index before = s->node[victim].disk.snap.index;
    sim_crash(s, victim);
    sim_restart(s, victim);
    if (!s->failed && raft_snapshot_index(s->node[victim].r) != before)
        sim_fail(s, "SnapshotCrashMidInstall: n%d restarted with snapshot %llu, its durable one is "
                    "%llu", victim + 1, (unsigned long long)raft_snapshot_index(s->node[victim].r),
                 (unsigned long long)before);
    sim_one(s, s->n, 2 * ONE_BOUND);
}

const struct sim_scenario sim_scenarios[] = {
    {"InitialElection", 3, initial_election},
    {"ReElection", 3, re_election},
    {"ManyElections", 5, many_elections},
    {"BasicAgree", 3, basic_agree},
    {"FailAgree", 3, fail_agree},
    {"FailNoAgree", 5, fail_no_agree},
    {"Rejoin", 3, rejoin},
    {"Backup", 5, backup},
    {"Persist1", 3, persist1},
    {"Persist2", 5, persist2},
    {"Persist3", 3, persist3},
    {"Figure8", 5, figure8},
    {"Figure8Unreliable", 5, figure8_unreliable},
    {"CrashAny", 3, crash_any},
    {"UnreliableChurn", 5, unreliable_churn},
    {"UnreliableChurn3", 3, unreliable_churn},
    {"PreVoteRejoin", 3, prevote_rejoin},
    {"CheckQuorumStepDown", 5, check_quorum_step_down},
    {"PartialPartition", 3, partial_partition},
    {"StaleRead", 5, stale_read},
    {"SnapshotBasic", 3, snapshot_basic},
    {"SnapshotInstall", 3, snapshot_install},
    {"SnapshotInstallUnreliable", 3, snapshot_install_unreliable},
    {"SnapshotInstallCrash", 3, snapshot_install_crash},
    {"SnapshotInstallUnCrash", 3, snapshot_install_uncrash},
    {"SnapshotAllCrash", 3, snapshot_all_crash},
    {"SnapshotInit", 3, snapshot_init},
    {"SnapshotRecover", 5, snapshot_recover},
    {"SnapshotLeaderChange", 3, snapshot_leader_change},
    {"SnapshotCrashMidInstall", 3, snapshot_crash_mid_install},
    {"MemberAdd", 5, member_add},
    {"MemberRemoveFollower", 5, member_remove_follower},
    {"MemberRemoveLeader", 5, member_remove_leader},
    {"MemberReplace", 5, member_replace},
    {"Member3To5To3", 5, member_3_to_5},
    {"MemberChurn", 5, member_churn},
};
const unsigned sim_n_scenarios = sizeof sim_scenarios / sizeof sim_scenarios[0];
