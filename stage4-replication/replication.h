/* replication.h - leader and follower: the state a node keeps about its role,
 * its history, its followers (as a leader) and its link to a leader (as a
 * follower), and what the rest of the server asks of replication.
 *
 * Every node listens on the peer port. A leader serves followers there
 * (leader.c); a follower keeps one link to its leader (follower.c), writes
 * the leader's records into its own log at the leader's indexes, applies
 * them, and acknowledges what is safe on its disk. A follower that cannot
 * continue the leader's log gets a full copy (full_copy.c). */
#ifndef STAGE_REPLICATION_H
#define STAGE_REPLICATION_H

#include <stdint.h>
#include <uv.h>

#include "full_copy.h"
#include "history.h"
#include "peer_auth.h"
#include "peer_link.h"

typedef struct server server;
typedef struct server_config server_config;
typedef struct follower follower; /* leader.c: one follower this leader serves */

typedef enum repl_role { ROLE_LEADER, ROLE_FOLLOWER } repl_role;

/* The follower side's link to its leader (follower.c). */
typedef enum leader_link_state {
    LINK_CONNECTING, /* TCP connect in progress */
    LINK_HELLO,      /* sent Hello, waiting for the leader's */
    LINK_AUTH,       /* proving the secret, and asking the leader to */
    LINK_SYNC,       /* sent SyncRequest */
    LINK_COPYING,    /* receiving a full copy */
    LINK_STREAMING,  /* receiving records */
} leader_link_state;

typedef struct leader_link {
    peer_link link;
    struct repl *repl;
    leader_link_state state;
    unsigned char nonce[KV_AUTH_NONCE_LEN]; /* ours, for the leader to answer */
    char leader_id[64];                     /* the leader's claimed client address */
    uint64_t acked;                         /* last Ack sent */
    uint64_t ack_asked;                     /* the leader asked for an ack up to here (Records.ack_now) */
} leader_link;

#define LAG_SAMPLES 4096

typedef struct repl_stats {
    uint64_t full_copies_sent, continuations_sent, full_copies_received;
    uint64_t refused_peers; /* failed authentication or bad frames */
} repl_stats;

typedef struct repl {
    server *srv;
    repl_role role;
    history hist;
    kv_secret secret; /* --cluster-secret-file; len 0: none */
    char self_host[64];
    int self_port;
    uv_tcp_t peer_listener;
    int peer_listening; /* 0 with --peer-port 0 */
    uv_timer_t tick; /* every 100 ms: acks, WAIT deadlines, reconnects, dead links */
    repl_stats stats;

    /* as a leader (leader.c) */
    follower *followers;
    int nfollowers;
    /* When each record was written, sampled once per write batch, for lag in ms. */
    struct { uint64_t index, ms; } written_at[LAG_SAMPLES];
    size_t written_head, written_count;
    /* Until then (loop time), every Records asks for an ack: a WAIT ran
     * recently, and the next one should find the ack on its way. */
    uint64_t eager_acks_until_ms;

    /* as a follower (follower.c) */
    char leader_host[64];
    int leader_peer_port;
    leader_link *link;            /* NULL between attempts */
    uint64_t next_attempt_ms;     /* loop time of the next connect attempt */
    uint64_t link_down_since_ms;
    unsigned connect_failures;    /* in a row; only the first is logged */
    char leader_client_addr[64];  /* the leader's client address, for -READONLY */
    full_copy copy;               /* a full copy being received */
    int install_pending;          /* copy complete; install between syncs */
} repl;

/* Checks --replicaof and --cluster-secret-file before anything is read from
 * disk, so that a typo does not cost a replay. Logs and returns -1 if bad. */
int repl_check_config(const server_config *cfg);
/* Reads the history, loads the secret, listens on the peer port and
 * (with --replicaof) starts following. Logs and returns -1 on failure. */
int repl_init(server *srv, repl *r);
/* Shutdown: closes the listener and every peer link. */
void repl_stop(repl *r);
/* Releases what repl_init allocated (after the loop has closed the handles). */
void repl_free(repl *r);

/* REPLICAOF NO ONE: become a leader on a new history. */
int repl_promote(repl *r);
/* REPLICAOF host port: follow that leader (dropping our followers). */
int repl_follow(repl *r, const char *host, int peer_port);

/* The durability module's reports, forwarded by server.c: records up to
 * upto are written (a leader ships them now) / may be acknowledged under the
 * fsync policy (a follower acks them now). */
void repl_on_written(repl *r, uint64_t upto);
void repl_on_ackable(repl *r, uint64_t upto);

/* Whether a write may run now. 0, or -1 with the error reply's text in err. */
int repl_write_allowed(const repl *r, char *err, size_t errlen);

/* How many followers have acknowledged index. */
int repl_followers_acked(const repl *r, uint64_t index);

/* Runs a full copy's install if one is complete (the between-syncs hook). */
void repl_between_syncs(repl *r);

const char *repl_role_name(repl_role role);

/* The peer protocol's version, sent in every Hello. */
#define PEER_PROTOCOL_VERSION 1
/* Highest index in this node's log (appended, whether or not written yet). */
uint64_t repl_last_index(const repl *r);
/* The handshake messages both ends send (leader.c, follower.c). */
void repl_send_hello(const repl *r, peer_link *l);
void repl_send_challenge(peer_link *l, const unsigned char nonce[KV_AUTH_NONCE_LEN]);
/* Answers nonce as a node of `role` that holds r's secret. Returns 0, or -1
 * when the nonce is malformed (nothing sent). */
int repl_answer_challenge(const repl *r, peer_link *l, const char *role, const ProtobufCBinaryData *nonce);

#endif
