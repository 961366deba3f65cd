"""The *Point prompts* dock widget in a real napari viewer (pytest-qt, Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest
from _synthetic import disk_image

try:  # triton before Mesa's LLVM (see napari_deepseg/_qt/_torch_guard.py)
    import torchvision.models  # noqa: F401
except ImportError:  # pragma: no cover
    pass

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari.layers import Labels, Points

from napari_deepseg._qt import point_widget as pw
from napari_deepseg._qt import _common  # noqa: E402

WAIT_MS = 30_000


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def errors(monkeypatch):
    seen = []
    monkeypatch.setattr(_common, "show_error", seen.append)
    return seen


@pytest.fixture
def widget(viewer, qtbot, errors):
    _, w = viewer.window.add_plugin_dock_widget("napari-deepseg", "Point prompts")
    w.features.value = "classic"
    yield w
    qtbot.waitUntil(lambda: not w.busy, timeout=WAIT_MS)


def _setup(viewer, widget, qtbot):
    image, truth = disk_image((48, 56), channels=3, dtype=np.uint8, seed=2)
    viewer.add_image(image, name="disk", rgb=True)
    widget.reset_choices()
    points = widget.new_points_layer()
    return points, truth


def _wait_mask(widget, qtbot):
    qtbot.waitUntil(lambda: not widget.busy and widget._mask is not None, timeout=WAIT_MS)
    return widget._mask[2]


def _iou(a, b):
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_click_predict_commit_clear(viewer, widget, qtbot, errors):
    points, truth = _setup(viewer, widget, qtbot)
    assert isinstance(points, Points) and points.ndim == 2
    rr, cc = np.argwhere(truth).mean(0).round().astype(int)
    points.add([[rr, cc]])  # a positive click at the disk's centre
    mask = _wait_mask(widget, qtbot)
    assert _iou(mask, truth) > 0.8
    assert bool(points.features["positive"].iloc[0])
    assert "disk prompt mask" in viewer.layers
    # T: the next point is negative, shown red
    assert widget.toggle_mode() is False
    points.add([[2, 2]])
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    assert not bool(points.features["positive"].iloc[1])
    assert np.allclose(points.face_color[1], [1, 0, 0, 1])
    mask = _wait_mask(widget, qtbot)
    # C: commit object 1, prompts cleared
    assert widget.commit() == 1
    objects = viewer.layers["disk objects"]
    assert isinstance(objects, Labels) and int(objects.data.max()) == 1
    assert len(points.data) == 0
    committed = objects.data.copy()
    # a second object overlapping the first never changes it
    widget.toggle_mode()
    points.add([[rr, cc]])
    _wait_mask(widget, qtbot)
    assert widget.commit() == 2
    assert np.array_equal(objects.data[committed > 0], committed[committed > 0])
    assert not errors, errors


def test_negative_only_and_outside_points_are_one_line(viewer, widget, qtbot, errors):
    points, _ = _setup(viewer, widget, qtbot)
    widget.toggle_mode()
    points.add([[5, 5]])
    qtbot.wait(100)
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    assert "positive" in widget.status.value and widget._mask is None
    widget.toggle_mode()
    points.add([[500, 5]])
    qtbot.wait(100)
    assert errors and "outside" in errors[-1] and "\n" not in errors[-1]
    assert widget.commit() == 0  # nothing to commit: one line, no layer
    assert "disk objects" not in viewer.layers


def test_pointclip_without_checkpoint_is_one_line(viewer, widget, qtbot, errors):
    points, _ = _setup(viewer, widget, qtbot)
    widget.predictor.value = "pointclip"
    points.add([[20, 20]])
    qtbot.wait(100)
    assert errors and "checkpoint" in errors[-1]


def test_latest_request_wins(viewer, widget, qtbot):
    points, truth = _setup(viewer, widget, qtbot)
    rr, cc = np.argwhere(truth).mean(0).round().astype(int)
    points.add([[rr, cc]])
    widget.predict()
    widget.predict()  # three requests: only the newest may write
    mask = _wait_mask(widget, qtbot)
    assert widget.runner.latest >= 3 and mask.any()


def test_plane_clicks_rounds_and_filters():
    clicks = pw.plane_clicks(np.array([[1, 2.6, 3.2], [0, 4, 4]]), np.array([True, False]), (1,))
    assert [(c.row, c.col, c.positive) for c in clicks] == [(3, 3, True)]


def test_mask_and_objects_lie_below_the_prompts(viewer, widget, qtbot, errors):
    # the preview and the committed objects were added on top and tinted the green/red points
    points, truth = _setup(viewer, widget, qtbot)
    moves = []
    viewer.layers.events.moved.connect(lambda event: moves.append(event))
    rr, cc = np.argwhere(truth).mean(0).round().astype(int)
    points.add([[rr, cc]])
    _wait_mask(widget, qtbot)
    names = [layer.name for layer in viewer.layers]
    assert names.index("disk prompt mask") < names.index("disk prompts")
    assert moves == []  # inserted in place (each move is a turn of napari's layer events), not added and moved
    assert viewer.layers.selection.active is points
    assert widget.commit() == 1
    names = [layer.name for layer in viewer.layers]
    assert names.index("disk objects") < names.index("disk prompts")
    assert names[-1] == "disk prompts" and viewer.layers.selection.active is points
    assert widget.points_combo.value is points and not errors


def test_a_failed_prediction_clears_the_preview(viewer, widget, qtbot, errors):
    points, truth = _setup(viewer, widget, qtbot)
    rr, cc = np.argwhere(truth).mean(0).round().astype(int)
    points.add([[rr, cc]])
    _wait_mask(widget, qtbot)
    preview = viewer.layers["disk prompt mask"]
    assert preview.data.any()
    points.add([[500, 5]])  # a point outside the image: the request fails
    qtbot.wait(100)
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    assert errors and "outside" in errors[-1]
    assert not preview.data.any() and widget._mask is None  # no stale mask on screen, nothing to commit
    assert widget.commit() == 0
