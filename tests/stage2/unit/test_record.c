/* test_record.c - WAL record framing: round trip, checksum and length
 * checks, and a record cut at every byte (a torn write) never decodes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crc32c.h"
#include "record.h"

static void encode_set(kv_buf *b, uint64_t index, const char *key, const void *val, size_t vlen) {
    Kv__Command cmd = KV__COMMAND__INIT;
    cmd.op = KV__COMMAND__OP__SET;
    cmd.key.data = (uint8_t *)key;
    cmd.key.len = strlen(key);
    cmd.value.data = (uint8_t *)val;
    cmd.value.len = vlen;
    assert_int_equal(record_encode(b, index, 0, &cmd), 0);
}

static void test_round_trip_binary(void **state) {
    (void)state;
    kv_buf b;
    kv_buf_init(&b);
    const char val[] = "a\0b\r\nc";
    encode_set(&b, 42, "k", val, sizeof val);
    Kv__LogRecord *rec = NULL;
    size_t size = 0;
    assert_int_equal(record_decode((unsigned char *)kv_buf_rptr(&b), kv_buf_readable(&b), &rec, &size, NULL),
                     RECORD_OK);
    assert_int_equal(size, kv_buf_readable(&b));
    assert_int_equal(rec->index, 42);
    assert_int_equal(rec->term, 0);
    assert_int_equal(rec->command->op, KV__COMMAND__OP__SET);
    assert_int_equal(rec->command->value.len, sizeof val);
    assert_memory_equal(rec->command->value.data, val, sizeof val);
    record_free(rec);
    kv_buf_free(&b);
}

static void test_del_with_many_keys(void **state) {
    (void)state;
    kv_buf b;
    kv_buf_init(&b);
    ProtobufCBinaryData keys[3] = {{1, (uint8_t *)"a"}, {2, (uint8_t *)"bb"}, {0, NULL}};
    Kv__Command cmd = KV__COMMAND__INIT;
    cmd.op = KV__COMMAND__OP__DEL;
    cmd.n_keys = 3;
    cmd.keys = keys;
    assert_int_equal(record_encode(&b, 7, 0, &cmd), 0);
    Kv__LogRecord *rec;
    size_t size;
    assert_int_equal(record_decode((unsigned char *)kv_buf_rptr(&b), kv_buf_readable(&b), &rec, &size, NULL),
                     RECORD_OK);
    assert_int_equal(rec->command->n_keys, 3);
    assert_memory_equal(rec->command->keys[1].data, "bb", 2);
    assert_int_equal(rec->command->keys[2].len, 0);
    record_free(rec);
    kv_buf_free(&b);
}

static void test_truncated_at_every_byte_is_short(void **state) {
    (void)state;
    kv_buf b;
    kv_buf_init(&b);
    encode_set(&b, 1, "key", "value-with-some-length", 22);
    size_t n = kv_buf_readable(&b);
    for (size_t cut = 0; cut < n; cut++) {
        /* An exact-size copy so ASan catches any read past the cut. */
        unsigned char *copy = malloc(cut ? cut : 1);
        memcpy(copy, kv_buf_rptr(&b), cut);
        Kv__LogRecord *rec = NULL;
        size_t size = 0;
        const char *why = NULL;
        assert_int_equal(record_decode(copy, cut, &rec, &size, &why), RECORD_SHORT);
        assert_non_null(why);
        free(copy);
    }
    kv_buf_free(&b);
}

static void test_any_flipped_bit_is_bad(void **state) {
    (void)state;
    kv_buf b;
    kv_buf_init(&b);
    encode_set(&b, 1, "key", "value", 5);
    size_t n = kv_buf_readable(&b);
    unsigned char *p = (unsigned char *)kv_buf_rptr(&b);
    /* Bytes 0-3 are the length: flipping one makes the record short or bad;
     * every other byte is covered by the checksum. */
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            p[i] ^= (unsigned char)(1u << bit);
            Kv__LogRecord *rec = NULL;
            size_t size;
            record_status s = record_decode(p, n, &rec, &size, NULL);
            assert_int_not_equal(s, RECORD_OK);
            p[i] ^= (unsigned char)(1u << bit);
        }
    }
    kv_buf_free(&b);
}

static void test_huge_length_rejected_before_allocation(void **state) {
    (void)state;
    unsigned char hdr[8] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    Kv__LogRecord *rec;
    size_t size;
    const char *why = NULL;
    assert_int_equal(record_decode(hdr, sizeof hdr, &rec, &size, &why), RECORD_BAD);
    assert_string_equal(why, "record length is impossibly large");
}

static void test_valid_crc_but_garbage_payload_is_bad(void **state) {
    (void)state;
    /* Payload 0xff 0xff...: a varint that never ends; CRC computed to match. */
    unsigned char buf[8 + 4] = {0, 0, 0, 4, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
    uint32_t crc = kv_crc32c(0, buf + 8, 4);
    buf[4] = (unsigned char)(crc >> 24);
    buf[5] = (unsigned char)(crc >> 16);
    buf[6] = (unsigned char)(crc >> 8);
    buf[7] = (unsigned char)crc;
    Kv__LogRecord *rec;
    size_t size;
    const char *why = NULL;
    assert_int_equal(record_decode(buf, sizeof buf, &rec, &size, &why), RECORD_BAD);
    assert_string_equal(why, "record payload does not decode");
}

static void test_two_records_back_to_back(void **state) {
    (void)state;
    kv_buf b;
    kv_buf_init(&b);
    encode_set(&b, 1, "a", "1", 1);
    encode_set(&b, 2, "b", "2", 1);
    const unsigned char *p = (unsigned char *)kv_buf_rptr(&b);
    size_t n = kv_buf_readable(&b), off = 0;
    uint64_t want = 1;
    while (off < n) {
        Kv__LogRecord *rec;
        size_t size;
        assert_int_equal(record_decode(p + off, n - off, &rec, &size, NULL), RECORD_OK);
        assert_int_equal(rec->index, want++);
        record_free(rec);
        off += size;
    }
    assert_int_equal(want, 3);
    kv_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_binary),
        cmocka_unit_test(test_del_with_many_keys),
        cmocka_unit_test(test_truncated_at_every_byte_is_short),
        cmocka_unit_test(test_any_flipped_bit_is_bad),
        cmocka_unit_test(test_huge_length_rejected_before_allocation),
        cmocka_unit_test(test_valid_crc_but_garbage_payload_is_bad),
        cmocka_unit_test(test_two_records_back_to_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
