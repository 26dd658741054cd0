/* peers.h - Raft's transport over the peer port (peer_link.h).
 *
 * Every node dials every other node's peer port and sends RaftHello{id};
 * it sends its messages to node X only on its own link to X. What arrives
 * on an accepted link is therefore always from the node that said Hello on
 * it. A link that fails is redialled after a short delay; a message for a
 * node without a live link is dropped (Raft retransmits what matters).
 * With --cluster-secret-file both ends of every link prove the secret
 * before any Raft message crosses (peer_auth_link.h). */
#ifndef STAGE_PEERS_H
#define STAGE_PEERS_H

#include "node.h"
#include "peer_auth.h"
#include "peer_link.h"

struct peer_conn {
    peer_link link; /* first: a peer_link* is a peer_conn* */
    node *n;
    int slot;      /* member slot: the dialled node (outgoing), or the Hello's sender (incoming); -1 unknown */
    int outgoing;
    int up;        /* Raft messages may flow: connected and, with a secret, both ends proved it */
    int hello_seen; /* incoming: RaftHello received (slot is known) */
    int challenged; /* incoming: we answered their challenge and sent ours */
    int proved;     /* outgoing: the acceptor answered our challenge */
    unsigned char nonce[KV_AUTH_NONCE_LEN]; /* our challenge on this link */
    peer_conn *next; /* incoming list */
};

/* Listens on our member's peer port (none when it is 0). Returns 0 or -1. */
int peers_start(node *n);
/* Dials the nodes we have no link to (each tick). */
void peers_dial(node *n);
/* Encodes and queues m on the link to m->to; drops it if there is none. */
void peers_send(node *n, const struct raft_msg *m);
void peers_stop(node *n);

/* The wire mapping (raft_codec.c). Encode: fills pm (whose parts are
 * allocated into *scratch; free with raft_codec_free). Decode: m's entries
 * point into pm (and a malloc'd array: free m->entries). Returns 0 or -1. */
int raft_codec_encode(const struct raft_msg *m, Kv__RaftMessage *pm, void **scratch);
void raft_codec_free(void *scratch);
int raft_codec_decode(const Kv__RaftMessage *pm, struct raft_msg *m);

#endif
