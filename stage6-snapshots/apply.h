/* apply.h - applies one Command to the store. The same function serves live
 * writes and WAL replay, so what is logged is exactly what was done. */
#ifndef STAGE_APPLY_H
#define STAGE_APPLY_H

#include "kv.pb-c.h"
#include "store.h"

/* Returns the number of keys changed (SET: 1; DEL: keys removed), or -1 when
 * memory runs out. */
long long apply_command(kv_store *store, const Kv__Command *cmd);

#endif
