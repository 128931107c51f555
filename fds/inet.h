/* inet.h - what the shim calls in fds/inet.c besides the kind table. */
#ifndef CK_FDS_INET_H
#define CK_FDS_INET_H

/* checkpoint --kill ends the program: close its connections to itself
 * with a reset (no TIME_WAIT on their ports) */
void ck_inet_reset_pairs(void);

struct ck_fdcap_set;
/* coord, a tree's merged set of sockets (fd numbers unique in the set):
 * connections and accept queues paired again across the set. 0, or
 * negative with s->err set (bytes that cannot be carried over). */
int ck_inet_relink(struct ck_fdcap_set *s);

#endif
