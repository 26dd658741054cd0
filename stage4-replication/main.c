/* main.c - stage 4 entry point: parse flags, recover, run the server, exit cleanly. */
#include <stdio.h>
#include <stdlib.h>

#include "flags.h"
#include "log.h"
#include "server.h"

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const fsync_policies[] = {"always", "everysec", "no", NULL};

int main(int argc, char **argv) {
    server_config cfg = {
        .bind = "127.0.0.1",
        .port = 7004,
        .max_clients = 10000,
        .max_request_bytes = 16 * 1024 * 1024,
        .log_level = "info",
        .busy_poll_us = 100,
        .data_dir = "./data/stage4",
        .fsync = "always",
        .wal_segment_bytes = 64 * 1024 * 1024,
        .compact_min_bytes = 64 * 1024 * 1024,
        .idle_timeout = 0,
        .max_output_bytes = 64 * 1024 * 1024,
        .peer_port = 17004,
        .min_followers_max_lag = 10,
        .follower_timeout = 60,
    };
    const flag_spec specs[] = {
        {"port", FLAG_INT, &cfg.port, "TCP port to listen on (default 7004)", 1, 65535, NULL, "PORT"},
        {"bind", FLAG_STRING, &cfg.bind, "address to listen on (default 127.0.0.1)", 0, 0, NULL, "ADDR"},
        {"max-clients", FLAG_INT, &cfg.max_clients, "refuse clients beyond this many (default 10000)", 1, 1000000,
         NULL, "N"},
        {"max-request-bytes", FLAG_SIZE, &cfg.max_request_bytes,
         "largest request accepted, e.g. 512k, 16m (default 16m)", 64, 1LL << 30, NULL, "BYTES"},
        {"busy-poll-us", FLAG_INT, &cfg.busy_poll_us,
         "after I/O, poll without sleeping for this long before blocking; 0 = off (default 100; a follower never does)",
         0, 10000, NULL,
         "MICROS"},
        {"log-level", FLAG_CHOICE, &cfg.log_level, "error, warn, info or debug (default info)", 0, 0, log_levels,
         "LEVEL"},
        {"data-dir", FLAG_STRING, &cfg.data_dir, "where the write-ahead log lives (default ./data/stage4)", 0, 0, NULL,
         "DIR"},
        {"fsync", FLAG_CHOICE, &cfg.fsync,
         "always: reply after the write is on disk; everysec: fsync once a second; no: leave it to the OS "
         "(default always)",
         0, 0, fsync_policies, "POLICY"},
        {"wal-segment-bytes", FLAG_SIZE, &cfg.wal_segment_bytes, "start a new log segment past this size (default 64m)",
         4096, 1LL << 40, NULL, "BYTES"},
        {"compact-min-bytes", FLAG_SIZE, &cfg.compact_min_bytes,
         "compact when the log is past this size and twice the live data (default 64m)", 0, 1LL << 50, NULL,
         "BYTES"},
        {"timeout", FLAG_INT, &cfg.idle_timeout,
         "close a client after this many seconds with no bytes read or written; 0 never (default 0)", 0, 86400 * 365,
         NULL, "SECONDS"},
        {"max-output-bytes", FLAG_SIZE, &cfg.max_output_bytes,
         "close a client whose unsent replies pass this size, e.g. one that never reads (default 64m)", 1024,
         1LL << 40, NULL, "BYTES"},
        {"peer-port", FLAG_INT, &cfg.peer_port, "port for the peer protocol: followers connect here; 0: none (default 17004)", 0,
         65535, NULL, "PORT"},
        {"replicaof", FLAG_STRING, &cfg.replicaof,
         "start as a follower of the leader whose peer port is HOST:PEERPORT (default: start as a leader)", 0, 0, NULL,
         "HOST:PEERPORT"},
        {"cluster-secret-file", FLAG_STRING, &cfg.cluster_secret_file,
         "peers must prove they hold the secret in this file (mode 600, at least 16 bytes)", 0, 0, NULL, "FILE"},
        {"requirepass-file", FLAG_STRING, &cfg.requirepass_file,
         "clients must send AUTH with the password in this file (mode 600)", 0, 0, NULL, "FILE"},
        {"min-followers-to-write", FLAG_INT, &cfg.min_followers_to_write,
         "refuse writes (-NOREPLICAS) unless this many followers are connected and fresh (default 0: never)", 0,
         1000, NULL, "N"},
        {"min-followers-max-lag", FLAG_INT, &cfg.min_followers_max_lag,
         "a follower is fresh if it acknowledged within this many seconds (default 10)", 1, 86400, NULL, "SECONDS"},
        {"follower-timeout", FLAG_INT, &cfg.follower_timeout,
         "drop a follower that sent nothing for this many seconds; 0 never (default 60)", 0, 86400, NULL, "SECONDS"},
    };
    const flag_program prog = {
        .name = "stage4-replication",
        .summary = "Stage 4 of the KV workbook: leader-follower replication of the write-ahead log.",
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
