"""The *Evaluate*, *Automatic proposal* and *Saliency map* dock widgets in a real viewer (pytest-qt, Xvfb)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

try:  # load torch's triton before any canvas loads Mesa's LLVM (see _qt/_torch_guard.py)
    import torchvision.models  # noqa: F401
except ImportError:  # pragma: no cover
    pass

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from _synthetic import disk_image
from napari.layers import Image, Labels
from PIL import Image as PILImage

from napari_deepseg._qt import _common  # noqa: E402

WAIT_MS = 60_000


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def errors(monkeypatch):
    seen = []
    monkeypatch.setattr(_common, "show_error", seen.append)
    return seen


def dock(viewer, name):
    _, widget = viewer.window.add_plugin_dock_widget("napari-deepseg", name)
    return widget


def wait(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)


# ------------------------------------------------------------------------------ Evaluate
def test_evaluate_layers_table_overlay_and_csv(viewer, qtbot, tmp_path, errors):
    truth = np.zeros((4, 4), np.uint8)
    truth[0:2, 2:4] = 1
    pred = truth.copy()
    pred[1, 1] = 1  # one false positive
    pred[0, 3] = 0  # one false negative
    viewer.add_labels(truth, name="reference")
    viewer.add_labels(pred, name="prediction")
    w = dock(viewer, "Evaluate")
    w.pred_combo.value = viewer.layers["prediction"]
    w.ref_combo.value = viewer.layers["reference"]
    assert w.evaluate_layers()
    wait(qtbot, w)
    rows = {r["class"]: r for r in w.rows}
    assert rows[1]["iou"] == pytest.approx(3 / 5)  # tp 3, fp 1, fn 1
    assert rows["mean"]["iou"] == pytest.approx((3 / 5 + 11 / 13) / 2)  # background: tp 11, fp 1, fn 1
    assert w.table.shape == (3, len(w.columns))
    overlay = viewer.layers["prediction errors"]
    assert isinstance(overlay, Labels)
    assert overlay.data[1, 1] == 1 and overlay.data[0, 3] == 2 and np.count_nonzero(overlay.data) == 2
    assert np.array_equal(viewer.layers["prediction"].data, pred)  # the user's labels are untouched
    # a second run replaces the plugin's own overlay instead of adding layers
    w.background.value = False
    assert w.evaluate_layers()
    wait(qtbot, w)
    assert len(viewer.layers) == 3 and [r["class"] for r in w.rows] == [1, "mean"]
    w.csv_path.value = tmp_path / "table.csv"
    out = w.export_csv()
    assert out is not None
    table = list(csv.DictReader(out.open()))
    assert table[0]["class"] == "1" and float(table[0]["iou"]) == pytest.approx(0.6)
    assert not errors


def test_evaluate_layers_bad_input(viewer, qtbot, errors):
    viewer.add_labels(np.zeros((4, 4), np.uint8), name="a")
    viewer.add_labels(np.zeros((5, 4), np.uint8), name="b")
    w = dock(viewer, "Evaluate")
    w.pred_combo.value = viewer.layers["a"]
    w.ref_combo.value = viewer.layers["b"]
    assert not w.evaluate_layers()
    assert "has shape" in errors[-1] and "\n" not in errors[-1]
    w.ref_combo.value = viewer.layers["a"]
    assert not w.evaluate_layers()
    assert "same layer" in errors[-1]
    assert w.export_csv() is None and "evaluate first" in errors[-1]


def test_evaluate_table_shows_plain_numbers(viewer, qtbot, errors):
    # magicgui's table delegate showed 160000 pixels as "1.600e+05" and small scores as "9.000e-03"
    from qtpy.QtCore import QLocale, Qt

    truth = np.zeros((400, 400), np.uint8)
    truth[:, :10] = 1
    pred = truth.copy()
    pred[:, 10:14] = 1  # 1600 false positives: class 0 IoU 0.99, MSE 0.01
    viewer.add_labels(truth, name="reference")
    viewer.add_labels(pred, name="prediction")
    w = dock(viewer, "Evaluate")
    w.pred_combo.value = viewer.layers["prediction"]
    w.ref_combo.value = viewer.layers["reference"]
    assert w.evaluate_layers()
    wait(qtbot, w)
    qtable = w.table.native
    delegate = qtable.itemDelegate()

    def shown(row, column):
        item = qtable.item(row, list(w.columns).index(column))
        return delegate.displayText(item.data(Qt.ItemDataRole.DisplayRole), QLocale())

    assert w.rows[0]["class"] == 0 and shown(0, "pixels") == "156000"
    assert shown(0, "mse") == "0.01" and "e" not in shown(1, "iou")
    assert not errors


def test_evaluate_folders(viewer, qtbot, tmp_path, errors):
    (tmp_path / "p").mkdir()
    (tmp_path / "g").mkdir()
    mask = np.zeros((6, 6), np.uint8)
    mask[1:5, 1:5] = 255
    PILImage.fromarray(mask).save(tmp_path / "g" / "x.png")
    PILImage.fromarray(mask // 255).save(tmp_path / "p" / "x.png")
    PILImage.fromarray(mask).save(tmp_path / "g" / "lonely.png")
    w = dock(viewer, "Evaluate")
    w.pred_dir.value = tmp_path / "p"
    w.ref_dir.value = tmp_path / "g"
    assert w.evaluate_folders()
    wait(qtbot, w)
    rows = {r["file"]: r for r in w.rows}
    assert rows["x"]["iou"] == 1.0 and rows["lonely"]["status"] == "no prediction file"
    assert rows["mean"]["iou"] == 1.0 and "1 not scored" in w.status.value
    assert not errors


# ------------------------------------------------------------------------------ Automatic proposal
@pytest.fixture(scope="module")
def mobilenet_file(tmp_path_factory):
    import torch
    import torchvision.models.segmentation as seg

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "deeplab.pth"
    torch.save(seg.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, aux_loss=True).state_dict(),
               path)
    return path


def test_automatic_proposal_and_scribbles(viewer, qtbot, mobilenet_file, errors, monkeypatch):
    image, _ = disk_image((48, 64), channels=3, dtype=np.uint8)
    viewer.add_image(image, name="photo", rgb=True)
    w = dock(viewer, "Automatic proposal")
    w.model.value = "deeplabv3_mobilenet_v3_large"
    w.weights.value = mobilenet_file
    w.device.value = "cpu"
    w.classes.value = "pet"
    assert w.propose()
    wait(qtbot, w)
    layer = viewer.layers["photo proposal"]
    assert isinstance(layer, Labels) and layer.data.shape == (48, 64)
    assert list(layer.features["class"]) == ["background", "cat+dog"]
    # seeds: force a confident object in the middle of the newest proposal
    image_layer, plane, shape, proposal = w._last
    prob = np.zeros((48, 64), np.float32)
    prob[14:34, 20:44] = 1.0
    w._last = (image_layer, plane, shape, type(proposal)(
        proposal.labels, proposal.confidence, prob, proposal.class_names, proposal.classes, proposal.model))
    w.margin.value = 2
    scribbles = w.scribbles_from_proposal()
    assert isinstance(scribbles, Labels) and scribbles.name.startswith("photo scribbles")
    assert scribbles.data[24, 32] == 1 and scribbles.data[0, 0] == 2 and scribbles.data[14, 20] == 0
    # a second proposal (multi-class) updates the same layer with undo
    w.classes.value = ""
    assert w.propose()
    wait(qtbot, w)
    assert [lay.name for lay in viewer.layers].count("photo proposal") == 1
    assert len(viewer.layers["photo proposal"].features) == 21
    assert not errors


def test_automatic_proposal_bad_input(viewer, qtbot, errors, tmp_path):
    w = dock(viewer, "Automatic proposal")
    assert not w.propose()
    assert "no image layer" in errors[-1]
    viewer.add_image(np.zeros((8, 8), np.uint8), name="img")
    w.classes.value = "unicorn"
    assert not w.propose()
    assert "unknown class 'unicorn'" in errors[-1]
    w.classes.value = ""
    w.weights.value = tmp_path / "missing.pth"
    assert not w.propose()
    assert "weights file not found" in errors[-1]
    assert w.scribbles_from_proposal() is None and "no proposal yet" in errors[-1]


# ------------------------------------------------------------------------------ Saliency map
def test_saliency_widget_adds_an_image_layer(viewer, qtbot, errors):
    import torch

    from napari_deepseg.core.models.saliency import SaliencyModel

    torch.manual_seed(0)
    tiny = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, 10))
    image, _ = disk_image((40, 48), channels=3, dtype=np.uint8)
    viewer.add_image(image, name="photo", rgb=True)
    w = dock(viewer, "Saliency map")
    w._models[(None, "auto")] = SaliencyModel(network=tiny)  # a tiny classifier instead of VGG16
    w.class_index.value = 3
    w.mode.value = "deconv"
    assert w.compute()
    wait(qtbot, w)
    layer = viewer.layers["photo saliency"]
    assert isinstance(layer, Image) and layer.data.shape == (40, 48)
    assert 0 <= layer.data.min() and layer.data.max() <= 1
    assert "class 3" in w.status.value
    assert w.compute()
    wait(qtbot, w)
    assert [lay.name for lay in viewer.layers].count("photo saliency") == 1
    assert not errors


def test_evaluate_binary_mode_for_0_255_references(viewer, qtbot, errors):
    truth = np.zeros((6, 6), np.uint8)
    truth[1:4, 1:4] = 255
    truth[0, :] = 128  # GrabCut's band
    pred = (truth == 255).astype(np.uint8)
    pred[5, 5] = 1
    viewer.add_labels(truth, name="reference")
    viewer.add_labels(pred, name="prediction")
    w = dock(viewer, "Evaluate")
    w.pred_combo.value = viewer.layers["prediction"]
    w.ref_combo.value = viewer.layers["reference"]
    w.use_ignore.value = True
    w.ignore.value = 128
    assert w.evaluate_layers()
    wait(qtbot, w)
    assert "share no object label" in w.status.value  # 1 against 255: a hint, not silence
    w.binary.value = True
    assert w.evaluate_layers()
    wait(qtbot, w)
    rows = {r["class"]: r for r in w.rows}
    assert rows[1]["iou"] == pytest.approx(9 / 10)  # 9 true positives, one false positive
    assert "share no object label" not in w.status.value
    assert np.array_equal(viewer.layers["reference"].data, truth)  # nothing written to the user's layers
    assert not errors


def test_evaluate_defaults_to_two_different_layers(viewer, qtbot, errors):
    """The first press works: the reference defaults to another layer, one named like a reference when present."""
    truth = np.zeros((6, 6), np.uint8)
    truth[1:4, 1:4] = 1
    viewer.add_labels(truth, name="cat ground truth")
    viewer.add_labels(truth.copy(), name="cat segmentation")
    w = dock(viewer, "Evaluate")
    assert w.pred_combo.value is viewer.layers["cat segmentation"]
    assert w.ref_combo.value is viewer.layers["cat ground truth"]
    assert w.evaluate_layers()
    wait(qtbot, w)
    assert not errors, errors
    # a layer added later does not move a choice that already differs ...
    viewer.add_labels(truth.copy(), name="other")
    assert w.ref_combo.value is viewer.layers["cat ground truth"]


def test_evaluate_defaults_with_plain_names_and_a_later_gt(viewer, qtbot, errors):
    w = dock(viewer, "Evaluate")
    viewer.add_labels(np.zeros((4, 4), np.uint8), name="a")
    assert w.pred_combo.value is w.ref_combo.value  # one layer: nothing else to choose
    viewer.add_labels(np.zeros((4, 4), np.uint8), name="b_gt")
    assert w.pred_combo.value is viewer.layers["a"] and w.ref_combo.value is viewer.layers["b_gt"]
