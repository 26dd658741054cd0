/* test_flags.c - flag parsing: every type, both spellings, suffixes,
 * ranges, and the errors a user sees (exit code 2 in the programs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "flags.h"

static long long port;
static size_t bytes;
static const char *name;
static const char *level;
static int verbose;
static int npos;
static char **pos;
static const char *const levels[] = {"low", "high", NULL};
static const flag_spec specs[] = {
    {"port", FLAG_INT, &port, "port", 1, 65535, NULL, "PORT"},
    {"bytes", FLAG_SIZE, &bytes, "size", 1, 1LL << 40, NULL, "N"},
    {"name", FLAG_STRING, &name, "name", 0, 0, NULL, "S"},
    {"level", FLAG_CHOICE, &level, "level", 0, 0, levels, "L"},
    {"verbose", FLAG_BOOL, &verbose, "verbose", 0, 0, NULL, NULL},
};

static flag_result run(int allow_pos, int argc, char **argv) {
    port = 0;
    bytes = 0;
    name = level = NULL;
    verbose = 0;
    flag_program prog = {.name = "t", .summary = "test", .version = "1", .specs = specs, .nspecs = 5};
    if (allow_pos) {
        prog.npositional = &npos;
        prog.positional = &pos;
    }
    return flags_parse(&prog, argc, argv);
}

static void test_all_types(void **state) {
    (void)state;
    char *argv[] = {"t", "--port", "7001", "--bytes=16m", "--name", "x y", "--level=high", "--verbose"};
    assert_int_equal(run(0, 8, argv), FLAGS_OK);
    assert_int_equal(port, 7001);
    assert_int_equal(bytes, 16u * 1024 * 1024);
    assert_string_equal(name, "x y");
    assert_string_equal(level, "high");
    assert_int_equal(verbose, 1);
}

static void test_suffixes(void **state) {
    (void)state;
    char *k[] = {"t", "--bytes", "64k"};
    assert_int_equal(run(0, 3, k), FLAGS_OK);
    assert_int_equal(bytes, 65536);
    char *g[] = {"t", "--bytes", "1G"};
    assert_int_equal(run(0, 3, g), FLAGS_OK);
    assert_int_equal(bytes, 1024u * 1024 * 1024);
    char *bad[] = {"t", "--bytes", "12q"};
    assert_int_equal(run(0, 3, bad), FLAGS_ERROR);
    char *intsuffix[] = {"t", "--port", "1k"}; /* suffixes are for sizes only */
    assert_int_equal(run(0, 3, intsuffix), FLAGS_ERROR);
}

static void test_errors(void **state) {
    (void)state;
    char *range[] = {"t", "--port", "99999"};
    assert_int_equal(run(0, 3, range), FLAGS_ERROR);
    char *zero[] = {"t", "--port", "0"};
    assert_int_equal(run(0, 3, zero), FLAGS_ERROR);
    char *nan[] = {"t", "--port", "abc"};
    assert_int_equal(run(0, 3, nan), FLAGS_ERROR);
    char *empty[] = {"t", "--port="};
    assert_int_equal(run(0, 2, empty), FLAGS_ERROR);
    char *unknown[] = {"t", "--nope", "1"};
    assert_int_equal(run(0, 3, unknown), FLAGS_ERROR);
    char *missing[] = {"t", "--port"};
    assert_int_equal(run(0, 2, missing), FLAGS_ERROR);
    char *choice[] = {"t", "--level", "medium"};
    assert_int_equal(run(0, 3, choice), FLAGS_ERROR);
    char *boolval[] = {"t", "--verbose=1"};
    assert_int_equal(run(0, 2, boolval), FLAGS_ERROR);
    char *stray[] = {"t", "extra"};
    assert_int_equal(run(0, 2, stray), FLAGS_ERROR);
}

static void test_help_and_version(void **state) {
    (void)state;
    char *help[] = {"t", "--port", "1", "--help"};
    assert_int_equal(run(0, 4, help), FLAGS_HELP);
    char *version[] = {"t", "--version"};
    assert_int_equal(run(0, 2, version), FLAGS_VERSION);
}

static void test_positionals(void **state) {
    (void)state;
    char *argv[] = {"t", "--port", "5", "set", "k", "--not-a-flag"};
    assert_int_equal(run(1, 6, argv), FLAGS_OK);
    assert_int_equal(port, 5);
    assert_int_equal(npos, 3);
    assert_string_equal(pos[0], "set");
    assert_string_equal(pos[2], "--not-a-flag"); /* after the first positional, all are positional */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_types),
        cmocka_unit_test(test_suffixes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_positionals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
