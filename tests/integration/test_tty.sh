#!/bin/bash
# test_tty.sh - terminal modes follow the program into the terminal it is
# restored in.
#
#   bash tests/integration/test_tty.sh BUILD_DIR
#
# A small REPL (python3 under the shim) on a pseudo-terminal turns off
# echo and line editing (as readline, vim or a raw-mode REPL do) and
# answers each line with "got: LINE winch=N size=COLSxROWS". It is
# checkpointed with --kill and restored in the foreground (coord restore
# FILE, no --detach) on a fresh pseudo-terminal in the default modes (echo
# on), with another window size; then checkpointed and restored once more.
# Checks:
#   - after each restore the new terminal has the program's modes: a line
#     typed is not echoed by the terminal (a restored REPL echoed twice);
#   - the program got SIGWINCH when the new window had another size, and
#     sees the new size; not when the size was the same;
#   - when the program ends and puts back the modes it found at its start
#     (as programs do), the terminal it was restored in gets them;
#   - a restore that is refused leaves the terminal's modes alone;
#   - coord inspect shows the saved modes and window size.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-tty.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

cat >"$T/repl.py" <<'PY'
import os, signal, sys, termios
winch = 0
def on_winch(sig, frame):
    global winch
    winch += 1
signal.signal(signal.SIGWINCH, on_winch)
orig = termios.tcgetattr(0)
raw = termios.tcgetattr(0)
raw[3] &= ~(termios.ECHO | termios.ICANON)
termios.tcsetattr(0, termios.TCSANOW, raw)
os.write(1, b"READY %d\r\n" % os.getpid())
line = b""
while True:
    try:
        c = os.read(0, 1)
    except InterruptedError:
        continue
    if not c:
        sys.exit(3)
    if c not in (b"\n", b"\r"):
        line += c
        continue
    if line == b"quit":
        termios.tcsetattr(0, termios.TCSANOW, orig)
        sys.exit(0)
    sz = os.get_terminal_size(1)
    os.write(1, b"got: %s winch=%d size=%dx%d\r\n" % (line, winch, sz.columns, sz.lines))
    line = b""
PY

cat >"$T/drive.py" <<'PY'
import fcntl, os, pty, select, signal, struct, subprocess, sys, termios, time
C, SHIM, T = sys.argv[1], sys.argv[2], sys.argv[3]

def result(name, ok, why=""):
    print(("PASS %s" % name) if ok else ("FAIL %s: %s" % (name, why)), flush=True)

def new_pty(rows, cols):
    m, s = pty.openpty()
    fcntl.ioctl(m, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return m, s

def spawn(argv, s, env=None):
    def ctty():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    p = subprocess.Popen(argv, stdin=s, stdout=s, stderr=s, preexec_fn=ctty, env=env,
                         close_fds=True)
    os.close(s)
    return p

def read_until(m, want, secs=10):
    buf = b""
    end = time.time() + secs
    while want not in buf and time.time() < end:
        r, _, _ = select.select([m], [], [], 0.1)
        if r:
            try:
                d = os.read(m, 4096)
            except OSError:
                break
            if not d:
                break
            buf += d
    return buf

def echo_off(m):
    return not (termios.tcgetattr(m)[3] & termios.ECHO)

def wait_modes(m, secs=10):
    end = time.time() + secs
    while time.time() < end:
        if echo_off(m):
            return True
        time.sleep(0.05)
    return False

def ask(m, word):
    """Send a line; the answer, and whether the terminal echoed it."""
    os.write(m, word.encode() + b"\n")
    out = read_until(m, b"got: " + word.encode(), 10)
    out += read_until(m, b"\n", 2)
    before = out.split(b"got:")[0]
    return out, word.encode() in before

def checkpoint(pid, img):
    r = subprocess.run([C, "checkpoint", str(pid), "-o", img, "--kill"], capture_output=True,
                       text=True, timeout=60)
    return r.returncode == 0, r.stderr.strip()

env = dict(os.environ, LD_PRELOAD=SHIM)
m1, s1 = new_pty(24, 80)
p = spawn(["python3", T + "/repl.py"], s1, env)
out = read_until(m1, b"READY")
if b"READY" not in out:
    result("tty_repl_starts", False, repr(out))
    sys.exit(0)
out, echoed = ask(m1, "one")
result("tty_repl_no_echo_before_checkpoint", b"got: one winch=0 size=80x24" in out and not echoed,
       repr(out))

ok, err = checkpoint(p.pid, T + "/1.ckpt")
p.wait(timeout=10)
if not ok:
    result("tty_checkpoint", False, err)
    sys.exit(0)

# inspect shows the saved modes (text and JSON)
txt = subprocess.run([C, "inspect", T + "/1.ckpt"], capture_output=True, text=True).stdout
js = subprocess.run([C, "inspect", "--json", T + "/1.ckpt"], capture_output=True, text=True).stdout
try:
    import json
    term = [f["terminal"] for f in json.loads(js)["fds"] if f["fd"] == 0 and "terminal" in f]
except ValueError:
    term = []
result("tty_inspect_shows_modes",
       "terminal: raw (no line editing), no echo, 80x24" in txt and term and
       term[0]["cols"] == 80 and not int(term[0]["lflag"], 16) & termios.ECHO,
       "text %r json %r" % ([l for l in txt.splitlines() if "terminal" in l], term))

# restore in the foreground on a fresh terminal (echo on), another size
m2, s2 = new_pty(30, 100)
modes2 = termios.tcgetattr(m2)
r2 = spawn([C, "restore", T + "/1.ckpt"], s2)
got_modes = wait_modes(m2)
out, echoed = ask(m2, "two")
result("tty_modes_carried_to_restore_terminal", got_modes and not echoed and b"got: two" in out,
       "echo still on in the new terminal; output %r" % out)
result("tty_sigwinch_on_new_size", b"got: two winch=1 size=100x30" in out, repr(out))

# a refused restore (the image is used up) leaves a terminal alone
m4, s4 = new_pty(24, 80)
before = termios.tcgetattr(m4)
r4 = spawn([C, "restore", T + "/1.ckpt"], s4)
rc4 = r4.wait(timeout=30)
msg = read_until(m4, b"\n", 2)
result("tty_refused_restore_leaves_modes", rc4 == 1 and termios.tcgetattr(m4) == before,
       "rc %d, modes %s, output %r" % (rc4, "changed" if termios.tcgetattr(m4) != before else "kept", msg))

# twice: checkpoint the restored program, restore on a terminal of the same size
ok, err = checkpoint(r2.pid, T + "/2.ckpt")
try:
    r2.wait(timeout=10)
except subprocess.TimeoutExpired:
    ok, err = False, "the restored program did not end after checkpoint --kill"
if not ok:
    result("tty_second_checkpoint", False, err)
    sys.exit(0)
m3, s3 = new_pty(30, 100)
r3 = spawn([C, "restore", T + "/2.ckpt"], s3)
got_modes = wait_modes(m3)
out, echoed = ask(m3, "three")
result("tty_modes_carried_twice", got_modes and not echoed and b"got: three" in out, repr(out))
result("tty_no_sigwinch_same_size", b"got: three winch=1 size=100x30" in out, repr(out))

# the program ends and puts back the modes it found at its start
os.write(m3, b"quit\n")
try:
    rc = r3.wait(timeout=10)
except subprocess.TimeoutExpired:
    rc = None
result("tty_program_puts_back_its_modes", rc == 0 and not echo_off(m3),
       "exit %r, echo %s" % (rc, "off" if echo_off(m3) else "on"))
PY

timeout 120 python3 "$T/drive.py" "$C" "$SHIM" "$T" 2>"$T/err" || fail tty_driver "exit $?"
