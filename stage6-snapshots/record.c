/* record.c - WAL record framing (see record.h). */
#include "record.h"

#include "crc32c.h"

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int record_encode(kv_buf *out, uint64_t index, uint64_t term, const Kv__Command *cmd) {
    Kv__LogRecord rec = KV__LOG_RECORD__INIT;
    rec.index = index;
    rec.term = term;
    rec.command = (Kv__Command *)cmd; /* packing only reads it */
    size_t n = kv__log_record__get_packed_size(&rec);
    if (n > RECORD_MAX_PAYLOAD) return -1;
    if (kv_buf_reserve(out, RECORD_HEADER_BYTES + n) != 0) return -1;
    /* LAB record-framing: pack after an 8-byte header: u32 BE payload length, u32 BE CRC32C of the payload */
    unsigned char *hdr = (unsigned char *)kv_buf_wptr(out);
    unsigned char *payload = hdr + RECORD_HEADER_BYTES;
    kv__log_record__pack(&rec, payload); /* straight into the buffer: no copy */
    put_be32(hdr, (uint32_t)n);
    put_be32(hdr + 4, kv_crc32c(0, payload, n));
    kv_buf_commit(out, RECORD_HEADER_BYTES + n);
    /* END LAB */
    return 0;
}

record_status record_decode(const unsigned char *p, size_t n, Kv__LogRecord **rec, size_t *size, const char **why) {
    const char *dummy;
    if (!why) why = &dummy;
    if (n < RECORD_HEADER_BYTES) {
        *why = "record header cut short";
        return RECORD_SHORT;
    }
    /* LAB record-framing: check the length (before allocating), that the frame is whole, the CRC; unpack */
    uint32_t len = get_be32(p);
    if (len > RECORD_MAX_PAYLOAD) {
        *why = "record length is impossibly large";
        return RECORD_BAD;
    }
    if (n - RECORD_HEADER_BYTES < len) {
        *why = "record payload cut short";
        return RECORD_SHORT;
    }
    const unsigned char *payload = p + RECORD_HEADER_BYTES;
    if (kv_crc32c(0, payload, len) != get_be32(p + 4)) {
        *why = "record checksum mismatch";
        return RECORD_BAD;
    }
    Kv__LogRecord *r = kv__log_record__unpack(NULL, len, payload);
    if (!r || !r->command) {
        if (r) kv__log_record__free_unpacked(r, NULL);
        *why = "record payload does not decode";
        return RECORD_BAD;
    }
    *rec = r;
    *size = RECORD_HEADER_BYTES + len;
    /* END LAB */
    return RECORD_OK;
}

void record_free(Kv__LogRecord *rec) {
    if (rec) kv__log_record__free_unpacked(rec, NULL);
}
