"""Clicks, boxes and points as input: one interface, one registry, the engines.

What lives here
---------------
``base``
    :class:`Click`, the :class:`ClickMethod` interface and the registry
    (:func:`register_click_method`, :func:`get_click_method`,
    :func:`available_click_methods`).
``clickcut``
    ``graphcut`` (the default everywhere): clicks painted as adaptive disk seeds
    for the scribble cut; it also takes a box (``predict_box``).
``box``
    :class:`Box` prompts as geometry: parse, check, clip, the box on a plane, the box of a mask.
``boxcut``
    The box engine: outside hard background, a GrabCut-style cut inside (with
    correcting clicks); ``graphcut``'s ``predict_box`` calls it.
``objects``
    Object-by-object annotation: next free id, commits that protect committed
    objects, the region a refinement may change.
``pointcut``
    ``points-graphcut``: a point-prompt graph cut on deep or weight-free features.
``pointclip``
    ``pointclip``: the trainable point-prompt CLIP decoder.
``files``
    Reading point prompts (CSV) and grouping them by plane.

Each engine registers itself where it is defined; this package imports the
engine modules once, so importing anything from it makes every engine available.

What it may import
------------------
:mod:`napari_deepseg.core.cut`, :mod:`napari_deepseg.core.features`,
:mod:`napari_deepseg.core.models` (checkpoints), :mod:`napari_deepseg.core.io`
and :mod:`napari_deepseg.core.utils`.
"""

from .base import (Click, ClickMethod, available_click_methods, check_clicks, clicks_from_arrays,
                   get_click_method, register_click_method)
from .box import Box, box_from_mask, box_on_plane, check_box, parse_box
from . import clickcut, pointclip, pointcut  # noqa: F401,E402  (the engines register themselves)

__all__ = [
    "Box",
    "box_from_mask",
    "box_on_plane",
    "check_box",
    "parse_box",
    "Click",
    "ClickMethod",
    "available_click_methods",
    "check_clicks",
    "clicks_from_arrays",
    "get_click_method",
    "register_click_method",
]
