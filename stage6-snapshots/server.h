/* server.h - the server: one libuv loop thread owns the listener, every
 * connection, the store and the write-ahead log, so nothing here needs a
 * lock. Only fdatasync runs elsewhere, on a libuv worker thread, and it
 * touches nothing but a file descriptor. */
#ifndef STAGE_SERVER_H
#define STAGE_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "busy_poll.h"
#include "config.h"
#include "durability.h"
#include "peer_auth.h"
#include "node.h"
#include "resp_parser.h"
#include "slice.h"
#include "store.h"
#include "wal.h"

typedef struct conn conn;

typedef struct server_stats {
    uint64_t commands_processed;
    uint64_t connections_received;
    uint64_t rejected_connections;
    uint64_t protocol_errors;
    uint64_t idle_closes;        /* --timeout */
    uint64_t output_limit_closes; /* --max-output-bytes */
} server_stats;

typedef struct server {
    uv_loop_t *loop;
    server_config cfg;
    resp_limits limits;
    uv_tcp_t listener;
    uv_signal_t sigint, sigterm;
    uv_timer_t shutdown_timer;
    uv_timer_t idle_timer;       /* sweeps for idle clients once a second (--timeout) */
    kv_store store;
    conn *conns;          /* doubly linked list of open connections */
    long long nconns;     /* counted clients (rejected ones are not) */
    uint64_t next_conn_id;
    uint64_t start_ms;
    int shutting_down;
    server_stats stats;
    kv_slice *args;       /* reused argument array for the command being run */
    size_t args_cap;
    kv_busy_poll busy_poll;

    /* the write-ahead log, and who decides when its records are safe */
    wal wal;
    int lock_fd;               /* holds <data-dir>/LOCK; -1 until taken */
    int wal_ready;             /* wal_open succeeded */
    wal_replay_stats replay;
    durability durability;     /* durability.c */
    /* Replies to writes of records up to here have been released to their
     * clients (a connection whose reply_waits_for is beyond it holds its
     * output; see conn.h). */
    uint64_t acked_upto;

    node node;                 /* node.c: the Raft core and everything around it */
    char cluster_spec[128];    /* the one-node --cluster built from --bind/--port when none is given */
    kv_secret requirepass;     /* --requirepass-file; len 0: no AUTH needed */
} server;

/* Sets up the loop, store, listener and signals. Logs and returns -1 on failure. */
int server_init(server *srv, const server_config *cfg);
/* Runs until a graceful shutdown completes. */
int server_run(server *srv);
void server_free(server *srv);

void server_begin_shutdown(server *srv, const char *why);

/* 127.x, ::1 or localhost: only this machine can reach an address like it. */
int server_is_loopback(const char *addr);

#endif
