/* log.c - leveled, timestamped logging to stderr (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static kv_log_level current_level = KV_LOG_INFO;
static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
static const char *const level_flags[] = {"error", "warn", "info", "debug"};

void kv_log_set_level(kv_log_level level) { current_level = level; }

int kv_log_parse_level(const char *name, kv_log_level *out) {
    for (int i = 0; i <= KV_LOG_DEBUG; i++) {
        if (strcmp(name, level_flags[i]) == 0) {
            *out = (kv_log_level)i;
            return 0;
        }
    }
    return -1;
}

void kv_log(kv_log_level level, const char *fmt, ...) {
    if (level > current_level) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    /* Format the whole line first so concurrent writers (a forked child) never interleave mid-line. */
    char line[2048];
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
    fflush(stderr);
}
