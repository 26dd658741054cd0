/* peer_auth_link.h - the cluster-secret handshake on a Raft peer link
 * (--cluster-secret-file), both ways, before any Raft message crosses.
 *
 * Stage 4 authenticated a follower to its leader and back. In stage 5 every
 * node dials every other and sends on its own link, so the dialler D and
 * the acceptor A prove the secret to each other (common/peer_auth.h):
 *
 *   D -> A  RaftHello{id, challenge=true}, Challenge{nD}
 *   A -> D  ChallengeResponse{mac(nD, "acceptor", A's id)}, Challenge{nA}
 *   D -> A  ChallengeResponse{mac(nA, "dialler", D's id)}; then Raft messages
 *
 * D sends no Raft message (which carries log entries: the data) before A
 * proved the secret; A accepts none before D did. Binding role and id into
 * each response means one cannot be reflected back at its sender or passed
 * off as another node's. A node with a secret and one without refuse each
 * other with an Error naming the flag. */
#ifndef STAGE_PEER_AUTH_LINK_H
#define STAGE_PEER_AUTH_LINK_H

#include "peers.h"

/* Dialler: after sending RaftHello, send our challenge (if we hold a secret).
 * Returns 0, or -1 after failing the link. */
int peer_auth_dialled(peer_conn *p);
/* Acceptor: the RaftHello's challenge flag against our own secret. Returns
 * 0, or -1 after failing the link. */
int peer_auth_hello(peer_conn *p, int hello_challenge);
/* A handshake message on a link not yet up. Returns 1 when the link has
 * just become authenticated, 0 when more is awaited, -1 after failing it. */
int peer_auth_step(peer_conn *p, const Kv__PeerMessage *m);

#endif
