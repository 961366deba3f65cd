"""Pure compute of napari-deepseg: numpy, torch and PyMaxflow only.

This package never imports napari, Qt or magicgui, so it can be used from a
script, a notebook or the command line.

Examples
--------
>>> import numpy as np
>>> from napari_deepseg.core import SegmentationSession
>>> image = np.zeros((32, 32), np.float32); image[8:24, 8:24] = 1.0
>>> scribbles = np.zeros((32, 32), np.uint8)
>>> scribbles[14:18, 14:18] = 1; scribbles[0:2, :] = 2
>>> session = SegmentationSession("rgb")
>>> _ = session.set_image(image)
>>> int(session.segment(scribbles)[16, 16])
1
"""

from .features import available_backbones, get_extractor
from .cut.graphcut import PRESETS
from .cut.session import SegmentationSession, segment_image
from .io.weights import WeightsUnavailableError

__all__ = [
    "PRESETS",
    "SegmentationSession",
    "WeightsUnavailableError",
    "available_backbones",
    "get_extractor",
    "segment_image",
]
