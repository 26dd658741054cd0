/* info.c - the INFO reply (see info.h). Field names follow Redis where the
 * meaning is the same, so existing tools read them. */
#include "info.h"

#include <stdarg.h>
#include <stdio.h>

#include "node.h"
#include "peers.h"
#include "server.h"

#define STAGE_NAME "stage6-snapshots"

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

/* The Raft section: who leads, how far the log is committed and applied,
 * and (on the leader) how far each peer matches it and when it last answered. */
static int render_raft(const server *srv, kv_buf *out) {
    const node *n = &srv->node;
    const struct raft *rf = n->raft;
    raft_id leader = raft_leader(rf);
    const node_addr *la = node_member(n, leader);
    char addr[96] = "unknown";
    if (la) snprintf(addr, sizeof addr, "%s:%d", la->host, la->client_port);
    int r = 0;
    r |= append_line(out,
                     "\r\n# Raft\r\nraft_id:%u\r\nraft_cluster_size:%u\r\nraft_role:%s\r\nraft_term:%llu\r\n"
                     "raft_voted_for:%u\r\nraft_leader_id:%u\r\nraft_leader_addr:%s\r\n",
                     n->self, n->nmembers, raft_role_name(raft_role(rf)), (unsigned long long)raft_current_term(rf),
                     raft_voted_for(rf), leader, addr);
    r |= append_line(out,
                     "raft_commit_index:%llu\r\nraft_applied_index:%llu\r\nraft_last_index:%llu\r\n"
                     "raft_persisted_index:%llu\r\nraft_pending_requests:%zu\r\n",
                     (unsigned long long)raft_commit_index(rf), (unsigned long long)raft_applied_index(rf),
                     (unsigned long long)raft_last_index(rf), (unsigned long long)raft_persisted_index(rf), n->npend);
    r |= append_line(out,
                     "raft_msgs_sent:%llu\r\nraft_msgs_received:%llu\r\nraft_msgs_dropped:%llu\r\n"
                     "raft_bad_messages:%llu\r\nraft_elections_won:%llu\r\nraft_truncations:%llu\r\n",
                     (unsigned long long)n->stats.msgs_sent, (unsigned long long)n->stats.msgs_received,
                     (unsigned long long)n->stats.msgs_dropped, (unsigned long long)n->stats.bad_messages,
                     (unsigned long long)n->stats.elections_won, (unsigned long long)n->stats.truncations);
    r |= append_line(out,
                     "raft_follower_read_staleness_ms:%llu\r\nraft_reads_leader:%llu\r\n"
                     "raft_reads_follower:%llu\r\nraft_reads_follower_refused:%llu\r\n"
                     "raft_leader_commit_seen:%llu\r\n",
                     (unsigned long long)n->follower_read_staleness_ms, (unsigned long long)n->stats.reads_leader,
                     (unsigned long long)n->stats.reads_follower, (unsigned long long)n->stats.reads_refused,
                     (unsigned long long)raft_leader_commit(rf));
    /* Exactly-once: the session table, retries it answered, and how pending
     * writes failed (NOTLEADER: certainly not applied; TRYAGAIN: unknown). */
    const sessions *t = &n->sessions;
    r |= append_line(out,
                     "raft_sessions:%zu\r\nraft_max_sessions:%zu\r\nraft_sessions_opened:%llu\r\n"
                     "raft_sessions_expired:%llu\r\nraft_session_retries_answered:%llu\r\n"
                     "raft_session_stale:%llu\r\nraft_session_unknown:%llu\r\n",
                     sessions_count(t), t->max, (unsigned long long)t->stats.opened,
                     (unsigned long long)t->stats.expired, (unsigned long long)t->stats.duplicates,
                     (unsigned long long)t->stats.stale, (unsigned long long)t->stats.unknown);
    r |= append_line(out,
                     "raft_writes_timed_out:%llu\r\nraft_writes_leadership_lost:%llu\r\nraft_writes_displaced:%llu\r\n",
                     (unsigned long long)n->stats.writes_timed_out, (unsigned long long)n->stats.writes_leadership_lost,
                     (unsigned long long)n->stats.writes_displaced);
    /* Snapshots (snapshot.h): the newest durable one, the log's first index
     * (core and WAL), and the writer's record. */
    const snapshotter *sn = &n->snap;
    r |= append_line(out,
                     "raft_snapshot_index:%llu\r\nraft_snapshot_term:%llu\r\nraft_snapshot_bytes:%llu\r\n"
                     "raft_snapshot_duration_ms:%llu\r\nraft_snapshot_in_progress:%d\r\n",
                     (unsigned long long)sn->last_index, (unsigned long long)sn->last_term,
                     (unsigned long long)sn->last_bytes, (unsigned long long)sn->last_ms, sn->child_pid > 0);
    r |= append_line(out,
                     "raft_snapshots_taken:%llu\r\nraft_snapshots_failed:%llu\r\nraft_snapshot_loaded_ms:%llu\r\n"
                     "raft_log_first_index:%llu\r\nwal_first_index:%llu\r\nraft_log_bytes_since_snapshot:%llu\r\n",
                     (unsigned long long)sn->taken, (unsigned long long)sn->failed,
                     (unsigned long long)sn->loaded_ms, (unsigned long long)raft_first_index(rf),
                     (unsigned long long)srv->wal.segs[0].first, (unsigned long long)sn->log_bytes_since);
    r |= append_line(out, "raft_snapshots_sent:%llu\r\nraft_snapshots_received:%llu\r\nlatest_fork_usec:%llu\r\n",
                     (unsigned long long)sn->sent_ok, (unsigned long long)sn->received_ok,
                     (unsigned long long)sn->fork_usec);
    r |= append_line(out, "raft_snapshot_writing_ms_total:%llu\r\n", (unsigned long long)snapshot_writing_ms(n));
    /* Transfers under way, so that a test (or an operator) can act while
     * one is in flight instead of guessing how long it takes: on a leader,
     * how many it is sending and their bytes sent; on a follower, whether a
     * received file is open and how much of it has arrived. */
    unsigned sending = 0;
    uint64_t sending_bytes = 0;
    for (unsigned i = 0; i < RAFT_MAX_NODES; i++)
        if (sn->send[i].fd >= 0) {
            sending++;
            sending_bytes += sn->send[i].sent;
        }
    r |= append_line(out,
                     "raft_snapshot_sending:%u\r\nraft_snapshot_sending_bytes:%llu\r\n"
                     "raft_snapshot_receiving:%d\r\nraft_snapshot_receiving_bytes:%llu\r\n",
                     sending, (unsigned long long)sending_bytes, sn->recv.fd >= 0,
                     (unsigned long long)(sn->recv.fd >= 0 ? sn->recv.received : 0));
    uint64_t now = uv_now(srv->loop);
    for (unsigned i = 0; i < n->nmembers; i++) {
        const node_addr *a = &n->members[i];
        if (a->id == n->self || a->id == 0) continue;
        raft_index match = 0;
        unsigned idle = 0;
        int known = raft_peer_progress(rf, a->id, &match, &idle);
        long long heard = n->last_heard_ms[i] ? (long long)(now - n->last_heard_ms[i]) : -1;
        r |= append_line(out, "raft_peer%u:addr=%s:%d,link=%s,match_index=%lld,last_contact_ms=%lld,heard_ms_ago=%lld\r\n",
                         a->id, a->host, a->client_port, n->out[i] && n->out[i]->up ? "up" : "down",
                         known ? (long long)match : -1LL,
                         known ? (long long)((uint64_t)idle * n->heartbeat_ms) : -1LL, heard);
    }
    return r;
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
    r |= append_line(out, "records_replayed_at_start:%llu\r\nreplay_ms:%llu\r\n",
             (unsigned long long)srv->replay.records, (unsigned long long)(srv->replay.seconds * 1000.0));
    r |= render_raft(srv, out);
    return r ? -1 : 0;
}
