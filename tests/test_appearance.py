"""Appearance models learned from scribbled pixels (the t-links)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_deepseg.core.cut import appearance
from napari_deepseg.core.cut.appearance import CentroidModel, make_appearance_model

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


@pytest.mark.parametrize("name", ["centroid", "linear"])
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


@pytest.mark.parametrize("name", ["centroid", "linear"])
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
    for name in ("centroid", "linear", "shared-gmm"):
        assert name in str(info.value)


# =========================================================================== mixtures
def test_finalise_by_hand():
    got = appearance._finalise(np.array([[3.0, 1.0], [0.0, 50.0], [-2.0, -5.0], [7.0, 7.0]]))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [[2.0, 0.0], [0.0, appearance.COST_CAP], [3.0, 0.0], [0.0, 0.0]])
    three = appearance._finalise(np.array([[5.0, 4.0, 30.0], [10.0, 2.5, 1.0]]))
    np.testing.assert_array_equal(three, [[1.0, 0.0, 20.0], [9.0, 1.5, 0.0]])
    one = appearance._finalise(np.array([[4.0], [-1.0]]))  # a single class: all zero
    np.testing.assert_array_equal(one, [[0.0], [0.0]])


def test_quadratic_terms_and_weights_give_log_densities():
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(6)
    x = np.concatenate([rng.normal(0, 1, (300, 3)), rng.normal(4, 0.5, (300, 3))])
    gmm = GaussianMixture(2, covariance_type="full", random_state=0).fit(x)
    centre = gmm.means_[0]
    terms = appearance._quadratic_terms(x[:7], centre)
    assert terms.shape == (7, 3 * 3 + 3 + 1) and terms.dtype == np.float32
    xc = (x[:7] - centre).astype(np.float32)
    np.testing.assert_allclose(terms[:, :9], (xc[:, :, None] * xc[:, None, :]).reshape(7, 9), rtol=1e-6)
    np.testing.assert_allclose(terms[:, 9:12], xc, rtol=1e-6)
    np.testing.assert_array_equal(terms[:, -1], 1.0)
    w = appearance._quadratic_weights(gmm, centre)
    assert w.shape == (13, 2)
    logp = appearance._quadratic_terms(x, centre) @ w  # log(pi_k N(x | k)) per component
    from scipy.stats import multivariate_normal

    ref = np.stack([np.log(gmm.weights_[k]) + multivariate_normal(gmm.means_[k], gmm.covariances_[k]).logpdf(x)
                    for k in range(2)], axis=1)
    np.testing.assert_allclose(logp, ref, atol=2e-3)
    np.testing.assert_allclose(np.logaddexp.reduce(logp, axis=1), gmm.score_samples(x), atol=2e-3)


def _two_colour_pixels(seed=0, n=2000):
    """Flat pixel features of an image split into a red-ish and a blue-ish half (L*a*b*-like scale)."""
    rng = np.random.default_rng(seed)
    truth = np.repeat([0, 1], n // 2)
    centres = np.array([[50.0, 60.0, 40.0], [40.0, 10.0, -45.0]])
    x = centres[truth] + rng.normal(0.0, 3.0, (n, 3))
    return x.astype(np.float32), truth


def test_image_mixture_likelihood():
    x, _ = _two_colour_pixels()
    mix = appearance.ImageMixture(x, n_components=6)
    assert mix.n_components == 6
    assert mix.codes.shape == (x.shape[0], 6) and mix.codes.dtype == np.uint16  # 16-bit fixed point: memory
    lik = mix.likelihood()
    assert lik.dtype == np.float32 and np.all(lik >= 0.0) and np.all(lik <= 1.0)
    np.testing.assert_allclose(lik.max(axis=1), 1.0, rtol=1e-6)
    few = appearance.ImageMixture(x[:60], n_components=24)  # 60 samples: at most 60 // 20 components
    assert few.n_components == 3 and few.likelihood().shape == (60, 3)


def test_shared_mixture_model_ranks_the_right_class_first():
    x, truth = _two_colour_pixels(seed=1)
    mix = appearance.ImageMixture(x, n_components=8)
    rng = np.random.default_rng(2)
    scribbled = np.concatenate([rng.choice(np.flatnonzero(truth == 0), 40, replace=False),
                                rng.choice(np.flatnonzero(truth == 1), 40, replace=False)])
    labels = np.where(truth[scribbled] == 0, 1, 2)  # object scribbles 1, background 2
    model = appearance.SharedMixtureModel(mix).fit(scribbled, labels)
    np.testing.assert_array_equal(model.classes_, [1, 2])
    assert model.weights_.shape == (8, 2)
    np.testing.assert_allclose(model.weights_.sum(axis=0), 1.0, rtol=1e-5)
    costs = model.costs()
    assert costs.shape == (x.shape[0], 2) and costs.dtype == np.float32
    assert costs.min() >= 0.0 and costs.max() <= appearance.COST_CAP
    np.testing.assert_allclose(costs.min(axis=1), 0.0, atol=1e-6)
    assert np.mean(np.argmin(costs, axis=1) == truth) > 0.98
    some = np.array([0, 5, 1500, 1999])
    np.testing.assert_array_equal(model.costs(some), costs[some])  # costs of chosen pixels only


def test_shared_mixture_model_refit_on_a_full_labelling():
    x, truth = _two_colour_pixels(seed=3)
    mix = appearance.ImageMixture(x, n_components=8)
    model = appearance.SharedMixtureModel(mix, em_steps=5)
    model.fit(np.array([0, 1, 1998, 1999]), np.array([1, 1, 2, 2]))  # four scribbled pixels
    labels = np.where(truth == 0, 1, 2)
    model.fit(np.arange(x.shape[0]), labels)  # GrabCut-style refit from the whole labelling
    costs = model.costs()
    assert costs.min() >= 0.0 and costs.max() <= appearance.COST_CAP
    assert np.mean(np.argmin(costs, axis=1) == truth) > 0.99
    assert np.median(costs[truth == 0, 1]) > 5.0 and np.median(costs[truth == 1, 0]) > 5.0  # confident


def test_shared_mixture_model_three_classes():
    rng = np.random.default_rng(4)
    centres = np.array([[50.0, 60.0, 40.0], [40.0, 10.0, -45.0], [80.0, -50.0, 50.0]])
    truth = np.repeat([0, 1, 2], 500)
    x = (centres[truth] + rng.normal(0.0, 3.0, (1500, 3))).astype(np.float32)
    model = appearance.SharedMixtureModel(appearance.ImageMixture(x, n_components=9))
    pick = np.concatenate([np.flatnonzero(truth == k)[:30] for k in range(3)])
    model.fit(pick, np.array([1, 2, 3])[truth[pick]])
    costs = model.costs()
    assert costs.shape == (1500, 3)
    assert np.mean(np.argmin(costs, axis=1) == truth) > 0.98


def test_fit_gaussian_mixture_runs_scikit_learns_em():
    """The same EM as GaussianMixture(full, k-means++): same parameters and steps, to rounding."""
    import warnings

    from sklearn.mixture import GaussianMixture

    from napari_deepseg.core.cut.appearance import fit_gaussian_mixture

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(c, s, (600, 3)) for c, s in ((0, 1), (10, 2), (-8, 0.5), (4, 3))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = GaussianMixture(6, covariance_type="full", reg_covar=1e-2, max_iter=30, init_params="k-means++",
                              random_state=0).fit(x)
    got = fit_gaussian_mixture(x, 6, reg_covar=1e-2, max_iter=30, seed=0)
    assert got.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(got.means_, ref.means_, atol=1e-6)
    np.testing.assert_allclose(got.weights_, ref.weights_, atol=1e-8)
    np.testing.assert_allclose(got.precisions_cholesky_, ref.precisions_cholesky_, atol=1e-6)
