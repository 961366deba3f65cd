"""Weight-free backbones: raw colour (``rgb``) and a multi-scale filter bank (``classic``)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import color, feature

from ..progress import check, report
from .base import FeatureExtractor, FeatureMap
from .compress import pca_compress, standardize


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

    def _extract(self, image, progress, cancel):
        report(progress, 1, 1, "rgb features")
        return FeatureMap(np.ascontiguousarray(image, dtype=np.float32), 1, image.shape[:2])


class ClassicFeatures(FeatureExtractor):
    """A weight-free multi-scale filter bank, as ilastik offers it.

    For colour images the bank works in CIE L*a*b* (perceptual) space. At each
    scale ``sigma`` it computes the Gaussian-smoothed channels, the gradient
    magnitude and Laplacian of Gaussian of lightness, and the two eigenvalues of
    the structure tensor and of the Hessian of lightness. Channels are z-scored;
    more than ``n_components`` channels are reduced by PCA.

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

    def __init__(self, sigmas=(1.0, 2.0, 4.0), n_components: int = 32):
        sig = tuple(float(s) for s in sigmas)
        if not sig or any(s <= 0 for s in sig):
            raise ValueError(f"sigmas must be positive numbers, got {sigmas!r}")
        self.sigmas = sig
        self.n_components = int(n_components)

    def params(self) -> dict:
        return {"sigmas": self.sigmas, "n_components": self.n_components}

    def _extract(self, image, progress, cancel):
        if image.shape[-1] == 3:
            lab = color.rgb2lab(image).astype(np.float32)
            base = [lab[..., 0], lab[..., 1], lab[..., 2]]
        else:
            base = [image[..., 0] * np.float32(100.0)]
        light = base[0]
        chans = list(base)
        total = len(self.sigmas)
        for i, s in enumerate(self.sigmas):
            check(cancel)
            report(progress, i, total, f"classic features, sigma {s:g}")
            chans += [ndi.gaussian_filter(c, s) for c in base]
            chans.append(ndi.gaussian_gradient_magnitude(light, s))
            chans.append(ndi.gaussian_laplace(light, s))
            chans += list(_structure_tensor_eigenvalues(light, s))
            chans += list(_hessian_eigenvalues(light, s))
        report(progress, total, total, "classic features")
        data = standardize(np.stack(chans, axis=-1).astype(np.float32, copy=False))
        if data.shape[-1] > self.n_components:
            data = pca_compress(data, self.n_components)
        return FeatureMap(np.ascontiguousarray(data), 1, image.shape[:2])


def _structure_tensor_eigenvalues(img: np.ndarray, sigma: float):
    """The two eigenvalues of the structure tensor of ``img`` at window ``sigma``."""
    tensor = feature.structure_tensor(img, sigma=sigma, order="rc")
    return feature.structure_tensor_eigenvalues(tensor).astype(np.float32)


def _hessian_eigenvalues(img: np.ndarray, sigma: float):
    """The two eigenvalues of the Gaussian-derivative Hessian of ``img`` at ``sigma``."""
    hess = feature.hessian_matrix(img, sigma=sigma, order="rc", use_gaussian_derivatives=True)
    return feature.hessian_matrix_eigvals(hess).astype(np.float32)
