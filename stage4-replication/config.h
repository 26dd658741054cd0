/* config.h - the server's settings, filled from flags in main.c. */
#ifndef STAGE_CONFIG_H
#define STAGE_CONFIG_H

#include <stddef.h>

typedef struct server_config {
    const char *bind;
    long long port;
    long long max_clients;
    size_t max_request_bytes;
    const char *log_level;
    long long busy_poll_us;
    const char *data_dir;
    const char *fsync;          /* "always", "everysec" or "no" */
    size_t wal_segment_bytes;   /* rotate segments at this size */
    size_t compact_min_bytes;   /* never compact a log smaller than this */
    long long idle_timeout;     /* seconds without progress before a client is closed; 0: never */
    size_t max_output_bytes;    /* close a client whose unsent replies exceed this */
} server_config;

#endif
