#!/bin/bash
# test_fdstate.sh - forged descriptor state: images of real programs whose
# FDSTATE entries (or descriptor paths) were changed with every checksum
# made right again (forge_fdstate.py), as anyone who can write an image
# file without a key could. `coord restore` must refuse each before
# anything changes, naming what is wrong, and `coord inspect` must say
# the image is damaged; neither may crash.
#
#   bash tests/integration/test_fdstate.sh BUILD_DIR
#
# - forged_unix_namelen: a unix socket's name length beyond sun_path (108)
# - forged_fd_kind_0, forged_fd_shares_unknown: a descriptor of kind 0
#   (restore called a NULL restore: a crash), one sharing fd 999, not in
#   the image (it was dup2'd from whatever coord had there)
# - forged_unix_ndgrams: a dead seqpacket connection claiming 2^32-1
#   messages (the count of their lengths overflowed before)
# - forged_unix_path_not_name: a unix socket whose path in the image is a
#   stale socket file of the user's other than its name: before, restore
#   removed that file; now refused, the file stays
# - forged_unix_removed_name_climbs: a removed socket's relative name
#   with ".." (bound again in a directory of the moment, which it leaves):
#   before, the failed bind removed the file of the user's it led to
# - forged_epoll_holder: an epoll watch held through a descriptor the
#   image does not have (refused only once the counter was advanced)
# - forged_inet_role, forged_inet_peer_self: a TCP socket with an
#   unknown role, or whose peer is itself
# - forged_inotify_path_off: an inotify watch whose path lies past the entry
# - forged_timerfd_deadline: a negative timerfd deadline
# - forged_procdead_dotdot: a /proc entry of an exited process whose path
#   climbs out of /proc ("/proc/1/../../tmp"): opened unchecked before
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
C="$B/coord"
SHIM="$B/libshim.so"
T=$(mktemp -d /tmp/ckshim-fdstate.XXXXXX)
export CKSHIM_COUNTER="file:$T/counters"
chmod 755 "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap ck_cleanup EXIT
FORGE="python3 $(dirname "${BASH_SOURCE[0]}")/forge_fdstate.py"

# checkpoint PROG: its image in $T/PROG.img (the program killed); 1 if not.
checkpoint() {
    rm -f "$T/go"
    start_test_prog "$1" || return 1
    if "$C" checkpoint "$pid" -o "$T/$1.img" --kill >"$T/err" 2>&1 && wait_for 10 gone "$pid"; then
        return 0
    fi
    fail "$1_checkpoint" "$(tail -n 2 "$T/err")"
    return 1
}

# forged NAME IMG PATTERN OP...: the image forged by OPs is refused by
# restore (exit 1, PATTERN) and called damaged by inspect (exit 1).
forged() {
    local name=$1 img=$2 pat=$3
    shift 3
    if ! $FORGE "$img" "$T/$name.img" "$@" 2>"$T/err"; then
        fail "$name" "cannot forge: $(tail -n 1 "$T/err")"
        return
    fi
    restore_refused "${name}_restore" "$T/$name.img" "$pat"
    local rc
    "$C" inspect "$T/$name.img" >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -eq 1 ] && grep -Eqi -- "$pat" "$T/err"; then
        pass "${name}_inspect"
    else
        fail "${name}_inspect" "rc=$rc, expected exit 1 matching /$pat/"
    fi
}

if checkpoint unix_listen; then
    # a stale socket file of the user's, at a path of the same length as
    # the socket G's ($T/cwd/g.sock), named as G's path in the image
    python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/cwd/x.sock"
    $FORGE "$T/unix_listen.img" "$T/unpath.img" "path:path=/g.sock:$T/cwd/x.sock" 2>/dev/null
    rm -f "$T/cwd/g.sock"
    restore_refused forged_unix_path_not_name "$T/unpath.img" "damaged.*not its name"
    [ -S "$T/cwd/x.sock" ] && pass forged_unix_path_not_name_file_stays ||
        fail forged_unix_path_not_name_file_stays "restore removed $T/cwd/x.sock"
    # a descriptor of kind 0 (no kind): coord called a restore it did not
    # have (a crash); one sharing the description of fd 999, not in the
    # image (coord dup2'd whatever it had there)
    $FORGE "$T/unix_listen.img" "$T/kind0.img" fd:path=/dev/null:4:00000000 2>"$T/err"
    restore_refused forged_fd_kind_0 "$T/kind0.img" "unknown descriptor kind 0"
    $FORGE "$T/unix_listen.img" "$T/share.img" fd:path=/dev/null:24:e7030000 2>"$T/err"
    restore_refused forged_fd_shares_unknown "$T/share.img" "damaged: fd [0-9]+ shares fd 999"
    forged forged_unix_namelen "$T/unix_listen.img" "damaged.*longer than sun_path" \
        state:kind=16:104:2c01
    # A2 (seqpacket, 2 messages waiting) made a dead connection with
    # 2^32-1 messages: their lengths once overflowed a calloc(0)
    $FORGE "$T/unix_listen.img" "$T/ndgrams.img" state:match=96=02000000:84:44000000 \
        state:match=96=02000000:96:ffffffff 2>"$T/err"
    restore_refused forged_unix_ndgrams "$T/ndgrams.img" "damaged \(4294967295 messages"
fi

if checkpoint unix_removed; then
    # R1, bound to the relative name r1.sock whose file was removed, named
    # "../vNNN" instead (and its path D/sub/../vNNN): restore binds such a name
    # in a directory of its own, which ".." leaves; a file of the user's
    # is at /tmp/vNNN. Before, the failed bind removed that file.
    v=v$((RANDOM % 900 + 100))
    : >"/tmp/$v"
    $FORGE "$T/unix_removed.img" "$T/climb.img" \
        "state:path=/r1.sock:112:$(printf "../$v" | od -An -tx1 | tr -d ' \n')" \
        "path:path=/r1.sock:$T/cwd/sub/../$v" 2>"$T/err"
    restore_refused forged_unix_removed_name_climbs "$T/climb.img" "goes up a directory"
    [ -f "/tmp/$v" ] && pass forged_unix_removed_name_climbs_file_stays ||
        fail forged_unix_removed_name_climbs_file_stays "restore removed /tmp/$v"
    rm -f "/tmp/$v"
fi

if checkpoint epoll; then
    # fd 9 watches fd 6 ("6 19 4d\n"): forged to watch it through fd 99,
    # which the image does not have (after_all dup2'd from that number)
    $FORGE "$T/epoll.img" "$T/ephold.img" "pathraw:9:6 1 4 99" 2>"$T/err"
    restore_refused forged_epoll_holder "$T/ephold.img" \
        "damaged: the epoll instance watches fd 6 through fd 99"
fi

if checkpoint inet_pair; then
    forged forged_inet_role "$T/inet_pair.img" "damaged.*role" state:kind=17:64:63000000
    $FORGE "$T/inet_pair.img" "$T/inself.img" state:kind=17:64:02000000 state:kind=17:76:self 2>/dev/null
    restore_refused forged_inet_peer_self "$T/inself.img" "damaged: its peer fd"
fi

if checkpoint inotify; then
    forged forged_inotify_path_off "$T/inotify.img" "damaged.*inotify watch" \
        state:kind=15:44:ffff0000
fi

if checkpoint timerfd; then
    forged forged_timerfd_deadline "$T/timerfd.img" "damaged.*negative" \
        state:kind=13:32:0000000000000080
fi

if checkpoint proc_dead; then
    $FORGE "$T/proc_dead.img" "$T/pdead.img" "path:path=/mountinfo:/proc/1/../../tmp" 2>"$T/err"
    restore_refused forged_procdead_dotdot "$T/pdead.img" "damaged.*not a /proc entry"
fi
