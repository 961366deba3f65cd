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


def strokes_from_mask(mask: np.ndarray, margin: int, width: int = 2, keep: float = 0.35, seed: int = 0,
                      min_area: int = 2000) -> np.ndarray:
    """Scribbles (1 object, 2 background) along the skeletons of the eroded object and background.

    Pieces of each skeleton (those in a random ``keep`` share of 64 x 64 cells)
    are kept, so the strokes are sparse like a user's; every part of the eroded
    object or background of at least ``min_area`` pixels keeps at least one
    piece, as a user strokes every object they want.
    """
    from skimage.morphology import skeletonize

    out = np.zeros(mask.shape, np.uint8)
    rng = np.random.default_rng(seed)
    cells = rng.random((mask.shape[0] // 64 + 1, mask.shape[1] // 64 + 1)) < keep
    for value, region in ((1, mask), (2, ~mask)):
        core = ndi.binary_erosion(region, iterations=margin) if margin else region
        if not core.any():
            core = ndi.binary_erosion(region, iterations=max(1, margin // 4))
        skel = skeletonize(core)
        rr, cc = np.nonzero(skel)
        kept = np.zeros_like(skel)
        on = cells[rr // 64, cc // 64]
        kept[rr[on], cc[on]] = True
        parts, n = ndi.label(core)
        if n:
            area = np.bincount(parts.ravel(), minlength=n + 1)
            has = np.bincount(parts[kept], minlength=n + 1) > 0
            for part in np.flatnonzero((area >= min_area) & ~has):
                if part:
                    kept |= skel & (parts == part)  # a part without a piece: its whole skeleton
        line = ndi.binary_dilation(kept, iterations=width) & core
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


def upscaled_photo(megapixels: float, stem: str = "bool", square: bool = False):
    """``(image, mask, strokes)`` of one GrabCut photo upscaled to about ``megapixels`` MP (ignore band: object if > 127).

    ``square``: stretched to a square of that many pixels. The strokes are drawn
    on the photo at its own size and upscaled with it (nearest neighbour), as a
    user paints at screen scale.
    """
    base = datasets_dir() / "grabcut"
    path = next((base / "images").glob(stem + ".*"))
    photo = np.asarray(Image.open(path).convert("RGB"))
    m = np.asarray(Image.open(next((base / "masks").glob(stem + ".*"))).convert("L")) > 127
    f = float(np.sqrt(megapixels * 1e6 / (photo.shape[0] * photo.shape[1])))
    size = (int(round(photo.shape[1] * f)), int(round(photo.shape[0] * f)))
    if square:
        side = int(round(np.sqrt(megapixels * 1e6)))
        size = (side, side)
    image = _resize(photo, size, Image.BICUBIC)
    mask = _resize(m.astype(np.uint8) * 255, size, Image.BILINEAR) > 127
    strokes = _resize(strokes_from_mask(m, margin=12, seed=0), size, Image.NEAREST)
    return image, mask, strokes


def photo_run(spec: str):
    """``(image, mask, strokes)`` of a run spec ``KIND:MP``: ``mosaic:25`` (:func:`photo_mosaic` on a 5 x 5 grid)
    or ``upscaled:16`` (:func:`upscaled_photo`)."""
    kind, mp = spec.split(":")[:2]
    if kind == "mosaic":
        return photo_mosaic(int(round(float(mp) ** 0.5)))
    if kind == "upscaled":
        return upscaled_photo(float(mp))
    raise ValueError(f"run must be mosaic:MP or upscaled:MP, got {spec!r}")
