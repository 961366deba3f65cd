"""Time and peak memory of the weight-free default against image size (issue 5).

Usage::

    python benchmarks/size_scaling.py [--mp 1 4 16 25 64] [--features classic rgb resnet50 clip] [--json OUT]
    python benchmarks/size_scaling.py --mp 1 4 --single-level     # + IoU with the exact cut
    python benchmarks/plot_size_scaling.py OUT.json [OUT2.json ...]  # the figure in docs/performance.md

For each size (in megapixels, a square image) the parent writes a synthetic
aerial scene (``samples.aerial_sample``) and its scribbles to ``.npy`` files,
then runs one child process per size that:

1. loads the uint8 image (this resident memory is the baseline),
2. ``SegmentationSession(features).set_image(image)`` (timed),
3. ``segment(scribbles)`` — the first result (timed),
4. a later update: one more background stroke across the scene, ``segment`` again (timed),
5. a local update: a short background stroke far from every object (timed).

``resnet50`` and ``clip`` use randomly initialised weights saved to a temporary
folder (no download; the compute is the same as with pretrained weights).

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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import hwm_mb as _hwm_mb  # noqa: E402


def _child(args) -> None:
    from napari_deepseg.core import SegmentationSession
    from napari_deepseg.core.evaluation.metrics import iou

    image = np.load(args.child_image)
    scribbles = np.load(args.child_scribbles)
    out = {"rows": image.shape[0], "cols": image.shape[1], "loaded_mb": _hwm_mb()}
    params = {"weights": args.weights, "device": "cpu"} if args.weights else {}
    session = SegmentationSession(args.features[0], **params)
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
    second = session.segment(more)
    out["update_s"] = time.perf_counter() - t0
    out["after_update_mb"] = _hwm_mb()
    from scipy import ndimage as ndi

    step = max(1, image.shape[0] // 512)  # (not timed) the spot farthest from the object, on a small grid
    far = ndi.distance_transform_edt(first[::step, ::step] == 0)
    fy, fx = (int(v) * step for v in np.unravel_index(int(np.argmax(far)), far.shape))
    local = more.copy()
    local[max(0, fy - 1) : fy + 2, max(0, fx - 20) : fx + 20] = 2
    del far
    t0 = time.perf_counter()
    after = session.segment(local)
    out["update_far_s"] = time.perf_counter() - t0
    out["far_stroke_distance_px"] = float(min(fy, fx, image.shape[0] - fy, image.shape[1] - fx))
    out["after_far_update_mb"] = _hwm_mb()
    out["far_update_changed_px"] = int(np.count_nonzero(after != second))
    out["object_fraction"] = float((first == 1).mean())
    if args.single_level:
        t0 = time.perf_counter()
        exact = session.segment(scribbles, multilevel=False)
        out["single_level_s"] = time.perf_counter() - t0
        out["iou_multilevel_vs_single"] = float(iou(first == 1, exact == 1))
        out["after_single_level_mb"] = _hwm_mb()
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so it would count the parent's
    # memory (the deep backbones' random weights it built) at the moment of the fork
    out["peak_rss_mb"] = _hwm_mb()
    print(json.dumps(out))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mp", type=float, nargs="+", default=[1, 4, 16, 25], help="sizes in megapixels")
    ap.add_argument("--features", nargs="+", default=["classic"], help="backbones, one run each")
    ap.add_argument("--weights", help=argparse.SUPPRESS)
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
        weights = _random_weights(args.features, Path(tmp))
        for mp in args.mp:
            side = int(round((mp * 1e6) ** 0.5))
            image, scribbles = aerial_sample(shape=(side, side))
            img_path, scr_path = Path(tmp) / "image.npy", Path(tmp) / "scribbles.npy"
            np.save(img_path, image)
            np.save(scr_path, scribbles)
            del image, scribbles
            for features in args.features:
                results.append(_run_child(args, features, weights.get(features), side, img_path, scr_path))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def _random_weights(features, folder: Path) -> dict:
    """Randomly initialised weights for the deep backbones asked, saved under ``folder``."""
    out = {}
    if "resnet50" in features:
        import torch
        from torchvision.models import resnet50

        torch.manual_seed(0)
        out["resnet50"] = str(folder / "resnet50-random.pth")
        torch.save(resnet50(weights=None).state_dict(), out["resnet50"])
    if "clip" in features:
        import torch
        from transformers import CLIPVisionConfig, CLIPVisionModel

        torch.manual_seed(0)
        out["clip"] = str(folder / "clip-vit-b-32-random")
        CLIPVisionModel(CLIPVisionConfig()).save_pretrained(out["clip"])
    return out


def _run_child(args, features, weights, side, img_path, scr_path) -> dict:
    """One child process: one backbone on one image size."""
    cmd = [sys.executable, __file__, "--features", features, "--child-image", str(img_path),
           "--child-scribbles", str(scr_path)] + (["--single-level"] if args.single_level else [])
    if weights:
        cmd += ["--weights", weights]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    load = os.getloadavg()
    if proc.returncode:
        print(f"{side}x{side} {features}: failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}", flush=True)
        return {"side": side, "mp": side * side / 1e6, "features": features, "failed": proc.stderr.strip()[-400:]}
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row.update(side=side, mp=side * side / 1e6, features=features, process_wall_s=wall, load_after=load)
    extra = (f", single-level {row['single_level_s']:.1f} s, IoU {row['iou_multilevel_vs_single']:.4f}"
             if args.single_level else "")
    print(f"{side}x{side} ({row['mp']:.1f} MP) {features}: features {row['features_s']:.1f} s, "
          f"first cut {row['first_cut_s']:.1f} s (first result {row['first_result_s']:.1f} s), "
          f"update {row['update_s']:.2f} s, far stroke {row['update_far_s']:.2f} s; peak {row['peak_rss_mb']:.0f} MB "
          f"(loaded {row['loaded_mb']:.0f}, after features {row['after_features_mb']:.0f}, "
          f"after first cut {row['after_first_cut_mb']:.0f}){extra}; load {load[0]:.2f}", flush=True)
    return row


if __name__ == "__main__":
    main()
