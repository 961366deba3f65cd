"""napari's progress bar for a background request, shown without pausing the GUI thread for long.

napari's activity bar (``QtLabeledProgressBar``) runs ``QApplication.processEvents()``
on every change, so the canvas may redraw inside each call: on a 16 MP photo under
software OpenGL, making the bar cost the GUI thread 28–67 ms and each ``update`` or
``set_description`` 13–67 ms (``benchmarks/gui_pauses.py``, timed call by call).
Made when a request started and updated on every report, it lengthened the
*Segment* press and every stage of a cut.

:class:`ThrottledProgress` makes napari's bar only once the request has run for
:data:`PROGRESS_BAR_INTERVAL_S` (a quick request never shows one, and a button
press returns without making it), and shows at most one report per interval: the
newest, when the interval ends. The widget's status line still shows every report.
"""

from __future__ import annotations

import time
from typing import Optional

from napari.utils import progress
from qtpy.QtCore import QTimer

#: seconds between two changes of napari's progress bar (and before it is made)
PROGRESS_BAR_INTERVAL_S = 0.25


class ThrottledProgress:
    """One request's napari progress bar, made late and updated at most every ``interval`` seconds.

    Parameters
    ----------
    desc : str
        The bar's description until a report names a stage.
    parent : QObject, optional
        Owner of the timer that shows a held-back report.
    interval : float, optional
        Seconds before the bar is made and between two changes of it
        (default :data:`PROGRESS_BAR_INTERVAL_S`; 0 shows every report at once).
    bar_factory : callable, optional
        ``factory(total=..., desc=...)`` making the bar (default napari's ``progress``).
    """

    def __init__(self, desc: str, parent=None, interval: Optional[float] = None, bar_factory=None):
        self.desc = desc
        self.interval = PROGRESS_BAR_INTERVAL_S if interval is None else float(interval)
        self.bar = None
        self._factory = bar_factory
        self._pending: Optional[tuple] = None
        self._message = ""
        self._changed_at = time.perf_counter()  # the bar is made one interval after the request starts
        self._closed = False
        self._flushing = False
        self._timer = QTimer(parent)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.flush)

    def report(self, done: int, total: int, message: str = "") -> None:
        """Take one progress report; napari's bar shows it now or when the interval ends."""
        if self._closed:
            return
        self._pending = (int(done), int(total), str(message))
        wait = self._changed_at + self.interval - time.perf_counter()
        if wait <= 0:
            self.flush()
        elif not self._timer.isActive():
            self._timer.start(int(wait * 1000) + 1)

    def defer(self) -> None:
        """Leave napari's bar as it is for one interval from now.

        Called after long work on the GUI thread (a new result layer): the bar's
        ``processEvents()`` would otherwise add a canvas redraw to the same pause.
        """
        if self._closed:
            return
        self._changed_at = time.perf_counter()
        if self._timer.isActive():
            self._timer.start(int(self.interval * 1000) + 1)

    def flush(self) -> None:
        """Show the newest held-back report (making napari's bar if needed).

        napari's bar runs ``processEvents()`` inside each change, so a report, the
        request's end (:meth:`close`) or this very call may come in between: a call
        made meanwhile only keeps its report for the timer, and a close ends this one.
        """
        if self._closed or self._pending is None:
            return
        if self._flushing:
            if not self._timer.isActive():
                self._timer.start(int(self.interval * 1000) + 1)
            return
        done, total, message = self._pending
        self._pending = None
        self._flushing = True
        try:
            self._show(done, total, message)
        finally:
            self._flushing = False
            self._changed_at = time.perf_counter()

    def _show(self, done: int, total: int, message: str) -> None:
        if self.bar is None:  # one call: napari's activity dialog reads total, value and description once
            factory = self._factory or progress
            self.bar = factory(total=max(total, 0), desc=message or self.desc)
            self._message = message
            if done and not self._closed:
                self.bar.update(done)
            return
        bar = self.bar
        if total > 0 and bar.total != total:
            bar.total = total
        if done != bar.n and not self._closed:
            bar.update(min(done, max(total, done)) - bar.n)
        if message and message != self._message and not self._closed:
            bar.set_description(message)
            self._message = message

    def close(self) -> None:
        """Close napari's bar (if it was made); later reports are ignored."""
        self._closed = True
        try:
            self._timer.stop()
        except RuntimeError:  # the timer's parent (a closed dock) is already deleted
            pass
        bar, self.bar = self.bar, None
        if bar is not None:
            bar.close()
