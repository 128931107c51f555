#!/bin/bash
# test_versions.sh - files at their checkpoint version (docs/DESIGN.md,
# "Files at their checkpoint version").
#
#   bash tests/integration/test_versions.sh BUILD_DIR
#
# A journal program (one record with a sequence number per tick, O_APPEND)
# under `coord run --every 1s --images DIR --auto-restore`, killed with -9
# a while after a checkpoint and restored by the supervisor, must leave a
# journal holding every record exactly once, in order (with
# --no-file-versions the records after the checkpoint come twice: the
# control). A stepped program shows the rest with coord checkpoint and
# restore: an appended journal is cut back to its checkpoint length, a
# file rewritten in place gets its checkpoint contents back, a
# --shared-file (on run, on checkpoint, on restore) is left alone,
# restoring the same older image twice puts the files back twice, a
# restore that fails on a damaged page (after every check) changes no
# file, a restore while the checkpointed program still writes its files
# is refused, naming it, a
# journal changed before its checkpoint length refuses the restore before
# any file is touched, and a file above CKSHIM_FILE_VERSION_MAX gets a
# note at checkpoint and is used as it is.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
C="$B/coord"
T=$(mktemp -d /tmp/ckshim-versions.XXXXXX)
chmod 755 "$T"
. "$HERE/lib.sh"
trap sv_cleanup EXIT

PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

# journal.py DIR: every 100 ms append "N" to DIR/journal (O_APPEND), rewrite
# DIR/state in place with "state N"; ends (exit 0) when DIR/finish exists.
cat >"$T/journal.py" <<'EOF'
import os, sys, time
d = sys.argv[1]
j = open(d + "/journal", "a", buffering=1)
st = open(d + "/state", "w+")
n = 0
while not os.path.exists(d + "/finish"):
    n += 1
    j.write("%d\n" % n)
    st.seek(0); st.write("state %d\n" % n); st.truncate(); st.flush()
    time.sleep(0.1)
EOF

# stepped.py DIR: one step each time DIR/go appears (removed, then the
# step, then DIR/done holds the step's number): append "K" to
# DIR/journal, rewrite DIR/data in place ("data K" and K dots: its length
# changes), append "K" to DIR/shared.log, write "out K" to DIR/out (opened
# write-only, not O_APPEND: its version is read by the image writer).
cat >"$T/stepped.py" <<'EOF'
import os, sys, time
d = sys.argv[1]
j = open(d + "/journal", "a", buffering=1)
data = open(d + "/data", "w+")
sh = open(d + "/shared.log", "a", buffering=1)
out = open(d + "/out", "w", buffering=1)
print("READY", flush=True)
k = 0
while True:
    if not os.path.exists(d + "/go"):
        time.sleep(0.02)
        continue
    os.unlink(d + "/go")
    k += 1
    j.write("%d\n" % k)
    data.seek(0); data.write("data %d %s\n" % (k, "." * k)); data.truncate(); data.flush()
    sh.write("%d\n" % k)
    out.write("out %d\n" % k)
    with open(d + "/done.tmp", "w") as f:
        f.write("%d\n" % k)
    os.rename(d + "/done.tmp", d + "/done")
EOF

state() { awk -v k="$2" '$1==k{print $2}' "$1/supervise.state" 2>/dev/null; }
seq_at_least() { [ "$(state "$1" seq)" -ge "$2" ] 2>/dev/null; }
restored() { [ "$(state "$1" restores)" -ge 1 ] 2>/dev/null; }
# in_order FILE: lines 1, 2, 3... each once
in_order() { [ -s "$1" ] && awk '$1 != NR { bad = 1 } END { exit bad }' "$1"; }

# supervised DIR [RUN-OPTIONS...]: journal.py under the supervisor, kill -9
# of the program 0.5 s after its second image, restored, then finished.
supervised() {
    local d=$1
    shift
    mkdir -p "$d"
    (cd "$d" && exec "$C" run --every 1s --images "$d/img" --auto-restore "$@" \
        -- "$PY" "$T/journal.py" "$d" >"$d/sup.out" 2>"$d/sup.err") &
    local sup=$!
    PIDS+=("$sup")
    if ! wait_for 20 seq_at_least "$d/img" 2; then
        echo "no second image"
        return 1
    fi
    sleep 0.5
    local prog
    prog=$(state "$d/img" program)
    kill -9 "$prog"
    if ! wait_for 20 restored "$d/img"; then
        echo "not restored"
        return 1
    fi
    sleep 1
    touch "$d/finish"
    wait_for 20 gone "$sup" || {
        echo "the supervisor did not end"
        return 1
    }
    wait "$sup" 2>/dev/null
    return 0
}

# ---- the journal under the supervisor: every record once, in order ----
D="$T/sv"
if why=$(supervised "$D"); then
    if in_order "$D/journal" && [ "$(wc -l <"$D/journal")" -ge 20 ] &&
        grep -q 'cut back to its checkpoint version' "$D/sup.err"; then
        pass journal_exactly_once
    else
        fail journal_exactly_once "journal: $(tr '\n' ' ' <"$D/journal" | cut -c1-200)"
    fi
    n=$(tail -n 1 "$D/journal")
    if [ "$(cat "$D/state")" = "state $n" ]; then
        pass state_matches_journal
    else
        fail state_matches_journal "state '$(cat "$D/state")', journal ends at $n"
    fi
else
    fail journal_exactly_once "$why"
fi

# ---- the control: --no-file-versions, the records after the image twice ----
D="$T/sv-off"
if why=$(supervised "$D" --no-file-versions); then
    if ! in_order "$D/journal" && [ "$(sort -n "$D/journal" | uniq -d | wc -l)" -ge 1 ]; then
        pass no_file_versions_off_switch
    else
        fail no_file_versions_off_switch "the journal has no record twice"
    fi
else
    fail no_file_versions_off_switch "$why"
fi

# ---- stepped: checkpoint, go on, kill, restore ----
S="$T/st"
mkdir -p "$S"
step() {
    local want=$(($(cat "$S/done" 2>/dev/null || echo 0) + 1))
    touch "$S/go"
    wait_for 10 grep -qsx "$want" "$S/done"
}
start_stepped() {
    rm -f "$S/go" "$S/done"
    (cd "$S" && exec "$C" run "$@" -- "$PY" "$T/stepped.py" "$S" >"$S/out" 2>&1) &
    pid=$!
    disown "$pid" 2>/dev/null
    PIDS+=("$pid")
    wait_for 10 grep -q READY "$S/out"
}
# restore_stepped NAME IMG [ARGS]: restore --detach; sets $pid
restore_stepped() {
    pid=$(cd / && timeout 30 "$C" restore --detach "$@" 2>"$T/err")
    [ -n "$pid" ] && PIDS+=("$pid") && kill -0 "$pid" 2>/dev/null
}
lines() { tr '\n' ' ' <"$1" | sed 's/ $//'; }

if start_stepped --shared-file "$S/shared.log" && step && step; then
    "$C" checkpoint "$pid" -o "$T/a.img" >/dev/null 2>"$T/ck.err"
    cp "$S/data" "$T/data.at-a"
    "$C" inspect "$T/a.img" >"$T/inspect.out" 2>&1
    if grep -q "journal \[version: length 4\]" "$T/inspect.out" &&
        grep -q "/data \[version: [0-9]* bytes saved\]" "$T/inspect.out" &&
        grep -q "/shared.log$" "$T/inspect.out"; then
        pass inspect_shows_versions
    else
        fail inspect_shows_versions "$(grep -E 'journal|data|shared' "$T/inspect.out" | head -3)"
    fi
    step && step
    # the checkpointed program still runs and writes its files: putting
    # them back would lose what it wrote since (a user restored while the
    # original ran): refused, naming it, and no file changes
    tar -C "$S" -cf "$T/files.live" journal data
    restore_refused restore_refused_while_original_writes "$T/a.img" \
        "(journal|data) is open for writing by process $pid \\(python3\\) now"
    if tar -C "$S" -cf "$T/files.after" journal data && cmp -s "$T/files.live" "$T/files.after" &&
        kill -0 "$pid"; then
        pass refused_while_original_writes_changes_nothing
    else
        fail refused_while_original_writes_changes_nothing "journal '$(lines "$S/journal")'"
    fi
    kill -9 "$pid"
    wait_for 5 gone "$pid"
    if restore_stepped "$T/a.img"; then
        if [ "$(lines "$S/journal")" = "1 2" ]; then
            pass appended_cut_back
        else
            fail appended_cut_back "journal '$(lines "$S/journal")', want '1 2'"
        fi
        if cmp -s "$S/data" "$T/data.at-a"; then
            pass rewritten_put_back
        else
            fail rewritten_put_back "data '$(cat "$S/data")', want '$(cat "$T/data.at-a")'"
        fi
        if [ "$(lines "$S/out")" = "out 1 out 2" ]; then
            pass writeonly_put_back
        else
            fail writeonly_put_back "out '$(lines "$S/out")', want 'out 1 out 2'"
        fi
        if [ "$(lines "$S/shared.log")" = "1 2 3 4" ]; then
            pass shared_file_left_alone
        else
            fail shared_file_left_alone "shared.log '$(lines "$S/shared.log")'"
        fi
        # the restored program goes on from step 2, then dies again
        step
        if [ "$(lines "$S/journal")" = "1 2 3" ] && grep -q '^data 3 \.\.\.$' "$S/data"; then
            pass restored_goes_on
        else
            fail restored_goes_on "journal '$(lines "$S/journal")', data '$(cat "$S/data")'"
        fi
        kill -9 "$pid"
        wait_for 5 gone "$pid"
        # the same older image once more (--force: the counter)
        if restore_stepped "$T/a.img" --force && [ "$(lines "$S/journal")" = "1 2" ] &&
            cmp -s "$S/data" "$T/data.at-a" && [ "$(lines "$S/shared.log")" = "1 2 3 4 3" ]; then
            pass older_image_twice
        else
            fail older_image_twice "journal '$(lines "$S/journal")', data '$(cat "$S/data")'"
        fi
        step
        kill -9 "$pid"
        wait_for 5 gone "$pid"
        # a restore that fails after every check (a damaged page record,
        # found by the restorer as it fills memory, before the counter's
        # gate): no file is put back
        flip $(($(stat -c %s "$T/a.img") / 2)) "$T/a.img" "$T/damaged.img"
        restore_refused damaged_image_refused "$T/damaged.img" "checksum|corrupt|damaged" --force
        if [ "$(lines "$S/journal")" = "1 2 3" ] && grep -q '^data 3 \.\.\.$' "$S/data"; then
            pass failed_restore_changes_no_file
        else
            fail failed_restore_changes_no_file "journal '$(lines "$S/journal")', data '$(cat "$S/data")'"
        fi
        # a journal changed before its checkpoint length: refused before
        # anything is put back (data keeps step 3's contents)
        cp "$S/data" "$T/data.before"
        printf 9 | dd of="$S/journal" conv=notrunc status=none
        restore_refused changed_journal_refused "$T/a.img" \
            "journal was changed before the length it had at the checkpoint" --force
        if cmp -s "$S/data" "$T/data.before" && [ "$(lines "$S/journal")" = "9 2 3" ]; then
            pass refusal_changes_nothing
        else
            fail refusal_changes_nothing "data '$(cat "$S/data")', journal '$(lines "$S/journal")'"
        fi
        # --shared-file at restore: data is used as it is
        printf 1 | dd of="$S/journal" conv=notrunc status=none
        if restore_stepped "$T/a.img" --force --shared-file "$S/data" &&
            cmp -s "$S/data" "$T/data.before" && [ "$(lines "$S/journal")" = "1 2" ]; then
            pass restore_shared_file
        else
            fail restore_shared_file "data '$(cat "$S/data")', journal '$(lines "$S/journal")'"
        fi
        kill -9 "$pid" 2>/dev/null
    else
        fail appended_cut_back "restore failed: $(head -3 "$T/err")"
    fi
else
    fail appended_cut_back "the stepped program did not start"
fi

# ---- coord checkpoint --shared-file, and the size limit ----
rm -f "$S/journal" "$S/data" "$S/shared.log"
if CKSHIM_FILE_VERSION_MAX=4 start_stepped && step; then
    "$C" checkpoint "$pid" -o "$T/b.img" --shared-file "$S/journal" >/dev/null 2>"$T/ck.err"
    if grep -q "fd .*$S/data (.* bytes) is larger than the file version limit" "$T/ck.err"; then
        pass version_limit_note
    else
        fail version_limit_note "$(head -3 "$T/ck.err")"
    fi
    step
    kill -9 "$pid"
    wait_for 5 gone "$pid"
    # journal: --shared-file at checkpoint, data: above the limit; both as they are
    if restore_stepped "$T/b.img" && [ "$(lines "$S/journal")" = "1 2" ] &&
        grep -q '^data 2 \.\.$' "$S/data"; then
        pass checkpoint_shared_file
    else
        fail checkpoint_shared_file "journal '$(lines "$S/journal")', data '$(cat "$S/data")'"
    fi
    kill -9 "$pid" 2>/dev/null
else
    fail version_limit_note "the stepped program did not start"
fi
# ---- --shared-file in a child that replaced its environment ----
# (nginx's workers: CKSHIM_SHARED_FILES, which coord run sets, was read
# at checkpoint from the environment the child had then, so the child's
# descriptor was saved at its version and the restore cut the shared log
# back, losing another program's line)
cat >"$T/envtree.py" <<'PYEOF2'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(fd, b"start\n")
if os.fork() == 0:
    os.environ.clear()
    os.environ["TZ"] = "UTC"
    while True:
        time.sleep(1)
print("READY", flush=True)
while True:
    time.sleep(1)
PYEOF2
E="$T/envtree"
mkdir -p "$E"
(cd "$E" && exec "$C" run --shared-file "$E/shared.log" -- "$PY" "$T/envtree.py" \
    "$E/shared.log" >"$E/out" 2>&1) &
pid=$!
disown "$pid" 2>/dev/null
PIDS+=("$pid")
if wait_for 10 grep -q READY "$E/out" &&
    "$C" checkpoint "$pid" -o "$T/e.img" >/dev/null 2>"$T/ck.err"; then
    echo "another program's line" >>"$E/shared.log"
    kid=$(cat /proc/"$pid"/task/*/children 2>/dev/null)
    kill -9 "$pid" $kid
    wait_for 5 gone "$pid"
    if restore_stepped "$T/e.img" && grep -q "another program's line" "$E/shared.log" &&
        ! "$C" inspect "$T/e.img" | grep -q "shared.log \[version"; then
        pass shared_file_in_child_with_new_environment
    else
        fail shared_file_in_child_with_new_environment "log '$(lines "$E/shared.log")': $(head -2 "$T/err")"
    fi
    kill -9 "$pid" $(cat /proc/"$pid"/task/*/children 2>/dev/null) 2>/dev/null
else
    fail shared_file_in_child_with_new_environment "no READY or checkpoint: $(head -2 "$T/ck.err")"
fi
# ---- a file written through a shared mapping (SQLite's WAL index) ----
# Writes through a MAP_SHARED mapping need not change the file's mtime
# (on tmpfs never): restore compared the times, found them as recorded
# and left the newer contents, and SQLite read a stale WAL index (the
# database corrupt). Such a file is compared by its contents.
cat >"$T/mapw.py" <<'PYEOF2'
import mmap, os, sys, time
d = sys.argv[1]
fd = os.open(d + "/idx", os.O_RDWR | os.O_CREAT, 0o600)
os.ftruncate(fd, 4096)
m = mmap.mmap(fd, 4096)
m[0:8] = b"AAAAAAAA"
print("READY", flush=True)
while not os.path.exists(d + "/go"):
    time.sleep(0.05)
print("SEEN", m[0:8].decode(), flush=True)
m[0:8] = b"BBBBBBBB"
print("WROTE", flush=True)
while True:
    time.sleep(1)
PYEOF2
M=$(mktemp -d /dev/shm/ckshim-mapw.XXXXXX)
(cd "$M" && exec "$C" run -- "$PY" "$T/mapw.py" "$M" >>"$M/out" 2>&1) &
pid=$!
disown "$pid" 2>/dev/null
PIDS+=("$pid")
if wait_for 10 grep -q READY "$M/out" &&
    "$C" checkpoint "$pid" -o "$T/m.img" >/dev/null 2>"$T/ck.err" &&
    touch "$M/go" && wait_for 10 grep -q WROTE "$M/out"; then
    kill -9 "$pid"
    wait_for 5 gone "$pid"
    wrote_twice() { [ "$(grep -c WROTE "$M/out")" -ge 2 ]; }
    if restore_stepped "$T/m.img" && wait_for 10 wrote_twice &&
        [ "$(grep -c "SEEN AAAAAAAA" "$M/out")" = 2 ]; then
        pass mapped_file_put_back
    else
        fail mapped_file_put_back "after restore: $(grep SEEN "$M/out" | tr '\n' ' '); $(head -3 "$T/err")"
    fi
    kill -9 "$pid" 2>/dev/null
else
    fail mapped_file_put_back "no READY, checkpoint or write: $(head -2 "$T/ck.err")"
fi
rm -rf "$M"
exit 0
