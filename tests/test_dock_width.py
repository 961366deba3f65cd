"""Every dock fits beside the canvas on a 1440-px-wide screen (issue 30): at most MAX_DOCK_PX wide, even while
its status line shows a long message with a long path (Train & predict took ~30 % of a 1500-px window)."""

import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from qtpy.QtWidgets import QApplication  # noqa: E402

#: the widest a dock may ask to be (minimum and preferred width), in pixels
MAX_DOCK_PX = 400
DOCKS = ("Scribble segmentation", "Point prompts", "Automatic proposal", "Saliency map", "Evaluate", "Train & predict",
         "Dataset")
LONG = ("model written to /home/someone/projects/segmentation/runs/unet-resnet34-2026-12-06T04-30-00/"
        "checkpoint-best.safetensors (validation IoU 0.91); predicting the input folder with it now")


@pytest.mark.parametrize("name", DOCKS)
def test_a_dock_fits_beside_the_canvas_on_a_1440_px_screen(make_napari_viewer, qtbot, name):
    viewer = make_napari_viewer()
    window = viewer.window._qt_window
    window.resize(1440, 900)
    window.show()
    dock, widget = viewer.window.add_plugin_dock_widget("napari-deepseg", name)
    qtbot.wait(100)  # the widget's own first status lines (a prediction with no layers yet, ...)
    widget.status.value = LONG
    QApplication.processEvents()
    assert widget.status.value == LONG  # the whole message is kept (the tooltip shows it)
    sizes = {"minimum": dock.minimumSizeHint().width(), "preferred": dock.sizeHint().width()}
    assert max(sizes.values()) <= MAX_DOCK_PX, f"{name}: {sizes}"
