"""The ``"<image> objects"`` instance layer, which the Scribble and Point prompts widgets both commit into.

* :func:`objects_layer`: the layer, made on demand (the active layer stays active);
* :func:`protect_objects`: scribbles with the committed objects as background for
  the next cut (the Scribble widget; the Point prompts widget hands them to its
  cut as protected pixels);
* :func:`commit`: one object written as one undoable edit, either under the next
  free id into the objects layer or, for a refined label, back into its own layer
  under its id; no other object's pixel changes
  (:func:`~napari_deepseg.core.prompts.objects.commit_object`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..core.prompts.objects import commit_object, next_free_id
from ..core.utils.validation import SCRIBBLE_BACKGROUND
from . import _layers


def objects_layer(viewer, image_layer, create: bool = False, index: Optional[int] = None):
    """The ``"<image> objects"`` instance layer, made on demand at ``index`` (``None``: on top); the active layer stays.

    Returns ``None`` when there is none and ``create`` is false.
    """
    active = viewer.layers.selection.active
    layer = _layers.role_layer(viewer, image_layer, _layers.ROLE_OBJECTS, _layers.objects_name(image_layer),
                               np.int32, create=create, index=index)
    if active is not None and active in viewer.layers:
        viewer.layers.selection.active = active
    return layer


def protect_objects(viewer, image_layer, plane: tuple, scribbles: np.ndarray, keep=None) -> np.ndarray:
    """``scribbles`` with committed objects as background for the next cut, unless painted over on purpose
    (or in ``keep``, the object being refined); a new array where anything changes."""
    objects = objects_layer(viewer, image_layer)
    if objects is None:
        return scribbles
    taken = np.asarray(_layers.layer_array(objects)[plane]) > 0
    if keep is not None:
        taken &= ~keep
    if not taken.any():
        return scribbles
    return np.where(taken & (scribbles == 0), np.asarray(SCRIBBLE_BACKGROUND, scribbles.dtype), scribbles)


def commit(viewer, image_layer, plane: tuple, mask: np.ndarray, refine=None, region: Optional[np.ndarray] = None,
           index: Optional[int] = None) -> tuple:
    """Write object ``mask`` (one plane) as one undoable edit; the active layer stays active.

    Parameters
    ----------
    viewer : napari.Viewer
    image_layer : napari.layers.Image
        The image whose objects layer takes a new object (made at ``index`` when missing).
    plane : tuple of int
        The plane's indices in the leading axes.
    mask : numpy.ndarray of bool
        The object.
    refine : Refinement, optional
        A label being refined (:class:`~napari_deepseg._qt._refine.Refinement`): the
        object goes back into its layer under its id instead.
    region : numpy.ndarray of bool, optional
        Where a refined label may change (everywhere when ``None``).

    Returns
    -------
    tuple
        ``(layer, id, pixels)``: the layer written, the object's id and its pixels in the plane.
    """
    active = viewer.layers.selection.active
    if refine is not None:
        layer, label_id = refine.layer, refine.label_id
    else:
        layer = objects_layer(viewer, image_layer, create=True, index=index)
        label_id = next_free_id(_layers.layer_array(layer))
    labels = commit_object(np.asarray(_layers.layer_array(layer)[plane]), mask, label_id, region=region)
    _layers.write_plane(layer, plane, labels)  # widens the layer's dtype where the id does not fit it
    if active is not None and active in viewer.layers:
        viewer.layers.selection.active = active
    return layer, label_id, int((labels == label_id).sum())
