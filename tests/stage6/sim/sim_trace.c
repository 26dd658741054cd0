/* sim_trace.c - the replayable trace: a ring of the last events, kept as
 * small records and formatted only when a run fails (or with SIM_VERBOSE). */
#include <stdio.h>

#include "sim.h"

static void print_ev(const struct sim *s, const struct sim_trace_ev *e) {
    unsigned long long a = e->a, b = e->b, c = e->c;
    printf("  t=%-7llu ", (unsigned long long)e->at);
    switch (e->kind) {
    case TR_DELIVER:
        printf("n%d <- n%d %-13s term=%llu idx=%llu n/rej=%llu\n", e->node + 1, e->peer + 1,
               raft_msg_name(e->type), a, b, c);
        break;
    case TR_DROP:
        printf("n%d -> n%d %-13s term=%llu DROPPED\n", e->node + 1, e->peer + 1,
               raft_msg_name(e->type), a);
        break;
    case TR_ROLE:
        printf("n%d is %s, term %llu, leader %d\n", e->node + 1, raft_role_name(e->type), a,
               e->peer + 1);
        break;
    case TR_PROPOSE:
        printf("n%d propose value %llu -> index %llu term %llu\n", e->node + 1, c, a, b);
        break;
    case TR_CRASH:
        printf("n%d CRASH (durable: term %llu, %llu entries)\n", e->node + 1, a, b);
        break;
    case TR_RESTART:
        printf("n%d RESTART (durable: term %llu, %llu entries)\n", e->node + 1, a, b);
        break;
    case TR_CUT:
        if (e->peer < 0)
            printf("n%d disconnected\n", e->node + 1);
        else
            printf("link n%d -> n%d cut\n", e->node + 1, e->peer + 1);
        break;
    case TR_HEAL:
        if (e->node < 0)
            printf("network healed\n");
        else
            printf("n%d reconnected\n", e->node + 1);
        break;
    case TR_PERSIST:
        printf("n%d durable up to index %llu (term %llu)\n", e->node + 1, a, b);
        break;
    case TR_APPLY:
        printf("n%d apply index %llu term %llu value %llu\n", e->node + 1, a, b, c);
        break;
    case TR_READ:
        printf("n%d read %llu asked (committed anywhere: %llu)\n", e->node + 1, a, b);
        break;
    case TR_READ_DONE:
        printf("n%d read %llu served at index %llu (needed >= %llu)\n", e->node + 1, a, b, c);
        break;
    case TR_NOTE:
        printf("VIOLATION: %s\n", s->why);
        break;
    case TR_SNAP:
        if (c == SNAP_TAKEN)
            printf("n%d snapshot at index %llu term %llu durable\n", e->node + 1, a, b);
        else if (c == SNAP_INSTALL)
            printf("n%d INSTALL snapshot at index %llu term %llu\n", e->node + 1, a, b);
        else if (c == SNAP_COMPACT)
            printf("n%d log compacted up to index %llu\n", e->node + 1, a);
        else
            printf("n%d snapshot %llu to n%d %s\n", e->node + 1, a, e->peer + 1,
                   c == SNAP_SENT_OK ? "delivered" : "FAILED");
        break;
    case TR_MEMBER:
        printf("n%d proposes %s n%d -> index %llu term %llu\n", e->node + 1,
               e->type == SIM_ADD ? "add learner" : e->type == SIM_PROMOTE ? "promote" : "remove",
               e->peer + 1, a, b);
        break;
    default:
        printf("?\n");
    }
}

void sim_trace(struct sim *s, int kind, int node, int peer, int type, uint64_t a, uint64_t b,
               uint64_t c) {
    struct sim_trace_ev *e = &s->trace[s->n_trace % SIM_TRACE_N];
    *e = (struct sim_trace_ev){.at = s->now, .kind = kind, .node = node, .peer = peer,
                               .type = type, .a = a, .b = b, .c = c};
    s->n_trace++;
    if (s->tl)
        sim_tl_write(s, e);
    if (s->verbose)
        print_ev(s, e);
}

void sim_trace_dump(const struct sim *s, unsigned last) {
    if (last > SIM_TRACE_N)
        last = SIM_TRACE_N;
    uint64_t from = s->n_trace > last ? s->n_trace - last : 0;
    printf("last %llu events:\n", (unsigned long long)(s->n_trace - from));
    for (uint64_t k = from; k < s->n_trace; k++)
        print_ev(s, &s->trace[k % SIM_TRACE_N]);
}
