"""One background task at a time for a dock widget: the newest request wins.

The small widgets of this plugin (proposal, saliency, evaluation) run one core
function per button press. :class:`TaskRunner` starts it in a superqt
``FunctionWorker`` with a progress callback and a
:class:`~napari_deepseg.core.utils.progress.CancelToken`, connects the signals
*before* starting, cancels the previous request and delivers only the newest
request's result or error, on the main thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from napari.qt.threading import create_worker
from superqt.utils import FunctionWorker

from ..core.utils.progress import Cancelled, CancelToken
from ._progress_bar import ThrottledProgress
from ._common import ProgressRelay


@dataclass
class Task:
    """One request: its number, cancel token and progress bar."""

    rid: int
    token: CancelToken = field(default_factory=CancelToken)
    pbar: ThrottledProgress | None = None


class TaskRunner:
    """Runs ``fn(*args, progress=..., cancel=...)`` in a worker; the newest request wins.

    Parameters
    ----------
    parent : QObject
        Owner of the progress relay (the widget's ``native``).
    """

    def __init__(self, parent):
        self._latest = 0
        self._tasks: dict[int, Task] = {}
        self._parent = parent
        self._relay = ProgressRelay(self._on_progress, parent=parent)

    @property
    def busy(self) -> bool:
        """Whether a worker is still running."""
        return bool(self._tasks)

    def cancel(self) -> None:
        """Cancel every running request; their results are dropped."""
        for task in self._tasks.values():
            task.token.cancel()
        self._latest += 1

    def start(self, fn: Callable, *args, on_result: Callable, on_error: Callable, desc: str = "") -> int:
        """Start ``fn`` in a worker thread; returns the request number."""
        self.cancel()
        task = Task(self._latest)
        task.pbar = ThrottledProgress(desc or "napari-deepseg", parent=self._parent)
        self._tasks[task.rid] = task
        emit = self._relay.progressed.emit
        worker = create_worker(
            fn, *args,
            progress=lambda done, total, msg="": emit(task.rid, int(done), int(total), str(msg)),
            cancel=task.token,
            _start_thread=False, _worker_class=FunctionWorker, _ignore_errors=True,
        )
        worker.returned.connect(lambda value: self._deliver(task, on_result, value))
        worker.errored.connect(lambda exc: self._fail(task, on_error, exc))
        worker.finished.connect(lambda: self._finish(task))
        worker.start()
        return task.rid

    def _deliver(self, task: Task, on_result, value) -> None:
        if task.rid == self._latest:
            on_result(value)

    def _fail(self, task: Task, on_error, exc) -> None:
        if not isinstance(exc, Cancelled) and task.rid == self._latest:
            on_error(exc)

    def _finish(self, task: Task) -> None:
        self._tasks.pop(task.rid, None)
        if task.pbar is not None:
            task.pbar.close()
            task.pbar = None

    def _on_progress(self, rid: int, done: int, total: int, message: str) -> None:
        task = self._tasks.get(rid)
        pbar = None if task is None else task.pbar
        if pbar is not None:
            pbar.report(done, total, message)
