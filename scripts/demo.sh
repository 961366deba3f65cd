#!/usr/bin/env bash
# Run the main job: set up ./.venv if needed, then segment the bundled cat sample offline
# and write image | scribbles | result side by side to demo.png.
#
# Usage: bash scripts/demo.sh [napari-deepseg demo options, e.g. -o out.png --sample aerial]
# See `.venv/bin/napari-deepseg demo --help`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
if [ "$#" -eq 0 ]; then
    set -- -o demo.png
fi
exec .venv/bin/napari-deepseg demo "$@"
