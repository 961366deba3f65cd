"""Judging masks against references: score tables, error overlays, folders of files.

The measures themselves are :mod:`napari_deepseg.core.evaluation.metrics` (one confusion
count per class); this module arranges them into tables (per class and
averaged, per file and averaged), draws where a prediction is wrong, pairs the
files of two folders by stem and writes CSV and JSON reports.

Examples
--------
>>> pred = np.array([[0, 1], [1, 2]]); truth = np.array([[0, 1], [2, 2]])
>>> table = evaluate_labels(pred, truth)
>>> [row["class"] for row in table.rows], round(table.mean["iou"], 3)
([0, 1, 2], 0.667)
>>> error_overlay(pred, truth).tolist()
[[0, 0], [3, 0]]
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_write, atomic_write_json
from ..io.files import read_labels
from .metrics import SCORE_NAMES, binary_scores, multiclass_scores
from ..utils.progress import CancelToken, ProgressCallback, check, report

#: values of :func:`error_overlay`
CORRECT, FALSE_POSITIVE, FALSE_NEGATIVE, WRONG_CLASS = 0, 1, 2, 3
#: names of the overlay's values, for a legend
OVERLAY_NAMES = {FALSE_POSITIVE: "false positive", FALSE_NEGATIVE: "false negative", WRONG_CLASS: "wrong class"}
#: file suffixes :func:`pair_files` reads
MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".gif", ".jpg", ".jpeg")


@dataclass(frozen=True)
class ScoreTable:
    """Scores of one prediction: a row per class and the mean over classes.

    Attributes
    ----------
    rows : list of dict
        ``{"class": label, "name": str, "pixels": reference pixels, <score>: float ...}``
        with the scores of :data:`~napari_deepseg.core.evaluation.metrics.SCORE_NAMES`.
    mean : dict
        Mean of each score over the rows.
    pixel_accuracy : float
        Fraction of (non-ignored) pixels whose label equals the reference.
    """

    rows: list
    mean: dict
    pixel_accuracy: float

    def as_rows(self) -> list:
        """The class rows followed by a ``mean`` row (for a table or a CSV file)."""
        mean = {"class": "mean", "name": "", "pixels": sum(r["pixels"] for r in self.rows), **self.mean}
        return [dict(r) for r in self.rows] + [mean]


def _check_masks(pred, truth) -> tuple:
    p, t = np.asarray(pred), np.asarray(truth)
    if p.shape != t.shape:
        raise ValueError(f"prediction has shape {p.shape} but the reference has shape {t.shape}")
    for name, a in (("prediction", p), ("reference", t)):
        if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
            raise TypeError(f"{name} must hold integer labels, got dtype {a.dtype}")
    return p, t


def evaluate_labels(pred, truth, classes: Sequence[int] | None = None, ignore: int | None = None,
                    names: dict | None = None, include_background: bool = True) -> ScoreTable:
    """Per-class (one against the rest) and averaged scores of a label mask.

    Parameters
    ----------
    pred, truth : array-like of int
        Predicted and reference labels of the same shape.
    classes : sequence of int, optional
        Labels to score; default every label present in either mask (except ``ignore``).
    ignore : int, optional
        Reference value whose pixels are left out (e.g. 128, GrabCut's band).
    names : dict, optional
        ``{label: name}`` shown in the ``name`` column.
    include_background : bool
        Whether label 0 is scored as a class when ``classes`` is not given.

    Raises
    ------
    ValueError
        For masks of different shapes, or nothing to score.
    TypeError
        For non-integer masks.
    """
    p, t = _check_masks(pred, truth)
    if classes is None:
        present = np.union1d(np.unique(p), np.unique(t))
        classes = [int(c) for c in present if (ignore is None or c != ignore) and (include_background or c != 0)]
        if not classes:
            raise ValueError("nothing to score: the masks hold no labels besides the ignored or background ones")
    result = multiclass_scores(p, t, classes=classes, ignore=ignore)
    valid = t != ignore if ignore is not None else None
    tv = t if valid is None else t[valid]
    counts = {int(c): int(np.count_nonzero(tv == c)) for c in result["per_class"]}
    names = names or {}
    rows = [{"class": int(c), "name": str(names.get(int(c), "")), "pixels": counts[int(c)], **scores}
            for c, scores in result["per_class"].items()]
    return ScoreTable(rows, dict(result["mean"]), float(result["overall_accuracy"]))


def error_overlay(pred, truth, ignore: int | None = None) -> np.ndarray:
    """Where a prediction is wrong: 1 false positive, 2 false negative, 3 wrong class.

    A false positive is an object label where the reference is background (0),
    a false negative background where the reference is an object, a wrong class
    two different object labels. Correct and ignored pixels are 0.

    Examples
    --------
    >>> error_overlay(np.array([1, 0, 1, 2, 1]), np.array([0, 1, 1, 1, 128]), ignore=128).tolist()
    [1, 2, 0, 3, 0]
    """
    p, t = _check_masks(pred, truth)
    out = np.zeros(p.shape, np.uint8)
    wrong = p != t
    if ignore is not None:
        wrong &= t != ignore
    out[wrong & (t == 0)] = FALSE_POSITIVE
    out[wrong & (p == 0)] = FALSE_NEGATIVE
    out[wrong & (p != 0) & (t != 0)] = WRONG_CLASS
    return out


def write_csv(path, rows: list, columns: Sequence[str] | None = None) -> Path:
    """Write dict rows to a CSV file (columns: ``columns`` or the keys of the first row).

    Raises
    ------
    ValueError
        For a file name not ending in ``.csv``.
    """
    p = Path(path)
    if p.suffix.lower() != ".csv":
        raise ValueError(f"cannot write a table to {p}: use a file name ending in .csv")
    columns = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    p.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _cell(row.get(k, "")) for k in columns})

    atomic_write(p, write)  # a temporary name renamed into place: a killed process leaves no half table
    return p


def _cell(value):
    return f"{value:.6f}" if isinstance(value, float) else value


# ------------------------------------------------------------------------------ folders
@dataclass(frozen=True)
class FilePair:
    """Files of one stem: either side may be missing (``None``)."""

    stem: str
    pred: Path | None
    truth: Path | None


def _by_stem(folder: Path, suffixes) -> dict:
    files: dict = {}
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix.lower() in suffixes:
            files.setdefault(f.stem, []).append(f)
    return files


def pair_files(pred_dir, truth_dir, suffixes: Sequence[str] = MASK_SUFFIXES) -> list:
    """Pair the mask files of two folders by file stem (``a.png`` with ``a.bmp``).

    Returns
    -------
    list of FilePair
        Sorted by stem; a stem found in only one folder has ``None`` on the other
        side. A stem with several files in one folder keeps the first (sorted)
        one; the others are reported by :func:`evaluate_folders`.

    Raises
    ------
    ValueError
        If a folder does not exist.
    """
    dirs = []
    for name, d in (("prediction folder", pred_dir), ("reference folder", truth_dir)):
        d = Path(d)
        if not d.is_dir():
            raise ValueError(f"{name} not found: {d}")
        dirs.append(_by_stem(d, tuple(s.lower() for s in suffixes)))
    preds, truths = dirs
    return [FilePair(s, (preds.get(s) or [None])[0], (truths.get(s) or [None])[0])
            for s in sorted(set(preds) | set(truths))]


@dataclass
class FolderEvaluation:
    """Scores of every file pair of two folders and their mean over the evaluated files.

    Attributes
    ----------
    rows : list of dict
        One per stem: ``file``, ``status`` (``ok`` or the reason it was not
        scored), the scores (empty when not scored).
    mean : dict
        Mean of each score over the files with status ``ok``.
    """

    rows: list = field(default_factory=list)
    mean: dict = field(default_factory=dict)

    @property
    def evaluated(self) -> int:
        """Number of files scored."""
        return sum(r["status"] == "ok" for r in self.rows)

    @property
    def problems(self) -> list:
        """``(file, reason)`` of every file that was not scored."""
        return [(r["file"], r["status"]) for r in self.rows if r["status"] != "ok"]

    def to_json(self) -> dict:
        """``{iou, dice, pixel_accuracy, precision, recall, f1, mse, evaluated, problems, files}``."""
        return {**{k: self.mean.get(k) for k in SCORE_NAMES}, "evaluated": self.evaluated,
                "problems": len(self.problems), "files": self.rows}


def score_pair(pred, truth, ignore: int | None = None, classes: Sequence[int] | None = None) -> dict:
    """Scores of one pair: binary (non-zero = object) or, with ``classes``, their macro mean.

    Examples
    --------
    >>> score_pair(np.array([255, 0, 0]), np.array([1, 1, 0]))["iou"]
    0.5
    """
    p, t = _check_masks(pred, truth)
    if classes is None:
        return binary_scores(p, t, ignore=ignore)
    return multiclass_scores(p, t, classes=classes, ignore=ignore)["mean"]


def _evaluate_pair(pair: FilePair, ignore, classes) -> dict:
    row = {"file": pair.stem, "status": "ok"}
    if pair.pred is None or pair.truth is None:
        row["status"] = "no prediction file" if pair.pred is None else "no reference file"
        return row
    try:
        scores = score_pair(read_labels(pair.pred), read_labels(pair.truth), ignore=ignore, classes=classes)
    except (ValueError, TypeError, OSError) as exc:
        row["status"] = " ".join(str(exc).split())
        return row
    row.update(scores)
    return row


def evaluate_folders(pred_dir, truth_dir, ignore: int | None = None, classes: Sequence[int] | None = None,
                     workers: int = 2, progress: ProgressCallback | None = None,
                     cancel: CancelToken | None = None) -> FolderEvaluation:
    """Score every prediction file against the reference file of the same stem.

    Parameters
    ----------
    pred_dir, truth_dir : path-like
        Folders of masks (PNG, TIFF, BMP, GIF, JPEG).
    ignore : int, optional
        Reference value left out (e.g. 128).
    classes : sequence of int, optional
        Score these labels (macro mean per file); default binary, non-zero = object.
    workers : int
        Threads reading and scoring files (decoding releases the GIL).

    Returns
    -------
    FolderEvaluation
        A missing partner, a file that cannot be read or two masks of different
        shapes give that file's row a status instead of stopping the run.
    """
    pairs = pair_files(pred_dir, truth_dir)
    if not pairs:
        raise ValueError(f"no mask files ({', '.join(MASK_SUFFIXES)}) in {pred_dir} or {truth_dir}")
    rows = []
    chunk = 64
    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        for start in range(0, len(pairs), chunk):
            check(cancel)
            report(progress, start, len(pairs), "evaluating")
            rows += list(pool.map(lambda pr: _evaluate_pair(pr, ignore, classes), pairs[start:start + chunk]))
    report(progress, len(pairs), len(pairs), "evaluated")
    ok = [r for r in rows if r["status"] == "ok"]
    mean = {k: float(np.mean([r[k] for r in ok])) for k in SCORE_NAMES} if ok else {}
    return FolderEvaluation(rows, mean)


def write_json(path, evaluation: FolderEvaluation) -> Path:
    """Write :meth:`FolderEvaluation.to_json` to ``path`` (``.json``)."""
    p = Path(path)
    if p.suffix.lower() != ".json":
        raise ValueError(f"cannot write a report to {p}: use a file name ending in .json")
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(p, evaluation.to_json())
    return p


#: columns of the per-file CSV
FILE_COLUMNS = ("file", "status") + SCORE_NAMES
#: columns of the per-class CSV
CLASS_COLUMNS = ("class", "name", "pixels") + SCORE_NAMES
