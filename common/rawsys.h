/* rawsys.h - one raw x86_64 system call, no libc and no errno: for the
 * restorer and for the shim's writer threads, which share a TLS block and
 * must not write errno. Returns the kernel's result (>= 0 or -errno). */
#ifndef CKSHIM_RAWSYS_H
#define CKSHIM_RAWSYS_H

static inline long ck_sys6(long n, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

#endif
