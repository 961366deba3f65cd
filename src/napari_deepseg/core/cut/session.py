"""The expensive step (features of one image, cached) apart from the cheap one (a cut).

Modelled on segment-anything's ``SamPredictor``: :meth:`SegmentationSession.set_image`
computes and caches the features; :meth:`SegmentationSession.segment` only solves.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import numpy as np

from . import graphcut, multilevel
from ..utils import memory
from .appearance import (
    COST_CAP,
    MAX_SAMPLES_PER_CLASS,
    ImageMixture,
    LinearModel,
    SharedMixtureModel,
    make_appearance_model,
)
from ..features import FeatureMap, get_extractor
from ..features.base import upsample_grid
from .palette import Palette, build_palette, strips
from ..utils.progress import CancelToken, ProgressCallback, check, release_memory, report
from ..io.lazy import LazyImage
from ..utils.validation import (SCRIBBLE_BACKGROUND, as_float_image, channels_last, check_positive, check_scribbles,
                         image_layout)

#: default smoothness weight λ per preset (tuned on the GrabCut scribbles, see docs/performance.md)
DEFAULT_LAMBDA = {"seed": 1.0, "default": 20.0}
#: GrabCut-style refits of the appearance models in the default preset
DEFAULT_ITERATIONS = 1
#: leading backbone channels the weight-free appearance models use beside colour
APPEARANCE_CHANNELS = 0
#: components of the image-wide colour mixture shared by the class models
MIXTURE_COMPONENTS = 24
#: the default preset solves coarse-to-fine from this many pixels on (see multilevel.py)
MULTILEVEL_MIN_PIXELS = 100_000
#: half-width in pixels of the band re-solved around the boundary at each finer level
BAND_RADIUS = 2
#: the coarse-to-fine cut halves the image until its coarsest level has at most this many pixels
COARSEST_PIXELS = 1_500_000
#: pixels of the image-wide colour mixture's fitting sample
MIXTURE_SAMPLES = 20_000


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


class SegmentationSession:
    """Segment one image many times with different scribbles.

    Parameters
    ----------
    backbone : str
        A registered backbone: ``classic`` (default, weight-free), ``rgb`` or ``resnet50``.
    cache_size : int
        Number of images whose features are kept (most recent first).
    feature_cache : path-like, optional
        A zarr store (``.zarr``) or a folder for one: features are loaded from
        it when an entry for this image, backbone and parameters exists, and
        written to it after they are computed (see :mod:`~napari_deepseg.core.io.feature_cache`).
    **backbone_params
        Passed to the backbone, e.g. ``layers="layer4"``, ``weights=path``, ``device="cpu"``.

    Examples
    --------
    >>> img = np.zeros((20, 20), np.float32); img[5:15, 5:15] = 1
    >>> s = np.zeros((20, 20), np.uint8); s[9:11, 9:11] = 1; s[0, :] = 2
    >>> session = SegmentationSession("classic")
    >>> _ = session.set_image(img)
    >>> mask = session.segment(s)
    >>> int(mask[10, 10]), int(mask[1, 1])
    (1, 0)
    """

    def __init__(self, backbone: str = "classic", cache_size: int = 2, feature_cache=None, **backbone_params):
        if feature_cache is not None:
            from ..io.feature_cache import store_path

            store_path(feature_cache)  # a bad path fails here, before any computation
        self.feature_cache = feature_cache
        self.extractor = get_extractor(backbone, **backbone_params)
        self.backbone = self.extractor.name
        self.cache_size = max(1, int(cache_size))
        self._cache: "OrderedDict[str, ImageFeatures]" = OrderedDict()
        self._current: Optional[ImageFeatures] = None

    # -- expensive step -------------------------------------------------------
    def set_image(
        self, image, progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
        channel_axis: Optional[int] = None,
    ) -> ImageFeatures:
        """Compute (or fetch from the cache) the features of ``image``.

        Parameters
        ----------
        image : array-like
            ``(rows, cols)``, ``(rows, cols, 3)`` or ``(rows, cols, 4)``; any numeric dtype.
            With ``channel_axis``: one plane with that channel axis anywhere.
        progress, cancel
            See :mod:`napari_deepseg.core.utils.progress`.
        channel_axis : int, optional
            ``None``: the layouts above (a fourth channel is alpha and dropped; a
            global stretch for dtypes other than uint8). An int: that axis holds
            1 to 7 channels, all kept (RGB + near-infrared, ...) and stretched
            channel by channel (:func:`~napari_deepseg.core.utils.validation.channels_last`);
            deep backbones read the three their ``channels`` parameter picks.

        Returns
        -------
        ImageFeatures
        """
        params = self.extractor.params()
        if channel_axis is None:
            arr = image_layout(image)  # shape and dtype only: numpy, dask and zarr arrays alike
        else:  # every channel kept, each stretched on its own (lazy arrays stay lazy)
            arr, params = channels_last(image, channel_axis), {**params, "channel_axis": int(channel_axis)}
        key = image_key(arr, self.backbone, params)
        if key in self._cache:
            self._cache.move_to_end(key)
            self._current = self._cache[key]
            return self._current
        check(cancel)
        rows, cols = arr.shape[:2]
        deferred = getattr(self.extractor, "defer_features", False)
        memory.check_fits(rows * cols * (8 if deferred else 32), f"reading the image for {self.backbone} features",
                          (rows, cols), "downsample it or open a crop (a tile) of it")
        report(progress, 0, 1, "colour palette")
        palette = build_palette(arr)
        check(cancel)
        lab = perceptual_colour(palette.colours[:, None, :])[:, 0, :]
        entry = ImageFeatures(key, palette.shape, None, palette=palette, lab=lab)
        source = arr if channel_axis is None else LazyImage(arr, all_channels=True)
        entry._features = _feature_source(self.extractor, source, entry, progress, cancel, self.feature_cache)
        release_memory()
        if not entry.features_computed:
            report(progress, 1, 1, "colour")
        channels = getattr(self.extractor, "appearance_channels", None)
        if channels is not None:
            entry.appearance_channels = int(channels)
        self._cache[key] = entry
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        self._current = entry
        return entry

    def prepare_default(self, lam: Optional[float] = None, sigma: Optional[float] = None) -> None:
        """Build what the default preset's first cut would build lazily (colour mixture, n-links).

        Call it after :meth:`set_image` when the first cut must be as fast as the later ones
        (interactive clicks); it changes no result.
        """
        if self._current is None:
            raise RuntimeError("no image set: call set_image(image) first")
        entry = self._current
        lam = DEFAULT_LAMBDA["default"] if lam is None else check_positive(lam, "lambda")
        if entry.stride == 1:
            _image_mixture(entry)
        if _multilevel_applies(entry.shape, None):
            levels = _pyramid(entry)
            k = len(levels) - 1
            _cached_nlinks(levels[k], lam * 2**k, sigma)
            for i in range(k):
                _band_edges(levels[i], lam * 2**i, sigma)
        else:
            _cached_nlinks(entry, lam, sigma)

    def reset_image(self) -> None:
        """Forget the current image and every cached feature."""
        self._cache.clear()
        self._current = None

    @property
    def is_image_set(self) -> bool:
        """Whether :meth:`set_image` was called."""
        return self._current is not None

    # -- cheap step -----------------------------------------------------------
    def segment(
        self,
        scribbles,
        preset: str = "default",
        lam: Optional[float] = None,
        sigma: Optional[float] = None,
        iterations: int = DEFAULT_ITERATIONS,
        progress: Optional[ProgressCallback] = None,
        cancel: Optional[CancelToken] = None,
        multilevel: Optional[bool] = None,
        unary: Optional[np.ndarray] = None,
        fit_labels: Optional[np.ndarray] = None,
    ) -> np.ndarray:
        """Cut the current image for the given scribbles.

        Parameters
        ----------
        scribbles : array-like of int
            ``(rows, cols)``: 0 unlabelled, 1 object, 2 background, ``k`` class ``k``.
        preset : {"default", "seed"}
            ``seed`` is the original notebook's energy (4-neighbour contrast
            n-links on the features, squared distance to the seed centroids);
            ``default`` learns appearance models from the scribbles and uses
            8-neighbour edges on full-resolution colour and the features.
        lam : float, optional
            Smoothness weight λ; ``None`` takes the preset's default.
        sigma : float, optional
            Contrast scale σ; ``None`` estimates it from the image.
        iterations : int
            GrabCut-style refits of the appearance models from the cut (default preset);
            each refit re-solves the same graph incrementally.
        progress, cancel
            See :mod:`napari_deepseg.core.utils.progress`.
        multilevel : bool, optional
            Default preset, two labels: solve at half resolution and refine a band
            around the boundary at full resolution (:mod:`~napari_deepseg.core.cut.multilevel`).
            ``None`` (default) uses it for images of at least
            :data:`MULTILEVEL_MIN_PIXELS`; ``False`` solves the whole image at
            full resolution (the reference).
        unary : numpy.ndarray, optional
            Default preset, two labels: extra float ``(rows, cols, 2)`` costs of
            labelling each pixel object (``[..., 0]``) and background (``[..., 1]``),
            added to the appearance costs (e.g. a distance prior around clicks).
        fit_labels : numpy.ndarray, optional
            Default preset: a scribble-like label image the appearance models are
            first fitted on instead of ``scribbles`` (soft evidence, such as the
            image border standing for the background, that is not a hard constraint).

        Returns
        -------
        numpy.ndarray
            ``(rows, cols)`` labels: 0 background, 1 object, ``k`` for class ``k``
            (uint8, or uint16 for labels above 255).

        Raises
        ------
        RuntimeError
            If no image was set.
        ValueError
            For bad scribbles, an unknown preset or a non-positive λ or σ.
        """
        if self._current is None:
            raise RuntimeError("no image set: call set_image(image) before segment()")
        if preset not in graphcut.PRESETS:
            raise ValueError(f"preset must be one of {', '.join(graphcut.PRESETS)}; got {preset!r}")
        lam = check_positive(lam, "lambda")
        sigma = check_positive(sigma, "sigma", minimum=1e-6)
        it = int(iterations)
        if it < 0:
            raise ValueError(f"iterations must be >= 0, got {iterations!r}")
        entry = self._current
        seeds = check_scribbles(scribbles, entry.shape)
        lam = DEFAULT_LAMBDA[preset] if lam is None else lam
        classes = np.unique(seeds[seeds > 0])
        report(progress, 0, 2, "graph cut")
        check(cancel)
        _check_cut_fits(entry, preset, classes.size, multilevel)
        if preset == "seed":
            index = _cut_seed(entry, seeds, classes, lam, sigma)
        else:
            cut = _cut_multilevel if classes.size == 2 and _multilevel_applies(entry.shape, multilevel) else _cut_default
            extra = _Extra.check(unary, fit_labels, entry.shape, classes)
            index = cut(entry, seeds, classes, lam, sigma, it, cancel, extra)
        report(progress, 2, 2, "graph cut")
        return labels_from_index(index, classes)


def _check_cut_fits(entry: ImageFeatures, preset: str, n_classes: int, multi: Optional[bool]) -> None:
    """Raise :class:`~napari_deepseg.core.utils.memory.ImageTooLargeError` before a cut that cannot fit in memory."""
    rows, cols = entry.shape
    n = rows * cols
    crop = "downsample the image or segment a crop (a tile) of it"
    if preset == "seed":
        need = n * memory.SINGLE_LEVEL_BYTES_PER_PIXEL
        if not entry.features_computed:
            need += n * memory.CLASSIC_FEATURES_BYTES_PER_PIXEL
        memory.check_fits(need, "the seed preset (full-resolution features and graph)", entry.shape,
                          f"use the default preset, whose coarse-to-fine cut handles any size, or {crop}")
    elif n_classes > 2:
        memory.check_fits(n * memory.MULTILABEL_BYTES_PER_PIXEL, f"a {n_classes}-label cut", entry.shape,
                          f"segment one object at a time (two labels are cut coarse-to-fine), or {crop}")
    elif _multilevel_applies(entry.shape, multi):
        memory.check_fits(n * memory.MULTILEVEL_BYTES_PER_PIXEL, "the coarse-to-fine cut", entry.shape, crop)
    else:
        ml = n * memory.MULTILEVEL_BYTES_PER_PIXEL / 1e9
        memory.check_fits(n * memory.SINGLE_LEVEL_BYTES_PER_PIXEL, "the single-level cut", entry.shape,
                          f"use the coarse-to-fine cut (multilevel on, about {ml:.1f} GB), or {crop}")


def _feature_source(extractor, image, entry: ImageFeatures, progress, cancel, feature_cache=None):
    """The extractor's features now, or a function computing them on first use.

    Full-resolution weight-free backbones (``defer_features = True``: ``classic``,
    ``rgb``) whose channels the default preset does not read (no
    ``appearance_channels``) are deferred: the default preset's cut uses only
    colour, and a full-resolution filter bank takes ~500 bytes per pixel (12 GB
    for 25 MP) and most of the time. Deferred features are computed from the
    palette's image (exact for uint8). With a ``feature_cache`` store, features are
    loaded from it if present and written to it once computed. The image is
    handed to the extractor as it is (numpy, dask, zarr): backbones read it tile by tile.
    """
    if feature_cache is not None:
        from ..io.feature_cache import cached_features, disk_key

        key, info = disk_key(entry.key, extractor.params()), {"backbone": extractor.name, **extractor.params()}
        shape = entry.shape  # not ``entry`` itself in the closure: no reference cycle
        if _defers(extractor):  # the cache is consulted on first use too
            compute = _feature_source(extractor, image, entry, progress, cancel)
            return lambda: cached_features(feature_cache, key, shape, compute, info)
        return cached_features(feature_cache, key, shape,
                               lambda: _feature_source(extractor, image, entry, progress, cancel), info)
    if _defers(extractor):
        report(progress, 0, 1, f"colour ({extractor.name} features on first use)")
        check(cancel)
        parent = weakref.ref(entry)  # no reference cycle: an evicted image is freed at once
        return lambda: extractor.extract(LazyImage(parent().image, all_channels=True))  # alpha already dropped
    return extractor.extract(image, progress=progress, cancel=cancel)


def _defers(extractor) -> bool:
    """Whether the session computes this backbone's features on first use (see :func:`_feature_source`)."""
    channels = getattr(extractor, "appearance_channels", None)
    channels = APPEARANCE_CHANNELS if channels is None else int(channels)
    return bool(getattr(extractor, "defer_features", False)) and channels == 0


def labels_from_index(index: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Map class indices to output labels: the background scribble (2) becomes 0.

    Examples
    --------
    >>> labels_from_index(np.array([[0, 1, 2]]), np.array([1, 2, 3])).tolist()
    [[1, 0, 3]]
    """
    values = np.where(classes == SCRIBBLE_BACKGROUND, 0, classes)
    dtype = np.uint8 if values.max() < 256 else np.uint16
    return values.astype(dtype)[index]


def _seed_index(seeds: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``(rows, cols)`` class index of each scribbled pixel, ``-1`` elsewhere."""
    lut = np.full(int(seeds.max()) + 1, -1, np.int32)
    lut[classes] = np.arange(classes.size, dtype=np.int32)
    return lut[seeds]


def _solve(costs: np.ndarray, hard: np.ndarray, nlinks: graphcut.NLinks) -> np.ndarray:
    """Binary max-flow for two classes, alpha-expansion for more; returns class indices."""
    if costs.shape[-1] == 2:
        fg = graphcut.solve_binary(costs[..., 0], costs[..., 1], nlinks, hard == 0, hard == 1)
        return np.where(fg, 0, 1).astype(np.int32)
    return graphcut.solve_multilabel(costs, nlinks.lam, hard)


def _seed_features(fm: FeatureMap, seeds: np.ndarray):
    """Features and labels of the scribbled pixels (grid cell under each pixel)."""
    rr, cc = np.nonzero(seeds)
    s = fm.stride
    return fm.data[rr // s, cc // s], seeds[rr, cc]


def _full_res_costs(fm: FeatureMap, model) -> np.ndarray:
    """Appearance costs of every pixel, computed on full-resolution features in strips."""
    rows, cols = fm.image_shape
    out = np.empty((rows, cols, len(model.classes_)), np.float32)
    for start, stop, block in fm.iter_full_res():
        out[start:stop] = model.costs(block.reshape(-1, block.shape[-1])).reshape(stop - start, cols, -1)
    return out


def _cut_seed(entry: ImageFeatures, seeds, classes, lam, sigma) -> np.ndarray:
    """The original notebook's energy."""
    key = ("seed", lam, sigma)
    if key not in entry.nlinks:
        d = graphcut.feature_sqdiffs(entry.features, graphcut.OFFSETS_4)
        entry.nlinks[key] = graphcut.contrast_nlinks(d, graphcut.OFFSETS_4, entry.shape, lam, sigma)
    x, y = _seed_features(entry.features, seeds)
    model = make_appearance_model("centroid").fit(x, y)
    costs = _full_res_costs(entry.features, model)
    return _solve(costs, _seed_index(seeds, classes), entry.nlinks[key])


def _default_nlinks(entry: ImageFeatures, lam, sigma) -> graphcut.NLinks:
    """8-neighbour contrast weights on full-resolution colour, combined with deep features."""
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


def _image_mixture(entry: ImageFeatures):
    """The image-wide colour (+ leading texture channels) mixture, fitted once per image.

    Colour alone is scored once per palette entry (``entry.mixture_on_palette``);
    extra feature channels make it per pixel.
    """
    if entry.appearance is None:
        n = entry.shape[0] * entry.shape[1]
        if entry.appearance_channels == 0 and entry.palette is not None:
            rng = np.random.default_rng(0)  # the pixels ImageMixture would draw from a per-pixel table
            pick = rng.choice(n, MIXTURE_SAMPLES, replace=False) if n > MIXTURE_SAMPLES else np.arange(n)
            sample = entry.lab[entry.palette.ids.ravel()[pick]]
            entry.appearance = ImageMixture(entry.lab, n_components=MIXTURE_COMPONENTS, sample=sample)
            entry.mixture_on_palette = True
        else:
            feats = entry.colour
            if entry.appearance_channels > 0:
                extra = entry.features.data[..., :entry.appearance_channels]
                feats = np.concatenate([entry.colour, extra], axis=-1)
            entry.appearance = ImageMixture(feats.reshape(-1, feats.shape[-1]), n_components=MIXTURE_COMPONENTS,
                                            max_samples=MIXTURE_SAMPLES)
    return entry.appearance


def _mixture_rows(entry: ImageFeatures, flat: np.ndarray) -> np.ndarray:
    """Rows of the image mixture for the pixels at flat indices ``flat`` (palette entries or pixels)."""
    return entry.palette.ids.ravel()[flat] if entry.mixture_on_palette else flat


def _costs_for(entry: ImageFeatures, model) -> np.ndarray:
    """Per-pixel costs of every class, upsampled from the native grid for deep features."""
    rows, cols = entry.shape
    if isinstance(model, SharedMixtureModel):
        costs = model.costs()
        return costs[entry.palette.ids] if entry.mixture_on_palette else costs.reshape(rows, cols, -1)
    grid = entry.features.data
    costs = model.costs(grid.reshape(-1, grid.shape[-1])).reshape(grid.shape[0], grid.shape[1], -1)
    return upsample_grid(costs, entry.features.stride, 0, rows, cols)


def _grid_labels(labels: np.ndarray, stride: int, grid_shape) -> np.ndarray:
    """Labels at the centre pixel of every grid cell (clipped to the image)."""
    rows, cols = labels.shape
    ys = np.minimum(np.arange(grid_shape[0]) * stride + stride // 2, rows - 1)
    xs = np.minimum(np.arange(grid_shape[1]) * stride + stride // 2, cols - 1)
    return labels[np.ix_(ys, xs)]


def _fit_appearance(entry: ImageFeatures, labels: np.ndarray, model=None):
    """Fit the default preset's appearance model on the labelled pixels of ``labels``.

    Deep backbones get a :class:`LinearModel` on the grid cells (all cells when
    ``labels`` is a full labelling); weight-free ones re-weight the image's shared
    colour mixture, reusing ``model`` when given (a refit).
    """
    if entry.stride > 1:
        fm = entry.features
        if model is None:  # the scribbles: the cell under each scribbled pixel
            x, y = _seed_features(fm, labels)
        else:  # a full labelling: the label at the centre of each cell
            x = fm.data.reshape(-1, fm.channels)
            y = _grid_labels(labels, fm.stride, fm.data.shape[:2]).ravel()
        return LinearModel().fit(x, y)
    model = model or SharedMixtureModel(_image_mixture(entry))
    flat = np.flatnonzero(labels)
    return model.fit(_mixture_rows(entry, flat), labels.ravel()[flat])


@dataclass
class _Extra:
    """Optional soft evidence of a default-preset cut (see :meth:`SegmentationSession.segment`)."""

    unary: Optional[np.ndarray] = None
    fit_labels: Optional[np.ndarray] = None

    @classmethod
    def check(cls, unary, fit_labels, shape, classes) -> "_Extra":
        if unary is not None:
            unary = np.asarray(unary, np.float32)
            if unary.shape != (*shape, 2) or classes.size != 2:
                raise ValueError(f"unary must have shape {(*shape, 2)} for a two-label cut, got {unary.shape}")
            if not np.all(np.isfinite(unary)):
                raise ValueError("unary costs must be finite")
        if fit_labels is not None:
            fit_labels = check_scribbles(fit_labels, shape, name="fit_labels")
        return cls(unary, fit_labels)

    def first_fit(self, seeds: np.ndarray) -> np.ndarray:
        return seeds if self.fit_labels is None else self.fit_labels

    def costs(self, costs: np.ndarray) -> np.ndarray:
        """Appearance costs plus the extra unary, shifted to >= 0 and capped at COST_CAP."""
        if self.unary is None:
            return costs
        total = costs + self.unary
        total -= total.min(axis=-1, keepdims=True)
        return np.minimum(total, COST_CAP, out=total)


_NO_EXTRA = _Extra()


def _multilevel_applies(shape, multilevel: Optional[bool]) -> bool:
    """Whether a two-label default cut of an image of ``shape`` is solved coarse-to-fine.

    ``None`` decides by size (:data:`MULTILEVEL_MIN_PIXELS`); images under 8 pixels a side never are.
    """
    rows, cols = shape
    multi = rows * cols >= MULTILEVEL_MIN_PIXELS if multilevel is None else bool(multilevel)
    return multi and min(rows, cols) >= 8


def _cached_nlinks(entry: ImageFeatures, lam, sigma):
    """``(key, NLinks)`` of the default preset's 8-neighbour n-links with weight ``lam``, built once per entry.

    The single-level cut asks for λ, a coarse level of the pyramid for λ·2ⁱ (a coarse
    edge stands for 2ⁱ fine ones); deep-feature bands read the same arrays
    (colour-only bands compute their weights on demand, see :func:`_band_edges`).
    """
    key = ("default", lam, sigma)
    if key not in entry.nlinks:
        entry.nlinks[key] = _default_nlinks(entry, lam, sigma)
    return key, entry.nlinks[key]


def _cut_default(entry: ImageFeatures, seeds, classes, lam, sigma, iterations, cancel,
                 extra: _Extra = _NO_EXTRA) -> np.ndarray:
    """Learned appearance + contrast edges + star convexity, refitted GrabCut-style."""
    key, nlinks = _cached_nlinks(entry, lam, sigma)
    hard = _seed_index(seeds, classes)
    model = _fit_appearance(entry, extra.first_fit(seeds))
    binary = classes.size == 2
    if binary:
        cut = _incremental_cut(entry, key, nlinks, hard == 0)
        big = cut.infinity
    index = None
    for _ in range(iterations + 1):
        check(cancel)
        if index is not None:
            if binary:
                model = _refit(entry, model, seeds, classes, index == 0)
            else:
                model = _fit_appearance(entry, np.where(seeds > 0, seeds, classes[index]), model)
        costs = extra.costs(_costs_for(entry, model))
        if binary:
            fg = cut.solve(*graphcut.tlinks(costs[..., 0], costs[..., 1], hard == 0, hard == 1, big))
            index = np.where(fg, 0, 1).astype(np.int32)
        else:
            index = graphcut.solve_multilabel(costs, float(np.mean([w.mean() for w in nlinks.weights[:2]])), hard)
    return index


def _mask_hash(mask: np.ndarray) -> str:
    """Short content hash of a boolean mask."""
    return hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=16).hexdigest()


def _incremental_cut(entry: ImageFeatures, key, nlinks, object_seeds: np.ndarray,
                     max_tlink: float = COST_CAP + 1.0) -> graphcut.IncrementalCut:
    """The cached graph for these n-links and object strokes (its star edges), or a new one."""
    star_key = (key, _mask_hash(object_seeds))
    if entry.cut is None or entry.cut[0] != star_key:
        entry.cut = (star_key, graphcut.IncrementalCut(nlinks, graphcut.star_edges(object_seeds), max_tlink))
    return entry.cut[1]


def _coarse_entry(entry: ImageFeatures) -> ImageFeatures:
    """The half-resolution level of an image (or of a coarser level), cached on the entry."""
    if entry.coarse is None:
        shape = multilevel.coarse_shape(entry.shape)
        if entry.stride == 1:  # block means of full-resolution features, when first needed
            parent = weakref.ref(entry)  # no reference cycle: an evicted image is freed at once

            def feats():
                return FeatureMap(multilevel.block_reduce(parent().features.data), 1, shape)
        else:  # the same grid seen from the coarse image: half the stride
            fm = entry.features
            if fm.stride % multilevel.FACTOR == 0:
                feats = FeatureMap(fm.data, fm.stride // multilevel.FACTOR, shape)
            else:  # an odd stride cannot be halved: half as many cells, resampled, at the same stride
                feats = FeatureMap(_resample_grid(fm.data, multilevel.coarse_shape(fm.data.shape[:2])), fm.stride,
                                   shape)
        colour = np.empty((*shape, entry.lab.shape[-1] if entry._colour is None else entry._colour.shape[-1]),
                          np.float32)
        for rows in strips(entry.shape[0], entry.shape[1], multiple=multilevel.FACTOR):  # strip by strip
            lo = rows.start // multilevel.FACTOR
            part = multilevel.block_reduce(entry.colour_rows(rows))
            colour[lo : lo + part.shape[0]] = part
        entry.coarse = ImageFeatures(entry.key + "/coarse", shape, feats, _colour=colour)
    return entry.coarse


def _resample_grid(grid: np.ndarray, shape) -> np.ndarray:
    """Bilinear (antialiased) resampling of a ``(h, w, c)`` feature grid to ``shape`` cells."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(grid, np.float32)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        out = F.interpolate(t, size=tuple(shape), mode="bilinear", align_corners=False, antialias=True)
    return np.ascontiguousarray(out[0].permute(1, 2, 0).numpy())


def _pyramid(entry: ImageFeatures) -> list:
    """``[entry, half, quarter, ...]`` down to :data:`COARSEST_PIXELS` (at least one coarse level)."""
    levels = [entry]
    while True:
        top = levels[-1]
        if len(levels) > 1 and (top.shape[0] * top.shape[1] <= COARSEST_PIXELS or min(top.shape) < 16):
            return levels
        levels.append(_coarse_entry(top))


def _level_sigma(level: ImageFeatures, sigma) -> float:
    """σ of a level's colour n-links: ``sigma``, or GrabCut's ``sqrt(2 mean d²)`` over its 8-neighbour pairs.

    Computed strip by strip (the same value :func:`graphcut.auto_sigma` gives on
    whole arrays), once per level.
    """
    if sigma is not None:
        return float(sigma)
    if level.auto_sigma is None:
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
        level.auto_sigma = float(np.sqrt(mean)) if mean > 0 else 1.0
    return level.auto_sigma


def _band_edges(level: ImageFeatures, lam: float, sigma):
    """Edge weights of a level's band: computed on demand from colour, or cached arrays for deep features."""
    if level.stride == 1:
        return multilevel.ColourEdges(level.colour_at, level.shape, lam, _level_sigma(level, sigma))
    return multilevel.ArrayEdges(_cached_nlinks(level, lam, sigma)[1])


#: levels up to this many pixels precompute every pixel's star step (one distance transform);
#: larger ones ask a k-d tree for the band's pixels only
STAR_TABLE_MAX_PIXELS = 4_000_000


def _star_steps(level: ImageFeatures, object_seeds: np.ndarray):
    """Star-convexity steps towards these object strokes (cached on the level while the strokes stay)."""
    key = _mask_hash(object_seeds)
    if level.star is None or level.star[0] != key:
        if object_seeds.size <= STAR_TABLE_MAX_PIXELS:
            steps = multilevel.ArrayStar(graphcut.star_edges(object_seeds), object_seeds.size)
        else:
            steps = multilevel.StarSteps(object_seeds)
        level.star = (key, steps)
    return level.star[1]


def _split(delta: np.ndarray):
    """``(cost_fg, cost_bg)`` from the difference ``cost_fg - cost_bg`` (the same cut, up to a constant)."""
    return np.maximum(delta, 0), np.maximum(-delta, 0)


class _FineCosts:
    """Object-minus-background costs of the full-resolution pixels, per palette entry when possible.

    A binary cut only sees the difference of the two classes' costs, so one
    channel is kept: a look-up table over the palette (no per-pixel array), or a
    per-pixel array for deep features and extra unaries.
    """

    def __init__(self, entry: ImageFeatures, model, extra: "_Extra"):
        self.ids = None
        if entry.mixture_on_palette and extra.unary is None and isinstance(model, SharedMixtureModel):
            costs = model.costs()
            self.lut = np.ascontiguousarray(costs[:, 0] - costs[:, 1])
            self.ids = entry.palette.ids
        else:
            costs = extra.costs(_costs_for(entry, model))
            self.delta = np.ascontiguousarray(costs[..., 0] - costs[..., 1])

    def at(self, flat: np.ndarray):
        """``(cost_fg, cost_bg)`` of the pixels at flat indices ``flat``."""
        if self.ids is None:
            return _split(self.delta.ravel()[flat])
        return _split(self.lut[self.ids.ravel()[flat]])

    def full(self) -> np.ndarray:
        """The difference for every pixel (float32 ``(rows, cols)``)."""
        return self.delta if self.ids is None else self.lut[self.ids]

    def coarse(self) -> np.ndarray:
        """Block sums of the difference on the half-resolution grid, strip by strip."""
        if self.ids is None:
            return multilevel.block_sum(self.delta)
        rows, cols = self.ids.shape
        out = np.empty(multilevel.coarse_shape((rows, cols)), np.float32)
        for part in strips(rows, cols, multiple=multilevel.FACTOR):
            lo = part.start // multilevel.FACTOR
            block = multilevel.block_sum(self.lut[self.ids[part]])
            out[lo : lo + block.shape[0]] = block
        return out


def _sample_class(rng, mask: np.ndarray, value: bool, count: int, limit: int) -> np.ndarray:
    """Up to ``limit`` random flat indices where ``mask == value`` (``count`` of them), without a full index list."""
    n = mask.size
    if count <= limit:
        return np.flatnonzero(mask.ravel() == value)
    if count <= n // 8:
        return rng.choice(np.flatnonzero(mask.ravel() == value), limit, replace=False)
    while True:  # a common class: random positions, kept where the class matches
        draw = rng.choice(n, min(n, int(limit * n / count * 1.5) + 64), replace=False)
        hit = draw[mask.ravel()[draw] == value]
        if hit.size >= limit:
            return np.sort(hit[:limit])


def _refit(entry: ImageFeatures, model, seeds, classes, fg: np.ndarray):
    """Refit the appearance model on the labelling ``fg`` (object mask) and the strokes (GrabCut's iteration).

    Deep features take every grid cell (the label at its centre); the colour
    mixture takes up to :data:`~napari_deepseg.core.cut.appearance.MAX_SAMPLES_PER_CLASS`
    random pixels of each class, drawn without building a full-resolution label image.
    The single-level and the coarse-to-fine cuts both refit through here.
    """
    rows, cols = entry.shape
    if entry.stride > 1:
        fm = entry.features
        gr, gc = fm.data.shape[:2]
        ys = np.minimum(np.arange(gr) * fm.stride + fm.stride // 2, rows - 1)
        xs = np.minimum(np.arange(gc) * fm.stride + fm.stride // 2, cols - 1)
        lab = np.where(fg[np.ix_(ys, xs)], classes[0], classes[1])
        s = seeds[np.ix_(ys, xs)]
        return LinearModel().fit(fm.data.reshape(-1, fm.channels), np.where(s > 0, s, lab).ravel())
    rng = np.random.default_rng(0)
    n_fg = int(np.count_nonzero(fg))
    flat = np.concatenate([
        _sample_class(rng, fg, True, n_fg, MAX_SAMPLES_PER_CLASS),
        _sample_class(rng, fg, False, fg.size - n_fg, MAX_SAMPLES_PER_CLASS),
    ])
    labels = np.where(fg.ravel()[flat], classes[0], classes[1])
    return model.fit(_mixture_rows(entry, flat), labels)


#: deep-feature bands take at most this fraction of a level's pixels whose costs disagree with the level above
DISAGREE_BUDGET = 0.02


def _disagreement(init: np.ndarray, delta: np.ndarray, budget: float) -> np.ndarray:
    """Pixels whose own cost difference argues against their label in ``init``, the strongest ``budget`` of them.

    Examples
    --------
    >>> init = np.array([[True, True, False, False]])
    >>> _disagreement(init, np.array([[3.0, -1.0, -5.0, 2.0]]), budget=1).tolist()
    [[False, False, True, False]]
    """
    against = np.where(init, delta, -delta)  # > 0: the pixel prefers the other label
    n = int(np.count_nonzero(against > 0))
    if n <= budget:
        return against > 0
    keep = max(0, int(budget))
    if keep == 0:
        return np.zeros(init.shape, bool)
    threshold = np.partition(against.ravel(), against.size - keep)[against.size - keep]
    return against >= max(threshold, np.finfo(np.float32).tiny)


def _cut_multilevel(entry: ImageFeatures, seeds, classes, lam, sigma, iterations, cancel,
                    extra: _Extra = _NO_EXTRA) -> np.ndarray:
    """The default energy solved coarse-to-fine.

    The image is halved until the coarsest level is small (:func:`_pyramid`);
    that level is solved whole (refits included) with a cached incremental
    graph; every finer level re-solves only a band around the boundary of the
    level above, grown where the boundary presses against the band's edge
    (:func:`multilevel.refine_band`). Unaries of a coarse pixel are the sums of
    its fine pixels', λ doubles per level (a coarse edge stands for two fine ones).
    """
    levels = _pyramid(entry)
    hards = [(seeds == classes[0], seeds == classes[1])]  # (object, background) seeds per level
    for _ in levels[1:]:
        hards.append(multilevel.coarse_seeds(*hards[-1]))
    usable = [i for i, (f, b) in enumerate(hards) if i > 0 and f.any() and b.any()]
    if not usable:
        # every stroke of a label shares its 2x2 blocks with the other label: no coarse seeds
        return _cut_default(entry, seeds, classes, lam, sigma, iterations, cancel, extra)
    k = max(usable)
    top = levels[k]
    ckey, c_nlinks = _cached_nlinks(top, lam * 2**k, sigma)
    c_cut = _incremental_cut(top, ckey, c_nlinks, hards[k][0], 4**k * COST_CAP + 1.0)
    model = _fit_appearance(entry, extra.first_fit(seeds))
    fg = None
    for it in range(iterations + 1):
        check(cancel)
        if fg is not None:
            model = _refit(entry, model, seeds, classes, fg)
        # a labelling that only feeds a refit (a few thousand sampled pixels) skips the band's growth
        rounds = multilevel.MAX_GROWTH_ROUNDS if it == iterations else 1
        fine = _FineCosts(entry, model, extra)
        deltas = [None, fine.coarse()]
        for _ in range(2, k + 1):
            deltas.append(multilevel.block_sum(deltas[-1]))
        cost_fg, cost_bg = _split(deltas[k])
        fg = c_cut.solve(*graphcut.tlinks(cost_fg, cost_bg, *hards[k], c_cut.infinity))
        for i in range(k - 1, -1, -1):  # each finer level: a band around the boundary of the one above
            check(cancel)
            level = levels[i]
            init = multilevel.upsample_labels(fg, level.shape)
            h_fg, h_bg = hards[i]
            band = multilevel.band_mask(init, h_fg, h_bg, BAND_RADIUS)
            if entry.stride > 1:  # deep costs vary cell by cell: re-solve the pixels they argue for most
                d = fine.full() if i == 0 else deltas[i]
                band |= _disagreement(init, d, DISAGREE_BUDGET * init.size)
                del d
            if i == 0:
                costs = fine.at
            else:
                delta = deltas[i].ravel()
                costs = lambda flat, d=delta: _split(d[flat])  # noqa: E731
            fg, _ = multilevel.refine_band(costs, None, _band_edges(level, lam * 2**i, sigma), init, band, h_fg,
                                           h_bg, _star_steps(level, h_fg), radius=BAND_RADIUS, max_rounds=rounds)
    return np.where(fg, 0, 1).astype(np.int32)


def segment_image(image, scribbles, backbone: str = "classic", preset: str = "default", lam=None, sigma=None,
                  progress=None, cancel=None, **backbone_params) -> np.ndarray:
    """One-shot convenience: features of ``image`` then one cut for ``scribbles``.

    See :class:`SegmentationSession` for the parameters.
    """
    session = SegmentationSession(backbone, **backbone_params)
    entry_shape = as_float_image(image).shape[:2]
    check_scribbles(scribbles, entry_shape)
    session.set_image(image, progress=progress, cancel=cancel)
    return session.segment(scribbles, preset=preset, lam=lam, sigma=sigma, progress=progress, cancel=cancel)
