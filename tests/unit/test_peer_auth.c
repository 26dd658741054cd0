/* test_peer_auth.c - cluster-secret files and challenge/response
 * (common/peer_auth.h): good files load with one trailing newline stripped;
 * missing, non-regular, too open, empty, too short and too long files are
 * refused with a message naming the file and the fix; a holder of the secret
 * is accepted, a wrong secret, a replayed response, a reflected one (other
 * role), another claimed id, a truncated or altered MAC are refused; a known
 * answer computed independently pins the construction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "peer_auth.h"

#define WHAT "cluster secret file"

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/kv-peer-auth-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/secret", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_file(const fixture *f, const void *p, size_t n, mode_t mode) {
    unlink(f->path);
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    if (n) assert_int_equal(fwrite(p, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(chmod(f->path, mode), 0);
}

static void load_ok(const fixture *f, size_t min_len, const void *want, size_t wlen) {
    kv_secret s;
    char err[512] = "";
    assert_int_equal(kv_secret_load(f->path, WHAT, min_len, &s, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_int_equal(s.len, wlen);
    assert_memory_equal(s.bytes, want, wlen);
    kv_secret_free(&s);
    assert_null(s.bytes);
    assert_int_equal(s.len, 0);
}

static void load_refused(const char *path, size_t min_len, const char *want) {
    kv_secret s = {(unsigned char *)"x", 1}; /* must be emptied */
    char err[512] = "";
    assert_int_equal(kv_secret_load(path, WHAT, min_len, &s, err, sizeof err), -1);
    assert_null(s.bytes);
    assert_int_equal(s.len, 0);
    assert_string_equal(err, want);
    kv_secret_free(&s); /* harmless on an empty secret */
}

/* --- secret files ------------------------------------------------------------ */

static void test_good_files(void **state) {
    fixture *f = *state;
    write_file(f, "0123456789abcdef-secret\n", 24, 0600);
    load_ok(f, KV_CLUSTER_SECRET_MIN_LEN, "0123456789abcdef-secret", 23);
    write_file(f, "0123456789abcdef-secret\r\n", 25, 0400); /* CRLF from an editor */
    load_ok(f, KV_CLUSTER_SECRET_MIN_LEN, "0123456789abcdef-secret", 23);
    write_file(f, "0123456789abcdef\n\n", 18, 0600); /* only one newline is stripped */
    load_ok(f, KV_CLUSTER_SECRET_MIN_LEN, "0123456789abcdef\n", 17);
    write_file(f, "0123456789abcdef", 16, 0600); /* no newline, exactly the minimum */
    load_ok(f, KV_CLUSTER_SECRET_MIN_LEN, "0123456789abcdef", 16);
    write_file(f, "\0\1\2\3\4\5\6\7\10\11\12\13\14\15\16\17", 16, 0600); /* binary is fine */
    load_ok(f, KV_CLUSTER_SECRET_MIN_LEN, "\0\1\2\3\4\5\6\7\10\11\12\13\14\15\16\17", 16);
    char *big = malloc(KV_SECRET_MAX_LEN + 1);
    assert_non_null(big);
    memset(big, 's', KV_SECRET_MAX_LEN);
    big[KV_SECRET_MAX_LEN] = '\n';
    write_file(f, big, KV_SECRET_MAX_LEN + 1, 0600); /* the longest, with its newline */
    load_ok(f, KV_CLUSTER_SECRET_MIN_LEN, big, KV_SECRET_MAX_LEN);
    free(big);
    write_file(f, "pw\n", 3, 0600); /* a short password, where the caller allows one */
    load_ok(f, 1, "pw", 2);
}

static void test_missing_and_not_regular(void **state) {
    fixture *f = *state;
    char want[512];
    snprintf(want, sizeof want, WHAT " '%s': No such file or directory", f->path);
    load_refused(f->path, KV_CLUSTER_SECRET_MIN_LEN, want);
    snprintf(want, sizeof want, WHAT " '%s' is not a regular file", f->dir);
    load_refused(f->dir, KV_CLUSTER_SECRET_MIN_LEN, want);
}

static void test_too_open(void **state) {
    fixture *f = *state;
    const mode_t modes[] = {0644, 0640, 0604, 0620, 0602, 0610, 0601, 0660};
    char want[512];
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        write_file(f, "0123456789abcdef-secret\n", 24, modes[i]);
        snprintf(want, sizeof want,
                 "permissions %04o for " WHAT " '%s' are too open: group and others must have none (chmod 600 '%s')",
                 (unsigned)modes[i], f->path, f->path);
        load_refused(f->path, KV_CLUSTER_SECRET_MIN_LEN, want);
    }
}

static void test_bad_lengths(void **state) {
    fixture *f = *state;
    char want[512];
    const char *tail = ": a secret of 16 to 4096 bytes is needed (one trailing newline is ignored)";
    write_file(f, "", 0, 0600);
    snprintf(want, sizeof want, WHAT " '%s' is empty%s", f->path, tail);
    load_refused(f->path, KV_CLUSTER_SECRET_MIN_LEN, want);
    write_file(f, "\n", 1, 0600);
    load_refused(f->path, KV_CLUSTER_SECRET_MIN_LEN, want);
    write_file(f, "\r\n", 2, 0600);
    load_refused(f->path, KV_CLUSTER_SECRET_MIN_LEN, want);
    write_file(f, "0123456789abcde\n", 16, 0600); /* 15 bytes */
    snprintf(want, sizeof want, WHAT " '%s' is too short%s", f->path, tail);
    load_refused(f->path, KV_CLUSTER_SECRET_MIN_LEN, want);
    char *big = malloc(KV_SECRET_MAX_LEN + 10);
    assert_non_null(big);
    memset(big, 's', KV_SECRET_MAX_LEN + 10);
    big[KV_SECRET_MAX_LEN + 1] = '\n';
    write_file(f, big, KV_SECRET_MAX_LEN + 2, 0600); /* 4097 bytes and a newline */
    snprintf(want, sizeof want, WHAT " '%s' is too long%s", f->path, tail);
    load_refused(f->path, KV_CLUSTER_SECRET_MIN_LEN, want);
    write_file(f, big, KV_SECRET_MAX_LEN + 10, 0600); /* longer than the read buffer */
    load_refused(f->path, KV_CLUSTER_SECRET_MIN_LEN, want);
    free(big);
}

/* --- challenge and response ------------------------------------------------- */

static kv_secret secret_of(const char *s) {
    kv_secret k = {(unsigned char *)s, strlen(s)}; /* not loaded: never freed */
    return k;
}

static void test_nonces_are_fresh(void **state) {
    (void)state;
    unsigned char a[KV_AUTH_NONCE_LEN], b[KV_AUTH_NONCE_LEN], zero[KV_AUTH_NONCE_LEN] = {0};
    assert_int_equal(kv_auth_nonce(a), 0);
    assert_int_equal(kv_auth_nonce(b), 0);
    assert_memory_not_equal(a, b, sizeof a);
    assert_memory_not_equal(a, zero, sizeof a);
}

static void test_right_secret_accepted_wrong_refused(void **state) {
    (void)state;
    kv_secret leader = secret_of("correct horse battery staple");
    kv_secret follower = secret_of("correct horse battery staple");
    kv_secret intruder = secret_of("correct horse battery stapler");
    unsigned char nonce[KV_AUTH_NONCE_LEN], mac[KV_AUTH_MAC_LEN];
    assert_int_equal(kv_auth_nonce(nonce), 0);

    assert_int_equal(kv_auth_respond(&follower, nonce, sizeof nonce, "follower", "127.0.0.1:7005", mac), 0);
    assert_int_equal(kv_auth_verify(&leader, nonce, "follower", "127.0.0.1:7005", mac, sizeof mac), 1);

    assert_int_equal(kv_auth_respond(&intruder, nonce, sizeof nonce, "follower", "127.0.0.1:7005", mac), 0);
    assert_int_equal(kv_auth_verify(&leader, nonce, "follower", "127.0.0.1:7005", mac, sizeof mac), 0);
}

static void test_replay_reflection_and_tampering_refused(void **state) {
    (void)state;
    kv_secret s = secret_of("0123456789abcdef0123");
    unsigned char n1[KV_AUTH_NONCE_LEN], n2[KV_AUTH_NONCE_LEN], mac[KV_AUTH_MAC_LEN];
    assert_int_equal(kv_auth_nonce(n1), 0);
    assert_int_equal(kv_auth_nonce(n2), 0);
    assert_int_equal(kv_auth_respond(&s, n1, sizeof n1, "follower", "10.0.0.2:7004", mac), 0);
    assert_int_equal(kv_auth_verify(&s, n1, "follower", "10.0.0.2:7004", mac, sizeof mac), 1);
    /* Replayed on a later link, whose nonce is fresh. */
    assert_int_equal(kv_auth_verify(&s, n2, "follower", "10.0.0.2:7004", mac, sizeof mac), 0);
    /* Reflected: the same bytes offered as the other role's answer. */
    assert_int_equal(kv_auth_verify(&s, n1, "leader", "10.0.0.2:7004", mac, sizeof mac), 0);
    /* Another node's claimed address. */
    assert_int_equal(kv_auth_verify(&s, n1, "follower", "10.0.0.3:7004", mac, sizeof mac), 0);
    /* Role and id boundary moved: no two (role, id) pairs hash alike. */
    unsigned char mac2[KV_AUTH_MAC_LEN];
    assert_int_equal(kv_auth_respond(&s, n1, sizeof n1, "followe", "r10.0.0.2:7004", mac2), 0);
    assert_memory_not_equal(mac, mac2, sizeof mac);
    /* Truncated, extended, empty. */
    unsigned char longer[KV_AUTH_MAC_LEN + 1];
    memcpy(longer, mac, sizeof mac);
    longer[KV_AUTH_MAC_LEN] = 0;
    assert_int_equal(kv_auth_verify(&s, n1, "follower", "10.0.0.2:7004", mac, sizeof mac - 1), 0);
    assert_int_equal(kv_auth_verify(&s, n1, "follower", "10.0.0.2:7004", longer, sizeof longer), 0);
    assert_int_equal(kv_auth_verify(&s, n1, "follower", "10.0.0.2:7004", mac, 0), 0);
    /* Any single bit flipped. */
    for (size_t i = 0; i < sizeof mac; i++) {
        for (int bit = 0; bit < 8; bit++) {
            mac[i] ^= (unsigned char)(1 << bit);
            assert_int_equal(kv_auth_verify(&s, n1, "follower", "10.0.0.2:7004", mac, sizeof mac), 0);
            mac[i] ^= (unsigned char)(1 << bit);
        }
    }
    assert_int_equal(kv_auth_verify(&s, n1, "follower", "10.0.0.2:7004", mac, sizeof mac), 1);
}

/* A nonce of the wrong size from the wire is not answered. */
static void test_wrong_nonce_size_not_answered(void **state) {
    (void)state;
    kv_secret s = secret_of("0123456789abcdef0123");
    unsigned char nonce[KV_AUTH_NONCE_LEN + 1] = {0}, mac[KV_AUTH_MAC_LEN];
    assert_int_equal(kv_auth_respond(&s, nonce, 0, "leader", "a:1", mac), -1);
    assert_int_equal(kv_auth_respond(&s, nonce, KV_AUTH_NONCE_LEN - 1, "leader", "a:1", mac), -1);
    assert_int_equal(kv_auth_respond(&s, nonce, KV_AUTH_NONCE_LEN + 1, "leader", "a:1", mac), -1);
}

/* HMAC-SHA256(secret, part("kvworkbook peer auth v1") || part(nonce) ||
 * part(role) || part(id)), part(x) = u64 big-endian length || x, computed
 * with Python's hmac module: another implementation must agree. */
static void test_known_answer(void **state) {
    (void)state;
    kv_secret s = secret_of("0123456789abcdef");
    unsigned char nonce[KV_AUTH_NONCE_LEN], mac[KV_AUTH_MAC_LEN];
    for (size_t i = 0; i < sizeof nonce; i++) nonce[i] = (unsigned char)i;
    assert_int_equal(kv_auth_respond(&s, nonce, sizeof nonce, "follower", "127.0.0.1:7005", mac), 0);
    char hex[2 * KV_AUTH_MAC_LEN + 1];
    for (size_t i = 0; i < sizeof mac; i++) snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    assert_string_equal(hex, "b4978f1cc82c459777e96a5312c8707dc05070777d82822958537fa91aa10333");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_not_regular, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_lengths, setup, teardown),
        cmocka_unit_test(test_nonces_are_fresh),
        cmocka_unit_test(test_right_secret_accepted_wrong_refused),
        cmocka_unit_test(test_replay_reflection_and_tampering_refused),
        cmocka_unit_test(test_wrong_nonce_size_not_answered),
        cmocka_unit_test(test_known_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
