#!/bin/bash
# ckshim-test: as-root
# test_container_pidns.sh - ckshim inside a container's pid namespace.
#
#   bash tests/integration/test_container_pidns.sh BUILD_DIR
#
# Containers and some CI runners start programs in a pid namespace of
# their own, entered by root (no user namespace), with the session the
# programs inherit led from outside it: getsid and /proc show that
# session as 0, and the control sockets have the namespace in their names.
# Here: `unshare --pid --fork --mount-proc` as root, then the test user
# ($CKSHIM_TEST_USER) runs C test programs through test_progs.sh in it: a
# tree with process groups and sessions (tree_groups: a session read as 0
# was taken for "no session", and the restore failed with EPERM), zombies
# in groups (tree_zombie_groups), and a program that made itself not
# dumpable (pattrs: its namespace was unreadable, and coord looked for its
# socket under the name it has outside namespaces), and a terminal session
# inside the tree (tree_pty_session: a pseudo-terminal's master in one
# process, the session it is the controlling terminal of in others).
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
USER_NAME=${CKSHIM_TEST_USER:-ckshimtest}
PROGS="tree_groups tree_zombie_groups pattrs tree_pty_session"

skip() {
    echo "SKIP container_pidns: $*"
    exit 0
}
[ "$(id -u)" -eq 0 ] || skip "needs root to make a pid namespace without a user namespace (tests/run.sh runs it as root)"
if ! id -u "$USER_NAME" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /bin/bash "$USER_NAME" \
        2>/dev/null || skip "cannot create the test user $USER_NAME"
fi
unshare --pid --fork --mount-proc true 2>/dev/null || skip "unshare --pid fails here"

T=$(mktemp -d /tmp/ckshim-container.XXXXXX)
chmod 755 "$T"
. "$HERE/lib.sh"
trap ck_cleanup EXIT

# the user's own copy (the checkout may be in a directory only root reads)
mkdir -p "$T/build/tests/progs" "$T/tests/integration"
cp "$B/coord" "$B/libshim.so" "$T/build/" || { echo "FAIL container_pidns_setup: no coord or libshim.so in $B"; exit 0; }
cp "$B"/ckshim-restore* "$T/build/" 2>/dev/null
for p in $PROGS; do cp "$B/tests/progs/$p" "$T/build/tests/progs/"; done
cp "$HERE/test_progs.sh" "$T/tests/integration/"
chown -R "$USER_NAME:" "$T"

unshare --pid --fork --mount-proc \
    setpriv --reuid "$USER_NAME" --regid "$(id -g "$USER_NAME")" --init-groups \
    env -i HOME="$T" PATH=/usr/local/bin:/usr/bin:/bin \
    bash "$T/tests/integration/test_progs.sh" "$T/build" $PROGS >"$T/out" 2>&1 </dev/null
for p in $PROGS; do
    if grep -q "^PASS $p" "$T/out"; then
        pass "${p}_in_container_pidns"
    else
        fail "${p}_in_container_pidns" "$(grep -A12 "^FAIL $p" "$T/out" | tr '\n' ' ' | cut -c1-600)"
    fi
done
