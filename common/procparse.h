/* procparse.h - parsers for /proc text (maps, fdinfo, stat), freestanding:
 * used by the shim while threads are parked and by the restorer. */
#ifndef CKSHIM_PROCPARSE_H
#define CKSHIM_PROCPARSE_H

#include <stddef.h>
#include <stdint.h>

struct ck_maps_entry {
    uint64_t start, end;
    uint32_t prot;                      /* PROT_READ|PROT_WRITE|PROT_EXEC */
    int shared;                         /* 's' in the perms column */
    uint64_t offset;
    uint32_t dev_major, dev_minor;
    uint64_t ino;
    const char *path;                   /* points into the line, NUL-terminated
                                           by the parser; "" when anonymous */
    int deleted;                        /* path ended in " (deleted)" (stripped) */
};

/* Parse one line of /proc/PID/maps (without or with its trailing '\n').
 * The line is modified in place (the path is cut out and terminated).
 * Returns 0 or -EINVAL. */
int ck_parse_maps_line(char *line, struct ck_maps_entry *e);

struct ck_fdinfo {
    int64_t pos;
    uint32_t flags;                     /* octal "flags:" field */
    uint32_t mnt_id;
    uint64_t ino;
    int has_eventfd;
    uint64_t eventfd_count;             /* "eventfd-count:" (hex) */
    int32_t scm_fds;                    /* "scm_fds:" of a unix socket (descriptors
                                           in flight in its queue), -1 if absent */
};

/* Parse the text of /proc/PID/fdinfo/N (len bytes, need not be terminated).
 * Unknown lines are ignored. Returns 0, or -EINVAL if pos or flags is
 * missing. */
int ck_parse_fdinfo(const char *text, size_t len, struct ck_fdinfo *fi);

/* Parse /proc/PID/stat text into the address-space fields used by
 * PR_SET_MM_MAP: startcode(26) endcode(27) startstack(28) and
 * start_data(45) end_data(46) start_brk(47) arg_start(48) arg_end(49)
 * env_start(50) env_end(51) (1-based field numbers of proc(5); the comm
 * field may contain spaces and parentheses: parse from the last ')').
 * Fills *mm except mm->brk. Returns 0 or -EINVAL. */
struct ck_mm;
int ck_parse_stat_mm(const char *text, size_t len, struct ck_mm *mm);

/* Small freestanding helpers, exported for the shim and the restorer. */
int ck_parse_hex(const char **p, uint64_t *ret);     /* advances *p */
int ck_parse_dec(const char **p, uint64_t *ret);     /* advances *p */

#endif
