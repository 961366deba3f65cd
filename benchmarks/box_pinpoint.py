"""Experiment (issue 32): the tightness prior by pinpointing (Lempitsky et al., ICCV 2009) on every box.

The engine pinpoints only a box alone whose first cut looks tight
(:func:`~napari_deepseg.core.prompts.boxcut.looks_tight`); this script pinpoints every box and
records the first cut's side gaps, which is how the rule was chosen (``docs/benchmarks.md``).
A tight box means every row and every column crossing it holds an object pixel. After the box
engine's cut (:func:`~napari_deepseg.core.prompts.boxcut.cut_box`'s energy), every box row and
column without an object pixel gets its most object-like pixel (lowest object-minus-background
cost of an appearance model fitted on the current mask, plus the edge prior) as a hard object
seed, and the cut is solved again (with its colour refits); up to ``--rounds`` times. Scored by
IoU and the literature's error rate on the same boxes as ``box_vs_opencv.py``; the first cut's
gap between the mask and each side of the box is recorded, for a rule that decides from the
box's content whether it is tight::

    python benchmarks/box_pinpoint.py ../shared/datasets/grabcut --margin 0 0.1 --json /tmp/pinpoint.json
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
from napari_deepseg.core.prompts.boxcut import (BOX_ITERATIONS, BOX_STAR_WEIGHT, CENTRE_RADIUS, box_edge_prior,
                                                box_labels, empty_lines, object_preference, pinpoint, side_gaps)


def pinpoint_box(session, entry, box, shape, rounds: int, edge_prior: bool = True) -> tuple:
    """The engine's box cut, then pinpointing rounds; returns the first and the last mask and the pins."""
    seeds, fit = box_labels(box, shape, centre_radius=CENTRE_RADIUS)
    unary = box_edge_prior(box, shape) if edge_prior else np.zeros(shape, np.float32)

    def cut():
        return session.segment(seeds, iterations=BOX_ITERATIONS, fit_labels=fit, unary=unary,
                               star_weight=BOX_STAR_WEIGHT) == 1

    first = mask = cut()
    pins = 0
    for _ in range(rounds):
        rows, cols = empty_lines(mask, box)
        if not rows.size and not cols.size:
            break
        pins_rc = pinpoint(object_preference(entry, mask) + unary, box, rows, cols)
        seeds[pins_rc] = 1
        fit[pins_rc] = 1
        pins += rows.size + cols.size
        mask = cut()
    return first, mask, pins


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--margin", type=float, nargs="+", default=[0.0, 0.1])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-edge-prior", action="store_true", help="leave the box's edge prior out of the cut")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    result = {"dataset": Path(args.dataset).name, "rounds": args.rounds, "edge_prior": not args.no_edge_prior,
              "margins": []}
    session = SegmentationSession("classic")
    for margin in args.margin:
        per_image, t = {}, []
        for item in dataset_items(args.dataset, args.limit):
            image, truth = item.load()
            box = protocol_box(truth, margin, ignore=DEFAULT_IGNORE)
            entry = session.set_image(image)
            session.prepare_default()
            t0 = time.perf_counter()
            first, last, pins = pinpoint_box(session, entry, box, truth.shape, args.rounds, not args.no_edge_prior)
            t.append(time.perf_counter() - t0)
            per_image[item.stem] = {
                "first": {"iou": round(iou(first, truth, ignore=DEFAULT_IGNORE), 4),
                          "error": round(box_error(first, truth, box, ignore=DEFAULT_IGNORE), 5)},
                "pinned": {"iou": round(iou(last, truth, ignore=DEFAULT_IGNORE), 4),
                           "error": round(box_error(last, truth, box, ignore=DEFAULT_IGNORE), 5)},
                "pins": int(pins), "gaps": [round(g, 4) for g in side_gaps(first, box)]}
        r = {"margin": margin, "n": len(per_image), "seconds_median": float(np.median(t))}
        for k in ("first", "pinned"):
            r[k] = {"miou": float(np.mean([v[k]["iou"] for v in per_image.values()])),
                    "mean_error": float(np.mean([v[k]["error"] for v in per_image.values()]))}
        r["per_image"] = per_image
        result["margins"].append(r)
        print(f"margin {margin:g}: first cut mIoU {r['first']['miou']:.3f} error {100 * r['first']['mean_error']:.2f} %;"
              f" pinpointed mIoU {r['pinned']['miou']:.3f} error {100 * r['pinned']['mean_error']:.2f} % "
              f"({1000 * r['seconds_median']:.0f} ms median)", flush=True)
    if args.json:
        atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()
