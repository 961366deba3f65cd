"""A scripted annotation session on the aerial sample: every roof with a box and at most 3 clicks (issue 12).

Usage::

    python benchmarks/annotate_aerial.py [--size 320 480] [--clicks 3] [--target 0.9] [--json OUT]

The roofs are the connected parts of ``samples.roof_mask``. For each roof, as an
annotator would: a box around it (its tight bounding box enlarged by 10 % per
side, ``box_from_mask``), answered by the default click engine's ``predict_box``
(the Point prompts widget's engine); then up to ``--clicks`` corrections placed by
the click protocol (``next_click`` against that roof's mask) until the roof's
IoU reaches ``--target``. Committed roofs are background for the next ones (as in
the widget: their pixels are painted as background strokes). Reports per roof the
IoU after the box and at the end, the clicks used and the seconds of compute.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi


def main(argv=None):
    from napari_deepseg.core.evaluation.benchmark import next_click
    from napari_deepseg.core.evaluation.metrics import iou
    from napari_deepseg.core.prompts import get_click_method
    from napari_deepseg.core.prompts.box import box_from_mask
    from napari_deepseg.samples import aerial_sample, roof_mask

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=2, default=(320, 480))
    ap.add_argument("--clicks", type=int, default=3)
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    shape = tuple(args.size)
    image, _ = aerial_sample(shape)
    roofs, n = ndi.label(roof_mask(shape))
    method = get_click_method("graphcut")
    t0 = time.perf_counter()
    method.set_image(image)
    setup = time.perf_counter() - t0
    committed = np.zeros(shape, bool)
    rows = []
    for k in range(1, n + 1):
        truth = roofs == k
        box = box_from_mask(truth)
        strokes = np.where(committed, 2, 0).astype(np.uint8)  # committed roofs: background
        t = time.perf_counter()
        pred = method.predict_box(box, strokes=strokes)
        first = iou(pred, truth)
        clicks, clicked = [], np.zeros(shape, bool)
        while iou(pred, truth) < args.target and len(clicks) < args.clicks:
            click = next_click(pred, truth, clicked)
            clicks.append(click)
            clicked[click.row, click.col] = True
            pred = method.predict_box(box, clicks, strokes=strokes)
        seconds = time.perf_counter() - t
        committed |= pred
        rows.append({"roof": k, "pixels": int(truth.sum()), "iou_box": first, "iou": iou(pred, truth),
                     "clicks": len(clicks), "seconds": seconds})
        print(f"roof {k:2d} ({rows[-1]['pixels']:5d} px): box IoU {first:.3f}, {len(clicks)} clicks -> "
              f"{rows[-1]['iou']:.3f}, {seconds:.2f} s", flush=True)
    summary = {"shape": shape, "roofs": n, "set_image_s": setup,
               "mean_iou_box": float(np.mean([r["iou_box"] for r in rows])),
               "mean_iou": float(np.mean([r["iou"] for r in rows])),
               "mean_clicks": float(np.mean([r["clicks"] for r in rows])),
               "reached_target": int(sum(r["iou"] >= args.target for r in rows)),
               "median_seconds": statistics.median(r["seconds"] for r in rows),
               "max_seconds": max(r["seconds"] for r in rows), "per_roof": rows}
    print({k: v for k, v in summary.items() if k != "per_roof"})
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
