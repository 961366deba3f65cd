"""Clicks as input: one interface every click-driven method of the project implements.

A *click method* is set on an image once (the expensive step, e.g. features)
and then answers a list of positive and negative clicks with a binary mask.
The click benchmark (:mod:`napari_deepseg.core.evaluation.benchmark`), the CLI and the
widgets drive every method through this interface only, so a new method is
measured the same way as the others by registering it where it is defined
(and importing its module once in :mod:`napari_deepseg.core.prompts`)::

    @register_click_method("my-method")
    class MyMethod(ClickMethod):
        def set_image(self, image, progress=None, cancel=None): ...
        def predict(self, clicks, cancel=None): ...
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from ..utils.progress import CancelToken, ProgressCallback


@dataclass(frozen=True)
class Click:
    """One click in napari's ``(row, col)`` order.

    Attributes
    ----------
    row, col : int
        Pixel position.
    positive : bool
        ``True`` for "object here", ``False`` for "not object here".
    """

    row: int
    col: int
    positive: bool = True


def paint_disk(labels: np.ndarray, row: int, col: int, radius: int, value) -> None:
    """Paint a filled disk of ``value`` into ``labels`` in place (clipped to the image).

    The one disk of the project's click prompts: the pixels within ``radius``
    (Euclidean, inclusive) of ``(row, col)``.

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


def clicks_from_arrays(points, positive) -> list:
    """Clicks from an ``(n, 2)`` array of ``(row, col)`` and ``n`` booleans.

    Coordinates are rounded to the nearest pixel.

    Examples
    --------
    >>> clicks_from_arrays([[1.4, 2.6]], [True])
    [Click(row=1, col=3, positive=True)]
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    pos = np.asarray(positive, dtype=bool).reshape(-1)
    if pos.size != pts.shape[0]:
        raise ValueError(f"got {pts.shape[0]} points but {pos.size} positive/negative flags")
    return [Click(int(round(r)), int(round(c)), bool(p)) for (r, c), p in zip(pts, pos)]


def check_click_positions(clicks: Sequence[Click], shape) -> list:
    """Validate that every click lies inside an image of shape ``(rows, cols)``; return them as a list.

    Raises
    ------
    ValueError
        If a click lies outside the image.
    """
    clicks = list(clicks)
    rows, cols = shape[:2]
    for k, c in enumerate(clicks):
        if not (0 <= c.row < rows and 0 <= c.col < cols):
            raise ValueError(f"click {k + 1} at (row {c.row}, col {c.col}) lies outside the {rows}x{cols} image")
    return clicks


def check_clicks(clicks: Sequence[Click], shape) -> list:
    """Validate clicks against an image shape ``(rows, cols)``; return them as a list.

    Raises
    ------
    ValueError
        If a click lies outside the image or there is no positive click.
    """
    clicks = check_click_positions(clicks, shape)
    if not any(c.positive for c in clicks):
        raise ValueError("add at least one positive click on the object")
    return clicks


class ClickMethod(ABC):
    """Interactive segmentation from clicks: ``set_image`` once, ``predict`` per click.

    Subclasses keep whatever they cache for the current image between calls.
    ``predict`` must not change the clicks it is given and must return a fresh
    boolean ``(rows, cols)`` mask.
    """

    #: registry name, set by :func:`register_click_method`
    name: str = ""

    @abstractmethod
    def set_image(self, image, progress: Optional[ProgressCallback] = None,
                  cancel: Optional[CancelToken] = None) -> None:
        """Prepare for ``image`` (``(rows, cols)`` or ``(rows, cols, 3|4)``, any dtype)."""

    @abstractmethod
    def predict(self, clicks: Sequence[Click], cancel: Optional[CancelToken] = None) -> np.ndarray:
        """Boolean object mask for the clicks so far (at least one positive)."""

    #: whether :meth:`predict_box` is implemented
    takes_box: bool = False

    def predict_box(self, box, clicks: Sequence[Click] = (), cancel: Optional[CancelToken] = None) -> np.ndarray:
        """Boolean object mask for a :class:`~napari_deepseg.core.prompts.box.Box` and correcting clicks.

        Methods that take boxes set :attr:`takes_box` and override this; the
        others raise.

        Raises
        ------
        ValueError
            If the method takes no box.
        """
        raise ValueError(f"click method {self.name!r} takes no box; use graphcut for boxes")


_METHODS: Dict[str, Callable[..., ClickMethod]] = {}


def register_click_method(name: str):
    """Class decorator registering a :class:`ClickMethod` under ``name``."""

    def wrap(factory):
        factory.name = name
        _METHODS[name] = factory
        return factory

    return wrap


def available_click_methods() -> list:
    """Names of the registered click methods."""
    return sorted(_METHODS)


def get_click_method(name: str, **params) -> ClickMethod:
    """A new instance of the click method ``name`` with its parameters.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    """
    if name not in _METHODS:
        raise ValueError(f"unknown click method {name!r}; choose one of {', '.join(sorted(_METHODS))}")
    return _METHODS[name](**params)

