/* main.c - stage 1 entry point: parse flags, run the server, exit cleanly. */
#include <stdio.h>
#include <stdlib.h>

#include "flags.h"
#include "log.h"
#include "server.h"

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

int main(int argc, char **argv) {
    server_config cfg = {
        .bind = "127.0.0.1",
        .port = 7001,
        .max_clients = 10000,
        .max_request_bytes = 16 * 1024 * 1024,
        .log_level = "info",
        .busy_poll_us = 100,
    };
    const flag_spec specs[] = {
        {"port", FLAG_INT, &cfg.port, "TCP port to listen on (default 7001)", 1, 65535, NULL, "PORT"},
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
    };
    const flag_program prog = {
        .name = "stage1-single-node",
        .summary = "Stage 1 of the KV workbook: an in-memory key-value server speaking RESP2 (redis-cli, nc).",
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
