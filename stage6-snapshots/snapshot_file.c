/* snapshot_file.c - writing and reading snapshot files (see snapshot_file.h). */
#include "snapshot_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "crc32c.h"
#include "snapshot.pb-c.h"

#define REC_HEADER 8
/* Writes leave in chunks of this size: the child's memory stays small. */
#define FLUSH_AT (256 * 1024)
/* A record larger than this is damage, not data (values are at most 512 MiB). */
#define MAX_RECORD ((size_t)1 << 30)

void snap_file_name(char *out, size_t cap, uint64_t index, uint64_t term) {
    snprintf(out, cap, "snap-%016" PRIx64 "-%016" PRIx64 ".snap", index, term);
}

int snap_parse_name(const char *name, uint64_t *index, uint64_t *term) {
    char canon[SNAP_NAME_MAX];
    if (strlen(name) != 43 || sscanf(name, "snap-%16" SCNx64 "-%16" SCNx64 ".snap", index, term) != 2) return 0;
    snap_file_name(canon, sizeof canon, *index, *term);
    return strcmp(canon, name) == 0;
}

/* ---- writing ---- */

typedef struct writer {
    int fd;
    kv_buf buf;
    uint32_t crc; /* over every byte written so far */
    uint64_t records, bytes;
    uint64_t flushed, synced; /* bytes handed to the file; bytes whose writeback was started */
    uint64_t rate;            /* bytes a second at most; 0: unlimited */
    uint64_t began_ns;        /* when the first byte could leave (CLOCK_MONOTONIC) */
} writer;

/* Start writing back every SYNC_EVERY bytes as the file grows (Redis's
 * rdb-save-incremental-fsync): one fsync of a whole large file at the end
 * would flush it all at once, and the WAL's fdatasyncs, on the same disk
 * and file system journal, would wait behind it: the writes' p99. */
#define SYNC_EVERY (4u << 20)

static void put_u32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* On a machine whose cores the servers already use, a writer at full speed
 * takes CPU and disk they need: writes' p99 grew 6x with three writers
 * running at once on two cores, even at the lowest CPU priority (6.12). So
 * the writer keeps to its rate, sleeping until each chunk is due, as
 * TiKV and CockroachDB limit their snapshots. */
static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void pace(const writer *w) {
    if (w->rate == 0) return;
    uint64_t due = w->began_ns + (uint64_t)((double)w->flushed * 1e9 / (double)w->rate), now = now_ns();
    if (due <= now) return;
    struct timespec d = {(time_t)((due - now) / 1000000000u), (long)((due - now) % 1000000000u)};
    while (nanosleep(&d, &d) != 0 && errno == EINTR) {
    }
}

static int flush(writer *w) {
    const char *p = kv_buf_rptr(&w->buf);
    size_t n = kv_buf_readable(&w->buf);
    while (n > 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        p += k;
        n -= (size_t)k;
        w->flushed += (uint64_t)k;
    }
    w->buf.start = w->buf.len = 0;
    pace(w);
    if (w->flushed - w->synced >= SYNC_EVERY) {
        /* Starts this range's writeback and goes on without waiting for it
         * (waiting for the previous range was measured no better, 6.12). A
         * failure here is not fatal: the final fsync still decides. */
        (void)sync_file_range(w->fd, (off_t)w->synced, (off_t)(w->flushed - w->synced),
                              SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE);
        w->synced = w->flushed;
    }
    return 0;
}

static int put_bytes(writer *w, const void *p, size_t n) {
    if (kv_buf_append(&w->buf, p, n) != 0) {
        errno = ENOMEM;
        return -1;
    }
    w->crc = kv_crc32c(w->crc, p, n);
    w->bytes += n;
    return kv_buf_readable(&w->buf) >= FLUSH_AT ? flush(w) : 0;
}

static int put_record(writer *w, const Kv__SnapshotRecord *rec) {
    size_t n = kv__snapshot_record__get_packed_size(rec);
    unsigned char small[512];
    unsigned char *payload = n <= sizeof small ? small : malloc(n);
    if (!payload) {
        errno = ENOMEM;
        return -1;
    }
    kv__snapshot_record__pack(rec, payload);
    unsigned char hdr[REC_HEADER];
    put_u32(hdr, (uint32_t)n);
    put_u32(hdr + 4, kv_crc32c(0, payload, n));
    int r = put_bytes(w, hdr, sizeof hdr) == 0 && put_bytes(w, payload, n) == 0 ? 0 : -1;
    if (payload != small) free(payload);
    w->records++;
    return r;
}

static int put_key(void *ctx, const char *key, size_t klen, const char *val, size_t vlen) {
    Kv__SnapshotKey k = KV__SNAPSHOT_KEY__INIT;
    k.key.data = (uint8_t *)key;
    k.key.len = klen;
    k.value.data = (uint8_t *)val;
    k.value.len = vlen;
    Kv__SnapshotRecord rec = KV__SNAPSHOT_RECORD__INIT;
    rec.body_case = KV__SNAPSHOT_RECORD__BODY_KEY;
    rec.key = &k;
    return put_record(ctx, &rec);
}

static int write_all(writer *w, uint64_t index, uint64_t term, const kv_store *store, const sessions *table,
                     const snap_meta *meta) {
    if (put_bytes(w, SNAP_MAGIC, SNAP_MAGIC_LEN) != 0) return -1;
    Kv__SnapshotHeader h = KV__SNAPSHOT_HEADER__INIT;
    h.index = index;
    h.term = term;
    h.keys = kv_store_count(store);
    h.sessions = sessions_count(table);
    h.max_sessions = table->max;
    if (meta) {
        h.conf.data = (uint8_t *)meta->conf;
        h.conf.len = meta->conf_len;
        h.members = (char *)meta->members;
    }
    Kv__SnapshotRecord rec = KV__SNAPSHOT_RECORD__INIT;
    rec.body_case = KV__SNAPSHOT_RECORD__BODY_HEADER;
    rec.header = &h;
    if (put_record(w, &rec) != 0) return -1;
    if (kv_store_foreach(store, put_key, w) != 0) return -1;
    for (size_t i = 0; i < sessions_count(table); i++) {
        const session *s = sessions_at(table, i);
        Kv__SnapshotSession ss = KV__SNAPSHOT_SESSION__INIT;
        ss.id = s->id;
        ss.last_seq = s->last_seq;
        ss.last_used = s->last_used;
        ss.reply.data = (uint8_t *)s->reply;
        ss.reply.len = s->reply_len;
        Kv__SnapshotRecord r2 = KV__SNAPSHOT_RECORD__INIT;
        r2.body_case = KV__SNAPSHOT_RECORD__BODY_SESSION;
        r2.session = &ss;
        if (put_record(w, &r2) != 0) return -1;
    }
    Kv__SnapshotTrailer t = KV__SNAPSHOT_TRAILER__INIT;
    t.records = w->records;
    t.crc = w->crc;
    Kv__SnapshotRecord r3 = KV__SNAPSHOT_RECORD__INIT;
    r3.body_case = KV__SNAPSHOT_RECORD__BODY_TRAILER;
    r3.trailer = &t;
    if (put_record(w, &r3) != 0 || flush(w) != 0) return -1;
    return fsync(w->fd);
}

int snap_write_file(const char *path, uint64_t index, uint64_t term, const kv_store *store, const sessions *table,
                    const snap_meta *meta, uint64_t rate, uint64_t *bytes) {
    writer w = {.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), .rate = rate, .began_ns = now_ns()};
    if (w.fd < 0) return -1;
    kv_buf_init(&w.buf);
    int r = write_all(&w, index, term, store, table, meta);
    int saved = errno;
    kv_buf_free(&w.buf);
    if (close(w.fd) != 0 && r == 0) {
        r = -1;
        saved = errno;
    }
    if (bytes) *bytes = w.bytes;
    errno = saved;
    return r;
}

/* ---- reading ---- */

/* protobuf-c decodes empty bytes as NULL; the store hashes a pointer. */
static const uint8_t *nonnull(const uint8_t *p) { return p ? p : (const uint8_t *)""; }

static int load_session(sessions *table, const Kv__SnapshotSession *ss, uint64_t prev_id, char *err, size_t errlen,
                        size_t off) {
    if (ss->id <= prev_id) {
        snprintf(err, errlen, "offset %zu: session %" PRIu64 " out of order", off, ss->id);
        return -1;
    }
    if (sessions_open(table, ss->id, 0) != 0) goto oom;
    session *s = sessions_find(table, ss->id);
    if (ss->last_seq && sessions_record(s, ss->last_seq, ss->last_used, (const char *)nonnull(ss->reply.data),
                                        ss->reply.len) != 0)
        goto oom;
    s->last_used = ss->last_used;
    return 0;
oom:
    snprintf(err, errlen, "offset %zu: out of memory", off);
    return -1;
}

static int check_records(const unsigned char *map, size_t size, kv_store *store, sessions *table, snap_info *info,
                         char *err, size_t errlen) {
    if (size < SNAP_MAGIC_LEN || memcmp(map, SNAP_MAGIC, SNAP_MAGIC_LEN) != 0) {
        snprintf(err, errlen, "offset 0: not a snapshot file (bad magic)");
        return -1;
    }
    size_t off = SNAP_MAGIC_LEN;
    uint64_t records = 0, keys = 0, nsess = 0, last_id = 0;
    for (;;) {
        if (size - off < REC_HEADER) {
            snprintf(err, errlen, "offset %zu: file ends inside a record header (torn: no trailer)", off);
            return -1;
        }
        size_t len = get_u32(map + off);
        if (len > size - off - REC_HEADER || len > MAX_RECORD) {
            snprintf(err, errlen, "offset %zu: record length %zu runs past the end of the file (torn or damaged)",
                     off, len);
            return -1;
        }
        const unsigned char *payload = map + off + REC_HEADER;
        if (kv_crc32c(0, payload, len) != get_u32(map + off + 4)) {
            snprintf(err, errlen, "offset %zu: record checksum mismatch", off);
            return -1;
        }
        Kv__SnapshotRecord *rec = kv__snapshot_record__unpack(NULL, len, payload);
        if (!rec) {
            snprintf(err, errlen, "offset %zu: record does not decode", off);
            return -1;
        }
        int bad = 0, done = 0;
        if (records == 0 && rec->body_case != KV__SNAPSHOT_RECORD__BODY_HEADER) {
            snprintf(err, errlen, "offset %zu: the first record is not a header", off);
            bad = 1;
        } else if (rec->body_case == KV__SNAPSHOT_RECORD__BODY_HEADER) {
            if (records != 0) {
                snprintf(err, errlen, "offset %zu: a second header", off);
                bad = 1;
            } else {
                info->index = rec->header->index;
                info->term = rec->header->term;
                info->keys = rec->header->keys;
                info->sessions = rec->header->sessions;
                info->max_sessions = rec->header->max_sessions;
                const char *mem = rec->header->members ? rec->header->members : "";
                if (rec->header->conf.len > SNAP_CONF_MAX || strlen(mem) >= SNAP_MEMBERS_MAX) {
                    snprintf(err, errlen, "offset %zu: the header's configuration is too large", off);
                    bad = 1;
                } else {
                    info->meta.conf_len = rec->header->conf.len;
                    if (info->meta.conf_len) memcpy(info->meta.conf, rec->header->conf.data, info->meta.conf_len);
                    memcpy(info->meta.members, mem, strlen(mem) + 1);
                }
                table->max = info->max_sessions ? (size_t)info->max_sessions : table->max;
            }
        } else if (rec->body_case == KV__SNAPSHOT_RECORD__BODY_KEY) {
            if (nsess > 0 || ++keys > info->keys) {
                snprintf(err, errlen, "offset %zu: a key record out of place", off);
                bad = 1;
            } else if (kv_store_set(store, nonnull(rec->key->key.data), rec->key->key.len,
                                    nonnull(rec->key->value.data), rec->key->value.len) != 0) {
                snprintf(err, errlen, "offset %zu: out of memory", off);
                bad = 1;
            }
        } else if (rec->body_case == KV__SNAPSHOT_RECORD__BODY_SESSION) {
            if (keys != info->keys || ++nsess > info->sessions) {
                snprintf(err, errlen, "offset %zu: a session record out of place", off);
                bad = 1;
            } else {
                bad = load_session(table, rec->session, last_id, err, errlen, off) != 0;
                last_id = rec->session->id;
            }
        } else if (rec->body_case == KV__SNAPSHOT_RECORD__BODY_TRAILER) {
            if (keys != info->keys || nsess != info->sessions || rec->trailer->records != records) {
                snprintf(err, errlen,
                         "offset %zu: trailer counts %" PRIu64 " records (%" PRIu64 " keys, %" PRIu64
                         " sessions announced) but %" PRIu64 " were read",
                         off, rec->trailer->records, info->keys, info->sessions, records);
                bad = 1;
            } else if (rec->trailer->crc != kv_crc32c(0, map, off)) {
                snprintf(err, errlen, "offset %zu: file checksum mismatch", off);
                bad = 1;
            } else if (off + REC_HEADER + len != size) {
                snprintf(err, errlen, "offset %zu: bytes after the trailer", off + REC_HEADER + len);
                bad = 1;
            }
            done = 1;
        } else {
            snprintf(err, errlen, "offset %zu: a record of unknown type", off);
            bad = 1;
        }
        kv__snapshot_record__free_unpacked(rec, NULL);
        if (bad) return -1;
        records++;
        off += REC_HEADER + len;
        if (done) break;
    }
    table->stats = (session_stats){0}; /* counters of this process, not state */
    info->bytes = size;
    return 0;
}

int snap_read_file(const char *path, kv_store *store, sessions *table, snap_info *info, char *err, size_t errlen) {
    memset(info, 0, sizeof *info);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "offset 0: cannot open: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "offset 0: cannot stat: %s", strerror(errno));
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    const unsigned char *map = NULL;
    if (size > 0) {
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            snprintf(err, errlen, "offset 0: cannot map: %s", strerror(errno));
            close(fd);
            return -1;
        }
        madvise(m, size, MADV_SEQUENTIAL);
        map = m;
    }
    close(fd);
    int r = check_records(map ? map : (const unsigned char *)"", size, store, table, info, err, errlen);
    if (map) munmap((void *)map, size);
    return r;
}
