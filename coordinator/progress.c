/* progress.c - the progress line of a long checkpoint or restore.
 *
 * One line on standard error, rewritten in place ("\r", erase to the end
 * of the line), drawn only on a terminal, only without --quiet and only
 * once the work has taken more than a second: short checkpoints, scripts
 * and logs see nothing. It is erased before anything else is printed
 * (ck_msg does so), so messages and --json output never mix with it. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coord.h"

#define SHOW_AFTER_NS 1000000000LL      /* the work took more than this */
#define REDRAW_NS 200000000LL           /* at most five redraws a second */
#define SAMPLES 16                      /* the rate is over the last 16 samples, */
#define SAMPLE_NS 200000000LL           /* one each 200 ms at most: about 3 s */

static struct {
    int on;                             /* enabled: stderr a terminal, no --quiet */
    int shown;                          /* the line is on the screen now */
    const char *what;                   /* "checkpoint", "restore" */
    int64_t start_ns, last_draw_ns;
    struct {                            /* recent reports of work done (a ring) */
        int64_t t;
        uint64_t done;
    } s[SAMPLES];
    int ns, next;
    int fd;
} pg = {.fd = 2};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void ck_progress_start(const char *what, int quiet)
{
    pg.on = !quiet && isatty(STDERR_FILENO);
    pg.shown = 0;
    pg.what = what;
    pg.fd = STDERR_FILENO;
    pg.start_ns = mono_ns();
    pg.last_draw_ns = 0;
    pg.ns = pg.next = 0;
}

int ck_progress_on(void)
{
    return pg.on;
}

void ck_progress_to(int fd)
{
    pg.fd = fd;
}

/* "3 s", "2 min 5 s", "1 h 4 min" */
static void fmt_left(char *buf, size_t len, double s)
{
    long t = (long)(s + 0.5);
    if (t < 60)
        snprintf(buf, len, "%ld s", t);
    else if (t < 3600)
        snprintf(buf, len, "%ld min %ld s", t / 60, t % 60);
    else
        snprintf(buf, len, "%ld h %ld min", t / 3600, t / 60 % 60);
}

void ck_progress_update(uint64_t done, uint64_t total)
{
    if (!pg.on)
        return;
    int64_t now = mono_ns();
    int last = (pg.next + SAMPLES - 1) % SAMPLES;
    if (pg.ns && done < pg.s[last].done)
        pg.ns = pg.next = 0; /* a new stage, counting from 0 again */
    if (!pg.ns || now - pg.s[last].t >= SAMPLE_NS) {
        pg.s[pg.next].t = now;
        pg.s[pg.next].done = done;
        pg.next = (pg.next + 1) % SAMPLES;
        pg.ns += pg.ns < SAMPLES;
    }
    if (now - pg.start_ns < SHOW_AFTER_NS || now - pg.last_draw_ns < REDRAW_NS)
        return;
    pg.last_draw_ns = now;
    if (total && done > total)
        total = done; /* an estimate that was passed (shared memory) */
    char line[160], d[32], t[32], r[32], left[32];
    int n = snprintf(line, sizeof line, "\r%s %s", pg.what, ck_fmt_bytes(d, sizeof d, done));
    if (total)
        n += snprintf(line + n, sizeof line - (size_t)n, " / %s",
                      ck_fmt_bytes(t, sizeof t, total));
    /* the rate of the last seconds of the work (not of the checks before
     * it, nor of a stall long past) */
    int old = (pg.next + SAMPLES - pg.ns) % SAMPLES;
    double secs = (double)(now - pg.s[old].t) / 1e9;
    if (secs >= 0.2 && done > pg.s[old].done) {
        double rate = (double)(done - pg.s[old].done) / secs;
        n += snprintf(line + n, sizeof line - (size_t)n, "  %s/s",
                      ck_fmt_bytes(r, sizeof r, (uint64_t)rate));
        if (total && total > done) {
            fmt_left(left, sizeof left, (double)(total - done) / rate);
            n += snprintf(line + n, sizeof line - (size_t)n, "  %s left", left);
        }
    }
    snprintf(line + n, sizeof line - (size_t)n, "\033[K");
    if (write(pg.fd, line, strlen(line)) > 0)
        pg.shown = 1;
}

void ck_progress_clear(void)
{
    if (!pg.shown)
        return;
    pg.shown = 0;
    static const char erase[] = "\r\033[K";
    if (write(pg.fd, erase, sizeof erase - 1) < 0)
        return;
}

void ck_progress_end(void)
{
    ck_progress_clear();
    pg.on = 0;
}
