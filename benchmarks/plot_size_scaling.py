"""Plot time and peak memory against image size from ``size_scaling.py`` JSON files.

Usage::

    python benchmarks/plot_size_scaling.py docs/benchmarks/size_scaling.json -o docs/images/size_scaling.png

One line per backbone: first result (features + first cut), a later update, and
the peak resident memory of the whole process; the issue's targets are drawn
as dotted lines.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="+", help="outputs of size_scaling.py --json")
    ap.add_argument("-o", "--output", default="docs/images/size_scaling.png")
    ap.add_argument("--markdown", action="store_true", help="also print the table of docs/performance.md")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = defaultdict(list)
    for path in args.json:
        for row in json.loads(Path(path).read_text()):
            if "failed" not in row:
                runs[row.get("features", "classic")].append(row)
    if args.markdown:
        print(markdown_table(runs))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    panels = [("first_result_s", "first result (s)", 20.0), ("update_s", "later update (s)", 2.0),
              ("peak_rss_mb", "peak memory (GB)", 3.0)]
    for ax, (key, label, target) in zip(axes, panels):
        for name, rows in sorted(runs.items()):
            rows = sorted(rows, key=lambda r: r["mp"])
            scale = 1 / 1024 if key == "peak_rss_mb" else 1.0
            ax.plot([r["mp"] for r in rows], [r[key] * scale for r in rows], marker="o", label=name)
        ax.axhline(target, color="grey", linestyle=":", linewidth=1)
        ax.annotate("25 MP target", (1, target), textcoords="offset points", xytext=(0, 3), fontsize=8, color="grey")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([1, 4, 16, 25, 64])
        ax.set_xticklabels(["1", "4", "16", "25", "64"])
        ax.set_xlabel("image size (MP)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle("Scribble segmentation against image size (2-core CPU, synthetic aerial scene)")
    fig.tight_layout()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=110)
    print(args.output)


def markdown_table(runs) -> str:
    """One row per backbone and size: features, first cut, first result, updates, peak memory, load."""
    lines = ["| backbone | image | features | first cut | first result | update | far stroke | peak | load |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, rows in sorted(runs.items()):
        for r in sorted(rows, key=lambda r: r["mp"]):
            lines.append(
                f"| `{name}` | {r['mp']:.0f} MP ({r['cols']}²) | {r['features_s']:.1f} s | {r['first_cut_s']:.1f} s "
                f"| **{r['first_result_s']:.1f} s** | **{r['update_s']:.2f} s** | {r['update_far_s']:.2f} s "
                f"| **{r['peak_rss_mb'] / 1024:.2f} GB** | {r['load_after'][0]:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
