/* encode.c - requests in multibulk form, the binary-safe one: every
 * argument carries its length, so values may hold spaces, CR, LF or NUL.
 * (The inline form a person types cannot; see notes/03-client.md.)
 * Commands are appended to one output buffer, so a pipeline of any length
 * goes out in as few writes as the socket allows, with no allocation per
 * command once the buffer has grown. */
#include <string.h>

#include "client_internal.h"

/* Bytes around each argument: "$" + up to 20 digits + CRLF, then CRLF. */
#define ARG_OVERHEAD 32

/* Appends "<prefix><n>\r\n" (room was reserved by the caller). */
static void put_len(byte_buf *b, char prefix, size_t n) {
    char tmp[24];
    char *end = tmp + sizeof tmp, *p = end;
    *--p = '\n';
    *--p = '\r';
    do {
        *--p = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    *--p = prefix;
    memcpy(b->data + b->len, p, (size_t)(end - p));
    b->len += (size_t)(end - p);
}

static void put_arg(byte_buf *b, const void *p, size_t n) {
    put_len(b, '$', n);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len++] = '\r';
    b->data[b->len++] = '\n';
}

kv_err encode_command(kv_client *c, int argc, const char *const *argv, const size_t *argvlen) {
    if (argc <= 0 || !argv) return client_fail(c, KV_ERR_USAGE, "a command needs at least one argument");
    size_t need = ARG_OVERHEAD;
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : (argv[i] ? strlen(argv[i]) : 0);
        /* NULL is fine only as an empty argument with an explicit length. */
        if (!argv[i] && (len > 0 || !argvlen)) return client_fail(c, KV_ERR_USAGE, "argument %d is NULL", i);
        if (len > (size_t)-1 - need - ARG_OVERHEAD)
            return client_fail(c, KV_ERR_USAGE, "the command is too large to encode");
        need += len + ARG_OVERHEAD;
    }
    if (buf_reserve(&c->out, need) != 0)
        return client_fail(c, KV_ERR_NOMEM, "out of memory encoding a %zu-byte command", need);
    put_len(&c->out, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) put_arg(&c->out, argv[i], argvlen ? argvlen[i] : strlen(argv[i]));
    c->pending++;
    return KV_OK;
}

kv_err encode_2(kv_client *c, const char *cmd, const void *a, size_t alen) {
    const char *argv[2] = {cmd, a};
    size_t lens[2] = {strlen(cmd), alen};
    return encode_command(c, 2, argv, lens);
}

kv_err encode_3(kv_client *c, const char *cmd, const void *a, size_t alen, const void *b, size_t blen) {
    const char *argv[3] = {cmd, a, b};
    size_t lens[3] = {strlen(cmd), alen, blen};
    return encode_command(c, 3, argv, lens);
}
