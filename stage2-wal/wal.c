/* wal.c - the write-ahead log (see wal.h for the layout and rules). */
#include "wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "datadir.h"
#include "log.h"
#include "record.h"

#define SEG_FMT "%016" PRIx64 ".log"
#define BASE_FMT "base-%016" PRIx64 ".log"
#define BASE_WRITE_CHUNK (1024 * 1024)
/* The current segment is grown this far ahead of its data (never past the
 * segment limit's worth) so that appends land inside the file's size. */
#define PREALLOC_BYTES (4u * 1024 * 1024)

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void seg_name(char *out, size_t cap, uint64_t first) { snprintf(out, cap, SEG_FMT, first); }
static void base_name(char *out, size_t cap, uint64_t upto) { snprintf(out, cap, BASE_FMT, upto); }

/* Parses exactly 16 hex digits followed by suffix. */
static int parse_hex_name(const char *s, const char *suffix, uint64_t *out) {
    if (strlen(s) != 16 + strlen(suffix) || strcmp(s + 16, suffix) != 0) return -1;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 0;
}

static int pwrite_all(int fd, const char *p, size_t n, uint64_t off) {
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static int all_zero(const unsigned char *p, size_t n) {
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static int push_segment(wal *w, uint64_t first, uint64_t bytes) {
    if (w->nsegs == w->segs_cap) {
        size_t cap = w->segs_cap ? w->segs_cap * 2 : 8;
        wal_segment *s = realloc(w->segs, cap * sizeof *s);
        if (!s) return -1;
        w->segs = s;
        w->segs_cap = cap;
    }
    w->segs[w->nsegs].first = first;
    w->segs[w->nsegs].bytes = bytes;
    w->nsegs++;
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- recovery ---------------------------------------------------------- */

typedef struct listing {
    uint64_t *segs; /* first indexes, sorted */
    size_t nsegs;
    uint64_t *bases; /* covered indexes, sorted */
    size_t nbases;
    char **tmps; /* names of temp files */
    size_t ntmps;
} listing;

static void listing_free(listing *l) {
    free(l->segs);
    free(l->bases);
    for (size_t i = 0; i < l->ntmps; i++) free(l->tmps[i]);
    free(l->tmps);
}

static int grow_push(void **arr, size_t *n, size_t elem, const void *v) {
    void *a = realloc(*arr, (*n + 1) * elem);
    if (!a) return -1;
    memcpy((char *)a + *n * elem, v, elem);
    *arr = a;
    (*n)++;
    return 0;
}

static int list_dir(const char *dir, listing *l) {
    memset(l, 0, sizeof *l);
    DIR *d = opendir(dir);
    if (!d) {
        kv_log(KV_LOG_ERROR, "cannot read WAL directory %s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL && rc == 0) {
        const char *name = e->d_name;
        uint64_t v;
        size_t n = strlen(name);
        if (name[0] == '.') continue;
        if (n > 4 && strcmp(name + n - 4, ".tmp") == 0) {
            char *copy = strdup(name);
            rc = copy ? grow_push((void **)&l->tmps, &l->ntmps, sizeof copy, &copy) : -1;
        } else if (strncmp(name, "base-", 5) == 0 && parse_hex_name(name + 5, ".log", &v) == 0) {
            rc = grow_push((void **)&l->bases, &l->nbases, sizeof v, &v);
        } else if (parse_hex_name(name, ".log", &v) == 0) {
            rc = grow_push((void **)&l->segs, &l->nsegs, sizeof v, &v);
        } else {
            kv_log(KV_LOG_WARN, "ignoring unexpected file %s/%s", dir, name);
        }
    }
    closedir(d);
    if (rc != 0) {
        kv_log(KV_LOG_ERROR, "out of memory listing %s", dir);
        return -1;
    }
    if (l->nsegs) qsort(l->segs, l->nsegs, sizeof *l->segs, cmp_u64);
    if (l->nbases) qsort(l->bases, l->nbases, sizeof *l->bases, cmp_u64);
    return 0;
}

typedef struct replay_ctx {
    wal_apply_fn apply;
    void *ctx;
    wal_replay_stats *stats;
} replay_ctx;

typedef enum file_result { FILE_OK, FILE_TORN, FILE_FAIL } file_result;

/* Replays one file. For segments, expect is the index its first record must
 * carry (records then count up by one); for the base file expect is 0 and
 * indexes are not checked. *valid_end receives the offset after the last
 * good record. A bad record is reported as FILE_TORN when tail_ok (the
 * caller decides whether that is allowed) and FILE_FAIL otherwise.
 *
 * "At the tail" is checked, not assumed: a torn append leaves a record cut
 * short or garbled with nothing valid after it. If the frame right after a
 * garbled record (its length field taken at its word) decodes as the next
 * record, the damage is in the middle of the log: bit rot, not a torn write,
 * and truncating there would silently drop records that were acknowledged.
 * Likewise a record whose checksum holds but whose index is wrong was never
 * torn. Both are refused as corruption even in the last segment.
 *
 * The last segment is preallocated (see wal_write), so it normally ends in
 * zeros: a record boundary followed by nothing but zero bytes is the clean
 * end of the log, not damage. (A zero length is never a real record: every
 * record carries a command, so its payload is at least a few bytes.) */
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

static file_result replay_file(const char *path, uint64_t *expect, int tail_ok, replay_ctx *rc, off_t *valid_end) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        kv_log(KV_LOG_ERROR, "cannot open %s: %s", path, strerror(errno));
        return FILE_FAIL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        kv_log(KV_LOG_ERROR, "cannot stat %s: %s", path, strerror(errno));
        close(fd);
        return FILE_FAIL;
    }
    size_t size = (size_t)st.st_size;
    const unsigned char *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            kv_log(KV_LOG_ERROR, "cannot map %s: %s", path, strerror(errno));
            close(fd);
            return FILE_FAIL;
        }
        madvise((void *)map, size, MADV_SEQUENTIAL);
    }
    close(fd);
    size_t off = 0;
    file_result result = FILE_OK;
    while (off < size) {
        if (tail_ok && all_zero(map + off, size - off)) break;
        Kv__LogRecord *rec;
        size_t len;
        const char *why;
        record_status s = record_decode(map + off, size - off, &rec, &len, &why);
        int torn_possible = tail_ok;
        if (s == RECORD_OK && *expect && rec->index != *expect) {
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
        if (rc->apply(rc->ctx, rec->command) != 0) {
            kv_log(KV_LOG_ERROR, "out of memory replaying %s at offset %zu", path, off);
            record_free(rec);
            result = FILE_FAIL;
            break;
        }
        record_free(rec);
        if (*expect) (*expect)++;
        off += len;
        rc->stats->records++;
        rc->stats->bytes += len;
    }
    if (map) munmap((void *)map, size);
    *valid_end = (off_t)off;
    return result;
}

static int fsync_dir(int dirfd) {
    while (fsync(dirfd) != 0) {
        if (errno != EINTR) return -1;
    }
    return 0;
}

static int open_segment(wal *w, uint64_t first, int create) {
    char name[64];
    seg_name(name, sizeof name, first);
    /* Not O_APPEND: the file is longer than its data (preallocated), so
     * wal_write places records with pwrite at the end of the data. */
    int flags = O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
    int fd = openat(w->dirfd, name, flags, 0644);
    if (fd < 0) {
        kv_log(KV_LOG_ERROR, "cannot open segment %s/%s: %s", w->dir, name, strerror(errno));
        return -1;
    }
    /* A new file's name must be durable before anything in it can be. */
    if (create && fsync_dir(w->dirfd) != 0) {
        kv_log(KV_LOG_ERROR, "cannot fsync %s: %s", w->dir, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void remove_file(wal *w, const char *name) {
    if (unlinkat(w->dirfd, name, 0) != 0 && errno != ENOENT)
        kv_log(KV_LOG_WARN, "cannot remove %s/%s: %s", w->dir, name, strerror(errno));
}

static int open_and_replay(wal *w, const char *data_dir, size_t segment_limit, wal_apply_fn apply, void *ctx,
                           wal_replay_stats *stats) {
    memset(w, 0, sizeof *w);
    memset(stats, 0, sizeof *stats);
    w->fd = w->dirfd = -1;
    w->segment_limit = segment_limit;
    kv_buf_init(&w->pending);
    w->dir = path_join(data_dir, "wal");
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
    listing l;
    if (list_dir(w->dir, &l) != 0) return -1;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    replay_ctx rc = {apply, ctx, stats};
    int ok = 0;
    char name[64];
    off_t valid_end = 0;
    uint64_t expect = 1;
    size_t first_live = 0; /* segments before this are covered by the base */
    file_result last_result = FILE_OK;

    if (l.nbases > 0) {
        w->base_index = l.bases[l.nbases - 1];
        base_name(name, sizeof name, w->base_index);
        char *path = path_join(w->dir, name);
        uint64_t no_check = 0;
        file_result r = path ? replay_file(path, &no_check, 0, &rc, &valid_end) : FILE_FAIL;
        free(path);
        if (r != FILE_OK) goto out;
        w->base_bytes = (uint64_t)valid_end;
        expect = w->base_index + 1;
    }
    while (first_live < l.nsegs && l.segs[first_live] <= w->base_index) first_live++;
    for (size_t i = first_live; i < l.nsegs; i++) {
        seg_name(name, sizeof name, l.segs[i]);
        if (l.segs[i] != expect) {
            kv_log(KV_LOG_ERROR,
                   "corrupt WAL: %s/%s offset 0: segment starts at index %" PRIu64 " but %" PRIu64
                   " was expected (a segment is missing); refusing to start (nothing was modified)",
                   w->dir, name, l.segs[i], expect);
            goto out;
        }
        char *path = path_join(w->dir, name);
        int is_last = i + 1 == l.nsegs;
        last_result = path ? replay_file(path, &expect, is_last, &rc, &valid_end) : FILE_FAIL;
        free(path);
        if (last_result == FILE_FAIL) goto out;
        if (push_segment(w, l.segs[i], (uint64_t)valid_end) != 0) goto out;
    }
    w->next_index = expect;
    w->written_index = expect - 1;

    /* Replay succeeded: only now change anything on disk. */
    if (last_result == FILE_TORN) {
        seg_name(name, sizeof name, w->segs[w->nsegs - 1].first);
        int fd = openat(w->dirfd, name, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || ftruncate(fd, valid_end) != 0 || fdatasync(fd) != 0) {
            kv_log(KV_LOG_ERROR, "cannot truncate %s/%s: %s", w->dir, name, strerror(errno));
            if (fd >= 0) close(fd);
            goto out;
        }
        close(fd);
    }
    for (size_t i = 0; i < l.ntmps; i++) remove_file(w, l.tmps[i]);
    for (size_t i = 0; i + 1 < l.nbases; i++) {
        base_name(name, sizeof name, l.bases[i]);
        remove_file(w, name);
    }
    for (size_t i = 0; i < first_live; i++) {
        seg_name(name, sizeof name, l.segs[i]);
        remove_file(w, name);
    }
    if (w->nsegs == 0) {
        w->fd = open_segment(w, w->next_index, 1);
        if (w->fd < 0 || push_segment(w, w->next_index, 0) != 0) goto out;
    } else {
        w->fd = open_segment(w, w->segs[w->nsegs - 1].first, 0);
        if (w->fd < 0) goto out;
    }
    struct stat cur;
    if (fstat(w->fd, &cur) != 0) {
        kv_log(KV_LOG_ERROR, "cannot stat the current segment in %s: %s", w->dir, strerror(errno));
        goto out;
    }
    w->alloc_end = (uint64_t)cur.st_size; /* past the data when it ends in preallocated zeros */
    if (fsync_dir(w->dirfd) != 0) kv_log(KV_LOG_WARN, "cannot fsync %s: %s", w->dir, strerror(errno));
    ok = 1;
out:
    clock_gettime(CLOCK_MONOTONIC, &t1);
    stats->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    listing_free(&l);
    return ok ? 0 : -1;
}

int wal_open(wal *w, const char *data_dir, size_t segment_limit, wal_apply_fn apply, void *ctx,
             wal_replay_stats *stats) {
    int r = open_and_replay(w, data_dir, segment_limit, apply, ctx, stats);
    if (r != 0) wal_close(w); /* a failed open holds no memory or descriptors */
    return r;
}

void wal_close(wal *w) {
    if (w->fd >= 0) close(w->fd);
    if (w->dirfd >= 0) close(w->dirfd);
    free(w->dir);
    free(w->segs);
    kv_buf_free(&w->pending);
    memset(w, 0, sizeof *w);
    w->fd = w->dirfd = -1;
}

/* ---- appending ----------------------------------------------------------- */

uint64_t wal_append(wal *w, const Kv__Command *cmd) {
    if (record_encode(&w->pending, w->next_index, 0, cmd) != 0) return 0;
    return w->next_index++;
}

/* Grows the current segment's file to past need, in zeros. Why: fdatasync
 * after a write that makes the file longer must also make the new size
 * durable, which on ext4 and XFS means a journal commit on every sync. A
 * write inside the file's existing size leaves only the data (and the extent
 * it fills) to flush; measured on ext4, about 100 us per fdatasync instead
 * of 145 us. Recovery treats the zero tail as the end of the log. Failure is
 * not fatal: the log just goes on appending the slower way. */
static void preallocate(wal *w, uint64_t need) {
    if (w->no_prealloc) return;
    uint64_t ahead = w->segment_limit < PREALLOC_BYTES ? w->segment_limit : PREALLOC_BYTES;
    uint64_t end = need + ahead;
    int e = posix_fallocate(w->fd, (off_t)w->alloc_end, (off_t)(end - w->alloc_end));
    if (e == 0) {
        w->alloc_end = end;
        return;
    }
    kv_log(KV_LOG_WARN, "cannot preallocate WAL space in %s: %s; appending without preallocation", w->dir,
           strerror(e));
    w->no_prealloc = 1;
    struct stat st; /* it may have grown part of the way */
    if (fstat(w->fd, &st) == 0 && (uint64_t)st.st_size > w->alloc_end) w->alloc_end = (uint64_t)st.st_size;
}

int wal_write(wal *w) {
    size_t n = kv_buf_readable(&w->pending);
    if (n == 0) return 0;
    wal_segment *cur = &w->segs[w->nsegs - 1];
    if (cur->bytes + n > w->alloc_end) preallocate(w, cur->bytes + n);
    if (pwrite_all(w->fd, kv_buf_rptr(&w->pending), n, cur->bytes) != 0) return -1;
    kv_buf_consume(&w->pending, n);
    kv_buf_shrink_if_empty(&w->pending, 4 * 1024 * 1024);
    w->written_index = w->next_index - 1;
    cur->bytes += n;
    if (cur->bytes > w->alloc_end) w->alloc_end = cur->bytes;
    return 0;
}

int wal_sync_now(wal *w) {
    while (fdatasync(w->fd) != 0) {
        if (errno != EINTR) return -1;
    }
    return 0;
}

int wal_trim(wal *w) {
    uint64_t end = w->segs[w->nsegs - 1].bytes;
    if (w->alloc_end <= end) return 0;
    if (ftruncate(w->fd, (off_t)end) != 0) return -1;
    w->alloc_end = end;
    return 0;
}

int wal_rotate(wal *w) {
    /* Records still in memory belong to the current segment: the new one is
     * named after the first record it will hold. */
    if (wal_write(w) != 0) return -1;
    wal_segment *cur = &w->segs[w->nsegs - 1];
    if (cur->first == w->next_index) return 0; /* current segment is empty */
    /* Only the last segment may end in preallocated zeros: cut them off
     * before it stops being the last (the sync below makes the size durable). */
    if (wal_trim(w) != 0) return -1;
    /* The old segment must be durable before records follow in a new one:
     * recovery only tolerates damage at the tail of the last segment. */
    if (wal_sync_now(w) != 0) return -1;
    int fd = open_segment(w, w->next_index, 1);
    if (fd < 0) return -1;
    if (push_segment(w, w->next_index, 0) != 0) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    close(w->fd);
    w->fd = fd;
    w->alloc_end = 0;
    kv_log(KV_LOG_DEBUG, "WAL: new segment starting at index %" PRIu64, w->next_index);
    return 0;
}

int wal_rotate_if_full(wal *w) {
    if (w->segs[w->nsegs - 1].bytes < w->segment_limit) return 0;
    return wal_rotate(w);
}

uint64_t wal_total_bytes(const wal *w) {
    uint64_t n = w->base_bytes;
    for (size_t i = 0; i < w->nsegs; i++) n += w->segs[i].bytes;
    return n;
}

size_t wal_file_count(const wal *w) { return w->nsegs + (w->base_index ? 1 : 0); }

/* ---- compaction ------------------------------------------------------------ */

typedef struct base_writer {
    int fd;
    uint64_t off; /* bytes written so far */
    kv_buf buf;
    int failed;
} base_writer;

/* Writes out everything buffered. Returns 0, or -1 (and marks the writer failed). */
static int base_flush(base_writer *bw) {
    size_t n = kv_buf_readable(&bw->buf);
    if (pwrite_all(bw->fd, kv_buf_rptr(&bw->buf), n, bw->off) != 0) return -(bw->failed = 1);
    bw->off += n;
    kv_buf_consume(&bw->buf, n);
    return 0;
}

static int write_live_key(void *ctx, const char *key, size_t klen, const char *val, size_t vlen) {
    base_writer *bw = ctx;
    Kv__Command cmd = KV__COMMAND__INIT;
    cmd.op = KV__COMMAND__OP__SET;
    cmd.key.data = (uint8_t *)key;
    cmd.key.len = klen;
    cmd.value.data = (uint8_t *)val;
    cmd.value.len = vlen;
    if (record_encode(&bw->buf, 0, 0, &cmd) != 0) return bw->failed = 1;
    if (kv_buf_readable(&bw->buf) >= BASE_WRITE_CHUNK && base_flush(bw) != 0) return 1;
    return 0;
}

int wal_write_base(const char *dir, uint64_t upto, const kv_store *store) {
    char name[80];
    base_name(name, sizeof name, upto);
    strcat(name, ".tmp");
    char *path = path_join(dir, name);
    if (!path) return -1;
    base_writer bw = {.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    kv_buf_init(&bw.buf);
    if (bw.fd < 0) {
        kv_log(KV_LOG_ERROR, "compaction: cannot create %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    kv_store_foreach(store, write_live_key, &bw);
    if (!bw.failed) base_flush(&bw);
    if (!bw.failed && fsync(bw.fd) != 0) bw.failed = 1;
    if (bw.failed) kv_log(KV_LOG_ERROR, "compaction: writing %s failed: %s", path, strerror(errno));
    close(bw.fd);
    kv_buf_free(&bw.buf);
    free(path);
    return bw.failed ? -1 : 0;
}

void wal_discard_base(const char *dir, uint64_t upto) {
    char name[80];
    base_name(name, sizeof name, upto);
    strcat(name, ".tmp");
    char *path = path_join(dir, name);
    if (path) unlink(path);
    free(path);
}

int wal_install_base(wal *w, uint64_t upto) {
    char tmp[80], final[64];
    base_name(final, sizeof final, upto);
    snprintf(tmp, sizeof tmp, "%s.tmp", final);
    struct stat st;
    if (fstatat(w->dirfd, tmp, &st, 0) != 0 || renameat(w->dirfd, tmp, w->dirfd, final) != 0 ||
        fsync_dir(w->dirfd) != 0) {
        kv_log(KV_LOG_ERROR, "compaction: cannot install %s/%s: %s", w->dir, final, strerror(errno));
        return -1;
    }
    /* From here the new base is the truth; older files are garbage. */
    char name[64];
    if (w->base_index) {
        base_name(name, sizeof name, w->base_index);
        remove_file(w, name);
    }
    size_t keep = 0;
    while (keep < w->nsegs && w->segs[keep].first <= upto) {
        seg_name(name, sizeof name, w->segs[keep].first);
        remove_file(w, name);
        keep++;
    }
    memmove(w->segs, w->segs + keep, (w->nsegs - keep) * sizeof *w->segs);
    w->nsegs -= keep;
    w->base_index = upto;
    w->base_bytes = (uint64_t)st.st_size;
    if (fsync_dir(w->dirfd) != 0) kv_log(KV_LOG_WARN, "cannot fsync %s: %s", w->dir, strerror(errno));
    return 0;
}
