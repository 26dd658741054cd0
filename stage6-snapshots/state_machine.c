/* state_machine.c - a committed entry's effect and reply (see
 * state_machine.h). A session-tagged write is checked against the session
 * table first: a retry of the session's last seq gets the stored reply and
 * changes nothing; only a new seq reaches the store. */
#include "state_machine.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "resp_reply.h"

int sm_parse_ll(const char *p, size_t len, long long *out) {
    if (len == 0 || len > 20) return 0;
    size_t i = 0;
    int neg = p[0] == '-';
    if (neg) i = 1;
    if (i == len) return 0;
    if (p[i] == '0') {
        if (len == 1) {
            *out = 0;
            return 1;
        }
        return 0; /* "007" and "-0" are not integers to Redis */
    }
    unsigned long long v = 0;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (ULLONG_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1) return 0;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX) return 0;
        *out = (long long)v;
    }
    return 1;
}

static int do_incr(kv_store *store, const Kv__Command *cmd, kv_buf *reply) {
    const char *old;
    size_t olen;
    long long v = 0;
    if (kv_store_get(store, cmd->key.data, cmd->key.len, &old, &olen) && !sm_parse_ll(old, olen, &v))
        return reply_error(reply, "ERR value is not an integer or out of range");
    if (v == LLONG_MAX) return reply_error(reply, "ERR increment or decrement would overflow");
    v++;
    char text[24];
    int n = snprintf(text, sizeof text, "%lld", v);
    if (kv_store_set(store, cmd->key.data, cmd->key.len, text, (size_t)n) != 0) return -1;
    return reply_int(reply, v);
}

static int do_append(kv_store *store, const Kv__Command *cmd, kv_buf *reply) {
    const char *old = NULL;
    size_t olen = 0;
    kv_store_get(store, cmd->key.data, cmd->key.len, &old, &olen);
    if ((unsigned long long)olen + cmd->value.len > SM_MAX_STRING)
        return reply_error(reply, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    size_t n = olen + cmd->value.len;
    char *joined = malloc(n ? n : 1);
    if (!joined) return -1;
    if (olen) memcpy(joined, old, olen);
    if (cmd->value.len) memcpy(joined + olen, cmd->value.data, cmd->value.len);
    int r = kv_store_set(store, cmd->key.data, cmd->key.len, joined, n);
    free(joined);
    if (r != 0) return -1;
    return reply_int(reply, (long long)n);
}

/* The command itself, without sessions. */
static int run(kv_store *store, const Kv__Command *cmd, kv_buf *reply) {
    switch (cmd->op) {
    case KV__COMMAND__OP__SET:
        if (apply_command(store, cmd) < 0) return -1;
        return reply_ok(reply);
    case KV__COMMAND__OP__DEL: {
        long long n = apply_command(store, cmd);
        return n < 0 ? -1 : reply_int(reply, n);
    }
    case KV__COMMAND__OP__INCR: return do_incr(store, cmd, reply);
    case KV__COMMAND__OP__APPEND: return do_append(store, cmd, reply);
    default:
        /* NOOP, or an op from a newer version: nothing to do, on every node alike. */
        return reply_error(reply, "ERR this server cannot apply operation %d", (int)cmd->op);
    }
}

int sm_apply(kv_store *store, sessions *table, uint64_t index, const Kv__Command *cmd, kv_buf *reply) {
    if (cmd->op == KV__COMMAND__OP__SESSION_OPEN) {
        if (sessions_open(table, index, (size_t)cmd->max_sessions) != 0) return -1;
        return reply_int(reply, (long long)index);
    }
    if (cmd->session == 0) return run(store, cmd, reply); /* untagged: at-least-once */
    session *s = sessions_find(table, cmd->session);
    if (!s) {
        table->stats.unknown++;
        return reply_error(reply,
                           "SESSIONEXPIRED session %llu is unknown or expired; open a new session "
                           "(whether an earlier try of this write applied is unknown)",
                           (unsigned long long)cmd->session);
    }
    s->last_used = index;
    if (cmd->seq == s->last_seq && cmd->seq != 0) {
        table->stats.duplicates++;
        return kv_buf_append(reply, s->reply, s->reply_len);
    }
    if (cmd->seq < s->last_seq || cmd->seq == 0) {
        table->stats.stale++;
        return reply_error(reply, "SESSIONSTALE seq %llu of session %llu is below its last applied seq %llu",
                           (unsigned long long)cmd->seq, (unsigned long long)cmd->session,
                           (unsigned long long)s->last_seq);
    }
    size_t start = kv_buf_readable(reply);
    if (run(store, cmd, reply) != 0) return -1;
    return sessions_record(s, cmd->seq, index, kv_buf_rptr(reply) + start, kv_buf_readable(reply) - start);
}
