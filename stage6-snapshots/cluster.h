/* cluster.h - the server's side of membership change (Raft thesis chapter
 * 4, one server at a time; the core is raft/membership.c): the CLUSTER
 * command, the member address table learnt through the log, and the
 * automatic promotion of caught-up learners.
 *
 * The core knows ids only. Addresses travel as NORMAL entries (Command op
 * MEMBER: key = the id in decimal, value = HOST:CLIENTPORT:PEERPORT) that
 * every node applies into its table (node.h members[]); CLUSTER ADD
 * proposes that entry and the learner's CONFIG entry together. A member's
 * address is removed (and its links closed) when a CONFIG entry that drops
 * it applies. The table is kept in snapshots (snapshot_file.h snap_meta) and
 * rebuilt at restart from --cluster, the snapshot, and the MEMBER entries in
 * the log. Slots of node.h's arrays stay put: a removed member's slot is
 * emptied (id 0) and reused by the next one added. */
#ifndef STAGE_CLUSTER_H
#define STAGE_CLUSTER_H

#include <stddef.h>

#include "buf.h"
#include "kv.pb-c.h"
#include "slice.h"

typedef struct node node;
typedef struct conn conn;
struct raft_entry;
struct raft_membership;
struct snap_meta;


/* CLUSTER ADD id=HOST:CLIENTPORT:PEERPORT | REMOVE id | NODES. */
void cluster_command(node *n, conn *c, const kv_slice *argv, size_t argc);

/* Applying committed entries: a MEMBER command, and a CONFIG entry (its
 * reply, for the CLUSTER client waiting on it, goes into reply). */
void cluster_apply_member(node *n, const Kv__Command *cmd);
void cluster_apply_config(node *n, const struct raft_entry *e, kv_buf *reply);

/* After the core is restored: the applied configuration, the snapshot's
 * addresses, then every MEMBER entry in the log (committed or not: an
 * address alone changes nothing but whom this node can talk to). */
void cluster_restore(node *n, const struct snap_meta *meta, const struct raft_entry *log, size_t nlog);
/* Ready step 2a installed a snapshot: its configuration and addresses. */
void cluster_installed(node *n, const struct raft_membership *conf, const struct snap_meta *meta);

/* The tick, on the leader: promote a learner the core says is caught up. */
void cluster_tick(node *n);

#endif
