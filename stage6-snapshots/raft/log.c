/* log.c - the in-memory Raft log: owned entries addressed by index, suffix
 * truncation, prefix compaction behind a snapshot, terms by index.
 * Durability is the host's business; the core only tracks how far the host
 * said it got (raft.stable). */
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

void log_init(struct raft_log *l) {
    l->e = NULL;
    l->n = l->cap = 0;
    l->first = 1;
    l->prev_term = 0;
}

void log_free(struct raft_log *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->e[i].data);
    free(l->e);
    log_init(l);
}

raft_index log_last_index(const struct raft_log *l) { return l->first + l->n - 1; }

raft_term log_last_term(const struct raft_log *l) {
    return l->n ? l->e[l->n - 1].term : l->prev_term;
}

bool log_term(const struct raft_log *l, raft_index i, raft_term *t) {
    if (i + 1 == l->first) {
        *t = l->prev_term;
        return true;
    }
    if (i < l->first || i > log_last_index(l))
        return false;
    *t = l->e[i - l->first].term;
    return true;
}

const struct raft_entry *log_get(const struct raft_log *l, raft_index i) {
    if (i < l->first || i > log_last_index(l))
        return NULL;
    return &l->e[i - l->first];
}

int log_append(struct raft_log *l, raft_term term, int type, const void *data, size_t len) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct raft_entry *e = realloc(l->e, cap * sizeof *e);
        if (!e)
            return RAFT_ERR_NOMEM;
        l->e = e;
        l->cap = cap;
    }
    uint8_t *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy)
            return RAFT_ERR_NOMEM;
        memcpy(copy, data, len);
    }
    l->e[l->n] = (struct raft_entry){
        .index = log_last_index(l) + 1, .term = term, .type = type, .data = copy, .len = len};
    l->n++;
    return RAFT_OK;
}

void log_truncate(struct raft_log *l, raft_index from) {
    if (from < l->first)
        from = l->first;
    while (l->n && log_last_index(l) >= from) {
        l->n--;
        free(l->e[l->n].data);
    }
}

raft_index log_term_start(const struct raft_log *l, raft_index i) {
    raft_term t;
    if (!log_term(l, i, &t) || i < l->first)
        return i;
    while (i > l->first && l->e[i - 1 - l->first].term == t)
        i--;
    return i;
}

raft_index log_last_of_term(const struct raft_log *l, raft_index from, raft_term t) {
    raft_index last = log_last_index(l);
    if (from > last)
        from = last;
    for (raft_index i = from; i >= l->first && i > 0; i--) {
        raft_term ti = l->e[i - l->first].term;
        if (ti == t)
            return i;
        if (ti < t)
            return 0; /* terms only grow along a log */
    }
    return 0;
}

void log_compact(struct raft_log *l, raft_index to) {
    if (to < l->first || to > log_last_index(l))
        return;
    size_t drop = (size_t)(to - l->first + 1);
    l->prev_term = l->e[drop - 1].term;
    for (size_t i = 0; i < drop; i++)
        free(l->e[i].data);
    memmove(l->e, l->e + drop, (l->n - drop) * sizeof *l->e);
    l->n -= drop;
    l->first = to + 1;
}

void log_reset(struct raft_log *l, raft_index index, raft_term term) {
    for (size_t i = 0; i < l->n; i++)
        free(l->e[i].data);
    l->n = 0;
    l->first = index + 1;
    l->prev_term = term;
}
