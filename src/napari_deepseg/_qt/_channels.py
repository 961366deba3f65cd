"""Image layers with an explicit channel axis (RGB + near-infrared, ...) for the scribble widget.

napari shows a ``(rows, cols, 4)`` array as RGBA and a ``(bands, rows, cols)``
array as a stack of planes. With the widget's "channel axis" set to ``last`` or
``first``, that axis of the layer's data is the image's channels: it is not a
spatial axis, so the scribbles (and the result) have the other axes' shape, and
the session keeps every band (``set_image(..., channel_axis=...)``).
"""

from __future__ import annotations

import numpy as np

from . import _layers

#: the widget's choices and the data axis each names (``None``: napari's own layout)
CHANNEL_AXES = {"none": None, "last": -1, "first": 0}


def channel_axis_index(choice: str):
    """The data axis of a widget choice (``none`` -> ``None``).

    Examples
    --------
    >>> channel_axis_index("first"), channel_axis_index("none")
    (0, None)
    """
    if choice not in CHANNEL_AXES:
        raise ValueError(f"channel axis must be one of {', '.join(CHANNEL_AXES)}, got {choice!r}")
    return CHANNEL_AXES[choice]


def spatial_shape(layer, axis: int) -> tuple:
    """Shape of the layer's data without the channel ``axis``."""
    shape = tuple(int(s) for s in _layers.layer_array(layer).shape)
    if len(shape) < 3:
        raise ValueError(f"image '{layer.name}' of shape {shape} has no channel axis: set channel axis to 'none'")
    return shape[:axis % len(shape)] + shape[axis % len(shape) + 1:]


def geometry(layer, axis: int) -> dict:
    """``scale`` and ``translate`` of the layer without the channel axis (napari leaves RGB out already)."""
    geo = _layers.layer_geometry(layer)
    if getattr(layer, "rgb", False):
        return geo
    drop = axis % len(geo["scale"])
    return {k: tuple(v[:drop]) + tuple(v[drop + 1:]) for k, v in geo.items()}


def read_inputs(image_layer, scribbles_layer, world_point, axis: int) -> _layers.PlaneInputs:
    """Copy the current plane (all channels, channel axis as in the data) and its scribbles.

    The scribbles layer must have the image's shape without the channel axis;
    its current plane picks the plane of a stack. ``PlaneInputs.image`` keeps the
    channel axis where it is in the data: ``0`` for ``first``, ``-1`` for ``last``.

    Raises
    ------
    ValueError
        If a layer is missing or the shapes do not fit.
    """
    from napari.layers import Image, Labels

    if not isinstance(image_layer, Image):
        raise ValueError("no image layer selected: open an image first")
    if not isinstance(scribbles_layer, Labels):
        raise ValueError("no scribbles layer selected: click 'New scribbles layer' and paint 1 (object) "
                         "and 2 (background)")
    shape = spatial_shape(image_layer, axis)
    sshape = _layers.spatial_shape(scribbles_layer)
    if sshape != shape:
        raise ValueError(f"scribbles layer '{scribbles_layer.name}' has shape {sshape} but image "
                         f"'{image_layer.name}' without its channel axis has shape {shape}; use "
                         "'New scribbles layer' to make a matching one")
    plane = _layers.current_plane(scribbles_layer, world_point)
    index = (slice(None),) + plane if axis == 0 else plane  # (channels, ..., rows, cols) or (..., rows, cols, channels)
    image = _layers.plane_data(image_layer, index)  # a copy of numpy data, a lazy view of dask / zarr
    scribbles = np.array(_layers.layer_array(scribbles_layer)[plane], copy=True)
    return _layers.PlaneInputs(image, scribbles, plane, shape)


def new_scribbles_layer(viewer, image_layer, axis: int):
    """An empty scribbles layer of the image's shape without its channel axis, in brush mode."""
    shape = spatial_shape(image_layer, axis)
    layer = viewer.add_labels(
        np.zeros(shape, np.uint8), name=f"{image_layer.name} scribbles",
        metadata={_layers.METADATA_KEY: {"role": _layers.ROLE_SCRIBBLES, "image": image_layer.name}},
        **geometry(image_layer, axis),
    )
    layer.brush_size = _layers.default_brush_size(shape)
    layer.selected_label = 1
    layer.mode = "paint"
    viewer.layers.selection.active = layer
    return layer
