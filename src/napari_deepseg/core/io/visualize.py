"""Pictures of results: label overlays and side-by-side panels (numpy only)."""

from __future__ import annotations

import numpy as np

#: RGB colours of labels 1, 2, 3, ... (object red, background blue, then more)
PALETTE = np.array(
    [[230, 40, 40], [40, 90, 230], [40, 200, 70], [240, 200, 30], [180, 60, 220], [30, 200, 210]], np.uint8
)


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """Any 2-D image as ``uint8`` RGB, via :func:`~napari_deepseg.core.utils.validation.as_float_image`."""
    from ..utils.validation import as_float_image

    img = as_float_image(image)
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5, dim_background: bool = False) -> np.ndarray:
    """Blend label colours over an image.

    Parameters
    ----------
    image : numpy.ndarray
        ``(rows, cols)`` or ``(rows, cols, 3|4)``.
    labels : numpy.ndarray
        ``(rows, cols)``; 0 is left transparent.
    alpha : float
        Opacity of the label colours.
    dim_background : bool
        Darken pixels with label 0 (shows a cut-out).

    Returns
    -------
    numpy.ndarray
        ``uint8`` RGB ``(rows, cols, 3)``.

    Examples
    --------
    >>> overlay(np.zeros((2, 2), np.uint8), np.array([[0, 1], [0, 0]]), alpha=1.0)[0, 1].tolist()
    [230, 40, 40]
    """
    rgb = to_rgb8(image).astype(np.float32)
    lab = np.asarray(labels)
    if dim_background:
        rgb[lab == 0] *= 0.35
    on = lab > 0
    colours = PALETTE[(lab[on].astype(np.int64) - 1) % len(PALETTE)].astype(np.float32)
    rgb[on] = (1 - alpha) * rgb[on] + alpha * colours
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def side_by_side(panels, gap: int = 8) -> np.ndarray:
    """Join ``uint8`` RGB panels of equal height left to right with white gaps."""
    rows = max(p.shape[0] for p in panels)
    parts = []
    for i, p in enumerate(panels):
        pad = np.full((rows, p.shape[1], 3), 255, np.uint8)
        pad[: p.shape[0]] = p
        parts.append(pad)
        if i < len(panels) - 1:
            parts.append(np.full((rows, gap, 3), 255, np.uint8))
    return np.concatenate(parts, axis=1)


def demo_figure(image: np.ndarray, scribbles: np.ndarray, result: np.ndarray) -> np.ndarray:
    """Image | scribbles over the image | the cut-out with the object outlined."""
    from skimage.segmentation import find_boundaries

    cut = overlay(image, result, alpha=0.35, dim_background=True)
    cut[find_boundaries(result, mode="inner")] = (255, 230, 0)
    return side_by_side([to_rgb8(image), overlay(image, scribbles, alpha=0.9), cut])
