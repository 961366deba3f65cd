"""The click engine's promises, checked on every mask of a protocol (issue 24).

``docs/point-prompts.md`` states what a mask of the ``graphcut`` engine promises:

* every piece of it (8-connected) holds a positive click, or lies in the box;
* a negative click on the object removes what it lands on;
* a positive click on a missed part adds what it lands on.

:func:`broken_promises` checks one mask against the mask before it and the
prompts; :class:`PromiseWatch` wraps a click method and counts every broken
promise of every mask it returns, so the published protocols
(:func:`~napari_deepseg.core.evaluation.benchmark.run_click_protocol`,
:func:`~napari_deepseg.core.evaluation.benchmark.run_box_protocol`) check them
click by click (``napari-deepseg benchmark --check-promises``).

A correction makes one more promise (issue 32): it stays where it is made. A
background stroke removes the leak it touches, not the object behind it; an
object stroke adds the part it touches, not a wedge of background.
:func:`far_changes` counts the pixels a corrective stroke turned from correct to
wrong farther than :func:`far_change_distance` from it, and
:func:`correction_promise` says whether they break the promise (more than
:func:`far_change_limit`); the corrective-stroke protocol
(:func:`~napari_deepseg.core.evaluation.benchmark.run_correction_protocol`,
``napari-deepseg benchmark --protocol corrections``) checks every stroke.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np

from ..prompts.base import Click, ClickMethod

#: the unknown band of a reference mask (GrabCut's 128), left out of the far-change count
IGNORE = 128
#: a pixel is *far* from a corrective stroke of radius r beyond ``FAR_FACTOR * r + FAR_MARGIN`` px of its disk
FAR_FACTOR = 3
FAR_MARGIN = 10
#: a stroke breaks the far-change promise when it changes more than the larger of these far pixels from
#: correct to wrong: ``FAR_MIN_PIXELS``, or ``FAR_SHARE`` of the reference object's area
FAR_MIN_PIXELS = 100
FAR_SHARE = 0.005


def broken_promises(previous: Optional[np.ndarray], mask: np.ndarray, clicks: Sequence[Click],
                    box=None) -> dict:
    """Which promises ``mask`` breaks, answering ``clicks`` (the last one new) after ``previous``.

    Parameters
    ----------
    previous : numpy.ndarray of bool or None
        The mask before the last click (``None``: no mask yet).
    mask : numpy.ndarray of bool
        The mask answering all of ``clicks`` (and ``box``).
    clicks : sequence of Click
        The clicks so far, the newest last (may be empty for a box alone).
    box : Box, optional
        The box the mask answers too.

    Returns
    -------
    dict
        ``stray_piece``: a piece holds no positive click and leaves the box (or there
        is no box); ``negative_kept``: the newest click is negative, landed on the
        previous mask's object and is object still; ``positive_lost``: the newest
        click is positive, landed on the previous mask's background and is
        background still. ``negative_on_object`` and ``positive_on_missed`` say
        whether the newest click was such a correction at all.

    Examples
    --------
    >>> m = np.zeros((5, 9), bool); m[1:4, 1:3] = True; m[1:4, 6:8] = True   # two pieces
    >>> broken_promises(None, m, [Click(2, 1, True)])["stray_piece"]
    True
    >>> broken_promises(None, m, [Click(2, 1, True), Click(2, 7, True)])["stray_piece"]
    False
    """
    from scipy import ndimage as ndi

    mask = np.asarray(mask, bool)
    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    held = np.zeros(n + 1, bool)
    for c in clicks:
        if c.positive:
            held[labels[c.row, c.col]] = True
    if box is not None:  # pieces that lie in the box keep the box's promise
        outside = labels.copy()
        outside[max(box.r0, 0):max(box.r1, 0), max(box.c0, 0):max(box.c1, 0)] = 0
        held[np.setdiff1d(np.arange(1, n + 1), np.unique(outside))] = True
    out = {"stray_piece": bool(n and not held[1:].all()), "negative_on_object": False, "negative_kept": False,
           "positive_on_missed": False, "positive_lost": False}
    if clicks and previous is not None:
        last = clicks[-1]
        was, now = bool(previous[last.row, last.col]), bool(mask[last.row, last.col])
        if not last.positive and was:
            out["negative_on_object"], out["negative_kept"] = True, now
        if last.positive and not was:
            out["positive_on_missed"], out["positive_lost"] = True, not now
    return out


@dataclass
class PromiseCounts:
    """How many masks a protocol produced, and how many broke each promise."""

    masks: int = 0
    stray_pieces: int = 0
    negatives_on_object: int = 0
    negatives_kept: int = 0
    positives_on_missed: int = 0
    positives_lost: int = 0

    @property
    def broken(self) -> int:
        """Every broken promise counted."""
        return self.stray_pieces + self.negatives_kept + self.positives_lost

    def add(self, found: dict) -> None:
        """Count one mask's :func:`broken_promises`."""
        self.masks += 1
        self.stray_pieces += found["stray_piece"]
        self.negatives_on_object += found["negative_on_object"]
        self.negatives_kept += found["negative_kept"]
        self.positives_on_missed += found["positive_on_missed"]
        self.positives_lost += found["positive_lost"]

    def as_dict(self) -> dict:
        return {**asdict(self), "broken": self.broken}


class PromiseWatch(ClickMethod):
    """A click method that checks every mask it returns (:func:`broken_promises`) and counts what it finds.

    Parameters
    ----------
    method : ClickMethod
        The engine to watch (its answers are returned unchanged).
    """

    def __init__(self, method: ClickMethod):
        self.method = method
        self.name = method.name
        self.takes_box = method.takes_box
        self.counts = PromiseCounts()
        #: ``(image index, number of clicks, what was broken)`` of every mask that broke a promise
        self.failures: list = []
        self._previous: Optional[np.ndarray] = None
        self._image = -1

    def set_image(self, image, progress=None, cancel=None) -> None:
        self._previous = None
        self._image += 1
        self.method.set_image(image, progress=progress, cancel=cancel)

    def predict(self, clicks, cancel=None) -> np.ndarray:
        return self._watch(self.method.predict(clicks, cancel=cancel), clicks, None)

    def predict_box(self, box, clicks=(), cancel=None) -> np.ndarray:
        return self._watch(self.method.predict_box(box, clicks, cancel=cancel), clicks, box)

    def _watch(self, mask, clicks, box) -> np.ndarray:
        mask = np.asarray(mask, bool)
        found = broken_promises(self._previous, mask, list(clicks), box)
        self.counts.add(found)
        broken = [k for k in ("stray_piece", "negative_kept", "positive_lost") if found[k]]
        if broken:
            self.failures.append((self._image, len(clicks), broken))
        self._previous = mask
        return mask


# -- corrections (issue 32) ----------------------------------------------------

def far_change_distance(radius: float) -> float:
    """How far from a corrective stroke of ``radius`` px a change counts as far: ``3 r + 10`` px.

    A stroke moves the boundary it touches, and the boundary next to it follows
    (the smoothness term); 3 radii and 10 px more hold that, 16 px for the
    protocol's smallest dab (r = 2) and 34 px for its largest (r = 8).

    Examples
    --------
    >>> far_change_distance(2), far_change_distance(8)
    (16.0, 34.0)
    """
    return float(FAR_FACTOR * radius + FAR_MARGIN)


def far_change_limit(truth, ignore: Optional[int] = IGNORE) -> int:
    """The most far pixels a correction may turn wrong: 100, or 0.5 % of the reference object's area if larger.

    Examples
    --------
    >>> truth = np.zeros((300, 300), np.uint8); truth[:, :200] = 255
    >>> far_change_limit(truth), far_change_limit(truth[:50, :50])
    (300, 100)
    """
    truth = np.asarray(truth)
    area = int(((truth != 0) & (truth != ignore)).sum()) if ignore is not None else int((truth != 0).sum())
    return max(FAR_MIN_PIXELS, int(np.ceil(FAR_SHARE * area)))


def far_changes(before, after, truth, stroke, distance: float, ignore: Optional[int] = IGNORE) -> int:
    """Pixels a correction turned from correct to wrong farther than ``distance`` from its stroke.

    Parameters
    ----------
    before, after : numpy.ndarray of bool
        The object mask before and after the corrective stroke.
    truth : numpy.ndarray
        Reference mask: non-zero object, ``ignore`` unknown (not counted).
    stroke : numpy.ndarray of bool
        The pixels the stroke painted.
    distance : float
        Pixels at a Euclidean distance of at most this from the stroke are near and not counted.
    ignore : int, optional

    Returns
    -------
    int

    Examples
    --------
    A background dab at the right edge of a square; the mask after it loses the
    square's left half (a wedge, far from the dab) or only the dab's own pixels:

    >>> truth = np.zeros((40, 40), np.uint8); truth[10:30, 10:30] = 255
    >>> before = truth > 0
    >>> dab = np.zeros((40, 40), bool); dab[19:21, 28:30] = True
    >>> wedge = before.copy(); wedge[:, :20] = False
    >>> local = before & ~dab
    >>> far_changes(before, wedge, truth, dab, 8.0), far_changes(before, local, truth, dab, 8.0)
    (200, 0)
    """
    from scipy import ndimage as ndi

    truth = np.asarray(truth)
    before, after, stroke = (np.asarray(a, bool) for a in (before, after, stroke))
    shapes = {a.shape for a in (before, after, stroke, truth)}
    if len(shapes) != 1:
        raise ValueError(f"before, after, truth and stroke must have one shape, got {sorted(shapes)}")
    if not stroke.any():
        raise ValueError("stroke paints no pixel")
    valid = np.ones(truth.shape, bool) if ignore is None else truth != ignore
    obj = truth != 0
    turned_wrong = (before == obj) & (after != obj) & valid
    far = ndi.distance_transform_edt(~stroke) > distance
    return int((turned_wrong & far).sum())


def correction_promise(before, after, truth, stroke, radius: float, ignore: Optional[int] = IGNORE) -> dict:
    """Whether a corrective stroke of ``radius`` px stayed where it was made.

    Returns
    -------
    dict
        ``far_changed``: :func:`far_changes` beyond :func:`far_change_distance` of the
        stroke; ``distance`` that distance; ``limit``: :func:`far_change_limit`;
        ``broken``: ``far_changed > limit``.

    Examples
    --------
    >>> truth = np.zeros((60, 60), np.uint8); truth[10:50, 10:50] = 255
    >>> dab = np.zeros((60, 60), bool); dab[29:31, 48:50] = True
    >>> wedge = truth > 0; wedge[:, :30] = False          # 800 correct pixels lost, far from the dab
    >>> correction_promise(truth > 0, wedge, truth, dab, radius=2)
    {'far_changed': 800, 'distance': 16.0, 'limit': 100, 'broken': True}
    """
    distance = far_change_distance(radius)
    count = far_changes(before, after, truth, stroke, distance, ignore)
    limit = far_change_limit(truth, ignore)
    return {"far_changed": count, "distance": distance, "limit": limit, "broken": count > limit}
