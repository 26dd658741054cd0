/* info_sections.c - picking INFO sections by name (see info_sections.h). */
#include "info_sections.h"

#include <strings.h>

static int wanted(const char *name, size_t len, const kv_slice *names, size_t count) {
    for (size_t i = 0; i < count; i++) {
        if (kv_slice_eq_nocase(names[i], "all") || kv_slice_eq_nocase(names[i], "everything") ||
            kv_slice_eq_nocase(names[i], "default"))
            return 1;
        if (names[i].len == len && strncasecmp(names[i].p, name, len) == 0) return 1;
    }
    return 0;
}

int kv_info_select(const char *text, size_t n, const kv_slice *names, size_t count, kv_buf *out) {
    size_t i = 0;
    int keep = 0, kept_any = 0;
    while (i < n) {
        size_t end = i;
        while (end < n && text[end] != '\n') end++;
        size_t line_end = end < n ? end + 1 : end; /* through the '\n' */
        size_t len = end - i;
        if (len > 0 && text[i + len - 1] == '\r') len--;
        if (len >= 2 && text[i] == '#' && text[i + 1] == ' ') {
            keep = wanted(text + i + 2, len - 2, names, count);
            if (keep && kept_any && kv_buf_append(out, "\r\n", 2) != 0) return -1;
            kept_any |= keep;
        }
        if (keep && len > 0 && kv_buf_append(out, text + i, line_end - i) != 0) return -1;
        i = line_end;
    }
    return 0;
}
