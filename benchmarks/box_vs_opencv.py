"""Box protocol boxes: this project's box cut against ``cv2.grabCut`` (5 iterations, GC_INIT_WITH_RECT), same run.

Needs the ``bench`` extra (opencv-python-headless). For every margin asked for, every image's box
(:func:`~napari_deepseg.core.evaluation.benchmark.protocol_box`: margin 0 is the literature's tight box of
the object and its unknown band) goes to both methods; each is scored by IoU and by the literature's
error rate (misclassified pixels, the 128 band left out, ÷ the box's area; Lempitsky et al., ICCV 2009).
Writes a JSON with the means of both, the median seconds of one box and the per-image scores::

    python benchmarks/box_vs_opencv.py ../shared/datasets/grabcut --margin 0 0.1 --json docs/benchmarks/box_vs_opencv_grabcut.json
    python benchmarks/box_vs_opencv.py ../shared/datasets/berkeley --json docs/benchmarks/box_vs_opencv_berkeley.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from napari_deepseg.core.evaluation.benchmark import DEFAULT_IGNORE, box_error, dataset_items, protocol_box
from napari_deepseg.core.evaluation.metrics import iou
from napari_deepseg.core.prompts import get_click_method
from napari_deepseg.core.io.atomic import atomic_write_json  # noqa: E402


def opencv_box(image: np.ndarray, box) -> np.ndarray:
    """``cv2.grabCut`` with the rectangle of ``box`` (a whole-image box keeps a one-pixel border out)."""
    import cv2

    rows, cols = image.shape[:2]
    r0, c0, r1, c1 = box.r0, box.c0, box.r1, box.c1
    if (r0, c0, r1, c1) == (0, 0, rows, cols):
        r0, c0, r1, c1 = 1, 1, rows - 1, cols - 1
    bgr = np.ascontiguousarray(image[..., :3][..., ::-1] if image.ndim == 3 else np.repeat(image[..., None], 3, -1))
    mask = np.zeros((rows, cols), np.uint8)
    cv2.grabCut(bgr.astype(np.uint8), mask, (c0, r0, c1 - c0, r1 - r0), np.zeros((1, 65)), np.zeros((1, 65)), 5,
                cv2.GC_INIT_WITH_RECT)
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def run_margin(dataset, margin: float, limit=None) -> dict:
    """Both methods on every image's box of ``margin``: means, median seconds and per-image scores."""
    method = get_click_method("graphcut", features="classic")
    scores = {"graphcut": {"iou": [], "error": [], "seconds": []}, "opencv": {"iou": [], "error": [], "seconds": []}}
    per_image = {}
    for item in dataset_items(dataset, limit):
        image, truth = item.load()
        box = protocol_box(truth, margin, ignore=DEFAULT_IGNORE)
        method.set_image(image)
        row = {"box": [box.r0, box.c0, box.r1, box.c1], "shape": list(truth.shape)}
        for name, predict in (("graphcut", lambda: method.predict_box(box)), ("opencv", lambda: opencv_box(image, box))):
            t0 = time.perf_counter()
            mask = np.asarray(predict(), bool)
            s = scores[name]
            s["seconds"].append(time.perf_counter() - t0)
            s["iou"].append(iou(mask, truth, ignore=DEFAULT_IGNORE))
            s["error"].append(box_error(mask, truth, box, ignore=DEFAULT_IGNORE))
            row[name] = {"iou": round(s["iou"][-1], 4), "error": round(s["error"][-1], 5)}
        per_image[item.stem] = row
    out = {"margin": margin, "n": len(per_image)}
    for name, s in scores.items():
        out[name] = {"miou": float(np.mean(s["iou"])), "mean_error": float(np.mean(s["error"])),
                     "seconds_median": float(np.median(s["seconds"]))}
    out["per_image"] = per_image
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--margin", type=float, nargs="+", default=[0.1],
                    help="box margins, fractions of the object's size (0: the literature's tight box)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    result = {"dataset": Path(args.dataset).name, "margins": []}
    for margin in args.margin:
        r = run_margin(args.dataset, margin, args.limit)
        result["margins"].append(r)
        g, o = r["graphcut"], r["opencv"]
        print(f"{result['dataset']}, margin {margin:g}: {r['n']} boxes; graphcut mIoU {g['miou']:.3f}, error "
              f"{100 * g['mean_error']:.2f} % ({1000 * g['seconds_median']:.0f} ms median); cv2.grabCut mIoU "
              f"{o['miou']:.3f}, error {100 * o['mean_error']:.2f} % ({1000 * o['seconds_median']:.0f} ms median)",
              flush=True)
    if args.json:
        atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()
