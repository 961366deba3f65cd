"""The default preset's energy on one level, and its single-level cut.

The energy of a labelling is the sum of

* **appearance** costs: for weight-free backbones an image-wide colour mixture
  whose components are re-weighted per class (:class:`~napari_deepseg.core.cut.appearance.SharedMixtureModel`),
  for deep backbones a linear model on the features' grid, upsampled;
* **contrast n-links** on the 8-neighbourhood of full-resolution colour (plus the
  features' differences for deep backbones), weighted by λ;
* **star convexity** around the object strokes (hard implication edges), around
  the object's core both cuts agree on (:func:`agreed_core`), and around every
  object the cut finds apart from the strokes (:func:`detached_objects`);
* optional soft evidence (:class:`Extra`: an extra unary, other labels to fit on).

:func:`cut_default` minimises it GrabCut-style (fit, cut, refit, cut again)
on a cached incremental graph. The coarse-to-fine driver
(:mod:`~napari_deepseg.core.cut.pyramid`) solves the same energy on a pyramid.

What is built once per image (the colour mixture, the n-links, the cached
incremental graph) is kept on the :class:`~napari_deepseg.core.cut.image.ImageFeatures`
entry, which fills it (:meth:`~napari_deepseg.core.cut.image.ImageFeatures.mixture`,
:meth:`~napari_deepseg.core.cut.image.ImageFeatures.nlinks_for`,
:meth:`~napari_deepseg.core.cut.image.ImageFeatures.incremental_cut`); this module only asks for it.

Interface: :func:`prepare`, :func:`cut_default`, :class:`Extra`, and the pieces
the pyramid shares (:func:`fit_appearance`, :func:`refit`, :func:`costs_for`,
:func:`mixture_rows`, :func:`recut_found_centres`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..features import FeatureMap
from ..features.base import upsample_grid
from ..utils.progress import check, report
from ..utils.validation import check_positive, check_scribbles
from . import graphcut, maxflow
from .appearance import COST_CAP, MAX_SAMPLES_PER_CLASS, LinearModel, SharedMixtureModel
from .image import ImageFeatures


def seed_index(seeds: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``(rows, cols)`` class index of each scribbled pixel, ``-1`` elsewhere."""
    lut = np.full(int(seeds.max()) + 1, -1, np.int32)
    lut[classes] = np.arange(classes.size, dtype=np.int32)
    return lut[seeds]


def seed_features(fm: FeatureMap, seeds: np.ndarray):
    """Features and labels of the scribbled pixels (grid cell under each pixel)."""
    rr, cc = np.nonzero(seeds)
    s = fm.stride
    return fm.data[rr // s, cc // s], seeds[rr, cc]


def mixture_rows(entry: ImageFeatures, flat: np.ndarray) -> np.ndarray:
    """Rows of the image mixture for the pixels at flat indices ``flat`` (palette entries or pixels)."""
    return entry.palette.ids.ravel()[flat] if entry.mixture_on_palette else flat


def costs_for(entry: ImageFeatures, model) -> np.ndarray:
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


def fit_appearance(entry: ImageFeatures, labels: np.ndarray, model=None):
    """Fit the default preset's appearance model on the labelled pixels of ``labels``.

    Deep backbones get a :class:`LinearModel` on the grid cells (all cells when
    ``labels`` is a full labelling); weight-free ones re-weight the image's shared
    colour mixture, reusing ``model`` when given (a refit).
    """
    if entry.stride > 1:
        fm = entry.features
        if model is None:  # the scribbles: the cell under each scribbled pixel
            x, y = seed_features(fm, labels)
        else:  # a full labelling: the label at the centre of each cell
            x = fm.data.reshape(-1, fm.channels)
            y = _grid_labels(labels, fm.stride, fm.data.shape[:2]).ravel()
        return LinearModel().fit(x, y)
    if model is None:
        model = SharedMixtureModel(entry.mixture())
    flat = np.flatnonzero(labels)
    return model.fit(mixture_rows(entry, flat), labels.ravel()[flat])


@dataclass
class Extra:
    """Optional soft evidence of a default-preset cut (see :meth:`SegmentationSession.segment`).

    ``unary`` is kept as one float32 ``(rows, cols)`` channel, object minus background:
    a two-label cut only sees the difference of the two classes' costs (half the
    memory of both channels; on a 64 MP image 256 MB instead of 512 MB).
    """

    unary: Optional[np.ndarray] = None
    fit_labels: Optional[np.ndarray] = None
    star_weight: Optional[float] = None  # None: hard star convexity

    @classmethod
    def check(cls, unary, fit_labels, shape, classes, star_weight=None) -> "Extra":
        if unary is not None:
            unary = np.asarray(unary)
            if unary.shape not in ((*shape, 2), tuple(shape)) or classes.size != 2:
                raise ValueError(f"unary must have shape {(*shape, 2)} (or {tuple(shape)}: object minus "
                                 f"background) for a two-label cut, got {unary.shape}")
            if unary.ndim == len(shape) + 1:
                unary = np.subtract(unary[..., 0], unary[..., 1], dtype=np.float32)
            else:
                unary = np.asarray(unary, np.float32)
            if not np.all(np.isfinite(unary)):
                raise ValueError("unary costs must be finite")
        if fit_labels is not None:
            fit_labels = check_scribbles(fit_labels, shape, name="fit_labels")
        return cls(unary, fit_labels, check_positive(star_weight, "star_weight"))

    def first_fit(self, seeds: np.ndarray) -> np.ndarray:
        return seeds if self.fit_labels is None else self.fit_labels

    def costs(self, costs: np.ndarray) -> np.ndarray:
        """Appearance costs plus the extra unary, shifted to >= 0 and capped at COST_CAP."""
        if self.unary is None:
            return costs
        total = costs.astype(np.result_type(costs.dtype, np.float32))  # a copy, as costs + unary was
        total[..., 0] += np.maximum(self.unary, 0)
        total[..., 1] += np.maximum(-self.unary, 0)
        total -= total.min(axis=-1, keepdims=True)
        return np.minimum(total, COST_CAP, out=total)


NO_EXTRA = Extra()


#: a region the cut without a star finds apart from the object strokes becomes a star centre of its own
#: when the starred cut already labels at least this share of it object
DETACHED_MIN_SHARE = 0.5
#: ... and when it holds at least this share of the level's pixels
DETACHED_MIN_AREA = 0.001
#: pixels taken off the object core both cuts agree on (:func:`agreed_core`) before it becomes a star centre;
#: GrabCut scribble sets: 1 → 0.865 / 0.933, 2 → 0.866 / 0.933, 5 → 0.860 / 0.929 (none: 0.845 / 0.916)
CORE_EROSION = 2


def detached_objects(starred: np.ndarray, free: np.ndarray, object_seeds: np.ndarray) -> Optional[np.ndarray]:
    """Object regions apart from every object stroke that the starred cut reached through a wedge.

    Star convexity makes every object pixel see a stroke along a straight ray.
    A second object the user did not stroke (the next roof) can then only be
    labelled object together with a wedge of background between it and the
    nearest stroke. ``free``, the same energy cut without the star, shows such
    objects as regions of their own. When the strokes mark several of its
    regions (several separate objects: roofs, cells), the unstroked regions the
    starred cut took anyway (:data:`DETACHED_MIN_SHARE` of them, and
    :data:`DETACHED_MIN_AREA` of the image at least) are returned, to be star
    centres of their own: the object keeps them and loses the wedge. Regions the
    starred cut refused stay refused; strokes on one object only return ``None``
    (a look-alike elsewhere in a photograph is clutter, which the star keeps out).

    Parameters
    ----------
    starred, free : numpy.ndarray of bool
        Object masks of the cut with and without the star.
    object_seeds : numpy.ndarray of bool
        The object strokes.

    Returns
    -------
    numpy.ndarray of bool or None
        The regions, or ``None`` when there are none.

    Examples
    --------
    >>> free = np.zeros((1, 12), bool); free[0, [0, 1, 5, 6, 7, 10, 11]] = True
    >>> starred = free.copy(); starred[0, 2:5] = True   # the wedge 2-4 to the unstroked 5-7
    >>> seeds = np.zeros((1, 12), bool); seeds[0, [0, 11]] = True
    >>> detached_objects(starred, free, seeds).nonzero()[1].tolist()
    [5, 6, 7]
    >>> seeds[0, 11] = False  # one stroked object
    >>> detached_objects(starred, free, seeds) is None
    True
    """
    from scipy import ndimage as ndi

    labels, n = ndi.label(free, structure=np.ones((3,) * free.ndim, bool))
    if n == 0:
        return None
    size = np.bincount(labels.ravel(), minlength=n + 1)
    inside = np.bincount(labels.ravel(), weights=starred.ravel(), minlength=n + 1)
    keep = (inside >= DETACHED_MIN_SHARE * size) & (size >= DETACHED_MIN_AREA * free.size)
    keep[0] = False
    stroked = np.unique(labels[object_seeds])
    if np.count_nonzero(stroked) < 2:  # the strokes mark one object: a look-alike elsewhere is clutter
        return None
    keep[stroked] = False
    if not keep.any():
        return None
    return keep[labels]


def cut_default(entry: ImageFeatures, seeds, classes, lam, sigma, iterations, cancel,
                extra: Extra = NO_EXTRA, progress=None) -> np.ndarray:
    """Learned appearance + contrast edges + star convexity, refitted GrabCut-style."""
    key, nlinks = entry.nlinks_for(lam, sigma)
    hard = seed_index(seeds, classes)
    model = fit_appearance(entry, extra.first_fit(seeds))
    binary = classes.size == 2
    if binary:
        cut = entry.incremental_cut(key, nlinks, hard == 0, star_weight=extra.star_weight)
        big = cut.infinity
    index = None
    for it in range(iterations + 1):
        check(cancel)
        report(progress, it, iterations + 1, f"graph cut (round {it + 1} of {iterations + 1})")
        if index is not None:
            if binary:
                model = refit(entry, model, seeds, classes, index == 0)
            else:
                model = fit_appearance(entry, np.where(seeds > 0, seeds, classes[index]), model)
        costs = extra.costs(costs_for(entry, model))
        if binary:
            fg = cut.solve(*graphcut.tlinks(costs[..., 0], costs[..., 1], hard == 0, hard == 1, big))
            if it == iterations and extra.star_weight is None:
                fg, _ = recut_found_centres(fg, costs[..., 0], costs[..., 1], nlinks, hard == 0, hard == 1)
            index = np.where(fg, 0, 1).astype(np.int32)
        else:
            index = maxflow.solve_multilabel(costs, float(np.mean([w.mean() for w in nlinks.weights[:2]])), hard)
    return index


def agreed_core(starred: np.ndarray, free: np.ndarray, object_seeds: np.ndarray,
                erosion: int = CORE_EROSION) -> np.ndarray:
    """The object both cuts agree on, in the regions holding an object stroke, shrunk by ``erosion`` pixels.

    Star convexity makes every object pixel see an object stroke along a straight
    ray. Where the strokes do not reach into a part of the object (a starfish's
    arm, the far side of a body), that ray crosses background: the cut either
    drops the part along a straight edge, or takes in a straight-edged wedge of
    background with it. ``free``, the same energy cut without the star, follows
    the image there. Where it agrees with the starred cut, the object is sure
    enough to be a star centre itself: rays then end at its edge, and the star
    only keeps out what grows from the object through a neck (clutter, leaks).
    Only the regions that hold an object stroke count (a look-alike elsewhere is
    not the object), and the shrinking keeps the star at work along the
    object's outline.

    Parameters
    ----------
    starred, free : numpy.ndarray of bool
        Object masks of the cut with and without the star.
    object_seeds : numpy.ndarray of bool
        The object strokes.
    erosion : int, optional
        Pixels taken off the agreed region (:data:`CORE_EROSION`).

    Returns
    -------
    numpy.ndarray of bool
        The core (empty where the cuts share no stroked region).

    Examples
    --------
    >>> starred = np.zeros((5, 14), bool); starred[1:4, 1:12] = True   # a wedge 7-10 to the far end
    >>> free = starred.copy(); free[:, 7:11] = False; free[1:4, 12] = True
    >>> seeds = np.zeros((5, 14), bool); seeds[2, 2] = True
    >>> agreed_core(starred, free, seeds, erosion=0)[2].nonzero()[0].tolist()  # not 11: no stroke in its region
    [1, 2, 3, 4, 5, 6]
    >>> agreed_core(starred, free, seeds)[2].nonzero()[0].tolist()  # shrunk by 2: the edge stays starred
    []
    >>> agreed_core(starred, free, seeds, erosion=1)[2].nonzero()[0].tolist()
    [2, 3, 4, 5]
    """
    from scipy import ndimage as ndi

    both = starred & free
    connectivity = np.ones((3,) * both.ndim, bool)
    labels, n = ndi.label(both, structure=connectivity)
    keep = np.zeros(n + 1, bool)
    keep[np.unique(labels[object_seeds])] = True
    keep[0] = False
    core = keep[labels]
    return ndi.binary_erosion(core, iterations=erosion) if erosion > 0 else core


def recut_found_centres(fg, cost_fg, cost_bg, nlinks, hard_fg, hard_bg):
    """The starred cut ``fg`` again, star centres added where the cut without the star confirms it.

    The energy is cut once more without the star; the :func:`agreed_core` and the
    :func:`detached_objects` it shows become star centres beside the object
    strokes, and the starred cut is solved again. Two more max-flows.

    Returns
    -------
    fg : numpy.ndarray of bool
        The new cut (``fg`` itself when nothing was found).
    found : numpy.ndarray of bool or None
        The centres found (the finer levels of a pyramid add them to their star centres).
    """
    free = maxflow.solve_binary(cost_fg, cost_bg, nlinks, hard_fg, hard_bg)
    found = agreed_core(fg, free, hard_fg)
    detached = detached_objects(fg, free, hard_fg)
    if detached is not None:
        found |= detached
    if not (found & ~hard_fg).any():
        return fg, None
    star = graphcut.star_edges(hard_fg | found)
    return maxflow.solve_binary(cost_fg, cost_bg, nlinks, hard_fg, hard_bg, star=star), found


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


def refit(entry: ImageFeatures, model, seeds, classes, fg: np.ndarray):
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
    limit = MAX_SAMPLES_PER_CLASS
    flat = np.concatenate([
        _sample_class(rng, fg, True, n_fg, limit),
        _sample_class(rng, fg, False, fg.size - n_fg, limit),
    ])
    labels = np.where(fg.ravel()[flat], classes[0], classes[1])
    return model.fit(mixture_rows(entry, flat), labels)


def prepare(entry: ImageFeatures, lam: float, sigma, progress=None, cancel=None) -> None:
    """Build the colour mixture and the n-links a single-level cut with ``lam`` and ``sigma`` reads."""
    report(progress, 0, 2, "colour mixture")
    if entry.stride == 1:
        entry.mixture()
    check(cancel)
    report(progress, 1, 2, "edge weights")
    entry.nlinks_for(lam, sigma)
    report(progress, 2, 2, "ready")
