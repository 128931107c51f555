/* auth.c - authenticated and encrypted images with libsodium (see auth.h).
 * No cryptography of our own: BLAKE2b (crypto_generichash) for digests,
 * MACs and key derivation, XChaCha20 (crypto_stream_xchacha20_xor) for
 * encryption, the system CSPRNG (randombytes_buf) for keys. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "chunk.h"
#include "imgio.h"
#include "fileid.h"
#include "xxh64.h"

int ck_auth_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

static void derive(const uint8_t master[32], const char *label, uint8_t *out, size_t outlen)
{
    crypto_generichash(out, outlen, (const unsigned char *)label, strlen(label), master, 32);
}

void ck_key_from_bytes(const void *bytes, size_t len, struct ck_key *k)
{
    uint8_t master[32];
    crypto_generichash(master, sizeof master, bytes, len, NULL, 0);
    derive(master, "ckshim image MAC key v1", k->mac, sizeof k->mac);
    derive(master, "ckshim image encryption key v1", k->enc, sizeof k->enc);
    derive(master, "ckshim key id v1", k->id, sizeof k->id);
    sodium_memzero(master, sizeof master);
}

int ck_key_load(const char *path, struct ck_key *k, char *err, size_t errlen)
{
    char why[512];
    int fd = ck_open_regular(path, O_RDONLY, why, sizeof why);
    if (fd < 0) {
        int e = errno == 0 ? EINVAL : errno;
        snprintf(err, errlen, "cannot read key file %s: %s", path, why);
        return -e;
    }
    uint8_t buf[65536];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(e));
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == sizeof buf) {
            close(fd);
            snprintf(err, errlen, "key file %s is larger than 64 KiB", path);
            return -EINVAL;
        }
    }
    close(fd);
    if (n < 16) {
        snprintf(err, errlen, "key file %s holds %zu bytes; a key needs at least 16 (make one "
                 "with `coord keygen FILE`)", path, n);
        return -EINVAL;
    }
    ck_key_from_bytes(buf, n, k);
    sodium_memzero(buf, n);
    return 0;
}

int ck_key_generate(const char *path, char *err, size_t errlen)
{
    uint8_t key[32];
    randombytes_buf(key, sizeof key);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(e));
        return -e;
    }
    int ok = write(fd, key, sizeof key) == (ssize_t)sizeof key && fsync(fd) == 0;
    int e = errno;
    close(fd);
    sodium_memzero(key, sizeof key);
    if (!ok) {
        unlink(path);
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

void ck_key_wipe(struct ck_key *k)
{
    sodium_memzero(k, sizeof *k);
}

void ck_rec_digest(const struct ck_rec *rec, const void *payload, uint8_t out[CK_DIGEST_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, CK_DIGEST_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)rec, sizeof *rec);
    crypto_generichash_update(&st, payload, rec->len);
    crypto_generichash_final(&st, out, CK_DIGEST_BYTES);
}

void ck_auth_mac(const struct ck_key *k, const struct ck_header *h, const uint8_t *digests,
                 uint64_t ndigests, uint8_t out[CK_DIGEST_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, k->mac, sizeof k->mac, CK_DIGEST_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)h, sizeof *h);
    crypto_generichash_update(&st, digests, ndigests * CK_DIGEST_BYTES);
    crypto_generichash_final(&st, out, CK_DIGEST_BYTES);
}

void ck_auth_mac_bytes(const struct ck_key *k, const void *buf, size_t len,
                       uint8_t out[CK_DIGEST_BYTES])
{
    crypto_generichash(out, CK_DIGEST_BYTES, buf, len, k->mac, sizeof k->mac);
}

void ck_crypt_payload(const struct ck_key *k, const struct ck_header *h, const struct ck_rec *rec,
                      void *payload)
{
    uint8_t in[16 + 4 + 8 + 8], nonce[crypto_stream_xchacha20_NONCEBYTES];
    memcpy(in, h->nonce, 16);
    memcpy(in + 16, &rec->type, 4);
    memcpy(in + 20, &rec->arg, 8);
    memcpy(in + 28, &rec->arg2, 8);
    crypto_generichash(nonce, sizeof nonce, in, sizeof in, NULL, 0);
    crypto_stream_xchacha20_xor(payload, payload, rec->len, nonce, k->enc);
}

static int read_full(int fd, void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EBADMSG;
        done += (size_t)r;
    }
    return 0;
}

int ck_image_authenticate(int fd, const struct ck_key *k, char *err, size_t errlen)
{
    return ck_image_authenticate_at(fd, 0, k, NULL, err, errlen);
}

int ck_image_authenticate_at(int fd, uint64_t base, const struct ck_key *k,
                             uint8_t mac_out[CK_DIGEST_BYTES], char *err, size_t errlen)
{
    struct ck_header h;
    int r = read_full(fd, &h, sizeof h, base);
    if (r < 0) {
        snprintf(err, errlen, "cannot read the image header");
        return -EBADMSG;
    }
    if (!(h.flags & CK_HF_MAC)) {
        snprintf(err, errlen, "the image is not authenticated (taken without a key), but a key "
                 "was given: refusing it");
        return -ENOKEY;
    }
    if (sodium_memcmp(h.key_id, k->id, sizeof k->id) != 0) {
        snprintf(err, errlen, "the image was authenticated with another key");
        return -EKEYREJECTED;
    }
    uint64_t off = base + sizeof h, n = 0, cap = 1024;
    uint8_t *dig = malloc(cap * CK_DIGEST_BYTES), *buf = NULL;
    size_t bufcap = 0;
    r = -EBADMSG;
    if (!dig) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (;;) {
        struct ck_rec rec;
        if (read_full(fd, &rec, sizeof rec, off) < 0) {
            snprintf(err, errlen, "the image is truncated at byte %llu (authentication failed)",
                     (unsigned long long)(off - base));
            goto out;
        }
        if (rec.len > (256ULL << 20)) {
            snprintf(err, errlen, "implausible record length at byte %llu (image modified?)",
                     (unsigned long long)(off - base));
            goto out;
        }
        if (rec.len > bufcap) {
            free(buf);
            bufcap = rec.len;
            buf = malloc(bufcap);
            if (!buf) {
                snprintf(err, errlen, "out of memory");
                r = -ENOMEM;
                goto out;
            }
        }
        if (rec.len && read_full(fd, buf, rec.len, off + sizeof rec) < 0) {
            snprintf(err, errlen, "the image is truncated at byte %llu (authentication failed)",
                     (unsigned long long)(off - base + sizeof rec));
            goto out;
        }
        if (rec.type == CK_REC_AUTH) {
            uint8_t mac[CK_DIGEST_BYTES];
            if (rec.len != (n + 1) * CK_DIGEST_BYTES ||
                sodium_memcmp(buf, dig, (size_t)(n * CK_DIGEST_BYTES)) != 0) {
                snprintf(err, errlen, "the image was modified (a record does not match its "
                         "authenticated digest)");
                goto out;
            }
            ck_auth_mac(k, &h, dig, n, mac);
            if (sodium_memcmp(mac, buf + n * CK_DIGEST_BYTES, sizeof mac) != 0) {
                snprintf(err, errlen, "the image was modified (authentication failed)");
                goto out;
            }
            if (mac_out)
                memcpy(mac_out, mac, sizeof mac);
            r = 0;
            goto out;
        }
        if (rec.type == CK_REC_END) {
            snprintf(err, errlen, "the image has no AUTH record (modified?)");
            goto out;
        }
        if (n == cap) {
            uint8_t *nd = realloc(dig, 2 * cap * CK_DIGEST_BYTES);
            if (!nd) {
                snprintf(err, errlen, "out of memory");
                r = -ENOMEM;
                goto out;
            }
            dig = nd;
            cap *= 2;
        }
        ck_rec_digest(&rec, buf, dig + n * CK_DIGEST_BYTES);
        n++;
        off += sizeof rec + rec.len;
    }
out:
    free(dig);
    free(buf);
    return r;
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    uint8_t *nb = realloc(*buf, need);
    if (!nb)
        return -1;
    *buf = nb;
    *cap = need;
    return 0;
}

int ck_rec_load(int fd, const struct ck_rec_loc *l, const struct ck_key *key,
                const struct ck_header *h, unsigned flags, struct ck_recbuf *b)
{
    const struct ck_rec *rec = &l->rec;
    if (grow(&b->in, &b->incap, rec->len + 1) < 0 ||
        (!(flags & CK_LOAD_RAW) && grow(&b->out, &b->outcap, rec->raw_len + 1) < 0) ||
        read_full(fd, b->in, rec->len, l->offset) < 0)
        return -1;
    if (!(flags & CK_LOAD_PLAIN)) {
        if (ck_rec_checksum(rec, b->in) != rec->checksum)
            return -1;
        if (key)
            ck_crypt_payload(key, h, rec, b->in);
    }
    if (flags & CK_LOAD_RAW)
        return 0;
    return ck_chunk_decode(rec->flags, b->in, rec->len, b->out, rec->raw_len) < 0 ? -1 : 0;
}

void ck_recbuf_free(struct ck_recbuf *b)
{
    free(b->in);
    free(b->out);
    memset(b, 0, sizeof *b);
}
