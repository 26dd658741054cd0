/* fake_server.c - the scripted fake RESP server (see fake_server.h): an
 * accept loop in a thread that runs one handler per connection, and the
 * small request reader the handlers share. */
#include "fake_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct fake_server {
    int listen_fd;
    int stop_pipe[2]; /* written by fake_stop to wake the accept loop */
    int port;
    fake_handler fn;
    void *arg;
    pthread_mutex_t lock;
    int accepted;
    int finished;
    pthread_t thread;
};

static void *accept_loop(void *p) {
    fake_server *f = p;
    for (;;) {
        struct pollfd fds[2] = {{.fd = f->listen_fd, .events = POLLIN}, {.fd = f->stop_pipe[0], .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return NULL;
        }
        if (fds[1].revents) return NULL;
        int fd = accept(f->listen_fd, NULL, NULL);
        if (fd < 0) continue;
        pthread_mutex_lock(&f->lock);
        int index = f->accepted++;
        pthread_mutex_unlock(&f->lock);
        f->fn(fd, index, f->arg);
        close(fd);
        pthread_mutex_lock(&f->lock);
        f->finished++;
        pthread_mutex_unlock(&f->lock);
    }
}

fake_server *fake_start(fake_handler fn, void *arg) {
    fake_server *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->fn = fn;
    f->arg = arg;
    pthread_mutex_init(&f->lock, NULL);
    f->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (f->listen_fd < 0 || bind(f->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(f->listen_fd, 16) != 0 || getsockname(f->listen_fd, (struct sockaddr *)&a, &alen) != 0 ||
        pipe(f->stop_pipe) != 0) {
        perror("fake server");
        if (f->listen_fd >= 0) close(f->listen_fd);
        free(f);
        return NULL;
    }
    f->port = ntohs(a.sin_port);
    if (pthread_create(&f->thread, NULL, accept_loop, f) != 0) {
        fprintf(stderr, "fake server: cannot start its thread\n");
        close(f->listen_fd);
        close(f->stop_pipe[0]);
        close(f->stop_pipe[1]);
        free(f);
        return NULL;
    }
    return f;
}

int fake_port(const fake_server *f) { return f->port; }

int fake_connections(fake_server *f) {
    pthread_mutex_lock(&f->lock);
    int n = f->accepted;
    pthread_mutex_unlock(&f->lock);
    return n;
}

int fake_finished(fake_server *f) {
    pthread_mutex_lock(&f->lock);
    int n = f->finished;
    pthread_mutex_unlock(&f->lock);
    return n;
}

void fake_stop(fake_server *f) {
    if (!f) return;
    if (write(f->stop_pipe[1], "x", 1) != 1) perror("fake server stop");
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
    close(f->stop_pipe[0]);
    close(f->stop_pipe[1]);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

void fake_conn_init(fake_conn *c, int fd) {
    memset(c, 0, sizeof *c);
    c->fd = fd;
}

void fake_conn_free(fake_conn *c) {
    free(c->buf);
    memset(c, 0, sizeof *c);
}

/* Reads "<prefix><number>\r\n" at *pos. 1 parsed, 0 incomplete, -1 bad. */
static int header(const fake_conn *c, size_t *pos, char prefix, long long *value) {
    if (*pos >= c->len) return 0;
    if (c->buf[*pos] != prefix) return -1;
    const char *cr = memchr(c->buf + *pos, '\r', c->len - *pos);
    if (!cr || (size_t)(cr - c->buf) + 1 >= c->len) return 0;
    *value = strtoll(c->buf + *pos + 1, NULL, 10);
    *pos = (size_t)(cr - c->buf) + 2;
    return 1;
}

/* Length of the whole request at the front of the buffer (0: incomplete,
 * -1: not multibulk), and where its last argument is. */
static long long complete_request(const fake_conn *c, size_t *last_off, size_t *last_len) {
    size_t pos = 0;
    long long argc, len = 0;
    int r = header(c, &pos, '*', &argc);
    if (r <= 0) return r;
    for (long long i = 0; i < argc; i++) {
        r = header(c, &pos, '$', &len);
        if (r <= 0) return r;
        if (c->len - pos < (size_t)len + 2) return 0;
        *last_off = pos;
        *last_len = (size_t)len;
        pos += (size_t)len + 2;
    }
    return (long long)pos;
}

/* Reads more bytes into the buffer. 1: got some; 0: the client closed;
 * -1: error. */
static int read_some(fake_conn *c) {
    if (c->cap - c->len < 65536) {
        size_t cap = c->cap ? c->cap * 2 : 131072;
        char *p = realloc(c->buf, cap);
        if (!p) return -1;
        c->buf = p;
        c->cap = cap;
    }
    for (;;) {
        ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (n == 0) return 0;
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        c->len += (size_t)n;
        return 1;
    }
}

int fake_read_request(fake_conn *c, char **arg, size_t *alen) {
    for (;;) {
        size_t off = 0, len = 0;
        long long whole = complete_request(c, &off, &len);
        if (whole < 0) return -1;
        if (whole > 0) {
            if (arg) {
                *arg = malloc(len + 1);
                if (!*arg) return -1;
                memcpy(*arg, c->buf + off, len);
                (*arg)[len] = '\0';
            }
            if (alen) *alen = len;
            memmove(c->buf, c->buf + whole, c->len - (size_t)whole);
            c->len -= (size_t)whole;
            return 1;
        }
        int r = read_some(c);
        if (r <= 0) return r;
    }
}

int fake_read_command(fake_conn *c, char **text) {
    *text = NULL;
    size_t off = 0, len = 0;
    for (;;) {
        long long whole = complete_request(c, &off, &len);
        if (whole < 0) return -1;
        if (whole > 0) break;
        int r = read_some(c);
        if (r <= 0) return r;
    }
    /* The whole request is buffered (and valid): join its arguments. */
    size_t pos = 0;
    long long argc, alen;
    header(c, &pos, '*', &argc);
    char *out = malloc(c->len + 1); /* the arguments are shorter than the request */
    if (!out) return -1;
    size_t o = 0;
    for (long long i = 0; i < argc; i++) {
        header(c, &pos, '$', &alen);
        if (i > 0) out[o++] = ' ';
        memcpy(out + o, c->buf + pos, (size_t)alen);
        o += (size_t)alen;
        pos += (size_t)alen + 2;
    }
    out[o] = '\0';
    fake_read_request(c, NULL, NULL); /* consumes it: it is all buffered, so no read */
    *text = out;
    return 1;
}

int fake_write(int fd, const void *p, size_t n) {
    const char *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int fake_write_str(int fd, const char *s) { return fake_write(fd, s, strlen(s)); }

void fake_wait_closed(int fd) {
    char buf[4096];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, 10000);
        if (r == 0) return; /* the test failed elsewhere; do not hang */
        if (r < 0) {
            if (errno == EINTR) continue;
            return;
        }
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EINTR)) return;
    }
}
