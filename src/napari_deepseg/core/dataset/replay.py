"""Re-creating a mask from its record with the current engines.

:func:`replay_state` runs an image's steps (:class:`~.record.Step`) in order on
a label image that starts empty (or as the existing mask the image was refined
from):

``scribbles``
    :class:`~napari_deepseg.core.cut.session.SegmentationSession` with the
    step's backbone, ``set_image`` (with its ``channel_axis``), then
    ``segment(strokes, preset, lambda, sigma, iterations)``; 3-D strokes with an
    engine ``"volume": {"mode", "spacing"}`` go to
    :class:`~napari_deepseg.core.cut.volume.VolumeSession`.
    With ``target`` and no ``refine`` (a new object) the objects already in the
    mask are background where nothing is painted
    (:func:`~napari_deepseg.core.prompts.objects.protect_committed`, as the Scribble
    widget cuts the next object); with ``refine`` the strokes are first made by
    :func:`~napari_deepseg.core.prompts.objects.refine_scribbles` around object ``target``.
``clicks``
    A new click method (``engine["method"]``, ``engine["params"]``) set on the
    image; with ``incremental`` every prefix of the clicks that holds a positive
    click is answered in order (the adaptive click radii depend on the previous
    mask), else the whole list at once.
``box``
    The same with ``predict_box(box, clicks[:n], strokes=strokes)`` for ``n``
    from 0 (incremental) or for all the clicks at once.

A step with ``target=0`` replaces the mask (of its ``plane``) with its result;
``target=k`` commits its object as ``k``
(:func:`~napari_deepseg.core.prompts.objects.commit_object`: other objects keep
every pixel), only within ``refine`` pixels of the step's prompts when refining.
A ``pending`` step (prompts not committed: their result is not in the mask) is
passed over. The steps are deterministic, so the same engines give the saved mask bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..cut.session import SegmentationSession
from ..prompts.base import Click, get_click_method
from ..prompts.box import box_from_mask
from ..prompts.clickcut import click_seeds, keep_pieces_touching
from ..prompts.objects import commit_object, deepest_point, protect_committed, refine_region, refine_scribbles
from .record import ImageState, Step

#: outcomes of replaying one image of a folder
OUTCOMES = ("same", "changed", "kept", "failed")


def spatial_shape(image) -> tuple:
    """The label shape of an image (or of an image's shape, a tuple): a trailing colour axis (3 or 4) dropped.

    Examples
    --------
    >>> spatial_shape(np.zeros((5, 6, 3))), spatial_shape(np.zeros((4, 5, 6))), spatial_shape((7, 8, 4))
    ((5, 6), (4, 5, 6), (7, 8))
    """
    shape = tuple(int(n) for n in image) if isinstance(image, (tuple, list)) else np.shape(image)
    return tuple(shape[:-1]) if len(shape) == 3 and shape[-1] in (3, 4) else tuple(shape)


def resize_labels(labels, shape) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D label image to ``shape`` (each new pixel takes the label under its centre).

    Examples
    --------
    >>> resize_labels(np.array([[1, 2], [3, 4]]), (4, 4)).tolist()[1]
    [1, 1, 2, 2]
    """
    labels = np.asarray(labels)
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * labels.shape[0] / shape[0]).astype(int), labels.shape[0] - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * labels.shape[1] / shape[1]).astype(int), labels.shape[1] - 1)
    return labels[np.ix_(rows, cols)]


def rescale_step(step: Step, old_shape, new_shape) -> Step:
    """A 2-D step's prompts moved from an image of ``old_shape`` to one of ``new_shape`` (rows, cols).

    Clicks go to the pixel under their centre's new position, a box grows to
    cover the same area, strokes are resized nearest-neighbour and the refine
    bound is scaled by the geometric mean of the two factors.

    Raises
    ------
    ValueError
        For a step on a stack plane.

    Examples
    --------
    >>> from ..prompts.box import Box
    >>> s = rescale_step(Step("box", box=Box(1, 2, 3, 5), clicks=(Click(2, 3),)), (10, 10), (20, 40))
    >>> s.box, s.clicks
    (Box(r0=2, c0=8, r1=6, c1=20), (Click(row=5, col=14, positive=True),))
    """
    if step.plane:
        raise ValueError("replay at another size is for 2-D images, not stack planes")
    sy, sx = new_shape[0] / old_shape[0], new_shape[1] / old_shape[1]
    clicks = tuple(Click(min(int((c.row + 0.5) * sy), new_shape[0] - 1), min(int((c.col + 0.5) * sx), new_shape[1] - 1),
                         c.positive) for c in step.clicks)
    box = step.box
    if box is not None:
        from ..prompts.box import Box

        box = Box(int(np.floor(box.r0 * sy)), int(np.floor(box.c0 * sx)), min(int(np.ceil(box.r1 * sy)), new_shape[0]),
                  min(int(np.ceil(box.c1 * sx)), new_shape[1]))
    strokes = None if step.strokes is None else resize_labels(step.strokes, new_shape)
    refine = None if step.refine is None else float(step.refine) * float(np.sqrt(sy * sx))
    return Step(step.kind, dict(step.engine), strokes, clicks, box, step.target, refine, (), step.incremental,
                step.pending)


def replay_state(image, state: ImageState, start=None, cancel=None) -> np.ndarray:
    """The mask ``state.steps`` make on ``image`` (see the module docstring).

    Parameters
    ----------
    image : numpy.ndarray
        The image the record was made on (2-D grey or colour, or a stack).
    state : ImageState
        Its steps (and ``start``).
    start : numpy.ndarray, optional
        The existing mask the image started from (needed when ``state.start`` is set).
    cancel : CancelToken, optional

    Returns
    -------
    numpy.ndarray
        The label image.

    Raises
    ------
    ValueError
        For a state with no steps (but pending ones), a missing start mask, or a
        step that does not fit the image.
    """
    steps = replayed_steps(state)
    if not steps:
        raise ValueError("the record has no steps to replay")
    shape = spatial_shape(image)
    if state.start:
        if start is None:
            raise ValueError("the record starts from an existing mask: give it (start=...)")
        labels = np.array(start, copy=True)
        if labels.shape != shape:
            raise ValueError(f"the existing mask is {labels.shape} but the image is {shape}")
    else:
        labels = np.zeros(shape, np.uint8)
    sessions: dict = {}
    for k, step in enumerate(steps):
        plane = tuple(step.plane)
        if len(plane) > max(0, len(shape) - 2):
            raise ValueError(f"step {k + 1} is on plane {plane} but the image has shape {shape}")
        sub = labels[plane] if plane else labels
        result = _run_step(image[plane] if plane else image, step, sub, sessions, cancel)
        if plane:
            labels = labels.astype(np.result_type(labels.dtype, result.dtype), copy=False)
            labels[plane] = result
        else:
            labels = result
    return labels


def replayed_steps(state: ImageState) -> list:
    """The steps a replay runs: all but the pending ones.

    Examples
    --------
    >>> s = [Step("clicks", target=1), Step("clicks", pending=True)]
    >>> [step.target for step in replayed_steps(ImageState(steps=s))]
    [1]
    """
    return [step for step in state.steps if not step.pending]


def _run_step(image, step: Step, labels: np.ndarray, sessions: dict, cancel) -> np.ndarray:
    """The label image after one step (``labels`` is the plane's labels before it)."""
    if step.kind == "scribbles":
        return _scribbles(image, step, labels, sessions, cancel)
    mask = _click_mask(image, step, labels, cancel)
    if step.target == 0:
        return mask.astype(np.uint8)
    return commit_object(labels, mask, step.target)


def _scribble_session(image, engine: dict, sessions: dict) -> SegmentationSession:
    key = repr((engine.get("backbone"), sorted((engine.get("backbone_params") or {}).items()),
                engine.get("channel_axis")))
    if key not in sessions:
        session = SegmentationSession(engine.get("backbone") or "classic", **(engine.get("backbone_params") or {}))
        session.set_image(image, channel_axis=engine.get("channel_axis"))
        sessions[key] = session
    return sessions[key]


def _scribbles(image, step: Step, labels: np.ndarray, sessions: dict, cancel) -> np.ndarray:
    engine = step.engine
    strokes = np.asarray(step.strokes)
    if strokes.shape != labels.shape:
        raise ValueError(f"the step's strokes are {strokes.shape} but the image's labels are {labels.shape}")
    seeds, region = strokes, None
    if step.target and step.refine is not None:
        old = labels == step.target
        seeds, region = refine_scribbles(strokes, old, step.refine, others=(labels != 0) & ~old)
    elif step.target:
        seeds = protect_committed(strokes, labels != 0)
    cut = dict(lam=engine.get("lambda"), sigma=engine.get("sigma"), iterations=int(engine.get("iterations", 1)))
    if strokes.ndim == 3:
        result = _volume(image, seeds, engine, cut, cancel)
    else:
        session = _scribble_session(image, engine, sessions)
        result = session.segment(seeds, preset=engine.get("preset", "default"), cancel=cancel, **cut)
    if step.target == 0:
        return result
    return commit_object(labels, result == 1, step.target, region)


def _volume(image, strokes, engine: dict, cut: dict, cancel) -> np.ndarray:
    from ..cut.volume import VolumeSession

    volume = engine.get("volume") or {}
    session = VolumeSession()
    session.set_image(image, spacing=volume.get("spacing"))
    return session.segment(strokes, mode=volume.get("mode", "3d"), cancel=cancel, **cut)


def _click_mask(image, step: Step, labels: np.ndarray, cancel) -> np.ndarray:
    """The boolean object of a clicks or box step (refining object ``target`` when ``refine`` is set)."""
    method = get_click_method(step.engine.get("method", "graphcut"), **(step.engine.get("params") or {}))
    method.set_image(image, cancel=cancel)
    clicks, box = list(step.clicks), step.box
    refine = region = None
    if step.target and step.refine is not None:
        refine = labels == step.target
        region = refine_region(labels.shape, [(c.row, c.col) for c in clicks], box, step.refine)
        if box is None:  # as the Point prompts widget refines: the old object's box and a click at its deepest point
            box = box_from_mask(refine | region, 0.1)
            if not any(c.positive for c in clicks):
                clicks = [Click(*deepest_point(refine), True)] + clicks
    if box is not None:
        prefixes = range(len(clicks) + 1) if step.incremental else [len(clicks)]
        extra = {} if step.strokes is None else {"strokes": step.strokes}
        for n in prefixes:
            mask = method.predict_box(box, clicks[:n], cancel=cancel, **extra)
    else:
        prefixes = [n for n in range(1, len(clicks) + 1) if any(c.positive for c in clicks[:n])]
        for n in (prefixes if step.incremental else [len(clicks)]):
            mask = method.predict(clicks[:n], cancel=cancel)
    mask = np.asarray(mask, bool)
    if refine is not None:
        mask = np.where(region, mask, refine)
        mask = keep_pieces_touching(mask, refine | click_seeds([c for c in step.clicks if c.positive],
                                                               mask.shape, 0).astype(bool))
    return mask


@dataclass
class ReplayOutcome:
    """What replaying one image of a folder did.

    Attributes
    ----------
    index : int
    name : str
    outcome : str
        ``same`` (the replayed mask equals the saved one), ``changed`` (written),
        ``kept`` (nothing to replay: no steps, or edited by hand), ``failed``.
    reason : str
        One line for ``kept`` and ``failed``.
    """

    index: int
    name: str
    outcome: str
    reason: str = ""


def replay_folder(folder, indices=None, write: bool = True, progress=None, cancel=None) -> list:
    """Replay every image of a :class:`~.folder.DatasetFolder` that has a record; write the masks that change.

    A 2-D image whose size differs from the recorded one (the folder reopened
    on the originals of a shrunk copy that was annotated:
    ``DatasetFolder.reopen(output, images=originals)``) is replayed with its
    prompts rescaled (:func:`rescale_step`), and saved with them, so that the
    record matches its new image.

    Parameters
    ----------
    folder : DatasetFolder
        Opened writable (unless ``write=False``).
    indices : iterable of int, optional
        The images to replay (default: all).
    write : bool
        Write changed masks (atomically, the old one kept in ``.history/``).
    progress : callable, optional
        ``progress(done, total, name)`` after each image.

    Returns
    -------
    list of ReplayOutcome
    """
    from ..io.files import read_labels
    from ..utils.progress import check

    todo = [i for i in (range(len(folder)) if indices is None else indices) if folder.record_path(i).is_file()]
    out = []
    for n, i in enumerate(todo):
        check(cancel)
        item = folder.items[i]
        try:
            state = folder.load(i)
            if state.edited or not replayed_steps(state):
                why = "edited by hand" if state.edited else "no prompts recorded"
                out.append(ReplayOutcome(i, item.name, "kept", why))
                continue
            image = folder.read_image(i)
            start = read_labels(item.existing) if state.start and item.existing is not None else None
            old, new = spatial_shape((state.image or {}).get("shape") or image.shape), spatial_shape(image)
            reason = ""
            if old != new:
                if len(old) != 2 or len(new) != 2:
                    raise ValueError(f"the image is {new} but the record was made on {old}: replay at another size "
                                     "is for 2-D images")
                state.steps = [rescale_step(s, old, new) for s in state.steps]
                start = None if start is None else resize_labels(start, new)
                reason = f"rescaled from {old[1]}x{old[0]} to {new[1]}x{new[0]}"
            mask = replay_state(image, state, start=start, cancel=cancel)
            same = state.mask is not None and state.mask.shape == mask.shape and np.array_equal(state.mask, mask)
            if not same and write:
                folder.save(i, ImageState(mask=mask, steps=state.steps, start=state.start, edited=False))
            out.append(ReplayOutcome(i, item.name, "same" if same else "changed", reason))
        except (ValueError, TypeError, KeyError, RuntimeError, OSError, MemoryError) as exc:
            out.append(ReplayOutcome(i, item.name, "failed", " ".join(str(exc).split())))
        if progress is not None:
            progress(n + 1, len(todo), item.name)
    return out
