"""Images read region by region: numpy, dask and zarr arrays alike.

A napari layer may hold a dask or zarr array far larger than memory. The
feature backbones never load such an array whole: they wrap it in a
:class:`LazyImage` and read float32 tiles (with their halo) through
:meth:`LazyImage.read`. The normalisation to [0, 1] is the one
:func:`~napari_deepseg.core.utils.validation.as_float_image` applies to a whole
array, with its statistics (minimum, maximum, NaN count) gathered strip by
strip, so a tile read here equals the same crop of ``as_float_image(array)``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..utils.validation import image_layout

#: rows of a statistics strip hold about this many pixels
STRIP_PIXELS = 1 << 21


def row_strips(n_rows: int, n_cols: int, pixels: Optional[int] = None, multiple: int = 1) -> list:
    """``(start, stop)`` row ranges of about ``pixels`` pixels each; all but the last a multiple of ``multiple``.

    Examples
    --------
    >>> row_strips(5, 2, pixels=4, multiple=2)
    [(0, 2), (2, 4), (4, 5)]
    """
    pixels = STRIP_PIXELS if pixels is None else pixels
    step = max(multiple, (max(1, pixels // max(1, n_cols)) // multiple) * multiple)
    return [(a, min(n_rows, a + step)) for a in range(0, n_rows, step)]


def value_range(array) -> tuple:
    """``(lo, hi)`` that :func:`~napari_deepseg.core.utils.validation.as_float_image` stretches ``array`` with.

    ``uint8`` is ``(0, 255)``, ``bool`` ``(0, 1)``, floats already in [0, 1]
    ``(0, 1)``; anything else its minimum and maximum (as float32). The array
    is read in strips of rows, never whole.

    Raises
    ------
    ValueError
        If the array holds NaN or infinite values.

    Examples
    --------
    >>> value_range(np.array([[0, 255]], np.uint8)), value_range(np.array([[3, 5]], np.int16))
    ((0.0, 255.0), (3.0, 5.0))
    """
    dtype = np.dtype(array.dtype)
    if dtype == np.uint8:
        return 0.0, 255.0
    if dtype == bool:
        return 0.0, 1.0
    lo, hi, bad = np.inf, -np.inf, 0
    for a, b in row_strips(array.shape[0], array.shape[1]):
        block = np.asarray(array[a:b]).astype(np.float32, copy=False)
        if np.issubdtype(dtype, np.floating):
            finite = np.isfinite(block)
            bad += int(block.size - np.count_nonzero(finite))
            block = block[finite] if bad else block
        if block.size:
            lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
    if bad:
        raise ValueError(f"image contains {bad} NaN or infinite values; replace them (e.g. numpy.nan_to_num) first")
    if np.issubdtype(dtype, np.floating) and lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    return lo, hi


def normalise(block: np.ndarray, lo: float, hi: float, dtype) -> np.ndarray:
    """A raw block as float32 in [0, 1], exactly as ``as_float_image`` scales the whole array."""
    dtype = np.dtype(dtype)
    if dtype == bool:
        return block.astype(np.float32)
    if dtype == np.uint8:
        return block.astype(np.float32) / np.float32(255.0)
    out = block.astype(np.float32)
    if (lo, hi) == (0.0, 1.0) and np.issubdtype(dtype, np.floating):
        return out
    if hi > lo:
        out -= lo
        out /= hi - lo
    else:
        out[...] = 0.0
    return out


class LazyImage:
    """A 2-D image (numpy, dask, zarr or any array with ``shape``, ``dtype`` and slicing) read by region.

    Parameters
    ----------
    array : array-like
        ``(rows, cols)``, ``(rows, cols, 1|3|4)``; alpha is dropped.
    name : str
        Argument name for error messages.
    all_channels : bool
        The last axis is an explicit channel axis (from
        :func:`~napari_deepseg.core.utils.validation.channels_last`): every channel is
        read, up to :data:`~napari_deepseg.core.utils.validation.MAX_CHANNELS`; a fourth is not alpha.

    Raises
    ------
    TypeError, ValueError
        As :func:`~napari_deepseg.core.utils.validation.as_float_image` (NaN values
        when the statistics are first needed).

    Examples
    --------
    >>> img = LazyImage(np.array([[0, 255], [255, 0]], np.uint8))
    >>> img.shape, img.read(slice(0, 1), slice(0, 2))[..., 0].tolist()
    ((2, 2, 1), [[0.0, 1.0]])
    """

    def __init__(self, array, name: str = "image", all_channels: bool = False):
        image_layout(array, name, all_channels)  # shape and dtype checks, nothing read
        self.array = array
        self.name = name
        shape = tuple(array.shape)
        self._gray = len(shape) == 2
        channels = 1 if self._gray else (shape[2] if all_channels else min(3, shape[2]))
        self.shape = (int(shape[0]), int(shape[1]), channels)
        self.dtype = np.dtype(array.dtype)
        self._range: Optional[tuple] = None
        self._picked: Optional[tuple] = None  # channels read, in order (see :meth:`pick`)

    def pick(self, channels) -> "LazyImage":
        """A view reading only ``channels`` (indices into this image's channels, repeats allowed).

        Shares the array and the normalisation (nothing is read).

        Examples
        --------
        >>> img = LazyImage(np.arange(16, dtype=np.uint8).reshape(2, 2, 4), all_channels=True)
        >>> (img.pick((3, 0, 0)).read(slice(0, 2), slice(0, 1))[:, 0] * 255).round().tolist()
        [[3.0, 0.0, 0.0], [11.0, 8.0, 8.0]]
        """
        picked = tuple(int(c) for c in channels)
        source = self._picked or tuple(range(self.shape[2]))
        view = object.__new__(LazyImage)
        view.__dict__.update(self.__dict__)
        view._picked = tuple(source[c] for c in picked)
        view.shape = self.shape[:2] + (len(picked),)
        return view

    @property
    def stretch(self) -> tuple:
        """``(lo, hi)`` of the normalisation (computed on first use, strip by strip)."""
        if self._range is None:
            self._range = value_range(self.array)
        return self._range

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """float32 ``(r, c, channels)`` of the region ``rows, cols`` (slices inside the image)."""
        lo, hi = self.stretch
        if self._gray:
            block = np.asarray(self.array[rows, cols])[..., None]
        else:
            block = np.asarray(self.array[rows, cols, : None if self._picked else self.shape[2]])
        if self._picked is not None:
            block = block[..., list(self._picked)]
        return normalise(block, lo, hi, self.dtype)

    def read_all(self) -> np.ndarray:
        """The whole image as float32 ``(rows, cols, channels)``, assembled strip by strip."""
        out = np.empty(self.shape, np.float32)
        for a, b in row_strips(self.shape[0], self.shape[1]):
            out[a:b] = self.read(slice(a, b), slice(None))
        return out

    def read_padded(self, row0: int, row1: int, col0: int, col1: int, mode: str = "reflect") -> np.ndarray:
        """The region ``[row0, row1) x [col0, col1)``, which may reach past the image, padded by ``mode``.

        ``reflect`` and ``edge`` mirror :func:`numpy.pad` applied to the whole
        image (reflect needs at least 2 pixels per side; 1-pixel sides use edge),
        so tiles of a padded image are read without padding it whole.

        Examples
        --------
        >>> img = LazyImage(np.arange(4, dtype=np.uint8).reshape(2, 2) * 85)
        >>> (img.read_padded(0, 2, 1, 4)[..., 0] * 255).round().tolist()
        [[85.0, 0.0, 85.0], [255.0, 170.0, 255.0]]
        """
        ri = _padded_index(row0, row1, self.shape[0], mode)
        ci = _padded_index(col0, col1, self.shape[1], mode)
        r0, c0 = int(ri.min()), int(ci.min())
        block = self.read(slice(r0, int(ri.max()) + 1), slice(c0, int(ci.max()) + 1))
        if ri.size == block.shape[0] and ci.size == block.shape[1] and ri[0] == r0 and ci[0] == c0 \
                and np.all(np.diff(ri) == 1) and np.all(np.diff(ci) == 1):
            return block
        return block[np.ix_(ri - r0, ci - c0)]

    def block_mean(self, factor: int) -> np.ndarray:
        """The image shrunk by an integer ``factor`` (mean of ``factor x factor`` blocks, edges repeated).

        Equals ``skimage.transform.downscale_local_mean`` of the edge-padded
        image; read ``factor``-aligned strip by strip.

        Examples
        --------
        >>> LazyImage(np.arange(9, dtype=np.float32).reshape(3, 3) / 8).block_mean(2)[..., 0].tolist()
        [[0.25, 0.4375], [0.8125, 1.0]]
        """
        factor = int(factor)
        rows, cols, ch = self.shape
        if factor <= 1:
            return self.read_all()
        out = np.empty((-(-rows // factor), -(-cols // factor), ch), np.float32)
        pc = -cols % factor
        for a, b in row_strips(rows, cols, multiple=factor):
            strip = self.read(slice(a, b), slice(None))
            pr = -(b - a) % factor
            strip = np.pad(strip, ((0, pr), (0, pc), (0, 0)), mode="edge")
            h, w = strip.shape[0] // factor, strip.shape[1] // factor
            out[a // factor : a // factor + h] = strip.reshape(h, factor, w, factor, ch).mean(axis=(1, 3), dtype=np.float64)
        return out


def _padded_index(start: int, stop: int, n: int, mode: str) -> np.ndarray:
    """Source indices of positions ``start:stop`` of an axis of length ``n`` padded by ``mode``."""
    idx = np.arange(start, stop)
    if mode == "reflect" and n > 1:
        period = 2 * (n - 1)
        idx = np.abs(idx) % period
        return np.where(idx >= n, period - idx, idx)
    if mode in ("edge", "reflect"):
        return np.clip(idx, 0, n - 1)
    raise ValueError(f"mode must be 'reflect' or 'edge', got {mode!r}")


def as_lazy_image(image, name: str = "image") -> LazyImage:
    """``image`` as a :class:`LazyImage` (returned as is when it already is one)."""
    return image if isinstance(image, LazyImage) else LazyImage(image, name)


def rgb_channels(image: LazyImage, channels=None, name: str = "channels") -> LazyImage:
    """The three channels a network reads as red, green and blue.

    Parameters
    ----------
    image : LazyImage
        Any number of channels.
    channels : tuple of 3 int, optional
        Indices into ``image``'s channels (checked with
        :func:`~napari_deepseg.core.utils.validation.check_rgb_channels`). ``None``:
        one or three channels as they are (one is repeated by the network's
        input code), the first three of more.
    name : str
        Argument name used in error messages.

    Returns
    -------
    LazyImage
        ``image`` itself or a :meth:`LazyImage.pick` view of it.

    Raises
    ------
    ValueError
        If an index is not a channel of ``image``, or ``image`` has two channels and none are chosen.

    Examples
    --------
    >>> img = LazyImage(np.zeros((2, 2, 5), np.uint8), all_channels=True)
    >>> rgb_channels(img).shape, rgb_channels(img, (4, 2, 0)).shape
    ((2, 2, 3), (2, 2, 3))
    """
    from ..utils.validation import check_rgb_channels

    picked = check_rgb_channels(channels, name)
    n = image.shape[2]
    if picked is None:
        if n in (1, 3):
            return image
        if n == 2:
            raise ValueError(f"the image has 2 channels; choose the three the network reads as RGB with "
                             f"{name}=(r, g, b), indices 0..1 (repeats allowed, e.g. (0, 1, 1))")
        return image.pick((0, 1, 2))
    if max(picked) >= n:
        raise ValueError(f"{name}={picked} names channel {max(picked)} but the image has {n} "
                         f"channel{'s' if n > 1 else ''} (indices 0..{n - 1})")
    return image if picked == (0, 1, 2) and n == 3 else image.pick(picked)


def read_region(array, rows: slice, cols: slice) -> np.ndarray:
    """float32 ``(r, c, channels)`` tile of ``array`` in [0, 1], as ``as_float_image(array)[rows, cols]``.

    For many reads of one array build a :class:`LazyImage` once: its
    normalisation statistics are then gathered only once.

    Examples
    --------
    >>> read_region(np.array([[0, 10], [20, 40]], np.int32), slice(1, 2), slice(0, 2))[..., 0].tolist()
    [[0.5, 1.0]]
    """
    return as_lazy_image(array).read(rows, cols)
