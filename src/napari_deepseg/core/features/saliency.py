"""A weight-free backbone plus one VGG16 saliency channel (``saliency``).

The original works found gradient saliency a useful extra cue for the cut, on
natural and aerial images alike. This backbone puts the saliency map of
:mod:`napari_deepseg.core.models.saliency` in front of the channels of a weight-free
backbone (``classic`` or ``rgb``), at full resolution (stride 1), scaled to
the spread of the other channels times ``weight``. The ``seed`` preset uses it
in both its appearance costs and its contrast edges; the ``default`` preset's
weight-free appearance model uses colour plus the saliency channel
(:attr:`appearance_channels` = 1).
"""

from __future__ import annotations

import numpy as np

from ..io.lazy import rgb_channels
from ..utils.progress import report
from ..utils.validation import check_rgb_channels
from .base import FeatureExtractor, FeatureMap

#: weight-free backbones the saliency channel can be added to
BASES = ("classic", "rgb")


class SaliencyFeatures(FeatureExtractor):
    """``base`` features with a VGG16 saliency map as the first channel.

    Parameters
    ----------
    mode : str
        ``backprop``, ``deconv`` or ``guided``.
    class_index : int, optional
        ImageNet class explained; ``None`` takes the top class.
    base : str
        ``classic`` or ``rgb``.
    weight : float
        Scale of the saliency channel relative to the spread of the base
        channels (0 turns it off).
    weights, device, allow_download, tile
        As :class:`~napari_deepseg.core.models.saliency.SaliencyModel`.
    rgb_channels : tuple of 3 int, optional
        The image channels VGG16 reads as red, green and blue (the base bank reads
        every channel). ``None``: the first three (one channel repeated).

    Examples
    --------
    >>> SaliencyFeatures(mode="deconv").params()["mode"]
    'deconv'
    """

    name = "saliency"
    needs_weights = True
    #: the base bank runs in strips and the saliency map in tiles, both reading the image region by region
    reads_tiles = True
    #: the saliency channel (first) joins colour in the default preset's appearance model
    appearance_channels = 1

    def __init__(self, mode: str = "guided", class_index=None, base: str = "classic", weight: float = 1.0,
                 weights=None, device: str = "auto", allow_download: bool = True, tile: int = 768, network=None,
                 rgb_channels=None):
        from ..models.saliency import check_mode

        self.mode = check_mode(mode)
        self.class_index = None if class_index is None else int(class_index)
        if base not in BASES:
            raise ValueError(f"base must be one of {', '.join(BASES)}, got {base!r}")
        self.base = base
        weight = float(weight)
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"weight must be a number >= 0, got {weight!r}")
        self.weight = weight
        self.weights, self.device, self.allow_download, self.tile = weights, device, allow_download, int(tile)
        self.rgb_channels = check_rgb_channels(rgb_channels, "rgb_channels")
        self._network = network
        self._model = None

    def params(self) -> dict:
        return {"mode": self.mode, "class_index": self.class_index, "base": self.base, "weight": self.weight,
                "weights": str(self.weights or ""), "tile": self.tile,
                **({} if self.rgb_channels is None else {"rgb_channels": self.rgb_channels})}

    def saliency_model(self):
        """The :class:`~napari_deepseg.core.models.saliency.SaliencyModel` (built once)."""
        if self._model is None:
            from ..models.saliency import SaliencyModel

            self._model = SaliencyModel(weights=self.weights, device=self.device, allow_download=self.allow_download,
                                        tile=self.tile, network=self._network)
        return self._model

    def _extract(self, image, progress, cancel):
        from . import get_extractor

        base = get_extractor(self.base).extract(image, progress, cancel).data
        rgb = rgb_channels(image, self.rgb_channels, "rgb_channels")
        sal = self.saliency_model().compute(rgb, mode=self.mode, class_index=self.class_index,
                                            progress=progress, cancel=cancel).map
        report(progress, 1, 1, "saliency channel")
        spread = float(np.mean(base.reshape(-1, base.shape[-1]).std(axis=0))) or 1.0
        sd = float(sal.std())
        channel = (sal - float(sal.mean())) / sd * spread * self.weight if sd > 0 else np.zeros_like(sal)
        data = np.concatenate([channel[..., None].astype(np.float32), base], axis=-1)
        return FeatureMap(np.ascontiguousarray(data, dtype=np.float32), 1, image.shape[:2])
