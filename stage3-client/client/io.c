/* io.c - the client's socket: a non-blocking connect bounded by poll, then
 * a blocking socket whose kernel timeouts (SO_RCVTIMEO, SO_SNDTIMEO) bound
 * reads and writes. Blocking I/O costs one system call per read, as in
 * hiredis; polling first would double that on every reply. A dropped or
 * timed-out connection is closed here so the next call reconnects. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client_internal.h"

#define READ_CHUNK (64 * 1024)

int buf_reserve(byte_buf *b, size_t n) {
    if (b->cap - b->len >= n) return 0;
    if (b->start > 0) { /* reclaim consumed space first */
        memmove(b->data, b->data + b->start, b->len - b->start);
        b->len -= b->start;
        b->start = 0;
        if (b->cap - b->len >= n) return 0;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) {
        if (cap > (size_t)-1 / 2) return -1;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

void buf_free(byte_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline (-1: forever). 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, long long deadline) {
    for (;;) {
        int timeout = -1;
        if (deadline >= 0) {
            long long left = deadline - now_ms();
            if (left <= 0) return 0;
            timeout = (int)left;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, timeout);
        if (r > 0) return 1;
        if (r == 0) return 0;
        if (errno != EINTR) return -1;
    }
}

static long long deadline_after(int ms) { return ms > 0 ? now_ms() + ms : -1; }

void io_close(kv_client *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->out.start = c->out.len = 0;
    c->in.start = c->in.len = 0;
    c->pending = 0;
}

/* One address: non-blocking connect, then poll for writability. */
static int try_connect(kv_client *c, const struct addrinfo *ai, char *why, size_t whylen) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            snprintf(why, whylen, "%s", strerror(errno));
            close(fd);
            return -1;
        }
        int r = wait_fd(fd, POLLOUT, deadline_after(c->opts.connect_timeout_ms));
        if (r == 0) {
            snprintf(why, whylen, "timed out after %d ms", c->opts.connect_timeout_ms);
            close(fd);
            return -2;
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            snprintf(why, whylen, "%s", strerror(err ? err : errno));
            close(fd);
            return -1;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* requests are small; do not wait */
    struct timeval rt = {c->opts.read_timeout_ms / 1000, (c->opts.read_timeout_ms % 1000) * 1000};
    struct timeval wt = {c->opts.write_timeout_ms / 1000, (c->opts.write_timeout_ms % 1000) * 1000};
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof rt) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wt, sizeof wt) != 0) {
        snprintf(why, whylen, "socket options: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

kv_err io_ensure_connected(kv_client *c) {
    if (c->fd >= 0) return KV_OK;
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int g = getaddrinfo(c->host, port, &hints, &res);
    if (g != 0) return client_fail(c, KV_ERR_CONNECT, "cannot resolve %s: %s", c->host, gai_strerror(g));
    char why[128] = "no address";
    int timed_out = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = try_connect(c, ai, why, sizeof why);
        if (fd >= 0) {
            c->fd = fd;
            break;
        }
        timed_out = fd == -2;
    }
    freeaddrinfo(res);
    if (c->fd < 0)
        return client_fail(c, timed_out ? KV_ERR_TIMEOUT : KV_ERR_CONNECT, "cannot connect to %s:%d: %s", c->host,
                           c->port, why);
    return KV_OK;
}

static kv_err dropped(kv_client *c, const char *what, int err) {
    io_close(c);
    if (err) return client_fail(c, KV_ERR_DROPPED, "connection to %s:%d dropped while %s: %s", c->host, c->port,
                                what, strerror(err));
    return client_fail(c, KV_ERR_DROPPED, "connection to %s:%d closed by the server while %s", c->host, c->port,
                       what);
}

kv_err io_flush(kv_client *c) {
    while (c->out.len > c->out.start) {
        ssize_t w = send(c->fd, c->out.data + c->out.start, c->out.len - c->out.start, MSG_NOSIGNAL);
        if (w > 0) {
            c->out.start += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            io_close(c);
            return client_fail(c, KV_ERR_TIMEOUT, "write to %s:%d timed out after %d ms", c->host, c->port,
                               c->opts.write_timeout_ms);
        }
        return dropped(c, "writing", errno);
    }
    c->out.start = c->out.len = 0;
    return KV_OK;
}

kv_err io_read_more(kv_client *c) {
    if (buf_reserve(&c->in, READ_CHUNK) != 0) return client_fail(c, KV_ERR_NOMEM, "out of memory reading a reply");
    for (;;) {
        ssize_t r = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
        if (r > 0) {
            c->in.len += (size_t)r;
            return KV_OK;
        }
        if (r == 0) return dropped(c, "waiting for a reply", 0);
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            /* The reply may still come; the connection is out of step, so drop it. */
            io_close(c);
            return client_fail(c, KV_ERR_TIMEOUT, "no reply from %s:%d within %d ms", c->host, c->port,
                               c->opts.read_timeout_ms);
        }
        return dropped(c, "waiting for a reply", errno);
    }
}
