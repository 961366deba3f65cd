"""Graph-cut energies and solvers, checked by hand and by brute force on tiny grids."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from _synthetic import three_class_image, three_class_scribbles
from napari_deepseg.core.cut import graphcut, maxflow
from napari_deepseg.core.features import FeatureMap
from napari_deepseg.core.cut.graphcut import (
    OFFSETS_4,
    OFFSETS_8,
    auto_sigma,
    contrast_nlinks,
    feature_sqdiffs,
    neighbour_sqdiff,
    pair_slices,
)
from napari_deepseg.core.cut.maxflow import solve_binary, solve_multilabel
from napari_deepseg.core.evaluation.metrics import iou


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


# =========================================================================== integer graphs, incremental cuts
def test_integer_scale_examples():
    assert maxflow.integer_scale(154_401, 181.0) == 38
    assert maxflow.integer_scale(4_194_304, 101.0) == 0  # would round to < 4 levels per unit: floats
    assert maxflow.integer_scale(100, 10.0) == 100  # capped at ``largest``
    assert maxflow.integer_scale(100, 10.0, largest=7) == 7
    assert maxflow.integer_scale(1_000_000, 100.0) == 10
    assert maxflow.integer_scale(10_000_000, 100.0) == 0
    assert maxflow.integer_scale(1, 0.0) == 100  # degenerate capacities still give a valid scale


@pytest.mark.parametrize("n", [1, 12, 1_000, 154_401, 1_000_000, 2_700_000, 5_000_000])
@pytest.mark.parametrize("cap", [0.5, 21.0, 181.0, 1e3])
def test_integer_scale_never_overflows(n, cap):
    scale = maxflow.integer_scale(n, cap)
    assert scale == 0 or 4 <= scale <= 100
    if scale:
        assert scale * n * cap < 2**30 == maxflow.INT_INFINITY


def test_tlinks_by_hand():
    fg = np.array([[1.0, 2.0, 3.0]], np.float32)
    bg = np.array([[4.0, 5.0, 6.0]], np.float32)
    hf = np.array([[True, False, False]])
    hb = np.array([[False, False, True]])
    src, snk = graphcut.tlinks(fg, bg, hf, hb, big=99.0)
    np.testing.assert_array_equal(src, [[99.0, 5.0, 0.0]])  # cost of background
    np.testing.assert_array_equal(snk, [[0.0, 2.0, 99.0]])  # cost of object
    src, snk = graphcut.tlinks(fg, bg)
    np.testing.assert_array_equal(src, bg)
    np.testing.assert_array_equal(snk, fg)
    assert src.dtype == snk.dtype == np.float32 and src is not bg


def _quarter_nlinks(rng, shape, offsets=OFFSETS_8):
    """Weights on multiples of 1/4: exact in float32 and in an integer graph of scale 100."""
    weights = []
    for off in offsets:
        a, _ = pair_slices(shape, off)
        weights.append((rng.integers(0, 12, np.zeros(shape)[a].shape) / 4).astype(np.float32))
    return graphcut.NLinks(tuple(shape), tuple(offsets), weights, 1.0, 1.0)


def _quarter_costs(rng, shape):
    return (rng.integers(0, 80, shape) / 4).astype(np.float32)  # 0 .. 19.75


def _seeds(shape):
    hard_fg = np.zeros(shape, bool)
    hard_bg = np.zeros(shape, bool)
    hard_fg[shape[0] // 2, shape[1] // 2 - 1 : shape[1] // 2 + 1] = True
    hard_bg[0, 0] = hard_bg[-1, -1] = True
    return hard_fg, hard_bg


@pytest.mark.parametrize("seed", range(8))
def test_incremental_cut_integer_and_float_graphs_agree(seed):
    rng = np.random.default_rng(100 + seed)
    shape = (int(rng.integers(8, 20)), int(rng.integers(8, 20)))
    nl = _quarter_nlinks(rng, shape)
    hard_fg, hard_bg = _seeds(shape)
    star = graphcut.star_edges(hard_fg) if seed % 2 else None
    big = float(np.floor(nl.max_node_weight())) + 21.0
    as_int = maxflow.IncrementalCut(nl, star, max_tlink=21.0)
    as_float = maxflow.IncrementalCut(nl, star, max_tlink=1e9)  # no integer scale fits: a float graph
    assert as_int.scale == 100 and as_float.scale == 0
    assert as_int.graph.__class__.__name__ == "GraphInt" and as_float.graph.__class__.__name__ == "GraphFloat"
    for _ in range(4):
        caps = graphcut.tlinks(_quarter_costs(rng, shape), _quarter_costs(rng, shape), hard_fg, hard_bg, big)
        a, b = as_int.solve(*caps), as_float.solve(*caps)
        assert a.shape == shape and a.dtype == bool
        np.testing.assert_array_equal(a, b)
        assert a[hard_fg].all()


def _cut_energy(fg, src, snk, nl, star, star_weight=1e9):
    """Cut value of a labelling (True = source side) in the graph IncrementalCut builds."""
    e = float(np.where(fg, snk, src).sum())
    for off, w in zip(nl.offsets, nl.weights):
        a, b = pair_slices(nl.shape, off)
        e += float(w[fg[a] != fg[b]].sum())
    if star is not None:
        flat = fg.ravel()
        e += star_weight * float(np.count_nonzero(flat[star[0]] & ~flat[star[1]]))
    return e


def _tiny_star_problem(rng):
    """A 3x4 grid's n-links, the star edges about one centre pixel, and all 4096 labellings."""
    shape = (3, 4)
    nl = _quarter_nlinks(rng, shape)
    centres = np.zeros(shape, bool)
    centres[1, 1] = True
    labellings = np.array(list(itertools.product((False, True), repeat=12))).reshape(-1, *shape)
    return shape, nl, graphcut.star_edges(centres), labellings


@pytest.mark.parametrize("integer", [True, False], ids=["int", "float"])
@pytest.mark.parametrize("seed", range(3))
def test_soft_star_cut_is_the_minimum_on_tiny_grids(seed, integer):
    """A broken ray costs star_weight: the cut is the exact minimum of that energy, not the hard star's."""
    rng = np.random.default_rng(300 + seed)
    shape, nl, star, labellings = _tiny_star_problem(rng)
    w = 0.5
    cut = maxflow.IncrementalCut(nl, star, max_tlink=21.0, integer=integer, star_weight=w)
    differs = 0
    for _ in range(6):
        src, snk = _quarter_costs(rng, shape), _quarter_costs(rng, shape)
        got = cut.solve(src, snk)
        soft = [_cut_energy(lab, src, snk, nl, star, w) for lab in labellings]
        assert _cut_energy(got, src, snk, nl, star, w) == pytest.approx(min(soft), abs=1e-6)
        hard = labellings[int(np.argmin([_cut_energy(lab, src, snk, nl, star) for lab in labellings]))]
        differs += int(not np.array_equal(got, hard))
    assert differs  # the soft star does break rays the hard one keeps


@pytest.mark.parametrize("seed", range(3))
def test_incremental_cut_is_the_minimum_on_tiny_grids(seed):
    rng = np.random.default_rng(200 + seed)
    shape, nl, star, labellings = _tiny_star_problem(rng)
    cut = maxflow.IncrementalCut(nl, star, max_tlink=21.0)
    for _ in range(3):
        src, snk = _quarter_costs(rng, shape), _quarter_costs(rng, shape)
        got = cut.solve(src, snk)
        best = min(_cut_energy(lab, src, snk, nl, star) for lab in labellings)
        assert _cut_energy(got, src, snk, nl, star) == pytest.approx(best, abs=1e-6)


@pytest.mark.parametrize("star_edges", [False, True], ids=["plain", "star"])
@pytest.mark.parametrize("max_tlink", [21.0, 1e9], ids=["int", "float"])
@pytest.mark.parametrize("seed", range(3))
def test_incremental_resolve_equals_a_fresh_cut(seed, max_tlink, star_edges):
    rng = np.random.default_rng(300 + seed)
    shape = (int(rng.integers(10, 24)), int(rng.integers(10, 24)))
    quarter = max_tlink < 1e6
    nl = _quarter_nlinks(rng, shape) if quarter else _random_nlinks(rng, shape, OFFSETS_8)
    hard_fg, hard_bg = _seeds(shape)
    star = graphcut.star_edges(hard_fg) if star_edges else None
    big = float(np.floor(nl.max_node_weight())) + 21.0
    cut = maxflow.IncrementalCut(nl, star, max_tlink=max_tlink)
    assert bool(cut.scale) == quarter
    previous = None
    for step in range(5):
        if quarter:
            cost_fg, cost_bg = _quarter_costs(rng, shape), _quarter_costs(rng, shape)
        else:
            cost_fg, cost_bg = (rng.random(shape) * 20).astype(np.float32), (rng.random(shape) * 20).astype(np.float32)
        if step == 3:  # change only a few pixels, as a refit near the boundary would
            cost_fg, cost_bg = previous[0].copy(), previous[1].copy()
            cost_fg[2:5, 3:6] += 7.0
        caps = graphcut.tlinks(cost_fg, cost_bg, hard_fg, hard_bg, big)
        got = cut.solve(*caps)
        fresh = maxflow.IncrementalCut(nl, star, max_tlink=max_tlink).solve(*caps)
        np.testing.assert_array_equal(got, fresh, err_msg=f"step {step}")
        if star is not None:  # the star edges survive every re-solve
            flat = got.ravel()
            assert not np.any(flat[star[0]] & ~flat[star[1]])
        previous = (cost_fg, cost_bg)


def test_incremental_cut_unchanged_tlinks_return_the_same_result():
    rng = np.random.default_rng(7)
    shape = (15, 17)
    nl = _random_nlinks(rng, shape, OFFSETS_8)
    cut = maxflow.IncrementalCut(nl, graphcut.star_edges(_seeds(shape)[0]))
    caps = graphcut.tlinks(rng.random(shape) * 20, rng.random(shape) * 20, *_seeds(shape), big=200.0)
    first = cut.solve(*caps)
    again = cut.solve(caps[0].copy(), caps[1].copy())
    np.testing.assert_array_equal(first, again)
    assert again is not first
    np.testing.assert_array_equal(cut.solve(*caps), first)


def test_incremental_cut_float_matches_solve_binary_without_seeds():
    rng = np.random.default_rng(8)
    shape = (18, 21)
    nl = _random_nlinks(rng, shape, OFFSETS_8)
    cut = maxflow.IncrementalCut(nl, max_tlink=1e9)
    for _ in range(3):
        fg, bg = rng.random(shape) * 6, rng.random(shape) * 6
        np.testing.assert_array_equal(cut.solve(bg, fg), solve_binary(fg, bg, nl))


# =========================================================================== grid edges
def _ramp_map(rows, cols, stride):
    gy, gx = np.mgrid[0 : -(-rows // stride), 0 : -(-cols // stride)].astype(np.float32)
    grid = np.stack([0.5 * gy, 2.0 * gx, gx - gy], axis=-1)
    return FeatureMap(np.ascontiguousarray(grid), stride, (rows, cols))


def test_grid_sqdiffs_shapes_and_sign():
    rng = np.random.default_rng(12)
    rows, cols, stride = 45, 58, 4
    grid = rng.normal(size=(12, 15, 6)).astype(np.float32)
    got = graphcut.grid_sqdiffs(FeatureMap(grid, stride, (rows, cols)), OFFSETS_8)
    assert len(got) == len(OFFSETS_8)
    for d, off in zip(got, OFFSETS_8):
        assert d.shape == neighbour_sqdiff(np.zeros((rows, cols)), off).shape, off
        assert d.dtype == np.float32 and d.flags.c_contiguous
        assert np.all(np.isfinite(d)) and d.min() >= 0.0


def test_grid_sqdiffs_stride_one_is_feature_sqdiffs():
    img = np.random.default_rng(13).random((9, 11, 3)).astype(np.float32)
    fm = FeatureMap(img, 1, (9, 11))
    for g, f in zip(graphcut.grid_sqdiffs(fm, OFFSETS_8), feature_sqdiffs(fm, OFFSETS_8)):
        np.testing.assert_array_equal(g, f)


@pytest.mark.parametrize("stride", [4, 8])
def test_grid_sqdiffs_of_a_ramp_match_the_full_resolution_differences(stride):
    """Linear features: every neighbour pair away from the border changes by exactly 1/stride of a cell."""
    rows, cols = 11 * stride + 1, 14 * stride - 2
    fm = _ramp_map(rows, cols, stride)
    m = 2 * stride  # bilinear upsampling clamps at the border
    for g, f, off in zip(graphcut.grid_sqdiffs(fm, OFFSETS_8), feature_sqdiffs(fm, OFFSETS_8), OFFSETS_8):
        dr, dc = off
        expected = ((0.5 * dr) ** 2 + (2.0 * dc) ** 2 + (dc - dr) ** 2) / stride**2
        np.testing.assert_allclose(g[m:-m, m:-m], expected, rtol=1e-5, err_msg=str(off))
        np.testing.assert_allclose(f[m:-m, m:-m], expected, rtol=1e-5, err_msg=str(off))


def test_grid_sqdiffs_step_edge():
    rows, cols, stride = 48, 80, 4
    grid = np.zeros((12, 20, 2), np.float32)
    grid[:, 10:, 0] = 1.0  # a vertical step between cells 9 and 10 (pixel column 40)
    d = dict(zip(OFFSETS_8, graphcut.grid_sqdiffs(FeatureMap(grid, stride, (rows, cols)), OFFSETS_8)))
    across = d[(0, 1)]
    assert across[:, 30:42].max(axis=1).min() >= 0.5 / stride**2  # large on every row across the step
    assert np.abs(across[:, :25]).max() < 1e-6 and np.abs(across[:, 50:]).max() < 1e-6  # flat: nothing
    assert np.abs(d[(1, 0)]).max() < 1e-6  # along the step: features do not change
    assert d[(1, 1)][:, 30:42].max() >= 0.5 / stride**2 and d[(1, -1)][:, 30:42].max() >= 0.5 / stride**2


@pytest.mark.parametrize("stride", [8, 24])
def test_grid_sqdiffs_step_edge_is_where_the_features_change(stride):
    rows, cols = 4 * stride, 20 * stride
    grid = np.zeros((4, 20, 1), np.float32)
    grid[:, 10:, 0] = 1.0
    fm = FeatureMap(grid, stride, (rows, cols))
    g = graphcut.grid_sqdiffs(fm, [(0, 1)])[0][2 * stride]
    f = feature_sqdiffs(fm, [(0, 1)])[0][2 * stride]
    x = np.arange(g.size)
    centre_grid, centre_full = (g * x).sum() / g.sum(), (f * x).sum() / f.sum()
    assert abs(centre_grid - centre_full) <= 1.0, (centre_grid, centre_full)


# =========================================================================== star edges
def _check_star(centres):
    from scipy import ndimage as ndi

    rows, cols = centres.shape
    p, q = graphcut.star_edges(centres)
    assert p.dtype == np.int32 and q.dtype == np.int32 and p.shape == q.shape
    np.testing.assert_array_equal(np.sort(p), np.flatnonzero(~centres))  # every other pixel, once
    assert not centres.ravel()[p].any()  # a centre never has to follow anyone
    assert q.min() >= 0 and q.max() < rows * cols
    pr, pc = np.divmod(p, cols)
    qr, qc = np.divmod(q, cols)
    assert np.all(np.maximum(np.abs(qr - pr), np.abs(qc - pc)) == 1)  # 8-neighbours
    dist, (nr, nc) = ndi.distance_transform_edt(~centres, return_indices=True)
    cr, cc = nr.ravel()[p], nc.ravel()[p]  # the nearest centre of p
    cheb_p = np.maximum(np.abs(cr - pr), np.abs(cc - pc))
    cheb_q = np.maximum(np.abs(cr - qr), np.abs(cc - qc))
    np.testing.assert_array_equal(cheb_q, cheb_p - 1)  # one step closer to it
    assert np.all(dist.ravel()[q] < dist.ravel()[p])  # closer to the strokes: the chains end on a centre
    return p, q


def test_star_edges_single_centre_by_hand():
    c = np.zeros((3, 3), bool)
    c[1, 1] = True
    p, q = _check_star(c)
    assert dict(zip(p.tolist(), q.tolist())) == {0: 4, 1: 4, 2: 4, 3: 4, 5: 4, 6: 4, 7: 4, 8: 4}
    c = np.zeros((1, 4), bool)
    c[0, 0] = True
    assert [a.tolist() for a in graphcut.star_edges(c)] == [[1, 2, 3], [0, 1, 2]]


@pytest.mark.parametrize("seed", range(4))
def test_star_edges_properties(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(15, 40)), int(rng.integers(15, 40)))
    centres = np.zeros(shape, bool)
    for _ in range(int(rng.integers(1, 4))):  # a few strokes
        r, c = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        centres[r : r + int(rng.integers(1, 4)), max(0, c - 5) : c + 5] = True
    p, q = _check_star(centres)
    # following q from any pixel reaches a centre
    nxt = np.arange(centres.size)
    nxt[p] = q
    node = np.arange(centres.size)
    for _ in range(sum(shape)):
        node = nxt[node]
    assert centres.ravel()[node].all()


def test_star_edges_all_centres():
    p, q = graphcut.star_edges(np.ones((4, 5), bool))
    assert p.size == q.size == 0


def test_star_edges_without_centres():
    p, q = graphcut.star_edges(np.zeros((3, 4), bool))
    assert p.size == 0 or (q.min() >= 0 and q.max() < 12)


def test_solve_binary_star_respects_background_seeds():
    # _random_problem(4) of test_multilevel.py, reduced: object seed at (9, 1), background seed at (4, 4)
    rng = np.random.default_rng(4)
    shape = (12, 14)
    nl = _random_nlinks(rng, shape, OFFSETS_8)
    cost_fg = (rng.random(shape) * 5).astype(np.float32)
    cost_bg = (rng.random(shape) * 5).astype(np.float32)
    cost_fg[:5, 4:] = 0.0  # everything beyond the background seed (seen from the object seed) wants object
    cost_bg[:5, 4:] = 5.0
    hard_fg = np.zeros(shape, bool)
    hard_bg = np.zeros(shape, bool)
    hard_fg[9, 1] = True
    hard_bg[4, 4] = True
    out = solve_binary(cost_fg, cost_bg, nl, hard_fg, hard_bg, star=graphcut.star_edges(hard_fg))
    assert out[9, 1] and not out[4, 4]
