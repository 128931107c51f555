/* auth.h - authenticated and encrypted images (libsodium).
 *
 * A key file (any file of at least 16 bytes, e.g. from `coord keygen`)
 * gives a 32-byte master key = BLAKE2b(file contents); from it, keyed
 * BLAKE2b derives a MAC key, an encryption key and an 8-byte key id stored
 * in the header (so a wrong key is told apart from a modified image).
 *
 * With CK_HF_MAC, the writer keeps a BLAKE2b-256 digest of every record
 * (its 48-byte header, checksum included, then its payload) and writes,
 * just before END, an AUTH record: the digests in order, then
 * MAC = BLAKE2b-256 keyed with the MAC key over (image header || digests).
 * Changing, adding, dropping or reordering any byte of the header or of any
 * record before AUTH breaks the MAC. END only repeats totals.
 *
 * With CK_HF_ENCRYPTED, PAGES and FILEDATA payloads are XChaCha20-encrypted
 * after compression (the record checksum and digest cover the ciphertext),
 * with nonce = BLAKE2b-192(header nonce base || type || arg || arg2), unique
 * per record. Metadata (regions, fds, threads) stays readable for inspect.
 */
#ifndef CKSHIM_AUTH_H
#define CKSHIM_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

#define CK_DIGEST_BYTES 32

struct ck_key {
    uint8_t mac[32];
    uint8_t enc[32];
    uint8_t id[8];
};

/* Call once before anything else here (thread safe). 0 or -1. */
int ck_auth_init(void);

/* Derive a key from the bytes of a key file. */
void ck_key_from_bytes(const void *bytes, size_t len, struct ck_key *k);

/* Read a key file (>= 16 bytes, <= 64 KiB). Returns 0 or -errno with a
 * message in err. */
int ck_key_load(const char *path, struct ck_key *k, char *err, size_t errlen);

/* Write 32 random bytes to a new file (0600); refuses to overwrite. */
int ck_key_generate(const char *path, char *err, size_t errlen);

/* Wipe a key from memory. */
void ck_key_wipe(struct ck_key *k);

/* Digest of one record as written (header with its checksum, payload). */
void ck_rec_digest(const struct ck_rec *rec, const void *payload, uint8_t out[CK_DIGEST_BYTES]);

/* MAC over the image header and the digests of all records before AUTH. */
void ck_auth_mac(const struct ck_key *k, const struct ck_header *h, const uint8_t *digests,
                 uint64_t ndigests, uint8_t out[CK_DIGEST_BYTES]);

/* Encrypt or decrypt (the same XOR) one PAGES/FILEDATA payload in place;
 * rec gives type, arg, arg2 and len. */
void ck_crypt_payload(const struct ck_key *k, const struct ck_header *h, const struct ck_rec *rec,
                      void *payload);

/* Read the whole image at fd (from offset 0) and check it against the
 * key: key id, every record's digest, the MAC. Returns 0, -EKEYREJECTED
 * (another key), -EBADMSG (modified or truncated), -ENOKEY (image not
 * authenticated) or another -errno, with a message in err. */
int ck_image_authenticate(int fd, const struct ck_key *k, char *err, size_t errlen);

/* The same for the image stream that starts at byte base of fd (one
 * process of a process tree image); with mac, the stream's MAC (checked)
 * is copied there, for the tree header's MAC, which covers it. */
int ck_image_authenticate_at(int fd, uint64_t base, const struct ck_key *k,
                             uint8_t mac[CK_DIGEST_BYTES], char *err, size_t errlen);

/* Keyed BLAKE2b (the MAC key) of len bytes: the MAC of a process tree
 * image's header (coordinator/tree.c). */
void ck_auth_mac_bytes(const struct ck_key *k, const void *buf, size_t len,
                       uint8_t out[CK_DIGEST_BYTES]);

/* One record's payload, read the one way every reader in coord reads
 * them: from l->offset of fd, its checksum checked, decrypted (key: the
 * image is encrypted, h its header) and decoded into b->out (raw_len
 * bytes). b's buffers grow as needed (free them with ck_recbuf_free).
 * Returns 0, or -1 if the record cannot be read, is damaged or does not
 * decode. */
struct ck_rec_loc;
struct ck_recbuf {
    uint8_t *in, *out;
    size_t incap, outcap;
};
#define CK_LOAD_PLAIN 0x1               /* the payload was decrypted in place already
                                           (coord's sealed copy): no checksum (it is of the
                                           ciphertext; the MAC vouched for it), no decryption */
#define CK_LOAD_RAW 0x2                 /* read, check and decrypt only: the payload in b->in */
int ck_rec_load(int fd, const struct ck_rec_loc *l, const struct ck_key *key,
                const struct ck_header *h, unsigned flags, struct ck_recbuf *b);
void ck_recbuf_free(struct ck_recbuf *b);

#endif
