/* main.c - kvcli: an interactive shell for the KV server, and a one-shot
 * command runner for scripts.
 *
 *   kvcli                      REPL with line editing and history (libedit)
 *   kvcli-stage6 -p 7006 set k v      run one command, print the reply, exit 0/1
 *   echo "get k" | kvcli       read commands from a pipe, one per line
 *
 * Lines are split with the server's own inline parser (common/resp_parser),
 * so quoting rules ("a b", \n, \x00) are the same on both sides.
 *
 * Pointed at a follower, a write is refused and the library follows the
 * redirect to the leader; kvcli says so as redis-cli -c does
 * ("-> Redirected to 127.0.0.1:7004"), and from then on talks to the leader
 * (the prompt shows where). The line goes to stdout at a terminal, to stderr
 * otherwise, so a script's stdout holds only replies.
 *
 * Stage 5: -c/--cluster HOST:PORT,... names more nodes to try while the
 * leader is unknown or unreachable; NOTLEADER is followed like READONLY.
 * Writes (SET, DEL, INCR, APPEND) go out under an exactly-once session
 * (the library's exactly_once; --no-session turns it off), so a write
 * retried after TRYAGAIN, a timeout or a dropped connection applies once;
 * kvcli shows each retry ("-> Retried 127.0.0.1:7015 after TRYAGAIN ...
 * (session 12, seq 3)") in the redirect line's style. */
#include <editline/readline.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "flags.h"
#include "format.h"
#include "kvclient.h"
#include "resp_parser.h"

typedef struct cli {
    kv_client *client;
    const char *host;
    long long port;
    int tty;
    resp_parser parser;
    kv_buf line; /* the line being split, with room for the parser */
} cli;

/* The original plan's command names, kept as aliases. */
static const char *const aliases[][2] = {{"put", "SET"}, {"delete", "DEL"}, {"stats", "INFO"}};

/* Where the client talks to now: "host:port" (brackets for IPv6, as the
 * library writes kv_last_redirect). */
static void current_address(const cli *ui, char *out, size_t n) {
    const char *host = kv_client_host(ui->client);
    snprintf(out, n, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, kv_client_port(ui->client));
}

/* After a call that moved the client to a leader. A walk that failed left
 * the client where it was, and its error names every hop, so it prints
 * nothing here. */
static void show_redirect(const cli *ui, unsigned long long before, const char *was) {
    unsigned long long hops = kv_redirects(ui->client) - before;
    char now[300];
    current_address(ui, now, sizeof now);
    if (hops == 0 || strcmp(now, was) == 0) return;
    FILE *out = ui->tty ? stdout : stderr;
    fprintf(out, "-> Redirected to %s", kv_last_redirect(ui->client));
    if (hops > 1) fprintf(out, " (after %llu hops)", hops);
    fputc('\n', out);
    fflush(out);
}

/* After a call that the library sent again (exactly-once retries). */
static void show_retries(const cli *ui, unsigned long long before) {
    unsigned long long n = kv_retries(ui->client) - before;
    if (n == 0) return;
    FILE *out = ui->tty ? stdout : stderr;
    fprintf(out, "-> Retried %s", kv_last_retry(ui->client));
    if (kv_session(ui->client)) fprintf(out, " (session %llu)", kv_session(ui->client));
    if (n > 1) fprintf(out, " (%llu retries)", n);
    fputc('\n', out);
    fflush(out);
}

/* Runs one command given as argv; prints the reply. Returns 0, or 1 when
 * the reply is an error or the call failed. */
static int run_command(cli *ui, int argc, const char **argv, size_t *lens) {
    const char *name = argv[0];
    size_t name_len = lens[0];
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        if (name_len == strlen(aliases[i][0]) && strncasecmp(name, aliases[i][0], name_len) == 0) {
            argv[0] = aliases[i][1];
            lens[0] = strlen(aliases[i][1]);
        }
    }
    kv_reply *r = NULL;
    unsigned long long before = kv_redirects(ui->client), retries = kv_retries(ui->client);
    char was[300];
    current_address(ui, was, sizeof was);
    kv_err e = kv_command(ui->client, argc, argv, lens, &r);
    show_redirect(ui, before, was);
    show_retries(ui, retries);
    if (e != KV_OK) {
        /* kv_last_error says what and where, e.g. "cannot connect to
         * 127.0.0.1:7003: Connection refused". */
        fprintf(stderr, "(error) %s\n", kv_last_error(ui->client));
        return 1;
    }
    int failed = r->type == KV_REPLY_ERROR;
    /* INFO's reply is a page of "field:value" lines: quoted, it would be one
     * long line of \r\n escapes. redis-cli prints it raw even at a terminal
     * (keyed on the command, so a GET of a value with a newline stays quoted);
     * so do we. argv[0] is the name after the aliases, so STATS too. */
    int raw_reply = lens[0] == 4 && strncasecmp(argv[0], "info", 4) == 0;
    if (failed && !ui->tty) {
        fprintf(stderr, "%s\n", r->str); /* scripts read errors from stderr */
    } else {
        format_reply(stdout, r, ui->tty && !raw_reply);
    }
    fflush(stdout);
    kv_reply_free(r);
    return failed;
}

/* Splits a typed line into arguments with quotes and escapes, then runs it.
 * Returns 0, 1 (command failed), 2 (bad quoting) or -1 (QUIT/EXIT). */
static int run_line(cli *ui, const char *text, size_t len) {
    ui->line.start = ui->line.len = 0;
    /* A leading space keeps the parser in inline mode even if the line
     * starts with '*'; the newline ends the request. */
    if (kv_buf_append(&ui->line, " ", 1) || kv_buf_append(&ui->line, text, len) || kv_buf_append(&ui->line, "\n", 1)) {
        fprintf(stderr, "(error) out of memory\n");
        return 1;
    }
    resp_parser_free(&ui->parser);
    resp_limits lim = resp_default_limits();
    lim.max_inline = lim.max_request;
    resp_parser_init(&ui->parser, lim);
    size_t used;
    resp_status st = resp_parse(&ui->parser, kv_buf_rptr(&ui->line), kv_buf_readable(&ui->line), &used);
    if (st != RESP_DONE) {
        fprintf(stderr, "(error) %s\n", st == RESP_EPROTO ? ui->parser.error : "incomplete line");
        return 2;
    }
    size_t argc = ui->parser.argc;
    if (argc == 0) return 0;
    const char **argv = malloc(argc * sizeof *argv);
    size_t *lens = malloc(argc * sizeof *lens);
    if (!argv || !lens) {
        free(argv);
        free(lens);
        fprintf(stderr, "(error) out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < argc; i++) {
        argv[i] = kv_buf_rptr(&ui->line) + ui->parser.argv[i].off;
        lens[i] = ui->parser.argv[i].len;
    }
    int rc;
    if (lens[0] == 4 && strncasecmp(argv[0], "exit", 4) == 0)
        rc = -1;
    else
        rc = run_command(ui, (int)argc, argv, lens);
    if (rc >= 0 && lens[0] == 4 && strncasecmp(argv[0], "quit", 4) == 0) rc = -1;
    free(argv);
    free(lens);
    return rc;
}

static void repl(cli *ui) {
    char history[4096] = "";
    const char *home = getenv("HOME");
    if (home) snprintf(history, sizeof history, "%s/.kvcli_history", home);
    using_history();
    stifle_history(1000);
    if (history[0]) read_history(history);
    char prompt[300];
    char *line;
    for (;;) {
        /* Rebuilt each time: after a redirect the client talks to the leader. */
        current_address(ui, prompt, sizeof prompt - 2);
        strcat(prompt, "> ");
        if ((line = readline(prompt)) == NULL) break;
        if (line[strspn(line, " \t")] != '\0') {
            add_history(line);
            /* Saved after every line, so history survives a killed terminal. */
            if (history[0]) write_history(history);
        }
        int rc = run_line(ui, line, strlen(line));
        free(line);
        if (rc < 0) break;
    }
}

/* Non-interactive stdin: one command per line; exit 1 if any failed. */
static int run_stdin(cli *ui) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int status = 0;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        int rc = run_line(ui, line, (size_t)n);
        if (rc < 0) break;
        if (rc > 0) status = 1;
    }
    free(line);
    return status;
}

/* redis-cli habit: -p PORT. Rewrites it to the long form the flag parser
 * knows, looking only at the flags before the command (so "kvcli set k -p"
 * keeps its value), and skipping the values of flags that take one. */
static void rewrite_short_port(int argc, char **argv) {
    static const char *const with_value[] = {"--host", "--port", "--timeout", "--redirects", "--cluster",
                                             "--retry-ms"};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-p") == 0 || strcmp(argv[i], "-c") == 0) {
            argv[i] = argv[i][1] == 'p' ? "--port" : "--cluster";
            i++; /* its value */
            continue;
        }
        if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0') return; /* the command starts here */
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            if (strcmp(argv[i], with_value[k]) == 0) i++;
    }
}

int main(int argc, char **argv) {
    cli ui = {.host = "127.0.0.1", .port = 7006};
    long long timeout_ms = 5000;
    long long redirects = 3;
    long long retry_ms = 10000;
    const char *cluster = NULL;
    int no_session = 0;
    rewrite_short_port(argc, argv);
    const flag_spec specs[] = {
        {"host", FLAG_STRING, &ui.host, "server address (default 127.0.0.1)", 0, 0, NULL, "HOST"},
        {"port", FLAG_INT, &ui.port, "server port, also -p (default 7006)", 1, 65535, NULL, "PORT"},
        {"timeout", FLAG_INT, &timeout_ms, "connect, read and write timeout in ms; 0 waits forever (default 5000)",
         0, 3600 * 1000, NULL, "MS"},
        {"redirects", FLAG_INT, &redirects,
         "follow a READONLY or NOTLEADER redirect for at most N hops; 0 shows the refusal instead (default 3)", 0,
         100, NULL, "N"},
        {"cluster", FLAG_STRING, &cluster,
         "more nodes to try, also -c: HOST:PORT,HOST:PORT (when the leader is unknown or unreachable)", 0, 0, NULL,
         "LIST"},
        {"retry-ms", FLAG_INT, &retry_ms,
         "the most one command spends waiting out an election and retrying (default 10000)", 0, 3600 * 1000, NULL,
         "MS"},
        {"no-session", FLAG_BOOL, &no_session,
         "send writes untagged (at-least-once: a retried write may apply twice) instead of under an exactly-once "
         "session",
         0, 0, NULL, NULL},
    };
    int npos = 0;
    char **pos = NULL;
    const flag_program prog = {
        .name = "kvcli-stage6",
        .summary = "Interactive client for the KV workbook server. With a command, runs it once and exits\n"
                   "0 (success) or 1 (error reply or connection failure). Aliases: PUT=SET DELETE=DEL STATS=INFO.\n"
                   "A write sent to a follower is refused with READONLY and sent again to the leader it names;\n"
                   "kvcli then prints \"-> Redirected to HOST:PORT\" (on stdout at a terminal, on stderr when\n"
                   "stdout is not one, so piped output holds only replies) and stays with the leader.\n"
                   "A stage 5 node's NOTLEADER is followed the same way. Writes (SET DEL INCR APPEND) are sent\n"
                   "under an exactly-once session and retried after TRYAGAIN, a timeout or a dropped connection\n"
                   "(\"-> Retried HOST:PORT after ...\"): a retried write applies once.",
        .version = KV_VERSION,
        .specs = specs,
        .nspecs = sizeof specs / sizeof specs[0],
        .npositional = &npos,
        .positional = &pos,
        .positional_help = "[COMMAND [ARG ...]]",
    };
    switch (flags_parse(&prog, argc, argv)) {
    case FLAGS_HELP:
    case FLAGS_VERSION: return 0;
    case FLAGS_ERROR: return 2;
    case FLAGS_OK: break;
    }
    kv_options opts;
    kv_options_default(&opts);
    opts.read_timeout_ms = opts.write_timeout_ms = (int)timeout_ms;
    if (timeout_ms > 0) opts.connect_timeout_ms = (int)timeout_ms;
    opts.max_redirects = (int)redirects;
    opts.retry_total_ms = (int)retry_ms;
    opts.exactly_once = !no_session;
    ui.client = kv_client_new(ui.host, (int)ui.port, &opts);
    if (!ui.client) {
        fprintf(stderr, "kvcli: out of memory\n");
        return 1;
    }
    if (cluster && kv_client_add_nodes(ui.client, cluster) != KV_OK) {
        fprintf(stderr, "kvcli: --cluster: %s\n", kv_last_error(ui.client));
        kv_client_free(ui.client);
        return 2;
    }
    kv_buf_init(&ui.line);
    resp_parser_init(&ui.parser, resp_default_limits());
    int status = 0;
    if (npos > 0) {
        /* One-shot: arguments arrive already split by the shell. */
        ui.tty = isatty(STDOUT_FILENO);
        const char **args = malloc((size_t)npos * sizeof *args);
        size_t *lens = malloc((size_t)npos * sizeof *lens);
        if (!args || !lens) {
            fprintf(stderr, "kvcli: out of memory\n");
            status = 1;
        } else {
            for (int i = 0; i < npos; i++) {
                args[i] = pos[i];
                lens[i] = strlen(pos[i]);
            }
            status = run_command(&ui, npos, args, lens);
        }
        free(args);
        free(lens);
    } else if (isatty(STDIN_FILENO)) {
        ui.tty = isatty(STDOUT_FILENO);
        kv_err e = kv_connect(ui.client);
        if (e != KV_OK) fprintf(stderr, "kvcli: %s (commands will retry)\n", kv_last_error(ui.client));
        repl(&ui);
    } else {
        /* Piped commands: decorated output only if a person reads it. */
        ui.tty = isatty(STDOUT_FILENO);
        status = run_stdin(&ui);
    }
    resp_parser_free(&ui.parser);
    kv_buf_free(&ui.line);
    kv_client_free(ui.client);
    return status;
}
