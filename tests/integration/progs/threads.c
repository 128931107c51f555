/* threads - running threads keep their stacks, TLS, names and sync state.
 *
 * 8 workers each count in a __thread variable (and in a stack local kept in
 * lockstep), keep a 4 KiB patterned buffer on their own stack and have a
 * name (pthread_setname_np). A producer and a consumer pass a sequence of
 * numbers through a small queue guarded by a mutex and two condition
 * variables, so at the checkpoint they are usually blocked in
 * pthread_cond_wait or hold the mutex. After restore: each worker checks its
 * own TLS, stack buffer, pthread_self() and name; the consumer must have
 * seen every number in order; new threads can be created and joined, and
 * start with fresh TLS.
 */
#include "testlib.h"

#define NWORKERS 8
#define QSIZE 4

static __thread unsigned long tls_counter;
static __thread int tls_index = -1;

static volatile int go;
static pthread_t workers[NWORKERS];

static void *worker(void *arg)
{
    int idx = (int)(intptr_t)arg;
    unsigned char buf[4096];
    unsigned long mine = 0;
    char name[16], got[16];
    pthread_t self = pthread_self();

    tls_index = idx;
    test_fill(buf, sizeof(buf), 500 + idx);
    snprintf(name, sizeof(name), "worker%d", idx);
    pthread_setname_np(self, name);

    while (!go) {
        tls_counter++;
        mine++;
        usleep(1000 + idx * 100);
    }

    check(tls_index == idx, "worker %d: TLS index is %d", idx, tls_index);
    check(tls_counter == mine, "worker %d: TLS counter %lu, stack counter %lu",
          idx, tls_counter, mine);
    check(mine > 0, "worker %d never ran", idx);
    long bad = test_check_fill(buf, sizeof(buf), 500 + idx);
    check(bad < 0, "worker %d: stack buffer differs at %ld", idx, bad);
    check(pthread_equal(self, pthread_self()), "worker %d: pthread_self changed", idx);
    check(pthread_equal(self, workers[idx]), "worker %d: pthread_t differs", idx);
    check(pthread_getname_np(self, got, sizeof(got)) == 0, "worker %d: getname", idx);
    check(strcmp(got, name) == 0, "worker %d: name is '%s', expected '%s'", idx, got, name);
    return (void *)(uintptr_t)(mine + 1);
}

/* The producer/consumer queue. */
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static long queue[QSIZE];
static int qhead, qcount;
static long produced, consumed;

static void q_put(long v)
{
    pthread_mutex_lock(&qlock);
    while (qcount == QSIZE)
        pthread_cond_wait(&not_full, &qlock);
    queue[(qhead + qcount) % QSIZE] = v;
    qcount++;
    pthread_cond_signal(&not_empty);
    pthread_mutex_unlock(&qlock);
}

static long q_get(void)
{
    long v;
    pthread_mutex_lock(&qlock);
    while (qcount == 0)
        pthread_cond_wait(&not_empty, &qlock);
    v = queue[qhead];
    qhead = (qhead + 1) % QSIZE;
    qcount--;
    pthread_cond_signal(&not_full);
    pthread_mutex_unlock(&qlock);
    return v;
}

static void *producer(void *arg)
{
    long n = 0;
    while (!go) {
        q_put(n++);
        if (n % 16 == 0)
            usleep(2000);
    }
    produced = n;
    q_put(-1);
    return NULL;
}

static void *consumer(void *arg)
{
    long expect = 0, v;
    while ((v = q_get()) != -1) {
        check(v == expect, "consumer got %ld, expected %ld", v, expect);
        expect++;
        if (expect % 5 == 0)
            usleep(1500); /* let the queue fill up: the producer waits too */
    }
    consumed = expect;
    return NULL;
}

static void *fresh(void *arg)
{
    check(tls_counter == 0 && tls_index == -1, "new thread has stale TLS");
    tls_counter = (uintptr_t)arg;
    usleep(1000);
    return (void *)(uintptr_t)(tls_counter * 2);
}

int main(void)
{
    pthread_t prod, cons;

    for (int i = 0; i < NWORKERS; i++)
        check(pthread_create(&workers[i], NULL, worker, (void *)(intptr_t)i) == 0,
              "pthread_create worker %d", i);
    check(pthread_create(&cons, NULL, consumer, NULL) == 0, "create consumer");
    check(pthread_create(&prod, NULL, producer, NULL) == 0, "create producer");
    tls_index = 99;
    usleep(50000);

    test_ready();
    test_wait_go();
    go = 1;

    for (int i = 0; i < NWORKERS; i++) {
        void *ret;
        check(pthread_join(workers[i], &ret) == 0, "join worker %d", i);
        check((uintptr_t)ret > 1, "worker %d returned %p", i, ret);
    }
    check(pthread_join(prod, NULL) == 0, "join producer");
    check(pthread_join(cons, NULL) == 0, "join consumer");
    check(produced > 0 && produced == consumed, "produced %ld, consumed %ld",
          produced, consumed);
    check(tls_index == 99, "main thread TLS is %d", tls_index);

    /* threads can still be created and joined, and get fresh TLS */
    for (int round = 0; round < 3; round++) {
        pthread_t t[6];
        for (int i = 0; i < 6; i++)
            check(pthread_create(&t[i], NULL, fresh, (void *)(uintptr_t)(i + 1)) == 0,
                  "pthread_create after restore (round %d, thread %d)", round, i);
        for (int i = 0; i < 6; i++) {
            void *ret;
            check(pthread_join(t[i], &ret) == 0, "join new thread %d", i);
            check((uintptr_t)ret == (uintptr_t)(i + 1) * 2,
                  "new thread %d returned %p", i, ret);
        }
    }

    /* the queue and its mutex still work */
    pthread_mutex_lock(&qlock);
    check(qcount == 0, "queue not empty at the end (%d)", qcount);
    pthread_mutex_unlock(&qlock);
    pass();
}
