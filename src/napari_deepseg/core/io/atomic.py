"""Writes that a killed process cannot leave half done: a temporary file in the same folder, fsync, rename.

Every function here writes to a hidden temporary name beside the target
(``.<name>.<random>.tmp<suffix>``), flushes it to the disk, and renames it over
the target with :func:`os.replace`, which is atomic on POSIX and Windows: a
process killed at any moment (``kill -9``, a power cut after the folder's
entry is synced) leaves either the old file or the new one, never a broken
one. A temporary file left behind by a killed writer starts with a dot, so
folder listings of the plugin (and :mod:`~napari_deepseg.core.models.training.data`)
ignore it; :func:`remove_stale_temporaries` deletes them.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Callable

#: the marker every temporary name carries (``.<name>.<random>.tmp<suffix>``)
TMP_MARK = ".tmp"


def temporary_name(path) -> Path:
    """A fresh hidden temporary path beside ``path`` that keeps its suffix (writers pick the format by it).

    Examples
    --------
    >>> p = temporary_name("/data/out/masks/cat.png")
    >>> p.parent.as_posix(), p.name.startswith(".cat.png."), p.suffix
    ('/data/out/masks', True, '.png')
    """
    p = Path(path)
    return p.with_name(f".{p.name}.{secrets.token_hex(4)}{TMP_MARK}{p.suffix}")


def is_temporary(path) -> bool:
    """Whether ``path`` is a temporary name made by :func:`temporary_name`.

    Examples
    --------
    >>> is_temporary(temporary_name("a/cat.png")), is_temporary("a/cat.png")
    (True, False)
    """
    name = Path(path).name
    return name.startswith(".") and TMP_MARK in name


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder) -> None:
    """Flush a folder's entries (a rename into it) to the disk; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write: Callable[[Path], object]) -> Path:
    """Write ``path`` through ``write(tmp_path)`` on a temporary name, then rename it into place.

    Parameters
    ----------
    path : path-like
        The file to create or replace; its folder is created as needed.
    write : callable
        Writes the whole file at the path it is given (same suffix as ``path``).

    Returns
    -------
    pathlib.Path
        ``path``.

    Notes
    -----
    On any error the temporary file is removed and ``path`` is untouched.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = atomic_write(d / "a.txt", lambda p: p.write_text("hello"))
    >>> (d / "a.txt").read_text(), sorted(x.name for x in d.iterdir())
    ('hello', ['a.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        write(tmp)
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda p: p.write_bytes(data))


def atomic_write_json(path, obj) -> Path:
    """Write ``obj`` as indented UTF-8 JSON to ``path`` atomically (see :func:`atomic_write`).

    Examples
    --------
    >>> import tempfile
    >>> p = atomic_write_json(Path(tempfile.mkdtemp()) / "s.json", {"version": 1})
    >>> json.loads(p.read_text())
    {'version': 1}
    """
    text = json.dumps(obj, indent=1, sort_keys=False) + "\n"
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write_labels(path, labels) -> Path:
    """:func:`~napari_deepseg.core.io.files.write_labels` (PNG 8/16-bit or TIFF), atomically."""
    from .files import write_labels

    return atomic_write(path, lambda p: write_labels(p, labels))


def remove_stale_temporaries(folder) -> list:
    """Delete the temporary files that killed writers left in ``folder`` (not recursive); returns their paths.

    Call it only while no other process writes to the folder (the dataset
    folder's lock says so).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    gone = [p for p in folder.iterdir() if p.is_file() and is_temporary(p)]
    for p in gone:
        p.unlink(missing_ok=True)
    return gone
