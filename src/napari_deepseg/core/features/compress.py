"""Compression of native-stride features before anything touches full resolution."""

from __future__ import annotations

import numpy as np


def standardize(data: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Z-score every channel of a ``(..., channels)`` array, in place for float32.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(5, 3, (10, 10, 2)).astype(np.float32)
    >>> bool(np.allclose(standardize(x).reshape(-1, 2).std(0), 1, atol=1e-3))
    True
    """
    flat = data.reshape(-1, data.shape[-1])
    mean = flat.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = flat.std(axis=0, dtype=np.float64).astype(np.float32)
    data -= mean
    data /= np.maximum(std, eps)
    return data


def pca_fit(sample: np.ndarray, n_components: int, mean=None):
    """Mean and principal axes of ``(n, channels)`` sample rows.

    Parameters
    ----------
    sample : numpy.ndarray
        float32 ``(n, channels)``.
    n_components : int
        Axes kept (at most ``channels``).
    mean : numpy.ndarray, optional
        Centre to use (e.g. the mean of all rows, not only the sample's).

    Returns
    -------
    tuple
        ``(mean, axes)``: float32 ``(channels,)`` and ``(channels, n_components)``,
        or ``axes = None`` when ``channels <= n_components`` (centring only).

    Examples
    --------
    >>> m, a = pca_fit(np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32), 2)
    >>> m.shape, a.shape
    ((6,), (6, 2))
    """
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}")
    sample = sample.astype(np.float32, copy=False)
    if mean is None:
        mean = sample.mean(axis=0, dtype=np.float64).astype(np.float32)
    if sample.shape[1] <= n_components:
        return mean, None
    from ..utils.threads import single_threaded_blas

    centred = sample - mean
    # Principal axes from the channel covariance: channels are at most a few
    # thousand, so the eigen-decomposition is cheap whatever the grid size. The
    # product runs in float32 (4x faster than float64 here); eigh in float64.
    # BLAS runs on one thread: right after a torch forward pass, torch's spinning
    # OpenMP threads make a 2-thread eigh of 1536 channels 18x slower (15.7 s vs 0.9 s).
    with single_threaded_blas():
        cov = (centred.T @ centred).astype(np.float64) / max(1, centred.shape[0] - 1)
        evals, evecs = np.linalg.eigh(cov)
    return mean, evecs[:, ::-1][:, :n_components].astype(np.float32)


def pca_project(data: np.ndarray, mean: np.ndarray, axes, step: int = 1 << 16) -> np.ndarray:
    """``(..., channels)`` features centred and projected on ``axes`` (from :func:`pca_fit`), in chunks.

    Examples
    --------
    >>> x = np.ones((2, 3, 4), np.float32)
    >>> pca_project(x, np.ones(4, np.float32), np.eye(4, 2, dtype=np.float32)).shape
    (2, 3, 2)
    """
    lead, ch = data.shape[:-1], data.shape[-1]
    flat = data.reshape(-1, ch).astype(np.float32, copy=False)
    if axes is None:
        return (flat - mean).reshape(*lead, ch)
    from ..utils.threads import single_threaded_blas

    out = np.empty((flat.shape[0], axes.shape[1]), np.float32)
    with single_threaded_blas():  # see pca_fit
        for i in range(0, flat.shape[0], step):
            np.matmul(flat[i : i + step] - mean, axes, out=out[i : i + step])
    return out.reshape(*lead, axes.shape[1])


def pca_compress(data: np.ndarray, n_components: int = 32, max_samples: int = 50_000, seed: int = 0) -> np.ndarray:
    """Project ``(rows, cols, channels)`` features on their first principal components.

    The principal axes are fitted on at most ``max_samples`` random grid cells, so
    the cost stays bounded for large grids; the result is float32 and keeps the
    grid shape. Arrays with ``channels <= n_components`` are only centred.

    Parameters
    ----------
    data : numpy.ndarray
        ``(rows, cols, channels)`` features.
    n_components : int
        Channels kept (at most ``channels``).
    max_samples : int
        Cells used to fit the principal axes.
    seed : int
        Seed of the subsample, for reproducible features.

    Returns
    -------
    numpy.ndarray
        float32 ``(rows, cols, min(n_components, channels))``.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(8, 8, 64)).astype(np.float32)
    >>> pca_compress(x, 4).shape
    (8, 8, 4)
    """
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}")
    rows, cols, ch = data.shape
    flat = data.reshape(-1, ch).astype(np.float32, copy=False)
    mean = flat.mean(axis=0, dtype=np.float64).astype(np.float32)
    if ch <= n_components:
        return (flat - mean).reshape(rows, cols, ch)
    rng = np.random.default_rng(seed)
    sample = flat if flat.shape[0] <= max_samples else flat[rng.choice(flat.shape[0], max_samples, replace=False)]
    mean, axes = pca_fit(sample, n_components, mean)
    return pca_project(flat, mean, axes).reshape(rows, cols, n_components)
