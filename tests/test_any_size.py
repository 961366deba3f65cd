"""Bounded memory of the weight-free default (issue 5): deferred features, half-precision mixture, strips."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2lab

from napari_deepseg.core import SegmentationSession
from napari_deepseg.core.cut import appearance
from napari_deepseg.core.cut.image import perceptual_colour

from _synthetic import disk_image, disk_scribbles


@pytest.fixture
def counted():
    session = SegmentationSession("classic", sigmas=(1.0,))
    calls = []
    original = session.extractor.extract

    def counting(image, progress=None, cancel=None):
        calls.append(image.shape)
        return original(image, progress=progress, cancel=cancel)

    session.extractor.extract = counting
    return session, calls


def test_classic_features_are_deferred_until_a_preset_reads_them(counted):
    session, calls = counted
    image, truth = disk_image()
    entry = session.set_image(image)
    assert not calls and not entry.features_computed and entry.stride == 1
    session.segment(disk_scribbles(truth))  # the default preset reads colour only
    session.segment(disk_scribbles(truth), multilevel=True)
    assert not calls and not entry.features_computed
    session.segment(disk_scribbles(truth), preset="seed")  # the seed preset reads the filter bank
    assert len(calls) == 1 and entry.features_computed
    assert entry.features.data.shape[:2] == image.shape[:2]
    session.segment(disk_scribbles(truth), preset="seed")
    assert len(calls) == 1


@pytest.mark.parametrize("multilevel", [False, True])
def test_deferral_changes_no_mask(multilevel):
    image, truth = disk_image(seed=3)
    scribbles = disk_scribbles(truth)
    eager = SegmentationSession("classic")
    eager.extractor.defer_features = False
    eager.set_image(image)
    lazy = SegmentationSession("classic")
    lazy.set_image(image)
    for preset in ("default", "seed"):
        a = eager.segment(scribbles, preset=preset, multilevel=multilevel)
        b = lazy.segment(scribbles, preset=preset, multilevel=multilevel)
        np.testing.assert_array_equal(a, b)


def test_coarse_features_follow_the_deferred_ones():
    image, truth = disk_image(shape=(40, 50))
    session = SegmentationSession("classic", sigmas=(1.0,))
    entry = session.set_image(image)
    session.segment(disk_scribbles(truth), multilevel=True)
    assert entry.coarse is not None and not entry.coarse.features_computed
    coarse = entry.coarse.features  # block means of the full-resolution bank, on demand
    assert coarse.stride == 1 and coarse.data.shape[:2] == (20, 25)
    np.testing.assert_allclose(coarse.data[0, 0], entry.features.data[:2, :2].mean(axis=(0, 1)), rtol=1e-5,
                               atol=1e-5)


def test_fixed_point_mixture_costs_match_float32():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (3000, 3)), rng.normal(4, 1, (3000, 3))]).astype(np.float32)
    labels = np.repeat([1, 2], 3000)
    mix = appearance.ImageMixture(x, n_components=6)
    assert mix.codes.dtype == np.uint16
    model = appearance.SharedMixtureModel(mix).fit(np.arange(6000)[::50], labels[::50])
    costs = model.costs()
    ref = np.maximum(mix.likelihood() @ model.weights_, 1e-30)
    ref = -np.log(ref)
    ref -= ref.min(axis=1, keepdims=True)
    np.testing.assert_allclose(costs, np.minimum(ref, appearance.COST_CAP), atol=1e-4)
    np.testing.assert_allclose(model.costs(np.arange(10)), costs[:10], atol=1e-6)
    assert (costs[:3000, 0] < costs[:3000, 1]).mean() > 0.95


def test_mixture_scores_in_chunks(monkeypatch):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (5000, 3)).astype(np.float32)
    whole = appearance.ImageMixture(x, n_components=4).likelihood()
    monkeypatch.setattr(appearance, "CHUNK", 777)
    chunked = appearance.ImageMixture(x, n_components=4)
    np.testing.assert_array_equal(chunked.likelihood(), whole)
    w = np.full((4, 2), 0.25, np.float32)
    np.testing.assert_allclose(chunked.mix(w), whole @ w, rtol=1e-5)


def test_perceptual_colour_in_strips_is_exact():
    image = np.random.default_rng(2).random((37, 23, 3)).astype(np.float32)
    lab = perceptual_colour(image, strip_pixels=100)  # 4 rows per strip
    assert lab.dtype == np.float32 and lab.shape == image.shape
    np.testing.assert_allclose(lab, rgb2lab(image).astype(np.float32), rtol=1e-6, atol=1e-5)
    gray = perceptual_colour(image[..., :1])
    np.testing.assert_allclose(gray, image[..., :1] * 100, rtol=1e-6)
