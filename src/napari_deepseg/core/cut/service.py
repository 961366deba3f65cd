"""The scribble cut as a service: options, a pool of sessions, and one request at a time per session.

What the *Scribble segmentation* widget runs in its worker threads, usable from a
script without napari:

* :class:`Options`, what one request asks for (backbone, preset, λ, σ, ...), and
  :func:`request_options`, which builds one from a form's values, validated;
* :class:`SessionPool`, the :data:`MAX_SESSIONS` most recently used sessions,
  one per backbone and parameters, so that features are cached between requests;
* :class:`SessionSlot`, a session and the lock that keeps two threads from using it
  at once; planes of at least :data:`PROCESS_MIN_PIXELS` pixels are cut by the same
  session in a child process (:class:`~napari_deepseg.core.cut.remote.ProcessSession`);
* :func:`prepare_request` (the image-level work before any stroke) and
  :func:`run_request` (features, cached, and one cut);
* :func:`check_volume_options`, the options a 3-D cut takes (the widget and the
  command line both ask it).

Examples
--------
>>> import numpy as np
>>> image = np.zeros((24, 24, 3), np.uint8)
>>> image[6:18, 6:18] = (220, 60, 40)
>>> scribbles = np.zeros((24, 24), np.uint8)
>>> scribbles[11:13, 9:15] = 1
>>> scribbles[0:2, :] = 2
>>> pool = SessionPool()
>>> options = Options("rgb", "default", lam=None, sigma=None)
>>> labels = run_request(pool.slot(options), image, scribbles, options)
>>> int(labels[6:18, 6:18].sum()), int(labels.sum())
(144, 144)
>>> pool.close()
True
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..features import get_extractor
from ..utils.validation import check_rgb_channels
from .remote import ProcessSession
from .session import SegmentationSession
from .volume import VolumeSession

#: sessions (each with the features of its last images) a pool keeps, one per backbone and its parameters
MAX_SESSIONS = 3

#: planes of at least this many pixels (values, with a channel axis) are cut in a child process
#: (:class:`~napari_deepseg.core.cut.remote.ProcessSession`); ``None``: always in this process
PROCESS_MIN_PIXELS = 4_000_000

#: backbones a 3-D cut takes: :class:`~napari_deepseg.core.cut.volume.VolumeSession`'s energy is the
#: weight-free colour model, which ``classic`` and ``rgb`` share
VOLUME_BACKBONES = ("classic", "rgb")


def check_volume_options(backbone: str, preset: str = "default", channel_axis=None, feature_cache=None) -> None:
    """Refuse options a 3-D cut (:class:`~napari_deepseg.core.cut.volume.VolumeSession`) cannot honour.

    Parameters
    ----------
    backbone, preset : str
        The backbone and preset asked for.
    channel_axis : int, optional
        A channel axis of the data (the 3-D cut reads colour as napari shows it).
    feature_cache : str, optional
        A feature cache path (the 3-D cut computes no backbone features).

    Raises
    ------
    ValueError
        A backbone other than :data:`VOLUME_BACKBONES`, a preset other than
        ``default``, a channel axis or a feature cache.

    Examples
    --------
    >>> check_volume_options("rgb")
    >>> check_volume_options("resnet50")
    Traceback (most recent call last):
    ...
    ValueError: the 3-D cut uses the weight-free colour model: backbone 'resnet50' is for 2-D images (use classic or rgb)
    """
    if backbone not in VOLUME_BACKBONES:
        raise ValueError(f"the 3-D cut uses the weight-free colour model: backbone {backbone!r} is for 2-D images "
                         f"(use {' or '.join(VOLUME_BACKBONES)})")
    if preset != "default" or channel_axis is not None or feature_cache:
        got = (f"preset {preset!r}" if preset != "default" else
               f"channel axis {channel_axis}" if channel_axis is not None else f"feature cache {feature_cache}")
        raise ValueError("the 3-D cut uses the weight-free colour model: it takes the default preset, no channel axis "
                         f"and no feature cache; got {got}")


@dataclass(frozen=True)
class Options:
    """What one request asks for (the widget reads its controls into one, once per request)."""

    backbone: str
    preset: str
    lam: Optional[float]
    sigma: Optional[float]
    params: tuple = ()
    #: zarr feature cache path ("" = off), passed to the session
    feature_cache: str = ""
    #: the image's channel axis as the data holds it (``None``: napari's RGB / grayscale layout)
    channel_axis: Optional[int] = None
    #: a 3-D image segmented whole: ``"3d"`` or ``"planes"`` (``None``: one plane)
    volume: Optional[str] = None
    #: the image's voxel size ``(z, y, x)`` for the 3-D edges
    spacing: tuple = ()

    @property
    def session_key(self) -> tuple:
        """Sessions are shared between requests with the same backbone, parameters (and feature cache)."""
        if self.volume:
            return ("volume",)
        return (self.backbone, self.params, self.feature_cache) if self.feature_cache else (self.backbone, self.params)


def needs_weights(backbone: str) -> bool:
    """Whether ``backbone`` has pretrained weights (and so takes a weights file, a device and RGB channels).

    Examples
    --------
    >>> needs_weights("resnet50"), needs_weights("classic"), needs_weights("no such backbone")
    (True, False, False)
    """
    try:
        return bool(get_extractor(backbone).needs_weights)
    except (ValueError, TypeError):
        return False


def _blank(path) -> bool:
    """Whether a path field is empty (``None``, ``""``, or ``"."``: what an empty file box holds)."""
    return path is None or str(path).strip() in ("", ".")


def request_options(backbone: str, preset: str = "default", *, lam: Optional[float] = None,
                    sigma: Optional[float] = None, weights=None, device: str = "auto", rgb_channels=None,
                    feature_cache=None, channel_axis: Optional[int] = None, volume: Optional[str] = None,
                    spacing: tuple = ()) -> Options:
    """The :class:`Options` of a request from a form's values (the Scribble widget's controls), validated.

    Parameters
    ----------
    backbone, preset : str
        The backbone and preset.
    lam, sigma : float, optional
        λ and σ (``None``: automatic).
    weights : str or path, optional
        A local weights file for a backbone with pretrained weights (:func:`needs_weights`);
        empty: the backbone's own (downloaded and cached). Ignored by other backbones, as are
        ``device`` and ``rgb_channels``.
    device : str
        Where the backbone's network runs (``auto``, ``cpu``, ``cuda``, ``mps``).
    rgb_channels : sequence of 3 int or str, optional
        The bands the network reads as red, green and blue, e.g. ``(3, 0, 1)`` or ``"3, 0, 1"``
        (``None`` or ``""``: the first three).
    feature_cache : str or path, optional
        A zarr store for features across sessions (empty: none).
    channel_axis : int, optional
        The axis of the data that holds the bands (``None``: RGB(A) or grayscale as napari shows it).
    volume : {"3d", "planes"}, optional
        Cut a 3-D image whole (:class:`~napari_deepseg.core.cut.volume.VolumeSession`): with the
        weight-free colour model, the other options are refused (:func:`check_volume_options`)
        and the feature cache is not used.
    spacing : tuple of float
        A volume's voxel size ``(z, y, x)``.

    Returns
    -------
    Options

    Raises
    ------
    ValueError, TypeError
        A weights file that does not exist, bad RGB channels, or options a volume refuses.

    Examples
    --------
    >>> request_options("classic", lam=30.0).session_key
    ('classic', ())
    >>> request_options("resnet50", device="cpu", rgb_channels="3, 0, 1").params
    (('device', 'cpu'), ('rgb_channels', (3, 0, 1)))
    >>> volume = request_options("rgb", volume="3d", spacing=(2.0, 1.0, 1.0))
    >>> volume.backbone, volume.volume, volume.spacing, volume.session_key
    ('classic', '3d', (2.0, 1.0, 1.0), ('volume',))
    >>> request_options("resnet50", volume="3d")
    Traceback (most recent call last):
    ...
    ValueError: the 3-D cut uses the weight-free colour model: backbone 'resnet50' is for 2-D images (use classic or rgb), or segment the current plane
    >>> request_options("resnet50", weights="/no/such/file.pth")
    Traceback (most recent call last):
    ...
    ValueError: weights file not found: /no/such/file.pth
    """
    params = ()
    if needs_weights(backbone):
        if not _blank(weights):
            if not Path(weights).is_file():
                raise ValueError(f"weights file not found: {weights}")
            params += (("weights", str(weights)),)
        params += (("device", device),)
        rgb = check_rgb_channels(rgb_channels or None, "RGB channels")
        params += (("rgb_channels", rgb),) if rgb is not None else ()
    if volume is not None:
        try:
            check_volume_options(backbone, preset, channel_axis)
        except ValueError as exc:
            raise ValueError(f"{exc}, or segment the current plane") from None
        return Options("classic", "default", lam, sigma, (), "", None, volume, tuple(spacing))
    cache = "" if _blank(feature_cache) else str(feature_cache)
    return Options(backbone, preset, lam, sigma, params, cache, channel_axis)


@dataclass
class SessionSlot:
    """A session and the lock that keeps two threads from using it at once.

    Planes of at least :data:`PROCESS_MIN_PIXELS` pixels are cut by a second
    session with the same options in a child process (``remote``, started on
    first use), so that the cut's C extensions, which hold Python's GIL, never
    pause the caller's other threads (napari's GUI).
    """

    session: SegmentationSession
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: the same session's options, for the child process's session
    backbone: str = "classic"
    session_kwargs: dict = field(default_factory=dict)
    remote: Optional[ProcessSession] = None
    #: the session the last request of this slot used (its ``last_local`` is the one to read)
    last: Optional[object] = None

    @staticmethod
    def in_child(image, options: Options) -> bool:
        """Whether ``image`` is cut in the child process (a plane of at least :data:`PROCESS_MIN_PIXELS`)."""
        plane = int(np.prod(np.shape(image)[:2])) if options.channel_axis is None else int(np.size(image))
        return not (options.volume or PROCESS_MIN_PIXELS is None or plane < PROCESS_MIN_PIXELS)

    def for_image(self, image, options: Options):
        """The session that cuts ``image``: the child process's for large planes, else the one in this process."""
        if not self.in_child(image, options):
            self.last = self.session
        else:
            if self.remote is None:
                self.remote = ProcessSession(self.backbone, **self.session_kwargs)
            self.last = self.remote
        return self.last

    def keep_images(self, count: int) -> None:
        """Keep the features of at least ``count`` images: this process's session, and the child process's
        when it starts (a folder's current image and its prepared neighbours)."""
        self.session.cache_size = max(self.session.cache_size, int(count))
        self.session_kwargs["cache_size"] = max(self.session_kwargs.get("cache_size", 2), int(count))

    def close(self) -> bool:
        """Stop the child process unless a thread is using this slot (it then stops when the slot is freed).

        Returns
        -------
        bool
            Whether nothing of the slot runs any more.
        """
        if not self.lock.acquire(blocking=False):
            return False
        try:
            if self.remote is not None:
                self.remote.close()
                self.remote = None
        finally:
            self.lock.release()
        return True


class SessionPool:
    """The :data:`MAX_SESSIONS` most recently used sessions, one per :attr:`Options.session_key`.

    Parameters
    ----------
    before_new : callable, optional
        Called with the options before a session with pretrained weights (``options.params``)
        is made (the widget keeps torch from loading triton next to Mesa's LLVM there).
    """

    def __init__(self, before_new: Optional[Callable[[Options], None]] = None):
        self.slots: "OrderedDict[tuple, SessionSlot]" = OrderedDict()  # least recently used first
        self._before_new = before_new

    def slot(self, options: Options) -> SessionSlot:
        """The session for these options (created on first use).

        At most :data:`MAX_SESSIONS` are kept, the least recently used dropped
        first, and only once the new session exists (options it refuses, such as
        a feature cache path that is a file, drop nothing). A thread still running
        on a dropped session holds its slot and keeps it until it ends.

        Raises
        ------
        ValueError, TypeError
            From the session for options it refuses.
        """
        key = options.session_key
        if key in self.slots:
            self.slots.move_to_end(key)
            return self.slots[key]
        if options.params and self._before_new is not None:  # a backbone with pretrained weights
            self._before_new(options)
        if options.volume:
            slot = SessionSlot(VolumeSession())
        else:
            kwargs = dict(feature_cache=options.feature_cache or None, **dict(options.params))
            slot = SessionSlot(SegmentationSession(options.backbone, **kwargs), backbone=options.backbone,
                               session_kwargs=kwargs)
        while len(self.slots) >= MAX_SESSIONS:
            self.slots.popitem(last=False)[1].close()
        self.slots[key] = slot
        return slot

    def close(self) -> bool:
        """Stop every child process (a slot in use stops its own when freed); whether all stopped now."""
        return all([slot.close() for slot in self.slots.values()])


def run_request(slot: SessionSlot, image, scribbles, options: Options, progress=None, cancel=None,
                local: bool = False, preview=None, defer: bool = False,
                local_corrections: bool = False) -> np.ndarray:
    """Features (cached by the session) and one cut, holding the slot's lock.

    Parameters
    ----------
    slot : SessionSlot
        The session to use and its lock.
    image, scribbles : numpy.ndarray
        The plane (or volume) and its strokes; nothing writes into them.
    options : Options
        Preset, λ, σ (and the volume mode).
    progress, cancel
        See :mod:`napari_deepseg.core.utils.progress`.
    local : bool
        A local update where it applies (``SegmentationSession.segment(local=True)``:
        only a window around the changed strokes is re-solved; the session's
        ``last_local`` says whether it was).
    preview : callable, optional
        Receives the coarse result of a whole coarse-to-fine cut before the bands refine it.
    defer : bool
        A fast answer on a small image, the found star centres left to a second request
        (``SegmentationSession.segment(defer=True)``; the session's ``last_deferred`` says
        whether anything was left).
    local_corrections : bool
        Strokes added to the last answered ones change only the regions they touch
        (``SegmentationSession.segment(local_corrections=True)``, a plane's cut only).

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` labels (a volume's for a 3-D request).
    """
    with slot.lock:
        if cancel is not None:
            cancel.raise_if_cancelled()
        session = slot.for_image(image, options)
        if options.volume:  # the whole volume: a 3-D cut or every plane on its own
            session.set_image(image, spacing=options.spacing, progress=progress, cancel=cancel)
            return session.segment(scribbles, mode=options.volume, lam=options.lam, sigma=options.sigma,
                                   progress=progress, cancel=cancel)
        session.set_image(image, progress=progress, cancel=cancel, channel_axis=options.channel_axis)
        return session.segment(
            scribbles, preset=options.preset, lam=options.lam, sigma=options.sigma,
            progress=progress, cancel=cancel, local=local, preview=preview, defer=defer,
            local_corrections=local_corrections,
        )


#: seconds between two looks at a preparation under way in the child process
PREPARED_POLL_SECONDS = 0.1


def prepare_request(slot: SessionSlot, image, options: Options, progress=None, cancel=None) -> None:
    """The image-level work before any stroke (features, palette, colour mixture, n-links), holding the lock.

    The first :func:`run_request` for this image then pays only for the cut. A plane
    cut in the child process is prepared by the child's preparation thread, before the
    neighbours (:meth:`~napari_deepseg.core.cut.remote.ProcessSession.prepare_beside`):
    the lock is held only to hand it over and to look at it, so the neighbours' wishes
    reach the child meanwhile and a cut of the image waits in the child for what is left.
    Where that preparation failed, the work is done again holding the lock (its error raised).
    """
    if not options.volume and SessionSlot.in_child(image, options):
        with slot.lock:
            if cancel is not None:
                cancel.raise_if_cancelled()
            remote = slot.for_image(image, options)
            name = remote.prepare_beside(image, options.lam, options.sigma, channel_axis=options.channel_axis,
                                         default=options.preset == "default", first=True, cancel=cancel)
        while True:
            if cancel is not None:
                cancel.raise_if_cancelled()
            with slot.lock:
                state = remote.prepared().get(name, "none") if slot.remote is remote else "none"
            if state == "ready":
                return
            if state == "none":
                break  # failed (or the child restarted): done here, its error raised
            time.sleep(PREPARED_POLL_SECONDS)
    with slot.lock:
        if cancel is not None:
            cancel.raise_if_cancelled()
        session = slot.for_image(image, options)
        session.set_image(image, progress=progress, cancel=cancel, channel_axis=options.channel_axis)
        if options.preset == "default":
            session.prepare_default(options.lam, options.sigma, progress=progress, cancel=cancel)


def prepare_neighbour(slot: SessionSlot, image, options: Options, progress=None, cancel=None) -> None:
    """Prepare an image the user has not opened yet (a folder's next image) so that its first cut is cheap.

    In this process the work runs beside the slot's session
    (:meth:`~napari_deepseg.core.cut.session.SegmentationSession.prepare_aside`) and takes
    the lock only to hand the result over, so a request on the current image never waits
    for it. Planes cut in the child process are prepared there the same way, by a thread of
    the child (:meth:`~napari_deepseg.core.cut.remote.ProcessSession.prepare_beside`): the lock
    is held only while the image is handed over (its name, where the child holds it already).
    Volumes are prepared holding the lock (:func:`prepare_request`).
    """
    if options.volume:
        return prepare_request(slot, image, options, progress=progress, cancel=cancel)
    if SessionSlot.in_child(image, options):
        with slot.lock:
            if cancel is not None:
                cancel.raise_if_cancelled()
            slot.for_image(image, options).prepare_beside(image, options.lam, options.sigma,
                                                          channel_axis=options.channel_axis,
                                                          default=options.preset == "default", cancel=cancel)
        return
    entry = slot.session.prepare_aside(image, options.lam, options.sigma, progress=progress, cancel=cancel,
                                       channel_axis=options.channel_axis, default=options.preset == "default")
    with slot.lock:
        slot.session.adopt(entry)
