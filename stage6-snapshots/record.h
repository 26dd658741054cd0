/* record.h - the WAL record frame: u32 big-endian payload length, u32
 * big-endian CRC32C of the payload, then the payload, a protobuf LogRecord.
 * The length comes first so a reader knows how much to read; the CRC tells
 * a torn or rotted record from a good one. */
#ifndef STAGE_RECORD_H
#define STAGE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "kv.pb-c.h"

#define RECORD_HEADER_BYTES 8
/* A record never exceeds this; a larger length field means a damaged header,
 * and we refuse it before allocating anything. */
#define RECORD_MAX_PAYLOAD (1024u * 1024u * 1024u + 4096u)

/* Appends one framed record to out. Returns 0, or -1 when memory runs out. */
int record_encode(kv_buf *out, uint64_t index, uint64_t term, const Kv__Command *cmd);

typedef enum record_status {
    RECORD_OK = 0,
    RECORD_SHORT = 1, /* the range ends before the record does */
    RECORD_BAD = 2,   /* impossible length, CRC mismatch, or payload does not decode */
} record_status;

/* Decodes the record at the start of [p, p + n). On RECORD_OK, *rec is a
 * newly unpacked message (free with record_free) and *size the frame's
 * length. Never reads outside the range. why (if not NULL) says what was
 * wrong for RECORD_BAD and RECORD_SHORT. */
record_status record_decode(const unsigned char *p, size_t n, Kv__LogRecord **rec, size_t *size, const char **why);
void record_free(Kv__LogRecord *rec);

#endif
