"""Experiment (issue 32): OneCut (Tang et al., ICCV 2013) alone and as the box engine's first fit.

The box engine fits its colour models first on *the box's core = object, the outer ring and the
outside = background* (:func:`~napari_deepseg.core.prompts.boxcut.box_labels`). This script scores,
on the same boxes, for every ``--margin`` (0: the literature's tight box; 0.1: the widget users' box):

* ``engine``: the shipped box cut (the tightness prior included for boxes that look tight);
* ``onecut``: OneCut's own mask (:func:`~napari_deepseg.core.prompts.onecut.onecut_fit`, solved at
  half size: :data:`~napari_deepseg.core.prompts.onecut.SCALE`);
* ``first fit``: the engine's cut with the inside of the box first fitted on OneCut's mask
  (:func:`~napari_deepseg.core.prompts.onecut.first_fit_from`), pinpointed as the engine does when
  it looks tight.

Scored by mean IoU and the literature's error rate::

    python benchmarks/box_onecut.py ../shared/datasets/grabcut --margin 0 0.1 --json /tmp/onecut_grabcut.json
    python benchmarks/box_onecut.py ../shared/datasets/berkeley --margin 0 0.1 --json /tmp/onecut_berkeley.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from napari_deepseg.core.cut.session import SegmentationSession
from napari_deepseg.core.evaluation.benchmark import DEFAULT_IGNORE, box_error, dataset_items, protocol_box
from napari_deepseg.core.evaluation.metrics import iou
from napari_deepseg.core.io.atomic import atomic_write_json
from napari_deepseg.core.prompts.boxcut import (BOX_ITERATIONS, BOX_STAR_WEIGHT, CENTRE_RADIUS, PIN_ROUNDS,
                                                box_edge_prior, box_labels, cut_box, empty_lines, looks_tight,
                                                object_preference, pinpoint)
from napari_deepseg.core.prompts.onecut import POTTS, first_fit_from, onecut_fit

VARIANTS = ("engine", "onecut", "first fit")


def first_fit_cut(session, entry, image, box, shape, potts: float) -> tuple:
    """The engine's box cut with OneCut's first fit; returns ``(OneCut's mask, the cut)``."""
    seeds, fit = box_labels(box, shape, centre_radius=CENTRE_RADIUS)
    found = onecut_fit(image, box, seeds=seeds, potts=potts)
    fit = first_fit_from(found, box, seeds, fit)
    unary = box_edge_prior(box, shape)

    def cut():
        return session.segment(seeds, iterations=BOX_ITERATIONS, fit_labels=fit, unary=unary,
                               star_weight=BOX_STAR_WEIGHT) == 1

    mask = cut()
    if looks_tight(mask, box):
        for _ in range(PIN_ROUNDS):
            rows, cols = empty_lines(mask, box)
            if not rows.size and not cols.size:
                break
            pins = pinpoint(object_preference(entry, mask) + unary, box, rows, cols)
            seeds[pins] = 1
            fit[pins] = 1
            mask = cut()
    return found, mask


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--margin", type=float, nargs="+", default=[0.0, 0.1])
    ap.add_argument("--potts", type=float, default=POTTS, help=f"OneCut's Potts weight at half size (default {POTTS})")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    result = {"dataset": Path(args.dataset).name, "potts": args.potts, "margins": []}
    session = SegmentationSession("classic")
    for margin in args.margin:
        per_image, seconds = {}, []
        for item in dataset_items(args.dataset, args.limit):
            image, truth = item.load()
            box = protocol_box(truth, margin, ignore=DEFAULT_IGNORE)
            entry = session.set_image(image)
            session.prepare_default()
            engine = cut_box(session, box, truth.shape, entry=entry)
            t0 = time.perf_counter()
            found, first = first_fit_cut(session, entry, image, box, truth.shape, args.potts)
            seconds.append(time.perf_counter() - t0)
            per_image[item.stem] = {
                name: {"iou": round(iou(mask, truth, ignore=DEFAULT_IGNORE), 4),
                       "error": round(box_error(mask, truth, box, ignore=DEFAULT_IGNORE), 5)}
                for name, mask in zip(VARIANTS, (engine, found, first))}
        row = {"margin": margin, "n": len(per_image), "first_fit_seconds_median": float(np.median(seconds))}
        for name in VARIANTS:
            row[name] = {"miou": float(np.mean([v[name]["iou"] for v in per_image.values()])),
                         "mean_error": float(np.mean([v[name]["error"] for v in per_image.values()]))}
        row["per_image"] = per_image
        result["margins"].append(row)
        print(f"{result['dataset']} margin {margin:g}: " + "; ".join(
            f"{name} mIoU {row[name]['miou']:.3f} error {100 * row[name]['mean_error']:.2f} %" for name in VARIANTS)
            + f" (OneCut + cut {1000 * row['first_fit_seconds_median']:.0f} ms median)", flush=True)
    if args.json:
        atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()
