"""What the widgets say when something fails: one line, in the widget's own terms.

Every widget's error path turns an exception into text here. Most errors of the
core are already one line meant for both faces; a
:class:`~napari_deepseg.core.io.weights.WeightsUnavailableError` carries facts
(which file, where it was looked for, why it could not be downloaded) that the
command line words as ``pass it with --weights PATH`` and a widget as
``choose the file in *weights*, or put it in …`` (:func:`error_text`).
"""

from __future__ import annotations

from typing import Optional

from ..core.io.weights import WeightsUnavailableError


def first_line(exc: BaseException) -> str:
    """First line of an exception's message; the type name for unexpected kinds.

    Examples
    --------
    >>> first_line(ValueError("bad\\nmore"))
    'bad'
    >>> first_line(KeyError("x"))
    "KeyError: 'x'"
    """
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(exc, (ValueError, TypeError, RuntimeError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def error_text(exc: BaseException, field: Optional[str] = "weights") -> str:
    """The one line a widget shows for ``exc``.

    Parameters
    ----------
    exc : BaseException
        The error raised by the core (or the widget's own checks).
    field : str, optional
        The label of the widget's field that takes a local weights file, named
        in the advice for missing weights; ``None`` for a widget without one.

    Examples
    --------
    >>> err = WeightsUnavailableError(file="w.pth", url="https://x/w.pth", searched=["/cache"],
    ...                               cause="no internet connection", override_env=None)
    >>> error_text(err)
    "pretrained weights 'w.pth' not found in /cache and cannot be downloaded (no internet connection); download https://x/w.pth on a machine with internet, then choose the file in *weights*, or put it in /cache"
    """
    if isinstance(exc, WeightsUnavailableError):
        return " ".join(exc.gui_message(field).split())
    return first_line(exc)
