/* counter.c - the monotonic counter behind rollback protection (counter.h).
 *
 * The file backend keeps the counters of every app id in one text file:
 *
 *     # ckshim counters v1
 *     myapp 12
 *     other.app:1 3
 *
 * The header line is mandatory, then one "ID VALUE" line per id (VALUE in
 * decimal), every line ending with '\n'. A file that does not parse is never
 * treated as empty: that would reset the counters and make old images
 * restorable again, so it is an error (-EBADMSG) until someone fixes or
 * removes it by hand.
 *
 * Updates hold flock(LOCK_EX) on the separate, never replaced file
 * PATH.lock for the whole read-modify-write; the new content goes to
 * PATH.tmp, is fsync()ed, renamed over PATH and the directory is fsync()ed.
 * A crash therefore leaves the old or the new file, and readers that do not
 * lock (ck_counter_get) always see a whole file.
 *
 * The redis backend connects for every call; INCR is atomic on the server
 * and fetch_incr_if is a Lua script (EVAL), atomic too.
 *
 * Nothing here prints: errors are -errno with a message in err.
 */
#include "counter.h"
#include "fileid.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#define DEFAULT_PREFIX "ckshim:counter"
#define DEFAULT_REDIS_PORT 6379
#define DEFAULT_TIMEOUT_MS 2000
#define ID_MAX 63
#define FILE_HEADER "# ckshim counters v1\n"
#define FILE_MAX_BYTES (16u << 20)
/* Room left in c->path for the ".lock" / ".tmp" siblings. */
#define PATH_SUFFIX_ROOM 16

static void seterr(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (!err || len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

/* A printable, bounded copy of untrusted text (n bytes at most) for
 * messages; "..." marks a cut. */
static void sanitize(char *out, size_t outlen, const char *s, size_t n)
{
    size_t o = 0, i = 0;

    if (outlen < 8) {
        if (outlen)
            out[0] = '\0';
        return;
    }
    for (; i < n && s[i] && o < outlen - 4; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (i < n && s[i]) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static int id_char_ok(int ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == ':' || ch == '@' || ch == '+' || ch == '-';
}

/* 1..63 characters of [A-Za-z0-9._:@+-]. */
int ck_check_app_id(const char *id, char *err, size_t errlen)
{
    char shown[80];
    size_t n;

    if (!id || !*id) {
        seterr(err, errlen, "invalid app id '': it must be 1 to %d characters of [A-Za-z0-9._:@+-]",
               ID_MAX);
        return -EINVAL;
    }
    n = strnlen(id, ID_MAX + 1);
    for (size_t i = 0; i < n; i++) {
        if (!id_char_ok((unsigned char)id[i])) {
            sanitize(shown, sizeof shown, id, strnlen(id, 200));
            seterr(err, errlen,
                   "invalid app id '%s': character %zu is not one of [A-Za-z0-9._:@+-]", shown,
                   i + 1);
            return -EINVAL;
        }
    }
    if (n > ID_MAX) {
        sanitize(shown, sizeof shown, id, strnlen(id, 200));
        seterr(err, errlen, "invalid app id '%s': longer than %d characters", shown, ID_MAX);
        return -EINVAL;
    }
    return 0;
}

/* Strict unsigned decimal: digits only, no sign, no overflow. */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0 || n > 20)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------ URLs */

int ck_counter_default_url(char *buf, size_t len)
{
    const char *base;
    const char *tail;
    int n;

    if (!buf || len == 0)
        return -ENAMETOOLONG;
    buf[0] = '\0';
    base = getenv("XDG_STATE_HOME");
    tail = "ckshim/counters";
    /* The XDG spec says relative values are to be ignored. */
    if (!base || base[0] != '/') {
        tail = ".local/state/ckshim/counters";
        base = getenv("HOME");
        if (!base || !*base) {
            struct passwd *pw = getpwuid(getuid());
            if (!pw || !pw->pw_dir || !*pw->pw_dir)
                return -ENOENT;
            base = pw->pw_dir;
        }
    }
    size_t bl = strlen(base);
    while (bl > 1 && base[bl - 1] == '/')
        bl--;
    if (bl == 1 && base[0] == '/')
        bl = 0; /* "/" + "/ckshim" -> "/ckshim" */
    n = snprintf(buf, len, "file:%.*s/%s", (int)bl, base, tail);
    if (n < 0 || (size_t)n >= len) {
        buf[0] = '\0';
        return -ENAMETOOLONG;
    }
    return 0;
}

static int parse_file(const char *rest, const char *url, struct ck_counter *c, char *err,
                      size_t errlen)
{
    char shown[120];
    size_t n;

    if (strncmp(rest, "//", 2) == 0) {
        /* file:///abs/path; file://host/... is not supported. */
        rest += 2;
        if (rest[0] != '/') {
            sanitize(shown, sizeof shown, url, strlen(url));
            seterr(err, errlen, "counter URL '%s': file:// must be followed by an absolute path",
                   shown);
            return -EINVAL;
        }
    }
    n = strlen(rest);
    if (n == 0) {
        seterr(err, errlen, "counter URL 'file:' has no path (expected file:PATH)");
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)rest[i] < 0x20 || rest[i] == 0x7f) {
            sanitize(shown, sizeof shown, url, n + 5);
            seterr(err, errlen, "counter URL '%s': the path contains control characters", shown);
            return -EINVAL;
        }
    }
    if (rest[n - 1] == '/') {
        sanitize(shown, sizeof shown, url, strlen(url));
        seterr(err, errlen, "counter URL '%s': the path names a directory, not a file", shown);
        return -EINVAL;
    }
    if (rest[0] == '/') {
        if (n >= sizeof(c->path) - PATH_SUFFIX_ROOM) {
            seterr(err, errlen, "counter URL: the path is too long");
            return -EINVAL;
        }
        memcpy(c->path, rest, n + 1);
    } else {
        /* Relative to the current directory, made absolute now so the
         * counter stays the same file whatever the caller does later. */
        char cwd[4096];
        if (!getcwd(cwd, sizeof cwd)) {
            seterr(err, errlen, "counter URL file:%s: cannot resolve the relative path: %s", rest,
                   strerror(errno));
            return -EINVAL;
        }
        int m = snprintf(c->path, sizeof(c->path), "%s/%s", strcmp(cwd, "/") ? cwd : "", rest);
        if (m < 0 || (size_t)m >= sizeof(c->path) - PATH_SUFFIX_ROOM) {
            seterr(err, errlen, "counter URL: the path is too long");
            return -EINVAL;
        }
    }
    c->kind = CK_COUNTER_FILE;
    return 0;
}

static int host_char_ok(int ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '-' || ch == '_';
}

static int parse_redis(const char *rest, const char *url, struct ck_counter *c, char *err,
                       size_t errlen)
{
    char shown[160];
    const char *p = rest, *hs, *he;
    const char *why = NULL;

    sanitize(shown, sizeof shown, url, strlen(url));
    if (*p == '[') {
        hs = ++p;
        while (*p && *p != ']')
            p++;
        if (*p != ']') {
            why = "unterminated '[' in the host";
            goto bad;
        }
        he = p++;
        for (const char *q = hs; q < he; q++) {
            if (!(host_char_ok((unsigned char)*q) || *q == ':' || *q == '%')) {
                why = "invalid character in the IPv6 address";
                goto bad;
            }
        }
        if (he == hs || !memchr(hs, ':', (size_t)(he - hs))) {
            why = "the bracketed host is not an IPv6 address";
            goto bad;
        }
    } else {
        hs = p;
        while (*p && *p != ':' && *p != '/') {
            if (!host_char_ok((unsigned char)*p)) {
                why = *p == '@' ? "user names and passwords are not supported"
                                : "invalid character in the host name";
                goto bad;
            }
            p++;
        }
        he = p;
    }
    if (he == hs) {
        why = "no host";
        goto bad;
    }
    if ((size_t)(he - hs) >= sizeof(c->host)) {
        why = "the host name is too long";
        goto bad;
    }
    memcpy(c->host, hs, (size_t)(he - hs));
    c->host[he - hs] = '\0';

    c->port = DEFAULT_REDIS_PORT;
    if (*p == ':') {
        const char *ps = ++p;
        uint64_t port;
        while (*p && *p != '/')
            p++;
        if (parse_u64(ps, (size_t)(p - ps), &port) < 0 || port < 1 || port > 65535) {
            why = "the port must be a number from 1 to 65535";
            goto bad;
        }
        c->port = (int)port;
    } else if (*p && *p != '/') {
        why = "unexpected character after the host";
        goto bad;
    }

    snprintf(c->prefix, sizeof c->prefix, "%s", DEFAULT_PREFIX);
    if (*p == '/') {
        p++;
        size_t n = strlen(p);
        if (n >= sizeof(c->prefix)) {
            why = "the key prefix is too long";
            goto bad;
        }
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)p[i] <= 0x20 || p[i] == 0x7f) {
                why = "the key prefix contains whitespace or control characters";
                goto bad;
            }
        }
        if (n > 0)
            memcpy(c->prefix, p, n + 1);
    }
    c->kind = CK_COUNTER_REDIS;
    return 0;
bad:
    seterr(err, errlen, "counter URL '%s': %s (expected redis://HOST[:PORT][/PREFIX])", shown, why);
    return -EINVAL;
}

int ck_counter_parse(const char *url, struct ck_counter *c, char *err, size_t errlen)
{
    char def[sizeof(c->path) + 8];
    char shown[120];
    int r;

    if (err && errlen)
        err[0] = '\0';
    if (!c)
        return -EINVAL;
    memset(c, 0, sizeof *c);
    c->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (!url || !*url) {
        r = ck_counter_default_url(def, sizeof def);
        if (r < 0) {
            seterr(err, errlen,
                   "cannot work out the default counter file (no $XDG_STATE_HOME, $HOME or "
                   "home directory): %s; use --counter URL",
                   strerror(-r));
            return -EINVAL;
        }
        url = def;
    }
    if (strcmp(url, "none") == 0) {
        c->kind = CK_COUNTER_NONE;
        return 0;
    }
    if (strncmp(url, "file:", 5) == 0)
        r = parse_file(url + 5, url, c, err, errlen);
    else if (strncmp(url, "redis://", 8) == 0)
        r = parse_redis(url + 8, url, c, err, errlen);
    else {
        sanitize(shown, sizeof shown, url, strlen(url));
        seterr(err, errlen,
               "unknown counter URL '%s' (expected file:PATH, redis://HOST:PORT[/PREFIX] or none)",
               shown);
        r = -EINVAL;
    }
    if (r < 0) {
        memset(c, 0, sizeof *c);
        c->timeout_ms = DEFAULT_TIMEOUT_MS;
    }
    return r;
}

void ck_counter_describe(const struct ck_counter *c, char *buf, size_t len)
{
    if (!buf || len == 0)
        return;
    if (!c) {
        snprintf(buf, len, "(no counter)");
        return;
    }
    switch (c->kind) {
    case CK_COUNTER_FILE:
        snprintf(buf, len, "file:%s", c->path);
        break;
    case CK_COUNTER_REDIS: {
        int v6 = strchr(c->host, ':') != NULL;
        int dflt = strcmp(c->prefix, DEFAULT_PREFIX) == 0 || !c->prefix[0];
        snprintf(buf, len, "redis://%s%s%s:%d%s%s", v6 ? "[" : "", c->host, v6 ? "]" : "", c->port,
                 dflt ? "" : "/", dflt ? "" : c->prefix);
        break;
    }
    case CK_COUNTER_NONE:
        snprintf(buf, len, "none");
        break;
    default:
        snprintf(buf, len, "(invalid counter)");
        break;
    }
}

/* ----------------------------------------------------------- file backend */

struct entry {
    char id[ID_MAX + 1];
    uint64_t value;
};

struct table {
    struct entry *e;
    size_t n, cap;
};

static int table_add(struct table *t, const char *id, size_t idlen, uint64_t value)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct entry *e = realloc(t->e, cap * sizeof *e);
        if (!e)
            return -ENOMEM;
        t->e = e;
        t->cap = cap;
    }
    memcpy(t->e[t->n].id, id, idlen);
    t->e[t->n].id[idlen] = '\0';
    t->e[t->n].value = value;
    t->n++;
    return 0;
}

static struct entry *table_find(struct table *t, const char *id)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->e[i].id, id) == 0)
            return &t->e[i];
    return NULL;
}

static int corrupt(const char *path, size_t line, const char *why, char *err, size_t errlen)
{
    if (line)
        seterr(err, errlen,
               "counter file %s is corrupted (line %zu: %s); refusing to use it: fix or remove "
               "it by hand (removing it resets all counters and re-enables old images)",
               path, line, why);
    else
        seterr(err, errlen,
               "counter file %s is corrupted (%s); refusing to use it: fix or remove it by hand "
               "(removing it resets all counters and re-enables old images)",
               path, why);
    return -EBADMSG;
}

/* Parse the whole file; the table is empty when the file does not exist. */
static int parse_table(const char *path, const char *buf, size_t len, struct table *t, char *err,
                       size_t errlen)
{
    size_t hl = strlen(FILE_HEADER), line = 1, i;

    if (len == 0)
        return corrupt(path, 0, "the file is empty", err, errlen);
    if (len < hl || memcmp(buf, FILE_HEADER, hl) != 0)
        return corrupt(path, 1, "missing the '# ckshim counters v1' header", err, errlen);
    if (buf[len - 1] != '\n')
        return corrupt(path, 0, "the last line is incomplete", err, errlen);
    if (memchr(buf, '\0', len))
        return corrupt(path, 0, "it contains NUL bytes", err, errlen);
    i = hl;
    while (i < len) {
        const char *ln = buf + i;
        const char *nl = memchr(ln, '\n', len - i);
        size_t ll = (size_t)(nl - ln), a = 0, ids, idl, vs, vl;
        uint64_t v;
        line++;
        i += ll + 1;
        ids = a;
        while (a < ll && ln[a] != ' ' && ln[a] != '\t')
            a++;
        idl = a - ids;
        while (a < ll && (ln[a] == ' ' || ln[a] == '\t'))
            a++;
        vs = a;
        while (a < ll && ln[a] >= '0' && ln[a] <= '9')
            a++;
        vl = a - vs;
        while (a < ll && (ln[a] == ' ' || ln[a] == '\t' || ln[a] == '\r'))
            a++;
        if (idl == 0 || vl == 0 || a != ll)
            return corrupt(path, line, "expected 'ID VALUE'", err, errlen);
        if (idl > ID_MAX)
            return corrupt(path, line, "the id is too long", err, errlen);
        for (size_t k = 0; k < idl; k++)
            if (!id_char_ok((unsigned char)ln[ids + k]))
                return corrupt(path, line, "invalid character in the id", err, errlen);
        if (parse_u64(ln + vs, vl, &v) < 0)
            return corrupt(path, line, "the value is out of range", err, errlen);
        char idbuf[ID_MAX + 1];
        memcpy(idbuf, ln + ids, idl);
        idbuf[idl] = '\0';
        if (table_find(t, idbuf))
            return corrupt(path, line, "duplicate id", err, errlen);
        if (table_add(t, idbuf, idl, v) < 0) {
            seterr(err, errlen, "counter file %s: out of memory", path);
            return -ENOMEM;
        }
    }
    return 0;
}

/* Read and parse path; a missing file is an empty table. */
static int load_table(const char *path, struct table *t, char *err, size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd, r;

    /* O_NONBLOCK: a FIFO at the path must not hang coord (refused below). */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        r = -errno;
        seterr(err, errlen, "cannot open counter file %s: %s", path, strerror(-r));
        return r;
    }
    if (fstat(fd, &st) < 0) {
        r = -errno;
        seterr(err, errlen, "cannot stat counter file %s: %s", path, strerror(-r));
        goto out;
    }
    if (S_ISREG(st.st_mode) && st.st_uid != geteuid()) {
        /* Whoever owns the file sets the counters: only ours count. */
        r = -EPERM;
        seterr(err, errlen, "counter file %s belongs to uid %u, not to you", path,
               (unsigned)st.st_uid);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        seterr(err, errlen, "counter file %s: is %s, not a regular file", path,
               ck_file_type_name(st.st_mode));
        goto out;
    }
    if ((uint64_t)st.st_size > FILE_MAX_BYTES) {
        r = corrupt(path, 0, "larger than 16 MiB", err, errlen);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        r = -ENOMEM;
        seterr(err, errlen, "counter file %s: out of memory", path);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            seterr(err, errlen, "cannot read counter file %s: %s", path, strerror(-r));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (got > (size_t)st.st_size) {
            /* Nobody appends to it: the file is replaced, never grown. */
            r = corrupt(path, 0, "it grew while being read", err, errlen);
            goto out;
        }
    }
    r = parse_table(path, buf, got, t, err, errlen);
out:
    free(buf);
    close(fd);
    return r;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        if (w == 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* mkdir -p (mode 0700) of the directory holding path. */
static int make_parents(const char *path, char *err, size_t errlen)
{
    char dir[4096];
    struct stat st;
    size_t n;

    ck_dir_of(path, dir, sizeof dir);
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        seterr(err, errlen, "cannot create counter file %s: %s is not a directory", path, dir);
        return -ENOTDIR;
    }
    n = strlen(dir);
    for (size_t i = 1; i <= n; i++) {
        if (dir[i] != '/' && dir[i] != '\0')
            continue;
        char ch = dir[i];
        dir[i] = '\0';
        if (mkdir(dir, 0700) == 0) {
            char parent[4096];
            ck_dir_of(dir, parent, sizeof parent);
            ck_fsync_dir(parent); /* best effort: make the new entry durable */
        } else if (errno != EEXIST) {
            int r = -errno;
            seterr(err, errlen, "cannot create directory %s for the counter file: %s", dir,
                   strerror(-r));
            return r;
        }
        dir[i] = ch;
    }
    return 0;
}

/* Write the table to path atomically (tmp file, fsync, rename, fsync dir). */
static int store_table(const char *path, const struct table *t, char *err, size_t errlen)
{
    char tmp[sizeof(((struct ck_counter *)0)->path) + 8];
    char dir[4096];
    size_t cap = strlen(FILE_HEADER) + t->n * (ID_MAX + 24) + 1, len = 0;
    char *buf = malloc(cap);
    int fd = -1, r;

    if (!buf) {
        seterr(err, errlen, "counter file %s: out of memory", path);
        return -ENOMEM;
    }
    len = (size_t)snprintf(buf, cap, "%s", FILE_HEADER);
    for (size_t i = 0; i < t->n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s %llu\n", t->e[i].id,
                                (unsigned long long)t->e[i].value);

    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* We hold the lock: a file of that name is a leftover of ours, or
     * someone else's (then the exclusive create fails, as it must). */
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = -errno;
        seterr(err, errlen, "cannot create %s: %s", tmp, strerror(-r));
        goto out;
    }
    r = write_all(fd, buf, len);
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (r < 0) {
        seterr(err, errlen, "cannot write %s: %s", tmp, strerror(-r));
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        r = -errno;
        seterr(err, errlen, "cannot write %s: %s", tmp, strerror(-r));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        r = -errno;
        seterr(err, errlen, "cannot replace counter file %s: %s", path, strerror(-r));
        goto out;
    }
    ck_dir_of(path, dir, sizeof dir);
    r = ck_fsync_dir(dir);
    if (r < 0)
        seterr(err, errlen, "cannot sync directory %s of the counter file: %s", dir, strerror(-r));
out:
    if (fd >= 0)
        close(fd);
    if (r < 0)
        unlink(tmp);
    free(buf);
    return r;
}

/* Take the exclusive lock on PATH.lock (creating directories as needed);
 * returns the locked fd or -errno. */
static int lock_counter(const char *path, char *err, size_t errlen)
{
    char lk[sizeof(((struct ck_counter *)0)->path) + 8];
    int fd, r;

    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        seterr(err, errlen, "counter file %s: is %s, not a regular file", path,
               ck_file_type_name(st.st_mode));
        return r;
    }
    r = make_parents(path, err, errlen);
    if (r < 0)
        return r;
    snprintf(lk, sizeof lk, "%s.lock", path);
    fd = open(lk, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = -errno;
        seterr(err, errlen, "cannot open counter lock file %s: %s", lk, strerror(-r));
        return r;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        /* another user's lock file could be held by them forever */
        seterr(err, errlen, "counter lock file %s is not a regular file of yours", lk);
        close(fd);
        return -EPERM;
    }
    while (flock(fd, LOCK_EX) < 0) {
        if (errno == EINTR)
            continue;
        r = -errno;
        seterr(err, errlen, "cannot lock counter lock file %s: %s", lk, strerror(-r));
        close(fd);
        return r;
    }
    return fd;
}

/* expect == NULL: unconditional increment. */
/* Add one to the counter of id (only if it equals *expect, when expect is
 * given), or with adopt: raise it to *adopt if it is lower (a program
 * that was stamped elsewhere since); *ret_value as the API says. */
static int file_update(const struct ck_counter *c, const char *id, const uint64_t *expect,
                       const uint64_t *adopt, uint64_t *ret_value, char *err, size_t errlen)
{
    struct table t = {0};
    struct entry *e;
    uint64_t cur;
    int lfd, r;

    lfd = lock_counter(c->path, err, errlen);
    if (lfd < 0)
        return lfd;
    r = load_table(c->path, &t, err, errlen);
    if (r < 0)
        goto out;
    e = table_find(&t, id);
    cur = e ? e->value : 0;
    if ((expect && cur != *expect) || (adopt && cur >= *adopt)) {
        *ret_value = cur; /* no match: nothing changes */
        goto out;
    }
    if (cur == UINT64_MAX) {
        r = -EOVERFLOW;
        seterr(err, errlen, "counter '%s' in %s is at its maximum", id, c->path);
        goto out;
    }
    if (!e) {
        r = table_add(&t, id, strlen(id), 0);
        if (r < 0) {
            seterr(err, errlen, "counter file %s: out of memory", c->path);
            goto out;
        }
        e = &t.e[t.n - 1];
    }
    e->value = adopt ? *adopt : cur + 1;
    r = store_table(c->path, &t, err, errlen);
    if (r == 0)
        *ret_value = adopt ? *adopt : expect ? cur : cur + 1;
out:
    free(t.e);
    close(lfd); /* releases the lock */
    return r;
}

static int file_get(const struct ck_counter *c, const char *id, uint64_t *ret_value, char *err,
                    size_t errlen)
{
    struct table t = {0};
    struct entry *e;
    int r;

    /* No lock: the file is only ever replaced whole by rename(). But a
     * lock file someone else planted would make every later update fail:
     * say so now (a checkpoint then fails before it pauses anything). */
    char lk[sizeof(((struct ck_counter *)0)->path) + 8];
    struct stat st;
    snprintf(lk, sizeof lk, "%s.lock", c->path);
    if (lstat(lk, &st) == 0 && (!S_ISREG(st.st_mode) || st.st_uid != geteuid())) {
        seterr(err, errlen, "counter lock file %s is not a regular file of yours", lk);
        return -EPERM;
    }
    r = load_table(c->path, &t, err, errlen);
    if (r == 0) {
        e = table_find(&t, id);
        *ret_value = e ? e->value : 0;
    }
    free(t.e);
    return r;
}

/* ---------------------------------------------------------- redis backend */

/* hiredis writes with write(): a server that goes away would raise SIGPIPE
 * in the caller (maybe the application the shim lives in). Block it for the
 * duration and swallow one that we caused. */
struct pipe_guard {
    sigset_t old;
    int was_pending;
};

static void pipe_guard_on(struct pipe_guard *g)
{
    sigset_t set, pend;

    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pend);
    sigpending(&pend);
    g->was_pending = sigismember(&pend, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void pipe_guard_off(struct pipe_guard *g)
{
    sigset_t set, pend;

    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pend);
    if (!g->was_pending && sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* Map a hiredis context error to -errno. */
static int redis_errno(const redisContext *rc)
{
    static const int errs[] = {ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ENETUNREACH,
                               ECONNRESET,   EPIPE,     ENETDOWN,     EADDRNOTAVAIL,
                               ECONNABORTED, EHOSTDOWN, EAGAIN,       EINPROGRESS,
                               EACCES,       EPERM,     EMFILE,       ENFILE};

    switch (rc->err) {
    case REDIS_ERR_EOF:
        return -ECONNRESET;
    case REDIS_ERR_PROTOCOL:
        return -EPROTO;
    case REDIS_ERR_OOM:
        return -ENOMEM;
    case REDIS_ERR_IO:
        for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
            if (strcmp(rc->errstr, strerror(errs[i])) == 0) {
                if (errs[i] == EAGAIN || errs[i] == EINPROGRESS)
                    return -ETIMEDOUT; /* SO_RCVTIMEO/SO_SNDTIMEO expired */
                return -errs[i];
            }
        }
        return -EIO;
    case REDIS_ERR_OTHER:
        /* Name resolution failures land here ("Name or service not known"). */
        if (strstr(rc->errstr, "resolve") || strstr(rc->errstr, "not known") ||
            strstr(rc->errstr, "name resolution") || strstr(rc->errstr, "No address"))
            return -EHOSTUNREACH;
        if (strstr(rc->errstr, "imed out"))
            return -ETIMEDOUT;
        return -EIO;
    default:
        return -EIO;
    }
}

static const char *redis_errtext(const redisContext *rc)
{
    if (rc->err == REDIS_ERR_EOF)
        return "the server closed the connection";
    if (rc->err == REDIS_ERR_IO && strcmp(rc->errstr, strerror(EAGAIN)) == 0)
        return "timed out waiting for the server";
    return rc->errstr[0] ? rc->errstr : "unknown error";
}

static redisContext *redis_open(const struct ck_counter *c, int *rp, char *err, size_t errlen)
{
    char where[512];
    int ms = c->timeout_ms > 0 ? c->timeout_ms : DEFAULT_TIMEOUT_MS;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    redisContext *rc;

    ck_counter_describe(c, where, sizeof where);
    rc = redisConnectWithTimeout(c->host, c->port, tv);
    if (!rc) {
        *rp = -ENOMEM;
        seterr(err, errlen, "counter service %s: cannot allocate a connection", where);
        return NULL;
    }
    if (rc->err) {
        *rp = redis_errno(rc);
        seterr(err, errlen, "counter service %s is unreachable: %s", where, redis_errtext(rc));
        redisFree(rc);
        return NULL;
    }
    if (redisSetTimeout(rc, tv) != REDIS_OK) {
        *rp = rc->err ? redis_errno(rc) : -EIO;
        seterr(err, errlen, "counter service %s: cannot set the timeout: %s", where,
               redis_errtext(rc));
        redisFree(rc);
        return NULL;
    }
    *rp = 0;
    return rc;
}

static int reply_type_error(const char *where, const char *cmd, const redisReply *rep, char *err,
                            size_t errlen)
{
    static const char *names[] = {"?", "string", "array", "integer", "nil", "status", "error"};
    int ty = rep->type;
    seterr(err, errlen, "counter service %s: unexpected %s reply to %s", where,
           (ty >= 1 && ty <= 6) ? names[ty] : "unknown", cmd);
    return -EPROTO;
}

/* A bulk-string counter value: strict decimal. */
static int reply_value(const char *where, const char *key, const char *s, size_t n, uint64_t *out,
                       char *err, size_t errlen)
{
    char shown[80];

    if (parse_u64(s, n, out) < 0) {
        sanitize(shown, sizeof shown, s, n);
        seterr(err, errlen, "counter service %s: key %s holds '%s', not a counter value", where,
               key, shown);
        return -EBADMSG;
    }
    return 0;
}

/* Returns the current value without a match, the value before the
 * increment with one: the script compares strings, and values written by
 * INCR are canonical decimals. */
static const char FETCH_INCR_IF_LUA[] = "local v = redis.call('GET', KEYS[1])\n"
                                        "if not v then v = '0' end\n"
                                        "if v == ARGV[1] then redis.call('INCR', KEYS[1]) end\n"
                                        "return v\n";

/* Raise the key to ARGV[1] if it holds nothing or less; returns the
 * value after. */
static const char ADOPT_LUA[] = "local v = redis.call('GET', KEYS[1])\n"
                                "if not v or tonumber(v) < tonumber(ARGV[1]) then\n"
                                "  redis.call('SET', KEYS[1], ARGV[1]) v = ARGV[1]\n"
                                "end\n"
                                "return v\n";

enum redis_op { OP_INCR, OP_INCR_IF, OP_GET, OP_ADOPT };

static int redis_do(const struct ck_counter *c, const char *id, enum redis_op op, uint64_t expect,
                    uint64_t *ret_value, char *err, size_t errlen)
{
    struct pipe_guard g;
    char where[512], key[sizeof(c->prefix) + ID_MAX + 2], arg[24];
    const char *cmd = op == OP_INCR ? "INCR" : op == OP_GET ? "GET" : "EVAL";
    redisContext *rc;
    redisReply *rep = NULL;
    int r;

    ck_counter_describe(c, where, sizeof where);
    snprintf(key, sizeof key, "%s:%s", c->prefix[0] ? c->prefix : DEFAULT_PREFIX, id);
    pipe_guard_on(&g);
    rc = redis_open(c, &r, err, errlen);
    if (!rc)
        goto out;
    switch (op) {
    case OP_INCR:
        rep = redisCommand(rc, "INCR %s", key);
        break;
    case OP_GET:
        rep = redisCommand(rc, "GET %s", key);
        break;
    case OP_INCR_IF:
    case OP_ADOPT:
        snprintf(arg, sizeof arg, "%llu", (unsigned long long)expect);
        rep = redisCommand(rc, "EVAL %s 1 %s %s", op == OP_ADOPT ? ADOPT_LUA : FETCH_INCR_IF_LUA,
                           key, arg);
        break;
    }
    if (!rep) {
        r = rc->err ? redis_errno(rc) : -EIO;
        seterr(err, errlen, "counter service %s: %s %s failed: %s", where, cmd, key,
               redis_errtext(rc));
        goto out;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        char shown[200];
        sanitize(shown, sizeof shown, rep->str ? rep->str : "", rep->str ? rep->len : 0);
        seterr(err, errlen, "counter service %s: %s %s: server error: %s", where, cmd, key, shown);
        r = -EIO;
        goto out;
    }
    r = 0;
    switch (op) {
    case OP_INCR:
        if (rep->type != REDIS_REPLY_INTEGER) {
            r = reply_type_error(where, cmd, rep, err, errlen);
        } else if (rep->integer < 1) {
            seterr(err, errlen, "counter service %s: INCR %s gave %lld, not a counter value", where,
                   key, rep->integer);
            r = -EBADMSG;
        } else {
            *ret_value = (uint64_t)rep->integer;
        }
        break;
    case OP_GET:
        if (rep->type == REDIS_REPLY_NIL)
            *ret_value = 0;
        else if (rep->type == REDIS_REPLY_STRING)
            r = reply_value(where, key, rep->str, rep->len, ret_value, err, errlen);
        else
            r = reply_type_error(where, cmd, rep, err, errlen);
        break;
    case OP_INCR_IF:
    case OP_ADOPT:
        if (rep->type == REDIS_REPLY_STRING)
            r = reply_value(where, key, rep->str, rep->len, ret_value, err, errlen);
        else
            r = reply_type_error(where, cmd, rep, err, errlen);
        break;
    }
out:
    if (rep)
        freeReplyObject(rep);
    if (rc)
        redisFree(rc);
    pipe_guard_off(&g);
    return r;
}

/* ------------------------------------------------------------------- API */

static int check_args(const struct ck_counter *c, const char *id, const uint64_t *ret_value,
                      char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!c || !ret_value) {
        seterr(err, errlen, "counter: invalid arguments");
        return -EINVAL;
    }
    if (c->kind != CK_COUNTER_FILE && c->kind != CK_COUNTER_REDIS && c->kind != CK_COUNTER_NONE) {
        seterr(err, errlen, "counter: not initialized (kind %d)", c->kind);
        return -EINVAL;
    }
    return ck_check_app_id(id, err, errlen);
}

int ck_counter_incr_fetch(const struct ck_counter *c, const char *id, uint64_t *ret_value,
                          char *err, size_t errlen)
{
    int r = check_args(c, id, ret_value, err, errlen);

    if (r < 0)
        return r;
    switch (c->kind) {
    case CK_COUNTER_FILE:
        return file_update(c, id, NULL, NULL, ret_value, err, errlen);
    case CK_COUNTER_REDIS:
        return redis_do(c, id, OP_INCR, 0, ret_value, err, errlen);
    default:
        *ret_value = 0; /* none: no stamp */
        return 0;
    }
}

/* Compare-and-increment (adopt 0) or adopt (adopt 1) on any backend. */
static int update_if(const struct ck_counter *c, const char *id, uint64_t v, int adopt,
                     uint64_t *ret_value, char *err, size_t errlen)
{
    int r = check_args(c, id, ret_value, err, errlen);

    if (r < 0)
        return r;
    switch (c->kind) {
    case CK_COUNTER_FILE:
        return file_update(c, id, adopt ? NULL : &v, adopt ? &v : NULL, ret_value, err, errlen);
    case CK_COUNTER_REDIS:
        return redis_do(c, id, adopt ? OP_ADOPT : OP_INCR_IF, v, ret_value, err, errlen);
    default:
        *ret_value = 0; /* none: matches only an unstamped (0) image */
        return 0;
    }
}

int ck_counter_fetch_incr_if(const struct ck_counter *c, const char *id, uint64_t expect,
                             uint64_t *ret_value, char *err, size_t errlen)
{
    return update_if(c, id, expect, 0, ret_value, err, errlen);
}

int ck_counter_adopt(const struct ck_counter *c, const char *id, uint64_t value,
                     uint64_t *ret_value, char *err, size_t errlen)
{
    return update_if(c, id, value, 1, ret_value, err, errlen);
}

int ck_counter_get(const struct ck_counter *c, const char *id, uint64_t *ret_value, char *err,
                   size_t errlen)
{
    int r = check_args(c, id, ret_value, err, errlen);

    if (r < 0)
        return r;
    switch (c->kind) {
    case CK_COUNTER_FILE:
        return file_get(c, id, ret_value, err, errlen);
    case CK_COUNTER_REDIS:
        return redis_do(c, id, OP_GET, 0, ret_value, err, errlen);
    default:
        *ret_value = 0;
        return 0;
    }
}

int ck_stamp_state(uint64_t stamp, uint64_t cur)
{
    if (cur == stamp)
        return CK_STAMP_CURRENT;
    if (cur > stamp)
        return CK_STAMP_STALE;
    if (cur + 1 == stamp)
        return CK_STAMP_PENDING;
    return CK_STAMP_AHEAD;
}
