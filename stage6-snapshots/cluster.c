/* cluster.c - membership change on the server: CLUSTER ADD/REMOVE/NODES,
 * the member address table learnt through the log, promotion of caught-up
 * learners (see cluster.h). */
#include "cluster.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "node.h"
#include "peers.h"
#include "resp_reply.h"
#include "server.h"

/* ---- the address table ---- */

static int slot_of(const node *n, raft_id id) {
    for (unsigned i = 0; i < n->nmembers; i++)
        if (id != 0 && n->members[i].id == id) return (int)i;
    return -1;
}

/* Closes every link to and from slot (it is about to change hands). */
static void drop_links(node *n, int slot) {
    if (n->out[slot]) {
        peer_conn *p = n->out[slot];
        n->out[slot] = NULL; /* on_closed then leaves the slot's redial state alone */
        peer_link_close(&p->link, "the member's address changed or it was removed");
    }
    for (peer_conn *p = n->incoming; p; p = p->next)
        if (p->slot == slot && !p->link.closing) peer_link_close(&p->link, "the member was removed");
    n->next_dial_ms[slot] = 0;
    n->dial_backoff_ms[slot] = 0;
    n->last_heard_ms[slot] = 0;
    n->unsent_logged[slot] = 0;
}

/* Sets id's address (adds it to a free slot if new). Returns 0 or -1 (full). */
static int book_set(node *n, const node_addr *a) {
    int slot = slot_of(n, a->id);
    if (slot >= 0) {
        node_addr *o = &n->members[slot];
        if (strcmp(o->host, a->host) == 0 && o->client_port == a->client_port && o->peer_port == a->peer_port)
            return 0;
        if (a->id == n->self) return 0; /* our own address is what we listen on */
        drop_links(n, slot);
        *o = *a;
        return 0;
    }
    for (unsigned i = 0; i < n->nmembers; i++)
        if (n->members[i].id == 0 && !n->out[i]) {
            n->members[i] = *a;
            return 0;
        }
    if (n->nmembers == RAFT_MAX_NODES) return -1;
    n->members[n->nmembers++] = *a;
    return 0;
}

static void book_remove(node *n, raft_id id) {
    int slot = slot_of(n, id);
    if (slot < 0 || id == n->self) return;
    drop_links(n, slot);
    memset(&n->members[slot], 0, sizeof n->members[slot]);
}

/* "HOST:CLIENTPORT:PEERPORT" for id, parsed with --cluster's rules. */
static int parse_addr(raft_id id, const char *text, size_t len, node_addr *out, char *err, size_t errlen) {
    char spec[200];
    if (len > 150) {
        snprintf(err, errlen, "address too long");
        return -1;
    }
    snprintf(spec, sizeof spec, "%u=%.*s", id, (int)len, text);
    unsigned count;
    node_addr one[RAFT_MAX_NODES];
    if (strchr(spec, ',') || node_parse_cluster(spec, one, &count, err, errlen) != 0) {
        if (strchr(spec, ',')) snprintf(err, errlen, "bad address '%.*s'", (int)len, text);
        return -1;
    }
    if (one[0].peer_port == 0) {
        snprintf(err, errlen, "a member needs a peer port");
        return -1;
    }
    *out = one[0];
    return 0;
}

void cluster_apply_member(node *n, const Kv__Command *cmd) {
    char idtext[16], err[160];
    node_addr a;
    unsigned long id = 0;
    if (cmd->key.len == 0 || cmd->key.len >= sizeof idtext) goto bad;
    memcpy(idtext, cmd->key.data, cmd->key.len);
    idtext[cmd->key.len] = '\0';
    char *end;
    id = strtoul(idtext, &end, 10);
    if (*end || id == 0 || id > UINT32_MAX) goto bad;
    if (parse_addr((raft_id)id, (const char *)cmd->value.data, cmd->value.len, &a, err, sizeof err) != 0) goto bad;
    if (book_set(n, &a) != 0) {
        kv_log(KV_LOG_WARN, "no room for node %lu's address (at most %d members)", id, RAFT_MAX_NODES);
        return;
    }
    kv_log(KV_LOG_INFO, "member %lu is at %s:%d (peers %d)", id, a.host, a.client_port, a.peer_port);
    return;
bad:
    /* Every node applies the same entry alike: skipping it is consistent. */
    kv_log(KV_LOG_WARN, "ignored a malformed member address entry");
}

/* ---- configurations ---- */

void cluster_apply_config(node *n, const struct raft_entry *e, kv_buf *reply) {
    struct raft_membership c;
    if (raft_membership_decode(e->data, e->len, &c) != RAFT_OK) {
        kv_log(KV_LOG_WARN, "configuration entry %" PRIu64 " does not decode", e->index);
        return;
    }
    const struct raft_membership *old = &n->applied_conf;
    char text[160] = "";
    for (unsigned i = 0; i < c.n; i++) {
        const struct raft_member *o = raft_membership_find(old, c.m[i].id);
        if (!o)
            snprintf(text, sizeof text, "node %u added as a learner; it becomes a voter once it has caught up",
                     c.m[i].id);
        else if (!o->voter && c.m[i].voter)
            snprintf(text, sizeof text, "node %u is now a voter", c.m[i].id);
    }
    for (unsigned i = 0; i < old->n; i++) {
        if (raft_membership_find(&c, old->m[i].id)) continue;
        snprintf(text, sizeof text, "node %u removed", old->m[i].id);
        book_remove(n, old->m[i].id);
    }
    n->applied_conf = c;
    if (text[0]) {
        kv_log(KV_LOG_INFO, "configuration at index %" PRIu64 " applied: %s (%u members)", e->index, text, c.n);
        reply_simple(reply, text);
    } else {
        reply_ok(reply);
    }
}

void cluster_restore(node *n, const snap_meta *meta, const struct raft_entry *log, size_t nlog) {
    if (raft_membership_at(n->raft, n->applied_index, &n->applied_conf) != RAFT_OK)
        n->applied_conf = *raft_membership(n->raft, NULL);
    if (meta && meta->members[0]) {
        node_addr snap[RAFT_MAX_NODES];
        unsigned count;
        char err[160];
        if (node_parse_cluster(meta->members, snap, &count, err, sizeof err) == 0) {
            for (unsigned i = 0; i < count; i++)
                if (slot_of(n, snap[i].id) < 0) book_set(n, &snap[i]);
        } else {
            kv_log(KV_LOG_WARN, "the snapshot's member addresses do not parse: %s", err);
        }
    }
    /* --cluster may name members removed since: forget them (unless the
     * log still names them). */
    const struct raft_membership *now = raft_membership(n->raft, NULL);
    for (unsigned i = 0; i < n->nmembers; i++) {
        raft_id id = n->members[i].id;
        if (id && id != n->self && !raft_membership_find(now, id)) memset(&n->members[i], 0, sizeof n->members[i]);
    }
    for (size_t i = 0; i < nlog; i++) {
        if (log[i].type != RAFT_ENTRY_NORMAL) continue;
        Kv__Command *cmd = kv__command__unpack(NULL, log[i].len, log[i].data);
        if (!cmd) continue;
        if (cmd->op == KV__COMMAND__OP__MEMBER) cluster_apply_member(n, cmd);
        kv__command__free_unpacked(cmd, NULL);
    }
}

void cluster_installed(node *n, const struct raft_membership *conf, const snap_meta *meta) {
    if (conf->n > 0) n->applied_conf = *conf;
    if (!meta || !meta->members[0]) return;
    node_addr snap[RAFT_MAX_NODES];
    unsigned count;
    char err[160];
    if (node_parse_cluster(meta->members, snap, &count, err, sizeof err) != 0) return;
    for (unsigned i = 0; i < count; i++) book_set(n, &snap[i]);
}

void cluster_tick(node *n) {
    if (!node_is_leader(n)) return;
    const struct raft_membership *c = raft_membership(n->raft, NULL);
    for (unsigned i = 0; i < c->n; i++) {
        if (c->m[i].voter) continue;
        raft_id id = c->m[i].id;
        raft_index idx;
        raft_term term;
        if (raft_promote(n->raft, id, &idx, &term) == RAFT_OK) {
            kv_log(KV_LOG_INFO, "learner %u has caught up: promoting it to voter (entry %" PRIu64 ")", id, idx);
            node_kick(n);
        }
        return; /* one change at a time */
    }
}

/* ---- CLUSTER ---- */

/* The core refuses a change while another is uncommitted or before this
 * leader has committed an entry of its term: checked first, so that
 * CLUSTER ADD never leaves an address entry without its configuration. */
static int change_pending(const node *n) {
    raft_index at = 0;
    raft_membership(n->raft, &at);
    raft_index commit = raft_commit_index(n->raft);
    if (at > commit) return 1;
    const struct raft_entry *e = raft_entry_at(n->raft, commit);
    return !e || e->term != raft_current_term(n->raft);
}

static int not_leader(node *n, conn *c) {
    if (node_is_leader(n)) return 0;
    char text[160];
    node_notleader_text(n, text, sizeof text);
    reply_error(&c->out, "%s", text);
    return 1;
}

#define PENDING_TEXT "ERR a membership change is in progress (or the leader is new); try again shortly"

static void cluster_add(node *n, conn *c, kv_slice arg) {
    const char *eq = memchr(arg.p, '=', arg.len);
    char idtext[16], err[160];
    size_t idlen = eq ? (size_t)(eq - (const char *)arg.p) : 0;
    if (!eq || idlen == 0 || idlen >= sizeof idtext) {
        reply_error(&c->out, "ERR syntax: CLUSTER ADD id=HOST:CLIENTPORT:PEERPORT");
        return;
    }
    memcpy(idtext, arg.p, idlen);
    idtext[idlen] = '\0';
    char *end;
    unsigned long id = strtoul(idtext, &end, 10);
    node_addr a;
    if (*end || id == 0 || id > RAFT_MAX_NODES * 1000UL) {
        reply_error(&c->out, "ERR syntax: CLUSTER ADD id=HOST:CLIENTPORT:PEERPORT (id a positive number)");
        return;
    }
    if (parse_addr((raft_id)id, eq + 1, arg.len - idlen - 1, &a, err, sizeof err) != 0) {
        reply_error(&c->out, "ERR syntax: %s", err);
        return;
    }
    if (not_leader(n, c)) return;
    if (raft_membership_find(raft_membership(n->raft, NULL), (raft_id)id)) {
        reply_error(&c->out, "ERR node %lu is already a member", id);
        return;
    }
    if (raft_membership(n->raft, NULL)->n >= RAFT_MAX_NODES) {
        reply_error(&c->out, "ERR the cluster has %d members, the most it can have", RAFT_MAX_NODES);
        return;
    }
    if (change_pending(n)) {
        reply_error(&c->out, PENDING_TEXT);
        return;
    }
    Kv__Command cmd = KV__COMMAND__INIT;
    cmd.op = KV__COMMAND__OP__MEMBER;
    cmd.key.data = (uint8_t *)idtext;
    cmd.key.len = idlen;
    cmd.value.data = (uint8_t *)(eq + 1);
    cmd.value.len = arg.len - idlen - 1;
    uint8_t buf[256];
    size_t len = kv__command__get_packed_size(&cmd);
    if (len > sizeof buf) {
        reply_error(&c->out, "ERR address too long");
        return;
    }
    kv__command__pack(&cmd, buf);
    raft_index idx;
    raft_term term;
    /* Address first, then the learner, both appended now: every node knows
     * where the learner is before it could lead. */
    int r = raft_propose(n->raft, buf, len, &idx, &term);
    if (r == RAFT_OK) r = raft_propose_add_learner(n->raft, (raft_id)id, &idx, &term);
    if (r != RAFT_OK) {
        reply_error(&c->out, "ERR the Raft core refused the change (error %d)", r);
        node_kick(n);
        return;
    }
    kv_log(KV_LOG_INFO, "CLUSTER ADD %lu at %s:%d:%d: proposed as a learner (entry %" PRIu64 ")", id, a.host,
           a.client_port, a.peer_port, idx);
    node_wait_entry(n, c, idx, term);
}

static void cluster_remove(node *n, conn *c, kv_slice arg) {
    char idtext[16];
    if (arg.len == 0 || arg.len >= sizeof idtext) {
        reply_error(&c->out, "ERR syntax: CLUSTER REMOVE id");
        return;
    }
    memcpy(idtext, arg.p, arg.len);
    idtext[arg.len] = '\0';
    char *end;
    unsigned long id = strtoul(idtext, &end, 10);
    if (*end || id == 0 || id > UINT32_MAX) {
        reply_error(&c->out, "ERR syntax: CLUSTER REMOVE id");
        return;
    }
    if (not_leader(n, c)) return;
    if (!raft_membership_find(raft_membership(n->raft, NULL), (raft_id)id)) {
        reply_error(&c->out, "ERR node %lu is not a member", id);
        return;
    }
    if (change_pending(n)) {
        reply_error(&c->out, PENDING_TEXT);
        return;
    }
    raft_index idx;
    raft_term term;
    int r = raft_propose_remove(n->raft, (raft_id)id, &idx, &term);
    if (r == RAFT_ERR_CHANGE_PENDING) {
        reply_error(&c->out, PENDING_TEXT);
        return;
    }
    if (r != RAFT_OK) {
        reply_error(&c->out, "ERR cannot remove node %lu (the last voter?)", id);
        return;
    }
    kv_log(KV_LOG_INFO, "CLUSTER REMOVE %lu: proposed (entry %" PRIu64 ")%s", id, idx,
           (raft_id)id == n->self ? "; this leader hands over once it commits" : "");
    node_wait_entry(n, c, idx, term);
}

/* One line per member of the configuration in use: id, address, voter or
 * learner, "leader" for the leader; on the leader, each one's match index. */
static void cluster_nodes(node *n, conn *c) {
    const struct raft_membership *cf = raft_membership(n->raft, NULL);
    kv_buf text;
    kv_buf_init(&text);
    int bad = 0;
    for (unsigned i = 0; i < cf->n; i++) {
        raft_id id = cf->m[i].id;
        const node_addr *a = node_member(n, id);
        char addr[100] = "?", match[40] = "";
        if (a) snprintf(addr, sizeof addr, "%s:%d:%d", a->host, a->client_port, a->peer_port);
        raft_index m;
        unsigned idle;
        if (node_is_leader(n)) {
            if (id == n->self)
                snprintf(match, sizeof match, " match=%" PRIu64, raft_last_index(n->raft));
            else if (raft_peer_progress(n->raft, id, &m, &idle))
                snprintf(match, sizeof match, " match=%" PRIu64, m);
        }
        char line[220];
        int w = snprintf(line, sizeof line, "%u %s %s%s%s%s\n", id, addr, cf->m[i].voter ? "voter" : "learner",
                         raft_leader(n->raft) == id ? " leader" : "", id == n->self ? " myself" : "", match);
        bad |= kv_buf_append(&text, line, (size_t)w);
    }
    if (bad || reply_bulk(&c->out, kv_buf_rptr(&text), kv_buf_readable(&text)) != 0)
        reply_error(&c->out, "OOM command not allowed: out of memory");
    kv_buf_free(&text);
}

void cluster_command(node *n, conn *c, const kv_slice *argv, size_t argc) {
    if (argc == 3 && kv_slice_eq_nocase(argv[1], "add"))
        cluster_add(n, c, argv[2]);
    else if (argc == 3 && kv_slice_eq_nocase(argv[1], "remove"))
        cluster_remove(n, c, argv[2]);
    else if (argc == 2 && kv_slice_eq_nocase(argv[1], "nodes"))
        cluster_nodes(n, c);
    else
        reply_error(&c->out, "ERR syntax: CLUSTER ADD id=HOST:CLIENTPORT:PEERPORT | CLUSTER REMOVE id | CLUSTER NODES");
}
