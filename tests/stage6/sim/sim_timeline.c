/* sim_timeline.c - writes every event of one run as JSON lines in the
 * neutral timeline format that scripts/timeline.py documents and draws.
 * Only called when s->tl is set (--timeline, SIM_TIMELINE, or the replay of
 * a failing run), so the usual seeded runs pay nothing for formatting. */
#include "sim.h"

static void put_str(FILE *f, const char *p) {
    fputc('"', f);
    for (; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void head(struct sim *s, int node, const char *kind) {
    fprintf(s->tl, "{\"t\":%llu,\"node\":", (unsigned long long)s->now);
    if (node < 0)
        fputs("null", s->tl);
    else
        fprintf(s->tl, "%d", node + 1);
    fprintf(s->tl, ",\"kind\":\"%s\"", kind);
}

/* Node ids as a JSON list: every node but `self` (and, if only_connected,
 * only those connected), i.e. the links a disconnect cut or a connect restored. */
static void put_others(struct sim *s, int self, bool only_connected) {
    fputc('[', s->tl);
    const char *sep = "";
    for (unsigned k = 0; k < s->n; k++) {
        if ((int)k == self || (only_connected && !s->connected[k]))
            continue;
        fprintf(s->tl, "%s%u", sep, k + 1);
        sep = ",";
    }
    fputc(']', s->tl);
}

static bool is_resp(int type) {
    return type == RAFT_MSG_PREVOTE_RESP || type == RAFT_MSG_VOTE_RESP ||
           type == RAFT_MSG_APPEND_RESP || type == RAFT_MSG_HEARTBEAT_RESP;
}

void sim_tl_begin(struct sim *s, FILE *f, const char *binary) {
    s->tl = f;
    fputs("{\"t\":0,\"node\":null,\"kind\":\"meta\",\"source\":\"raft_sim\",\"scenario\":", f);
    put_str(f, s->scenario);
    fprintf(f, ",\"seed\":%llu,\"nodes\":[", (unsigned long long)s->seed);
    for (unsigned k = 0; k < s->n; k++)
        fprintf(f, "%s%u", k ? "," : "", k + 1);
    fprintf(f, "],\"unit\":\"sim\",\"tick\":%d,\"election\":%d,\"binary\":", SIM_TICK, SIM_E);
    put_str(f, binary);
    fprintf(f, ",\"replay\":\"SIM_SCENARIO=%s SIM_SEED=%llu %s\"}\n", s->scenario,
            (unsigned long long)s->seed, binary);
}

void sim_tl_write(struct sim *s, const struct sim_trace_ev *e) {
    FILE *f = s->tl;
    unsigned long long a = e->a, b = e->b, c = e->c;
    switch (e->kind) {
    case TR_DELIVER:
        head(s, e->node, "recv");
        fprintf(f, ",\"from\":%d,\"msg\":\"%s\",\"term\":%llu", e->peer + 1, raft_msg_name(e->type), a);
        if (e->type == RAFT_MSG_APPEND)
            fprintf(f, ",\"prev\":%llu,\"n\":%llu", b, c);
        else if (is_resp(e->type))
            fprintf(f, ",\"reject\":%s", c ? "true" : "false");
        break;
    case TR_DROP:
        head(s, e->node, "drop");
        fprintf(f, ",\"to\":%d,\"msg\":\"%s\",\"term\":%llu", e->peer + 1, raft_msg_name(e->type), a);
        break;
    case TR_ROLE:
        head(s, e->node, "role");
        fprintf(f, ",\"role\":\"%s\",\"term\":%llu,\"leader\":", raft_role_name(e->type), a);
        if (e->peer < 0)
            fputs("null", f);
        else
            fprintf(f, "%d", e->peer + 1);
        break;
    case TR_PROPOSE:
        head(s, e->node, "propose");
        fprintf(f, ",\"index\":%llu,\"term\":%llu,\"value\":%llu", a, b, c);
        break;
    case TR_CRASH:
    case TR_RESTART:
        head(s, e->node, e->kind == TR_CRASH ? "crash" : "restart");
        fprintf(f, ",\"durable_term\":%llu,\"durable_entries\":%llu", a, b);
        break;
    case TR_CUT:
        head(s, e->node, "partition");
        if (e->peer < 0) {
            fputs(",\"to\":", f);
            put_others(s, e->node, false);
            fputs(",\"both\":true", f);
        } else {
            fprintf(f, ",\"to\":[%d],\"both\":false", e->peer + 1);
        }
        break;
    case TR_HEAL:
        head(s, e->node, "heal");
        if (e->node >= 0) {
            fputs(",\"to\":", f);
            put_others(s, e->node, true);
            fputs(",\"both\":true", f);
        }
        break;
    case TR_PERSIST:
        head(s, e->node, "persist");
        fprintf(f, ",\"index\":%llu,\"term\":%llu", a, b);
        break;
    case TR_APPLY:
        head(s, e->node, "apply");
        fprintf(f, ",\"index\":%llu,\"term\":%llu,\"value\":%llu", a, b, c);
        break;
    case TR_READ:
        head(s, e->node, "read");
        fprintf(f, ",\"id\":%llu,\"phase\":\"ask\",\"committed\":%llu", a, b);
        break;
    case TR_READ_DONE:
        head(s, e->node, "read");
        fprintf(f, ",\"id\":%llu,\"phase\":\"done\",\"index\":%llu,\"need\":%llu", a, b, c);
        break;
    case TR_NOTE:
        head(s, -1, "violation");
        fputs(",\"msg\":", f);
        put_str(f, s->why);
        break;
    case TR_TERM:
        head(s, e->node, "term");
        fprintf(f, ",\"term\":%llu,\"old\":%llu", a, b);
        break;
    case TR_VOTE:
        head(s, e->node, "vote");
        fprintf(f, ",\"for\":%d,\"term\":%llu,\"granted\":%s,\"pre\":%s", e->peer + 1, a,
                c ? "false" : "true", e->type == RAFT_MSG_PREVOTE_RESP ? "true" : "false");
        break;
    case TR_ELECT:
        head(s, e->node, "elect");
        fprintf(f, ",\"term\":%llu,\"pre\":%s", a, e->type == RAFT_MSG_PREVOTE ? "true" : "false");
        break;
    case TR_COMMIT:
        head(s, e->node, "commit");
        fprintf(f, ",\"index\":%llu,\"term\":%llu", a, b);
        break;
    default:
        return;
    }
    fputs("}\n", f);
}

/* A message leaving a node; a vote request opens an election (once per
 * campaign) and a vote answer is a vote, granted or not. */
void sim_tl_send(struct sim *s, int from, const struct raft_msg *m) {
    struct sim_node *nd = &s->node[from];
    if ((m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE) &&
        (nd->tl_campaign_type != m->type || nd->tl_campaign_term != m->term)) {
        nd->tl_campaign_type = m->type;
        nd->tl_campaign_term = m->term;
        SIM_TL(s, TR_ELECT, from, -1, m->type, m->term, 0, 0);
    }
    if (m->type == RAFT_MSG_PREVOTE_RESP || m->type == RAFT_MSG_VOTE_RESP)
        SIM_TL(s, TR_VOTE, from, (int)m->to - 1, m->type, m->term, 0, m->reject);
    FILE *f = s->tl;
    head(s, from, "send");
    fprintf(f, ",\"to\":%u,\"msg\":\"%s\",\"term\":%llu", m->to, raft_msg_name(m->type),
            (unsigned long long)m->term);
    if (m->type == RAFT_MSG_APPEND)
        fprintf(f, ",\"prev\":%llu,\"n\":%zu,\"commit\":%llu", (unsigned long long)m->prev_index,
                m->n_entries, (unsigned long long)m->commit);
    else if (m->type == RAFT_MSG_APPEND_RESP)
        fprintf(f, ",\"match\":%llu", (unsigned long long)m->match_index);
    if (is_resp(m->type))
        fprintf(f, ",\"reject\":%s", m->reject ? "true" : "false");
    fputs("}\n", f);
}
