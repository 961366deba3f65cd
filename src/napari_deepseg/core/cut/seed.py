"""The ``seed`` preset: the original notebook's energy.

4-neighbour contrast n-links on the backbone's features and the squared
distance of each pixel's features to the centroid of every class's strokes,
minimised by binary max-flow (two labels) or alpha-expansion (more).
"""

from __future__ import annotations

import numpy as np

from ..features import FeatureMap
from . import graphcut, maxflow
from .appearance import make_appearance_model
from .energy import seed_features, seed_index
from .image import ImageFeatures


def _solve(costs: np.ndarray, hard: np.ndarray, nlinks: graphcut.NLinks) -> np.ndarray:
    """Binary max-flow for two classes, alpha-expansion for more; returns class indices."""
    if costs.shape[-1] == 2:
        fg = maxflow.solve_binary(costs[..., 0], costs[..., 1], nlinks, hard == 0, hard == 1)
        return np.where(fg, 0, 1).astype(np.int32)
    return maxflow.solve_multilabel(costs, nlinks.lam, hard)


def _full_res_costs(fm: FeatureMap, model) -> np.ndarray:
    """Appearance costs of every pixel, computed on full-resolution features in strips."""
    rows, cols = fm.image_shape
    out = np.empty((rows, cols, len(model.classes_)), np.float32)
    for start, stop, block in fm.iter_full_res():
        out[start:stop] = model.costs(block.reshape(-1, block.shape[-1])).reshape(stop - start, cols, -1)
    return out


def cut_seed(entry: ImageFeatures, seeds, classes, lam, sigma) -> np.ndarray:
    """The original notebook's energy."""
    _, nlinks = entry.nlinks_for(lam, sigma, kind="seed")
    x, y = seed_features(entry.features, seeds)
    model = make_appearance_model("centroid").fit(x, y)
    costs = _full_res_costs(entry.features, model)
    return _solve(costs, seed_index(seeds, classes), nlinks)
