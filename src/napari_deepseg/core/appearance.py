"""Models of each class's appearance, learned from the scribbled pixels.

Every model has ``fit(features, labels)`` on the scribbled pixels and
``costs(features)`` returning a ``(n_pixels, n_classes)`` array of
non-negative unary costs (lower = more likely), in the order of
``model.classes_``.
"""

from __future__ import annotations

import numpy as np

MAX_SAMPLES_PER_CLASS = 3000
#: unary costs are capped (in nats) so that no pixel's appearance outweighs every edge
COST_CAP = 20.0


def single_threaded_blas():
    """Context limiting BLAS to one thread: small fits on 2 cores run 10-30x faster so."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def _finalise(costs: np.ndarray) -> np.ndarray:
    """Shift costs so each row's minimum is 0 and cap them at :data:`COST_CAP`."""
    costs = costs - costs.min(axis=1, keepdims=True)
    return np.minimum(costs, COST_CAP).astype(np.float32)


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


class GaussianMixtureModel:
    """One Gaussian mixture per class (GrabCut's colour models); cost = −log-likelihood.

    Parameters
    ----------
    n_components : int
        Mixture components per class (fewer when a class has few pixels).
    covariance_type : str
        As in :class:`sklearn.mixture.GaussianMixture`.
    """

    def __init__(self, n_components: int = 5, covariance_type: str = "full", reg_covar: float = 1e-3):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar

    def fit(self, features: np.ndarray, labels: np.ndarray) -> "GaussianMixtureModel":
        from sklearn.mixture import GaussianMixture

        features, labels = _subsample(features, labels)
        self.classes_ = np.unique(labels)
        self.models_ = []
        for c in self.classes_:
            x = features[labels == c].astype(np.float64)
            if x.shape[0] < 2:  # one scribbled pixel: a single narrow Gaussian around it
                x = np.repeat(x, 2, axis=0)
            k = int(max(1, min(self.n_components, x.shape[0] // 10)))
            gmm = GaussianMixture(
                k, covariance_type=self.covariance_type, reg_covar=self.reg_covar, max_iter=20,
                init_params="k-means++", random_state=0,
            )
            with single_threaded_blas():
                self.models_.append(gmm.fit(x))
        return self

    def costs(self, features: np.ndarray) -> np.ndarray:
        with single_threaded_blas():
            nll = np.stack([-m.score_samples(features) for m in self.models_], axis=1)
        return _finalise(nll)


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


APPEARANCE_MODELS = {"centroid": CentroidModel, "gmm": GaussianMixtureModel, "linear": LinearModel}


def make_appearance_model(name: str, **params):
    """Build an appearance model by name (``centroid``, ``gmm`` or ``linear``)."""
    try:
        return APPEARANCE_MODELS[name](**params)
    except KeyError:
        raise ValueError(f"unknown appearance model {name!r}; choose one of {', '.join(APPEARANCE_MODELS)}") from None
