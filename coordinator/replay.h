/* replay.h - coord run --record-net: the journals of received bytes, set
 * aside before a restore and replayed after it (replay.c). */
#ifndef CKSHIM_REPLAY_H
#define CKSHIM_REPLAY_H

#include <stdint.h>

struct ck_netrec_stats {
    unsigned long long conns, records, bytes;
    unsigned lost;   /* connections that could not be made again */
    unsigned full;   /* journals that reached their bound */
    unsigned torn;   /* journals that end in a record cut short */
    unsigned ended;  /* connections the program closed after a replayed read */
};

/* Before restoring the image with this stamp: the journals at least as
 * new move into DIR/replay-<stamp>/ (after any already there from an
 * interrupted replay of the same image), older ones are removed. 0 or -1
 * (said why). */
int ck_netrec_prepare(const char *dir, uint64_t stamp);

/* After that restore: feed DIR/replay-<stamp>/ to the program on new
 * connections. 0, or -1 when the program stopped taking them. */
int ck_netrec_replay(const char *dir, uint64_t stamp, struct ck_netrec_stats *st);

/* A checkpoint with this stamp is committed: older journals and every
 * replay set-aside are no longer needed. stamp UINT64_MAX: remove all. */
void ck_netrec_committed(const char *dir, uint64_t stamp);

#endif
