/* flags.h - command-line flag parsing from a table.
 * Each program describes its flags once; the same table produces --help.
 * Accepts "--name value" and "--name=value". Numbers accept k/m/g suffixes
 * (powers of 1024) for FLAG_SIZE. Errors print one clear line to stderr. */
#ifndef KV_FLAGS_H
#define KV_FLAGS_H

#include <stddef.h>
#include <stdio.h>

typedef enum flag_type {
    FLAG_INT,    /* long long within [min, max] */
    FLAG_SIZE,   /* size_t within [min, max], suffixes k m g */
    FLAG_STRING, /* const char * (points into argv) */
    FLAG_CHOICE, /* const char * that must be one of choices (NULL-terminated) */
    FLAG_BOOL,   /* int set to 1, takes no value */
} flag_type;

typedef struct flag_spec {
    const char *name; /* without the leading dashes */
    flag_type type;
    void *target;     /* long long*, size_t*, const char**, int* */
    const char *help;
    long long min, max;         /* FLAG_INT / FLAG_SIZE */
    const char *const *choices; /* FLAG_CHOICE */
    const char *metavar;        /* shown in --help, e.g. "PORT" */
} flag_spec;

typedef enum flag_result {
    FLAGS_OK = 0,
    FLAGS_HELP = 1,    /* --help was given: usage printed to stdout */
    FLAGS_VERSION = 2, /* --version was given: version printed to stdout */
    FLAGS_ERROR = 3,   /* message printed to stderr; exit with code 2 */
} flag_result;

typedef struct flag_program {
    const char *name;    /* binary name */
    const char *summary; /* one line for --help */
    const char *version;
    const flag_spec *specs;
    size_t nspecs;
    /* Positional arguments: if NULL, any positional is an error. Otherwise
     * *npositional and *positional receive them (pointers into argv). */
    int *npositional;
    char ***positional;
    const char *positional_help; /* e.g. "[COMMAND [ARG ...]]" */
} flag_program;

flag_result flags_parse(const flag_program *prog, int argc, char **argv);
void flags_usage(const flag_program *prog, FILE *out);

#endif
