/* hard_state.h - Raft's (term, vote), kept in <data-dir>/RAFT_STATE.
 *
 * Raft's safety rests on a node never voting twice in a term and never
 * going back to an older term, across crashes: the pair is written to a
 * temp file, fsynced, renamed over the old one, and the directory fsynced,
 * before any message that depends on it leaves the node. A crash at any
 * point leaves either the old pair or the new one, never a mix. */
#ifndef STAGE_HARD_STATE_H
#define STAGE_HARD_STATE_H

#include <stdint.h>

/* Reads the pair; a missing file is a fresh node: (0, 0). Returns 0, or -1
 * after logging (unreadable or damaged file: refuse to start). */
int hard_state_load(const char *data_dir, uint64_t *term, uint32_t *vote);
/* Replaces the pair durably. Returns 0, or -1 after logging. */
int hard_state_save(const char *data_dir, uint64_t term, uint32_t vote);

#endif
