"""Segmentation models really learn: UNet and ResNet34-UNet (random init) on synthetic textured shapes.

Writes a synthetic dataset (one shape of a random colour on a striped, noisy
background per image, no distractor), trains each model with the project's loop
(the same code as ``napari-deepseg train``) until validation Dice reaches the
target or the time limit is over, then scores the best checkpoint on freshly
generated held-out images through :class:`SegmentationModel` (the code behind
``napari-deepseg predict``)::

    python benchmarks/train_synthetic.py [--models unet,resnet34-unet] [--n 400] [--size 64]
        [--epochs 40] [--minutes 10] [--no-augment] [--threads 1] [--json OUT.json]

Prints one line per epoch and a summary per model: best validation Dice, the time
at which it first reached ``--target`` (0.90), and held-out Dice / IoU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    import torch

    from napari_deepseg.core.evaluation.metrics import binary_scores
    from napari_deepseg.core.models.predict import SegmentationModel
    from napari_deepseg.core.utils.progress import Cancelled, CancelToken
    from napari_deepseg.core.models.training import (
        TrainOptions,
        find_samples,
        fit,
        get_trainable,
    )
    from napari_deepseg.core.models.training.synthetic import (
        shapes_sample,
        write_shapes_dataset,
    )

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="unet,resnet34-unet")
    ap.add_argument("--n", type=int, default=400, help="training + validation images")
    ap.add_argument("--size", type=int, default=64, help="image side (and training size)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--width", type=int, default=0, help="first-level channels (0 = the model's default)")
    ap.add_argument("--minutes", type=float, default=10.0, help="time limit per model")
    ap.add_argument("--target", type=float, default=0.90)
    ap.add_argument("--held-out", type=int, default=100)
    ap.add_argument("--no-augment", action="store_true",
                    help="no augmentation (the generator already gives unlimited varied images)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()[0]:.2f}, torch threads {torch.get_num_threads()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="train-synthetic-"))
    root = write_shapes_dataset(work / "shapes", n=args.n, size=args.size, seed=0, distractor=0.0)
    held = [shapes_sample(args.size, seed=10_000_000 + k, distractor=0.0) for k in range(args.held_out)]
    summary = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        params = {"image_size": args.size, "device": "cpu", "width": args.width or None,
                  "augment": not args.no_augment}
        if name == "resnet34-unet":
            params["encoder_weights"] = "none"
        trainable = get_trainable(name, **params)
        token, t0, reached = CancelToken(), time.perf_counter(), [None]

        def progress(rep, t0=t0, token=token, reached=reached):
            elapsed = time.perf_counter() - t0
            if reached[0] is None and rep.val["dice"] >= args.target:
                reached[0] = (rep.epoch, elapsed)
            print(f"{rep.line()} [{elapsed:.0f} s]", flush=True)
            if elapsed > args.minutes * 60:
                token.cancel()

        options = TrainOptions(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.epochs,
                               schedule="cosine")
        try:
            result = fit(trainable, find_samples(root), work / name, options, progress=progress, cancel=token)
            best = (result.best_score, result.best_epoch)
        except Cancelled:
            state = json.loads((work / name / "state.json").read_text())
            best = (state["best_score"], state["best_epoch"])
        seconds = time.perf_counter() - t0
        model = SegmentationModel(work / name, device="cpu")
        scores = [binary_scores(model.predict(img), mask > 0) for img, mask in held]
        row = {"model": name, "best_val_dice": best[0], "best_epoch": best[1], "seconds": round(seconds, 1),
               "reached_target_epoch": reached[0][0] if reached[0] else None,
               "reached_target_seconds": round(reached[0][1], 1) if reached[0] else None,
               "held_out_dice": float(np.mean([s["dice"] for s in scores])),
               "held_out_iou": float(np.mean([s["iou"] for s in scores])),
               "width": model.config["width"], "n": args.n, "size": args.size, "augment": not args.no_augment,
               "load_average": round(os.getloadavg()[0], 2)}
        summary.append(row)
        print(json.dumps(row), flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
