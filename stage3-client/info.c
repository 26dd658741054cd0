/* info.c - the INFO reply (see info.h). Field names follow Redis where the
 * meaning is the same, so existing tools read them. */
#include "info.h"

#include <stdarg.h>
#include <stdio.h>

#include "server.h"

#define STAGE_NAME "stage3-client"

static int append_line(kv_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int append_line(kv_buf *out, const char *fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line) return -1;
    return kv_buf_append(out, line, (size_t)n);
}

int info_render(const server *srv, kv_buf *out) {
    uint64_t uptime = (uv_now(srv->loop) - srv->start_ms) / 1000;
    size_t keys = kv_store_count(&srv->store);
    int r = 0;
    r |= append_line(out, "# Server\r\nstage:%s\r\nversion:%s\r\nprocess_id:%d\r\ntcp_port:%lld\r\nuptime_in_seconds:%llu\r\n"
             "busy_poll_us:%lld\r\n",
             STAGE_NAME, KV_VERSION, (int)uv_os_getpid(), srv->cfg.port, (unsigned long long)uptime,
             srv->cfg.busy_poll_us);
    r |= append_line(out, "\r\n# Clients\r\nconnected_clients:%lld\r\nmaxclients:%lld\r\ntimeout:%lld\r\nmax_output_bytes:%zu\r\n",
             srv->nconns, srv->cfg.max_clients, srv->cfg.idle_timeout, srv->cfg.max_output_bytes);
    r |= append_line(out, "\r\n# Memory\r\nused_memory:%zu\r\n", kv_store_mem(&srv->store));
    r |= append_line(out,
             "\r\n# Stats\r\ntotal_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
             "rejected_connections:%llu\r\nprotocol_errors:%llu\r\nidle_closes:%llu\r\noutput_limit_closes:%llu\r\n",
             (unsigned long long)srv->stats.connections_received,
             (unsigned long long)srv->stats.commands_processed,
             (unsigned long long)srv->stats.rejected_connections, (unsigned long long)srv->stats.protocol_errors,
             (unsigned long long)srv->stats.idle_closes, (unsigned long long)srv->stats.output_limit_closes);
    r |= append_line(out, "\r\n# Keyspace\r\nkeys:%zu\r\n", keys);
    if (keys > 0) r |= append_line(out, "db0:keys=%zu,expires=0,avg_ttl=0\r\n", keys);
    r |= append_line(out,
             "\r\n# Persistence\r\nfsync:%s\r\nwal_bytes:%llu\r\nwal_segments:%zu\r\nwal_next_index:%llu\r\n"
             "last_fsync_unix_ms:%llu\r\nfsyncs:%llu\r\n",
             durability_policy_name(durability_policy(&srv->durability)),
             (unsigned long long)wal_total_bytes(&srv->wal), wal_file_count(&srv->wal),
             (unsigned long long)srv->wal.next_index, (unsigned long long)durability_last_fsync_ms(&srv->durability),
             (unsigned long long)srv->durability.fsyncs);
    r |= append_line(out, "compactions_done:%llu\r\ncompaction_in_progress:%d\r\nrecords_replayed_at_start:%llu\r\nreplay_ms:%llu\r\n",
             (unsigned long long)srv->compaction.done, compaction_in_progress(&srv->compaction),
             (unsigned long long)srv->replay.records, (unsigned long long)(srv->replay.seconds * 1000.0));
    return r ? -1 : 0;
}
