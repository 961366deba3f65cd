"""The box engine: a box (with correcting clicks) as a GrabCut-style scribble cut.

A box says *the object lies inside*: every pixel outside it is a hard
background seed, the inside is unknown. The cut is the project's own scribble
energy (:class:`~napari_deepseg.core.cut.session.SegmentationSession`'s default
preset: colour mixture, contrast edges, star convexity, refits), with

* the appearance models first fitted on *the box's core = object; outside and
  the box's outer ring = background* (``fit_labels``; the core is the box shrunk
  by :data:`CORE_SHRINK` of its size on each side, the ring is the outer
  :data:`RING_BACKGROUND` of it: a box is drawn with some room around the
  object; the band between ring and core is left out of the first fit), then
  refitted from the cut GrabCut-style :data:`BOX_ITERATIONS` times;
* a soft prior against object pixels at the box's edge
  (:func:`box_edge_prior`: a cost rising to :data:`EDGE_PRIOR_WEIGHT` towards the
  box's sides over :data:`EDGE_PRIOR_WIDTH` of its size), so that background
  inside the box that is unlike the outside is not taken up to the edge;
* a small hard object seed at the box centre (a disk of :data:`CENTRE_RADIUS`),
  the centre of the star-convexity prior (a soft star of :data:`BOX_STAR_WEIGHT`),
  until a positive click gives the object a centre of its own (a negative click
  on the centre moves the seed to the free pixel farthest from every seed);
* when the box covers the whole image, the one-pixel image border stands for
  the background (as for clicks);
* **the tightness prior** for a box that looks tight (Lempitsky et al., ICCV
  2009: every row and column crossing a tight box holds an object pixel): when
  the first cut of a box alone (no clicks, no strokes) comes within
  :data:`TIGHT_GAP` of the box's size of at least :data:`TIGHT_SIDES` of its
  four sides, every box row and column still without an object pixel gets its
  most object-like pixel as a hard object seed and the cut (with its refits)
  is solved again, up to :data:`PIN_ROUNDS` times (:func:`pinpoint`). A box
  drawn with room around the object leaves gaps on its sides and is cut as
  before; the decision is made from the box's content, not from how it was drawn.

Clicks correct the same object in the same cut: positive clicks are object
disks, negative ones background disks (:func:`cut_box`; the click method
``graphcut`` measures their radii and calls it from
:meth:`~napari_deepseg.core.prompts.clickcut.GraphCutClicks.predict_box`). The
box itself, its parsing and checks, is :mod:`~napari_deepseg.core.prompts.box`.
What each choice was worth under the box protocol is in ``docs/benchmarks.md``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from scipy import ndimage

from .base import Click, paint_disk
from .box import Box
from ..cut.energy import costs_for, fit_appearance
from ..utils.progress import CancelToken, check
from ..utils.validation import SCRIBBLE_BACKGROUND, SCRIBBLE_OBJECT

#: GrabCut-style appearance refits of a box cut
BOX_ITERATIONS = 3
#: the first appearance fit takes the box shrunk by this fraction of its size on each side as the object
CORE_SHRINK = 0.2
#: the first fit's background takes the box's outer ring, this fraction of its size wide on each side
RING_BACKGROUND = 0.05
#: cost (in the appearance costs' nats) of an object pixel on the box's edge (:func:`box_edge_prior`)
EDGE_PRIOR_WEIGHT = 3.0
#: the edge prior falls to zero this fraction of the box's size in from each side
EDGE_PRIOR_WIDTH = 0.05
#: radius of the hard object seed at the box centre
CENTRE_RADIUS = 2
#: the star's weight in a box cut, with or without correcting clicks (issues 23 and 24: see ``docs/benchmarks.md``)
BOX_STAR_WEIGHT = 15.0
#: a box's side is touched when the first cut's object comes within this fraction of the box's size of it
#: (issue 32: the first cut of GrabCut's tight boxes leaves gaps of 0-1 % on most sides, of its 10 % margin boxes 8 %)
TIGHT_GAP = 0.02
#: a box alone is taken as tight when its first cut touches at least this many of its four sides
TIGHT_SIDES = 3
#: rounds of pins and cuts of a tight box (:func:`pinpoint`)
PIN_ROUNDS = 3


def cut_box(session, box: Box, shape, clicks: Sequence[Click] = (), radii: Sequence[int] = (), *,
            lam: Optional[float] = None, iterations: int = BOX_ITERATIONS,
            star_weight: Optional[float] = BOX_STAR_WEIGHT, strokes=None,
            cancel: Optional[CancelToken] = None, entry=None) -> np.ndarray:
    """Object mask of a box and the clicks (and strokes) correcting it, in one cut.

    A box alone that looks tight (:func:`looks_tight`) is pinpointed
    (:func:`pinpoint`) when ``entry`` is given.

    Parameters
    ----------
    session : SegmentationSession
        Set on the image, its default preset prepared.
    box : Box
        Inside the image (see :func:`~napari_deepseg.core.prompts.box.check_box`).
    shape : tuple
        ``(rows, cols)`` of the image.
    clicks, radii : sequence
        Correcting clicks (inside the image) and one disk radius per click.
    lam : float, optional
        Smoothness weight (the session's default when ``None``).
    iterations : int
        GrabCut-style appearance refits.
    star_weight : float, optional
        Cost of a broken star-convexity implication; ``None`` makes the star hard.
    strokes : numpy.ndarray, optional
        Scribbles painted over the clicks (see :func:`box_labels`).
    cancel : CancelToken, optional
        Checked between the cut's stages.
    entry : ImageFeatures, optional
        The session's current image (what ``session.set_image`` returned): the
        tightness prior fits its appearance model on it; ``None`` leaves the prior out.

    Returns
    -------
    numpy.ndarray of bool
        ``(rows, cols)`` object mask.
    """
    seeds, fit = box_labels(box, shape, clicks, radii, CENTRE_RADIUS, strokes=strokes)
    unary = box_edge_prior(box, shape)

    def cut() -> np.ndarray:
        return session.segment(seeds, lam=lam, iterations=iterations, cancel=cancel, fit_labels=fit,
                               unary=unary, star_weight=star_weight) == 1

    mask = cut()
    alone = not clicks and (strokes is None or not np.any(strokes))
    if entry is None or not alone or not looks_tight(mask, box):
        return mask
    for _ in range(PIN_ROUNDS):
        rows, cols = empty_lines(mask, box)
        if not rows.size and not cols.size:
            break
        check(cancel)
        pins = pinpoint(object_preference(entry, mask) + unary, box, rows, cols)
        seeds[pins] = SCRIBBLE_OBJECT
        fit[pins] = SCRIBBLE_OBJECT
        mask = cut()
    return mask


def side_gaps(mask: np.ndarray, box: Box) -> tuple:
    """Empty box lines between the mask and the box's top, bottom, left and right sides, as fractions of its size.

    Examples
    --------
    >>> m = np.zeros((10, 20), bool); m[1:10, 0:15] = True
    >>> side_gaps(m, Box(0, 0, 10, 20))
    (0.1, 0.0, 0.0, 0.25)
    """
    inside = np.asarray(mask, bool)[box.r0:box.r1, box.c0:box.c1]
    h, w = inside.shape
    rr, cc = np.flatnonzero(inside.any(1)), np.flatnonzero(inside.any(0))
    if not rr.size:
        return 1.0, 1.0, 1.0, 1.0
    return float(rr[0] / h), float((h - 1 - rr[-1]) / h), float(cc[0] / w), float((w - 1 - cc[-1]) / w)


def looks_tight(mask: np.ndarray, box: Box, gap: float = TIGHT_GAP, sides: int = TIGHT_SIDES) -> bool:
    """Whether the mask comes within ``gap`` of the box's size of at least ``sides`` of its four sides.

    Examples
    --------
    >>> m = np.zeros((10, 20), bool); m[1:10, 0:15] = True
    >>> looks_tight(m, Box(0, 0, 10, 20)), looks_tight(m, Box(0, 0, 10, 20), sides=2)
    (False, True)
    """
    return sum(g <= gap for g in side_gaps(mask, box)) >= sides


def empty_lines(mask: np.ndarray, box: Box) -> tuple:
    """Rows and columns of the box (image indices) that hold no object pixel inside it.

    Examples
    --------
    >>> m = np.zeros((4, 5), bool); m[1:3, 1:3] = True
    >>> [a.tolist() for a in empty_lines(m, Box(0, 0, 4, 4))]
    [[0, 3], [0, 3]]
    """
    inside = np.asarray(mask, bool)[box.r0:box.r1, box.c0:box.c1]
    return box.r0 + np.flatnonzero(~inside.any(1)), box.c0 + np.flatnonzero(~inside.any(0))


def object_preference(entry, mask: np.ndarray) -> np.ndarray:
    """Object minus background cost of every pixel under an appearance model fitted on ``mask`` against the rest."""
    labels = np.where(mask, SCRIBBLE_OBJECT, SCRIBBLE_BACKGROUND).astype(np.uint8)
    costs = costs_for(entry, fit_appearance(entry, labels))
    return costs[..., 0] - costs[..., 1]


def pinpoint(cost: np.ndarray, box: Box, rows, cols) -> tuple:
    """The pins of the tightness prior: in each given box row and column, its pixel of lowest ``cost`` in the box.

    Returns
    -------
    tuple of numpy.ndarray
        ``(rows, cols)`` image indices of the pins, the rows' first.

    Examples
    --------
    >>> cost = np.arange(20.0).reshape(4, 5)[:, ::-1]  # lowest on the right, then at the top
    >>> [a.tolist() for a in pinpoint(cost, Box(1, 1, 4, 4), [1], [2])]
    [[1, 1], [3, 2]]
    """
    inner = np.asarray(cost)[box.r0:box.r1, box.c0:box.c1]
    rows, cols = np.asarray(rows, int), np.asarray(cols, int)
    pin_c = box.c0 + np.argmin(inner[rows - box.r0], axis=1) if rows.size else np.zeros(0, int)
    pin_r = box.r0 + np.argmin(inner[:, cols - box.c0], axis=0) if cols.size else np.zeros(0, int)
    return np.concatenate([rows, pin_r]).astype(int), np.concatenate([pin_c, cols]).astype(int)


def box_labels(box: Box, shape, clicks: Sequence[Click] = (), radii: Sequence[int] = (),
               centre_radius: int = CENTRE_RADIUS, core_shrink: float = CORE_SHRINK, strokes=None,
               ring: float = RING_BACKGROUND) -> tuple:
    """Hard seeds and first-fit labels of a box (with clicks) for the scribble cut.

    Parameters
    ----------
    box : Box
        Inside the image (see :func:`check_box`).
    shape : tuple
        ``(rows, cols)``.
    clicks : sequence of Click
        Corrections: object (positive) and background (negative) disks.
    radii : sequence of int
        One disk radius per click.
    centre_radius : int
        Radius of the object seed at the box centre, used while no click (or
        stroke) is positive; when a negative click covers the centre, the seed goes
        to the free pixel farthest from every seed instead.
    core_shrink : float
        The first fit's object: the box shrunk by this fraction of its size on each side.
    strokes : numpy.ndarray, optional
        ``(rows, cols)`` scribbles (1 object, 2 background, 0 none) painted over the clicks;
        object strokes, like positive clicks, replace the centre seed.
    ring : float
        The first fit's background also takes the box's outer ring, this fraction
        of its size wide on each side (0 leaves the whole inside out of it).

    Returns
    -------
    seeds : numpy.ndarray of uint8
        ``(rows, cols)``: 2 outside the box (the image border when the box covers
        the whole image) and on negative clicks, 1 on positive clicks or the centre.
    fit : numpy.ndarray of uint8
        The appearance models' first fit: 2 where ``seeds`` is 2 and on the box's
        outer ring, 1 on the box's core and the object seeds (also where they lie
        on the ring), 0 (left out) elsewhere.

    Examples
    --------
    >>> seeds, fit = box_labels(Box(1, 1, 6, 6), (7, 7), centre_radius=0)
    >>> int((seeds == 2).sum()), int((seeds == 1).sum()), int(seeds[3, 3]), int((fit == 1).sum())
    (24, 1, 1, 9)
    >>> seeds, fit = box_labels(Box(0, 0, 40, 20), (40, 20), ring=0.1)
    >>> int((fit == 2).sum()), [int(fit[r, 10]) for r in (0, 3, 4, 20)]
    (288, [2, 2, 0, 1])
    """
    rows, cols = shape[:2]
    seeds = np.where(box.mask(shape), 0, SCRIBBLE_BACKGROUND).astype(np.uint8)
    if not seeds.any():
        seeds[[0, -1], :] = SCRIBBLE_BACKGROUND
        seeds[:, [0, -1]] = SCRIBBLE_BACKGROUND
    for click, radius in zip(clicks, radii):
        paint_disk(seeds, click.row, click.col, int(radius),
                   SCRIBBLE_OBJECT if click.positive else SCRIBBLE_BACKGROUND)
    has_object = any(c.positive for c in clicks)
    if strokes is not None:
        strokes = np.asarray(strokes)
        if strokes.shape != seeds.shape:
            raise ValueError(f"scribbles have shape {strokes.shape} but the image is {seeds.shape}")
        if not np.isin(strokes, (0, SCRIBBLE_OBJECT, SCRIBBLE_BACKGROUND)).all():
            raise ValueError("scribbles with a box take 0 (none), 1 (object) and 2 (background) only")
        seeds[strokes > 0] = strokes[strokes > 0]
        has_object = has_object or bool((strokes == SCRIBBLE_OBJECT).any())
    if not has_object:
        cr, cc = box.centre
        if seeds[cr, cc] != 0:  # a negative click covers the centre: the free pixel farthest from every seed
            free = seeds == 0
            if not free.any():
                raise ValueError("the background covers the whole box: add a positive click on the object")
            cr, cc = np.unravel_index(int(np.argmax(ndimage.distance_transform_edt(free))), free.shape)
        centre = np.zeros_like(seeds)
        paint_disk(centre, int(cr), int(cc), int(centre_radius), SCRIBBLE_OBJECT)
        seeds[(centre == SCRIBBLE_OBJECT) & (seeds == 0)] = SCRIBBLE_OBJECT
    fit = np.where(seeds == SCRIBBLE_BACKGROUND, SCRIBBLE_BACKGROUND, 0).astype(np.uint8)
    fit[box.mask(shape) & ~box.shrunk(ring).mask(shape)] = SCRIBBLE_BACKGROUND
    fit[box.shrunk(core_shrink).mask(shape) & (seeds != SCRIBBLE_BACKGROUND)] = SCRIBBLE_OBJECT
    fit[seeds == SCRIBBLE_OBJECT] = SCRIBBLE_OBJECT
    return seeds, fit


def box_edge_prior(box: Box, shape, weight: float = EDGE_PRIOR_WEIGHT, width: float = EDGE_PRIOR_WIDTH) -> np.ndarray:
    """Extra unary costs against object pixels near the box's edge.

    The cost of the object label is ``weight`` on the box's outermost pixels and
    falls linearly to 0 at ``width`` of the box's height (width) in from its top and
    bottom (left and right) sides; the background label costs nothing. A box is
    drawn with some room around the object, so background inside it that looks
    unlike the outside is not taken up to the edge; an object that reaches the
    edge still can, where its appearance says so.

    Parameters
    ----------
    box : Box
        Inside the image.
    shape : tuple
        ``(rows, cols)``.
    weight : float
        The cost on the box's edge, in the units of the appearance costs (nats).
    width : float
        The band's width, a fraction of the box's size (> 0).

    Returns
    -------
    numpy.ndarray of float32
        ``(rows, cols)``: the object costs, a one-channel unary (object minus
        background; see ``SegmentationSession.segment(unary=...)``).

    Examples
    --------
    >>> u = box_edge_prior(Box(0, 0, 10, 40), (10, 40), weight=2.0, width=0.2)
    >>> [float(u[r, c]) for r, c in ((0, 20), (5, 20), (5, 0), (5, 10))]
    [1.5, 0.0, 1.875, 0.0]
    """
    rows, cols = shape[:2]
    height, wide = box.shape
    r = np.arange(rows, dtype=np.float32)[:, None]
    c = np.arange(cols, dtype=np.float32)[None, :]
    from_rows = np.minimum(r - box.r0 + 0.5, box.r1 - 0.5 - r) / np.float32(width * height)
    from_cols = np.minimum(c - box.c0 + 0.5, box.c1 - 0.5 - c) / np.float32(width * wide)
    unary = np.float32(weight) * np.clip(1 - np.minimum(from_rows, from_cols), 0, 1)
    unary[~box.mask(shape)] = 0
    return unary
