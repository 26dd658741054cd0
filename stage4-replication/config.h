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
    long long peer_port;        /* the peer protocol (replication) listens here */
    const char *replicaof;      /* HOST:PEERPORT of the leader; NULL: start as a leader */
    const char *cluster_secret_file; /* peers must prove they hold this secret */
    const char *requirepass_file;    /* clients must AUTH with this password */
    long long min_followers_to_write; /* refuse writes with fewer good followers */
    long long min_followers_max_lag;  /* seconds since a follower's last ack for it to count as good */
    long long follower_timeout;       /* drop a follower silent this many seconds; 0: never */
} server_config;

#endif
