r"""Graph-cut energies (n-links, t-links) and their solvers, on PyMaxflow.

The energy of a labelling :math:`x` is

.. math::

    E(x) = \sum_p D_p(x_p) + \sum_{(p,q) \in \mathcal N} w_{pq}\,[x_p \ne x_q],
    \qquad w_{pq} = \frac{\lambda}{\lVert p - q \rVert}
                   \exp\!\left(-\frac{d_{pq}^2}{\sigma^2}\right)

where :math:`D_p` are the t-links (unary costs from an appearance model, with
hard constraints on the scribbled pixels) and :math:`d_{pq}` the difference of
the features of neighbouring pixels. Two classes are solved exactly by one
max-flow; more classes by alpha-expansion (:mod:`maxflow.fastmin`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

OFFSETS_4 = ((0, 1), (1, 0))
OFFSETS_8 = OFFSETS_4 + ((1, 1), (1, -1))
PRESETS = ("default", "seed")
#: images up to this many pixels keep their flat edge arrays between cuts
CACHE_EDGES_MAX_PIXELS = 2_000_000


def pair_slices(shape, offset):
    """Slices selecting the pixels ``p`` and their neighbours ``p + offset``.

    Examples
    --------
    >>> a, b = pair_slices((3, 4), (1, -1))
    >>> np.zeros((3, 4))[a].shape
    (2, 3)
    """
    src, dst = [], []
    for n, d in zip(shape, offset):
        src.append(slice(max(0, -d), n - max(0, d)))
        dst.append(slice(max(0, d), n - max(0, -d)))
    return tuple(src), tuple(dst)


def neighbour_sqdiff(array: np.ndarray, offset) -> np.ndarray:
    """Squared difference ``||a[p] - a[p + offset]||^2`` over the valid pairs.

    Parameters
    ----------
    array : numpy.ndarray
        ``(rows, cols)`` or ``(rows, cols, channels)``.
    offset : tuple of int
        ``(drow, dcol)``.

    Returns
    -------
    numpy.ndarray
        float32 array over the pixels ``p`` whose neighbour exists (shape of
        ``array[pair_slices(...)[0]]`` without the channel axis).

    Examples
    --------
    >>> neighbour_sqdiff(np.array([[0., 1., 3.]]), (0, 1)).tolist()
    [[1.0, 4.0]]
    """
    a, b = pair_slices(array.shape[:2], offset)
    if array.ndim == 2:
        diff = (array[a] - array[b]).astype(np.float32, copy=False)
        return diff * diff
    out = None
    for c in range(array.shape[-1]):  # channel by channel: no (rows, cols, channels) temporaries
        diff = (array[a][..., c] - array[b][..., c]).astype(np.float32, copy=False)
        diff *= diff
        out = diff if out is None else np.add(out, diff, out=out)
    return out


def feature_sqdiffs(feature_map, offsets) -> list:
    """:func:`neighbour_sqdiff` of full-resolution features, computed in strips.

    ``feature_map`` is a :class:`~napari_deepseg.core.features.FeatureMap`; its
    full-resolution features are never held in memory all at once.
    """
    rows, cols = feature_map.image_shape
    out = [np.zeros((rows - abs(dr), cols - abs(dc)), np.float32) for dr, dc in offsets]
    for start, stop, block in feature_map.iter_full_res(overlap=1):
        lo = stop - block.shape[0]  # the strip repeats the row above it, so pairs across strips are seen
        for k, off in enumerate(offsets):
            d = neighbour_sqdiff(block, off)  # pixels p in image rows lo, lo + 1, ...
            out[k][lo : lo + d.shape[0]] = d
    return out


def grid_sqdiffs(feature_map, offsets) -> list:
    """Per-pixel squared feature change towards each neighbour, from the native grid.

    For features at stride ``s`` (bilinearly interpolated between cells), the
    change between neighbouring pixels is about ``1/s`` of the change between
    neighbouring cells. This computes the cells' squared differences, divides
    them by ``s**2`` and upsamples that one channel per direction, instead of
    differencing full-resolution features channel by channel: the same edges at
    a fraction of the time and memory. Stride 1 falls back to the exact
    :func:`feature_sqdiffs`.

    Returns
    -------
    list of numpy.ndarray
        One float32 array per offset, shaped like :func:`neighbour_sqdiff`'s output.
    """
    from ..features.base import upsample_grid

    s = feature_map.stride
    if s == 1:
        return feature_sqdiffs(feature_map, offsets)
    rows, cols = feature_map.image_shape
    grid = feature_map.data
    out = []
    for off in offsets:
        d = neighbour_sqdiff(grid, off) / np.float32(s * s)
        a, _ = pair_slices(grid.shape[:2], off)
        full = np.zeros(grid.shape[:2], np.float32)
        full[a] = d
        up = upsample_grid(full[..., None], s, 0, rows, cols)[..., 0]
        # the difference of cells k and k + off belongs between them, half a cell
        # (s // 2 pixels) past cell k's centre, where it was upsampled from
        up = _shift_edge(up, (s // 2) * off[0], (s // 2) * off[1])
        src, _ = pair_slices((rows, cols), off)
        out.append(np.ascontiguousarray(up[src]))
    return out


def _shift_edge(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``a`` moved by ``(dy, dx)`` pixels, the uncovered border repeating the edge.

    Examples
    --------
    >>> _shift_edge(np.array([[1., 2., 3.]]), 0, 1).tolist()
    [[1.0, 1.0, 2.0]]
    """
    rows, cols = a.shape
    padded = np.pad(a, ((abs(dy), abs(dy)), (abs(dx), abs(dx))), mode="edge")
    y0, x0 = abs(dy) - dy, abs(dx) - dx
    return padded[y0 : y0 + rows, x0 : x0 + cols]


def auto_sigma(sqdiffs, statistic: str = "median") -> float:
    """Contrast scale σ estimated from the squared neighbour differences.

    ``statistic="median"`` is the original notebook's ``sqrt(median(d²))``;
    ``"mean"`` is GrabCut's ``sqrt(2 mean(d²))`` (Rother et al. 2004), which
    keeps more smoothing inside textured regions.

    Examples
    --------
    >>> auto_sigma([np.array([1., 4., 9.])])
    2.0
    >>> round(auto_sigma([np.array([1., 4., 7.])], "mean"), 3)
    2.828
    """
    flat = np.concatenate([np.ravel(s) for s in sqdiffs])
    if not flat.size:
        return 1.0
    val = float(np.median(flat)) if statistic == "median" else 2.0 * float(flat.mean(dtype=np.float64))
    return float(np.sqrt(val)) if val > 0 else 1.0


@dataclass
class NLinks:
    """Edge weights of a grid graph, ready for :meth:`maxflow.GraphFloat.add_edges`.

    Attributes
    ----------
    shape : tuple
        ``(rows, cols)`` of the grid.
    offsets : tuple
        Neighbour offsets, one per edge direction.
    weights : list of numpy.ndarray
        ``weights[k][p]`` is the weight of the edge between ``p`` and ``p + offsets[k]``.
    lam, sigma : float
        The parameters used (``sigma`` after automatic estimation).
    """

    shape: tuple
    offsets: tuple
    weights: list
    lam: float
    sigma: float
    _flat: tuple = field(default=None, repr=False)

    def flat(self, cache: bool = True):
        """Concatenated ``(i, j, w)`` arrays of node indices and weights.

        With ``cache=True`` they are kept for the next call (fast re-solves of
        small images); large images rebuild them to save memory.
        """
        if self._flat is None:
            idx = np.arange(self.shape[0] * self.shape[1], dtype=np.int32).reshape(self.shape)
            ii, jj, ww = [], [], []
            for off, w in zip(self.offsets, self.weights):
                a, b = pair_slices(self.shape, off)
                ii.append(idx[a].ravel())
                jj.append(idx[b].ravel())
                ww.append(w.ravel())
            flat = (np.concatenate(ii), np.concatenate(jj), np.concatenate(ww).astype(np.float32))
            if not cache:
                return flat
            self._flat = flat
        return self._flat

    def max_node_weight(self) -> float:
        """An upper bound on the sum of the n-link weights at one pixel."""
        return float(sum(2.0 * (w.max() if w.size else 0.0) for w in self.weights))


def contrast_nlinks(sqdiffs, offsets, shape, lam: float, sigma=None, statistic: str = "median") -> NLinks:
    """Contrast-sensitive weights ``lam / |offset| * exp(-d^2 / sigma^2)``.

    Parameters
    ----------
    sqdiffs : list of numpy.ndarray
        Squared neighbour differences per offset (see :func:`neighbour_sqdiff`).
    offsets : tuple
        The offsets the differences belong to.
    shape : tuple
        ``(rows, cols)`` of the grid.
    lam : float
        Smoothness weight λ (> 0).
    sigma : float, optional
        Contrast scale; ``None`` estimates it with :func:`auto_sigma`.
    statistic : {"median", "mean"}
        How :func:`auto_sigma` estimates σ.

    Examples
    --------
    >>> d = [np.zeros((2, 1), np.float32), np.zeros((1, 2), np.float32)]
    >>> nl = contrast_nlinks(d, OFFSETS_4, (2, 2), lam=3.0, sigma=1.0)
    >>> float(nl.weights[0].max())
    3.0
    """
    sig = auto_sigma(sqdiffs, statistic) if sigma is None else float(sigma)
    inv = np.float32(1.0 / (sig * sig))
    weights = []
    for off, d in zip(offsets, sqdiffs):
        scale = np.float32(lam / np.hypot(*off))
        weights.append(np.exp(-d * inv) * scale)
    return NLinks(tuple(shape), tuple(offsets), weights, float(lam), sig)


def star_edges(centres: np.ndarray):
    """Directed edges that make the object star-convex around the pixels ``centres``.

    Every pixel ``p`` is linked to its 8-neighbour ``q`` one step towards the
    nearest centre pixel ``c(p)`` (Veksler 2008; Gulshan et al. 2010 with
    Euclidean stars). An edge ``p -> q`` of infinite weight forbids
    ``p = object, q = background``, so object pixels see their centre along an
    unbroken path: no detached blobs, no holes between a stroke and its object.

    Parameters
    ----------
    centres : numpy.ndarray of bool
        ``(rows, cols)``, True on the object strokes.

    Returns
    -------
    tuple of numpy.ndarray
        ``(p, q)`` flat int32 node indices.

    Examples
    --------
    >>> c = np.zeros((1, 4), bool); c[0, 0] = True
    >>> [a.tolist() for a in star_edges(c)]
    [[1, 2, 3], [0, 1, 2]]
    """
    from scipy import ndimage as ndi

    rows, cols = centres.shape
    if not centres.any():
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    near = ndi.distance_transform_edt(~centres, return_distances=False, return_indices=True).astype(np.int32)
    far = ~centres
    yy, xx = np.nonzero(far)  # the pixels that are not centres (int64 indices, one pass)
    yy, xx = yy.astype(np.int32), xx.astype(np.int32)
    vy = near[0][far] - yy
    vx = near[1][far] - xx
    del near
    span = np.maximum(np.abs(vy), np.abs(vx)).astype(np.float32)
    step_y = np.rint(vy / span).astype(np.int32)
    step_x = np.rint(vx / span).astype(np.int32)
    del vy, vx, span
    p = yy * np.int32(cols) + xx
    q = (yy + step_y) * np.int32(cols) + (xx + step_x)
    return p, q


def solve_binary(
    cost_fg: np.ndarray, cost_bg: np.ndarray, nlinks: NLinks, hard_fg=None, hard_bg=None, star=None
) -> np.ndarray:
    """Minimum cut of a two-label energy; ``True`` where the object (source side) wins.

    Parameters
    ----------
    cost_fg, cost_bg : numpy.ndarray
        ``(rows, cols)`` unary costs of labelling each pixel object / background.
    nlinks : NLinks
        Pairwise weights.
    hard_fg, hard_bg : numpy.ndarray of bool, optional
        Pixels forced to object / background (the scribbles).
    star : tuple of numpy.ndarray, optional
        ``(p, q)`` from :func:`star_edges`: object at ``p`` implies object at ``q``.

    Returns
    -------
    numpy.ndarray of bool
        ``(rows, cols)`` object mask.

    Examples
    --------
    >>> fg = np.array([[0., 0., 5., 5.]]); bg = fg[:, ::-1].copy()
    >>> nl = contrast_nlinks([np.zeros((1, 3), np.float32)], ((0, 1),), (1, 4), lam=1.0, sigma=1.0)
    >>> solve_binary(fg, bg, nl).tolist()
    [[True, True, False, False]]
    """
    big = 1e6
    if hard_fg is not None or hard_bg is not None:
        big = nlinks.max_node_weight() + float(max(np.max(cost_fg), np.max(cost_bg))) + 1.0
        if star is not None and star[0].size:
            big = 1e9  # a seed also decides its star "shadow": only an infinite t-link always holds
    return IncrementalCut(nlinks, star, integer=False).solve(*tlinks(cost_fg, cost_bg, hard_fg, hard_bg, big))


def solve_multilabel(costs: np.ndarray, lam: float, hard=None, max_cycles: int = 5) -> np.ndarray:
    """Alpha-expansion of a Potts energy with PyMaxflow's :func:`maxflow.fastmin.aexpansion_grid`.

    Parameters
    ----------
    costs : numpy.ndarray
        ``(rows, cols, n_labels)`` unary costs.
    lam : float
        Potts weight between 4-neighbours with different labels.
    hard : numpy.ndarray of int, optional
        ``(rows, cols)`` label index forced at each pixel, ``-1`` where free.
    max_cycles : int
        Expansion cycles at most.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` label indices into the last axis of ``costs``.

    Notes
    -----
    fastmin's pairwise term is a constant matrix, so this solver is not
    contrast-sensitive; the unaries carry the edges.
    """
    from maxflow import fastmin

    unary = np.asarray(costs, np.float64).copy()
    n = unary.shape[-1]
    if hard is not None:
        big = float(unary.max()) + 8.0 * lam + 1.0
        forced = hard >= 0
        unary[forced] = big
        rows, cols = np.nonzero(forced)
        unary[rows, cols, hard[forced]] = 0.0
    binary = lam * (1.0 - np.eye(n))
    labels = fastmin.aexpansion_grid(unary, binary, max_cycles=max_cycles)
    return np.asarray(labels, np.int32)


#: capacity of an implication edge in an integer graph (exceeds any possible flow, see integer_scale)
INT_INFINITY = 1 << 30


def integer_scale(n_nodes: int, max_node_capacity: float, largest: int = 100) -> int:
    """Fixed-point scale for an integer graph, or 0 where floats are needed.

    Integer max-flow is about twice as fast as float here. The total flow is at
    most ``n_nodes * max_node_capacity * scale``; the scale keeps it below
    :data:`INT_INFINITY`, so int32 capacities and flows never overflow. A scale
    below 4 would round capacities too coarsely: then 0 (use floats).

    Examples
    --------
    >>> integer_scale(154_401, 181.0)
    38
    >>> integer_scale(4_194_304, 101.0)
    0
    """
    scale = int(INT_INFINITY // max(1.0, n_nodes * float(max_node_capacity) + 1.0))
    scale = min(largest, scale)
    return scale if scale >= 4 else 0


class IncrementalCut:
    """A binary cut whose graph (n-links, star edges) is built once and re-solved.

    Later calls of :meth:`solve` change only the t-links: the difference is
    added to the residual graph, the changed nodes are marked, and max-flow
    resumes from the previous search trees (Kohli & Torr's dynamic graph cuts,
    ``maxflow(reuse_trees=True)``). The result equals a cut from scratch.

    Parameters
    ----------
    nlinks : NLinks
        Pairwise weights.
    star : tuple of numpy.ndarray, optional
        Directed implication edges from :func:`star_edges`.
    max_tlink : float
        The largest t-link capacity other than hard constraints (chooses the
        integer scale, see :func:`integer_scale`).
    integer : bool
        ``False`` always builds a float graph (for unbounded unary costs).
    star_weight : float, optional
        ``None`` (default): the star edges are hard implications. A number makes
        them soft: an object pixel whose step towards its centre is background
        costs ``star_weight`` instead of being forbidden, so a ray may break where
        the image argues for it strongly enough (a dark eye inside a face).

    Examples
    --------
    >>> nl = contrast_nlinks([np.zeros((1, 3), np.float32)], ((0, 1),), (1, 4), lam=1.0, sigma=1.0)
    >>> cut = IncrementalCut(nl)
    >>> cut.solve(np.array([[5., 5., 0., 0.]]), np.array([[0., 0., 5., 5.]])).tolist()
    [[True, True, False, False]]
    >>> cut.solve(np.array([[5., 0., 0., 0.]]), np.array([[0., 5., 5., 5.]])).tolist()
    [[True, False, False, False]]
    """

    def __init__(self, nlinks: NLinks, star=None, max_tlink: float = 20.0, integer: bool = True,
                 star_weight: Optional[float] = None):
        import maxflow

        self.shape = nlinks.shape
        n = self.shape[0] * self.shape[1]
        soft = star is not None and star[0].size > 0 and star_weight is not None
        # a pixel has one star edge out and at most 8 in
        node_max = nlinks.max_node_weight() + max_tlink + (9.0 * float(star_weight) if soft else 0.0)
        self.scale = integer_scale(n, node_max) if integer else 0
        self.graph = (maxflow.GraphInt if self.scale else maxflow.GraphFloat)(n, 4 * n)
        self.nodes = self.graph.add_grid_nodes(self.shape)
        i, j, w = nlinks.flat(cache=n <= CACHE_EDGES_MAX_PIXELS)
        w = self._caps(w)
        self.graph.add_edges(i, j, w, w)
        del i, j, w
        if star is not None and star[0].size:
            p, q = star
            if soft:  # a ray broken at a price
                cap = np.full(p.size, self._caps(np.float32(star_weight)), self._dtype)
            else:  # an implication, never worth cutting
                cap = np.full(p.size, INT_INFINITY if self.scale else 1e9, self._dtype)
            self.graph.add_edges(p, q, cap, np.zeros(p.size, self._dtype))
        self._src = None
        self._snk = None

    @property
    def infinity(self) -> float:
        """A t-link capacity (before scaling) that no cut ever pays: use it for hard seeds.

        With star edges a seed constrains its whole star "shadow", so a finite
        hard t-link could be outweighed. Labelling only the object seeds as object
        is always a finite cut, so the max-flow stays bounded (no overflow).
        """
        return INT_INFINITY / self.scale if self.scale else 1e9

    @property
    def _dtype(self):
        return np.int32 if self.scale else np.float32

    def _caps(self, values) -> np.ndarray:
        """Capacities in the graph's number type (scaled and rounded for an integer graph)."""
        if self.scale:
            return np.rint(np.asarray(values, np.float32) * np.float32(self.scale)).astype(np.int32)
        return np.asarray(values, np.float32)

    def solve(self, cap_source: np.ndarray, cap_sink: np.ndarray) -> np.ndarray:
        """Cut for t-links ``cap_source`` (cost of background) and ``cap_sink`` (cost of object).

        Returns
        -------
        numpy.ndarray of bool
            True where the pixel is on the source (object) side.
        """
        src = self._caps(cap_source)
        snk = self._caps(cap_sink)
        if self._src is None:
            self.graph.add_grid_tedges(self.nodes, src, snk)
            self.graph.maxflow()
        else:
            dsrc, dsnk = src - self._src, snk - self._snk
            changed = (dsrc != 0) | (dsnk != 0)
            if not changed.any():
                return ~self.graph.get_grid_segments(self.nodes)
            self.graph.add_grid_tedges(self.nodes, dsrc, dsnk)
            self.graph.mark_grid_nodes(self.nodes[changed])
            self.graph.maxflow(reuse_trees=True)
        self._src, self._snk = src, snk
        return ~self.graph.get_grid_segments(self.nodes)


def tlinks(cost_fg: np.ndarray, cost_bg: np.ndarray, hard_fg=None, hard_bg=None, big: float = 1e6):
    """``(cap_source, cap_sink)`` for unary costs, with the scribbles as hard constraints.

    ``big`` must exceed what any pixel can gain from its n-links and unary.
    """
    src = np.array(cost_bg, np.float32)
    snk = np.array(cost_fg, np.float32)
    if hard_fg is not None:
        src[hard_fg], snk[hard_fg] = big, 0.0
    if hard_bg is not None:
        src[hard_bg], snk[hard_bg] = 0.0, big
    return src, snk
