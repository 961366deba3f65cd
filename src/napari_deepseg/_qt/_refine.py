"""Refining an existing label, shared by *Scribble segmentation* and *Point prompts*.

The user picks an object (a Labels layer and an id, or ``R`` with the cursor on
it); its mask becomes the current object, new input may change it only within a
distance bound (:func:`~napari_deepseg.core.prompts.objects.refine_region`), and
commit writes it back under the same id (:func:`napari_deepseg._qt._objects.commit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from napari.layers import Labels

from ..core.prompts.objects import default_refine_bound, object_mask, refine_scribbles
from ..core.utils.validation import SCRIBBLE_BACKGROUND
from . import _layers

NO_LAYER = "no labels layer to refine: choose one under 'refine layer'"
GONE = "the refined label's layer or plane is gone: pick the label again (Refine label, R)"


class RefinementGone(ValueError):
    """The refined label's layer was removed, or the view moved to another plane (the message: :data:`GONE`)."""


@dataclass
class Refinement:
    """An existing object being refined: its layer, id, plane and mask when it was picked."""

    layer: Labels
    label_id: int
    plane: tuple
    mask: np.ndarray
    #: the region the last cut of this object may change, the cut the result layer holds (the Scribble
    #: widget's commit writes the object only there; ``None``: no cut yet)
    region: Optional[np.ndarray] = None

    def alive(self, viewer, plane: tuple) -> bool:
        """Whether the refined layer is still in the viewer and ``plane`` is the one the label was picked on."""
        return self.layer in viewer.layers and self.plane == plane

    def others(self) -> np.ndarray:
        """Pixels of the layer's other objects in the refined plane (never changed, background for the cut)."""
        plane = np.asarray(self.layer.data[self.plane])
        return (plane != 0) & (plane != self.label_id)


def pick(viewer, image_layer, layer, label_id: int) -> Refinement:
    """The refinement of object ``label_id`` of ``layer`` in the image's current plane.

    Raises
    ------
    ValueError
        No labels layer, a layer that does not match the image, label 0 or an id not in the plane.
    """
    if not isinstance(layer, Labels):
        raise ValueError(NO_LAYER)
    if image_layer is None or _layers.spatial_shape(layer) != _layers.spatial_shape(image_layer):
        raise ValueError(f"labels layer '{layer.name}' does not match the image's shape")
    plane = _layers.current_plane(image_layer, viewer.dims.point)
    mask = object_mask(np.asarray(layer.data[plane]), int(label_id))
    return Refinement(layer, int(label_id), plane, mask)


def label_at_cursor(viewer, layer) -> tuple:
    """``(layer, id)`` under the cursor: in ``layer``, or else the selected Labels layer.

    Raises
    ------
    ValueError
        No labels layer, or the cursor outside it.
    """
    if not isinstance(layer, Labels):
        layer = next((lay for lay in viewer.layers.selection if isinstance(lay, Labels)), None)
    if not isinstance(layer, Labels):
        raise ValueError(NO_LAYER)
    pos = np.round(layer.world_to_data(viewer.cursor.position)).astype(int)
    if not all(0 <= p < n for p, n in zip(pos, layer.data.shape)):
        raise ValueError("the cursor is outside the labels layer: point at the object to refine")
    return layer, int(layer.data[tuple(pos)])


def bound(value: int, shape) -> int:
    """The refine bound: ``value`` pixels, or the default for the image size when 0."""
    value = int(value)
    return value if value > 0 else default_refine_bound(shape)


def seeds(refine: Refinement, scribbles: np.ndarray, bound_px: int) -> tuple:
    """The strokes of the refine cut and its ``(region it may change in, other objects' pixels)``.

    Raises
    ------
    ValueError
        For strokes of classes above 2.
    """
    if np.any(scribbles > SCRIBBLE_BACKGROUND):
        raise ValueError("refining a label takes object (1) and background (2) strokes only")
    others = refine.others()
    strokes, region = refine_scribbles(scribbles, refine.mask, bound(bound_px, refine.mask.shape), others)
    return strokes, region, others


def pick_from(viewer, image_layer, layer_box, label_box, layer=None, label_id=None) -> Refinement:
    """:func:`pick` object ``label_id`` of ``layer``, by default the one a widget's *refine layer* and *label*
    boxes name, and show the pick in the boxes (:func:`show_pick`).

    Raises
    ------
    ValueError
        As :func:`pick`.
    """
    layer = layer_box.value if layer is None else layer
    refine = pick(viewer, image_layer, layer, int(label_box.value if label_id is None else label_id))
    show_pick(layer_box, label_box, refine)
    return refine


def show_pick(layer_box, label_box, refine: Refinement) -> None:
    """Show a picked label in a widget's *refine layer* and *label* boxes (the layer only where it is a choice)."""
    label_box.value = refine.label_id
    if any(choice is refine.layer for choice in layer_box.choices):
        layer_box.value = refine.layer
