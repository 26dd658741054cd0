/* info_sections.h - INFO <section> ...: keeps only the named sections of a
 * rendered INFO text, as Redis does (`redis-cli info replication`). */
#ifndef KV_INFO_SECTIONS_H
#define KV_INFO_SECTIONS_H

#include <stddef.h>

#include "buf.h"
#include "slice.h"

/* Appends to out the sections of text ("# Name" headers, CRLF lines, a blank
 * line between sections) whose name matches one of names, case-insensitively;
 * "all", "everything" and "default" keep every section. An unknown name
 * keeps nothing (an empty reply, like Redis). Returns 0, or -1 when memory
 * runs out. */
int kv_info_select(const char *text, size_t n, const kv_slice *names, size_t count, kv_buf *out);

#endif
