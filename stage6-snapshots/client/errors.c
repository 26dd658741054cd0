/* errors.c - error codes and the per-client last error message. */
#include <stdarg.h>
#include <stdio.h>

#include "client_internal.h"

const char *kv_strerror(kv_err err) {
    switch (err) {
    case KV_OK: return "success";
    case KV_NOT_FOUND: return "key not found";
    case KV_ERR_CONNECT: return "cannot connect";
    case KV_ERR_TIMEOUT: return "timed out";
    case KV_ERR_DROPPED: return "connection dropped";
    case KV_ERR_PROTOCOL: return "protocol error";
    case KV_ERR_SERVER: return "server error";
    case KV_ERR_NOMEM: return "out of memory";
    case KV_ERR_USAGE: return "invalid use of the API";
    case KV_ERR_REDIRECT: return "redirect not followed";
    case KV_ERR_AMBIGUOUS: return "outcome unknown";
    }
    return "unknown error";
}

const char *kv_last_error(const kv_client *c) { return c->err; }

kv_err client_fail(kv_client *c, kv_err err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return err;
}
