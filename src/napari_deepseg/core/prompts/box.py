"""Box prompts: the rectangle a user draws around an object, as geometry.

A :class:`Box` is an axis-aligned rectangle in napari's ``(row, col)`` order,
end exclusive. This module reads one (:func:`parse_box` from ``"R0,C0,R1,C1"``,
:func:`box_on_plane` from a napari Shapes rectangle on one plane of a stack,
:func:`box_from_mask` from a reference mask for the box protocol), checks it
against an image (:func:`check_box`: at least :data:`MIN_BOX_SIDE` pixels high
and wide, inside the image) and clips it (:func:`clip_box`). It knows nothing
of the cut: what a box *means* to the segmentation (outside is background, a
GrabCut-style cut inside) is the box engine's business,
:mod:`~napari_deepseg.core.prompts.boxcut`, which the click method ``graphcut``
answers boxes with (:meth:`~napari_deepseg.core.prompts.clickcut.GraphCutClicks.predict_box`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: default margin of the box protocol: a fraction of the object's size added on each side
DEFAULT_MARGIN = 0.10
#: the smallest box, in pixels per side (end exclusive): a rectangle drawn at least one pixel high and wide
MIN_BOX_SIDE = 2


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in napari's ``(row, col)`` order, end exclusive.

    Attributes
    ----------
    r0, c0 : int
        Top-left corner (first row and column inside).
    r1, c1 : int
        Bottom-right corner (first row and column past the box).

    Examples
    --------
    >>> Box(1, 2, 4, 6).shape, Box(1, 2, 4, 6).centre
    ((3, 4), (2, 3))
    """

    r0: int
    c0: int
    r1: int
    c1: int

    @property
    def shape(self) -> tuple:
        """``(rows, cols)`` of the box."""
        return self.r1 - self.r0, self.c1 - self.c0

    @property
    def centre(self) -> tuple:
        """``(row, col)`` of the box's centre pixel."""
        return (self.r0 + self.r1 - 1) // 2, (self.c0 + self.c1 - 1) // 2

    def shrunk(self, fraction: float) -> "Box":
        """The box less ``fraction`` of its height (width) at the top and bottom (left and right), floored.

        Examples
        --------
        >>> Box(0, 0, 10, 40).shrunk(0.2)
        Box(r0=2, c0=8, r1=8, c1=32)
        """
        hr, hc = int(fraction * (self.r1 - self.r0)), int(fraction * (self.c1 - self.c0))
        return Box(self.r0 + hr, self.c0 + hc, self.r1 - hr, self.c1 - hc)

    def mask(self, shape) -> np.ndarray:
        """Boolean ``shape[:2]`` image, ``True`` inside the box."""
        inside = np.zeros(shape[:2], bool)
        inside[max(self.r0, 0):max(self.r1, 0), max(self.c0, 0):max(self.c1, 0)] = True
        return inside


def parse_box(text: str) -> Box:
    """A box from ``"R0,C0,R1,C1"`` (integers, end exclusive).

    Raises
    ------
    ValueError
        If the text is not four comma-separated integers.

    Examples
    --------
    >>> parse_box("10, 20, 110, 220")
    Box(r0=10, c0=20, r1=110, c1=220)
    """
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4:
        raise ValueError(f"box must be four integers R0,C0,R1,C1 (top-left and bottom-right corners), got {text!r}")
    return Box(*values)


def check_box(box: Box, shape) -> Box:
    """Validate a box against an image shape ``(rows, cols)``; return it.

    Raises
    ------
    ValueError
        If the box has zero area, is thinner than :data:`MIN_BOX_SIDE` pixels, or
        does not lie inside the image (``0 <= r0 < r1 <= rows`` and ``0 <= c0 < c1 <= cols``).

    Examples
    --------
    >>> check_box(Box(5, 5, 6, 30), (10, 40))
    Traceback (most recent call last):
    ...
    ValueError: box (5,5)-(6,30) is 1 pixel high: a box must be at least 2 pixels high and wide (end exclusive)
    """
    rows, cols = shape[:2]
    if box.r1 <= box.r0 or box.c1 <= box.c0:
        raise ValueError(f"box ({box.r0},{box.c0})-({box.r1},{box.c1}) has zero area: the bottom-right corner must "
                         f"lie below and right of the top-left one")
    thin = [f"{n} pixel {what}" for n, what in ((box.r1 - box.r0, "high"), (box.c1 - box.c0, "wide"))
            if n < MIN_BOX_SIDE]
    if thin:
        raise ValueError(f"box ({box.r0},{box.c0})-({box.r1},{box.c1}) is {' and '.join(thin)}: a box must be at "
                         f"least {MIN_BOX_SIDE} pixels high and wide (end exclusive)")
    if not (0 <= box.r0 and box.r1 <= rows and 0 <= box.c0 and box.c1 <= cols):
        raise ValueError(f"box ({box.r0},{box.c0})-({box.r1},{box.c1}) lies outside the {rows}x{cols} image "
                         f"(rows 0..{rows}, cols 0..{cols}, end exclusive)")
    return box


def clip_box(box: Box, shape) -> Box:
    """The part of ``box`` inside an image of ``shape`` (zero area when they do not overlap).

    Examples
    --------
    >>> clip_box(Box(-3, 2, 5, 40), (10, 20))
    Box(r0=0, c0=2, r1=5, c1=20)
    """
    rows, cols = shape[:2]
    r0, c0 = min(max(box.r0, 0), rows), min(max(box.c0, 0), cols)
    return Box(r0, c0, max(min(box.r1, rows), r0), max(min(box.c1, cols), c0))


#: how far the leading coordinates of a rectangle's corners may differ and still lie on one plane
PLANE_TOLERANCE = 1e-3


def rectangle_plane(corners, shape) -> tuple:
    """The plane of a stack a rectangle lies on: its leading coordinates, rounded (``()`` for a 2-D image).

    Parameters
    ----------
    corners : array-like
        ``(k, ndim)`` corners in the image's data coordinates, napari order ``(..., row, col)``.
    shape : sequence of int
        Spatial shape of the image, ``(..., rows, cols)`` with ``len(shape) == ndim``.

    Returns
    -------
    tuple of int
        One index per axis before the rows.

    Raises
    ------
    ValueError
        If the corners have another number of coordinates than the image has
        axes, their leading coordinates differ by more than :data:`PLANE_TOLERANCE`
        (the rectangle does not lie on one plane), or the plane lies outside the stack.

    Examples
    --------
    >>> rectangle_plane([[2, 1, 1], [2, 1, 5], [2, 4, 5], [2, 4, 1]], (5, 10, 10))
    (2,)
    >>> rectangle_plane([[1, 1], [4, 5]], (10, 10))
    ()
    """
    pts = np.asarray(corners, float)
    shape = tuple(int(s) for s in shape)
    if pts.ndim != 2 or not len(pts) or pts.shape[1] != len(shape) or len(shape) < 2:
        raise ValueError(f"a box needs corners with {len(shape)} coordinates (one per axis of the "
                         f"{'x'.join(map(str, shape))} image), got corners of shape {pts.shape}")
    lead = pts[:, :-2]
    spread = np.ptp(lead, axis=0) if lead.size else np.zeros(0)
    if np.any(spread > PLANE_TOLERANCE):
        axis = int(np.argmax(spread))
        raise ValueError(f"the box's corners lie on different planes (axis {axis}: "
                         f"{lead[:, axis].min():g} to {lead[:, axis].max():g}): draw the rectangle on one plane")
    plane = tuple(int(np.floor(v + 0.5)) for v in lead.mean(0)) if lead.size else ()
    if not all(0 <= i < n for i, n in zip(plane, shape[:-2])):
        raise ValueError(f"the box lies on plane {plane}, outside the {'x'.join(map(str, shape[:-2]))} planes of "
                         f"the image: draw it on the image")
    return plane


def box_on_plane(corners, shape) -> tuple:
    """The plane and the :class:`Box` of a rectangle drawn on one plane of an image of ``shape``.

    Corners are rounded to the nearest pixel (both inclusive, so the box ends one
    past the larger one) and the box is clipped to the plane. A rectangle drawn less
    than one pixel high or wide (a click with the rectangle tool, a line) is refused:
    rounding would turn it into a one- or two-pixel "object".

    Parameters
    ----------
    corners : array-like
        ``(k, ndim)`` corners (a napari Shapes rectangle), napari order ``(..., row, col)``.
    shape : sequence of int
        Spatial shape of the image, ``(..., rows, cols)``.

    Returns
    -------
    plane : tuple of int
        See :func:`rectangle_plane`.
    box : Box
        The box on that plane.

    Raises
    ------
    ValueError
        As :func:`rectangle_plane`, if the rectangle is drawn less than one pixel
        high or wide, or if the box has no area inside the plane. The messages give
        the corners as drawn (rounded to the pixel, both inclusive).

    Examples
    --------
    >>> box_on_plane([[2, 1, 1], [2, 1, 5], [2, 4, 5], [2, 4, 1]], (5, 10, 10))
    ((2,), Box(r0=1, c0=1, r1=5, c1=6))
    >>> box_on_plane([[-3.2, 2], [5, 40]], (10, 20))
    ((), Box(r0=0, c0=2, r1=6, c1=20))
    """
    plane = rectangle_plane(corners, shape)
    rc = np.asarray(corners, float)[:, -2:]
    if not np.isfinite(rc).all():
        raise ValueError("the box's corners are not finite numbers: draw the rectangle on the image")
    extent = np.ptp(rc, axis=0)
    lo, hi = np.floor(rc.min(0) + 0.5), np.floor(rc.max(0) + 0.5)
    drawn = f"({int(lo[0])},{int(lo[1])})-({int(hi[0])},{int(hi[1])})"
    if np.any(extent < 1):
        size = " and ".join(f"{v:.2g} pixels {what}" for v, what in zip(extent, ("high", "wide")) if v < 1)
        raise ValueError(f"box {drawn} is {size}: drag a rectangle at least 1 pixel high and wide around the object")
    raw = Box(int(lo[0]), int(lo[1]), int(hi[0]) + 1, int(hi[1]) + 1)
    rows, cols = (int(s) for s in tuple(shape)[-2:])
    box = clip_box(raw, (rows, cols))
    if box.r1 <= box.r0 or box.c1 <= box.c0:
        raise ValueError(f"box {drawn} lies outside the {rows}x{cols} image (rows 0..{rows - 1}, cols "
                         f"0..{cols - 1}): draw it on the image")
    if box.r1 - box.r0 < MIN_BOX_SIDE or box.c1 - box.c0 < MIN_BOX_SIDE:
        raise ValueError(f"box {drawn} lies almost outside the {rows}x{cols} image (rows 0..{rows - 1}, cols "
                         f"0..{cols - 1}): draw it on the image")
    return plane, check_box(box, (rows, cols))


def box_from_mask(mask, margin: float = DEFAULT_MARGIN, ignore=None, with_ignored: bool = False) -> Box:
    """The tight bounding box of a reference mask's object, enlarged by ``margin`` of its size on each side.

    Parameters
    ----------
    mask : array-like
        ``(rows, cols)``: non-zero object (``ignore`` excluded).
    margin : float
        Fraction of the box's height (width) added above and below (left and right),
        rounded to whole pixels; the result is clipped to the image.
    ignore : int, optional
        A mask value that is not object (GrabCut's 128 band).
    with_ignored : bool
        Count the ``ignore`` pixels in the object's extent: the tight box of the
        object and its unknown band, the literature's box (Lempitsky et al. 2009).

    Raises
    ------
    ValueError
        If the mask holds no object pixel or ``margin`` is negative.

    Examples
    --------
    >>> m = np.zeros((20, 20), np.uint8); m[5:15, 8:12] = 255
    >>> box_from_mask(m, 0.1)
    Box(r0=4, c0=8, r1=16, c1=12)
    >>> m[4, 12] = 128
    >>> box_from_mask(m, 0, ignore=128), box_from_mask(m, 0, ignore=128, with_ignored=True)
    (Box(r0=5, c0=8, r1=15, c1=12), Box(r0=4, c0=8, r1=15, c1=13))
    """
    mask = np.asarray(mask)
    if not margin >= 0:
        raise ValueError(f"box margin must be >= 0 (a fraction of the object's size), got {margin!r}")
    obj = mask != 0 if ignore is None or with_ignored else (mask != 0) & (mask != ignore)
    if not obj.any():
        raise ValueError("the reference mask holds no object pixel: no box to draw")
    rr = np.flatnonzero(obj.any(axis=1))
    cc = np.flatnonzero(obj.any(axis=0))
    r0, r1, c0, c1 = int(rr[0]), int(rr[-1]) + 1, int(cc[0]), int(cc[-1]) + 1
    mr, mc = int(round(margin * (r1 - r0))), int(round(margin * (c1 - c0)))
    return clip_box(Box(r0 - mr, c0 - mc, r1 + mr, c1 + mc), mask.shape)
