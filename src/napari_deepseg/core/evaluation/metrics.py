"""Segmentation quality measures for binary and multi-class masks.

Every measure leaves out the pixels where the reference equals ``ignore``
(GrabCut's 128 band, the Oxford-IIIT Pet trimap border). All come from one
confusion matrix, so a full report costs one pass over the pixels.

Conventions
-----------
* **Binary** (the default): non-zero = object in both masks. A prediction may
  also be a probability map in [0, 1]; it is thresholded at 0.5 for the counting
  measures and used as is by :func:`mse`.
* **Multi-class** (``classes=`` given, or :func:`multiclass_scores`): every
  listed label is scored one-against-the-rest and the macro mean is returned.
* A ratio whose denominator is zero is 1.0 when its numerator is zero too
  (both masks agree that the class is absent) — e.g. the IoU of two empty masks.
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

#: names of the per-class scores, in report order
SCORE_NAMES = ("iou", "dice", "pixel_accuracy", "precision", "recall", "f1", "mse")


def _pair(pred, truth):
    p, t = np.asarray(pred), np.asarray(truth)
    if p.shape != t.shape:
        raise ValueError(f"pred has shape {p.shape} but truth has shape {t.shape}")
    return p, t


def _valid(truth: np.ndarray, ignore) -> Optional[np.ndarray]:
    return None if ignore is None else truth != ignore


def _as_binary(pred: np.ndarray) -> np.ndarray:
    """Object pixels of a label mask (non-zero) or a probability map (> 0.5)."""
    if pred.dtype.kind == "f":
        return pred > 0.5
    return pred != 0


def _ratio(num: float, den: float) -> float:
    return 1.0 if den == 0 else float(num / den)


def binary_counts(pred, truth, ignore=None) -> tuple:
    """``(tp, fp, fn, tn)`` pixel counts of a binary prediction.

    Examples
    --------
    >>> binary_counts(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 128]), ignore=128)
    (1, 1, 1, 0)
    """
    p, t = _pair(pred, truth)
    valid = _valid(t, ignore)
    pb, tb = _as_binary(p), t != 0
    if valid is not None:
        pb, tb = pb[valid], tb[valid]
    tp = int(np.count_nonzero(pb & tb))
    fp = int(np.count_nonzero(pb)) - tp
    fn = int(np.count_nonzero(tb)) - tp
    return tp, fp, fn, int(pb.size) - tp - fp - fn


def _scores_from_counts(tp, fp, fn, tn) -> dict:
    """The counting measures of one class from its confusion counts."""
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "iou": _ratio(tp, tp + fp + fn),
        "dice": _ratio(2 * tp, 2 * tp + fp + fn),
        "pixel_accuracy": _ratio(tp + tn, tp + fp + fn + tn),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "mse": _ratio(fp + fn, tp + fp + fn + tn) if tp + fp + fn + tn else 0.0,
    }


def binary_scores(pred, truth, ignore=None) -> dict:
    """Every measure of a binary prediction.

    Parameters
    ----------
    pred : array-like
        Label mask (non-zero = object) or probability map (float in [0, 1]).
    truth : array-like
        Reference mask of the same shape, non-zero = object.
    ignore : int, optional
        Value in ``truth`` whose pixels are left out.

    Returns
    -------
    dict
        ``iou``, ``dice``, ``pixel_accuracy``, ``precision``, ``recall``, ``f1``
        and ``mse`` (of the probabilities when ``pred`` is float).

    Examples
    --------
    >>> s = binary_scores(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))
    >>> s["iou"], s["dice"], s["pixel_accuracy"], s["mse"]
    (0.5, 0.6666666666666666, 0.75, 0.25)
    """
    p, t = _pair(pred, truth)
    out = _scores_from_counts(*binary_counts(p, t, ignore))
    if p.dtype.kind == "f":
        out["mse"] = mse(p, t, ignore=ignore)
    return out


def confusion_matrix(pred, truth, labels: Iterable[int], ignore=None) -> np.ndarray:
    """``(k, k)`` counts: row = reference label, column = predicted label.

    Pixels whose reference or prediction is not in ``labels`` are left out, as
    are pixels where ``truth == ignore``.

    Examples
    --------
    >>> confusion_matrix(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), [0, 1, 2]).tolist()
    [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    """
    p, t = _pair(pred, truth)
    labels = np.asarray(list(labels), dtype=np.int64)
    k = labels.size
    valid = _valid(t, ignore)
    p, t = (p, t) if valid is None else (p[valid], t[valid])
    p, t = p.ravel().astype(np.int64), t.ravel().astype(np.int64)
    order = np.argsort(labels)
    sorted_labels = labels[order]

    def index(values):
        pos = np.clip(np.searchsorted(sorted_labels, values), 0, k - 1)
        ok = sorted_labels[pos] == values
        return order[pos], ok

    ti, tok = index(t)
    pi, pok = index(p)
    keep = tok & pok
    return np.bincount(ti[keep] * k + pi[keep], minlength=k * k).reshape(k, k)


def multiclass_scores(pred, truth, classes: Optional[Iterable[int]] = None, ignore=None) -> dict:
    """Per-class (one against the rest) and macro-averaged measures.

    Parameters
    ----------
    pred, truth : array-like of int
        Label masks of the same shape.
    classes : iterable of int, optional
        Labels to score; default every label in either mask (``ignore`` excluded).
        Include 0 to score the background as a class.
    ignore : int, optional
        Reference value whose pixels are left out.

    Returns
    -------
    dict
        ``{"per_class": {label: scores}, "mean": scores, "overall_accuracy": float}``
        where ``scores`` has the keys of :data:`SCORE_NAMES`. ``mse`` of a class is
        the squared error of its one-hot indicator; the mean is over classes.

    Examples
    --------
    >>> r = multiclass_scores(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), classes=[1, 2])
    >>> r["per_class"][1]["iou"], r["per_class"][2]["iou"], r["mean"]["iou"]
    (0.5, 0.5, 0.5)
    """
    p, t = _pair(pred, truth)
    if classes is None:
        present = np.union1d(np.unique(p), np.unique(t))
        classes = [int(c) for c in present if ignore is None or c != ignore]
    classes = [int(c) for c in classes]
    if not classes:
        raise ValueError("no classes to score: both masks hold only ignored pixels")
    valid = _valid(t, ignore)
    pv, tv = (p, t) if valid is None else (p[valid], t[valid])
    total = int(pv.size)
    per_class = {}
    for c in classes:
        pc, tc = pv == c, tv == c
        tp = int(np.count_nonzero(pc & tc))
        fp, fn = int(np.count_nonzero(pc)) - tp, int(np.count_nonzero(tc)) - tp
        per_class[c] = _scores_from_counts(tp, fp, fn, total - tp - fp - fn)
    mean = {name: float(np.mean([s[name] for s in per_class.values()])) for name in SCORE_NAMES}
    return {"per_class": per_class, "mean": mean,
            "overall_accuracy": _ratio(int(np.count_nonzero(pv == tv)), total)}


def _score(name: str, pred, truth, ignore, classes) -> float:
    if classes is None:
        return binary_scores(pred, truth, ignore)[name]
    return multiclass_scores(pred, truth, classes, ignore)["mean"][name]


def iou(pred, truth, ignore=None, classes=None) -> float:
    """Intersection over union (Jaccard index); macro mean over ``classes`` if given.

    Examples
    --------
    >>> iou(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 128]), ignore=128)
    0.5
    """
    return _score("iou", pred, truth, ignore, classes)


def dice(pred, truth, ignore=None, classes=None) -> float:
    """Dice coefficient 2|P∩T| / (|P| + |T|); macro mean over ``classes`` if given.

    Examples
    --------
    >>> dice(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))
    0.6666666666666666
    """
    return _score("dice", pred, truth, ignore, classes)


def pixel_accuracy(pred, truth, ignore=None, classes=None) -> float:
    """Fraction of (non-ignored) pixels labelled correctly.

    Binary: object vs background. With ``classes``: the fraction of pixels whose
    label equals the reference (over all labels, not a per-class mean).

    Examples
    --------
    >>> pixel_accuracy(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), classes=[0, 1, 2])
    0.75
    """
    if classes is None:
        return binary_scores(pred, truth, ignore)["pixel_accuracy"]
    return multiclass_scores(pred, truth, classes, ignore)["overall_accuracy"]


def precision(pred, truth, ignore=None, classes=None) -> float:
    """TP / (TP + FP); macro mean over ``classes`` if given.

    Examples
    --------
    >>> precision(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))
    0.5
    """
    return _score("precision", pred, truth, ignore, classes)


def recall(pred, truth, ignore=None, classes=None) -> float:
    """TP / (TP + FN); macro mean over ``classes`` if given.

    Examples
    --------
    >>> recall(np.array([1, 0, 0, 0]), np.array([1, 1, 0, 0]))
    0.5
    """
    return _score("recall", pred, truth, ignore, classes)


def f1(pred, truth, ignore=None, classes=None) -> float:
    """Harmonic mean of precision and recall (equals Dice for hard masks).

    Examples
    --------
    >>> f1(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))
    0.6666666666666666
    """
    return _score("f1", pred, truth, ignore, classes)


def mse(pred, truth, ignore=None, classes=None) -> float:
    """Mean squared error between the prediction and the reference indicator.

    Binary: ``pred`` is a probability map in [0, 1] (float) or a label mask
    (non-zero = 1); the reference is 1 on the object. With ``classes``: the mean
    over classes of the squared error of each class's one-hot indicator.

    Examples
    --------
    >>> mse(np.array([0.5, 1.0, 0.0, 0.0]), np.array([1, 1, 0, 128]), ignore=128)
    0.08333333333333333
    """
    if classes is not None:
        return multiclass_scores(pred, truth, classes, ignore)["mean"]["mse"]
    p, t = _pair(pred, truth)
    valid = _valid(t, ignore)
    prob = p.astype(np.float64) if p.dtype.kind == "f" else (p != 0).astype(np.float64)
    ref = (t != 0).astype(np.float64)
    if valid is not None:
        prob, ref = prob[valid], ref[valid]
    if prob.size == 0:
        return 0.0
    if prob.min(initial=0.0) < 0 or prob.max(initial=0.0) > 1:
        raise ValueError("a float prediction must hold probabilities in [0, 1]")
    return float(np.mean((prob - ref) ** 2))
