/* leader.c - serving followers on the peer port (see leader.h). */
#include "leader.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "record.h"
#include "replication.h"
#include "server.h"
#include "wait.h"
#include "wal_files.h"

/* Read more records for a follower only while less than this is unsent. */
#define FEED_HIGH_WATER (1024 * 1024)
/* One Records message carries about this many bytes of frames. */
#define RECORDS_BATCH (256 * 1024)
/* One FullCopyChunk carries about this many bytes of keys and values. */
#define COPY_CHUNK (512 * 1024)
/* After a WAIT blocks, every Records asks for an ack for this long, so that
 * a client doing write + WAIT finds the ack already on its way (as when
 * followers acked every batch) instead of paying a request's round trip. */
#define WAIT_EAGER_ACKS_MS 1000

static const peer_link_ops follower_ops;

const char *follower_state_name(follower_state s) {
    switch (s) {
    case FOLLOWER_HELLO: return "hello";
    case FOLLOWER_AUTH: return "auth";
    case FOLLOWER_SYNC: return "sync";
    case FOLLOWER_COPYING: return "full_copy";
    case FOLLOWER_STREAMING: return "streaming";
    }
    return "?";
}


static void refuse(follower *f, const char *reason) {
    f->r->stats.refused_peers++;
    peer_link_fail(&f->link, reason);
}

static int on_hello(follower *f, const Kv__Hello *h) {
    repl *r = f->r;
    if (h->version != PEER_PROTOCOL_VERSION) {
        char why[96];
        snprintf(why, sizeof why, "peer protocol version %u, this node speaks %d", h->version, PEER_PROTOCOL_VERSION);
        refuse(f, why);
        return 1;
    }
    snprintf(f->id, sizeof f->id, "%.40s:%u", h->client_host, h->client_port);
    peer_text_clean(f->id);
    repl_send_hello(r, &f->link);
    if (r->secret.len == 0) {
        if (h->challenge) {
            refuse(f, "this leader has no cluster secret, and the follower requires one");
            return 1;
        }
        peer_link_trust(&f->link);
        f->state = FOLLOWER_SYNC;
        return 0;
    }
    if (kv_auth_nonce(f->nonce) != 0) {
        refuse(f, "no randomness for a challenge");
        return 1;
    }
    repl_send_challenge(&f->link, f->nonce);
    f->state = FOLLOWER_AUTH;
    return 0;
}

/* AUTH: first its answer to our nonce, then its own nonce for us to answer. */
static int on_auth(follower *f, const Kv__PeerMessage *m) {
    repl *r = f->r;
    if (m->msg_case == KV__PEER_MESSAGE__MSG_CHALLENGE_RESPONSE && !f->proved) {
        const ProtobufCBinaryData *mac = &m->challenge_response->mac;
        if (!kv_auth_verify(&r->secret, f->nonce, "follower", f->id, mac->data, mac->len)) {
            kv_log(KV_LOG_WARN, "refusing follower %s (%s): it does not hold the cluster secret", f->link.addr, f->id);
            refuse(f, "authentication failed: wrong cluster secret");
            return 1;
        }
        f->proved = 1;
        return 0;
    }
    if (m->msg_case == KV__PEER_MESSAGE__MSG_CHALLENGE && f->proved) {
        if (repl_answer_challenge(r, &f->link, "leader", &m->challenge->nonce) != 0) {
            refuse(f, "malformed challenge");
            return 1;
        }
        peer_link_trust(&f->link);
        f->state = FOLLOWER_SYNC;
        return 0;
    }
    refuse(f, "unexpected message during authentication");
    return 1;
}

static void send_stream_from(follower *f, uint64_t index) {
    Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
    Kv__StreamFrom s = KV__STREAM_FROM__INIT;
    s.history_id = f->r->hist.id;
    s.index = index;
    m.msg_case = KV__PEER_MESSAGE__MSG_STREAM_FROM;
    m.stream_from = &s;
    peer_link_send(&f->link, &m);
}

/* Sends records while the link has room. */
static void feed(follower *f) {
    server *srv = f->r->srv;
    while (f->state == FOLLOWER_STREAMING && !f->link.closing && peer_link_pending(&f->link) < FEED_HIGH_WATER &&
           f->reader.next <= wal_written_upto(&srv->wal)) {
        uint64_t n = 0;
        kv_buf_consume(&f->batch, kv_buf_readable(&f->batch));
        if (wal_reader_read(&f->reader, &f->batch, RECORDS_BATCH, &n) != 0) {
            char why[128];
            snprintf(why, sizeof why, "cannot read record %" PRIu64 " from the log (compacted?); reconnect for a full copy",
                     f->reader.next);
            peer_link_fail(&f->link, why);
            return;
        }
        if (n == 0) break;
        Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
        Kv__Records rec = KV__RECORDS__INIT;
        rec.frames.data = (uint8_t *)kv_buf_rptr(&f->batch);
        rec.frames.len = kv_buf_readable(&f->batch);
        rec.ack_now = uv_now(srv->loop) < f->r->eager_acks_until_ms;
        if (rec.ack_now) f->asked_upto = f->reader.next - 1;
        m.msg_case = KV__PEER_MESSAGE__MSG_RECORDS;
        m.records = &rec;
        if (peer_link_send(&f->link, &m) != 0) return;
    }
    kv_buf_shrink_if_empty(&f->batch, RECORDS_BATCH * 2);
}

static int count_frames(const unsigned char *p, size_t n, uint64_t *count) {
    size_t off = 0;
    *count = 0;
    while (off < n) {
        if (n - off < RECORD_HEADER_BYTES) return -1;
        size_t len = RECORD_HEADER_BYTES + ((size_t)p[off] << 24 | (size_t)p[off + 1] << 16 | (size_t)p[off + 2] << 8 | p[off + 3]);
        if (len > n - off) return -1;
        off += len;
        (*count)++;
    }
    return 0;
}

static void end_copy(follower *f) {
    if (f->copy_map) munmap((void *)f->copy_map, f->copy_size);
    f->copy_map = NULL;
    f->copy_size = f->copy_off = 0;
}

/* Sends chunks of the base file while the link has room; at its end, the
 * digest, then the log from the copy's index on. */
static void feed_copy(follower *f) {
    while (f->state == FOLLOWER_COPYING && !f->link.closing && peer_link_pending(&f->link) < FEED_HIGH_WATER) {
        if (f->copy_off >= f->copy_size) {
            Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
            Kv__FullCopyEnd e = KV__FULL_COPY_END__INIT;
            unsigned char d[KV_DIGEST_BYTES];
            kv_digest_to_bytes(&f->copy_digest, d);
            e.digest.data = d;
            e.digest.len = sizeof d;
            m.msg_case = KV__PEER_MESSAGE__MSG_FULL_COPY_END;
            m.full_copy_end = &e;
            peer_link_send(&f->link, &m);
            end_copy(f);
            send_stream_from(f, f->copy_index);
            f->state = FOLLOWER_STREAMING;
            kv_log(KV_LOG_INFO, "follower %s (%s): full copy sent; streaming from index %" PRIu64, f->link.addr, f->id,
                   f->copy_index + 1);
            feed(f);
            return;
        }
        /* One chunk: decode base records, point the chunk at their keys and values. */
        Kv__LogRecord *recs[4096];
        ProtobufCBinaryData keys[4096], vals[4096];
        size_t n = 0, bytes = 0;
        while (n < 4096 && bytes < COPY_CHUNK && f->copy_off < f->copy_size) {
            size_t len;
            if (record_decode(f->copy_map + f->copy_off, f->copy_size - f->copy_off, &recs[n], &len, NULL) != RECORD_OK ||
                !recs[n]->command || recs[n]->command->op != KV__COMMAND__OP__SET) {
                for (size_t i = 0; i < n; i++) record_free(recs[i]);
                peer_link_fail(&f->link, "the base file changed under a full copy");
                end_copy(f);
                return;
            }
            keys[n] = recs[n]->command->key;
            vals[n] = recs[n]->command->value;
            kv_digest_add(&f->copy_digest, keys[n].data, keys[n].len, vals[n].data, vals[n].len);
            bytes += len;
            f->copy_off += len;
            n++;
        }
        Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
        Kv__FullCopyChunk c = KV__FULL_COPY_CHUNK__INIT;
        c.n_keys = c.n_values = n;
        c.keys = keys;
        c.values = vals;
        m.msg_case = KV__PEER_MESSAGE__MSG_FULL_COPY_CHUNK;
        m.full_copy_chunk = &c;
        peer_link_send(&f->link, &m);
        for (size_t i = 0; i < n; i++) record_free(recs[i]);
    }
}

/* The follower cannot continue our log: send the state as of the base file
 * (compaction's snapshot at base_index), then the log after it. */
static int start_full_copy(follower *f) {
    repl *r = f->r;
    wal *w = &r->srv->wal;
    f->copy_index = w->base_index;
    kv_digest_init(&f->copy_digest);
    uint64_t keys = 0;
    if (w->base_index > 0) {
        char name[WAL_NAME_MAX];
        wal_base_name(name, sizeof name, w->base_index);
        int fd = openat(w->dirfd, name, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            if (fd >= 0) close(fd);
            peer_link_fail(&f->link, "cannot open the base file for a full copy");
            return 1;
        }
        f->copy_size = (size_t)st.st_size;
        if (f->copy_size > 0) {
            void *map = mmap(NULL, f->copy_size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (map == MAP_FAILED) {
                close(fd);
                peer_link_fail(&f->link, "cannot map the base file for a full copy");
                return 1;
            }
            f->copy_map = map;
        }
        close(fd);
        if (count_frames(f->copy_map, f->copy_size, &keys) != 0) {
            end_copy(f);
            peer_link_fail(&f->link, "the base file is damaged");
            return 1;
        }
    }
    /* Open the log after the copy now: its segment stays readable even if a
     * compaction deletes it while the copy is being sent. */
    if (wal_reader_open(&f->reader, w, f->copy_index + 1) != 0) {
        end_copy(f);
        peer_link_fail(&f->link, "cannot read the log after the base file");
        return 1;
    }
    f->reader_open = 1;
    r->stats.full_copies_sent++;
    kv_log(KV_LOG_INFO, "follower %s (%s): sending a full copy: %" PRIu64 " keys as of index %" PRIu64, f->link.addr,
           f->id, keys, f->copy_index);
    Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
    Kv__FullCopyBegin b = KV__FULL_COPY_BEGIN__INIT;
    b.history_id = r->hist.id;
    b.index = f->copy_index;
    b.key_count = keys;
    m.msg_case = KV__PEER_MESSAGE__MSG_FULL_COPY_BEGIN;
    m.full_copy_begin = &b;
    peer_link_send(&f->link, &m);
    f->state = FOLLOWER_COPYING;
    feed_copy(f);
    return 0;
}

static int on_sync_request(follower *f, const Kv__SyncRequest *s) {
    repl *r = f->r;
    wal *w = &r->srv->wal;
    if (r->role != ROLE_LEADER) {
        char why[128];
        snprintf(why, sizeof why, "this node is a follower (of %s:%d), not a leader", r->leader_host, r->leader_peer_port);
        refuse(f, why);
        return 1;
    }
    uint64_t mine = repl_last_index(r);
    if (history_is_prefix(&r->hist, mine, s->history_id, s->last_index) && s->last_index >= w->base_index) {
        if (wal_reader_open(&f->reader, w, s->last_index + 1) != 0) {
            peer_link_fail(&f->link, "cannot read the log from the follower's index");
            return 1;
        }
        f->reader_open = 1;
        f->acked = s->last_index;
        leader_note_ack(r, f);
        r->stats.continuations_sent++;
        kv_log(KV_LOG_INFO, "follower %s (%s): continuing from index %" PRIu64 " (history %.8s..., ours %.8s...)",
               f->link.addr, f->id, s->last_index + 1, s->history_id[0] ? s->history_id : "none", r->hist.id);
        send_stream_from(f, s->last_index);
        f->state = FOLLOWER_STREAMING;
        feed(f);
        return 0;
    }
    char theirs[48];
    kv_log(KV_LOG_INFO,
           "follower %s (%s) holds up to index %" PRIu64 " of history %s; we hold up to %" PRIu64 " of %s (base %" PRIu64
           "): it needs a full copy",
           f->link.addr, f->id, s->last_index, s->history_id[0] ? peer_text(s->history_id, theirs, sizeof theirs) : "(none)",
           mine, r->hist.id, w->base_index);
    return start_full_copy(f);
}

static int on_message(peer_link *l, const Kv__PeerMessage *m) {
    follower *f = l->owner;
    /* In any state, even mid-authentication: a follower that gives up (it
     * wants a secret we lack, or lacks the one we want) says why, and that
     * is its refusal, not ours. */
    if (m->msg_case == KV__PEER_MESSAGE__MSG_ERROR) {
        char reason[256];
        kv_log(KV_LOG_INFO, "follower %s (%s) reports: %s", l->addr, f->id,
               peer_text(m->error->reason, reason, sizeof reason));
        peer_link_close(l, "the follower gave up");
        return 1;
    }
    switch (f->state) {
    case FOLLOWER_HELLO:
        if (m->msg_case != KV__PEER_MESSAGE__MSG_HELLO) break;
        return on_hello(f, m->hello);
    case FOLLOWER_AUTH: return on_auth(f, m);
    case FOLLOWER_SYNC:
        if (m->msg_case == KV__PEER_MESSAGE__MSG_CHALLENGE) {
            refuse(f, "this leader has no cluster secret, and the follower requires one");
            return 1;
        }
        if (m->msg_case != KV__PEER_MESSAGE__MSG_SYNC_REQUEST) break;
        return on_sync_request(f, m->sync_request);
    case FOLLOWER_COPYING:
    case FOLLOWER_STREAMING:
        if (m->msg_case != KV__PEER_MESSAGE__MSG_ACK) break;
        if (m->ack->durable_index > f->acked) {
            f->acked = m->ack->durable_index;
            leader_note_ack(f->r, f);
            wait_check(f->r->srv);
        }
        f->last_ack_ms = uv_now(l->tcp.loop);
        return 0;
    }
    char why[96];
    snprintf(why, sizeof why, "unexpected %s in state %s", kv_peer_message_name(m), follower_state_name(f->state));
    refuse(f, why);
    return 1;
}

static void on_drain(peer_link *l) {
    follower *f = l->owner;
    if (f->state == FOLLOWER_COPYING) feed_copy(f);
    if (f->state == FOLLOWER_STREAMING) feed(f);
}

static void on_closed(peer_link *l) {
    follower *f = l->owner;
    repl *r = f->r;
    if (f->prev)
        f->prev->next = f->next;
    else
        r->followers = f->next;
    if (f->next) f->next->prev = f->prev;
    r->nfollowers--;
    if (f->reader_open) wal_reader_close(&f->reader);
    end_copy(f);
    kv_buf_free(&f->batch);
    free(f);
    wait_check(r->srv); /* a WAIT may now be unable to get more acks; deadlines still apply */
}

static const peer_link_ops follower_ops = {
    .on_message = on_message,
    .on_drain = on_drain,
    .on_closed = on_closed,
};

static void on_peer_connection(uv_stream_t *listener, int status) {
    repl *r = listener->data;
    if (status < 0) {
        kv_log(KV_LOG_WARN, "peer accept error: %s", uv_strerror(status));
        return;
    }
    follower *f = calloc(1, sizeof *f);
    if (!f || peer_link_init(&f->link, r->srv->loop, &follower_ops, f) != 0) {
        kv_log(KV_LOG_WARN, "out of memory accepting a peer");
        free(f);
        return;
    }
    f->r = r;
    f->last_ack_ms = uv_now(r->srv->loop);
    kv_buf_init(&f->batch);
    f->next = r->followers;
    if (r->followers) r->followers->prev = f;
    r->followers = f;
    r->nfollowers++;
    if (peer_link_accept(&f->link, listener) != 0) {
        peer_link_close(&f->link, "accept failed");
        return;
    }
    kv_log(KV_LOG_INFO, "peer connected from %s", f->link.addr);
}

int leader_listen(repl *r) {
    server *srv = r->srv;
    struct sockaddr_storage addr;
    int port = (int)srv->cfg.peer_port;
    if (port == 0) return 0; /* --peer-port 0: a leader no follower can reach */
    int e = uv_ip4_addr(srv->cfg.bind, port, (struct sockaddr_in *)&addr);
    if (e != 0) e = uv_ip6_addr(srv->cfg.bind, port, (struct sockaddr_in6 *)&addr);
    uv_tcp_init(srv->loop, &r->peer_listener);
    r->peer_listener.data = r;
    if (e == 0) e = uv_tcp_bind(&r->peer_listener, (const struct sockaddr *)&addr, 0);
    if (e == 0) e = uv_listen((uv_stream_t *)&r->peer_listener, 64, on_peer_connection);
    r->peer_listening = 1; /* from uv_tcp_init on, the handle must be closed */
    if (e != 0) {
        kv_log(KV_LOG_ERROR, "cannot listen for peers on %s:%d: %s", srv->cfg.bind, port, uv_strerror(e));
        return -1;
    }
    return 0;
}

void leader_feed_all(repl *r) {
    for (follower *f = r->followers; f; f = f->next)
        if (f->state == FOLLOWER_STREAMING) feed(f);
}

void leader_want_acks(repl *r, uint64_t index) {
    r->eager_acks_until_ms = uv_now(r->srv->loop) + WAIT_EAGER_ACKS_MS;
    for (follower *f = r->followers; f; f = f->next) {
        /* Not yet sent index: the Records that carries it will ask. */
        if (f->state != FOLLOWER_STREAMING || f->acked >= index || f->asked_upto >= index || f->reader.next <= index)
            continue;
        Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
        Kv__Records rec = KV__RECORDS__INIT;
        rec.ack_now = 1;
        m.msg_case = KV__PEER_MESSAGE__MSG_RECORDS;
        m.records = &rec;
        if (peer_link_send(&f->link, &m) == 0) f->asked_upto = f->reader.next - 1;
    }
}

void leader_drop_all(repl *r, const char *why) {
    follower *next;
    for (follower *f = r->followers; f; f = next) {
        next = f->next;
        peer_link_leave(&f->link, why); /* shutdown or demotion: not a fault */
    }
}

void leader_check_timeouts(repl *r, uint64_t now_ms) {
    uint64_t limit = (uint64_t)r->srv->cfg.follower_timeout * 1000;
    follower *next;
    for (follower *f = r->followers; f; f = next) {
        next = f->next;
        uint64_t silent = now_ms - (f->state >= FOLLOWER_COPYING ? f->last_ack_ms : f->link.last_recv_ms);
        if (limit > 0 && silent > limit) {
            char why[128];
            snprintf(why, sizeof why, "no message for %" PRIu64 " ms (--follower-timeout %lld s)", silent,
                     r->srv->cfg.follower_timeout);
            peer_link_fail(&f->link, why);
        }
    }
}

void leader_note_written(repl *r, uint64_t upto, uint64_t now_ms) {
    /* A follower that had acknowledged everything is behind from now on. */
    for (follower *f = r->followers; f; f = f->next)
        if (!f->lag_known && f->acked < upto) {
            f->lag_known = 1;
            f->lag_since_ms = now_ms;
        }
    size_t at = (r->written_head + r->written_count) % LAG_SAMPLES;
    if (r->written_count == LAG_SAMPLES) r->written_head = (r->written_head + 1) % LAG_SAMPLES;
    else r->written_count++;
    r->written_at[at].index = upto;
    r->written_at[at].ms = now_ms;
}

void leader_note_ack(repl *r, follower *f) {
    /* The samples are in index order: find the first one past f's ack. */
    size_t lo = 0, hi = r->written_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r->written_at[(r->written_head + mid) % LAG_SAMPLES].index > f->acked)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (lo < r->written_count) {
        f->lag_known = 1;
        f->lag_since_ms = r->written_at[(r->written_head + lo) % LAG_SAMPLES].ms;
    } else if (f->acked < repl_last_index(r) && r->written_count > 0) {
        /* Behind the oldest sample: at least that old (a lower bound). */
        f->lag_known = 1;
        f->lag_since_ms = r->written_at[r->written_head].ms;
    } else {
        f->lag_known = 0; /* caught up: the next write starts the clock */
    }
}

uint64_t leader_lag_records(const repl *r, const follower *f) {
    uint64_t last = repl_last_index(r);
    return f->acked >= last ? 0 : last - f->acked;
}

uint64_t leader_lag_ms(const repl *r, const follower *f, uint64_t now_ms) {
    if (f->acked >= repl_last_index(r) || !f->lag_known) return 0;
    return now_ms - f->lag_since_ms;
}
