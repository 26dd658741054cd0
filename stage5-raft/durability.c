/* durability.c - write batching, group commit and fsync policies (see durability.h). */
#include "durability.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define EVERYSEC_INTERVAL_MS 1000

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

durability_event durability_ack_event(const durability *d) {
    return d->policy == FSYNC_ALWAYS ? RECORDS_DURABLE : RECORDS_WRITTEN;
}

static void fatal_io(const char *what, int err) {
    kv_log(KV_LOG_ERROR, "%s failed: %s; exiting without acknowledging further writes", what, strerror(err));
    _exit(1);
}

static uint64_t wall_ms(void) {
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void report_written(durability *d) {
    uint64_t upto = wal_written_upto(d->wal);
    if (upto <= d->written_upto) return;
    d->written_upto = upto;
    d->hooks.report(d->hooks.ctx, RECORDS_WRITTEN, upto);
}

static void report_durable(durability *d, uint64_t upto) {
    if (upto <= d->durable_upto) return;
    d->durable_upto = upto;
    d->hooks.report(d->hooks.ctx, RECORDS_DURABLE, upto);
}

static void sync_work(uv_work_t *req) {
    durability *d = req->data;
    int r;
    do r = fdatasync(d->sync_fd);
    while (r != 0 && errno == EINTR);
    d->sync_err = r == 0 ? 0 : errno;
}

static void write_and_sync(durability *d);

static void sync_done(uv_work_t *req, int status) {
    durability *d = req->data;
    d->syncing = 0;
    kv_busy_poll_hold(d->busy_poll, 0);
    if (status != 0) fatal_io("fdatasync (cancelled)", ECANCELED);
    if (d->sync_err) fatal_io("fdatasync of the WAL", d->sync_err);
    d->last_fsync_ms = wall_ms();
    d->fsyncs++;
    report_durable(d, d->syncing_upto);
    write_and_sync(d);
}

/* The same sync, on the loop thread: it blocks until the disk answers. */
static void sync_here(durability *d) {
    uint64_t upto = wal_written_upto(d->wal);
    if (wal_sync_now(d->wal) != 0) fatal_io("fdatasync of the WAL", errno);
    d->last_fsync_ms = wall_ms();
    d->fsyncs++;
    report_durable(d, upto);
}

static void start_sync(durability *d) {
    if (d->sync_on_loop && d->policy == FSYNC_ALWAYS) {
        sync_here(d);
        return;
    }
    d->syncing = 1;
    kv_busy_poll_hold(d->busy_poll, 1);
    d->syncing_upto = wal_written_upto(d->wal);
    d->sync_fd = wal_fd(d->wal);
    d->sync_req.data = d;
    int r = uv_queue_work(d->loop, &d->sync_req, sync_work, sync_done);
    if (r != 0) fatal_io("queueing fdatasync", -r);
}

int durability_rotate(durability *d) {
    uint64_t first = wal_current_first(d->wal);
    if (wal_rotate(d->wal) != 0) return -1;
    /* Rotation fsyncs the old segment: everything before the new one is durable. */
    if (wal_current_first(d->wal) != first) report_durable(d, wal_current_first(d->wal) - 1);
    return 0;
}

/* The step run once per loop iteration (and after each sync): write what
 * is buffered; then, unless an fdatasync holds the current segment's fd,
 * rotate if the segment is full, give the owner its between-syncs moment,
 * and start a group commit if the policy wants one. */
static void write_and_sync(durability *d) {
    if (wal_has_pending(d->wal) && wal_write(d->wal) != 0) fatal_io("writing the WAL", errno);
    report_written(d);
    if (d->syncing) return;
    if (wal_rotate_if_full(d->wal) != 0) fatal_io("rotating the WAL", errno);
    uint64_t first = wal_current_first(d->wal);
    if (first - 1 > d->durable_upto) report_durable(d, first - 1);
    if (d->hooks.between_syncs) d->hooks.between_syncs(d->hooks.ctx);
    /* LAB group-commit: under always, unless an fdatasync runs, start one on a worker thread covering every record written so far */
    if (d->policy == FSYNC_ALWAYS && wal_written_upto(d->wal) > d->durable_upto) start_sync(d);
    /* END LAB */
}

static void on_before_poll(uv_prepare_t *h) { write_and_sync(h->data); }

static void on_everysec(uv_timer_t *t) {
    durability *d = t->data;
    if (!d->syncing && wal_written_upto(d->wal) > d->durable_upto) start_sync(d);
}

void durability_init(durability *d, uv_loop_t *loop, wal *w, fsync_policy policy, kv_busy_poll *busy_poll,
                     durability_hooks hooks) {
    memset(d, 0, sizeof *d);
    d->loop = loop;
    d->wal = w;
    d->policy = policy;
    d->busy_poll = busy_poll;
    d->hooks = hooks;
    d->written_upto = d->durable_upto = wal_written_upto(w);
}

void durability_start(durability *d) {
    uv_prepare_init(d->loop, &d->before_poll);
    d->before_poll.data = d;
    uv_prepare_start(&d->before_poll, on_before_poll);
    uv_timer_init(d->loop, &d->everysec);
    d->everysec.data = d;
    if (d->policy == FSYNC_EVERYSEC) uv_timer_start(&d->everysec, on_everysec, EVERYSEC_INTERVAL_MS, EVERYSEC_INTERVAL_MS);
    /* Neither keeps the loop alive: shutdown ends when clients and work are done. */
    uv_unref((uv_handle_t *)&d->before_poll);
    uv_unref((uv_handle_t *)&d->everysec);
}

void durability_sync_on_loop(durability *d, int on) { d->sync_on_loop = on; }

void durability_flush_now(durability *d) {
    if (wal_write(d->wal) != 0) fatal_io("writing the WAL", errno);
    /* Harmless if it fails: recovery reads the zeros as the end of the log. */
    if (wal_trim(d->wal) != 0) kv_log(KV_LOG_WARN, "cannot trim the WAL's preallocated space: %s", strerror(errno));
    if (wal_sync_now(d->wal) != 0) fatal_io("fdatasync of the WAL", errno);
    d->written_upto = d->durable_upto = wal_written_upto(d->wal);
    d->last_fsync_ms = wall_ms();
}

void durability_restart(durability *d) { d->written_upto = d->durable_upto = wal_written_upto(d->wal); }
