"""What the scribble cut keeps of one image (or one level of its pyramid), and the one module that fills it.

:class:`ImageFeatures` is the typed cache entry of
:class:`~napari_deepseg.core.cut.session.SegmentationSession`: the palette, the
perceptual colour, the backbone's features (deferred for weight-free backbones)
and what the cuts build on demand. Every slot is filled or replaced here, by
the entry's own methods, and only read elsewhere (a test checks):

* what depends on the image alone, built once: :meth:`~ImageFeatures.coarser`
  (the next pyramid level), :meth:`~ImageFeatures.mixture` (the image-wide
  colour mixture), :meth:`~ImageFeatures.nlinks_for` (contrast n-links per λ
  and σ), :meth:`~ImageFeatures.estimated_sigma`, :func:`oversampling`;
* what depends on the object strokes, kept while they stay the same:
  :meth:`~ImageFeatures.incremental_cut` (the cached graph) and
  :meth:`~ImageFeatures.star_for` (star-convexity steps);
* what the last coarse-to-fine cut leaves for a local update: :meth:`~ImageFeatures.remember`.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import numpy as np

from ..features import FeatureMap
from ..utils.progress import release_memory
from . import blocks, graphcut, maxflow, star_steps
from .appearance import COST_CAP, ImageMixture
from .palette import Palette, strips

#: leading backbone channels the weight-free appearance models use beside colour
APPEARANCE_CHANNELS = 0
#: components of the image-wide colour mixture shared by the class models
MIXTURE_COMPONENTS = 24
#: pixels of the image-wide colour mixture's fitting sample
MIXTURE_SAMPLES = 20_000
#: EM steps of the image-wide colour mixture's fit
MIXTURE_ITERATIONS = 30
#: levels up to this many pixels precompute every pixel's star step (one distance transform);
#: larger ones ask a k-d tree for the band's pixels only
STAR_TABLE_MAX_PIXELS = 4_000_000


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
        Pairwise weights per ``(kind, lam, sigma)``, filled by :meth:`nlinks_for`.
    appearance : ImageMixture or None
        The image-wide colour mixture of the weight-free default preset, fitted by
        :meth:`mixture`; its rows are palette entries when ``mixture_on_palette``, else pixels.
    cut : tuple or None
        ``(key, IncrementalCut)`` of the last binary cut of this level, re-solved
        while the object strokes and parameters stay the same (:meth:`incremental_cut`).
    coarse : ImageFeatures or None
        The half-resolution level of the coarse-to-fine cut, built by :meth:`coarser`.
    star : tuple or None
        ``(key, StarSteps)`` star-convexity steps of the last object strokes (:meth:`star_for`).
    auto_sigma : float or None
        The contrast scale σ estimated from this level's colour, once (:meth:`estimated_sigma`).
    appearance_channels : int
        Leading feature channels the weight-free appearance mixture adds to colour
        (the backbone's ``appearance_channels``, else :data:`APPEARANCE_CHANNELS`).
    last : object or None
        The last coarse-to-fine cut of this image (:class:`~napari_deepseg.core.cut.pyramid.LastCut`):
        what a local update after a new stroke starts from (:meth:`remember`).
    oversampling : int or None
        How many times the image looks upsampled (:func:`oversampling`), once.

    Only the methods of this module fill or replace these slots; the cuts read them.

    Examples
    --------
    >>> from napari_deepseg.core import SegmentationSession
    >>> entry = SegmentationSession("classic").set_image(np.zeros((40, 30), np.float32))
    >>> entry.coarser().shape, entry.coarser() is entry.coarse   # built once, then kept
    ((20, 15), True)
    >>> key, nlinks = entry.nlinks_for(20.0, 1.0)
    >>> key, entry.nlinks_for(20.0, 1.0)[1] is nlinks
    (('default', 20.0, 1.0), True)
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

    @classmethod
    def from_palette(cls, key: str, palette: Palette, features: Callable[["ImageFeatures"], object],
                     appearance_channels: Optional[int] = None) -> "ImageFeatures":
        """The full-resolution entry of an image: its palette, the palette's perceptual colour and its features.

        Parameters
        ----------
        key : str
            :func:`image_key` of the image.
        palette : Palette
            The image's distinct colours and an index per pixel.
        features : callable
            ``features(entry)`` -> the :class:`FeatureMap`, or a function computing it on first use
            (it may keep a weak reference to the entry).
        appearance_channels : int, optional
            The backbone's ``appearance_channels`` (``None``: :data:`APPEARANCE_CHANNELS`).
        """
        lab = perceptual_colour(palette.colours[:, None, :])[:, 0, :]
        channels = APPEARANCE_CHANNELS if appearance_channels is None else int(appearance_channels)
        entry = cls(key, palette.shape, None, palette=palette, lab=lab, appearance_channels=channels)
        entry._features = features(entry)
        return entry

    # -- built once per image (or level) ----------------------------------------------------------------------
    def coarser(self) -> "ImageFeatures":
        """The half-resolution level of this image (or of this level), built on the first call and kept.

        Colour is block-averaged strip by strip (from the palette: no full-resolution
        colour image is built); full-resolution features are block-averaged when first
        read; a deep feature grid is seen at half the stride (an odd stride: half as
        many cells, resampled, at the same stride).
        """
        if self.coarse is None:
            self.coarse = _half_level(self)
        return self.coarse

    def mixture(self) -> ImageMixture:
        """The image-wide colour (+ leading texture channels) mixture, fitted on the first call and kept.

        Colour alone is scored once per palette entry (``mixture_on_palette``);
        extra feature channels make it per pixel.
        """
        if self.appearance is None:
            self.appearance, self.mixture_on_palette = _fit_mixture(self)
        return self.appearance

    def nlinks_for(self, lam, sigma, kind: str = "default"):
        """``(key, NLinks)``: the n-links of a preset with weight ``lam`` and scale ``sigma``, built once per entry.

        ``kind`` ``"default"``: 8-neighbour contrast on full-resolution colour, plus the
        features' differences for deep backbones (:func:`default_nlinks`); ``"seed"``: the
        original notebook's 4-neighbour contrast on the features (:func:`seed_nlinks`).
        The single-level cut asks for λ, a coarse level of the pyramid for λ·2ⁱ (a coarse
        edge stands for 2ⁱ fine ones); deep-feature bands read the same arrays.
        """
        key = (kind, lam, sigma)
        if key not in self.nlinks:
            self.nlinks[key] = NLINKS[kind](self, lam, sigma)
        return key, self.nlinks[key]

    def estimated_sigma(self) -> float:
        """GrabCut's σ of this level's colour, ``sqrt(2 mean d²)`` over its 8-neighbour pairs, computed once.

        Computed strip by strip (the same value :func:`graphcut.auto_sigma` gives on whole arrays).
        """
        if self.auto_sigma is None:
            self.auto_sigma = _colour_sigma(self)
        return self.auto_sigma

    # -- kept while the object strokes stay the same ----------------------------------------------------------
    def incremental_cut(self, key, nlinks, object_seeds: np.ndarray, max_tlink: float = COST_CAP + 1.0,
                        star_weight=None) -> maxflow.IncrementalCut:
        """The cached graph for these n-links (``key``) and object strokes (its star edges of ``star_weight``),
        or a new one that replaces it."""
        star_key = (key, mask_hash(object_seeds), star_weight)
        if self.cut is None or self.cut[0] != star_key:
            star = graphcut.star_edges(object_seeds)
            self.cut = (star_key, maxflow.IncrementalCut(nlinks, star, max_tlink, star_weight=star_weight))
        return self.cut[1]

    def star_for(self, object_seeds: np.ndarray):
        """Star-convexity steps towards these object strokes, kept while the strokes stay the same.

        A table of every pixel's step up to :data:`STAR_TABLE_MAX_PIXELS`, a k-d tree beyond.
        """
        key = mask_hash(object_seeds)
        if self.star is None or self.star[0] != key:
            if object_seeds.size <= STAR_TABLE_MAX_PIXELS:
                steps = star_steps.ArrayStar(graphcut.star_edges(object_seeds), object_seeds.size)
            else:
                steps = star_steps.StarSteps(object_seeds)
            self.star = (key, steps)
        return self.star[1]

    # -- what the last coarse-to-fine cut leaves ----------------------------------------------------------------
    def remember(self, last) -> None:
        """Keep ``last`` (a :class:`~napari_deepseg.core.cut.pyramid.LastCut`): what the next local update starts from."""
        self.last = last


def _half_level(entry: ImageFeatures) -> ImageFeatures:
    """A new entry for the half-resolution level of ``entry`` (:meth:`ImageFeatures.coarser` keeps it)."""
    shape = blocks.coarse_shape(entry.shape)
    if entry.stride == 1:  # block means of full-resolution features, when first needed
        parent = weakref.ref(entry)  # no reference cycle: an evicted image is freed at once

        def feats():
            return FeatureMap(blocks.block_reduce(parent().features.data), 1, shape)
    else:  # the same grid seen from the coarse image: half the stride
        fm = entry.features
        if fm.stride % blocks.FACTOR == 0:
            feats = FeatureMap(fm.data, fm.stride // blocks.FACTOR, shape)
        else:  # an odd stride cannot be halved: half as many cells, resampled, at the same stride
            feats = FeatureMap(_resample_grid(fm.data, blocks.coarse_shape(fm.data.shape[:2])), fm.stride,
                               shape)
    colour = np.empty((*shape, entry.lab.shape[-1] if entry._colour is None else entry._colour.shape[-1]),
                      np.float32)
    for rows in strips(entry.shape[0], entry.shape[1], multiple=blocks.FACTOR):  # strip by strip
        lo = rows.start // blocks.FACTOR
        part = blocks.block_reduce(entry.colour_rows(rows))
        colour[lo : lo + part.shape[0]] = part
    return ImageFeatures(entry.key + "/coarse", shape, feats, _colour=colour)


def _resample_grid(grid: np.ndarray, shape) -> np.ndarray:
    """Bilinear (antialiased) resampling of a ``(h, w, c)`` feature grid to ``shape`` cells."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(grid, np.float32)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        out = F.interpolate(t, size=tuple(shape), mode="bilinear", align_corners=False, antialias=True)
    return np.ascontiguousarray(out[0].permute(1, 2, 0).numpy())


def _fit_mixture(entry: ImageFeatures):
    """``(ImageMixture, on_palette)``: the image-wide mixture of :meth:`ImageFeatures.mixture`, and whether its
    rows are palette entries (colour alone) rather than pixels."""
    n = entry.shape[0] * entry.shape[1]
    if entry.appearance_channels == 0 and entry.palette is not None:
        rng = np.random.default_rng(0)  # the pixels ImageMixture would draw from a per-pixel table
        pick = rng.choice(n, MIXTURE_SAMPLES, replace=False) if n > MIXTURE_SAMPLES else np.arange(n)
        sample = entry.lab[entry.palette.ids.ravel()[pick]]
        return ImageMixture(entry.lab, n_components=MIXTURE_COMPONENTS, sample=sample,
                            max_iter=MIXTURE_ITERATIONS), True
    feats = entry.colour
    if entry.appearance_channels > 0:
        extra = entry.features.data[..., :entry.appearance_channels]
        feats = np.concatenate([entry.colour, extra], axis=-1)
    return ImageMixture(feats.reshape(-1, feats.shape[-1]), n_components=MIXTURE_COMPONENTS,
                        max_samples=MIXTURE_SAMPLES, max_iter=MIXTURE_ITERATIONS), False


def default_nlinks(entry: ImageFeatures, lam, sigma) -> graphcut.NLinks:
    """The default preset's n-links: 8-neighbour contrast on full-resolution colour, combined with deep features."""
    offsets = graphcut.OFFSETS_8
    colour = [graphcut.neighbour_sqdiff(entry.colour, off) for off in offsets]
    if entry.stride == 1:
        combined = colour
    else:
        feats = graphcut.grid_sqdiffs(entry.features, offsets)
        mc = float(np.mean([c.mean() for c in colour])) or 1.0
        mf = float(np.mean([f.mean() for f in feats])) or 1.0
        combined = [c / mc + f / mf for c, f in zip(colour, feats)]
    return graphcut.contrast_nlinks(combined, offsets, entry.shape, lam, sigma, statistic="mean")


def seed_nlinks(entry: ImageFeatures, lam, sigma) -> graphcut.NLinks:
    """The ``seed`` preset's n-links: 4-neighbour contrast on the backbone's features (the original notebook's)."""
    d = graphcut.feature_sqdiffs(entry.features, graphcut.OFFSETS_4)
    return graphcut.contrast_nlinks(d, graphcut.OFFSETS_4, entry.shape, lam, sigma)


#: the n-links :meth:`ImageFeatures.nlinks_for` builds, per kind
NLINKS = {"default": default_nlinks, "seed": seed_nlinks}


def _colour_sigma(level: ImageFeatures) -> float:
    """``sqrt(2 mean d²)`` over the 8-neighbour colour pairs of ``level``, strip by strip (1 for a flat image)."""
    rows, cols = level.shape
    total, count = 0.0, 0
    for part in strips(rows, cols):
        lo = max(0, part.start - 1)  # one row of overlap: pairs across strips are counted once
        block = level.colour_rows(slice(lo, part.stop))
        for off in graphcut.OFFSETS_8:
            d = graphcut.neighbour_sqdiff(block, off)
            if off[0] == 0 and lo < part.start:
                d = d[1:]  # the overlap row's horizontal pairs belong to the previous strip
            total += float(d.sum(dtype=np.float64))
            count += d.size
    mean = 2.0 * total / max(1, count)
    return float(np.sqrt(mean)) if mean > 0 else 1.0


#: σ² of the next coarser level over a level's own: about 4 where the image is upsampled from a smaller one (its
#: neighbours differ half as much per pixel), 1.1-2.6 on native photos. 150 GrabCut and Berkeley photos: at most
#: 2.57; the first ten GrabCut photos upsampled 2, 4 and 8 times (bicubic): at least 2.70
OVERSAMPLED_RATIO = 2.65
#: :func:`oversampling` looks no further than levels whose short side is at least this
OVERSAMPLING_MIN_SIDE = 64


def oversampling(entry: ImageFeatures) -> int:
    """How many times an image looks upsampled: ``2**m``, ``m`` the number of levels, from full
    resolution down, whose σ² (:meth:`ImageFeatures.estimated_sigma`) grows at least :data:`OVERSAMPLED_RATIO`
    times on the next coarser level (full resolution counts too when the next level does: see the code).
    Computed once per image; 1 for deep features (``stride > 1``).

    The default λ of a coarse-to-fine cut is multiplied by it, so that a photo upsampled 8 times is cut
    as its native self would be: at 8 times the size an object's area costs 64 times more and its
    boundary only 8 times more (``benchmarks/scale_invariance.py``).

    Examples
    --------
    >>> from PIL import Image
    >>> from scipy.ndimage import gaussian_filter
    >>> from napari_deepseg.core import SegmentationSession
    >>> rough = gaussian_filter(np.random.default_rng(0).random((160, 200, 3)), (1.5, 1.5, 0))
    >>> small = (255 * (rough - rough.min()) / np.ptp(rough)).astype(np.uint8)
    >>> oversampling(SegmentationSession("classic").set_image(small))
    1
    >>> big = np.asarray(Image.fromarray(small).resize((800, 640), Image.BICUBIC))  # upsampled 4 times
    >>> oversampling(SegmentationSession("classic").set_image(big))
    4
    """
    if entry.oversampling is None:
        ratios, level = [], entry
        while entry.stride == 1 and min(level.shape) >= 2 * OVERSAMPLING_MIN_SIDE:
            coarser = level.coarser()
            ratios.append(coarser.estimated_sigma() ** 2 / level.estimated_sigma() ** 2)
            level = coarser
            if len(ratios) >= 2 and ratios[-1] < OVERSAMPLED_RATIO:
                break
        levels = 0
        for k, ratio in enumerate(ratios):
            # full resolution may read as native where an upsampling is so strong (the 64 MP photo: 18 times)
            # that the rounding to 8 bits is most of what neighbours differ by: the next level then decides
            if ratio >= OVERSAMPLED_RATIO or (k == 0 and len(ratios) > 1 and ratios[1] >= OVERSAMPLED_RATIO):
                levels += 1
            else:
                break
        entry.oversampling = 2**levels
    return entry.oversampling


def mask_hash(mask: np.ndarray) -> str:
    """Short content hash of a boolean mask (what the strokes-keyed slots are keyed by)."""
    return hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=16).hexdigest()

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
