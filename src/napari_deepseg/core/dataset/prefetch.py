"""No waiting between images: which images to prepare next, and the prepared ones kept.

:class:`Prefetcher` knows the current image of a folder and keeps the prepared
sessions of at most three images: the current one and its two neighbours
(next and previous, unreadable images passed over). :meth:`Prefetcher.move`
says which of them still need preparing, in the order to prepare them (the
current image, then the next, then the previous); everything else is evicted,
so memory stays bounded by three prepared images. The preparation itself is a
callable passed in (:func:`make_preparer` builds the usual one): a widget runs
it in a worker thread and hands the result back with :meth:`Prefetcher.put`,
which drops a result that is no longer wanted (the user moved on meanwhile).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ..cut.session import SegmentationSession


@dataclass
class PreparedImage:
    """An image read and prepared for its first stroke or click.

    Attributes
    ----------
    index : int
    image : numpy.ndarray
        The pixels as read.
    session : SegmentationSession
        ``set_image`` and ``prepare_default`` done (its own session: preparing
        it in a worker never touches the current image's session).
    clicks : ClickMethod, optional
        A click method ``set_image`` done on the same image (sharing ``session``
        where it can).
    """

    index: int
    image: np.ndarray
    session: Optional[SegmentationSession] = None
    clicks: Any = None


def make_preparer(folder, backbone: str = "classic", backbone_params: Optional[dict] = None, lam=None, sigma=None,
                  click_method: Optional[str] = None, click_params: Optional[dict] = None, share_session: bool = True,
                  channel_axis=None) -> Callable:
    """The usual preparation: read image ``i`` of ``folder``, ``set_image`` + ``prepare_default``, the click engine.

    Parameters
    ----------
    folder : DatasetFolder
        An unreadable image raises :class:`~.folder.UnreadableImage` (and is marked).
    backbone, backbone_params, lam, sigma, channel_axis
        Of the scribble session (see :class:`~napari_deepseg.core.cut.session.SegmentationSession`).
    click_method, click_params : optional
        A registered click method to prepare too (``None``: none).
    share_session : bool
        Give the click method (when it has a ``session`` of the same backbone,
        as ``graphcut`` does) the prepared session, so the features are computed once.

    Returns
    -------
    callable
        ``prepare(i, progress=None, cancel=None) -> PreparedImage`` (stacks: the
        image is read, the sessions are left unset).
    """
    params = dict(backbone_params or {})

    def prepare(i: int, progress=None, cancel=None) -> PreparedImage:
        image = folder.read_image(i)
        session = clicks = None
        planar = image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (3, 4)) or channel_axis is not None
        if planar:
            session = SegmentationSession(backbone, cache_size=1, **params)
            session.prepare(image, lam=lam, sigma=sigma, progress=progress, cancel=cancel, channel_axis=channel_axis)
        if click_method is not None and planar:
            from ..prompts.base import get_click_method

            clicks = get_click_method(click_method, **(click_params or {}))
            inner = getattr(clicks, "session", None)
            if share_session and isinstance(inner, SegmentationSession) and inner.backbone == session.backbone \
                    and inner.extractor.params() == session.extractor.params() and channel_axis is None:
                clicks.session = session
            clicks.set_image(image, progress=progress, cancel=cancel)
        return PreparedImage(int(i), image, session, clicks)

    return prepare


class Prefetcher:
    """The prepared images of a folder around the current one (at most three).

    Parameters
    ----------
    folder
        A :class:`~.folder.DatasetFolder` (anything with ``len()`` and
        ``neighbour(i, step)``).
    prepare : callable
        ``prepare(i) -> prepared`` (e.g. :func:`make_preparer`); :meth:`prepare_pending`
        calls it, a widget may call it in its own worker instead.

    Examples
    --------
    >>> class Five:
    ...     def __len__(self): return 5
    ...     def neighbour(self, i, step):
    ...         j = i + step
    ...         return j if 0 <= j < 5 else None
    >>> pre = Prefetcher(Five(), prepare=lambda i: f"image {i}")
    >>> pre.move(2)
    [2, 3, 1]
    >>> pre.prepare_pending()
    [2, 3, 1]
    >>> pre.get(3), sorted(pre.prepared)
    ('image 3', [1, 2, 3])
    >>> pre.move(3)
    [4]
    >>> sorted(pre.prepared)
    [2, 3]
    """

    def __init__(self, folder, prepare: Callable):
        self.folder = folder
        self._prepare = prepare
        self._lock = threading.Lock()
        self._prepared: dict = {}
        self.current: Optional[int] = None

    def window(self, current: int) -> list:
        """The images worth keeping around ``current``: itself, the next, the previous (those that exist)."""
        order = [current, self.folder.neighbour(current, 1), self.folder.neighbour(current, -1)]
        return [i for k, i in enumerate(order) if i is not None and i not in order[:k]]

    def move(self, current: int) -> list:
        """Make ``current`` the current image: evict what lies outside its window; return what to prepare, in order."""
        with self._lock:
            self.current = int(current)
            keep = self.window(self.current)
            for i in [i for i in self._prepared if i not in keep]:
                del self._prepared[i]
            return [i for i in keep if i not in self._prepared]

    def pending(self) -> list:
        """The images of the current window not prepared yet (current first, then next, then previous)."""
        with self._lock:
            if self.current is None:
                return []
            return [i for i in self.window(self.current) if i not in self._prepared]

    def put(self, i: int, prepared) -> bool:
        """Keep a prepared image if it is still in the current window; returns whether it was kept."""
        with self._lock:
            if self.current is None or int(i) not in self.window(self.current):
                return False
            self._prepared[int(i)] = prepared
            return True

    def get(self, i: int):
        """The prepared image ``i``, ``None`` if it is not (yet) prepared."""
        with self._lock:
            return self._prepared.get(int(i))

    @property
    def prepared(self) -> list:
        """The indices prepared now."""
        with self._lock:
            return list(self._prepared)

    def prepare_pending(self, on_error: Optional[Callable] = None) -> list:
        """Prepare every pending image now, in order (a worker's loop); returns the indices kept.

        An image whose preparation raises ``ValueError`` (e.g. an unreadable file,
        already marked by the folder) is passed to ``on_error(i, exc)`` when given,
        else skipped.
        """
        kept = []
        for i in self.pending():
            try:
                prepared = self._prepare(i)
            except ValueError as exc:
                if on_error is not None:
                    on_error(i, exc)
                continue
            if self.put(i, prepared):
                kept.append(i)
        return kept
