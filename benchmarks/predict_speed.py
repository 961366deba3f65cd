"""Prediction time of a 512x512 image for the segmentation models (target: <= 1 s on a CPU).

Each model is saved with random weights at its default width to a temporary
checkpoint and loaded through :class:`SegmentationModel` (the code behind
``napari-deepseg predict``). Two geometries are timed: the default (the image is
resized to the training size, ``--image-size``) and ``scale=1.0`` (the full
512x512 image goes through the network)::

    python benchmarks/predict_speed.py [--models unet,resnet34-unet,autoencoder] [--image-size 256]
        [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np


def main(argv=None) -> int:
    import torch

    from napari_deepseg.core.models.predict import SegmentationModel
    from napari_deepseg.core.models.training.checkpoint import save_checkpoint
    from napari_deepseg.core.models.training.networks import build_network
    from napari_deepseg.core.models.training.segmentation import segmentation_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="unet,resnet34-unet,autoencoder")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()[0]:.2f}, torch threads {torch.get_num_threads()}")
    image = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    for name in args.models.split(","):
        cfg = segmentation_config(name, args.image_size, 2, None, ())
        folder = save_checkpoint(tempfile.mkdtemp(), build_network(cfg).state_dict(), cfg)
        model = SegmentationModel(folder, device="cpu")
        for label, scale in ((f"resized to {args.image_size}", None), ("full 512x512 (scale 1)", 1.0)):
            model.predict(image, scale=scale)  # warm-up
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                model.predict(image, scale=scale)
                times.append(time.perf_counter() - t0)
            print(f"{name:<14} width {cfg['width']:>3}  {label:<24} median {np.median(times) * 1000:7.0f} ms "
                  f"(min {min(times) * 1000:.0f})", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
