"""The scribble widget's 3-D mode: a whole volume cut from strokes on one plane, under Xvfb."""

from __future__ import annotations

import numpy as np
import pytest

try:  # torch's triton before Mesa's LLVM (see napari_deepseg/_qt/_torch_guard.py)
    import torchvision.models  # noqa: F401
except ImportError:  # pragma: no cover
    pass

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_deepseg._qt import _common  # noqa: E402
from napari_deepseg.core.cut.volume import VolumeSession  # noqa: E402

from test_volume import one_plane_scribbles, sphere  # noqa: E402

WAIT_MS = 60_000


def iou(a, b) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.fixture
def setup(make_napari_viewer, monkeypatch):
    viewer = make_napari_viewer()
    vol, truth = sphere((12, 40, 40), seed=1)
    image = viewer.add_image(vol, name="vol", scale=(2.0, 1.0, 1.0))
    scribbles = viewer.add_labels(one_plane_scribbles(vol.shape), name="vol scribbles", scale=(2.0, 1.0, 1.0))
    _, w = viewer.window.add_plugin_dock_widget("napari-deepseg", "Scribble segmentation")
    w.image_combo.value, w.scribbles_combo.value = image, scribbles
    errors = []
    monkeypatch.setattr(_common, "show_error", errors.append)
    return viewer, w, truth, errors


def test_3d_cut_fills_every_plane_with_the_layer_spacing(setup, qtbot, monkeypatch):
    viewer, w, truth, errors = setup
    spacings = []
    original = VolumeSession.set_image
    monkeypatch.setattr(VolumeSession, "set_image",
                        lambda self, img, spacing=None, **k: spacings.append(spacing) or original(self, img, spacing, **k))
    w.volume.value = "3-D cut"
    assert w.segment()
    qtbot.waitUntil(lambda: not w.busy, timeout=WAIT_MS)
    assert not errors and spacings == [(2.0, 1.0, 1.0)]
    result = viewer.layers["vol segmentation"]
    mask = np.asarray(result.data) == 1
    assert mask.shape == truth.shape and iou(mask, truth) > 0.9
    planes = truth.any(axis=(1, 2))
    assert mask.any(axis=(1, 2))[planes].sum() >= planes.sum() - 1  # planes without strokes are segmented too
    w.volume.value = "per plane"
    assert w.segment()
    qtbot.waitUntil(lambda: not w.busy, timeout=WAIT_MS)
    assert iou(np.asarray(result.data) == 1, truth) > 0.85


def test_3d_cut_refuses_deep_backbones_with_a_notification(setup, qtbot):
    viewer, w, truth, errors = setup
    w.volume.value = "3-D cut"
    w.preset.value = "seed"
    assert not w.segment()
    assert errors and "weight-free" in errors[-1]


def test_a_second_3d_cut_is_one_undoable_edit(setup, qtbot):
    viewer, w, truth, errors = setup
    w.volume.value = "3-D cut"
    assert w.segment()
    qtbot.waitUntil(lambda: not w.busy, timeout=WAIT_MS)
    result = viewer.layers["vol segmentation"]
    first = np.array(result.data, copy=True)
    scribbles = viewer.layers["vol scribbles"]
    more = np.array(scribbles.data, copy=True)
    more[:, :, truth.shape[2] // 2 :][truth[:, :, truth.shape[2] // 2 :]] = 2  # half the object is background now
    more[truth.shape[0] // 2, 18:22, 10:14] = 1
    scribbles.data = more
    assert w.segment()
    qtbot.waitUntil(lambda: not w.busy, timeout=WAIT_MS)
    second = np.array(result.data, copy=True)
    assert not errors and not np.array_equal(second, first)
    assert viewer.layers["vol segmentation"] is result
    result.undo()
    np.testing.assert_array_equal(result.data, first)
    result.redo()
    np.testing.assert_array_equal(result.data, second)
