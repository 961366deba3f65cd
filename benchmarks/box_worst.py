"""The boxes the box cut gets most wrong, drawn beside ``cv2.grabCut``'s answer to the same box (issue 32 item 3).

Reads the per-image scores of ``benchmarks/box_vs_opencv.py`` for one margin, takes the ``--count``
images with the largest error of this project's box cut, cuts them again with both methods (the same
code paths: ``get_click_method("graphcut").predict_box`` and :func:`box_vs_opencv.opencv_box`), checks
that the project's errors match the JSON (``cv2.grabCut`` seeds its k-means from OpenCV's global random
state, so its masks differ from run to run: both errors are printed where they do), and draws one row per
image: the photo with the box, this project's
mask, ``cv2.grabCut``'s mask, each with its error and IoU::

    python benchmarks/box_worst.py docs/benchmarks/box_vs_opencv_grabcut.json --margin 0 \
        --out docs/images/box_worst_tight.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import datasets_dir  # noqa: E402
from box_vs_opencv import opencv_box  # noqa: E402

from napari_deepseg.core.evaluation.benchmark import DEFAULT_IGNORE, box_error, dataset_items  # noqa: E402
from napari_deepseg.core.evaluation.metrics import iou  # noqa: E402
from napari_deepseg.core.io.atomic import temporary_name  # noqa: E402
from napari_deepseg.core.prompts import get_click_method  # noqa: E402
from napari_deepseg.core.prompts.box import Box  # noqa: E402

#: tolerance between the error recomputed here and the one in the JSON (same code, same boxes)
MATCH = 1e-4


def worst(per_image: dict, count: int) -> list:
    """The ``count`` stems with the largest error of the project's box cut, worst first.

    Examples
    --------
    >>> worst({"a": {"graphcut": {"error": 0.1}}, "b": {"graphcut": {"error": 0.3}},
    ...        "c": {"graphcut": {"error": 0.2}}}, 2)
    ['b', 'c']
    """
    return sorted(per_image, key=lambda s: -per_image[s]["graphcut"]["error"])[:count]


def overlay(image: np.ndarray, mask: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The photo dimmed, the mask's correct object green, its wrong object magenta, the missed object cyan."""
    rgb = image[..., :3].astype(np.float32) * 0.45
    known = truth != 128
    obj = truth > 128
    for where, colour in ((mask & obj, (60, 220, 60)), (mask & ~obj & known, (230, 40, 230)),
                          (~mask & obj & known, (40, 220, 230))):
        rgb[where] = 0.35 * rgb[where] + 0.65 * np.array(colour, np.float32)
    return rgb.clip(0, 255).astype(np.uint8)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scores", help="a JSON written by box_vs_opencv.py")
    ap.add_argument("--margin", type=float, default=0.0)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    scores = json.loads(Path(args.scores).read_text())
    run = next(m for m in scores["margins"] if abs(m["margin"] - args.margin) < 1e-9)
    stems = worst(run["per_image"], args.count)
    items = {item.stem: item for item in dataset_items(datasets_dir() / scores["dataset"])}
    method = get_click_method("graphcut", features="classic")
    fig, axes = plt.subplots(len(stems), 3, figsize=(10.5, 2.6 * len(stems)), squeeze=False)
    for row, stem in zip(axes, stems):
        image, truth = items[stem].load()
        box = Box(*run["per_image"][stem]["box"])
        method.set_image(image)
        masks = {"graphcut": np.asarray(method.predict_box(box), bool), "opencv": opencv_box(image, box)}
        row[0].imshow(image[..., :3])
        row[0].add_patch(Rectangle((box.c0 - 0.5, box.r0 - 0.5), box.c1 - box.c0, box.r1 - box.r0, fill=False,
                                   edgecolor="yellow", linewidth=1.5))
        row[0].set_title(f"{stem}: tight box" if args.margin == 0 else f"{stem}: box, margin {args.margin:g}",
                         fontsize=9)
        for ax, (name, mask) in zip(row[1:], masks.items()):
            error = box_error(mask, truth, box, ignore=DEFAULT_IGNORE)
            saved = run["per_image"][stem][name]["error"]
            if name == "graphcut" and abs(error - saved) > MATCH:  # deterministic: the same mask as the JSON's
                raise SystemExit(f"{stem} {name}: error {error:.5f} here, {saved:.5f} in {args.scores}")
            if name == "opencv" and abs(error - saved) > MATCH:  # its k-means draws from OpenCV's global RNG
                print(f"{stem}: cv2.grabCut error {100 * error:.1f} % here, {100 * saved:.1f} % in the JSON's run")
            ax.imshow(overlay(image, mask, truth))
            label = "this project (graphcut)" if name == "graphcut" else "cv2.grabCut"
            ax.set_title(f"{label}: error {100 * error:.1f} %, IoU {iou(mask, truth, ignore=DEFAULT_IGNORE):.3f}",
                         fontsize=9)
        for ax in row:
            ax.set_axis_off()
    fig.suptitle("green: object found; magenta: taken in wrongly; cyan: missed", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    tmp = temporary_name(args.out)
    fig.savefig(tmp, dpi=72)
    tmp.replace(args.out)
    print(f"{args.out}: {', '.join(stems)}")


if __name__ == "__main__":
    main()
