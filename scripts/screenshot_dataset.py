"""Take the screenshot of the *Dataset* dock (``docs/images/dataset.png``).

Copies five GrabCut photos into a temporary images folder, opens napari with the
*Scribble segmentation* and *Dataset* docks, opens the folder, annotates the first
two images with the GrabCut set-1 strokes (*Segment*, then *Done → next*) and the
third one with its strokes and result, and saves the window. Only the weight-free
``classic`` features are used, so it runs offline.

Usage (headless)::

    xvfb-run -a python scripts/screenshot_dataset.py [--dataset ../shared/datasets/grabcut] [-o docs/images/dataset.png]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot import settle, wait_until  # the README screenshot's helpers

try:  # load torch's triton before the canvas loads Mesa's LLVM (see napari_deepseg/_qt/_torch_guard.py)
    import torchvision.models  # noqa: F401
except ImportError:  # pragma: no cover
    pass

ROOT = Path(__file__).resolve().parents[1]
STEMS = ("banana1", "bool", "ceramic", "flower", "llama")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=ROOT.parent / "shared" / "datasets" / "grabcut")
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "images" / "dataset.png")
    args = ap.parse_args(argv)

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_deepseg._qt import _layers
    from napari_deepseg._qt.dataset_widget import DatasetWidget
    from napari_deepseg._qt.scribble_widget import ScribbleSegmentationWidget
    from napari_deepseg.core.io.files import read_labels

    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "pets" / "images"
        images.mkdir(parents=True)
        for stem in STEMS:
            src = next((args.dataset / "images").glob(stem + ".*"))
            shutil.copy(src, images / src.name)
        viewer = napari.Viewer(show=True)
        app = QApplication.instance()
        viewer.window._qt_window.resize(1440, 900)
        scribble = ScribbleSegmentationWidget(viewer)
        viewer.window.add_dock_widget(scribble, name="Scribble segmentation")
        dock = DatasetWidget(viewer, scribble_widget=scribble)
        viewer.window.add_dock_widget(dock, name="Dataset", tabify=True)
        assert dock.open_folder(images, images.parent)
        for k in range(3):
            layer = dock._layer_of(_layers.ROLE_SCRIBBLES)
            layer.data = read_labels(args.dataset / "scribbles-set-1" / f"{dock.image_layer.name}-anno.png")
            scribble.image_combo.value = dock.image_layer
            scribble.scribbles_combo.value = layer
            scribble.segment()
            wait_until(app, lambda: not scribble.busy and not scribble.refitting, 120)
            if k < 2:
                dock.mark("done")
        dock.native.parent().raise_()
        settle(app, 1.0)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        viewer.window.screenshot(str(args.output), canvas_only=False)
        print(f"wrote {args.output}")
        dock.close_folder()
        viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
