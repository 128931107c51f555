/* socket.h - what every kind of socket shares (fds/socket.c): telling
 * families apart, the generic socket options, O_NONBLOCK, shutdown state,
 * dead connections. fds/unix.c (AF_UNIX) and fds/inet.c (TCP/UDP) build
 * on it; families nobody handles are refused by name here.
 *
 * Capture side functions run in the program while its threads are parked
 * (a signal handler on the shim's manager thread): no malloc, no stdio
 * FILE*, no locks. Restore side functions run in coord. */
#ifndef CKSHIM_FDS_SOCKET_H
#define CKSHIM_FDS_SOCKET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fdkind.h"
#include "image.h"

/* SO_DOMAIN of fd, or -1 if it is not a socket. */
int ck_sock_family(int fd);

/* The same from getsockname, which every family that names its sockets
 * answers with the family, so the name comes with it (TCP and UDP use
 * it): *len is its length, or 0 when the family gives none (then
 * SO_DOMAIN says the family). */
struct sockaddr_storage;
int ck_sock_family_named(int fd, struct sockaddr_storage *ss, socklen_t *len);

/* "unix", "netlink", "packet", "inet6", ... or NULL for an unknown one. */
const char *ck_sock_family_name(int family);

/* "stream", "datagram", "seqpacket", "raw", "other". */
const char *ck_sock_type_name(int type);

/* Fill o from the live socket c->fd of family c->family: type, protocol,
 * the generic options, SO_PEEK_OFF. The shutdown bits and
 * CK_SOCKO_LISTENING are left 0 (the family tells them: sock_diag for
 * AF_UNIX, TCP_INFO for TCP). Never fails: an option the kernel does not
 * report keeps its default. */
struct ck_sock_known {
    int type, sndbuf, rcvbuf;           /* -1: not known */
    int protocol;                       /* -1: not known */
    /* out: the socket's option memory (SO_MEMINFO's SK_MEMINFO_OPTMEM)
     * when the buffer sizes were read that way, else -1. 0 proves that
     * no socket filter is attached (a filter is charged there before it
     * is attached, and uncharged when it is detached or replaced). */
    int optmem;
    /* SO_PEEK_OFF already read (peek_known 1: peek_off is its value) */
    int peek_known, peek_off;
};
/* known: what the family already read of the socket (sock_diag, or a
 * call that proves the type), not asked again; NULL if nothing. */
void ck_sock_capture(const struct ck_fdcap *c, struct ck_sock_known *known, struct ck_sock *o);

/* Peeking at a socket's whole queue from its start, whatever peek offset
 * the program uses: ck_sock_peek_begin sets SO_PEEK_OFF to 0 (old: the
 * program's offset, ck_sock.peek_off; nothing to do if it is 0), and
 * ck_sock_peek_end puts old back once the peeks are done. begin returns
 * 0, or -1 (errno) if the socket has no peek offset. */
int ck_sock_peek_begin(int fd, int old);
void ck_sock_peek_end(int fd, int old);

/* The group of socket options whose values a setsockopt(level, name)
 * may change (0..63; one option alone, or options the kernel ties
 * together: SO_SNDBUF with SO_BUF_LOCK, IP_TOS with SO_PRIORITY,
 * TCP_NODELAY with TCP_CORK, ...), or -1 for an option that ckshim does
 * not save nor knows (which may change anything). The shim marks the
 * groups a program sets (preload/socktrack.c); a capture asks a known
 * socket only the options of those groups (ck_fdcap.sock_set). */
int ck_sockopt_group(int level, int name);

/* Whether a capture asks c's socket option (level, name): always for a
 * socket the shim does not know, else only if the program set its group. */
int ck_sockopt_asked(const struct ck_fdcap *c, int level, int name);

/* Make a socket of o's family, type and protocol (close-on-exec; coord
 * puts it at its number). Returns the fd or -1 (errno). */
int ck_sock_new(const struct ck_sock *o);

/* Set on fd the options of o that differ from what fd has now (so an
 * option the program never set stays the kernel's default, e.g. a buffer
 * size the kernel may still tune), the SO_PEEK_OFF and the file status
 * flags of oflags (O_NONBLOCK). Returns 0, or -1 with a message in err
 * naming the option. */
int ck_sock_apply(int fd, const struct ck_sock *o, uint32_t oflags, char *err, size_t errlen);

/* Shut fd down as o->shutdown says (CK_SOCK_SHUT_RD: SHUT_RD, CK_SOCK_SHUT_WR:
 * SHUT_WR). Returns 0 or -1 (errno). */
int ck_sock_shutdown(int fd, uint32_t shut);

/* A connected socket of type (SOCK_STREAM or SOCK_SEQPACKET, AF_UNIX)
 * whose other end is gone, as a connection to a peer that has closed is:
 * the len bytes of data are waiting to be read (for seqpacket, one message
 * per lens[] entry when lens is not NULL), then reads return end of file,
 * writes fail with EPIPE and epoll reports EPOLLHUP. Returns the fd or -1
 * with a message in err. */
int ck_sock_dead(int type, const uint8_t *data, size_t len, const uint32_t *lens, uint32_t nlens,
                 char *err, size_t errlen);

/* The fds/ table entry for sockets of families ckshim cannot restore
 * (netlink, packet, ...): refused at checkpoint, naming fd and family.
 * AF_UNIX, AF_INET and AF_INET6 are left to their own kinds. */
extern const struct ck_fdkind ck_fdkind_socket_other;

#endif
