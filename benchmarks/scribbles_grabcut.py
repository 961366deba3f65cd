"""Mean IoU of the scribble cut on the GrabCut scribble sets, and time per update.

Usage::

    python benchmarks/scribbles_grabcut.py [--features classic] [--preset default] [--sets scribbles-set-1 scribbles-set-2]

IoU leaves out GrabCut's unknown band (mask value 128). "cut" is the first
``session.segment`` call on an image (it includes one-off work such as the
image's colour mixture); ``benchmarks/update_speed.py`` times later updates.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _data import grabcut_scribble_items  # noqa: E402

from napari_deepseg.core import SegmentationSession  # noqa: E402
from napari_deepseg.core.cut.session import DEFAULT_ITERATIONS  # noqa: E402
from napari_deepseg.core.evaluation.metrics import iou  # noqa: E402


def run(features: str, preset: str, sets, lam=None, sigma=None, iterations=DEFAULT_ITERATIONS, limit=None, multilevel=None, **params):
    """Return ``{set: {"miou", "per_image", "update_median_s", "features_median_s"}}``."""
    results = {}
    for name in sets:
        per, t_upd, t_feat = {}, [], []
        for k, (stem, image, mask, scribbles) in enumerate(grabcut_scribble_items(name)):
            if limit and k >= limit:
                break
            session = SegmentationSession(features, **params)
            t0 = time.perf_counter()
            session.set_image(image)
            t1 = time.perf_counter()
            pred = session.segment(scribbles, preset=preset, lam=lam, sigma=sigma, iterations=iterations,
                                   multilevel=multilevel)
            t2 = time.perf_counter()
            per[stem] = iou(pred == 1, np.where(mask == 128, 128, mask > 128), ignore=128)
            t_feat.append(t1 - t0)
            t_upd.append(t2 - t1)
        results[name] = {
            "miou": float(np.mean(list(per.values()))),
            "per_image": per,
            "update_median_s": float(np.median(t_upd)),
            "features_median_s": float(np.median(t_feat)),
        }
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", default="classic")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--sets", nargs="+", default=["scribbles-set-1", "scribbles-set-2"])
    ap.add_argument("--lambda", dest="lam", type=float, default=None)
    ap.add_argument("--sigma", type=float, default=None)
    ap.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS)
    ap.add_argument("--single-level", action="store_true", help="exact full-resolution cut (no multilevel)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    res = run(args.features, args.preset, args.sets, args.lam, args.sigma, args.iterations, args.limit,
              multilevel=False if args.single_level else None)
    for name, r in res.items():
        print(f"{name}: mean IoU {r['miou']:.3f}  first cut median {r['update_median_s'] * 1000:.0f} ms  "
              f"features median {r['features_median_s'] * 1000:.0f} ms  (n={len(r['per_image'])})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
