"""A :class:`~napari_deepseg.core.cut.session.SegmentationSession` in a child process.

The cut's C extensions (PyMaxflow's ``maxflow()``, ``thinhpf``, the palette's
numpy sorts) hold Python's GIL while they run: up to 0.75 s at a time on a 16 MP
photo. A thread cannot help with that: napari's GUI thread waits for every one
of them (``benchmarks/gui_pauses.py``). :class:`ProcessSession` runs the session
in its own Python process instead. The caller's thread only sends the inputs and
waits on a socket, which releases the GIL.

The child is started with ``python -m napari_deepseg.core.cut.remote`` (not
``multiprocessing``'s spawn, which would run the caller's ``__main__`` again, a
napari script without a main guard included) and connects back to a localhost
socket with a random key (the same code on Linux, macOS and Windows). It is
started on the first call, in the calling thread, and keeps its session,
features and last cut between calls.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from multiprocessing.connection import Connection
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..utils.progress import Cancelled, CancelToken, ProgressCallback, check

#: seconds between two looks at the caller's cancel token while the child works
POLL_SECONDS = 0.05
#: seconds the child may take to start and connect (importing torch on a slow disk included)
START_SECONDS = 120.0
#: environment variable that hands the child its connection key
KEY_VARIABLE = "NAPARI_DEEPSEG_REMOTE_KEY"


class ProcessSession:
    """The methods of :class:`SegmentationSession` that the Scribble widget uses, run in a child process.

    Parameters
    ----------
    backbone : str
        As for :class:`SegmentationSession`.
    **session_kwargs
        ``cache_size``, ``feature_cache`` and the backbone's parameters, as for
        :class:`SegmentationSession` (they must pickle).

    Notes
    -----
    One call at a time (the widget holds a lock per session). An image is sent to
    the child only when the child does not hold it already: the child keeps the
    pixels of the images its session keeps features of (``cache_size``, the
    least recently used dropped first), named by a hash of their bytes, so going
    back to a folder's image after its neighbour was prepared sends a name, not
    75 MB (a 25 MP photo). Errors raised in the child are raised again
    here, with their type where it pickles (:class:`Cancelled` included). If the
    child dies, the call raises ``RuntimeError`` and the next call starts a new one.

    Examples
    --------
    >>> img = np.zeros((20, 20), np.float32); img[5:15, 5:15] = 1
    >>> s = np.zeros((20, 20), np.uint8); s[9:11, 9:11] = 1; s[0, :] = 2
    >>> session = ProcessSession("classic")
    >>> session.set_image(img)
    >>> mask = session.segment(s)
    >>> int(mask[10, 10]), int(mask[1, 1])
    (1, 0)
    >>> session.close()
    """

    def __init__(self, backbone: str = "classic", **session_kwargs):
        self.backbone = backbone
        self.session_kwargs = session_kwargs
        #: whether the last :meth:`segment` was a local update, and the λ it used (see :class:`SegmentationSession`)
        self.last_local = False
        self.last_deferred = False
        self.last_kept = 0
        self.last_lambda: Optional[float] = None
        self._proc: Optional[subprocess.Popen] = None
        self._conn: Optional[Connection] = None
        self._cancel_sock: Optional[socket.socket] = None
        #: the images the child was sent, least recently used first (it may have dropped some since)
        self._held: "OrderedDict[tuple, None]" = OrderedDict()
        self._request = 0

    # -- the session's methods ---------------------------------------------------
    def set_image(self, image, progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
                  channel_axis: Optional[int] = None) -> None:
        """:meth:`SegmentationSession.set_image` in the child (features cached there; returns nothing)."""
        self._named("set_image", image, (), {"channel_axis": channel_axis}, progress, cancel)

    def prepare_beside(self, image, lam=None, sigma=None, channel_axis: Optional[int] = None, default: bool = True,
                       first: bool = False, cancel: Optional[CancelToken] = None) -> tuple:
        """Prepare ``image`` in the child beside the calls on its current image; returns once it is queued.

        A thread of the child prepares it on a sibling session (features, and with
        ``default`` the default preset's colour mixture and edge weights,
        :meth:`SegmentationSession.prepare_aside`) while the child answers the calls on
        the current image, on the other core; a later :meth:`set_image` of it finds it
        prepared (or waits for the preparation under way). ``first`` puts it before the
        other wishes (the image the user opened); the newest wishes are kept, as many
        as the images the child holds.

        Returns
        -------
        tuple
            The image's name in the child (for :meth:`prepared`).
        """
        return self._named("prepare_beside", image, (lam, sigma),
                           {"channel_axis": channel_axis, "default": default, "first": first}, None, cancel)

    def prepared(self) -> dict:
        """``{name: "ready" | "pending" | "none"}`` of the images the child holds (a name is ``(hash, shape,
        dtype)``, as :meth:`prepare_beside` returns it): features cached, wished or being prepared beside, or neither."""
        return {} if self._proc is None else self._call("prepared", (), {})

    def _named(self, name: str, image, args: tuple, kwargs: dict, progress, cancel):
        """Call ``name`` with ``image`` sent only where the child does not hold it; the image's name (the hash
        of its bytes, shape and dtype)."""
        arr = np.ascontiguousarray(np.asarray(image))
        # every image is named by its hash: the one the child works on is never taken from the order of
        # calls (a set_image cancelled once its image had arrived left the child on it while this side still
        # named the one before: a Dataset dock's neighbour preparation, cancelled by a cut)
        key = (_digest(arr), arr.shape, arr.dtype.str)
        if key in self._held and self._proc is not None and self._proc.poll() is None:
            try:
                self._call(name, (None, key, *args), kwargs, progress, cancel)  # the child has it: its name only
                self._held.move_to_end(key)
                return key
            except ImageNotHeld:
                pass  # dropped by the child since: sent again
        self._held.pop(key, None)
        self._held[key] = None  # the child keeps it as soon as it arrives, even if the call is cancelled
        while len(self._held) > _held_count(self.session_kwargs):
            self._held.popitem(last=False)
        self._call(name, (arr, key, *args), kwargs, progress, cancel)
        return key

    def prepare_default(self, lam=None, sigma=None, progress: Optional[ProgressCallback] = None,
                        cancel: Optional[CancelToken] = None) -> None:
        """:meth:`SegmentationSession.prepare_default` in the child."""
        self._call("prepare_default", (lam, sigma), {}, progress, cancel)

    def segment(self, scribbles, progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
                preview=None, **kwargs) -> np.ndarray:
        """:meth:`SegmentationSession.segment` in the child; ``preview`` is called here with the coarse result."""
        return self._call("segment", (np.asarray(scribbles),), kwargs, progress, cancel, preview)

    def close(self) -> None:
        """Stop the child process (a later call starts a new one)."""
        proc, self._proc = self._proc, None
        self._held.clear()
        for end in (self._conn, self._cancel_sock):
            if end is not None:
                try:
                    end.close()
                except OSError:
                    pass
        self._conn = self._cancel_sock = None
        if proc is not None and proc.poll() is None:
            try:
                proc.wait(timeout=2)  # the child leaves when its socket closes
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __del__(self):  # noqa: D105
        try:
            self.close()
        except Exception:  # at interpreter exit: nothing left to do
            pass

    # -- plumbing ------------------------------------------------------------------
    def _start(self) -> None:
        key = os.urandom(16)
        server = socket.create_server(("127.0.0.1", 0))
        server.settimeout(POLL_SECONDS)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), **{KEY_VARIABLE: key.hex()})
        self._proc = subprocess.Popen([sys.executable, "-m", __name__, str(server.getsockname()[1])], env=env,
                                      stdin=subprocess.DEVNULL)
        ends, deadline = {}, time.monotonic() + START_SECONDS
        try:
            while len(ends) < 2:  # the calls' connection and the cancel one, each proving the key
                try:
                    end, _ = server.accept()
                except socket.timeout:
                    if self._proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the segmentation process did not start "
                                           f"(exit code {self._proc.poll()})") from None
                    continue
                end.settimeout(START_SECONDS)
                hello = _receive_exactly(end, 17)
                if len(hello) == 17 and hmac.compare_digest(hello[:16], key) and hello[16:] in (b"m", b"c"):
                    end.settimeout(None)
                    ends[hello[16:]] = end
                else:
                    end.close()
        except BaseException:
            for end in ends.values():
                end.close()
            self._proc.kill()
            self._proc.wait()
            self._proc = None
            raise
        finally:
            server.close()
        self._conn = Connection(ends[b"m"].detach())
        self._cancel_sock = ends[b"c"]
        self._conn.send((self.backbone, self.session_kwargs))

    def _call(self, name: str, args: tuple, kwargs: dict, progress=None, cancel=None, preview=None):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if self._proc is None:
            self._start()
        self._request += 1
        request, cancel_sent = self._request, False
        try:
            if self._proc.poll() is not None:  # died since the last call: its image and features are gone
                raise EOFError
            _send(self._conn, (request, name, args, kwargs, progress is not None, preview is not None))
            while True:
                while not self._conn.poll(POLL_SECONDS):
                    if cancel is not None and cancel.cancelled and not cancel_sent:
                        self._cancel_sock.sendall(request.to_bytes(8, "little"))
                        cancel_sent = True
                    if self._proc.poll() is not None:
                        raise EOFError
                kind, payload = _receive(self._conn)
                if kind == "progress":
                    progress(*payload)
                elif kind == "preview":
                    preview(payload)
                elif kind == "error":
                    raise payload
                else:
                    value, self.last_local, self.last_deferred, self.last_lambda, self.last_kept = payload
                    return value
        except (EOFError, OSError) as exc:
            code = self._proc.poll() if self._proc is not None else None
            self.close()
            raise RuntimeError(f"the segmentation process stopped unexpectedly (exit code {code}); "
                               "the next try starts a new one") from exc


#: the calls the child answers from its images (:class:`_Images`), not from the session
_IMAGES_CALLS = ("set_image", "prepare_beside", "prepared")


class ImageNotHeld(LookupError):
    """The child was asked for an image by name that it no longer keeps (the parent sends it again)."""


def _held_count(session_kwargs: dict) -> int:
    """How many images the child keeps the pixels of: as many as its session keeps the features of."""
    return max(1, int(session_kwargs.get("cache_size", 2)))


@dataclass(frozen=True)
class _Raw:
    """Where an array was in a message: its bytes follow the message on their own."""

    shape: tuple
    dtype: str


def _send(conn: Connection, message: tuple) -> None:
    """Send a message whose numpy arrays (at its top level or one tuple down) go as raw bytes after it.

    Pickling a 16 MP image would copy it while holding the GIL; ``send_bytes``
    writes the array's own memory, and the socket writes release the GIL.
    """
    arrays = []

    def swap(value):
        if isinstance(value, np.ndarray):
            arrays.append(np.ascontiguousarray(value))
            return _Raw(value.shape, value.dtype.str)
        return value

    conn.send(tuple(tuple(swap(v) for v in item) if isinstance(item, tuple) else swap(item) for item in message))
    for arr in arrays:
        conn.send_bytes(memoryview(arr).cast("B") if arr.size else b"")


def _receive(conn: Connection) -> tuple:
    """The message of :func:`_send`, its arrays read back (writable) in order."""
    message = conn.recv()

    def swap(value):
        if isinstance(value, _Raw):
            arr = np.frombuffer(conn.recv_bytes(), np.dtype(value.dtype)).reshape(value.shape)
            return arr.copy()  # writable; numpy copies without the GIL
        return value

    return tuple(tuple(swap(v) for v in item) if isinstance(item, tuple) else swap(item) for item in message)


def _receive_exactly(end: socket.socket, size: int) -> bytes:
    """Up to ``size`` bytes from a socket (fewer only when it closes)."""
    data = b""
    while len(data) < size:
        chunk = end.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _digest(arr: np.ndarray) -> bytes:
    """Blake2b of an array's bytes (hashlib releases the GIL on large buffers)."""
    return hashlib.blake2b(memoryview(arr).cast("B"), digest_size=16).digest()


def _serve(conn: Connection, cancel_sock: socket.socket) -> None:
    """The child's loop: build the session, then answer calls until the parent closes the socket."""
    from .session import SegmentationSession

    current = {"request": 0, "token": CancelToken()}

    def listen():  # cancel requests arrive here while the main thread works
        while True:
            data = cancel_sock.recv(8)
            if len(data) < 8:
                return
            if int.from_bytes(data, "little") == current["request"]:
                current["token"].cancel()

    threading.Thread(target=listen, daemon=True).start()
    backbone, session_kwargs = conn.recv()
    session, error = None, None
    try:
        session = SegmentationSession(backbone, **session_kwargs)
    except Exception as exc:  # reported on every call
        error = exc
    images = _Images(session)
    while True:
        try:
            request, name, args, kwargs, want_progress, want_preview = _receive(conn)
        except (EOFError, OSError):
            return
        token = CancelToken()
        current["request"], current["token"] = request, token
        if want_progress:
            kwargs["progress"] = lambda done, total, message="": conn.send(("progress", (done, total, message)))
        if want_preview:
            kwargs["preview"] = lambda labels: _send(conn, ("preview", labels))
        try:
            if error is not None:
                raise error
            if name in _IMAGES_CALLS:
                value = getattr(images, name)(*args, **kwargs, **({"cancel": token} if name == "set_image" else {}))
            else:
                value = getattr(session, name)(*args, cancel=token, **kwargs)
            reply = ("result", (value if name in ("segment", "prepared") else None, session.last_local,
                                session.last_deferred, session.last_lambda, session.last_kept))
        except Exception as exc:
            reply = ("error", _picklable(exc))
        _send(conn, reply)


class _Images:
    """The child's images: their pixels by name, and the preparation of other images beside the calls.

    The pixels of as many images as the session keeps features of are kept
    (the least recently used dropped first). :meth:`prepare_beside` queues an
    image whose features, colour mixture and edge weights a thread prepares on a
    sibling session (:meth:`SegmentationSession.prepare_aside`) while the main
    loop answers the calls on the current image, on the other core: a folder's
    next tile is ready when the user opens it, however busy the current one kept
    the process. The lock guards the held images, the wishes and the session's
    cache; the calls themselves run without it.
    """

    def __init__(self, session):
        self.session = session
        #: name -> (pixels, (channel_axis, the session's key) once its features were made)
        self.held: "OrderedDict[tuple, tuple]" = OrderedDict()
        self.cond = threading.Condition()
        self.wishes: list = []  # (name, lam, sigma, channel_axis, default) to prepare beside, oldest first
        self.preparing: Optional[tuple] = None  # the name being prepared beside
        self._running: Optional[tuple] = None  # (its wish, its cancel token)
        self._thread: Optional[threading.Thread] = None

    def _keep(self, image, key: tuple) -> None:
        """Hold ``image`` under ``key`` (``None``: held already, or :class:`ImageNotHeld`). Lock held."""
        if image is not None:
            self.held.pop(key, None)
            self.held[key] = (image, None)
            while len(self.held) > max(1, self.session.cache_size):
                self.held.popitem(last=False)
        elif key not in self.held:
            raise ImageNotHeld("the segmentation process no longer holds this image")
        self.held.move_to_end(key)

    def set_image(self, image, key: tuple, cancel=None, **kwargs) -> None:
        """The child's ``set_image``: ``image`` kept under ``key`` as it arrives, or the one kept under ``key``.

        One whose features are still cached becomes the session's image without being
        hashed again; one being prepared beside is waited for (its work is not done twice).
        """
        axis = kwargs.get("channel_axis")
        with self.cond:
            self._keep(image, key)
            self.wishes = [w for w in self.wishes if w[0] != key]
            while self.preparing == key:
                self.cond.wait(POLL_SECONDS)
                check(cancel)
            pixels, features = self.held.get(key, (image, None))
            if pixels is None:  # dropped while its preparation was waited for: the parent sends it again
                raise ImageNotHeld("the segmentation process no longer holds this image")
            if features is not None and features[0] == axis and self.session.use_cached(features[1]):
                return
            try:
                features = (axis, self.session.set_image(pixels, cancel=cancel, **kwargs).key)
            except Cancelled:
                raise  # the pixels are good: kept for the next try
            except Exception:
                self.held.pop(key, None)  # an image the session refuses is not kept
                raise
            if key in self.held:
                self.held[key] = (pixels, features)

    def prepare_beside(self, image, key: tuple, lam=None, sigma=None, channel_axis=None, default=True,
                       first=False) -> None:
        """Queue ``image`` (or the one held under ``key``) for preparation beside the calls; returns at once.

        ``first``: before the other wishes (the image the user opened); the preparation
        of another image under way stops and is wished again after it. The newest
        wishes are kept, as many as the images held.
        """
        with self.cond:
            self._keep(image, key)
            wish = (key, lam, sigma, channel_axis, default)
            others = [w for w in self.wishes if w[0] != key]
            if first and self._running is not None and self._running[0][0] != key:
                self._running[1].cancel()  # a neighbour's preparation gives way to the opened image
                others.insert(0, self._running[0])
            self.wishes = [wish, *others] if first else [*others, wish]
            del self.wishes[max(1, self.session.cache_size):]  # the oldest wishes go (the first stays)
            if self._thread is None:
                self._thread = threading.Thread(target=self._prepare_wishes, daemon=True)
                self._thread.start()
            self.cond.notify_all()

    def prepared(self) -> dict:
        """``{name: state}`` of the images held: ``"ready"`` (features cached), ``"pending"`` (wished or being
        prepared beside) or ``"none"`` (neither: a preparation failed or was never asked for)."""
        with self.cond:
            pending = {w[0] for w in self.wishes} | {self.preparing}
            return {key: "pending" if key in pending else (
                "ready" if features is not None and features[1] in self.session._cache else "none")
                for key, (_, features) in self.held.items()}

    def _prepare_wishes(self) -> None:
        """The thread: prepare each wished image on a sibling session, then hand it to the session."""
        while True:
            with self.cond:
                while not self.wishes:
                    self.cond.wait()
                key, lam, sigma, axis, default = self.wishes.pop(0)
                pixels, features = self.held.get(key, (None, None))
                if pixels is None or (features is not None and features[0] == axis
                                      and features[1] in self.session._cache):
                    continue  # dropped since, or prepared already
                self.preparing, token = key, CancelToken()
                self._running = ((key, lam, sigma, axis, default), token)
            entry = None
            try:
                entry = self.session.prepare_aside(pixels, lam, sigma, channel_axis=axis, default=default,
                                                   cancel=token)
            except Exception:  # cancelled (wished again), or reported by the call that opens the image
                pass
            with self.cond:
                self.preparing, self._running = None, None
                if entry is not None and key in self.held:
                    self.session.adopt(entry)
                    self.held[key] = (pixels, (axis, entry.key))
                self.cond.notify_all()


def _picklable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling, else a ``RuntimeError`` with its message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _connect(port: int) -> tuple:
    """The child's two connections to its parent, each opened with the parent's key."""
    key = bytes.fromhex(os.environ.pop(KEY_VARIABLE))
    ends = []
    for role in (b"m", b"c"):
        end = socket.create_connection(("127.0.0.1", port))
        end.sendall(key + role)
        ends.append(end)
    return Connection(ends[0].detach()), ends[1]


if __name__ == "__main__":  # run by ``python -m``: use the module's own classes, not ``__main__``'s copies
    from napari_deepseg.core.cut import remote

    remote._serve(*remote._connect(int(sys.argv[1])))
