"""Preparing the chosen image plane in the background, so that the first *Segment* pays only for the cut.

:class:`PlanePreparer` is the Scribble widget's: shortly after a choice (an image,
a plane, a backbone, a preset, ...; choices within :data:`PREPARE_DELAY_MS` are
merged) it runs :func:`~napari_deepseg.core.cut.service.prepare_request` (features,
palette, colour mixture, edge weights) for the chosen plane in a worker of its own
:class:`~napari_deepseg._qt._tasks.TaskRunner`. It remembers what was prepared (or
cut: a request prepares its plane), so nothing is done twice, and it says so in
the status line unless a segmentation has started since (that request's line stays).
It never notifies: a problem shows in the status line, and *Segment* says it again.
"""

from __future__ import annotations

from typing import Callable, Optional

from ..core.cut import service
from ..core.cut.service import Options
from . import _layers
from ._common import one_line, single_shot
from ._results import Job
from ._tasks import TaskRunner

#: delay between choosing an image (or backbone, preset, ...) and preparing it in the background
PREPARE_DELAY_MS = 100


class PlanePreparer:
    """The image-level work of the chosen plane, in the background.

    Parameters
    ----------
    parent : QObject
        The widget's ``native``: owner of the timer and of the worker's progress relay.
    requests : TaskRunner
        The widget's segmentation requests: while one runs, or once one has started
        since a preparation began, the preparation leaves the status line alone.
    status : StatusLine
        The widget's status line.
    on_due : callable
        ``on_due()`` when the delay after the last :meth:`schedule` has passed (the
        widget reads its controls and calls :meth:`start`).
    on_finished : callable
        ``on_finished()`` after a preparation's worker ended, whatever the outcome.
    """

    def __init__(self, parent, requests: TaskRunner, status, on_due: Callable, on_finished: Callable):
        self.requests, self.status, self._on_finished = requests, status, on_finished
        self.runner = TaskRunner(parent, on_progress=self._on_progress)
        #: ``(id(image layer), plane, Options)`` of the plane prepared (or cut) last
        self.prepared: Optional[tuple] = None
        self.timer = single_shot(parent, PREPARE_DELAY_MS, on_due)

    def schedule(self, *_args) -> None:
        """Prepare the chosen plane shortly (choices within the delay are merged)."""
        self.timer.start()

    @property
    def running(self) -> bool:
        """Whether a preparation's worker still runs."""
        return self.runner.running

    def start(self, image_layer, plane: tuple, options: Options, slot_for: Callable) -> bool:
        """Prepare ``plane`` of ``image_layer`` for ``options`` in a worker (cancellable).

        Nothing is done for a volume or a channel axis, or when the same plane and
        options were prepared already.

        Parameters
        ----------
        slot_for : callable
            ``slot_for(options)``: the pooled session to prepare
            (:meth:`~napari_deepseg.core.cut.service.SessionPool.slot`).

        Returns
        -------
        bool
            Whether a worker was started.
        """
        if options.volume or options.channel_axis is not None:
            return False
        key = (id(image_layer), plane, options)
        if key == self.prepared:
            return False
        try:
            image = _layers.plane_data(image_layer, plane)
            slot = slot_for(options)
        except (ValueError, TypeError, RuntimeError):
            return False  # Segment reports it
        job, latest = Job(image_layer=image_layer), self.requests.latest
        self.runner.start(service.prepare_request, slot, image, options, task=job, bar=False,
                          on_result=lambda _: self._on_prepared(job, key, latest),
                          on_error=lambda exc: self._on_failed(job, exc, latest),
                          on_finished=self._on_finished)
        return True

    def cut(self, image_layer, plane: tuple, options: Options) -> None:
        """A request cuts this plane with these options, which prepares it: a pending preparation has nothing to do."""
        if options.channel_axis is None:
            self.prepared = (id(image_layer), plane, options)

    def cancel(self) -> bool:
        """Cancel the running preparation (its result is dropped); whether one was running."""
        return self.runner.cancel()

    def forget(self) -> None:
        """The session may hold a half-prepared image (a cancel, an error): prepare it again next time."""
        self.prepared = None

    # -- worker callbacks (main thread) ----------------------------------------------
    def _on_progress(self, job: Job, done: int, total: int, message: str) -> None:
        text = f"{message} ({done}/{total})" if total > 0 and message else message
        if not self.requests.running and text:
            self.status.value = f"preparing '{job.image_layer.name}': {text}"

    def _on_prepared(self, job: Job, key: tuple, latest: int) -> None:
        """Say the image is ready, unless a segmentation started since (its line stays)."""
        self.prepared = key
        if not self.requests.running and self.requests.latest == latest:
            self.status.value = f"'{job.image_layer.name}' ready: paint 1 = object, 2 = background"

    def _on_failed(self, job: Job, exc: BaseException, latest: int) -> None:
        """Say why the image could not be prepared, unless a segmentation started since (it says it itself)."""
        if not self.requests.running and self.requests.latest == latest:
            self.status.value = f"could not prepare '{job.image_layer.name}': {one_line(exc)}"
