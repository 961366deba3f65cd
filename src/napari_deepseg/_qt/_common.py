"""Small Qt pieces every dock widget of the plugin shares.

* :data:`DEVICES`: the choices of a *device* box;
* :func:`one_line` and :func:`notify`: an error as one line, in the status line
  and as a napari notification (never a traceback dialog);
* :class:`StatusLine` (made by :func:`status_line`): the status Label that wraps
  and shortens long words (:func:`elide_words`), keeping the whole text in its
  tooltip, so that no message widens a dock;
* :class:`ProgressRelay`: progress reports (and coarse previews) from a worker
  thread to the main thread;
* :func:`row`: a horizontal group of controls under one label;
* :func:`single_shot`: a timer that merges calls arriving within its delay.
"""

from __future__ import annotations

from typing import Optional

from magicgui.widgets import Container, Label
from napari.utils.notifications import show_error
from qtpy.QtCore import QObject, QTimer, Signal, Slot
from qtpy.QtWidgets import QSizePolicy

from ._messages import error_text

#: where a network runs: ``auto`` (CUDA, else Apple's MPS, else the CPU) or that device
DEVICES = ("auto", "cpu", "cuda", "mps")

#: words longer than this (paths, URLs) are shortened in the middle in the status line
STATUS_WORD_CHARS = 36


def one_line(exc: BaseException, field: Optional[str] = "weights") -> str:
    """First line of an exception's message, in the widgets' wording; the type name for unexpected kinds.

    Parameters
    ----------
    exc : BaseException
        The error.
    field : str, optional
        The widget's field that takes a local weights file (named in the advice for
        missing weights); ``None`` for a widget without one.

    Examples
    --------
    >>> one_line(ValueError("bad\\nmore"))
    'bad'
    >>> one_line(KeyError("x"))
    "KeyError: 'x'"
    """
    return error_text(exc, field=field)


def notify(status, message: str) -> None:
    """Say ``message`` in a widget's ``status`` Label and in napari's notification area (never a traceback dialog)."""
    status.value = message
    show_error(message)


def elide_words(text: str, width: int = STATUS_WORD_CHARS) -> str:
    """``text`` with every word longer than ``width`` shortened in the middle (for a narrow status line).

    Examples
    --------
    >>> elide_words("weights not found: /home/me/.cache/torch/hub/checkpoints/resnet50-0676ba61.pth", 20)
    'weights not found: /home/me/…76ba61.pth'
    """
    def short(word: str) -> str:
        if len(word) <= width:
            return word
        head = (width - 1) // 2
        return word[:head] + "…" + word[len(word) - (width - 1 - head):]

    return " ".join(short(w) for w in text.split(" "))


class StatusLine(Label):
    """The status Label: wraps, shortens long words in the middle, keeps the whole text in its tooltip."""

    @property
    def value(self):
        return self._full

    @value.setter
    def value(self, text) -> None:
        self._full = "" if text is None else str(text)
        try:
            Label.value.fset(self, elide_words(self._full))
            self.tooltip = self._full if self._full != elide_words(self._full) else None
        except RuntimeError:  # the dock was closed while a worker was finishing
            pass


def status_line() -> StatusLine:
    """A dock's status line: wraps, and neither a long message nor its longest word widens the dock.

    It takes the column's whole width instead of wrapping into a narrow column.
    """
    status = StatusLine(value="")
    status.native.setWordWrap(True)
    status.native.setMinimumWidth(10)
    status.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    return status


class ProgressRelay(QObject):
    """Carries progress (and coarse previews) from a worker thread to the main thread (queued signals)."""

    progressed = Signal(int, int, int, str)
    previewed = Signal(int, object)

    def __init__(self, callback, parent=None, preview_callback=None):
        super().__init__(parent)
        self._callback = callback
        self._preview_callback = preview_callback
        self.progressed.connect(self._relay)
        self.previewed.connect(self._relay_preview)

    @Slot(int, int, int, str)
    def _relay(self, rid, done, total, message):
        self._callback(rid, done, total, message)

    @Slot(int, object)
    def _relay_preview(self, rid, labels):
        if self._preview_callback is not None:
            self._preview_callback(rid, labels)


def row(*widgets, label: str) -> Container:
    """A horizontal, unlabelled group of widgets shown under one label."""
    return Container(widgets=list(widgets), layout="horizontal", labels=False, label=label)


def single_shot(parent, delay_ms: int, callback) -> QTimer:
    """A single-shot timer owned by ``parent`` that calls ``callback`` ``delay_ms`` after its last ``start()``.

    Starting it again before it fired restarts the delay, so a burst of calls
    (strokes, point edits, choices) makes one call of ``callback``.
    """
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(delay_ms)
    timer.timeout.connect(callback)
    return timer
