/* election.c - leader election: randomized timeouts, pre-vote (thesis 9.6),
 * votes with the up-to-date rule (paper 5.4.1), and the leader lease that
 * makes followers ignore vote requests while a live leader is heard (thesis
 * 4.2.3). Check-quorum, the leader's side of the lease, is in replication.c. */
#include "raft_int.h"

void election_reset_timeout(struct raft *r) {
    unsigned e = r->cfg.election_ticks;
    r->rand_timeout = e + (unsigned)(raft_rand(r) % e);
}

bool election_in_lease(const struct raft *r) {
    return r->cfg.check_quorum && r->leader != 0 && r->elapsed < r->cfg.election_ticks;
}

void election_tick(struct raft *r) {
    r->elapsed++;
    r->since_leader++;
    if (r->elapsed >= r->rand_timeout && !r->voter[r->self_slot] &&
        !(RAFT_BROKEN_REMOVED_CAMPAIGN && !r->silent)) {
        r->elapsed = 0; /* a learner, joining or removed node never campaigns */
        return;
    }
    if (r->elapsed >= r->rand_timeout)
        election_campaign(r, r->cfg.pre_vote);
}

static void become_leader(struct raft *r) {
    r->role = RAFT_LEADER;
    r->leader = r->cfg.id;
    replication_become_leader(r);
}

void election_campaign(struct raft *r, bool pre_vote) {
    r->elapsed = 0;
    election_reset_timeout(r);
    r->leader = 0;
    r->granted = 1u << r->self_slot;
    r->rejected = 0;
    raft_term term;
    if (pre_vote) {
        r->role = RAFT_PRE_CANDIDATE;
        term = r->term + 1; /* proposed, not adopted */
    } else {
        r->role = RAFT_CANDIDATE;
        r->term++;
        r->vote = r->cfg.id;
        term = r->term;
    }
    if (membership_quorum(r, r->granted)) {
        if (pre_vote)
            election_campaign(r, false);
        else
            become_leader(r);
        return;
    }
    for (unsigned i = 0; i < r->n; i++) {
        if ((int)i == r->self_slot || !r->voter[i])
            continue; /* learners do not vote */
        struct raft_msg m = {
            .type = pre_vote ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE,
            .to = r->ids[i],
            .term = term,
            .last_index = log_last_index(&r->log),
            .last_term = log_last_term(&r->log),
            .transfer = r->transfer && !pre_vote,
        };
        raft_send(r, &m);
    }
}

/* Paper 5.4.1: vote only for a candidate whose log is at least as up to date
 * as ours, so that every leader holds every committed entry. */
static bool candidate_up_to_date(const struct raft *r, raft_term last_term, raft_index last_index) {
    /* LAB vote-up-to-date: compare the candidate's last (term, index) with ours: a later term wins, an equal term needs an index at least as long */
    raft_term my_term = log_last_term(&r->log);
    if (last_term != my_term)
        return last_term > my_term;
    return last_index >= log_last_index(&r->log);
    /* END LAB */
}

void election_on_request(struct raft *r, const struct raft_msg *m) {
    bool pre = m->type == RAFT_MSG_PREVOTE;
    bool can_vote = r->vote == m->from || (r->vote == 0 && r->leader == 0) || (pre && m->term > r->term);
    bool grant = can_vote && (RAFT_BROKEN_UP_TO_DATE ||
                              candidate_up_to_date(r, m->last_term, m->last_index));
    struct raft_msg resp = {
        .type = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP,
        .to = m->from,
        .term = (pre && grant) ? m->term : r->term,
        .reject = !grant,
    };
    if (grant && !pre) {
        r->vote = m->from; /* persisted (Ready.hard_state) before resp is sent */
        r->elapsed = 0;
    }
    raft_send(r, &resp);
}

void election_on_response(struct raft *r, const struct raft_msg *m) {
    bool pre = m->type == RAFT_MSG_PREVOTE_RESP;
    if (pre ? r->role != RAFT_PRE_CANDIDATE : r->role != RAFT_CANDIDATE)
        return;
    if (pre && !m->reject && m->term != r->term + 1)
        return;
    int s = raft_slot(r, m->from);
    if (s < 0)
        return;
    uint32_t bit = 1u << s;
    if ((r->granted | r->rejected) & bit)
        return; /* a duplicate: the first answer counts */
    if (m->reject)
        r->rejected |= bit;
    else
        r->granted |= bit;
    if (membership_quorum(r, r->granted)) {
        if (pre)
            election_campaign(r, false);
        else
            become_leader(r);
    } else if (membership_quorum(r, r->rejected)) {
        raft_become_follower(r, r->term, 0);
    }
}
