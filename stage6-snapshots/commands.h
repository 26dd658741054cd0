/* commands.h - the command table: looks up a request's command and runs it,
 * appending exactly one reply to the connection's output. */
#ifndef STAGE_COMMANDS_H
#define STAGE_COMMANDS_H

#include <stddef.h>

#include "slice.h"

typedef struct conn conn;

void commands_execute(conn *c, const kv_slice *argv, size_t argc);

#endif
