/* fail_alloc.h - forced into stage5-raft/sessions.c and state_machine.c for
 * test_state_machine (-include): their malloc and realloc can be made to
 * fail, so the out-of-memory paths are exercised and checked to leave the
 * table and the store as they were. */
#ifndef KV_TEST_FAIL_ALLOC_H
#define KV_TEST_FAIL_ALLOC_H
#include <stdlib.h>

/* The next allocation through these fails when this reaches 0 (counting
 * down one per call); negative: never. */
extern int fail_alloc_countdown;
void *fail_alloc_malloc(size_t n);
void *fail_alloc_realloc(void *p, size_t n);

#define malloc(n) fail_alloc_malloc(n)
#define realloc(p, n) fail_alloc_realloc(p, n)
#endif
