/* wait.h - WAIT numfollowers timeout (Redis semantics): the client blocks
 * until that many followers have acknowledged its last write, or the
 * timeout passes, and gets the count either way. This is how a client
 * turns asynchronous replication into "on N other disks" for the writes
 * that matter. The connection runs nothing else while it waits. */
#ifndef STAGE_WAIT_H
#define STAGE_WAIT_H

#include <stdint.h>

typedef struct server server;
typedef struct conn conn;

/* Blocks c until `needed` followers acknowledged index, or timeout_ms
 * passes (0: no timeout). Replies at once if that is already true. */
void wait_begin(conn *c, uint64_t index, long long needed, long long timeout_ms);
/* Acks arrived or a follower left: answer every satisfied waiter. */
void wait_check(server *srv);
/* Shutdown: stops the deadline timer. */
void wait_stop(server *srv);

#endif
