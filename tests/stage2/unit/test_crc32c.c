/* test_crc32c.c - CRC32C against published check values, and incremental use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crc32c.h"

static void test_check_values(void **state) {
    (void)state;
    assert_int_equal(kv_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(kv_crc32c(0, "", 0), 0u);
    unsigned char zeros[32] = {0};
    assert_int_equal(kv_crc32c(0, zeros, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
    unsigned char ones[32];
    memset(ones, 0xff, sizeof ones);
    assert_int_equal(kv_crc32c(0, ones, 32), 0x62A8AB43u);
}

static void test_incremental_equals_whole(void **state) {
    (void)state;
    char buf[1000];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)(i * 7 + 3);
    uint32_t whole = kv_crc32c(0, buf, sizeof buf);
    for (size_t split = 0; split <= sizeof buf; split += 37)
        assert_int_equal(kv_crc32c(kv_crc32c(0, buf, split), buf + split, sizeof buf - split), whole);
}

static void test_single_bit_changes_crc(void **state) {
    (void)state;
    char buf[64] = "a record payload that must not rot silently on disk";
    uint32_t good = kv_crc32c(0, buf, sizeof buf);
    for (size_t i = 0; i < sizeof buf; i++) {
        buf[i] ^= 1;
        assert_int_not_equal(kv_crc32c(0, buf, sizeof buf), good);
        buf[i] ^= 1;
    }
}

/* Both paths against a bit-at-a-time reference, at every alignment and
 * many lengths (the hardware path handles 8 bytes at a time plus a tail). */
static uint32_t reference(const unsigned char *p, size_t n) {
    uint32_t c = ~0u;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    }
    return ~c;
}

static void test_both_paths_match_reference(void **state) {
    (void)state;
    unsigned char buf[1100];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    for (size_t off = 0; off < 8; off++) {
        for (size_t n = 0; off + n <= sizeof buf; n += n < 40 ? 1 : 61) {
            uint32_t want = reference(buf + off, n);
            assert_int_equal(kv_crc32c(0, buf + off, n), want);
            assert_int_equal(kv_crc32c_sw(0, buf + off, n), want);
        }
    }
    assert_int_equal(kv_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(kv_crc32c_sw(kv_crc32c_sw(0, "1234", 4), "56789", 5), 0xE3069283u);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_values),
        cmocka_unit_test(test_incremental_equals_whole),
        cmocka_unit_test(test_single_bit_changes_crc),
        cmocka_unit_test(test_both_paths_match_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
