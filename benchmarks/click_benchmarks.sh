#!/usr/bin/env bash
# Regenerate every click/scribble benchmark figure of docs/benchmarks.md.
#
# Usage: bash benchmarks/click_benchmarks.sh [DATASETS_DIR]   (default ../shared/datasets)
#
# Writes docs/benchmarks/clicks_<dataset>_<method>_<features>.json,
# docs/benchmarks/scribbles_<set>_<features>.json and docs/images/clicks_<dataset>.png.
# Runs one benchmark at a time so that the seconds per click are those of a quiet CPU.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
data="${1:-../shared/datasets}"
bench=(.venv/bin/napari-deepseg benchmark)
out=docs/benchmarks
mkdir -p "$out" docs/images

for ds in grabcut berkeley; do
    "${bench[@]}" "$data/$ds" --method graphcut --features classic --json "$out/clicks_${ds}_graphcut_classic.json"
    "${bench[@]}" "$data/$ds" --method points-graphcut --features classic \
        --json "$out/clicks_${ds}_points-graphcut_classic.json"
    .venv/bin/python benchmarks/plot_clicks.py "$out/clicks_${ds}_graphcut_classic.json" \
        "$out/clicks_${ds}_points-graphcut_classic.json" --dataset "$ds" -o "docs/images/clicks_${ds}.png"
done
for set in scribbles-set-1 scribbles-set-2; do
    "${bench[@]}" "$data/grabcut" --protocol scribbles --scribbles-dir "$set" --features classic \
        --json "$out/scribbles_${set}_classic.json"
done
