"""Coarse-to-fine (banded) graph cuts: solve a half-resolution problem, refine a band at full resolution.

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
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from . import graphcut

FACTOR = 2


def coarse_shape(shape) -> tuple:
    """``ceil(shape / FACTOR)`` for each axis.

    Examples
    --------
    >>> coarse_shape((5, 8))
    (3, 4)
    """
    return tuple(-(-n // FACTOR) for n in shape)


def _pad_even(a: np.ndarray) -> np.ndarray:
    rows, cols = a.shape[:2]
    pad = ((0, -rows % FACTOR), (0, -cols % FACTOR)) + ((0, 0),) * (a.ndim - 2)
    return np.pad(a, pad, mode="edge") if any(p[1] for p in pad) else a


def block_reduce(a: np.ndarray, how: str = "mean") -> np.ndarray:
    """Mean or sum over ``FACTOR x FACTOR`` blocks (edge-padded to whole blocks).

    Examples
    --------
    >>> block_reduce(np.arange(4.).reshape(2, 2), "sum").tolist()
    [[6.0]]
    """
    p = _pad_even(np.asarray(a))
    rows, cols = p.shape[0] // FACTOR, p.shape[1] // FACTOR
    blocks = p.reshape(rows, FACTOR, cols, FACTOR, *p.shape[2:])
    out = blocks.sum(axis=(1, 3), dtype=np.float32)
    return out / np.float32(FACTOR * FACTOR) if how == "mean" else out


def coarse_hard(hard: np.ndarray) -> np.ndarray:
    """Block seeds: the class of a block whose seeds all agree, ``-1`` elsewhere.

    Examples
    --------
    >>> coarse_hard(np.array([[0, -1, 1, 1], [0, 1, -1, -1]])).tolist()
    [[-1, 1]]
    """
    p = _pad_even(hard)
    rows, cols = p.shape[0] // FACTOR, p.shape[1] // FACTOR
    blocks = p.reshape(rows, FACTOR, cols, FACTOR).transpose(0, 2, 1, 3).reshape(rows, cols, -1)
    top = blocks.max(axis=-1)
    low = np.where(blocks >= 0, blocks, np.iinfo(np.int32).max).min(axis=-1)
    return np.where((top >= 0) & (top == low), top, -1).astype(np.int32)


def upsample_labels(coarse: np.ndarray, shape) -> np.ndarray:
    """Nearest-neighbour upsampling of a coarse labelling to ``shape``."""
    return np.repeat(np.repeat(coarse, FACTOR, axis=0), FACTOR, axis=1)[: shape[0], : shape[1]]


def band_mask(init_fg: np.ndarray, hard_fg: np.ndarray, hard_bg: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` of the boundary of ``init_fg`` or of a seed it contradicts."""
    edge = init_fg ^ ndi.binary_erosion(init_fg, border_value=1)
    edge |= ~init_fg ^ ndi.binary_erosion(~init_fg, border_value=1)
    edge |= (hard_fg & ~init_fg) | (hard_bg & init_fg)
    return ndi.binary_dilation(edge, structure=np.ones((3, 3), bool), iterations=radius)


def _fixed_neighbours(src, snk, node, neighbour_fg, weight) -> None:
    """Fold edges to fixed pixels into t-links: a fixed object neighbour makes background pay."""
    n = src.size
    src += np.bincount(node[neighbour_fg], weight[neighbour_fg], minlength=n)
    snk += np.bincount(node[~neighbour_fg], weight[~neighbour_fg], minlength=n)


def solve_band(cost_fg, cost_bg, nlinks: graphcut.NLinks, init_fg, band, hard_fg, hard_bg, star=None) -> np.ndarray:
    """Re-solve the pixels of ``band`` at full resolution, the rest fixed to ``init_fg``.

    Parameters
    ----------
    cost_fg, cost_bg : numpy.ndarray
        Full-resolution unary costs.
    nlinks : graphcut.NLinks
        Full-resolution pairwise weights.
    init_fg : numpy.ndarray of bool
        Labelling outside the band (object = True).
    band : numpy.ndarray of bool
        Pixels to re-solve.
    hard_fg, hard_bg : numpy.ndarray of bool
        Seeds: always respected inside the band, also against a star
        implication from a fixed pixel outside it.
    star : tuple of numpy.ndarray, optional
        Full-resolution star edges ``(p, q)`` (object at ``p`` implies object at ``q``).

    Returns
    -------
    numpy.ndarray of bool
        The full-resolution object mask.
    """
    import maxflow

    shape = nlinks.shape
    flat_band = band.ravel()
    ids = np.full(flat_band.size, -1, np.int64)
    nodes = np.flatnonzero(flat_band)
    ids[nodes] = np.arange(nodes.size)
    fixed_fg = init_fg.ravel()
    src = cost_bg.ravel()[nodes].astype(np.float64)  # cost of background
    snk = cost_fg.ravel()[nodes].astype(np.float64)  # cost of object
    g = maxflow.GraphFloat(nodes.size, 4 * nodes.size)
    g.add_nodes(nodes.size)
    rows, cols = shape
    nr, nc = np.divmod(nodes, cols)
    for (dr, dc), w in zip(nlinks.offsets, nlinks.weights):
        r0, c0 = max(0, -dr), max(0, -dc)  # origin of the weight array (pair_slices)
        # edges (p, p + off) with p in the band
        qr, qc = nr + dr, nc + dc
        ok = (qr >= 0) & (qr < rows) & (qc >= 0) & (qc < cols)
        p_id, q_flat = np.flatnonzero(ok), qr[ok] * cols + qc[ok]
        wp = w[nr[ok] - r0, nc[ok] - c0].astype(np.float64)
        inside = flat_band[q_flat]
        g.add_edges(p_id[inside], ids[q_flat[inside]], wp[inside], wp[inside])
        _fixed_neighbours(src, snk, p_id[~inside], fixed_fg[q_flat[~inside]], wp[~inside])
        # edges (p - off, p) with p in the band and p - off outside it
        pr, pc = nr - dr, nc - dc
        ok = (pr >= 0) & (pr < rows) & (pc >= 0) & (pc < cols)
        other = pr[ok] * cols + pc[ok]
        out = ~flat_band[other]
        wq = w[pr[ok][out] - r0, pc[ok][out] - c0].astype(np.float64)
        _fixed_neighbours(src, snk, np.flatnonzero(ok)[out], fixed_fg[other[out]], wq)
    big = 1e9
    seed_fg = hard_fg.ravel()[nodes]
    seed_bg = hard_bg.ravel()[nodes]
    star_fg = np.zeros(nodes.size, bool)
    star_bg = np.zeros(nodes.size, bool)
    if star is not None and star[0].size:
        p, q = star
        ip, iq = flat_band[p], flat_band[q]
        both = ip & iq
        g.add_edges(ids[p[both]], ids[q[both]], np.full(both.sum(), big), np.zeros(both.sum()))
        star_bg[ids[p[ip & ~iq & ~fixed_fg[q]]]] = True  # p -> q with q fixed background: p cannot be object
        star_fg[ids[q[iq & ~ip & fixed_fg[p]]]] = True  # fixed object p forces q
    # the strokes always win; a star implication yields where it contradicts one
    force_fg = seed_fg | (star_fg & ~seed_bg)
    force_bg = (seed_bg | (star_bg & ~seed_fg)) & ~force_fg
    src[force_fg], snk[force_fg] = big, 0.0
    src[force_bg], snk[force_bg] = 0.0, big
    g.add_grid_tedges(np.arange(nodes.size), src, snk)
    g.maxflow()
    out = fixed_fg.copy()
    out[nodes] = ~g.get_grid_segments(np.arange(nodes.size))
    return out.reshape(shape)
