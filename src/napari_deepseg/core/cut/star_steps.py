"""Star-convexity steps asked for the pixels of a band, not for the whole image.

:class:`StarSteps` answers from a k-d tree of the centres' edge (large levels,
local updates); :class:`ArrayStar` from precomputed star edges
(:func:`~napari_deepseg.core.cut.graphcut.star_edges`).
"""

from __future__ import annotations

import numpy as np

def _edge_points(centres: np.ndarray, border: bool = True) -> np.ndarray:
    """``(n, 2)`` int32 rows and columns of the centre pixels with a 4-neighbour outside the centres.

    The nearest centre of a pixel outside them is one of these (from any other
    centre, the 4-neighbour towards the pixel is nearer), so a k-d tree of the
    edge answers as one of every centre, and large centre regions cost no more
    than their outline. ``border=False``: pixels on the array's border count as
    edge (for a window of a larger mask).
    """
    from scipy import ndimage as ndi

    edge = centres & ~ndi.binary_erosion(centres, border_value=1 if border else 0)
    return np.argwhere(edge).astype(np.int32)


class StarSteps:
    """One step of every pixel towards its nearest centre pixel (star convexity), on request.

    The same implication edges as :func:`~napari_deepseg.core.cut.graphcut.star_edges`, but
    only for the pixels asked (a band), from a k-d tree of the centres instead of a
    distance transform of the whole image. Ties between equidistant centres may
    be broken differently.
    """

    def __init__(self, centres: np.ndarray):
        centres = np.asarray(centres, bool)
        self._set(_edge_points(centres), centres.shape)
        self.centres = centres

    @classmethod
    def from_points(cls, points: np.ndarray, centres: np.ndarray) -> "StarSteps":
        """Steps towards the bool mask ``centres``, its k-d tree built on ``points`` (``(n, 2)`` rows and
        columns: the centres' edge at least, see :func:`_edge_points`)."""
        steps = cls.__new__(cls)
        steps._set(np.asarray(points, np.int32).reshape(-1, 2), centres.shape)
        steps.centres = centres
        return steps

    def with_window(self, rows: slice, cols: slice, window: np.ndarray) -> "StarSteps":
        """These steps with the centres inside ``[rows, cols]`` replaced by ``window`` (``self`` if unchanged).

        The tree keeps the edge points outside the window and takes the window's own
        edge (its pixels on the window's border included); a centre outside the
        window that only now borders a non-centre inside it stays out of the tree,
        so a few steps may aim at a slightly farther centre (still nearer with
        every step: the implication edges stay acyclic).
        """
        window = np.asarray(window, bool)
        if np.array_equal(self.centres[rows, cols], window):
            return self
        mask = self.centres.copy()
        mask[rows, cols] = window
        p = self.points
        inside = (p[:, 0] >= rows.start) & (p[:, 0] < rows.stop) & (p[:, 1] >= cols.start) & (p[:, 1] < cols.stop)
        new = _edge_points(window, border=False) + np.array([rows.start, cols.start], np.int32)
        return StarSteps.from_points(np.concatenate([p[~inside], new]), mask)

    def _set(self, points: np.ndarray, shape) -> None:
        from scipy.spatial import cKDTree

        self.shape = tuple(shape)
        self.points = points
        self.tree = cKDTree(self.points) if self.points.size else None
        # steps found so far (sorted flat indices and their steps): a band's growth rounds, the refit
        # round and later cuts with the same centres ask again for mostly the same pixels
        self._known = np.zeros(0, np.int64)
        self._steps = np.zeros(0, np.int64)

    def step(self, flat: np.ndarray) -> np.ndarray:
        """Flat index one step towards the nearest centre, ``-1`` for centres themselves (and without centres)."""
        flat = np.asarray(flat, np.int64)
        out = np.full(flat.shape, -1, np.int64)
        if self.tree is None or not flat.size:
            return out
        miss = np.ones(flat.shape, bool)
        if self._known.size:
            pos = np.minimum(np.searchsorted(self._known, flat), self._known.size - 1)
            hit = self._known[pos] == flat
            out[hit] = self._steps[pos[hit]]
            miss = ~hit
        if miss.any():
            new = np.unique(flat[miss])
            steps = self._query(new)
            out[miss] = steps[np.searchsorted(new, flat[miss])]
            known = np.concatenate([self._known, new])
            order = np.argsort(known, kind="stable")  # two sorted runs: a merge
            self._known, self._steps = known[order], np.concatenate([self._steps, steps])[order]
        return out

    def _query(self, flat: np.ndarray) -> np.ndarray:
        """:meth:`step` for distinct flat indices, from the k-d tree."""
        out = np.full(flat.shape, -1, np.int64)
        cols = self.shape[1]
        rr, cc = np.divmod(flat, cols)
        _, near = self.tree.query(np.stack([rr, cc], axis=1), k=1)
        vy = self.points[near, 0] - rr
        vx = self.points[near, 1] - cc
        span = np.maximum(np.abs(vy), np.abs(vx))
        move = span > 0
        s = np.maximum(span, 1).astype(np.float32)
        out[move] = ((rr + np.rint(vy / s).astype(np.int64)) * cols + cc + np.rint(vx / s).astype(np.int64))[move]
        out[self.centres.ravel()[flat]] = -1  # centres inside the edge are centres too
        return out


class ArrayStar:
    """:class:`StarSteps` over precomputed ``(p, q)`` star edges (faster for repeated small bands)."""

    def __init__(self, star, n: int):
        self.next = np.full(n, -1, np.int64)
        self.next[star[0]] = star[1]

    def step(self, flat):
        return self.next[flat]
