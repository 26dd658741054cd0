/* commands.c - every command the server understands (see commands.h).
 *
 * Each handler gets the arguments as borrowed slices (they point into the
 * connection's input buffer and are valid only during the call) and writes
 * one RESP reply. Handlers run on the loop thread, so they own the store.
 * A write is proposed to Raft: the store changes, and the client gets its
 * reply, only when the entry commits and applies (node.h); the reply is
 * the one the state machine computes then (state_machine.h). A read (GET,
 * EXISTS, DBSIZE) runs once the leader has confirmed a read point.
 *
 * Exactly-once (sessions.h): SESSION OPEN registers a session through the
 * log and answers its id; SEQ id seq WRITE... runs one write tagged with
 * (id, seq) in a single command, so tag and write cannot be separated. */
#include "commands.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cluster.h"
#include "conn.h"
#include "digest.h"
#include "durability.h"
#include "follower_read.h"
#include "info.h"
#include "info_sections.h"
#include "node.h"
#include "resp_reply.h"
#include "server.h"
#include "snapshot.h"
#include "state_machine.h"

typedef void (*command_fn)(conn *c, const kv_slice *argv, size_t argc);

/* Command flags. */
#define CMD_WRITE 1  /* changes the store: proposed to Raft on the leader */
#define CMD_NOAUTH 2 /* allowed before AUTH */
#define CMD_READ 4   /* reads the store: linearizable, so the leader serves it (node.h) */

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

/* The session tag of the write being run by SEQ (commands run one at a
 * time on the loop thread; SEQ sets it around the inner handler). */
static struct {
    uint64_t session, seq;
} write_tag;

/* Proposes cmd, tagged if SEQ is running it; the reply comes when it
 * applies. */
static void propose(conn *c, Kv__Command *cmd) {
    cmd->session = write_tag.session;
    cmd->seq = write_tag.seq;
    size_t n = kv__command__get_packed_size(cmd);
    uint8_t *data = malloc(n ? n : 1);
    if (!data) {
        reply_oom(c);
        return;
    }
    kv__command__pack(cmd, data);
    node_propose(&c->srv->node, c, data, n); /* the core copies it */
    free(data);
}

static void cmd_set(conn *c, const kv_slice *argv, size_t argc) {
    Kv__Command cmd = KV__COMMAND__INIT;
    cmd.op = KV__COMMAND__OP__SET;
    cmd.key = bytes_of(argv[1]);
    cmd.value = bytes_of(argv[2]);
    propose(c, &cmd);
}

/* INCR and APPEND: whether the value is an integer, and the new value or
 * length, are known only when the entry applies. */
static void cmd_incr(conn *c, const kv_slice *argv, size_t argc) {
    Kv__Command cmd = KV__COMMAND__INIT;
    cmd.op = KV__COMMAND__OP__INCR;
    cmd.key = bytes_of(argv[1]);
    propose(c, &cmd);
}

static void cmd_append(conn *c, const kv_slice *argv, size_t argc) {
    Kv__Command cmd = KV__COMMAND__INIT;
    cmd.op = KV__COMMAND__OP__APPEND;
    cmd.key = bytes_of(argv[1]);
    cmd.value = bytes_of(argv[2]);
    propose(c, &cmd);
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
    /* Every key named is logged: whether it exists is known only when the
     * entry applies, which is also when the count is known. */
    ProtobufCBinaryData *keys = malloc((argc - 1) * sizeof *keys);
    if (!keys) {
        reply_oom(c);
        return;
    }
    for (size_t i = 1; i < argc; i++) keys[i - 1] = bytes_of(argv[i]);
    Kv__Command cmd = KV__COMMAND__INIT;
    cmd.op = KV__COMMAND__OP__DEL;
    cmd.n_keys = argc - 1;
    cmd.keys = keys;
    propose(c, &cmd);
    free(keys);
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

/* SNAPSHOT: writes a snapshot of this node's applied state now and replies
 * when it is durable (the client waits; others are served meanwhile). */
static void cmd_snapshot(conn *c, const kv_slice *argv, size_t argc) {
    node *n = &c->srv->node;
    uint64_t taken = n->snap.taken;
    int r = snapshot_start(n);
    if (r == 1) {
        reply_simple(&c->out, "Nothing new to snapshot");
    } else if (r < 0) {
        if (n->snap.child_pid > 0)
            reply_error(&c->out, "ERR a snapshot is already being written; try again when it ends");
        else
            reply_error(&c->out, "ERR snapshot failed: cannot fork (see the server log)");
    } else if (n->snap.child_pid == 0) { /* it finished already */
        if (n->snap.taken > taken)
            reply_ok(&c->out);
        else
            reply_error(&c->out, "ERR snapshot failed (see the server log)");
    } else if (snapshot_wait(n, c->id) != 0) {
        reply_oom(c);
    } else {
        conn_block(c);
    }
}

/* CLUSTER ADD/REMOVE/NODES: membership change (cluster.c). */
static void cmd_cluster(conn *c, const kv_slice *argv, size_t argc) { cluster_command(&c->srv->node, c, argv, argc); }

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

/* ROLE: ["leader"|"follower"|"candidate", term, leader id (0: unknown),
 * commit index, applied index]. */
static void cmd_role(conn *c, const kv_slice *argv, size_t argc) {
    const struct raft *r = c->srv->node.raft;
    int role = raft_role(r);
    reply_array(&c->out, 5);
    reply_bulk_str(&c->out, role == RAFT_LEADER ? "leader" : role == RAFT_FOLLOWER ? "follower" : "candidate");
    reply_int(&c->out, (long long)raft_current_term(r));
    reply_int(&c->out, (long long)raft_leader(r));
    reply_int(&c->out, (long long)raft_commit_index(r));
    reply_int(&c->out, (long long)raft_applied_index(r));
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

/* SESSION OPEN: proposed (the leader only); the reply, :ID, comes when the
 * entry applies, ID being its log index. SESSION LIST: this node's table
 * from its own applied state (any node, as DIGEST), one [id, last seq,
 * last used index] per session in id order: two nodes at the same applied
 * index answer the same. */
static void cmd_session(conn *c, const kv_slice *argv, size_t argc) {
    node *n = &c->srv->node;
    if (argc == 2 && kv_slice_eq_nocase(argv[1], "open")) {
        if (!node_is_leader(n)) {
            char err[160];
            node_notleader_text(n, err, sizeof err);
            reply_error(&c->out, "%s", err);
            return;
        }
        Kv__Command cmd = KV__COMMAND__INIT;
        cmd.op = KV__COMMAND__OP__SESSION_OPEN;
        cmd.max_sessions = (uint64_t)c->srv->cfg.max_sessions; /* every node evicts by this */
        write_tag.session = write_tag.seq = 0;
        propose(c, &cmd);
        return;
    }
    if (argc == 2 && kv_slice_eq_nocase(argv[1], "list")) {
        const sessions *t = &n->sessions;
        reply_array(&c->out, (long long)sessions_count(t));
        for (size_t i = 0; i < sessions_count(t); i++) {
            const session *s = sessions_at(t, i);
            reply_array(&c->out, 3);
            reply_int(&c->out, (long long)s->id);
            reply_int(&c->out, (long long)s->last_seq);
            reply_int(&c->out, (long long)s->last_used);
        }
        return;
    }
    reply_error(&c->out, "ERR unknown SESSION subcommand: use SESSION OPEN or SESSION LIST");
}

static const command *lookup(kv_slice name);

/* A positive decimal integer (ids and seqs start at 1). */
static int positive(kv_slice s, uint64_t *out) {
    long long v;
    if (!sm_parse_ll(s.p, s.len, &v) || v <= 0) return 0;
    *out = (uint64_t)v;
    return 1;
}

/* SEQ id seq WRITE ARG...: the write, tagged. Only writes can be tagged: a
 * read changes nothing, so it needs no protection against retries. */
static void cmd_seq(conn *c, const kv_slice *argv, size_t argc) {
    uint64_t id, seq;
    if (!positive(argv[1], &id) || !positive(argv[2], &seq)) {
        reply_error(&c->out, "ERR SEQ wants a session id and a sequence number, both positive integers");
        return;
    }
    const command *inner = lookup(argv[3]);
    if (!inner || !(inner->flags & CMD_WRITE) || inner->fn == cmd_seq) {
        reply_error(&c->out, "ERR SEQ tags a write: SET, DEL, INCR or APPEND");
        return;
    }
    size_t n = argc - 3;
    if ((inner->arity > 0 && n != (size_t)inner->arity) || (inner->arity < 0 && n < (size_t)-inner->arity)) {
        reply_error(&c->out, "ERR wrong number of arguments for '%s' command", inner->name);
        return;
    }
    write_tag.session = id;
    write_tag.seq = seq;
    inner->fn(c, argv + 3, n);
    write_tag.session = write_tag.seq = 0;
}

static const command command_table[] = {
    {"get", 2, cmd_get, CMD_READ},
    {"set", 3, cmd_set, CMD_WRITE},
    {"del", -2, cmd_del, CMD_WRITE},
    {"incr", 2, cmd_incr, CMD_WRITE},
    {"append", 3, cmd_append, CMD_WRITE},
    {"seq", -5, cmd_seq, CMD_WRITE},
    {"session", 2, cmd_session, 0},
    {"exists", -2, cmd_exists, CMD_READ},
    {"dbsize", 1, cmd_dbsize, CMD_READ},
    {"ping", -1, cmd_ping, 0},
    {"echo", 2, cmd_echo, 0},
    {"info", -1, cmd_info, 0},
    {"quit", 1, cmd_quit, CMD_NOAUTH},
    {"command", -1, cmd_command, 0},
    {"config", -2, cmd_config, 0},
    {"select", 2, cmd_select, 0},
    {"role", 1, cmd_role, 0},
    {"digest", 1, cmd_digest, 0},
    {"snapshot", 1, cmd_snapshot, 0},
    {"cluster", -2, cmd_cluster, 0},
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
    node *n = &c->srv->node;
    if (!node_serving(n, c)) c->srv->stats.commands_processed++; /* a read served later counts once */
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
    if ((cmd->flags & CMD_READ) && !node_is_leader(n)) {
        follower_read_verdict v = follower_read_check(n, uv_now(c->srv->loop));
        if (v == FOLLOWER_READ_OK) {
            n->stats.reads_follower++;
            cmd->fn(c, argv, argc);
            return;
        }
        if (v != FOLLOWER_READ_OFF) n->stats.reads_refused++;
    }
    if ((cmd->flags & (CMD_WRITE | CMD_READ)) && !node_is_leader(n)) {
        char err[160];
        node_notleader_text(n, err, sizeof err);
        reply_error(&c->out, "%s", err);
        return;
    }
    if ((cmd->flags & CMD_READ) && !node_serving(n, c)) {
        node_read_begin(n, c, argv, argc); /* runs cmd once the read point is applied */
        return;
    }
    if (cmd->flags & CMD_READ) n->stats.reads_leader++;
    cmd->fn(c, argv, argc);
}
