/* fileident.h - is the file at a path still the file the image recorded?
 * (coord restore; the rules are in common/fileid.h.) */
#ifndef CKSHIM_FILEIDENT_H
#define CKSHIM_FILEIDENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "image.h"

struct ck_ident {
    uint32_t mode;                      /* st_mode (only its type is compared) */
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
    uint64_t hash;
    uint32_t hash_kind;                 /* CK_HASH_* */
    int content;                        /* compare size, mtime, hash (regular files) */
    int same_host;                      /* restoring where the image was taken: a new
                                           inode on the same device is another file */
    int version;                        /* a written file restore puts back at its
                                           checkpoint version: CK_HASH_VER_LENGTH (cut
                                           back) or CK_HASH_VER_CONTENT (rewritten: may
                                           be shorter now), else 0 */
};

void ck_ident_of_region(const struct ck_region *r, struct ck_ident *id);
void ck_ident_of_fd(const struct ck_fd *f, struct ck_ident *id);

enum {
    CK_ID_SAME = 0,                     /* what may hold a note ("mtime changed, content
                                           the same") */
    CK_ID_CHANGED = 1,                  /* what says how: "size 1200 -> 900, mtime changed" */
    CK_ID_TYPE = 2,                     /* what: "is now a FIFO (was a regular file)" */
};

/* Look at path (never following a symbolic link in its last component,
 * never opening it in a way that could block) and compare it with id.
 * Returns CK_ID_*, with st filled, or -1 with errno set (ENOENT: gone). */
int ck_ident_check(const char *path, const struct ck_ident *id, struct stat *st, char *what,
                   size_t len);

#endif
