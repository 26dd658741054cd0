/* info.h - renders the INFO reply text. */
#ifndef STAGE_INFO_H
#define STAGE_INFO_H

#include "buf.h"

typedef struct server server;

/* Appends "# Section" headers and "field:value" lines, CRLF separated,
 * the format redis-cli and client libraries already parse. */
int info_render(const server *srv, kv_buf *out);

#endif
