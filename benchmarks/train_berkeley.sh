#!/usr/bin/env bash
# Train on Berkeley (100 object masks), test on GrabCut (50 images, 128 = unknown band ignored),
# with the command line only: napari-deepseg train / predict / evaluate.
#
#   MODELS="unet resnet34-unet autoencoder" EPOCHS=30 SIZE=128 [WIDTH=16] THREADS=1 bash benchmarks/train_berkeley.sh
#
# Results: $OUT/<model>.json (mean scores of `evaluate`) and the per-epoch lines on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/datasets}
OUT=${OUT:-/tmp/train-berkeley}
EPOCHS=${EPOCHS:-30}
SIZE=${SIZE:-128}
THREADS=${THREADS:-1}
BIN=${BIN:-.venv/bin/napari-deepseg}
for model in ${MODELS:-unet resnet34-unet autoencoder}; do
    extra=()
    if [ "$model" = resnet34-unet ]; then extra=(--encoder-weights "${ENCODER:-auto}"); fi
    if [ -n "${WIDTH:-}" ]; then extra+=(--width "$WIDTH"); fi
    rm -rf "$OUT/$model" "$OUT/pred-$model"
    echo "== $model (load $(cut -d' ' -f1 /proc/loadavg))"
    start=$(date +%s)
    "$BIN" train "$model" "$DATA/berkeley" -o "$OUT/$model" --image-size "$SIZE" --epochs "$EPOCHS" \
        --batch-size 8 --lr 1e-3 --patience "$EPOCHS" --threads "$THREADS" "${extra[@]}"
    echo "   trained in $(( $(date +%s) - start )) s"
    "$BIN" predict "$OUT/$model" "$DATA/grabcut/images" -o "$OUT/pred-$model" --threads "$THREADS" -q
    "$BIN" evaluate "$OUT/pred-$model" "$DATA/grabcut/masks" --ignore 128 --json "$OUT/$model.json"
    echo "   (load $(cut -d' ' -f1 /proc/loadavg))"
done
