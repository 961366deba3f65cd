"""Coarse-to-fine (banded) graph cuts: block reductions by hand, the banded solver
against the full cut, and the session's automatic multilevel path on synthetic disks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from _synthetic import disk_image, disk_scribbles, three_class_image, three_class_scribbles
from napari_deepseg.core import SegmentationSession
from napari_deepseg.core.cut import bands, graphcut, maxflow
from napari_deepseg.core.cut import pyramid
from napari_deepseg.core.cut.graphcut import OFFSETS_8, contrast_nlinks, pair_slices
from napari_deepseg.core.evaluation.metrics import iou
from napari_deepseg.core.cut.bands import band_mask, solve_band
from napari_deepseg.core.cut.blocks import block_reduce, coarse_hard, coarse_shape, upsample_labels
from napari_deepseg.core.utils.progress import release_memory

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# =========================================================================== block reductions
def test_coarse_shape():
    assert coarse_shape((5, 8)) == (3, 4)
    assert coarse_shape((4, 4)) == (2, 2)
    assert coarse_shape((1, 7)) == (1, 4)


def test_block_reduce_even_by_hand():
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_array_equal(block_reduce(a, "sum"), [[0 + 1 + 4 + 5, 2 + 3 + 6 + 7],
                                                           [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]])
    np.testing.assert_array_equal(block_reduce(a, "mean"), [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(block_reduce(a), block_reduce(a, "mean"))  # mean is the default
    assert block_reduce(a).dtype == np.float32 and block_reduce(a, "sum").dtype == np.float32


def test_block_reduce_odd_shape_pads_with_the_edge():
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], np.float32)
    # padded to 4 x 4 by repeating the last row and column:
    # [[1 2 3 3], [4 5 6 6], [7 8 9 9], [7 8 9 9]]
    np.testing.assert_array_equal(block_reduce(a, "sum"), [[12.0, 18.0], [30.0, 36.0]])
    np.testing.assert_array_equal(block_reduce(a, "mean"), [[3.0, 4.5], [7.5, 9.0]])


def test_block_reduce_one_row_and_channels():
    a = np.array([[1.0, 3.0, 5.0]], np.float32)  # (1, 3) -> (1, 2)
    np.testing.assert_array_equal(block_reduce(a, "mean"), [[2.0, 5.0]])
    np.testing.assert_array_equal(block_reduce(a, "sum"), [[8.0, 20.0]])
    rng = np.random.default_rng(0)
    img = rng.random((7, 9, 3)).astype(np.float32)
    out = block_reduce(img)
    assert out.shape == (4, 5, 3)
    for c in range(3):  # channel by channel the same as a 2-D reduction
        np.testing.assert_allclose(out[..., c], block_reduce(img[..., c]), rtol=1e-6)
    np.testing.assert_allclose(out[1, 2], img[2:4, 4:6].mean(axis=(0, 1)), rtol=1e-6)
    np.testing.assert_allclose(out[3, 4], img[6, 8], rtol=1e-6)  # corner block: one pixel repeated 4 times
    np.testing.assert_allclose(block_reduce(img, "sum")[3, 4], 4 * img[6, 8], rtol=1e-6)


def test_coarse_hard_by_hand():
    hard = np.array([
        [0, 0, 1, -1, -1, -1, 0, 1],
        [0, -1, 1, 1, -1, -1, -1, -1],
    ], np.int32)
    # blocks: all 0 | all 1 (with a free pixel) | no seed | 0 and 1 mixed
    np.testing.assert_array_equal(coarse_hard(hard), [[0, 1, -1, -1]])
    assert coarse_hard(hard).dtype == np.int32
    np.testing.assert_array_equal(coarse_hard(np.array([[0, -1, 1, 1], [0, 1, -1, -1]])), [[-1, 1]])


def test_coarse_hard_three_classes_and_odd_shape():
    hard = np.array([
        [2, 2, -1],
        [-1, 2, 1],
        [0, 0, 2],
    ], np.int32)
    # padded: [[2 2 -1 -1], [-1 2 1 1], [0 0 2 2], [0 0 2 2]]
    np.testing.assert_array_equal(coarse_hard(hard), [[2, 1], [0, 2]])
    np.testing.assert_array_equal(coarse_hard(np.full((3, 5), -1, np.int32)), np.full((2, 3), -1))


def test_upsample_labels_shape_and_cropping():
    coarse = np.array([[1, 2, 3], [4, 5, 6]], np.int32)
    out = upsample_labels(coarse, (3, 5))
    assert out.shape == (3, 5)
    np.testing.assert_array_equal(out, [[1, 1, 2, 2, 3], [1, 1, 2, 2, 3], [4, 4, 5, 5, 6]])
    full = upsample_labels(coarse, (4, 6))
    rr, cc = np.mgrid[0:4, 0:6]
    np.testing.assert_array_equal(full, coarse[rr // 2, cc // 2])
    mask = np.array([[True, False]])
    assert upsample_labels(mask, (2, 3)).dtype == bool
    # round trip: coarse_hard of an upsampled labelling gives it back
    lab = np.random.default_rng(1).integers(0, 3, (5, 6)).astype(np.int32)
    np.testing.assert_array_equal(coarse_hard(upsample_labels(lab, (9, 11))), lab)


# =========================================================================== band
def _edge_by_definition(init):
    """Pixels with a 4-neighbour (inside the image) of the other label."""
    rows, cols = init.shape
    edge = np.zeros_like(init)
    for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        for r in range(rows):
            for c in range(cols):
                r2, c2 = r + dr, c + dc
                if 0 <= r2 < rows and 0 <= c2 < cols and init[r2, c2] != init[r, c]:
                    edge[r, c] = True
    return edge


def _chessboard_within(edge, radius):
    return ndi.distance_transform_cdt(~edge, metric="chessboard") <= radius


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_band_mask_is_the_boundary_dilated(radius):
    init = np.zeros((30, 34), bool)
    init[10:20, 8:22] = True
    init[0:4, 30:34] = True  # an object touching the image border: the border is no boundary
    none = np.zeros_like(init)
    band = band_mask(init, none, none, radius)
    expected = _chessboard_within(_edge_by_definition(init), radius)
    np.testing.assert_array_equal(band, expected)
    # by hand: on both sides of the square's top edge, within radius
    assert band[9 - radius, 15] and band[10 + radius, 15]  # outer edge row 9, inner edge row 10
    assert not band[8 - radius, 15] and not band[11 + radius, 15]
    assert not band[15, 15]  # the square's centre is far from its boundary
    assert not band[25, 2] and not band[0, 0]  # far background
    assert band[1, 29 - radius] and not band[1, 28 - radius]  # left of the corner object
    assert band[0, 33] == (radius >= 3)  # the image border is no boundary: (0, 33) is 3 from the object's edges


def test_band_mask_contains_contradicting_seeds():
    init = np.zeros((40, 40), bool)
    init[5:15, 5:15] = True
    hard_fg = np.zeros_like(init)
    hard_bg = np.zeros_like(init)
    hard_fg[30, 30] = True  # an object seed the coarse labelling missed
    hard_bg[9, 9] = True  # a background seed inside the coarse object
    hard_fg[10, 10] = True  # an object seed that agrees: adds nothing
    hard_bg[35, 5] = True  # a background seed that agrees: adds nothing
    band = band_mask(init, hard_fg, hard_bg, 2)
    edge = _edge_by_definition(init)
    edge[30, 30] = edge[9, 9] = True
    np.testing.assert_array_equal(band, _chessboard_within(edge, 2))
    assert band[28:33, 28:33].all() and not band[27, 30] and not band[30, 33]
    assert band[7:12, 7:12].all()
    assert not band[35, 5] and not band[25, 10]


# =========================================================================== banded solver
def _random_nlinks(rng, shape, offsets=OFFSETS_8):
    d = []
    for off in offsets:
        a, _ = pair_slices(shape, off)
        d.append((rng.random(np.zeros(shape)[a].shape) * 3).astype(np.float32))
    return contrast_nlinks(d, offsets, shape, lam=float(rng.uniform(0.3, 3.0)))


def _random_problem(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(5, 15)), int(rng.integers(5, 15)))
    nl = _random_nlinks(rng, shape)
    cost_fg = (rng.random(shape) * 5).astype(np.float32)
    cost_bg = (rng.random(shape) * 5).astype(np.float32)
    i, j = rng.choice(shape[0] * shape[1], 2, replace=False)
    hard_fg = np.zeros(shape, bool)
    hard_bg = np.zeros(shape, bool)
    hard_fg.flat[i] = True
    hard_bg.flat[j] = True
    return rng, nl, cost_fg, cost_bg, hard_fg, hard_bg


def _reinforced(cost_fg, cost_bg, hard_fg, hard_bg):
    """Costs that make solve_binary's hard constraints outweigh star edges' knock-on effects.

    solve_binary's finite hard-constraint capacity can lose against star implications
    (see test_graphcut.py::test_solve_binary_star_respects_background_seeds); adding a
    huge unary to the forbidden label leaves the energy of every seed-respecting
    labelling unchanged.
    """
    cf, cb = cost_fg.astype(np.float64).copy(), cost_bg.astype(np.float64).copy()
    cf[hard_bg] += 1e5
    cb[hard_fg] += 1e5
    return cf, cb


@pytest.mark.parametrize("seed", range(20))
def test_solve_band_everything_equals_the_full_cut(seed):
    rng, nl, cost_fg, cost_bg, hard_fg, hard_bg = _random_problem(seed)
    star = graphcut.star_edges(hard_fg)
    ref = maxflow.solve_binary(*_reinforced(cost_fg, cost_bg, hard_fg, hard_bg), nl, hard_fg, hard_bg, star=star)
    assert ref[hard_fg].all() and not ref[hard_bg].any()
    init = rng.random(nl.shape) < 0.5  # irrelevant: nothing is fixed
    got = solve_band(cost_fg, cost_bg, nl, init, np.ones(nl.shape, bool), hard_fg, hard_bg, star)
    assert got.shape == nl.shape and got.dtype == bool
    np.testing.assert_array_equal(got, ref)
    # and without star edges
    ref = maxflow.solve_binary(cost_fg, cost_bg, nl, hard_fg, hard_bg)
    np.testing.assert_array_equal(solve_band(cost_fg, cost_bg, nl, init, np.ones(nl.shape, bool), hard_fg, hard_bg),
                                  ref)


@pytest.mark.parametrize("seed", range(12))
def test_solve_band_partial_is_the_cut_with_the_rest_fixed(seed):
    rng, nl, cost_fg, cost_bg, hard_fg, hard_bg = _random_problem(seed)
    shape = nl.shape
    star = graphcut.star_edges(hard_fg)
    # a star-consistent labelling outside the band: the full cut of other costs
    other = _reinforced(rng.random(shape) * 5, rng.random(shape) * 5, hard_fg, hard_bg)
    init = maxflow.solve_binary(*other, nl, hard_fg, hard_bg, star=star)
    band = ndi.binary_dilation(rng.random(shape) < 0.08, iterations=1) | hard_fg | hard_bg
    assert not band.all()
    got = solve_band(cost_fg, cost_bg, nl, init, band, hard_fg, hard_bg, star)
    np.testing.assert_array_equal(got[~band], init[~band])  # outside the band nothing moves
    assert got[hard_fg].all() and not got[hard_bg].any()  # seeds inside the band are respected
    # the band's labels are the constrained minimum: the full cut with the outside forced to init
    fixed_fg, fixed_bg = hard_fg | (init & ~band), hard_bg | (~init & ~band)
    ref = maxflow.solve_binary(*_reinforced(cost_fg, cost_bg, fixed_fg, fixed_bg), nl, fixed_fg, fixed_bg, star=star)
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("seed", range(8))
def test_solve_band_soft_star_is_the_cut_with_the_rest_fixed(seed):
    """A soft star in a band: in-band rays cost star_weight, rays across its edge become t-link costs."""
    rng, nl, cost_fg, cost_bg, hard_fg, hard_bg = _random_problem(seed)
    shape = nl.shape
    star = graphcut.star_edges(hard_fg)
    w = 1.5
    init = rng.random(shape) < 0.5  # any labelling outside: a soft star need not hold there
    init[hard_fg], init[hard_bg] = True, False
    band = ndi.binary_dilation(rng.random(shape) < 0.1, iterations=1) | hard_fg | hard_bg
    assert not band.all()
    got = solve_band(cost_fg, cost_bg, nl, init, band, hard_fg, hard_bg, star, star_weight=w)
    np.testing.assert_array_equal(got[~band], init[~band])
    fixed_fg, fixed_bg = hard_fg | (init & ~band), hard_bg | (~init & ~band)
    cut = maxflow.IncrementalCut(nl, star, integer=False, star_weight=w)
    ref = cut.solve(*graphcut.tlinks(cost_fg, cost_bg, fixed_fg, fixed_bg, 1e7))
    np.testing.assert_array_equal(got, ref)
    # the whole image as the band: the full soft-star cut
    whole = solve_band(cost_fg, cost_bg, nl, init, np.ones(shape, bool), hard_fg, hard_bg, star, star_weight=w)
    fresh = maxflow.IncrementalCut(nl, star, integer=False, star_weight=w)
    np.testing.assert_array_equal(whole, fresh.solve(*graphcut.tlinks(cost_fg, cost_bg, hard_fg, hard_bg, 1e7)))


def test_solve_band_respects_seeds_the_initial_labelling_contradicts():
    shape = (20, 24)
    nl = contrast_nlinks([np.zeros(np.zeros(shape)[pair_slices(shape, o)[0]].shape, np.float32) for o in OFFSETS_8],
                         OFFSETS_8, shape, lam=2.0, sigma=1.0)
    cost_fg = np.full(shape, 1.0, np.float32)  # appearance prefers background everywhere
    cost_bg = np.zeros(shape, np.float32)
    init = np.zeros(shape, bool)
    init[2:8, 2:8] = True
    hard_fg = np.zeros(shape, bool)
    hard_bg = np.zeros(shape, bool)
    hard_fg[14, 16] = True  # object seed in the coarse background
    hard_bg[4, 4] = True  # background seed in the coarse object
    band = band_mask(init, hard_fg, hard_bg, 2)
    star = graphcut.star_edges(hard_fg)
    got = solve_band(cost_fg, cost_bg, nl, init, band, hard_fg, hard_bg, star)
    assert got[14, 16] and not got[4, 4]
    np.testing.assert_array_equal(got[~band], init[~band])
    # star convexity: the object pixels around the new seed form one blob containing it
    lab, _ = ndi.label(got[10:20, 12:22], structure=np.ones((3, 3)))
    assert lab[4, 4] > 0 and np.unique(lab[lab > 0]).tolist() == [lab[4, 4]]


# =========================================================================== session
def _spy(monkeypatch, module, name):
    calls = []
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


@pytest.fixture(scope="module")
def big_disk():
    """A 400 x 400 disk (above MULTILEVEL_MIN_PIXELS) with its features set once."""
    image, truth = disk_image((400, 400), radius=120, noise=0.06, seed=5)
    assert truth.size >= pyramid.MULTILEVEL_MIN_PIXELS
    ses = SegmentationSession("classic")
    ses.set_image(image)
    return ses, truth, disk_scribbles(truth)


def test_auto_multilevel_agrees_with_the_full_cut(big_disk, monkeypatch):
    ses, truth, scrib = big_disk
    banded = _spy(monkeypatch, bands, "refine_band")
    auto = ses.segment(scrib)
    assert banded == ["refine_band"] * 2  # large image: the coarse-to-fine path ran, once per refit
    full = ses.segment(scrib, multilevel=False)
    assert banded == ["refine_band"] * 2  # multilevel=False: the reference single-level cut
    for out in (auto, full):
        assert out.shape == truth.shape and out.dtype == np.uint8
        assert set(np.unique(out).tolist()) <= {0, 1}
        assert np.all(out[scrib == 1] == 1) and np.all(out[scrib == 2] == 0)
    assert iou(auto == 1, full == 1) >= 0.97
    assert iou(auto == 1, truth) >= 0.9
    assert iou(full == 1, truth) >= 0.9
    coarse = ses._current.coarse
    assert coarse is not None and coarse.shape == (200, 200)
    # a second call reuses the cached coarse problem and gives the same result
    np.testing.assert_array_equal(ses.segment(scrib), auto)
    assert ses._current.coarse is coarse


def test_multilevel_without_refits(big_disk):
    ses, truth, scrib = big_disk
    out = ses.segment(scrib, iterations=0, multilevel=True)
    assert iou(out == 1, truth) >= 0.9


def test_multilevel_forced_on_a_small_odd_image(monkeypatch):
    image, truth = disk_image((41, 53), seed=1)
    scrib = disk_scribbles(truth)
    ses = SegmentationSession("classic")
    ses.set_image(image)
    banded = _spy(monkeypatch, bands, "refine_band")
    auto = ses.segment(scrib)  # below MULTILEVEL_MIN_PIXELS: single level by default
    assert banded == []
    forced = ses.segment(scrib, multilevel=True)
    assert banded == ["refine_band"] * 2
    assert ses._current.coarse.shape == (21, 27)
    assert forced.shape == truth.shape
    assert np.all(forced[scrib == 1] == 1) and np.all(forced[scrib == 2] == 0)
    assert iou(forced == 1, truth) >= 0.9
    assert iou(forced == 1, auto == 1) >= 0.9


def test_multilevel_on_a_thin_image_falls_back(monkeypatch):
    image, _ = disk_image((6, 40), radius=2, seed=1)
    scrib = np.zeros((6, 40), np.uint8)
    scrib[3, 19:22] = 1
    scrib[0, :5] = 2
    ses = SegmentationSession("classic")
    ses.set_image(image)
    banded = _spy(monkeypatch, bands, "refine_band")
    out = ses.segment(scrib, multilevel=True)  # a side below 8 pixels: single level
    assert banded == []
    assert out[3, 20] == 1 and out[0, 0] == 0


def test_three_classes_on_a_big_image_use_alpha_expansion(monkeypatch):
    image, truth = three_class_image((320, 400), seed=2)
    assert truth.size >= pyramid.MULTILEVEL_MIN_PIXELS
    scrib = three_class_scribbles(truth)
    ses = SegmentationSession("classic")
    ses.set_image(image)
    banded = _spy(monkeypatch, bands, "refine_band")
    expansion = _spy(monkeypatch, maxflow, "solve_multilabel")
    out = ses.segment(scrib)
    assert banded == [] and len(expansion) >= 1
    assert set(np.unique(out).tolist()) == {0, 1, 3}
    for k in (0, 1, 3):
        assert iou(out == k, truth == k) >= 0.9, k


def test_multilevel_object_seeds_only_in_mixed_blocks():
    image, truth = disk_image((41, 53), seed=1)
    ses = SegmentationSession("classic")
    ses.set_image(image)
    scrib = np.zeros(truth.shape, np.uint8)
    scrib[20, 26] = 1  # the only object pixel shares its 2x2 block (rows 20-21, cols 26-27) ...
    scrib[21, 27] = 2  # ... with a background pixel
    scrib[0, :] = 2
    out = ses.segment(scrib, multilevel=True)
    assert out[20, 26] == 1 and out[21, 27] == 0


@pytest.mark.parametrize("multi", [False, True], ids=["single-level", "multilevel"])
def test_background_stroke_across_an_object_coloured_region_is_respected(multi):
    image = np.zeros((60, 400, 3), np.uint8)
    image[:] = (60, 100, 160)
    image[10:50, 10:390] = (220, 90, 60)  # one long red bar on blue
    rng = np.random.default_rng(0)
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    scrib = np.zeros(image.shape[:2], np.uint8)
    scrib[28:32, 20:40] = 1  # object: the bar's left end
    scrib[5:55, 60] = 2  # a one-pixel background stroke cutting the bar
    scrib[2, :] = 2
    scrib[57, :] = 2
    ses = SegmentationSession("classic")
    ses.set_image(image)
    out = ses.segment(scrib, multilevel=multi)
    assert np.all(out[scrib == 2] == 0)  # today: 26 stroke pixels come out as object
    assert not (out[:, 61:] == 1).any()  # star convexity: nothing beyond the stroke (today: 13118 pixels)


# =========================================================================== progress
def test_release_memory_runs():
    junk = [np.ones(1 << 20) for _ in range(4)]
    del junk
    assert release_memory() is None
    release_memory()  # idempotent


def test_a_growing_band_reports_each_solve_after_the_first():
    # the object's costs reach column 45, the coarse labels only column 30: the band must grow right
    shape = (20, 80)
    flat = np.zeros(shape + (1,), np.float32)
    nl = contrast_nlinks([graphcut.neighbour_sqdiff(flat, o) for o in OFFSETS_8], OFFSETS_8, shape,
                         lam=0.5, sigma=1.0)
    cost_fg = np.full(shape, 5.0, np.float32)
    cost_fg[:, :45] = 0.0
    cost_bg = (5.0 - cost_fg).astype(np.float32)
    init = np.zeros(shape, bool)
    init[:, :30] = True
    band = np.zeros(shape, bool)
    band[:, 26:34] = True
    hard_fg, hard_bg = np.zeros(shape, bool), np.zeros(shape, bool)
    hard_fg[:, :2], hard_bg[:, -2:] = True, True
    seen = []
    fg, rounds = bands.refine_band(cost_fg, cost_bg, nl, init, band, hard_fg, hard_bg, radius=3,
                                        on_round=lambda solve, nodes: seen.append((solve, nodes)))
    assert rounds > 1 and fg[:, :45].all() and not fg[:, 45:].any()
    assert [s for s, _ in seen] == list(range(2, rounds + 1))
    assert all(b > a for (_, a), (_, b) in zip(seen, seen[1:])) and seen[0][1] > band.sum()  # the band grew
