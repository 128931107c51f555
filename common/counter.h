/* counter.h - the monotonic counter that stamps images (rollback protection).
 *
 * Checkpoint: ck_counter_incr_fetch() and store the value in the image
 * header. Restore: ck_counter_fetch_incr_if() atomically fetches the value
 * and increments it only if it equals the header's stamp; the restore is
 * refused unless it did. So only the newest image restores, and only once,
 * and a refused replay of an old image does not use up the newest one.
 *
 * Backends, chosen by a URL (--counter URL or $CKSHIM_COUNTER):
 *   file:PATH                     a file holding the counters of all app ids,
 *                                 flock()ed and fsync()ed (the default:
 *                                 file:$XDG_STATE_HOME/ckshim/counters, else
 *                                 file:$HOME/.local/state/ckshim/counters)
 *   redis://HOST:PORT[/PREFIX]    INCR on the key PREFIX:ID (default prefix
 *                                 "ckshim:counter"), atomic on the server
 *   none                          no counter: images are marked unstamped
 * Every call is independent (connect, operate, disconnect): coord is short
 * lived and the shim calls it at most once per checkpoint.
 */
#ifndef CKSHIM_COUNTER_H
#define CKSHIM_COUNTER_H

#include <stddef.h>
#include <stdint.h>

enum { CK_COUNTER_FILE = 1, CK_COUNTER_REDIS = 2, CK_COUNTER_NONE = 3 };

struct ck_counter {
    int kind;
    char path[4096];                    /* file */
    char host[256];                     /* redis */
    int port;
    char prefix[128];
    int timeout_ms;                     /* redis connect/command timeout */
};

/* Parse a counter URL (NULL or "" means the default file counter).
 * Returns 0, or -EINVAL with a message in err. */
int ck_counter_parse(const char *url, struct ck_counter *c, char *err, size_t errlen);

/* The URL of the default counter (file:...). Returns 0 or -errno. */
int ck_counter_default_url(char *buf, size_t len);

/* Describe c as a URL-like string for messages ("redis://127.0.0.1:6379"). */
void ck_counter_describe(const struct ck_counter *c, char *buf, size_t len);

/* Atomically add one to the counter of app id and return the new value
 * (first call gives 1). Returns 0 or -errno with a message in err
 * (-ECONNREFUSED, -ETIMEDOUT, -EIO ... when the service is unreachable). */
int ck_counter_incr_fetch(const struct ck_counter *c, const char *id, uint64_t *ret_value,
                          char *err, size_t errlen);

/* Atomically fetch the counter's current value into *ret_value and, only if
 * it equals expect, add one to it. Returns 0 (whether or not it matched:
 * compare *ret_value with expect) or -errno with a message in err. */
int ck_counter_fetch_incr_if(const struct ck_counter *c, const char *id, uint64_t expect,
                             uint64_t *ret_value, char *err, size_t errlen);

/* A program stamped by another counter since this one last counted it
 * (moved here from another host, coord migrate): raise the counter of id
 * to value if it holds less (nothing counts as 0); never lowers it, so an
 * image older than what this counter saw stays stale. *ret_value: the
 * value after. Returns 0 or -errno with a message in err. */
int ck_counter_adopt(const struct ck_counter *c, const char *id, uint64_t value,
                     uint64_t *ret_value, char *err, size_t errlen);

/* Is id a valid app id (1..63 characters of [A-Za-z0-9._:@+-])? Returns 0,
 * or -EINVAL with the reason in err. */
int ck_check_app_id(const char *id, char *err, size_t errlen);

/* How the counter's current value cur relates to an image's stamp:
 * CK_STAMP_CURRENT (cur == stamp: the newest image), CK_STAMP_PENDING
 * (cur == stamp - 1: the image was committed but its checkpoint ended
 * before the counter was advanced; it is the newest image too),
 * CK_STAMP_STALE (cur > stamp) or CK_STAMP_AHEAD (cur < stamp - 1: another
 * counter?). */
enum { CK_STAMP_CURRENT, CK_STAMP_PENDING, CK_STAMP_STALE, CK_STAMP_AHEAD };
int ck_stamp_state(uint64_t stamp, uint64_t cur);

/* Read the current value without changing it (for coord inspect). */
int ck_counter_get(const struct ck_counter *c, const char *id, uint64_t *ret_value, char *err,
                   size_t errlen);

#endif
