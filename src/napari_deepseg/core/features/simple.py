"""Weight-free backbones: raw colour (``rgb``) and a multi-scale filter bank (``classic``)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import color, feature

from ..io.lazy import row_strips
from ..utils.progress import check, report
from .base import FeatureExtractor, FeatureMap
from .compress import pca_compress

#: rows of a strip of the filter bank hold about this many pixels (~500 bytes each while computed)
STRIP_PIXELS = 1 << 20


class RGBFeatures(FeatureExtractor):
    """The raw colour of each pixel, as the original notebook used (stride 1).

    Examples
    --------
    >>> img = np.zeros((4, 5, 3), np.float32)
    >>> RGBFeatures().extract(img).data.shape
    (4, 5, 3)
    """

    name = "rgb"
    #: the default preset reads only colour: features are built when another preset asks
    defer_features = True

    reads_tiles = True

    def _extract(self, image, progress, cancel):
        rows, cols, ch = image.shape
        out = np.empty((rows, cols, ch), np.float32)
        spans = row_strips(rows, cols, STRIP_PIXELS)
        for i, (a, b) in enumerate(spans):
            check(cancel)
            report(progress, i, len(spans), f"rgb features, strip {i + 1}/{len(spans)}")
            out[a:b] = image.read(slice(a, b), slice(None))
        report(progress, len(spans), len(spans), "rgb features")
        return FeatureMap(out, 1, (rows, cols))


class ClassicFeatures(FeatureExtractor):
    """A weight-free multi-scale filter bank, as ilastik offers it.

    For colour images the bank works in CIE L*a*b* (perceptual) space. At each
    scale ``sigma`` it computes the Gaussian-smoothed channels, the gradient
    magnitude and Laplacian of Gaussian of lightness, and the two eigenvalues of
    the structure tensor and of the Hessian of lightness. Channels are z-scored;
    more than ``n_components`` channels are reduced by PCA.

    The bank runs in strips of about :attr:`strip_pixels` pixels, each read
    with :meth:`halo` rows of context (the largest filter's reach), so the
    strips join without seams and the temporaries (~500 bytes per pixel) are
    bounded by the strip; a lazy (dask, zarr) image is read strip by strip.

    Parameters
    ----------
    sigmas : tuple of float
        Scales in pixels.
    n_components : int
        Upper bound on the number of channels kept.

    Examples
    --------
    >>> img = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    >>> ClassicFeatures(sigmas=(1.0,)).extract(img).data.shape
    (16, 16, 12)
    """

    name = "classic"
    #: the session computes these features on first use: the default preset reads only colour
    defer_features = True
    reads_tiles = True
    #: pixels per strip (the bank runs strip by strip with a halo of rows)
    strip_pixels = STRIP_PIXELS

    def __init__(self, sigmas=(1.0, 2.0, 4.0), n_components: int = 32):
        sig = tuple(float(s) for s in sigmas)
        if not sig or any(s <= 0 for s in sig):
            raise ValueError(f"sigmas must be positive numbers, got {sigmas!r}")
        self.sigmas = sig
        self.n_components = int(n_components)

    def params(self) -> dict:
        return {"sigmas": self.sigmas, "n_components": self.n_components}

    def halo(self) -> int:
        """Rows of context around a strip: the largest filter's radius (4 sigma) plus derivative steps.

        Examples
        --------
        >>> ClassicFeatures(sigmas=(1.0, 4.0)).halo()
        20
        """
        return int(4.0 * max(self.sigmas) + 0.5) + 4

    def _extract(self, image, progress, cancel):
        """The bank in strips of rows with a :meth:`halo` (no seams), z-scored with whole-image statistics."""
        rows, cols, _ = image.shape
        halo, out, stats = self.halo(), None, None
        spans = row_strips(rows, cols, self.strip_pixels)
        for i, (a, b) in enumerate(spans):
            check(cancel)
            report(progress, i, len(spans), f"classic features, strip {i + 1}/{len(spans)}")
            a0, b0 = max(0, a - halo), min(rows, b + halo)
            block = filter_bank(image.read(slice(a0, b0), slice(None)), self.sigmas)[a - a0 : b - a0]
            if out is None:
                out = np.empty((rows, cols, block.shape[-1]), np.float32)
            out[a:b] = block
            stats = _merge_moments(stats, block.reshape(-1, block.shape[-1]))
        report(progress, len(spans), len(spans), "classic features")
        count, mean, m2 = stats
        std = np.sqrt(m2 / count).astype(np.float32)
        mean = mean.astype(np.float32)
        for a, b in spans:  # z-score in place, strip by strip (no whole-array temporaries)
            out[a:b] -= mean
            out[a:b] /= np.maximum(std, np.float32(1e-6))
        if out.shape[-1] > self.n_components:
            out = pca_compress(out, self.n_components)
        return FeatureMap(np.ascontiguousarray(out), 1, (rows, cols))


def filter_bank(image: np.ndarray, sigmas) -> np.ndarray:
    """The classic channels of a float32 ``(rows, cols, channels)`` image (or strip), not yet z-scored.

    The base channels are L*a*b* for three channels, otherwise every channel x 100
    (grayscale; RGB + near-infrared and other explicit channel axes, whose bands
    need not be colours). Per sigma: the smoothed base channels, the gradient
    magnitude and Laplacian of Gaussian of lightness (L*, else the mean of the
    base channels) and the two eigenvalues of its structure tensor and of its Hessian.

    Examples
    --------
    >>> filter_bank(np.zeros((8, 9, 3), np.float32), (1.0,)).shape
    (8, 9, 12)
    >>> filter_bank(np.zeros((8, 9, 4), np.float32), (1.0,)).shape  # 4 bands + 4 smoothed + 6
    (8, 9, 14)
    """
    if image.shape[-1] == 3:
        lab = color.rgb2lab(image).astype(np.float32)
        base = [lab[..., 0], lab[..., 1], lab[..., 2]]
    else:
        base = [image[..., c] * np.float32(100.0) for c in range(image.shape[-1])]
    light = base[0] if len(base) in (1, 3) else np.mean(base, axis=0, dtype=np.float32)
    chans = list(base)
    for s in sigmas:
        chans += [ndi.gaussian_filter(c, s) for c in base]
        chans.append(ndi.gaussian_gradient_magnitude(light, s))
        chans.append(ndi.gaussian_laplace(light, s))
        chans += list(_structure_tensor_eigenvalues(light, s))
        chans += list(_hessian_eigenvalues(light, s))
    return np.stack(chans, axis=-1).astype(np.float32, copy=False)


def _merge_moments(stats, block: np.ndarray):
    """Running ``(count, mean, M2)`` per channel (float64) updated with ``(n, channels)`` rows (Chan et al.)."""
    n = block.shape[0]
    mean_b = block.mean(axis=0, dtype=np.float64)
    m2_b = ((block - mean_b.astype(np.float32)).astype(np.float64) ** 2).sum(axis=0)
    if stats is None:
        return n, mean_b, m2_b
    count, mean, m2 = stats
    total = count + n
    delta = mean_b - mean
    return total, mean + delta * n / total, m2 + m2_b + delta**2 * count * n / total


def _structure_tensor_eigenvalues(img: np.ndarray, sigma: float):
    """The two eigenvalues of the structure tensor of ``img`` at window ``sigma``."""
    tensor = feature.structure_tensor(img, sigma=sigma, order="rc")
    return feature.structure_tensor_eigenvalues(tensor).astype(np.float32)


def _hessian_eigenvalues(img: np.ndarray, sigma: float):
    """The two eigenvalues of the Gaussian-derivative Hessian of ``img`` at ``sigma``."""
    hess = feature.hessian_matrix(img, sigma=sigma, order="rc", use_gaussian_derivatives=True)
    return feature.hessian_matrix_eigvals(hess).astype(np.float32)
