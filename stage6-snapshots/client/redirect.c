/* redirect.c - following a follower's refusal. A stage 4 follower answers
 * a write with "-READONLY ... leader=HOST:PORT", a stage 5 node any command
 * it must not serve with "-NOTLEADER leader=HOST:PORT", and neither has run
 * it, so sending the same command to the leader cannot apply it twice: that
 * is what makes following the redirect safe for any one-shot call. (A stage
 * 5 write whose outcome is unknown gets -TRYAGAIN instead: cluster.c.) The walk
 * is bounded (kv_options.max_redirects): during a failover two nodes can
 * each name the other for a while, and a client must not bounce between
 * them forever. Pipelined replies are never followed here (see kvclient.h);
 * kv_reply_redirect parses them for the caller. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

static const char readonly_word[] = "READONLY";
static const char notleader_word[] = "NOTLEADER";
static const char leader_tag[] = " leader=";

/* The last occurrence of the tag: the server's own text comes first, the
 * address last, so a tag-like string earlier in the text cannot win. */
static const char *find_leader_tag(const char *text, size_t len) {
    const size_t tag = sizeof leader_tag - 1;
    if (len < tag) return NULL;
    for (size_t i = len - tag + 1; i-- > 0;)
        if (memcmp(text + i, leader_tag, tag) == 0) return text + i;
    return NULL;
}

/* "1".."65535", digits only. */
static int parse_port(const char *p, size_t n, int *port) {
    if (n == 0 || n > 5) return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i])) return -1;
        v = v * 10 + (p[i] - '0');
    }
    if (v < 1 || v > 65535) return -1;
    *port = (int)v;
    return 0;
}

int redirect_parse_address(const char *p, size_t n, char *host, size_t hostlen, int *port) {
    const char *h = p, *colon;
    size_t hlen;
    if (n > 0 && p[0] == '[') {
        const char *close = memchr(p, ']', n);
        if (!close || close + 1 == p + n || close[1] != ':') return -1;
        h = p + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = NULL;
        for (size_t i = n; i-- > 0;)
            if (p[i] == ':') {
                colon = p + i;
                break;
            }
        if (!colon) return -1;
        hlen = (size_t)(colon - p);
        if (memchr(p, ':', hlen)) return -1; /* an IPv6 address needs brackets */
    }
    if (hlen == 0 || hlen >= hostlen) return -1;
    for (size_t i = 0; i < hlen; i++)
        if (!isgraph((unsigned char)h[i]) || h[i] == '[' || h[i] == ']') return -1;
    if (parse_port(colon + 1, (size_t)(p + n - colon - 1), port) != 0) return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    return 0;
}

/* Whether text starts with the word, alone or followed by a space. */
static int starts_word(const char *text, size_t len, const char *word) {
    size_t n = strlen(word);
    return len >= n && memcmp(text, word, n) == 0 && (len == n || text[n] == ' ');
}

/* The leader= value's bounds, or NULL. */
static const char *leader_value(const char *text, size_t len, const char **end) {
    if (!starts_word(text, len, readonly_word) && !starts_word(text, len, notleader_word)) return NULL;
    const char *tag = find_leader_tag(text, len);
    if (!tag) return NULL; /* a plain READONLY (Redis's replicas): nothing to follow */
    const char *v = tag + sizeof leader_tag - 1;
    *end = text + len;
    const char *sp = memchr(v, ' ', (size_t)(*end - v));
    if (sp) *end = sp; /* words after the address are left for later versions */
    return v;
}

int redirect_leader_unknown(const char *text, size_t len) {
    const char *end, *v = leader_value(text, len, &end);
    return v && starts_word(text, len, notleader_word) && (size_t)(end - v) == 7 && memcmp(v, "unknown", 7) == 0;
}

int redirect_parse(const char *text, size_t len, char *host, size_t hostlen, int *port) {
    const char *end, *v = leader_value(text, len, &end);
    if (!v) return 0;
    if (redirect_leader_unknown(text, len)) return 0; /* nobody to follow yet: cluster.c waits */
    return redirect_parse_address(v, (size_t)(end - v), host, hostlen, port) == 0 ? 1 : -1;
}

int kv_reply_redirect(const kv_reply *r, char *host, size_t hostlen, int *port) {
    if (!r || r->type != KV_REPLY_ERROR || !r->str || !host || hostlen == 0 || !port) return 0;
    return redirect_parse(r->str, r->len, host, hostlen, port);
}

void redirect_format_address(char *out, size_t n, const char *host, int port) {
    snprintf(out, n, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

static void path_append(redirect_walk *w, const char *host, int port) {
    char addr[KV_ADDR_MAX];
    redirect_format_address(addr, sizeof addr, host, port);
    size_t used = strlen(w->path);
    snprintf(w->path + used, sizeof w->path - used, "%s%s", used ? " -> " : "", addr);
}

void redirect_begin(redirect_walk *w) {
    w->hops = 0;
    w->start_host = NULL;
    w->start_port = 0;
    w->path[0] = '\0';
}

void redirect_end(redirect_walk *w) {
    free(w->start_host);
    w->start_host = NULL;
}

/* A walk that failed: the client goes back to the address the call started
 * at (a follower still serves reads; a leader nobody can reach does not). */
static void walk_back(kv_client *c, redirect_walk *w) {
    if (!w->start_host) return;
    io_close(c);
    free(c->host);
    c->host = w->start_host;
    c->port = w->start_port;
    w->start_host = NULL;
}

int redirect_follow(kv_client *c, redirect_walk *w, const char *text, size_t len) {
    if (c->opts.max_redirects <= 0) return 0;
    char host[KV_HOST_MAX];
    int port = 0;
    int r = redirect_parse(text, len, host, sizeof host, &port);
    if (r == 0) return 0;
    /* The reply's bytes live in the input buffer, which closing clears. */
    char said[200];
    snprintf(said, sizeof said, "%.*s", (int)(len < 190 ? len : 190), text);
    if (w->hops == 0) path_append(w, c->host, c->port);
    if (r < 0) {
        char from[KV_ADDR_MAX];
        redirect_format_address(from, sizeof from, c->host, c->port);
        kv_err e = client_fail(c, KV_ERR_REDIRECT,
                               "malformed redirect from %s (expected leader=HOST:PORT, HOST at most %d bytes)%s%s: %s",
                               from, KV_HOST_MAX - 1, w->hops ? " after " : "", w->hops ? w->path : "", said);
        walk_back(c, w);
        return e;
    }
    if (w->hops == c->opts.max_redirects) {
        kv_err e = client_fail(c, KV_ERR_REDIRECT,
                               "too many redirects: gave up after %d (max_redirects), a loop or a chain too long: "
                               "%s, which answered: %s",
                               w->hops, w->path, said);
        walk_back(c, w);
        return e;
    }
    char *copy = strdup(host);
    if (!copy) {
        kv_err e = client_fail(c, KV_ERR_NOMEM, "out of memory following a redirect to %s", host);
        walk_back(c, w);
        return e;
    }
    io_close(c);
    if (w->start_host) {
        free(c->host);
    } else {
        w->start_host = c->host; /* kept to go back to if the walk fails */
        w->start_port = c->port;
    }
    c->host = copy;
    c->port = port;
    w->hops++;
    path_append(w, host, port);
    kv_err e = io_ensure_connected(c);
    if (e != KV_OK) {
        char why[sizeof c->err];
        snprintf(why, sizeof why, "%s", c->err);
        client_fail(c, e, "redirect %s failed: %s (the command was not run)", w->path, why);
        walk_back(c, w);
        return e;
    }
    c->redirects++;
    redirect_format_address(c->last_redirect, sizeof c->last_redirect, host, port);
    return 1;
}
