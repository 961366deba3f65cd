"""A synthetic segmentation dataset: shapes on textured backgrounds (tests and training benchmarks).

Every image holds one target shape (an ellipse, a rectangle or a triangle of a
random colour) on a striped, noisy background; half of them also hold a
second shape, a distractor that is background in the mask, so a model has to
use the click to know which shape is meant.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _shape_mask(kind: int, size: int, rng: np.random.Generator, avoid=None) -> np.ndarray:
    from skimage.draw import ellipse, polygon

    mask = np.zeros((size, size), bool)
    for _ in range(20):
        mask[:] = False
        r, c = rng.uniform(0.25, 0.75, 2) * size
        a, b = rng.uniform(0.12, 0.25, 2) * size
        if kind == 0:
            rr, cc = ellipse(r, c, a, b, shape=mask.shape, rotation=rng.uniform(0, np.pi))
        elif kind == 1:
            rr, cc = polygon([r - a, r - a, r + a, r + a], [c - b, c + b, c + b, c - b], shape=mask.shape)
        else:
            ang = rng.uniform(0, 2 * np.pi) + np.array([0, 2.1, 4.2])
            rr, cc = polygon(r + a * 1.3 * np.sin(ang), c + b * 1.3 * np.cos(ang), shape=mask.shape)
        mask[rr, cc] = True
        if mask.sum() > 0.01 * size * size and (avoid is None or not (mask & avoid).any()):
            return mask
    return mask if avoid is None else np.zeros_like(mask)


def shapes_sample(size: int = 64, seed: int = 0, distractor: float = 0.5) -> tuple:
    """One synthetic ``(image, mask)``: uint8 RGB ``(size, size, 3)`` and uint8 mask (0 or 255).

    ``distractor`` is the probability of a second shape that the mask leaves as
    background (0 for a dataset where every shape is the object).

    Examples
    --------
    >>> img, mask = shapes_sample(32, seed=1)
    >>> img.shape, img.dtype.name, sorted(np.unique(mask).tolist())
    ((32, 32, 3), 'uint8', [0, 255])
    """
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    period = rng.uniform(4, 12)
    angle = rng.uniform(0, np.pi)
    stripes = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
    blobs = ndi.gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), 2.0)
    blobs /= max(float(np.abs(blobs).max()), 1e-6)
    bg = rng.uniform(0.15, 0.85, 3).astype(np.float32)
    img = bg + (0.12 * stripes + 0.1 * blobs)[..., None]
    target = _shape_mask(int(rng.integers(3)), size, rng)
    colour = rng.uniform(0, 1, 3).astype(np.float32)
    while np.abs(colour - bg).sum() < 0.6:
        colour = rng.uniform(0, 1, 3).astype(np.float32)
    img[target] = colour + 0.05 * blobs[target, None]
    if rng.random() < distractor:
        other = _shape_mask(int(rng.integers(3)), size, rng, avoid=ndi.binary_dilation(target, iterations=2))
        img[other] = rng.uniform(0, 1, 3).astype(np.float32)
    img += rng.normal(0, 0.03, img.shape).astype(np.float32)
    image = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    return image, (target * 255).astype(np.uint8)


def write_shapes_dataset(root, n: int = 40, size: int = 64, seed: int = 0, distractor: float = 0.5) -> Path:
    """Write ``n`` samples as ``root/images/NNNN.png`` + ``root/masks/NNNN.png``; returns ``root``."""
    from PIL import Image

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for k in range(int(n)):
        image, mask = shapes_sample(size, seed=seed * 1_000_003 + k, distractor=distractor)
        Image.fromarray(image).save(root / "images" / f"{k:04d}.png")
        Image.fromarray(mask).save(root / "masks" / f"{k:04d}.png")
    return root
