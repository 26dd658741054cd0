/* log.h - leveled, timestamped logging to stderr.
 * Lines look like: 2026-11-22T10:00:00.123Z INFO  listening on 127.0.0.1:7001 */
#ifndef KV_LOG_H
#define KV_LOG_H

typedef enum kv_log_level {
    KV_LOG_ERROR = 0,
    KV_LOG_WARN = 1,
    KV_LOG_INFO = 2,
    KV_LOG_DEBUG = 3,
} kv_log_level;

void kv_log_set_level(kv_log_level level);
/* Parse "error", "warn", "info", "debug". Returns 0, or -1 if unknown. */
int kv_log_parse_level(const char *name, kv_log_level *out);

void kv_log(kv_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define kv_error(...) kv_log(KV_LOG_ERROR, __VA_ARGS__)
#define kv_warn(...) kv_log(KV_LOG_WARN, __VA_ARGS__)
#define kv_info(...) kv_log(KV_LOG_INFO, __VA_ARGS__)
#define kv_debug(...) kv_log(KV_LOG_DEBUG, __VA_ARGS__)

#endif
