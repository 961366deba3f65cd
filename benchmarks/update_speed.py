"""Time of one interactive update (features cached) on the GrabCut images, per backbone.

Usage::

    python benchmarks/update_speed.py [--backbones classic resnet50] [--images 10] [--json OUT]

The dataset's dense scribbles (``scribbles-set-2``) are split into strokes
(connected components) that are added one at a time, object and background
alternating, as a user paints them; every ``segment`` call after both labels
exist is one timed update. Features are computed once per image
(``set_image``) and timed separately. ``resnet50`` runs with randomly
initialised weights saved to a temporary file: the compute is the same as
with ImageNet weights, which cannot be downloaded on the measuring machine.

Each update is timed as the Scribble widget answers a stroke: ``segment(defer=True)``
(a small image's whole cut without the found star centres: what the user sees
first), then the full cut the widget runs in the background (``follow-up``,
timed apart and not counted as the update). ``--no-defer`` times the full cut as
the update (the widget before the deferral). Every cut asks for
``local_corrections=True`` as the widget does (strokes added to the last answer take
only the changed regions they touch, issue 32); ``--no-local-corrections`` leaves it out. ``--scribbles scribbles-set-1`` splits the other
stroke set. Each deferred answer is compared with its follow-up (IoU), and both with the truth.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import grabcut_scribble_items  # noqa: E402

from napari_deepseg.core import SegmentationSession  # noqa: E402
from napari_deepseg.core.evaluation.metrics import iou  # noqa: E402


def strokes_in_order(scribbles: np.ndarray) -> list:
    """Connected strokes of labels 1 and 2, interleaved object/background."""
    by_label = {}
    for lab in (1, 2):
        comp, n = ndi.label(scribbles == lab, structure=np.ones((3, 3)))
        by_label[lab] = [(lab, comp == k) for k in range(1, n + 1)]
    out = []
    for a, b in zip(by_label[1], by_label[2]):
        out += [a, b]
    longer = by_label[1] if len(by_label[1]) > len(by_label[2]) else by_label[2]
    return out + longer[min(len(by_label[1]), len(by_label[2])) :]


def random_resnet50_weights(folder: Path) -> Path:
    """Save a randomly initialised torchvision resnet50 state dict; return its path."""
    import torch
    from torchvision.models import resnet50

    path = folder / "resnet50-random.pth"
    torch.save(resnet50(weights=None).state_dict(), path)
    return path


def measure(backbone: str, n_images: int, params: dict, defer: bool = True, corrections: bool = True,
            scribble_set: str = "scribbles-set-2") -> dict:
    """Median/percentile update and feature times over the first ``n_images`` images."""
    updates, first, feats, sizes, follow = [], [], [], [], []
    agree, quick_iou, full_iou = [], [], []  # the quick answer against the follow-up, both against the truth
    for k, (stem, image, mask, scribbles) in enumerate(grabcut_scribble_items(scribble_set)):
        if k >= n_images:
            break
        session = SegmentationSession(backbone, **params)
        t0 = time.perf_counter()
        session.set_image(image)
        feats.append(time.perf_counter() - t0)
        sizes.append(image.shape[:2])
        painted = np.zeros_like(scribbles)
        calls = 0
        for lab, stroke in strokes_in_order(scribbles):
            painted[stroke] = lab
            if not ((painted == 1).any() and (painted == 2).any()):
                continue
            t0 = time.perf_counter()
            quick = session.segment(painted, defer=defer and calls > 0, local_corrections=corrections) == 1
            dt = time.perf_counter() - t0
            (first if calls == 0 else updates).append(dt)
            if session.last_deferred:  # the widget's background cut with the found centres
                t0 = time.perf_counter()
                full = session.segment(painted, local_corrections=corrections) == 1
                follow.append(time.perf_counter() - t0)
                agree.append(iou(quick, full))
                quick_iou.append(iou(quick, mask > 0))
                full_iou.append(iou(full, mask > 0))
            calls += 1
    return {
        "backbone": backbone,
        "images": len(feats),
        "image_sizes": sorted({f"{c}x{r}" for r, c in sizes}),
        "updates": len(updates),
        "update_median_ms": 1000 * float(np.median(updates)),
        "update_p90_ms": 1000 * float(np.percentile(updates, 90)),
        "first_cut_median_ms": 1000 * float(np.median(first)),
        "deferred": len(follow),
        "follow_up_median_ms": 1000 * float(np.median(follow)) if follow else None,
        "features_median_s": float(np.median(feats)),
        "quick_vs_follow_up_iou_mean": float(np.mean(agree)) if agree else None,
        "quick_vs_follow_up_iou_min": float(np.min(agree)) if agree else None,
        "quick_equal_follow_up": int(sum(a == 1.0 for a in agree)),
        "quick_iou_truth_mean": float(np.mean(quick_iou)) if agree else None,
        "follow_up_iou_truth_mean": float(np.mean(full_iou)) if agree else None,
    }



def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", nargs="+", default=["classic", "resnet50"])
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-defer", action="store_true", help="time the full cut as the update (no deferral)")
    ap.add_argument("--no-local-corrections", action="store_true",
                    help="cut the strokes alone (no local_corrections, as before issue 32's corrections)")
    ap.add_argument("--scribbles", default="scribbles-set-2", choices=["scribbles-set-1", "scribbles-set-2"],
                    help="the stroke set split into strokes (default: set 2, the denser one)")
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.backbones:
            params = {"weights": random_resnet50_weights(Path(tmp)), "device": "cpu"} if name == "resnet50" else {}
            r = measure(name, args.images, params, defer=not args.no_defer,
                        corrections=not args.no_local_corrections, scribble_set=args.scribbles)
            results.append(r)
            print(f"{name:9s} update median {r['update_median_ms']:.0f} ms (p90 {r['update_p90_ms']:.0f} ms, "
                  f"n={r['updates']}), first cut {r['first_cut_median_ms']:.0f} ms, "
                  f"features {r['features_median_s']:.2f} s, images {', '.join(r['image_sizes'])}"
                  + (f"; {r['deferred']} deferred, follow-up median {r['follow_up_median_ms']:.0f} ms; quick answer"
                     f" vs follow-up IoU mean {r['quick_vs_follow_up_iou_mean']:.4f} (min "
                     f"{r['quick_vs_follow_up_iou_min']:.4f}, equal {r['quick_equal_follow_up']}), against the truth "
                     f"{r['quick_iou_truth_mean']:.4f} / {r['follow_up_iou_truth_mean']:.4f}"
                     if r["deferred"] else ""), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
