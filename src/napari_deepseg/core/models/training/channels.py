"""Extra input channels of a segmentation model, computed from the RGB image.

A model trained with ``extra_channels=("saliency",)`` sees the image's RGB
channels followed by one channel per name. The channels are computed from the
RGB image at the network's input size, the same way at training and at
prediction time, so a checkpoint names them and nothing else is needed.

``sobel``
    Gradient magnitude of the gray image (weight-free), scaled to [0, 1].
``saliency``
    The VGG16 guided-backpropagation saliency map of the proposals issue
    (:mod:`napari_deepseg.core.models.saliency`; needs VGG16's ImageNet weights).
"""

from __future__ import annotations

import numpy as np

_SALIENCY: dict = {}


def sobel_channel(rgb: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the gray image, float32 ``(rows, cols)`` in [0, 1].

    Examples
    --------
    >>> img = np.zeros((8, 8, 3), np.uint8); img[:, 4:] = 255
    >>> ch = sobel_channel(img); float(ch.max()), float(ch[:, 0].max())
    (1.0, 0.0)
    """
    from scipy import ndimage as ndi

    gray = np.asarray(rgb, np.float32).mean(axis=-1) / 255.0
    mag = np.hypot(ndi.sobel(gray, 0), ndi.sobel(gray, 1))
    top = float(mag.max())
    return (mag / top if top > 0 else mag).astype(np.float32)


def saliency_channel(rgb: np.ndarray, device: str = "cpu") -> np.ndarray:
    """VGG16 guided saliency of the image, float32 ``(rows, cols)`` in [0, 1] (model built once)."""
    from ..saliency import SaliencyModel

    if device not in _SALIENCY:
        _SALIENCY.clear()
        _SALIENCY[device] = SaliencyModel(device=device)
    return np.asarray(_SALIENCY[device].compute(rgb, mode="guided").map, np.float32)


CHANNELS = {"sobel": sobel_channel, "saliency": saliency_channel}


def check_channels(names) -> tuple:
    """Validated tuple of extra-channel names (a comma-separated string is split).

    Examples
    --------
    >>> check_channels("sobel"), check_channels(None)
    (('sobel',), ())
    """
    if names is None or names == "":
        return ()
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = tuple(str(n) for n in names)
    bad = [n for n in names if n not in CHANNELS]
    if bad:
        raise ValueError(f"unknown extra channel {bad[0]!r}; choose from {', '.join(CHANNELS)}")
    return names


def compute_channels(rgb: np.ndarray, names, device: str = "cpu") -> np.ndarray:
    """float32 ``(len(names), rows, cols)`` extra channels of a uint8 ``(rows, cols, 3)`` image."""
    names = check_channels(names)
    if not names:
        return np.zeros((0,) + rgb.shape[:2], np.float32)
    out = []
    for name in names:
        fn = CHANNELS[name]
        out.append(fn(rgb, device=device) if name == "saliency" else fn(rgb))
    return np.stack(out).astype(np.float32)
