"""Sample data (GUI-free arrays and napari LayerData) and the npe2 manifest."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

# Load torch's optional triton (it bundles LLVM) before any napari canvas loads Mesa's
# libLLVM: the other order segfaults under Xvfb (see napari_deepseg/_qt/_torch_guard.py).
try:
    import torchvision.models  # noqa: F401
except ImportError:  # pragma: no cover - torch is a dependency
    pass

from napari_deepseg import samples
from napari_deepseg._sample_data import make_aerial_sample, make_cat_sample
from napari_deepseg.core import SegmentationSession


def iou(a, b) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.mark.parametrize("factory", [samples.cat_sample, samples.aerial_sample])
def test_sample_arrays(factory):
    image, scribbles = factory()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3
    assert scribbles.shape == image.shape[:2] and scribbles.dtype == np.uint8
    assert set(np.unique(scribbles).tolist()) == {0, 1, 2}
    # strokes, not a filled map: a small part of the image is scribbled
    assert 0.005 < np.count_nonzero(scribbles) / scribbles.size < 0.15


def test_draw_strokes_thickness():
    canvas = samples.draw_strokes(np.zeros((20, 20), np.uint8), [((10, 2), (10, 17))], 3, radius=2)
    assert set(np.unique(canvas).tolist()) == {0, 3}
    assert canvas[8:13, 10].all() and not canvas[7, 10] and not canvas[13, 10]
    # strokes leaving the canvas are clipped, not wrapped
    clipped = samples.draw_strokes(np.zeros((10, 10), np.uint8), [((5, -5), (5, 20))], 1, radius=0)
    assert clipped[5].all() and clipped.sum() == 10


def test_aerial_is_deterministic():
    a_img, a_scr = samples.aerial_sample()
    b_img, b_scr = samples.aerial_sample()
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_scr, b_scr)
    c_img, _ = samples.aerial_sample(seed=8)
    assert not np.array_equal(a_img, c_img)


def test_aerial_scribbles_follow_roofs():
    image, scribbles = samples.aerial_sample()
    roofs = samples.roof_mask()
    assert roofs.shape == scribbles.shape and 0.05 < roofs.mean() < 0.4
    assert roofs[scribbles == 1].all()  # object strokes only on roofs
    assert not roofs[scribbles == 2].any()  # background strokes never on roofs


def test_aerial_bad_shape():
    with pytest.raises(ValueError, match="at least"):
        samples.aerial_sample(shape=(50, 50))


def test_aerial_segmentation_finds_roofs():
    image, scribbles = samples.aerial_sample()
    session = SegmentationSession("rgb")
    session.set_image(image)
    labels = session.segment(scribbles, preset="seed")
    assert iou(labels == 1, samples.roof_mask()) > 0.7


def test_cat_segmentation_is_sensible():
    image, scribbles = samples.cat_sample()
    session = SegmentationSession("classic")
    session.set_image(image)
    labels = session.segment(scribbles, preset="seed")
    assert (labels[scribbles == 1] == 1).mean() > 0.99
    assert (labels[scribbles == 2] == 0).mean() > 0.99
    assert labels[150, 225] == 1 and labels[250, 250] == 1  # face and chin
    assert (labels[:, 410:] == 0).mean() > 0.8  # the background right of the cat
    assert 0.4 < (labels == 1).mean() < 0.9


@pytest.mark.parametrize("maker, name", [(make_cat_sample, "cat"), (make_aerial_sample, "aerial")])
def test_layer_data(maker, name):
    layers = maker()
    assert [kind for _, _, kind in layers] == ["image", "labels"]
    (image, image_kwargs, _), (scribbles, scribbles_kwargs, _) = layers
    assert image_kwargs["name"] == name and image_kwargs["rgb"] is True
    assert scribbles_kwargs["name"] == "scribbles"
    assert scribbles.shape == image.shape[:2]
    assert {1, 2} <= set(np.unique(scribbles).tolist())


def test_manifest_from_distribution():
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_distribution("napari-deepseg")
    assert manifest.name == "napari-deepseg" and manifest.display_name == "napari-deepseg"
    manifest.validate_imports()
    widgets = [w.display_name for w in manifest.contributions.widgets]
    assert widgets[0] == "Scribble segmentation"
    assert {"Automatic proposal", "Saliency map", "Evaluate"} <= set(widgets)
    assert [s.key for s in manifest.contributions.sample_data] == ["cat", "aerial"]


def test_manifest_from_file():
    npe2 = pytest.importorskip("npe2")
    path = resources.files("napari_deepseg") / "napari.yaml"
    manifest = npe2.PluginManifest.from_file(str(path))
    assert manifest.name == "napari-deepseg"
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    assert commands["napari-deepseg.scribble_widget"].endswith(":ScribbleSegmentationWidget")


def test_open_sample_in_viewer(make_napari_viewer):
    pytest.importorskip("pytestqt")
    viewer = make_napari_viewer()
    viewer.open_sample("napari-deepseg", "cat")
    assert [layer.name for layer in viewer.layers] == ["cat", "scribbles"]
    assert viewer.layers["cat"].rgb
    assert viewer.layers["scribbles"].data.shape == viewer.layers["cat"].data.shape[:2]
