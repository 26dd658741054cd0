/* wal_base.c - the base file compaction leaves behind: every live key as a
 * SET record, covering the log up to an index. Written by a forked child
 * (wal_write_base), then installed by the parent (wal_install_base). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "record.h"
#include "wal.h"
#include "wal_files.h"

#define BASE_WRITE_CHUNK (1024 * 1024)

typedef struct base_writer {
    int fd;
    uint64_t off; /* bytes written so far */
    kv_buf buf;
    int failed;
} base_writer;

/* Writes out everything buffered. Returns 0, or -1 (and marks the writer failed). */
static int base_flush(base_writer *bw) {
    size_t n = kv_buf_readable(&bw->buf);
    if (wal_pwrite_all(bw->fd, kv_buf_rptr(&bw->buf), n, bw->off) != 0) return -(bw->failed = 1);
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

static void temp_name(char *out, size_t cap, uint64_t upto) {
    wal_base_name(out, cap, upto);
    size_t n = strlen(out);
    snprintf(out + n, cap - n, ".tmp");
}

int wal_write_base(const char *dir, uint64_t upto, const kv_store *store) {
    char name[WAL_NAME_MAX];
    temp_name(name, sizeof name, upto);
    char *path = wal_path_join(dir, name);
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
    char name[WAL_NAME_MAX];
    temp_name(name, sizeof name, upto);
    char *path = wal_path_join(dir, name);
    if (path) unlink(path);
    free(path);
}

int wal_install_base(wal *w, uint64_t upto) {
    char tmp[WAL_NAME_MAX], final[WAL_NAME_MAX];
    wal_base_name(final, sizeof final, upto);
    temp_name(tmp, sizeof tmp, upto);
    struct stat st;
    if (fstatat(w->dirfd, tmp, &st, 0) != 0 || renameat(w->dirfd, tmp, w->dirfd, final) != 0 ||
        wal_fsync_dir(w->dirfd) != 0) {
        kv_log(KV_LOG_ERROR, "compaction: cannot install %s/%s: %s", w->dir, final, strerror(errno));
        return -1;
    }
    /* From here the new base is the truth; older files are garbage. */
    char name[WAL_NAME_MAX];
    if (w->base_index) {
        wal_base_name(name, sizeof name, w->base_index);
        wal_remove_file(w, name);
    }
    size_t keep = 0;
    while (keep < w->nsegs && w->segs[keep].first <= upto) {
        wal_segment_name(name, sizeof name, w->segs[keep].first);
        wal_remove_file(w, name);
        keep++;
    }
    memmove(w->segs, w->segs + keep, (w->nsegs - keep) * sizeof *w->segs);
    w->nsegs -= keep;
    w->base_index = upto;
    w->base_bytes = (uint64_t)st.st_size;
    if (wal_fsync_dir(w->dirfd) != 0) kv_log(KV_LOG_WARN, "cannot fsync %s: %s", w->dir, strerror(errno));
    return 0;
}
