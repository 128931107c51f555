/* dlopen - libraries loaded at run time, and the dynamic loader itself.
 *
 * Before READY: dlopen("libresolv.so.2") (not linked in) and
 * dlopen("libm.so.6"); keep the function pointers ns_format_ttl and
 * ns_samename (libresolv) and cos (libm, through dlsym) and call them once.
 * libmvec.so.1 must not be loaded yet (RTLD_NOLOAD).
 * After restore: the kept pointers still work and give the same results;
 * dlsym on the old handles returns the same addresses and dladdr() still
 * names libresolv; dlopen of libmvec.so.1 (x86_64: never loaded before; its
 * vector cos is an IFUNC, so the loader's resolution runs in the restored
 * process) and of libz.so.1 (when installed) work and their functions
 * compute the right values; dlclose() unloads them (RTLD_NOLOAD then finds
 * nothing), and libresolv can be closed, unloaded, loaded again and used.
 */
#include <dlfcn.h>
#include <math.h>
#include <sys/types.h>
#ifdef __x86_64__
#include <emmintrin.h>
#endif

#include "testlib.h"

typedef int (*format_ttl_fn)(unsigned long, char *, size_t);
typedef int (*samename_fn)(const char *, const char *);
typedef double (*cos_fn)(double);

static void *h_resolv, *h_m;
static format_ttl_fn p_format_ttl;
static samename_fn p_samename;
static cos_fn p_cos;
static char resolv_path[512];

static void *xdlopen(const char *name, int flags)
{
    void *h = dlopen(name, flags);
    check(h, "dlopen(%s): %s", name, dlerror());
    return h;
}

static void *xdlsym(void *h, const char *sym)
{
    dlerror();
    void *p = dlsym(h, sym);
    check(p, "dlsym(%s): %s", sym, dlerror());
    return p;
}

static int loaded(const char *name)
{
    void *h = dlopen(name, RTLD_NOW | RTLD_NOLOAD);
    if (h)
        dlclose(h);
    return h != NULL;
}

/* Calls through the kept pointers: fail() unless the results are right. */
static void use_resolv(format_ttl_fn fmt, samename_fn same, const char *when)
{
    char buf[64];
    int n = fmt(93784, buf, sizeof(buf)); /* 1 day 2 h 3 min 4 s */
    check(n > 0 && strcmp(buf, "1d2h3m4s") == 0, "%s: ns_format_ttl gave %d '%s'", when,
          n, n > 0 ? buf : "");
    check(same("www.example.org.", "WWW.Example.ORG") == 1,
          "%s: ns_samename says different", when);
    check(same("www.example.org", "ftp.example.org") == 0, "%s: ns_samename says same",
          when);
}

static void use_cos(cos_fn f, const char *when)
{
    volatile double x = 0.0, pi = M_PI;
    check(f(x) == 1.0 && fabs(f(pi) + 1.0) < 1e-15, "%s: cos gave %g %g", when, f(x), f(pi));
}

static void after_restore(void)
{
    use_resolv(p_format_ttl, p_samename, "after restore");
    use_cos(p_cos, "after restore");
    check(xdlsym(h_resolv, "ns_format_ttl") == (void *)p_format_ttl,
          "dlsym(ns_format_ttl) moved after restore");
    check(xdlsym(h_m, "cos") == (void *)p_cos, "dlsym(cos) moved after restore");
    Dl_info info;
    check(dladdr((void *)p_samename, &info) && info.dli_fname &&
          strcmp(info.dli_fname, resolv_path) == 0,
          "dladdr(ns_samename) after restore names '%s', was '%s'",
          info.dli_fname ? info.dli_fname : "(null)", resolv_path);
    check(loaded("libresolv.so.2"), "libresolv is not loaded after restore");

#ifdef __x86_64__
    /* a library never loaded before, with an IFUNC resolved now */
    void *h_mvec = xdlopen("libmvec.so.1", RTLD_NOW | RTLD_LOCAL);
    __m128d (*vcos)(__m128d) = (__m128d(*)(__m128d))xdlsym(h_mvec, "_ZGVbN2v_cos");
    double out[2];
    _mm_storeu_pd(out, vcos(_mm_set_pd(M_PI, 0.0)));
    check(fabs(out[0] - 1.0) < 1e-12 && fabs(out[1] + 1.0) < 1e-12,
          "libmvec _ZGVbN2v_cos(0, pi) gave %g %g", out[0], out[1]);
    check(dlclose(h_mvec) == 0, "dlclose(libmvec): %s", dlerror());
    check(!loaded("libmvec.so.1"), "libmvec still loaded after dlclose");
#endif

    /* a non-glibc library, when there is one */
    void *h_z = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h_z) {
        unsigned long (*crc)(unsigned long, const unsigned char *, unsigned) =
            (unsigned long (*)(unsigned long, const unsigned char *, unsigned))xdlsym(
                h_z, "crc32");
        unsigned long c = crc(0, (const unsigned char *)"123456789", 9);
        check(c == 0xcbf43926UL, "libz crc32(\"123456789\") = %#lx", c);
        check(dlclose(h_z) == 0, "dlclose(libz): %s", dlerror());
    } else {
        test_msg("libz.so.1 not installed: skipped");
    }

    /* close, unload, load again */
    check(dlclose(h_resolv) == 0, "dlclose(libresolv): %s", dlerror());
    p_format_ttl = NULL;
    p_samename = NULL;
    check(!loaded("libresolv.so.2"), "libresolv still loaded after dlclose");
    h_resolv = xdlopen("libresolv.so.2", RTLD_LAZY);
    use_resolv((format_ttl_fn)xdlsym(h_resolv, "ns_format_ttl"),
               (samename_fn)xdlsym(h_resolv, "ns_samename"), "reloaded");
    check(dlclose(h_resolv) == 0, "dlclose(libresolv) again: %s", dlerror());
    check(dlclose(h_m) == 0, "dlclose(libm): %s", dlerror());
    use_cos(cos, "linked cos");
}

int main(void)
{
    check(!loaded("libresolv.so.2"), "libresolv.so.2 is already loaded at start");
    h_resolv = xdlopen("libresolv.so.2", RTLD_NOW | RTLD_LOCAL);
    h_m = xdlopen("libm.so.6", RTLD_NOW);
    p_format_ttl = (format_ttl_fn)xdlsym(h_resolv, "ns_format_ttl");
    p_samename = (samename_fn)xdlsym(h_resolv, "ns_samename");
    p_cos = (cos_fn)xdlsym(h_m, "cos");
    use_resolv(p_format_ttl, p_samename, "before checkpoint");
    use_cos(p_cos, "before checkpoint");
    Dl_info info;
    check(dladdr((void *)p_samename, &info) && info.dli_fname, "dladdr(ns_samename)");
    snprintf(resolv_path, sizeof(resolv_path), "%s", info.dli_fname);
#ifdef __x86_64__
    check(!loaded("libmvec.so.1"), "libmvec.so.1 is already loaded at start");
#endif
    test_msg("libresolv at %p (%s)", info.dli_fbase, resolv_path);

    test_ready();
    test_wait_go();

    after_restore();
    pass();
}
