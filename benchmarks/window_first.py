"""A large image's first result when the strokes lie in a small window: that window first, or the coarse preview.

Usage::

    python benchmarks/window_first.py [--run mosaic:25] [--reps 2] [--json OUT]

The strokes of the mosaic's first photo only (the top-left 1000 px square that has strokes of both
labels, as a user strokes one object of a tile first) are cut whole in one process, after
``set_image`` and ``prepare_default`` (what the widget's preparation does) and a 5 s pause, with a
``preview`` callback as the Scribble widget passes: once with the window cut first
(``pyramid.window_first``, the default) and once with the coarse preview only
(``WINDOW_FIRST_MIN_PIXELS`` out of reach), alternating. Printed per run: seconds to the preview and to
the result, and the IoU of each on the stroked photo against its mask.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _photos import photo_run  # noqa: E402


def first_photo(strokes: np.ndarray, tile: int = 1000):
    """The strokes of the first ``tile`` px square (reading order) with both labels, and that square."""
    for r in range(0, strokes.shape[0], tile):
        for c in range(0, strokes.shape[1], tile):
            cell = np.s_[r : r + tile, c : c + tile]
            if (strokes[cell] == 1).any() and (strokes[cell] == 2).any():
                out = np.zeros_like(strokes)
                out[cell] = strokes[cell]
                return out, cell
    raise ValueError("no photo has strokes of both labels")


def main(argv=None):
    from napari_deepseg.core import SegmentationSession
    from napari_deepseg.core.cut import pyramid
    from napari_deepseg.core.evaluation.metrics import iou

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="mosaic:25")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    image, mask, strokes = photo_run(args.run)
    first, cell = first_photo(strokes)
    window_min = pyramid.WINDOW_FIRST_MIN_PIXELS
    rows = []
    for _ in range(args.reps):
        for mode in ("window", "coarse"):
            pyramid.WINDOW_FIRST_MIN_PIXELS = window_min if mode == "window" else 1 << 62
            session = SegmentationSession("classic")
            session.set_image(image)
            session.prepare_default()
            time.sleep(5)
            seen = []
            t0 = time.perf_counter()
            out = session.segment(first, preview=lambda labels: seen.append((time.perf_counter() - t0, labels == 1)))
            total = time.perf_counter() - t0
            row = {"mode": mode, "preview_s": round(seen[0][0], 2), "result_s": round(total, 2),
                   "preview_iou": round(iou(seen[0][1][cell], mask[cell]), 4),
                   "result_iou": round(iou((out == 1)[cell], mask[cell]), 4)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            del session
    pyramid.WINDOW_FIRST_MIN_PIXELS = window_min
    if args.json:
        Path(args.json).write_text(json.dumps({"run": args.run, "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
