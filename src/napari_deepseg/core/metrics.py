"""Segmentation quality measures (the evaluation issue extends this module)."""

from __future__ import annotations

import numpy as np


def iou(pred, truth, ignore=None) -> float:
    """Intersection over union of two binary masks, leaving out ``truth == ignore``.

    Parameters
    ----------
    pred, truth : array-like
        Same shape; non-zero = object.
    ignore : int, optional
        Value in ``truth`` whose pixels are excluded (GrabCut's 128 band).

    Returns
    -------
    float
        IoU in [0, 1]; 1.0 when both masks are empty.

    Examples
    --------
    >>> iou(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 128]), ignore=128)
    0.5
    """
    p, t = np.asarray(pred), np.asarray(truth)
    if p.shape != t.shape:
        raise ValueError(f"pred has shape {p.shape} but truth has shape {t.shape}")
    valid = np.ones(t.shape, bool) if ignore is None else t != ignore
    pb, tb = (p != 0) & valid, (t != 0) & valid
    union = np.count_nonzero(pb | tb)
    return 1.0 if union == 0 else float(np.count_nonzero(pb & tb) / union)
