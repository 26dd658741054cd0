/* wal_raft.c - Raft's additions to the log: terms, suffix truncation,
 * reading entries back, configuration entries (see wal_raft.h). */
#include "wal_raft.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "record.h"
#include "wal_files.h"

int wal_append_entry(wal *w, const struct raft_entry *e) {
    if (e->index != w->next_index) {
        kv_log(KV_LOG_ERROR, "WAL: entry %" PRIu64 " would land at index %" PRIu64, e->index, w->next_index);
        return -1;
    }
    Kv__Command noop = KV__COMMAND__INIT;
    Kv__Command *cmd = &noop;
    if (e->type == RAFT_ENTRY_NORMAL) {
        cmd = kv__command__unpack(NULL, e->len, e->data);
        if (!cmd) {
            kv_log(KV_LOG_ERROR, "WAL: entry %" PRIu64 " does not hold a command", e->index);
            return -1;
        }
    } else if (e->type == RAFT_ENTRY_CONFIG) {
        /* The record format holds commands: a configuration travels as
         * one whose value is the core's encoding (borrowed, not freed). */
        noop.op = KV__COMMAND__OP__CONFIG;
        noop.value.data = e->data;
        noop.value.len = e->len;
    }
    int r = record_encode(&w->pending, e->index, e->term, cmd);
    if (cmd != &noop) kv__command__free_unpacked(cmd, NULL);
    if (r != 0) return -1;
    w->next_index++;
    return 0;
}

/* Reads a whole segment's valid bytes into memory (malloc'd, *p NULL when
 * empty). Returns 0 or -1 with errno set. */
static int read_segment(const wal *w, const wal_segment *s, unsigned char **p) {
    *p = NULL;
    if (s->bytes == 0) return 0;
    char name[WAL_NAME_MAX];
    wal_segment_name(name, sizeof name, s->first);
    int fd = openat(w->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    unsigned char *buf = malloc(s->bytes);
    if (!buf) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    uint64_t got = 0;
    while (got < s->bytes) {
        ssize_t n = pread(fd, buf + got, s->bytes - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO;
            free(buf);
            close(fd);
            return -1;
        }
        got += (uint64_t)n;
    }
    close(fd);
    *p = buf;
    return 0;
}

/* The offset in segment s where record `index` starts (s->bytes if it is
 * past the segment's last record). Returns 0 or -1. */
static int offset_of(const wal *w, const wal_segment *s, uint64_t index, uint64_t *off) {
    unsigned char *buf;
    if (read_segment(w, s, &buf) != 0) return -1;
    uint64_t at = 0, i = s->first;
    while (at < s->bytes && i < index) {
        Kv__LogRecord *rec;
        size_t len;
        if (record_decode(buf + at, s->bytes - at, &rec, &len, NULL) != RECORD_OK) {
            free(buf);
            errno = EIO;
            return -1;
        }
        record_free(rec);
        at += len;
        i++;
    }
    free(buf);
    *off = at;
    return 0;
}

int wal_truncate_from(wal *w, uint64_t from) {
    if (from >= w->next_index) return 0;
    if (wal_write(w) != 0) return -1;
    /* keep: the last segment that starts before `from` (or the first one) */
    size_t keep = 0;
    for (size_t i = 0; i < w->nsegs; i++)
        if (w->segs[i].first < from) keep = i;
    for (size_t i = w->nsegs; i-- > keep + 1;) {
        char name[WAL_NAME_MAX];
        wal_segment_name(name, sizeof name, w->segs[i].first);
        if (unlinkat(w->dirfd, name, 0) != 0 && errno != ENOENT) return -1;
    }
    wal_segment *s = &w->segs[keep];
    uint64_t off = 0;
    if (from > s->first && offset_of(w, s, from, &off) != 0) return -1;
    if (keep + 1 != w->nsegs) {
        int fd = wal_open_segment(w, s->first, 0);
        if (fd < 0) return -1;
        close(w->fd);
        w->fd = fd;
        w->nsegs = keep + 1;
    }
    /* The size change must be durable before new records are written over
     * the old ones: recovery would otherwise meet the old tail after them. */
    if (ftruncate(w->fd, (off_t)off) != 0 || wal_sync_now(w) != 0 || wal_fsync_dir(w->dirfd) != 0) return -1;
    s->bytes = off;
    w->alloc_end = off;
    w->next_index = from;
    w->written_upto = from - 1;
    /* The last write's bytes may be among those cut off: forget them. */
    kv_buf_consume(&w->last_write, kv_buf_readable(&w->last_write));
    kv_log(KV_LOG_INFO, "WAL: removed the records from index %" PRIu64 " on (the leader replaced them)", from);
    return 0;
}

int wal_drop_prefix(wal *w, uint64_t upto, size_t max_files) {
    size_t k = 0;
    while (k + 1 < w->nsegs && w->segs[k + 1].first - 1 <= upto && (max_files == 0 || k < max_files)) {
        char name[WAL_NAME_MAX];
        wal_segment_name(name, sizeof name, w->segs[k].first);
        if (unlinkat(w->dirfd, name, 0) != 0 && errno != ENOENT) break;
        if (wal_fsync_dir(w->dirfd) != 0) break;
        k++;
    }
    if (k == 0) return w->nsegs > 1 && w->segs[1].first - 1 <= upto ? -1 : 0;
    kv_log(KV_LOG_INFO, "WAL: deleted %zu segments (records %" PRIu64 "-%" PRIu64 "), covered by a snapshot", k,
           w->segs[0].first, w->segs[k].first - 1);
    memmove(w->segs, w->segs + k, (w->nsegs - k) * sizeof *w->segs);
    w->nsegs -= k;
    return (int)k;
}

int wal_reset_to(wal *w, uint64_t next) {
    /* Oldest first, each unlink durable before the next: a crash leaves a
     * suffix of the old log (no gap), and its records are covered anyway. */
    w->pending.start = w->pending.len = 0;
    close(w->fd);
    w->fd = -1;
    while (w->nsegs > 0) {
        char name[WAL_NAME_MAX];
        wal_segment_name(name, sizeof name, w->segs[0].first);
        if ((unlinkat(w->dirfd, name, 0) != 0 && errno != ENOENT) || wal_fsync_dir(w->dirfd) != 0) return -1;
        memmove(w->segs, w->segs + 1, (w->nsegs - 1) * sizeof *w->segs);
        w->nsegs--;
    }
    w->fd = wal_open_segment(w, next, 1);
    if (w->fd < 0 || wal_push_segment(w, next, 0) != 0) return -1;
    w->alloc_end = 0;
    w->next_index = next;
    w->written_upto = next - 1;
    kv_log(KV_LOG_INFO, "WAL: emptied; the next record is %" PRIu64 " (a snapshot covers the rest)", next);
    return 0;
}

void wal_free_entries(struct raft_entry *e, size_t n) {
    for (size_t i = 0; i < n; i++) free(e[i].data);
    free(e);
}

/* Appends one decoded record to the array as an entry. Returns 0 or -1. */
static int push_entry(struct raft_entry **arr, size_t *n, size_t *cap, const Kv__LogRecord *rec) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        struct raft_entry *a = realloc(*arr, nc * sizeof *a);
        if (!a) return -1;
        *arr = a;
        *cap = nc;
    }
    struct raft_entry *e = &(*arr)[*n];
    memset(e, 0, sizeof *e);
    e->index = rec->index;
    e->term = rec->term;
    e->type = rec->command->op == KV__COMMAND__OP__NOOP ? RAFT_ENTRY_NOOP : RAFT_ENTRY_NORMAL;
    if (rec->command->op == KV__COMMAND__OP__CONFIG) {
        e->type = RAFT_ENTRY_CONFIG;
        e->len = rec->command->value.len;
        e->data = malloc(e->len ? e->len : 1);
        if (!e->data) return -1;
        if (e->len) memcpy(e->data, rec->command->value.data, e->len);
    } else if (e->type == RAFT_ENTRY_NORMAL) {
        e->len = kv__command__get_packed_size(rec->command);
        e->data = malloc(e->len ? e->len : 1);
        if (!e->data) return -1;
        kv__command__pack(rec->command, e->data);
    }
    (*n)++;
    return 0;
}

int wal_read_entries(const wal *w, struct raft_entry **out, size_t *n) {
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    if (w->base_index) {
        kv_log(KV_LOG_ERROR, "%s holds a compacted base file: stage 5 cannot start from it (no snapshots yet)", w->dir);
        return -1;
    }
    for (size_t i = 0; i < w->nsegs; i++) {
        const wal_segment *s = &w->segs[i];
        unsigned char *buf;
        if (read_segment(w, s, &buf) != 0) {
            kv_log(KV_LOG_ERROR, "cannot read WAL segment %" PRIu64 " in %s: %s", s->first, w->dir, strerror(errno));
            goto fail;
        }
        uint64_t at = 0;
        while (at < s->bytes) {
            Kv__LogRecord *rec;
            size_t len;
            const char *why = "";
            if (record_decode(buf + at, s->bytes - at, &rec, &len, &why) != RECORD_OK) {
                kv_log(KV_LOG_ERROR, "WAL segment %" PRIu64 " offset %" PRIu64 ": %s", s->first, at, why);
                free(buf);
                goto fail;
            }
            int r = push_entry(out, n, &cap, rec);
            record_free(rec);
            if (r != 0) {
                kv_log(KV_LOG_ERROR, "out of memory reading the log back");
                free(buf);
                goto fail;
            }
            at += len;
        }
        free(buf);
    }
    return 0;
fail:
    wal_free_entries(*out, *n);
    *out = NULL;
    *n = 0;
    return -1;
}
