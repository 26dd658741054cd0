/* peer_auth.h - proving a peer holds the cluster secret, without sending it.
 *
 * Each side of a peer link sends a fresh random nonce (Challenge); the other
 * answers with HMAC-SHA256(secret, context || nonce || role || claimed id)
 * (ChallengeResponse). Binding the responder's role and the address it
 * claims in its Hello means a response cannot be reflected back at its
 * sender or replayed for another node, and a fresh nonce per link means an
 * old response proves nothing. The comparison is constant-time.
 *
 * What this does not do: protect the link after the handshake. Without TLS
 * someone who can rewrite traffic between two nodes can take over an
 * authenticated link; the secret keeps out nodes that merely reach the port.
 *
 * Secret files are read like ssh reads a private key: refused if group or
 * others have any permission on them, refused if empty (one trailing
 * newline, "\n" or "\r\n", is not part of the secret). Crypto: libsodium. */
#ifndef KV_PEER_AUTH_H
#define KV_PEER_AUTH_H

#include <stddef.h>

#define KV_AUTH_NONCE_LEN 32
#define KV_AUTH_MAC_LEN 32
/* A captured (nonce, response) pair lets an eavesdropper test guesses of the
 * secret offline, so a cluster secret must not be short. */
#define KV_CLUSTER_SECRET_MIN_LEN 16
#define KV_SECRET_MAX_LEN 4096

typedef struct kv_secret {
    unsigned char *bytes; /* owned; wiped on free */
    size_t len;
} kv_secret;

/* Loads a secret from path. `what` names the file in messages ("cluster
 * secret file"); min_len is the shortest secret accepted (at least 1).
 * Returns 0, or -1 with the reason in err (and *out left empty). */
int kv_secret_load(const char *path, const char *what, size_t min_len, kv_secret *out, char *err, size_t errlen);
/* Wipes and frees a secret kv_secret_load filled; harmless on an empty one. */
void kv_secret_free(kv_secret *s);

/* Fills nonce with fresh random bytes. Returns 0, or -1 if the library
 * cannot start (no entropy source). */
int kv_auth_nonce(unsigned char nonce[KV_AUTH_NONCE_LEN]);

/* The response a node of `role` ("leader", "follower") that calls itself
 * `claimed_id` (its client host:port) gives to the nonce it was sent.
 * Returns 0, or -1 if nonce_len is not KV_AUTH_NONCE_LEN (nothing is
 * answered to a nonce of the wrong size). */
int kv_auth_respond(const kv_secret *s, const unsigned char *nonce, size_t nonce_len, const char *role,
                    const char *claimed_id, unsigned char mac[KV_AUTH_MAC_LEN]);

/* 1 if mac is the response to our nonce from a holder of the secret with
 * that role and id; 0 otherwise (wrong secret, other nonce, other role or
 * id, wrong length). Constant time in the mac's contents. */
int kv_auth_verify(const kv_secret *s, const unsigned char nonce[KV_AUTH_NONCE_LEN], const char *role,
                   const char *claimed_id, const unsigned char *mac, size_t mac_len);

#endif
