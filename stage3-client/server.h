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

    /* write-ahead log and durability (durability.c) */
    wal wal;
    int lock_fd;               /* holds <data-dir>/LOCK; -1 until taken */
    int wal_ready;             /* wal_open succeeded */
    wal_replay_stats replay;
    fsync_policy fsync;
    uv_prepare_t before_poll;  /* writes buffered records once per loop iteration */
    uv_timer_t cron;           /* once a second: everysec fsync, compaction check */
    uv_work_t sync_req;
    int syncing;               /* an fdatasync is running on a worker thread */
    int sync_fd;
    int sync_err;
    uint64_t sync_target;      /* last record the running fdatasync covers */
    uint64_t synced_index;     /* last record known durable */
    uint64_t durable_seq;      /* held replies up to this record have been released */
    uint64_t last_fsync_ms;    /* wall clock */

    /* compaction (compaction.c) */
    uv_signal_t sigchld;
    int compact_requested;
    int compact_pid;
    uint64_t compact_upto;
    uint64_t compact_started_ms;
    uint64_t compactions_done;
} server;

/* Sets up the loop, store, listener and signals. Logs and returns -1 on failure. */
int server_init(server *srv, const server_config *cfg);
/* Runs until a graceful shutdown completes. */
int server_run(server *srv);
void server_free(server *srv);

void server_begin_shutdown(server *srv, const char *why);

#endif
