/* timerfd.c - timerfd descriptors (CK_FD_TIMERFD).
 *
 * Capture (in the program, threads parked): timerfd_gettime first. For a
 * periodic timer that expired and was not read yet the kernel has not
 * counted the periods since (it counts them on the next read or
 * gettime): gettime does that counting, as a read by the program would,
 * so the `ticks:` fdinfo read afterwards holds every expiration not yet
 * read, and nothing is consumed. Then clockid, settime flags and ticks
 * from fdinfo, and for an absolute timer its deadline on its clock.
 *
 * Restore (coord): timerfd_create on the same clock, timerfd_settime with
 * the same flags: an absolute timer gets its deadline back (the same
 * moment; for the monotonic clocks only on the same boot, else now + what
 * was left), a relative one what was left at the checkpoint (the time the
 * program spent saved does not count). Then the pending expirations with
 * TFD_IOC_SET_TICKS (an ordinary user may call it; it needs a kernel built
 * with CONFIG_CHECKPOINT_RESTORE, which capture checks when there are
 * any). The alarm clocks need CAP_WAKE_ALARM: refused at checkpoint if the
 * user cannot make one now.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "fdkind.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif
#ifndef TFD_TIMER_CANCEL_ON_SET
#define TFD_TIMER_CANCEL_ON_SET (1 << 1)
#endif

static const char *clock_name(int c)
{
    switch (c) {
    case CLOCK_REALTIME: return "CLOCK_REALTIME";
    case CLOCK_MONOTONIC: return "CLOCK_MONOTONIC";
    case CLOCK_BOOTTIME: return "CLOCK_BOOTTIME";
    case CLOCK_REALTIME_ALARM: return "CLOCK_REALTIME_ALARM";
    case CLOCK_BOOTTIME_ALARM: return "CLOCK_BOOTTIME_ALARM";
    default: return "an unknown clock";
    }
}

static int64_t ns_of(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static struct timespec ts_of(int64_t ns)
{
    return (struct timespec){ns / 1000000000LL, ns % 1000000000LL};
}

/* The boot id (/proc/sys/kernel/random/boot_id, 32 hex digits with
 * dashes) as 16 bytes; zeros if unreadable. */
static void boot_id(uint8_t out[16])
{
    char buf[64];
    memset(out, 0, 16);
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = 0;
    int k = 0;
    for (const char *p = buf; *p && k < 32; p++) {
        int v = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
        if (v < 0)
            continue;
        out[k / 2] = (uint8_t)(out[k / 2] << 4 | v);
        k++;
    }
}

/* "key: N" in fdinfo text (base 8 or 10), or -1. */
static long long field(const char *info, const char *key, int base)
{
    const char *p = strstr(info, key);
    if (!p)
        return -1;
    p += strlen(key);
    while (*p == ' ' || *p == '\t')
        p++;
    return strtoll(p, NULL, base);
}

/* Relative timers, noted at capture in the shim's memory (which the image
 * carries) and armed again by the shim right before the restored program
 * runs: coord arms them too, but before the restorer has loaded the
 * memory, which for a large program takes seconds of the time left. */
#define REARM_MAX 64
static struct rearm {
    int32_t fd;
    uint32_t pad;
    int64_t value_ns, interval_ns;
    uint64_t ticks;
} rearm[REARM_MAX];
static uint32_t nrearm;

static void note_rearm(int fd, const struct ck_timerfd *t)
{
    uint32_t i = 0;
    while (i < nrearm && rearm[i].fd != fd)
        i++;
    if (t->value_ns <= 0 || (t->settime_flags & TFD_TIMER_ABSTIME)) {
        if (i < nrearm) /* not (any more) a relative timer */
            rearm[i] = rearm[--nrearm];
        return;
    }
    if (i == nrearm && nrearm == REARM_MAX)
        return; /* coord's arming stands */
    rearm[i] = (struct rearm){.fd = fd, .value_ns = t->value_ns, .interval_ns = t->interval_ns,
                              .ticks = t->ticks};
    if (i == nrearm)
        nrearm++;
}

/* In the restored program, before it runs: the relative timers start
 * counting what they had left now. */
static int timerfd_resumed(struct ck_fdcap_set *s)
{
    for (uint32_t i = 0; i < nrearm; i++) {
        const struct rearm *a = &rearm[i];
        int ours = 0;
        for (uint32_t k = 0; k < s->n && !ours; k++)
            ours = s->fds[k].fd == a->fd && s->fds[k].kind == CK_FD_TIMERFD &&
                   s->fds[k].share_with < 0;
        if (!ours)
            continue;
        struct itimerspec its = {.it_interval = ts_of(a->interval_ns),
                                 .it_value = ts_of(a->value_ns)};
        /* settime clears the pending count: give it back */
        if (timerfd_settime(a->fd, 0, &its, NULL) < 0 ||
            (a->ticks && ioctl(a->fd, TFD_IOC_SET_TICKS, &a->ticks) < 0)) {
            snprintf(s->err, s->errlen, "fd %d: cannot arm the timerfd again: %s", a->fd,
                     strerror(errno));
            return -1;
        }
    }
    nrearm = 0;
    return 0;
}

static int timerfd_capture(struct ck_fdcap *c)
{
    if (strcmp(c->target, "anon_inode:[timerfd]"))
        return 0;
    struct ck_timerfd t;
    memset(&t, 0, sizeof t);
    /* fdinfo between two gettime calls: an expiry in between (the second
     * shows more time left, or none) makes the time and the count
     * disagree, so again */
    struct itimerspec cur, again;
    char path[64], info[1024];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", c->fd);
    for (int tries = 0; tries < 5; tries++) {
        if (timerfd_gettime(c->fd, &cur) < 0) {
            snprintf(c->err, c->errlen, "fd %d is a timerfd whose time cannot be read: %s",
                     c->fd, strerror(errno));
            return -1;
        }
        int ifd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = ifd >= 0 ? read(ifd, info, sizeof info - 1) : -1;
        if (ifd >= 0)
            close(ifd);
        info[n > 0 ? n : 0] = 0;
        if (timerfd_gettime(c->fd, &again) < 0 ||
            (ns_of(&again.it_value) <= ns_of(&cur.it_value) &&
             (ns_of(&again.it_value) || !ns_of(&cur.it_value))))
            break;
    }
    long long clk = field(info, "clockid:", 10), ticks = field(info, "ticks:", 10),
              sflags = field(info, "settime flags:", 8);
    if (clk < 0 || ticks < 0 || sflags < 0) {
        snprintf(c->err, c->errlen, "fd %d is a timerfd whose fdinfo (%s) shows no clockid, "
                 "ticks or settime flags", c->fd, path);
        return -1;
    }
    t.clockid = (int32_t)clk;
    t.settime_flags = (uint32_t)sflags & (TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET);
    t.ticks = (uint64_t)ticks;
    t.value_ns = ns_of(&cur.it_value);
    t.interval_ns = ns_of(&cur.it_interval);
    /* The user must be able to make this clock's timer again. */
    int probe = timerfd_create(t.clockid, TFD_CLOEXEC);
    if (probe < 0) {
        snprintf(c->err, c->errlen, "fd %d is a timerfd on %s, which this user cannot create "
                 "(%s%s); ckshim cannot restore it", c->fd, clock_name(t.clockid),
                 strerror(errno), errno == EPERM ? ": it needs CAP_WAKE_ALARM" : "");
        return -1;
    }
    if (t.ticks) {
        uint64_t zero = 0;
        int r = ioctl(probe, TFD_IOC_SET_TICKS, &zero); /* EINVAL: the ioctl exists */
        if (r == 0 || errno != EINVAL) {
            close(probe);
            snprintf(c->err, c->errlen, "fd %d is a timerfd with %llu expirations not yet read, "
                     "which this kernel cannot set again (TFD_IOC_SET_TICKS: %s)", c->fd,
                     (unsigned long long)t.ticks, strerror(errno));
            return -1;
        }
    }
    close(probe);
    if (t.value_ns) {
        struct timespec now;
        clock_gettime(t.clockid, &now);
        t.deadline_ns = ns_of(&now) + t.value_ns;
    }
    boot_id(t.boot_id);
    c->f->kind = CK_FD_TIMERFD;
    c->f->aux = t.ticks;
    if (c->state(c, &t, sizeof t) < 0)
        return -1;
    note_rearm(c->fd, &t);
    return 1;
}

/* Before anything changes: can this user make a timer on the clock (the
 * alarm clocks need CAP_WAKE_ALARM, which the program may have had)? */
static int timerfd_check(struct ck_fdrest *r)
{
    const struct ck_timerfd *t = r->state;
    if (!t || r->state_len < sizeof *t) {
        snprintf(r->err, r->errlen, "fd %d: timerfd without its state in the image", r->f->fd);
        return -1;
    }
    int fd = timerfd_create(t->clockid, TFD_CLOEXEC);
    if (fd < 0) {
        snprintf(r->err, r->errlen, "fd %d: cannot create a timerfd on %s: %s%s", r->f->fd,
                 clock_name(t->clockid), strerror(errno),
                 errno == EPERM ? " (it needs CAP_WAKE_ALARM)" : "");
        return -1;
    }
    close(fd);
    return 0;
}

static int timerfd_restore(struct ck_fdrest *r)
{
    const struct ck_timerfd *t = r->state;
    if (!t || r->state_len < sizeof *t) {
        snprintf(r->err, r->errlen, "fd %d: timerfd without its state in the image", r->f->fd);
        return -1;
    }
    /* no TFD_CLOEXEC: it must live through the exec of the restorer; the
     * shim sets the descriptor flags after restore */
    int fd = timerfd_create(t->clockid, (r->f->oflags & O_NONBLOCK) ? TFD_NONBLOCK : 0);
    if (fd < 0) {
        snprintf(r->err, r->errlen, "fd %d: cannot create a timerfd on %s: %s", r->f->fd,
                 clock_name(t->clockid), strerror(errno));
        return -1;
    }
    struct itimerspec its = {.it_interval = ts_of(t->interval_ns), .it_value = ts_of(0)};
    uint64_t ticks = t->ticks;
    if (t->value_ns && (t->settime_flags & TFD_TIMER_ABSTIME)) {
        uint8_t id[16];
        struct timespec ts;
        boot_id(id);
        clock_gettime(t->clockid, &ts);
        int64_t now = ns_of(&ts), when = t->deadline_ns;
        if (t->clockid != CLOCK_REALTIME && t->clockid != CLOCK_REALTIME_ALARM &&
            memcmp(id, t->boot_id, 16))
            when = now + t->value_ns; /* another boot: the monotonic clocks started again */
        /* Expiries passed while the program was saved are counted here,
         * and the timer is armed at its next one: armed in the past it
         * would fire at once and might do so before TFD_IOC_SET_TICKS
         * below, which would then overwrite that expiration. */
        if (when <= now && t->interval_ns > 0) {
            int64_t k = (now - when) / t->interval_ns + 1;
            ticks += (uint64_t)k;
            when += k * t->interval_ns;
        } else if (when <= now) {
            ticks++;
            when = 0;
        }
        its.it_value = ts_of(when);
    } else if (t->value_ns) {
        its.it_value = ts_of(t->value_ns);
    }
    /* with value 0 this only records the flags (fdinfo shows them) */
    if (timerfd_settime(fd, (int)t->settime_flags, &its, NULL) < 0) {
        snprintf(r->err, r->errlen, "fd %d: cannot arm the timerfd again: %s", r->f->fd,
                 strerror(errno));
        close(fd);
        return -1;
    }
    if (ticks && ioctl(fd, TFD_IOC_SET_TICKS, &ticks) < 0) {
        snprintf(r->err, r->errlen, "fd %d: cannot give the timerfd its %llu pending "
                 "expirations (TFD_IOC_SET_TICKS): %s", r->f->fd,
                 (unsigned long long)ticks, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void timerfd_describe(const struct ck_fd *f, const void *state, size_t len, char *out,
                             size_t outlen)
{
    (void)f;
    const struct ck_timerfd *t = state;
    if (!t || len < sizeof *t) {
        snprintf(out, outlen, "timerfd (no state)");
        return;
    }
    if (!t->value_ns) {
        snprintf(out, outlen, "timerfd %s, disarmed, %llu pending", clock_name(t->clockid),
                 (unsigned long long)t->ticks);
        return;
    }
    char every[48] = "";
    if (t->interval_ns)
        snprintf(every, sizeof every, ", every %.3f s", t->interval_ns / 1e9);
    snprintf(out, outlen, "timerfd %s%s, %.3f s left%s, %llu pending", clock_name(t->clockid),
             (t->settime_flags & TFD_TIMER_ABSTIME) ? " absolute" : "", t->value_ns / 1e9, every,
             (unsigned long long)t->ticks);
}

const struct ck_fdkind ck_fdkind_timerfd = {
    .kind = CK_FD_TIMERFD,
    .name = "timerfd",
    .capture = timerfd_capture,
    .check = timerfd_check,
    .restore = timerfd_restore,
    .resumed = timerfd_resumed,
    .describe = timerfd_describe,
};
