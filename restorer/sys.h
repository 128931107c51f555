/* sys.h - the restorer's syscall layer: raw x86_64 syscalls, no libc.
 * Every wrapper returns the kernel's result: >= 0, or -errno. */
#ifndef CKSHIM_RESTORER_SYS_H
#define CKSHIM_RESTORER_SYS_H

#include <stddef.h>
#include <stdint.h>

#include "rawsys.h"

#define sys6 ck_sys6
#define sys0(n) sys6(n, 0, 0, 0, 0, 0, 0)
#define sys1(n, a) sys6(n, (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) sys6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define sys5(n, a, b, c, d, e) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

#define NR_read 0
#define NR_write 1
#define NR_open 2
#define NR_close 3
#define NR_fstat 5
#define NR_lseek 8
#define NR_mmap 9
#define NR_mprotect 10
#define NR_munmap 11
#define NR_rt_sigprocmask 14
#define NR_pread64 17
#define NR_pwrite64 18
#define NR_mremap 25
#define NR_madvise 28
#define NR_shmat 30
#define NR_shmctl 31
#define NR_getpid 39
#define NR_sendmsg 46
#define NR_recvmsg 47
#define NR_clone 56
#define NR_exit 60
#define NR_fcntl 72
#define NR_fchdir 81
#define NR_umask 95
#define NR_prctl 157
#define NR_arch_prctl 158
#define NR_gettid 186
#define NR_exit_group 231
#define NR_dup3 292
#define NR_prlimit64 302
#define NR_clone3 435
#define NR_close_range 436

#define sys_read(fd, b, n) sys3(NR_read, fd, b, n)
#define sys_write(fd, b, n) sys3(NR_write, fd, b, n)
#define sys_open(p, f, m) sys3(NR_open, p, f, m)
#define sys_close(fd) sys1(NR_close, fd)
#define sys_fstat(fd, st) sys2(NR_fstat, fd, st)
#define sys_lseek(fd, o, w) sys3(NR_lseek, fd, o, w)
#define sys_mmap(a, l, p, f, fd, o) sys6(NR_mmap, (long)(a), (long)(l), p, f, fd, (long)(o))
#define sys_mprotect(a, l, p) sys3(NR_mprotect, a, l, p)
#define sys_munmap(a, l) sys2(NR_munmap, a, l)
#define sys_pread(fd, b, n, o) sys4(NR_pread64, fd, b, n, o)
#define sys_mremap(o, ol, nl, f, n) sys5(NR_mremap, o, ol, nl, f, n)
#define sys_madvise(a, l, adv) sys3(NR_madvise, a, l, adv)
#define sys_getpid() sys0(NR_getpid)
#define sys_prctl(o, a, b, c, d) sys5(NR_prctl, o, a, b, c, d)
#define sys_arch_prctl(c, a) sys2(NR_arch_prctl, c, a)
#define sys_exit_group(c) sys1(NR_exit_group, c)

#define R_PROT_READ 1
#define R_PROT_WRITE 2
#define R_PROT_EXEC 4
#define R_MAP_SHARED 0x01
#define R_MAP_PRIVATE 0x02
#define R_MAP_DROPPABLE 0x08
#define R_MAP_FIXED 0x10
#define R_MAP_ANONYMOUS 0x20
#define R_MAP_GROWSDOWN 0x100
#define R_MAP_NORESERVE 0x4000
#define R_MAP_HUGETLB 0x40000
#define R_MAP_HUGE_SHIFT 26
#define R_MAP_FIXED_NOREPLACE 0x100000
#define R_MREMAP_MAYMOVE 1
#define R_MREMAP_FIXED 2
#define R_O_RDONLY 0
#define R_O_RDWR 2
#define R_O_CLOEXEC 02000000
#define R_O_NONBLOCK 04000
#define R_O_NOFOLLOW 0400000

/* Sockets (the adopt step: restorer.c) */
struct r_iovec {
    void *base;
    unsigned long len;
};
struct r_msghdr {
    void *name;
    int namelen, pad;
    struct r_iovec *iov;
    unsigned long iovlen;
    void *control;
    unsigned long controllen;
    int flags, pad2;
};
struct r_cmsghdr {
    unsigned long len;
    int level, type;
};
#define R_SOL_SOCKET 1
#define R_SCM_RIGHTS 1
#define R_MSG_TRUNC 0x20
#define R_MSG_CTRUNC 0x08
#define R_MSG_NOSIGNAL 0x4000
#define R_F_DUPFD 0

/* The kernel's struct stat on x86_64 (only what the restorer reads). */
struct r_stat {
    uint64_t st_dev, st_ino, st_nlink;
    uint32_t st_mode, st_uid, st_gid, pad0;
    uint64_t st_rdev;
    int64_t st_size, st_blksize, st_blocks;
    uint64_t times[6];
    int64_t unused[3];
};
#define R_ARCH_SET_FS 0x1002
#define R_PR_SET_MM 35
#define R_PR_SET_MM_MAP 14
#define R_EEXIST 17

#define CLONE_VM 0x00000100
#define CLONE_FS 0x00000200
#define CLONE_FILES 0x00000400
#define CLONE_SIGHAND 0x00000800
#define CLONE_THREAD 0x00010000
#define CLONE_SYSVSEM 0x00040000
#define CLONE_SETTLS 0x00080000
#define CLONE_PARENT_SETTID 0x00100000
#define CLONE_CHILD_CLEARTID 0x00200000

/* start.S */
long restorer_clone(unsigned long flags, void *stack, int *ptid, int *ctid, unsigned long tls,
                    const void *ctx);
__attribute__((noreturn)) void restorer_jump(const void *ctx);
long restorer_spawn(void (*fn)(void *), void *arg, void *stack_top, volatile int *ctid);
/* clone3(args, size): the child jumps to ctx as restorer_clone's does. */
long restorer_clone3(void *args, unsigned long size, const void *ctx);

#endif
