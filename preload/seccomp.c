/* seccomp.c - keep the checkpoint signal ours against raw-syscall runtimes.
 *
 * Go's runtime changes signal masks with its own rt_sigprocmask stub (a
 * raw syscall, not libc's), and so bypasses the wrappers in wrappers.c: a
 * thread that blocks everything (os/signal's signal-mask thread, threads
 * between sigblock and msigrestore) would never park. With cgo on amd64
 * Go sets dispositions through libc's sigaction (x_cgo_sigaction), which
 * wrappers.c sees, except in a forked child (clearSignalHandlers) and in
 * runtimes that do not.
 *
 * A seccomp filter traps rt_sigprocmask and rt_sigaction, but only when
 * made by one of the raw syscall
 * instructions found in the main executable's text at startup
 * (`mov $NR,%eax; syscall`). libc's own calls, the shim's, and the calls of
 * any program exec'd later are never trapped: the filter is inherited over
 * fork and exec and cannot be removed, so it must not fire in a program
 * that has no handler for it (a trapped call without a SIGSYS handler kills
 * the process). Matching exact addresses is also why this is raw BPF and
 * not libseccomp, which cannot compare the instruction pointer.
 *
 * The SIGSYS handler emulates the trapped call:
 *   rt_sigprocmask  computed on the interrupted context's saved mask
 *                   (uc_sigmask, which sigreturn installs), never blocking
 *                   the checkpoint signal or SIGSYS; the old mask is
 *                   written to oldset.
 *   rt_sigaction    of the checkpoint signal or SIGSYS: read and write the
 *                   program's shadow disposition (wrappers.c), never the
 *                   kernel's; of any other signal: made, with the checkpoint
 *                   signal and SIGSYS taken out of the handler's mask (Go
 *                   without cgo asks for every signal blocked in its
 *                   handler; a trapped call made there with SIGSYS blocked
 *                   would kill the process).
 * SIGSYS itself becomes ours (shadowed like the checkpoint signal): any
 * SIGSYS that is not our trap goes to the program's handler.
 *
 * The filter is only installed when the executable is a Go program (its
 * "Go" ELF note) or CKSHIM_SECCOMP=1, and when such instructions exist;
 * CKSHIM_NO_SECCOMP=1 turns it off. A restored process starts without a
 * filter (the restorer is exec'd by coord): seccomp_shim_after_restore()
 * installs it again on every thread (TSYNC).
 *
 * Costs: every syscall of the process runs the filter (a few dozen BPF
 * instructions); a trapped call costs a signal delivery (a few us). Go
 * makes these calls when it starts a thread and around fork/exec, rarely.
 * Unprivileged, seccomp needs no_new_privs, which is then set for the
 * process and everything it runs (setuid programs run without their
 * privileges).
 */
#include <errno.h>
#include <link.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "elfnote.h"
#include "shim.h"

#define SITE_MAX 32
#define TRAP_DATA 0x2c5 /* si_errno of our SIGSYS: tells our traps from others */

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif

static uint64_t mask_sites[SITE_MAX], act_sites[SITE_MAX]; /* ip after syscall */
static int nmask_sites, nact_sites;
static int active;
static pid_t filter_pid; /* process the shadow belongs to */
static struct sock_filter prog[16 + 5 * 2 * SITE_MAX];
static unsigned short prog_len;

/* The program's disposition for SIGSYS (kernel layout). */
struct ck_sigaction shim_app_sigsys_action;

int seccomp_shim_active(void)
{
    return active;
}

static long raw(long nr, long a, long b, long c, long d)
{
    long ret;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
}

/* ---------------------------------------------------------------- sites */

struct scan {
    int is_go;
    int done;
};

static void add_site(int nr, const unsigned char *syscall_insn)
{
    uint64_t ip = (uint64_t)(uintptr_t)syscall_insn + 2;
    if (nr == SYS_rt_sigprocmask && nmask_sites < SITE_MAX)
        mask_sites[nmask_sites++] = ip;
    else if (nr == SYS_rt_sigaction && nact_sites < SITE_MAX)
        act_sites[nact_sites++] = ip;
}

/* `mov $imm32,%eax` (b8 imm) or `mov $imm32,%rax` (48 c7 c0 imm) right
 * before a `syscall` (0f 05). */
static void scan_text(const unsigned char *p, size_t len)
{
    const unsigned char *end = p + len;
    for (const unsigned char *q = p; q + 2 <= end;) {
        const unsigned char *s = memmem(q, (size_t)(end - q), "\x0f\x05", 2);
        if (!s)
            break;
        q = s + 1;
        int32_t imm;
        if (s - p >= 5 && s[-5] == 0xb8) {
            memcpy(&imm, s - 4, 4);
        } else if (s - p >= 7 && s[-7] == 0x48 && s[-6] == 0xc7 && s[-5] == 0xc0) {
            memcpy(&imm, s - 4, 4);
        } else {
            continue;
        }
        if (imm == SYS_rt_sigprocmask || imm == SYS_rt_sigaction)
            add_site(imm, s);
    }
}

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct scan *sc = arg;
    (void)size;
    if (sc->done)
        return 1;
    sc->done = 1; /* the first object is the main program */
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_NOTE &&
            ck_note_is_go((const char *)(info->dlpi_addr + ph->p_vaddr), ph->p_filesz))
            sc->is_go = 1;
    }
    const char *force = getenv("CKSHIM_SECCOMP");
    if (!sc->is_go && !(force && *force == '1'))
        return 1;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X))
            scan_text((const unsigned char *)(info->dlpi_addr + ph->p_vaddr), ph->p_filesz);
    }
    return 1;
}

/* ---------------------------------------------------------------- filter */

#define LD_W(off) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define JEQ(k, jt, jf) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (jt), (jf))
#define RET(k) BPF_STMT(BPF_RET | BPF_K, (k))
#define OFF_NR offsetof(struct seccomp_data, nr)
#define OFF_ARCH offsetof(struct seccomp_data, arch)
#define OFF_IP_LO offsetof(struct seccomp_data, instruction_pointer)
#define OFF_IP_HI (offsetof(struct seccomp_data, instruction_pointer) + 4)

static void emit_sites(unsigned *n, const uint64_t *sites, int count)
{
    for (int i = 0; i < count; i++) {
        prog[(*n)++] = (struct sock_filter)LD_W(OFF_IP_LO);
        prog[(*n)++] = (struct sock_filter)JEQ((uint32_t)sites[i], 0, 3);
        prog[(*n)++] = (struct sock_filter)LD_W(OFF_IP_HI);
        prog[(*n)++] = (struct sock_filter)JEQ((uint32_t)(sites[i] >> 32), 0, 1);
        prog[(*n)++] = (struct sock_filter)RET(SECCOMP_RET_TRAP | TRAP_DATA);
    }
}

/*   arch != x86_64                          -> allow
 *   nr == rt_sigprocmask, ip in mask_sites  -> trap
 *   nr == rt_sigaction, ip in act_sites     -> trap
 *   else                                    -> allow                    */
static void build_prog(void)
{
    unsigned n = 0;
    prog[n++] = (struct sock_filter)LD_W(OFF_ARCH);
    prog[n++] = (struct sock_filter)JEQ(AUDIT_ARCH_X86_64, 1, 0);
    prog[n++] = (struct sock_filter)RET(SECCOMP_RET_ALLOW);
    prog[n++] = (struct sock_filter)LD_W(OFF_NR);
    prog[n++] = (struct sock_filter)JEQ(SYS_rt_sigprocmask, 0, (uint8_t)(5 * nmask_sites + 1));
    emit_sites(&n, mask_sites, nmask_sites);
    prog[n++] = (struct sock_filter)RET(SECCOMP_RET_ALLOW);
    prog[n++] = (struct sock_filter)JEQ(SYS_rt_sigaction, 1, 0);
    prog[n++] = (struct sock_filter)RET(SECCOMP_RET_ALLOW);
    emit_sites(&n, act_sites, nact_sites);
    prog[n++] = (struct sock_filter)RET(SECCOMP_RET_ALLOW);
    prog_len = (unsigned short)n;
}

/* Install the filter on every thread. Without CAP_SYS_ADMIN seccomp needs
 * no_new_privs: set it only then. Returns 0 or -errno. */
static int install_filter(void)
{
    struct sock_fprog fp = {.len = prog_len, .filter = prog};
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fp);
    if (r < 0 && errno == EACCES) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            return -errno;
        r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fp);
    }
    if (r < 0)
        return -errno;
    if (r > 0)
        return -EBUSY; /* a thread has another filter: TSYNC refused */
    filter_pid = (pid_t)raw(SYS_getpid, 0, 0, 0, 0);
    return 0;
}

/* ---------------------------------------------------------------- SIGSYS */

static uint64_t protected_bits(void)
{
    return (1ULL << (g_shim.ckpt_signal - 1)) | (1ULL << (SIGSYS - 1));
}

static void emulate_sigprocmask(greg_t *gr, ucontext_t *uc)
{
    long how = gr[REG_RDI];
    const uint64_t *set = (const uint64_t *)gr[REG_RSI];
    uint64_t *oset = (uint64_t *)gr[REG_RDX];
    if (gr[REG_R10] != 8) {
        gr[REG_RAX] = -EINVAL;
        return;
    }
    uint64_t cur, nw;
    memcpy(&cur, &uc->uc_sigmask, 8);
    nw = cur;
    if (set) {
        uint64_t s = *set;
        switch (how) {
        case SIG_BLOCK:
            nw = cur | s;
            break;
        case SIG_UNBLOCK:
            nw = cur & ~s;
            break;
        case SIG_SETMASK:
            nw = s;
            break;
        default:
            gr[REG_RAX] = -EINVAL;
            return;
        }
    }
    nw &= ~protected_bits();
    nw &= ~((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1)));
    if (oset)
        *oset = cur;
    memcpy(&uc->uc_sigmask, &nw, 8);
    gr[REG_RAX] = 0;
}

static void emulate_sigaction(greg_t *gr)
{
    int sig = (int)gr[REG_RDI];
    const struct ck_sigaction *act = (const struct ck_sigaction *)gr[REG_RSI];
    struct ck_sigaction *oact = (struct ck_sigaction *)gr[REG_RDX];
    if (gr[REG_R10] != 8) {
        gr[REG_RAX] = -EINVAL;
        return;
    }
    if (sig != SIGSYS && sig != g_shim.ckpt_signal) {
        /* Any other signal: set as asked, but its handler never blocks
         * ours (Go asks for every signal blocked): a trapped call made in
         * that handler with SIGSYS blocked would kill the process, and the
         * thread could not park in it. */
        struct ck_sigaction a;
        if (act) {
            a = *act;
            a.mask &= ~protected_bits();
        }
        gr[REG_RAX] = raw(SYS_rt_sigaction, sig, act ? (long)&a : 0, (long)oact, 8);
        return;
    }
    struct ck_sigaction *shadow = sig == SIGSYS ? &shim_app_sigsys_action : &shim_app_ckpt_action;
    struct ck_sigaction old = *shadow;
    /* In a (v)forked child the shadow may be the parent's memory: report,
     * do not record. The child is about to exec or exit anyway. */
    if (act && (pid_t)raw(SYS_getpid, 0, 0, 0, 0) == filter_pid)
        *shadow = *act;
    if (oact)
        *oact = old;
    gr[REG_RAX] = 0;
}

/* A SIGSYS that is not our trap: what the program asked for. */
static void forward_sigsys(int sig, siginfo_t *si, void *ucv)
{
    const struct ck_sigaction *a = &shim_app_sigsys_action;
    if (a->handler == (uint64_t)(uintptr_t)SIG_IGN)
        return;
    if (a->handler == (uint64_t)(uintptr_t)SIG_DFL) {
        /* Default action: die of SIGSYS (with a core dump if allowed). */
        struct ck_sigaction dfl = {0};
        raw(SYS_rt_sigaction, SIGSYS, (long)&dfl, 0, 8);
        uint64_t m = 1ULL << (SIGSYS - 1);
        raw(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&m, 0, 8);
        raw(SYS_tgkill, raw(SYS_getpid, 0, 0, 0, 0), raw(SYS_gettid, 0, 0, 0, 0), SIGSYS, 0);
        return;
    }
    if (a->flags & SA_SIGINFO)
        ((void (*)(int, siginfo_t *, void *))(uintptr_t)a->handler)(sig, si, ucv);
    else
        ((void (*)(int))(uintptr_t)a->handler)(sig);
}

static void sigsys_handler(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    if (si->si_code != SYS_SECCOMP || si->si_errno != TRAP_DATA) {
        forward_sigsys(sig, si, ucv);
        return;
    }
    greg_t *gr = uc->uc_mcontext.gregs;
    switch (si->si_syscall) {
    case SYS_rt_sigprocmask:
        emulate_sigprocmask(gr, uc);
        break;
    case SYS_rt_sigaction:
        emulate_sigaction(gr);
        break;
    default:
        gr[REG_RAX] = -ENOSYS;
        break;
    }
}

static int install_sigsys_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = sigsys_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigfillset(&sa.sa_mask);
    sigdelset(&sa.sa_mask, g_shim.ckpt_signal);
    return real_sigaction(SIGSYS, &sa, NULL) < 0 ? -errno : 0;
}

/* Constructor: find the raw call sites; if there are any, make SIGSYS ours
 * and install the filter. Returns 0 (also when there is nothing to do) or
 * -errno; on failure nothing is installed. */
int seccomp_shim_init(void)
{
    const char *no = getenv("CKSHIM_NO_SECCOMP");
    if ((no && *no && *no != '0') || g_shim.ckpt_signal == SIGSYS)
        return 0;
    struct scan sc = {0};
    dl_iterate_phdr(phdr_cb, &sc);
    if (!nmask_sites && !nact_sites)
        return 0;
    build_prog();
    /* The program's current SIGSYS disposition becomes the shadow. */
    raw(SYS_rt_sigaction, SIGSYS, 0, (long)&shim_app_sigsys_action, 8);
    int r = install_sigsys_handler();
    if (r < 0)
        return r;
    active = 1; /* from here wrappers.c shadows SIGSYS */
    r = install_filter();
    if (r < 0) {
        active = 0;
        raw(SYS_rt_sigaction, SIGSYS, (long)&shim_app_sigsys_action, 0, 8);
        return r;
    }
    shim_log("seccomp: %d rt_sigprocmask and %d rt_sigaction call sites trapped%s", nmask_sites,
             nact_sites, sc.is_go ? " (Go program)" : "");
    return 0;
}

/* After restore (manager, every other thread landed): the restored process
 * has no filter; put it back on every thread. The SIGSYS handler came back
 * with the other dispositions. Returns 0 or -errno. */
int seccomp_shim_after_restore(void)
{
    if (!active)
        return 0;
    return install_filter();
}
