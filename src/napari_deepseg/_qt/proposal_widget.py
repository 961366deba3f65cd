"""The *Automatic proposal* and *Saliency map* dock widgets.

Thin faces of :mod:`napari_deepseg.core.models.proposals` and
:mod:`napari_deepseg.core.models.saliency`: each reads the current 2-D plane of an
image layer, runs the model in a worker thread (:class:`TaskRunner`: the newest
request wins) and writes a layer:

* **Automatic proposal** → ``"<image> proposal"``, a Labels layer (VOC class
  values with their names in the layer's ``features`` table, or 0/1 for chosen
  classes), written with undo; **Scribbles from proposal** → a new
  ``"<image> scribbles"`` layer with the confident object (1) and background
  (2) as seeds for the *Scribble segmentation* widget.
* **Saliency map** → ``"<image> saliency"``, an Image layer in [0, 1].

A user's own layer with the same name is never overwritten: results go to a
layer this widget made (marked in its metadata), or to a new one.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    LineEdit,
    PushButton,
    SpinBox,
)
from napari.layers import Image, Labels

from ..core.models.proposals import (
    DEFAULT_MODEL,
    MODELS,
    PRECISIONS,
    DeepLabProposer,
    parse_classes,
    proposal_scribbles,
)
from . import _layers
from ._tasks import TaskRunner
from ._torch_guard import guard_triton_import
from ._common import DEVICES, notify, status_line
from ._messages import error_text

ROLE_PROPOSAL = "proposal"
ROLE_SALIENCY = "saliency"


def _weights_value(edit: FileEdit) -> str | None:
    """The file in a weights field, ``None`` when empty; raises for a missing file."""
    value = edit.value
    if value is None or str(value) in ("", "."):
        return None
    if not Path(value).is_file():
        raise ValueError(f"weights file not found: {value}")
    return str(value)


def _read_plane(viewer, image_layer) -> tuple:
    """``(plane, shape, image)``: the current plane of an image layer, copied."""
    if not isinstance(image_layer, Image):
        raise ValueError("no image layer selected: open an image first")  # noqa: TRY004 - shown to the user
    shape = _layers.spatial_shape(image_layer)
    if len(shape) < 2:
        raise ValueError(f"image '{image_layer.name}' must be at least 2-D, got shape {shape}")
    plane = _layers.current_plane(image_layer, viewer.dims.point)
    return plane, shape, np.array(_layers.layer_array(image_layer)[plane], copy=True)


def _own_layer(viewer, name: str, kind, role: str, shape: tuple):
    """This plugin's layer called ``name`` with ``role`` and spatial ``shape``, if there is one."""
    if name not in viewer.layers:
        return None
    layer = viewer.layers[name]
    if isinstance(layer, kind) and _layers.role(layer) == role and _layers.spatial_shape(layer) == tuple(shape):
        return layer
    return None


class _ModelWidget(Container):
    """Shared parts: the viewer, an image combo, a status line, a task runner."""

    def __init__(self, napari_viewer):
        super().__init__(labels=True)
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.image_combo = ComboBox(label="image", choices=self._image_choices)
        self.status = status_line()
        self.runner = TaskRunner(self.native)
        self._models: dict = {}
        self._lock = threading.Lock()
        events = self.viewer.layers.events
        for emitter in (events.inserted, events.removed, events.reordered, events.renamed):
            emitter.connect(self.reset_choices)

    def _image_choices(self, _widget=None) -> list:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    @property
    def busy(self) -> bool:
        """Whether a request is running."""
        return self.runner.busy

    def _model(self, key: tuple, factory):
        guard_triton_import()
        if key not in self._models:
            self._models = {key: factory()}  # keep one network in memory
        return self._models[key]

    def _on_error(self, exc) -> None:
        notify(self.status, error_text(exc))


class AutomaticProposalWidget(_ModelWidget):
    """Dock widget: a DeepLabV3 proposal for the current image, and seeds from it.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        self.model = ComboBox(label="model", choices=list(MODELS), value=DEFAULT_MODEL)
        self.classes = LineEdit(label="classes", value="")
        self.classes.tooltip = "empty: all 21 VOC classes; or e.g. 'pet' (cat + dog), 'cat,dog', 'person'"
        self.weights = FileEdit(label="weights", mode="r", filter="*.pth *.pt *.safetensors", nullable=True)
        self.device = ComboBox(label="device", choices=list(DEVICES), value="auto")
        self.precision = ComboBox(label="precision", choices=list(PRECISIONS), value="float32")
        self.propose_button = PushButton(text="Propose")
        self.object_threshold = FloatSpinBox(label="object ≥", value=0.9, min=0.01, max=1.0, step=0.05)
        self.background_threshold = FloatSpinBox(label="background ≤", value=0.1, min=0.0, max=0.99, step=0.05)
        self.margin = SpinBox(label="margin (px)", value=8, min=0, max=1000)
        self.scribbles_button = PushButton(text="Scribbles from proposal")
        self.extend([self.image_combo, self.model, self.classes, self.weights, self.device, self.precision,
                     self.propose_button, self.object_threshold, self.background_threshold, self.margin,
                     self.scribbles_button, self.status])
        self.propose_button.clicked.connect(lambda *_: self.propose())
        self.scribbles_button.clicked.connect(lambda *_: self.scribbles_from_proposal())
        self._last = None  # (image layer, plane, shape, Proposal) of the newest result
        self.reset_choices()

    def propose(self) -> bool:
        """Start a proposal for the current plane of the selected image; returns whether it started."""
        try:
            image_layer = self.image_combo.value
            plane, shape, image = _read_plane(self.viewer, image_layer)
            classes = parse_classes(self.classes.value)
            key = (self.model.value, _weights_value(self.weights), self.device.value, self.precision.value)
            proposer = self._model(key, lambda: DeepLabProposer(key[0], weights=key[1], device=key[2],
                                                                 precision=key[3]))
        except (ValueError, TypeError, RuntimeError) as exc:
            self._on_error(exc)
            return False

        def run(progress=None, cancel=None):
            with self._lock:
                return proposer.propose(image, classes=classes, progress=progress, cancel=cancel)

        self.status.value = f"proposing '{image_layer.name}' with {proposer.model}…"
        self.runner.start(run, on_result=lambda p: self._write_proposal(image_layer, plane, shape, p),
                          on_error=self._on_error, desc=f"proposal: {image_layer.name}")
        return True

    def _write_proposal(self, image_layer, plane, shape, proposal) -> None:
        if image_layer not in self.viewer.layers:
            self.status.value = "image layer was removed; proposal dropped"
            return
        name = f"{image_layer.name} proposal"
        names = list(proposal.class_names)
        features = {"index": list(range(len(names))), "class": names}
        layer = _own_layer(self.viewer, name, Labels, ROLE_PROPOSAL, shape)
        if layer is None:
            data = np.zeros(shape, np.uint8)
            data[plane] = proposal.labels
            layer = self.viewer.add_labels(
                data, name=name, opacity=0.5, features=features,
                metadata={_layers.METADATA_KEY: {"role": ROLE_PROPOSAL, "image": image_layer.name}},
                **_layers.layer_geometry(image_layer),
            )
        else:
            _layers.write_plane(layer, plane, proposal.labels)
            layer.features = features
        layer.metadata[_layers.METADATA_KEY]["classes"] = names
        self._last = (image_layer, plane, shape, proposal)
        present = [names[v] for v in np.unique(proposal.labels) if v < len(names) and v > 0]
        self.status.value = f"'{name}': {', '.join(present) or 'nothing found'}"

    def scribbles_from_proposal(self) -> Labels | None:
        """Add a new scribbles layer seeded by the newest proposal's confident regions."""
        if self._last is None or self._last[0] not in self.viewer.layers:
            notify(self.status, "no proposal yet: press 'Propose' first")
            return None
        image_layer, plane, _shape, proposal = self._last
        try:
            seeds = proposal_scribbles(proposal.object_probability, float(self.object_threshold.value),
                                       float(self.background_threshold.value), int(self.margin.value))
        except ValueError as exc:
            self._on_error(exc)
            return None
        layer = _layers.new_scribbles_layer(self.viewer, image_layer)  # a new layer: never a user's own
        layer.data[plane] = seeds
        layer.refresh()
        counts = {v: int(np.count_nonzero(seeds == v)) for v in (1, 2)}
        missing = [side for side, v in (("object", 1), ("background", 2)) if not counts[v]]
        self.status.value = (f"'{layer.name}': {counts[1]} object and {counts[2]} background seed pixels"
                             + (f"; no confident {' or '.join(missing)}: paint it by hand" if missing else
                                "; segment it with the Scribble segmentation widget"))
        return layer


class SaliencyWidget(_ModelWidget):
    """Dock widget: a VGG16 gradient saliency map of the current image as an Image layer.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer):
        from ..core.models.saliency import MODES

        super().__init__(napari_viewer)
        self.mode = ComboBox(label="mode", choices=list(MODES), value="guided")
        self.class_index = SpinBox(label="class", tooltip="the class to explain (-1: the top class)", value=-1, min=-1, max=999)
        self.weights = FileEdit(label="weights", mode="r", filter="*.pth *.pt *.safetensors", nullable=True)
        self.device = ComboBox(label="device", choices=list(DEVICES), value="auto")
        self.run_button = PushButton(text="Saliency map")
        self.extend([self.image_combo, self.mode, self.class_index, self.weights, self.device, self.run_button,
                     self.status])
        self.run_button.clicked.connect(lambda *_: self.compute())
        self.reset_choices()

    def compute(self) -> bool:
        """Start the map of the current plane of the selected image; returns whether it started."""
        from ..core.models.saliency import SaliencyModel

        try:
            image_layer = self.image_combo.value
            plane, shape, image = _read_plane(self.viewer, image_layer)
            key = (_weights_value(self.weights), self.device.value)
            model = self._model(key, lambda: SaliencyModel(weights=key[0], device=key[1]))
        except (ValueError, TypeError, RuntimeError) as exc:
            self._on_error(exc)
            return False
        mode = self.mode.value
        class_index = None if int(self.class_index.value) < 0 else int(self.class_index.value)

        def run(progress=None, cancel=None):
            with self._lock:
                return model.compute(image, mode=mode, class_index=class_index, progress=progress, cancel=cancel)

        self.status.value = f"{mode} saliency of '{image_layer.name}'…"
        self.runner.start(run, on_result=lambda r: self._write_map(image_layer, plane, shape, r),
                          on_error=self._on_error, desc=f"saliency: {image_layer.name}")
        return True

    def _write_map(self, image_layer, plane, shape, result) -> None:
        if image_layer not in self.viewer.layers:
            self.status.value = "image layer was removed; map dropped"
            return
        name = f"{image_layer.name} saliency"
        layer = _own_layer(self.viewer, name, Image, ROLE_SALIENCY, shape)
        if layer is None:
            data = np.zeros(shape, np.float32)
            data[plane] = result.map
            layer = self.viewer.add_image(
                data, name=name, colormap="inferno", blending="additive", opacity=0.7, contrast_limits=(0.0, 1.0),
                metadata={_layers.METADATA_KEY: {"role": ROLE_SALIENCY, "image": image_layer.name}},
                **_layers.layer_geometry(image_layer),
            )
        else:
            layer.data[plane] = result.map
            layer.refresh()
        layer.metadata[_layers.METADATA_KEY].update(mode=result.mode, class_index=result.class_index)
        self.status.value = f"'{name}': {result.mode}, class {result.class_index} ({result.class_name})"
