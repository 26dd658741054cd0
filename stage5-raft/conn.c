/* conn.c - one client connection (see conn.h).
 *
 * Reading and writing never block: libuv calls us when bytes arrive and when
 * a write finishes. Replies produced while handling one read are gathered in
 * c->out and sent with one write, which is what makes pipelining fast. */
#include "conn.h"

#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "commands.h"
#include "log.h"
#include "resp_reply.h"
#include "server.h"

/* Stop reading from a client once this much output is waiting: a client that
 * pipelines without reading its replies then stalls itself instead of making
 * the server buffer without bound. */
#define OUTPUT_HIGH_WATER (1024 * 1024)
/* Read at least this much at a time. */
#define READ_CHUNK (16 * 1024)
/* Idle connections give back buffers larger than this. */
#define IDLE_KEEP (64 * 1024)
/* A blocked connection goes on reading until this much input waits: most
 * clients send nothing while blocked, and stopping and restarting the read
 * costs two epoll_ctl calls per blocked command. */
#define BLOCKED_INPUT_MAX (64 * 1024)

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void note_activity(conn *c) { c->last_activity_ms = uv_now(c->srv->loop); }
static void process_input(conn *c);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    conn *c = (conn *)h;
    (void)suggested;
    if (kv_buf_reserve(&c->in, READ_CHUNK) != 0) {
        buf->base = NULL;
        buf->len = 0; /* libuv reports UV_ENOBUFS to on_read */
        return;
    }
    buf->base = kv_buf_wptr(&c->in);
    buf->len = kv_buf_writable(&c->in);
}

static size_t pending_output(const conn *c) { return kv_buf_readable(&c->out) + kv_buf_readable(&c->inflight); }

size_t conn_unsent(const conn *c) {
    /* The kernel's share counts too: with a large send buffer, a slow reader
     * frees room long before the socket is reported writable again. */
    int queued = 0;
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0 || ioctl(fd, SIOCOUTQ, &queued) != 0 || queued < 0)
        queued = 0;
    return kv_buf_readable(&c->out) + uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) + (size_t)queued;
}

static void start_reading(conn *c) {
    if (c->reading || c->closing || c->close_after_flush || c->blocked || c->srv->shutting_down) return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = 1;
}

static void stop_reading(conn *c) {
    if (!c->reading) return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

static void on_close(uv_handle_t *h) {
    conn *c = (conn *)h;
    server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    if (c->counted) srv->nconns--;
    kv_log(KV_LOG_DEBUG, "client %llu (%s) closed", (unsigned long long)c->id, c->peer);
    kv_buf_free(&c->in);
    kv_buf_free(&c->out);
    kv_buf_free(&c->inflight);
    resp_parser_free(&c->parser);
    free(c);
}

void conn_close(conn *c) {
    if (c->closing) return;
    c->closing = 1;
    stop_reading(c);
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

void conn_close_after_flush(conn *c) {
    c->close_after_flush = 1;
    c->unsent_at_grace = conn_unsent(c); /* the shutdown grace check's starting point */
    stop_reading(c);
    if (pending_output(c) == 0) conn_close(c);
}

static void on_write(uv_write_t *req, int status) {
    conn *c = req->data;
    c->writing = 0;
    kv_buf_consume(&c->inflight, kv_buf_readable(&c->inflight));
    if (c->closing) return;
    if (status == 0) note_activity(c);
    if (status < 0) {
        kv_log(KV_LOG_DEBUG, "client %llu: write failed: %s", (unsigned long long)c->id, uv_strerror(status));
        conn_close(c);
        return;
    }
    conn_flush(c);
    kv_buf_shrink_if_empty(&c->inflight, IDLE_KEEP);
    conn_resume(c);
}

void conn_resume(conn *c) {
    /* Only once the output has drained: resuming earlier would just pause again. */
    if (!c->paused || c->closing || c->close_after_flush || c->writing || pending_output(c) > OUTPUT_HIGH_WATER) return;
    c->paused = 0;
    start_reading(c);
    process_input(c); /* requests already buffered; this may pause us again */
}

void conn_flush(conn *c) {
    if (c->closing || c->writing) return;
    if (c->reply_waits_for > c->srv->acked_upto) return; /* conn_release_replies flushes us later */
    size_t n = kv_buf_readable(&c->out);
    if (n == 0) {
        if (c->close_after_flush) conn_close(c);
        return;
    }
    /* Try the kernel directly first; most replies fit in the socket buffer
     * and this saves a trip through the loop. */
    uv_buf_t b = uv_buf_init(kv_buf_rptr(&c->out), (unsigned int)(n > UINT32_MAX ? UINT32_MAX : n));
    int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (w > 0) {
        note_activity(c);
        kv_buf_consume(&c->out, (size_t)w);
        n -= (size_t)w;
    } else if (w != UV_EAGAIN && w != UV_ENOSYS) {
        kv_log(KV_LOG_DEBUG, "client %llu: write failed: %s", (unsigned long long)c->id, uv_strerror(w));
        conn_close(c);
        return;
    }
    if (n == 0) {
        kv_buf_shrink_if_empty(&c->out, IDLE_KEEP);
        if (c->close_after_flush) conn_close(c);
        return;
    }
    /* The rest goes through uv_write, which needs the bytes to stay put:
     * swap them into inflight so new replies can keep accumulating in out. */
    kv_buf tmp = c->inflight;
    c->inflight = c->out;
    c->out = tmp;
    b = uv_buf_init(kv_buf_rptr(&c->inflight), (unsigned int)kv_buf_readable(&c->inflight));
    c->wreq.data = c;
    int r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (r < 0) {
        kv_log(KV_LOG_DEBUG, "client %llu: write failed: %s", (unsigned long long)c->id, uv_strerror(r));
        conn_close(c);
        return;
    }
    c->writing = 1;
}

static void protocol_error(conn *c, const char *reason) {
    c->srv->stats.protocol_errors++;
    kv_log(KV_LOG_INFO, "client %llu (%s): protocol error: %s; closing the connection", (unsigned long long)c->id,
           c->peer, reason);
    reply_error(&c->out, "ERR Protocol error: %s", reason);
    conn_close_after_flush(c);
}

/* A client that does not read its replies must not make us hold them
 * without bound: once unsent output passes --max-output-bytes even after
 * handing what we can to the kernel, the client is dropped. */
static int over_output_limit(conn *c) {
    size_t limit = c->srv->cfg.max_output_bytes;
    if (pending_output(c) <= limit) return 0;
    conn_flush(c);
    if (c->closing || pending_output(c) <= limit) return c->closing;
    c->srv->stats.output_limit_closes++;
    kv_log(KV_LOG_WARN,
           "client %llu (%s): %zu bytes of replies unsent, over --max-output-bytes %zu (it is not reading); closing",
           (unsigned long long)c->id, c->peer, pending_output(c), limit);
    conn_close(c);
    return 1;
}

void conn_check_idle(conn *c, uint64_t now_ms) {
    uint64_t limit_ms = (uint64_t)c->srv->cfg.idle_timeout * 1000;
    if (limit_ms == 0 || c->closing || c->reply_waits_for > c->srv->acked_upto) return;
    if (now_ms - c->last_activity_ms < limit_ms) return;
    c->srv->stats.idle_closes++;
    kv_log(KV_LOG_INFO, "client %llu (%s): idle for %llu s (--timeout %lld); closing", (unsigned long long)c->id,
           c->peer, (unsigned long long)((now_ms - c->last_activity_ms) / 1000), c->srv->cfg.idle_timeout);
    conn_close(c);
}

/* Parses and runs every complete request in c->in, stopping early when the
 * client has too much unread output. */
static void process_input(conn *c) {
    server *srv = c->srv;
    while (!c->closing && !c->close_after_flush && !c->blocked && kv_buf_readable(&c->in) > 0) {
        if (pending_output(c) > OUTPUT_HIGH_WATER) {
            conn_flush(c);
            if (pending_output(c) > OUTPUT_HIGH_WATER) {
                kv_log(KV_LOG_DEBUG, "client %llu: %zu bytes of replies unsent; pausing reads", (unsigned long long)c->id,
                       pending_output(c));
                c->paused = 1;
                stop_reading(c); /* conn_resume starts us again once the client has read */
                break;
            }
        }
        size_t used = 0;
        resp_status st = resp_parse(&c->parser, kv_buf_rptr(&c->in), kv_buf_readable(&c->in), &used);
        if (st == RESP_AGAIN) break;
        if (st == RESP_EPROTO) {
            protocol_error(c, c->parser.error);
            break;
        }
        if (c->parser.argc > 0) {
            if (srv->args_cap < c->parser.argc) {
                kv_slice *a = realloc(srv->args, c->parser.argc * sizeof *a);
                if (!a) {
                    protocol_error(c, "out of memory");
                    break;
                }
                srv->args = a;
                srv->args_cap = c->parser.argc;
            }
            const char *base = kv_buf_rptr(&c->in);
            for (size_t i = 0; i < c->parser.argc; i++) {
                srv->args[i].p = base + c->parser.argv[i].off;
                srv->args[i].len = c->parser.argv[i].len;
            }
            commands_execute(c, srv->args, c->parser.argc);
            if (c->out.oom) {
                /* A reply went missing: the client would pair later replies with the wrong requests. */
                kv_log(KV_LOG_WARN, "client %llu (%s): out of memory building a reply; closing", (unsigned long long)c->id,
                       c->peer);
                conn_close(c);
                return;
            }
        }
        kv_buf_consume(&c->in, used);
        if (over_output_limit(c)) return;
    }
    if (kv_buf_readable(&c->in) == 0) kv_buf_shrink_if_empty(&c->in, IDLE_KEEP);
    conn_flush(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    conn *c = (conn *)stream;
    (void)buf;
    if (nread == UV_ENOBUFS) {
        protocol_error(c, "out of memory");
        conn_flush(c);
        return;
    }
    if (nread < 0) {
        if (c->blocked) {
            /* The blocked command's reply is still owed: look again once it
             * is answered (conn_unblock reads, and sees the end again). */
            stop_reading(c);
            return;
        }
        if (nread != UV_EOF)
            kv_log(KV_LOG_DEBUG, "client %llu: read failed: %s", (unsigned long long)c->id, uv_strerror((int)nread));
        /* The peer is gone or half-closed: finish what we owe, then close. */
        conn_close_after_flush(c);
        conn_flush(c);
        return;
    }
    if (nread == 0) return;
    note_activity(c);
    kv_buf_commit(&c->in, (size_t)nread);
    kv_busy_poll_note(&c->srv->busy_poll);
    if (c->blocked) {
        if (kv_buf_readable(&c->in) >= BLOCKED_INPUT_MAX) stop_reading(c); /* conn_unblock reads on */
        return;
    }
    process_input(c);
}

conn *conn_accept(server *srv, int counted) {
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        kv_log(KV_LOG_WARN, "out of memory accepting a client");
        return NULL;
    }
    c->srv = srv;
    if (uv_tcp_init(srv->loop, &c->tcp) != 0) {
        free(c);
        return NULL;
    }
    c->id = ++srv->next_conn_id;
    c->authenticated = srv->requirepass.len == 0;
    c->counted = counted;
    kv_buf_init(&c->in);
    kv_buf_init(&c->out);
    kv_buf_init(&c->inflight);
    resp_parser_init(&c->parser, srv->limits);
    c->next = srv->conns;
    if (srv->conns) srv->conns->prev = c;
    srv->conns = c;
    if (counted) srv->nconns++;
    int r = uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&c->tcp);
    if (r != 0) {
        kv_log(KV_LOG_WARN, "accept failed: %s", uv_strerror(r));
        conn_close(c);
        return NULL;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    strcpy(c->peer, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        char ip[48] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
        snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
    }
    note_activity(c);
    start_reading(c);
    return c;
}

void conn_hold_replies_until(conn *c, uint64_t idx) { c->reply_waits_for = idx; }

void conn_block(conn *c) { c->blocked = 1; }

void conn_unblock(conn *c) {
    c->blocked = 0;
    if (c->closing) return;
    conn_flush(c);
    if (!c->paused) start_reading(c);
    process_input(c);
}

void conn_release_replies(server *srv, uint64_t upto) {
    if (upto <= srv->acked_upto) return;
    srv->acked_upto = upto;
    conn *next;
    for (conn *c = srv->conns; c; c = next) {
        next = c->next; /* flushing may close c */
        if (c->reply_waits_for && c->reply_waits_for <= upto) {
            c->reply_waits_for = 0;
            conn_flush(c);
            conn_resume(c);
        }
    }
}
