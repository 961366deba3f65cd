"""What the widgets say when weights are missing: the widget's own terms, not the CLI's (pytest-qt, Xvfb)."""

from __future__ import annotations

import socket
import urllib.error

import numpy as np
import pytest

try:  # load torch's triton before any canvas loads Mesa's LLVM (see _qt/_torch_guard.py)
    import torchvision.models  # noqa: F401
except ImportError:  # pragma: no cover
    pass

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from _synthetic import disk_image

from napari_deepseg._qt import _common  # noqa: E402
from napari_deepseg.core.io import weights

WAIT_MS = 60_000


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def errors(monkeypatch):
    seen = []
    monkeypatch.setattr(_common, "show_error", seen.append)
    return seen


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No weights on disk, and every download fails as it does with no DNS."""
    import torch.hub

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("NAPARI_DEEPSEG_WEIGHTS_DIR", raising=False)

    def fail(url, *args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fail)
    monkeypatch.setattr(weights, "unreachable_cause", lambda url, timeout=None: None, raising=False)
    return tmp_path


def dock(viewer, name):
    _, widget = viewer.window.add_plugin_dock_widget("napari-deepseg", name)
    return widget


def _check_gui_wording(message: str) -> None:
    assert "--weights" not in message and "URLError" not in message, message
    assert "no internet connection" in message and "choose the file in *weights*" in message, message


def test_proposal_widget_names_its_weights_field(viewer, qtbot, offline, errors):
    image, _ = disk_image((32, 40), channels=3, dtype=np.uint8)
    viewer.add_image(image, name="photo", rgb=True)
    w = dock(viewer, "Automatic proposal")
    w.model.value = "deeplabv3_mobilenet_v3_large"
    w.device.value = "cpu"
    w.propose()
    qtbot.waitUntil(lambda: not w.busy, timeout=WAIT_MS)
    assert errors, w.status.value
    _check_gui_wording(errors[-1])
    assert w.status.value == errors[-1]


def test_scribble_widget_names_its_weights_field(viewer, qtbot, offline, errors):
    image, truth = disk_image((32, 40), channels=3, dtype=np.uint8)
    viewer.add_image(image, name="photo", rgb=True)
    w = dock(viewer, "Scribble segmentation")
    w.backbone.value = "resnet50"
    w.device.value = "cpu"
    scribbles = np.zeros((32, 40), np.uint8)
    scribbles[16, 20] = 1
    scribbles[1, 1] = 2
    layer = viewer.add_labels(scribbles, name="photo scribbles")
    w.reset_choices()
    w.image_combo.value = viewer.layers["photo"]
    w.scribbles_combo.value = layer
    assert w.segment()
    qtbot.waitUntil(lambda: bool(errors), timeout=WAIT_MS)
    _check_gui_wording(errors[-1])
    w.cancel()  # the background preparation (it fails the same way) must end before the viewer closes:
    qtbot.waitUntil(lambda: not w.busy and not w.preparing, timeout=WAIT_MS)  # its worker outliving it aborted
