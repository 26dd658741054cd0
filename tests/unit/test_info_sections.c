/* test_info_sections.c - INFO <section> picks sections by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "info_sections.h"

static const char TEXT[] = "# Server\r\nstage:x\r\n\r\n# Clients\r\nconnected_clients:1\r\n\r\n# Keyspace\r\nkeys:0\r\n";

static void pick(const char *const *names, size_t count, const char *expect) {
    kv_slice s[4];
    for (size_t i = 0; i < count; i++) {
        s[i].p = names[i];
        s[i].len = strlen(names[i]);
    }
    kv_buf out;
    kv_buf_init(&out);
    assert_int_equal(kv_info_select(TEXT, strlen(TEXT), s, count, &out), 0);
    assert_int_equal(kv_buf_readable(&out), strlen(expect));
    assert_memory_equal(kv_buf_rptr(&out), expect, strlen(expect));
    kv_buf_free(&out);
}

static void test_one_section(void **state) {
    (void)state;
    const char *n[] = {"clients"};
    pick(n, 1, "# Clients\r\nconnected_clients:1\r\n");
}

static void test_two_sections_keep_their_blank_line(void **state) {
    (void)state;
    const char *n[] = {"KEYSPACE", "server"};
    pick(n, 2, "# Server\r\nstage:x\r\n\r\n# Keyspace\r\nkeys:0\r\n");
}

static void test_all_and_unknown(void **state) {
    (void)state;
    const char *all[] = {"all"};
    pick(all, 1, TEXT);
    const char *none[] = {"nosuch"};
    pick(none, 1, "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_section),
        cmocka_unit_test(test_two_sections_keep_their_blank_line),
        cmocka_unit_test(test_all_and_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
