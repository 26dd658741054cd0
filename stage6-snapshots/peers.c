/* peers.c - dialling, accepting, Hello, and Raft messages on the peer
 * port (see peers.h). */
#include "peers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "peer_auth_link.h"
#include "server.h"

/* Redial a node this long after its link failed, doubling while dials
 * fail (a node that is down costs a log line a second, not five). */
#define REDIAL_MS 200
#define REDIAL_MAX_MS 1000
/* Drop messages for a node whose link has this much unsent output: it is
 * not reading, and Raft will resend what it still needs. */
#define MAX_QUEUED_BYTES (64u * 1024 * 1024)

static int slot_of(const node *n, raft_id id) {
    for (unsigned i = 0; i < n->nmembers; i++)
        if (id != 0 && n->members[i].id == id) return (int)i;
    return -1;
}

static void on_closed(peer_link *l) {
    peer_conn *p = (peer_conn *)l;
    node *n = p->n;
    if (p->outgoing) {
        if (p->slot >= 0 && n->out[p->slot] == p) {
            n->out[p->slot] = NULL;
            uint64_t *b = &n->dial_backoff_ms[p->slot];
            *b = p->up ? REDIAL_MS : (*b ? *b * 2 : REDIAL_MS);
            if (*b > REDIAL_MAX_MS) *b = REDIAL_MAX_MS;
            n->next_dial_ms[p->slot] = uv_now(n->srv->loop) + *b;
        }
    } else {
        for (peer_conn **pp = &n->incoming; *pp; pp = &(*pp)->next) {
            if (*pp == p) {
                *pp = p->next;
                break;
            }
        }
    }
    free(p); /* peer_link freed its buffers before calling us */
}

static int on_raft_message(peer_conn *p, const Kv__RaftMessage *pm) {
    node *n = p->n;
    struct raft_msg m;
    if (raft_codec_decode(pm, &m) != 0 || m.from != n->members[p->slot].id) {
        free(m.entries);
        n->stats.bad_messages++;
        peer_link_fail(&p->link, "malformed Raft message");
        return -1;
    }
    n->stats.msgs_received++;
    n->last_heard_ms[p->slot] = uv_now(n->srv->loop);
    if (raft_step(n->raft, &m) != RAFT_OK) n->stats.bad_messages++;
    free(m.entries);
    node_process(n);
    return 0;
}

static int on_message(peer_link *l, const Kv__PeerMessage *m) {
    peer_conn *p = (peer_conn *)l;
    node *n = p->n;
    if (m->msg_case == KV__PEER_MESSAGE__MSG_ERROR) {
        char why[256], text[200];
        snprintf(why, sizeof why, "the other end reported: %s", peer_text(m->error->reason, text, sizeof text));
        peer_link_close(l, why);
        return -1;
    }
    if (p->outgoing) {
        if (!p->up && n->secret.len > 0) {
            int r = peer_auth_step(p, m);
            if (r == 1) {
                p->up = 1;
                peer_link_trust(l);
                kv_log(KV_LOG_INFO, "node %u at %s proved the cluster secret; sending to it", n->members[p->slot].id,
                       l->addr);
            }
            return r < 0 ? -1 : 0;
        }
        peer_link_fail(l, "unexpected message on an outgoing link");
        return -1;
    }
    if (!p->up && p->hello_seen) {
        int r = peer_auth_step(p, m);
        if (r == 1) {
            p->up = 1;
            peer_link_trust(l);
            kv_log(KV_LOG_INFO, "peer %s is node %u (proved the cluster secret)", l->addr, n->members[p->slot].id);
        }
        return r < 0 ? -1 : 0;
    }
    if (!p->up) {
        if (m->msg_case != KV__PEER_MESSAGE__MSG_RAFT_HELLO) {
            peer_link_fail(l, "expected RaftHello (is this a stage 5 node?)");
            return -1;
        }
        int slot = slot_of(n, m->raft_hello->node_id);
        /* The cluster's size changes with CLUSTER ADD/REMOVE: only the id
         * must be one this node knows the address of. */
        if (slot < 0 || m->raft_hello->node_id == n->self) {
            char why[160];
            snprintf(why, sizeof why, "node id %u is not a member this node knows of", m->raft_hello->node_id);
            peer_link_fail(l, why);
            return -1;
        }
        p->slot = slot;
        p->hello_seen = 1;
        if (peer_auth_hello(p, m->raft_hello->challenge) != 0) return -1;
        if (n->secret.len > 0) return 0; /* its Challenge comes next */
        p->up = 1;
        peer_link_trust(l);
        kv_log(KV_LOG_INFO, "peer %s is node %u", l->addr, m->raft_hello->node_id);
        return 0;
    }
    if (m->msg_case == KV__PEER_MESSAGE__MSG_SNAPSHOT_CHUNK) {
        n->last_heard_ms[p->slot] = uv_now(n->srv->loop);
        snapshot_recv_on_chunk(n, p->slot, m->snapshot_chunk);
        return 0;
    }
    if (m->msg_case == KV__PEER_MESSAGE__MSG_SNAPSHOT_ACK) {
        n->last_heard_ms[p->slot] = uv_now(n->srv->loop);
        snapshot_send_on_ack(n, p->slot, m->snapshot_ack);
        return 0;
    }
    if (m->msg_case != KV__PEER_MESSAGE__MSG_RAFT) {
        peer_link_fail(l, "unexpected message type");
        return -1;
    }
    return on_raft_message(p, m->raft);
}

static void on_connect(peer_link *l, int status) {
    peer_conn *p = (peer_conn *)l;
    node *n = p->n;
    if (status != 0) {
        kv_log(KV_LOG_DEBUG, "cannot reach node %u at %s: %s", n->members[p->slot].id, l->addr, uv_strerror(status));
        peer_link_close(l, "connect failed");
        return;
    }
    Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
    Kv__RaftHello h = KV__RAFT_HELLO__INIT;
    h.node_id = n->self;
    h.cluster_size = n->nmembers;
    h.challenge = n->secret.len > 0;
    m.msg_case = KV__PEER_MESSAGE__MSG_RAFT_HELLO;
    m.raft_hello = &h;
    if (peer_link_send(l, &m) != 0) return;
    if (n->secret.len > 0) {
        if (peer_auth_dialled(p) == 0)
            kv_log(KV_LOG_INFO, "connected to node %u at %s; proving the cluster secret", n->members[p->slot].id,
                   l->addr);
        return;
    }
    p->up = 1;
    kv_log(KV_LOG_INFO, "connected to node %u at %s", n->members[p->slot].id, l->addr);
}

static const peer_link_ops ops = {.on_message = on_message, .on_connect = on_connect, .on_closed = on_closed};

static void on_peer_connection(uv_stream_t *listener, int status) {
    node *n = listener->data;
    if (status < 0) return;
    peer_conn *p = calloc(1, sizeof *p);
    if (!p) return;
    peer_link_init(&p->link, n->srv->loop, &ops, n);
    p->n = n;
    p->slot = -1;
    p->next = n->incoming;
    n->incoming = p;
    if (peer_link_accept(&p->link, listener) != 0) peer_link_close(&p->link, "accept failed");
}

int peers_start(node *n) {
    const node_addr *me = node_member(n, n->self);
    if (me->peer_port == 0) return 0;
    struct sockaddr_storage addr;
    int r = uv_ip4_addr(me->host, me->peer_port, (struct sockaddr_in *)&addr);
    if (r != 0) r = uv_ip6_addr(me->host, me->peer_port, (struct sockaddr_in6 *)&addr);
    if (r == 0) r = uv_tcp_init(n->srv->loop, &n->peer_listener);
    if (r != 0) {
        kv_log(KV_LOG_ERROR, "peer address %s is not an IPv4 or IPv6 address", me->host);
        return -1;
    }
    n->peer_listening = 1;
    n->peer_listener.data = n;
    r = uv_tcp_bind(&n->peer_listener, (const struct sockaddr *)&addr, 0);
    if (r == 0) r = uv_listen((uv_stream_t *)&n->peer_listener, 64, on_peer_connection);
    if (r != 0) {
        kv_log(KV_LOG_ERROR, "cannot listen for peers on %s:%d: %s", me->host, me->peer_port, uv_strerror(r));
        return -1;
    }
    kv_log(KV_LOG_INFO, "node %u: peers connect to %s:%d", n->self, me->host, me->peer_port);
    return 0;
}

void peers_dial(node *n) {
    uint64_t now = uv_now(n->srv->loop);
    for (unsigned i = 0; i < n->nmembers; i++) {
        const node_addr *a = &n->members[i];
        if (a->id == 0 || a->id == n->self || n->out[i] || now < n->next_dial_ms[i] || a->peer_port == 0) continue;
        struct sockaddr_storage addr;
        if (uv_ip4_addr(a->host, a->peer_port, (struct sockaddr_in *)&addr) != 0 &&
            uv_ip6_addr(a->host, a->peer_port, (struct sockaddr_in6 *)&addr) != 0)
            continue; /* checked at start-up */
        peer_conn *p = calloc(1, sizeof *p);
        if (!p) return;
        peer_link_init(&p->link, n->srv->loop, &ops, n);
        p->n = n;
        p->slot = (int)i;
        p->outgoing = 1;
        n->out[i] = p;
        char name[96];
        snprintf(name, sizeof name, "%s:%d", a->host, a->peer_port);
        if (n->secret.len == 0) peer_link_trust(&p->link); /* with a secret: once it proved it */
        if (peer_link_connect(&p->link, (const struct sockaddr *)&addr, name) != 0)
            peer_link_close(&p->link, "connect failed");
    }
}

void peers_send(node *n, const struct raft_msg *m) {
    int slot = slot_of(n, m->to);
    peer_conn *p = slot >= 0 ? n->out[slot] : NULL;
    if (!p || !p->up || p->link.closing || peer_link_pending(&p->link) > MAX_QUEUED_BYTES) {
        n->stats.msgs_dropped++;
        return;
    }
    Kv__RaftMessage pm;
    void *scratch;
    if (raft_codec_encode(m, &pm, &scratch) != 0) {
        n->stats.msgs_dropped++;
        return;
    }
    Kv__PeerMessage env = KV__PEER_MESSAGE__INIT;
    env.msg_case = KV__PEER_MESSAGE__MSG_RAFT;
    env.raft = &pm;
    if (peer_link_send(&p->link, &env) == 0)
        n->stats.msgs_sent++;
    else
        n->stats.msgs_dropped++;
    raft_codec_free(scratch);
}

void peers_stop(node *n) {
    if (n->peer_listening && !uv_is_closing((uv_handle_t *)&n->peer_listener))
        uv_close((uv_handle_t *)&n->peer_listener, NULL);
    for (unsigned i = 0; i < n->nmembers; i++)
        if (n->out[i]) peer_link_close(&n->out[i]->link, "shutting down");
    for (peer_conn *p = n->incoming; p; p = p->next) peer_link_close(&p->link, "shutting down");
}
