"""First result and update time of the scribble cut against OpenCV's GrabCut, same strokes, same run (issue 13).

Usage::

    python benchmarks/first_result_grabcut.py [--set scribbles-set-1] [--limit N] [--json OUT]

For every GrabCut image (``../shared/datasets/grabcut``) and the strokes of one
scribble set, in one process (OpenCV limited to one thread, as the cut runs):

1. ``SegmentationSession("classic")``: ``set_image`` + the first ``segment`` (timed
   together: what a user waits for after choosing the image, when nothing was prepared);
2. ``prepare`` then the first ``segment`` (timed apart: what the widget's first
   Segment costs once the image was prepared in the background);
3. an update: one more background stroke, ``segment`` again;
4. ``cv2.grabCut`` with 5 iterations, strokes as sure object / background, the rest
   probable background (``GC_INIT_WITH_MASK``).

The scribble set's IoU of both methods is reported too (ignore band excluded).
opencv-python-headless is a benchmark-only dependency (``pip install -e ".[bench]"``).
Run it alone: timings share the machine's two cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import grabcut_scribble_items  # noqa: E402


def _iou(pred, truth) -> float:
    valid = truth != 128
    p, t = pred[valid], truth[valid] > 128
    return float((p & t).sum() / max(1, (p | t).sum()))


def _update_stroke(scribbles: np.ndarray) -> np.ndarray:
    """One more background stroke: three rows along the top border, where GrabCut images are background."""
    out = scribbles.copy()
    out[2:5, 5:-5][out[2:5, 5:-5] == 0] = 2
    return out


def main(argv=None):
    import cv2

    from napari_deepseg.core import SegmentationSession

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default="scribbles-set-1")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    rows = []
    warm = SegmentationSession("classic")  # imports and first-call costs outside the timings
    warm.prepare(np.zeros((64, 64, 3), np.uint8))
    for k, (stem, image, truth, scribbles) in enumerate(grabcut_scribble_items(args.set)):
        if args.limit and k >= args.limit:
            break
        image = np.ascontiguousarray(image[..., :3]) if image.ndim == 3 else np.dstack([image] * 3)
        t0 = time.perf_counter()
        s = SegmentationSession("classic")
        s.set_image(image)
        first = s.segment(scribbles)
        t1 = time.perf_counter()
        s2 = SegmentationSession("classic")
        s2.prepare(image)
        t2 = time.perf_counter()
        again = s2.segment(scribbles)
        t3 = time.perf_counter()
        s2.segment(_update_stroke(scribbles))
        t4 = time.perf_counter()
        mask = np.full(image.shape[:2], cv2.GC_PR_BGD, np.uint8)
        mask[scribbles == 1], mask[scribbles == 2] = cv2.GC_FGD, cv2.GC_BGD
        bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
        t5 = time.perf_counter()
        cv2.grabCut(np.ascontiguousarray(image[..., ::-1]), mask, None, bgd, fgd, 5, cv2.GC_INIT_WITH_MASK)
        t6 = time.perf_counter()
        cv_mask = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        assert np.array_equal(first, again)
        rows.append({"stem": stem, "first_s": t1 - t0, "prepare_s": t2 - t1, "first_after_prepare_s": t3 - t2,
                     "update_s": t4 - t3, "grabcut_s": t6 - t5, "iou": _iou(first == 1, truth),
                     "grabcut_iou": _iou(cv_mask, truth)})
        r = rows[-1]
        print(f"{stem:10s} first {r['first_s']:.2f} s (prepared: {r['first_after_prepare_s']:.3f}) update "
              f"{r['update_s']:.3f} s | grabCut {r['grabcut_s']:.2f} s | IoU {r['iou']:.3f} vs {r['grabcut_iou']:.3f}",
              flush=True)

    def med(key):
        return statistics.median(r[key] for r in rows)

    summary = {
        "set": args.set, "n": len(rows),
        "median_first_s": med("first_s"), "median_first_after_prepare_s": med("first_after_prepare_s"),
        "median_prepare_s": med("prepare_s"), "median_update_s": med("update_s"), "median_grabcut_s": med("grabcut_s"),
        "median_first_over_grabcut": statistics.median(r["first_s"] / r["grabcut_s"] for r in rows),
        "median_update_over_grabcut": statistics.median(r["update_s"] / r["grabcut_s"] for r in rows),
        "mean_iou": float(np.mean([r["iou"] for r in rows])),
        "mean_grabcut_iou": float(np.mean([r["grabcut_iou"] for r in rows])),
        "per_image": rows,
    }
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items() if k != "per_image"})
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
