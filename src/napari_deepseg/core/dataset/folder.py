"""A folder of images in, a folder of masks and records out: the status of every image, saved as it goes.

Layout of the output folder (see the user guide's "Dataset records")::

    OUTPUT/
      dataset.json           the status of every image (STATUS_FORMAT, version 1)
      masks/<stem>.png       the masks (PNG for 2-D, 8-bit or 16-bit; TIFF for stacks and TIFF images)
      records/<stem>.json    how each mask was made (steps, engines, plugin version, image hash)
      records/<stem>.strokes-<k>.png|.tif   step k's strokes
      .history/<stem>/       previous versions of each mask (see history.py)
      .napari-deepseg.lock   the session writing to the folder (see lock.py)

With the images in ``OUTPUT/images`` (the output folder is the images
folder's parent) the finished folder is the ``images/`` + ``masks/`` training
layout of :mod:`~napari_deepseg.core.models.training.data` as it is.
"""

from __future__ import annotations

import fnmatch
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..io.atomic import atomic_write_json, atomic_write_labels, remove_stale_temporaries
from ..io.files import LABEL_SUFFIXES, read_image, read_labels
from . import history
from .lock import FolderLock, describe
from .record import (ImageState, array_digest, check_record, file_sha256, record_to_json, step_from_json)

#: image statuses, in the order a summary lists them
STATUSES = ("not-started", "in-progress", "done", "skipped", "needs-review", "unreadable")
NOT_STARTED, IN_PROGRESS, DONE, SKIPPED, NEEDS_REVIEW, UNREADABLE = STATUSES
#: statuses that moving through the folder passes over
PASSED_OVER = (UNREADABLE,)
#: statuses that resuming passes over (the first other image is where work resumes)
FINISHED = (DONE, SKIPPED, UNREADABLE)
#: file suffixes the default pattern lists
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
DEFAULT_PATTERN = ";".join(f"*{s}" for s in IMAGE_SUFFIXES)
STATUS_FILE = "dataset.json"
STATUS_FORMAT = "napari-deepseg dataset"
STATUS_VERSION = 1
MASKS, RECORDS = "masks", "records"


class ReadOnlyError(PermissionError):
    """A write to a folder opened read-only (another session holds it)."""


class UnreadableImage(ValueError):
    """An image of the folder that cannot be read (the item is marked unreadable with the reason)."""


@dataclass
class Item:
    """One image of the folder.

    Attributes
    ----------
    index : int
    path : pathlib.Path
        The image file.
    status : str
        One of :data:`STATUSES`.
    reason : str
        One line saying why (an unreadable file's error, a skipped image's note).
    existing : pathlib.Path, optional
        The existing mask of the same stem to refine from.
    """

    index: int
    path: Path
    status: str = NOT_STARTED
    reason: str = ""
    existing: Optional[Path] = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def stem(self) -> str:
        return self.path.stem


def split_pattern(pattern: Optional[str]) -> list:
    """The glob patterns of a pattern string (``;`` or ``,`` between several).

    Examples
    --------
    >>> split_pattern("*.jpg; *.png")
    ['*.jpg', '*.png']
    >>> split_pattern(None) == split_pattern(DEFAULT_PATTERN)
    True
    """
    parts = [p.strip() for p in (pattern or DEFAULT_PATTERN).replace(",", ";").split(";") if p.strip()]
    if not parts:
        raise ValueError(f"pattern {pattern!r} names no file pattern; use e.g. '*.jpg' or '*.png;*.tif'")
    for p in parts:
        if "/" in p or "\\" in p:
            raise ValueError(f"pattern {p!r} is matched against file names in the image folder: leave out folders")
    return parts


def list_images(folder, pattern: Optional[str] = None) -> list:
    """The files of ``folder`` whose names match ``pattern`` (case-insensitive), sorted by name.

    Hidden files (a leading dot) are left out.

    Raises
    ------
    ValueError
        If ``folder`` is not a folder.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ValueError(f"image folder {folder} does not exist or is not a folder")
    patterns = [p.lower() for p in split_pattern(pattern)]
    return sorted((p for p in folder.iterdir()
                   if p.is_file() and not p.name.startswith(".")
                   and any(fnmatch.fnmatchcase(p.name.lower(), pat) for pat in patterns)), key=lambda p: p.name)


def mask_suffix(image_path, mask) -> str:
    """``.tif`` for stacks, TIFF images and ids above 65535; ``.png`` otherwise.

    Examples
    --------
    >>> mask_suffix("a.jpg", np.zeros((4, 4), np.uint8)), mask_suffix("a.tif", np.zeros((4, 4)))
    ('.png', '.tif')
    >>> mask_suffix("a.png", np.zeros((2, 4, 4))), mask_suffix("a.png", np.full((2, 2), 70000))
    ('.tif', '.tif')
    """
    mask = np.asarray(mask)
    if Path(image_path).suffix.lower() in (".tif", ".tiff") or mask.ndim != 2 or mask.max(initial=0) > 65535:
        return ".tif"
    return ".png"


def image_header(path) -> dict:
    """``{"shape", "dtype"}`` of an image file from its header (the pixels are not decoded).

    Raises
    ------
    ValueError
        If the header cannot be read.
    """
    p = Path(path)
    try:
        if p.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(str(p)) as tif:
                series = tif.series[0]
                return {"shape": [int(s) for s in series.shape], "dtype": str(np.dtype(series.dtype))}
        from PIL import Image

        with Image.open(p) as im:  # the shape read_image gives: palettes become RGB(A), gray + alpha gray
            bands = len(im.getbands())
            if im.mode == "P":
                bands = 4 if "transparency" in im.info else 3
            elif im.mode in ("LA", "La"):
                bands = 1
            shape = [im.height, im.width] + ([bands] if bands > 1 else [])
            dtype = {"I;16": "uint16", "I;16B": "uint16", "I": "int32", "F": "float32", "1": "bool"}.get(im.mode,
                                                                                                       "uint8")
            return {"shape": shape, "dtype": dtype}
    except Exception as exc:  # noqa: BLE001 - any decoder failure is one line
        raise ValueError(f"cannot read the header of {p}: {type(exc).__name__}: {exc}") from None


class DatasetFolder:
    """The images of a folder, the output folder, and the saved state of each image.

    Open it with :meth:`open`. A second :class:`DatasetFolder` on the same output
    folder (in this process or another) is read-only: :attr:`read_only` is set,
    :attr:`message` says who holds the folder, and every write raises
    :class:`ReadOnlyError`.

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / "images").mkdir()
    >>> for k in range(3):
    ...     Image.fromarray(np.full((8, 8), 50 * k, np.uint8)).save(d / "images" / f"im{k}.png")
    >>> folder = DatasetFolder.open(d / "images", d)
    >>> [it.name for it in folder.items], folder.first_not_done()
    (['im0.png', 'im1.png', 'im2.png'], 0)
    >>> _ = folder.save(0, ImageState(mask=np.eye(8, dtype=np.uint8))); folder.set_status(0, "done")
    >>> folder.close()
    >>> again = DatasetFolder.open(d / "images", d)
    >>> again.status(0), again.first_not_done(), int(again.load(0).mask.sum())
    ('done', 1, 8)
    >>> again.close()
    """

    def __init__(self, images, output, pattern: Optional[str], existing, items: list, lock: Optional[FolderLock],
                 saved: dict):
        self.images, self.output, self.pattern, self.existing = images, output, pattern, existing
        self.items = items
        self._lock = lock
        self._extra = saved  # entries of dataset.json for images no longer in the folder: kept as they were
        self._digests: dict = {}  # per item index: digests of what was last saved or loaded
        self._headers: dict = {}  # per item index: the image's shape, dtype and sha256
        self._hashes: dict = {}  # SHA-256 of existing masks by (path, mtime, size)
        self.message = ""
        # saves may come from a worker (autosave) while the main thread sets a status: one at a time
        self._busy = threading.RLock()
        if lock is not None and not lock.held:
            self.message = (f"output folder {output} is open in another session ({describe(lock.holder or {})}): "
                            "opened read-only")

    # -- opening ----------------------------------------------------------------------------------
    @classmethod
    def open(cls, images, output, pattern: Optional[str] = None, existing=None,
             read_only: bool = False) -> "DatasetFolder":
        """Open an image folder and its output folder (created if needed), resuming the saved statuses.

        Parameters
        ----------
        images : path-like
            The folder of images.
        output : path-like
            Where masks, records and ``dataset.json`` go.
        pattern : str, optional
            Glob pattern(s) of the image file names, e.g. ``"*.jpg"`` or
            ``"*.png;*.tif"`` (default: the common image suffixes).
        existing : path-like, optional
            A folder of existing masks (``.png``/``.tif``) to refine, matched by file stem.
        read_only : bool
            Open without taking the lock (nothing can be saved).

        Raises
        ------
        ValueError
            If a folder does not exist, the output is not a folder, the pattern
            matches no file, or ``dataset.json`` is not this plugin's status file.
        """
        images = Path(images).expanduser().resolve()
        paths = list_images(images, pattern)
        if not paths:
            raise ValueError(f"no file in {images} matches the pattern {pattern or DEFAULT_PATTERN!r}")
        output = Path(output).expanduser().resolve()
        if output.exists() and not output.is_dir():
            raise ValueError(f"output folder {output} is a file, not a folder")
        existing_files = _existing_masks(existing)
        output.mkdir(parents=True, exist_ok=True)
        lock = None if read_only else FolderLock(output)
        try:
            saved = _read_status(output / STATUS_FILE)
        except ValueError:
            if lock is not None:
                lock.release()  # not this plugin's folder: leave no lock in it
            raise
        items = _items(paths, saved, existing_files)
        folder = cls(images, output, pattern, None if existing is None else Path(existing).expanduser().resolve(),
                     items, lock, saved)
        if read_only:
            folder.message = f"output folder {output} opened read-only"
        if not folder.read_only:
            kept = output / history.HISTORY
            for sub in (output, output / MASKS, output / RECORDS, *(kept.iterdir() if kept.is_dir() else ())):
                remove_stale_temporaries(sub)
            folder._write_status()
        return folder

    @classmethod
    def reopen(cls, output, images=None, read_only: bool = False) -> "DatasetFolder":
        """Open an output folder with the image folder, pattern and existing masks its ``dataset.json`` names.

        Parameters
        ----------
        output : path-like
            An output folder written by :meth:`open`.
        images : path-like, optional
            Another image folder than the recorded one (the same file names).
        read_only : bool
            See :meth:`open`.

        Raises
        ------
        ValueError
            If ``output`` has no status file or its image folder is gone.
        """
        output = Path(output).expanduser()
        status = output / STATUS_FILE
        if not status.is_file():
            raise ValueError(f"{output} is not a dataset output folder (no {STATUS_FILE} in it)")
        _read_status(status)  # format and version checked
        info = json.loads(status.read_text(encoding="utf-8"))
        if images is None and not info.get("images"):
            raise ValueError(f"{status} names no image folder: give it")
        existing = info.get("existing")
        if existing is not None and not Path(existing).is_dir():
            existing = None  # the masks it started from are gone; the saved masks are all that is needed
        return cls.open(info.get("images") if images is None else images, output, info.get("pattern"), existing,
                        read_only=read_only)

    @property
    def read_only(self) -> bool:
        """Whether this session may not write (another holds the folder, or it was opened read-only)."""
        return self._lock is None or not self._lock.held

    def close(self) -> None:
        """Release the folder's lock (the statuses are already on disk)."""
        if self._lock is not None:
            self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __len__(self) -> int:
        return len(self.items)

    # -- statuses -------------------------------------------------------------------------------
    def _item(self, i) -> Item:
        if not isinstance(i, (int, np.integer)) or not 0 <= int(i) < len(self.items):
            raise ValueError(f"image index must be between 0 and {len(self.items) - 1}, got {i!r}")
        return self.items[int(i)]

    def status(self, i: int) -> str:
        """The status of image ``i`` (one of :data:`STATUSES`)."""
        return self._item(i).status

    def reason(self, i: int) -> str:
        """The one-line reason of image ``i``'s status ('' when there is none)."""
        return self._item(i).reason

    def set_status(self, i: int, status: str, reason: str = "") -> None:
        """Set image ``i``'s status (and its one-line reason) and save the status file.

        Raises
        ------
        ValueError
            For an unknown status or index.
        ReadOnlyError
            If the folder is read-only.
        """
        item = self._item(i)
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
        self._check_writable()
        reason = " ".join(str(reason).split())
        with self._busy:
            if (item.status, item.reason) != (status, reason):
                item.status, item.reason = status, reason
                self._write_status()

    def counts(self) -> dict:
        """``{status: number of images}`` for every status (zeros included).

        Examples
        --------
        >>> sorted(DatasetFolder(None, None, None, None, [Item(0, Path("a.png"), "done")], None, {}).counts().items())[0]
        ('done', 1)
        """
        out = {s: 0 for s in STATUSES}
        for it in self.items:
            out[it.status] += 1
        return out

    def first_not_done(self) -> Optional[int]:
        """The first image to work on (not done, skipped or unreadable); ``None`` when every image is."""
        return next((it.index for it in self.items if it.status not in FINISHED), None)

    def neighbour(self, i: int, step: int = 1) -> Optional[int]:
        """The next (``step=1``) or previous (``-1``) image after ``i`` that is not unreadable; ``None`` at the end."""
        self._item(i)
        if step not in (1, -1):
            raise ValueError(f"step must be 1 (next) or -1 (previous), got {step!r}")
        j = int(i) + step
        while 0 <= j < len(self.items):
            if self.items[j].status not in PASSED_OVER:
                return j
            j += step
        return None

    # -- paths ----------------------------------------------------------------------------------
    def mask_path(self, i: int) -> Optional[Path]:
        """The saved mask of image ``i`` (either suffix), ``None`` when there is none."""
        stem = self._item(i).stem
        return next((p for s in (".png", ".tif", ".tiff") if (p := self.output / MASKS / f"{stem}{s}").is_file()),
                    None)

    def record_path(self, i: int) -> Path:
        """Where image ``i``'s record is (or will be)."""
        return self.output / RECORDS / f"{self._item(i).stem}.json"

    # -- reading --------------------------------------------------------------------------------
    def read_image(self, i: int) -> np.ndarray:
        """The pixels of image ``i``; an unreadable file is marked unreadable (with the reason) first.

        Raises
        ------
        UnreadableImage
            If the file cannot be read (its status is then ``unreadable``).
        """
        item = self._item(i)
        try:
            image = read_image(item.path)
        except (ValueError, OSError, MemoryError) as exc:
            reason = " ".join(str(exc).split())
            if not self.read_only:
                self.set_status(i, UNREADABLE, reason)
            else:
                item.status, item.reason = UNREADABLE, reason
            raise UnreadableImage(reason) from None
        if item.status == UNREADABLE and not self.read_only:  # fixed since: back in the queue
            self.set_status(i, IN_PROGRESS if self.mask_path(i) is not None else NOT_STARTED)
        return image

    def load(self, i: int) -> ImageState:
        """The saved state of image ``i``: its mask, steps (with strokes) and flags, ready to edit.

        An image never saved starts from its existing mask (``start="existing"``)
        when the folder has one, else from nothing (``mask=None``).

        Raises
        ------
        ValueError
            If a saved file or the existing mask cannot be read.
        """
        item = self._item(i)
        mask_file = self.mask_path(i)
        record = self.record_path(i)
        if mask_file is None and not record.is_file():
            if item.existing is None:
                return ImageState()
            return ImageState(mask=read_labels(item.existing), start="existing")
        # a mask with no record was put there by someone else: it is where the image starts from
        state = read_state(record) if record.is_file() else ImageState(start="existing" if item.existing else None)
        state.mask = None if mask_file is None else read_labels(mask_file)
        with self._busy:
            self._remember(i, state)
        return state

    # -- saving ---------------------------------------------------------------------------------
    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyError(self.message or f"output folder {self.output} is read-only")

    def _remember(self, i: int, state: ImageState) -> dict:
        digests = {"mask": None if state.mask is None else array_digest(state.mask),
                   "strokes": [None if s.strokes is None else array_digest(s.strokes) for s in state.steps],
                   "names": self._stroke_names(self._item(i), state)}
        self._digests[int(i)] = digests
        return digests

    def _check_shape(self, i: int, mask) -> None:
        """Refuse a mask whose shape is not the image's, one channel axis (at most 7 channels) aside."""
        shape = self._header(i).get("shape")
        if shape is None or mask is None:
            return
        shape, got = tuple(shape), tuple(np.shape(mask))
        fits = {shape} | {shape[:k] + shape[k + 1:] for k in range(len(shape)) if shape[k] <= 7}
        if got not in fits:
            raise ValueError(f"the mask of {self._item(i).name} has shape {got} but the image is {shape}")

    def save(self, i: int, state: ImageState) -> list:
        """Save image ``i``'s state: its mask, stroke files and record, each atomically; cheap when unchanged.

        Only the files whose content changed since the last save (or load) are
        written, so a widget can call it after every edit. A state without a
        mask saves the prompts alone and leaves the mask on disk as it is. A mask that replaces
        a different one is kept in ``.history/`` first. The status of a
        not-started image becomes in progress.

        Returns
        -------
        list of pathlib.Path
            The files written (empty when nothing changed).

        Raises
        ------
        ReadOnlyError
            If the folder is read-only.
        ValueError
            For a mask or strokes that cannot be written.

        Notes
        -----
        Give arrays that nobody changes while the save runs: saving from a
        worker thread, pass copies of a layer's data (painting changes it in place).
        """
        item = self._item(i)
        self._check_writable()
        if not isinstance(state, ImageState):
            raise TypeError(f"state must be an ImageState, got {type(state).__name__}")
        with self._busy:
            return self._save(i, item, state)

    def _save(self, i: int, item: Item, state: ImageState) -> list:
        before = self._digests.get(int(i))
        if before is None and (self.mask_path(i) is not None or self.record_path(i).is_file()):
            self.load(i)  # the digests of what is on disk (a save after reopening, without a load)
            before = self._digests.get(int(i))
        # no mask: the prompts alone are saved and the mask on disk stays (a later save compares with it)
        now = {"mask": (before or {}).get("mask") if state.mask is None else array_digest(state.mask),
               "strokes": [None if s.strokes is None else array_digest(s.strokes) for s in state.steps]}
        if before is None or now["mask"] != before["mask"]:
            self._check_shape(i, state.mask)
        written = []
        if state.mask is not None and (before is None or now["mask"] != before["mask"]):
            written.append(self._write_mask(item, state.mask))
        mask_file = self.mask_path(i)
        strokes_files = self._stroke_names(item, state)
        for k, (step, name) in enumerate(zip(state.steps, strokes_files)):
            old = before["strokes"][k] if before is not None and k < len(before["strokes"]) else None
            if name is not None and (now["strokes"][k] != old or not (self.output / RECORDS / name).is_file()):
                written.append(atomic_write_labels(self.output / RECORDS / name, step.strokes))
        record = record_to_json(state, self._header(i), None if mask_file is None else
                                mask_file.relative_to(self.output).as_posix(), strokes_files, self._start(item))
        if (before or {}).get("record") != record and _differs(self.record_path(i), record):
            written.append(atomic_write_json(self.record_path(i), record))
        now["record"] = record
        for name in set((before or {}).get("names") or ()) - set(strokes_files) - {None}:
            (self.output / RECORDS / name).unlink(missing_ok=True)  # a step removed since the last save
        now["names"] = strokes_files
        self._digests[int(i)] = now
        if written and item.status == NOT_STARTED:
            self.set_status(i, IN_PROGRESS)
        return written

    def _write_mask(self, item: Item, mask) -> Path:
        """Write the mask atomically, keeping the file it replaces (of either suffix) in ``.history/``."""
        target = self.output / MASKS / f"{item.stem}{mask_suffix(item.path, mask)}"
        others = [p for s in LABEL_SUFFIXES if (p := self.output / MASKS / f"{item.stem}{s}").is_file()]
        for old in others:
            history.keep_version(self.output, item.stem, old)
        path = atomic_write_labels(target, np.asarray(mask))
        for old in others:
            if old != target:
                old.unlink(missing_ok=True)  # the suffix changed (e.g. ids above 65535): its version is kept
        return path

    @staticmethod
    def _stroke_names(item: Item, state: ImageState) -> list:
        names = []
        for k, step in enumerate(state.steps):
            if step.strokes is None:
                names.append(None)
                continue
            suffix = ".tif" if np.ndim(step.strokes) != 2 or np.max(step.strokes, initial=0) > 65535 else ".png"
            names.append(f"{item.stem}.strokes-{k + 1}{suffix}")
        return names

    def _header(self, i: int) -> dict:
        """Name, shape, dtype and SHA-256 of image ``i``'s file (cached while the file is unchanged)."""
        item = self._item(i)
        st = item.path.stat()
        key = (st.st_mtime_ns, st.st_size)
        cached = self._headers.get(int(i))
        if cached is None or cached[0] != key:
            try:
                head = image_header(item.path)
            except ValueError:
                head = {"shape": None, "dtype": None}
            cached = (key, {"name": item.name, **head, "sha256": file_sha256(item.path)})
            self._headers[int(i)] = cached
        return dict(cached[1])

    def _start(self, item: Item) -> Optional[dict]:
        """The existing mask's path and SHA-256 (cached while the file is unchanged)."""
        if item.existing is None:
            return None
        st = item.existing.stat()
        key = (str(item.existing), st.st_mtime_ns, st.st_size)
        if key not in self._hashes:
            self._hashes[key] = file_sha256(item.existing)
        return {"file": str(item.existing), "sha256": self._hashes[key]}

    def _write_status(self) -> None:
        items = dict(self._extra)
        for it in self.items:
            items[it.name] = {"status": it.status, "reason": it.reason}
        atomic_write_json(self.output / STATUS_FILE, {
            "format": STATUS_FORMAT, "version": STATUS_VERSION, "images": str(self.images),
            "pattern": self.pattern, "existing": None if self.existing is None else str(self.existing),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "items": items})


def read_summary(output) -> dict:
    """``{"images": folder, "total": n, "counts": {status: n}}`` of an output folder, from its status file only.

    Raises
    ------
    ValueError
        If ``output`` has no status file, or it is not this plugin's.
    """
    status = Path(output).expanduser() / STATUS_FILE
    if not status.is_file():
        raise ValueError(f"{Path(output)} is not a dataset output folder (no {STATUS_FILE} in it)")
    items = _read_status(status)
    counts = {s: 0 for s in STATUSES}
    for entry in items.values():
        counts[entry.get("status") if entry.get("status") in STATUSES else NOT_STARTED] += 1
    info = json.loads(status.read_text(encoding="utf-8"))
    return {"images": info.get("images"), "total": len(items), "counts": counts,
            "unreadable": {k: str(v.get("reason") or "") for k, v in items.items() if v.get("status") == UNREADABLE}}


def _existing_masks(existing) -> dict:
    """``{stem: path}`` of the label files in the existing-mask folder (empty for ``None``)."""
    if existing is None:
        return {}
    folder = Path(existing).expanduser()
    if not folder.is_dir():
        raise ValueError(f"existing-mask folder {folder} does not exist or is not a folder")
    found = {}
    for p in sorted(folder.iterdir(), key=lambda p: (p.suffix.lower() != ".png", p.name)):
        if p.is_file() and p.suffix.lower() in LABEL_SUFFIXES and not p.name.startswith("."):
            found.setdefault(p.stem, p)
    return found


def _read_status(path: Path) -> dict:
    """The ``items`` of a status file (``{}`` when there is none).

    Raises
    ------
    ValueError
        If the file is not this plugin's status file or is newer than it reads.
    """
    if not path.is_file():
        return {}
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"status file {path} is not valid JSON ({exc}): move it away to start afresh") from None
    if not isinstance(obj, dict) or obj.get("format") != STATUS_FORMAT:
        raise ValueError(f"{path} is not a napari-deepseg dataset status file: choose another output folder")
    if not isinstance(obj.get("version"), int) or obj["version"] > STATUS_VERSION:
        raise ValueError(f"status file {path} has version {obj.get('version')!r}, newer than this plugin reads "
                         f"({STATUS_VERSION}): upgrade napari-deepseg")
    items = obj.get("items") or {}
    return {str(k): v for k, v in items.items() if isinstance(v, dict)}


def _items(paths: list, saved: dict, existing: dict) -> list:
    """The folder's items with their saved statuses; a second file of the same stem is skipped."""
    items, stems = [], {}
    for k, p in enumerate(paths):
        entry = saved.pop(p.name, {})
        status = entry.get("status") if entry.get("status") in STATUSES else NOT_STARTED
        item = Item(k, p, status, str(entry.get("reason") or ""), existing.get(p.stem))
        if p.stem in stems:
            item.status = SKIPPED
            item.reason = f"same file stem as {stems[p.stem]}: masks are named by stem, rename one of them"
        stems.setdefault(p.stem, p.name)
        items.append(item)
    return items


def read_state(record_path) -> ImageState:
    """The steps and flags of a record file, with each step's strokes read (the mask is not read).

    Raises
    ------
    ValueError
        If the record or a strokes file cannot be read.
    """
    record_path = Path(record_path)
    try:
        obj = check_record(json.loads(record_path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read record {record_path}: {exc}") from None
    steps = []
    for s in obj.get("steps") or []:
        name = s.get("strokes") if isinstance(s, dict) else None
        strokes = None if not name else read_labels(record_path.parent / name)
        steps.append(step_from_json(s, strokes))
    image = obj.get("image") if isinstance(obj.get("image"), dict) else None
    return ImageState(mask=None, steps=steps, start="existing" if obj.get("start") else None,
                      edited=bool(obj.get("edited")), image=image)


def _differs(path: Path, record: dict) -> bool:
    """Whether the record on disk differs from ``record`` (ignoring nothing: records carry no timestamps)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")) != record
    except (OSError, ValueError):
        return True
