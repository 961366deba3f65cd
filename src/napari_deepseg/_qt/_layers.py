"""Reading inputs from napari layers and writing results back, with undo.

Everything here runs on the main thread. The widget reads one 2-D plane of an
image layer and the matching plane of a scribbles layer, hands copies to the
core in a worker, and writes the labels that come back into a result layer
through :meth:`napari.layers.Labels.data_setitem`, which records undo history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from napari.layers import Image, Labels

from ..core.prompts.base import Click
from ..core.prompts.box import Box, box_on_plane, rectangle_plane
from ..core.utils.validation import lazy_view

#: key of this plugin's entry in ``layer.metadata``
METADATA_KEY = "napari-deepseg"
ROLE_SEGMENTATION = "segmentation"
ROLE_SCRIBBLES = "scribbles"
#: the instance layer both the Scribble and the Point prompts widget commit objects into
ROLE_OBJECTS = "objects"
#: the Point prompts widget's clicks (a Points layer with a boolean ``positive`` feature) and box (Shapes)
ROLE_PROMPTS = "prompts"
ROLE_BOX = "box"
#: face colours of positive and negative clicks
POSITIVE_COLOUR = "lime"
NEGATIVE_COLOUR = "red"


def layer_array(layer):
    """The layer's full-resolution data (level 0 of a multiscale layer)."""
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


#: numpy image planes of at least this many pixels are read in place (a read-only view), not copied
VIEW_MIN_PIXELS = 4_000_000


def plane_data(layer, plane):
    """The layer's data at ``plane``: a copy of a small numpy plane, a read-only view of a large one,
    a lazy view of anything else.

    Copying a 16 MP RGB plane costs napari's GUI thread about 0.1 s (fresh memory's page
    faults); an image layer is not painted, so a plane of at least :data:`VIEW_MIN_PIXELS`
    pixels is read in place. Lazy data (dask, zarr, as napari holds large images) stays
    lazy: the core reads it strip by strip or tile by tile, never whole. zarr arrays are
    wrapped in dask first, since indexing a zarr array reads it at once.
    """
    data = layer_array(layer)
    if isinstance(data, np.ndarray):
        view = data[plane]
        if int(np.prod(view.shape[:2])) < VIEW_MIN_PIXELS:
            return np.array(view, copy=True)
        view = view.view()
        view.flags.writeable = False
        return view
    return lazy_view(data)[plane]


def spatial_shape(layer) -> tuple[int, ...]:
    """Shape of the layer's data without the colour axis of an RGB(A) image.

    Examples
    --------
    >>> spatial_shape(Image(np.zeros((4, 5, 3)), rgb=True))
    (4, 5)
    """
    shape = tuple(int(s) for s in layer_array(layer).shape)
    return shape[:-1] if getattr(layer, "rgb", False) else shape


def role(layer) -> Optional[str]:
    """The role this plugin gave ``layer`` (``segmentation`` or ``scribbles``), if any."""
    entry = layer.metadata.get(METADATA_KEY)
    return entry.get("role") if isinstance(entry, dict) else None


def current_plane(layer, world_point) -> tuple[int, ...]:
    """Indices of the layer's leading axes at the viewer's position (empty for 2-D data).

    Parameters
    ----------
    layer : napari.layers.Layer
        An image or labels layer; its last two spatial axes form the plane.
    world_point : sequence of float
        ``viewer.dims.point``, in world coordinates.

    Returns
    -------
    tuple of int
        One index per axis before the plane, clipped to the data's extent.
    """
    shape = spatial_shape(layer)
    if len(shape) <= 2:
        return ()
    data_point = np.asarray(layer.world_to_data(world_point), float)[: len(shape) - 2]
    index = np.clip(np.round(data_point).astype(int), 0, np.asarray(shape[:-2]) - 1)
    return tuple(int(i) for i in index)


@dataclass
class PlaneInputs:
    """Copies of one image plane and its scribbles, ready for a worker thread.

    Attributes
    ----------
    image : numpy.ndarray
        ``(rows, cols)`` or ``(rows, cols, 3|4)`` plane of the image.
    scribbles : numpy.ndarray
        ``(rows, cols)`` scribbles of the same plane.
    plane : tuple of int
        Indices of the leading axes (empty for a 2-D image).
    shape : tuple of int
        Spatial shape of the whole image (the result layer's shape).
    """

    image: np.ndarray
    scribbles: np.ndarray
    plane: tuple
    shape: tuple


def read_inputs(image_layer, scribbles_layer, world_point) -> PlaneInputs:
    """Check that the two layers fit together and copy the current plane of each.

    Raises
    ------
    ValueError
        If a layer is missing, has the wrong type, or the shapes differ.
    """
    if not isinstance(image_layer, Image):
        raise ValueError("no image layer selected: open an image first")
    if not isinstance(scribbles_layer, Labels):
        raise ValueError(
            "no scribbles layer selected: click 'New scribbles layer' and paint 1 (object) and 2 (background)"
        )
    shape = spatial_shape(image_layer)
    if len(shape) < 2:
        raise ValueError(f"image '{image_layer.name}' must be at least 2-D, got shape {shape}")
    sshape = spatial_shape(scribbles_layer)
    if sshape != shape:
        raise ValueError(
            f"scribbles layer '{scribbles_layer.name}' has shape {sshape} but image "
            f"'{image_layer.name}' has shape {shape}; use 'New scribbles layer' to make a matching one"
        )
    plane = current_plane(image_layer, world_point)
    image = plane_data(image_layer, plane)
    scribbles = np.array(layer_array(scribbles_layer)[plane], copy=True)
    return PlaneInputs(image, scribbles, plane, shape)


def read_volume_inputs(image_layer, scribbles_layer) -> PlaneInputs:
    """The whole 3-D image (lazy data stays lazy) and a copy of its 3-D scribbles, for a 3-D cut.

    Raises
    ------
    ValueError
        If a layer is missing or of the wrong type, the image is not 3-D, or the shapes differ.
    """
    if not isinstance(image_layer, Image):
        raise ValueError("no image layer selected: open an image first")
    if not isinstance(scribbles_layer, Labels):
        raise ValueError("no scribbles layer selected: click 'New scribbles layer' and paint 1 and 2")
    shape = spatial_shape(image_layer)
    if len(shape) != 3:
        raise ValueError(f"the 3-D cut needs a 3-D image (planes, rows, cols); '{image_layer.name}' has shape "
                         f"{shape}: choose 'current plane'")
    sshape = spatial_shape(scribbles_layer)
    if sshape != shape:
        raise ValueError(f"scribbles layer '{scribbles_layer.name}' has shape {sshape} but image "
                         f"'{image_layer.name}' has shape {shape}; use 'New scribbles layer' to make a matching one")
    scribbles = np.array(layer_array(scribbles_layer), copy=True)
    return PlaneInputs(plane_data(image_layer, ()), scribbles, (), shape)


def layer_geometry(layer) -> dict:
    """``scale`` and ``translate`` of a layer, for a new layer drawn on top of it."""
    return {"scale": tuple(layer.scale), "translate": tuple(layer.translate)}


def default_brush_size(shape) -> int:
    """A brush a user sees and paints with at the initial zoom: 1/30 of the image's smaller side, 5 to 100 px.

    Examples
    --------
    >>> default_brush_size((300, 451)), default_brush_size((40, 40)), default_brush_size((10000, 10000))
    (10, 5, 100)
    """
    return int(min(100, max(5, round(min(shape[-2:]) / 30))))


def new_scribbles_layer(viewer, image_layer) -> Labels:
    """Add an empty ``"<image> scribbles"`` Labels layer in brush mode with label 1 selected."""
    shape = spatial_shape(image_layer)
    layer = viewer.add_labels(
        np.zeros(shape, np.uint8),
        name=f"{image_layer.name} scribbles",
        metadata={METADATA_KEY: {"role": ROLE_SCRIBBLES, "image": image_layer.name}},
        **layer_geometry(image_layer),
    )
    layer.brush_size = default_brush_size(shape)
    layer.selected_label = 1
    layer.mode = "paint"
    viewer.layers.selection.active = layer
    return layer


def role_layer(viewer, image_layer, layer_role: str, name: str, dtype, colormap=None, create: bool = True,
               index: Optional[int] = None):
    """The Labels layer ``name`` this plugin made with ``layer_role`` for the image (a user's layer is never reused).

    Made (empty, half opaque, on the image's geometry) when missing and ``create``,
    inserted at ``index`` (``None``: on top); ``None`` otherwise.
    """
    shape = spatial_shape(image_layer)
    for layer in viewer.layers:
        if (isinstance(layer, Labels) and role(layer) == layer_role and layer.name == name
                and spatial_shape(layer) == shape):
            return layer
    if not create:
        return None
    kwargs = {"colormap": colormap} if colormap is not None else {}
    layer = Labels(np.zeros(shape, dtype), name=name, opacity=0.5,
                   metadata={METADATA_KEY: {"role": layer_role, "image": image_layer.name}},
                   **layer_geometry(image_layer), **kwargs)
    return insert_layer(viewer, layer, index)


def objects_name(image_layer) -> str:
    """Name of the instance layer of an image's committed objects: ``"<image> objects"``."""
    return f"{image_layer.name} objects"


def result_name(image_layer) -> str:
    """Name of the result layer of an image: ``"<image> segmentation"``."""
    return f"{image_layer.name} segmentation"


def find_result_layer(viewer, name: str, shape: tuple, exclude=()) -> Optional[Labels]:
    """The Labels layer called ``name`` with the given shape, unless it is one of ``exclude``."""
    if name not in viewer.layers:
        return None
    layer = viewer.layers[name]
    if not isinstance(layer, Labels) or spatial_shape(layer) != tuple(shape):
        return None
    if any(layer is other for other in exclude):
        return None
    return layer


#: colours of the result layer: object 1 in magenta (it stands out on most photos), classes after it
RESULT_COLOURS = ("magenta", "yellow", "cyan", "lime", "orange", "royalblue", "red", "white")


def result_colormap():
    """A fixed label colormap for results: 0 transparent, 1 magenta, 3, 4, ... distinct colours."""
    from napari.utils.colormaps import DirectLabelColormap

    colours = {None: RESULT_COLOURS[-1], 0: "transparent", 1: RESULT_COLOURS[0]}
    colours.update({k: c for k, c in zip(range(3, 3 + len(RESULT_COLOURS) - 2), RESULT_COLOURS[1:-1])})
    return DirectLabelColormap(color_dict=colours)


def add_result_layer(viewer, name: str, image_layer, shape: tuple, plane: tuple, labels: np.ndarray,
                     geometry_layer=None, index: Optional[int] = None, visible: bool = True,
                     activate: bool = True) -> Labels:
    """Add the result layer, zero everywhere except ``labels`` in ``plane``.

    Its scale and translate are the image's, or ``geometry_layer``'s (the scribbles
    of an image with a channel axis, which is not a spatial axis of the result).
    A writeable ``labels`` of the layer's whole shape becomes the layer's data as
    it is (no copy of a large plane on the GUI thread): the caller hands it over.

    Parameters
    ----------
    index : int, optional
        Position in the layer list (``None``: on top), so the layer is inserted
        where it belongs instead of being moved there afterwards.
    visible : bool
        ``False`` adds the layer hidden: napari then skips its first texture upload,
        which the caller can leave to a later turn of the event loop.
    activate : bool
        ``False`` keeps the active layer as it is (napari makes an inserted layer
        active; switching the layer controls there and back costs ~20 ms).
    """
    if plane == () and labels.shape == tuple(shape) and labels.flags.writeable:
        data = labels
    else:
        data = np.zeros(shape, labels.dtype)
        data[plane] = labels
    layer = Labels(
        data,
        name=name,
        opacity=0.5,
        visible=visible,
        colormap=result_colormap(),
        metadata={METADATA_KEY: {"role": ROLE_SEGMENTATION, "image": image_layer.name}},
        **layer_geometry(image_layer if geometry_layer is None else geometry_layer),
    )
    return insert_layer(viewer, layer, index, activate)


def insert_layer(viewer, layer, index: Optional[int] = None, activate: bool = True):
    """Insert ``layer`` at ``index`` (``None``: on top) in one step; ``activate=False`` leaves the active layer.

    One insertion, not an addition on top and a move: each is a full turn of
    napari's layer-list events (60–66 ms for a Labels layer, docs/performance.md).
    """
    layers = viewer.layers
    was = getattr(layers, "_activate_on_insert", None)  # napari's switch (private; absent: the layer gets active)
    if not activate and was is not None:
        layers._activate_on_insert = False
    try:
        layers.insert(len(layers) if index is None else index, layer)
    finally:
        if was is not None:
            layers._activate_on_insert = was
    return layer


@dataclass
class PlaneChanges:
    """Where new labels differ from one plane of an array, as :meth:`napari.layers.Labels.data_setitem` takes them.

    Found by :func:`plane_changes` (in a worker thread, off the GUI thread) and
    written by :func:`write_plane` while the layer still holds ``data``.
    """

    data: np.ndarray  # the array the changes were found against
    plane: tuple
    index: tuple
    values: np.ndarray
    peak: int  # the largest new label (0 for none)


def plane_changes(data, plane: tuple, labels: np.ndarray) -> PlaneChanges:
    """The pixels of ``data[plane]`` that ``labels`` change, with their new values.

    Examples
    --------
    >>> c = plane_changes(np.zeros((2, 2, 3), np.uint8), (1,), np.array([[0, 2, 0], [0, 0, 0]], np.uint8))
    >>> [i.tolist() for i in c.index], c.values.tolist(), c.peak
    ([[1], [0], [1]], [2], 2)
    """
    changed = np.asarray(data[plane]) != labels
    where = np.nonzero(changed)  # (rows, cols) of a plane, (planes, rows, cols) of a whole volume
    index_dtype = np.int32 if max(data.shape) < 2**31 else np.intp
    lead = tuple(np.full(where[0].size, i, index_dtype) for i in plane)
    return PlaneChanges(data, tuple(plane), lead + tuple(w.astype(index_dtype) for w in where), labels[changed],
                        int(labels.max()) if labels.size else 0)


def write_plane(layer: Labels, plane: tuple, labels: np.ndarray, changes: Optional[PlaneChanges] = None) -> int:
    """Write ``labels`` into one plane of ``layer`` as a single undoable edit.

    Only the pixels that change are written, through
    :meth:`napari.layers.Labels.data_setitem`, so one Ctrl+Z restores the
    previous result.

    Parameters
    ----------
    layer : napari.layers.Labels
        The result layer.
    plane : tuple of int
        Indices of the leading axes.
    labels : numpy.ndarray
        ``(rows, cols)`` new labels of the plane (or, with ``plane == ()``, of the whole layer).
    changes : PlaneChanges, optional
        The changes found beforehand (:func:`plane_changes`, in a worker thread), used
        where the layer still holds the array they were found against and its dtype
        holds the new labels; otherwise found here. A pixel painted by hand since
        they were found, where the old labels equalled the new ones, keeps its paint.

    Returns
    -------
    int
        Number of pixels changed.
    """
    data = layer.data
    peak = changes.peak if changes is not None else (int(labels.max()) if labels.size else 0)
    if peak > np.iinfo(data.dtype).max:
        layer.data = data = data.astype(labels.dtype)
    if changes is None or changes.data is not data or changes.plane != tuple(plane):
        changes = plane_changes(data, plane, labels)
    if changes.values.size == 0:
        return 0
    layer.data_setitem(changes.index, changes.values)
    return int(changes.values.size)


class RefusedBox(ValueError):
    """A box with no area in the image (zero width or height, off the image): it was taken off its layer."""


def box_from_shapes(layer, shape, plane: tuple = (), remove_refused: bool = False) -> Box | None:
    """The last rectangle of a Shapes layer on ``plane`` as a box inside an image of spatial ``shape``.

    On a stack every rectangle must lie on one plane (constant leading
    coordinates); the last one on ``plane`` is the box of that plane.

    Parameters
    ----------
    layer : napari.layers.Shapes or None
    shape : tuple of int
        Spatial shape of the image, ``(..., rows, cols)``.
    plane : tuple of int
        The current plane (``()`` for a 2-D image).
    remove_refused : bool
        Take a rectangle without area in the image off the layer and raise
        :class:`RefusedBox`: the message is then said once, and the next click
        or box does not meet it again.

    Returns
    -------
    Box or None
        ``None`` when no rectangle lies on ``plane``.

    Raises
    ------
    ValueError
        If the layer holds a shape that is not a rectangle, has another number of
        dimensions than the image, holds a rectangle that does not lie on one
        plane, or the box has no area inside the image.
    """
    if layer is None or not len(layer.data):
        return None
    others = sorted({t for t in layer.shape_type if t != "rectangle"})
    if others:
        raise ValueError(f"shapes layer '{layer.name}' holds a {others[0]}: draw rectangles only for boxes")
    shape = tuple(int(s) for s in shape)
    if int(layer.ndim) != len(shape):
        raise ValueError(f"shapes layer '{layer.name}' has {layer.ndim} dimensions but the image has {len(shape)} "
                         f"({'x'.join(map(str, shape))}): draw the box in the layer 'New box' makes")
    planes = [rectangle_plane(corners, shape) for corners in layer.data]
    on_plane = [i for i, p in enumerate(planes) if p == tuple(plane)]
    if not on_plane:
        return None
    try:
        return box_on_plane(layer.data[on_plane[-1]], shape)[1]
    except ValueError as exc:
        if not remove_refused:
            raise
        layer.selected_data = {on_plane[-1]}
        with layer.events.data.blocker():  # the layer's listeners (a new prediction) would say it again
            layer.remove_selected()
        raise RefusedBox(f"{exc} (the box was removed)") from None


def plane_clicks(points: np.ndarray, positive: np.ndarray, plane: tuple) -> list:
    """Clicks of the points lying on ``plane`` (their leading coordinates rounded).

    Examples
    --------
    >>> plane_clicks(np.array([[0, 2.4, 3.6], [1, 1, 1]]), np.array([True, False]), (0,))
    [Click(row=2, col=4, positive=True)]
    """
    pts = np.asarray(points, float).reshape(len(points), -1) if len(points) else np.zeros((0, len(plane) + 2))
    out = []
    for p, flag in zip(pts, np.asarray(positive, bool)):
        if tuple(round(v) for v in p[: len(plane)]) == tuple(plane):
            out.append(Click(round(p[-2]), round(p[-1]), bool(flag)))
    return out
