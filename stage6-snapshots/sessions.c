/* sessions.c - the session table (see sessions.h): a sorted array. Lookups
 * are a binary search by id; an open appends (ids only grow); an eviction
 * scans for the smallest last_used, which happens only when a session
 * opens into a full table. */
#include "sessions.h"

#include <stdlib.h>
#include <string.h>

void sessions_init(sessions *t, size_t max) {
    memset(t, 0, sizeof *t);
    t->max = max ? max : 1;
}

void sessions_free(sessions *t) {
    for (size_t i = 0; i < t->n; i++) free(t->v[i].reply);
    free(t->v);
    memset(t, 0, sizeof *t);
}

static void evict_lru(sessions *t) {
    size_t lru = 0;
    /* last_used values are distinct: one entry names at most one session. */
    for (size_t i = 1; i < t->n; i++)
        if (t->v[i].last_used < t->v[lru].last_used) lru = i;
    free(t->v[lru].reply);
    memmove(&t->v[lru], &t->v[lru + 1], (t->n - lru - 1) * sizeof *t->v);
    t->n--;
    t->stats.expired++;
}

int sessions_open(sessions *t, uint64_t id, size_t max) {
    if (max == 0) max = t->max;
    /* Grow first: a failed allocation must leave the table as it was. */
    if (t->n < max && t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        if (cap > max) cap = max;
        session *v = realloc(t->v, cap * sizeof *v);
        if (!v) return -1;
        t->v = v;
        t->cap = cap;
    }
    t->max = max;
    while (t->n >= t->max) evict_lru(t); /* more than one if the limit shrank */
    session *s = &t->v[t->n++];
    memset(s, 0, sizeof *s);
    s->id = id;
    s->last_used = id;
    t->stats.opened++;
    return 0;
}

session *sessions_find(sessions *t, uint64_t id) {
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->v[mid].id == id) return &t->v[mid];
        if (t->v[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int sessions_record(session *s, uint64_t seq, uint64_t index, const char *reply, size_t len) {
    char *copy = malloc(len ? len : 1);
    if (!copy) return -1;
    memcpy(copy, reply, len);
    free(s->reply);
    s->reply = copy;
    s->reply_len = len;
    s->last_seq = seq;
    s->last_used = index;
    return 0;
}

size_t sessions_count(const sessions *t) { return t->n; }
const session *sessions_at(const sessions *t, size_t i) { return i < t->n ? &t->v[i] : NULL; }
