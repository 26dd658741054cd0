/* durability.c - write batching, group commit and fsync policies (see durability.h). */
#include "durability.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "compaction.h"
#include "conn.h"
#include "log.h"
#include "server.h"

#define CRON_INTERVAL_MS 1000

static const char *const policy_names[] = {"always", "everysec", "no"};

int durability_parse_policy(const char *name, fsync_policy *out) {
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, policy_names[i]) == 0) {
            *out = (fsync_policy)i;
            return 0;
        }
    }
    return -1;
}

const char *durability_policy_name(fsync_policy p) { return policy_names[p]; }

static void fatal_io(const char *what, int err) {
    kv_log(KV_LOG_ERROR, "%s failed: %s; exiting without acknowledging further writes", what, strerror(err));
    _exit(1);
}

static uint64_t wall_ms(void) {
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* Every reply waiting for records up to durable can go now. */
static void release_held(server *srv, uint64_t durable) {
    if (durable <= srv->durable_seq) return;
    srv->durable_seq = durable;
    conn *next;
    for (conn *c = srv->conns; c; c = next) {
        next = c->next;
        if (c->hold_seq && c->hold_seq <= durable) {
            c->hold_seq = 0;
            conn_flush(c);
            conn_resume(c);
        }
    }
}

static void sync_work(uv_work_t *req) {
    server *srv = req->data;
    int r;
    do r = fdatasync(srv->sync_fd);
    while (r != 0 && errno == EINTR);
    srv->sync_err = r == 0 ? 0 : errno;
}

static void pump(server *srv);

static void sync_done(uv_work_t *req, int status) {
    server *srv = req->data;
    srv->syncing = 0;
    kv_busy_poll_hold(&srv->busy_poll, 0);
    if (status != 0) fatal_io("fdatasync (cancelled)", ECANCELED);
    if (srv->sync_err) fatal_io("fdatasync of the WAL", srv->sync_err);
    srv->synced_index = srv->sync_target;
    srv->last_fsync_ms = wall_ms();
    if (srv->fsync == FSYNC_ALWAYS) release_held(srv, srv->sync_target);
    pump(srv);
}

static void start_sync(server *srv) {
    srv->syncing = 1;
    kv_busy_poll_hold(&srv->busy_poll, 1);
    srv->sync_target = wal_written_index(&srv->wal);
    srv->sync_fd = wal_fd(&srv->wal);
    srv->sync_req.data = srv;
    int r = uv_queue_work(srv->loop, &srv->sync_req, sync_work, sync_done);
    if (r != 0) fatal_io("queueing fdatasync", -r);
}

/* Write what is buffered; rotate or compact if due (never under a running
 * fdatasync, which holds the current segment's fd); start a group commit. */
static void pump(server *srv) {
    if (wal_has_pending(&srv->wal) && wal_write(&srv->wal) != 0) fatal_io("writing the WAL", errno);
    /* Under everysec and no, a reply may go once its record is in the kernel:
     * a crash of this process can no longer lose it. */
    if (srv->fsync != FSYNC_ALWAYS) release_held(srv, wal_written_index(&srv->wal));
    if (srv->syncing) return;
    uint64_t first = wal_current_first(&srv->wal);
    if (wal_rotate_if_full(&srv->wal) != 0) fatal_io("rotating the WAL", errno);
    if (wal_current_first(&srv->wal) != first) {
        /* Rotation fsyncs the old segment: everything before the new one is durable. */
        srv->synced_index = wal_current_first(&srv->wal) - 1;
        if (srv->fsync == FSYNC_ALWAYS) release_held(srv, srv->synced_index);
    }
    if (srv->compact_requested) compaction_begin(srv);
    if (srv->fsync == FSYNC_ALWAYS && wal_written_index(&srv->wal) > srv->synced_index) start_sync(srv);
}

static void on_before_poll(uv_prepare_t *h) { pump(h->data); }

static void on_cron(uv_timer_t *t) {
    server *srv = t->data;
    if (srv->fsync == FSYNC_EVERYSEC && !srv->syncing && wal_written_index(&srv->wal) > srv->synced_index)
        start_sync(srv);
    compaction_check(srv);
}

void durability_start(server *srv) {
    srv->synced_index = srv->durable_seq = wal_written_index(&srv->wal);
    uv_prepare_init(srv->loop, &srv->before_poll);
    srv->before_poll.data = srv;
    uv_prepare_start(&srv->before_poll, on_before_poll);
    uv_timer_init(srv->loop, &srv->cron);
    srv->cron.data = srv;
    uv_timer_start(&srv->cron, on_cron, CRON_INTERVAL_MS, CRON_INTERVAL_MS);
    /* Neither keeps the loop alive: shutdown ends when clients and work are done. */
    uv_unref((uv_handle_t *)&srv->before_poll);
    uv_unref((uv_handle_t *)&srv->cron);
}

void durability_note_write(server *srv, conn *c, uint64_t idx) {
    (void)srv;
    c->hold_seq = idx;
}

void durability_flush_now(server *srv) {
    if (wal_write(&srv->wal) != 0) fatal_io("writing the WAL", errno);
    /* Harmless if it fails: recovery reads the zeros as the end of the log. */
    if (wal_trim(&srv->wal) != 0) kv_log(KV_LOG_WARN, "cannot trim the WAL's preallocated space: %s", strerror(errno));
    if (wal_sync_now(&srv->wal) != 0) fatal_io("fdatasync of the WAL", errno);
    srv->synced_index = wal_written_index(&srv->wal);
    srv->last_fsync_ms = wall_ms();
}

