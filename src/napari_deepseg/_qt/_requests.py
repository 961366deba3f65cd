"""The Scribble widget's segmentation requests, from their start to their result.

:func:`read_request` reads a request from the layers on the main thread: the
current plane (or the whole volume) of the image and its strokes, committed
objects as background, a refined label's seeds, validated; Live mode's
incomplete strokes raise :class:`Incomplete`, which only the status line shows.

:class:`ScribbleRequests` runs each :class:`~napari_deepseg._qt._results.Job` through
the widget's :class:`~napari_deepseg._qt._tasks.TaskRunner`
(:func:`~napari_deepseg.core.cut.service.run_request`: the newest request wins) and,
on the main thread, for the newest request only:

* says what runs in the status line (a background refit keeps the line of the update
  it follows, then its stages);
* shows the coarse result of a large plane's whole cut while its bands are solved
  (:data:`PREVIEW_MIN_PIXELS`);
* writes the result (:class:`~napari_deepseg._qt._results.ResultWriter`); a refined
  label changes only inside its region and never over other labels, and the region
  is kept on the :class:`~napari_deepseg._qt._refine.Refinement` for the commit;
* after a local update, starts the refit of the whole image in the background, and
  after a deferred whole cut (a small plane answered without its found star centres:
  :data:`~napari_deepseg.core.cut.session.DEFER_MAX_PIXELS`) the full cut;
* on an error, puts the result layer back and notifies.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Optional

import numpy as np

from ..core.cut import service
from ..core.cut.service import Options, SessionSlot
from ..core.utils.validation import check_scribbles, painted_labels
from . import _channels, _layers, _objects, _refine
from ._common import notify, one_line
from ._results import FINDING_CENTRES, REFITTING, Job, ResultWriter
from ._tasks import TaskRunner

#: images of at least this many pixels show the coarse result of a whole cut while its bands are solved
PREVIEW_MIN_PIXELS = 4_000_000
#: Live mode's line while the strokes hold fewer than two labels
PAINT_BOTH = "Live: paint both object (1) and background (2)"


class Incomplete(Exception):
    """Live mode's strokes are not enough for a cut yet: the message is for the status line, not a notification."""


def read_request(viewer, image_layer, scribbles_layer, axis: Optional[int], volume: Optional[str],
                 refine: Optional[_refine.Refinement], bound_px: int, live: bool = False) -> tuple:
    """A request's :class:`~napari_deepseg._qt._results.Job`, read from the layers (main thread).

    Parameters
    ----------
    viewer : napari.Viewer
        Its dims say the current plane.
    image_layer, scribbles_layer : napari.layers.Layer
        The image and its strokes.
    axis : int, optional
        The image data's channel axis (``None``: napari's RGB / grayscale layout).
    volume : str, optional
        ``"3d"`` or ``"planes"``: the whole volume (``None``: the current plane).
    refine : Refinement, optional
        The label being refined: the cut changes it only within ``bound_px`` of the strokes.
    live : bool
        Live mode: strokes that are not enough for a cut raise :class:`Incomplete`.

    Returns
    -------
    tuple
        ``(job, strokes)``: the job (committed objects are background in its strokes,
        a refined label's seeds and region in ``job.refine``) and the strokes as painted
        (``None`` for a volume).

    Raises
    ------
    Incomplete
        In Live mode, strokes that are not enough for a cut yet.
    napari_deepseg._qt._refine.RefinementGone
        The refined label's layer or plane is gone.
    ValueError, TypeError
        Missing or mismatched layers, strokes the cut refuses.
    """
    if volume is not None:
        if refine is not None:
            raise ValueError(f"label {refine.label_id} is being refined on the current plane: set "
                             "'3-D image' to 'current plane', or commit it first")
        inputs = _layers.read_volume_inputs(image_layer, scribbles_layer)
        if live and not ((inputs.scribbles == 1).any() and (inputs.scribbles == 2).any()):
            raise Incomplete(PAINT_BOTH)
        return Job(image_layer=image_layer, scribbles_layer=scribbles_layer, inputs=inputs), None
    if axis is None:
        inputs = _layers.read_inputs(image_layer, scribbles_layer, viewer.dims.point)
    else:
        inputs = _channels.read_inputs(image_layer, scribbles_layer, viewer.dims.point, axis)
    # as painted (Live compares with these): read_inputs' copy, which nothing writes into
    # (protect_objects and refine_scribbles return new arrays); a second 16 MB copy paused the GUI
    strokes = inputs.scribbles
    inputs.scribbles = _objects.protect_objects(viewer, image_layer, inputs.plane, inputs.scribbles,
                                                keep=None if refine is None else refine.mask)
    job = Job(image_layer=image_layer, scribbles_layer=scribbles_layer, inputs=inputs)
    if refine is not None:
        if live and not strokes.any():
            raise Incomplete("Live: paint 1 where the label should grow, 2 where it should shrink")
        if not refine.alive(viewer, inputs.plane):
            raise _refine.RefinementGone(_refine.GONE)
        inputs.scribbles, region, others = _refine.seeds(refine, inputs.scribbles, bound_px)
        job.refine = (refine, region, others)
    if live and painted_labels(inputs.scribbles).size < 2:
        raise Incomplete(PAINT_BOTH)
    check_scribbles(inputs.scribbles, inputs.image.shape[:2] if axis is None else inputs.shape[-2:],
                    name=f"scribbles '{scribbles_layer.name}'", convert=False)
    return job, strokes


def answer(target, plane: tuple, refine, *args, **kwargs):
    """:func:`~napari_deepseg.core.cut.service.run_request` and what writing its labels needs, in the worker thread.

    A refined label changes only inside its region and never over other labels
    (``refine``: the job's ``(Refinement, region, others)``). Where ``target`` (the
    result layer's array when the request started) is given, the changes of its
    ``plane`` are found here too (:func:`~napari_deepseg._qt._layers.plane_changes`),
    not on the GUI thread: comparing a 12 MP plane paused the GUI 104 ms
    (``benchmarks/gui_pauses.py --as-user``); not after a coarse preview, which writes
    into that array while the cut runs.

    Returns
    -------
    tuple
        ``(labels, changes)``; ``changes`` is ``None`` without a ``target``.
    """
    shown = []  # a coarse preview written into the target: its changes are found on the GUI thread, after it
    if target is not None and kwargs.get("preview") is not None:
        show = kwargs["preview"]
        kwargs["preview"] = lambda value: (shown.append(True), show(value))
    labels = np.asarray(service.run_request(*args, **kwargs))
    if refine is not None:
        refinement, region, others = refine
        labels = (np.where(region, labels == 1, refinement.mask) & ~others).astype(labels.dtype)
    return labels, None if target is None or shown else _layers.plane_changes(target, plane, labels)


class ScribbleRequests:
    """Starts the Scribble widget's requests and handles what comes back.

    Parameters
    ----------
    parent : QObject
        The widget's ``native``: owner of the runner's progress relay and bars.
    viewer : napari.Viewer
    status : StatusLine
        The widget's status line.
    on_finished : callable
        ``on_finished()`` after a request's worker ended, and after a request started
        (the widget updates its buttons).
    on_failed : callable
        ``on_failed()`` when the newest request failed (the session may hold a half-prepared image).
    """

    def __init__(self, parent, viewer, status, on_finished: Callable, on_failed: Callable):
        self.viewer, self.status = viewer, status
        self._on_finished, self._on_failed = on_finished, on_failed
        self.runner = TaskRunner(parent, on_progress=self._on_progress, on_preview=self._on_preview)
        self.results = ResultWriter(viewer, on_undone=self._on_result_undone)
        #: the image layer whose result, last written, kept pixels of an earlier one against its cut (a
        #: correction kept near its strokes: the strokes alone do not give it back); ``None``: no such result
        self.kept_far = None

    @property
    def busy(self) -> bool:
        """Whether a segmentation is running (a background refit does not count: it yields to the next request)."""
        return self.runner.busy

    @property
    def refitting(self) -> bool:
        """Whether the whole cut that follows a local update or a deferred cut is running in the background."""
        return self.runner.background

    def start(self, job: Job, slot: SessionSlot, options: Options) -> None:
        """Start ``job`` as the newest request (a running one is cancelled)."""
        job.slot, job.options = slot, options
        said = self.status.value
        large = int(np.prod(job.inputs.shape[-2:])) >= PREVIEW_MIN_PIXELS
        preview = not job.refit and not options.volume and large
        # a large plane's changes are found in the worker, against the result layer's array as it is now
        target = self.results.layer(job) if large else None
        self.runner.start(
            answer, None if target is None else target.data, job.inputs.plane, job.refine,
            slot, job.inputs.image, job.inputs.scribbles, options, task=job,
            desc=f"napari-deepseg: {job.image_layer.name}", preview=preview,
            on_result=partial(self._on_returned, job), on_error=partial(self._on_errored, job),
            on_dropped=partial(self.results.drop_preview, job), on_finished=self._on_finished,
            **({"local": True} if job.local else {}), **({"defer": True} if job.defer else {}),
            local_corrections=True,  # a stroke added to the last answer changes only what it touches
        )
        if job.refit:
            job.said = said
            self.status.value = f"{job.said}; {job.doing} in the background…"
        else:
            self.status.value = f"segmenting '{job.image_layer.name}' ({options.backbone}, {options.preset})…"
        self._on_finished()

    # -- worker callbacks (main thread) --------------------------------------------
    def _on_progress(self, job: Job, done: int, total: int, message: str) -> None:
        """A stage of the newest request: the status line (the runner shows it in the progress bar)."""
        text = f"{message} ({done}/{total})" if total > 0 and message else message
        if not text:
            return
        if job.refit:  # the update's own line stays: what it did, then the refit's stage
            self.status.value = f"{job.said}; {job.doing} in the background: {text}"
        else:
            self.status.value = f"segmenting '{job.image_layer.name}': {text}"

    def _on_preview(self, job: Job, labels) -> None:
        """The first result of the newest whole cut (its strokes' window, or its coarsest level): shown while the
        whole image is cut."""
        if not self.results.preview(job, labels):
            return
        if job.pbar is not None:  # the bar's processEvents() would redraw the new layer in this same pause
            job.pbar.defer()
        # the strokes' window cut alone (strokes in a small part of the image), or the coarsest level's result
        self.status.value = f"'{job.image_layer.name}': a first result shown, cutting the whole image…"

    def _on_returned(self, job: Job, answer) -> None:
        """The newest request's labels (and their changes, found by :func:`answer`): into the result layer (a
        stale result is dropped by the runner)."""
        labels, changes = answer
        if job.refine is not None:  # the region the refined object may change in, kept for the commit
            refine, region, _ = job.refine
            refine.region = region
        self.status.value = self.results.write(job, labels, changes)
        self.kept_far = job.image_layer if job.kept_far() else None
        local, deferred = job.was_local(), job.was_deferred()
        if (local or deferred) and job.image_layer in self.viewer.layers:
            # the local update kept the old appearance model (refit it on the whole image), or the fast cut left
            # its found star centres: the full cut, in the background; the next request cancels it
            refit = Job(image_layer=job.image_layer, scribbles_layer=job.scribbles_layer, inputs=job.inputs,
                        background=True, doing=REFITTING if local else FINDING_CENTRES)
            self.start(refit, job.slot, job.options)

    def _on_result_undone(self, layer) -> None:
        """Ctrl+Z took back the result the status line reports: it says so instead."""
        self.status.value = f"'{layer.name}': the last update was undone (Ctrl+Z; Ctrl+Shift+Z redoes it)"

    def _on_errored(self, job: Job, exc: BaseException) -> None:
        """The newest request failed (not cancelled); the result layer stays as it was."""
        self.results.drop_preview(job)
        self._on_failed()
        self.status.value = "failed"
        notify(self.status, one_line(exc))
