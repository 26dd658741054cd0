/* follower.c - the link to the leader (see follower.h). */
#include "follower.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "log.h"
#include "record.h"
#include "replication.h"
#include "server.h"

/* After a failed attempt or a dropped link, wait this long before the next. */
#define RECONNECT_DELAY_MS 1000

static const peer_link_ops leader_link_ops;

static void fail(leader_link *ll, const char *reason) {
    kv_log(KV_LOG_WARN, "replication: leader %s: %s", ll->link.addr, reason);
    peer_link_fail(&ll->link, reason);
}

static void send_hello(leader_link *ll) {
    repl_send_hello(ll->repl, &ll->link); /* a follower: only followers dial a leader */
    ll->state = LINK_HELLO;
}

static void send_sync_request(leader_link *ll) {
    repl *r = ll->repl;
    Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
    Kv__SyncRequest s = KV__SYNC_REQUEST__INIT;
    s.history_id = r->hist.id;
    s.last_index = repl_last_index(r);
    m.msg_case = KV__PEER_MESSAGE__MSG_SYNC_REQUEST;
    m.sync_request = &s;
    peer_link_send(&ll->link, &m);
    ll->state = LINK_SYNC;
    kv_log(KV_LOG_INFO, "replication: asking leader %s to continue after index %" PRIu64 " of history %s",
           ll->link.addr, s.last_index, r->hist.id[0] ? r->hist.id : "(none)");
}

static int on_hello(leader_link *ll, const Kv__Hello *h) {
    repl *r = ll->repl;
    if (h->version != PEER_PROTOCOL_VERSION) {
        fail(ll, "the leader speaks another peer protocol version");
        return 1;
    }
    if (h->role != KV__PEER_ROLE__LEADER) {
        fail(ll, "the node at that address is not a leader");
        return 1;
    }
    snprintf(ll->leader_id, sizeof ll->leader_id, "%.40s:%u", h->client_host, h->client_port);
    peer_text_clean(ll->leader_id);
    snprintf(r->leader_client_addr, sizeof r->leader_client_addr, "%s", ll->leader_id);
    if (r->secret.len > 0 && !h->challenge) {
        fail(ll, "the leader has no cluster secret; refusing to follow a leader that cannot prove it");
        return 1;
    }
    if (r->secret.len == 0 && h->challenge) {
        fail(ll, "the leader requires a cluster secret (--cluster-secret-file)");
        return 1;
    }
    if (r->secret.len == 0) {
        peer_link_trust(&ll->link);
        send_sync_request(ll);
    } else {
        ll->state = LINK_AUTH;
    }
    return 0;
}

static int on_auth(leader_link *ll, const Kv__PeerMessage *m) {
    repl *r = ll->repl;
    if (m->msg_case == KV__PEER_MESSAGE__MSG_CHALLENGE) {
        /* Answer the leader's nonce, and send ours. */
        if (kv_auth_nonce(ll->nonce) != 0 || repl_answer_challenge(r, &ll->link, "follower", &m->challenge->nonce) != 0) {
            fail(ll, "malformed challenge");
            return 1;
        }
        repl_send_challenge(&ll->link, ll->nonce);
        return 0;
    }
    if (m->msg_case == KV__PEER_MESSAGE__MSG_CHALLENGE_RESPONSE) {
        const ProtobufCBinaryData *mac = &m->challenge_response->mac;
        if (!kv_auth_verify(&r->secret, ll->nonce, "leader", ll->leader_id, mac->data, mac->len)) {
            fail(ll, "the leader does not hold the cluster secret");
            return 1;
        }
        peer_link_trust(&ll->link);
        send_sync_request(ll);
        return 0;
    }
    fail(ll, "unexpected message during authentication");
    return 1;
}

/* The leader continues our log from index: adopt its history. */
static int on_stream_from(leader_link *ll, const Kv__StreamFrom *s) {
    repl *r = ll->repl;
    uint64_t last = repl_last_index(r);
    if (s->index != last || strlen(s->history_id) != HISTORY_ID_LEN) {
        char why[128];
        snprintf(why, sizeof why, "StreamFrom index %" PRIu64 " but this log ends at %" PRIu64, s->index, last);
        fail(ll, why);
        return 1;
    }
    if (strcmp(s->history_id, r->hist.id) != 0) {
        history h = r->hist;
        if (h.id[0]) {
            memcpy(h.prev_id, h.id, sizeof h.id);
            h.prev_end = last;
        }
        memcpy(h.id, s->history_id, sizeof h.id);
        /* Durable before any record of the new history is acknowledged. */
        if (history_save(r->srv->wal.dir, &h) != 0) {
            fail(ll, "cannot record the leader's history id");
            return 1;
        }
        r->hist = h;
    }
    ll->state = LINK_STREAMING;
    r->link_down_since_ms = 0;
    kv_log(KV_LOG_INFO, "replication: streaming from leader %s after index %" PRIu64, ll->link.addr, last);
    return 0;
}

static int on_records(leader_link *ll, const Kv__Records *rs) {
    server *srv = ll->repl->srv;
    const unsigned char *p = rs->frames.data;
    size_t n = rs->frames.len, off = 0;
    /* LAB follower-apply: for each frame: decode (the leader's CRC), check it is the next index, log it, apply it */
    while (off < n) {
        Kv__LogRecord *rec;
        size_t len;
        const char *why = "?";
        if (record_decode(p + off, n - off, &rec, &len, &why) != RECORD_OK) {
            char msg[160];
            snprintf(msg, sizeof msg, "bad record from the leader: %s", why);
            fail(ll, msg);
            return 1;
        }
        uint64_t expect = srv->wal.next_index;
        if (rec->index != expect || !rec->command) {
            char msg[160];
            snprintf(msg, sizeof msg, "record %" PRIu64 " from the leader, expected %" PRIu64, rec->index, expect);
            record_free(rec);
            fail(ll, msg);
            return 1;
        }
        /* Same order as a leader: log, then apply. The leader's frame goes
         * into our log as it came (its CRC was checked just now). */
        if (wal_append_frame(&srv->wal, p + off, len) != expect || apply_command(&srv->store, rec->command) < 0) {
            record_free(rec);
            kv_log(KV_LOG_ERROR, "replication: out of memory applying record %" PRIu64 "; exiting", expect);
            _exit(1);
        }
        record_free(rec);
        off += len;
    }
    /* END LAB */
    if (rs->ack_now) {
        /* A WAIT on the leader needs our ack: send it once these are
         * ackable (now, if they already are: an empty request). */
        ll->ack_asked = repl_last_index(ll->repl);
        follower_ack(ll->repl, 0);
    }
    return 0;
}

static int on_message(peer_link *l, const Kv__PeerMessage *m) {
    leader_link *ll = l->owner;
    repl *r = ll->repl;
    char err[200];
    if (m->msg_case == KV__PEER_MESSAGE__MSG_ERROR) {
        char reason[256];
        kv_log(KV_LOG_WARN, "replication: leader %s refused us: %s", l->addr,
               peer_text(m->error->reason, reason, sizeof reason));
        peer_link_close(l, "refused by the leader");
        return 1;
    }
    switch (ll->state) {
    case LINK_HELLO:
        if (m->msg_case != KV__PEER_MESSAGE__MSG_HELLO) break;
        return on_hello(ll, m->hello);
    case LINK_AUTH: return on_auth(ll, m);
    case LINK_SYNC:
        if (m->msg_case == KV__PEER_MESSAGE__MSG_STREAM_FROM) return on_stream_from(ll, m->stream_from);
        if (m->msg_case != KV__PEER_MESSAGE__MSG_FULL_COPY_BEGIN) break;
        if (full_copy_begin(&r->copy, m->full_copy_begin, err, sizeof err) != 0) {
            fail(ll, err);
            return 1;
        }
        kv_log(KV_LOG_INFO, "replication: receiving a full copy of %" PRIu64 " keys as of index %" PRIu64 " from %s",
               m->full_copy_begin->key_count, m->full_copy_begin->index, l->addr);
        ll->state = LINK_COPYING;
        return 0;
    case LINK_COPYING:
        if (m->msg_case == KV__PEER_MESSAGE__MSG_FULL_COPY_CHUNK) {
            if (full_copy_add(&r->copy, m->full_copy_chunk, err, sizeof err) == 0) return 0;
        } else if (m->msg_case == KV__PEER_MESSAGE__MSG_FULL_COPY_END) {
            if (full_copy_check(&r->copy, m->full_copy_end, err, sizeof err) == 0) {
                /* Installing swaps the log: wait for a moment with no fdatasync in flight. */
                r->install_pending = 1;
                ll->state = LINK_SYNC;
                return PEER_LINK_PAUSE;
            }
        } else {
            break;
        }
        full_copy_discard(&r->copy);
        fail(ll, err);
        return 1;
    case LINK_STREAMING:
        if (m->msg_case != KV__PEER_MESSAGE__MSG_RECORDS) break;
        return on_records(ll, m->records);
    case LINK_CONNECTING: break;
    }
    char why[96];
    snprintf(why, sizeof why, "unexpected %s from the leader", kv_peer_message_name(m));
    fail(ll, why);
    return 1;
}

static void on_connect(peer_link *l, int status) {
    leader_link *ll = l->owner;
    if (status != 0) {
        /* Logged once until a connection succeeds: while the leader is down
         * the follower retries every second, and says so the first time. */
        if (ll->repl->connect_failures++ == 0)
            kv_log(KV_LOG_INFO, "replication: cannot reach leader %s: %s; retrying every %d ms", l->addr,
                   uv_strerror(status), RECONNECT_DELAY_MS);
        l->quiet = 1;
        peer_link_close(l, "cannot connect");
        return;
    }
    ll->repl->connect_failures = 0;
    kv_log(KV_LOG_INFO, "replication: connected to leader %s", l->addr);
    send_hello(ll);
}

static void on_closed(peer_link *l) {
    leader_link *ll = l->owner;
    repl *r = ll->repl;
    if (r->link == ll) {
        r->link = NULL;
        r->next_attempt_ms = uv_now(r->srv->loop) + RECONNECT_DELAY_MS;
        if (!r->link_down_since_ms) r->link_down_since_ms = uv_now(r->srv->loop);
    }
    full_copy_discard(&r->copy);
    r->install_pending = 0;
    free(ll);
}

static const peer_link_ops leader_link_ops = {
    .on_message = on_message,
    .on_connect = on_connect,
    .on_closed = on_closed,
};

void follower_connect(repl *r, uint64_t now_ms) {
    if (r->role != ROLE_FOLLOWER || r->link || now_ms < r->next_attempt_ms || r->srv->shutting_down) return;
    struct sockaddr_storage addr;
    if (uv_ip4_addr(r->leader_host, r->leader_peer_port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(r->leader_host, r->leader_peer_port, (struct sockaddr_in6 *)&addr) != 0) {
        kv_log(KV_LOG_ERROR, "replication: leader address %s is not an IPv4 or IPv6 address", r->leader_host);
        r->next_attempt_ms = now_ms + RECONNECT_DELAY_MS * 10;
        return;
    }
    leader_link *ll = calloc(1, sizeof *ll);
    if (!ll || peer_link_init(&ll->link, r->srv->loop, &leader_link_ops, ll) != 0) {
        free(ll);
        r->next_attempt_ms = now_ms + RECONNECT_DELAY_MS;
        return;
    }
    ll->repl = r;
    ll->state = LINK_CONNECTING;
    r->link = ll;
    char name[96];
    snprintf(name, sizeof name, "%s:%d", r->leader_host, r->leader_peer_port);
    int e = peer_link_connect(&ll->link, (const struct sockaddr *)&addr, name);
    if (e != 0) {
        char why[128];
        snprintf(why, sizeof why, "cannot connect: %s", uv_strerror(e));
        peer_link_close(&ll->link, why);
    }
}

void follower_disconnect(repl *r, const char *why) {
    if (r->link) peer_link_leave(&r->link->link, why);
}

void follower_ack(repl *r, int heartbeat) {
    leader_link *ll = r->link;
    if (!ll || ll->state != LINK_STREAMING || ll->link.closing) return;
    uint64_t upto = r->srv->acked_upto;
    /* Between heartbeats, only while the leader asked for more than we acked. */
    if (!heartbeat && (upto == ll->acked || ll->ack_asked <= ll->acked)) return;
    Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
    Kv__Ack a = KV__ACK__INIT;
    a.durable_index = upto;
    m.msg_case = KV__PEER_MESSAGE__MSG_ACK;
    m.ack = &a;
    if (peer_link_send(&ll->link, &m) == 0) ll->acked = upto;
}

void follower_copy_installed(repl *r, int ok) {
    leader_link *ll = r->link;
    if (!ll) return;
    if (!ok) {
        fail(ll, "cannot install the full copy");
        return;
    }
    r->stats.full_copies_received++;
    /* The leader's StreamFrom and records wait in the link's buffer. */
    peer_link_resume(&ll->link);
}
