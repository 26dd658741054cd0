/* datadir.c - data directory creation and locking (see datadir.h).
 * flock() locks belong to the open file and vanish when the process dies,
 * even by kill -9, so a crashed server never leaves a stale lock behind. */
#include "datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

int datadir_fsync_parent(const char *path) {
    char parent[4096];
    if (snprintf(parent, sizeof parent, "%s", path) >= (int)sizeof parent) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char *slash = strrchr(parent, '/');
    if (!slash)
        strcpy(parent, ".");
    else if (slash == parent)
        parent[1] = '\0'; /* "/x": the root */
    else
        *slash = '\0';
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r;
    do r = fsync(fd);
    while (r != 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

/* mkdir that also makes a directory it created durable (see datadir_fsync_parent). */
static int mkdir_durable(const char *path) {
    if (mkdir(path, 0755) != 0) return errno == EEXIST ? 0 : -1;
    return datadir_fsync_parent(path);
}

static int mkdir_p(const char *dir) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir_durable(path) != 0) return -1;
        *p = '/';
    }
    return mkdir_durable(path);
}

int datadir_open_and_lock(const char *dir) {
    if (mkdir_p(dir) != 0) {
        kv_log(KV_LOG_ERROR, "cannot create data directory %s: %s", dir, strerror(errno));
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        kv_log(KV_LOG_ERROR, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char owner[32] = "";
        ssize_t n = pread(fd, owner, sizeof owner - 1, 0);
        owner[n > 0 ? n : 0] = '\0';
        owner[strcspn(owner, "\n")] = '\0';
        kv_log(KV_LOG_ERROR, "data directory %s is in use by another process (pid %s); refusing to start", dir,
               owner[0] ? owner : "unknown");
        close(fd);
        return -1;
    }
    /* Record our pid for the message above; the lock, not the file, is what counts. */
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        kv_log(KV_LOG_WARN, "cannot write pid to %s: %s", path, strerror(errno));
    return fd;
}
