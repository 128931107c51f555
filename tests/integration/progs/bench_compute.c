/* bench_compute - the compute loop of tests/bench.sh's supervisor part (not
 * a correctness test; test_progs.sh skips bench_* programs).
 *
 *   bench_compute [--size MIB] [--hot MIB] [--seconds S]
 *
 * Maps SIZE MiB (default 1024) of private anonymous memory and fills it
 * (a program's data), then for S seconds (default 40) runs a loop that
 * reads the whole of it now and then and keeps rewriting a HOT MiB
 * working set (default 64): every round mixes one cache line of every
 * page of the working set into a running hash and writes it back, and
 * every 16th round also reads one word per page of all SIZE MiB. At the
 * end it prints "rounds=N seconds=S rate=R" (rounds per second of wall
 * time, so that time the process spends paused or slowed by
 * checkpoints counts against it) and "cpu=C cpurate=R2" (its own CPU
 * seconds in the loop, user and system, and rounds per CPU second: what
 * checkpoints cost it in copy-on-write faults and caches, whatever else
 * runs on the machine).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t mib = 1024, hot = 64;
    double seconds = 40;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc)
            mib = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--hot") && i + 1 < argc)
            hot = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--size MIB] [--hot MIB] [--seconds S]\n", argv[0]);
            return 2;
        }
    }
    if (mib < 1 || hot < 1 || hot > mib || seconds <= 0) {
        fprintf(stderr, "bench_compute: need 1 <= --hot <= --size and --seconds > 0\n");
        return 2;
    }
    size_t len = mib << 20, hlen = hot << 20;
    uint64_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        perror("bench_compute: mmap");
        return 1;
    }
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < len / 8; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        mem[i] = x;
    }
    printf("READY\n");
    fflush(stdout);

    uint64_t h = 0, rounds = 0;
    double c0 = cpu_now(), t0 = now(), t = t0;
    while (t - t0 < seconds) {
        for (size_t off = 0; off < hlen / 8; off += 512) {
            for (size_t k = 0; k < 8; k++)
                h = (h ^ mem[off + k]) * 0x100000001b3ULL;
            mem[off] = h;
        }
        if (rounds % 16 == 0)
            for (size_t off = hlen / 8; off < len / 8; off += 512)
                h += mem[off];
        rounds++;
        if (rounds % 8 == 0)
            t = now();
    }
    t = now();
    double c = cpu_now() - c0;
    printf("rounds=%llu seconds=%.3f rate=%.2f cpu=%.3f cpurate=%.2f hash=%llx\n",
           (unsigned long long)rounds, t - t0, (double)rounds / (t - t0), c,
           c > 0 ? (double)rounds / c : 0.0, (unsigned long long)h);
    return 0;
}
