"""PointCLIP really learns: train a tiny CLIP configuration on synthetic shapes, score held-out images.

Writes a synthetic dataset (shapes on textured backgrounds, half with a
distractor shape), trains ``pointclip`` on it with the project's loop (the same
code as ``napari-deepseg train pointclip``) on a random tiny CLIP vision model,
then scores the best checkpoint through the ``pointclip`` click method on freshly
generated held-out images from one positive click (the protocol's first click)::

    python benchmarks/train_pointclip.py [--n 300] [--size 64] [--epochs 40] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from napari_deepseg.core.evaluation.benchmark import next_click
    from napari_deepseg.core.prompts.base import get_click_method
    from napari_deepseg.core.evaluation.metrics import iou
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
    ap.add_argument("--n", type=int, default=300, help="training + validation images")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--test", type=int, default=100, help="held-out test images")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-3)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="pointclip-bench-"))
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=args.size, patch_size=8)
    torch.manual_seed(0)
    CLIPVisionModel(cfg).save_pretrained(work / "tiny-clip")
    root = write_shapes_dataset(work / "shapes", n=args.n, size=args.size, seed=0)
    print(f"load {os.getloadavg()[0]:.2f}; {args.n} images {args.size}x{args.size}, tiny CLIP "
          f"(hidden 32, 2 layers, patch 8), torch threads {args.threads}", flush=True)
    t0 = time.perf_counter()
    trainer = get_trainable("pointclip", backbone=str(work / "tiny-clip"), image_size=args.size, device="cpu")
    result = fit(trainer, find_samples(root), work / "ckpt",
                 TrainOptions(epochs=args.epochs, batch_size=8, lr=args.lr, patience=args.patience),
                 progress=lambda r: print(r.line(), flush=True))
    train_s = time.perf_counter() - t0
    method = get_click_method("pointclip", checkpoint=str(work / "ckpt"), device="cpu")
    ious = []
    for k in range(args.test):
        image, mask = shapes_sample(args.size, seed=10_000_000 + k)  # never seen in training
        truth = (mask > 0).astype(np.uint8)
        method.set_image(image)
        click = next_click(np.zeros(truth.shape, bool), truth, np.zeros(truth.shape, bool), ignore=None)
        ious.append(iou(method.predict([click]), truth))
    print(f"trained {train_s:.0f} s ({len(result.history)} epochs, best epoch {result.best_epoch}, "
          f"val IoU {result.best_score:.3f}); held-out mean IoU from one positive click: {np.mean(ious):.3f} "
          f"(median {np.median(ious):.3f}, n={args.test})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
