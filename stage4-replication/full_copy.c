/* full_copy.c - receiving a full copy and installing it atomically (see full_copy.h). */
#include "full_copy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compaction.h"
#include "durability.h"
#include "log.h"
#include "server.h"
#include "wal_files.h"

int full_copy_begin(full_copy *fc, const Kv__FullCopyBegin *m, char *err, size_t errlen) {
    full_copy_discard(fc);
    if (strlen(m->history_id) != HISTORY_ID_LEN) {
        snprintf(err, errlen, "full copy with a malformed history id");
        return -1;
    }
    if (kv_store_init(&fc->store) != 0) {
        snprintf(err, errlen, "out of memory starting a full copy");
        return -1;
    }
    memcpy(fc->history_id, m->history_id, HISTORY_ID_LEN + 1);
    fc->index = m->index;
    fc->expected_keys = m->key_count;
    kv_digest_init(&fc->digest);
    fc->active = 1;
    return 0;
}

int full_copy_add(full_copy *fc, const Kv__FullCopyChunk *m, char *err, size_t errlen) {
    if (!fc->active) {
        snprintf(err, errlen, "FullCopyChunk without FullCopyBegin");
        return -1;
    }
    if (m->n_keys != m->n_values) {
        snprintf(err, errlen, "FullCopyChunk with %zu keys and %zu values", m->n_keys, m->n_values);
        return -1;
    }
    for (size_t i = 0; i < m->n_keys; i++) {
        const ProtobufCBinaryData *k = &m->keys[i], *v = &m->values[i];
        if (kv_store_exists(&fc->store, k->data, k->len)) {
            snprintf(err, errlen, "FullCopyChunk repeats a key");
            return -1;
        }
        if (kv_store_set(&fc->store, k->data, k->len, v->data, v->len) != 0) {
            snprintf(err, errlen, "out of memory receiving a full copy");
            return -1;
        }
        kv_digest_add(&fc->digest, k->data, k->len, v->data, v->len);
    }
    return 0;
}

int full_copy_check(const full_copy *fc, const Kv__FullCopyEnd *m, char *err, size_t errlen) {
    if (!fc->active) {
        snprintf(err, errlen, "FullCopyEnd without FullCopyBegin");
        return -1;
    }
    if (kv_store_count(&fc->store) != fc->expected_keys) {
        snprintf(err, errlen, "full copy announced %" PRIu64 " keys but carried %zu", fc->expected_keys,
                 kv_store_count(&fc->store));
        return -1;
    }
    if (m->digest.len != KV_DIGEST_BYTES) {
        snprintf(err, errlen, "full copy digest of %zu bytes", m->digest.len);
        return -1;
    }
    kv_digest sent;
    kv_digest_from_bytes(&sent, m->digest.data, fc->expected_keys);
    if (!kv_digest_equal(&sent, &fc->digest)) {
        snprintf(err, errlen, "full copy digest mismatch: the copy was damaged in transit");
        return -1;
    }
    return 0;
}

void full_copy_discard(full_copy *fc) {
    if (fc->active) kv_store_free(&fc->store);
    memset(fc, 0, sizeof *fc);
}

/* Removes dir and the files in it (a log directory holds no subdirectories). */
static int remove_log_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (unlinkat(dirfd(d), e->d_name, 0) != 0) rc = -1;
    }
    closedir(d);
    if (rc == 0 && rmdir(dir) != 0) rc = -1;
    return rc;
}

static int fsync_path(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = wal_fsync_dir(fd);
    close(fd);
    return r;
}

int full_copy_cleanup(const char *data_dir) {
    char staging[4096];
    snprintf(staging, sizeof staging, "%s/%s", data_dir, FULL_COPY_STAGING);
    struct stat st;
    if (stat(staging, &st) != 0) return 0;
    kv_log(KV_LOG_INFO, "removing %s left by an interrupted full copy", staging);
    if (remove_log_dir(staging) != 0 || fsync_path(data_dir) != 0) {
        kv_log(KV_LOG_ERROR, "cannot remove %s: %s", staging, strerror(errno));
        return -1;
    }
    return 0;
}

/* Step 1: the copy as a complete log directory beside the live one. */
static int write_staging(const char *staging, const full_copy *fc) {
    if (remove_log_dir(staging) != 0 || mkdir(staging, 0755) != 0) return -1;
    if (fc->index > 0) {
        /* wal_write_base leaves <dir>/base-<index>.log.tmp, fsynced (wal.h). */
        if (wal_write_base(staging, fc->index, &fc->store) != 0) return -1;
        char name[WAL_NAME_MAX], tmp[4096], final[4096];
        wal_base_name(name, sizeof name, fc->index);
        int a = snprintf(tmp, sizeof tmp, "%s/%s.tmp", staging, name);
        int b = snprintf(final, sizeof final, "%s/%s", staging, name);
        if (a < 0 || (size_t)a >= sizeof tmp || b < 0 || (size_t)b >= sizeof final) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (rename(tmp, final) != 0) return -1;
    }
    history h = {0};
    memcpy(h.id, fc->history_id, sizeof h.id);
    if (history_save(staging, &h) != 0) return -1;
    return fsync_path(staging);
}

static int skip_record(void *ctx, const Kv__Command *cmd) {
    (void)ctx;
    (void)cmd;
    return 0;
}

int full_copy_install(server *srv, full_copy *fc) {
    char staging[4096], live[4096];
    snprintf(staging, sizeof staging, "%s/%s", srv->cfg.data_dir, FULL_COPY_STAGING);
    snprintf(live, sizeof live, "%s/wal", srv->cfg.data_dir);
    compaction_abort(srv, "full copy");
    if (write_staging(staging, fc) != 0) {
        kv_log(KV_LOG_ERROR, "full copy: cannot write %s: %s; keeping the old data", staging, strerror(errno));
        remove_log_dir(staging);
        full_copy_discard(fc);
        return -1;
    }
    /* The one step that switches: before it the old log is the truth, after it the new one. */
    if (renameat2(AT_FDCWD, staging, AT_FDCWD, live, RENAME_EXCHANGE) != 0 || fsync_path(srv->cfg.data_dir) != 0) {
        kv_log(KV_LOG_ERROR, "full copy: cannot swap %s and %s: %s; keeping the old data", staging, live,
               strerror(errno));
        remove_log_dir(staging);
        full_copy_discard(fc);
        return -1;
    }
    wal_close(&srv->wal);
    wal_replay_stats st;
    if (wal_open(&srv->wal, srv->cfg.data_dir, srv->cfg.wal_segment_bytes, skip_record, NULL, &st) != 0) {
        /* The new log is on disk and complete; only reopening it failed. */
        kv_log(KV_LOG_ERROR, "full copy: cannot open the installed log; exiting (a restart will load it)");
        _exit(1);
    }
    if (remove_log_dir(staging) != 0) kv_log(KV_LOG_WARN, "full copy: cannot remove the old log in %s", staging);
    kv_store_free(&srv->store);
    srv->store = fc->store; /* moved: fc no longer owns it */
    fc->active = 0;
    durability_restart(&srv->durability);
    srv->acked_upto = wal_written_upto(&srv->wal);
    kv_log(KV_LOG_INFO, "full copy installed: %zu keys as of index %" PRIu64 " of history %s", kv_store_count(&srv->store),
           fc->index, fc->history_id);
    full_copy_discard(fc);
    return 0;
}
