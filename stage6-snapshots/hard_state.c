/* hard_state.c - the atomic (term, vote) file (see hard_state.h). One text
 * line "term=T vote=V crc=C": readable with cat, and the CRC tells a
 * damaged file from a valid one. */
#include "hard_state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "datadir.h"
#include "log.h"

#define STATE_NAME "RAFT_STATE"

static uint32_t pair_crc(uint64_t term, uint32_t vote) {
    char body[64];
    int n = snprintf(body, sizeof body, "term=%" PRIu64 " vote=%" PRIu32, term, vote);
    return kv_crc32c(0, body, (size_t)n);
}

int hard_state_load(const char *data_dir, uint64_t *term, uint32_t *vote) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", data_dir, STATE_NAME);
    *term = 0;
    *vote = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return 0;
        kv_log(KV_LOG_ERROR, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    uint64_t t;
    uint32_t v, crc;
    int ok = fscanf(f, "term=%" SCNu64 " vote=%" SCNu32 " crc=%" SCNu32, &t, &v, &crc) == 3 && crc == pair_crc(t, v);
    fclose(f);
    if (!ok) {
        kv_log(KV_LOG_ERROR, "%s is damaged; refusing to start (a node that forgot its vote could vote twice)", path);
        return -1;
    }
    *term = t;
    *vote = v;
    return 0;
}

int hard_state_save(const char *data_dir, uint64_t term, uint32_t vote) {
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", data_dir, STATE_NAME);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    char line[128];
    int n = snprintf(line, sizeof line, "term=%" PRIu64 " vote=%" PRIu32 " crc=%" PRIu32 "\n", term, vote,
                     pair_crc(term, vote));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int ok = fd >= 0;
    if (ok) ok = write(fd, line, (size_t)n) == n;
    if (ok) ok = fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0) ok = 0;
    if (ok) ok = rename(tmp, path) == 0;
    if (ok) ok = datadir_fsync_parent(path) == 0;
    if (!ok) kv_log(KV_LOG_ERROR, "cannot save the Raft term and vote to %s: %s", path, strerror(errno));
    return ok ? 0 : -1;
}
