"""Box protocol boxes: this project's box cut against ``cv2.grabCut`` (5 iterations, GC_INIT_WITH_RECT), same run.

Needs the ``bench`` extra (opencv-python-headless). Writes a JSON with the mean IoU of both
and the median seconds of one box update::

    python benchmarks/box_vs_opencv.py ../shared/datasets/grabcut --json docs/benchmarks/box_vs_opencv_grabcut.json
    python benchmarks/box_vs_opencv.py ../shared/datasets/berkeley --json docs/benchmarks/box_vs_opencv_berkeley.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from napari_deepseg.core.evaluation.benchmark import DEFAULT_IGNORE, dataset_items
from napari_deepseg.core.evaluation.metrics import iou
from napari_deepseg.core.prompts import box_from_mask, get_click_method


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--margin", type=float, default=0.1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    method = get_click_method("graphcut", features="classic")
    ours, theirs, t_ours, t_theirs, per_image = [], [], [], [], {}
    for item in dataset_items(args.dataset):
        image, truth = item.load()
        box = box_from_mask(truth, args.margin, ignore=DEFAULT_IGNORE)
        method.set_image(image)
        t0 = time.perf_counter()
        a = method.predict_box(box)
        t1 = time.perf_counter()
        b = opencv_box(image, box)
        t2 = time.perf_counter()
        ours.append(iou(a, truth, ignore=DEFAULT_IGNORE))
        theirs.append(iou(b, truth, ignore=DEFAULT_IGNORE))
        t_ours.append(t1 - t0)
        t_theirs.append(t2 - t1)
        per_image[item.stem] = {"graphcut": round(ours[-1], 4), "opencv": round(theirs[-1], 4),
                                "shape": list(truth.shape)}
    result = {"dataset": Path(args.dataset).name, "margin": args.margin, "n": len(ours),
              "miou_graphcut": float(np.mean(ours)), "miou_opencv_grabcut": float(np.mean(theirs)),
              "seconds_graphcut_median": float(np.median(t_ours)),
              "seconds_opencv_median": float(np.median(t_theirs)), "per_image": per_image}
    print(f"{result['dataset']}: {len(ours)} boxes, graphcut mIoU {result['miou_graphcut']:.3f} "
          f"({1000 * result['seconds_graphcut_median']:.0f} ms median), cv2.grabCut mIoU "
          f"{result['miou_opencv_grabcut']:.3f} ({1000 * result['seconds_opencv_median']:.0f} ms median)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
