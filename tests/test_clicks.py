"""Clicks as input: validation, disk seeds, the registry, and extra evidence in the session."""

from __future__ import annotations

import numpy as np
import pytest

from _synthetic import disk_image
from napari_deepseg.core import SegmentationSession
from napari_deepseg.core.prompts.clickcut import click_seeds
from napari_deepseg.core.prompts.base import (
    Click,
    ClickMethod,
    available_click_methods,
    paint_disk,
    check_clicks,
    clicks_from_arrays,
    get_click_method,
)
from napari_deepseg.core.evaluation.metrics import iou


def test_paint_disk_by_hand_and_clipped():
    a = np.zeros((7, 7), np.uint8)
    paint_disk(a, 3, 3, 2, 5)
    assert a.sum() == 5 * 13  # a radius-2 digital disk has 13 pixels
    b = np.zeros((4, 4), np.uint8)
    paint_disk(b, 0, 0, 2, 1)  # clipped by the corner: 6 of its 13 pixels lie inside
    assert b.sum() == 6


def test_click_seeds_later_clicks_paint_over():
    seeds = click_seeds([Click(5, 5, True), Click(5, 6, False)], (11, 11), radius=1)
    assert seeds[5, 6] == 2 and seeds[5, 5] == 2 and seeds[4, 5] == 1
    assert set(np.unique(seeds)) == {0, 1, 2}


def test_check_clicks_errors():
    with pytest.raises(ValueError, match="outside the 10x12 image"):
        check_clicks([Click(10, 0, True)], (10, 12))
    with pytest.raises(ValueError, match="positive click"):
        check_clicks([Click(1, 1, False)], (10, 12))
    assert check_clicks((Click(0, 11, True),), (10, 12)) == [Click(0, 11, True)]


def test_clicks_from_arrays():
    assert clicks_from_arrays([[0.4, 1.6], [3, 4]], [1, 0]) == [Click(0, 2, True), Click(3, 4, False)]
    with pytest.raises(ValueError, match="2 points but 1"):
        clicks_from_arrays([[0, 0], [1, 1]], [True])


def test_registry():
    assert "graphcut" in available_click_methods()
    method = get_click_method("graphcut", features="rgb")
    assert isinstance(method, ClickMethod) and method.name == "graphcut"
    with pytest.raises(ValueError, match="unknown click method 'nope'"):
        get_click_method("nope")


def test_graphcut_predict_before_set_image():
    with pytest.raises(RuntimeError, match="set_image"):
        get_click_method("graphcut", features="rgb").predict([Click(1, 1, True)])


def test_graphcut_one_click_on_a_disk():
    image, truth = disk_image((60, 72), seed=3)
    method = get_click_method("graphcut", features="rgb")
    method.set_image(image)
    rr, cc = np.nonzero(truth)
    mask = method.predict([Click(int(rr.mean()), int(cc.mean()), True)])
    assert mask.dtype == bool and mask.shape == truth.shape
    assert iou(mask, truth) > 0.9
    # a negative click on the object's centre removes (at least) that part
    mask2 = method.predict([Click(int(rr.mean()), int(cc.mean()), True), Click(int(rr.min()) + 2, int(cc.mean()), False)])
    assert not mask2[int(rr.min()) + 2, int(cc.mean())]


def _session(seed=0):
    image, truth = disk_image((48, 56), seed=seed)
    s = SegmentationSession("rgb")
    s.set_image(image)
    seeds = np.zeros(truth.shape, np.uint8)
    rr, cc = np.nonzero(truth)
    seeds[int(rr.mean()), int(cc.mean())] = 1
    seeds[0, :] = 2
    return s, seeds, truth


def test_unary_moves_the_cut():
    s, seeds, truth = _session()
    base = s.segment(seeds, multilevel=False)
    assert iou(base == 1, truth) > 0.9
    cy = int(np.nonzero(seeds == 1)[0][0])
    unary = np.zeros((*truth.shape, 2), np.float32)
    unary[: cy - 3, :, 0] = 100.0  # rows above the click may not be object
    cut = s.segment(seeds, multilevel=False, unary=unary)
    assert not (cut[: cy - 3] == 1).any()
    assert (cut[cy:] == 1).sum() > 0.8 * truth[cy:].sum()


def test_unary_and_fit_labels_are_checked():
    s, seeds, truth = _session()
    with pytest.raises(ValueError, match="unary must have shape"):
        s.segment(seeds, unary=np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="finite"):
        s.segment(seeds, unary=np.full((*truth.shape, 2), np.nan))
    with pytest.raises(ValueError, match="fit_labels"):
        s.segment(seeds, fit_labels=np.zeros(truth.shape, np.uint8))


def test_fit_labels_change_the_appearance_model_not_the_constraints():
    s, seeds, truth = _session()
    wrong = np.zeros_like(seeds)
    wrong[truth] = 2  # claims the object colour is background
    wrong[~truth] = 1
    cut = s.segment(seeds, fit_labels=wrong, iterations=0, multilevel=False)
    assert cut[seeds == 1].all() and not cut[seeds == 2].any()  # hard constraints kept
    assert iou(cut == 1, truth) < 0.5  # the inverted models win elsewhere


def test_prepare_default_changes_nothing():
    s, seeds, truth = _session(seed=1)
    a = s.segment(seeds)
    s2 = SegmentationSession("rgb")
    s2.set_image(disk_image((48, 56), seed=1)[0])
    s2.prepare_default()
    np.testing.assert_array_equal(a, s2.segment(seeds))
    with pytest.raises(RuntimeError):
        SegmentationSession("rgb").prepare_default()


def test_adaptive_radius_by_hand():
    from napari_deepseg.core.prompts.clickcut import MAX_RADIUS, adaptive_radius

    prev = np.zeros((20, 40), bool)
    prev[:, :4] = True  # object on the left
    assert adaptive_radius(Click(10, 10, True), prev) == 3  # 7 px to the object: 3.5 -> 3
    assert adaptive_radius(Click(10, 39, True), prev) == MAX_RADIUS  # far: capped
    assert adaptive_radius(Click(10, 5, True), prev) == 2  # near: at least 2
    assert adaptive_radius(Click(10, 1, False), prev) == 2  # 3 px to the background: 1.5 -> at least 2
    assert adaptive_radius(Click(0, 0, True), np.zeros((5, 5), bool)) == MAX_RADIUS  # nothing to measure to


def test_adaptive_disks_follow_the_previous_mask():
    from napari_deepseg.core.prompts.clickcut import MAX_RADIUS, GraphCutClicks

    image, truth = disk_image((60, 72), seed=5)
    m = GraphCutClicks(features="rgb")
    m.set_image(image)
    rr, cc = np.nonzero(truth)
    first = Click(int(rr.mean()), int(cc.mean()), True)
    mask = m.predict([first])
    assert m._radii == [MAX_RADIUS]
    second = Click(0 + 3, 3, False)  # far in the background: the previous background is right there
    m.predict([first, second])
    assert m._radii == [MAX_RADIUS, 2]
    assert mask.dtype == bool
    # a list that does not extend the last one starts afresh
    m.predict([second, first])
    assert m._radii == [MAX_RADIUS, 5]


@pytest.mark.parametrize("kwargs, message", [({"radius": -1}, "radius"), ({"lam": 0}, "lambda"),
                                             ({"iterations": -1}, ">= 0"), ({"box_iterations": -1}, ">= 0")])
def test_graphcut_click_options_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        get_click_method("graphcut", features="rgb", **kwargs)


def test_rejected_click_options_are_gone():
    """The ablations' losing variants are no options any more (issue 30, item 4)."""
    import inspect

    from napari_deepseg.core.prompts.clickcut import GraphCutClicks

    assert not {"radius_mode", "border", "distance_weight"} & set(inspect.signature(GraphCutClicks).parameters)


def _face_with_an_eye(seed=0):
    """A bright rectangle on a dark textured ground, with a dark disk (an eye) inside it."""
    rng = np.random.default_rng(seed)
    rows, cols = 80, 100
    image = np.empty((rows, cols, 3), np.float32)
    image[:] = (0.15, 0.35, 0.15)
    obj = np.zeros((rows, cols), bool)
    obj[15:65, 15:85] = True
    image[obj] = (0.9, 0.6, 0.3)
    rr, cc = np.ogrid[:rows, :cols]
    eye = (rr - 40) ** 2 + (cc - 66) ** 2 <= 100
    image[eye] = (0.15, 0.35, 0.15)
    image += rng.normal(0, 0.03, image.shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8), obj & ~eye


def test_soft_star_bends_around_a_dark_part_of_the_object(monkeypatch):
    """A hard star about the click alone must fill the eye or lose what lies behind it (issue 15, item 12).

    Here it fills it; on the cat it cut the face along the ray tangent to an eye.
    The click engine's soft star keeps the eye out and the object behind it in, and
    so does the hard star with the centres found where the cut without the star
    agrees (issue 24, item 5: ``energy.recut_found_centres``).
    """
    from napari_deepseg.core.cut import energy

    image, truth = _face_with_an_eye()
    click = [Click(40, 25, True)]

    def hard_cut():
        hard = get_click_method("graphcut", features="rgb", star_weight=None)
        hard.set_image(image)
        return hard.predict(click)

    found = hard_cut()
    with monkeypatch.context() as m:
        m.setattr(energy, "recut_found_centres", lambda fg, *args: (fg, None))
        starred = hard_cut()
    assert starred[40, 60:72].all()  # the eye is labelled object: every ray behind it must pass
    soft = get_click_method("graphcut", features="rgb")  # the default: a soft star
    soft.set_image(image)
    for mask in (soft.predict(click), found):
        assert not mask[38:43, 62:71].any() and mask[38:43, 78:85].all()
        assert iou(mask, truth) > 0.98 > iou(starred, truth)


def test_star_weight_is_checked():
    with pytest.raises(ValueError, match="star_weight"):
        get_click_method("graphcut", features="rgb", star_weight=0)
    session = SegmentationSession("rgb")
    image, _ = disk_image((30, 30))
    session.set_image(image)
    scribbles = np.zeros((30, 30), np.uint8)
    scribbles[15, 15], scribbles[0, 0] = 1, 2
    with pytest.raises(ValueError, match="star_weight"):
        session.segment(scribbles, star_weight=-1.0)


@pytest.fixture(scope="module")
def cat():
    from napari_deepseg.samples import cat_sample

    return cat_sample()[0]


def _pieces(mask):
    from scipy import ndimage

    labels, n = ndimage.label(mask, np.ones((3, 3)))
    return labels, n


def test_one_positive_click_gives_one_piece_holding_it(cat):
    """Issue 24, item 2: a click on the cat's eye also returned the other eye (4,220 + 2,104 px)."""
    method = get_click_method("graphcut", features="classic")
    method.set_image(cat)
    mask = method.predict([Click(137, 199, True)])
    labels, n = _pieces(mask)
    assert n == 1 and labels[137, 199] == 1
    assert 3000 < mask.sum() < 6000 and not mask[:, 260:].any()  # the clicked eye, not the other one


def test_a_negative_click_removes_the_piece_it_lands_in(cat):
    """Issue 24, item 2: a negative click in the middle of a piece removed 95 px, the piece stayed.

    With a fresh method (as the widget had it: its set_image call forgot the last
    mask) and with the click memory, every piece holds a positive click and the
    negatively clicked region is gone.
    """
    pos, neg = Click(137, 199, True), Click(138, 319, False)
    fresh = get_click_method("graphcut", features="classic")
    fresh.set_image(cat)
    mask = fresh.predict([pos, neg])
    labels, n = _pieces(mask)
    assert n == 1 and labels[137, 199] == 1 and not mask[:, 260:].any()
    inside = Click(115, 170, False)  # the clicked eye's pupil: a region, not only the click's disk
    method = get_click_method("graphcut", features="classic")
    method.set_image(cat)
    before = method.predict([pos])
    assert before[115, 170]
    method.set_image(cat)  # the widget calls set_image before every prediction: the click memory stays
    after = method.predict([pos, inside])
    removed = before & ~after
    assert not after[115, 170] and removed.sum() > np.pi * 8 ** 2  # more than the largest disk
    assert _pieces(after)[1] == 1


@pytest.mark.parametrize("radius", [0, 1, 2, 5, 8])
def test_one_disk_for_clicks_and_point_prompts(radius):
    """``pointcut.disk_mask`` and the click engine's seeds draw the same disks (issue 30, item 2)."""
    from napari_deepseg.core.prompts.pointcut import disk_mask

    rng = np.random.default_rng(radius)
    shape = (23, 31)
    clicks = [Click(int(r), int(c), bool(p)) for r, c, p in
              zip(rng.integers(0, shape[0], 12), rng.integers(0, shape[1], 12), rng.random(12) < 0.5)]
    clicks += [Click(0, 0, True), Click(shape[0] - 1, shape[1] - 1, False)]  # clipped at the corners
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    for positive in (True, False):
        mine = [c for c in clicks if c.positive == positive]
        by_hand = np.zeros(shape, bool)
        for c in mine:
            by_hand |= (rr - c.row) ** 2 + (cc - c.col) ** 2 <= radius * radius
        np.testing.assert_array_equal(disk_mask(shape, clicks, positive, radius), by_hand)
        np.testing.assert_array_equal(click_seeds(mine, shape, radius) > 0, by_hand)
