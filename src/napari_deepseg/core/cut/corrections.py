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


class Strokes:
    """Strokes kept sparse: the flat indices of the labelled pixels and their labels.

    A trail keeps strokes this way: they cover a few per cent of an image at most,
    so a 25 MP image's strokes take kilobytes, and comparing two sets of strokes
    costs one pass over the new ones.

    Examples
    --------
    >>> s = Strokes.of(np.array([[0, 1], [2, 0]]))
    >>> s.index.tolist(), s.label.tolist(), s.shape
    ([1, 2], [1, 2], (2, 2))
    """

    def __init__(self, shape: tuple, index: np.ndarray, label: np.ndarray):
        self.shape, self.index, self.label = tuple(shape), index, label

    @classmethod
    def of(cls, strokes) -> "Strokes":
        strokes = np.asarray(strokes)
        index = np.flatnonzero(strokes)
        return cls(strokes.shape, index, strokes.ravel()[index])

    def __eq__(self, other) -> bool:
        return (isinstance(other, Strokes) and self.shape == other.shape
                and np.array_equal(self.index, other.index) and np.array_equal(self.label, other.label))

    __hash__ = None

    def added_to(self, before: "Strokes") -> Optional[np.ndarray]:
        """Flat indices of the pixels these strokes add to ``before`` (sorted), or ``None`` when it is not a
        correction: a pixel of ``before`` erased, another shape, or nothing added.

        A pixel is added where it is labelled here and ``before`` left it free or gave it
        another label (painting over).
        """
        if self.shape != before.shape:
            return None
        at = np.searchsorted(self.index, before.index)
        found = at < self.index.size
        found[found] = self.index[at[found]] == before.index[found]
        if not found.all():  # a stroke pixel was erased
            return None
        repainted = before.index[self.label[at] != before.label]
        new = np.setdiff1d(self.index, before.index, assume_unique=True)
        added = np.union1d(new, repainted)
        return added if added.size else None


def added_strokes(before: np.ndarray, after: np.ndarray) -> Optional[np.ndarray]:
    """The stroke pixels ``after`` adds to ``before``, or ``None`` when it is not a correction.

    A pixel is added where ``after`` labels it and ``before`` left it free or gave
    it another label (painting over). ``None`` when a stroke pixel was erased, the
    shapes differ, or nothing was added (:meth:`Strokes.added_to` on dense arrays).

    Examples
    --------
    >>> before = np.array([[1, 0, 0, 2]])
    >>> added_strokes(before, np.array([[1, 2, 0, 2]])).astype(int).tolist()
    [[0, 1, 0, 0]]
    >>> added_strokes(before, np.array([[0, 2, 0, 2]])) is None   # the object stroke was erased
    True
    """
    added = Strokes.of(after).added_to(Strokes.of(before))
    if added is None:
        return None
    mask = np.zeros(np.shape(after), bool)
    mask.ravel()[added] = True
    return mask


def _added_in(added: np.ndarray, shape: tuple, box: tuple) -> np.ndarray:
    """A bool crop of ``box`` holding the ``added`` pixels (a bool image, or sorted flat indices of one)."""
    if added.dtype == bool:
        return added[box]
    rows, cols = np.divmod(added, shape[1])
    inside = (rows >= box[0].start) & (rows < box[0].stop) & (cols >= box[1].start) & (cols < box[1].stop)
    crop = np.zeros((box[0].stop - box[0].start, box[1].stop - box[1].start), bool)
    crop[rows[inside] - box[0].start, cols[inside] - box[1].start] = True
    return crop


def _keep_touching(before, after, added, touch: int) -> tuple:
    """:func:`keep_touching` and the number of pixels it gave back their ``before`` label."""
    changed = np.not_equal(before, after)
    boxes = ndi.find_objects(changed.view(np.uint8))  # the box of the changed pixels, if any
    if not boxes:
        return after, 0
    box = boxes[0]
    shape = np.shape(after)
    grown = tuple(slice(max(0, s.start - touch), min(n, s.stop + touch)) for s, n in zip(box, shape))
    regions, n = ndi.label(changed[box], structure=np.ones((3, 3), bool))
    near = _added_in(added, shape, grown)
    if touch > 0 and near.any():
        near = ndi.binary_dilation(near, structure=np.ones((3, 3), bool), iterations=touch)
    offset = (box[0].start - grown[0].start, box[1].start - grown[1].start)
    near = near[offset[0]: offset[0] + regions.shape[0], offset[1]: offset[1] + regions.shape[1]]
    taken = np.zeros(n + 1, bool)
    taken[np.unique(regions[near])] = True
    taken[0] = True  # unchanged pixels: after == before there
    if taken.all():
        return after, 0
    far = ~taken[regions]
    out = np.array(after, copy=True)
    out[box][far] = np.asarray(before)[box][far]
    return out, int(np.count_nonzero(far))


def keep_touching(before: np.ndarray, after: np.ndarray, added: np.ndarray, touch: int = TOUCH) -> np.ndarray:
    """``after`` where its change from ``before`` touches the new strokes, ``before`` everywhere else.

    The pixels whose label differs between the two answers are split into
    8-connected regions; a region with a pixel within ``touch`` pixels (8-connected
    steps) of an ``added`` stroke pixel takes its new labels, every other region
    keeps the labels of ``before``. The work past one comparison of the two answers
    is confined to the box of the changed pixels (a local update's window on a large image).

    Parameters
    ----------
    before, after : numpy.ndarray of int
        The last answer and the new one, same shape.
    added : numpy.ndarray
        The new stroke pixels: a bool image (:func:`added_strokes`), or the sorted
        flat indices of them (:meth:`Strokes.added_to`).
    touch : int
        How near a region must come to a new stroke pixel.

    Returns
    -------
    numpy.ndarray
        ``after`` itself when every changed region touches a new stroke, else a new
        label image (``after``'s dtype).

    Examples
    --------
    A background dab on a leak (left) also flipped a far part of the object (right):
    only the leak goes.

    >>> before = np.array([[1, 1, 1, 0, 1, 1]])
    >>> after = np.array([[0, 0, 1, 0, 0, 0]])
    >>> keep_touching(before, after, np.array([[1, 0, 0, 0, 0, 0]], bool)).tolist()
    [[0, 0, 1, 0, 1, 1]]
    >>> keep_touching(before, after, np.array([0])).tolist()   # the same dab as a flat index
    [[0, 0, 1, 0, 1, 1]]
    """
    return _keep_touching(before, after, added, touch)[0]


@dataclass
class Trail:
    """A session's last answer on one image, for the next request to be read as a correction of it.

    Attributes
    ----------
    image, key
        The image's key and the request's parameters (preset, λ, σ, iterations).
    strokes : Strokes
        The strokes answered (sparse).
    labels : numpy.ndarray
        The labels given (after :func:`keep_touching`).
    base : tuple or None
        ``(Strokes, labels)`` the answer was kept near (``None``: a fresh answer).
    """

    image: str
    key: tuple
    strokes: Strokes
    labels: np.ndarray
    base: Optional[tuple] = None


def correction_base(trail: Optional[Trail], image: str, key: tuple, strokes) -> Optional[tuple]:
    """``(base, added)``: the answer a request corrects, ``(Strokes, labels)``, and the flat indices of the
    stroke pixels added to its strokes (:meth:`Strokes.added_to`); ``None`` for a fresh answer.

    The same strokes as the last answer (a refit of it) correct what it corrected;
    strokes that only add to the last answer's correct that answer; anything else
    (another image or parameters, an erased stroke) is fresh.

    Examples
    --------
    >>> first = np.array([[1, 0, 2]])
    >>> trail = Trail("img", ("default",), Strokes.of(first), np.array([[1, 1, 0]]))
    >>> base, added = correction_base(trail, "img", ("default",), np.array([[1, 2, 2]]))
    >>> base[1].tolist(), added.tolist()
    ([[1, 1, 0]], [1])
    >>> correction_base(trail, "img", ("seed",), np.array([[1, 2, 2]])) is None
    True
    """
    if trail is None or trail.image != image or trail.key != key:
        return None
    strokes = strokes if isinstance(strokes, Strokes) else Strokes.of(strokes)
    base = trail.base if strokes == trail.strokes else (trail.strokes, trail.labels)
    added = None if base is None else strokes.added_to(base[0])
    return None if added is None else (base, added)


def answer(trail: Optional[Trail], image: str, key: tuple, strokes: np.ndarray, labels: np.ndarray,
           ) -> tuple:
    """``(labels, Trail, kept)``: the new answer kept near its new strokes when it corrects the last one.

    ``kept`` counts the pixels where the answer keeps the last one's label against
    the cut (0: the answer is the cut of the strokes alone). The trail holds a copy
    of the labels (the caller may write into the ones it gets) and the strokes as
    :class:`Strokes`.

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
    sparse = Strokes.of(strokes)
    found = correction_base(trail, image, key, sparse)
    base, kept = None, 0
    if found is not None:
        base, added = found
        labels, kept = _keep_touching(base[1], labels, added, TOUCH)
    return labels, Trail(image, key, sparse, np.array(labels, copy=True), base), kept
