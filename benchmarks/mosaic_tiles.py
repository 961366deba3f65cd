"""How far a per-scene model could take the 25 MP mosaic: every 1000x1000 tile cut on its own (issue 22).

Usage::

    python benchmarks/mosaic_tiles.py [--grid 5] [--json OUT]

The mosaic of ``photo_scaling.py`` (Berkeley photos on a grid, strokes from their eroded masks) is cut
tile by tile: a ``SegmentationSession`` per tile with that tile's strokes, so every scene gets its own
colour model, and ``cv2.grabCut`` (5 iterations, strokes as sure object / background, the rest probable
background) on the same tiles. Prints each tile's IoU and the IoU of the assembled masks against the
mosaic's mask: an upper bound of what an image-wide cut with a perfectly local model could reach with
these strokes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def grabcut(image: np.ndarray, strokes: np.ndarray) -> np.ndarray:
    import cv2

    mask = np.full(strokes.shape, cv2.GC_PR_BGD, np.uint8)
    mask[strokes == 1], mask[strokes == 2] = cv2.GC_FGD, cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.grabCut(np.ascontiguousarray(image[..., ::-1]), mask, None, bgd, fgd, 5, cv2.GC_INIT_WITH_MASK)
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    from _photos import photo_mosaic

    from napari_deepseg.core import SegmentationSession

    image, truth, strokes = photo_mosaic(args.grid)
    ours, theirs = np.zeros_like(truth), np.zeros_like(truth)
    tiles = []
    side = image.shape[0] // args.grid
    for r in range(args.grid):
        for c in range(args.grid):
            tile = (slice(r * side, (r + 1) * side), slice(c * side, (c + 1) * side))
            session = SegmentationSession("classic")
            session.set_image(image[tile])
            ours[tile] = session.segment(strokes[tile]) == 1
            theirs[tile] = grabcut(image[tile], strokes[tile])
            tiles.append({"tile": [r, c], "iou": round(iou(ours[tile], truth[tile]), 3),
                          "grabcut_iou": round(iou(theirs[tile], truth[tile]), 3)})
            print(json.dumps(tiles[-1]), flush=True)
    out = {"grid": args.grid, "tiles_alone_iou": round(iou(ours, truth), 4),
           "grabcut_tiles_iou": round(iou(theirs, truth), 4), "tiles": tiles}
    print(json.dumps({k: v for k, v in out.items() if k != "tiles"}))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
