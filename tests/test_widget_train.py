"""The *Train & predict* dock widget in a real viewer (pytest-qt, Xvfb): train, cancel, predict, corrections."""

from __future__ import annotations

import numpy as np
import pytest

try:  # load torch's triton before any canvas loads Mesa's LLVM (see _qt/_torch_guard.py)
    import torchvision.models  # noqa: F401
except ImportError:  # pragma: no cover
    pass

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
torch = pytest.importorskip("torch")

from napari.layers import Labels
from PIL import Image as PILImage

from napari_deepseg._qt import train_widget as tw
from napari_deepseg._qt import _common  # noqa: E402
from napari_deepseg.core.models.training.synthetic import shapes_sample, write_shapes_dataset

WAIT_MS = 120_000


@pytest.fixture(autouse=True)
def _one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def errors(monkeypatch):
    seen = []
    monkeypatch.setattr(_common, "show_error", seen.append)
    monkeypatch.setattr(tw, "show_info", lambda *_: None)
    return seen


@pytest.fixture
def widget(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-deepseg", "Train & predict")
    w.image_size.value, w.net_width.value, w.epochs.value, w.batch_size.value = 32, 4, 2, 2
    w.device.value = "cpu"
    w.runs.value = tmp_path / "runs"
    return viewer, w


def add_pairs(viewer, n=4):
    for k in range(n):
        image, mask = shapes_sample(32, seed=k, distractor=0)
        viewer.add_image(image, name=f"img{k}")
        viewer.add_labels((mask > 0).astype(np.uint8), name=f"img{k} labels")


def wait(qtbot, w):
    qtbot.waitUntil(lambda: not w.busy, timeout=WAIT_MS)


def test_pairing_rules(widget):
    viewer, _ = widget
    viewer.add_image(np.zeros((8, 8)), name="a")
    viewer.add_labels(np.zeros((8, 8), np.uint8), name="a scribbles", metadata={"napari-deepseg": {"role": "scribbles"}})
    viewer.add_labels(np.zeros((4, 4), np.uint8), name="a labels")  # wrong shape
    assert tw.labels_for(viewer, viewer.layers["a"]) is None
    viewer.add_labels(np.zeros((8, 8), np.uint8), name="a prediction")
    assert tw.labels_for(viewer, viewer.layers["a"]).name == "a prediction"


def test_train_plot_predict_and_add_corrections(widget, qtbot, tmp_path, errors):
    viewer, w = widget
    add_pairs(viewer)
    assert w.train()
    wait(qtbot, w)
    assert not errors, errors
    assert w.checkpoint.value is not None and (w.checkpoint.value / "model.safetensors").is_file()
    assert [h["epoch"] for h in w.plot.history] == [1, 2] and "dice" in w.plot.history[0]
    # predict every image layer -> "<image> prediction" layers
    w.target.value = "all image layers"
    assert w.predict()
    wait(qtbot, w)
    pred = viewer.layers["img0 prediction"]
    assert isinstance(pred, Labels) and pred.data.shape == (32, 32)
    # a second prediction writes into the same layer with undo
    w.target.value = "current image"
    viewer.layers.selection.active = viewer.layers["img0"]
    assert w.predict()
    wait(qtbot, w)
    assert "img0 prediction (" not in " ".join(layer.name for layer in viewer.layers)
    # corrections join the training set
    w.dataset.value = tmp_path / "ds"
    assert w.add_corrections() == 4
    assert len(list((tmp_path / "ds" / "masks").glob("*.png"))) == 4
    # ... and a folder prediction labels files
    src = write_shapes_dataset(tmp_path / "files", n=2, size=32)
    w.target.value = "folder"
    w.predict_in.value, w.predict_out.value = src / "images", tmp_path / "out"
    assert w.predict()
    wait(qtbot, w)
    assert np.asarray(PILImage.open(tmp_path / "out" / "0000.png")).shape == (32, 32)
    assert not errors, errors


def test_cancel_keeps_the_previous_model(widget, qtbot, tmp_path, errors):
    viewer, w = widget
    add_pairs(viewer)
    previous = tmp_path / "previous"
    previous.mkdir()
    w.checkpoint.value = previous
    w.epochs.value = 500
    assert w.train()
    qtbot.waitUntil(lambda: len(w.plot.history) >= 1, timeout=WAIT_MS)
    w.cancel()
    wait(qtbot, w)
    assert w.checkpoint.value == previous and "cancelled" in w.status.value and not errors


def test_bad_inputs_are_one_notification(widget, errors):
    viewer, w = widget
    assert not w.train() and "Labels layer" in errors[-1]
    assert not w.predict() and "no image layer" in errors[-1]
    viewer.add_image(np.zeros((32, 32)), name="x")
    assert not w.predict() and "no model yet" in errors[-1]
    w.source.value = "dataset folder"
    assert not w.train() and "dataset folder" in errors[-1]
    w.source.value = "image layers"
    add_pairs(viewer, 2)
    w.extra.value = "edges"
    assert not w.train() and "extra channel" in errors[-1]
    w.extra.value = ""
    w.lr.value = "fast"
    assert not w.train() and "learning rate" in errors[-1]
    assert not w.add_corrections() and "dataset folder" in errors[-1]
    assert not w.busy


def test_resnet34_unet_without_imagenet_weights_says_so(widget, qtbot, tmp_path, errors, monkeypatch):
    """Offline, resnet34-unet trains from random weights: the status line and a notification say it."""
    from napari_deepseg.core.io import weights
    from napari_deepseg.core.io.weights import NO_INTERNET

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    monkeypatch.delenv("NAPARI_DEEPSEG_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr(weights, "unreachable_cause", lambda url, timeout=None: NO_INTERNET)
    warned = []
    monkeypatch.setattr(tw, "show_warning", warned.append)
    viewer, w = widget
    add_pairs(viewer)
    w.model.value = "resnet34-unet"
    w.epochs.value, w.batch_size.value = 1, 3  # 3 training pairs: no batch of one (BatchNorm at 1x1)
    assert w.train()
    qtbot.waitUntil(lambda: any("random weights" in m for m in warned), timeout=WAIT_MS)
    note = next(m for m in warned if "random weights" in m)
    assert "no internet connection" in note and "resnet34-b627a593.pth" in note and "\n" not in note
    wait(qtbot, w)
    assert not errors, errors
    assert "trained" in w.status.value and "random weights" in w.status.value


def test_too_few_pairs_and_a_near_zero_dice_are_warned(widget, qtbot, errors, monkeypatch):
    """2 pairs for a UNet: a warning before training (with the typical number), another for Dice near zero."""
    from napari_deepseg.core.models.training import loop

    warned = []
    monkeypatch.setattr(tw, "show_warning", warned.append)
    viewer, w = widget
    add_pairs(viewer, n=2)
    w.epochs.value = 1
    real_fit = loop.fit

    def fit_scoring_zero(*args, **kwargs):  # the outcome of 2 pairs, without waiting for it
        result = real_fit(*args, **kwargs)
        result.best_score = 0.003
        return result

    monkeypatch.setattr(loop, "fit", fit_scoring_zero)
    monkeypatch.setattr("napari_deepseg.core.models.training.fit", fit_scoring_zero)
    assert w.train()
    assert warned and "only 2 labelled image/label pairs for unet" in warned[0] and "20 or more" in warned[0]
    assert "only 2" in w.status.value and "training unet" in w.status.value
    wait(qtbot, w)
    assert not errors, errors
    assert any("best validation Dice 0.003 is near zero" in m for m in warned), warned
    assert "trained" in w.status.value and "near zero" in w.status.value


def test_enough_pairs_are_not_warned(widget, monkeypatch):
    from napari_deepseg.core.models.training.advice import data_advice

    assert data_advice("unet", 25) is None and data_advice("clip-seg", 12) is None
    assert data_advice("resnet34-unet", 12, pretrained=False) is not None
