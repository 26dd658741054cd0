/* snapshot_load.c - start-up: the snapshot directory cleaned of unfinished
 * work, and the newest valid snapshot loaded into the state machine (see
 * snapshot.h). A damaged snapshot never stops the start while an older
 * valid one exists: it is set aside (renamed *.corrupt, for a human) and
 * the previous one loaded; the WAL still holds every entry after that one. */
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "datadir.h"
#include "log.h"
#include "node.h"
#include "server.h"
#include "snapshot_file.h"

typedef struct found {
    uint64_t index, term;
} found;

static int by_index_desc(const void *a, const void *b) {
    const found *x = a, *y = b;
    return x->index < y->index ? 1 : x->index > y->index ? -1 : 0;
}

/* Lists the final snapshots, newest first, and removes temp files. */
static int list_snapshots(const char *dir, found **out, size_t *n) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        kv_log(KV_LOG_ERROR, "cannot open %s: %s", dir, strerror(errno));
        return -1;
    }
    size_t cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0) {
            if (unlinkat(dirfd(d), de->d_name, 0) == 0)
                kv_log(KV_LOG_INFO, "removed %s/%s, left by a snapshot that did not finish", dir, de->d_name);
            continue;
        }
        found f;
        if (!snap_parse_name(de->d_name, &f.index, &f.term)) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            found *g = realloc(*out, cap * sizeof *g);
            if (!g) {
                rc = -1;
                break;
            }
            *out = g;
        }
        (*out)[(*n)++] = f;
    }
    closedir(d);
    if (rc != 0) {
        kv_log(KV_LOG_ERROR, "out of memory listing %s", dir);
        free(*out);
        *out = NULL;
        return -1;
    }
    if (*n) qsort(*out, *n, sizeof **out, by_index_desc);
    return 0;
}

static int make_dir(snapshotter *s, const char *data_dir) {
    size_t len = strlen(data_dir) + 6;
    s->dir = malloc(len);
    if (!s->dir) return -1;
    snprintf(s->dir, len, "%s/snap", data_dir);
    if (mkdir(s->dir, 0755) == 0) {
        if (datadir_fsync_parent(s->dir) != 0) {
            kv_log(KV_LOG_ERROR, "cannot fsync the directory holding %s: %s", s->dir, strerror(errno));
            return -1;
        }
    } else if (errno != EEXIST) {
        kv_log(KV_LOG_ERROR, "cannot create %s: %s", s->dir, strerror(errno));
        return -1;
    }
    return 0;
}

int snapshot_load_at_start(node *n, raft_index *index, raft_term *term) {
    snapshotter *s = &n->snap;
    *index = *term = 0;
    s->crash_at = getenv("KV_TEST_CRASH_AT");
    for (unsigned k = 0; k < RAFT_MAX_NODES; k++) s->send[k].fd = -1;
    s->recv.fd = -1;
    if (make_dir(s, n->srv->cfg.data_dir) != 0) return -1;
    found *list;
    size_t count;
    if (list_snapshots(s->dir, &list, &count) != 0) return -1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t i = 0;
    for (; i < count; i++) {
        char name[SNAP_NAME_MAX], path[4096], err[256];
        snap_file_name(name, sizeof name, list[i].index, list[i].term);
        snprintf(path, sizeof path, "%s/%s", s->dir, name);
        snap_info info;
        if (snap_read_file(path, &n->srv->store, &n->sessions, &info, err, sizeof err) == 0 &&
            info.index == list[i].index && info.term == list[i].term) {
            s->last_bytes = info.bytes;
            s->meta = info.meta;
            kv_log(KV_LOG_INFO, "loaded snapshot %s: index %" PRIu64 " (term %" PRIu64 "), %" PRIu64 " keys, %" PRIu64
                   " sessions, %" PRIu64 " bytes", path, info.index, info.term, info.keys, info.sessions, info.bytes);
            break;
        }
        if (info.index != list[i].index || info.term != list[i].term)
            if (!err[0] || strstr(err, "offset") == NULL)
                snprintf(err, sizeof err, "offset 8: the header says index %" PRIu64 " term %" PRIu64
                         ", not what the name says", info.index, info.term);
        kv_log(KV_LOG_ERROR, "refusing snapshot %s: %s; it is renamed %s.corrupt and the previous one is tried", path,
               err, name);
        char aside[4200];
        snprintf(aside, sizeof aside, "%s.corrupt", path);
        if (rename(path, aside) != 0) kv_log(KV_LOG_WARN, "cannot rename %s: %s", path, strerror(errno));
        /* Start again from empty: the refused file may have loaded a part. */
        kv_store_free(&n->srv->store);
        size_t max = n->sessions.max;
        sessions_free(&n->sessions);
        sessions_init(&n->sessions, max);
        if (kv_store_init(&n->srv->store) != 0) {
            free(list);
            kv_log(KV_LOG_ERROR, "out of memory");
            return -1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    s->loaded_ms = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
    if (i < count) {
        *index = s->last_index = list[i].index;
        *term = s->last_term = list[i].term;
        if (i + 1 < count) s->prev_index = list[i + 1].index;
    } else if (count > 0) {
        kv_log(KV_LOG_WARN, "no valid snapshot in %s: starting from the log alone", s->dir);
    }
    free(list);
    return 0;
}
