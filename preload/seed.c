/* seed.c - the seed applications' own workflow, for any program.
 *
 *   CKSHIM_DUMP_ON=TERM,INT CKSHIM_DUMP_FILE=dump.img  LD_PRELOAD=libshim.so PROG
 *       when PROG receives one of these signals, the shim writes an image
 *       to dump.img (stamped by the counter, like coord checkpoint) and then
 *       lets the signal have its normal effect: PROG's own handler, or the
 *       default action (for TERM and INT: the program ends).
 *   RESTORE_FROM_FILE=dump.img  LD_PRELOAD=libshim.so PROG
 *       resumes from the image instead of starting fresh: the constructor
 *       replaces the new process with `coord restore dump.img` (same counter
 *       check, same rules), so the restored program runs under this pid.
 *
 * The shim keeps the trigger signals' kernel dispositions (like the
 * checkpoint signal): what the program installs for them is a shadow,
 * reported back by sigaction() and applied after the dump.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "auth.h"
#include "counter.h"
#include "ctlproto.h"
#include "fileid.h"
#include "shim.h"

static uint64_t dump_mask;              /* bit sig-1 set: dump on sig */
static char dump_file[1024];
static struct ck_sigaction shadow[CK_NSIG];
static int req_pipe[2] = {-1, -1};
static volatile int dump_gen;           /* bumped when a dump ends (or after restore) */
static volatile int dumping;
static volatile int dump_failed;         /* the last dump wrote no image */

int seed_trigger_fd(void)
{
    return req_pipe[0];
}

int seed_is_trigger(int sig)
{
    return sig > 0 && sig < CK_NSIG && (dump_mask & (1ULL << (sig - 1)));
}

struct ck_sigaction *seed_shadow(int sig)
{
    return &shadow[sig];
}

static int parse_signal(const char *s)
{
    static const struct {
        const char *name;
        int sig;
    } names[] = {{"TERM", SIGTERM}, {"INT", SIGINT},   {"HUP", SIGHUP},   {"QUIT", SIGQUIT},
                 {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"ALRM", SIGALRM}, {"PWR", SIGPWR},
                 {"XCPU", SIGXCPU}};
    if (!strncasecmp(s, "SIG", 3))
        s += 3;
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(s, names[i].name))
            return names[i].sig;
    char *end;
    long v = strtol(s, &end, 10);
    if (*s && !*end && v > 0 && v < CK_NSIG && v != SIGKILL && v != SIGSTOP)
        return (int)v;
    return -1;
}

static void seed_handler(int sig, siginfo_t *si, void *uc);

/* Put our handler in the kernel for a trigger signal: every other signal
 * but the checkpoint signal is blocked while it runs. */
static void install_trigger(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = seed_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    sigdelset(&sa.sa_mask, g_shim.ckpt_signal);
    real_sigaction(sig, &sa, NULL);
}

/* Read CKSHIM_DUMP_ON / CKSHIM_DUMP_FILE and take over the trigger
 * signals. Returns 0 (also when not configured) or -errno. */
int seed_init(void)
{
    const char *on = getenv("CKSHIM_DUMP_ON");
    if (!on || !*on)
        return 0;
    char list[256];
    snprintf(list, sizeof list, "%s", on);
    for (char *save = NULL, *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        int s = parse_signal(t);
        if (s < 0 || s == g_shim.ckpt_signal) {
            fprintf(stderr, "ckshim: CKSHIM_DUMP_ON: '%s' is not a signal I can dump on\n", t);
            continue;
        }
        dump_mask |= 1ULL << (s - 1);
    }
    const char *f = getenv("CKSHIM_DUMP_FILE");
    if (f && *f) {
        if (f[0] == '/') {
            snprintf(dump_file, sizeof dump_file, "%s", f);
        } else {
            char cwd[512];
            if (!getcwd(cwd, sizeof cwd))
                snprintf(cwd, sizeof cwd, ".");
            snprintf(dump_file, sizeof dump_file, "%s/%s", cwd, f);
        }
    } else {
        char cwd[512];
        if (!getcwd(cwd, sizeof cwd))
            snprintf(cwd, sizeof cwd, ".");
        /* APP-ID.ckpt when the id was chosen (CKSHIM_APP_ID), else the
         * program's name: a per-run id would make the name unpredictable. */
        const char *id = getenv("CKSHIM_APP_ID");
        char exe[512];
        if (!id || !*id) {
            ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
            exe[n > 0 ? n : 0] = 0;
            const char *b = strrchr(exe, '/');
            id = b ? b + 1 : exe[0] ? exe : "program";
        }
        snprintf(dump_file, sizeof dump_file, "%s/%s.ckpt", cwd, id);
    }
    if (pipe2(req_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -errno;
    for (int fd = 0; fd < 2; fd++) {
        int hi = fcntl(req_pipe[fd], F_DUPFD_CLOEXEC, 890);
        if (hi >= 0) {
            close(req_pipe[fd]);
            req_pipe[fd] = hi;
        }
    }
    for (int s = 1; s < CK_NSIG; s++) {
        if (!seed_is_trigger(s))
            continue;
        syscall(SYS_rt_sigaction, s, NULL, &shadow[s], 8);
        install_trigger(s);
    }
    return 0;
}

/* Re-install the trigger handlers after a restore (exec reset them). */
void seed_reinstall(void)
{
    for (int s = 1; s < CK_NSIG; s++)
        if (seed_is_trigger(s))
            install_trigger(s);
    /* A handler that was waiting for the dump in the previous life must
     * not wait for ever, nor pass the signal on: it sees the new
     * generation and returns. */
    __atomic_store_n(&dumping, 0, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&dump_gen, 1, __ATOMIC_SEQ_CST);
    shim_futex_wake(&dump_gen);
}

/* The program's disposition is live in the kernel for these signals (from
 * a forward until the manager re-arms the trigger): sigaction() for them
 * goes to the kernel too. */
static volatile int live[CK_NSIG];
static volatile pid_t live_tid[CK_NSIG];   /* the thread the signal was re-sent to */
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

int seed_is_live(int sig)
{
    return sig > 0 && sig < CK_NSIG && live[sig];
}

/* Give the signal its normal effect, as the program set it up: put the
 * program's disposition into the kernel, send the signal to this thread
 * again and return. It is delivered natively (the program's handler with
 * its own flags and mask, or the default action) as soon as our handler
 * returns; the manager then re-arms the trigger. */
static void forward(int sig)
{
    struct ck_sigaction *a = &shadow[sig];
    if (a->handler == (uint64_t)SIG_IGN)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = (void (*)(int))a->handler;
    sa.sa_flags = (int)(a->flags & ~(uint64_t)SA_RESTORER);
    memcpy(&sa.sa_mask, &a->mask, sizeof a->mask);
    live[sig] = 1;
    live_tid[sig] = shim_real_gettid();
    real_sigaction(sig, &sa, NULL);
    syscall(SYS_tgkill, shim_real_getpid(), shim_real_gettid(), sig);
    char b = (char)(0x80 | sig);
    ssize_t w = write(req_pipe[1], &b, 1);
    (void)w;
}

static void seed_handler(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;

    uint32_t gen_restore = g_shim.generation;
    int gen = __atomic_load_n(&dump_gen, __ATOMIC_SEQ_CST);
    if (!__atomic_exchange_n(&dumping, 1, __ATOMIC_SEQ_CST)) {
        char b = (char)sig;
        ssize_t w = write(req_pipe[1], &b, 1);
        (void)w;
    }
    while (__atomic_load_n(&dump_gen, __ATOMIC_SEQ_CST) == gen)
        shim_futex_wait(&dump_gen, gen, -1);
    if (g_shim.generation != gen_restore) {
        /* We are the restored program: the signal was spent on the dump. */
        errno = saved;
        return;
    }
    if (__atomic_load_n(&dump_failed, __ATOMIC_SEQ_CST)) {
        /* no image: keep the program (see seed_dump) */
        errno = saved;
        return;
    }
    forward(sig);
    errno = saved;
}

/* Write the image to dump_file (temp name, fsync, rename). Runs in the
 * manager. Returns 1 in the restored process, else 0. */
/* After a forward: once the signal is no longer pending (the program has
 * taken it), put our trigger handler back. */
static void rearm(int sig)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)live_tid[sig]);
    for (int i = 0; i < 2000; i++) {
        int pending = 0;
        if (shim_read_file(path, buf, sizeof buf) > 0) {
            const char *p = strstr(buf, "SigPnd:"), *q = strstr(buf, "ShdPnd:");
            uint64_t m = (p ? strtoull(p + 7, NULL, 16) : 0) | (q ? strtoull(q + 7, NULL, 16) : 0);
            pending = (m >> (sig - 1)) & 1;
        }
        if (!pending)
            break;
        usleep(1000);
    }
    usleep(2000); /* let the program's handler start */
    /* The program may have changed its disposition meanwhile. */
    syscall(SYS_rt_sigaction, sig, NULL, &shadow[sig], 8);
    install_trigger(sig);
    live[sig] = 0;
}

/* The image is in place: advance the counter to its stamp. */
static void commit_counter(const struct ck_counter *counter, uint64_t base, const char *file)
{
    char err[512];
    uint64_t cur = 0;
    if (counter->kind == CK_COUNTER_NONE)
        return;
    if (ck_counter_fetch_incr_if(counter, g_shim.app_id, base, &cur, err, sizeof err) < 0)
        fprintf(stderr, "ckshim: dump to %s: warning: %s; the counter was not advanced (the "
                "image still restores as the newest)\n", file, err);
    else if (cur != base)
        fprintf(stderr, "ckshim: dump to %s: warning: the counter for '%s' moved to %llu "
                "meanwhile; the image may be refused as stale\n",
                file, g_shim.app_id, (unsigned long long)cur);
}

/* The signal's effect once forwarded is the end of the program: its
 * disposition is the default and that default terminates (not one that
 * ignores or stops). */
static int ends_program(int sig)
{
    if (shadow[sig].handler != (uint64_t)SIG_DFL)
        return 0;
    switch (sig) {
    case SIGCHLD:
    case SIGCONT:
    case SIGURG:
    case SIGWINCH:
    case SIGTSTP:
    case SIGTTIN:
    case SIGTTOU:
        return 0;
    default:
        return 1;
    }
}

int seed_dump(void)
{
    unsigned char bytes[64];
    ssize_t nb = read(req_pipe[0], bytes, sizeof bytes);
    int sig = 0;
    for (ssize_t i = 0; i < nb; i++) {
        if (bytes[i] & 0x80)
            rearm(bytes[i] & 0x7f);
        else
            sig = bytes[i];
    }
    if (!sig)
        return 0;
    struct ck_ctl_req req;
    memset(&req, 0, sizeof req);
    req.magic = CK_CTL_MAGIC;
    req.op = CK_OP_CHECKPOINT;
    req.flags = CK_CKPT_NOFORK;
    char err[512] = "", tmp[1100];
    struct ck_counter counter;
    uint64_t base = 0;
    int ok = 0;
    if (ck_counter_parse(getenv("CKSHIM_COUNTER"), &counter, err, sizeof err) == 0) {
        if (counter.kind == CK_COUNTER_NONE) {
            req.flags |= CK_CKPT_COUNTER_NONE;
            ok = 1;
        } else {
            /* The image gets the next value; the counter moves only once
             * the image is in place (below). */
            ok = ck_counter_get(&counter, g_shim.app_id, &base, err, sizeof err) == 0;
            req.counter_stamp = base + 1;
        }
    }
    const char *kf = getenv("CKSHIM_KEY_FILE");
    if (ok && kf && *kf) {
        struct ck_key key;
        ok = ck_auth_init() == 0 && ck_key_load(kf, &key, err, sizeof err) == 0;
        if (ok) {
            memcpy(req.key_mac, key.mac, sizeof req.key_mac);
            memcpy(req.key_enc, key.enc, sizeof req.key_enc);
            memcpy(req.key_id, key.id, sizeof req.key_id);
            ck_key_wipe(&key);
            const char *enc = getenv("CKSHIM_ENCRYPT");
            req.flags |= CK_CKPT_MAC | ((enc && *enc && *enc != '0') ? CK_CKPT_ENCRYPT : 0);
        }
    }
    int dumped = 0;
    if (!ok) {
        fprintf(stderr, "ckshim: dump on signal %d: %s; no image written\n", sig, err);
    } else {
        /* A fresh file of ours (exclusive, 0600, never a symlink) in the
         * target's directory, renamed over the target once complete. */
        const char *slash = strrchr(dump_file, '/');
        if (slash)
            snprintf(tmp, sizeof tmp, "%.*s/.%s.tmp.%d.XXXXXX", (int)(slash - dump_file),
                     dump_file, slash + 1, (int)shim_real_getpid());
        else
            snprintf(tmp, sizeof tmp, ".%s.tmp.%d.XXXXXX", dump_file, (int)shim_real_getpid());
        int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd >= 0)
            fchmod(fd, 0600);
        if (fd < 0) {
            fprintf(stderr, "ckshim: dump on signal %d: cannot create %s: %s\n", sig, tmp,
                    strerror(errno));
        } else {
            struct ck_ctl_rep rep;
            memset(&rep, 0, sizeof rep);
            shim_skip_fds[1] = fd;
            int r = shim_checkpoint(&req, -1, fd, &rep);
            shim_skip_fds[1] = -1;
            if (r == 1)
                return 1; /* restored: seed_reinstall() woke the handler */
            close(fd);
            if (rep.status == 0 && rename(tmp, dump_file) == 0) {
                shim_log("dumped to %s on signal %d", dump_file, sig);
                char dir[1100];
                ck_dir_of(dump_file, dir, sizeof dir);
                ck_fsync_dir(dir); /* best effort: the rename made durable */
                commit_counter(&counter, base, dump_file);
                dumped = 1;
            } else {
                fprintf(stderr, "ckshim: dump on signal %d to %s failed: %s\n", sig, dump_file,
                        rep.status ? rep.msg : strerror(errno));
                unlink(tmp);
            }
        }
    }
    /* No image: the signal must not end the program too (the user would
     * have neither). It is not delivered; the program goes on. */
    if (!dumped)
        fprintf(stderr, "ckshim: the program keeps running: signal %d was not delivered, "
                "because no image could be written\n", sig);
    /* The program's after-checkpoint hooks, unless the signal is about to
     * end it (its default action, the usual reason to dump on it). Before
     * the waiting handler is woken: the program's own handler for the
     * signal then finds what the hooks took again. */
    if (!dumped || !ends_program(sig))
        hooks_after_checkpoint();
    __atomic_store_n(&dump_failed, !dumped, __ATOMIC_SEQ_CST);
    __atomic_store_n(&dumping, 0, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&dump_gen, 1, __ATOMIC_SEQ_CST);
    shim_futex_wake(&dump_gen);
    return 0;
}

/* RESTORE_FROM_FILE: become `coord restore FILE`. Returns only when
 * there is nothing to do; exits when coord cannot be run. */
void seed_restore_from_file(void)
{
    const char *file = getenv("RESTORE_FROM_FILE");
    if (!file || !*file)
        return;
    char coord[1024] = "";
    const char *env = getenv("CKSHIM_COORD");
    if (env && *env) {
        snprintf(coord, sizeof coord, "%s", env);
    } else {
        Dl_info di;
        if (dladdr((void *)seed_restore_from_file, &di) && di.dli_fname) {
            char dir[900];
            snprintf(dir, sizeof dir, "%s", di.dli_fname);
            char *slash = strrchr(dir, '/');
            if (slash)
                *slash = 0;
            snprintf(coord, sizeof coord, "%s/coord", dir);
            if (access(coord, X_OK) != 0)
                snprintf(coord, sizeof coord, "%s/../../bin/coord", dir);
        }
    }
    if (access(coord, X_OK) != 0) {
        fprintf(stderr, "ckshim: RESTORE_FROM_FILE: cannot find coord (set CKSHIM_COORD)\n");
        _exit(1);
    }
    /* coord must not get the shim (nor restore again). */
    setenv("CKSHIM_DISABLE", "1", 1);
    unsetenv("RESTORE_FROM_FILE");
    char *argv[] = {"coord", "restore", (char *)file, NULL};
    execv(coord, argv);
    fprintf(stderr, "ckshim: RESTORE_FROM_FILE: cannot run %s: %s\n", coord, strerror(errno));
    _exit(1);
}
