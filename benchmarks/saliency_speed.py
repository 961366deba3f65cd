"""Speed and peak memory of VGG16 saliency maps: a 224 x 224 crop, and a large image tiled.

Usage::

    python benchmarks/saliency_speed.py [--mode guided] [--repeat 3] [--size 2048] [--json OUT]

1. In this process: the best of ``--repeat`` runs (after one warm-up) of
   :meth:`SaliencyModel.compute` on a 224 x 224 crop of scikit-image's
   *chelsea* (one forward and one backward pass of VGG16, top class).
2. In a child process: the real command line, ``napari-deepseg saliency
   IMAGE --mode MODE --weights W -o MAP.tif``, on a ``--size`` x ``--size``
   photo (chelsea tiled and resized), reporting wall time (whole process:
   start-up, loading 528 MB of weights, every tile) and peak resident memory
   (``ru_maxrss`` of the child).

Weights are random VGG16 weights (the compute is the same as ImageNet's),
saved to a temporary file and loaded through the plugin's loader.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def photo(size):
    from skimage import data, transform

    cat = data.chelsea()
    reps = (-(-size // cat.shape[0]), -(-size // cat.shape[1]), 1)
    big = np.tile(cat, reps)[:size * 2 // 2, :size * 2 // 2]
    return (transform.resize(big, (size, size), anti_aliasing=False) * 255).astype(np.uint8)


def main(argv=None):
    import torch
    import torchvision
    from PIL import Image

    from napari_deepseg.core.models.saliency import SaliencyModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="guided")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--tile", type=int, default=768)
    ap.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
    ap.add_argument("--skip-crop", action="store_true", help="only the large image")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    out = {"mode": args.mode, "precision": args.precision, "tile": args.tile, "threads": torch.get_num_threads(), "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = tmp / "vgg16-397923af.pth"
        torch.manual_seed(0)
        torch.save(torchvision.models.vgg16(weights=None).state_dict(), weights)
        model = SaliencyModel(weights=weights, device="cpu", precision=args.precision)
        model.load_model()
        from skimage import data

        crop = data.chelsea()[40:264, 100:324]
        model.compute(crop, mode=args.mode)
        times = []
        for _ in range(0 if args.skip_crop else args.repeat):
            t0 = time.perf_counter()
            model.compute(crop, mode=args.mode)
            times.append(time.perf_counter() - t0)
        out["crop_224_s"] = round(min(times), 3) if times else None
        del model
        Image.fromarray(photo(args.size)).save(tmp / "big.png")
        exe = Path(sys.executable).with_name("napari-deepseg")
        cmd = [str(exe), "saliency", str(tmp / "big.png"), "--mode", args.mode, "--weights", str(weights),
               "--device", "cpu", "--tile", str(args.tile), "--precision", args.precision, "-o", str(tmp / "map.tif")]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
        out["large_wall_s"] = round(time.perf_counter() - t0, 2)
        out["large_peak_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
        if proc.returncode:
            sys.exit(proc.stderr)
        out["large_stderr"] = proc.stderr.strip()
    out["large_size"] = args.size
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
