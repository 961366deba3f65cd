"""Features on disk: a zarr store of :class:`~napari_deepseg.core.features.FeatureMap` reused across sessions.

One store (a ``.zarr`` folder) holds the features of any number of images, one
group per key. The key is the session's data signature of the image (a
content hash read strip by strip, so lazy arrays are hashed tile by tile), the
backbone name and its parameters (``extractor.params()``), plus
:data:`FORMAT_VERSION` and the size and modification time of any weights file
the parameters name. A different image, backbone, parameter or weights file
therefore finds no entry (a miss, never someone else's features). Each entry
holds the features at their native stride, chunked and compressed (zarr's
default codec), with ``stride``, ``image_shape`` and the key in its attributes;
an entry whose attributes do not match what is asked for (an interrupted
write, a foreign group) is a miss too.

Examples
--------
>>> import tempfile, numpy as np
>>> from napari_deepseg.core.features import FeatureMap
>>> store = tempfile.mkdtemp() + "/features.zarr"
>>> fm = FeatureMap(np.ones((4, 5, 2), np.float32), 8, (30, 40))
>>> _ = save_features(store, "abc", fm)
>>> load_features(store, "abc").image_shape, load_features(store, "other") is None
((30, 40), True)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..features.base import FeatureMap

#: bumped whenever the features a backbone computes for the same parameters change
FORMAT_VERSION = 1
#: name of the store created inside a folder that is not itself a ``.zarr`` store
DEFAULT_STORE = "napari-deepseg-features.zarr"
#: chunk side (grid cells) of the stored arrays
CHUNK = 256


def store_path(path) -> Path:
    """The zarr store for ``path``: ``path`` itself if it ends in ``.zarr``, else ``path / DEFAULT_STORE``.

    Raises
    ------
    TypeError
        If ``path`` is not a path.
    ValueError
        If it names an existing file (not a folder).

    Examples
    --------
    >>> store_path("a/features.zarr").name, store_path("cache").name
    ('features.zarr', 'napari-deepseg-features.zarr')
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise TypeError(f"feature_cache must be a folder or a .zarr path, got {path!r}")
    p = Path(path).expanduser()
    store = p if p.suffix == ".zarr" else p / DEFAULT_STORE
    if store.exists() and not store.is_dir():
        raise ValueError(f"feature cache {store} is a file, not a zarr store (a folder); choose another path")
    if p.exists() and not p.is_dir():
        raise ValueError(f"feature cache {p} is a file; give a folder or a path ending in .zarr")
    return store


def disk_key(image_key: str, params: dict) -> str:
    """The store's key: the session's ``image_key`` + :data:`FORMAT_VERSION` + weights files' size and time.

    Examples
    --------
    >>> disk_key("abc", {}) == disk_key("abc", {}), disk_key("abc", {}) == disk_key("abd", {})
    (True, False)
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image_key}|v{FORMAT_VERSION}".encode())
    for name, value in sorted(params.items()):
        if isinstance(value, (str, os.PathLike)) and str(value) and Path(value).is_file():
            st = Path(value).stat()
            h.update(f"|{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def _open(path, mode: str):
    import zarr

    store = store_path(path)
    try:
        return zarr.open_group(str(store), mode=mode)
    except Exception as exc:  # noqa: BLE001 - zarr's errors vary by version; one clear line
        raise ValueError(f"feature cache {store} is not a readable zarr store: {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:160]}") from None


def load_features(path, key: str, image_shape: Optional[tuple] = None) -> Optional[FeatureMap]:
    """The features stored under ``key``, or ``None`` (a miss).

    Parameters
    ----------
    path : path-like
        The store (see :func:`store_path`); a missing store is a miss.
    key : str
        The entry's key (:func:`disk_key`).
    image_shape : tuple of int, optional
        ``(rows, cols)`` the features must cover; another shape is a miss.

    Raises
    ------
    ValueError
        If ``path`` exists but is not a zarr store.
    """
    if not store_path(path).exists():
        return None
    group = _open(path, "r")
    if key not in group:
        return None
    entry = group[key]
    attrs = dict(entry.attrs)
    if attrs.get("key") != key or attrs.get("version") != FORMAT_VERSION or not attrs.get("complete"):
        return None
    shape = tuple(int(v) for v in attrs.get("image_shape", ()))
    stride = int(attrs.get("stride", 0))
    if image_shape is not None and shape != tuple(image_shape):
        return None
    if "data" not in entry or stride < 1 or len(shape) != 2:
        return None
    data = entry["data"]
    rows, cols = -(-shape[0] // stride), -(-shape[1] // stride)
    if len(data.shape) != 3 or data.shape[0] < rows or data.shape[1] < cols:
        return None
    return FeatureMap(np.ascontiguousarray(data[...], dtype=np.float32), stride, shape)


def save_features(path, key: str, features: FeatureMap, info: Optional[dict] = None) -> Path:
    """Store ``features`` under ``key`` (replacing an entry of that key); returns the store's path.

    The data are written first and the entry is marked complete last, so an
    interrupted write is a miss, not a partial read.

    Parameters
    ----------
    path : path-like
        The store (created if missing).
    key : str
        The entry's key (:func:`disk_key`).
    features : FeatureMap
    info : dict, optional
        JSON-serialisable description kept in the attributes (backbone, parameters).
    """
    group = _open(path, "a")
    if key in group:
        del group[key]
    entry = group.create_group(key)
    data = np.ascontiguousarray(features.data, dtype=np.float32)
    chunks = (min(CHUNK, data.shape[0]), min(CHUNK, data.shape[1]), data.shape[2])
    arr = entry.create_array("data", shape=data.shape, dtype="float32", chunks=chunks)
    arr[...] = data
    entry.attrs.update({
        "key": key,
        "version": FORMAT_VERSION,
        "stride": int(features.stride),
        "image_shape": [int(v) for v in features.image_shape],
        "info": _jsonable(info or {}),
        "complete": True,
    })
    return store_path(path)


def cached_features(path, key: str, image_shape, compute: Callable[[], FeatureMap],
                    info: Optional[dict] = None) -> FeatureMap:
    """Load the features under ``key`` from the store, or ``compute()`` and store them.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> store = tempfile.mkdtemp() + "/f.zarr"
    >>> calls = []
    >>> def compute():
    ...     calls.append(1)
    ...     return FeatureMap(np.zeros((2, 2, 1), np.float32), 1, (2, 2))
    >>> _ = cached_features(store, "k", (2, 2), compute); _ = cached_features(store, "k", (2, 2), compute)
    >>> len(calls)
    1
    """
    found = load_features(path, key, image_shape)
    if found is not None:
        return found
    features = compute()
    save_features(path, key, features, info)
    return features


def _jsonable(value):
    """``value`` with tuples as lists and anything unusual as its string."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
