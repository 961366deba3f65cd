"""Whole-process time and peak memory of ``napari-deepseg segment`` on a large image.

Usage::

    python benchmarks/segment_large.py [--size 2048] [--features resnet50] [--photo | --mosaic 25] [--json OUT]

Writes a synthetic aerial scene of SIZE x SIZE pixels with its example
scribbles (``--photo``: a GrabCut photograph upscaled to SIZE x SIZE, texture
everywhere, strokes from its eroded mask, see ``_photos.py``) to a temporary folder, runs the real command line in a child
process and reports its wall time and peak resident memory (``ru_maxrss`` of
the child). ``resnet50`` uses randomly initialised weights saved to a file
(``--weights``): the compute is the same as with ImageNet weights.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from napari_deepseg.samples import aerial_sample  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--features", default="resnet50")
    ap.add_argument("--photo", action="store_true", help="an upscaled photograph instead of the aerial scene")
    ap.add_argument("--mosaic", type=int, default=0, metavar="MP",
                    help="a mosaic of Berkeley photos of MP megapixels (1000² tiles) instead (--size is ignored)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        truth = None
        if args.mosaic:
            from _photos import photo_mosaic

            image, truth, scribbles = photo_mosaic(int(round(args.mosaic**0.5)))
            args.size = image.shape[0]
        elif args.photo:
            from _photos import upscaled_photo

            image, truth, scribbles = upscaled_photo(args.size * args.size / 1e6, square=True)
        else:
            image, scribbles = aerial_sample(shape=(args.size, args.size))
        Image.fromarray(image).save(tmp / "image.png")
        Image.fromarray(scribbles.astype(np.uint8)).save(tmp / "scribbles.png")
        cmd = [sys.executable, "-m", "napari_deepseg.cli", "segment", str(tmp / "image.png"),
               "--scribbles", str(tmp / "scribbles.png"), "-o", str(tmp / "mask.png"), "--features", args.features]
        if args.features == "resnet50":
            import torch
            from torchvision.models import resnet50

            torch.save(resnet50(weights=None).state_dict(), tmp / "resnet50-random.pth")
            cmd += ["--weights", str(tmp / "resnet50-random.pth"), "--device", "cpu"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if proc.returncode:
            sys.exit(f"segment failed: {proc.stderr.strip()}")
        mask = np.asarray(Image.open(tmp / "mask.png"))
    kind = "mosaic" if args.mosaic else "photo" if args.photo else "aerial"
    result = {"size": args.size, "features": args.features, "image": kind,
              "wall_s": wall, "peak_rss_mb": peak_mb,
              "object_fraction": float((mask == 1).mean()), "cli_report": proc.stderr.strip()}
    if truth is not None:
        result["iou"] = float(((mask == 1) & truth).sum() / max(1, ((mask == 1) | truth).sum()))
    iou_text = f", IoU {result['iou']:.3f}" if "iou" in result else ""
    print(f"{kind} {args.size}x{args.size} {args.features}: {wall:.1f} s, peak {peak_mb:.0f} MB{iou_text} "
          f"({proc.stderr.strip()})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
