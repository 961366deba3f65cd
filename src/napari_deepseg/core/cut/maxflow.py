"""Max-flow back-ends: every minimum cut of the scribble, click and volume cuts is solved here.

PyMaxflow's solvers (Boykov-Kolmogorov, alpha-expansion) and one optional one:

* :class:`IncrementalCut`: a grid graph (n-links, star edges) built once and
  re-solved for new t-links from the previous search trees; integer capacities
  where they fit (:func:`integer_scale`). :func:`solve_binary` is one such cut.
* :func:`solve_multilabel`: alpha-expansion of a Potts energy (:mod:`maxflow.fastmin`).
* :func:`min_cut`: the graph of a band (:class:`EdgeList`, any shape of nodes), by
  BK or, for large bands where ``thinhpf`` is installed, by Hochbaum's pseudoflow
  (HPF) on integer capacities, checked against the hard links it must keep.

The energies (n-links, t-links, star edges) are built in
:mod:`~napari_deepseg.core.cut.graphcut`; the bands in
:mod:`~napari_deepseg.core.cut.bands`.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .graphcut import NLinks, tlinks

#: images up to this many pixels keep their flat edge arrays between cuts
CACHE_EDGES_MAX_PIXELS = 2_000_000


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
        ``(p, q)`` from :func:`~napari_deepseg.core.cut.graphcut.star_edges`: object at ``p`` implies object at ``q``.

    Returns
    -------
    numpy.ndarray of bool
        ``(rows, cols)`` object mask.

    Examples
    --------
    >>> fg = np.array([[0., 0., 5., 5.]]); bg = fg[:, ::-1].copy()
    >>> from napari_deepseg.core.cut.graphcut import contrast_nlinks
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
        Directed implication edges from :func:`~napari_deepseg.core.cut.graphcut.star_edges`.
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
    >>> from napari_deepseg.core.cut.graphcut import contrast_nlinks
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


class EdgeList:
    """The n-links of a band's graph, gathered before a solver is chosen (:func:`min_cut`)."""

    def __init__(self):
        self.parts = []

    def add_edges(self, i, j, cap, rcap) -> None:
        """Edges ``i -> j`` of capacity ``cap`` and ``j -> i`` of ``rcap`` (arrays of node ids and capacities)."""
        if np.size(i):
            self.parts.append((np.asarray(i, np.int64), np.asarray(j, np.int64), np.asarray(cap, np.float64),
                               np.asarray(rcap, np.float64)))


#: fresh band solves of at least this many nodes use the HPF solver (``thinhpf``, Hochbaum's pseudoflow)
#: when it is installed (the ``hpf`` extra); ``None``: never. Bands of the datasets' images stay on BK.
HPF_MIN_NODES = 50_000
#: HPF works on int32 capacities: finite ones are scaled by this and rounded
HPF_SCALE = 1000.0
#: ... and a capacity of at least :data:`HPF_HARD` (the hard links, 1e9) becomes this "infinity", small
#: enough that eight of them into one node stay within int32
HPF_INFINITY = 1 << 27
HPF_HARD = 1e8


def hpf_module():
    """The ``thinhpf`` module, or ``None`` when it is not installed (PyMaxflow is then used everywhere)."""
    try:
        import thinhpf
    except ImportError:
        return None
    return thinhpf


def _hpf_cut(n: int, edges: EdgeList, src, snk, scale: float = HPF_SCALE):
    """Source side (object) of every node by HPF on integer capacities; ``None`` when ``thinhpf`` is missing.

    Finite capacities are multiplied by ``scale`` and rounded.
    """
    hpf = hpf_module()
    if hpf is None:
        return None
    s_id, t_id = n, n + 1
    ids = np.arange(n, dtype=np.int64)
    tails = [p[0] for p in edges.parts] + [p[1] for p in edges.parts] + [np.full(n, s_id), ids]
    heads = [p[1] for p in edges.parts] + [p[0] for p in edges.parts] + [ids, np.full(n, t_id)]
    caps = [p[2] for p in edges.parts] + [p[3] for p in edges.parts] + [np.asarray(src), np.asarray(snk)]
    tail, head, cap = np.concatenate(tails), np.concatenate(heads), np.concatenate(caps)
    cap_int = np.where(cap >= HPF_HARD, HPF_INFINITY, np.minimum(np.rint(cap * scale), HPF_INFINITY - 1))
    keep = cap_int > 0
    graph = hpf.hpf(n + 2, int(np.count_nonzero(keep)), capacity_type="int32")
    graph.add_node(n + 2)
    graph.set_source(s_id)
    graph.set_sink(t_id)
    graph.add_edges(tail[keep].astype(np.uint32), head[keep].astype(np.uint32), cap_int[keep].astype(np.int32))
    graph.mincut()
    label = graph.what_label  # 0 on the source side
    return np.fromiter((label(v) == 0 for v in range(n)), bool, count=n)


def cut_value(label: np.ndarray, edges: EdgeList, src, snk, hard: float) -> tuple:
    """The capacity a labelling cuts: ``(number of hard links cut, sum of the finite capacities cut)``.

    Examples
    --------
    >>> e = EdgeList(); e.add_edges(np.array([0]), np.array([1]), np.array([2.0]), np.array([1e9]))
    >>> cut_value(np.array([True, False]), e, np.array([0.0, 0.0]), np.array([0.5, 1e9]), 1e8)
    (0, 2.5)
    >>> cut_value(np.array([False, True]), e, np.array([0.0, 0.0]), np.array([0.5, 1e9]), 1e8)
    (2, 0.0)
    """
    src, snk = np.asarray(src), np.asarray(snk)
    cut = [snk[label], src[~label]]  # an object node cuts its link to the sink, a background one its source link
    for i, j, cap, rcap in edges.parts:
        cut += [cap[label[i] & ~label[j]], rcap[label[j] & ~label[i]]]
    cut = np.concatenate(cut)
    hard_cut = cut >= hard
    return int(np.count_nonzero(hard_cut)), float(cut[~hard_cut].sum())


def hpf_scale(init, edges: EdgeList, src, snk, hard: float) -> float:
    """The factor for HPF's integer capacities on this graph: :data:`HPF_SCALE`, or less where the finite
    capacities that ``init`` (a labelling, such as the coarser level's) cuts would reach half of
    :data:`HPF_INFINITY`. Then a minimum cut breaks no more hard links than ``init`` does, as with BK's
    float capacities: scaled by 1000, the finite cut of a 64 MP photo's band reached about 4e8, more than
    the int32 "infinity" of 2**27, and HPF broke hard links that BK kept.
    """
    if init is None:
        return HPF_SCALE
    finite = cut_value(np.asarray(init, bool), edges, src, snk, hard)[1]
    return min(HPF_SCALE, HPF_INFINITY / 2 / max(finite, 1.0))


def _bk_cut(n: int, edges: EdgeList, src, snk) -> np.ndarray:
    """Source side (object) of every node by PyMaxflow's Boykov-Kolmogorov solver."""
    import maxflow

    graph = maxflow.GraphFloat(n, sum(p[0].size for p in edges.parts))
    graph.add_nodes(n)
    for i, j, cap, rcap in edges.parts:
        graph.add_edges(i, j, cap, rcap)
    graph.add_grid_tedges(np.arange(n), src, snk)
    graph.maxflow()
    return ~graph.get_grid_segments(np.arange(n))


def _breaks_hard(label: np.ndarray, edges: EdgeList, src, snk, hard: float) -> bool:
    """Whether a labelling cuts a capacity of at least ``hard`` (a hard link that must never be cut)."""
    return cut_value(label, edges, src, snk, hard)[0] > 0


def hard_conflict(n: int, edges: EdgeList, src, snk, hard: float) -> bool:
    """Whether the hard links contradict each other: a chain of hard edges (``i`` object implies ``j``
    object) from a node forced to the object to one forced to the background. Every cut then breaks
    one, and which one is the solver's choice.

    One breadth-first search from the nodes forced to the object (:func:`scipy.sparse.csgraph.breadth_first_order`).

    Examples
    --------
    >>> e = EdgeList(); e.add_edges(np.array([0, 1]), np.array([1, 2]), np.array([1e9, 1e9]), np.zeros(2))
    >>> hard_conflict(3, e, np.array([1e9, 0, 0]), np.array([0, 0, 1e9]), 1e8)
    True
    >>> hard_conflict(3, e, np.array([0, 1e9, 0]), np.array([1e9, 0, 0]), 1e8)
    False
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import breadth_first_order

    forced_fg = np.flatnonzero(np.asarray(src) >= hard)
    forced_bg = np.asarray(snk) >= hard
    if not forced_fg.size or not forced_bg.any():
        return False
    tails = [i[c >= hard] for i, j, c, _ in edges.parts] + [j[r >= hard] for i, j, _, r in edges.parts]
    heads = [j[c >= hard] for i, j, c, _ in edges.parts] + [i[r >= hard] for i, j, _, r in edges.parts]
    rows = np.concatenate(tails + [np.full(forced_fg.size, n)])  # node n: a source joined to every forced object
    cols = np.concatenate(heads + [forced_fg])
    graph = csr_matrix((np.ones(rows.size, np.int8), (rows, cols)), shape=(n + 1, n + 1))
    reached = breadth_first_order(graph, n, directed=True, return_predecessors=False)
    return bool(forced_bg[reached[reached < n]].any())


def min_cut(n: int, edges: EdgeList, src, snk, hard: float = 1e9, init=None, hpf: bool = True) -> np.ndarray:
    """The minimum s-t cut of a band's graph: ``True`` for the nodes on the source (object) side.

    Bands of at least :data:`HPF_MIN_NODES` nodes are solved by HPF where
    ``thinhpf`` is installed: 2-5 times faster than BK on full-resolution band
    graphs (``shared/studies/large-photos``), on integer capacities scaled by
    :func:`hpf_scale` (the same cut up to ties). A labelling that breaks a hard link
    (its infinity is finite in int32) is solved again by BK, unless the hard links
    contradict each other (:func:`hard_conflict`): every cut then breaks some, and
    HPF's cut is kept (on the 64 MP photo's bands it broke as many as BK's). BK is also
    the solver of smaller bands and the fallback without ``thinhpf``.

    Parameters
    ----------
    n : int
        Number of nodes.
    edges : EdgeList
        The n-links.
    src, snk : numpy.ndarray
        Per-node capacities to the source (cost of background) and to the sink (cost of object).
    hard : float
        Capacities of at least this are hard links.
    init : numpy.ndarray of bool, optional
        A labelling of the nodes (the coarser level's) that bounds the cut, for :func:`hpf_scale`.
    hpf : bool
        ``False``: BK whatever the size (the 3-D cut, where HPF was measured slower:
        :data:`~napari_deepseg.core.cut.volume.HPF_3D`).

    Returns
    -------
    numpy.ndarray of bool
    """
    if hpf and HPF_MIN_NODES is not None and n >= HPF_MIN_NODES:
        hard = min(hard, HPF_HARD)
        # the scale reads the whole graph: only where HPF will run
        scale = hpf_scale(init, edges, src, snk, hard) if hpf_module() is not None else HPF_SCALE
        label = _hpf_cut(n, edges, src, snk, scale)
        if label is not None and (not _breaks_hard(label, edges, src, snk, hard)
                                  or hard_conflict(n, edges, src, snk, hard)):
            return label
    return _bk_cut(n, edges, src, snk)
