/* fake_server.h - a scripted RESP server in a thread, for client tests that
 * need a server to misbehave in one precise way. Each accepted connection is
 * handed to a handler function, one connection at a time, in order; when
 * the handler returns, the connection is closed. Handlers use the helpers
 * below to read whole requests and write canned bytes. */
#ifndef KV_TEST_FAKE_SERVER_H
#define KV_TEST_FAKE_SERVER_H

#include <stddef.h>

typedef struct fake_server fake_server;

/* index: 0 for the first connection, 1 for the next, ... */
typedef void (*fake_handler)(int fd, int index, void *arg);

/* Listens on a free loopback port. NULL on failure (message on stderr). */
fake_server *fake_start(fake_handler fn, void *arg);
int fake_port(const fake_server *f);
/* Connections accepted so far. */
int fake_connections(fake_server *f);
/* Connections whose handler has returned and which are closed. */
int fake_finished(fake_server *f);
/* Stops accepting, waits for the running handler to return, frees. */
void fake_stop(fake_server *f);

/* Requests read by a handler, parsed just enough to count them and to
 * find their last argument. */
typedef struct fake_conn {
    int fd;
    char *buf; /* bytes read and not yet consumed */
    size_t len, cap;
} fake_conn;

void fake_conn_init(fake_conn *c, int fd);
void fake_conn_free(fake_conn *c);
/* Reads until one whole multibulk request is buffered, removes it and
 * returns its last argument (malloc'd copy in *arg, length *alen; either
 * may be NULL if unwanted). 1: got one; 0: the client closed; -1: error or
 * a request that is not multibulk. */
int fake_read_request(fake_conn *c, char **arg, size_t *alen);
/* Like fake_read_request, but hands back the whole request as text, its
 * arguments joined by single spaces ("SET k v"), malloc'd in *text, for
 * handlers that answer by command and tests that check what was sent. */
int fake_read_command(fake_conn *c, char **text);
/* Writes all n bytes (blocking). 0, or -1 if the client went away. */
int fake_write(int fd, const void *p, size_t n);
int fake_write_str(int fd, const char *s);
/* Waits (up to 10 s) until the client closes its end. */
void fake_wait_closed(int fd);

#endif
