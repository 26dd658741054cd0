/* format.h - prints replies the way redis-cli does: decorated for a person
 * at a terminal, raw for a script reading a pipe. */
#ifndef KVCLI_FORMAT_H
#define KVCLI_FORMAT_H

#include <stdio.h>

#include "kvclient.h"

void format_reply(FILE *out, const kv_reply *r, int tty);

#endif
