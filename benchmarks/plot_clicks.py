"""Draw saved click-benchmark results (``napari-deepseg benchmark --json``) in one mIoU-vs-clicks plot.

    python benchmarks/plot_clicks.py docs/benchmarks/clicks_grabcut_*.json --dataset grabcut -o docs/images/clicks_grabcut.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from napari_deepseg.core.evaluation.benchmark import plot_click_curves


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="JSON files written by napari-deepseg benchmark --json")
    ap.add_argument("--dataset", default=None, help="grabcut or berkeley: marks the published NoC@90")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args(argv)
    curves = {}
    for path in args.results:
        data = json.loads(Path(path).read_text())
        curves[f"{data.get('method', '?')}/{data.get('features', '?')}"] = data
    plot_click_curves(curves, args.output, dataset=args.dataset)
    print(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
