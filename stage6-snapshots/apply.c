/* apply.c - a Command's effect on the store (see apply.h). */
#include "apply.h"

long long apply_command(kv_store *store, const Kv__Command *cmd) {
    switch (cmd->op) {
    case KV__COMMAND__OP__SET:
        if (kv_store_set(store, cmd->key.data, cmd->key.len, cmd->value.data, cmd->value.len) != 0) return -1;
        return 1;
    case KV__COMMAND__OP__DEL: {
        long long n = 0;
        for (size_t i = 0; i < cmd->n_keys; i++) n += kv_store_del(store, cmd->keys[i].data, cmd->keys[i].len);
        return n;
    }
    default:
        return 0; /* NOOP, or an op from a newer version: nothing to do */
    }
}
