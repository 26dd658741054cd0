/* test_history.c - history ids (stage 4's history.c): which logs may
 * continue from which, and the HISTORY file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "history.h"
#include "log.h"

static void test_history_prefix_rule(void **state) {
    (void)state;
    history h = {0};
    assert_true(history_is_prefix(&h, 0, "", 0));    /* empty and empty */
    assert_int_equal(history_begin_new(&h, 0), 0);     /* a leader's first history */
    char first[HISTORY_ID_LEN + 1];
    memcpy(first, h.id, sizeof first);
    assert_int_equal(strlen(h.id), HISTORY_ID_LEN);
    assert_true(history_is_prefix(&h, 10, "", 0));     /* a fresh follower */
    assert_false(history_is_prefix(&h, 10, "", 3));    /* no history but records: unknown origin */
    assert_true(history_is_prefix(&h, 10, first, 10));
    assert_false(history_is_prefix(&h, 10, first, 11)); /* it holds more than we do */
    assert_int_equal(history_begin_new(&h, 8), 0);     /* restart or promotion at index 8 */
    assert_string_not_equal(h.id, first);
    assert_string_equal(h.prev_id, first);
    assert_true(history_is_prefix(&h, 12, first, 8));   /* the old history up to where it ended here */
    assert_false(history_is_prefix(&h, 12, first, 9));  /* past it: writes we never had */
    assert_false(history_is_prefix(&h, 12, "0123456789012345678901234567890123456789", 1));
}

static void test_history_file_round_trip_and_damage(void **state) {
    (void)state;
    char dir[] = "/tmp/kvhistory-XXXXXX";
    assert_non_null(mkdtemp(dir));
    history h = {0}, back;
    assert_int_equal(history_load(dir, &back), 0); /* missing: empty */
    assert_string_equal(back.id, "");
    assert_int_equal(history_begin_new(&h, 0), 0);
    assert_int_equal(history_begin_new(&h, 42), 0);
    assert_int_equal(history_save(dir, &h), 0);
    assert_int_equal(history_load(dir, &back), 0);
    assert_memory_equal(&back, &h, sizeof h);
    char path[128];
    snprintf(path, sizeof path, "%s/HISTORY", dir);
    FILE *fp = fopen(path, "w");
    fputs("id nothex\n", fp);
    fclose(fp);
    assert_int_equal(history_load(dir, &back), -1);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    kv_log_set_level(KV_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_prefix_rule),
        cmocka_unit_test(test_history_file_round_trip_and_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
