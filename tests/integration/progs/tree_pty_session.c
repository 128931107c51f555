/* tree_pty_session - a terminal session inside a process tree, as a
 * terminal multiplexer, pty.fork or expect make one.
 *
 * The root opens a pseudo-terminal pair (it keeps the master, closes the
 * slave). Child S: setsid, opens the slave (it becomes S's controlling
 * terminal), puts it on fds 0-2 and forks J into a process group of its
 * own that it makes the terminal's foreground (job control: tcsetpgrp).
 * J reads lines from the terminal (echo off) and answers each "<n>" with
 * "ack <n>" on it; S waits for J. Before READY the root types "1" (answered: the
 * terminal runs) and then "2" without reading the answer, so the answer
 * waits in the pair at the checkpoint. After the go file: the answer to
 * "2" is there; S's and J's controlling terminal, session, groups and
 * the foreground group are what they were (as ids the processes know);
 * the terminal's modes (echo off) and window size (80x24) too, and the
 * session and foreground group ioctl(TIOCGSID, TIOCGPGRP) give on the
 * master;
 * "3" is answered; then the root ends J with a SIGINT through the
 * terminal (^C: the foreground group gets it) and S with a hang-up
 * (closing the master), and checks how each ended.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>

#include "testlib.h"

struct ids {
    int32_t s, j, s_sid, j_sid, j_pgid, fg;
    char tty[64];
};

/* J: answer every line "<n>" with "ack <n>" until SIGINT */
static void answer(void)
{
    char line[64];
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t r = read(0, &c, 1);
        if (r <= 0)
            _exit(30);
        if (c != '\n' && n < sizeof line - 1) {
            line[n++] = c;
            continue;
        }
        line[n] = 0;
        n = 0;
        char out[96];
        int k = snprintf(out, sizeof out, "ack %s\n", line);
        if (write(1, out, (size_t)k) != k)
            _exit(31);
    }
}

static void read_answer(int m, const char *want)
{
    char buf[256];
    size_t n = 0;
    /* (the terminal turns \n into \r\n) */
    while (n < sizeof buf - 1) {
        ssize_t r = read(m, buf + n, 1);
        check(r == 1, "reading the answer '%s' from the master: %zd (%s)", want, r,
              strerror(errno));
        if (buf[n] == '\n')
            break;
        if (buf[n] != '\r')
            n++;
    }
    buf[n] = 0;
    check(!strcmp(buf, want), "the terminal answered '%s', expected '%s'", buf, want);
}

int main(void)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    check_sys(m);
    check_sys(grantpt(m));
    check_sys(unlockpt(m));
    char slave[64];
    check(ptsname_r(m, slave, sizeof slave) == 0, "ptsname");
    struct winsize ws = {24, 80, 0, 0};
    check_sys(ioctl(m, TIOCSWINSZ, &ws));
    int idp[2];
    check_sys(pipe(idp));

    pid_t s = fork();
    check_sys(s);
    if (s == 0) {
        close(idp[0]);
        close(m);
        if (setsid() < 0)
            _exit(20);
        int t = open(slave, O_RDWR); /* the controlling terminal, as the leader */
        if (t < 0 || dup2(t, 0) < 0 || dup2(t, 1) < 0 || dup2(t, 2) < 0)
            _exit(21);
        if (t > 2)
            close(t);
        signal(SIGTTOU, SIG_IGN);
        struct termios tio;
        tcgetattr(0, &tio);
        tio.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(0, TCSANOW, &tio);
        pid_t j = fork();
        if (j < 0)
            _exit(22);
        if (j == 0) {
            setpgid(0, 0);
            /* as a shell does for a foreground job: the child makes its
             * group the foreground too, with SIGTTOU still ignored, so it
             * cannot read the terminal from the background (and be
             * stopped by SIGTTIN) before S's tcsetpgrp has run; then the
             * defaults (a harness may have started us with SIGINT
             * ignored) */
            if (tcsetpgrp(0, getpid()) < 0)
                _exit(27);
            signal(SIGTTOU, SIG_DFL);
            signal(SIGINT, SIG_DFL);
            answer();
        }
        setpgid(j, j);
        if (tcsetpgrp(0, j) < 0)
            _exit(23);
        struct ids me = {getpid(), j, getsid(0), getsid(j), getpgid(j), tcgetpgrp(0), ""};
        snprintf(me.tty, sizeof me.tty, "%s", ttyname(0) ? ttyname(0) : "?");
        if (write(idp[1], &me, sizeof me) != sizeof me)
            _exit(24);
        close(idp[1]);
        int st;
        /* J ends with the ^C; then the hang-up ends S */
        if (waitpid(j, &st, 0) != j)
            _exit(25);
        _exit(WIFSIGNALED(st) && WTERMSIG(st) == SIGINT ? 7 : 26);
    }
    close(idp[1]);
    struct ids was;
    check(read(idp[0], &was, sizeof was) == sizeof was, "S's report");
    check(was.fg == was.j && was.j_pgid == was.j && was.s_sid == was.s && was.j_sid == was.s,
          "S %d (session %d), J %d (session %d, group %d), foreground %d", was.s, was.s_sid,
          was.j, was.j_sid, was.j_pgid, was.fg);
    check(!strcmp(was.tty, slave), "S's terminal %s, not %s", was.tty, slave);
    check(write(m, "1\n", 2) == 2, "typing 1");
    read_answer(m, "ack 1");
    check(write(m, "2\n", 2) == 2, "typing 2");
    test_sleep_ms(200); /* J answers meanwhile: the answer waits in the pair */
    /* the terminal's session and foreground group, asked of the master
     * with ioctl itself (as zdtm tty03 does): the ids the program knows */
    pid_t sid0 = 0, fg0 = 0;
    check(ioctl(m, TIOCGSID, &sid0) == 0 && ioctl(m, TIOCGPGRP, &fg0) == 0 && sid0 == was.s &&
              fg0 == was.j,
          "TIOCGSID %d, TIOCGPGRP %d: not S %d and J %d", sid0, fg0, was.s, was.j);
    test_msg("S %d, J %d on %s", was.s, was.j, was.tty);
    test_ready();
    test_wait_go();

    read_answer(m, "ack 2");
    /* S's and J's view, through /proc of now: their stat's session and
     * groups are the kernel's numbers; what they know is checked by S's
     * report (above) and by what follows */
    struct winsize now;
    check_sys(ioctl(m, TIOCGWINSZ, &now));
    check(now.ws_row == 24 && now.ws_col == 80, "window %ux%u, was 80x24", now.ws_col,
          now.ws_row);
    struct termios tio;
    check_sys(tcgetattr(m, &tio));
    check(!(tio.c_lflag & ECHO), "echo is on again");
    check(getsid(was.s) == was.s && getsid(was.j) == was.s && getpgid(was.j) == was.j,
          "S's session %d, J's session %d and group %d", getsid(was.s), getsid(was.j),
          getpgid(was.j));
    pid_t sid1 = 0, fg1 = 0;
    check(ioctl(m, TIOCGSID, &sid1) == 0 && ioctl(m, TIOCGPGRP, &fg1) == 0 && sid1 == was.s &&
              fg1 == was.j,
          "after restore TIOCGSID %d, TIOCGPGRP %d: not S %d and J %d", sid1, fg1, was.s, was.j);
    check(write(m, "3\n", 2) == 2, "typing 3");
    read_answer(m, "ack 3");
    /* ^C: the terminal's foreground group (J's) gets SIGINT */
    check(write(m, "\003", 1) == 1, "typing ^C");
    int st;
    check(waitpid(was.s, &st, 0) == was.s, "waitpid S: %s", strerror(errno));
    check(WIFEXITED(st) && WEXITSTATUS(st) == 7,
          "S ended with status %#x (7: J ended by the ^C, as the foreground group)", st);
    close(m);
    pass();
}
