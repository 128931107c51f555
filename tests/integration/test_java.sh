#!/bin/bash
# test_java.sh - a Java program restores after another JVM started.
#
#   bash tests/integration/test_java.sh BUILD_DIR
#
# A JVM maps /tmp/hsperfdata_USER/PID MAP_SHARED; every new JVM of the
# user deletes the files of JVMs it believes dead, so the image's file was
# gone at restore. ckshim saves such small temporary files in the image and
# recreates them: checkpoint a small Java program with --kill, run another
# JVM (which removes the stale file), restore, and the program finishes.
# "SKIP java: why" if java or javac is missing.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
if ! command -v java >/dev/null || ! command -v javac >/dev/null; then
    echo "SKIP java: java/javac not installed (Debian: apt-get install default-jdk-headless)"
    exit 0
fi
T=$(mktemp -d /tmp/ckshim-java.XXXXXX)
chmod 755 "$T"
export CKSHIM_COUNTER="file:$T/counters"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT

cat >"$T/Ticker.java" <<'EOF2'
public class Ticker {
    public static void main(String[] args) throws Exception {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 100000; i++)
            sb.append((char) ('a' + i % 26));
        String kept = sb.toString();
        long n = 0;
        System.out.println("READY");
        while (!new java.io.File(args[0]).exists()) {
            n++;
            Thread.sleep(20);
        }
        System.out.println(kept.length() == 100000 && kept.charAt(99999) == 'a' + 99999 % 26
                           ? "PASS " + n : "FAIL kept string changed");
    }
}
EOF2
if ! (cd "$T" && javac Ticker.java) >"$T/err" 2>&1; then
    echo "SKIP java: javac failed: $(head -1 "$T/err")"
    exit 0
fi
JOPTS=(-XX:+UseSerialGC -Xmx64m -XX:TieredStopAtLevel=1)
(cd "$T" && exec env LD_PRELOAD="$SHIM" java "${JOPTS[@]}" -cp "$T" Ticker "$T/go" \
    >"$T/java.log" 2>&1) &
pid=$!
disown "$pid" 2>/dev/null
PIDS+=("$pid")
if ! wait_for 30 grep -q READY "$T/java.log"; then
    fail java_ready "no READY from the JVM: $(tail -2 "$T/java.log")"
    exit 0
fi
perf="${TMPDIR:-/tmp}/hsperfdata_$(id -un)/$pid"
if ! "$C" checkpoint "$pid" -o "$T/java.img" --kill >"$T/out" 2>"$T/err"; then
    fail java_checkpoint "checkpoint failed"
    exit 0
fi
pass java_checkpoint
wait_for 10 gone "$pid"
# Another JVM of the user: it removes the file of the (dead) first one.
(cd "$T" && java "${JOPTS[@]}" -version >/dev/null 2>&1)
[ -e "$perf" ] && echo "    (note: $perf still there)"
np=$(cd / && timeout 60 "$C" restore --detach "$T/java.img" 2>"$T/err")
if [ -n "$np" ] && alive "$np"; then
    PIDS+=("$np")
    pass java_restores_after_another_jvm
    touch "$T/go"
    wait_for 20 gone "$np"
    grep -q '^PASS' "$T/java.log" && pass java_restored_program_finishes ||
        fail java_restored_program_finishes "$(tail -1 "$T/java.log")"
else
    fail java_restores_after_another_jvm "restore failed"
fi
