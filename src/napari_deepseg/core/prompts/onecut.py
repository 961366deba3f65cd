"""OneCut: a box's object in one max-flow, without colour models (Tang et al., ICCV 2013).

"GrabCut in One Cut" (Meng Tang, Lena Gorelick, Olga Veksler, Yuri Boykov) replaces
GrabCut's iterated colour models by one term: the L1 distance between the colour
histograms of the object and of the background, which a graph represents exactly
with one auxiliary node per colour bin. Every pixel is linked to the node of its
bin with weight ``w``; a bin whose pixels are split between the two labels costs
``w`` times its smaller part. Pixels outside the box are background (hard); every
pixel inside costs 1 when labelled background (a ballooning term that the
appearance overlap and the contrast-sensitive smoothness hold back). One max-flow,
no iterations, no first guess of the models to go wrong: the box's outer ring is
not taken as background, so an object that fills a tight box keeps its sides.

Tried as the box engine's first fit of its colour models (:func:`onecut_first_fit`
in place of :func:`~napari_deepseg.core.prompts.boxcut.box_labels`' core and ring):
it won on GrabCut's boxes and lost on Berkeley's, so the engine does not use it
(``benchmarks/box_onecut.py``, ``docs/benchmarks.md``). Parameters as the
authors' code (``meng-tang/OneCut``: bins of 8 levels per channel, 8-neighbour
contrast ``exp(-d²/2σ²)/|offset|`` with σ² the mean squared neighbour
difference, ``w = 0.9 |box| / Σ_k min(h_in(k), h_out(k))``) except the Potts
weight (:data:`POTTS`, theirs 9), chosen on GrabCut's tight boxes and checked on
Berkeley's (``docs/benchmarks.md``).
"""

from __future__ import annotations

import numpy as np

from ..cut import graphcut, maxflow
from ..utils.validation import SCRIBBLE_BACKGROUND, SCRIBBLE_OBJECT
from .box import Box

#: colour levels per bin and channel (256 / 8 = 32 bins per channel)
BIN_SIZE = 8
#: the appearance overlap's weight, as a fraction of the box's area over the histograms' overlap
BETA = 0.9
#: weight of the contrast-sensitive smoothness at :data:`SCALE` (the authors' code: 9 at full resolution, where
#: GrabCut's tight boxes gave 2 -> 9.18 %, 3 -> 8.52 %, 4 -> 7.84 %, 9 -> 10.12 % mean error for OneCut alone;
#: half the size halves the boundary's length but quarters the area, so half of 4)
POTTS = 2.0
#: the cut is solved on the image shrunk by this factor (block means): it only seeds the colour models
SCALE = 2
#: solve with HPF where ``thinhpf`` is installed (:func:`~napari_deepseg.core.cut.maxflow.min_cut`, graphs of
#: 50 000 nodes and more): 1.5-5 times faster than BK on full-resolution OneCut graphs, the same cut up to ties.
#: Off: at :data:`SCALE` 2 a photo's graph is under that size, and ties would make masks depend on the install
HPF = False


def colour_bins(image: np.ndarray, bin_size: int = BIN_SIZE) -> np.ndarray:
    """The colour bin of every pixel, numbered 0 … n-1 over the bins that occur.

    Parameters
    ----------
    image : numpy.ndarray
        ``(rows, cols)`` or ``(rows, cols, channels)`` in [0, 1] (float) or uint8;
        the first three channels are binned.
    bin_size : int
        Levels (of 256) per bin and channel.

    Returns
    -------
    numpy.ndarray of int64
        ``(rows, cols)``.

    Examples
    --------
    >>> colour_bins(np.array([[[0, 0, 0], [7, 0, 0], [8, 0, 0], [255, 255, 255]]], np.uint8)).tolist()
    [[0, 0, 1, 2]]
    """
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    img = img[..., :3]
    levels = img if img.dtype == np.uint8 else np.clip(np.rint(img * 255.0), 0, 255)
    per_channel = -(-256 // int(bin_size))
    code = np.zeros(img.shape[:2], np.int64)
    for c in range(img.shape[-1]):
        code = code * per_channel + (levels[..., c].astype(np.int64) // int(bin_size))
    return np.unique(code.ravel(), return_inverse=True)[1].reshape(code.shape)


def overlap_weight(bins: np.ndarray, inside: np.ndarray, beta: float = BETA) -> float:
    """``w = beta |box| / Σ_k min(h_in(k), h_out(k))``: the pixel-to-bin link weight of the box ``inside``.

    Examples
    --------
    >>> bins = np.array([[0, 0, 1, 1]]); inside = np.array([[True, True, True, False]])
    >>> overlap_weight(bins, inside, beta=1.0)   # bin 1 is split 1 : 1
    3.0
    """
    n = int(bins.max()) + 1
    h_in = np.bincount(bins[inside], minlength=n)
    h_out = np.bincount(bins[~inside], minlength=n)
    overlap = float(np.minimum(h_in, h_out).sum())
    return beta * float(inside.sum()) / max(overlap, 1.0)


def onecut(image: np.ndarray, box: Box, potts: float = POTTS, bin_size: int = BIN_SIZE,
           beta: float = BETA, seeds=None) -> np.ndarray:
    """The object of ``box`` by OneCut's single max-flow.

    Parameters
    ----------
    image : numpy.ndarray
        ``(rows, cols[, channels])``, uint8 or float in [0, 1].
    box : Box
        Inside the image.
    potts, bin_size, beta
        See :data:`POTTS`, :data:`BIN_SIZE`, :data:`BETA`.
    seeds : numpy.ndarray, optional
        ``(rows, cols)`` hard labels: 1 object, 2 background (clicks, strokes).

    Returns
    -------
    numpy.ndarray of bool
        ``(rows, cols)``, False outside the box.

    Examples
    --------
    A red square on grey, boxed with a little room: OneCut finds it.

    >>> img = np.full((30, 30, 3), 0.5, np.float32); img[10:20, 10:20] = (0.9, 0.1, 0.1)
    >>> mask = onecut(img, Box(8, 8, 22, 22))
    >>> int(mask.sum()), bool(mask[10:20, 10:20].all())
    (100, True)
    """
    img = np.asarray(image)
    shape = img.shape[:2]
    n = shape[0] * shape[1]
    colour = img.astype(np.float32) if img.dtype != np.uint8 else img.astype(np.float32) / 255.0
    nlinks = graphcut.contrast_nlinks(
        [graphcut.neighbour_sqdiff(colour, off) for off in graphcut.OFFSETS_8], graphcut.OFFSETS_8, shape,
        potts, statistic="mean")
    edges = maxflow.EdgeList()
    i, j, w = nlinks.flat(cache=False)
    edges.add_edges(i, j, w, w)
    inside = box.mask(shape)
    bins = colour_bins(img, bin_size).ravel()
    link = np.full(n, overlap_weight(bins.reshape(shape), inside, beta))
    edges.add_edges(np.arange(n), n + bins, link, link)
    n_nodes = n + int(bins.max()) + 1
    src = np.zeros(n_nodes)
    snk = np.zeros(n_nodes)
    src[:n][inside.ravel()] = 1.0         # inside: background costs 1
    snk[:n][~inside.ravel()] = 1e9        # outside: background, hard
    if seeds is not None:
        flat = np.asarray(seeds).ravel()
        src[:n][flat == 1] = 1e9
        snk[:n][flat == 2] = 1e9
    return maxflow.min_cut(n_nodes, edges, src, snk, hpf=HPF)[:n].reshape(shape)


def _block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """``image`` shrunk by ``factor`` with block means (the last partial blocks averaged over what they hold)."""
    img = np.asarray(image, np.float32)
    rows, cols = img.shape[:2]
    r, c = -(-rows // factor), -(-cols // factor)
    pad = [(0, r * factor - rows), (0, c * factor - cols)] + [(0, 0)] * (img.ndim - 2)
    padded = np.pad(img, pad, mode="edge")
    return padded.reshape(r, factor, c, factor, *img.shape[2:]).mean(axis=(1, 3))


def onecut_fit(image: np.ndarray, box: Box, scale: int = SCALE, seeds=None, **params) -> np.ndarray:
    """OneCut's object of ``box``, solved on the image shrunk ``scale`` times, at full size.

    The mask seeds the box engine's colour models, so a coarse answer serves: at
    ``scale`` 2 a 481×321 photo's cut takes about a tenth of the time (the bin
    nodes' many links make the max-flow grow faster than the image). ``seeds``
    (1 object, 2 background) are hard labels; a coarse pixel takes a label when
    its block holds it and not the other.

    Returns
    -------
    numpy.ndarray of bool
        ``(rows, cols)``.

    Examples
    --------
    >>> img = np.full((40, 40, 3), 0.5, np.float32); img[10:30, 12:28] = (0.9, 0.1, 0.1)
    >>> mask = onecut_fit(img, Box(9, 11, 31, 29))
    >>> mask.shape, bool(mask[12:28, 14:26].all()), bool(mask[:8].any())
    ((40, 40), True, False)
    """
    img = np.asarray(image)
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    if scale <= 1:
        return onecut(img, box, seeds=seeds, **params)
    small = _block_mean(img, scale)
    small_box = Box(box.r0 // scale, box.c0 // scale, -(-box.r1 // scale), -(-box.c1 // scale))
    small_seeds = None
    if seeds is not None:
        seeds = np.asarray(seeds)
        obj = _block_mean(seeds == 1, scale) > 0
        bg = _block_mean(seeds == 2, scale) > 0
        small_seeds = np.where(obj & ~bg, 1, np.where(bg & ~obj, 2, 0))
        small_seeds[~small_box.mask(small_seeds.shape)] = 0  # the box's outside is background anyway
    mask = onecut(small, small_box, seeds=small_seeds, **params)
    full = np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)[: img.shape[0], : img.shape[1]]
    return full & box.mask(full.shape)


def onecut_first_fit(image: np.ndarray, box: Box, seeds: np.ndarray, fit: np.ndarray, **params) -> np.ndarray:
    """A box engine's first-fit labels with the box's inside taken from OneCut's object.

    :func:`onecut_fit` (with ``seeds`` as hard labels, ``params`` passed on), then
    :func:`first_fit_from`.

    Parameters
    ----------
    image : numpy.ndarray
        The image (uint8, or float in [0, 1]).
    box : Box
    seeds, fit : numpy.ndarray
        The box engine's hard seeds and first-fit labels
        (:func:`~napari_deepseg.core.prompts.boxcut.box_labels`).

    Examples
    --------
    >>> from napari_deepseg.core.prompts.boxcut import box_labels
    >>> img = np.full((40, 40, 3), 0.5, np.float32); img[10:30, 12:28] = (0.9, 0.1, 0.1)
    >>> box = Box(8, 10, 32, 30)
    >>> seeds, fit = box_labels(box, (40, 40))
    >>> new = onecut_first_fit(img, box, seeds, fit)
    >>> int(new[20, 20]), int(new[9, 11]), int(new[0, 0]), int((new == 0).sum())
    (1, 2, 2, 0)
    """
    return first_fit_from(onecut_fit(image, box, seeds=seeds, **params), box, seeds, fit)


def first_fit_from(found: np.ndarray, box: Box, seeds: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """``fit`` with the box's inside set to 1 on ``found`` and 2 elsewhere, the seeds keeping their labels.

    Where ``found`` labels the whole box one way, ``fit`` is returned as it is.

    Examples
    --------
    >>> box = Box(0, 1, 1, 4)
    >>> first_fit_from(np.array([[0, 1, 0, 0, 0]], bool), box, np.array([[2, 0, 0, 0, 2]]),
    ...                np.array([[2, 2, 1, 2, 2]])).tolist()
    [[2, 1, 2, 2, 2]]
    """
    inside = box.mask(seeds.shape)
    if not found[inside].any() or found[inside].all():
        return fit
    out = np.array(fit, copy=True)
    out[inside] = np.where(found[inside], SCRIBBLE_OBJECT, SCRIBBLE_BACKGROUND)
    out[seeds == SCRIBBLE_OBJECT] = SCRIBBLE_OBJECT
    out[seeds == SCRIBBLE_BACKGROUND] = SCRIBBLE_BACKGROUND
    return out
