#!/bin/bash
# test_package.sh - the Debian package (make deb), used from its installed
# paths only.
#
#   bash tests/integration/test_package.sh BUILD_DIR
#
# Takes BUILD_DIR/ckshim_*.deb (CI builds it with `make deb` before the
# tests; SKIP when there is none), unpacks it into a fresh directory tree
# (dpkg -x: no root needed) and checks, with nothing from the build tree on
# the way: the files are where the package says (coord in usr/bin, the shim
# and the restorer in usr/lib/ckshim, ckshim.h and ckshim.pc, the man pages
# and the bash completion); lintian finds no error; the man pages render
# and coord(1) names every option `coord help` lists (the two stay in
# step); pkg-config finds ckshim.h for a program that registers a hook;
# the installed coord runs a program, checkpoints it (--kill) and restores
# it, twice, and it goes on counting.
# Prints one "PASS name" / "FAIL name: why" line per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
deb=$(ls "$B"/ckshim_*.deb 2>/dev/null | tail -n 1)
[ -n "$deb" ] || { echo "SKIP package: no $B/ckshim_*.deb (run make deb first)"; exit 0; }
T=$(mktemp -d /tmp/ckshim-pkg.XXXXXX)
chmod 755 "$T"
. "$HERE/lib.sh"
trap ck_cleanup EXIT
R=$T/root
C=$R/usr/bin/coord
export CKSHIM_DIR=$T/ck CKSHIM_COUNTER=file:$T/counters

if dpkg -x "$deb" "$R" 2>"$T/err"; then pass package_unpacks; else fail package_unpacks; exit 0; fi
missing=""
for f in usr/bin/coord usr/lib/ckshim/libshim.so usr/lib/ckshim/ckshim-restore \
    usr/include/ckshim.h usr/share/pkgconfig/ckshim.pc usr/share/man/man1/coord.1.gz \
    usr/share/man/man7/ckshim.7.gz usr/share/man/man3/ckshim_register_hook.3.gz \
    usr/share/bash-completion/completions/coord usr/share/doc/ckshim/copyright; do
    [ -e "$R/$f" ] || missing="$missing $f"
done
[ -z "$missing" ] && pass package_files_in_place || fail package_files_in_place "missing:$missing"

if command -v lintian >/dev/null; then
    lintian "$deb" >"$T/lintian" 2>&1
    if grep -q '^E:' "$T/lintian"; then
        fail package_lintian_clean "$(grep '^E:' "$T/lintian" | head -3)"
    else
        pass package_lintian_clean
    fi
else
    echo "SKIP package_lintian_clean: lintian not installed"
fi

bad=""
for m in man1/coord.1 man7/ckshim.7 man3/ckshim_register_hook.3; do
    zcat "$R/usr/share/man/$m.gz" >"$T/page"
    out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$T/page" 2>&1 >/dev/null)
    [ -z "$out" ] || bad="$bad $m: $out"
done
[ -z "$bad" ] && pass package_man_pages_render || fail package_man_pages_render "$bad"

# every option `coord help CMD` shows is in coord(1)
zcat "$R/usr/share/man/man1/coord.1.gz" | sed 's/\\-/-/g; s/\\f[BIRP]//g' >"$T/coord.1.txt"
undocumented=""
for cmd in run checkpoint restore migrate list inspect keygen; do
    for o in $("$C" help "$cmd" | grep -oE -- '(^|[ [,])--[a-z][a-z0-9-]*' | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
        grep -qF -- "$o" "$T/coord.1.txt" || undocumented="$undocumented $cmd $o;"
    done
done
for cmd in $("$C" help | sed -n 's/^  coord \([a-z]*\) .*/\1/p'); do
    grep -q "^\.SS coord $cmd" <(zcat "$R/usr/share/man/man1/coord.1.gz") ||
        [ "$cmd" = help ] || undocumented="$undocumented command $cmd;"
done
[ -z "$undocumented" ] && pass man_coord_matches_help || fail man_coord_matches_help "not in coord(1):$undocumented"

# a program built against the installed header, through pkg-config
cat >"$T/hooked.c" <<'C'
#include <ckshim.h>
#include <stdio.h>
#include <unistd.h>
static int restores;
static int hook(int ev, void *arg) { if (ev == CKSHIM_EVENT_AFTER_RESTORE) restores++; return 0; }
int main(void)
{
    if (ckshim_try_register_hook(hook, NULL) < 0) { perror("hook"); return 1; }
    for (unsigned long i = 1;; i++) {
        printf("%lu restores=%d\n", i, restores);
        fflush(stdout);
        usleep(100000);
    }
}
C
if cc $(PKG_CONFIG_PATH=$R/usr/share/pkgconfig pkg-config --define-prefix --cflags ckshim) \
    -o "$T/hooked" "$T/hooked.c" 2>"$T/err"; then
    pass package_pkgconfig_header_builds
else
    fail package_pkgconfig_header_builds
fi

# run, checkpoint, restore, twice, with only the installed paths
"$C" run -- "$T/hooked" >"$T/out" 2>&1 &
P=$!
disown "$P" 2>/dev/null
PIDS+=("$P")
wait_for 5 grep -q "restores=0" "$T/out" || { fail package_run "no output: $(head -3 "$T/out")"; exit 0; }
# bash completion: commands, options from coord help, pids under the shim
if [ -r /usr/share/bash-completion/bash_completion ]; then
    cat >"$T/comp.sh" <<'SH'
. /usr/share/bash-completion/bash_completion
. "$1"
comp() {
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    COMPREPLY=(); _coord; echo "${COMPREPLY[*]}"
}
comp coord ch
comp coord restore --ad
comp coord checkpoint ""
SH
    out=$(PATH=$R/usr/bin:$PATH bash "$T/comp.sh" "$R/usr/share/bash-completion/completions/coord" 2>&1)
    if [ "$(sed -n 1p <<<"$out")" = checkpoint ] && [ "$(sed -n 2p <<<"$out")" = --adopt-stamp ] &&
        grep -qw "$P" <<<"$(sed -n 3p <<<"$out")"; then
        pass package_bash_completion
    else
        fail package_bash_completion "got: $(tr '\n' '|' <<<"$out")"
    fi
else
    echo "SKIP package_bash_completion: bash-completion not installed"
fi

ok=1
for round in 1 2; do
    "$C" checkpoint "$P" -o "$T/img" --kill 2>"$T/err" >/dev/null || { ok=0; break; }
    wait_for 5 gone "$P"
    before=$(tail -n 1 "$T/out" | cut -d' ' -f1)
    P=$(cd / && "$C" restore "$T/img" --detach 2>"$T/err") || { ok=0; break; }
    PIDS+=("$P")
    wait_for 5 grep -q "restores=$round" "$T/out" || { ok=0; break; }
    after=$(grep "restores=$round" "$T/out" | head -n 1 | cut -d' ' -f1)
    [ "$after" -eq $((before + 1)) ] || { ok=0; break; }
done
[ $ok -eq 1 ] && pass package_checkpoint_restore_twice ||
    fail package_checkpoint_restore_twice "round $round: $(tail -2 "$T/out" | tr '\n' ' ')"
exit 0
