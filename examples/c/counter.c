/* counter - prints an incrementing counter every half second, forever.
 *
 *   counter [START]
 *
 * No checkpoint code of its own: run it under ckshim
 * (build/coord run -- build/examples/counter 100), checkpoint it with
 * `coord checkpoint PID -o counter.ckpt --kill`, restore it with
 * `coord restore counter.ckpt`, and it goes on counting from where it was.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = 0;

    if (argc > 2 || (argc == 2 && (argv[1][0] == '-' && argv[1][1] != '\0' &&
                                   (argv[1][1] < '0' || argv[1][1] > '9')))) {
        fprintf(stderr, "usage: %s [START]\n", argv[0]);
        return 2;
    }
    if (argc == 2) {
        char *end;
        errno = 0;
        n = strtol(argv[1], &end, 10);
        if (errno || *end || end == argv[1]) {
            fprintf(stderr, "counter: START must be a number, not '%s'\n", argv[1]);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) {
        struct timespec ts = { 0, 500000000 };
        printf("%ld\n", n++);
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
            ;
    }
}
