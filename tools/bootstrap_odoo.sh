#!/usr/bin/env bash
# Builds a Python environment with Odoo 18.0 for this addon, once per user.
#
#   tools/bootstrap_odoo.sh            build it unless a good one is there; print its python
#   OWM_ODOO_SOURCE=/path/odoo-18.0-src.tar.xz tools/bootstrap_odoo.sh
#
# run.sh, run-tests.sh and .ci/run call it when no Python on this machine imports
# Odoo 18.0. What it builds lives outside the checkout, so every clone and every CI
# run of this user shares it:
#
#   ${XDG_DATA_HOME:-~/.local/share}/open_workshop_mqtt/
#       odoo-18.0 -> build-<stamp>     the finished environment (a symlink, set last)
#       build-<stamp>/recipe           which recipe built it (OWM_RECIPE, tools/odoo_env.sh)
#       build-<stamp>/venv             the virtual environment
#       build-<stamp>/odoo             the Odoo 18.0 source (odoo-bin, odoo/, addons/)
#       build-<stamp>.log              what each step printed
#
# The source comes from OWM_ODOO_SOURCE (a source tree, a .tar.xz / .tar.gz, or a
# git URL), else from the official repository's 18.0 branch (a shallow clone).
# A build happens in its own folder and becomes the environment only when every
# step passed: a failed or interrupted build is never mistaken for a good one.
set -euo pipefail

ADDON_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=tools/odoo_env.sh
. "$ADDON_ROOT/tools/odoo_env.sh"
CURRENT="$OWM_ODOO_ENV"
SOURCE="${OWM_ODOO_SOURCE:-https://github.com/odoo/odoo.git}"

say() { echo "bootstrap: $*" >&2; }

owm_env_python && exit 0

mkdir -p "$OWM_DATA"
# One build at a time per user: a second caller waits, then finds the first one's result.
exec 9>"$OWM_DATA/bootstrap.lock"
if ! flock -n 9; then
    say "another build is running; waiting for it (up to 60 min)"
    flock -w 3600 9 || { say "gave up waiting for $OWM_DATA/bootstrap.lock"; exit 1; }
    owm_env_python && exit 0
fi

STAMP="$(date +%Y%m%d-%H%M%S)-$$"
BUILD="$OWM_DATA/build-$STAMP"
LOG="$OWM_DATA/build-$STAMP.log"
# Leftovers of earlier failed or replaced builds go now; the current one stays.
keep="$(readlink "$CURRENT" 2>/dev/null || true)"
for old in "$OWM_DATA"/build-*; do
    [ -e "$old" ] || continue
    case "$old" in "$OWM_DATA/$keep" | "$OWM_DATA/$keep.log") continue ;; esac
    rm -rf "$old"
done
mkdir -p "$BUILD"
: >"$LOG"
finished=0
on_exit() { [ "$finished" = 1 ] || rm -rf "$BUILD"; }
trap on_exit EXIT

STEP=""
START=$SECONDS
step() {
    STEP="$1"
    say "[$((SECONDS - START))s] $1"
    echo "=== $1" >>"$LOG"
}
fail() {
    say "FAILED at step '$STEP' (log: $LOG)"
    tail -15 "$LOG" | sed 's/^/    /' >&2
    exit 1
}
run() { "$@" >>"$LOG" 2>&1 || fail; }

say "no Python here imports Odoo 18.0 (or its environment is of an older recipe): building one in $OWM_DATA (a few minutes, once)"

step "choosing a base Python (3.11 or 3.12, with venv)"
# CPython 3.11.0 to 3.11.7 can fail a parse in one thread while another parses
# ("SystemError: AST constructor recursion depth mismatch", CPython gh-106905,
# fixed in 3.11.8): Odoo's threaded HTTP server then answers a request with a
# 500. Such a Python is taken only when no other one is there.
BASE=""
FALLBACK=""
if [ -n "${OWM_BASE_PYTHON:-}" ]; then
    candidates=("$OWM_BASE_PYTHON") # the one asked for, whatever its version
else
    candidates=(python3.12 python3.11 python3
        "${HOME:-/root}"/.pyenv/versions/3.12*/bin/python3
        "${HOME:-/root}"/.pyenv/versions/3.11*/bin/python3 /usr/bin/python3)
fi
for candidate in "${candidates[@]}"; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    version="$("$candidate" -c "import sys, venv, ensurepip; v = sys.version_info; assert (3, 11) <= v[:2] <= (3, 12); print(v[0], v[1], v[2])" 2>/dev/null)" || continue
    if [ -n "${OWM_BASE_PYTHON:-}" ] || ! [[ "$version" =~ ^3\ 11\ [0-7]$ ]]; then
        BASE="$(command -v "$candidate")"
        break
    fi
    [ -n "$FALLBACK" ] || FALLBACK="$(command -v "$candidate")"
done
if [ -z "$BASE" ] && [ -n "$FALLBACK" ]; then
    BASE="$FALLBACK"
    say "only CPython 3.11.0-3.11.7 found ($BASE): it has a rare thread-safety bug (gh-106905); 3.11.8 or 3.12 is better"
fi
[ -n "$BASE" ] || {
    STEP="choosing a base Python"
    if [ -n "${OWM_BASE_PYTHON:-}" ]; then
        say "OWM_BASE_PYTHON=$OWM_BASE_PYTHON is not a Python 3.11 or 3.12 with the venv module"
    else
        say "no Python 3.11 or 3.12 with the venv module found (Debian: apt-get install python3-venv; Odoo 18 allows 3.10 too, but its pinned gevent does not build there from PyPI)"
    fi
    exit 1
}
echo "base python: $BASE ($("$BASE" --version 2>&1))" >>"$LOG"

step "getting the Odoo 18.0 source from $SOURCE"
case "$SOURCE" in
    *.tar.xz | *.tar.gz | *.tgz)
        [ -f "$SOURCE" ] || { echo "no such file: $SOURCE" >>"$LOG"; fail; }
        mkdir -p "$BUILD/unpack"
        run tar -xf "$SOURCE" -C "$BUILD/unpack"
        top="$(find "$BUILD/unpack" -mindepth 1 -maxdepth 2 -name odoo-bin -printf '%h\n' | head -1)"
        [ -n "$top" ] || { echo "no odoo-bin in $SOURCE" >>"$LOG"; fail; }
        run mv "$top" "$BUILD/odoo"
        rm -rf "$BUILD/unpack"
        ;;
    *://* | git@*)
        run git clone --depth 1 --branch 18.0 --single-branch "$SOURCE" "$BUILD/odoo"
        ;;
    *)
        [ -f "$SOURCE/odoo-bin" ] || { echo "not an Odoo source tree (no odoo-bin): $SOURCE" >>"$LOG"; fail; }
        run cp -a "$SOURCE/." "$BUILD/odoo/"
        ;;
esac
grep -q "version_info = (18, 0" "$BUILD/odoo/odoo/release.py" ||
    { echo "the source is not Odoo 18.0: $(grep -m1 '^version_info' "$BUILD/odoo/odoo/release.py")" >>"$LOG"; fail; }

step "system libraries the Python packages compile against"
need=()
for pkg in libpq-dev libldap2-dev libsasl2-dev; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
    else
        say "missing Debian packages ${need[*]}: install them (sudo apt-get install ${need[*]}) and run again"
        exit 1
    fi
fi

step "creating the virtual environment"
run "$BASE" -m venv "$BUILD/venv"
VPY="$BUILD/venv/bin/python"
# The gevent (websocket) process of a prefork server resolves gevent's plugins
# with pkg_resources; the setuptools a venv starts with (65) cannot find
# distributions whose metadata folder has a normalized name (zope_interface).
run "$VPY" -m pip install --disable-pip-version-check -U "setuptools<80"

step "installing Odoo's requirements (the longest step)"
# cbor2 5.4.2 builds from source and needs setuptools<80 in its build environment;
# PIP_CONSTRAINT reaches pip's isolated build environments, a plain -c does not.
printf 'setuptools<80\n' >"$BUILD/constraints.txt"
run env PIP_CONSTRAINT="$BUILD/constraints.txt" PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$VPY" -m pip install -r "$BUILD/odoo/requirements.txt"

step "making Odoo importable and the addon's requirements"
run "$VPY" -c "import site, sys; open(site.getsitepackages()[0] + '/odoo-src.pth', 'w').write(sys.argv[1] + '\n')" \
    "$BUILD/odoo"
run env PIP_CONSTRAINT="$BUILD/constraints.txt" PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$VPY" -m pip install -r "$ADDON_ROOT/requirements.txt"

step "checking the environment"
run "$VPY" -c "import odoo.release as r, odoo.addons.base, psycopg2, lxml, gevent, paho.mqtt; assert r.version_info[0] == 18; print(r.version)"
# What a prefork server's websocket process does first (gevent's monkey patching).
run "$VPY" "$BUILD/odoo/odoo-bin" gevent --version
echo "$OWM_RECIPE" >"$BUILD/recipe"

# Done: point the environment at this build in one atomic rename.
ln -sfn "build-$STAMP" "$OWM_DATA/odoo-18.0.new"
mv -T "$OWM_DATA/odoo-18.0.new" "$CURRENT"
finished=1
say "[$((SECONDS - START))s] ready: $CURRENT/venv/bin/python (log: $LOG)"
[ -n "$keep" ] && rm -rf "${OWM_DATA:?}/$keep" "${OWM_DATA:?}/$keep.log"
echo "$CURRENT/venv/bin/python"
