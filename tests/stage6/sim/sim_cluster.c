/* sim_cluster.c - the simulated world: nodes built from the real core, a
 * network (loss, duplication, delay, reordering, partitions cut per
 * direction) and a disk per node (writes complete in order after a delay; a
 * crash loses those not complete). Every input to a node is followed by
 * draining its Ready and by the invariant checks. Each node's host keeps a
 * state machine, snapshots it every snap_every entries, deletes the log the
 * core says it no longer needs, and streams snapshots through the network
 * (slower than a message, lost, duplicated and reordered like one),
 * reporting each transfer's outcome back to the sending core. */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!q)
        abort(); /* the simulation itself is not under test for OOM */
    return q;
}

uint64_t sim_rand(struct sim *s) {
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

unsigned sim_rand_below(struct sim *s, unsigned n) { return n ? (unsigned)(sim_rand(s) % n) : 0; }

static uint64_t name_hash(const char *p) {
    uint64_t h = 1469598103934665603ULL;
    for (; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    return h;
}

void sim_init(struct sim *s, const char *scenario, uint64_t seed, unsigned n) {
    memset(s, 0, sizeof *s);
    s->scenario = scenario;
    s->seed = seed;
    s->rng = seed ^ name_hash(scenario);
    s->n = n;
    s->members0 = n;
    s->pre_vote = s->check_quorum = true;
    s->disk_min = 1;
    s->disk_max = 8;
    for (unsigned k = 0; k < SIM_MAX; k++)
        s->connected[k] = true;
    sim_reliable(s);
    s->verbose = getenv("SIM_VERBOSE") != NULL;
}

void sim_reliable(struct sim *s) {
    s->loss_pm = s->dup_pm = s->long_pm = 0;
    s->delay_min = 1;
    s->delay_max = 5;
    s->long_max = 0;
}

void sim_unreliable(struct sim *s) {
    s->loss_pm = 100;
    s->dup_pm = 50;
    s->long_pm = 50;
    s->delay_min = 1;
    s->delay_max = 25;
    s->long_max = 2 * SIM_E;
}

static struct raft *new_core(struct sim *s, int i) {
    raft_id peers[SIM_MAX + 1];
    unsigned np = 0;
    for (unsigned k = 0; k < s->members0; k++)
        peers[np++] = k + 1;
    if (s->node[i].joiner) /* the members' list plus its own entry, as --join takes it */
        peers[np++] = (raft_id)i + 1;
    struct raft_config cfg;
    raft_config_default(&cfg, (raft_id)i + 1, peers, np);
    cfg.join = s->node[i].joiner;
    cfg.election_ticks = SIM_ELECTION;
    cfg.heartbeat_ticks = 1;
    cfg.seed = sim_rand(s);
    cfg.pre_vote = s->pre_vote;
    cfg.check_quorum = s->check_quorum;
    cfg.max_inflight = s->max_inflight;
    cfg.max_batch_entries = s->max_batch;
    cfg.snapshot_trailing = s->trailing;
    struct raft *r = NULL;
    for (int tries = 0; !r && tries < 100; tries++) /* allocations may fail in raft_sim_oom */
        r = raft_new(&cfg);
    if (!r)
        abort();
    return r;
}

static void handle_ready(struct sim *s, int i);

void sim_start(struct sim *s) {
    static const unsigned inflight[] = {1, 2, 4}, batch[] = {1, 2, 8}, disk[] = {2, 8, 40};
    s->max_inflight = inflight[sim_rand_below(s, 3)];
    s->max_batch = batch[sim_rand_below(s, 3)];
    s->disk_max = disk[sim_rand_below(s, 3)]; /* slow disks stretch the held-ack windows */
    if (!s->snap_fixed) { /* stage 5's scenarios, with snapshots in most runs */
        static const unsigned every[] = {0, 4, 10, 30}, trailing[] = {0, 2, 10};
        s->snap_every = every[sim_rand_below(s, 4)];
        s->trailing = trailing[sim_rand_below(s, 3)];
    }
    for (unsigned i = 0; i < s->n; i++) {
        s->node[i].phase = sim_rand_below(s, SIM_TICK);
        s->node[i].dormant = i >= s->members0;
        if (!s->node[i].dormant)
            s->node[i].r = new_core(s, (int)i);
    }
}

void sim_join(struct sim *s, int i) {
    struct sim_node *nd = &s->node[i];
    if (!nd->dormant)
        return;
    nd->dormant = false;
    nd->joiner = true;
    sim_restart(s, i); /* an empty disk: a fresh core */
}

static bool same_conf(const struct raft_membership *a, const struct raft_membership *b) {
    if (a->n != b->n)
        return false;
    for (unsigned k = 0; k < a->n; k++)
        if (a->m[k].id != b->m[k].id || a->m[k].voter != b->m[k].voter)
            return false;
    return true;
}

static void free_entries(struct raft_entry *e, size_t n) {
    for (size_t k = 0; k < n; k++)
        free(e[k].data);
    free(e);
}

void sim_snap_free(struct sim_snap *sn) {
    free(sn->t);
    free(sn->id);
    memset(sn, 0, sizeof *sn);
}

void sim_snap_copy(struct sim_snap *dst, const struct sim_snap *src) {
    memset(dst, 0, sizeof *dst);
    dst->index = src->index;
    dst->term = src->term;
    dst->conf = src->conf;
    if (!src->index)
        return;
    dst->t = xrealloc(NULL, src->index * sizeof *dst->t);
    dst->id = xrealloc(NULL, src->index * sizeof *dst->id);
    memcpy(dst->t, src->t, src->index * sizeof *dst->t);
    memcpy(dst->id, src->id, src->index * sizeof *dst->id);
}

static void free_queue(struct sim_disk *d) {
    for (size_t k = 0; k < d->nq; k++) {
        free_entries(d->q[k].e, d->q[k].n);
        sim_snap_free(&d->q[k].install);
        sim_snap_free(&d->q[k].take);
    }
    d->nq = 0;
}

/* The state machine becomes a snapshot's contents (install, restart). */
static void sm_load(struct sim_node *nd, const struct sim_snap *sn) {
    if (sn->index > nd->sm_cap) {
        nd->sm_cap = sn->index;
        nd->sm_t = xrealloc(nd->sm_t, nd->sm_cap * sizeof *nd->sm_t);
        nd->sm_id = xrealloc(nd->sm_id, nd->sm_cap * sizeof *nd->sm_id);
    }
    if (sn->index) {
        memcpy(nd->sm_t, sn->t, sn->index * sizeof *nd->sm_t);
        memcpy(nd->sm_id, sn->id, sn->index * sizeof *nd->sm_id);
    }
    nd->applied = sn->index;
}

static void sm_apply(struct sim_node *nd, const struct raft_entry *e) {
    if (nd->applied == nd->sm_cap) {
        nd->sm_cap = nd->sm_cap ? nd->sm_cap * 2 : 64;
        nd->sm_t = xrealloc(nd->sm_t, nd->sm_cap * sizeof *nd->sm_t);
        nd->sm_id = xrealloc(nd->sm_id, nd->sm_cap * sizeof *nd->sm_id);
    }
    nd->sm_t[nd->applied] = e->term;
    nd->sm_id[nd->applied] = sim_entry_id(e);
    nd->applied = e->index;
}

void sim_free(struct sim *s) {
    for (unsigned i = 0; i < s->n; i++) {
        struct sim_node *nd = &s->node[i];
        raft_free(nd->r);
        free_queue(&nd->disk);
        free(nd->disk.q);
        free_entries(nd->disk.log, nd->disk.n);
        sim_snap_free(&nd->disk.snap);
        sim_snap_free(&nd->held);
        sim_snap_free(&nd->inbox);
        free(nd->sm_t);
        free(nd->sm_id);
        free(nd->mt);
        free(nd->mid);
        free(nd->mchain);
    }
    for (size_t k = 0; k < s->nheap; k++) {
        free_entries(s->heap[k].m.entries, s->heap[k].m.n_entries);
        sim_snap_free(&s->heap[k].snap);
    }
    free(s->heap);
    free(s->leader_of);
    free(s->slot);
    free(s->reads);
}

static struct raft_entry *copy_entries(const struct raft_entry *src, size_t n) {
    if (!n)
        return NULL;
    struct raft_entry *e = xrealloc(NULL, n * sizeof *e);
    for (size_t k = 0; k < n; k++) {
        e[k] = src[k];
        e[k].data = NULL;
        if (src[k].len) {
            e[k].data = xrealloc(NULL, src[k].len);
            memcpy(e[k].data, src[k].data, src[k].len);
        }
    }
    return e;
}

/* ---- the event heap of messages in flight, ordered by (time, sequence) */

static bool ev_less(const struct sim_ev *a, const struct sim_ev *b) {
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void heap_push(struct sim *s, struct sim_ev ev) {
    if (s->nheap == s->capheap) {
        s->capheap = s->capheap ? s->capheap * 2 : 64;
        s->heap = xrealloc(s->heap, s->capheap * sizeof *s->heap);
    }
    size_t k = s->nheap++;
    s->heap[k] = ev;
    while (k && ev_less(&s->heap[k], &s->heap[(k - 1) / 2])) {
        struct sim_ev t = s->heap[k];
        s->heap[k] = s->heap[(k - 1) / 2];
        s->heap[(k - 1) / 2] = t;
        k = (k - 1) / 2;
    }
}

static struct sim_ev heap_pop(struct sim *s) {
    struct sim_ev top = s->heap[0];
    s->heap[0] = s->heap[--s->nheap];
    size_t k = 0;
    for (;;) {
        size_t l = 2 * k + 1, r = l + 1, m = k;
        if (l < s->nheap && ev_less(&s->heap[l], &s->heap[m]))
            m = l;
        if (r < s->nheap && ev_less(&s->heap[r], &s->heap[m]))
            m = r;
        if (m == k)
            break;
        struct sim_ev t = s->heap[k];
        s->heap[k] = s->heap[m];
        s->heap[m] = t;
        k = m;
    }
    return top;
}

/* ---- network */

/* The sending host learns how a snapshot transfer went a little later. */
static void push_report(struct sim *s, int from, int to, raft_index index, bool ok) {
    struct sim_ev ev = {.at = s->now + 1 + sim_rand_below(s, s->delay_max), .seq = ++s->seq,
                        .report = true, .incarnation = s->node[from].incarnation};
    ev.m.from = (raft_id)from + 1;
    ev.m.to = (raft_id)to + 1;
    ev.m.snap_index = index;
    ev.m.reject = !ok;
    heap_push(s, ev);
}

static void net_send(struct sim *s, int from, const struct raft_msg *m) {
    int to = (int)m->to - 1;
    if (to < 0 || to >= (int)s->n) {
        sim_fail(s, "node %d sent %s to unknown node %u", from + 1, raft_msg_name(m->type), m->to);
        return;
    }
    const struct sim_snap *data = NULL;
    if (m->type == RAFT_MSG_SNAPSHOT) {
        data = &s->node[from].held;
        if (data->index != m->snap_index || data->term != m->snap_term) {
            sim_fail(s, "node %d's core asks to send snapshot (%llu, term %llu) but its host holds "
                        "(%llu, term %llu)",
                     from + 1, (unsigned long long)m->snap_index, (unsigned long long)m->snap_term,
                     (unsigned long long)data->index, (unsigned long long)data->term);
            return;
        }
        if (!same_conf(&m->conf, &data->conf)) {
            sim_fail(s, "node %d's core sends snapshot %llu with a configuration its host did not "
                        "store with it", from + 1, (unsigned long long)m->snap_index);
            return;
        }
        s->snaps_sent++;
    }
    if (s->tl)
        sim_tl_send(s, from, m);
    if (s->cut[from][to] || sim_rand_below(s, 1000) < s->loss_pm) {
        sim_trace(s, TR_DROP, from, to, m->type, m->term, m->prev_index, m->n_entries);
        if (data)
            push_report(s, from, to, m->snap_index, false);
        return;
    }
    unsigned copies = 1 + (sim_rand_below(s, 1000) < s->dup_pm);
    for (unsigned c = 0; c < copies; c++) {
        uint64_t delay = s->delay_min + sim_rand_below(s, s->delay_max - s->delay_min + 1);
        if (sim_rand_below(s, 1000) < s->long_pm)
            delay += sim_rand_below(s, s->long_max + 1);
        if (data) /* streaming takes time: one unit per 16 entries of state */
            delay += data->index / 16 + s->snap_delay;
        struct sim_ev ev = {.at = s->now + delay, .seq = ++s->seq, .m = *m,
                            .incarnation = s->node[from].incarnation};
        ev.m.entries = copy_entries(m->entries, m->n_entries);
        if (data)
            sim_snap_copy(&ev.snap, data);
        heap_push(s, ev);
    }
}

static void deliver_report(struct sim *s, struct sim_ev *ev) {
    int from = (int)ev->m.from - 1, to = (int)ev->m.to - 1;
    struct sim_node *nd = &s->node[from];
    if (!nd->r || nd->incarnation != ev->incarnation)
        return; /* the core that began it is gone */
    sim_trace(s, TR_SNAP, from, to, 0, ev->m.snap_index, 0,
              ev->m.reject ? SNAP_SENT_FAILED : SNAP_SENT_OK);
    raft_snapshot_sent(nd->r, ev->m.to, ev->m.snap_index, !ev->m.reject);
    handle_ready(s, from);
    sim_check(s);
}

static void deliver(struct sim *s, struct sim_ev *ev) {
    if (ev->report) {
        deliver_report(s, ev);
        return;
    }
    int from = (int)ev->m.from - 1, to = (int)ev->m.to - 1;
    struct sim_node *nd = &s->node[to];
    bool snap = ev->m.type == RAFT_MSG_SNAPSHOT;
    if (!nd->r || s->cut[from][to]) {
        sim_trace(s, TR_DROP, from, to, ev->m.type, ev->m.term, ev->m.prev_index, ev->m.n_entries);
        if (snap && s->node[from].incarnation == ev->incarnation)
            push_report(s, from, to, ev->m.snap_index, false);
    } else {
        if (snap) { /* the whole snapshot is stored here before the core hears of it */
            if (ev->m.term < raft_current_term(nd->r))
                s->snaps_stale++;
            sim_snap_free(&nd->inbox);
            nd->inbox = ev->snap;
            memset(&ev->snap, 0, sizeof ev->snap);
        }
        /* idx: an append's prev_index, a snapshot's index (which one arrived
         * late is what a snapshot failure turns on), else the match index. */
        sim_trace(s, TR_DELIVER, to, from, ev->m.type, ev->m.term,
                  ev->m.type == RAFT_MSG_APPEND     ? ev->m.prev_index
                  : ev->m.type == RAFT_MSG_SNAPSHOT ? ev->m.snap_index
                                                    : ev->m.match_index,
                  ev->m.type == RAFT_MSG_APPEND ? ev->m.n_entries : ev->m.reject);
        if (raft_step(nd->r, &ev->m) != RAFT_OK)
            sim_fail(s, "node %d refused a well-formed %s", to + 1, raft_msg_name(ev->m.type));
        handle_ready(s, to);
        sim_snap_free(&nd->inbox); /* installed by now, or not needed */
        sim_check(s);
        if (snap && s->node[from].incarnation == ev->incarnation)
            push_report(s, from, to, ev->m.snap_index, true);
    }
    free_entries(ev->m.entries, ev->m.n_entries);
    sim_snap_free(&ev->snap);
}

void sim_disconnect(struct sim *s, int i) {
    s->connected[i] = false;
    for (unsigned k = 0; k < s->n; k++)
        if ((int)k != i)
            s->cut[i][k] = s->cut[k][i] = true;
    sim_trace(s, TR_CUT, i, -1, 0, 0, 0, 0);
}

/* Reconnects i to every node that is itself connected. */
void sim_connect(struct sim *s, int i) {
    s->connected[i] = true;
    for (unsigned k = 0; k < s->n; k++)
        if (s->connected[k])
            s->cut[i][k] = s->cut[k][i] = false;
    sim_trace(s, TR_HEAL, i, -1, 0, 0, 0, 0);
}

void sim_heal(struct sim *s) {
    memset(s->cut, 0, sizeof s->cut);
    for (unsigned k = 0; k < s->n; k++)
        s->connected[k] = true;
    sim_trace(s, TR_HEAL, -1, -1, 0, 0, 0, 0);
}

void sim_cut(struct sim *s, int from, int to) {
    s->cut[from][to] = true;
    sim_trace(s, TR_CUT, from, to, 0, 0, 0, 0);
}

/* ---- disk */

static struct sim_write *disk_push(struct sim *s, int i) {
    struct sim_disk *d = &s->node[i].disk;
    if (d->nq == d->capq) {
        d->capq = d->capq ? d->capq * 2 : 8;
        d->q = xrealloc(d->q, d->capq * sizeof *d->q);
    }
    uint64_t at = s->now + s->disk_min + sim_rand_below(s, s->disk_max - s->disk_min + 1);
    if (d->nq && d->q[d->nq - 1].done_at > at)
        at = d->q[d->nq - 1].done_at;
    struct sim_write *w = &d->q[d->nq++];
    memset(w, 0, sizeof *w);
    w->done_at = at;
    return w;
}

static void disk_enqueue(struct sim *s, int i, const struct raft_ready *rd) {
    struct sim_write *w = disk_push(s, i);
    if (rd->snapshot_index)
        sim_snap_copy(&w->install, &s->node[i].inbox);
    w->compact = rd->compacted_to;
    w->trunc = rd->truncate_from;
    w->e = copy_entries(rd->entries, rd->n_entries);
    w->n = rd->n_entries;
}

/* The host snapshots its state machine at what it has applied. */
static void maybe_take_snapshot(struct sim *s, int i) {
    struct sim_node *nd = &s->node[i];
    raft_index newest = nd->held.index > nd->disk.snap.index ? nd->held.index : nd->disk.snap.index;
    if (!s->snap_every || nd->taking || nd->applied < newest + s->snap_every)
        return;
    struct sim_snap sn = {.index = nd->applied, .term = nd->sm_t[nd->applied - 1],
                          .t = nd->sm_t, .id = nd->sm_id};
    if (raft_membership_at(nd->r, nd->applied, &sn.conf) != RAFT_OK) {
        sim_fail(s, "node %d: the core cannot name the configuration at applied index %llu", i + 1,
                 (unsigned long long)nd->applied);
        return;
    }
    struct sim_write *w = disk_push(s, i);
    sim_snap_copy(&w->take, &sn);
    nd->taking = true;
}

static void disk_drop_log(struct sim_disk *d, size_t k) { /* the first k entries */
    for (size_t j = 0; j < k; j++)
        free(d->log[j].data);
    if (k < d->n)
        memmove(d->log, d->log + k, (d->n - k) * sizeof *d->log);
    d->n -= k;
    d->base += k;
}

static void disk_complete(struct sim *s, int i) {
    struct sim_node *nd = &s->node[i];
    struct sim_disk *d = &nd->disk;
    struct sim_write w = d->q[0];
    memmove(d->q, d->q + 1, (d->nq - 1) * sizeof *d->q);
    d->nq--;
    raft_index installed = w.install.index;
    raft_term installed_term = w.install.term;
    if (installed) { /* the received snapshot becomes the base; the old log goes */
        sim_snap_free(&d->snap);
        d->snap = w.install;
        disk_drop_log(d, d->n);
        d->base = installed;
    }
    struct sim_snap taken = w.take;
    if (taken.index) {
        nd->taking = false;
        if (taken.index > d->snap.index) {
            sim_snap_free(&d->snap);
            sim_snap_copy(&d->snap, &taken);
        }
        if (taken.index > nd->held.index) {
            sim_snap_free(&nd->held);
            sim_snap_copy(&nd->held, &taken);
        }
        sim_trace(s, TR_SNAP, i, -1, 0, taken.index, taken.term, SNAP_TAKEN);
    }
    if (w.compact) {
        if (w.compact > d->snap.index)
            sim_fail(s, "node %d: the core let the host delete log entries up to %llu, but its "
                        "durable snapshot ends at %llu",
                     i + 1, (unsigned long long)w.compact, (unsigned long long)d->snap.index);
        else if (w.compact > d->base)
            disk_drop_log(d, w.compact - d->base < d->n ? (size_t)(w.compact - d->base) : d->n);
        sim_trace(s, TR_SNAP, i, -1, 0, w.compact, 0, SNAP_COMPACT);
    }
    if (w.trunc) {
        while (d->n && d->log[d->n - 1].index >= w.trunc) {
            d->n--;
            free(d->log[d->n].data);
        }
    }
    if (installed)
        raft_persisted(nd->r, installed, installed_term);
    if (taken.index) {
        int rc = raft_snapshot_done(nd->r, taken.index, taken.term);
        /* refused only when a newer snapshot was installed meanwhile */
        if (rc != RAFT_OK && taken.index > raft_snapshot_index(nd->r))
            sim_fail(s, "node %d: the core refused its snapshot at %llu (term %llu): %d", i + 1,
                     (unsigned long long)taken.index, (unsigned long long)taken.term, rc);
        sim_snap_free(&taken);
    }
    if (w.n) {
        if (w.e[0].index != d->base + d->n + 1)
            sim_fail(s, "node %d: write at index %llu does not follow its durable log (last %llu)",
                     i + 1, (unsigned long long)w.e[0].index,
                     (unsigned long long)(d->base + d->n));
        while (d->n + w.n > d->cap) {
            d->cap = d->cap ? d->cap * 2 : 64;
            d->log = xrealloc(d->log, d->cap * sizeof *d->log);
        }
        memcpy(d->log + d->n, w.e, w.n * sizeof *w.e);
        d->n += w.n;
        raft_index last = w.e[w.n - 1].index;
        raft_term term = w.e[w.n - 1].term;
        free(w.e);
        sim_trace(s, TR_PERSIST, i, -1, 0, last, term, 0);
        raft_persisted(nd->r, last, term);
    }
    handle_ready(s, i);
    sim_check(s);
}

/* ---- nodes */

static void handle_ready(struct sim *s, int i) {
    struct sim_node *nd = &s->node[i];
    struct raft_ready rd;
    unsigned rounds = 0;
    while (!s->failed && raft_ready(nd->r, &rd)) {
        if (nd->crash_pending) {
            nd->crash_pending = false;
            sim_crash(s, i); /* the Ready dies with the core */
            return;
        }
        if (++rounds > 100) {
            sim_fail(s, "node %d: Ready never drains", i + 1);
            return;
        }
        if (rd.hard_state_changed) { /* atomic file, durable before any message */
            if (rd.term < nd->disk.term)
                sim_fail(s, "node %d: term went back from %llu to %llu", i + 1,
                         (unsigned long long)nd->disk.term, (unsigned long long)rd.term);
            if (rd.term != nd->disk.term)
                SIM_TL(s, TR_TERM, i, -1, 0, rd.term, nd->disk.term, 0);
            nd->disk.term = rd.term;
            nd->disk.vote = rd.vote;
        }
        if (rd.snapshot_index) {
            if (nd->inbox.index != rd.snapshot_index || nd->inbox.term != rd.snapshot_term) {
                sim_fail(s, "node %d: asked to install snapshot (%llu, term %llu) it was not sent",
                         i + 1, (unsigned long long)rd.snapshot_index,
                         (unsigned long long)rd.snapshot_term);
                return;
            }
            if (raft_role(nd->r) == RAFT_LEADER)
                sim_fail(s, "node %d installs a snapshot while leading", i + 1);
            if (rd.snapshot_index < nd->applied)
                sim_fail(s, "State Machine Safety: node %d installs a snapshot at %llu over a state "
                            "machine that applied up to %llu (applied entries undone)",
                         i + 1, (unsigned long long)rd.snapshot_index,
                         (unsigned long long)nd->applied);
            if (!same_conf(&rd.snapshot_conf, &nd->inbox.conf))
                sim_fail(s, "node %d: Ready.snapshot_conf differs from the configuration stored "
                            "with the snapshot it received", i + 1);
            nd->installs++;
            sm_load(nd, &nd->inbox); /* before applying what follows it */
            sim_on_restore(s, i, &nd->inbox);
            sim_snap_free(&nd->held);
            sim_snap_copy(&nd->held, &nd->inbox);
            s->installs++;
            sim_trace(s, TR_SNAP, i, -1, 0, rd.snapshot_index, rd.snapshot_term, SNAP_INSTALL);
        }
        /* what this Ready discards: an acknowledged entry must stay (its
         * leader may have counted it toward a commit) */
        raft_index drop = rd.snapshot_index ? rd.snapshot_index + 1 : rd.truncate_from;
        if (rd.truncate_from && rd.truncate_from < drop)
            drop = rd.truncate_from;
        if (drop && drop <= nd->ack_index && nd->ack_term == rd.term)
            sim_fail(s, "node %d discards its log from %llu in term %llu, where it acknowledged "
                        "entries up to %llu to the leader",
                     i + 1, (unsigned long long)drop, (unsigned long long)rd.term,
                     (unsigned long long)nd->ack_index);
        sim_mirror_ready(s, i, &rd);
        if (rd.snapshot_index || rd.compacted_to || rd.truncate_from || rd.n_entries)
            disk_enqueue(s, i, &rd);
        for (size_t k = 0; k < rd.n_messages; k++) {
            const struct raft_msg *m = &rd.messages[k];
            if (m->type == RAFT_MSG_APPEND_RESP && !m->reject) {
                if (m->term > nd->ack_term) {
                    nd->ack_term = m->term;
                    nd->ack_index = 0;
                }
                if (m->term == nd->ack_term && m->match_index > nd->ack_index)
                    nd->ack_index = m->match_index;
            }
            net_send(s, i, m);
        }
        for (size_t k = 0; k < rd.n_committed; k++) {
            sim_on_apply(s, i, &rd.committed[k]);
            sm_apply(nd, &rd.committed[k]);
        }
        for (size_t k = 0; k < rd.n_reads; k++)
            sim_on_read(s, i, rd.reads[k].ctx, rd.reads[k].index);
        if (rd.soft_changed)
            sim_trace(s, TR_ROLE, i, (int)rd.leader - 1, rd.role, rd.term, 0, 0);
        raft_advance(nd->r);
        raft_applied(nd->r, nd->applied);
        maybe_take_snapshot(s, i);
    }
}

bool sim_up(const struct sim *s, int i) { return s->node[i].r != NULL; }

void sim_restart_all(struct sim *s) {
    for (unsigned k = 0; k < s->n; k++) {
        s->node[k].crash_pending = false;
        sim_restart(s, (int)k);
    }
}

void sim_crash_in_ready(struct sim *s, int i) {
    if (s->node[i].r)
        s->node[i].crash_pending = true;
}

void sim_crash(struct sim *s, int i) {
    struct sim_node *nd = &s->node[i];
    if (!nd->r)
        return;
    raft_free(nd->r);
    nd->r = NULL;
    free_queue(&nd->disk); /* unsynced writes are lost */
    nd->taking = false;
    sim_trace(s, TR_CRASH, i, -1, 0, nd->disk.term, nd->disk.n, 0);
}

void sim_restart(struct sim *s, int i) {
    struct sim_node *nd = &s->node[i];
    if (nd->r || nd->dormant)
        return;
    nd->r = new_core(s, i);
    nd->incarnation++;
    int rc = RAFT_ERR_NOMEM;
    for (int tries = 0; nd->disk.snap.index && rc == RAFT_ERR_NOMEM && tries < 100; tries++)
        rc = raft_restore_membership(nd->r, &nd->disk.snap.conf);
    if (nd->disk.snap.index && rc != RAFT_OK)
        sim_fail(s, "node %d: the configuration of its snapshot was refused (%d)", i + 1, rc);
    rc = RAFT_ERR_NOMEM;
    for (int tries = 0; rc == RAFT_ERR_NOMEM && tries < 100; tries++)
        rc = raft_restore(nd->r, nd->disk.term, nd->disk.vote, nd->disk.snap.index,
                          nd->disk.snap.term, nd->disk.log, nd->disk.n);
    if (rc != RAFT_OK)
        sim_fail(s, "node %d: restore from its own durable state refused (%d)", i + 1, rc);
    /* the state machine starts from the snapshot; the log after it is replayed */
    sm_load(nd, &nd->disk.snap);
    sim_snap_free(&nd->held);
    sim_snap_copy(&nd->held, &nd->disk.snap);
    nd->taking = false;
    sim_on_restore(s, i, &nd->disk.snap);
    nd->commit_seen = 0;
    nd->crash_pending = false;
    nd->lead_term = 0;
    sim_mirror_reset(s, i);
    sim_trace(s, TR_RESTART, i, -1, 0, nd->disk.term, nd->disk.n, 0);
    handle_ready(s, i);
    sim_check(s);
}

static void step_unit(struct sim *s) {
    s->now++;
    while (!s->failed && s->nheap && s->heap[0].at <= s->now) {
        struct sim_ev ev = heap_pop(s);
        deliver(s, &ev);
    }
    for (unsigned i = 0; i < s->n && !s->failed; i++) {
        struct sim_node *nd = &s->node[i];
        while (nd->r && nd->disk.nq && nd->disk.q[0].done_at <= s->now && !s->failed)
            disk_complete(s, (int)i);
        if (nd->r && (s->now + nd->phase) % SIM_TICK == 0 && !s->failed) {
            raft_tick(nd->r);
            handle_ready(s, (int)i);
            sim_check(s);
        }
    }
    if (s->now % 64 == 0 && !s->failed)
        sim_check_deep(s);
}

void sim_run(struct sim *s, uint64_t units) {
    for (uint64_t t = 0; t < units && !s->failed; t++)
        step_unit(s);
}

bool sim_run_until(struct sim *s, uint64_t bound, bool (*pred)(struct sim *, void *), void *arg) {
    for (uint64_t t = 0; t < bound && !s->failed; t++) {
        if (pred(s, arg))
            return true;
        step_unit(s);
    }
    return !s->failed && pred(s, arg);
}

raft_index sim_propose(struct sim *s, int i, uint64_t *id) {
    struct sim_node *nd = &s->node[i];
    if (!nd->r || s->failed)
        return 0;
    uint64_t v = ++s->next_id;
    uint8_t buf[8];
    for (int k = 0; k < 8; k++)
        buf[k] = (uint8_t)(v >> (8 * k));
    raft_index index;
    raft_term term;
    int rc = RAFT_ERR_NOMEM;
    for (int tries = 0; rc == RAFT_ERR_NOMEM && tries < 100; tries++) /* raft_sim_oom */
        rc = raft_propose(nd->r, buf, sizeof buf, &index, &term);
    if (rc != RAFT_OK)
        return 0;
    if (id)
        *id = v;
    sim_trace(s, TR_PROPOSE, i, -1, 0, index, term, v);
    handle_ready(s, i);
    sim_check(s);
    return index;
}

int sim_member_change(struct sim *s, int i, int op, raft_id id) {
    struct sim_node *nd = &s->node[i];
    if (!nd->r || s->failed)
        return RAFT_ERR_NOT_LEADER;
    raft_index index = 0;
    raft_term term = 0;
    int rc = RAFT_ERR_NOMEM;
    for (int tries = 0; rc == RAFT_ERR_NOMEM && tries < 100; tries++) /* raft_sim_oom */
        rc = op == SIM_ADD       ? raft_propose_add_learner(nd->r, id, &index, &term)
             : op == SIM_PROMOTE ? raft_promote(nd->r, id, &index, &term)
                                 : raft_propose_remove(nd->r, id, &index, &term);
    if (rc != RAFT_OK)
        return rc;
    sim_trace(s, TR_MEMBER, i, (int)id - 1, op, index, term, 0);
    handle_ready(s, i);
    sim_check(s);
    return RAFT_OK;
}

bool sim_read(struct sim *s, int i, size_t *handle) {
    struct sim_node *nd = &s->node[i];
    if (!nd->r || s->failed)
        return false;
    if (s->n_reads == s->cap_reads) {
        s->cap_reads = s->cap_reads ? s->cap_reads * 2 : 8;
        s->reads = xrealloc(s->reads, s->cap_reads * sizeof *s->reads);
    }
    size_t h = s->n_reads;
    int rc = RAFT_ERR_NOMEM;
    for (int tries = 0; rc == RAFT_ERR_NOMEM && tries < 100; tries++) /* raft_sim_oom */
        rc = raft_read_index(nd->r, h);
    if (rc != RAFT_OK)
        return false;
    s->reads[s->n_reads++] = (struct sim_read){.node = i, .ctx = h, .min_index = s->max_committed};
    if (handle)
        *handle = h;
    sim_trace(s, TR_READ, i, -1, 0, h, s->max_committed, 0);
    handle_ready(s, i);
    sim_check(s);
    return true;
}
