/* oom.c - the failing allocator behind oom.h: seeded, so a failing run
 * replays like any other. */
#include <stdint.h>
#include <stdlib.h>

#include "oom.h"

#undef malloc
#undef calloc
#undef realloc

static uint64_t state;
static unsigned rate;
static uint64_t failures;

void oom_seed(uint64_t seed, unsigned per_million) {
    state = seed * 0x9e3779b97f4a7c15ULL + 1;
    rate = per_million;
    failures = 0;
}

uint64_t oom_failures(void) { return failures; }

static int fail_now(void) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    if (z % 1000000 >= rate)
        return 0;
    failures++;
    return 1;
}

void *oom_malloc(size_t n) { return fail_now() ? NULL : malloc(n); }
void *oom_calloc(size_t n, size_t size) { return fail_now() ? NULL : calloc(n, size); }
void *oom_realloc(void *p, size_t n) { return fail_now() ? NULL : realloc(p, n); }
