/* procparse.c - parsers for /proc text, freestanding (no libc): the shim
 * uses them while the program's threads are parked and the restorer links
 * them statically. */
#include "procparse.h"

#include "image.h"

#define CK_PP_EINVAL 22                 /* EINVAL on Linux; no errno.h here */
#define CK_PP_PROT_READ 0x1
#define CK_PP_PROT_WRITE 0x2
#define CK_PP_PROT_EXEC 0x4

static inline int pp_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ck_parse_hex(const char **p, uint64_t *ret)
{
    const char *s = *p;
    uint64_t v = 0;
    int n = 0, d;

    while ((d = pp_hexval(*s)) >= 0) {
        if (v >> 60)
            return -CK_PP_EINVAL;       /* would overflow 64 bits */
        v = (v << 4) | (uint64_t)d;
        s++;
        n++;
    }
    if (n == 0)
        return -CK_PP_EINVAL;
    *p = s;
    *ret = v;
    return 0;
}

int ck_parse_dec(const char **p, uint64_t *ret)
{
    const char *s = *p;
    uint64_t v = 0;
    int n = 0;

    while (*s >= '0' && *s <= '9') {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -CK_PP_EINVAL;
        v = v * 10 + d;
        s++;
        n++;
    }
    if (n == 0)
        return -CK_PP_EINVAL;
    *p = s;
    *ret = v;
    return 0;
}

/* Bounded variants for text that is not NUL-terminated: parse digits in
 * [*p, end). Return 0 and advance, or -EINVAL (no digit or overflow). */
static int pp_dec_n(const char **p, const char *end, uint64_t *ret)
{
    const char *s = *p;
    uint64_t v = 0;

    if (s >= end || *s < '0' || *s > '9')
        return -CK_PP_EINVAL;
    while (s < end && *s >= '0' && *s <= '9') {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -CK_PP_EINVAL;
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *ret = v;
    return 0;
}

static int pp_hex_n(const char **p, const char *end, uint64_t *ret)
{
    const char *s = *p;
    uint64_t v = 0;
    int d;

    if (s >= end || pp_hexval(*s) < 0)
        return -CK_PP_EINVAL;
    while (s < end && (d = pp_hexval(*s)) >= 0) {
        if (v >> 60)
            return -CK_PP_EINVAL;
        v = (v << 4) | (uint64_t)d;
        s++;
    }
    *p = s;
    *ret = v;
    return 0;
}

static int pp_oct_n(const char **p, const char *end, uint64_t *ret)
{
    const char *s = *p;
    uint64_t v = 0;

    if (s >= end || *s < '0' || *s > '7')
        return -CK_PP_EINVAL;
    while (s < end && *s >= '0' && *s <= '7') {
        if (v >> 61)
            return -CK_PP_EINVAL;
        v = (v << 3) | (uint64_t)(*s - '0');
        s++;
    }
    *p = s;
    *ret = v;
    return 0;
}

static inline int pp_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* A line of /proc/PID/maps:
 *   start-end perms offset major:minor inode<padding>path
 * e.g. "7f3a2c000000-7f3a2c021000 rw-p 00000000 00:00 0" (anonymous, maybe
 * with a trailing blank) or "... 08:01 1234   /usr/lib/my lib.so (deleted)".
 * The path runs from the first non-blank after the inode to the end of the
 * line and may contain blanks. */
int ck_parse_maps_line(char *line, struct ck_maps_entry *e)
{
    const char *p = line;
    uint64_t v;

    if (!line || !e)
        return -CK_PP_EINVAL;

    if (ck_parse_hex(&p, &e->start) < 0 || *p++ != '-')
        return -CK_PP_EINVAL;
    if (ck_parse_hex(&p, &e->end) < 0 || *p++ != ' ')
        return -CK_PP_EINVAL;
    if (e->end < e->start)
        return -CK_PP_EINVAL;

    /* perms: exactly "rwxp" with '-' for each absent letter */
    e->prot = 0;
    if (p[0] == 'r')
        e->prot |= CK_PP_PROT_READ;
    else if (p[0] != '-')
        return -CK_PP_EINVAL;
    if (p[1] == 'w')
        e->prot |= CK_PP_PROT_WRITE;
    else if (p[1] != '-')
        return -CK_PP_EINVAL;
    if (p[2] == 'x')
        e->prot |= CK_PP_PROT_EXEC;
    else if (p[2] != '-')
        return -CK_PP_EINVAL;
    if (p[3] == 's')
        e->shared = 1;
    else if (p[3] == 'p')
        e->shared = 0;
    else
        return -CK_PP_EINVAL;
    p += 4;
    if (*p++ != ' ')
        return -CK_PP_EINVAL;

    if (ck_parse_hex(&p, &e->offset) < 0 || *p++ != ' ')
        return -CK_PP_EINVAL;
    if (ck_parse_hex(&p, &v) < 0 || v > 0xffffffffULL || *p++ != ':')
        return -CK_PP_EINVAL;
    e->dev_major = (uint32_t)v;
    if (ck_parse_hex(&p, &v) < 0 || v > 0xffffffffULL)
        return -CK_PP_EINVAL;
    e->dev_minor = (uint32_t)v;
    if (*p++ != ' ')
        return -CK_PP_EINVAL;
    if (ck_parse_dec(&p, &e->ino) < 0)
        return -CK_PP_EINVAL;
    if (*p != '\0' && *p != '\n' && !pp_is_blank(*p))
        return -CK_PP_EINVAL;

    while (pp_is_blank(*p))
        p++;

    e->deleted = 0;
    if (*p == '\0' || *p == '\n') {
        e->path = "";
        return 0;
    }

    char *path = line + (p - line);
    char *q = path;
    while (*q != '\0' && *q != '\n')
        q++;
    *q = '\0';

    static const char deleted_sfx[] = " (deleted)";
    const size_t sfx_len = sizeof(deleted_sfx) - 1;
    size_t n = (size_t)(q - path);
    if (n > sfx_len) {
        size_t i;
        for (i = 0; i < sfx_len; i++)
            if (path[n - sfx_len + i] != deleted_sfx[i])
                break;
        if (i == sfx_len) {
            path[n - sfx_len] = '\0';
            e->deleted = 1;
        }
    }
    e->path = path;
    return 0;
}

/* Does the line [s, end) start with key (which includes its ':')? If so,
 * *val points past the key and the blanks after it. */
static int pp_key(const char *s, const char *end, const char *key, const char **val)
{
    while (*key) {
        if (s >= end || *s != *key)
            return 0;
        s++;
        key++;
    }
    while (s < end && pp_is_blank(*s))
        s++;
    *val = s;
    return 1;
}

int ck_parse_fdinfo(const char *text, size_t len, struct ck_fdinfo *fi)
{
    const char *s, *end, *v;
    int have_pos = 0, have_flags = 0;
    uint64_t x;

    if (!fi || (!text && len > 0))
        return -CK_PP_EINVAL;
    fi->pos = 0;
    fi->flags = 0;
    fi->mnt_id = 0;
    fi->ino = 0;
    fi->has_eventfd = 0;
    fi->eventfd_count = 0;
    fi->scm_fds = -1;
    if (len == 0)
        return -CK_PP_EINVAL;

    s = text;
    end = text + len;
    while (s < end) {
        const char *eol = s;
        while (eol < end && *eol != '\n')
            eol++;

        if (pp_key(s, eol, "pos:", &v)) {
            int neg = 0;
            if (v < eol && *v == '-') {
                neg = 1;
                v++;
            }
            if (pp_dec_n(&v, eol, &x) < 0 || x > (uint64_t)INT64_MAX)
                return -CK_PP_EINVAL;
            fi->pos = neg ? -(int64_t)x : (int64_t)x;
            have_pos = 1;
        } else if (pp_key(s, eol, "flags:", &v)) {
            if (pp_oct_n(&v, eol, &x) < 0 || x > 0xffffffffULL)
                return -CK_PP_EINVAL;
            fi->flags = (uint32_t)x;
            have_flags = 1;
        } else if (pp_key(s, eol, "mnt_id:", &v)) {
            if (pp_dec_n(&v, eol, &x) == 0 && x <= 0xffffffffULL)
                fi->mnt_id = (uint32_t)x;
        } else if (pp_key(s, eol, "ino:", &v)) {
            if (pp_dec_n(&v, eol, &x) == 0)
                fi->ino = x;
        } else if (pp_key(s, eol, "eventfd-count:", &v)) {
            if (pp_hex_n(&v, eol, &x) < 0)
                return -CK_PP_EINVAL;
            fi->has_eventfd = 1;
            fi->eventfd_count = x;
        } else if (pp_key(s, eol, "scm_fds:", &v)) {
            if (pp_dec_n(&v, eol, &x) == 0 && x <= 0x7fffffffULL)
                fi->scm_fds = (int32_t)x;
        }
        s = eol < end ? eol + 1 : end;
    }
    return (have_pos && have_flags) ? 0 : -CK_PP_EINVAL;
}

/* Skip one blank-separated field of [*p, end) and the blank after it. */
static int pp_skip_field(const char **p, const char *end)
{
    const char *s = *p;

    if (s >= end || *s == ' ' || *s == '\n')
        return -CK_PP_EINVAL;
    while (s < end && *s != ' ' && *s != '\n')
        s++;
    if (s < end && *s == ' ')
        s++;
    *p = s;
    return 0;
}

/* Parse an unsigned decimal field and the blank (or end) after it. */
static int pp_dec_field(const char **p, const char *end, uint64_t *ret)
{
    if (pp_dec_n(p, end, ret) < 0)
        return -CK_PP_EINVAL;
    if (*p < end) {
        if (**p == ' ')
            (*p)++;
        else if (**p != '\n')
            return -CK_PP_EINVAL;
    }
    return 0;
}

int ck_parse_stat_mm(const char *text, size_t len, struct ck_mm *mm)
{
    const char *s, *end, *rp = 0;
    uint64_t v[52];                     /* 1-based proc(5) field numbers */
    int field;

    if (!text || !mm || len == 0)
        return -CK_PP_EINVAL;
    end = text + len;
    for (s = text; s < end; s++)
        if (*s == ')')
            rp = s;
    if (!rp || rp + 2 > end || rp[1] != ' ')
        return -CK_PP_EINVAL;
    s = rp + 2;

    for (field = 0; field < 52; field++)
        v[field] = 0;

    /* Field 3 (state) is the first after the comm. */
    for (field = 3; field <= 51; field++) {
        int want = (field >= 26 && field <= 28) || field >= 45;
        if (want) {
            if (pp_dec_field(&s, end, &v[field]) < 0)
                return -CK_PP_EINVAL;
        } else if (pp_skip_field(&s, end) < 0) {
            return -CK_PP_EINVAL;
        }
    }

    mm->start_code = v[26];
    mm->end_code = v[27];
    mm->start_stack = v[28];
    mm->start_data = v[45];
    mm->end_data = v[46];
    mm->start_brk = v[47];
    mm->arg_start = v[48];
    mm->arg_end = v[49];
    mm->env_start = v[50];
    mm->env_end = v[51];
    return 0;
}
