/* resp_parser.c - incremental RESP2 request parser (see resp_parser.h).
 *
 * A request is either a multibulk array ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
 * which is what client libraries send, or an inline line ("GET k\r\n"),
 * which is what a person types into nc or telnet. */
#include "resp_parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    ST_START = 0,
    ST_INLINE,
    ST_MB_HEADER,
    ST_BULK_HEADER,
    ST_BULK_DATA,
};

/* Longest "$<len>\r\n" line we accept: a length never needs more digits. */
#define BULK_HEADER_MAX 32

resp_limits resp_default_limits(void) {
    resp_limits l = {.max_inline = 64 * 1024, .max_args = 1024 * 1024, .max_request = 16 * 1024 * 1024};
    return l;
}

void resp_parser_init(resp_parser *p, resp_limits lim) {
    memset(p, 0, sizeof *p);
    p->lim = lim;
    p->bulklen = -1;
}

void resp_parser_free(resp_parser *p) {
    free(p->argv);
    p->argv = NULL;
    p->argv_cap = 0;
}

static resp_status fail(resp_parser *p, const char *fmt, const char *detail) {
    snprintf(p->error, sizeof p->error, fmt, detail);
    return RESP_EPROTO;
}

static int push_arg(resp_parser *p, size_t off, size_t len) {
    if (p->argc == p->argv_cap) {
        size_t cap = p->argv_cap ? p->argv_cap * 2 : 8;
        resp_arg *a = realloc(p->argv, cap * sizeof *a);
        if (!a) return -1;
        p->argv = a;
        p->argv_cap = cap;
    }
    p->argv[p->argc].off = off;
    p->argv[p->argc].len = len;
    p->argc++;
    return 0;
}

/* Strict decimal as Redis reads lengths: optional '-', at least one digit,
 * no leading zeros ("0" alone is fine, "-0" and "$04" are not), nothing
 * else, no overflow. One spelling per number means a length cannot be
 * padded to smuggle bytes past a check that reads it differently. */
static int parse_ll(const char *s, size_t n, long long *out) {
    size_t i = 0;
    int neg = 0;
    if (n > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == n || n - i > 18) return -1; /* 18 digits cannot overflow */
    if (s[i] == '0' && (n - i > 1 || neg)) return -1;
    long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

static int hex_val(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Split line [0, n) into arguments the way redis-cli and Redis do: spaces
 * separate, "double quotes" allow \n \r \t \b \a \\ \" \xHH escapes,
 * 'single quotes' allow only \'. Decoded bytes are written back in place. */
static resp_status split_inline(resp_parser *p, char *line, size_t n) {
    size_t i = 0;
    while (1) {
        while (i < n && is_space(line[i])) i++;
        if (i == n) return RESP_DONE;
        size_t start = i, w = i;
        char quote = 0;
        if (line[i] == '"' || line[i] == '\'') quote = line[i++];
        while (1) {
            if (i == n) {
                if (quote) return fail(p, "%s", "unbalanced quotes in inline request");
                break;
            }
            char c = line[i];
            if (!quote) {
                if (is_space(c)) break;
                line[w++] = c;
                i++;
            } else if (c == quote) {
                i++;
                /* A closing quote must end the argument, as in Redis. */
                if (i < n && !is_space(line[i])) return fail(p, "%s", "unbalanced quotes in inline request");
                break;
            } else if (c == '\\' && i + 1 < n) {
                char e = line[i + 1];
                if (quote == '\'') {
                    line[w++] = e == '\'' ? '\'' : '\\';
                    i += e == '\'' ? 2 : 1;
                    continue;
                }
                int h1, h2;
                if (e == 'x' && i + 3 < n && (h1 = hex_val(line[i + 2])) >= 0 && (h2 = hex_val(line[i + 3])) >= 0) {
                    line[w++] = (char)(h1 * 16 + h2);
                    i += 4;
                    continue;
                }
                switch (e) {
                case 'n': line[w++] = '\n'; break;
                case 'r': line[w++] = '\r'; break;
                case 't': line[w++] = '\t'; break;
                case 'b': line[w++] = '\b'; break;
                case 'a': line[w++] = '\a'; break;
                default: line[w++] = e; break;
                }
                i += 2;
            } else {
                line[w++] = c;
                i++;
            }
        }
        if (push_arg(p, start, w - start) != 0) return fail(p, "%s", "out of memory");
        if (p->argc > p->lim.max_args) return fail(p, "%s", "too many arguments in inline request");
    }
}

static resp_status parse_inline(resp_parser *p, char *buf, size_t avail, size_t *used) {
    char *nl = memchr(buf + p->pos, '\n', avail - p->pos);
    if (!nl) {
        if (avail > p->lim.max_inline) return fail(p, "%s", "too big inline request");
        p->pos = avail;
        return RESP_AGAIN;
    }
    size_t end = (size_t)(nl - buf);
    if (end > p->lim.max_inline) return fail(p, "%s", "too big inline request");
    size_t n = end;
    if (n > 0 && buf[n - 1] == '\r') n--;
    resp_status st = split_inline(p, buf, n);
    if (st != RESP_DONE) return st;
    *used = end + 1;
    return RESP_DONE;
}

/* Finds a "\r\n"-terminated header line starting at p->pos. Returns 1 with
 * [*s, *n) the text between the type byte and CR, 0 if incomplete, -1 if the
 * line ends in a bare LF. */
static int header_line(resp_parser *p, const char *buf, size_t avail, const char **s, size_t *n, size_t *next) {
    const char *nl = memchr(buf + p->pos, '\n', avail - p->pos);
    if (!nl) return 0;
    size_t end = (size_t)(nl - buf);
    if (end == p->pos || buf[end - 1] != '\r') return -1;
    *s = buf + p->pos + 1;
    *n = end - 1 - (p->pos + 1);
    *next = end + 1;
    return 1;
}

static resp_status parse_multibulk(resp_parser *p, char *buf, size_t avail, size_t *used) {
    /* LAB multibulk-parser: loop on p->state: "*<n>" line, then "$<len>" line + bytes + CRLF per argument */
    for (;;) {
        const char *s;
        size_t n, next;
        int r;
        switch (p->state) {
        case ST_MB_HEADER: {
            r = header_line(p, buf, avail, &s, &n, &next);
            if (r == 0) {
                if (avail - p->pos > p->lim.max_inline) return fail(p, "%s", "too big mbulk count string");
                return RESP_AGAIN;
            }
            long long count;
            if (r < 0 || parse_ll(s, n, &count) != 0 || (count > 0 && (unsigned long long)count > p->lim.max_args))
                return fail(p, "%s", "invalid multibulk length");
            p->pos = next;
            if (count <= 0) {
                *used = next;
                return RESP_DONE; /* "*0", "*-1" (any count <= 0) are empty requests, as in Redis */
            }
            p->nargs = count;
            p->state = ST_BULK_HEADER;
            break;
        }
        case ST_BULK_HEADER: {
            if (p->pos >= avail) return RESP_AGAIN;
            if (buf[p->pos] != '$') {
                char got[8];
                unsigned char c = (unsigned char)buf[p->pos];
                if (c >= 32 && c < 127)
                    snprintf(got, sizeof got, "%c", c);
                else
                    snprintf(got, sizeof got, "\\x%02x", c);
                return fail(p, "expected '$', got '%s'", got);
            }
            r = header_line(p, buf, avail, &s, &n, &next);
            if (r == 0) {
                if (avail - p->pos > BULK_HEADER_MAX) return fail(p, "%s", "invalid bulk length");
                return RESP_AGAIN;
            }
            long long len;
            if (r < 0 || n + 3 > BULK_HEADER_MAX || parse_ll(s, n, &len) != 0 || len < 0)
                return fail(p, "%s", "invalid bulk length");
            if ((unsigned long long)len > p->lim.max_request || next + (size_t)len + 2 > p->lim.max_request) {
                char lim[32];
                snprintf(lim, sizeof lim, "%zu", p->lim.max_request);
                return fail(p, "request larger than the limit of %s bytes", lim);
            }
            p->bulklen = len;
            p->pos = next;
            p->state = ST_BULK_DATA;
            break;
        }
        case ST_BULK_DATA: {
            size_t len = (size_t)p->bulklen;
            if (avail - p->pos < len + 2) return RESP_AGAIN;
            if (buf[p->pos + len] != '\r' || buf[p->pos + len + 1] != '\n')
                return fail(p, "%s", "expected CRLF after bulk data");
            if (push_arg(p, p->pos, len) != 0) return fail(p, "%s", "out of memory");
            p->pos += len + 2;
            p->bulklen = -1;
            if ((long long)p->argc == p->nargs) {
                *used = p->pos;
                return RESP_DONE;
            }
            p->state = ST_BULK_HEADER;
            break;
        }
        default:
            return fail(p, "%s", "parser in an impossible state");
        }
    }
    /* END LAB */
}

resp_status resp_parse(resp_parser *p, char *buf, size_t avail, size_t *used) {
    if (p->state == ST_START) {
        p->argc = 0;
        p->pos = 0;
        p->nargs = 0;
        p->bulklen = -1;
        if (avail == 0) return RESP_AGAIN;
        p->state = buf[0] == '*' ? ST_MB_HEADER : ST_INLINE;
    }
    resp_status st = p->state == ST_INLINE ? parse_inline(p, buf, avail, used) : parse_multibulk(p, buf, avail, used);
    if (st == RESP_DONE) p->state = ST_START;
    return st;
}
