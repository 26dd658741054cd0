/* peer_link.h - one framed connection between two nodes (the peer port):
 * bytes in through the frame decoder, whole PeerMessages out to the owner;
 * messages out through one buffered uv_write at a time. Both ends use it:
 * the leader for each follower it serves (leader.c), a follower for its
 * link to the leader (follower.c).
 *
 * A bad frame (garbage, oversized, an unknown type) closes the link with the
 * decoder's reason in the log; nothing else is affected. */
#ifndef STAGE_PEER_LINK_H
#define STAGE_PEER_LINK_H

#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "frame.h"

typedef struct peer_link peer_link;

#define PEER_LINK_PAUSE 2

typedef struct peer_link_ops {
    /* A whole message arrived (the link frees it afterwards). Return 0 to
     * go on; PEER_LINK_PAUSE to stop reading (later bytes stay buffered
     * until peer_link_resume); any other value when the handler closed
     * the link. */
    int (*on_message)(peer_link *l, const Kv__PeerMessage *m);
    /* Everything queued has been handed to the kernel: room for more. May be NULL. */
    void (*on_drain)(peer_link *l);
    /* Connect finished (status 0 or a libuv error). Only for peer_link_connect. */
    void (*on_connect)(peer_link *l, int status);
    /* The link is fully closed; the owner may free the memory holding it. */
    void (*on_closed)(peer_link *l);
} peer_link_ops;

struct peer_link {
    uv_tcp_t tcp; /* first: a uv_handle_t* is a peer_link* */
    uv_connect_t connect_req;
    uv_write_t wreq;
    const peer_link_ops *ops;
    void *owner;
    char addr[64]; /* the other end, for logs */
    kv_frame_decoder dec;
    kv_buf in;       /* bytes read, handed to the decoder */
    kv_buf out;      /* frames not yet handed to libuv */
    kv_buf inflight; /* bytes owned by the uv_write in progress */
    int writing, reading, closing, paused;
    int first_byte; /* of everything received, -1 before any: a hint when frames are bad */
    int quiet;      /* close without the log line (the owner logged already) */
    uint64_t last_recv_ms; /* loop time of the last message received */
    uint64_t bytes_sent, bytes_received;
};

/* Sets up l on loop (uv_tcp_init). */
int peer_link_init(peer_link *l, uv_loop_t *loop, const peer_link_ops *ops, void *owner);
/* Accepts a pending connection on listener and starts reading. */
int peer_link_accept(peer_link *l, uv_stream_t *listener);
/* Connects to addr; ops->on_connect reports the outcome, then reading starts. */
int peer_link_connect(peer_link *l, const struct sockaddr *addr, const char *name);
/* Queues m and starts writing. Returns 0, or -1 (the link is being closed). */
int peer_link_send(peer_link *l, const Kv__PeerMessage *m);
/* Queues pre-encoded frame bytes (Records built by the caller). */
int peer_link_send_raw(peer_link *l, const void *p, size_t n);
/* Reads again after a PEER_LINK_PAUSE, first handing over what is buffered. */
void peer_link_resume(peer_link *l);
/* Bytes queued and not yet written to the kernel. */
size_t peer_link_pending(const peer_link *l);
/* Until the other end is trusted (it proved the cluster secret, or none is
 * configured) frames are limited to KV_FRAME_HANDSHAKE_MAX: a decoded
 * message can be many times its wire size. This lifts the limit. */
void peer_link_trust(peer_link *l);
/* Logs why, then closes (unwritten output is dropped). */
void peer_link_close(peer_link *l, const char *why);
/* Sends Error{reason} (best effort) and closes: the other end logs the reason. */
void peer_link_fail(peer_link *l, const char *reason);
/* The same for a normal end (shutdown, promotion): logged as information, not a warning. */
void peer_link_leave(peer_link *l, const char *reason);

/* Text a peer sent (a host in its Hello, an Error's reason, a history id)
 * before anyone checked who it is: control and non-ASCII bytes become '?',
 * so that a peer cannot forge log lines or a READONLY reply. */
void peer_text_clean(char *s);
/* A cleaned copy of src in buf (truncated to n - 1 bytes); returns buf. */
const char *peer_text(const char *src, char *buf, size_t n);

#endif
