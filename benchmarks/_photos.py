"""Large natural test images made from the public photographs (issue 13).

* :func:`photo_mosaic`: Berkeley photos, each upscaled to ``tile`` x ``tile``,
  laid out on a grid (25 tiles of 1000 x 1000 = 25 MP), with their object masks.
* :func:`upscaled_photo`: one GrabCut photo upscaled to about ``megapixels`` MP.

Both come with strokes drawn from eroded masks (:func:`strokes_from_mask`):
the skeleton of the object eroded by a margin, and of the background eroded
likewise, a few pixels wide, as a user's object and background strokes.
Upscaling is bicubic (Pillow), so an upscaled photo has millions of colours
and smooth gradients, unlike a synthetic scene.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from _data import datasets_dir


def _resize(array: np.ndarray, size, resample) -> np.ndarray:
    return np.asarray(Image.fromarray(array).resize(size, resample))


def strokes_from_mask(mask: np.ndarray, margin: int, width: int = 2, keep: float = 0.25, seed: int = 0) -> np.ndarray:
    """Scribbles (1 object, 2 background) along the skeletons of the eroded object and background.

    Only a fraction ``keep`` of each skeleton's pixels (whole random branches
    are not modelled: contiguous pieces along it) is kept, so the strokes are
    sparse like a user's.
    """
    from skimage.morphology import skeletonize

    out = np.zeros(mask.shape, np.uint8)
    rng = np.random.default_rng(seed)
    for value, region in ((1, mask), (2, ~mask)):
        core = ndi.binary_erosion(region, iterations=margin) if margin else region
        if not core.any():
            core = ndi.binary_erosion(region, iterations=max(1, margin // 4))
        skel = skeletonize(core)
        if keep < 1:  # pieces: drop skeleton pixels in random 64x64 cells
            cells = rng.random((mask.shape[0] // 64 + 1, mask.shape[1] // 64 + 1)) < keep
            rr, cc = np.nonzero(skel)
            drop = ~cells[rr // 64, cc // 64]
            skel[rr[drop], cc[drop]] = False
            if not skel.any():
                skel = skeletonize(core)
        line = ndi.binary_dilation(skel, iterations=width) & core
        out[line & (out == 0)] = value
    return out


def photo_mosaic(grid: int, tile: int = 1000, start: int = 0):
    """``(image, mask, strokes)`` of ``grid`` x ``grid`` Berkeley photos upscaled to ``tile`` px squares."""
    base = datasets_dir() / "berkeley"
    paths = sorted((base / "images").glob("*.jpg"))[start : start + grid * grid]
    image = np.empty((grid * tile, grid * tile, 3), np.uint8)
    mask = np.zeros((grid * tile, grid * tile), bool)
    strokes = np.zeros(mask.shape, np.uint8)
    for k, path in enumerate(paths):
        r, c = divmod(k, grid)
        sl = np.s_[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile]
        photo = np.asarray(Image.open(path).convert("RGB"))
        m = np.asarray(Image.open(base / "masks" / (path.stem + ".png")).convert("L")) > 0
        image[sl] = _resize(photo, (tile, tile), Image.BICUBIC)
        mask[sl] = _resize(m.astype(np.uint8) * 255, (tile, tile), Image.BILINEAR) > 127
        strokes[sl] = strokes_from_mask(mask[sl], margin=tile // 40, seed=k)
    return image, mask, strokes


def upscaled_photo(megapixels: float, stem: str = "bool"):
    """``(image, mask, strokes)`` of one GrabCut photo upscaled to about ``megapixels`` MP (ignore band: object if > 127)."""
    base = datasets_dir() / "grabcut"
    path = next((base / "images").glob(stem + ".*"))
    photo = np.asarray(Image.open(path).convert("RGB"))
    m = np.asarray(Image.open(next((base / "masks").glob(stem + ".*"))).convert("L"))
    f = float(np.sqrt(megapixels * 1e6 / (photo.shape[0] * photo.shape[1])))
    size = (int(round(photo.shape[1] * f)), int(round(photo.shape[0] * f)))
    image = _resize(photo, size, Image.BICUBIC)
    mask = _resize(m, size, Image.NEAREST) > 127
    strokes = strokes_from_mask(mask, margin=max(4, int(12 * f)), seed=0)
    return image, mask, strokes
