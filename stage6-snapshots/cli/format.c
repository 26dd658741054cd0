/* format.c - reply printing (see format.h), in redis-cli's formats so
 * people and scripts used to redis-cli read ours without surprises. */
#include "format.h"

#include <ctype.h>

/* "value" with C-style escapes, so binary bytes and whitespace are
 * visible: the same escapes redis-cli uses, which its quoting reads back. */
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
        case '\a': fputs("\\a", out); break;
        case '\b': fputs("\\b", out); break;
        default:
            if (isprint(c))
                fputc(c, out);
            else
                fprintf(out, "\\x%02x", c);
        }
    }
    fputc('"', out);
}

/* indent: the column where this reply starts, for the lines after the
 * first of an array (the first follows its parent's "N) "). */
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
    case KV_REPLY_ARRAY: {
        if (r->elements == 0) {
            fputs("(empty array)\n", out);
            break;
        }
        /* Indices are right-aligned to the widest one, as redis-cli does. */
        int width = 0;
        for (size_t n = r->elements; n > 0; n /= 10) width++;
        for (size_t i = 0; i < r->elements; i++) {
            if (i > 0) fprintf(out, "%*s", indent, "");
            fprintf(out, "%*zu) ", width, i + 1);
            print_tty(out, r->element[i], indent + width + 2);
        }
        break;
    }
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
