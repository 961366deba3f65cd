"""A corrective stroke in napari, as a user paints it (issue 32 item 4): screenshots before and after.

Usage (under a display, e.g. ``xvfb-run -a``)::

    python benchmarks/corrections_napari.py [--photo person6] [--out docs/images/correction_napari.png]

Opens a napari viewer with the Scribble segmentation widget docked, the GrabCut photo and its set-1
scribbles as a Labels layer, and segments (default preset, as a new user's first click on *Segment*). Then it
paints the corrective-stroke protocol's stroke (the disk at the deepest point of the largest error region,
:func:`~napari_deepseg.core.evaluation.benchmark.next_stroke`) into the scribbles layer as napari's brush
writes it (``Labels.data_setitem``) and segments again, waiting for the background follow-up. It prints the
IoU before and after, the pixels the stroke changed, and what the cut of the strokes alone would have given
(``SegmentationSession.segment`` without ``local_corrections``), and writes the two screenshots side by side.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

try:  # torch's optional triton before napari's OpenGL (see napari_deepseg/_qt/_torch_guard.py)
    import torchvision.models  # noqa: F401
except ImportError:  # pragma: no cover
    pass

from _data import datasets_dir  # noqa: E402


def wait(app, done, timeout: float = 120.0) -> None:
    """Run the Qt event loop until ``done()`` (or fail after ``timeout`` seconds)."""
    end = time.perf_counter() + timeout
    while not done():
        app.processEvents()
        time.sleep(0.01)
        if time.perf_counter() > end:
            raise TimeoutError("the segmentation did not finish")
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)


def main() -> None:
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_deepseg._qt.scribble_widget import ScribbleSegmentationWidget
    from napari_deepseg.core.cut.session import SegmentationSession
    from napari_deepseg.core.evaluation.benchmark import DEFAULT_IGNORE, dataset_items, next_stroke, scribble_path
    from napari_deepseg.core.evaluation.metrics import iou
    from napari_deepseg.core.io.atomic import atomic_write
    from napari_deepseg.core.io.files import read_labels

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", default="person6")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    root = datasets_dir() / "grabcut"
    item = {i.stem: i for i in dataset_items(root)}[args.photo]
    image, truth = item.load()
    strokes = read_labels(scribble_path(root, "scribbles-set-1", args.photo))

    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    widget = ScribbleSegmentationWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Scribble segmentation")
    layer = viewer.add_image(image, name=args.photo, rgb=True)
    scribbles = viewer.add_labels(np.array(strokes), name=f"{args.photo} scribbles")
    widget.image_combo.value, widget.scribbles_combo.value = layer, scribbles
    assert widget.segment()
    wait(app, lambda: not widget.busy and not widget.refitting)
    result = viewer.layers[f"{args.photo} segmentation"]
    before = np.array(result.data) == 1
    shots = [viewer.screenshot(canvas_only=True)]
    stroke = next_stroke(before, truth)
    disk = stroke.disk(truth.shape)
    rows, cols = np.nonzero(disk)
    scribbles.data_setitem((rows, cols), stroke.label)  # as napari's brush writes a stroke
    assert widget.segment()
    wait(app, lambda: not widget.busy and not widget.refitting)
    after = np.array(result.data) == 1
    shots.append(viewer.screenshot(canvas_only=True))
    alone = SegmentationSession("classic")
    alone.set_image(image)
    cut = alone.segment(np.array(scribbles.data)) == 1
    kind = "object" if stroke.label == 1 else "background"
    print(f"{args.photo}: IoU {iou(before, truth, ignore=DEFAULT_IGNORE):.3f} -> "
          f"{iou(after, truth, ignore=DEFAULT_IGNORE):.3f} after a {kind} stroke of radius {stroke.radius} "
          f"({int((after != before).sum())} pixels changed; the cut of the strokes alone: "
          f"{iou(cut, truth, ignore=DEFAULT_IGNORE):.3f}, {int((cut != before).sum())} pixels changed)")
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 5.6))
        for ax, shot, title in zip(axes, shots, ("after Segment (set-1 scribbles)",
                                                  f"after one {kind} stroke (r = {stroke.radius}) on the leak")):
            ax.imshow(shot)
            ax.set_title(title, fontsize=10)
            ax.axis("off")
        fig.tight_layout()
        atomic_write(args.out, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
        print(f"wrote {args.out}")
    viewer.close()


if __name__ == "__main__":
    main()
