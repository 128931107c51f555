/* hook_client.c - a program that helps ckshim: a TCP client that lets go of
 * its connection before a checkpoint and dials again afterwards, so that
 * it never sees a dead connection.
 *
 *   hook_client HOST PORT      send "ping N" to an echo server every 50 ms
 *                              and check the answer, for ever
 *
 * A connection to a server outside the checkpoint cannot be carried over
 * without kernel help; restored as is it would be dead. With the hooks of
 * ckshim.h the program closes it in its before-checkpoint hook and dials
 * again in its after-checkpoint hook (the program went on) and its
 * after-restore hook (it was restored, maybe on another day). The hooks
 * run on the shim's thread while the program's own threads run, so the
 * connection is shared under a mutex: a hook waits for the round trip in
 * progress to finish.
 *
 * Without the shim ckshim_try_register_hook answers -1 (ENOSYS) and the
 * program runs all the same. Prints "connected" for every dial, "echo N"
 * every 20 answers; any error ends it with "error: ..." and exit 1.
 *
 * Build: cc -O2 -Wall -o hook_client hook_client.c (make builds it as
 * build/examples/hook_client). */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../preload/ckshim.h"

static const char *host, *port;
static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static int conn = -1;                   /* -1 while checkpointing */
static int checkpointing;               /* between the before- and the after-hook */

static void die(const char *what)
{
    dprintf(1, "error: %s\n", what);
    exit(1);
}

/* Connect to host:port. Returns the socket or -1. */
static int dial(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai, *a;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    int fd = -1;
    for (a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        int one = 1;
        struct timeval tv = {5, 0}; /* a server that stops answering is an error */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        dprintf(1, "connected\n");
    }
    return fd;
}

/* The hook: one function for the three events. */
static int on_checkpoint(int event, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&conn_lock);
    if (event == CKSHIM_EVENT_BEFORE_CHECKPOINT) {
        /* Let go of the connection: nothing of it goes into the image. */
        if (conn >= 0)
            close(conn);
        conn = -1;
        checkpointing = 1;
    } else {
        checkpointing = 0;
        /* After the checkpoint (we went on) or after a restore: dial
         * again. A server that is not there yet is tried again by the
         * main loop. */
        if (conn < 0)
            conn = dial();
    }
    pthread_mutex_unlock(&conn_lock);
    return 0; /* 0: the checkpoint may go on */
}

/* One round trip: "ping N\n" out, the same line back. */
static void round_trip(int fd, unsigned long n)
{
    char out[64], in[64];
    int len = snprintf(out, sizeof out, "ping %lu\n", n);
    if (send(fd, out, (size_t)len, MSG_NOSIGNAL) != len)
        die("send failed (dead connection)");
    int got = 0;
    while (got < len) {
        ssize_t r = recv(fd, in + got, (size_t)(len - got), 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            die(r == 0 ? "the server closed the connection" : "recv failed (dead connection)");
        got += (int)r;
    }
    if (memcmp(in, out, (size_t)len) != 0)
        die("the echo does not match");
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: hook_client HOST PORT\n");
        return 2;
    }
    host = argv[1];
    port = argv[2];
    conn = dial();
    if (conn < 0)
        die("cannot connect");
    if (ckshim_try_register_hook(on_checkpoint, NULL) < 0)
        dprintf(1, "no hooks (%s): running without the shim\n", strerror(errno));
    for (unsigned long n = 1;; n++) {
        pthread_mutex_lock(&conn_lock);
        if (conn < 0 && !checkpointing)
            conn = dial(); /* an after-hook found no server: try again */
        if (conn >= 0)
            round_trip(conn, n);
        pthread_mutex_unlock(&conn_lock);
        if (n % 20 == 0)
            dprintf(1, "echo %lu\n", n);
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}
