/* lz4dec.h - LZ4 block decoder, freestanding (no libc), bounds-checked.
 * The restorer uses it to fill memory straight from the image; coord and
 * the tests use it too, so one decoder is fuzzed and trusted. */
#ifndef CKSHIM_LZ4DEC_H
#define CKSHIM_LZ4DEC_H

#include <stddef.h>
#include <stdint.h>

/* Decode one LZ4 block (the raw block format, no frame) of srclen bytes
 * into dst, which has room for dstcap bytes. Never reads outside
 * [src, src+srclen) nor writes outside [dst, dst+dstcap), whatever the
 * input. Returns the number of bytes written, or -1 on malformed input. */
long ck_lz4_decode(const uint8_t *src, size_t srclen, uint8_t *dst, size_t dstcap);

#endif
