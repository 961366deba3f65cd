"""The scribble widget on a 4-band (RGB + near-infrared) image layer with a channel axis."""

from __future__ import annotations

import numpy as np
import pytest

from _synthetic import disk_scribbles, nir_disk_image

try:  # torch's triton before Mesa's LLVM (see napari_deepseg/_qt/_torch_guard.py)
    import torchvision.models  # noqa: F401
except ImportError:  # pragma: no cover
    pass

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

WAIT_MS = 60_000


def _iou(mask, truth) -> float:
    return float((mask & truth).sum() / max(1, (mask | truth).sum()))


def _segment(viewer, w, qtbot, layer, scribbles):
    w.image_combo.value = layer
    w.scribbles_combo.value = scribbles
    started = w.segment()
    qtbot.waitUntil(lambda: not w.busy, timeout=WAIT_MS)
    return started, viewer.layers[f"{layer.name} segmentation"] if started else None


def test_channel_axis_first_keeps_the_nir_band(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image, truth = nir_disk_image((64, 80), dtype=np.uint16)
    bands = np.ascontiguousarray(np.moveaxis(image, -1, 0))  # (4, rows, cols): a stack to napari
    layer = viewer.add_image(bands, name="tile")
    _, w = viewer.window.add_plugin_dock_widget("napari-deepseg", "Scribble segmentation")
    w.image_combo.value = layer
    w.channel_axis.value = "first"
    scribbles = w.new_scribbles_layer()
    assert scribbles.data.shape == (64, 80)
    scribbles.data = disk_scribbles(truth)
    started, result = _segment(viewer, w, qtbot, layer, scribbles)
    assert started and result.data.shape == (64, 80)
    assert _iou(np.asarray(result.data) == 1, truth) > 0.95


def test_rgba_layer_channel_axis_last_versus_none(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image, truth = nir_disk_image((64, 80), dtype=np.uint8)
    layer = viewer.add_image(image, name="tile", rgb=True)  # napari shows the 4th band as alpha
    scribbles = viewer.add_labels(disk_scribbles(truth), name="tile scribbles")
    _, w = viewer.window.add_plugin_dock_widget("napari-deepseg", "Scribble segmentation")
    w.channel_axis.value = "none"
    _, result = _segment(viewer, w, qtbot, layer, scribbles)
    blind = _iou(np.asarray(result.data) == 1, truth)
    w.channel_axis.value = "last"
    _, result = _segment(viewer, w, qtbot, layer, scribbles)
    seen = _iou(np.asarray(result.data) == 1, truth)
    assert blind < 0.7 and seen > 0.95, (blind, seen)


def test_channel_axis_errors_are_notifications(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image, truth = nir_disk_image((64, 80), dtype=np.uint16)
    layer = viewer.add_image(np.moveaxis(image, -1, 0), name="tile")
    wrong = viewer.add_labels(np.zeros((4, 64, 80), np.uint8), name="stack scribbles")
    _, w = viewer.window.add_plugin_dock_widget("napari-deepseg", "Scribble segmentation")
    w.channel_axis.value = "first"
    w.image_combo.value, w.scribbles_combo.value = layer, wrong
    assert not w.segment()
    assert "without its channel axis has shape (64, 80)" in w.status.value
    w.backbone.value = "resnet50"
    w.rgb_channels.value = "0, 1"
    right = viewer.add_labels(disk_scribbles(truth), name="tile scribbles")
    w.scribbles_combo.value = right
    assert not w.segment()
    assert "RGB channels must be three channel indices" in w.status.value
    gray = viewer.add_image(image[..., 0], name="gray")
    w.image_combo.value = gray
    w.backbone.value = "classic"
    assert w.new_scribbles_layer() is None
    assert "has no channel axis" in w.status.value
