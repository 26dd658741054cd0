/* frame.c - peer message framing: incremental decoder and encoder (see frame.h). */
#include "frame.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A split payload buffer above this size is released after its frame, so one
 * large full-copy chunk does not pin its memory for the life of the link. */
#define KEEP_PAYLOAD_CAP ((size_t)1 << 20)

void kv_frame_decoder_init(kv_frame_decoder *d, size_t max_payload) {
    memset(d, 0, sizeof *d);
    d->max_payload = max_payload;
}

void kv_frame_decoder_free(kv_frame_decoder *d) {
    free(d->payload);
    d->payload = NULL;
    d->have = d->cap = 0;
}

static kv_frame_status fail(kv_frame_decoder *d, kv_frame_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static kv_frame_status fail(kv_frame_decoder *d, kv_frame_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->error, sizeof d->error, fmt, ap);
    va_end(ap);
    d->err = st;
    return st;
}

/* protobuf-c checks that a tag is not 0 on its first byte only, so a field
 * number 0 spelled in two bytes (80 00) is accepted and kept as an unknown
 * field, which packs back as a single 00 that protobuf-c then refuses: a
 * message that cannot be re-encoded (a follower writing a received record to
 * its own log would write one it cannot read back). Field numbers start at 1:
 * such a payload is not protobuf. Found by fuzz_peer_frame. */
static int has_field_zero(const ProtobufCMessage *m) {
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0) return 1;
    const ProtobufCMessageDescriptor *desc = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *sub = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t j = 0; j < n; j++)
                if (sub[j] && has_field_zero(sub[j])) return 1;
            continue;
        }
        /* A oneof's members share one pointer: only the set one is valid. */
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(base + f->offset);
        if (sub && has_field_zero(sub)) return 1;
    }
    return 0;
}

/* Unpacks one payload; a message of a type this build does not know is an
 * error here, so callers only ever see the types they handle. */
static kv_frame_status unpack(kv_frame_decoder *d, const unsigned char *p, size_t n, Kv__PeerMessage **out) {
    Kv__PeerMessage *m = kv__peer_message__unpack(NULL, n, p);
    if (!m) return fail(d, KV_FRAME_EDECODE, "undecodable PeerMessage in a frame of %zu bytes", n);
    if (has_field_zero(&m->base)) {
        kv__peer_message__free_unpacked(m, NULL);
        return fail(d, KV_FRAME_EDECODE, "undecodable PeerMessage (field number 0) in a frame of %zu bytes", n);
    }
    if (m->msg_case == KV__PEER_MESSAGE__MSG__NOT_SET) {
        /* Every field of PeerMessage is in the oneof, so a non-empty payload
         * with none set holds a field protobuf-c kept as unknown: its number
         * names the type (a later stage's message, or garbage that parsed). */
        unsigned tag = m->base.n_unknown_fields > 0 ? (unsigned)m->base.unknown_fields[0].tag : 0;
        kv__peer_message__free_unpacked(m, NULL);
        return fail(d, KV_FRAME_EUNKNOWN, "unknown peer message type (field %u) in a frame of %zu bytes", tag, n);
    }
    *out = m;
    return KV_FRAME_OK;
}

static void next_frame(kv_frame_decoder *d) {
    d->hdr_have = 0;
    d->need = 0;
    d->have = 0;
    if (d->cap > KEEP_PAYLOAD_CAP) kv_frame_decoder_free(d);
}

/* Makes room for at least `want` payload bytes, growing geometrically but
 * never past the frame's announced length. */
static int grow(kv_frame_decoder *d, size_t want) {
    if (want <= d->cap) return 0;
    size_t cap = d->cap ? d->cap : 4096;
    while (cap < want) cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    if (cap > d->need) cap = d->need;
    unsigned char *p = realloc(d->payload, cap);
    if (!p) return -1;
    d->payload = p;
    d->cap = cap;
    return 0;
}

kv_frame_status kv_frame_decode(kv_frame_decoder *d, const void *data, size_t len, size_t *used,
                                Kv__PeerMessage **out) {
    const unsigned char *p = data;
    size_t off = 0;
    *used = 0;
    *out = NULL;
    if (d->err != KV_FRAME_OK) return d->err;

    if (d->hdr_have < KV_FRAME_HEADER_LEN) {
        while (d->hdr_have < KV_FRAME_HEADER_LEN && off < len) d->hdr[d->hdr_have++] = p[off++];
        *used = off;
        if (d->hdr_have < KV_FRAME_HEADER_LEN) return KV_FRAME_AGAIN;
        uint32_t n = (uint32_t)d->hdr[0] << 24 | (uint32_t)d->hdr[1] << 16 | (uint32_t)d->hdr[2] << 8 | d->hdr[3];
        if (n == 0) return fail(d, KV_FRAME_EEMPTY, "empty frame (length 0)");
        if (n > d->max_payload)
            return fail(d, KV_FRAME_EOVERSIZE, "frame of %lu bytes exceeds the limit of %zu bytes",
                        (unsigned long)n, d->max_payload);
        d->need = n;
    }

    /* The whole payload is in this chunk and nothing is buffered: decode it
     * where it lies (the common case on a busy link: no copy). */
    if (d->have == 0 && len - off >= d->need) {
        size_t n = d->need;
        kv_frame_status st = unpack(d, p + off, n, out);
        *used = off + n;
        if (st == KV_FRAME_OK) next_frame(d);
        return st;
    }

    size_t take = d->need - d->have;
    if (take > len - off) take = len - off;
    if (grow(d, d->have + take) != 0)
        return fail(d, KV_FRAME_ENOMEM, "out of memory buffering a frame of %zu bytes", d->need);
    if (take) memcpy(d->payload + d->have, p + off, take);
    d->have += take;
    off += take;
    *used = off;
    if (d->have < d->need) return KV_FRAME_AGAIN;
    kv_frame_status st = unpack(d, d->payload, d->need, out);
    if (st == KV_FRAME_OK) next_frame(d);
    return st;
}

kv_frame_status kv_frame_append(kv_buf *b, const Kv__PeerMessage *m, size_t max_payload) {
    if (m->msg_case == KV__PEER_MESSAGE__MSG__NOT_SET) return KV_FRAME_EUNKNOWN;
    size_t n = protobuf_c_message_get_packed_size(&m->base);
    if (n > max_payload || n > UINT32_MAX) return KV_FRAME_EOVERSIZE;
    if (kv_buf_reserve(b, KV_FRAME_HEADER_LEN + n) != 0) return KV_FRAME_ENOMEM;
    unsigned char *w = (unsigned char *)kv_buf_wptr(b);
    w[0] = (unsigned char)(n >> 24);
    w[1] = (unsigned char)(n >> 16);
    w[2] = (unsigned char)(n >> 8);
    w[3] = (unsigned char)n;
    kv__peer_message__pack(m, w + KV_FRAME_HEADER_LEN); /* straight into the buffer */
    kv_buf_commit(b, KV_FRAME_HEADER_LEN + n);
    return KV_FRAME_OK;
}

void kv_peer_message_free(Kv__PeerMessage *m) {
    if (m) kv__peer_message__free_unpacked(m, NULL);
}

const char *kv_peer_message_name(const Kv__PeerMessage *m) {
    switch (m->msg_case) {
    case KV__PEER_MESSAGE__MSG_HELLO: return "Hello";
    case KV__PEER_MESSAGE__MSG_CHALLENGE: return "Challenge";
    case KV__PEER_MESSAGE__MSG_CHALLENGE_RESPONSE: return "ChallengeResponse";
    case KV__PEER_MESSAGE__MSG_SYNC_REQUEST: return "SyncRequest";
    case KV__PEER_MESSAGE__MSG_FULL_COPY_BEGIN: return "FullCopyBegin";
    case KV__PEER_MESSAGE__MSG_FULL_COPY_CHUNK: return "FullCopyChunk";
    case KV__PEER_MESSAGE__MSG_FULL_COPY_END: return "FullCopyEnd";
    case KV__PEER_MESSAGE__MSG_STREAM_FROM: return "StreamFrom";
    case KV__PEER_MESSAGE__MSG_RECORDS: return "Records";
    case KV__PEER_MESSAGE__MSG_ACK: return "Ack";
    case KV__PEER_MESSAGE__MSG_ERROR: return "Error";
    case KV__PEER_MESSAGE__MSG_SNAPSHOT_CHUNK: return "SnapshotChunk";
    case KV__PEER_MESSAGE__MSG_SNAPSHOT_ACK: return "SnapshotAck";
    case KV__PEER_MESSAGE__MSG__NOT_SET: break;
    default: break;
    }
    return "none";
}

const char *kv_frame_status_name(kv_frame_status st) {
    switch (st) {
    case KV_FRAME_OK: return "ok";
    case KV_FRAME_AGAIN: return "need more bytes";
    case KV_FRAME_EOVERSIZE: return "oversized frame";
    case KV_FRAME_EEMPTY: return "empty frame";
    case KV_FRAME_EDECODE: return "undecodable frame";
    case KV_FRAME_EUNKNOWN: return "unknown message type";
    case KV_FRAME_ENOMEM: return "out of memory";
    }
    return "?";
}
