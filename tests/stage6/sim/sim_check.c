/* sim_check.c - the safety properties of Raft (paper, Figure 3), checked
 * after every event: Election Safety, Leader Append-Only, Log Matching,
 * Leader Completeness, State Machine Safety; plus linearizable ReadIndex
 * reads, the commit index followers are told (for follower reads) and the
 * Ready contract (the log a node reports is the log it has). With
 * snapshots, a node's history is its snapshot's contents followed by its
 * log: both go through the same checks (a snapshot installed or loaded at
 * restart is checked entry by entry against everything committed).
 * A violation records why; the driver prints the seed and the trace. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

void sim_fail(struct sim *s, const char *fmt, ...) {
    if (s->failed)
        return;
    s->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
    sim_trace(s, TR_NOTE, -1, -1, 0, 0, 0, 0);
}

uint64_t sim_entry_id(const struct raft_entry *e) {
    if (e->type != RAFT_ENTRY_NORMAL || e->len != 8)
        return 0;
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)e->data[k] << (8 * k);
    return v;
}

void sim_slot_need(struct sim *s, raft_index index) {
    if (index < s->n_slot)
        return;
    size_t n = s->n_slot ? s->n_slot : 64;
    while (n <= index)
        n *= 2;
    struct sim_slot *p = realloc(s->slot, n * sizeof *p);
    if (!p)
        abort();
    memset(p + s->n_slot, 0, (n - s->n_slot) * sizeof *p);
    s->slot = p;
    s->n_slot = n;
}

static uint64_t chain(uint64_t prev, raft_term t, uint64_t id) {
    uint64_t h = prev ^ (t * 0x9e3779b97f4a7c15ULL) ^ (id * 0xc2b2ae3d27d4eb4fULL);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 29);
}

/* Log Matching: two logs with an entry of the same index and term hold the
 * same entries up to there; the chained hash makes that one comparison. */
static void note_entry(struct sim *s, int i, raft_index idx, raft_term t, uint64_t h) {
    sim_slot_need(s, idx);
    struct sim_slot *sl = &s->slot[idx];
    for (unsigned k = 0; k < sl->n_seen; k++) {
        if (sl->seen_t[k] != t)
            continue;
        if (sl->seen_chain[k] != h)
            sim_fail(s, "Log Matching: node %d holds (index %llu, term %llu) after a prefix no "
                        "other log with that entry has",
                     i + 1, (unsigned long long)idx, (unsigned long long)t);
        return;
    }
    if (sl->n_seen < SIM_SLOT_TERMS) {
        sl->seen_t[sl->n_seen] = t;
        sl->seen_chain[sl->n_seen++] = h;
    }
}

static void mirror_push(struct sim *s, int i, raft_term t, uint64_t id) {
    struct sim_node *nd = &s->node[i];
    if (nd->mn == nd->mcap) {
        nd->mcap = nd->mcap ? nd->mcap * 2 : 64;
        nd->mt = realloc(nd->mt, nd->mcap * sizeof *nd->mt);
        nd->mid = realloc(nd->mid, nd->mcap * sizeof *nd->mid);
        nd->mchain = realloc(nd->mchain, nd->mcap * sizeof *nd->mchain);
        if (!nd->mt || !nd->mid || !nd->mchain)
            abort();
    }
    uint64_t h = chain(nd->mn ? nd->mchain[nd->mn - 1] : 0, t, id);
    nd->mt[nd->mn] = t;
    nd->mid[nd->mn] = id;
    nd->mchain[nd->mn] = h;
    nd->mn++;
    note_entry(s, i, nd->mn, t, h);
}

static void mirror_from_snap(struct sim *s, int i, const struct sim_snap *sn) {
    struct sim_node *nd = &s->node[i];
    nd->mn = 0;
    for (raft_index k = 0; k < sn->index && !s->failed; k++)
        mirror_push(s, i, sn->t[k], sn->id[k]);
}

void sim_mirror_ready(struct sim *s, int i, const struct raft_ready *rd) {
    struct sim_node *nd = &s->node[i];
    if (rd->snapshot_index) /* the log now continues the snapshot */
        mirror_from_snap(s, i, &nd->inbox);
    raft_index cut = 0;
    if (rd->truncate_from)
        cut = rd->truncate_from;
    if (rd->n_entries && (cut == 0 || rd->entries[0].index < cut))
        cut = rd->entries[0].index;
    if (cut && cut <= nd->mn) {
        /* Leader Append-Only: a leader never overwrites or deletes its entries. */
        if (raft_role(nd->r) == RAFT_LEADER)
            sim_fail(s, "Leader Append-Only: leader %d (term %llu) rewrote its log from index %llu",
                     i + 1, (unsigned long long)raft_current_term(nd->r), (unsigned long long)cut);
        nd->mn = cut - 1;
    }
    if (rd->n_entries && rd->entries[0].index != nd->mn + 1)
        sim_fail(s, "Ready: node %d hands out entries from %llu but its log ends at %zu", i + 1,
                 (unsigned long long)rd->entries[0].index, nd->mn);
    for (size_t k = 0; k < rd->n_entries && !s->failed; k++)
        mirror_push(s, i, rd->entries[k].term, sim_entry_id(&rd->entries[k]));
}

void sim_mirror_reset(struct sim *s, int i) {
    struct sim_node *nd = &s->node[i];
    mirror_from_snap(s, i, &nd->disk.snap);
    for (size_t k = 0; k < nd->disk.n && !s->failed; k++)
        if (nd->disk.log[k].index > nd->disk.snap.index)
            mirror_push(s, i, nd->disk.log[k].term, sim_entry_id(&nd->disk.log[k]));
}

/* What node i holds at idx: its log, or (compacted away) its state machine. */
static bool held_entry(const struct sim_node *nd, raft_index idx, raft_term *t, uint64_t *id) {
    const struct raft_entry *e = raft_entry_at(nd->r, idx);
    if (e) {
        *t = e->term;
        *id = sim_entry_id(e);
        return true;
    }
    if (idx == 0 || idx > nd->applied)
        return false;
    *t = nd->sm_t[idx - 1];
    *id = nd->sm_id[idx - 1];
    return true;
}

static bool leader_has(const struct sim_node *nd, raft_index idx, const struct sim_slot *sl) {
    return idx <= nd->mn && nd->mt[idx - 1] == sl->term && nd->mid[idx - 1] == sl->id;
}

/* Leader Completeness: a leader of term T holds every entry committed in a
 * term <= T. */
static void check_completeness(struct sim *s, int i, raft_index from, raft_index to) {
    const struct sim_node *nd = &s->node[i];
    raft_term T = raft_current_term(nd->r);
    for (raft_index idx = from; idx <= to && !s->failed; idx++) {
        const struct sim_slot *sl = &s->slot[idx];
        if (sl->committed && sl->commit_term <= T && !leader_has(nd, idx, sl))
            sim_fail(s, "Leader Completeness: leader %d of term %llu lacks entry %llu (term %llu) "
                        "committed in term %llu",
                     i + 1, (unsigned long long)T, (unsigned long long)idx,
                     (unsigned long long)sl->term, (unsigned long long)sl->commit_term);
    }
}

/* ---- membership (stage 6). The checker works the configurations out of
 * the logs itself (the latest CONFIG entry, else the snapshot's, else the
 * bootstrap nodes) rather than asking the core which one it uses. */

static void bootstrap_conf(const struct sim *s, struct raft_membership *c) {
    memset(c, 0, sizeof *c);
    for (unsigned k = 0; k < s->members0; k++)
        c->m[c->n++] = (struct raft_member){k + 1, true};
}

/* The configuration leader i's log says is in effect at `at`, and the index
 * of its entry (0 when it is the snapshot's or the bootstrap one). */
static raft_index conf_in_log(const struct sim *s, int i, raft_index at, struct raft_membership *c) {
    const struct sim_node *nd = &s->node[i];
    for (raft_index k = at; k >= raft_first_index(nd->r) && k > 0; k--) {
        const struct raft_entry *e = raft_entry_at(nd->r, k);
        if (e && e->type == RAFT_ENTRY_CONFIG && raft_membership_decode(e->data, e->len, c) == RAFT_OK)
            return k;
    }
    if (nd->held.index)
        *c = nd->held.conf;
    else
        bootstrap_conf(s, c);
    return 0;
}

static bool conf_voter(const struct raft_membership *c, raft_id id) {
    const struct raft_member *m = raft_membership_find(c, id);
    return m && m->voter;
}

/* Node k's disk holds (idx, t): in its durable snapshot or durable log. */
static bool durably_holds(const struct sim_node *nd, raft_index idx, raft_term t) {
    const struct sim_disk *d = &nd->disk;
    if (idx <= d->snap.index)
        return d->snap.t[idx - 1] == t;
    return idx > d->base && idx <= d->base + d->n && d->log[idx - d->base - 1].term == t;
}

/* Quorums from the right configuration: when leader i commits c, a
 * majority of the voters of the configuration its log is in (the one
 * before, while it removes itself) holds entry c durably. */
static void check_commit_quorum(struct sim *s, int i, raft_index c) {
    struct sim_node *nd = &s->node[i];
    const struct raft_entry *e = raft_entry_at(nd->r, c);
    if (!e)
        return;
    struct raft_membership conf;
    raft_index at = conf_in_log(s, i, raft_last_index(nd->r), &conf);
    if (!conf_voter(&conf, (raft_id)i + 1) && at > 0)
        conf_in_log(s, i, at - 1, &conf);
    unsigned voters = 0, hold = 0;
    for (unsigned k = 0; k < conf.n; k++) {
        if (!conf.m[k].voter)
            continue;
        voters++;
        int j = (int)conf.m[k].id - 1;
        if (j >= 0 && j < (int)s->n && durably_holds(&s->node[j], c, e->term))
            hold++;
    }
    if (hold < voters / 2 + 1)
        sim_fail(s, "Quorum: leader %d commits index %llu held durably by %u of the %u voters of "
                    "its configuration",
                 i + 1, (unsigned long long)c, hold, voters);
}

/* A configuration entry is committed: a member of the one before that is
 * not in it was removed (and may not lead again unless re-added). */
static void on_conf_committed(struct sim *s, const struct raft_membership *c, raft_term term) {
    if (s->committed_conf.n == 0)
        bootstrap_conf(s, &s->committed_conf);
    for (unsigned x = 0; x < s->n; x++) {
        raft_id id = (raft_id)x + 1;
        if (raft_membership_find(c, id))
            s->removed_term[x] = 0;
        else if (raft_membership_find(&s->committed_conf, id) && !s->removed_term[x])
            s->removed_term[x] = term;
    }
    s->committed_conf = *c;
    s->changes++;
}

/* One change at a time: a leader's log never holds two configuration
 * entries that are not committed (as far as anyone has committed: a
 * restarted node's own commit index starts low). */
static void check_one_change(struct sim *s, int i) {
    struct raft *r = s->node[i].r;
    unsigned pending = 0;
    for (raft_index k = raft_commit_index(r) + 1; k <= raft_last_index(r); k++) {
        const struct raft_entry *e = raft_entry_at(r, k);
        if (k < s->n_slot && s->slot[k].committed)
            continue;
        if (e && e->type == RAFT_ENTRY_CONFIG && ++pending > 1) {
            sim_fail(s, "Membership: leader %d holds two uncommitted configuration changes "
                        "(the second at index %llu)",
                     i + 1, (unsigned long long)k);
            return;
        }
    }
}

static void record_commit(struct sim *s, int i) {
    struct sim_node *nd = &s->node[i];
    raft_index c = raft_commit_index(nd->r);
    if (c < nd->commit_seen)
        sim_fail(s, "node %d: commit index went back from %llu to %llu", i + 1,
                 (unsigned long long)nd->commit_seen, (unsigned long long)c);
    raft_index old_max = s->max_committed;
    for (raft_index idx = nd->commit_seen + 1; idx <= c && !s->failed; idx++) {
        raft_term et;
        uint64_t id;
        if (!held_entry(nd, idx, &et, &id)) {
            sim_fail(s, "node %d: commit index %llu beyond its log and snapshot", i + 1,
                     (unsigned long long)c);
            break;
        }
        sim_slot_need(s, idx);
        struct sim_slot *sl = &s->slot[idx];
        if (!sl->committed) {
            sl->committed = true;
            sl->term = et;
            sl->id = id;
            sl->commit_term = raft_current_term(nd->r);
            if (idx > s->max_committed)
                s->max_committed = idx;
            const struct raft_entry *e = raft_entry_at(nd->r, idx);
            struct raft_membership conf;
            if (e && e->type == RAFT_ENTRY_CONFIG &&
                raft_membership_decode(e->data, e->len, &conf) == RAFT_OK)
                on_conf_committed(s, &conf, sl->commit_term);
        } else if (sl->term != et || sl->id != id) {
            sim_fail(s, "State Machine Safety: node %d commits (term %llu, value %llu) at index "
                        "%llu where (term %llu, value %llu) was committed",
                     i + 1, (unsigned long long)et, (unsigned long long)id,
                     (unsigned long long)idx, (unsigned long long)sl->term,
                     (unsigned long long)sl->id);
        }
    }
    if (c > nd->commit_seen && raft_role(nd->r) == RAFT_LEADER && !s->failed)
        check_commit_quorum(s, i, c);
    if (s->tl && c > nd->commit_seen) {
        raft_term ct = 0;
        uint64_t cid;
        held_entry(nd, c, &ct, &cid);
        SIM_TL(s, TR_COMMIT, i, -1, 0, c, ct, 0);
    }
    nd->commit_seen = c;
    /* entries newly committed must be in every current leader's log */
    if (s->max_committed > old_max)
        for (unsigned k = 0; k < s->n && !s->failed; k++)
            if (s->node[k].r && raft_role(s->node[k].r) == RAFT_LEADER)
                check_completeness(s, (int)k, old_max + 1, s->max_committed);
}

void sim_check(struct sim *s) {
    s->events++;
    for (unsigned i = 0; i < s->n && !s->failed; i++) {
        struct sim_node *nd = &s->node[i];
        if (!nd->r)
            continue;
        record_commit(s, (int)i);
        raft_index first = raft_first_index(nd->r), last = raft_last_index(nd->r);
        unsigned len = last + 1 >= first ? (unsigned)(last + 1 - first) : 0;
        if (len > s->max_log)
            s->max_log = len;
        if (first > raft_snapshot_index(nd->r) + 1 || raft_snapshot_index(nd->r) > nd->applied)
            sim_fail(s, "node %d: its log starts at %llu but its snapshot ends at %llu (applied %llu)",
                     i + 1, (unsigned long long)first,
                     (unsigned long long)raft_snapshot_index(nd->r),
                     (unsigned long long)nd->applied);
        /* What a bounded-staleness follower read waits for (raft_leader_commit)
         * must be an index some node has really committed. */
        if (raft_role(nd->r) == RAFT_FOLLOWER && raft_leader_commit(nd->r) > s->max_committed)
            sim_fail(s, "Follower read: node %u was told commit %llu, beyond anything committed (%llu)", i + 1,
                     (unsigned long long)raft_leader_commit(nd->r), (unsigned long long)s->max_committed);
        if (raft_role(nd->r) != RAFT_LEADER)
            continue;
        raft_term T = raft_current_term(nd->r);
        if (T >= s->n_leader_of) {
            size_t n = s->n_leader_of ? s->n_leader_of : 16;
            while (n <= T)
                n *= 2;
            s->leader_of = realloc(s->leader_of, n * sizeof *s->leader_of);
            if (!s->leader_of)
                abort();
            memset(s->leader_of + s->n_leader_of, 0, (n - s->n_leader_of) * sizeof *s->leader_of);
            s->n_leader_of = n;
        }
        if (s->removed_term[i] && T > s->removed_term[i])
            sim_fail(s, "Membership: node %u leads term %llu after its removal committed in term %llu",
                     i + 1, (unsigned long long)T, (unsigned long long)s->removed_term[i]);
        check_one_change(s, (int)i);
        if (s->leader_of[T] == 0)
            s->leader_of[T] = i + 1;
        else if (s->leader_of[T] != i + 1)
            sim_fail(s, "Election Safety: nodes %u and %u both lead term %llu", s->leader_of[T],
                     i + 1, (unsigned long long)T);
        if (nd->lead_term != T) { /* new leadership: check everything committed so far */
            nd->lead_term = T;
            check_completeness(s, (int)i, 1, s->max_committed);
        }
    }
}

void sim_check_deep(struct sim *s) {
    for (unsigned i = 0; i < s->n && !s->failed; i++) {
        struct sim_node *nd = &s->node[i];
        if (!nd->r)
            continue;
        raft_index last = raft_last_index(nd->r);
        if (last != nd->mn) {
            sim_fail(s, "Ready: node %d's log ends at %llu but its Ready batches described %zu",
                     i + 1, (unsigned long long)last, nd->mn);
            break;
        }
        for (raft_index idx = raft_first_index(nd->r); idx <= last; idx++) {
            const struct raft_entry *e = raft_entry_at(nd->r, idx);
            if (!e || e->index != idx || e->term != nd->mt[idx - 1] ||
                sim_entry_id(e) != nd->mid[idx - 1]) {
                sim_fail(s, "Ready: node %d's entry %llu differs from what its Ready reported",
                         i + 1, (unsigned long long)idx);
                break;
            }
        }
    }
}

void sim_on_apply(struct sim *s, int i, const struct raft_entry *e) {
    struct sim_node *nd = &s->node[i];
    if (e->index != nd->applied + 1)
        sim_fail(s, "node %d applies index %llu after %llu", i + 1, (unsigned long long)e->index,
                 (unsigned long long)nd->applied);
    const struct sim_disk *d = &nd->disk;
    if (e->index <= d->base || e->index > d->base + d->n ||
        d->log[e->index - d->base - 1].term != e->term)
        sim_fail(s, "Ready: node %d applies index %llu that is not durable on its disk", i + 1,
                 (unsigned long long)e->index);
    if (e->index > raft_commit_index(nd->r))
        sim_fail(s, "node %d applies uncommitted index %llu", i + 1, (unsigned long long)e->index);
    sim_slot_need(s, e->index);
    struct sim_slot *sl = &s->slot[e->index];
    uint64_t id = sim_entry_id(e);
    if (!sl->applied && !sl->committed) {
        sl->term = e->term;
        sl->id = id;
    }
    if (sl->applied || sl->committed) {
        if (sl->term != e->term || sl->id != id)
            sim_fail(s, "State Machine Safety: node %d applies (term %llu, value %llu) at index "
                        "%llu where (term %llu, value %llu) was applied or committed",
                     i + 1, (unsigned long long)e->term, (unsigned long long)id,
                     (unsigned long long)e->index, (unsigned long long)sl->term,
                     (unsigned long long)sl->id);
    }
    sl->applied = true;
    sim_trace(s, TR_APPLY, i, -1, 0, e->index, e->term, id);
}

void sim_on_read(struct sim *s, int i, uint64_t ctx, raft_index index) {
    if (ctx >= s->n_reads || s->reads[ctx].node != i || s->reads[ctx].done) {
        sim_fail(s, "node %d reports read %llu it was not asked (or twice)", i + 1,
                 (unsigned long long)ctx);
        return;
    }
    struct sim_read *rd = &s->reads[ctx];
    rd->done = true;
    sim_trace(s, TR_READ_DONE, i, -1, 0, ctx, index, rd->min_index);
    if (index < rd->min_index)
        sim_fail(s, "Linearizability: node %d serves read %llu at index %llu, but index %llu was "
                    "committed before the read was asked",
                 i + 1, (unsigned long long)ctx, (unsigned long long)index,
                 (unsigned long long)rd->min_index);
    if (s->node[i].applied < index)
        sim_fail(s, "node %d serves read %llu at index %llu before applying it (applied %llu)",
                 i + 1, (unsigned long long)ctx, (unsigned long long)index,
                 (unsigned long long)s->node[i].applied);
}

void sim_on_restore(struct sim *s, int i, const struct sim_snap *sn) {
    if (sn->index && sn->t[sn->index - 1] != sn->term)
        sim_fail(s, "node %d: snapshot at %llu names term %llu, its last entry has term %llu", i + 1,
                 (unsigned long long)sn->index, (unsigned long long)sn->term,
                 (unsigned long long)sn->t[sn->index - 1]);
    sim_slot_need(s, sn->index);
    for (raft_index idx = 1; idx <= sn->index && !s->failed; idx++) {
        struct sim_slot *sl = &s->slot[idx];
        raft_term t = sn->t[idx - 1];
        uint64_t id = sn->id[idx - 1];
        if (!sl->applied && !sl->committed) {
            sl->term = t;
            sl->id = id;
        } else if (sl->term != t || sl->id != id) {
            sim_fail(s, "State Machine Safety: node %d's snapshot holds (term %llu, value %llu) at "
                        "index %llu where (term %llu, value %llu) was applied or committed",
                     i + 1, (unsigned long long)t, (unsigned long long)id, (unsigned long long)idx,
                     (unsigned long long)sl->term, (unsigned long long)sl->id);
        }
        sl->applied = true;
    }
}
