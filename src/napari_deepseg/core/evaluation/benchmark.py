"""The interaction benchmarks of the field: the click, box and scribble protocols.

The click protocol is the one of RITM, SimpleClick, FocalClick and the SAM
evaluations (see :func:`next_click`). Any :class:`~napari_deepseg.core.prompts.base.ClickMethod`
runs under it; :func:`run_click_protocol` scores one image, :func:`summarize_clicks`
turns many into the NoC / NoF / mIoU figures. The box protocol
(:func:`run_box_protocol`) starts from a box around the object and continues with clicks;
with a margin of 0 its box is the literature's tight box (:func:`protocol_box`) and
:func:`box_error` its error rate. The corrective-stroke protocol (:func:`run_correction_protocol`,
issue 32) starts from a scribble set's cut and dabs a disk where the mask is most wrong
(:func:`next_stroke`), stroke after stroke.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import numpy as np
from scipy import ndimage

from ..prompts.base import Click, ClickMethod
from ..prompts.box import DEFAULT_MARGIN, Box, box_from_mask
from .metrics import binary_counts, iou

#: GrabCut's unknown band; pixels of this value in a reference mask are ignored
DEFAULT_IGNORE = 128
#: the published protocol's click budget and stopping IoU
MAX_CLICKS = 20
TARGET_IOU = 0.90
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def _error_distance(region: np.ndarray) -> np.ndarray:
    """Euclidean distance to the nearest non-region pixel, the image border counting as one."""
    padded = np.pad(region, 1, constant_values=False)
    return ndimage.distance_transform_edt(padded)[1:-1, 1:-1]


def next_click(pred: np.ndarray, truth: np.ndarray, clicked: np.ndarray, ignore=DEFAULT_IGNORE) -> Click:
    """The click a simulated user makes next, exactly as the published protocol places it.

    The false-negative and false-positive regions (ignored pixels excluded) are
    each padded by one pixel of zeros, distance-transformed, cropped back and
    zeroed where already clicked. The click is positive when the largest
    false-negative distance is strictly greater than the largest false-positive
    distance, and goes at the first pixel (row-major) holding that maximum.

    Parameters
    ----------
    pred : numpy.ndarray of bool
        Current prediction.
    truth : numpy.ndarray
        Reference mask: non-zero object, ``ignore`` unknown.
    clicked : numpy.ndarray of bool
        Pixels clicked so far.
    ignore : int, optional
        Reference value to leave out.

    Returns
    -------
    Click

    Examples
    --------
    >>> truth = np.zeros((5, 7), np.uint8); truth[1:4, 1:6] = 255
    >>> next_click(np.zeros((5, 7), bool), truth, np.zeros((5, 7), bool))
    Click(row=2, col=2, positive=True)
    """
    valid = np.ones(truth.shape, bool) if ignore is None else truth != ignore
    obj = (truth != 0) & valid
    fn = obj & ~pred
    fp = ~obj & pred & valid
    fn_dt = _error_distance(fn) * ~clicked
    fp_dt = _error_distance(fp) * ~clicked
    fn_max, fp_max = fn_dt.max(), fp_dt.max()
    positive = bool(fn_max > fp_max)
    dt, best = (fn_dt, fn_max) if positive else (fp_dt, fp_max)
    r, c = np.unravel_index(int(np.argmax(dt == best)), dt.shape)
    return Click(int(r), int(c), positive)


@dataclass
class ClickRun:
    """One image under the click protocol.

    Attributes
    ----------
    ious : list of float
        IoU after click 1, 2, ... (stops early once the target is reached).
    clicks : list of Click
    seconds : list of float
        Time each ``predict`` took.
    """

    ious: List[float] = field(default_factory=list)
    clicks: List[Click] = field(default_factory=list)
    seconds: List[float] = field(default_factory=list)

    def noc(self, threshold: float, max_clicks: int = MAX_CLICKS) -> int:
        """The first click whose IoU reaches ``threshold``, else ``max_clicks``."""
        for k, value in enumerate(self.ious[:max_clicks], 1):
            if value >= threshold:
                return k
        return max_clicks

    def iou_curve(self, max_clicks: int = MAX_CLICKS) -> list:
        """IoU after 1..max_clicks clicks, the last value carried on after an early stop."""
        if not self.ious:
            return [0.0] * max_clicks
        return [self.ious[min(k, len(self.ious) - 1)] for k in range(max_clicks)]


def run_click_protocol(method: ClickMethod, image, truth, ignore=DEFAULT_IGNORE, max_clicks: int = MAX_CLICKS,
                       target: float = TARGET_IOU, stop_at_target: bool = True) -> ClickRun:
    """Simulate a user clicking on ``image`` until the IoU reaches ``target``.

    The method's ``set_image`` is called first (not timed as a click); every
    click then calls ``predict`` with all clicks so far.

    Parameters
    ----------
    method : ClickMethod
    image : array-like
    truth : numpy.ndarray
        Reference mask (non-zero object, ``ignore`` unknown), same rows and cols as ``image``.
    ignore : int, optional
    max_clicks : int
    target : float
        Stop once the IoU reaches this after at least one click.
    stop_at_target : bool
        ``False`` runs all ``max_clicks`` clicks (full IoU curves).

    Returns
    -------
    ClickRun
    """
    truth = np.asarray(truth)
    if truth.ndim != 2:
        raise ValueError(f"reference mask must be 2-D, got shape {truth.shape}")
    if np.asarray(image).shape[:2] != truth.shape:
        raise ValueError(f"image is {np.asarray(image).shape[:2]} but its mask is {truth.shape}")
    method.set_image(image)
    pred = np.zeros(truth.shape, bool)
    clicked = np.zeros(truth.shape, bool)
    run = ClickRun()
    for _ in range(max_clicks):
        click = next_click(pred, truth, clicked, ignore)
        clicked[click.row, click.col] = True
        run.clicks.append(click)
        t0 = time.perf_counter()
        pred = np.asarray(method.predict(list(run.clicks)), dtype=bool)
        run.seconds.append(time.perf_counter() - t0)
        run.ious.append(iou(pred, truth, ignore=ignore))
        if stop_at_target and run.ious[-1] >= target:
            break
    return run


def protocol_box(truth, margin: float = DEFAULT_MARGIN, ignore=DEFAULT_IGNORE) -> Box:
    """The box protocol's box of a reference mask.

    ``margin`` 0 is the literature's protocol (Lempitsky et al., ICCV 2009, and
    the papers after it): the tight box of the object *and* its unknown band
    (``ignore`` pixels). A margin > 0 enlarges the object's own tight box (the
    band left out) by that fraction of its size on each side, clipped to the
    image: the boxes the widget's users draw, issue 12's protocol.

    Examples
    --------
    >>> m = np.zeros((20, 20), np.uint8); m[5:15, 8:12] = 255; m[4, 12] = 128
    >>> protocol_box(m, 0), protocol_box(m, 0.1)
    (Box(r0=4, c0=8, r1=15, c1=13), Box(r0=4, c0=8, r1=16, c1=12))
    """
    return box_from_mask(truth, margin, ignore=ignore, with_ignored=margin == 0)


def box_error(pred, truth, box: Box, ignore=DEFAULT_IGNORE) -> float:
    """The literature's error rate of a box's mask: misclassified pixels ÷ the box's area.

    Pixels whose reference is ``ignore`` (GrabCut's unknown band) are not
    counted; mislabelled pixels outside the box count too (a box engine keeps
    the outside background, so there are none).

    Examples
    --------
    >>> truth = np.array([[0, 255, 255, 128]]); pred = np.array([[1, 1, 0, 1]])
    >>> box_error(pred, truth, Box(0, 0, 1, 4))
    0.5
    """
    _, fp, fn, _ = binary_counts(np.asarray(pred, bool), truth, ignore)
    rows, cols = box.shape
    return (fp + fn) / float(rows * cols)


@dataclass
class BoxRun(ClickRun):
    """One image under the box protocol: the box, its IoU, then the clicks' (see :class:`ClickRun`).

    :meth:`ClickRun.noc` counts clicks *after* the box: 0 when the box alone reaches the threshold.
    """

    box: Optional[Box] = None
    box_iou: float = 0.0
    box_error: float = 0.0
    box_seconds: float = 0.0

    def noc(self, threshold: float, max_clicks: int = MAX_CLICKS) -> int:
        if self.box_iou >= threshold:
            return 0
        return super().noc(threshold, max_clicks)


def run_box_protocol(method: ClickMethod, image, truth, ignore=DEFAULT_IGNORE, margin: float = DEFAULT_MARGIN,
                     max_clicks: int = MAX_CLICKS, target: float = TARGET_IOU) -> BoxRun:
    """The box protocol: a box around the reference object, then the click protocol from the box's mask.

    The box is the tight bounding box of the reference object (``ignore`` pixels
    excluded) enlarged by ``margin`` of its height/width on each side and clipped
    to the image; with ``margin`` 0, the literature's tight box of the object and
    its unknown band (:func:`protocol_box`). The method's ``predict_box`` answers
    the box (scored by IoU and :func:`box_error`), then every click (placed by
    :func:`next_click` on the current mask) together with the box, until
    ``target`` or ``max_clicks``.

    Returns
    -------
    BoxRun
    """
    truth = np.asarray(truth)
    if truth.ndim != 2:
        raise ValueError(f"reference mask must be 2-D, got shape {truth.shape}")
    if np.asarray(image).shape[:2] != truth.shape:
        raise ValueError(f"image is {np.asarray(image).shape[:2]} but its mask is {truth.shape}")
    if not getattr(method, "takes_box", False):
        raise ValueError(f"method {method.name!r} takes no box; the box protocol runs graphcut")
    box = protocol_box(truth, margin, ignore=ignore)
    method.set_image(image)
    t0 = time.perf_counter()
    pred = np.asarray(method.predict_box(box), dtype=bool)
    run = BoxRun(box=box, box_seconds=time.perf_counter() - t0)
    run.box_iou = iou(pred, truth, ignore=ignore)
    run.box_error = box_error(pred, truth, box, ignore=ignore)
    clicked = np.zeros(truth.shape, bool)
    if run.box_iou >= target:
        return run
    for _ in range(max_clicks):
        click = next_click(pred, truth, clicked, ignore)
        clicked[click.row, click.col] = True
        run.clicks.append(click)
        t0 = time.perf_counter()
        pred = np.asarray(method.predict_box(box, list(run.clicks)), dtype=bool)
        run.seconds.append(time.perf_counter() - t0)
        run.ious.append(iou(pred, truth, ignore=ignore))
        if run.ious[-1] >= target:
            break
    return run


def summarize_boxes(runs: List[BoxRun], max_clicks: int = MAX_CLICKS) -> dict:
    """Mean IoU and mean error rate (:func:`box_error`) after the box, then NoC@85/90 and NoF after it.

    See :func:`summarize_clicks`.

    Examples
    --------
    >>> a = BoxRun(box_iou=0.92); b = BoxRun(box_iou=0.8, ious=[0.87, 0.91])
    >>> s = summarize_boxes([a, b]); round(s["miou_box"], 2), s["noc85"], s["noc90"]
    (0.86, 0.5, 1.0)
    """
    if not runs:
        raise ValueError("no images were scored")
    noc = {t: [r.noc(t / 100, max_clicks) for r in runs] for t in (85, 90)}
    fails = {t: sum(r.box_iou < t / 100 and not any(v >= t / 100 for v in r.ious[:max_clicks]) for r in runs)
             for t in (85, 90)}
    seconds = [r.box_seconds for r in runs] + [s for r in runs for s in r.seconds]
    return {
        "n": len(runs),
        "max_clicks": max_clicks,
        "miou_box": float(np.mean([r.box_iou for r in runs])),
        "error_box": float(np.mean([r.box_error for r in runs])),
        "noc85": float(np.mean(noc[85])),
        "noc90": float(np.mean(noc[90])),
        "nof85": fails[85],
        "nof90": fails[90],
        "seconds_per_box": float(np.median([r.box_seconds for r in runs])),
        "seconds_per_update": float(np.median(seconds)),
        "clicks_total": sum(len(r.seconds) for r in runs),
    }


def _failures(runs: List[ClickRun], threshold: float, max_clicks: int) -> int:
    """Images whose IoU never reached ``threshold`` within ``max_clicks`` clicks."""
    return sum(not any(v >= threshold for v in r.ious[:max_clicks]) for r in runs)


def summarize_clicks(runs: List[ClickRun], max_clicks: int = MAX_CLICKS) -> dict:
    """NoC@85/90, NoF@85/90, mIoU after 1..max_clicks clicks and median seconds per click.

    Examples
    --------
    >>> r = ClickRun(ious=[0.5, 0.87, 0.93])
    >>> s = summarize_clicks([r]); s["noc85"], s["noc90"], s["nof90"], s["miou_at_clicks"][4]
    (2.0, 3.0, 0, 0.93)
    """
    if not runs:
        raise ValueError("no images were scored")
    noc = {t: [r.noc(t / 100, max_clicks) for r in runs] for t in (85, 90)}
    curves = np.array([r.iou_curve(max_clicks) for r in runs])
    seconds = [s for r in runs for s in r.seconds]
    return {
        "n": len(runs),
        "max_clicks": max_clicks,
        "noc85": float(np.mean(noc[85])),
        "noc90": float(np.mean(noc[90])),
        "nof85": _failures(runs, 0.85, max_clicks),
        "nof90": _failures(runs, 0.90, max_clicks),
        "miou_at_clicks": [float(v) for v in curves.mean(axis=0)],
        "seconds_per_click": float(np.median(seconds)) if seconds else 0.0,
        "clicks_total": len(seconds),
    }


# -- corrective strokes (issue 32) -------------------------------------------

#: a corrective stroke's radius is the error region's depth minus one, clipped to this range (px)
STROKE_RADIUS = (2, 8)
#: an image "loses" at a stroke when its IoU drops by more than this
LOSS_TOLERANCE = 0.01


@dataclass(frozen=True)
class Stroke:
    """A corrective stroke: a disk of ``radius`` px at ``(row, col)`` painted ``label`` (1 object, 2 background).

    ``depth`` is the distance transform's value at the centre (the error region's depth),
    ``region`` the size of the error region it corrects, in pixels.
    """

    row: int
    col: int
    radius: int
    label: int
    depth: float
    region: int

    def disk(self, shape) -> np.ndarray:
        """The stroke's pixels in an image of ``shape`` (clipped to it)."""
        rr, cc = np.ogrid[: shape[0], : shape[1]]
        return (rr - self.row) ** 2 + (cc - self.col) ** 2 <= self.radius**2

    def as_list(self) -> list:
        """``[row, col, radius, label, depth, region]`` for JSON."""
        return [self.row, self.col, self.radius, self.label, round(self.depth, 2), self.region]


def next_stroke(pred: np.ndarray, truth: np.ndarray, ignore=DEFAULT_IGNORE) -> Optional[Stroke]:
    """The corrective stroke a user paints where ``pred`` is most wrong.

    The false-negative and false-positive pixels (``ignore`` pixels of the
    reference left out) are split into 8-connected regions; the largest region
    of either kind is corrected (a false-negative one first on a tie). Its
    distance transform (the image border and the unknown band count as its
    boundary, as :func:`next_click` does) gives its deepest pixel, the first in
    row-major order; the stroke is a disk there of radius
    ``clip(floor(depth - 1), 2, 8)`` px (:data:`STROKE_RADIUS`), labelled object (1)
    on a missed part and background (2) on a leak.

    Parameters
    ----------
    pred : numpy.ndarray of bool
        Current object mask.
    truth : numpy.ndarray
        Reference mask: non-zero object, ``ignore`` unknown.
    ignore : int, optional

    Returns
    -------
    Stroke or None
        ``None`` when ``pred`` has no error.

    Examples
    --------
    >>> truth = np.zeros((30, 30), np.uint8); truth[5:25, 5:25] = 255
    >>> pred = truth > 0; pred[5:25, 5:12] = False       # a 20 x 7 missed strip
    >>> next_stroke(pred, truth)
    Stroke(row=8, col=8, radius=3, label=1, depth=4.0, region=140)
    """
    pred = np.asarray(pred, bool)
    truth = np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"pred is {pred.shape} but its reference mask is {truth.shape}")
    valid = np.ones(truth.shape, bool) if ignore is None else truth != ignore
    obj = (truth != 0) & valid
    best = None
    for label, errors in ((1, obj & ~pred), (2, ~obj & pred & valid)):
        regions, n = ndimage.label(errors, structure=np.ones((3, 3), bool))
        if n:
            sizes = np.bincount(regions.ravel())[1:]
            k = int(np.argmax(sizes))
            if best is None or sizes[k] > best[0]:
                best = (int(sizes[k]), label, regions == k + 1)
    if best is None:
        return None
    size, label, region = best
    depth = _error_distance(region)
    deepest = float(depth.max())
    r, c = np.unravel_index(int(np.argmax(depth == deepest)), depth.shape)
    radius = int(np.clip(np.floor(deepest - 1), *STROKE_RADIUS))
    return Stroke(int(r), int(c), radius, label, deepest, size)


@dataclass
class CorrectionRun:
    """One image under the corrective-stroke protocol.

    Attributes
    ----------
    ious : list of float
        IoU of the first cut (the scribbles alone), then after stroke 1, 2, ...
        (an image with no error left carries its IoU on).
    strokes : list of Stroke
    promises : list of dict
        :func:`~napari_deepseg.core.evaluation.promises.correction_promise` of each stroke.
    masks : list of numpy.ndarray
        The object masks (first cut, then after each stroke) when asked to keep them.
    """

    ious: List[float] = field(default_factory=list)
    strokes: List[Stroke] = field(default_factory=list)
    promises: List[dict] = field(default_factory=list)
    masks: list = field(default_factory=list)


def run_correction_protocol(cut: Callable[[np.ndarray], np.ndarray], truth, scribbles, strokes: int = 1,
                            ignore=DEFAULT_IGNORE, keep_masks: bool = False) -> CorrectionRun:
    """Scribbles, then ``strokes`` corrective strokes, each where the mask is most wrong (issue 32).

    ``cut(scribbles)`` answers the dataset's scribbles first; then, ``strokes``
    times, :func:`next_stroke` places a disk on the largest error region, the
    disk is painted into the scribbles (over any earlier label there) and
    ``cut`` answers all the scribbles so far. Each stroke's mask is checked
    against the one before it
    (:func:`~napari_deepseg.core.evaluation.promises.correction_promise`).
    ``cut`` decides how the image is cut: the command line's is the Scribble
    widget's path with Live on (``benchmark --protocol corrections``).

    Parameters
    ----------
    cut : callable
        ``cut(scribbles) -> labels`` for this image (object = 1); it gets a new
        array each time and must not keep it for writing.
    truth : numpy.ndarray
        Reference mask: non-zero object, ``ignore`` unknown.
    scribbles : numpy.ndarray
        The initial strokes: 0 none, 1 object, 2 background (not written into).
    strokes : int
        Corrective strokes, at least 1.
    ignore : int, optional
    keep_masks : bool
        Keep every mask in :attr:`CorrectionRun.masks` (for pictures).

    Returns
    -------
    CorrectionRun

    Examples
    --------
    A toy "cut" that returns the square's pixels within 6 px of an object
    stroke: the first corrective stroke goes into the missed strip on the left.

    >>> from scipy import ndimage as ndi
    >>> truth = np.zeros((30, 30), np.uint8); truth[5:25, 5:25] = 255
    >>> start = np.zeros((30, 30), np.uint8); start[6:24, 20] = 1; start[0] = 2
    >>> def cut(s): return ((ndi.distance_transform_edt(s != 1) <= 6) & (truth > 0)).astype(np.uint8)
    >>> run = run_correction_protocol(cut, truth, start, strokes=2)
    >>> run.ious, run.strokes[0], run.promises[0]["broken"]
    ([0.545, 0.86, 1.0], Stroke(row=9, col=9, radius=4, label=1, depth=5.0, region=182), False)
    """
    from .promises import correction_promise

    truth = np.asarray(truth)
    scribbles = np.array(scribbles, copy=True)
    if truth.ndim != 2:
        raise ValueError(f"reference mask must be 2-D, got shape {truth.shape}")
    if scribbles.shape != truth.shape:
        raise ValueError(f"scribbles are {scribbles.shape} but the reference mask is {truth.shape}")
    if int(strokes) < 1:
        raise ValueError(f"strokes must be at least 1, got {strokes}")
    run = CorrectionRun()
    pred = np.asarray(cut(scribbles.copy())) == 1
    run.ious.append(iou(pred, truth, ignore=ignore))
    run.masks += [pred] if keep_masks else []
    for _ in range(int(strokes)):
        stroke = next_stroke(pred, truth, ignore)
        if stroke is None:  # nothing left to correct
            run.ious.append(run.ious[-1])
            continue
        disk = stroke.disk(truth.shape)
        scribbles[disk] = stroke.label
        after = np.asarray(cut(scribbles.copy())) == 1
        run.strokes.append(stroke)
        run.promises.append(correction_promise(pred, after, truth, disk, stroke.radius, ignore))
        run.ious.append(iou(after, truth, ignore=ignore))
        run.masks += [after] if keep_masks else []
        pred = after
    return run


def summarize_corrections(runs: dict, tolerance: float = LOSS_TOLERANCE) -> dict:
    """The corrective-stroke protocol's figures over images ``{stem: CorrectionRun}``.

    Returns
    -------
    dict
        ``miou_per_stroke`` (the first cut, then after each stroke); ``lost_after_1``:
        the images whose IoU dropped by more than ``tolerance`` at stroke 1 (and
        ``worse_after_1``: by any amount), ``[stem, before, after]`` worst first;
        ``mean_rises_every_stroke``; ``ended_below_start``: images whose last IoU is
        below the first cut's (by any amount, and by more than ``tolerance``);
        ``far_broken_per_stroke`` and ``far_changed_per_stroke``: strokes that broke
        the far-change promise and the far pixels they turned wrong, summed over images.

    Examples
    --------
    >>> a = CorrectionRun(ious=[0.8, 0.9, 0.95]); b = CorrectionRun(ious=[0.9, 0.85, 0.88])
    >>> s = summarize_corrections({"a": a, "b": b})
    >>> s["miou_per_stroke"], s["lost_after_1"], s["mean_rises_every_stroke"], s["ended_below_start"]
    ([0.85, 0.875, 0.915], [['b', 0.9, 0.85]], True, [['b', 0.9, 0.88]])
    """
    if not runs:
        raise ValueError("no images were scored")
    n_strokes = max(len(r.ious) for r in runs.values()) - 1
    curves = np.array([r.ious + [r.ious[-1]] * (n_strokes + 1 - len(r.ious)) for r in runs.values()])
    means = [round(float(v), 4) for v in curves.mean(axis=0)]
    drops = sorted(([stem, round(r.ious[0], 4), round(r.ious[1], 4)] for stem, r in runs.items()
                    if len(r.ious) > 1 and r.ious[1] < r.ious[0]), key=lambda t: t[2] - t[1])
    below = sorted(([stem, round(r.ious[0], 4), round(r.ious[-1], 4)] for stem, r in runs.items()
                    if r.ious[-1] < r.ious[0]), key=lambda t: t[2] - t[1])
    promises = [[r.promises[k] for r in runs.values() if k < len(r.promises)] for k in range(n_strokes)]
    return {
        "n": len(runs),
        "strokes": n_strokes,
        "miou_per_stroke": means,
        "worse_after_1": drops,
        "lost_after_1": [d for d in drops if round(d[1] - d[2], 6) > tolerance],
        "mean_rises_every_stroke": bool(all(b > a for a, b in zip(means, means[1:]))),
        "ended_below_start": below,
        "ended_below_start_by_tolerance": [d for d in below if round(d[1] - d[2], 6) > tolerance],
        "far_broken_per_stroke": [sum(p["broken"] for p in ps) for ps in promises],
        "far_changed_per_stroke": [sum(p["far_changed"] for p in ps) for ps in promises],
        "loss_tolerance": tolerance,
    }


# -- datasets ----------------------------------------------------------------

@dataclass
class DatasetItem:
    """One image of a benchmark dataset and its reference mask (paths; read on demand)."""

    stem: str
    image_path: Path
    mask_path: Path

    def load(self):
        """``(image, mask)``: the mask single-channel (first channel of an RGB mask)."""
        from ..io.files import read_image, read_labels

        image = read_image(self.image_path)
        mask = read_labels(self.mask_path)
        if mask.ndim == 3:
            mask = mask[..., 0]
        return image, mask


def _by_stem(folder: Path) -> dict:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()}


def dataset_items(root, limit: Optional[int] = None) -> List[DatasetItem]:
    """The ``images/`` + ``masks/`` pairs of a dataset folder, matched by file stem.

    Raises
    ------
    ValueError
        If the folder lacks ``images/`` or ``masks/`` or no stem matches.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"dataset folder {root} does not exist")
    for sub in ("images", "masks"):
        if not (root / sub).is_dir():
            raise ValueError(f"dataset folder {root} has no '{sub}/' folder (expected images/ and masks/)")
    images, masks = _by_stem(root / "images"), _by_stem(root / "masks")
    stems = sorted(set(images) & set(masks))
    if not stems:
        raise ValueError(f"no image in {root / 'images'} has a mask with the same file stem in {root / 'masks'}")
    if limit is not None:
        stems = stems[: max(0, int(limit))]
    return [DatasetItem(s, images[s], masks[s]) for s in stems]


def scribble_path(root, scribbles_dir: str, stem: str) -> Optional[Path]:
    """The scribble file of ``stem`` in ``root/scribbles_dir`` (``STEM-anno.png`` or ``STEM.png``)."""
    folder = Path(root) / scribbles_dir
    for name in (f"{stem}-anno.png", f"{stem}.png", f"{stem}.tif"):
        if (folder / name).is_file():
            return folder / name
    return None


def run_clicks_on_dataset(method: ClickMethod, items: List[DatasetItem], ignore=DEFAULT_IGNORE,
                          max_clicks: int = MAX_CLICKS, target: float = TARGET_IOU,
                          progress: Optional[Callable[[int, int, str], None]] = None) -> Iterator[tuple]:
    """Yield ``(stem, ClickRun)`` for every item, calling ``progress(done, total, stem)``."""
    for k, item in enumerate(items):
        image, mask = item.load()
        run = run_click_protocol(method, image, mask, ignore=ignore, max_clicks=max_clicks, target=target)
        if progress is not None:
            progress(k + 1, len(items), item.stem)
        yield item.stem, run


def run_boxes_on_dataset(method: ClickMethod, items: List[DatasetItem], ignore=DEFAULT_IGNORE,
                         margin: float = DEFAULT_MARGIN, max_clicks: int = MAX_CLICKS,
                         target: float = TARGET_IOU) -> Iterator[tuple]:
    """Yield ``(stem, BoxRun)`` for every item under :func:`run_box_protocol`."""
    for item in items:
        image, mask = item.load()
        yield item.stem, run_box_protocol(method, image, mask, ignore=ignore, margin=margin,
                                          max_clicks=max_clicks, target=target)


def run_scribble_protocol(segment: Callable, items: List[DatasetItem], root, scribbles_dir: str,
                          ignore=DEFAULT_IGNORE, progress=None) -> dict:
    """Mean and per-image IoU of ``segment(image, scribbles) -> mask`` on the dataset's scribbles.

    Images without a scribble file are skipped (and counted in ``missing``).
    """
    from ..io.files import read_labels

    per_image, missing, seconds = {}, [], []
    for k, item in enumerate(items):
        path = scribble_path(root, scribbles_dir, item.stem)
        if path is None:
            missing.append(item.stem)
        else:
            image, mask = item.load()
            t0 = time.perf_counter()
            pred = segment(image, read_labels(path))
            seconds.append(time.perf_counter() - t0)
            per_image[item.stem] = iou(np.asarray(pred) == 1, mask, ignore=ignore)
        if progress is not None:
            progress(k + 1, len(items), item.stem)
    if not per_image:
        raise ValueError(f"no scribble file found in {Path(root) / scribbles_dir} for any image")
    return {"n": len(per_image), "miou": float(np.mean(list(per_image.values()))), "per_image": per_image,
            "missing": missing, "seconds_per_image": float(np.median(seconds))}


# -- published figures -------------------------------------------------------

#: NoC@90 of published methods under the same protocol (../shared/datasets/README.md)
PUBLISHED_NOC90 = {
    "grabcut": {"graph cut (Boykov-Jolly)": 10.00, "random walker": 12.30, "geodesic star convexity": 9.12,
                "RGB histogram cut (measured here)": 8.42, "DIOS (trained)": 6.04, "RITM HRNet-32 (trained)": 1.56},
    "berkeley": {"graph cut (Boykov-Jolly)": 14.22, "random walker": 14.02, "geodesic star convexity": 12.57,
                 "RGB histogram cut (measured here)": 12.40, "DIOS (trained)": 8.65, "RITM HRNet-32 (trained)": 2.10},
}


def plot_click_curves(results: dict, path, dataset: Optional[str] = None, title: Optional[str] = None):
    """Plot mIoU against the number of clicks, one curve per method, with published NoC@90 marks.

    Parameters
    ----------
    results : dict
        ``{label: summary}`` where ``summary`` is a :func:`summarize_clicks` dict.
    path : str or Path
        Output picture (PNG, SVG or PDF).
    dataset : str, optional
        ``grabcut`` or ``berkeley``: draws the published methods' NoC@90 on the 0.90 line.
    title : str, optional
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for label, summary in results.items():
        curve = summary["miou_at_clicks"]
        ax.plot(range(1, len(curve) + 1), curve, marker="o", ms=3,
                label=f"{label} (NoC@90 {summary['noc90']:.2f})")
    for t in (0.85, 0.90):
        ax.axhline(t, color="0.6", lw=0.8, ls=":")
    for k, (name, noc) in enumerate(PUBLISHED_NOC90.get((dataset or "").lower(), {}).items()):
        ax.plot([noc], [TARGET_IOU], ls="none", marker="v", ms=8, color=f"C{(k + len(results)) % 10}",
                label=f"published: {name} NoC@90 {noc:.2f}")
    ax.set_xlabel("number of clicks")
    ax.set_ylabel("mean IoU")
    ax.set_xticks(range(1, MAX_CLICKS + 1, 2 if MAX_CLICKS > 10 else 1))
    ax.set_ylim(0.0 if min(min(s["miou_at_clicks"]) for s in results.values()) < 0.5 else 0.5, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title or f"click protocol{' on ' + dataset if dataset else ''}")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
