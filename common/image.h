/* image.h - the ckshim image file format (on-disk layout, version 1).
 *
 * Freestanding: plain fixed-layout structs, no libc. Shared by the shim
 * (writer), coord (reader, verifier, inspect) and the restorer (reads only
 * PAGES and END records). All integers are little endian (x86_64 only).
 *
 *   +---------------------------+ offset 0
 *   | struct ck_header (512 B)  |  magic, version, stamp, ids, checksum
 *   +---------------------------+
 *   | record: PROC              |  struct ck_rec + payload
 *   | record: THREADS           |  ck_thread[]
 *   | record: REGIONS           |  ck_region[] + string table
 *   | record: FDS               |  ck_fd[] + string table
 *   | record: LOCKS (optional)  |  ck_lock[]: file locks held
 *   | record: TTYS (optional)   |  ck_tty[]: terminal modes of std fds
 *   | record: GUARDS (optional) |  ck_guard[]: guard page runs
 *   | record: SHM (optional)    |  ck_shm[]: SysV shared memory attached
 *   | record: FDSTATE (optional)| per-descriptor state of fds/ kinds
 *   | record: FILEDATA ...      |  contents of deleted files (chunks)
 *   | record: PAGES ...         |  one contiguous run of pages each
 *   | record: END               |  struct ck_end (totals)
 *   +---------------------------+
 *
 * Every record carries an XXH64 checksum over its header (with the
 * checksum field zero) and its payload: ck_rec_checksum() in imgio.h.
 * Records are written strictly in this order so an image can be streamed
 * through a pipe; a reader that meets a record type it does not know
 * verifies and skips it (minor versions may add record types).
 */
#ifndef CKSHIM_IMAGE_H
#define CKSHIM_IMAGE_H

#include <stdint.h>

#define CK_MAGIC "CKSHIMG\x01"         /* 8 bytes, no terminator used */
#define CK_MAGIC_LEN 8
/* 2.0: ck_proc, ck_region and ck_fd grew (process attributes, file
 * identity), new optional records (MEMCHECK, LOCKS, TTYS, GUARDS, SHM).
 * 2.1: FDSTATE record (state of descriptor kinds in fds/). */
#define CK_VERSION_MAJOR 2
#define CK_VERSION_MINOR 1
#define CK_PAGE_SIZE 4096UL
#define CK_CHUNK_PAGES 256              /* a PAGES record holds at most this */
#define CK_MAX_THREADS 1024
#define CK_MAX_FRAMES 24
#define CK_MAX_TIMERS 32
#define CK_NSIG 65                      /* signals 1..64, index 0 unused */
#define CK_NRLIMIT 16
#define CK_AUXV_WORDS 128
#define CK_PATH_MAX 4096

/* ck_header.flags */
#define CK_HF_COUNTER_NONE 0x1          /* written with --counter none */
#define CK_HF_MAC 0x2                   /* an AUTH record authenticates everything */
#define CK_HF_ENCRYPTED 0x4             /* PAGES and FILEDATA payloads are encrypted */
#define CK_HF_PIDNS 0x8                 /* taken in a pid namespace of the program's own
                                           (coord run --pidns): orig_pid, the tree's pids
                                           and thread ids are the namespace's; restore
                                           makes a new one and gives them back */
#define CK_HF_STOPPED 0x10              /* the process was stopped by stop_sig (SIGSTOP,
                                           SIGTSTP, SIGTTIN, SIGTTOU) when it was taken:
                                           restore stops it again before it runs */

struct ck_header {
    char magic[CK_MAGIC_LEN];
    uint16_t version_major;
    uint16_t version_minor;
    uint32_t header_size;               /* sizeof(struct ck_header) */
    uint32_t flags;                     /* CK_HF_* */
    uint32_t orig_pid;
    uint32_t uid;
    uint32_t gid;
    uint64_t counter_stamp;             /* 0 = not stamped */
    uint64_t created_ns;                /* CLOCK_REALTIME at checkpoint */
    uint32_t nthreads;
    uint32_t stop_sig;                  /* CK_HF_STOPPED: the signal (0 otherwise) */
    char app_id[64];
    char kernel[72];                    /* uname release */
    char machine[16];                   /* uname machine */
    char glibc[24];                     /* gnu_get_libc_version() */
    char hostname[64];
    char exe[160];                      /* /proc/self/exe, truncated */
    uint8_t key_id[8];                  /* CK_HF_MAC: which key (see auth.h) */
    uint8_t nonce[16];                  /* CK_HF_ENCRYPTED: per-image nonce base */
    uint8_t pad1[8];
    uint8_t reserved[16];
    uint64_t checksum;                  /* XXH64(seed 0) of bytes before it */
};

/* Record types. */
enum {
    CK_REC_PROC = 1,
    CK_REC_THREADS = 2,
    CK_REC_REGIONS = 3,
    CK_REC_FDS = 4,
    CK_REC_FILEDATA = 5,
    CK_REC_PAGES = 6,
    CK_REC_AUTH = 7,                    /* digests of every record + MAC (CK_HF_MAC) */
    CK_REC_MEMCHECK = 0x20,             /* ck_memcheck[]: witnesses of flagged regions */
    CK_REC_LOCKS = 8,                   /* ck_lock[], right after FDS, if any */
    CK_REC_TTYS = 9,                    /* ck_tty[], after FDS (and LOCKS), if any */
    CK_REC_GUARDS = 10,                 /* ck_guard[], after FDS (LOCKS, TTYS), if any */
    CK_REC_SHM = 11,                    /* ck_shm[], after FDS (LOCKS, TTYS, GUARDS), if any */
    CK_REC_FDSTATE = 12,                /* ck_fdstate entries, after FDS (LOCKS, TTYS,
                                           GUARDS, SHM), if any */
    CK_REC_END = 0x7fff,
};

/* ck_rec.flags */
#define CK_RF_LZ4 0x1                   /* payload is one LZ4 block */
#define CK_RF_RAW 0x2                   /* payload is stored as is */

struct ck_rec {
    uint32_t type;
    uint32_t flags;
    uint64_t len;                       /* payload bytes following */
    uint64_t raw_len;                   /* payload bytes once decoded */
    uint64_t arg;                       /* PAGES: address; FILEDATA: fd */
    uint64_t arg2;                      /* FILEDATA: offset in the file */
    uint64_t checksum;                  /* see ck_rec_checksum() */
};

/* Kernel's struct sigaction layout (rt_sigaction), as captured raw. */
struct ck_sigaction {
    uint64_t handler;
    uint64_t flags;
    uint64_t restorer;
    uint64_t mask;
};

struct ck_itimer {
    int64_t interval_sec, interval_usec, value_sec, value_usec;
};

struct ck_ptimer {                      /* one POSIX timer (timer_create) */
    int32_t id;
    int32_t clockid;
    int32_t signo;
    int32_t notify;                     /* SIGEV_SIGNAL/NONE/THREAD_ID */
    int32_t target_tid;                 /* SIGEV_THREAD_ID: original tid */
    int32_t pad;
    uint64_t sival;
    int64_t value_ns;                   /* remaining until next expiry */
    int64_t interval_ns;
};

struct ck_rlimit {
    uint64_t cur, max;
};

/* Address-space fields for prctl(PR_SET_MM, PR_SET_MM_MAP). */
struct ck_mm {
    uint64_t start_code, end_code, start_data, end_data;
    uint64_t start_brk, brk, start_stack;
    uint64_t arg_start, arg_end, env_start, env_end;
};

/* Process attributes set with prctl() or /proc (ck_proc.attr), put back
 * by the shim after a restore. */
#define CK_PA_SUBREAPER 0x1             /* PR_SET_CHILD_SUBREAPER */
#define CK_PA_NO_NEW_PRIVS 0x2          /* PR_SET_NO_NEW_PRIVS */
#define CK_MAX_AIO 16
struct ck_aio {                         /* an AIO context (io_setup): its ring */
    uint64_t addr, len;                 /* the ring mapping; addr is the context id */
    uint32_t nr, head, tail, pad;       /* from the ring header */
};
struct ck_pattr {
    int32_t oom_score_adj;
    uint32_t flags;                     /* CK_PA_* */
    int32_t dumpable;                   /* PR_GET_DUMPABLE */
    int32_t pdeathsig;                  /* PR_GET_PDEATHSIG */
    int32_t thp_disable;                /* PR_GET_THP_DISABLE */
    uint32_t membarrier;                /* MEMBARRIER_CMD_GET_REGISTRATIONS */
    uint64_t timerslack_ns;             /* PR_GET_TIMERSLACK */
    uint32_t loginuid;                  /* /proc/self/loginuid */
    uint32_t naio;
    struct ck_aio aio[CK_MAX_AIO];
};

/* CK_REC_PROC payload. */
struct ck_proc {
    uint32_t pid, ppid, pgid, sid;
    uint32_t uid, gid, umask, nthreads;
    struct ck_mm mm;
    uint64_t auxv[CK_AUXV_WORDS];
    uint32_t auxv_bytes;
    uint32_t ntimers;
    uint64_t vvar_start, vvar_end;      /* [vvar], 0 if absent */
    uint64_t vclock_start, vclock_end;  /* [vvar_vclock], 0 if absent */
    uint64_t vdso_start, vdso_end;      /* [vdso] */
    uint64_t vdso_hash;                 /* XXH64 of the vdso bytes */
    uint64_t shim_info_addr;            /* struct ck_restore_info in shim */
    uint64_t stack_reserve;             /* bytes to map below [stack] */
    struct ck_rlimit rlim[CK_NRLIMIT];
    struct ck_sigaction sigact[CK_NSIG];
    struct ck_itimer itimer[3];         /* REAL, VIRTUAL, PROF */
    struct ck_ptimer timers[CK_MAX_TIMERS];
    uint32_t ckpt_signal;               /* the shim's checkpoint signal */
    uint32_t personality;               /* personality(0xffffffff); was padding (0) */
    uint64_t sigpending;                /* signals pending for the process */
    char comm[16];
    char cwd[CK_PATH_MAX];
    char exe[CK_PATH_MAX];
    struct ck_pattr attr;
};

/* Callee-saved context at a thread's park point (System V x86_64 ABI). */
struct ck_ctx {
    uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
    uint32_t mxcsr;
    uint16_t fpucw;
    uint16_t pad;
};

struct ck_frame {
    uint64_t ip;
    uint64_t off;                       /* ip - symbol start */
    char name[48];
};

#define CK_TF_MAIN 0x1                  /* thread group leader */
#define CK_TF_MANAGER 0x2               /* the shim's manager thread */

/* CK_REC_THREADS payload: nthreads of these. */
struct ck_thread {
    uint32_t tid;
    uint32_t flags;                     /* CK_TF_* */
    uint64_t fsbase;
    struct ck_ctx ctx;
    uint64_t clear_tid_addr;            /* &pthread->tid, for CLONE_CHILD_CLEARTID */
    uint64_t sigmask;                   /* mask at interruption */
    uint64_t sigpending;                /* signals pending for this thread */
    uint64_t ss_sp, ss_size;            /* sigaltstack */
    int32_t ss_flags;
    uint32_t nframes;
    uint64_t user_ip, user_sp;          /* where the program was interrupted */
    char comm[16];
    struct ck_frame frames[CK_MAX_FRAMES];
};

/* ck_region.flags */
#define CK_REG_SHARED 0x1               /* MAP_SHARED */
#define CK_REG_ANON 0x2                 /* no backing file */
#define CK_REG_FILE 0x4                 /* backed by a file at path */
#define CK_REG_STACK 0x8                /* the main thread's [stack] */
#define CK_REG_HEAP 0x10                /* [heap] */
#define CK_REG_DELETED 0x20             /* backing file was deleted */
#define CK_REG_SPECIAL 0x40             /* vdso/vvar/vsyscall: not mapped */
#define CK_REG_ALLPAGES 0x80            /* all contents are in the image */
#define CK_REG_SHIM 0x100               /* belongs to libshim.so */
#define CK_REG_DONTFORK 0x200           /* MADV_DONTFORK (VmFlags "dc"), set again on restore */
#define CK_REG_WIPEONFORK 0x400         /* MADV_WIPEONFORK ("wf"), set again on restore */
#define CK_REG_DONTDUMP 0x800           /* MADV_DONTDUMP ("dd"), set again on restore */
#define CK_REG_SAVED 0x40000000         /* a small temporary file of the user's: its
                                           contents are in FILEDATA records, arg
                                           CK_FILEDATA_REGION | region index */

/* FILEDATA arg for the saved contents of a mapped file (CK_REG_SAVED);
 * otherwise the arg is a descriptor number. */
#define CK_FILEDATA_REGION (1ULL << 32)
/* More VmFlags, known when smaps was read (see DESIGN "VmFlags"), set again
 * on restore by the shim (madvise, mlock) or the restorer (mmap flags). */
#define CK_REG_HUGEPAGE 0x1000          /* MADV_HUGEPAGE ("hg") */
#define CK_REG_NOHUGEPAGE 0x2000        /* MADV_NOHUGEPAGE ("nh") */
#define CK_REG_MERGEABLE 0x4000         /* MADV_MERGEABLE ("mg"), KSM */
#define CK_REG_SEQUENTIAL 0x8000        /* MADV_SEQUENTIAL ("sr") */
#define CK_REG_RANDOM 0x10000           /* MADV_RANDOM ("rr") */
#define CK_REG_LOCKED 0x20000           /* mlock / MAP_LOCKED ("lo") */
#define CK_REG_NORESERVE 0x40000        /* MAP_NORESERVE ("nr") */
#define CK_REG_DROPPABLE 0x80000        /* MAP_DROPPABLE ("dp") */
#define CK_REG_MAYWRITE 0x100000        /* shared file mapping that mprotect may make
                                           writable ("mw"): the file was open for writing */
#define CK_REG_GUARDS 0x200000          /* may hold guard pages (MADV_GUARD_INSTALL, "gu"):
                                           the GUARDS record lists them */
#define CK_REG_FROMFD 0x400000          /* CK_REG_DELETED region of a deleted file or memfd
                                           the program holds open: mapped from the file
                                           coord recreates (private: only pages changed
                                           in memory are in the image) */
#define CK_REG_SYSV 0x800000            /* SysV shared memory (shmat): ino is the shmid,
                                           the SHM record describes the segment */
#define CK_REG_HUGETLB 0x1000000        /* anonymous MAP_HUGETLB memory; fsize holds its
                                           huge page size (0: the default one) */

/* CK_REC_REGIONS payload: nregions of these, then a string table.
 * ck_rec.arg holds the number of regions. */
struct ck_region {
    uint64_t start, end;
    uint32_t prot;                      /* PROT_* */
    uint32_t flags;                     /* CK_REG_* */
    uint64_t offset;                    /* file offset (CK_REG_FILE) */
    uint64_t dev, ino, fsize;           /* identity of the backing file */
    int64_t mtime_ns;
    uint64_t npages;                    /* pages stored in PAGES records */
    uint32_t path_off, path_len;        /* into the string table */
    int64_t ctime_ns;                   /* identity, continued (common/fileid.h) */
    uint64_t hash;                      /* content hash, if hash_kind */
    uint32_t hash_kind;                 /* CK_HASH_* */
    uint32_t mode;                      /* st_mode of the backing file */
};

/* ck_fd.kind */
enum {
    CK_FD_FILE = 1,                     /* regular file, reopened by path */
    CK_FD_DIR = 2,
    CK_FD_DELETED = 3,                  /* deleted regular file: FILEDATA */
    CK_FD_CHR = 4,                      /* /dev/null, /dev/urandom, ... */
    CK_FD_TTY = 5,                      /* terminal */
    CK_FD_PIPE = 6,                     /* pipe or FIFO */
    CK_FD_MEMFD = 7,                    /* memfd: contents in FILEDATA */
    CK_FD_EVENTFD = 8,
    CK_FD_EPOLL = 9,                    /* path: watch list, "TFD EVENTS DATA\n" each */
    CK_FD_SYMLINK = 10,                 /* O_PATH | O_NOFOLLOW on a symbolic link:
                                           its target in FILEDATA (arg: fd) */
    CK_FD_PTY = 12,                     /* a pseudo-terminal the program opened both ends
                                           of (aux: its index; CK_FDF_PTY_MASTER): made
                                           anew, modes in TTYS */
    CK_FD_PIDFD = 11,                   /* pidfd of the process itself, of one of
                                           its threads (aux: its tid as the program
                                           saw it) or of a process that has exited */
    CK_FD_TIMERFD = 13,                 /* fds/timerfd.c */
    CK_FD_SIGNALFD = 14,                /* fds/signalfd.c */
    CK_FD_INOTIFY = 15,                 /* fds/inotify.c */
    CK_FD_UNIX = 16,                    /* AF_UNIX socket: fds/unix.c */
    CK_FD_INET = 17,                    /* TCP/UDP over IPv4/IPv6: fds/inet.c */
    CK_FD_UNSUPPORTED = 99,
};

/* FDSTATE of a timerfd (fds/timerfd.c). value_ns is the time that was
 * left until the next expiry (0: disarmed), deadline_ns that expiry on
 * the timer's clock (kept for TFD_TIMER_ABSTIME timers); boot_id names
 * the boot the monotonic clocks counted from. */
struct ck_timerfd {
    int32_t clockid;
    uint32_t settime_flags;             /* TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET */
    uint64_t ticks;                     /* expirations not yet read */
    int64_t value_ns;
    int64_t interval_ns;
    int64_t deadline_ns;
    uint8_t boot_id[16];
};

/* FDSTATE of a signalfd (fds/signalfd.c). */
struct ck_signalfd {
    uint64_t sigmask;                   /* bit n-1: signal n */
    uint64_t reserved;
};

/* FDSTATE of an inotify instance (fds/inotify.c): this header, nwatch
 * ck_inotify_watch entries in wd order, then their paths (NUL-terminated,
 * path_off counted from the end of the entries). */
#define CK_INW_DONT_FOLLOW 0x1          /* added with IN_DONT_FOLLOW: the link itself */
#define CK_INW_ONLYDIR 0x2              /* added with IN_ONLYDIR */
#define CK_INW_FD 0x4                   /* no path: watched through the program's descriptor
                                           of the file (path "/proc/self/fd/N"), a removed
                                           file it holds open; added once every fd is back */
struct ck_inotify {
    uint32_t nwatch;
    int32_t next_wd;                    /* the wd the next inotify_add_watch gets */
    uint32_t queued;                    /* bytes of events queued (lost) */
    uint32_t pad;
};
struct ck_inotify_watch {
    int32_t wd;
    uint32_t mask;                      /* as fdinfo shows it (with IN_ONESHOT, IN_EXCL_UNLINK) */
    uint64_t ino, dev;                  /* the watched inode (dev: st_dev encoding) */
    uint32_t flags;                     /* CK_INW_* */
    uint32_t path_off;
};

#define CK_FDF_EXTERNAL 0x1             /* pipe peer lives outside */
#define CK_FDF_STD_REDIRECT 0x2         /* restore onto coord's own fd */
#define CK_FDF_EFD_SEMAPHORE 0x4        /* eventfd created with EFD_SEMAPHORE */
#define CK_FDF_DELETED 0x8              /* FIFO, symbolic link, directory: removed
                                           from its directory (path is where it was) */
#define CK_FDF_CWD 0x10                 /* removed directory: the working directory too */
#define CK_FDF_PIDFD_THREAD 0x40        /* pidfd: of a thread (not the leader) */
#define CK_FDF_PIDFD_DEAD 0x80          /* pidfd: of a process that has exited
                                           (ino tells apart different ones) */
#define CK_FDF_PIDFD_TREE 0x400         /* pidfd: of another process of the tree (aux:
                                           the pid the tree knows it by) */
#define CK_FDF_PTY_MASTER 0x100         /* pty: the master (/dev/ptmx) */
#define CK_FDF_PTY_CTTY 0x200           /* pty: the controlling terminal of the
                                           session the process leads */
#define CK_FDF_PROC_SELF 0x20           /* a /proc file of the process itself (or one of
                                           its namespaces): path is under /proc/self,
                                           reopened there, not compared */
#define CK_FDF_HUGETLB 0x1000           /* memfd made with MFD_HUGETLB */
#define CK_FDF_PROC_DEAD 0x2000         /* file or directory under /proc/PID of a process
                                           that has exited (aux: that pid): restored as
                                           the same entry of one that exits too */
#define CK_FDF_VER_LATER 0x8000         /* a written file's version (fds/file.c) that
                                           no descriptor of the program could read while
                                           it was parked: the image writer reads it
                                           (its first `size` bytes) */
#define CK_FDF_PACKETS 0x800            /* pipe in packet mode (pipe2 O_DIRECT): its
                                           waiting bytes are packets, each saved as a
                                           32-bit length and its bytes */
#define CK_FDF_WRITER_GONE 0x10000       /* pipe: read here, and every write end is closed
                                           (its last writer exited): restored with its
                                           waiting bytes, then end of file */
#define CK_FDF_IN_FLIGHT 0x4000         /* not the program's: a copy, taken at capture,
                                           of a descriptor in flight (SCM_RIGHTS) in a
                                           unix socket's queue that no program fd holds;
                                           made at restore, sent again, then closed */

/* CK_REC_FDS payload: nfds of these, then a string table.
 * ck_rec.arg holds the number of fds. */
struct ck_fd {
    int32_t fd;
    uint32_t kind;                      /* CK_FD_* */
    uint32_t oflags;                    /* open flags from fdinfo */
    uint32_t fdflags;                   /* FD_CLOEXEC */
    int64_t pos;
    int32_t share_with;                 /* earlier fd with same description, or -1 */
    uint32_t flags;                     /* CK_FDF_* */
    uint32_t mode;                      /* st_mode */
    uint32_t sig;                       /* F_SETSIG signal (0: SIGIO) */
    uint64_t dev, ino, size;
    int64_t mtime_ns;
    uint64_t aux;                       /* eventfd count, pipe ino, memfd seals, ... */
    uint32_t path_off, path_len;
    int64_t ctime_ns;                   /* identity, continued (common/fileid.h) */
    uint64_t hash;                      /* content hash, if hash_kind */
    uint32_t hash_kind;                 /* CK_HASH_* */
    uint32_t owner;                     /* who gets its SIGIO: CK_OWN_* << 24 | id */
};

/* ck_fd.owner: F_SETOWN_EX of the open file description, as the program
 * sees it. The low 24 bits are a thread's tid as the program saw it
 * (CK_OWN_THREAD); the others need no id. Owners outside the program are
 * refused at checkpoint. */
#define CK_OWN_NONE 0
#define CK_OWN_PROCESS 1                /* the process itself */
#define CK_OWN_PGRP 2                   /* its process group */
#define CK_OWN_THREAD 3                 /* one of its threads */
#define CK_OWN_TREE 4                   /* another process of its tree (F_OWNER_PID), by
                                           the pid the tree knows it by */
#define CK_OWN_TREE_PGRP 5              /* a process group of its tree (F_OWNER_PGRP), by
                                           the id the tree knows it by */
#define CK_OWN_KIND(o) ((o) >> 24)
#define CK_OWN_ID(o) ((o) & 0xffffffu)

/* Can region r write its file: shared, and writable now or after an
 * mprotect (CK_REG_MAYWRITE)? */
static inline int ck_region_writes_file(const struct ck_region *r)
{
    return (r->flags & CK_REG_SHARED) && ((r->prot & 2) || (r->flags & CK_REG_MAYWRITE));
}

/* Can region r be mapped from the program's descriptor f, a deleted file
 * or memfd (CK_REG_FROMFD)? Same file, and an access mode that allows the
 * mapping (O_RDONLY 0, O_WRONLY 1, O_RDWR 2). Shim and coord agree on it. */
static inline int ck_fd_maps_region(const struct ck_fd *f, const struct ck_region *r)
{
    uint32_t acc = f->oflags & 3;
    int writes = ck_region_writes_file(r);
    return (f->kind == CK_FD_MEMFD || f->kind == CK_FD_DELETED) && f->ino == r->ino &&
           f->dev == r->dev && (writes ? acc == 2 : acc != 1);
}

/* The descriptor limit a restore of a program whose highest fd is maxfd,
 * with nfds descriptors, needs: coord's own descriptors (at most a dozen)
 * and a stashed pair per pipe besides the program's. coord raises its soft
 * limit to this at restore; the shim refuses a checkpoint whose need is
 * above the hard limit (it could never be restored). */
static inline uint64_t ck_nofile_need(int maxfd, uint32_t nfds)
{
    return (uint64_t)(maxfd > 2 ? maxfd : 2) + 64 + 2 * (uint64_t)nfds;
}

/* CK_REC_FDSTATE payload: ck_rec.arg entries, each this header and `len`
 * bytes of the kind's own state (a struct of common/image.h named after
 * the kind), padded with zeros to a multiple of 8. At most one entry per
 * descriptor, in FDS order; `fd` and `kind` repeat the descriptor's. */
struct ck_fdstate {
    int32_t fd;
    uint32_t kind;                      /* CK_FD_* */
    uint32_t len;                       /* state bytes that follow */
    uint32_t pad;
};
#define CK_FDSTATE_MAX (1u << 20)       /* bytes of one entry's state, at most */

/* CK_REC_MEMCHECK payload (after FDS, before FILEDATA): ck_rec.arg entries,
 * one per region marked MADV_DONTFORK or MADV_WIPEONFORK, in region order.
 * Computed by the program itself while it is parked, before the writer is
 * forked (a fork is exactly what hides such memory), from the same pages
 * the writer selects: the number of those that are not all zero and the
 * sum (mod 2^64) of XXH64(page, 4096, seed = its address) over them. A
 * reader checks the image holds at least that many pages in the region;
 * `coord inspect --verify` decodes them and checks count and sum. */
struct ck_memcheck {
    uint32_t region;                    /* index into REGIONS */
    uint32_t flags;                     /* the region's CK_REG_* flags */
    uint64_t nonzero_pages;
    uint64_t hash_sum;
    uint64_t reserved;
};

/* ck_lock.kind */
enum {
    CK_LOCK_FLOCK = 1,                  /* flock(2): on the open file description */
    CK_LOCK_POSIX = 2,                  /* fcntl F_SETLK, lockf: owned by the process */
    CK_LOCK_OFD = 3,                    /* fcntl F_OFD_SETLK: on the open file description */
    CK_LOCK_LEASE = 4,                  /* fcntl F_SETLEASE (an active one): on the open
                                           file description */
    CK_LOCK_LEASE_BREAKING = 5,         /* a lease someone's open is breaking: write = its
                                           type before; start = 1 if it is being
                                           downgraded to a read lease, 0 if to none */
};

/* CK_REC_LOCKS payload: ck_rec.arg of these. One per lock (a range of
 * POSIX or OFD locks is one entry each), held through fd (the first of
 * the descriptors sharing its open file description). */
struct ck_lock {
    int32_t fd;
    uint32_t kind;                      /* CK_LOCK_* */
    uint32_t write;                     /* 1: write (exclusive) lock, 0: read (shared) */
    int32_t pid;                        /* holder shown by the kernel (-1 for OFD) */
    int64_t start;                      /* first byte (0 for flock) */
    int64_t len;                        /* bytes, 0 = to the end of the file */
    uint64_t dev, ino;                  /* the locked file at checkpoint */
};

#define CK_TTYF_WINSIZE 0x1             /* ws_* are set */
#define CK_TTYF_PACKET 0x2              /* a master in packet mode (TIOCPKT: screen) */
#define CK_MAX_TTYS 1024                /* entries of a TTYS record */

/* CK_REC_TTYS payload: ck_rec.arg of these, one per standard descriptor
 * (0..2) on a terminal: its modes (the kernel's struct termios) and window
 * size, carried to the terminal a foreground restore runs in; and one per
 * pseudo-terminal master the program opened (CK_FD_PTY), put on the new
 * pair restore makes. */
struct ck_tty {
    int32_t fd;
    uint32_t flags;                     /* CK_TTYF_* */
    uint32_t iflag, oflag, cflag, lflag;
    uint8_t line;
    uint8_t cc[19];                     /* NCCS of the kernel's struct termios */
    uint16_t ws_row, ws_col, ws_xpixel, ws_ypixel;
    uint64_t dev, rdev;                 /* the terminal at checkpoint */
};

/* CK_REC_GUARDS payload: ck_rec.arg of these, in address order, each a
 * run of guard pages (MADV_GUARD_INSTALL: touching them faults) inside a
 * region marked CK_REG_GUARDS. They hold no contents; the restorer
 * installs them again once memory is filled. */
struct ck_guard {
    uint64_t start, end;
};

#define CK_SHMF_DEST 0x1                /* marked for removal (IPC_RMID) while attached */

/* CK_REC_SHM payload: ck_rec.arg of these, one per SysV shared memory
 * segment the program has attached (its CK_REG_SYSV regions, each attach
 * mapped whole from offset 0). Restore attaches the same segment again
 * when it still exists (same id, key and size): its contents are the
 * live ones. A segment marked for removal is made anew from the pages in
 * the image; any other that is gone refuses the restore (the program
 * knows its id, which the kernel would not give again). */
struct ck_shm {
    int32_t shmid;
    int32_t key;                        /* IPC_PRIVATE is 0 */
    uint64_t size;                      /* shm_segsz */
    uint32_t mode;                      /* permission bits */
    uint32_t flags;                     /* CK_SHMF_* */
    uint64_t reserved;
};

/* Socket state: the FDSTATE payload of a socket starts with this
 * (CK_FD_UNIX: struct ck_unix; CK_FD_INET: its own struct), filled and
 * applied by fds/socket.c. Booleans the program may have set are bits of
 * opts; buffer sizes are what getsockopt reports (the kernel's doubled
 * value), timeouts in microseconds (0: none). */
#define CK_SOCKO_PASSCRED 0x1
#define CK_SOCKO_PASSSEC 0x2
#define CK_SOCKO_KEEPALIVE 0x4
#define CK_SOCKO_REUSEADDR 0x8
#define CK_SOCKO_REUSEPORT 0x10
#define CK_SOCKO_BROADCAST 0x20
#define CK_SOCKO_OOBINLINE 0x40
#define CK_SOCKO_DONTROUTE 0x80
#define CK_SOCKO_TIMESTAMP 0x100
#define CK_SOCKO_PASSPIDFD 0x200
#define CK_SOCKO_LINGER 0x1000          /* SO_LINGER on, for linger seconds */
#define CK_SOCKO_LISTENING 0x10000      /* SO_ACCEPTCONN */
#define CK_SOCKO_SNDBUF_LOCK 0x20000    /* SO_BUF_LOCK: the program set SO_SNDBUF */
#define CK_SOCKO_RCVBUF_LOCK 0x40000    /* SO_BUF_LOCK: the program set SO_RCVBUF */
#define CK_SOCKO_BUF_LOCK_KNOWN 0x80000 /* SO_BUF_LOCK was read (Linux 5.14+): buffer sizes
                                           are set again only where locked */
#define CK_SOCK_SHUT_RD 1               /* this end cannot receive any more */
#define CK_SOCK_SHUT_WR 2               /* this end cannot send any more */
struct ck_sock {
    uint16_t family;                    /* SO_DOMAIN */
    uint16_t pad0;
    uint32_t type;                      /* SO_TYPE */
    uint32_t protocol;                  /* SO_PROTOCOL */
    uint32_t opts;                      /* CK_SOCKO_* */
    int32_t sndbuf, rcvbuf;             /* SO_SNDBUF, SO_RCVBUF as read */
    int32_t rcvlowat, priority;
    int32_t peek_off;                   /* SO_PEEK_OFF, -1: off */
    int32_t linger;                     /* seconds, with CK_SOCKO_LINGER */
    uint32_t shutdown;                  /* CK_SOCK_SHUT_*: the kernel's view of this end */
    uint32_t pad1;
    int64_t rcvtimeo_us, sndtimeo_us;   /* SO_RCVTIMEO, SO_SNDTIMEO */
};

/* CK_FD_INET (fds/inet.c): a TCP or UDP socket over IPv4 or IPv6. Its
 * FDSTATE entry is a struct ck_inet; the bytes waiting in its receive
 * queue are FILEDATA records (arg: fd): the stream's bytes for TCP, for
 * UDP one struct ck_inet_dgram + its bytes (padded to 8) per datagram. */
struct ck_inaddr {
    uint16_t family;                    /* AF_INET (2), AF_INET6 (10); 0: none */
    uint16_t port;                      /* host order */
    uint32_t scope_id;                  /* IPv6 */
    uint32_t flowinfo;                  /* IPv6 */
    uint8_t addr[16];                   /* IPv4: the first 4 bytes */
    uint32_t pad;
};

/* ck_inet.role: how restore makes it again */
enum {
    CK_INET_PLAIN = 0,                  /* TCP not connected (maybe bound); any UDP socket
                                           (bound, connected: flags) */
    CK_INET_LISTEN = 1,                 /* TCP listener: bound, listen(backlog) */
    CK_INET_PAIR = 2,                   /* TCP connection whose other end (peer_fd) is in
                                           the process: both made again, same addresses */
    CK_INET_PENDING = 3,                /* TCP client end whose server end waits in the
                                           accept queue of listener_fd: connected again */
    CK_INET_DEAD = 4,                   /* TCP connection to a peer outside: comes back
                                           reset (its received bytes first) */
    CK_INET_CLOSED = 5,                 /* TCP connection the peer had closed (or both
                                           ends shut): its bytes, then end of file */
    CK_INET_CONNECTING = 6,             /* TCP connect() in progress (SYN_SENT): started
                                           again, non-blocking */
};

#define CK_INETF_BOUND 0x1              /* bound to local (a port of its own) */
#define CK_INETF_CONNECTED 0x2          /* UDP: connected to peer */
#define CK_INETF_V4MAPPED 0x4           /* IPv6 socket whose addresses are IPv4-mapped */
#define CK_INETF_FILTER_LOCKED 0x8      /* SO_LOCK_FILTER */

#define CK_INET_NOPT 32                 /* ck_inet.opt: IPPROTO_IP/IPV6/TCP options, see
                                           the table in fds/inet.c (only ever appended) */
struct ck_inet {
    struct ck_sock so;                  /* family, type, protocol, SOL_SOCKET options,
                                           shutdown (fds/socket.c) */
    uint32_t role;                      /* CK_INET_* */
    uint32_t flags;                     /* CK_INETF_* */
    uint32_t tcp_state;                 /* TCP_INFO tcpi_state at checkpoint */
    int32_t peer_fd;                    /* PAIR: the other end's fd */
    int32_t listener_fd;                /* PENDING: the listener it waits in */
    int32_t backlog;                    /* LISTEN */
    uint32_t ndgrams;                   /* UDP: datagrams saved */
    uint32_t optmask;                   /* bit i: opt[i] was read */
    uint64_t rcvq;                      /* bytes saved (stream bytes, or datagram records) */
    struct ck_inaddr local, peer;
    int32_t opt[CK_INET_NOPT];
    uint32_t outq, outq_unsent;         /* TCP: SIOCOUTQ, SIOCOUTQNSD at checkpoint */
    uint64_t bytes_acked;               /* TCP_INFO, for the pairing checks */
    uint64_t bytes_received;
    uint32_t nfilter;                   /* classic BPF instructions of its socket filter
                                           (SO_ATTACH_FILTER), 8 bytes each, right after
                                           this struct in the FDSTATE entry */
    uint32_t pad;
    uint64_t reserved;
};

/* A saved UDP datagram: this header, then len bytes, padded to 8. */
struct ck_inet_dgram {
    uint32_t len;
    uint32_t pad;
    struct ck_inaddr src;               /* where it came from */
};


/* CK_FD_UNIX: FDSTATE payload of an AF_UNIX socket (fds/unix.c), then
 * nicons uint64_t inodes (a listener's waiting clients). The fd's path
 * string is the bound file's absolute path (a path-bound socket), else
 * empty. Saved bytes (FILEDATA under the fd) are its receive queue: the
 * bytes of a stream, or for datagram and seqpacket sockets ndgrams
 * messages, each a struct ck_unix_msg, the sender's address and the data. */
#define CK_UNIXF_LISTEN 0x1             /* listening */
#define CK_UNIXF_PEER_IN 0x2            /* connected to a socket in the checkpoint */
#define CK_UNIXF_DEAD 0x4               /* stream/seqpacket connected to a socket outside
                                           the checkpoint, or to one closed: comes back
                                           as a dead connection */
#define CK_UNIXF_QUEUED 0x8             /* a client waiting in the accept queue of the
                                           listener whose inode is peer_ino */
#define CK_UNIXF_REMOVED 0x10           /* bound to a path whose file was removed */
#define CK_UNIXF_RELATIVE 0x20          /* bound to a path relative to the directory
                                           that the path string ends in name */
#define CK_UNIXF_CONNECTED 0x40         /* has a peer (connect, socketpair, accept) */
#define CK_UNIXF_OUTSIDE 0x80           /* datagram connected to a socket outside the
                                           checkpoint: connected again by its name */
#define CK_UNIXF_SCM 0x100              /* descriptors in flight in the queue: the saved
                                           bytes are messages (struct ck_unix_msg) for a
                                           stream too, refilled once every fd is made */
struct ck_unix {
    struct ck_sock so;
    uint64_t ino;                       /* the socket's inode (st_ino) */
    uint64_t peer_ino;                  /* UNIX_DIAG_PEER (0: none, or the peer has no
                                           inode: closed, or not yet accepted) */
    uint32_t state;                     /* UNIX_DIAG state: 1 connected, 7 not, 10 listening */
    uint32_t flags;                     /* CK_UNIXF_* */
    uint32_t backlog;                   /* listener: listen()'s backlog */
    uint32_t nicons;                    /* listener: clients waiting to be accepted */
    uint32_t ndgrams;                   /* messages in the saved bytes */
    uint32_t file_mode;                 /* path-bound: the socket file's permission bits */
    uint16_t namelen, peerlen;          /* bytes of name and peer, 0: unnamed */
    uint32_t pad;
    char name[108];                     /* sun_path as bound (abstract: starts with 0) */
    char peer[108];                     /* the peer's address, if named */
};

struct ck_unix_msg {                    /* one message in a CK_FD_UNIX receive queue */
    uint32_t len;                       /* data bytes */
    uint16_t addrlen;                   /* sender's sun_path bytes that follow (0: unnamed) */
    uint16_t nfds;                      /* descriptors in flight with it (SCM_RIGHTS): after
                                           the data, nfds int32_t image fd numbers (a
                                           program fd or a CK_FDF_IN_FLIGHT one) */
};

/* CK_REC_END payload. */
struct ck_end {
    uint64_t nrecords;                  /* records before END */
    uint64_t npages;                    /* pages in PAGES records */
    uint64_t raw_bytes;                 /* decoded bytes of all records */
    uint64_t stored_bytes;              /* payload bytes of all records */
};

/* Lives inside libshim.so's memory; the restorer fills it before it jumps
 * back into the program, the shim reads it after restore. */
#define CK_RESTORE_MAGIC 0x636b7368696d7221ULL
struct ck_restore_info {
    uint64_t magic;
    uint64_t restorer_start, restorer_end;  /* window to unmap */
    int32_t status_fd;                  /* --detach: report here, or -1 */
    int32_t new_pid;
    uint64_t generation;                /* bumped per restore */
    int32_t gate_fd, ready_fd;          /* the gate's second step (restore_finish), or -1 */
    uint32_t drop_caps;                 /* restored in a pid namespace of its own: each
                                           thread drops the capabilities it had there */
    uint32_t test_fail_finish;          /* tests only: restore_finish fails (set per restore) */
    int32_t err_fd;                     /* with gate_fd, in the foreground: coord's stderr for
                                           restore_finish's failures (closed after), or -1 */
    uint32_t stop_sig;                  /* stop the process with it before it runs (a
                                           single process's CK_HF_STOPPED), or 0 */
    int32_t map_fd;                     /* a tree's pid map (memfd "ckshim-tree"), or -1 */
    uint32_t fdt_follower;              /* shares its parent's descriptor table (clone with
                                           CLONE_FILES): the table's own work after restore
                                           (locks, descriptor kinds, owners, terminals,
                                           the tree's shared memory descriptors) is its
                                           parent's */
};

/* A process tree image (docs/IMAGE_FORMAT.md, "Process trees"): this
 * header, then one ordinary image stream per process at the offset its
 * entry gives (4096-aligned), the root first, parents before their
 * children. A reader that sees CK_TREE_MAGIC at offset 0 reads each
 * stream with the single-process reader (its offsets are absolute). */
#define CK_TREE_MAGIC "CKSHTRE\x01"
#define CK_TREE_VERSION 3              /* 3: entries with ctty and fg_pgid; 2: with pgid
                                           and sid, the share table; 1 (32-byte entries,
                                           neither) is read too */
#define CK_TREE_MAXPROCS 1024

struct ck_tree_entry {
    int32_t vpid;                       /* the pid the tree knows it by (getpid) */
    int32_t real_pid;                   /* its kernel pid at checkpoint */
    int32_t parent;                     /* index of its parent entry, -1 for the root */
    uint32_t flags;                     /* CK_TREE_ZOMBIE, _STOPPED, _ORPHAN */
    uint64_t offset, length;            /* its image stream in the file; a zombie: 0 and
                                           its wait status */
    int32_t pgid, sid;                  /* its process group and session at checkpoint,
                                           as the kernel numbered them (version 2; read
                                           from version 1 as the root's: ck_tree_read_hdr) */
    /* version 3: a session leader whose controlling terminal is a
     * pseudo-terminal whose master a process of the tree holds: that
     * terminal's number + 1 (0: none of the kind), and its foreground
     * process group then (kernel number, 0: none) */
    int32_t ctty, fg_pgid;
};
#define CK_TREE_ENTRY_V1 32             /* bytes of a version 1 entry (no pgid, sid) */
#define CK_TREE_ENTRY_V2 40             /* bytes of a version 2 entry (no ctty, fg_pgid) */
#define CK_TREE_ZOMBIE 0x1              /* exited, not yet waited for: no stream */
#define CK_TREE_STOPPED 0x2             /* stopped by a signal (bits 8-15 of flags): stopped
                                           again once restored */
#define CK_TREE_ORPHAN 0x4              /* adopted outside the tree when its parent exited:
                                           parent names the entry whose restore makes it
                                           again (through a helper that exits), not its
                                           parent */
#define CK_TREE_FILES 0x8               /* shares its parent's descriptor table (clone with
                                           CLONE_FILES): its parent's restorer makes it with
                                           CLONE_FILES, and its own descriptor records are
                                           not laid out (its parent's are the table's) */

struct ck_tree_hdr {
    char magic[CK_MAGIC_LEN];
    uint32_t version;
    uint32_t nprocs;                    /* entries that follow */
    uint64_t counter_stamp;             /* the tree's stamp (also in every stream) */
    char app_id[64];                    /* the root's: the counter the tree uses */
    uint64_t created_ns;
    uint8_t mac[32];                    /* with a key: keyed BLAKE2b of the header (this
                                           field zero) and entries; else zero (was reserved) */
    /* struct ck_tree_entry[nprocs], (version 2) struct ck_tree_sharehdr and
     * struct ck_tree_share[nshares], then uint64_t XXH64 (seed 0) of all
     * that */
};

/* Version 2, after the entries: the share table's size. */
struct ck_tree_sharehdr {
    uint64_t nshares;
    uint64_t flags;                     /* CK_TREE_HDR_SHARES */
};

/* The share table: descriptors of different processes of the tree that
 * are one open file description (kcmp KCMP_FILE at checkpoint, while
 * every process was parked). Entries of one group have the same group
 * number; a group spans two or more processes. */
struct ck_tree_share {
    int32_t proc;                       /* index of the process's entry */
    int32_t fd;                         /* its descriptor */
    uint32_t group;
    uint32_t flags;                     /* 0 */
};
#define CK_TREE_MAXSHARES (1u << 20)
#define CK_TREE_HDR_SHARES 0x1          /* the share table is complete (kcmp was allowed) */

#endif
