/* pidns_high - a tree under coord run --pidns whose child has a pid above
 * the machine's pid_max (test_progs.sh runs it in a pid namespace: since
 * Linux 6.14 a new namespace has a pid_max of its own, 4194304, while the
 * machine's may be 32768).
 *
 * The root makes and reaps short-lived processes with the raw clone
 * system call (no shim in them, no copy of memory: about a second) until the namespace's pids pass
 * the machine's pid_max, then forks its child. Each notes its pid from
 * /proc/self (the kernel's); after the go file, past restores that must
 * give every process its pid again, each checks it, and the root waits
 * for the child's verdict. Outside a pid namespace, or where the machine's
 * pid_max is not below a new namespace's, it passes without the climb.
 */
#include <sys/wait.h>

#include "testlib.h"

/* A process that ends at once, made with the raw clone system call
 * (CLONE_VM | CLONE_VFORK: no copy of the address space, no shim in it),
 * on a stack of its own: tens of microseconds. Its pid, or -errno. */
static long raw_clone_exit(void)
{
    static char stack[16384] __attribute__((aligned(16)));
    long r;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "mov $60, %%eax\n\t" /* exit: the child only */
                     "xor %%edi, %%edi\n\t"
                     "syscall\n\t"
                     "1:\n\t"
                     : "=a"(r)
                     : "0"(56L /* clone */), "D"(0x4000L | 0x100L | 17L /* VFORK|VM|SIGCHLD */),
                       "S"(stack + sizeof stack), "d"(0L)
                     : "rcx", "r11", "r10", "r8", "memory");
    return r;
}

int main(void)
{
    test_go_setup(); /* (the child waits for the go file too) */
    FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
    long ns_max = 0, host_max = 32768;
    if (f) {
        check(fscanf(f, "%ld", &ns_max) == 1, "pid_max");
        fclose(f);
    }
    const char *h = getenv("CK_HOST_PID_MAX");
    if (h)
        host_max = atol(h);
    int climb = test_kernel_pid() < 1000 && ns_max > host_max + 200;
    long last = 0;
    while (climb && last < host_max + 50) {
        last = raw_clone_exit();
        check(last > 0, "clone: %ld", last);
        long w;
        register long ru __asm__("r10") = 0; /* no rusage */
        __asm__ volatile("syscall"
                         : "=a"(w), "+r"(ru)
                         : "0"(61L /* wait4, not the shim's waitpid */), "D"(last), "S"(0L),
                           "d"(0L)
                         : "rcx", "r11", "memory");
        check(w == last, "wait4: %ld", w);
    }
    pid_t k = fork();
    check_sys(k);
    int mine = test_kernel_pid();
    if (k == 0) {
        test_wait_go();
        _exit(test_kernel_pid() == mine ? 0 : 3);
    }
    check(!climb || k > host_max, "child pid %d is not above %ld", (int)k, host_max);
    test_msg("child %d (namespace pid_max %ld)", (int)k, ns_max);
    test_ready();
    test_wait_go();
    check(test_kernel_pid() == mine, "root: pid %d, was %d", test_kernel_pid(), mine);
    int ws;
    check(waitpid(k, &ws, 0) == k, "waitpid: %s", strerror(errno));
    check(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child: status 0x%x (3: its pid changed)", ws);
    pass();
    return 0;
}
