/* test_wal_alloc.c - wal_open when memory runs out: every allocation it
 * makes (listing the directory, the segment table, paths, replaying into
 * the store) is made to fail in turn. Each failure must be refused cleanly:
 * -1, nothing leaked, nothing on disk changed; and the first run that gets
 * all its memory must replay everything.
 *
 * Allocation failure is injected by linking this test with
 * -Wl,--wrap=malloc,... (see CMakeLists.txt): calls from the project's own
 * code go through the wrappers below, which count live allocations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "apply.h"
#include "log.h"
#include "wal.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void __real_free(void *p);

static long live_allocs; /* made through the wrappers and not yet freed */
static long alloc_count; /* allocations attempted since arming */
static long fail_at;     /* this attempt fails; 0: none */

static int injected_failure(void) { return fail_at > 0 && ++alloc_count == fail_at; }

void *__wrap_malloc(size_t n) {
    if (injected_failure()) return NULL;
    void *p = __real_malloc(n);
    if (p) live_allocs++;
    return p;
}

void *__wrap_calloc(size_t n, size_t size) {
    if (injected_failure()) return NULL;
    void *p = __real_calloc(n, size);
    if (p) live_allocs++;
    return p;
}

void *__wrap_realloc(void *p, size_t n) {
    if (injected_failure()) return NULL;
    void *q = __real_realloc(p, n);
    if (q && !p) live_allocs++;
    return q;
}

char *__wrap_strdup(const char *s) {
    if (injected_failure()) return NULL;
    char *p = __real_strdup(s);
    if (p) live_allocs++;
    return p;
}

void __wrap_free(void *p) {
    if (p) live_allocs--;
    __real_free(p);
}

static int replay_into(void *ctx, const Kv__Command *cmd) { return apply_command(ctx, cmd) < 0 ? -1 : 0; }

static void set_cmd(Kv__Command *cmd, const char *key, const char *val) {
    kv__command__init(cmd);
    cmd->op = KV__COMMAND__OP__SET;
    cmd->key.data = (uint8_t *)key;
    cmd->key.len = strlen(key);
    cmd->value.data = (uint8_t *)val;
    cmd->value.len = strlen(val);
}

static void write_records(wal *w, kv_store *store, int from, int n) {
    for (int i = from; i < from + n; i++) {
        char k[32], v[32];
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "v%d", i);
        Kv__Command cmd;
        set_cmd(&cmd, k, v);
        assert_int_equal(wal_append(w, &cmd), (uint64_t)i);
        assert_true(apply_command(store, &cmd) >= 0);
        assert_int_equal(wal_write(w), 0);
        assert_int_equal(wal_rotate_if_full(w), 0);
    }
}

/* A directory with every kind of file recovery lists: a base, several
 * segments after it, and a temp file left by an interrupted compaction. */
static void make_log(const char *dir) {
    kv_store store;
    assert_int_equal(kv_store_init(&store), 0);
    wal w;
    wal_replay_stats st;
    assert_int_equal(wal_open(&w, dir, 256, replay_into, &store, &st), 0);
    write_records(&w, &store, 1, 40);
    assert_int_equal(wal_rotate(&w), 0);
    uint64_t upto = wal_current_first(&w) - 1;
    assert_int_equal(wal_write_base(w.dir, upto, &store), 0);
    assert_int_equal(wal_install_base(&w, upto), 0);
    write_records(&w, &store, 41, 40);
    assert_int_equal(wal_write_base(w.dir, 60, &store), 0); /* left as a .tmp */
    assert_true(wal_file_count(&w) > 3);
    wal_close(&w);
    kv_store_free(&store);
}

static long dir_entries(const char *dir) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls -A '%s/wal' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    long n = -1;
    assert_int_equal(fscanf(p, "%ld", &n), 1);
    pclose(p);
    return n;
}

static void test_every_allocation_failure_is_refused_cleanly(void **state) {
    (void)state;
    char dir[] = "/tmp/kvwal-alloc-XXXXXX";
    assert_non_null(mkdtemp(dir));
    make_log(dir);
    long files_before = dir_entries(dir);
    long failures = 0;
    for (long n = 1;; n++) {
        assert_true(n < 100000); /* wal_open must succeed once it gets its memory */
        kv_store store;
        long baseline = live_allocs;
        assert_int_equal(kv_store_init(&store), 0);
        wal w;
        wal_replay_stats st;
        alloc_count = 0;
        fail_at = n;
        int r = wal_open(&w, dir, 256, replay_into, &store, &st);
        int failed_injected = alloc_count >= n;
        fail_at = 0;
        if (r == 0) {
            assert_int_equal(kv_store_count(&store), 80);
            wal_close(&w);
            kv_store_free(&store);
            assert_int_equal(live_allocs, baseline);
            if (!failed_injected) break; /* it got every allocation it asked for */
            /* A failure it tolerates (the store keeps its smaller table).
             * A successful open removes leftovers: count the files again. */
            files_before = dir_entries(dir);
            continue;
        }
        failures++;
        kv_store_free(&store);
        assert_int_equal(live_allocs, baseline); /* nothing leaked by the refused open */
        assert_int_equal(dir_entries(dir), files_before); /* nothing removed before replay succeeded */
    }
    assert_true(failures > 10); /* the sweep really went through the listing and replay */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    kv_log_set_level(KV_LOG_ERROR); /* the refusals log one line each */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_failure_is_refused_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
