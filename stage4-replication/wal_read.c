/* wal_read.c - reading whole frames back by index (see wal_read.h). */
#include "wal_read.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "record.h"
#include "wal_files.h"

/* The segment holding index i: the last one starting at or before it. */
static const wal_segment *segment_of(const wal *w, uint64_t i) {
    const wal_segment *found = NULL;
    for (size_t k = 0; k < w->nsegs && w->segs[k].first <= i; k++) found = &w->segs[k];
    return found;
}

/* How far the data of the open segment goes: its size in the table, or, if
 * compaction has dropped it from the table, the end of the file. */
static uint64_t segment_end(const wal_reader *r) {
    for (size_t k = 0; k < r->w->nsegs; k++)
        if (r->w->segs[k].first == r->seg_first) return r->w->segs[k].bytes;
    off_t end = lseek(r->fd, 0, SEEK_END);
    return end < 0 ? 0 : (uint64_t)end;
}

static int pread_all(int fd, void *p, size_t n, uint64_t off) {
    while (n > 0) {
        ssize_t got = pread(fd, p, n, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        p = (char *)p + got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return 0;
}

/* n bytes of the open segment at off: from the log's last write when they
 * are all in it (a caught-up follower's records, just written: no system
 * call), otherwise from the file. */
static int fetch(const wal_reader *r, void *p, size_t n, uint64_t off) {
    const kv_buf *last = wal_last_write(r->w);
    uint64_t from = r->w->last_write_off, to = from + kv_buf_readable(last);
    if (r->seg_first == r->w->last_write_seg && off >= from && off + n <= to) {
        memcpy(p, kv_buf_rptr(last) + (off - from), n);
        return 0;
    }
    return pread_all(r->fd, p, n, off);
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int open_segment_at(wal_reader *r, uint64_t first) {
    char name[WAL_NAME_MAX];
    wal_segment_name(name, sizeof name, first);
    int fd = openat(r->w->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        kv_log(KV_LOG_WARN, "replication: cannot read %s/%s: %s", r->w->dir, name, strerror(errno));
        return -1;
    }
    if (r->fd >= 0) close(r->fd);
    r->fd = fd;
    r->seg_first = first;
    r->off = 0;
    return 0;
}

int wal_reader_open(wal_reader *r, const wal *w, uint64_t next) {
    memset(r, 0, sizeof *r);
    r->w = w;
    r->fd = -1;
    r->next = next;
    const wal_segment *s = segment_of(w, next);
    if (!s || next <= w->base_index) {
        kv_log(KV_LOG_WARN, "replication: record %" PRIu64 " is no longer in the log (compacted)", next);
        return -1;
    }
    if (open_segment_at(r, s->first) != 0) return -1;
    /* Skip the segment's records before `next` by their lengths alone. */
    uint64_t end = s->bytes;
    for (uint64_t i = s->first; i < next; i++) {
        unsigned char h[RECORD_HEADER_BYTES];
        if (r->off + sizeof h > end || fetch(r, h, sizeof h, r->off) != 0) {
            kv_log(KV_LOG_WARN, "replication: cannot find record %" PRIu64 " in segment %016" PRIx64, next, s->first);
            wal_reader_close(r);
            return -1;
        }
        r->off += RECORD_HEADER_BYTES + be32(h);
    }
    return 0;
}

/* Reads one chunk of the open segment (whole frames only) into out. */
static int read_chunk(wal_reader *r, kv_buf *out, size_t want, uint64_t end, uint64_t last, uint64_t *count) {
    /* One read for the whole chunk (a caught-up follower's batch is one
     * small chunk, so this is the common case, and comes from memory); a
     * first record longer than the chunk is then read on, alone. */
    if (want < RECORD_HEADER_BYTES) want = RECORD_HEADER_BYTES;
    if (want > end - r->off) want = (size_t)(end - r->off);
    if (want < RECORD_HEADER_BYTES || kv_buf_reserve(out, want) != 0) return -1;
    unsigned char *p = (unsigned char *)kv_buf_wptr(out);
    if (fetch(r, p, want, r->off) != 0) return -1;
    size_t first = RECORD_HEADER_BYTES + be32(p);
    if (first > RECORD_HEADER_BYTES + RECORD_MAX_PAYLOAD || r->off + first > end) {
        kv_log(KV_LOG_ERROR, "replication: record %" PRIu64 " runs past its segment's data", r->next);
        return -1;
    }
    if (first > want) {
        /* Growing the buffer may move it and drop uncommitted bytes: read the record again, whole. */
        if (kv_buf_reserve(out, first) != 0) return -1;
        p = (unsigned char *)kv_buf_wptr(out);
        if (fetch(r, p, first, r->off) != 0) return -1;
        want = first;
    }
    /* LAB wal-read: count the whole frames in the chunk (u32 length + 8-byte header each), up to the last written index; commit only those */
    /* Keep whole frames: the chunk may end inside one. */
    size_t used = 0;
    while (r->next <= last && want - used >= RECORD_HEADER_BYTES) {
        size_t len = RECORD_HEADER_BYTES + be32(p + used);
        if (len > want - used) break;
        used += len;
        r->next++;
        (*count)++;
    }
    kv_buf_commit(out, used);
    r->off += used;
    /* END LAB */
    return 0;
}

int wal_reader_read(wal_reader *r, kv_buf *out, size_t max_bytes, uint64_t *count) {
    *count = 0;
    uint64_t last = wal_written_upto(r->w);
    size_t start = kv_buf_readable(out);
    while (r->next <= last && kv_buf_readable(out) - start < max_bytes) {
        uint64_t end = segment_end(r);
        if (r->off >= end) {
            /* This segment is done: the next record opens the next one. */
            const wal_segment *s = segment_of(r->w, r->next);
            if (!s || s->first != r->next || open_segment_at(r, r->next) != 0) return -1;
            continue;
        }
        size_t want = max_bytes - (kv_buf_readable(out) - start);
        if (read_chunk(r, out, want, end, last, count) != 0) return -1;
    }
    return 0;
}

void wal_reader_close(wal_reader *r) {
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    r->seg_first = 0;
}
