"""The ``"<image> objects"`` instance layer, which the Scribble and Point prompts widgets both commit into.

* :func:`objects_layer`: the layer, made on demand (the active layer stays active);
* :func:`protect_objects`: scribbles with the committed objects as background for
  the next cut (the Scribble widget; the Point prompts widget hands them to its
  cut as protected pixels);
* :func:`commit`: one object written as one undoable edit, either under the next
  free id into the objects layer or, for a refined label, back into its own layer
  under its id; no other object's pixel changes
  (:func:`~napari_deepseg.core.prompts.objects.commit_object`);
* :data:`committed`: emitted after every commit with a :class:`Commit` (the
  Dataset dock records the commit's prompts as a step of the image's record);
  the widgets do not know who listens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from psygnal import SignalInstance

from ..core.prompts.objects import commit_object, next_free_id, protect_committed
from ..core.utils.validation import SCRIBBLE_BACKGROUND
from . import _layers


@dataclass(frozen=True)
class Commit:
    """What one commit did (the payload of :data:`committed`).

    Attributes
    ----------
    viewer : napari.Viewer
    image_layer : napari.layers.Image
    layer : napari.layers.Labels
        The layer written (the objects layer, or a refined label's own layer).
    plane : tuple of int
    label_id : int
    before : numpy.ndarray
        The plane's labels before the commit (a copy).
    source : str, optional
        Which prompts made the object: ``"scribbles"`` (the Scribble widget) or
        ``"clicks"`` (the Point prompts widget: its clicks and box).
    bound : float, optional
        The refine bound in pixels when the commit refined label ``label_id`` (``None``: a new object).
    engine : dict, optional
        The engine that answered the prompts as a record's engine dict, where the widget names it.
    exact : bool
        The object is what the prompts now on the layers give (``False``: the widget
        knows it is not, e.g. a quick answer committed before its whole cut came
        back, or strokes painted since the last cut).
    """

    viewer: object
    image_layer: object
    layer: object
    plane: tuple
    label_id: int
    before: np.ndarray
    source: Optional[str] = None
    bound: Optional[float] = None
    engine: Optional[dict] = None
    exact: bool = True


#: emitted on the main thread after every :func:`commit`, with its :class:`Commit`
committed = SignalInstance((object,))


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
    return protect_committed(scribbles, taken, SCRIBBLE_BACKGROUND)


def commit(viewer, image_layer, plane: tuple, mask: np.ndarray, refine=None, region: Optional[np.ndarray] = None,
           index: Optional[int] = None, source: Optional[str] = None, bound: Optional[float] = None,
           engine: Optional[dict] = None, exact: bool = True) -> tuple:
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
    index : int, optional
        Where a missing objects layer is made (``None``: on top).
    source, bound, engine, exact
        Passed on in :data:`committed`'s :class:`Commit`: which prompts made the
        object, the refine bound used (with ``refine``), the engine, and whether
        the object is what those prompts give.

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
    before = np.array(_layers.layer_array(layer)[plane])  # a copy: the write below changes the layer's array
    labels = commit_object(before, mask, label_id, region=region)
    _layers.write_plane(layer, plane, labels)  # widens the layer's dtype where the id does not fit it
    if active is not None and active in viewer.layers:
        viewer.layers.selection.active = active
    committed.emit(Commit(viewer, image_layer, layer, tuple(plane), int(label_id), before, source,
                          None if refine is None or bound is None else float(bound), engine, bool(exact)))
    return layer, label_id, int((labels == label_id).sum())
