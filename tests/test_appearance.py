"""Appearance models learned from scribbled pixels (the t-links)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_deepseg.core import appearance
from napari_deepseg.core.appearance import CentroidModel, make_appearance_model

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_centroid_costs_by_hand():
    x = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [0.0, 6.0]], np.float32)
    y = np.array([1, 1, 3, 3])
    m = CentroidModel().fit(x, y)
    np.testing.assert_array_equal(m.classes_, [1, 3])
    np.testing.assert_allclose(m.centroids_, [[1.0, 0.0], [0.0, 5.0]])
    q = np.array([[1.0, 0.0], [0.0, 0.0], [3.0, 5.0]], np.float32)
    np.testing.assert_allclose(m.costs(q), [[0.0, 26.0], [1.0, 25.0], [29.0, 9.0]], atol=1e-5)


def _blobs(seed=0, n=400, dim=4):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0] * dim, [3.0] * dim, [-3.0, 3.0] + [0.0] * (dim - 2)])
    labels = np.repeat([1, 2, 5], n)
    x = centres[np.repeat([0, 1, 2], n)] + rng.normal(scale=0.6, size=(3 * n, dim))
    return x.astype(np.float32), labels


@pytest.mark.parametrize("name", ["centroid", "gmm", "linear"])
def test_models_prefer_the_right_class(name):
    x, y = _blobs()
    model = make_appearance_model(name).fit(x, y)
    np.testing.assert_array_equal(model.classes_, [1, 2, 5])
    xt, yt = _blobs(seed=1, n=100)
    costs = model.costs(xt)
    assert costs.shape == (300, 3)
    assert np.all(np.isfinite(costs))
    pred = model.classes_[np.argmin(costs, axis=1)]
    assert np.mean(pred == yt) > 0.95


@pytest.mark.parametrize("name", ["centroid", "gmm", "linear"])
def test_costs_are_non_negative(name):
    """The module's contract: unary costs are >= 0 (lower = more likely)."""
    x, y = _blobs()
    costs = make_appearance_model(name).fit(x, y).costs(x)
    assert costs.min() >= 0, f"{name} gives a negative cost {costs.min():.3g}"


def test_subsample_caps_each_class(monkeypatch):
    monkeypatch.setattr(appearance, "MAX_SAMPLES_PER_CLASS", 50)
    x = np.arange(700, dtype=np.float32)[:, None]
    y = np.array([1] * 600 + [2] * 100)
    xs, ys = appearance._subsample(x, y)
    assert np.count_nonzero(ys == 1) == 50 and np.count_nonzero(ys == 2) == 50
    # rows stay paired with their labels, and the draw is reproducible
    assert np.all((xs[ys == 1, 0] < 600) & (xs[ys == 2, 0] >= 600))
    np.testing.assert_array_equal(appearance._subsample(x, y)[0], xs)


def test_unknown_model():
    with pytest.raises(ValueError) as info:
        make_appearance_model("svm")
    for name in ("centroid", "gmm", "linear"):
        assert name in str(info.value)
