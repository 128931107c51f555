#!/bin/bash
# test_migrate.sh - coord restore - (an image on standard input) and
# coord migrate PID HOST (over ssh), between two "hosts" on this machine.
#
#   bash tests/integration/test_migrate.sh BUILD_DIR
#
# The two hosts are two network namespaces joined by a veth pair
# (A 10.77.0.1, B 10.77.0.2), each with its own sshd (Debian's
# openssh-server, run by the test user without privileges on port 2222)
# and its own counter file. All of it is built as an ordinary user: the
# script runs itself again inside a new user namespace (the user keeps
# its uid) that owns both network namespaces. A small TCP server that
# counts requests and its own work ticks listens on A's address; coord
# migrate moves it to B (where it listens on the same port on every
# address, since B lacks A's address), a client on A gets the next count
# from B; it then moves back from B to A over B's ssh. A restore that the
# other host refuses brings the program back here; an unreachable host
# changes nothing. --shared-file and --no-file-versions reach the restore
# on the other host (a journal appended to by others keeps their line). A
# counter service both hosts share (redis) refuses, on the first host, an
# image taken there before the program moved.
# Prints one "PASS name" / "FAIL name: why" line per check (SKIP when
# user namespaces, ip or sshd are missing).

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ -z "${CK_MIGRATE_INNER:-}" ]; then
    if [ "$(id -u)" = 0 ]; then # sshd run by root wants its privilege separation user
        echo "SKIP migrate: runs as an ordinary user only (tests/run.sh does so when run as root)"
        exit 0
    fi
    for t in ip /usr/sbin/sshd ssh ssh-keygen unshare nsenter setpriv python3; do
        command -v "$t" >/dev/null 2>&1 || { echo "SKIP migrate: $t is not installed"; exit 0; }
    done
    if ! unshare -U --map-current-user -n --keep-caps ip link add vt0 type veth peer name vt1 \
        2>/dev/null; then
        echo "SKIP migrate: no unprivileged user and network namespaces here"
        exit 0
    fi
    exec env CK_MIGRATE_INNER=1 unshare -U --map-current-user -n --keep-caps bash "$0" "$B"
fi

C="$B/coord"
T=$(mktemp -d /tmp/ckshim-migrate.XXXXXX)
chmod 755 "$T"
. "$HERE/lib.sh"
export CKSHIM_DIR=$T/ck
trap ck_cleanup EXIT

# Everything the program, coord and sshd run is started without the
# capabilities this namespace gives (ambient ones would be inherited).
NOCAPS=(setpriv --inh-caps=-all --ambient-caps=-all --bounding-set=-all --)
nocaps() { "${NOCAPS[@]}" "$@"; }

# ---- the two hosts
ip link set lo up
unshare -n --keep-caps sleep 100000 &
HB=$!
PIDS+=("$HB")
sleep 0.2
INB=(nsenter -t "$HB" -n --preserve-credentials)
inB() { "${INB[@]}" "$@"; }
ip link add vA type veth peer name vB && ip link set vB netns "/proc/$HB/ns/net" &&
    ip addr add 10.77.0.1/24 dev vA && ip link set vA up &&
    inB ip addr add 10.77.0.2/24 dev vB && inB ip link set vB up && inB ip link set lo up ||
    { fail migrate_hosts "cannot build the two network namespaces"; exit 0; }

ssh-keygen -q -t ed25519 -N '' -f "$T/hostkey" && ssh-keygen -q -t ed25519 -N '' -f "$T/userkey" &&
    cp "$T/userkey.pub" "$T/authkeys" || { fail migrate_keys "ssh-keygen failed"; exit 0; }
sshd_on() { # ADDRESS [NSENTER...]: sshd of that host, by the test user
    local a=$1
    shift
    "$@" "${NOCAPS[@]}" /usr/sbin/sshd -D -e -f /dev/null -h "$T/hostkey" -p 2222 \
        -o "ListenAddress=$a" -o "AuthorizedKeysFile=$T/authkeys" -o StrictModes=no \
        -o UsePAM=no -o PidFile=none 2>>"$T/sshd.log" &
    PIDS+=("$!")
}
sshd_on 10.77.0.1
sshd_on 10.77.0.2 "${INB[@]}"
SSH="ssh -p 2222 -i $T/userkey -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=2"
# coord as each host runs it: its own counter file
for h in A B; do
    printf '#!/bin/sh\nexport CKSHIM_DIR=%s CKSHIM_COUNTER=file:%s/counter.%s\nexec %s "$@"\n' \
        "$CKSHIM_DIR" "$T" "$h" "$C" >"$T/coord.$h"
    chmod 755 "$T/coord.$h"
done
export CKSHIM_COUNTER=file:$T/counter.A
mkdir -m 700 "$T/tmp"
export TMPDIR=$T/tmp
ssh_up() { # ADDRESS: within 10 s
    for _ in $(seq 20); do
        $SSH "$1" true 2>/dev/null && return 0
        sleep 0.5
    done
    return 1
}
ssh_up 10.77.0.2 && ssh_up 10.77.0.1 ||
    { fail migrate_sshd "sshd does not answer: $(tail -3 "$T/sshd.log")"; exit 0; }
pass migrate_two_hosts_with_sshd

# ---- the program: counts requests and work ticks, listens on A's address
cat >"$T/server.py" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7000))
s.listen(8)
s.settimeout(0.02)
served = ticks = 0
open(sys.argv[2], "w").write("ready\n")
while True:
    ticks += 1
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    served += 1
    c.sendall(b"served=%d ticks=%d\n" % (served, ticks))
    c.close()
PY
ask() { # ADDRESS: one request from A; prints "served=N ticks=M"
    python3 -c 'import socket,sys
c = socket.create_connection((sys.argv[1], 7000), timeout=3)
print(c.makefile().readline().strip())' "$1" 2>/dev/null
}
field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p"; }
netns_of() { readlink "/proc/$1/ns/net"; }

"${NOCAPS[@]}" env LD_PRELOAD="$B/libshim.so" python3 "$T/server.py" 10.77.0.1 "$T/ready" >"$T/server.log" 2>&1 &
P=$!
PIDS+=("$P")
wait_for 10 test -s "$T/ready" && r1=$(ask 10.77.0.1) && [ "$(field served <<<"$r1")" = 1 ] &&
    pass migrate_server_answers_on_A || { fail migrate_server_answers_on_A "got '${r1:-}'"; exit 0; }

# ---- an unreachable host: nothing changes
out=$(nocaps "$C" migrate "$P" 10.77.0.9 --ssh "$SSH" --remote-coord "$T/coord.B" 2>"$T/err")
rc=$?
if [ $rc -eq 1 ] && [ -z "$out" ] && alive "$P" && grep -q "nothing was changed" "$T/err"; then
    pass migrate_unreachable_changes_nothing
else
    fail migrate_unreachable_changes_nothing "rc=$rc out='$out'"
fi

# ---- A -> B
sleep 0.3
NP=$(nocaps "$C" migrate "$P" 10.77.0.2 --ssh "$SSH" --remote-coord "$T/coord.B" 2>"$T/err")
rc=$?
[ -n "$NP" ] && PIDS+=("$NP")
if [ $rc -eq 0 ] && [ -n "$NP" ] && wait_for 5 gone "$P" && alive "$NP" &&
    [ "$(netns_of "$NP")" = "$(inB readlink /proc/self/ns/net)" ]; then
    pass migrate_moves_program_to_B
else
    fail migrate_moves_program_to_B "rc=$rc new='$NP' old alive=$(alive "$P" && echo yes)"
fi
grep -q "does not have.*0.0.0.0:7000" "$T/err" && pass migrate_listener_on_wildcard_noted ||
    fail migrate_listener_on_wildcard_noted "$(tail -2 "$T/err")"
r2=$(ask 10.77.0.2)
if [ "$(field served <<<"$r2")" = 2 ] && [ "$(field ticks <<<"$r2")" -gt "$(field ticks <<<"$r1")" ]; then
    pass migrate_B_answers_with_state
else
    fail migrate_B_answers_with_state "before '$r1', after '$r2'"
fi
[ -z "$(ask 10.77.0.1)" ] && pass migrate_A_no_longer_answers ||
    fail migrate_A_no_longer_answers "something still answers on A"
# the local image may not be restored as the program any more
[ -z "$(ls -A "$T/tmp")" ] && pass migrate_local_copy_removed ||
    fail migrate_local_copy_removed "left in \$TMPDIR: $(ls -A "$T/tmp")"

# ---- B -> A, run on B over ssh (the second checkpoint and restore)
NP2=$($SSH 10.77.0.2 "$T/coord.B migrate $NP 10.77.0.1 --ssh '$SSH' --remote-coord $T/coord.A" \
    2>"$T/err")
rc=$?
[ -n "$NP2" ] && PIDS+=("$NP2")
r3=$(ask 10.77.0.1)
if [ $rc -eq 0 ] && wait_for 5 gone "$NP" && [ "$(netns_of "$NP2")" = "$(readlink /proc/self/ns/net)" ] &&
    [ "$(field served <<<"$r3")" = 3 ]; then
    pass migrate_back_to_A_from_B
else
    fail migrate_back_to_A_from_B "rc=$rc pid '$NP2' answer '$r3'"
fi

# ---- the other host refuses the restore: the program comes back here
KEEP=$T/kept.img
echo "# ckshim counters v1" >"$T/counter.B.bad"
out=$(nocaps "$C" migrate "$NP2" 10.77.0.2 --ssh "$SSH" --remote-coord "$T/coord.B" --keep "$KEEP" \
    --remote-counter "redis://127.0.0.1:1" 2>"$T/err")
rc=$?
[ -n "$out" ] && PIDS+=("$out")
r4=$(ask 10.77.0.1)
if [ $rc -eq 1 ] && [ -n "$out" ] && alive "$out" && wait_for 5 gone "$NP2" && [ "$(field served <<<"$r4")" = 4 ] &&
    grep -q "runs here again" "$T/err" && [ -s "$KEEP" ]; then
    pass migrate_refused_there_restored_here
else
    fail migrate_refused_there_restored_here "rc=$rc pid '$out' answer '$r4' $(grep -v chdir "$T/err" | tail -3)"
fi

# ---- text from the far side's shell before coord's answer; then a
# timed-out and an interrupted transfer: nothing runs twice, the image stays
CUR=${out:-0}
cat >"$T/wrapssh" <<'SH'
#!/bin/bash
# like ssh, but: a banner line first; a pause before a restore (WRAP_SLEEP)
echo "Welcome to host B"
case "$*" in *"restore - "*) sleep "${WRAP_SLEEP:-0}" ;; esac
exec ssh "$@"
SH
chmod 755 "$T/wrapssh"
WSSH="$T/wrapssh ${SSH#ssh }"
NPB=$("${NOCAPS[@]}" "$C" migrate "$CUR" 10.77.0.2 --ssh "$WSSH" --remote-coord "$T/coord.B" 2>"$T/err")
rc=$?
[ -n "$NPB" ] && PIDS+=("$NPB")
if [ $rc -eq 0 ] && [ "$(field served <<<"$(ask 10.77.0.2)")" = 5 ]; then
    pass migrate_ignores_remote_banner
else
    fail migrate_ignores_remote_banner "rc=$rc pid '$NPB' $(grep -v chdir "$T/err" | tail -2)"
fi
# back to A (run on B over ssh) for what follows
CUR=$($SSH 10.77.0.2 "$T/coord.B migrate $NPB 10.77.0.1 --ssh '$SSH' --remote-coord $T/coord.A" 2>"$T/err")
[ -n "$CUR" ] && PIDS+=("$CUR")
r=$(ask 10.77.0.1)
[ "$(field served <<<"$r")" = 6 ] || fail migrate_back_again "answer '$r'"
WRAP_SLEEP=30 "${NOCAPS[@]}" "$C" migrate "$CUR" 10.77.0.2 --ssh "$WSSH" \
    --remote-coord "$T/coord.B" --timeout 3s >"$T/out" 2>"$T/err"
rc=$?
img=$(ls "$T"/tmp/*/image 2>/dev/null | head -n 1)
if [ $rc -eq 1 ] && [ ! -s "$T/out" ] && grep -q "no answer within --timeout" "$T/err" &&
    grep -q "may be running there" "$T/err" && [ -s "$img" ] && wait_for 5 gone "$CUR"; then
    pass migrate_timeout_keeps_image
else
    fail migrate_timeout_keeps_image "rc=$rc img='$img' $(grep -v chdir "$T/err" | tail -2)"
fi
# it did not run there: the kept image restores here
CUR=$("${NOCAPS[@]}" "$C" restore "$img" --detach 2>"$T/err")
[ -n "$CUR" ] && PIDS+=("$CUR")
[ "$(field served <<<"$(ask 10.77.0.1)")" = 7 ] && pass migrate_kept_image_restores_here ||
    fail migrate_kept_image_restores_here "pid '$CUR'"
rm -rf "${img%/image}"
WRAP_SLEEP=30 "${NOCAPS[@]}" "$C" migrate "$CUR" 10.77.0.2 --ssh "$WSSH" \
    --remote-coord "$T/coord.B" >"$T/out" 2>"$T/err" &
MP=$!
for _ in $(seq 100); do ls "$T"/tmp/*/image >/dev/null 2>&1 && gone "$CUR" && break; sleep 0.1; done
sleep 0.5
kill -TERM "$MP"
wait "$MP"
rc=$?
img=$(ls "$T"/tmp/*/image 2>/dev/null | head -n 1)
if [ $rc -eq 1 ] && grep -q "interrupted while the image was sent" "$T/err" && [ -s "$img" ] &&
    ! pgrep -u "$(id -u)" -f wrapssh >/dev/null; then
    pass migrate_interrupted_keeps_image
else
    fail migrate_interrupted_keeps_image "rc=$rc img='$img' $(grep -v chdir "$T/err" | tail -2)"
fi
CUR=$("${NOCAPS[@]}" "$C" restore "$img" --detach 2>"$T/err")
[ -n "$CUR" ] && PIDS+=("$CUR")
rm -rf "${img%/image}"

# ---- coord restore - : from a pipe, the image never on disk there
P3=${CUR:-0}
nocaps "$C" checkpoint "$P3" -o "$T/s.img" --kill 2>"$T/err" >/dev/null
NP4=$(nocaps sh -c "cat '$T/s.img' | '$C' restore - --detach" 2>"$T/err")
[ -n "$NP4" ] && PIDS+=("$NP4")
r5=$(ask 10.77.0.1)
[ "$(field served <<<"$r5")" = 8 ] && pass restore_from_stdin ||
    fail restore_from_stdin "pid '$NP4' answer '$r5'"
kill -9 "${NP4:-0}" 2>/dev/null
wait_for 5 gone "${NP4:-0}"
out=$(nocaps sh -c "cat '$T/s.img' | '$C' restore - --detach" 2>"$T/err")
rc=$?
[ $rc -eq 1 ] && [ -z "$out" ] && grep -q stale "$T/err" && pass restore_from_stdin_stale_refused ||
    fail restore_from_stdin_stale_refused "rc=$rc out='$out'"
out=$(nocaps sh -c "head -c 5000 '$T/s.img' | '$C' restore - --detach" 2>"$T/err")
rc=$?
[ $rc -eq 1 ] && [ -z "$out" ] && pass restore_from_stdin_truncated_refused ||
    fail restore_from_stdin_truncated_refused "rc=$rc out='$out'"
out=$(yes | nocaps timeout 20 "$C" restore - --detach 2>"$T/err")
rc=$?
[ $rc -eq 1 ] && grep -q "not a ckshim image" "$T/err" && pass restore_from_stdin_not_image_at_once ||
    fail restore_from_stdin_not_image_at_once "rc=$rc"
out=$(nocaps "$C" restore - --detach </dev/null 2>"$T/err")
rc=$?
[ $rc -eq 1 ] && grep -q "no image" "$T/err" && pass restore_from_empty_stdin_refused ||
    fail restore_from_empty_stdin_refused "rc=$rc"
for bad in -x "a b" "h;rm"; do
    out=$(nocaps "$C" migrate 1 "$bad" 2>"$T/err")
    rc=$?
    [ $rc -eq 2 ] || { fail migrate_bad_host_refused "'$bad': rc=$rc"; break; }
done
[ $rc -eq 2 ] && pass migrate_bad_host_refused

# ---- --shared-file and --no-file-versions reach the restore on B: a
# journal the program appends to, and others too (the ssh wrapper, after
# the checkpoint, before the restore). Without them the file is put back
# at its checkpoint version there (the other line gone); with them it is
# left as it is.
cat >"$T/journal.py" <<'PY'
import sys, time
f = open(sys.argv[1], "a")
f.write("start\n")
f.flush()
open(sys.argv[2], "w").write("ready\n")
while True:
    time.sleep(0.05)
PY
cat >"$T/sshappend" <<SH
#!/bin/bash
# HOST COMMAND: before the restore (not coord's look for restore -),
# the journal gets a line from someone else; then ssh
case \$2 in *" restore - "*)
    echo other >>"\$JOURNAL"
    printf '%s\\n' "\$2" >"\$JOURNAL.cmd" ;;
esac
exec $SSH "\$@"
SH
chmod 755 "$T/sshappend"
# journal_moved NAME [MIGRATE OPTIONS]: a journal program moved to B;
# prints the lines of $T/NAME.log once it runs there
journal_moved() {
    local name=$1 jp np
    shift
    "${NOCAPS[@]}" env LD_PRELOAD="$B/libshim.so" python3 "$T/journal.py" "$T/$name.log" "$T/$name.ready" \
        >/dev/null 2>&1 &
    jp=$!
    PIDS+=("$jp")
    wait_for 10 test -s "$T/$name.ready" || return
    sleep 0.2
    np=$(JOURNAL=$T/$name.log nocaps "$C" migrate "$jp" 10.77.0.2 --ssh "$T/sshappend" \
        --remote-coord "$T/coord.B" "$@" 2>"$T/$name.err")
    [ -n "$np" ] && PIDS+=("$np") && alive "$np" && tr '\n' ' ' <"$T/$name.log"
}
j1=$(journal_moved j1)
j2=$(journal_moved j2 --shared-file "$T/j2.log")
j3=$(journal_moved j3 --no-file-versions)
if [ "$j1" = "start " ] && [ "$j2" = "start other " ] && [ "$j3" = "start other " ] &&
    grep -qF -- "--shared-file '$T/j2.log'" "$T/j2.log.cmd" &&
    grep -qF -- "--no-file-versions" "$T/j3.log.cmd"; then
    pass migrate_passes_file_version_options
else
    fail migrate_passes_file_version_options "journals '$j1' / '$j2' / '$j3'; $(cat "$T/j2.log.cmd" "$T/j3.log.cmd" 2>/dev/null) $(grep -v chdir "$T/j2.err" | tail -n 2)"
fi

# ---- a counter service both hosts share (redis on A's address): the
# image the program moved with, kept on A, is refused on A once the
# program was checkpointed again on B
if RS=$(command -v redis-server); then
    "${NOCAPS[@]}" "$RS" --bind 10.77.0.1 --port 6399 --protected-mode no --save "" --appendonly no --dir "$T" \
        >"$T/redis.log" 2>&1 &
    PIDS+=("$!")
    RURL=redis://10.77.0.1:6399
    wait_for 10 python3 -c 'import socket; socket.create_connection(("10.77.0.1", 6399), 1)'
    "${NOCAPS[@]}" env LD_PRELOAD="$B/libshim.so" python3 "$T/journal.py" "$T/r.log" "$T/r.ready" \
        >/dev/null 2>&1 &
    rp=$!
    PIDS+=("$rp")
    wait_for 10 test -s "$T/r.ready"
    sleep 0.2
    # moved to B (the image it moved with kept here), then checkpointed
    # on B: the counter moves there, and the kept image is stale here too
    rnp=$(nocaps "$C" migrate "$rp" 10.77.0.2 --ssh "$SSH" --remote-coord "$T/coord.B" \
        --keep "$T/moved.img" --counter "$RURL" --remote-counter "$RURL" 2>"$T/r.err1")
    rc1=$?
    [ -n "$rnp" ] && PIDS+=("$rnp")
    $SSH 10.77.0.2 "$T/coord.B checkpoint $rnp -o $T/onB.img --counter $RURL" >/dev/null \
        2>"$T/r.err2"
    rc2=$?
    out=$(nocaps "$C" restore "$T/moved.img" --detach --counter "$RURL" 2>"$T/r.err3")
    rc3=$?
    [ -n "$out" ] && PIDS+=("$out")
    if [ $rc1 -eq 0 ] && [ -n "$rnp" ] && [ $rc2 -eq 0 ] && alive "$rnp" && [ $rc3 -ne 0 ] &&
        [ -z "$out" ] && grep -q "is stale" "$T/r.err3"; then
        pass migrate_shared_counter_refuses_older_image
    else
        fail migrate_shared_counter_refuses_older_image "migrate rc=$rc1 pid '$rnp', \
checkpoint on B rc=$rc2, image restored here: rc=$rc3 '$out' $(tail -q -n 2 "$T/r.err1" "$T/r.err2" "$T/r.err3")"
    fi
else
    echo "SKIP migrate_shared_counter_refuses_older_image: redis-server is not installed"
fi
exit 0
