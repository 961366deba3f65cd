"""Progress callbacks and cancel tokens shared by the long-running core functions.

The core never starts threads. A long function takes ``progress`` (called as
``progress(done, total, message)``) and ``cancel`` (a :class:`CancelToken`);
the widget wraps the function in a worker and connects these to napari.
"""

from __future__ import annotations

import threading
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
