#!/usr/bin/env bash
# Run the test-suite: set up ./.venv with the testing extra if needed, then run pytest
# under a virtual X server (napari's widget tests open a real viewer).
#
# Usage: bash scripts/test.sh [pytest options, e.g. -x -k widget tests/test_session.py]
#
# Exits with pytest's status; "no tests collected" (pytest's 5) counts as a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh --testing

if command -v xvfb-run >/dev/null 2>&1; then
    run=(xvfb-run -a)
elif [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    run=()  # no Xvfb, but a display is there: use it
else
    echo "test.sh: error: xvfb-run not found and no display; install the 'xvfb' and 'xauth' packages" >&2
    exit 1
fi

status=0
"${run[@]}" .venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test.sh: error: pytest collected no tests" >&2
fi
exit "$status"
