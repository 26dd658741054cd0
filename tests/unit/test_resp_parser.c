/* test_resp_parser.c - the RESP2 request parser: inline and multibulk
 * forms, quoting, every limit at and past its boundary, exact error texts,
 * and a pipelined buffer split at every byte position (as a server sees it
 * when requests arrive in arbitrary pieces). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "resp_parser.h"

/* Parses every request in data (all present at once); each request's
 * arguments are joined with '|' into out, requests separated by '\n'.
 * Returns the final status (RESP_AGAIN when everything was consumed). */
static resp_status parse_all(const char *data, size_t n, resp_limits lim, char *out, size_t cap, char *err) {
    char *buf = malloc(n ? n : 1);
    memcpy(buf, data, n);
    resp_parser p;
    resp_parser_init(&p, lim);
    size_t off = 0, w = 0;
    out[0] = '\0';
    resp_status st = RESP_AGAIN;
    while (off < n) {
        size_t used = 0;
        st = resp_parse(&p, buf + off, n - off, &used);
        if (st != RESP_DONE) break;
        for (size_t i = 0; i < p.argc; i++) {
            w += (size_t)snprintf(out + w, cap - w, "%s%.*s", i ? "|" : "", (int)p.argv[i].len, buf + off + p.argv[i].off);
        }
        w += (size_t)snprintf(out + w, cap - w, "\n");
        off += used;
        st = RESP_AGAIN;
    }
    if (err) strcpy(err, st == RESP_EPROTO ? p.error : "");
    resp_parser_free(&p);
    free(buf);
    return st;
}

static resp_limits small(void) {
    resp_limits l = {.max_inline = 32, .max_args = 4, .max_request = 64};
    return l;
}

static void expect_ok(const char *data, const char *want) {
    char out[4096], err[128];
    resp_status st = parse_all(data, strlen(data), resp_default_limits(), out, sizeof out, err);
    assert_int_equal(st, RESP_AGAIN);
    assert_string_equal(out, want);
}

static void expect_error(const char *data, size_t n, resp_limits lim, const char *want_err) {
    char out[4096], err[128];
    assert_int_equal(parse_all(data, n, lim, out, sizeof out, err), RESP_EPROTO);
    assert_string_equal(err, want_err);
}

static void test_inline_basic(void **state) {
    (void)state;
    expect_ok("SET a b\r\n", "SET|a|b\n");
    expect_ok("GET a\n", "GET|a\n");                  /* bare LF, as nc sends */
    expect_ok("  PING \t  \r\n", "PING\n");           /* surrounding whitespace */
    expect_ok("\r\n\nPING\r\n", "\n\nPING\n");         /* empty lines are empty requests */
}

static void test_inline_quotes(void **state) {
    (void)state;
    expect_ok("SET k \"hello world\"\r\n", "SET|k|hello world\n");
    expect_ok("SET k \"a\\nb\\r\\t\\\\\\\"\"\r\n", "SET|k|a\nb\r\t\\\"\n");
    expect_ok("SET k \"\\x41\\x42\"\r\n", "SET|k|AB\n");
    expect_ok("SET k 'it\\'s'\r\n", "SET|k|it's\n");
    expect_ok("SET k 'a\\nb'\r\n", "SET|k|a\\nb\n"); /* single quotes keep backslashes */
    expect_ok("SET k \"\"\r\n", "SET|k|\n");        /* empty quoted argument */
}

static void test_inline_quote_errors(void **state) {
    (void)state;
    const char *a = "SET k \"open\r\n";
    expect_error(a, strlen(a), resp_default_limits(), "unbalanced quotes in inline request");
    const char *b = "SET k \"closed\"x\r\n";
    expect_error(b, strlen(b), resp_default_limits(), "unbalanced quotes in inline request");
}

/* Parses one request from a heap copy of data (the parser may rewrite
 * quoted arguments in place, and ASan then checks every byte it touches).
 * Returns the copy; the caller frees it and the parser. */
static char *parse_copy(resp_parser *p, const char *data, size_t n, size_t *used) {
    char *buf = malloc(n);
    assert_non_null(buf);
    memcpy(buf, data, n);
    resp_parser_init(p, resp_default_limits());
    assert_int_equal(resp_parse(p, buf, n, used), RESP_DONE);
    return buf;
}

static void test_inline_nul_byte_in_quoted(void **state) {
    (void)state;
    const char data[] = "SET k \"a\\x00b\"\n";
    resp_parser p;
    size_t used;
    char *buf = parse_copy(&p, data, sizeof data - 1, &used);
    assert_int_equal(p.argc, 3);
    assert_int_equal(p.argv[2].len, 3);
    assert_memory_equal(buf + p.argv[2].off, "a\0b", 3);
    resp_parser_free(&p);
    free(buf);
}

static void test_multibulk_basic(void **state) {
    (void)state;
    expect_ok("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "GET|k\n");
    expect_ok("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n", "SET|k|\n");
    expect_ok("*0\r\n*-1\r\n*-2\r\n", "\n\n\n"); /* empty requests (count <= 0) are skipped, as in Redis */
}

static void test_multibulk_binary(void **state) {
    (void)state;
    const char data[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\na\0\r\nb\n\r\n";
    resp_parser p;
    size_t used;
    char *buf = parse_copy(&p, data, sizeof data - 1, &used);
    assert_int_equal(used, sizeof data - 1);
    assert_int_equal(p.argv[2].len, 6);
    assert_memory_equal(buf + p.argv[2].off, "a\0\r\nb\n", 6);
    resp_parser_free(&p);
    free(buf);
}

static void test_multibulk_errors(void **state) {
    (void)state;
    resp_limits d = resp_default_limits();
    const struct {
        const char *data;
        const char *err;
    } cases[] = {
        {"*abc\r\n", "invalid multibulk length"},
        {"*01\r\n", "invalid multibulk length"}, /* leading zero: one spelling per number */
        {"*-0\r\n", "invalid multibulk length"},
        {"*1\r\n$03\r\nfoo\r\n", "invalid bulk length"},
        {"*1\r\n$-0\r\n", "invalid bulk length"},
        {"*+1\r\n", "invalid multibulk length"},
        {"* 1\r\n", "invalid multibulk length"},
        {"*1\n", "invalid multibulk length"}, /* bare LF in a header */
        {"*1\r\nfoo\r\n", "expected '$', got 'f'"},
        {"*1\r\n\x01\r\n", "expected '$', got '\\x01'"},
        {"*1\r\n$-5\r\n", "invalid bulk length"},
        {"*1\r\n$x\r\n", "invalid bulk length"},
        {"*1\r\n$3\r\nabcd\r\n", "expected CRLF after bulk data"},
        {"*1\r\n$99999999999999999999\r\n", "invalid bulk length"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error(cases[i].data, strlen(cases[i].data), d, cases[i].err);
}

static void test_limit_inline_length(void **state) {
    (void)state;
    resp_limits l = small(); /* max_inline 32 */
    char line[64];
    memset(line, 'a', 32);
    line[32] = '\n';
    char out[256];
    assert_int_equal(parse_all(line, 33, l, out, sizeof out, NULL), RESP_AGAIN); /* exactly at the limit */
    memset(line, 'a', 33);
    line[33] = '\n';
    expect_error(line, 34, l, "too big inline request");
    /* Without a newline the error comes as soon as more than the limit is buffered. */
    expect_error(line, 33, l, "too big inline request");
}

static void test_limit_args(void **state) {
    (void)state;
    resp_limits l = small(); /* max_args 4 */
    char out[256];
    const char *four = "*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n";
    assert_int_equal(parse_all(four, strlen(four), l, out, sizeof out, NULL), RESP_AGAIN);
    assert_string_equal(out, "a|b|c|d\n");
    expect_error("*5\r\n", 4, l, "invalid multibulk length");
    assert_int_equal(parse_all("a b c d\n", 8, l, out, sizeof out, NULL), RESP_AGAIN);
    expect_error("a b c d e\n", 10, l, "too many arguments in inline request");
}

static void test_limit_request_bytes(void **state) {
    (void)state;
    resp_limits l = small(); /* max_request 64 */
    /* "*1\r\n$N\r\n" + N + "\r\n" = 4 + 5 + N + 2 (for two-digit N) = 64 -> N = 53 */
    char req[128];
    int n = snprintf(req, sizeof req, "*1\r\n$53\r\n");
    memset(req + n, 'x', 53);
    memcpy(req + n + 53, "\r\n", 2);
    size_t total = (size_t)n + 55;
    assert_int_equal(total, 64);
    char out[256];
    assert_int_equal(parse_all(req, total, l, out, sizeof out, NULL), RESP_AGAIN);
    n = snprintf(req, sizeof req, "*1\r\n$54\r\n");
    memset(req + n, 'x', 54);
    memcpy(req + n + 54, "\r\n", 2);
    expect_error(req, (size_t)n + 56, l, "request larger than the limit of 64 bytes");
    /* Refused from the header alone, before the payload arrives. */
    expect_error("*1\r\n$1000000\r\n", 15, l, "request larger than the limit of 64 bytes");
}

static void test_limit_header_length(void **state) {
    (void)state;
    resp_limits l = small();
    char hdr[64] = "*";
    memset(hdr + 1, '1', 40); /* no CRLF, longer than max_inline */
    expect_error(hdr, 41, l, "too big mbulk count string");
    char bulk[64] = "*1\r\n$";
    memset(bulk + 5, '1', 40);
    expect_error(bulk, 45, resp_default_limits(), "invalid bulk length");
}

/* The pipelined buffer used for the split tests: inline and multibulk
 * mixed, quoting, an empty line, binary payloads. */
static const char PIPE[] = "PING\r\n"
                           "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nv\r\n\0x\r\n"
                           "SET q \"a b\"\n"
                           "\r\n"
                           "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"
                           "*1\r\n$4\r\nPING\r\n"
                           "DEL key q\r\n";

/* Feeds the first k bytes, then the rest, like two reads would deliver. */
static void parse_split(size_t k, char *out, size_t cap) {
    size_t n = sizeof PIPE - 1;
    char *buf = malloc(n);
    memcpy(buf, PIPE, n);
    resp_parser p;
    resp_parser_init(&p, resp_default_limits());
    size_t off = 0, avail = k, w = 0;
    out[0] = '\0';
    for (;;) {
        size_t used = 0;
        resp_status st = resp_parse(&p, buf + off, avail - off, &used);
        assert_int_not_equal(st, RESP_EPROTO);
        if (st == RESP_AGAIN) {
            if (avail == n) break;
            avail = n; /* the second read arrives */
            continue;
        }
        for (size_t i = 0; i < p.argc; i++) {
            const char *a = buf + off + p.argv[i].off;
            for (size_t j = 0; j < p.argv[i].len; j++) w += (size_t)snprintf(out + w, cap - w, "%02x", (unsigned char)a[j]);
            w += (size_t)snprintf(out + w, cap - w, "|");
        }
        w += (size_t)snprintf(out + w, cap - w, ";");
        off += used;
    }
    assert_int_equal(off, n);
    resp_parser_free(&p);
    free(buf);
}

static void test_pipeline_split_at_every_byte(void **state) {
    (void)state;
    char whole[4096], split[4096];
    parse_split(sizeof PIPE - 1, whole, sizeof whole);
    /* 7 requests, in order. */
    size_t semis = 0;
    for (char *s = whole; *s; s++) semis += *s == ';';
    assert_int_equal(semis, 7);
    for (size_t k = 0; k < sizeof PIPE - 1; k++) {
        parse_split(k, split, sizeof split);
        assert_string_equal(split, whole);
    }
}

static void test_byte_by_byte_with_buffer_moves(void **state) {
    (void)state;
    /* Each call gets a fresh copy of the pending bytes at a new address, as
     * a server compacting its buffer would: offsets must still be right. */
    size_t n = sizeof PIPE - 1, start = 0, requests = 0;
    resp_parser p;
    resp_parser_init(&p, resp_default_limits());
    for (size_t have = 1; have <= n; have++) {
        size_t len = have - start;
        char *copy = malloc(len);
        memcpy(copy, PIPE + start, len);
        size_t used = 0;
        resp_status st = resp_parse(&p, copy, len, &used);
        assert_int_not_equal(st, RESP_EPROTO);
        if (st == RESP_DONE) {
            if (requests == 1) { /* the SET with a binary value */
                assert_int_equal(p.argc, 3);
                assert_memory_equal(copy + p.argv[2].off, "v\r\n\0x", 5);
            }
            requests++;
            start += used;
        }
        free(copy);
    }
    assert_int_equal(start, n);
    assert_int_equal(requests, 7);
    resp_parser_free(&p);
}

static void test_many_args_grow(void **state) {
    (void)state;
    /* 1000 arguments: argv grows past its first allocation. */
    size_t cap = 1000 * 8 + 16, w = 0;
    char *req = malloc(cap);
    w += (size_t)snprintf(req + w, cap - w, "*1000\r\n");
    for (int i = 0; i < 1000; i++) w += (size_t)snprintf(req + w, cap - w, "$1\r\n%c\r\n", 'a' + i % 26);
    resp_parser p;
    resp_parser_init(&p, resp_default_limits());
    size_t used;
    assert_int_equal(resp_parse(&p, req, w, &used), RESP_DONE);
    assert_int_equal(p.argc, 1000);
    assert_int_equal(used, w);
    assert_int_equal(req[p.argv[999].off], 'a' + 999 % 26);
    resp_parser_free(&p);
    free(req);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inline_basic),
        cmocka_unit_test(test_inline_quotes),
        cmocka_unit_test(test_inline_quote_errors),
        cmocka_unit_test(test_inline_nul_byte_in_quoted),
        cmocka_unit_test(test_multibulk_basic),
        cmocka_unit_test(test_multibulk_binary),
        cmocka_unit_test(test_multibulk_errors),
        cmocka_unit_test(test_limit_inline_length),
        cmocka_unit_test(test_limit_args),
        cmocka_unit_test(test_limit_request_bytes),
        cmocka_unit_test(test_limit_header_length),
        cmocka_unit_test(test_pipeline_split_at_every_byte),
        cmocka_unit_test(test_byte_by_byte_with_buffer_moves),
        cmocka_unit_test(test_many_args_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
