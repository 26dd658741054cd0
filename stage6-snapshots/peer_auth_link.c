/* peer_auth_link.c - the cluster-secret handshake on a Raft peer link
 * (see peer_auth_link.h). */
#include "peer_auth_link.h"

#include <stdio.h>

#include "log.h"
#include "peer_auth.h"
#include "server.h"

#define ROLE_DIALLER "raft-dialler"
#define ROLE_ACCEPTOR "raft-acceptor"

static void node_name(raft_id id, char *buf, size_t cap) { snprintf(buf, cap, "node %u", id); }

static int send_challenge(peer_conn *p) {
    if (kv_auth_nonce(p->nonce) != 0) {
        peer_link_fail(&p->link, "no randomness for a challenge");
        return -1;
    }
    Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
    Kv__Challenge c = KV__CHALLENGE__INIT;
    c.nonce.data = p->nonce;
    c.nonce.len = KV_AUTH_NONCE_LEN;
    m.msg_case = KV__PEER_MESSAGE__MSG_CHALLENGE;
    m.challenge = &c;
    return peer_link_send(&p->link, &m);
}

static int answer(peer_conn *p, const char *role, const ProtobufCBinaryData *nonce) {
    char me[32];
    node_name(p->n->self, me, sizeof me);
    unsigned char mac[KV_AUTH_MAC_LEN];
    if (kv_auth_respond(&p->n->secret, nonce->data, nonce->len, role, me, mac) != 0) {
        peer_link_fail(&p->link, "malformed challenge");
        return -1;
    }
    Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
    Kv__ChallengeResponse r = KV__CHALLENGE_RESPONSE__INIT;
    r.mac.data = mac;
    r.mac.len = sizeof mac;
    m.msg_case = KV__PEER_MESSAGE__MSG_CHALLENGE_RESPONSE;
    m.challenge_response = &r;
    return peer_link_send(&p->link, &m);
}

/* Did the other end, claiming to be node `id` in `role`, answer our nonce? */
static int proved(peer_conn *p, const char *role, raft_id id, const Kv__ChallengeResponse *r) {
    char them[32];
    node_name(id, them, sizeof them);
    if (kv_auth_verify(&p->n->secret, p->nonce, role, them, r->mac.data, r->mac.len)) return 1;
    char why[128];
    snprintf(why, sizeof why, "%s did not prove the cluster secret (--cluster-secret-file differs)", them);
    peer_link_fail(&p->link, why);
    return 0;
}

int peer_auth_dialled(peer_conn *p) {
    if (p->n->secret.len == 0) return 0;
    return send_challenge(p) == 0 ? 0 : -1;
}

int peer_auth_hello(peer_conn *p, int hello_challenge) {
    int ours = p->n->secret.len > 0;
    if (ours == hello_challenge) return 0;
    peer_link_fail(&p->link, ours ? "this node requires a cluster secret and the other node has none "
                                    "(--cluster-secret-file)"
                                  : "the other node has a cluster secret and this one has none "
                                    "(--cluster-secret-file)");
    return -1;
}

int peer_auth_step(peer_conn *p, const Kv__PeerMessage *m) {
    raft_id other = p->n->members[p->slot].id;
    if (p->outgoing) {
        /* Dialler: first A's answer to our nonce, then A's own challenge. */
        if (m->msg_case == KV__PEER_MESSAGE__MSG_CHALLENGE_RESPONSE && !p->proved) {
            if (!proved(p, ROLE_ACCEPTOR, other, m->challenge_response)) return -1;
            p->proved = 1;
            return 0;
        }
        if (m->msg_case == KV__PEER_MESSAGE__MSG_CHALLENGE && p->proved)
            return answer(p, ROLE_DIALLER, &m->challenge->nonce) == 0 ? 1 : -1;
    } else if (p->hello_seen) {
        /* Acceptor: D's challenge (answer it and send ours), then D's answer. */
        if (m->msg_case == KV__PEER_MESSAGE__MSG_CHALLENGE && !p->challenged) {
            if (answer(p, ROLE_ACCEPTOR, &m->challenge->nonce) != 0 || send_challenge(p) != 0) return -1;
            p->challenged = 1;
            return 0;
        }
        if (m->msg_case == KV__PEER_MESSAGE__MSG_CHALLENGE_RESPONSE && p->challenged)
            return proved(p, ROLE_DIALLER, other, m->challenge_response) ? 1 : -1;
    }
    peer_link_fail(&p->link, "unexpected message during the cluster-secret handshake");
    return -1;
}
