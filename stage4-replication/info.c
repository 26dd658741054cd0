/* info.c - the INFO reply (see info.h). Field names follow Redis where the
 * meaning is the same, so existing tools read them. */
#include "info.h"

#include <stdarg.h>
#include <stdio.h>

#include "leader.h"
#include "replication.h"
#include "server.h"

#define STAGE_NAME "stage4-replication"

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

/* The Replication section: Redis's field names where the meaning is the
 * same (role, connected_followers for connected_slaves...). */
static int render_replication(const server *srv, kv_buf *out) {
    const repl *rp = &srv->repl;
    uint64_t now = uv_now(srv->loop);
    int r = 0;
    r |= append_line(out, "\r\n# Replication\r\nrole:%s\r\n", repl_role_name(rp->role));
    if (rp->role == ROLE_FOLLOWER) {
        int up = rp->link && rp->link->state == LINK_STREAMING;
        uint64_t last_io = rp->link ? (now - rp->link->link.last_recv_ms) / 1000 : 0;
        r |= append_line(out,
                         "leader_host:%s\r\nleader_port:%d\r\nleader_client_addr:%s\r\nleader_link_status:%s\r\n"
                         "leader_last_io_seconds_ago:%lld\r\nleader_sync_in_progress:%d\r\n",
                         rp->leader_host, rp->leader_peer_port, rp->leader_client_addr[0] ? rp->leader_client_addr : "unknown",
                         up ? "up" : "down", rp->link ? (long long)last_io : -1LL,
                         rp->link && rp->link->state == LINK_COPYING);
        if (!up && rp->link_down_since_ms)
            r |= append_line(out, "leader_link_down_since_seconds:%llu\r\n",
                             (unsigned long long)((now - rp->link_down_since_ms) / 1000));
    }
    r |= append_line(out, "log_id:%s\r\nlog_id2:%s\r\nlog_id2_end_index:%llu\r\nlog_index:%llu\r\n",
                     rp->hist.id[0] ? rp->hist.id : "-", rp->hist.prev_id[0] ? rp->hist.prev_id : "-",
                     (unsigned long long)rp->hist.prev_end, (unsigned long long)(srv->wal.next_index - 1));
    int n = 0;
    for (const follower *f = rp->followers; f; f = f->next) n += f->state >= FOLLOWER_COPYING;
    r |= append_line(out, "connected_followers:%d\r\n", n);
    int i = 0;
    for (const follower *f = rp->followers; f; f = f->next) {
        if (f->state < FOLLOWER_COPYING) continue;
        r |= append_line(out, "follower%d:addr=%s,peer=%s,state=%s,acked_index=%llu,lag_records=%llu,lag_ms=%llu\r\n",
                         i++, f->id, f->link.addr, follower_state_name(f->state), (unsigned long long)f->acked,
                         (unsigned long long)leader_lag_records(rp, f), (unsigned long long)leader_lag_ms(rp, f, now));
    }
    r |= append_line(out,
                     "min_followers_to_write:%lld\r\nmin_followers_max_lag:%lld\r\nfull_copies_sent:%llu\r\n"
                     "continuations_sent:%llu\r\nfull_copies_received:%llu\r\nrefused_peers:%llu\r\n",
                     srv->cfg.min_followers_to_write, srv->cfg.min_followers_max_lag,
                     (unsigned long long)rp->stats.full_copies_sent, (unsigned long long)rp->stats.continuations_sent,
                     (unsigned long long)rp->stats.full_copies_received, (unsigned long long)rp->stats.refused_peers);
    return r;
}

int info_render(const server *srv, kv_buf *out) {
    uint64_t uptime = (uv_now(srv->loop) - srv->start_ms) / 1000;
    size_t keys = kv_store_count(&srv->store);
    int r = 0;
    r |= append_line(out, "# Server\r\nstage:%s\r\nversion:%s\r\nprocess_id:%d\r\ntcp_port:%lld\r\nuptime_in_seconds:%llu\r\n"
             "busy_poll_us:%lld\r\n",
             STAGE_NAME, KV_VERSION, (int)uv_os_getpid(), srv->cfg.port, (unsigned long long)uptime,
             (long long)kv_busy_poll_budget_us(&srv->busy_poll)); /* a follower's is 0 (replication.c) */
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
    r |= render_replication(srv, out);
    return r ? -1 : 0;
}
