/* test_wal_read.c - reading the log back by index (stage 4's wal_read.c):
 * from any index, across segment rotations, only what is written, whole
 * frames as on disk; a segment deleted by compaction under an open reader
 * stays readable, and an index compaction has removed is refused; records
 * just written are handed out from the log's memory, not read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <unistd.h>

#include "apply.h"
#include "log.h"
#include "record.h"
#include "wal.h"
#include "wal_files.h"
#include "wal_read.h"

typedef struct fixture {
    char dir[64];
    kv_store store;
    wal w;
} fixture;

static int replay_into(void *ctx, const Kv__Command *cmd) { return apply_command(ctx, cmd) < 0 ? -1 : 0; }

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/kvwalread-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    kv_log_set_level(KV_LOG_ERROR);
    assert_int_equal(kv_store_init(&f->store), 0);
    wal_replay_stats st;
    assert_int_equal(wal_open(&f->w, f->dir, 512, replay_into, &f->store, &st), 0); /* tiny segments */
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    wal_close(&f->w);
    kv_store_free(&f->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Appends records from..to ("k<i>" = "v<i>"), written, rotating when full. */
static void append(fixture *f, int from, int to, int write) {
    for (int i = from; i <= to; i++) {
        char k[32], v[32];
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "v%d", i);
        Kv__Command cmd = KV__COMMAND__INIT;
        cmd.op = KV__COMMAND__OP__SET;
        cmd.key.data = (uint8_t *)k;
        cmd.key.len = strlen(k);
        cmd.value.data = (uint8_t *)v;
        cmd.value.len = strlen(v);
        assert_int_equal(wal_append(&f->w, &cmd), (uint64_t)i);
        assert_true(apply_command(&f->store, &cmd) >= 0);
        if (write) {
            assert_int_equal(wal_write(&f->w), 0);
            assert_int_equal(wal_rotate_if_full(&f->w), 0);
        }
    }
}

/* Reads everything from `from` with batches of at most max bytes; checks the
 * indexes run from..to with no gap and every frame decodes. */
static void read_all(fixture *f, uint64_t from, uint64_t to, size_t max) {
    wal_reader r;
    assert_int_equal(wal_reader_open(&r, &f->w, from), 0);
    uint64_t expect = from;
    for (;;) {
        kv_buf b;
        kv_buf_init(&b);
        uint64_t n = 0;
        assert_int_equal(wal_reader_read(&r, &b, max, &n), 0);
        size_t off = 0;
        while (off < kv_buf_readable(&b)) {
            Kv__LogRecord *rec;
            size_t len;
            assert_int_equal(record_decode((const unsigned char *)kv_buf_rptr(&b) + off, kv_buf_readable(&b) - off,
                                           &rec, &len, NULL),
                             RECORD_OK);
            assert_int_equal(rec->index, expect);
            expect++;
            record_free(rec);
            off += len;
        }
        kv_buf_free(&b);
        if (n == 0) break;
    }
    assert_int_equal(expect, to + 1);
    wal_reader_close(&r);
}

static void test_reads_from_any_index_across_segments(void **state) {
    fixture *f = *state;
    append(f, 1, 200, 1);
    assert_true(f->w.nsegs > 5); /* the log really spans segments */
    for (uint64_t from = 1; from <= 201; from += 7) read_all(f, from, 200, 100);
    read_all(f, 1, 200, 1 << 20); /* one big batch */
    read_all(f, 1, 200, 9);       /* batches smaller than a record: each goes alone */
    read_all(f, 201, 200, 100);   /* at the end: nothing, no error */
}

static void test_reads_only_what_is_written(void **state) {
    fixture *f = *state;
    append(f, 1, 10, 1);
    append(f, 11, 20, 0); /* appended, in memory only */
    read_all(f, 1, 10, 1 << 20);
    assert_int_equal(wal_write(&f->w), 0);
    read_all(f, 1, 20, 1 << 20);
}

static void test_open_segment_survives_compaction_and_gone_index_is_refused(void **state) {
    fixture *f = *state;
    append(f, 1, 100, 1);
    wal_reader r;
    assert_int_equal(wal_reader_open(&r, &f->w, 2), 0);
    /* Compact everything so far: the segments the reader needs are deleted. */
    assert_int_equal(wal_rotate(&f->w), 0);
    uint64_t upto = wal_current_first(&f->w) - 1;
    assert_int_equal(wal_write_base(f->w.dir, upto, &f->store), 0);
    assert_int_equal(wal_install_base(&f->w, upto), 0);
    /* The open segment is still read to its end; the next one is gone. */
    kv_buf b;
    kv_buf_init(&b);
    uint64_t n = 0;
    assert_int_equal(wal_reader_read(&r, &b, 1 << 20, &n), -1);
    assert_true(n >= 1);          /* its own segment, read to the end */
    assert_true(r.next <= upto);  /* then the next segment was gone */
    kv_buf_free(&b);
    wal_reader_close(&r);
    wal_reader r2;
    assert_int_equal(wal_reader_open(&r2, &f->w, 50), -1); /* covered by the base: needs a full copy */
    append(f, 101, 110, 1);
    read_all(f, upto + 1, 110, 64);
}

/* The last write's bytes are served from memory: proven by damaging them in
 * the file, where a reader that went to the file would find garbage. A read
 * that starts before them still comes from the file, whole. */
static void test_just_written_records_come_from_memory(void **state) {
    fixture *f = *state;
    append(f, 1, 4, 1);
    append(f, 5, 9, 0);
    assert_int_equal(wal_write(&f->w), 0); /* 5..9 in one write: the last write */
    assert_int_equal(wal_current_first(&f->w), f->w.last_write_seg);
    size_t n = kv_buf_readable(wal_last_write(&f->w));
    assert_true(n > 0);
    char name[WAL_NAME_MAX];
    wal_segment_name(name, sizeof name, f->w.last_write_seg);
    int fd = openat(f->w.dirfd, name, O_RDWR);
    assert_true(fd >= 0);
    char *saved = malloc(n), *junk = malloc(n);
    assert_int_equal(pread(fd, saved, n, (off_t)f->w.last_write_off), (ssize_t)n);
    memset(junk, 0x5a, n);
    assert_int_equal(pwrite(fd, junk, n, (off_t)f->w.last_write_off), (ssize_t)n);
    read_all(f, 5, 9, 1 << 20); /* a caught-up follower's batch */
    read_all(f, 7, 9, 1 << 20); /* from inside the last write */
    read_all(f, 5, 9, 9);       /* one record per batch */
    /* Once the log writes again, those bytes are only in the file. */
    assert_int_equal(pwrite(fd, saved, n, (off_t)f->w.last_write_off), (ssize_t)n);
    append(f, 10, 10, 1);
    read_all(f, 1, 10, 1 << 20); /* starts in the file, ends in memory */
    read_all(f, 5, 10, 1 << 20);
    close(fd);
    free(saved);
    free(junk);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reads_from_any_index_across_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_only_what_is_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_segment_survives_compaction_and_gone_index_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_just_written_records_come_from_memory, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
