"""Take the README screenshot: the cat sample, painted scribbles and a segmentation.

Opens napari with the cat sample image, docks the *Scribble segmentation*
widget, makes a scribbles layer with its *New scribbles layer* button, paints the
sample strokes into it (through the layer API, as a brush would), presses
*Segment*, waits for the worker and saves the whole window.

Usage (headless)::

    xvfb-run -a python scripts/screenshot.py [--output docs/images/screenshot.png]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "images" / "screenshot.png")
    parser.add_argument("--backbone", default="classic")
    parser.add_argument("--preset", default="default", choices=("default", "seed"))
    parser.add_argument("--size", type=int, nargs=2, default=(1600, 900), metavar=("WIDTH", "HEIGHT"))
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the result")
    return parser.parse_args(argv)


def wait_until(app, condition, timeout: float) -> None:
    """Process Qt events until ``condition()`` holds; raise TimeoutError after ``timeout`` s."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"gave up after {timeout:.0f} s")
        app.processEvents()
        time.sleep(0.02)


def paint_scribbles(layer, scribbles: np.ndarray) -> None:
    """Write every stroke of ``scribbles`` into ``layer`` as one undoable edit."""
    index = np.nonzero(scribbles)
    layer.data_setitem(index, scribbles[index])


def settle(app, seconds: float = 0.5) -> None:
    """Let the canvas and the widgets repaint."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def main(argv=None) -> int:
    args = parse_args(argv)
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_deepseg.samples import cat_sample

    image, scribbles = cat_sample()
    viewer = napari.Viewer(title="napari-deepseg")
    app = QApplication.instance()
    viewer.window.resize(*args.size)
    settle(app)
    viewer.add_image(image, name="cat", rgb=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-deepseg", "Scribble segmentation")
    widget.backbone.value = args.backbone
    widget.preset.value = args.preset
    widget.new_scribbles_button.clicked.emit(True)
    layer = viewer.layers["cat scribbles"]
    paint_scribbles(layer, scribbles)
    layer.brush_size = 6
    widget.segment_button.clicked.emit(True)
    wait_until(app, lambda: "cat segmentation" in viewer.layers and not widget.busy, args.timeout)
    viewer.layers["cat segmentation"].opacity = 0.45
    viewer.layers.selection.active = layer
    settle(app)  # let the canvas take its final size before fitting the view
    viewer.reset_view()
    settle(app)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    try:
        viewer.screenshot(str(args.output), canvas_only=False)
    except TypeError:  # older napari: only the window can take a full screenshot
        viewer.window.screenshot(str(args.output), canvas_only=False)
    print(f"saved {args.output} ({widget.status.value})")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
