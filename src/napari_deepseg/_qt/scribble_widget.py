"""The *Scribble segmentation* dock widget.

A thin face of :class:`napari_deepseg.core.SegmentationSession`: it reads the
current plane of an image layer and of a scribbles Labels layer, runs
``set_image`` + ``segment`` in a worker thread, and writes the labels into a
``"<image> segmentation"`` Labels layer with undo.

The widget holds the controls, Live mode and the glue:

* the options, the sessions, their locks and the worker bodies are
  :mod:`napari_deepseg.core.cut.service`'s: one :class:`SegmentationSession` (and a
  lock) per backbone and parameters, so features are cached between requests and
  never computed twice at once; the ``MAX_SESSIONS`` most recently used are kept;
* a request, from its start to its result (progress, the coarse preview, the result
  written with undo, the refit after a local update), is
  :class:`~napari_deepseg._qt._requests.ScribbleRequests`' business, through the one
  :class:`~napari_deepseg._qt._tasks.TaskRunner`: the newest request wins, and layers
  are only touched on the main thread;
* the chosen plane is prepared in the background by
  :class:`~napari_deepseg._qt._prepare.PlanePreparer`;
* picking a label to refine is :mod:`napari_deepseg._qt._refine`'s, committing
  objects and protecting them from the next cut :mod:`napari_deepseg._qt._objects`'.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, FloatSpinBox, LineEdit, PushButton, SpinBox
from napari.layers import Image, Labels

from ..core import PRESETS, available_backbones
from ..core.cut import service
from ..core.cut.service import Options, SessionSlot
from ..core.cut.session import DEFAULT_LAMBDA
from . import _channels, _layers, _objects, _refine
from ._common import DEVICES, notify, one_line, row, single_shot, status_line
from ._prepare import PlanePreparer
from ._requests import Incomplete, ScribbleRequests, read_request
from ._torch_guard import guard_triton_import

#: the "3-D image" choice -> VolumeSession mode (None: the current plane, as for any stack)
VOLUME_MODES = {"current plane": None, "3-D cut": "3d", "per plane": "planes"}
DEFAULT_SIGMA_DISPLAY = 10.0
#: delay between a finished stroke and the live re-run; strokes within it are merged
LIVE_DELAY_MS = 30


class ScribbleSegmentationWidget(Container):
    """Dock widget: paint object (1) and background (2) scribbles, get a segmentation.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer whose layers are read and written.

    Notes
    -----
    napari hands dock widgets a ``PublicOnlyProxy`` of the viewer, which wraps
    every layer in a fresh proxy on each access. The widget uses only public
    API, so it unwraps the viewer once: layers then keep their identity, which
    the live-mode connection and the result-layer bookkeeping rely on.
    """

    def __init__(self, napari_viewer):
        super().__init__(labels=True)
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self._pool = service.SessionPool(before_new=lambda _options: guard_triton_import())
        self._live_layer: Optional[Labels] = None
        self._refine: Optional[_refine.Refinement] = None  # the label being refined
        self._live_timer = single_shot(self.native, LIVE_DELAY_MS, self._run_live)
        self._last_strokes: Optional[tuple] = None  # (plane, scribbles) of the last request
        self._build()
        #: the segmentation requests (the newest wins) and the background preparation of the chosen image
        self.requests = ScribbleRequests(self.native, self.viewer, self.status, on_finished=self._update_buttons,
                                         on_failed=lambda: self._preparer.forget())
        self.runner = self.requests.runner
        self._preparer = PlanePreparer(self.native, self.runner, self.status, on_due=self.prepare,
                                       on_finished=self._update_buttons)
        self._connect()
        self.native.destroyed.connect(self._on_destroyed)
        self.reset_choices()
        self._on_backbone_changed()
        self._preparer.schedule()

    # -- construction ------------------------------------------------------------
    def _build(self) -> None:
        """Create the controls."""
        self.image_combo = ComboBox(label="image", choices=self._image_choices)
        self.scribbles_combo = ComboBox(label="scribbles", choices=self._scribbles_choices)
        self.new_scribbles_button = PushButton(text="New scribbles layer")
        self.backbone = ComboBox(label="backbone", choices=lambda _: available_backbones(), value="classic")
        self.preset = ComboBox(label="preset", choices=list(PRESETS), value="default")
        self.lam_auto = CheckBox(text="auto", value=True)
        self.lam = FloatSpinBox(value=DEFAULT_LAMBDA["default"], min=0.01, max=10000.0, step=0.5, enabled=False)
        self.sigma_auto = CheckBox(text="auto", value=True)
        self.sigma = FloatSpinBox(value=DEFAULT_SIGMA_DISPLAY, min=0.001, max=10000.0, step=1.0, enabled=False)
        self.weights = FileEdit(label="weights", mode="r", filter="*.pth *.pt *.safetensors", nullable=True)
        self.device = ComboBox(label="device", choices=list(DEVICES), value="auto")
        self.channel_axis = ComboBox(label="channel axis", choices=list(_channels.CHANNEL_AXES), value="none",
                                     tooltip="none: RGB(A) or grayscale as napari shows it; last / first: that axis "
                                             "of the data holds the bands (RGB + near-infrared, ...), all kept")
        self.rgb_channels = LineEdit(label="RGB channels", value="",
                                     tooltip="pretrained backbones: the bands read as red, green, blue, e.g. 3, 0, 1 "
                                             "(empty: the first three)")
        self.feature_cache = FileEdit(label="feature cache", mode="d", nullable=True,
                                      tooltip="zarr store (.zarr folder) for features across sessions; empty = off")
        self.volume = ComboBox(label="3-D image", choices=list(VOLUME_MODES), value="current plane",
                               tooltip="3-D image layers: segment the current plane, the whole volume with one "
                                       "3-D cut (edges between planes weighted by the layer's scale), or every "
                                       "plane on its own (time series)")
        self.segment_button = PushButton(text="Segment")
        self.cancel_button = PushButton(text="Cancel", enabled=False,
                                        tooltip="stop the running segmentation; every layer stays as it was")
        self.live = CheckBox(text="Live", value=False)
        self.commit_button = PushButton(text="Commit object (C)",
                                        tooltip="add the current object to '<image> objects' with the next free id "
                                                "and clear its strokes; committed objects are background for the "
                                                "next cut")
        self.refine_layer = ComboBox(label="refine layer", choices=self._refine_choices, nullable=True,
                                     tooltip="a Labels layer (a prediction, a training set) whose label to correct")
        self.refine_label = SpinBox(label="label", min=0, max=2**31 - 1, value=0)
        self.refine_bound = SpinBox(label="bound (px)", min=0, max=100_000, value=0,
                                    tooltip="strokes change the label only within this distance of them, in pixels "
                                            "(0: a tenth of the image's smaller side)")
        self.refine_button = PushButton(text="Refine label (R)",
                                        tooltip="correct that label with strokes; Commit writes it back under its id "
                                                "(R over a label on the scribbles layer picks it)")
        self.status = status_line()  # long error messages must not widen the dock
        self.extend([
            self.image_combo, self.scribbles_combo, self.new_scribbles_button, self.backbone, self.preset,
            row(self.lam_auto, self.lam, label="λ"), row(self.sigma_auto, self.sigma, label="σ"),
            self.weights, self.device, self.channel_axis, self.rgb_channels, self.feature_cache, self.volume,
            row(self.segment_button, self.cancel_button, self.live, label=""),
            row(self.commit_button, label=""), self.refine_layer, self.refine_label, self.refine_bound,
            row(self.refine_button, label=""), self.status,
        ])

    def _connect(self) -> None:
        """Wire controls and keep the layer combos in sync with the viewer."""
        events = self.viewer.layers.events
        for emitter in (events.inserted, events.removed, events.reordered, events.renamed):
            emitter.connect(self.reset_choices)
        self.image_combo.changed.connect(self._on_image_changed)
        self.scribbles_combo.changed.connect(self._on_scribbles_changed)
        self.new_scribbles_button.clicked.connect(self.new_scribbles_layer)
        self.backbone.changed.connect(self._on_backbone_changed)
        self.preset.changed.connect(self._on_preset_changed)
        self.lam_auto.changed.connect(self._on_lam_auto)
        self.sigma_auto.changed.connect(lambda auto: setattr(self.sigma, "enabled", not auto))
        self.segment_button.clicked.connect(lambda *_: self.segment())
        self.cancel_button.clicked.connect(lambda *_: self.cancel())
        self.commit_button.clicked.connect(lambda *_: self.commit())
        self.refine_button.clicked.connect(lambda *_: self.refine())
        self.live.changed.connect(self._on_live_toggled)
        for control in (self.image_combo, self.backbone, self.preset, self.weights, self.device, self.channel_axis,
                        self.rgb_channels, self.feature_cache, self.volume, self.lam_auto, self.sigma_auto):
            control.changed.connect(self._preparer.schedule)
        self.viewer.dims.events.current_step.connect(self._preparer.schedule)

    def _image_choices(self, _widget=None) -> list:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    def _refine_choices(self, _widget=None) -> list:
        return [(layer.name, layer) for layer in self.viewer.layers
                if isinstance(layer, Labels) and _layers.role(layer) != _layers.ROLE_SEGMENTATION
                and layer is not getattr(getattr(self, "scribbles_combo", None), "value", None)]

    def _scribbles_choices(self, _widget=None) -> list:
        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, Labels)
            and _layers.role(layer) not in (_layers.ROLE_SEGMENTATION, _layers.ROLE_OBJECTS)
        ]

    # -- control callbacks -------------------------------------------------------
    def _on_image_changed(self, image_layer=None) -> None:
        """Pick a scribbles layer of the image's shape when the current one does not fit."""
        current = self.scribbles_combo.value
        if image_layer is None:
            return
        shape = _layers.spatial_shape(image_layer)
        if current is not None and _layers.spatial_shape(current) == shape:
            return
        for _, layer in self._scribbles_choices():
            if _layers.spatial_shape(layer) == shape:
                self.scribbles_combo.value = layer
                return

    def _on_scribbles_changed(self, layer=None) -> None:
        self._update_live_connection()
        if hasattr(self, "refine_layer"):
            self.refine_layer.reset_choices()  # the scribbles layer is no label set to refine
        if isinstance(layer, Labels):
            layer.bind_key("c", lambda _layer: self.commit(), overwrite=True)
            layer.bind_key("r", lambda _layer: self.refine_at_cursor(), overwrite=True)

    def _on_backbone_changed(self, _value=None) -> None:
        """Weights and device only matter for backbones with pretrained weights."""
        needs = service.needs_weights(self.backbone.value)
        self.weights.enabled = needs
        self.device.enabled = needs
        self.rgb_channels.enabled = needs

    def _on_lam_auto(self, auto: bool) -> None:
        """*auto* shows the preset's λ (greyed): the value the cut will use."""
        self.lam.enabled = not auto
        if auto and self.preset.value in DEFAULT_LAMBDA:
            self.lam.value = DEFAULT_LAMBDA[self.preset.value]

    def _on_preset_changed(self, preset) -> None:
        if self.lam_auto.value and preset in DEFAULT_LAMBDA:
            self.lam.value = DEFAULT_LAMBDA[preset]

    # -- new scribbles layer -----------------------------------------------------
    def new_scribbles_layer(self) -> Optional[Labels]:
        """Add an empty ``"<image> scribbles"`` layer for the selected image and select it."""
        image_layer = self.image_combo.value
        if image_layer is None:
            notify(self.status, "no image layer selected: open an image first")
            return None
        try:
            axis = _channels.channel_axis_index(self.channel_axis.value)
            layer = _layers.new_scribbles_layer(self.viewer, image_layer) if axis is None else \
                _channels.new_scribbles_layer(self.viewer, image_layer, axis)
        except ValueError as exc:
            notify(self.status, one_line(exc))
            return None
        self.reset_choices()
        self.scribbles_combo.value = layer
        self.status.value = "paint 1 = object, 2 = background"
        return layer

    # -- live mode ---------------------------------------------------------------
    def _on_live_toggled(self, on: bool) -> None:
        self._update_live_connection()
        if on:
            self.segment(live=True)

    def _update_live_connection(self) -> None:
        """Listen to the selected scribbles layer's finished strokes while Live is on."""
        target = self.scribbles_combo.value if self.live.value else None
        if target is self._live_layer:
            return
        if self._live_layer is not None:
            for emitter in (self._live_layer.events.paint, self._live_layer.events.data,
                            self._live_layer.events.set_data):
                emitter.disconnect(self._on_scribbles_edited)
        self._live_layer = target
        if target is not None:
            # paint: a finished stroke or fill; data: data set from code; set_data: every refresh,
            # which is the only signal of undo and redo (the run happens only if the strokes changed)
            for emitter in (target.events.paint, target.events.data, target.events.set_data):
                emitter.connect(self._on_scribbles_edited)

    def _on_scribbles_edited(self, _event=None) -> None:
        """A stroke was finished (or the data replaced): run again once the event loop is back.

        napari may emit ``paint`` before the new values are in ``layer.data``
        (``data_setitem`` records history first), so the run is deferred.
        """
        if self.live.value:
            self._live_timer.start()

    def _run_live(self) -> None:
        """Run once for a burst of changes, and only when the strokes differ from the last run's."""
        if not self.live.value:
            return
        layer = self.scribbles_combo.value
        if layer is not None and self._last_strokes is not None:
            try:
                plane = _layers.current_plane(layer, self.viewer.dims.point)
                current = np.asarray(_layers.layer_array(layer)[plane])
            except (ValueError, TypeError, IndexError):
                current = None
            last_plane, last = self._last_strokes
            if current is not None and plane == last_plane and np.array_equal(current, last):
                return  # a refresh without new strokes (the view moved, a redraw)
        self.segment(live=True)

    def _on_destroyed(self, *_args) -> None:
        """The dock was closed: stop every worker (their results have nowhere to go)."""
        self.runner.cancel()
        self._preparer.cancel()
        self._pool.close()  # child processes end now, or with the worker that holds them
        try:
            self.viewer.dims.events.current_step.disconnect(self._preparer.schedule)
        except (RuntimeError, TypeError, ValueError):
            pass

    # -- preparing the image -------------------------------------------------------
    def prepare(self) -> bool:
        """Start the image-level work for the chosen image plane in a worker (cancellable).

        Features, palette, colour mixture and edge weights are computed as soon
        as an image is chosen, so the first *Segment* pays only for the cut
        (:class:`~napari_deepseg._qt._prepare.PlanePreparer`). It never notifies:
        a problem shows in the status line, and *Segment* says it again. Nothing
        is done for 3-D cuts or when the same plane and options were prepared already.

        Returns
        -------
        bool
            Whether a worker was started.
        """
        image_layer = self.image_combo.value
        if image_layer is None or VOLUME_MODES[self.volume.value] is not None or image_layer.ndim < 2:
            return False
        try:
            options = self.options()
            plane = _layers.current_plane(image_layer, self.viewer.dims.point)
        except (ValueError, TypeError, RuntimeError):
            return False  # Segment reports it
        started = self._preparer.start(image_layer, plane, options, self._slot)
        self._update_buttons()
        return started

    @property
    def preparing(self) -> bool:
        """Whether the image-level work of the chosen image is still running."""
        return self._preparer.running

    def _update_buttons(self) -> None:
        """Segment is disabled while a segmentation runs; Cancel is enabled while anything runs."""
        try:
            self.segment_button.enabled = not self.busy
            self.cancel_button.enabled = self.runner.running or self._preparer.running
        except RuntimeError:  # the dock was closed while a worker was finishing
            pass

    # -- requests ----------------------------------------------------------------
    def options(self) -> Options:
        """The controls' values as :class:`Options` (:func:`~napari_deepseg.core.cut.service.request_options`).

        Raises
        ------
        ValueError, TypeError
            A weights file that does not exist, bad RGB channels, or options a 3-D cut refuses.
        """
        image_layer = self.image_combo.value
        return service.request_options(
            self.backbone.value, self.preset.value, lam=None if self.lam_auto.value else float(self.lam.value),
            sigma=None if self.sigma_auto.value else float(self.sigma.value), weights=self.weights.value,
            device=self.device.value, feature_cache=self.feature_cache.value,
            rgb_channels=self.rgb_channels.value.strip(),
            channel_axis=_channels.channel_axis_index(self.channel_axis.value), volume=VOLUME_MODES[self.volume.value],
            spacing=() if image_layer is None else tuple(float(v) for v in image_layer.scale[-3:]),
        )

    def _slot(self, options: Options) -> SessionSlot:
        """The pooled session for these options (:meth:`SessionPool.slot <napari_deepseg.core.cut.service.SessionPool.slot>`)."""
        return self._pool.slot(options)

    def segment(self, *, live: bool = False) -> bool:
        """Start segmenting the current plane; a running request is superseded.

        Parameters
        ----------
        live : bool
            Called by Live mode: incomplete scribbles (fewer than two labels)
            only update the status line instead of raising a notification.

        Returns
        -------
        bool
            Whether a worker was started.
        """
        volume = VOLUME_MODES[self.volume.value]
        try:
            job, strokes = read_request(self.viewer, self.image_combo.value, self.scribbles_combo.value,
                                        _channels.channel_axis_index(self.channel_axis.value), volume,
                                        self._refine, self.refine_bound.value, live)
            options = self.options()
            slot = self._slot(options)
        except Incomplete as exc:  # Live mode: not enough strokes yet
            self.status.value = str(exc)
            return False
        except (ValueError, TypeError, RuntimeError) as exc:
            if isinstance(exc, _refine.RefinementGone):
                self._refine = None
            notify(self.status, one_line(exc))
            return False
        if volume is None:
            self._last_strokes = (job.inputs.plane, strokes)
            self._preparer.cut(job.image_layer, job.inputs.plane, options)
            job.local = job.defer = options.preset == "default" and job.refine is None
        self.requests.start(job, slot, options)
        return True

    # -- refining a label ------------------------------------------------------------
    def refine(self, layer: Optional[Labels] = None, label_id: Optional[int] = None) -> bool:
        """Correct object ``label_id`` of ``layer`` with strokes (defaults: the *refine layer* and *label* boxes).

        The next cuts start from the object: strokes change it only within the
        refine bound of them (the rest of the object and every other pixel stay
        fixed), other labels of the layer are background unless painted over, and
        *Commit* writes it back into ``layer`` under ``label_id`` as one undoable edit.

        Returns
        -------
        bool
            Whether the label is now being refined (a notification says why not).
        """
        try:
            if VOLUME_MODES[self.volume.value] is not None:
                raise ValueError("refining works on the current plane: set '3-D image' to 'current plane'")
            refine = _refine.pick_from(self.viewer, self.image_combo.value, self.refine_layer, self.refine_label,
                                       layer, label_id)
        except ValueError as exc:
            notify(self.status, one_line(exc))
            return False
        self._refine = refine
        bound = _refine.bound(self.refine_bound.value, refine.mask.shape)
        self.status.value = (f"refining label {refine.label_id} of '{refine.layer.name}' "
                             f"({int(refine.mask.sum())} pixels): strokes change it within {bound} px; "
                             "Segment, then Commit writes it back")
        return True

    def refine_at_cursor(self) -> bool:
        """``R``: refine the label under the cursor in the *refine layer* (or the selected Labels layer)."""
        try:
            layer, label_id = _refine.label_at_cursor(self.viewer, self.refine_layer.value)
        except ValueError as exc:
            notify(self.status, one_line(exc))
            return False
        return self.refine(layer, label_id)

    # -- object by object ----------------------------------------------------------
    def commit(self) -> int:
        """Commit the current object into ``"<image> objects"`` with the next free id (one undoable edit).

        The object is label 1 of the result layer's current plane. Its strokes and
        the result plane are cleared (each one undoable edit), committed objects
        are never changed, and later cuts see them as background. Key: ``C`` on
        the scribbles layer.

        Returns
        -------
        int
            The new object's id; 0 when there was nothing to commit (a notification says why).
        """
        image_layer, scribbles_layer = self.image_combo.value, self.scribbles_combo.value
        if self.busy:
            notify(self.status, "a segmentation is running: wait for it (or Cancel), then commit")
            return 0
        refitting = self.refitting
        if refitting:  # the object as shown is committed; the background refit is dropped
            self.runner.cancel()
        if not isinstance(image_layer, Image):
            notify(self.status, "no image layer selected: open an image first")
            return 0
        result = _layers.find_result_layer(self.viewer, _layers.result_name(image_layer),
                                           _layers.spatial_shape(image_layer), exclude=(scribbles_layer,))
        plane = _layers.current_plane(image_layer, self.viewer.dims.point)
        refine = self._refine
        if refine is not None and refine.region is None:
            notify(self.status, f"label {refine.label_id} is being refined: paint strokes and Segment first, then commit")
            return 0
        if refine is not None and not refine.alive(self.viewer, plane):
            self._refine = None
            notify(self.status, _refine.GONE)
            return 0
        mask = None if result is None else np.asarray(_layers.layer_array(result)[plane]) == 1
        if mask is None or not mask.any():
            notify(self.status, "nothing to commit: segment an object first (paint 1 on it, 2 around it)")
            return 0
        # other objects keep every pixel; a refined label changes only inside its cut's region, whatever was
        # painted on the result layer or the refined layer since
        bound = None if refine is None else _refine.bound(self.refine_bound.value, refine.mask.shape)
        exact = not refitting and self._cut_from(plane, scribbles_layer)
        objects, label_id, pixels = _objects.commit(self.viewer, image_layer, plane, mask, refine,
                                                    region=None if refine is None else refine.region,
                                                    source="scribbles", bound=bound, exact=exact)
        self._refine = None
        live, self.live.value = self.live.value, False  # clearing the strokes must not start a cut
        try:
            if isinstance(scribbles_layer, Labels) and scribbles_layer in self.viewer.layers:
                _layers.write_plane(scribbles_layer, plane, np.zeros_like(np.asarray(scribbles_layer.data[plane])))
            _layers.write_plane(result, plane, np.zeros_like(np.asarray(result.data[plane])))
        finally:
            self.live.value = live
        done = "refined label" if refine is not None else "committed object"
        self.status.value = f"{done} {label_id} ({pixels} pixels) in '{objects.name}': paint the next object"
        return label_id

    def _cut_from(self, plane: tuple, scribbles_layer) -> bool:
        """Whether the last cut was of ``plane``'s strokes as they are now (a whole cut, not a 3-D run) and its
        result is what they give alone (not a correction that kept far pixels of an earlier result)."""
        if self._last_strokes is None or not isinstance(scribbles_layer, Labels) or self.requests.kept_far is not None:
            return False
        last_plane, last = self._last_strokes
        if last is None or tuple(last_plane) != tuple(plane):
            return False
        return bool(np.array_equal(np.asarray(scribbles_layer.data[plane]), last))

    @property
    def busy(self) -> bool:
        """Whether a segmentation is running (a background refit does not count: it yields to the next request)."""
        return self.requests.busy

    def result_kept_far(self, image_layer) -> bool:
        """Whether the result last written for ``image_layer`` keeps pixels of an earlier result that the cut of
        its strokes alone changes (a correction kept near its strokes,
        :mod:`~napari_deepseg.core.cut.corrections`): replaying the strokes does not give it back."""
        return image_layer is not None and self.requests.kept_far is image_layer

    @property
    def refitting(self) -> bool:
        """Whether the whole cut that follows a local update or a deferred cut is running in the background."""
        return self.requests.refitting

    def cancel(self) -> None:
        """Cancel every running request and the preparation; their results are dropped, no layer changes."""
        running = self.runner.cancel()
        if self._preparer.cancel() or running:
            self._preparer.forget()  # the session may hold a half-prepared image
            self.status.value = "cancelled: every layer is as it was"
