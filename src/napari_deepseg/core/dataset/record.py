"""How a mask was made: the prompts and engine of each step, as JSON plus stroke label images.

An image's state (:class:`ImageState`) is its mask and the list of steps that
made it (:class:`Step`). A step is one prompt set answered by one engine:

* ``scribbles``: a stroke label image cut by
  :class:`~napari_deepseg.core.cut.session.SegmentationSession` (its engine
  dict: ``backbone``, ``backbone_params``, ``preset``, ``lambda``, ``sigma``,
  ``iterations``);
* ``clicks``: clicks answered by a click method's ``predict`` (its engine dict:
  ``method`` and ``params``);
* ``box``: a box (with correcting clicks and strokes) answered by the click
  method's ``predict_box``.

``target`` says where a step's result goes: 0 = it *is* the whole mask (the
scribble widget's result layer, classes kept); ``k > 0`` = its object is
committed as instance ``k``
(:func:`~napari_deepseg.core.prompts.objects.commit_object`: other objects
untouched), within ``refine`` pixels of the step's prompts when
``refine`` is set (refining object ``k``). A ``pending`` step holds prompts
that were not committed (the Dataset dock's current strokes or clicks while the
mask is the committed objects): its result is not in the mask, a replay passes
over it, and a reader restores it as the prompts being edited. The on-disk
format is described in the user guide's "Dataset records" section and by
:func:`record_to_json`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..prompts.base import Click
from ..prompts.box import Box

#: the record format's name and version (a reader refuses a newer version); version 2 added ``pending``
#: (version-1 records read as they did: no step pending)
RECORD_FORMAT = "napari-deepseg record"
RECORD_VERSION = 2
#: step kinds
STEP_KINDS = ("scribbles", "clicks", "box")


@dataclass
class Step:
    """One prompt set and the engine that answered it.

    Attributes
    ----------
    kind : {"scribbles", "clicks", "box"}
    engine : dict
        JSON-able engine description (see the module docstring and
        :func:`scribble_engine` / :func:`click_engine`).
    strokes : numpy.ndarray, optional
        Stroke labels (0 none, 1 object, 2 background, ``k`` class ``k``) of the
        image's spatial shape (of one plane for a step on a stack plane).
    clicks : tuple of Click
        In the order they were made.
    box : Box, optional
    target : int
        0: the result is the whole mask (of ``plane``); ``k``: committed as object ``k``.
    refine : float, optional
        With ``target > 0``: the result may change object ``k`` only within this
        many pixels of the step's prompts (``None``: anywhere).
    plane : tuple of int
        Leading indices of the plane of a stack the step was made on (``()`` for 2-D).
    incremental : bool
        Clicks were added one at a time (each answered before the next): a
        replay answers the prefixes in order, as the click engines' adaptive
        radii depend on it.
    pending : bool
        Prompts not committed yet: their result is not in the mask (which is the
        committed objects); a replay passes over the step.
    """

    kind: str
    engine: dict = field(default_factory=dict)
    strokes: Optional[np.ndarray] = None
    clicks: tuple = ()
    box: Optional[Box] = None
    target: int = 0
    refine: Optional[float] = None
    plane: tuple = ()
    incremental: bool = True
    pending: bool = False

    def __post_init__(self):
        if self.kind not in STEP_KINDS:
            raise ValueError(f"step kind must be one of {', '.join(STEP_KINDS)}; got {self.kind!r}")
        if int(self.target) < 0:
            raise ValueError(f"step target must be 0 (the whole mask) or an object id >= 1, got {self.target!r}")
        if self.kind == "box" and self.box is None:
            raise ValueError("a box step needs its box")
        if self.kind == "scribbles" and self.strokes is None:
            raise ValueError("a scribbles step needs its strokes")
        self.clicks = tuple(self.clicks)
        self.plane = tuple(int(p) for p in self.plane)
        self.target = int(self.target)
        self.pending = bool(self.pending)


@dataclass
class ImageState:
    """Everything saved for one image: its mask and how it was made.

    Attributes
    ----------
    mask : numpy.ndarray, optional
        The label image (instance ids or classes kept); ``None``: nothing yet.
    steps : list of Step
        How the mask was made, in order (see the module docstring).
    start : str, optional
        ``"existing"`` when the first result was the existing mask being refined.
    edited : bool
        The mask holds edits no step reproduces (painted by hand): a replay keeps it.
    image : dict, optional
        The recorded image's ``name``, ``shape``, ``dtype`` and ``sha256``
        (filled when a record is loaded; a save measures the file itself).
    """

    mask: Optional[np.ndarray] = None
    steps: list = field(default_factory=list)
    start: Optional[str] = None
    edited: bool = False
    image: Optional[dict] = None

    @property
    def strokes(self) -> Optional[np.ndarray]:
        """The strokes of the last step (the ones being edited), ``None`` if it has none."""
        return self.steps[-1].strokes if self.steps else None

    @property
    def clicks(self) -> tuple:
        """The clicks of the last step."""
        return self.steps[-1].clicks if self.steps else ()

    @property
    def box(self) -> Optional[Box]:
        """The box of the last step."""
        return self.steps[-1].box if self.steps else None


def scribble_engine(session=None, preset: str = "default", lam=None, sigma=None, iterations: int = 1,
                    channel_axis=None, backbone: Optional[str] = None, backbone_params: Optional[dict] = None) -> dict:
    """The engine dict of a scribbles step: the session's backbone and the cut's parameters.

    Parameters
    ----------
    session : SegmentationSession, optional
        Its backbone name and parameters are read (or give ``backbone``/``backbone_params``).
    preset, lam, sigma, iterations, channel_axis
        As given to :meth:`~napari_deepseg.core.cut.session.SegmentationSession.segment`
        (``None``: the preset's default / estimated).

    Examples
    --------
    >>> scribble_engine(backbone="classic")["backbone"]
    'classic'
    """
    if session is not None:
        backbone, backbone_params = session.backbone, _jsonable(session.extractor.params())
    return {"backbone": backbone or "classic", "backbone_params": _jsonable(backbone_params or {}),
            "preset": preset, "lambda": None if lam is None else float(lam),
            "sigma": None if sigma is None else float(sigma), "iterations": int(iterations),
            "channel_axis": None if channel_axis is None else int(channel_axis)}


def click_engine(method: str = "graphcut", **params) -> dict:
    """The engine dict of a clicks or box step: the click method's registry name and constructor parameters.

    Examples
    --------
    >>> click_engine("graphcut", features="classic")
    {'method': 'graphcut', 'params': {'features': 'classic'}}
    """
    return {"method": str(method), "params": _jsonable(params)}


def _jsonable(value):
    """``value`` with tuples as lists and numpy scalars as Python numbers (JSON-able), or a ValueError."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Path):
        return str(value)
    raise ValueError(f"engine parameter {value!r} ({type(value).__name__}) cannot be saved in a record")


def array_digest(array) -> str:
    """A short content hash of a label array (shape, values): what :meth:`DatasetFolder.save` compares.

    Integer labels are hashed in the dtype a file stores them in (uint8 up to
    255, uint16 up to 65535), so a mask read back from its PNG has the digest
    of the int32 layer data it was saved from.

    Examples
    --------
    >>> array_digest(np.zeros(3)) == array_digest(np.zeros(3)), array_digest(np.zeros(3)) == array_digest(np.ones(3))
    (True, False)
    >>> array_digest(np.array([1, 300], np.int32)) == array_digest(np.array([1, 300], np.uint16))
    True
    """
    arr = np.asarray(array)
    if arr.dtype.kind in "biu" and arr.size:
        low, high = int(arr.min()), int(arr.max())
        if low >= 0 and high <= 65535:
            arr = arr.astype(np.uint8 if high <= 255 else np.uint16, copy=False)
    arr = np.ascontiguousarray(arr)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{arr.shape}{arr.dtype.str}".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes (what ``sha256sum`` prints)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def step_to_json(step: Step, strokes_file: Optional[str]) -> dict:
    """One step as JSON (the strokes by their file name, relative to the record's folder)."""
    return {
        "kind": step.kind,
        "engine": _jsonable(step.engine),
        "strokes": strokes_file,
        "clicks": [{"row": int(c.row), "col": int(c.col), "positive": bool(c.positive)} for c in step.clicks],
        "box": None if step.box is None else [int(step.box.r0), int(step.box.c0), int(step.box.r1), int(step.box.c1)],
        "target": step.target,
        "refine": None if step.refine is None else float(step.refine),
        "plane": list(step.plane),
        "incremental": bool(step.incremental),
        "pending": bool(step.pending),
    }


def step_from_json(obj: dict, strokes: Optional[np.ndarray]) -> Step:
    """A :class:`Step` from its JSON (and its strokes, read by the caller).

    Raises
    ------
    ValueError
        For a step that is not a JSON object or lacks what its kind needs.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"a record step must be a JSON object, got {type(obj).__name__}")
    try:
        clicks = tuple(Click(int(c["row"]), int(c["col"]), bool(c.get("positive", True)))
                       for c in obj.get("clicks") or [])
        box = obj.get("box")
        return Step(kind=str(obj["kind"]), engine=dict(obj.get("engine") or {}), strokes=strokes, clicks=clicks,
                    box=None if box is None else Box(*(int(v) for v in box)), target=int(obj.get("target", 0)),
                    refine=None if obj.get("refine") is None else float(obj["refine"]),
                    plane=tuple(obj.get("plane") or ()), incremental=bool(obj.get("incremental", True)),
                    pending=bool(obj.get("pending", False)))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"a record step is incomplete or malformed ({type(exc).__name__}: {exc})") from None


def record_to_json(state: ImageState, image: dict, mask_file: Optional[str], strokes_files: list,
                   start: Optional[dict] = None) -> dict:
    """The record of one image as a JSON-able dict (format version :data:`RECORD_VERSION`).

    Parameters
    ----------
    state : ImageState
    image : dict
        ``{"name", "shape", "dtype", "sha256"}`` of the image file.
    mask_file : str, optional
        The mask's path relative to the output folder.
    strokes_files : list of str or None
        Per step, its strokes file's name (in the records folder) or ``None``.
    start : dict, optional
        ``{"file", "sha256"}`` of the existing mask the image was refined from.

    Examples
    --------
    >>> rec = record_to_json(ImageState(), {"name": "a.png"}, None, [])
    >>> rec["format"], rec["version"], rec["steps"]
    ('napari-deepseg record', 2, [])
    """
    from ... import __version__

    return {
        "format": RECORD_FORMAT,
        "version": RECORD_VERSION,
        "plugin_version": __version__,
        "image": image,
        "mask": mask_file,
        "start": start if state.start else None,
        "edited": bool(state.edited),
        "steps": [step_to_json(s, f) for s, f in zip(state.steps, strokes_files)],
    }


def check_record(obj) -> dict:
    """Validate a record's header (format name, version); return it.

    Raises
    ------
    ValueError
        For another format or a newer version than this plugin reads.

    Examples
    --------
    >>> check_record({"format": "napari-deepseg record", "version": 1})["version"]  # older versions read as ever
    1
    >>> check_record({"format": "other"})
    Traceback (most recent call last):
    ...
    ValueError: not a napari-deepseg record (format 'other')
    """
    if not isinstance(obj, dict) or obj.get("format") != RECORD_FORMAT:
        fmt = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(f"not a napari-deepseg record (format {fmt!r})")
    version = obj.get("version")
    if not isinstance(version, int) or version > RECORD_VERSION:
        raise ValueError(f"record version {version!r} is newer than this plugin reads ({RECORD_VERSION}): "
                         "upgrade napari-deepseg")
    return obj
