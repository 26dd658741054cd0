/* wal_recovery.c - opening the log: replaying the base file and the
 * segments through the caller's apply function, the torn-tail and
 * corruption rules, and readying the last segment for appending.
 *
 * Recovery changes nothing on disk until every file has replayed: a refused
 * start leaves the directory exactly as it found it, for a human to inspect. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "datadir.h"
#include "log.h"
#include "record.h"
#include "wal.h"
#include "wal_files.h"

/* Everything one recovery needs to carry from step to step. */
typedef struct recovery {
    wal *w;
    wal_listing files;
    wal_apply_fn apply;
    void *ctx;
    wal_replay_stats *stats;
    uint64_t expect;      /* index the next segment record must carry */
    size_t first_live;    /* files.segs before this are covered by the base */
    int torn;             /* the last segment has a torn tail to cut off */
    off_t last_valid_end; /* in the last segment replayed: offset after its last good record */
} recovery;

typedef enum file_result { FILE_OK, FILE_TORN, FILE_FAIL } file_result;

/* Called before every record of the last segment: the first bytes almost
 * always decide, so look at them before comparing the whole rest (which
 * would make replay quadratic, and is under ASan, whose memcmp checks the
 * whole range first). */
static int all_zero(const unsigned char *p, size_t n) {
    size_t head = n < 64 ? n : 64;
    for (size_t i = 0; i < head; i++)
        if (p[i]) return 0;
    return n <= head || memcmp(p + head - 1, p + head, n - head) == 0;
}

/* "At the tail" is checked, not assumed: a torn append leaves a record cut
 * short or garbled with nothing valid after it. If the frame right after a
 * garbled record (its length field taken at its word) decodes as the next
 * record, the damage is in the middle of the log: bit rot, not a torn write,
 * and truncating there would silently drop records that were acknowledged. */
static int followed_by_next_record(const unsigned char *map, size_t size, size_t off, uint64_t next) {
    if (size - off < RECORD_HEADER_BYTES) return 0;
    const unsigned char *h = map + off;
    size_t len = ((size_t)h[0] << 24) | ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
    if (len > size - off - RECORD_HEADER_BYTES) return 0;
    size_t at = off + RECORD_HEADER_BYTES + len;
    Kv__LogRecord *rec;
    size_t n;
    if (record_decode(map + at, size - at, &rec, &n, NULL) != RECORD_OK) return 0;
    int found = rec->index == next;
    record_free(rec);
    return found;
}

/* Maps path read-only. Returns 0 with *map (NULL for an empty file) and
 * *size, or -1 after logging. */
static int map_file(const char *path, const unsigned char **map, size_t *size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        kv_log(KV_LOG_ERROR, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        kv_log(KV_LOG_ERROR, "cannot stat %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    *size = (size_t)st.st_size;
    *map = NULL;
    if (*size > 0) {
        void *m = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            kv_log(KV_LOG_ERROR, "cannot map %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        madvise(m, *size, MADV_SEQUENTIAL);
        *map = m;
    }
    close(fd);
    return 0;
}

/* Replays one file. For segments, *expect is the index its first record
 * must carry (records then count up by one); for the base file *expect is
 * 0 and indexes are not checked. *valid_end receives the offset after the
 * last good record. A bad record is FILE_TORN when tail_ok (the caller says
 * whether this is the last segment) and it really is at the tail, and
 * FILE_FAIL otherwise.
 *
 * The last segment is preallocated (wal_append.c), so it normally ends in
 * zeros: a record boundary followed by nothing but zero bytes is the clean
 * end of the log, not damage. (A zero length is never a real record: every
 * record carries a command, so its payload is at least a few bytes.) */
static file_result replay_file(recovery *r, const char *path, uint64_t *expect, int tail_ok, off_t *valid_end) {
    const unsigned char *map;
    size_t size;
    if (map_file(path, &map, &size) != 0) return FILE_FAIL;
    size_t off = 0;
    file_result result = FILE_OK;
    while (off < size) {
        if (tail_ok && all_zero(map + off, size - off)) break;
        Kv__LogRecord *rec;
        size_t len;
        const char *why;
        record_status s = record_decode(map + off, size - off, &rec, &len, &why);
        /* LAB torn-tail: a bad record is a torn write only at the tail of the last segment with nothing valid after it; anything else is corruption */
        int torn_possible = tail_ok;
        if (s == RECORD_OK && *expect && rec->index != *expect) {
            /* Its checksum holds, so it was never torn: it is in the wrong place. */
            why = "record index out of sequence";
            record_free(rec);
            s = RECORD_BAD;
            torn_possible = 0;
        } else if (s == RECORD_BAD && tail_ok && *expect && followed_by_next_record(map, size, off, *expect + 1)) {
            why = "damaged record followed by valid ones (not a torn write)";
            torn_possible = 0;
        }
        if (s != RECORD_OK) {
            if (torn_possible) {
                kv_log(KV_LOG_WARN, "torn write at the tail of %s: offset %zu (%s); truncating the file there",
                       path, off, why);
                result = FILE_TORN;
            } else {
                kv_log(KV_LOG_ERROR, "corrupt WAL: %s offset %zu: %s; refusing to start (nothing was modified)",
                       path, off, why);
                result = FILE_FAIL;
            }
            break;
        }
        /* END LAB */
        if (r->apply(r->ctx, rec->command) != 0) {
            kv_log(KV_LOG_ERROR, "out of memory replaying %s at offset %zu", path, off);
            record_free(rec);
            result = FILE_FAIL;
            break;
        }
        record_free(rec);
        if (*expect) (*expect)++;
        off += len;
        r->stats->records++;
        r->stats->bytes += len;
    }
    if (map) munmap((void *)map, size);
    *valid_end = (off_t)off;
    return result;
}

/* Step 1: <data-dir>/wal exists (its name durable) and is open. */
static int open_wal_dir(wal *w, const char *data_dir) {
    w->dir = wal_path_join(data_dir, "wal");
    if (!w->dir) return -1;
    if (mkdir(w->dir, 0755) == 0) {
        if (datadir_fsync_parent(w->dir) != 0) {
            kv_log(KV_LOG_ERROR, "cannot fsync the directory holding %s: %s", w->dir, strerror(errno));
            return -1;
        }
    } else if (errno != EEXIST) {
        kv_log(KV_LOG_ERROR, "cannot create %s: %s", w->dir, strerror(errno));
        return -1;
    }
    w->dirfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dirfd < 0) {
        kv_log(KV_LOG_ERROR, "cannot open %s: %s", w->dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Step 2: the newest base file, if any, holds the live data up to its
 * index; older ones are leftovers of a compaction that finished. */
static int replay_base(recovery *r) {
    wal *w = r->w;
    r->expect = 1;
    if (r->files.nbases == 0) return 0;
    w->base_index = r->files.bases[r->files.nbases - 1];
    char name[WAL_NAME_MAX];
    wal_base_name(name, sizeof name, w->base_index);
    char *path = wal_path_join(w->dir, name);
    uint64_t no_index_check = 0;
    off_t end = 0;
    file_result res = path ? replay_file(r, path, &no_index_check, 0, &end) : FILE_FAIL;
    free(path);
    if (res != FILE_OK) return -1;
    w->base_bytes = (uint64_t)end;
    r->expect = w->base_index + 1;
    return 0;
}

/* Step 3: every segment after the base, in order, with no gap. Only the
 * last one may end in a torn write. */
static int replay_segments(recovery *r) {
    wal *w = r->w;
    const wal_listing *f = &r->files;
    while (r->first_live < f->nsegs && f->segs[r->first_live] <= w->base_index) r->first_live++;
    /* Stage 6: without a base file the log may start after index 1, its
     * prefix deleted behind a snapshot (which knows the term before it). */
    if (w->base_index == 0 && r->first_live < f->nsegs) r->expect = f->segs[r->first_live];
    for (size_t i = r->first_live; i < f->nsegs; i++) {
        char name[WAL_NAME_MAX];
        wal_segment_name(name, sizeof name, f->segs[i]);
        if (f->segs[i] != r->expect) {
            kv_log(KV_LOG_ERROR,
                   "corrupt WAL: %s/%s offset 0: segment starts at index %" PRIu64 " but %" PRIu64
                   " was expected (a segment is missing); refusing to start (nothing was modified)",
                   w->dir, name, f->segs[i], r->expect);
            return -1;
        }
        char *path = wal_path_join(w->dir, name);
        int is_last = i + 1 == f->nsegs;
        file_result res = path ? replay_file(r, path, &r->expect, is_last, &r->last_valid_end) : FILE_FAIL;
        free(path);
        if (res == FILE_FAIL) return -1;
        r->torn = res == FILE_TORN;
        if (wal_push_segment(w, f->segs[i], (uint64_t)r->last_valid_end) != 0) return -1;
    }
    w->next_index = r->expect;
    w->written_upto = r->expect - 1;
    return 0;
}

/* Step 4 (the first change to the disk): cut a torn tail off, durably. */
static int repair_torn_tail(recovery *r) {
    if (!r->torn) return 0;
    wal *w = r->w;
    char name[WAL_NAME_MAX];
    wal_segment_name(name, sizeof name, w->segs[w->nsegs - 1].first);
    int fd = openat(w->dirfd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ftruncate(fd, r->last_valid_end) != 0 || fdatasync(fd) != 0) {
        kv_log(KV_LOG_ERROR, "cannot truncate %s/%s: %s", w->dir, name, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Step 5: temp files, older bases and the segments the base covers are
 * garbage left by work a crash interrupted or a compaction finished. */
static void remove_leftovers(recovery *r) {
    const wal_listing *f = &r->files;
    char name[WAL_NAME_MAX];
    for (size_t i = 0; i < f->ntmps; i++) wal_remove_file(r->w, f->tmps[i]);
    for (size_t i = 0; i + 1 < f->nbases; i++) {
        wal_base_name(name, sizeof name, f->bases[i]);
        wal_remove_file(r->w, name);
    }
    for (size_t i = 0; i < r->first_live; i++) {
        wal_segment_name(name, sizeof name, f->segs[i]);
        wal_remove_file(r->w, name);
    }
}

/* Step 6: appends go to the last segment (a new one in an empty log). */
static int open_current_segment(wal *w) {
    if (w->nsegs == 0) {
        w->fd = wal_open_segment(w, w->next_index, 1);
        if (w->fd < 0 || wal_push_segment(w, w->next_index, 0) != 0) return -1;
    } else {
        w->fd = wal_open_segment(w, w->segs[w->nsegs - 1].first, 0);
        if (w->fd < 0) return -1;
    }
    struct stat cur;
    if (fstat(w->fd, &cur) != 0) {
        kv_log(KV_LOG_ERROR, "cannot stat the current segment in %s: %s", w->dir, strerror(errno));
        return -1;
    }
    w->alloc_end = (uint64_t)cur.st_size; /* past the data when it ends in preallocated zeros */
    if (wal_fsync_dir(w->dirfd) != 0) kv_log(KV_LOG_WARN, "cannot fsync %s: %s", w->dir, strerror(errno));
    return 0;
}

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

int wal_open(wal *w, const char *data_dir, size_t segment_limit, wal_apply_fn apply, void *ctx,
             wal_replay_stats *stats) {
    memset(w, 0, sizeof *w);
    memset(stats, 0, sizeof *stats);
    w->fd = w->dirfd = -1;
    w->segment_limit = segment_limit;
    kv_buf_init(&w->pending);
    kv_buf_init(&w->last_write);
    recovery r = {.w = w, .apply = apply, .ctx = ctx, .stats = stats};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int ok = open_wal_dir(w, data_dir) == 0 && wal_list_dir(w->dir, &r.files) == 0 && replay_base(&r) == 0 &&
             replay_segments(&r) == 0 && repair_torn_tail(&r) == 0;
    if (ok) {
        remove_leftovers(&r);
        ok = open_current_segment(w) == 0;
    }
    stats->seconds = seconds_since(&t0);
    wal_listing_free(&r.files);
    if (!ok) wal_close(w); /* a failed open holds no memory or descriptors */
    return ok ? 0 : -1;
}

void wal_close(wal *w) {
    if (w->fd >= 0) close(w->fd);
    if (w->dirfd >= 0) close(w->dirfd);
    free(w->dir);
    free(w->segs);
    kv_buf_free(&w->pending);
    kv_buf_free(&w->last_write);
    memset(w, 0, sizeof *w);
    w->fd = w->dirfd = -1;
}
