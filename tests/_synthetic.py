"""Seeded synthetic images and scribbles shared by the test-suite.

Every factory takes a ``seed`` and returns new arrays, so tests are reproducible
and independent. Images are napari-ordered: ``(rows, cols)`` for grayscale,
``(rows, cols, channels)`` for colour.

Factories
---------
disk_image
    A bright disk on a textured (stripes + smooth noise) background, with its
    boolean truth mask.
disk_scribbles
    Object strokes (1) inside a truth mask and background strokes (2) around it.
three_class_image
    Two objects (a disk and a square) on a textured background; the truth uses the
    segmentation output convention: 0 background, 1 first object, 3 second object.
three_class_scribbles
    Strokes 1 (first object), 2 (background) and 3 (second object).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

#: colours in [0, 1] of the regions of the synthetic images (RGB)
DISK_RGB = (0.85, 0.35, 0.25)
BACKGROUND_RGB = (0.25, 0.40, 0.60)
SQUARE_RGB = (0.30, 0.75, 0.30)
#: gray levels in [0, 1] for one-channel images
DISK_GRAY = 0.80
BACKGROUND_GRAY = 0.30
SQUARE_GRAY = 0.55

SUPPORTED_DTYPES = (np.uint8, np.uint16, np.float32)


def _texture(shape, rng, amplitude=0.08):
    """Stripes plus smoothed noise, zero-mean, roughly within ``±amplitude``."""
    rows, cols = shape
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    stripes = np.sin(2 * np.pi * (xx + 0.5 * yy) / 9.0)
    blobs = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 2.0)
    blobs /= max(float(np.abs(blobs).max()), 1e-6)
    return (amplitude * 0.5 * (stripes + blobs)).astype(np.float32)


def _to_dtype(img01: np.ndarray, dtype) -> np.ndarray:
    """Convert a float image in [0, 1] to ``dtype`` (float32 stays in [0, 1])."""
    img01 = np.clip(img01, 0.0, 1.0)
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return np.round(img01 * 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.round(img01 * 65535).astype(np.uint16)
    if dtype == np.float32:
        return img01.astype(np.float32)
    raise ValueError(f"dtype must be one of uint8, uint16, float32; got {dtype}")


def _compose(masks_and_colours, shape, channels, dtype, noise, seed):
    """Paint regions over a textured background and add per-pixel Gaussian noise."""
    if channels not in (1, 3, 4):
        raise ValueError(f"channels must be 1, 3 or 4, got {channels}")
    rng = np.random.default_rng(seed)
    tex = _texture(shape, rng)
    if channels == 1:
        img = np.full(shape, BACKGROUND_GRAY, np.float32) + tex
        for mask, (_, gray) in masks_and_colours:
            img[mask] = gray
        img += rng.normal(0.0, noise, shape).astype(np.float32)
        return _to_dtype(img, dtype)
    img = np.empty(shape + (3,), np.float32)
    img[:] = BACKGROUND_RGB
    img += tex[..., None]
    for mask, (rgb, _) in masks_and_colours:
        img[mask] = rgb
    img += rng.normal(0.0, noise, img.shape).astype(np.float32)
    if channels == 4:
        alpha = np.ones(shape + (1,), np.float32)
        img = np.concatenate([img, alpha], axis=-1)
    return _to_dtype(img, dtype)


def disk_mask(shape=(64, 80), radius=None, center=None) -> np.ndarray:
    """Boolean disk of ``radius`` (default: a quarter of the smaller side) at ``center``."""
    rows, cols = shape
    if radius is None:
        radius = min(rows, cols) / 4.0
    cy, cx = ((rows - 1) / 2.0, (cols - 1) / 2.0) if center is None else center
    yy, xx = np.mgrid[0:rows, 0:cols]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2


def disk_image(shape=(64, 80), radius=None, channels=3, dtype=np.uint8, noise=0.03, seed=0):
    """A disk on a textured background.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)``.
    radius : float, optional
        Disk radius in pixels (default: a quarter of the smaller side).
    channels : {1, 3, 4}
        1 gives a 2-D ``(rows, cols)`` grayscale image; 3 RGB; 4 RGBA (opaque alpha).
    dtype : {numpy.uint8, numpy.uint16, numpy.float32}
        Integer dtypes use their full range; float32 lies in [0, 1].
    noise : float
        Standard deviation of per-pixel Gaussian noise, in [0, 1] units.
    seed : int
        Seed of the texture and the noise.

    Returns
    -------
    image : numpy.ndarray
    truth : numpy.ndarray of bool
        ``(rows, cols)``, True on the disk.
    """
    shape = tuple(int(s) for s in shape)
    truth = disk_mask(shape, radius)
    image = _compose([(truth, (DISK_RGB, DISK_GRAY))], shape, channels, dtype, noise, seed)
    return image, truth


def _strokes_inside(mask: np.ndarray, width: int, margin: int) -> np.ndarray:
    """A horizontal and a vertical stroke through the centroid, kept ``margin`` inside ``mask``."""
    inner = ndi.binary_erosion(mask, iterations=margin) if margin > 0 else mask.copy()
    if not inner.any():
        inner = mask
    cy, cx = (int(round(c)) for c in ndi.center_of_mass(inner))
    half = max(0, width // 2)
    cross = np.zeros_like(mask)
    cross[max(0, cy - half) : cy + half + 1, :] = True
    cross[:, max(0, cx - half) : cx + half + 1] = True
    return cross & inner


def disk_scribbles(truth, width=3, margin=3, border=4, seed=0) -> np.ndarray:
    """Scribbles for a binary truth mask: 1 inside, 2 outside.

    Parameters
    ----------
    truth : numpy.ndarray of bool
        ``(rows, cols)`` object mask.
    width : int
        Stroke width in pixels.
    margin : int
        Distance kept from the object's boundary, in pixels, on both sides.
    border : int
        Distance of the background frame from the image edge, in pixels.
    seed : int
        Unused today (the strokes are deterministic); kept for a uniform signature.

    Returns
    -------
    numpy.ndarray of uint8
        ``(rows, cols)``: 0 unlabelled, 1 object stroke, 2 background stroke.
    """
    del seed
    truth = np.asarray(truth, bool)
    rows, cols = truth.shape
    scrib = np.zeros(truth.shape, np.uint8)
    scrib[_strokes_inside(truth, width, margin)] = 1
    frame = np.zeros_like(truth)
    b, w = border, width
    frame[b : b + w, b : cols - b] = True
    frame[rows - b - w : rows - b, b : cols - b] = True
    frame[b : rows - b, b : b + w] = True
    frame[b : rows - b, cols - b - w : cols - b] = True
    away = ~ndi.binary_dilation(truth, iterations=margin)
    scrib[frame & away] = 2
    return scrib


def three_class_truth(shape=(64, 96)) -> np.ndarray:
    """0 background, 1 a disk on the left, 3 a square on the right."""
    rows, cols = shape
    truth = np.zeros(shape, np.uint8)
    r = min(rows, cols // 2) / 4.0
    truth[disk_mask(shape, r, center=((rows - 1) / 2.0, cols / 4.0))] = 1
    half = int(round(r))
    cy, cx = rows // 2, (3 * cols) // 4
    truth[cy - half : cy + half, cx - half : cx + half] = 3
    return truth


def three_class_image(shape=(64, 96), channels=3, dtype=np.uint8, noise=0.03, seed=0):
    """Two objects (disk = class 1, square = class 3) on a textured background.

    Returns
    -------
    image : numpy.ndarray
    truth : numpy.ndarray of uint8
        0 background, 1 disk, 3 square: the labels a session's ``segment``
        returns for scribbles 1, 2 (background) and 3.
    """
    shape = tuple(int(s) for s in shape)
    truth = three_class_truth(shape)
    regions = [(truth == 1, (DISK_RGB, DISK_GRAY)), (truth == 3, (SQUARE_RGB, SQUARE_GRAY))]
    image = _compose(regions, shape, channels, dtype, noise, seed)
    return image, truth


def three_class_scribbles(truth, width=3, margin=3, border=4) -> np.ndarray:
    """Strokes 1 in the disk, 3 in the square and 2 on a background frame."""
    truth = np.asarray(truth)
    scrib = disk_scribbles(truth > 0, width=width, margin=margin, border=border)
    scrib[scrib == 1] = 0
    for k in (1, 3):
        scrib[_strokes_inside(truth == k, width, margin)] = k
    return scrib


def write_disk_dataset(root, n=3, scribbles=True):
    """A benchmark dataset folder: ``images/`` (PNG and JPEG), ``masks/`` and ``scribbles/STEM-anno.png``."""
    from PIL import Image

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    if scribbles:
        (root / "scribbles").mkdir()
    for k in range(n):
        img, truth = disk_image((48, 56), seed=k)
        Image.fromarray(img).save(root / "images" / f"im{k}.jpg" if k % 2 else root / "images" / f"im{k}.png")
        mask = np.where(truth, 255, 0).astype(np.uint8)
        Image.fromarray(mask).save(root / "masks" / f"im{k}.png")
        if scribbles:
            Image.fromarray(disk_scribbles(truth, seed=k).astype(np.uint8)).save(root / "scribbles" / f"im{k}-anno.png")
    return root


def nir_disk_image(shape=(64, 80), dtype=np.uint16, noise=0.03, seed=0, nir_range=0.25):
    """RGB + near-infrared bands ``(rows, cols, 4)`` where only the NIR band shows a disk.

    The three colour bands are the textured background everywhere (the disk is
    invisible in them); the fourth band is dark with a bright disk, spanning only
    ``nir_range`` of the dtype's range (a narrower band than the colours, as NIR
    often is), so a global stretch would shrink its contrast.

    Returns
    -------
    image : numpy.ndarray
        ``(rows, cols, 4)`` of ``dtype``.
    truth : numpy.ndarray of bool
        ``(rows, cols)``, True on the disk.
    """
    shape = tuple(int(s) for s in shape)
    truth = disk_mask(shape)
    rng = np.random.default_rng(seed)
    rgb = np.empty(shape + (3,), np.float32)
    rgb[:] = BACKGROUND_RGB
    rgb += _texture(shape, rng)[..., None]
    rgb += rng.normal(0.0, noise, rgb.shape).astype(np.float32)
    nir = np.where(truth, 0.8, 0.3).astype(np.float32) + rng.normal(0.0, noise, shape).astype(np.float32)
    nir = np.clip(nir, 0.0, 1.0) * np.float32(nir_range)
    return _to_dtype(np.concatenate([rgb, nir[..., None]], axis=-1), dtype), truth
