"""How long a cancel waits inside a whole cut: the time between the cancel token's checks (issue 33).

Usage::

    python benchmarks/cancel_gaps.py [--run mosaic:25] [--backbone resnet50]

The Scribble widget cuts the whole image again after each local update (the
refit, in the background) and the next stroke cancels that cut; the stroke then
waits until the cut next checks its token. In one process this script takes the
first result (``photo_run``'s image and strokes, as ``update_local.py``), adds a
background stroke, answers it locally, then runs the whole cut with a token that
timestamps every check. It prints the time between consecutive checks, the
longest, and the expected wait of a cancel at a uniformly random moment of the
cut (sum of gap² / 2 × the cut's time). Deep backbones run with random weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="mosaic:25")
    ap.add_argument("--backbone", default="resnet50", choices=("classic", "rgb", "resnet50", "clip"))
    args = ap.parse_args(argv)
    from _photos import photo_run
    from size_scaling import _random_weights

    from napari_deepseg.core import SegmentationSession
    from napari_deepseg.core.utils.progress import CancelToken

    class TimedToken(CancelToken):  # never cancelled: it only notes when and where it is checked
        def __init__(self):
            super().__init__()
            self.marks = []

        def raise_if_cancelled(self):
            where = traceback.extract_stack(limit=3)[0]
            self.marks.append((time.perf_counter(), f"{Path(where.filename).name}:{where.lineno}"))
            super().raise_if_cancelled()

    with tempfile.TemporaryDirectory() as tmp:
        weights = _random_weights([args.backbone], Path(tmp)).get(args.backbone)
        image, _, strokes = photo_run(args.run)
        session = SegmentationSession(args.backbone, **({"weights": weights, "device": "cpu"} if weights else {}))
        session.set_image(image)
        session.prepare_default()
        session.segment(strokes)
    more = strokes.copy()
    more[100:105, 100:140] = np.where(more[100:105, 100:140] == 0, 2, more[100:105, 100:140])
    session.segment(more, local=True)
    token = TimedToken()
    t0 = time.perf_counter()
    session.segment(more, cancel=token)
    t1 = time.perf_counter()
    marks = [(t0, "start")] + token.marks + [(t1, "end")]
    gaps = [(b - a, f"{wa} -> {wb}") for (a, wa), (b, wb) in zip(marks, marks[1:])]
    for gap, where in gaps:
        print(f"{gap:7.2f} s  {where}")
    squares = sum(g * g for g, _ in gaps)
    print(json.dumps({"run": args.run, "backbone": args.backbone, "cut_s": t1 - t0, "checks": len(token.marks),
                      "longest_gap_s": max(g for g, _ in gaps), "expected_wait_s": squares / (2 * (t1 - t0))}))


if __name__ == "__main__":
    main()
