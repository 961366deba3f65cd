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
#: the largest scribble label: more classes than anyone paints, fewer than the grey levels of a mask
#: (127, 128, 255), which :func:`check_scribbles` refuses with advice instead of cutting 128 against 255
MAX_SCRIBBLE_LABEL = 63
#: most channels of an image with an explicit channel axis: the colour palette codes a pixel's
#: channels (256 levels each) in one int64 (:func:`~napari_deepseg.core.cut.palette.build_palette`)
MAX_CHANNELS = 7


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


def image_layout(image, name: str = "image", all_channels: bool = False):
    """Check an image's shape and dtype without converting (or loading) it.

    The checks of :func:`as_float_image` that need no pixel values, for arrays
    that may be lazy (dask, zarr): read them strip by strip afterwards.

    Parameters
    ----------
    image : array-like
        ``(rows, cols)`` or ``(rows, cols, 1|3|4)``; with ``all_channels``
        ``(rows, cols, channels)`` with 1 to :data:`MAX_CHANNELS` channels.
    name : str
        Argument name used in error messages.
    all_channels : bool
        The last axis is an explicit channel axis (see :func:`channels_last`):
        every channel is kept, a fourth one is not alpha.

    Returns
    -------
    array-like
        ``image`` itself, or ``image[..., :3]`` for four channels (alpha dropped)
        unless ``all_channels``.

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
    if all_channels:
        if not (len(shape) == 3 and 1 <= shape[-1] <= MAX_CHANNELS) and len(shape) != 2:
            raise ValueError(f"{name} must be (rows, cols, channels) with 1 to {MAX_CHANNELS} channels, "
                             f"got shape {shape}")
        if shape[0] < 2 or shape[1] < 2:
            raise ValueError(f"{name} must be at least 2x2 pixels, got shape {shape[:2]}")
        return arr
    if not (len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3, 4))):
        raise ValueError(
            f"{name} must be 2-D grayscale (rows, cols) or colour (rows, cols, 3|4), got shape {shape}"
        )
    if shape[0] < 2 or shape[1] < 2:
        raise ValueError(f"{name} must be at least 2x2 pixels, got shape {shape[:2]}")
    return lazy_view(arr)[..., :3] if len(shape) == 3 and shape[-1] == 4 else arr


def lazy_view(array):
    """numpy and dask arrays as they are; any other array (zarr, ...) wrapped in dask with its own chunks.

    Indexing, slicing or reshaping a zarr array reads it at once; through dask
    it stays lazy. Without dask the array is returned as it is.

    Examples
    --------
    >>> a = np.zeros(3); lazy_view(a) is a
    True
    """
    if isinstance(array, np.ndarray) or hasattr(array, "dask"):
        return array
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover - dask comes with napari
        return array
    return da.from_array(array, chunks=getattr(array, "chunks", "auto"))


def channels_last(image, channel_axis, name: str = "image"):
    """Move an explicit channel axis of one plane last and stretch each channel on its own.

    Every channel is kept (a fourth band is data such as near-infrared, not
    alpha). ``uint8`` keeps its values (each channel means value / 255). Other
    dtypes become float32 in [0, 1] **per channel**: a channel whose floats already
    lie in [0, 1] is kept as it is, any other channel is stretched from its own
    minimum to its own maximum (a constant channel becomes 0). Bands of different
    ranges (16-bit RGB beside a near-infrared band) thus all span [0, 1], where a
    global stretch would flatten the narrower ones.

    Parameters
    ----------
    image : array-like
        A 3-D array: ``(rows, cols)`` plus one channel axis anywhere; numpy,
        dask or zarr (a lazy array stays lazy through dask when dask is installed).
    channel_axis : int
        Index of the channel axis (negative counts from the end).
    name : str
        Argument name used in error messages.

    Returns
    -------
    array-like
        ``(rows, cols, channels)``: ``uint8`` as given, else float32 in [0, 1];
        a numpy array for numpy input, a dask array for lazy input.

    Raises
    ------
    TypeError
        If ``channel_axis`` is not an integer or the data are not numeric.
    ValueError
        If the image is not 3-D (a 2-D image has no channel axis), the axis is
        out of range, there are more than :data:`MAX_CHANNELS` channels, the plane
        is smaller than 2 x 2, or it holds NaN or infinite values.

    Examples
    --------
    >>> img = np.zeros((4, 5, 6), np.uint16); img[1, :, 3:] = 1000; img[3, :, 3:] = 7
    >>> out = channels_last(img, 0)  # band 3 spans [0, 1] too (a global stretch: [0, 0.007])
    >>> out.shape, out.dtype.name, float(out[..., 1].max()), float(out[..., 3].max())
    ((5, 6, 4), 'float32', 1.0, 1.0)
    """
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, (int, np.integer)):
        raise TypeError(f"channel_axis must be an integer axis index or None, got {channel_axis!r}")
    arr = image if hasattr(image, "shape") and hasattr(image, "dtype") else np.asarray(image)
    dtype, shape = np.dtype(arr.dtype), tuple(arr.shape)
    if not (dtype == bool or np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise TypeError(f"{name} must hold numbers, got dtype {dtype}")
    if len(shape) != 3:
        hint = "a 2-D (rows, cols) image has no channel axis: pass channel_axis=None" if len(shape) == 2 else \
            "pass one plane: (rows, cols) plus the channel axis"
        raise ValueError(f"{name} with channel_axis={channel_axis} must be 3-D, got shape {shape}; {hint}")
    axis = int(channel_axis)
    if not -3 <= axis < 3:
        raise ValueError(f"channel_axis must be in -3..2 for {name} of shape {shape}, got {channel_axis}")
    channels = shape[axis]
    if not 1 <= channels <= MAX_CHANNELS:
        raise ValueError(f"{name} has {channels} channels along axis {axis} (shape {shape}); "
                         f"1 to {MAX_CHANNELS} are allowed: is channel_axis the right axis?")
    plane = tuple(n for i, n in enumerate(shape) if i != axis % 3)
    if plane[0] < 2 or plane[1] < 2:
        raise ValueError(f"{name} must be at least 2x2 pixels, got shape {plane} without the channel axis")
    if isinstance(arr, np.ndarray):
        return _stretch_channels(np.ascontiguousarray(np.moveaxis(arr, axis, -1)), name)
    lazy = lazy_view(arr)
    if not hasattr(lazy, "dask"):  # no dask: a lazy array is read here
        return _stretch_channels(np.ascontiguousarray(np.moveaxis(np.asarray(arr), axis, -1)), name)
    import dask.array as da

    return _stretch_channels(da.moveaxis(lazy, axis, -1), name)


def _stretch_channels(arr, name: str):
    """``uint8`` as is, else float32 in [0, 1] channel by channel (numpy or dask ``(rows, cols, c)``)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * np.uint8(255)
    floating = np.issubdtype(arr.dtype, np.floating)
    stats = [arr.min(axis=(0, 1)), arr.max(axis=(0, 1))]
    if floating:
        stats.append((~np.isfinite(arr)).sum())
    if not isinstance(arr, np.ndarray):
        import dask

        stats = list(dask.compute(*stats))
    if floating and int(stats[2]):
        raise ValueError(f"{name} contains {int(stats[2])} NaN or infinite values; "
                         "replace them (e.g. numpy.nan_to_num) first")
    lo, hi = np.asarray(stats[0], np.float64), np.asarray(stats[1], np.float64)
    keep = (lo >= 0.0) & (hi <= 1.0) if floating else np.zeros(lo.shape, bool)
    offset = np.where(keep, 0.0, lo)
    span = np.where(keep, 1.0, hi - lo)
    scale = np.where(span > 0, 1.0 / np.where(span > 0, span, 1.0), 0.0)
    out = arr.astype(np.float32)
    out = (out - offset.astype(np.float32)) * scale.astype(np.float32)
    return out.astype(np.float32)


def check_rgb_channels(channels, name: str = "channels"):
    """Validate the three channels a deep backbone reads as red, green and blue.

    Parameters
    ----------
    channels : sequence of 3 int or None
        Indices into the image's channels (repeats allowed, e.g. ``(0, 0, 0)``);
        ``None`` keeps the default (the first three; one channel repeated).
    name : str
        Argument name used in error messages.

    Returns
    -------
    tuple of int or None

    Raises
    ------
    TypeError, ValueError
        If ``channels`` is not three whole numbers >= 0.

    Examples
    --------
    >>> check_rgb_channels([3, 1, "2"]) is None, check_rgb_channels((3, 1, 2))
    (False, (3, 1, 2))
    """
    if channels is None:
        return None
    if isinstance(channels, str):
        channels = channels.replace(",", " ").split()
    try:
        picked = tuple(int(c) for c in channels)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be three channel indices such as (0, 1, 2), got {channels!r}") from None
    if len(picked) != 3 or min(picked) < 0:
        raise ValueError(f"{name} must be three channel indices >= 0 (red, green, blue), got {channels!r}")
    return picked


#: values of a label image read at a time by :func:`painted_labels` (small temporaries, no page faults)
CHECK_STRIP_VALUES = 1 << 20


def painted_labels(scribbles) -> np.ndarray:
    """The distinct labels above 0 of a label image, read in strips of :data:`CHECK_STRIP_VALUES` values
    (no temporary as large as the image: a 16 MP plane costs a few ms).

    Examples
    --------
    >>> s = np.zeros((4, 4), np.uint8); s[0, 0] = 2; s[3, 3] = 1
    >>> painted_labels(s).tolist()
    [1, 2]
    """
    flat = np.asarray(scribbles).reshape(-1)
    step = CHECK_STRIP_VALUES
    parts = (flat[i : i + step] for i in range(0, flat.size, step))
    return np.unique(np.concatenate([np.zeros(0, np.int64)] + [np.unique(p[p > 0]).astype(np.int64) for p in parts]))


def check_scribbles(scribbles, shape: tuple[int, int], name: str = "scribbles", convert: bool = True) -> np.ndarray:
    """Validate a scribble label image and return it as ``uint8`` (every allowed label fits).

    Parameters
    ----------
    scribbles : array-like of int
        ``(rows, cols)`` labels: 0 unlabelled, 1 object, 2 background, ``k``
        class ``k`` when more than two labels are painted.
    shape : tuple of int
        ``(rows, cols)`` of the image the scribbles belong to.
    name : str
        Argument name used in error messages.
    convert : bool
        ``False``: only check, and return the scribbles as they are. The checks
        read the array strip by strip, so that a 16 MP plane costs a few ms on
        napari's GUI thread, where the conversion to int32 would cost 60-200 ms.

    Returns
    -------
    numpy.ndarray
        The scribbles as a new uint8 array (as given, with ``convert=False``). Labels
        are at most :data:`MAX_SCRIBBLE_LABEL`; uint8 rather than int32 is a quarter of
        the memory (25 MB for a 25 MP plane, whose int32 copy took 1.5 s of a first
        cut on the development machine, most of it the first touch of 100 MB).

    Raises
    ------
    ValueError
        If the shape differs from ``shape``, values are negative or not whole
        numbers, a label exceeds :data:`MAX_SCRIBBLE_LABEL` (values such as
        128 and 255 come from a grey mask or a drawing, see :func:`grey_mask_advice`),
        or fewer than two different labels are painted.

    Notes
    -----
    Grey-mask values are refused, not mapped: which grey is the object is not
    knowable (255 is the object in most masks, but 128 is GrabCut's unknown
    band, and a drawing may use either for the background), and a guess that
    swaps object and background would pass silently.

    Examples
    --------
    >>> s = np.zeros((4, 4), int); s[0, 0] = 1; s[3, 3] = 2
    >>> check_scribbles(s, (4, 4)).dtype
    dtype('uint8')
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
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must be >= 0 (0 = unlabelled), got minimum {arr.min():g}")
    present = painted_labels(arr)
    if present.size and present[-1] > MAX_SCRIBBLE_LABEL:
        raise ValueError(grey_mask_advice(name, present))
    if present.size == 0:
        raise ValueError(
            f"{name} are empty: paint at least one object (1) and one background (2) stroke"
        )
    if present.size == 1:
        raise ValueError(
            f"{name} hold only label {int(present[0])}: paint at least one object (1) "
            "and one background (2) stroke"
        )
    return arr.astype(np.uint8) if convert else arr


def grey_mask_advice(name: str, present) -> str:
    """The message for scribbles whose labels look like a grey mask (0/128/255) rather than 0/1/2.

    Examples
    --------
    >>> grey_mask_advice("scribbles", [128, 255])
    'scribbles hold labels 128, 255, which look like a grey mask or a drawing, not scribble labels (0 = not painted, 1 = object, 2 = background, k = class k up to 63): convert them, e.g. numpy.select([s == 255, s == 128], [1, 2]) when 255 marks the object and 128 the background, or save the strokes as a palette PNG whose indices are 0, 1, 2'
    """
    values = [int(v) for v in present]
    shown = ", ".join(map(str, values[:6])) + (", ..." if len(values) > 6 else "")
    if len(values) >= 2:
        obj, bg = values[-1], values[-2]
        how = f"numpy.select([s == {obj}, s == {bg}], [1, 2]) when {obj} marks the object and {bg} the background"
    else:
        how = f"numpy.where(s == {values[0]}, 1, 0) for object strokes, plus background strokes painted as 2"
    return (f"{name} hold labels {shown}, which look like a grey mask or a drawing, not scribble labels "
            f"(0 = not painted, 1 = object, 2 = background, k = class k up to {MAX_SCRIBBLE_LABEL}): convert "
            f"them, e.g. {how}, or save the strokes as a palette PNG whose indices are 0, 1, 2")


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
