/* test_core.c - unit tests of the Raft core's API contract (raft.h), one
 * node at a time, messages written by hand: what a Ready must and must not
 * contain, refused configs, restores and peer messages. The simulation
 * (raft_sim) covers the protocol across whole clusters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "raft.h"

static const raft_id PEERS3[] = {1, 2, 3};

static struct raft *node(raft_id id, unsigned n) {
    struct raft_config cfg;
    raft_config_default(&cfg, id, PEERS3, n);
    cfg.seed = 42;
    struct raft *r = raft_new(&cfg);
    assert_non_null(r);
    return r;
}

/* Ticks until the node has something to say; returns with the Ready filled. */
static void tick_until_ready(struct raft *r, struct raft_ready *rd) {
    for (int i = 0; i < 100; i++) {
        raft_tick(r);
        if (raft_ready(r, rd))
            return;
    }
    fail_msg("no Ready after 100 ticks");
}

static const struct raft_msg *find_msg(const struct raft_ready *rd, int type, raft_id to) {
    for (size_t i = 0; i < rd->n_messages; i++)
        if (rd->messages[i].type == type && rd->messages[i].to == to)
            return &rd->messages[i];
    return NULL;
}

static void test_config_refused(void **state) {
    (void)state;
    struct raft_config cfg;
    raft_config_default(&cfg, 4, PEERS3, 3); /* self not among the peers */
    assert_null(raft_new(&cfg));
    raft_config_default(&cfg, 1, PEERS3, 3);
    cfg.heartbeat_ticks = cfg.election_ticks;
    assert_null(raft_new(&cfg));
    raft_config_default(&cfg, 1, PEERS3, 3);
    cfg.max_inflight = 0;
    assert_null(raft_new(&cfg));
    raft_id dup[] = {1, 2, 2};
    raft_config_default(&cfg, 1, dup, 3);
    assert_null(raft_new(&cfg));
    assert_null(raft_new(NULL));
}

static void test_follower_refuses_writes_and_reads(void **state) {
    (void)state;
    struct raft *r = node(2, 3);
    raft_index idx;
    assert_int_equal(raft_propose(r, "x", 1, &idx, NULL), RAFT_ERR_NOT_LEADER);
    assert_int_equal(raft_read_index(r, 7), RAFT_ERR_NOT_LEADER);
    assert_int_equal(raft_leader(r), 0);
    raft_free(r);
}

/* One node: elected alone; its own entries commit only once durable. */
static void test_single_node_commits_after_persist(void **state) {
    (void)state;
    struct raft *r = node(1, 1);
    struct raft_ready rd;
    tick_until_ready(r, &rd);
    assert_true(rd.hard_state_changed);
    assert_int_equal(rd.term, 1);
    assert_int_equal(rd.vote, 1);
    assert_true(rd.soft_changed);
    assert_int_equal(rd.role, RAFT_LEADER);
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.entries[0].type, RAFT_ENTRY_NOOP);
    assert_int_equal(rd.n_committed, 0); /* not durable yet */
    raft_advance(r);

    raft_index idx;
    raft_term term;
    assert_int_equal(raft_propose(r, "abc", 3, &idx, &term), RAFT_OK);
    assert_int_equal(idx, 2);
    assert_int_equal(term, 1);
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.n_entries, 1);
    assert_memory_equal(rd.entries[0].data, "abc", 3);
    raft_advance(r);

    raft_persisted(r, 2, 1);
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.n_committed, 2);
    assert_int_equal(rd.committed[1].index, 2);
    raft_advance(r);
    raft_applied(r, 2);

    assert_int_equal(raft_read_index(r, 99), RAFT_OK);
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.n_reads, 1);
    assert_int_equal(rd.reads[0].ctx, 99);
    assert_int_equal(rd.reads[0].index, 2);
    raft_advance(r);
    assert_false(raft_ready(r, &rd));
    raft_free(r);
}

/* A granted vote and the hard state recording it come in the same Ready, so
 * the host persists the vote before the grant leaves. */
static void test_vote_with_hard_state(void **state) {
    (void)state;
    struct raft *r = node(2, 3);
    struct raft_msg m = {.type = RAFT_MSG_VOTE, .from = 3, .to = 2, .term = 5};
    assert_int_equal(raft_step(r, &m), RAFT_OK);
    struct raft_ready rd;
    assert_true(raft_ready(r, &rd));
    assert_true(rd.hard_state_changed);
    assert_int_equal(rd.term, 5);
    assert_int_equal(rd.vote, 3);
    const struct raft_msg *resp = find_msg(&rd, RAFT_MSG_VOTE_RESP, 3);
    assert_non_null(resp);
    assert_false(resp->reject);
    raft_advance(r);
    /* a second candidate in the same term is refused */
    m.from = 1;
    assert_int_equal(raft_step(r, &m), RAFT_OK);
    assert_true(raft_ready(r, &rd));
    assert_false(rd.hard_state_changed);
    resp = find_msg(&rd, RAFT_MSG_VOTE_RESP, 1);
    assert_non_null(resp);
    assert_true(resp->reject);
    raft_advance(r);
    raft_free(r);
}

/* The up-to-date rule: a candidate whose last term is older is refused. */
static void test_vote_refused_to_stale_log(void **state) {
    (void)state;
    struct raft *r = node(2, 3);
    struct raft_entry log[] = {{.index = 1, .term = 2, .type = RAFT_ENTRY_NOOP}};
    assert_int_equal(raft_restore(r, 2, 0, 0, 0, log, 1), RAFT_OK);
    struct raft_msg m = {.type = RAFT_MSG_VOTE, .from = 3, .to = 2, .term = 3,
                         .last_index = 5, .last_term = 1};
    assert_int_equal(raft_step(r, &m), RAFT_OK);
    struct raft_ready rd;
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.term, 3);
    assert_int_equal(rd.vote, 0);
    assert_true(find_msg(&rd, RAFT_MSG_VOTE_RESP, 3)->reject);
    raft_advance(r);
    raft_free(r);
}

/* A follower's acknowledgement waits until its entries are durable. */
static void test_follower_ack_held_until_persisted(void **state) {
    (void)state;
    struct raft *r = node(2, 3);
    struct raft_entry e[] = {{.index = 1, .term = 1, .type = RAFT_ENTRY_NOOP},
                             {.index = 2, .term = 1, .type = RAFT_ENTRY_NORMAL,
                              .data = (uint8_t *)"v", .len = 1}};
    struct raft_msg m = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 1,
                         .entries = e, .n_entries = 2, .commit = 0};
    assert_int_equal(raft_step(r, &m), RAFT_OK);
    struct raft_ready rd;
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.n_entries, 2);
    assert_null(find_msg(&rd, RAFT_MSG_APPEND_RESP, 1));
    assert_int_equal(raft_leader(r), 1);
    raft_advance(r);

    raft_persisted(r, 1, 1); /* only part of it: the ack still waits */
    assert_false(raft_ready(r, &rd) && find_msg(&rd, RAFT_MSG_APPEND_RESP, 1));
    raft_advance(r);
    raft_persisted(r, 2, 1);
    assert_true(raft_ready(r, &rd));
    const struct raft_msg *ack = find_msg(&rd, RAFT_MSG_APPEND_RESP, 1);
    assert_non_null(ack);
    assert_false(ack->reject);
    assert_int_equal(ack->match_index, 2);
    raft_advance(r);
    raft_free(r);
}

/* A follower learns the leader's own commit index even when it may not
 * adopt it (it lacks the entries): that is what a bounded-staleness read
 * must have applied. A new leader's announcements start again from zero. */
static void test_leader_commit_announced(void **state) {
    (void)state;
    struct raft *r = node(2, 3);
    struct raft_entry log[] = {{.index = 1, .term = 1, .type = RAFT_ENTRY_NOOP}};
    assert_int_equal(raft_restore(r, 1, 0, 0, 0, log, 1), RAFT_OK);
    assert_int_equal(raft_leader_commit(r), 0);
    struct raft_msg hb = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 1, .commit = 1,
                          .leader_commit = 9};
    assert_int_equal(raft_step(r, &hb), RAFT_OK);
    assert_int_equal(raft_commit_index(r), 1); /* capped at what it holds */
    assert_int_equal(raft_leader_commit(r), 9);
    hb.leader_commit = 5; /* reordered: never goes back */
    assert_int_equal(raft_step(r, &hb), RAFT_OK);
    assert_int_equal(raft_leader_commit(r), 9);
    struct raft_msg ap = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 1, .prev_index = 1,
                          .prev_term = 1, .commit = 11};
    assert_int_equal(raft_step(r, &ap), RAFT_OK);
    assert_int_equal(raft_leader_commit(r), 11);
    hb.from = 3;
    hb.term = 2;
    hb.leader_commit = 4;
    assert_int_equal(raft_step(r, &hb), RAFT_OK);
    assert_int_equal(raft_leader(r), 3);
    assert_int_equal(raft_leader_commit(r), 4);
    raft_free(r);
}

/* A conflicting entry from a newer leader truncates the suffix; a late
 * durability notice for the replaced entry is ignored. */
static void test_truncate_and_stale_persist(void **state) {
    (void)state;
    struct raft *r = node(2, 3);
    struct raft_entry log[] = {{.index = 1, .term = 1, .type = RAFT_ENTRY_NOOP},
                               {.index = 2, .term = 1, .type = RAFT_ENTRY_NOOP},
                               {.index = 3, .term = 1, .type = RAFT_ENTRY_NOOP}};
    assert_int_equal(raft_restore(r, 1, 0, 0, 0, log, 2), RAFT_OK);
    struct raft_entry e[] = {{.index = 2, .term = 2, .type = RAFT_ENTRY_NOOP}};
    struct raft_msg m = {.type = RAFT_MSG_APPEND, .from = 3, .to = 2, .term = 2,
                         .prev_index = 1, .prev_term = 1, .entries = e, .n_entries = 1};
    assert_int_equal(raft_step(r, &m), RAFT_OK);
    struct raft_ready rd;
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.truncate_from, 2);
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.entries[0].term, 2);
    raft_advance(r);
    assert_int_equal(raft_persisted_index(r), 1);
    raft_persisted(r, 2, 1); /* the old entry 2 */
    assert_int_equal(raft_persisted_index(r), 1);
    raft_persisted(r, 2, 2);
    assert_int_equal(raft_persisted_index(r), 2);
    raft_free(r);
}

/* The consistency check: an append whose previous entry we lack is
 * rejected with a hint naming where our log ends. */
static void test_append_rejected_with_hint(void **state) {
    (void)state;
    struct raft *r = node(2, 3);
    struct raft_entry log[] = {{.index = 1, .term = 1, .type = RAFT_ENTRY_NOOP},
                               {.index = 2, .term = 1, .type = RAFT_ENTRY_NOOP}};
    assert_int_equal(raft_restore(r, 1, 0, 0, 0, log, 2), RAFT_OK);
    struct raft_msg m = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 3,
                         .prev_index = 7, .prev_term = 3};
    assert_int_equal(raft_step(r, &m), RAFT_OK);
    struct raft_ready rd;
    assert_true(raft_ready(r, &rd));
    const struct raft_msg *resp = find_msg(&rd, RAFT_MSG_APPEND_RESP, 1);
    assert_non_null(resp);
    assert_true(resp->reject);
    assert_int_equal(resp->reject_index, 7);
    assert_int_equal(resp->conflict_term, 0);
    assert_int_equal(resp->conflict_index, 3);
    raft_advance(r);
    m.prev_index = 2;
    m.prev_term = 2; /* we hold term 1 there: the hint names term 1's first index */
    assert_int_equal(raft_step(r, &m), RAFT_OK);
    assert_true(raft_ready(r, &rd));
    resp = find_msg(&rd, RAFT_MSG_APPEND_RESP, 1);
    assert_int_equal(resp->conflict_term, 1);
    assert_int_equal(resp->conflict_index, 1);
    raft_advance(r);
    raft_free(r);
}

/* A leader sends its new entries in the same Ready that asks the host to
 * write them (thesis 10.2.1), but hands nothing to apply before its own
 * copy is durable even when followers already acked. */
static void test_leader_writes_in_parallel(void **state) {
    (void)state;
    struct raft *r = node(1, 3);
    struct raft_ready rd;
    tick_until_ready(r, &rd); /* pre-vote round */
    assert_int_equal(rd.role, RAFT_PRE_CANDIDATE);
    assert_non_null(find_msg(&rd, RAFT_MSG_PREVOTE, 2));
    raft_advance(r);
    struct raft_msg g = {.type = RAFT_MSG_PREVOTE_RESP, .from = 2, .to = 1, .term = 1};
    assert_int_equal(raft_step(r, &g), RAFT_OK);
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.role, RAFT_CANDIDATE);
    assert_true(rd.hard_state_changed);
    assert_non_null(find_msg(&rd, RAFT_MSG_VOTE, 3));
    raft_advance(r);
    g.type = RAFT_MSG_VOTE_RESP;
    assert_int_equal(raft_step(r, &g), RAFT_OK);
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.role, RAFT_LEADER);
    assert_int_equal(rd.n_entries, 1);
    const struct raft_msg *app = find_msg(&rd, RAFT_MSG_APPEND, 2);
    assert_non_null(app);
    assert_int_equal(app->n_entries, 1);
    assert_int_equal(app->entries[0].index, 1);
    raft_advance(r);
    for (raft_id p = 2; p <= 3; p++) {
        struct raft_msg ack = {.type = RAFT_MSG_APPEND_RESP, .from = p, .to = 1, .term = 1,
                               .match_index = 1};
        assert_int_equal(raft_step(r, &ack), RAFT_OK);
    }
    assert_int_equal(raft_commit_index(r), 1);
    raft_ready(r, &rd);
    assert_int_equal(rd.n_committed, 0);
    raft_advance(r);
    raft_persisted(r, 1, 1);
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.n_committed, 1);
    raft_advance(r);
    raft_free(r);
}

/* While it hears a live leader a follower ignores a higher-term vote
 * request entirely: no answer, no new term (the leader lease). */
static void test_lease_ignores_disruptive_vote(void **state) {
    (void)state;
    struct raft *r = node(2, 3);
    struct raft_msg hb = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 4};
    assert_int_equal(raft_step(r, &hb), RAFT_OK);
    struct raft_ready rd;
    raft_ready(r, &rd);
    raft_advance(r);
    assert_int_equal(raft_ticks_since_leader(r), 0);
    raft_tick(r);
    raft_tick(r);
    assert_int_equal(raft_ticks_since_leader(r), 2);
    struct raft_msg v = {.type = RAFT_MSG_VOTE, .from = 3, .to = 2, .term = 9, .last_index = 50,
                         .last_term = 8};
    assert_int_equal(raft_step(r, &v), RAFT_OK);
    assert_int_equal(raft_current_term(r), 4);
    assert_false(raft_ready(r, &rd));
    raft_advance(r);
    raft_free(r);
}

static void test_bad_messages_refused(void **state) {
    (void)state;
    struct raft *r = node(2, 3);
    struct raft_msg m = {.type = RAFT_MSG_HEARTBEAT, .from = 0, .to = 2, .term = 1};
    assert_int_equal(raft_step(r, &m), RAFT_ERR_INVALID); /* no sender */
    /* A vote request from outside the configuration (a removed server) is
     * ignored: no answer, no new term. */
    struct raft_msg v = {.type = RAFT_MSG_VOTE, .from = 7, .to = 2, .term = 9};
    assert_int_equal(raft_step(r, &v), RAFT_OK);
    struct raft_ready rd;
    assert_false(raft_ready(r, &rd));
    assert_int_equal(raft_current_term(r), 0);
    m.from = 1;
    m.to = 3;
    assert_int_equal(raft_step(r, &m), RAFT_ERR_INVALID); /* not for us */
    m.to = 2;
    m.type = 42;
    assert_int_equal(raft_step(r, &m), RAFT_ERR_INVALID);
    struct raft_entry e[] = {{.index = 1, .term = 1, .type = RAFT_ENTRY_NOOP},
                             {.index = 3, .term = 1, .type = RAFT_ENTRY_NOOP}};
    struct raft_msg a = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 1, .entries = e,
                         .n_entries = 2};
    assert_int_equal(raft_step(r, &a), RAFT_ERR_INVALID); /* index gap */
    e[1].index = 2;
    e[1].term = 5;
    assert_int_equal(raft_step(r, &a), RAFT_ERR_INVALID); /* entry from the future */
    e[1].term = 1;
    e[1].type = 9;
    assert_int_equal(raft_step(r, &a), RAFT_ERR_INVALID);
    e[1].type = RAFT_ENTRY_CONFIG;
    uint8_t bad_conf[] = {1, 0, 0, 0, 0}; /* one member, a learner: no voter */
    e[1].data = bad_conf;
    e[1].len = sizeof bad_conf;
    assert_int_equal(raft_step(r, &a), RAFT_ERR_INVALID);
    e[1].data = NULL;
    e[1].type = RAFT_ENTRY_NORMAL;
    e[1].len = 4; /* length without data */
    assert_int_equal(raft_step(r, &a), RAFT_ERR_INVALID);
    assert_int_equal(raft_current_term(r), 0);
    assert_int_equal(raft_last_index(r), 0);
    assert_int_equal(raft_step(r, NULL), RAFT_ERR_INVALID);
    raft_free(r);
}

static void test_restore_refused(void **state) {
    (void)state;
    struct raft *r = node(1, 3);
    struct raft_entry gap[] = {{.index = 1, .term = 1, .type = RAFT_ENTRY_NOOP},
                               {.index = 3, .term = 1, .type = RAFT_ENTRY_NOOP}};
    assert_int_equal(raft_restore(r, 1, 0, 0, 0, gap, 2), RAFT_ERR_INVALID);
    uint8_t bad_conf[] = {2, 0, 0, 0, 7}; /* voting flag neither 0 nor 1 */
    struct raft_entry conf[] = {{.index = 1, .term = 1, .type = RAFT_ENTRY_CONFIG,
                                 .data = bad_conf, .len = sizeof bad_conf}};
    assert_int_equal(raft_restore(r, 1, 0, 0, 0, conf, 1), RAFT_ERR_INVALID);
    struct raft_entry future[] = {{.index = 1, .term = 3, .type = RAFT_ENTRY_NOOP}};
    assert_int_equal(raft_restore(r, 2, 0, 0, 0, future, 1), RAFT_ERR_INVALID);
    assert_int_equal(raft_restore(r, 3, 2, 0, 0, future, 1), RAFT_OK);
    assert_int_equal(raft_current_term(r), 3);
    assert_int_equal(raft_voted_for(r), 2);
    assert_int_equal(raft_persisted_index(r), 1);
    assert_int_equal(raft_restore(r, 3, 2, 0, 0, future, 1), RAFT_ERR_INVALID); /* only once */
    struct raft_ready rd;
    assert_false(raft_ready(r, &rd)); /* nothing to persist again */
    raft_free(r);
}

/* ---- snapshots (stage 6) */

static struct raft_entry noops[16];

/* Entries 1..n of term t (no-ops: no data to own). */
static const struct raft_entry *log_of(size_t n, raft_term t) {
    for (size_t i = 0; i < n; i++)
        noops[i] = (struct raft_entry){.index = i + 1, .term = t, .type = RAFT_ENTRY_NOOP};
    return noops;
}

static const struct raft_membership CONF3 = {3, {{1, true}, {2, true}, {3, true}}};

static struct raft_msg snap_msg(raft_id from, raft_id to, raft_term term, raft_index i, raft_term t) {
    return (struct raft_msg){.type = RAFT_MSG_SNAPSHOT, .from = from, .to = to, .term = term,
                             .snap_index = i, .snap_term = t, .conf = CONF3};
}

/* A snapshot not newer than the follower's commit index is ignored (it
 * would take the state machine back); the answer names the commit index. */
static void test_snapshot_older_ignored(void **state) {
    (void)state;
    struct raft *r = node(2, 3);
    assert_int_equal(raft_restore(r, 1, 0, 0, 0, log_of(5, 1), 5), RAFT_OK);
    struct raft_msg hb = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 1, .commit = 5};
    assert_int_equal(raft_step(r, &hb), RAFT_OK);
    struct raft_ready rd;
    raft_ready(r, &rd);
    raft_advance(r);
    assert_int_equal(raft_commit_index(r), 5);
    struct raft_msg m = snap_msg(1, 2, 1, 3, 1);
    assert_int_equal(raft_step(r, &m), RAFT_OK);
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.snapshot_index, 0);
    assert_int_equal(rd.compacted_to, 0);
    assert_int_equal(rd.truncate_from, 0);
    const struct raft_msg *resp = find_msg(&rd, RAFT_MSG_APPEND_RESP, 1);
    assert_non_null(resp);
    assert_false(resp->reject);
    assert_int_equal(resp->match_index, 5);
    raft_advance(r);
    assert_int_equal(raft_first_index(r), 1);
    assert_int_equal(raft_last_index(r), 5);
    assert_int_equal(raft_snapshot_index(r), 0);
    raft_free(r);
}

/* The follower's log holds the snapshot's last entry (same index and
 * term): the entries after it are kept, nothing is restored, the snapshot's
 * index is committed and acknowledged. */
static void test_snapshot_matching_suffix_kept(void **state) {
    (void)state;
    struct raft *r = node(2, 3);
    assert_int_equal(raft_restore(r, 1, 0, 0, 0, log_of(5, 1), 5), RAFT_OK);
    struct raft_msg m = snap_msg(1, 2, 1, 3, 1);
    assert_int_equal(raft_step(r, &m), RAFT_OK);
    struct raft_ready rd;
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.snapshot_index, 0);
    assert_int_equal(rd.truncate_from, 0);
    assert_int_equal(rd.n_committed, 3); /* applied from its own log */
    const struct raft_msg *resp = find_msg(&rd, RAFT_MSG_APPEND_RESP, 1);
    assert_non_null(resp);
    assert_int_equal(resp->match_index, 3);
    raft_advance(r);
    assert_int_equal(raft_commit_index(r), 3);
    assert_int_equal(raft_last_index(r), 5);
    assert_non_null(raft_entry_at(r, 4));
    assert_non_null(raft_entry_at(r, 5));
    raft_free(r);
}

/* A conflicting log is replaced by the snapshot: the host is told to drop
 * its entries, restore the state machine, and report the install durable;
 * the acknowledgement waits for that report. */
static void test_snapshot_replaces_conflicting_log(void **state) {
    (void)state;
    struct raft *r = node(2, 3);
    assert_int_equal(raft_restore(r, 1, 0, 0, 0, log_of(5, 1), 5), RAFT_OK);
    struct raft_msg m = snap_msg(3, 2, 2, 4, 2);
    assert_int_equal(raft_step(r, &m), RAFT_OK);
    struct raft_ready rd;
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.snapshot_index, 4);
    assert_int_equal(rd.snapshot_term, 2);
    assert_int_equal(rd.truncate_from, 5);
    assert_int_equal(rd.compacted_to, 4);
    assert_int_equal(rd.n_entries, 0);
    assert_int_equal(rd.n_committed, 0); /* the snapshot is the state, nothing to apply */
    assert_null(find_msg(&rd, RAFT_MSG_APPEND_RESP, 3)); /* held until durable */
    raft_advance(r);
    assert_int_equal(raft_first_index(r), 5);
    assert_int_equal(raft_last_index(r), 4);
    assert_int_equal(raft_commit_index(r), 4);
    assert_int_equal(raft_snapshot_index(r), 4);
    assert_int_equal(raft_snapshot_term(r), 2);
    raft_persisted(r, 4, 2);
    assert_true(raft_ready(r, &rd));
    const struct raft_msg *resp = find_msg(&rd, RAFT_MSG_APPEND_RESP, 3);
    assert_non_null(resp);
    assert_int_equal(resp->match_index, 4);
    raft_advance(r);
    /* appends continue from the snapshot */
    struct raft_entry e[] = {{.index = 5, .term = 2, .type = RAFT_ENTRY_NOOP}};
    struct raft_msg ap = {.type = RAFT_MSG_APPEND, .from = 3, .to = 2, .term = 2, .prev_index = 4,
                          .prev_term = 2, .commit = 5, .entries = e, .n_entries = 1};
    assert_int_equal(raft_step(r, &ap), RAFT_OK);
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.entries[0].index, 5);
    raft_advance(r);
    raft_free(r);
}

/* Node 1 wins term 1 with node 2's votes; node 3 never answers. */
static struct raft *leader1(unsigned trailing) {
    struct raft_config cfg;
    raft_config_default(&cfg, 1, PEERS3, 3);
    cfg.seed = 42;
    cfg.snapshot_trailing = trailing;
    struct raft *r = raft_new(&cfg);
    assert_non_null(r);
    struct raft_ready rd;
    tick_until_ready(r, &rd);
    raft_advance(r);
    struct raft_msg g = {.type = RAFT_MSG_PREVOTE_RESP, .from = 2, .to = 1, .term = 1};
    assert_int_equal(raft_step(r, &g), RAFT_OK);
    raft_ready(r, &rd);
    raft_advance(r);
    g.type = RAFT_MSG_VOTE_RESP;
    assert_int_equal(raft_step(r, &g), RAFT_OK);
    raft_ready(r, &rd);
    assert_int_equal(rd.role, RAFT_LEADER);
    raft_advance(r);
    return r;
}

/* Leader 1 commits and applies 1..4 with node 2, snapshots at 4 and drops
 * its log; node 3 still needs entry 1. */
static struct raft *leader_with_snapshot(void) {
    struct raft *r = leader1(0);
    struct raft_ready rd;
    for (int k = 0; k < 3; k++)
        assert_int_equal(raft_propose(r, "v", 1, NULL, NULL), RAFT_OK);
    raft_ready(r, &rd);
    raft_advance(r);
    raft_persisted(r, 4, 1);
    struct raft_msg ack = {.type = RAFT_MSG_APPEND_RESP, .from = 2, .to = 1, .term = 1,
                           .match_index = 4};
    assert_int_equal(raft_step(r, &ack), RAFT_OK);
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.n_committed, 4);
    raft_advance(r);
    assert_int_equal(raft_snapshot_done(r, 4, 1), RAFT_ERR_INVALID); /* not applied yet */
    raft_applied(r, 4);
    assert_int_equal(raft_snapshot_done(r, 4, 2), RAFT_ERR_INVALID); /* wrong term */
    assert_int_equal(raft_snapshot_done(r, 4, 1), RAFT_OK);
    assert_int_equal(raft_snapshot_done(r, 3, 1), RAFT_ERR_INVALID); /* older */
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.compacted_to, 4);
    raft_advance(r);
    assert_int_equal(raft_first_index(r), 5);
    return r;
}

static void heartbeat_resp(struct raft *r, raft_id from) {
    struct raft_msg m = {.type = RAFT_MSG_HEARTBEAT_RESP, .from = from, .to = 1, .term = 1};
    assert_int_equal(raft_step(r, &m), RAFT_OK);
}

/* A follower behind the log's first entry is sent the snapshot, no appends
 * while it is under way; a failed transfer is retried once the follower
 * answers again; after a delivered one and its acknowledgement, appends
 * resume after the snapshot. */
static void test_snapshot_sent_to_lagging_follower(void **state) {
    (void)state;
    struct raft *r = leader_with_snapshot();
    struct raft_ready rd;
    heartbeat_resp(r, 3); /* node 3 is alive: probe it */
    assert_true(raft_ready(r, &rd));
    const struct raft_msg *m = find_msg(&rd, RAFT_MSG_SNAPSHOT, 3);
    assert_non_null(m);
    assert_int_equal(m->snap_index, 4);
    assert_int_equal(m->snap_term, 1);
    assert_null(find_msg(&rd, RAFT_MSG_APPEND, 3));
    raft_advance(r);
    raft_index pending;
    assert_true(raft_peer_snapshot(r, 3, &pending));
    assert_int_equal(pending, 4);
    assert_int_equal(raft_propose(r, "w", 1, NULL, NULL), RAFT_OK);
    heartbeat_resp(r, 3);
    assert_true(raft_ready(r, &rd));
    assert_non_null(find_msg(&rd, RAFT_MSG_APPEND, 2));
    assert_null(find_msg(&rd, RAFT_MSG_APPEND, 3));
    assert_null(find_msg(&rd, RAFT_MSG_SNAPSHOT, 3));
    raft_advance(r);

    raft_snapshot_sent(r, 3, 4, false);
    assert_false(raft_peer_snapshot(r, 3, NULL));
    assert_false(raft_ready(r, &rd)); /* not streamed again at once */
    heartbeat_resp(r, 3);
    assert_true(raft_ready(r, &rd));
    assert_non_null(find_msg(&rd, RAFT_MSG_SNAPSHOT, 3));
    raft_advance(r);

    raft_snapshot_sent(r, 3, 4, true);
    struct raft_msg ack = {.type = RAFT_MSG_APPEND_RESP, .from = 3, .to = 1, .term = 1,
                           .match_index = 4};
    assert_int_equal(raft_step(r, &ack), RAFT_OK);
    assert_true(raft_ready(r, &rd));
    m = find_msg(&rd, RAFT_MSG_APPEND, 3);
    assert_non_null(m);
    assert_int_equal(m->prev_index, 4);
    assert_int_equal(m->prev_term, 1);
    assert_int_equal(m->n_entries, 1);
    raft_advance(r);
    raft_free(r);
}

/* The leader loses leadership while a snapshot is on its way: the late
 * report changes nothing, and the follower, already in a newer term, turns
 * the stale snapshot down without installing it. */
static void test_snapshot_leader_change_during_transfer(void **state) {
    (void)state;
    struct raft *r = leader_with_snapshot();
    struct raft_ready rd;
    heartbeat_resp(r, 3);
    assert_true(raft_ready(r, &rd));
    const struct raft_msg *sm = find_msg(&rd, RAFT_MSG_SNAPSHOT, 3);
    assert_non_null(sm);
    struct raft_msg stale = *sm;
    raft_advance(r);
    struct raft_msg hb = {.type = RAFT_MSG_HEARTBEAT, .from = 2, .to = 1, .term = 2};
    assert_int_equal(raft_step(r, &hb), RAFT_OK);
    assert_int_equal(raft_role(r), RAFT_FOLLOWER);
    raft_ready(r, &rd);
    raft_advance(r);
    raft_snapshot_sent(r, 3, 4, true);
    assert_false(raft_ready(r, &rd));
    assert_false(raft_peer_snapshot(r, 3, NULL));
    raft_free(r);

    struct raft *f = node(3, 3);
    assert_int_equal(raft_restore(f, 2, 2, 0, 0, log_of(1, 1), 1), RAFT_OK);
    assert_int_equal(raft_step(f, &stale), RAFT_OK);
    assert_true(raft_ready(f, &rd));
    assert_int_equal(rd.snapshot_index, 0);
    const struct raft_msg *resp = find_msg(&rd, RAFT_MSG_APPEND_RESP, 1);
    assert_non_null(resp);
    assert_true(resp->reject);
    assert_int_equal(resp->term, 2); /* tells the old leader the new term */
    raft_advance(f);
    assert_int_equal(raft_last_index(f), 1);
    raft_free(f);
}

/* A restart loads the snapshot's (index, term) and the log after it: the
 * snapshot counts as committed and applied; entries it covers are skipped. */
static void test_restore_with_snapshot(void **state) {
    (void)state;
    struct raft_entry e[5];
    for (int k = 0; k < 5; k++)
        e[k] = (struct raft_entry){.index = 8 + k, .term = k < 3 ? 2 : 3, .type = RAFT_ENTRY_NOOP};
    struct raft *r = node(1, 3);
    assert_int_equal(raft_restore(r, 3, 0, 10, 2, e, 5), RAFT_OK);
    assert_int_equal(raft_first_index(r), 11);
    assert_int_equal(raft_last_index(r), 12);
    assert_int_equal(raft_snapshot_index(r), 10);
    assert_int_equal(raft_snapshot_term(r), 2);
    assert_int_equal(raft_commit_index(r), 10);
    assert_int_equal(raft_applied_index(r), 10);
    assert_int_equal(raft_persisted_index(r), 12);
    assert_null(raft_entry_at(r, 10));
    assert_int_equal(raft_entry_at(r, 11)->term, 3);
    struct raft_ready rd;
    assert_false(raft_ready(r, &rd)); /* nothing to apply again: the snapshot holds it */
    raft_free(r);

    r = node(1, 3);
    assert_int_equal(raft_restore(r, 3, 0, 10, 0, NULL, 0), RAFT_ERR_INVALID); /* index, no term */
    assert_int_equal(raft_restore(r, 1, 0, 10, 2, NULL, 0), RAFT_ERR_INVALID); /* term from the future */
    assert_int_equal(raft_restore(r, 3, 0, 10, 2, e + 4, 1), RAFT_ERR_INVALID); /* gap after it */
    e[3].term = 1;
    assert_int_equal(raft_restore(r, 3, 0, 10, 2, e, 5), RAFT_ERR_INVALID); /* term goes back */
    assert_int_equal(raft_restore(r, 3, 0, 10, 2, NULL, 0), RAFT_OK); /* a snapshot alone */
    assert_int_equal(raft_last_index(r), 10);
    assert_int_equal(raft_first_index(r), 11);
    raft_free(r);
}

/* ---- membership (stage 6, thesis chapter 4) */

static void drain(struct raft *r) {
    struct raft_ready rd;
    for (int i = 0; i < 10 && raft_ready(r, &rd); i++)
        raft_advance(r);
}

static void ack(struct raft *r, raft_id from, raft_index match) {
    struct raft_msg m = {.type = RAFT_MSG_APPEND_RESP, .from = from, .to = raft_self(r),
                         .term = raft_current_term(r), .match_index = match};
    assert_int_equal(raft_step(r, &m), RAFT_OK);
}

/* Node 1 wins term 1 of {1, 2, 3} with node 2's votes. */
static struct raft *elect1(void) {
    struct raft *r = node(1, 3);
    struct raft_ready rd;
    tick_until_ready(r, &rd);
    raft_advance(r);
    struct raft_msg g = {.type = RAFT_MSG_PREVOTE_RESP, .from = 2, .to = 1, .term = 1};
    assert_int_equal(raft_step(r, &g), RAFT_OK);
    drain(r);
    g.type = RAFT_MSG_VOTE_RESP;
    assert_int_equal(raft_step(r, &g), RAFT_OK);
    drain(r);
    assert_int_equal(raft_role(r), RAFT_LEADER);
    return r;
}

/* Node 1 leads term 1 of {1, 2, 3}; its no-op (index 1) is committed. */
static struct raft *leader3(void) {
    struct raft *r = elect1();
    raft_persisted(r, 1, 1);
    ack(r, 2, 1);
    drain(r);
    assert_int_equal(raft_commit_index(r), 1);
    return r;
}

static bool is_member(struct raft *r, raft_id id, bool voter) {
    const struct raft_member *m = raft_membership_find(raft_membership(r, NULL), id);
    return m && m->voter == voter;
}

/* Leader 1 of {1, 2, 3} with learner 4 added and that change committed. */
static struct raft *leader3_learner4(void) {
    struct raft *r = leader3();
    raft_index idx;
    assert_int_equal(raft_propose_add_learner(r, 4, &idx, NULL), RAFT_OK);
    assert_int_equal(idx, 2);
    drain(r);
    raft_persisted(r, 2, 1);
    ack(r, 2, 2);
    drain(r);
    assert_int_equal(raft_commit_index(r), 2);
    return r;
}

/* One change at a time: a second one while the first is uncommitted is
 * refused with RAFT_ERR_CHANGE_PENDING, as is any before the leader has
 * committed an entry of its own term; malformed requests are invalid. */
static void test_member_second_change_refused(void **state) {
    (void)state;
    struct raft *f = node(2, 3);
    assert_int_equal(raft_propose_add_learner(f, 4, NULL, NULL), RAFT_ERR_NOT_LEADER);
    raft_free(f);

    struct raft *r = elect1();
    /* its no-op is not committed yet */
    assert_int_equal(raft_propose_add_learner(r, 4, NULL, NULL), RAFT_ERR_CHANGE_PENDING);
    raft_persisted(r, 1, 1);
    ack(r, 3, 1);
    drain(r);

    raft_index idx;
    raft_term term;
    assert_int_equal(raft_propose_add_learner(r, 4, &idx, &term), RAFT_OK);
    assert_int_equal(idx, 2);
    assert_int_equal(term, 1);
    assert_true(is_member(r, 4, false)); /* used at once, uncommitted */
    struct raft_ready rd;
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.entries[0].type, RAFT_ENTRY_CONFIG);
    struct raft_membership c;
    assert_int_equal(raft_membership_decode(rd.entries[0].data, rd.entries[0].len, &c), RAFT_OK);
    assert_int_equal(c.n, 4);
    assert_non_null(find_msg(&rd, RAFT_MSG_APPEND, 4)); /* the learner is sent the log */
    raft_advance(r);
    assert_int_equal(raft_propose_add_learner(r, 5, NULL, NULL), RAFT_ERR_CHANGE_PENDING);
    assert_int_equal(raft_propose_remove(r, 2, NULL, NULL), RAFT_ERR_CHANGE_PENDING);
    assert_int_equal(raft_promote(r, 4, NULL, NULL), RAFT_ERR_CHANGE_PENDING);
    raft_persisted(r, 2, 1);
    ack(r, 2, 2);
    drain(r);
    assert_int_equal(raft_commit_index(r), 2);
    assert_int_equal(raft_propose_add_learner(r, 4, NULL, NULL), RAFT_ERR_INVALID); /* a member */
    assert_int_equal(raft_propose_add_learner(r, 0, NULL, NULL), RAFT_ERR_INVALID);
    assert_int_equal(raft_propose_remove(r, 9, NULL, NULL), RAFT_ERR_INVALID); /* not one */
    assert_int_equal(raft_promote(r, 2, NULL, NULL), RAFT_ERR_INVALID); /* already votes */
    assert_int_equal(raft_propose_add_learner(r, 5, &idx, NULL), RAFT_OK);
    assert_int_equal(idx, 3);
    raft_free(r);
}

/* A learner's acknowledgements count toward neither commit nor ReadIndex:
 * with the leader's own copy, a learner's ack is 2 of 4 members but only 1
 * of 3 voters. */
static void test_member_learner_does_not_count(void **state) {
    (void)state;
    struct raft *r = leader3_learner4();
    raft_index idx;
    assert_int_equal(raft_propose(r, "x", 1, &idx, NULL), RAFT_OK);
    drain(r);
    raft_persisted(r, idx, 1);
    ack(r, 4, idx);
    assert_int_equal(raft_commit_index(r), 2);
    ack(r, 3, idx);
    assert_int_equal(raft_commit_index(r), idx);
    drain(r);
    raft_applied(r, idx);

    assert_int_equal(raft_read_index(r, 7), RAFT_OK);
    struct raft_ready rd;
    assert_true(raft_ready(r, &rd));
    const struct raft_msg *hb = find_msg(&rd, RAFT_MSG_HEARTBEAT, 4);
    assert_non_null(hb); /* learners get heartbeats too */
    uint64_t seq = hb->read_seq;
    raft_advance(r);
    struct raft_msg resp = {.type = RAFT_MSG_HEARTBEAT_RESP, .from = 4, .to = 1, .term = 1,
                            .read_seq = seq};
    assert_int_equal(raft_step(r, &resp), RAFT_OK);
    raft_ready(r, &rd);
    assert_int_equal(rd.n_reads, 0); /* the learner's ack confirms nothing */
    raft_advance(r);
    resp.from = 2;
    assert_int_equal(raft_step(r, &resp), RAFT_OK);
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.n_reads, 1);
    raft_advance(r);
    raft_free(r);
}

/* The promotion rule: the learner has acknowledged the entry that added it
 * and is within cfg.promote_lag entries of the leader's last index. Once a
 * voter, it counts: 4 voters need 3 copies. */
static void test_member_promotion_rule(void **state) {
    (void)state;
    struct raft *r = leader3_learner4();
    assert_int_equal(raft_promote(r, 4, NULL, NULL), RAFT_ERR_NOT_CAUGHT_UP); /* heard nothing */
    raft_index last = 0;
    for (int i = 0; i < 20; i++)
        assert_int_equal(raft_propose(r, "y", 1, &last, NULL), RAFT_OK);
    drain(r);
    raft_persisted(r, last, 1);
    ack(r, 2, last);
    drain(r);
    ack(r, 4, 2); /* holds its own addition, but 20 entries behind (lag 16) */
    assert_int_equal(raft_promote(r, 4, NULL, NULL), RAFT_ERR_NOT_CAUGHT_UP);
    ack(r, 4, last - 16);
    raft_index idx;
    assert_int_equal(raft_promote(r, 4, &idx, NULL), RAFT_OK);
    assert_true(is_member(r, 4, true));
    drain(r);
    raft_persisted(r, idx, 1);
    ack(r, 2, idx);
    assert_int_equal(raft_commit_index(r), last); /* 2 of 4 voters: not yet */
    ack(r, 4, idx);
    assert_int_equal(raft_commit_index(r), idx);
    raft_free(r);
}

/* The leader removes itself: it keeps leading until the change commits
 * (counted over the configuration that included it), then sends TimeoutNow
 * to the voter with the most of the log, steps down, and stays quiet. */
static void test_member_leader_removal_hands_over(void **state) {
    (void)state;
    struct raft *r = leader3();
    raft_index idx;
    assert_int_equal(raft_propose_remove(r, 1, &idx, NULL), RAFT_OK);
    assert_false(is_member(r, 1, true) || is_member(r, 1, false));
    drain(r);
    raft_persisted(r, idx, 1);
    ack(r, 3, idx - 1);
    assert_int_equal(raft_role(r), RAFT_LEADER);
    ack(r, 2, idx); /* 1 and 2 of the old {1, 2, 3}: committed */
    assert_int_equal(raft_commit_index(r), idx);
    struct raft_ready rd;
    assert_true(raft_ready(r, &rd));
    const struct raft_msg *tn = find_msg(&rd, RAFT_MSG_TIMEOUT_NOW, 2);
    assert_non_null(tn);
    assert_null(find_msg(&rd, RAFT_MSG_TIMEOUT_NOW, 3));
    assert_true(rd.soft_changed);
    assert_int_equal(rd.role, RAFT_FOLLOWER);
    raft_advance(r);
    for (int i = 0; i < 60; i++) { /* removed: never campaigns */
        raft_tick(r);
        assert_false(raft_ready(r, &rd) && rd.n_messages);
        raft_advance(r);
    }
    raft_free(r);

    /* Node 2 receives it: campaigns at once in term 2, asking only the
     * voters of its configuration ({2, 3}), with the transfer flag so that
     * node 3's leader lease does not turn it down. */
    struct raft *f = node(2, 3);
    uint8_t buf[RAFT_MEMBERSHIP_MAX_BYTES];
    struct raft_membership c23 = {2, {{2, true}, {3, true}}};
    struct raft_entry log[] = {{.index = 1, .term = 1, .type = RAFT_ENTRY_NOOP},
                               {.index = 2, .term = 1, .type = RAFT_ENTRY_CONFIG, .data = buf,
                                .len = raft_membership_encode(&c23, buf)}};
    assert_int_equal(raft_restore(f, 1, 1, 0, 0, log, 2), RAFT_OK);
    struct raft_msg hb = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 1, .commit = 2};
    assert_int_equal(raft_step(f, &hb), RAFT_OK); /* the old leader, no longer a member */
    drain(f);
    struct raft_msg now = {.type = RAFT_MSG_TIMEOUT_NOW, .from = 1, .to = 2, .term = 1};
    assert_int_equal(raft_step(f, &now), RAFT_OK);
    assert_true(raft_ready(f, &rd));
    assert_int_equal(rd.role, RAFT_CANDIDATE);
    const struct raft_msg *v = find_msg(&rd, RAFT_MSG_VOTE, 3);
    assert_non_null(v);
    assert_true(v->transfer);
    assert_int_equal(v->term, 2);
    assert_null(find_msg(&rd, RAFT_MSG_VOTE, 1));
    struct raft_msg vote = *v;
    raft_advance(f);
    raft_free(f);

    struct raft *t = node(3, 3);
    assert_int_equal(raft_restore(t, 1, 1, 0, 0, log, 2), RAFT_OK);
    hb.to = 3;
    assert_int_equal(raft_step(t, &hb), RAFT_OK);
    drain(t);
    assert_int_equal(raft_step(t, &vote), RAFT_OK);
    assert_true(raft_ready(t, &rd));
    const struct raft_msg *g = find_msg(&rd, RAFT_MSG_VOTE_RESP, 2);
    assert_non_null(g);
    assert_false(g->reject);
    raft_advance(t);
    /* the same request without the flag is ignored under the lease */
    struct raft *u = node(3, 3);
    assert_int_equal(raft_restore(u, 1, 1, 0, 0, log, 2), RAFT_OK);
    assert_int_equal(raft_step(u, &hb), RAFT_OK);
    drain(u);
    vote.transfer = false;
    assert_int_equal(raft_step(u, &vote), RAFT_OK);
    assert_false(raft_ready(u, &rd));
    raft_free(u);
    raft_free(t);
}

/* A node started with join: its bootstrap configuration names it a
 * learner; it neither campaigns nor answers votes until a leader's
 * configuration reaches it, and campaigns only once one makes it a voter. */
static void test_member_joining_node_silent(void **state) {
    (void)state;
    static const raft_id peers[] = {1, 2, 3, 4};
    struct raft_config cfg;
    raft_config_default(&cfg, 4, peers, 4);
    cfg.join = true;
    struct raft *r = raft_new(&cfg);
    assert_non_null(r);
    struct raft_ready rd;
    for (int i = 0; i < 60; i++) {
        raft_tick(r);
        assert_false(raft_ready(r, &rd));
    }
    struct raft_msg v = {.type = RAFT_MSG_VOTE, .from = 1, .to = 4, .term = 5};
    assert_int_equal(raft_step(r, &v), RAFT_OK);
    assert_false(raft_ready(r, &rd));
    assert_int_equal(raft_current_term(r), 0);

    uint8_t buf[RAFT_MEMBERSHIP_MAX_BYTES];
    struct raft_membership c = {4, {{1, true}, {2, true}, {3, true}, {4, false}}};
    struct raft_entry e = {.index = 1, .term = 1, .type = RAFT_ENTRY_CONFIG, .data = buf,
                           .len = raft_membership_encode(&c, buf)};
    struct raft_msg ap = {.type = RAFT_MSG_APPEND, .from = 1, .to = 4, .term = 1, .entries = &e,
                          .n_entries = 1};
    assert_int_equal(raft_step(r, &ap), RAFT_OK);
    drain(r);
    raft_persisted(r, 1, 1);
    drain(r);
    for (int i = 0; i < 60; i++) { /* a learner now: still no campaign */
        raft_tick(r);
        if (raft_ready(r, &rd)) {
            assert_null(find_msg(&rd, RAFT_MSG_PREVOTE, 1));
            raft_advance(r);
        }
    }
    c.m[3].voter = true;
    e = (struct raft_entry){.index = 2, .term = 1, .type = RAFT_ENTRY_CONFIG, .data = buf,
                            .len = raft_membership_encode(&c, buf)};
    ap.prev_index = 1;
    ap.prev_term = 1;
    assert_int_equal(raft_step(r, &ap), RAFT_OK);
    drain(r);
    assert_true(is_member(r, 4, true));
    bool campaigned = false;
    for (int i = 0; i < 60 && !campaigned; i++) {
        raft_tick(r);
        if (raft_ready(r, &rd)) {
            campaigned = find_msg(&rd, RAFT_MSG_PREVOTE, 1) != NULL;
            raft_advance(r);
        }
    }
    assert_true(campaigned);
    raft_free(r);
}

/* The configuration travels with snapshots: the core names the one at a
 * snapshot's index, the follower's Ready hands a received one to its host,
 * and a restart takes it back before raft_restore. */
static void test_member_config_from_snapshot(void **state) {
    (void)state;
    struct raft *l = leader3_learner4();
    drain(l);
    raft_applied(l, 2);
    assert_int_equal(raft_snapshot_done(l, 2, 1), RAFT_OK);
    struct raft_membership at;
    assert_int_equal(raft_membership_at(l, 2, &at), RAFT_OK);
    assert_int_equal(at.n, 4);
    assert_int_equal(raft_membership_at(l, 1, &at), RAFT_OK);
    assert_int_equal(at.n, 3); /* before the addition */
    assert_int_equal(raft_membership_at(l, 3, &at), RAFT_ERR_INVALID); /* beyond the log */
    raft_free(l);

    static const raft_id peers[] = {1, 2, 3, 4};
    struct raft_config cfg;
    raft_config_default(&cfg, 4, peers, 4);
    cfg.join = true;
    struct raft *f = raft_new(&cfg);
    assert_non_null(f);
    struct raft_membership c = {4, {{1, true}, {2, true}, {3, true}, {4, false}}};
    struct raft_msg m = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 4, .term = 1,
                         .snap_index = 10, .snap_term = 1, .conf = c};
    assert_int_equal(raft_step(f, &m), RAFT_OK);
    struct raft_ready rd;
    assert_true(raft_ready(f, &rd));
    assert_int_equal(rd.snapshot_index, 10);
    assert_int_equal(rd.snapshot_conf.n, 4);
    assert_false(rd.snapshot_conf.m[3].voter);
    raft_advance(f);
    assert_true(is_member(f, 4, false));
    raft_free(f);

    c.m[3].voter = true; /* a later snapshot: 4 votes */
    f = raft_new(&cfg);
    assert_non_null(f);
    c.m[0].id = 0;
    assert_int_equal(raft_restore_membership(f, &c), RAFT_ERR_INVALID);
    c.m[0].id = 1;
    assert_int_equal(raft_restore_membership(f, &c), RAFT_OK);
    assert_int_equal(raft_restore(f, 2, 0, 10, 1, NULL, 0), RAFT_OK);
    assert_int_equal(raft_restore_membership(f, &c), RAFT_ERR_INVALID); /* too late */
    assert_true(is_member(f, 4, true));
    bool campaigned = false;
    for (int i = 0; i < 60 && !campaigned; i++) {
        raft_tick(f);
        if (raft_ready(f, &rd)) {
            campaigned = find_msg(&rd, RAFT_MSG_PREVOTE, 2) != NULL;
            raft_advance(f);
        }
    }
    assert_true(campaigned);
    raft_free(f);
}

/* The latest configuration in the log is used even uncommitted; when a new
 * leader truncates it, the node falls back to the one before. */
static void test_member_config_falls_back_on_truncation(void **state) {
    (void)state;
    struct raft *r = node(2, 3);
    uint8_t buf[RAFT_MEMBERSHIP_MAX_BYTES];
    struct raft_membership c = {4, {{1, true}, {2, true}, {3, true}, {4, false}}};
    struct raft_entry log[] = {{.index = 1, .term = 1, .type = RAFT_ENTRY_NOOP},
                               {.index = 2, .term = 1, .type = RAFT_ENTRY_CONFIG, .data = buf,
                                .len = raft_membership_encode(&c, buf)}};
    assert_int_equal(raft_restore(r, 1, 0, 0, 0, log, 2), RAFT_OK);
    raft_index at;
    assert_int_equal(raft_membership(r, &at)->n, 4);
    assert_int_equal(at, 2);
    struct raft_entry e = {.index = 2, .term = 2, .type = RAFT_ENTRY_NOOP};
    struct raft_msg ap = {.type = RAFT_MSG_APPEND, .from = 3, .to = 2, .term = 2, .prev_index = 1,
                          .prev_term = 1, .entries = &e, .n_entries = 1};
    assert_int_equal(raft_step(r, &ap), RAFT_OK);
    struct raft_ready rd;
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.truncate_from, 2);
    raft_advance(r);
    assert_int_equal(raft_membership(r, &at)->n, 3); /* the bootstrap {1, 2, 3} */
    assert_int_equal(at, 0);
    assert_false(is_member(r, 4, false));
    raft_free(r);
}

/* An optional argument runs only the tests whose names match it (a cmocka
 * pattern): a lab grades one task with one test (stage6-snapshots/LAB). */
int main(int argc, char **argv) {
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_refused),
        cmocka_unit_test(test_follower_refuses_writes_and_reads),
        cmocka_unit_test(test_single_node_commits_after_persist),
        cmocka_unit_test(test_vote_with_hard_state),
        cmocka_unit_test(test_vote_refused_to_stale_log),
        cmocka_unit_test(test_follower_ack_held_until_persisted),
        cmocka_unit_test(test_truncate_and_stale_persist),
        cmocka_unit_test(test_leader_commit_announced),
        cmocka_unit_test(test_append_rejected_with_hint),
        cmocka_unit_test(test_leader_writes_in_parallel),
        cmocka_unit_test(test_lease_ignores_disruptive_vote),
        cmocka_unit_test(test_bad_messages_refused),
        cmocka_unit_test(test_restore_refused),
        cmocka_unit_test(test_snapshot_older_ignored),
        cmocka_unit_test(test_snapshot_matching_suffix_kept),
        cmocka_unit_test(test_snapshot_replaces_conflicting_log),
        cmocka_unit_test(test_snapshot_sent_to_lagging_follower),
        cmocka_unit_test(test_snapshot_leader_change_during_transfer),
        cmocka_unit_test(test_restore_with_snapshot),
        cmocka_unit_test(test_member_second_change_refused),
        cmocka_unit_test(test_member_learner_does_not_count),
        cmocka_unit_test(test_member_promotion_rule),
        cmocka_unit_test(test_member_leader_removal_hands_over),
        cmocka_unit_test(test_member_joining_node_silent),
        cmocka_unit_test(test_member_config_from_snapshot),
        cmocka_unit_test(test_member_config_falls_back_on_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
