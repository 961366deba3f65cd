"""Training datasets on disk: discovery, loading at a fixed size, the train/validation split.

Two layouts are recognised:

``images/`` + ``masks/``
    Files matched by stem. Mask values: 0 background, 128 unknown (ignored,
    GrabCut's convention), anything else object.
Oxford-IIIT Pet
    ``images/*.jpg`` and ``annotations/trimaps/<stem>.png`` with 1 pet,
    2 background, 3 border (ignored).

Targets use 0 background, 1 object, :data:`IGNORE` unknown. With
``classes > 2`` (multi-class) a mask value ``k < classes`` is class ``k``
(a Pet trimap gives 0 background, 1 pet, 2 border) and every other value is
unknown.

Samples may also live in memory (:class:`ArraySample`: an image and its labels,
e.g. taken from napari layers); :func:`load_sample` reads both kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: target value of pixels the loss and the metrics leave out
IGNORE = 255
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
#: mask value meaning "unknown" in the images/ + masks/ layout
MASK_UNKNOWN = 128


@dataclass(frozen=True)
class Sample:
    """One training image and its annotation file.

    Attributes
    ----------
    image, mask : Path
    layout : str
        ``"masks"`` or ``"pet"`` (how the annotation is read).
    """

    image: Path
    mask: Path
    layout: str

    @property
    def stem(self) -> str:
        return self.image.stem


@dataclass(frozen=True, eq=False)
class ArraySample:
    """One training image and its labels held in memory (e.g. a napari image layer and its Labels layer).

    Attributes
    ----------
    name : str
        A name for messages and file names.
    image : numpy.ndarray
        ``(rows, cols)`` or ``(rows, cols, channels)``.
    labels : numpy.ndarray
        ``(rows, cols)`` integer labels: 0 background, 1 object (``k`` class ``k``);
        ``ignore`` (if given) unknown.
    ignore : int, optional
    """

    name: str
    image: np.ndarray
    labels: np.ndarray
    ignore: int | None = None
    layout: str = "array"

    @property
    def stem(self) -> str:
        return self.name


def _files(folder: Path, suffixes=IMAGE_SUFFIXES) -> dict:
    return {p.stem: p for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")}


def find_samples(root) -> list:
    """Every image with an annotation under ``root`` (either layout).

    Raises
    ------
    ValueError
        If ``root`` is not a folder of a known layout or no image has an annotation.

    Examples
    --------
    >>> find_samples("/nonexistent")
    Traceback (most recent call last):
    ...
    ValueError: dataset folder /nonexistent does not exist
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(f"dataset folder {root} does not exist")
    if not (root / "images").is_dir():
        raise ValueError(f"dataset folder {root} has no images/ folder (expected images/ + masks/, "
                         f"or the Oxford-IIIT Pet layout images/ + annotations/trimaps/)")
    images = _files(root / "images")
    if (root / "masks").is_dir():
        notes, layout = _files(root / "masks"), "masks"
    elif (root / "annotations" / "trimaps").is_dir():
        notes, layout = _files(root / "annotations" / "trimaps", (".png",)), "pet"
    else:
        raise ValueError(f"dataset folder {root} has neither masks/ nor annotations/trimaps/")
    stems = sorted(set(images) & set(notes))
    if not stems:
        raise ValueError(f"no image in {root / 'images'} has an annotation with the same file stem")
    return [Sample(images[s], notes[s], layout) for s in stems]


def target_from_annotation(ann: np.ndarray, layout: str, classes: int = 2, ignore: int | None = None) -> np.ndarray:
    """uint8 target (0 background, 1 object or class ``k``, :data:`IGNORE`) from a mask or a Pet trimap.

    Parameters
    ----------
    ann : numpy.ndarray
        The annotation as read (first channel of a colour file).
    layout : str
        ``"masks"``, ``"pet"`` or ``"array"`` (labels of an :class:`ArraySample`).
    classes : int
        2 for binary targets; more for multi-class (value ``k`` = class ``k``).
    ignore : int, optional
        Extra value meaning unknown (``"array"`` layout).

    Examples
    --------
    >>> target_from_annotation(np.array([[1, 2, 3]]), "pet").tolist()
    [[1, 0, 255]]
    >>> target_from_annotation(np.array([[0, 128, 255]]), "masks").tolist()
    [[0, 255, 1]]
    >>> target_from_annotation(np.array([[1, 2, 3]]), "pet", classes=3).tolist()
    [[1, 0, 2]]
    >>> target_from_annotation(np.array([[0, 1, 2, 7]]), "masks", classes=3).tolist()
    [[0, 1, 2, 255]]
    """
    ann = np.asarray(ann)
    if ann.ndim == 3:
        ann = ann[..., 0]
    if int(classes) < 2:
        raise ValueError(f"classes must be >= 2, got {classes}")
    out = np.zeros(ann.shape, np.uint8)
    if int(classes) > 2:
        values = ann.astype(np.int64)
        if layout == "pet":
            values = np.select([values == 1, values == 2, values == 3], [1, 0, 2], IGNORE)
        out[:] = np.where((values >= 0) & (values < int(classes)), values, IGNORE)
        if ignore is not None:
            out[ann == ignore] = IGNORE
        return out
    if layout == "array":
        out[ann != 0] = 1
        if ignore is not None:
            out[ann == ignore] = IGNORE
    elif layout == "pet":
        out[ann == 1] = 1
        out[(ann != 1) & (ann != 2)] = IGNORE
    else:
        out[ann != 0] = 1
        out[ann == MASK_UNKNOWN] = IGNORE
    return out


def _read_rgb(path: Path) -> np.ndarray:
    """A picture file as uint8 RGB (CMYK, palette and gray JPEG/PNG files included)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 - any decoder failure is one clear line
        raise ValueError(f"cannot read image {path}: {type(exc).__name__}: {exc}") from None


def read_sample(sample, classes: int = 2) -> tuple:
    """``(image, target)`` at full resolution: uint8 RGB ``(rows, cols, 3)`` and uint8 target.

    Raises
    ------
    ValueError
        If a file cannot be read or the image and annotation sizes differ.
    """
    from ...io.files import read_image, read_labels
    from ...utils.validation import as_float_image

    if isinstance(sample, ArraySample):
        image, ann, name, note = np.asarray(sample.image), np.asarray(sample.labels), sample.name, "its labels"
        target = target_from_annotation(ann, "array", classes, sample.ignore)
    else:
        suffix = sample.image.suffix.lower()
        image = _read_rgb(sample.image) if suffix not in (".tif", ".tiff") else read_image(sample.image)
        target = target_from_annotation(read_labels(sample.mask), sample.layout, classes)
        name, note = sample.image.name, f"its annotation {sample.mask.name}"
    if image.shape[:2] != target.shape:
        raise ValueError(f"{name} is {image.shape[:2]} but {note} is {target.shape}")
    rgb = as_float_image(image, name=str(name))
    rgb = np.repeat(rgb, 3, axis=-1) if rgb.shape[-1] == 1 else rgb[..., :3]
    return np.round(rgb * 255).astype(np.uint8), target


def load_sample(sample, size: int, classes: int = 2) -> tuple:
    """``(image, target)`` resized to ``size x size``: uint8 RGB ``(size, size, 3)`` and uint8 target.

    Raises
    ------
    ValueError
        If a file cannot be read or the image and annotation sizes differ.
    """
    from PIL import Image

    rgb, target = read_sample(sample, classes)
    pic = Image.fromarray(rgb).resize((size, size), Image.BILINEAR)
    tgt = Image.fromarray(target).resize((size, size), Image.NEAREST)
    return np.asarray(pic, np.uint8), np.asarray(tgt, np.uint8)


def split_samples(samples: list, val_fraction: float = 0.1, seed: int = 0) -> tuple:
    """A fixed random ``(train, validation)`` split (at least one of each from two samples on).

    Examples
    --------
    >>> train, val = split_samples(list(range(20)))
    >>> len(train), len(val), sorted(train + val) == list(range(20))
    (18, 2, True)
    """
    n = len(samples)
    if n < 2:
        raise ValueError(f"a dataset needs at least 2 annotated images for a train/validation split, got {n}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    val = sorted(order[:n_val].tolist())
    train = sorted(order[n_val:].tolist())
    return [samples[i] for i in train], [samples[i] for i in val]
