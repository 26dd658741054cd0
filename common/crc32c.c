/* crc32c.c - CRC32C with the SSE4.2 instruction when the CPU has it, and a
 * table-driven fallback otherwise (checked once, at first use, under
 * pthread_once: a server's loop thread and a replication or fsync thread may
 * both be the first to checksum something). */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u /* Castagnoli, reflected */

static uint32_t table[256];
static int have_hw; /* the CPU has the SSE4.2 crc32 instruction */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (POLY & (0u - (c & 1)));
        table[i] = c;
    }
#if defined(__x86_64__)
    have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_soft(uint32_t crc, const unsigned char *p, size_t n) {
    while (n--) crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t kv_crc32c_sw(uint32_t crc, const void *data, size_t n) {
    pthread_once(&init_once, init);
    return ~crc_soft(~crc, data, n);
}

uint32_t kv_crc32c(uint32_t crc, const void *data, size_t n) {
    const unsigned char *p = data;
    pthread_once(&init_once, init);
    crc = ~crc;
#if defined(__x86_64__)
    if (have_hw) return ~crc_hw(crc, p, n);
#endif
    return ~crc_soft(crc, p, n);
}
