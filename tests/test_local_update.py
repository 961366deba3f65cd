"""Local updates of the coarse-to-fine cut (issue 22): a changed stroke re-solves a bounded window only."""

from __future__ import annotations

import numpy as np
import pytest

from _synthetic import disk_image, disk_scribbles
from napari_deepseg.core import SegmentationSession
from napari_deepseg.core.cut import pyramid
from napari_deepseg.core.evaluation.metrics import iou

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SHAPE = (400, 600)


@pytest.fixture
def scene(monkeypatch):
    """A disk photo cut on three levels (400 x 600, 200 x 300, 100 x 150), its strokes and first result."""
    monkeypatch.setattr(pyramid, "COARSEST_PIXELS", 20_000)
    monkeypatch.setattr(pyramid, "UPDATE_BOUND", 60)
    image, truth = disk_image(SHAPE, radius=120, seed=4)
    strokes = disk_scribbles(truth, width=3, margin=6)
    session = SegmentationSession("classic")
    session.set_image(image)
    first = session.segment(strokes)
    assert len(session._current.last.fgs) == 3 and not session.last_local
    return session, truth, strokes, first


#: a square stroke on the disk's upper right part, apart from the object strokes (a cross through the centre)
PATCH = (slice(115, 166), slice(355, 406))


def _cut_through(strokes, value=2):
    """The strokes plus a square of ``value`` on the disk's upper right part."""
    more = strokes.copy()
    more[PATCH] = value
    return more


def _outside(window, shape=SHAPE) -> np.ndarray:
    r0, r1, c0, c1 = window
    out = np.ones(shape, bool)
    out[r0:r1, c0:c1] = False
    return out


def _square_update(session, strokes, first):
    """The background square of :func:`_cut_through` as a local update: ``(strokes, result, outside the bound)``.

    Checks the contract: a local update, every pixel beyond the bound bit for bit
    as ``first``, the strokes held, the square (and its shadow) out of the object.
    """
    more = _cut_through(strokes)
    out = session.segment(more, local=True)
    assert session.last_local
    window = pyramid.update_window(np.array([115, 165]), np.array([355, 405]), SHAPE, 60)
    outside = _outside(window)
    np.testing.assert_array_equal(out[outside], first[outside])  # bit for bit beyond the bound
    assert not out[more == 2].any() and out[more == 1].all()  # the strokes hold
    assert (out[~outside] != first[~outside]).sum() > 500  # the square (and its shadow) left the object
    return more, out, outside


def test_pixels_beyond_the_bound_keep_their_labels(scene):
    session, truth, strokes, first = scene
    _, _, outside = _square_update(session, strokes, first)
    # erasing the square is a local update too, and gives the first result back
    back = session.segment(strokes, local=True)
    assert session.last_local
    np.testing.assert_array_equal(back[outside], first[outside])
    assert iou(back == 1, first == 1) > 0.995


def test_local_update_agrees_with_the_whole_cut(scene):
    session, truth, strokes, first = scene
    more = _cut_through(strokes)
    local = session.segment(more, local=True)
    assert session.last_local
    whole = session.segment(more)
    assert not session.last_local
    assert iou(local == 1, whole == 1) > 0.98
    grown = _cut_through(strokes, value=1)  # an object stroke where the object already is: nothing to change
    assert iou(session.segment(grown, local=True) == 1, truth) > 0.97


def test_local_update_falls_back_to_the_whole_cut(scene, monkeypatch):
    session, truth, strokes, first = scene
    np.testing.assert_array_equal(session.segment(strokes, local=True), first)  # nothing changed: the last result
    assert session.last_local
    more = _cut_through(strokes)
    out = session.segment(more, lam=10.0, local=True)  # other parameters: a new cut
    assert not session.last_local
    np.testing.assert_array_equal(out, session.segment(more, lam=10.0))  # the whole cut, deterministic
    monkeypatch.setattr(pyramid, "UPDATE_BOUND", 400)  # a window over a quarter of the image
    session.segment(_cut_through(strokes, value=0), lam=10.0, local=True)
    assert not session.last_local


def test_first_local_call_is_the_whole_cut(monkeypatch):
    monkeypatch.setattr(pyramid, "COARSEST_PIXELS", 20_000)
    image, truth = disk_image(SHAPE, radius=120, seed=4)
    strokes = disk_scribbles(truth, width=3, margin=6)
    a, b = SegmentationSession("classic"), SegmentationSession("classic")
    a.set_image(image)
    b.set_image(image)
    np.testing.assert_array_equal(a.segment(strokes, local=True), b.segment(strokes))
    assert not a.last_local


# =========================================================================== fewer band solves (issue 22)
def test_star_steps_remember_what_they_found(monkeypatch):
    from napari_deepseg.core.cut import star_steps

    rng = np.random.default_rng(0)
    centres = np.zeros((90, 120), bool)
    centres[rng.integers(0, 90, 30), rng.integers(0, 120, 30)] = True
    steps = star_steps.StarSteps(centres)
    fresh = star_steps.StarSteps(centres)
    first = np.sort(rng.choice(centres.size, 2000, replace=False))
    more = np.sort(rng.choice(centres.size, 3000, replace=False))
    np.testing.assert_array_equal(steps.step(first), fresh._query(first))
    asked = []
    original = steps._query
    monkeypatch.setattr(steps, "_query", lambda flat: asked.append(flat.size) or original(flat))
    np.testing.assert_array_equal(steps.step(more), fresh._query(more))  # known and new pixels mixed
    np.testing.assert_array_equal(steps.step(first[::-1]), fresh._query(first[::-1]))  # any order
    assert asked == [np.setdiff1d(more, first).size]  # the tree was asked for the new pixels only, once


def test_large_deep_feature_images_refit_from_the_coarse_labels(monkeypatch, tmp_path):
    import torch
    import torchvision

    from napari_deepseg.core.cut import bands

    weights = tmp_path / "resnet50.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), weights)
    monkeypatch.setattr(pyramid, "COARSEST_PIXELS", 20_000)
    image, truth = disk_image(SHAPE, radius=120, seed=4)
    strokes = disk_scribbles(truth, width=3, margin=6)
    solves, fit_rounds = [], []
    original, original_fit = bands.refine_band, pyramid._fit_round
    monkeypatch.setattr(bands, "refine_band", lambda *a, **k: solves.append(1) or original(*a, **k))
    monkeypatch.setattr(pyramid, "_fit_round", lambda top, *a: fit_rounds.append(top.shape) or original_fit(top, *a))

    def cut(backbone, **params):
        solves.clear()
        fit_rounds.clear()
        session = SegmentationSession(backbone, **params)
        session.set_image(image)
        return session.segment(strokes)

    deep = {"weights": str(weights), "device": "cpu", "layers": "layer1", "n_components": 8}
    reference = cut("resnet50", **deep)
    assert len(solves) == 2 * 2 and not fit_rounds  # under the size limit: two rounds of two band levels
    monkeypatch.setattr(pyramid, "REFIT_FROM_COARSE_PIXELS", 0)
    out = cut("resnet50", **deep)
    assert len(solves) == 2  # the refit round only
    assert fit_rounds == [(100, 150)]  # the fit round was solved below the coarsest level (100 x 150), at 50 x 75
    assert iou(out == 1, reference == 1) > 0.95
    cut("classic")
    assert len(solves) == 2 * 2 and not fit_rounds  # colour models keep the banded refit at any size


# =========================================================================== the HPF solver (issue 22)
# thinhpf is under a non-commercial licence and in no install extra but `hpf`: these tests run where it is
# installed (`pip install thinhpf`) and skip elsewhere; the others here test the BK fallback and need nothing
NO_THINHPF = "thinhpf is not installed (optional HPF solver, non-commercial licence: pip install thinhpf)"
def _band_solution(monkeypatch, hpf_min_nodes, image_seed=4):
    from napari_deepseg.core.cut import maxflow

    monkeypatch.setattr(pyramid, "COARSEST_PIXELS", 20_000)
    monkeypatch.setattr(maxflow, "HPF_MIN_NODES", hpf_min_nodes)
    image, truth = disk_image(SHAPE, radius=120, seed=image_seed)
    session = SegmentationSession("classic")
    session.set_image(image)
    return session.segment(disk_scribbles(truth, width=3, margin=6))


def test_hpf_band_solves_give_the_bk_masks(monkeypatch):
    pytest.importorskip("thinhpf", reason=NO_THINHPF)
    from napari_deepseg.core.cut import maxflow

    reference = _band_solution(monkeypatch, None)
    used, bk = [], []
    original, original_bk = maxflow._hpf_cut, maxflow._bk_cut
    monkeypatch.setattr(maxflow, "_hpf_cut", lambda *a: used.append(a[0]) or original(*a))
    monkeypatch.setattr(maxflow, "_bk_cut", lambda *a: bk.append(a[0]) or original_bk(*a))
    np.testing.assert_array_equal(_band_solution(monkeypatch, 0), reference)
    assert len(used) >= 4 and not bk  # every band (two levels, two rounds) was solved by HPF alone


def test_hpf_answers_that_break_a_hard_link_go_to_bk_unless_the_hard_links_conflict(monkeypatch):
    from napari_deepseg.core.cut import maxflow

    edges = maxflow.EdgeList()
    edges.add_edges(np.array([0, 1]), np.array([1, 2]), np.array([1e9, 2.0]), np.array([0.0, 2.0]))
    src, snk = np.array([1e9, 0.0, 0.0]), np.array([0.0, 1.0, 1e9])
    assert not maxflow.hard_conflict(3, edges, src, snk, 1e8)
    monkeypatch.setattr(maxflow, "HPF_MIN_NODES", 0)
    asked = []
    monkeypatch.setattr(maxflow, "_hpf_cut", lambda *a: asked.append(1) or None)  # thinhpf missing
    assert maxflow.min_cut(3, edges, src, snk).tolist() == [True, True, False]  # BK's answer
    assert asked == [1]
    broken = np.array([True, False, False])  # cuts the hard link 0 -> 1
    monkeypatch.setattr(maxflow, "_hpf_cut", lambda *a: broken.copy())
    assert maxflow.min_cut(3, edges, src, snk).tolist() == [True, True, False]  # solved again by BK
    conflict = maxflow.EdgeList()  # 0 (forced object) implies 1 implies 2 (forced background)
    conflict.add_edges(np.array([0, 1]), np.array([1, 2]), np.array([1e9, 1e9]), np.zeros(2))
    assert maxflow.hard_conflict(3, conflict, src, snk, 1e8)
    assert maxflow.min_cut(3, conflict, src, snk).tolist() == broken.tolist()  # every cut breaks one: kept


def test_hpf_scale_keeps_the_finite_cut_of_the_coarse_labels_below_half_its_infinity():
    from napari_deepseg.core.cut import maxflow

    edges = maxflow.EdgeList()
    edges.add_edges(np.array([0]), np.array([1]), np.array([3e5]), np.array([3e5]))
    src, snk = np.array([1e9, 0.0]), np.array([0.0, 1e9])
    init = np.array([True, False])  # cuts the 3e5 edge: scaled by 1000 it would outweigh the int32 infinity
    assert maxflow.cut_value(init, edges, src, snk, 1e8) == (0, 3e5)
    scale = maxflow.hpf_scale(init, edges, src, snk, 1e8)
    assert 3e5 * scale == pytest.approx(maxflow.HPF_INFINITY / 2)
    assert maxflow.hpf_scale(None, edges, src, snk, 1e8) == maxflow.HPF_SCALE
    small = maxflow.EdgeList()
    small.add_edges(np.array([0]), np.array([1]), np.array([2.0]), np.array([2.0]))
    assert maxflow.hpf_scale(init, small, src, snk, 1e8) == maxflow.HPF_SCALE


def test_hpf_with_the_scale_keeps_a_hard_link_that_the_fixed_scale_breaks():
    pytest.importorskip("thinhpf", reason=NO_THINHPF)
    from napari_deepseg.core.cut import maxflow

    # node 0 forced object; 0 -> 1 -> 2 hard; 1 and 2 prefer background by 1e5 units each: with the
    # fixed scale of 1000, their 2e8 exceeds the infinity 2**27 and the hard link is the cheaper cut
    edges = maxflow.EdgeList()
    edges.add_edges(np.array([0, 1]), np.array([1, 2]), np.array([1e9, 1e9]), np.zeros(2))
    src, snk = np.array([1e9, 0.0, 0.0]), np.array([0.0, 1e5, 1e5])
    fixed = maxflow._hpf_cut(3, edges, src, snk)
    assert maxflow._breaks_hard(fixed, edges, src, snk, 1e8)
    init = np.ones(3, bool)
    scaled = maxflow._hpf_cut(3, edges, src, snk, maxflow.hpf_scale(init, edges, src, snk, 1e8))
    assert scaled.tolist() == [True, True, True]


def test_a_stroke_at_the_image_corner_is_local(scene):
    # the window and its crops are clipped at the image's edges
    session, truth, strokes, first = scene
    more = strokes.copy()
    more[385:400, 0:30] = 2  # background, in the corner: nothing to change
    out = session.segment(more, local=True)
    assert session.last_local
    np.testing.assert_array_equal(out, first)
    more[385:400, 570:600] = 1  # an object stroke in the other corner: a piece of object around it, nothing else
    out = session.segment(more, local=True)
    assert session.last_local and out[385:400, 570:600].all()
    window = pyramid.update_window(np.array([385, 399]), np.array([570, 599]), SHAPE, 60)
    outside = _outside(window)
    np.testing.assert_array_equal(out[outside], first[outside])


def test_preview_gives_the_coarse_result_first(monkeypatch):
    monkeypatch.setattr(pyramid, "COARSEST_PIXELS", 20_000)
    image, truth = disk_image(SHAPE, radius=120, seed=4)
    strokes = disk_scribbles(truth, width=3, margin=6)
    session = SegmentationSession("classic")
    session.set_image(image)
    seen = []
    out = session.segment(strokes, preview=seen.append)
    assert len(seen) == 1 and seen[0].shape == SHAPE and seen[0].dtype == out.dtype
    coarse = seen[0]
    assert iou(coarse == 1, out == 1) > 0.95 and not np.array_equal(coarse, out)  # the bands refine it
    blocks = coarse.reshape(100, 4, 150, 4)  # 4 x 4 blocks: the coarsest level (100 x 150) upsampled
    assert (blocks == blocks[:, :1, :, :1]).all()


def test_a_cancelled_local_update_leaves_the_last_cut(scene):
    from napari_deepseg.core.utils.progress import CancelToken, Cancelled

    session, truth, strokes, first = scene
    more = _cut_through(strokes)
    token = CancelToken()
    levels = [fg.copy() for fg in session._current.last.fgs]

    def cancel_at_the_second_level(step, total, message):
        if message.startswith("local update: level 2"):
            token.cancel()  # the coarsest level is solved; the next check stops the update

    with pytest.raises(Cancelled):
        session.segment(more, local=True, progress=cancel_at_the_second_level, cancel=token)
    for fg, kept in zip(session._current.last.fgs, levels):  # every level of the last cut, untouched
        np.testing.assert_array_equal(fg, kept)
    np.testing.assert_array_equal(session.segment(strokes, local=True), first)
    assert session.last_local
    again = session.segment(more, local=True)  # the update, now whole, as an uncancelled session gives it
    other = SegmentationSession("classic")
    other.set_image(disk_image(SHAPE, radius=120, seed=4)[0])
    other.segment(strokes)
    np.testing.assert_array_equal(again, other.segment(more, local=True))


# =========================================================================== deep features (issue 33)
@pytest.fixture
def deep_scene(monkeypatch, tmp_path):
    """The disk photo of :func:`scene` with ResNet-50 features (random weights, ``layer1``: stride 4)."""
    import torch
    import torchvision

    weights = tmp_path / "resnet50.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), weights)
    monkeypatch.setattr(pyramid, "COARSEST_PIXELS", 20_000)
    monkeypatch.setattr(pyramid, "UPDATE_BOUND", 60)
    image, truth = disk_image(SHAPE, radius=120, seed=4)
    strokes = disk_scribbles(truth, width=3, margin=6)
    session = SegmentationSession("resnet50", weights=str(weights), device="cpu", layers="layer1", n_components=8)
    session.set_image(image)
    first = session.segment(strokes)
    assert session._current.stride > 1 and len(session._current.last.fgs) == 3 and not session.last_local
    return session, truth, strokes, first


def test_deep_features_update_within_the_bound(deep_scene):
    session, truth, strokes, first = deep_scene
    more, out, outside = _square_update(session, strokes, first)
    whole = session.segment(more)  # the refit of the whole image, as the widget runs it afterwards
    assert not session.last_local and iou(out == 1, whole == 1) > 0.95
    back = session.segment(strokes, local=True)  # an update from the refitted cut: bounded again
    assert session.last_local
    np.testing.assert_array_equal(back[outside], whole[outside])


def test_a_cut_cancelled_in_its_last_band_stops_there(scene, monkeypatch):
    # the widget's refit after a local update is cancelled by the next stroke: it stops inside the
    # full-resolution band (before: that band was solved, and grown, to the end)
    from napari_deepseg.core.cut import maxflow
    from napari_deepseg.core.utils.progress import CancelToken, Cancelled

    session, truth, strokes, first = scene
    more = _cut_through(strokes)
    local = session.segment(more, local=True)
    last = session._current.last
    token, solved = CancelToken(), []
    original = maxflow.min_cut
    monkeypatch.setattr(maxflow, "min_cut", lambda *a, **k: solved.append(1) or original(*a, **k))

    def cancel_at_full_resolution(step, total, message):
        if "full resolution, band" in message:
            solved.clear()
            token.cancel()

    with pytest.raises(Cancelled):
        session.segment(more, progress=cancel_at_full_resolution, cancel=token)
    assert not solved  # no max-flow of the full-resolution band after the cancel
    assert session._current.last is last  # the last cut is the local update's, as it was
    np.testing.assert_array_equal(session.segment(more, local=True), local)
    other = SegmentationSession("classic")  # and the whole cut afterwards is the one a session never cancelled gives
    other.set_image(disk_image(SHAPE, radius=120, seed=4)[0])
    other.segment(strokes)
    np.testing.assert_array_equal(session.segment(more), other.segment(more))


def test_strokes_in_a_small_window_of_a_large_image_show_that_window_first(monkeypatch):
    """A first cut whose strokes lie in a small window previews that window cut alone (full resolution,
    background elsewhere); the whole cut that follows is the one a session without a preview gives."""
    monkeypatch.setattr(pyramid, "COARSEST_PIXELS", 20_000)
    monkeypatch.setattr(pyramid, "UPDATE_BOUND", 40)
    monkeypatch.setattr(pyramid, "WINDOW_FIRST_MIN_PIXELS", 0)  # this 400 x 1200 image counts as large
    left, truth = disk_image(SHAPE, radius=100, seed=4)
    right, _ = disk_image(SHAPE, radius=100, seed=5)
    image = np.concatenate([left, right], axis=1)
    strokes = np.zeros(image.shape[:2], np.uint8)
    strokes[195:206, 240:361] = strokes[140:261, 295:306] = 1  # a cross on the left disk
    r0, r1, c0, c1 = 200 - 125, 200 + 126, 300 - 125, 300 + 126  # a square around it, 25 px off the disk
    strokes[r0:r1, c0 : c0 + 3] = strokes[r0:r1, c1 - 3 : c1] = 2
    strokes[r0 : r0 + 3, c0:c1] = strokes[r1 - 3 : r1, c0:c1] = 2
    session = SegmentationSession("classic")
    session.set_image(image)
    seen = []
    out = session.segment(strokes, preview=seen.append)
    assert len(seen) == 1 and seen[0].shape == strokes.shape and seen[0].dtype == out.dtype
    first = seen[0] == 1
    window = pyramid.update_window(*np.nonzero(strokes), strokes.shape, 40)
    assert not first[_outside(window, strokes.shape)].any()  # background beyond the window
    object_truth = np.zeros(strokes.shape, bool)
    object_truth[:, :600] = truth
    assert iou(first, object_truth) > 0.9  # the stroked disk, at full resolution
    assert not (first.reshape(100, 4, 300, 4) == first.reshape(100, 4, 300, 4)[:, :1, :, :1]).all()
    fresh = SegmentationSession("classic")
    fresh.set_image(image)
    np.testing.assert_array_equal(out, fresh.segment(strokes))  # the whole cut, as without the preview
    np.testing.assert_array_equal(session._current.last.fgs[0], out == 1)  # what a local update starts from
    spread = strokes.copy()
    spread[195:206, 840:961] = 1  # strokes on both disks: no small window, the coarse preview
    seen.clear()
    session.segment(spread, preview=seen.append)
    blocks = seen[0].reshape(100, 4, 300, 4)
    assert len(seen) == 1 and (blocks == blocks[:, :1, :, :1]).all()
