/* history.c - history ids: load, save atomically, begin anew (see history.h). */
#include "history.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "peer_auth.h"
#include "wal_files.h"

static int valid_id(const char *s) {
    if (s[0] == '\0') return 1;
    if (strlen(s) != HISTORY_ID_LEN) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
    return 1;
}

int history_load(const char *wal_dir, history *h) {
    memset(h, 0, sizeof *h);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", wal_dir, HISTORY_FILE);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return 0;
        kv_log(KV_LOG_ERROR, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char id[64] = "", prev[64] = "";
    uint64_t end = 0;
    int n = fscanf(f, "id %63s prev %63s prev_end %" SCNu64, id, prev, &end);
    fclose(f);
    if (strcmp(prev, "-") == 0) prev[0] = '\0';
    if (n != 3 || !valid_id(id) || !valid_id(prev)) {
        kv_log(KV_LOG_ERROR, "damaged history file %s: expected 'id <40 hex> prev <40 hex or -> prev_end <n>'", path);
        return -1;
    }
    memcpy(h->id, id, strlen(id) + 1);
    memcpy(h->prev_id, prev, strlen(prev) + 1);
    h->prev_end = end;
    return 0;
}

int history_save(const char *wal_dir, const history *h) {
    char tmp[4096], path[4096], text[160];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", wal_dir, HISTORY_FILE);
    snprintf(path, sizeof path, "%s/%s", wal_dir, HISTORY_FILE);
    int n = snprintf(text, sizeof text, "id %s\nprev %s\nprev_end %" PRIu64 "\n", h->id[0] ? h->id : "-",
                     h->prev_id[0] ? h->prev_id : "-", h->prev_end);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int ok = fd >= 0 && wal_pwrite_all(fd, text, (size_t)n, 0) == 0 && fsync(fd) == 0;
    if (fd >= 0) close(fd);
    ok = ok && rename(tmp, path) == 0;
    int dfd = ok ? open(wal_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    ok = ok && dfd >= 0 && wal_fsync_dir(dfd) == 0;
    if (dfd >= 0) close(dfd);
    if (!ok) {
        kv_log(KV_LOG_ERROR, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int history_begin_new(history *h, uint64_t last) {
    unsigned char r[KV_AUTH_NONCE_LEN];
    if (kv_auth_nonce(r) != 0) return -1;
    if (h->id[0]) {
        memcpy(h->prev_id, h->id, sizeof h->id);
        h->prev_end = last;
    }
    for (int i = 0; i < HISTORY_ID_LEN / 2; i++) snprintf(h->id + 2 * i, 3, "%02x", r[i]);
    return 0;
}

int history_is_prefix(const history *h, uint64_t my_last, const char *id, uint64_t last) {
    /* LAB history-prefix: same history: it holds no more than we do; the previous history: no more than where it ended here */
    if (id[0] == '\0') return last == 0; /* an empty log is a prefix of every log */
    if (strcmp(id, h->id) == 0) return last <= my_last;
    if (h->prev_id[0] && strcmp(id, h->prev_id) == 0) return last <= h->prev_end && last <= my_last;
    return 0;
    /* END LAB */
}
