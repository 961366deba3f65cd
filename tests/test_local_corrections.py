"""A correction stays where it is made (issue 32 item 4): core/cut/corrections.py and its session wiring."""

from __future__ import annotations

import numpy as np

from napari_deepseg.core.cut import energy, pyramid, service
from napari_deepseg.core.cut.corrections import Strokes, Trail, added_strokes, answer, correction_base, keep_touching
from napari_deepseg.core.cut.session import SegmentationSession
from _synthetic import disk_image, disk_mask, disk_scribbles


# -- the pure functions ---------------------------------------------------------------

def test_only_regions_touching_the_new_stroke_change():
    before = np.zeros((40, 60), np.uint8)
    before[5:35, 5:55] = 1
    after = before.copy()
    after[5:12, 5:12] = 0      # the leak the dab is on
    after[25:35, 40:55] = 0    # a wedge far from it
    after[30:38, 20:25] = 1    # a far growth
    dab = np.zeros(before.shape, bool)
    dab[6, 6] = True
    out = keep_touching(before, after, dab)
    assert np.array_equal(out[5:12, 5:12], after[5:12, 5:12])
    assert np.array_equal(out[25:35, 40:55], before[25:35, 40:55])
    assert np.array_equal(out[30:38, 20:25], before[30:38, 20:25])
    assert out.dtype == after.dtype


def test_a_region_is_one_8_connected_piece_and_touch_is_a_distance():
    before = np.zeros((20, 20), np.uint8)
    after = before.copy()
    after[5, 2] = after[6, 3] = after[7, 4] = 1   # one diagonal region, (7, 4) 4 px from the dab
    after[5, 13] = 1                              # 5 px right of the dab
    dab = np.zeros(before.shape, bool)
    dab[5, 8] = True
    assert keep_touching(before, after, dab, touch=3).sum() == 0      # nothing within 3 px
    out = keep_touching(before, after, dab, touch=4)                  # (7, 4) touches: the whole diagonal
    assert out[5, 2] and out[6, 3] and out[7, 4] and not out[5, 13]
    assert keep_touching(before, after, dab, touch=5).sum() == 4


def test_nothing_changed_and_regions_at_the_image_edge():
    labels = np.zeros((10, 10), np.uint8)
    dab = np.zeros((10, 10), bool)
    dab[0, 0] = True
    assert np.array_equal(keep_touching(labels, labels, dab), labels)
    after = labels.copy()
    after[0, :3] = 1
    after[9, 9] = 1
    out = keep_touching(labels, after, dab)
    assert out[0, :3].all() and out[9, 9] == 0


def test_sparse_strokes_compare_and_add_as_the_dense_ones():
    rng = np.random.default_rng(1)
    before = np.where(rng.random((30, 40)) < 0.05, rng.integers(1, 4, (30, 40)), 0)
    after = before.copy()
    after[rng.random((30, 40)) < 0.03] = 2              # new strokes and some painted over
    dense = (after > 0) & (after != before)
    added = Strokes.of(after).added_to(Strokes.of(before))
    assert np.array_equal(added, np.flatnonzero(dense))
    assert Strokes.of(after) == Strokes.of(after.copy()) and Strokes.of(after) != Strokes.of(before)
    erased = after.copy()
    erased.ravel()[np.flatnonzero(before)[0]] = 0
    assert Strokes.of(erased).added_to(Strokes.of(before)) is None
    assert Strokes.of(before).added_to(Strokes.of(before)) is None
    assert Strokes.of(after).added_to(Strokes.of(np.zeros((30, 41), int))) is None
    changed = np.zeros((30, 40), np.uint8)
    changed[20:25, 30:35] = 1
    assert np.array_equal(keep_touching(np.zeros_like(changed), changed, added),
                          keep_touching(np.zeros_like(changed), changed, dense))


def test_added_strokes_are_additions_only():
    before = np.array([[1, 0, 2, 0]])
    assert added_strokes(before, np.array([[1, 1, 1, 0]])).tolist() == [[False, True, True, False]]  # over a 2 too
    assert added_strokes(before, before.copy()) is None                    # nothing added
    assert added_strokes(before, np.array([[1, 0, 0, 2]])) is None         # the 2 was erased
    assert added_strokes(before, np.zeros((2, 4), int)) is None            # another shape


def test_the_base_is_kept_for_a_refit_and_dropped_for_other_parameters():
    s1, s2 = np.array([[1, 0, 0, 2]]), np.array([[1, 2, 0, 2]])
    first = Trail("img", ("a",), Strokes.of(s1), np.array([[1, 1, 0, 0]]))
    base, added = correction_base(first, "img", ("a",), s2)
    assert base[0] is first.strokes and added.tolist() == [1]
    second = Trail("img", ("a",), Strokes.of(s2), np.array([[1, 0, 0, 0]]), base)
    refit, added = correction_base(second, "img", ("a",), s2.copy())
    assert refit is base and added.tolist() == [1]                         # the background refit
    assert correction_base(second, "other", ("a",), s2) is None
    assert correction_base(second, "img", ("b",), s2) is None
    assert correction_base(second, "img", ("a",), np.array([[1, 2, 0, 0]])) is None   # a stroke erased
    assert correction_base(None, "img", ("a",), s2) is None


def test_answer_keeps_a_copy_the_caller_cannot_change():
    s = np.array([[1, 0, 2]])
    labels = np.array([[1, 1, 0]], np.uint8)
    out, trail, kept = answer(None, "img", (), s, labels)
    assert kept == 0
    out[0, 0] = 7
    s[0, 1] = 2
    assert trail.labels[0, 0] == 1 and trail.strokes == Strokes.of(np.array([[1, 0, 2]]))


# -- through the session and the widget's request ---------------------------------------

def _image_and_strokes():
    truth = disk_mask((72, 96), radius=22)           # centred at (36, 48)
    image, _ = disk_image((72, 96), radius=22, channels=3, noise=0.04, seed=3)
    return image, truth, disk_scribbles(truth, seed=3)


def _far_flip(monkeypatch, dab, far):
    """Every cut whose strokes hold the background ``dab`` also labels the block ``far`` background.

    The real cut's tipping colour model, made certain: the far change a correction must not bring.
    """
    originals = {"multilevel": pyramid.cut_multilevel, "default": energy.cut_default}

    def wrap(original):
        def cut(entry, seeds, classes, *args, **kwargs):
            index = original(entry, seeds, classes, *args, **kwargs)
            if np.all(seeds[dab] == 2):
                index = index.copy()
                index[far] = 1  # class index 1: the background
            return index
        return cut

    monkeypatch.setattr(pyramid, "cut_multilevel", wrap(originals["multilevel"]))
    monkeypatch.setattr(energy, "cut_default", wrap(originals["default"]))


def test_session_keeps_a_far_change_out_of_a_correction(monkeypatch):
    image, truth, s1 = _image_and_strokes()
    dab = (slice(35, 38), slice(65, 68))            # on the object's right edge
    far = (slice(38, 48), slice(30, 36))            # object, far left
    s1[far] = 0                                     # not stroked
    assert truth[far].all()
    _far_flip(monkeypatch, dab, far)
    session = SegmentationSession("classic")
    session.set_image(image)
    first = session.segment(s1, local_corrections=True)
    assert (first[far] == 1).all()
    s2 = s1.copy()
    s2[dab] = 2
    plain = SegmentationSession("classic")
    plain.set_image(image)
    cut = plain.segment(s2)
    assert (cut[far] == 0).all()                    # the cut alone loses the far block
    kept = session.segment(s2, local_corrections=True)
    assert (kept[far] == 1).all()                   # the correction keeps it
    assert session.last_kept == int((kept != cut).sum()) > 0
    assert (kept[dab] == 0).all()
    assert np.array_equal(kept, keep_touching(first, cut, s2 != s1))
    assert np.array_equal(session.segment(s2, local_corrections=True), kept)   # the refit corrects the same answer
    assert (session.segment(s2)[far] == 0).all()    # without it, the cut alone
    erased = s2.copy()
    erased[s1 == 1] = 0
    erased[36, 48] = 1                              # the object strokes replaced: a fresh answer
    fresh = session.segment(erased, local_corrections=True)
    assert np.array_equal(fresh, plain.segment(erased)) and session.last_kept == 0


def test_run_request_passes_local_corrections_and_another_image_starts_fresh():
    image, truth, s1 = _image_and_strokes()
    options = service.Options("classic", "default", None, None, ())
    pool = service.SessionPool()
    try:
        slot = pool.slot(options)
        first = service.run_request(slot, image, s1, options, local_corrections=True)
        s2 = s1.copy()
        s2[60:63, 85:88] = 2
        kept = service.run_request(slot, image, s2, options, local_corrections=True)
        plain = SegmentationSession("classic")
        plain.set_image(image)
        assert np.array_equal(kept, keep_touching(first, plain.segment(s2), s2 != s1))
        other = image[::-1].copy()
        fresh = service.run_request(slot, other, s2, options, local_corrections=True)
        plain.set_image(other)
        assert np.array_equal(fresh, plain.segment(s2))
    finally:
        pool.close()
