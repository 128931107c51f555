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

/* The calling thread's capabilities (capget/capset, version 3): keep < 0
 * drops every one (which empties the ambient set too); else capability
 * keep is added to the inheritable set, so that PR_CAP_AMBIENT_RAISE may
 * keep it through an exec. 0 or -errno. */
static inline long ck_caps(int keep)
{
    struct {
        unsigned int version;
        int pid;
    } hdr = {0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
    struct {
        unsigned int effective, permitted, inheritable;
    } d[2] = {{0, 0, 0}, {0, 0, 0}};
    if (keep >= 0) {
        long r = ck_sys6(125 /* capget */, (long)&hdr, (long)d, 0, 0, 0, 0);
        if (r < 0)
            return r;
        d[keep / 32].inheritable |= 1u << (keep % 32);
    }
    return ck_sys6(126 /* capset */, (long)&hdr, (long)d, 0, 0, 0, 0);
}

#endif
