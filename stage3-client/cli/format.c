/* format.c - reply printing (see format.h). */
#include "format.h"

#include <ctype.h>

/* "value" with C-style escapes, so binary and whitespace are visible. */
static void print_quoted(FILE *out, const char *s, size_t n) {
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '\\': fputs("\\\\", out); break;
        case '"': fputs("\\\"", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (isprint(c))
                fputc(c, out);
            else
                fprintf(out, "\\x%02x", c);
        }
    }
    fputc('"', out);
}

static void print_tty(FILE *out, const kv_reply *r, int indent) {
    switch (r->type) {
    case KV_REPLY_STATUS: fprintf(out, "%s\n", r->str); break;
    case KV_REPLY_ERROR: fprintf(out, "(error) %s\n", r->str); break;
    case KV_REPLY_INTEGER: fprintf(out, "(integer) %lld\n", r->integer); break;
    case KV_REPLY_NIL: fputs("(nil)\n", out); break;
    case KV_REPLY_BULK:
        print_quoted(out, r->str, r->len);
        fputc('\n', out);
        break;
    case KV_REPLY_ARRAY:
        if (r->elements == 0) fputs("(empty array)\n", out);
        for (size_t i = 0; i < r->elements; i++) {
            if (i > 0) fprintf(out, "%*s", indent, "");
            int w = fprintf(out, "%zu) ", i + 1);
            print_tty(out, r->element[i], indent + w);
        }
        break;
    }
}

static void print_raw(FILE *out, const kv_reply *r) {
    switch (r->type) {
    case KV_REPLY_STATUS:
    case KV_REPLY_ERROR: fprintf(out, "%s\n", r->str); break;
    case KV_REPLY_INTEGER: fprintf(out, "%lld\n", r->integer); break;
    case KV_REPLY_NIL: fputc('\n', out); break;
    case KV_REPLY_BULK:
        fwrite(r->str, 1, r->len, out);
        fputc('\n', out);
        break;
    case KV_REPLY_ARRAY:
        for (size_t i = 0; i < r->elements; i++) print_raw(out, r->element[i]);
        break;
    }
}

void format_reply(FILE *out, const kv_reply *r, int tty) {
    if (tty)
        print_tty(out, r, 0);
    else
        print_raw(out, r);
}
