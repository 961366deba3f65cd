"""Star centres found apart from the strokes: the object core both cuts agree on (issue 24, item 5)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_deepseg.core import SegmentationSession
from napari_deepseg.core.cut import energy, pyramid
from napari_deepseg.core.cut.session import DEFER_MAX_PIXELS


def hooked_object(seed: int = 0):
    """An orange body with a straight arm and a hooked arm on dark green, noisy; ``(image, truth, strokes)``.

    The stroke runs along the straight arm only: the hook's far end sees the
    stroke only along vertical rays through the background between the arms.
    """
    rng = np.random.default_rng(seed)
    truth = np.zeros((160, 200), bool)
    rr, cc = np.mgrid[:160, :200]
    truth |= (rr - 110) ** 2 + (cc - 60) ** 2 < 22**2  # the body
    truth[104:116, 60:190] = True  # the straight arm
    truth[15:110, 54:66] = True  # the hook: up ...
    truth[15:27, 54:125] = True  # ... then right, above the straight arm
    image = np.where(truth[..., None], [230, 140, 60], [40, 90, 40]).astype(float)
    image += rng.normal(0, 25, image.shape)
    strokes = np.zeros(truth.shape, np.uint8)
    strokes[109:111, 50:180] = 1
    strokes[:3], strokes[-3:], strokes[:, :3], strokes[:, -3:] = 2, 2, 2, 2
    return np.clip(image, 0, 255).astype(np.uint8), truth, strokes


@pytest.mark.parametrize("scale", [1, 3])  # 3: 288 000 pixels, solved coarse to fine (the pyramid)
def test_the_hook_beyond_the_strokes_rays_is_kept_without_a_wedge(scale):
    image, truth, strokes = (np.repeat(np.repeat(a, scale, 0), scale, 1) for a in hooked_object())
    session = SegmentationSession("classic")
    session.set_image(image)
    assert pyramid.applies(truth.shape, None) == (scale > 1)
    fg = session.segment(strokes) == 1
    hook_end = np.s_[15 * scale:27 * scale, 95 * scale:125 * scale]
    between = np.s_[35 * scale:95 * scale, 80 * scale:125 * scale]
    assert fg[hook_end][truth[hook_end]].mean() > 0.95  # the hook's far end: a hard star alone drops it
    assert fg[between].mean() < 0.02  # and no wedge of background between the arms
    assert (fg & truth).sum() / (fg | truth).sum() > 0.95


def test_agreed_core_keeps_stroked_regions_only():
    starred = np.zeros((9, 30), bool)
    starred[2:7, 2:28] = True
    free = starred.copy()
    free[2:7, 14:17] = False  # the cuts disagree in the middle: two regions
    seeds = np.zeros_like(starred)
    seeds[4, 5] = True
    core = energy.agreed_core(starred, free, seeds, erosion=1)
    assert core[3:6, 3:13].all() and not core[:, 14:].any()  # the stroked region, shrunk; not the other
    assert not energy.agreed_core(starred, free, np.zeros_like(seeds)).any()


def test_starfish_arm_beyond_the_strokes_is_kept():
    """Issue 24 item 5's photo (Berkeley 12003, stretched to 1000 x 1000 here; 16 MP in
    ``benchmarks/wedges_16mp.py``): a cross of strokes on the body, a background frame.
    The hard star about the strokes alone cuts the lower-left arm off along a straight
    line and takes in a wedge between the top arms (IoU 0.81)."""
    import os
    from pathlib import Path

    from PIL import Image
    from scipy import ndimage as ndi

    root = Path(os.environ.get("NAPARI_DEEPSEG_DATASETS") or Path(__file__).resolve().parents[2] / "shared"
                / "datasets") / "berkeley"
    if not (root / "images" / "12003.jpg").exists():
        pytest.skip(f"Berkeley 12003 is absent from {root} (see the datasets README)")
    side = 1000
    image = np.asarray(Image.open(root / "images" / "12003.jpg").convert("RGB").resize((side, side), Image.BICUBIC))
    truth = np.asarray(Image.open(root / "masks" / "12003.png").convert("L").resize((side, side))) > 127
    inner = ndi.binary_erosion(truth, iterations=8)
    strokes = np.zeros(truth.shape, np.uint8)
    strokes[397:401][:, inner[399]] = 1  # along row 1595 of the 16 MP photo, inside the starfish
    strokes[:, 524:528][inner[:, 526]] = 1  # along column 2104
    strokes[:10], strokes[-10:], strokes[:, :10], strokes[:, -10:] = 2, 2, 2, 2
    session = SegmentationSession("classic")
    session.set_image(image)
    fg = session.segment(strokes) == 1
    arm = truth[600:, :300]  # the lower-left arm, which no stroke reaches
    assert fg[600:, :300][arm].mean() > 0.8  # 0.86 (0.01 with the strokes as the only centres)
    assert (fg & truth).sum() / (fg | truth).sum() > 0.92  # 0.942 (0.811)


def test_a_deferred_cut_leaves_the_found_centres_to_the_next_one():
    """``defer=True`` answers without the found centres (the hook's end is lost); the cut after it has them."""
    image, truth, strokes = (np.repeat(np.repeat(a, 3, 0), 3, 1) for a in hooked_object())
    session = SegmentationSession("classic")
    session.set_image(image)
    quick = session.segment(strokes, defer=True) == 1
    assert session.last_deferred
    hook_end = np.s_[45:81, 285:375]
    assert quick[hook_end][truth[hook_end]].mean() < 0.5  # the star alone drops the hook's far end
    session.segment(strokes, defer=True, star_weight=60.0)  # a soft star finds no centres: nothing is deferred
    assert not session.last_deferred
    full = session.segment(strokes)
    assert not session.last_deferred
    fresh = SegmentationSession("classic")
    fresh.set_image(image)
    np.testing.assert_array_equal(full, fresh.segment(strokes))  # the full cut, as if nothing was deferred
    assert (full == 1)[hook_end][truth[hook_end]].mean() > 0.95
    big = np.repeat(np.repeat(image, 2, 0), 2, 1)  # above DEFER_MAX_PIXELS: nothing is deferred
    assert big.shape[0] * big.shape[1] > DEFER_MAX_PIXELS
    big_session = SegmentationSession("classic")
    big_session.set_image(big)
    big_session.segment(np.repeat(np.repeat(strokes, 2, 0), 2, 1), defer=True)
    assert not big_session.last_deferred


def test_a_deferred_cut_refits_on_a_coarse_labelling_and_solves_the_coarsest_level_once(monkeypatch):
    """``defer=True`` samples its refit from a labelling below the coarsest level (no bands, one coarsest
    max-flow instead of two); the quick answer stays close to the full cut that replaces it."""
    from napari_deepseg.core.cut import maxflow

    image, truth, strokes = (np.repeat(np.repeat(a, 3, 0), 3, 1) for a in hooked_object())
    session = SegmentationSession("classic")
    session.set_image(image)
    solves, fits = [], []
    solve, fit_round = maxflow.IncrementalCut.solve, pyramid._fit_round
    monkeypatch.setattr(maxflow.IncrementalCut, "solve", lambda self, *a: solves.append(self.shape) or solve(self, *a))
    monkeypatch.setattr(pyramid, "_fit_round", lambda *a: fits.append(a[0].shape) or fit_round(*a))
    quick = session.segment(strokes, defer=True) == 1
    top = fits[0]  # the coarsest level: the fit round is solved on the level below it
    assert session.last_deferred and len(fits) == 1
    assert solves.count(top) == 1 and len(solves) == 2 and min(solves) < top
    solves.clear(), fits.clear()
    full = session.segment(strokes) == 1
    assert solves == [top] * 4 and not fits  # two rounds (the colour model's banded refit) and the found centres' two
    away = np.ones(truth.shape, bool)
    away[45:81, 190:375] = False  # the hook's upper arm, which only the found centres give back whole
    assert (quick & truth)[away].sum() / (quick | truth)[away].sum() > 0.95
    assert (quick != full)[away].mean() < 0.001
