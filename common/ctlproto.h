/* ctlproto.h - the control socket protocol between coord and libshim.so.
 *
 * Each process under the shim listens on a UNIX stream socket
 * <dir>/<pid>.sock, where <dir> is ck_sock_dir() and <pid> is the real
 * (kernel) pid. The directory is 0700 and owned by the user; the shim also
 * checks SO_PEERCRED (same uid or root). coord connects, sends one
 * struct ck_ctl_req (for CK_OP_CHECKPOINT with the output fd attached as
 * SCM_RIGHTS), and reads one struct ck_ctl_rep; then the connection closes.
 *
 * With CK_CKPT_STAMP the checkpoint has two phases, so that the counter is
 * only advanced for a checkpoint that can succeed: the shim parks and
 * captures the process, answers CK_STATUS_NEED_STAMP, and waits (10 s) for
 * a CK_OP_STAMP request carrying the stamp (or CK_OP_ABORT); then it writes
 * the image and sends the final reply.
 *
 * With CK_CKPT_COMMIT coord has a third step: after a good final reply it
 * makes the image durable (fsync, rename over the target, fsync of the
 * directory, counter advance) and then sends CK_OP_COMMIT. Until then the
 * image is not the user's: if coord goes away (killed, Ctrl-C) or sends
 * CK_OP_ABORT, the shim removes coord's temporary file and, with
 * CK_CKPT_KILL, releases the program instead of ending it. So at every
 * moment the user has the running program or a committed image.
 */
#ifndef CKSHIM_CTLPROTO_H
#define CKSHIM_CTLPROTO_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CK_CTL_MAGIC 0x434b4331u        /* "CKC1" */

enum {
    CK_OP_INFO = 1,                     /* describe the process */
    CK_OP_CHECKPOINT = 2,               /* write an image to the passed fd */
    CK_OP_STAMP = 3,                    /* second message: the counter stamp */
    CK_OP_ABORT = 4,                    /* second or third message: give up, release */
    CK_OP_COMMIT = 5,                   /* third message: the image is committed */
    CK_OP_CAPTURE = 6,                  /* CK_CKPT_TREE: the whole tree is parked */
    CK_OP_KEEPALIVE = 7,                /* coord is still at work (every second while the
                                           shim waits for its next word): keep waiting */
    CK_OP_WRITE = 8,                    /* CK_CKPT_TREE: the writer's turn (below) */
    CK_OP_PARK = 9,                     /* CK_CKPT_READY: every process is ready to park */
    CK_OP_PREPARE = 10,                 /* CK_CKPT_TREE: the writer may get ready (below) */
};

/* ck_ctl_rep.status of the first reply to a CK_CKPT_STAMP checkpoint: the
 * threads are parked and the state captured; send CK_OP_STAMP (with the
 * stamp for rep.app_id) or CK_OP_ABORT. */
#define CK_STATUS_NEED_STAMP 1

/* With CK_CKPT_TREE (one process of a tree, docs/DESIGN.md "Process
 * trees"): the first reply is CK_STATUS_PARKED once the threads are
 * parked, before anything is captured; the shim waits for CK_OP_CAPTURE
 * (or CK_OP_ABORT: release), sent by coord when every process of the tree
 * is parked, so every process is captured at one moment. Then it goes on
 * as a CK_CKPT_STAMP checkpoint. Children of the process are not refused
 * (coord checks them); the bytes waiting in every pipe it reads from are
 * saved, since the writer may be another process of the tree.
 *
 * The passed fd of a tree checkpoint is the tree image itself (an open
 * file description of coord's temporary file for this process alone).
 * After CK_OP_STAMP the shim forks its writer, releases the program as
 * usual and answers CK_STATUS_FORKED, but the writer waits for
 * CK_OP_WRITE before it writes a byte:
 * coord gives the turns one process at a time, each after setting the
 * description's offset to where that stream goes in the image (the end of
 * the previous one), so every stream is written once, in place, by one
 * writer at a time (whose compression threads use every core). The final
 * reply follows the stream, sent by the writer itself (the program may
 * have exec'd meanwhile, ending the manager; no fsync: coord syncs the
 * image once). Before its turn, a writer gets CK_OP_PREPARE (coord sends
 * it, once every process has forked, to the writer whose turn is next
 * and the two after it): it checks its snapshot and compresses its
 * stream's first megabytes into its buffers, so that its turn starts
 * with bytes to write (the disk never waits for a writer's start), but
 * it writes nothing before CK_OP_WRITE. */
#define CK_STATUS_PARKED 2

/* With CK_CKPT_PROGRESS: while the image is written, the writer sends
 * interim replies with this status, about four a second, before the
 * final one (coord draws a progress line from them). raw_bytes: memory
 * gone through so far (pages present or swapped, zero ones included);
 * bytes: the memory to go through in all, an estimate made when the
 * writer starts (Anonymous + Swap of /proc/self/smaps_rollup, plus the
 * regions saved whole): it can be passed, never reached. Nothing else is
 * filled. */
#define CK_STATUS_PROGRESS 3

/* With CK_CKPT_TREE | CK_CKPT_READY, before that: the program's
 * before-checkpoint hooks ran and the shim did what it does while the
 * program still runs (the prescan of its mappings, which walks their
 * page tables); it waits for CK_OP_PARK, sent once every process of the
 * tree is that far, so that the pause of the tree (from the first process
 * parked) does not include the slowest one's preparations. */
#define CK_STATUS_READY 4

/* With CK_CKPT_TREE, after CK_OP_STAMP: the writer is forked and the
 * program released (with CK_CKPT_KILL: still parked); the writer waits
 * for CK_OP_WRITE. coord gives the first turn only once every process of
 * the tree said so: a writer at work would take the cores the others
 * need to fork (their pause). */
#define CK_STATUS_FORKED 5

/* ck_ctl_req.flags for CK_OP_CHECKPOINT */
#define CK_CKPT_KILL 0x1                /* keep threads parked, exit after a good dump */
#define CK_CKPT_NOFORK 0x2              /* write from the parked process, no fork */
#define CK_CKPT_STAMP 0x4               /* two-phase: ask for the stamp after capture */
#define CK_CKPT_COUNTER_NONE 0x8        /* (with CK_OP_STAMP) image is unstamped */
#define CK_CKPT_MAC 0x10                /* authenticate the image with key_* */
#define CK_CKPT_ENCRYPT 0x20            /* also encrypt page data (needs CK_CKPT_MAC) */
#define CK_CKPT_COMMIT 0x40             /* three-phase: wait for CK_OP_COMMIT (above) */
#define CK_CKPT_TMPFILE 0x80            /* the fd is coord's temporary file: remove it
                                           if coord goes away before committing */
#define CK_CKPT_TREE 0x100              /* one process of a tree checkpoint (below) */
#define CK_CKPT_PIDNS 0x200             /* the process is in a pid namespace of its own
                                           (coord run --pidns): CK_HF_PIDNS */
#define CK_CKPT_NO_VERSIONS 0x400       /* --no-file-versions: no written file is saved
                                           at its checkpoint version */
#define CK_CKPT_PROGRESS 0x800          /* send CK_STATUS_PROGRESS replies while the image
                                           is written */
#define CK_CKPT_READY 0x1000            /* (with CK_CKPT_TREE) answer CK_STATUS_READY
                                           and wait for CK_OP_PARK before parking */
#define CK_CKPT_IDLE 0x2000             /* the forked image writer runs at idle CPU and
                                           I/O priority (coord run's periodic ones) */

/* ck_ctl_rep.msg of a good final reply when a forked writer wrote the
 * image: CK_WRITER_NOTE "NS PRIORITY AFTER", the writer's CPU time (all
 * its threads, ns), "idle" or "normal" (its compression team's), and when
 * an idle writer went on at normal priority (ns after it started; -1:
 * never). */
#define CK_WRITER_NOTE "writer-cpu-ns "

#define CK_MAX_SHARED 16

/* ck_ctl_req.flags for CK_OP_CAPTURE: the queues of some of this
 * process's sockets are saved by another process of the tree holding the
 * same sockets (inherited across fork): do not walk them. Which ones: bit
 * (fd - counter_stamp) of the 2048-bit map in `shared` (read as 32
 * uint64_t words). */
#define CK_CAPTURE_NOPEEK 0x1
#define CK_NOPEEK_BITS (CK_MAX_SHARED * 2 * 64)

struct ck_ctl_req {
    uint32_t magic;
    uint32_t op;
    uint32_t flags;
    uint32_t idle_ms;                   /* CK_CKPT_IDLE: the writer goes on at normal
                                           priority after this long (0: never) */
    uint64_t counter_stamp;             /* stamped into the header (0: none) */
    char app_id[64];                    /* stamped into the header ("" = keep) */
    uint8_t key_mac[32];                /* CK_CKPT_MAC: derived keys (auth.h) */
    uint8_t key_enc[32];
    uint8_t key_id[8];
    uint32_t nshared;                   /* --shared-file: files not saved at their
                                           checkpoint version, by (dev, ino) */
    uint32_t stop_sig;                  /* a stopped process (below) */
    uint64_t shared[CK_MAX_SHARED][2];
};

/* stop_sig: the process (a tree's, or one alone) was stopped by this
 * signal and coord continued it for the checkpoint. Whatever the outcome,
 * unless the program ends (--kill), the shim stops the process with it
 * again before any thread of the program leaves the park or coord's hold,
 * so the program never runs while it should be stopped (0: not stopped).
 * The image's header says so (CK_HF_STOPPED): restore stops it again. */

/* SIG stops a process: the four stop signals, what a request's stop_sig
 * and an image's (CK_HF_STOPPED) may be. */
static inline int ck_stop_signal(uint32_t sig)
{
    return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

struct ck_ctl_rep {
    uint32_t magic;
    int32_t status;                     /* 0 or -errno */
    uint64_t bytes;                     /* image bytes written */
    uint64_t pages;                     /* pages stored */
    uint64_t raw_bytes;                 /* memory bytes those pages hold */
    uint64_t total_ns;                  /* request to image complete */
    uint64_t pause_ns;                  /* how long the program's threads were parked */
    uint32_t nthreads;
    uint32_t orig_pid;                  /* pid the program sees (getpid) */
    uint32_t real_pid;
    uint32_t generation;                /* how many restores this process went through */
    uint64_t started_ns;                /* CLOCK_REALTIME when the shim started */
    char app_id[64];
    char exe[256];
    char msg[512];                      /* error text when status < 0 */
};

/* Directory of the control sockets: $CKSHIM_DIR if set, else
 * $XDG_RUNTIME_DIR/ckshim when XDG_RUNTIME_DIR is set, else
 * /tmp/ckshim-<uid>, unless that exists and is not safe (a symlink, not a
 * directory, another user's, writable by others): then $HOME/.ckshim,
 * and ck_sock_dir_note() says why. Writes it to buf. Returns 0,
 * -ENAMETOOLONG, or -EPERM (no safe place; ck_sock_dir_note() says). */
int ck_sock_dir(char *buf, size_t len);

/* After ck_sock_dir(): a warning for the user when it did not use the
 * usual directory, else NULL. */
const char *ck_sock_dir_note(void);

/* Create the directory (0700) if missing and check it is ours and not
 * group/world writable. Returns 0 or -errno. */
int ck_sock_dir_prepare(const char *dir);

/* <dir>/<pid>.sock into buf. Returns 0 or -ENAMETOOLONG. A process in a
 * pid namespace other than the initial one (coord run --pidns) listens on
 * <dir>/ns<INODE>-<pid in that namespace>.sock instead: its pid there
 * says nothing outside (every such namespace has a pid 2). For another
 * process (coord), the namespace and the pid in it are read from
 * /proc/PID/ns/pid and the last NSpid of /proc/PID/status. */
int ck_sock_path(char *buf, size_t len, int pid);

/* The shim's own path in directory dir (NULL: ck_sock_dir's): its pid
 * namespace from /proc/self/ns/pid, and rawpid, its pid as the kernel
 * gives it (the pid in that namespace). */
int ck_sock_path_self(char *buf, size_t len, const char *dir, int rawpid);

/* A program that closed the shim's listening socket (closed every
 * descriptor, as a daemon or zdtm's fd test does) keeps none of ours in
 * its table: the shim names its manager thread CK_CALL_COMM, and coord
 * reaches it the other way round. coord listens on a call path (in the
 * socket's directory, "c<token>": ck_call_path, never longer than a
 * socket's own name of 9 characters or more) and queues the shim's
 * checkpoint signal to that thread with si_code SI_QUEUE and the token as
 * its value; the manager connects there and is served as if it had
 * accepted coord. Up to CK_CALL_QUEUE calls may wait at once. */
#define CK_CALL_COMM "ckshim-call"
#define CK_CALL_QUEUE 16

/* The call path for token beside the control socket's path sock. Returns
 * 0 or -ENAMETOOLONG. */
int ck_call_path(char *buf, size_t len, const char *sock, uint32_t token);

/* The inode of pid's pid namespace (pid 0: the caller's), or 0 for the
 * initial namespace or when it cannot be read. */
uint64_t ck_pidns_of(int pid);

/* The pid of pid (seen from here) in its own pid namespace: the last
 * NSpid of /proc/PID/status; pid itself when it cannot be read. */
int ck_pidns_inner(int pid);

/* siginfo of a sigqueue()d signal (SI_QUEUE) from pid and uid, as
 * rt_sigqueueinfo takes it (coord's call token, the shim's sigqueue). */
static inline void ck_siginfo_queued(siginfo_t *si, int sig, pid_t pid, uid_t uid,
                                     union sigval value)
{
    memset(si, 0, sizeof *si);
    si->si_signo = sig;
    si->si_code = SI_QUEUE;
    si->si_pid = pid;
    si->si_uid = uid;
    si->si_value = value;
}

#endif
