/* shim.h - libshim.so internals shared between its modules.
 *
 * The shim's state lives in one global struct (g_shim) inside the
 * program's own memory, so it is checkpointed and restored with the
 * program: after restore the manager thread finds there everything it
 * captured (signal dispositions, timers, fd flags) and puts it back. */
#ifndef CKSHIM_SHIM_H
#define CKSHIM_SHIM_H

#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <ucontext.h>

#include "ctlproto.h"
#include "auth.h"
#include "ckshim.h"
#include "image.h"

#define SHIM_API __attribute__((visibility("default")))

/* The next object's (libc's) name, into var on first use. Every such
 * place is also listed in the section "ckshim_resolve", and the shim's
 * constructor looks them all up (shim_resolve_all) before any program
 * thread runs: the manager must never call dlsym while the program's
 * threads are parked, as one may be parked inside the dynamic loader
 * (dlopen, dlclose) holding its lock, and the manager would wait for it
 * for ever. A name not found then is looked up again when used. */
struct shim_resolve {
    void **var;
    const char *name;
};
#define SHIM_RESOLVE(var, name)                                                                    \
    do {                                                                                           \
        static struct shim_resolve shim_resolve_at_                                                \
            __attribute__((section("ckshim_resolve"), used, aligned(8))) = {(void **)&(var),       \
                                                                            name};                 \
        if (__builtin_expect(!(var), 0))                                                           \
            *(void **)&(var) = dlsym(RTLD_NEXT, name);                                             \
    } while (0)
void shim_resolve_all(void);
#define SHIM_TLS __thread __attribute__((tls_model("initial-exec")))

#define SHIM_MAX_REGIONS 65536         /* above vm.max_map_count (65530 by default) */
#define SHIM_MAX_FDS 4096
#define SHIM_STRTAB (8u << 20)

/* A thread's slot while it is parked for a checkpoint. */
struct shim_slot {
    volatile int state;                 /* SLOT_* */
    pid_t tid;                          /* real tid at checkpoint */
    pid_t vtid;                         /* tid the program sees */
    uint64_t fsbase;
    uint64_t pd;                        /* pthread_self() */
    struct ck_ctx ctx;                  /* park point */
    ucontext_t *uc;                     /* the kernel's signal frame */
    stack_t ss;                         /* sigaltstack */
    char comm[16];
    uint64_t sigpending;                /* signals pending for the thread alone */
    int32_t pdeathsig, nnp;             /* pattr.c: PR_GET_PDEATHSIG, PR_GET_NO_NEW_PRIVS */
    uint32_t personality;               /* pattr.c: personality(0xffffffff), per task */
    uint64_t timerslack_ns;             /* PR_GET_TIMERSLACK */
    int32_t nice, policy, sched_prio;   /* pattr.c: its nice value, scheduling policy
                                           (SCHED_RESET_ON_FORK included), priority */
    int sched_known;                    /* those were read */
    int32_t ioprio;                     /* pattr.c: its I/O priority (ioprio_get), -1 unknown */
    cpu_set_t affinity;                 /* pattr.c: its CPU affinity */
    int affinity_known;
    uint64_t ctid;                      /* its clear-child-tid address (PR_GET_TID_ADDRESS) */
    int ctid_known;                     /* ctid was read (else: glibc's, pd's tid field) */
    int ctid_val;                       /* the word at ctid when it parked */
    int ctid_read;                      /* ctid_val could be read */
};

enum { SLOT_FREE = 0, SLOT_PARKED = 1, SLOT_LANDED = 2 };

/* A thread's CPU times, or what to add to the kernel's (cputime.c). */
struct shim_cpu {
    int64_t cpu_ns;                     /* its CPU clock */
    int64_t utime_us, stime_us;         /* getrusage(RUSAGE_THREAD) */
};

/* Per-thread state (TLS, restored with memory). */
#define SHIM_OLD_TIDS 8
struct shim_tls {
    pid_t vtid;                         /* 0: not virtualized yet */
    uint32_t ckpt_seq;                  /* bumped by every checkpoint signal */
    int64_t park_mono_ns;               /* CLOCK_MONOTONIC when parked */
    struct shim_cpu cpu_off;            /* CPU-time offsets since the last restore */
    int rseq_own;                       /* the program registered rseq itself (pattr.c) */
    uint32_t rseq_len, rseq_sig;
    uint64_t rseq_area;                 /* 0: unregistered */
    int fork_lock;                      /* holds held_lock: inside fork (or clone) */
    uint32_t nold;                      /* restores that changed its tid (mutexfix.c) */
    pid_t old_tid[SHIM_OLD_TIDS];       /* the tids it had before them, the last few */
};
extern SHIM_TLS struct shim_tls shim_tls;

struct shim_state {
    int initialized;
    int ckpt_signal;
    int listen_fd;
    uint64_t listen_ino;                /* its socket's inode (a number the program took
                                           after closing ours is not ours) */
    pid_t manager_tid;
    pid_t manager_pid;                  /* the process whose manager runs (a forked
                                           child's starts in atfork_child) */
    volatile int hold_requested;        /* coord's hold came before the manager */
    volatile int hold_gen;              /* bumped when coord's hold is over (a
                                           checkpoint that never parked) */
    volatile int hold_stopping;         /* held threads stopping the process again
                                           (no request came: quiesce_hold) */
    int release_stop;                   /* a stopped process of a tree (the request's
                                           stop_sig): stopped with it before its
                                           threads leave the park */
    int release_deferred;               /* quiesce_release waits for that stop */
    pthread_t manager;
    pid_t vpid;                         /* pid the program sees; 0: real */
    pid_t parent_vpid, parent_real;     /* forked child: the parent's two pids */
    uint32_t generation;                /* restores so far */
    uint64_t started_ns;
    char sock_path[256];
    char sock_dir[200];                 /* the socket directory this shim first used: its
                                           children and a restore use it again (the program
                                           may have cleared $CKSHIM_DIR since) */
    pid_t sock_owner;                   /* the real pid that bound sock_path */
    int shares_table;                   /* made by clone(CLONE_FILES): its descriptor table
                                           is its parent's too (socktrack.c) */
    volatile int call_mode;             /* the program closed our listening socket:
                                           coord calls (ctlproto.h, CK_CALL_COMM) */
    /* coord's calls not yet answered: tokens queued at call_head by the
     * signal handler (quiesce.c) on the manager thread, taken at
     * call_tail by that thread outside the handler */
    volatile uint32_t call_head, call_tail;
    volatile uint32_t call_token[CK_CALL_QUEUE];
    char app_id[64];
    char exe[CK_PATH_MAX];              /* the program (its first /proc/self/exe) */

    /* glibc struct pthread layout, found at startup */
    long tid_off;                       /* offset of the cached tid */
    long robust_off;                    /* offset of the robust list head */
    char *rtld_global;                  /* the dynamic loader's _rtld_global (its locks:
                                           quiesce.c fix_loader_locks), or NULL */
    size_t rtld_global_size;
    long rseq_off;                      /* __rseq_offset, or 0 */
    unsigned rseq_size;                 /* __rseq_size, 0 if rseq unused */

    /* quiesce */
    volatile int ckpt_active;
    volatile int nslots;                /* slots claimed */
    volatile int nparked;
    volatile int foreign_tid;           /* a thread on TLS not glibc's (quiesce.c) */
    volatile int exec_tid;              /* a thread in execve, the checkpoint signal blocked
                                           (execguard.c) */
    volatile int release_gen;
    volatile int nlanded;               /* after restore */
    volatile int resume_gen;            /* after restore */
    struct shim_slot *slots;            /* CK_MAX_THREADS, mmap'd at init */

    /* capture, filled while threads are parked */
    struct ck_proc proc;
    struct ck_thread *threads;          /* CK_MAX_THREADS */
    uint32_t nthreads;
    struct ck_region *regions;
    uint32_t nregions;
    struct ck_fd *fds;
    uint32_t nfds;
    char *strtab;                       /* regions' and fds' strings */
    uint32_t strtab_len;
    uint32_t regions_strtab_len;        /* regions use [0, this) */
    struct ck_restore_info rinfo;       /* written by the restorer */
    struct ck_ctx manager_ctx;
    struct ck_key *dump_key;            /* for the checkpoint in progress; lives in a
                                           mapping made after the memory map was
                                           captured, so it never enters an image */
    uint64_t pause_start_ns;

    /* regions marked MADV_DONTFORK/WIPEONFORK: witnesses for the image
     * (SHIM_MAX_REGIONS, mmap'd with the capture buffers) */
    struct ck_memcheck *memcheck;
    uint32_t nmemcheck;
    int vmflags_seen;                   /* smaps showed flags that need a look */
    pid_t writer_pid;                   /* the image writer while it runs */
    /* A restored process tree: for each process of it, the pid the tree
     * knows it by and its pid now (learnt at restore, docs/DESIGN.md
     * "Process trees"); it lives here, so it travels in later images. */
    struct shim_treepid {
        int32_t vpid, real;
    } tree[1024];
    uint32_t ntree;
    /* Process groups and sessions of the restored tree: the number the
     * tree knows each by and the one it has now (docs/DESIGN.md, "Process
     * groups and sessions in a tree"). */
    struct shim_treepid pgrps[256], sids[256];
    uint32_t npgrps, nsids;
    int restore_stop;                   /* stopped at the checkpoint: this signal
                                           stops it again once restored */
    int tree_ckpt;                      /* this checkpoint is one process of a tree's
                                           (CK_CKPT_TREE): children are coord's to check */
    /* The request's file version options (CK_CKPT_NO_VERSIONS, its
     * --shared-file list), for the capture in progress. */
    int ckpt_noversions;
    /* CK_CKPT_IDLE: the forked writer's team at idle priority, the
     * writer itself taking over at normal priority after idle_ms (0:
     * never) */
    int ckpt_idle;
    uint32_t ckpt_idle_ms;
    uint32_t ckpt_nshared;
    uint64_t ckpt_shared[CK_MAX_SHARED][2];
    /* CK_CKPT_PROGRESS: the writer reports how far it is on progress_conn
     * (the request's connection) while the image is written */
    int progress, progress_conn;
    /* One process of a tree: the sockets whose queues another process of
     * the tree saves (CK_CAPTURE_NOPEEK): bit fd - nopeek_base. */
    int nopeek_on;
    uint64_t nopeek_base;
    uint64_t nopeek[CK_NOPEEK_BITS / 64];
};
extern struct shim_state g_shim;

/* Is fd a socket whose queue another process of the tree saves (so this
 * one must not walk it: one SO_PEEK_OFF for all holders)? */
int shim_nopeek(int fd);

/* quiesce.c: wait until a checkpoint starts (at most 5 s). */
void quiesce_hold(int in_handler);

/* Process trees (wrappers.c): the pid now of a pid the tree knows
 * (itself if not in the tree), and the reverse. */
pid_t shim_tree_real(pid_t vpid);
pid_t shim_tree_virt(pid_t real);
/* The ids the program knows may not be the kernel's: it was restored, is
 * a process of a restored tree, or a child forked by a restored process
 * (which knows its parent by the parent's old pid). */
static inline int shim_ids_moved(void)
{
    return g_shim.generation || g_shim.ntree || g_shim.parent_vpid;
}
/* The same for process group and session ids (wrappers.c). */
pid_t shim_pgrp_virt(pid_t real);
pid_t shim_pgrp_real(pid_t v);
pid_t shim_sid_virt(pid_t real);
/* Reading /proc/self/fd (dfd) one number at a time, without malloc
 * (capture.c): {dfd, buffer, its size}, then fdlist_next until -1. */
struct fdlist {
    int dfd;
    char *buf;
    size_t cap;
    long n, off;
};
int fdlist_next(struct fdlist *l);

/* restore.c: read the tree's pid map coord left on a memfd, if any. */
void restore_tree_map(int map_fd, int follower);

/* ctx.S: save callee-saved registers, rsp, return address, mxcsr and the
 * x87 control word. Returns 0 when called, 1 when resumed by the restorer. */
int shim_ctx_save(struct ck_ctx *ctx) __attribute__((returns_twice));

/* util */
int64_t shim_now_ns(int clock);
pid_t shim_real_gettid(void);
pid_t shim_real_getpid(void);
int shim_futex_wait(volatile int *addr, int val, int64_t timeout_ns);
void shim_futex_wake(volatile int *addr);
int shim_read_file(const char *path, char *buf, size_t cap);   /* bytes or -errno */
void shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* shim.c: a file the manager reads while the program runs, which a child
 * forked meanwhile closes (one at a time; -errno on failure) */
int shim_held_open(const char *path);
void shim_held_release(void);

/* mutexfix.c: a restored thread's tid before (old), and now */
void shim_mutex_remember_tid(pid_t old, pid_t now);

/* quiesce.c */
int quiesce_init(void);
int quiesce_stop_threads(char *err, size_t errlen);
void quiesce_release(void);
void quiesce_stop_self(int sig);
void quiesce_end_request(int ended);
void quiesce_resume_restored(void);
int quiesce_wait_landed(int64_t timeout_ns);
void quiesce_fixup_thread(struct shim_slot *s);
int quiesce_install_handler(void);
extern int shim_skip_fds[4];          /* the manager's own fds during a checkpoint,
                                           libunwind's pipe (unwind.c) */
/* siginfo of a signal pending at the checkpoint (quiesce.c) */
struct shim_sigkeep {
    int slot;                           /* the thread's slot; -1: the process */
    int deferred;                       /* queued again by its thread itself after a
                                           restore (only it may send this si_code) */
    siginfo_t si;                       /* si_pid as the program knows it */
};
/* quiesce.c: a restored thread queues its deferred kept signals again. */
void quiesce_requeue_deferred(int slot);
/* quiesce.c: the manager, at capture, keeps the signals pending for the
 * process with their siginfo; returns the process's pending set */
uint64_t quiesce_keep_shared(void);
/* The pid the program knows for a real pid (its own, one of the tree's),
 * and the reverse (wrappers.c). */
pid_t shim_pid_virt(pid_t real);
pid_t shim_pid_real(pid_t v);
/* The id the program knows for a real pid or tid: its own, its threads',
 * then the tree's and its parent's (wrappers.c). */
pid_t shim_id_virt(pid_t real);
/* A kept siginfo whose si_pid is a pid: a sender's (kill, sigqueue,
 * tgkill) or SIGCHLD's child; other codes keep other data there (a
 * timer's id, a program's own bytes). Kept as the program knows it, and
 * queued again so (a signalfd or handler reads it raw), but SIGCHLD's,
 * which goes back to the kernel's (its trampoline shows the old one). */
static inline int shim_si_has_pid(const siginfo_t *si)
{
    return si->si_pid > 0 && ((si->si_signo == SIGCHLD && si->si_code > 0) ||
                              si->si_code == SI_USER || si->si_code == SI_QUEUE ||
                              si->si_code == SI_TKILL);
}
#define SHIM_MAX_SIGKEEP 128
extern struct shim_sigkeep shim_sigkeep[SHIM_MAX_SIGKEEP];
extern volatile int shim_nsigkeep;      /* may exceed SHIM_MAX_SIGKEEP */
extern volatile int shim_leader_seen;

/* socktrack.c: the sockets whose options, owner and locks the shim knows
 * are the kernel's defaults */
enum { ST_OPTS = 1, ST_OWNER = 2, ST_LOCK = 4, ST_FLAGS = 8, ST_ALL = 15 };
/* socktrack_info.fl without ST_FLAGS: the descriptor's flags as made */
enum { STF_NONBLOCK = 1, STF_CLOEXEC = 2 };
struct socktrack_info {
    int family, type, protocol;
    unsigned flags;                     /* ST_* the program changed */
    uint64_t optset;                    /* with ST_OPTS: the groups of options it set
                                           (fds/socket.h, ck_sockopt_group) */
    unsigned fl;                        /* without ST_FLAGS: STF_* */
};
void socktrack_init(void);
/* A clone() child that is a process (socktrack.c): what fork's handlers
 * do, around it and in the child (CLONE_PARENT: its parent is ours). */
void shim_clone_prepare(void);
void shim_clone_parent(void);
void shim_clone_child(int flags);
void shim_sharer_born(pid_t pid);          /* a child of ours shares our descriptor table */
void shim_sharer_reaped(pid_t pid);        /* a child waited for: its socket out of our table */
void shim_sharer_exec(void);               /* this sharer execs: its socket out of the table */
/* Threads of the program's own running besides the calling one (the
 * shim's manager and timer helper left out), or -1. */
int shim_threads_own(void);
int timers_helper_running(void);
void timers_after_fork(void);
int socktrack_get(int fd, uint64_t ino, struct socktrack_info *out);
uint32_t socktrack_gen(void);                  /* read before a call that makes a socket */
void socktrack_accepted(int lfd, int fd, int flags, uint32_t gen); /* accept4's flags */
void socktrack_copied(int fd);
void socktrack_closed(int fd);
void socktrack_fcntl(int fd, int cmd);
void socktrack_ioctl(int fd, unsigned long req);
void socktrack_forget_all(void);
void socktrack_quiet(int on);              /* 1 around the shim's own calls */
void socktrack_capture_begin(void);
void socktrack_saved(int fd, const struct socktrack_info *k); /* a known socket captured */
void socktrack_after_restore(void);

/* fown.c */
int fown_capture(struct ck_fd *f, char *err, size_t errlen);
int fown_restore(char *err, size_t errlen);
/* capture.c */
/* fdcap.c: what kinds of descriptors save besides struct ck_fd */
#define SHIM_MAX_FDBYTES SHIM_MAX_FDS
struct shim_fdbytes {
    int fd;                             /* FILEDATA arg: the fd they belong to */
    size_t off;                         /* where in the bytes buffer (fdbytes_data) */
    size_t len;
};
extern struct shim_fdbytes shim_fdbytes[SHIM_MAX_FDBYTES];
extern uint32_t shim_nfdbytes;
extern char *shim_fdstate;              /* FDSTATE payload */
extern size_t shim_fdstate_len;
extern uint32_t shim_nfdstate;
struct ck_fdinfo;
struct stat;
const char *fdbytes_data(uint32_t i);
void fdcap_reset(void);
void fdcap_forget(int unmap);
/* fdcap_list: the descriptors this capture takes (*nall grows as
 * descriptors in flight are found); starts a new capture for the kinds. */
void fdcap_list(const int *all, const int *nall);
int fdcap_try(uint32_t idx, const struct stat *st, char *target, const char **path,
              const char *info, int infolen, const struct ck_fdinfo *fi, int family,
              const struct sockaddr_storage *name, unsigned int namelen,
              const struct socktrack_info *known, char *err, size_t errlen);
int fdcap_finish(char *err, size_t errlen);
int fdcap_resumed(char *err, size_t errlen);
/* capture.c */
int capture_all(char *err, size_t errlen);
void capture_forget(int unmap);
void capture_vmflags_prescan(void);
void capture_flush_unsent(void);
void capture_fork_flags(int for_fork);
int capture_check_fork_child(char *err, size_t errlen);
void capture_restore_vmflags(void);
#define SHIM_MAX_LOCKS 4096
extern struct ck_lock shim_locks[SHIM_MAX_LOCKS];   /* file locks held (LOCKS record) */
extern uint32_t shim_nlocks;
#define SHIM_MAX_TTYS CK_MAX_TTYS
extern struct ck_tty shim_ttys[SHIM_MAX_TTYS];      /* std fds on terminals, pseudo-terminal
                                                       masters (TTYS record) */
extern uint32_t shim_nttys;
#define SHIM_MAX_SHMS 256
extern struct ck_shm shim_shms[SHIM_MAX_SHMS];      /* SysV segments attached (SHM record) */
extern uint32_t shim_nshms;
int capture_relock_after_restore(char *err, size_t errlen);
void capture_tty_after_restore(void);
void capture_tty(int fd, const struct stat *st);

/* dump.c: write the image (header, metadata, pages). */
struct dump_stats {
    uint64_t bytes, pages, raw_bytes;
    int idle;                           /* the compression team ran at SCHED_IDLE */
    int64_t normal_after_ns;            /* >= 0: the writer went on at normal priority
                                           this long after it started (its idle limit) */
};
/* forked: in the image writer, a process of its own (not the program:
 * files it opens and closes cost the program no lock). gate_fd >= 0 (a
 * tree's writer): compress ahead, but write no byte before coord's
 * CK_OP_WRITE on that connection (waiting gate_ms at most for a word). */
int dump_image(int fd, const struct ck_header *hdr, struct dump_stats *st, char *err,
               size_t errlen, int forked, int gate_fd, int gate_ms);
int dump_witnesses(char *err, size_t errlen);

/* ident.c: content hashes of open and mapped files (writer side); the
 * versions of write-only files (CK_FDF_VER_LATER) only when forked. */
void ident_hash_files(int forked);

/* unwind.c */
void unwind_thread(struct ck_thread *t, ucontext_t *uc);
void unwind_pipe_close(void);            /* after the walks */
void unwind_names(void);                /* after capture_regions */
void unwind_symbol_name(const void *addr, char *out, size_t len);

/* hooks.c: the program's checkpoint hooks (ckshim.h), run by the manager
 * while the program's threads run */
#define SHIM_MAX_HOOKS CKSHIM_MAX_HOOKS
int hooks_before_checkpoint(char *err, size_t errlen);  /* 0, or -ECANCELED: refused */
void hooks_after_checkpoint(void);      /* of the before-hooks that returned 0 */
void hooks_after_restore(void);

/* restore.c: runs in the manager after the restorer jumped back. */
void restore_finish(void);
int restore_process_state(void);

/* seed.c: dump on a signal, RESTORE_FROM_FILE */
int seed_init(void);
int seed_trigger_fd(void);
int seed_is_trigger(int sig);
int seed_is_live(int sig);
struct ck_sigaction *seed_shadow(int sig);
int seed_dump(void);
void seed_reinstall(void);
void seed_restore_from_file(void);

/* shim.c */
void shim_random(void *buf, size_t len);
int shim_checkpoint(const struct ck_ctl_req *req, int conn, int outfd, struct ck_ctl_rep *rep);
int shim_listen(void);
int shim_sock_path_make(void);
/* shim.c: a setting read at checkpoint (CKSHIM_SHARED_FILES, ...), as the
 * environment had it when the shim started (else getenv's) */
const char *shim_env(const char *name);
int shim_call_path(void);
void shim_listen_closing(unsigned first, unsigned last);
void shim_call_mode_enter(void);
int shim_fork_lock_drop(void);
void shim_fork_lock_take(void);
void shim_fill_header(struct ck_header *h, const struct ck_ctl_req *req);

/* wrappers.c */
extern int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
extern struct ck_sigaction shim_app_ckpt_action;  /* the program's disposition, kernel layout */
int wrappers_init(void);
int shim_app_has_ckpt_handler(void);
const sigset_t *shim_strip_mask(const sigset_t *set, sigset_t *tmp); /* without our signal */

/* pattr.c: process attributes (prctl, oom_score_adj, membarrier) */
void pattr_park(struct shim_slot *s);
int pattr_capture(struct ck_proc *p, char *err, size_t errlen);
void pattr_seccomp_baseline(void);                 /* at start and after a restore */
void pattr_unpark(void);                            /* before the threads run again */
void pattr_thread_restore(const struct shim_slot *s);
int pattr_restore(char *err, size_t errlen);
int pattr_capture_aio(char *err, size_t errlen);       /* after the memory map */
void pattr_rseq_restore(uint64_t fsbase);
long shim_set_errno(long r);            /* a raw result as libc returns it (-1, errno) */

/* waits.c: blocking calls a checkpoint does not cut short */
int waits_sigtimedwait(int (*real)(const sigset_t *, siginfo_t *, const struct timespec *),
                       const sigset_t *set, siginfo_t *info, const struct timespec *t);

/* cputime.c: CPU-time clocks continue across a restore */
void cputime_capture(void);
void cputime_restore(void);
void cputime_forget(void);
clockid_t cputime_clock(clockid_t c, int64_t *off_ns);  /* the kernel's id, offset to add */

/* netrec.c: `coord run --record-net`, the journal of received bytes */
int netrec_init(void);
int netrec_fd(void);                   /* the journal (never in an image), or -1 */
void netrec_new_epoch(uint64_t stamp); /* parked, for the checkpoint with this stamp */
void netrec_after_restore(void);
int netrec_poll_ms(void);              /* the manager's poll timeout */
void netrec_sync(void);
void netrec_park(void *ucv);           /* the checkpoint handler, before parking */

/* seccomp.c: trap raw rt_sigprocmask/rt_sigaction of the executable (Go) */
extern struct ck_sigaction shim_app_sigsys_action; /* the program's SIGSYS disposition */
int seccomp_shim_init(void);
int seccomp_shim_after_restore(void);
int seccomp_shim_active(void);

#endif
