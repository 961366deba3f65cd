"""What the scribble cut keeps of one image (or one level of its pyramid).

:class:`ImageFeatures` is the typed cache entry of
:class:`~napari_deepseg.core.cut.session.SegmentationSession`: the palette, the
perceptual colour, the backbone's features (deferred for weight-free backbones)
and what the energy builds on demand (n-links, the colour mixture, the cached
graph, the coarser level).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import numpy as np

from ..features import FeatureMap
from ..utils.progress import release_memory
from .appearance import ImageMixture
from .palette import Palette, strips

#: leading backbone channels the weight-free appearance models use beside colour
APPEARANCE_CHANNELS = 0


@dataclass
class ImageFeatures:
    """Everything computed once per image and backbone (or per level of its pyramid).

    Attributes
    ----------
    key : str
        Content hash of the image plus backbone name and parameters.
    shape : tuple
        ``(rows, cols)`` of the image (or level).
    features : FeatureMap
        Compressed features at the backbone's native stride. For full-resolution
        weight-free backbones whose features the default preset does not read
        (``classic``, ``rgb``), computed on first access (see :func:`_feature_source`).
    palette : Palette or None
        The image's distinct colours and an index per pixel (full-resolution
        level); ``None`` for the coarse levels, which hold their colour.
    lab : numpy.ndarray or None
        float32 ``(n_colours, channels)`` perceptual colour of every palette entry.
    nlinks : dict
        Pairwise weights per ``(kind, lam, sigma)``, filled on demand.
    appearance : ImageMixture or None
        The image-wide colour mixture of the weight-free default preset, built on
        demand; its rows are palette entries when ``mixture_on_palette``, else pixels.
    cut : tuple or None
        ``(key, IncrementalCut)`` of the last binary cut of this level, re-solved
        while the object strokes and parameters stay the same.
    coarse : ImageFeatures or None
        The half-resolution level of the coarse-to-fine cut, built on demand.
    star : tuple or None
        ``(key, StarSteps)`` star-convexity steps of the last object strokes.
    auto_sigma : float or None
        The contrast scale σ estimated from this level's colour, once.
    appearance_channels : int
        Leading feature channels the weight-free appearance mixture adds to colour
        (the backbone's ``appearance_channels``, else :data:`APPEARANCE_CHANNELS`).
    last : object or None
        The last coarse-to-fine cut of this image (:class:`~napari_deepseg.core.cut.pyramid.LastCut`):
        what a local update after a new stroke starts from.
    oversampling : int or None
        How many times the image looks upsampled (:func:`~napari_deepseg.core.cut.pyramid.oversampling`), once.
    """

    key: str
    shape: tuple
    _features: Union[FeatureMap, Callable[[], FeatureMap]]
    palette: Optional[Palette] = None
    lab: Optional[np.ndarray] = None
    _colour: Optional[np.ndarray] = None
    nlinks: dict = field(default_factory=dict)
    appearance: Optional[ImageMixture] = None
    mixture_on_palette: bool = False
    cut: Optional[tuple] = None
    coarse: Optional["ImageFeatures"] = None
    star: Optional[tuple] = None
    auto_sigma: Optional[float] = None
    appearance_channels: int = APPEARANCE_CHANNELS
    last: Optional[object] = None
    oversampling: Optional[int] = None

    @property
    def image(self) -> np.ndarray:
        """The float32 ``(rows, cols, channels)`` image in [0, 1], rebuilt from the palette."""
        return self.palette.image()

    @property
    def colour(self) -> np.ndarray:
        """float32 ``(rows, cols, channels)`` perceptual colour (built from the palette once, when first read)."""
        if self._colour is None:
            self._colour = self.lab[self.palette.ids]
        return self._colour

    def colour_at(self, flat: np.ndarray) -> np.ndarray:
        """Perceptual colour ``(n, channels)`` of the pixels at flat indices ``flat``."""
        if self._colour is None:
            return self.lab[self.palette.ids.ravel()[flat]]
        return self._colour.reshape(-1, self._colour.shape[-1])[flat]

    def colour_rows(self, rows: slice) -> np.ndarray:
        """Perceptual colour of the image rows ``rows``, without building the whole image's."""
        if self._colour is None:
            return self.lab[self.palette.ids[rows]]
        return self._colour[rows]

    @property
    def features(self) -> FeatureMap:
        """The feature map, computed now if it was deferred."""
        if callable(self._features):
            self._features = self._features()
            release_memory()
        return self._features

    @property
    def stride(self) -> int:
        """The features' stride; deferred features are full-resolution (1)."""
        return 1 if callable(self._features) else self._features.stride

    @property
    def features_computed(self) -> bool:
        """Whether the feature map exists (deferred features are computed on first use)."""
        return not callable(self._features)


def image_key(image: np.ndarray, backbone: str, params: dict) -> str:
    """Hash of the image's bytes, shape and dtype plus the backbone and its parameters.

    Examples
    --------
    >>> a = np.zeros((2, 2)); image_key(a, "rgb", {}) == image_key(a.copy(), "rgb", {})
    True
    """
    h = hashlib.blake2b(digest_size=16)
    shape, dtype = tuple(image.shape), np.dtype(image.dtype)
    h.update(str((shape, dtype.str, backbone, sorted(params.items()))).encode())
    cols = shape[1] if len(shape) > 1 else 1
    for rows in strips(shape[0], cols) if shape else [slice(None)]:  # strip by strip: lazy arrays too
        h.update(memoryview(np.ascontiguousarray(image[rows])).cast("B"))
    return h.hexdigest()


def perceptual_colour(image: np.ndarray, strip_pixels: int = 1 << 20) -> np.ndarray:
    """L*a*b* of an RGB image, or lightness (0-100) of a one-channel image.

    The conversion (float64 inside scikit-image) runs in strips of about
    ``strip_pixels`` pixels, so its temporary memory does not grow with the image.
    """
    if image.shape[-1] == 3:
        from skimage.color import rgb2lab

        out = np.empty(image.shape, np.float32)
        step = max(1, strip_pixels // max(1, image.shape[1]))
        for a in range(0, image.shape[0], step):
            out[a : a + step] = rgb2lab(image[a : a + step])
        return out
    return image * np.float32(100.0)
