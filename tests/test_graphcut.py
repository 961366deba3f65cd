"""Graph-cut energies and solvers, checked by hand and by brute force on tiny grids."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from _synthetic import three_class_image, three_class_scribbles
from napari_deepseg.core import graphcut
from napari_deepseg.core.features import FeatureMap
from napari_deepseg.core.graphcut import (
    OFFSETS_4,
    OFFSETS_8,
    auto_sigma,
    contrast_nlinks,
    feature_sqdiffs,
    neighbour_sqdiff,
    pair_slices,
    solve_binary,
    solve_multilabel,
)
from napari_deepseg.core.metrics import iou


# =========================================================================== helpers
def test_pair_slices_by_hand():
    src, dst = pair_slices((3, 4), (0, 1))
    assert src == (slice(0, 3), slice(0, 3)) and dst == (slice(0, 3), slice(1, 4))
    src, dst = pair_slices((3, 4), (1, 0))
    assert src == (slice(0, 2), slice(0, 4)) and dst == (slice(1, 3), slice(0, 4))
    src, dst = pair_slices((3, 4), (1, 1))
    assert src == (slice(0, 2), slice(0, 3)) and dst == (slice(1, 3), slice(1, 4))
    src, dst = pair_slices((3, 4), (1, -1))
    assert src == (slice(0, 2), slice(1, 4)) and dst == (slice(1, 3), slice(0, 3))


@pytest.mark.parametrize("offset", OFFSETS_8 + ((2, -1), (0, 3)))
def test_pair_slices_pairs_are_neighbours(offset):
    shape = (4, 5)
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    src, dst = pair_slices(shape, offset)
    np.testing.assert_array_equal(rr[dst] - rr[src], offset[0])
    np.testing.assert_array_equal(cc[dst] - cc[src], offset[1])
    # every valid pair appears exactly once
    n_valid = (shape[0] - abs(offset[0])) * (shape[1] - abs(offset[1]))
    assert rr[src].size == n_valid


def test_neighbour_sqdiff_by_hand():
    a = np.array([[0.0, 1.0, 3.0], [2.0, 2.0, 0.0]], np.float32)
    np.testing.assert_array_equal(neighbour_sqdiff(a, (0, 1)), [[1, 4], [0, 4]])
    np.testing.assert_array_equal(neighbour_sqdiff(a, (1, 0)), [[4, 1, 9]])
    np.testing.assert_array_equal(neighbour_sqdiff(a, (1, 1)), [[4, 1]])  # (0,0)-(1,1), (0,1)-(1,2)
    np.testing.assert_array_equal(neighbour_sqdiff(a, (1, -1)), [[1, 1]])  # (0,1)-(1,0), (0,2)-(1,1)
    # channels are summed
    c = np.stack([a, 2 * a], axis=-1)
    np.testing.assert_array_equal(neighbour_sqdiff(c, (0, 1)), 5 * neighbour_sqdiff(a, (0, 1)))
    assert neighbour_sqdiff(c, (0, 1)).dtype == np.float32


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auto_sigma_is_sqrt_median(seed):
    rng = np.random.default_rng(seed)
    parts = [rng.random((5, 4)) * 10, rng.random((3, 6)) * 10]
    expected = math.sqrt(np.median(np.concatenate([p.ravel() for p in parts])))
    assert auto_sigma(parts) == pytest.approx(expected)


def test_auto_sigma_degenerate_is_one():
    assert auto_sigma([np.zeros((3, 3))]) == 1.0
    assert auto_sigma([np.zeros((0,))]) == 1.0


def test_contrast_nlinks_formula_by_hand():
    # squared differences on a (2, 3) grid, one array per offset of OFFSETS_8
    d = [
        np.array([[0.0, 1.0], [2.0, 0.5]], np.float32),  # (0, 1)
        np.array([[4.0, 0.25, 9.0]], np.float32),  # (1, 0)
        np.array([[1.0, 0.0]], np.float32),  # (1, 1)
        np.array([[2.0, 16.0]], np.float32),  # (1, -1)
    ]
    lam, sigma = 2.0, 2.0
    nl = contrast_nlinks(d, OFFSETS_8, (2, 3), lam=lam, sigma=sigma)
    assert nl.lam == lam and nl.sigma == sigma and nl.shape == (2, 3) and nl.offsets == OFFSETS_8
    r2 = 1.0 / math.sqrt(2.0)
    expected = [
        lam * np.exp(-np.array([[0.0, 1.0], [2.0, 0.5]]) / 4.0),
        lam * np.exp(-np.array([[4.0, 0.25, 9.0]]) / 4.0),
        lam * r2 * np.exp(-np.array([[1.0, 0.0]]) / 4.0),
        lam * r2 * np.exp(-np.array([[2.0, 16.0]]) / 4.0),
    ]
    for got, exp in zip(nl.weights, expected):
        np.testing.assert_allclose(got, exp, rtol=1e-6)
    # the diagonal of a flat region weighs exactly lam / sqrt(2)
    assert float(nl.weights[2][0, 1]) == pytest.approx(lam * r2, rel=1e-6)


def test_contrast_nlinks_auto_sigma():
    rng = np.random.default_rng(3)
    d = [rng.random((4, 3)).astype(np.float32), rng.random((3, 4)).astype(np.float32)]
    nl = contrast_nlinks(d, OFFSETS_4, (4, 4), lam=1.5)
    assert nl.sigma == pytest.approx(auto_sigma(d))
    np.testing.assert_allclose(nl.weights[0], 1.5 * np.exp(-d[0] / nl.sigma**2), rtol=1e-6)


def _random_nlinks(rng, shape, offsets, lam=None):
    d = []
    for off in offsets:
        a, _ = pair_slices(shape, off)
        d.append((rng.random(np.zeros(shape)[a].shape) * 3).astype(np.float32))
    lam = float(rng.uniform(0.2, 3.0)) if lam is None else lam
    return contrast_nlinks(d, offsets, shape, lam=lam)


def test_nlinks_flat_and_node_bound():
    rng = np.random.default_rng(4)
    shape = (3, 4)
    nl = _random_nlinks(rng, shape, OFFSETS_8)
    i, j, w = nl.flat()
    assert i.shape == j.shape == w.shape
    assert i.size == sum(x.size for x in nl.weights)
    ri, ci = np.unravel_index(i, shape)
    rj, cj = np.unravel_index(j, shape)
    steps = set(zip((rj - ri).tolist(), (cj - ci).tolist()))
    assert steps == set(OFFSETS_8)
    for off, weights in zip(nl.offsets, nl.weights):
        sel = (rj - ri == off[0]) & (cj - ci == off[1])
        np.testing.assert_allclose(np.sort(w[sel]), np.sort(weights.ravel()), rtol=1e-6)
    per_node = np.bincount(i, w, minlength=12) + np.bincount(j, w, minlength=12)
    assert per_node.max() <= nl.max_node_weight() + 1e-6


# =========================================================================== binary solver
def _binary_energy(labels, cost_fg, cost_bg, nl):
    """E(x) = sum of unaries + sum of n-link weights across label changes (labels True = object)."""
    e = float(np.where(labels, cost_fg, cost_bg).sum())
    for off, w in zip(nl.offsets, nl.weights):
        a, b = pair_slices(nl.shape, off)
        e += float(w[labels[a] != labels[b]].sum())
    return e


def _brute_force_min(cost_fg, cost_bg, nl, hard_fg=None, hard_bg=None):
    shape = nl.shape
    n = shape[0] * shape[1]
    best = np.inf
    for bits in itertools.product((False, True), repeat=n):
        lab = np.array(bits).reshape(shape)
        if hard_fg is not None and not lab[hard_fg].all():
            continue
        if hard_bg is not None and lab[hard_bg].any():
            continue
        best = min(best, _binary_energy(lab, cost_fg, cost_bg, nl))
    return best


@pytest.mark.parametrize("offsets", [OFFSETS_4, OFFSETS_8], ids=["4-nbhd", "8-nbhd"])
@pytest.mark.parametrize("seed", range(6))
def test_solve_binary_is_the_global_minimum(offsets, seed):
    rng = np.random.default_rng(seed)
    shape = (3, 3)
    nl = _random_nlinks(rng, shape, offsets)
    cost_fg = (rng.random(shape) * 3).astype(np.float32)
    cost_bg = (rng.random(shape) * 3).astype(np.float32)
    out = solve_binary(cost_fg, cost_bg, nl)
    assert out.shape == shape and out.dtype == bool
    e = _binary_energy(out, cost_fg, cost_bg, nl)
    assert e == pytest.approx(_brute_force_min(cost_fg, cost_bg, nl), abs=1e-4)


@pytest.mark.parametrize("seed", range(6))
def test_solve_binary_with_hard_constraints_is_constrained_minimum(seed):
    rng = np.random.default_rng(100 + seed)
    shape = (3, 3)
    nl = _random_nlinks(rng, shape, OFFSETS_8)
    cost_fg = (rng.random(shape) * 3).astype(np.float32)
    cost_bg = (rng.random(shape) * 3).astype(np.float32)
    pick = rng.permutation(9)
    hard_fg = np.zeros(shape, bool)
    hard_bg = np.zeros(shape, bool)
    hard_fg.flat[pick[:2]] = True
    hard_bg.flat[pick[2:4]] = True
    out = solve_binary(cost_fg, cost_bg, nl, hard_fg, hard_bg)
    assert out[hard_fg].all() and not out[hard_bg].any()
    e = _binary_energy(out, cost_fg, cost_bg, nl)
    assert e == pytest.approx(_brute_force_min(cost_fg, cost_bg, nl, hard_fg, hard_bg), abs=1e-4)


def test_solve_binary_hard_constraints_beat_any_cost():
    rng = np.random.default_rng(7)
    shape = (20, 25)
    nl = _random_nlinks(rng, shape, OFFSETS_8, lam=50.0)
    # unaries scream "background" everywhere, strong smoothing; one forced object pixel
    cost_fg = np.full(shape, 1e4, np.float32)
    cost_bg = np.zeros(shape, np.float32)
    hard_fg = np.zeros(shape, bool)
    hard_fg[10, 12] = True
    hard_fg[0, 0] = True
    hard_bg = np.zeros(shape, bool)
    hard_bg[10, 13] = True  # next to a forced object pixel
    out = solve_binary(cost_fg, cost_bg, nl, hard_fg, hard_bg)
    assert out[hard_fg].all() and not out[hard_bg].any()
    assert out.sum() == 2  # everything else follows the unaries
    # and the other way round
    out2 = solve_binary(cost_bg, cost_fg, nl, hard_fg=None, hard_bg=hard_bg)
    assert not out2[hard_bg].any() and out2.sum() == out2.size - 1


def test_solve_binary_smoothing_removes_isolated_noise():
    shape = (12, 12)
    truth = np.zeros(shape, bool)
    truth[3:9, 3:9] = True
    cost_fg = np.where(truth, 0.0, 1.0).astype(np.float32)
    cost_bg = 1.0 - cost_fg
    # flip a few unaries: isolated wrong pixels
    for r, c in [(0, 0), (5, 5), (10, 2)]:
        cost_fg[r, c], cost_bg[r, c] = cost_bg[r, c], cost_fg[r, c]
    flat = [np.zeros(np.zeros(shape)[pair_slices(shape, o)[0]].shape, np.float32) for o in OFFSETS_4]
    weak = contrast_nlinks(flat, OFFSETS_4, shape, lam=0.1, sigma=1.0)
    strong = contrast_nlinks(flat, OFFSETS_4, shape, lam=0.6, sigma=1.0)
    assert np.count_nonzero(solve_binary(cost_fg, cost_bg, weak) != truth) == 3
    np.testing.assert_array_equal(solve_binary(cost_fg, cost_bg, strong), truth)


# =========================================================================== strips
def test_feature_sqdiffs_strips_equal_direct(monkeypatch):
    rows, cols, stride = 75, 61, 4
    rng = np.random.default_rng(8)
    grid = rng.normal(size=(math.ceil(rows / stride), math.ceil(cols / stride), 7)).astype(np.float32)
    fm = FeatureMap(grid, stride, (rows, cols))
    full = fm.full_res()
    direct = [neighbour_sqdiff(full, off) for off in OFFSETS_8]

    original = FeatureMap.iter_full_res
    strips = []

    def small_strips(self, max_bytes=128 << 20, overlap=0):
        for item in original(self, max_bytes=1, overlap=overlap):  # 8 rows per strip
            strips.append(item[:2])
            yield item

    monkeypatch.setattr(FeatureMap, "iter_full_res", small_strips)
    got = feature_sqdiffs(fm, OFFSETS_8)
    assert len(strips) >= 9
    for g, d, off in zip(got, direct, OFFSETS_8):
        assert g.shape == d.shape, off
        np.testing.assert_allclose(g, d, rtol=1e-5, atol=1e-5, err_msg=str(off))


def test_feature_sqdiffs_stride_one():
    img = np.random.default_rng(9).random((9, 11, 3)).astype(np.float32)
    fm = FeatureMap(img, 1, (9, 11))
    for got, off in zip(feature_sqdiffs(fm, OFFSETS_8), OFFSETS_8):
        np.testing.assert_allclose(got, neighbour_sqdiff(img, off), rtol=1e-6)


# =========================================================================== multi-label
def _potts_energy(labels, costs, lam):
    e = float(np.take_along_axis(costs, labels[..., None], axis=-1).sum())
    for off in OFFSETS_4:
        a, b = pair_slices(labels.shape, off)
        e += lam * float(np.count_nonzero(labels[a] != labels[b]))
    return e


@pytest.mark.parametrize("seed", range(3))
def test_solve_multilabel_within_expansion_bound(seed):
    """alpha-expansion reaches at most twice the optimum of a Potts energy (brute force, 2x3 grid)."""
    rng = np.random.default_rng(seed)
    shape, n = (2, 3), 3
    costs = rng.random(shape + (n,)) * 2
    lam = float(rng.uniform(0.2, 1.5))
    out = solve_multilabel(costs, lam)
    assert out.shape == shape and out.dtype == np.int32
    best = min(
        _potts_energy(np.array(lab).reshape(shape), costs, lam)
        for lab in itertools.product(range(n), repeat=6)
    )
    assert _potts_energy(out, costs, lam) <= 2 * best + 1e-9


def _colour_costs(image, scribbles, classes):
    x = image.astype(np.float32) / 255.0
    cents = [x[scribbles == c].mean(0) for c in classes]
    return np.stack([((x - m) ** 2).sum(-1) for m in cents], axis=-1)


def test_solve_multilabel_three_regions():
    image, truth = three_class_image()
    scribbles = three_class_scribbles(truth)
    classes = np.array([1, 2, 3])
    costs = _colour_costs(image, scribbles, classes) * 20
    hard = np.full(truth.shape, -1, np.int32)
    for k, c in enumerate(classes):
        hard[scribbles == c] = k
    out = solve_multilabel(costs, lam=0.5, hard=hard)
    assert set(np.unique(out)) == {0, 1, 2}
    # index 0 = class 1 (disk), 1 = class 2 (background), 2 = class 3 (square)
    assert iou(out == 0, truth == 1) > 0.95
    assert iou(out == 2, truth == 3) > 0.95
    assert iou(out == 1, truth == 0) > 0.95
    assert np.all(out[hard >= 0] == hard[hard >= 0])


def test_solve_multilabel_hard_labels_override_costs():
    rng = np.random.default_rng(11)
    costs = np.zeros((10, 12, 4))
    costs[..., 1:] = 100.0  # label 0 is far cheaper everywhere
    hard = np.full((10, 12), -1, np.int32)
    idx = rng.choice(120, 15, replace=False)
    hard.flat[idx] = rng.integers(1, 4, 15)
    out = solve_multilabel(costs, lam=5.0, hard=hard)
    np.testing.assert_array_equal(out.flat[idx], hard.flat[idx])
    assert np.all(out[hard < 0] == 0)


def test_presets_listed():
    assert set(graphcut.PRESETS) == {"default", "seed"}
