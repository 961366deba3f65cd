"""A correction stays where it is made (issue 32).

A user who sees a small leak dabs it with a background stroke and expects the
leak to go, not a wedge of the object behind it, nor the eyes of a doll on the
other side of the image. A whole cut answers every request from the strokes
alone: its colour model is fitted again, and a few new stroke pixels can tip
it into another labelling far from them. Here a request whose strokes only
*add* to the last answered ones (nothing erased, the same parameters) is a
*correction* of that answer: of the regions where the new answer differs from
the last one (8-connected), those that touch a new stroke pixel (within
:data:`TOUCH` pixels) are taken, every other pixel keeps its last label
(:func:`keep_touching`). The cut itself is unchanged; only what reaches the user
is.

:class:`Trail` is what a session keeps of its last answer on an image to decide
this; :func:`correction_base` says which answer a request corrects. A second
answer to the *same* strokes (the widget's background refit after a quick
answer) corrects the same base as the first one did, so the refit does not bring
back the far changes the quick answer left out.

Measured on GrabCut's 50 photos, set-1 scribbles, one corrective stroke
(``napari-deepseg benchmark --protocol corrections``): see ``docs/benchmarks.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage as ndi

#: a region of change within this many pixels of a new stroke pixel is the stroke's own (8-connected)
TOUCH = 2


def added_strokes(before: np.ndarray, after: np.ndarray) -> Optional[np.ndarray]:
    """The stroke pixels ``after`` adds to ``before``, or ``None`` when it is not a correction.

    A pixel is added where ``after`` labels it and ``before`` left it free or gave
    it another label (painting over). ``None`` when a stroke pixel was erased, the
    shapes differ, or nothing was added.

    Examples
    --------
    >>> before = np.array([[1, 0, 0, 2]])
    >>> added_strokes(before, np.array([[1, 2, 0, 2]])).astype(int).tolist()
    [[0, 1, 0, 0]]
    >>> added_strokes(before, np.array([[0, 2, 0, 2]])) is None   # the object stroke was erased
    True
    """
    if before.shape != after.shape or np.any((before > 0) & (after == 0)):
        return None
    added = (after > 0) & (after != before)
    return added if added.any() else None


def _changed_box(changed: np.ndarray):
    """The smallest ``(row slice, col slice)`` holding every changed pixel (``None`` when none changed)."""
    rows = np.flatnonzero(changed.any(axis=1))
    if not rows.size:
        return None
    cols = np.flatnonzero(changed[rows[0]: rows[-1] + 1].any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def keep_touching(before: np.ndarray, after: np.ndarray, added: np.ndarray, touch: int = TOUCH) -> np.ndarray:
    """``after`` where its change from ``before`` touches the new strokes, ``before`` everywhere else.

    The pixels whose label differs between the two answers are split into
    8-connected regions; a region with a pixel within ``touch`` pixels (8-connected
    steps) of an ``added`` stroke pixel takes its new labels, every other region
    keeps the labels of ``before``. The work is confined to the box of the
    changed pixels (a local update's window on a large image).

    Parameters
    ----------
    before, after : numpy.ndarray of int
        The last answer and the new one, same shape.
    added : numpy.ndarray of bool
        The new stroke pixels (:func:`added_strokes`).
    touch : int
        How near a region must come to a new stroke pixel.

    Returns
    -------
    numpy.ndarray
        A new label image (``after``'s dtype).

    Examples
    --------
    A background dab on a leak (left) also flipped a far part of the object (right):
    only the leak goes.

    >>> before = np.array([[1, 1, 1, 0, 1, 1]])
    >>> after = np.array([[0, 0, 1, 0, 0, 0]])
    >>> keep_touching(before, after, np.array([[1, 0, 0, 0, 0, 0]], bool)).tolist()
    [[0, 0, 1, 0, 1, 1]]
    """
    changed = before != after
    box = _changed_box(changed)
    out = np.array(after, copy=True)
    if box is None:
        return out
    grown = tuple(slice(max(0, s.start - touch), s.stop + touch) for s in box)
    regions, n = ndi.label(changed[box], structure=np.ones((3, 3), bool))
    near = added[grown]
    if touch > 0 and near.any():
        near = ndi.binary_dilation(near, structure=np.ones((3, 3), bool), iterations=touch)
    offset = (box[0].start - grown[0].start, box[1].start - grown[1].start)
    near = near[offset[0]: offset[0] + regions.shape[0], offset[1]: offset[1] + regions.shape[1]]
    taken = np.zeros(n + 1, bool)
    taken[np.unique(regions[near])] = True
    taken[0] = True  # unchanged pixels: after == before there
    far = ~taken[regions]
    out[box][far] = np.asarray(before)[box][far]
    return out


@dataclass
class Trail:
    """A session's last answer on one image, for the next request to be read as a correction of it.

    Attributes
    ----------
    image, key
        The image's key and the request's parameters (preset, λ, σ, iterations).
    strokes, labels : numpy.ndarray
        The strokes answered and the labels given (after :func:`keep_touching`).
    base : tuple or None
        ``(strokes, labels)`` the answer was kept near (``None``: a fresh answer).
    """

    image: str
    key: tuple
    strokes: np.ndarray
    labels: np.ndarray
    base: Optional[tuple] = None


def correction_base(trail: Optional[Trail], image: str, key: tuple, strokes: np.ndarray) -> Optional[tuple]:
    """``(strokes, labels)`` of the answer a request corrects, or ``None`` for a fresh answer.

    The same strokes as the last answer (a refit of it) correct what it corrected;
    strokes that only add to the last answer's correct that answer; anything else
    (another image or parameters, an erased stroke) is fresh.

    Examples
    --------
    >>> first = np.array([[1, 0, 2]])
    >>> trail = Trail("img", ("default",), first, np.array([[1, 1, 0]]))
    >>> base = correction_base(trail, "img", ("default",), np.array([[1, 2, 2]]))
    >>> base[1].tolist()
    [[1, 1, 0]]
    >>> correction_base(trail, "img", ("seed",), np.array([[1, 2, 2]])) is None
    True
    """
    if trail is None or trail.image != image or trail.key != key or trail.strokes.shape != strokes.shape:
        return None
    if np.array_equal(trail.strokes, strokes):
        return trail.base
    if added_strokes(trail.strokes, strokes) is None:
        return None
    return trail.strokes, trail.labels


def answer(trail: Optional[Trail], image: str, key: tuple, strokes: np.ndarray, labels: np.ndarray,
           ) -> tuple:
    """``(labels, Trail, kept)``: the new answer kept near its new strokes when it corrects the last one.

    ``kept`` counts the pixels where the answer keeps the last one's label against
    the cut (0: the answer is the cut of the strokes alone).

    Examples
    --------
    >>> s1 = np.array([[1, 0, 0, 0, 0, 0, 0, 2]])
    >>> labels, trail, kept = answer(None, "img", (), s1, np.array([[1, 1, 1, 0, 0, 0, 1, 0]]))
    >>> s2 = s1.copy(); s2[0, 2] = 2          # a background dab on the leak at column 2
    >>> labels, trail, kept = answer(trail, "img", (), s2, np.array([[1, 1, 0, 0, 0, 0, 0, 0]]))
    >>> labels.tolist(), kept                  # column 6 is far from the dab: it keeps its label
    ([[1, 1, 0, 0, 0, 0, 1, 0]], 1)
    >>> answer(trail, "img", (), s2, np.array([[1, 1, 0, 0, 0, 0, 0, 0]]))[0].tolist()  # the refit: same
    [[1, 1, 0, 0, 0, 0, 1, 0]]
    """
    strokes = np.array(strokes, copy=True)
    base = correction_base(trail, image, key, strokes)
    kept = 0
    if base is not None:
        added = added_strokes(base[0], strokes)
        if added is not None:
            cut, labels = labels, keep_touching(base[1], labels, added)
            kept = int(np.count_nonzero(labels != cut))
    return labels, Trail(image, key, strokes, np.array(labels, copy=True), base), kept
