/* compaction.c - fork-based log compaction (see compaction.h).
 *
 *   1. (parent) rotate: records up to U are now in closed segments;
 *      new records go to a segment starting at U + 1.
 *   2. (parent) fork. The child's memory is the store exactly as of record U.
 *   3. (child) write every key as a SET record to base-U.log.tmp, fsync, exit.
 *   4. (parent, on SIGCHLD) rename to base-U.log, fsync the directory,
 *      delete the segments and older base that U covers.
 * See wal_install_base for why a crash between any two steps is safe. */
#include "compaction.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "durability.h"
#include "log.h"
#include "server.h"

#define CHECK_INTERVAL_MS 1000

static void on_sigchld(uv_signal_t *h, int signum) {
    server *srv = h->data;
    compaction *cp = &srv->compaction;
    (void)signum;
    if (cp->child_pid <= 0) return;
    int status;
    pid_t r = waitpid(cp->child_pid, &status, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR)) return;
    uv_signal_stop(&cp->sigchld);
    cp->child_pid = 0;
    uint64_t upto = cp->upto;
    uint64_t took = uv_now(srv->loop) - cp->started_ms;
    if (r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        uint64_t before = wal_total_bytes(&srv->wal);
        if (wal_install_base(&srv->wal, upto) == 0) {
            cp->done++;
            kv_log(KV_LOG_INFO, "compaction done in %" PRIu64 " ms: log %" PRIu64 " -> %" PRIu64
                   " bytes (base covers records up to %" PRIu64 ")", took, before, wal_total_bytes(&srv->wal), upto);
            return;
        }
    } else {
        kv_log(KV_LOG_WARN, "compaction child failed (status %d); the log is unchanged", status);
    }
    wal_discard_base(srv->wal.dir, upto);
}

compaction_request_result compaction_request(server *srv) {
    compaction *cp = &srv->compaction;
    if (compaction_in_progress(cp)) return COMPACTION_ALREADY_RUNNING;
    if (srv->wal.next_index - 1 <= srv->wal.base_index) return COMPACTION_NOTHING_TO_DO;
    cp->requested = 1;
    return COMPACTION_STARTED;
}

void compaction_between_syncs(server *srv) {
    compaction *cp = &srv->compaction;
    if (!cp->requested) return;
    cp->requested = 0;
    if (cp->child_pid > 0) return;
    /* Step 1: close the current segment so the child's snapshot is exactly
     * "everything before the new segment". */
    if (durability_rotate(&srv->durability) != 0) {
        kv_log(KV_LOG_ERROR, "compaction: cannot start a new segment: %s", strerror(errno));
        return;
    }
    uint64_t upto = wal_current_first(&srv->wal) - 1;
    if (upto <= srv->wal.base_index) return; /* nothing new since the last base */
    pid_t parent = getpid();
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        kv_log(KV_LOG_ERROR, "compaction: fork failed: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        /* Child: drop every inherited descriptor first (the data-dir lock, the
         * listening socket, client sockets), so a restarted server can lock the
         * directory and bind the port even while this child is still exiting;
         * then die with the parent. Only stderr stays, for the log. */
        close_range(3, ~0U, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        int rc = wal_write_base(srv->wal.dir, upto, &srv->store);
        _exit(rc == 0 ? 0 : 1);
    }
    cp->child_pid = pid;
    cp->upto = upto;
    cp->started_ms = uv_now(srv->loop);
    uv_signal_start(&cp->sigchld, on_sigchld, SIGCHLD);
    kv_log(KV_LOG_INFO, "compaction started (child pid %d): rewriting %zu live keys covering records up to %" PRIu64,
           (int)pid, kv_store_count(&srv->store), upto);
    /* The child may already have exited before the handler was installed. */
    on_sigchld(&cp->sigchld, SIGCHLD);
}

/* Starts a compaction when the log is larger than --compact-min-bytes and
 * twice the live data. */
static void on_check(uv_timer_t *t) {
    server *srv = t->data;
    if (compaction_in_progress(&srv->compaction) || srv->shutting_down) return;
    uint64_t logged = wal_total_bytes(&srv->wal);
    uint64_t live = kv_store_mem(&srv->store);
    if (logged > srv->cfg.compact_min_bytes && logged > 2 * live) {
        kv_log(KV_LOG_INFO, "log is %" PRIu64 " bytes for about %" PRIu64 " bytes of live data: compacting", logged,
               live);
        compaction_request(srv);
    }
}

void compaction_init(server *srv) {
    compaction *cp = &srv->compaction;
    memset(cp, 0, sizeof *cp);
    uv_signal_init(srv->loop, &cp->sigchld);
    cp->sigchld.data = srv;
    uv_unref((uv_handle_t *)&cp->sigchld);
    uv_timer_init(srv->loop, &cp->check);
    cp->check.data = srv;
    uv_timer_start(&cp->check, on_check, CHECK_INTERVAL_MS, CHECK_INTERVAL_MS);
    uv_unref((uv_handle_t *)&cp->check);
}

void compaction_abort(server *srv, const char *why) {
    compaction *cp = &srv->compaction;
    cp->requested = 0;
    if (cp->child_pid <= 0) return;
    kill(cp->child_pid, SIGKILL);
    int status;
    while (waitpid(cp->child_pid, &status, 0) < 0 && errno == EINTR) {
    }
    wal_discard_base(srv->wal.dir, cp->upto);
    kv_log(KV_LOG_INFO, "%s: stopped the running compaction; the log is unchanged", why);
    cp->child_pid = 0;
}
