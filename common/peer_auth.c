/* peer_auth.c - cluster-secret challenge and response (see peer_auth.h). */
#include "peer_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Names what the MAC is for, so it can never be mistaken for an HMAC the
 * same secret might compute for another purpose (or another version). */
static const char CONTEXT[] = "kvworkbook peer auth v1";

static int sodium_ready(void) { return sodium_init() < 0 ? -1 : 0; /* 1 = already done */ }

int kv_secret_load(const char *path, const char *what, size_t min_len, kv_secret *out, char *err,
                   size_t errlen) {
    out->bytes = NULL;
    out->len = 0;
    if (min_len == 0) min_len = 1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "%s '%s': %s", what, path, strerror(errno));
        return -1;
    }
    /* fstat on the open descriptor: the file checked is the file read. */
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s '%s': %s", what, path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s '%s' is not a regular file", what, path);
        close(fd);
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen,
                 "permissions %04o for %s '%s' are too open: group and others must have none (chmod 600 '%s')",
                 (unsigned)(st.st_mode & 07777), what, path, path);
        close(fd);
        return -1;
    }
    /* Room for the longest secret, its CRLF, and one byte to notice more. */
    size_t cap = KV_SECRET_MAX_LEN + 3, len = 0;
    unsigned char *b = malloc(cap);
    if (!b) {
        snprintf(err, errlen, "%s '%s': out of memory", what, path);
        close(fd);
        return -1;
    }
    while (len < cap) {
        ssize_t n = read(fd, b + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(err, errlen, "%s '%s': %s", what, path, strerror(errno));
            sodium_memzero(b, cap);
            free(b);
            close(fd);
            return -1;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    close(fd);
    if (len > 0 && b[len - 1] == '\n') {
        len--;
        if (len > 0 && b[len - 1] == '\r') len--;
    }
    const char *why = NULL;
    if (len == 0)
        why = "is empty";
    else if (len > KV_SECRET_MAX_LEN)
        why = "is too long";
    else if (len < min_len)
        why = "is too short";
    if (why) {
        snprintf(err, errlen, "%s '%s' %s: a secret of %zu to %d bytes is needed (one trailing newline is ignored)",
                 what, path, why, min_len, KV_SECRET_MAX_LEN);
        sodium_memzero(b, cap);
        free(b);
        return -1;
    }
    out->bytes = b;
    out->len = len;
    return 0;
}

void kv_secret_free(kv_secret *s) {
    if (s->bytes) {
        sodium_memzero(s->bytes, KV_SECRET_MAX_LEN + 3);
        free(s->bytes);
    }
    s->bytes = NULL;
    s->len = 0;
}

int kv_auth_nonce(unsigned char nonce[KV_AUTH_NONCE_LEN]) {
    if (sodium_ready() != 0) return -1;
    randombytes_buf(nonce, KV_AUTH_NONCE_LEN);
    return 0;
}

/* Each variable-length part is preceded by its length, so no two different
 * (role, id) pairs feed the HMAC the same bytes. */
static void update_part(crypto_auth_hmacsha256_state *st, const void *p, size_t n) {
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    crypto_auth_hmacsha256_update(st, len, sizeof len);
    crypto_auth_hmacsha256_update(st, p, n);
}

static void compute(const kv_secret *s, const unsigned char *nonce, const char *role, const char *id,
                    unsigned char mac[KV_AUTH_MAC_LEN]) {
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, s->bytes, s->len);
    update_part(&st, CONTEXT, sizeof CONTEXT - 1);
    update_part(&st, nonce, KV_AUTH_NONCE_LEN);
    update_part(&st, role, strlen(role));
    update_part(&st, id, strlen(id));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st); /* holds key-derived pads */
}

int kv_auth_respond(const kv_secret *s, const unsigned char *nonce, size_t nonce_len, const char *role,
                    const char *claimed_id, unsigned char mac[KV_AUTH_MAC_LEN]) {
    if (nonce_len != KV_AUTH_NONCE_LEN || sodium_ready() != 0) return -1;
    compute(s, nonce, role, claimed_id, mac);
    return 0;
}

int kv_auth_verify(const kv_secret *s, const unsigned char nonce[KV_AUTH_NONCE_LEN], const char *role,
                   const char *claimed_id, const unsigned char *mac, size_t mac_len) {
    if (mac_len != KV_AUTH_MAC_LEN || sodium_ready() != 0) return 0;
    unsigned char want[KV_AUTH_MAC_LEN];
    compute(s, nonce, role, claimed_id, want);
    int ok = sodium_memcmp(want, mac, KV_AUTH_MAC_LEN) == 0;
    sodium_memzero(want, sizeof want);
    return ok;
}
