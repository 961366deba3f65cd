"""Scale does not change the answer: a GrabCut photo and its strokes upscaled 8x against the native cut (issue 22).

Usage::

    python benchmarks/scale_invariance.py [--factor 8] [--count 10] [--set scribbles-set-1] [--json OUT]

For the first ``--count`` images of a GrabCut scribble set: the default cut of
the photo with its strokes (481 x 321 and the like), then the same cut of the
photo upscaled ``--factor`` times (bicubic) with its strokes upscaled (nearest
neighbour), each in a new session. Reported per image: the IoU between the
large mask and the native mask upscaled (nearest neighbour), both masks' IoU
against the ground truth (its unknown band left out), and the large cut's time
(``set_image`` + ``prepare_default`` + ``segment``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import grabcut_scribble_items  # noqa: E402

from napari_deepseg.core import SegmentationSession  # noqa: E402
from napari_deepseg.core.evaluation.metrics import iou  # noqa: E402


def _cut(image, strokes) -> tuple:
    session = SegmentationSession("classic")
    t = time.perf_counter()
    session.set_image(image)
    session.prepare_default()
    mask = session.segment(strokes) == 1
    return mask, time.perf_counter() - t


def _up(a: np.ndarray, f: int) -> np.ndarray:
    return np.repeat(np.repeat(a, f, axis=0), f, axis=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--factor", type=int, default=8)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--set", default="scribbles-set-1")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    f = args.factor
    rows = []
    for k, (stem, image, truth, strokes) in enumerate(grabcut_scribble_items(args.set)):
        if k >= args.count:
            break
        native, t_native = _cut(image, strokes)
        big_image = np.asarray(Image.fromarray(image).resize((image.shape[1] * f, image.shape[0] * f),
                                                             Image.BICUBIC))
        big, t_big = _cut(big_image, _up(strokes, f))
        known = truth != 128
        row = {"image": stem, "shape": list(big_image.shape[:2]),
               "iou_big_vs_native": iou(big, _up(native, f)),
               "iou_native": iou(native[known], truth[known] > 128),
               "iou_big": iou(big[_up(known, f)], _up(truth, f)[_up(known, f)] > 128),
               "native_s": t_native, "big_s": t_big}
        rows.append(row)
        print(f"{stem}: big vs native IoU {row['iou_big_vs_native']:.4f}  (truth: native {row['iou_native']:.3f}, "
              f"x{f} {row['iou_big']:.3f}; {t_native:.2f} s / {t_big:.1f} s)", flush=True)
        del big_image, big
    ious = [r["iou_big_vs_native"] for r in rows]
    print(f"mean {np.mean(ious):.4f}, min {np.min(ious):.4f}, >= 0.97: {sum(i >= 0.97 for i in ious)} of {len(ious)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"factor": f, "set": args.set, "images": rows}, indent=1))


if __name__ == "__main__":
    main()
