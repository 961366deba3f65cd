"""The click engine's promises, checked mask by mask (core/evaluation/promises.py, issue 24)."""

from __future__ import annotations

import numpy as np

from napari_deepseg.core.evaluation.promises import PromiseWatch, broken_promises
from napari_deepseg.core.prompts.base import Click, ClickMethod
from napari_deepseg.core.prompts.box import Box


def two_pieces():
    mask = np.zeros((20, 30), bool)
    mask[2:8, 2:8] = True
    mask[12:18, 20:28] = True
    return mask


def test_a_piece_without_a_positive_click_is_stray_unless_it_lies_in_the_box():
    mask = two_pieces()
    assert broken_promises(None, mask, [Click(4, 4, True)])["stray_piece"]
    assert not broken_promises(None, mask, [Click(4, 4, True), Click(14, 22, True)])["stray_piece"]
    assert not broken_promises(None, mask, [], Box(0, 0, 20, 30))["stray_piece"]  # a box alone: all inside
    assert broken_promises(None, mask, [Click(14, 22, True)], Box(10, 18, 20, 30))["stray_piece"]
    assert not broken_promises(None, np.zeros((20, 30), bool), [Click(4, 4, True)])["stray_piece"]


def test_corrections_must_change_the_pixel_they_land_on():
    before = two_pieces()
    after = before.copy()
    negative = [Click(4, 4, True), Click(14, 22, False)]
    found = broken_promises(before, after, negative)
    assert found["negative_on_object"] and found["negative_kept"]
    after[12:18, 20:28] = False
    found = broken_promises(before, after, negative)
    assert found["negative_on_object"] and not found["negative_kept"] and not found["stray_piece"]
    positive = [Click(4, 4, True), Click(10, 10, True)]  # on background of the mask before
    found = broken_promises(after, after, positive)
    assert found["positive_on_missed"] and found["positive_lost"]
    grown = after.copy()
    grown[4:11, 4:11] = True
    assert not broken_promises(after, grown, positive)["positive_lost"]
    # the first mask of an image has nothing before it to correct
    assert not any(broken_promises(None, after, negative[:1]).values())


class Scripted(ClickMethod):
    """Returns the masks it was given, one per call."""

    name = "scripted"
    takes_box = True

    def __init__(self, masks):
        self.masks = list(masks)

    def set_image(self, image, progress=None, cancel=None):
        pass

    def predict(self, clicks, cancel=None):
        return self.masks.pop(0)

    def predict_box(self, box, clicks=(), cancel=None):
        return self.masks.pop(0)


def test_watch_counts_and_names_the_masks_that_break_a_promise():
    first = np.zeros((20, 30), bool)
    first[2:8, 2:8] = True
    watch = PromiseWatch(Scripted([first, two_pieces(), first]))
    watch.set_image(np.zeros((20, 30)))
    clicks = [Click(4, 4, True)]
    np.testing.assert_array_equal(watch.predict(clicks), first)
    watch.predict(clicks + [Click(15, 24, True)])  # adds the second piece: kept
    watch.set_image(np.zeros((20, 30)))
    watch.predict_box(Box(0, 0, 10, 10), [Click(15, 24, True)])  # a click the mask does not hold, no mask before
    counts = watch.counts.as_dict()
    assert counts["masks"] == 3 and counts["positives_on_missed"] == 1 and counts["positives_lost"] == 0
    assert counts["stray_pieces"] == 0 and counts["broken"] == 0
    watch = PromiseWatch(Scripted([two_pieces()]))
    watch.set_image(np.zeros((20, 30)))
    watch.predict(clicks)
    assert watch.counts.broken == 1 and watch.failures == [(0, 1, ["stray_piece"])]


def test_promises_hold_under_the_protocols_on_grabcut_photos():
    """Three GrabCut photos, 6 protocol clicks each, with and without a box (all 50 of GrabCut and the 100 of
    Berkeley: ``benchmark --check-promises``, docs/benchmarks.md)."""
    import os
    from pathlib import Path

    import pytest

    from napari_deepseg.core.evaluation import benchmark as B
    from napari_deepseg.core.prompts.base import get_click_method

    root = Path(os.environ.get("NAPARI_DEEPSEG_DATASETS") or Path(__file__).resolve().parents[2] / "shared"
                / "datasets") / "grabcut"
    if not (root / "images").is_dir():
        pytest.skip(f"the GrabCut images are absent from {root} (see the datasets README)")
    watch = PromiseWatch(get_click_method("graphcut", features="classic"))
    items = B.dataset_items(root, limit=3)
    for item in items:
        image, truth = item.load()
        B.run_click_protocol(watch, image, truth, max_clicks=6, stop_at_target=False)
        B.run_box_protocol(watch, image, truth, max_clicks=6, target=1.01)
    counts = watch.counts
    assert counts.masks == 3 * (6 + 1 + 6) and counts.broken == 0, watch.failures
    assert counts.negatives_on_object > 3 and counts.positives_on_missed > 3  # corrections of both kinds checked
