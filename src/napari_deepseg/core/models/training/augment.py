"""Augmentation of training batches: random resized crop, flips, rotation, colour jitter, Gaussian noise.

All geometric changes of one image are one affine map, applied with
``grid_sample`` to the image (bilinear) and to its target (nearest, so labels
stay labels); pixels that come from outside the image are :data:`~.data.IGNORE`
in the target. Colour changes touch only the RGB channels, never the extra
input channels. Randomness comes from a ``numpy.random.Generator``, so a run
is reproducible from its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .data import IGNORE


@dataclass(frozen=True)
class Augmentation:
    """Strengths of the random changes (0 turns one off).

    Attributes
    ----------
    scale : tuple of float
        Range of the crop's area as a fraction of the image (random resized crop).
    ratio : tuple of float
        Range of the crop's aspect ratio.
    hflip, vflip : float
        Probabilities of a horizontal and a vertical flip.
    rotation : float
        Largest rotation, in degrees (uniform in ``[-rotation, rotation]``).
    brightness, contrast, saturation : float
        Colour jitter: factors drawn uniformly from ``[1 - s, 1 + s]``.
    noise : float
        Largest standard deviation of additive Gaussian noise (drawn per image).
    """

    scale: tuple = (0.5, 1.0)
    ratio: tuple = (3 / 4, 4 / 3)
    hflip: float = 0.5
    vflip: float = 0.0
    rotation: float = 15.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    noise: float = 0.03


def affine_matrices(n: int, rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
    """``(n, 2, 3)`` matrices mapping output to input coordinates in [-1, 1] (``affine_grid``'s ``theta``).

    Examples
    --------
    >>> m = affine_matrices(2, np.random.default_rng(0), Augmentation(scale=(1, 1), ratio=(1, 1), hflip=0, rotation=0))
    >>> np.allclose(m, [[[1, 0, 0], [0, 1, 0]]] * 2)
    True
    """
    out = np.zeros((n, 2, 3), np.float32)
    for i in range(n):
        area = rng.uniform(*aug.scale)
        ratio = math.exp(rng.uniform(math.log(aug.ratio[0]), math.log(aug.ratio[1])))
        sx = min(1.0, math.sqrt(area * ratio))
        sy = min(1.0, math.sqrt(area / ratio))
        tx, ty = rng.uniform(-(1 - sx), 1 - sx), rng.uniform(-(1 - sy), 1 - sy)
        angle = math.radians(rng.uniform(-aug.rotation, aug.rotation)) if aug.rotation else 0.0
        fx = -1.0 if rng.random() < aug.hflip else 1.0
        fy = -1.0 if rng.random() < aug.vflip else 1.0
        c, s = math.cos(angle), math.sin(angle)
        out[i] = [[sx * c * fx, -sy * s * fy, tx], [sx * s * fx, sy * c * fy, ty]]
    return out


def augment_batch(x, y, rng: np.random.Generator, aug: Augmentation = Augmentation()):
    """Randomly transformed copies of a batch.

    Parameters
    ----------
    x : torch.Tensor
        float ``(n, c, h, w)`` in [0, 1]; channels 0-2 are RGB.
    y : torch.Tensor
        integer targets ``(n, h, w)`` (0, 1 or class, :data:`IGNORE`).
    rng : numpy.random.Generator
    aug : Augmentation

    Returns
    -------
    tuple of torch.Tensor
        ``(x, y)`` of the same shapes and dtypes.

    Examples
    --------
    >>> import torch
    >>> x, y = torch.rand(2, 4, 8, 8), torch.ones(2, 8, 8, dtype=torch.long)
    >>> xa, ya = augment_batch(x, y, np.random.default_rng(0))
    >>> xa.shape, ya.shape, set(ya.unique().tolist()) <= {1, 255}
    (torch.Size([2, 4, 8, 8]), torch.Size([2, 8, 8]), True)
    """
    import torch
    import torch.nn.functional as F

    n = x.shape[0]
    theta = torch.from_numpy(affine_matrices(n, rng, aug)).to(x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    shifted = (y.float() + 1.0)[:, None]  # 0 after sampling = outside the image
    ys = F.grid_sample(shifted, grid, mode="nearest", padding_mode="zeros", align_corners=False)[:, 0].round().long()
    y = torch.where(ys == 0, torch.full_like(ys, IGNORE), ys - 1)
    return jitter_colours(x, rng, aug), y


def jitter_colours(x, rng: np.random.Generator, aug: Augmentation):
    """Brightness, contrast and saturation jitter and Gaussian noise on the RGB channels of ``(n, c, h, w)``."""
    import torch

    n = x.shape[0]

    def factors(strength):
        vals = rng.uniform(1 - strength, 1 + strength, n) if strength else np.ones(n)
        return torch.tensor(vals, dtype=x.dtype, device=x.device).view(n, 1, 1, 1)

    rgb = x[:, :3] * factors(aug.brightness)
    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    rgb = (rgb - mean) * factors(aug.contrast) + mean
    gray = (0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3])
    rgb = (rgb - gray) * factors(aug.saturation) + gray
    if aug.noise:
        sigma = torch.tensor(rng.uniform(0, aug.noise, n), dtype=x.dtype, device=x.device).view(n, 1, 1, 1)
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        rgb = rgb + sigma * torch.randn(rgb.shape, generator=gen, dtype=x.dtype).to(x.device)
    rgb = rgb.clamp(0, 1)
    return rgb if x.shape[1] == 3 else torch.cat([rgb, x[:, 3:]], 1)
