/* chunk.h - encode and decode one record payload (LZ4 block or raw).
 * Encoding (chunk.c) uses liblz4; ck_chunk_decode() lives in lz4dec.c
 * so the freestanding restorer can use it. */
#ifndef CKSHIM_CHUNK_H
#define CKSHIM_CHUNK_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of dst needed to encode n bytes in the worst case. */
size_t ck_chunk_bound(size_t n);

/* Compress n bytes at src into dst (cap bytes, at least ck_chunk_bound(n)).
 * If LZ4 does not make the data smaller, the bytes are copied as they are.
 * Sets *ret_flags to CK_RF_LZ4 or CK_RF_RAW and *ret_len to the stored
 * length. Needs no heap: the LZ4 state lives in state, which must hold
 * ck_chunk_state_size() bytes, aligned to 8. Returns 0 or -EINVAL. */
size_t ck_chunk_state_size(void);
int ck_chunk_encode(void *state, const void *src, size_t n, void *dst, size_t cap,
                    uint32_t *ret_flags, size_t *ret_len);

/* Decode a payload stored with flags (CK_RF_LZ4 or CK_RF_RAW) into dst,
 * which must receive exactly raw_len bytes. Returns 0, or -EINVAL when the
 * payload is malformed or does not decode to exactly raw_len bytes. */
int ck_chunk_decode(uint32_t flags, const void *src, size_t len, void *dst, size_t raw_len);

#endif
