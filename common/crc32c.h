/* crc32c.h - CRC32C (Castagnoli), the checksum on every WAL record.
 * Chosen over zlib's CRC32 because x86 computes it in hardware (SSE4.2). */
#ifndef KV_CRC32C_H
#define KV_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) over n bytes. crc32c("123456789") == 0xE3069283. */
uint32_t kv_crc32c(uint32_t crc, const void *data, size_t n);
/* The table-driven path alone. kv_crc32c uses it only on CPUs without
 * SSE4.2; it is exposed so the tests check it on every machine. */
uint32_t kv_crc32c_sw(uint32_t crc, const void *data, size_t n);

#endif
