/* snapshot.c - snapshots in the core: compacting the log behind a snapshot
 * the host made durable, sending a follower that fell behind the log's
 * first entry a snapshot instead of appends (InstallSnapshot, paper 7), and
 * a follower's handling of one. The core deals in (index, term) only; the
 * snapshot's bytes are the host's, which streams them before it steps the
 * RAFT_MSG_SNAPSHOT into the receiving core. */
#include "raft_int.h"

int raft_snapshot_done(struct raft *r, raft_index index, raft_term term) {
    raft_term t;
    if (index == 0 || index > r->applied || index <= r->snap_index ||
        !log_term(&r->log, index, &t) || t != term)
        return RAFT_ERR_INVALID;
    r->snap_index = index;
    r->snap_term = term;
    raft_membership_at(r, index, &r->snap_conf); /* what the snapshot carries */
    /* Keep a margin behind the snapshot: a follower slightly behind is
     * cheaper to catch up with a few appends than with the whole state. */
    raft_index keep = r->cfg.snapshot_trailing;
    if (index > keep && index - keep >= r->log.first) {
        raft_membership_at(r, index - keep, &r->base_conf); /* its entry may go */
        log_compact(&r->log, index - keep);
        if (index - keep > r->pending_compact)
            r->pending_compact = index - keep;
    }
    return RAFT_OK;
}

void snapshot_send(struct raft *r, unsigned slot) {
    struct raft_progress *pr = &r->pr[slot];
    /* The log was compacted, so a snapshot covers its missing front. */
    struct raft_msg m = {.type = RAFT_MSG_SNAPSHOT, .to = r->ids[slot],
                         .snap_index = r->snap_index, .snap_term = r->snap_term,
                         .commit = r->commit, .conf = r->snap_conf};
    if (!raft_send(r, &m))
        return; /* no transfer began, so none will be reported: try again later */
    pr->state = PROGRESS_SNAPSHOT;
    pr->pending_snap = r->snap_index;
    pr->paused = false;
    pr->want_append = false;
    pr->in_head = pr->in_count = 0;
}

void raft_snapshot_sent(struct raft *r, raft_id peer, raft_index index, bool ok) {
    int s = raft_slot(r, peer);
    if (r->role != RAFT_LEADER || s < 0 || s == r->self_slot)
        return;
    struct raft_progress *pr = &r->pr[s];
    if (pr->state != PROGRESS_SNAPSHOT || pr->pending_snap != index)
        return; /* a transfer this leadership no longer waits for */
    /* Probe from just after the snapshot if it arrived (the follower's answer
     * moves it to replicate), else from what it is known to hold, which
     * sends the snapshot again. Paused either way: the next heartbeat answer
     * resumes it, so an unreachable peer is not streamed to again and again. */
    pr->state = PROGRESS_PROBE;
    pr->next = ok ? index + 1 : pr->match + 1;
    pr->pending_snap = 0;
    pr->paused = true;
    pr->in_head = pr->in_count = 0;
}

void snapshot_on_message(struct raft *r, const struct raft_msg *m) {
    replication_follow(r, m->from, m->snap_index); /* a snapshot holds only committed entries */
    raft_index i = m->snap_index;
    raft_term t;
    /* LAB snapshot-older: a snapshot at or below our commit index is old news (a duplicate, or overtaken by appends): acknowledge our commit index (replication_hold_ack) and return without touching the log */
    if (i <= r->commit && !RAFT_BROKEN_SNAPSHOT_OLD) {
        /* Older than what we know committed (a duplicate, or overtaken by
         * appends): installing it would take the state machine back. */
        replication_hold_ack(r, m->from, r->commit);
        return;
    }
    /* END LAB */
    if (log_term(&r->log, i, &t) && t == m->snap_term && !RAFT_BROKEN_SNAPSHOT_TRUNCATE) {
        /* Our log already holds its last entry, so (Log Matching) everything
         * before it too: keep the log, entries after it included, and apply
         * from the log as usual; the snapshot's data is not needed. */
        r->commit = i;
        replication_hold_ack(r, m->from, i);
        return;
    }
    /* Our log conflicts with it or ends before it: the snapshot replaces
     * the log and the state machine. */
    log_reset(&r->log, i, m->snap_term);
    r->base_conf = r->snap_conf = r->install_conf = m->conf;
    r->silent = false; /* a leader's configuration */
    membership_log_changed(r); /* the snapshot's configuration, until entries follow */
    replication_host_truncate(r, i + 1);
    if (r->stable >= i)
        r->stable = i - 1; /* durable only once the host reports the install */
    r->unstable = i + 1;
    r->commit = i;
    r->apply_next = i;
    r->snap_index = i;
    r->snap_term = m->snap_term;
    r->install_index = i;
    r->install_term = m->snap_term;
    if (i > r->pending_compact)
        r->pending_compact = i;
    replication_hold_ack(r, m->from, i);
}

raft_index raft_snapshot_index(const struct raft *r) { return r->snap_index; }
raft_term raft_snapshot_term(const struct raft *r) { return r->snap_term; }

bool raft_peer_snapshot(const struct raft *r, raft_id peer, raft_index *index) {
    int s = raft_slot(r, peer);
    if (r->role != RAFT_LEADER || s < 0 || r->pr[s].state != PROGRESS_SNAPSHOT)
        return false;
    if (index)
        *index = r->pr[s].pending_snap;
    return true;
}
