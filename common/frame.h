/* frame.h - framing of peer messages: a u32 big-endian payload length, then
 * the payload, one protobuf-c PeerMessage (common/proto/peer.proto).
 *
 * The decoder is incremental: feed it the bytes of one link as they arrive,
 * in chunks of any size, and it hands back whole messages. The length is
 * checked against the limit before a byte of the payload is stored, and the
 * payload buffer grows only as bytes arrive, so a peer that announces a huge
 * frame and sends nothing costs nothing. Any error ends the link: the decoder
 * stays in the error state and says why in words fit for a log line. */
#ifndef KV_FRAME_H
#define KV_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "peer.pb-c.h"

#define KV_FRAME_HEADER_LEN 4
/* Default payload limit: above the largest request a stage accepts (16 MiB
 * by default) plus the record around it, with room for a batch. */
#define KV_FRAME_MAX_DEFAULT ((size_t)64 << 20)
/* Limit for a link whose peer has not yet proved the cluster secret: the
 * handshake messages are small, and protobuf-c's decoded form of a frame can
 * be 32 times its size on the wire (measured: a 1 MiB Records frame of empty
 * records decodes into 32 MiB), so a stranger must not get to send 64 MiB
 * (2 GiB decoded). Raise it with kv_frame_decoder_set_limit once the peer
 * has authenticated. */
#define KV_FRAME_HANDSHAKE_MAX ((size_t)4096)

typedef enum kv_frame_status {
    KV_FRAME_OK = 0,    /* a whole message was decoded (or encoded) */
    KV_FRAME_AGAIN,     /* every byte given was taken; a message needs more */
    KV_FRAME_EOVERSIZE, /* the length is above the limit */
    KV_FRAME_EEMPTY,    /* the length is 0: no message is empty on the wire */
    KV_FRAME_EDECODE,   /* the payload is not a PeerMessage */
    KV_FRAME_EUNKNOWN,  /* a PeerMessage, but of no type this build knows */
    KV_FRAME_ENOMEM,
} kv_frame_status;

typedef struct kv_frame_decoder {
    size_t max_payload;
    unsigned char hdr[KV_FRAME_HEADER_LEN];
    size_t hdr_have;        /* header bytes received for the current frame */
    size_t need;            /* payload length, once the header is complete */
    unsigned char *payload; /* owned; bytes of a payload split across chunks */
    size_t have, cap;
    kv_frame_status err;    /* KV_FRAME_OK until an error, then sticky */
    char error[160];        /* the reason, when err is set */
} kv_frame_decoder;

void kv_frame_decoder_init(kv_frame_decoder *d, size_t max_payload);
void kv_frame_decoder_free(kv_frame_decoder *d);
/* Applies from the next frame header on (a frame already announced keeps
 * the limit it was checked against). */
static inline void kv_frame_decoder_set_limit(kv_frame_decoder *d, size_t max_payload) {
    d->max_payload = max_payload;
}

/* Takes bytes from data[0, len) and sets *used to how many it took.
 *  KV_FRAME_OK: *out is a message the caller owns (kv_peer_message_free);
 *      call again with the rest (data + *used) before reading more.
 *  KV_FRAME_AGAIN: *used == len; no message yet.
 *  an error: the link is broken; kv_frame_error() says why. Every later
 *      call returns the same error. */
kv_frame_status kv_frame_decode(kv_frame_decoder *d, const void *data, size_t len, size_t *used,
                                Kv__PeerMessage **out);
static inline const char *kv_frame_error(const kv_frame_decoder *d) { return d->error; }
/* True between frames: no byte of a next frame has been taken. */
static inline int kv_frame_decoder_idle(const kv_frame_decoder *d) {
    return d->err == KV_FRAME_OK && d->hdr_have == 0;
}

/* Appends one frame holding m to b. KV_FRAME_OK; KV_FRAME_EOVERSIZE when m
 * packs to more than max_payload bytes; KV_FRAME_EUNKNOWN when m has no
 * type set (it would be an empty frame); KV_FRAME_ENOMEM. b is unchanged on
 * error. */
kv_frame_status kv_frame_append(kv_buf *b, const Kv__PeerMessage *m, size_t max_payload);

void kv_peer_message_free(Kv__PeerMessage *m);
/* "Hello", "Records"...: the message's type for logs; "none" when unset. */
const char *kv_peer_message_name(const Kv__PeerMessage *m);
/* A short name for a status: "ok", "oversized frame"... */
const char *kv_frame_status_name(kv_frame_status st);

#endif
