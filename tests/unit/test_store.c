/* test_store.c - the hash-table store: binary-safe keys and values,
 * overwrite in place and by reallocation, delete, growth past many
 * doublings (incremental: keys reachable in either array meanwhile), O(1)
 * size and memory accounting, and iteration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"

static int setup(void **state) {
    kv_store *s = malloc(sizeof *s);
    assert_int_equal(kv_store_init(s), 0);
    *state = s;
    return 0;
}

static int teardown(void **state) {
    kv_store_free(*state);
    free(*state);
    return 0;
}

static size_t bucket_array_bytes(size_t n) { return n * sizeof(void *); }

static void assert_value(kv_store *s, const void *k, size_t klen, const void *want, size_t wlen) {
    const char *v;
    size_t n;
    assert_int_equal(kv_store_get(s, k, klen, &v, &n), 1);
    assert_int_equal(n, wlen);
    if (wlen) assert_memory_equal(v, want, wlen);
}

static void test_set_get_overwrite(void **state) {
    kv_store *s = *state;
    assert_int_equal(kv_store_set(s, "k", 1, "v1", 2), 0);
    assert_value(s, "k", 1, "v1", 2);
    assert_int_equal(kv_store_count(s), 1);
    assert_int_equal(kv_store_set(s, "k", 1, "x", 1), 0); /* shorter: in place */
    assert_value(s, "k", 1, "x", 1);
    char big[5000];
    memset(big, 'b', sizeof big);
    assert_int_equal(kv_store_set(s, "k", 1, big, sizeof big), 0); /* much longer: new block */
    assert_value(s, "k", 1, big, sizeof big);
    assert_int_equal(kv_store_set(s, "k", 1, "tiny", 4), 0); /* much shorter: shrinks again */
    assert_value(s, "k", 1, "tiny", 4);
    assert_int_equal(kv_store_count(s), 1);
}

static void test_missing_and_delete(void **state) {
    kv_store *s = *state;
    const char *v;
    size_t n;
    assert_int_equal(kv_store_get(s, "nope", 4, &v, &n), 0);
    assert_int_equal(kv_store_del(s, "nope", 4), 0);
    kv_store_set(s, "a", 1, "1", 1);
    assert_int_equal(kv_store_exists(s, "a", 1), 1);
    assert_int_equal(kv_store_del(s, "a", 1), 1);
    assert_int_equal(kv_store_exists(s, "a", 1), 0);
    assert_int_equal(kv_store_del(s, "a", 1), 0);
    assert_int_equal(kv_store_count(s), 0);
}

static void test_binary_keys_and_empty(void **state) {
    kv_store *s = *state;
    assert_int_equal(kv_store_set(s, "a\0b", 3, "x\0\r\n", 4), 0);
    assert_int_equal(kv_store_set(s, "a\0c", 3, "y", 1), 0);
    assert_int_equal(kv_store_set(s, "a", 1, "z", 1), 0); /* a prefix of the others */
    assert_value(s, "a\0b", 3, "x\0\r\n", 4);
    assert_value(s, "a\0c", 3, "y", 1);
    assert_value(s, "a", 1, "z", 1);
    assert_int_equal(kv_store_set(s, "", 0, "", 0), 0); /* empty key, empty value */
    assert_value(s, "", 0, "", 0);
    assert_int_equal(kv_store_count(s), 4);
}

static void test_many_keys_growth(void **state) {
    kv_store *s = *state;
    char k[32], v[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(k, sizeof k, "key:%d", i);
        snprintf(v, sizeof v, "val:%d", i * 7);
        assert_int_equal(kv_store_set(s, k, strlen(k), v, strlen(v)), 0);
    }
    assert_int_equal(kv_store_count(s), 100000);
    assert_true(s->nbuckets >= 100000); /* load factor kept at most 1 */
    for (int i = 0; i < 100000; i += 997) {
        snprintf(k, sizeof k, "key:%d", i);
        snprintf(v, sizeof v, "val:%d", i * 7);
        assert_value(s, k, strlen(k), v, strlen(v));
    }
}

static void test_memory_accounting(void **state) {
    kv_store *s = *state;
    size_t empty = kv_store_mem(s);
    assert_true(empty > 0); /* the bucket array */
    kv_store_set(s, "key", 3, "value", 5);
    size_t one = kv_store_mem(s);
    assert_true(one >= empty + 3 + 5);
    char big[10000] = {0};
    kv_store_set(s, "key", 3, big, sizeof big);
    assert_true(kv_store_mem(s) >= empty + sizeof big);
    kv_store_set(s, "key", 3, "value", 5);
    assert_int_equal(kv_store_mem(s), one);
    kv_store_del(s, "key", 3);
    assert_int_equal(kv_store_mem(s), empty);
}

static void test_memory_back_to_start_after_many(void **state) {
    kv_store *s = *state;
    char k[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "k%d", i);
        kv_store_set(s, k, strlen(k), "v", 1);
    }
    size_t buckets_now = s->nbuckets * sizeof(void *);
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "k%d", i);
        assert_int_equal(kv_store_del(s, k, strlen(k)), 1);
    }
    /* Entries are all returned; only the (grown) bucket array remains. */
    assert_int_equal(kv_store_mem(s), buckets_now);
}

static int count_visit(void *ctx, const char *key, size_t klen, const char *val, size_t vlen) {
    (void)key, (void)klen, (void)val, (void)vlen;
    (*(size_t *)ctx)++;
    return 0;
}

/* Growth is spread over later writes: the write that starts it moves only a
 * few buckets, every key stays reachable (and visited exactly once) while
 * two arrays hold them, deletes and overwrites find keys in either array,
 * and the old array is freed, and uncounted, once drained. */
static void test_growth_is_incremental(void **state) {
    kv_store *s = *state;
    char k[32];
    int n = 0;
    while (!s->old) {
        snprintf(k, sizeof k, "key:%d", n++);
        assert_int_equal(kv_store_set(s, k, strlen(k), "v", 1), 0);
    }
    while (s->nbuckets < 4096) { /* grow a few times, so the old array is big */
        snprintf(k, sizeof k, "key:%d", n++);
        assert_int_equal(kv_store_set(s, k, strlen(k), "v", 1), 0);
    }
    while (!s->old) {
        snprintf(k, sizeof k, "key:%d", n++);
        assert_int_equal(kv_store_set(s, k, strlen(k), "v", 1), 0);
    }
    /* The write that started this growth moved almost nothing. */
    assert_true(s->rehash_pos < s->nold / 2);
    size_t both = bucket_array_bytes(s->nbuckets) + bucket_array_bytes(s->nold);
    assert_true(kv_store_mem(s) > both); /* both arrays are counted while draining */
    int steps = 0;
    while (s->old) {
        /* Every key reachable, every key visited once, at every step. */
        for (int i = 0; i < n; i++) {
            snprintf(k, sizeof k, "key:%d", i);
            assert_true(kv_store_exists(s, k, strlen(k)));
        }
        size_t visited = 0;
        assert_int_equal(kv_store_foreach(s, count_visit, &visited), 0);
        assert_int_equal(visited, (size_t)n);
        /* Overwrite a key in whichever array holds it; delete and re-add another. */
        snprintf(k, sizeof k, "key:%d", steps % n);
        assert_int_equal(kv_store_set(s, k, strlen(k), "w", 1), 0);
        assert_value(s, k, strlen(k), "w", 1);
        snprintf(k, sizeof k, "key:%d", (steps * 7 + 3) % n);
        assert_int_equal(kv_store_del(s, k, strlen(k)), 1);
        assert_false(kv_store_exists(s, k, strlen(k)));
        assert_int_equal(kv_store_set(s, k, strlen(k), "v", 1), 0);
        assert_int_equal(kv_store_count(s), (size_t)n);
        steps++;
    }
    assert_true(steps > 10); /* it really was spread out */
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "key:%d", i);
        assert_int_equal(kv_store_del(s, k, strlen(k)), 1);
    }
    assert_int_equal(kv_store_mem(s), bucket_array_bytes(s->nbuckets)); /* old array uncounted */
}

typedef struct visit {
    int seen[100];
    int calls;
    int stop_after;
} visit;

static int visitor(void *ctx, const char *key, size_t klen, const char *val, size_t vlen) {
    visit *v = ctx;
    int i = atoi(key + 1);
    assert_true(klen >= 2 && i >= 0 && i < 100);
    assert_int_equal(vlen, 1);
    assert_int_equal(val[0], 'v');
    v->seen[i]++;
    v->calls++;
    return v->stop_after && v->calls == v->stop_after ? 42 : 0;
}

static void test_foreach(void **state) {
    kv_store *s = *state;
    char k[16];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "k%d", i);
        kv_store_set(s, k, strlen(k), "v", 1);
    }
    visit v = {0};
    assert_int_equal(kv_store_foreach(s, visitor, &v), 0);
    for (int i = 0; i < 100; i++) assert_int_equal(v.seen[i], 1);
    visit early = {.stop_after = 10};
    assert_int_equal(kv_store_foreach(s, visitor, &early), 42);
    assert_int_equal(early.calls, 10);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_set_get_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_keys_and_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_keys_growth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_accounting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_back_to_start_after_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_growth_is_incremental, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
