"""Checks and conversions at the boundary of the core.

Every public entry point of the core funnels user input through these
functions, so that bad input is met with one clear ``ValueError`` or
``TypeError`` naming the argument, what was received and what is allowed.
"""

from __future__ import annotations

import numpy as np

SCRIBBLE_NONE = 0
SCRIBBLE_OBJECT = 1
SCRIBBLE_BACKGROUND = 2


def as_float_image(image, name: str = "image") -> np.ndarray:
    """Return a 2-D image as float32 ``(rows, cols, channels)`` scaled to [0, 1].

    Parameters
    ----------
    image : array-like
        ``(rows, cols)`` grayscale, ``(rows, cols, 3)`` RGB or ``(rows, cols, 4)``
        RGBA, of any integer or float dtype. ``uint8`` is divided by 255; any other
        dtype is stretched from its minimum to its maximum. Alpha is dropped.
    name : str
        Argument name used in error messages.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(rows, cols, 1)`` or ``(rows, cols, 3)``.

    Raises
    ------
    TypeError
        If the data are not numeric.
    ValueError
        If the shape is not 2-D (with optional colour axis), the image is smaller
        than 2 x 2, or it holds NaN or infinite values.

    Examples
    --------
    >>> as_float_image(np.array([[0, 255], [255, 0]], np.uint8)).shape
    (2, 2, 1)
    """
    arr = np.asarray(image)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        arr = arr[..., :3]
    elif arr.ndim == 3 and arr.shape[-1] == 1:
        pass
    elif arr.ndim == 2:
        arr = arr[..., None]
    else:
        raise ValueError(
            f"{name} must be 2-D grayscale (rows, cols) or colour (rows, cols, 3|4), "
            f"got shape {arr.shape}"
        )
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(f"{name} must be at least 2x2 pixels, got shape {arr.shape[:2]}")
    if np.issubdtype(arr.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise ValueError(
                f"{name} contains {bad} NaN or infinite values; replace them (e.g. numpy.nan_to_num) first"
            )
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    out = arr.astype(np.float32)
    lo, hi = float(out.min()), float(out.max())
    if np.issubdtype(arr.dtype, np.floating) and lo >= 0.0 and hi <= 1.0:
        return out
    if hi > lo:
        out -= lo
        out /= hi - lo
    else:
        out[:] = 0.0
    return out


def image_layout(image, name: str = "image"):
    """Check an image's shape and dtype without converting (or loading) it.

    The checks of :func:`as_float_image` that need no pixel values, for arrays
    that may be lazy (dask, zarr): read them strip by strip afterwards.

    Returns
    -------
    array-like
        ``image`` itself, or ``image[..., :3]`` for four channels (alpha dropped).

    Raises
    ------
    TypeError, ValueError
        As :func:`as_float_image`.

    Examples
    --------
    >>> image_layout(np.zeros((4, 5, 4), np.uint8)).shape
    (4, 5, 3)
    """
    arr = image if hasattr(image, "shape") and hasattr(image, "dtype") else np.asarray(image)
    dtype = np.dtype(arr.dtype)
    if not (dtype == bool or np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise TypeError(f"{name} must hold numbers, got dtype {dtype}")
    shape = tuple(arr.shape)
    if not (len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3, 4))):
        raise ValueError(
            f"{name} must be 2-D grayscale (rows, cols) or colour (rows, cols, 3|4), got shape {shape}"
        )
    if shape[0] < 2 or shape[1] < 2:
        raise ValueError(f"{name} must be at least 2x2 pixels, got shape {shape[:2]}")
    return arr[..., :3] if len(shape) == 3 and shape[-1] == 4 else arr


def check_scribbles(scribbles, shape: tuple[int, int], name: str = "scribbles") -> np.ndarray:
    """Validate a scribble label image and return it as ``int32``.

    Parameters
    ----------
    scribbles : array-like of int
        ``(rows, cols)`` labels: 0 unlabelled, 1 object, 2 background, ``k``
        class ``k`` when more than two labels are painted.
    shape : tuple of int
        ``(rows, cols)`` of the image the scribbles belong to.
    name : str
        Argument name used in error messages.

    Returns
    -------
    numpy.ndarray
        The scribbles as an int32 array.

    Raises
    ------
    ValueError
        If the shape differs from ``shape``, values are negative or not whole
        numbers, or fewer than two different labels are painted.

    Examples
    --------
    >>> s = np.zeros((4, 4), int); s[0, 0] = 1; s[3, 3] = 2
    >>> check_scribbles(s, (4, 4)).dtype
    dtype('int32')
    """
    arr = np.asarray(scribbles)
    if arr.shape != tuple(shape):
        raise ValueError(
            f"{name} have shape {arr.shape} but the image has shape {tuple(shape)}; "
            "paint them on a layer of the image's size"
        )
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must hold whole-number labels, got non-integer values")
    elif not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise TypeError(f"{name} must hold integer labels, got dtype {arr.dtype}")
    arr = arr.astype(np.int32)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must be >= 0 (0 = unlabelled), got minimum {arr.min()}")
    present = np.unique(arr[arr > 0])
    if present.size == 0:
        raise ValueError(
            f"{name} are empty: paint at least one object (1) and one background (2) stroke"
        )
    if present.size == 1:
        raise ValueError(
            f"{name} hold only label {int(present[0])}: paint at least one object (1) "
            "and one background (2) stroke"
        )
    return arr


def check_positive(value, name: str, allow_none: bool = True, maximum: float = 1e6, minimum: float = 0.0):
    """Return ``value`` as float after checking ``minimum < value <= maximum`` (or None).

    The bounds keep graph capacities finite: far from float32 overflow, and
    (for σ) away from a division that turns equal neighbours into NaN.

    Examples
    --------
    >>> check_positive(2, "lam")
    2.0
    """
    if value is None and allow_none:
        return None
    try:
        val = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(val) or val <= 0 or val < minimum or val > maximum:
        low = f">= {minimum:g}" if minimum > 0 else "> 0"
        raise ValueError(f"{name} must be a number {low} and <= {maximum:g}, got {value!r}")
    return val
