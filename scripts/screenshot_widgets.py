"""Take the screenshots of the *Point prompts* and *Evaluate* widgets.

Opens napari with a GrabCut image (``flower`` by default), docks *Point
prompts*, adds a New points layer, clicks on the object (two positive points,
two negative), waits for the mask and saves the window (``point-prompts.png``).
Then it commits the object (the widget's C key), docks *Evaluate*, adds the
GrabCut reference mask as a Labels layer (object 1, unknown band 128), scores
the committed objects against it with 128 ignored and saves the window again
(``evaluate.png``). Only the weight-free ``classic`` features are used, so it
runs offline.

Usage (headless)::

    xvfb-run -a python scripts/screenshot_widgets.py [--dataset /work/shared/datasets/grabcut] [--name flower]

The *Automatic proposal* widget is not pictured: without the pretrained
DeepLabV3 checkpoints (not downloadable here) a proposal is noise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot import settle, wait_until  # the README screenshot's helpers

try:  # load torch's triton before the canvas loads Mesa's LLVM (see napari_deepseg/_qt/_torch_guard.py)
    import torchvision.models  # noqa: F401
except ImportError:  # pragma: no cover
    pass

ROOT = Path(__file__).resolve().parents[1]
#: (row, col, positive) prompts per GrabCut image, in the image's pixels
PROMPTS = {"flower": [(225, 300, True), (330, 250, True), (226, 573, False), (60, 60, False)]}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=Path("/work/shared/datasets/grabcut"),
                        help="GrabCut folder with images/ and masks/")
    parser.add_argument("--name", default="flower", choices=sorted(PROMPTS))
    parser.add_argument("--output-dir", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--size", type=int, nargs=2, default=(1600, 950), metavar=("WIDTH", "HEIGHT"))
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for a result")
    return parser.parse_args(argv)


def read(folder: Path, stem: str) -> np.ndarray:
    from PIL import Image

    path = next(p for p in sorted(folder.iterdir()) if p.stem == stem)
    return np.asarray(Image.open(path))


def save(viewer, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        viewer.screenshot(str(path), canvas_only=False)
    except TypeError:  # older napari
        viewer.window.screenshot(str(path), canvas_only=False)
    print(f"saved {path}")


def main(argv=None) -> int:
    args = parse_args(argv)
    import napari
    from qtpy.QtWidgets import QApplication

    image = read(args.dataset / "images", args.name)
    if image.ndim == 3:
        image = image[..., :3]
    truth = read(args.dataset / "masks", args.name)
    viewer = napari.Viewer(title="napari-deepseg")
    app = QApplication.instance()
    viewer.window.resize(*args.size)
    settle(app)
    image_layer = viewer.add_image(image, name=args.name, rgb=image.ndim == 3)

    # -- Point prompts
    dock, widget = viewer.window.add_plugin_dock_widget("napari-deepseg", "Point prompts")
    widget.features.value = "classic"
    widget.new_points_button.clicked.emit(True)
    points = viewer.layers[f"{args.name} prompts"]
    for row, col, positive in PROMPTS[args.name]:
        if positive != widget._positive:
            widget.mode_button.clicked.emit(True)  # the T key
        points.add([[row, col]])
        settle(app, 0.1)
        wait_until(app, lambda: not widget.busy and widget._mask is not None, args.timeout)
    if not widget._positive:
        widget.mode_button.clicked.emit(True)
    settle(app)
    viewer.reset_view()
    settle(app)
    save(viewer, args.output_dir / "point-prompts.png")
    status = widget.status.value
    object_id = widget.commit()  # the C key
    if not object_id:
        raise RuntimeError(f"nothing was committed ({status})")
    viewer.window.remove_dock_widget(dock)
    points.visible = False
    viewer.layers[f"{args.name} prompt mask"].visible = False

    # -- Evaluate: the committed objects against the GrabCut mask (255 object, 128 unknown)
    reference = np.where(truth == 255, 1, np.where(truth == 128, 128, 0)).astype(np.uint8)
    ref_layer = viewer.add_labels(reference, name=f"{args.name} reference", opacity=0.0)
    objects = viewer.layers[f"{args.name} objects"]
    dock, widget = viewer.window.add_plugin_dock_widget("napari-deepseg", "Evaluate")
    from qtpy.QtCore import Qt

    viewer.window._qt_window.resizeDocks([dock], [args.size[0] * 2 // 5], Qt.Orientation.Horizontal)
    widget.pred_combo.value = objects
    widget.ref_combo.value = ref_layer
    widget.use_ignore.value = True
    widget.ignore.value = 128
    widget.layers_button.clicked.emit(True)
    wait_until(app, lambda: not widget.busy and f"{objects.name} errors" in viewer.layers, args.timeout)
    objects.opacity = 0.35
    viewer.layers.selection.active = image_layer
    settle(app)  # let the canvas take its new size before fitting the view
    viewer.reset_view()
    settle(app)
    save(viewer, args.output_dir / "evaluate.png")
    print(f"evaluate: {widget.status.value}")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
