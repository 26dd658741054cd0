/* wal_append.c - adding records: encode into memory (wal_append), hand to
 * the kernel (wal_write), preallocate the segment's space, trim it, sync,
 * and rotate to a new segment past the size limit. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "record.h"
#include "wal.h"
#include "wal_files.h"

/* The current segment is grown this far ahead of its data (never past the
 * segment limit's worth) so that appends land inside the file's size. */
#define PREALLOC_BYTES (4u * 1024 * 1024)

uint64_t wal_append(wal *w, const Kv__Command *cmd) {
    if (record_encode(&w->pending, w->next_index, 0, cmd) != 0) return 0;
    return w->next_index++;
}

uint64_t wal_append_frame(wal *w, const void *frame, size_t len) {
    if (kv_buf_append(&w->pending, frame, len) != 0) return 0;
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
    if (wal_pwrite_all(w->fd, kv_buf_rptr(&w->pending), n, cur->bytes) != 0) return -1;
    /* What was written becomes last_write (see wal.h); the previous one's
     * buffer, emptied, takes the next appends. */
    kv_buf_consume(&w->last_write, kv_buf_readable(&w->last_write));
    kv_buf_shrink_if_empty(&w->last_write, 4 * 1024 * 1024);
    kv_buf t = w->last_write;
    w->last_write = w->pending;
    w->pending = t;
    w->last_write_seg = cur->first;
    w->last_write_off = cur->bytes;
    w->written_upto = w->next_index - 1;
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
    int fd = wal_open_segment(w, w->next_index, 1);
    if (fd < 0) return -1;
    if (wal_push_segment(w, w->next_index, 0) != 0) {
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
