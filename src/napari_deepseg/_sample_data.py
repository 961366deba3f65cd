"""Sample data for napari's *File > Open Sample* menu.

The arrays come from :mod:`napari_deepseg.samples` (GUI-free, shared with the
command-line demo); this module only wraps them as napari ``LayerData`` tuples:
the RGB image plus a Labels layer ``scribbles`` with example strokes
(1 object, 2 background).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .samples import aerial_sample, cat_sample

LayerData = tuple[np.ndarray, dict[str, Any], str]


def _layers(image: np.ndarray, scribbles: np.ndarray, name: str) -> list[LayerData]:
    """An RGB image layer and a ``scribbles`` Labels layer ready for painting."""
    return [
        (image, {"name": name, "rgb": True}, "image"),
        (scribbles, {"name": "scribbles", "opacity": 0.9}, "labels"),
    ]


def make_cat_sample() -> list[LayerData]:
    """A cat photo (scikit-image's *chelsea*, CC0) with object and background scribbles.

    Returns
    -------
    list of tuple
        ``[(image, kwargs, "image"), (scribbles, kwargs, "labels")]``.
    """
    image, scribbles = cat_sample()
    return _layers(image, scribbles, "cat")


def make_aerial_sample() -> list[LayerData]:
    """A generated aerial-style scene with roofs scribbled as object (1), the rest as background (2).

    Returns
    -------
    list of tuple
        ``[(image, kwargs, "image"), (scribbles, kwargs, "labels")]``.
    """
    image, scribbles = aerial_sample()
    return _layers(image, scribbles, "aerial")
