/* io.c - the client's socket. Connecting is non-blocking, bounded by poll.
 * After that the socket is blocking with kernel timeouts (SO_RCVTIMEO): a
 * read costs one system call, as in hiredis, where polling first would
 * double the system calls per reply. Writes are non-blocking so that, when
 * the socket buffer fills during a long pipeline, we can wait for either
 * direction and read the replies that are holding the server up.
 * Any failure that leaves the connection out of step closes it here, so
 * the next call starts on a fresh connection. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client_internal.h"

#define READ_CHUNK (64 * 1024) /* free space offered to each recv */

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* -1 means no deadline (a timeout of 0 waits forever). */
static long long deadline_after(int ms) { return ms > 0 ? now_ms() + ms : -1; }

/* Polls fd until deadline. Returns the revents (0 on timeout), or -1 with
 * errno set. */
static int wait_fd(int fd, short events, long long deadline) {
    for (;;) {
        int timeout = -1;
        if (deadline >= 0) {
            long long left = deadline - now_ms();
            if (left <= 0) return 0;
            timeout = left > 1000000 ? 1000000 : (int)left;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, timeout);
        if (r > 0) return p.revents;
        if (r < 0 && errno != EINTR) return -1;
        /* r == 0 before the deadline (a clamped wait) or EINTR: wait again. */
    }
}

void io_close(kv_client *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    buf_clear(&c->out);
    buf_clear(&c->in);
    memset(&c->scan, 0, sizeof c->scan);
    c->pending = 0;
    c->send_error = 0;
}

/* Socket options for an established connection. 0, or -1 with errno. */
static int configure(const kv_client *c, int fd) {
    int one = 1;
    /* Requests are small and we wait for each reply: do not let Nagle hold them. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) return -1;
    struct timeval rt = {c->opts.read_timeout_ms / 1000, (c->opts.read_timeout_ms % 1000) * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof rt) != 0) return -1;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) return -1;
    return 0;
}

/* One address: non-blocking connect, then poll for writability. Returns
 * the fd, -1 (refused or failed; why says so) or -2 (timed out). */
static int try_connect(const kv_client *c, const struct addrinfo *ai, long long deadline, char *why,
                       size_t whylen) {
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
        int r = wait_fd(fd, POLLOUT, deadline);
        if (r == 0) {
            snprintf(why, whylen, "timed out after %d ms", c->opts.connect_timeout_ms);
            close(fd);
            return -2;
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (r < 0) {
            err = errno;
        } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            err = errno;
        }
        if (err != 0) {
            snprintf(why, whylen, "%s", strerror(err));
            close(fd);
            return -1;
        }
    }
    if (configure(c, fd) != 0) {
        snprintf(why, whylen, "setting socket options: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Whether an idle connection is still usable: no EOF, no error, and no
 * bytes nobody asked for. */
static int still_open(const kv_client *c) {
    char b;
    ssize_t r = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

kv_err io_ensure_connected(kv_client *c) {
    /* LAB reconnect: before reusing an idle connection, check the server has not closed it; if so, replace it */
    if (c->fd >= 0) {
        /* With no reply owed, reconnecting is safe: no command is in doubt. */
        if (c->pending > 0 || now_ms() - c->last_io_ms < KV_IDLE_CHECK_MS || still_open(c)) return KV_OK;
        io_close(c);
    }
    /* END LAB */
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(c->host, port, &hints, &res);
    if (g != 0) {
        if (g == EAI_MEMORY) return client_fail(c, KV_ERR_NOMEM, "out of memory resolving %s", c->host);
        return client_fail(c, KV_ERR_CONNECT, "cannot resolve %s: %s", c->host,
                           g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
    }
    /* One deadline for the whole connect, however many addresses the name has. */
    long long deadline = deadline_after(c->opts.connect_timeout_ms);
    char why[160] = "no usable address";
    int timed_out = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = try_connect(c, ai, deadline, why, sizeof why);
        if (fd >= 0) {
            c->fd = fd;
            c->last_io_ms = now_ms();
            break;
        }
        timed_out = fd == -2;
        if (timed_out) break;
    }
    freeaddrinfo(res);
    if (c->fd < 0)
        return client_fail(c, timed_out ? KV_ERR_TIMEOUT : KV_ERR_CONNECT, "cannot connect to %s:%d: %s", c->host,
                           c->port, why);
    return KV_OK;
}

/* The connection is gone: close it and say how. err is the errno, or 0 when
 * the server closed it in an orderly way. */
static kv_err dropped(kv_client *c, int err) {
    char note[128] = "";
    if (c->send_error > 0)
        snprintf(note, sizeof note, " (sending the request had failed: %s)", strerror(c->send_error));
    else if (c->send_error < 0)
        snprintf(note, sizeof note, " (before the whole request was sent)");
    if (err)
        client_fail(c, KV_ERR_DROPPED, "connection to %s:%d dropped while waiting for a reply: %s%s", c->host,
                    c->port, strerror(err), note);
    else
        client_fail(c, KV_ERR_DROPPED, "connection to %s:%d closed by the server while waiting for a reply%s",
                    c->host, c->port, note);
    io_close(c);
    return KV_ERR_DROPPED;
}

/* Reads whatever has arrived without blocking. 1: read something or nothing
 * was there; 0: the server closed; -1: error (errno); -2: out of memory. */
static int read_available(kv_client *c) {
    for (;;) {
        if (buf_reserve(&c->in, READ_CHUNK) != 0) return -2;
        ssize_t r = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, MSG_DONTWAIT);
        if (r > 0) {
            c->in.len += (size_t)r;
            continue;
        }
        if (r == 0) return 0;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
        return -1;
    }
}

/* The server stopped taking our bytes (closed or reset). Stop sending: the
 * rest of the request cannot arrive. The replies it sent first, possibly an
 * error saying why it closed, are still to be read. */
static void stop_sending(kv_client *c, int err) {
    c->send_error = err;
    buf_clear(&c->out);
}

kv_err io_flush(kv_client *c) {
    long long deadline = -1;
    int waiting = 0;
    while (c->out.len > c->out.start) {
        ssize_t w = send(c->fd, c->out.data + c->out.start, c->out.len - c->out.start, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            c->out.start += (size_t)w;
            waiting = 0; /* progress: the write timeout starts again */
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            stop_sending(c, errno);
            return KV_OK;
        }
        /* The socket buffer is full. Wait for room, reading replies as they
         * come: a server that stops reading until its replies drain would
         * otherwise wait for us while we wait for it. */
        if (!waiting) {
            deadline = deadline_after(c->opts.write_timeout_ms);
            waiting = 1;
        }
        int ev = wait_fd(c->fd, POLLOUT | POLLIN, deadline);
        if (ev == 0) {
            client_fail(c, KV_ERR_TIMEOUT, "write to %s:%d timed out after %d ms (the server is not reading)",
                        c->host, c->port, c->opts.write_timeout_ms);
            io_close(c);
            return KV_ERR_TIMEOUT;
        }
        if (ev < 0) return dropped(c, errno);
        if (ev & (POLLIN | POLLHUP | POLLERR)) {
            int r = read_available(c);
            if (r == -2) {
                client_fail(c, KV_ERR_NOMEM, "out of memory reading replies");
                io_close(c);
                return KV_ERR_NOMEM;
            }
            if (r <= 0) {
                stop_sending(c, r == 0 ? -1 : errno);
                return KV_OK;
            }
        }
    }
    buf_clear(&c->out);
    c->last_io_ms = now_ms();
    return KV_OK;
}

kv_err io_read_more(kv_client *c) {
    if (c->fd < 0) return client_fail(c, KV_ERR_DROPPED, "not connected to %s:%d", c->host, c->port);
    if (buf_reserve(&c->in, READ_CHUNK) != 0) {
        client_fail(c, KV_ERR_NOMEM, "out of memory reading a reply");
        io_close(c); /* the reply cannot be skipped: the connection is out of step */
        return KV_ERR_NOMEM;
    }
    for (;;) {
        ssize_t r = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
        if (r > 0) {
            c->in.len += (size_t)r;
            c->last_io_ms = now_ms();
            return KV_OK;
        }
        if (r == 0) return dropped(c, 0);
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            client_fail(c, KV_ERR_TIMEOUT, "no reply from %s:%d within %d ms", c->host, c->port,
                        c->opts.read_timeout_ms);
            io_close(c);
            return KV_ERR_TIMEOUT;
        }
        return dropped(c, errno);
    }
}
