/* fuzzlib.h - what the libFuzzer targets (fuzz_image.c, fuzz_tree.c)
 * share: the memfd each input is read from, and the fixed key that
 * authenticated inputs are checked with. Static inline: a target's seed
 * program, built without libsodium, uses neither. */
#ifndef CKSHIM_FUZZLIB_H
#define CKSHIM_FUZZLIB_H

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "auth.h"

/* The input in a memfd (made on the first call, called name), the
 * offset back at 0. Returns the memfd. */
static inline int fuzz_load(const char *name, const uint8_t *data, size_t size)
{
    static int fd = -1;
    if (fd < 0 && (fd = memfd_create(name, MFD_CLOEXEC)) < 0)
        abort();
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size ||
        lseek(fd, 0, SEEK_SET) != 0)
        abort();
    return fd;
}

/* The key MACs are checked with (made on the first call). */
static inline const struct ck_key *fuzz_key(void)
{
    static struct ck_key key;
    static int have_key;
    if (!have_key) {
        if (ck_auth_init() < 0)
            abort();
        ck_key_from_bytes("fuzz key of sixteen+ bytes", 26, &key);
        have_key = 1;
    }
    return &key;
}

#endif
