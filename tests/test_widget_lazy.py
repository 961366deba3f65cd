"""The scribble widget on a lazy (dask) image layer: the core gets the lazy array, not a loaded copy."""

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
da = pytest.importorskip("dask.array")

from napari_deepseg._qt import _layers  # noqa: E402
from napari_deepseg.core import SegmentationSession  # noqa: E402

WAIT_MS = 60_000


def test_lazy_image_layer_is_segmented_without_loading_it(make_napari_viewer, qtbot, monkeypatch):
    viewer = make_napari_viewer()
    image, truth = disk_image((96, 120), seed=4)
    lazy = da.from_array(image, chunks=(32, 120, 3))
    layer = viewer.add_image(lazy, name="lazy disk", rgb=True)
    scribbles = viewer.add_labels(disk_scribbles(truth), name="lazy disk scribbles")
    seen = []
    original = SegmentationSession.set_image

    def spy(self, img, *a, **k):
        seen.append(type(img))
        return original(self, img, *a, **k)

    monkeypatch.setattr(SegmentationSession, "set_image", spy)
    _, w = viewer.window.add_plugin_dock_widget("napari-deepseg", "Scribble segmentation")
    w.image_combo.value = layer
    w.scribbles_combo.value = scribbles
    assert w.segment()
    qtbot.waitUntil(lambda: not w.busy, timeout=WAIT_MS)
    assert seen and all(issubclass(t, da.Array) for t in seen)
    result = [lyr for lyr in viewer.layers if lyr.name not in ("lazy disk", "lazy disk scribbles")]
    assert result, "no result layer"
    mask = np.asarray(result[-1].data) == 1
    assert (mask & truth).sum() / max(1, (mask | truth).sum()) > 0.9


def test_plane_data_copies_numpy_and_keeps_lazy_arrays_lazy():
    from napari.layers import Image

    arr = np.arange(24.0).reshape(2, 3, 4)
    out = _layers.plane_data(Image(arr), (1,))
    assert isinstance(out, np.ndarray) and not np.shares_memory(out, arr)
    lazy = _layers.plane_data(Image(da.from_array(arr, chunks=(1, 3, 4))), (1,))
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(np.asarray(lazy), arr[1])
