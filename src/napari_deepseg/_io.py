"""napari's File > Open and File > Save for the plugin's files (npe2 reader and writer contributions).

What napari opens with this plugin
----------------------------------
Label files named by a pattern of :data:`LABEL_FILE_PATTERNS` (masks ``*-mask.png``, ``*_mask.tif``,
scribbles ``*-scribbles.png``, the GrabCut sets' ``*-anno.png``, ``*-labels.png`` ...): each comes in as one
Labels layer of label values, read by :func:`napari_deepseg.core.io.files.read_labels` (a palette PNG gives its
indices 0/1/2, not colours). Only these names are offered to the plugin, so a photograph (``photo.png``) is never
offered to it and opens with napari's own reader as before. A named file that holds no labels (floating-point
values, a colour drawing) is refused with one line.

What napari saves with it
-------------------------
A Labels layer saved to a ``.png`` name (napari's own labels writer offers TIFF but no PNG):
:func:`write_labels_png` writes an 8-bit PNG, 16-bit when a label is above 255, through
:func:`napari_deepseg.core.io.files.write_labels` to a temporary name in the same folder, renamed into place,
so a failed save never leaves a broken file.

To add a reader for another kind of file: a ``get_..._reader(path)`` here that returns ``None`` for files
it does not take (start from :func:`_one_file`), a command and a ``readers`` entry with its filename
patterns in ``napari.yaml``.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import numpy as np

from napari_deepseg.core.io.atomic import atomic_write_labels
from napari_deepseg.core.io.files import read_labels

#: the file names napari offers to :func:`get_label_reader`: the reader contribution in ``napari.yaml``
#: lists exactly these (a test checks); lower case, as npe2 matches them
LABEL_FILE_PATTERNS = tuple(
    f"*{sep}{kind}{suffix}"
    for kind in ("mask", "scribbles", "labels", "anno")
    for sep in ("-", "_")
    for suffix in (".png", ".tif", ".tiff")
)

#: the largest label a 16-bit PNG holds
PNG_MAX_LABEL = 65535


# ------------------------------------------------------------------------------------------------- reading
def _one_file(path, patterns) -> Path | None:
    """``path`` as a :class:`~pathlib.Path` when it is one existing file whose name matches ``patterns``.

    npe2 hands a reader a path or a list of paths (a stack); a list is taken only when it holds one path.

    Examples
    --------
    >>> _one_file(["a-mask.png", "b-mask.png"], LABEL_FILE_PATTERNS) is None  # a stack
    True
    >>> _one_file("no-such-folder/photo-mask.png", LABEL_FILE_PATTERNS) is None
    True
    """
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(path)
    name = p.name.lower()
    if not any(fnmatch(name, pattern) for pattern in patterns) or not p.is_file():
        return None
    return p


def get_label_reader(path):
    """npe2 reader: :func:`read_label_file` for a mask or scribble file named as in :data:`LABEL_FILE_PATTERNS`.

    Returns
    -------
    callable or None
        ``None`` for any other path, so that napari uses another reader.
    """
    return read_label_file if _one_file(path, LABEL_FILE_PATTERNS) is not None else None


def read_label_file(path) -> list[tuple]:
    """Read a mask or scribble file as napari layer data: one Labels layer named after the file.

    Parameters
    ----------
    path : str, Path or a list of one of them
        A PNG or TIFF of label values (a palette PNG gives its indices; a TIFF stack stays 3-D).

    Returns
    -------
    list of (data, metadata, "labels")

    Raises
    ------
    ValueError
        If the file cannot be read or holds no integer labels (floating point values, a colour drawing).
    """
    if isinstance(path, (list, tuple)):
        path = path[0]
    p = Path(path)
    labels = read_labels(p)
    if labels.dtype.kind not in "biu":
        raise ValueError(f"label file {p} holds {labels.dtype} values, not labels: a mask or scribble file "
                         "holds one whole number per pixel (0 = none, 1 = object, 2 = background, k = class k)")
    return [(labels, {"name": p.stem}, "labels")]


#: the records of the Dataset dock (``OUTPUT/records/STEM.json``): other JSON files are declined
RECORD_FILE_PATTERNS = ("*.json",)


def box_corners(box) -> np.ndarray:
    """The four corners of a napari rectangle that gives back ``box`` (corners inclusive, see ``box_on_plane``).

    Examples
    --------
    >>> from napari_deepseg.core.prompts.box import Box, box_on_plane
    >>> box_on_plane(box_corners(Box(1, 2, 4, 6)), (10, 10))
    ((), Box(r0=1, c0=2, r1=4, c1=6))
    """
    r0, c0, r1, c1 = box.r0, box.c0, box.r1 - 1, box.c1 - 1
    return np.array([[r0, c0], [r0, c1], [r1, c1], [r1, c0]], float)


def get_record_reader(path):
    """npe2 reader: :func:`read_record_file` for a dataset record (``records/STEM.json``), ``None`` otherwise.

    A JSON file is taken only when it is a napari-deepseg record (its ``format`` field says so).
    """
    import json

    from napari_deepseg.core.dataset.record import check_record

    p = _one_file(path, RECORD_FILE_PATTERNS)
    if p is None:
        return None
    try:
        check_record(json.loads(p.read_text(encoding="utf-8")))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return read_record_file


def read_record_file(path) -> list[tuple]:
    """A dataset record as napari layers: its image (when its folder is known), mask, strokes, clicks and box.

    The image is the one ``dataset.json`` of the output folder names; the mask is the record's
    ``mask`` file; the last strokes come in as a scribbles layer, the last clicks as a Points
    layer with the ``positive`` feature and the last box as a rectangle, as the Point prompts
    widget makes them.

    Raises
    ------
    ValueError
        If the record or one of its files cannot be read.
    """
    import json

    from napari_deepseg.core.dataset.folder import read_state
    from napari_deepseg.core.io.files import read_image

    p = Path(path[0] if isinstance(path, (list, tuple)) else path)
    obj = json.loads(p.read_text(encoding="utf-8"))
    state = read_state(p)
    output = p.parent.parent
    stem = p.stem
    layers = []
    image_name = (obj.get("image") or {}).get("name")
    status = output / "dataset.json"
    if image_name and status.is_file():
        images = json.loads(status.read_text(encoding="utf-8")).get("images")
        folder = Path(images) if isinstance(images, str) else None
        if folder is not None and (folder / image_name).is_file():
            layers.append((read_image(folder / image_name), {"name": stem}, "image"))
    meta = {"napari-deepseg": {"image": stem}}
    if obj.get("mask"):
        layers.append((read_labels(output / obj["mask"]), {"name": f"{stem} mask", "metadata": meta}, "labels"))
    strokes = next((s.strokes for s in reversed(state.steps) if s.strokes is not None), None)
    prompts = next((s for s in reversed(state.steps) if s.kind in ("clicks", "box")), None)
    if strokes is not None:
        strokes_meta = {"napari-deepseg": {"role": "scribbles", "image": stem}}
        layers.append((strokes, {"name": f"{stem} scribbles", "metadata": strokes_meta}, "labels"))
    if prompts is not None:
        layers.extend(prompt_layers(prompts, stem))
    return layers


def prompt_layers(step, image_name: str) -> list[tuple]:
    """The clicks and box of a record's step as the Point prompts widget's layers (napari layer data tuples).

    Parameters
    ----------
    step : napari_deepseg.core.dataset.record.Step
        A ``clicks`` or ``box`` step.
    image_name : str
        The image layer's name: the layers are named after it and carry their
        role (``prompts``, ``box``) and the image in their metadata, so the
        Point prompts widget and the Dataset dock recognise them.

    Returns
    -------
    list of tuple
        ``(data, kwargs, layer_type)``: a Points layer with the ``positive``
        feature when the step has clicks, a rectangle when it has a box.

    Examples
    --------
    >>> from napari_deepseg.core.dataset.record import Step
    >>> from napari_deepseg.core.prompts.base import Click
    >>> from napari_deepseg.core.prompts.box import Box
    >>> layers = prompt_layers(Step("box", clicks=(Click(3, 4, False),), box=Box(1, 2, 9, 12)), "cat")
    >>> [(kwargs["name"], kind) for _, kwargs, kind in layers]
    [('cat prompts', 'points'), ('cat box', 'shapes')]
    >>> layers[0][1]["features"]["positive"].tolist(), layers[1][1]["metadata"]["napari-deepseg"]["role"]
    ([False], 'box')
    """
    from napari_deepseg._qt._layers import METADATA_KEY, NEGATIVE_COLOUR, POSITIVE_COLOUR, ROLE_BOX, ROLE_PROMPTS

    layers = []
    if step.clicks:
        points = np.array([[c.row, c.col] for c in step.clicks], float)
        positive = np.array([c.positive for c in step.clicks], bool)
        layers.append((points, {"name": f"{image_name} prompts", "features": {"positive": positive},
                                "face_color": [POSITIVE_COLOUR if p else NEGATIVE_COLOUR for p in positive],
                                "metadata": {METADATA_KEY: {"role": ROLE_PROMPTS, "image": image_name}}}, "points"))
    if step.box is not None:
        layers.append(([box_corners(step.box)], {"name": f"{image_name} box", "shape_type": "rectangle",
                                                 "edge_color": "yellow", "face_color": "transparent",
                                                 "metadata": {METADATA_KEY: {"role": ROLE_BOX, "image": image_name}}},
                       "shapes"))
    return layers


# ------------------------------------------------------------------------------------------------- writing
def png_labels(data) -> np.ndarray:
    """The labels of a Labels layer's ``data`` as an array a PNG holds, or a one-line error.

    Parameters
    ----------
    data : array-like or list of arrays
        The layer's data (a multiscale layer's list: its full-resolution level is written).

    Returns
    -------
    numpy.ndarray
        2-D, integer, values in 0..65535.

    Raises
    ------
    TypeError
        If the labels are not integers (or booleans).
    ValueError
        If they are not 2-D, are negative or go above 65535 (a TIFF holds these).

    Examples
    --------
    >>> int(png_labels(np.array([[0, 1], [2, 300]])).max())
    300
    >>> png_labels(np.zeros((2, 2), np.float32))
    Traceback (most recent call last):
    ...
    TypeError: labels of dtype float32 cannot be a mask PNG: a PNG mask holds whole numbers (label values)
    """
    if isinstance(data, (list, tuple)):
        data = data[0]
    arr = np.asarray(data)
    if arr.dtype.kind not in "biu":
        raise TypeError(f"labels of dtype {arr.dtype} cannot be a mask PNG: a PNG mask holds whole numbers "
                        "(label values)")
    if arr.ndim != 2:
        raise ValueError(f"labels of shape {arr.shape} cannot be a PNG, which holds one 2-D image: save them "
                         "as .tif (napari's own labels writer)")
    if arr.size and arr.min() < 0:
        raise ValueError(f"labels with negative values (down to {arr.min()}) cannot be a PNG: save them as .tif")
    if arr.max(initial=0) > PNG_MAX_LABEL:
        raise ValueError(f"labels up to {arr.max()} do not fit a PNG (at most {PNG_MAX_LABEL} labels, 16 bit): "
                         "save them as .tif")
    return arr


def write_labels_png(path: str, data, meta: dict | None = None) -> list[str]:
    """npe2 writer: one Labels layer as a mask PNG, 8-bit (16-bit when a label is above 255).

    The file is written to a temporary name in the same folder and renamed into place
    (:func:`~napari_deepseg.core.io.atomic.atomic_write_labels`): an interrupted or refused save
    leaves the previous file as it was.

    Parameters
    ----------
    path : str
        The file to write; it must end in ``.png``.
    data : array-like
        The layer's labels (see :func:`png_labels`).
    meta : dict, optional
        The layer's attributes (unused: a mask PNG holds the label values only).

    Returns
    -------
    list of str
        ``[path]``.

    Raises
    ------
    TypeError, ValueError
        As :func:`png_labels`, and for a name that does not end in ``.png``.
    """
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise ValueError(f"cannot write a mask PNG to {p}: use a file name ending in .png")
    atomic_write_labels(p, png_labels(data))
    return [str(p)]
