"""The *Point prompts* dock widget: a box and clicks on an object, its mask, committed as an instance.

A thin face of the click methods of the core (``graphcut``, the default, ``points-graphcut``, ``pointclip``):

* ``New box`` adds a ``"<image> box"`` Shapes layer with the rectangle tool: the
  last rectangle starts an object (outside is background), clicks then correct
  it in the same cut (``graphcut`` only); on a stack a rectangle belongs to the
  plane it is drawn on (the last one on the current plane is that plane's box);
* ``Refine label`` takes an object of a Labels layer (the layer chosen under
  *refine layer*, the label under the cursor or the *label* box) as the current
  object: clicks or a box change it only within *refine bound* pixels of the new
  input, commit writes it back under the same id (other pixels untouched);

* a Points layer holds the prompts; every point has a ``positive`` feature,
  shown by its colour (green object, red background); ``T`` toggles the sign of
  new points;
* every added, moved or deleted point re-runs the prediction in a worker
  (the newest request wins, a stale result is dropped); the mask is shown in a
  ``"<image> prompt mask"`` preview layer;
* ``C`` commits the mask into the ``"<image> objects"`` instance Labels layer
  with the next free id (only on pixels no earlier object holds, one undoable
  edit), ``Shift+C`` clears the prompts. Committed objects are never changed
  and are background for the next cut; ``R`` refines the label under the cursor.

The pure logic (ids, protected commits, the refine region) is
:mod:`napari_deepseg.core.prompts.objects`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, PushButton, SpinBox
from napari.layers import Image, Labels, Points, Shapes

from ..core.dataset.record import click_engine
from ..core.prompts.base import Click, get_click_method
from ..core.prompts.box import box_from_mask
from ..core.prompts.clickcut import click_seeds, keep_pieces_touching
from ..core.prompts.objects import deepest_point, refine_region
from ..core.features import available_backbones
from ..core.utils.progress import CancelToken
from . import _layers, _objects, _refine
from ._layers import (NEGATIVE_COLOUR, POSITIVE_COLOUR, ROLE_BOX, ROLE_PROMPTS, box_from_shapes,  # noqa: F401
                      plane_clicks)
from ._common import DEVICES, notify, one_line, single_shot, status_line
from ._tasks import TaskRunner
from ._torch_guard import guard_triton_import

PREDICTORS = ("graphcut", "points-graphcut", "pointclip")
ROLE_PREVIEW = "prompt-mask"
#: delay that merges point edits arriving together (e.g. a paste) into one request
EDIT_DELAY_MS = 20


@dataclass
class PredictorSlot:
    """A click method and the lock that keeps two workers from using it at once."""

    method: object
    lock: threading.Lock = field(default_factory=threading.Lock)


def run_prediction(slot: PredictorSlot, image: np.ndarray, clicks: list, box=None, protected=None, refine=None,
                   bound: float = 0.0, progress=None, cancel: CancelToken | None = None) -> np.ndarray:
    """Worker body: ``set_image`` (cached by the method), then ``predict`` or ``predict_box``.

    ``protected`` pixels (committed objects) are hard background: they lie
    outside any box of the cut and are removed from its mask. With ``refine``
    (the object's old mask) the result replaces the old mask only within
    ``bound`` pixels of the new clicks and box (the *region*); without a box the
    cut runs in the box of the old object and the region together (enlarged by
    10 %, so a click beyond the old object can add what it lies on), with a click
    at the old object's deepest point unless a click is positive. Pieces of the
    refined mask that touch neither a positive click nor the old object are dropped.
    ``progress`` is accepted for the request runner and unused (the click methods report none).
    """
    cancel = CancelToken() if cancel is None else cancel
    with slot.lock:
        cancel.raise_if_cancelled()
        slot.method.set_image(image, cancel=cancel)
        cancel.raise_if_cancelled()
        cut_box, cut_clicks = box, list(clicks)
        region = None
        if refine is not None:
            region = refine_region(refine.shape, [(c.row, c.col) for c in clicks], box, bound)
        if refine is not None and box is None:
            cut_box = box_from_mask(refine | region, 0.1)
            if not any(c.positive for c in cut_clicks):
                cut_clicks = [Click(*deepest_point(refine), True)] + cut_clicks
        if cut_box is not None:
            mask = slot.method.predict_box(cut_box, cut_clicks, cancel=cancel)
        else:
            mask = slot.method.predict(cut_clicks, cancel=cancel)
        mask = np.asarray(mask, bool)
        if refine is not None:
            mask = np.where(region, mask, refine)
        if protected is not None:
            mask &= ~protected
        if refine is not None:
            mask = keep_pieces_touching(mask, refine | click_seeds([c for c in clicks if c.positive], mask.shape, 0)
                                        .astype(bool))
        return mask




class PointPromptWidget(Container):
    """Dock widget: positive/negative point prompts → a mask → committed instances.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer):
        super().__init__(labels=True)
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self._slots: dict = {}
        self.runner = TaskRunner(self.native)
        self._positive = True
        self._mask: tuple | None = None  # (image layer, plane, mask) of the newest result
        self._connected: Points | None = None
        self._box_layer: Shapes | None = None
        self._refine: _refine.Refinement | None = None
        self._quiet = False
        self._timer = single_shot(self.native, EDIT_DELAY_MS, lambda: self.predict(auto=True))
        self._build()
        self.reset_choices()
        self._on_predictor_changed()

    # -- construction --------------------------------------------------------------
    def _build(self) -> None:
        self.image_combo = ComboBox(label="image", choices=self._image_choices)
        self.points_combo = ComboBox(label="points", choices=self._points_choices)
        self.new_points_button = PushButton(text="New points layer")
        self.predictor = ComboBox(label="predictor", choices=list(PREDICTORS), value="graphcut")
        self.features = ComboBox(label="features", choices=["auto", *available_backbones()], value="auto")
        self.checkpoint = FileEdit(label="checkpoint", mode="d", nullable=True)
        self.device = ComboBox(label="device", choices=list(DEVICES), value="auto")
        self.mode_button = PushButton(text="New points: positive (T)")
        self.commit_button = PushButton(text="Commit object (C)")
        self.clear_button = PushButton(text="Clear prompts (Shift+C)")
        self.box_button = PushButton(text="New box (rectangle)")
        self.refine_layer = ComboBox(label="refine layer", choices=self._labels_choices, nullable=True)
        self.refine_label = SpinBox(label="label", min=0, max=2**31 - 1, value=0)
        self.refine_bound = SpinBox(label="bound (px)", min=0, max=100_000, value=0,
                                    tooltip="clicks or a box change the refined label only within this distance "
                                            "of them, in pixels (0: a tenth of the image's smaller side)")
        self.refine_button = PushButton(text="Refine label (R)")
        self.status = status_line()
        self.extend([self.image_combo, self.points_combo, self.new_points_button, self.predictor, self.features,
                     self.checkpoint, self.device, self.mode_button, self.box_button, self.commit_button,
                     self.clear_button, self.refine_layer, self.refine_label, self.refine_bound,
                     self.refine_button, self.status])
        events = self.viewer.layers.events
        for emitter in (events.inserted, events.removed, events.reordered, events.renamed):
            emitter.connect(self.reset_choices)
        self.points_combo.changed.connect(self._connect_points)
        self.new_points_button.clicked.connect(lambda *_: self.new_points_layer())
        self.predictor.changed.connect(self._on_predictor_changed)
        for w in (self.features, self.checkpoint, self.device):
            w.changed.connect(lambda *_: self.schedule())
        self.mode_button.clicked.connect(lambda *_: self.toggle_mode())
        self.commit_button.clicked.connect(lambda *_: self.commit())
        self.clear_button.clicked.connect(lambda *_: self.clear())
        self.box_button.clicked.connect(lambda *_: self.new_box_layer())
        self.refine_button.clicked.connect(lambda *_: self.refine())
        self.refine_bound.changed.connect(lambda *_: self.schedule())

    def _image_choices(self, _w=None) -> list:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    def _labels_choices(self, _w=None) -> list:
        return [(layer.name, layer) for layer in self.viewer.layers
                if isinstance(layer, Labels) and _layers.role(layer) != ROLE_PREVIEW]

    def _points_choices(self, _w=None) -> list:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Points)]

    def _on_predictor_changed(self, _value=None) -> None:
        clip = self.predictor.value == "pointclip"
        self.checkpoint.enabled = clip
        self.features.enabled = not clip
        self.schedule()

    # -- the points layer ---------------------------------------------------------------
    def new_points_layer(self) -> Points | None:
        """Add an empty ``"<image> prompts"`` Points layer in add mode and select it."""
        image_layer = self.image_combo.value
        if image_layer is None:
            notify(self.status, "no image layer selected: open an image first")
            return None
        ndim = len(_layers.spatial_shape(image_layer))
        layer = self.viewer.add_points(
            np.zeros((0, ndim)), name=f"{image_layer.name} prompts", ndim=ndim,
            features={"positive": np.zeros(0, bool)}, border_color="white", size=max(4, min(
                _layers.spatial_shape(image_layer)[-2:]) // 60),
            metadata={_layers.METADATA_KEY: {"role": ROLE_PROMPTS, "image": image_layer.name}},
            **_layers.layer_geometry(image_layer),
        )
        self.reset_choices()
        self.points_combo.value = layer
        self._connect_points(layer)
        layer.mode = "add"
        self.viewer.layers.selection.active = layer
        self.status.value = "click on the object; T toggles positive/negative, C commits, Shift+C clears"
        return layer

    def _connect_points(self, layer=None) -> None:
        """Listen to the selected points layer; give it the T / C / Shift+C keys and the sign feature."""
        layer = self.points_combo.value if layer is None else layer
        if layer is self._connected:
            return
        if self._connected is not None:
            self._connected.events.data.disconnect(self._on_points_edited)
        self._connected = layer
        if layer is None:
            return
        if "positive" not in layer.features:
            layer.features = layer.features.assign(positive=np.ones(len(layer.data), bool))
        self._set_defaults(layer)
        layer.events.data.connect(self._on_points_edited)
        layer.bind_key("t", lambda _layer: self.toggle_mode(), overwrite=True)
        layer.bind_key("c", lambda _layer: self.commit(), overwrite=True)
        layer.bind_key("Shift-c", lambda _layer: self.clear(), overwrite=True)
        layer.bind_key("r", lambda _layer: self.refine_at_cursor(), overwrite=True)
        self._recolour(layer)

    def _recolour(self, layer: Points) -> None:
        """Face colours from the ``positive`` feature (green object, red background)."""
        if not len(layer.data):
            return
        flags = np.asarray(layer.features["positive"], bool)
        layer.face_color = [POSITIVE_COLOUR if f else NEGATIVE_COLOUR for f in flags]

    def _set_defaults(self, layer: Points) -> None:
        """Sign and colour of the next point.

        The selection is emptied first: napari applies new defaults to selected
        points, and re-selecting a point would copy its sign back into the defaults.
        """
        layer.selected_data = set()
        layer.feature_defaults = {"positive": self._positive}
        layer.current_face_color = POSITIVE_COLOUR if self._positive else NEGATIVE_COLOUR

    # -- the box layer and refinement ---------------------------------------------------
    def new_box_layer(self) -> Shapes | None:
        """Add (or reuse) the ``"<image> box"`` Shapes layer with the rectangle tool selected."""
        image_layer = self.image_combo.value
        if image_layer is None:
            notify(self.status, "no image layer selected: open an image first")
            return None
        ndim = len(_layers.spatial_shape(image_layer))
        name = f"{image_layer.name} box"
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        if not isinstance(layer, Shapes):
            layer = self.viewer.add_shapes(name=name, ndim=ndim, edge_color="yellow", face_color="transparent",
                                           edge_width=2,
                                           metadata={_layers.METADATA_KEY: {"role": ROLE_BOX,
                                                                            "image": image_layer.name}},
                                           **_layers.layer_geometry(image_layer))
        self._connect_box(layer)
        self._raise_above_masks(layer, image_layer)
        self.viewer.layers.selection.active = layer
        layer.mode = "add_rectangle"
        self.status.value = "drag a box around the object; then click to correct it, C commits"
        return layer

    def _connect_box(self, layer: Shapes) -> None:
        if layer is self._box_layer:
            return
        if self._box_layer is not None:
            self._box_layer.events.data.disconnect(self._on_points_edited)
        self._box_layer = layer
        layer.events.data.connect(self._on_points_edited)
        layer.bind_key("c", lambda _layer: self.commit(), overwrite=True)
        layer.bind_key("Shift-c", lambda _layer: self.clear(), overwrite=True)

    def refine(self, layer: Labels | None = None, label_id: int | None = None) -> bool:
        """Make object ``label_id`` of ``layer`` the current object (defaults: the refine layer and label boxes).

        Returns whether it was picked; bad input is a one-line notification and changes nothing.
        """
        image_layer = self.image_combo.value
        try:
            refine = _refine.pick_from(self.viewer, image_layer, self.refine_layer, self.refine_label, layer, label_id)
        except ValueError as exc:
            notify(self.status, one_line(exc, field=None))
            return False
        self._refine = refine
        self._show(image_layer, refine.plane, refine.mask, self.runner.next_rid())
        self.status.value = (f"refining label {refine.label_id} of '{refine.layer.name}': clicks or a box change it "
                             f"within {self._bound(refine.mask.shape)} px; C writes it back")
        return True

    def refine_at_cursor(self) -> bool:
        """``R``: refine the label under the cursor in the refine layer (or the selected Labels layer)."""
        try:
            layer, label_id = _refine.label_at_cursor(self.viewer, self.refine_layer.value)
        except ValueError as exc:
            notify(self.status, one_line(exc, field=None))
            return False
        return self.refine(layer, label_id)

    def _bound(self, shape) -> int:
        return _refine.bound(self.refine_bound.value, shape)

    def toggle_mode(self) -> bool:
        """Switch the sign of new points; returns ``True`` when new points are positive."""
        self._positive = not self._positive
        word = "positive" if self._positive else "negative"
        self.mode_button.text = f"New points: {word} (T)"
        layer = self.points_combo.value
        if isinstance(layer, Points):
            self._set_defaults(layer)
        self.status.value = f"new points are {word}"
        return self._positive

    def _on_points_edited(self, event=None) -> None:
        action = str(getattr(event, "action", "") or "")
        if action in ("adding", "changing", "removing"):
            return  # the edit is not finished yet
        if self._quiet:
            return
        layer = self._connected
        if layer is not None:
            self._recolour(layer)
        self.schedule()

    def schedule(self) -> None:
        """Run :meth:`predict` once the event loop is back (merges edits arriving together)."""
        self._timer.start()

    # -- prediction -----------------------------------------------------------------
    def _slot(self) -> PredictorSlot:
        name, params = self._method()
        key = (name, tuple(sorted(params.items())))
        if key not in self._slots:
            guard_triton_import()  # torch may load next: keep triton's LLVM away from Mesa's
            self._slots[key] = PredictorSlot(get_click_method(name, **params))
        return self._slots[key]

    def _method(self) -> tuple:
        """``(name, params)`` of the chosen click method (its registry name and constructor parameters).

        Raises
        ------
        ValueError
            For ``pointclip`` without a checkpoint folder.
        """
        name = self.predictor.value
        if name == "pointclip":
            ckpt = self.checkpoint.value
            if ckpt is None or str(ckpt) in ("", "."):
                raise ValueError("pointclip needs a checkpoint folder: choose one (napari-deepseg train pointclip ...) "
                                 "or use points-graphcut")
            if not Path(ckpt).is_dir():
                raise ValueError(f"checkpoint folder not found: {ckpt}")
            params = {"checkpoint": str(ckpt), "device": self.device.value}
        elif name == "graphcut":  # the scribble cut's backbones; weight-free ones take no device
            features = "classic" if self.features.value == "auto" else self.features.value
            params = {"features": features}
            if features in ("resnet50", "clip", "saliency"):
                params["device"] = self.device.value
        else:
            params = {"features": self.features.value, "device": self.device.value}
        return name, params

    def _inputs(self):
        """``(image layer, plane, image plane, clicks)`` of the current plane."""
        image_layer, points_layer = self.image_combo.value, self.points_combo.value
        if not isinstance(image_layer, Image):
            raise TypeError("no image layer selected: open an image first")
        if not isinstance(points_layer, Points):
            raise TypeError("no points layer: click 'New points layer' and click on the object")
        shape = _layers.spatial_shape(image_layer)
        if points_layer.ndim != len(shape):
            raise ValueError(f"points layer '{points_layer.name}' has {points_layer.ndim} dimensions but image "
                             f"'{image_layer.name}' has {len(shape)}")
        plane = _layers.current_plane(image_layer, self.viewer.dims.point)
        image = np.array(_layers.layer_array(image_layer)[plane], copy=True)
        positive = (np.asarray(points_layer.features["positive"], bool) if "positive" in points_layer.features
                    else np.ones(len(points_layer.data), bool))
        clicks = plane_clicks(np.asarray(points_layer.data), positive, plane)
        rows, cols = shape[-2:]
        outside = [c for c in clicks if not (0 <= c.row < rows and 0 <= c.col < cols)]
        if outside:
            raise ValueError(f"point at (row {outside[0].row}, col {outside[0].col}) lies outside the "
                             f"{rows}x{cols} image: move or delete it")
        box = None
        if self._box_layer is not None and self._box_layer in self.viewer.layers:
            box = box_from_shapes(self._box_layer, shape, plane, remove_refused=True)
        return image_layer, plane, image, clicks, box

    def predict(self, auto: bool = False) -> bool:
        """Start a prediction for the current points; returns whether a worker started.

        ``auto`` (an edit or an option change): a missing image or points layer
        only updates the status line instead of raising a notification.
        """
        try:
            image_layer, plane, image, clicks, box = self._inputs()
        except TypeError as exc:  # no image / points layer yet
            if self._box_layer is not None and self._box_layer in self.viewer.layers and len(self._box_layer.data):
                return self._predict_box_only(auto)
            if auto:
                self.status.value = one_line(exc, field=None)
            else:
                self._fail(one_line(exc, field=None))
            return False
        except ValueError as exc:
            self._fail(one_line(exc, field=None))
            return False
        return self._start(image_layer, plane, image, clicks, box)

    def _predict_box_only(self, auto: bool) -> bool:
        """A box and no points layer: the box alone."""
        image_layer = self.image_combo.value
        if not isinstance(image_layer, Image):
            return False
        plane = _layers.current_plane(image_layer, self.viewer.dims.point)
        try:
            box = box_from_shapes(self._box_layer, _layers.spatial_shape(image_layer), plane, remove_refused=True)
        except ValueError as exc:
            self._fail(one_line(exc, field=None))
            return False
        image = np.array(_layers.layer_array(image_layer)[plane], copy=True)
        return self._start(image_layer, plane, image, [], box)

    def _start(self, image_layer, plane, image, clicks, box) -> bool:
        """Start the worker for these prompts (or show what is missing)."""
        refine = self._refine
        if refine is not None and (refine.layer not in self.viewer.layers or refine.plane != plane):
            self._refine = refine = None
        rid = self.runner.next_rid()  # the running prediction no longer answers the prompts
        if refine is not None and not clicks and box is None:
            self._show(image_layer, plane, refine.mask, rid)
            return False
        if not clicks and box is None:
            self._show(image_layer, plane, None, rid)
            self.status.value = "no points or box on this plane"
            return False
        if box is None and refine is None and not any(c.positive for c in clicks):
            self._show(image_layer, plane, None, rid)
            self.status.value = "add a positive point on the object (T toggles the sign)"
            return False
        try:
            slot = self._slot()
            if (box is not None or refine is not None) and not getattr(slot.method, "takes_box", False):
                raise ValueError(f"predictor {self.predictor.value} takes no box or refinement: use graphcut")
        except (ValueError, TypeError, RuntimeError) as exc:
            self._fail(one_line(exc, field=None))
            return False
        protected = self._protected(image_layer, plane)
        old = None if refine is None else refine.mask
        bound = self._bound(image.shape[:2])
        task = self.runner.start(run_prediction, slot, image, clicks, box, protected, old, bound, bar=False,
                                 on_result=lambda mask: self._on_returned(task.rid, image_layer, plane, mask),
                                 on_error=lambda exc: self._fail(one_line(exc, field=None)))
        self.status.value = f"predicting ({self.predictor.value}, {len(clicks)} points{', a box' if box else ''})…"
        return True

    def _protected(self, image_layer, plane: tuple):
        """Committed pixels the cut must leave alone: other objects of the objects (or refined) layer."""
        refine = self._refine
        if refine is not None:
            data = np.asarray(refine.layer.data[plane])
            return (data != 0) & (data != refine.label_id)
        name = f"{image_layer.name} objects"
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        if isinstance(layer, Labels) and _layers.role(layer) == _layers.ROLE_OBJECTS:
            data = np.asarray(layer.data[plane])
            return data != 0 if data.any() else None
        return None

    @property
    def busy(self) -> bool:
        """Whether a prediction is running."""
        return self.runner.busy

    def _on_returned(self, rid: int, image_layer, plane: tuple, mask) -> None:
        """The newest prediction's mask (the runner drops stale ones)."""
        self._show(image_layer, plane, np.asarray(mask, bool), rid)
        self.status.value = f"{int(np.count_nonzero(mask))} pixels; C commits, Shift+C clears"

    # -- layers -------------------------------------------------------------------------
    def _below_prompts(self) -> int | None:
        """Where a new mask layer (preview, objects) goes: just below the prompt layers (points and box).

        The prompts then stay visible (green/red points, the yellow box outline) on
        top of the mask. ``None``: there is no prompt layer (on top).
        """
        prompts = [self.viewer.layers.index(p) for p in (self.points_combo.value, self._box_layer)
                   if isinstance(p, (Points, Shapes)) and p in self.viewer.layers]
        return min(prompts) if prompts else None

    def _raise_above_masks(self, layer, image_layer) -> None:
        """Move a prompt layer above the image's preview and objects layers (which would tint it)."""
        roles = (ROLE_PREVIEW, _layers.ROLE_OBJECTS)
        masks = [self.viewer.layers.index(lay) for lay in self.viewer.layers
                 if isinstance(lay, Labels) and _layers.role(lay) in roles
                 and lay.metadata.get(_layers.METADATA_KEY, {}).get("image") == image_layer.name]
        src = self.viewer.layers.index(layer)
        if masks and src < max(masks):
            self.viewer.layers.move(src, len(self.viewer.layers))

    def _show(self, image_layer, plane: tuple, mask, rid: int) -> None:
        """Show ``mask`` (or nothing) in the preview layer, keeping the points layer active."""
        self._mask = None if mask is None else (image_layer, plane, mask)
        name = f"{image_layer.name} prompt mask"
        if mask is None and name not in self.viewer.layers:
            return
        active = self.viewer.layers.selection.active
        layer = _layers.role_layer(self.viewer, image_layer, ROLE_PREVIEW, name, np.uint8, _layers.result_colormap(),
                                   index=self._below_prompts())
        layer.data[plane] = 0 if mask is None else mask.astype(np.uint8)
        layer.refresh()
        if active is not None and active in self.viewer.layers:
            self.viewer.layers.selection.active = active

    def commit(self) -> int:
        """Write the current object (a new id, or the refined id in its layer) as one undoable edit.

        Clears the prompts; returns the id (0: nothing committed, a notification says why).
        """
        if self._mask is None or self.busy:
            notify(self.status, "nothing to commit: draw a box or add a positive point and wait for its mask")
            return 0
        image_layer, plane, mask = self._mask
        if image_layer not in self.viewer.layers:
            notify(self.status, "the image layer was removed")
            return 0
        refine = self._refine
        if refine is not None and refine.layer not in self.viewer.layers:
            refine = None  # a new object instead
        target, label_id, pixels = _objects.commit(self.viewer, image_layer, plane, mask, refine,
                                                   index=self._below_prompts(),  # other objects are never changed
                                                   source="clicks", bound=self._bound(mask.shape[:2]),
                                                   engine=self._engine())
        self.clear()
        self.status.value = f"committed object {label_id} ({pixels} pixels) to '{target.name}'"
        return label_id

    def _engine(self) -> dict | None:
        """The chosen click method as a record's engine dict (``None`` when it cannot be named)."""
        try:
            name, params = self._method()
        except ValueError:
            return None
        try:
            return click_engine(name, **params)
        except ValueError:
            return None

    def clear(self) -> None:
        """Remove every prompt and the preview (committed objects stay)."""
        self.runner.next_rid()
        layer = self.points_combo.value
        if isinstance(layer, Points) and len(layer.data):
            self._quiet = True
            try:
                layer.selected_data = set()
                layer.data = np.zeros((0, layer.ndim))
            finally:
                self._quiet = False
        box = self._box_layer
        if isinstance(box, Shapes) and box in self.viewer.layers and len(box.data):
            self._quiet = True
            try:
                box.selected_data = set()
                box.data = []
            finally:
                self._quiet = False
        self._refine = None
        image_layer = self.image_combo.value
        if self._mask is not None:
            image_layer, plane, _ = self._mask
            self._show(image_layer, plane, None, self.runner.latest)
        self._mask = None
        self.status.value = "prompts cleared"

    def _fail(self, message: str) -> None:
        """A prediction failed: clear the preview (the last mask no longer answers the prompts), then notify."""
        if self._mask is not None:
            image_layer, plane, _ = self._mask
            if image_layer in self.viewer.layers:
                self._show(image_layer, plane, None, self.runner.latest)
            self._mask = None
        notify(self.status, message)
