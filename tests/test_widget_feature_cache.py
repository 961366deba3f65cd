"""The scribble widget's *feature cache* option in a real napari viewer (pytest-qt, Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest

from _synthetic import disk_image, disk_scribbles

try:  # torch's triton before Mesa's LLVM (see napari_deepseg/_qt/_torch_guard.py)
    import torchvision.models  # noqa: F401
except ImportError:  # pragma: no cover
    pass

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_deepseg._qt import _common  # noqa: E402
from napari_deepseg.core.features.simple import ClassicFeatures  # noqa: E402

WAIT_MS = 60_000


@pytest.fixture
def widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-deepseg", "Scribble segmentation")
    w.preset.value = "seed"  # reads the classic features (the default preset reads colour only)
    image, truth = disk_image((64, 80), channels=3)
    w.image_combo.value = viewer.add_image(image, name="disk", rgb=True)
    w.scribbles_combo.value = viewer.add_labels(disk_scribbles(truth), name="disk scribbles")
    yield w, viewer, truth
    w.cancel()
    qtbot.waitUntil(lambda: not w.busy, timeout=WAIT_MS)


def _run(w, qtbot):
    assert w.segment()
    qtbot.waitUntil(lambda: not w.busy, timeout=WAIT_MS)


def test_second_session_loads_features_from_the_cache(widget, qtbot, tmp_path, monkeypatch):
    w, viewer, truth = widget
    store = tmp_path / "features.zarr"
    w.feature_cache.value = store
    calls = []
    original = ClassicFeatures._extract
    monkeypatch.setattr(ClassicFeatures, "_extract", lambda self, *a: calls.append(1) or original(self, *a))
    _run(w, qtbot)
    assert calls == [1] and store.is_dir()
    first = np.array(viewer.layers["disk segmentation"].data)
    assert ((first == 1) == truth).mean() > 0.95
    assert ("classic", (), str(store)) in w._pool.slots  # (the widget may also have prepared the image without it)

    w._pool.slots.clear()  # a new session, as after restarting napari
    viewer.layers.remove("disk segmentation")
    _run(w, qtbot)
    assert calls == [1], "the second session extracted the features again instead of loading them"
    np.testing.assert_array_equal(viewer.layers["disk segmentation"].data, first)


def test_empty_feature_cache_is_off(widget, qtbot, tmp_path):
    w, _, _ = widget
    assert w.options().feature_cache == ""
    _run(w, qtbot)
    assert list(w._pool.slots) == [("classic", ())]
    assert w._pool.slots[("classic", ())].session.feature_cache is None


def test_feature_cache_on_a_file_is_a_notification(widget, tmp_path, monkeypatch):
    w, viewer, _ = widget
    seen = []
    monkeypatch.setattr(_common, "show_error", seen.append)
    path = tmp_path / "not-a-store.zarr"
    path.write_text("x")
    w.feature_cache.value = path
    assert not w.segment()
    assert len(seen) == 1 and "is a file" in seen[0] and str(path) in seen[0]
    assert "disk segmentation" not in viewer.layers
