/* main.c - stage 6 entry point: parse flags, recover, run the server, exit cleanly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flags.h"
#include "log.h"
#include "node.h"
#include "server.h"

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const fsync_policies[] = {"always", "everysec", "no", NULL};

int main(int argc, char **argv) {
    server_config cfg = {
        .bind = "127.0.0.1",
        .port = 7006,
        .max_clients = 10000,
        .max_request_bytes = 16 * 1024 * 1024,
        .log_level = "info",
        .busy_poll_us = 100,
        .data_dir = "./data/stage6",
        .fsync = "always",
        .wal_segment_bytes = 64 * 1024 * 1024,
        .idle_timeout = 0,
        .max_output_bytes = 64 * 1024 * 1024,
        .id = 1,
        .election_timeout_ms = 1000,
        .heartbeat_ms = 100,
        .write_timeout_ms = 5000,
        .max_sessions = 10000,
        .snapshot_entries = 100000,
        .snapshot_bytes = 64 * 1024 * 1024,
        .snapshot_rate = 16 * 1024 * 1024,
    };
    const flag_spec specs[] = {
        {"port", FLAG_INT, &cfg.port, "TCP port for clients without --cluster (default 7006); with --cluster the member's CLIENTPORT", 1, 65535, NULL, "PORT"},
        {"bind", FLAG_STRING, &cfg.bind, "address to listen on (default 127.0.0.1)", 0, 0, NULL, "ADDR"},
        {"max-clients", FLAG_INT, &cfg.max_clients, "refuse clients beyond this many (default 10000)", 1, 1000000,
         NULL, "N"},
        {"max-request-bytes", FLAG_SIZE, &cfg.max_request_bytes,
         "largest request accepted, e.g. 512k, 16m (default 16m)", 64, 1LL << 30, NULL, "BYTES"},
        {"busy-poll-us", FLAG_INT, &cfg.busy_poll_us,
         "after I/O, poll without sleeping for this long before blocking; 0 = off (default 100)", 0, 10000, NULL,
         "MICROS"},
        {"log-level", FLAG_CHOICE, &cfg.log_level, "error, warn, info or debug (default info)", 0, 0, log_levels,
         "LEVEL"},
        {"data-dir", FLAG_STRING, &cfg.data_dir,
         "where the log, the snapshots (snap/) and the Raft state live (default ./data/stage6)", 0, 0, NULL, "DIR"},
        {"fsync", FLAG_CHOICE, &cfg.fsync,
         "always: reply after the write is on disk; everysec: fsync once a second; no: leave it to the OS "
         "(default always)",
         0, 0, fsync_policies, "POLICY"},
        {"wal-segment-bytes", FLAG_SIZE, &cfg.wal_segment_bytes, "start a new log segment past this size (default 64m)",
         4096, 1LL << 40, NULL, "BYTES"},
        {"timeout", FLAG_INT, &cfg.idle_timeout,
         "close a client after this many seconds with no bytes read or written; 0 never (default 0)", 0, 86400 * 365,
         NULL, "SECONDS"},
        {"max-output-bytes", FLAG_SIZE, &cfg.max_output_bytes,
         "close a client whose unsent replies pass this size, e.g. one that never reads (default 64m)", 1024,
         1LL << 40, NULL, "BYTES"},
        {"id", FLAG_INT, &cfg.id, "this node's id in --cluster (default 1)", 1, RAFT_MAX_NODES * 1000, NULL, "N"},
        {"cluster", FLAG_STRING, &cfg.cluster,
         "every member, this node included: ID=HOST:CLIENTPORT:PEERPORT,... (default: a one-node cluster on "
         "--bind:--port)",
         0, 0, NULL, "SPEC"},
        {"join", FLAG_BOOL, &cfg.join,
         "this node is joining a running cluster (its --cluster names the members and itself): it neither votes "
         "nor campaigns until the leader adds it with CLUSTER ADD",
         0, 0, NULL, NULL},
        {"election-timeout-ms", FLAG_INT, &cfg.election_timeout_ms,
         "a follower that hears no leader for this long (randomized up to twice it) starts an election (default 1000)",
         2, 600000, NULL, "MS"},
        {"heartbeat-ms", FLAG_INT, &cfg.heartbeat_ms, "the leader's heartbeat interval, Raft's tick (default 100)", 1,
         60000, NULL, "MS"},
        {"write-timeout-ms", FLAG_INT, &cfg.write_timeout_ms,
         "answer -TRYAGAIN to a write or read not done by then, e.g. without a quorum (default 5000)", 1, 3600000,
         NULL, "MS"},
        {"follower-read-staleness-ms", FLAG_INT, &cfg.follower_read_staleness_ms,
         "a follower answers GET/EXISTS/DBSIZE itself if it heard from the leader within this many ms and has "
         "applied what the leader had committed; 0: every read goes to the leader, linearizable (default 0)",
         0, 3600000, NULL, "MS"},
        {"cluster-secret-file", FLAG_STRING, &cfg.cluster_secret_file,
         "every node proves it holds the secret in this file (mode 600, at least 16 bytes) before Raft messages "
         "cross; required when the peer address is not loopback",
         0, 0, NULL, "FILE"},
        {"max-sessions", FLAG_INT, &cfg.max_sessions,
         "exactly-once client sessions kept, the least recently used (by log position) evicted past it; a "
         "leader writes it into each SESSION OPEN entry, so every node evicts alike (default 10000)",
         1, 10000000, NULL, "N"},
        {"snapshot-entries", FLAG_INT, &cfg.snapshot_entries,
         "take a snapshot once this many entries have applied since the last one; 0: never by count (default "
         "100000)",
         0, 1LL << 40, NULL, "N"},
        {"snapshot-bytes", FLAG_SIZE, &cfg.snapshot_bytes,
         "take a snapshot once this many bytes of log were written since the last one began; 0: never by size "
         "(default 64m)",
         0, 1LL << 40, NULL, "BYTES"},
        {"snapshot-rate", FLAG_SIZE, &cfg.snapshot_rate,
         "bytes per second the snapshot writer may write, so that it leaves the CPU and disk to the clients' "
         "writes; 0: unlimited (default 16m)",
         0, 1LL << 40, NULL, "BYTES"},
        {"requirepass-file", FLAG_STRING, &cfg.requirepass_file,
         "clients must send AUTH with the password in this file (mode 600)", 0, 0, NULL, "FILE"},
    };
    const flag_program prog = {
        .name = "stage6-snapshots",
        .summary = "Stage 6 of the KV workbook: Raft with snapshots and log truncation.",
        .version = KV_VERSION,
        .specs = specs,
        .nspecs = sizeof specs / sizeof specs[0],
    };
    switch (flags_parse(&prog, argc, argv)) {
    case FLAGS_HELP:
    case FLAGS_VERSION: return 0;
    case FLAGS_ERROR: return 2;
    case FLAGS_OK: break;
    }
    kv_log_level level;
    kv_log_parse_level(cfg.log_level, &level); /* validated by FLAG_CHOICE */
    kv_log_set_level(level);
    if (cfg.election_timeout_ms < 2 * cfg.heartbeat_ms) {
        fprintf(stderr, "stage6-snapshots: --election-timeout-ms must be at least twice --heartbeat-ms\n");
        return 2;
    }
    if (cfg.cluster) {
        /* Clients connect to this node's member address. */
        node_addr members[RAFT_MAX_NODES];
        unsigned n;
        char err[200];
        if (node_parse_cluster(cfg.cluster, members, &n, err, sizeof err) != 0) {
            fprintf(stderr, "stage6-snapshots: --cluster: %s\n", err);
            return 2;
        }
        unsigned i = 0;
        while (i < n && members[i].id != (raft_id)cfg.id) i++;
        if (i == n) {
            fprintf(stderr, "stage6-snapshots: --id %lld is not in --cluster\n", cfg.id);
            return 2;
        }
        cfg.port = members[i].client_port;
    }

    server srv;
    if (server_init(&srv, &cfg) != 0) {
        server_free(&srv);
        return 1;
    }
    server_run(&srv);
    server_free(&srv);
    kv_log(KV_LOG_INFO, "shutdown complete");
    return 0;
}
