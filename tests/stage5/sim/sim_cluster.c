/* sim_cluster.c - the simulated world: nodes built from the real core, a
 * network (loss, duplication, delay, reordering, partitions cut per
 * direction) and a disk per node (writes complete in order after a delay; a
 * crash loses those not complete). Every input to a node is followed by
 * draining its Ready and by the invariant checks. */
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
    raft_id peers[SIM_MAX];
    for (unsigned k = 0; k < s->n; k++)
        peers[k] = k + 1;
    struct raft_config cfg;
    raft_config_default(&cfg, (raft_id)i + 1, peers, s->n);
    cfg.election_ticks = SIM_ELECTION;
    cfg.heartbeat_ticks = 1;
    cfg.seed = sim_rand(s);
    cfg.pre_vote = s->pre_vote;
    cfg.check_quorum = s->check_quorum;
    cfg.max_inflight = s->max_inflight;
    cfg.max_batch_entries = s->max_batch;
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
    for (unsigned i = 0; i < s->n; i++) {
        s->node[i].phase = sim_rand_below(s, SIM_TICK);
        s->node[i].r = new_core(s, (int)i);
    }
}

static void free_entries(struct raft_entry *e, size_t n) {
    for (size_t k = 0; k < n; k++)
        free(e[k].data);
    free(e);
}

static void free_queue(struct sim_disk *d) {
    for (size_t k = 0; k < d->nq; k++)
        free_entries(d->q[k].e, d->q[k].n);
    d->nq = 0;
}

void sim_free(struct sim *s) {
    for (unsigned i = 0; i < s->n; i++) {
        struct sim_node *nd = &s->node[i];
        raft_free(nd->r);
        free_queue(&nd->disk);
        free(nd->disk.q);
        free_entries(nd->disk.log, nd->disk.n);
        free(nd->mt);
        free(nd->mid);
        free(nd->mchain);
    }
    for (size_t k = 0; k < s->nheap; k++)
        free_entries(s->heap[k].m.entries, s->heap[k].m.n_entries);
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

static void net_send(struct sim *s, int from, const struct raft_msg *m) {
    int to = (int)m->to - 1;
    if (to < 0 || to >= (int)s->n) {
        sim_fail(s, "node %d sent %s to unknown node %u", from + 1, raft_msg_name(m->type), m->to);
        return;
    }
    if (s->tl)
        sim_tl_send(s, from, m);
    if (s->cut[from][to] || sim_rand_below(s, 1000) < s->loss_pm) {
        sim_trace(s, TR_DROP, from, to, m->type, m->term, m->prev_index, m->n_entries);
        return;
    }
    unsigned copies = 1 + (sim_rand_below(s, 1000) < s->dup_pm);
    for (unsigned c = 0; c < copies; c++) {
        uint64_t delay = s->delay_min + sim_rand_below(s, s->delay_max - s->delay_min + 1);
        if (sim_rand_below(s, 1000) < s->long_pm)
            delay += sim_rand_below(s, s->long_max + 1);
        struct sim_ev ev = {.at = s->now + delay, .seq = ++s->seq, .m = *m};
        ev.m.entries = copy_entries(m->entries, m->n_entries);
        heap_push(s, ev);
    }
}

static void deliver(struct sim *s, struct sim_ev *ev) {
    int from = (int)ev->m.from - 1, to = (int)ev->m.to - 1;
    struct sim_node *nd = &s->node[to];
    if (!nd->r || s->cut[from][to]) {
        sim_trace(s, TR_DROP, from, to, ev->m.type, ev->m.term, ev->m.prev_index, ev->m.n_entries);
    } else {
        sim_trace(s, TR_DELIVER, to, from, ev->m.type, ev->m.term,
                  ev->m.type == RAFT_MSG_APPEND ? ev->m.prev_index : ev->m.match_index,
                  ev->m.type == RAFT_MSG_APPEND ? ev->m.n_entries : ev->m.reject);
        if (raft_step(nd->r, &ev->m) != RAFT_OK)
            sim_fail(s, "node %d refused a well-formed %s", to + 1, raft_msg_name(ev->m.type));
        handle_ready(s, to);
        sim_check(s);
    }
    free_entries(ev->m.entries, ev->m.n_entries);
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

static void disk_enqueue(struct sim *s, int i, const struct raft_ready *rd) {
    struct sim_disk *d = &s->node[i].disk;
    if (d->nq == d->capq) {
        d->capq = d->capq ? d->capq * 2 : 8;
        d->q = xrealloc(d->q, d->capq * sizeof *d->q);
    }
    uint64_t at = s->now + s->disk_min + sim_rand_below(s, s->disk_max - s->disk_min + 1);
    if (d->nq && d->q[d->nq - 1].done_at > at)
        at = d->q[d->nq - 1].done_at;
    d->q[d->nq++] = (struct sim_write){.done_at = at, .trunc = rd->truncate_from,
                                       .e = copy_entries(rd->entries, rd->n_entries),
                                       .n = rd->n_entries};
}

static void disk_complete(struct sim *s, int i) {
    struct sim_disk *d = &s->node[i].disk;
    struct sim_write w = d->q[0];
    memmove(d->q, d->q + 1, (d->nq - 1) * sizeof *d->q);
    d->nq--;
    if (w.trunc) {
        while (d->n && d->log[d->n - 1].index >= w.trunc) {
            d->n--;
            free(d->log[d->n].data);
        }
    }
    if (w.n) {
        if (w.e[0].index != d->n + 1)
            sim_fail(s, "node %d: write at index %llu does not follow its durable log (last %zu)",
                     i + 1, (unsigned long long)w.e[0].index, d->n);
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
        raft_persisted(s->node[i].r, last, term);
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
        sim_mirror_ready(s, i, &rd);
        if (rd.truncate_from || rd.n_entries)
            disk_enqueue(s, i, &rd);
        for (size_t k = 0; k < rd.n_messages; k++)
            net_send(s, i, &rd.messages[k]);
        for (size_t k = 0; k < rd.n_committed; k++) {
            sim_on_apply(s, i, &rd.committed[k]);
            nd->applied = rd.committed[k].index;
        }
        for (size_t k = 0; k < rd.n_reads; k++)
            sim_on_read(s, i, rd.reads[k].ctx, rd.reads[k].index);
        if (rd.soft_changed)
            sim_trace(s, TR_ROLE, i, (int)rd.leader - 1, rd.role, rd.term, 0, 0);
        raft_advance(nd->r);
        raft_applied(nd->r, nd->applied);
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
    sim_trace(s, TR_CRASH, i, -1, 0, nd->disk.term, nd->disk.n, 0);
}

void sim_restart(struct sim *s, int i) {
    struct sim_node *nd = &s->node[i];
    if (nd->r)
        return;
    nd->r = new_core(s, i);
    int rc = RAFT_ERR_NOMEM;
    for (int tries = 0; rc == RAFT_ERR_NOMEM && tries < 100; tries++)
        rc = raft_restore(nd->r, nd->disk.term, nd->disk.vote, nd->disk.log, nd->disk.n);
    if (rc != RAFT_OK)
        sim_fail(s, "node %d: restore from its own durable state refused (%d)", i + 1, rc);
    nd->applied = 0;
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
