"""Time, peak memory and accuracy of the volume cut (issue 5, "Volumes and stacks").

Usage::

    python benchmarks/volume_3d.py                               # 256x512x512, modes 3d and planes
    python benchmarks/volume_3d.py --shape 64 128 128 --single-level --json OUT.json

The parent builds a synthetic uint8 volume plane by plane (a lumpy blob — the union
of three ellipsoids — of mean 150 on a textured background of mean 80, both with
Gaussian noise of standard deviation 20; voxel spacing 2 along z, 1 in-plane),
(``--colour``: three bands — the grey value, a band where the object is tinted, the
negative), its ground truth, and scribbles on three planes (object strokes inside the blob,
background strokes along the borders of those planes), and saves them as ``.npy``.
Then one child process per mode:

1. loads the volume (this resident memory is the baseline),
2. ``VolumeSession().set_image(volume, spacing=...)`` (timed),
3. ``segment(scribbles, mode=...)`` (timed),
4. reports ``VmHWM`` (the process's resident high-water mark, from ``/proc/self/status``)
   and the IoU of the object with the ground truth.

``--single-level`` (small volumes only: about 350 bytes per voxel) also solves the
volume coarse to fine (``multilevel=True``) and in one graph (``multilevel=False``) in
the ``3d`` child and reports both times and the IoU between the two cuts; with
``--coarsest VOXELS`` below the volume's size the coarse-to-fine cut has several levels.
Run ``uptime`` beside it: the machine is shared; the load average before and after
each child is in the output.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _memory import hwm_mb as _hwm_mb


def blob_truth(shape, z: int) -> np.ndarray:
    """Plane ``z`` of the ground truth: the union of three ellipsoids around the centre."""
    p, r, c = shape
    y, x = np.ogrid[:r, :c]
    out = np.zeros((r, c), bool)
    for (cz, cy, cx), (az, ay, ax) in (
        ((0.5, 0.5, 0.5), (0.30, 0.25, 0.25)),
        ((0.4, 0.35, 0.65), (0.18, 0.15, 0.20)),
        ((0.62, 0.68, 0.38), (0.20, 0.18, 0.14)),
    ):
        dz = ((z - cz * p) / (az * p)) ** 2
        if dz <= 1:
            out |= ((y - cy * r) / (ay * r)) ** 2 + ((x - cx * c) / (ax * c)) ** 2 <= 1 - dz
    return out


def make_volume(shape, seed: int = 0, colour: bool = False):
    """uint8 volume (``(*shape, 3)`` if ``colour``), bool truth and uint8 scribbles of ``shape`` (planes, rows, cols)."""
    rng = np.random.default_rng(seed)
    p, r, c = shape
    vol = np.empty(tuple(shape) + ((3,) if colour else ()), np.uint8)
    truth = np.empty(shape, bool)
    y, x = np.ogrid[:r, :c]
    for z in range(p):
        t = blob_truth(shape, z)
        texture = 25 * np.sin(2 * np.pi * (x / 37.0 + z / 51.0)) * np.cos(2 * np.pi * y / 29.0)
        plane = np.where(t, 150.0, 80.0 + texture) + rng.normal(0, 20, (r, c))
        if colour:  # the grey plane, a second band where the object is tinted, its negative
            vol[z, ..., 0] = np.clip(plane, 0, 255)
            vol[z, ..., 1] = np.clip(0.7 * plane + 40 * t, 0, 255)
            vol[z, ..., 2] = 255 - vol[z, ..., 0]
        else:
            vol[z] = np.clip(plane, 0, 255)
        truth[z] = t
    scribbles = np.zeros(shape, np.uint8)
    for z in (p // 2, int(p * 0.4), int(p * 0.62)):
        t = truth[z]
        rows = np.flatnonzero(t.any(axis=1))
        mid = rows[len(rows) // 2]
        cols = np.flatnonzero(t[mid])
        a, b = cols[0] + (cols[-1] - cols[0]) // 4, cols[-1] - (cols[-1] - cols[0]) // 4
        scribbles[z, mid - 1 : mid + 2, a:b] = 1
        w = max(2, r // 100)
        scribbles[z, w : 2 * w, w:-w] = 2
        scribbles[z, -2 * w : -w, w:-w] = 2
        scribbles[z, w:-w, w : 2 * w] = 2
        scribbles[z, w:-w, -2 * w : -w] = 2
    if (scribbles == 1)[~truth].any() or (scribbles == 2)[truth].any():
        raise RuntimeError("a synthetic stroke crosses the truth boundary")
    return vol, truth, scribbles


def _child(args) -> None:
    from napari_deepseg.core.cut import volume as volume_module
    from napari_deepseg.core.evaluation.metrics import iou
    from napari_deepseg.core.cut.volume import VolumeSession

    if args.coarsest:
        volume_module.COARSEST_VOXELS = args.coarsest
    folder = Path(args.child)
    vol = np.load(folder / "volume.npy")
    scribbles = np.load(folder / "scribbles.npy")
    truth = np.load(folder / "truth.npy", mmap_mode="r")
    out = {"shape": list(vol.shape[:3]), "colour": vol.ndim == 4, "mode": args.modes[0], "spacing": list(args.spacing),
           "loaded_mb": _hwm_mb()}
    session = VolumeSession()
    t0 = time.perf_counter()
    session.set_image(vol, spacing=tuple(args.spacing))
    out["set_image_s"] = time.perf_counter() - t0
    out["after_set_image_mb"] = _hwm_mb()
    t0 = time.perf_counter()
    mask = session.segment(scribbles, mode=args.modes[0])
    out["segment_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = _hwm_mb()
    out["iou_truth"] = float(iou(mask == 1, np.asarray(truth)))
    if args.single_level and args.modes[0] == "3d":
        t0 = time.perf_counter()
        multi = session.segment(scribbles, mode="3d", multilevel=True)
        out["multilevel_s"] = time.perf_counter() - t0
        out["levels"] = len(session._current.levels)
        t0 = time.perf_counter()
        exact = session.segment(scribbles, mode="3d", multilevel=False)
        out["single_level_s"] = time.perf_counter() - t0
        out["single_level_iou_truth"] = float(iou(exact == 1, np.asarray(truth)))
        out["iou_multilevel_vs_single"] = float(iou(multi == 1, exact == 1))
        out["peak_rss_with_single_level_mb"] = _hwm_mb()
    print(json.dumps(out))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[256, 512, 512], metavar=("PLANES", "ROWS", "COLS"))
    ap.add_argument("--spacing", type=float, nargs=3, default=[2.0, 1.0, 1.0], metavar=("Z", "Y", "X"))
    ap.add_argument("--colour", action="store_true", help="a (planes, rows, cols, 3) colour volume")
    ap.add_argument("--modes", nargs="+", default=["3d", "planes"], choices=("3d", "planes"))
    ap.add_argument("--single-level", action="store_true",
                    help="also the whole-volume cut in one graph and the IoU between the two (small volumes)")
    ap.add_argument("--coarsest", type=int, default=None, metavar="VOXELS",
                    help="coarsest level of the coarse-to-fine cut (default: volume.COARSEST_VOXELS); a small "
                         "value makes a small volume take several levels, for --single-level")
    ap.add_argument("--json", default=None, metavar="OUT")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        vol, truth, scribbles = make_volume(tuple(args.shape), colour=args.colour)
        for name, arr in (("volume", vol), ("truth", truth), ("scribbles", scribbles)):
            np.save(Path(tmp) / f"{name}.npy", arr)
        print(f"built {'x'.join(map(str, args.shape))} volume in {time.perf_counter() - t0:.1f} s "
              f"(object {truth.mean():.1%} of the voxels)", flush=True)
        del vol, truth, scribbles
        for mode in args.modes:
            results.append(_run_child(args, mode, tmp))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def _run_child(args, mode: str, folder: str) -> dict:
    """One child process: one mode on the saved volume."""
    cmd = [sys.executable, __file__, "--child", folder, "--modes", mode,
           "--spacing", *map(str, args.spacing)] + (["--single-level"] if args.single_level else [])
    if args.coarsest:
        cmd += ["--coarsest", str(args.coarsest)]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()
    if proc.returncode:
        print(f"{mode}: failed (exit {proc.returncode}): {proc.stderr.strip()[-600:]}", flush=True)
        return {"mode": mode, "failed": proc.stderr.strip()[-600:], "load_before": load_before}
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row.update(process_wall_s=wall, load_before=load_before, load_after=load_after)
    extra = ""
    if "single_level_s" in row:
        extra = (f"; forced coarse-to-fine ({row['levels']} levels) {row['multilevel_s']:.1f} s, "
                 f"single-level {row['single_level_s']:.1f} s (IoU truth {row['single_level_iou_truth']:.4f}), "
                 f"IoU multilevel vs single {row['iou_multilevel_vs_single']:.4f}, "
                 f"peak with it {row['peak_rss_with_single_level_mb']:.0f} MB")
    print(f"{'x'.join(map(str, row['shape']))}{'x3' if row['colour'] else ''} {mode}: set_image {row['set_image_s']:.1f} s, segment "
          f"{row['segment_s']:.1f} s, peak {row['peak_rss_mb']:.0f} MB (loaded {row['loaded_mb']:.0f}, after "
          f"set_image {row['after_set_image_mb']:.0f}), IoU truth {row['iou_truth']:.4f}{extra}; load "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after", flush=True)
    return row


if __name__ == "__main__":
    main()
