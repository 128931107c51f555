/* dlopen_busy - threads that load and unload a library without pause
 * (a plugin host; Python importing extension modules), so that the
 * checkpoint signal finds one inside dlopen or dlclose, holding the
 * dynamic loader's lock.
 *
 * Nothing the shim does while the threads are parked may take that lock
 * (dlsym, dl_iterate_phdr for the backtraces): the checkpoint would never
 * end and the program would stay frozen. After the go file both threads
 * must still be loading, each load must find the library's function and
 * call it, and the main thread must load it too.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>

#include "testlib.h"

static const char *libs[][2] = {
    {"libbz2.so.1", "BZ2_bzlibVersion"},
    {"libz.so.1", "zlibVersion"},
    {"libm.so.6", "cbrt"},
};
static int which = -1;
static atomic_long loads[2];
static atomic_int bad;

/* load, find and call, unload: 0 or -1 */
static int one_load(void)
{
    void *h = dlopen(libs[which][0], RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return -1;
    void *f = dlsym(h, libs[which][1]);
    int ok = f != NULL;
    if (ok && which < 2)
        ok = ((const char *(*)(void))f)() != NULL;
    else if (ok)
        ok = ((double (*)(double))f)(27.0) == 3.0;
    dlclose(h);
    return ok ? 0 : -1;
}

static void *loader(void *arg)
{
    long i = (long)arg;
    for (;;) {
        if (one_load() < 0)
            atomic_store(&bad, 1);
        atomic_fetch_add(&loads[i], 1);
    }
    return NULL;
}

int main(void)
{
    for (int i = 0; i < 3 && which < 0; i++) {
        void *h = dlopen(libs[i][0], RTLD_NOW | RTLD_LOCAL);
        if (h) {
            which = i;
            dlclose(h);
        }
    }
    check(which >= 0, "none of the libraries loads");
    pthread_t t[2];
    for (long i = 0; i < 2; i++)
        check(pthread_create(&t[i], NULL, loader, (void *)i) == 0, "pthread_create");
    test_ready();
    test_wait_go();
    long a = atomic_load(&loads[0]), b = atomic_load(&loads[1]);
    check(one_load() == 0, "the main thread cannot load %s", libs[which][0]);
    test_sleep_ms(200);
    check(atomic_load(&loads[0]) > a && atomic_load(&loads[1]) > b,
          "the loading threads stopped (%ld %ld)", a, b);
    check(!atomic_load(&bad), "a load did not find %s", libs[which][1]);
    pass();
    return 0;
}
