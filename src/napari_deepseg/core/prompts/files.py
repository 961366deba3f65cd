"""Point prompts: reading them, and turning them into :class:`~napari_deepseg.core.prompts.base.Click` lists.

Points are napari-ordered: ``(..., row, col)`` in data coordinates, with any
leading axes of a stack first. A CSV file of points has the columns
``row,col,positive`` (a header line is optional; extra leading columns are the
leading axes, e.g. ``plane,row,col,positive``). ``positive`` is ``1``/``0``,
``true``/``false``, ``yes``/``no``, ``pos``/``neg`` or ``+``/``-``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .base import Click

_TRUE = {"1", "true", "yes", "y", "pos", "positive", "+", "t"}
_FALSE = {"0", "false", "no", "n", "neg", "negative", "-", "f"}


def parse_flag(text: str, where: str = "") -> bool:
    """A positive/negative flag from text.

    Examples
    --------
    >>> parse_flag("Yes"), parse_flag("0"), parse_flag("-")
    (True, False, False)
    """
    t = str(text).strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise ValueError(f"{where}positive must be 1/0, true/false, yes/no or +/-; got {text!r}")


def read_points_csv(path) -> tuple:
    """Points and their signs from a CSV file.

    Returns
    -------
    tuple
        ``(coords, positive)``: float ``(n, ndim)`` napari-ordered coordinates
        (``ndim >= 2``) and a boolean ``(n,)`` array.

    Raises
    ------
    ValueError
        For a missing or empty file, rows of different lengths, fewer than three
        columns or values that are not numbers / flags (one line naming the row).
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"points file not found: {p}")
    try:
        with p.open(newline="") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"cannot read points file {p}: {exc}") from None
    if rows and not _is_number(rows[0][0]):
        rows = rows[1:]  # header
    if not rows:
        raise ValueError(f"points file {p} holds no points (expected columns row,col,positive)")
    width = len(rows[0])
    if width < 3:
        raise ValueError(f"points file {p}: expected columns row,col,positive, got {width} column(s)")
    coords, positive = [], []
    for k, r in enumerate(rows, 1):
        if len(r) != width:
            raise ValueError(f"points file {p}: point {k} has {len(r)} columns, the first has {width}")
        try:
            coords.append([float(v) for v in r[:-1]])
        except ValueError:
            raise ValueError(f"points file {p}: point {k} has a coordinate that is not a number: {r[:-1]}") from None
        positive.append(parse_flag(r[-1], f"points file {p}: point {k}: "))
    arr = np.asarray(coords, float)
    if not np.isfinite(arr).all():
        raise ValueError(f"points file {p}: coordinates must be finite numbers")
    return arr, np.asarray(positive, bool)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def clicks_by_plane(coords, positive, spatial_shape) -> dict:
    """Group points by the plane of their leading axes; each group as a list of clicks.

    Parameters
    ----------
    coords : array-like
        ``(n, ndim)`` napari-ordered coordinates, ``ndim == len(spatial_shape)``.
    positive : array-like of bool
    spatial_shape : tuple
        Shape of the image without a colour axis.

    Returns
    -------
    dict
        ``{plane index tuple: [Click, ...]}`` (``()`` for a 2-D image).

    Raises
    ------
    ValueError
        If the points' dimensionality differs from the image's or a point lies outside it.

    Examples
    --------
    >>> clicks_by_plane([[1, 2.2, 3.6]], [True], (2, 5, 5))
    {(1,): [Click(row=2, col=4, positive=True)]}
    """
    pts = np.asarray(coords, float).reshape(len(coords), -1) if len(coords) else np.zeros((0, len(spatial_shape)))
    pos = np.asarray(positive, bool).reshape(-1)
    if pts.shape[1] != len(spatial_shape):
        raise ValueError(f"points have {pts.shape[1]} coordinates but the image has {len(spatial_shape)} spatial "
                         f"axes {tuple(spatial_shape)}")
    idx = np.rint(pts).astype(int)
    groups: dict = {}
    for k, (point, flag) in enumerate(zip(idx, pos)):
        if ((point < 0) | (point >= np.asarray(spatial_shape))).any():
            raise ValueError(f"point {k + 1} at {tuple(pts[k].tolist())} lies outside the image of shape "
                             f"{tuple(spatial_shape)}")
        plane = tuple(int(i) for i in point[:-2])
        groups.setdefault(plane, []).append(Click(int(point[-2]), int(point[-1]), bool(flag)))
    return groups
