"""Reading and writing images and label images (PNG, TIFF, JPEG, BMP)."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np

#: label-image suffixes :func:`write_labels` accepts
LABEL_SUFFIXES = (".png", ".tif", ".tiff")


def _read_tiff(path: Path) -> np.ndarray:
    """Read a TIFF quietly (tifffile logs decoder warnings) and reject empty results."""
    import tifffile

    log = logging.getLogger("tifffile")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        arr = np.asarray(tifffile.imread(str(path)))
    finally:
        log.setLevel(level)
    if arr.size == 0:
        raise ValueError("no image data in the file")
    return arr


@contextlib.contextmanager
def _open_pil(path):
    """``PIL.Image.open`` without Pillow's decompression-bomb limit (89 MP): aerial tiles are larger.

    The files are the user's own, named on the command line; the memory guard of the core
    (:mod:`napari_deepseg.core.utils.memory`) decides what fits.
    """
    from PIL import Image

    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(path) as im:
            yield im
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _check_file(p: Path, what: str) -> None:
    """Raise a one-line ``ValueError`` unless ``p`` is an existing file (a folder is said to be one)."""
    if p.is_dir():
        raise ValueError(f"{what} path {p} is a folder, not a file: name the {what} file itself")
    if not p.is_file():
        raise ValueError(f"{what} file not found: {p}")


def read_image(path) -> np.ndarray:
    """Read an image file as a numpy array (``(rows, cols)`` or ``(rows, cols, channels)``).

    Raises
    ------
    ValueError
        If the file does not exist or is not a readable image.
    """
    p = Path(path)
    _check_file(p, "image")
    try:
        if p.suffix.lower() in (".tif", ".tiff"):
            return _read_tiff(p)
        with _open_pil(p) as im:
            if im.mode == "P":
                im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
            elif im.mode in ("LA", "La"):
                im = im.getchannel(0)  # gray + alpha: the alpha carries no intensity
            return np.asarray(im)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is one clear line
        raise ValueError(f"cannot read image {p}: {type(exc).__name__}: {exc}") from None


def read_labels(path) -> np.ndarray:
    """Read a label image: palette PNGs give their indices; colour files their first channel.

    A colour file is read by its first channel only when that keeps every
    painted pixel: a red/blue drawing (blue strokes have no red) is refused with
    the way to convert it, not read as "255 where red, 0 elsewhere".

    Raises
    ------
    ValueError
        If the file does not exist or cannot be read, or it is a colour
        drawing whose first channel loses painted pixels.
    """
    p = Path(path)
    _check_file(p, "label")
    try:
        if p.suffix.lower() in (".tif", ".tiff"):
            arr = _read_tiff(p)
        else:
            with _open_pil(p) as im:
                arr = np.asarray(im)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"cannot read labels {p}: {type(exc).__name__}: {exc}") from None
    tiff_volume = p.suffix.lower() in (".tif", ".tiff") and arr.ndim == 3 and arr.shape[-1] not in (3, 4)
    if arr.ndim == 3 and not tiff_volume:  # a colour file: its first channel (a TIFF stack stays 3-D)
        _check_first_channel(p, arr)
        arr = arr[..., 0]
    return arr


def _check_first_channel(path: Path, arr: np.ndarray) -> None:
    """Refuse a colour label file whose first channel misses painted pixels (e.g. blue strokes)."""
    colour = arr[..., :3] if arr.shape[-1] >= 3 else arr[..., :1]
    painted = colour.max(axis=-1) > 0
    if arr.shape[-1] == 4:
        painted &= arr[..., 3] > 0  # transparent pixels are not painted
    lost = int(np.count_nonzero(painted & (colour[..., 0] == 0)))
    if lost:
        raise ValueError(
            f"label file {path} is a colour picture whose first channel, which is what is read, misses {lost} "
            "painted pixels (blue or green strokes): label files hold one value per pixel (scribbles: 0 = not "
            "painted, 1 = object, 2 = background, k = class k); save them as a palette PNG (its indices are "
            "read) or a greyscale PNG of these values, e.g. from napari's Labels layer, or convert a red (object) "
            "/ blue (background) drawing as the README's 'Scribble files' shows")


def write_labels(path, labels: np.ndarray) -> Path:
    """Write a 2-D label image as PNG (8 or 16 bit) or TIFF (also 3-D), creating folders as needed.

    Raises
    ------
    ValueError
        For a suffix other than .png, .tif or .tiff, or labels that do not fit a PNG.
    """
    p = Path(path)
    if p.suffix.lower() not in LABEL_SUFFIXES:
        raise ValueError(f"cannot write labels to {p}: use a file name ending in {', '.join(LABEL_SUFFIXES)}")
    p.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(labels)
    if p.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(str(p), arr)
        return p
    from PIL import Image

    if arr.ndim != 2:
        raise ValueError(f"{arr.ndim}-D labels cannot be a PNG; write {p.with_suffix('.tif')} instead")
    top = arr.max(initial=0)
    if top > 65535:
        raise ValueError(f"labels above 65535 do not fit a PNG; write {p.with_suffix('.tif')} instead")
    arr = arr.astype(np.uint8 if top < 256 else np.uint16, copy=False)  # uint8 strokes: no copy
    Image.fromarray(arr).save(p)
    return p
