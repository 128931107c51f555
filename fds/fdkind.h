/* fdkind.h - one file per kind of descriptor, capture and restore side by side.
 *
 * Every fds/<kind>.c holds how one kind of descriptor is recognised and
 * saved (run by the shim, inside the program, on the manager thread while
 * every other thread is parked) and how it is made again (run by coord,
 * which then execs the restorer and becomes the program). Both build
 * products link every file of this folder: build/libshim.so and
 * build/coord. So the code here uses libc only: what it needs from the
 * shim or from coord comes through the context structs below, filled by
 * preload/fdcap.c and coordinator/restore.c.
 *
 * Adding a kind: its CK_FD_* (and its state struct, if it has one) in
 * common/image.h, fds/<kind>.c with a `const struct ck_fdkind`, and one
 * line in fds/kinds.c.
 *
 * Capture side rules (a signal handler in the program): no malloc, no
 * stdio streams, no locks; snprintf, open, read, ioctl, getsockopt, recv
 * with MSG_PEEK and the like are fine. Restore side: ordinary coord code.
 */
#ifndef CKSHIM_FDKIND_H
#define CKSHIM_FDKIND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "image.h"
#include "procparse.h"

struct ck_image;

/* One descriptor being captured. */
struct ck_fdcap {
    int fd;
    struct ck_fd *f;                    /* fd, oflags, fdflags, pos, mode, dev, ino,
                                           size, mtime_ns, ctime_ns filled; kind 0 */
    const struct stat *st;
    char *target;                       /* the /proc/self/fd link (CK_PATH_MAX
                                           bytes, editable) */
    const char *path;                   /* saved as the fd's path; target unless set */
    const char *info;                   /* /proc/self/fdinfo text */
    int infolen;
    const struct ck_fdinfo *fi;         /* info parsed */
    /* A socket's address family (SO_DOMAIN, asked once for every socket
     * kind), -1 for anything else. A socket's target is built from its
     * inode ("socket:[ino]", what the link says), and its fdinfo is not
     * read (info "", fi: flags from fcntl, pos 0, scm_fds -1, or 0 for a
     * unix socket) unless it holds a file lock or is a unix socket with
     * something to read: /proc costs more than all the rest of a socket's
     * capture. */
    int family;
    /* The socket's own address (getsockname, which told the family), or
     * namelen 0 if not known. */
    const struct sockaddr_storage *name;
    unsigned int namelen;
    /* A socket the shim saw the program make in this process and has
     * followed since (preload/socktrack.c): sock_type and sock_protocol
     * are what SO_TYPE and SO_PROTOCOL would say (0: not known, ask);
     * sock_set: the groups of options the program set on it
     * (ck_sockopt_group bits; all ones when not known). An option of a
     * group never set is the kernel's default for its kind, read once per
     * checkpoint from a new socket of that kind instead of from it. */
    int sock_type, sock_protocol;
    uint64_t sock_set;
    /* This capture's number (kinds keep state per checkpoint) and every
     * descriptor it takes, in order (nall grows when descriptors in
     * flight are found). */
    uint32_t gen;
    const int *all;
    const int *nall;
    char *err;                          /* why the checkpoint is refused: name the
                                           fd, its kind and path */
    size_t errlen;
    /* The shim's services. state: this fd's FDSTATE entry (once); bytes:
     * appended to the fd's saved bytes (FILEDATA records with arg = fd,
     * arg2 = offset). Both copy; -errno on failure (err set). */
    int (*state)(struct ck_fdcap *c, const void *data, size_t len);
    int (*bytes)(struct ck_fdcap *c, const void *data, size_t len);
    /* vtid_of: the id the program knows its thread tid by (ids it saw
     * before a restore), or 0 if tid is none of its threads. */
    int (*vtid_of)(struct ck_fdcap *c, int tid);
    /* vpid_of: the pid the program knows another process by (a process
     * of a restored tree has a new one); tree: one process of a tree
     * checkpoint (coord checks what it names is in the tree). */
    int (*vpid_of)(struct ck_fdcap *c, int pid);
    int tree;
    /* nopeek: one process of a tree, and another process of it holding
     * this very socket (inherited across fork) saves its queue: leave the
     * queue alone (the holders share one SO_PEEK_OFF; coord keeps the
     * saver's entry). */
    int nopeek;
    /* tty: keep this terminal's modes and window size (the TTYS record:
     * restore puts them on a new pseudo-terminal pair, the shim on the
     * terminal a standard descriptor comes back on). */
    void (*tty)(struct ck_fdcap *c);
    void *priv;
};

/* Every descriptor captured: a kind's second look (pairing ends). */
struct ck_fdcap_set {
    struct ck_fd *fds;
    uint32_t n;
    char *err;
    size_t errlen;
    const char *(*path)(struct ck_fdcap_set *s, uint32_t i);
    void *(*state)(struct ck_fdcap_set *s, uint32_t i, size_t *len); /* editable; NULL if
                                                                        none */
    int (*bytes)(struct ck_fdcap_set *s, uint32_t i, const void *data, size_t len);
    /* In `resumed` (after a restore; state and bytes are NULL there):
     * the thread's id now of the one the program knows as vtid, or 0. */
    int (*tid_of)(struct ck_fdcap_set *s, int vtid);
    /* pid_of: the pid now of the process the program knows as vpid. */
    int (*pid_of)(struct ck_fdcap_set *s, int vpid);
    int tree;                           /* one process of a tree checkpoint: the other
                                           end of a pipe may be another process of it */
    int (*nopeek)(int fd);              /* ck_fdcap.nopeek of fd; NULL: never */
    /* Written files at their checkpoint version (file.c): off (0) with
     * --no-file-versions or CKSHIM_FILE_VERSIONS=0; shared: the files not
     * to save, by (dev, ino) (--shared-file, CKSHIM_SHARED_FILES);
     * version_max: the largest file whose contents are saved. */
    int versions;
    const uint64_t (*shared)[2];
    uint32_t nshared;
    uint64_t version_max;
    void *priv;
};

/* One descriptor being restored (or checked before the restore). */
struct ck_fdrest {
    const struct ck_image *im;
    uint32_t i;                         /* index into im->fds */
    const struct ck_fd *f;
    const char *path;
    const void *state;                  /* this fd's FDSTATE payload, or NULL */
    size_t state_len;
    int *stash;                         /* per index: an fd made early, kept above
                                           maxfd until its turn, or -1 */
    int maxfd;                          /* the highest number anything uses */
    int detach;                         /* coord restore --detach */
    int oflags;                         /* f->oflags for open(): without O_CREAT,
                                           O_TRUNC, O_EXCL, O_CLOEXEC */
    char *err;
    size_t errlen;
    /* coord's services. bytes: every saved byte of image fd `fd`, in a
     * malloc'd buffer (NULL, 0 if none); -1 with err set if unreadable. */
    int (*bytes)(struct ck_fdrest *r, int fd, uint8_t **data, size_t *len);
    const void *(*state_of)(struct ck_fdrest *r, uint32_t i, size_t *len);
    /* check_path (in check): is r->path still the file r->f describes
     * (fileident.h: same inode, size, times; a changed one passes with
     * --allow-changed PATH, with a warning)? 0, or -1 refused (err set).
     * It remembers the file it saw for reopen. */
    int (*check_path)(struct ck_fdrest *r);
    /* reopen: image fd i's path opened again with oflags, only if it is
     * the very file check_path saw (never through a symbolic link, without
     * blocking unless oflags has O_NONBLOCK); the fd, or -1 (err set). */
    int (*reopen)(struct ck_fdrest *r, uint32_t i, int oflags);
    /* std: for a standard descriptor whose terminal or outside pipe cannot
     * come back (CK_FDF_STD_REDIRECT): coord's own fd f->fd, or /dev/null
     * with --detach; -1 with errno set. */
    int (*std)(struct ck_fdrest *r);
    /* chunks: each saved record of image fd `fd` (FILEDATA, arg = fd) in
     * image order, decoded, given to fn with its offset (arg2: a deleted
     * file's holes are not saved); 0, -1 with err set if a record is
     * unreadable, or fn's negative return (err not set). */
    int (*chunks)(struct ck_fdrest *r, int fd,
                  int (*fn)(void *arg, uint64_t off, const uint8_t *data, size_t len), void *arg);
    /* A process of a restored tree: the pipe (dev, ino) made once for the
     * whole tree, already holding its bytes (an O_RDWR description that
     * the caller must not close), or -1 if the pipe is this process's
     * alone. NULL outside a tree. */
    int (*tree_pipe)(struct ck_fdrest *r, uint64_t dev, uint64_t ino);
    /* a process tree: the new master of pseudo-terminal ptn (its number
     * at checkpoint), made once for the processes that hold its master
     * and slaves, or -1 */
    int (*tree_pty)(struct ck_fdrest *r, uint64_t ptn);
    int for_tree;                       /* made before the forks, for the tree's
                                           processes: not in the process itself */
    /* A process of a restored tree: a descriptor of the deleted file or
     * memfd f (its kind, dev, ino) coord made once for the tree, with
     * another open file description (the caller reopens it through
     * /proc/self/fd and must not close it), or -1. NULL outside a tree. */
    int (*tree_file)(struct ck_fdrest *r, const struct ck_fd *f);
    void *priv;
};

struct ck_fdkind {
    uint32_t kind;                      /* CK_FD_* */
    const char *name;                   /* "eventfd", "unix socket", ... */
    /* 1: this fd is of the kind and was captured (f->kind set); 0: not of
     * the kind; negative: the checkpoint is refused (err set). NULL for a
     * kind that another kind's capture recognises (file.c's takes
     * directories, devices, deleted files and memfds). */
    int (*capture)(struct ck_fdcap *c);
    int (*finish)(struct ck_fdcap_set *s);  /* optional */
    int (*check)(struct ck_fdrest *r);      /* optional: at restore, before anything
                                               changes; negative refuses (err set) */
    int (*restore)(struct ck_fdrest *r);    /* a new fd (coord moves it to f->fd), or
                                               -1 (err set) */
    int (*after)(struct ck_fdrest *r);      /* optional: once every fd is in place */
    int (*after_all)(struct ck_fdrest *r);  /* optional: once every kind's `after` has
                                               run (epoll re-adds its watches on the
                                               finished descriptors) */
    int (*resumed)(struct ck_fdcap_set *s); /* optional: in the program (the shim),
                                               after a restore, once its threads are
                                               back and before it runs; negative ends
                                               it (err set) */
    void (*describe)(const struct ck_fd *f, const void *state, size_t len, char *out,
                     size_t outlen);         /* optional: coord inspect's line */
};

extern const struct ck_fdkind *const ck_fdkinds[];  /* NULL-terminated */

const struct ck_fdkind *ck_fdkind_of(uint32_t kind);

/* An epoll watch list (a CK_FD_EPOLL descriptor's path): the number of a
 * watch whose file no descriptor of its process held at the checkpoint
 * (possible in one process of a tree only: fds/epoll.c), or -1. */
int ck_epoll_unheld(const char *watches);

/* A pipe (descriptor f of process i of a tree of n processes, whose
 * images get(j, ctx) gives) that the tree holds both ends of: another
 * process of the tree holds it too, and one of them reads it and one
 * writes it, or its writers are all gone. Else its other end is outside
 * (`coord run -- prog | cat`: every process of the tree writes it).
 * fds/pipe.c. */
int ck_pipe_tree_joined(int n, int i, const struct ck_fd *f,
                        const struct ck_image *(*get)(int j, void *ctx), void *ctx);

/* removed.c: FIFOs, directories and symbolic links the program held but
 * had removed, made again and removed at once (restore side). */
const char *ck_remake_dir(const char *path, char *dir, size_t len);
int ck_remake_removed(const char *path, mode_t type, int mode, const char *link, int oflags);

/* procdead.c: /proc entries of processes that have exited. split: the
 * pid of "/proc/PID[/rest]" (not of a task, no "..") and where rest starts, or -1;
 * child: a child that waits until *release is closed (release: closes it
 * and reaps the child); path: the same entry of the child. */
long ck_procdead_split(const char *path, const char **rest);
int ck_path_climbs(const char *path);   /* has a ".." component */
pid_t ck_procdead_child(int *release);
void ck_procdead_release(pid_t child, int release);
int ck_procdead_path(char *out, size_t len, pid_t child, const char *rest);
int ck_remake_check(struct ck_fdrest *r, const char *what);

/* deleted.c: file.c's capture asks it about each regular file. */
int ck_deleted_capture(struct ck_fdcap *c, int deleted);

/* epoll.c: watches through fd added again, after the shim replaced its
 * file (a stand-in pidfd) */
int ck_epoll_rewatch(struct ck_fdcap_set *s, int fd);

#endif
