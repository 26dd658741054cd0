/* test_frame.c - peer message framing (common/frame.h): every message type
 * survives encode and decode; a stream of frames decodes the same however
 * it is split (at every byte boundary, byte by byte); each error (oversized,
 * empty, undecodable, unknown type) is reported with its reason, before any
 * payload is stored, and stays; the encoder refuses what it must. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"

/* --- messages of every type, as the stage 4 code will build them ---------- */

typedef struct samples {
    Kv__PeerMessage msg[11];
    Kv__Hello hello;
    Kv__Challenge challenge;
    Kv__ChallengeResponse response;
    Kv__SyncRequest sync;
    Kv__FullCopyBegin begin;
    Kv__FullCopyChunk chunk;
    Kv__FullCopyEnd end;
    Kv__StreamFrom stream;
    Kv__Records records;
    Kv__Ack ack;
    Kv__Error error;
    uint8_t nonce[32], mac[32], digest[16];
    ProtobufCBinaryData keys[3], values[3];
    Kv__LogRecord rec[2];
    Kv__LogRecord *recp[2];
    Kv__Command cmd[2];
    ProtobufCBinaryData delkeys[2];
} samples;

static ProtobufCBinaryData bin(const char *s, size_t n) {
    ProtobufCBinaryData b = {n, (uint8_t *)s};
    return b;
}

static void make_samples(samples *s) {
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < 11; i++) kv__peer_message__init(&s->msg[i]);
    for (size_t i = 0; i < 32; i++) s->nonce[i] = (uint8_t)(i * 7), s->mac[i] = (uint8_t)(255 - i);
    for (size_t i = 0; i < 16; i++) s->digest[i] = (uint8_t)(i + 1);

    kv__hello__init(&s->hello);
    s->hello.client_host = "127.0.0.1";
    s->hello.client_port = 7004;
    s->hello.role = KV__PEER_ROLE__FOLLOWER;
    s->hello.version = 1;
    s->msg[0].msg_case = KV__PEER_MESSAGE__MSG_HELLO, s->msg[0].hello = &s->hello;

    kv__challenge__init(&s->challenge);
    s->challenge.nonce.data = s->nonce, s->challenge.nonce.len = sizeof s->nonce;
    s->msg[1].msg_case = KV__PEER_MESSAGE__MSG_CHALLENGE, s->msg[1].challenge = &s->challenge;

    kv__challenge_response__init(&s->response);
    s->response.mac.data = s->mac, s->response.mac.len = sizeof s->mac;
    s->msg[2].msg_case = KV__PEER_MESSAGE__MSG_CHALLENGE_RESPONSE, s->msg[2].challenge_response = &s->response;

    kv__sync_request__init(&s->sync);
    s->sync.history_id = "5f1c0a2e9d";
    s->sync.last_index = 123456789012ULL;
    s->msg[3].msg_case = KV__PEER_MESSAGE__MSG_SYNC_REQUEST, s->msg[3].sync_request = &s->sync;

    kv__full_copy_begin__init(&s->begin);
    s->begin.history_id = "5f1c0a2e9d";
    s->begin.index = 42;
    s->begin.key_count = 3;
    s->msg[4].msg_case = KV__PEER_MESSAGE__MSG_FULL_COPY_BEGIN, s->msg[4].full_copy_begin = &s->begin;

    kv__full_copy_chunk__init(&s->chunk);
    s->keys[0] = bin("a", 1), s->keys[1] = bin("b\0c", 3), s->keys[2] = bin("", 0);
    s->values[0] = bin("1", 1), s->values[1] = bin("", 0), s->values[2] = bin("\r\n\0", 3);
    s->chunk.n_keys = s->chunk.n_values = 3;
    s->chunk.keys = s->keys, s->chunk.values = s->values;
    s->msg[5].msg_case = KV__PEER_MESSAGE__MSG_FULL_COPY_CHUNK, s->msg[5].full_copy_chunk = &s->chunk;

    kv__full_copy_end__init(&s->end);
    s->end.digest.data = s->digest, s->end.digest.len = sizeof s->digest;
    s->msg[6].msg_case = KV__PEER_MESSAGE__MSG_FULL_COPY_END, s->msg[6].full_copy_end = &s->end;

    kv__stream_from__init(&s->stream);
    s->stream.history_id = "5f1c0a2e9d";
    s->stream.index = 42;
    s->msg[7].msg_case = KV__PEER_MESSAGE__MSG_STREAM_FROM, s->msg[7].stream_from = &s->stream;

    kv__records__init(&s->records);
    kv__command__init(&s->cmd[0]);
    s->cmd[0].op = KV__COMMAND__OP__SET;
    s->cmd[0].key = bin("k", 1), s->cmd[0].value = bin("v\0v", 3);
    kv__command__init(&s->cmd[1]);
    s->cmd[1].op = KV__COMMAND__OP__DEL;
    s->delkeys[0] = bin("k", 1), s->delkeys[1] = bin("other", 5);
    s->cmd[1].n_keys = 2, s->cmd[1].keys = s->delkeys;
    for (int i = 0; i < 2; i++) {
        kv__log_record__init(&s->rec[i]);
        s->rec[i].index = 43 + (uint64_t)i;
        s->rec[i].command = &s->cmd[i];
        s->recp[i] = &s->rec[i];
    }
    s->records.n_records = 2, s->records.records = s->recp;
    s->msg[8].msg_case = KV__PEER_MESSAGE__MSG_RECORDS, s->msg[8].records = &s->records;

    kv__ack__init(&s->ack);
    s->ack.durable_index = 44;
    s->msg[9].msg_case = KV__PEER_MESSAGE__MSG_ACK, s->msg[9].ack = &s->ack;

    kv__error__init(&s->error);
    s->error.reason = "wrong cluster secret";
    s->msg[10].msg_case = KV__PEER_MESSAGE__MSG_ERROR, s->msg[10].error = &s->error;
}

/* Two messages are equal when they pack to the same bytes (protobuf-c packs
 * fields in number order, so equal contents give equal bytes). */
static void assert_same_message(const Kv__PeerMessage *a, const Kv__PeerMessage *b) {
    assert_int_equal(a->msg_case, b->msg_case);
    size_t na = kv__peer_message__get_packed_size(a), nb = kv__peer_message__get_packed_size(b);
    assert_int_equal(na, nb);
    uint8_t *pa = malloc(na), *pb = malloc(nb);
    assert_non_null(pa);
    assert_non_null(pb);
    kv__peer_message__pack(a, pa);
    kv__peer_message__pack(b, pb);
    assert_memory_equal(pa, pb, na);
    free(pa);
    free(pb);
}

/* The whole sample stream: every message once, in order. */
static void encode_all(const samples *s, kv_buf *b) {
    kv_buf_init(b);
    for (size_t i = 0; i < 11; i++) assert_int_equal(kv_frame_append(b, &s->msg[i], KV_FRAME_MAX_DEFAULT), KV_FRAME_OK);
}

/* Feeds one chunk, collecting every message it completes into got[*n]. */
static void feed(kv_frame_decoder *d, const char *p, size_t len, Kv__PeerMessage **got, size_t *n, size_t max) {
    size_t off = 0;
    for (;;) {
        size_t used = 12345;
        Kv__PeerMessage *m = (Kv__PeerMessage *)&used; /* must be reset by the call */
        kv_frame_status st = kv_frame_decode(d, p + off, len - off, &used, &m);
        assert_true(used <= len - off);
        off += used;
        if (st == KV_FRAME_AGAIN) {
            assert_null(m);
            assert_int_equal(off, len);
            return;
        }
        assert_int_equal(st, KV_FRAME_OK);
        assert_non_null(m);
        assert_true(*n < max);
        got[(*n)++] = m;
    }
}

static void assert_got_samples(const samples *s, Kv__PeerMessage **got, size_t n) {
    assert_int_equal(n, 11);
    for (size_t i = 0; i < n; i++) {
        assert_same_message(got[i], &s->msg[i]);
        kv_peer_message_free(got[i]);
    }
}

/* --- round trips and splits ------------------------------------------------ */

static void test_every_type_round_trips(void **state) {
    (void)state;
    samples s;
    make_samples(&s);
    kv_buf b;
    encode_all(&s, &b);
    kv_frame_decoder d;
    kv_frame_decoder_init(&d, KV_FRAME_MAX_DEFAULT);
    Kv__PeerMessage *got[16];
    size_t n = 0;
    feed(&d, kv_buf_rptr(&b), kv_buf_readable(&b), got, &n, 16);
    assert_true(kv_frame_decoder_idle(&d));
    assert_null(d.payload); /* every frame was whole in the chunk: decoded where it lay */
    const char *names[] = {"Hello", "Challenge", "ChallengeResponse", "SyncRequest", "FullCopyBegin", "FullCopyChunk",
                           "FullCopyEnd", "StreamFrom", "Records", "Ack", "Error"};
    for (size_t i = 0; i < n; i++) assert_string_equal(kv_peer_message_name(got[i]), names[i]);
    /* A few fields read back, as a follower would read them. */
    assert_string_equal(got[0]->hello->client_host, "127.0.0.1");
    assert_int_equal(got[0]->hello->client_port, 7004);
    assert_int_equal(got[3]->sync_request->last_index, 123456789012ULL);
    assert_int_equal(got[5]->full_copy_chunk->n_keys, 3);
    assert_memory_equal(got[5]->full_copy_chunk->keys[1].data, "b\0c", 3);
    assert_int_equal(got[8]->records->n_records, 2);
    assert_int_equal(got[8]->records->records[1]->command->op, KV__COMMAND__OP__DEL);
    assert_int_equal(got[8]->records->records[1]->command->n_keys, 2);
    assert_got_samples(&s, got, n);
    kv_frame_decoder_free(&d);
    kv_buf_free(&b);
}

static void test_split_at_every_byte_boundary(void **state) {
    (void)state;
    samples s;
    make_samples(&s);
    kv_buf b;
    encode_all(&s, &b);
    const char *p = kv_buf_rptr(&b);
    size_t len = kv_buf_readable(&b);
    for (size_t cut = 0; cut <= len; cut++) {
        kv_frame_decoder d;
        kv_frame_decoder_init(&d, KV_FRAME_MAX_DEFAULT);
        Kv__PeerMessage *got[16];
        size_t n = 0;
        feed(&d, p, cut, got, &n, 16);
        feed(&d, p + cut, len - cut, got, &n, 16);
        assert_true(kv_frame_decoder_idle(&d));
        assert_got_samples(&s, got, n);
        kv_frame_decoder_free(&d);
    }
    kv_buf_free(&b);
}

/* Every pair of cut points in one frame: header and payload each split. */
static void test_split_twice_within_a_frame(void **state) {
    (void)state;
    samples s;
    make_samples(&s);
    kv_buf b;
    kv_buf_init(&b);
    assert_int_equal(kv_frame_append(&b, &s.msg[8], KV_FRAME_MAX_DEFAULT), KV_FRAME_OK); /* Records */
    const char *p = kv_buf_rptr(&b);
    size_t len = kv_buf_readable(&b);
    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i; j <= len; j++) {
            kv_frame_decoder d;
            kv_frame_decoder_init(&d, KV_FRAME_MAX_DEFAULT);
            Kv__PeerMessage *got[2];
            size_t n = 0;
            feed(&d, p, i, got, &n, 2);
            feed(&d, p + i, j - i, got, &n, 2);
            feed(&d, p + j, len - j, got, &n, 2);
            assert_int_equal(n, 1);
            assert_same_message(got[0], &s.msg[8]);
            kv_peer_message_free(got[0]);
            kv_frame_decoder_free(&d);
        }
    }
    kv_buf_free(&b);
}

static void test_byte_by_byte(void **state) {
    (void)state;
    samples s;
    make_samples(&s);
    kv_buf b;
    encode_all(&s, &b);
    kv_frame_decoder d;
    kv_frame_decoder_init(&d, KV_FRAME_MAX_DEFAULT);
    Kv__PeerMessage *got[16];
    size_t n = 0;
    for (size_t i = 0; i < kv_buf_readable(&b); i++) {
        feed(&d, kv_buf_rptr(&b) + i, 1, got, &n, 16);
        if (i == 0) assert_false(kv_frame_decoder_idle(&d));
    }
    assert_true(kv_frame_decoder_idle(&d));
    assert_got_samples(&s, got, n);
    kv_frame_decoder_free(&d);
    kv_buf_free(&b);
}

/* A frame's buffer grows with the bytes that arrive, not with the length the
 * header announces; a large one is released once decoded. */
static void test_buffer_follows_arrivals(void **state) {
    (void)state;
    Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
    Kv__Error e = KV__ERROR__INIT;
    size_t big = (size_t)3 << 20;
    char *reason = malloc(big + 1);
    assert_non_null(reason);
    memset(reason, 'x', big);
    reason[big] = '\0';
    e.reason = reason;
    m.msg_case = KV__PEER_MESSAGE__MSG_ERROR, m.error = &e;
    kv_buf b;
    kv_buf_init(&b);
    assert_int_equal(kv_frame_append(&b, &m, KV_FRAME_MAX_DEFAULT), KV_FRAME_OK);
    kv_frame_decoder d;
    kv_frame_decoder_init(&d, KV_FRAME_MAX_DEFAULT);
    Kv__PeerMessage *got[1];
    size_t n = 0;
    feed(&d, kv_buf_rptr(&b), 100, got, &n, 1);
    assert_int_equal(n, 0);
    assert_true(d.cap <= 4096); /* 3 MiB announced, 96 payload bytes held */
    feed(&d, kv_buf_rptr(&b) + 100, kv_buf_readable(&b) - 100, got, &n, 1);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(got[0]->error->reason), big);
    assert_null(d.payload); /* released: a big chunk does not stay pinned */
    assert_int_equal(d.cap, 0);
    kv_peer_message_free(got[0]);
    kv_frame_decoder_free(&d);
    kv_buf_free(&b);
    free(reason);
}

/* A link starts with the handshake limit and is raised once the peer has
 * authenticated: the same frame is refused before and accepted after. */
static void test_limit_raised_after_handshake(void **state) {
    (void)state;
    Kv__PeerMessage m = KV__PEER_MESSAGE__INIT, hello = KV__PEER_MESSAGE__INIT;
    Kv__Error e = KV__ERROR__INIT;
    Kv__Hello h = KV__HELLO__INIT;
    char reason[5001];
    memset(reason, 'x', 5000);
    reason[5000] = '\0';
    e.reason = reason;
    m.msg_case = KV__PEER_MESSAGE__MSG_ERROR, m.error = &e;
    h.client_host = "127.0.0.1";
    hello.msg_case = KV__PEER_MESSAGE__MSG_HELLO, hello.hello = &h;
    kv_buf b;
    kv_buf_init(&b);
    assert_int_equal(kv_frame_append(&b, &hello, KV_FRAME_MAX_DEFAULT), KV_FRAME_OK);
    size_t hello_len = kv_buf_readable(&b);
    assert_int_equal(kv_frame_append(&b, &m, KV_FRAME_MAX_DEFAULT), KV_FRAME_OK);

    kv_frame_decoder d;
    kv_frame_decoder_init(&d, KV_FRAME_HANDSHAKE_MAX);
    Kv__PeerMessage *got[2];
    size_t n = 0, used;
    feed(&d, kv_buf_rptr(&b), hello_len, got, &n, 2);
    assert_int_equal(n, 1);
    kv_peer_message_free(got[0]);
    Kv__PeerMessage *big = NULL;
    assert_int_equal(kv_frame_decode(&d, kv_buf_rptr(&b) + hello_len, kv_buf_readable(&b) - hello_len, &used, &big),
                     KV_FRAME_EOVERSIZE);
    kv_frame_decoder_free(&d);

    kv_frame_decoder_init(&d, KV_FRAME_HANDSHAKE_MAX);
    n = 0;
    feed(&d, kv_buf_rptr(&b), hello_len, got, &n, 2);
    kv_frame_decoder_set_limit(&d, KV_FRAME_MAX_DEFAULT); /* authenticated */
    feed(&d, kv_buf_rptr(&b) + hello_len, kv_buf_readable(&b) - hello_len, got, &n, 2);
    assert_int_equal(n, 2);
    assert_int_equal(strlen(got[1]->error->reason), 5000);
    kv_peer_message_free(got[0]);
    kv_peer_message_free(got[1]);
    kv_frame_decoder_free(&d);
    kv_buf_free(&b);
}

/* --- errors ---------------------------------------------------------------- */

/* Feeds bytes in one go; expects the error and its message. */
static void assert_decode_error(size_t max, const void *bytes, size_t len, kv_frame_status want, const char *msg) {
    kv_frame_decoder d;
    kv_frame_decoder_init(&d, max);
    size_t used;
    Kv__PeerMessage *m = NULL;
    kv_frame_status st = kv_frame_decode(&d, bytes, len, &used, &m);
    assert_int_equal(st, want);
    assert_null(m);
    assert_string_equal(kv_frame_error(&d), msg);
    /* Sticky: the link is over, whatever comes next. */
    Kv__PeerMessage ok = KV__PEER_MESSAGE__INIT;
    Kv__Ack ack = KV__ACK__INIT;
    ok.msg_case = KV__PEER_MESSAGE__MSG_ACK, ok.ack = &ack;
    kv_buf b;
    kv_buf_init(&b);
    assert_int_equal(kv_frame_append(&b, &ok, max), KV_FRAME_OK);
    assert_int_equal(kv_frame_decode(&d, kv_buf_rptr(&b), kv_buf_readable(&b), &used, &m), want);
    assert_int_equal(used, 0);
    assert_null(m);
    assert_false(kv_frame_decoder_idle(&d));
    kv_buf_free(&b);
    kv_frame_decoder_free(&d);
}

static void test_oversized_refused_on_the_header(void **state) {
    (void)state;
    /* 1001 bytes against a limit of 1000: refused with only the header seen,
     * nothing allocated for the payload. */
    kv_frame_decoder d;
    kv_frame_decoder_init(&d, 1000);
    size_t used;
    Kv__PeerMessage *m = NULL;
    const unsigned char hdr[4] = {0, 0, 0x03, 0xe9};
    assert_int_equal(kv_frame_decode(&d, hdr, 3, &used, &m), KV_FRAME_AGAIN);
    assert_int_equal(kv_frame_decode(&d, hdr + 3, 1, &used, &m), KV_FRAME_EOVERSIZE);
    assert_null(d.payload);
    assert_string_equal(kv_frame_error(&d), "frame of 1001 bytes exceeds the limit of 1000 bytes");
    kv_frame_decoder_free(&d);

    const unsigned char huge[8] = {0xff, 0xff, 0xff, 0xff, 'j', 'u', 'n', 'k'};
    assert_decode_error(KV_FRAME_MAX_DEFAULT, huge, sizeof huge, KV_FRAME_EOVERSIZE,
                        "frame of 4294967295 bytes exceeds the limit of 67108864 bytes");
}

static void test_frame_at_the_limit_accepted(void **state) {
    (void)state;
    samples s;
    make_samples(&s);
    size_t n = kv__peer_message__get_packed_size(&s.msg[8]);
    kv_buf b;
    kv_buf_init(&b);
    assert_int_equal(kv_frame_append(&b, &s.msg[8], n), KV_FRAME_OK);
    kv_frame_decoder d;
    kv_frame_decoder_init(&d, n);
    Kv__PeerMessage *got[1];
    size_t k = 0;
    feed(&d, kv_buf_rptr(&b), kv_buf_readable(&b), got, &k, 1);
    assert_int_equal(k, 1);
    kv_peer_message_free(got[0]);
    kv_frame_decoder_free(&d);
    /* One byte less and the same frame is refused. */
    char msg[96];
    snprintf(msg, sizeof msg, "frame of %zu bytes exceeds the limit of %zu bytes", n, n - 1);
    assert_decode_error(n - 1, kv_buf_rptr(&b), kv_buf_readable(&b), KV_FRAME_EOVERSIZE, msg);
    kv_buf_free(&b);
}

static void test_empty_frame(void **state) {
    (void)state;
    const unsigned char zero[4] = {0, 0, 0, 0};
    assert_decode_error(KV_FRAME_MAX_DEFAULT, zero, sizeof zero, KV_FRAME_EEMPTY, "empty frame (length 0)");
}

static void test_undecodable_payload(void **state) {
    (void)state;
    /* Field 1 (Hello) announcing 100 bytes of which 1 is present. */
    const unsigned char bad[7] = {0, 0, 0, 3, 0x0a, 100, 0};
    assert_decode_error(KV_FRAME_MAX_DEFAULT, bad, sizeof bad, KV_FRAME_EDECODE,
                        "undecodable PeerMessage in a frame of 3 bytes");
    /* An invalid wire type (7) in the first tag. */
    const unsigned char bad2[6] = {0, 0, 0, 2, 0x0f, 0x00};
    assert_decode_error(KV_FRAME_MAX_DEFAULT, bad2, sizeof bad2, KV_FRAME_EDECODE,
                        "undecodable PeerMessage in a frame of 2 bytes");
    /* Field number 0 spelled in two bytes, which protobuf-c would accept and
     * then fail to re-encode: at the top, and inside Records > LogRecord >
     * Command (found by fuzz_peer_frame in a Hello). */
    const unsigned char zero_top[9] = {0, 0, 0, 5, 0x52, 0x00, 0x80, 0x00, 0x00};
    assert_decode_error(KV_FRAME_MAX_DEFAULT, zero_top, sizeof zero_top, KV_FRAME_EDECODE,
                        "undecodable PeerMessage (field number 0) in a frame of 5 bytes");
    const unsigned char zero_deep[13] = {0, 0, 0, 9, 0x4a, 7, 0x0a, 5, 0x1a, 3, 0x80, 0x00, 0x00};
    assert_decode_error(KV_FRAME_MAX_DEFAULT, zero_deep, sizeof zero_deep, KV_FRAME_EDECODE,
                        "undecodable PeerMessage (field number 0) in a frame of 9 bytes");
    /* An ordinary unknown field (31) at the same depth is kept: it
     * re-encodes as it came. */
    const unsigned char unknown_deep[13] = {0, 0, 0, 9, 0x4a, 7, 0x0a, 5, 0x1a, 3, 0xf8, 0x01, 0x05};
    kv_frame_decoder z;
    kv_frame_decoder_init(&z, KV_FRAME_MAX_DEFAULT);
    size_t zused;
    Kv__PeerMessage *zm = NULL;
    assert_int_equal(kv_frame_decode(&z, unknown_deep, sizeof unknown_deep, &zused, &zm), KV_FRAME_OK);
    assert_int_equal(zm->records->records[0]->command->base.n_unknown_fields, 1);
    assert_int_equal(kv__peer_message__get_packed_size(zm), 9);
    kv_peer_message_free(zm);
    kv_frame_decoder_free(&z);
    /* The same error when the payload arrives split (the buffered path). */
    kv_frame_decoder d;
    kv_frame_decoder_init(&d, KV_FRAME_MAX_DEFAULT);
    size_t used;
    Kv__PeerMessage *m = NULL;
    assert_int_equal(kv_frame_decode(&d, bad, 5, &used, &m), KV_FRAME_AGAIN);
    assert_int_equal(kv_frame_decode(&d, bad + 5, 2, &used, &m), KV_FRAME_EDECODE);
    assert_string_equal(kv_frame_error(&d), "undecodable PeerMessage in a frame of 3 bytes");
    kv_frame_decoder_free(&d);
}

static void test_unknown_message_type(void **state) {
    (void)state;
    /* Field 20 (reserved for later stages' messages), varint 1. */
    const unsigned char later[7] = {0, 0, 0, 3, 0xa0, 0x01, 0x01};
    assert_decode_error(KV_FRAME_MAX_DEFAULT, later, sizeof later, KV_FRAME_EUNKNOWN,
                        "unknown peer message type (field 20) in a frame of 3 bytes");
    /* Field 12, an empty length-delimited value. */
    const unsigned char twelve[6] = {0, 0, 0, 2, 0x62, 0x00};
    assert_decode_error(KV_FRAME_MAX_DEFAULT, twelve, sizeof twelve, KV_FRAME_EUNKNOWN,
                        "unknown peer message type (field 12) in a frame of 2 bytes");
}

/* Good frames before a bad one are delivered; the bad one stops the link. */
static void test_error_after_good_frames(void **state) {
    (void)state;
    samples s;
    make_samples(&s);
    kv_buf b;
    kv_buf_init(&b);
    assert_int_equal(kv_frame_append(&b, &s.msg[9], KV_FRAME_MAX_DEFAULT), KV_FRAME_OK);
    assert_int_equal(kv_frame_append(&b, &s.msg[8], KV_FRAME_MAX_DEFAULT), KV_FRAME_OK);
    kv_buf_append(&b, "\0\0\0\0", 4);
    kv_frame_decoder d;
    kv_frame_decoder_init(&d, KV_FRAME_MAX_DEFAULT);
    const char *p = kv_buf_rptr(&b);
    size_t len = kv_buf_readable(&b), off = 0, used;
    Kv__PeerMessage *m;
    assert_int_equal(kv_frame_decode(&d, p, len, &used, &m), KV_FRAME_OK);
    assert_string_equal(kv_peer_message_name(m), "Ack");
    kv_peer_message_free(m);
    off += used;
    assert_int_equal(kv_frame_decode(&d, p + off, len - off, &used, &m), KV_FRAME_OK);
    assert_string_equal(kv_peer_message_name(m), "Records");
    kv_peer_message_free(m);
    off += used;
    assert_int_equal(kv_frame_decode(&d, p + off, len - off, &used, &m), KV_FRAME_EEMPTY);
    assert_string_equal(kv_frame_status_name(d.err), "empty frame");
    kv_frame_decoder_free(&d);
    kv_buf_free(&b);
}

/* --- encoder ----------------------------------------------------------------- */

static void test_encoder_header_and_refusals(void **state) {
    (void)state;
    Kv__PeerMessage m = KV__PEER_MESSAGE__INIT;
    Kv__Ack ack = KV__ACK__INIT;
    kv_buf b;
    kv_buf_init(&b);
    kv_buf_append(&b, "prefix", 6);
    /* No type set: it would be an empty frame. Buffer unchanged. */
    assert_int_equal(kv_frame_append(&b, &m, KV_FRAME_MAX_DEFAULT), KV_FRAME_EUNKNOWN);
    assert_int_equal(kv_buf_readable(&b), 6);
    assert_string_equal(kv_peer_message_name(&m), "none");
    /* Ack{durable_index = 300}: field 10, length 3, then field 1 varint 300. */
    ack.durable_index = 300;
    m.msg_case = KV__PEER_MESSAGE__MSG_ACK, m.ack = &ack;
    assert_int_equal(kv_frame_append(&b, &m, 4), KV_FRAME_EOVERSIZE); /* 5 bytes > 4 */
    assert_int_equal(kv_buf_readable(&b), 6);
    assert_int_equal(kv_frame_append(&b, &m, 5), KV_FRAME_OK);
    const unsigned char want[] = {'p', 'r', 'e', 'f', 'i', 'x', 0, 0, 0, 5, 0x52, 3, 0x08, 0xac, 0x02};
    assert_int_equal(kv_buf_readable(&b), sizeof want);
    assert_memory_equal(kv_buf_rptr(&b), want, sizeof want);
    kv_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_round_trips),
        cmocka_unit_test(test_split_at_every_byte_boundary),
        cmocka_unit_test(test_split_twice_within_a_frame),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_buffer_follows_arrivals),
        cmocka_unit_test(test_limit_raised_after_handshake),
        cmocka_unit_test(test_oversized_refused_on_the_header),
        cmocka_unit_test(test_frame_at_the_limit_accepted),
        cmocka_unit_test(test_empty_frame),
        cmocka_unit_test(test_undecodable_payload),
        cmocka_unit_test(test_unknown_message_type),
        cmocka_unit_test(test_error_after_good_frames),
        cmocka_unit_test(test_encoder_header_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
