/* cmdline_env - the argument and environment areas survive.
 *
 * The driver passes no arguments, so at startup (CKTEST_VAR unset) the
 * program re-execs itself through /proc/self/exe with the arguments
 * "alpha", "beta gamma", "" and "δelta" and its environment plus
 * CKTEST_VAR=xyz (CK_GO and LD_PRELOAD stay). Before READY it records
 * /proc/self/cmdline and /proc/self/environ, the arg_start..env_end fields
 * of /proc/self/stat, and the argv[] and environ pointers. After restore:
 * cmdline and environ hold exactly the same bytes, the stat fields are the
 * same, argv[] (pointers and strings) is intact and points into the
 * argument area, getenv() finds CKTEST_VAR and CK_GO, and setenv(),
 * putenv() and unsetenv() of new and existing variables work.
 */
#include <fcntl.h>

#include "testlib.h"

extern char **environ;

#define NARGS 5
static const char *const want_args[NARGS] = { NULL, "alpha", "beta gamma", "", "δelta" };

static char cmdline0[8192], environ0[65536];
static size_t cmdline0_len, environ0_len;
static unsigned long long mm0[4]; /* arg_start, arg_end, env_start, env_end */
static char *argv0_ptrs[NARGS];
static char argv0_copy[NARGS][64];
static char **environ0_array;

static size_t read_all(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY);
    size_t n = 0;
    check(fd >= 0, "open %s: %s", path, strerror(errno));
    for (;;) {
        ssize_t r = read(fd, buf + n, size - n);
        if (r < 0 && errno == EINTR)
            continue;
        check(r >= 0, "read %s: %s", path, strerror(errno));
        if (r == 0)
            break;
        n += r;
        check(n < size, "%s is larger than %zu bytes", path, size);
    }
    close(fd);
    return n;
}

/* Fields 48..51 of /proc/self/stat: arg_start arg_end env_start env_end. */
static void read_mm_fields(unsigned long long out[4])
{
    char buf[4096];
    size_t n = read_all("/proc/self/stat", buf, sizeof(buf));
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    check(p, "bad /proc/self/stat");
    p++;
    for (int field = 3; field <= 51; field++) {
        char *end;
        while (*p == ' ')
            p++;
        if (field >= 48) {
            out[field - 48] = strtoull(p, &end, 10);
        } else {
            end = strchr(p, ' ');
            check(end, "/proc/self/stat has only %d fields", field);
        }
        p = end;
    }
}

static void reexec(char **argv)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof(char *));
    check(env, "calloc");
    memcpy(env, environ, n * sizeof(char *));
    env[n] = "CKTEST_VAR=xyz";
    char *args[NARGS + 1];
    args[0] = argv[0];
    for (int i = 1; i < NARGS; i++)
        args[i] = (char *)want_args[i];
    args[NARGS] = NULL;
    execve("/proc/self/exe", args, env);
    fail("execve(/proc/self/exe): %s", strerror(errno));
}

static void check_args(int argc, char **argv, const char *when)
{
    check(argc == NARGS, "%s: argc is %d, expected %d", when, argc, NARGS);
    for (int i = 1; i < NARGS; i++)
        check(strcmp(argv[i], want_args[i]) == 0, "%s: argv[%d] is '%s', expected '%s'",
              when, i, argv[i], want_args[i]);
    check(argv[NARGS] == NULL, "%s: argv[%d] is not NULL", when, NARGS);
}

static void check_same(const char *path, const char *old, size_t old_len)
{
    static char now[65536];
    size_t len = read_all(path, now, sizeof(now));
    size_t i = 0;
    while (i < len && i < old_len && now[i] == old[i])
        i++;
    check(len == old_len && i == len,
          "%s after restore: %zu bytes, was %zu; first difference at byte %zu "
          "(now '%.40s', was '%.40s')", path, len, old_len, i, i < len ? now + i : "",
          i < old_len ? old + i : "");
}

int main(int argc, char **argv)
{
    if (!getenv("CKTEST_VAR"))
        reexec(argv);

    check_args(argc, argv, "after re-exec");
    check(strcmp(getenv("CKTEST_VAR"), "xyz") == 0, "CKTEST_VAR is '%s'",
          getenv("CKTEST_VAR"));
    cmdline0_len = read_all("/proc/self/cmdline", cmdline0, sizeof(cmdline0));
    environ0_len = read_all("/proc/self/environ", environ0, sizeof(environ0));
    check(memmem(environ0, environ0_len, "CKTEST_VAR=xyz", 15) != NULL,
          "CKTEST_VAR=xyz is not in /proc/self/environ");
    read_mm_fields(mm0);
    for (int i = 0; i < NARGS; i++) {
        argv0_ptrs[i] = argv[i];
        snprintf(argv0_copy[i], sizeof(argv0_copy[i]), "%s", argv[i]);
    }
    environ0_array = environ;
    test_msg("cmdline %zu bytes, environ %zu bytes, args %#llx-%#llx env %#llx-%#llx",
             cmdline0_len, environ0_len, mm0[0], mm0[1], mm0[2], mm0[3]);

    test_ready();
    test_wait_go();

    check_same("/proc/self/cmdline", cmdline0, cmdline0_len);
    check_same("/proc/self/environ", environ0, environ0_len);
    unsigned long long mm[4];
    static const char *const names[4] = { "arg_start", "arg_end", "env_start", "env_end" };
    read_mm_fields(mm);
    for (int i = 0; i < 4; i++)
        check(mm[i] == mm0[i], "/proc/self/stat %s is %#llx, was %#llx", names[i], mm[i],
              mm0[i]);

    check_args(argc, argv, "after restore");
    for (int i = 0; i < NARGS; i++) {
        check(argv[i] == argv0_ptrs[i], "argv[%d] moved from %p to %p", i,
              (void *)argv0_ptrs[i], (void *)argv[i]);
        check(strcmp(argv[i], argv0_copy[i]) == 0, "argv[%d] is '%s', was '%s'", i, argv[i],
              argv0_copy[i]);
        check((unsigned long long)(uintptr_t)argv[i] >= mm[0] &&
                  (unsigned long long)(uintptr_t)argv[i] < mm[1],
              "argv[%d] at %p is outside the argument area %#llx-%#llx", i, (void *)argv[i],
              mm[0], mm[1]);
    }
    check(environ == environ0_array, "environ moved");

    const char *v = getenv("CKTEST_VAR");
    check(v && strcmp(v, "xyz") == 0, "getenv(CKTEST_VAR) after restore is '%s'",
          v ? v : "(null)");
    check(getenv("CK_GO") != NULL, "getenv(CK_GO) after restore is NULL");

    check_sys(setenv("CKTEST_NEW", "hello world", 1));
    v = getenv("CKTEST_NEW");
    check(v && strcmp(v, "hello world") == 0, "getenv(CKTEST_NEW) is '%s'", v ? v : "(null)");
    check_sys(setenv("CKTEST_VAR", "changed", 1));
    v = getenv("CKTEST_VAR");
    check(v && strcmp(v, "changed") == 0, "overwritten CKTEST_VAR is '%s'", v ? v : "(null)");
    check_sys(setenv("CKTEST_VAR", "ignored", 0));
    v = getenv("CKTEST_VAR");
    check(v && strcmp(v, "changed") == 0, "setenv(overwrite=0) changed CKTEST_VAR to '%s'",
          v ? v : "(null)");
    static char put[] = "CKTEST_PUT=42";
    check(putenv(put) == 0, "putenv");
    v = getenv("CKTEST_PUT");
    check(v && strcmp(v, "42") == 0, "getenv(CKTEST_PUT) is '%s'", v ? v : "(null)");
    for (int i = 0; i < 200; i++) { /* grow the array well past its old size */
        char name[32];
        snprintf(name, sizeof(name), "CKTEST_MANY_%d", i);
        check_sys(setenv(name, name + 7, 1));
    }
    v = getenv("CKTEST_MANY_199");
    check(v && strcmp(v, "MANY_199") == 0, "getenv(CKTEST_MANY_199) is '%s'", v ? v : "(null)");
    check_sys(unsetenv("CKTEST_NEW"));
    check(getenv("CKTEST_NEW") == NULL, "CKTEST_NEW still set after unsetenv");
    check(getenv("CK_GO") != NULL, "CK_GO lost after setenv/unsetenv");
    pass();
}
