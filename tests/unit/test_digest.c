/* test_digest.c - the keyspace digest (common/digest.h): the same pairs give
 * the same digest whatever the insertion order, the table's size or a growth
 * in progress; a change of one byte, two keys swapping values, a byte moving
 * between key and value, an extra empty pair all change it; the reply text
 * and the wire form; a known answer pinning the algorithm (nodes running
 * different builds must agree). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "digest.h"

static void digest_of(const kv_store *s, char text[KV_DIGEST_TEXT_MAX]) {
    kv_digest d;
    kv_digest_store(s, &d);
    kv_digest_format(&d, text);
}

/* The digest of a store holding exactly the given pairs. */
static void digest_pairs(const char *const *kv, const size_t *len, size_t npairs, kv_digest *out) {
    kv_store s;
    assert_int_equal(kv_store_init(&s), 0);
    for (size_t i = 0; i < npairs; i++)
        assert_int_equal(kv_store_set(&s, kv[2 * i], len[2 * i], kv[2 * i + 1], len[2 * i + 1]), 0);
    kv_digest_store(&s, out);
    kv_store_free(&s);
}

static void assert_differ(const kv_digest *a, const kv_digest *b) {
    assert_false(kv_digest_equal(a, b));
    /* Both lanes change, not just one: each is a hash of its own. */
    assert_true(a->lane[0] != b->lane[0]);
    assert_true(a->lane[1] != b->lane[1]);
}

static void test_empty_store(void **state) {
    (void)state;
    kv_store s;
    assert_int_equal(kv_store_init(&s), 0);
    char text[KV_DIGEST_TEXT_MAX];
    digest_of(&s, text);
    assert_string_equal(text, "00000000000000000000000000000000 keys=0");
    kv_store_free(&s);
}

/* Independent of insertion order, table size, and incremental growth: one
 * store is filled forwards in one go (so it is often mid-growth), the other
 * backwards with junk written and deleted in between. */
static void test_order_and_layout_do_not_matter(void **state) {
    (void)state;
    enum { N = 5000 };
    kv_store a, b;
    assert_int_equal(kv_store_init(&a), 0);
    assert_int_equal(kv_store_init(&b), 0);
    char k[32], v[32];
    int mid_growth = 0;
    for (int i = 0; i < N; i++) {
        int kl = snprintf(k, sizeof k, "key:%d", i), vl = snprintf(v, sizeof v, "value-%d", i * 7);
        assert_int_equal(kv_store_set(&a, k, (size_t)kl, v, (size_t)vl), 0);
        if (a.old) mid_growth = 1;
    }
    assert_true(mid_growth);
    for (int i = N - 1; i >= 0; i--) {
        int kl = snprintf(k, sizeof k, "key:%d", i), vl = snprintf(v, sizeof v, "value-%d", i * 7);
        assert_int_equal(kv_store_set(&b, "junk", 4, k, (size_t)kl), 0);
        assert_int_equal(kv_store_set(&b, k, (size_t)kl, "old", 3), 0); /* overwritten below */
        assert_int_equal(kv_store_set(&b, k, (size_t)kl, v, (size_t)vl), 0);
        assert_int_equal(kv_store_del(&b, "junk", 4), 1);
    }
    kv_digest da, db;
    kv_digest_store(&a, &da);
    kv_digest_store(&b, &db);
    assert_true(kv_digest_equal(&da, &db));
    assert_int_equal(da.keys, N);
    /* The streaming form (pairs as a full copy delivers them) agrees. */
    kv_digest ds;
    kv_digest_init(&ds);
    for (int i = 0; i < N; i += 2) { /* evens then odds: yet another order */
        int kl = snprintf(k, sizeof k, "key:%d", i), vl = snprintf(v, sizeof v, "value-%d", i * 7);
        kv_digest_add(&ds, k, (size_t)kl, v, (size_t)vl);
    }
    for (int i = 1; i < N; i += 2) {
        int kl = snprintf(k, sizeof k, "key:%d", i), vl = snprintf(v, sizeof v, "value-%d", i * 7);
        kv_digest_add(&ds, k, (size_t)kl, v, (size_t)vl);
    }
    assert_true(kv_digest_equal(&da, &ds));
    /* And one more write is seen. */
    assert_int_equal(kv_store_set(&b, "key:17", 6, "value-120", 9), 0);
    kv_digest_store(&b, &db);
    assert_differ(&da, &db);
    kv_store_free(&a);
    kv_store_free(&b);
}

/* Flipping any single bit of any byte of a key or a value changes the digest,
 * and every variant differs from every other (none collide). */
static void test_every_single_byte_change(void **state) {
    (void)state;
    char key[] = "user:1000:name", val[] = "Ada Lovelace, 1815";
    const char *kv[] = {"other", "pair", key, val};
    size_t len[] = {5, 4, sizeof key - 1, sizeof val - 1};
    kv_digest base;
    digest_pairs(kv, len, 2, &base);
    size_t nvariants = 8 * (len[2] + len[3]);
    kv_digest *seen = malloc(nvariants * sizeof *seen);
    assert_non_null(seen);
    size_t n = 0;
    for (int which = 2; which <= 3; which++) {
        char *p = which == 2 ? key : val;
        for (size_t i = 0; i < len[which]; i++) {
            for (int bit = 0; bit < 8; bit++) {
                p[i] ^= (char)(1 << bit);
                digest_pairs(kv, len, 2, &seen[n]);
                p[i] ^= (char)(1 << bit);
                assert_differ(&base, &seen[n]);
                for (size_t j = 0; j < n; j++) assert_false(kv_digest_equal(&seen[j], &seen[n]));
                n++;
            }
        }
    }
    assert_int_equal(n, nvariants);
    free(seen);
}

static void test_swapped_values(void **state) {
    (void)state;
    const char *one[] = {"alice", "100", "bob", "200"};
    const char *two[] = {"alice", "200", "bob", "100"};
    size_t len[] = {5, 3, 3, 3};
    kv_digest a, b;
    digest_pairs(one, len, 2, &a);
    digest_pairs(two, len, 2, &b);
    assert_differ(&a, &b);
}

/* The same bytes split differently between key and value are other pairs. */
static void test_key_value_boundary(void **state) {
    (void)state;
    const char *x[] = {"ab", "c"}, *y[] = {"a", "bc"}, *z[] = {"c", "ab"}, *w[] = {"abc", ""};
    size_t lx[] = {2, 1}, ly[] = {1, 2}, lz[] = {1, 2}, lw[] = {3, 0};
    kv_digest dx, dy, dz, dw;
    digest_pairs(x, lx, 1, &dx);
    digest_pairs(y, ly, 1, &dy);
    digest_pairs(z, lz, 1, &dz);
    digest_pairs(w, lw, 1, &dw);
    assert_differ(&dx, &dy);
    assert_differ(&dx, &dw);
    assert_differ(&dy, &dw);
    /* Key and value exchanged: ("ab","c") against ("c","ab"). */
    assert_differ(&dx, &dz);
}

/* An empty key with an empty value is a pair like any other. */
static void test_empty_pair_counts(void **state) {
    (void)state;
    const char *kv[] = {"a", "1", "", ""};
    size_t len[] = {1, 1, 0, 0};
    kv_digest one, two;
    digest_pairs(kv, len, 1, &one);
    digest_pairs(kv, len, 2, &two);
    assert_differ(&one, &two);
    assert_int_equal(one.keys, 1);
    assert_int_equal(two.keys, 2);
}

static void test_format_and_wire_form(void **state) {
    (void)state;
    kv_digest d = {{0x0123456789abcdefULL, 0xfedcba9876543210ULL}, UINT64_MAX};
    char text[KV_DIGEST_TEXT_MAX];
    size_t n = kv_digest_format(&d, text);
    assert_string_equal(text, "0123456789abcdeffedcba9876543210 keys=18446744073709551615");
    assert_int_equal(n, strlen(text));
    unsigned char wire[KV_DIGEST_BYTES];
    kv_digest_to_bytes(&d, wire);
    const unsigned char want[KV_DIGEST_BYTES] = {0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01,
                                                 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe};
    assert_memory_equal(wire, want, sizeof want);
    kv_digest back;
    kv_digest_from_bytes(&back, wire, UINT64_MAX);
    assert_true(kv_digest_equal(&back, &d));
}

/* Known answers, computed by an independent Python implementation of
 * SipHash-1-3 and of the pair encoding described in digest.c. A change to
 * the hash keys or the encoding fails here: nodes of different builds would
 * no longer agree. */
static void test_known_answers(void **state) {
    (void)state;
    char text[KV_DIGEST_TEXT_MAX];
    kv_digest d;
    const char *one[] = {"a", "1"};
    size_t l1[] = {1, 1};
    digest_pairs(one, l1, 1, &d);
    kv_digest_format(&d, text);
    assert_string_equal(text, "95326174d4ece48ef52428cef43f4fa2 keys=1");
    const char *four[] = {"a", "1", "b\0c", "", "", "\r\n", "long key of more than eight bytes", "vvvvvvvvvvvvvvvvvvvv"};
    size_t l4[] = {1, 1, 3, 0, 0, 2, 33, 20};
    digest_pairs(four, l4, 4, &d);
    kv_digest_format(&d, text);
    assert_string_equal(text, "745803e24e1ed82aca752ae34878dcf4 keys=4");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_store),
        cmocka_unit_test(test_order_and_layout_do_not_matter),
        cmocka_unit_test(test_every_single_byte_change),
        cmocka_unit_test(test_swapped_values),
        cmocka_unit_test(test_key_value_boundary),
        cmocka_unit_test(test_empty_pair_counts),
        cmocka_unit_test(test_format_and_wire_form),
        cmocka_unit_test(test_known_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
