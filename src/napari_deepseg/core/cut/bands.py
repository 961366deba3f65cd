"""The band solver: re-solve the pixels near a coarse boundary, the rest fixed (any dimension).

The coarse problem has a quarter of the nodes: unaries are summed over 2 x 2
blocks, edges come from block-averaged colour and features with λ doubled (a
coarse edge stands for two fine ones), and a block is a hard seed when it holds
seeds of one label only. The fine problem keeps only the pixels within
``radius`` of the coarse boundary (and around seeds the coarse cut got wrong);
every other pixel keeps its coarse label, which enters the band's unaries
through the n-links and star edges that cross the band's edge. Time and memory
then grow with the object's boundary rather than its area. This is an
approximation of the full-resolution cut; ``docs/performance.md`` reports the
IoU between the two.

The 2-D scribble cut (:mod:`~napari_deepseg.core.cut.pyramid`), the
``points-graphcut`` click engine and the 3-D cut (:mod:`~napari_deepseg.core.cut.volume`)
all solve their bands here; the graphs go to :func:`~napari_deepseg.core.cut.maxflow.min_cut`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional

import numpy as np

from . import graphcut, maxflow
from .star_steps import ArrayStar


def label_edges(labels: np.ndarray) -> np.ndarray:
    """Pixels (voxels) with a face neighbour of another label: both sides of every boundary, any dimension.

    Examples
    --------
    >>> label_edges(np.array([[0, 0, 1, 1]], bool)).astype(int).tolist()
    [[0, 1, 1, 0]]
    """
    edge = np.zeros(labels.shape, bool)
    for axis in range(labels.ndim):
        hi = tuple(slice(1, None) if a == axis else slice(None) for a in range(labels.ndim))
        lo = tuple(slice(None, -1) if a == axis else slice(None) for a in range(labels.ndim))
        d = labels[hi] != labels[lo]
        edge[hi] |= d
        edge[lo] |= d
    return edge


def band_mask(init_fg: np.ndarray, hard_fg: np.ndarray, hard_bg: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` (chessboard distance) of the boundary of ``init_fg`` or of a seed it contradicts.

    Any dimension: the 3-D cut (:mod:`~napari_deepseg.core.cut.volume`) uses it for voxels.

    The boundary is found by comparing shifted arrays and dilated by writing
    around its pixels only, so the cost follows the boundary's length, not the area.
    """
    edge = label_edges(init_fg)
    edge |= hard_fg & ~init_fg
    edge |= hard_bg & init_fg
    return grow(np.zeros(init_fg.shape, bool), np.flatnonzero(edge), radius)


class ArrayEdges:
    """Edge weights read from precomputed :class:`~napari_deepseg.core.cut.graphcut.NLinks` arrays."""

    def __init__(self, nlinks: graphcut.NLinks):
        self.shape, self.offsets, self.nlinks = nlinks.shape, nlinks.offsets, nlinks

    def weights(self, k: int, rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
        """Weights of the edges ``(p, p + offsets[k])`` for pixels ``p = (rr, cc)`` whose neighbour exists."""
        dr, dc = self.offsets[k]
        return self.nlinks.weights[k][rr - max(0, -dr), cc - max(0, -dc)]


class ColourEdges:
    """Contrast weights ``lam / |offset| * exp(-|c_p - c_q|^2 / sigma^2)`` computed for the pixels asked.

    Parameters
    ----------
    colour_at : callable
        ``colour_at(flat_indices) -> (n, channels)`` float32 colours.
    shape : tuple
        ``(rows, cols)``.
    lam, sigma : float
        Smoothness weight and contrast scale.
    offsets : tuple
        Neighbour offsets (8-neighbourhood by default).
    """

    def __init__(self, colour_at, shape, lam: float, sigma: float, offsets=graphcut.OFFSETS_8):
        self.colour_at, self.shape, self.offsets = colour_at, tuple(shape), tuple(offsets)
        self.lam, self.sigma = float(lam), float(sigma)

    def weights(self, k: int, rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
        dr, dc = self.offsets[k]
        cols = self.shape[1]
        d = self.colour_at(rr * cols + cc) - self.colour_at((rr + dr) * cols + (cc + dc))
        d2 = np.einsum("ij,ij->i", d, d) if d.ndim == 2 else d * d
        return np.exp(d2 * np.float32(-1.0 / (self.sigma * self.sigma))) * np.float32(self.lam / np.hypot(dr, dc))


def _fixed_neighbours(src, snk, node, neighbour_fg, weight) -> None:
    """Fold edges to fixed pixels into t-links: a fixed object neighbour makes background pay."""
    n = src.size
    src += np.bincount(node[neighbour_fg], weight[neighbour_fg], minlength=n)
    snk += np.bincount(node[~neighbour_fg], weight[~neighbour_fg], minlength=n)


def solve_band(cost_fg, cost_bg, nlinks, init_fg, band, hard_fg, hard_bg, star=None,
               star_weight=None, hpf: bool = True) -> np.ndarray:
    """Re-solve the pixels of ``band`` at full resolution, the rest fixed to ``init_fg``.

    Parameters
    ----------
    cost_fg, cost_bg : numpy.ndarray or callable
        Unary costs: ``(rows, cols)`` arrays, or ``cost_fg(flat) -> (fg, bg)`` giving
        both for the flat pixel indices asked (then ``cost_bg`` is ignored).
    nlinks : graphcut.NLinks or edge source
        Pairwise weights: arrays, or an object with ``shape``, ``offsets`` (one
        offset per edge direction, one entry per axis) and ``weights(k, *coords)``
        giving the weights of the edges ``(p, p + offsets[k])`` for pixels ``p`` at
        ``coords`` (one array per axis) whose neighbour exists (:class:`ColourEdges`,
        :class:`ArrayEdges`; the 3-D volume's face neighbours in
        :mod:`~napari_deepseg.core.cut.volume`).
    init_fg : numpy.ndarray of bool
        Labelling outside the band (object = True).
    band : numpy.ndarray of bool
        Pixels (voxels: any dimension) to re-solve.
    hard_fg, hard_bg : numpy.ndarray of bool
        Seeds: always respected inside the band, also against a star
        implication from a fixed pixel outside it.
    star : tuple of numpy.ndarray or StarSteps, optional
        Star edges ``(p, q)`` (object at ``p`` implies object at ``q``), or a
        :class:`StarSteps` computing them for the pixels asked.
    star_weight : float, optional
        ``None``: hard star implications; a number: each broken one costs this much
        (see :class:`~napari_deepseg.core.cut.maxflow.IncrementalCut`).
    hpf : bool
        Whether a large band may be solved by HPF (:func:`~napari_deepseg.core.cut.maxflow.min_cut`).

    Returns
    -------
    numpy.ndarray of bool
        The full-resolution object mask.

    Notes
    -----
    The graph is solved by :func:`~napari_deepseg.core.cut.maxflow.min_cut`: BK,
    or HPF for large bands where ``thinhpf`` is installed.
    """
    return solve_band_contacts(cost_fg, cost_bg, nlinks, init_fg, band, hard_fg, hard_bg, star, star_weight, hpf)[0]


def _neighbours(at: tuple, offset, shape):
    """Which of the pixels at coordinates ``at`` have a neighbour ``p + offset`` inside ``shape``, and its flat index.

    Examples
    --------
    >>> ok, flat = _neighbours((np.array([0, 1]), np.array([2, 2])), (1, 0), (2, 3))
    >>> ok.tolist(), flat.tolist()
    ([True, False], [5])
    """
    ok = np.ones(at[0].shape, bool)
    for a, d, n in zip(at, offset, shape):
        if d > 0:
            ok &= a < n - d
        elif d < 0:
            ok &= a >= -d
    return ok, np.ravel_multi_index(tuple(a[ok] + d for a, d in zip(at, offset)), shape)


def solve_band_contacts(cost_fg, cost_bg, nlinks, init_fg, band, hard_fg, hard_bg, star=None, star_weight=None,
                        hpf: bool = True):
    """:func:`solve_band`, also returning the flat indices of the fixed pixels the solution contradicts
    (where a growing band grows: :func:`refine_band`)."""
    edges = ArrayEdges(nlinks) if isinstance(nlinks, graphcut.NLinks) else nlinks
    shape = edges.shape
    flat_band = band.ravel()
    nodes = np.flatnonzero(flat_band)
    ids = np.full(flat_band.size, -1, np.int64) if flat_band.size < (1 << 22) else None
    if ids is not None:
        ids[nodes] = np.arange(nodes.size)

    def node_id(flat):  # position of band pixels in ``nodes``
        return ids[flat] if ids is not None else np.searchsorted(nodes, flat)

    fixed_fg = init_fg.ravel()
    if callable(cost_fg):
        cf, cb = cost_fg(nodes)
    else:
        cf, cb = cost_fg.ravel()[nodes], cost_bg.ravel()[nodes]
    src = np.asarray(cb, np.float64).copy()  # cost of background
    snk = np.asarray(cf, np.float64).copy()  # cost of object
    g = maxflow.EdgeList()
    at = np.unravel_index(nodes, shape)  # the band pixels' coordinates, one array per axis
    pairs = []  # (band node, fixed pixel) of every edge across the band's edge
    for k, off in enumerate(edges.offsets):
        # edges (p, p + off) with p in the band
        ok, q_flat = _neighbours(at, off, shape)
        p_id = np.flatnonzero(ok)
        wp = edges.weights(k, *(a[ok] for a in at)).astype(np.float64)
        inside = flat_band[q_flat]
        g.add_edges(p_id[inside], node_id(q_flat[inside]), wp[inside], wp[inside])
        _fixed_neighbours(src, snk, p_id[~inside], fixed_fg[q_flat[~inside]], wp[~inside])
        pairs.append((p_id[~inside], q_flat[~inside]))
        # edges (p - off, p) with p in the band and p - off outside it
        ok, other = _neighbours(at, tuple(-d for d in off), shape)
        out = ~flat_band[other]
        wq = edges.weights(k, *(a[ok][out] - d for a, d in zip(at, off))).astype(np.float64)
        _fixed_neighbours(src, snk, np.flatnonzero(ok)[out], fixed_fg[other[out]], wq)
        pairs.append((np.flatnonzero(ok)[out], other[out]))
    big = 1e9
    seed_fg = hard_fg.ravel()[nodes]
    seed_bg = hard_bg.ravel()[nodes]
    star_fg = np.zeros(nodes.size, bool)
    star_bg = np.zeros(nodes.size, bool)
    if star is not None and not (isinstance(star, tuple) and not star[0].size):
        steps = ArrayStar(star, flat_band.size) if isinstance(star, tuple) else star
        q = steps.step(nodes)  # band p -> q
        has = q >= 0
        q_in = np.zeros(nodes.size, bool)
        q_in[has] = flat_band[q[has]]
        cap = big if star_weight is None else float(star_weight)
        g.add_edges(np.flatnonzero(q_in), node_id(q[q_in]), np.full(q_in.sum(), cap), np.zeros(q_in.sum()))
        out_bg = has & ~q_in
        out_bg[out_bg] = ~fixed_fg[q[out_bg]]  # p -> q with q fixed background
        ring = np.unique(np.concatenate([q for _, q in pairs]))
        ring = ring[fixed_fg[ring]]  # fixed object pixels next to the band
        rq = steps.step(ring)
        rq = rq[rq >= 0]
        rq = node_id(rq[flat_band[rq]])  # band pixels a fixed object pixel steps to
        if star_weight is None:
            star_bg[out_bg] = True  # p cannot be object
            star_fg[rq] = True  # a fixed object pixel forces its step into the band
        else:  # soft star: those implications become costs
            snk[out_bg] += float(star_weight)
            np.add.at(src, rq, float(star_weight))
    # the strokes always win; a star implication yields where it contradicts one
    force_fg = seed_fg | (star_fg & ~seed_bg)
    force_bg = (seed_bg | (star_bg & ~seed_fg)) & ~force_fg
    src[force_fg], snk[force_fg] = big, 0.0
    src[force_bg], snk[force_bg] = 0.0, big
    label = maxflow.min_cut(nodes.size, g, src, snk, hard=big, init=fixed_fg[nodes], hpf=hpf)
    out, contacts = band_labels(label, nodes, fixed_fg, pairs)
    return out.reshape(shape), contacts


def band_labels(label: np.ndarray, nodes: np.ndarray, fixed: np.ndarray, pairs: list):
    """The band's labels written over the fixed labelling, and the fixed pixels they disagree with.

    Returns
    -------
    mask : numpy.ndarray of bool
        Flat object mask.
    contacts : numpy.ndarray
        Flat indices of the fixed pixels the band's solution disagrees with across the band's edge.
    """
    out = fixed.copy()
    out[nodes] = label
    if not pairs:
        return out, np.zeros(0, np.int64)
    p_all = np.concatenate([p for p, _ in pairs])
    q_all = np.concatenate([q for _, q in pairs])
    return out, np.unique(q_all[label[p_all] != fixed[q_all]])


def grow(mask: np.ndarray, flat: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` with the pixels within ``radius`` (chessboard distance) of the flat indices ``flat`` set.

    Works on the few pixels given, not the whole image; any dimension (2-D bands, 3-D bands).

    Examples
    --------
    >>> grow(np.zeros((1, 5), bool), np.array([2]), 1).astype(int).tolist()
    [[0, 1, 1, 1, 0]]
    """
    coords = np.unravel_index(np.asarray(flat, np.int64), mask.shape)

    def fill(axis: int, index: tuple) -> None:  # one clipped coordinate per axis and offset
        if axis == mask.ndim:
            mask[index] = True
            return
        for d in range(-radius, radius + 1):
            fill(axis + 1, index + (np.clip(coords[axis] + d, 0, mask.shape[axis] - 1),))

    fill(0, ())
    return mask


#: half-width in pixels (voxels) of the band re-solved around the boundary at each finer level: the 2-D
#: coarse-to-fine cut (:mod:`~napari_deepseg.core.cut.pyramid`) and the 3-D one (:mod:`~napari_deepseg.core.cut.volume`)
BAND_RADIUS = 2
#: growth rounds of :func:`refine_band` at most (2-D and 3-D)
MAX_GROWTH_ROUNDS = 8
#: bands of at least this many pixels stop growing once fewer than :data:`GROWTH_TOLERANCE` of their
#: pixels press on the band's edge (each round re-solves the whole band; on a large photograph the
#: last rounds moved a handful of pixels for seconds each)
GROWTH_MIN_NODES = 200_000
#: share of a large band's pixels that may still press on its edge when it stops growing (1e-4 until issue 22:
#: a 430 000-pixel band of a 25 MP photo was solved three times for 1194, 95 and 28 pressing pixels)
GROWTH_TOLERANCE = 1e-3
#: a band grows to at most this many times its first size (a bound on every level's work)
MAX_GROWTH_FACTOR = 4


def refine_band(cost_fg, cost_bg, nlinks, init_fg, band, hard_fg, hard_bg, star=None, radius: int = 3,
                max_rounds: int = MAX_GROWTH_ROUNDS, star_weight=None, limit=None, on_round=None, bounded: bool = True,
                hpf: bool = True):
    """:func:`solve_band`, grown where the solution presses against the band's edge.

    After each solve, the fixed pixels that disagree with a neighbour inside the
    band are added to the band with ``radius`` pixels
    around them, and the band is solved again, until the boundary lies inside the
    band everywhere (or ``max_rounds`` solves). A coarse cut that is wrong by more
    than the band's width (a shadow the coarse level took for the object) is then
    corrected instead of kept. The work is bounded: a band stops growing at
    :data:`MAX_GROWTH_FACTOR` times its first size, and a large band
    (:data:`GROWTH_MIN_NODES`) once almost none of it (:data:`GROWTH_TOLERANCE`)
    presses on its edge (``bounded=False``: neither bound, the 3-D cut's rule). ``limit`` (a bool mask) bounds
    the growth: the band
    never leaves it, so every pixel outside ``band | limit`` keeps ``init_fg``
    (the local update of :func:`~napari_deepseg.core.cut.pyramid.update_multilevel`).
    ``on_round``, if given, is called with the number of each solve after the first
    and the band's size (the caller's progress report: a large band's growth takes seconds).

    Returns
    -------
    fg : numpy.ndarray of bool
        The object mask.
    rounds : int
        Solves made.
    """
    band = band.copy()
    most = MAX_GROWTH_FACTOR * int(np.count_nonzero(band))
    for rounds in range(1, max_rounds + 1):
        if on_round is not None and rounds > 1:
            on_round(rounds, int(np.count_nonzero(band)))
        fg, contacts = solve_band_contacts(cost_fg, cost_bg, nlinks, init_fg, band, hard_fg, hard_bg, star,
                                          star_weight, hpf)
        nodes = int(np.count_nonzero(band))
        if not contacts.size or rounds == max_rounds:
            break
        if bounded and (nodes >= GROWTH_MIN_NODES and contacts.size < GROWTH_TOLERANCE * nodes or nodes >= most):
            break  # almost nothing presses on a large band's edge, or the bound: keep the last solve's labels
        if limit is not None:
            contacts = contacts[limit.ravel()[contacts]]
            if not contacts.size:
                break
        grow(band, contacts, max(1, radius))
        if limit is not None:
            band &= limit
    return fg, rounds


@dataclass
class BandProblem:
    """One finer level of a coarse-to-fine cut, as :func:`refine_levels` re-solves it.

    Attributes
    ----------
    upsample : callable
        The labelling of the level above -> this level's first labelling.
    costs : callable or tuple
        ``flat -> (cost_fg, cost_bg)`` of the pixels asked, or the two cost arrays.
    edges : graphcut.NLinks or edge source
        The level's n-links (see :func:`solve_band`).
    hard_fg, hard_bg : numpy.ndarray of bool
        The level's seeds.
    star, star_weight
        Star-convexity steps (or edges) and their weight (``None``: hard), as :func:`solve_band` takes them.
    radius : int
        Half-width of the band around the boundary, and of each growth.
    rounds : int
        Solves of the band at most (1: no growth).
    bounded : bool
        Whether large bands stop growing early (:func:`refine_band`).
    more_band : callable, optional
        First labelling -> more pixels to re-solve besides its boundary.
    hpf : bool
        Whether large bands may be solved by HPF (:func:`~napari_deepseg.core.cut.maxflow.min_cut`).
    on_round : callable, optional
        Progress of the band's growth (see :func:`refine_band`).
    """

    upsample: Callable[[np.ndarray], np.ndarray]
    costs: object
    edges: object
    hard_fg: np.ndarray
    hard_bg: np.ndarray
    star: object = None
    star_weight: Optional[float] = None
    radius: int = BAND_RADIUS
    rounds: int = MAX_GROWTH_ROUNDS
    bounded: bool = True
    more_band: Optional[Callable[[np.ndarray], np.ndarray]] = None
    hpf: bool = True
    on_round: Optional[Callable] = None


def refine_levels(fg: np.ndarray, problems: Iterable[BandProblem]) -> Iterator[np.ndarray]:
    """The way down of every coarse-to-fine cut (2-D scribbles, clicks, 3-D volumes).

    For each finer level (``problems``, coarsest first; an iterator builds each
    level's problem when it is reached), the labelling of the level above is
    upsampled, a band around its boundary and the seeds it contradicts is
    re-solved with the rest fixed, and grown where the solution presses on its
    edge (:func:`refine_band`).

    Yields
    ------
    numpy.ndarray of bool
        Each level's object mask, the finest last.
    """
    for p in problems:
        init = p.upsample(fg)
        band = band_mask(init, p.hard_fg, p.hard_bg, p.radius)
        if p.more_band is not None:
            band |= p.more_band(init)
        cost_fg, cost_bg = (p.costs, None) if callable(p.costs) else p.costs
        fg, _ = refine_band(cost_fg, cost_bg, p.edges, init, band, p.hard_fg, p.hard_bg, p.star, radius=p.radius,
                            max_rounds=p.rounds, star_weight=p.star_weight, on_round=p.on_round, bounded=p.bounded,
                            hpf=p.hpf)
        yield fg


def refine_to_finest(fg: np.ndarray, problems: Iterable[BandProblem]) -> np.ndarray:
    """:func:`refine_levels` all the way down: the finest level's object mask (``fg`` itself without finer levels)."""
    for fg in refine_levels(fg, problems):
        pass
    return fg
