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
from .appearance import COST_CAP, ImageMixture, LinearModel, SharedMixtureModel, make_appearance_model
from .features import FeatureMap, get_extractor
from .features.base import upsample_grid
from .progress import CancelToken, ProgressCallback, check, release_memory, report
from .validation import SCRIBBLE_BACKGROUND, as_float_image, check_positive, check_scribbles

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
#: half-width in pixels of the full-resolution band around the coarse boundary
BAND_RADIUS = 3


@dataclass
class ImageFeatures:
    """Everything computed once per image and backbone.

    Attributes
    ----------
    key : str
        Content hash of the image plus backbone name and parameters.
    image : numpy.ndarray
        The normalised float32 ``(rows, cols, channels)`` image.
    colour : numpy.ndarray
        float32 ``(rows, cols, channels)`` colour in a perceptual space (L*a*b*,
        or lightness for grayscale), used for full-resolution edges.
    features : FeatureMap
        Compressed features at the backbone's native stride. For full-resolution
        weight-free backbones whose features the default preset does not read
        (``classic``), computed on first access (see :func:`_feature_source`).
    nlinks : dict
        Pairwise weights per ``(preset, lam, sigma)``, filled on demand.
    appearance : ImageMixture or None
        The image-wide colour mixture of the weight-free default preset, built on demand.
    cut : tuple or None
        ``(key, IncrementalCut)`` of the last binary default cut, re-solved while
        the object strokes and parameters stay the same.
    coarse : ImageFeatures or None
        The half-resolution problem of the multilevel cut, built on demand.
    star : tuple or None
        ``(key, (p, q))`` full-resolution star edges of the last object strokes.
    appearance_channels : int
        Leading feature channels the weight-free appearance mixture adds to colour
        (the backbone's ``appearance_channels``, else :data:`APPEARANCE_CHANNELS`).
    """

    key: str
    image: np.ndarray
    colour: np.ndarray
    _features: Union[FeatureMap, Callable[[], FeatureMap]]
    nlinks: dict = field(default_factory=dict)
    appearance: Optional[ImageMixture] = None
    cut: Optional[tuple] = None
    coarse: Optional["ImageFeatures"] = None
    star: Optional[tuple] = None
    appearance_channels: int = APPEARANCE_CHANNELS

    @property
    def shape(self) -> tuple:
        """``(rows, cols)`` of the image."""
        return tuple(self.image.shape[:2])

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
    arr = np.ascontiguousarray(image)
    h.update(str((arr.shape, arr.dtype.str, backbone, sorted(params.items()))).encode())
    h.update(memoryview(arr).cast("B"))
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

    def __init__(self, backbone: str = "classic", cache_size: int = 2, **backbone_params):
        self.extractor = get_extractor(backbone, **backbone_params)
        self.backbone = self.extractor.name
        self.cache_size = max(1, int(cache_size))
        self._cache: "OrderedDict[str, ImageFeatures]" = OrderedDict()
        self._current: Optional[ImageFeatures] = None

    # -- expensive step -------------------------------------------------------
    def set_image(
        self, image, progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None
    ) -> ImageFeatures:
        """Compute (or fetch from the cache) the features of ``image``.

        Parameters
        ----------
        image : array-like
            ``(rows, cols)``, ``(rows, cols, 3)`` or ``(rows, cols, 4)``; any numeric dtype.
        progress, cancel
            See :mod:`napari_deepseg.core.progress`.

        Returns
        -------
        ImageFeatures
        """
        arr = np.asarray(image)
        norm = as_float_image(arr)
        key = image_key(arr, self.backbone, self.extractor.params())
        if key in self._cache:
            self._cache.move_to_end(key)
            self._current = self._cache[key]
            return self._current
        check(cancel)
        feats = _feature_source(self.extractor, norm, progress, cancel)
        release_memory()
        entry = ImageFeatures(key, norm, perceptual_colour(norm), feats)
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
            _cached_nlinks(_coarse_entry(entry), "default-coarse", lam, sigma)
            _cached_nlinks(entry, "default-band", lam, sigma)
        else:
            _cached_nlinks(entry, "default", lam, sigma)

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
            See :mod:`napari_deepseg.core.progress`.
        multilevel : bool, optional
            Default preset, two labels: solve at half resolution and refine a band
            around the boundary at full resolution (:mod:`~napari_deepseg.core.multilevel`).
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
        if preset == "seed":
            index = _cut_seed(entry, seeds, classes, lam, sigma)
        else:
            cut = _cut_multilevel if classes.size == 2 and _multilevel_applies(entry.shape, multilevel) else _cut_default
            extra = _Extra.check(unary, fit_labels, entry.shape, classes)
            index = cut(entry, seeds, classes, lam, sigma, it, cancel, extra)
        report(progress, 2, 2, "graph cut")
        return labels_from_index(index, classes)


def _feature_source(extractor, image: np.ndarray, progress, cancel) -> Union[FeatureMap, Callable[[], FeatureMap]]:
    """The extractor's features now, or a function computing them on first use.

    Full-resolution weight-free backbones (``defer_features = True``, e.g. ``classic``)
    whose channels the default preset does not read (no ``appearance_channels``) are
    deferred: the default preset's cut uses only colour, and a full-resolution filter
    bank takes ~500 bytes per pixel (12 GB for 25 MP) and most of the time.
    """
    channels = getattr(extractor, "appearance_channels", None)
    channels = APPEARANCE_CHANNELS if channels is None else int(channels)
    if getattr(extractor, "defer_features", False) and channels == 0:
        report(progress, 0, 1, f"colour ({extractor.name} features on first use)")
        check(cancel)
        return lambda: extractor.extract(image)
    return extractor.extract(image, progress=progress, cancel=cancel)


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


def _default_nlinks(entry: ImageFeatures, lam, sigma, connectivity: Optional[int] = None) -> graphcut.NLinks:
    """Contrast weights on full-resolution colour, combined with deep features.

    8-neighbour by default; a single-level cut of more than
    :data:`~napari_deepseg.core.graphcut.EIGHT_NEIGHBOURS_MAX_PIXELS` uses 4 (memory).
    """
    rows, cols = entry.shape
    if connectivity is None:
        connectivity = 8 if rows * cols <= graphcut.EIGHT_NEIGHBOURS_MAX_PIXELS else 4
    offsets = graphcut.OFFSETS_8 if connectivity == 8 else graphcut.OFFSETS_4
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
    """The image-wide colour (+ leading texture channels) mixture, fitted once per image."""
    if entry.appearance is None:
        feats = entry.colour
        if entry.appearance_channels > 0:
            fm = entry.features
            extra = fm.data[..., :entry.appearance_channels] if fm.data is not entry.image else fm.data[..., :0]
            feats = np.concatenate([entry.colour, extra], axis=-1)
        entry.appearance = ImageMixture(feats.reshape(-1, feats.shape[-1]), n_components=MIXTURE_COMPONENTS)
    return entry.appearance


def _costs_for(entry: ImageFeatures, model) -> np.ndarray:
    """Per-pixel costs of every class, upsampled from the native grid for deep features."""
    rows, cols = entry.shape
    if isinstance(model, SharedMixtureModel):
        return model.costs().reshape(rows, cols, -1)
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
    return model.fit(flat, labels.ravel()[flat])


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


#: n-links of the default preset: kind -> (factor on λ, connectivity; None = by image size)
_NLINK_KINDS = {"default": (1.0, None), "default-coarse": (2.0, 8), "default-band": (1.0, 8)}


def _cached_nlinks(entry: ImageFeatures, kind: str, lam, sigma):
    """``(key, NLinks)`` of one kind of the default preset's n-links, built once per entry.

    ``default`` is the single-level cut's, ``default-coarse`` the coarse level's (2λ: a
    coarse edge stands for two fine ones), ``default-band`` the fine band's (always
    8-neighbour, unlike the single-level cut above 2 MP).
    """
    key = (kind, lam, sigma)
    if key not in entry.nlinks:
        factor, connectivity = _NLINK_KINDS[kind]
        entry.nlinks[key] = _default_nlinks(entry, factor * lam, sigma, connectivity=connectivity)
    return key, entry.nlinks[key]


def _cut_default(entry: ImageFeatures, seeds, classes, lam, sigma, iterations, cancel,
                 extra: _Extra = _NO_EXTRA) -> np.ndarray:
    """Learned appearance + contrast edges + star convexity, refitted GrabCut-style."""
    key, nlinks = _cached_nlinks(entry, "default", lam, sigma)
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
    """The half-resolution version of an image's features (cached on the entry)."""
    if entry.coarse is None:
        shape = multilevel.coarse_shape(entry.shape)
        if entry.stride == 1:  # block means of full-resolution features, when first needed
            parent = weakref.ref(entry)  # no reference cycle: an evicted image is freed at once

            def feats():
                return FeatureMap(multilevel.block_reduce(parent().features.data), 1, shape)
        else:  # the same grid seen from the coarse image: half the stride (strides are even)
            fm = entry.features
            feats = FeatureMap(fm.data, fm.stride // multilevel.FACTOR, shape)
        image = multilevel.block_reduce(entry.image)
        entry.coarse = ImageFeatures(entry.key + "/coarse", image, multilevel.block_reduce(entry.colour), feats)
    return entry.coarse


def _full_res_star(entry: ImageFeatures, object_seeds: np.ndarray):
    """Full-resolution star edges for these object strokes (cached on the entry)."""
    key = _mask_hash(object_seeds)
    if entry.star is None or entry.star[0] != key:
        entry.star = (key, graphcut.star_edges(object_seeds))
    return entry.star[1]


def _cut_multilevel(entry: ImageFeatures, seeds, classes, lam, sigma, iterations, cancel,
                    extra: _Extra = _NO_EXTRA) -> np.ndarray:
    """The default energy solved coarse-to-fine: refits on the coarse grid, one banded fine cut."""
    hard = _seed_index(seeds, classes)
    coarse = _coarse_entry(entry)
    ckey, c_nlinks = _cached_nlinks(coarse, "default-coarse", lam, sigma)
    c_hard = multilevel.coarse_hard(hard)
    if not ((c_hard == 0).any() and (c_hard == 1).any()):
        # every stroke of a label shares its 2x2 blocks with the other label: no coarse seeds
        return _cut_default(entry, seeds, classes, lam, sigma, iterations, cancel, extra)
    area = multilevel.FACTOR**2
    c_cut = _incremental_cut(coarse, ckey, c_nlinks, c_hard == 0, area * COST_CAP + 1.0)
    c_big = c_cut.infinity
    model = _fit_appearance(entry, extra.first_fit(seeds))
    init = None
    for _ in range(iterations + 1):
        check(cancel)
        if init is not None:
            model = _fit_appearance(entry, np.where(seeds > 0, seeds, np.where(init, classes[0], classes[1])), model)
        costs = extra.costs(_costs_for(entry, model))
        cc = multilevel.block_reduce(costs, "sum")
        c_fg = c_cut.solve(*graphcut.tlinks(cc[..., 0], cc[..., 1], c_hard == 0, c_hard == 1, c_big))
        init = multilevel.upsample_labels(c_fg, entry.shape)
    _, band_nlinks = _cached_nlinks(entry, "default-band", lam, sigma)
    hard_fg, hard_bg = hard == 0, hard == 1
    band = multilevel.band_mask(init, hard_fg, hard_bg, BAND_RADIUS)
    fg = multilevel.solve_band(costs[..., 0], costs[..., 1], band_nlinks, init, band, hard_fg, hard_bg,
                               _full_res_star(entry, hard_fg))
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
