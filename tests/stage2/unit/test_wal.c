/* test_wal.c - the write-ahead log on real files: replay after reopen,
 * rotation, torn tails cut at every byte, corruption refused without
 * touching anything, and every crash point of a compaction. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "apply.h"
#include "log.h"
#include "record.h"
#include "wal.h"

typedef struct fixture {
    char dir[64];
    kv_store store;
} fixture;

static int replay_into(void *ctx, const Kv__Command *cmd) { return apply_command(ctx, cmd) < 0 ? -1 : 0; }

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/kvwal-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    kv_log_set_level(KV_LOG_ERROR);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void set_cmd(Kv__Command *cmd, const char *key, const char *val) {
    kv__command__init(cmd);
    cmd->op = KV__COMMAND__OP__SET;
    cmd->key.data = (uint8_t *)key;
    cmd->key.len = strlen(key);
    cmd->value.data = (uint8_t *)val;
    cmd->value.len = strlen(val);
}

/* Opens the log into a fresh store; returns wal_open's result. */
static int open_log(fixture *f, wal *w, size_t seglimit, wal_replay_stats *st) {
    kv_store_free(&f->store);
    assert_int_equal(kv_store_init(&f->store), 0);
    return wal_open(w, f->dir, seglimit, replay_into, &f->store, st);
}

/* Writes n records "k<i>" = "v<i>" (i from 1), each written through. */
static void write_history(wal *w, int from, int n) {
    for (int i = from; i < from + n; i++) {
        char k[32], v[32];
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "v%d", i);
        Kv__Command cmd;
        set_cmd(&cmd, k, v);
        assert_int_equal(wal_append(w, &cmd), (uint64_t)i);
        assert_int_equal(wal_write(w), 0);
        assert_int_equal(wal_rotate_if_full(w), 0);
    }
}

static int has_value(fixture *f, int i) {
    char k[32], v[32];
    snprintf(k, sizeof k, "k%d", i);
    snprintf(v, sizeof v, "v%d", i);
    const char *got;
    size_t len;
    return kv_store_get(&f->store, k, strlen(k), &got, &len) && len == strlen(v) && memcmp(got, v, len) == 0;
}

static char *path_in(fixture *f, const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%.64s/wal/%.200s", f->dir, name);
    return p;
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Where the records of the current segment end; preallocated zeros follow. */
static long data_end(const wal *w) { return (long)w->segs[w->nsegs - 1].bytes; }

/* 1 if every byte of the file from offset on is zero. */
static int zero_from(const char *path, long offset) {
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, offset, SEEK_SET), 0);
    int c, zero = 1;
    while ((c = fgetc(fp)) != EOF) zero &= c == 0;
    fclose(fp);
    return zero;
}

static void test_reopen_replays_everything(void **state) {
    fixture *f = *state;
    wal w;
    wal_replay_stats st;
    assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
    assert_int_equal(st.records, 0);
    write_history(&w, 1, 100);
    Kv__Command del = KV__COMMAND__INIT;
    ProtobufCBinaryData key = {2, (uint8_t *)"k5"};
    del.op = KV__COMMAND__OP__DEL;
    del.n_keys = 1;
    del.keys = &key;
    assert_int_equal(wal_append(&w, &del), 101);
    assert_int_equal(wal_write(&w), 0);
    wal_close(&w);

    assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
    assert_int_equal(st.records, 101);
    assert_int_equal(kv_store_count(&f->store), 99);
    assert_false(has_value(f, 5));
    assert_true(has_value(f, 100));
    assert_int_equal(w.next_index, 102);
    wal_close(&w);
    kv_store_free(&f->store);
}

static void test_rotation_makes_segments_and_replays_all(void **state) {
    fixture *f = *state;
    wal w;
    wal_replay_stats st;
    assert_int_equal(open_log(f, &w, 256, &st), 0);
    write_history(&w, 1, 200);
    size_t files = wal_file_count(&w);
    assert_true(files > 5);
    /* Only the last segment keeps preallocated space; rotation trims the others. */
    for (size_t i = 0; i + 1 < w.nsegs; i++) {
        char name[64];
        snprintf(name, sizeof name, "%016llx.log", (unsigned long long)w.segs[i].first);
        assert_int_equal(file_size(path_in(f, name)), (long)w.segs[i].bytes);
    }
    wal_close(&w);
    assert_int_equal(open_log(f, &w, 256, &st), 0);
    assert_int_equal(st.records, 200);
    assert_int_equal(wal_file_count(&w), files);
    for (int i = 1; i <= 200; i++) assert_true(has_value(f, i));
    wal_close(&w);
    kv_store_free(&f->store);
}

static void test_torn_tail_at_every_byte(void **state) {
    fixture *f = *state;
    wal w;
    wal_replay_stats st;
    assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
    write_history(&w, 1, 4);
    long before_last = data_end(&w);
    write_history(&w, 5, 1);
    long full = data_end(&w);
    wal_close(&w);
    const char *seg = path_in(f, "0000000000000001.log");
    assert_true(file_size(seg) > full); /* preallocated */
    char *orig = malloc((size_t)full + 1);
    FILE *fp = fopen(seg, "rb");
    assert_int_equal(fread(orig, 1, (size_t)full, fp), (size_t)full);
    fclose(fp);
    for (long cut = before_last; cut < full; cut++) {
        fp = fopen(seg, "wb");
        assert_int_equal(fwrite(orig, 1, (size_t)cut, fp), (size_t)cut);
        fclose(fp);
        assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
        assert_int_equal(st.records, 4); /* exactly the prefix */
        assert_true(has_value(f, 4));
        assert_false(has_value(f, 5));
        /* Cut off at the boundary: the torn bytes are gone (or were zeros,
         * which are indistinguishable from preallocated space). */
        assert_int_equal(data_end(&w), before_last);
        assert_true(zero_from(seg, before_last));
        /* The log continues where the prefix ends. */
        assert_int_equal(w.next_index, 5);
        write_history(&w, 5, 1);
        wal_close(&w);
        assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
        assert_int_equal(st.records, 5);
        wal_close(&w);
    }
    free(orig);
    kv_store_free(&f->store);
}

/* Reads every file under wal/ into one string "name:size:bytes;..." to
 * prove a refused start changed nothing. */
static char *snapshot_dir(fixture *f) {
    char dir[128];
    snprintf(dir, sizeof dir, "%s/wal", f->dir);
    size_t cap = 1 << 20, len = 0;
    char *out = calloc(1, cap);
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            const char *p = path_in(f, names[i]->d_name);
            long sz = file_size(p);
            len += (size_t)snprintf(out + len, cap - len, "%s:%ld:", names[i]->d_name, sz);
            FILE *fp = fopen(p, "rb");
            len += fread(out + len, 1, cap - len - 1, fp);
            fclose(fp);
        }
        free(names[i]);
    }
    free(names);
    return out;
}

/* Opening the log must fail and leave every file under wal/ as it was. */
static void assert_refused_unchanged(fixture *f, size_t seglimit) {
    wal w;
    wal_replay_stats st;
    char *before = snapshot_dir(f);
    assert_int_equal(open_log(f, &w, seglimit, &st), -1);
    wal_close(&w);
    char *after = snapshot_dir(f);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

/* XORs the byte at offset of path with mask. */
static void flip_bits(const char *path, long offset, unsigned char mask) {
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, offset), 1);
    c ^= mask;
    assert_int_equal(pwrite(fd, &c, 1, offset), 1);
    close(fd);
}

static void test_corruption_in_earlier_segment_refused(void **state) {
    fixture *f = *state;
    wal w;
    wal_replay_stats st;
    assert_int_equal(open_log(f, &w, 256, &st), 0);
    write_history(&w, 1, 50);
    wal_close(&w);
    /* Flip a payload byte of the second record of the first segment. */
    const char *seg = path_in(f, "0000000000000001.log");
    flip_bits(seg, 30, 0x40);
    assert_refused_unchanged(f, 256);
    kv_store_free(&f->store);
}

static void test_missing_segment_refused(void **state) {
    fixture *f = *state;
    wal w;
    wal_replay_stats st;
    assert_int_equal(open_log(f, &w, 256, &st), 0);
    write_history(&w, 1, 50);
    uint64_t second = w.segs[1].first;
    wal_close(&w);
    char name[64];
    snprintf(name, sizeof name, "%016llx.log", (unsigned long long)second);
    assert_int_equal(unlink(path_in(f, name)), 0);
    assert_int_equal(open_log(f, &w, 256, &st), -1);
    wal_close(&w);
    kv_store_free(&f->store);
}

/* Compaction: run each step by hand and "crash" (close without finishing)
 * after it; every intermediate directory must recover to the same data. */
static void test_compaction_crash_points(void **state) {
    fixture *f = *state;
    wal w;
    wal_replay_stats st;
    assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
    for (int round = 0; round < 20; round++) write_history(&w, round * 10 + 1, 10); /* 200 records */
    assert_int_equal(wal_rotate(&w), 0);
    uint64_t upto = wal_current_first(&w) - 1;
    assert_int_equal(upto, 200);
    write_history(&w, 201, 5); /* writes after the fork point */
    /* What the forked child sees: the store as of record 200. */
    kv_store snap;
    assert_int_equal(kv_store_init(&snap), 0);
    for (int i = 1; i <= 200; i++) {
        char k[32], v[32];
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "v%d", i);
        assert_int_equal(kv_store_set(&snap, k, strlen(k), v, strlen(v)), 0);
    }

    /* Crash point 1: the temp base is written but not renamed. */
    assert_int_equal(wal_write_base(w.dir, upto, &snap), 0);
    wal_close(&w);
    assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
    assert_int_equal(kv_store_count(&f->store), 205);
    assert_int_equal(st.records, 205);
    assert_int_equal(file_size(path_in(f, "base-00000000000000c8.log.tmp")), -1); /* cleaned up */

    /* Crash point 2: renamed into place, old segment not yet deleted. */
    assert_int_equal(wal_write_base(w.dir, upto, &snap), 0);
    kv_store_free(&snap);
    wal_close(&w);
    char from[512];
    snprintf(from, sizeof from, "%s", path_in(f, "base-00000000000000c8.log.tmp"));
    assert_int_equal(rename(from, path_in(f, "base-00000000000000c8.log")), 0);
    assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
    assert_int_equal(kv_store_count(&f->store), 205);
    for (int i = 1; i <= 205; i++) assert_true(has_value(f, i));
    assert_int_equal(st.records, 205); /* 200 from the base, 5 after it */
    assert_int_equal(file_size(path_in(f, "0000000000000001.log")), -1); /* covered segment removed */
    wal_close(&w);
    kv_store_free(&f->store);
}

static void test_install_base_shrinks_log(void **state) {
    fixture *f = *state;
    wal w;
    wal_replay_stats st;
    assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
    for (int round = 0; round < 50; round++) {
        Kv__Command cmd;
        set_cmd(&cmd, "same-key", round % 2 ? "odd" : "even");
        wal_append(&w, &cmd);
    }
    assert_int_equal(wal_write(&w), 0);
    uint64_t before = wal_total_bytes(&w);
    assert_int_equal(wal_rotate(&w), 0);
    uint64_t upto = wal_current_first(&w) - 1;
    kv_store_set(&f->store, "same-key", 8, "odd", 3);
    assert_int_equal(wal_write_base(w.dir, upto, &f->store), 0);
    assert_int_equal(wal_install_base(&w, upto), 0);
    assert_true(wal_total_bytes(&w) < before / 10);
    assert_int_equal(wal_file_count(&w), 2); /* base + current segment */
    write_history(&w, 51, 1);
    wal_close(&w);
    assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
    assert_int_equal(kv_store_count(&f->store), 2);
    const char *v;
    size_t n;
    assert_true(kv_store_get(&f->store, "same-key", 8, &v, &n));
    assert_memory_equal(v, "odd", 3);
    wal_close(&w);
    kv_store_free(&f->store);
}


/* Bit rot in the middle of the last segment is not a torn write: the records
 * after it were written (and maybe acknowledged), so refuse, touching nothing. */
static void test_damage_before_valid_records_in_last_segment_refused(void **state) {
    fixture *f = *state;
    wal w;
    wal_replay_stats st;
    assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
    write_history(&w, 1, 9);
    long rec10 = data_end(&w);
    write_history(&w, 10, 91);
    wal_close(&w);
    const char *seg = path_in(f, "0000000000000001.log");
    flip_bits(seg, rec10 + 12, 0x01); /* a payload byte of record 10 */
    assert_refused_unchanged(f, 1 << 20);
    kv_store_free(&f->store);
}

/* A record whose checksum holds but whose index is wrong was never torn. */
static void test_out_of_sequence_record_in_last_segment_refused(void **state) {
    fixture *f = *state;
    wal w;
    wal_replay_stats st;
    assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
    write_history(&w, 1, 5);
    long end = data_end(&w);
    wal_close(&w);
    kv_buf b;
    kv_buf_init(&b);
    Kv__Command cmd;
    set_cmd(&cmd, "k3", "again");
    assert_int_equal(record_encode(&b, 3, 0, &cmd), 0);
    int fd = open(path_in(f, "0000000000000001.log"), O_WRONLY);
    assert_int_equal(pwrite(fd, kv_buf_rptr(&b), kv_buf_readable(&b), end), (ssize_t)kv_buf_readable(&b));
    close(fd);
    kv_buf_free(&b);
    assert_refused_unchanged(f, 1 << 20);
    kv_store_free(&f->store);
}

/* The last segment ends in preallocated zeros, and after a power cut it can
 * come back longer still, the extra blocks zero: either way the zeros are
 * the end of the log, and appends continue right after the last record. */
/* An empty key and an empty value are legal (SET "" ""): they come back from
 * protobuf-c as NULL pointers with length 0, which replay must handle. */
static void test_empty_key_and_value_replay(void **state) {
    fixture *f = *state;
    wal w;
    wal_replay_stats st;
    assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
    Kv__Command cmd;
    set_cmd(&cmd, "", "v");
    assert_int_equal(wal_append(&w, &cmd), 1);
    set_cmd(&cmd, "k", "");
    assert_int_equal(wal_append(&w, &cmd), 2);
    assert_int_equal(wal_write(&w), 0);
    wal_close(&w);
    assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
    assert_int_equal(st.records, 2);
    const char *val;
    size_t len;
    assert_true(kv_store_get(&f->store, "", 0, &val, &len));
    assert_int_equal(len, 1);
    assert_true(kv_store_get(&f->store, "k", 1, &val, &len));
    assert_int_equal(len, 0);
    wal_close(&w);
    kv_store_free(&f->store);
}

static void test_zero_tail_is_end_of_log(void **state) {
    fixture *f = *state;
    wal w;
    wal_replay_stats st;
    assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
    write_history(&w, 1, 5);
    long good = data_end(&w);
    wal_close(&w);
    const char *seg = path_in(f, "0000000000000001.log");
    assert_true(file_size(seg) > good);
    assert_int_equal(truncate(seg, file_size(seg) + 4096), 0);
    assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
    assert_int_equal(st.records, 5);
    assert_int_equal(data_end(&w), good);
    write_history(&w, 6, 1);
    wal_close(&w);
    assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
    assert_int_equal(st.records, 6);
    wal_close(&w);
    kv_store_free(&f->store);
}

/* Rotating with records still in memory must not put them in the new
 * segment (it is named after its first record). */
static void test_rotate_writes_pending_records_first(void **state) {
    fixture *f = *state;
    wal w;
    wal_replay_stats st;
    assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
    write_history(&w, 1, 1);
    Kv__Command cmd;
    set_cmd(&cmd, "k2", "v2");
    assert_int_equal(wal_append(&w, &cmd), 2); /* not written yet */
    assert_int_equal(wal_rotate(&w), 0);
    assert_int_equal(wal_current_first(&w), 3);
    write_history(&w, 3, 1);
    wal_close(&w);
    assert_int_equal(open_log(f, &w, 1 << 20, &st), 0);
    assert_int_equal(st.records, 3);
    for (int i = 1; i <= 3; i++) assert_true(has_value(f, i));
    wal_close(&w);
    kv_store_free(&f->store);
}

/* When the filesystem cannot preallocate (here: a file size limit below the
 * preallocation), the log says so once and goes on appending without it;
 * nothing is lost and the segment holds no zeros. */
static void test_preallocation_failure_falls_back(void **state) {
    fixture *f = *state;
    struct rlimit old, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = 64 * 1024; /* below the 4 MiB the log preallocates ahead */
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of a signal */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    wal w;
    wal_replay_stats st;
    assert_int_equal(open_log(f, &w, 64u * 1024 * 1024, &st), 0);
    write_history(&w, 1, 100);
    assert_int_equal(w.no_prealloc, 1);
    long end = data_end(&w);
    wal_close(&w);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(file_size(path_in(f, "0000000000000001.log")), end); /* no zeros */
    assert_int_equal(open_log(f, &w, 64u * 1024 * 1024, &st), 0);
    assert_int_equal(st.records, 100);
    for (int i = 1; i <= 100; i++) assert_true(has_value(f, i));
    wal_close(&w);
    kv_store_free(&f->store);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reopen_replays_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_makes_segments_and_replays_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_at_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption_in_earlier_segment_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_segment_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_crash_points, setup, teardown),
        cmocka_unit_test_setup_teardown(test_install_base_shrinks_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_before_valid_records_in_last_segment_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_sequence_record_in_last_segment_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_tail_is_end_of_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_key_and_value_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_writes_pending_records_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preallocation_failure_falls_back, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
