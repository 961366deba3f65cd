#!/usr/bin/env bash
# Set up a development environment for napari-deepseg in ./.venv (idempotent).
#
# Usage: bash scripts/setup.sh [--testing]
#
#   --testing   also install the test extra (pytest, pytest-qt, PyQt6)
#
# What it does, skipping every step that is already done:
#   1. as root on Debian/Ubuntu: installs the system libraries napari needs to open a
#      window (OpenGL, xcb, Xvfb for headless tests) with one `apt-get update` + install;
#      as another user it only names the missing packages;
#   2. creates ./.venv with `python3 -m venv` (set PYTHON=... to use another interpreter);
#   3. runs `pip install -e ".[testing]"` (or `-e .`), and again only when pyproject.toml
#      or the chosen extra changed since the last successful install.
#
# Environment: PYTHON (default python3), NAPARI_DEEPSEG_SKIP_APT=1 to skip step 1,
# NAPARI_DEEPSEG_REINSTALL=1 to run step 3 even when nothing changed.
# The first install downloads PyTorch from PyPI with its CUDA libraries (which also run on CPU-only
# machines): the finished .venv takes about 7 GB on disk (`du -sh .venv`: 6.6G with the testing extra).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

EXTRA=""
for arg in "$@"; do
    case "$arg" in
        --testing) EXTRA="testing" ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown option '$arg' (use --testing)" >&2; exit 2 ;;
    esac
done

say() { echo "setup.sh: $*" >&2; }

APT_PACKAGES=(
    xvfb xauth libgl1-mesa-dri libglx-mesa0 libegl1 libgl1 libxkbcommon-x11-0
    libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
    libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libdbus-1-3
    libfontconfig1 libxkbcommon0
)

apt_missing() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
    done
}

APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. system libraries -------------------------------------------------------------------
if [ "${NAPARI_DEEPSEG_SKIP_APT:-0}" != 1 ] && command -v dpkg-query >/dev/null 2>&1; then
    mapfile -t missing < <(apt_missing "${APT_PACKAGES[@]}")
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            say "installing system packages: ${missing[*]}"
            apt_install "${missing[@]}"
        else
            say "warning: missing system packages (napari and the tests need them):"
            say "  sudo apt-get install ${missing[*]}"
        fi
    fi
fi

# 2. virtual environment ----------------------------------------------------------------
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
    command -v "$PYTHON" >/dev/null 2>&1 || { say "error: '$PYTHON' not found; install Python >= 3.10"; exit 1; }
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || { say "error: $("$PYTHON" --version 2>&1) is too old; napari-deepseg needs Python >= 3.10"; exit 1; }
    if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            say "installing python3-venv"
            apt_install python3-venv
        else
            say "error: '$PYTHON -m venv' is unavailable; install the python3-venv package"; exit 1
        fi
    fi
    say "creating .venv with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
fi

# 3. the package, editable --------------------------------------------------------------
STAMP="$VENV/.napari-deepseg-setup"
HASH="$(sha256sum pyproject.toml | cut -d' ' -f1)"
stamp_is() { [ -f "$STAMP" ] && grep -qx "$1 $HASH" "$STAMP"; }
if [ "${NAPARI_DEEPSEG_REINSTALL:-0}" != 1 ] && [ -x "$VENV/bin/napari-deepseg" ] \
        && { stamp_is testing || { [ -z "$EXTRA" ] && stamp_is none; }; }; then
    exit 0  # installed from this pyproject.toml already (the testing extra serves both)
fi
target="."
[ -n "$EXTRA" ] && target=".[${EXTRA}]"
say "pip install -e \"$target\" (the first time downloads PyTorch: about 7 GB on disk with its CUDA libraries)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$target"
echo "${EXTRA:-none} $HASH" > "$STAMP"
say "ready: $("$VENV/bin/python" -c 'import napari_deepseg, sys; print(f"napari-deepseg {napari_deepseg.__version__}, Python {sys.version.split()[0]}")')"
