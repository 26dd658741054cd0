/* replication.c - roles, history, and the glue between replication and the
 * rest of the server (see replication.h). */
#include "replication.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "follower.h"
#include "leader.h"
#include "log.h"
#include "server.h"

#define TICK_MS 100

const char *repl_role_name(repl_role role) { return role == ROLE_LEADER ? "leader" : "follower"; }

uint64_t repl_last_index(const repl *r) { return r->srv->wal.next_index - 1; }

void repl_send_hello(const repl *r, peer_link *l) {
    Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
    Kv__Hello h = KV__HELLO__INIT;
    h.client_host = (char *)r->self_host;
    h.client_port = (uint32_t)r->self_port;
    h.role = r->role == ROLE_LEADER ? KV__PEER_ROLE__LEADER : KV__PEER_ROLE__FOLLOWER;
    h.version = PEER_PROTOCOL_VERSION;
    h.challenge = r->secret.len > 0;
    m.msg_case = KV__PEER_MESSAGE__MSG_HELLO;
    m.hello = &h;
    peer_link_send(l, &m);
}

void repl_send_challenge(peer_link *l, const unsigned char nonce[KV_AUTH_NONCE_LEN]) {
    Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
    Kv__Challenge c = KV__CHALLENGE__INIT;
    c.nonce.data = (uint8_t *)nonce;
    c.nonce.len = KV_AUTH_NONCE_LEN;
    m.msg_case = KV__PEER_MESSAGE__MSG_CHALLENGE;
    m.challenge = &c;
    peer_link_send(l, &m);
}

int repl_answer_challenge(const repl *r, peer_link *l, const char *role, const ProtobufCBinaryData *nonce) {
    unsigned char mac[KV_AUTH_MAC_LEN];
    char me[80];
    snprintf(me, sizeof me, "%s:%d", r->self_host, r->self_port); /* the id our Hello claimed */
    if (kv_auth_respond(&r->secret, nonce->data, nonce->len, role, me, mac) != 0) return -1;
    Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
    Kv__ChallengeResponse resp = KV__CHALLENGE_RESPONSE__INIT;
    resp.mac.data = mac;
    resp.mac.len = sizeof mac;
    m.msg_case = KV__PEER_MESSAGE__MSG_CHALLENGE_RESPONSE;
    m.challenge_response = &resp;
    peer_link_send(l, &m);
    return 0;
}

/* A leader's log starts a new history: see history.h for why. */
static int begin_history(repl *r) {
    if (history_begin_new(&r->hist, repl_last_index(r)) != 0 || history_save(r->srv->wal.dir, &r->hist) != 0) {
        kv_log(KV_LOG_ERROR, "replication: cannot start a new history");
        return -1;
    }
    kv_log(KV_LOG_INFO, "replication: history %s begins after index %" PRIu64 " (previous: %s)", r->hist.id,
           repl_last_index(r), r->hist.prev_id[0] ? r->hist.prev_id : "none");
    return 0;
}

static void on_tick(uv_timer_t *t) {
    repl *r = t->data;
    uint64_t now = uv_now(r->srv->loop);
    if (r->role == ROLE_FOLLOWER) {
        follower_connect(r, now);
        follower_ack(r, 1);
    }
    leader_check_timeouts(r, now);
}

static int parse_replicaof(repl *r, const char *spec) {
    const char *colon = strrchr(spec, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon == spec || *end != '\0' || port < 1 || port > 65535 || (size_t)(colon - spec) >= sizeof r->leader_host) {
        kv_log(KV_LOG_ERROR, "--replicaof %s: expected HOST:PEERPORT, e.g. 127.0.0.1:17004", spec);
        return -1;
    }
    memcpy(r->leader_host, spec, (size_t)(colon - spec));
    r->leader_host[colon - spec] = '\0';
    r->leader_peer_port = (int)port;
    return 0;
}

int repl_check_config(const server_config *cfg) {
    repl probe; /* only its leader_host/leader_peer_port are filled */
    if (cfg->replicaof && parse_replicaof(&probe, cfg->replicaof) != 0) return -1;
    if (cfg->cluster_secret_file) {
        kv_secret s = {0};
        char err[256];
        if (kv_secret_load(cfg->cluster_secret_file, "cluster secret file", KV_CLUSTER_SECRET_MIN_LEN, &s, err,
                           sizeof err) != 0) {
            kv_log(KV_LOG_ERROR, "%s", err);
            return -1;
        }
        kv_secret_free(&s);
    }
    return 0;
}

/* A follower does not spin (busy_poll.h): its clients are readers, and on
 * machines where nodes share cores (this course's) a spinning follower
 * takes the core its leader's stream and the other nodes need. Measured:
 * the lag from a write to the follower's apply halved without it (4.15.3).
 * A leader spins as --busy-poll-us says. */
static void spin_for_role(repl *r) {
    kv_busy_poll_set_budget(&r->srv->busy_poll, r->role == ROLE_FOLLOWER ? 0 : (unsigned)r->srv->cfg.busy_poll_us);
}

int repl_init(server *srv, repl *r) {
    memset(r, 0, sizeof *r);
    r->srv = srv;
    snprintf(r->self_host, sizeof r->self_host, "%s", srv->cfg.bind);
    r->self_port = (int)srv->cfg.port;
    if (srv->cfg.cluster_secret_file) {
        char err[256];
        if (kv_secret_load(srv->cfg.cluster_secret_file, "cluster secret file", KV_CLUSTER_SECRET_MIN_LEN, &r->secret,
                           err, sizeof err) != 0) {
            kv_log(KV_LOG_ERROR, "%s", err);
            return -1;
        }
    }
    if (history_load(srv->wal.dir, &r->hist) != 0) return -1;
    /* Every role syncs on the loop (durability.h): a follower's one writer
     * is the leader's stream; a leader's clients wait for the same sync
     * whether a worker runs it or the loop does, and the hand-off cost more
     * than the reads it let through (4.15.3). */
    durability_sync_on_loop(&srv->durability, 1);
    if (srv->cfg.replicaof) {
        if (parse_replicaof(r, srv->cfg.replicaof) != 0) return -1;
        r->role = ROLE_FOLLOWER;
        r->link_down_since_ms = uv_now(srv->loop);
    } else {
        r->role = ROLE_LEADER;
        if (begin_history(r) != 0) return -1;
    }
    spin_for_role(r);
    if (leader_listen(r) != 0) return -1;
    uv_timer_init(srv->loop, &r->tick);
    r->tick.data = r;
    uv_timer_start(&r->tick, on_tick, TICK_MS, TICK_MS);
    uv_unref((uv_handle_t *)&r->tick);
    if (r->role == ROLE_FOLLOWER) follower_connect(r, 0);
    kv_log(KV_LOG_INFO, "replication: %s, peer port %s%s:%lld%s%s", repl_role_name(r->role),
           r->peer_listening ? "" : "off (--peer-port 0), not ", srv->cfg.bind, srv->cfg.peer_port, r->role == ROLE_FOLLOWER ? ", following " : "",
           r->role == ROLE_FOLLOWER ? srv->cfg.replicaof : "");
    return 0;
}

void repl_stop(repl *r) {
    uv_timer_stop(&r->tick);
    follower_disconnect(r, "shutting down");
    leader_drop_all(r, "the leader is shutting down");
    if (r->peer_listening && !uv_is_closing((uv_handle_t *)&r->peer_listener))
        uv_close((uv_handle_t *)&r->peer_listener, NULL);
}

void repl_free(repl *r) {
    full_copy_discard(&r->copy);
    kv_secret_free(&r->secret);
}

int repl_promote(repl *r) {
    if (r->role == ROLE_LEADER) return 0;
    follower_disconnect(r, "promoted to leader");
    r->role = ROLE_LEADER;
    r->leader_host[0] = '\0';
    r->leader_client_addr[0] = '\0';
    spin_for_role(r);
    if (begin_history(r) != 0) return -1;
    kv_log(KV_LOG_INFO, "replication: promoted to leader at index %" PRIu64, repl_last_index(r));
    return 0;
}

int repl_follow(repl *r, const char *host, int peer_port) {
    if (strlen(host) >= sizeof r->leader_host) return -1;
    leader_drop_all(r, "this node now follows another leader");
    follower_disconnect(r, "re-pointed to another leader");
    snprintf(r->leader_host, sizeof r->leader_host, "%s", host);
    r->leader_peer_port = peer_port;
    r->leader_client_addr[0] = '\0';
    r->role = ROLE_FOLLOWER;
    spin_for_role(r);
    r->next_attempt_ms = 0;
    r->link_down_since_ms = uv_now(r->srv->loop);
    kv_log(KV_LOG_INFO, "replication: now following %s:%d", host, peer_port);
    follower_connect(r, uv_now(r->srv->loop));
    return 0;
}

void repl_on_written(repl *r, uint64_t upto) {
    if (r->role != ROLE_LEADER) return;
    leader_note_written(r, upto, uv_now(r->srv->loop));
    leader_feed_all(r);
}

void repl_on_ackable(repl *r, uint64_t upto) {
    (void)upto;
    if (r->role == ROLE_FOLLOWER) follower_ack(r, 0);
}

int repl_followers_acked(const repl *r, uint64_t index) {
    /* LAB wait-count: followers that are streaming and acknowledged index or beyond */
    int n = 0;
    for (const follower *f = r->followers; f; f = f->next) n += f->state == FOLLOWER_STREAMING && f->acked >= index;
    return n;
    /* END LAB */
}

/* Followers streaming and heard from within --min-followers-max-lag seconds. */
static int good_followers(const repl *r) {
    uint64_t now = uv_now(r->srv->loop), max_ms = (uint64_t)r->srv->cfg.min_followers_max_lag * 1000;
    int n = 0;
    for (const follower *f = r->followers; f; f = f->next)
        n += f->state == FOLLOWER_STREAMING && now - f->last_ack_ms <= max_ms;
    return n;
}

int repl_write_allowed(const repl *r, char *err, size_t errlen) {
    if (r->role == ROLE_FOLLOWER) {
        snprintf(err, errlen, "READONLY You can't write against a read only replica. leader=%s",
                 r->leader_client_addr[0] ? r->leader_client_addr : "unknown");
        return -1;
    }
    long long need = r->srv->cfg.min_followers_to_write;
    if (need > 0 && good_followers(r) < need) {
        snprintf(err, errlen, "NOREPLICAS Not enough good replicas to write.");
        return -1;
    }
    return 0;
}

void repl_between_syncs(repl *r) {
    if (!r->install_pending) return;
    r->install_pending = 0;
    int ok = full_copy_install(r->srv, &r->copy) == 0;
    if (ok && history_load(r->srv->wal.dir, &r->hist) != 0) ok = 0;
    follower_copy_installed(r, ok);
}
