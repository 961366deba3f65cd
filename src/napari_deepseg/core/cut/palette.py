"""An image as a palette of distinct colours plus one index per pixel.

A 25 MP photograph holds 25 million pixels but rarely more than a few million
distinct colours. The weight-free default preset scores colours, not pixels,
so it needs the colour model (a Gaussian mixture) evaluated once per distinct
colour, and a 4-byte index per pixel instead of 12 bytes of float colour plus
12 bytes of L*a*b* plus 48 bytes of mixture likelihoods. For ``uint8`` images
the palette is exact; other dtypes are first normalised to [0, 1] (see
:func:`~napari_deepseg.core.utils.validation.as_float_image`) and quantised to
:data:`LEVELS` levels per channel.

The image is read in strips of rows, so a lazy (dask or zarr) array is never
loaded whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..io.lazy import row_strips, value_range
from ..utils.progress import check_scope

#: quantisation levels per channel for images that are not uint8
LEVELS = 256
#: single-channel images that are not uint8 keep this many grey levels
GREY_LEVELS = 4096
#: images with at least one pixel per this many possible codes build the palette with a dense table
TABLE_PIXELS_PER_CODE = 8
#: rows per strip hold about this many pixels
STRIP_PIXELS = 1 << 21


@dataclass
class Palette:
    """Distinct colours of an image and, per pixel, the index of its colour.

    Attributes
    ----------
    ids : numpy.ndarray
        int32 ``(rows, cols)`` index into :attr:`colours`.
    colours : numpy.ndarray
        float32 ``(n_colours, channels)`` colours in [0, 1].
    counts : numpy.ndarray
        int64 ``(n_colours,)`` pixels of each colour.
    """

    ids: np.ndarray
    colours: np.ndarray
    counts: np.ndarray

    @property
    def shape(self) -> tuple:
        """``(rows, cols)`` of the image."""
        return tuple(self.ids.shape)

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return int(self.ids.nbytes + self.colours.nbytes + self.counts.nbytes)

    def image(self, rows: Optional[slice] = None) -> np.ndarray:
        """The float32 ``(rows, cols, channels)`` image (or a strip of rows) rebuilt from the palette."""
        ids = self.ids if rows is None else self.ids[rows]
        return self.colours[ids]


def strips(n_rows: int, n_cols: int, pixels: Optional[int] = None, multiple: int = 1):
    """``slice`` objects covering ``n_rows`` rows about ``pixels`` pixels (:data:`STRIP_PIXELS`) at a time.

    ``multiple`` makes every strip but the last a multiple of that many rows. A
    generator: inside a :func:`~napari_deepseg.core.utils.progress.cancel_scope`
    every strip checks its token first.

    Examples
    --------
    >>> [(s.start, s.stop) for s in strips(5, 2, pixels=4, multiple=2)]
    [(0, 2), (2, 4), (4, 5)]
    """
    pixels = STRIP_PIXELS if pixels is None else pixels
    for a, b in row_strips(n_rows, n_cols, pixels, multiple):
        check_scope()
        yield slice(a, b)


def _quantise(strip: np.ndarray, lo, hi, levels: int) -> np.ndarray:
    """Integer levels ``0 .. levels - 1`` of a raw strip normalised with ``(lo, hi)``."""
    x = strip.astype(np.float32)
    if hi > lo:
        x -= np.float32(lo)
        x *= np.float32((levels - 1) / (hi - lo))
    else:
        x[...] = 0
    return np.clip(np.rint(x), 0, levels - 1).astype(np.int64)


def build_palette(image) -> Palette:
    """The palette of a ``(rows, cols)`` or ``(rows, cols, channels)`` image.

    Parameters
    ----------
    image : array-like
        numpy, dask or zarr array; read strip by strip. ``uint8`` is exact;
        any other dtype is stretched as :func:`~napari_deepseg.core.utils.validation.as_float_image`
        does and quantised (:data:`LEVELS` per channel, :data:`GREY_LEVELS` for one channel).

    Returns
    -------
    Palette

    Examples
    --------
    >>> p = build_palette(np.array([[0, 255], [255, 255]], np.uint8))
    >>> p.ids.tolist(), p.colours[:, 0].tolist(), p.counts.tolist()
    ([[0, 1], [1, 1]], [0.0, 1.0], [1, 3])
    """
    rows, cols = image.shape[:2]
    channels = 1 if len(image.shape) == 2 else int(image.shape[2])
    exact = image.dtype == np.uint8
    levels = 256 if exact else (GREY_LEVELS if channels == 1 else LEVELS)
    lo, hi = value_range(image)  # (0, 255) for uint8: the exact path
    space = levels**channels
    # a dense table of every possible code pays off only when the image has many pixels for it;
    # smaller images sort their codes (the same palette, in the same order)
    table = space <= 1 << 26 and rows * cols * TABLE_PIXELS_PER_CODE >= space
    ids = np.empty((rows, cols), np.int32 if table else np.int64)
    present = np.zeros(space, bool) if table else None
    for s in strips(rows, cols):
        block = np.asarray(image[s])
        q = block.astype(np.int64) if exact else _quantise(block, lo, hi, levels)
        code = q if channels == 1 and q.ndim == 2 else q.reshape(q.shape[0], cols, channels)[..., 0]
        for c in range(1, channels):
            code = code * levels + q[..., c]
        ids[s] = code
        if present is not None:
            present[code] = True
    if present is not None:  # a dense look-up table from code to palette index
        codes = np.flatnonzero(present)
        lut = np.cumsum(present, dtype=np.int32) - 1
        del present
        for s in strips(rows, cols):
            ids[s] = lut[ids[s]]
        del lut
    else:  # too many possible codes for a table, or too few pixels: sort them
        codes, inverse = np.unique(ids, return_inverse=True)
        ids = inverse.reshape(rows, cols).astype(np.int32)
    ids = ids.astype(np.int32, copy=False)
    counts = np.bincount(ids.ravel(), minlength=codes.size)
    digits = np.empty((codes.size, channels), np.float32)
    rest = codes.copy()
    for c in range(channels - 1, -1, -1):
        digits[:, c] = rest % levels
        rest //= levels
    digits /= np.float32(levels - 1)
    return Palette(ids, digits, counts)
