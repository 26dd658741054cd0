/* peer_link.c - framed peer connections (see peer_link.h). */
#include "peer_link.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

#define READ_CHUNK (64 * 1024)
#define IDLE_KEEP (256 * 1024)

static void start_write(peer_link *l);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    peer_link *l = (peer_link *)h;
    (void)suggested;
    if (kv_buf_reserve(&l->in, READ_CHUNK) != 0) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = kv_buf_wptr(&l->in);
    buf->len = kv_buf_writable(&l->in);
}

static void stop_reading(peer_link *l) {
    if (!l->reading) return;
    uv_read_stop((uv_stream_t *)&l->tcp);
    l->reading = 0;
}

/* Hands every whole message in l->in to the owner, until it pauses or closes us. */
static void process_buffered(peer_link *l) {
    while (!l->closing && !l->paused && kv_buf_readable(&l->in) > 0) {
        size_t used = 0;
        Kv__PeerMessage *m = NULL;
        kv_frame_status st = kv_frame_decode(&l->dec, kv_buf_rptr(&l->in), kv_buf_readable(&l->in), &used, &m);
        kv_buf_consume(&l->in, used);
        if (st == KV_FRAME_AGAIN) break;
        if (st != KV_FRAME_OK) {
            char why[320]; /* the decoder's error plus the RESP hint always fit */
            /* A Redis-protocol reply (a client port dialled by mistake)
             * starts with one of these; say so rather than quote a length. */
            int resp = l->dec.err == KV_FRAME_EOVERSIZE && l->first_byte >= 0 && strchr("+-:$*", l->first_byte) != NULL;
            snprintf(why, sizeof why, "bad frame: %s%s", kv_frame_error(&l->dec),
                     resp ? " (this looks like a client port speaking RESP: give the peer port)" : "");
            peer_link_fail(l, why);
            return;
        }
        l->last_recv_ms = uv_now(l->tcp.loop);
        int r = l->ops->on_message(l, m);
        kv_peer_message_free(m);
        if (r == PEER_LINK_PAUSE) {
            l->paused = 1;
            stop_reading(l);
        } else if (r != 0) {
            return;
        }
    }
    if (!l->closing) kv_buf_shrink_if_empty(&l->in, IDLE_KEEP);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    peer_link *l = (peer_link *)s;
    (void)buf;
    if (nread == 0) return;
    if (nread < 0) {
        peer_link_close(l, nread == UV_EOF ? "closed by the other end" : uv_strerror((int)nread));
        return;
    }
    if (l->bytes_received == 0) l->first_byte = (unsigned char)kv_buf_wptr(&l->in)[0];
    kv_buf_commit(&l->in, (size_t)nread);
    l->bytes_received += (uint64_t)nread;
    process_buffered(l);
}

static void start_reading(peer_link *l) {
    if (l->reading || l->closing) return;
    if (uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read) == 0) l->reading = 1;
}

int peer_link_init(peer_link *l, uv_loop_t *loop, const peer_link_ops *ops, void *owner) {
    memset(l, 0, sizeof *l);
    l->ops = ops;
    l->owner = owner;
    strcpy(l->addr, "?");
    l->first_byte = -1;
    kv_frame_decoder_init(&l->dec, KV_FRAME_HANDSHAKE_MAX); /* raised by peer_link_trust */
    kv_buf_init(&l->in);
    kv_buf_init(&l->out);
    kv_buf_init(&l->inflight);
    return uv_tcp_init(loop, &l->tcp);
}

static void name_peer(peer_link *l) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &len) != 0) return;
    char ip[48] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    snprintf(l->addr, sizeof l->addr, "%s:%d", ip, port);
}

int peer_link_accept(peer_link *l, uv_stream_t *listener) {
    int r = uv_accept(listener, (uv_stream_t *)&l->tcp);
    if (r != 0) return r;
    uv_tcp_nodelay(&l->tcp, 1);
    name_peer(l);
    l->last_recv_ms = uv_now(l->tcp.loop);
    start_reading(l);
    return 0;
}

static void on_connect(uv_connect_t *req, int status) {
    peer_link *l = req->data;
    if (l->closing) return;
    if (status == 0) {
        uv_tcp_nodelay(&l->tcp, 1);
        l->last_recv_ms = uv_now(l->tcp.loop);
        start_reading(l);
    }
    l->ops->on_connect(l, status);
}

int peer_link_connect(peer_link *l, const struct sockaddr *addr, const char *name) {
    snprintf(l->addr, sizeof l->addr, "%s", name);
    l->connect_req.data = l;
    return uv_tcp_connect(&l->connect_req, &l->tcp, addr, on_connect);
}

size_t peer_link_pending(const peer_link *l) { return kv_buf_readable(&l->out) + kv_buf_readable(&l->inflight); }

static void on_write(uv_write_t *req, int status) {
    peer_link *l = req->data;
    l->writing = 0;
    l->bytes_sent += kv_buf_readable(&l->inflight);
    kv_buf_consume(&l->inflight, kv_buf_readable(&l->inflight));
    kv_buf_shrink_if_empty(&l->inflight, IDLE_KEEP);
    if (l->closing) return;
    if (status != 0) {
        peer_link_close(l, uv_strerror(status));
        return;
    }
    start_write(l);
    if (!l->writing && l->ops->on_drain) l->ops->on_drain(l);
}

static void start_write(peer_link *l) {
    if (l->writing || l->closing || kv_buf_readable(&l->out) == 0) return;
    /* Try the kernel directly first: most messages (a batch of records, an
     * ack) fit in the socket buffer, and every uv_write that completes makes
     * libuv re-register the socket with epoll (one epoll_ctl per message).
     * No on_drain here: the sender is still in its loop and sees the room. */
    size_t n = kv_buf_readable(&l->out);
    uv_buf_t b = uv_buf_init(kv_buf_rptr(&l->out), (unsigned int)(n > UINT32_MAX ? UINT32_MAX : n));
    int w = uv_try_write((uv_stream_t *)&l->tcp, &b, 1);
    if (w > 0) {
        l->bytes_sent += (uint64_t)w;
        kv_buf_consume(&l->out, (size_t)w);
        if (kv_buf_readable(&l->out) == 0) {
            kv_buf_shrink_if_empty(&l->out, IDLE_KEEP);
            return;
        }
    } else if (w != UV_EAGAIN && w != UV_ENOSYS) {
        peer_link_close(l, uv_strerror(w));
        return;
    }
    /* Swap: what is queued becomes the write in flight; new frames queue behind it. */
    kv_buf t = l->inflight;
    l->inflight = l->out;
    l->out = t;
    b = uv_buf_init(kv_buf_rptr(&l->inflight), (unsigned int)kv_buf_readable(&l->inflight));
    l->wreq.data = l;
    int r = uv_write(&l->wreq, (uv_stream_t *)&l->tcp, &b, 1, on_write);
    if (r != 0) {
        peer_link_close(l, uv_strerror(r));
        return;
    }
    l->writing = 1;
}

int peer_link_send(peer_link *l, const Kv__PeerMessage *m) {
    if (l->closing) return -1;
    kv_frame_status st = kv_frame_append(&l->out, m, KV_FRAME_MAX_DEFAULT);
    if (st != KV_FRAME_OK) {
        kv_log(KV_LOG_ERROR, "peer %s: cannot send %s: %s", l->addr, kv_peer_message_name(m), kv_frame_status_name(st));
        peer_link_close(l, "cannot encode a message");
        return -1;
    }
    start_write(l);
    return 0;
}

int peer_link_send_raw(peer_link *l, const void *p, size_t n) {
    if (l->closing) return -1;
    if (kv_buf_append(&l->out, p, n) != 0) {
        peer_link_close(l, "out of memory");
        return -1;
    }
    start_write(l);
    return 0;
}

static void on_close(uv_handle_t *h) {
    peer_link *l = (peer_link *)h;
    kv_frame_decoder_free(&l->dec);
    kv_buf_free(&l->in);
    kv_buf_free(&l->out);
    kv_buf_free(&l->inflight);
    l->ops->on_closed(l);
}

void peer_link_close(peer_link *l, const char *why) {
    if (l->closing) return;
    l->closing = 1;
    if (!l->quiet) kv_log(KV_LOG_INFO, "peer link %s closed: %s", l->addr, why);
    uv_close((uv_handle_t *)&l->tcp, on_close);
}

/* Tells the other end why, best effort, before a close. */
static void send_error(peer_link *l, const char *reason) {
    Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
    Kv__Error e = KV__ERROR__INIT;
    e.reason = (char *)reason;
    m.msg_case = KV__PEER_MESSAGE__MSG_ERROR;
    m.error = &e;
    /* Best effort: try the kernel directly, since closing drops queued output. */
    kv_buf tmp;
    kv_buf_init(&tmp);
    if (kv_frame_append(&tmp, &m, KV_FRAME_MAX_DEFAULT) == KV_FRAME_OK && !l->writing) {
        uv_buf_t b = uv_buf_init(kv_buf_rptr(&tmp), (unsigned int)kv_buf_readable(&tmp));
        uv_try_write((uv_stream_t *)&l->tcp, &b, 1);
    }
    kv_buf_free(&tmp);
}

void peer_link_fail(peer_link *l, const char *reason) {
    if (l->closing) return;
    kv_log(KV_LOG_WARN, "peer %s: %s; closing the link", l->addr, reason);
    send_error(l, reason);
    peer_link_close(l, reason);
}

void peer_link_leave(peer_link *l, const char *reason) {
    if (l->closing) return;
    send_error(l, reason);
    peer_link_close(l, reason);
}

void peer_link_trust(peer_link *l) { kv_frame_decoder_set_limit(&l->dec, KV_FRAME_MAX_DEFAULT); }

void peer_link_resume(peer_link *l) {
    if (!l->paused || l->closing) return;
    l->paused = 0;
    process_buffered(l);
    if (!l->paused) start_reading(l);
}

void peer_text_clean(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) *s = '?';
}

const char *peer_text(const char *src, char *buf, size_t n) {
    snprintf(buf, n, "%s", src);
    peer_text_clean(buf);
    return buf;
}
