/* wal_files.c - names, directory listing and small file operations shared
 * by the WAL's recovery, appending and compaction (see wal_files.h). */
#include "wal_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

void wal_segment_name(char *out, size_t cap, uint64_t first) { snprintf(out, cap, "%016" PRIx64 ".log", first); }

void wal_base_name(char *out, size_t cap, uint64_t upto) { snprintf(out, cap, "base-%016" PRIx64 ".log", upto); }

char *wal_path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Parses exactly 16 lowercase hex digits followed by suffix. */
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

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int grow_push(void **arr, size_t *n, size_t elem, const void *v) {
    void *a = realloc(*arr, (*n + 1) * elem);
    if (!a) return -1;
    memcpy((char *)a + *n * elem, v, elem);
    *arr = a;
    (*n)++;
    return 0;
}

void wal_listing_free(wal_listing *l) {
    free(l->segs);
    free(l->bases);
    for (size_t i = 0; i < l->ntmps; i++) free(l->tmps[i]);
    free(l->tmps);
    memset(l, 0, sizeof *l);
}

/* Sorts one directory entry into the listing. Returns 0, or -1 when memory runs out. */
static int classify(wal_listing *l, const char *dir, const char *name) {
    uint64_t v;
    size_t n = strlen(name);
    if (n > 4 && strcmp(name + n - 4, ".tmp") == 0) {
        char *copy = strdup(name);
        if (!copy) return -1;
        if (grow_push((void **)&l->tmps, &l->ntmps, sizeof copy, &copy) == 0) return 0;
        free(copy);
        return -1;
    }
    if (strncmp(name, "base-", 5) == 0 && parse_hex_name(name + 5, ".log", &v) == 0)
        return grow_push((void **)&l->bases, &l->nbases, sizeof v, &v);
    if (parse_hex_name(name, ".log", &v) == 0) return grow_push((void **)&l->segs, &l->nsegs, sizeof v, &v);
    if (strcmp(name, "HISTORY") == 0) return 0; /* the log's history id (history.h), not a log file */
    kv_log(KV_LOG_WARN, "ignoring unexpected file %s/%s", dir, name);
    return 0;
}

int wal_list_dir(const char *dir, wal_listing *l) {
    memset(l, 0, sizeof *l);
    DIR *d = opendir(dir);
    if (!d) {
        kv_log(KV_LOG_ERROR, "cannot read WAL directory %s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') rc = classify(l, dir, e->d_name);
    closedir(d);
    if (rc != 0) {
        kv_log(KV_LOG_ERROR, "out of memory listing %s", dir);
        wal_listing_free(l);
        return -1;
    }
    if (l->nsegs) qsort(l->segs, l->nsegs, sizeof *l->segs, cmp_u64);
    if (l->nbases) qsort(l->bases, l->nbases, sizeof *l->bases, cmp_u64);
    return 0;
}

int wal_push_segment(wal *w, uint64_t first, uint64_t bytes) {
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

int wal_open_segment(wal *w, uint64_t first, int create) {
    char name[WAL_NAME_MAX];
    wal_segment_name(name, sizeof name, first);
    /* Not O_APPEND: the file is longer than its data (preallocated), so
     * wal_write places records with pwrite at the end of the data. */
    int flags = O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
    int fd = openat(w->dirfd, name, flags, 0644);
    if (fd < 0) {
        kv_log(KV_LOG_ERROR, "cannot open segment %s/%s: %s", w->dir, name, strerror(errno));
        return -1;
    }
    /* A new file's name must be durable before anything in it can be. */
    if (create && wal_fsync_dir(w->dirfd) != 0) {
        kv_log(KV_LOG_ERROR, "cannot fsync %s: %s", w->dir, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void wal_remove_file(wal *w, const char *name) {
    if (unlinkat(w->dirfd, name, 0) != 0 && errno != ENOENT)
        kv_log(KV_LOG_WARN, "cannot remove %s/%s: %s", w->dir, name, strerror(errno));
}

int wal_pwrite_all(int fd, const char *p, size_t n, uint64_t off) {
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

int wal_fsync_dir(int dirfd) {
    while (fsync(dirfd) != 0) {
        if (errno != EINTR) return -1;
    }
    return 0;
}
