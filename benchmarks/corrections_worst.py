"""Pictures of the corrective strokes that hurt most (issue 32 item 4): the mask before and after one stroke.

Usage::

    python benchmarks/corrections_worst.py docs/benchmarks/corrections_grabcut_1.json \\
        [--worst 4] [--out docs/images/corrections_worst.png]

Reads a ``napari-deepseg benchmark --protocol corrections`` result, takes the ``--worst`` photos whose IoU
dropped most at stroke 1 and replays them through the same protocol and cut
(:func:`~napari_deepseg.core.evaluation.benchmark.run_correction_protocol`, the Scribble widget's path with
Live on); the replayed IoUs must match the JSON's. Each row: the photo, the mask after the scribbles, the
mask after the stroke. Object pixels are tinted green, taken in wrongly magenta, missed cyan (the unknown band
left as is); the stroke is circled (red: background, yellow: object), with its radius enlarged to at least
12 px so that a 5-px dab shows, and the pixels it turned from correct to wrong far from it (the far-change
promise, :func:`~napari_deepseg.core.evaluation.promises.far_changes`) are hatched in orange.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import datasets_dir  # noqa: E402


def replay(stem: str, strokes: int = 1, features: str = "classic", scribbles_dir: str = "scribbles-set-1"):
    """``(image, truth, run)``: one photo under the corrective-stroke protocol, masks kept."""
    from napari_deepseg.commands.benchmark import live_cut
    from napari_deepseg.core.cut.service import Options, SessionPool
    from napari_deepseg.core.evaluation import benchmark as B
    from napari_deepseg.core.io.files import read_labels

    root = datasets_dir() / "grabcut"
    item = next(i for i in B.dataset_items(root) if i.stem == stem)
    image, truth = item.load()
    options = Options(features, "default", None, None)
    pool = SessionPool()
    try:
        cut = live_cut(pool.slot(options), options, image)
        run = B.run_correction_protocol(cut, truth, read_labels(B.scribble_path(root, scribbles_dir, stem)),
                                        strokes=strokes, keep_masks=True)
    finally:
        pool.close()
    return image, truth, run


def overlay(image: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The photo with the mask's object tinted green, wrong object magenta, missed object cyan."""
    view = np.asarray(image[..., :3], float) if image.ndim == 3 else np.repeat(image[..., None], 3, -1).astype(float)
    valid, obj = truth != 128, (truth != 0) & (truth != 128)
    for where, colour, alpha in ((mask & obj, (0, 200, 0), 0.35), (mask & ~obj & valid, (255, 0, 255), 0.6),
                                 (~mask & obj, (0, 255, 255), 0.6)):
        view[where] = (1 - alpha) * view[where] + alpha * np.array(colour, float)
    return view.astype(np.uint8)


def draw(rows: list, path: Path) -> None:
    """One row per ``(stem, image, truth, run)``: the photo, before, after."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    from napari_deepseg.core.evaluation.promises import far_change_distance

    fig, axes = plt.subplots(len(rows), 3, figsize=(12, 3.3 * len(rows)), dpi=100)
    axes = np.atleast_2d(axes)
    for ax_row, (stem, image, truth, run) in zip(axes, rows):
        stroke, promise = run.strokes[0], run.promises[0]
        before, after = run.masks[0], run.masks[1]
        disk = stroke.disk(truth.shape)
        far = ndi.distance_transform_edt(~disk) > far_change_distance(stroke.radius)
        obj, valid = (truth != 0) & (truth != 128), truth != 128
        turned = (before == obj) & (after != obj) & valid & far
        kind = "background" if stroke.label == 2 else "object"
        colour = "red" if stroke.label == 2 else "yellow"
        panels = ((image[..., :3] if image.ndim == 3 else image, f"{stem}"),
                  (overlay(image, truth, before), f"scribbles: IoU {run.ious[0]:.3f}"),
                  (overlay(image, truth, after), f"+ {kind} dab r={stroke.radius}: IoU {run.ious[1]:.3f}, "
                                                 f"{promise['far_changed']:,} far px lost"))
        for k, (ax, (view, title)) in enumerate(zip(ax_row, panels)):
            ax.imshow(view, cmap=None if view.ndim == 3 else "gray")
            if k == 2 and turned.any():
                ax.contourf(turned.astype(float), levels=[0.5, 1.5], colors="none", hatches=["////"])
                ax.contour(turned.astype(float), levels=[0.5], colors="orange", linewidths=1.0)
            if k:
                ax.add_patch(Circle((stroke.col, stroke.row), max(stroke.radius, 12), fill=False, color=colour, lw=2))
                ax.add_patch(Circle((stroke.col, stroke.row), stroke.radius, fill=True, color=colour, alpha=0.9))
            ax.set_title(title, fontsize=9)
            ax.set_axis_off()
    fig.suptitle("One corrective stroke where the mask is most wrong (GrabCut, scribble set 1): "
                 f"the {len(rows)} photos it hurt most\n"
                 "green object, magenta taken in wrongly, cyan missed, orange hatched: correct pixels turned wrong "
                 "far from the stroke", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.18 / len(rows)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("result", help="a benchmark --protocol corrections JSON")
    ap.add_argument("--worst", type=int, default=4)
    ap.add_argument("--out", default="docs/images/corrections_worst.png")
    args = ap.parse_args(argv)
    result = json.loads(Path(args.result).read_text())
    worst = result["worse_after_1"][: args.worst]
    rows = []
    for stem, was, now in worst:
        image, truth, run = replay(stem, features=result.get("features", "classic"),
                                   scribbles_dir=result.get("scribbles_dir", "scribbles-set-1"))
        replayed = [round(v, 4) for v in run.ious[:2]]
        print(f"{stem}: JSON {was} -> {now}, replayed {replayed[0]} -> {replayed[1]}, stroke {run.strokes[0]}")
        if replayed != [was, now]:
            print(f"warning: {stem} replayed differently from the JSON", file=sys.stderr)
        rows.append((stem, image, truth, run))
    draw(rows, Path(args.out))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
