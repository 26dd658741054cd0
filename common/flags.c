/* flags.c - table-driven command-line parsing (see flags.h). */
#include "flags.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const flag_spec *find_spec(const flag_program *prog, const char *name, size_t len) {
    for (size_t i = 0; i < prog->nspecs; i++) {
        const flag_spec *f = &prog->specs[i];
        if (strlen(f->name) == len && strncmp(f->name, name, len) == 0) return f;
    }
    return NULL;
}

/* Parses a decimal integer, with an optional k/m/g suffix when allowed. */
static int parse_number(const char *s, int suffixes, long long *out) {
    if (*s == '\0') return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s) return -1;
    long long mult = 1;
    if (suffixes && *end) {
        switch (*end) {
        case 'k': case 'K': mult = 1024LL; break;
        case 'm': case 'M': mult = 1024LL * 1024; break;
        case 'g': case 'G': mult = 1024LL * 1024 * 1024; break;
        default: return -1;
        }
        end++;
        if (*end == 'b' || *end == 'B') end++;
    }
    if (*end != '\0') return -1;
    if (v > LLONG_MAX / mult || v < LLONG_MIN / mult) return -1;
    *out = v * mult;
    return 0;
}

static int set_value(const flag_program *prog, const flag_spec *f, const char *val) {
    long long n;
    switch (f->type) {
    case FLAG_INT:
    case FLAG_SIZE:
        if (parse_number(val, f->type == FLAG_SIZE, &n) != 0) {
            fprintf(stderr, "%s: --%s: '%s' is not a valid %s\n", prog->name, f->name, val,
                    f->type == FLAG_SIZE ? "size (e.g. 4096, 64k, 16m)" : "integer");
            return -1;
        }
        if (n < f->min || n > f->max) {
            fprintf(stderr, "%s: --%s: %s is out of range (%lld..%lld)\n", prog->name, f->name, val, f->min, f->max);
            return -1;
        }
        if (f->type == FLAG_INT)
            *(long long *)f->target = n;
        else
            *(size_t *)f->target = (size_t)n;
        return 0;
    case FLAG_STRING:
        *(const char **)f->target = val;
        return 0;
    case FLAG_CHOICE:
        for (const char *const *c = f->choices; *c; c++) {
            if (strcmp(*c, val) == 0) {
                *(const char **)f->target = val;
                return 0;
            }
        }
        fprintf(stderr, "%s: --%s: '%s' is not one of:", prog->name, f->name, val);
        for (const char *const *c = f->choices; *c; c++) fprintf(stderr, " %s", *c);
        fprintf(stderr, "\n");
        return -1;
    case FLAG_BOOL:
        *(int *)f->target = 1;
        return 0;
    }
    return -1;
}

flag_result flags_parse(const flag_program *prog, int argc, char **argv) {
    if (prog->npositional) *prog->npositional = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            flags_usage(prog, stdout);
            return FLAGS_HELP;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("%s %s\n", prog->name, prog->version);
            return FLAGS_VERSION;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (prog->npositional) {
                /* Everything from the first positional on is positional, so
                 * "kvcli set k --v" stores the value "--v". */
                *prog->npositional = argc - i;
                *prog->positional = argv + i;
                return FLAGS_OK;
            }
            fprintf(stderr, "%s: unexpected argument '%s' (try --help)\n", prog->name, arg);
            return FLAGS_ERROR;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const flag_spec *f = find_spec(prog, name, nlen);
        if (!f) {
            fprintf(stderr, "%s: unknown flag '--%.*s' (try --help)\n", prog->name, (int)nlen, name);
            return FLAGS_ERROR;
        }
        const char *val;
        if (f->type == FLAG_BOOL) {
            if (eq) {
                fprintf(stderr, "%s: --%s takes no value\n", prog->name, f->name);
                return FLAGS_ERROR;
            }
            val = "1";
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "%s: --%s needs a value\n", prog->name, f->name);
            return FLAGS_ERROR;
        }
        if (set_value(prog, f, val) != 0) return FLAGS_ERROR;
    }
    return FLAGS_OK;
}

void flags_usage(const flag_program *prog, FILE *out) {
    fprintf(out, "Usage: %s [OPTIONS]%s%s\n%s\n\nOptions:\n", prog->name, prog->positional_help ? " " : "",
            prog->positional_help ? prog->positional_help : "", prog->summary);
    for (size_t i = 0; i < prog->nspecs; i++) {
        const flag_spec *f = &prog->specs[i];
        char left[64];
        if (f->type == FLAG_BOOL)
            snprintf(left, sizeof left, "--%s", f->name);
        else
            snprintf(left, sizeof left, "--%s %s", f->name, f->metavar ? f->metavar : "VALUE");
        fprintf(out, "  %-28s %s\n", left, f->help);
    }
    fprintf(out, "  %-28s %s\n  %-28s %s\n", "--help", "show this help and exit", "--version",
            "print the version and exit");
}
