/* fileid.h - what makes a file "the same file" between a checkpoint and a
 * restore, and opening user-given paths without blocking.
 *
 * Identity (recorded at checkpoint for every file the program has open or
 * mapped, checked by coord at restore): file type, size, mtime, and, for
 * files the program only reads, a content hash (XXH64, chained over 1 MiB
 * reads with the size as the first seed: the whole file up to
 * CK_HASH_WHOLE_MAX, CK_HASH_SAMPLES spread blocks of 1 MiB beyond). The
 * device, inode and ctime are only a shortcut on the same machine: when
 * all three and the size and mtime match, the file was not written since
 * (ctime cannot be set back), and it is not read again. On another machine
 * (migration) the content decides. A file the program writes itself
 * (CK_HASH_WRITTEN) may have changed through the program: it is refused
 * only if it is shorter, or another inode on the same machine.
 *
 * Shared by the shim (hashes computed by the forked writer, not while the
 * program is paused) and coord. No heap: buffers are mmap'd.
 */
#ifndef CKSHIM_FILEID_H
#define CKSHIM_FILEID_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CK_HASH_NONE 0                  /* not hashed (unreadable) */
#define CK_HASH_WHOLE 1                 /* every byte */
#define CK_HASH_SAMPLED 2               /* CK_HASH_SAMPLES blocks of 1 MiB */
#define CK_HASH_WRITTEN 3               /* not hashed: the program writes the file itself */
/* Written files saved at their checkpoint version (fds/file.c, "Files at
 * their checkpoint version" in docs/DESIGN.md); all are written files
 * (ck_hash_written). Only on descriptors, never on regions. */
#define CK_HASH_VER_LENGTH 4            /* only appended to (O_APPEND): size is the
                                           length to cut it back to, hash the XXH64 of
                                           the CK_VER_TAIL bytes before it */
#define CK_HASH_VER_CONTENT 5           /* contents in FILEDATA records (arg: the fd) */
#define CK_HASH_VER_TOOBIG 6            /* larger than the limit: not saved, used as it
                                           is at restore (a note at checkpoint) */
#define CK_VER_TAIL (64u << 10)
#define CK_VER_MAX_DEFAULT (16ULL << 20) /* CKSHIM_FILE_VERSION_MAX */
static inline int ck_hash_written(uint32_t kind)
{
    return kind >= CK_HASH_WRITTEN;
}
#define CK_HASH_WHOLE_MAX (64ULL << 20)
#define CK_HASH_SAMPLES 16
#define CK_HASH_BLOCK (1u << 20)

/* A file the program maps that is at most this big, the user's own, and
 * under a temporary directory (/tmp, /var/tmp, /dev/shm, $TMPDIR) is saved
 * in the image and recreated at restore if it is gone (CK_REG_SAVED): such
 * files are often removed by others (a new JVM deletes the hsperfdata
 * files of JVMs it believes dead). */
#define CK_SAVE_MAX (1u << 20)

/* The directory part of path into dir: "." for a bare name, "/" for
 * "/name". */
void ck_dir_of(const char *path, char *dir, size_t len);

/* A small file (/proc) read whole into buf, NUL-terminated, without
 * allocating: its length, or -errno. At most cap - 1 bytes. */
int ck_read_file(const char *path, char *buf, size_t cap);

/* fsync a directory, to make a rename or a new entry in it durable.
 * Returns 0 (also where the file system cannot: EINVAL) or -errno. */
int ck_fsync_dir(const char *dir);

/* Is path under one of those temporary directories? (No heap; tmpdir is
 * $TMPDIR or NULL.) */
int ck_in_temp_dir(const char *path, const char *tmpdir);

/* Content hash of the open regular file fd of size bytes; *kind gets
 * CK_HASH_WHOLE or CK_HASH_SAMPLED, or CK_HASH_NONE if it cannot be read
 * (or ends early). */
uint64_t ck_file_hash(int fd, uint64_t size, uint32_t *kind);

/* "a FIFO", "a directory", ... for messages. */
const char *ck_file_type_name(mode_t mode);

/* Open a user-given path that must be a regular file, without blocking on
 * a FIFO or device: O_NONBLOCK for the open (cleared again after), then
 * fstat. Returns the fd (O_CLOEXEC), or -1 with the reason in err ("No
 * such file or directory", "is a FIFO, not a regular file"). flags: O_RDONLY, O_RDWR, ... */
int ck_open_regular(const char *path, int flags, char *err, size_t errlen);

#endif
