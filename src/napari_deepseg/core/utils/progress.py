"""Progress callbacks and cancel tokens shared by the long-running core functions.

The core never starts threads. A long function takes ``progress`` (called as
``progress(done, total, message)``) and ``cancel`` (a :class:`CancelToken`);
the widget wraps the function in a worker and connects these to napari.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Optional

ProgressCallback = Callable[[int, int, str], None]


class Cancelled(Exception):
    """Raised inside a core function when its :class:`CancelToken` was set."""


class CancelToken:
    """A thread-safe flag a caller sets to stop a running computation.

    Examples
    --------
    >>> token = CancelToken()
    >>> token.cancel(); token.cancelled
    True
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the computation to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`Cancelled` if :meth:`cancel` was called."""
        if self._event.is_set():
            raise Cancelled("computation cancelled")


#: the cancel token of the image preparation running in this thread (:func:`cancel_scope`)
_SCOPE: "ContextVar[Optional[CancelToken]]" = ContextVar("napari_deepseg_cancel_scope", default=None)


@contextmanager
def cancel_scope(cancel: Optional[CancelToken]):
    """Within the block, the long loops of an image's preparation check ``cancel`` too (:func:`check_scope`).

    Building an image's palette, pyramid and colour mixture takes seconds each at
    25 MP (5.7 s for the palette here) between two of their callers' own checks;
    a cut that cancels the preparation of a neighbour waited for the stage to end.
    Their loops (strip by strip, EM step by EM step) check the token of the
    innermost scope of the calling thread; outside a scope they check nothing, so
    code that must not stop half-way (a cut writing its results) is never
    interrupted by them.

    Examples
    --------
    >>> token = CancelToken(); token.cancel()
    >>> check_scope()  # no scope: nothing to check
    >>> with cancel_scope(token):
    ...     check_scope()
    Traceback (most recent call last):
    ...
    napari_deepseg.core.utils.progress.Cancelled: computation cancelled
    """
    reset = _SCOPE.set(cancel)
    try:
        yield
    finally:
        _SCOPE.reset(reset)


def check_scope() -> None:
    """:func:`check` the token of the calling thread's :func:`cancel_scope` (a no-op outside one)."""
    check(_SCOPE.get())


def report(progress: Optional[ProgressCallback], done: int, total: int, message: str = "") -> None:
    """Call ``progress`` if given; a no-op otherwise."""
    if progress is not None:
        progress(done, total, message)


def check(cancel: Optional[CancelToken]) -> None:
    """Raise :class:`Cancelled` if ``cancel`` is set; a no-op for ``None``."""
    if cancel is not None:
        cancel.raise_if_cancelled()


def release_memory() -> None:
    """Hand freed heap memory back to the operating system (glibc's ``malloc_trim``).

    After a large computation (features of a big image) glibc keeps freed
    blocks mapped, so the process's resident memory stays at its peak. Other
    C libraries: a no-op.
    """
    import ctypes
    import gc
    import sys

    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
