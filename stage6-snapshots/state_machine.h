/* state_machine.h - what one committed entry does, on every node alike: its
 * effect on the store and on the session table, and the reply the proposing
 * client gets, computed here (when the entry applies) rather than when it
 * was proposed, so every node computes the same one. INCR and APPEND need
 * this: their reply depends on the value the entry finds. */
#ifndef STAGE_STATE_MACHINE_H
#define STAGE_STATE_MACHINE_H

#include <stdint.h>

#include "buf.h"
#include "kv.pb-c.h"
#include "sessions.h"
#include "store.h"

/* Redis's limit on a string's size (proto-max-bulk-len): an APPEND past it
 * is refused, as Redis refuses it. */
#define SM_MAX_STRING (512ull * 1024 * 1024)

/* Applies cmd, the entry at log index `index`, and appends its RESP reply
 * to reply. Returns 0, or -1 when memory runs out (the node cannot go on). */
int sm_apply(kv_store *store, sessions *table, uint64_t index, const Kv__Command *cmd, kv_buf *reply);

/* Redis's strict integer syntax (no spaces, no '+', no leading zeros, no
 * "-0", within 64 bits): 1 and *out, or 0. */
int sm_parse_ll(const char *p, size_t len, long long *out);

#endif
