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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np

from ..prompts.base import Click, ClickMethod


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
