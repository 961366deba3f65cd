"""Whole-process time of ``napari-deepseg evaluate`` on N pairs of 512 x 512 masks.

Usage::

    python benchmarks/evaluate_speed.py [--pairs 1000] [--size 512] [--json OUT]

Writes N predicted masks (0/1 PNG) and N references (0/255 PNG with a
128 band to ignore) of random ellipses to a temporary folder, then runs the
real command line, ``napari-deepseg evaluate PRED GT --ignore 128 --json ...
--csv ...``, in a child process and reports its wall time and peak resident
memory (``ru_maxrss`` of the child; includes starting Python).
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
from PIL import Image


def ellipse(rng, size):
    yy, xx = np.mgrid[0:size, 0:size]
    cy, cx = rng.uniform(0.3, 0.7, 2) * size
    ry, rx = rng.uniform(0.1, 0.3, 2) * size
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2


def write_pairs(folder: Path, pairs: int, size: int) -> tuple:
    pred, gt = folder / "pred", folder / "gt"
    pred.mkdir()
    gt.mkdir()
    rng = np.random.default_rng(0)
    for i in range(pairs):
        d = ellipse(rng, size)
        truth = np.where(d <= 1.0, 255, 0).astype(np.uint8)
        truth[(d > 0.9) & (d < 1.1)] = 128
        shift = rng.integers(-8, 9, 2)
        p = np.roll(d <= 1.0, tuple(shift), axis=(0, 1)).astype(np.uint8)
        Image.fromarray(truth).save(gt / f"img{i:04d}.png")
        Image.fromarray(p).save(pred / f"img{i:04d}.png")
    return pred, gt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    exe = Path(sys.executable).with_name("napari-deepseg")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pred, gt = write_pairs(tmp, args.pairs, args.size)
        cmd = [str(exe), "evaluate", str(pred), str(gt), "--ignore", "128",
               "--json", str(tmp / "out.json"), "--csv", str(tmp / "out.csv")]
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if proc.returncode:
            sys.exit(proc.stderr)
        report = json.loads((tmp / "out.json").read_text())
    out = {"pairs": args.pairs, "size": args.size, "wall_s": round(wall, 2), "peak_mb": round(peak_mb),
           "iou": report["iou"], "evaluated": report["evaluated"], "load_before": load,
           "load_after": os.getloadavg()[0], "command": " ".join(["napari-deepseg"] + cmd[1:2] + ["PRED", "GT"]
                                                                  + cmd[4:6] + ["--json", "OUT.json", "--csv",
                                                                                "OUT.csv"])}
    print(proc.stdout.strip())
    print(json.dumps(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
