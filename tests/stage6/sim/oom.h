/* oom.h - forced into the core's sources (-include) for the raft_sim_oom
 * build: every allocation the core makes may fail, at a seeded rate, so the
 * simulation exercises the core's out-of-memory paths. */
#ifndef KV_SIM_OOM_H
#define KV_SIM_OOM_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *oom_malloc(size_t n);
void *oom_calloc(size_t n, size_t size);
void *oom_realloc(void *p, size_t n);
void oom_seed(uint64_t seed, unsigned per_million);
uint64_t oom_failures(void);

#define malloc(n) oom_malloc(n)
#define calloc(n, size) oom_calloc(n, size)
#define realloc(p, n) oom_realloc(p, n)
#endif
