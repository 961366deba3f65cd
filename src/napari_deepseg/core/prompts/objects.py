"""Objects one by one: ids, commits that protect what is committed, and the region a refinement may change.

Pure functions on label arrays shared by the widgets (no napari, no Qt):

* :func:`next_free_id` - the id a new object gets in an instance Labels layer;
* :func:`object_mask` - an existing object's mask, validating the id (refine);
* :func:`commit_object` - write an object into an instance label image without
  touching any other object's pixels (new objects take free pixels only; a
  refined object may also only change inside a region);
* :func:`protect_committed` - strokes with the committed objects as background
  for the next object's cut (unless painted over on purpose);
* :func:`refine_region` / :func:`default_refine_bound` - the pixels within a
  distance bound of new input (clicks, a box, strokes) where a refinement may act;
* :func:`refine_scribbles` - the strokes of a scribble cut that refines one
  object: the old object and background fixed outside that region;
* :func:`deepest_point` - an object's most interior pixel (its implicit click).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from scipy import ndimage

#: refine region: this fraction of the image's shorter side, at least :data:`MIN_REFINE_BOUND` pixels
REFINE_BOUND_FRACTION = 0.10
MIN_REFINE_BOUND = 5


def next_free_id(labels) -> int:
    """The id a new object gets: one more than the largest id present (1 for an empty image).

    Examples
    --------
    >>> next_free_id(np.array([[0, 3], [1, 0]]))
    4
    >>> next_free_id(np.zeros((2, 2), np.uint8))
    1
    """
    labels = np.asarray(labels)
    return int(labels.max()) + 1 if labels.size else 1


def object_mask(labels, label_id: int) -> np.ndarray:
    """Boolean mask of object ``label_id`` in an instance label image.

    Raises
    ------
    ValueError
        For label 0 (the background, not an object) or an id no pixel holds.

    Examples
    --------
    >>> object_mask(np.array([[0, 2], [2, 1]]), 2).tolist()
    [[False, True], [True, False]]
    """
    labels = np.asarray(labels)
    label_id = int(label_id)
    if label_id == 0:
        raise ValueError("label 0 is the background, not an object: pick a pixel of the object to refine")
    mask = labels == label_id
    if not mask.any():
        raise ValueError(f"no object with label {label_id} in this layer: pick a pixel of an existing object")
    return mask


def commit_object(labels, mask, label_id: int, region: Optional[np.ndarray] = None) -> np.ndarray:
    """A copy of ``labels`` with object ``label_id`` set to ``mask``, other objects untouched.

    Inside ``region`` (everywhere when ``None``) a pixel becomes ``label_id``
    where ``mask`` is set and the pixel is free (0) or already ``label_id``,
    and becomes 0 where it held ``label_id`` and ``mask`` is not set. Pixels of
    other ids and every pixel outside ``region`` keep their value bit for bit.

    Parameters
    ----------
    labels : numpy.ndarray of int
        Instance label image.
    mask : numpy.ndarray of bool
        The object, same shape.
    label_id : int
        A new id (see :func:`next_free_id`) or the id of the object being refined.
    region : numpy.ndarray of bool, optional
        Where the object may change (see :func:`refine_region`).

    Returns
    -------
    numpy.ndarray
        The new label image (the dtype widened when ``label_id`` does not fit it).

    Raises
    ------
    ValueError
        For mismatched shapes or an id below 1.

    Examples
    --------
    >>> lab = np.array([[1, 0, 0]]); commit_object(lab, np.array([[True, True, False]]), 2).tolist()
    [[1, 2, 0]]
    """
    labels = np.asarray(labels)
    mask = np.asarray(mask, bool)
    if mask.shape != labels.shape:
        raise ValueError(f"object mask has shape {mask.shape} but the labels have {labels.shape}")
    if region is not None and np.shape(region) != labels.shape:
        raise ValueError(f"refine region has shape {np.shape(region)} but the labels have {labels.shape}")
    label_id = int(label_id)
    if label_id < 1:
        raise ValueError(f"object ids start at 1, got {label_id}")
    dtype = labels.dtype
    if np.issubdtype(dtype, np.integer) and label_id > np.iinfo(dtype).max:
        dtype = np.int64
    out = labels.astype(dtype, copy=True)
    mine = labels == label_id
    where = np.ones(labels.shape, bool) if region is None else np.asarray(region, bool)
    out[where & mine & ~mask] = 0
    out[where & mask & ((labels == 0) | mine)] = label_id
    return out


def protect_committed(scribbles, taken, background: int = 2) -> np.ndarray:
    """``scribbles`` with the ``taken`` pixels (committed objects) as ``background`` where nothing is painted.

    What the next object's scribble cut sees (the Scribble widget's cut and a
    replayed commit alike); ``scribbles`` itself when nothing is taken, else a new array.

    Examples
    --------
    >>> protect_committed(np.array([[1, 0, 0]]), np.array([[True, True, False]])).tolist()
    [[1, 2, 0]]
    """
    scribbles = np.asarray(scribbles)
    taken = np.asarray(taken, bool)
    if taken.shape != scribbles.shape:
        raise ValueError(f"committed pixels have shape {taken.shape} but the scribbles have {scribbles.shape}")
    if not taken.any():
        return scribbles
    return np.where(taken & (scribbles == 0), np.asarray(background, scribbles.dtype), scribbles)


def default_refine_bound(shape) -> int:
    """Default distance bound of a refinement: 10 % of the shorter image side, at least 5 pixels.

    Examples
    --------
    >>> default_refine_bound((321, 481)), default_refine_bound((20, 20))
    (32, 5)
    """
    return max(MIN_REFINE_BOUND, int(round(REFINE_BOUND_FRACTION * min(shape[-2:]))))


def refine_region(shape, points: Sequence = (), box=None, bound: float = 0.0, strokes=None) -> np.ndarray:
    """Pixels within ``bound`` of the new input: clicked pixels, the box (its whole area) and stroke pixels.

    Parameters
    ----------
    shape : tuple
        ``(rows, cols)``.
    points : sequence of (row, col)
        New clicks.
    box : Box, optional
        A new box.
    bound : float
        Euclidean distance in pixels (>= 0).
    strokes : numpy.ndarray of bool, optional
        New strokes, ``shape``.

    Raises
    ------
    ValueError
        For a negative bound or no input at all.

    Examples
    --------
    >>> int(refine_region((9, 9), [(4, 4)], bound=1).sum())
    5
    """
    if not bound >= 0:
        raise ValueError(f"refine distance bound must be >= 0 pixels, got {bound!r}")
    seeds = np.zeros(shape[-2:], bool)
    for r, c in points:
        if 0 <= r < seeds.shape[0] and 0 <= c < seeds.shape[1]:
            seeds[int(r), int(c)] = True
    if box is not None:
        seeds[max(box.r0, 0):max(box.r1, 0), max(box.c0, 0):max(box.c1, 0)] = True
    if strokes is not None:
        if np.shape(strokes) != seeds.shape:
            raise ValueError(f"strokes have shape {np.shape(strokes)} but the image has {seeds.shape}")
        seeds |= np.asarray(strokes, bool)
    if not seeds.any():
        raise ValueError("no new click, box or stroke inside the image: nothing to refine around")
    return ndimage.distance_transform_edt(~seeds) <= bound


def refine_scribbles(scribbles, old_mask, bound: float, others=None, obj: int = 1, background: int = 2):
    """Strokes for a scribble cut that refines one object, and the region it may change.

    Within ``bound`` pixels of the new strokes the user's strokes stand as they
    are (other pixels there are free, except ``others``: pixels of other objects,
    which are background unless painted on purpose). Everywhere else the old
    object is fixed as object and the rest as background, so the cut can only
    move the boundary near the new strokes, and the result there joins the old
    mask without a seam.

    Parameters
    ----------
    scribbles : numpy.ndarray of int
        The new strokes (0 unlabelled, ``obj`` object, other values background classes).
    old_mask : numpy.ndarray of bool
        The object being refined.
    bound : float
        Distance bound in pixels (see :func:`refine_region`).
    others : numpy.ndarray of bool, optional
        Pixels of other objects in the refined layer.
    obj, background : int
        Stroke values of the object and of the background.

    Returns
    -------
    tuple of numpy.ndarray
        ``(seeds, region)``: the strokes to cut with (the dtype of ``scribbles``)
        and the bool mask of the pixels the cut may change.

    Raises
    ------
    ValueError
        For mismatched shapes, a negative bound or no strokes.

    Examples
    --------
    >>> old = np.zeros((1, 9), bool); old[0, :4] = True
    >>> strokes = np.zeros((1, 9), int); strokes[0, 5] = 1
    >>> seeds, region = refine_scribbles(strokes, old, bound=1)
    >>> seeds.tolist(), region.astype(int).tolist()
    ([[1, 1, 1, 1, 0, 1, 0, 2, 2]], [[0, 0, 0, 0, 1, 1, 1, 0, 0]])
    """
    scribbles = np.asarray(scribbles)
    old_mask = np.asarray(old_mask, bool)
    if old_mask.shape != scribbles.shape:
        raise ValueError(f"object mask has shape {old_mask.shape} but the scribbles have {scribbles.shape}")
    if not (scribbles > 0).any():
        raise ValueError("no strokes: paint 1 where the object should grow, 2 where it should shrink")
    region = refine_region(scribbles.shape, bound=bound, strokes=scribbles > 0)
    fixed = np.where(old_mask, obj, background).astype(scribbles.dtype)
    seeds = np.where(region, scribbles, fixed)
    if others is not None:
        seeds[region & np.asarray(others, bool) & (scribbles == 0)] = background
    return seeds, region


def deepest_point(mask) -> tuple:
    """``(row, col)`` of an object's most interior pixel (largest distance to its outside, the border counting).

    Examples
    --------
    >>> m = np.zeros((5, 9), bool); m[1:4, 1:8] = True; deepest_point(m)
    (2, 2)
    """
    padded = np.pad(np.asarray(mask, bool), 1)
    dist = ndimage.distance_transform_edt(padded)[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(r), int(c)
