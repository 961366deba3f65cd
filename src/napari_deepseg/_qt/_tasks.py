"""The request runner every dock widget uses: one worker per request, the newest request wins.

:class:`TaskRunner` starts a core function ``fn(*args, progress=..., cancel=...)``
in a superqt ``FunctionWorker`` with a
:class:`~napari_deepseg.core.utils.progress.CancelToken`. Its rules:

* every request gets a number; a new request cancels the running ones, and only
  the newest request's result or error is delivered (a stale one is dropped);
* signals are connected *before* the worker starts; results, errors, progress and
  previews arrive on the main thread (:class:`~napari_deepseg._qt._common.ProgressRelay`);
* progress goes to the caller's status line (newest request only) and to napari's
  progress bar through :class:`~napari_deepseg._qt._progress_bar.ThrottledProgress`
  (made only for requests that run longer than a quarter second);
* a *background* request (the Scribble widget's refit) does not make the widget
  :attr:`~TaskRunner.busy` and yields to the next request like any other;
* :data:`starting` is emitted on the main thread just before a request's worker
  starts (the Dataset dock saves the prompts there, while the cut has not yet
  taken Python's lock), except by runners made with ``announce=False``.

The *Scribble segmentation*, *Point prompts*, proposal, saliency, evaluation and
training widgets all run their work through it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

from napari.qt.threading import create_worker
from psygnal import SignalInstance
from superqt.utils import FunctionWorker

from ..core.utils.progress import Cancelled, CancelToken
from ._common import ProgressRelay
from ._progress_bar import ThrottledProgress


#: emitted with the :class:`TaskRunner` before each of its requests starts (runners with ``announce=True``)
starting = SignalInstance((object,))


@dataclass
class Task:
    """One request: its number, cancel token and progress bar (a widget may subclass it to carry its inputs)."""

    rid: int = 0
    token: CancelToken = field(default_factory=CancelToken)
    pbar: Optional[ThrottledProgress] = None
    #: a background request: :attr:`TaskRunner.busy` ignores it
    background: bool = False
    started: float = field(default_factory=time.perf_counter)


class TaskRunner:
    """Runs ``fn(*args, progress=..., cancel=...)`` in a worker; the newest request wins.

    Parameters
    ----------
    parent : QObject
        Owner of the progress relay and the progress bars' timers (the widget's ``native``).
    on_progress : callable, optional
        ``on_progress(task, done, total, message)`` on the main thread, for the newest request.
    on_preview : callable, optional
        ``on_preview(task, value)`` on the main thread, for a value the newest request's
        ``fn`` handed to its ``preview`` argument (see :meth:`start`).
    announce : bool
        Emit :data:`starting` before each request (``False`` for the runners that
        answer it, such as the Dataset dock's saver).
    """

    def __init__(self, parent, on_progress: Optional[Callable] = None, on_preview: Optional[Callable] = None,
                 announce: bool = True):
        self.announce = announce
        self.latest = 0
        self._tasks: dict[int, Task] = {}
        self._parent = parent
        self._progress_callback = on_progress
        self._preview_callback = on_preview
        self._relay = ProgressRelay(self._on_progress, parent=parent, preview_callback=self._on_preview)

    @property
    def busy(self) -> bool:
        """Whether a request runs (background requests aside)."""
        return any(not task.background for task in self._tasks.values())

    @property
    def background(self) -> bool:
        """Whether a background request runs."""
        return any(task.background for task in self._tasks.values())

    @property
    def running(self) -> bool:
        """Whether any worker still runs (a cancelled one until it has stopped included)."""
        return bool(self._tasks)

    def is_latest(self, task: Task) -> bool:
        """Whether ``task`` is the newest request (no newer one, no cancel since)."""
        return task.rid == self.latest

    def next_rid(self) -> int:
        """A new request number; every running request is cancelled (its result will be dropped)."""
        for task in self._tasks.values():
            task.token.cancel()
        self.latest += 1
        return self.latest

    def cancel(self) -> bool:
        """Cancel every running request; their results are dropped. Returns whether any was running."""
        running = self.running
        self.next_rid()
        return running

    def start(self, fn: Callable, *args, on_result: Callable, on_error: Optional[Callable] = None,
              on_dropped: Optional[Callable] = None, on_finished: Optional[Callable] = None, desc: str = "",
              task: Optional[Task] = None, bar: bool = True, preview: bool = False, **kwargs) -> Task:
        """Start ``fn(*args, progress=..., cancel=..., **kwargs)`` in a worker thread as the newest request.

        Parameters
        ----------
        fn : callable
            The worker body; it must take ``progress`` and ``cancel`` keywords.
        *args, **kwargs
            Its arguments.
        on_result : callable
            ``on_result(value)`` for the newest request's result.
        on_error : callable, optional
            ``on_error(exc)`` for the newest request's error (never for :class:`Cancelled`).
        on_dropped : callable, optional
            ``on_dropped()`` when the request ends without a delivery: stale, cancelled or
            failed after a newer request started.
        on_finished : callable, optional
            ``on_finished()`` after the worker ended, whatever the outcome.
        desc : str
            The progress bar's description until a report names a stage.
        task : Task, optional
            The request's record (a subclass carrying the caller's inputs); its number,
            token and bar are set here. Default: a new :class:`Task`.
        bar : bool
            Whether napari's progress bar shows the request's reports.
        preview : bool
            Pass ``fn`` a ``preview`` callable whose values reach ``on_preview`` on the main thread.

        Returns
        -------
        Task
            The started request.
        """
        if self.announce:
            starting.emit(self)
        task = Task() if task is None else task
        task.rid, task.token = self.next_rid(), CancelToken()
        if bar:
            task.pbar = ThrottledProgress(desc or "napari-deepseg", parent=self._parent)
        self._tasks[task.rid] = task
        emit, rid = self._relay.progressed.emit, task.rid
        if preview:
            show = self._relay.previewed.emit
            kwargs["preview"] = lambda value: show(rid, value)
        worker = create_worker(
            fn, *args,
            progress=lambda done, total, msg="": emit(rid, int(done), int(total), str(msg)),
            cancel=task.token, _start_thread=False, _worker_class=FunctionWorker, _ignore_errors=True, **kwargs,
        )
        worker.returned.connect(lambda value: self._deliver(task, on_result, on_dropped, value))
        worker.errored.connect(lambda exc: self._fail(task, on_error, on_dropped, exc))
        worker.finished.connect(lambda: self._finish(task, on_finished))
        worker.start()
        return task

    def _deliver(self, task: Task, on_result, on_dropped, value) -> None:
        if self.is_latest(task):
            on_result(value)
        elif on_dropped is not None:
            on_dropped()

    def _fail(self, task: Task, on_error, on_dropped, exc) -> None:
        if not isinstance(exc, Cancelled) and self.is_latest(task):
            if on_error is not None:
                on_error(exc)
        elif on_dropped is not None:
            on_dropped()

    def _finish(self, task: Task, on_finished) -> None:
        self._tasks.pop(task.rid, None)
        if task.pbar is not None:
            task.pbar.close()
            task.pbar = None
        if on_finished is not None:
            on_finished()

    def _on_progress(self, rid: int, done: int, total: int, message: str) -> None:
        task = self._tasks.get(rid)
        if task is None:
            return
        if self._progress_callback is not None and rid == self.latest:
            self._progress_callback(task, done, total, message)
        if task.pbar is not None:
            task.pbar.report(done, total, message)

    def _on_preview(self, rid: int, value) -> None:
        task = self._tasks.get(rid)
        if task is not None and rid == self.latest and self._preview_callback is not None:
            self._preview_callback(task, value)
