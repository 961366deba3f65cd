"""Point prompts under the published click protocol (NoC@85/90, mIoU, time per click).

Runs a registered click method (``points-graphcut`` by default) on the GrabCut
and Berkeley sets in ``../shared/datasets`` with the core's protocol
(:mod:`napari_deepseg.core.evaluation.benchmark`), the same code path as
``napari-deepseg benchmark``::

    python benchmarks/point_prompts.py --method points-graphcut --features classic
    python benchmarks/point_prompts.py --method pointclip --checkpoint CKPT_DIR --datasets grabcut

Prints one line per dataset and, with ``--json FILE``, writes the summaries.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    from _data import datasets_dir

    from napari_deepseg.core.evaluation.benchmark import (
        dataset_items,
        run_clicks_on_dataset,
        summarize_clicks,
    )
    from napari_deepseg.core.prompts.base import get_click_method

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="points-graphcut")
    ap.add_argument("--features", default=None, help="backbone of points-graphcut (auto, classic, rgb, clip, ...)")
    ap.add_argument("--weights", default=None, help="backbone weights (CLIP id/folder, ResNet-50 file)")
    ap.add_argument("--checkpoint", default=None, help="pointclip checkpoint folder")
    ap.add_argument("--datasets", default="grabcut,berkeley")
    ap.add_argument("--limit", type=int, default=None, help="first N images of each set")
    ap.add_argument("--param", action="append", default=[], help="extra method parameter NAME=VALUE (float)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    params = {k: v for k, v in (("features", args.features), ("weights", args.weights),
                                ("checkpoint", args.checkpoint)) if v is not None}
    for item in args.param:
        name, value = item.split("=", 1)
        params[name] = float(value) if value.replace(".", "", 1).isdigit() else value
    out = {}
    print(f"load {os.getloadavg()[0]:.2f}, method {args.method} {params}", file=sys.stderr)
    for name in args.datasets.split(","):
        method = get_click_method(args.method, **params)
        items = dataset_items(datasets_dir() / name, limit=args.limit)
        t0 = time.perf_counter()
        runs = [run for _, run in run_clicks_on_dataset(method, items)]
        s = summarize_clicks(runs)
        s["seconds_total"] = time.perf_counter() - t0
        out[name] = s
        print(f"{name}: n={s['n']} NoC@85 {s['noc85']:.2f} NoC@90 {s['noc90']:.2f} NoF@90 {s['nof90']} "
              f"mIoU@1 {s['miou_at_clicks'][0]:.3f} @5 {s['miou_at_clicks'][4]:.3f} "
              f"median {1000 * s['seconds_per_click']:.0f} ms/click, {s['seconds_total']:.0f} s total", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    np.seterr(all="ignore")
    sys.exit(main())
