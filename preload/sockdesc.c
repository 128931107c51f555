/* sockdesc.c - describe a socket for a refusal message: what kind it is,
 * where it is bound or connected, and who is at the other end, so that
 * "fd 7 is a socket" becomes something a user can act on. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "shim.h"

static const char *type_name(int type)
{
    switch (type) {
    case SOCK_STREAM:
        return "stream";
    case SOCK_DGRAM:
        return "datagram";
    case SOCK_SEQPACKET:
        return "seqpacket";
    case SOCK_RAW:
        return "raw";
    default:
        return "other";
    }
}

/* An address as text ("127.0.0.1:8080", "[::1]:53", "/run/x.sock",
 * "@abstract", "unnamed"). */
static void addr_text(const struct sockaddr_storage *ss, socklen_t len, char *out, size_t olen)
{
    char ip[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(out, olen, "%s:%u", ip, ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(out, olen, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else if (ss->ss_family == AF_UNIX) {
        const struct sockaddr_un *a = (const struct sockaddr_un *)ss;
        size_t n = len > offsetof(struct sockaddr_un, sun_path)
                       ? len - offsetof(struct sockaddr_un, sun_path)
                       : 0;
        if (n == 0)
            snprintf(out, olen, "unnamed");
        else if (a->sun_path[0] == '\0')
            snprintf(out, olen, "@%.*s", (int)(n - 1), a->sun_path + 1);
        else
            snprintf(out, olen, "%.*s", (int)strnlen(a->sun_path, n), a->sun_path);
    } else {
        snprintf(out, olen, "?");
    }
}

void sockdesc(int fd, char *out, size_t olen)
{
    int domain = -1, type = -1, listening = 0;
    socklen_t l = sizeof domain;
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l);
    l = sizeof type;
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l);
    l = sizeof listening;
    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l);
    struct sockaddr_storage me, peer;
    socklen_t ml = sizeof me, pl = sizeof peer;
    memset(&me, 0, sizeof me);
    memset(&peer, 0, sizeof peer);
    int named = getsockname(fd, (struct sockaddr *)&me, &ml) == 0;
    int connected = getpeername(fd, (struct sockaddr *)&peer, &pl) == 0;
    char a[160] = "", b[160] = "";
    if (named)
        addr_text(&me, ml, a, sizeof a);
    if (connected)
        addr_text(&peer, pl, b, sizeof b);

    if (domain == AF_UNIX) {
        struct ucred cr;
        socklen_t cl = sizeof cr;
        int have_cred = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 && cr.pid > 0;
        if (listening) {
            snprintf(out, olen, "a UNIX %s socket listening on %s", type_name(type), a);
        } else if (connected && have_cred && cr.pid == shim_real_getpid()) {
            snprintf(out, olen,
                     "one end of a UNIX %s socket pair inside this process (an internal "
                     "wake-up channel, such as asyncio's self-pipe or a worker pool's)",
                     type_name(type));
        } else if (connected && have_cred) {
            char comm[64] = "?", p[64];
            snprintf(p, sizeof p, "/proc/%d/comm", (int)cr.pid);
            if (shim_read_file(p, comm, sizeof comm) > 0)
                comm[strcspn(comm, "\n")] = 0;
            snprintf(out, olen, "a UNIX %s socket connected to %s (pid %d, %s)",
                     type_name(type), strcmp(b, "unnamed") ? b : "a peer", (int)cr.pid, comm);
        } else {
            snprintf(out, olen, "a UNIX %s socket (%s%s%s)", type_name(type), a,
                     connected ? ", connected to " : "", connected ? b : "");
        }
        return;
    }
    if (domain == AF_INET || domain == AF_INET6) {
        const char *proto = type == SOCK_STREAM ? "TCP" : type == SOCK_DGRAM ? "UDP" : "IP";
        if (listening)
            snprintf(out, olen, "a %s socket listening on %s", proto, a);
        else if (connected)
            snprintf(out, olen, "a %s connection from %s to %s", proto, a, b);
        else
            snprintf(out, olen, "a %s socket bound to %s", proto, named ? a : "nothing");
        return;
    }
    if (domain == AF_NETLINK)
        snprintf(out, olen, "a netlink socket");
    else if (domain == AF_PACKET)
        snprintf(out, olen, "a packet socket");
    else
        snprintf(out, olen, "a socket of address family %d", domain);
}
