"""One writer per output folder: a lock file naming the process that holds it.

The lock is ``<output>/.napari-deepseg.lock``, a small JSON file
``{"pid": ..., "host": ..., "token": ..., "started": ...}`` created
exclusively (a hard link of a complete temporary file, so it is never seen half
written). A second session finds it and opens the folder read-only. A lock
whose process is gone (same host, no such pid, or a pid started after the lock
was taken) is stale and taken over; so is a lock of this very process whose
:class:`FolderLock` was released or garbage-collected.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
import weakref
from pathlib import Path
from typing import Optional

from ..io.atomic import temporary_name

#: the lock file's name in the output folder
LOCK_NAME = ".napari-deepseg.lock"
#: tokens of the locks this process holds now (a lock with our pid but another token is stale)
_LIVE: "weakref.WeakValueDictionary[str, FolderLock]" = weakref.WeakValueDictionary()


def _pid_alive(pid: int, since: Optional[float] = None) -> bool:
    """Whether process ``pid`` runs (and, where psutil can tell, was started by ``since``)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil ships with napari's stack
        psutil = None
    if psutil is not None:
        try:
            proc = psutil.Process(pid)
            if since is not None and proc.create_time() > since + 1.0:
                return False  # the pid was reused by a younger process
            return proc.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
        except psutil.Error:
            return True
    if os.name == "nt":  # pragma: no cover - os.kill would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_lock(path) -> Optional[dict]:
    """The lock file's content, ``None`` when there is none; ``{}`` when it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        info = json.loads(text)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def is_stale(info: dict) -> bool:
    """Whether a lock's holder is gone (see the module docstring); an unreadable lock is stale.

    Examples
    --------
    >>> is_stale({})
    True
    >>> is_stale({"pid": os.getpid(), "host": socket.gethostname(), "token": "not-ours"})
    True
    """
    try:
        pid, host, token = int(info["pid"]), str(info["host"]), str(info["token"])
    except (KeyError, TypeError, ValueError):
        return True
    if host != socket.gethostname():
        return False  # another machine's process: cannot be checked, so it is respected
    if pid == os.getpid():
        return token not in _LIVE
    since = info.get("started")
    return not _pid_alive(pid, float(since) if isinstance(since, (int, float)) else None)


def describe(info: dict) -> str:
    """A short description of a lock's holder for messages: ``pid 123 on host since 06:10``."""
    started = info.get("started")
    when = time.strftime(" since %Y-%m-%d %H:%M", time.localtime(started)) if isinstance(started, (int, float)) else ""
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')}{when}"


class FolderLock:
    """The lock on one output folder, held by this process until :meth:`release`.

    Parameters
    ----------
    folder : path-like
        The output folder (must exist).

    Attributes
    ----------
    held : bool
        Whether this process holds the lock.
    holder : dict or None
        When not held: the other holder's lock content (see :func:`describe`).

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> first, second = FolderLock(d), FolderLock(d)
    >>> first.held, second.held
    (True, False)
    >>> first.release(); FolderLock(d).held
    True
    """

    def __init__(self, folder):
        self.path = Path(folder) / LOCK_NAME
        self.token = secrets.token_hex(8)
        self.holder: Optional[dict] = None
        self.held = self._acquire()

    def _acquire(self) -> bool:
        for _ in range(3):
            if self._create():
                _LIVE[self.token] = self
                return True
            info = read_lock(self.path)
            if info is None:
                continue  # released meanwhile: try again
            if not is_stale(info):
                self.holder = info
                return False
            self.path.unlink(missing_ok=True)  # a dead holder's lock: take it over
        self.holder = read_lock(self.path) or {}
        return False

    def _create(self) -> bool:
        """Create the lock file exclusively, whole (a temporary file hard-linked to the lock's name)."""
        info = {"pid": os.getpid(), "host": socket.gethostname(), "token": self.token, "started": time.time()}
        tmp = temporary_name(self.path)
        tmp.write_text(json.dumps(info), encoding="utf-8")
        try:
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                return False
            except OSError:  # no hard links here (some network or FAT folders): exclusive create
                try:
                    fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    return False
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(json.dumps(info))
        finally:
            tmp.unlink(missing_ok=True)
        return (read_lock(self.path) or {}).get("token") == self.token  # a racing taker may have won

    def release(self) -> None:
        """Remove the lock file if this process holds it (safe to call twice)."""
        if self.held and (read_lock(self.path) or {}).get("token") == self.token:
            self.path.unlink(missing_ok=True)
        self.held = False
        _LIVE.pop(self.token, None)

    def __del__(self):  # pragma: no cover - best effort at interpreter exit
        try:
            self.release()
        except Exception:  # noqa: BLE001
            pass
