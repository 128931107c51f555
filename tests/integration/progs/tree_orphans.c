/* tree_orphans - orphans of a process tree, found through a shared page.
 *
 * An orphan's parent has exited, so the kernel gave it to init or to a
 * subreaper outside the tree: it is no longer a descendant of the root.
 * What ties it to the tree is a MAP_SHARED|MAP_ANONYMOUS page the root
 * mapped before forking anything. The root R builds three of them:
 *   A  R forks C1, C1 forks O1 and exits 0, R reaps C1: O1 is detached
 *      in R's session and R's group. O1 forks G1, which stays its child.
 *   B  R forks C2, C2 calls setsid(), forks O2 and O2b and exits 0, R
 *      reaps C2: both are in session and group C2, whose leader is gone
 *      (one helper makes it again at restore, and forks both).
 *   C  R forks C3, C3 calls setsid(), forks O3 and exits 5; R does not
 *      reap C3: O3 is in session C3, led by a zombie.
 * O1, G1, O2, O2b and O3 record getpid(), getsid(0) and getpgrp() (O2 and O3
 * also their creator's pid, the session they expect) in the page. R waits
 * for the records, checks the sessions and groups, checks that O1, O2 and
 * O3 were reparented (their parent is neither R nor their creator) and
 * that G1's parent is O1, and that C3 is a zombie. READY.
 * After the go file each of the five checks that its pid, session and
 * group are what it recorded, waits (5 s at most) for a token R writes
 * into the page after the go file (the page is still shared with R) and
 * writes its verdict and reason into its slot; O1 also waits for G1,
 * whose exit status must be 0. R waits for the five verdicts, then reaps
 * the zombie C3 (exit status 5) and has no child left.
 * The orphans never outlive the test by much: they give up 10 s after the
 * go file, after 10 minutes without one, or when R fails (sh->quit).
 */
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "testlib.h"

enum { O1, G1, O2, O3, O2B, NSLOTS };
static const char *const slot_name[NSLOTS] = {"O1", "G1", "O2", "O3", "O2b"};

enum { V_NONE, V_OK, V_BAD };

#define TOKEN (0x5ca1ab1eU + 1) /* generation 1 */

/* One per process; the int flags are read and written with __atomic
 * builtins (plain atomics work on a MAP_SHARED page across processes). */
struct slot {
    int started;    /* 1 once pid..expect_sid are written */
    int pid, sid, pgid;
    int expect_sid; /* O2, O3: their creator's pid; 0 otherwise */
    int verdict;    /* V_OK or V_BAD once why is written */
    char why[120];
};

struct shared {
    unsigned token; /* TOKEN, written by R after the go file */
    int quit;       /* R failed: the others exit at once */
    struct slot s[NSLOTS];
};

static struct shared *sh;
static const char *go_path;

/* ---- the orphans' side (O1, G1, O2, O3, O2b) ---- */

/* Not test_go_reached(): its deadline calls fail(), and a FAIL line from
 * an orphan in the shared log could be taken for the test's verdict. The
 * orphans speak only through the page. */
static int go_there(void)
{
    return !go_path || access(go_path, F_OK) == 0;
}

static int quit_asked(void)
{
    return __atomic_load_n(&sh->quit, __ATOMIC_ACQUIRE);
}

__attribute__((format(printf, 3, 4)))
static void bad(char *why, size_t len, const char *fmt, ...)
{
    if (why[0])
        return; /* the first reason is the one that counts */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
}

__attribute__((noreturn))
static void orphan(int i, pid_t expect_sid)
{
    struct slot *s = &sh->s[i];
    pid_t pid = getpid(), sid = getsid(0), pgid = getpgrp();
    char why[sizeof s->why] = "";

    s->pid = pid;
    s->sid = sid;
    s->pgid = pgid;
    s->expect_sid = expect_sid;
    __atomic_store_n(&s->started, 1, __ATOMIC_RELEASE);

    pid_t g = 0;
    if (i == O1) {
        /* a normal child of the orphan */
        g = fork();
        if (g == 0)
            orphan(G1, 0);
        if (g < 0) {
            bad(why, sizeof why, "fork G1: %s", strerror(errno));
            memcpy(s->why, why, sizeof why); /* for R's message before READY */
        }
    }

    /* poll the page (R may have failed) and the go file every 5 ms */
    time_t give_up = time(NULL) + 600;
    while (!go_there()) {
        if (quit_asked() || time(NULL) > give_up) {
            if (g > 0)
                kill(g, SIGKILL);
            _exit(3);
        }
        test_sleep_ms(5);
    }
    int64_t go_at = test_now_ns();

    if (getpid() != pid)
        bad(why, sizeof why, "getpid() %d, was %d", getpid(), pid);
    if (getsid(0) != sid)
        bad(why, sizeof why, "getsid(0) %d, was %d", getsid(0), sid);
    if (getpgrp() != pgid)
        bad(why, sizeof why, "getpgrp() %d, was %d", getpgrp(), pgid);
    if (expect_sid && getsid(0) != expect_sid)
        bad(why, sizeof why, "getsid(0) %d, not its creator %d", getsid(0), expect_sid);

    /* the token proves the page is still the one R writes to */
    while (__atomic_load_n(&sh->token, __ATOMIC_ACQUIRE) != TOKEN &&
           test_now_ns() < go_at + 5000000000LL && !quit_asked())
        test_sleep_ms(5);
    unsigned tok = __atomic_load_n(&sh->token, __ATOMIC_ACQUIRE);
    if (tok != TOKEN)
        bad(why, sizeof why, "token %#x after 5 s, not %#x (page not shared with R?)", tok,
            TOKEN);

    if (g > 0) {
        /* G1 is done within 5 s of the go file; give up after 10 */
        int st = 0;
        pid_t r;
        while ((r = waitpid(g, &st, WNOHANG)) == 0 && test_now_ns() < go_at + 10000000000LL)
            test_sleep_ms(5);
        if (r == 0) {
            kill(g, SIGKILL);
            waitpid(g, NULL, 0);
            bad(why, sizeof why, "G1 (%d) did not exit", g);
        } else if (r != g) {
            bad(why, sizeof why, "waitpid(G1 %d) = %d: %s", g, r, strerror(errno));
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            bad(why, sizeof why, "G1 (%d) ended with status %#x", g, st);
        }
    }

    memcpy(s->why, why, sizeof why);
    __atomic_store_n(&s->verdict, why[0] ? V_BAD : V_OK, __ATOMIC_RELEASE);
    _exit(why[0] ? 1 : 0);
}

/* ---- the root's side ---- */

/* fail(), telling the orphans to exit first (they are not R's children:
 * nothing else would end them before their own timeouts). */
#define rcheck(cond, ...)                                                      \
    do {                                                                       \
        if (!(cond)) {                                                         \
            __atomic_store_n(&sh->quit, 1, __ATOMIC_RELEASE);                  \
            fail(__VA_ARGS__);                                                 \
        }                                                                      \
    } while (0)

/* State, parent, group and session of pid from /proc/PID/stat. */
static int proc_stat(pid_t pid, char *state, int *ppid, int *pgrp, int *sid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the name may hold spaces and ')' */
    if (!p || sscanf(p + 1, " %c %d %d %d", state, ppid, pgrp, sid) != 4)
        return -1;
    return 0;
}

/* Fork a creator: with a session of its own if new_session, it forks the
 * orphan of slot i (and of slot i2 if not -1) and exits with code. */
static pid_t creator(int i, int i2, int new_session, int code)
{
    pid_t c = fork();
    rcheck(c >= 0, "fork: %s", strerror(errno));
    if (c == 0) {
        if (new_session && setsid() < 0)
            _exit(20);
        pid_t me = getpid();
        pid_t o = fork();
        if (o == 0)
            orphan(i, new_session ? me : 0);
        pid_t o2 = i2 < 0 ? 0 : fork();
        if (o2 == 0 && i2 >= 0)
            orphan(i2, new_session ? me : 0);
        _exit(o < 0 || o2 < 0 ? 21 : code);
    }
    return c;
}

static void reap(pid_t c, const char *what)
{
    int st = 0;
    pid_t r = waitpid(c, &st, 0);
    rcheck(r == c, "waitpid(%s %d) = %d: %s", what, c, r, strerror(errno));
    rcheck(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s ended with status %#x", what, st);
}

int main(void)
{
    /* before any fork: every process of the tree, orphans included, has it */
    sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    check(sh != MAP_FAILED, "mmap: %s", strerror(errno));
    go_path = getenv("CK_GO");
    pid_t root = getpid(), rsid = getsid(0), rpg = getpgrp();

    /* A: detached in R's session */
    pid_t c1 = creator(O1, -1, 0, 0);
    reap(c1, "C1");
    /* B: a session whose leader is gone, with two orphans in it */
    pid_t c2 = creator(O2, O2B, 1, 0);
    reap(c2, "C2");
    /* C: a zombie session leader */
    pid_t c3 = creator(O3, -1, 1, 5);
    siginfo_t si;
    int i;
    for (i = 0; i < 1000; i++) {
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)c3, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == c3)
            break;
        test_sleep_ms(5);
    }
    rcheck(i < 1000, "C3 (%d) did not exit", c3);
    rcheck(si.si_code == CLD_EXITED && si.si_status == 5, "C3 ended with code %d status %d",
           si.si_code, si.si_status);

    /* the five record their start values */
    int64_t end = test_now_ns() + 5000000000LL;
    for (i = 0; i < NSLOTS; i++) {
        while (!__atomic_load_n(&sh->s[i].started, __ATOMIC_ACQUIRE) && test_now_ns() < end)
            test_sleep_ms(5);
        rcheck(__atomic_load_n(&sh->s[i].started, __ATOMIC_ACQUIRE),
               "%s did not record its start within 5 s%s%s", slot_name[i],
               sh->s[O1].why[0] ? "; O1 says: " : "", sh->s[O1].why);
    }
    struct slot *s = sh->s;
    for (i = O1; i <= G1; i++)
        rcheck(s[i].sid == rsid && s[i].pgid == rpg,
               "%s (%d): session %d group %d, not R's (%d, %d)", slot_name[i], s[i].pid,
               s[i].sid, s[i].pgid, rsid, rpg);
    for (i = O2; i <= O2B; i += O2B - O2)
        rcheck(s[i].sid == c2 && s[i].pgid == c2 && s[i].expect_sid == c2,
               "%s (%d): session %d group %d expected %d, not C2 (%d)", slot_name[i],
               s[i].pid, s[i].sid, s[i].pgid, s[i].expect_sid, c2);
    rcheck(s[O3].sid == c3 && s[O3].pgid == c3 && s[O3].expect_sid == c3,
           "O3 (%d): session %d group %d expected %d, not C3 (%d)", s[O3].pid, s[O3].sid,
           s[O3].pgid, s[O3].expect_sid, c3);

    /* really orphans: their creators are gone (reaped or a zombie), so the
     * kernel has reparented them already */
    pid_t creators[NSLOTS] = {c1, 0, c2, c3, c2};
    char state = '?';
    int ppid, pgrp, sid;
    for (i = 0; i < NSLOTS; i++) {
        rcheck(proc_stat(s[i].pid, &state, &ppid, &pgrp, &sid) == 0,
               "%s (%d): cannot read /proc/%d/stat", slot_name[i], s[i].pid, s[i].pid);
        if (i == G1)
            rcheck(ppid == s[O1].pid, "G1 (%d): parent %d, not O1 (%d)", s[i].pid, ppid,
                   s[O1].pid);
        else
            rcheck(ppid != root && ppid != creators[i],
                   "%s (%d): parent %d is %s, it was not reparented", slot_name[i], s[i].pid,
                   ppid, ppid == root ? "R" : "its creator");
    }
    rcheck(proc_stat(c3, &state, &ppid, &pgrp, &sid) == 0 && state == 'Z',
           "C3 (%d) is not a zombie (state %c)", c3, state);
    test_ready();
    test_wait_go();

    __atomic_store_n(&sh->token, TOKEN, __ATOMIC_RELEASE);
    end = test_now_ns() + 10000000000LL;
    for (i = 0; i < NSLOTS; i++) {
        int v;
        while ((v = __atomic_load_n(&s[i].verdict, __ATOMIC_ACQUIRE)) == V_NONE &&
               test_now_ns() < end)
            test_sleep_ms(5);
        rcheck(v != V_NONE, "%s (%d) gave no verdict within 10 s", slot_name[i], s[i].pid);
        rcheck(v == V_OK, "%s (%d): %s", slot_name[i], s[i].pid, s[i].why);
    }

    /* the zombie and its status survived */
    int st = 0;
    pid_t r = waitpid(c3, &st, 0);
    check(r == c3, "waitpid(C3 %d) = %d: %s", c3, r, strerror(errno));
    check(WIFEXITED(st) && WEXITSTATUS(st) == 5, "C3: status %#x, expected exit 5", st);
    errno = 0;
    r = waitpid(-1, NULL, WNOHANG);
    check(r == 0 || (r == -1 && errno == ECHILD), "waitpid(-1) = %d after C3: %s", r,
          strerror(errno));
    pass();
    return 0;
}
