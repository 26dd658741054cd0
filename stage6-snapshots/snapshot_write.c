/* snapshot_write.c - taking snapshots with fork, installing them, deleting
 * old ones and the log they cover (see snapshot.h). */
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "node.h"
#include "resp_reply.h"
#include "server.h"
#include "snapshot_file.h"
#include "wal_raft.h"

void snapshot_crash_point(const node *n, const char *where) {
    if (n->snap.crash_at && strcmp(n->snap.crash_at, where) == 0) {
        kv_log(KV_LOG_WARN, "KV_TEST_CRASH_AT=%s: killing this process here", where);
        kill(getpid(), SIGKILL);
    }
}

static void path_of(const snapshotter *s, char *out, size_t cap, raft_index index, raft_term term, int tmp) {
    char name[SNAP_NAME_MAX];
    snap_file_name(name, sizeof name, index, term);
    snprintf(out, cap, "%s/%s%s", s->dir, name, tmp ? ".tmp" : "");
}

static int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

/* Keeps the two newest snapshots: the newest, and a fallback should it
 * prove damaged at the next start (the log after the fallback is kept). */
void snapshot_delete_old(node *n) {
    snapshotter *s = &n->snap;
    DIR *d = opendir(s->dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        uint64_t index, term;
        if (!snap_parse_name(de->d_name, &index, &term)) continue;
        if (index == s->last_index || index == s->prev_index) continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
            kv_log(KV_LOG_INFO, "snapshot %s deleted (two newer ones are kept)", de->d_name);
        else
            kv_log(KV_LOG_WARN, "cannot delete old snapshot %s/%s: %s", s->dir, de->d_name, strerror(errno));
    }
    closedir(d);
}

static void answer_waiters(node *n, int ok, const char *why) {
    snapshotter *s = &n->snap;
    for (size_t i = 0; i < s->nwaiters; i++) {
        for (conn *c = n->srv->conns; c; c = c->next) {
            if (c->id != s->waiters[i] || c->closing) continue;
            if (ok)
                reply_simple(&c->out, "OK");
            else
                reply_error(&c->out, "ERR snapshot failed: %s", why);
            conn_unblock(c);
            break;
        }
    }
    s->nwaiters = 0;
}

static void finish(node *n, int ok, const char *why) {
    snapshotter *s = &n->snap;
    char tmp[4096], final[4096];
    path_of(s, tmp, sizeof tmp, s->index, s->term, 1);
    path_of(s, final, sizeof final, s->index, s->term, 0);
    uint64_t took = uv_now(n->srv->loop) - s->started_ms;
    if (ok) {
        snapshot_crash_point(n, "snapshot-before-rename");
        if (rename(tmp, final) != 0) {
            why = strerror(errno);
            ok = 0;
        }
    }
    if (ok) {
        snapshot_crash_point(n, "snapshot-after-rename");
        if (fsync_dir(s->dir) != 0) {
            /* The snapshot may not survive a power cut: do not let the log go. */
            why = strerror(errno);
            ok = 0;
            unlink(final);
        }
    }
    if (!ok) {
        unlink(tmp);
        s->failed++;
        kv_log(KV_LOG_WARN, "snapshot at index %" PRIu64 " failed (%s); the log is kept", s->index, why);
        answer_waiters(n, 0, why);
        return;
    }
    if (s->index <= s->last_index || raft_snapshot_done(n->raft, s->index, s->term) != RAFT_OK) {
        /* A snapshot from the leader was installed while the child wrote:
         * this one is older than what the node now holds. */
        unlink(final);
        kv_log(KV_LOG_INFO, "snapshot at index %" PRIu64 " dropped: the node now holds snapshot %" PRIu64, s->index,
               s->last_index);
        answer_waiters(n, 0, "superseded by a snapshot installed from the leader");
        return;
    }
    if (s->last_index) s->prev_index = s->last_index;
    s->last_index = s->index;
    s->last_term = s->term;
    s->last_ms = took;
    struct stat st;
    s->last_bytes = stat(final, &st) == 0 ? (uint64_t)st.st_size : 0;
    s->taken++;
    kv_log(KV_LOG_INFO, "snapshot at index %" PRIu64 " (term %" PRIu64 ") done in %" PRIu64 " ms: %" PRIu64
           " bytes in %s", s->index, s->term, took, s->last_bytes, final);
    snapshot_delete_old(n);
    answer_waiters(n, 1, NULL);
    node_kick(n); /* the core has a compaction to announce */
}

/* The child is gone (reaped): its running time joins the total. */
static void child_gone(node *n) {
    snapshotter *s = &n->snap;
    s->child_pid = 0;
    s->writing_ms += uv_now(n->srv->loop) - s->started_ms;
}

uint64_t snapshot_writing_ms(const node *n) {
    const snapshotter *s = &n->snap;
    return s->writing_ms + (s->child_pid > 0 ? uv_now(n->srv->loop) - s->started_ms : 0);
}

static void on_sigchld(uv_signal_t *h, int signum) {
    node *n = h->data;
    snapshotter *s = &n->snap;
    (void)signum;
    if (s->child_pid <= 0) return;
    int status;
    pid_t r = waitpid(s->child_pid, &status, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR)) return;
    uv_signal_stop(&s->sigchld);
    child_gone(n);
    if (r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        finish(n, 1, NULL);
    } else {
        char why[64];
        if (r > 0 && WIFSIGNALED(status))
            snprintf(why, sizeof why, "the writer was killed by signal %d", WTERMSIG(status));
        else
            snprintf(why, sizeof why, "the writer failed (status %d)", r > 0 ? WEXITSTATUS(status) : -1);
        finish(n, 0, why);
    }
}

void snapshot_init_handles(node *n) {
    snapshotter *s = &n->snap;
    uv_signal_init(n->srv->loop, &s->sigchld);
    s->sigchld.data = n;
    uv_unref((uv_handle_t *)&s->sigchld);
    s->sig_ready = 1;
}

static void run_child(node *n, pid_t parent) {
    /* Drop every inherited descriptor (the data-dir lock, sockets), so that a
     * restarted server can lock the directory while this child still exits;
     * die with the parent. Only stderr stays, for the log. */
    close_range(3, ~0U, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    snapshotter *s = &n->snap;
    /* The servers' loops come first: the child yields the CPU to them (two
     * cores may be shared by three nodes and this child). */
    (void)setpriority(PRIO_PROCESS, 0, 10);
    const char *slow = getenv("KV_TEST_SNAPSHOT_SLOW_MS");
    if (slow) usleep((useconds_t)atoi(slow) * 1000);
    char tmp[4096];
    path_of(s, tmp, sizeof tmp, s->index, s->term, 1);
    if (s->crash_at && strcmp(s->crash_at, "snapshot-child") == 0) {
        /* Half a file, then death: the parent must discard it. */
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0 && write(fd, SNAP_MAGIC, SNAP_MAGIC_LEN) < 0) _exit(1);
        snapshot_crash_point(n, "snapshot-child");
    }
    uint64_t bytes;
    int r = snap_write_file(tmp, s->index, s->term, &n->srv->store, &n->sessions, &s->meta, n->srv->cfg.snapshot_rate,
                            &bytes);
    if (r != 0) fprintf(stderr, "snapshot writer: %s: %s\n", tmp, strerror(errno));
    _exit(r == 0 ? 0 : 1);
}

int snapshot_start(node *n) {
    snapshotter *s = &n->snap;
    if (s->child_pid > 0) return -1;
    if (n->applied_index == 0 || n->applied_index <= s->last_index) return 1;
    s->index = n->applied_index;
    s->term = n->applied_term;
    /* The configuration and the addresses as of the applied index: a node
     * restarted from this snapshot, or sent it, must know its members. */
    struct raft_membership conf;
    s->meta.conf_len = 0;
    if (raft_membership_at(n->raft, s->index, &conf) == RAFT_OK) s->meta.conf_len = raft_membership_encode(&conf, s->meta.conf);
    node_members_text(n, s->meta.members, sizeof s->meta.members);
    pid_t parent = getpid();
    fflush(stderr);
    /* The fork copies the page tables of the whole heap while the loop
     * waits: the pause every client sees, measured as Redis does. */
    uint64_t t0 = uv_hrtime();
    pid_t pid = fork();
    if (pid < 0) {
        kv_log(KV_LOG_ERROR, "snapshot: fork failed: %s", strerror(errno));
        s->failed++;
        return -1;
    }
    if (pid == 0) run_child(n, parent);
    s->fork_usec = (uv_hrtime() - t0) / 1000;
    s->child_pid = pid;
    s->started_ms = uv_now(n->srv->loop);
    s->log_bytes_since = 0;
    uv_signal_start(&s->sigchld, on_sigchld, SIGCHLD);
    kv_log(KV_LOG_INFO, "snapshot started (child pid %d, fork %" PRIu64 " us): %zu keys and %zu sessions at index %" PRIu64
           " (term %" PRIu64 ")", (int)pid, s->fork_usec, kv_store_count(&n->srv->store), sessions_count(&n->sessions), s->index,
           s->term);
    /* The child may have exited before the handler was installed. */
    on_sigchld(&s->sigchld, SIGCHLD);
    return 0;
}

int snapshot_wait(node *n, uint64_t conn_id) {
    snapshotter *s = &n->snap;
    if (s->nwaiters == s->waiters_cap) {
        size_t cap = s->waiters_cap ? s->waiters_cap * 2 : 4;
        uint64_t *w = realloc(s->waiters, cap * sizeof *w);
        if (!w) return -1;
        s->waiters = w;
        s->waiters_cap = cap;
    }
    s->waiters[s->nwaiters++] = conn_id;
    return 0;
}

void snapshot_maybe_auto(node *n) {
    snapshotter *s = &n->snap;
    const server_config *cfg = &n->srv->cfg;
    if (s->child_pid > 0 || n->srv->shutting_down) return;
    raft_index since = n->applied_index > s->last_index ? n->applied_index - s->last_index : 0;
    int by_entries = cfg->snapshot_entries > 0 && since >= (uint64_t)cfg->snapshot_entries;
    int by_bytes = cfg->snapshot_bytes > 0 && s->log_bytes_since >= (uint64_t)cfg->snapshot_bytes;
    if (!by_entries && !by_bytes) return;
    kv_log(KV_LOG_INFO, "%" PRIu64 " entries applied and %" PRIu64 " log bytes written since the last snapshot: "
           "taking one", since, s->log_bytes_since);
    snapshot_start(n);
}

void snapshot_compact_log(node *n, raft_index compacted_to) {
    snapshotter *s = &n->snap;
    /* The previous snapshot stays usable: the log after it is kept. */
    raft_index upto = compacted_to < s->prev_index ? compacted_to : s->prev_index;
    if (upto == 0) return;
    snapshot_crash_point(n, "snapshot-before-compact");
    int r = wal_drop_prefix(&n->srv->wal, upto, 1);
    if (r > 0) {
        snapshot_crash_point(n, "snapshot-mid-compact");
        r = wal_drop_prefix(&n->srv->wal, upto, 0);
    }
    if (r < 0) kv_log(KV_LOG_WARN, "cannot delete WAL segments up to %" PRIu64 ": %s", upto, strerror(errno));
}

void snapshot_abort(node *n) {
    snapshotter *s = &n->snap;
    if (s->child_pid <= 0) return;
    kill(s->child_pid, SIGKILL);
    int status;
    while (waitpid(s->child_pid, &status, 0) < 0 && errno == EINTR) {
    }
    child_gone(n);
    char tmp[4096];
    path_of(s, tmp, sizeof tmp, s->index, s->term, 1);
    unlink(tmp);
    kv_log(KV_LOG_INFO, "shutdown: stopped the snapshot being written");
    answer_waiters(n, 0, "shutting down");
}

void snapshot_free(node *n) {
    snapshot_send_free(n);
    free(n->snap.dir);
    free(n->snap.waiters);
    n->snap.dir = NULL;
    n->snap.waiters = NULL;
}
