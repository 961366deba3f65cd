"""Feature backbones behind one registry.

What lives here
---------------
``base``
    :class:`FeatureExtractor` (the template every backbone fills in) and
    :class:`FeatureMap` (features at the backbone's native stride).
``simple``, ``resnet``, ``clip``, ``saliency``
    The backbones ``rgb`` / ``classic``, ``resnet50``, ``clip`` and ``saliency``.
``compress``
    Standardisation and PCA of feature channels.

What it may import
------------------
:mod:`napari_deepseg.core.io`, :mod:`napari_deepseg.core.utils`, and the saliency
model of :mod:`napari_deepseg.core.models` (the ``saliency`` backbone wraps it).

Examples
--------
>>> sorted(available_backbones())[:3]
['classic', 'clip', 'resnet50']
>>> get_extractor("classic").name
'classic'
"""

from __future__ import annotations

from typing import Callable, Dict

from .base import FeatureExtractor, FeatureMap
from .clip import CLIPFeatures
from .resnet import ResNet50Features
from .saliency import SaliencyFeatures
from .simple import ClassicFeatures, RGBFeatures

_REGISTRY: Dict[str, Callable[..., FeatureExtractor]] = {}


def register_backbone(name: str, factory: Callable[..., FeatureExtractor]) -> None:
    """Add a backbone factory under ``name`` (later issues add more backbones)."""
    _REGISTRY[name] = factory


def available_backbones() -> list[str]:
    """Names of the registered backbones."""
    return list(_REGISTRY)


def get_extractor(name: str, **params) -> FeatureExtractor:
    """Build the backbone registered as ``name`` with keyword ``params``.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    """
    if isinstance(name, FeatureExtractor):
        return name
    try:
        factory = _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown backbone {name!r}; choose one of {', '.join(available_backbones())}"
        ) from None
    return factory(**params)


register_backbone("classic", ClassicFeatures)
register_backbone("clip", CLIPFeatures)
register_backbone("resnet50", ResNet50Features)
register_backbone("rgb", RGBFeatures)
register_backbone("saliency", SaliencyFeatures)

__all__ = [
    "FeatureExtractor",
    "FeatureMap",
    "available_backbones",
    "get_extractor",
    "register_backbone",
]
