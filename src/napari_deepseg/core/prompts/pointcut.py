r"""Training-free point prompts: clicks become seeds of a graph cut on backbone features.

Click method ``points-graphcut``. The energy is the project's two-label cut

.. math::

    E(x) = \alpha \sum_p D_p(x_p) + \sum_{(p,q)} w_{pq}\,[x_p \ne x_q]

with contrast-sensitive 8-neighbour n-links on L*a*b* colour (and on the deep
features' grid for deep backbones), a disk of hard seeds around every click,
optionally star-convexity edges around the positive clicks, and an appearance
term from the similarity to the clicked patches:

.. math::

    d_c(p) = \min_{k \in P_c} \lVert f_p - f_k \rVert^2, \quad
    P(\text{object} \mid p) = \frac{1}{1 + \exp\big((d_1(p) - d_0(p)) / h\big)},
    \quad D_p(c) = -\log P(c \mid p)

where :math:`P_1` are the features at the positive clicks, :math:`P_0` those
at the negative clicks and along the image border, and :math:`h`
the median of :math:`\min(d_0, d_1)` over the image. Features are z-scored per
channel; deep ones (stride > 1, e.g. CLIP tokens) are also L2-normalised, so
the distance is a cosine distance.

The expensive step (features, n-links, distances to the border) is done once
per image in ``set_image``; a click adds its prototypes' distances (cached per
click) and solves one max-flow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..cut import graphcut, maxflow
from ..cut.pyramid import MULTILEVEL_MIN_PIXELS
from .base import Click, ClickMethod, check_clicks, paint_disk, register_click_method
from ..features import FeatureMap, get_extractor
from ..features.base import upsample_grid
from ..utils.progress import CancelToken, ProgressCallback, check, release_memory, report
from ..utils.validation import as_float_image

#: smoothness weight λ of the n-links (of this engine; the scribble cut's is ``session.DEFAULT_LAMBDA``)
POINTS_LAMBDA = 10.0
#: weight α of the appearance term
DEFAULT_ALPHA = 1.0
#: radius in pixels of the hard seed disk around a click
SEED_RADIUS = 5
#: radius in pixels of the patch whose features become a click's prototypes (full-resolution features)
PATCH_RADIUS = 7
#: prototypes kept per click (a random subsample of its patch)
PROTOTYPES_PER_CLICK = 32
#: largest unary cost of the click-similarity term (keeps integer max-flow graphs bounded; the scribble cut's
#: appearance cap is ``appearance.COST_CAP``)
POINTS_COST_CAP = 12.0
#: half-width in pixels of the full-resolution band around the coarse boundary (the scribble cut's is
#: ``bands.BAND_RADIUS``)
POINTS_BAND_RADIUS = 3


@dataclass
class PointImage:
    """What ``set_image`` computes for one image.

    Attributes
    ----------
    key : str
        Content hash of the image plus the backbone and its parameters.
    shape : tuple
        ``(rows, cols)``.
    features : FeatureMap
        Normalised features at their native stride (see :func:`normalise_features`).
    nlinks : graphcut.NLinks
        Pairwise weights.
    border : numpy.ndarray
        float32 squared distance of every grid cell to the nearest border cell
        (the background term before the first negative click).
    distances : dict
        Per click, the squared distances of every grid cell to its prototypes.
    coarse_nlinks : graphcut.NLinks or None
        Half-resolution colour n-links of the coarse-to-fine cut (large images).
    """

    key: str
    shape: tuple
    features: FeatureMap
    nlinks: graphcut.NLinks
    border: np.ndarray
    distances: dict = field(default_factory=dict)
    coarse_nlinks: graphcut.NLinks | None = None


def normalise_features(fm: FeatureMap) -> FeatureMap:
    """Z-score every channel; deep features (stride > 1) are also L2-normalised per cell.

    Examples
    --------
    >>> fm = FeatureMap(np.random.default_rng(0).normal(size=(4, 4, 3)).astype(np.float32), 8, (32, 32))
    >>> bool(np.allclose(np.linalg.norm(normalise_features(fm).data, axis=-1), 1))
    True
    """
    data = np.array(fm.data, np.float32)
    flat = data.reshape(-1, data.shape[-1])
    flat -= flat.mean(0)
    flat /= np.maximum(flat.std(0), 1e-6)
    if fm.stride > 1:
        flat /= np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-6)
    return FeatureMap(data, fm.stride, fm.image_shape)


def feature_at(fm: FeatureMap, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Features at pixel positions, bilinearly interpolated between grid cells.

    Returns
    -------
    numpy.ndarray
        float32 ``(n, channels)``.
    """
    s = fm.stride
    if s == 1:
        return fm.data[rows, cols]
    gr, gc = fm.data.shape[:2]
    y = np.clip((np.asarray(rows) + 0.5) / s - 0.5, 0, gr - 1)
    x = np.clip((np.asarray(cols) + 0.5) / s - 0.5, 0, gc - 1)
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    y1, x1 = np.minimum(y0 + 1, gr - 1), np.minimum(x0 + 1, gc - 1)
    wy, wx = (y - y0)[:, None], (x - x0)[:, None]
    d = fm.data
    return ((1 - wy) * ((1 - wx) * d[y0, x0] + wx * d[y0, x1]) + wy * ((1 - wx) * d[y1, x0] + wx * d[y1, x1])
            ).astype(np.float32)


def click_prototypes(fm: FeatureMap, clicks: Sequence[Click], positive: bool, radius: int = PATCH_RADIUS,
                     per_click: int = PROTOTYPES_PER_CLICK, seed: int = 0) -> np.ndarray:
    """Features of the patches around the clicks of one sign, ``(n, channels)`` (empty if none).

    For full-resolution features the patch is a disk of ``radius`` pixels
    (subsampled to ``per_click`` pixels); on a coarse grid it is the
    interpolated feature at the click.
    """
    rows, cols = fm.image_shape
    rng = np.random.default_rng(seed)
    out = []
    for c in clicks:
        if c.positive != positive:
            continue
        if fm.stride > 1:
            out.append(feature_at(fm, np.array([c.row]), np.array([c.col])))
            continue
        yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
        keep = yy**2 + xx**2 <= radius * radius
        r = np.clip(c.row + yy[keep], 0, rows - 1)
        q = np.clip(c.col + xx[keep], 0, cols - 1)
        if r.size > per_click:
            pick = rng.choice(r.size, per_click, replace=False)
            r, q = r[pick], q[pick]
        out.append(fm.data[r, q])
    return np.concatenate(out) if out else np.zeros((0, fm.channels), np.float32)


def nearest_sqdist(data: np.ndarray, prototypes: np.ndarray, block: int = 1 << 15) -> np.ndarray:
    """Squared distance of every row of ``data`` ``(n, c)`` to its nearest prototype ``(k, c)``.

    Examples
    --------
    >>> nearest_sqdist(np.array([[0., 0.], [3., 4.]]), np.array([[0., 0.]])).tolist()
    [0.0, 25.0]
    """
    data = np.asarray(data, np.float32)
    protos = np.asarray(prototypes, np.float32)
    pn = (protos * protos).sum(1)
    out = np.empty(data.shape[0], np.float32)
    for i in range(0, data.shape[0], block):
        x = data[i : i + block]
        d = (x * x).sum(1)[:, None] + pn[None, :] - 2.0 * (x @ protos.T)
        out[i : i + block] = np.maximum(d.min(1), 0.0)
    return out


def click_sqdist(fm: FeatureMap, click: Click, seed: int = 0) -> np.ndarray:
    """Squared distance of every grid cell to the nearest prototype of one click, flat float32."""
    protos = click_prototypes(fm, [click], click.positive, seed=seed)
    from ..utils.threads import single_threaded_blas

    with single_threaded_blas():
        return nearest_sqdist(fm.data.reshape(-1, fm.channels), protos)


def appearance_costs(fm: FeatureMap, d1: np.ndarray, d0: np.ndarray) -> tuple:
    """Costs ``(object, background)`` at full resolution from the nearest-prototype distances.

    ``d1`` and ``d0`` are flat per grid cell (see :func:`click_sqdist`); the costs
    are computed on the native grid and bilinearly upsampled for deep features.

    Examples
    --------
    >>> fm = FeatureMap(np.zeros((1, 2, 1), np.float32), 1, (1, 2))
    >>> fg, bg = appearance_costs(fm, np.array([0., 4.]), np.array([4., 0.]))
    >>> bool(fg[0, 0] < bg[0, 0]), bool(fg[0, 1] > bg[0, 1])
    (True, True)
    """
    rows, cols = fm.image_shape
    near = np.minimum(d0, d1)
    h = float(np.median(near)) or float(np.mean(near)) or 1.0
    z = np.clip((d1 - d0) / np.float32(h), -POINTS_COST_CAP, POINTS_COST_CAP)
    cost_fg = np.logaddexp(0.0, z).astype(np.float32)  # -log sigmoid(-z)
    cost_bg = np.logaddexp(0.0, -z).astype(np.float32)
    both = np.stack([cost_fg, cost_bg], -1).reshape(fm.data.shape[0], fm.data.shape[1], 2)
    if fm.stride > 1:
        both = upsample_grid(both, fm.stride, 0, rows, cols)
    return np.minimum(both[..., 0], POINTS_COST_CAP), np.minimum(both[..., 1], POINTS_COST_CAP)


def disk_mask(shape, clicks: Sequence[Click], positive: bool, radius: int) -> np.ndarray:
    """Boolean mask of the disks of ``radius`` around the clicks of one sign (:func:`~.base.paint_disk`'s disks).

    Examples
    --------
    >>> int(disk_mask((5, 5), [Click(2, 2, True)], True, 1).sum())
    5
    """
    out = np.zeros(shape, bool)
    for c in clicks:
        if c.positive == positive:
            paint_disk(out, c.row, c.col, radius, True)
    return out


def colour_nlinks(image: np.ndarray, fm: FeatureMap, lam: float) -> graphcut.NLinks:
    """8-neighbour contrast weights on L*a*b* colour, plus the deep features' grid changes."""
    if image.shape[-1] == 3:
        from skimage.color import rgb2lab

        colour = rgb2lab(image).astype(np.float32)
    else:
        colour = image * np.float32(100.0)
    offsets = graphcut.OFFSETS_8
    sq = [graphcut.neighbour_sqdiff(colour, off) for off in offsets]
    if fm.stride > 1:
        feats = graphcut.grid_sqdiffs(fm, offsets)
        mc = float(np.mean([c.mean() for c in sq])) or 1.0
        mf = float(np.mean([f.mean() for f in feats])) or 1.0
        sq = [c / mc + f / mf for c, f in zip(sq, feats)]
    return graphcut.contrast_nlinks(sq, offsets, image.shape[:2], lam, statistic="mean")


def _border_features(fm: FeatureMap, n: int = 64) -> np.ndarray:
    """Features along the image border, ``n`` at most (evenly spaced)."""
    rows, cols = fm.image_shape
    perimeter = np.concatenate([
        np.stack([np.zeros(cols, int), np.arange(cols)], 1), np.stack([np.full(cols, rows - 1), np.arange(cols)], 1),
        np.stack([np.arange(rows), np.zeros(rows, int)], 1), np.stack([np.arange(rows), np.full(rows, cols - 1)], 1),
    ])
    pick = perimeter[np.linspace(0, len(perimeter) - 1, min(n, len(perimeter))).astype(int)]
    return feature_at(fm, pick[:, 0], pick[:, 1])


def resolve_features(features: str, weights=None) -> str:
    """``auto`` → ``clip`` when its weights are on disk (or given), else the weight-free ``classic``."""
    if features != "auto":
        return features
    from ..features.clip import DEFAULT_CLIP, clip_available

    return "clip" if clip_available(weights or DEFAULT_CLIP) else "classic"


@register_click_method("points-graphcut")
class PointGraphCut(ClickMethod):
    """Click method ``points-graphcut``: clicks as seeds of a graph cut with click-similarity unaries.

    Parameters
    ----------
    features : str
        A registered backbone (``clip``, ``classic``, ``rgb``, ``resnet50``) or
        ``auto``: CLIP when its weights are available without the network,
        ``classic`` otherwise.
    weights : str or path-like, optional
        Backbone weights: a CLIP model id or folder, a ResNet-50 file.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps`` (pretrained backbones).
    lam : float
        Smoothness weight λ.
    alpha : float
        Weight of the appearance term.
    radius : int
        Hard seed disk radius around a click, in pixels.
    star : bool
        Star-convexity around the positive clicks (connected objects, no holes at the clicks).
    multilevel : bool, optional
        Cut coarse-to-fine (half resolution, then a full-resolution band around
        the boundary); ``None`` does so from :data:`MULTILEVEL_MIN_PIXELS` pixels on.
    **backbone_params
        Other backbone parameters (``resolution=``, ``layers=``, ...).
    """

    def __init__(self, features: str = "auto", weights=None, device: str = "auto", lam: float = POINTS_LAMBDA,
                 alpha: float = DEFAULT_ALPHA, radius: int = SEED_RADIUS, star: bool = True, multilevel: bool | None = None,
                 **backbone_params):
        self.features = resolve_features(features, weights)
        params = dict(backbone_params)
        probe = get_extractor(self.features)
        if probe.needs_weights:
            params.update(device=device)
            if weights is not None:
                params["weights"] = weights
        elif weights is not None:
            raise ValueError(f"weights are only used by pretrained backbones, not by '{self.features}'")
        self.extractor = get_extractor(self.features, **params)
        if not (0 < float(lam) <= 1e6) or not (0 < float(alpha) <= 1e6):
            raise ValueError(f"lam and alpha must be in (0, 1e6], got lam={lam}, alpha={alpha}")
        if int(radius) < 0:
            raise ValueError(f"radius must be >= 0 pixels, got {radius}")
        self.lam, self.alpha, self.radius, self.star = float(lam), float(alpha), int(radius), bool(star)
        self.multilevel = multilevel
        self._image: PointImage | None = None

    def set_image(self, image, progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None) -> None:
        arr = np.asarray(image)
        norm = as_float_image(arr)
        h = hashlib.blake2b(digest_size=16)
        h.update(str((arr.shape, arr.dtype.str, self.features, sorted(self.extractor.params().items()),
                      self.lam, self.multilevel)).encode())
        h.update(memoryview(np.ascontiguousarray(arr)).cast("B"))
        key = h.hexdigest()
        if self._image is not None and self._image.key == key:
            return
        self._image = None
        check(cancel)
        fm = normalise_features(self.extractor.extract(norm, progress=progress, cancel=cancel))
        release_memory()
        check(cancel)
        report(progress, 0, 1, "n-links")
        nlinks = colour_nlinks(norm, fm, self.lam)
        from ..utils.threads import single_threaded_blas

        with single_threaded_blas():
            border = nearest_sqdist(fm.data.reshape(-1, fm.channels), _border_features(fm))
        coarse = None
        if self._multilevel(norm.shape[:2]):
            from ..cut import blocks

            small = blocks.block_reduce(norm, "mean")
            coarse = colour_nlinks(small, FeatureMap(small, 1, small.shape[:2]), blocks.FACTOR * self.lam)
        self._image = PointImage(key, norm.shape[:2], fm, nlinks, border, coarse_nlinks=coarse)
        report(progress, 1, 1, "n-links")

    def reset_image(self) -> None:
        """Forget the current image."""
        self._image = None

    def predict(self, clicks: Sequence[Click], cancel: CancelToken | None = None) -> np.ndarray:
        if self._image is None:
            raise RuntimeError("no image set: call set_image(image) before predict()")
        entry = self._image
        clicks = check_clicks(clicks, entry.shape)
        fm = entry.features
        d1 = self._nearest(entry, [c for c in clicks if c.positive])
        negative = [c for c in clicks if not c.positive]
        d0 = entry.border if not negative else np.minimum(entry.border, self._nearest(entry, negative))
        cost_fg, cost_bg = appearance_costs(fm, d1, d0)
        check(cancel)
        hard_fg = disk_mask(entry.shape, clicks, True, self.radius)
        hard_bg = disk_mask(entry.shape, clicks, False, self.radius) & ~hard_fg
        cost_fg *= np.float32(self.alpha)
        cost_bg *= np.float32(self.alpha)
        if entry.coarse_nlinks is not None:
            return self._solve_multilevel(entry, cost_fg, cost_bg, hard_fg, hard_bg)
        cut = self._cut(entry, clicks, hard_fg)
        src, snk = graphcut.tlinks(cost_fg, cost_bg, hard_fg, hard_bg, cut.infinity)
        return np.asarray(cut.solve(src, snk), bool)

    def _multilevel(self, shape) -> bool:
        rows, cols = shape
        auto = rows * cols >= MULTILEVEL_MIN_PIXELS and min(rows, cols) >= 8
        return auto if self.multilevel is None else bool(self.multilevel) and min(rows, cols) >= 8

    def _solve_multilevel(self, entry: PointImage, cost_fg, cost_bg, hard_fg, hard_bg) -> np.ndarray:
        """Cut at half resolution, then re-solve a band around its boundary at full resolution."""
        from ..cut import bands, blocks

        hard = np.full(entry.shape, -1, np.int32)
        hard[hard_bg] = 1
        hard[hard_fg] = 0
        c_hard = blocks.coarse_hard(hard)
        area = blocks.FACTOR**2
        c_fg, c_bg = c_hard == 0, c_hard == 1
        star = graphcut.star_edges(c_fg) if self.star else None
        cut = maxflow.IncrementalCut(entry.coarse_nlinks, star, max_tlink=area * self.alpha * POINTS_COST_CAP)
        src, snk = graphcut.tlinks(blocks.block_reduce(cost_fg, "sum"), blocks.block_reduce(cost_bg, "sum"),
                                   c_fg, c_bg, cut.infinity)
        fine = bands.BandProblem(lambda fg: blocks.upsample_labels(fg, entry.shape), (cost_fg, cost_bg),
                                 entry.nlinks, hard_fg, hard_bg, graphcut.star_edges(hard_fg) if self.star else None,
                                 radius=POINTS_BAND_RADIUS, rounds=1)  # one band, not grown
        return np.asarray(bands.refine_to_finest(np.asarray(cut.solve(src, snk), bool), [fine]), bool)

    @staticmethod
    def _nearest(entry: PointImage, clicks) -> np.ndarray:
        """Distance to the nearest prototype of any of ``clicks`` (per-click distances cached)."""
        out = None
        for c in clicks:
            if c not in entry.distances:
                entry.distances[c] = click_sqdist(entry.features, c)
            d = entry.distances[c]
            out = d.copy() if out is None else np.minimum(out, d, out=out)
        return out

    def _cut(self, entry: PointImage, clicks, hard_fg) -> maxflow.IncrementalCut:
        """A new graph (n-links cached, star edges of the positive clicks) for this solve.

        Every click changes the appearance term of most pixels, so resuming the
        previous max-flow (``reuse_trees``) is slower than a fresh one here.
        """
        star = graphcut.star_edges(hard_fg) if self.star else None
        return maxflow.IncrementalCut(entry.nlinks, star, max_tlink=self.alpha * POINTS_COST_CAP)
