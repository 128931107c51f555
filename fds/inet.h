/* inet.h - what the shim calls in fds/inet.c besides the kind table. */
#ifndef CK_FDS_INET_H
#define CK_FDS_INET_H

/* checkpoint --kill ends the program: close its connections to itself
 * with a reset (no TIME_WAIT on their ports) */
void ck_inet_reset_pairs(void);

#endif
