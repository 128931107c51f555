#!/usr/bin/env bash
# install-deps.sh - install the Debian/Ubuntu packages ckshim needs to
# build, test and run its demo, if any are missing (slurm-wlm and munge:
# tests/integration/test_slurm.sh starts a one-node Slurm cluster).
#
#   bash scripts/install-deps.sh [--check]
#
# Installs with apt-get (running `apt-get update` first, and only when
# something is missing), as root or through sudo. Quiet when everything is
# there. --check only reports what is missing (exit 1 if anything is).
# Exit status: 0 ok, 1 failure, 2 usage.

set -euo pipefail

PKGS=(build-essential pkg-config liblz4-dev lz4 libunwind-dev libcmocka-dev
      libxxhash-dev libhiredis-dev libsodium-dev redis-server redis-tools golang-go nodejs clang python3 util-linux
      passwd openssh-server openssh-client iproute2 dpkg-dev debhelper lintian bash-completion man-db
      slurm-wlm munge tmux tini)

die() {
    echo "install-deps: $*" >&2
    exit 1
}

check_only=0
case ${1:-} in
    "") ;;
    --check) check_only=1 ;;
    -h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "usage: bash scripts/install-deps.sh [--check]" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    die "this is not a Debian/Ubuntu system (no dpkg-query/apt-get); install these by hand: ${PKGS[*]}"
fi

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ $check_only -eq 1 ]; then
    echo "install-deps: missing: ${missing[*]}"
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        die "missing packages: ${missing[*]}; run as root: apt-get update && apt-get install -y ${missing[*]}"
    fi
fi

echo "install-deps: installing ${missing[*]}"
log=$(mktemp "${TMPDIR:-/tmp}/ckshim-deps.XXXXXX")
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get update -q >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "apt-get update failed (output above)"
fi
if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "apt-get install ${missing[*]} failed (output above)"
fi

still=()
for p in "${missing[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || still+=("$p")
done
[ ${#still[@]} -eq 0 ] || die "still missing after apt-get install: ${still[*]}"
echo "install-deps: done"
