"""Models of each class's appearance, learned from the scribbled pixels.

Every model has ``fit(features, labels)`` on the scribbled pixels and
``costs(features)`` returning a ``(n_pixels, n_classes)`` array of
non-negative unary costs (lower = more likely), in the order of
``model.classes_``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..utils.progress import check_scope
from ..utils.threads import single_threaded_blas

MAX_SAMPLES_PER_CLASS = 3000
#: pixels scored per chunk by the image mixture (bounds its temporaries)
CHUNK = 1 << 16
#: fixed-point scale of the image mixture's stored likelihoods (uint16)
_CODE_MAX = 65535
#: unary costs are capped (in nats) so that no pixel's appearance outweighs every edge
COST_CAP = 20.0


def _finalise(costs: np.ndarray) -> np.ndarray:
    """Shift costs so each row's minimum is 0 and cap them at :data:`COST_CAP`.

    Examples
    --------
    >>> _finalise(np.array([[3.0, 1.0], [0.0, 50.0]])).tolist()
    [[2.0, 0.0], [0.0, 20.0]]
    """
    costs = np.asarray(costs, np.float32)
    low = costs[:, 0].copy()
    for j in range(1, costs.shape[1]):  # column-wise: far faster than min(axis=1) on 2-3 columns
        np.minimum(low, costs[:, j], out=low)
    out = costs - low[:, None]
    return np.minimum(out, np.float32(COST_CAP), out=out)


def _subsample(features: np.ndarray, labels: np.ndarray, seed: int = 0):
    """At most :data:`MAX_SAMPLES_PER_CLASS` rows per class, drawn reproducibly."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if idx.size > MAX_SAMPLES_PER_CLASS:
            idx = rng.choice(idx, MAX_SAMPLES_PER_CLASS, replace=False)
        keep.append(idx)
    sel = np.sort(np.concatenate(keep))
    return features[sel], labels[sel]


class CentroidModel:
    """Squared Euclidean distance to each class's mean feature (the notebook's t-links).

    Examples
    --------
    >>> m = CentroidModel().fit(np.array([[0.], [2.]]), np.array([1, 2]))
    >>> m.costs(np.array([[0.5]])).tolist()
    [[0.25, 2.25]]
    """

    def fit(self, features: np.ndarray, labels: np.ndarray) -> "CentroidModel":
        self.classes_ = np.unique(labels)
        self.centroids_ = np.stack([features[labels == c].mean(axis=0) for c in self.classes_]).astype(np.float32)
        return self

    def costs(self, features: np.ndarray) -> np.ndarray:
        f = features.astype(np.float32, copy=False)
        sq = (f * f).sum(axis=1, keepdims=True)
        cc = (self.centroids_ * self.centroids_).sum(axis=1)
        with single_threaded_blas():
            return np.maximum(sq - 2.0 * f @ self.centroids_.T + cc, 0.0)


def _quadratic_terms(x: np.ndarray, centre: np.ndarray, dtype=np.float32) -> np.ndarray:
    """``[x_i x_j (all i, j), x_i, 1]`` of the rows of ``x - centre`` (float32 unless ``dtype``)."""
    xc = np.asarray(x, dtype) - centre.astype(dtype)
    n, d = xc.shape
    out = np.empty((n, d * d + d + 1), dtype)
    np.multiply(xc[:, :, None], xc[:, None, :], out=out[:, : d * d].reshape(n, d, d))
    out[:, d * d : d * d + d] = xc
    out[:, -1] = 1.0
    return out


def _quadratic_weights(gmm, centre: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Weights ``W`` with ``_quadratic_terms(x) @ W = log(pi_k N(x | mu_k, Sigma_k))`` per component.

    Expanding the Mahalanobis distance turns the scoring of every pixel against
    every component into one matrix product, far faster than scoring component
    by component. Features are centred on ``centre`` (the same for every class)
    for accuracy. Only full covariances are supported.
    """
    means = gmm.means_
    d = means.shape[1]
    cols = []
    for k in range(means.shape[0]):
        chol = gmm.precisions_cholesky_[k]
        prec = chol @ chol.T
        mu = means[k] - centre
        pm = prec @ mu
        const = (
            -0.5 * mu @ pm + np.log(np.diag(chol)).sum() - 0.5 * d * np.log(2 * np.pi) + np.log(gmm.weights_[k])
        )
        cols.append(np.concatenate([-0.5 * prec.ravel(), pm, [const]]))
    return np.stack(cols, axis=1).astype(dtype)


@dataclass
class FittedMixture:
    """Parameters of a Gaussian mixture with full covariances (the attribute names of scikit-learn's).

    Attributes
    ----------
    weights_ : numpy.ndarray
        ``(k,)`` mixing weights.
    means_ : numpy.ndarray
        ``(k, d)`` means.
    precisions_cholesky_ : numpy.ndarray
        ``(k, d, d)`` Cholesky factors of the precision matrices.
    n_iter_ : int
        EM steps taken.
    """

    weights_: np.ndarray
    means_: np.ndarray
    precisions_cholesky_: np.ndarray
    n_iter_: int = 0


def _gaussian_parameters(x: np.ndarray, outer: np.ndarray, resp: np.ndarray, reg_covar: float):
    """Weights, means and precision Cholesky factors from responsibilities (the M-step).

    ``x`` is centred (on the sample mean, for accuracy) and ``outer`` holds the
    products ``x_i x_j`` of every row, so that every component's covariance
    comes from one matrix product.
    """
    nk = resp.sum(axis=0) + 10 * np.finfo(resp.dtype).eps
    means = (resp.T @ x) / nk[:, None]
    d = x.shape[1]
    covs = (resp.T @ outer).reshape(-1, d, d) / nk[:, None, None] - means[:, :, None] * means[:, None, :]
    covs[:, np.arange(d), np.arange(d)] += reg_covar
    chol = np.linalg.cholesky(covs)
    precisions_chol = np.swapaxes(np.linalg.inv(chol), 1, 2)  # solve_triangular(chol, I, lower=True).T
    return nk / x.shape[0], means, precisions_chol


def fit_gaussian_mixture(x: np.ndarray, n_components: int, reg_covar: float = 1e-2, max_iter: int = 30,
                         tol: float = 1e-3, seed: int = 0) -> FittedMixture:
    """EM for a full-covariance Gaussian mixture, as scikit-learn's ``GaussianMixture`` runs it.

    The same initialisation (k-means++ seeds, each a component of its own), M-step
    and stopping rule (change of the mean log-likelihood below ``tol``) as
    ``GaussianMixture(covariance_type="full", init_params="k-means++")``; the
    E-step scores every sample against every component with one matrix product
    (:func:`_quadratic_terms`, about 10x faster in 3 dimensions than scoring
    component by component).

    Parameters
    ----------
    x : numpy.ndarray
        ``(n, d)`` samples.
    n_components, reg_covar, max_iter, tol, seed
        As scikit-learn's ``GaussianMixture`` (``seed`` is its ``random_state``).

    Returns
    -------
    FittedMixture

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0, 1, (200, 2)), rng.normal(8, 1, (200, 2))])
    >>> m = fit_gaussian_mixture(x, 2)
    >>> np.abs(np.round(np.sort(m.means_[:, 0]))).tolist()
    [0.0, 8.0]
    """
    from sklearn.cluster import kmeans_plusplus

    x = np.asarray(x, np.float64)
    n, d = x.shape
    resp = np.zeros((n, n_components))
    _, seeds = kmeans_plusplus(x, n_components, random_state=np.random.RandomState(seed))
    resp[seeds, np.arange(n_components)] = 1
    centre = x.mean(axis=0)
    terms = _quadratic_terms(x, centre, np.float64)  # [x x^T, x, 1] of the centred samples
    xc, outer = terms[:, d * d : d * d + d], terms[:, : d * d]
    weights, means, chols = _gaussian_parameters(xc, outer, resp, reg_covar)
    lower, steps = -np.inf, 0
    for steps in range(1, max_iter + 1):
        check_scope()
        model = FittedMixture(weights, means + centre, chols)
        logp = terms @ _quadratic_weights(model, centre, np.float64)
        top = logp.max(axis=1, keepdims=True)
        resp = np.exp(logp - top)
        total = resp.sum(axis=1, keepdims=True)
        resp /= total
        weights, means, chols = _gaussian_parameters(xc, outer, resp, reg_covar)
        weights = weights / weights.sum()
        previous, lower = lower, float((top[:, 0] + np.log(total[:, 0])).mean())
        if abs(lower - previous) < tol:
            break
    means = means + centre
    return FittedMixture(weights, means, chols, steps)


class ImageMixture:
    """One Gaussian mixture fitted to the colours of a whole image, scored once.

    The expensive part of the :class:`SharedMixtureModel` class models: fitted
    (:func:`fit_gaussian_mixture`, scikit-learn's EM with a faster E-step)
    on a subsample of the image's pixels and evaluated for every pixel once per
    image (at its first default-preset cut, then cached), so that a class model
    is only a vector of weights.

    Parameters
    ----------
    features : numpy.ndarray
        ``(n_pixels, dims)`` features of every pixel (e.g. L*a*b* colour).
    n_components : int
        Shared components.
    max_samples : int
        Pixels used to fit the mixture.
    seed : int
        Seed of that subsample.
    sample : numpy.ndarray, optional
        ``(n, dims)`` rows to fit on instead of a subsample of ``features``
        (e.g. pixels drawn from an image whose ``features`` are its distinct colours).
    max_iter : int
        EM steps of the fit.

    Attributes
    ----------
    codes : numpy.ndarray
        uint16 ``(n_pixels, n_components)``: ``p(x | k)`` divided by its
        maximum over ``k`` for each pixel (the per-pixel factor cancels in the
        cut, which only compares classes), in units of ``1 / 65535``.

    Notes
    -----
    16-bit fixed point halves the largest array of the weight-free default
    (1.2 GB instead of 2.4 GB of float32 at 25 MP) and converts back to float32
    about 100x faster than float16 does. The rounding (at most ``7.6e-6``
    absolute, the best component is exactly 1) is far below the mixture weights'
    prior. Scoring runs in chunks of :data:`CHUNK` pixels, so no full-size
    temporary is made.
    """

    def __init__(self, features: np.ndarray, n_components: int = 24, max_samples: int = 20_000, seed: int = 0,
                 sample: Optional[np.ndarray] = None, max_iter: int = 30):
        x = np.asarray(features)
        if sample is None:
            rng = np.random.default_rng(seed)
            sample = x if x.shape[0] <= max_samples else x[rng.choice(x.shape[0], max_samples, replace=False)]
        sample = np.asarray(sample, np.float64)
        k = int(max(1, min(n_components, sample.shape[0] // 20)))
        with single_threaded_blas():
            gmm = fit_gaussian_mixture(sample, k, reg_covar=1e-2, max_iter=max_iter, seed=seed)
        gmm.weights_ = np.ones(k) / k  # component densities only: class models bring their own weights
        centre = gmm.means_.mean(axis=0)
        weights = _quadratic_weights(gmm, centre)
        self.codes = np.empty((x.shape[0], k), np.uint16)
        with single_threaded_blas():
            for a in range(0, x.shape[0], CHUNK):
                check_scope()
                logp = _quadratic_terms(x[a : a + CHUNK], centre) @ weights
                logp -= logp.max(axis=1, keepdims=True)
                lik = np.exp(logp, out=logp)
                lik *= np.float32(_CODE_MAX)
                self.codes[a : a + CHUNK] = np.rint(lik, out=lik)
        self.n_components = k

    def likelihood(self, pixels=None) -> np.ndarray:
        """float32 normalised likelihoods ``(len(pixels), n_components)`` (every pixel by default: mind the memory)."""
        codes = self.codes if pixels is None else self.codes[pixels]
        return codes.astype(np.float32) * np.float32(1.0 / _CODE_MAX)

    def mix(self, weights: np.ndarray, pixels=None) -> np.ndarray:
        """float32 ``likelihood(pixels) @ weights``, computed in chunks (every pixel by default)."""
        codes = self.codes if pixels is None else self.codes[pixels]
        w = np.asarray(weights, np.float32) * np.float32(1.0 / _CODE_MAX)
        out = np.empty((codes.shape[0], w.shape[1]), np.float32)
        with single_threaded_blas():
            for a in range(0, codes.shape[0], CHUNK):
                np.matmul(codes[a : a + CHUNK].astype(np.float32), w, out=out[a : a + CHUNK])
        return out


class SharedMixtureModel:
    """Class models that share the components of one :class:`ImageMixture`.

    Each class is a mixture ``p(x | c) = sum_k pi_ck p(x | k)`` over the image's
    components; fitting estimates only the weights ``pi_c`` (EM with the
    components fixed), so fits and refits from a whole labelling take
    milliseconds, and colours the scribbles missed still get sensible costs.

    Parameters
    ----------
    mixture : ImageMixture
        The image's shared components, scored for every pixel.
    em_steps : int
        EM steps on the weights.
    prior : float
        Pseudo-count added to every weight (no colour is impossible).

    Notes
    -----
    Unlike the other models, :meth:`fit` and :meth:`costs` take flat pixel
    indices into the image, not feature rows.
    """

    def __init__(self, mixture: ImageMixture, em_steps: int = 3, prior: float = 1e-3):
        self.mixture = mixture
        self.em_steps = em_steps
        self.prior = prior

    def fit(self, pixels: np.ndarray, labels: np.ndarray) -> "SharedMixtureModel":
        """Class weights from the mixture rows ``pixels`` and their ``labels``."""
        pixels, labels = _subsample(np.asarray(pixels), np.asarray(labels))
        self.classes_ = np.unique(labels)
        k = self.mixture.n_components
        weights = []
        for c in self.classes_:
            rows = self.mixture.likelihood(pixels[labels == c])
            pi = np.full(k, 1.0 / k, np.float32)
            for _ in range(self.em_steps):
                resp = rows * pi
                resp /= np.maximum(resp.sum(axis=1, keepdims=True), 1e-30)
                pi = resp.mean(axis=0) + self.prior
                pi /= pi.sum()
            weights.append(pi)
        self.weights_ = np.stack(weights, axis=1).astype(np.float32)  # (k, n_classes)
        return self

    def costs(self, pixels=None) -> np.ndarray:
        mix = self.mixture.mix(self.weights_, pixels)
        np.maximum(mix, np.float32(1e-30), out=mix)
        np.log(mix, out=mix)
        np.negative(mix, out=mix)
        return _finalise(mix)


class LinearModel:
    """A multinomial logistic regression on the features; cost = −log posterior.

    Suited to deep features, which separate classes linearly far better than
    they fit Gaussian mixtures.
    """

    def __init__(self, C: float = 1.0, eps: float = 1e-4):
        self.C = C
        self.eps = eps

    def fit(self, features: np.ndarray, labels: np.ndarray) -> "LinearModel":
        from sklearn.linear_model import LogisticRegression

        features, labels = _subsample(features, labels)
        self.classes_ = np.unique(labels)
        self.scale_ = np.maximum(features.std(axis=0), 1e-6)
        with single_threaded_blas():
            self.clf_ = LogisticRegression(C=self.C, max_iter=300).fit(features / self.scale_, labels)
        return self

    def costs(self, features: np.ndarray) -> np.ndarray:
        with single_threaded_blas():
            proba = self.clf_.predict_proba(features / self.scale_)
        return _finalise(-np.log(proba + self.eps))


APPEARANCE_MODELS = {
    "centroid": CentroidModel,
    "linear": LinearModel,
    "shared-gmm": SharedMixtureModel,
}


def make_appearance_model(name: str, **params):
    """Build an appearance model by name (``centroid``, ``linear`` or ``shared-gmm``)."""
    try:
        return APPEARANCE_MODELS[name](**params)
    except KeyError:
        raise ValueError(f"unknown appearance model {name!r}; choose one of {', '.join(APPEARANCE_MODELS)}") from None
