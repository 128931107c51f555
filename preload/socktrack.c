/* socktrack.c - the sockets whose options, owner and locks are still the
 * kernel's defaults, so a checkpoint need not ask.
 *
 * A checkpoint asks every socket some 25 options, its owner and signal
 * (F_GETOWN_EX, F_GETSIG) and, through /proc/locks, its file locks: any
 * may have been set, and nothing tells in bulk. Reading /proc/locks alone
 * waits for an RCU grace period in the kernel (its lock is a per-CPU
 * rwsem taken for writing): 8-30 ms on this VM, whatever the count.
 * But the program sets these only through a few calls, which the shim
 * wraps. So the shim notes each socket it sees made, with its inode,
 * family, type and protocol:
 *   socket, socketpair             a new socket: nothing set
 *   accept, accept4                inherits the listener's options (the
 *                                  kernel copies them), not its owner or
 *                                  locks
 * and marks what the program changes on it since:
 *   setsockopt                      ST_OPTS, and the group of the option
 *                                   (fds/socket.h, ck_sockopt_group)
 *   bind, connect of IPv6, listen;  ST_OPTS, the groups of what the kernel
 *   accept of TCP                   sets itself then (V6ONLY, interface,
 *                                   hop limit, TCP_FASTOPEN, TOS)
 *   fcntl F_SETOWN/_EX, F_SETSIG,   ST_OWNER
 *   ioctl FIOSETOWN, SIOCSPGRP
 *   flock, lockf, fcntl locks       ST_LOCK
 *   fcntl F_SETFL/F_SETFD, ioctl    ST_FLAGS (else O_NONBLOCK and
 *   FIONBIO/FIOASYNC/FIOCLEX/...    FD_CLOEXEC are what it was made with)
 * A socket that another process can reach is forgotten: one copy by dup
 * (dup, dup2, dup3, F_DUPFD: the copy is not followed, the original is
 * marked ST_ALL), one sent with SCM_RIGHTS (sendmsg, sendmmsg: ST_ALL),
 * and every socket at all when a process is made (fork through atfork,
 * vfork, _Fork, clone, posix_spawn, system, popen: counted before and
 * after), when pidfd_getfd copies a descriptor, or when the program makes
 * one of these calls through syscall() (syscall.S): the whole table is
 * dropped by one increment of its generation. A restore drops it too
 * (the restored sockets were made by coord, their inodes are new).
 *
 * At checkpoint capture_fds asks socktrack_get with the inode fstat gave:
 * an entry counts only if its generation is the current one and its inode
 * is the descriptor's (so a number closed and reused without the shim
 * seeing it, by fclose or libc inside, never passes for the old socket).
 * Known means: the socket kind need not ask type and protocol; without
 * ST_OPTS its options are the kernel's defaults for its kind (fds/socket.c
 * reads them once per checkpoint from a new socket of that kind); without
 * ST_OWNER it has no owner and no signal; without ST_LOCK it holds no
 * file lock (and /proc/locks is not read for it).
 *
 * What the shim cannot see: a raw system call that is not made through
 * libc's functions or syscall() (inline assembly; Go's runtime makes its
 * sockets with raw calls, which are then never known; a program that
 * changes sockets that way runs with CKSHIM_NO_SOCKTRACK=1), io_uring's
 * SETSOCKOPT (a ring is refused at checkpoint), another process that
 * takes a descriptor with pidfd_getfd, and a socket another thread makes
 * without SOCK_CLOEXEC while a vfork child has not exec'd yet.
 * docs/DESIGN.md, "Sockets the shim saw made".
 *
 * Threads: one entry per descriptor number, written by the thread that
 * made or changed that descriptor; marks are atomic ORs, the generation
 * an atomic counter. The table is read while every other thread is
 * parked; a thread parked inside a wrapper has either not made its call
 * yet (the mark comes first) or has not noted its new socket yet (then it
 * is unknown, and read the long way). */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "socket.h"

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif

struct st_ent {
    uint64_t ino;
    uint64_t optset; /* the groups of options set (ck_sockopt_group) */
    uint32_t gen;
    uint16_t protocol;
    uint8_t family, type;
    uint8_t flags; /* ST_* */
    uint8_t fl; /* STF_*: O_NONBLOCK and FD_CLOEXEC as made (until ST_FLAGS) */
};

#define ST_CHUNK 1024
#define ST_MAX_FD (1 << 20)
static struct st_ent *st_dir[ST_MAX_FD / ST_CHUNK];

/* Entries of an older generation are forgotten (syscall.S increments it
 * too). An entry with inode 0 (zeroed, closed, being written) is never
 * current. */
uint32_t shim_socktrack_gen = 1;
static int st_live;           /* a socket was ever noted */
static int st_off;            /* CKSHIM_NO_SOCKTRACK=1: never note one */
static volatile int st_quiet; /* the shim's own calls (capture) */

static int (*real_socket)(int, int, int);
static int (*real_socketpair)(int, int, int, int[2]);
static int (*real_setsockopt)(int, int, int, const void *, socklen_t);
static int (*real_flock)(int, int);
static int (*real_lockf)(int, int, off_t);
static int (*real_lockf64)(int, int, off_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static int (*real_sendmmsg)(int, struct mmsghdr *, unsigned int, int);
static int (*real_posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                               const posix_spawnattr_t *, char *const[], char *const[]);
static int (*real_posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                                const posix_spawnattr_t *, char *const[], char *const[]);
static int (*real_system)(const char *);
static FILE *(*real_popen)(const char *, const char *);
static int (*real_clone)(int (*)(void *), void *, int, void *, ...);
static pid_t (*real__Fork)(void);
static int (*real_pidfd_getfd)(int, int, unsigned int);
static int (*real_bind)(int, const struct sockaddr *, socklen_t);
static int (*real_connect)(int, const struct sockaddr *, socklen_t);
static int (*real_listen)(int, int);

static uint32_t gen_now(void)
{
    return __atomic_load_n(&shim_socktrack_gen, __ATOMIC_ACQUIRE);
}

void socktrack_forget_all(void)
{
    __atomic_add_fetch(&shim_socktrack_gen, 1, __ATOMIC_ACQ_REL);
}

/* fd's entry, made if make (NULL if it cannot be) */
static struct st_ent *ent(int fd, int make)
{
    if ((unsigned)fd >= ST_MAX_FD)
        return NULL;
    struct st_ent **slot = &st_dir[(unsigned)fd / ST_CHUNK];
    struct st_ent *c = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!c && make) {
        void *m = mmap(NULL, ST_CHUNK * sizeof *c, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        struct st_ent *none = NULL;
        if (__atomic_compare_exchange_n(slot, &none, (struct st_ent *)m, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            c = m;
        else {
            munmap(m, ST_CHUNK * sizeof *c);
            c = none;
        }
    }
    return c ? &c[(unsigned)fd % ST_CHUNK] : NULL;
}

/* fd's entry if it is of this generation */
static struct st_ent *current(int fd)
{
    struct st_ent *e = ent(fd, 0);
    return e && e->ino && e->gen == gen_now() ? e : NULL;
}

/* The protocol the kernel reports (SO_PROTOCOL) for what socket() was
 * given, or -1 for a kind not followed. */
static int kernel_protocol(int family, int type, int protocol)
{
    if (family == AF_UNIX) /* 0 or PF_UNIX: SO_PROTOCOL says 0 */
        return type == SOCK_STREAM || type == SOCK_DGRAM || type == SOCK_SEQPACKET ? 0 : -1;
    if (family != AF_INET && family != AF_INET6)
        return -1;
    if (type == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP))
        return IPPROTO_TCP;
    if (type == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP))
        return IPPROTO_UDP;
    if (type == SOCK_DGRAM && protocol == IPPROTO_UDPLITE)
        return IPPROTO_UDPLITE;
    return -1;
}

/* fd was made when the generation was gen (read before the call that
 * made it: a process made meanwhile leaves it unknown) */
static void note(int fd, int family, int type, int protocol, uint8_t flags, uint64_t optset,
                 uint32_t gen)
{
    uint8_t fl = (type & SOCK_NONBLOCK ? STF_NONBLOCK : 0) | (type & SOCK_CLOEXEC ? STF_CLOEXEC : 0);
    type &= 0xf; /* without SOCK_NONBLOCK, SOCK_CLOEXEC */
    int p = kernel_protocol(family, type, protocol);
    struct stat st;
    struct st_ent *e;
    if (p < 0 || st_quiet || st_off || !(e = ent(fd, 1)) || fstat(fd, &st) < 0)
        return;
    __atomic_store_n(&e->ino, 0, __ATOMIC_RELEASE); /* not current while it changes */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    e->family = (uint8_t)family;
    e->type = (uint8_t)type;
    e->protocol = (uint16_t)p;
    e->flags = flags;
    e->fl = fl;
    e->optset = optset;
    e->gen = gen;
    __atomic_store_n(&e->ino, (uint64_t)st.st_ino, __ATOMIC_RELEASE);
    st_live = 1;
}

/* The program changes `what` on fd (with ST_OPTS: the option groups
 * `set`): marked before the call is made. */
static void touch_opts(int fd, uint8_t what, uint64_t set)
{
    struct st_ent *e;
    if (st_live && !st_quiet && (e = current(fd))) {
        if (what & ST_OPTS)
            __atomic_fetch_or(&e->optset, set, __ATOMIC_ACQ_REL);
        __atomic_fetch_or(&e->flags, what, __ATOMIC_ACQ_REL);
    }
}

static void touch(int fd, uint8_t what)
{
    touch_opts(fd, what, ~(uint64_t)0);
}

/* fd is copied (dup): the copy is not followed, the original no longer
 * counts on its own marks */
void socktrack_copied(int fd)
{
    touch(fd, ST_ALL);
}

/* fd's number no longer holds what its entry says */
void socktrack_closed(int fd)
{
    struct st_ent *e;
    if (st_live && (e = current(fd)))
        __atomic_store_n(&e->ino, 0, __ATOMIC_RELEASE);
}

void socktrack_quiet(int on)
{
    st_quiet = on;
}

/* The sockets a checkpoint found known, by descriptor number: after a
 * restore of that image they are known again, with every mark they had
 * and the options mark besides. A restored socket has no owner and no
 * lock but those put back (which came with their marks), on any machine;
 * its options are what coord set where a new socket there differed from
 * the image, which may be more than the kernel's defaults there. */
static struct {
    int fd;
    uint8_t family, type, flags;
    uint16_t protocol;
} st_saved[SHIM_MAX_FDS];
static int st_nsaved;

void socktrack_capture_begin(void)
{
    st_nsaved = 0;
}

void socktrack_saved(int fd, const struct socktrack_info *k)
{
    if (st_nsaved >= SHIM_MAX_FDS)
        return;
    st_saved[st_nsaved].fd = fd;
    st_saved[st_nsaved].family = (uint8_t)k->family;
    st_saved[st_nsaved].type = (uint8_t)k->type;
    st_saved[st_nsaved].protocol = (uint16_t)k->protocol;
    st_saved[st_nsaved++].flags = (uint8_t)k->flags;
}

void socktrack_after_restore(void)
{
    st_quiet = 0;
    socktrack_forget_all(); /* the sockets are coord's, with new inodes */
    for (int k = 0; k < st_nsaved; k++)
        note(st_saved[k].fd, st_saved[k].family, st_saved[k].type, st_saved[k].protocol,
             st_saved[k].flags | ST_OPTS | ST_FLAGS, ~(uint64_t)0, gen_now());
}

int socktrack_get(int fd, uint64_t ino, struct socktrack_info *out)
{
    struct st_ent *e;
    if (!st_live || !(e = current(fd)) || e->ino != ino)
        return 0;
    out->family = e->family;
    out->type = e->type;
    out->protocol = e->protocol;
    out->flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
    out->optset = __atomic_load_n(&e->optset, __ATOMIC_ACQUIRE);
    out->fl = e->fl;
    return 1;
}

uint32_t socktrack_gen(void)
{
    return gen_now();
}

/* the groups of options a call other than setsockopt sets on a socket
 * of family (bind, connect, listen, accept; fds/socket.h's groups) */
static uint64_t group_bit(int level, int name)
{
    int g = ck_sockopt_group(level, name);
    return g < 0 ? ~(uint64_t)0 : (uint64_t)1 << g;
}

void socktrack_accepted(int lfd, int fd, int flags, uint32_t gen)
{
    struct st_ent *l;
    struct stat st;
    if (!st_live || st_quiet || !(l = current(lfd)))
        return;
    /* the listener's number still holds it (not closed and reused
     * behind the shim's back): an accepted socket inherits its options;
     * the kernel may give a TCP connection the SYN's TOS
     * (net.ipv4.tcp_reflect_tos) and an IPv6 one the route's hop limit
     * and the peer's interface */
    uint8_t fl = __atomic_load_n(&l->flags, __ATOMIC_ACQUIRE) & ST_OPTS;
    uint64_t set = __atomic_load_n(&l->optset, __ATOMIC_ACQUIRE);
    if (l->family == AF_INET || l->family == AF_INET6) {
        fl |= ST_OPTS;
        set |= group_bit(IPPROTO_IP, IP_TOS);
        if (l->family == AF_INET6)
            set |= group_bit(IPPROTO_IPV6, IPV6_UNICAST_HOPS) |
                   group_bit(SOL_SOCKET, SO_BINDTOIFINDEX);
    }
    if (fstat(lfd, &st) == 0 && st.st_ino == l->ino)
        note(fd, l->family, l->type | (flags & (SOCK_NONBLOCK | SOCK_CLOEXEC)), l->protocol, fl,
             set, gen);
}

/* SCM_RIGHTS: the descriptors sent reach another process */
static void sent_rights(const struct msghdr *m)
{
    if (!m || !m->msg_control || m->msg_controllen < sizeof(struct cmsghdr))
        return;
    for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)m); c;
         c = CMSG_NXTHDR((struct msghdr *)m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const int *fds = (const int *)CMSG_DATA(c);
        for (size_t k = 0; k < n; k++) {
            int fd;
            memcpy(&fd, fds + k, sizeof fd);
            touch(fd, ST_ALL);
        }
    }
}

static void before_fork(void)
{
    if (st_live)
        socktrack_forget_all();
}

/* vfork as a fork unless CKSHIM_VFORK=keep (syscall.S) */
int shim_vfork_keep;

void socktrack_init(void)
{
    const char *off = getenv("CKSHIM_NO_SOCKTRACK");
    st_off = off && *off && strcmp(off, "0") != 0;
    const char *vf = getenv("CKSHIM_VFORK");
    shim_vfork_keep = vf && !strcmp(vf, "keep");
    SHIM_RESOLVE(real_socket, "socket");
    SHIM_RESOLVE(real_socketpair, "socketpair");
    SHIM_RESOLVE(real_setsockopt, "setsockopt");
    SHIM_RESOLVE(real_flock, "flock");
    SHIM_RESOLVE(real_lockf, "lockf");
    SHIM_RESOLVE(real_lockf64, "lockf64");
    SHIM_RESOLVE(real_sendmsg, "sendmsg");
    SHIM_RESOLVE(real_sendmmsg, "sendmmsg");
    /* before the fork, and again after it in both: a socket another
     * thread made meanwhile is inherited too */
    pthread_atfork(before_fork, before_fork, before_fork);
}

/* ---- the wrappers ---- */

SHIM_API int socket(int family, int type, int protocol)
{
    SHIM_RESOLVE(real_socket, "socket");
    uint32_t gen = gen_now();
    int fd = real_socket(family, type, protocol);
    if (fd >= 0)
        note(fd, family, type, protocol, 0, 0, gen);
    return fd;
}

SHIM_API int socketpair(int family, int type, int protocol, int sv[2])
{
    SHIM_RESOLVE(real_socketpair, "socketpair");
    uint32_t gen = gen_now();
    int r = real_socketpair(family, type, protocol, sv);
    if (r == 0) {
        note(sv[0], family, type, protocol, 0, 0, gen);
        note(sv[1], family, type, protocol, 0, 0, gen);
    }
    return r;
}

SHIM_API int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    SHIM_RESOLVE(real_setsockopt, "setsockopt");
    if (st_live) {
        int g = ck_sockopt_group(level, name);
        touch_opts(fd, ST_OPTS, g < 0 ? ~(uint64_t)0 : (uint64_t)1 << g);
    }
    return real_setsockopt(fd, level, name, val, len);
}

SHIM_API int flock(int fd, int op)
{
    SHIM_RESOLVE(real_flock, "flock");
    touch(fd, ST_LOCK);
    return real_flock(fd, op);
}

/* lockf locks through fcntl inside libc, past the fcntl wrapper (both
 * names glibc exports: with _FILE_OFFSET_BITS=64 its header calls lockf
 * lockf64, hence the explicit symbol names) */
SHIM_API int st_lockf(int fd, int cmd, off_t len) __asm__("lockf");
SHIM_API int st_lockf(int fd, int cmd, off_t len)
{
    SHIM_RESOLVE(real_lockf, "lockf");
    touch(fd, ST_LOCK);
    return real_lockf(fd, cmd, len);
}

SHIM_API int st_lockf64(int fd, int cmd, off_t len) __asm__("lockf64");
SHIM_API int st_lockf64(int fd, int cmd, off_t len)
{
    SHIM_RESOLVE(real_lockf64, "lockf64");
    touch(fd, ST_LOCK);
    return real_lockf64(fd, cmd, len);
}

SHIM_API ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
    SHIM_RESOLVE(real_sendmsg, "sendmsg");
    if (st_live)
        sent_rights(m);
    return real_sendmsg(fd, m, flags);
}

SHIM_API int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
    SHIM_RESOLVE(real_sendmmsg, "sendmmsg");
    if (st_live && v)
        for (unsigned int k = 0; k < n; k++)
            sent_rights(&v[k].msg_hdr);
    return real_sendmmsg(fd, v, n, flags);
}

/* ---- new processes: every socket may be shared from now on ---- */

SHIM_API int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                         const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    SHIM_RESOLVE(real_posix_spawn, "posix_spawn");
    before_fork();
    int r = real_posix_spawn(pid, path, fa, attr, argv, envp);
    before_fork(); /* a socket made meanwhile by another thread */
    return r;
}

SHIM_API int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                          const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    SHIM_RESOLVE(real_posix_spawnp, "posix_spawnp");
    before_fork();
    int r = real_posix_spawnp(pid, file, fa, attr, argv, envp);
    before_fork(); /* a socket made meanwhile by another thread */
    return r;
}

SHIM_API int system(const char *cmd)
{
    SHIM_RESOLVE(real_system, "system");
    before_fork();
    int r = real_system(cmd);
    before_fork(); /* a socket made meanwhile by another thread */
    return r;
}

SHIM_API FILE *popen(const char *cmd, const char *mode)
{
    SHIM_RESOLVE(real_popen, "popen");
    before_fork();
    FILE *r = real_popen(cmd, mode);
    before_fork(); /* a socket made meanwhile by another thread */
    return r;
}

SHIM_API pid_t _Fork(void)
{
    SHIM_RESOLVE(real__Fork, "_Fork");
    before_fork();
    if (!real__Fork) {
        errno = ENOSYS;
        return -1;
    }
    pid_t r = real__Fork();
    before_fork();
    return r;
}

/* A clone() that makes a process (no CLONE_VM) runs no fork handlers:
 * its child would have no shim (no manager, no control socket) and a
 * checkpoint of its tree would refuse it. The child starts instead in
 * clone_tramp, on a stack of the shim's own (the program's may be 4 KiB:
 * zdtm session02), which does what fork's child handlers do
 * (shim_clone_child), then moves to the program's stack (its own stays
 * as the thread's alternate stack, below) and calls the program's
 * function, ending the process with its value as glibc's clone does
 * (exit_group: the child has a manager thread).
 * A child sharing the descriptor table (CLONE_FILES) forgets the
 * parent's control socket and coord's connection instead of closing them,
 * and makes its own socket in the shared table (coord captures sharers
 * one after the other, and each leaves the others' sockets out by their
 * directory: capture.c, coords_own). Not for a child sharing its cwd
 * (CLONE_FS) or semaphore undo list (CLONE_SYSVSEM), which no restore
 * makes shared again, the TLS (it would have no thread of its own), or namespaces;
 * nor in a program with threads of its own: glibc's clone, unlike fork,
 * leaves malloc's and the loader's locks as another thread held them,
 * and starting the manager takes them. Those keep clone as it was (such
 * a child is refused at checkpoint, by name). */
struct clone_start {
    int (*fn)(void *);
    void *arg;
    void *stack;                        /* the program's */
    void *own;                          /* ours: the alternate stack, or unmapped */
    size_t own_len;
    int flags;
};

#define CLONE_OWN_STACK (256 * 1024)
#define CLONE_SHARES (CLONE_VM | CLONE_THREAD | CLONE_VFORK | CLONE_FS | CLONE_SYSVSEM | \
                      CLONE_SETTLS | CLONE_SIGHAND)
#define CLONE_NAMESPACES (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUSER | CLONE_NEWNET | \
                          CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP)

/* clone_jump(fn, arg, stack, unmap, len): rsp = stack (16-aligned),
 * munmap(unmap, len), exit_group(fn(arg)). Never returns. */
__attribute__((noreturn)) void ck_clone_jump(int (*fn)(void *), void *arg, void *stack,
                                             void *unmap, size_t len);
__asm__(".text\n"
        ".globl ck_clone_jump\n"
        ".hidden ck_clone_jump\n"
        ".type ck_clone_jump,@function\n"
        "ck_clone_jump:\n"
        "    mov %rdx, %rsp\n"
        "    and $-16, %rsp\n"
        "    mov %rdi, %r12\n"
        "    mov %rsi, %r13\n"
        "    mov %rcx, %rdi\n"
        "    mov %r8, %rsi\n"
        "    mov $11, %eax\n" /* munmap */
        "    syscall\n"
        "    xor %ebp, %ebp\n"
        "    mov %r13, %rdi\n"
        "    call *%r12\n"
        "    mov %eax, %edi\n"
        "    mov $231, %eax\n" /* exit_group */
        "    syscall\n"
        "    hlt\n"
        ".size ck_clone_jump, .-ck_clone_jump\n");

/* A program's stack may have little room (4 KiB, with a guard page or
 * the program's data below) for the checkpoint signal's handler: ours
 * stays as the alternate stack of the child's thread when the thread has
 * none (sigaltstack then shows it to the program). */
static int clone_tramp(void *p)
{
    struct clone_start s = *(struct clone_start *)p;
    before_fork();
    shim_clone_child(s.flags);
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_DISABLE)) {
        stack_t ss = {.ss_sp = s.own, .ss_size = s.own_len, .ss_flags = 0};
        if (sigaltstack(&ss, NULL) == 0)
            s.own_len = 0; /* (munmap of length 0: nothing) */
    }
    ck_clone_jump(s.fn, s.arg, s.stack, s.own, s.own_len);
}

/* clone's optional arguments (ptid, tls, ctid) are passed on whatever
 * the flags: libc reads only those its flags ask for */
static int clone_on(int (*fn)(void *), void *stack, int flags, void *arg, va_list ap)
{
    SHIM_RESOLVE(real_clone, "clone");
    pid_t *ptid = va_arg(ap, pid_t *);
    void *tls = va_arg(ap, void *);
    pid_t *ctid = va_arg(ap, pid_t *);
    before_fork();
    void *own = fn && stack && !(flags & (CLONE_SHARES | CLONE_NAMESPACES)) &&
                        g_shim.initialized && shim_threads_own() == 0
                    ? mmap(NULL, CLONE_OWN_STACK, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0)
                    : MAP_FAILED;
    int r;
    if (own != MAP_FAILED) {
        struct clone_start *s =
            (struct clone_start *)((char *)own + CLONE_OWN_STACK - 64 - sizeof *s);
        *s = (struct clone_start){fn, arg, stack, own, CLONE_OWN_STACK, flags};
        shim_clone_prepare();
        r = real_clone(clone_tramp, (void *)((uintptr_t)s & ~(uintptr_t)15), flags, s, ptid,
                       tls, ctid);
        int e = errno;
        shim_clone_parent();
        if (r > 0 && (flags & CLONE_FILES))
            shim_sharer_born(r);
        munmap(own, CLONE_OWN_STACK);
        errno = e;
    } else {
        r = real_clone(fn, stack, flags, arg, ptid, tls, ctid);
    }
    before_fork();
    return r;
}

SHIM_API int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    int r = clone_on(fn, stack, flags, arg, ap);
    va_end(ap);
    return r;
}

/* libc's other name for clone */
SHIM_API int st___clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
    __asm__("__clone");
SHIM_API int st___clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    int r = clone_on(fn, stack, flags, arg, ap);
    va_end(ap);
    return r;
}

/* another descriptor of a socket, maybe of this process's own */
SHIM_API int pidfd_getfd(int pidfd, int fd, unsigned int flags)
{
    SHIM_RESOLVE(real_pidfd_getfd, "pidfd_getfd");
    before_fork();
    if (!real_pidfd_getfd)
        return (int)syscall(SYS_pidfd_getfd, pidfd, fd, flags);
    return real_pidfd_getfd(pidfd, fd, flags);
}

/* what bind, connect and listen let the kernel set: an IPv6 socket bound
 * to an address gets IPV6_V6ONLY, bound or connected to a link-local one
 * its interface, connected its route's hop limit; a listener may get
 * TCP_FASTOPEN (net.ipv4.tcp_fastopen 0x400) */
SHIM_API int bind(int fd, const struct sockaddr *a, socklen_t len)
{
    SHIM_RESOLVE(real_bind, "bind");
    if (st_live && a && len >= sizeof a->sa_family && a->sa_family == AF_INET6)
        touch_opts(fd, ST_OPTS,
                   group_bit(IPPROTO_IPV6, IPV6_V6ONLY) | group_bit(SOL_SOCKET, SO_BINDTOIFINDEX));
    return real_bind(fd, a, len);
}

SHIM_API int connect(int fd, const struct sockaddr *a, socklen_t len)
{
    SHIM_RESOLVE(real_connect, "connect");
    if (st_live && a && len >= sizeof a->sa_family && a->sa_family == AF_INET6)
        touch_opts(fd, ST_OPTS,
                   group_bit(IPPROTO_IPV6, IPV6_UNICAST_HOPS) |
                       group_bit(SOL_SOCKET, SO_BINDTOIFINDEX));
    return real_connect(fd, a, len);
}

SHIM_API int listen(int fd, int backlog)
{
    SHIM_RESOLVE(real_listen, "listen");
    if (st_live)
        touch_opts(fd, ST_OPTS, group_bit(IPPROTO_TCP, TCP_FASTOPEN));
    return real_listen(fd, backlog);
}

/* ---- hooks of wrappers elsewhere (wrappers.c, netrec.c) ---- */

void socktrack_fcntl(int fd, int cmd)
{
    switch (cmd) {
    case F_SETOWN:
    case F_SETOWN_EX:
    case F_SETSIG:
        touch(fd, ST_OWNER);
        break;
    case F_SETLK:
    case F_SETLKW:
    case F_OFD_SETLK:
    case F_OFD_SETLKW:
        touch(fd, ST_LOCK);
        break;
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
        touch(fd, ST_ALL);
        break;
    case F_SETFL:
    case F_SETFD:
        touch(fd, ST_FLAGS);
        break;
    }
}

void socktrack_ioctl(int fd, unsigned long req)
{
    if (req == FIOSETOWN || req == SIOCSPGRP)
        touch(fd, ST_OWNER);
    else if (req == FIONBIO || req == FIOASYNC || req == FIOCLEX || req == FIONCLEX)
        touch(fd, ST_FLAGS);
}
