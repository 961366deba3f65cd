"""The Scribble widget's requests and their result layer.

* :class:`Job`: one segmentation request (a :class:`~napari_deepseg._qt._tasks.Task`
  with the layers and inputs it read);
* :class:`ResultWriter`: the ``"<image> segmentation"`` layer a job writes into: the
  coarse preview of a large image (no undo step, put back when the job is dropped),
  the result written with undo, the line that says what it changed, and a watch on
  the layer's undo so that this line never reports an update that was undone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from napari.layers import Image, Labels
from qtpy.QtCore import QTimer

from ..core.cut.service import Options, SessionSlot
from ..core.cut.session import DEFAULT_LAMBDA
from . import _layers
from ._tasks import Task

#: a result layer of at least this many pixels per plane is added hidden and shown SHOW_DELAY_MS later
SHOW_LATER_MIN_PIXELS = 4_000_000
#: delay before a hidden result layer is shown, so that the timers already due run in between
SHOW_DELAY_MS = 25


#: what the background request after a local update does (:attr:`Job.doing`)
REFITTING = "refitting the whole image"
#: ... and the one after a deferred whole cut
FINDING_CENTRES = "finding more star centres"


@dataclass
class Job(Task):
    """One request (its number, cancel token and progress bar: :class:`~._tasks.Task`), its layers and inputs.

    A background request (``background=True``) is the :attr:`refit` that follows a local update,
    or the full cut that follows a deferred one (:meth:`was_deferred`).
    """

    image_layer: Optional[Image] = None
    scribbles_layer: Optional[Labels] = None
    inputs: Optional[_layers.PlaneInputs] = None
    #: ask the session for a local update (the strokes changed since its last cut of this plane)
    local: bool = False
    #: ask the session for a fast whole cut of a small plane, its found star centres left to a background cut
    defer: bool = False
    #: what a background request does, for the status line
    doing: str = REFITTING
    slot: Optional[SessionSlot] = None
    options: Optional[Options] = None
    #: the result plane as it was before this job's coarse preview was shown (``None``: no preview shown)
    before: Optional[np.ndarray] = None
    #: the result layer this job's preview created (the first result of an image)
    created: Optional[Labels] = None
    #: refining a label: ``(Refinement, region it may change in, other objects' pixels)``
    refine: Optional[tuple] = None
    #: a background refit: the status line it started after (what the update did), kept before its stages
    said: str = ""

    @property
    def refit(self) -> bool:
        """The whole cut that follows a local update (the model refitted on the whole image) or a deferred cut
        (the found star centres added), in the background."""
        return self.background

    def was_local(self) -> bool:
        """Whether the job's session answered it with a local update (read on the main thread, job still newest)."""
        return bool(self.local and self.slot is not None and getattr(self.slot.last, "last_local", False))

    def was_deferred(self) -> bool:
        """Whether the job's session left the found star centres to a second cut (read as :meth:`was_local`)."""
        return bool(self.defer and self.slot is not None and getattr(self.slot.last, "last_deferred", False))

    def kept_far(self) -> bool:
        """Whether the job's answer kept pixels of an earlier answer that the cut of its strokes alone changes
        (a correction kept near its strokes: ``SegmentationSession.last_kept``; read as :meth:`was_local`)."""
        return bool(self.slot is not None and getattr(self.slot.last, "last_kept", 0))

    def auto_lambda_note(self) -> str:
        """``"; auto λ 160 (20 × 8: the image looks upsampled)"`` where the automatic λ followed the image's
        oversampling (:func:`~napari_deepseg.core.cut.session.default_lambda`), else ``""``."""
        options = self.options
        if options is None or options.lam is not None or options.preset not in DEFAULT_LAMBDA or self.slot is None:
            return ""
        used, default = getattr(self.slot.last, "last_lambda", None), DEFAULT_LAMBDA[options.preset]
        if not used or abs(used - default) < 1e-9:
            return ""
        return f"; auto λ {used:g} ({default:g} × {used / default:g}: the image looks upsampled)"


class ResultWriter:
    """Writes jobs' labels into the ``"<image> segmentation"`` layer of a viewer.

    Parameters
    ----------
    viewer : napari.Viewer
    on_undone : callable, optional
        ``on_undone(layer)`` when the last write into ``layer`` was undone (Ctrl+Z).
    """

    def __init__(self, viewer, on_undone: Optional[Callable] = None):
        self.viewer = viewer
        self.previewing: Optional[Job] = None  # the job whose coarse preview the result layer shows
        self._on_undone = on_undone
        self._watched: Optional[Labels] = None
        self._history: Optional[int] = None  # the watched layer's undo steps after the last write

    def layer(self, job: Job) -> Optional[Labels]:
        """The ``"<image> segmentation"`` layer a job writes into, or ``None`` before the first result."""
        return _layers.find_result_layer(self.viewer, _layers.result_name(job.image_layer), job.inputs.shape,
                                         exclude=(job.scribbles_layer,))

    # -- the coarse preview of a large image ---------------------------------------
    def preview(self, job: Job, labels) -> bool:
        """Show a whole cut's coarse result in the result layer while its bands are solved (no undo step).

        The plane as it was is kept on the job; the final result is written over
        it as one undoable edit, and a cancelled, failed or stale job puts it back.
        Returns whether it was shown (not when the image layer is gone).
        """
        if job.image_layer not in self.viewer.layers:
            return False
        layer = self.layer(job)
        if layer is None:  # the first result: the layer starts with the preview
            job.created = self._add(job, _layers.result_name(job.image_layer), np.asarray(labels))
        else:
            shown = self.previewing
            job.before = shown.before if shown is not None and shown.before is not None else (
                np.array(layer.data[job.inputs.plane], copy=True))
            self.show_plane(layer, job.inputs.plane, np.asarray(labels))
        self.previewing = job
        return True

    @staticmethod
    def show_plane(layer: Labels, plane: tuple, labels: np.ndarray) -> None:
        """Put ``labels`` into one plane of ``layer`` without an undo step (a preview, or taking one back)."""
        data = layer.data
        if labels.size and int(labels.max()) > np.iinfo(data.dtype).max:
            labels = labels.astype(data.dtype)
        data[plane] = labels
        layer.refresh()

    def drop_preview(self, job: Job) -> None:
        """Put back the plane a job's preview replaced, or remove the layer it created (if still shown)."""
        if self.previewing is not job:
            return
        self.previewing = None
        if job.created is not None:
            if job.created in self.viewer.layers:
                self.viewer.layers.remove(job.created)
            return
        layer = self.layer(job)
        if layer is not None:
            self.show_plane(layer, job.inputs.plane, job.before)

    # -- writing the result --------------------------------------------------------
    def write(self, job: Job, labels: np.ndarray, changes: Optional[_layers.PlaneChanges] = None) -> str:
        """Create the result layer once, afterwards write the plane with undo; returns what it did, in words.

        ``changes``: the plane's changes found in the worker (:func:`~napari_deepseg._qt._layers.write_plane`)."""
        if self.previewing is job:  # changes found against the preview are not those of the plane as it was
            changes = None
        if job.created is None:
            self.drop_preview(job)  # the result is written over the plane as it was: one undo step
        self.previewing = None
        if job.image_layer not in self.viewer.layers:
            return "image layer was removed; result dropped"
        name = _layers.result_name(job.image_layer)
        plane = job.inputs.plane
        layer = self.layer(job)
        if layer is None:
            layer = self._add(job, name, labels)
            changed = int(np.count_nonzero(labels))
        elif layer is job.created:  # the layer the preview made: the first result, no undo step
            self.show_plane(layer, plane, labels)
            changed = int(np.count_nonzero(labels))
        else:
            changed = _layers.write_plane(layer, plane, labels, changes)
        self._watch(layer)
        seconds = time.perf_counter() - job.started
        if job.refit and job.doing != REFITTING:  # the full cut after a deferred one: the update's line stays
            return f"{job.said}; the found star centres changed {changed} more pixels" if changed else job.said
        if job.refit:
            return (f"'{name}' refitted on the whole image in {seconds:.1f} s ({changed} pixels changed)" if changed
                    else f"'{name}': the refit on the whole image changed nothing ({seconds:.1f} s)")
        how = "locally " if job.was_local() else ""
        return f"'{name}' updated {how}in {seconds:.1f} s ({changed} pixels changed){job.auto_lambda_note()}"

    def _add(self, job: Job, name: str, labels: np.ndarray) -> Labels:
        """Add the result layer just below the scribbles, keeping the active layer active.

        A large plane's layer (:data:`SHOW_LATER_MIN_PIXELS`) is added hidden and shown
        :data:`SHOW_DELAY_MS` later: napari's insertion of a Labels layer (60–66 ms
        here, whatever its size) and the first upload and draw of its texture (~40 ms
        for 16 MP) then pause the GUI twice briefly instead of once for longer
        (``benchmarks/gui_pauses.py``).
        """
        active = self.viewer.layers.selection.active
        same = job.image_layer.ndim == len(job.inputs.shape)  # else a channel axis: the scribbles' geometry
        below = (self.viewer.layers.index(job.scribbles_layer) if job.scribbles_layer in self.viewer.layers
                 else None)
        large = labels.size >= SHOW_LATER_MIN_PIXELS
        layer = _layers.add_result_layer(
            self.viewer, name, job.image_layer, job.inputs.shape, job.inputs.plane, labels,
            geometry_layer=None if same else job.scribbles_layer, index=below, visible=not large, activate=False,
        )
        if large:  # after the timers already due: the GUI runs in between
            QTimer.singleShot(SHOW_DELAY_MS, lambda: self._show_layer(layer))
        if active is not None and active in self.viewer.layers:  # in case napari activated the layer anyway
            self.viewer.layers.selection.active = active
        return layer

    def _show_layer(self, layer: Labels) -> None:
        """Make a result layer added hidden visible (if it is still in the viewer)."""
        if layer in self.viewer.layers:
            layer.visible = True

    # -- undo ----------------------------------------------------------------------
    def _watch(self, layer: Labels) -> None:
        """Follow ``layer``'s undo steps from now: fewer than now means the write was undone."""
        if layer is not self._watched:
            if self._watched is not None:
                self._watched.events.set_data.disconnect(self._on_set_data)
            layer.events.set_data.connect(self._on_set_data)  # undo and redo end with a refresh
            self._watched = layer
        self._history = len(layer._undo_history)

    def _on_set_data(self, _event=None) -> None:
        layer = self._watched
        if self._history is None or layer is None or len(layer._undo_history) >= self._history:
            return
        self._history = None  # said once
        if self._on_undone is not None:
            self._on_undone(layer)
