/* test_datadir.c - the data directory: nested directories created, a second
 * lock on the same directory refused (and released when its holder closes
 * it), the LOCK file naming the holder, and datadir_fsync_parent's idea of
 * "the parent" for every shape of path. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "datadir.h"
#include "log.h"

static int setup(void **state) {
    char *dir = strdup("/tmp/kvdatadir-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    kv_log_set_level(KV_LOG_ERROR);
    *state = dir;
    return 0;
}

static int teardown(void **state) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", (char *)*state);
    assert_int_equal(system(cmd), 0);
    free(*state);
    return 0;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_nested_create_and_lock(void **state) {
    char path[256];
    snprintf(path, sizeof path, "%s/a/b/c", (char *)*state);
    int fd = datadir_open_and_lock(path);
    assert_true(fd >= 0);
    assert_true(is_dir(path));
    /* The holder's pid is in LOCK, for the refusal message. */
    char lock[300], buf[32] = "";
    snprintf(lock, sizeof lock, "%s/LOCK", path);
    FILE *fp = fopen(lock, "r");
    assert_non_null(fp);
    assert_non_null(fgets(buf, sizeof buf, fp));
    fclose(fp);
    assert_int_equal(atoi(buf), (int)getpid());
    /* A second open of the same directory is refused while the first holds it. */
    assert_int_equal(datadir_open_and_lock(path), -1);
    close(fd);
    fd = datadir_open_and_lock(path);
    assert_true(fd >= 0);
    close(fd);
}

static void test_create_fails_cleanly(void **state) {
    char path[256];
    snprintf(path, sizeof path, "%s/file", (char *)*state);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    char below[300];
    snprintf(below, sizeof below, "%s/sub", path); /* a directory under a regular file */
    assert_int_equal(datadir_open_and_lock(below), -1);
}

static void test_fsync_parent_paths(void **state) {
    char path[256];
    snprintf(path, sizeof path, "%s/x", (char *)*state);
    assert_int_equal(datadir_fsync_parent(path), 0); /* parent exists; x need not */
    assert_int_equal(datadir_fsync_parent("/tmp"), 0); /* parent is the root */
    assert_int_equal(datadir_fsync_parent("relative-name"), 0); /* parent is "." */
    snprintf(path, sizeof path, "%s/missing/x", (char *)*state);
    assert_int_equal(datadir_fsync_parent(path), -1);
    assert_int_equal(errno, ENOENT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nested_create_and_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_fails_cleanly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_parent_paths, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
