/* xxh64.h - XXH64 checksum, freestanding (no libc), written from the
 * published algorithm description. Used for every header, record and chunk. */
#ifndef CKSHIM_XXH64_H
#define CKSHIM_XXH64_H

#include <stddef.h>
#include <stdint.h>

/* One-shot XXH64 of len bytes at p with the given seed. */
uint64_t ck_xxh64(const void *p, size_t len, uint64_t seed);

#endif
