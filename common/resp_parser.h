/* resp_parser.h - incremental RESP2 request parser (inline and multibulk).
 *
 * The parser never copies: the caller owns the bytes, keeps them in place
 * between calls, and passes the start of the current request each time with
 * however many bytes have arrived. The parser remembers how far it got, so a
 * request split at any byte costs no rescanning. Argument positions are
 * offsets from the request start, so the caller may move the bytes (compact
 * its buffer) between calls as long as the request start moves with them. */
#ifndef KV_RESP_PARSER_H
#define KV_RESP_PARSER_H

#include <stddef.h>

typedef struct resp_limits {
    size_t max_inline;  /* longest inline line or multibulk header line */
    size_t max_args;    /* most arguments in one request */
    size_t max_request; /* most bytes in one request (bulk payloads included) */
} resp_limits;

/* Defaults: 64 KiB lines, 1 Mi args, 16 MiB requests. */
resp_limits resp_default_limits(void);

typedef enum resp_status {
    RESP_AGAIN = 0,  /* need more bytes */
    RESP_DONE = 1,   /* a whole request; argv ready */
    RESP_EPROTO = 2, /* protocol violation; see parser->error */
} resp_status;

typedef struct resp_arg {
    size_t off; /* from the request start */
    size_t len;
} resp_arg;

typedef struct resp_parser {
    resp_limits lim;
    /* progress inside the current request */
    int state;
    size_t pos;        /* bytes of the request already scanned */
    long long nargs;   /* multibulk: announced argument count */
    long long bulklen; /* multibulk: length of the bulk being read, -1 between */
    /* result (valid after RESP_DONE until the next call) */
    resp_arg *argv; /* owned, grows as needed */
    size_t argc;
    size_t argv_cap;
    char error[128];   /* reason after RESP_EPROTO, e.g. "invalid bulk length" */
} resp_parser;

void resp_parser_init(resp_parser *p, resp_limits lim);
void resp_parser_free(resp_parser *p);

/* Parse from buf (the start of the current request), of which avail bytes
 * are present. On RESP_DONE *used is the request's length: the caller handles
 * argv, then passes buf + *used next time. An inline request that is only
 * whitespace, and a multibulk count of 0 or -1, give RESP_DONE with argc 0
 * (the caller just moves on). Quoted inline arguments ("a b", 'c', "\x00")
 * are unescaped in place inside buf, which is why buf is not const; the
 * decoded form is never longer than the quoted one. RESP_EPROTO also
 * happens when allocation fails (error says so). After RESP_EPROTO the
 * connection should be closed; the parser state is undefined. */
resp_status resp_parse(resp_parser *p, char *buf, size_t avail, size_t *used);

#endif
