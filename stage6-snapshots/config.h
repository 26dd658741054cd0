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
    long long idle_timeout;     /* seconds without progress before a client is closed; 0: never */
    size_t max_output_bytes;    /* close a client whose unsent replies exceed this */
    const char *requirepass_file;    /* clients must AUTH with this password */
    const char *cluster_secret_file; /* peers prove they hold this secret to each other */
    long long id;                     /* this node's id in cluster */
    int join;                         /* started to join a running cluster: silent until added */
    const char *cluster;              /* "1=HOST:CLIENTPORT:PEERPORT,..."; built from --bind/--port when absent */
    long long election_timeout_ms;    /* base election timeout (randomized up to twice it) */
    long long heartbeat_ms;           /* the tick: a leader's heartbeat interval */
    long long write_timeout_ms;       /* -TRYAGAIN for a write not committed by then */
    long long follower_read_staleness_ms; /* a follower answers reads within this bound; 0: off */
    long long max_sessions;           /* exactly-once sessions kept; carried in SESSION OPEN entries */
    long long snapshot_entries;       /* snapshot after this many applied entries; 0: never by count */
    size_t snapshot_bytes;            /* snapshot after this many log bytes written; 0: never by size */
    size_t snapshot_rate;             /* bytes per second a snapshot writer may write; 0: unlimited */
} server_config;

#endif
