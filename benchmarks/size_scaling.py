"""Time and peak memory of the weight-free default against image size (issue 5).

Usage::

    python benchmarks/size_scaling.py [--mp 1 4 16 25] [--features classic] [--json OUT]
    python benchmarks/size_scaling.py --mp 1 4 --single-level     # + IoU with the exact cut

For each size (in megapixels, a square image) the parent writes a synthetic
aerial scene (``samples.aerial_sample``) and its scribbles to ``.npy`` files,
then runs one child process per size that:

1. loads the uint8 image (this resident memory is the baseline),
2. ``SegmentationSession(features).set_image(image)`` (timed),
3. ``segment(scribbles)`` — the first result (timed),
4. a later update: one more background stroke, ``segment`` again (timed).

The child reports its resident memory high-water mark (``VmHWM``) after each
step and its whole-process ``ru_maxrss``. ``--single-level`` also solves the
exact full-resolution cut of step 3 (``multilevel=False``) and reports the IoU
of the two masks (slow and memory-hungry for big images: small sizes only).
Run ``uptime`` beside it: the machine is shared.
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


def _hwm_mb() -> float:
    """Peak resident memory of this process so far (``VmHWM``), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(args) -> None:
    from napari_deepseg.core import SegmentationSession
    from napari_deepseg.core.metrics import iou

    image = np.load(args.child_image)
    scribbles = np.load(args.child_scribbles)
    out = {"rows": image.shape[0], "cols": image.shape[1], "loaded_mb": _hwm_mb()}
    session = SegmentationSession(args.features)
    t0 = time.perf_counter()
    session.set_image(image)
    out["features_s"] = time.perf_counter() - t0
    out["after_features_mb"] = _hwm_mb()
    t0 = time.perf_counter()
    first = session.segment(scribbles)
    out["first_cut_s"] = time.perf_counter() - t0
    out["first_result_s"] = out["features_s"] + out["first_cut_s"]
    out["after_first_cut_mb"] = _hwm_mb()
    more = scribbles.copy()
    r = image.shape[0] // 2
    more[r : r + 3, : image.shape[1] // 8] = np.where(more[r : r + 3, : image.shape[1] // 8] == 0, 2,
                                                       more[r : r + 3, : image.shape[1] // 8])
    t0 = time.perf_counter()
    session.segment(more)
    out["update_s"] = time.perf_counter() - t0
    out["after_update_mb"] = _hwm_mb()
    out["object_fraction"] = float((first == 1).mean())
    if args.single_level:
        t0 = time.perf_counter()
        exact = session.segment(scribbles, multilevel=False)
        out["single_level_s"] = time.perf_counter() - t0
        out["iou_multilevel_vs_single"] = float(iou(first == 1, exact == 1))
        out["after_single_level_mb"] = _hwm_mb()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mp", type=float, nargs="+", default=[1, 4, 16, 25], help="sizes in megapixels")
    ap.add_argument("--features", default="classic")
    ap.add_argument("--single-level", action="store_true", help="also the exact cut and the IoU between the two")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child-image", help=argparse.SUPPRESS)
    ap.add_argument("--child-scribbles", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_image:
        return _child(args)

    from napari_deepseg.samples import aerial_sample

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for mp in args.mp:
            side = int(round((mp * 1e6) ** 0.5))
            image, scribbles = aerial_sample(shape=(side, side))
            img_path, scr_path = Path(tmp) / "image.npy", Path(tmp) / "scribbles.npy"
            np.save(img_path, image)
            np.save(scr_path, scribbles)
            del image, scribbles
            cmd = [sys.executable, __file__, "--features", args.features, "--child-image", str(img_path),
                   "--child-scribbles", str(scr_path)] + (["--single-level"] if args.single_level else [])
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            load = os.getloadavg()
            if proc.returncode:
                print(f"{side}x{side}: failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}")
                results.append({"side": side, "mp": mp, "failed": proc.stderr.strip()[-400:]})
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row.update(side=side, mp=side * side / 1e6, process_wall_s=wall, load_after=load)
            results.append(row)
            extra = (f", single-level {row['single_level_s']:.1f} s, IoU {row['iou_multilevel_vs_single']:.4f}"
                     if args.single_level else "")
            print(f"{side}x{side} ({row['mp']:.1f} MP) {args.features}: features {row['features_s']:.1f} s, "
                  f"first cut {row['first_cut_s']:.1f} s (first result {row['first_result_s']:.1f} s), "
                  f"update {row['update_s']:.2f} s; peak {row['peak_rss_mb']:.0f} MB "
                  f"(loaded {row['loaded_mb']:.0f}, after features {row['after_features_mb']:.0f}, "
                  f"after first cut {row['after_first_cut_mb']:.0f}){extra}; load {load[0]:.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
