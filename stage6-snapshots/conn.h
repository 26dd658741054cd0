/* conn.h - one client connection: reads bytes, parses requests, runs
 * commands, writes replies, and applies backpressure. */
#ifndef STAGE_CONN_H
#define STAGE_CONN_H

#include <uv.h>

#include "buf.h"
#include "resp_parser.h"

typedef struct server server;

struct conn {
    uv_tcp_t tcp; /* first, so a uv_handle_t* is a conn* */
    server *srv;
    uint64_t id;
    char peer[64];
    kv_buf in;       /* bytes read, not yet parsed into complete requests */
    kv_buf out;      /* replies not yet handed to the kernel */
    kv_buf inflight; /* bytes owned by the uv_write in progress */
    uv_write_t wreq;
    resp_parser parser;
    int writing;    /* a uv_write is in progress */
    int reading;    /* uv_read_start is active */
    int paused;     /* reading stopped for backpressure (too much unsent output) */
    int close_after_flush;
    int closing;    /* uv_close called */
    int counted;    /* counts toward max-clients */
    size_t unsent_at_grace; /* conn_unsent when marked close-after-flush, then at each grace check */
    /* Output is held until the record at this index may be acknowledged
     * (with --fsync always: until it is durable): a reply must never promise
     * a write the disk does not have yet. Replies after it in the pipeline
     * wait too, so the client still sees them in order. 0: nothing held. */
    uint64_t reply_waits_for;
    uint64_t last_activity_ms; /* loop time of the last byte read or written (--timeout) */
    uint64_t last_write_index; /* this client's last logged write (for WAIT) */
    int authenticated;         /* AUTH succeeded, or no password is set */
    int blocked;               /* runs nothing more until conn_unblock (WAIT) */
    int waiting;               /* a WAIT is in progress (wait.c) */
    uint64_t wait_index;
    long long wait_needed;
    uint64_t wait_deadline_ms; /* loop time; 0: none */
    struct conn *prev, *next;
};
typedef struct conn conn;

/* Accepts a pending connection from the listener. Returns NULL on failure. */
conn *conn_accept(server *srv, int counted);
/* Appends replies then asks to close once they are written. */
void conn_close_after_flush(conn *c);
/* Reply bytes not yet taken by the kernel (buffered, or left of a write in
 * progress): during a shutdown it only shrinks, as long as the client reads. */
size_t conn_unsent(const conn *c);
/* Closes now, dropping unwritten output. */
void conn_close(conn *c);
/* Starts writing whatever is in c->out. */
void conn_flush(conn *c);
/* Closes c if it has made no progress for --timeout seconds and is not
 * waiting on the server (server.c sweeps every second). */
void conn_check_idle(conn *c, uint64_t now_ms);
/* Resumes reading (and runs requests already buffered) for a client paused
 * by backpressure, once its output has drained. */
void conn_resume(conn *c);
/* Stops running c's requests until conn_unblock (WAIT); up to 64 KiB of
 * further input is read meanwhile. */
void conn_block(conn *c);
/* Flushes c's output and runs its buffered requests again. */
void conn_unblock(conn *c);
/* c's replies from now on wait until record idx may be acknowledged. */
void conn_hold_replies_until(conn *c, uint64_t idx);
/* Records up to upto may now be acknowledged: every connection waiting for
 * no more than that gets its replies flushed. */
void conn_release_replies(server *srv, uint64_t upto);

#endif
