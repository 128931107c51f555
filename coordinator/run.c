/* run.c - "coord run": start a program with libshim.so preloaded. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coord.h"
#include "counter.h"

#define MAX_INTERP_DEPTH 4 /* nested #! interpreters, as the kernel allows */

/* Find libshim.so next to the coord binary, else in ../lib/ckshim/. */
static int find_libshim(char *out, size_t outlen)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0) {
        ck_msg("run: cannot read /proc/self/exe: %s", strerror(errno));
        return -1;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    char cand[2][PATH_MAX + 32];
    snprintf(cand[0], sizeof(cand[0]), "%s/libshim.so", exe);
    snprintf(cand[1], sizeof(cand[1]), "%s/../lib/ckshim/libshim.so", exe);
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (stat(cand[i], &st) == 0 && S_ISREG(st.st_mode)) {
            char real[PATH_MAX];
            if (!realpath(cand[i], real)) {
                ck_msg("run: %s: %s", cand[i], strerror(errno));
                return -1;
            }
            if (strlen(real) >= outlen) {
                ck_msg("run: %s: path too long", real);
                return -1;
            }
            strcpy(out, real);
            return 0;
        }
    }
    ck_msg("run: cannot find libshim.so (looked for %s and %s)", cand[0], cand[1]);
    return -1;
}

/* Check that path names an executable regular file: 0 or -errno. */
static int check_exec(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    if (S_ISDIR(st.st_mode))
        return -EISDIR;
    if (!S_ISREG(st.st_mode))
        return -EACCES;
    if (access(path, X_OK) < 0)
        return -errno;
    return 0;
}

/* Resolve name like execvp does: names with a '/' are taken as they are,
 * others are searched in PATH. Returns 0 with the path in out, or -errno
 * (-ENOENT: nowhere; -EACCES etc.: only unusable candidates). */
static int resolve_prog(const char *name, char *out, size_t outlen)
{
    if (!*name)
        return -ENOENT;
    if (strchr(name, '/')) {
        if (strlen(name) >= outlen)
            return -ENAMETOOLONG;
        strcpy(out, name);
        return check_exec(name);
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    int best = -ENOENT;
    for (const char *p = path;;) {
        const char *end = strchr(p, ':');
        size_t dl = end ? (size_t)(end - p) : strlen(p);
        char cand[PATH_MAX];
        int l;
        if (dl == 0)
            l = snprintf(cand, sizeof(cand), "%s", name); /* empty entry: cwd */
        else
            l = snprintf(cand, sizeof(cand), "%.*s/%s", (int)dl, p, name);
        if (l > 0 && (size_t)l < sizeof(cand)) {
            int r = check_exec(cand);
            if (r == 0) {
                if ((size_t)l >= outlen)
                    return -ENAMETOOLONG;
                strcpy(out, cand);
                return 0;
            }
            if (r != -ENOENT && r != -ENOTDIR && best == -ENOENT) {
                best = r;
                snprintf(out, outlen, "%s", cand);
            }
        }
        if (!end)
            break;
        p = end + 1;
    }
    return best;
}

enum { BIN_DYNAMIC, BIN_STATIC, BIN_SCRIPT, BIN_WRONG_ARCH, BIN_UNKNOWN, BIN_ERROR };

/* Classify the file at path. For a script, the interpreter line is copied
 * to line. */
static int classify(const char *path, char *line, size_t linelen, int *err)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not hang */
    if (fd < 0) {
        *err = errno;
        return BIN_ERROR;
    }
    unsigned char buf[256];
    ssize_t n = pread(fd, buf, sizeof(buf), 0);
    if (n < 0) {
        *err = errno;
        close(fd);
        return BIN_ERROR;
    }
    if (n >= 2 && buf[0] == '#' && buf[1] == '!') {
        close(fd);
        size_t i = 2, o = 0;
        while (i < (size_t)n && buf[i] != '\n' && o + 1 < linelen)
            line[o++] = (char)buf[i++];
        line[o] = '\0';
        return BIN_SCRIPT;
    }
    if (n < (ssize_t)EI_NIDENT || memcmp(buf, ELFMAG, SELFMAG) != 0) {
        close(fd);
        return BIN_UNKNOWN;
    }
    if (buf[EI_CLASS] != ELFCLASS64 || buf[EI_DATA] != ELFDATA2LSB) {
        close(fd);
        return BIN_WRONG_ARCH;
    }
    Elf64_Ehdr eh;
    if (n < (ssize_t)sizeof(eh)) {
        close(fd);
        return BIN_UNKNOWN;
    }
    memcpy(&eh, buf, sizeof(eh));
    if (eh.e_machine != EM_X86_64) {
        close(fd);
        return BIN_WRONG_ARCH;
    }
    if ((eh.e_type != ET_EXEC && eh.e_type != ET_DYN) || eh.e_phentsize != sizeof(Elf64_Phdr) ||
        eh.e_phnum == 0 || eh.e_phnum > 4096) {
        close(fd);
        return BIN_UNKNOWN;
    }
    int result = BIN_STATIC;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (uint64_t)i * sizeof(ph))) !=
            (ssize_t)sizeof(ph)) {
            result = BIN_UNKNOWN;
            break;
        }
        if (ph.p_type == PT_INTERP) {
            result = BIN_DYNAMIC;
            break;
        }
    }
    close(fd);
    return result;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Split the words of s (in place), up to max. */
static int split_words(char *s, char **words, int max)
{
    int n = 0;
    while (*s && n < max) {
        while (is_space(*s))
            s++;
        if (!*s)
            break;
        words[n++] = s;
        while (*s && !is_space(*s))
            s++;
        if (*s)
            *s++ = '\0';
    }
    return n;
}

/* Check that prog (as the user named it) at path is something the shim
 * can be preloaded into. Returns 0 or prints why not and returns -1. */
static int check_program(const char *prog, const char *path, int depth)
{
    char line[256];
    int err = 0;
    int kind = classify(path, line, sizeof(line), &err);
    switch (kind) {
    case BIN_DYNAMIC:
        return 0;
    case BIN_STATIC:
        if (depth == 0)
            ck_msg("run: %s is statically linked; the shim (LD_PRELOAD) cannot apply to it", prog);
        else
            ck_msg("run: %s: its interpreter %s is statically linked; the shim (LD_PRELOAD) "
                   "cannot apply to it",
                   prog, path);
        return -1;
    case BIN_WRONG_ARCH:
        if (depth == 0)
            ck_msg("run: %s is not an x86_64 program; ckshim supports x86_64 only", prog);
        else
            ck_msg("run: %s: its interpreter %s is not an x86_64 program; ckshim supports x86_64 "
                   "only",
                   prog, path);
        return -1;
    case BIN_UNKNOWN:
        if (depth == 0)
            ck_msg("run: %s is neither an ELF executable nor a #! script", prog);
        else
            ck_msg("run: %s: its interpreter %s is not an ELF executable", prog, path);
        return -1;
    case BIN_ERROR:
        ck_msg("run: %s: %s", path, strerror(err));
        return -1;
    case BIN_SCRIPT:
        break;
    }
    if (depth >= MAX_INTERP_DEPTH) {
        ck_msg("run: %s: too many levels of #! interpreters", prog);
        return -1;
    }
    /* "#!INTERP [ARG]": the kernel passes everything after INTERP as one
     * argument; for /usr/bin/env that names the real interpreter. */
    char *words[32];
    int nw = split_words(line, words, 32);
    if (nw == 0) {
        ck_msg("run: %s: empty #! line", prog);
        return -1;
    }
    /* The kernel opens the interpreter as written (relative to the cwd,
     * never searched in PATH). */
    char interp[PATH_MAX];
    snprintf(interp, sizeof(interp), "%s", words[0]);
    int r = check_exec(interp);
    if (r < 0) {
        ck_msg("run: %s: interpreter %s: %s", prog, words[0], strerror(-r));
        return -1;
    }
    const char *base = strrchr(words[0], '/');
    base = base ? base + 1 : words[0];
    if (strcmp(base, "env") == 0) {
        /* The env binary runs first (and must take the shim), then the
         * program it names: check that one too. */
        if (check_program(prog, interp, depth + 1) < 0)
            return -1;
        for (int i = 1; i < nw; i++) {
            if (words[i][0] == '-' || strchr(words[i], '='))
                continue; /* env options (-S, -i, ...) and NAME=VALUE */
            char target[PATH_MAX];
            r = resolve_prog(words[i], target, sizeof(target));
            if (r < 0) {
                ck_msg("run: %s: interpreter %s (via %s): %s", prog, words[i], words[0],
                       r == -ENOENT ? "not found in PATH" : strerror(-r));
                return -1;
            }
            return check_program(prog, target, depth + 1);
        }
        return 0;
    }
    return check_program(prog, interp, depth + 1);
}

/* Resolve and check prog, and find the shim: the path to exec goes to
 * path, the new LD_PRELOAD (malloc'ed) to *preload. Returns 0, or
 * CK_EXIT_FAIL after saying why. Used by cmd_run and by the supervisor
 * (supervise.c), which checks before it forks, so nothing starts when
 * the program cannot run under the shim. */
int ck_run_prepare(const char *prog, char *path, size_t pathlen, char **preload_out)
{
    int r = resolve_prog(prog, path, pathlen);
    if (r < 0) {
        if (r == -ENOENT && !strchr(prog, '/'))
            ck_msg("run: %s: command not found in PATH", prog);
        else if (r == -ENOENT)
            ck_msg("run: %s: no such file", prog);
        else if (r == -EACCES)
            ck_msg("run: %s: not executable (permission denied)", strchr(prog, '/') ? prog : path);
        else if (r == -EISDIR)
            ck_msg("run: %s: is a directory", strchr(prog, '/') ? prog : path);
        else
            ck_msg("run: %s: %s", prog, strerror(-r));
        return CK_EXIT_FAIL;
    }
    if (check_program(prog, path, 0) < 0)
        return CK_EXIT_FAIL;

    char shim[PATH_MAX];
    if (find_libshim(shim, sizeof(shim)) < 0)
        return CK_EXIT_FAIL;

    /* Prepend the shim to LD_PRELOAD, keeping the other entries. */
    const char *old = getenv("LD_PRELOAD");
    size_t len = strlen(shim) + (old ? strlen(old) : 0) + 2;
    char *preload = malloc(len);
    if (!preload) {
        ck_msg("run: out of memory");
        return CK_EXIT_FAIL;
    }
    strcpy(preload, shim);
    if (old) {
        /* Entries are separated by ':' or spaces; drop copies of the shim. */
        char *copy = strdup(old);
        if (!copy) {
            ck_msg("run: out of memory");
            free(preload);
            return CK_EXIT_FAIL;
        }
        for (char *save = NULL, *tok = strtok_r(copy, ": \t", &save); tok;
             tok = strtok_r(NULL, ": \t", &save)) {
            if (strcmp(tok, shim) == 0)
                continue;
            strcat(preload, ":");
            strcat(preload, tok);
        }
        free(copy);
    }
    *preload_out = preload;
    return 0;
}

/* Set the environment and exec the program prepared by ck_run_prepare.
 * Returns only on failure (CK_EXIT_FAIL, said why). */
int ck_run_exec(const char *path, const char *preload, const char *app_id, char **argv)
{
    if (setenv("LD_PRELOAD", preload, 1) < 0 ||
        (app_id && setenv("CKSHIM_APP_ID", app_id, 1) < 0)) {
        ck_msg("run: setenv: %s", strerror(errno));
        return CK_EXIT_FAIL;
    }
    fflush(stdout);
    execv(path, argv);
    ck_msg("run: cannot execute %s: %s", path, strerror(errno));
    return CK_EXIT_FAIL;
}

int ck_run_version_option(const char *cmd, int argc, char **argv, int *i)
{
    if (!strcmp(argv[*i], "--no-file-versions")) {
        (*i)++;
        return setenv("CKSHIM_FILE_VERSIONS", "0", 1) < 0 ? -1 : 1;
    }
    const char *path = NULL;
    int r = ck_opt_value(cmd, argc, argv, i, "--shared-file", NULL, &path);
    if (r <= 0)
        return r;
    if (!*path || strchr(path, ':')) {
        ck_usage_error(cmd, "--shared-file: '%s' is not a path coord can pass on (empty or "
                       "with ':')", path);
        return -1;
    }
    /* absolute, so the program finds it from any working directory (it
     * may not exist yet: the program creates its log) */
    char abs[PATH_MAX], cwd[PATH_MAX];
    if (!realpath(path, abs)) {
        if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
            snprintf(abs, sizeof abs, "%s", path);
        else
            snprintf(abs, sizeof abs, "%s/%s", cwd, path);
    }
    const char *old = getenv("CKSHIM_SHARED_FILES");
    size_t len = strlen(abs) + (old ? strlen(old) : 0) + 2;
    char *v = malloc(len);
    if (!v)
        return -1;
    snprintf(v, len, "%s%s%s", old && *old ? old : "", old && *old ? ":" : "", abs);
    r = setenv("CKSHIM_SHARED_FILES", v, 1);
    free(v);
    return r < 0 ? -1 : 1;
}

/* coord run --pidns: the program runs as pid 2 of a pid namespace of its
 * own, under coord's init (pidns.c); coord waits outside and ends as the
 * program does. Returns the exit code. */
int ck_run_pidns(const char *path, const char *preload, const char *app_id, char **argv)
{
    int status_rd = -1;
    pid_t init = ck_pidns_start("run", 0, &status_rd);
    if (init < 0)
        return CK_EXIT_FAIL;
    if (init == 0) {
        pid_t p = fork();
        if (p == 0) {
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            _exit(ck_run_exec(path, preload, app_id, argv));
        }
        if (p < 0) {
            ck_msg("run: fork in the new pid namespace: %s", strerror(errno));
            _exit(1);
        }
        ck_pidns_init(p);
    }
    return ck_pidns_wait(init, status_rd);
}

/* The options that make coord run a supervisor (supervise.c). */
static int supervise_option(const char *a)
{
    static const char *const opts[] = {"--every", "--images", "--keep", "--auto-restore",
                                       "--resume", "--max-restores", "--window",
                                       "--exit-code-on-checkpoint", "--counter", "--record-net",
                                       "--record-net-max", "--priority"};
    for (size_t k = 0; k < sizeof opts / sizeof *opts; k++) {
        size_t l = strlen(opts[k]);
        if (!strncmp(a, opts[k], l) && (a[l] == '\0' || a[l] == '='))
            return 1;
    }
    return 0;
}

int cmd_run(int argc, char **argv)
{
    const char *app_id = NULL;
    int i = 1, pidns = 0;
    while (i < argc) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-')
            break;
        if (supervise_option(a))
            return ck_supervise(argc, argv);
        if (strcmp(a, "--pidns") == 0) {
            pidns = 1;
            i++;
            continue;
        }
        int r = ck_opt_value("run", argc, argv, &i, "--id", NULL, &app_id);
        if (r == 0)
            r = ck_run_version_option("run", argc, argv, &i);
        if (r < 0)
            return CK_EXIT_USAGE;
        if (r > 0)
            continue;
        return ck_usage_error("run", "unknown option '%s'", a);
    }
    if (i >= argc)
        return ck_usage_error("run", "missing program to run");
    char iderr[256];
    if (app_id && ck_check_app_id(app_id, iderr, sizeof iderr) < 0)
        return ck_usage_error("run", "--id: %s", iderr);

    char path[PATH_MAX], *preload = NULL;
    if (ck_run_prepare(argv[i], path, sizeof path, &preload) != 0)
        return CK_EXIT_FAIL;
    if (pidns)
        return ck_run_pidns(path, preload, app_id, argv + i);
    return ck_run_exec(path, preload, app_id, argv + i);
}
