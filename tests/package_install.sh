#!/bin/bash
# package_install.sh - install the Debian package system-wide, use it, remove
# it (CI, as root, after `make deb`; the unprivileged checks of the package
# are in tests/integration/test_package.sh).
#
#   bash tests/package_install.sh build/ckshim_VERSION_amd64.deb
#
# dpkg -i; coord, man and pkg-config find what they should; dpkg -r leaves
# none of the package's files behind. Exit 0 when all held, 1 otherwise.

set -u
deb=${1:?usage: bash tests/package_install.sh FILE.deb}
[ "$(id -u)" = 0 ] || { echo "package_install: run as root" >&2; exit 1; }
if dpkg -s ckshim >/dev/null 2>&1; then
    echo "package_install: ckshim is installed already; not touching it" >&2
    exit 1
fi
fail() { echo "package_install: FAIL: $*" >&2; dpkg -r ckshim >/dev/null 2>&1; exit 1; }

dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb"
files=$(dpkg -L ckshim | while read -r f; do [ -f "$f" ] && echo "$f"; done)
/usr/bin/coord --version | grep -q ckshim || fail "coord --version"
man -w coord >/dev/null 2>&1 || fail "man -w coord"
man -w 7 ckshim >/dev/null 2>&1 || fail "man -w 7 ckshim"
man -w 3 ckshim_register_hook >/dev/null 2>&1 || fail "man -w 3 ckshim_register_hook"
pkg-config --cflags ckshim >/dev/null || fail "pkg-config ckshim"
[ -x /usr/lib/ckshim/ckshim-restore ] && [ -f /usr/lib/ckshim/libshim.so ] || fail "/usr/lib/ckshim"
dpkg -r ckshim >/dev/null || fail "dpkg -r"
left=""
for f in $files; do
    [ -e "$f" ] && left="$left $f"
done
[ -z "$left" ] || { echo "package_install: FAIL: left after dpkg -r:$left" >&2; exit 1; }
echo "package_install: $deb installs, works from /usr and removes cleanly ($(echo "$files" | wc -l) files)"
