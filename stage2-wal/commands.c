/* commands.c - every command the server understands (see commands.h).
 *
 * Each handler gets the arguments as borrowed slices (they point into the
 * connection's input buffer and are valid only during the call) and writes
 * one RESP reply. Handlers run on the loop thread, so they own the store.
 * Writes are logged first and applied second, through the same
 * apply_command that replay uses: the log is the truth, the store a cache. */
#include "commands.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "compaction.h"
#include "conn.h"
#include "durability.h"
#include "info.h"
#include "info_sections.h"
#include "resp_reply.h"
#include "server.h"

typedef void (*command_fn)(conn *c, const kv_slice *argv, size_t argc);

typedef struct command {
    const char *name; /* lower case, as shown in errors */
    int arity;        /* >0: exactly; <0: at least -arity (name included) */
    command_fn fn;
} command;

static void reply_oom(conn *c) { reply_error(&c->out, "OOM command not allowed: out of memory"); }

static void cmd_ping(conn *c, const kv_slice *argv, size_t argc) {
    if (argc > 2)
        reply_error(&c->out, "ERR wrong number of arguments for 'ping' command");
    else if (argc == 1)
        reply_simple(&c->out, "PONG");
    else
        reply_bulk(&c->out, argv[1].p, argv[1].len);
}

static void cmd_echo(conn *c, const kv_slice *argv, size_t argc) { reply_bulk(&c->out, argv[1].p, argv[1].len); }

static ProtobufCBinaryData bytes_of(kv_slice s) {
    ProtobufCBinaryData b = {s.len, (uint8_t *)s.p}; /* borrowed: packing only reads it */
    return b;
}

/* Logs cmd, applies it, and holds c's replies until the record is durable
 * if the fsync policy says so. Returns apply_command's result, or -1 with
 * an error reply already written. */
static long long log_and_apply(conn *c, const Kv__Command *cmd) {
    server *srv = c->srv;
    uint64_t idx = wal_append(&srv->wal, cmd);
    if (idx == 0) {
        reply_oom(c);
        return -1;
    }
    long long n = apply_command(&srv->store, cmd);
    if (n < 0) {
        reply_oom(c);
        return -1;
    }
    conn_hold_replies_until(c, idx);
    return n;
}

static void cmd_set(conn *c, const kv_slice *argv, size_t argc) {
    Kv__Command cmd = KV__COMMAND__INIT;
    cmd.op = KV__COMMAND__OP__SET;
    cmd.key = bytes_of(argv[1]);
    cmd.value = bytes_of(argv[2]);
    if (log_and_apply(c, &cmd) >= 0) reply_ok(&c->out);
}

static void cmd_get(conn *c, const kv_slice *argv, size_t argc) {
    const char *val;
    size_t vlen;
    if (kv_store_get(&c->srv->store, argv[1].p, argv[1].len, &val, &vlen))
        reply_bulk(&c->out, val, vlen);
    else
        reply_null(&c->out);
}

static void cmd_del(conn *c, const kv_slice *argv, size_t argc) {
    /* Log only the keys that exist: a DEL that changes nothing leaves no record. */
    ProtobufCBinaryData *keys = malloc((argc - 1) * sizeof *keys);
    if (!keys) {
        reply_oom(c);
        return;
    }
    size_t n = 0;
    for (size_t i = 1; i < argc; i++)
        if (kv_store_exists(&c->srv->store, argv[i].p, argv[i].len)) keys[n++] = bytes_of(argv[i]);
    long long deleted = 0;
    if (n > 0) {
        Kv__Command cmd = KV__COMMAND__INIT;
        cmd.op = KV__COMMAND__OP__DEL;
        cmd.n_keys = n;
        cmd.keys = keys;
        deleted = log_and_apply(c, &cmd);
    }
    free(keys);
    if (deleted >= 0) reply_int(&c->out, deleted);
}

static void cmd_compact(conn *c, const kv_slice *argv, size_t argc) {
    switch (compaction_request(c->srv)) {
    case COMPACTION_STARTED: reply_simple(&c->out, "Background compaction started"); break;
    case COMPACTION_ALREADY_RUNNING: reply_error(&c->out, "ERR a compaction is already in progress"); break;
    case COMPACTION_NOTHING_TO_DO: reply_simple(&c->out, "Nothing to compact"); break;
    }
}

static void cmd_exists(conn *c, const kv_slice *argv, size_t argc) {
    long long n = 0;
    for (size_t i = 1; i < argc; i++) n += kv_store_exists(&c->srv->store, argv[i].p, argv[i].len);
    reply_int(&c->out, n);
}

static void cmd_dbsize(conn *c, const kv_slice *argv, size_t argc) {
    reply_int(&c->out, (long long)kv_store_count(&c->srv->store));
}

static void cmd_info(conn *c, const kv_slice *argv, size_t argc) {
    kv_buf text;
    kv_buf_init(&text);
    kv_buf picked;
    kv_buf_init(&picked);
    /* INFO section ...: only those sections, as Redis answers. */
    int fail = info_render(c->srv, &text) != 0 ||
               (argc > 1 && kv_info_select(kv_buf_rptr(&text), kv_buf_readable(&text), argv + 1, argc - 1, &picked) != 0);
    if (!fail) {
        const kv_buf *reply = argc > 1 ? &picked : &text;
        reply_bulk(&c->out, kv_buf_rptr(reply), kv_buf_readable(reply));
    } else {
        reply_oom(c);
    }
    kv_buf_free(&text);
    kv_buf_free(&picked);
}

static void cmd_quit(conn *c, const kv_slice *argv, size_t argc) {
    reply_ok(&c->out);
    conn_close_after_flush(c);
}

/* redis-cli asks for COMMAND DOCS on start (for its hints) and accepts an empty array. */
static void cmd_command(conn *c, const kv_slice *argv, size_t argc) { reply_array(&c->out, 0); }

/* redis-benchmark reads "save" and "appendonly" with CONFIG GET before it
 * starts, and warns if they are missing; report what this stage really does. */
static void cmd_config(conn *c, const kv_slice *argv, size_t argc) {
    if (!kv_slice_eq_nocase(argv[1], "get") || argc != 3) {
        reply_error(&c->out, "ERR only CONFIG GET <parameter> is supported");
        return;
    }
    char maxclients[32];
    snprintf(maxclients, sizeof maxclients, "%lld", c->srv->cfg.max_clients);
    const char *params[][2] = {
        {"save", ""}, {"appendonly", "yes"}, {"appendfsync", c->srv->cfg.fsync}, {"maxclients", maxclients}};
    size_t n = sizeof params / sizeof params[0];
    int all = argv[2].len == 1 && argv[2].p[0] == '*';
    size_t matches = 0;
    for (size_t i = 0; i < n; i++) matches += all || kv_slice_eq_nocase(argv[2], params[i][0]);
    reply_array(&c->out, (long long)matches * 2);
    for (size_t i = 0; i < n; i++) {
        if (all || kv_slice_eq_nocase(argv[2], params[i][0])) {
            reply_bulk_str(&c->out, params[i][0]);
            reply_bulk_str(&c->out, params[i][1]);
        }
    }
}

static void cmd_select(conn *c, const kv_slice *argv, size_t argc) {
    if (argv[1].len == 1 && argv[1].p[0] == '0')
        reply_ok(&c->out);
    else
        reply_error(&c->out, "ERR DB index is out of range (this server has only database 0)");
}

static const command command_table[] = {
    {"get", 2, cmd_get},
    {"set", 3, cmd_set},
    {"del", -2, cmd_del},
    {"exists", -2, cmd_exists},
    {"dbsize", 1, cmd_dbsize},
    {"ping", -1, cmd_ping},
    {"echo", 2, cmd_echo},
    {"info", -1, cmd_info},
    {"quit", 1, cmd_quit},
    {"command", -1, cmd_command},
    {"config", -2, cmd_config},
    {"select", 2, cmd_select},
    {"compact", 1, cmd_compact},
};

static const command *lookup(kv_slice name) {
    for (size_t i = 0; i < sizeof command_table / sizeof command_table[0]; i++)
        if (kv_slice_eq_nocase(name, command_table[i].name)) return &command_table[i];
    return NULL;
}

/* Error messages quote what the client sent; keep them short and printable. */
static void printable(kv_slice s, char *out, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < s.len && n + 1 < cap; i++) out[n++] = isprint((unsigned char)s.p[i]) ? s.p[i] : '?';
    out[n] = '\0';
}

void commands_execute(conn *c, const kv_slice *argv, size_t argc) {
    c->srv->stats.commands_processed++;
    const command *cmd = lookup(argv[0]);
    if (!cmd) {
        char name[64];
        printable(argv[0], name, sizeof name);
        reply_error(&c->out, "ERR unknown command '%s'", name);
        return;
    }
    if ((cmd->arity > 0 && argc != (size_t)cmd->arity) || (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
        reply_error(&c->out, "ERR wrong number of arguments for '%s' command", cmd->name);
        return;
    }
    cmd->fn(c, argv, argc);
}
