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

#include <sodium.h>

#include "apply.h"
#include "compaction.h"
#include "conn.h"
#include "digest.h"
#include "durability.h"
#include "info.h"
#include "info_sections.h"
#include "leader.h"
#include "resp_reply.h"
#include "server.h"
#include "wait.h"

typedef void (*command_fn)(conn *c, const kv_slice *argv, size_t argc);

/* Command flags. */
#define CMD_WRITE 1  /* changes the store: only a leader runs it (replication.h) */
#define CMD_NOAUTH 2 /* allowed before AUTH */

typedef struct command {
    const char *name; /* lower case, as shown in errors */
    int arity;        /* >0: exactly; <0: at least -arity (name included) */
    command_fn fn;
    int flags;
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
    c->last_write_index = idx;
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

/* A non-negative decimal integer argument. Returns 1, or 0 if it is not one. */
static int parse_count(kv_slice s, long long *out) {
    if (s.len == 0 || s.len > 18) return 0;
    long long v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') return 0;
        v = v * 10 + (s.p[i] - '0');
    }
    *out = v;
    return 1;
}

/* WAIT numfollowers timeout-ms: how many followers hold this client's last write. */
static void cmd_wait(conn *c, const kv_slice *argv, size_t argc) {
    long long n, timeout;
    if (c->srv->repl.role != ROLE_LEADER) {
        reply_error(&c->out, "ERR WAIT cannot be used on a follower");
        return;
    }
    if (!parse_count(argv[1], &n) || !parse_count(argv[2], &timeout)) {
        reply_error(&c->out, "ERR numfollowers and timeout must be non-negative integers");
        return;
    }
    wait_begin(c, c->last_write_index, n, timeout);
}

/* ROLE, shaped like Redis's: a leader lists its followers, a follower names its leader. */
static void cmd_role(conn *c, const kv_slice *argv, size_t argc) {
    const repl *r = &c->srv->repl;
    uint64_t last = c->srv->wal.next_index - 1;
    if (r->role == ROLE_LEADER) {
        reply_array(&c->out, 3);
        reply_bulk_str(&c->out, "leader");
        reply_int(&c->out, (long long)last);
        int n = 0;
        for (const follower *f = r->followers; f; f = f->next) n += f->state >= FOLLOWER_COPYING;
        reply_array(&c->out, n);
        for (const follower *f = r->followers; f; f = f->next) {
            if (f->state < FOLLOWER_COPYING) continue;
            char host[64], port[16] = "0";
            snprintf(host, sizeof host, "%s", f->id);
            char *colon = strrchr(host, ':');
            if (colon) {
                snprintf(port, sizeof port, "%s", colon + 1);
                *colon = '\0';
            }
            char acked[32];
            snprintf(acked, sizeof acked, "%llu", (unsigned long long)f->acked);
            reply_array(&c->out, 3);
            reply_bulk_str(&c->out, host);
            reply_bulk_str(&c->out, port);
            reply_bulk_str(&c->out, acked);
        }
        return;
    }
    reply_array(&c->out, 5);
    reply_bulk_str(&c->out, "follower");
    reply_bulk_str(&c->out, r->leader_host);
    reply_int(&c->out, r->leader_peer_port);
    reply_bulk_str(&c->out, r->link && r->link->state == LINK_STREAMING ? "connected"
                            : r->link && r->link->state == LINK_COPYING ? "sync"
                            : r->link                                    ? "handshake"
                                                                         : "connect");
    reply_int(&c->out, (long long)last);
}

/* REPLICAOF NO ONE | REPLICAOF host peer-port */
static void cmd_replicaof(conn *c, const kv_slice *argv, size_t argc) {
    repl *r = &c->srv->repl;
    if (kv_slice_eq_nocase(argv[1], "no") && kv_slice_eq_nocase(argv[2], "one")) {
        if (repl_promote(r) != 0) {
            reply_error(&c->out, "ERR cannot start a new history (see the server log)");
            return;
        }
        reply_ok(&c->out);
        return;
    }
    long long port;
    char host[64];
    if (argv[1].len == 0 || argv[1].len >= sizeof host || !parse_count(argv[2], &port) || port < 1 || port > 65535) {
        reply_error(&c->out, "ERR usage: REPLICAOF host peer-port | REPLICAOF NO ONE");
        return;
    }
    memcpy(host, argv[1].p, argv[1].len);
    host[argv[1].len] = '\0';
    repl_follow(r, host, (int)port);
    reply_ok(&c->out);
}

/* DIGEST: a checksum of every key and value, the same on two nodes exactly
 * when they hold the same data (common/digest.h). */
static void cmd_digest(conn *c, const kv_slice *argv, size_t argc) {
    kv_digest d;
    kv_digest_store(&c->srv->store, &d);
    char text[KV_DIGEST_TEXT_MAX];
    size_t n = kv_digest_format(&d, text);
    reply_bulk(&c->out, text, n);
}

static void cmd_auth(conn *c, const kv_slice *argv, size_t argc) {
    const kv_secret *pw = &c->srv->requirepass;
    if (pw->len == 0) {
        reply_error(&c->out, "ERR AUTH <password> called without any password configured for the default user. "
                             "Are you sure your configuration is correct?");
        return;
    }
    const kv_slice *given = &argv[argc - 1]; /* AUTH password, or AUTH default password */
    if (argc == 3 && !kv_slice_eq_nocase(argv[1], "default")) given = NULL;
    if (!given || given->len != pw->len || sodium_memcmp(given->p, pw->bytes, pw->len) != 0) {
        c->authenticated = 0;
        reply_error(&c->out, "WRONGPASS invalid username-password pair or user is disabled.");
        return;
    }
    c->authenticated = 1;
    reply_ok(&c->out);
}

static const command command_table[] = {
    {"get", 2, cmd_get, 0},
    {"set", 3, cmd_set, CMD_WRITE},
    {"del", -2, cmd_del, CMD_WRITE},
    {"exists", -2, cmd_exists, 0},
    {"dbsize", 1, cmd_dbsize, 0},
    {"ping", -1, cmd_ping, 0},
    {"echo", 2, cmd_echo, 0},
    {"info", -1, cmd_info, 0},
    {"quit", 1, cmd_quit, CMD_NOAUTH},
    {"command", -1, cmd_command, 0},
    {"config", -2, cmd_config, 0},
    {"select", 2, cmd_select, 0},
    {"compact", 1, cmd_compact, 0},
    {"wait", 3, cmd_wait, 0},
    {"role", 1, cmd_role, 0},
    {"replicaof", 3, cmd_replicaof, 0},
    {"digest", 1, cmd_digest, 0},
    {"auth", -2, cmd_auth, CMD_NOAUTH},
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
    if (!c->authenticated && !(cmd->flags & CMD_NOAUTH)) {
        reply_error(&c->out, "NOAUTH Authentication required.");
        return;
    }
    if ((cmd->arity > 0 && argc != (size_t)cmd->arity) || (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
        reply_error(&c->out, "ERR wrong number of arguments for '%s' command", cmd->name);
        return;
    }
    if (cmd->flags & CMD_WRITE) {
        char err[160];
        if (repl_write_allowed(&c->srv->repl, err, sizeof err) != 0) {
            reply_error(&c->out, "%s", err);
            return;
        }
    }
    cmd->fn(c, argv, argc);
}
