"""Wedges and straight cuts on a 16 MP photo (issue 24, item 5): Berkeley ``12003`` upscaled to 4000 x 4000.

Usage::

    python benchmarks/wedges_16mp.py [--side 4000] [--picture OUT.png] [--without-found-centres]
                                     [--corrections N] [--json OUT]

The issue's strokes: an object line along row 1595 and one along column 2104 (each the longest run of
the starfish along that line, 30 px inside its outline, 16 px wide) and a 40-px background frame, all
scaled with ``--side``. Prints the IoU against the upscaled mask and the cut's time (``set_image`` +
``segment``, default preset). ``--without-found-centres`` cuts with the hard star about the strokes
alone, as before issue 24 (``energy.recut_found_centres`` replaced by the identity). ``--picture``
writes an 800 x 800 view: magenta = taken in wrongly, cyan = missed, yellow = object strokes.
``--corrections N`` then paints N corrective strokes as the Scribble widget does: a disk of the widget's
default brush (100 px across at 4000 x 4000) with the truth's label at the deepest pixel of the largest
error region, each answered by a local update, then the whole cut with every stroke (the widget's
background refit); the picture shows the last of them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import datasets_dir  # noqa: E402


def starfish(side: int = 4000):
    """``(image, truth, strokes)``: Berkeley 12003 stretched to ``side`` x ``side`` and the issue's strokes."""
    base = datasets_dir() / "berkeley"
    photo = Image.open(base / "images" / "12003.jpg").convert("RGB")
    mask = Image.open(base / "masks" / "12003.png").convert("L")
    image = np.asarray(photo.resize((side, side), Image.BICUBIC))
    truth = np.asarray(mask.resize((side, side), Image.BILINEAR)) > 127
    f = side / 4000
    strokes = np.zeros((side, side), np.uint8)
    inner = ndi.binary_erosion(truth, iterations=max(1, int(30 * f)))
    r, c, w = int(1595 * f), int(2104 * f), max(1, int(8 * f))
    for line, along_row in ((inner[r], True), (inner[:, c], False)):
        runs, _ = ndi.label(line)
        longest = np.flatnonzero(runs == np.argmax(np.bincount(runs)[1:]) + 1)
        if along_row:
            strokes[r - w:r + w, longest] = 1
        else:
            strokes[longest, c - w:c + w] = 1
    frame = max(1, int(40 * f))
    strokes[:frame], strokes[-frame:], strokes[:, :frame], strokes[:, -frame:] = 2, 2, 2, 2
    return image, truth, strokes


def picture(image, truth, fg, strokes, path, size: int = 800) -> None:
    """The view described in the module docstring."""
    def small(a):
        return np.asarray(Image.fromarray(a).resize((size, size), Image.NEAREST))

    view = small(image).astype(float)
    f, t, s = small(fg.astype(np.uint8)) > 0, small(truth.astype(np.uint8)) > 0, small(strokes)
    view[f & ~t] = [255, 0, 255]
    view[~f & t] = [0, 255, 255]
    view[s == 1] = [255, 255, 0]
    Image.fromarray(view.astype(np.uint8)).save(path)


def corrections(session, image, truth, strokes, fg, count: int) -> list:
    """Paint ``count`` corrective strokes into ``strokes`` (see the module docstring); their IoU and seconds."""
    from napari_deepseg._qt._layers import default_brush_size

    radius = default_brush_size(truth.shape) / 2
    out = []
    for _ in range(count):
        errors, _ = ndi.label(fg != truth)
        largest = errors == np.argmax(np.bincount(errors.ravel())[1:]) + 1
        depth = ndi.distance_transform_edt(largest)
        r, c = np.unravel_index(np.argmax(depth), depth.shape)
        rr, cc = np.ogrid[:truth.shape[0], :truth.shape[1]]
        strokes[(rr - r) ** 2 + (cc - c) ** 2 <= radius**2] = 1 if truth[r, c] else 2
        t0 = time.perf_counter()
        fg = session.segment(strokes, local=True) == 1
        out.append({"at": [int(r), int(c)], "label": 1 if truth[r, c] else 2, "local": session.last_local,
                    "seconds": round(time.perf_counter() - t0, 2),
                    "iou": round(float((fg & truth).sum() / max(1, (fg | truth).sum())), 4)})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=4000)
    ap.add_argument("--picture", default=None)
    ap.add_argument("--without-found-centres", action="store_true")
    ap.add_argument("--corrections", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    from napari_deepseg.core import SegmentationSession
    from napari_deepseg.core.cut import energy, pyramid

    if args.without_found_centres:
        def identity(fg, *_args):
            return fg, None

        energy.recut_found_centres = pyramid.recut_found_centres = identity
    image, truth, strokes = starfish(args.side)
    session = SegmentationSession("classic")
    t0 = time.perf_counter()
    session.set_image(image)
    fg = session.segment(strokes) == 1
    seconds = time.perf_counter() - t0
    out = {"side": args.side, "found_centres": not args.without_found_centres, "seconds": round(seconds, 2),
           "iou": round(float((fg & truth).sum() / max(1, (fg | truth).sum())), 4),
           "object_share": round(float(fg.mean()), 4), "truth_share": round(float(truth.mean()), 4)}
    print(json.dumps(out))
    if args.corrections:
        out["corrections"] = corrections(session, image, truth, strokes, fg, args.corrections)
        fg = session.segment(strokes) == 1
        out["after_refit_iou"] = round(float((fg & truth).sum() / max(1, (fg | truth).sum())), 4)
        print(json.dumps({"corrections": out["corrections"], "after_refit_iou": out["after_refit_iou"]}))
    if args.picture:
        picture(image, truth, fg, strokes, args.picture)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
