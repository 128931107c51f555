/* tree_subreaper_session - children of the tree in sessions whose
 * leaders are gone.
 *
 * A container's init (tini, dumb-init) is a subreaper: a daemon it starts
 * forks, its child calls setsid() and forks the real daemon, and exits.
 * The daemon is then the init's child, in a session (and group) whose
 * leader is gone. clone(CLONE_PARENT) after setsid() makes the same. The
 * root R (a subreaper) builds three:
 *   A  R forks C1; C1 calls setsid(), forks D1 and exits 0; R reaps C1.
 *      D1 is adopted by R, in session and group C1. D1 forks G1, which
 *      stays its child, in D1's session and group.
 *   B  R forks C2; C2 calls setsid() and makes D2 and D2b with
 *      clone(CLONE_PARENT) (R's children), exits 0; R reaps C2. D2b makes
 *      a group of its own in session C2.
 *   C  R forks C3; C3 calls setsid(), makes D3 with clone(CLONE_PARENT)
 *      and exits 7; R does not reap it: D3 is in a session led by a zombie.
 *   E  A second thread of R forks C4; C4 calls setsid(), forks X, X forks
 *      D4 and exits; D4 is adopted by R (its main thread), C4 reaps X and
 *      exits 9, unreaped: D4 is in a session led by a zombie, and comes
 *      before it in the tree (R's threads list their children in turn).
 * Each of D1, G1, D2, D2b, D3 and D4 records its pid, session, group and
 * parent in a shared page. R checks them (the sessions are C1, C2 and C3,
 * the parents R, G1's D1) and says READY. After the go file each checks
 * that its ids and its parent are what it recorded and exits 0 (1 and a
 * message otherwise; D1 also waits for G1, which must exit 0). R checks
 * the ids it sees of its children (living or zombies by then), reaps the zombie C3 (status 7), then D1, D2,
 * D2b and D3 (status 0 each), and must have no child left.
 * The others give up 10 minutes after READY without a go file, and end
 * when R exits (they poll a flag R sets at exit).
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "testlib.h"

enum { D1, G1, D2, D2B, D3, D4, NSLOTS };
static const char *const slot_name[NSLOTS] = {"D1", "G1", "D2", "D2b", "D3", "D4"};

struct slot {
    int started; /* 1 once the ids are written */
    int pid, sid, pgid, ppid;
};

struct shared {
    int quit; /* R failed: the others exit at once */
    struct slot s[NSLOTS];
};

static struct shared *sh;

static void record(int k)
{
    struct slot *s = &sh->s[k];
    s->pid = getpid();
    s->sid = getsid(0);
    s->pgid = getpgrp();
    s->ppid = getppid();
    __atomic_store_n(&s->started, 1, __ATOMIC_SEQ_CST);
}

/* In D1, G1, D2, D2b, D3: wait for the go file, check, exit. */
__attribute__((noreturn)) static void member(int k, pid_t child)
{
    struct slot *s = &sh->s[k];
    test_go_setup();
    time_t give_up = time(NULL) + 600;
    while (!test_go_path || access(test_go_path, F_OK) != 0) {
        if (__atomic_load_n(&sh->quit, __ATOMIC_SEQ_CST) || time(NULL) > give_up)
            _exit(3);
        usleep(20000);
    }
    const char *n = slot_name[k];
    if (getpid() != s->pid || getsid(0) != s->sid || getpgrp() != s->pgid ||
        getppid() != s->ppid) {
        test_msg("%s: ids now pid %d sid %d pgid %d ppid %d, were %d %d %d %d", n, getpid(),
                 getsid(0), getpgrp(), getppid(), s->pid, s->sid, s->pgid, s->ppid);
        _exit(1);
    }
#ifdef RAW_IDS
    /* in a pid namespace of its own the kernel's numbers are the old ones
     * too (the helper that made the session again had its number): from
     * /proc/self/stat, which no wrapper translates (syscall() of getsid
     * would be) */
    long rpg = -1, rsid = -1;
    FILE *f = fopen("/proc/self/stat", "r");
    char line[512] = "";
    if (f) {
        if (!fgets(line, sizeof line, f))
            line[0] = 0;
        fclose(f);
    }
    char *e = strrchr(line, ')');
    if (!e || sscanf(e + 2, "%*c %*d %ld %ld", &rpg, &rsid) != 2 || rsid != s->sid ||
        rpg != s->pgid) {
        test_msg("%s: kernel's session %ld group %ld, were %d %d", n, rsid, rpg, s->sid,
                 s->pgid);
        _exit(1);
    }
#endif
    if (child > 0) {
        int st = 0;
        if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            test_msg("%s: its child %d: status %#x (%s)", n, child, st, strerror(errno));
            _exit(1);
        }
    }
    _exit(0);
}

static int clone_member(void *arg)
{
    int k = (int)(intptr_t)arg;
    if (k == D2B && setpgid(0, 0) < 0) {
        test_msg("D2b: setpgid: %s", strerror(errno));
        _exit(2);
    }
    record(k);
    member(k, 0);
}

static char stacks[3][64 * 1024] __attribute__((aligned(16)));

static pid_t clone_parent(int k, int stack)
{
    return clone(clone_member, stacks[stack] + sizeof stacks[stack], CLONE_PARENT | SIGCHLD,
                 (void *)(intptr_t)k);
}

/* Fork a session maker: setsid, then make(), then exit with code. */
static pid_t maker(int which, int code)
{
    pid_t c = fork();
    if (c != 0)
        return c;
    pid_t r = getppid();
    if (setsid() < 0)
        _exit(2);
    if (which == 1) {
        pid_t d = fork();
        if (d == 0) {
            pid_t g = fork();
            if (g == 0) {
                record(G1);
                member(G1, 0);
            }
            if (g < 0)
                _exit(2);
            /* adopted by R once C1 has exited */
            for (int waited = 0; getppid() != r && waited < 10000; waited++)
                usleep(1000);
            record(D1);
            member(D1, g);
        }
        _exit(d < 0 ? 2 : code);
    }
    if (which == 2) {
        if (clone_parent(D2, 0) < 0 || clone_parent(D2B, 1) < 0)
            _exit(2);
        _exit(code);
    }
    if (which == 3) {
        if (clone_parent(D3, 2) < 0)
            _exit(2);
        _exit(code);
    }
    pid_t x = fork();
    if (x == 0) {
        pid_t d = fork();
        if (d == 0) {
            for (int waited = 0; getppid() != r && waited < 10000; waited++)
                usleep(1000);
            record(D4);
            member(D4, 0);
        }
        _exit(d < 0 ? 2 : 0);
    }
    if (x < 0 || waitpid(x, NULL, 0) != x)
        _exit(2);
    for (int waited = 0; !__atomic_load_n(&sh->s[D4].started, __ATOMIC_SEQ_CST) && waited < 10000;
         waited++)
        usleep(1000);
    _exit(code);
}

static pid_t c4;

static void *second_thread(void *arg)
{
    (void)arg;
    c4 = maker(4, 9);
    for (;;)
        pause();
    return NULL;
}

static void quit(void)
{
    __atomic_store_n(&sh->quit, 1, __ATOMIC_SEQ_CST);
}

static int wait_started(void)
{
    for (int waited = 0; waited < 1000; waited++) {
        int all = 1;
        for (int k = 0; k < NSLOTS; k++)
            all &= __atomic_load_n(&sh->s[k].started, __ATOMIC_SEQ_CST);
        if (all)
            return 0;
        usleep(10000);
    }
    return -1;
}

int main(void)
{
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    check(sh != MAP_FAILED, "mmap: %s", strerror(errno));
    check_sys(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
    atexit(quit); /* (R's exit ends the others: a failed check) */
    pid_t me = getpid();
    /* pids below the sessions' that are free at restore (in a new pid
     * namespace a plain fork takes the lowest free one, which the
     * sessions' numbers must not be by chance) */
    for (int k = 0; k < 3; k++) {
        pid_t b = fork();
        check_sys(b);
        if (b == 0)
            _exit(0);
        check_sys(waitpid(b, NULL, 0));
    }
    pid_t c1 = maker(1, 0), c2 = maker(2, 0), c3 = maker(3, 7);
    check(c1 > 0 && c2 > 0 && c3 > 0, "fork: %s", strerror(errno));
    pthread_t t;
    check(pthread_create(&t, NULL, second_thread, NULL) == 0, "pthread_create");
    int st = 0;
    check(waitpid(c1, &st, 0) == c1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "C1: status %#x", st);
    check(waitpid(c2, &st, 0) == c2 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "C2: status %#x", st);
    if (wait_started() < 0) {
        sh->quit = 1;
        fail("not every member recorded its ids within 10 s");
    }
    /* C3 must have ended (a zombie) before the checkpoint */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    check(waitid(P_PID, (id_t)c3, &si, WEXITED | WNOWAIT) == 0 && si.si_status == 7,
          "C3 did not end with 7: %s", strerror(errno));
    for (int waited = 0; !__atomic_load_n(&c4, __ATOMIC_SEQ_CST) && waited < 1000; waited++)
        usleep(10000);
    memset(&si, 0, sizeof si);
    check(c4 > 0 && waitid(P_PID, (id_t)c4, &si, WEXITED | WNOWAIT) == 0 && si.si_status == 9,
          "C4 did not end with 9: %s", strerror(errno));
    /* (what E is about: D4 is the main thread's child, C4 the other's) */
    char path[64], kids[512] = "", want[16];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", me);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(kids, sizeof kids, f))
            kids[0] = 0;
        fclose(f);
    }
    snprintf(want, sizeof want, "%d ", sh->s[D4].pid);
    check(strstr(kids, want) != NULL, "D4 (%d) is not among the main thread's children: %s",
          sh->s[D4].pid, kids);
    const int want_sid[NSLOTS] = {c1, c1, c2, c2, c3, c4};
    const int want_ppid[NSLOTS] = {me, sh->s[D1].pid, me, me, me, me};
    for (int k = 0; k < NSLOTS; k++) {
        struct slot *s = &sh->s[k];
        if (s->sid != want_sid[k] || s->ppid != want_ppid[k]) {
            sh->quit = 1;
            fail("%s: session %d, parent %d; expected %d and %d", slot_name[k], s->sid,
                 s->ppid, want_sid[k], want_ppid[k]);
        }
    }
    if (sh->s[D1].pgid != c1 || sh->s[G1].pgid != c1 || sh->s[D2].pgid != c2 ||
        sh->s[D2B].pgid != sh->s[D2B].pid) {
        sh->quit = 1;
        fail("groups: D1 %d G1 %d D2 %d D2b %d", sh->s[D1].pgid, sh->s[G1].pgid,
             sh->s[D2].pgid, sh->s[D2B].pgid);
    }
    test_ready();
    test_wait_go();
    for (int k = 0; k < NSLOTS; k++) {
        struct slot *s = &sh->s[k];
        /* (G1 is D1's to reap: it checks itself) */
        if (k != G1 && (getsid(s->pid) != s->sid || getpgid(s->pid) != s->pgid)) {
            sh->quit = 1;
            fail("%s (%d) seen from R: session %d group %d, expected %d %d", slot_name[k],
                 s->pid, getsid(s->pid), getpgid(s->pid), s->sid, s->pgid);
        }
    }
    check(waitpid(c3, &st, 0) == c3 && WIFEXITED(st) && WEXITSTATUS(st) == 7,
          "C3: status %#x", st);
    check(waitpid(c4, &st, 0) == c4 && WIFEXITED(st) && WEXITSTATUS(st) == 9,
          "C4: status %#x", st);
    const int mine[] = {D1, D2, D2B, D3, D4};
    for (int x = 0; x < 5; x++) {
        pid_t p = sh->s[mine[x]].pid;
        st = 0;
        check(waitpid(p, &st, 0) == p, "waitpid %s (%d): %s", slot_name[mine[x]], p,
              strerror(errno));
        check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status %#x", slot_name[mine[x]],
              st);
    }
    check(waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD, "a child is left");
    pass();
    return 0;
}
