/* test_snapshot_file.c - the stage 6 snapshot file format without a server:
 * a store and a session table written and read back alike (binary keys, the
 * empty key and value, sessions with and without a reply, the table's
 * limit); and every way a file can be damaged refused with an offset at or
 * before the damage: a byte flipped at every offset, the file cut at every
 * length, bytes after the trailer, and a record dropped at a boundary. The
 * header keeps the configuration and member addresses given to it. A writer
 * given a rate takes at least bytes / rate seconds and writes the same file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "snapshot_file.h"

typedef struct fixture {
    char dir[64], path[128];
    kv_store store;
    sessions table;
    unsigned char *bytes; /* the written file */
    size_t size;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/snapfile-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/s.snap", f->dir);
    assert_int_equal(kv_store_init(&f->store), 0);
    sessions_init(&f->table, 7);
    assert_int_equal(kv_store_set(&f->store, "alpha", 5, "one", 3), 0);
    assert_int_equal(kv_store_set(&f->store, "", 0, "empty key", 9), 0);
    assert_int_equal(kv_store_set(&f->store, "nothing", 7, "", 0), 0);
    assert_int_equal(kv_store_set(&f->store, "bin\0ary", 7, "\xff\x00\x01", 3), 0);
    assert_int_equal(sessions_open(&f->table, 10, 0), 0);
    assert_int_equal(sessions_record(sessions_find(&f->table, 10), 3, 15, ":42\r\n", 5), 0);
    assert_int_equal(sessions_open(&f->table, 20, 0), 0); /* no write yet: no reply */
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    kv_store_free(&f->store);
    sessions_free(&f->table);
    free(f->bytes);
    free(f);
    return 0;
}

static void write_and_slurp(fixture *f) {
    uint64_t bytes = 0;
    assert_int_equal(snap_write_file(f->path, 1234, 5, &f->store, &f->table, NULL, 0, &bytes), 0);
    FILE *fp = fopen(f->path, "rb");
    assert_non_null(fp);
    f->bytes = malloc(bytes);
    f->size = fread(f->bytes, 1, bytes, fp);
    fclose(fp);
    assert_int_equal(f->size, bytes);
}

static void put_file(const fixture *f, const unsigned char *p, size_t n) {
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    fclose(fp);
}

/* Reads the file; returns 0 or -1, and the offset the error names. */
static int read_back(const fixture *f, snap_info *info, long *offset, char *err, size_t errlen) {
    kv_store s;
    sessions t;
    assert_int_equal(kv_store_init(&s), 0);
    sessions_init(&t, 1);
    err[0] = '\0';
    int r = snap_read_file(f->path, &s, &t, info, err, errlen);
    *offset = -1;
    if (r != 0) assert_int_equal(sscanf(err, "offset %ld", offset), 1);
    kv_store_free(&s);
    sessions_free(&t);
    return r;
}

/* The configuration and the address table come back as written; without
 * them the header says none. */
static void test_meta_round_trip(void **state) {
    fixture *f = *state;
    snap_meta meta = {.conf = {1, 0, 0, 0, 1, 4, 0, 0, 0, 0}, .conf_len = 10};
    snprintf(meta.members, sizeof meta.members, "1=127.0.0.1:7006:17006,4=127.0.0.1:7036:17036");
    uint64_t bytes;
    assert_int_equal(snap_write_file(f->path, 9, 2, &f->store, &f->table, &meta, 0, &bytes), 0);
    snap_info info;
    long off;
    char err[256];
    assert_int_equal(read_back(f, &info, &off, err, sizeof err), 0);
    assert_int_equal(info.meta.conf_len, 10);
    assert_memory_equal(info.meta.conf, meta.conf, 10);
    assert_string_equal(info.meta.members, meta.members);
    assert_int_equal(snap_write_file(f->path, 9, 2, &f->store, &f->table, NULL, 0, &bytes), 0);
    assert_int_equal(read_back(f, &info, &off, err, sizeof err), 0);
    assert_int_equal(info.meta.conf_len, 0);
    assert_string_equal(info.meta.members, "");
}

static void test_round_trip(void **state) {
    fixture *f = *state;
    write_and_slurp(f);
    kv_store s;
    sessions t;
    assert_int_equal(kv_store_init(&s), 0);
    sessions_init(&t, 1);
    snap_info info;
    char err[256] = "";
    assert_int_equal(snap_read_file(f->path, &s, &t, &info, err, sizeof err), 0);
    assert_int_equal(info.index, 1234);
    assert_int_equal(info.term, 5);
    assert_int_equal(info.keys, 4);
    assert_int_equal(info.sessions, 2);
    assert_int_equal(info.bytes, f->size);
    assert_int_equal(kv_store_count(&s), 4);
    const char *v;
    size_t vl;
    assert_true(kv_store_get(&s, "", 0, &v, &vl));
    assert_memory_equal(v, "empty key", 9);
    assert_true(kv_store_get(&s, "nothing", 7, &v, &vl));
    assert_int_equal(vl, 0);
    assert_true(kv_store_get(&s, "bin\0ary", 7, &v, &vl));
    assert_int_equal(vl, 3);
    assert_memory_equal(v, "\xff\x00\x01", 3);
    assert_int_equal(t.max, 7);
    assert_int_equal(sessions_count(&t), 2);
    const session *a = sessions_at(&t, 0), *b = sessions_at(&t, 1);
    assert_int_equal(a->id, 10);
    assert_int_equal(a->last_seq, 3);
    assert_int_equal(a->last_used, 15);
    assert_int_equal(a->reply_len, 5);
    assert_memory_equal(a->reply, ":42\r\n", 5);
    assert_int_equal(b->id, 20);
    assert_int_equal(b->last_seq, 0);
    assert_int_equal(b->last_used, 20);
    assert_null(b->reply);
    kv_store_free(&s);
    sessions_free(&t);
}

static void test_names(void **state) {
    (void)state;
    char name[SNAP_NAME_MAX];
    snap_file_name(name, sizeof name, 0x3e8, 7);
    assert_string_equal(name, "snap-00000000000003e8-0000000000000007.snap");
    uint64_t i, t;
    assert_int_equal(snap_parse_name(name, &i, &t), 1);
    assert_int_equal(i, 0x3e8);
    assert_int_equal(t, 7);
    assert_int_equal(snap_parse_name("snap-00000000000003e8-0000000000000007.snap.tmp", &i, &t), 0);
    assert_int_equal(snap_parse_name("snap-00000000000003E8-0000000000000007.snap", &i, &t), 0);
    assert_int_equal(snap_parse_name("snap-1-2.snap", &i, &t), 0);
}

static void test_every_flipped_byte_is_refused(void **state) {
    fixture *f = *state;
    write_and_slurp(f);
    unsigned char *copy = malloc(f->size);
    for (size_t pos = 0; pos < f->size; pos++) {
        memcpy(copy, f->bytes, f->size);
        copy[pos] ^= 0x5a;
        put_file(f, copy, f->size);
        snap_info info;
        long off;
        char err[256];
        if (read_back(f, &info, &off, err, sizeof err) == 0) fail_msg("a flip at offset %zu was accepted", pos);
        if (off < 0 || (size_t)off > pos) fail_msg("flip at %zu reported as '%s'", pos, err);
    }
    free(copy);
}

static void test_every_cut_is_refused(void **state) {
    fixture *f = *state;
    write_and_slurp(f);
    for (size_t len = 0; len < f->size; len++) {
        put_file(f, f->bytes, len);
        snap_info info;
        long off;
        char err[256];
        if (read_back(f, &info, &off, err, sizeof err) == 0) fail_msg("a file cut at %zu bytes was accepted", len);
        if (off < 0 || (size_t)off > len) fail_msg("cut at %zu reported as '%s'", len, err);
    }
}

static void test_bytes_after_trailer_are_refused(void **state) {
    fixture *f = *state;
    write_and_slurp(f);
    unsigned char *longer = malloc(f->size + 1);
    memcpy(longer, f->bytes, f->size);
    longer[f->size] = 0;
    put_file(f, longer, f->size + 1);
    snap_info info;
    long off;
    char err[256];
    assert_int_equal(read_back(f, &info, &off, err, sizeof err), -1);
    assert_non_null(strstr(err, "after the trailer"));
    free(longer);
}

/* A whole record cut out at its boundaries keeps every record's own CRC
 * valid: the counts and the file CRC must catch it. */
static void test_missing_record_is_refused(void **state) {
    fixture *f = *state;
    write_and_slurp(f);
    size_t first = SNAP_MAGIC_LEN;
    size_t hlen = ((size_t)f->bytes[first] << 24 | (size_t)f->bytes[first + 1] << 16 |
                   (size_t)f->bytes[first + 2] << 8 | f->bytes[first + 3]) + 8;
    size_t second = first + hlen; /* the first key record */
    size_t klen = ((size_t)f->bytes[second] << 24 | (size_t)f->bytes[second + 1] << 16 |
                   (size_t)f->bytes[second + 2] << 8 | f->bytes[second + 3]) + 8;
    unsigned char *cut = malloc(f->size);
    memcpy(cut, f->bytes, second);
    memcpy(cut + second, f->bytes + second + klen, f->size - second - klen);
    put_file(f, cut, f->size - klen);
    snap_info info;
    long off;
    char err[256];
    assert_int_equal(read_back(f, &info, &off, err, sizeof err), -1);
    assert_non_null(strstr(err, "out of place"));
    free(cut);
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* About 600 KB (three of the writer's chunks) at a rate of its own size a
 * second: one second at least, where an unpaced write takes milliseconds;
 * the bytes are those of the unpaced file. */
static void test_rate_is_kept(void **state) {
    fixture *f = *state;
    char key[16], val[1000];
    memset(val, 'v', sizeof val);
    for (int i = 0; i < 600; i++) {
        snprintf(key, sizeof key, "k%04d", i);
        assert_int_equal(kv_store_set(&f->store, key, strlen(key), val, sizeof val), 0);
    }
    write_and_slurp(f);
    uint64_t bytes = 0;
    double t0 = seconds_now();
    assert_int_equal(snap_write_file(f->path, 1234, 5, &f->store, &f->table, NULL, f->size, &bytes), 0);
    double took = seconds_now() - t0;
    assert_int_equal(bytes, f->size);
    assert_true(took >= 0.999);
    FILE *fp = fopen(f->path, "rb");
    assert_non_null(fp);
    unsigned char *again = malloc(bytes);
    assert_int_equal(fread(again, 1, bytes, fp), bytes);
    fclose(fp);
    assert_memory_equal(again, f->bytes, bytes);
    free(again);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test(test_names),
        cmocka_unit_test_setup_teardown(test_meta_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_flipped_byte_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_cut_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_after_trailer_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_record_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_is_kept, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
