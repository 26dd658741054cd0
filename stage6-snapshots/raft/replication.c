/* replication.c - log replication: AppendEntries on both sides, the
 * consistency check, fast back-off by conflict term, per-follower probe and
 * pipelined replicate states with bounded appends in flight, heartbeats, and
 * check-quorum (a leader that stops hearing a majority steps down). A
 * follower's acknowledgement is held until its entries are durable. A
 * follower that needs entries the log no longer has gets a snapshot
 * (snapshot.c) and no appends until that transfer ends. */
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

void replication_progress_reset(struct raft *r, unsigned slot) {
    struct raft_progress *pr = &r->pr[slot];
    memset(pr, 0, sizeof *pr);
    pr->next = log_last_index(&r->log) + 1;
    pr->state = PROGRESS_PROBE;
    pr->active = true; /* give every follower one election timeout to answer */
}

void replication_become_leader(struct raft *r) {
    for (unsigned i = 0; i < r->n; i++)
        replication_progress_reset(r, i);
    r->hb_elapsed = 0;
    r->elapsed = 0;
    /* A no-op of the new term: committing it commits every earlier entry
     * (paper 5.4.2) and tells the leader its commit index for ReadIndex. */
    if (log_append(&r->log, r->term, RAFT_ENTRY_NOOP, NULL, 0) != RAFT_OK) {
        raft_become_follower(r, r->term, 0); /* cannot lead without it */
        return;
    }
    commit_maybe_advance(r); /* a lone voter commits on its own */
}

static void check_quorum(struct raft *r) {
    uint32_t active = 1u << r->self_slot;
    for (unsigned i = 0; i < r->n; i++) {
        if ((int)i == r->self_slot)
            continue;
        if (r->pr[i].active)
            active |= 1u << i;
        r->pr[i].active = false;
    }
    if (!membership_quorum(r, active))
        raft_become_follower(r, r->term, 0);
}

void replication_tick(struct raft *r) {
    for (unsigned i = 0; i < r->n; i++)
        r->pr[i].idle++;
    r->elapsed++;
    if (r->elapsed >= r->cfg.election_ticks) {
        r->elapsed = 0;
        if (r->cfg.check_quorum) {
            check_quorum(r);
            if (r->role != RAFT_LEADER)
                return;
        }
    }
    if (++r->hb_elapsed >= r->cfg.heartbeat_ticks) {
        r->hb_elapsed = 0;
        replication_send_heartbeats(r);
    }
}

void replication_send_heartbeats(struct raft *r) {
    for (unsigned i = 0; i < r->n; i++) {
        if ((int)i == r->self_slot)
            continue;
        raft_index c = r->pr[i].match < r->commit ? r->pr[i].match : r->commit;
        struct raft_msg m = {.type = RAFT_MSG_HEARTBEAT, .to = r->ids[i], .commit = c,
                             .leader_commit = r->commit, .read_seq = r->read_seq};
        raft_send(r, &m);
    }
    r->read_seq_sent = r->read_seq;
}

/* Sends the entries from pr->next on, within the batch limits; returns the
 * last index sent (pr->next - 1 for an empty append). */
static raft_index send_append(struct raft *r, unsigned slot) {
    struct raft_progress *pr = &r->pr[slot];
    raft_index prev = pr->next - 1, last = log_last_index(&r->log);
    raft_term prev_term;
    if (!log_term(&r->log, prev, &prev_term)) {
        snapshot_send(r, slot); /* compacted away: only a snapshot can help */
        return prev;
    }
    size_t n = 0, bytes = 0;
    while (prev + n < last && n < r->cfg.max_batch_entries) {
        size_t len = log_get(&r->log, prev + n + 1)->len;
        if (n && bytes + len > r->cfg.max_batch_bytes)
            break;
        bytes += len;
        n++;
    }
    struct raft_msg m = {.type = RAFT_MSG_APPEND, .to = r->ids[slot], .prev_index = prev,
                         .prev_term = prev_term, .commit = r->commit};
    if (n) {
        m.entries = calloc(n, sizeof *m.entries);
        if (!m.entries)
            return prev;
        for (size_t i = 0; i < n; i++) {
            const struct raft_entry *e = log_get(&r->log, prev + i + 1);
            m.entries[i] = *e;
            m.entries[i].data = NULL;
            if (e->len) {
                m.entries[i].data = malloc(e->len);
                if (!m.entries[i].data) {
                    m.n_entries = i;
                    m.entries[i].len = 0;
                    break;
                }
                memcpy(m.entries[i].data, e->data, e->len);
            }
            m.n_entries = i + 1;
        }
    }
    raft_index sent_last = prev + m.n_entries;
    pr->sent_commit = r->commit;
    raft_send(r, &m);
    return sent_last;
}

void replication_flush(struct raft *r) {
    if (r->role != RAFT_LEADER)
        return;
    raft_index last = log_last_index(&r->log);
    for (unsigned i = 0; i < r->n; i++) {
        if ((int)i == r->self_slot)
            continue;
        struct raft_progress *pr = &r->pr[i];
        if (pr->state == PROGRESS_SNAPSHOT)
            continue; /* a transfer is under way: its outcome decides */
        if (pr->state == PROGRESS_PROBE) {
            if (!pr->paused) {
                send_append(r, i);
                pr->paused = true;
            }
            continue;
        }
        bool sent = false;
        while (pr->in_count < r->cfg.max_inflight && pr->next <= last) {
            raft_index sent_last = send_append(r, i);
            if (sent_last < pr->next)
                break;
            pr->inflight[(pr->in_head + pr->in_count) % RAFT_MAX_INFLIGHT] = sent_last;
            pr->in_count++;
            pr->next = sent_last + 1;
            sent = true;
        }
        if (pr->state == PROGRESS_SNAPSHOT)
            continue;
        if (!sent && (pr->sent_commit < r->commit || pr->want_append))
            send_append(r, i); /* empty: carries the commit index, or asks "do you have next-1?" */
        pr->want_append = false;
    }
    if (r->read_seq > r->read_seq_sent)
        replication_send_heartbeats(r); /* a ReadIndex round is waiting */
}

void replication_host_truncate(struct raft *r, raft_index from) {
    if (r->stable >= from)
        r->stable = from - 1;
    if (from < r->unstable) {
        if (r->pending_trunc == 0 || from < r->pending_trunc)
            r->pending_trunc = from;
        r->unstable = from;
    }
}

/* Drops our entries from `from` on; the host is told to drop them on disk
 * too if it may have written them. */
static void truncate_suffix(struct raft *r, raft_index from) {
    log_truncate(&r->log, from);
    replication_host_truncate(r, from);
    if (r->conf_index >= from)
        membership_log_changed(r); /* fall back to the configuration before */
}

void replication_hold_ack(struct raft *r, raft_id to, raft_index match) {
    raft_term t = 0;
    log_term(&r->log, match, &t);
    struct raft_msg m = {.type = RAFT_MSG_APPEND_RESP, .to = to, .match_index = match};
    if (match <= r->stable || RAFT_BROKEN_EARLY_ACK) {
        raft_send(r, &m);
        return;
    }
    if (r->n_held == r->cap_held) {
        size_t cap = r->cap_held ? r->cap_held * 2 : 8;
        struct raft_held *h = realloc(r->held, cap * sizeof *h);
        if (!h)
            return; /* the leader will retry */
        r->held = h;
        r->cap_held = cap;
    }
    m.from = r->cfg.id;
    m.term = r->term;
    r->held[r->n_held++] = (struct raft_held){.m = m, .match_term = t};
}

void replication_release_held(struct raft *r) {
    size_t keep = 0;
    for (size_t i = 0; i < r->n_held; i++) {
        struct raft_held *h = &r->held[i];
        raft_term t;
        if (!log_term(&r->log, h->m.match_index, &t) || t != h->match_term)
            continue; /* those entries were replaced: the ack would be a lie */
        if (h->m.match_index <= r->stable)
            raft_send(r, &h->m);
        else
            r->held[keep++] = *h;
    }
    r->n_held = keep;
}

void replication_reject(struct raft *r, const struct raft_msg *m) {
    struct raft_msg resp = {.type = RAFT_MSG_APPEND_RESP, .to = m->from, .reject = true,
                            .reject_index = m->prev_index};
    raft_index last = log_last_index(&r->log);
    if (m->prev_index > last) {
        resp.conflict_term = 0;
        resp.conflict_index = last + 1;
    } else {
        log_term(&r->log, m->prev_index, &resp.conflict_term);
        resp.conflict_index = log_term_start(&r->log, m->prev_index);
    }
    raft_send(r, &resp);
}

void replication_follow(struct raft *r, raft_id leader, raft_index leader_commit) {
    if (r->role != RAFT_FOLLOWER)
        raft_become_follower(r, r->term, leader);
    if (r->leader != leader)
        r->leader_commit = 0; /* announced by someone else, or before we knew a leader */
    if (leader_commit > r->leader_commit)
        r->leader_commit = leader_commit;
    r->leader = leader;
    r->elapsed = 0;
    r->since_leader = 0;
}

void replication_on_append(struct raft *r, const struct raft_msg *m) {
    replication_follow(r, m->from, m->commit); /* an append carries the leader's own commit */
    if (m->prev_index < r->commit) {
        /* Old news: our committed prefix already covers prev_index. */
        replication_hold_ack(r, m->from, r->commit);
        return;
    }
    raft_term t;
    /* LAB append-consistency: accept only if our log holds an entry at prev_index whose term is prev_term (log_term); otherwise answer with replication_reject and stop */
    if (!log_term(&r->log, m->prev_index, &t) || t != m->prev_term) {
        replication_reject(r, m);
        return;
    }
    /* END LAB */
    /* prev_index >= commit here, so nothing committed is ever truncated */
    for (size_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        raft_index idx = m->prev_index + i + 1;
        if (log_term(&r->log, idx, &t)) {
            if (t == e->term)
                continue; /* already have it; never truncate a matching entry */
            truncate_suffix(r, idx);
        }
        if (log_append(&r->log, e->term, e->type, e->data, e->len) != RAFT_OK)
            return; /* out of memory: say nothing, the leader retries */
        if (e->type == RAFT_ENTRY_CONFIG)
            membership_log_changed(r); /* used as soon as it is in the log */
    }
    raft_index new_last = m->prev_index + m->n_entries;
    raft_index c = m->commit < new_last ? m->commit : new_last;
    if (c > r->commit)
        r->commit = c;
    replication_hold_ack(r, m->from, new_last);
}

static void inflight_free_to(struct raft_progress *pr, raft_index match) {
    while (pr->in_count && pr->inflight[pr->in_head] <= match) {
        pr->in_head = (pr->in_head + 1) % RAFT_MAX_INFLIGHT;
        pr->in_count--;
    }
}

static void become_probe(struct raft_progress *pr, raft_index next) {
    pr->state = PROGRESS_PROBE;
    pr->paused = false;
    pr->in_head = pr->in_count = 0;
    pr->next = next;
}

void replication_on_append_resp(struct raft *r, const struct raft_msg *m) {
    if (r->role != RAFT_LEADER)
        return;
    int slot = raft_slot(r, m->from);
    if (slot < 0 || slot == r->self_slot)
        return;
    struct raft_progress *pr = &r->pr[slot];
    pr->active = true;
    pr->idle = 0;
    if (m->reject) {
        if (pr->state == PROGRESS_SNAPSHOT)
            return; /* an answer to an append sent before the transfer began */
        if (m->reject_index < pr->match || m->reject_index >= pr->next)
            return; /* stale: a later answer already moved us on */
        if (pr->state == PROGRESS_PROBE && m->reject_index != pr->next - 1)
            return;
        raft_index next = m->conflict_index;
        if (m->conflict_term) {
            raft_index j = log_last_of_term(&r->log, m->reject_index, m->conflict_term);
            if (j)
                next = j + 1;
        }
        if (next > m->reject_index)
            next = m->reject_index;
        if (next < pr->match + 1)
            next = pr->match + 1;
        become_probe(pr, next);
        return;
    }
    if (m->match_index > log_last_index(&r->log))
        return; /* cannot be an answer to this leader */
    if (m->match_index > pr->match) {
        pr->match = m->match_index;
        if (pr->state != PROGRESS_REPLICATE) { /* found its log, or it installed the snapshot */
            pr->state = PROGRESS_REPLICATE;
            pr->pending_snap = 0;
            pr->in_head = pr->in_count = 0;
            pr->next = pr->match + 1;
        } else {
            inflight_free_to(pr, pr->match);
            if (pr->next < pr->match + 1)
                pr->next = pr->match + 1;
        }
        commit_maybe_advance(r);
    } else if (pr->state == PROGRESS_PROBE) {
        pr->paused = false;
    }
}

void replication_on_heartbeat(struct raft *r, const struct raft_msg *m) {
    replication_follow(r, m->from, m->leader_commit);
    raft_index c = m->commit;
    if (c > log_last_index(&r->log))
        c = log_last_index(&r->log);
    if (c > r->commit)
        r->commit = c;
    struct raft_msg resp = {.type = RAFT_MSG_HEARTBEAT_RESP, .to = m->from, .read_seq = m->read_seq};
    raft_send(r, &resp);
}

void replication_on_heartbeat_resp(struct raft *r, const struct raft_msg *m) {
    int slot = raft_slot(r, m->from);
    if (r->role != RAFT_LEADER || slot < 0 || slot == r->self_slot)
        return;
    struct raft_progress *pr = &r->pr[slot];
    pr->active = true;
    pr->idle = 0;
    if (m->read_seq > pr->read_ack)
        pr->read_ack = m->read_seq;
    if (pr->state == PROGRESS_SNAPSHOT)
        return; /* the transfer's outcome decides what is sent next */
    if (pr->match < log_last_index(&r->log)) {
        /* It lags, perhaps because appends were lost: send again. In probe
         * that is the paused append; in replicate an append at pr->next,
         * which a follower missing earlier entries rejects, so the leader
         * backs off to what it holds. */
        if (pr->state == PROGRESS_PROBE) {
            pr->paused = false;
        } else {
            if (pr->in_count == r->cfg.max_inflight) {
                pr->in_head = (pr->in_head + 1) % RAFT_MAX_INFLIGHT;
                pr->in_count--;
            }
            pr->want_append = true;
        }
    }
}
