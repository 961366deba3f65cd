"""The expensive step (features of one image, cached) apart from the cheap one (a cut).

Modelled on segment-anything's ``SamPredictor``: :meth:`SegmentationSession.set_image`
computes and caches the features; :meth:`SegmentationSession.segment` only solves.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Optional

import numpy as np

from ..features import get_extractor
from ..io.lazy import LazyImage
from ..utils import memory
from ..utils.progress import CancelToken, ProgressCallback, cancel_scope, check, release_memory, report
from ..utils.validation import (SCRIBBLE_BACKGROUND, as_float_image, channels_last, check_positive, check_scribbles,
                                image_layout)
from . import corrections, energy, graphcut, pyramid, seed
from .image import APPEARANCE_CHANNELS, ImageFeatures, image_key, oversampling
from .palette import build_palette

#: default smoothness weight λ per preset (tuned on the GrabCut scribbles, see docs/performance.md)
DEFAULT_LAMBDA = {"seed": 1.0, "default": 20.0}
#: images up to this many pixels answer ``segment(defer=True)`` without the found star centres, which a second
#: cut adds, and with the refit sampled from a coarse labelling solved below the coarsest level
#: (481×321 classic update: 68-70 ms instead of 108-110 ms in one sitting without the centres, 51-55 ms
#: instead of 64-67 ms with the coarse refit too, the full cut following in the background;
#: docs/performance.md); on larger images the recut is a small share of a whole cut the user waits for
#: anyway, and a second one is not
DEFER_MAX_PIXELS = 1_000_000
#: GrabCut-style refits of the appearance models in the default preset
DEFAULT_ITERATIONS = 1


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
        #: whether the last :meth:`segment` was a local update (``local=True`` that applied)
        self.last_local = False
        #: whether the last :meth:`segment` left its found star centres to a second cut (``defer=True``)
        self.last_deferred = False
        #: the λ the last :meth:`segment` used (the default one when none was given, see :func:`default_lambda`)
        self.last_lambda: Optional[float] = None
        self._trail: Optional[corrections.Trail] = None  # the last answer local_corrections keeps near
        #: pixels where the last :meth:`segment` kept an earlier answer's label against its cut
        #: (``local_corrections``; 0: the answer is the cut of its strokes alone)
        self.last_kept = 0

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

        Notes
        -----
        The palette's strips check ``cancel`` too (:func:`~napari_deepseg.core.utils.progress.cancel_scope`):
        a cancelled preparation of a 25 MP image stops within a strip, not after its palette.
        """
        with cancel_scope(cancel):
            return self._set_image(image, progress, cancel, channel_axis)

    def _set_image(self, image, progress, cancel, channel_axis) -> ImageFeatures:
        arr, params, key = self._keyed(image, channel_axis)
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
        source = arr if channel_axis is None else LazyImage(arr, all_channels=True)
        entry = ImageFeatures.from_palette(
            key, palette, lambda e: _feature_source(self.extractor, source, e, progress, cancel, self.feature_cache),
            getattr(self.extractor, "appearance_channels", None))
        release_memory()
        if not entry.features_computed:
            report(progress, 1, 1, "colour")
        self._cache[key] = entry
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        self._current = entry
        return entry

    def _keyed(self, image, channel_axis: Optional[int] = None) -> tuple:
        """``(array, params, cache key)`` of an image as :meth:`set_image` reads it."""
        params = self.extractor.params()
        if channel_axis is None:
            arr = image_layout(image)  # shape and dtype only: numpy, dask and zarr arrays alike
        else:  # every channel kept, each stretched on its own (lazy arrays stay lazy)
            arr, params = channels_last(image, channel_axis), {**params, "channel_axis": int(channel_axis)}
        return arr, params, image_key(arr, self.backbone, params)

    def prepare_default(self, lam: Optional[float] = None, sigma: Optional[float] = None,
                        progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None) -> None:
        """Build what the default preset's first cut would build lazily (colour mixture, pyramid, n-links).

        Call it after :meth:`set_image`, e.g. in a worker as soon as an image is
        chosen, so that the first :meth:`segment` pays only for the cut (the
        widget and the click methods do); it changes no result.

        Parameters
        ----------
        lam, sigma : float, optional
            The λ and σ the cuts will use (``None``: the preset's default, estimated).
        progress, cancel
            See :mod:`napari_deepseg.core.utils.progress`.

        Raises
        ------
        RuntimeError
            If no image was set.

        Notes
        -----
        Its long loops (the pyramid's strips, the mixture's EM steps) check ``cancel`` too
        (:func:`~napari_deepseg.core.utils.progress.cancel_scope`).
        """
        if self._current is None:
            raise RuntimeError("no image set: call set_image(image) first")
        entry = self._current
        with cancel_scope(cancel):
            coarse_to_fine = pyramid.applies(entry.shape, None)
            lam = default_lambda(entry, "default", coarse_to_fine) if lam is None else check_positive(lam, "lambda")
            sigma = check_positive(sigma, "sigma", minimum=1e-6)
            if coarse_to_fine:
                pyramid.prepare(entry, lam, sigma, progress, cancel)
            else:
                energy.prepare(entry, lam, sigma, progress, cancel)

    def prepare(self, image, lam: Optional[float] = None, sigma: Optional[float] = None,
                progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
                channel_axis: Optional[int] = None) -> "ImageFeatures":
        """All the image-level work at once: :meth:`set_image` then :meth:`prepare_default`.

        Returns
        -------
        ImageFeatures
        """
        entry = self.set_image(image, progress=progress, cancel=cancel, channel_axis=channel_axis)
        check(cancel)
        self.prepare_default(lam, sigma, progress=progress, cancel=cancel)
        return entry

    def prepare_aside(self, image, lam: Optional[float] = None, sigma: Optional[float] = None,
                      progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
                      channel_axis: Optional[int] = None, default: bool = True) -> "ImageFeatures":
        """:meth:`prepare` another image without touching this session: for :meth:`adopt` later.

        The work runs on a sibling session that shares this one's feature
        extractor (and feature cache), so it may run in a thread while this
        session cuts the current image: a folder's next image is prepared while
        the user works on this one, and nothing waits for it.

        Parameters
        ----------
        default : bool
            Also build what the default preset's first cut needs (:meth:`prepare_default`).

        Returns
        -------
        ImageFeatures
            The prepared image, to hand to :meth:`adopt`.

        Examples
        --------
        >>> img = np.zeros((20, 20), np.float32); img[5:15, 5:15] = 1
        >>> session = SegmentationSession("classic")
        >>> entry = session.prepare_aside(img)
        >>> session.is_image_set, session.adopt(entry), session.set_image(img) is entry
        (False, None, True)
        """
        cached = self._cache.get(self._keyed(image, channel_axis)[2])
        if cached is not None:  # prepared already (the previous image of a folder): nothing to do
            return cached
        sibling = SegmentationSession.__new__(SegmentationSession)
        sibling.__dict__.update(self.__dict__)  # the same extractor, backbone and feature cache
        sibling._cache, sibling._current = OrderedDict(), None
        entry = sibling.set_image(image, progress=progress, cancel=cancel, channel_axis=channel_axis)
        if default:
            check(cancel)
            sibling.prepare_default(lam, sigma, progress=progress, cancel=cancel)
        return entry

    def adopt(self, entry: "ImageFeatures") -> None:
        """Put an image prepared by :meth:`prepare_aside` into the cache (the current image stays current).

        The least recently used images beyond ``cache_size`` are dropped, never the current one.
        """
        self._cache[entry.key] = entry
        self._cache.move_to_end(entry.key)
        for key in list(self._cache):
            if len(self._cache) <= self.cache_size:
                break
            if self._cache[key] is not self._current and key != entry.key:
                del self._cache[key]

    def use_cached(self, key: str) -> bool:
        """Make the cached image ``key`` (its ``ImageFeatures.key``) the current one, without its pixels.

        Returns
        -------
        bool
            Whether it was cached (``False``: call :meth:`set_image` with the pixels).
        """
        entry = self._cache.get(key)
        if entry is None:
            return False
        self._cache.move_to_end(key)
        self._current = entry
        return True

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
        star_weight: Optional[float] = None,
        local: bool = False,
        preview=None,
        defer: bool = False,
        local_corrections: bool = False,
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
            around the boundary at full resolution (:mod:`~napari_deepseg.core.cut.pyramid`).
            ``None`` (default) uses it for images of at least
            :data:`~napari_deepseg.core.cut.pyramid.MULTILEVEL_MIN_PIXELS`; ``False`` solves the whole image at
            full resolution (the reference).
        unary : numpy.ndarray, optional
            Default preset, two labels: extra float ``(rows, cols, 2)`` costs of
            labelling each pixel object (``[..., 0]``) and background (``[..., 1]``),
            added to the appearance costs (e.g. a distance prior around clicks); or
            ``(rows, cols)``, object minus background (the same cut, half the memory:
            only the difference is kept either way).
        fit_labels : numpy.ndarray, optional
            Default preset: a scribble-like label image the appearance models are
            first fitted on instead of ``scribbles`` (soft evidence, such as the
            image border standing for the background, that is not a hard constraint).
        star_weight : float, optional
            Default preset, two labels: ``None`` (default) makes the object star-convex
            around its strokes (hard implications); a number makes each broken
            implication cost that much, so the object may bend around a region that
            looks like background (the click engine's choice, see
            :mod:`~napari_deepseg.core.prompts.clickcut`).
        local : bool
            Default preset, two labels, coarse-to-fine: answer the strokes that
            changed since the last cut of this image (same parameters) by a
            local update (:func:`~napari_deepseg.core.cut.pyramid.update_multilevel`):
            the appearance model is kept and only a window around the changed
            strokes (:data:`~napari_deepseg.core.cut.pyramid.UPDATE_BOUND` pixels
            around their box) is re-solved; every pixel outside it keeps its label.
            Where that does not apply (first cut, other parameters, a change over a
            quarter of the image) the whole image is cut. :attr:`last_local` says
            which it was; cut again with ``local=False`` to refit the model on
            the whole image.
        preview : callable, optional
            Coarse-to-fine cuts of the whole image: called once, from the thread
            that cuts, with a first result as labels of the image's size (the same
            dtype as the result) while the whole image is cut; a widget can show
            it. Strokes within a small window of an image of at least
            :data:`~napari_deepseg.core.cut.pyramid.WINDOW_FIRST_MIN_PIXELS` get that
            window cut alone, at full resolution, background elsewhere
            (:func:`~napari_deepseg.core.cut.pyramid.window_first`, about a local
            update's time); others the coarsest level's result, before the
            full-resolution bands refine it.
        defer : bool
            Answer fast and leave what only polishes the result to a second cut:
            a whole coarse-to-fine cut of a small image (up to
            :data:`DEFER_MAX_PIXELS`) skips the found star centres' recut (two
            max-flows of its coarsest level, about 40 % of an update on a
            481×321 photo) and refits its appearance model on a labelling solved
            one level below the coarsest, without bands (one max-flow of the
            coarsest level fewer; ``cut_multilevel(coarse_fit=True)``). :attr:`last_deferred` says whether something was left;
            cut again with ``defer=False`` for the full result (the Scribble widget
            does, in the background, as after a local update).
        local_corrections : bool
            Strokes that only add to the last ones this session answered on this
            image (same parameters, nothing erased) correct that answer: of the
            regions where the new cut differs from it, only those touching a new
            stroke change (:mod:`~napari_deepseg.core.cut.corrections`); a second
            answer to the same strokes (the background refit) corrects the same
            answer. The Scribble widget asks for it; without it every answer is
            the cut of the strokes alone.

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
        classes = np.unique(seeds[seeds > 0])
        coarse_to_fine = classes.size == 2 and pyramid.applies(entry.shape, multilevel)  # for the default preset
        if lam is None:
            lam = default_lambda(entry, preset, coarse_to_fine)
        self.last_local, self.last_deferred, self.last_lambda, index = False, False, float(lam), None
        self.last_kept = 0
        first_costs = None  # the first round's costs, when the strokes' window was cut first
        report(progress, 0, 1, "graph cut")
        check(cancel)
        _check_cut_fits(entry, preset, classes.size, multilevel)
        if preset == "seed":
            index = seed.cut_seed(entry, seeds, classes, lam, sigma)
        else:
            cut = pyramid.cut_multilevel if coarse_to_fine else energy.cut_default
            extra = energy.Extra.check(unary, fit_labels, entry.shape, classes, star_weight)
            if local and coarse_to_fine:
                index = pyramid.update_multilevel(entry, seeds, classes, lam, sigma, it, cancel, extra, progress)
                self.last_local = index is not None
            if index is None and preview is not None and coarse_to_fine:
                # strokes in a small window of a large image: that window first, shown while the whole is cut
                first = pyramid.window_first(entry, seeds, classes, lam, sigma, it, cancel, extra)
                if first is not None:
                    preview(labels_from_index(first[0], classes))
                    preview, first_costs = None, first[1]  # no coarse preview over it; its costs reused
            if index is None:
                coarse = {} if preview is None or not coarse_to_fine else {
                    "preview": lambda fg: preview(labels_from_index((~fg).view(np.uint8), classes))}
                if first_costs is not None:
                    coarse["first_costs"] = first_costs
                # a soft star (star_weight) has no found centres to leave out: nothing to defer
                if (coarse_to_fine and defer and extra.star_weight is None
                        and entry.shape[0] * entry.shape[1] <= DEFER_MAX_PIXELS):
                    coarse.update(found_centres=False, coarse_fit=True)
                    self.last_deferred = True
                index = cut(entry, seeds, classes, lam, sigma, it, cancel, extra, progress, **coarse)
        report(progress, 1, 1, "graph cut")
        labels = labels_from_index(index, classes)
        if local_corrections and unary is None and fit_labels is None:
            key = (preset, float(lam), sigma, it, multilevel, star_weight)
            labels, self._trail, self.last_kept = corrections.answer(self._trail, entry.key, key, seeds, labels)
        return labels


def default_lambda(entry: ImageFeatures, preset: str, coarse_to_fine: bool) -> float:
    """The λ a cut uses when none is given: the preset's (:data:`DEFAULT_LAMBDA`), times the image's
    :func:`~napari_deepseg.core.cut.image.oversampling` for the default preset's coarse-to-fine cut.

    Native photos read as 1 (all 150 GrabCut and Berkeley photos), so the small-image benchmarks keep their λ.
    """
    lam = DEFAULT_LAMBDA[preset]
    if preset == "default" and coarse_to_fine:
        lam *= oversampling(entry)
    return lam


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
    elif pyramid.applies(entry.shape, multi):
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
