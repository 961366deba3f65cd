"""The project's graph cut driven by clicks (click method ``graphcut``)."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .clicks import Click, ClickMethod, check_clicks, register_click_method
from .progress import CancelToken, ProgressCallback
from .session import DEFAULT_ITERATIONS, SegmentationSession
from .validation import SCRIBBLE_BACKGROUND, SCRIBBLE_OBJECT

#: radius in pixels of the disk a click paints as a seed
CLICK_RADIUS = 5


def paint_disk(labels: np.ndarray, row: int, col: int, radius: int, value: int) -> None:
    """Paint a filled disk of ``value`` into ``labels`` in place (clipped to the image).

    Examples
    --------
    >>> a = np.zeros((5, 5), np.uint8); paint_disk(a, 2, 2, 1, 7); int(a.sum())
    35
    """
    rows, cols = labels.shape
    r0, r1 = max(row - radius, 0), min(row + radius + 1, rows)
    c0, c1 = max(col - radius, 0), min(col + radius + 1, cols)
    yy, xx = np.ogrid[r0:r1, c0:c1]
    disk = (yy - row) ** 2 + (xx - col) ** 2 <= radius * radius
    labels[r0:r1, c0:c1][disk] = value


def click_seeds(clicks: Sequence[Click], shape, radius: int = CLICK_RADIUS) -> np.ndarray:
    """Scribble image of clicks: a disk of 1 (object) or 2 (background) per click.

    Later clicks paint over earlier ones, as a user's later stroke would.
    """
    seeds = np.zeros(shape[:2], np.uint8)
    for c in clicks:
        paint_disk(seeds, c.row, c.col, radius, SCRIBBLE_OBJECT if c.positive else SCRIBBLE_BACKGROUND)
    return seeds


@register_click_method("graphcut")
class GraphCutClicks(ClickMethod):
    """Clicks as disk seeds for :class:`~napari_deepseg.core.session.SegmentationSession`.

    Parameters
    ----------
    features : str
        Backbone of the session (``classic``, ``rgb``, ``resnet50``, ...).
    radius : int
        Disk radius of a click seed.
    **backbone_params
        Passed to the backbone.
    """

    def __init__(self, features: str = "classic", radius: int = CLICK_RADIUS, border: str = "hard-until-negative",
                 distance_weight: float = 0.0, iterations: int = DEFAULT_ITERATIONS, lam=None, **backbone_params):
        self.session = SegmentationSession(features, **backbone_params)
        self.radius = int(radius)
        self.border = border
        self.distance_weight = float(distance_weight)
        self.iterations = int(iterations)
        self.lam = lam
        self._shape = None

    def set_image(self, image, progress: Optional[ProgressCallback] = None,
                  cancel: Optional[CancelToken] = None) -> None:
        entry = self.session.set_image(image, progress=progress, cancel=cancel)
        self.session.prepare_default(self.lam)
        self._shape = entry.shape

    def predict(self, clicks: Sequence[Click], cancel: Optional[CancelToken] = None) -> np.ndarray:
        if self._shape is None:
            raise RuntimeError("no image set: call set_image(image) before predict()")
        clicks = check_clicks(clicks, self._shape)
        seeds = click_seeds(clicks, self._shape, self.radius)
        border = np.zeros(self._shape, bool)
        border[[0, -1], :] = border[:, [0, -1]] = True
        border &= seeds == 0
        has_negative = (seeds == SCRIBBLE_BACKGROUND).any()
        fit = None
        if self.border == "hard" or not has_negative:
            seeds[border] = SCRIBBLE_BACKGROUND
        elif self.border == "soft":
            fit = seeds.copy()
            fit[border] = SCRIBBLE_BACKGROUND
        unary = None
        if self.distance_weight > 0:
            unary = self._distance_unary(clicks)
        return self.session.segment(seeds, lam=self.lam, iterations=self.iterations, cancel=cancel, unary=unary,
                                    fit_labels=fit) == 1

    def _distance_unary(self, clicks):
        from scipy import ndimage

        pos = np.ones(self._shape, bool)
        for c in clicks:
            if c.positive:
                pos[c.row, c.col] = False
        d = ndimage.distance_transform_edt(pos)
        scale = 0.25 * float(np.hypot(*self._shape))
        unary = np.zeros((*self._shape, 2), np.float32)
        unary[..., 0] = self.distance_weight * np.minimum(d / scale, 2.0)
        return unary
